-- Migration 30: 概况's figures (kaquan_core::dashboard). Every event a
-- figure counts is tallied per merchant-local day (UTC+8, as
-- kaquan_core::clock's MERCHANT_UTC_OFFSET_SECONDS) and per 门店 where it
-- names one, by a trigger on the outbox, so each tally is written in the
-- change's own transaction by every path that records an event. A figure
-- over 30 days then reads a few rows per day, however many cards, orders
-- and transactions the shop has. Purging old events leaves their tallies.
--
-- Many nodes write at once: each connection adds to its own slot (its
-- backend pid modulo 16), so two redemptions at once never wait on one
-- tally row; readers sum the slots.
--
-- n is how many things the event names: cards (n_cards, or the e-cards of
-- a delivery), coupons given out, else one; amount_fen the money it
-- carried (a code's value, a coupon's discount). The event types are
-- kaquan_core::dashboard::TALLIED; the conformance suite checks both.

CREATE TABLE daily_tallies (
    merchant_id BIGINT NOT NULL,
    day INTEGER NOT NULL,
    event_type TEXT NOT NULL,
    location_id BIGINT NOT NULL DEFAULT 0,
    slot SMALLINT NOT NULL DEFAULT 0,
    n BIGINT NOT NULL,
    amount_fen BIGINT NOT NULL,
    PRIMARY KEY (merchant_id, day, event_type, location_id, slot)
);

CREATE FUNCTION tally_event() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    d jsonb := NEW.data::jsonb;
BEGIN
    INSERT INTO daily_tallies (merchant_id, day, event_type, location_id, slot, n, amount_fen)
    VALUES (NEW.merchant_id, (NEW.created_at + 28800) / 86400, NEW.event_type,
            COALESCE((d->>'location_id')::bigint, 0), pg_backend_pid() % 16,
            COALESCE((d->>'n_cards')::bigint, (d->>'cards')::bigint, jsonb_array_length(d->'coupons'), 1),
            COALESCE((d->>'amount_fen')::bigint, (d->>'discount_fen')::bigint, 0))
    ON CONFLICT (merchant_id, day, event_type, location_id, slot)
    DO UPDATE SET n = daily_tallies.n + EXCLUDED.n, amount_fen = daily_tallies.amount_fen + EXCLUDED.amount_fen;
    RETURN NULL;
END
$$;

INSERT INTO daily_tallies (merchant_id, day, event_type, location_id, n, amount_fen)
SELECT merchant_id, (created_at + 28800) / 86400, event_type,
       COALESCE((data::jsonb->>'location_id')::bigint, 0),
       SUM(COALESCE((data::jsonb->>'n_cards')::bigint, (data::jsonb->>'cards')::bigint,
                    jsonb_array_length(data::jsonb->'coupons'), 1)),
       SUM(COALESCE((data::jsonb->>'amount_fen')::bigint, (data::jsonb->>'discount_fen')::bigint, 0))
FROM events
WHERE event_type IN ('cards.activated', 'pickup_order.created', 'pickup_order.shipped', 'code.redeemed',
    'coupon.claimed', 'coupon.verified', 'coupon.undone', 'member.activated', 'ecard.delivered', 'ecard.verified')
GROUP BY 1, 2, 3, 4;

CREATE TRIGGER events_tally AFTER INSERT ON events FOR EACH ROW
WHEN (NEW.event_type IN ('cards.activated', 'pickup_order.created', 'pickup_order.shipped', 'code.redeemed',
    'coupon.claimed', 'coupon.verified', 'coupon.undone', 'member.activated', 'ecard.delivered', 'ecard.verified'))
EXECUTE FUNCTION tally_event();

-- What the merchant owes: its customers' balances, found without reading
-- other merchants' accounts (balance stays out of the index, so a
-- redemption's balance update can stay a HOT update).
CREATE INDEX ledger_accounts_customers_of ON ledger_accounts (merchant_id, asset) WHERE customer_id IS NOT NULL;

-- Deliveries given up on, counted from their own small indexes.
CREATE INDEX webhook_deliveries_failed ON webhook_deliveries (merchant_id) WHERE state = 'failed';
CREATE INDEX sms_messages_failed ON sms_messages (merchant_id) WHERE state = 'failed';
