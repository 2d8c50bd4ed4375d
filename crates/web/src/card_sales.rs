//! 商城卖卡: the mall reports a paid order for pickup cards through the
//! signed open API and receives the cards with their passwords
//! (`POST /open/v1/card-sales`, its refund `POST
//! /open/v1/card-sales/{order_id}/refund`); staff see the sales in the
//! console (卡券管理 → 商城卖卡) and through `GET /api/v1/card-sales`.

use crate::auth::Authed;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path, Query};
use crate::lists::{ListDto, PageQuery};
use crate::open_api::{respond, Signed};
use crate::pages::{render, Page, PageResult};
use crate::AppState;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use kaquan_core::auth::Permission;
use kaquan_core::card_sale::{
    self, CardSale, NewCardSale, RefundCardSale, SoldCards, SALE_CARDS_MAX,
};
use kaquan_core::clock::format_datetime;
use kaquan_core::ledger::{check_reference, Called};
use kaquan_core::pickup::mask_phone;
use kaquan_core::store::Page as ListPage;
use serde::{Deserialize, Serialize};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/open/v1/card-sales", post(create_card_sale))
        .route(
            "/open/v1/card-sales/{order_id}/refund",
            post(create_card_sale_refund),
        )
        .route("/api/v1/card-sales", get(list_card_sales))
        .route("/card-sales", get(card_sales_page))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"order_id": "M20261206001", "batch_id": 3, "quantity": 2, "phone": "13800001234", "send_sms": true}))]
pub struct CardSaleRequest {
    /// The mall's order id: reporting it again returns the same cards.
    #[schema(min_length = 1, max_length = 64, pattern = "^[!-~]+$")]
    pub order_id: String,
    /// The batch (批次) whose unsold, inactive cards are sold.
    pub batch_id: i64,
    #[schema(minimum = 1, maximum = 100)]
    pub quantity: i64,
    /// The buyer's mobile number (11 digits), kept with the sale.
    #[schema(pattern = "^1[0-9]{10}$")]
    pub phone: Option<String>,
    /// Also text the cards and passwords to `phone` (通知设置 switch D
    /// must be on); the text goes after the answer, from the outbox.
    #[serde(default)]
    pub send_sms: bool,
}

/// A sold card as the mall receives it: number, password and state.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"number": "A5880000123", "password": "4821930576", "state": "active"}))]
pub struct SoldCardDto {
    pub number: String,
    pub password: String,
    /// `active` once sold; `inactive` after a refund; `used` once picked up;
    /// `voided`.
    pub state: &'static str,
}

/// A card sale as the open API answers it (the partner contract).
#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"order_id": "M20261206001", "batch_id": 3, "batch_name": "中秋礼盒卡", "quantity": 2, "phone": "138****1234", "state": "sold", "created_at": 1796000000, "refunded_at": null, "n_refunded": 0, "cards": [{"number": "A5880000123", "password": "4821930576", "state": "active"}, {"number": "A5880000124", "password": "1093857264", "state": "active"}]}))]
pub struct CardSaleDto {
    pub order_id: String,
    pub batch_id: i64,
    pub batch_name: String,
    pub quantity: i64,
    /// Masked: the first three and last four digits.
    pub phone: String,
    /// `sold` or `refunded`.
    pub state: &'static str,
    /// Unix seconds.
    pub created_at: i64,
    pub refunded_at: Option<i64>,
    /// The cards the refund made inactive (the others were used or voided).
    pub n_refunded: i64,
    pub cards: Vec<SoldCardDto>,
}

impl CardSaleDto {
    fn new(sold: SoldCards) -> Self {
        let s = sold.sale;
        Self {
            order_id: s.order_id,
            batch_id: s.batch_id,
            batch_name: s.batch_name,
            quantity: s.quantity,
            phone: mask_phone(&s.phone),
            state: s.state.code(),
            created_at: s.created_at,
            refunded_at: s.refunded_at,
            n_refunded: s.n_refunded,
            cards: sold
                .cards
                .into_iter()
                .map(|c| SoldCardDto {
                    number: c.number,
                    password: c.password,
                    state: c.state.code(),
                })
                .collect(),
        }
    }
}

