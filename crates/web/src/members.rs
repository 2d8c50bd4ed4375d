//! 会员卡 in the staff API: programs (制卡, edit, 启用/停用), members (the
//! list with its filters, a member with their points and balance
//! statements and operations, 积分调整, the xlsx export). The console
//! pages are `member_pages.rs`, the customer's pages `member_card.rs`, the
//! mall's signed contract `member_open.rs`.

use crate::auth::Authed;
use crate::customers::TransactionView;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path, Query};
use crate::lists::{parse_optional_date, ListDto};
use crate::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use kaquan_core::auth::Permission;
use kaquan_core::clock::{format_date, format_datetime};
use kaquan_core::ledger::{ApiCall, IdempotencyClaim, IdempotencyKey};
use kaquan_core::member::operation::{
    AdjustPoints, MemberAction, MemberOp, MemberOperation, OperationKind,
};
use kaquan_core::member::{
    ActivationField, CustomField, CustomLink, FieldKind, Member, MemberFilter, MemberProgram,
    PointsExpiry, PointsRule, ProgramFields, ProgramState, Tier, TierBasis, POINTS_MAX,
};
use kaquan_core::store::Page as ListPage;
use serde::{Deserialize, Serialize};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/member-programs",
            get(list_member_programs).post(create_member_program),
        )
        .route(
            "/api/v1/member-programs/{program_id}",
            get(get_member_program).put(update_member_program),
        )
        .route(
            "/api/v1/member-programs/{program_id}/state",
            post(update_member_program_state),
        )
        .route("/api/v1/members", get(list_members))
        .route("/api/v1/members/export", get(export_members))
        .route("/api/v1/members/{member_id}", get(get_member))
        .route(
            "/api/v1/members/{member_id}/points-statement",
            get(list_member_points_statement),
        )
        .route(
            "/api/v1/members/{member_id}/operations",
            get(list_member_operations),
        )
        .route(
            "/api/v1/members/{member_id}/points-adjustments",
            post(create_points_adjustment),
        )
}

// ---- programs ---------------------------------------------------------------

#[derive(Deserialize, Serialize, utoipa::ToSchema, Clone, Copy)]
#[serde(deny_unknown_fields)]
pub struct PointsRuleDto {
    /// Every this many fen paid …
    pub cost_money_unit: i64,
    /// … earn this many points.
    pub increase_bonus: i64,
    /// Most points one payment earns (0: no cap).
    #[serde(default)]
    pub max_increase_bonus: i64,
    /// Points given on 开卡.
    #[serde(default)]
    pub init_increase_bonus: i64,
    /// Every this many points used …
    pub cost_bonus_unit: i64,
    /// … take this many fen off.
    pub reduce_money: i64,
    /// Smallest order (fen, after the member discount) points may pay part of.
    #[serde(default)]
    pub least_money_to_use_bonus: i64,
    /// Most points one order may use (0: no limit).
    #[serde(default)]
    pub max_reduce_bonus: i64,
}

impl From<PointsRuleDto> for PointsRule {
    fn from(r: PointsRuleDto) -> Self {
        Self {
            cost_money_unit: r.cost_money_unit,
            increase_bonus: r.increase_bonus,
            max_increase_bonus: r.max_increase_bonus,
            init_increase_bonus: r.init_increase_bonus,
            cost_bonus_unit: r.cost_bonus_unit,
            reduce_money: r.reduce_money,
            least_money_to_use_bonus: r.least_money_to_use_bonus,
            max_reduce_bonus: r.max_reduce_bonus,
        }
    }
}

impl From<PointsRule> for PointsRuleDto {
    fn from(r: PointsRule) -> Self {
        Self {
            cost_money_unit: r.cost_money_unit,
            increase_bonus: r.increase_bonus,
            max_increase_bonus: r.max_increase_bonus,
            init_increase_bonus: r.init_increase_bonus,
            cost_bonus_unit: r.cost_bonus_unit,
            reduce_money: r.reduce_money,
            least_money_to_use_bonus: r.least_money_to_use_bonus,
            max_reduce_bonus: r.max_reduce_bonus,
        }
    }
}

#[derive(Deserialize, Serialize, utoipa::ToSchema, Clone)]
#[serde(deny_unknown_fields)]
pub struct TierDto {
    pub name: String,
    /// Points earned, or fen paid when `tier_basis` is `spend`.
    pub threshold: i64,
    /// Percent off (10 = 9折); 0 keeps the card's discount.
    #[serde(default)]
    pub discount_percent_off: i64,
}

