//! The open API under `/open/v1` for the merchant's own systems (mall,
//! checkout): every request signed with one of the merchant's API keys
//! (scheme in `kaquan_core::signing` and the README), every value-changing
//! call under an `Idempotency-Key` with Stripe's semantics.
//!
//! Also the process's counters for alerting (`GET /metrics`).

use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path, Query};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use kaquan_core::audit::Actor;
use kaquan_core::clock::format_datetime;
use kaquan_core::code::CodeRedeemer;
use kaquan_core::ledger::{
    check_amount, check_reference, ApiCall, Called, CustomerRef, IdempotencyClaim, IdempotencyKey,
    LedgerOp, LedgerTransaction, NonceUse, RefundSpend, Refusal, SpendBalance, REASON_LENGTH_MAX,
};
use kaquan_core::mall::IssueOrderCodesRequest;
use kaquan_core::pickup::Channel;
use kaquan_core::signing;
use kaquan_core::store::Page;
use kaquan_core::StoreError;
use serde::{Deserialize, Serialize};

/// Largest open-API request body.
pub const OPEN_API_BODY_BYTES_MAX: usize = 64 * 1024;
/// How long a node trusts an API key it looked up; revoking takes effect on
/// other nodes and processes (`kaquan api-key revoke`) within this time, on
/// the revoking node at once. Short: a busy key costs one indexed read per
/// node every two seconds, and a leaked key stops working almost at once.
pub const API_KEY_CACHE_SECONDS: u64 = 2;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/open/v1/orders", post(create_order_codes))
        .route("/open/v1/redemptions", post(create_redemption))
        .route("/open/v1/spends", post(create_spend))
        .route("/open/v1/refunds", post(create_refund))
        .route("/open/v1/login-links", post(create_login_link))
        .route(
            "/open/v1/customers/{customer_id}/balance",
            get(get_customer_balance),
        )
        .route(
            "/open/v1/customers/{customer_id}/statement",
            get(list_customer_statement),
        )
        .route("/open/v1/giftcard-centre", get(get_giftcard_centre))
}

/// API keys this node has opened recently: public id → (merchant, secret).
pub type ApiKeyCache = crate::cache::TtlCache<String, (i64, String)>;

/// A request whose signature checked out, with its body.
pub struct Signed {
    pub merchant_id: i64,
    pub key_id: String,
    pub nonce: String,
    /// The signed `X-Kaquan-Timestamp`.
    pub signed_at: i64,
    pub idempotency_key: Option<IdempotencyKey>,
    /// SHA-256 of method, path and body: what an idempotency key is bound to.
    pub request_hash: String,
    pub body: Bytes,
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

impl FromRequest<AppState> for Signed {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (parts, body) = request.into_parts();
        let body = axum::body::to_bytes(body, OPEN_API_BODY_BYTES_MAX)
            .await
            .map_err(|_| {
                ApiError::malformed(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body_too_large",
                    "请求体过大或无法读取",
                )
            })?;
        let bad = |why: &'static str| {
            state.metrics.bad_signatures.increment(1);
            ApiError::BadSignature(why)
        };
        let headers = &parts.headers;
        let (Some(key_id), Some(timestamp), Some(nonce), Some(signature)) = (
            header(headers, "x-kaquan-key"),
            header(headers, "x-kaquan-timestamp"),
            header(headers, "x-kaquan-nonce"),
            header(headers, "x-kaquan-signature"),
        ) else {
            return Err(bad("缺少 X-Kaquan-Key/Timestamp/Nonce/Signature"));
        };
        let Some(signed_at) = signing::fresh_timestamp(timestamp, crate::now()) else {
            return Err(bad("时间戳与服务器时间相差超过 5 分钟"));
        };
        if !signing::nonce_is_well_formed(nonce) {
            return Err(bad("nonce 须为 16–64 个字母、数字、- 或 _"));
        }
        let (merchant_id, secret) = match state.api_keys.get(&key_id.to_owned()) {
            Some(found) => found,
            None => {
                let key = state
                    .store
                    .find_api_key(key_id)
                    .await?
                    .ok_or_else(|| bad("未知或已停用的密钥"))?;
                let secret = signing::open_api_secret(&state.master, &key)
                    .ok_or_else(|| ApiError::Internal("an API key does not open".into()))?;
                state
                    .api_keys
                    .put(key_id.to_owned(), (key.merchant_id, secret.clone()));
                (key.merchant_id, secret)
            }
        };
        crate::record_merchant(merchant_id);
        let method = parts.method.as_str();
        let path = parts.uri.path();
        let canonical = signing::canonical_request(
            method,
            path,
            parts.uri.query().unwrap_or(""),
            timestamp,
            nonce,
            &body,
        );
        if !signing::signature_matches(&secret, &canonical, signature) {
            return Err(bad("签名不正确"));
        }
        let idempotency_key = match header(headers, "idempotency-key") {
            None => None,
            Some(text) => Some(IdempotencyKey::parse(text).ok_or_else(|| {
                ApiError::invalid("Idempotency-Key 须为 1–255 个可见 ASCII 字符")
            })?),
        };
        let mut hashed = Vec::with_capacity(method.len() + path.len() + body.len() + 2);
        hashed.extend_from_slice(method.as_bytes());
        hashed.push(b'\n');
        hashed.extend_from_slice(path.as_bytes());
        hashed.push(b'\n');
        hashed.extend_from_slice(&body);
        Ok(Self {
            merchant_id,
            key_id: key_id.to_owned(),
            nonce: nonce.to_owned(),
            signed_at,
            idempotency_key,
            request_hash: signing::body_hash_hex(&hashed),
            body,
        })
    }
}

