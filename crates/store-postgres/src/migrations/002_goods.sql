-- Migration 2: the goods catalogue (提货商品) and which goods each card may
-- be exchanged for (对应商品: a card redeems ONE of its linked goods).

CREATE TABLE goods (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    merchant_id BIGINT NOT NULL REFERENCES merchants(id),
    name TEXT NOT NULL CHECK (length(name) > 0),
    description TEXT NOT NULL DEFAULT '',
    sku TEXT NOT NULL DEFAULT '',
    erp_code TEXT NOT NULL DEFAULT '',
    -- 扩展属性 for the merchant's ERP: free "key: value" lines.
    attributes TEXT NOT NULL DEFAULT '',
    on_shelf BOOLEAN NOT NULL DEFAULT TRUE,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX goods_merchant ON goods (merchant_id, id);

CREATE TABLE goods_images (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    merchant_id BIGINT NOT NULL REFERENCES merchants(id),
    goods_id BIGINT NOT NULL REFERENCES goods(id),
    content_type TEXT NOT NULL CHECK (content_type IN ('image/png', 'image/jpeg', 'image/webp', 'image/gif')),
    bytes BYTEA NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX goods_images_goods ON goods_images (goods_id, id);

CREATE TABLE card_goods (
    card_id BIGINT NOT NULL REFERENCES cards(id) ON DELETE CASCADE,
    goods_id BIGINT NOT NULL REFERENCES goods(id),
    PRIMARY KEY (card_id, goods_id)
);
CREATE INDEX card_goods_goods ON card_goods (goods_id);

-- Merchants created before this migration: their owners and card managers
-- may manage goods too, as new merchants' built-in roles do.
UPDATE roles SET permissions = permissions || ',goods.manage'
WHERE name IN ('owner', 'card_manager') AND permissions NOT LIKE '%goods.manage%';
