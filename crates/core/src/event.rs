//! 事件 and 推送: every business change other systems care about is
//! recorded as an event in the outbox (`events`) in the change's own
//! transaction, then delivered from there to the merchant's webhook
//! endpoints (Standard Webhooks), retried on a fixed schedule until it
//! succeeds or is given up. A crash between the change and its delivery
//! loses nothing; a delivery is leased, so two nodes never send it at once.

use crate::audit::AuditEntry;
use crate::clock::format_date;
use crate::ledger::LedgerTransaction;
use crate::pickup::order::PickupOrder;
use crate::secrets::MasterKey;
use crate::store::Page;
use crate::StoreResult;
use serde_json::{json, Value};

pub use crate::webhook::{is_public_address, signature_header, WebhookSecret};

/// What happened; the wire codes are dot-delimited as Standard Webhooks asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    BatchReady,
    BatchFailed,
    CardsActivated,
    CardsDeactivated,
    CardsVoided,
    PickupOrderCreated,
    PickupOrderShipped,
    PickupOrderCancelled,
    CodeRedeemed,
    BalanceChanged,
    CouponClaimed,
    CouponVerified,
    CouponUndone,
    CouponExpired,
    MemberActivated,
    MemberChanged,
    MemberInvited,
    MemberPointsExpiring,
    CreditsChanged,
    CreditPurchaseChanged,
    EcardDelivered,
    EcardOutOfStock,
    EcardLowStock,
    EcardVerified,
    EcardRefunded,
    EcardExpiring,
    EcardExpired,
}

impl EventType {
    pub const ALL: [EventType; 27] = [
        Self::BatchReady,
        Self::BatchFailed,
        Self::CardsActivated,
        Self::CardsDeactivated,
        Self::CardsVoided,
        Self::PickupOrderCreated,
        Self::PickupOrderShipped,
        Self::PickupOrderCancelled,
        Self::CodeRedeemed,
        Self::BalanceChanged,
        Self::CouponClaimed,
        Self::CouponVerified,
        Self::CouponUndone,
        Self::CouponExpired,
        Self::MemberActivated,
        Self::MemberChanged,
        Self::MemberInvited,
        Self::MemberPointsExpiring,
        Self::CreditsChanged,
        Self::CreditPurchaseChanged,
        Self::EcardDelivered,
        Self::EcardOutOfStock,
        Self::EcardLowStock,
        Self::EcardVerified,
        Self::EcardRefunded,
        Self::EcardExpiring,
        Self::EcardExpired,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Self::BatchReady => "batch.ready",
            Self::BatchFailed => "batch.failed",
            Self::CardsActivated => "cards.activated",
            Self::CardsDeactivated => "cards.deactivated",
            Self::CardsVoided => "cards.voided",
            Self::PickupOrderCreated => "pickup_order.created",
            Self::PickupOrderShipped => "pickup_order.shipped",
            Self::PickupOrderCancelled => "pickup_order.cancelled",
            Self::CodeRedeemed => "code.redeemed",
            Self::BalanceChanged => "balance.changed",
            Self::CouponClaimed => "coupon.claimed",
            Self::CouponVerified => "coupon.verified",
            Self::CouponUndone => "coupon.undone",
            Self::CouponExpired => "coupon.expired",
            Self::MemberActivated => "member.activated",
            Self::MemberChanged => "member.changed",
            Self::MemberInvited => "member.invited",
            Self::MemberPointsExpiring => "member.points_expiring",
            Self::CreditsChanged => "credits.changed",
            Self::CreditPurchaseChanged => "credit_purchase.changed",
            Self::EcardDelivered => "ecard.delivered",
            Self::EcardOutOfStock => "ecard.out_of_stock",
            Self::EcardLowStock => "ecard.low_stock",
            Self::EcardVerified => "ecard.verified",
            Self::EcardRefunded => "ecard.refunded",
            Self::EcardExpiring => "ecard.expiring",
            Self::EcardExpired => "ecard.expired",
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.code() == code)
    }

    /// The event a bulk card operation records, if any.
    pub fn of_card_op(op: crate::card::CardOp) -> Option<Self> {
        use crate::card::CardOp;
        match op {
            CardOp::Activate => Some(Self::CardsActivated),
            CardOp::Deactivate => Some(Self::CardsDeactivated),
            CardOp::Void => Some(Self::CardsVoided),
            CardOp::Restore | CardOp::Delete => None,
        }
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            Self::BatchReady => "批次生成完成",
            Self::BatchFailed => "批次生成失败",
            Self::CardsActivated => "卡激活",
            Self::CardsDeactivated => "卡反激活",
            Self::CardsVoided => "卡作废",
            Self::PickupOrderCreated => "提货订单提交",
            Self::PickupOrderShipped => "提货订单发货",
            Self::PickupOrderCancelled => "提货订单取消",
            Self::CodeRedeemed => "兑换码兑换",
            Self::BalanceChanged => "余额变动",
            Self::CouponClaimed => "领取优惠券",
            Self::CouponVerified => "核销优惠券",
            Self::CouponUndone => "撤销核销",
            Self::CouponExpired => "优惠券过期",
            Self::MemberActivated => "会员开卡",
            Self::MemberChanged => "会员积分或余额变动",
            Self::MemberInvited => "支付后赠会员卡",
            Self::MemberPointsExpiring => "积分即将过期",
            Self::CreditsChanged => "券点变动",
            Self::CreditPurchaseChanged => "券点购买申请变动",
            Self::EcardDelivered => "电子卡密发货",
            Self::EcardOutOfStock => "电子卡密缺货",
            Self::EcardLowStock => "卡密库存不足",
            Self::EcardVerified => "电子卡密核销",
            Self::EcardRefunded => "电子卡密退款",
            Self::EcardExpiring => "电子卡密即将过期",
            Self::EcardExpired => "电子卡密过期未用",
        }
    }
}