impl Signed {
    pub(crate) fn json<T: serde::de::DeserializeOwned>(&self) -> ApiResult<T> {
        crate::extract::parse_json(&self.body)
    }

    /// The guards of a value-changing call: its nonce and its (required) Idempotency-Key.
    pub(crate) fn call(&self) -> ApiResult<ApiCall> {
        let key = self.idempotency_key.clone().ok_or_else(|| {
            ApiError::invalid("改变余额或发码的请求必须带 Idempotency-Key 请求头")
        })?;
        Ok(ApiCall {
            nonce: Some(self.nonce_use()),
            idempotency: Some(IdempotencyClaim {
                key,
                request_hash: self.request_hash.clone(),
            }),
        })
    }

    fn nonce_use(&self) -> NonceUse {
        NonceUse {
            api_key_id: self.key_id.clone(),
            nonce: self.nonce.clone(),
            signed_at: self.signed_at,
        }
    }

    /// Records the nonce of a read-only call.
    pub(crate) async fn record_nonce(&self, state: &AppState) -> ApiResult<()> {
        match state.store.record_nonce(&self.nonce_use()).await {
            Ok(()) => Ok(()),
            Err(StoreError::Conflict(_)) => {
                state.metrics.bad_signatures.increment(1);
                Err(ApiError::Refused(Refusal::NonceReused))
            }
            Err(other) => Err(other.into()),
        }
    }

    pub(crate) fn actor(&self) -> Actor {
        Actor {
            staff_id: None,
            label: format!("api:{}", self.key_id),
        }
    }
}

