//! 核销 for staff: checking a code (step 1 of the verifier page) and
//! verifying it through the staff API, 核销记录 with its filters and xlsx
//! export, and 数据与对账 (per day × location and per verifier).

use crate::auth::Authed;
use crate::error::{ApiError, ApiResult};
use crate::exports;
use crate::extract::{Json, Query};
use crate::lists::ListDto;
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use kaquan_core::auth::Permission;
use kaquan_core::clock::{format_date, format_datetime};
use kaquan_core::coupon::code::{mask_coupon_code, open_coupon_code};
use kaquan_core::coupon::usage::{
    CouponVerification, DailyVerificationStats, HeldCoupon, VerificationFilter, VerifierStats,
    VerifyChannel,
};
use kaquan_core::coupon::usecases::{self, CodeReader, VerifyRequest};
use kaquan_core::ledger::ApiCall;
use kaquan_core::money::format_yuan;
use kaquan_core::pickup::{mask_name, mask_phone};
use kaquan_core::store::Page as ListPage;
use serde::{Deserialize, Serialize};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/coupon-verifications",
            get(list_coupon_verifications).post(create_coupon_verification),
        )
        .route(
            "/api/v1/coupon-verifications/check",
            post(check_coupon_code),
        )
        .route(
            "/api/v1/coupon-verifications/export",
            get(export_coupon_verifications),
        )
        .route(
            "/api/v1/coupon-verifications/stats",
            get(get_coupon_verification_stats),
        )
        .route(
            "/api/v1/coupon-verifications/stats/export",
            get(export_coupon_verification_stats),
        )
}

/// A customer as a verifier sees them: masked unless they may see personal data.
pub fn customer_shown(label: &str, show: bool) -> String {
    if show {
        label.to_owned()
    } else if label.len() == 11 && label.bytes().all(|b| b.is_ascii_digit()) {
        mask_phone(label)
    } else {
        mask_name(label)
    }
}

// ---- step 1: what the code is, and whether it may be used here -------------

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"code": "1234 5678 9012 3456 7890", "location_id": 1, "order_amount_fen": 12000}))]
pub struct CouponCheckRequest {
    /// What was scanned or typed: the 20-digit code or an 18-digit 动态码.
    #[schema(max_length = 64)]
    pub code: String,
    /// The location verified at (a verifier bound to locations must name one of them).
    pub location_id: Option<i64>,
    /// The order's amount, for the threshold of a 代金券 and a 折扣券's discount.
    pub order_amount_fen: Option<i64>,
}

/// What step 1 shows: the coupon, and whether (and why not) it may be verified here now.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"coupon_id": 88, "program_id": 3, "title": "满100减20", "kind_label": "代金券", "brand_name": "果园", "benefit": "满100.00元减20.00元", "valid_from": "2026-12-01", "valid_until": "2026-12-31", "time_limit_text": "不限", "notice": "结账时出示", "customer": "138****1234", "status_label": "可使用", "usable": true, "reason_code": null, "reason": null, "discount_fen": 2000, "discount_yuan": "20.00"}))]
pub struct CouponCheckDto {
    pub coupon_id: i64,
    pub program_id: i64,
    pub title: String,
    pub kind_label: &'static str,
    pub brand_name: String,
    pub benefit: String,
    pub valid_from: String,
    pub valid_until: String,
    pub time_limit_text: String,
    pub notice: String,
    /// Masked unless the staff member may see personal data.
    pub customer: String,
    pub status_label: &'static str,
    pub usable: bool,
    /// The refusal's stable code when it cannot be used here now.
    pub reason_code: Option<&'static str>,
    pub reason: Option<String>,
    /// The discount the amount gets (a 代金券's face value without one).
    pub discount_fen: i64,
    pub discount_yuan: String,
}

/// The location a staff member verifies at, checked: the merchant's, open.
pub async fn checked_location(
    state: &AppState,
    merchant_id: i64,
    location_id: Option<i64>,
) -> ApiResult<Option<i64>> {
    let Some(id) = location_id else {
        return Ok(None);
    };
    let found = state
        .store
        .list_locations(merchant_id)
        .await?
        .into_iter()
        .find(|l| l.id == id)
        .ok_or_else(|| ApiError::invalid("找不到该门店"))?;
    if !found.fields.enabled {
        return Err(ApiError::invalid(format!(
            "门店「{}」已停用",
            found.fields.name
        )));
    }
    Ok(Some(id))
}

