//! The ledger (DESIGN.md §6): customers' balances in fen, changed only by
//! append-only, double-entry transactions, and the idempotency and nonce
//! records that make a retried API call harmless.
//!
//! Two assets live in it, never mixed: money in fen (余额, stored value)
//! and points (积分, of a 会员卡). Every transaction moves one asset and has
//! exactly two postings in it that sum to zero: the customer's account and
//! a merchant-side counter account. A member payment that spends balance
//! and earns points is several transactions committed together. Only
//! customer accounts cache a balance (with a database floor of zero); the
//! merchant's counter accounts are summed when asked, so no hot row is
//! updated by every redemption.

use crate::audit::Actor;
use crate::pickup::Channel;
use crate::store::Page;
use crate::StoreResult;

/// The money asset's code (fen, 分).
pub const ASSET_FEN: &str = "fen";
/// The points asset's code (积分).
pub const ASSET_POINTS: &str = "points";

/// What a ledger account holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Asset {
    /// Money in fen: stored value (储值, 余额).
    Fen,
    /// A member's points (积分).
    Points,
}

impl Asset {
    pub const ALL: [Self; 2] = [Self::Fen, Self::Points];

    pub fn code(self) -> &'static str {
        match self {
            Self::Fen => ASSET_FEN,
            Self::Points => ASSET_POINTS,
        }
    }
    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.code() == code)
    }
    pub fn label_zh(self) -> &'static str {
        match self {
            Self::Fen => "余额",
            Self::Points => "积分",
        }
    }
}
/// Largest single amount a call may move (¥1,000,000.00): the one money cap.
pub const AMOUNT_FEN_MAX: i64 = crate::money::FEN_MAX;
/// Longest Idempotency-Key accepted.
pub const IDEMPOTENCY_KEY_LENGTH_MAX: usize = 255;
/// Idempotency keys are kept at least this long (the README promises 48 h).
pub const IDEMPOTENCY_KEPT_SECONDS: i64 = 48 * 3600;
/// Longest external customer id, order id or reference.
pub const REFERENCE_LENGTH_MAX: usize = 64;
/// Longest reason text on an adjustment.
pub const REASON_LENGTH_MAX: usize = 200;

/// What a ledger transaction did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionKind {
    /// A code was redeemed into the balance (兑换).
    Redeem,
    /// Balance was spent, e.g. at the mall's checkout (消费).
    Spend,
    /// (Part of) a spend came back (退款).
    Refund,
    /// Staff changed the balance by hand with a reason (调整).
    Adjust,
    /// A paid top-up of stored value (充值): prepaid money the merchant holds.
    Recharge,
    /// The bonus of a top-up (充 100 送 10), posted apart so a refund can
    /// take back exactly it.
    RechargeBonus,
    /// Points earned by a payment or given on activation (积分获得).
    Earn,
    /// Points used to pay part of an order (积分抵扣).
    UsePoints,
    /// Earned points taken back by a refund (退款扣回积分).
    ReverseEarn,
    /// Used points given back by a refund (退款退还积分).
    ReturnPoints,
    /// Points that lapsed under the program's expiry policy (积分过期).
    ExpirePoints,
    /// Staff changed the points by hand with a reason (积分调整).
    AdjustPoints,
}

