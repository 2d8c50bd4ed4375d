//! 电子卡密 (seed 004, issue 21): e-card products sold on marketplaces, the
//! secrets held in stock and delivered to paid orders, and the rules that
//! decide what a delivered card is (未核销 / 已核销 / 已过期 / 已退款), what a
//! refund does to it, and when its holder is reminded. The store and the
//! pages come with the rest of the issue; these rules are written once here.
//!
//! A delivered card's status is derived from facts (verified, refunded,
//! its validity), never stored beside them.

pub mod analytics;
pub mod audit;
pub mod store;
#[cfg(test)]
mod tests;
pub mod usecases;

pub use store::*;

use crate::text::check_field;

/// A product's name, as a marketplace listing shows it.
pub const PRODUCT_NAME_CHARS_MAX: usize = 60;
/// 关键提醒: how and where the customer redeems it.
pub const INSTRUCTIONS_CHARS_MAX: usize = 2000;
/// The longest validity counted from delivery.
pub const VALID_DAYS_MAX: i64 = 3650;
/// Most marketplace listings one product is sold under.
pub const LISTINGS_MAX: usize = 50;
/// Longest marketplace product or SKU id.
pub const LISTING_ID_CHARS_MAX: usize = 64;
/// Most days before expiry a reminder may be sent.
pub const REMIND_DAYS_MAX: i64 = 90;

/// Where an order was paid (the `marketplace` field of the open API).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Marketplace {
    Pinduoduo,
    Taobao,
    Douyin,
    Xianyu,
    /// The merchant's own shop.
    Own,
}

impl Marketplace {
    pub const ALL: [Self; 5] = [
        Self::Pinduoduo,
        Self::Taobao,
        Self::Douyin,
        Self::Xianyu,
        Self::Own,
    ];
    pub fn code(self) -> &'static str {
        match self {
            Self::Pinduoduo => "pinduoduo",
            Self::Taobao => "taobao",
            Self::Douyin => "douyin",
            Self::Xianyu => "xianyu",
            Self::Own => "own",
        }
    }
    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.code() == code)
    }
    pub fn label_zh(self) -> &'static str {
        match self {
            Self::Pinduoduo => "拼多多",
            Self::Taobao => "淘宝/天猫",
            Self::Douyin => "抖音",
            Self::Xianyu => "闲鱼",
            Self::Own => "自有商城",
        }
    }
}

/// What the customer receives (虚拟商品发货's forms).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryForm {
    /// 卡号 + 密码.
    NumberAndPassword,
    /// A code alone.
    Code,
    /// A redemption link.
    Link,
    /// A QR image to scan.
    QrImage,
}

impl DeliveryForm {
    pub const ALL: [Self; 4] = [
        Self::NumberAndPassword,
        Self::Code,
        Self::Link,
        Self::QrImage,
    ];
    pub fn code(self) -> &'static str {
        match self {
            Self::NumberAndPassword => "number_password",
            Self::Code => "code",
            Self::Link => "link",
            Self::QrImage => "qr_image",
        }
    }
    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.code() == code)
    }
    pub fn label_zh(self) -> &'static str {
        match self {
            Self::NumberAndPassword => "卡号+密码",
            Self::Code => "兑换码",
            Self::Link => "兑换链接",
            Self::QrImage => "二维码",
        }
    }
}

/// How long a delivered card may be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EcardValidity {
    /// Until a fixed last second (unix seconds).
    Until(i64),
    /// `days` days from delivery.
    DaysAfterDelivery(i64),
}

impl EcardValidity {
    /// The last second a card delivered at `delivered_at` may be used.
    pub fn valid_until(self, delivered_at: i64) -> i64 {
        match self {
            Self::Until(end) => end,
            Self::DaysAfterDelivery(days) => delivered_at + days * 86_400 - 1,
        }
    }
}

/// One listing a product is sold under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    pub marketplace: Marketplace,
    pub product_id: String,
    /// Empty when the listing has one SKU.
    pub sku_id: String,
}

/// What a merchant fills in for an e-card product (虚拟商品).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcardProductFields {
    pub name: String,
    pub face_value_fen: i64,
    pub delivery_form: DeliveryForm,
    /// 关键提醒: how and where to redeem, shown on the delivery page.
    pub instructions: String,
    pub validity: EcardValidity,
    /// kaquan issues its own verification code per delivered card.
    pub own_verification_code: bool,
    pub listings: Vec<Listing>,
    /// 过期预警: days before its end an unused card's buyer is reminded once
    /// (0: never).
    pub remind_days: i64,
    /// An unused card past its end raises `ecard.expired`, for the
    /// merchant's system to refund the buyer.
    pub refund_expired: bool,
}

