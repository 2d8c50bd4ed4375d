//! The mall's and POS's coupon contract (signed open API, an
//! Idempotency-Key on every write): 获取卡券ID (`POST /open/v1/coupons`
//! issues a program's coupons for an order line), a customer's coupons,
//! querying a code with the discount an amount gets, 核销 with its undo
//! inside the merchant's window, and 使用卡券ID (`POST
//! /open/v1/coupon-exchanges`: a 兑换券 for its goods).

use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path, Query};
use crate::open_api::{respond, Signed};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use kaquan_core::coupon::code::open_coupon_code;
use kaquan_core::coupon::usage::{
    Coupon, CouponRefusal, CouponSource, CouponVerification, HeldCoupon, VerifyChannel, WalletTab,
};
use kaquan_core::coupon::usecases::{self, CodeReader, Recipients, VerifyRequest};
use kaquan_core::coupon::Benefit;
use kaquan_core::ledger::{check_reference, Called};
use kaquan_core::store::Page as ListPage;
use serde::{Deserialize, Serialize};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/open/v1/coupons", post(create_coupon))
        .route(
            "/open/v1/customers/{customer_id}/coupons",
            get(list_customer_coupons),
        )
        .route("/open/v1/coupons/query", post(check_coupon))
        .route(
            "/open/v1/coupon-verifications",
            post(create_coupon_verification_signed),
        )
        .route(
            "/open/v1/coupon-verifications/{verification_id}/undo",
            post(create_coupon_verification_undo),
        )
        .route("/open/v1/coupon-exchanges", post(create_coupon_exchange))
}

/// Most coupons one order line issues.
pub const ORDER_LINE_COUPONS_MAX: i64 = 100;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"program_id": 3, "customer_id": "u-1001", "order_id": "M20261206001", "order_line": "1", "quantity": 2}))]
pub struct CouponIssueOrderRequest {
    /// The program (获取卡券ID) the bought product is linked to.
    pub program_id: i64,
    /// The buyer's id in the mall.
    #[schema(min_length = 1, max_length = 64)]
    pub customer_id: String,
    /// The paid order and its line: one issue per line; the same line
    /// again returns the same coupons.
    #[schema(min_length = 1, max_length = 64)]
    pub order_id: String,
    #[schema(max_length = 64)]
    pub order_line: Option<String>,
    /// Units bought: one coupon each (1–100, default 1).
    pub quantity: Option<i64>,
}

/// A coupon as the mall receives it (the partner contract): with its code,
/// which the mall shows only to the customer who holds it.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"coupon_id": 88, "code": "12345678901234567890", "program_id": 3, "title": "满100减20", "kind": "cash", "benefit": "满100.00元减20.00元", "status": "usable", "valid_from": 1796054400, "valid_until": 1798732799, "order_id": "M20261206001", "claimed_at": 1796100000, "verified_at": null}))]
pub struct CouponDto {
    pub coupon_id: i64,
    /// 20 digits.
    pub code: String,
    pub program_id: i64,
    pub title: String,
    pub kind: &'static str,
    pub benefit: String,
    /// `usable`, `not_yet_valid`, `expired`, `verified` or `gifting`.
    pub status: &'static str,
    /// Unix seconds, inclusive.
    pub valid_from: i64,
    pub valid_until: i64,
    pub order_id: Option<String>,
    pub claimed_at: i64,
    pub verified_at: Option<i64>,
}

