//! 订单列表: pending and shipped tabs, 今天/明天/后天待发 and 今天/昨天已发,
//! filters, cancel, shipping one order inline or many from a file (all or
//! nothing), the xlsx export, carriers (物流配置) and 提货设置.

use crate::auth::Authed;
use crate::error::{ApiError, ApiResult};
use crate::exports::{self, escape_formula};
use crate::extract::{Json, Multipart, Path, Query};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use kaquan_core::auth::Permission;
use kaquan_core::clock::{end_of_day, format_date, format_datetime, parse_date, start_of_day};
use kaquan_core::pickup::order::{PickupOrder, PickupOrderFilter, Shipment};
use kaquan_core::pickup::{
    check_tracking_number, mask_name, mask_phone, Channel, OrderStatus, CARRIERS,
};
use kaquan_core::store::Page as ListPage;
use serde::{Deserialize, Serialize};
use time::Duration;

/// Most orders one shipping file may hold.
pub const SHIP_IMPORT_ROWS_MAX: usize = 20_000;
const ORDER_EXPORT_PAGE_ROWS: i64 = 2000;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/orders", get(list_orders))
        .route("/api/v1/orders/{order_id}", get(get_order))
        .route("/api/v1/orders/{order_id}/cancel", post(cancel_order))
        .route("/api/v1/orders/ship", post(ship_orders))
        .route("/api/v1/orders/ship-import", post(import_shipments))
        .route("/api/v1/orders/export", get(export_orders))
        .route("/api/v1/carriers", get(list_carriers).post(create_carrier))
}

/// An order as staff see it; personal data masked without the permission.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": 88, "card_number": "880012345678", "batch_id": 12, "goods_id": 3, "goods_name": "五常大米礼盒 5kg", "channel": "web", "channel_label": "顾客自助", "status": "pending", "status_label": "待发货", "consignee": "张三", "phone": "13800000000", "province": "浙江省", "city": "杭州市", "district": "西湖区", "address": "文三路 100 号 2 幢 301", "appointment_date": "2026-12-08", "carrier": null, "tracking_number": null, "shipped_at": null, "created_by": "", "created_at": "2026-11-30 14:05:00"}))]
pub struct OrderDto {
    pub id: i64,
    pub card_number: String,
    pub batch_id: i64,
    pub goods_id: i64,
    pub goods_name: String,
    pub channel: &'static str,
    pub channel_label: &'static str,
    pub status: &'static str,
    pub status_label: &'static str,
    pub consignee: String,
    pub phone: String,
    pub province: String,
    pub city: String,
    pub district: String,
    pub address: String,
    pub appointment_date: Option<String>,
    pub carrier: Option<String>,
    pub tracking_number: Option<String>,
    pub shipped_at: Option<String>,
    pub created_by: String,
    pub created_at: String,
}

impl OrderDto {
    pub fn new(o: &PickupOrder, show_personal_data: bool) -> Self {
        let c = &o.consignee;
        let (consignee, phone, address) = if show_personal_data {
            (c.name.clone(), c.phone.clone(), c.address.clone())
        } else {
            (
                mask_name(&c.name),
                mask_phone(&c.phone),
                if c.address.is_empty() {
                    String::new()
                } else {
                    "****".into()
                },
            )
        };
        Self {
            id: o.id,
            card_number: o.card_number.clone(),
            batch_id: o.batch_id,
            goods_id: o.goods_id,
            goods_name: o.goods_name.clone(),
            channel: o.channel.code(),
            channel_label: o.channel.label_zh(),
            status: o.status.code(),
            status_label: o.status.label_zh(),
            consignee,
            phone,
            province: c.province.clone(),
            city: c.city.clone(),
            district: c.district.clone(),
            address,
            appointment_date: o.appointment_date.clone(),
            carrier: o.carrier.clone(),
            tracking_number: o.tracking_number.clone(),
            shipped_at: o.shipped_at.map(format_datetime),
            created_by: o.created_by.clone(),
            created_at: format_datetime(o.created_at),
        }
    }
}