/// The answer to a guarded call: the effect's JSON (marked when replayed) or its refusal.
pub(crate) fn respond<T, R, D: Serialize>(
    called: Called<T, R>,
    status: StatusCode,
    dto: impl FnOnce(T) -> D,
) -> ApiResult<Response>
where
    ApiError: From<R>,
{
    let value = called.result.map_err(ApiError::from)?;
    let mut response = (status, Json(dto(value))).into_response();
    if called.replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// One ledger transaction as the open API answers it: the partner
/// contract. The console and the H5 pages have their own view
/// (`customers::TransactionView`), so a display change never changes this.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"transaction_id": 42, "kind": "redeem", "kind_label": "兑换码兑换", "amount_fen": 10000, "balance_after_fen": 10000, "reference": "", "reason": "", "channel": "api", "created_at": 1790000000, "created_at_text": "2026-09-22 01:33"}))]
pub struct TransactionDto {
    pub transaction_id: i64,
    pub kind: &'static str,
    pub kind_label: &'static str,
    pub amount_fen: i64,
    pub balance_after_fen: i64,
    pub reference: String,
    pub reason: String,
    pub channel: &'static str,
    pub created_at: i64,
    pub created_at_text: String,
}

impl TransactionDto {
    pub fn new(t: &LedgerTransaction) -> Self {
        Self {
            transaction_id: t.id,
            kind: t.kind.code(),
            kind_label: t.kind.label_zh(),
            amount_fen: t.amount_fen,
            balance_after_fen: t.balance_after_fen,
            reference: t.reference.clone(),
            reason: t.reason.clone(),
            channel: t.channel.code(),
            created_at: t.created_at,
            created_at_text: format_datetime(t.created_at),
        }
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"order_id": "M20260601001", "product_id": 1, "quantity": 2, "customer_id": "u-1001"}))]
pub struct IssueOrderRequest {
    /// The mall's order id: reporting it again returns the same codes.
    #[schema(min_length = 1, max_length = 64, pattern = "^[!-~]+$")]
    pub order_id: String,
    pub product_id: i64,
    #[schema(minimum = 1, maximum = 100)]
    pub quantity: i64,
    /// The buyer's id in the mall: their codes show in their order detail.
    #[schema(min_length = 1, max_length = 64, pattern = "^[!-~]+$")]
    pub customer_id: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"code": "****-****-****-PQRS", "face_value_fen": 10000, "state": "unused", "valid_until": 1801000000}))]
pub struct IssuedCodeDto {
    /// `ABCD-EFGH-JKMN-PQRS`.
    pub code: String,
    pub face_value_fen: i64,
    pub valid_until: Option<i64>,
    pub state: &'static str,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"order_id": "M20260601001", "product_id": 1, "product_name": "100 元礼品卡", "quantity": 1, "codes": [{"code": "ABCD-EFGH-JKMN-PQRS", "face_value_fen": 10000, "state": "unused", "valid_until": 1801000000}]}))]
pub struct MallOrderDto {
    pub order_id: String,
    pub product_id: i64,
    pub product_name: String,
    pub quantity: i64,
    pub codes: Vec<IssuedCodeDto>,
}

/// Issues the codes of a paid gift-card order; the same order again returns the same codes.
async fn create_order_codes(State(state): State<AppState>, signed: Signed) -> ApiResult<Response> {
    let request: IssueOrderRequest = signed.json()?;
    let order_id = check_reference("order_id", &request.order_id).map_err(ApiError::invalid)?;
    if !(1..=kaquan_core::mall::ORDER_CODES_MAX).contains(&request.quantity) {
        return Err(ApiError::invalid(format!(
            "quantity 须为 1–{}",
            kaquan_core::mall::ORDER_CODES_MAX
        )));
    }
    let customer = match request.customer_id.as_deref() {
        Some(id) => Some(CustomerRef::External(
            check_reference("customer_id", id).map_err(ApiError::invalid)?,
        )),
        None => None,
    };
    let call = signed.call()?;
    let called = kaquan_core::mall::issue_order_codes(
        state.store.as_ref(),
        &state.master,
        &call,
        IssueOrderCodesRequest {
            merchant_id: signed.merchant_id,
            order_id,
            product_id: request.product_id,
            quantity: request.quantity,
            customer,
            actor: signed.actor(),
            now: crate::now(),
        },
    )
    .await?;
    let replayed = called.replayed;
    let status = if replayed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let merchant_id = signed.merchant_id;
    let master = state.master.clone();
    respond(called, status, move |order| MallOrderDto {
        order_id: order.order_id,
        product_id: order.product_id,
        product_name: order.product_name,
        quantity: order.quantity,
        codes: order
            .codes
            .iter()
            .map(|c| IssuedCodeDto {
                code: c.plaintext(&master, merchant_id),
                face_value_fen: c.face_value_fen,
                valid_until: c.valid_until,
                state: c.state.code(),
            })
            .collect(),
    })
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"customer_id": "u-1001", "code": "ABCD-EFGH-JKMN-PQRS"}))]
pub struct RedeemRequest {
    /// The mall's id of the customer (created on first sight).
    #[schema(min_length = 1, max_length = 64, pattern = "^[!-~]+$")]
    pub customer_id: String,
    /// The code as the customer typed it (case, spaces and hyphens do not matter).
    #[schema(max_length = 64)]
    pub code: String,
    /// The customer's own address, if the mall knows it: the per-client limit uses it.
    pub client_ip: Option<String>,
}

