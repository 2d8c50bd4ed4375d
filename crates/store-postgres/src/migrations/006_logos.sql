-- Migration 6: the merchant's logo on the pickup page (提货前台).

CREATE TABLE merchant_logos (
    merchant_id BIGINT PRIMARY KEY REFERENCES merchants(id),
    content_type TEXT NOT NULL CHECK (content_type IN ('image/png', 'image/jpeg', 'image/webp', 'image/gif')),
    bytes BYTEA NOT NULL,
    updated_at BIGINT NOT NULL
);
