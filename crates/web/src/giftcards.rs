//! 礼品卡 in the console and the staff API: 礼品卡设置 (with its pictures)
//! and 礼品卡商品. Codes and their templates live in `codes.rs`, customers'
//! balances in `customers.rs`, open-API keys in `api_keys.rs`.

use crate::auth::Authed;
use crate::codes::CodeTemplateDto;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Form, Json, Multipart, Path, Query};
use crate::forms::{redirect_with, MsgQuery};
use crate::pages::{render, Page, PageResult};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use kaquan_core::auth::Permission;
use kaquan_core::code::CodeKind;
use kaquan_core::giftcard::{
    GiftcardImageSlot, GiftcardProduct, GiftcardProductFields, GiftcardSettings, GoodsDisplay,
};
use kaquan_core::money::{format_yuan, parse_yuan};
use kaquan_core::store::Page as ListPage;
use serde::{Deserialize, Serialize};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/giftcards/settings",
            get(settings_page).post(settings_form),
        )
        .route("/giftcards/settings/images/{slot}", post(image_form))
        .route("/giftcards/products", get(products_page).post(product_form))
        .route(
            "/giftcards/products/{product_id}",
            post(product_update_form),
        )
        .route(
            "/api/v1/giftcard-settings",
            get(get_settings).put(update_settings),
        )
        .route(
            "/api/v1/giftcard-products",
            get(list_products).post(create_product),
        )
        .route(
            "/api/v1/giftcard-products/{product_id}",
            axum::routing::put(update_product),
        )
}

// ---- 礼品卡设置 -----------------------------------------------------------

/// How long a node trusts the 礼品卡设置 it read; a change made on another
/// node takes effect here within this time (on the saving node at once).
pub const SETTINGS_CACHE_SECONDS: u64 = 5;

/// Each merchant's 礼品卡设置 as this node last read them.
pub type SettingsCache = crate::cache::TtlCache<i64, GiftcardSettings>;

/// The merchant's 礼品卡设置, from this node's cache while fresh.
pub async fn cached_settings(state: &AppState, merchant_id: i64) -> ApiResult<GiftcardSettings> {
    if let Some(settings) = state.giftcard_settings.get(&merchant_id) {
        return Ok(settings);
    }
    let settings = state.store.get_giftcard_settings(merchant_id).await?;
    state.giftcard_settings.put(merchant_id, settings.clone());
    Ok(settings)
}

#[derive(Serialize, Deserialize, Clone, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"enabled": true, "centre_entry": true, "distribution": false, "attempt_limit": 10, "centre_name": "礼品卡中心", "share_title": "送你一张礼品卡", "description": "礼品卡可用于本店全部商品", "goods_display": "grid", "phone_login": false}))]
pub struct GiftcardSettingsDto {
    pub enabled: bool,
    pub centre_entry: bool,
    pub attempt_limit: i64,
    pub centre_name: String,
    pub share_title: String,
    pub description: String,
    pub phone_login: bool,
    /// 是否参与分销.
    #[serde(default)]
    pub distribution: bool,
    /// 活动商品展示方式: `list` or `grid`.
    #[serde(default = "default_goods_display")]
    pub goods_display: String,
}

fn default_goods_display() -> String {
    GoodsDisplay::List.code().into()
}

impl GiftcardSettingsDto {
    fn new(s: &GiftcardSettings) -> Self {
        Self {
            enabled: s.enabled,
            centre_entry: s.centre_entry,
            attempt_limit: s.attempt_limit,
            centre_name: s.centre_name.clone(),
            share_title: s.share_title.clone(),
            description: s.description.clone(),
            phone_login: s.phone_login,
            distribution: s.distribution,
            goods_display: s.goods_display.code().into(),
        }
    }
    fn into_settings(self) -> ApiResult<GiftcardSettings> {
        Ok(GiftcardSettings {
            enabled: self.enabled,
            centre_entry: self.centre_entry,
            attempt_limit: self.attempt_limit,
            centre_name: self.centre_name.trim().to_owned(),
            share_title: self.share_title.trim().to_owned(),
            description: self.description,
            phone_login: self.phone_login,
            distribution: self.distribution,
            goods_display: GoodsDisplay::parse(&self.goods_display)
                .ok_or_else(|| ApiError::invalid("活动商品展示方式应为 list 或 grid"))?,
        })
    }
}