#[derive(Deserialize, Serialize, utoipa::ToSchema, Clone)]
#[serde(deny_unknown_fields)]
pub struct CustomFieldDto {
    pub name: String,
    /// `tier`, `coupons`, `discount` or `spend`.
    pub kind: String,
}

#[derive(Deserialize, Serialize, utoipa::ToSchema, Clone)]
#[serde(deny_unknown_fields)]
pub struct CustomLinkDto {
    pub name: String,
    pub url: String,
}

/// A 会员卡 program as staff write it.
#[derive(Deserialize, utoipa::ToSchema, Clone)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"title": "果园会员卡", "brand_name": "果园", "color": "#63b359", "prerogative": "会员享 9.5 折", "discount_percent_off": 5, "points_rule": {"cost_money_unit": 100, "increase_bonus": 1, "init_increase_bonus": 20, "cost_bonus_unit": 100, "reduce_money": 100}, "stored_value": true, "tier_basis": "points", "tiers": [{"name": "金卡", "threshold": 1000, "discount_percent_off": 10}], "custom_fields": [{"name": "等级", "kind": "tier"}], "custom_links": [{"name": "商城", "url": "https://shop.example.com"}], "activation_fields": ["name", "birthday"], "number_prefix": "VIP", "number_length": 8, "expiry": "year_end"}))]
pub struct MemberProgramRequest {
    pub title: String,
    #[serde(default)]
    pub brand_name: String,
    /// `#RRGGBB`.
    pub color: Option<String>,
    /// 特权说明.
    #[serde(default)]
    pub prerogative: String,
    /// The member discount in percent off (5 = 9.5折).
    #[serde(default)]
    pub discount_percent_off: i64,
    /// Points on with this rule; absent or null: points off.
    pub points_rule: Option<PointsRuleDto>,
    /// 储值 on (default) or off.
    pub stored_value: Option<bool>,
    /// `points` (earned in total, default) or `spend` (paid in total).
    pub tier_basis: Option<String>,
    #[serde(default)]
    pub tiers: Vec<TierDto>,
    #[serde(default)]
    pub custom_fields: Vec<CustomFieldDto>,
    #[serde(default)]
    pub custom_links: Vec<CustomLinkDto>,
    /// What the 开卡 form asks besides the phone: `name`, `birthday`, `gender`.
    #[serde(default)]
    pub activation_fields: Vec<String>,
    /// Customers the mall signs in get the card without the form.
    #[serde(default)]
    pub auto_activate: bool,
    #[serde(default)]
    pub number_prefix: String,
    /// Digits after the prefix (6–16, default 10).
    pub number_length: Option<i64>,
    /// `never` (default), `year_end` or `rolling` (with `expiry_months`).
    pub expiry: Option<String>,
    pub expiry_months: Option<i64>,
    /// 消息通知 on (default) or off.
    pub notify: Option<bool>,
    /// 积分变动消息下发优惠券: the coupon program whose claim link the points message carries.
    pub notify_coupon_program_id: Option<i64>,
}

impl MemberProgramRequest {
    pub fn fields(&self) -> ApiResult<ProgramFields> {
        let defaults = ProgramFields::default();
        let bad = |what: &str| ApiError::invalid(format!("{what}不正确"));
        let fields = ProgramFields {
            title: self.title.trim().to_owned(),
            brand_name: self.brand_name.trim().to_owned(),
            color: self.color.clone().unwrap_or(defaults.color),
            prerogative: self.prerogative.clone(),
            discount_percent_off: self.discount_percent_off,
            points: self.points_rule.map(PointsRule::from),
            stored_value: self.stored_value.unwrap_or(true),
            tier_basis: match self.tier_basis.as_deref() {
                None => TierBasis::PointsEarned,
                Some(code) => TierBasis::parse(code).ok_or_else(|| bad("tier_basis"))?,
            },
            tiers: self
                .tiers
                .iter()
                .map(|t| Tier {
                    name: t.name.trim().to_owned(),
                    threshold: t.threshold,
                    discount_percent_off: t.discount_percent_off,
                })
                .collect(),
            custom_fields: self
                .custom_fields
                .iter()
                .map(|f| {
                    Ok(CustomField {
                        name: f.name.trim().to_owned(),
                        kind: FieldKind::parse(&f.kind).ok_or_else(|| bad("自定义字段类型"))?,
                    })
                })
                .collect::<ApiResult<_>>()?,
            custom_links: self
                .custom_links
                .iter()
                .map(|l| CustomLink {
                    name: l.name.trim().to_owned(),
                    url: l.url.trim().to_owned(),
                })
                .collect(),
            activation_fields: self
                .activation_fields
                .iter()
                .map(|code| ActivationField::parse(code).ok_or_else(|| bad("开卡资料字段")))
                .collect::<ApiResult<_>>()?,
            auto_activate: self.auto_activate,
            number_prefix: self.number_prefix.trim().to_owned(),
            number_length: self.number_length.unwrap_or(defaults.number_length),
            expiry: PointsExpiry::parse(
                self.expiry.as_deref().unwrap_or("never"),
                self.expiry_months.unwrap_or(0),
            )
            .ok_or_else(|| ApiError::invalid("积分有效期不正确（rolling 须带 1–120 个月）"))?,
            notify: self.notify.unwrap_or(true),
            notify_coupon_program_id: self.notify_coupon_program_id,
        };
        fields.check().map_err(ApiError::invalid)?;
        Ok(fields)
    }
}

