-- Migration 13: room in each new code's row for its redemption.
--
-- Codes are written in batches, so their pages are packed full. Redeeming a
-- code fills customer_id and redeemed_at (NULL before: no bytes), which grew
-- the row, split its page, and made SQLite reorder sibling pages: a page
-- split on every group commit or so, each with a scan of the writer's page
-- cache. A new code now carries `room` (eight zero bytes); its redemption
-- sets it to NULL in the same statement, so the row does not grow. Codes
-- written before this migration have no room and split as before.
ALTER TABLE codes ADD COLUMN room BLOB;
