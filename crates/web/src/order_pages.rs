//! 订单列表 in the console: the tabs a clerk works from (待发, 逾期待发, the
//! next days, 已发) with their counts, filters, shipping one order inline
//! (back to the same tab) or many from a file, cancelling, and one order's page.

use crate::auth::Authed;
use crate::error::{ApiError, ApiResult, RowErrorDto};
use crate::extract::{Form, Multipart, Path, Query};
use crate::orders::*;
use crate::pages::{render, Page, PageResult};
use crate::AppState;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use kaquan_core::auth::Permission;
use kaquan_core::pickup::Channel;
use serde::{Deserialize, Serialize};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/orders", get(orders_page))
        .route("/orders/{order_id}/ship", post(ship_order_form))
        .route("/orders/{order_id}/cancel", post(cancel_order_form))
        .route("/orders/ship-import", post(import_shipments_form))
        .route("/orders/{order_id}", get(order_page))
}

/// A tab of the order list with how many orders it holds.
#[derive(Serialize)]
struct OrderTab {
    id: &'static str,
    label: &'static str,
    status: &'static str,
    quick: &'static str,
    count: i64,
    active: bool,
}

/// The tabs a clerk works from: 待发 and 逾期待发, the next days to ship (by
/// appointment date, or by order date when the shop asks for none), the
/// shipped days and 全部, each with its count.
async fn order_tabs(
    state: &AppState,
    authed: &Authed,
    query: &OrderQuery,
) -> ApiResult<Vec<OrderTab>> {
    let settings = state
        .store
        .get_pickup_settings(authed.merchant_id())
        .await?;
    let mut tabs: Vec<(&str, &str, &str, &str)> = vec![
        ("tab-pending", "待发订单", "pending", ""),
        ("tab-overdue", "逾期待发", "pending", "overdue"),
    ];
    if settings.appointment.asks_for_date() {
        tabs.extend([
            ("tab-today", "今天待发", "", "today"),
            ("tab-tomorrow", "明天待发", "", "tomorrow"),
            ("tab-day-after", "后天待发", "", "day_after"),
        ]);
    } else {
        tabs.extend([
            (
                "tab-placed-today",
                "今天下单待发",
                "pending",
                "placed_today",
            ),
            (
                "tab-placed-yesterday",
                "昨天下单待发",
                "pending",
                "placed_yesterday",
            ),
        ]);
    }
    tabs.extend([
        ("tab-shipped", "已发订单", "shipped", ""),
        ("tab-shipped-today", "今天已发", "", "shipped_today"),
        ("tab-shipped-yesterday", "昨天已发", "", "shipped_yesterday"),
        ("tab-all", "全部", "", ""),
    ]);
    let now = crate::now();
    let filters = tabs
        .iter()
        .map(|(_, _, status, quick)| tab_filter(status, quick, now))
        .collect::<ApiResult<Vec<_>>>()?;
    let counts = state
        .store
        .count_orders(authed.merchant_id(), &filters)
        .await?;
    let (status, quick) = (query.status.trim(), query.quick.trim());
    Ok(tabs
        .into_iter()
        .zip(counts)
        .map(|((id, label, tab_status, tab_quick), count)| OrderTab {
            id,
            label,
            status: tab_status,
            quick: tab_quick,
            count,
            active: tab_status == status && tab_quick == quick,
        })
        .collect())
}

#[derive(Serialize)]
struct OrdersView {
    list: OrderListDto,
    query: OrderQuery,
    query_string: String,
    tabs: Vec<OrderTab>,
    batches: Vec<(i64, String)>,
    goods: Vec<(i64, String)>,
    carriers: Vec<String>,
    channels: Vec<(&'static str, &'static str)>,
    rows: Vec<RowErrorDto>,
    error: Option<String>,
}

async fn orders_view(
    state: &AppState,
    authed: &Authed,
    query: OrderQuery,
    page: Option<&str>,
) -> ApiResult<OrdersView> {
    let list = load_orders(state, authed, &query, page).await?;
    let m = authed.merchant_id();
    let batches = crate::batches::batch_choices(state, m, &query.batch_id).await?;
    let goods = state.store.list_goods(m, false).await?;
    Ok(OrdersView {
        list,
        query_string: serde_urlencoded::to_string(&query).unwrap_or_default(),
        tabs: order_tabs(state, authed, &query).await?,
        batches,
        goods: goods.into_iter().map(|g| (g.id, g.name)).collect(),
        query,
        carriers: all_carriers(state, authed.merchant_id()).await?,
        channels: Channel::ALL
            .iter()
            .map(|c| (c.code(), c.label_zh()))
            .collect(),
        rows: Vec::new(),
        error: None,
    })
}

async fn orders_page(
    State(state): State<AppState>,
    authed: Authed,
    Query(query): Query<OrderListQuery>,
) -> PageResult {
    let page = query.page.clone();
    let view = orders_view(&state, &authed, query.clone(), page.as_deref()).await?;
    Ok(render(
        &state,
        "orders.html",
        &Page::new("订单列表", &authed).with_message(query.msg),
        view,
    ))
}