/// A 会员卡 program as the console shows it.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": 1, "state": "active", "state_label": "使用中", "title": "果园会员卡", "brand_name": "果园", "color": "#63b359", "prerogative": "会员享 9.5 折", "discount_percent_off": 5, "discount_label": "9.5折", "points_rule": {"cost_money_unit": 100, "increase_bonus": 1, "max_increase_bonus": 0, "init_increase_bonus": 20, "cost_bonus_unit": 100, "reduce_money": 100, "least_money_to_use_bonus": 0, "max_reduce_bonus": 0}, "stored_value": true, "tier_basis": "points", "tiers": [{"name": "金卡", "threshold": 1000, "discount_percent_off": 10}], "custom_fields": [{"name": "等级", "kind": "tier"}], "custom_links": [{"name": "商城", "url": "https://shop.example.com"}], "activation_fields": ["name"], "auto_activate": false, "number_prefix": "VIP", "number_length": 8, "expiry": "never", "expiry_months": 0, "expiry_label": "永久有效", "notify": true, "notify_coupon_program_id": null, "n_members": 12, "open_url": "https://kq.example.com/m/1/member-cards/1", "created_at_text": "2026-12-06 10:00"}))]
pub struct MemberProgramDto {
    pub id: i64,
    /// `active` or `disabled`.
    pub state: &'static str,
    pub state_label: &'static str,
    pub title: String,
    pub brand_name: String,
    pub color: String,
    pub prerogative: String,
    pub discount_percent_off: i64,
    /// The discount as people say it: `9.5折`, or empty for none.
    pub discount_label: String,
    pub points_rule: Option<PointsRuleDto>,
    pub stored_value: bool,
    pub tier_basis: &'static str,
    pub tiers: Vec<TierDto>,
    pub custom_fields: Vec<CustomFieldDto>,
    pub custom_links: Vec<CustomLinkDto>,
    pub activation_fields: Vec<&'static str>,
    pub auto_activate: bool,
    pub number_prefix: String,
    pub number_length: i64,
    pub expiry: &'static str,
    pub expiry_months: i64,
    pub expiry_label: String,
    pub notify: bool,
    pub notify_coupon_program_id: Option<i64>,
    pub n_members: i64,
    /// The 开卡 link (its QR code is on the program's page).
    pub open_url: String,
    pub created_at_text: String,
}

/// `9.5折` for 5 percent off; empty for none.
pub fn discount_label(percent_off: i64) -> String {
    if percent_off <= 0 {
        return String::new();
    }
    let tenths = 100 - percent_off;
    if tenths % 10 == 0 {
        format!("{}折", tenths / 10)
    } else {
        format!("{}.{}折", tenths / 10, tenths % 10)
    }
}

