//! 数据分析 (`/analytics`): per card batch, 兑换码 template or coupon
//! program, of what was issued in a period (cards activated, codes issued,
//! coupons claimed): how much was redeemed and how soon (median, p90 and
//! the distribution, drawn as SVG), how much lapsed unused, and what is
//! outstanding and worth; the same figures export as xlsx. E-cards have
//! their own page (`ecard_analytics.rs`) with their marketplaces.

use crate::auth::Authed;
use crate::charts::{self, Bar};
use crate::ecard_analytics::{duration_zh, percent, period};
use crate::error::{ApiError, ApiResult};
use crate::extract::Query;
use crate::pages::{render, Page, PageResult};
use crate::AppState;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use kaquan_core::analytics::{figures, InstrumentFigures, InstrumentKind, REDEEM_BUCKETS};
use kaquan_core::auth::Permission;
use kaquan_core::clock::format_date;
use kaquan_core::money::format_yuan;
use serde::{Deserialize, Serialize};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/analytics", get(analytics_page))
        .route("/analytics/export", get(export_analytics))
}

#[derive(Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct AnalyticsQuery {
    /// `batches` (the default), `codes` or `coupons`.
    #[serde(default)]
    pub kind: String,
    /// Issued from this day (`YYYY-MM-DD`); 30 days ago when absent.
    #[serde(default)]
    pub from: String,
    /// Until this day, inclusive; today when absent.
    #[serde(default)]
    pub to: String,
}

/// One instrument's figures, as the page and the export show them.
#[derive(Serialize)]
pub struct InstrumentView {
    pub id: i64,
    pub name: String,
    pub issued: i64,
    pub redeemed: i64,
    pub rate: String,
    pub median: String,
    pub p90: String,
    pub lapsed: i64,
    pub outstanding: i64,
    pub outstanding_yuan: String,
    pub distribution: Vec<i64>,
    /// The distribution as SVG columns.
    pub chart: String,
}

#[derive(Serialize)]
pub struct KindLink {
    pub code: &'static str,
    pub label: &'static str,
    pub current: bool,
}

#[derive(Serialize)]
pub struct AnalyticsView {
    pub kind: &'static str,
    pub kinds: Vec<KindLink>,
    pub from: String,
    pub to: String,
    pub buckets: Vec<&'static str>,
    pub instruments: Vec<InstrumentView>,
}

fn permission_of(kind: InstrumentKind) -> Permission {
    match kind {
        InstrumentKind::Batch => Permission::CardsView,
        InstrumentKind::CodeTemplate => Permission::GiftcardsManage,
        InstrumentKind::CouponProgram => Permission::CouponsManage,
    }
}

async fn name_of(state: &AppState, m: i64, kind: InstrumentKind, id: i64) -> ApiResult<String> {
    let found = match kind {
        InstrumentKind::Batch => state.store.get_batch(m, id).await.map(|b| b.name),
        InstrumentKind::CodeTemplate => state
            .store
            .get_code_template(m, id)
            .await
            .map(|t| t.fields.name),
        InstrumentKind::CouponProgram => state
            .store
            .get_coupon_program(m, id)
            .await
            .map(|p| p.fields.title),
    };
    match found {
        Ok(name) => Ok(name),
        // A deleted template still has its codes' history.
        Err(kaquan_core::StoreError::NotFound) => Ok(format!("#{id}")),
        Err(other) => Err(other.into()),
    }
}

async fn view_of(
    state: &AppState,
    m: i64,
    kind: InstrumentKind,
    f: &InstrumentFigures,
) -> ApiResult<InstrumentView> {
    let name = name_of(state, m, kind, f.instrument_id).await?;
    let bars: Vec<Bar> = REDEEM_BUCKETS
        .iter()
        .zip(f.buckets)
        .map(|((_, label), value)| Bar {
            label: (*label).into(),
            value,
        })
        .collect();
    Ok(InstrumentView {
        id: f.instrument_id,
        chart: charts::columns(&name, &bars, 180, 36),
        name,
        issued: f.issued,
        redeemed: f.redeemed,
        rate: percent(f.redemption_rate()),
        median: duration_zh(f.median_seconds),
        p90: duration_zh(f.p90_seconds),
        lapsed: f.lapsed,
        outstanding: f.outstanding,
        outstanding_yuan: format_yuan(f.outstanding_fen),
        distribution: f.buckets.to_vec(),
    })
}