/// Order filters as a query string carries them; empty means "any".
#[derive(Deserialize, Serialize, Default, Clone, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OrderQuery {
    /// `pending`, `shipped`, `picked_up`, `cancelled`, or empty for all.
    #[serde(default)]
    #[param(
        pattern = "^(|pending|shipped|picked_up|cancelled)$",
        example = "pending"
    )]
    pub status: String,
    /// `today`, `tomorrow`, `day_after` (to ship, by appointment date),
    /// `overdue` (逾期待发: due before today, not shipped), `placed_today`,
    /// `placed_yesterday` (by order date), `shipped_today`, `shipped_yesterday`.
    #[serde(default)]
    #[param(
        pattern = "^(|today|tomorrow|day_after|overdue|placed_today|placed_yesterday|shipped_today|shipped_yesterday)$",
        example = "tomorrow"
    )]
    pub quick: String,
    /// The cards' batch id.
    #[serde(default)]
    #[param(pattern = "^[0-9]*$", example = "12")]
    pub batch_id: String,
    /// The chosen goods' id.
    #[serde(default)]
    #[param(pattern = "^[0-9]*$", example = "3")]
    pub goods_id: String,
    /// `web` (the customer's page), `store` (到店提货), `phone` (电话提货) or `api`.
    #[serde(default)]
    #[param(pattern = "^(|web|store|phone|api)$", example = "web")]
    pub channel: String,
    /// Orders placed on or after this day, `YYYY-MM-DD` (2000–2199).
    #[serde(default)]
    #[param(pattern = "^([0-9]{4}-[0-9]{2}-[0-9]{2})?$", example = "2026-11-01")]
    pub date_from: String,
    /// Orders placed on or before this day, `YYYY-MM-DD` (2000–2199).
    #[serde(default)]
    #[param(pattern = "^([0-9]{4}-[0-9]{2}-[0-9]{2})?$", example = "2026-11-30")]
    pub date_until: String,
    /// Part of the card number.
    #[serde(default)]
    #[param(max_length = 64, example = "0001")]
    pub card_number: String,
    /// Part of the consignee's phone.
    #[serde(default)]
    #[param(max_length = 64, example = "1380")]
    pub phone: String,
    /// The list's page (not part of the filter).
    #[serde(default, skip_serializing)]
    pub page: Option<String>,
    /// A flash message a redirect left.
    #[serde(default, skip_serializing)]
    pub msg: Option<String>,
}

pub(crate) fn int(text: &str, field: &str) -> ApiResult<Option<i64>> {
    match text.trim() {
        "" => Ok(None),
        t => t
            .parse()
            .map(Some)
            .map_err(|_| ApiError::invalid(format!("{field}应为整数"))),
    }
}

fn date(text: &str, field: &str) -> ApiResult<Option<time::Date>> {
    match text.trim() {
        "" => Ok(None),
        t => parse_date(t).map(Some).ok_or_else(|| {
            ApiError::invalid(format!(
                "{field}应为 {}",
                kaquan_core::clock::DATE_FORMAT_HINT
            ))
        }),
    }
}

