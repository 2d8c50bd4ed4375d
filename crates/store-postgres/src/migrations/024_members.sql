-- Migration 24: membership cards (seed 002). Points join the ledger as a
-- second asset: new kinds of transaction and of merchant-side account,
-- and every transaction names its asset.

ALTER TABLE ledger_accounts DROP CONSTRAINT ledger_accounts_kind_check;
ALTER TABLE ledger_accounts ADD CONSTRAINT ledger_accounts_kind_check CHECK (kind IN ('customer', 'giftcard_issued',
    'sales', 'adjustments', 'recharges', 'recharge_bonus', 'points_issued', 'points_used', 'points_expired'));
ALTER TABLE ledger_accounts ADD CONSTRAINT ledger_accounts_asset_check CHECK (asset IN ('fen', 'points'));

ALTER TABLE ledger_transactions DROP CONSTRAINT ledger_transactions_kind_check;
ALTER TABLE ledger_transactions ADD CONSTRAINT ledger_transactions_kind_check CHECK (kind IN ('redeem', 'spend',
    'refund', 'adjust', 'recharge', 'recharge_bonus', 'earn', 'use_points', 'reverse_earn', 'return_points',
    'expire_points', 'adjust_points'));
-- amount_fen and balance_after_fen are in this asset's unit.
ALTER TABLE ledger_transactions ADD COLUMN asset TEXT NOT NULL DEFAULT 'fen' CHECK (asset IN ('fen', 'points'));
ALTER TABLE ledger_transactions ADD CONSTRAINT ledger_transactions_asset_of_kind CHECK ((asset = 'points') =
    (kind IN ('earn', 'use_points', 'reverse_earn', 'return_points', 'expire_points', 'adjust_points')));

INSERT INTO ledger_accounts (merchant_id, kind, asset)
SELECT merchants.id, kinds.kind, kinds.asset FROM merchants,
    (VALUES ('recharges', 'fen'), ('recharge_bonus', 'fen'), ('adjustments', 'points'), ('points_issued', 'points'),
     ('points_used', 'points'), ('points_expired', 'points')) AS kinds(kind, asset);

