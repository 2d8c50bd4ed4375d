//! What a call on a member does: 开卡 (activation), 买单 (a payment that
//! takes the member discount, may use points and spend balance, and earns
//! points), its refund, 充值 (a top-up with its bonus), and a hand
//! adjustment of points. The arithmetic is here; a store reads the
//! member, calls the planner and writes what it returns with guarded
//! statements in one transaction.

use super::{Member, ProgramFields, ProgramState};
use crate::audit::Actor;
use crate::ledger::{ApiCall, Called, CustomerRef, TransactionKind};
use crate::StoreResult;

/// How a call names a member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberRef {
    Id(i64),
    /// The customer's card; `program_id` chooses among several.
    Customer {
        customer: CustomerRef,
        program_id: Option<i64>,
    },
}

/// 开卡: a customer becomes a member of a program.
#[derive(Debug, Clone)]
pub struct ActivateMember {
    pub merchant_id: i64,
    pub program_id: i64,
    pub customer: CustomerRef,
    /// Required (validated mobile number).
    pub phone: String,
    pub name: String,
    pub birthday: Option<String>,
    pub gender: Option<super::Gender>,
}

/// 买单: the mall or POS reports what the member pays.
#[derive(Debug, Clone)]
pub struct ReportPayment {
    pub member: MemberRef,
    /// The order's amount before the member discount.
    pub amount_fen: i64,
    /// Points the member uses (whole `cost_bonus_unit`s are taken).
    pub use_points: i64,
    /// Balance the member pays with.
    pub balance_fen: i64,
    /// The merchant's order id: one payment per order.
    pub reference: String,
    pub location_id: Option<i64>,
}

/// A refund of (part of) a payment.
#[derive(Debug, Clone)]
pub struct RefundPayment {
    pub payment_id: i64,
    /// Of the amount after the member discount.
    pub amount_fen: i64,
    pub reason: String,
}

/// 充值: a paid top-up and its bonus.
#[derive(Debug, Clone)]
pub struct Recharge {
    pub member: MemberRef,
    pub amount_fen: i64,
    /// 充 100 送 10: the 10, posted as its own transaction.
    pub bonus_fen: i64,
    /// The merchant's payment id: one top-up per id.
    pub reference: String,
}

/// Staff change a member's points by hand (audited, with a reason).
#[derive(Debug, Clone)]
pub struct AdjustPoints {
    pub member_id: i64,
    pub delta: i64,
    pub reason: String,
}

#[derive(Debug, Clone)]
pub enum MemberAction {
    Activate(ActivateMember),
    Pay(ReportPayment),
    Refund(RefundPayment),
    Recharge(Recharge),
    AdjustPoints(AdjustPoints),
}

/// One value-changing call on a member.
#[derive(Debug, Clone)]
pub struct MemberOp {
    pub merchant_id: i64,
    pub action: MemberAction,
    pub actor: Actor,
    pub now: i64,
}

/// What an operation record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperationKind {
    Activate,
    Payment,
    Refund,
    Recharge,
    AdjustPoints,
    ExpirePoints,
}

impl OperationKind {
    pub const ALL: [Self; 6] = [
        Self::Activate,
        Self::Payment,
        Self::Refund,
        Self::Recharge,
        Self::AdjustPoints,
        Self::ExpirePoints,
    ];
    pub fn code(self) -> &'static str {
        match self {
            Self::Activate => "activate",
            Self::Payment => "payment",
            Self::Refund => "refund",
            Self::Recharge => "recharge",
            Self::AdjustPoints => "adjust_points",
            Self::ExpirePoints => "expire_points",
        }
    }
    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.code() == code)
    }
    pub fn label_zh(self) -> &'static str {
        match self {
            Self::Activate => "开卡",
            Self::Payment => "买单",
            Self::Refund => "退款",
            Self::Recharge => "充值",
            Self::AdjustPoints => "积分调整",
            Self::ExpirePoints => "积分过期",
        }
    }
}

