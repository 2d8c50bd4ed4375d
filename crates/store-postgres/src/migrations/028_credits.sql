-- Migration 28: 朋友的券 and 券点 (issue 20).
--
-- A coupon program may be shared (朋友的券: a cover, an introduction and a
-- detail text) and may name a program to give one coupon of when one of
-- its coupons is verified (核销后返券).
ALTER TABLE coupon_programs ADD COLUMN shared BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE coupon_programs ADD COLUMN cover_url TEXT NOT NULL DEFAULT '';
ALTER TABLE coupon_programs ADD COLUMN abstract_text TEXT NOT NULL DEFAULT '';
ALTER TABLE coupon_programs ADD COLUMN detail_text TEXT NOT NULL DEFAULT '';
ALTER TABLE coupon_programs ADD COLUMN give_program_id BIGINT REFERENCES coupon_programs(id);
-- A 朋友的券's uploaded cover (封面), as coupon_logos keeps logos.
CREATE TABLE coupon_covers (
    program_id BIGINT PRIMARY KEY REFERENCES coupon_programs(id),
    merchant_id BIGINT NOT NULL REFERENCES merchants(id),
    content_type TEXT NOT NULL,
    bytes BYTEA NOT NULL,
    updated_at BIGINT NOT NULL
);
-- When an expired shared program's unused stock gave its credits back.
ALTER TABLE coupon_programs ADD COLUMN stock_returned_at BIGINT;

-- Credits are the ledger's third asset, in tenths of a 券点. Their holder
-- is a merchant, so they have tables of their own under the customer
-- ledger's rules: the holder accounts (free, paid) cache a balance with a
-- floor of zero; the counter accounts (granted, sold, stock) are summed;
-- transactions and postings are append-only and every transaction's two
-- postings sum to zero (kaquan verify).
CREATE TABLE credit_accounts (
    id BIGSERIAL PRIMARY KEY,
    merchant_id BIGINT NOT NULL REFERENCES merchants(id),
    kind TEXT NOT NULL CHECK (kind IN ('free', 'paid', 'granted', 'sold', 'stock')),
    balance BIGINT,
    CHECK ((kind IN ('free', 'paid')) = (balance IS NOT NULL)),
    CHECK (balance IS NULL OR balance >= 0),
    UNIQUE (merchant_id, kind)
);

CREATE TABLE credit_purchases (
    id BIGSERIAL PRIMARY KEY,
    merchant_id BIGINT NOT NULL REFERENCES merchants(id),
    credits BIGINT NOT NULL CHECK (credits > 0),
    amount_fen BIGINT NOT NULL CHECK (amount_fen > 0),
    state TEXT NOT NULL CHECK (state IN ('requested', 'confirmed', 'cancelled')),
    requested_by TEXT NOT NULL,
    requested_at BIGINT NOT NULL,
    decided_by TEXT,
    decided_at BIGINT,
    CHECK ((state = 'requested') = (decided_at IS NULL))
);
CREATE INDEX credit_purchases_merchant ON credit_purchases (merchant_id, id);
CREATE INDEX credit_purchases_requested ON credit_purchases (id) WHERE state = 'requested';

CREATE TABLE coupon_stock_purchases (
    id BIGSERIAL PRIMARY KEY,
    merchant_id BIGINT NOT NULL REFERENCES merchants(id),
    program_id BIGINT NOT NULL REFERENCES coupon_programs(id),
    units BIGINT NOT NULL CHECK (units > 0),
    unit_price_tenths BIGINT NOT NULL CHECK (unit_price_tenths > 0),
    free_tenths BIGINT NOT NULL CHECK (free_tenths >= 0),
    paid_tenths BIGINT NOT NULL CHECK (paid_tenths >= 0),
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    CHECK (free_tenths + paid_tenths = units * unit_price_tenths)
);
CREATE INDEX coupon_stock_purchases_program ON coupon_stock_purchases (program_id, id);

CREATE TABLE credit_transactions (
    id BIGSERIAL PRIMARY KEY,
    merchant_id BIGINT NOT NULL REFERENCES merchants(id),
    kind TEXT NOT NULL CHECK (kind IN ('grant', 'purchase', 'buy_stock', 'return_stock')),
    holder TEXT NOT NULL CHECK (holder IN ('free', 'paid')),
    amount_tenths BIGINT NOT NULL CHECK (amount_tenths <> 0),
    balance_after_tenths BIGINT NOT NULL CHECK (balance_after_tenths >= 0),
    program_id BIGINT REFERENCES coupon_programs(id),
    purchase_id BIGINT REFERENCES credit_purchases(id),
    stock_purchase_id BIGINT REFERENCES coupon_stock_purchases(id),
    reason TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    CHECK (kind <> 'grant' OR holder = 'free'),
    CHECK (kind <> 'purchase' OR (holder = 'paid' AND purchase_id IS NOT NULL)),
    CHECK (kind NOT IN ('buy_stock', 'return_stock') OR program_id IS NOT NULL)
);
CREATE INDEX credit_transactions_merchant ON credit_transactions (merchant_id, id);
-- One confirmation per purchase, whatever the concurrency.
CREATE UNIQUE INDEX credit_transactions_purchase ON credit_transactions (purchase_id);

CREATE TABLE credit_postings (
    id BIGSERIAL PRIMARY KEY,
    transaction_id BIGINT NOT NULL REFERENCES credit_transactions(id),
    account_id BIGINT NOT NULL REFERENCES credit_accounts(id),
    amount BIGINT NOT NULL CHECK (amount <> 0)
);
CREATE INDEX credit_postings_transaction ON credit_postings (transaction_id);

CREATE TRIGGER credit_transactions_append_only BEFORE UPDATE OR DELETE ON credit_transactions
    FOR EACH ROW EXECUTE FUNCTION ledger_is_append_only();
CREATE TRIGGER credit_postings_append_only BEFORE UPDATE OR DELETE ON credit_postings
    FOR EACH ROW EXECUTE FUNCTION ledger_is_append_only();

-- The installation's operators (平台运营): staff accounts that grant
-- credits and confirm purchases for every merchant.
CREATE TABLE operators (
    staff_id BIGINT PRIMARY KEY REFERENCES staff(id),
    created_at BIGINT NOT NULL
);

-- Verifications record what 核销后返券 gave (NULL: nothing, or no rule).
ALTER TABLE coupon_verifications ADD COLUMN given_coupon_id BIGINT REFERENCES coupons(id);
-- Coupons a friend claimed through a sharer's link name the sharer.
ALTER TABLE coupons ADD COLUMN shared_by BIGINT REFERENCES customers(id);
