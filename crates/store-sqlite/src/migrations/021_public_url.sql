-- 公网地址: where a shop's customers reach it (QR codes, links), set in
-- 提货设置; NULL: the server's --public-url.
ALTER TABLE pickup_settings ADD COLUMN public_url TEXT;
