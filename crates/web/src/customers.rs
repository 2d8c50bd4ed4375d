//! 顾客余额 in the console and the staff API: every customer's balance
//! (search, paging, the xlsx export), 余额明细, and 调整余额 with a reason.

use crate::approvals::Gated;
use crate::auth::Authed;
use crate::error::{ApiError, ApiResult};
use crate::exports::{download, escape_formula};
use crate::extract::{Form, Json, Path, Query};
use crate::forms::redirect_with;
use crate::lists::ListQuery;
use crate::pages::{render, Page, PageResult};
use crate::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use kaquan_core::auth::Permission;
use kaquan_core::clock::format_datetime;
use kaquan_core::customer::Customer;
use kaquan_core::ledger::LedgerTransaction;
use kaquan_core::ledger::{
    check_delta, AdjustBalance, ApiCall, IdempotencyClaim, IdempotencyKey, LedgerOp,
    REASON_LENGTH_MAX,
};
use kaquan_core::money::{format_yuan, parse_yuan};
use kaquan_core::signing;
use kaquan_core::store::Page as ListPage;
use serde::{Deserialize, Serialize};

/// Customers one balance export holds at most.
const CUSTOMERS_EXPORT_ROWS_MAX: i64 = 100_000;

/// One ledger transaction as people read it: the console (page and staff
/// API) and the customer's 余额明细. Not the partner contract, which is
/// `open_api::TransactionDto`.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"transaction_id": 44, "kind": "redeem", "kind_label": "兑换码兑换", "amount_fen": 10000, "balance_after_fen": 17500, "reference": "", "reason": "", "channel": "web", "created_at": 1790000200, "created_at_text": "2026-09-22 01:36"}))]
pub struct TransactionView {
    pub transaction_id: i64,
    pub kind: &'static str,
    pub kind_label: &'static str,
    pub amount_fen: i64,
    pub balance_after_fen: i64,
    pub reference: String,
    pub reason: String,
    pub channel: &'static str,
    pub created_at: i64,
    pub created_at_text: String,
}

impl TransactionView {
    pub fn new(t: &LedgerTransaction) -> Self {
        Self {
            transaction_id: t.id,
            kind: t.kind.code(),
            kind_label: t.kind.label_zh(),
            amount_fen: t.amount_fen,
            balance_after_fen: t.balance_after_fen,
            reference: t.reference.clone(),
            reason: t.reason.clone(),
            channel: t.channel.code(),
            created_at: t.created_at,
            created_at_text: format_datetime(t.created_at),
        }
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/customers", get(customers_page))
        .route("/customers/{customer_id}", get(customer_page))
        .route("/customers/{customer_id}/adjust", post(adjust_form))
        .route("/api/v1/customers", get(list_customers))
        .route("/api/v1/customers/export", get(export_customers))
        .route(
            "/api/v1/customers/{customer_id}/statement",
            get(list_statement),
        )
        .route(
            "/api/v1/customers/{customer_id}/adjustments",
            post(create_adjustment),
        )
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": 31, "external_id": "u-1001", "phone": "138****0000", "label": "小王", "balance_fen": 7500, "balance_yuan": "75.00", "created_at": "2026-11-30 14:05:00"}))]
pub struct CustomerDto {
    pub id: i64,
    pub external_id: Option<String>,
    pub phone: Option<String>,
    pub label: String,
    pub balance_fen: i64,
    pub balance_yuan: String,
    pub created_at: String,
}

impl CustomerDto {
    fn new(c: &Customer, personal_data: bool) -> Self {
        Self {
            id: c.id,
            external_id: c.external_id.clone(),
            phone: c.phone.as_deref().map(|p| {
                if personal_data {
                    p.to_owned()
                } else {
                    kaquan_core::pickup::mask_phone(p)
                }
            }),
            label: c.label(),
            balance_fen: c.balance_fen,
            balance_yuan: format_yuan(c.balance_fen),
            created_at: format_datetime(c.created_at),
        }
    }
}

async fn list_customers(
    State(state): State<AppState>,
    authed: Authed,
    Query(query): Query<ListQuery>,
) -> ApiResult<Json<crate::lists::ListDto<CustomerDto>>> {
    authed.require(Permission::BalancesView)?;
    let page = ListPage::new(query.page, query.page_size);
    let (items, total) = state
        .store
        .list_customers(authed.merchant_id(), &query.search()?, page)
        .await?;
    let personal = authed.can(Permission::PersonalDataView);
    Ok(Json(crate::lists::ListDto::new(
        items
            .iter()
            .map(|c| CustomerDto::new(c, personal))
            .collect(),
        total,
        page,
    )))
}

async fn list_statement(
    State(state): State<AppState>,
    authed: Authed,
    Path(customer_id): Path<i64>,
    Query(query): Query<ListQuery>,
) -> ApiResult<Json<crate::lists::ListDto<TransactionView>>> {
    authed.require(Permission::BalancesView)?;
    let page = ListPage::new(query.page, query.page_size);
    state
        .store
        .get_customer(authed.merchant_id(), customer_id)
        .await?;
    let (items, total) = state
        .store
        .list_statement(authed.merchant_id(), customer_id, page)
        .await?;
    Ok(Json(crate::lists::ListDto::new(
        items.iter().map(TransactionView::new).collect(),
        total,
        page,
    )))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"delta_fen": -500, "reason": "顾客投诉补偿冲正"}))]