/// The answer to a sale (`201`, or `200` when replayed) or a refund
/// (`200`): never cached, for it holds passwords.
fn answer(called: Called<SoldCards>, creates: bool) -> ApiResult<Response> {
    let status = if creates && !called.replayed {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let mut response = respond(called, status, CardSaleDto::new)?;
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// Sells cards of a batch for a paid mall order; the same order again returns the same cards.
async fn create_card_sale(State(state): State<AppState>, signed: Signed) -> ApiResult<Response> {
    let request: CardSaleRequest = signed.json()?;
    let order_id = check_reference("order_id", &request.order_id).map_err(ApiError::invalid)?;
    if !(1..=SALE_CARDS_MAX).contains(&request.quantity) {
        return Err(ApiError::invalid(format!(
            "quantity 须为 1–{SALE_CARDS_MAX}"
        )));
    }
    let phone = match request.phone.as_deref().map(str::trim) {
        None | Some("") => String::new(),
        Some(phone) => kaquan_core::customer::check_mobile(phone).map_err(ApiError::invalid)?,
    };
    if request.send_sms {
        if phone.is_empty() {
            return Err(ApiError::invalid("send_sms 须同时给出顾客手机号 phone"));
        }
        let settings = state.store.get_sms_settings(signed.merchant_id).await?;
        let ready = settings.as_ref().is_some_and(|s| {
            s.secret_sealed.is_some() && s.template(kaquan_core::sms::SmsKind::CardsSold).is_some()
        });
        if !ready {
            return Err(ApiError::invalid(
                "通知设置未开启 D（商城卖卡，卡号密码发给顾客）：无法短信发卡",
            ));
        }
    }
    let call = signed.call()?;
    let sale = NewCardSale {
        merchant_id: signed.merchant_id,
        order_id,
        batch_id: request.batch_id,
        quantity: request.quantity,
        phone,
        send_sms: request.send_sms,
        actor: signed.actor(),
        now: crate::now(),
    };
    answer(
        card_sale::sell_cards(state.store.as_ref(), &state.master, &call, &sale).await?,
        true,
    )
}

/// Refunds a sale: its cards that are still active become inactive.
async fn create_card_sale_refund(
    State(state): State<AppState>,
    Path(order_id): Path<String>,
    signed: Signed,
) -> ApiResult<Response> {
    if !signed.body.is_empty() && signed.body.as_ref() != b"{}" {
        return Err(ApiError::invalid("退款请求不带请求体（或为 {}）"));
    }
    let order_id = check_reference("order_id", &order_id).map_err(ApiError::invalid)?;
    let call = signed.call()?;
    let refund = RefundCardSale {
        merchant_id: signed.merchant_id,
        order_id,
        actor: signed.actor(),
        now: crate::now(),
    };
    answer(
        card_sale::refund_card_sale(state.store.as_ref(), &state.master, &call, &refund).await?,
        false,
    )
}

/// A card sale as staff see it: card numbers and states, no passwords.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"order_id": "M20261206001", "batch_id": 3, "batch_name": "中秋礼盒卡", "quantity": 2, "phone": "138****1234", "state": "sold", "state_label": "已售出", "created_at": "2026-12-06 09:30:00", "refunded_at": null, "n_refunded": 0, "cards": [{"number": "A5880000123", "state": "active", "state_label": "已激活"}]}))]
pub struct CardSaleView {
    pub order_id: String,
    pub batch_id: i64,
    pub batch_name: String,
    pub quantity: i64,
    /// Masked unless the staff member may see personal data.
    pub phone: String,
    pub state: &'static str,
    pub state_label: &'static str,
    pub created_at: String,
    pub refunded_at: Option<String>,
    pub n_refunded: i64,
    pub cards: Vec<SoldCardView>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SoldCardView {
    pub number: String,
    pub state: &'static str,
    pub state_label: &'static str,
}

impl CardSaleView {
    fn new(s: &CardSale, show_phone: bool) -> Self {
        Self {
            order_id: s.order_id.clone(),
            batch_id: s.batch_id,
            batch_name: s.batch_name.clone(),
            quantity: s.quantity,
            phone: if show_phone {
                s.phone.clone()
            } else {
                mask_phone(&s.phone)
            },
            state: s.state.code(),
            state_label: s.state.label(),
            created_at: format_datetime(s.created_at),
            refunded_at: s.refunded_at.map(format_datetime),
            n_refunded: s.n_refunded,
            cards: s
                .cards
                .iter()
                .map(|c| SoldCardView {
                    number: c.number.clone(),
                    state: c.state.code(),
                    state_label: c.state.label_zh(),
                })
                .collect(),
        }
    }
}

async fn sales_page(
    state: &AppState,
    authed: &Authed,
    query: &PageQuery,
) -> ApiResult<ListDto<CardSaleView>> {
    authed.require(Permission::CardsView)?;
    let page = ListPage::new(query.page, query.page_size);
    let (sales, total) = state
        .store
        .list_card_sales(authed.merchant_id(), page)
        .await?;
    let show_phone = authed.can(Permission::PersonalDataView);
    Ok(ListDto::new(
        sales
            .iter()
            .map(|s| CardSaleView::new(s, show_phone))
            .collect(),
        total,
        page,
    ))
}

async fn list_card_sales(
    State(state): State<AppState>,
    authed: Authed,
    Query(query): Query<PageQuery>,
) -> ApiResult<Json<ListDto<CardSaleView>>> {
    Ok(Json(sales_page(&state, &authed, &query).await?))
}

async fn card_sales_page(
    State(state): State<AppState>,
    authed: Authed,
    Query(query): Query<PageQuery>,
) -> PageResult {
    let sales = sales_page(&state, &authed, &query).await?;
    Ok(render(
        &state,
        "card_sales.html",
        &Page::new("商城卖卡", &authed),
        minijinja::context! { sales => sales },
    ))
}
