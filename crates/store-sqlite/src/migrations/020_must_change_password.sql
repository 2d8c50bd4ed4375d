-- Staff whose password someone else chose (the first start's owner, an
-- account an admin made or reset) are asked for a new one at sign-in.
ALTER TABLE staff ADD COLUMN must_change_password INTEGER NOT NULL DEFAULT 0 CHECK (must_change_password IN (0, 1));