impl TransactionKind {
    pub const ALL: [Self; 12] = [
        Self::Redeem,
        Self::Spend,
        Self::Refund,
        Self::Adjust,
        Self::Recharge,
        Self::RechargeBonus,
        Self::Earn,
        Self::UsePoints,
        Self::ReverseEarn,
        Self::ReturnPoints,
        Self::ExpirePoints,
        Self::AdjustPoints,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Self::Redeem => "redeem",
            Self::Spend => "spend",
            Self::Refund => "refund",
            Self::Adjust => "adjust",
            Self::Recharge => "recharge",
            Self::RechargeBonus => "recharge_bonus",
            Self::Earn => "earn",
            Self::UsePoints => "use_points",
            Self::ReverseEarn => "reverse_earn",
            Self::ReturnPoints => "return_points",
            Self::ExpirePoints => "expire_points",
            Self::AdjustPoints => "adjust_points",
        }
    }
    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.code() == code)
    }
    pub fn label_zh(self) -> &'static str {
        match self {
            Self::Redeem => "兑换码兑换",
            Self::Spend => "余额消费",
            Self::Refund => "消费退款",
            Self::Adjust => "余额调整",
            Self::Recharge => "储值充值",
            Self::RechargeBonus => "充值赠送",
            Self::Earn => "积分获得",
            Self::UsePoints => "积分抵扣",
            Self::ReverseEarn => "退款扣回积分",
            Self::ReturnPoints => "退款退还积分",
            Self::ExpirePoints => "积分过期",
            Self::AdjustPoints => "积分调整",
        }
    }
    /// The asset the transaction moves.
    pub fn asset(self) -> Asset {
        match self {
            Self::Redeem
            | Self::Spend
            | Self::Refund
            | Self::Adjust
            | Self::Recharge
            | Self::RechargeBonus => Asset::Fen,
            Self::Earn
            | Self::UsePoints
            | Self::ReverseEarn
            | Self::ReturnPoints
            | Self::ExpirePoints
            | Self::AdjustPoints => Asset::Points,
        }
    }
    /// The merchant-side account that takes the other posting.
    pub fn counter_account(self) -> AccountKind {
        match self {
            Self::Redeem => AccountKind::GiftcardIssued,
            Self::Spend | Self::Refund => AccountKind::Sales,
            Self::Adjust | Self::AdjustPoints => AccountKind::Adjustments,
            Self::Recharge => AccountKind::Recharges,
            Self::RechargeBonus => AccountKind::RechargeBonus,
            Self::Earn | Self::ReverseEarn => AccountKind::PointsIssued,
            Self::UsePoints | Self::ReturnPoints => AccountKind::PointsUsed,
            Self::ExpirePoints => AccountKind::PointsExpired,
        }
    }
}

/// Whose account a posting goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountKind {
    Customer,
    /// Value handed out as gift-card codes and redeemed (the merchant's liability source).
    GiftcardIssued,
    /// Balance spent at the merchant (and refunded back).
    Sales,
    /// Hand corrections (one account per asset).
    Adjustments,
    /// Prepaid money received for top-ups (预付储值: the merchant owes it).
    Recharges,
    /// Top-up bonuses given.
    RechargeBonus,
    /// Points given by payments and on activation.
    PointsIssued,
    /// Points taken as payment.
    PointsUsed,
    /// Points that lapsed.
    PointsExpired,
}

impl AccountKind {
    /// Every merchant-side account a merchant has, with its asset.
    pub const MERCHANT_SIDE: [(Self, Asset); 9] = [
        (Self::GiftcardIssued, Asset::Fen),
        (Self::Sales, Asset::Fen),
        (Self::Adjustments, Asset::Fen),
        (Self::Recharges, Asset::Fen),
        (Self::RechargeBonus, Asset::Fen),
        (Self::Adjustments, Asset::Points),
        (Self::PointsIssued, Asset::Points),
        (Self::PointsUsed, Asset::Points),
        (Self::PointsExpired, Asset::Points),
    ];

    pub fn code(self) -> &'static str {
        match self {
            Self::Customer => "customer",
            Self::GiftcardIssued => "giftcard_issued",
            Self::Sales => "sales",
            Self::Adjustments => "adjustments",
            Self::Recharges => "recharges",
            Self::RechargeBonus => "recharge_bonus",
            Self::PointsIssued => "points_issued",
            Self::PointsUsed => "points_used",
            Self::PointsExpired => "points_expired",
        }
    }
}

/// The two postings of a transaction that moves `customer_delta_fen` into
/// (positive) or out of (negative) the customer's account. They sum to zero.
pub fn postings(kind: TransactionKind, customer_delta_fen: i64) -> [(AccountKind, i64); 2] {
    [
        (AccountKind::Customer, customer_delta_fen),
        (kind.counter_account(), -customer_delta_fen),
    ]
}

/// How a call names a customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CustomerRef {
    Id(i64),
    /// The merchant system's id; a redemption creates the customer on first sight.
    External(String),
}

/// One committed ledger transaction as a statement line (余额明细).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerTransaction {
    pub id: i64,
    pub merchant_id: i64,
    pub customer_id: i64,
    pub kind: TransactionKind,
    /// The change to the customer's balance (negative for a spend).
    pub amount_fen: i64,
    pub balance_after_fen: i64,
    /// What caused it: `code:<id>`, the mall's order id, `spend:<id>`.
    pub reference: String,
    pub reason: String,
    pub channel: Channel,
    pub created_by: String,
    pub created_at: i64,
}

