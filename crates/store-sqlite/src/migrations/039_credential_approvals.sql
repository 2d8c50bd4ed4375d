-- Migration 39: 双人复核 of credential changes (kaquan_core::approval::
-- CredentialChange): the policy's switch, and a request's new settings
-- (payload, as JSON without their secret) with the secret sealed under the
-- merchant's key version as the settings keep it. SQLite cannot widen a
-- CHECK, so the requests move to a table that allows the new kind.
ALTER TABLE approval_policies ADD COLUMN credentials INTEGER NOT NULL DEFAULT 0;

CREATE TABLE approval_requests_39 (
    id INTEGER PRIMARY KEY,
    merchant_id INTEGER NOT NULL REFERENCES merchants(id),
    kind TEXT NOT NULL CHECK (kind IN ('activate_cards', 'delete_cards', 'export_secrets',
        'adjust_balance', 'change_credentials')),
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
    payload TEXT NOT NULL DEFAULT '',
    secret_sealed BLOB,
    key_version INTEGER NOT NULL DEFAULT 0,
    CHECK (decided_by IS NULL OR decided_by <> requested_by)
);
INSERT INTO approval_requests_39 (id, merchant_id, kind, target, detail, n_cards, value_fen, reason,
    requested_by, requested_by_name, requested_at, expires_at, state, decided_by, decided_by_name,
    decided_at, n_done, outcome)
SELECT id, merchant_id, kind, target, detail, n_cards, value_fen, reason, requested_by,
    requested_by_name, requested_at, expires_at, state, decided_by, decided_by_name, decided_at,
    n_done, outcome
FROM approval_requests;
DROP TABLE approval_requests;
ALTER TABLE approval_requests_39 RENAME TO approval_requests;
CREATE INDEX approval_requests_merchant ON approval_requests (merchant_id, id);
CREATE INDEX approval_requests_pending ON approval_requests (merchant_id, expires_at)
    WHERE state = 'pending';