async fn save_settings(
    state: &AppState,
    authed: &Authed,
    dto: GiftcardSettingsDto,
) -> ApiResult<()> {
    authed.require(Permission::GiftcardsManage)?;
    let settings = dto.into_settings()?;
    settings
        .check()
        .map_err(|errors| ApiError::Invalid(errors.join("；"), errors))?;
    state
        .store
        .put_giftcard_settings(
            authed.merchant_id(),
            &settings,
            &authed.audit(
                "update_giftcard_settings",
                String::new(),
                format!(
                    "enabled={} attempt_limit={}",
                    settings.enabled, settings.attempt_limit
                ),
            ),
        )
        .await?;
    state.giftcard_settings.forget(&authed.merchant_id());
    Ok(())
}

async fn get_settings(
    State(state): State<AppState>,
    authed: Authed,
) -> ApiResult<Json<GiftcardSettingsDto>> {
    authed.require(Permission::GiftcardsManage)?;
    let settings = state
        .store
        .get_giftcard_settings(authed.merchant_id())
        .await?;
    Ok(Json(GiftcardSettingsDto::new(&settings)))
}

async fn update_settings(
    State(state): State<AppState>,
    authed: Authed,
    Json(dto): Json<GiftcardSettingsDto>,
) -> ApiResult<Json<GiftcardSettingsDto>> {
    save_settings(&state, &authed, dto).await?;
    get_settings(State(state), authed).await
}

#[derive(Serialize)]
struct SettingsView {
    settings: GiftcardSettingsDto,
    slots: Vec<SlotView>,
    exchange_url: String,
    error: Option<String>,
}

#[derive(Serialize)]
struct SlotView {
    code: &'static str,
    label: &'static str,
    url: Option<String>,
}

async fn settings_view(
    state: &AppState,
    authed: &Authed,
    settings: GiftcardSettingsDto,
    error: Option<String>,
) -> ApiResult<SettingsView> {
    let merchant_id = authed.merchant_id();
    let images = state.store.giftcard_images(merchant_id).await?;
    Ok(SettingsView {
        settings,
        slots: GiftcardImageSlot::ALL
            .iter()
            .map(|slot| SlotView {
                code: slot.code(),
                label: slot.label_zh(),
                url: images
                    .iter()
                    .find(|(s, _)| s == slot)
                    .map(|(s, at)| crate::exchange::giftcard_image_url(merchant_id, *s, *at)),
            })
            .collect(),
        exchange_url: format!(
            "{}{}",
            state.public_url_for(merchant_id).await?,
            crate::exchange::centre_path(merchant_id)
        ),
        error,
    })
}

