//! 券点 (seed 002's 券点系统): the credits a merchant spends to add stock
//! to a 朋友的券 program, and the installation's operator (平台运营) who
//! grants them and confirms their purchase.
//!
//! Credits are the ledger's third asset, counted in tenths of a credit so
//! that the unit prices (0.2 and 0.4 券点) are integers. They are kept in
//! their own tables because their holder is a merchant, not a customer, but
//! under the customer ledger's rules: append-only, double-entry (every
//! transaction has two postings summing to zero), and only the holder
//! accounts (free and paid) cache a balance, floored at zero and moved by
//! one guarded statement. Free credits come from operator grants (活动奖励)
//! and are spent first; paid credits come from purchases the operator
//! confirms (1 券点 = ¥1, at least ¥100 each). Stock bought with credits
//! never turns back into money: only stock left when its program expires
//! returns its credits, to the kind they came from.

use crate::audit::{Actor, AuditEntry};
use crate::coupon::{Benefit, CouponProgramFields};
use crate::store::Page;
use crate::StoreResult;

/// Tenths of a credit in one credit (券点).
pub const TENTHS_PER_CREDIT: i64 = 10;
/// A unit of stock of a shared coupon without conditions: 0.2 券点.
pub const UNIT_PRICE_PLAIN_TENTHS: i64 = 2;
/// A unit of stock of a shared coupon with a location scope, a minimum
/// spend or "cannot combine with other offers": 0.4 券点.
pub const UNIT_PRICE_CONDITIONED_TENTHS: i64 = 4;
/// One paid credit costs ¥1.
pub const FEN_PER_CREDIT: i64 = 100;
/// The least one purchase buys: ¥100.
pub const PURCHASE_CREDITS_MIN: i64 = 100;
/// The most one purchase buys (WeChat Pay's usual single-payment cap, ¥50,000).
pub const PURCHASE_CREDITS_MAX: i64 = 50_000;
/// The most one grant gives.
pub const GRANT_CREDITS_MAX: i64 = 1_000_000;
/// Longest reason on a grant.
pub const GRANT_REASON_CHARS_MAX: usize = 200;

/// The two kinds a merchant holds (免费券点, 付费券点).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CreditKind {
    Free,
    Paid,
}

impl CreditKind {
    pub const ALL: [Self; 2] = [Self::Free, Self::Paid];
    pub fn code(self) -> &'static str {
        match self {
            Self::Free => "free",
            Self::Paid => "paid",
        }
    }
    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.code() == code)
    }
    pub fn label_zh(self) -> &'static str {
        match self {
            Self::Free => "免费券点",
            Self::Paid => "付费券点",
        }
    }
}

/// What moved credits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CreditTransactionKind {
    /// The operator gave free credits (活动奖励).
    Grant,
    /// A purchase the operator confirmed as paid (充值).
    Purchase,
    /// Credits turned into a program's stock (兑换库存).
    BuyStock,
    /// Stock left when its program expired gave its credits back (过期退还).
    ReturnStock,
}

impl CreditTransactionKind {
    pub const ALL: [Self; 4] = [
        Self::Grant,
        Self::Purchase,
        Self::BuyStock,
        Self::ReturnStock,
    ];
    pub fn code(self) -> &'static str {
        match self {
            Self::Grant => "grant",
            Self::Purchase => "purchase",
            Self::BuyStock => "buy_stock",
            Self::ReturnStock => "return_stock",
        }
    }
    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.code() == code)
    }
    pub fn label_zh(self) -> &'static str {
        match self {
            Self::Grant => "活动赠送",
            Self::Purchase => "付费充值",
            Self::BuyStock => "兑换库存",
            Self::ReturnStock => "过期库存退还",
        }
    }
    /// The merchant-side counter account of the other posting.
    pub fn counter_account(self) -> CreditAccountKind {
        match self {
            Self::Grant => CreditAccountKind::Granted,
            Self::Purchase => CreditAccountKind::Sold,
            Self::BuyStock | Self::ReturnStock => CreditAccountKind::Stock,
        }
    }
}

