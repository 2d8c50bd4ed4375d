//! 电子卡密's records and its store port: products with their stock
//! counts, the sealed secrets in stock, marketplace orders with their lines
//! and the cards delivered to them.

use super::{DeliveredFacts, DeliveredStatus, EcardProductFields, Marketplace, VerificationWay};
use crate::audit::Actor;
use crate::store::Page;
use crate::StoreResult;

/// A product as stored, with the settings that are not listing facts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcardProduct {
    pub id: i64,
    pub merchant_id: i64,
    pub fields: EcardProductFields,
    /// 低库存预警: an event fires when available stock falls to it.
    pub low_stock_threshold: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A product's stock by what became of each secret.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StockCounts {
    /// 可用: in stock, never delivered (or back from an unseen refund).
    pub available: i64,
    /// 已发货 and still unused within validity.
    pub delivered: i64,
    /// 已核销.
    pub used: i64,
    /// Delivered and expired unused.
    pub expired: i64,
    /// 已作废: revealed then refunded, or voided by staff.
    pub voided: i64,
}

/// Where a secret in stock is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StockState {
    Available,
    Delivered,
    Voided,
}

impl StockState {
    pub const ALL: [Self; 3] = [Self::Available, Self::Delivered, Self::Voided];
    pub fn code(self) -> &'static str {
        match self {
            Self::Available => "available",
            Self::Delivered => "delivered",
            Self::Voided => "voided",
        }
    }
    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.code() == code)
    }
    pub fn label_zh(self) -> &'static str {
        match self {
            Self::Available => "可用",
            Self::Delivered => "已发货",
            Self::Voided => "已作废",
        }
    }
}

/// One secret ready to be stored: its identity digest and its sealed copy
/// (the number and the secret together). Nothing plaintext.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedStock {
    pub digest: Vec<u8>,
    pub sealed: Vec<u8>,
    /// The last four characters of the number (or of the code), for lists.
    pub tail: String,
}

impl std::fmt::Debug for SealedStock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SealedStock(…{})", self.tail)
    }
}

/// An import or a generation of stock for one product.
#[derive(Debug, Clone)]
pub struct NewStock {
    pub merchant_id: i64,
    pub product_id: i64,
    pub key_version: i32,
    /// The uploaded file's name (`generated` for kaquan's own codes).
    pub file_name: String,
    /// SHA-256 of the uploaded file, hex: the evidence of what came in.
    pub file_digest: String,
    pub n_rows: i64,
    pub items: Vec<SealedStock>,
    pub actor: Actor,
    pub now: i64,
}

/// A finished import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockImport {
    pub id: i64,
    pub merchant_id: i64,
    pub product_id: i64,
    pub file_name: String,
    pub file_digest: String,
    pub n_rows: i64,
    pub n_imported: i64,
    pub created_by: String,
    pub created_at: i64,
}

/// A secret in stock as a list shows it: masked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockItem {
    pub id: i64,
    pub product_id: i64,
    pub import_id: i64,
    pub tail: String,
    pub state: StockState,
    pub created_at: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StockFilter {
    pub merchant_id: i64,
    pub product_id: Option<i64>,
    pub state: Option<StockState>,
}

/// One line of a paid marketplace order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaidLine {
    pub line_id: String,
    /// The marketplace's product id (or kaquan's product id for `own`).
    pub product_id: String,
    pub sku_id: String,
    pub quantity: i64,
}

/// kaquan's own verification code of one card to deliver, made before the
/// transaction: its digest to look it up and its sealed copy to show.
#[derive(Clone, PartialEq, Eq)]
pub struct OwnCode {
    pub digest: Vec<u8>,
    pub sealed: Vec<u8>,
}

impl std::fmt::Debug for OwnCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OwnCode(<sealed>)")
    }
}

/// A paid event from a marketplace.
#[derive(Debug, Clone)]
pub struct PaidOrder {
    pub merchant_id: i64,
    pub marketplace: Marketplace,
    pub order_id: String,
    pub buyer_phone: String,
    pub lines: Vec<PaidLine>,
    /// SHA-256 of the order's delivery token.
    pub token_hash: String,
    pub key_version: i32,
    /// One code per card of each line, in line order, used when the
    /// line's product issues kaquan's own code.
    pub codes: Vec<Vec<OwnCode>>,
    pub actor: Actor,
    pub now: i64,
}