impl MemberProgramDto {
    pub fn new(p: &MemberProgram, public_url: &str) -> Self {
        let f = &p.fields;
        Self {
            id: p.id,
            state: p.state.code(),
            state_label: p.state.label_zh(),
            title: f.title.clone(),
            brand_name: f.brand_name.clone(),
            color: f.color.clone(),
            prerogative: f.prerogative.clone(),
            discount_percent_off: f.discount_percent_off,
            discount_label: discount_label(f.discount_percent_off),
            points_rule: f.points.map(PointsRuleDto::from),
            stored_value: f.stored_value,
            tier_basis: f.tier_basis.code(),
            tiers: f
                .tiers
                .iter()
                .map(|t| TierDto {
                    name: t.name.clone(),
                    threshold: t.threshold,
                    discount_percent_off: t.discount_percent_off,
                })
                .collect(),
            custom_fields: f
                .custom_fields
                .iter()
                .map(|c| CustomFieldDto {
                    name: c.name.clone(),
                    kind: c.kind.code().into(),
                })
                .collect(),
            custom_links: f
                .custom_links
                .iter()
                .map(|l| CustomLinkDto {
                    name: l.name.clone(),
                    url: l.url.clone(),
                })
                .collect(),
            activation_fields: f.activation_fields.iter().map(|a| a.code()).collect(),
            auto_activate: f.auto_activate,
            number_prefix: f.number_prefix.clone(),
            number_length: f.number_length,
            expiry: f.expiry.code(),
            expiry_months: f.expiry.months(),
            expiry_label: f.expiry.label_zh(),
            notify: f.notify,
            notify_coupon_program_id: f.notify_coupon_program_id,
            n_members: p.n_members,
            open_url: format!("{public_url}{}", open_path(p.merchant_id, p.id)),
            created_at_text: format_datetime(p.created_at),
        }
    }
}

/// The customer's 开卡 page of a program.
pub fn open_path(merchant_id: i64, program_id: i64) -> String {
    format!("/m/{merchant_id}/member-cards/{program_id}")
}

async fn check_coupon_reference(
    state: &AppState,
    merchant_id: i64,
    fields: &ProgramFields,
) -> ApiResult<()> {
    if let Some(id) = fields.notify_coupon_program_id {
        if state
            .store
            .get_coupon_program(merchant_id, id)
            .await
            .is_err()
        {
            return Err(ApiError::invalid("积分变动消息关联的优惠券不存在"));
        }
    }
    Ok(())
}

pub async fn create_program(
    state: &AppState,
    authed: &Authed,
    request: &MemberProgramRequest,
) -> ApiResult<MemberProgram> {
    authed.require(Permission::MembersManage)?;
    let fields = request.fields()?;
    check_coupon_reference(state, authed.merchant_id(), &fields).await?;
    Ok(state
        .store
        .create_member_program(authed.merchant_id(), &fields, &authed.actor(), crate::now())
        .await?)
}

pub async fn edit_program(
    state: &AppState,
    authed: &Authed,
    program_id: i64,
    request: &MemberProgramRequest,
) -> ApiResult<MemberProgram> {
    authed.require(Permission::MembersManage)?;
    let fields = request.fields()?;
    check_coupon_reference(state, authed.merchant_id(), &fields).await?;
    Ok(state
        .store
        .update_member_program(
            authed.merchant_id(),
            program_id,
            &fields,
            &authed.actor(),
            crate::now(),
        )
        .await?)
}

pub async fn program_dto(
    state: &AppState,
    authed: &Authed,
    program: &MemberProgram,
) -> ApiResult<MemberProgramDto> {
    let public_url = state.public_url_for(authed.merchant_id()).await?;
    Ok(MemberProgramDto::new(program, &public_url))
}

pub async fn program_list(state: &AppState, authed: &Authed) -> ApiResult<Vec<MemberProgramDto>> {
    authed.require(Permission::MembersView)?;
    let public_url = state.public_url_for(authed.merchant_id()).await?;
    Ok(state
        .store
        .list_member_programs(authed.merchant_id())
        .await?
        .iter()
        .map(|p| MemberProgramDto::new(p, &public_url))
        .collect())
}

async fn list_member_programs(
    State(state): State<AppState>,
    authed: Authed,
) -> ApiResult<Json<Vec<MemberProgramDto>>> {
    Ok(Json(program_list(&state, &authed).await?))
}

async fn create_member_program(
    State(state): State<AppState>,
    authed: Authed,
    Json(request): Json<MemberProgramRequest>,
) -> ApiResult<(StatusCode, Json<MemberProgramDto>)> {
    let program = create_program(&state, &authed, &request).await?;
    Ok((
        StatusCode::CREATED,
        Json(program_dto(&state, &authed, &program).await?),
    ))
}