fn coupon_dto(
    state: &AppState,
    coupon: &Coupon,
    program: &kaquan_core::coupon::CouponProgram,
) -> CouponDto {
    CouponDto {
        coupon_id: coupon.id,
        code: open_coupon_code(
            &state.master,
            coupon.merchant_id,
            coupon.key_version,
            &coupon.sealed,
        )
        .unwrap_or_default(),
        program_id: coupon.program_id,
        title: program.fields.title.clone(),
        kind: program.fields.benefit.kind().code(),
        benefit: program.fields.benefit.summary_zh(),
        status: coupon.status(crate::now()).code(),
        valid_from: coupon.valid_from,
        valid_until: coupon.valid_until,
        order_id: coupon.order_id.clone(),
        claimed_at: coupon.claimed_at,
        verified_at: coupon.verified_at,
    }
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"order_id": "M20261206001", "order_line": "1", "coupons": [{"coupon_id": 88, "code": "12345678901234567890", "program_id": 3, "title": "满100减20", "kind": "cash", "benefit": "满100.00元减20.00元", "status": "usable", "valid_from": 1796054400, "valid_until": 1798732799, "order_id": "M20261206001", "claimed_at": 1796100000, "verified_at": null}]}))]
pub struct CouponIssueOrderDto {
    pub order_id: String,
    pub order_line: String,
    pub coupons: Vec<CouponDto>,
}

/// `created` for a first call, 200 for a replay of a key or order line.
fn created_unless_replayed<T>(
    called: &Called<T, CouponRefusal>,
    created: StatusCode,
) -> StatusCode {
    if called.replayed {
        StatusCode::OK
    } else {
        created
    }
}

/// 获取卡券ID: issues a program's coupons for a paid order line.
async fn create_coupon(State(state): State<AppState>, signed: Signed) -> ApiResult<Response> {
    let request: CouponIssueOrderRequest = signed.json()?;
    let order_id = check_reference("order_id", &request.order_id).map_err(ApiError::invalid)?;
    let order_line = check_reference("order_line", request.order_line.as_deref().unwrap_or("1"))
        .map_err(ApiError::invalid)?;
    let customer =
        check_reference("customer_id", &request.customer_id).map_err(ApiError::invalid)?;
    let quantity = request.quantity.unwrap_or(1);
    if !(1..=ORDER_LINE_COUPONS_MAX).contains(&quantity) {
        return Err(ApiError::invalid(format!(
            "quantity 须为 1–{ORDER_LINE_COUPONS_MAX}"
        )));
    }
    let call = signed.call()?;
    let m = signed.merchant_id;
    let program = match state.store.get_coupon_program(m, request.program_id).await {
        Ok(program) => program,
        Err(kaquan_core::StoreError::NotFound) => {
            return Err(ApiError::CouponRefused(CouponRefusal::ProgramNotFound))
        }
        Err(e) => return Err(e.into()),
    };
    let now = crate::now();
    let customer_id = state.store.ensure_customer(m, &customer, now).await?.id;
    let called = usecases::issue_coupons(
        state.store.as_ref(),
        &state.master,
        &call,
        &program,
        Recipients {
            source: CouponSource::Order,
            customer_ids: vec![customer_id; quantity as usize],
            order: Some((order_id.clone(), order_line.clone())),
            shared_by: None,
        },
        &signed.actor(),
        now,
    )
    .await?;
    let status = created_unless_replayed(&called, StatusCode::CREATED);
    respond(called, status, |coupons| CouponIssueOrderDto {
        order_id,
        order_line,
        coupons: coupons
            .iter()
            .map(|c| coupon_dto(&state, c, &program))
            .collect(),
    })
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CustomerCouponsQuery {
    /// `usable`, `used` or `expired`; all when absent.
    #[param(pattern = "^(|usable|used|expired)$")]
    pub status: Option<String>,
    #[param(minimum = 1)]
    pub page: Option<i64>,
    #[param(minimum = 1, maximum = 200)]
    pub page_size: Option<i64>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"items": [{"coupon_id": 88, "code": "12345678901234567890", "program_id": 3, "title": "满100减20", "kind": "cash", "benefit": "满100.00元减20.00元", "status": "usable", "valid_from": 1796054400, "valid_until": 1798732799, "order_id": null, "claimed_at": 1796100000, "verified_at": null}], "total": 1, "page": 1, "page_size": 50}))]