/// An event to record in the change's transaction: `data` is a JSON object.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub merchant_id: i64,
    pub event_type: EventType,
    pub data: String,
    pub created_at: i64,
}

impl NewEvent {
    pub(crate) fn new(
        merchant_id: i64,
        event_type: EventType,
        data: Value,
        created_at: i64,
    ) -> Self {
        Self {
            merchant_id,
            event_type,
            data: data.to_string(),
            created_at,
        }
    }

    /// A batch finished generating with `n_cards` (`batch.ready`) or gave
    /// up with an error (`batch.failed`).
    pub fn batch(
        merchant_id: i64,
        batch_id: i64,
        name: &str,
        outcome: Result<i64, &str>,
        now: i64,
    ) -> Self {
        let (event_type, n_cards, error) = match outcome {
            Ok(n) => (EventType::BatchReady, Some(n), None),
            Err(e) => (EventType::BatchFailed, None, Some(e)),
        };
        Self::new(
            merchant_id,
            event_type,
            json!({"batch_id": batch_id, "name": name, "n_cards": n_cards, "error": error}),
            now,
        )
    }

    /// A bulk card change: how many cards and which filter chose them (the
    /// audit entry's own description); none when the operation records no
    /// event or changed no card.
    pub fn cards(op: crate::card::CardOp, audit: &AuditEntry, n_cards: i64) -> Option<Self> {
        let event_type = EventType::of_card_op(op).filter(|_| n_cards > 0)?;
        Some(Self::cards_of(event_type, audit, n_cards))
    }

    /// A change of `n_cards` cards recorded as `event_type` (cards a sale
    /// activated, a refund deactivated); none when no card changed.
    pub fn cards_moved(event_type: EventType, audit: &AuditEntry, n_cards: i64) -> Option<Self> {
        (n_cards > 0).then(|| Self::cards_of(event_type, audit, n_cards))
    }

    fn cards_of(event_type: EventType, audit: &AuditEntry, n_cards: i64) -> Self {
        Self::new(
            audit.merchant_id,
            event_type,
            json!({"n_cards": n_cards, "filter": audit.target, "actor": audit.actor.label}),
            audit.created_at,
        )
    }

    /// A pickup order was submitted, shipped or cancelled.
    pub fn order(order: &PickupOrder, event_type: EventType, now: i64) -> Self {
        let c = &order.consignee;
        Self::new(
            order.merchant_id,
            event_type,
            json!({
                "order_id": order.id,
                "status": order.status.code(),
                "channel": order.channel.code(),
                "card_number": order.card_number,
                "batch_id": order.batch_id,
                "goods_id": order.goods_id,
                "goods_name": order.goods_name,
                "consignee": c.name,
                "phone": c.phone,
                "province": c.province,
                "city": c.city,
                "district": c.district,
                "address": c.address,
                "appointment_date": order.appointment_date,
                "carrier": order.carrier,
                "tracking_number": order.tracking_number,
                "created_at": format_date(order.created_at),
            }),
            now,
        )
    }

