//! 优惠券 in the staff API: programs (制券, their states, 库存). 投放 (the
//! claim link's QR code, 定向发放) is in `coupon_issues.rs`, 门店 and
//! 核销员 bindings in `locations.rs`, the console pages in
//! `coupon_pages.rs`, verification records in `coupon_records.rs`, the
//! mall's signed API in `coupon_open.rs`, the verifier page in `verify.rs`
//! and the customer's pages in `wallet.rs`.

use crate::auth::Authed;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path, Query};
use crate::lists::ListDto;
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use kaquan_core::auth::Permission;
use kaquan_core::clock::{format_date, format_datetime};
use kaquan_core::coupon::usage::CouponPicture;
use kaquan_core::coupon::usage::ProgramFilter;
use kaquan_core::coupon::usecases::{self, ProgramError};
use kaquan_core::coupon::{
    color_hex, Benefit, CodeType, CouponKind, CouponProgram, CouponProgramFields, ProgramState,
    SharedCoupon, TimeLimit, Validity, ALL_WEEKDAYS,
};
use kaquan_core::store::Page as ListPage;
use serde::{Deserialize, Serialize};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/coupon-programs",
            get(list_coupon_programs).post(create_coupon_program),
        )
        .route(
            "/api/v1/coupon-programs/{program_id}",
            get(get_coupon_program).put(update_coupon_program),
        )
        .route(
            "/api/v1/coupon-programs/{program_id}/state",
            post(update_coupon_program_state),
        )
        .route(
            "/api/v1/coupon-programs/{program_id}/stock",
            post(update_coupon_program_stock),
        )
        .route(
            "/api/v1/coupon-programs/{program_id}/logo",
            post(update_coupon_program_logo),
        )
        .route("/m/coupon-logos/{program_id}", get(serve_coupon_logo))
        .route("/m/coupon-covers/{program_id}", get(serve_coupon_cover))
        .route(
            "/api/v1/coupon-programs/{program_id}/cover",
            post(update_coupon_program_cover),
        )
}

// ---- programs ---------------------------------------------------------------

/// A coupon program as staff write it (制券). The kind's own fields go with
/// its `kind`; the others are left out or null.
#[derive(Deserialize, utoipa::ToSchema, Default)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"kind": "cash", "least_cost_fen": 10000, "reduce_cost_fen": 2000, "title": "满100减20", "brand_name": "果园", "color": "Color010", "notice": "结账时出示", "quantity": 1000, "get_limit": 1, "use_limit": 1, "validity_type": "fixed", "begin_date": "2026-12-01", "end_date": "2026-12-31", "use_all_locations": false, "location_ids": [1, 2], "code_type": "qrcode"}))]
pub struct CouponProgramRequest {
    /// `discount` 折扣券, `cash` 代金券, `gift` 兑换券, `groupon` 团购券, `general_coupon` 优惠券.
    pub kind: String,
    /// 折扣券: percent off, 1–99 (15 is 8.5折).
    pub percent_off: Option<i64>,
    /// 折扣券: 最高优惠 in fen.
    pub cap_fen: Option<i64>,
    /// 代金券: 起用金额 in fen (0: no threshold).
    pub least_cost_fen: Option<i64>,
    /// 代金券: 减免金额 in fen.
    pub reduce_cost_fen: Option<i64>,
    /// 兑换券: the 提货商品 it exchanges for.
    pub goods_id: Option<i64>,
    /// 兑换券: 兑换内容 in text.
    pub gift: Option<String>,
    /// 团购券: 团购详情.
    pub deal_detail: Option<String>,
    /// 团购券: 团购价 in fen.
    pub price_fen: Option<i64>,
    /// 优惠券: 优惠详情.
    pub default_detail: Option<String>,
    /// 券名称, at most 9 characters.
    #[schema(min_length = 1, max_length = 9)]
    pub title: String,
    pub sub_title: Option<String>,
    /// 商户名称, at most 12 characters.
    pub brand_name: Option<String>,
    pub logo_url: Option<String>,
    /// `Color010` … `Color102`.
    pub color: Option<String>,
    /// 使用提醒, at most 16 characters.
    pub notice: Option<String>,
    /// 使用说明, at most 1024 characters.
    pub description: Option<String>,
    pub service_phone: Option<String>,
    /// 库存 (create only; change it later through `/stock`).
    pub quantity: Option<i64>,
    /// 每人可领 (default 1).
    pub get_limit: Option<i64>,
    /// 每人可用 (default 1).
    pub use_limit: Option<i64>,
    /// `fixed` (begin_date–end_date) or `relative` (term_days from the
    /// claim, starting begin_after_days later, never after hard_end_date).
    pub validity_type: String,
    /// `YYYY-MM-DD`.
    pub begin_date: Option<String>,
    pub end_date: Option<String>,
    pub term_days: Option<i64>,
    pub begin_after_days: Option<i64>,
    pub hard_end_date: Option<String>,
    /// Usable weekdays, 1 (Monday) – 7 (Sunday); empty or absent: every day.
    pub weekdays: Option<Vec<u8>>,
    /// Usable from `HH:MM` to `HH:MM` (both or neither).
    pub time_begin: Option<String>,
    pub time_end: Option<String>,
    /// 全部门店可用; otherwise `location_ids`.
    #[serde(default)]
    pub use_all_locations: bool,
    #[serde(default)]
    pub location_ids: Vec<i64>,
    /// `qrcode`, `barcode`, `text`, `only_qrcode`, `only_barcode` (default `qrcode`).
    pub code_type: Option<String>,
    /// 动态码: the wallet shows a code that changes every 30 seconds.
    #[serde(default)]
    pub rotating_code: bool,
    /// 可转赠 (default true).
    pub can_give_friend: Option<bool>,
    /// 可与其他优惠同享.
    #[serde(default)]
    pub can_use_with_other_discount: bool,
    /// 朋友的券: shared with friends, offline only, claimed by link or QR
    /// code; its stock is bought with 券点 (create it with `quantity` 0).
    pub shared: Option<SharedCouponDto>,
    /// 核销后返券: a program (this one or another) to give the customer one
    /// coupon of when theirs is verified.
    pub give_program_id: Option<i64>,
}