pub struct CustomerCouponsDto {
    pub items: Vec<CouponDto>,
    pub total: i64,
    pub page: i64,
    pub page_size: i64,
}

/// A customer's coupons by the mall's customer id.
async fn list_customer_coupons(
    State(state): State<AppState>,
    Path(customer_id): Path<String>,
    Query(query): Query<CustomerCouponsQuery>,
    signed: Signed,
) -> ApiResult<Json<CustomerCouponsDto>> {
    signed.record_nonce(&state).await?;
    let tab = match query.status.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(code) => Some(
            WalletTab::parse(code)
                .ok_or_else(|| ApiError::invalid("status 应为 usable、used 或 expired"))?,
        ),
    };
    let m = signed.merchant_id;
    let customer = state
        .store
        .find_external_customer(m, &customer_id)
        .await?
        .ok_or(ApiError::CouponRefused(CouponRefusal::CustomerNotFound))?;
    let page = ListPage::new(query.page, query.page_size);
    let (held, total) = state
        .store
        .list_customer_coupons(m, customer.id, tab, crate::now(), page)
        .await?;
    Ok(Json(CustomerCouponsDto {
        items: held
            .iter()
            .map(|h| coupon_dto(&state, &h.coupon, &h.program))
            .collect(),
        total,
        page: page.page,
        page_size: page.page_size,
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"code": "12345678901234567890", "location_id": 1, "order_amount_fen": 12000}))]
pub struct CouponQueryRequest {
    #[schema(max_length = 64)]
    pub code: String,
    /// Where it would be used (needed for a program valid at listed locations only).
    pub location_id: Option<i64>,
    /// The order's amount: the answer says the discount it gets.
    pub order_amount_fen: Option<i64>,
}

/// A code queried: its coupon, whether it may be used there now (and
/// why not), and the discount.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"coupon": {"coupon_id": 88, "code": "12345678901234567890", "program_id": 3, "title": "满100减20", "kind": "cash", "benefit": "满100.00元减20.00元", "status": "usable", "valid_from": 1796054400, "valid_until": 1798732799, "order_id": null, "claimed_at": 1796100000, "verified_at": null}, "usable": true, "reason_code": null, "reason": null, "discount_fen": 2000, "use_all_locations": false, "location_ids": [1, 2], "time_limit": "不限", "can_use_with_other_discount": false}))]
pub struct CouponQueryDto {
    pub coupon: CouponDto,
    pub usable: bool,
    pub reason_code: Option<&'static str>,
    pub reason: Option<String>,
    pub discount_fen: i64,
    pub use_all_locations: bool,
    pub location_ids: Vec<i64>,
    pub time_limit: String,
    pub can_use_with_other_discount: bool,
}

/// The API key's throttle over the codes it sends, once the code is checked.
fn code_reader(signed: &Signed, code: &str) -> ApiResult<CodeReader> {
    crate::extract::check_chars("code", code, 64)?;
    Ok(CodeReader::api(signed.merchant_id, &signed.key_id))
}

async fn look_up(state: &AppState, signed: &Signed, code: &str) -> ApiResult<HeldCoupon> {
    let reader = code_reader(signed, code)?;
    usecases::look_up_code(
        state.store.as_ref(),
        &state.master,
        &reader,
        code,
        crate::now(),
    )
    .await?
    .map_err(ApiError::CouponRefused)
}

fn api_request(
    signed: &Signed,
    location_id: Option<i64>,
    order_amount_fen: Option<i64>,
    order_ref: String,
) -> ApiResult<VerifyRequest> {
    if order_amount_fen.is_some_and(|fen| !kaquan_core::money::is_valid_fen(fen)) {
        return Err(ApiError::invalid("order_amount_fen 不正确"));
    }
    Ok(VerifyRequest {
        location_id,
        verifier_locations: Vec::new(),
        channel: VerifyChannel::Api,
        order_amount_fen,
        order_ref,
        exchange_goods: None,
        actor: signed.actor(),
        now: crate::now(),
    })
}

