//! 提货商品: the goods catalogue in the API and console, image upload and
//! serving, and linking goods to cards (对应商品).

use crate::auth::Authed;
use crate::cards::CardFilterDto;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Form, FormText, Json, Multipart, Path, Query};
use crate::forms::{redirect_with, CsrfForm, FormPairs, MsgQuery};
use crate::images::checked_image;
use crate::images::image_response;
use crate::images::read_image_upload;
use crate::lists::ChangedDto;
use crate::pages::{render, Page, PageResult};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;
use kaquan_core::auth::Permission;
use kaquan_core::card::CardFilter;
use kaquan_core::clock::format_datetime;
use kaquan_core::goods::{Goods, GoodsFields, GoodsLinkMode, GOODS_IMAGES_MAX};
use serde::{Deserialize, Serialize};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/goods", get(list_goods).post(create_goods))
        .route("/api/v1/goods/{goods_id}", get(get_goods).put(update_goods))
        .route("/api/v1/goods/{goods_id}/images", post(create_goods_image))
        .route(
            "/api/v1/goods/{goods_id}/images/{image_id}",
            delete(delete_goods_image),
        )
        .route("/api/v1/cards/link-goods", post(link_card_goods))
        .route(
            "/m/{merchant_id}/goods-images/{image_id}",
            get(serve_goods_image),
        )
        .route("/goods", get(goods_page).post(create_goods_form))
        .route(
            "/goods/{goods_id}",
            get(goods_edit_page).post(update_goods_form),
        )
        .route("/goods/{goods_id}/images", post(add_goods_image_form))
        .route(
            "/goods/{goods_id}/images/{image_id}/delete",
            post(delete_goods_image_form),
        )
        .route("/cards/link-goods", post(link_goods_form))
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": 3, "name": "五常大米礼盒 5kg", "description": "当季新米", "sku": "RICE-5KG", "erp_code": "100203", "attributes": "5kg/盒", "on_shelf": true, "images": [{"id": 1, "url": "/media/goods/3/1.jpg"}], "updated_at": "2026-11-30 14:05:00"}))]
pub struct GoodsDto {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub sku: String,
    pub erp_code: String,
    pub attributes: String,
    pub on_shelf: bool,
    /// Image URLs in upload order; the first is the cover.
    pub images: Vec<GoodsImageDto>,
    pub updated_at: String,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": 1, "url": "/media/goods/3/1.jpg"}))]
pub struct GoodsImageDto {
    pub id: i64,
    pub url: String,
}

/// Where an image of a merchant's goods is served (public: customers see it).
pub fn image_url(merchant_id: i64, image_id: i64) -> String {
    format!("/m/{merchant_id}/goods-images/{image_id}")
}

impl From<&Goods> for GoodsDto {
    fn from(g: &Goods) -> Self {
        Self {
            id: g.id,
            name: g.name.clone(),
            description: g.description.clone(),
            sku: g.sku.clone(),
            erp_code: g.erp_code.clone(),
            attributes: g.attributes.clone(),
            on_shelf: g.on_shelf,
            images: g
                .image_ids
                .iter()
                .map(|id| GoodsImageDto {
                    id: *id,
                    url: image_url(g.merchant_id, *id),
                })
                .collect(),
            updated_at: format_datetime(g.updated_at),
        }
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "五常大米礼盒 5kg", "sku": "RICE-5KG", "on_shelf": true}))]
pub struct GoodsRequest {
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    /// 商品详细内容 as the merchant writes it.
    #[serde(default)]
    #[schema(max_length = 20_000)]
    pub description: String,
    #[serde(default)]
    #[schema(max_length = 64)]
    pub sku: String,
    #[serde(default)]
    #[schema(max_length = 64)]
    pub erp_code: String,
    /// 扩展属性.
    #[serde(default)]
    #[schema(max_length = 2000)]
    pub attributes: String,
    /// 上架; defaults to on the shelf.
    pub on_shelf: Option<bool>,
}

