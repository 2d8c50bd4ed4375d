-- Migration 33: the audit chain (kaquan_core::audit::chain). A record is
-- written unsealed in its change's transaction; the sealer then sets its
-- place in its merchant's chain, the previous record's hash and its own,
-- once. A sealed record never changes and is never deleted (the trigger
-- stops a mistake; one who drops it is caught by the chain).
ALTER TABLE audit_log ADD COLUMN chain_seq BIGINT;
ALTER TABLE audit_log ADD COLUMN prev_hash BYTEA;
ALTER TABLE audit_log ADD COLUMN chain_hash BYTEA;
CREATE UNIQUE INDEX audit_log_chain ON audit_log (merchant_id, chain_seq) WHERE chain_seq IS NOT NULL;
CREATE INDEX audit_log_unsealed ON audit_log (id) WHERE chain_seq IS NULL;
CREATE FUNCTION audit_log_sealed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'a sealed audit record never changes';
END $$;
CREATE TRIGGER audit_log_sealed_no_change BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW WHEN (OLD.chain_seq IS NOT NULL) EXECUTE FUNCTION audit_log_sealed();