/// Queries a code: state, where and when it may be used, and the discount.
async fn check_coupon(
    State(state): State<AppState>,
    signed: Signed,
) -> ApiResult<Json<CouponQueryDto>> {
    signed.record_nonce(&state).await?;
    let request: CouponQueryRequest = signed.json()?;
    let held = look_up(&state, &signed, &request.code).await?;
    let verify = api_request(
        &signed,
        request.location_id,
        request.order_amount_fen,
        String::new(),
    )?;
    let outcome = usecases::preview(&held, &verify);
    let f = &held.program.fields;
    Ok(Json(CouponQueryDto {
        coupon: coupon_dto(&state, &held.coupon, &held.program),
        usable: outcome.is_ok(),
        reason_code: outcome.err().map(|r| r.code()),
        reason: outcome.err().map(|r| r.message_zh()),
        discount_fen: outcome.unwrap_or(0),
        use_all_locations: f.use_all_locations,
        location_ids: f.location_ids.clone(),
        time_limit: f.time_limit.text_zh(),
        can_use_with_other_discount: f.can_use_with_other_discount,
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"code": "12345678901234567890", "location_id": 1, "order_amount_fen": 12000, "order_ref": "POS-20261206-001"}))]
pub struct CouponVerificationSignedRequest {
    #[schema(max_length = 64)]
    pub code: String,
    pub location_id: Option<i64>,
    /// With it, a 代金券's threshold is checked and the discount computed.
    pub order_amount_fen: Option<i64>,
    /// The mall's or POS's order.
    #[schema(min_length = 1, max_length = 64)]
    pub order_ref: String,
}

/// A verification as the mall receives it (the partner contract).
#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"verification_id": 501, "coupon_id": 88, "program_id": 3, "location_id": 1, "order_ref": "POS-20261206-001", "order_amount_fen": 12000, "discount_fen": 2000, "verified_at": 1796200000, "undone_at": null, "undo_until": 1796203600, "given_coupon_id": null}))]
pub struct CouponVerificationDto {
    pub verification_id: i64,
    pub coupon_id: i64,
    pub program_id: i64,
    pub location_id: Option<i64>,
    pub order_ref: String,
    pub order_amount_fen: Option<i64>,
    pub discount_fen: i64,
    pub verified_at: i64,
    pub undone_at: Option<i64>,
    /// The last second the verification may be undone.
    pub undo_until: i64,
    /// 核销后返券: the coupon the customer was given (`null`: none).
    pub given_coupon_id: Option<i64>,
}

fn verification_dto(v: &CouponVerification, window_minutes: i64) -> CouponVerificationDto {
    CouponVerificationDto {
        verification_id: v.id,
        coupon_id: v.coupon_id,
        program_id: v.program_id,
        location_id: v.location_id,
        order_ref: v.order_ref.clone(),
        order_amount_fen: v.order_amount_fen,
        discount_fen: v.discount_fen,
        verified_at: v.created_at,
        undone_at: v.undone_at,
        undo_until: v.created_at + window_minutes * 60,
        given_coupon_id: v.given_coupon_id,
    }
}

async fn verify_signed(
    state: &AppState,
    signed: &Signed,
    code: &str,
    mut verify: VerifyRequest,
    exchange_goods: Option<Option<i64>>,
) -> ApiResult<Called<CouponVerification, CouponRefusal>> {
    let call = signed.call()?;
    verify.exchange_goods = exchange_goods;
    if let Some(id) = verify.location_id {
        crate::coupon_records::checked_location(state, signed.merchant_id, Some(id)).await?;
    }
    let reader = code_reader(signed, code)?;
    let store = state.store.as_ref();
    let called = usecases::verify_code(store, &state.master, &reader, &call, code, &verify).await?;
    state.metrics.count_verification(&called.result);
    Ok(called)
}

