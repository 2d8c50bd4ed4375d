//! The `Store` trait every database backend implements, and the records it
//! reads and writes. Stores own all SQL; nothing here knows a query language.
//!
//! Architecture invariant: every method that changes a card is one guarded
//! statement (its WHERE clause carries the precondition from
//! [`crate::card::CardOp`]) committed in the same transaction as its audit
//! record, and returns the number of rows it changed.

use crate::auth::Permission;
use crate::batch::{NewCard, Numbering, PasswordCharset};
use crate::card::{CardEdit, CardFilter, CardOp, CardState};
use crate::giftcard::{
    CodeKind, CodeState, CodeTemplate, CodeTemplateFields, GiftcardImageSlot, GiftcardProduct,
    GiftcardProductFields, GiftcardSettings, IssueOrderCodes, IssuedCode, MallOrder, NewCode,
};
use crate::goods::{Goods, GoodsFields, GoodsLinkMode};
use crate::ledger::{ApiCall, Called, Customer, LedgerOp, LedgerTransaction};
use crate::pickup::{Channel, Consignee, OrderStatus, PickupSettings};
use crate::StoreResult;

/// Largest page a list returns.
pub const PAGE_SIZE_MAX: i64 = 200;
pub const PAGE_SIZE_DEFAULT: i64 = 50;

/// A 1-based page of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub page: i64,
    pub page_size: i64,
}

impl Page {
    /// Clamps what a client asked for into the allowed range.
    pub fn new(page: Option<i64>, page_size: Option<i64>) -> Self {
        Self {
            page: page.unwrap_or(1).max(1),
            page_size: page_size
                .unwrap_or(PAGE_SIZE_DEFAULT)
                .clamp(1, PAGE_SIZE_MAX),
        }
    }
    pub fn offset(self) -> i64 {
        (self.page - 1).saturating_mul(self.page_size)
    }
}

