-- Migration 27: 通知设置's member texts - E: points or balance changed
-- (one text when both did); F: 支付后赠会员卡's link to 开卡; G: points
-- about to lapse. Off until the merchant turns them on.
ALTER TABLE sms_settings ADD COLUMN notify_member_on_change INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sms_settings ADD COLUMN template_member_change TEXT NOT NULL DEFAULT '';
ALTER TABLE sms_settings ADD COLUMN notify_customer_on_invite INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sms_settings ADD COLUMN template_invite TEXT NOT NULL DEFAULT '';
ALTER TABLE sms_settings ADD COLUMN notify_member_on_expiry INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sms_settings ADD COLUMN template_points_expiring TEXT NOT NULL DEFAULT '';