/// What one call did (its receipt): the record an idempotency key
/// replays and a refund counts against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberOperation {
    pub id: i64,
    pub merchant_id: i64,
    pub member_id: i64,
    pub kind: OperationKind,
    /// The order or top-up id; `payment:<id>` on a refund.
    pub reference: String,
    /// The payment a refund returns.
    pub payment_id: Option<i64>,
    pub location_id: Option<i64>,
    /// The order amount (payment), the refunded amount, or the top-up.
    pub amount_fen: i64,
    pub discount_fen: i64,
    /// Points used (payment) or given back (refund).
    pub points_used: i64,
    pub points_deduction_fen: i64,
    /// Balance spent (payment), given back (refund) or topped up.
    pub balance_fen: i64,
    pub bonus_fen: i64,
    /// Points earned; negative when a refund or expiry took them.
    pub points_earned: i64,
    pub points_after: i64,
    pub balance_after_fen: i64,
    pub tier_after: usize,
    /// Of a payment: how much has been refunded so far.
    pub refunded_fen: i64,
    pub reason: String,
    pub created_by: String,
    pub created_at: i64,
}

impl MemberOperation {
    /// What the operation did to the member's points.
    pub fn points_delta(&self) -> i64 {
        match self.kind {
            OperationKind::Payment => self.points_earned - self.points_used,
            OperationKind::Refund => self.points_used + self.points_earned,
            _ => self.points_earned,
        }
    }
    /// What it did to the balance.
    pub fn balance_delta_fen(&self) -> i64 {
        match self.kind {
            OperationKind::Payment => -self.balance_fen,
            OperationKind::Refund => self.balance_fen,
            OperationKind::Recharge => self.balance_fen + self.bonus_fen,
            _ => 0,
        }
    }
    /// What the customer paid otherwise (cash, card, WeChat Pay).
    pub fn cash_fen(&self) -> i64 {
        match self.kind {
            OperationKind::Payment => {
                self.amount_fen - self.discount_fen - self.points_deduction_fen - self.balance_fen
            }
            _ => 0,
        }
    }
    /// The one message a member gets for this operation (消息通知): one
    /// for points, one for balance, or one merged when both changed.
    /// Decided from what the operation did, never from timing.
    pub fn notice(&self) -> Option<Notice> {
        let (points, balance) = (self.points_delta(), self.balance_delta_fen());
        let kind = match (points != 0, balance != 0) {
            (true, true) => NoticeKind::Merged,
            (true, false) => NoticeKind::Points,
            (false, true) => NoticeKind::Balance,
            (false, false) => return None,
        };
        Some(Notice {
            kind,
            points_delta: points,
            balance_delta_fen: balance,
            points_after: self.points_after,
            balance_after_fen: self.balance_after_fen,
        })
    }
}

impl crate::event::NewEvent {
    /// What a call on a member did, as one event: `member.activated` for
    /// 开卡, else `member.changed` when points or balance moved (one event
    /// per operation, so a payment that moves both is one message). The
    /// data carries the merged notice the member is sent, and when points
    /// moved and the program names one (积分变动消息下发优惠券), the claim
    /// path of its coupon.
    pub fn member_operation(
        op: &MemberOperation,
        member: &Member,
        number: &str,
        coupon_claim_path: Option<&str>,
    ) -> Option<Self> {
        let notice = op.notice();
        let coupon = coupon_claim_path.filter(|_| notice.is_some_and(|n| n.points_delta != 0));
        let event_type = match (op.kind, &notice) {
            (OperationKind::Activate, _) => crate::event::EventType::MemberActivated,
            (_, Some(_)) => crate::event::EventType::MemberChanged,
            (_, None) => return None,
        };
        Some(Self::new(
            op.merchant_id,
            event_type,
            serde_json::json!({
                "member_id": op.member_id,
                "member_number": number,
                "program_id": member.program_id,
                "customer_id": member.external_id,
                "phone": member.phone,
                "operation_id": op.id,
                "operation": op.kind.code(),
                "reference": op.reference,
                "points_delta": op.points_delta(),
                "balance_delta_fen": op.balance_delta_fen(),
                "points": op.points_after,
                "balance_fen": op.balance_after_fen,
                "tier": op.tier_after,
                "notice": notice.map(|n| n.kind.code()),
                "message": notice.map(|n| n.text_zh()),
                "coupon_claim_path": coupon,
            }),
            op.created_at,
        ))
    }
}