/// A merchant's credit accounts: two holders with a balance, three
/// counters summed when asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CreditAccountKind {
    /// The free credits the merchant holds.
    Free,
    /// The paid credits the merchant holds.
    Paid,
    /// Free credits the operator granted.
    Granted,
    /// Paid credits sold.
    Sold,
    /// Credits held in stock (bought, less returned).
    Stock,
}

impl CreditAccountKind {
    pub const ALL: [Self; 5] = [
        Self::Free,
        Self::Paid,
        Self::Granted,
        Self::Sold,
        Self::Stock,
    ];
    pub fn code(self) -> &'static str {
        match self {
            Self::Free => "free",
            Self::Paid => "paid",
            Self::Granted => "granted",
            Self::Sold => "sold",
            Self::Stock => "stock",
        }
    }
    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.code() == code)
    }
    pub fn holder(kind: CreditKind) -> Self {
        match kind {
            CreditKind::Free => Self::Free,
            CreditKind::Paid => Self::Paid,
        }
    }
}

/// The two postings of a transaction moving `delta_tenths` into `holder`.
pub fn credit_postings(
    kind: CreditTransactionKind,
    holder: CreditKind,
    delta_tenths: i64,
) -> [(CreditAccountKind, i64); 2] {
    [
        (CreditAccountKind::holder(holder), delta_tenths),
        (kind.counter_account(), -delta_tenths),
    ]
}

/// `12.3` from 123 tenths; `0.2`, `100`.
pub fn format_credits(tenths: i64) -> String {
    let sign = if tenths < 0 { "-" } else { "" };
    let abs = tenths.unsigned_abs();
    let (whole, tenth) = (abs / 10, abs % 10);
    if tenth == 0 {
        format!("{sign}{whole}")
    } else {
        format!("{sign}{whole}.{tenth}")
    }
}

/// A merchant's 券点账户.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CreditBalance {
    pub merchant_id: i64,
    pub free_tenths: i64,
    pub paid_tenths: i64,
}

impl CreditBalance {
    pub fn total_tenths(&self) -> i64 {
        self.free_tenths + self.paid_tenths
    }
}

/// One change of a holder account, with the balance after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreditTransaction {
    pub id: i64,
    pub merchant_id: i64,
    pub kind: CreditTransactionKind,
    pub holder: CreditKind,
    /// Signed, in tenths: positive into the holder.
    pub amount_tenths: i64,
    pub balance_after_tenths: i64,
    pub program_id: Option<i64>,
    pub purchase_id: Option<i64>,
    pub reason: String,
    pub created_by: String,
    pub created_at: i64,
}

/// The unit price of a shared program's stock: the highest price among
/// the conditions it has (适用范围, 消费条件, 不可与其他优惠共享).
pub fn unit_price_tenths(fields: &CouponProgramFields) -> i64 {
    let minimum_spend = matches!(
        fields.benefit,
        Benefit::Cash { least_cost_fen, .. } if least_cost_fen > 0
    );
    [
        (true, UNIT_PRICE_PLAIN_TENTHS),
        (!fields.use_all_locations, UNIT_PRICE_CONDITIONED_TENTHS),
        (minimum_spend, UNIT_PRICE_CONDITIONED_TENTHS),
        (
            !fields.can_use_with_other_discount,
            UNIT_PRICE_CONDITIONED_TENTHS,
        ),
    ]
    .into_iter()
    .filter(|(applies, _)| *applies)
    .map(|(_, price)| price)
    .max()
    .unwrap_or(UNIT_PRICE_PLAIN_TENTHS)
}

/// Too few credits for what was asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shortfall {
    pub needed_tenths: i64,
    pub held_tenths: i64,
}

/// How a cost is paid: free credits first, then paid ones.
pub fn split_cost(cost_tenths: i64, held: &CreditBalance) -> Result<(i64, i64), Shortfall> {
    if cost_tenths > held.total_tenths() {
        return Err(Shortfall {
            needed_tenths: cost_tenths,
            held_tenths: held.total_tenths(),
        });
    }
    let free = cost_tenths.min(held.free_tenths);
    Ok((free, cost_tenths - free))
}

