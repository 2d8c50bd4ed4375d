-- Migration 11: card sales (商城卖卡).
--
-- A paid mall order takes unsold inactive cards of a batch once per order
-- (UNIQUE merchant_id, order_id) and activates them; cards.sale_id marks a
-- card sold for good, so a refunded sale's cards are never sold again.
CREATE TABLE card_sales (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    merchant_id BIGINT NOT NULL REFERENCES merchants(id),
    order_id TEXT NOT NULL,
    batch_id BIGINT NOT NULL REFERENCES batches(id),
    quantity BIGINT NOT NULL CHECK (quantity > 0),
    phone TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('sold', 'refunded')),
    created_at BIGINT NOT NULL,
    refunded_at BIGINT,
    n_refunded BIGINT NOT NULL DEFAULT 0,
    UNIQUE (merchant_id, order_id)
);

ALTER TABLE cards ADD COLUMN sale_id BIGINT REFERENCES card_sales(id);
-- The cards a sale may take, in serial order.
CREATE INDEX cards_unsold ON cards (batch_id, serial) WHERE state = 'inactive' AND sale_id IS NULL;
CREATE INDEX cards_by_sale ON cards (sale_id) WHERE sale_id IS NOT NULL;

ALTER TABLE idempotency_keys ADD COLUMN card_sale_id BIGINT;
