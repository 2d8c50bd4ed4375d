-- Migration 16: 短信 (通知设置) and the texts it sends.
--
-- A text is planned in the transaction that records its event (a pickup
-- order submitted or shipped) and sent later by a worker, leased for each
-- try (lease_until) like a webhook delivery.
CREATE TABLE sms_settings (
    merchant_id INTEGER PRIMARY KEY REFERENCES merchants(id),
    provider TEXT NOT NULL CHECK (provider IN ('aliyun', 'tencent')),
    access_key_id TEXT NOT NULL,
    -- The AccessKey secret, sealed with the merchant's key.
    secret_sealed BLOB,
    key_version INTEGER NOT NULL,
    sdk_app_id TEXT NOT NULL,
    region TEXT NOT NULL,
    sign_name TEXT NOT NULL,
    notify_customer_on_submit INTEGER NOT NULL,
    template_submit TEXT NOT NULL,
    notify_admin_on_submit INTEGER NOT NULL,
    template_admin TEXT NOT NULL,
    -- Comma-separated.
    admin_phones TEXT NOT NULL,
    notify_customer_on_ship INTEGER NOT NULL,
    template_ship TEXT NOT NULL,
    notify_buyer_on_sale INTEGER NOT NULL,
    template_sale TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE sms_messages (
    id INTEGER PRIMARY KEY,
    merchant_id INTEGER NOT NULL,
    kind TEXT NOT NULL,
    phone TEXT NOT NULL,
    template TEXT NOT NULL,
    params TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER,
    lease_until INTEGER NOT NULL DEFAULT 0,
    provider_code TEXT NOT NULL DEFAULT '',
    provider_message TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    sent_at INTEGER
);
CREATE INDEX sms_messages_due ON sms_messages (next_attempt_at) WHERE state = 'pending';
CREATE INDEX sms_messages_by_merchant ON sms_messages (merchant_id, id);