/// What a 朋友的券 shows besides an ordinary coupon; all three are required.
#[derive(Serialize, Deserialize, Clone, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SharedCouponDto {
    /// 封面: a picture uploaded through `/api/v1/images`-style uploads (`/images/…`).
    pub cover_url: String,
    /// 简介, at most 24 characters.
    #[schema(max_length = 24)]
    pub abstract_text: String,
    /// 图文详情, at most 2000 characters.
    #[schema(max_length = 2000)]
    pub detail_text: String,
}

impl SharedCouponDto {
    fn of(shared: &SharedCoupon) -> Self {
        Self {
            cover_url: shared.cover_url.clone(),
            abstract_text: shared.abstract_text.clone(),
            detail_text: shared.detail_text.clone(),
        }
    }
}

fn text(value: &Option<String>) -> String {
    value.as_deref().unwrap_or_default().trim().to_owned()
}

/// `HH:MM` as minutes of the day (`24:00` is the end of the day).
pub fn parse_minutes(text: &str) -> Option<i64> {
    let (h, m) = text.trim().split_once(':')?;
    let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
    ((0..=23).contains(&h) && (0..=59).contains(&m) || (h, m) == (24, 0)).then_some(h * 60 + m)
}

impl CouponProgramRequest {
    fn benefit(&self) -> ApiResult<Benefit> {
        let kind = CouponKind::parse(&self.kind).ok_or_else(|| {
            ApiError::invalid("kind 应为 discount、cash、gift、groupon 或 general_coupon")
        })?;
        let need = |value: Option<i64>, what: &str| {
            value.ok_or_else(|| ApiError::invalid(format!("{}须填写{what}", kind.label_zh())))
        };
        Ok(match kind {
            CouponKind::Discount => Benefit::Discount {
                percent_off: need(self.percent_off, "折扣")?,
                cap_fen: self.cap_fen,
            },
            CouponKind::Cash => Benefit::Cash {
                least_cost_fen: self.least_cost_fen.unwrap_or(0),
                reduce_cost_fen: need(self.reduce_cost_fen, "减免金额")?,
            },
            CouponKind::Gift => Benefit::Gift {
                goods_id: self.goods_id,
                gift: text(&self.gift),
            },
            CouponKind::Groupon => Benefit::Groupon {
                deal_detail: text(&self.deal_detail),
                price_fen: need(self.price_fen, "团购价")?,
            },
            CouponKind::General => Benefit::General {
                default_detail: text(&self.default_detail),
            },
        })
    }

