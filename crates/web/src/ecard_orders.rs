//! 电子卡密's orders in the console API (`/api/v1/marketplace-orders`): the
//! list with its filters and xlsx export, 缺货 delivered by one action, an
//! order with its cards, 手动核销 with a note and the customer's screenshot,
//! and each order's evidence (证据保留) as xlsx or PDF.

use crate::auth::Authed;
use crate::ecard_open::{order_dto, verification_dto, EcardVerificationDto, MarketplaceOrderDto};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Multipart, Path, Query};
use crate::lists::{parse_optional_date, ListDto};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use kaquan_core::auth::Permission;
use kaquan_core::clock::format_datetime;
use kaquan_core::ecard::usecases::{evidence, Evidence};
use kaquan_core::ecard::{
    DeliveredStatus, EcardOrder, Marketplace, OrderFilter, VerificationWay, VerifyEcard,
    VerifyTarget,
};
use kaquan_core::store::Page as ListPage;
use serde::{Deserialize, Serialize};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/marketplace-orders", get(list_marketplace_orders))
        .route(
            "/api/v1/marketplace-orders/export",
            get(export_marketplace_orders),
        )
        .route(
            "/api/v1/marketplace-orders/deliveries",
            post(create_waiting_deliveries),
        )
        .route(
            "/api/v1/marketplace-orders/{order_ref}",
            get(get_marketplace_order),
        )
        .route(
            "/api/v1/marketplace-orders/{order_ref}/cards/{card_id}/verification",
            post(create_ecard_manual_verification),
        )
        .route(
            "/api/v1/marketplace-orders/{order_ref}/cards/{card_id}/proof",
            get(get_ecard_proof),
        )
        .route(
            "/api/v1/marketplace-orders/{order_ref}/evidence",
            get(export_ecard_evidence),
        )
        .route(
            "/api/v1/marketplace-orders/{order_ref}/delivery-qr",
            get(get_delivery_qr),
        )
}

/// Most orders one export holds.
pub const ORDERS_EXPORT_MAX: i64 = 100_000;

#[derive(Deserialize, Default, Clone, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OrderQuery {
    /// `pinduoduo`, `taobao`, `douyin`, `xianyu` or `own`.
    #[param(pattern = "^(|pinduoduo|taobao|douyin|xianyu|own)$")]
    pub marketplace: Option<String>,
    /// Part of the marketplace's order id.
    #[param(max_length = 64)]
    pub order_id: Option<String>,
    pub product_id: Option<i64>,
    /// Orders with a card that is `unverified`, `verified`, `expired` or `refunded` now.
    #[param(pattern = "^(|unverified|verified|expired|refunded)$")]
    pub status: Option<String>,
    /// `1`: orders with a line waiting for stock (缺货).
    #[param(pattern = "^(|0|1)$")]
    pub out_of_stock: Option<String>,
    /// Received from this day (`YYYY-MM-DD`).
    pub from: Option<String>,
    /// Received until this day, inclusive.
    pub to: Option<String>,
    #[param(minimum = 1)]
    pub page: Option<i64>,
    #[param(minimum = 1, maximum = 200)]
    pub page_size: Option<i64>,
    /// The console's flash message (pages only).
    #[param(max_length = 200)]
    pub msg: Option<String>,
}

pub(crate) fn order_filter(authed: &Authed, q: &OrderQuery) -> ApiResult<OrderFilter> {
    let some = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let marketplace = match some(&q.marketplace) {
        None => None,
        Some(code) => {
            Some(Marketplace::parse(&code).ok_or_else(|| ApiError::invalid("未知的平台"))?)
        }
    };
    let status = match some(&q.status) {
        None => None,
        Some(code) => Some(DeliveredStatus::parse(&code).ok_or_else(|| {
            ApiError::invalid("status 应为 unverified、verified、expired 或 refunded")
        })?),
    };
    let order_id = some(&q.order_id);
    if let Some(id) = &order_id {
        crate::extract::check_chars("order_id", id, kaquan_core::text::SEARCH_CHARS_MAX)?;
    }
    Ok(OrderFilter {
        merchant_id: authed.merchant_id(),
        marketplace,
        order_id,
        product_id: q.product_id,
        status,
        out_of_stock: q.out_of_stock.as_deref() == Some("1"),
        from: parse_optional_date(q.from.as_deref(), "开始日期", false)?,
        to: parse_optional_date(q.to.as_deref(), "结束日期", true)?.map(|end| end + 1),
        now: crate::now(),
    })
}