async fn get_member_program(
    State(state): State<AppState>,
    authed: Authed,
    Path(program_id): Path<i64>,
) -> ApiResult<Json<MemberProgramDto>> {
    authed.require(Permission::MembersView)?;
    let program = state
        .store
        .get_member_program(authed.merchant_id(), program_id)
        .await?;
    Ok(Json(program_dto(&state, &authed, &program).await?))
}

async fn update_member_program(
    State(state): State<AppState>,
    authed: Authed,
    Path(program_id): Path<i64>,
    Json(request): Json<MemberProgramRequest>,
) -> ApiResult<Json<MemberProgramDto>> {
    let program = edit_program(&state, &authed, program_id, &request).await?;
    Ok(Json(program_dto(&state, &authed, &program).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"state": "disabled"}))]
pub struct MemberProgramStateRequest {
    /// `active` or `disabled`.
    pub state: String,
}

pub async fn move_program(
    state: &AppState,
    authed: &Authed,
    program_id: i64,
    to: &str,
) -> ApiResult<MemberProgram> {
    authed.require(Permission::MembersManage)?;
    let to = ProgramState::parse(to)
        .ok_or_else(|| ApiError::invalid("state 须为 active 或 disabled"))?;
    Ok(state
        .store
        .set_member_program_state(
            authed.merchant_id(),
            program_id,
            to,
            &authed.actor(),
            crate::now(),
        )
        .await?)
}

async fn update_member_program_state(
    State(state): State<AppState>,
    authed: Authed,
    Path(program_id): Path<i64>,
    Json(request): Json<MemberProgramStateRequest>,
) -> ApiResult<Json<MemberProgramDto>> {
    let program = move_program(&state, &authed, program_id, &request.state).await?;
    Ok(Json(program_dto(&state, &authed, &program).await?))
}

// ---- members ----------------------------------------------------------------

/// Which members a list or export shows.
#[derive(Deserialize, utoipa::IntoParams, utoipa::ToSchema, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct MemberQuery {
    pub program_id: Option<i64>,
    /// Part of the phone or name, or the member number.
    pub search: Option<String>,
    /// Rank in the program's tiers (0: none).
    pub tier: Option<usize>,
    /// `YYYY-MM-DD`, the activation date from …
    pub activated_from: Option<String>,
    /// … until (inclusive).
    pub activated_until: Option<String>,
    pub points_at_least: Option<i64>,
    pub balance_at_least_fen: Option<i64>,
    pub page: Option<i64>,
    pub page_size: Option<i64>,
    /// Shown once after a console form (not a filter).
    pub msg: Option<String>,
}

impl MemberQuery {
    pub fn filter(&self) -> ApiResult<MemberFilter> {
        let search = self
            .search
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty());
        if search
            .is_some_and(|s| kaquan_core::text::is_too_long(s, kaquan_core::text::SEARCH_CHARS_MAX))
        {
            return Err(ApiError::invalid("搜索最多 64 个字符"));
        }
        Ok(MemberFilter {
            program_id: self.program_id,
            search: search.map(str::to_owned),
            tier: self.tier,
            activated_from: parse_optional_date(self.activated_from.as_deref(), "开卡日期", false)?,
            activated_until: parse_optional_date(
                self.activated_until.as_deref(),
                "开卡日期",
                true,
            )?,
            points_at_least: self.points_at_least,
            balance_at_least_fen: self.balance_at_least_fen,
        })
    }
}

/// A member as staff see them (the phone masked without 查看个人信息).
#[derive(Serialize, utoipa::ToSchema, Clone)]
#[schema(example = json!({"member_id": 7, "member_number": "VIP00000007", "program_id": 1, "program_title": "果园会员卡", "customer_id": 3, "external_id": "u-1001", "phone": "138****0000", "name": "王*", "birthday": "", "gender": "女", "tier": 1, "tier_name": "金卡", "discount_label": "9折", "points": 115, "points_earned": 115, "balance_fen": 9000, "balance_yuan": "90.00", "spend_yuan": "95.00", "activated_at_text": "2026-12-06 10:00"}))]
pub struct MemberView {
    pub member_id: i64,
    pub member_number: String,
    pub program_id: i64,
    pub program_title: String,
    pub customer_id: i64,
    /// The mall's id of the customer.
    pub external_id: Option<String>,
    pub phone: String,
    pub name: String,
    pub birthday: String,
    pub gender: String,
    pub tier: usize,
    pub tier_name: String,
    pub discount_label: String,
    pub points: i64,
    pub points_earned: i64,
    pub balance_fen: i64,
    pub balance_yuan: String,
    pub spend_yuan: String,
    pub activated_at_text: String,
}