pub struct AdjustmentRequest {
    /// Positive credits, negative debits; never zero.
    #[schema(minimum = -100_000_000, maximum = 100_000_000)]
    pub delta_fen: i64,
    #[schema(min_length = 1, max_length = 200)]
    pub reason: String,
}

/// Adjusts a balance by hand with a reason; the Idempotency-Key header
/// makes a retried click harmless. Above the merchant's 双人复核 threshold
/// the adjustment waits in 待审批 instead.
async fn adjust(
    state: &AppState,
    authed: &Authed,
    customer_id: i64,
    request: &AdjustmentRequest,
    idempotency: Option<IdempotencyClaim>,
) -> ApiResult<Gated<kaquan_core::ledger::LedgerTransaction>> {
    authed.require(Permission::BalancesAdjust)?;
    check_delta(request.delta_fen).map_err(ApiError::invalid)?;
    let reason = request.reason.trim();
    if reason.is_empty() || reason.chars().count() > REASON_LENGTH_MAX {
        return Err(ApiError::invalid(format!(
            "请填写调整原因（最多 {REASON_LENGTH_MAX} 个字）"
        )));
    }
    if let Some(held) =
        crate::approvals::adjustment(state, authed, customer_id, request.delta_fen, reason).await?
    {
        return Ok(Gated::Held(Box::new(held)));
    }
    let transaction = post_adjustment(
        state,
        authed,
        customer_id,
        (request.delta_fen, reason),
        idempotency,
    )
    .await?;
    Ok(Gated::Done(transaction))
}

/// Posts an adjustment in `authed`'s name.
async fn post_adjustment(
    state: &AppState,
    authed: &Authed,
    customer_id: i64,
    (delta_fen, reason): (i64, &str),
    idempotency: Option<IdempotencyClaim>,
) -> ApiResult<kaquan_core::ledger::LedgerTransaction> {
    let called = state
        .store
        .post_ledger(
            &ApiCall {
                nonce: None,
                idempotency,
            },
            &LedgerOp::Adjust(AdjustBalance {
                merchant_id: authed.merchant_id(),
                customer_id,
                delta_fen,
                reason: reason.to_owned(),
                actor: authed.actor(),
                now: crate::now(),
            }),
        )
        .await?;
    called.result.map_err(ApiError::Refused)
}