/// One 增加库存 of a shared program, with what it cost of each kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockPurchase {
    pub id: i64,
    pub merchant_id: i64,
    pub program_id: i64,
    pub units: i64,
    pub unit_price_tenths: i64,
    pub free_tenths: i64,
    pub paid_tenths: i64,
    pub created_by: String,
    pub created_at: i64,
}

/// What `unused_units` of stock give back when their program expires, as
/// `(free, paid)` tenths. Claims take stock in the order it was bought and
/// each purchase spent its free credits first, so the unused units are the
/// last bought, and within a purchase the ones its paid credits bought.
pub fn stock_return(purchases: &[StockPurchase], unused_units: i64) -> (i64, i64) {
    let (mut free, mut paid) = (0, 0);
    let mut left = unused_units.max(0);
    for purchase in purchases.iter().rev() {
        if left == 0 {
            break;
        }
        let units = left.min(purchase.units);
        left -= units;
        let cost = units * purchase.unit_price_tenths;
        let paid_back = cost.min(purchase.paid_tenths);
        paid += paid_back;
        free += cost - paid_back;
    }
    (free, paid)
}

/// Where a purchase of paid credits stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PurchaseState {
    /// The merchant asked; awaiting payment.
    Requested,
    /// The operator confirmed the payment: the credits are in.
    Confirmed,
    /// Withdrawn by the merchant or refused by the operator.
    Cancelled,
}

impl PurchaseState {
    pub const ALL: [Self; 3] = [Self::Requested, Self::Confirmed, Self::Cancelled];
    pub fn code(self) -> &'static str {
        match self {
            Self::Requested => "requested",
            Self::Confirmed => "confirmed",
            Self::Cancelled => "cancelled",
        }
    }
    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.code() == code)
    }
    pub fn label_zh(self) -> &'static str {
        match self {
            Self::Requested => "待付款确认",
            Self::Confirmed => "已到账",
            Self::Cancelled => "已取消",
        }
    }
}

/// A merchant's purchase of paid credits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreditPurchase {
    pub id: i64,
    pub merchant_id: i64,
    pub credits: i64,
    pub amount_fen: i64,
    pub state: PurchaseState,
    pub requested_by: String,
    pub requested_at: i64,
    pub decided_by: Option<String>,
    pub decided_at: Option<i64>,
}

/// Why a number of credits to buy was refused.
pub fn check_purchase_credits(credits: i64) -> Result<(), String> {
    if !(PURCHASE_CREDITS_MIN..=PURCHASE_CREDITS_MAX).contains(&credits) {
        return Err(format!(
            "每次购买 {PURCHASE_CREDITS_MIN}–{PURCHASE_CREDITS_MAX} 券点（1 券点 = 1 元，最低 {PURCHASE_CREDITS_MIN} 元）"
        ));
    }
    Ok(())
}

/// Why a grant was refused.
pub fn check_grant(tenths: i64, reason: &str) -> Result<(), String> {
    if !(1..=GRANT_CREDITS_MAX * TENTHS_PER_CREDIT).contains(&tenths) {
        return Err(format!("赠送券点须为 0.1–{GRANT_CREDITS_MAX}"));
    }
    crate::text::check_field("赠送原因", reason, GRANT_REASON_CHARS_MAX)?;
    if reason.trim().is_empty() {
        return Err("请填写赠送原因（如活动名称）".into());
    }
    Ok(())
}

/// Why stock could not be bought with credits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StockRefusal {
    ProgramNotFound,
    /// Only a 朋友的券 program's stock is bought with credits.
    NotShared,
    /// The program ended or its validity is over.
    ProgramClosed,
    /// Someone changed the stock since the page was read.
    QuantityChanged,
    /// Beyond [`crate::coupon::STOCK_MAX`], or not a positive number.
    BadUnits,
    Insufficient(Shortfall),
}

