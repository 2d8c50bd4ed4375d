-- 优惠券 (seed 001): 门店 and their 核销员, coupon programs, the coupons
-- customers hold, and every verification (核销记录).

CREATE TABLE locations (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    merchant_id BIGINT NOT NULL REFERENCES merchants(id),
    name TEXT NOT NULL,
    address TEXT NOT NULL,
    phone TEXT NOT NULL,
    hours TEXT NOT NULL,
    enabled BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (merchant_id, name)
);

-- A staff member with no row here verifies at every location.
CREATE TABLE staff_locations (
    staff_id BIGINT NOT NULL REFERENCES staff(id),
    location_id BIGINT NOT NULL REFERENCES locations(id),
    PRIMARY KEY (staff_id, location_id)
);

CREATE TABLE coupon_programs (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    merchant_id BIGINT NOT NULL REFERENCES merchants(id),
    kind TEXT NOT NULL CHECK (kind IN ('discount', 'cash', 'gift', 'groupon', 'general_coupon')),
    percent_off BIGINT,
    cap_fen BIGINT,
    least_cost_fen BIGINT,
    reduce_cost_fen BIGINT,
    goods_id BIGINT,
    detail TEXT NOT NULL,
    price_fen BIGINT,
    title TEXT NOT NULL,
    sub_title TEXT NOT NULL,
    brand_name TEXT NOT NULL,
    logo_url TEXT NOT NULL,
    color TEXT NOT NULL,
    notice TEXT NOT NULL,
    description TEXT NOT NULL,
    service_phone TEXT NOT NULL,
    get_limit BIGINT NOT NULL,
    use_limit BIGINT NOT NULL,
    validity_type TEXT NOT NULL CHECK (validity_type IN ('fixed', 'relative')),
    begin_at BIGINT,
    end_at BIGINT,
    term_days BIGINT,
    begin_after_days BIGINT,
    hard_end BIGINT,
    weekdays BIGINT NOT NULL,
    day_begin_minute BIGINT,
    day_end_minute BIGINT,
    use_all_locations BOOLEAN NOT NULL,
    -- The location ids, comma-separated (at most 500; locations are never deleted).
    location_ids TEXT NOT NULL,
    code_type TEXT NOT NULL,
    rotating_code BOOLEAN NOT NULL,
    can_give_friend BOOLEAN NOT NULL,
    can_use_with_other_discount BOOLEAN NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('draft', 'active', 'paused', 'ended')),
    quantity BIGINT NOT NULL CHECK (quantity >= 0),
    n_claimed BIGINT NOT NULL DEFAULT 0 CHECK (n_claimed >= 0 AND n_claimed <= quantity),
    claim_token TEXT NOT NULL UNIQUE,
    version BIGINT NOT NULL DEFAULT 1,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX coupon_programs_merchant ON coupon_programs (merchant_id, id);

-- One row per give-out: a claim, a targeted list, a mall order line
-- (unique, so a line is issued once).
CREATE TABLE coupon_issues (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    merchant_id BIGINT NOT NULL REFERENCES merchants(id),
    program_id BIGINT NOT NULL REFERENCES coupon_programs(id),
    source TEXT NOT NULL,
    order_id TEXT,
    order_line TEXT,
    quantity BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX coupon_issues_order ON coupon_issues (merchant_id, order_id, order_line);

CREATE TABLE coupons (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    merchant_id BIGINT NOT NULL REFERENCES merchants(id),
    program_id BIGINT NOT NULL REFERENCES coupon_programs(id),
    customer_id BIGINT NOT NULL REFERENCES customers(id),
    digest BYTEA NOT NULL,
    sealed BYTEA NOT NULL,
    key_version INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('available', 'verified')),
    valid_from BIGINT NOT NULL,
    valid_until BIGINT NOT NULL,
    source TEXT NOT NULL,
    issue_id BIGINT NOT NULL REFERENCES coupon_issues(id),
    claimed_at BIGINT NOT NULL,
    verified_at BIGINT,
    gift_token_hash TEXT,
    gift_from BIGINT,
    CHECK ((state = 'verified') = (verified_at IS NOT NULL))
);
CREATE UNIQUE INDEX coupons_digest ON coupons (merchant_id, digest);
CREATE UNIQUE INDEX coupons_gift ON coupons (gift_token_hash);
CREATE INDEX coupons_customer ON coupons (customer_id, id);
CREATE INDEX coupons_program ON coupons (program_id, state, valid_until);
CREATE INDEX coupons_issue ON coupons (issue_id);

-- What each customer claimed and used of a program: the per-customer limits.
CREATE TABLE coupon_holdings (
    program_id BIGINT NOT NULL REFERENCES coupon_programs(id),
    customer_id BIGINT NOT NULL REFERENCES customers(id),
    n_claimed BIGINT NOT NULL CHECK (n_claimed >= 0),
    n_used BIGINT NOT NULL CHECK (n_used >= 0),
    PRIMARY KEY (program_id, customer_id)
);

CREATE TABLE coupon_verifications (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    merchant_id BIGINT NOT NULL REFERENCES merchants(id),
    coupon_id BIGINT NOT NULL REFERENCES coupons(id),
    program_id BIGINT NOT NULL REFERENCES coupon_programs(id),
    customer_id BIGINT NOT NULL REFERENCES customers(id),
    location_id BIGINT REFERENCES locations(id),
    staff_id BIGINT,
    verifier TEXT NOT NULL,
    channel TEXT NOT NULL CHECK (channel IN ('scan', 'typed', 'api')),
    order_amount_fen BIGINT,
    discount_fen BIGINT NOT NULL,
    order_ref TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    undone_at BIGINT,
    undone_by TEXT
);
CREATE INDEX coupon_verifications_time ON coupon_verifications (merchant_id, created_at);
CREATE INDEX coupon_verifications_coupon ON coupon_verifications (coupon_id);

CREATE TABLE coupon_settings (
    merchant_id BIGINT PRIMARY KEY REFERENCES merchants(id),
    undo_window_minutes BIGINT NOT NULL
);

ALTER TABLE idempotency_keys ADD COLUMN coupon_issue_id BIGINT;
ALTER TABLE idempotency_keys ADD COLUMN coupon_verification_id BIGINT;

UPDATE roles SET permissions = permissions || ',coupons.manage,coupons.verify' WHERE name = 'owner';
UPDATE roles SET permissions = permissions || ',coupons.verify' WHERE name = 'verifier';
