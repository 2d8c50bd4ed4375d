-- Migration 26: a 会员卡's tiers may fall with a refund (降级规则), and its face may show a background picture instead of
-- its colour, and the merchant's logo (WeChat's background_pic_url and
-- logo_url): an https:// address, or a picture uploaded here and kept in
-- member_card_pictures.
ALTER TABLE member_programs
    ADD COLUMN background_pic_url TEXT NOT NULL DEFAULT '',
    ADD COLUMN logo_url TEXT NOT NULL DEFAULT '',
    ADD COLUMN downgrade_on_refund BOOLEAN NOT NULL DEFAULT false;

CREATE TABLE member_card_pictures (
    program_id BIGINT NOT NULL REFERENCES member_programs(id),
    picture TEXT NOT NULL CHECK (picture IN ('logo', 'background')),
    merchant_id BIGINT NOT NULL REFERENCES merchants(id),
    content_type TEXT NOT NULL,
    bytes BYTEA NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (program_id, picture)
);
