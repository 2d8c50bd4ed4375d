-- kaquan PostgreSQL schema, migration 1. Migrations are append-only: change the
-- schema by adding a new file in migrations/ and to MIGRATIONS in lib.rs, never by editing this.

CREATE TABLE merchants (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name TEXT NOT NULL,
    key_version INTEGER NOT NULL DEFAULT 1,
    -- The next card serial (卡序号) to hand out; batches reserve ranges of it.
    next_serial BIGINT NOT NULL DEFAULT 1 CHECK (next_serial >= 1),
    created_at BIGINT NOT NULL
);

CREATE TABLE roles (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    merchant_id BIGINT NOT NULL REFERENCES merchants(id),
    name TEXT NOT NULL,
    label TEXT NOT NULL,
    permissions TEXT NOT NULL,
    UNIQUE (merchant_id, name)
);

CREATE TABLE staff (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    merchant_id BIGINT NOT NULL REFERENCES merchants(id),
    username TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    phone TEXT NOT NULL,
    role_id BIGINT NOT NULL REFERENCES roles(id),
    password_hash TEXT NOT NULL,
    failed_logins BIGINT NOT NULL DEFAULT 0 CHECK (failed_logins >= 0),
    locked_until BIGINT,
    disabled BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL
);

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    staff_id BIGINT NOT NULL REFERENCES staff(id),
    merchant_id BIGINT NOT NULL REFERENCES merchants(id),
    csrf_token TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE TABLE distributors (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    merchant_id BIGINT NOT NULL REFERENCES merchants(id),
    name TEXT NOT NULL,
    contact TEXT NOT NULL DEFAULT '',
    phone TEXT NOT NULL DEFAULT '',
    remark TEXT NOT NULL DEFAULT '',
    UNIQUE (merchant_id, name)
);

CREATE TABLE batches (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    merchant_id BIGINT NOT NULL REFERENCES merchants(id),
    name TEXT NOT NULL,
    source TEXT NOT NULL CHECK (source IN ('generated', 'imported')),
    prefix TEXT NOT NULL,
    number_length BIGINT NOT NULL,
    numbering TEXT NOT NULL CHECK (numbering IN ('sequential', 'random')),
    start_number BIGINT,
    password_length BIGINT NOT NULL,
    password_charset TEXT NOT NULL,
    quantity BIGINT NOT NULL CHECK (quantity > 0),
    face_value_fen BIGINT CHECK (face_value_fen >= 0),
    valid_from BIGINT,
    valid_until BIGINT,
    remark TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('generating', 'ready', 'failed')),
    serial_first BIGINT NOT NULL,
    error TEXT,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    completed_at BIGINT
);

CREATE TABLE cards (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    merchant_id BIGINT NOT NULL REFERENCES merchants(id),
    batch_id BIGINT NOT NULL REFERENCES batches(id),
    serial BIGINT NOT NULL,
    number TEXT NOT NULL,
    -- HMAC-SHA256 of the password under the merchant's key; never the password.
    secret_digest BYTEA NOT NULL CHECK (octet_length(secret_digest) = 32),
    -- AES-256-GCM sealed copy for export; NULL once purged after printing.
    secret_sealed BYTEA,
    key_version INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('inactive', 'active', 'used', 'voided')),
    face_value_fen BIGINT CHECK (face_value_fen >= 0),
    valid_from BIGINT,
    valid_until BIGINT,
    remark TEXT NOT NULL DEFAULT '',
    distributor_id BIGINT REFERENCES distributors(id),
    activated_at BIGINT,
    used_at BIGINT,
    voided_at BIGINT,
    created_at BIGINT NOT NULL,
    UNIQUE (merchant_id, number),
    UNIQUE (merchant_id, serial)
);
CREATE INDEX cards_batch ON cards (batch_id);

CREATE TABLE audit_log (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    merchant_id BIGINT NOT NULL REFERENCES merchants(id),
    actor_staff_id BIGINT,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT NOT NULL,
    n_affected BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX audit_log_merchant ON audit_log (merchant_id, id);

-- What a delete removed, kept under the audit record that removed it.
CREATE TABLE deleted_cards (
    audit_id BIGINT NOT NULL REFERENCES audit_log(id),
    merchant_id BIGINT NOT NULL,
    batch_id BIGINT NOT NULL,
    serial BIGINT NOT NULL,
    number TEXT NOT NULL
);
CREATE INDEX deleted_cards_audit ON deleted_cards (audit_id);