impl MemberOp {
    /// This call's operation record on `member_id`, nothing moved yet.
    pub fn blank_operation(&self, member_id: i64, kind: OperationKind) -> MemberOperation {
        blank_operation(self.merchant_id, member_id, kind, &self.actor, self.now)
    }
}

/// An operation record with nothing moved yet, for a store to fill in.
pub fn blank_operation(
    merchant_id: i64,
    member_id: i64,
    kind: OperationKind,
    actor: &Actor,
    now: i64,
) -> MemberOperation {
    MemberOperation {
        id: 0,
        merchant_id,
        member_id,
        kind,
        reference: String::new(),
        payment_id: None,
        location_id: None,
        amount_fen: 0,
        discount_fen: 0,
        points_used: 0,
        points_deduction_fen: 0,
        balance_fen: 0,
        bonus_fen: 0,
        points_earned: 0,
        points_after: 0,
        balance_after_fen: 0,
        tier_after: 0,
        refunded_fen: 0,
        reason: String::new(),
        created_by: actor.label.clone(),
        created_at: now,
    }
}

/// The audit record's detail of an operation.
pub fn audit_detail(op: &MemberOperation) -> String {
    let mut detail = format!(
        "operation={} kind={} reference={} amount_fen={} points_delta={} balance_delta_fen={} \
         points_after={} balance_after_fen={} tier={}",
        op.id,
        op.kind.code(),
        op.reference,
        op.amount_fen,
        op.points_delta(),
        op.balance_delta_fen(),
        op.points_after,
        op.balance_after_fen,
        op.tier_after
    );
    if !op.reason.is_empty() {
        detail.push_str(" reason=");
        detail.push_str(&op.reason);
    }
    detail
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeKind {
    Points,
    Balance,
    Merged,
}

impl NoticeKind {
    pub fn code(self) -> &'static str {
        match self {
            Self::Points => "points",
            Self::Balance => "balance",
            Self::Merged => "points_and_balance",
        }
    }
    pub fn label_zh(self) -> &'static str {
        match self {
            Self::Points => "积分变动",
            Self::Balance => "余额变动",
            Self::Merged => "积分和余额变动",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Notice {
    pub kind: NoticeKind,
    pub points_delta: i64,
    pub balance_delta_fen: i64,
    pub points_after: i64,
    pub balance_after_fen: i64,
}

impl Notice {
    /// The message text, e.g. `积分 +12，当前 112；余额 -¥25.00，当前 ¥75.00`.
    pub fn text_zh(&self) -> String {
        let points = format!("积分 {:+}，当前 {}", self.points_delta, self.points_after);
        let sign = if self.balance_delta_fen < 0 { "-" } else { "+" };
        let balance = format!(
            "余额 {sign}¥{}，当前 ¥{}",
            crate::money::format_yuan(self.balance_delta_fen.abs()),
            crate::money::format_yuan(self.balance_after_fen)
        );
        match self.kind {
            NoticeKind::Points => points,
            NoticeKind::Balance => balance,
            NoticeKind::Merged => format!("{points}；{balance}"),
        }
    }
}

/// Why a call on a member changed nothing. Recorded under its
/// idempotency key (except the two about the key and nonce themselves).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberRefusal {
    ProgramNotFound,
    ProgramDisabled,
    NotAMember,
    /// The customer holds several cards; the call must name the program.
    ProgramRequired,
    PointsDisabled,
    StoredValueDisabled,
    InsufficientPoints,
    InsufficientBalance,
    PointsBelowMinimumOrder,
    PointsOverMaximum,
    PointsExceedOrder,
    BalanceExceedsOrder,
    /// The order was reported before under another key.
    PaymentExists,
    PaymentNotFound,
    RefundExceedsPayment,
    NonceReused,
    IdempotencyMismatch,
    /// 预付卡政策: the top-up would take the member's stored value over ¥5,000.
    PrepaidBalanceCap,
}

impl MemberRefusal {
    pub const ALL: [Self; 18] = [
        Self::ProgramNotFound,
        Self::ProgramDisabled,
        Self::NotAMember,
        Self::ProgramRequired,
        Self::PointsDisabled,
        Self::StoredValueDisabled,
        Self::InsufficientPoints,
        Self::InsufficientBalance,
        Self::PointsBelowMinimumOrder,
        Self::PointsOverMaximum,
        Self::PointsExceedOrder,
        Self::BalanceExceedsOrder,
        Self::PaymentExists,
        Self::PaymentNotFound,
        Self::RefundExceedsPayment,
        Self::NonceReused,
        Self::IdempotencyMismatch,
        Self::PrepaidBalanceCap,
    ];
    pub fn code(self) -> &'static str {
        match self {
            Self::ProgramNotFound => "program_not_found",
            Self::ProgramDisabled => "program_disabled",
            Self::NotAMember => "not_a_member",
            Self::ProgramRequired => "program_required",
            Self::PointsDisabled => "points_disabled",
            Self::StoredValueDisabled => "stored_value_disabled",
            Self::InsufficientPoints => "insufficient_points",
            Self::InsufficientBalance => "insufficient_balance",
            Self::PointsBelowMinimumOrder => "points_below_minimum_order",
            Self::PointsOverMaximum => "points_over_maximum",
            Self::PointsExceedOrder => "points_exceed_order",
            Self::BalanceExceedsOrder => "balance_exceeds_order",
            Self::PaymentExists => "payment_exists",
            Self::PaymentNotFound => "payment_not_found",
            Self::RefundExceedsPayment => "refund_exceeds_payment",
            Self::NonceReused => "nonce_reused",
            Self::IdempotencyMismatch => "idempotency_mismatch",
            Self::PrepaidBalanceCap => "prepaid_balance_cap",
        }
    }
    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.code() == code)
    }
    pub fn is_recorded(self) -> bool {
        !matches!(self, Self::NonceReused | Self::IdempotencyMismatch)
    }
    pub fn message_zh(self) -> &'static str {
        match self {
            Self::ProgramNotFound => "找不到该会员卡",
            Self::ProgramDisabled => "该会员卡已停用",
            Self::NotAMember => "该顾客还不是会员",
            Self::ProgramRequired => "该顾客持有多张会员卡，请指定 program_id",
            Self::PointsDisabled => "该会员卡未开启积分",
            Self::StoredValueDisabled => "该会员卡未开启储值",
            Self::InsufficientPoints => "积分不足",
            Self::InsufficientBalance => "余额不足",
            Self::PointsBelowMinimumOrder => "订单金额未达到使用积分的最低金额",
            Self::PointsOverMaximum => "超过单笔最多可用积分",
            Self::PointsExceedOrder => "积分抵扣超过订单应付金额",
            Self::BalanceExceedsOrder => "余额支付超过订单应付金额",
            Self::PaymentExists => "该订单已上报过买单",
            Self::PaymentNotFound => "找不到该笔买单",
            Self::RefundExceedsPayment => "退款金额超过该笔买单可退金额",
            Self::NonceReused => "请求已被使用过（nonce 重复）",
            Self::IdempotencyMismatch => "Idempotency-Key 已用于另一个不同的请求",
            Self::PrepaidBalanceCap => "预付卡政策：记名卡（会员储值）余额不超过 5000 元",
        }
    }
}

