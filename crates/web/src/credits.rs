//! 券点 in the staff API: a merchant's 券点账户 (balances, statement,
//! purchases), 增加库存 of a 朋友的券 with credits, and the operator's
//! calls (平台运营: every merchant's account, grants, purchase
//! confirmations). The console's pages over the same functions are in
//! `credit_pages.rs`.

use crate::auth::Authed;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path, Query};
use crate::lists::{ListDto, PageQuery};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use kaquan_core::auth::Permission;
use kaquan_core::clock::format_datetime;
use kaquan_core::credit::{
    self, format_credits, BuyStock, CreditBalance, CreditPurchase, CreditTransaction, GrantCredits,
    MerchantCredits, PurchaseFilter, PurchaseState, StockPurchase,
};
use kaquan_core::store::Page as ListPage;
use serde::{Deserialize, Serialize};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/credits", get(get_credit_account))
        .route(
            "/api/v1/credits/transactions",
            get(list_credit_transactions),
        )
        .route(
            "/api/v1/credits/transactions/export",
            get(export_credit_transactions),
        )
        .route(
            "/api/v1/credits/purchases",
            get(list_credit_purchases).post(create_credit_purchase),
        )
        .route(
            "/api/v1/credits/purchases/{purchase_id}/cancel",
            post(cancel_credit_purchase),
        )
        .route(
            "/api/v1/coupon-programs/{program_id}/stock-purchases",
            get(list_stock_purchases).post(create_stock_purchase),
        )
        .route("/api/v1/credits/merchants", get(list_merchant_credits))
        .route(
            "/api/v1/credits/merchants/{merchant_id}/transactions",
            get(list_merchant_credit_transactions),
        )
        .route(
            "/api/v1/credits/merchants/{merchant_id}/grants",
            post(create_credit_grant),
        )
        .route("/api/v1/credits/requests", get(list_credit_requests))
        .route(
            "/api/v1/credits/merchants/{merchant_id}/purchases/{purchase_id}/confirm",
            post(create_credit_purchase_confirmation),
        )
        .route(
            "/api/v1/credits/merchants/{merchant_id}/purchases/{purchase_id}/cancel",
            post(cancel_merchant_credit_purchase),
        )
}

/// A merchant's 券点账户, in tenths of a 券点 (2 is 0.2 券点).
#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"free_tenths": 200, "paid_tenths": 1000, "total_tenths": 1200, "free_text": "20", "paid_text": "100", "total_text": "120", "unit_price_plain_tenths": 2, "unit_price_conditioned_tenths": 4, "purchase_credits_min": 100, "purchase_credits_max": 50000}))]
pub struct CreditAccountDto {
    pub free_tenths: i64,
    pub paid_tenths: i64,
    pub total_tenths: i64,
    /// The same in 券点, as people read them (`20`, `0.4`).
    pub free_text: String,
    pub paid_text: String,
    pub total_text: String,
    /// The price of one unit of a 朋友的券's stock without conditions.
    pub unit_price_plain_tenths: i64,
    /// … with a location scope, a minimum spend or "cannot combine".
    pub unit_price_conditioned_tenths: i64,
    /// A purchase buys at least this many 券点 (1 券点 = ¥1).
    pub purchase_credits_min: i64,
    pub purchase_credits_max: i64,
}

impl CreditAccountDto {
    pub fn new(b: &CreditBalance) -> Self {
        Self {
            free_tenths: b.free_tenths,
            paid_tenths: b.paid_tenths,
            total_tenths: b.total_tenths(),
            free_text: format_credits(b.free_tenths),
            paid_text: format_credits(b.paid_tenths),
            total_text: format_credits(b.total_tenths()),
            unit_price_plain_tenths: credit::UNIT_PRICE_PLAIN_TENTHS,
            unit_price_conditioned_tenths: credit::UNIT_PRICE_CONDITIONED_TENTHS,
            purchase_credits_min: credit::PURCHASE_CREDITS_MIN,
            purchase_credits_max: credit::PURCHASE_CREDITS_MAX,
        }
    }
}

