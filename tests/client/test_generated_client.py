"""Two integrations through a Python client generated from the served
OpenAPI document with openapi-python-client (a maintained generator from
PyPI):

- the mall's flow on the signed open API: a paid order issues codes, one is
  redeemed, part of the balance is spent and part of the spend refunded,
  and the balance and statement agree. The only hand-written part is the
  signing hook, as an integrator writes it;
- a back-office script on the console API: it signs in (session cookie and
  CSRF token), adds goods, activates and links a batch, downloads the cards
  with their passwords as xlsx (read back with openpyxl), checks a card and
  hands its goods over at the desk, and finds the order.

Run by scripts/client-test, which starts the server (SQLite or PostgreSQL)
and says where: KAQUAN_URL, KAQUAN_USERNAME, KAQUAN_PASSWORD, KAQUAN_CLIENT_DIR
(where the generated package lives).
"""

import importlib
import os
from http.cookies import SimpleCookie
import sys
import uuid
from pathlib import Path

import openpyxl
import requests

BASE = os.environ["KAQUAN_URL"].rstrip("/")
sys.path.insert(0, os.environ["KAQUAN_CLIENT_DIR"])
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from kaquan_signing import signature_headers  # noqa: E402

kaquan_client = importlib.import_module("kaquan_client")
from kaquan_client.api.default import (  # noqa: E402
    activate_cards,
    check_pickup_card,
    create_goods,
    create_pickup,
    create_session,
    export_cards,
    get_me,
    link_card_goods,
    list_batches,
    list_orders,
    create_order_codes,
    create_redemption,
    create_refund,
    create_spend,
    get_customer_balance,
    list_customer_statement_signed,
)
from kaquan_client.models import (  # noqa: E402
    CardFilterDto,
    CardOpRequest,
    CheckCardRequest,
    GoodsRequest,
    LinkGoodsRequest,
    PickupForm,
    SignInRequest,
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


def test_a_back_office_script_through_the_generated_client():
    anonymous = kaquan_client.Client(base_url=BASE)
    signed_in = create_session.sync_detailed(
        client=anonymous,
        body=SignInRequest(
            username=os.environ["KAQUAN_USERNAME"], password=os.environ["KAQUAN_PASSWORD"]
        ),
    )
    assert signed_in.status_code == 200, signed_in.content
    csrf = signed_in.parsed.csrf_token
    cookie = SimpleCookie(signed_in.headers["set-cookie"])
    client = kaquan_client.Client(
        base_url=BASE, cookies={name: morsel.value for name, morsel in cookie.items()}
    )
    me = get_me.sync_detailed(client=client)
    assert me.status_code == 200, me.content
    assert "cards.export_secrets" in me.parsed.permissions

    goods = create_goods.sync_detailed(
        client=client,
        body=GoodsRequest(name="五常大米礼盒 5kg", sku=f"RICE-{uuid.uuid4().hex[:6]}", on_shelf=True),
        x_csrf_token=csrf,
    )
    assert goods.status_code == 201, goods.content
    batches = list_batches.sync_detailed(client=client)
    assert batches.status_code == 200, batches.content
    batch_id = batches.parsed.items[-1].id
    mine = CardFilterDto(batch_id=batch_id)
    activated = activate_cards.sync_detailed(
        client=client, body=CardOpRequest(filter_=mine), x_csrf_token=csrf
    )
    assert activated.status_code == 200, activated.content
    linked = link_card_goods.sync_detailed(
        client=client,
        body=LinkGoodsRequest(filter_=mine, goods_ids=[goods.parsed.id], mode="replace"),
        x_csrf_token=csrf,
    )
    assert linked.status_code == 200, linked.content
    assert linked.parsed.n_cards > 0

    exported = export_cards.sync_detailed(
        client=client, batch_id=str(batch_id), format_="xlsx", with_secrets="true"
    )
    assert exported.status_code == 200, exported.content
    rows = list(openpyxl.load_workbook(exported.parsed.payload).active.iter_rows(values_only=True))
    header = list(rows[0])
    number, password = (rows[1][header.index("卡号")], rows[1][header.index("密码")])
    assert number and password

    checked = check_pickup_card.sync_detailed(
        client=client,
        body=CheckCardRequest(number=str(number), password=str(password)),
        x_csrf_token=csrf,
    )
    assert checked.status_code == 200, checked.content
    assert [g.id for g in checked.parsed.goods] == [goods.parsed.id]
    handed_over = create_pickup.sync_detailed(
        client=client,
        body=PickupForm(
            channel="store", number=str(number), password=str(password), goods_id=goods.parsed.id
        ),
        x_csrf_token=csrf,
    )
    assert handed_over.status_code == 201, handed_over.content
    assert handed_over.parsed.status == "picked_up"

    orders = list_orders.sync_detailed(client=client, card_number=str(number))
    assert orders.status_code == 200, orders.content
    assert [o.id for o in orders.parsed.items] == [handed_over.parsed.order_id]
    assert orders.parsed.items[0].goods_name == "五常大米礼盒 5kg"