pub(crate) async fn orders_page(
    state: &AppState,
    authed: &Authed,
    query: &OrderQuery,
) -> ApiResult<(Vec<EcardOrder>, i64, ListPage)> {
    authed.require(Permission::EcardsManage)?;
    let filter = order_filter(authed, query)?;
    let page = ListPage::new(query.page, query.page_size);
    let (orders, total) = state.store.list_ecard_orders(&filter, page).await?;
    Ok((orders, total, page))
}

async fn list_marketplace_orders(
    State(state): State<AppState>,
    authed: Authed,
    Query(query): Query<OrderQuery>,
) -> ApiResult<Json<ListDto<MarketplaceOrderDto>>> {
    let (orders, total, page) = orders_page(&state, &authed, &query).await?;
    let mut items = Vec::with_capacity(orders.len());
    for order in &orders {
        items.push(order_dto(&state, order).await?);
    }
    Ok(Json(ListDto::new(items, total, page)))
}

async fn get_marketplace_order(
    State(state): State<AppState>,
    authed: Authed,
    Path(order_ref): Path<i64>,
) -> ApiResult<Json<MarketplaceOrderDto>> {
    authed.require(Permission::EcardsManage)?;
    let order = state
        .store
        .get_ecard_order(authed.merchant_id(), order_ref)
        .await?;
    Ok(Json(order_dto(&state, &order).await?))
}

/// The order list as xlsx: one row per delivered card (or per line
/// without cards), secrets masked.
async fn export_marketplace_orders(
    State(state): State<AppState>,
    authed: Authed,
    Query(query): Query<OrderQuery>,
) -> ApiResult<Response> {
    authed.require(Permission::EcardsManage)?;
    let filter = order_filter(&authed, &query)?;
    let xlsx = |e: rust_xlsxwriter::XlsxError| ApiError::Internal(format!("xlsx: {e}"));
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let sheet = workbook.add_worksheet();
    let titles = [
        "平台",
        "订单号",
        "订单行",
        "商品",
        "数量",
        "发货",
        "卡号/卡密",
        "状态",
        "发货时间",
        "有效期至",
        "核销时间",
        "核销方式",
        "退款时间",
        "首次查看",
    ];
    for (col, title) in authed.export_lang.headers(&titles).iter().enumerate() {
        sheet.write_string(0, col as u16, title).map_err(xlsx)?;
    }
    let (mut row, now) = (0u32, crate::now());
    let time = |t: Option<i64>| t.map(format_datetime).unwrap_or_default();
    for page_number in 1.. {
        let page = ListPage::new(Some(page_number), Some(kaquan_core::store::PAGE_SIZE_MAX));
        let (orders, total) = state.store.list_ecard_orders(&filter, page).await?;
        if total > ORDERS_EXPORT_MAX {
            return Err(ApiError::invalid(format!(
                "一次最多导出 {ORDERS_EXPORT_MAX} 个订单，请缩小筛选范围"
            )));
        }
        for order in &orders {
            for line in &order.lines {
                let lang = authed.export_lang;
                let head = [
                    lang.text(order.marketplace.label_zh()),
                    order.order_id.clone(),
                    line.line_id.clone(),
                    line.product_name.clone(),
                    line.quantity.to_string(),
                    lang.text(line.state().map_or("", |s| s.label_zh())),
                ];
                let cards: Vec<[String; 8]> = line
                    .cards
                    .iter()
                    .map(|c| {
                        [
                            format!("••••{}", c.tail),
                            lang.text(c.status(now).label_zh()),
                            format_datetime(c.delivered_at),
                            format_datetime(c.facts.valid_until),
                            time(c.facts.verified_at),
                            lang.text(c.verified_way.map_or("", VerificationWay::label_zh)),
                            time(c.facts.refunded_at),
                            time(c.revealed_at),
                        ]
                    })
                    .collect();
                for card in cards
                    .iter()
                    .map(Some)
                    .chain(cards.is_empty().then_some(None))
                {
                    row += 1;
                    let tail = card.cloned().unwrap_or_default();
                    for (col, cell) in head.iter().chain(tail.iter()).enumerate() {
                        let cell = crate::exports::escape_formula(cell);
                        sheet.write_string(row, col as u16, cell).map_err(xlsx)?;
                    }
                }
            }
        }
        if orders.len() < page.page_size as usize {
            break;
        }
    }
    let bytes = workbook.save_to_buffer().map_err(xlsx)?;
    let audit = authed.audit(
        "export_ecard_orders",
        String::new(),
        format!("n_rows={row}"),
    );
    state.store.append_audit(&audit).await?;
    Ok(crate::exports::download(
        bytes,
        "电子卡密订单.xlsx",
        crate::openapi::XLSX,
    ))
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"delivered_lines": 3}))]
pub struct WaitingDeliveredDto {
    /// 缺货 lines now delivered.
    pub delivered_lines: i64,
}