/// What a payment does, planned from the member as read in its
/// transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaymentPlan {
    pub discount_fen: i64,
    pub points_used: i64,
    pub points_deduction_fen: i64,
    pub balance_fen: i64,
    /// Money paid (balance and otherwise): what points and spend count.
    pub paid_fen: i64,
    pub points_earned: i64,
    pub tier_after: usize,
}

impl PaymentPlan {
    /// The ledger's transactions of the payment, in the order every store
    /// posts them (a zero amount posts nothing).
    pub fn ledger_moves(&self) -> [(TransactionKind, i64); 3] {
        [
            (TransactionKind::UsePoints, -self.points_used),
            (TransactionKind::Spend, -self.balance_fen),
            (TransactionKind::Earn, self.points_earned),
        ]
    }

    /// The payment's operation record, with the balances and tier it
    /// leaves, and the member as it leaves them (`member` as planned from).
    pub fn record(
        &self,
        op: &MemberOp,
        member: &Member,
        p: &ReportPayment,
    ) -> (MemberOperation, Member) {
        let mut record = op.blank_operation(member.id, OperationKind::Payment);
        record.reference = p.reference.clone();
        record.location_id = p.location_id;
        record.amount_fen = p.amount_fen;
        record.discount_fen = self.discount_fen;
        record.points_used = self.points_used;
        record.points_deduction_fen = self.points_deduction_fen;
        record.balance_fen = self.balance_fen;
        record.points_earned = self.points_earned;
        record.points_after = member.points - self.points_used + self.points_earned;
        record.balance_after_fen = member.balance_fen - self.balance_fen;
        record.tier_after = self.tier_after.max(member.tier);
        let after = Member {
            points: record.points_after,
            balance_fen: record.balance_after_fen,
            tier: record.tier_after,
            ..member.clone()
        };
        (record, after)
    }
}

