//! 电子卡密's signed contract with the marketplaces (or the ERP that relays
//! them) and with the platforms that redeem the cards:
//!
//! - `POST /open/v1/marketplace-orders`: a paid order; kaquan delivers its
//!   lines from stock exactly once per (marketplace, order id, line id) and
//!   answers the delivery link for the marketplace's own message;
//! - `POST /open/v1/marketplace-orders/refunds`: the whole order or a line;
//! - `POST /open/v1/ecard-verifications`: 第三方平台核销回传, or kaquan's own
//!   verification code from the merchant's till.
//!
//! Each is idempotent by its natural key; the answer never carries a
//! secret, only the link that is its one bearer.

use crate::error::{ApiError, ApiResult};
use crate::extract::Json;
use crate::open_api::Signed;
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use kaquan_core::ecard::usecases::{self, PaidEvent, LINE_QUANTITY_MAX, ORDER_LINES_MAX};
use kaquan_core::ecard::{
    EcardOrder, EcardVerification, Marketplace, OrderRefund, PaidLine, VerificationWay,
    VerifyEcard, VerifyTarget,
};
use kaquan_core::ledger::check_reference;
use serde::{Deserialize, Serialize};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/open/v1/marketplace-orders",
            post(create_marketplace_order),
        )
        .route(
            "/open/v1/marketplace-orders/refunds",
            post(create_marketplace_refund),
        )
        .route(
            "/open/v1/ecard-verifications",
            post(create_ecard_verification),
        )
}

fn marketplace(code: &str) -> ApiResult<Marketplace> {
    Marketplace::parse(code).ok_or_else(|| {
        ApiError::invalid("marketplace 应为 pinduoduo、taobao、douyin、xianyu 或 own")
    })
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaidLineRequest {
    /// The marketplace's line (子订单) id: a line is delivered once.
    #[schema(min_length = 1, max_length = 64)]
    pub line_id: String,
    /// The marketplace's product id the product is listed under (on
    /// `own`, kaquan's product id also works).
    #[schema(min_length = 1, max_length = 64)]
    pub product_id: String,
    #[schema(max_length = 64)]
    pub sku_id: Option<String>,
    /// Cards to deliver (1–100).
    pub quantity: i64,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"marketplace": "pinduoduo", "order_id": "240601-123456", "buyer_phone": "13800138000", "lines": [{"line_id": "1", "product_id": "pdd-100", "sku_id": "30d", "quantity": 1}]}))]
pub struct PaidOrderRequest {
    /// `pinduoduo`, `taobao`, `douyin`, `xianyu` or `own`.
    pub marketplace: String,
    #[schema(min_length = 1, max_length = 64)]
    pub order_id: String,
    /// The buyer's mobile, for the delivery text (短信).
    #[schema(max_length = 20)]
    pub buyer_phone: Option<String>,
    /// 1–50 lines.
    pub lines: Vec<PaidLineRequest>,
}

/// A delivered card as the marketplace sees it: no secret.
#[derive(Serialize, utoipa::ToSchema)]
pub struct DeliveredCardDto {
    pub card_id: i64,
    /// The last four characters of its number (or code).
    pub tail: String,
    /// `unverified`, `verified`, `expired` or `refunded`.
    pub status: &'static str,
    pub delivered_at: i64,
    pub valid_until: i64,
    pub verified_at: Option<i64>,
    /// `callback`, `own_code` or `manual`.
    pub verified_way: Option<&'static str>,
    pub refunded_at: Option<i64>,
    pub revealed_at: Option<i64>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct OrderLineDto {
    pub line_id: String,
    pub product_id: Option<i64>,
    pub product_name: String,
    pub quantity: i64,
    /// `delivered`, `out_of_stock` (缺货) or `refunded`; null for a line
    /// known only from a refund.
    pub state: Option<&'static str>,
    pub paid_at: Option<i64>,
    pub delivered_at: Option<i64>,
    pub refunded_at: Option<i64>,
    pub cards: Vec<DeliveredCardDto>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"order_ref": 7, "marketplace": "pinduoduo", "order_id": "240601-123456", "delivery_url": "https://shop.example.cn/m/1/d/0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a6978", "created_at": 1796100000, "refunded_at": null, "lines": [{"line_id": "1", "product_id": 3, "product_name": "视频会员月卡", "quantity": 1, "state": "delivered", "paid_at": 1796100000, "delivered_at": 1796100000, "refunded_at": null, "cards": [{"card_id": 11, "tail": "3456", "status": "unverified", "delivered_at": 1796100000, "valid_until": 1798691999, "verified_at": null, "verified_way": null, "refunded_at": null, "revealed_at": null}]}]}))]
