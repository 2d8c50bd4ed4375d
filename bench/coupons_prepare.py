"""Prepares bench/coupons.sh: two 代金券 programs (one to issue from, one
whose N coupons are pre-issued to be verified), and N pre-signed requests
of each kind (code redemptions, coupon issues, coupon verifications).

Usage: coupons_prepare.py ADDRESS WORK N (WORK holds key.json and codes.csv)."""
import concurrent.futures, hashlib, hmac, http.cookiejar, json, os, sys, time, urllib.request

address, work, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
key = json.load(open(f"{work}/key.json"))
jar = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))


def call(method, path, body=None, headers=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{address}{path}", data=data, method=method)
    request.add_header("content-type", "application/json")
    for k, v in (headers or {}).items():
        request.add_header(k, v)
    with jar.open(request) as response:
        return json.loads(response.read() or b"null")


def signed(path, body, idempotency_key, ts=None):
    text = json.dumps(body, separators=(",", ":"))
    ts = ts or str(int(time.time()))
    nonce = os.urandom(16).hex()
    canonical = f"POST\n{path}\n\n{ts}\n{nonce}\n{hashlib.sha256(text.encode()).hexdigest()}"
    signature = hmac.new(key["secret"].encode(), canonical.encode(), hashlib.sha256).hexdigest()
    return ts, nonce, signature, idempotency_key, text


csrf = call("POST", "/api/v1/sessions", {"username": "boss", "password": "bench1234"})["csrf_token"]


def program(title):
    created = call("POST", "/api/v1/coupon-programs", {
        "kind": "cash", "least_cost_fen": 10000, "reduce_cost_fen": 2000, "title": title,
        "quantity": 100000000, "get_limit": 1000, "use_limit": 1000,
        "validity_type": "relative", "term_days": 30, "use_all_locations": True,
    }, {"x-csrf-token": csrf})
    call("POST", f"/api/v1/coupon-programs/{created['id']}/state", {"state": "active"}, {"x-csrf-token": csrf})
    return created["id"]


to_issue, to_verify = program("发券压测"), program("核销压测")


def issue_line(j):
    ts, nonce, signature, idem, text = signed("/open/v1/coupons", {
        "program_id": to_verify, "customer_id": f"v{j}", "order_id": f"P{j}", "quantity": 100}, f"prep-{j}")
    request = urllib.request.Request(f"{address}/open/v1/coupons", data=text.encode(), method="POST")
    for k, v in {"content-type": "application/json", "x-kaquan-key": key["key_id"], "x-kaquan-timestamp": ts,
                 "x-kaquan-nonce": nonce, "x-kaquan-signature": signature, "idempotency-key": idem}.items():
        request.add_header(k, v)
    with urllib.request.urlopen(request) as response:
        return [c["code"] for c in json.loads(response.read())["coupons"]]


with concurrent.futures.ThreadPoolExecutor(8) as pool:
    lines = list(pool.map(issue_line, range((n + 99) // 100)))
# Verified in blocks of 64 holders (the first coupon of each of the 64,
# then the second, …; then the next 64 holders): requests in flight
# together are of different customers, as at real counters, instead of 64
# of one customer's coupons queueing on that holder's use count; and like
# the redemptions' codes, the coupons verified together lie close together.
codes = [block[h][k] for b in range(0, len(lines), 64) for block in [lines[b:b + 64]]
         for k in range(100) for h in range(len(block)) if k < len(block[h])][:n]

ts = str(int(time.time()))
with open(f"{work}/redeem.txt", "w") as out:
    gift_codes = [line.split(",")[0] for line in open(f"{work}/codes.csv", encoding="utf-8").read().splitlines()]
    for i, code in enumerate(gift_codes[:n]):
        out.write("\t".join(signed("/open/v1/redemptions", {"customer_id": f"c{i % 1000}", "code": code}, f"r-{i}", ts)) + "\n")
with open(f"{work}/issue.txt", "w") as out:
    for i in range(n):
        out.write("\t".join(signed("/open/v1/coupons", {"program_id": to_issue, "customer_id": f"i{i}", "order_id": f"B{i}"}, f"i-{i}", ts)) + "\n")
with open(f"{work}/verify.txt", "w") as out:
    for i, code in enumerate(codes):
        out.write("\t".join(signed("/open/v1/coupon-verifications", {"code": code, "order_amount_fen": 12000, "order_ref": f"V{i}"}, f"v-{i}", ts)) + "\n")
print(f"prepared {n} requests of each kind", file=sys.stderr)
