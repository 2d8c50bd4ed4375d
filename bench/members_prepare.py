"""Prepares bench/members.sh: a 会员卡 program (9.5折, 1 point per yuan,
stored value), MEMBERS members each topped up with ¥10,000, and N
pre-signed requests of each kind (code redemptions, member payments that
spend ¥1.00 of balance and earn points, consecutive ones of different
members).

Usage: members_prepare.py ADDRESS WORK N MEMBERS (WORK holds key.json and codes.csv)."""
import concurrent.futures, hashlib, hmac, http.cookiejar, json, os, sys, time, urllib.request

address, work, n, members = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
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


def post_signed(path, body, idem):
    ts, nonce, signature, idem, text = signed(path, body, idem)
    request = urllib.request.Request(f"{address}{path}", data=text.encode(), method="POST")
    for k, v in {"content-type": "application/json", "x-kaquan-key": key["key_id"], "x-kaquan-timestamp": ts,
                 "x-kaquan-nonce": nonce, "x-kaquan-signature": signature, "idempotency-key": idem}.items():
        request.add_header(k, v)
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read())


csrf = call("POST", "/api/v1/sessions", {"username": "boss", "password": "bench1234"})["csrf_token"]
program = call("POST", "/api/v1/member-programs", {
    "title": "压测会员卡", "discount_percent_off": 5,
    "points_rule": {"cost_money_unit": 100, "increase_bonus": 1, "cost_bonus_unit": 100, "reduce_money": 100},
    "stored_value": True,
}, {"x-csrf-token": csrf})["id"]


def open_member(j):
    post_signed("/open/v1/members", {"program_id": program, "customer_id": f"m{j}", "phone": f"138{j:08d}"}, f"open-{j}")
    post_signed("/open/v1/recharges", {"customer_id": f"m{j}", "amount_fen": 1000000, "recharge_id": f"R{j}"}, f"top-{j}")


with concurrent.futures.ThreadPoolExecutor(8) as pool:
    list(pool.map(open_member, range(members)))

ts = str(int(time.time()))
with open(f"{work}/redeem.txt", "w") as out:
    gift_codes = [line.split(",")[0] for line in open(f"{work}/codes.csv", encoding="utf-8").read().splitlines()]
    for i, code in enumerate(gift_codes[:n]):
        out.write("\t".join(signed("/open/v1/redemptions", {"customer_id": f"c{i % 1000}", "code": code}, f"r-{i}", ts)) + "\n")
with open(f"{work}/pay.txt", "w") as out:
    for i in range(n):
        body = {"customer_id": f"m{i % members}", "amount_fen": 1000, "balance_fen": 100, "order_id": f"P{i}"}
        out.write("\t".join(signed("/open/v1/payments", body, f"p-{i}", ts)) + "\n")
print(f"prepared {members} members and {n} requests of each kind", file=sys.stderr)