/// Why a value-changing call changed nothing. Recorded with its
/// idempotency key (except `Locked` and `NonceReused`) so a replay answers alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Unknown, used, voided, expired or not-yet-valid code: one answer.
    CodeRefused,
    InsufficientBalance,
    RefundExceedsSpend,
    SpendNotFound,
    CustomerNotFound,
    /// The product is unknown, off the shelf or its template is gone.
    ProductUnavailable,
    /// The same mall order was reported before with another product (or
    /// batch) or quantity.
    OrderMismatch,
    /// Too many wrong codes from this customer or client (兑换防刷).
    Locked {
        retry_after_seconds: i64,
    },
    /// The request's nonce was seen before (a replayed signed request).
    NonceReused,
    /// The Idempotency-Key was used before with a different request.
    IdempotencyMismatch,
    /// A card sale asked for more cards than the batch has unsold and
    /// inactive (nothing was taken).
    CardsOutOfStock,
    /// A card sale named a batch the merchant does not have.
    BatchNotFound,
    /// A refund named an order that was never sold.
    SaleNotFound,
}

impl Refusal {
    pub fn code(self) -> &'static str {
        match self {
            Self::CodeRefused => "code_refused",
            Self::InsufficientBalance => "insufficient_balance",
            Self::RefundExceedsSpend => "refund_exceeds_spend",
            Self::SpendNotFound => "spend_not_found",
            Self::CustomerNotFound => "customer_not_found",
            Self::ProductUnavailable => "product_unavailable",
            Self::OrderMismatch => "order_mismatch",
            Self::Locked { .. } => "locked",
            Self::NonceReused => "nonce_reused",
            Self::IdempotencyMismatch => "idempotency_mismatch",
            Self::CardsOutOfStock => "out_of_stock",
            Self::BatchNotFound => "batch_not_found",
            Self::SaleNotFound => "sale_not_found",
        }
    }

    /// Parses a recorded refusal (never `Locked`, which is not recorded).
    pub fn parse(code: &str) -> Option<Self> {
        [
            Self::CodeRefused,
            Self::InsufficientBalance,
            Self::RefundExceedsSpend,
            Self::SpendNotFound,
            Self::CustomerNotFound,
            Self::ProductUnavailable,
            Self::OrderMismatch,
            Self::NonceReused,
            Self::IdempotencyMismatch,
            Self::BatchNotFound,
        ]
        .into_iter()
        .find(|r| r.code() == code)
    }

    /// Whether the refusal is kept under the idempotency key: not when a
    /// retry may succeed later (a lock that ends, stock that is added, a
    /// sale that arrives after its refund).
    pub fn is_recorded(self) -> bool {
        !matches!(
            self,
            Self::Locked { .. }
                | Self::NonceReused
                | Self::IdempotencyMismatch
                | Self::CardsOutOfStock
                | Self::SaleNotFound
        )
    }

    /// The message a customer or the merchant's system sees.
    pub fn message_zh(self) -> String {
        match self {
            Self::CodeRefused => "兑换码无效或已被使用".into(),
            Self::InsufficientBalance => "余额不足".into(),
            Self::RefundExceedsSpend => "退款金额超过该笔消费可退金额".into(),
            Self::SpendNotFound => "找不到该笔消费".into(),
            Self::CustomerNotFound => "找不到该顾客".into(),
            Self::ProductUnavailable => "礼品卡商品不存在或已下架".into(),
            Self::OrderMismatch => "该订单已上报过，且商品或数量不同".into(),
            Self::Locked {
                retry_after_seconds,
            } => format!(
                "尝试次数过多，请 {} 分钟后再试",
                (retry_after_seconds + 59) / 60
            ),
            Self::NonceReused => "请求已被使用过（nonce 重复）".into(),
            Self::IdempotencyMismatch => "Idempotency-Key 已用于另一个不同的请求".into(),
            Self::CardsOutOfStock => "该批次可售的未激活卡不足，没有售出任何卡".into(),
            Self::BatchNotFound => "找不到该批次".into(),
            Self::SaleNotFound => "找不到该订单的售卡记录".into(),
        }
    }
}

