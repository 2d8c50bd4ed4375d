-- A 优惠券 program's logo uploaded in the console or through the API
-- (the program's logo_url then points at it; a URL may be given instead).
CREATE TABLE coupon_logos (
    program_id INTEGER PRIMARY KEY REFERENCES coupon_programs(id),
    merchant_id INTEGER NOT NULL REFERENCES merchants(id),
    content_type TEXT NOT NULL,
    bytes BLOB NOT NULL,
    updated_at INTEGER NOT NULL
);
