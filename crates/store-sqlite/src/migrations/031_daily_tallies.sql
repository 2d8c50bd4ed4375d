-- Migration 31: 概况's figures (kaquan_core::dashboard). Every event a
-- figure counts is tallied per merchant-local day (UTC+8, as
-- kaquan_core::clock's MERCHANT_UTC_OFFSET_SECONDS) and per 门店 where it
-- names one, by a trigger on the outbox, so each tally is written in the
-- change's own transaction by every path that records an event, the
-- set-wise ones included. A figure over 30 days then reads at most 30 rows
-- per location, however many cards, orders and transactions the shop has.
-- Purging old events leaves their tallies standing.
--
-- n is how many things the event names: cards (n_cards, or the e-cards of
-- a delivery), coupons given out, else one; amount_fen the money it
-- carried (a code's value, a coupon's discount). The event types are
-- kaquan_core::dashboard::TALLIED; the conformance suite checks both.

CREATE TABLE daily_tallies (
    merchant_id INTEGER NOT NULL,
    day INTEGER NOT NULL,
    event_type TEXT NOT NULL,
    location_id INTEGER NOT NULL DEFAULT 0,
    n INTEGER NOT NULL,
    amount_fen INTEGER NOT NULL,
    PRIMARY KEY (merchant_id, day, event_type, location_id)
) WITHOUT ROWID;

INSERT INTO daily_tallies (merchant_id, day, event_type, location_id, n, amount_fen)
SELECT merchant_id, (created_at + 28800) / 86400, event_type,
       COALESCE(json_extract(data, '$.location_id'), 0),
       SUM(COALESCE(json_extract(data, '$.n_cards'), json_extract(data, '$.cards'),
                    json_array_length(data, '$.coupons'), 1)),
       SUM(COALESCE(json_extract(data, '$.amount_fen'), json_extract(data, '$.discount_fen'), 0))
FROM events
WHERE event_type IN ('cards.activated', 'pickup_order.created', 'pickup_order.shipped', 'code.redeemed',
    'coupon.claimed', 'coupon.verified', 'coupon.undone', 'member.activated', 'ecard.delivered', 'ecard.verified')
GROUP BY 1, 2, 3, 4;

CREATE TRIGGER events_tally AFTER INSERT ON events
WHEN NEW.event_type IN ('cards.activated', 'pickup_order.created', 'pickup_order.shipped', 'code.redeemed',
    'coupon.claimed', 'coupon.verified', 'coupon.undone', 'member.activated', 'ecard.delivered', 'ecard.verified')
BEGIN
    INSERT INTO daily_tallies (merchant_id, day, event_type, location_id, n, amount_fen)
    VALUES (NEW.merchant_id, (NEW.created_at + 28800) / 86400, NEW.event_type,
            COALESCE(json_extract(NEW.data, '$.location_id'), 0),
            COALESCE(json_extract(NEW.data, '$.n_cards'), json_extract(NEW.data, '$.cards'),
                     json_array_length(NEW.data, '$.coupons'), 1),
            COALESCE(json_extract(NEW.data, '$.amount_fen'), json_extract(NEW.data, '$.discount_fen'), 0))
    ON CONFLICT (merchant_id, day, event_type, location_id)
    DO UPDATE SET n = n + excluded.n, amount_fen = amount_fen + excluded.amount_fen;
END;

-- What the merchant owes: its customers' balances, found without reading
-- other merchants' accounts (balance stays out of the index, so a
-- redemption's balance update touches no index).
CREATE INDEX ledger_accounts_customers_of ON ledger_accounts (merchant_id, asset) WHERE customer_id IS NOT NULL;

-- Deliveries given up on, counted from their own small indexes.
CREATE INDEX webhook_deliveries_failed ON webhook_deliveries (merchant_id) WHERE state = 'failed';
CREATE INDEX sms_messages_failed ON sms_messages (merchant_id) WHERE state = 'failed';
