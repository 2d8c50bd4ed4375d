-- coupon.expired is recorded once per coupon that passes its validity
-- unused: the sweep marks each it announces.
ALTER TABLE coupons ADD COLUMN expiry_announced INTEGER NOT NULL DEFAULT 0;
CREATE INDEX coupons_expiring ON coupons (valid_until) WHERE state = 'available' AND expiry_announced = 0;
