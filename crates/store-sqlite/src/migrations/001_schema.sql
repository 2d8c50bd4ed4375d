-- kaquan SQLite schema, migration 1. Migrations are append-only: change the
-- schema by adding a new file in migrations/ and to MIGRATIONS in lib.rs, never by editing this.

CREATE TABLE merchants (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    key_version INTEGER NOT NULL DEFAULT 1,
    -- The next card serial (卡序号) to hand out; batches reserve ranges of it.
    next_serial INTEGER NOT NULL DEFAULT 1 CHECK (next_serial >= 1),
    created_at INTEGER NOT NULL
);

CREATE TABLE roles (
    id INTEGER PRIMARY KEY,
    merchant_id INTEGER NOT NULL REFERENCES merchants(id),
    name TEXT NOT NULL,
    label TEXT NOT NULL,
    permissions TEXT NOT NULL,
    UNIQUE (merchant_id, name)
);

CREATE TABLE staff (
    id INTEGER PRIMARY KEY,
    merchant_id INTEGER NOT NULL REFERENCES merchants(id),
    username TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    phone TEXT NOT NULL,
    role_id INTEGER NOT NULL REFERENCES roles(id),
    password_hash TEXT NOT NULL,
    failed_logins INTEGER NOT NULL DEFAULT 0 CHECK (failed_logins >= 0),
    locked_until INTEGER,
    disabled INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    created_at INTEGER NOT NULL
);

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    staff_id INTEGER NOT NULL REFERENCES staff(id),
    merchant_id INTEGER NOT NULL REFERENCES merchants(id),
    csrf_token TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);

CREATE TABLE distributors (
    id INTEGER PRIMARY KEY,
    merchant_id INTEGER NOT NULL REFERENCES merchants(id),
    name TEXT NOT NULL,
    contact TEXT NOT NULL DEFAULT '',
    phone TEXT NOT NULL DEFAULT '',
    remark TEXT NOT NULL DEFAULT '',
    UNIQUE (merchant_id, name)
);

CREATE TABLE batches (
    id INTEGER PRIMARY KEY,
    merchant_id INTEGER NOT NULL REFERENCES merchants(id),
    name TEXT NOT NULL,
    source TEXT NOT NULL CHECK (source IN ('generated', 'imported')),
    prefix TEXT NOT NULL,
    number_length INTEGER NOT NULL,
    numbering TEXT NOT NULL CHECK (numbering IN ('sequential', 'random')),
    start_number INTEGER,
    password_length INTEGER NOT NULL,
    password_charset TEXT NOT NULL,
    quantity INTEGER NOT NULL CHECK (quantity > 0),
    face_value_fen INTEGER CHECK (face_value_fen >= 0),
    valid_from INTEGER,
    valid_until INTEGER,
    remark TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('generating', 'ready', 'failed')),
    serial_first INTEGER NOT NULL,
    error TEXT,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    completed_at INTEGER
);

CREATE TABLE cards (
    id INTEGER PRIMARY KEY,
    merchant_id INTEGER NOT NULL REFERENCES merchants(id),
    batch_id INTEGER NOT NULL REFERENCES batches(id),
    serial INTEGER NOT NULL,
    number TEXT NOT NULL,
    -- HMAC-SHA256 of the password under the merchant's key; never the password.
    secret_digest BLOB NOT NULL CHECK (length(secret_digest) = 32),
    -- AES-256-GCM sealed copy for export; NULL once purged after printing.
    secret_sealed BLOB,
    key_version INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('inactive', 'active', 'used', 'voided')),
    face_value_fen INTEGER CHECK (face_value_fen >= 0),
    valid_from INTEGER,
    valid_until INTEGER,
    remark TEXT NOT NULL DEFAULT '',
    distributor_id INTEGER REFERENCES distributors(id),
    activated_at INTEGER,
    used_at INTEGER,
    voided_at INTEGER,
    created_at INTEGER NOT NULL,
    UNIQUE (merchant_id, number),
    UNIQUE (merchant_id, serial)
);
CREATE INDEX cards_batch ON cards (batch_id);

CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY,
    merchant_id INTEGER NOT NULL REFERENCES merchants(id),
    actor_staff_id INTEGER,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT NOT NULL,
    n_affected INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX audit_log_merchant ON audit_log (merchant_id, id);

-- What a delete removed, kept under the audit record that removed it.
CREATE TABLE deleted_cards (
    audit_id INTEGER NOT NULL REFERENCES audit_log(id),
    merchant_id INTEGER NOT NULL,
    batch_id INTEGER NOT NULL,
    serial INTEGER NOT NULL,
    number TEXT NOT NULL
);
CREATE INDEX deleted_cards_audit ON deleted_cards (audit_id);