/// What a staff member's verification asks for, with their bindings.
pub async fn staff_request(
    state: &AppState,
    authed: &Authed,
    location_id: Option<i64>,
    order_amount_fen: Option<i64>,
    channel: VerifyChannel,
    order_ref: String,
) -> ApiResult<VerifyRequest> {
    authed.require(Permission::CouponsVerify)?;
    if order_amount_fen.is_some_and(|fen| !kaquan_core::money::is_valid_fen(fen)) {
        return Err(ApiError::invalid("订单金额不正确"));
    }
    let m = authed.merchant_id();
    Ok(VerifyRequest {
        location_id: checked_location(state, m, location_id).await?,
        verifier_locations: state.store.staff_locations(m, authed.staff.id).await?,
        channel,
        order_amount_fen,
        order_ref,
        exchange_goods: None,
        actor: authed.actor(),
        now: crate::now(),
    })
}

/// Finds the coupon a staff member typed or scanned, under their throttle.
pub async fn staff_look_up(state: &AppState, authed: &Authed, code: &str) -> ApiResult<HeldCoupon> {
    authed.require(Permission::CouponsVerify)?;
    crate::extract::check_chars("code", code, 64)?;
    let reader = CodeReader::staff(authed.merchant_id(), authed.staff.id);
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

/// Step 1's view of a coupon for a request.
pub fn check_view(
    held: &HeldCoupon,
    request: &VerifyRequest,
    show_customer: bool,
    label: &str,
) -> CouponCheckDto {
    let f = &held.program.fields;
    let outcome = usecases::preview(held, request);
    CouponCheckDto {
        coupon_id: held.coupon.id,
        program_id: held.program.id,
        title: f.title.clone(),
        kind_label: f.benefit.kind().label_zh(),
        brand_name: f.brand_name.clone(),
        benefit: f.benefit.summary_zh(),
        valid_from: format_date(held.coupon.valid_from),
        valid_until: format_date(held.coupon.valid_until),
        time_limit_text: f.time_limit.text_zh(),
        notice: f.notice.clone(),
        customer: customer_shown(label, show_customer),
        status_label: held.coupon.status(request.now).label_zh(),
        usable: outcome.is_ok(),
        reason_code: outcome.err().map(|r| r.code()),
        reason: outcome.err().map(|r| r.message_zh()),
        discount_fen: outcome.unwrap_or(0),
        discount_yuan: format_yuan(outcome.unwrap_or(0)),
    }
}

/// The holder's label (nickname, mall id or phone).
pub async fn holder_label(state: &AppState, held: &HeldCoupon) -> ApiResult<String> {
    Ok(state
        .store
        .get_customer(held.coupon.merchant_id, held.coupon.customer_id)
        .await?
        .label())
}

async fn check_coupon_code(
    State(state): State<AppState>,
    authed: Authed,
    Json(request): Json<CouponCheckRequest>,
) -> ApiResult<Json<CouponCheckDto>> {
    let verify = staff_request(
        &state,
        &authed,
        request.location_id,
        request.order_amount_fen,
        VerifyChannel::Typed,
        String::new(),
    )
    .await?;
    let held = staff_look_up(&state, &authed, &request.code).await?;
    let label = holder_label(&state, &held).await?;
    Ok(Json(check_view(
        &held,
        &verify,
        authed.can(Permission::PersonalDataView),
        &label,
    )))
}

// ---- step 2: 确认核销 ---------------------------------------------------------

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"code": "1234 5678 9012 3456 7890", "location_id": 1, "order_amount_fen": 12000, "order_ref": "POS-20261206-001", "channel": "scan"}))]
pub struct CouponVerifyRequest {
    #[schema(max_length = 64)]
    pub code: String,
    pub location_id: Option<i64>,
    pub order_amount_fen: Option<i64>,
    /// The POS's or mall's order reference, if any.
    #[serde(default)]
    #[schema(max_length = 64)]
    pub order_ref: String,
    /// `scan` (camera or scanner gun) or `typed` (default).
    pub channel: Option<String>,
}