impl MemberView {
    pub fn new(m: &Member, program: Option<&MemberProgram>, show_personal: bool) -> Self {
        let f = program.map(|p| &p.fields);
        let mask = |text: &str, masker: fn(&str) -> String| {
            if show_personal {
                text.to_owned()
            } else {
                masker(text)
            }
        };
        Self {
            member_id: m.id,
            member_number: f
                .map(|f| f.member_number(m.id))
                .unwrap_or_else(|| m.id.to_string()),
            program_id: m.program_id,
            program_title: f.map(|f| f.title.clone()).unwrap_or_default(),
            customer_id: m.customer_id,
            external_id: m.external_id.clone(),
            phone: mask(&m.phone, kaquan_core::pickup::mask_phone),
            name: mask(&m.name, kaquan_core::pickup::mask_name),
            birthday: if show_personal {
                m.birthday.clone().unwrap_or_default()
            } else {
                String::new()
            },
            gender: m.gender.map(|g| g.label_zh()).unwrap_or("").to_owned(),
            tier: m.tier,
            tier_name: f
                .map(|f| f.tier_name(m.tier).to_owned())
                .unwrap_or_default(),
            discount_label: f
                .map(|f| discount_label(f.discount_for(m.tier)))
                .unwrap_or_default(),
            points: m.points,
            points_earned: m.points_earned,
            balance_fen: m.balance_fen,
            balance_yuan: kaquan_core::money::format_yuan(m.balance_fen),
            spend_yuan: kaquan_core::money::format_yuan(m.spend_fen),
            activated_at_text: format_datetime(m.activated_at),
        }
    }
}

/// The programs of a merchant by id, for the views of a page of members.
pub async fn programs_by_id(state: &AppState, merchant_id: i64) -> ApiResult<Vec<MemberProgram>> {
    Ok(state.store.list_member_programs(merchant_id).await?)
}

pub async fn member_page(
    state: &AppState,
    authed: &Authed,
    query: &MemberQuery,
) -> ApiResult<ListDto<MemberView>> {
    authed.require(Permission::MembersView)?;
    let filter = query.filter()?;
    let page = ListPage::new(query.page, query.page_size);
    let (members, total) = state
        .store
        .list_members(authed.merchant_id(), &filter, page)
        .await?;
    let programs = programs_by_id(state, authed.merchant_id()).await?;
    let show = authed.can(Permission::PersonalDataView);
    let items = members
        .iter()
        .map(|m| MemberView::new(m, programs.iter().find(|p| p.id == m.program_id), show))
        .collect();
    Ok(ListDto::new(items, total, page))
}

async fn list_members(
    State(state): State<AppState>,
    authed: Authed,
    Query(query): Query<MemberQuery>,
) -> ApiResult<Json<ListDto<MemberView>>> {
    Ok(Json(member_page(&state, &authed, &query).await?))
}

pub async fn member_view(
    state: &AppState,
    authed: &Authed,
    member_id: i64,
) -> ApiResult<MemberView> {
    authed.require(Permission::MembersView)?;
    let member = state
        .store
        .get_member(authed.merchant_id(), member_id)
        .await?;
    let program = state
        .store
        .get_member_program(authed.merchant_id(), member.program_id)
        .await?;
    Ok(MemberView::new(
        &member,
        Some(&program),
        authed.can(Permission::PersonalDataView),
    ))
}

async fn get_member(
    State(state): State<AppState>,
    authed: Authed,
    Path(member_id): Path<i64>,
) -> ApiResult<Json<MemberView>> {
    Ok(Json(member_view(&state, &authed, member_id).await?))
}

#[derive(Deserialize, utoipa::IntoParams, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    pub page: Option<i64>,
    pub page_size: Option<i64>,
}

pub async fn points_statement(
    state: &AppState,
    authed: &Authed,
    member_id: i64,
    page: ListPage,
) -> ApiResult<ListDto<TransactionView>> {
    authed.require(Permission::MembersView)?;
    let member = state
        .store
        .get_member(authed.merchant_id(), member_id)
        .await?;
    let (lines, total) = state
        .store
        .list_points_statement(authed.merchant_id(), member.customer_id, page)
        .await?;
    Ok(ListDto::new(
        lines.iter().map(TransactionView::new).collect(),
        total,
        page,
    ))
}

