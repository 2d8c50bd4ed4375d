-- Migration 10: a nonce is kept as one 64-bit number beside its signed
-- timestamp (NonceUse::digest: the first 8 bytes of SHA-256 over the key id
-- and the nonce) instead of both texts. Every signed request inserts one
-- nonce at a random place among those of its second; with 3.5 times as
-- many per page, those inserts split pages far less often, and the
-- nonce pages were the largest share of a redemption group's WAL.
-- SQL has no SHA-256: the store carries the nonces of the last minutes over
-- from the table set aside here when it opens (`carry_over_nonces`).
ALTER TABLE api_nonces RENAME TO api_nonces_before_10;
CREATE TABLE api_nonces (
    signed_at INTEGER NOT NULL,
    digest INTEGER NOT NULL,
    PRIMARY KEY (signed_at, digest)
) WITHOUT ROWID;