/// The pending orders, with a message and the orders an action failed on
/// (their id in `line`), as 电子面单发货 shows its outcome.
pub(crate) async fn pending_orders_page(
    state: &AppState,
    authed: &Authed,
    rows: Vec<RowErrorDto>,
    message: Option<String>,
) -> ApiResult<Response> {
    let query = OrderQuery {
        status: "pending".into(),
        ..Default::default()
    };
    let mut view = orders_view(state, authed, query, None).await?;
    view.rows = rows;
    Ok(render(
        state,
        "orders.html",
        &Page::new("订单列表", authed).with_message(message),
        view,
    ))
}

fn back_to_orders(message: &str) -> Response {
    back_to_tab(message, "")
}

/// Back to the tab and filters a form came from (`back`, the list's query
/// string: re-read as a query, so only its own fields go back), with a
/// message; to 待发 when there is none.
fn back_to_tab(message: &str, back: &str) -> Response {
    let mut query = serde_urlencoded::from_str::<OrderQuery>(back)
        .ok()
        .filter(|_| !back.is_empty())
        .unwrap_or_else(|| OrderQuery {
            status: "pending".into(),
            ..Default::default()
        });
    query.msg = None;
    query.page = None;
    let filters = serde_urlencoded::to_string(&query).unwrap_or_default();
    let msg = serde_urlencoded::to_string([("msg", message)]).unwrap_or_default();
    Redirect::to(&format!("/orders?{filters}&{msg}")).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ShipForm {
    csrf: String,
    carrier: String,
    tracking_number: String,
    /// The list's query string, to come back to the same tab.
    #[serde(default)]
    back: String,
}

async fn ship_order_form(
    State(state): State<AppState>,
    authed: Authed,
    Path(order_id): Path<i64>,
    Form(form): Form<ShipForm>,
) -> PageResult {
    authed.check_form_csrf(&form.csrf)?;
    let row = ShipmentDto {
        order_id,
        carrier: form.carrier,
        tracking_number: form.tracking_number,
    };
    match ship(&state, &authed, &[(1, row)]).await {
        Ok(_) => Ok(back_to_tab(&format!("订单 {order_id} 已发货"), &form.back)),
        Err(ApiError::ImportRows(rows)) => Ok(back_to_tab(
            &format!("订单 {order_id} 未发货：{}", rows[0].message),
            &form.back,
        )),
        Err(error) => Err(error.into()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CancelForm {
    csrf: String,
    #[serde(default)]
    back: String,
}

async fn cancel_order_form(
    State(state): State<AppState>,
    authed: Authed,
    Path(order_id): Path<i64>,
    Form(form): Form<CancelForm>,
) -> PageResult {
    authed.check_form_csrf(&form.csrf)?;
    cancel(&state, &authed, order_id).await?;
    Ok(back_to_tab(
        &format!("订单 {order_id} 已取消，卡可以重新提货"),
        &form.back,
    ))
}

async fn import_shipments_form(
    State(state): State<AppState>,
    authed: Authed,
    multipart: Multipart,
) -> PageResult {
    let (name, bytes, csrf) = read_file(multipart).await?;
    authed.check_form_csrf(&csrf)?;
    let result = match crate::off_runtime(move || parse_shipping_file(&name, &bytes)).await? {
        Ok(rows) => ship(&state, &authed, &rows).await,
        Err(error) => Err(error),
    };
    match result {
        Ok(n) => Ok(back_to_orders(&format!("批量发货：共 {n} 个订单"))),
        Err(error) => {
            let mut view = orders_view(
                &state,
                &authed,
                OrderQuery {
                    status: "pending".into(),
                    ..Default::default()
                },
                None,
            )
            .await?;
            view.error = Some(error.public_message());
            if let ApiError::ImportRows(rows) = &error {
                view.rows = rows
                    .iter()
                    .map(|r| RowErrorDto {
                        line: r.line,
                        message: r.message.clone(),
                    })
                    .collect();
            }
            let mut response = render(&state, "orders.html", &Page::new("订单列表", &authed), view);
            *response.status_mut() = error.status();
            Ok(response)
        }
    }
}

#[derive(Serialize)]
struct OrderView {
    order: OrderDto,
    carriers: Vec<String>,
}

/// One order with every detail (订单详情).
async fn order_page(
    State(state): State<AppState>,
    authed: Authed,
    Path(order_id): Path<i64>,
) -> PageResult {
    authed.require(Permission::OrdersManage)?;
    let order = state
        .store
        .get_order(authed.merchant_id(), order_id)
        .await?;
    let view = OrderView {
        order: OrderDto::new(&order, authed.can(Permission::PersonalDataView)),
        carriers: all_carriers(&state, authed.merchant_id()).await?,
    };
    Ok(render(
        &state,
        "order.html",
        &Page::new(&format!("订单 {order_id}"), &authed),
        view,
    ))
}