    /// Coupons were given out (领取, 定向发放, the mall's order): one event
    /// per issue, naming every coupon.
    pub fn coupons_issued(
        merchant_id: i64,
        program_id: i64,
        source: &str,
        order: Option<&(String, String)>,
        coupons: &[(i64, i64)],
        now: i64,
    ) -> Self {
        let coupons: Vec<Value> = coupons
            .iter()
            .map(|(coupon_id, customer_id)| json!({"coupon_id": coupon_id, "customer_id": customer_id}))
            .collect();
        Self::new(
            merchant_id,
            EventType::CouponClaimed,
            json!({
                "program_id": program_id,
                "source": source,
                "order_id": order.map(|o| &o.0),
                "order_line": order.map(|o| &o.1),
                "coupons": coupons,
            }),
            now,
        )
    }

    /// A coupon was verified (`coupon.verified`) or its verification undone
    /// (`coupon.undone`).
    pub fn coupon_verification(
        v: &crate::coupon::usage::CouponVerification,
        event_type: EventType,
        now: i64,
    ) -> Self {
        Self::new(
            v.merchant_id,
            event_type,
            json!({
                "verification_id": v.id,
                "coupon_id": v.coupon_id,
                "program_id": v.program_id,
                "customer_id": v.customer_id,
                "location_id": v.location_id,
                "verifier": v.verifier,
                "channel": v.channel.code(),
                "order_amount_fen": v.order_amount_fen,
                "discount_fen": v.discount_fen,
                "order_ref": v.order_ref,
            }),
            now,
        )
    }

    /// A merchant's credits moved (`credits.changed`): a grant, a
    /// confirmed purchase, stock bought or returned.
    pub fn credits(t: &crate::credit::CreditTransaction) -> Self {
        Self::new(
            t.merchant_id,
            EventType::CreditsChanged,
            json!({
                "transaction_id": t.id,
                "kind": t.kind.code(),
                "holder": t.holder.code(),
                "amount_tenths": t.amount_tenths,
                "balance_after_tenths": t.balance_after_tenths,
                "program_id": t.program_id,
                "purchase_id": t.purchase_id,
            }),
            t.created_at,
        )
    }

    /// A purchase of credits was requested, confirmed or cancelled
    /// (`credit_purchase.changed`).
    pub fn credit_purchase(p: &crate::credit::CreditPurchase, now: i64) -> Self {
        Self::new(
            p.merchant_id,
            EventType::CreditPurchaseChanged,
            json!({
                "purchase_id": p.id,
                "credits": p.credits,
                "amount_fen": p.amount_fen,
                "state": p.state.code(),
            }),
            now,
        )
    }

    /// Something happened to a marketplace order's e-cards: delivered,
    /// out of stock, verified or refunded. Names the order and counts;
    /// never a secret or the delivery link.
    pub fn ecard_order(
        order: &crate::ecard::EcardOrder,
        what: crate::ecard::EcardHappening<'_>,
        now: i64,
    ) -> Self {
        use crate::ecard::EcardHappening as H;
        let (event_type, detail) = match what {
            H::Delivered {
                line_id,
                product_id,
                cards,
            } => (
                EventType::EcardDelivered,
                json!({"line_id": line_id, "product_id": product_id, "cards": cards, "phone": order.buyer_phone}),
            ),
            H::OutOfStock {
                line_id,
                product_id,
                cards,
            } => (
                EventType::EcardOutOfStock,
                json!({"line_id": line_id, "product_id": product_id, "cards": cards}),
            ),
            H::Refunded {
                line_id,
                returned,
                voided,
            } => (
                EventType::EcardRefunded,
                json!({"line_id": line_id, "returned": returned, "voided": voided}),
            ),
            H::Verified { delivery_id, way } => (
                EventType::EcardVerified,
                json!({"delivery_id": delivery_id, "way": way.code()}),
            ),
            H::Expiring {
                delivery_id,
                product_id,
                valid_until,
            } => (
                EventType::EcardExpiring,
                json!({"delivery_id": delivery_id, "product_id": product_id, "valid_until": valid_until, "phone": order.buyer_phone}),
            ),
            H::Expired {
                delivery_id,
                product_id,
                valid_until,
            } => (
                EventType::EcardExpired,
                json!({"delivery_id": delivery_id, "product_id": product_id, "valid_until": valid_until}),
            ),
        };
        let mut data = json!({
            "order_ref": order.id,
            "marketplace": order.marketplace.code(),
            "order_id": order.order_id,
        });
        if let (Value::Object(data), Value::Object(detail)) = (&mut data, detail) {
            data.extend(detail);
        }
        Self::new(order.merchant_id, event_type, data, now)
    }