/// One line of the 券点 statement.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": 5, "kind": "buy_stock", "kind_label": "兑换库存", "holder": "free", "holder_label": "免费券点", "amount_tenths": -800, "balance_after_tenths": 200, "amount_text": "-80", "balance_after_text": "20", "program_id": 3, "purchase_id": null, "reason": "+400 库存", "created_by": "owner", "created_at": "2026-12-01 10:00:00"}))]
pub struct CreditTransactionDto {
    pub id: i64,
    /// `grant`, `purchase`, `buy_stock` or `return_stock`.
    pub kind: &'static str,
    pub kind_label: &'static str,
    /// `free` or `paid`: the balance it moved.
    pub holder: &'static str,
    pub holder_label: &'static str,
    /// Signed tenths of a 券点: positive into the balance.
    pub amount_tenths: i64,
    pub balance_after_tenths: i64,
    pub amount_text: String,
    pub balance_after_text: String,
    pub program_id: Option<i64>,
    pub purchase_id: Option<i64>,
    pub reason: String,
    pub created_by: String,
    pub created_at: String,
}

impl CreditTransactionDto {
    pub fn new(t: &CreditTransaction) -> Self {
        Self {
            id: t.id,
            kind: t.kind.code(),
            kind_label: t.kind.label_zh(),
            holder: t.holder.code(),
            holder_label: t.holder.label_zh(),
            amount_tenths: t.amount_tenths,
            balance_after_tenths: t.balance_after_tenths,
            amount_text: format_credits(t.amount_tenths),
            balance_after_text: format_credits(t.balance_after_tenths),
            program_id: t.program_id,
            purchase_id: t.purchase_id,
            reason: t.reason.clone(),
            created_by: t.created_by.clone(),
            created_at: format_datetime(t.created_at),
        }
    }
}

/// A purchase of paid 券点.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": 2, "merchant_id": 1, "credits": 100, "amount_fen": 10000, "state": "requested", "state_label": "待付款确认", "requested_by": "owner", "requested_at": "2026-12-01 10:00:00", "decided_by": null, "decided_at": null}))]
pub struct CreditPurchaseDto {
    pub id: i64,
    pub merchant_id: i64,
    pub credits: i64,
    /// What the merchant pays: 1 券点 = ¥1.
    pub amount_fen: i64,
    /// `requested`, `confirmed` or `cancelled`.
    pub state: &'static str,
    pub state_label: &'static str,
    pub requested_by: String,
    pub requested_at: String,
    pub decided_by: Option<String>,
    pub decided_at: Option<String>,
}

impl CreditPurchaseDto {
    pub fn new(p: &CreditPurchase) -> Self {
        Self {
            id: p.id,
            merchant_id: p.merchant_id,
            credits: p.credits,
            amount_fen: p.amount_fen,
            state: p.state.code(),
            state_label: p.state.label_zh(),
            requested_by: p.requested_by.clone(),
            requested_at: format_datetime(p.requested_at),
            decided_by: p.decided_by.clone(),
            decided_at: p.decided_at.map(format_datetime),
        }
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"credits": 100}))]
pub struct PurchaseRequest {
    /// 券点 to buy, 100–50000 (1 券点 = ¥1).
    #[schema(minimum = 100, maximum = 50000)]
    pub credits: i64,
}

