-- Migration 7: stored value (seed 000): 礼品卡设置, redemption codes,
-- customers, the append-only double-entry ledger, open-API keys, nonces
-- and idempotency keys.

CREATE TABLE giftcard_settings (
    merchant_id BIGINT PRIMARY KEY REFERENCES merchants(id),
    enabled BOOLEAN NOT NULL,
    centre_entry BOOLEAN NOT NULL,
    attempt_limit BIGINT NOT NULL CHECK (attempt_limit BETWEEN 1 AND 1000),
    centre_name TEXT NOT NULL,
    share_title TEXT NOT NULL,
    description TEXT NOT NULL,
    phone_login BOOLEAN NOT NULL,
    distribution BOOLEAN NOT NULL,
    goods_display TEXT NOT NULL CHECK (goods_display IN ('list', 'grid'))
);

CREATE TABLE giftcard_images (
    merchant_id BIGINT NOT NULL REFERENCES merchants(id),
    slot TEXT NOT NULL CHECK (slot IN ('share', 'cover', 'banner')),
    content_type TEXT NOT NULL,
    bytes BYTEA NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (merchant_id, slot)
);

CREATE TABLE code_templates (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    merchant_id BIGINT NOT NULL REFERENCES merchants(id),
    kind TEXT NOT NULL CHECK (kind IN ('online', 'offline')),
    name TEXT NOT NULL,
    face_value_fen BIGINT NOT NULL CHECK (face_value_fen > 0),
    valid_from BIGINT,
    valid_until BIGINT,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    deleted_at BIGINT
);
CREATE INDEX code_templates_merchant ON code_templates (merchant_id, kind, id);

CREATE TABLE customers (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    merchant_id BIGINT NOT NULL REFERENCES merchants(id),
    external_id TEXT,
    phone TEXT,
    password_hash TEXT,
    nickname TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL
);
-- Not partial indexes: SQLite re-prepares a statement whose bound value decides
-- whether a partial index applies; unique indexes treat NULLs as distinct anyway.
CREATE UNIQUE INDEX customers_external ON customers (merchant_id, external_id);
CREATE UNIQUE INDEX customers_phone ON customers (merchant_id, phone);

CREATE TABLE giftcard_products (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    merchant_id BIGINT NOT NULL REFERENCES merchants(id),
    name TEXT NOT NULL,
    template_id BIGINT NOT NULL REFERENCES code_templates(id),
    price_fen BIGINT NOT NULL CHECK (price_fen >= 0),
    on_shelf BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE mall_orders (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    merchant_id BIGINT NOT NULL REFERENCES merchants(id),
    order_id TEXT NOT NULL,
    product_id BIGINT NOT NULL REFERENCES giftcard_products(id),
    product_name TEXT NOT NULL,
    quantity BIGINT NOT NULL CHECK (quantity > 0),
    customer_id BIGINT REFERENCES customers(id),
    created_at BIGINT NOT NULL,
    UNIQUE (merchant_id, order_id)
);
CREATE INDEX mall_orders_customer ON mall_orders (customer_id, id);

CREATE TABLE codes (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    merchant_id BIGINT NOT NULL REFERENCES merchants(id),
    template_id BIGINT NOT NULL REFERENCES code_templates(id),
    digest BYTEA NOT NULL,
    sealed BYTEA,
    key_version INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('unused', 'used', 'voided')),
    face_value_fen BIGINT NOT NULL CHECK (face_value_fen > 0),
    valid_from BIGINT,
    valid_until BIGINT,
    mall_order_id BIGINT REFERENCES mall_orders(id),
    customer_id BIGINT REFERENCES customers(id),
    redeemed_at BIGINT,
    issued_at BIGINT NOT NULL,
    CHECK ((state = 'used') = (customer_id IS NOT NULL AND redeemed_at IS NOT NULL))
);
-- One row per code, whatever the concurrency; also the redeem lookup.
CREATE UNIQUE INDEX codes_digest ON codes (merchant_id, digest);
-- Not on state: a redemption then changes no index entry of this table.
CREATE INDEX codes_template ON codes (template_id, id);
CREATE INDEX codes_mall_order ON codes (mall_order_id);