    fn validity(&self) -> ApiResult<Validity> {
        let date = |value: &Option<String>, what: &str, end: bool| {
            crate::lists::parse_optional_date(value.as_deref(), what, end)
        };
        match self.validity_type.as_str() {
            "fixed" => {
                let begin = date(&self.begin_date, "有效期开始", false)?;
                let end = date(&self.end_date, "有效期结束", true)?;
                match (begin, end) {
                    (Some(begin), Some(end)) => Ok(Validity::Fixed { begin, end }),
                    _ => Err(ApiError::invalid("固定日期须填写开始和结束日期")),
                }
            }
            "relative" => Ok(Validity::Relative {
                term_days: self
                    .term_days
                    .ok_or_else(|| ApiError::invalid("请填写领取后有效天数"))?,
                begin_after_days: self.begin_after_days.unwrap_or(0),
                hard_end: date(&self.hard_end_date, "最晚有效日期", true)?,
            }),
            _ => Err(ApiError::invalid("validity_type 应为 fixed 或 relative")),
        }
    }

    fn time_limit(&self) -> ApiResult<TimeLimit> {
        let weekdays = match self.weekdays.as_deref() {
            None | Some([]) => ALL_WEEKDAYS,
            Some(days) => days.iter().try_fold(0u8, |mask, day| match day {
                1..=7 => Ok(mask | 1 << (day - 1)),
                _ => Err(ApiError::invalid("weekdays 应为 1（周一）到 7（周日）")),
            })?,
        };
        let minutes = |value: &Option<String>| match value.as_deref().map(str::trim) {
            None | Some("") => Ok(None),
            Some(t) => parse_minutes(t)
                .map(Some)
                .ok_or_else(|| ApiError::invalid("可用时段应为 HH:MM")),
        };
        let day_minutes = match (minutes(&self.time_begin)?, minutes(&self.time_end)?) {
            (None, None) => None,
            (Some(begin), Some(end)) => Some((begin, end)),
            _ => return Err(ApiError::invalid("可用时段须同时填写开始和结束")),
        };
        Ok(TimeLimit {
            weekdays,
            day_minutes,
        })
    }

    /// The fields, or every problem in Chinese at once.
    pub fn fields(&self) -> ApiResult<CouponProgramFields> {
        let code_type = match self.code_type.as_deref() {
            None | Some("") => CodeType::Qrcode,
            Some(code) => CodeType::parse(code).ok_or_else(|| {
                ApiError::invalid(
                    "code_type 应为 qrcode、barcode、text、only_qrcode 或 only_barcode",
                )
            })?,
        };
        let mut location_ids = self.location_ids.clone();
        location_ids.sort_unstable();
        location_ids.dedup();
        let fields = CouponProgramFields {
            benefit: self.benefit()?,
            title: self.title.trim().to_owned(),
            sub_title: text(&self.sub_title),
            brand_name: text(&self.brand_name),
            logo_url: text(&self.logo_url),
            color: self
                .color
                .clone()
                .filter(|c| !c.is_empty())
                .unwrap_or_else(|| "Color010".into()),
            notice: text(&self.notice),
            description: self.description.clone().unwrap_or_default(),
            service_phone: text(&self.service_phone),
            get_limit: self.get_limit.unwrap_or(1),
            use_limit: self.use_limit.unwrap_or(1),
            validity: self.validity()?,
            time_limit: self.time_limit()?,
            use_all_locations: self.use_all_locations,
            location_ids: if self.use_all_locations {
                Vec::new()
            } else {
                location_ids
            },
            code_type,
            rotating_code: self.rotating_code,
            can_give_friend: self.can_give_friend.unwrap_or(true),
            can_use_with_other_discount: self.can_use_with_other_discount,
            shared: self.shared.as_ref().map(|s| SharedCoupon {
                cover_url: s.cover_url.trim().to_owned(),
                abstract_text: s.abstract_text.trim().to_owned(),
                detail_text: s.detail_text.clone(),
            }),
            give_program_id: self.give_program_id,
        };
        fields.check().map_err(invalid_all)?;
        Ok(fields)
    }
}

pub fn invalid_all(errors: Vec<String>) -> ApiError {
    ApiError::Invalid(errors.join("；"), errors)
}

fn program_error(error: ProgramError) -> ApiError {
    match error {
        ProgramError::Invalid(errors) => invalid_all(errors),
        ProgramError::Store(e) => e.into(),
    }
}