async fn settings_page(
    State(state): State<AppState>,
    authed: Authed,
    Query(query): Query<MsgQuery>,
) -> PageResult {
    authed.require(Permission::GiftcardsManage)?;
    let settings = state
        .store
        .get_giftcard_settings(authed.merchant_id())
        .await?;
    let view = settings_view(&state, &authed, GiftcardSettingsDto::new(&settings), None).await?;
    Ok(render(
        &state,
        "giftcard_settings.html",
        &Page::new("礼品卡设置", &authed).with_message(query.msg),
        view,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsForm {
    csrf: String,
    enabled: Option<String>,
    centre_entry: Option<String>,
    phone_login: Option<String>,
    distribution: Option<String>,
    #[serde(default = "default_goods_display")]
    goods_display: String,
    attempt_limit: String,
    centre_name: String,
    share_title: String,
    description: String,
}

async fn settings_form(
    State(state): State<AppState>,
    authed: Authed,
    Form(form): Form<SettingsForm>,
) -> PageResult {
    authed.check_form_csrf(&form.csrf)?;
    let dto = GiftcardSettingsDto {
        enabled: form.enabled.is_some(),
        centre_entry: form.centre_entry.is_some(),
        phone_login: form.phone_login.is_some(),
        distribution: form.distribution.is_some(),
        goods_display: form.goods_display,
        attempt_limit: form.attempt_limit.trim().parse().unwrap_or(0),
        centre_name: form.centre_name,
        share_title: form.share_title,
        description: form.description,
    };
    let shown = dto.clone();
    match save_settings(&state, &authed, dto).await {
        Ok(()) => Ok(redirect_with("/giftcards/settings", "已保存")),
        Err(error) => {
            let view = settings_view(&state, &authed, shown, Some(error.public_message())).await?;
            let mut response = render(
                &state,
                "giftcard_settings.html",
                &Page::new("礼品卡设置", &authed),
                view,
            );
            *response.status_mut() = error.status();
            Ok(response)
        }
    }
}

async fn image_form(
    State(state): State<AppState>,
    authed: Authed,
    Path(slot): Path<String>,
    multipart: Multipart,
) -> PageResult {
    let slot = GiftcardImageSlot::parse(&slot).ok_or(ApiError::NotFound)?;
    let (bytes, csrf) = crate::images::read_image_upload(multipart).await?;
    authed.check_form_csrf(&csrf)?;
    authed.require(Permission::GiftcardsManage)?;
    let content_type = crate::images::checked_image(&bytes)?;
    state
        .store
        .put_giftcard_image(
            authed.merchant_id(),
            slot,
            content_type,
            &bytes,
            crate::now(),
        )
        .await?;
    state
        .store
        .append_audit(&authed.audit(
            "update_giftcard_image",
            slot.code().into(),
            content_type.into(),
        ))
        .await?;
    Ok(redirect_with(
        "/giftcards/settings",
        &format!("{}已更新", slot.label_zh()),
    ))
}

// ---- 礼品卡商品 -----------------------------------------------------------

#[derive(Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"id": 1, "name": "100 元礼品卡", "template_id": 5, "template_name": "商城 100 元礼品卡", "template_live": true, "face_value_fen": 10000, "price_fen": 9500, "price_yuan": "95.00", "on_shelf": true}))]
pub struct GiftcardProductDto {
    #[serde(default)]
    pub id: i64,
    pub name: String,
    /// 关联兑换码: an online code template.
    pub template_id: i64,
    #[serde(default)]
    pub template_name: String,
    pub price_fen: i64,
    #[serde(default)]
    pub face_value_fen: i64,
    pub on_shelf: bool,
    #[serde(default)]
    pub price_yuan: String,
    /// Whether the linked template still exists (not deleted).
    #[serde(default)]
    pub template_live: bool,
}

impl GiftcardProductDto {
    fn new(p: &GiftcardProduct) -> Self {
        Self {
            id: p.id,
            name: p.fields.name.clone(),
            template_id: p.fields.template_id,
            template_name: p.template_name.clone(),
            price_fen: p.fields.price_fen,
            face_value_fen: p.face_value_fen,
            on_shelf: p.fields.on_shelf,
            price_yuan: format_yuan(p.fields.price_fen),
            template_live: p.template_live,
        }
    }
    fn fields(&self) -> ApiResult<GiftcardProductFields> {
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > 60 {
            return Err(ApiError::invalid("商品名称必须是 1–60 个字"));
        }
        if !(0..=kaquan_core::ledger::AMOUNT_FEN_MAX).contains(&self.price_fen) {
            return Err(ApiError::invalid("售价超出范围"));
        }
        Ok(GiftcardProductFields {
            name: name.to_owned(),
            template_id: self.template_id,
            price_fen: self.price_fen,
            on_shelf: self.on_shelf,
        })
    }
}

fn unknown_template(error: kaquan_core::StoreError) -> ApiError {
    match error {
        kaquan_core::StoreError::NotFound => {
            ApiError::invalid("请选择一个有效的线上兑换码作为关联兑换码")
        }
        other => other.into(),
    }
}

async fn list_products(
    State(state): State<AppState>,
    authed: Authed,
) -> ApiResult<Json<Vec<GiftcardProductDto>>> {
    authed.require(Permission::GiftcardsManage)?;
    let products = state
        .store
        .list_giftcard_products(authed.merchant_id())
        .await?;
    Ok(Json(products.iter().map(GiftcardProductDto::new).collect()))
}

async fn create_product(
    State(state): State<AppState>,
    authed: Authed,
    Json(dto): Json<GiftcardProductDto>,
) -> ApiResult<(StatusCode, Json<GiftcardProductDto>)> {
    authed.require(Permission::GiftcardsManage)?;
    let product = state
        .store
        .create_giftcard_product(authed.merchant_id(), &dto.fields()?, crate::now())
        .await
        .map_err(unknown_template)?;
    Ok((StatusCode::CREATED, Json(GiftcardProductDto::new(&product))))
}

async fn update_product(
    State(state): State<AppState>,
    authed: Authed,
    Path(product_id): Path<i64>,
    Json(dto): Json<GiftcardProductDto>,
) -> ApiResult<StatusCode> {
    authed.require(Permission::GiftcardsManage)?;
    state
        .store
        .update_giftcard_product(authed.merchant_id(), product_id, &dto.fields()?)
        .await
        .map_err(unknown_template)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn products_page(
    State(state): State<AppState>,
    authed: Authed,
    Query(query): Query<MsgQuery>,
) -> PageResult {
    authed.require(Permission::GiftcardsManage)?;
    let merchant_id = authed.merchant_id();
    let products = state.store.list_giftcard_products(merchant_id).await?;
    let (templates, _) = state
        .store
        .list_code_templates(
            merchant_id,
            CodeKind::Online,
            ListPage::new(None, Some(kaquan_core::store::PAGE_SIZE_MAX)),
        )
        .await?;
    Ok(render(
        &state,
        "giftcard_products.html",
        &Page::new("礼品卡商品", &authed).with_message(query.msg),
        minijinja::context! {
            products => products.iter().map(GiftcardProductDto::new).collect::<Vec<_>>(),
            templates => templates.iter().map(CodeTemplateDto::new).collect::<Vec<_>>(),
        },
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProductForm {
    csrf: String,
    name: String,
    template_id: String,
    price: String,
    on_shelf: Option<String>,
}

impl ProductForm {
    fn dto(&self) -> ApiResult<GiftcardProductDto> {
        Ok(GiftcardProductDto {
            id: 0,
            name: self.name.clone(),
            template_id: self
                .template_id
                .trim()
                .parse()
                .map_err(|_| ApiError::invalid("请选择关联兑换码"))?,
            template_name: String::new(),
            price_fen: parse_yuan(&self.price)
                .ok_or_else(|| ApiError::invalid("售价应为金额，如 100 或 99.50"))?,
            face_value_fen: 0,
            on_shelf: self.on_shelf.is_some(),
            price_yuan: String::new(),
            template_live: true,
        })
    }
}

async fn product_form(
    State(state): State<AppState>,
    authed: Authed,
    Form(form): Form<ProductForm>,
) -> PageResult {
    authed.check_form_csrf(&form.csrf)?;
    authed.require(Permission::GiftcardsManage)?;
    let fields = form.dto()?.fields()?;
    state
        .store
        .create_giftcard_product(authed.merchant_id(), &fields, crate::now())
        .await
        .map_err(unknown_template)?;
    Ok(redirect_with(
        "/giftcards/products",
        &format!("已添加礼品卡商品「{}」", fields.name),
    ))
}

async fn product_update_form(
    State(state): State<AppState>,
    authed: Authed,
    Path(product_id): Path<i64>,
    Form(form): Form<ProductForm>,
) -> PageResult {
    authed.check_form_csrf(&form.csrf)?;
    authed.require(Permission::GiftcardsManage)?;
    let fields = form.dto()?.fields()?;
    state
        .store
        .update_giftcard_product(authed.merchant_id(), product_id, &fields)
        .await
        .map_err(unknown_template)?;
    Ok(redirect_with("/giftcards/products", "已保存"))
}