/// 补发缺货: delivers every 缺货 line that stock now covers.
async fn create_waiting_deliveries(
    State(state): State<AppState>,
    authed: Authed,
) -> ApiResult<Json<WaitingDeliveredDto>> {
    authed.require(Permission::EcardsManage)?;
    let delivered_lines = state
        .store
        .deliver_waiting(authed.merchant_id(), &authed.actor(), crate::now())
        .await?;
    Ok(Json(WaitingDeliveredDto { delivered_lines }))
}

/// The longest note of a manual 核销.
pub const NOTE_CHARS_MAX: usize = kaquan_core::text::REMARK_CHARS_MAX;

/// 手动核销 of one card of the order, with a note and perhaps the
/// customer's screenshot; audited.
pub(crate) async fn mark_used(
    state: &AppState,
    authed: &Authed,
    (order_ref, card_id): (i64, i64),
    note: String,
    proof: Option<Vec<u8>>,
) -> ApiResult<kaquan_core::ecard::EcardVerification> {
    authed.require(Permission::EcardsManage)?;
    kaquan_core::text::check_field("备注", &note, NOTE_CHARS_MAX).map_err(ApiError::invalid)?;
    let m = authed.merchant_id();
    let order = state.store.get_ecard_order(m, order_ref).await?;
    if !order.cards().any(|c| c.id == card_id) {
        return Err(ApiError::NotFound);
    }
    let proof = match proof.filter(|b| !b.is_empty()) {
        None => None,
        Some(bytes) => Some((crate::images::checked_image(&bytes)?.to_owned(), bytes)),
    };
    let verify = VerifyEcard {
        merchant_id: m,
        target: VerifyTarget::Delivery(card_id),
        way: VerificationWay::Manual,
        note,
        proof,
        actor: authed.actor(),
        now: crate::now(),
    };
    state
        .store
        .verify_ecard(&verify)
        .await?
        .map_err(ApiError::EcardRefused)
}

/// A manual mark's form: `note`, an optional `proof` picture, and the
/// console's `csrf`.
pub(crate) async fn read_mark(
    mut multipart: Multipart,
) -> ApiResult<(String, Option<Vec<u8>>, String)> {
    let (mut note, mut proof, mut csrf) = (String::new(), None, String::new());
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|_| ApiError::invalid("上传的表单无法解析（文件过大？）"))?
    {
        match field.name().unwrap_or("") {
            "proof" => {
                proof = Some(
                    field
                        .bytes()
                        .await
                        .map_err(|_| ApiError::invalid("图片上传不完整"))?
                        .to_vec(),
                )
            }
            name @ ("note" | "csrf") => {
                let name = name.to_owned();
                let text = field
                    .text()
                    .await
                    .map_err(|_| ApiError::invalid("表单字段无法读取"))?;
                crate::extract::check_text(&name, &text)?;
                if name == "note" {
                    note = text.trim().to_owned();
                } else {
                    csrf = text;
                }
            }
            other => return Err(crate::extract::unknown_field(other)),
        }
    }
    Ok((note, proof, csrf))
}

async fn create_ecard_manual_verification(
    State(state): State<AppState>,
    authed: Authed,
    Path((order_ref, card_id)): Path<(i64, i64)>,
    multipart: Multipart,
) -> ApiResult<(StatusCode, Json<EcardVerificationDto>)> {
    let (note, proof, _) = read_mark(multipart).await?;
    let done = mark_used(&state, &authed, (order_ref, card_id), note, proof).await?;
    let status = if done.repeated {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(verification_dto(&done))))
}