/// Redeems a code into the customer's balance (created on first sight).
async fn create_redemption(State(state): State<AppState>, signed: Signed) -> ApiResult<Response> {
    let request: RedeemRequest = signed.json()?;
    let customer =
        check_reference("customer_id", &request.customer_id).map_err(ApiError::invalid)?;
    if request.code.len() > 64 {
        return Err(ApiError::Refused(Refusal::CodeRefused));
    }
    let call = signed.call()?;
    let settings = crate::giftcards::cached_settings(&state, signed.merchant_id).await?;
    if !settings.enabled {
        return Err(ApiError::Conflict("礼品卡活动未开启".into()));
    }
    let client_key = match request.client_ip.as_deref().map(str::trim) {
        Some(ip) if !ip.is_empty() && ip.len() <= 64 => format!("ip:{ip}"),
        _ => format!("api-customer:{customer}"),
    };
    let called = kaquan_core::code::redeem_code(
        state.store.as_ref(),
        &state.master,
        &settings,
        &call,
        CodeRedeemer {
            merchant_id: signed.merchant_id,
            customer: CustomerRef::External(customer),
            client_key,
            channel: Channel::Api,
            actor: signed.actor(),
            now: crate::now(),
        },
        &request.code,
    )
    .await?;
    if !called.replayed {
        state.metrics.count_redemption(&called.result);
    }
    respond(called, StatusCode::CREATED, |t| TransactionDto::new(&t))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"customer_id": "u-1001", "amount_fen": 2500, "reference": "checkout-77"}))]
pub struct SpendRequest {
    #[schema(min_length = 1, max_length = 64, pattern = "^[!-~]+$")]
    pub customer_id: String,
    #[schema(minimum = 1, maximum = 100_000_000)]
    pub amount_fen: i64,
    /// The mall's order or checkout id.
    #[schema(min_length = 1, max_length = 64, pattern = "^[!-~]+$")]
    pub reference: String,
}

/// Spends balance (e.g. at checkout); never below zero.
async fn create_spend(State(state): State<AppState>, signed: Signed) -> ApiResult<Response> {
    let request: SpendRequest = signed.json()?;
    let customer =
        check_reference("customer_id", &request.customer_id).map_err(ApiError::invalid)?;
    let reference = check_reference("reference", &request.reference).map_err(ApiError::invalid)?;
    let amount_fen = check_amount(request.amount_fen).map_err(ApiError::invalid)?;
    let call = signed.call()?;
    let called = state
        .store
        .post_ledger(
            &call,
            &LedgerOp::Spend(SpendBalance {
                merchant_id: signed.merchant_id,
                customer: CustomerRef::External(customer),
                amount_fen,
                reference,
                actor: signed.actor(),
                now: crate::now(),
            }),
        )
        .await?;
    respond(called, StatusCode::CREATED, |t| TransactionDto::new(&t))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"spend_id": 43, "amount_fen": 500, "reason": "退货"}))]
pub struct RefundRequest {
    /// The `transaction_id` of the spend.
    pub spend_id: i64,
    #[schema(minimum = 1, maximum = 100_000_000)]
    pub amount_fen: i64,
    #[serde(default)]
    #[schema(max_length = 200)]
    pub reason: String,
}