impl EcardProductFields {
    /// Every problem with the fields, in Chinese, at once.
    pub fn check(&self) -> Result<(), Vec<String>> {
        let mut errors = Vec::new();
        if self.name.trim().is_empty() {
            errors.push("请填写商品名称".to_owned());
        } else if let Err(e) = check_field("商品名称", &self.name, PRODUCT_NAME_CHARS_MAX) {
            errors.push(e);
        }
        if !(0..=crate::money::FEN_MAX).contains(&self.face_value_fen) {
            errors.push("面值须在 0 到 1,000,000 元之间".to_owned());
        }
        if self.instructions.trim().is_empty() {
            errors.push("请填写兑换说明（在哪里、怎样兑换）".to_owned());
        } else if crate::text::is_too_long(&self.instructions, INSTRUCTIONS_CHARS_MAX) {
            errors.push(format!("兑换说明最多 {INSTRUCTIONS_CHARS_MAX} 个字符"));
        }
        if let EcardValidity::DaysAfterDelivery(days) = self.validity {
            if !(1..=VALID_DAYS_MAX).contains(&days) {
                errors.push(format!("发货后有效天数须为 1–{VALID_DAYS_MAX}"));
            }
        }
        if !(0..=REMIND_DAYS_MAX).contains(&self.remind_days) {
            errors.push(format!("过期预警须为 0–{REMIND_DAYS_MAX} 天（0 为不提醒）"));
        }
        if self.listings.len() > LISTINGS_MAX {
            errors.push(format!("一个商品最多对应 {LISTINGS_MAX} 个平台商品"));
        }
        for listing in &self.listings {
            if listing.product_id.trim().is_empty() {
                errors.push(format!(
                    "{}的商品 ID 不能为空",
                    listing.marketplace.label_zh()
                ));
            }
            for (what, id) in [
                ("商品 ID", &listing.product_id),
                ("SKU ID", &listing.sku_id),
            ] {
                if let Err(e) = check_field(what, id, LISTING_ID_CHARS_MAX) {
                    errors.push(e);
                }
            }
        }
        let mut seen = std::collections::HashSet::new();
        for l in &self.listings {
            if !seen.insert((l.marketplace, l.product_id.trim(), l.sku_id.trim())) {
                errors.push(format!(
                    "{}的商品 {} 重复",
                    l.marketplace.label_zh(),
                    l.product_id
                ));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// A delivered card as the marketplaces' 虚拟商品管理 shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveredStatus {
    /// 未核销.
    Unverified,
    /// 已核销.
    Verified,
    /// 已过期: its validity ended unused.
    Expired,
    /// 已退款: the order line was refunded while it was unused.
    Refunded,
}

impl DeliveredStatus {
    pub const ALL: [Self; 4] = [
        Self::Unverified,
        Self::Verified,
        Self::Expired,
        Self::Refunded,
    ];
    pub fn code(self) -> &'static str {
        match self {
            Self::Unverified => "unverified",
            Self::Verified => "verified",
            Self::Expired => "expired",
            Self::Refunded => "refunded",
        }
    }
    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.code() == code)
    }
    pub fn label_zh(self) -> &'static str {
        match self {
            Self::Unverified => "未核销",
            Self::Verified => "已核销",
            Self::Expired => "已过期",
            Self::Refunded => "已退款",
        }
    }
}

/// The facts a delivered card's status is derived from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveredFacts {
    pub valid_until: i64,
    pub verified_at: Option<i64>,
    pub refunded_at: Option<i64>,
}

impl DeliveredFacts {
    /// Its status at `now`: a use stands whatever came after; a refund
    /// before any use ends it; otherwise its validity decides.
    pub fn status(&self, now: i64) -> DeliveredStatus {
        match (self.verified_at, self.refunded_at) {
            (Some(_), _) => DeliveredStatus::Verified,
            (None, Some(_)) => DeliveredStatus::Refunded,
            (None, None) if now > self.valid_until => DeliveredStatus::Expired,
            (None, None) => DeliveredStatus::Unverified,
        }
    }

    /// Whether a refund now takes the card back: only one still unused
    /// within its validity.
    pub fn refundable(&self, now: i64) -> bool {
        self.status(now) == DeliveredStatus::Unverified
    }

    /// Whether the one 过期预警 is due at `now`, `remind_days` before the
    /// end, for a card still unused and not yet reminded.
    pub fn reminder_due(&self, remind_days: i64, reminded: bool, now: i64) -> bool {
        !reminded
            && self.status(now) == DeliveredStatus::Unverified
            && now >= self.valid_until - remind_days * 86_400
    }
}

/// How a delivered card was confirmed used (核销), the seed's three ways.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VerificationWay {
    /// 第三方平台核销回传: the redeeming platform's signed callback.
    Callback,
    /// kaquan's own verification code, on the verifier page or the API.
    OwnCode,
    /// Staff marked it, with a note and perhaps the customer's screenshot.
    Manual,
}

impl VerificationWay {
    pub const ALL: [Self; 3] = [Self::Callback, Self::OwnCode, Self::Manual];
    pub fn code(self) -> &'static str {
        match self {
            Self::Callback => "callback",
            Self::OwnCode => "own_code",
            Self::Manual => "manual",
        }
    }
    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|w| w.code() == code)
    }
    pub fn label_zh(self) -> &'static str {
        match self {
            Self::Callback => "第三方回传",
            Self::OwnCode => "核销码",
            Self::Manual => "手动标记",
        }
    }
}

/// What a refund does to an unused delivered card's secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundOutcome {
    /// Never revealed: back to stock, available to the next order.
    BackToStock,
    /// Revealed (the customer saw it): voided for good.
    Voided,
}

/// A refund's outcome for a card whose secret was or was not revealed.
pub fn refund_outcome(revealed: bool) -> RefundOutcome {
    if revealed {
        RefundOutcome::Voided
    } else {
        RefundOutcome::BackToStock
    }
}

/// The rows of an import that are new: the first of each secret within the
/// file, and none already in stock (`known` says so of a digest). Returns
/// the indices kept and, for each dropped row, its index and why.
pub fn dedupe_import<D: std::hash::Hash + Eq + Clone>(
    digests: &[D],
    known: impl Fn(&D) -> bool,
) -> (Vec<usize>, Vec<(usize, &'static str)>) {
    let mut seen = std::collections::HashSet::new();
    let (mut kept, mut dropped) = (Vec::new(), Vec::new());
    for (idx, digest) in digests.iter().enumerate() {
        if !seen.insert(digest.clone()) {
            dropped.push((idx, "与文件中前面的行重复"));
        } else if known(digest) {
            dropped.push((idx, "已在库存中"));
        } else {
            kept.push(idx);
        }
    }
    (kept, dropped)
}