impl OrderQuery {
    /// The filter, with quick filters resolved against `now` in the merchant's time zone.
    pub fn to_filter(&self, now: i64) -> ApiResult<PickupOrderFilter> {
        for (field, text) in [("card_number", &self.card_number), ("phone", &self.phone)] {
            crate::extract::check_chars(field, text, kaquan_core::text::SEARCH_CHARS_MAX)?;
        }
        let mut filter = PickupOrderFilter {
            status: match self.status.trim() {
                "" => None,
                code => Some(
                    OrderStatus::parse(code).ok_or_else(|| ApiError::invalid("未知的订单状态"))?,
                ),
            },
            batch_id: int(&self.batch_id, "批次号")?,
            goods_id: int(&self.goods_id, "商品")?,
            channel: match self.channel.trim() {
                "" => None,
                code => {
                    Some(Channel::parse(code).ok_or_else(|| ApiError::invalid("未知的提货方式"))?)
                }
            },
            created_from: date(&self.date_from, "开始日期")?.map(start_of_day),
            created_until: date(&self.date_until, "结束日期")?.map(end_of_day),
            card_number: Some(self.card_number.trim().to_owned()).filter(|s| !s.is_empty()),
            phone: Some(self.phone.trim().to_owned()).filter(|s| !s.is_empty()),
            ..Default::default()
        };
        let today = parse_date(&format_date(now)).expect("a formatted date parses");
        let to_ship = |days: i64, filter: &mut PickupOrderFilter| {
            let day = (today + Duration::days(days)).to_string();
            filter.status = Some(OrderStatus::Pending);
            filter.appointment_from = Some(day.clone());
            filter.appointment_until = Some(day);
        };
        match self.quick.trim() {
            "" => {}
            "today" => to_ship(0, &mut filter),
            "tomorrow" => to_ship(1, &mut filter),
            "day_after" => to_ship(2, &mut filter),
            "overdue" => {
                filter.status = Some(OrderStatus::Pending);
                filter.due_before = Some((today.to_string(), start_of_day(today)));
            }
            "placed_today" => {
                filter.created_from = Some(start_of_day(today));
            }
            "placed_yesterday" => {
                filter.created_from = Some(start_of_day(today - Duration::days(1)));
                filter.created_until = Some(end_of_day(today - Duration::days(1)));
            }
            "shipped_today" | "shipped_yesterday" => {
                let day = if self.quick.trim() == "shipped_today" {
                    today
                } else {
                    today - Duration::days(1)
                };
                filter.status = Some(OrderStatus::Shipped);
                filter.shipped_from = Some(start_of_day(day));
                filter.shipped_until = Some(end_of_day(day));
            }
            _ => return Err(ApiError::invalid("未知的快捷筛选")),
        }
        // 待发 is worked through by due date, the soonest first.
        filter.soonest_due_first = filter.status == Some(OrderStatus::Pending);
        Ok(filter)
    }
}

/// The filter of a tab of 订单列表 (a status and a quick filter) at `now`.
pub(crate) fn tab_filter(status: &str, quick: &str, now: i64) -> ApiResult<PickupOrderFilter> {
    OrderQuery {
        status: status.into(),
        quick: quick.into(),
        ..Default::default()
    }
    .to_filter(now)
}

/// The order list's query: the filter, the page and a flash message.
pub type OrderListQuery = OrderQuery;

pub type OrderListDto = crate::lists::ListDto<OrderDto>;

pub(crate) async fn load_orders(
    state: &AppState,
    authed: &Authed,
    query: &OrderQuery,
    page: Option<&str>,
) -> ApiResult<OrderListDto> {
    authed.require(Permission::OrdersManage)?;
    let filter = query.to_filter(crate::now())?;
    let page = ListPage::new(int(page.unwrap_or(""), "页码")?, None);
    let (orders, total) = state
        .store
        .list_orders(authed.merchant_id(), &filter, page)
        .await?;
    let show = authed.can(Permission::PersonalDataView);
    Ok(OrderListDto {
        items: orders.iter().map(|o| OrderDto::new(o, show)).collect(),
        total,
        page: page.page,
        page_size: page.page_size,
    })
}

async fn list_orders(
    State(state): State<AppState>,
    authed: Authed,
    Query(query): Query<OrderListQuery>,
) -> ApiResult<Json<OrderListDto>> {
    Ok(Json(
        load_orders(&state, &authed, &query, query.page.as_deref()).await?,
    ))
}

async fn get_order(
    State(state): State<AppState>,
    authed: Authed,
    Path(order_id): Path<i64>,
) -> ApiResult<Json<OrderDto>> {
    authed.require(Permission::OrdersManage)?;
    let order = state
        .store
        .get_order(authed.merchant_id(), order_id)
        .await?;
    Ok(Json(OrderDto::new(
        &order,
        authed.can(Permission::PersonalDataView),
    )))
}

pub(crate) async fn cancel(state: &AppState, authed: &Authed, order_id: i64) -> ApiResult<()> {
    authed.require(Permission::OrdersManage)?;
    let audit = authed.audit("cancel_order", format!("order={order_id}"), String::new());
    state
        .store
        .cancel_order(authed.merchant_id(), order_id, &audit)
        .await
        .map_err(|e| match e {
            kaquan_core::StoreError::Conflict(_) => {
                ApiError::Conflict("只能取消未发货的订单".into())
            }
            other => other.into(),
        })
}