impl StockRefusal {
    pub fn code(self) -> &'static str {
        match self {
            Self::ProgramNotFound => "coupon_program_not_found",
            Self::NotShared => "coupon_not_shared",
            Self::ProgramClosed => "coupon_program_closed",
            Self::QuantityChanged => "coupon_stock_changed",
            Self::BadUnits => "coupon_stock_units",
            Self::Insufficient(_) => "insufficient_credits",
        }
    }
    pub fn message_zh(self) -> String {
        match self {
            Self::ProgramNotFound => "券不存在".into(),
            Self::NotShared => "只有朋友的券用券点增加库存".into(),
            Self::ProgramClosed => "券已结束或已过期，不能增加库存".into(),
            Self::QuantityChanged => "库存已被修改，请刷新后重试".into(),
            Self::BadUnits => format!("增加的库存须为 1–{}", crate::coupon::STOCK_MAX),
            Self::Insufficient(s) => format!(
                "券点不足：需要 {}，账户共 {}；请购买券点",
                format_credits(s.needed_tenths),
                format_credits(s.held_tenths)
            ),
        }
    }
}

/// 增加库存 of a shared program, paid with credits.
#[derive(Debug, Clone)]
pub struct BuyStock {
    pub merchant_id: i64,
    pub program_id: i64,
    pub units: i64,
    /// The stock the buyer saw; `None` buys whatever the stock is now.
    pub expected_quantity: Option<i64>,
    pub actor: Actor,
    pub now: i64,
}

impl BuyStock {
    pub fn audit(&self, purchase: &StockPurchase) -> AuditEntry {
        AuditEntry {
            merchant_id: self.merchant_id,
            actor: self.actor.clone(),
            action: "buy_coupon_stock".into(),
            target: format!("coupon_program={}", self.program_id),
            detail: format!(
                "units={} price={} free={} paid={}",
                purchase.units,
                format_credits(purchase.unit_price_tenths),
                format_credits(purchase.free_tenths),
                format_credits(purchase.paid_tenths)
            ),
            n_affected: 0,
            created_at: self.now,
        }
    }
}

/// A grant of free credits by the operator.
#[derive(Debug, Clone)]
pub struct GrantCredits {
    pub merchant_id: i64,
    pub tenths: i64,
    pub reason: String,
    /// The free balance the operator saw: a grant sent again after the
    /// first went in finds another and is refused
    /// ([`crate::Conflict::CreditsChanged`]); `None` grants whatever it is.
    pub expected_free_tenths: Option<i64>,
    pub actor: Actor,
    pub now: i64,
}

/// A merchant with its credit account, for the operator's console.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerchantCredits {
    pub merchant_id: i64,
    pub merchant_name: String,
    pub balance: CreditBalance,
    pub n_requested: i64,
}

/// The operator's filter of purchases.
#[derive(Debug, Clone, Default)]
pub struct PurchaseFilter {
    pub merchant_id: Option<i64>,
    pub state: Option<PurchaseState>,
}

/// Credits, their purchases and the operators, in the database.
#[async_trait::async_trait]
pub trait CreditStore: Send + Sync + 'static {
    async fn get_credit_balance(&self, merchant_id: i64) -> StoreResult<CreditBalance>;
    /// Newest first, with the total.
    async fn list_credit_transactions(
        &self,
        merchant_id: i64,
        page: Page,
    ) -> StoreResult<(Vec<CreditTransaction>, i64)>;
    /// Free credits in, with the audit record and the event.
    async fn grant_credits(&self, grant: &GrantCredits) -> StoreResult<CreditTransaction>;
    async fn request_credit_purchase(
        &self,
        merchant_id: i64,
        credits: i64,
        actor: &Actor,
        now: i64,
    ) -> StoreResult<CreditPurchase>;
    /// Confirms (the operator) or cancels a requested purchase; `None` when
    /// it is not (any longer) requested. A confirmation puts the paid
    /// credits in, in the same transaction.
    async fn decide_credit_purchase(
        &self,
        merchant_id: i64,
        purchase_id: i64,
        confirm: bool,
        actor: &Actor,
        now: i64,
    ) -> StoreResult<Option<CreditPurchase>>;
    async fn list_credit_purchases(
        &self,
        filter: &PurchaseFilter,
        page: Page,
    ) -> StoreResult<(Vec<CreditPurchase>, i64)>;
    /// Every merchant with its balances and requested purchases (the operator's list).
    async fn list_merchant_credits(&self, page: Page) -> StoreResult<(Vec<MerchantCredits>, i64)>;
    /// Spends credits on stock: the balances, the stock and the records
    /// in one transaction.
    async fn buy_coupon_stock(
        &self,
        buy: &BuyStock,
    ) -> StoreResult<Result<StockPurchase, StockRefusal>>;
    async fn list_stock_purchases(
        &self,
        merchant_id: i64,
        program_id: i64,
    ) -> StoreResult<Vec<StockPurchase>>;
    /// Gives back the credits of up to `limit` expired shared programs'
    /// unused stock; returns how many programs it settled.
    async fn return_expired_stock(&self, now: i64, limit: i64) -> StoreResult<i64>;

    /// Whether a staff account is an operator (平台运营).
    async fn is_operator(&self, staff_id: i64) -> StoreResult<bool>;
    /// Makes a staff account an operator, or no longer one.
    async fn set_operator(
        &self,
        staff_id: i64,
        operator: bool,
        audit: &AuditEntry,
    ) -> StoreResult<()>;
    /// Operators' staff ids.
    async fn list_operators(&self) -> StoreResult<Vec<i64>>;
}

