-- Migration 13: ERP 参数 (旺店通) and the pushes of pickup orders.
--
-- A push is planned in the transaction that records the order's event and
-- sent later, leased for each try (lease_until); it reads the order as it
-- is when sent.
CREATE TABLE erp_settings (
    merchant_id BIGINT PRIMARY KEY REFERENCES merchants(id),
    enabled BOOLEAN NOT NULL,
    sid TEXT NOT NULL,
    appkey TEXT NOT NULL,
    -- The appsecret, sealed with the merchant's key.
    secret_sealed BYTEA,
    key_version INTEGER NOT NULL,
    shop_no TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE erp_pushes (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    merchant_id BIGINT NOT NULL,
    order_id BIGINT NOT NULL,
    reason TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'pushed', 'failed')),
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT,
    lease_until BIGINT NOT NULL DEFAULT 0,
    result_code TEXT NOT NULL DEFAULT '',
    result_message TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    pushed_at BIGINT
);
CREATE INDEX erp_pushes_due ON erp_pushes (next_attempt_at) WHERE state = 'pending';
CREATE INDEX erp_pushes_by_merchant ON erp_pushes (merchant_id, id);