/// A coupon program as the staff API and the console show it.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": 3, "kind": "cash", "kind_label": "代金券", "benefit": "满100.00元减20.00元", "percent_off": null, "cap_fen": null, "least_cost_fen": 10000, "reduce_cost_fen": 2000, "goods_id": null, "detail": "", "price_fen": null, "title": "满100减20", "sub_title": "", "brand_name": "果园", "logo_url": "", "color": "Color010", "color_hex": "#63b359", "notice": "结账时出示", "description": "", "service_phone": "", "get_limit": 1, "use_limit": 1, "validity_type": "fixed", "begin_date": "2026-12-01", "end_date": "2026-12-31", "term_days": null, "begin_after_days": null, "hard_end_date": null, "validity_text": "2026-12-01 至 2026-12-31", "weekdays": [1, 2, 3, 4, 5, 6, 7], "time_begin": null, "time_end": null, "time_limit_text": "不限", "use_all_locations": false, "location_ids": [1, 2], "code_type": "qrcode", "code_type_label": "二维码（显示券码）", "rotating_code": false, "can_give_friend": true, "can_use_with_other_discount": false, "shared": null, "unit_price_tenths": null, "give_program_id": null, "state": "active", "state_label": "投放中", "quantity": 1000, "n_claimed": 120, "stock_left": 880, "n_verified": 45, "n_expired": 0, "claim_url": "https://shop.example.com/m/1/coupons/3f9a…", "version": 2, "created_by": "owner", "created_at": "2026-11-30 10:00:00"}))]
pub struct CouponProgramDto {
    pub id: i64,
    pub kind: &'static str,
    pub kind_label: &'static str,
    /// The benefit in one line (`8.5折`, `满100.00元减20.00元`).
    pub benefit: String,
    pub percent_off: Option<i64>,
    pub cap_fen: Option<i64>,
    pub least_cost_fen: Option<i64>,
    pub reduce_cost_fen: Option<i64>,
    pub goods_id: Option<i64>,
    /// 兑换内容, 团购详情 or 优惠详情.
    pub detail: String,
    pub price_fen: Option<i64>,
    pub title: String,
    pub sub_title: String,
    pub brand_name: String,
    pub logo_url: String,
    pub color: String,
    pub color_hex: &'static str,
    pub notice: String,
    pub description: String,
    pub service_phone: String,
    pub get_limit: i64,
    pub use_limit: i64,
    pub validity_type: &'static str,
    pub begin_date: Option<String>,
    pub end_date: Option<String>,
    pub term_days: Option<i64>,
    pub begin_after_days: Option<i64>,
    pub hard_end_date: Option<String>,
    pub validity_text: String,
    pub weekdays: Vec<u8>,
    pub time_begin: Option<String>,
    pub time_end: Option<String>,
    pub time_limit_text: String,
    pub use_all_locations: bool,
    pub location_ids: Vec<i64>,
    pub code_type: &'static str,
    pub code_type_label: &'static str,
    pub rotating_code: bool,
    pub can_give_friend: bool,
    pub can_use_with_other_discount: bool,
    /// 朋友的券's cover, 简介 and 图文详情; `null` for an ordinary program.
    pub shared: Option<SharedCouponDto>,
    /// A 朋友的券's price of one unit of stock, in tenths of a 券点 (2 or 4).
    pub unit_price_tenths: Option<i64>,
    /// 核销后返券: the program a verified coupon gives one of.
    pub give_program_id: Option<i64>,
    /// `draft`, `active`, `paused` or `ended`.
    pub state: &'static str,
    pub state_label: &'static str,
    /// 库存 in all, claimed, left.
    pub quantity: i64,
    pub n_claimed: i64,
    pub stock_left: i64,
    pub n_verified: i64,
    pub n_expired: i64,
    /// The claim link (领取链接) at the shop's public address.
    pub claim_url: String,
    /// Send it back with an edit: an edit of an older version is refused.
    pub version: i64,
    pub created_by: String,
    pub created_at: String,
}

/// `HH:MM`.
pub fn format_minutes(minutes: i64) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

/// The claim link's path (the public address goes before it).
pub fn claim_path(merchant_id: i64, token: &str) -> String {
    format!("/m/{merchant_id}/coupons/{token}")
}

