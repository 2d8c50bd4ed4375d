-- An operation belongs to its member and the member's merchant, checked as
-- one key: (member_id, merchant_id) must name a member of that merchant.
-- This replaces the two single-column keys. The one to merchants locked the
-- merchant's row (FOR KEY SHARE) on every operation, so every payment of a
-- shop queued on that one row. The member's row is locked by the operation
-- already, and this key is stricter: an operation can no longer name another
-- merchant than its member's.
CREATE UNIQUE INDEX members_id_merchant ON members (id, merchant_id);
ALTER TABLE member_operations DROP CONSTRAINT member_operations_merchant_id_fkey;
ALTER TABLE member_operations DROP CONSTRAINT member_operations_member_id_fkey;
ALTER TABLE member_operations ADD CONSTRAINT member_operations_member_merchant
    FOREIGN KEY (member_id, merchant_id) REFERENCES members (id, merchant_id);
