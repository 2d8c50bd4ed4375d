-- Migration 29: 电子卡密 (issue 21, seed 004).
--
-- E-card products sold on marketplaces, the sealed secrets in stock, the
-- marketplace orders with their lines, and the cards delivered to them. A
-- delivered card's status (未核销 / 已核销 / 已过期 / 已退款) is derived from
-- its facts (verified_at, refunded_at, valid_until), never stored.
CREATE TABLE ecard_products (
    id BIGSERIAL PRIMARY KEY,
    merchant_id BIGINT NOT NULL REFERENCES merchants(id),
    name TEXT NOT NULL,
    face_value_fen BIGINT NOT NULL CHECK (face_value_fen >= 0),
    delivery_form TEXT NOT NULL CHECK (delivery_form IN ('number_password', 'code', 'link', 'qr_image')),
    instructions TEXT NOT NULL,
    valid_until BIGINT,
    valid_days BIGINT CHECK (valid_days > 0),
    own_code BOOLEAN NOT NULL DEFAULT false,
    low_stock_threshold BIGINT NOT NULL DEFAULT 0 CHECK (low_stock_threshold >= 0),
    -- 过期预警: days before a card's end its unused holder is reminded (0: never).
    remind_days BIGINT NOT NULL DEFAULT 0 CHECK (remind_days >= 0),
    -- An unused card past its end raises ecard.expired for the merchant's refund.
    refund_expired BOOLEAN NOT NULL DEFAULT false,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CHECK ((valid_until IS NULL) <> (valid_days IS NULL))
);
CREATE INDEX ecard_products_merchant ON ecard_products (merchant_id, id);

-- The marketplace listings a product is sold under: a paid line names one.
CREATE TABLE ecard_listings (
    id BIGSERIAL PRIMARY KEY,
    merchant_id BIGINT NOT NULL REFERENCES merchants(id),
    product_id BIGINT NOT NULL REFERENCES ecard_products(id),
    marketplace TEXT NOT NULL,
    listing_id TEXT NOT NULL,
    sku_id TEXT NOT NULL DEFAULT '',
    UNIQUE (merchant_id, marketplace, listing_id, sku_id)
);
CREATE INDEX ecard_listings_product ON ecard_listings (product_id);

-- Each import (or generation) of stock: who, when, and the file's digest.
CREATE TABLE ecard_stock_imports (
    id BIGSERIAL PRIMARY KEY,
    merchant_id BIGINT NOT NULL REFERENCES merchants(id),
    product_id BIGINT NOT NULL REFERENCES ecard_products(id),
    file_name TEXT NOT NULL,
    file_digest TEXT NOT NULL,
    n_rows BIGINT NOT NULL,
    n_imported BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- The secrets: a digest of the card's identity (its number, else the
-- secret) for de-duplication and third parties' callbacks, a sealed copy
-- (number and secret), and the last four characters for lists.
CREATE TABLE ecard_stock (
    id BIGSERIAL PRIMARY KEY,
    merchant_id BIGINT NOT NULL,
    product_id BIGINT NOT NULL,
    import_id BIGINT NOT NULL,
    key_version INTEGER NOT NULL,
    digest BYTEA NOT NULL,
    sealed BYTEA NOT NULL,
    tail TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'available' CHECK (state IN ('available', 'delivered', 'voided')),
    created_at BIGINT NOT NULL,
    UNIQUE (merchant_id, digest)
);
CREATE INDEX ecard_stock_available ON ecard_stock (product_id, id) WHERE state = 'available';
CREATE INDEX ecard_stock_product ON ecard_stock (product_id, state);

-- Marketplace orders, one per (marketplace, order id); the delivery link's
-- token is kept as its SHA-256 only.
CREATE TABLE ecard_orders (
    id BIGSERIAL PRIMARY KEY,
    merchant_id BIGINT NOT NULL REFERENCES merchants(id),
    marketplace TEXT NOT NULL,
    order_id TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    buyer_phone TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    refunded_at BIGINT,
    UNIQUE (merchant_id, marketplace, order_id)
);
CREATE INDEX ecard_orders_merchant ON ecard_orders (merchant_id, id);

