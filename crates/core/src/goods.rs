//! The goods catalogue (提货商品): what a pickup card can be exchanged for.
//! Single goods and gift boxes are both just goods (seed 003). A card is
//! linked to any number of goods and redeems exactly ONE of them.

use crate::audit::AuditEntry;
use crate::card::CardFilter;
use crate::StoreResult;

/// Most characters in a goods name.
pub const GOODS_NAME_LENGTH_MAX: usize = 100;
/// Most characters in a description (rich text as the merchant writes it).
pub const GOODS_DESCRIPTION_LENGTH_MAX: usize = 20_000;
/// Largest goods image accepted.
pub const GOODS_IMAGE_BYTES_MAX: usize = 2 * 1024 * 1024;
/// Most images one goods may have.
pub const GOODS_IMAGES_MAX: usize = 9;
/// Most goods one card may be linked to.
pub const GOODS_PER_CARD_MAX: usize = 50;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Goods {
    pub id: i64,
    pub merchant_id: i64,
    pub name: String,
    pub description: String,
    pub sku: String,
    pub erp_code: String,
    pub attributes: String,
    pub on_shelf: bool,
    /// Image ids in upload order; the first is the cover.
    pub image_ids: Vec<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The editable fields of a goods, validated by [`GoodsFields::new`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GoodsFields {
    pub name: String,
    pub description: String,
    pub sku: String,
    pub erp_code: String,
    pub attributes: String,
    pub on_shelf: bool,
}

impl GoodsFields {
    /// Only the name is required (seed 003: 商品名称是必须要录的).
    pub fn new(
        name: &str,
        description: &str,
        sku: &str,
        erp_code: &str,
        attributes: &str,
        on_shelf: bool,
    ) -> Result<Self, String> {
        let name = name.trim();
        if name.is_empty() {
            return Err("请填写商品名称".into());
        }
        if name.chars().count() > GOODS_NAME_LENGTH_MAX {
            return Err(format!("商品名称最多 {GOODS_NAME_LENGTH_MAX} 个字"));
        }
        if description.chars().count() > GOODS_DESCRIPTION_LENGTH_MAX {
            return Err(format!(
                "商品详细内容最多 {GOODS_DESCRIPTION_LENGTH_MAX} 个字"
            ));
        }
        for (value, label) in [(sku, "SKU"), (erp_code, "ERP 编码")] {
            if value.chars().count() > 64 {
                return Err(format!("{label}最多 64 个字符"));
            }
        }
        if attributes.chars().count() > 2000 {
            return Err("扩展属性最多 2000 个字".into());
        }
        Ok(Self {
            name: name.to_owned(),
            description: description.trim().to_owned(),
            sku: sku.trim().to_owned(),
            erp_code: erp_code.trim().to_owned(),
            attributes: attributes.trim().to_owned(),
            on_shelf,
        })
    }
}

/// The image formats we store and serve, recognised by their first bytes,
/// never by the name or the type the uploader claims.
pub fn sniff_image_type(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some("image/gif")
    } else {
        None
    }
}

/// How 对应商品 changes the goods of the chosen cards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoodsLinkMode {
    /// The cards can afterwards be exchanged for exactly these goods.
    Replace,
    /// These goods join whatever the cards had (a newly combined gift box).
    Add,
}

/// Goods (提货商品) and which cards may be exchanged for them.
#[async_trait::async_trait]
pub trait GoodsStore: Send + Sync + 'static {
    async fn create_goods(
        &self,
        merchant_id: i64,
        fields: &GoodsFields,
        now: i64,
    ) -> StoreResult<Goods>;
    async fn update_goods(
        &self,
        merchant_id: i64,
        goods_id: i64,
        fields: &GoodsFields,
        now: i64,
    ) -> StoreResult<()>;
    /// All goods of the merchant, or only those on the shelf.
    async fn list_goods(&self, merchant_id: i64, on_shelf_only: bool) -> StoreResult<Vec<Goods>>;
    async fn get_goods(&self, merchant_id: i64, goods_id: i64) -> StoreResult<Goods>;
    /// Stores an image (already checked: a known type, within the size limit).
    async fn add_goods_image(
        &self,
        merchant_id: i64,
        goods_id: i64,
        content_type: &str,
        bytes: &[u8],
        now: i64,
    ) -> StoreResult<i64>;
    async fn delete_goods_image(
        &self,
        merchant_id: i64,
        goods_id: i64,
        image_id: i64,
    ) -> StoreResult<()>;
    /// The content type and bytes of one image.
    async fn get_goods_image(
        &self,
        merchant_id: i64,
        image_id: i64,
    ) -> StoreResult<(String, Vec<u8>)>;
    /// Links the matching cards to `goods_ids` (all of the merchant), in one
    /// transaction with `audit`; returns how many cards were matched.
    async fn link_card_goods(
        &self,
        merchant_id: i64,
        filter: &CardFilter,
        goods_ids: &[i64],
        mode: GoodsLinkMode,
        audit: &AuditEntry,
    ) -> StoreResult<i64>;
    /// The goods a card may be exchanged for.
    async fn goods_of_card(&self, merchant_id: i64, card_id: i64) -> StoreResult<Vec<Goods>>;
    /// The names of each card's goods, as `(card_id, goods name)` by card
    /// and goods id (a page of the card list's 对应商品 in one query).
    async fn goods_names_of_cards(
        &self,
        merchant_id: i64,
        card_ids: &[i64],
    ) -> StoreResult<Vec<(i64, String)>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_name_is_required() {
        let fields = GoodsFields::new(" 苹果桃子礼盒 ", "", "", "", "", true).unwrap();
        assert_eq!(fields.name, "苹果桃子礼盒");
        assert!(GoodsFields::new("  ", "", "", "", "", true).is_err());
        assert!(GoodsFields::new(&"长".repeat(101), "", "", "", "", true).is_err());
    }

    #[test]
    fn images_are_recognised_by_their_bytes() {
        assert_eq!(
            sniff_image_type(b"\x89PNG\r\n\x1a\nrest"),
            Some("image/png")
        );
        assert_eq!(
            sniff_image_type(&[0xFF, 0xD8, 0xFF, 0xE0]),
            Some("image/jpeg")
        );
        assert_eq!(
            sniff_image_type(b"RIFF\0\0\0\0WEBPVP8 "),
            Some("image/webp")
        );
        assert_eq!(sniff_image_type(b"GIF89a..."), Some("image/gif"));
        assert_eq!(
            sniff_image_type(b"<svg onload=alert(1)>"),
            None,
            "SVG can carry script"
        );
        assert_eq!(sniff_image_type(b"<html>"), None);
    }
}