    /// A product's available stock fell to its threshold (`ecard.low_stock`).
    pub fn ecard_low_stock(product: &crate::ecard::EcardProduct, available: i64, now: i64) -> Self {
        Self::new(
            product.merchant_id,
            EventType::EcardLowStock,
            json!({
                "product_id": product.id,
                "name": product.fields.name,
                "available": available,
                "threshold": product.low_stock_threshold,
            }),
            now,
        )
    }

    /// A held coupon passed its validity unused (`coupon.expired`).
    pub fn coupon_expired(expired: &crate::coupon::usage::ExpiredCoupon, now: i64) -> Self {
        Self::new(
            expired.merchant_id,
            EventType::CouponExpired,
            json!({
                "coupon_id": expired.coupon_id,
                "program_id": expired.program_id,
                "customer_id": expired.customer_id,
                "valid_until": expired.valid_until,
            }),
            now,
        )
    }

    /// A balance changed; `external_id` is the mall's customer id, if any.
    pub fn balance(t: &LedgerTransaction, external_id: Option<&str>) -> Self {
        Self::new(
            t.merchant_id,
            EventType::BalanceChanged,
            balance_data(t, external_id),
            t.created_at,
        )
    }
}

/// The data of `balance.changed` (and of `code.redeemed`, which carries
/// the same fields).
fn balance_data(t: &LedgerTransaction, external_id: Option<&str>) -> Value {
    json!({
        "transaction_id": t.id,
        "customer_id": external_id,
        "kind": t.kind.code(),
        "amount_fen": t.amount_fen,
        "balance_after_fen": t.balance_after_fen,
        "reference": t.reference,
        "channel": t.channel.code(),
    })
}

/// The events of one ledger transaction: every one changes a balance, and
/// a redemption also redeems a code.
pub fn ledger_events(t: &LedgerTransaction, external_id: Option<&str>) -> Vec<NewEvent> {
    let mut events = vec![NewEvent::balance(t, external_id)];
    if t.kind == crate::ledger::TransactionKind::Redeem {
        events.push(NewEvent {
            event_type: EventType::CodeRedeemed,
            ..NewEvent::balance(t, external_id)
        });
    }
    events
}

/// A recorded event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: i64,
    pub merchant_id: i64,
    pub event_type: EventType,
    pub data: String,
    pub created_at: i64,
}

impl Event {
    /// The `webhook-id`: the same on every attempt and every replay, so a
    /// receiver deduplicates by it.
    pub fn webhook_id(&self) -> String {
        format!("evt_{}", self.id)
    }

    /// The body every endpoint receives: `{type, timestamp, data}`.
    pub fn body(&self) -> String {
        let timestamp = time::OffsetDateTime::from_unix_timestamp(self.created_at)
            .ok()
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .unwrap_or_default();
        let data: Value = serde_json::from_str(&self.data).unwrap_or(Value::Null);
        json!({"type": self.event_type.code(), "timestamp": timestamp, "data": data}).to_string()
    }
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Waiting for its next attempt.
    Pending,
    /// An attempt was answered 2xx.
    Delivered,
    /// Given up: every attempt failed, or the endpoint answered 410 Gone.
    Failed,
}

impl DeliveryState {
    pub const ALL: [DeliveryState; 3] = [Self::Pending, Self::Delivered, Self::Failed];

    pub fn code(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.code() == code)
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            Self::Pending => "待推送",
            Self::Delivered => "已送达",
            Self::Failed => "已放弃",
        }
    }
}

/// The delay after each failed attempt (Standard Webhooks' example
/// schedule): 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h; the
/// tenth failure gives up, about three days after the first attempt.
pub const RETRY_DELAYS: [i64; 9] = [5, 300, 1_800, 7_200, 18_000, 36_000, 50_400, 72_000, 86_400];

