-- foreign_keys off
-- Migration 26: membership cards (seed 002). Points join the ledger as a
-- second asset: the ledger's tables are rebuilt to take the new kinds of
-- transaction and of merchant-side account (SQLite cannot alter a CHECK;
-- this is its documented rebuild, run with foreign keys off and checked
-- with foreign_key_check before commit). Every transaction now names its
-- asset, and a customer's statement chain runs per asset.

CREATE TABLE ledger_accounts_new (
    id INTEGER PRIMARY KEY,
    merchant_id INTEGER NOT NULL REFERENCES merchants(id),
    kind TEXT NOT NULL CHECK (kind IN ('customer', 'giftcard_issued', 'sales', 'adjustments', 'recharges',
        'recharge_bonus', 'points_issued', 'points_used', 'points_expired')),
    customer_id INTEGER REFERENCES customers(id),
    asset TEXT NOT NULL CHECK (asset IN ('fen', 'points')),
    balance INTEGER,
    last_transaction_id INTEGER,
    n_transactions INTEGER NOT NULL DEFAULT 0,
    CHECK ((kind = 'customer') = (customer_id IS NOT NULL)),
    CHECK ((kind = 'customer') = (balance IS NOT NULL)),
    CHECK (balance IS NULL OR balance >= 0)
);
INSERT INTO ledger_accounts_new (id, merchant_id, kind, customer_id, asset, balance, last_transaction_id, n_transactions)
SELECT id, merchant_id, kind, customer_id, asset, balance, last_transaction_id, n_transactions FROM ledger_accounts;
DROP TABLE ledger_accounts;
ALTER TABLE ledger_accounts_new RENAME TO ledger_accounts;
CREATE UNIQUE INDEX ledger_accounts_customer ON ledger_accounts (customer_id, asset);
CREATE UNIQUE INDEX ledger_accounts_merchant ON ledger_accounts (merchant_id, kind, asset) WHERE customer_id IS NULL;

CREATE TABLE ledger_transactions_new (
    id INTEGER PRIMARY KEY,
    merchant_id INTEGER NOT NULL REFERENCES merchants(id),
    customer_id INTEGER NOT NULL REFERENCES customers(id),
    kind TEXT NOT NULL CHECK (kind IN ('redeem', 'spend', 'refund', 'adjust', 'recharge', 'recharge_bonus',
        'earn', 'use_points', 'reverse_earn', 'return_points', 'expire_points', 'adjust_points')),
    amount_fen INTEGER NOT NULL CHECK (amount_fen <> 0),
    balance_after_fen INTEGER NOT NULL CHECK (balance_after_fen >= 0),
    reference TEXT NOT NULL,
    reason TEXT NOT NULL,
    channel TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    previous_id INTEGER,
    -- amount_fen and balance_after_fen are in this asset's unit.
    asset TEXT NOT NULL DEFAULT 'fen' CHECK (asset IN ('fen', 'points')),
    CHECK ((asset = 'points') = (kind IN ('earn', 'use_points', 'reverse_earn', 'return_points', 'expire_points', 'adjust_points')))
);
INSERT INTO ledger_transactions_new (id, merchant_id, customer_id, kind, amount_fen, balance_after_fen, reference,
    reason, channel, created_by, created_at, previous_id)
SELECT id, merchant_id, customer_id, kind, amount_fen, balance_after_fen, reference,
    reason, channel, created_by, created_at, previous_id FROM ledger_transactions;
DROP TABLE ledger_transactions;
ALTER TABLE ledger_transactions_new RENAME TO ledger_transactions;
CREATE TRIGGER ledger_transactions_no_update BEFORE UPDATE ON ledger_transactions
BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
CREATE TRIGGER ledger_transactions_no_delete BEFORE DELETE ON ledger_transactions
BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;

INSERT INTO ledger_accounts (merchant_id, kind, asset)
SELECT merchants.id, kinds.kind, kinds.asset FROM merchants,
    (SELECT 'recharges' AS kind, 'fen' AS asset UNION ALL SELECT 'recharge_bonus', 'fen'
     UNION ALL SELECT 'adjustments', 'points' UNION ALL SELECT 'points_issued', 'points'
     UNION ALL SELECT 'points_used', 'points' UNION ALL SELECT 'points_expired', 'points') AS kinds;

