//! The console's 电子卡密 pages: 虚拟商品 (list, 新建, a product with its
//! stock: import, generate, the masked list with 查看), 电子卡密订单 (the
//! list with filters, 补发缺货, an order with 手动核销 and its evidence), and
//! 数据分析. They call the functions the API calls.

use crate::auth::Authed;
use crate::ecard_analytics::{
    analytics, bars_svg, duration_zh, percent, AnalyticsDto, AnalyticsQuery,
};
use crate::ecard_open::{delivery_url, lines_dto, OrderLineDto};
use crate::ecard_orders::{mark_used, orders_page, read_mark, OrderQuery};
use crate::ecards::{
    self, generate_codes, import_upload, product_dto, read_stock_upload, stock_page,
    EcardProductDto, EcardProductRequest, ListingDto, StockImportDto, StockItemDto, StockQuery,
};
use crate::error::ApiError;
use crate::extract::{Form, Multipart, Path, Query};
use crate::forms::{redirect_with, MsgQuery};
use crate::lists::ListDto;
use crate::pages::{render, Page, PageResult};
use crate::AppState;
use axum::extract::State;
use axum::routing::{get, post};
use axum::Router;
use kaquan_core::auth::Permission;
use kaquan_core::clock::format_datetime;
use kaquan_core::ecard::{DeliveredStatus, DeliveryForm, Marketplace};
use serde::{Deserialize, Serialize};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ecards", get(products_page))
        .route("/ecards/new", get(new_page).post(create_form))
        .route("/ecards/orders", get(orders_list_page))
        .route("/ecards/orders/deliver", post(deliver_form))
        .route("/ecards/orders/{order_ref}", get(order_page))
        .route(
            "/ecards/orders/{order_ref}/cards/{card_id}/verify",
            post(verify_form),
        )
        .route("/ecards/analytics", get(analytics_page))
        .route("/ecards/{product_id}", get(product_page).post(update_form))
        .route("/ecards/{product_id}/stock", post(import_form))
        .route("/ecards/{product_id}/generate", post(generate_form))
}

#[derive(Serialize)]
struct Choice {
    code: &'static str,
    label: &'static str,
}

fn forms() -> Vec<Choice> {
    DeliveryForm::ALL
        .iter()
        .map(|f| Choice {
            code: f.code(),
            label: f.label_zh(),
        })
        .collect()
}

fn marketplaces() -> Vec<Choice> {
    Marketplace::ALL
        .iter()
        .map(|m| Choice {
            code: m.code(),
            label: m.label_zh(),
        })
        .collect()
}

#[derive(Serialize)]
struct ProductsView {
    products: Vec<EcardProductDto>,
}

async fn products_page(
    State(state): State<AppState>,
    authed: Authed,
    Query(query): Query<MsgQuery>,
) -> PageResult {
    let view = ProductsView {
        products: ecards::products_with_counts(&state, &authed).await?,
    };
    Ok(render(
        &state,
        "ecards.html",
        &Page::new("虚拟商品", &authed).with_message(query.msg),
        view,
    ))
}

/// What the product form holds, as typed.
#[derive(Serialize, Default)]
struct ProductFormView {
    id: Option<i64>,
    name: String,
    face_value_yuan: String,
    delivery_form: String,
    instructions: String,
    validity_mode: String,
    valid_days: String,
    valid_until: String,
    own_verification_code: bool,
    low_stock_threshold: String,
    /// One listing a line: `平台,商品ID,SKU`.
    listings: String,
    remind_days: String,
    refund_expired: bool,
}

fn form_view(dto: &EcardProductDto) -> ProductFormView {
    ProductFormView {
        id: Some(dto.id),
        name: dto.name.clone(),
        face_value_yuan: kaquan_core::money::format_yuan(dto.face_value_fen),
        delivery_form: dto.delivery_form.into(),
        instructions: dto.instructions.clone(),
        validity_mode: if dto.valid_until.is_some() {
            "until"
        } else {
            "days"
        }
        .into(),
        valid_days: dto.valid_days.map(|d| d.to_string()).unwrap_or_default(),
        valid_until: dto.valid_until.clone().unwrap_or_default(),
        own_verification_code: dto.own_verification_code,
        low_stock_threshold: dto.low_stock_threshold.to_string(),
        listings: dto
            .listings
            .iter()
            .map(|l| {
                let label = Marketplace::parse(&l.marketplace).map_or("", |m| m.label_zh());
                format!("{label},{},{}", l.product_id, l.sku_id)
                    .trim_end_matches(',')
                    .to_owned()
            })
            .collect::<Vec<_>>()
            .join("\n"),
        remind_days: dto.remind_days.to_string(),
        refund_expired: dto.refund_expired,
    }
}