/// Refunds all or part of a spend (never more than what is left of it).
async fn create_refund(State(state): State<AppState>, signed: Signed) -> ApiResult<Response> {
    let request: RefundRequest = signed.json()?;
    let amount_fen = check_amount(request.amount_fen).map_err(ApiError::invalid)?;
    if request.reason.chars().count() > REASON_LENGTH_MAX {
        return Err(ApiError::invalid(format!(
            "reason 最多 {REASON_LENGTH_MAX} 个字"
        )));
    }
    let call = signed.call()?;
    let called = state
        .store
        .post_ledger(
            &call,
            &LedgerOp::Refund(RefundSpend {
                merchant_id: signed.merchant_id,
                spend_transaction_id: request.spend_id,
                amount_fen,
                reason: request.reason,
                actor: signed.actor(),
                now: crate::now(),
            }),
        )
        .await?;
    respond(called, StatusCode::CREATED, |t| TransactionDto::new(&t))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"customer_id": "u-1001"}))]
pub struct LoginLinkRequest {
    #[schema(min_length = 1, max_length = 64, pattern = "^[!-~]+$")]
    pub customer_id: String,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"url": "https://kaquan.example.com/exchange/login?token=3c9a0e7f", "expires_at": 1795000300}))]
pub struct LoginLinkDto {
    /// Open this in the customer's browser; it works once, for 5 minutes.
    pub url: String,
    pub expires_at: i64,
}

/// A short-lived, single-use link that signs the mall's customer in to the exchange centre.
async fn create_login_link(State(state): State<AppState>, signed: Signed) -> ApiResult<Response> {
    let request: LoginLinkRequest = signed.json()?;
    let external_id =
        check_reference("customer_id", &request.customer_id).map_err(ApiError::invalid)?;
    signed.record_nonce(&state).await?;
    let now = crate::now();
    let customer = state
        .store
        .ensure_customer(signed.merchant_id, &external_id, now)
        .await?;
    let token = signing::create_login_token(&state.master, signed.merchant_id, customer.id, now);
    let url = format!(
        "{}/m/{}/exchange/login?{}",
        state.public_url_for(signed.merchant_id).await?,
        signed.merchant_id,
        serde_urlencoded::to_string([("token", token.as_str())]).unwrap_or_default()
    );
    Ok((
        StatusCode::CREATED,
        Json(LoginLinkDto {
            url,
            expires_at: now + signing::LOGIN_LINK_SECONDS,
        }),
    )
        .into_response())
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"customer_id": "u-1001", "balance_fen": 7500}))]
pub struct BalanceDto {
    pub customer_id: String,
    pub balance_fen: i64,
}

async fn external_customer(
    state: &AppState,
    signed: &Signed,
    external_id: &str,
) -> ApiResult<kaquan_core::customer::Customer> {
    state
        .store
        .find_external_customer(signed.merchant_id, external_id)
        .await?
        .ok_or(ApiError::Refused(Refusal::CustomerNotFound))
}

async fn get_customer_balance(
    State(state): State<AppState>,
    Path(customer_id): Path<String>,
    signed: Signed,
) -> ApiResult<Json<BalanceDto>> {
    signed.record_nonce(&state).await?;
    let customer = external_customer(&state, &signed, &customer_id).await?;
    Ok(Json(BalanceDto {
        customer_id,
        balance_fen: customer.balance_fen,
    }))
}