-- An order's lines, unique on (order, line id): a repeated paid event finds
-- its line, a refund that came first leaves the line refunded before paid.
CREATE TABLE ecard_order_lines (
    id BIGSERIAL PRIMARY KEY,
    merchant_id BIGINT NOT NULL,
    order_ref BIGINT NOT NULL REFERENCES ecard_orders(id),
    line_id TEXT NOT NULL,
    listing_id TEXT NOT NULL DEFAULT '',
    sku_id TEXT NOT NULL DEFAULT '',
    product_id BIGINT REFERENCES ecard_products(id),
    quantity BIGINT NOT NULL DEFAULT 0 CHECK (quantity >= 0),
    paid_at BIGINT,
    delivered_at BIGINT,
    refunded_at BIGINT,
    UNIQUE (order_ref, line_id)
);
CREATE INDEX ecard_lines_waiting ON ecard_order_lines (merchant_id, id)
    WHERE paid_at IS NOT NULL AND delivered_at IS NULL AND refunded_at IS NULL;

-- The cards delivered: one row per secret per line. A secret is live in at
-- most one delivery (a refunded, unseen one may go to another order).
CREATE TABLE ecard_deliveries (
    id BIGSERIAL PRIMARY KEY,
    merchant_id BIGINT NOT NULL,
    order_ref BIGINT NOT NULL REFERENCES ecard_orders(id),
    line_ref BIGINT NOT NULL REFERENCES ecard_order_lines(id),
    product_id BIGINT NOT NULL,
    stock_id BIGINT NOT NULL REFERENCES ecard_stock(id),
    key_version INTEGER NOT NULL,
    delivered_at BIGINT NOT NULL,
    valid_until BIGINT NOT NULL,
    code_digest BYTEA,
    code_sealed BYTEA,
    verified_at BIGINT,
    verified_way TEXT CHECK (verified_way IN ('callback', 'own_code', 'manual')),
    verified_by TEXT,
    verify_note TEXT NOT NULL DEFAULT '',
    refunded_at BIGINT,
    revealed_at BIGINT,
    reminded_at BIGINT,
    -- When an unused card's end was noticed (ecard.expired, once).
    expiry_noted_at BIGINT,
    CHECK ((verified_at IS NULL) = (verified_way IS NULL)),
    UNIQUE (merchant_id, code_digest)
);
CREATE UNIQUE INDEX ecard_deliveries_live_stock ON ecard_deliveries (stock_id) WHERE refunded_at IS NULL;
CREATE INDEX ecard_deliveries_order ON ecard_deliveries (order_ref);
CREATE INDEX ecard_deliveries_line ON ecard_deliveries (line_ref);
CREATE INDEX ecard_deliveries_product ON ecard_deliveries (product_id, delivered_at);

-- A manual mark's proof picture (the customer's screenshot).
CREATE TABLE ecard_proofs (
    delivery_id BIGINT PRIMARY KEY REFERENCES ecard_deliveries(id),
    merchant_id BIGINT NOT NULL,
    content_type TEXT NOT NULL,
    bytes BYTEA NOT NULL
);

-- The owner role gains 电子卡密's permissions; 核销员 verify own codes
-- through coupons.verify already.
UPDATE roles SET permissions = permissions || ',ecards.manage,ecards.reveal'
WHERE name = 'owner';

-- 通知设置 H: the delivery link to the buyer; I: 过期预警 of an unused card;
ALTER TABLE sms_settings ADD COLUMN notify_buyer_on_ecard BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE sms_settings ADD COLUMN template_ecard TEXT NOT NULL DEFAULT '';
ALTER TABLE sms_settings ADD COLUMN notify_buyer_on_ecard_expiry BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE sms_settings ADD COLUMN template_ecard_expiring TEXT NOT NULL DEFAULT '';
-- J: 低库存预警 to the admin phones.
ALTER TABLE sms_settings ADD COLUMN notify_admin_on_low_stock BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE sms_settings ADD COLUMN template_low_stock TEXT NOT NULL DEFAULT '';
-- The cards still live (unused, not refunded, not past their end):
-- what the reminder and expiry sweep reads.
CREATE INDEX ecard_deliveries_live ON ecard_deliveries (valid_until)
    WHERE verified_at IS NULL AND refunded_at IS NULL AND expiry_noted_at IS NULL;