pub struct MarketplaceOrderDto {
    /// kaquan's id of the order.
    pub order_ref: i64,
    pub marketplace: &'static str,
    pub order_id: String,
    /// The delivery page (the only bearer of the cards): send it in the
    /// marketplace's delivery message. The same on every repeat.
    pub delivery_url: String,
    pub created_at: i64,
    pub refunded_at: Option<i64>,
    pub lines: Vec<OrderLineDto>,
}

pub(crate) fn card_dto(card: &kaquan_core::ecard::DeliveredCard, now: i64) -> DeliveredCardDto {
    DeliveredCardDto {
        card_id: card.id,
        tail: card.tail.clone(),
        status: card.status(now).code(),
        delivered_at: card.delivered_at,
        valid_until: card.facts.valid_until,
        verified_at: card.facts.verified_at,
        verified_way: card.verified_way.map(VerificationWay::code),
        refunded_at: card.facts.refunded_at,
        revealed_at: card.revealed_at,
    }
}

pub(crate) fn lines_dto(order: &EcardOrder, now: i64) -> Vec<OrderLineDto> {
    order
        .lines
        .iter()
        .map(|l| OrderLineDto {
            line_id: l.line_id.clone(),
            product_id: l.product_id,
            product_name: l.product_name.clone(),
            quantity: l.quantity,
            state: l.state().map(|s| s.code()),
            paid_at: l.paid_at,
            delivered_at: l.delivered_at,
            refunded_at: l.refunded_at,
            cards: l.cards.iter().map(|c| card_dto(c, now)).collect(),
        })
        .collect()
}

/// The delivery page's address of an order.
pub(crate) async fn delivery_url(state: &AppState, order: &EcardOrder) -> ApiResult<String> {
    let token = usecases::delivery_token(
        &state.master,
        order.merchant_id,
        order.marketplace,
        &order.order_id,
    );
    let base = state.public_url_for(order.merchant_id).await?;
    Ok(format!(
        "{}/m/{}/d/{token}",
        base.trim_end_matches('/'),
        order.merchant_id
    ))
}

pub(crate) async fn order_dto(
    state: &AppState,
    order: &EcardOrder,
) -> ApiResult<MarketplaceOrderDto> {
    Ok(MarketplaceOrderDto {
        order_ref: order.id,
        marketplace: order.marketplace.code(),
        order_id: order.order_id.clone(),
        delivery_url: delivery_url(state, order).await?,
        created_at: order.created_at,
        refunded_at: order.refunded_at,
        lines: lines_dto(order, crate::now()),
    })
}

fn paid_lines(lines: Vec<PaidLineRequest>) -> ApiResult<Vec<PaidLine>> {
    if lines.is_empty() || lines.len() > ORDER_LINES_MAX {
        return Err(ApiError::invalid(format!(
            "lines 须有 1–{ORDER_LINES_MAX} 行"
        )));
    }
    let mut seen = std::collections::HashSet::new();
    lines
        .into_iter()
        .map(|l| {
            let line_id = check_reference("line_id", &l.line_id).map_err(ApiError::invalid)?;
            if !seen.insert(line_id.clone()) {
                return Err(ApiError::invalid(format!("line_id {line_id} 重复")));
            }
            if !(1..=LINE_QUANTITY_MAX).contains(&l.quantity) {
                return Err(ApiError::invalid(format!(
                    "quantity 须为 1–{LINE_QUANTITY_MAX}"
                )));
            }
            let sku_id = match l.sku_id.as_deref().map(str::trim) {
                None | Some("") => String::new(),
                Some(sku) => check_reference("sku_id", sku).map_err(ApiError::invalid)?,
            };
            Ok(PaidLine {
                line_id,
                product_id: check_reference("product_id", &l.product_id)
                    .map_err(ApiError::invalid)?,
                sku_id,
                quantity: l.quantity,
            })
        })
        .collect()
}

/// A paid order: delivered from stock once per line; a repeat answers the
/// order as it stands (200), the first delivery 201.
async fn create_marketplace_order(
    State(state): State<AppState>,
    signed: Signed,
) -> ApiResult<(StatusCode, Json<MarketplaceOrderDto>)> {
    let request: PaidOrderRequest = signed.json()?;
    let marketplace = marketplace(&request.marketplace)?;
    let order_id = check_reference("order_id", &request.order_id).map_err(ApiError::invalid)?;
    let buyer_phone = match request.buyer_phone.as_deref().map(str::trim) {
        None | Some("") => String::new(),
        Some(phone) => {
            kaquan_core::customer::check_mobile(phone).map_err(ApiError::invalid)?;
            phone.to_owned()
        }
    };
    let lines = paid_lines(request.lines)?;
    signed.record_nonce(&state).await?;
    let m = signed.merchant_id;
    let key_version = state.store.get_merchant(m).await?.key_version;
    let event = PaidEvent {
        merchant_id: m,
        key_version,
        marketplace,
        order_id,
        buyer_phone,
        lines,
        actor: &signed.actor(),
        now: crate::now(),
    };
    let (paid, _) = usecases::record_paid_order(state.store.as_ref(), &state.master, event)
        .await?
        .map_err(ApiError::OrderRefused)?;
    let status = if paid.newly_paid {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(order_dto(&state, &paid.order).await?)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"marketplace": "pinduoduo", "order_id": "240601-123456", "line_id": "1"}))]
