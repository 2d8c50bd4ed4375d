-- Migration 11: idempotency records in arrival order.
--
-- The records were a table keyed by (merchant, key) with a second index by
-- time: every value-changing call wrote its whole record at the place of
-- its key and an index entry among those of its second, both pages more or
-- less at random. Now a record is appended (rowid order is arrival order)
-- and only the small unique index by (merchant, key) lands at its key's
-- place. Expired records are the oldest rowids: they are forgotten by a
-- range delete (see `purge_expired`), with no index by time.
ALTER TABLE idempotency_keys RENAME TO idempotency_keys_before_11;
CREATE TABLE idempotency_keys (
    id INTEGER PRIMARY KEY,
    merchant_id INTEGER NOT NULL,
    key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    transaction_id INTEGER,
    mall_order_id INTEGER,
    refusal TEXT,
    created_at INTEGER NOT NULL
);
INSERT INTO idempotency_keys (merchant_id, key, request_hash, transaction_id, mall_order_id, refusal, created_at)
SELECT merchant_id, key, request_hash, transaction_id, mall_order_id, refusal, created_at
FROM idempotency_keys_before_11 ORDER BY created_at;
DROP TABLE idempotency_keys_before_11;
CREATE UNIQUE INDEX idempotency_keys_key ON idempotency_keys (merchant_id, key);
