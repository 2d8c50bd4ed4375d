-- Migration 8: nonces are unique per key and signed timestamp (a replay
-- carries the same signed timestamp). Keyed by time first, a new nonce is
-- appended to the end of the index instead of landing on a random page,
-- and forgetting old nonces is a range delete without a second index.
-- Nonces seen in the last minutes before the upgrade are not carried over:
-- their signed timestamps were not kept.
DROP TABLE api_nonces;
CREATE TABLE api_nonces (
    signed_at INTEGER NOT NULL,
    key_id TEXT NOT NULL,
    nonce TEXT NOT NULL,
    PRIMARY KEY (signed_at, key_id, nonce)
) WITHOUT ROWID;