/// A verification as staff see it (核销记录).
#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": 501, "created_at": "2026-12-06 12:30:00", "location_id": 1, "location_name": "中山路店", "verifier": "desk", "channel": "scan", "channel_label": "扫码核销", "program_id": 3, "program_title": "满100减20", "kind_label": "代金券", "code_masked": "**** **** **** **** 7890", "customer": "138****1234", "order_amount_fen": 12000, "order_amount_yuan": "120.00", "discount_fen": 2000, "discount_yuan": "20.00", "order_ref": "POS-20261206-001", "undone_at": null, "undone_by": null, "given_coupon_id": null}))]
pub struct CouponVerificationView {
    pub id: i64,
    pub created_at: String,
    pub location_id: Option<i64>,
    pub location_name: Option<String>,
    pub verifier: String,
    pub channel: &'static str,
    pub channel_label: &'static str,
    pub program_id: i64,
    pub program_title: String,
    pub kind_label: &'static str,
    pub code_masked: String,
    /// Masked unless the staff member may see personal data.
    pub customer: String,
    pub order_amount_fen: Option<i64>,
    pub order_amount_yuan: Option<String>,
    pub discount_fen: i64,
    pub discount_yuan: String,
    pub order_ref: String,
    pub undone_at: Option<String>,
    pub undone_by: Option<String>,
    /// 核销后返券: the coupon the customer was given (`null`: none).
    pub given_coupon_id: Option<i64>,
}

impl CouponVerificationView {
    pub fn new(state: &AppState, v: &CouponVerification, show_customer: bool) -> Self {
        let code = open_coupon_code(&state.master, v.merchant_id, v.key_version, &v.sealed)
            .map(|c| mask_coupon_code(&c))
            .unwrap_or_default();
        Self {
            id: v.id,
            created_at: format_datetime(v.created_at),
            location_id: v.location_id,
            location_name: v.location_name.clone(),
            verifier: v.verifier.clone(),
            channel: v.channel.code(),
            channel_label: v.channel.label_zh(),
            program_id: v.program_id,
            program_title: v.program_title.clone(),
            kind_label: v.kind.label_zh(),
            code_masked: code,
            customer: customer_shown(&v.customer_label, show_customer),
            order_amount_fen: v.order_amount_fen,
            order_amount_yuan: v.order_amount_fen.map(format_yuan),
            discount_fen: v.discount_fen,
            discount_yuan: format_yuan(v.discount_fen),
            order_ref: v.order_ref.clone(),
            undone_at: v.undone_at.map(format_datetime),
            undone_by: v.undone_by.clone(),
            given_coupon_id: v.given_coupon_id,
        }
    }
}

/// Verifies what a staff member typed or scanned.
pub async fn staff_verify(
    state: &AppState,
    authed: &Authed,
    request: &CouponVerifyRequest,
) -> ApiResult<CouponVerification> {
    let channel = match request.channel.as_deref() {
        None | Some("") | Some("typed") => VerifyChannel::Typed,
        Some("scan") => VerifyChannel::Scan,
        Some(_) => return Err(ApiError::invalid("channel 应为 scan 或 typed")),
    };
    let order_ref = kaquan_core::ledger::check_reference("order_ref", request.order_ref.trim())
        .or_else(|e| {
            if request.order_ref.trim().is_empty() {
                Ok(String::new())
            } else {
                Err(ApiError::invalid(e))
            }
        })?;
    let verify = staff_request(
        state,
        authed,
        request.location_id,
        request.order_amount_fen,
        channel,
        order_ref,
    )
    .await?;
    let held = staff_look_up(state, authed, &request.code).await?;
    let result = usecases::verify_coupon(
        state.store.as_ref(),
        &state.master,
        &ApiCall::default(),
        &held,
        &verify,
    )
    .await?
    .result;
    state.metrics.count_verification(&result);
    result.map_err(ApiError::CouponRefused)
}

async fn create_coupon_verification(
    State(state): State<AppState>,
    authed: Authed,
    Json(request): Json<CouponVerifyRequest>,
) -> ApiResult<(StatusCode, Json<CouponVerificationView>)> {
    let done = staff_verify(&state, &authed, &request).await?;
    let show = authed.can(Permission::PersonalDataView);
    Ok((
        StatusCode::CREATED,
        Json(CouponVerificationView::new(&state, &done, show)),
    ))
}

// ---- 核销记录 and 数据与对账 ----------------------------------------------------

