-- Migration 39: 双人复核 of credential changes (kaquan_core::approval::
-- CredentialChange): the policy's switch, and a request's new settings
-- (payload, as JSON without their secret) with the secret sealed under the
-- merchant's key version as the settings keep it.
ALTER TABLE approval_policies ADD COLUMN credentials BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE approval_requests DROP CONSTRAINT approval_requests_kind_check,
    ADD CONSTRAINT approval_requests_kind_check CHECK (kind IN ('activate_cards', 'delete_cards',
        'export_secrets', 'adjust_balance', 'change_credentials')),
    ADD COLUMN payload TEXT NOT NULL DEFAULT '',
    ADD COLUMN secret_sealed BYTEA,
    ADD COLUMN key_version INTEGER NOT NULL DEFAULT 0;