/// A refund event: the whole order, or one line of it.
#[derive(Debug, Clone)]
pub struct OrderRefund {
    pub merchant_id: i64,
    pub marketplace: Marketplace,
    pub order_id: String,
    pub line_id: Option<String>,
    pub token_hash: String,
    pub actor: Actor,
    pub now: i64,
}

/// A paid event recorded: the order as it stands, and whether this event
/// paid any line (a repeat pays none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaidOutcome {
    pub order: EcardOrder,
    pub newly_paid: bool,
}

/// Why a paid event was refused as a whole (nothing recorded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderRefusal {
    /// No product is sold under this listing.
    UnknownListing { line_id: String },
    /// The line was paid before with another product or quantity.
    LineChanged { line_id: String },
}

impl OrderRefusal {
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownListing { .. } => "ecard_unknown_listing",
            Self::LineChanged { .. } => "ecard_line_changed",
        }
    }
    pub fn message_zh(&self) -> String {
        match self {
            Self::UnknownListing { line_id } => {
                format!("订单行 {line_id} 的平台商品没有对应的虚拟商品，没有记录这个订单")
            }
            Self::LineChanged { line_id } => {
                format!("订单行 {line_id} 已按另一商品或数量付款，没有记录这次推送")
            }
        }
    }
}

/// A delivered card with its facts; its secret and code stay sealed.
#[derive(Clone, PartialEq, Eq)]
pub struct DeliveredCard {
    pub id: i64,
    pub stock_id: i64,
    /// The import its secret came in with.
    pub import_id: i64,
    pub tail: String,
    pub delivered_at: i64,
    pub facts: DeliveredFacts,
    pub verified_way: Option<VerificationWay>,
    pub revealed_at: Option<i64>,
    pub reminded_at: Option<i64>,
    /// The merchant key version both sealed copies were made with.
    pub key_version: i32,
    pub sealed: Vec<u8>,
    pub code_sealed: Option<Vec<u8>>,
}

impl std::fmt::Debug for DeliveredCard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "DeliveredCard(#{} …{} {:?})",
            self.id, self.tail, self.facts
        )
    }
}

impl DeliveredCard {
    pub fn status(&self, now: i64) -> DeliveredStatus {
        self.facts.status(now)
    }
}

/// A line's delivery as the order list shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LineState {
    /// 已发货.
    Delivered,
    /// 缺货: paid, not enough stock; delivered by one action when stock arrives.
    OutOfStock,
    /// 已退款 before anything was delivered.
    Refunded,
}