/// Attempts before a delivery is given up.
pub const ATTEMPTS_MAX: i64 = RETRY_DELAYS.len() as i64 + 1;

/// An endpoint failing without a single success for this long is disabled
/// (and the merchant told on the 事件推送 page and in the audit log).
pub const DISABLE_AFTER_FAILING_SECONDS: i64 = 5 * 86_400;

/// When the attempt after failed attempt number `attempts` (1-based) runs,
/// or `None` when that was the last. `jitter_permille` (0–999) spreads a
/// wave of retries over up to a tenth more of the delay.
pub fn next_attempt_at(attempts: i64, now: i64, jitter_permille: i64) -> Option<i64> {
    let delay = *RETRY_DELAYS.get(usize::try_from(attempts - 1).ok()?)?;
    Some(now + delay + delay * jitter_permille.clamp(0, 999) / 10_000)
}

/// What became of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptOutcome {
    /// The response status, when the endpoint answered.
    pub status: Option<u16>,
    /// Why it failed (connection, timeout, refused address, non-2xx).
    pub error: String,
    pub duration_ms: i64,
}

impl AttemptOutcome {
    pub fn succeeded(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }

    /// 410 Gone: the receiver asks us to stop (Standard Webhooks).
    pub fn gone(&self) -> bool {
        self.status == Some(410)
    }

    /// Why the endpoint is disabled, should this failure disable it.
    pub fn disable_reason(&self) -> String {
        if self.gone() {
            "推送地址回复 410 Gone，已停用".to_owned()
        } else {
            format!(
                "连续 {} 天推送失败，已停用",
                DISABLE_AFTER_FAILING_SECONDS / 86_400
            )
        }
    }
}

/// The state a delivery takes after attempt number `attempts` ended with
/// `outcome`, and when its next attempt runs.
pub fn after_attempt(
    attempts: i64,
    outcome: &AttemptOutcome,
    now: i64,
    jitter_permille: i64,
) -> (DeliveryState, Option<i64>) {
    if outcome.succeeded() {
        return (DeliveryState::Delivered, None);
    }
    if outcome.gone() {
        return (DeliveryState::Failed, None);
    }
    match next_attempt_at(attempts, now, jitter_permille) {
        Some(at) => (DeliveryState::Pending, Some(at)),
        None => (DeliveryState::Failed, None),
    }
}

/// A merchant's webhook endpoint (开放接口 → 事件推送).
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookEndpoint {
    pub id: i64,
    pub merchant_id: i64,
    pub url: String,
    pub description: String,
    /// Empty means every event type.
    pub event_types: Vec<EventType>,
    pub enabled: bool,
    /// Why kaquan disabled it (410 Gone, failing for days); empty otherwise.
    pub disabled_reason: String,
    /// The first failure since the last success.
    pub failing_since: Option<i64>,
    /// While set and in the future, deliveries are also signed with the
    /// previous secret (rotation's grace period).
    pub previous_secret_until: Option<i64>,
    pub created_at: i64,
}

impl WebhookEndpoint {
    pub fn wants(&self, event_type: EventType) -> bool {
        self.event_types.is_empty() || self.event_types.contains(&event_type)
    }
}

/// The event types as stored: `,a,b,` (so one LIKE finds a type), or empty for all.
pub fn event_types_to_text(types: &[EventType]) -> String {
    if types.is_empty() {
        return String::new();
    }
    let codes: Vec<&str> = types.iter().map(|t| t.code()).collect();
    format!(",{},", codes.join(","))
}

pub fn event_types_from_text(text: &str) -> Vec<EventType> {
    text.split(',').filter_map(EventType::parse).collect()
}

/// An endpoint's fields as the console and the API set them.
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointFields {
    pub url: String,
    pub description: String,
    pub event_types: Vec<EventType>,
    pub enabled: bool,
}

/// A new endpoint with its sealed secret.
#[derive(Debug, Clone)]
pub struct NewEndpoint {
    pub merchant_id: i64,
    pub fields: EndpointFields,
    pub secret_sealed: Vec<u8>,
    pub key_version: i32,
    pub created_at: i64,
}

