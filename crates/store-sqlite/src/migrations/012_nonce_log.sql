-- Migration 12: the nonces of signed requests become a log appended in
-- arrival order. The writer thread decides whether a nonce was seen from
-- the set it keeps in memory (nonces.rs) and reads this log into it when
-- it starts; a unique B-tree here made every signed request insert at a
-- random page, over half of the pages a group commit wrote.
-- AUTOINCREMENT: ids never go back, even once the log has been purged
-- empty, so a writer that knows the last id it read never misses a row
-- another process appends.
CREATE TABLE api_nonce_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    signed_at INTEGER NOT NULL,
    digest INTEGER NOT NULL
);
INSERT INTO api_nonce_log (signed_at, digest) SELECT signed_at, digest FROM api_nonces ORDER BY signed_at;
DROP TABLE api_nonces;
ALTER TABLE api_nonce_log RENAME TO api_nonces;
