-- Migration 34: the audit chain (kaquan_core::audit::chain). A record is
-- written unsealed in its change's transaction; the sealer then sets its
-- place in its merchant's chain, the previous record's hash and its own,
-- once. A sealed record never changes and is never deleted (these triggers
-- stop a mistake; one who drops them is caught by the chain).
ALTER TABLE audit_log ADD COLUMN chain_seq INTEGER;
ALTER TABLE audit_log ADD COLUMN prev_hash BLOB;
ALTER TABLE audit_log ADD COLUMN chain_hash BLOB;
CREATE UNIQUE INDEX audit_log_chain ON audit_log (merchant_id, chain_seq) WHERE chain_seq IS NOT NULL;
CREATE INDEX audit_log_unsealed ON audit_log (id) WHERE chain_seq IS NULL;
CREATE TRIGGER audit_log_sealed_no_update BEFORE UPDATE ON audit_log WHEN OLD.chain_seq IS NOT NULL
BEGIN SELECT RAISE(ABORT, 'a sealed audit record never changes'); END;
CREATE TRIGGER audit_log_sealed_no_delete BEFORE DELETE ON audit_log WHEN OLD.chain_seq IS NOT NULL
BEGIN SELECT RAISE(ABORT, 'a sealed audit record is never deleted'); END;