-- 会员卡 programs. Tiers, custom fields, links and the activation form
-- are short lists written in core's line format (one item per line,
-- fields split by tabs; no text may hold either).
CREATE TABLE member_programs (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    merchant_id BIGINT NOT NULL REFERENCES merchants(id),
    state TEXT NOT NULL CHECK (state IN ('active', 'disabled')),
    title TEXT NOT NULL,
    brand_name TEXT NOT NULL,
    color TEXT NOT NULL,
    prerogative TEXT NOT NULL,
    discount_percent_off BIGINT NOT NULL CHECK (discount_percent_off BETWEEN 0 AND 99),
    points_enabled BOOLEAN NOT NULL,
    cost_money_unit BIGINT NOT NULL CHECK (cost_money_unit > 0),
    increase_bonus BIGINT NOT NULL CHECK (increase_bonus >= 0),
    max_increase_bonus BIGINT NOT NULL CHECK (max_increase_bonus >= 0),
    init_increase_bonus BIGINT NOT NULL CHECK (init_increase_bonus >= 0),
    cost_bonus_unit BIGINT NOT NULL CHECK (cost_bonus_unit > 0),
    reduce_money BIGINT NOT NULL CHECK (reduce_money >= 0),
    least_money_to_use_bonus BIGINT NOT NULL CHECK (least_money_to_use_bonus >= 0),
    max_reduce_bonus BIGINT NOT NULL CHECK (max_reduce_bonus >= 0),
    stored_value_enabled BOOLEAN NOT NULL,
    tier_basis TEXT NOT NULL CHECK (tier_basis IN ('points', 'spend')),
    tiers TEXT NOT NULL,
    custom_fields TEXT NOT NULL,
    custom_links TEXT NOT NULL,
    activation_fields TEXT NOT NULL,
    auto_activate BOOLEAN NOT NULL,
    number_prefix TEXT NOT NULL,
    number_length BIGINT NOT NULL CHECK (number_length BETWEEN 6 AND 16),
    expiry TEXT NOT NULL CHECK (expiry IN ('never', 'year_end', 'rolling')),
    expiry_months BIGINT NOT NULL CHECK (expiry_months BETWEEN 0 AND 120),
    notify BOOLEAN NOT NULL,
    notify_coupon_program_id BIGINT REFERENCES coupon_programs(id),
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX member_programs_merchant ON member_programs (merchant_id, id);

-- One card per customer per program. tier is the rank in the program's
-- tiers (0: none yet); it only rises by itself.
CREATE TABLE members (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    merchant_id BIGINT NOT NULL REFERENCES merchants(id),
    program_id BIGINT NOT NULL REFERENCES member_programs(id),
    customer_id BIGINT NOT NULL REFERENCES customers(id),
    phone TEXT NOT NULL,
    name TEXT NOT NULL,
    birthday TEXT,
    gender TEXT CHECK (gender IN ('male', 'female')),
    tier BIGINT NOT NULL DEFAULT 0 CHECK (tier >= 0),
    points_earned BIGINT NOT NULL DEFAULT 0 CHECK (points_earned >= 0),
    spend_fen BIGINT NOT NULL DEFAULT 0 CHECK (spend_fen >= 0),
    activated_at BIGINT NOT NULL,
    -- 积分有效期: the sweep looks at a member once a day.
    expiry_checked_at BIGINT NOT NULL DEFAULT 0,
    UNIQUE (program_id, customer_id)
);
CREATE INDEX members_merchant ON members (merchant_id, id);
CREATE INDEX members_customer ON members (customer_id, id);

-- One notice per member for the points about to lapse, keyed on when the
-- last of them was earned.
CREATE TABLE member_expiry_notices (
    member_id BIGINT NOT NULL REFERENCES members(id),
    cutoff BIGINT NOT NULL,
    points BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (member_id, cutoff)
);

-- What each call on a member did (开卡, 买单, 退款, 充值, 积分调整, 过期):
-- the receipt an idempotency key replays and a refund counts against.
CREATE TABLE member_operations (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    merchant_id BIGINT NOT NULL REFERENCES merchants(id),
    member_id BIGINT NOT NULL REFERENCES members(id),
    kind TEXT NOT NULL CHECK (kind IN ('activate', 'payment', 'refund', 'recharge', 'adjust_points', 'expire_points')),
    reference TEXT NOT NULL,
    payment_id BIGINT REFERENCES member_operations(id),
    location_id BIGINT,
    amount_fen BIGINT NOT NULL CHECK (amount_fen >= 0),
    discount_fen BIGINT NOT NULL CHECK (discount_fen >= 0),
    points_used BIGINT NOT NULL CHECK (points_used >= 0),
    points_deduction_fen BIGINT NOT NULL CHECK (points_deduction_fen >= 0),
    balance_fen BIGINT NOT NULL CHECK (balance_fen >= 0),
    bonus_fen BIGINT NOT NULL CHECK (bonus_fen >= 0),
    points_earned BIGINT NOT NULL,
    points_after BIGINT NOT NULL CHECK (points_after >= 0),
    balance_after_fen BIGINT NOT NULL CHECK (balance_after_fen >= 0),
    tier_after BIGINT NOT NULL,
    refunded_fen BIGINT NOT NULL DEFAULT 0 CHECK (refunded_fen >= 0),
    reason TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
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
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    merchant_id BIGINT NOT NULL REFERENCES merchants(id),
    program_id BIGINT NOT NULL REFERENCES member_programs(id),
    mch_ids TEXT NOT NULL,
    least_cost_fen BIGINT NOT NULL CHECK (least_cost_fen >= 0),
    max_cost_fen BIGINT CHECK (max_cost_fen IS NULL OR max_cost_fen >= least_cost_fen),
    begin_at BIGINT NOT NULL,
    end_at BIGINT NOT NULL CHECK (end_at >= begin_at),
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    deleted_at BIGINT
);
CREATE INDEX pay_gift_rules_merchant ON pay_gift_rules (merchant_id, id);

CREATE TABLE pay_gift_sends (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    merchant_id BIGINT NOT NULL REFERENCES merchants(id),
    payment_id TEXT NOT NULL,
    mch_id TEXT NOT NULL,
    amount_fen BIGINT NOT NULL,
    paid_at BIGINT NOT NULL,
    customer_ref TEXT,
    phone TEXT,
    rule_id BIGINT REFERENCES pay_gift_rules(id),
    program_id BIGINT,
    outcome TEXT NOT NULL CHECK (outcome IN ('sent', 'no_live_rule', 'amount_out_of_range', 'already_member')),
    created_at BIGINT NOT NULL,
    UNIQUE (merchant_id, payment_id)
);

ALTER TABLE idempotency_keys ADD COLUMN member_operation_id BIGINT;

UPDATE roles SET permissions = permissions || ',members.manage,members.view'
WHERE name = 'owner';