impl CouponProgramDto {
    pub fn new(p: &CouponProgram, public_url: &str) -> Self {
        let f = &p.fields;
        let b = f.benefit.to_columns();
        let (validity_type, begin, end, term_days, begin_after_days, hard_end) =
            f.validity.to_columns();
        Self {
            id: p.id,
            kind: f.benefit.kind().code(),
            kind_label: f.benefit.kind().label_zh(),
            benefit: f.benefit.summary_zh(),
            percent_off: b.percent_off,
            cap_fen: b.cap_fen,
            least_cost_fen: b.least_cost_fen,
            reduce_cost_fen: b.reduce_cost_fen,
            goods_id: b.goods_id,
            detail: b.detail,
            price_fen: b.price_fen,
            title: f.title.clone(),
            sub_title: f.sub_title.clone(),
            brand_name: f.brand_name.clone(),
            logo_url: f.logo_url.clone(),
            color: f.color.clone(),
            color_hex: color_hex(&f.color),
            notice: f.notice.clone(),
            description: f.description.clone(),
            service_phone: f.service_phone.clone(),
            get_limit: f.get_limit,
            use_limit: f.use_limit,
            validity_type,
            begin_date: begin.map(format_date),
            end_date: end.map(format_date),
            term_days,
            begin_after_days,
            hard_end_date: hard_end.map(format_date),
            validity_text: f.validity.text_zh(),
            weekdays: (1..=7u8)
                .filter(|d| f.time_limit.weekdays & (1 << (d - 1)) != 0)
                .collect(),
            time_begin: f.time_limit.day_minutes.map(|m| format_minutes(m.0)),
            time_end: f.time_limit.day_minutes.map(|m| format_minutes(m.1)),
            time_limit_text: f.time_limit.text_zh(),
            use_all_locations: f.use_all_locations,
            location_ids: f.location_ids.clone(),
            code_type: f.code_type.code(),
            code_type_label: f.code_type.label_zh(),
            rotating_code: f.rotating_code,
            can_give_friend: f.can_give_friend,
            can_use_with_other_discount: f.can_use_with_other_discount,
            shared: f.shared.as_ref().map(SharedCouponDto::of),
            unit_price_tenths: f
                .shared
                .is_some()
                .then(|| kaquan_core::credit::unit_price_tenths(f)),
            give_program_id: f.give_program_id,
            state: p.state.code(),
            state_label: p.state.label_zh(),
            quantity: p.quantity,
            n_claimed: p.n_claimed,
            stock_left: p.stock_left(),
            n_verified: p.n_verified,
            n_expired: p.n_expired,
            claim_url: format!("{public_url}{}", claim_path(p.merchant_id, &p.claim_token)),
            version: p.version,
            created_by: p.created_by.clone(),
            created_at: format_datetime(p.created_at),
        }
    }
}

/// The filter of the program list.
#[derive(Deserialize, utoipa::IntoParams, Default)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ProgramQuery {
    pub page: Option<i64>,
    pub page_size: Option<i64>,
    /// `draft`, `active`, `paused` or `ended`.
    pub state: Option<String>,
    pub kind: Option<String>,
    /// Part of the title.
    pub title: Option<String>,
    /// A notice the console's own redirects carry; programs leave it out.
    #[param(max_length = 200)]
    pub msg: Option<String>,
}

impl ProgramQuery {
    pub fn filter(&self) -> ApiResult<ProgramFilter> {
        let state =
            match self.state.as_deref().filter(|s| !s.is_empty()) {
                None => None,
                Some(code) => Some(ProgramState::parse(code).ok_or_else(|| {
                    ApiError::invalid("state 应为 draft、active、paused 或 ended")
                })?),
            };
        let kind = match self.kind.as_deref().filter(|s| !s.is_empty()) {
            None => None,
            Some(code) => Some(CouponKind::parse(code).ok_or_else(|| {
                ApiError::invalid("kind 应为 discount、cash、gift、groupon 或 general_coupon")
            })?),
        };
        Ok(ProgramFilter {
            state,
            kind,
            title: self.title.clone().map(|t| t.trim().to_owned()),
        })
    }
}