impl LineState {
    pub const ALL: [Self; 3] = [Self::Delivered, Self::OutOfStock, Self::Refunded];
    pub fn code(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::OutOfStock => "out_of_stock",
            Self::Refunded => "refunded",
        }
    }
    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.code() == code)
    }
    pub fn label_zh(self) -> &'static str {
        match self {
            Self::Delivered => "已发货",
            Self::OutOfStock => "缺货",
            Self::Refunded => "已退款",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcardLine {
    pub id: i64,
    pub line_id: String,
    pub product_id: Option<i64>,
    pub product_name: String,
    pub quantity: i64,
    pub paid_at: Option<i64>,
    pub delivered_at: Option<i64>,
    pub refunded_at: Option<i64>,
    pub cards: Vec<DeliveredCard>,
}

impl EcardLine {
    /// Derived from the facts: a line with cards was delivered (a refund
    /// shows on each card), one refunded before delivery is refunded, and
    /// a paid one without cards waits for stock.
    pub fn state(&self) -> Option<LineState> {
        if self.delivered_at.is_some() {
            Some(LineState::Delivered)
        } else if self.refunded_at.is_some() {
            Some(LineState::Refunded)
        } else if self.paid_at.is_some() {
            Some(LineState::OutOfStock)
        } else {
            None
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcardOrder {
    pub id: i64,
    pub merchant_id: i64,
    pub marketplace: Marketplace,
    pub order_id: String,
    pub buyer_phone: String,
    pub created_at: i64,
    pub refunded_at: Option<i64>,
    pub lines: Vec<EcardLine>,
}

impl EcardOrder {
    pub fn cards(&self) -> impl Iterator<Item = &DeliveredCard> {
        self.lines.iter().flat_map(|l| l.cards.iter())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderFilter {
    pub merchant_id: i64,
    pub marketplace: Option<Marketplace>,
    /// Part of the marketplace's order id.
    pub order_id: Option<String>,
    pub product_id: Option<i64>,
    /// Orders with a card in this status at `now`.
    pub status: Option<DeliveredStatus>,
    /// Orders with a line waiting for stock.
    pub out_of_stock: bool,
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub now: i64,
}

/// What an `ecard.*` event tells of an order.
#[derive(Debug, Clone, Copy)]
pub enum EcardHappening<'a> {
    Delivered {
        line_id: &'a str,
        product_id: i64,
        cards: i64,
    },
    OutOfStock {
        line_id: &'a str,
        product_id: i64,
        cards: i64,
    },
    Refunded {
        line_id: &'a str,
        returned: i64,
        voided: i64,
    },
    Verified {
        delivery_id: i64,
        way: VerificationWay,
    },
    /// 过期预警: the card ends within the product's reminder days, unused.
    Expiring {
        delivery_id: i64,
        product_id: i64,
        valid_until: i64,
    },
    /// The card ended unused; the merchant's system may refund it.
    Expired {
        delivery_id: i64,
        product_id: i64,
        valid_until: i64,
    },
}

/// Who marks a delivered card used, and how.
#[derive(Debug, Clone)]
pub struct VerifyEcard {
    pub merchant_id: i64,
    pub target: VerifyTarget,
    pub way: VerificationWay,
    pub note: String,
    /// A proof picture (the customer's screenshot), stored with the mark.
    pub proof: Option<(String, Vec<u8>)>,
    pub actor: Actor,
    pub now: i64,
}

/// How a verification names its card.
#[derive(Debug, Clone)]
pub enum VerifyTarget {
    /// The card's identity digest (a third party's callback).
    StockDigest(Vec<u8>),
    /// kaquan's own code's digest.
    CodeDigest(Vec<u8>),
    /// A delivered card by id (staff).
    Delivery(i64),
}

/// Why a verification did not mark the card.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EcardRefusal {
    /// No delivered card answers to it.
    UnknownCard,
    Refunded,
    Expired,
}

impl EcardRefusal {
    pub fn code(self) -> &'static str {
        match self {
            Self::UnknownCard => "ecard_unknown",
            Self::Refunded => "ecard_refunded",
            Self::Expired => "ecard_expired",
        }
    }
    pub fn message_zh(self) -> &'static str {
        match self {
            Self::UnknownCard => "没有找到已发货的这张卡",
            Self::Refunded => "这张卡所在的订单已退款",
            Self::Expired => "这张卡已过期",
        }
    }
}

/// A verification's outcome: the card, and whether this call marked it
/// (a repeat answers the first mark).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcardVerification {
    pub delivery_id: i64,
    pub order_ref: i64,
    pub verified_at: i64,
    pub way: VerificationWay,
    pub repeated: bool,
}

/// Who opened a delivered card's secret.
#[derive(Debug, Clone)]
pub struct Reveal {
    pub merchant_id: i64,
    pub delivery_id: i64,
    /// The customer's page names its order; staff reveal any.
    pub order_ref: Option<i64>,
    pub ip: String,
    pub user_agent: String,
    pub actor: Actor,
    pub now: i64,
}

/// One delivered card's facts, for 数据驱动's figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryFact {
    pub product_id: i64,
    pub marketplace: Marketplace,
    pub delivered_at: i64,
    pub facts: DeliveredFacts,
}