async fn list_member_points_statement(
    State(state): State<AppState>,
    authed: Authed,
    Path(member_id): Path<i64>,
    Query(query): Query<PageQuery>,
) -> ApiResult<Json<ListDto<TransactionView>>> {
    let page = ListPage::new(query.page, query.page_size);
    Ok(Json(
        points_statement(&state, &authed, member_id, page).await?,
    ))
}

/// A member's operation as staff read it.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"operation_id": 42, "kind": "payment", "kind_label": "买单", "reference": "M20261206001", "amount_yuan": "100.00", "discount_yuan": "5.00", "points_delta": 95, "balance_delta_yuan": "-20.00", "points_after": 115, "balance_after_yuan": "90.00", "reason": "", "created_by": "api:kq_1", "created_at_text": "2026-12-06 10:00"}))]
pub struct MemberOperationView {
    pub operation_id: i64,
    pub kind: &'static str,
    pub kind_label: &'static str,
    pub reference: String,
    pub amount_yuan: String,
    pub discount_yuan: String,
    pub points_delta: i64,
    pub balance_delta_yuan: String,
    pub points_after: i64,
    pub balance_after_yuan: String,
    pub reason: String,
    pub created_by: String,
    pub created_at_text: String,
}

impl MemberOperationView {
    pub fn new(op: &MemberOperation) -> Self {
        let yuan = kaquan_core::money::format_yuan;
        Self {
            operation_id: op.id,
            kind: op.kind.code(),
            kind_label: op.kind.label_zh(),
            reference: op.reference.clone(),
            amount_yuan: yuan(op.amount_fen),
            discount_yuan: yuan(op.discount_fen),
            points_delta: op.points_delta(),
            balance_delta_yuan: yuan(op.balance_delta_fen()),
            points_after: op.points_after,
            balance_after_yuan: yuan(op.balance_after_fen),
            reason: op.reason.clone(),
            created_by: op.created_by.clone(),
            created_at_text: format_datetime(op.created_at),
        }
    }
}

pub async fn operations(
    state: &AppState,
    authed: &Authed,
    member_id: i64,
    page: ListPage,
) -> ApiResult<ListDto<MemberOperationView>> {
    authed.require(Permission::MembersView)?;
    let (ops, total) = state
        .store
        .list_member_operations(authed.merchant_id(), member_id, page)
        .await?;
    Ok(ListDto::new(
        ops.iter().map(MemberOperationView::new).collect(),
        total,
        page,
    ))
}

async fn list_member_operations(
    State(state): State<AppState>,
    authed: Authed,
    Path(member_id): Path<i64>,
    Query(query): Query<PageQuery>,
) -> ApiResult<Json<ListDto<MemberOperationView>>> {
    let page = ListPage::new(query.page, query.page_size);
    Ok(Json(operations(&state, &authed, member_id, page).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"delta": -100, "reason": "重复赠送，扣回"}))]
pub struct PointsAdjustmentRequest {
    /// Points to add (positive) or take (negative, never below zero).
    pub delta: i64,
    /// Required: what the audit log and the member's statement say.
    #[schema(min_length = 1, max_length = 200)]
    pub reason: String,
}

/// 积分调整 by hand, with a reason (audited; replayed on the same key).
pub async fn adjust_points(
    state: &AppState,
    authed: &Authed,
    member_id: i64,
    request: &PointsAdjustmentRequest,
    idempotency: Option<IdempotencyClaim>,
) -> ApiResult<MemberOperation> {
    authed.require(Permission::MembersManage)?;
    if request.delta == 0 || request.delta.abs() > POINTS_MAX {
        return Err(ApiError::invalid(
            "调整积分须为非零整数，绝对值不超过 100000000",
        ));
    }
    let reason = request.reason.trim();
    if reason.is_empty() {
        return Err(ApiError::invalid("请填写调整原因"));
    }
    kaquan_core::text::check_field("调整原因", reason, kaquan_core::ledger::REASON_LENGTH_MAX)
        .map_err(ApiError::invalid)?;
    let called = state
        .store
        .post_member_op(
            &ApiCall {
                nonce: None,
                idempotency,
            },
            &MemberOp {
                merchant_id: authed.merchant_id(),
                action: MemberAction::AdjustPoints(AdjustPoints {
                    member_id,
                    delta: request.delta,
                    reason: reason.to_owned(),
                }),
                actor: authed.actor(),
                now: crate::now(),
            },
        )
        .await?;
    Ok(called.result?)
}

