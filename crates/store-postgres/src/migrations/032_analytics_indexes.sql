-- Migration 32: 数据分析 reads cards by when they were activated, card
-- sales by when they were refunded and member operations by when they
-- happened, within one merchant. The card index is partial, so a batch's
-- inactive cards cost it nothing until they are activated.
CREATE INDEX cards_activated ON cards (merchant_id, activated_at) WHERE activated_at IS NOT NULL;
CREATE INDEX card_sales_refunded ON card_sales (merchant_id, refunded_at) WHERE refunded_at IS NOT NULL;
CREATE INDEX member_operations_time ON member_operations (merchant_id, created_at);