/// An endpoint's secrets for signing: the current one, and the previous
/// one while its grace period lasts.
#[derive(Debug, Clone)]
pub struct EndpointSecrets {
    pub secret_sealed: Vec<u8>,
    pub key_version: i32,
    pub previous: Option<(Vec<u8>, i32)>,
}

/// A delivery as the console lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub id: i64,
    pub merchant_id: i64,
    pub event_id: i64,
    pub event_type: EventType,
    pub endpoint_id: i64,
    pub endpoint_url: String,
    pub state: DeliveryState,
    pub attempts: i64,
    pub next_attempt_at: Option<i64>,
    pub last_status: Option<u16>,
    pub last_error: String,
    pub delivered_at: Option<i64>,
    pub created_at: i64,
}

/// One attempt of a delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    pub attempt_no: i64,
    pub status: Option<u16>,
    pub error: String,
    pub duration_ms: i64,
    pub created_at: i64,
}

/// A delivery claimed for an attempt: what to send where, signed how.
#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    pub delivery_id: i64,
    /// This attempt's number (1-based), counting every round.
    pub attempt_no: i64,
    /// This attempt's number within its round (a replay starts a new one),
    /// which the retry schedule counts.
    pub round_attempt: i64,
    pub event: Event,
    pub endpoint_id: i64,
    pub url: String,
    pub secrets: EndpointSecrets,
}

impl ClaimedDelivery {
    /// The audit record of kaquan disabling this delivery's endpoint by itself.
    pub fn disabled_audit(&self, reason: &str, now: i64) -> AuditEntry {
        AuditEntry {
            merchant_id: self.event.merchant_id,
            actor: crate::audit::Actor::system(),
            action: "disable_webhook_endpoint".into(),
            target: format!("webhook_endpoint={}", self.endpoint_id),
            detail: reason.to_owned(),
            n_affected: 1,
            created_at: now,
        }
    }
}

/// Which deliveries a list shows; every field narrows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryFilter {
    pub endpoint_id: Option<i64>,
    pub state: Option<DeliveryState>,
    pub event_type: Option<EventType>,
}

/// The outbox, endpoints and deliveries in the database.
#[async_trait::async_trait]
pub trait EventStore: Send + Sync + 'static {
    async fn create_endpoint(
        &self,
        endpoint: &NewEndpoint,
        audit: &AuditEntry,
    ) -> StoreResult<WebhookEndpoint>;
    async fn update_endpoint(
        &self,
        merchant_id: i64,
        id: i64,
        fields: &EndpointFields,
        audit: &AuditEntry,
    ) -> StoreResult<()>;
    /// Replaces the secret; the old one keeps signing until `previous_until`.
    async fn rotate_endpoint_secret(
        &self,
        merchant_id: i64,
        id: i64,
        secret_sealed: &[u8],
        key_version: i32,
        previous_until: i64,
        audit: &AuditEntry,
    ) -> StoreResult<()>;
    async fn delete_endpoint(
        &self,
        merchant_id: i64,
        id: i64,
        audit: &AuditEntry,
    ) -> StoreResult<()>;
    async fn list_endpoints(&self, merchant_id: i64) -> StoreResult<Vec<WebhookEndpoint>>;
    async fn get_endpoint(&self, merchant_id: i64, id: i64) -> StoreResult<WebhookEndpoint>;
    /// Records events outside any other change (a test send, a batch that failed).
    async fn record_events(&self, events: &[NewEvent]) -> StoreResult<()>;
    async fn get_event(&self, merchant_id: i64, id: i64) -> StoreResult<Event>;
    /// The merchant's recent events, newest first.
    async fn list_events(&self, merchant_id: i64, page: Page) -> StoreResult<(Vec<Event>, i64)>;
    /// Fans up to `limit` undispatched events out into one pending delivery
    /// per enabled endpoint that wants them, and marks them dispatched, in
    /// one transaction; rows another node is dispatching are skipped.
    /// Returns how many events it dispatched.
    async fn dispatch_events(&self, limit: i64, now: i64) -> StoreResult<i64>;
    /// Leases up to `limit` due deliveries until `now + lease_seconds` and
    /// counts the attempt; a leased delivery is not claimed again before
    /// its lease ends, so no two nodes send it at once.
    async fn claim_deliveries(
        &self,
        limit: i64,
        lease_seconds: i64,
        now: i64,
    ) -> StoreResult<Vec<ClaimedDelivery>>;
    /// Records an attempt and its delivery's new state, and the endpoint's
    /// health (a success clears `failing_since`; a 410 or failing past
    /// [`DISABLE_AFTER_FAILING_SECONDS`] disables it with `audit`), in one
    /// transaction. `Conflict` when the lease was lost (another attempt
    /// has been counted since).
    async fn record_attempt(
        &self,
        claimed: &ClaimedDelivery,
        outcome: &AttemptOutcome,
        state: DeliveryState,
        next_attempt_at: Option<i64>,
        now: i64,
    ) -> StoreResult<()>;
    async fn list_deliveries(
        &self,
        merchant_id: i64,
        filter: &DeliveryFilter,
        page: Page,
    ) -> StoreResult<(Vec<Delivery>, i64)>;
    async fn get_delivery(
        &self,
        merchant_id: i64,
        id: i64,
    ) -> StoreResult<(Delivery, Vec<Attempt>)>;
    /// Sends a delivery again now: a pending one keeps its attempts; a
    /// delivered or failed one starts a new round with the same `webhook-id`.
    async fn replay_delivery(
        &self,
        merchant_id: i64,
        id: i64,
        audit: &AuditEntry,
        now: i64,
    ) -> StoreResult<()>;
}