/// 增加库存 of a 朋友的券 with 券点.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"units": 400, "expected_quantity": 0}))]
pub struct StockPurchaseRequest {
    /// Units of stock to add.
    #[schema(minimum = 1)]
    pub units: i64,
    /// The stock the buyer saw: refused (`coupon_stock_changed`) when it
    /// changed since, so a second click does not buy twice. Leave it out
    /// to buy whatever the stock is.
    pub expected_quantity: Option<i64>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": 1, "program_id": 3, "units": 400, "unit_price_tenths": 2, "free_tenths": 800, "paid_tenths": 0, "cost_tenths": 800, "cost_text": "80", "created_by": "owner", "created_at": "2026-12-01 10:00:00"}))]
pub struct StockPurchaseDto {
    pub id: i64,
    pub program_id: i64,
    pub units: i64,
    pub unit_price_tenths: i64,
    /// What it cost of each kind, free credits first.
    pub free_tenths: i64,
    pub paid_tenths: i64,
    pub cost_tenths: i64,
    pub cost_text: String,
    pub created_by: String,
    pub created_at: String,
}

impl StockPurchaseDto {
    pub fn new(p: &StockPurchase) -> Self {
        let cost = p.free_tenths + p.paid_tenths;
        Self {
            id: p.id,
            program_id: p.program_id,
            units: p.units,
            unit_price_tenths: p.unit_price_tenths,
            free_tenths: p.free_tenths,
            paid_tenths: p.paid_tenths,
            cost_tenths: cost,
            cost_text: format_credits(cost),
            created_by: p.created_by.clone(),
            created_at: format_datetime(p.created_at),
        }
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"tenths": 1000, "reason": "开业活动奖励", "expected_free_tenths": 0}))]
pub struct GrantRequest {
    /// Free 券点 to give, in tenths (1000 is 100 券点).
    #[schema(minimum = 1)]
    pub tenths: i64,
    /// Why (the 活动 it rewards), at most 200 characters.
    #[schema(min_length = 1, max_length = 200)]
    pub reason: String,
    /// The merchant's free balance the operator saw: refused
    /// (`credits_changed`) when it changed since, so a grant sent twice
    /// goes in once. Leave it out to grant whatever the balance is.
    pub expected_free_tenths: Option<i64>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"merchant_id": 1, "merchant_name": "果园", "free_tenths": 200, "paid_tenths": 1000, "free_text": "20", "paid_text": "100", "n_requested": 1}))]
pub struct MerchantCreditsDto {
    pub merchant_id: i64,
    pub merchant_name: String,
    pub free_tenths: i64,
    pub paid_tenths: i64,
    pub free_text: String,
    pub paid_text: String,
    /// Purchases awaiting the operator's confirmation.
    pub n_requested: i64,
}