-- Customer accounts cache their balance (floor zero); the merchant-side
-- counter accounts do not (they are summed when asked), so no row is hot.
CREATE TABLE ledger_accounts (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    merchant_id BIGINT NOT NULL REFERENCES merchants(id),
    kind TEXT NOT NULL CHECK (kind IN ('customer', 'giftcard_issued', 'sales', 'adjustments')),
    customer_id BIGINT REFERENCES customers(id),
    asset TEXT NOT NULL,
    balance BIGINT,
    CHECK ((kind = 'customer') = (customer_id IS NOT NULL)),
    CHECK ((kind = 'customer') = (balance IS NOT NULL)),
    CHECK (balance IS NULL OR balance >= 0)
);
CREATE UNIQUE INDEX ledger_accounts_customer ON ledger_accounts (customer_id, asset);
CREATE UNIQUE INDEX ledger_accounts_merchant ON ledger_accounts (merchant_id, kind, asset) WHERE customer_id IS NULL;

CREATE TABLE ledger_transactions (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    merchant_id BIGINT NOT NULL REFERENCES merchants(id),
    customer_id BIGINT NOT NULL REFERENCES customers(id),
    kind TEXT NOT NULL CHECK (kind IN ('redeem', 'spend', 'refund', 'adjust')),
    amount_fen BIGINT NOT NULL CHECK (amount_fen <> 0),
    balance_after_fen BIGINT NOT NULL CHECK (balance_after_fen >= 0),
    reference TEXT NOT NULL,
    reason TEXT NOT NULL,
    channel TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX ledger_transactions_customer ON ledger_transactions (customer_id, id);

CREATE TABLE ledger_postings (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    transaction_id BIGINT NOT NULL REFERENCES ledger_transactions(id),
    account_id BIGINT NOT NULL REFERENCES ledger_accounts(id),
    asset TEXT NOT NULL,
    amount BIGINT NOT NULL CHECK (amount <> 0)
);
CREATE INDEX ledger_postings_transaction ON ledger_postings (transaction_id);
-- No index by account or by reference: every redemption would pay for them
-- in random page writes; `verify` sums postings with one grouped scan instead.

-- Append-only: a correction is a new, reversing transaction.
CREATE FUNCTION ledger_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the ledger is append-only';
END;
$$;
CREATE TRIGGER ledger_transactions_append_only BEFORE UPDATE OR DELETE ON ledger_transactions
FOR EACH ROW EXECUTE FUNCTION ledger_is_append_only();
CREATE TRIGGER ledger_postings_append_only BEFORE UPDATE OR DELETE ON ledger_postings
FOR EACH ROW EXECUTE FUNCTION ledger_is_append_only();

-- How much of each spend may still be refunded (the one guarded counter).
CREATE TABLE spend_refunds (
    transaction_id BIGINT PRIMARY KEY REFERENCES ledger_transactions(id),
    merchant_id BIGINT NOT NULL,
    customer_id BIGINT NOT NULL,
    amount_fen BIGINT NOT NULL CHECK (amount_fen > 0),
    refunded_fen BIGINT NOT NULL DEFAULT 0,
    CHECK (refunded_fen BETWEEN 0 AND amount_fen)
);

CREATE TABLE idempotency_keys (
    merchant_id BIGINT NOT NULL,
    key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    transaction_id BIGINT,
    mall_order_id BIGINT,
    refusal TEXT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (merchant_id, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

CREATE TABLE api_keys (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    merchant_id BIGINT NOT NULL REFERENCES merchants(id),
    key_id TEXT NOT NULL UNIQUE,
    label TEXT NOT NULL,
    secret_sealed BYTEA NOT NULL,
    key_version INTEGER NOT NULL,
    active BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);

CREATE TABLE api_nonces (
    key_id TEXT NOT NULL,
    nonce TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (key_id, nonce)
);
CREATE INDEX api_nonces_created ON api_nonces (created_at);

CREATE TABLE login_links (
    nonce TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);

CREATE TABLE customer_sessions (
    token_hash TEXT PRIMARY KEY,
    merchant_id BIGINT NOT NULL REFERENCES merchants(id),
    customer_id BIGINT NOT NULL REFERENCES customers(id),
    csrf_token TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);

INSERT INTO ledger_accounts (merchant_id, kind, asset)
SELECT merchants.id, kinds.kind, 'fen'
FROM merchants, (SELECT 'giftcard_issued' AS kind UNION ALL SELECT 'sales' UNION ALL SELECT 'adjustments') AS kinds;

UPDATE roles SET permissions = permissions || ',api_keys.manage,balances.adjust,balances.view,giftcards.manage'
WHERE name = 'owner';