#[derive(Deserialize, Serialize, utoipa::IntoParams, Default, Clone)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct VerificationQuery {
    pub page: Option<i64>,
    pub page_size: Option<i64>,
    pub program_id: Option<i64>,
    pub location_id: Option<i64>,
    /// The verifier's username (or `api:<key>`).
    pub verifier: Option<String>,
    /// `scan`, `typed` or `api`.
    pub channel: Option<String>,
    /// `YYYY-MM-DD`, inclusive.
    pub from: Option<String>,
    pub until: Option<String>,
}

impl VerificationQuery {
    pub fn filter(&self) -> ApiResult<VerificationFilter> {
        let channel = match self.channel.as_deref().filter(|c| !c.is_empty()) {
            None => None,
            Some(code) => Some(
                VerifyChannel::parse(code)
                    .ok_or_else(|| ApiError::invalid("channel 应为 scan、typed 或 api"))?,
            ),
        };
        Ok(VerificationFilter {
            program_id: self.program_id,
            location_id: self.location_id,
            verifier: self.verifier.clone().filter(|v| !v.trim().is_empty()),
            channel,
            from: crate::lists::parse_optional_date(self.from.as_deref(), "开始日期", false)?,
            until: crate::lists::parse_optional_date(self.until.as_deref(), "结束日期", true)?,
        })
    }
}

/// One page of 核销记录.
pub async fn verification_page(
    state: &AppState,
    authed: &Authed,
    query: &VerificationQuery,
) -> ApiResult<ListDto<CouponVerificationView>> {
    authed.require(Permission::CouponsManage)?;
    let page = ListPage::new(query.page, query.page_size);
    let (records, total) = state
        .store
        .list_coupon_verifications(authed.merchant_id(), &query.filter()?, page)
        .await?;
    let show = authed.can(Permission::PersonalDataView);
    Ok(ListDto::new(
        records
            .iter()
            .map(|v| CouponVerificationView::new(state, v, show))
            .collect(),
        total,
        page,
    ))
}

async fn list_coupon_verifications(
    State(state): State<AppState>,
    authed: Authed,
    Query(query): Query<VerificationQuery>,
) -> ApiResult<Json<ListDto<CouponVerificationView>>> {
    Ok(Json(verification_page(&state, &authed, &query).await?))
}

/// Most rows one 核销记录 export holds.
pub const VERIFICATION_EXPORT_ROWS_MAX: i64 = 100_000;

const VERIFICATION_HEADERS: [&str; 13] = [
    "核销时间",
    "门店",
    "核销员",
    "核销方式",
    "优惠券",
    "券类型",
    "券码",
    "顾客",
    "订单金额",
    "优惠金额",
    "订单号",
    "撤销时间",
    "撤销人",
];

/// 核销记录导出: the filtered records as xlsx.
pub async fn export_verifications(
    state: &AppState,
    authed: &Authed,
    query: &VerificationQuery,
) -> ApiResult<Response> {
    authed.require(Permission::CouponsManage)?;
    let filter = query.filter()?;
    let show = authed.can(Permission::PersonalDataView);
    let mut rows = Vec::new();
    for number in 1.. {
        let page = ListPage::new(Some(number), Some(kaquan_core::store::PAGE_SIZE_MAX));
        let (records, _) = state
            .store
            .list_coupon_verifications(authed.merchant_id(), &filter, page)
            .await?;
        let n = records.len() as i64;
        rows.extend(
            records
                .iter()
                .map(|v| CouponVerificationView::new(state, v, show)),
        );
        if n < page.page_size || rows.len() as i64 >= VERIFICATION_EXPORT_ROWS_MAX {
            break;
        }
    }
    let path = exports::temp_export_path("xlsx");
    let written = path.clone();
    let lang = authed.export_lang;
    crate::off_runtime(move || write_verifications(&rows, &written, lang)).await??;
    let name = format!(
        "核销记录-{}.xlsx",
        format_date(crate::now()).replace('-', "")
    );
    exports::stream_file(&path, &name, exports::XLSX_CONTENT_TYPE).await
}

