-- A 优惠券 program's logo uploaded in the console or through the API
-- (the program's logo_url then points at it; a URL may be given instead).
CREATE TABLE coupon_logos (
    program_id BIGINT PRIMARY KEY REFERENCES coupon_programs(id),
    merchant_id BIGINT NOT NULL REFERENCES merchants(id),
    content_type TEXT NOT NULL,
    bytes BYTEA NOT NULL,
    updated_at BIGINT NOT NULL
);
