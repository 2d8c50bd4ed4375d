"""Prepares bench/ecards.sh: a 虚拟商品 listed as pdd-bench and N pre-signed
paid orders (one line, one card each, every order id different).

Usage: ecards_prepare.py ADDRESS WORK N (WORK holds key.json). Prints the
product's id."""
import hashlib, hmac, http.cookiejar, json, os, sys, time, urllib.request

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


def signed(path, body, ts):
    text = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    nonce = os.urandom(16).hex()
    canonical = f"POST\n{path}\n\n{ts}\n{nonce}\n{hashlib.sha256(text.encode()).hexdigest()}"
    signature = hmac.new(key["secret"].encode(), canonical.encode(), hashlib.sha256).hexdigest()
    return ts, nonce, signature, "-", text


csrf = call("POST", "/api/v1/sessions", {"username": "boss", "password": "bench1234"})["csrf_token"]
product = call("POST", "/api/v1/ecard-products", {
    "name": "压测卡", "face_value_yuan": "10", "delivery_form": "code",
    "instructions": "压测", "valid_days": 30,
    "listings": [{"marketplace": "pinduoduo", "product_id": "pdd-bench", "sku_id": ""}],
}, {"x-csrf-token": csrf})
ts = str(int(time.time()))
with open(f"{work}/paid.txt", "w") as out:
    for i in range(n):
        body = {"marketplace": "pinduoduo", "order_id": f"B{i}",
                "lines": [{"line_id": "1", "product_id": "pdd-bench", "quantity": 1}]}
        out.write("\t".join(signed("/open/v1/marketplace-orders", body, ts)) + "\n")
print(product["id"])
