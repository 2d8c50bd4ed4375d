-- Migration 10: the outbox and webhook deliveries (事件推送).
--
-- An event is written in the transaction of the change it records. A
-- dispatcher fans undispatched events out into one delivery per endpoint
-- that wants them; deliveries are leased for each attempt (lease_until), so
-- no two workers send one at once, and every attempt is kept.
CREATE TABLE events (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    merchant_id BIGINT NOT NULL,
    event_type TEXT NOT NULL,
    data TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    dispatched BOOLEAN NOT NULL DEFAULT false
);
CREATE INDEX events_undispatched ON events (id) WHERE NOT dispatched;
CREATE INDEX events_by_merchant ON events (merchant_id, id);

CREATE TABLE webhook_endpoints (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    merchant_id BIGINT NOT NULL REFERENCES merchants(id),
    url TEXT NOT NULL,
    description TEXT NOT NULL,
    -- ',a,b,' or '' for every type.
    event_types TEXT NOT NULL,
    enabled BOOLEAN NOT NULL,
    disabled_reason TEXT NOT NULL DEFAULT '',
    failing_since BIGINT,
    secret_sealed BYTEA NOT NULL,
    key_version INTEGER NOT NULL,
    previous_secret_sealed BYTEA,
    previous_key_version INTEGER,
    previous_secret_until BIGINT,
    deleted_at BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX webhook_endpoints_by_merchant ON webhook_endpoints (merchant_id);

CREATE TABLE webhook_deliveries (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    merchant_id BIGINT NOT NULL,
    event_id BIGINT NOT NULL REFERENCES events(id),
    endpoint_id BIGINT NOT NULL REFERENCES webhook_endpoints(id),
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    -- The attempts before the current round (a replay starts a new one).
    round_start BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT,
    lease_until BIGINT NOT NULL,
    last_status INTEGER,
    last_error TEXT NOT NULL DEFAULT '',
    delivered_at BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_by_merchant ON webhook_deliveries (merchant_id, id);

CREATE TABLE webhook_attempts (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id BIGINT NOT NULL REFERENCES webhook_deliveries(id),
    attempt_no BIGINT NOT NULL,
    status INTEGER,
    error TEXT NOT NULL,
    duration_ms BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX webhook_attempts_by_delivery ON webhook_attempts (delivery_id);