async fn create_points_adjustment(
    State(state): State<AppState>,
    authed: Authed,
    Path(member_id): Path<i64>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<MemberOperationView>)> {
    let request: PointsAdjustmentRequest = crate::extract::parse_json(&body)?;
    let idempotency = match headers.get("idempotency-key").and_then(|v| v.to_str().ok()) {
        None => None,
        Some(text) => Some(IdempotencyClaim {
            key: IdempotencyKey::parse(text)
                .ok_or_else(|| ApiError::invalid("Idempotency-Key 须为 1–255 个可见 ASCII 字符"))?,
            request_hash: kaquan_core::signing::body_hash_hex(
                format!("points:{member_id}:{}", String::from_utf8_lossy(&body)).as_bytes(),
            ),
        }),
    };
    let op = adjust_points(&state, &authed, member_id, &request, idempotency).await?;
    debug_assert_eq!(op.kind, OperationKind::AdjustPoints);
    Ok((StatusCode::CREATED, Json(MemberOperationView::new(&op))))
}

/// Members one export holds at most.
const MEMBERS_EXPORT_ROWS_MAX: i64 = 100_000;

const MEMBER_HEADERS: [&str; 12] = [
    "会员号",
    "会员卡",
    "商城顾客ID",
    "手机号",
    "姓名",
    "生日",
    "性别",
    "等级",
    "积分",
    "累计获得积分",
    "余额（元）",
    "开卡时间",
];

/// Every matching member as xlsx.
pub async fn export_member_file(
    state: &AppState,
    authed: &Authed,
    query: &MemberQuery,
) -> ApiResult<Response> {
    authed.require(Permission::MembersView)?;
    let mut rows = Vec::new();
    for number in 1.. {
        let query = MemberQuery {
            page: Some(number),
            page_size: Some(kaquan_core::store::PAGE_SIZE_MAX),
            ..query.clone()
        };
        let page = member_page(state, authed, &query).await?;
        let n = page.items.len() as i64;
        rows.extend(page.items);
        if n < page.page_size || rows.len() as i64 >= MEMBERS_EXPORT_ROWS_MAX {
            break;
        }
    }
    let path = crate::exports::temp_export_path("xlsx");
    let written = path.clone();
    crate::off_runtime(move || write_members(&rows, &written)).await??;
    let name = format!("会员-{}.xlsx", format_date(crate::now()).replace('-', ""));
    crate::exports::stream_file(&path, &name, crate::exports::XLSX_CONTENT_TYPE).await
}

fn write_members(rows: &[MemberView], path: &std::path::Path) -> ApiResult<()> {
    let xlsx_err = |e: rust_xlsxwriter::XlsxError| ApiError::Internal(format!("xlsx: {e}"));
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let sheet = workbook.add_worksheet();
    sheet.set_name("会员").map_err(xlsx_err)?;
    for (c, h) in MEMBER_HEADERS.iter().enumerate() {
        sheet.write_string(0, c as u16, *h).map_err(xlsx_err)?;
    }
    let money = rust_xlsxwriter::Format::new().set_num_format("0.00");
    for (i, m) in rows.iter().enumerate() {
        let row = i as u32 + 1;
        let texts = [
            &m.member_number,
            &m.program_title,
            m.external_id.as_deref().unwrap_or(""),
            &m.phone,
            &m.name,
            &m.birthday,
            &m.gender,
            &m.tier_name,
        ];
        for (c, text) in texts.iter().enumerate() {
            sheet
                .write_string(row, c as u16, crate::exports::escape_formula(text))
                .map_err(xlsx_err)?;
        }
        sheet
            .write_number(row, 8, m.points as f64)
            .map_err(xlsx_err)?;
        sheet
            .write_number(row, 9, m.points_earned as f64)
            .map_err(xlsx_err)?;
        sheet
            .write_number_with_format(row, 10, m.balance_fen as f64 / 100.0, &money)
            .map_err(xlsx_err)?;
        sheet
            .write_string(row, 11, &m.activated_at_text)
            .map_err(xlsx_err)?;
    }
    workbook.save(path).map_err(xlsx_err)?;
    Ok(())
}

async fn export_members(
    State(state): State<AppState>,
    authed: Authed,
    Query(query): Query<MemberQuery>,
) -> ApiResult<Response> {
    export_member_file(&state, &authed, &query).await
}
