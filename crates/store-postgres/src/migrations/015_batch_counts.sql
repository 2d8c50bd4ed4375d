-- A batch's cards counted by state (批次 page and list) from the index
-- alone; it also serves every lookup by batch the old index did.
CREATE INDEX cards_batch_state ON cards (batch_id, state);
DROP INDEX cards_batch;
