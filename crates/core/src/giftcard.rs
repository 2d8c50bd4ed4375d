//! 礼品卡 (seed 000): the merchant's 礼品卡设置, the pictures of the gift-card
//! pages and 礼品卡商品, what the mall sells.

use crate::audit::AuditEntry;
use crate::StoreResult;

/// 礼品卡设置.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GiftcardSettings {
    /// 礼品卡活动: the exchange centre works only when on.
    pub enabled: bool,
    /// 个人中心入口.
    pub centre_entry: bool,
    /// 兑换防刷: wrong codes allowed per customer and per client per hour.
    pub attempt_limit: i64,
    /// 礼品卡中心名称自定义.
    pub centre_name: String,
    /// 分享标题.
    pub share_title: String,
    /// 礼品卡兑换中心说明.
    pub description: String,
    /// Customers may also sign in with phone + password.
    pub phone_login: bool,
    /// 是否参与分销: whether the mall pays its distributors on gift-card sales.
    pub distribution: bool,
    /// 活动商品展示方式 on the mall's gift-card centre.
    pub goods_display: GoodsDisplay,
}

/// 活动商品展示方式.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoodsDisplay {
    /// 列表.
    List,
    /// 大图.
    Grid,
}

impl GoodsDisplay {
    pub fn code(self) -> &'static str {
        match self {
            Self::List => "list",
            Self::Grid => "grid",
        }
    }
    pub fn parse(code: &str) -> Option<Self> {
        [Self::List, Self::Grid]
            .into_iter()
            .find(|d| d.code() == code)
    }
}

impl Default for GiftcardSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            centre_entry: true,
            attempt_limit: 5,
            centre_name: "礼品卡中心".into(),
            share_title: String::new(),
            description: String::new(),
            phone_login: false,
            distribution: false,
            goods_display: GoodsDisplay::List,
        }
    }
}

impl GiftcardSettings {
    pub fn check(&self) -> Result<(), Vec<String>> {
        let mut errors = Vec::new();
        if !(1..=1000).contains(&self.attempt_limit) {
            errors.push("兑换防刷必须是 1–1000 之间的整数".to_owned());
        }
        if self.centre_name.trim().is_empty() || self.centre_name.chars().count() > 30 {
            errors.push("礼品卡中心名称必须是 1–30 个字".to_owned());
        }
        if self.share_title.chars().count() > 60 {
            errors.push("分享标题最多 60 个字".to_owned());
        }
        if self.description.chars().count() > 2000 {
            errors.push("兑换中心说明最多 2000 个字".to_owned());
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// The pictures of the gift-card pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GiftcardImageSlot {
    /// 分享图片.
    Share,
    /// 礼品卡首页入口封面图.
    Cover,
    /// 礼品卡页顶部图片.
    Banner,
}

impl GiftcardImageSlot {
    pub const ALL: [Self; 3] = [Self::Share, Self::Cover, Self::Banner];
    pub fn code(self) -> &'static str {
        match self {
            Self::Share => "share",
            Self::Cover => "cover",
            Self::Banner => "banner",
        }
    }
    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.code() == code)
    }
    pub fn label_zh(self) -> &'static str {
        match self {
            Self::Share => "分享图片",
            Self::Cover => "礼品卡首页入口封面图",
            Self::Banner => "礼品卡页顶部图片",
        }
    }
}

/// 礼品卡商品: what the mall sells; each sale issues codes of its template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GiftcardProductFields {
    pub name: String,
    /// 关联兑换码 (an online template).
    pub template_id: i64,
    pub price_fen: i64,
    pub on_shelf: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GiftcardProduct {
    pub id: i64,
    pub merchant_id: i64,
    pub fields: GiftcardProductFields,
    pub template_name: String,
    pub face_value_fen: i64,
    pub created_at: i64,
    /// Whether the linked template still exists (it was not deleted).
    pub template_live: bool,
}

/// 礼品卡设置, its pictures and 礼品卡商品 in the database.
#[async_trait::async_trait]
pub trait GiftcardStore: Send + Sync + 'static {
    /// 礼品卡设置; the defaults when the merchant never saved any.
    async fn get_giftcard_settings(&self, merchant_id: i64) -> StoreResult<GiftcardSettings>;
    async fn put_giftcard_settings(
        &self,
        merchant_id: i64,
        settings: &GiftcardSettings,
        audit: &AuditEntry,
    ) -> StoreResult<()>;
    async fn put_giftcard_image(
        &self,
        merchant_id: i64,
        slot: GiftcardImageSlot,
        content_type: &str,
        bytes: &[u8],
        now: i64,
    ) -> StoreResult<()>;
    async fn get_giftcard_image(
        &self,
        merchant_id: i64,
        slot: GiftcardImageSlot,
    ) -> StoreResult<Option<(String, Vec<u8>)>>;
    /// Which slots have a picture, and when each last changed (no bytes).
    async fn giftcard_images(&self, merchant_id: i64)
        -> StoreResult<Vec<(GiftcardImageSlot, i64)>>;

    async fn create_giftcard_product(
        &self,
        merchant_id: i64,
        fields: &GiftcardProductFields,
        now: i64,
    ) -> StoreResult<GiftcardProduct>;
    async fn update_giftcard_product(
        &self,
        merchant_id: i64,
        product_id: i64,
        fields: &GiftcardProductFields,
    ) -> StoreResult<()>;
    async fn list_giftcard_products(&self, merchant_id: i64) -> StoreResult<Vec<GiftcardProduct>>;
}
