"""事件推送 checked by the official Standard Webhooks verifier (PyPI
`standardwebhooks`), not by kaquan's own code: a receiver on 127.0.0.1
verifies every delivery of a running kaquan with the endpoint's secret, and
after a rotation with the old and with the new secret alike.

Run by scripts/client-test, which starts the server with
KAQUAN__WEBHOOKS__ALLOW_PRIVATE_ADDRESSES=true so it may reach 127.0.0.1.
"""

import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

BASE = os.environ["KAQUAN_URL"].rstrip("/")


class Received:
    def __init__(self):
        self.lock = threading.Lock()
        self.requests = []  # (headers, raw body)

    def add(self, headers, body):
        with self.lock:
            self.requests.append((headers, body))

    def wait_for(self, n, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self.lock:
                if len(self.requests) >= n:
                    return list(self.requests)
            time.sleep(0.05)
        raise AssertionError(f"{len(self.requests)} of {n} deliveries arrived")


def receiver():
    received = Received()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers["content-length"]))
            received.add({k.lower(): v for k, v in self.headers.items()}, body)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, received


def console():
    session = requests.Session()
    response = session.post(
        f"{BASE}/api/v1/sessions",
        json={"username": os.environ["KAQUAN_USERNAME"], "password": os.environ["KAQUAN_PASSWORD"]},
        timeout=30,
    )
    response.raise_for_status()
    session.headers["X-CSRF-Token"] = response.json()["csrf_token"]
    return session


def void_a_new_batch(staff):
    created = staff.post(f"{BASE}/api/v1/batches", json={"name": "推送", "quantity": 2}, timeout=30)
    assert created.status_code == 202, created.text
    batch_id = created.json()["batch_id"]
    for _ in range(200):
        if staff.get(f"{BASE}/api/v1/batches/{batch_id}", timeout=30).json()["state"] == "ready":
            break
        time.sleep(0.05)
    voided = staff.post(f"{BASE}/api/v1/cards/void", json={"filter": {"batch_id": batch_id}}, timeout=30)
    assert voided.status_code == 200, voided.text
    return batch_id


def test_every_delivery_passes_the_official_verifier():
    server, received = receiver()
    staff = console()
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    endpoint = staff.post(
        f"{BASE}/api/v1/webhook-endpoints",
        json={"url": url, "event_types": ["batch.ready", "cards.voided"]},
        timeout=30,
    )
    assert endpoint.status_code == 201, endpoint.text
    old_secret = endpoint.json()["secret"]

    batch_id = void_a_new_batch(staff)
    deliveries = received.wait_for(2)
    bodies = []
    for headers, body in deliveries:
        payload = Webhook(old_secret).verify(body, headers)
        bodies.append(payload)
        assert headers["webhook-id"].startswith("evt_")
    # Deliveries run side by side: their order is not promised.
    by_type = {b["type"]: b for b in bodies}
    assert sorted(by_type) == ["batch.ready", "cards.voided"]
    assert by_type["cards.voided"]["data"]["n_cards"] == 2
    assert by_type["batch.ready"]["data"]["batch_id"] == batch_id
    # A tampered body or another secret fails the same verifier.
    headers, body = next(d for d in deliveries if b'"cards.voided"' in d[1])
    for wrong in [(old_secret, body.replace(b'"n_cards":2', b'"n_cards":3')),
                  ("whsec_" + "A" * 32, body)]:
        try:
            Webhook(wrong[0]).verify(wrong[1], headers)
        except WebhookVerificationError:
            pass
        else:
            raise AssertionError("a forged delivery verified")

    # After a rotation, receivers holding either secret accept the deliveries.
    rotated = staff.post(f"{BASE}/api/v1/webhook-endpoints/{endpoint.json()['id']}/rotate-secret", timeout=30)
    assert rotated.status_code == 200, rotated.text
    new_secret = rotated.json()["secret"]
    void_a_new_batch(staff)
    for headers, body in received.wait_for(4)[2:]:
        assert json.loads(body)["type"] in ("batch.ready", "cards.voided")
        Webhook(new_secret).verify(body, headers)
        Webhook(old_secret).verify(body, headers)
    server.shutdown()