async fn cancel_order(
    State(state): State<AppState>,
    authed: Authed,
    Path(order_id): Path<i64>,
) -> ApiResult<StatusCode> {
    cancel(&state, &authed, order_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, Clone, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"order_id": 88, "carrier": "顺丰速运", "tracking_number": "SF1234567890123"}))]
pub struct ShipmentDto {
    pub order_id: i64,
    pub carrier: String,
    pub tracking_number: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"shipments": [{"order_id": 88, "carrier": "顺丰速运", "tracking_number": "SF1234567890123"}]}))]
pub struct ShipRequest {
    pub shipments: Vec<ShipmentDto>,
}

/// Checks the carrier names and tracking numbers; errors name the line.
async fn validate_shipments(
    state: &AppState,
    authed: &Authed,
    rows: &[(usize, ShipmentDto)],
) -> ApiResult<Vec<Shipment>> {
    let merchant_carriers = state.store.list_carriers(authed.merchant_id()).await?;
    let known =
        |name: &str| CARRIERS.contains(&name) || merchant_carriers.iter().any(|c| c == name);
    let mut errors = Vec::new();
    let mut shipments = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (line, row) in rows {
        let carrier = row.carrier.trim();
        let mut problems = Vec::new();
        if !known(carrier) {
            problems.push(format!("未知的物流公司“{carrier}”（可在物流配置中添加）"));
        }
        let tracking = check_tracking_number(&row.tracking_number)
            .map_err(|e| problems.push(e))
            .ok();
        if !seen.insert(row.order_id) {
            problems.push("订单号重复".into());
        }
        if problems.is_empty() {
            shipments.push(Shipment {
                order_id: row.order_id,
                carrier: carrier.to_owned(),
                tracking_number: tracking.unwrap_or_default(),
            });
        } else {
            errors.push(kaquan_core::batch::usecases::RowError {
                line: *line,
                message: problems.join("；"),
            });
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::ImportRows(errors));
    }
    Ok(shipments)
}

pub(crate) async fn ship(
    state: &AppState,
    authed: &Authed,
    rows: &[(usize, ShipmentDto)],
) -> ApiResult<i64> {
    authed.require(Permission::OrdersManage)?;
    let shipments = validate_shipments(state, authed, rows).await?;
    if shipments.is_empty() {
        return Err(ApiError::invalid("没有要发货的订单"));
    }
    let audit = authed.audit(
        "ship_orders",
        format!("{} orders", shipments.len()),
        String::new(),
    );
    state
        .store
        .ship_orders(authed.merchant_id(), &shipments, crate::now(), &audit)
        .await
        .map_err(|e| match e {
            kaquan_core::StoreError::Conflict(kaquan_core::Conflict::OrderNotPending {
                order_id,
            }) => {
                let line = rows
                    .iter()
                    .find(|(_, r)| r.order_id == order_id)
                    .map(|(l, _)| *l)
                    .unwrap_or(0);
                ApiError::ImportRows(vec![kaquan_core::batch::usecases::RowError {
                    line,
                    message: format!("订单 {order_id} 不存在或不是待发货订单"),
                }])
            }
            other => other.into(),
        })
}

async fn ship_orders(
    State(state): State<AppState>,
    authed: Authed,
    Json(body): Json<ShipRequest>,
) -> ApiResult<Json<crate::lists::ChangedDto>> {
    let rows: Vec<(usize, ShipmentDto)> = body
        .shipments
        .into_iter()
        .enumerate()
        .map(|(i, s)| (i + 1, s))
        .collect();
    Ok(Json(crate::lists::ChangedDto {
        n_cards: ship(&state, &authed, &rows).await?,
    }))
}

