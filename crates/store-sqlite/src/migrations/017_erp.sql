-- Migration 17: ERP 参数 (旺店通) and the pushes of pickup orders.
--
-- A push is planned in the transaction that records the order's event and
-- sent later, leased for each try (lease_until); it reads the order as it
-- is when sent.
CREATE TABLE erp_settings (
    merchant_id INTEGER PRIMARY KEY REFERENCES merchants(id),
    enabled INTEGER NOT NULL,
    sid TEXT NOT NULL,
    appkey TEXT NOT NULL,
    -- The appsecret, sealed with the merchant's key.
    secret_sealed BLOB,
    key_version INTEGER NOT NULL,
    shop_no TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE erp_pushes (
    id INTEGER PRIMARY KEY,
    merchant_id INTEGER NOT NULL,
    order_id INTEGER NOT NULL,
    reason TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'pushed', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER,
    lease_until INTEGER NOT NULL DEFAULT 0,
    result_code TEXT NOT NULL DEFAULT '',
    result_message TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    pushed_at INTEGER
);
CREATE INDEX erp_pushes_due ON erp_pushes (next_attempt_at) WHERE state = 'pending';
CREATE INDEX erp_pushes_by_merchant ON erp_pushes (merchant_id, id);
