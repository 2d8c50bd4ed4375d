-- Migration 32: the console's language each staff member chose (?lang=),
-- restored at every sign-in; NULL follows the browser.
ALTER TABLE staff ADD COLUMN language TEXT CHECK (language IN ('en', 'zh-CN'));
