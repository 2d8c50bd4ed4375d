-- Migration 12: 短信 (通知设置) and the texts it sends.
--
-- A text is planned in the transaction that records its event (a pickup
-- order submitted or shipped) and sent later by a worker, leased for each
-- try (lease_until) like a webhook delivery.
CREATE TABLE sms_settings (
    merchant_id BIGINT PRIMARY KEY REFERENCES merchants(id),
    provider TEXT NOT NULL CHECK (provider IN ('aliyun', 'tencent')),
    access_key_id TEXT NOT NULL,
    -- The AccessKey secret, sealed with the merchant's key.
    secret_sealed BYTEA,
    key_version INTEGER NOT NULL,
    sdk_app_id TEXT NOT NULL,
    region TEXT NOT NULL,
    sign_name TEXT NOT NULL,
    notify_customer_on_submit BOOLEAN NOT NULL,
    template_submit TEXT NOT NULL,
    notify_admin_on_submit BOOLEAN NOT NULL,
    template_admin TEXT NOT NULL,
    -- Comma-separated.
    admin_phones TEXT NOT NULL,
    notify_customer_on_ship BOOLEAN NOT NULL,
    template_ship TEXT NOT NULL,
    notify_buyer_on_sale BOOLEAN NOT NULL,
    template_sale TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE sms_messages (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    merchant_id BIGINT NOT NULL,
    kind TEXT NOT NULL,
    phone TEXT NOT NULL,
    template TEXT NOT NULL,
    params TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'failed')),
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT,
    lease_until BIGINT NOT NULL DEFAULT 0,
    provider_code TEXT NOT NULL DEFAULT '',
    provider_message TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    sent_at BIGINT
);
CREATE INDEX sms_messages_due ON sms_messages (next_attempt_at) WHERE state = 'pending';
CREATE INDEX sms_messages_by_merchant ON sms_messages (merchant_id, id);
