-- Migration 29: 朋友的券 and 券点 (issue 20).
--
-- A coupon program may be shared (朋友的券: a cover, an introduction and a
-- detail text) and may name a program to give one coupon of when one of
-- its coupons is verified (核销后返券).
ALTER TABLE coupon_programs ADD COLUMN shared INTEGER NOT NULL DEFAULT 0;
ALTER TABLE coupon_programs ADD COLUMN cover_url TEXT NOT NULL DEFAULT '';
ALTER TABLE coupon_programs ADD COLUMN abstract_text TEXT NOT NULL DEFAULT '';
ALTER TABLE coupon_programs ADD COLUMN detail_text TEXT NOT NULL DEFAULT '';
ALTER TABLE coupon_programs ADD COLUMN give_program_id INTEGER REFERENCES coupon_programs(id);
-- A 朋友的券's uploaded cover (封面), as coupon_logos keeps logos.
CREATE TABLE coupon_covers (
    program_id INTEGER PRIMARY KEY REFERENCES coupon_programs(id),
    merchant_id INTEGER NOT NULL REFERENCES merchants(id),
    content_type TEXT NOT NULL,
    bytes BLOB NOT NULL,
    updated_at INTEGER NOT NULL
);
-- When an expired shared program's unused stock gave its credits back.
ALTER TABLE coupon_programs ADD COLUMN stock_returned_at INTEGER;

-- Credits are the ledger's third asset, in tenths of a 券点. Their holder
-- is a merchant, so they have tables of their own under the customer
-- ledger's rules: the holder accounts (free, paid) cache a balance with a
-- floor of zero; the counter accounts (granted, sold, stock) are summed;
-- transactions and postings are append-only and every transaction's two
-- postings sum to zero (kaquan verify).
CREATE TABLE credit_accounts (
    id INTEGER PRIMARY KEY,
    merchant_id INTEGER NOT NULL REFERENCES merchants(id),
    kind TEXT NOT NULL CHECK (kind IN ('free', 'paid', 'granted', 'sold', 'stock')),
    balance INTEGER,
    CHECK ((kind IN ('free', 'paid')) = (balance IS NOT NULL)),
    CHECK (balance IS NULL OR balance >= 0),
    UNIQUE (merchant_id, kind)
);

CREATE TABLE credit_purchases (
    id INTEGER PRIMARY KEY,
    merchant_id INTEGER NOT NULL REFERENCES merchants(id),
    credits INTEGER NOT NULL CHECK (credits > 0),
    amount_fen INTEGER NOT NULL CHECK (amount_fen > 0),
    state TEXT NOT NULL CHECK (state IN ('requested', 'confirmed', 'cancelled')),
    requested_by TEXT NOT NULL,
    requested_at INTEGER NOT NULL,
    decided_by TEXT,
    decided_at INTEGER,
    CHECK ((state = 'requested') = (decided_at IS NULL))
);
CREATE INDEX credit_purchases_merchant ON credit_purchases (merchant_id, id);
CREATE INDEX credit_purchases_requested ON credit_purchases (id) WHERE state = 'requested';

CREATE TABLE coupon_stock_purchases (
    id INTEGER PRIMARY KEY,
    merchant_id INTEGER NOT NULL REFERENCES merchants(id),
    program_id INTEGER NOT NULL REFERENCES coupon_programs(id),
    units INTEGER NOT NULL CHECK (units > 0),
    unit_price_tenths INTEGER NOT NULL CHECK (unit_price_tenths > 0),
    free_tenths INTEGER NOT NULL CHECK (free_tenths >= 0),
    paid_tenths INTEGER NOT NULL CHECK (paid_tenths >= 0),
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    CHECK (free_tenths + paid_tenths = units * unit_price_tenths)
);
CREATE INDEX coupon_stock_purchases_program ON coupon_stock_purchases (program_id, id);

CREATE TABLE credit_transactions (
    id INTEGER PRIMARY KEY,
    merchant_id INTEGER NOT NULL REFERENCES merchants(id),
    kind TEXT NOT NULL CHECK (kind IN ('grant', 'purchase', 'buy_stock', 'return_stock')),
    holder TEXT NOT NULL CHECK (holder IN ('free', 'paid')),
    amount_tenths INTEGER NOT NULL CHECK (amount_tenths <> 0),
    balance_after_tenths INTEGER NOT NULL CHECK (balance_after_tenths >= 0),
    program_id INTEGER REFERENCES coupon_programs(id),
    purchase_id INTEGER REFERENCES credit_purchases(id),
    stock_purchase_id INTEGER REFERENCES coupon_stock_purchases(id),
    reason TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    CHECK (kind <> 'grant' OR holder = 'free'),
    CHECK (kind <> 'purchase' OR (holder = 'paid' AND purchase_id IS NOT NULL)),
    CHECK (kind NOT IN ('buy_stock', 'return_stock') OR program_id IS NOT NULL)
);
CREATE INDEX credit_transactions_merchant ON credit_transactions (merchant_id, id);
-- One confirmation per purchase, whatever the concurrency.
CREATE UNIQUE INDEX credit_transactions_purchase ON credit_transactions (purchase_id);

CREATE TABLE credit_postings (
    id INTEGER PRIMARY KEY,
    transaction_id INTEGER NOT NULL REFERENCES credit_transactions(id),
    account_id INTEGER NOT NULL REFERENCES credit_accounts(id),
    amount INTEGER NOT NULL CHECK (amount <> 0)
);
CREATE INDEX credit_postings_transaction ON credit_postings (transaction_id);

CREATE TRIGGER credit_transactions_no_update BEFORE UPDATE ON credit_transactions
BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
CREATE TRIGGER credit_transactions_no_delete BEFORE DELETE ON credit_transactions
BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
CREATE TRIGGER credit_postings_no_update BEFORE UPDATE ON credit_postings
BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
CREATE TRIGGER credit_postings_no_delete BEFORE DELETE ON credit_postings
BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;

-- The installation's operators (平台运营): staff accounts that grant
-- credits and confirm purchases for every merchant.
CREATE TABLE operators (
    staff_id INTEGER PRIMARY KEY REFERENCES staff(id),
    created_at INTEGER NOT NULL
);

-- Verifications record what 核销后返券 gave (NULL: nothing, or no rule).
ALTER TABLE coupon_verifications ADD COLUMN given_coupon_id INTEGER REFERENCES coupons(id);
-- Coupons a friend claimed through a sharer's link name the sharer.
ALTER TABLE coupons ADD COLUMN shared_by INTEGER REFERENCES customers(id);