impl Default for Page {
    fn default() -> Self {
        Self::new(None, None)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merchant {
    pub id: i64,
    pub name: String,
    /// The key version new secrets are sealed with.
    pub key_version: i32,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    pub id: i64,
    pub merchant_id: i64,
    pub name: String,
    pub label: String,
    pub permissions: Vec<Permission>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Staff {
    pub id: i64,
    pub merchant_id: i64,
    pub username: String,
    pub name: String,
    pub phone: String,
    pub role_id: i64,
    pub password_hash: String,
    pub failed_logins: i64,
    pub locked_until: Option<i64>,
    pub disabled: bool,
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub struct NewStaff {
    pub merchant_id: i64,
    pub username: String,
    pub name: String,
    pub phone: String,
    pub role_id: i64,
    pub password_hash: String,
}

/// Changes to a staff account; `None` leaves a field alone.
#[derive(Debug, Clone, Default)]
pub struct StaffUpdate {
    pub name: Option<String>,
    pub phone: Option<String>,
    pub role_id: Option<i64>,
    pub password_hash: Option<String>,
    pub disabled: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub token_hash: String,
    pub staff_id: i64,
    pub merchant_id: i64,
    pub csrf_token: String,
    pub expires_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Distributor {
    pub id: i64,
    pub merchant_id: i64,
    pub name: String,
    pub contact: String,
    pub phone: String,
    pub remark: String,
    pub n_cards: i64,
}

#[derive(Debug, Clone, Default)]
pub struct DistributorFields {
    pub name: String,
    pub contact: String,
    pub phone: String,
    pub remark: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchState {
    /// Cards are being written; none of them is usable yet.
    Generating,
    Ready,
    /// Generation stopped (error or crash); the batch holds no cards.
    Failed,
}

impl BatchState {
    pub fn code(self) -> &'static str {
        match self {
            Self::Generating => "generating",
            Self::Ready => "ready",
            Self::Failed => "failed",
        }
    }
    pub fn parse(code: &str) -> Option<Self> {
        [Self::Generating, Self::Ready, Self::Failed]
            .into_iter()
            .find(|s| s.code() == code)
    }
    pub fn label_zh(self) -> &'static str {
        match self {
            Self::Generating => "生成中",
            Self::Ready => "已完成",
            Self::Failed => "失败",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchSource {
    Generated,
    Imported,
}

impl BatchSource {
    pub fn code(self) -> &'static str {
        match self {
            Self::Generated => "generated",
            Self::Imported => "imported",
        }
    }
    pub fn parse(code: &str) -> Option<Self> {
        match code {
            "generated" => Some(Self::Generated),
            "imported" => Some(Self::Imported),
            _ => None,
        }
    }
}

/// A batch as the store creates it (before its cards exist).
#[derive(Debug, Clone)]
pub struct NewBatch {
    pub merchant_id: i64,
    pub name: String,
    pub source: BatchSource,
    pub prefix: String,
    pub number_length: i64,
    pub numbering: Numbering,
    pub start_number: Option<i64>,
    pub password_length: i64,
    pub password_charset: PasswordCharset,
    pub quantity: i64,
    pub face_value_fen: Option<i64>,
    pub valid_from: Option<i64>,
    pub valid_until: Option<i64>,
    pub remark: String,
    pub created_by: String,
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub struct Batch {
    pub id: i64,
    pub merchant_id: i64,
    pub name: String,
    pub source: BatchSource,
    pub prefix: String,
    pub number_length: i64,
    pub numbering: Numbering,
    pub start_number: Option<i64>,
    pub password_length: i64,
    pub password_charset: PasswordCharset,
    pub quantity: i64,
    pub face_value_fen: Option<i64>,
    pub valid_from: Option<i64>,
    pub valid_until: Option<i64>,
    pub remark: String,
    pub state: BatchState,
    /// The first serial (卡序号) reserved for this batch's cards.
    pub serial_first: i64,
    pub error: Option<String>,
    pub created_by: String,
    pub created_at: i64,
    pub completed_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Card {
    pub id: i64,
    pub merchant_id: i64,
    pub batch_id: i64,
    pub serial: i64,
    pub number: String,
    pub state: CardState,
    pub face_value_fen: Option<i64>,
    pub valid_from: Option<i64>,
    pub valid_until: Option<i64>,
    pub remark: String,
    pub distributor_id: Option<i64>,
    pub distributor_name: Option<String>,
    pub activated_at: Option<i64>,
    pub used_at: Option<i64>,
    pub voided_at: Option<i64>,
    pub created_at: i64,
}

/// A card with its sealed password, for a permitted export only.
#[derive(Debug, Clone)]
pub struct CardWithSecret {
    pub card: Card,
    /// `None` once the merchant purged the sealed copies after printing.
    pub secret_sealed: Option<Vec<u8>>,
    pub key_version: i32,
}

/// A card with its password digest, for checking a typed password.
#[derive(Debug, Clone)]
pub struct CardSecret {
    pub card: Card,
    pub secret_digest: Vec<u8>,
    pub key_version: i32,
}

/// A pickup as the use case hands it to the store.
#[derive(Debug, Clone)]
pub struct NewOrder {
    pub merchant_id: i64,
    pub card_id: i64,
    pub goods_id: i64,
    pub channel: Channel,
    /// `None` for an in-store pickup: nothing is shipped.
    pub consignee: Option<Consignee>,
    /// `YYYY-MM-DD`, when the merchant's appointment mode asks for one.
    pub appointment_date: Option<String>,
    pub created_by: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub id: i64,
    pub merchant_id: i64,
    pub card_id: i64,
    pub card_number: String,
    pub batch_id: i64,
    pub goods_id: i64,
    pub goods_name: String,
    pub channel: Channel,
    pub status: OrderStatus,
    pub consignee: Consignee,
    pub appointment_date: Option<String>,
    pub carrier: Option<String>,
    pub tracking_number: Option<String>,
    pub shipped_at: Option<i64>,
    pub created_by: String,
    pub created_at: i64,
    pub cancelled_at: Option<i64>,
}

/// Which orders a list or export covers; every field narrows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderFilter {
    pub status: Option<OrderStatus>,
    /// Inclusive `YYYY-MM-DD` bounds on the appointment date.
    pub appointment_from: Option<String>,
    pub appointment_until: Option<String>,
    /// Inclusive timestamp bounds on the shipping time.
    pub shipped_from: Option<i64>,
    pub shipped_until: Option<i64>,
    /// Inclusive timestamp bounds on the order time.
    pub created_from: Option<i64>,
    pub created_until: Option<i64>,
    pub batch_id: Option<i64>,
    pub goods_id: Option<i64>,
    pub channel: Option<Channel>,
    pub card_number: Option<String>,
    pub phone: Option<String>,
}

/// One order to mark shipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shipment {
    pub order_id: i64,
    pub carrier: String,
    pub tracking_number: String,
}

/// Who did something, for the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub staff_id: Option<i64>,
    /// Username, or `cli` for the command line.
    pub label: String,
}

impl Actor {
    pub fn cli() -> Self {
        Self {
            staff_id: None,
            label: "cli".into(),
        }
    }
}

/// One audit record. Stores write `n_affected` themselves when the entry
/// accompanies a bulk change.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub merchant_id: i64,
    pub actor: Actor,
    pub action: String,
    pub target: String,
    pub detail: String,
    pub n_affected: i64,
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub struct AuditRecord {
    pub id: i64,
    pub entry: AuditEntry,
}

/// Feeds a batch's card rows to a store. `next_chunk` may block while rows
/// are computed on another thread; an empty chunk means the end.
pub trait CardSource: Send {
    fn next_chunk(&mut self) -> Vec<NewCard>;
}

/// What happens to a batch's cards in the same transaction that fills it,
/// so a `ready` batch already has its goods and, if chosen, is active.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AfterFill {
    /// 对应商品 (goods of the batch's merchant, checked beforehand).
    pub goods_ids: Vec<i64>,
    /// 生成后立即激活.
    pub activate: bool,
}

/// A source over rows already in memory (imports).
pub struct VecSource(pub Option<Vec<NewCard>>);

impl CardSource for VecSource {
    fn next_chunk(&mut self) -> Vec<NewCard> {
        self.0.take().unwrap_or_default()
    }
}

#[async_trait::async_trait]
pub trait Store: StoredValueStore + Send + Sync + 'static {
    /// `sqlite` or `postgres`, for logs and `verify`.
    fn backend(&self) -> &'static str;

    // Merchants.
    /// Creates a merchant and its built-in roles in one transaction.
    async fn create_merchant(&self, name: &str, now: i64) -> StoreResult<Merchant>;
    async fn list_merchants(&self) -> StoreResult<Vec<Merchant>>;
    async fn get_merchant(&self, merchant_id: i64) -> StoreResult<Merchant>;

    // Roles and staff.
    async fn list_roles(&self, merchant_id: i64) -> StoreResult<Vec<Role>>;
    async fn create_role(
        &self,
        merchant_id: i64,
        name: &str,
        label: &str,
        permissions: &[Permission],
    ) -> StoreResult<Role>;
    async fn update_role(
        &self,
        merchant_id: i64,
        role_id: i64,
        label: &str,
        permissions: &[Permission],
    ) -> StoreResult<()>;
    async fn create_staff(&self, staff: &NewStaff, now: i64) -> StoreResult<Staff>;
    async fn update_staff(
        &self,
        merchant_id: i64,
        staff_id: i64,
        update: &StaffUpdate,
    ) -> StoreResult<()>;
    async fn list_staff(&self, merchant_id: i64) -> StoreResult<Vec<Staff>>;
    async fn get_staff(&self, staff_id: i64) -> StoreResult<Staff>;
    async fn find_staff_by_username(&self, username: &str) -> StoreResult<Option<Staff>>;
    /// Counts a failed sign-in (and sets the lock), or resets the count on success.
    async fn record_login(
        &self,
        staff_id: i64,
        success: bool,
        locked_until: Option<i64>,
    ) -> StoreResult<i64>;
    async fn create_session(&self, session: &Session) -> StoreResult<()>;
    async fn find_session(&self, token_hash: &str, now: i64) -> StoreResult<Option<Session>>;
    async fn delete_session(&self, token_hash: &str) -> StoreResult<()>;

    // Distributors (券商).
    async fn create_distributor(
        &self,
        merchant_id: i64,
        fields: &DistributorFields,
    ) -> StoreResult<Distributor>;
    async fn update_distributor(
        &self,
        merchant_id: i64,
        distributor_id: i64,
        fields: &DistributorFields,
    ) -> StoreResult<()>;
    async fn list_distributors(&self, merchant_id: i64) -> StoreResult<Vec<Distributor>>;

    // Batches.
    /// Creates the batch row in state `generating` and reserves its serials.
    async fn create_batch(&self, batch: &NewBatch) -> StoreResult<Batch>;
    /// Inserts every card of a `generating` batch and marks it `ready`, all in
    /// one transaction with `audit`: afterwards the batch is complete or absent.
    async fn fill_batch(
        &self,
        merchant_id: i64,
        batch_id: i64,
        source: Box<dyn CardSource>,
        audit: &AuditEntry,
        after: &AfterFill,
        now: i64,
    ) -> StoreResult<i64>;
    /// Marks a `generating` batch `failed`.
    async fn fail_batch(&self, batch_id: i64, error: &str) -> StoreResult<()>;
    /// At start-up: batches left `generating` by a dead process become `failed`.
    async fn fail_interrupted_batches(&self) -> StoreResult<u64>;
    async fn get_batch(&self, merchant_id: i64, batch_id: i64) -> StoreResult<Batch>;
    async fn list_batches(&self, merchant_id: i64, page: Page) -> StoreResult<(Vec<Batch>, i64)>;
    /// Every card number of the merchant that starts with `prefix`.
    async fn numbers_with_prefix(&self, merchant_id: i64, prefix: &str)
        -> StoreResult<Vec<String>>;
    /// Which of `numbers` the merchant already has.
    async fn find_taken_numbers(
        &self,
        merchant_id: i64,
        numbers: &[String],
    ) -> StoreResult<Vec<String>>;

    // Cards. Cards of batches that are not `ready` are invisible to all of these.
    async fn list_cards(
        &self,
        merchant_id: i64,
        filter: &CardFilter,
        page: Page,
    ) -> StoreResult<Vec<Card>>;
    async fn count_cards(&self, merchant_id: i64, filter: &CardFilter) -> StoreResult<i64>;
    /// Keyset page for streaming exports: cards with serial > `after_serial`, by serial.
    async fn cards_after(
        &self,
        merchant_id: i64,
        filter: &CardFilter,
        after_serial: i64,
        limit: i64,
    ) -> StoreResult<Vec<CardWithSecret>>;
    async fn get_card_by_number(&self, merchant_id: i64, number: &str)
        -> StoreResult<Option<Card>>;
    /// Applies a state change to the matching cards that are in one of the
    /// operation's `from_states`; for delete, also records their numbers.
    async fn apply_card_op(
        &self,
        merchant_id: i64,
        filter: &CardFilter,
        op: CardOp,
        audit: &AuditEntry,
    ) -> StoreResult<i64>;
    /// Changes only the chosen fields of the matching cards.
    async fn edit_cards(
        &self,
        merchant_id: i64,
        filter: &CardFilter,
        edit: &CardEdit,
        audit: &AuditEntry,
    ) -> StoreResult<i64>;
    /// Drops the sealed password copies of the matching cards (after printing).
    async fn purge_card_secrets(
        &self,
        merchant_id: i64,
        filter: &CardFilter,
        audit: &AuditEntry,
    ) -> StoreResult<i64>;

    // Goods (提货商品) and which cards may be exchanged for them.
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

    // Pickups and orders (提货订单).
    /// The card with this number and its password digest, for checking.
    async fn card_for_check(
        &self,
        merchant_id: i64,
        number: &str,
    ) -> StoreResult<Option<CardSecret>>;
    /// In one transaction: moves the card `active → used` if it is within its
    /// validity at `created_at` and linked to the goods, inserts the order
    /// and writes `audit`. `Conflict` when the card is not usable (used,
    /// inactive, voided, expired, or another pickup won the race); `NotFound`
    /// when the goods are not among the card's.
    async fn redeem_pickup(&self, order: &NewOrder, audit: &AuditEntry) -> StoreResult<Order>;
    async fn get_order(&self, merchant_id: i64, order_id: i64) -> StoreResult<Order>;
    /// The card's newest order, cancelled ones included.
    async fn latest_order_of_card(
        &self,
        merchant_id: i64,
        card_id: i64,
    ) -> StoreResult<Option<Order>>;
    async fn list_orders(
        &self,
        merchant_id: i64,
        filter: &OrderFilter,
        page: Page,
    ) -> StoreResult<(Vec<Order>, i64)>;
    /// Keyset page for exports: orders with id > `after_id`, by id.
    async fn orders_after(
        &self,
        merchant_id: i64,
        filter: &OrderFilter,
        after_id: i64,
        limit: i64,
    ) -> StoreResult<Vec<Order>>;
    /// Cancels a pending order and makes its card usable again, with `audit`.
    async fn cancel_order(
        &self,
        merchant_id: i64,
        order_id: i64,
        audit: &AuditEntry,
    ) -> StoreResult<()>;
    /// Marks pending orders shipped, all or none, with `audit`. `Conflict`
    /// names the first order that was not pending.
    async fn ship_orders(
        &self,
        merchant_id: i64,
        shipments: &[Shipment],
        now: i64,
        audit: &AuditEntry,
    ) -> StoreResult<i64>;
    /// Failed pickup attempts under `key` since `since` (兑换防刷).
    async fn count_failures(&self, merchant_id: i64, key: &str, since: i64) -> StoreResult<i64>;
    /// When the oldest failure under `key` since `since` happened.
    async fn oldest_failure(
        &self,
        merchant_id: i64,
        key: &str,
        since: i64,
    ) -> StoreResult<Option<i64>>;
    async fn record_failure(&self, merchant_id: i64, key: &str, now: i64) -> StoreResult<()>;
    /// Forgets the failures under `key` (a successful sign-in, an operator's
    /// password reset).
    async fn clear_failures(&self, merchant_id: i64, key: &str) -> StoreResult<()>;

    /// 提货设置; the defaults when the merchant never saved any.
    async fn get_pickup_settings(&self, merchant_id: i64) -> StoreResult<PickupSettings>;
    async fn put_pickup_settings(
        &self,
        merchant_id: i64,
        settings: &PickupSettings,
        audit: &AuditEntry,
    ) -> StoreResult<()>;

    /// The merchant's own carrier names (the common ones are in `pickup::CARRIERS`).
    async fn list_carriers(&self, merchant_id: i64) -> StoreResult<Vec<String>>;
    async fn add_carrier(&self, merchant_id: i64, name: &str) -> StoreResult<()>;

    /// The pickup page's logo (type checked by the caller), replacing any earlier one.
    async fn put_logo(
        &self,
        merchant_id: i64,
        content_type: &str,
        bytes: &[u8],
        now: i64,
    ) -> StoreResult<()>;
    /// When the logo last changed, or `None` without a logo (cheap: no bytes).
    async fn logo_updated_at(&self, merchant_id: i64) -> StoreResult<Option<i64>>;
    async fn get_logo(&self, merchant_id: i64) -> StoreResult<Option<(String, Vec<u8>)>>;

    // Audit log.
    async fn append_audit(&self, entry: &AuditEntry) -> StoreResult<()>;
    async fn list_audit(
        &self,
        merchant_id: i64,
        page: Page,
    ) -> StoreResult<(Vec<AuditRecord>, i64)>;
    /// Numbers of deleted cards recorded under one audit record.
    async fn list_deleted_numbers(
        &self,
        merchant_id: i64,
        audit_id: i64,
    ) -> StoreResult<Vec<String>>;

    /// Checks every invariant the schema cannot; returns one line per violation.
    async fn verify(&self) -> StoreResult<Vec<String>>;
}

/// An open-API key as the console lists it (the secret is never shown again).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: i64,
    pub merchant_id: i64,
    /// The public id sent in `X-Kaquan-Key`.
    pub key_id: String,
    pub label: String,
    pub active: bool,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

/// An active API key with its sealed secret, for checking a signature.
#[derive(Debug, Clone)]
pub struct ApiKeySecret {
    pub merchant_id: i64,
    pub key_id: String,
    pub secret_sealed: Vec<u8>,
    pub key_version: i32,
}

/// A customer's signed-in session on the H5 pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerSession {
    pub token_hash: String,
    pub merchant_id: i64,
    pub customer_id: i64,
    pub csrf_token: String,
    pub expires_at: i64,
}

/// Stored value (seed 000, DESIGN.md §6): gift-card settings, codes, mall
/// orders, customers, the ledger, API keys and the records that make calls
/// idempotent. Every value-changing method is one transaction with its
/// ledger postings and audit record.
#[async_trait::async_trait]
pub trait StoredValueStore: Send + Sync + 'static {
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

    /// Creates a template; for an offline one, its `codes` in the same transaction.
    async fn create_code_template(
        &self,
        merchant_id: i64,
        kind: CodeKind,
        fields: &CodeTemplateFields,
        codes: &[NewCode],
        audit: &AuditEntry,
    ) -> StoreResult<CodeTemplate>;
    async fn list_code_templates(
        &self,
        merchant_id: i64,
        kind: CodeKind,
        page: Page,
    ) -> StoreResult<(Vec<CodeTemplate>, i64)>;
    async fn get_code_template(
        &self,
        merchant_id: i64,
        template_id: i64,
    ) -> StoreResult<CodeTemplate>;
    /// Deletes a template and voids its unused codes, only if exactly
    /// `expected_unused` are unused (what the merchant confirmed);
    /// `Conflict` otherwise. Returns how many codes were voided.
    async fn delete_code_template(
        &self,
        merchant_id: i64,
        template_id: i64,
        expected_unused: i64,
        audit: &AuditEntry,
    ) -> StoreResult<i64>;
    /// Codes of a template by id (兑换记录 / 查看所有), all or those in `state`.
    async fn list_codes(
        &self,
        merchant_id: i64,
        template_id: i64,
        state: Option<CodeState>,
        page: Page,
    ) -> StoreResult<(Vec<IssuedCode>, i64)>;
    /// The merchant's code with this digest, in whichever template (查码).
    async fn find_code(&self, merchant_id: i64, digest: &[u8]) -> StoreResult<Option<IssuedCode>>;
    /// Keyset page for exports: codes with id > `after_id`, by id.
    async fn codes_after(
        &self,
        merchant_id: i64,
        template_id: i64,
        after_id: i64,
        limit: i64,
    ) -> StoreResult<Vec<IssuedCode>>;

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

    /// Records a paid mall order and its new codes, or returns the codes it
    /// already has (`replayed`); `OrderMismatch` when it was reported with
    /// another product or quantity.
    async fn issue_order_codes(
        &self,
        call: &ApiCall,
        order: &IssueOrderCodes,
    ) -> StoreResult<Called<MallOrder>>;
    /// A customer's mall orders with their codes, newest first.
    async fn list_customer_orders(
        &self,
        merchant_id: i64,
        customer_id: i64,
    ) -> StoreResult<Vec<MallOrder>>;

    /// Redeems, spends, refunds or adjusts: the nonce, the idempotency key,
    /// the guarded balance update, both postings and the audit record
    /// commit together or not at all.
    async fn post_ledger(
        &self,
        call: &ApiCall,
        op: &LedgerOp,
    ) -> StoreResult<Called<LedgerTransaction>>;
    async fn get_transaction(
        &self,
        merchant_id: i64,
        transaction_id: i64,
    ) -> StoreResult<LedgerTransaction>;
    /// 余额明细, newest first.
    async fn list_statement(
        &self,
        merchant_id: i64,
        customer_id: i64,
        page: Page,
    ) -> StoreResult<(Vec<LedgerTransaction>, i64)>;

    /// The customer the merchant's system knows as `external_id`, created on first sight.
    async fn ensure_customer(
        &self,
        merchant_id: i64,
        external_id: &str,
        now: i64,
    ) -> StoreResult<Customer>;
    /// A customer who signs up with phone + password; `Conflict` if the phone is taken.
    async fn create_phone_customer(
        &self,
        merchant_id: i64,
        phone: &str,
        password_hash: &str,
        now: i64,
    ) -> StoreResult<Customer>;
    /// The customer with this phone and their password hash.
    async fn find_phone_customer(
        &self,
        merchant_id: i64,
        phone: &str,
    ) -> StoreResult<Option<(Customer, String)>>;
    async fn get_customer(&self, merchant_id: i64, customer_id: i64) -> StoreResult<Customer>;
    async fn find_external_customer(
        &self,
        merchant_id: i64,
        external_id: &str,
    ) -> StoreResult<Option<Customer>>;
    /// Customers by id, optionally only those whose external id, phone or
    /// nickname contains `search`.
    async fn list_customers(
        &self,
        merchant_id: i64,
        search: &str,
        page: Page,
    ) -> StoreResult<(Vec<Customer>, i64)>;

    /// Adds an API key; `Conflict` when the merchant already has two active.
    async fn create_api_key(
        &self,
        merchant_id: i64,
        key_id: &str,
        label: &str,
        secret_sealed: &[u8],
        key_version: i32,
        audit: &AuditEntry,
    ) -> StoreResult<ApiKey>;
    async fn list_api_keys(&self, merchant_id: i64) -> StoreResult<Vec<ApiKey>>;
    async fn revoke_api_key(
        &self,
        merchant_id: i64,
        id: i64,
        audit: &AuditEntry,
    ) -> StoreResult<()>;
    /// The active key with this public id.
    async fn find_api_key(&self, key_id: &str) -> StoreResult<Option<ApiKeySecret>>;
    /// Remembers a nonce for a read-only call; `Conflict` if it was seen before.
    async fn record_nonce(&self, nonce: &crate::ledger::NonceUse) -> StoreResult<()>;

    /// Marks a login link used; `Conflict` if it was used before.
    async fn consume_login_link(&self, nonce: &str, expires_at: i64) -> StoreResult<()>;
    async fn create_customer_session(&self, session: &CustomerSession) -> StoreResult<()>;
    async fn find_customer_session(
        &self,
        token_hash: &str,
        now: i64,
    ) -> StoreResult<Option<CustomerSession>>;
    async fn delete_customer_session(&self, token_hash: &str) -> StoreResult<()>;

    /// Forgets what is past keeping: nonces, idempotency keys after
    /// [`crate::ledger::IDEMPOTENCY_KEPT_SECONDS`], used login links,
    /// expired sessions and old failed attempts. Returns rows removed.
    async fn purge_expired(&self, now: i64) -> StoreResult<i64>;
}