async fn get_ecard_proof(
    State(state): State<AppState>,
    authed: Authed,
    Path((order_ref, card_id)): Path<(i64, i64)>,
) -> ApiResult<Response> {
    authed.require(Permission::EcardsManage)?;
    let m = authed.merchant_id();
    let order = state.store.get_ecard_order(m, order_ref).await?;
    if !order.cards().any(|c| c.id == card_id) {
        return Err(ApiError::NotFound);
    }
    let (content_type, bytes) = state
        .store
        .get_ecard_proof(m, card_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(crate::images::image_response(content_type, bytes))
}

/// The delivery link as a QR code (PNG), for a buyer served in person or
/// on the phone; it is the cards' bearer, so it is never cached.
async fn get_delivery_qr(
    State(state): State<AppState>,
    authed: Authed,
    Path(order_ref): Path<i64>,
) -> ApiResult<Response> {
    authed.require(Permission::EcardsManage)?;
    let order = state
        .store
        .get_ecard_order(authed.merchant_id(), order_ref)
        .await?;
    let url = crate::ecard_open::delivery_url(&state, &order).await?;
    let code = qrcode::QrCode::new(url.as_bytes())
        .map_err(|e| ApiError::Internal(format!("a delivery link does not fit a QR code: {e}")))?;
    let png = crate::off_runtime(move || crate::exports::qr_png(&code, 8)).await?;
    let mut response = crate::images::image_response("image/png".into(), png);
    response.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EvidenceQuery {
    /// `xlsx` (default) or `pdf`.
    #[param(pattern = "^(|xlsx|pdf)$")]
    pub format: Option<String>,
}

/// The evidence as lines of text: the order, its cards, then every step.
pub(crate) fn evidence_lines(e: &Evidence, now: i64) -> Vec<[String; 4]> {
    let o = &e.order;
    let mut rows = vec![[
        "订单".to_owned(),
        format_datetime(o.created_at),
        format!("{} {}", o.marketplace.label_zh(), o.order_id),
        format!("买家手机 {}", o.buyer_phone),
    ]];
    for import in &e.imports {
        rows.push([
            "卡密入库".into(),
            format_datetime(import.created_at),
            import.created_by.clone(),
            format!(
                "文件 {} SHA-256 {} 共 {} 行 导入 {} 条",
                import.file_name, import.file_digest, import.n_rows, import.n_imported
            ),
        ]);
    }
    for step in &e.steps {
        let text = step.entry.text_zh();
        rows.push([
            text.action,
            format_datetime(step.entry.created_at),
            step.entry.actor.label.clone(),
            step.entry.detail.clone(),
        ]);
    }
    for line in &o.lines {
        for c in &line.cards {
            rows.push([
                "卡密现状".into(),
                format_datetime(now),
                line.product_name.clone(),
                format!(
                    "订单行 {} 卡 ••••{} {} 有效期至 {}",
                    line.line_id,
                    c.tail,
                    c.status(now).label_zh(),
                    format_datetime(c.facts.valid_until)
                ),
            ]);
        }
    }
    rows
}

/// 证据保留: an order's every step as xlsx or PDF, for a marketplace
/// dispute (未收到卡密, 卡密无效). Audited.
async fn export_ecard_evidence(
    State(state): State<AppState>,
    authed: Authed,
    Path(order_ref): Path<i64>,
    Query(query): Query<EvidenceQuery>,
) -> ApiResult<Response> {
    authed.require(Permission::EcardsManage)?;
    let pdf = match query.format.as_deref().unwrap_or("") {
        "" | "xlsx" => false,
        "pdf" => true,
        _ => return Err(ApiError::invalid("format 应为 xlsx 或 pdf")),
    };
    let m = authed.merchant_id();
    let e = evidence(state.store.as_ref(), m, order_ref).await?;
    let rows = evidence_lines(&e, crate::now());
    let title = format!(
        "电子卡密证据 {} {}",
        e.order.marketplace.label_zh(),
        e.order.order_id
    );
    let name = format!(
        "证据-{}",
        e.order
            .order_id
            .replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "_")
    );
    let audit = authed.audit(
        "export_ecard_evidence",
        format!("ecard_order={order_ref}"),
        format!("format={}", if pdf { "pdf" } else { "xlsx" }),
    );
    state.store.append_audit(&audit).await?;
    if pdf {
        let lines: Vec<String> = rows.iter().map(|r| r.join("  ")).collect();
        let bytes = crate::off_runtime(move || crate::pdf::text_pdf(&title, &lines)).await?;
        return Ok(crate::exports::download(
            bytes,
            &format!("{name}.pdf"),
            "application/pdf",
        ));
    }
    let xlsx = |e: rust_xlsxwriter::XlsxError| ApiError::Internal(format!("xlsx: {e}"));
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let sheet = workbook.add_worksheet();
    sheet.write_string(0, 0, &title).map_err(xlsx)?;
    for (col, head) in ["步骤", "时间", "操作人", "详情"].iter().enumerate() {
        sheet.write_string(1, col as u16, *head).map_err(xlsx)?;
    }
    for (i, row) in rows.iter().enumerate() {
        for (col, cell) in row.iter().enumerate() {
            let cell = crate::exports::escape_formula(cell);
            sheet
                .write_string(i as u32 + 2, col as u16, cell)
                .map_err(xlsx)?;
        }
    }
    let bytes = workbook.save_to_buffer().map_err(xlsx)?;
    Ok(crate::exports::download(
        bytes,
        &format!("{name}.xlsx"),
        crate::openapi::XLSX,
    ))
}