impl GoodsRequest {
    fn into_fields(self) -> ApiResult<GoodsFields> {
        GoodsFields::new(
            &self.name,
            &self.description,
            &self.sku,
            &self.erp_code,
            &self.attributes,
            self.on_shelf.unwrap_or(true),
        )
        .map_err(ApiError::invalid)
    }
}

async fn add_goods(state: &AppState, authed: &Authed, fields: GoodsFields) -> ApiResult<Goods> {
    authed.require(Permission::GoodsManage)?;
    let goods = state
        .store
        .create_goods(authed.merchant_id(), &fields, crate::now())
        .await?;
    state
        .store
        .append_audit(&authed.audit(
            "create_goods",
            format!("goods={}", goods.id),
            goods.name.clone(),
        ))
        .await?;
    Ok(goods)
}

async fn change_goods(
    state: &AppState,
    authed: &Authed,
    goods_id: i64,
    fields: GoodsFields,
) -> ApiResult<()> {
    authed.require(Permission::GoodsManage)?;
    state
        .store
        .update_goods(authed.merchant_id(), goods_id, &fields, crate::now())
        .await?;
    state
        .store
        .append_audit(&authed.audit("update_goods", format!("goods={goods_id}"), fields.name))
        .await?;
    Ok(())
}

async fn list_goods(
    State(state): State<AppState>,
    authed: Authed,
) -> ApiResult<Json<Vec<GoodsDto>>> {
    authed.require(Permission::CardsView)?;
    Ok(Json(
        state
            .store
            .list_goods(authed.merchant_id(), false)
            .await?
            .iter()
            .map(GoodsDto::from)
            .collect(),
    ))
}

async fn create_goods(
    State(state): State<AppState>,
    authed: Authed,
    Json(body): Json<GoodsRequest>,
) -> ApiResult<Response> {
    let goods = add_goods(&state, &authed, body.into_fields()?).await?;
    Ok((StatusCode::CREATED, Json(GoodsDto::from(&goods))).into_response())
}

async fn get_goods(
    State(state): State<AppState>,
    authed: Authed,
    Path(goods_id): Path<i64>,
) -> ApiResult<Json<GoodsDto>> {
    authed.require(Permission::CardsView)?;
    Ok(Json(GoodsDto::from(
        &state
            .store
            .get_goods(authed.merchant_id(), goods_id)
            .await?,
    )))
}

async fn update_goods(
    State(state): State<AppState>,
    authed: Authed,
    Path(goods_id): Path<i64>,
    Json(body): Json<GoodsRequest>,
) -> ApiResult<StatusCode> {
    change_goods(&state, &authed, goods_id, body.into_fields()?).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn store_image(
    state: &AppState,
    authed: &Authed,
    goods_id: i64,
    bytes: &[u8],
) -> ApiResult<i64> {
    authed.require(Permission::GoodsManage)?;
    let content_type = checked_image(bytes)?;
    let id = state
        .store
        .add_goods_image(
            authed.merchant_id(),
            goods_id,
            content_type,
            bytes,
            crate::now(),
        )
        .await
        .map_err(|e| match e {
            kaquan_core::StoreError::Invalid(_) => {
                ApiError::invalid(format!("每个商品最多 {GOODS_IMAGES_MAX} 张图片"))
            }
            other => other.into(),
        })?;
    state
        .store
        .append_audit(&authed.audit(
            "add_goods_image",
            format!("goods={goods_id}"),
            format!("image={id}"),
        ))
        .await?;
    Ok(id)
}

async fn create_goods_image(
    State(state): State<AppState>,
    authed: Authed,
    Path(goods_id): Path<i64>,
    multipart: Multipart,
) -> ApiResult<Response> {
    let (bytes, _) = read_image_upload(multipart).await?;
    let id = store_image(&state, &authed, goods_id, &bytes).await?;
    Ok((
        StatusCode::CREATED,
        Json(GoodsImageDto {
            id,
            url: image_url(authed.merchant_id(), id),
        }),
    )
        .into_response())
}

async fn remove_image(
    state: &AppState,
    authed: &Authed,
    goods_id: i64,
    image_id: i64,
) -> ApiResult<()> {
    authed.require(Permission::GoodsManage)?;
    state
        .store
        .delete_goods_image(authed.merchant_id(), goods_id, image_id)
        .await?;
    state
        .store
        .append_audit(&authed.audit(
            "delete_goods_image",
            format!("goods={goods_id}"),
            format!("image={image_id}"),
        ))
        .await?;
    Ok(())
}

async fn delete_goods_image(
    State(state): State<AppState>,
    authed: Authed,
    Path((goods_id, image_id)): Path<(i64, i64)>,
) -> ApiResult<StatusCode> {
    remove_image(&state, &authed, goods_id, image_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Serves a goods image with the type it was recognised as; browsers must
/// not guess another.
async fn serve_goods_image(
    State(state): State<AppState>,
    Path((merchant_id, image_id)): Path<(i64, i64)>,
) -> ApiResult<Response> {
    let (content_type, bytes) = state.store.get_goods_image(merchant_id, image_id).await?;
    Ok(image_response(content_type, bytes))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"filter": {"batch_id": 12}, "goods_ids": [3, 4], "mode": "replace"}))]