/// Reads a filled shipping file: header row, then 订单号, 物流公司, 运单号.
pub(crate) fn parse_shipping_file(
    file_name: &str,
    bytes: &[u8],
) -> ApiResult<Vec<(usize, ShipmentDto)>> {
    let mut rows = crate::tables::parse_rows(file_name, bytes, 3)?.into_iter();
    let Some((_, header)) = rows.next() else {
        return Err(ApiError::invalid("文件是空的"));
    };
    // The columns by their headers, so the 订单导出 file itself can be filled
    // in and imported back; otherwise 订单号, 物流公司, 运单号 in that order.
    // An export in English is read back by its English headers too.
    let column = |name: &str, default: usize| {
        let english = crate::i18n::Lang::En.text(name);
        header
            .iter()
            .position(|h| h.trim() == name || h.trim() == english)
            .unwrap_or(default)
    };
    let (id_col, carrier_col, tracking_col) = (
        column("订单号", 0),
        column("物流公司", 1),
        column("运单号", 2),
    );
    let rows: Vec<_> = rows.collect();
    if rows.len() > SHIP_IMPORT_ROWS_MAX {
        return Err(ApiError::invalid(format!(
            "一次最多导入 {SHIP_IMPORT_ROWS_MAX} 个订单"
        )));
    }
    let cell = |cells: &[String], idx: usize| cells.get(idx).cloned().unwrap_or_default();
    let mut errors = Vec::new();
    let mut out = Vec::new();
    for (line, cells) in rows {
        // Rows of the exported file without a tracking number are not shipped yet.
        if cell(&cells, tracking_col).trim().is_empty()
            && cell(&cells, carrier_col).trim().is_empty()
        {
            continue;
        }
        match cell(&cells, id_col).trim().parse::<i64>() {
            Ok(order_id) => out.push((
                line,
                ShipmentDto {
                    order_id,
                    carrier: cell(&cells, carrier_col),
                    tracking_number: cell(&cells, tracking_col),
                },
            )),
            Err(_) => errors.push(kaquan_core::batch::usecases::RowError {
                line,
                message: "订单号应为数字".into(),
            }),
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::ImportRows(errors));
    }
    Ok(out)
}

pub(crate) async fn read_file(mut multipart: Multipart) -> ApiResult<(String, Vec<u8>, String)> {
    let (mut name, mut bytes, mut csrf) = (String::new(), Vec::new(), String::new());
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|_| ApiError::invalid("上传的表单无法解析（文件过大？）"))?
    {
        match field.name() {
            Some("file") => {
                name = field.file_name().unwrap_or("").to_owned();
                bytes = field
                    .bytes()
                    .await
                    .map_err(|_| ApiError::invalid("文件上传不完整"))?
                    .to_vec();
            }
            Some("csrf") => {
                csrf = field
                    .text()
                    .await
                    .map_err(|_| ApiError::invalid("表单字段无法读取"))?
            }
            other => return Err(crate::extract::unknown_field(other.unwrap_or(""))),
        }
    }
    if bytes.is_empty() {
        return Err(ApiError::invalid("请选择要导入的文件"));
    }
    Ok((name, bytes, csrf))
}

async fn import_shipments(
    State(state): State<AppState>,
    authed: Authed,
    multipart: Multipart,
) -> ApiResult<Json<crate::lists::ChangedDto>> {
    let (name, bytes, _) = read_file(multipart).await?;
    let rows = crate::off_runtime(move || parse_shipping_file(&name, &bytes)).await??;
    Ok(Json(crate::lists::ChangedDto {
        n_cards: ship(&state, &authed, &rows).await?,
    }))
}

fn order_cells(o: &OrderDto, lang: crate::i18n::Lang) -> Vec<String> {
    vec![
        o.id.to_string(),
        lang.text(o.status_label),
        lang.text(o.channel_label),
        o.card_number.clone(),
        escape_formula(&o.goods_name),
        escape_formula(&o.consignee),
        escape_formula(&o.phone),
        escape_formula(&o.province),
        escape_formula(&o.city),
        escape_formula(&o.district),
        escape_formula(&o.address),
        o.appointment_date.clone().unwrap_or_default(),
        escape_formula(o.carrier.as_deref().unwrap_or("")),
        o.tracking_number.clone().unwrap_or_default(),
        o.shipped_at.clone().unwrap_or_default(),
        o.created_at.clone(),
    ]
}

