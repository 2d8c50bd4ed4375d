//! The console's 券点 pages: a merchant's 券点账户 (balances, prices,
//! 购买券点, the statement), a 朋友的券's 增加库存 and cover upload on its
//! program page, and the operator's 平台运营 page (every merchant's
//! account, grants, purchase confirmations). They call the functions of
//! `credits.rs` the API calls.

use crate::auth::Authed;
use crate::credits::{
    self, CreditAccountDto, CreditPurchaseDto, CreditTransactionDto, GrantRequest,
    MerchantCreditsDto, StockPurchaseRequest,
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
use kaquan_core::coupon::usage::CouponPicture;
use kaquan_core::credit::{format_credits, PurchaseFilter, PurchaseState, TENTHS_PER_CREDIT};
use kaquan_core::store::Page as ListPage;
use serde::{Deserialize, Serialize};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/credits", get(account_page))
        .route("/credits/purchases", post(purchase_form))
        .route("/credits/purchases/{purchase_id}/cancel", post(cancel_form))
        .route("/coupons/{program_id}/stock-purchases", post(stock_form))
        .route("/coupons/{program_id}/cover", post(cover_form))
        .route("/operator", get(operator_page))
        .route(
            "/operator/merchants/{merchant_id}",
            get(operator_merchant_page),
        )
        .route("/operator/merchants/{merchant_id}/grants", post(grant_form))
        .route(
            "/operator/merchants/{merchant_id}/purchases/{purchase_id}/{decision}",
            post(decide_form),
        )
}

/// `100`, `0.5` or `12.3` 券点 as tenths; `None` for anything else.
pub fn parse_credits(text: &str) -> Option<i64> {
    let text = text.trim();
    let (whole, tenth) = match text.split_once('.') {
        Some((whole, tenth)) if tenth.len() == 1 => (whole, tenth),
        Some(_) => return None,
        None => (text, "0"),
    };
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) || whole.len() > 9 {
        return None;
    }
    let tenth: i64 = tenth
        .parse()
        .ok()
        .filter(|_| tenth.bytes().all(|b| b.is_ascii_digit()))?;
    Some(whole.parse::<i64>().ok()? * TENTHS_PER_CREDIT + tenth)
}

#[derive(Serialize)]
struct AccountView {
    account: CreditAccountDto,
    purchases: ListDto<CreditPurchaseDto>,
    lines: ListDto<CreditTransactionDto>,
    pages: i64,
    operator: bool,
}

