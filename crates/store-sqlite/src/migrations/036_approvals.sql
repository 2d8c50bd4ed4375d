-- Migration 36: 双人复核 (kaquan_core::approval). A merchant's thresholds,
-- the requests waiting in 待审批 and their decisions, and what each staff
-- member activated per merchant-local day (the daily caps).
CREATE TABLE approval_policies (
    merchant_id INTEGER PRIMARY KEY REFERENCES merchants(id),
    activate_count_over INTEGER CHECK (activate_count_over >= 0),
    activate_value_over_fen INTEGER CHECK (activate_value_over_fen >= 0),
    export_secrets INTEGER NOT NULL DEFAULT 0,
    delete_cards INTEGER NOT NULL DEFAULT 0,
    adjust_over_fen INTEGER CHECK (adjust_over_fen >= 0),
    daily_max_cards INTEGER CHECK (daily_max_cards >= 0),
    daily_max_value_fen INTEGER CHECK (daily_max_value_fen >= 0),
    expiry_hours INTEGER NOT NULL DEFAULT 24 CHECK (expiry_hours BETWEEN 1 AND 168)
);

CREATE TABLE approval_requests (
    id INTEGER PRIMARY KEY,
    merchant_id INTEGER NOT NULL REFERENCES merchants(id),
    kind TEXT NOT NULL CHECK (kind IN ('activate_cards', 'delete_cards', 'export_secrets', 'adjust_balance')),
    target TEXT NOT NULL,
    detail TEXT NOT NULL,
    n_cards INTEGER NOT NULL,
    value_fen INTEGER NOT NULL,
    reason TEXT NOT NULL,
    requested_by INTEGER NOT NULL,
    requested_by_name TEXT NOT NULL,
    requested_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'approved', 'rejected', 'done', 'failed')),
    decided_by INTEGER,
    decided_by_name TEXT,
    decided_at INTEGER,
    n_done INTEGER,
    outcome TEXT NOT NULL DEFAULT '',
    CHECK (decided_by IS NULL OR decided_by <> requested_by)
);
CREATE INDEX approval_requests_merchant ON approval_requests (merchant_id, id);
CREATE INDEX approval_requests_pending ON approval_requests (merchant_id, expires_at)
    WHERE state = 'pending';

CREATE TABLE staff_activation_days (
    merchant_id INTEGER NOT NULL,
    staff_id INTEGER NOT NULL,
    day INTEGER NOT NULL,
    n_cards INTEGER NOT NULL,
    value_fen INTEGER NOT NULL,
    PRIMARY KEY (merchant_id, staff_id, day)
) WITHOUT ROWID;

-- The owner role may approve.
UPDATE roles SET permissions = permissions || ',approvals.decide'
WHERE name = 'owner';