/// `value × numerator ÷ denominator`, rounded down, without overflow.
fn share(value: i64, numerator: i64, denominator: i64) -> i64 {
    if denominator == 0 {
        return 0;
    }
    i64::try_from(i128::from(value) * i128::from(numerator) / i128::from(denominator))
        .unwrap_or(i64::MAX)
}

/// Plans a payment: the member's discount, the points it uses (whole
/// units, within the rule's minimum order and maximum), the balance it
/// spends, the points it earns on what was paid (capped), and the tier
/// that earn reaches (tiers only rise here).
pub fn plan_payment(
    program: &ProgramFields,
    state: ProgramState,
    member: &Member,
    ask: &ReportPayment,
) -> Result<PaymentPlan, MemberRefusal> {
    if state != ProgramState::Active {
        return Err(MemberRefusal::ProgramDisabled);
    }
    let discount_fen = share(ask.amount_fen, program.discount_for(member.tier), 100);
    let payable = ask.amount_fen - discount_fen;
    let (points_used, points_deduction_fen) = match (&program.points, ask.use_points) {
        (_, 0) => (0, 0),
        (None, _) => return Err(MemberRefusal::PointsDisabled),
        (Some(rule), asked) => {
            if payable < rule.least_money_to_use_bonus {
                return Err(MemberRefusal::PointsBelowMinimumOrder);
            }
            let units = asked / rule.cost_bonus_unit;
            let used = units * rule.cost_bonus_unit;
            if rule.max_reduce_bonus > 0 && used > rule.max_reduce_bonus {
                return Err(MemberRefusal::PointsOverMaximum);
            }
            let deduction = units.saturating_mul(rule.reduce_money);
            if deduction > payable {
                return Err(MemberRefusal::PointsExceedOrder);
            }
            if used > member.points {
                return Err(MemberRefusal::InsufficientPoints);
            }
            (used, deduction)
        }
    };
    if ask.balance_fen > 0 && !program.stored_value {
        return Err(MemberRefusal::StoredValueDisabled);
    }
    if ask.balance_fen > payable - points_deduction_fen {
        return Err(MemberRefusal::BalanceExceedsOrder);
    }
    if ask.balance_fen > member.balance_fen {
        return Err(MemberRefusal::InsufficientBalance);
    }
    let paid_fen = payable - points_deduction_fen;
    let points_earned = match &program.points {
        None => 0,
        Some(rule) => {
            let earned = (paid_fen / rule.cost_money_unit).saturating_mul(rule.increase_bonus);
            if rule.max_increase_bonus > 0 {
                earned.min(rule.max_increase_bonus)
            } else {
                earned
            }
        }
    };
    let reached = program.tier_reached(
        member.points_earned.saturating_add(points_earned),
        member.spend_fen.saturating_add(paid_fen),
    );
    Ok(PaymentPlan {
        discount_fen,
        points_used,
        points_deduction_fen,
        balance_fen: ask.balance_fen,
        paid_fen,
        points_earned,
        tier_after: reached.max(member.tier),
    })
}