fn write_verifications(
    rows: &[CouponVerificationView],
    path: &std::path::Path,
    lang: crate::i18n::Lang,
) -> ApiResult<()> {
    let xlsx_err = |e: rust_xlsxwriter::XlsxError| ApiError::Internal(format!("xlsx: {e}"));
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let sheet = workbook.add_worksheet();
    sheet.set_name(lang.text("核销记录")).map_err(xlsx_err)?;
    let money = rust_xlsxwriter::Format::new().set_num_format("0.00");
    for (c, h) in lang.headers(&VERIFICATION_HEADERS).iter().enumerate() {
        sheet.write_string(0, c as u16, h).map_err(xlsx_err)?;
    }
    for (i, v) in rows.iter().enumerate() {
        let row = i as u32 + 1;
        let (channel, kind) = (lang.text(v.channel_label), lang.text(v.kind_label));
        let texts: [(u16, &str); 8] = [
            (0, &v.created_at),
            (1, v.location_name.as_deref().unwrap_or("")),
            (2, &v.verifier),
            (3, &channel),
            (4, &v.program_title),
            (5, &kind),
            (6, &v.code_masked),
            (7, &v.customer),
        ];
        for (c, text) in texts {
            sheet
                .write_string(row, c, exports::escape_formula(text))
                .map_err(xlsx_err)?;
        }
        if let Some(fen) = v.order_amount_fen {
            sheet
                .write_number_with_format(row, 8, fen as f64 / 100.0, &money)
                .map_err(xlsx_err)?;
        }
        sheet
            .write_number_with_format(row, 9, v.discount_fen as f64 / 100.0, &money)
            .map_err(xlsx_err)?;
        for (c, text) in [
            (10, v.order_ref.as_str()),
            (11, v.undone_at.as_deref().unwrap_or("")),
            (12, v.undone_by.as_deref().unwrap_or("")),
        ] {
            sheet
                .write_string(row, c, exports::escape_formula(text))
                .map_err(xlsx_err)?;
        }
    }
    workbook.save(path).map_err(xlsx_err)
}

async fn export_coupon_verifications(
    State(state): State<AppState>,
    authed: Authed,
    Query(query): Query<VerificationQuery>,
) -> ApiResult<Response> {
    export_verifications(&state, &authed, &query).await
}

