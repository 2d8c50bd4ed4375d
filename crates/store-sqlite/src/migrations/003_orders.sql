-- Migration 3: pickup orders (提货订单) and failed-attempt counting (兑换防刷).

CREATE TABLE orders (
    id INTEGER PRIMARY KEY,
    merchant_id INTEGER NOT NULL REFERENCES merchants(id),
    -- A snapshot, not a foreign key: orders outlive deleted cards.
    card_id INTEGER NOT NULL,
    card_number TEXT NOT NULL,
    batch_id INTEGER NOT NULL,
    goods_id INTEGER NOT NULL REFERENCES goods(id),
    goods_name TEXT NOT NULL,
    channel TEXT NOT NULL CHECK (channel IN ('web', 'store', 'phone', 'api')),
    status TEXT NOT NULL CHECK (status IN ('pending', 'shipped', 'picked_up', 'cancelled')),
    consignee TEXT NOT NULL DEFAULT '',
    phone TEXT NOT NULL DEFAULT '',
    province TEXT NOT NULL DEFAULT '',
    city TEXT NOT NULL DEFAULT '',
    district TEXT NOT NULL DEFAULT '',
    address TEXT NOT NULL DEFAULT '',
    -- YYYY-MM-DD in the merchant's time zone, when the mode asks for one.
    appointment_date TEXT,
    carrier TEXT,
    tracking_number TEXT,
    shipped_at INTEGER,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    cancelled_at INTEGER,
    CHECK (status <> 'shipped' OR (carrier IS NOT NULL AND tracking_number IS NOT NULL AND shipped_at IS NOT NULL))
);
-- Exactly one live order per card, whatever the concurrency.
CREATE UNIQUE INDEX orders_one_live_per_card ON orders (card_id) WHERE status <> 'cancelled';
CREATE INDEX orders_merchant_status ON orders (merchant_id, status, appointment_date);

CREATE TABLE attempt_failures (
    merchant_id INTEGER NOT NULL,
    key TEXT NOT NULL,
    at INTEGER NOT NULL
);
CREATE INDEX attempt_failures_key ON attempt_failures (merchant_id, key, at);
