-- Migration 34: a merchant's 预付卡政策 switch (kaquan_core::prepaid).
ALTER TABLE merchants ADD COLUMN prepaid_policy BOOLEAN NOT NULL DEFAULT false;