/// One page of programs for a staff member who may manage them.
pub async fn program_page(
    state: &AppState,
    authed: &Authed,
    query: &ProgramQuery,
) -> ApiResult<ListDto<CouponProgramDto>> {
    authed.require(Permission::CouponsManage)?;
    let page = ListPage::new(query.page, query.page_size);
    let (programs, total) = state
        .store
        .list_coupon_programs(authed.merchant_id(), &query.filter()?, page)
        .await?;
    let public_url = state.public_url_for(authed.merchant_id()).await?;
    Ok(ListDto::new(
        programs
            .iter()
            .map(|p| CouponProgramDto::new(p, &public_url))
            .collect(),
        total,
        page,
    ))
}

async fn list_coupon_programs(
    State(state): State<AppState>,
    authed: Authed,
    Query(query): Query<ProgramQuery>,
) -> ApiResult<Json<ListDto<CouponProgramDto>>> {
    Ok(Json(program_page(&state, &authed, &query).await?))
}

/// 制券 as a draft; the quantity is its 库存.
pub async fn create_program(
    state: &AppState,
    authed: &Authed,
    request: &CouponProgramRequest,
) -> ApiResult<CouponProgram> {
    authed.require(Permission::CouponsManage)?;
    let fields = request.fields()?;
    check_references(state, authed.merchant_id(), &fields).await?;
    let quantity = request
        .quantity
        .ok_or_else(|| ApiError::invalid("请填写库存"))?;
    usecases::create_coupon_program(
        state.store.as_ref(),
        authed.merchant_id(),
        &fields,
        quantity,
        &authed.actor(),
        crate::now(),
    )
    .await
    .map_err(program_error)
}

/// The locations and goods item the fields name are the merchant's own.
async fn check_references(
    state: &AppState,
    merchant_id: i64,
    fields: &CouponProgramFields,
) -> ApiResult<()> {
    if !fields.location_ids.is_empty() {
        let mine: Vec<i64> = state
            .store
            .list_locations(merchant_id)
            .await?
            .iter()
            .map(|l| l.id)
            .collect();
        if let Some(id) = fields.location_ids.iter().find(|id| !mine.contains(id)) {
            return Err(ApiError::invalid(format!("门店 {id} 不存在")));
        }
    }
    if let Benefit::Gift {
        goods_id: Some(id), ..
    } = &fields.benefit
    {
        state
            .store
            .get_goods(merchant_id, *id)
            .await
            .map_err(|_| ApiError::invalid(format!("提货商品 {id} 不存在")))?;
    }
    Ok(())
}

async fn create_coupon_program(
    State(state): State<AppState>,
    authed: Authed,
    Json(request): Json<CouponProgramRequest>,
) -> ApiResult<(StatusCode, Json<CouponProgramDto>)> {
    let program = create_program(&state, &authed, &request).await?;
    let public_url = state.public_url_for(authed.merchant_id()).await?;
    Ok((
        StatusCode::CREATED,
        Json(CouponProgramDto::new(&program, &public_url)),
    ))
}

async fn get_coupon_program(
    State(state): State<AppState>,
    authed: Authed,
    Path(program_id): Path<i64>,
) -> ApiResult<Json<CouponProgramDto>> {
    authed.require(Permission::CouponsManage)?;
    let program = state
        .store
        .get_coupon_program(authed.merchant_id(), program_id)
        .await?;
    let public_url = state.public_url_for(authed.merchant_id()).await?;
    Ok(Json(CouponProgramDto::new(&program, &public_url)))
}

/// An edit names the version it was made on.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"version": 2, "program": {"kind": "cash", "least_cost_fen": 10000, "reduce_cost_fen": 2000, "title": "满100减20", "validity_type": "fixed", "begin_date": "2026-12-01", "end_date": "2027-01-31", "use_all_locations": true}}))]
pub struct CouponProgramUpdate {
    pub version: i64,
    pub program: CouponProgramRequest,
}

/// Saves an edit: anything while a draft; once 投放, the benefit stays and
/// the validity only widens.
pub async fn edit_program(
    state: &AppState,
    authed: &Authed,
    program_id: i64,
    update: &CouponProgramUpdate,
) -> ApiResult<CouponProgram> {
    authed.require(Permission::CouponsManage)?;
    let fields = update.program.fields()?;
    check_references(state, authed.merchant_id(), &fields).await?;
    usecases::edit_coupon_program(
        state.store.as_ref(),
        authed.merchant_id(),
        program_id,
        update.version,
        &fields,
        &authed.actor(),
        crate::now(),
    )
    .await
    .map_err(program_error)
}

