-- Migration 5: the merchant's own carrier names (物流配置), such as 省外顺丰,
-- beside the common carriers every merchant starts with.

CREATE TABLE carriers (
    merchant_id INTEGER NOT NULL REFERENCES merchants(id),
    name TEXT NOT NULL CHECK (length(name) > 0),
    PRIMARY KEY (merchant_id, name)
);