#[derive(Serialize)]
struct NewView {
    form: ProductFormView,
    forms: Vec<Choice>,
    marketplaces: Vec<Choice>,
}

async fn new_page(State(state): State<AppState>, authed: Authed) -> PageResult {
    authed.require(Permission::EcardsManage)?;
    let form = ProductFormView {
        delivery_form: "number_password".into(),
        validity_mode: "days".into(),
        valid_days: "30".into(),
        low_stock_threshold: "0".into(),
        remind_days: "3".into(),
        ..Default::default()
    };
    let view = NewView {
        form,
        forms: forms(),
        marketplaces: marketplaces(),
    };
    Ok(render(
        &state,
        "ecard_form.html",
        &Page::new("新建虚拟商品", &authed),
        view,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProductForm {
    csrf: String,
    name: String,
    face_value_yuan: String,
    delivery_form: String,
    instructions: String,
    validity_mode: String,
    #[serde(default)]
    valid_days: String,
    #[serde(default)]
    valid_until: String,
    own_verification_code: Option<String>,
    #[serde(default)]
    low_stock_threshold: String,
    #[serde(default)]
    listings: String,
    #[serde(default)]
    remind_days: String,
    refund_expired: Option<String>,
}

/// The form as an API request: listings one a line, `平台,商品ID[,SKU]`,
/// the platform by its name or code.
fn request_of(form: ProductForm) -> Result<EcardProductRequest, ApiError> {
    let mut listings = Vec::new();
    for (i, line) in form
        .listings
        .lines()
        .map(str::trim)
        .enumerate()
        .filter(|(_, l)| !l.is_empty())
    {
        let parts: Vec<&str> = line.split([',', '，']).map(str::trim).collect();
        let marketplace = Marketplace::ALL.into_iter().find(|m| {
            m.code() == parts[0]
                || m.label_zh() == parts[0]
                || m.label_zh().split('/').any(|n| n == parts[0])
        });
        match (marketplace, parts.get(1)) {
            (Some(m), Some(product_id)) if parts.len() <= 3 => listings.push(ListingDto {
                marketplace: m.code().into(),
                product_id: (*product_id).to_owned(),
                sku_id: parts.get(2).copied().unwrap_or("").to_owned(),
            }),
            _ => {
                return Err(ApiError::invalid(format!(
                    "平台商品第 {} 行应为“平台,商品ID,SKU”，如“拼多多,123456,30天”",
                    i + 1
                )))
            }
        }
    }
    let number = |text: &str, what: &str| -> Result<i64, ApiError> {
        match text.trim() {
            "" => Ok(0),
            t => t
                .parse()
                .map_err(|_| ApiError::invalid(format!("{what}应为整数"))),
        }
    };
    let by_days = form.validity_mode != "until";
    Ok(EcardProductRequest {
        name: form.name,
        face_value_yuan: form.face_value_yuan,
        delivery_form: form.delivery_form,
        instructions: form.instructions,
        valid_days: by_days
            .then(|| number(&form.valid_days, "有效天数"))
            .transpose()?,
        valid_until: (!by_days).then_some(form.valid_until),
        own_verification_code: form.own_verification_code.is_some(),
        low_stock_threshold: number(&form.low_stock_threshold, "低库存预警")?,
        listings,
        remind_days: number(&form.remind_days, "过期预警天数")?,
        refund_expired: form.refund_expired.is_some(),
    })
}

async fn create_form(
    State(state): State<AppState>,
    authed: Authed,
    Form(form): Form<ProductForm>,
) -> PageResult {
    authed.check_form_csrf(&form.csrf)?;
    let product = ecards::create_product(&state, &authed, &request_of(form)?).await?;
    Ok(redirect_with(
        &format!("/ecards/{}", product.id),
        "已创建，请导入卡密",
    ))
}

async fn update_form(
    State(state): State<AppState>,
    authed: Authed,
    Path(product_id): Path<i64>,
    Form(form): Form<ProductForm>,
) -> PageResult {
    authed.check_form_csrf(&form.csrf)?;
    ecards::update_product(&state, &authed, product_id, &request_of(form)?).await?;
    Ok(redirect_with(&format!("/ecards/{product_id}"), "已保存"))
}

#[derive(Serialize)]
struct ProductView {
    product: EcardProductDto,
    form: ProductFormView,
    forms: Vec<Choice>,
    marketplaces: Vec<Choice>,
    imports: Vec<StockImportDto>,
    stock: ListDto<StockItemDto>,
    pages: i64,
    state: String,
    can_generate: bool,
    can_reveal: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProductQuery {
    msg: Option<String>,
    page: Option<i64>,
    state: Option<String>,
}

async fn product_page(
    State(state): State<AppState>,
    authed: Authed,
    Path(product_id): Path<i64>,
    Query(query): Query<ProductQuery>,
) -> PageResult {
    authed.require(Permission::EcardsManage)?;
    let m = authed.merchant_id();
    let product = state.store.get_ecard_product(m, product_id).await?;
    let counts = state
        .store
        .ecard_stock_counts(m, product_id, crate::now())
        .await?;
    let dto = product_dto(&product, Some(counts));
    let stock_query = StockQuery {
        product_id: Some(product_id),
        state: query.state.clone(),
        page: query.page,
        page_size: Some(20),
    };
    let stock = stock_page(&state, &authed, &stock_query).await?;
    let imports = state.store.list_stock_imports(m, product_id).await?;
    let view = ProductView {
        form: form_view(&dto),
        can_generate: matches!(
            product.fields.delivery_form,
            DeliveryForm::Code | DeliveryForm::QrImage
        ),
        can_reveal: authed.can(Permission::EcardsReveal),
        product: dto,
        forms: forms(),
        marketplaces: marketplaces(),
        imports: imports.iter().map(ecards::import_dto).collect(),
        pages: (stock.total + stock.page_size - 1) / stock.page_size,
        stock,
        state: query.state.unwrap_or_default(),
    };
    Ok(render(
        &state,
        "ecard.html",
        &Page::new(&product.fields.name, &authed).with_message(query.msg),
        view,
    ))
}

fn import_message(result: &ecards::StockImportResultDto) -> String {
    let mut message = format!("已导入 {} 条卡密", result.import.n_imported);
    if !result.skipped.is_empty() {
        let lines: Vec<String> = result
            .skipped
            .iter()
            .take(20)
            .map(|s| format!("第 {} 行{}", s.line, s.message))
            .collect();
        message.push_str(&format!(
            "；跳过 {} 条重复：{}",
            result.skipped.len(),
            lines.join("，")
        ));
        if result.skipped.len() > 20 {
            message.push('…');
        }
    }
    message
}

async fn import_form(
    State(state): State<AppState>,
    authed: Authed,
    Path(product_id): Path<i64>,
    multipart: Multipart,
) -> PageResult {
    let (file_name, bytes, csrf) = read_stock_upload(multipart).await?;
    authed.check_form_csrf(&csrf)?;
    let result = import_upload(&state, &authed, product_id, (file_name, bytes)).await?;
    Ok(redirect_with(
        &format!("/ecards/{product_id}"),
        &import_message(&result),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GenerateForm {
    csrf: String,
    count: String,
}

async fn generate_form(
    State(state): State<AppState>,
    authed: Authed,
    Path(product_id): Path<i64>,
    Form(form): Form<GenerateForm>,
) -> PageResult {
    authed.check_form_csrf(&form.csrf)?;
    let count = form
        .count
        .trim()
        .parse()
        .map_err(|_| ApiError::invalid("数量应为整数"))?;
    let result = generate_codes(&state, &authed, product_id, count).await?;
    Ok(redirect_with(
        &format!("/ecards/{product_id}"),
        &import_message(&result),
    ))
}

#[derive(Serialize)]
struct OrderRow {
    order_ref: i64,
    marketplace: &'static str,
    order_id: String,
    created_at: String,
    lines: Vec<OrderLineDto>,
    /// 未核销 / 已核销 / … per card, and 缺货.
    summary: String,
}

#[derive(Serialize)]
struct OrdersView {
    rows: Vec<OrderRow>,
    total: i64,
    page: i64,
    pages: i64,
    query: String,
    f: OrderFilterView,
    marketplaces: Vec<Choice>,
    statuses: Vec<Choice>,
    products: Vec<(i64, String)>,
}

#[derive(Serialize, Default)]
struct OrderFilterView {
    marketplace: String,
    order_id: String,
    product_id: Option<i64>,
    status: String,
    out_of_stock: bool,
    from: String,
    to: String,
}

fn summary(lines: &[OrderLineDto]) -> String {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for line in lines {
        if line.state == Some("out_of_stock") {
            counts.push(("缺货", line.quantity as usize));
        }
        for card in &line.cards {
            let label = DeliveredStatus::parse(card.status).map_or("", |s| s.label_zh());
            match counts.iter_mut().find(|(l, _)| *l == label) {
                Some((_, n)) => *n += 1,
                None => counts.push((label, 1)),
            }
        }
    }
    counts
        .iter()
        .map(|(l, n)| format!("{l} {n}"))
        .collect::<Vec<_>>()
        .join("，")
}

async fn orders_list_page(
    State(state): State<AppState>,
    authed: Authed,
    Query(query): Query<OrderQuery>,
) -> PageResult {
    let mut q = query.clone();
    q.page_size = Some(20);
    let (orders, total, page) = orders_page(&state, &authed, &q).await?;
    let now = crate::now();
    let rows = orders
        .iter()
        .map(|o| {
            let lines = lines_dto(o, now);
            OrderRow {
                order_ref: o.id,
                marketplace: o.marketplace.label_zh(),
                order_id: o.order_id.clone(),
                created_at: format_datetime(o.created_at),
                summary: summary(&lines),
                lines,
            }
        })
        .collect();
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    let f = OrderFilterView {
        marketplace: text(&query.marketplace),
        order_id: text(&query.order_id),
        product_id: query.product_id,
        status: text(&query.status),
        out_of_stock: query.out_of_stock.as_deref() == Some("1"),
        from: text(&query.from),
        to: text(&query.to),
    };
    let encoded = serde_urlencoded::to_string([
        ("marketplace", f.marketplace.clone()),
        ("order_id", f.order_id.clone()),
        (
            "product_id",
            f.product_id.map(|p| p.to_string()).unwrap_or_default(),
        ),
        ("status", f.status.clone()),
        (
            "out_of_stock",
            if f.out_of_stock {
                "1".into()
            } else {
                String::new()
            },
        ),
        ("from", f.from.clone()),
        ("to", f.to.clone()),
    ])
    .unwrap_or_default();
    let products = state
        .store
        .list_ecard_products(authed.merchant_id())
        .await?;
    let view = OrdersView {
        rows,
        total,
        page: page.page,
        pages: (total + page.page_size - 1) / page.page_size,
        query: encoded,
        f,
        marketplaces: marketplaces(),
        statuses: DeliveredStatus::ALL
            .iter()
            .map(|s| Choice {
                code: s.code(),
                label: s.label_zh(),
            })
            .collect(),
        products: products
            .iter()
            .map(|p| (p.id, p.fields.name.clone()))
            .collect(),
    };
    Ok(render(
        &state,
        "ecard_orders.html",
        &Page::new("电子卡密订单", &authed).with_message(query.msg),
        view,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CsrfForm {
    csrf: String,
}

async fn deliver_form(
    State(state): State<AppState>,
    authed: Authed,
    Form(form): Form<CsrfForm>,
) -> PageResult {
    authed.check_form_csrf(&form.csrf)?;
    authed.require(Permission::EcardsManage)?;
    let n = state
        .store
        .deliver_waiting(authed.merchant_id(), &authed.actor(), crate::now())
        .await?;
    let message = if n == 0 {
        "没有可补发的缺货订单（库存仍不足？）".to_owned()
    } else {
        format!("已补发 {n} 个缺货订单行")
    };
    Ok(redirect_with("/ecards/orders?out_of_stock=1", &message))
}

#[derive(Serialize)]
struct OrderView {
    order_ref: i64,
    marketplace: &'static str,
    order_id: String,
    buyer_phone: String,
    created_at: String,
    refunded_at: Option<String>,
    delivery_url: String,
    lines: Vec<OrderLineDto>,
    times: std::collections::BTreeMap<i64, [String; 5]>,
}

async fn order_page(
    State(state): State<AppState>,
    authed: Authed,
    Path(order_ref): Path<i64>,
    Query(query): Query<MsgQuery>,
) -> PageResult {
    authed.require(Permission::EcardsManage)?;
    let order = state
        .store
        .get_ecard_order(authed.merchant_id(), order_ref)
        .await?;
    let time = |t: Option<i64>| t.map(format_datetime).unwrap_or_default();
    let times = order
        .cards()
        .map(|c| {
            let way = c.verified_way.map_or("", |w| w.label_zh()).to_owned();
            (
                c.id,
                [
                    format_datetime(c.delivered_at),
                    format_datetime(c.facts.valid_until),
                    time(c.facts.verified_at),
                    way,
                    time(c.revealed_at),
                ],
            )
        })
        .collect();
    let view = OrderView {
        order_ref,
        marketplace: order.marketplace.label_zh(),
        order_id: order.order_id.clone(),
        buyer_phone: order.buyer_phone.clone(),
        created_at: format_datetime(order.created_at),
        refunded_at: order.refunded_at.map(format_datetime),
        delivery_url: delivery_url(&state, &order).await?,
        lines: lines_dto(&order, crate::now()),
        times,
    };
    let title = format!("订单 {}", order.order_id);
    Ok(render(
        &state,
        "ecard_order.html",
        &Page::new(&title, &authed).with_message(query.msg),
        view,
    ))
}

async fn verify_form(
    State(state): State<AppState>,
    authed: Authed,
    Path((order_ref, card_id)): Path<(i64, i64)>,
    multipart: Multipart,
) -> PageResult {
    let (note, proof, csrf) = read_mark(multipart).await?;
    authed.check_form_csrf(&csrf)?;
    let done = mark_used(&state, &authed, (order_ref, card_id), note, proof).await?;
    let message = if done.repeated {
        "这张卡之前已核销"
    } else {
        "已标记为已核销"
    };
    Ok(redirect_with(
        &format!("/ecards/orders/{order_ref}"),
        message,
    ))
}

#[derive(Serialize)]
struct AnalyticsView {
    a: AnalyticsDto,
    rate_chart: String,
    wait_chart: String,
    rows: Vec<[String; 8]>,
    query: String,
}

async fn analytics_page(
    State(state): State<AppState>,
    authed: Authed,
    Query(query): Query<AnalyticsQuery>,
) -> PageResult {
    let a = analytics(&state, &authed, &query).await?;
    let rate_chart = bars_svg(
        &a.products
            .iter()
            .map(|p| {
                (
                    p.name.clone(),
                    p.figures.verify_rate,
                    percent(p.figures.verify_rate),
                )
            })
            .collect::<Vec<_>>(),
    );
    let wait_chart = bars_svg(
        &a.buckets
            .iter()
            .zip(&a.total.distribution)
            .map(|(label, n)| ((*label).to_owned(), *n as f64, format!("{n} 张")))
            .collect::<Vec<_>>(),
    );
    let row = |name: String, f: &crate::ecard_analytics::FiguresDto| {
        [
            name,
            f.delivered.to_string(),
            percent(f.verify_rate),
            duration_zh(f.median_seconds),
            duration_zh(f.p90_seconds),
            percent(f.refund_rate),
            percent(f.expiry_rate),
            f.verified.to_string(),
        ]
    };
    let mut rows: Vec<[String; 8]> = a
        .products
        .iter()
        .map(|p| row(p.name.clone(), &p.figures))
        .collect();
    rows.extend(
        a.marketplaces
            .iter()
            .map(|m| row(format!("平台：{}", m.label), &m.figures)),
    );
    rows.push(row("合计".into(), &a.total));
    let query = serde_urlencoded::to_string([("from", a.from.clone()), ("to", a.to.clone())])
        .unwrap_or_default();
    let view = AnalyticsView {
        rate_chart,
        wait_chart,
        rows,
        query,
        a,
    };
    Ok(render(
        &state,
        "ecard_analytics.html",
        &Page::new("电子卡密数据分析", &authed),
        view,
    ))
}
