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
