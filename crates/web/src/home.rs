//! 概况 (each role's home; its figures in `dashboard.rs`), the entry of 全局设置 and 提货前台 (the
//! customers' pickup address with its QR code).

use crate::auth::Authed;
use crate::error::{ApiError, ApiResult};
use crate::extract::Query;
use crate::nav;
use crate::pages::{render, Page, PageResult};
use crate::AppState;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect};
use axum::routing::get;
use axum::Router;
use kaquan_core::audit::AuditFilter;
use kaquan_core::auth::Permission;
use kaquan_core::store::Page as ListPage;
use serde::Serialize;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home_page))
        .route("/settings", get(settings_entry))
        .route("/pickup/site", get(site_page))
        .route("/pickup/site/qr.png", get(site_qr))
}

/// 概况: the period's figures across every product, and 三步上手.
#[derive(Serialize)]
struct HomeView {
    overview: crate::dashboard::Overview,
    steps: Vec<Step>,
}

/// One step of 三步上手.
#[derive(Serialize)]
struct Step {
    label: &'static str,
    hint: &'static str,
    href: &'static str,
    done: bool,
}

/// 三步上手 (seed 003's QA): goods entered, cards made and exported, the
/// pickup site named and given a logo. Each step ticks itself.
async fn steps(state: &AppState, authed: &Authed) -> Result<Vec<Step>, ApiError> {
    if !authed.can(Permission::StaffManage) {
        return Ok(Vec::new());
    }
    let m = authed.merchant_id();
    let has_goods = !state.store.list_goods(m, false).await?.is_empty();
    let exports = AuditFilter {
        actions: vec!["export_cards".into(), "export_qr_codes".into()],
        ..Default::default()
    };
    let (_, exported) = state
        .store
        .search_audit(m, &exports, ListPage::new(Some(1), Some(1)))
        .await?;
    let settings = state.store.get_pickup_settings(m).await?;
    let default_title = kaquan_core::pickup::PickupSettings::default().title;
    let named = settings.title != default_title && state.store.logo_updated_at(m).await?.is_some();
    Ok(vec![
        Step {
            label: "录入提货商品",
            hint: "顾客能提你们哪款商品",
            href: "/goods",
            done: has_goods,
        },
        Step {
            label: "创建卡券并导出",
            hint: "在卡券管理中创建对应的卡，导出卡号和密码交给印刷厂",
            href: "/batches/new",
            done: exported > 0,
        },
        Step {
            label: "提货设置",
            hint: "把提货网站名称、Logo 换成你们自己的，并打开前台提货开关",
            href: "/settings/pickup",
            done: named && settings.enabled,
        },
    ])
}

async fn home_page(
    State(state): State<AppState>,
    authed: Authed,
    Query(query): Query<crate::dashboard::OverviewQuery>,
) -> PageResult {
    if let Some(home) = nav::home_for(&authed.permissions) {
        return Ok(Redirect::to(home).into_response());
    }
    let period = query.period()?;
    let (overview, mut steps) = tokio::try_join!(
        crate::dashboard::overview(&state, &authed, period),
        steps(&state, &authed)
    )?;
    // 三步上手 steps aside once all three are done.
    if steps.iter().all(|s| s.done) {
        steps.clear();
    }
    Ok(render(
        &state,
        "home.html",
        &Page::new("概况", &authed),
        HomeView { overview, steps },
    ))
}

/// 全局设置 opens on the first tab this role may use.
async fn settings_entry(authed: Authed) -> PageResult {
    match nav::settings_tabs(&authed.permissions).first() {
        Some(tab) => Ok(Redirect::to(tab.href).into_response()),
        None => Err(ApiError::Forbidden(Permission::OrdersManage.label_zh()).into()),
    }
}

/// The customers' pickup address (提货网址).
pub async fn pickup_url(state: &AppState, merchant_id: i64) -> ApiResult<String> {
    Ok(format!(
        "{}/m/{merchant_id}/redeem",
        state.public_url_for(merchant_id).await?
    ))
}

#[derive(Serialize)]
struct SiteView {
    url: String,
    problem: Option<&'static str>,
    enabled: bool,
    title: String,
}

async fn site_page(State(state): State<AppState>, authed: Authed) -> PageResult {
    authed.require(Permission::PickupAssist)?;
    let settings = state
        .store
        .get_pickup_settings(authed.merchant_id())
        .await?;
    let public_url = state.public_url_for(authed.merchant_id()).await?;
    let view = SiteView {
        url: pickup_url(&state, authed.merchant_id()).await?,
        problem: crate::exports::public_url_problem(&public_url),
        enabled: settings.enabled,
        title: settings.title,
    };
    Ok(render(
        &state,
        "pickup_site.html",
        &Page::new("提货前台", &authed),
        view,
    ))
}

/// The pickup address as a QR code to save and print.
async fn site_qr(State(state): State<AppState>, authed: Authed) -> PageResult {
    authed.require(Permission::PickupAssist)?;
    let url = pickup_url(&state, authed.merchant_id()).await?;
    let code = qrcode::QrCode::new(url.as_bytes())
        .map_err(|e| ApiError::Internal(format!("QR code of the pickup address: {e}")))?;
    Ok(crate::exports::download(
        crate::exports::qr_png(&code, 10),
        "提货网址二维码.png",
        "image/png",
    ))
}