pub struct LinkGoodsRequest {
    pub filter: CardFilterDto,
    pub goods_ids: Vec<i64>,
    /// `replace` (default): exactly these goods; `add`: these join the cards' goods.
    pub mode: Option<String>,
}

fn parse_mode(mode: Option<&str>) -> ApiResult<GoodsLinkMode> {
    match mode.unwrap_or("replace") {
        "replace" | "" => Ok(GoodsLinkMode::Replace),
        "add" => Ok(GoodsLinkMode::Add),
        _ => Err(ApiError::invalid("mode 应为 replace 或 add")),
    }
}

pub async fn apply_link(
    state: &AppState,
    authed: &Authed,
    filter: &CardFilter,
    goods_ids: &[i64],
    mode: GoodsLinkMode,
) -> ApiResult<i64> {
    authed.require(Permission::CardsManage)?;
    if goods_ids.is_empty() && mode == GoodsLinkMode::Add {
        return Err(ApiError::invalid("请选择要增加的提货商品"));
    }
    let mode_label = if mode == GoodsLinkMode::Replace {
        "replace"
    } else {
        "add"
    };
    let audit = authed.audit(
        "link_goods",
        filter.describe(),
        format!("{mode_label} goods={goods_ids:?}"),
    );
    let n = state
        .store
        .link_card_goods(authed.merchant_id(), filter, goods_ids, mode, &audit)
        .await
        .map_err(|e| match e {
            kaquan_core::StoreError::NotFound => ApiError::invalid("所选提货商品不存在"),
            kaquan_core::StoreError::Invalid(_) => ApiError::invalid(format!(
                "每张卡最多对应 {} 个提货商品",
                kaquan_core::goods::GOODS_PER_CARD_MAX
            )),
            other => other.into(),
        })?;
    Ok(n)
}

async fn link_card_goods(
    State(state): State<AppState>,
    authed: Authed,
    Json(body): Json<LinkGoodsRequest>,
) -> ApiResult<Json<ChangedDto>> {
    authed.require(Permission::CardsManage)?;
    let mode = parse_mode(body.mode.as_deref())?;
    let filter = body.filter.into_target()?;
    Ok(Json(ChangedDto {
        n_cards: apply_link(&state, &authed, &filter, &body.goods_ids, mode).await?,
    }))
}

// ---- console ----------------------------------------------------------------

#[derive(Serialize)]
struct GoodsListView {
    goods: Vec<GoodsDto>,
}