-- 会员卡 programs. Tiers, custom fields, links and the activation form
-- are short lists written in core's line format (one item per line,
-- fields split by tabs; no text may hold either).
CREATE TABLE member_programs (
    id INTEGER PRIMARY KEY,
    merchant_id INTEGER NOT NULL REFERENCES merchants(id),
    state TEXT NOT NULL CHECK (state IN ('active', 'disabled')),
    title TEXT NOT NULL,
    brand_name TEXT NOT NULL,
    color TEXT NOT NULL,
    prerogative TEXT NOT NULL,
    discount_percent_off INTEGER NOT NULL CHECK (discount_percent_off BETWEEN 0 AND 99),
    points_enabled INTEGER NOT NULL,
    cost_money_unit INTEGER NOT NULL CHECK (cost_money_unit > 0),
    increase_bonus INTEGER NOT NULL CHECK (increase_bonus >= 0),
    max_increase_bonus INTEGER NOT NULL CHECK (max_increase_bonus >= 0),
    init_increase_bonus INTEGER NOT NULL CHECK (init_increase_bonus >= 0),
    cost_bonus_unit INTEGER NOT NULL CHECK (cost_bonus_unit > 0),
    reduce_money INTEGER NOT NULL CHECK (reduce_money >= 0),
    least_money_to_use_bonus INTEGER NOT NULL CHECK (least_money_to_use_bonus >= 0),
    max_reduce_bonus INTEGER NOT NULL CHECK (max_reduce_bonus >= 0),
    stored_value_enabled INTEGER NOT NULL,
    tier_basis TEXT NOT NULL CHECK (tier_basis IN ('points', 'spend')),
    tiers TEXT NOT NULL,
    custom_fields TEXT NOT NULL,
    custom_links TEXT NOT NULL,
    activation_fields TEXT NOT NULL,
    auto_activate INTEGER NOT NULL,
    number_prefix TEXT NOT NULL,
    number_length INTEGER NOT NULL CHECK (number_length BETWEEN 6 AND 16),
    expiry TEXT NOT NULL CHECK (expiry IN ('never', 'year_end', 'rolling')),
    expiry_months INTEGER NOT NULL CHECK (expiry_months BETWEEN 0 AND 120),
    notify INTEGER NOT NULL,
    notify_coupon_program_id INTEGER REFERENCES coupon_programs(id),
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX member_programs_merchant ON member_programs (merchant_id, id);

-- One card per customer per program. tier is the rank in the program's
-- tiers (0: none yet); it only rises by itself.
CREATE TABLE members (
    id INTEGER PRIMARY KEY,
    merchant_id INTEGER NOT NULL REFERENCES merchants(id),
    program_id INTEGER NOT NULL REFERENCES member_programs(id),
    customer_id INTEGER NOT NULL REFERENCES customers(id),
    phone TEXT NOT NULL,
    name TEXT NOT NULL,
    birthday TEXT,
    gender TEXT CHECK (gender IN ('male', 'female')),
    tier INTEGER NOT NULL DEFAULT 0 CHECK (tier >= 0),
    points_earned INTEGER NOT NULL DEFAULT 0 CHECK (points_earned >= 0),
    spend_fen INTEGER NOT NULL DEFAULT 0 CHECK (spend_fen >= 0),
    activated_at INTEGER NOT NULL,
    -- 积分有效期: the sweep looks at a member once a day.
    expiry_checked_at INTEGER NOT NULL DEFAULT 0,
    UNIQUE (program_id, customer_id)
);
CREATE INDEX members_merchant ON members (merchant_id, id);
CREATE INDEX members_customer ON members (customer_id, id);

-- One notice per member for the points about to lapse, keyed on when the
-- last of them was earned.
CREATE TABLE member_expiry_notices (
    member_id INTEGER NOT NULL REFERENCES members(id),
    cutoff INTEGER NOT NULL,
    points INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (member_id, cutoff)
);

-- What each call on a member did (开卡, 买单, 退款, 充值, 积分调整, 过期):
-- the receipt an idempotency key replays and a refund counts against.
CREATE TABLE member_operations (
    id INTEGER PRIMARY KEY,
    merchant_id INTEGER NOT NULL REFERENCES merchants(id),
    member_id INTEGER NOT NULL REFERENCES members(id),
    kind TEXT NOT NULL CHECK (kind IN ('activate', 'payment', 'refund', 'recharge', 'adjust_points', 'expire_points')),
    reference TEXT NOT NULL,
    payment_id INTEGER REFERENCES member_operations(id),
    location_id INTEGER,
    amount_fen INTEGER NOT NULL CHECK (amount_fen >= 0),
    discount_fen INTEGER NOT NULL CHECK (discount_fen >= 0),
    points_used INTEGER NOT NULL CHECK (points_used >= 0),
    points_deduction_fen INTEGER NOT NULL CHECK (points_deduction_fen >= 0),
    balance_fen INTEGER NOT NULL CHECK (balance_fen >= 0),
    bonus_fen INTEGER NOT NULL CHECK (bonus_fen >= 0),
    points_earned INTEGER NOT NULL,
    points_after INTEGER NOT NULL CHECK (points_after >= 0),
    balance_after_fen INTEGER NOT NULL CHECK (balance_after_fen >= 0),
    tier_after INTEGER NOT NULL,
    refunded_fen INTEGER NOT NULL DEFAULT 0 CHECK (refunded_fen >= 0),
    reason TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    CHECK (kind <> 'payment' OR refunded_fen <= amount_fen - discount_fen)
);
-- One payment per order and one top-up per payment id; a partial index
-- per kind, so that a lookup by kind = 'payment' can use it.
CREATE UNIQUE INDEX member_payments_reference ON member_operations (merchant_id, reference)
    WHERE kind = 'payment';
CREATE UNIQUE INDEX member_recharges_reference ON member_operations (merchant_id, reference)
    WHERE kind = 'recharge';
CREATE INDEX member_operations_member ON member_operations (member_id, id);

-- 消息记录 reads member messages alone; the partial index costs nothing
-- to the events of other kinds.
CREATE INDEX events_member_messages ON events (merchant_id, id) WHERE event_type = 'member.changed';

-- 支付后赠会员卡: rules and the payments they answered (one per payment id).
CREATE TABLE pay_gift_rules (
    id INTEGER PRIMARY KEY,
    merchant_id INTEGER NOT NULL REFERENCES merchants(id),
    program_id INTEGER NOT NULL REFERENCES member_programs(id),
    mch_ids TEXT NOT NULL,
    least_cost_fen INTEGER NOT NULL CHECK (least_cost_fen >= 0),
    max_cost_fen INTEGER CHECK (max_cost_fen IS NULL OR max_cost_fen >= least_cost_fen),
    begin_at INTEGER NOT NULL,
    end_at INTEGER NOT NULL CHECK (end_at >= begin_at),
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    deleted_at INTEGER
);
CREATE INDEX pay_gift_rules_merchant ON pay_gift_rules (merchant_id, id);

CREATE TABLE pay_gift_sends (
    id INTEGER PRIMARY KEY,
    merchant_id INTEGER NOT NULL REFERENCES merchants(id),
    payment_id TEXT NOT NULL,
    mch_id TEXT NOT NULL,
    amount_fen INTEGER NOT NULL,
    paid_at INTEGER NOT NULL,
    customer_ref TEXT,
    phone TEXT,
    rule_id INTEGER REFERENCES pay_gift_rules(id),
    program_id INTEGER,
    outcome TEXT NOT NULL CHECK (outcome IN ('sent', 'no_live_rule', 'amount_out_of_range', 'already_member')),
    created_at INTEGER NOT NULL,
    UNIQUE (merchant_id, payment_id)
);

ALTER TABLE idempotency_keys ADD COLUMN member_operation_id INTEGER;

UPDATE roles SET permissions = permissions || ',members.manage,members.view'
WHERE name = 'owner';
