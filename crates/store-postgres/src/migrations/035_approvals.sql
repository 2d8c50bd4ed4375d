-- Migration 35: 双人复核 (kaquan_core::approval). A merchant's thresholds,
-- the requests waiting in 待审批 and their decisions, and what each staff
-- member activated per merchant-local day (the daily caps).
CREATE TABLE approval_policies (
    merchant_id BIGINT PRIMARY KEY REFERENCES merchants(id),
    activate_count_over BIGINT CHECK (activate_count_over >= 0),
    activate_value_over_fen BIGINT CHECK (activate_value_over_fen >= 0),
    export_secrets BOOLEAN NOT NULL DEFAULT false,
    delete_cards BOOLEAN NOT NULL DEFAULT false,
    adjust_over_fen BIGINT CHECK (adjust_over_fen >= 0),
    daily_max_cards BIGINT CHECK (daily_max_cards >= 0),
    daily_max_value_fen BIGINT CHECK (daily_max_value_fen >= 0),
    expiry_hours BIGINT NOT NULL DEFAULT 24 CHECK (expiry_hours BETWEEN 1 AND 168)
);

CREATE TABLE approval_requests (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    merchant_id BIGINT NOT NULL REFERENCES merchants(id),
    kind TEXT NOT NULL CHECK (kind IN ('activate_cards', 'delete_cards', 'export_secrets', 'adjust_balance')),
    target TEXT NOT NULL,
    detail TEXT NOT NULL,
    n_cards BIGINT NOT NULL,
    value_fen BIGINT NOT NULL,
    reason TEXT NOT NULL,
    requested_by BIGINT NOT NULL,
    requested_by_name TEXT NOT NULL,
    requested_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'approved', 'rejected', 'done', 'failed')),
    decided_by BIGINT,
    decided_by_name TEXT,
    decided_at BIGINT,
    n_done BIGINT,
    outcome TEXT NOT NULL DEFAULT '',
    CHECK (decided_by IS NULL OR decided_by <> requested_by)
);
CREATE INDEX approval_requests_merchant ON approval_requests (merchant_id, id);
CREATE INDEX approval_requests_pending ON approval_requests (merchant_id, expires_at)
    WHERE state = 'pending';

CREATE TABLE staff_activation_days (
    merchant_id BIGINT NOT NULL,
    staff_id BIGINT NOT NULL,
    day BIGINT NOT NULL,
    n_cards BIGINT NOT NULL,
    value_fen BIGINT NOT NULL,
    PRIMARY KEY (merchant_id, staff_id, day)
);

-- The owner role may approve.
UPDATE roles SET permissions = permissions || ',approvals.decide'
WHERE name = 'owner';
