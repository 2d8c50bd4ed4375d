-- Migration 4: 提货设置, one row per merchant (absent means the defaults).

CREATE TABLE pickup_settings (
    merchant_id BIGINT PRIMARY KEY REFERENCES merchants(id),
    title TEXT NOT NULL,
    notice TEXT NOT NULL,
    enabled BOOLEAN NOT NULL,
    closed_message TEXT NOT NULL,
    appointment_mode TEXT NOT NULL CHECK (appointment_mode IN ('none', 'any', 'min_days', 'range', 'weekdays')),
    appointment_min_days BIGINT,
    appointment_from TEXT,
    appointment_until TEXT,
    blocked_dates TEXT NOT NULL,
    redirect_url TEXT,
    attempts_per_card BIGINT NOT NULL CHECK (attempts_per_card > 0),
    attempts_per_client BIGINT NOT NULL CHECK (attempts_per_client > 0),
    updated_at BIGINT NOT NULL
);

-- Merchants created before this migration get the pickup permissions their
-- built-in roles have for new merchants.
UPDATE roles SET permissions = permissions || ',orders.manage,pickup.assist,personal_data.view'
WHERE name IN ('owner', 'order_clerk') AND permissions NOT LIKE '%orders.manage%';
UPDATE roles SET permissions = permissions || ',pickup.assist'
WHERE name = 'verifier' AND permissions NOT LIKE '%pickup.assist%';