/// The figures of a query's kind and period, for one allowed to see them.
pub async fn analytics(
    state: &AppState,
    authed: &Authed,
    query: &AnalyticsQuery,
) -> ApiResult<AnalyticsView> {
    let kind = match query.kind.trim() {
        "" => InstrumentKind::Batch,
        code => InstrumentKind::parse(code).ok_or_else(|| ApiError::invalid("未知的统计对象"))?,
    };
    authed.require(permission_of(kind))?;
    let now = crate::now();
    let (from, to) = period(Some(&query.from), Some(&query.to), now)?;
    let m = authed.merchant_id();
    let facts = state.store.issue_facts(m, kind, from, to, now).await?;
    let mut instruments = Vec::new();
    for f in figures(&facts).iter().rev() {
        instruments.push(view_of(state, m, kind, f).await?);
    }
    Ok(AnalyticsView {
        kind: kind.code(),
        kinds: InstrumentKind::ALL
            .into_iter()
            .filter(|k| authed.can(permission_of(*k)))
            .map(|k| KindLink {
                code: k.code(),
                label: k.label_zh(),
                current: k == kind,
            })
            .collect(),
        from: format_date(from),
        to: format_date(to - 1),
        buckets: REDEEM_BUCKETS.iter().map(|(_, label)| *label).collect(),
        instruments,
    })
}

async fn analytics_page(
    State(state): State<AppState>,
    authed: Authed,
    Query(query): Query<AnalyticsQuery>,
) -> PageResult {
    let view = analytics(&state, &authed, &query).await?;
    Ok(render(
        &state,
        "analytics.html",
        &Page::new("数据分析", &authed),
        view,
    ))
}

/// The figures as xlsx, the headers in the language the person chose.
async fn export_analytics(
    State(state): State<AppState>,
    authed: Authed,
    Query(query): Query<AnalyticsQuery>,
) -> ApiResult<Response> {
    let view = analytics(&state, &authed, &query).await?;
    let xlsx = |e: rust_xlsxwriter::XlsxError| ApiError::Internal(format!("xlsx: {e}"));
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let sheet = workbook.add_worksheet();
    let mut titles = vec![
        "名称",
        "发放数",
        "已兑换",
        "兑换率",
        "兑换时长中位数",
        "兑换时长P90",
        "已失效",
        "未兑换",
        "未兑换面值（元）",
    ];
    titles.extend(view.buckets.iter());
    for (col, title) in authed.export_lang.headers(&titles).iter().enumerate() {
        sheet.write_string(0, col as u16, title).map_err(xlsx)?;
    }
    for (i, v) in view.instruments.iter().enumerate() {
        let row = i as u32 + 1;
        sheet
            .write_string(row, 0, crate::exports::escape_formula(&v.name))
            .map_err(xlsx)?;
        let numbers = [v.issued, v.redeemed];
        for (col, n) in numbers.iter().enumerate() {
            sheet
                .write_number(row, col as u16 + 1, *n as f64)
                .map_err(xlsx)?;
        }
        for (col, text) in [&v.rate, &v.median, &v.p90].iter().enumerate() {
            sheet
                .write_string(row, col as u16 + 3, *text)
                .map_err(xlsx)?;
        }
        sheet.write_number(row, 6, v.lapsed as f64).map_err(xlsx)?;
        sheet
            .write_number(row, 7, v.outstanding as f64)
            .map_err(xlsx)?;
        sheet
            .write_string(row, 8, &v.outstanding_yuan)
            .map_err(xlsx)?;
        for (col, n) in v.distribution.iter().enumerate() {
            sheet
                .write_number(row, col as u16 + 9, *n as f64)
                .map_err(xlsx)?;
        }
    }
    let bytes = workbook.save_to_buffer().map_err(xlsx)?;
    Ok(crate::exports::download(
        bytes,
        &format!("数据分析-{}-{}至{}.xlsx", view.kind, view.from, view.to),
        crate::exports::XLSX_CONTENT_TYPE,
    ))
}
