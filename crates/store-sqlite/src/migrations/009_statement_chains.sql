-- Migration 9: a customer's statement is a chain, not an index.
--
-- The index ledger_transactions (customer_id, id) put every new transaction
-- on the page of its customer: a group commit of redemptions for different
-- customers wrote one random index page per redemption, the largest share
-- of the WAL. Instead each transaction names the customer's previous one
-- (previous_id), and the customer's account names the last one and counts
-- them: the statement is read newest first by following the chain, and the
-- account row the transaction updates anyway carries the head.
-- `kaquan verify` checks the chains against the transactions themselves.
ALTER TABLE ledger_transactions ADD COLUMN previous_id INTEGER;
ALTER TABLE ledger_accounts ADD COLUMN last_transaction_id INTEGER;
ALTER TABLE ledger_accounts ADD COLUMN n_transactions INTEGER NOT NULL DEFAULT 0;

-- The ledger is append-only; this one-off fill of the new column is the
-- only update it ever takes.
DROP TRIGGER ledger_transactions_no_update;
UPDATE ledger_transactions SET previous_id = (
    SELECT MAX(t.id) FROM ledger_transactions t
    WHERE t.customer_id = ledger_transactions.customer_id AND t.id < ledger_transactions.id
);
CREATE TRIGGER ledger_transactions_no_update BEFORE UPDATE ON ledger_transactions
BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;

UPDATE ledger_accounts SET
    last_transaction_id = (SELECT MAX(t.id) FROM ledger_transactions t WHERE t.customer_id = ledger_accounts.customer_id),
    n_transactions = (SELECT count(*) FROM ledger_transactions t WHERE t.customer_id = ledger_accounts.customer_id)
WHERE kind = 'customer' AND asset = 'fen';

DROP INDEX ledger_transactions_customer;
