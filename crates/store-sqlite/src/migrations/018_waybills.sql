-- Migration 18: 电子面单 - the sender and each carrier's channel, and one
-- waybill per order, claimed before the carrier is called (claimed_until),
-- so a second click or a retry never makes a second waybill.
CREATE TABLE waybill_settings (
    merchant_id INTEGER PRIMARY KEY REFERENCES merchants(id),
    sender_name TEXT NOT NULL,
    sender_phone TEXT NOT NULL,
    sender_province TEXT NOT NULL,
    sender_city TEXT NOT NULL,
    sender_district TEXT NOT NULL,
    sender_address TEXT NOT NULL,
    sf_partner_id TEXT NOT NULL,
    -- The SF check word and the 快递100 secret, sealed with the merchant's key.
    sf_check_word_sealed BLOB,
    kuaidi100_key TEXT NOT NULL,
    kuaidi100_secret_sealed BLOB,
    key_version INTEGER NOT NULL,
    -- JSON: [{carrier, channel, monthly_account, product_type, carrier_code}].
    carriers TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE waybills (
    merchant_id INTEGER NOT NULL,
    order_id INTEGER NOT NULL,
    carrier TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('calling', 'created', 'failed')),
    waybill_no TEXT,
    error TEXT NOT NULL DEFAULT '',
    calls INTEGER NOT NULL,
    claimed_until INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (merchant_id, order_id)
);