pub struct MarketplaceRefundRequest {
    pub marketplace: String,
    #[schema(min_length = 1, max_length = 64)]
    pub order_id: String,
    /// The refunded line; the whole order when absent.
    #[schema(max_length = 64)]
    pub line_id: Option<String>,
}

/// A refund: each unused card of the refunded lines is refunded (an unseen
/// secret back to stock, a revealed one voided); a used card stays used.
/// A refund that comes before its paid event keeps the line from delivery.
async fn create_marketplace_refund(
    State(state): State<AppState>,
    signed: Signed,
) -> ApiResult<Json<MarketplaceOrderDto>> {
    let request: MarketplaceRefundRequest = signed.json()?;
    let marketplace = marketplace(&request.marketplace)?;
    let order_id = check_reference("order_id", &request.order_id).map_err(ApiError::invalid)?;
    let line_id = match request.line_id.as_deref() {
        None => None,
        Some(line) => Some(check_reference("line_id", line).map_err(ApiError::invalid)?),
    };
    signed.record_nonce(&state).await?;
    let m = signed.merchant_id;
    let token = usecases::delivery_token(&state.master, m, marketplace, &order_id);
    let refund = OrderRefund {
        merchant_id: m,
        marketplace,
        order_id,
        line_id,
        token_hash: kaquan_core::secrets::token_hash_hex(&token),
        actor: signed.actor(),
        now: crate::now(),
    };
    let order = state.store.record_refund(&refund).await?;
    Ok(Json(order_dto(&state, &order).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"card_number": "8800123456"}))]
pub struct EcardVerificationRequest {
    /// 第三方平台核销回传: the redeemed card's number (or, for a card
    /// without one, its code or link).
    #[schema(max_length = 512)]
    pub card_number: Option<String>,
    /// Or kaquan's own 16-digit verification code.
    #[schema(max_length = 16)]
    pub verification_code: Option<String>,
    /// Where or by what it was redeemed (kept in the audit log).
    #[schema(max_length = 200)]
    pub note: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"card_id": 11, "order_ref": 7, "verified_at": 1796200000, "way": "callback", "repeated": false}))]
pub struct EcardVerificationDto {
    pub card_id: i64,
    pub order_ref: i64,
    pub verified_at: i64,
    /// `callback`, `own_code` or `manual`.
    pub way: &'static str,
    /// True when the card was verified before: the first verification is answered.
    pub repeated: bool,
}

pub(crate) fn verification_dto(v: &EcardVerification) -> EcardVerificationDto {
    EcardVerificationDto {
        card_id: v.delivery_id,
        order_ref: v.order_ref,
        verified_at: v.verified_at,
        way: v.way.code(),
        repeated: v.repeated,
    }
}

/// 核销 by a third party's callback (the card's number) or by kaquan's own
/// code; a repeat answers the first verification.
async fn create_ecard_verification(
    State(state): State<AppState>,
    signed: Signed,
) -> ApiResult<(StatusCode, Json<EcardVerificationDto>)> {
    let request: EcardVerificationRequest = signed.json()?;
    let note = request.note.unwrap_or_default();
    kaquan_core::text::check_field("note", &note, kaquan_core::text::REMARK_CHARS_MAX)
        .map_err(ApiError::invalid)?;
    let m = signed.merchant_id;
    let key_version = state.store.get_merchant(m).await?.key_version;
    let keys = state.master.merchant_keys(m, key_version);
    let (target, way) = match (
        request.card_number.as_deref(),
        request.verification_code.as_deref(),
    ) {
        (Some(number), None) if !number.trim().is_empty() => (
            VerifyTarget::StockDigest(usecases::stock_digest(&keys, number.trim(), "")),
            VerificationWay::Callback,
        ),
        (None, Some(code)) if !code.trim().is_empty() => (
            VerifyTarget::CodeDigest(usecases::own_code_digest(&keys, code.trim())),
            VerificationWay::OwnCode,
        ),
        _ => {
            return Err(ApiError::invalid(
                "card_number 与 verification_code 须填且只填一个",
            ))
        }
    };
    signed.record_nonce(&state).await?;
    let verify = VerifyEcard {
        merchant_id: m,
        target,
        way,
        note,
        proof: None,
        actor: signed.actor(),
        now: crate::now(),
    };
    let done = state
        .store
        .verify_ecard(&verify)
        .await?
        .map_err(ApiError::EcardRefused)?;
    let status = if done.repeated {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(verification_dto(&done))))
}