/// An Idempotency-Key as a client sent it: 1–255 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(text: &str) -> Option<Self> {
        let ok = !text.is_empty()
            && text.len() <= IDEMPOTENCY_KEY_LENGTH_MAX
            && text.bytes().all(|b| b.is_ascii_graphic());
        ok.then(|| Self(text.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The idempotency key and a hash of the request it came with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyClaim {
    pub key: IdempotencyKey,
    /// SHA-256 (hex) of method, path and body: the same key with another body is refused.
    pub request_hash: String,
}

/// A signed request's nonce, recorded with the call's effect. It is unique
/// per key and signed timestamp: a replay carries the same (signed)
/// timestamp, so it is caught, and nonces are forgotten by that timestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NonceUse {
    pub api_key_id: String,
    pub nonce: String,
    /// The request's signed `X-Kaquan-Timestamp`.
    pub signed_at: i64,
}

impl NonceUse {
    /// The key and nonce as one 64-bit number (the first 8 bytes of their
    /// SHA-256): what the SQLite store keeps per nonce instead of both
    /// texts. Two different nonces of one signed second share it with odds
    /// of 2^-64 per pair, and sharing it can only refuse a request as if
    /// its nonce had been used, never let a replay through.
    pub fn digest(&self) -> i64 {
        use sha2::{Digest, Sha256};
        let mut hasher = Sha256::new();
        hasher.update(self.api_key_id.as_bytes());
        hasher.update([0]);
        hasher.update(self.nonce.as_bytes());
        let hash = hasher.finalize();
        i64::from_be_bytes(hash[..8].try_into().expect("a SHA-256 has 32 bytes"))
    }
}

/// What guards one call beyond its own preconditions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiCall {
    pub nonce: Option<NonceUse>,
    pub idempotency: Option<IdempotencyClaim>,
}

/// The result of a guarded call: its effect (or refusal), and whether it
/// is the recorded answer to an earlier call with the same key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Called<T, R = Refusal> {
    pub result: Result<T, R>,
    pub replayed: bool,
}

/// Redeeming a code into a customer's balance. The store runs the limit
/// check, the guarded update, the postings and the audit in one transaction.
#[derive(Debug, Clone)]
pub struct RedeemCode {
    pub merchant_id: i64,
    pub customer: CustomerRef,
    /// The code's keyed digest (the code itself never reaches the store).
    pub digest: Vec<u8>,
    /// The client's address or API key, for the per-client limit.
    pub client_key: String,
    /// The merchant's 兑换防刷: wrong codes allowed per customer and per client in the window.
    pub attempt_limit: i64,
    pub attempts_since: i64,
    pub channel: Channel,
    pub actor: Actor,
    pub now: i64,
}

#[derive(Debug, Clone)]
pub struct SpendBalance {
    pub merchant_id: i64,
    pub customer: CustomerRef,
    pub amount_fen: i64,
    /// The merchant's order or checkout id.
    pub reference: String,
    pub actor: Actor,
    pub now: i64,
}

#[derive(Debug, Clone)]
pub struct RefundSpend {
    pub merchant_id: i64,
    pub spend_transaction_id: i64,
    pub amount_fen: i64,
    pub reason: String,
    pub actor: Actor,
    pub now: i64,
}

#[derive(Debug, Clone)]
pub struct AdjustBalance {
    pub merchant_id: i64,
    pub customer_id: i64,
    /// Positive credits, negative debits (never below zero).
    pub delta_fen: i64,
    pub reason: String,
    pub actor: Actor,
    pub now: i64,
}

/// One value-changing ledger call.
#[derive(Debug, Clone)]
pub enum LedgerOp {
    Redeem(RedeemCode),
    Spend(SpendBalance),
    Refund(RefundSpend),
    Adjust(AdjustBalance),
}

impl LedgerOp {
    pub fn merchant_id(&self) -> i64 {
        match self {
            Self::Redeem(op) => op.merchant_id,
            Self::Spend(op) => op.merchant_id,
            Self::Refund(op) => op.merchant_id,
            Self::Adjust(op) => op.merchant_id,
        }
    }
    pub fn now(&self) -> i64 {
        match self {
            Self::Redeem(op) => op.now,
            Self::Spend(op) => op.now,
            Self::Refund(op) => op.now,
            Self::Adjust(op) => op.now,
        }
    }
}

/// Checks an amount a client asked to move: positive and within the limit.
pub fn check_amount(amount_fen: i64) -> Result<i64, String> {
    if amount_fen <= 0 {
        return Err("金额必须大于 0".into());
    }
    if amount_fen > AMOUNT_FEN_MAX {
        return Err("金额超过单笔上限 ¥1,000,000.00".into());
    }
    Ok(amount_fen)
}

