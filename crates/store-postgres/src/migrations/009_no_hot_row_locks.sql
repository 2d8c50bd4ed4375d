-- Migration 9: no row every redemption locks. The foreign keys from the
-- ledger's postings to their account and from transactions and audit
-- records to their merchant made each redemption take a KEY SHARE lock on
-- the merchant's row and on the merchant's counter account: concurrent
-- redemptions of one merchant piled MultiXacts onto those two rows. The
-- ledger statement writes these references from rows it has just read in
-- the same statement (the account it updated, the merchant of the signed
-- call), nothing deletes merchants or accounts, and `kaquan verify` checks
-- that every reference resolves.
ALTER TABLE ledger_postings DROP CONSTRAINT ledger_postings_account_id_fkey;
ALTER TABLE ledger_transactions DROP CONSTRAINT ledger_transactions_merchant_id_fkey;
ALTER TABLE audit_log DROP CONSTRAINT audit_log_merchant_id_fkey;