async fn update_coupon_program(
    State(state): State<AppState>,
    authed: Authed,
    Path(program_id): Path<i64>,
    Json(update): Json<CouponProgramUpdate>,
) -> ApiResult<Json<CouponProgramDto>> {
    let program = edit_program(&state, &authed, program_id, &update).await?;
    let public_url = state.public_url_for(authed.merchant_id()).await?;
    Ok(Json(CouponProgramDto::new(&program, &public_url)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"state": "active"}))]
pub struct ProgramStateRequest {
    /// `active` (开始投放, or resume), `paused` (暂停) or `ended` (结束).
    pub state: String,
}

/// Moves a program to another state, as its state machine allows.
pub async fn move_program(
    state: &AppState,
    authed: &Authed,
    program_id: i64,
    to: &str,
) -> ApiResult<CouponProgram> {
    authed.require(Permission::CouponsManage)?;
    let to = ProgramState::parse(to)
        .filter(|s| *s != ProgramState::Draft)
        .ok_or_else(|| ApiError::invalid("state 应为 active、paused 或 ended"))?;
    let m = authed.merchant_id();
    let moved = usecases::set_program_state(
        state.store.as_ref(),
        m,
        program_id,
        to,
        &authed.actor(),
        crate::now(),
    )
    .await
    .map_err(program_error)?;
    let program = state.store.get_coupon_program(m, program_id).await?;
    if !moved && program.state != to {
        return Err(ApiError::Conflict(format!(
            "「{}」现在是{}，不能{}",
            program.fields.title,
            program.state.label_zh(),
            ProgramState::verb_zh(to)
        )));
    }
    Ok(program)
}

async fn update_coupon_program_state(
    State(state): State<AppState>,
    authed: Authed,
    Path(program_id): Path<i64>,
    Json(request): Json<ProgramStateRequest>,
) -> ApiResult<Json<CouponProgramDto>> {
    let program = move_program(&state, &authed, program_id, &request.state).await?;
    let public_url = state.public_url_for(authed.merchant_id()).await?;
    Ok(Json(CouponProgramDto::new(&program, &public_url)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"delta": 500}))]
pub struct StockRequest {
    /// Coupons to add to the stock (negative: to take away; never below what was claimed).
    pub delta: i64,
}

/// Adds or removes stock (库存).
pub async fn change_program_stock(
    state: &AppState,
    authed: &Authed,
    program_id: i64,
    delta: i64,
) -> ApiResult<CouponProgram> {
    authed.require(Permission::CouponsManage)?;
    let m = authed.merchant_id();
    let program = state.store.get_coupon_program(m, program_id).await?;
    let changed = usecases::change_stock(
        state.store.as_ref(),
        m,
        program_id,
        delta,
        &authed.actor(),
        crate::now(),
    )
    .await
    .map_err(program_error)?;
    if !changed {
        return Err(ApiError::invalid(format!(
            "库存调整后须在 {}（已领取）到 {} 之间，且调整数量不为 0",
            program.n_claimed,
            kaquan_core::coupon::STOCK_MAX
        )));
    }
    Ok(state.store.get_coupon_program(m, program_id).await?)
}

async fn update_coupon_program_stock(
    State(state): State<AppState>,
    authed: Authed,
    Path(program_id): Path<i64>,
    Json(request): Json<StockRequest>,
) -> ApiResult<Json<CouponProgramDto>> {
    let program = change_program_stock(&state, &authed, program_id, request.delta).await?;
    let public_url = state.public_url_for(authed.merchant_id()).await?;
    Ok(Json(CouponProgramDto::new(&program, &public_url)))
}

/// Keeps an uploaded logo for the program (checked to be an image) and
/// points its `logo_url` at where the customer's pages fetch it.
/// Keeps an uploaded logo or 朋友的券 cover and points the program at it.
pub async fn upload_program_picture(
    state: &AppState,
    authed: &Authed,
    program_id: i64,
    bytes: Vec<u8>,
    picture: CouponPicture,
) -> ApiResult<CouponProgram> {
    authed.require(Permission::CouponsManage)?;
    let content_type = crate::images::checked_image(&bytes)?;
    let m = authed.merchant_id();
    let (path, action) = match picture {
        CouponPicture::Logo => ("coupon-logos", "upload_coupon_logo"),
        CouponPicture::Cover => ("coupon-covers", "upload_coupon_cover"),
    };
    let logo = kaquan_core::coupon::usage::CouponLogo {
        picture,
        merchant_id: m,
        program_id,
        content_type,
        bytes,
        // A new address each upload, so no cache keeps the old picture.
        url: format!(
            "/m/{path}/{program_id}?v={}",
            kaquan_core::secrets::random_token_hex(4)
        ),
        now: crate::now(),
    };
    let audit = authed.audit(
        action,
        format!("program={program_id}"),
        content_type.to_owned(),
    );
    state.store.put_coupon_logo(&logo, &audit).await?;
    Ok(state.store.get_coupon_program(m, program_id).await?)
}