impl MerchantCreditsDto {
    pub fn new(m: &MerchantCredits) -> Self {
        Self {
            merchant_id: m.merchant_id,
            merchant_name: m.merchant_name.clone(),
            free_tenths: m.balance.free_tenths,
            paid_tenths: m.balance.paid_tenths,
            free_text: format_credits(m.balance.free_tenths),
            paid_text: format_credits(m.balance.paid_tenths),
            n_requested: m.n_requested,
        }
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PurchaseQuery {
    /// `requested`, `confirmed` or `cancelled`.
    #[param(pattern = "^(|requested|confirmed|cancelled)$", example = "requested")]
    pub state: Option<String>,
    /// The operator's list only: one merchant's.
    pub merchant_id: Option<i64>,
    #[param(minimum = 1, example = 1)]
    pub page: Option<i64>,
    #[param(minimum = 1, maximum = 200, example = 50)]
    pub page_size: Option<i64>,
}

impl PurchaseQuery {
    fn filter(&self, merchant_id: Option<i64>) -> ApiResult<PurchaseFilter> {
        let state = match self.state.as_deref() {
            None | Some("") => None,
            Some(code) => Some(PurchaseState::parse(code).ok_or_else(|| {
                ApiError::invalid("state 应为 requested、confirmed 或 cancelled")
            })?),
        };
        Ok(PurchaseFilter {
            merchant_id: merchant_id.or(self.merchant_id),
            state,
        })
    }
}

/// The operator's calls need the operator (平台运营), whatever the role.
pub fn require_operator(authed: &Authed) -> ApiResult<()> {
    if authed.staff.operator {
        Ok(())
    } else {
        Err(ApiError::Forbidden("平台运营"))
    }
}

pub async fn account(state: &AppState, authed: &Authed) -> ApiResult<CreditBalance> {
    authed.require(Permission::CouponsManage)?;
    Ok(state.store.get_credit_balance(authed.merchant_id()).await?)
}

async fn get_credit_account(
    State(state): State<AppState>,
    authed: Authed,
) -> ApiResult<Json<CreditAccountDto>> {
    Ok(Json(CreditAccountDto::new(
        &account(&state, &authed).await?,
    )))
}

pub async fn transaction_page(
    state: &AppState,
    authed: &Authed,
    page: ListPage,
) -> ApiResult<ListDto<CreditTransactionDto>> {
    authed.require(Permission::CouponsManage)?;
    statement_of(state, authed.merchant_id(), page).await
}

/// A merchant's 券点 statement, for its staff or the operator.
pub async fn statement_of(
    state: &AppState,
    merchant_id: i64,
    page: ListPage,
) -> ApiResult<ListDto<CreditTransactionDto>> {
    let (lines, total) = state
        .store
        .list_credit_transactions(merchant_id, page)
        .await?;
    Ok(ListDto::new(
        lines.iter().map(CreditTransactionDto::new).collect(),
        total,
        page,
    ))
}

async fn list_credit_transactions(
    State(state): State<AppState>,
    authed: Authed,
    Query(query): Query<PageQuery>,
) -> ApiResult<Json<ListDto<CreditTransactionDto>>> {
    let page = ListPage::new(query.page, query.page_size);
    Ok(Json(transaction_page(&state, &authed, page).await?))
}

/// The most statement lines one export holds.
pub const STATEMENT_EXPORT_ROWS_MAX: i64 = 100_000;

/// 券点明细 as xlsx: amounts and balances are number cells in 券点.
async fn export_credit_transactions(
    State(state): State<AppState>,
    authed: Authed,
) -> ApiResult<axum::response::Response> {
    authed.require(Permission::CouponsManage)?;
    let m = authed.merchant_id();
    let xlsx = |e: rust_xlsxwriter::XlsxError| ApiError::Internal(format!("xlsx: {e}"));
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let sheet = workbook.add_worksheet();
    let titles = [
        "时间",
        "类型",
        "券点种类",
        "变动（券点）",
        "变动后余额（券点）",
        "券",
        "说明",
        "操作人",
    ];
    for (col, title) in authed.export_lang.headers(&titles).iter().enumerate() {
        sheet.write_string(0, col as u16, title).map_err(xlsx)?;
    }
    let mut row = 0u32;
    for page_number in 1.. {
        let page = ListPage::new(Some(page_number), Some(kaquan_core::store::PAGE_SIZE_MAX));
        let (lines, total) = state.store.list_credit_transactions(m, page).await?;
        if total > STATEMENT_EXPORT_ROWS_MAX {
            return Err(ApiError::invalid(format!(
                "一次最多导出 {STATEMENT_EXPORT_ROWS_MAX} 条券点明细"
            )));
        }
        for t in &lines {
            row += 1;
            let text = [
                format_datetime(t.created_at),
                authed.export_lang.text(t.kind.label_zh()),
                authed.export_lang.text(t.holder.label_zh()),
            ];
            for (col, cell) in text.iter().enumerate() {
                sheet.write_string(row, col as u16, cell).map_err(xlsx)?;
            }
            for (col, tenths) in [(3, t.amount_tenths), (4, t.balance_after_tenths)] {
                sheet
                    .write_number(row, col, tenths as f64 / credit::TENTHS_PER_CREDIT as f64)
                    .map_err(xlsx)?;
            }
            let program = t.program_id.map(|id| format!("#{id}")).unwrap_or_default();
            for (col, cell) in [(5, &program), (6, &t.reason), (7, &t.created_by)] {
                let cell = crate::exports::escape_formula(cell);
                sheet.write_string(row, col, cell).map_err(xlsx)?;
            }
        }
        if lines.len() < page.page_size as usize {
            break;
        }
    }
    let bytes = workbook.save_to_buffer().map_err(xlsx)?;
    let audit = authed.audit(
        "export_credit_statement",
        String::new(),
        format!("n_lines={row}"),
    );
    state.store.append_audit(&audit).await?;
    Ok(crate::exports::download(
        bytes,
        "券点明细.xlsx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ))
}

pub async fn purchase_page(
    state: &AppState,
    filter: &PurchaseFilter,
    page: ListPage,
) -> ApiResult<ListDto<CreditPurchaseDto>> {
    let (items, total) = state.store.list_credit_purchases(filter, page).await?;
    Ok(ListDto::new(
        items.iter().map(CreditPurchaseDto::new).collect(),
        total,
        page,
    ))
}

async fn list_credit_purchases(
    State(state): State<AppState>,
    authed: Authed,
    Query(query): Query<PurchaseQuery>,
) -> ApiResult<Json<ListDto<CreditPurchaseDto>>> {
    authed.require(Permission::CouponsManage)?;
    let filter = query.filter(Some(authed.merchant_id()))?;
    let page = ListPage::new(query.page, query.page_size);
    Ok(Json(purchase_page(&state, &filter, page).await?))
}

pub async fn request_purchase(
    state: &AppState,
    authed: &Authed,
    credits: i64,
) -> ApiResult<CreditPurchase> {
    authed.require(Permission::CouponsManage)?;
    Ok(credit::request_purchase(
        state.store.as_ref(),
        authed.merchant_id(),
        credits,
        &authed.actor(),
        crate::now(),
    )
    .await?)
}

async fn create_credit_purchase(
    State(state): State<AppState>,
    authed: Authed,
    Json(request): Json<PurchaseRequest>,
) -> ApiResult<(StatusCode, Json<CreditPurchaseDto>)> {
    let purchase = request_purchase(&state, &authed, request.credits).await?;
    Ok((StatusCode::CREATED, Json(CreditPurchaseDto::new(&purchase))))
}

/// Confirms (the operator) or cancels a requested purchase of `merchant_id`.
pub async fn decide_purchase(
    state: &AppState,
    authed: &Authed,
    merchant_id: i64,
    purchase_id: i64,
    confirm: bool,
) -> ApiResult<CreditPurchase> {
    state
        .store
        .decide_credit_purchase(
            merchant_id,
            purchase_id,
            confirm,
            &authed.actor(),
            crate::now(),
        )
        .await?
        .ok_or_else(|| ApiError::Conflict("该购买申请已确认或已取消".into()))
}

async fn cancel_credit_purchase(
    State(state): State<AppState>,
    authed: Authed,
    Path(purchase_id): Path<i64>,
) -> ApiResult<Json<CreditPurchaseDto>> {
    authed.require(Permission::CouponsManage)?;
    let m = authed.merchant_id();
    let purchase = decide_purchase(&state, &authed, m, purchase_id, false).await?;
    Ok(Json(CreditPurchaseDto::new(&purchase)))
}

/// 增加库存 of a 朋友的券, paid with 券点 (free ones first).
pub async fn buy_stock(
    state: &AppState,
    authed: &Authed,
    program_id: i64,
    request: &StockPurchaseRequest,
) -> ApiResult<StockPurchase> {
    authed.require(Permission::CouponsManage)?;
    let buy = BuyStock {
        merchant_id: authed.merchant_id(),
        program_id,
        units: request.units,
        expected_quantity: request.expected_quantity,
        actor: authed.actor(),
        now: crate::now(),
    };
    Ok(credit::buy_stock(state.store.as_ref(), &buy).await?)
}

async fn create_stock_purchase(
    State(state): State<AppState>,
    authed: Authed,
    Path(program_id): Path<i64>,
    Json(request): Json<StockPurchaseRequest>,
) -> ApiResult<(StatusCode, Json<StockPurchaseDto>)> {
    let bought = buy_stock(&state, &authed, program_id, &request).await?;
    Ok((StatusCode::CREATED, Json(StockPurchaseDto::new(&bought))))
}

async fn list_stock_purchases(
    State(state): State<AppState>,
    authed: Authed,
    Path(program_id): Path<i64>,
) -> ApiResult<Json<Vec<StockPurchaseDto>>> {
    authed.require(Permission::CouponsManage)?;
    let bought = state
        .store
        .list_stock_purchases(authed.merchant_id(), program_id)
        .await?;
    Ok(Json(bought.iter().map(StockPurchaseDto::new).collect()))
}

pub async fn merchant_page(
    state: &AppState,
    authed: &Authed,
    page: ListPage,
) -> ApiResult<ListDto<MerchantCreditsDto>> {
    require_operator(authed)?;
    let (items, total) = state.store.list_merchant_credits(page).await?;
    Ok(ListDto::new(
        items.iter().map(MerchantCreditsDto::new).collect(),
        total,
        page,
    ))
}

async fn list_merchant_credits(
    State(state): State<AppState>,
    authed: Authed,
    Query(query): Query<PageQuery>,
) -> ApiResult<Json<ListDto<MerchantCreditsDto>>> {
    let page = ListPage::new(query.page, query.page_size);
    Ok(Json(merchant_page(&state, &authed, page).await?))
}

async fn list_merchant_credit_transactions(
    State(state): State<AppState>,
    authed: Authed,
    Path(merchant_id): Path<i64>,
    Query(query): Query<PageQuery>,
) -> ApiResult<Json<ListDto<CreditTransactionDto>>> {
    require_operator(&authed)?;
    let page = ListPage::new(query.page, query.page_size);
    Ok(Json(statement_of(&state, merchant_id, page).await?))
}

/// The operator gives a merchant free 券点 (活动奖励).
pub async fn grant(
    state: &AppState,
    authed: &Authed,
    merchant_id: i64,
    request: &GrantRequest,
) -> ApiResult<CreditTransaction> {
    require_operator(authed)?;
    let grant = GrantCredits {
        merchant_id,
        tenths: request.tenths,
        reason: request.reason.trim().to_owned(),
        expected_free_tenths: request.expected_free_tenths,
        actor: authed.actor(),
        now: crate::now(),
    };
    Ok(credit::grant_credits(state.store.as_ref(), &grant).await?)
}

async fn create_credit_grant(
    State(state): State<AppState>,
    authed: Authed,
    Path(merchant_id): Path<i64>,
    Json(request): Json<GrantRequest>,
) -> ApiResult<(StatusCode, Json<CreditTransactionDto>)> {
    let line = grant(&state, &authed, merchant_id, &request).await?;
    Ok((StatusCode::CREATED, Json(CreditTransactionDto::new(&line))))
}

async fn list_credit_requests(
    State(state): State<AppState>,
    authed: Authed,
    Query(query): Query<PurchaseQuery>,
) -> ApiResult<Json<ListDto<CreditPurchaseDto>>> {
    require_operator(&authed)?;
    let filter = query.filter(None)?;
    let page = ListPage::new(query.page, query.page_size);
    Ok(Json(purchase_page(&state, &filter, page).await?))
}

async fn create_credit_purchase_confirmation(
    State(state): State<AppState>,
    authed: Authed,
    Path((merchant_id, purchase_id)): Path<(i64, i64)>,
) -> ApiResult<Json<CreditPurchaseDto>> {
    require_operator(&authed)?;
    let purchase = decide_purchase(&state, &authed, merchant_id, purchase_id, true).await?;
    Ok(Json(CreditPurchaseDto::new(&purchase)))
}

async fn cancel_merchant_credit_purchase(
    State(state): State<AppState>,
    authed: Authed,
    Path((merchant_id, purchase_id)): Path<(i64, i64)>,
) -> ApiResult<Json<CreditPurchaseDto>> {
    require_operator(&authed)?;
    let purchase = decide_purchase(&state, &authed, merchant_id, purchase_id, false).await?;
    Ok(Json(CreditPurchaseDto::new(&purchase)))
}