async fn goods_page(
    State(state): State<AppState>,
    authed: Authed,
    Query(query): Query<MsgQuery>,
) -> PageResult {
    authed.require(Permission::GoodsManage)?;
    let goods = state
        .store
        .list_goods(authed.merchant_id(), false)
        .await?
        .iter()
        .map(GoodsDto::from)
        .collect();
    Ok(render(
        &state,
        "goods.html",
        &Page::new("提货商品", &authed).with_message(query.msg),
        GoodsListView { goods },
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GoodsForm {
    csrf: String,
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    sku: String,
    #[serde(default)]
    erp_code: String,
    #[serde(default)]
    attributes: String,
    /// The 上架 checkbox.
    on_shelf: Option<String>,
}

impl GoodsForm {
    fn into_fields(self) -> ApiResult<GoodsFields> {
        GoodsFields::new(
            &self.name,
            &self.description,
            &self.sku,
            &self.erp_code,
            &self.attributes,
            self.on_shelf.is_some(),
        )
        .map_err(ApiError::invalid)
    }
}

async fn create_goods_form(
    State(state): State<AppState>,
    authed: Authed,
    Form(form): Form<GoodsForm>,
) -> PageResult {
    authed.check_form_csrf(&form.csrf)?;
    let goods = add_goods(&state, &authed, form.into_fields()?).await?;
    Ok(redirect_with(
        &format!("/goods/{}", goods.id),
        "已添加提货商品，可以继续上传图片",
    ))
}

async fn goods_edit_page(
    State(state): State<AppState>,
    authed: Authed,
    Path(goods_id): Path<i64>,
    Query(query): Query<MsgQuery>,
) -> PageResult {
    authed.require(Permission::GoodsManage)?;
    let goods = GoodsDto::from(
        &state
            .store
            .get_goods(authed.merchant_id(), goods_id)
            .await?,
    );
    Ok(render(
        &state,
        "goods_edit.html",
        &Page::new("编辑提货商品", &authed).with_message(query.msg),
        goods,
    ))
}

async fn update_goods_form(
    State(state): State<AppState>,
    authed: Authed,
    Path(goods_id): Path<i64>,
    Form(form): Form<GoodsForm>,
) -> PageResult {
    authed.check_form_csrf(&form.csrf)?;
    change_goods(&state, &authed, goods_id, form.into_fields()?).await?;
    Ok(redirect_with(&format!("/goods/{goods_id}"), "已保存"))
}

async fn add_goods_image_form(
    State(state): State<AppState>,
    authed: Authed,
    Path(goods_id): Path<i64>,
    multipart: Multipart,
) -> PageResult {
    let (bytes, csrf) = read_image_upload(multipart).await?;
    authed.check_form_csrf(&csrf)?;
    store_image(&state, &authed, goods_id, &bytes).await?;
    Ok(redirect_with(&format!("/goods/{goods_id}"), "图片已上传"))
}

async fn delete_goods_image_form(
    State(state): State<AppState>,
    authed: Authed,
    Path((goods_id, image_id)): Path<(i64, i64)>,
    Form(form): Form<CsrfForm>,
) -> PageResult {
    authed.check_form_csrf(&form.csrf)?;
    remove_image(&state, &authed, goods_id, image_id).await?;
    Ok(redirect_with(&format!("/goods/{goods_id}"), "图片已删除"))
}

crate::cards::with_card_filter! {
    /// 对应商品 as the console posts it; the `goods_id` checkboxes repeat a
    /// key, so they are read beside this struct.
    pub struct LinkGoodsForm {
        pub csrf: String,
        #[serde(default)]
        pub mode: String,
    }
}

async fn link_goods_form(
    State(state): State<AppState>,
    authed: Authed,
    FormText(body): FormText,
) -> PageResult {
    let pairs = FormPairs::parse_any(&body)?;
    let form: LinkGoodsForm = crate::extract::parse_urlencoded(&pairs.without("goods_id"))?;
    authed.check_form_csrf(&form.csrf)?;
    let goods_ids = pairs.ids("goods_id")?;
    let filter_form = form.filter_form();
    let mode = parse_mode(Some(&form.mode))?;
    let n = apply_link(
        &state,
        &authed,
        &filter_form.into_target()?,
        &goods_ids,
        mode,
    )
    .await?;
    let verb = if mode == GoodsLinkMode::Replace {
        "设置"
    } else {
        "增加"
    };
    Ok(crate::cards::back_to_cards(
        &filter_form,
        &format!("{verb}对应商品：共 {n} 张卡"),
    ))
}