/// The 电子卡密 port.
#[async_trait::async_trait]
pub trait EcardStore: Send + Sync + 'static {
    async fn create_ecard_product(
        &self,
        merchant_id: i64,
        fields: &EcardProductFields,
        low_stock_threshold: i64,
        actor: &Actor,
        now: i64,
    ) -> StoreResult<EcardProduct>;
    async fn update_ecard_product(
        &self,
        product: &EcardProduct,
        actor: &Actor,
    ) -> StoreResult<EcardProduct>;
    async fn get_ecard_product(&self, merchant_id: i64, id: i64) -> StoreResult<EcardProduct>;
    /// Every product, newest first.
    async fn list_ecard_products(&self, merchant_id: i64) -> StoreResult<Vec<EcardProduct>>;
    /// A product's stock by what became of each secret, at `now`.
    async fn ecard_stock_counts(
        &self,
        merchant_id: i64,
        product_id: i64,
        now: i64,
    ) -> StoreResult<StockCounts>;

    /// Which of these digests some stock of the merchant has already.
    async fn known_ecard_digests(
        &self,
        merchant_id: i64,
        digests: &[Vec<u8>],
    ) -> StoreResult<Vec<Vec<u8>>>;
    /// Stores an import all or nothing, with its audit record; a digest
    /// stored meanwhile is `Conflict::Duplicate`.
    async fn add_ecard_stock(&self, stock: &NewStock) -> StoreResult<StockImport>;
    async fn list_ecard_stock(
        &self,
        filter: &StockFilter,
        page: Page,
    ) -> StoreResult<(Vec<StockItem>, i64)>;
    async fn list_stock_imports(
        &self,
        merchant_id: i64,
        product_id: i64,
    ) -> StoreResult<Vec<StockImport>>;
    /// A secret's sealed copy for a permitted staff member, audited.
    async fn reveal_stock(
        &self,
        merchant_id: i64,
        stock_id: i64,
        actor: &Actor,
        now: i64,
    ) -> StoreResult<(i32, Vec<u8>)>;

    /// Records a paid event and delivers what stock allows, exactly once
    /// per line; a repeat answers the order as it stands.
    async fn record_paid_order(
        &self,
        paid: &PaidOrder,
    ) -> StoreResult<Result<PaidOutcome, OrderRefusal>>;
    /// Records a refund: unused cards of the refunded lines are refunded,
    /// unseen secrets back to stock, revealed ones voided; a line not yet
    /// paid is refunded before it arrives.
    async fn record_refund(&self, refund: &OrderRefund) -> StoreResult<EcardOrder>;
    /// Delivers the merchant's 缺货 lines that stock now covers; returns
    /// how many lines were delivered.
    async fn deliver_waiting(&self, merchant_id: i64, actor: &Actor, now: i64) -> StoreResult<i64>;
    async fn get_ecard_order(&self, merchant_id: i64, id: i64) -> StoreResult<EcardOrder>;
    async fn find_ecard_order_by_token(
        &self,
        merchant_id: i64,
        token_hash: &str,
    ) -> StoreResult<Option<EcardOrder>>;
    async fn list_ecard_orders(
        &self,
        filter: &OrderFilter,
        page: Page,
    ) -> StoreResult<(Vec<EcardOrder>, i64)>;
    /// Opens a delivered card for its customer or staff: the first reveal
    /// is recorded on the card, every one in the audit log (time, IP, user
    /// agent). Returns the sealed secret and code.
    async fn reveal_ecard(&self, reveal: &Reveal) -> StoreResult<DeliveredCard>;
    async fn verify_ecard(
        &self,
        verify: &VerifyEcard,
    ) -> StoreResult<Result<EcardVerification, EcardRefusal>>;
    /// The facts of every card delivered in `[from, to)`, for analytics.
    async fn list_delivery_facts(
        &self,
        merchant_id: i64,
        from: i64,
        to: i64,
    ) -> StoreResult<Vec<DeliveryFact>>;
    /// The delivered card a verification target names, without changing
    /// it: (order_ref, product_id, card).
    async fn find_ecard_card(
        &self,
        merchant_id: i64,
        target: &VerifyTarget,
    ) -> StoreResult<Option<(i64, i64, DeliveredCard)>>;
    /// 过期预警 and expiry: marks up to `limit` unused cards whose
    /// reminder is due (`ecard.expiring`, once each) and up to `limit`
    /// that ended unused under a product that refunds them
    /// (`ecard.expired`, once each; every ended card is noted once, with or
    /// without the event). Returns (reminded, ended).
    async fn sweep_ecard_expiry(&self, now: i64, limit: i64) -> StoreResult<(i64, i64)>;
    /// A manual mark's proof picture.
    async fn get_ecard_proof(
        &self,
        merchant_id: i64,
        delivery_id: i64,
    ) -> StoreResult<Option<(String, Vec<u8>)>>;
}