/// Runs an approved adjustment once: `key` (the request's own) makes a
/// second run answer from the first.
pub(crate) async fn run_adjustment(
    state: &AppState,
    authed: &Authed,
    customer_id: i64,
    delta_fen: i64,
    reason: &str,
    key: &str,
) -> ApiResult<kaquan_core::ledger::LedgerTransaction> {
    let idempotency = IdempotencyKey::parse(key).map(|key| IdempotencyClaim {
        key,
        request_hash: signing::body_hash_hex(
            format!("adjust:{customer_id}:{delta_fen}:{reason}").as_bytes(),
        ),
    });
    post_adjustment(state, authed, customer_id, (delta_fen, reason), idempotency).await
}

async fn create_adjustment(
    State(state): State<AppState>,
    authed: Authed,
    Path(customer_id): Path<i64>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let request: AdjustmentRequest = crate::extract::parse_json(&body)?;
    let idempotency = match headers.get("idempotency-key").and_then(|v| v.to_str().ok()) {
        None => None,
        Some(text) => Some(IdempotencyClaim {
            key: IdempotencyKey::parse(text)
                .ok_or_else(|| ApiError::invalid("Idempotency-Key 须为 1–255 个可见 ASCII 字符"))?,
            request_hash: signing::body_hash_hex(
                format!("adjust:{customer_id}:{}", String::from_utf8_lossy(&body)).as_bytes(),
            ),
        }),
    };
    Ok(
        match adjust(&state, &authed, customer_id, &request, idempotency).await? {
            Gated::Done(transaction) => (
                StatusCode::CREATED,
                Json(TransactionView::new(&transaction)),
            )
                .into_response(),
            Gated::Held(request) => crate::approvals::held_answer(&request),
        },
    )
}

