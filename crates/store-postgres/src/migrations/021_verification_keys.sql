-- A verification's record no longer carries a foreign key to its merchant,
-- its program or its location: each insert locked those rows (FOR KEY
-- SHARE), and with every counter verifying coupons of one program at once
-- PostgreSQL spent a third of its time reading the lockers of one row
-- (multixacts) and checking visibility through them. The record's coupon
-- (whose own keys name the merchant and the program) and customer keep
-- theirs; `kaquan verify` checks that merchant, program and location
-- agree with the coupon's (as the ledger's records are checked).
ALTER TABLE coupon_verifications
    DROP CONSTRAINT coupon_verifications_merchant_id_fkey,
    DROP CONSTRAINT coupon_verifications_program_id_fkey,
    DROP CONSTRAINT coupon_verifications_location_id_fkey;