/// The program's logo (multipart field `file`; PNG/JPEG/WebP/GIF, at most 2 MB).
async fn update_coupon_program_logo(
    State(state): State<AppState>,
    authed: Authed,
    Path(program_id): Path<i64>,
    multipart: crate::extract::Multipart,
) -> ApiResult<Json<CouponProgramDto>> {
    let picture = CouponPicture::Logo;
    upload_answer(&state, &authed, program_id, multipart, picture).await
}

/// Keeps an uploaded picture and answers with the program.
async fn upload_answer(
    state: &AppState,
    authed: &Authed,
    program_id: i64,
    multipart: crate::extract::Multipart,
    picture: CouponPicture,
) -> ApiResult<Json<CouponProgramDto>> {
    let (bytes, _) = crate::images::read_image_upload(multipart).await?;
    let program = upload_program_picture(state, authed, program_id, bytes, picture).await?;
    let public_url = state.public_url_for(authed.merchant_id()).await?;
    Ok(Json(CouponProgramDto::new(&program, &public_url)))
}

/// An uploaded logo, for the claim page and the wallet (public).
async fn serve_coupon_logo(
    State(state): State<AppState>,
    Path(program_id): Path<i64>,
) -> ApiResult<axum::response::Response> {
    serve_picture(&state, program_id, CouponPicture::Logo).await
}

/// A 朋友的券's uploaded cover, for the claim and share pages (public).
async fn serve_coupon_cover(
    State(state): State<AppState>,
    Path(program_id): Path<i64>,
) -> ApiResult<axum::response::Response> {
    serve_picture(&state, program_id, CouponPicture::Cover).await
}

async fn serve_picture(
    state: &AppState,
    program_id: i64,
    picture: CouponPicture,
) -> ApiResult<axum::response::Response> {
    let (content_type, bytes) = state
        .store
        .get_coupon_logo(program_id, picture)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(crate::images::image_response(content_type, bytes))
}

/// A 朋友的券's cover (multipart field `file`; PNG/JPEG/WebP/GIF, at most 2 MB).
async fn update_coupon_program_cover(
    State(state): State<AppState>,
    authed: Authed,
    Path(program_id): Path<i64>,
    multipart: crate::extract::Multipart,
) -> ApiResult<Json<CouponProgramDto>> {
    let picture = CouponPicture::Cover;
    upload_answer(&state, &authed, program_id, multipart, picture).await
}

/// How long the expiry sweep rests when nothing more has expired.
const EXPIRY_SWEEP_IDLE: std::time::Duration = std::time::Duration::from_secs(60);

/// The sweep beside every server that records `coupon.expired` once for
/// each coupon that passes its validity unused, and gives back the 券点 of
/// closed 朋友的券 programs' unused stock (nodes share the work).
pub fn spawn_expiry_sweep(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let max = kaquan_core::coupon::usage::EXPIRY_SWEEP_MAX;
            let announced = match state
                .store
                .announce_expired_coupons(crate::now(), max)
                .await
            {
                Ok(n) => n,
                Err(error) => {
                    tracing::warn!(%error, "announcing expired coupons failed; will retry");
                    0
                }
            };
            let returned = match state.store.return_expired_stock(crate::now(), max).await {
                Ok(n) => n,
                Err(error) => {
                    tracing::warn!(%error, "returning expired stock's credits failed; will retry");
                    0
                }
            };
            let (reminded, expired) = match state.store.sweep_ecard_expiry(crate::now(), max).await
            {
                Ok(swept) => swept,
                Err(error) => {
                    tracing::warn!(%error, "sweeping e-cards' reminders and expiry failed; will retry");
                    (0, 0)
                }
            };
            if announced < max && returned < max && reminded < max && expired < max {
                tokio::time::sleep(EXPIRY_SWEEP_IDLE).await;
            }
        }
    })
}
