-- Migration 37: the key ring (kaquan_core::keys): once `kaquan keys rewrap`
-- has run, the root every key is derived from, sealed under the key file's
-- key. Empty until then: the key file's key is the root.
CREATE TABLE key_ring (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    ring BYTEA NOT NULL
);