/// Checks a balance adjustment: a credit or debit of at most the one cap,
/// never zero (and never an amount whose size cannot be taken).
pub fn check_delta(delta_fen: i64) -> Result<i64, String> {
    let size = delta_fen
        .checked_abs()
        .ok_or_else(|| "金额超过单笔上限 ¥1,000,000.00".to_owned())?;
    check_amount(size).map(|_| delta_fen)
}

/// Checks an external id or reference: 1–64 visible ASCII characters.
pub fn check_reference(what: &str, text: &str) -> Result<String, String> {
    let text = text.trim();
    if text.is_empty() || text.len() > REFERENCE_LENGTH_MAX {
        return Err(format!("{what}必须是 1–{REFERENCE_LENGTH_MAX} 个字符"));
    }
    if !text.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!("{what}只能包含字母、数字和符号"));
    }
    Ok(text.to_owned())
}

/// The ledger in the database.
#[async_trait::async_trait]
pub trait LedgerStore: Send + Sync + 'static {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::customer::Customer;

    #[test]
    fn a_nonce_digest_tells_keys_and_nonces_apart() {
        let nonce = |key: &str, nonce: &str| NonceUse {
            api_key_id: key.into(),
            nonce: nonce.into(),
            signed_at: 1,
        };
        let digest = nonce("kq_a", "n0123456789abcdef").digest();
        assert_eq!(digest, nonce("kq_a", "n0123456789abcdef").digest());
        assert_ne!(digest, nonce("kq_b", "n0123456789abcdef").digest());
        assert_ne!(digest, nonce("kq_a", "n0123456789abcdeF").digest());
        // The separator keeps the key's end from passing for the nonce's start.
        assert_ne!(nonce("ab", "c").digest(), nonce("a", "bc").digest());
    }

    #[test]
    fn every_transaction_kind_posts_two_legs_that_sum_to_zero() {
        for kind in TransactionKind::ALL {
            for delta in [1, -1, 12_345, -AMOUNT_FEN_MAX] {
                let legs = postings(kind, delta);
                assert_eq!(legs.iter().map(|(_, a)| a).sum::<i64>(), 0);
                assert_eq!(legs[0], (AccountKind::Customer, delta));
                assert_ne!(legs[1].0, AccountKind::Customer);
            }
        }
    }

    #[test]
    fn recorded_refusals_round_trip_through_their_codes() {
        for code in [
            "code_refused",
            "insufficient_balance",
            "refund_exceeds_spend",
        ] {
            assert_eq!(Refusal::parse(code).map(Refusal::code), Some(code));
        }
        assert_eq!(Refusal::parse("locked"), None);
        assert!(!Refusal::Locked {
            retry_after_seconds: 1
        }
        .is_recorded());
    }

    #[test]
    fn idempotency_keys_are_visible_ascii_up_to_255_characters() {
        assert!(IdempotencyKey::parse("order-1:spend").is_some());
        assert!(IdempotencyKey::parse("").is_none());
        assert!(IdempotencyKey::parse("has space").is_none());
        assert!(IdempotencyKey::parse(&"k".repeat(256)).is_none());
    }

    #[test]
    fn adjustments_are_bounded_both_ways_and_never_overflow() {
        assert_eq!(check_delta(-5), Ok(-5));
        assert_eq!(check_delta(AMOUNT_FEN_MAX), Ok(AMOUNT_FEN_MAX));
        assert_eq!(check_delta(-AMOUNT_FEN_MAX), Ok(-AMOUNT_FEN_MAX));
        for bad in [
            0,
            AMOUNT_FEN_MAX + 1,
            -AMOUNT_FEN_MAX - 1,
            i64::MIN,
            i64::MAX,
        ] {
            assert!(check_delta(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn amounts_must_be_positive_and_bounded() {
        assert!(check_amount(0).is_err());
        assert!(check_amount(-5).is_err());
        assert_eq!(check_amount(1), Ok(1));
        assert!(check_amount(AMOUNT_FEN_MAX + 1).is_err());
        assert_eq!(
            check_amount(AMOUNT_FEN_MAX),
            Ok(100_000_000),
            "¥1,000,000.00 itself is allowed"
        );
        assert_eq!(check_amount(100), Ok(100));
    }

    #[test]
    fn references_are_one_to_sixty_four_visible_ascii_characters() {
        assert_eq!(
            check_reference("订单号", " o-1001 "),
            Ok("o-1001".to_owned())
        );
        assert_eq!(
            check_reference("订单号", &"r".repeat(64)),
            Ok("r".repeat(64))
        );
        assert_eq!(
            check_reference("订单号", ""),
            Err("订单号必须是 1–64 个字符".to_owned())
        );
        assert!(check_reference("订单号", "   ").is_err());
        assert!(check_reference("订单号", &"r".repeat(65)).is_err());
        assert_eq!(
            check_reference("订单号", "订单1"),
            Err("订单号只能包含字母、数字和符号".to_owned())
        );
        assert!(check_reference("订单号", "a b").is_err());
    }

    /// The words a customer or the merchant's system reads on a refusal.
    #[test]
    fn refusals_say_what_happened_in_chinese() {
        let check = |refusal: Refusal, message: &str| assert_eq!(refusal.message_zh(), message);
        check(Refusal::CodeRefused, "兑换码无效或已被使用");
        check(Refusal::InsufficientBalance, "余额不足");
        check(Refusal::RefundExceedsSpend, "退款金额超过该笔消费可退金额");
        check(Refusal::SpendNotFound, "找不到该笔消费");
        check(Refusal::CustomerNotFound, "找不到该顾客");
        check(Refusal::ProductUnavailable, "礼品卡商品不存在或已下架");
        check(Refusal::OrderMismatch, "该订单已上报过，且商品或数量不同");
        check(
            Refusal::Locked {
                retry_after_seconds: 1,
            },
            "尝试次数过多，请 1 分钟后再试",
        );
        check(
            Refusal::Locked {
                retry_after_seconds: 60,
            },
            "尝试次数过多，请 1 分钟后再试",
        );
        check(
            Refusal::Locked {
                retry_after_seconds: 61,
            },
            "尝试次数过多，请 2 分钟后再试",
        );
        check(Refusal::NonceReused, "请求已被使用过（nonce 重复）");
        check(
            Refusal::IdempotencyMismatch,
            "Idempotency-Key 已用于另一个不同的请求",
        );
    }

    /// What the README promises, pinned: keys are kept 48 hours.
    #[test]
    fn idempotency_keys_are_kept_two_days() {
        assert_eq!(IDEMPOTENCY_KEPT_SECONDS, 172_800);
    }

    /// The words staff and customers read in 余额明细 and the console.
    #[test]
    fn transaction_kinds_and_customers_read_as_people_expect() {
        let labels: Vec<_> = TransactionKind::ALL.iter().map(|k| k.label_zh()).collect();
        assert_eq!(
            labels,
            [
                "兑换码兑换",
                "余额消费",
                "消费退款",
                "余额调整",
                "储值充值",
                "充值赠送",
                "积分获得",
                "积分抵扣",
                "退款扣回积分",
                "退款退还积分",
                "积分过期",
                "积分调整"
            ]
        );
        for kind in TransactionKind::ALL {
            assert_eq!(TransactionKind::parse(kind.code()), Some(kind));
        }
        assert_eq!(TransactionKind::parse("transfer"), None);
        let customer = |nickname: &str, external_id: Option<&str>, phone: Option<&str>| Customer {
            id: 7,
            merchant_id: 1,
            external_id: external_id.map(str::to_owned),
            phone: phone.map(str::to_owned),
            nickname: nickname.into(),
            balance_fen: 0,
            created_at: 0,
        };
        assert_eq!(customer("小王", Some("u1"), Some("138")).label(), "小王");
        assert_eq!(customer("", Some("u1"), Some("138")).label(), "u1");
        assert_eq!(customer("", None, Some("138")).label(), "138");
        assert_eq!(customer("", None, None).label(), "#7");
        let codes: Vec<_> = AccountKind::MERCHANT_SIDE
            .iter()
            .map(|(a, asset)| format!("{}:{}", a.code(), asset.code()))
            .collect();
        assert_eq!(
            codes,
            [
                "giftcard_issued:fen",
                "sales:fen",
                "adjustments:fen",
                "recharges:fen",
                "recharge_bonus:fen",
                "adjustments:points",
                "points_issued:points",
                "points_used:points",
                "points_expired:points"
            ]
        );
        // Every kind's counter account exists in the kind's asset.
        for kind in TransactionKind::ALL {
            assert!(AccountKind::MERCHANT_SIDE.contains(&(kind.counter_account(), kind.asset())));
        }
        assert_eq!(AccountKind::Customer.code(), "customer");
    }
}
