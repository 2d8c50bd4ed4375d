-- 核销 changes a coupon's state; it should rewrite the coupon's row, not
-- move it between index ranges as well (a verification wrote three times
-- the WAL pages of a code redemption). So the state leaves the coupon's
-- indexes:
-- * each program counts its verified coupons itself (n_verified, kept by
--   核销 and its undo; `kaquan verify` checks it against the coupons);
-- * the program's index holds only its usable coupons (verification
--   removes one entry), which is what counting the expired reads;
-- * the expiry sweep's index holds every coupon whose end it has not yet
--   handled, verified or not: the sweep marks a verified one without an
--   event, and undoing a verification makes its coupon due again.
ALTER TABLE coupon_programs ADD COLUMN n_verified INTEGER NOT NULL DEFAULT 0 CHECK (n_verified >= 0);
UPDATE coupon_programs SET n_verified =
    (SELECT count(*) FROM coupons c WHERE c.program_id = coupon_programs.id AND c.state = 'verified');
DROP INDEX coupons_program;
CREATE INDEX coupons_program ON coupons (program_id, valid_until) WHERE state = 'available';
DROP INDEX coupons_expiring;
CREATE INDEX coupons_expiring ON coupons (valid_until) WHERE expiry_announced = 0;
-- Nothing reads verifications by coupon.
DROP INDEX coupon_verifications_coupon;