/// What a refund gives back and takes back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefundPlan {
    /// The payment's refunded total after this refund.
    pub refunded_after: i64,
    pub points_returned: i64,
    pub balance_returned_fen: i64,
    /// Earned points taken back (never more than the member holds once
    /// the returned points are in).
    pub points_reversed: i64,
    /// What the payment's paid amount shrinks by (cumulative spend).
    pub spend_reversed_fen: i64,
}

/// Plans a refund of `amount_fen` of a payment: everything the payment
/// moved comes back in proportion to the refunded share of its amount
/// after discount, counted on the cumulative refunded total so that
/// partial refunds add up to exactly what a full refund gives back.
pub fn plan_refund(
    payment: &MemberOperation,
    amount_fen: i64,
    points_held: i64,
) -> Result<RefundPlan, MemberRefusal> {
    let net = payment.amount_fen - payment.discount_fen;
    let before = payment.refunded_fen;
    let after = before + amount_fen;
    if amount_fen <= 0 || after > net {
        return Err(MemberRefusal::RefundExceedsPayment);
    }
    let part = |value: i64| share(value, after, net) - share(value, before, net);
    let points_returned = part(payment.points_used);
    let due = part(payment.points_earned);
    let paid = net - payment.points_deduction_fen;
    Ok(RefundPlan {
        refunded_after: after,
        points_returned,
        balance_returned_fen: part(payment.balance_fen),
        points_reversed: due.min(points_held + points_returned),
        spend_reversed_fen: part(paid),
    })
}

/// Value-changing calls on members.
#[async_trait::async_trait]
pub trait MemberOpStore: Send + Sync + 'static {
    /// Runs one call: its nonce and idempotency key, the guarded updates
    /// of the member and the ledger (every transaction with its postings),
    /// the operation record, the audit record and one event, together or
    /// not at all.
    async fn post_member_op(
        &self,
        call: &ApiCall,
        op: &MemberOp,
    ) -> StoreResult<Called<MemberOperation, MemberRefusal>>;
    async fn get_member_operation(
        &self,
        merchant_id: i64,
        operation_id: i64,
    ) -> StoreResult<MemberOperation>;
    /// A member's operations, newest first.
    async fn list_member_operations(
        &self,
        merchant_id: i64,
        member_id: i64,
        page: crate::store::Page,
    ) -> StoreResult<(Vec<MemberOperation>, i64)>;
    /// One sweep of 积分有效期 over at most `limit` members not checked
    /// today: what lapsed is posted as `expire_points` (exactly once, see
    /// [`super::expiry`]), and points lapsing within the notice days get
    /// one `member.points_expiring` each.
    async fn expire_points(&self, now: i64, limit: i64) -> StoreResult<super::expiry::PointsSweep>;
}
