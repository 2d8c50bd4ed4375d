//! 会员卡 programs in the staff API: 制卡, edit, 启用/停用, and the 开卡
//! link. The members are in `members.rs`.

use crate::auth::Authed;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use kaquan_core::auth::Permission;
use kaquan_core::clock::format_datetime;
use kaquan_core::member::{
    ActivationField, CardPicture, CardPictureUpload, CustomField, CustomLink, FieldKind,
    MemberProgram, PointsExpiry, PointsRule, ProgramFields, ProgramState, Tier, TierBasis,
    CARD_PICTURE_PATH,
};
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
        .route(
            "/api/v1/member-programs/{program_id}/pictures/{picture}",
            post(update_member_program_picture),
        )
        .route(
            "/m/member-card-pictures/{program_id}/{picture}",
            get(serve_card_picture),
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
    /// 卡面背景图, shown over the colour: an `https://` address (or upload
    /// one to `…/pictures/background`). Absent: unchanged (none on create);
    /// empty: none.
    pub background_pic_url: Option<String>,
    /// 商户 logo: an `https://` address (or upload one to `…/pictures/logo`).
    /// Absent: unchanged (none on create); empty: none.
    pub logo_url: Option<String>,
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
    /// 降级规则: a refund that takes the member's total below their tier's
    /// threshold takes the tier down (default off: tiers never fall).
    #[serde(default)]
    pub downgrade_on_refund: bool,
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
            background_pic_url: self
                .background_pic_url
                .as_deref()
                .unwrap_or_default()
                .trim()
                .to_owned(),
            logo_url: self
                .logo_url
                .as_deref()
                .unwrap_or_default()
                .trim()
                .to_owned(),
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
            downgrade_on_refund: self.downgrade_on_refund,
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
#[schema(example = json!({"id": 1, "state": "active", "state_label": "使用中", "title": "果园会员卡", "brand_name": "果园", "color": "#63b359", "prerogative": "会员享 9.5 折", "discount_percent_off": 5, "discount_label": "9.5折", "points_rule": {"cost_money_unit": 100, "increase_bonus": 1, "max_increase_bonus": 0, "init_increase_bonus": 20, "cost_bonus_unit": 100, "reduce_money": 100, "least_money_to_use_bonus": 0, "max_reduce_bonus": 0}, "stored_value": true, "tier_basis": "points", "tiers": [{"name": "金卡", "threshold": 1000, "discount_percent_off": 10}], "custom_fields": [{"name": "等级", "kind": "tier"}], "custom_links": [{"name": "商城", "url": "https://shop.example.com"}], "activation_fields": ["name"], "auto_activate": false, "number_prefix": "VIP", "number_length": 8, "expiry": "never", "expiry_months": 0, "expiry_label": "永久有效", "notify": true, "notify_coupon_program_id": null, "background_pic_url": "https://cdn.example.com/card.jpg", "logo_url": "/m/member-card-pictures/1/logo?v=3f9a", "downgrade_on_refund": false, "n_members": 12, "open_url": "https://kq.example.com/m/1/member-cards/1", "created_at_text": "2026-12-06 10:00"}))]
pub struct MemberProgramDto {
    pub id: i64,
    /// `active` or `disabled`.
    pub state: &'static str,
    pub state_label: &'static str,
    pub title: String,
    pub brand_name: String,
    pub color: String,
    /// 卡面背景图 (empty: the colour only).
    pub background_pic_url: String,
    /// 商户 logo (empty: none).
    pub logo_url: String,
    pub prerogative: String,
    pub discount_percent_off: i64,
    /// The discount as people say it: `9.5折`, or empty for none.
    pub discount_label: String,
    pub points_rule: Option<PointsRuleDto>,
    pub stored_value: bool,
    pub tier_basis: &'static str,
    pub tiers: Vec<TierDto>,
    /// 降级规则 on: a refund may take the tier down.
    pub downgrade_on_refund: bool,
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
            background_pic_url: f.background_pic_url.clone(),
            logo_url: f.logo_url.clone(),
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
            downgrade_on_refund: f.downgrade_on_refund,
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
    let mut fields = request.fields()?;
    check_coupon_reference(state, authed.merchant_id(), &fields).await?;
    // Pictures the request leaves out stay as they are (the console's
    // form has none: they are uploaded on the program's page).
    if request.background_pic_url.is_none() || request.logo_url.is_none() {
        let current = state
            .store
            .get_member_program(authed.merchant_id(), program_id)
            .await?;
        if request.background_pic_url.is_none() {
            fields.background_pic_url = current.fields.background_pic_url;
        }
        if request.logo_url.is_none() {
            fields.logo_url = current.fields.logo_url;
        }
    }
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

fn card_picture(code: &str) -> ApiResult<CardPicture> {
    CardPicture::parse(code).ok_or(ApiError::NotFound)
}

/// Keeps an uploaded card picture (checked to be an image) and points the
/// program's logo or background at where the customer's pages fetch it.
pub async fn upload_card_picture(
    state: &AppState,
    authed: &Authed,
    program_id: i64,
    picture: &str,
    bytes: Vec<u8>,
) -> ApiResult<MemberProgram> {
    authed.require(Permission::MembersManage)?;
    let picture = card_picture(picture)?;
    let content_type = crate::images::checked_image(&bytes)?;
    let m = authed.merchant_id();
    let upload = CardPictureUpload {
        merchant_id: m,
        program_id,
        picture,
        content_type,
        bytes,
        // A new address each upload, so no cache keeps the old picture.
        url: format!(
            "{CARD_PICTURE_PATH}{program_id}/{}?v={}",
            picture.code(),
            kaquan_core::secrets::random_token_hex(4)
        ),
        now: crate::now(),
    };
    let audit = authed.audit(
        "upload_member_card_picture",
        format!("member_program={program_id}"),
        format!("picture={} {content_type}", picture.code()),
    );
    state.store.put_card_picture(&upload, &audit).await?;
    Ok(state.store.get_member_program(m, program_id).await?)
}

/// The card's logo or background picture (`logo` or `background`;
/// multipart field `file`; PNG/JPEG/WebP/GIF, at most 2 MB).
async fn update_member_program_picture(
    State(state): State<AppState>,
    authed: Authed,
    Path((program_id, picture)): Path<(i64, String)>,
    multipart: crate::extract::Multipart,
) -> ApiResult<Json<MemberProgramDto>> {
    let (bytes, _) = crate::images::read_image_upload(multipart).await?;
    let program = upload_card_picture(&state, &authed, program_id, &picture, bytes).await?;
    Ok(Json(program_dto(&state, &authed, &program).await?))
}

/// An uploaded card picture, for the customer's pages (public).
async fn serve_card_picture(
    State(state): State<AppState>,
    Path((program_id, picture)): Path<(i64, String)>,
) -> ApiResult<axum::response::Response> {
    let (content_type, bytes) = state
        .store
        .get_card_picture(program_id, card_picture(&picture)?)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(crate::images::image_response(content_type, bytes))
}
