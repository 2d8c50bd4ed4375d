-- Staff whose password someone else chose (the first start's owner, an
-- account an admin made or reset) are asked for a new one at sign-in.
ALTER TABLE staff ADD COLUMN must_change_password BOOLEAN NOT NULL DEFAULT false;
