"""Seeds the large shop of bench/dashboard.sh straight into the database
(the server stopped): CARDS cards of one batch in every state, ORDERS pickup
orders (a few hundred waiting to ship today or tomorrow, the rest shipped),
CUSTOMERS customers holding stored value, LEDGER ledger transactions, and
EVENTS business events over the last 30 days, which the outbox's trigger
tallies as the real writes do.

Usage: dashboard_seed.py sqlite PATH | postgres URL, with the sizes in the
environment. Prints nothing; fails loudly."""
import os, subprocess, sys, time

CARDS = int(os.environ.get("CARDS", 10_000_000))
ORDERS = int(os.environ.get("ORDERS", 1_000_000))
CUSTOMERS = int(os.environ.get("CUSTOMERS", 100_000))
LEDGER = int(os.environ.get("LEDGER", 1_000_000))
EVENTS = int(os.environ.get("EVENTS", 1_000_000))
NOW = int(time.time())
TYPES = ["cards.activated", "pickup_order.created", "pickup_order.shipped", "code.redeemed",
         "coupon.claimed", "coupon.verified", "member.activated", "ecard.delivered", "ecard.verified",
         "balance.changed"]

def statements(dialect):
    digest = "decode(md5(i::text) || md5((i + 1)::text), 'hex')" if dialect == "postgres" else "randomblob(32)"
    pad = "lpad(i::text, 12, '0')" if dialect == "postgres" else "printf('%012d', i)"
    cast = "::text" if dialect == "postgres" else ""
    dispatched = "true" if dialect == "postgres" else "1"
    def rows(n):
        if dialect == "postgres":
            return f"FROM generate_series(1, {n}) AS s(i)"
        return f"FROM (WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {n}) SELECT i FROM s)"
    # Days in the merchant's time zone (UTC+8).
    today = time.strftime("%Y-%m-%d", time.gmtime(NOW + 8 * 3600))
    tomorrow = time.strftime("%Y-%m-%d", time.gmtime(NOW + 86400 + 8 * 3600))
    types = ",".join(f"'{t}'" for t in TYPES)
    type_of = (f"(ARRAY[{types}])[1 + i % {len(TYPES)}]" if dialect == "postgres"
               else f"json_extract('[{types.replace(chr(39), chr(34))}]', '$[' || (i % {len(TYPES)}) || ']')")
    return [
        # The batch the CLI made holds card serial 1; these follow it.
        f"""INSERT INTO cards (merchant_id, batch_id, serial, number, secret_digest, key_version, state,
              face_value_fen, activated_at, used_at, created_at)
            SELECT 1, 1, i + 1, 'B' || {pad}, {digest}, 1,
              CASE WHEN i % 10 < 3 THEN 'used' WHEN i % 10 < 7 THEN 'active' WHEN i % 10 < 9 THEN 'inactive' ELSE 'voided' END,
              38800, CASE WHEN i % 10 < 7 THEN {NOW} - i % 2592000 END, CASE WHEN i % 10 < 3 THEN {NOW} - i % 2592000 END, {NOW} - 2592000
            {rows(CARDS)}""",
        f"""INSERT INTO orders (merchant_id, card_id, card_number, batch_id, goods_id, goods_name, channel, status,
              consignee, phone, province, city, district, address, appointment_date, carrier, tracking_number,
              shipped_at, created_by, created_at)
            SELECT 1, i + 1, 'B' || {pad}, 1, 1, 'bench goods', 'web',
              CASE WHEN i % 2000 = 0 THEN 'pending' ELSE 'shipped' END,
              'Zhang', '13800001234', 'Zhejiang', 'Hangzhou', 'Xihu', '100 Wensan Rd',
              CASE WHEN i % 4000 = 0 THEN '{today}' WHEN i % 2000 = 0 THEN '{tomorrow}' END,
              CASE WHEN i % 2000 = 0 THEN NULL ELSE 'SF' END, CASE WHEN i % 2000 = 0 THEN NULL ELSE 'SF' || i{cast} END,
              CASE WHEN i % 2000 = 0 THEN NULL ELSE {NOW} - i % 2592000 END, 'customer', {NOW} - i % 2592000
            {rows(ORDERS)}""",
        f"""INSERT INTO customers (merchant_id, external_id, created_at)
            SELECT 1, 'c' || i{cast}, {NOW} {rows(CUSTOMERS)}""",
        f"""INSERT INTO ledger_accounts (merchant_id, kind, customer_id, asset, balance)
            SELECT 1, 'customer', c.id, 'fen', 1000 * (c.id % 50) FROM customers c WHERE c.merchant_id = 1""",
        f"""INSERT INTO ledger_transactions (merchant_id, customer_id, kind, amount_fen, balance_after_fen, reference,
              reason, channel, created_by, created_at)
            SELECT 1, (SELECT min(id) FROM customers) + i % {CUSTOMERS}, 'adjust', 100, 100, 'bench', 'bench', 'console', 'bench', {NOW} - i % 2592000
            {rows(LEDGER)}""",
        # Delivered long ago: the outbox has nothing left to fan out.
        f"""INSERT INTO events (merchant_id, event_type, data, created_at, dispatched)
            SELECT 1, {type_of}, '{{"n_cards": 1, "discount_fen": 500, "location_id": null}}', {NOW} - i % 2592000, {dispatched}
            {rows(EVENTS)}""",
    ]

def main():
    dialect, target = sys.argv[1], sys.argv[2]
    if dialect == "sqlite":
        import sqlite3
        db = sqlite3.connect(target)
        db.execute("PRAGMA journal_mode = WAL")
        for sql in statements("sqlite"):
            db.execute(sql)
            db.commit()
        db.execute("ANALYZE")
        db.commit()
    else:
        for sql in statements("postgres") + ["ANALYZE"]:
            subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", target, "-c", sql], check=True)

main()