/// 数据与对账: per day and location, and per verifier.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"days": [{"day": "2026-12-06", "location_id": 1, "location_name": "中山路店", "n_verified": 12, "order_amount_yuan": "1440.00", "discount_yuan": "240.00", "n_undone": 1}], "verifiers": [{"verifier": "desk", "n_verified": 12, "order_amount_yuan": "1440.00", "discount_yuan": "240.00", "n_undone": 1}], "n_verified": 12, "discount_yuan": "240.00", "n_undone": 1}))]
pub struct VerificationStatsDto {
    pub days: Vec<DayStatsDto>,
    pub verifiers: Vec<VerifierStatsDto>,
    pub n_verified: i64,
    pub discount_yuan: String,
    pub n_undone: i64,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct DayStatsDto {
    pub day: String,
    pub location_id: Option<i64>,
    pub location_name: Option<String>,
    /// Verifications that stand (undone ones are counted in `n_undone`).
    pub n_verified: i64,
    pub order_amount_yuan: String,
    pub discount_yuan: String,
    pub n_undone: i64,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct VerifierStatsDto {
    pub verifier: String,
    pub n_verified: i64,
    pub order_amount_yuan: String,
    pub discount_yuan: String,
    pub n_undone: i64,
}

impl VerificationStatsDto {
    fn new(days: &[DailyVerificationStats], verifiers: &[VerifierStats]) -> Self {
        Self {
            n_verified: verifiers.iter().map(|v| v.n_verified).sum(),
            discount_yuan: format_yuan(verifiers.iter().map(|v| v.discount_fen).sum()),
            n_undone: verifiers.iter().map(|v| v.n_undone).sum(),
            days: days
                .iter()
                .map(|d| DayStatsDto {
                    day: d.day.clone(),
                    location_id: d.location_id,
                    location_name: d.location_name.clone(),
                    n_verified: d.n_verified,
                    order_amount_yuan: format_yuan(d.order_amount_fen),
                    discount_yuan: format_yuan(d.discount_fen),
                    n_undone: d.n_undone,
                })
                .collect(),
            verifiers: verifiers
                .iter()
                .map(|v| VerifierStatsDto {
                    verifier: v.verifier.clone(),
                    n_verified: v.n_verified,
                    order_amount_yuan: format_yuan(v.order_amount_fen),
                    discount_yuan: format_yuan(v.discount_fen),
                    n_undone: v.n_undone,
                })
                .collect(),
        }
    }
}

/// 数据与对账 for a filter.
pub async fn stats(
    state: &AppState,
    authed: &Authed,
    query: &VerificationQuery,
) -> ApiResult<VerificationStatsDto> {
    authed.require(Permission::CouponsManage)?;
    let filter = query.filter()?;
    let m = authed.merchant_id();
    let days = state.store.daily_verification_stats(m, &filter).await?;
    let verifiers = state.store.verifier_stats(m, &filter).await?;
    Ok(VerificationStatsDto::new(&days, &verifiers))
}

async fn get_coupon_verification_stats(
    State(state): State<AppState>,
    authed: Authed,
    Query(query): Query<VerificationQuery>,
) -> ApiResult<Json<VerificationStatsDto>> {
    Ok(Json(stats(&state, &authed, &query).await?))
}

/// 数据与对账导出: both tables as one xlsx, a sheet each.
pub async fn export_stats(
    state: &AppState,
    authed: &Authed,
    query: &VerificationQuery,
) -> ApiResult<Response> {
    let stats = stats(state, authed, query).await?;
    let path = exports::temp_export_path("xlsx");
    let written = path.clone();
    let lang = authed.export_lang;
    crate::off_runtime(move || write_stats(&stats, &written, lang)).await??;
    let name = format!(
        "数据与对账-{}.xlsx",
        format_date(crate::now()).replace('-', "")
    );
    exports::stream_file(&path, &name, exports::XLSX_CONTENT_TYPE).await
}

fn write_stats(
    stats: &VerificationStatsDto,
    path: &std::path::Path,
    lang: crate::i18n::Lang,
) -> ApiResult<()> {
    let xlsx_err = |e: rust_xlsxwriter::XlsxError| ApiError::Internal(format!("xlsx: {e}"));
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let money = rust_xlsxwriter::Format::new().set_num_format("0.00");
    let yuan = |text: &str| text.parse::<f64>().unwrap_or_default();
    let days = workbook.add_worksheet();
    days.set_name(lang.text("按日期和门店")).map_err(xlsx_err)?;
    let titles = ["日期", "门店", "核销张数", "订单金额", "优惠金额", "撤销"];
    for (c, h) in lang.headers(&titles).iter().enumerate() {
        days.write_string(0, c as u16, h).map_err(xlsx_err)?;
    }
    for (i, d) in stats.days.iter().enumerate() {
        let row = i as u32 + 1;
        days.write_string(row, 0, &d.day).map_err(xlsx_err)?;
        let location = d
            .location_name
            .clone()
            .unwrap_or_else(|| lang.text("（未指定门店）"));
        days.write_string(row, 1, exports::escape_formula(&location))
            .map_err(xlsx_err)?;
        days.write_number(row, 2, d.n_verified as f64)
            .map_err(xlsx_err)?;
        days.write_number_with_format(row, 3, yuan(&d.order_amount_yuan), &money)
            .map_err(xlsx_err)?;
        days.write_number_with_format(row, 4, yuan(&d.discount_yuan), &money)
            .map_err(xlsx_err)?;
        days.write_number(row, 5, d.n_undone as f64)
            .map_err(xlsx_err)?;
    }
    let verifiers = workbook.add_worksheet();
    verifiers
        .set_name(lang.text("按核销员"))
        .map_err(xlsx_err)?;
    let titles = ["核销员", "核销张数", "订单金额", "优惠金额", "撤销"];
    for (c, h) in lang.headers(&titles).iter().enumerate() {
        verifiers.write_string(0, c as u16, h).map_err(xlsx_err)?;
    }
    for (i, v) in stats.verifiers.iter().enumerate() {
        let row = i as u32 + 1;
        verifiers
            .write_string(row, 0, exports::escape_formula(&v.verifier))
            .map_err(xlsx_err)?;
        verifiers
            .write_number(row, 1, v.n_verified as f64)
            .map_err(xlsx_err)?;
        verifiers
            .write_number_with_format(row, 2, yuan(&v.order_amount_yuan), &money)
            .map_err(xlsx_err)?;
        verifiers
            .write_number_with_format(row, 3, yuan(&v.discount_yuan), &money)
            .map_err(xlsx_err)?;
        verifiers
            .write_number(row, 4, v.n_undone as f64)
            .map_err(xlsx_err)?;
    }
    workbook.save(path).map_err(xlsx_err)
}

async fn export_coupon_verification_stats(
    State(state): State<AppState>,
    authed: Authed,
    Query(query): Query<VerificationQuery>,
) -> ApiResult<Response> {
    export_stats(&state, &authed, &query).await
}
