-- Migration 35: a merchant's 预付卡政策 switch (kaquan_core::prepaid).
ALTER TABLE merchants ADD COLUMN prepaid_policy INTEGER NOT NULL DEFAULT 0;
