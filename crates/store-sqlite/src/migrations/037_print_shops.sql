-- Migration 37: 印刷厂 (print shops) with their age X25519 public key, to
-- which an export with passwords is sealed; and how many of each batch's
-- cards still hold a sealed password copy (密码副本), kept by every write
-- that adds or removes copies, so the console can say which batches still
-- hold them without reading their cards.
CREATE TABLE print_shops (
    id INTEGER PRIMARY KEY,
    merchant_id INTEGER NOT NULL REFERENCES merchants(id),
    name TEXT NOT NULL,
    recipient TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (merchant_id, name)
);

ALTER TABLE batches ADD COLUMN n_copies INTEGER NOT NULL DEFAULT 0 CHECK (n_copies >= 0);
UPDATE batches SET n_copies = (
    SELECT count(*) FROM cards WHERE cards.batch_id = batches.id AND cards.secret_sealed IS NOT NULL
);