/// Every matching customer's balance as xlsx, for reconciliation (对账).
async fn export_customers(
    State(state): State<AppState>,
    authed: Authed,
    Query(query): Query<ListQuery>,
) -> ApiResult<Response> {
    authed.require(Permission::BalancesView)?;
    let merchant_id = authed.merchant_id();
    let search = query.search()?;
    let personal = authed.can(Permission::PersonalDataView);
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let sheet = workbook.add_worksheet();
    let xlsx = |e: rust_xlsxwriter::XlsxError| ApiError::Internal(format!("xlsx: {e}"));
    let titles = [
        "编号",
        "顾客",
        "商城顾客编号",
        "手机号",
        "余额（元）",
        "加入时间",
    ];
    for (col, title) in authed.export_lang.headers(&titles).iter().enumerate() {
        sheet.write_string(0, col as u16, title).map_err(xlsx)?;
    }
    let mut row = 0u32;
    for page_number in 1.. {
        let page = ListPage::new(Some(page_number), Some(kaquan_core::store::PAGE_SIZE_MAX));
        let (customers, total) = state
            .store
            .list_customers(merchant_id, &search, page)
            .await?;
        if total > CUSTOMERS_EXPORT_ROWS_MAX {
            return Err(ApiError::invalid(format!(
                "一次最多导出 {CUSTOMERS_EXPORT_ROWS_MAX} 位顾客：请用查询条件缩小范围"
            )));
        }
        for c in customers.iter().map(|c| CustomerDto::new(c, personal)) {
            row += 1;
            let cells = [
                c.id.to_string(),
                c.label,
                c.external_id.unwrap_or_default(),
                c.phone.unwrap_or_default(),
                c.balance_yuan,
                c.created_at,
            ];
            for (col, text) in cells.iter().enumerate() {
                sheet
                    .write_string(row, col as u16, escape_formula(text))
                    .map_err(xlsx)?;
            }
        }
        if customers.len() < page.page_size as usize {
            break;
        }
    }
    let bytes = workbook.save_to_buffer().map_err(xlsx)?;
    state
        .store
        .append_audit(&authed.audit(
            "export_customers",
            String::new(),
            format!("n_customers={row}"),
        ))
        .await?;
    Ok(download(
        bytes,
        "顾客余额.xlsx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ))
}

async fn customers_page(
    State(state): State<AppState>,
    authed: Authed,
    Query(query): Query<ListQuery>,
) -> PageResult {
    authed.require(Permission::BalancesView)?;
    let page = ListPage::new(query.page, None);
    let search = query.search()?;
    let (items, total) = state
        .store
        .list_customers(authed.merchant_id(), &search, page)
        .await?;
    let personal = authed.can(Permission::PersonalDataView);
    Ok(render(
        &state,
        "customers.html",
        &Page::new("顾客余额", &authed).with_message(query.msg),
        minijinja::context! {
            customers => items.iter().map(|c| CustomerDto::new(c, personal)).collect::<Vec<_>>(),
            search => search,
            total => total,
            page => page.page,
            pages => (total + page.page_size - 1) / page.page_size,
        },
    ))
}

async fn customer_page(
    State(state): State<AppState>,
    authed: Authed,
    Path(customer_id): Path<i64>,
    Query(query): Query<ListQuery>,
) -> PageResult {
    authed.require(Permission::BalancesView)?;
    let merchant_id = authed.merchant_id();
    let customer = state.store.get_customer(merchant_id, customer_id).await?;
    let page = ListPage::new(query.page, None);
    let (lines, total) = state
        .store
        .list_statement(merchant_id, customer_id, page)
        .await?;
    Ok(render(
        &state,
        "customer.html",
        &Page::new(&format!("顾客 {}", customer.label()), &authed).with_message(query.msg),
        minijinja::context! {
            customer => CustomerDto::new(&customer, authed.can(Permission::PersonalDataView)),
            lines => lines.iter().map(|t| {
                let dto = TransactionView::new(t);
                minijinja::context! { t => dto, amount_yuan => format_yuan(t.amount_fen), balance_after_yuan => format_yuan(t.balance_after_fen) }
            }).collect::<Vec<_>>(),
            total => total,
            page => page.page,
            pages => (total + page.page_size - 1) / page.page_size,
            can_adjust => authed.can(Permission::BalancesAdjust),
            form_key => kaquan_core::secrets::random_token_hex(12),
        },
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AdjustForm {
    csrf: String,
    direction: String,
    amount: String,
    reason: String,
    /// A key made when the page was shown: pressing the button twice adjusts once.
    form_key: String,
}

async fn adjust_form(
    State(state): State<AppState>,
    authed: Authed,
    Path(customer_id): Path<i64>,
    Form(form): Form<AdjustForm>,
) -> PageResult {
    authed.check_form_csrf(&form.csrf)?;
    let amount = parse_yuan(&form.amount)
        .ok_or_else(|| ApiError::invalid("调整金额应为金额，如 100 或 99.50"))?;
    let delta_fen = if form.direction == "debit" {
        -amount
    } else {
        amount
    };
    let request = AdjustmentRequest {
        delta_fen,
        reason: form.reason,
    };
    let idempotency =
        IdempotencyKey::parse(&format!("console-adjust-{}", form.form_key)).map(|key| {
            IdempotencyClaim {
                key,
                request_hash: signing::body_hash_hex(
                    format!("adjust:{customer_id}:{delta_fen}:{}", request.reason).as_bytes(),
                ),
            }
        });
    let t = match adjust(&state, &authed, customer_id, &request, idempotency).await? {
        Gated::Done(t) => t,
        Gated::Held(request) => {
            return Ok(redirect_with(
                &format!("/customers/{customer_id}"),
                &crate::approvals::held_message(&request),
            ))
        }
    };
    Ok(redirect_with(
        &format!("/customers/{customer_id}"),
        &format!(
            "已调整 {}，当前余额 ¥{}",
            format_yuan(t.amount_fen),
            format_yuan(t.balance_after_fen)
        ),
    ))
}