async fn account_page(
    State(state): State<AppState>,
    authed: Authed,
    Query(query): Query<MsgQuery>,
) -> PageResult {
    let account = credits::account(&state, &authed).await?;
    let page = ListPage::new(query.page, Some(20));
    let lines = credits::transaction_page(&state, &authed, page).await?;
    let mine = PurchaseFilter {
        merchant_id: Some(authed.merchant_id()),
        state: None,
    };
    let purchases = credits::purchase_page(&state, &mine, ListPage::new(Some(1), Some(20))).await?;
    let view = AccountView {
        account: CreditAccountDto::new(&account),
        pages: (lines.total + lines.page_size - 1) / lines.page_size,
        purchases,
        lines,
        operator: authed.staff.operator,
    };
    Ok(render(
        &state,
        "credits.html",
        &Page::new("券点账户", &authed).with_message(query.msg),
        view,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PurchaseForm {
    csrf: String,
    credits: String,
}

async fn purchase_form(
    State(state): State<AppState>,
    authed: Authed,
    Form(form): Form<PurchaseForm>,
) -> PageResult {
    authed.check_form_csrf(&form.csrf)?;
    let credits: i64 = form
        .credits
        .trim()
        .parse()
        .map_err(|_| ApiError::invalid("购买数量应为整数券点，如 100"))?;
    let purchase = credits::request_purchase(&state, &authed, credits).await?;
    Ok(redirect_with(
        "/credits",
        &format!(
            "已申请购买 {} 券点（应付 ¥{}），平台确认收款后到账",
            purchase.credits, purchase.credits
        ),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CsrfForm {
    csrf: String,
}

async fn cancel_form(
    State(state): State<AppState>,
    authed: Authed,
    Path(purchase_id): Path<i64>,
    Form(form): Form<CsrfForm>,
) -> PageResult {
    authed.check_form_csrf(&form.csrf)?;
    authed.require(kaquan_core::auth::Permission::CouponsManage)?;
    let m = authed.merchant_id();
    credits::decide_purchase(&state, &authed, m, purchase_id, false).await?;
    Ok(redirect_with(
        "/credits",
        &format!("已取消购买申请 #{purchase_id}"),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StockForm {
    csrf: String,
    units: String,
    expected_quantity: i64,
}

async fn stock_form(
    State(state): State<AppState>,
    authed: Authed,
    Path(program_id): Path<i64>,
    Form(form): Form<StockForm>,
) -> PageResult {
    authed.check_form_csrf(&form.csrf)?;
    let units: i64 = form
        .units
        .trim()
        .parse()
        .map_err(|_| ApiError::invalid("增加的库存应为正整数"))?;
    let request = StockPurchaseRequest {
        units,
        expected_quantity: Some(form.expected_quantity),
    };
    let bought = credits::buy_stock(&state, &authed, program_id, &request).await?;
    Ok(redirect_with(
        &format!("/coupons/{program_id}"),
        &format!(
            "已增加库存 {} 张，消耗 {} 券点（免费 {}，付费 {}）",
            bought.units,
            format_credits(bought.free_tenths + bought.paid_tenths),
            format_credits(bought.free_tenths),
            format_credits(bought.paid_tenths)
        ),
    ))
}

async fn cover_form(
    State(state): State<AppState>,
    authed: Authed,
    Path(program_id): Path<i64>,
    multipart: Multipart,
) -> PageResult {
    let (bytes, csrf) = crate::images::read_image_upload(multipart).await?;
    authed.check_form_csrf(&csrf)?;
    let picture = CouponPicture::Cover;
    crate::coupons::upload_program_picture(&state, &authed, program_id, bytes, picture).await?;
    Ok(redirect_with(
        &format!("/coupons/{program_id}"),
        "封面已更新",
    ))
}

#[derive(Serialize)]
struct OperatorView {
    merchants: ListDto<MerchantCreditsDto>,
    requests: Vec<(CreditPurchaseDto, String)>,
    pages: i64,
}

async fn operator_page(
    State(state): State<AppState>,
    authed: Authed,
    Query(query): Query<MsgQuery>,
) -> PageResult {
    let merchants =
        credits::merchant_page(&state, &authed, ListPage::new(query.page, None)).await?;
    let requested = PurchaseFilter {
        merchant_id: None,
        state: Some(PurchaseState::Requested),
    };
    let requests = credits::purchase_page(&state, &requested, ListPage::new(Some(1), Some(200)))
        .await?
        .items;
    let mut named = Vec::with_capacity(requests.len());
    for request in requests {
        let name = state.store.get_merchant(request.merchant_id).await?.name;
        named.push((request, name));
    }
    let view = OperatorView {
        pages: (merchants.total + merchants.page_size - 1) / merchants.page_size,
        merchants,
        requests: named,
    };
    Ok(render(
        &state,
        "operator.html",
        &Page::new("平台运营：商户券点", &authed).with_message(query.msg),
        view,
    ))
}

#[derive(Serialize)]
struct MerchantStatementView {
    merchant_id: i64,
    merchant_name: String,
    lines: ListDto<CreditTransactionDto>,
    pages: i64,
}

/// 平台运营: one merchant's 券点 statement.
async fn operator_merchant_page(
    State(state): State<AppState>,
    authed: Authed,
    Path(merchant_id): Path<i64>,
    Query(query): Query<MsgQuery>,
) -> PageResult {
    credits::require_operator(&authed)?;
    let merchant = state.store.get_merchant(merchant_id).await?;
    let lines =
        credits::statement_of(&state, merchant_id, ListPage::new(query.page, Some(50))).await?;
    let view = MerchantStatementView {
        merchant_id,
        merchant_name: merchant.name,
        pages: (lines.total + lines.page_size - 1) / lines.page_size,
        lines,
    };
    Ok(render(
        &state,
        "operator_merchant.html",
        &Page::new("平台运营：商户券点明细", &authed).with_message(query.msg),
        view,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GrantForm {
    csrf: String,
    credits: String,
    reason: String,
    expected_free_tenths: i64,
}

async fn grant_form(
    State(state): State<AppState>,
    authed: Authed,
    Path(merchant_id): Path<i64>,
    Form(form): Form<GrantForm>,
) -> PageResult {
    authed.check_form_csrf(&form.csrf)?;
    let tenths = parse_credits(&form.credits)
        .ok_or_else(|| ApiError::invalid("赠送数量应为券点，至多一位小数，如 100 或 0.5"))?;
    let request = GrantRequest {
        tenths,
        reason: form.reason,
        expected_free_tenths: Some(form.expected_free_tenths),
    };
    let line = credits::grant(&state, &authed, merchant_id, &request).await?;
    Ok(redirect_with(
        "/operator",
        &format!(
            "已向商户 #{merchant_id} 赠送 {} 免费券点，余额 {}",
            format_credits(line.amount_tenths),
            format_credits(line.balance_after_tenths)
        ),
    ))
}

async fn decide_form(
    State(state): State<AppState>,
    authed: Authed,
    Path((merchant_id, purchase_id, decision)): Path<(i64, i64, String)>,
    Form(form): Form<CsrfForm>,
) -> PageResult {
    authed.check_form_csrf(&form.csrf)?;
    credits::require_operator(&authed)?;
    let confirm = match decision.as_str() {
        "confirm" => true,
        "cancel" => false,
        _ => return Err(ApiError::NotFound.into()),
    };
    let p = credits::decide_purchase(&state, &authed, merchant_id, purchase_id, confirm).await?;
    let done = if confirm {
        format!(
            "已确认收款：商户 #{merchant_id} 的 {} 券点已到账",
            p.credits
        )
    } else {
        format!("已取消商户 #{merchant_id} 的购买申请 #{purchase_id}")
    };
    Ok(redirect_with("/operator", &done))
}

#[cfg(test)]
mod tests {
    use super::parse_credits;

    #[test]
    fn credits_are_read_in_whole_and_tenths() {
        for (text, tenths) in [
            ("100", Some(1000)),
            ("0.5", Some(5)),
            (" 12.3 ", Some(123)),
            ("1.25", None),
            ("-1", None),
            ("", None),
            (".5", None),
            ("1.", None),
            ("1e3", None),
            ("1.x", None),
            ("9999999999", None),
        ] {
            assert_eq!(parse_credits(text), tenths, "{text:?}");
        }
    }
}