/// 核销 by the mall or POS.
async fn create_coupon_verification_signed(
    State(state): State<AppState>,
    signed: Signed,
) -> ApiResult<Response> {
    let request: CouponVerificationSignedRequest = signed.json()?;
    let order_ref = check_reference("order_ref", &request.order_ref).map_err(ApiError::invalid)?;
    let verify = api_request(
        &signed,
        request.location_id,
        request.order_amount_fen,
        order_ref,
    )?;
    let called = verify_signed(&state, &signed, &request.code, verify, None).await?;
    let window = crate::locations::cached_coupon_settings(&state, signed.merchant_id)
        .await?
        .undo_window_minutes;
    let status = created_unless_replayed(&called, StatusCode::CREATED);
    respond(called, status, |v| verification_dto(&v, window))
}

/// Undoes a verification inside the merchant's window: the coupon is usable again.
async fn create_coupon_verification_undo(
    State(state): State<AppState>,
    Path(verification_id): Path<i64>,
    signed: Signed,
) -> ApiResult<Response> {
    if !signed.body.is_empty() && signed.body.as_ref() != b"{}" {
        return Err(ApiError::invalid("撤销请求不带请求体（或为 {}）"));
    }
    let call = signed.call()?;
    let m = signed.merchant_id;
    let called = usecases::undo_verification(
        state.store.as_ref(),
        &call,
        m,
        verification_id,
        &signed.actor(),
        crate::now(),
    )
    .await?;
    let window = crate::locations::cached_coupon_settings(&state, m)
        .await?
        .undo_window_minutes;
    let status = created_unless_replayed(&called, StatusCode::OK);
    respond(called, status, |v| verification_dto(&v, window))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"code": "12345678901234567890", "goods_id": 4, "order_ref": "M20261206002", "location_id": null}))]
pub struct CouponExchangeRequest {
    #[schema(max_length = 64)]
    pub code: String,
    /// The 提货商品 the mall's product is; a 兑换券 of another goods item is refused.
    pub goods_id: Option<i64>,
    #[schema(min_length = 1, max_length = 64)]
    pub order_ref: String,
    pub location_id: Option<i64>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"verification": {"verification_id": 502, "coupon_id": 89, "program_id": 4, "location_id": null, "order_ref": "M20261206002", "order_amount_fen": null, "discount_fen": 0, "verified_at": 1796200000, "undone_at": null, "undo_until": 1796203600}, "goods_id": 4, "gift": "中秋礼盒"}))]
pub struct CouponExchangeDto {
    pub verification: CouponVerificationDto,
    pub goods_id: Option<i64>,
    /// 兑换内容.
    pub gift: String,
}

/// 使用卡券ID: a 兑换券 exchanges for its goods in the mall.
async fn create_coupon_exchange(
    State(state): State<AppState>,
    signed: Signed,
) -> ApiResult<Response> {
    let request: CouponExchangeRequest = signed.json()?;
    let order_ref = check_reference("order_ref", &request.order_ref).map_err(ApiError::invalid)?;
    let verify = api_request(&signed, request.location_id, None, order_ref)?;
    let called = verify_signed(
        &state,
        &signed,
        &request.code,
        verify,
        Some(request.goods_id),
    )
    .await?;
    let window = crate::locations::cached_coupon_settings(&state, signed.merchant_id)
        .await?
        .undo_window_minutes;
    let m = signed.merchant_id;
    let program = match &called.result {
        Ok(v) => Some(state.store.get_coupon_program(m, v.program_id).await?),
        Err(_) => None,
    };
    let status = created_unless_replayed(&called, StatusCode::CREATED);
    respond(called, status, |v| {
        let (goods_id, gift) = match program.map(|p| p.fields.benefit) {
            Some(Benefit::Gift { goods_id, gift }) => (goods_id, gift),
            _ => (None, String::new()),
        };
        CouponExchangeDto {
            verification: verification_dto(&v, window),
            goods_id,
            gift,
        }
    })
}