/// Why a credit action was refused before reaching the store.
#[derive(Debug, thiserror::Error)]
pub enum CreditError {
    #[error("{0}")]
    Invalid(String),
    #[error("{}", .0.message_zh())]
    Stock(StockRefusal),
    #[error(transparent)]
    Store(#[from] crate::StoreError),
}

/// The operator gives a merchant free credits (活动奖励).
pub async fn grant_credits(
    store: &dyn crate::store::Store,
    grant: &GrantCredits,
) -> Result<CreditTransaction, CreditError> {
    check_grant(grant.tenths, &grant.reason).map_err(CreditError::Invalid)?;
    store.get_merchant(grant.merchant_id).await?;
    Ok(store.grant_credits(grant).await?)
}

/// A merchant asks to buy `credits` paid credits.
pub async fn request_purchase(
    store: &dyn crate::store::Store,
    merchant_id: i64,
    credits: i64,
    actor: &Actor,
    now: i64,
) -> Result<CreditPurchase, CreditError> {
    check_purchase_credits(credits).map_err(CreditError::Invalid)?;
    Ok(store
        .request_credit_purchase(merchant_id, credits, actor, now)
        .await?)
}

/// 增加库存 with credits: checked here, priced and paid in the store's
/// transaction.
pub async fn buy_stock(
    store: &dyn crate::store::Store,
    buy: &BuyStock,
) -> Result<StockPurchase, CreditError> {
    if !(1..=crate::coupon::STOCK_MAX).contains(&buy.units) {
        return Err(CreditError::Stock(StockRefusal::BadUnits));
    }
    store
        .buy_coupon_stock(buy)
        .await?
        .map_err(CreditError::Stock)
}

/// Whether `buy` may go ahead on `program` as it is now, and at what price:
/// the one decision both stores run inside their transaction.
pub fn check_buy(
    program: Option<&crate::coupon::CouponProgram>,
    buy: &BuyStock,
    held: &CreditBalance,
) -> Result<(i64, (i64, i64)), StockRefusal> {
    let program = program.ok_or(StockRefusal::ProgramNotFound)?;
    if !program.is_shared() {
        return Err(StockRefusal::NotShared);
    }
    if program.is_closed_at(buy.now) {
        return Err(StockRefusal::ProgramClosed);
    }
    if buy.expected_quantity.is_some_and(|q| q != program.quantity) {
        return Err(StockRefusal::QuantityChanged);
    }
    if !(1..=crate::coupon::STOCK_MAX - program.quantity).contains(&buy.units) {
        return Err(StockRefusal::BadUnits);
    }
    let price = unit_price_tenths(&program.fields);
    let split = split_cost(buy.units * price, held).map_err(StockRefusal::Insufficient)?;
    Ok((price, split))
}

#[cfg(test)]
mod tests;