/// What the mall needs to show the merchant's gift cards (礼品卡设置, as
/// the seed's 小程序 shows them) and to sell them.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"enabled": true, "centre_entry": true, "show_centre_entry": true, "show_code_entry": true, "show_home_module": true, "distribution": false, "centre_name": "礼品卡中心", "share_title": "送你一张礼品卡", "description": "礼品卡可用于本店全部商品", "goods_display": "grid", "exchange_url": "https://shop.example.com/giftcards/exchange", "images": {"banner": null, "cover": null, "share": null}, "products": [{"id": 1, "name": "100 元礼品卡", "face_value_fen": 10000, "price_fen": 9500}]}))]
pub struct GiftcardCentreDto {
    /// 礼品卡活动.
    pub enabled: bool,
    /// 个人中心入口 as set.
    pub centre_entry: bool,
    /// Show 线下兑换码 in the customer's 个人中心: whenever the activity is
    /// on, whatever 个人中心入口 says.
    pub show_code_entry: bool,
    /// Show the 礼品卡 entry in the customer's 个人中心.
    pub show_centre_entry: bool,
    /// Show the 礼品卡 module on the mall's home page: the activity is on
    /// and there is a 礼品卡商品 on the shelf or a 礼品卡首页入口封面图.
    pub show_home_module: bool,
    pub centre_name: String,
    pub share_title: String,
    pub description: String,
    /// 是否参与分销.
    pub distribution: bool,
    /// 活动商品展示方式: `list` or `grid`.
    pub goods_display: &'static str,
    /// The exchange centre; the mall sends signed-in customers through
    /// `POST /open/v1/login-links` instead.
    pub exchange_url: String,
    /// Public addresses of the uploaded pictures.
    pub images: crate::exchange::ImageUrls,
    /// 礼品卡商品 on the shelf, newest first.
    pub products: Vec<CentreProductDto>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": 1, "name": "100 元礼品卡", "face_value_fen": 10000, "price_fen": 9500}))]
pub struct CentreProductDto {
    pub id: i64,
    pub name: String,
    pub price_fen: i64,
    /// The balance one code of it credits.
    pub face_value_fen: i64,
}

async fn get_giftcard_centre(
    State(state): State<AppState>,
    signed: Signed,
) -> ApiResult<Json<GiftcardCentreDto>> {
    signed.record_nonce(&state).await?;
    let merchant_id = signed.merchant_id;
    let settings = crate::giftcards::cached_settings(&state, merchant_id).await?;
    let public_url = state.public_url_for(merchant_id).await?;
    let images = crate::exchange::ImageUrls::of(&state, merchant_id, &public_url).await?;
    let products: Vec<CentreProductDto> = state
        .store
        .list_giftcard_products(merchant_id)
        .await?
        .into_iter()
        .filter(|p| p.fields.on_shelf)
        .map(|p| CentreProductDto {
            id: p.id,
            name: p.fields.name,
            price_fen: p.fields.price_fen,
            face_value_fen: p.face_value_fen,
        })
        .collect();
    Ok(Json(GiftcardCentreDto {
        enabled: settings.enabled,
        centre_entry: settings.centre_entry,
        show_code_entry: settings.enabled,
        show_centre_entry: settings.enabled && settings.centre_entry,
        show_home_module: settings.enabled && (!products.is_empty() || images.cover.is_some()),
        centre_name: settings.centre_name,
        share_title: settings.share_title,
        description: settings.description,
        distribution: settings.distribution,
        goods_display: settings.goods_display.code(),
        exchange_url: format!(
            "{}{}",
            state.public_url_for(merchant_id).await?,
            crate::exchange::centre_path(merchant_id)
        ),
        images,
        products,
    }))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// 1-based.
    #[param(minimum = 1)]
    pub page: Option<i64>,
    #[param(minimum = 1, maximum = 200)]
    pub page_size: Option<i64>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"customer_id": "u-1001", "balance_fen": 7500, "total": 2, "page": 1, "items": [{"transaction_id": 43, "kind": "spend", "kind_label": "余额消费", "amount_fen": -2500, "balance_after_fen": 7500, "reference": "checkout-77", "reason": "", "channel": "api", "created_at": 1790000100, "created_at_text": "2026-09-22 01:35"}]}))]
pub struct StatementDto {
    pub customer_id: String,
    pub balance_fen: i64,
    pub total: i64,
    pub page: i64,
    pub items: Vec<TransactionDto>,
}

async fn list_customer_statement(
    State(state): State<AppState>,
    Path(customer_id): Path<String>,
    Query(query): Query<PageQuery>,
    signed: Signed,
) -> ApiResult<Json<StatementDto>> {
    signed.record_nonce(&state).await?;
    let customer = external_customer(&state, &signed, &customer_id).await?;
    let page = Page::new(query.page, query.page_size);
    let (items, total) = state
        .store
        .list_statement(signed.merchant_id, customer.id, page)
        .await?;
    Ok(Json(StatementDto {
        customer_id,
        balance_fen: customer.balance_fen,
        total,
        page: page.page,
        items: items.iter().map(TransactionDto::new).collect(),
    }))
}