const ORDER_HEADERS: [&str; 16] = [
    "订单号",
    "状态",
    "提货方式",
    "卡号",
    "商品",
    "收货人",
    "电话",
    "省",
    "市",
    "区/县",
    "详细地址",
    "预约发货日期",
    "物流公司",
    "运单号",
    "发货时间",
    "下单时间",
];

/// 订单导出: the filtered orders as xlsx; fill 物流公司 and 运单号 and import it back to ship.
async fn export_orders(
    State(state): State<AppState>,
    authed: Authed,
    Query(query): Query<OrderListQuery>,
) -> ApiResult<Response> {
    authed.require(Permission::OrdersManage)?;
    let filter = query.to_filter(crate::now())?;
    let show = authed.can(Permission::PersonalDataView);
    let xlsx_err = |e: rust_xlsxwriter::XlsxError| ApiError::Internal(format!("xlsx: {e}"));
    let path = exports::temp_export_path("xlsx");
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let sheet = workbook
        .add_worksheet_with_constant_memory()
        .map_err(xlsx_err)?;
    for (c, h) in authed
        .export_lang
        .headers(&ORDER_HEADERS)
        .iter()
        .enumerate()
    {
        sheet.write_string(0, c as u16, h).map_err(xlsx_err)?;
    }
    let (mut after, mut row, mut n) = (0i64, 1u32, 0i64);
    loop {
        let page = state
            .store
            .orders_after(authed.merchant_id(), &filter, after, ORDER_EXPORT_PAGE_ROWS)
            .await?;
        let Some(last) = page.last() else { break };
        after = last.id;
        for order in &page {
            for (c, cell) in order_cells(&OrderDto::new(order, show), authed.export_lang)
                .iter()
                .enumerate()
            {
                sheet.write_string(row, c as u16, cell).map_err(xlsx_err)?;
            }
            row += 1;
            n += 1;
        }
    }
    workbook.save(&path).map_err(xlsx_err)?;
    let mut audit = authed.audit(
        "export_orders",
        filter
            .status
            .map(|s| format!("status={}", s.code()))
            .unwrap_or_default(),
        String::new(),
    );
    audit.n_affected = n;
    state.store.append_audit(&audit).await?;
    exports::stream_file(&path, "订单导出.xlsx", exports::XLSX_CONTENT_TYPE).await
}

pub(crate) async fn all_carriers(state: &AppState, merchant_id: i64) -> ApiResult<Vec<String>> {
    let mut carriers: Vec<String> = CARRIERS.iter().map(|c| (*c).to_owned()).collect();
    carriers.extend(state.store.list_carriers(merchant_id).await?);
    Ok(carriers)
}

async fn list_carriers(
    State(state): State<AppState>,
    authed: Authed,
) -> ApiResult<Json<Vec<String>>> {
    authed.require(Permission::OrdersManage)?;
    Ok(Json(all_carriers(&state, authed.merchant_id()).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "同城闪送"}))]
pub struct CarrierRequest {
    pub name: String,
}

pub(crate) async fn add_carrier(state: &AppState, authed: &Authed, name: &str) -> ApiResult<()> {
    authed.require(Permission::OrdersManage)?;
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 32 || CARRIERS.contains(&name) {
        return Err(ApiError::invalid(
            "物流公司名称须为 1–32 个字，且不能与常用物流公司重名",
        ));
    }
    state
        .store
        .add_carrier(authed.merchant_id(), name)
        .await
        .map_err(|e| match e {
            kaquan_core::StoreError::Conflict(_) => ApiError::Conflict("已有同名物流公司".into()),
            other => other.into(),
        })?;
    state
        .store
        .append_audit(&authed.audit("create_carrier", name.to_owned(), String::new()))
        .await?;
    Ok(())
}

async fn create_carrier(
    State(state): State<AppState>,
    authed: Authed,
    Json(body): Json<CarrierRequest>,
) -> ApiResult<(StatusCode, Json<CarrierDto>)> {
    add_carrier(&state, &authed, &body.name).await?;
    Ok((
        StatusCode::CREATED,
        Json(CarrierDto {
            name: body.name.trim().to_owned(),
        }),
    ))
}

/// A carrier the merchant added.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"name": "同城闪送"}))]
pub struct CarrierDto {
    pub name: String,
}