/// The context webhook secrets are sealed under (see [`crate::secrets`]).
const WEBHOOK_SECRET_CONTEXT: &str = "webhook-endpoint";

/// How long a rotated-out secret keeps signing: receivers have a day to
/// switch to the new one.
pub const ROTATION_GRACE_SECONDS: i64 = 86_400;

/// Adds an endpoint with a new secret, sealed with the merchant's key;
/// returns it with the secret, shown this once.
pub async fn create_endpoint(
    store: &dyn crate::store::Store,
    master: &MasterKey,
    merchant_id: i64,
    fields: EndpointFields,
    audit: &AuditEntry,
) -> StoreResult<(WebhookEndpoint, WebhookSecret)> {
    let merchant = store.get_merchant(merchant_id).await?;
    let secret = WebhookSecret::generate();
    let sealed = master
        .merchant_keys(merchant_id, merchant.key_version)
        .seal(WEBHOOK_SECRET_CONTEXT, &secret.to_text());
    let endpoint = NewEndpoint {
        merchant_id,
        fields,
        secret_sealed: sealed,
        key_version: merchant.key_version,
        created_at: audit.created_at,
    };
    Ok((store.create_endpoint(&endpoint, audit).await?, secret))
}

/// Replaces an endpoint's secret; the old one keeps signing for
/// [`ROTATION_GRACE_SECONDS`]. Returns the new secret, shown this once.
pub async fn rotate_endpoint_secret(
    store: &dyn crate::store::Store,
    master: &MasterKey,
    merchant_id: i64,
    endpoint_id: i64,
    audit: &AuditEntry,
) -> StoreResult<WebhookSecret> {
    let merchant = store.get_merchant(merchant_id).await?;
    let secret = WebhookSecret::generate();
    let sealed = master
        .merchant_keys(merchant_id, merchant.key_version)
        .seal(WEBHOOK_SECRET_CONTEXT, &secret.to_text());
    store
        .rotate_endpoint_secret(
            merchant_id,
            endpoint_id,
            &sealed,
            merchant.key_version,
            audit.created_at + ROTATION_GRACE_SECONDS,
            audit,
        )
        .await?;
    Ok(secret)
}

/// The secrets a claimed delivery is signed with: the current one, then
/// the previous one while its grace lasts. Empty if none opens (a sealed
/// value that does not belong to this merchant).
pub fn open_secrets(master: &MasterKey, claimed: &ClaimedDelivery) -> Vec<WebhookSecret> {
    let s = &claimed.secrets;
    let merchant_id = claimed.event.merchant_id;
    std::iter::once((&s.secret_sealed, s.key_version))
        .chain(
            s.previous
                .as_ref()
                .map(|(sealed, version)| (sealed, *version)),
        )
        .filter_map(|(sealed, version)| {
            master
                .merchant_keys(merchant_id, version)
                .open(WEBHOOK_SECRET_CONTEXT, sealed)
        })
        .filter_map(|text| WebhookSecret::parse(&text))
        .collect()
}

#[cfg(test)]
mod tests;
