"""The mall's flow through a Python client generated from the served
OpenAPI document with openapi-python-client (a maintained generator from
PyPI): a paid order issues codes, one is redeemed, part of the balance is
spent and part of the spend refunded, and the balance and statement agree.
The only hand-written part is the signing hook, as an integrator writes it.

Run by scripts/client-test, which starts the server (SQLite or PostgreSQL)
and says where: KAQUAN_URL, KAQUAN_USERNAME, KAQUAN_PASSWORD, KAQUAN_CLIENT_DIR
(where the generated package lives).
"""

import importlib
import os
import sys
import uuid
from pathlib import Path

import requests

BASE = os.environ["KAQUAN_URL"].rstrip("/")
sys.path.insert(0, os.environ["KAQUAN_CLIENT_DIR"])
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from kaquan_signing import signature_headers  # noqa: E402

kaquan_client = importlib.import_module("kaquan_client")
from kaquan_client.api.default import (  # noqa: E402
    create_order_codes,
    create_redemption,
    create_refund,
    create_spend,
    get_customer_balance,
    list_customer_statement_signed,
)
from kaquan_client.models import (  # noqa: E402
    IssueOrderRequest,
    RedeemRequest,
    RefundRequest,
    SpendRequest,
)


def console():
    """A signed-in console session, to set up what the mall sells."""
    session = requests.Session()
    response = session.post(
        f"{BASE}/api/v1/sessions",
        json={"username": os.environ["KAQUAN_USERNAME"], "password": os.environ["KAQUAN_PASSWORD"]},
        timeout=30,
    )
    response.raise_for_status()
    session.headers["X-CSRF-Token"] = response.json()["csrf_token"]
    return session


def signing_hook(key_id, secret):
    """Signs every request as the README says: HMAC-SHA256 over
    METHOD, PATH, QUERY, TIMESTAMP, NONCE and the body's SHA-256."""

    def sign(request):
        body = request.read() if hasattr(request, "read") else request.content
        request.headers.update(
            signature_headers(
                key_id,
                secret,
                request.method,
                request.url.raw_path.decode().split("?")[0],
                request.url.query.decode(),
                body,
            )
        )

    return sign


def test_the_malls_flow_through_the_generated_client():
    staff = console()
    template = staff.post(
        f"{BASE}/api/v1/code-templates",
        json={"kind": "online", "name": "生成客户端", "face_value_fen": 10000},
        timeout=30,
    )
    assert template.status_code == 201, template.text
    product = staff.post(
        f"{BASE}/api/v1/giftcard-products",
        json={"name": "一百元礼品卡", "price_fen": 9500, "template_id": template.json()["id"], "on_shelf": True},
        timeout=30,
    )
    assert product.status_code == 201, product.text
    key = staff.post(f"{BASE}/api/v1/api-keys", json={"label": "generated client"}, timeout=30)
    assert key.status_code == 201, key.text
    key = key.json()

    client = kaquan_client.Client(
        base_url=BASE,
        httpx_args={"event_hooks": {"request": [signing_hook(key["key_id"], key["secret"])]}},
    )
    customer = f"u-{uuid.uuid4().hex[:12]}"
    order = create_order_codes.sync_detailed(
        client=client,
        idempotency_key=str(uuid.uuid4()),
        body=IssueOrderRequest(
            order_id=f"M{uuid.uuid4().hex[:10]}",
            product_id=product.json()["id"],
            quantity=2,
            customer_id=customer,
        ),
    )
    assert order.status_code == 201, order.content
    codes = order.parsed.codes
    assert len(codes) == 2

    redeemed = create_redemption.sync_detailed(
        client=client,
        idempotency_key=str(uuid.uuid4()),
        body=RedeemRequest(customer_id=customer, code=codes[0].code),
    )
    assert redeemed.status_code == 201, redeemed.content
    assert redeemed.parsed.balance_after_fen == 10000

    spent = create_spend.sync_detailed(
        client=client,
        idempotency_key=str(uuid.uuid4()),
        body=SpendRequest(customer_id=customer, amount_fen=2500, reference="checkout-1"),
    )
    assert spent.status_code == 201, spent.content
    assert spent.parsed.balance_after_fen == 7500

    refunded = create_refund.sync_detailed(
        client=client,
        idempotency_key=str(uuid.uuid4()),
        body=RefundRequest(spend_id=spent.parsed.transaction_id, amount_fen=500, reason="退货"),
    )
    assert refunded.status_code == 201, refunded.content
    assert refunded.parsed.balance_after_fen == 8000

    balance = get_customer_balance.sync_detailed(client=client, customer_id=customer)
    assert balance.status_code == 200, balance.content
    assert balance.parsed.balance_fen == 8000

    statement = list_customer_statement_signed.sync_detailed(
        client=client, customer_id=customer, page=1, page_size=10
    )
    assert statement.status_code == 200, statement.content
    assert [t.kind for t in statement.parsed.items] == ["refund", "spend", "redeem"]

    # A wrong signature is refused in the envelope, through the same client.
    forged = kaquan_client.Client(
        base_url=BASE,
        httpx_args={"event_hooks": {"request": [signing_hook(key["key_id"], "not-the-secret")]}},
    )
    refused = get_customer_balance.sync_detailed(client=forged, customer_id=customer)
    assert refused.status_code == 401
