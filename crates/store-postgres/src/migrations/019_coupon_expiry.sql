-- coupon.expired is recorded once per coupon that passes its validity
-- unused: the sweep marks each it announces.
ALTER TABLE coupons ADD COLUMN expiry_announced BOOLEAN NOT NULL DEFAULT false;
CREATE INDEX coupons_expiring ON coupons (valid_until) WHERE state = 'available' AND NOT expiry_announced;
