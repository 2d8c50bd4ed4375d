//! 数据分析 (`/analytics`): per card batch, 兑换码 template or coupon
//! program, of what was issued in a period (cards activated, codes issued,
//! coupons claimed): how much was redeemed and how soon (median, p90 and
//! the distribution, drawn as SVG), how much lapsed unused, and what is
//! outstanding and worth, and how many card sales were refunded; per 会员卡
//! program (`kind=members`), what its members did in the period (joined,
//! points issued, used, lapsed and taken back, top-ups, balance spent,
//! spending) and hold now. The same figures export as xlsx. E-cards have
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
use kaquan_core::analytics::{
    figures, program_figures, InstrumentFigures, InstrumentKind, ProgramFigures, REDEEM_BUCKETS,
};
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
    /// `batches` (the default), `codes`, `coupons` or `members`.
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
    pub refunded: i64,
    pub outstanding: i64,
    pub outstanding_yuan: String,
    pub distribution: Vec<i64>,
    /// The distribution as SVG columns.
    pub chart: String,
}

/// One 会员卡 program's figures, as the page and the export show them.
#[derive(Serialize)]
pub struct ProgramView {
    pub id: i64,
    pub name: String,
    pub joined: i64,
    pub points_issued: i64,
    pub points_used: i64,
    pub points_expired: i64,
    pub points_taken: i64,
    pub recharged_yuan: String,
    pub bonus_yuan: String,
    pub balance_spent_yuan: String,
    pub spend_yuan: String,
    pub members: i64,
    pub points: i64,
    pub balance_yuan: String,
}

/// The kind of the page: an instrument, or the member programs.
const MEMBERS: &str = "members";

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
    pub programs: Vec<ProgramView>,
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
        refunded: f.refunded,
        outstanding: f.outstanding,
        outstanding_yuan: format_yuan(f.outstanding_fen),
        distribution: f.buckets.to_vec(),
    })
}

async fn program_view(state: &AppState, m: i64, f: &ProgramFigures) -> ApiResult<ProgramView> {
    let name = match state.store.get_member_program(m, f.program_id).await {
        Ok(p) => p.fields.title,
        Err(kaquan_core::StoreError::NotFound) => format!("#{}", f.program_id),
        Err(other) => return Err(other.into()),
    };
    Ok(ProgramView {
        id: f.program_id,
        name,
        joined: f.joined,
        points_issued: f.points_issued,
        points_used: f.points_used,
        points_expired: f.points_expired,
        points_taken: f.points_taken,
        recharged_yuan: format_yuan(f.recharged_fen),
        bonus_yuan: format_yuan(f.bonus_fen),
        balance_spent_yuan: format_yuan(f.balance_spent_fen),
        spend_yuan: format_yuan(f.spend_fen),
        members: f.holdings.members,
        points: f.holdings.points,
        balance_yuan: format_yuan(f.holdings.balance_fen),
    })
}

/// The kinds a person may look at, the current one marked.
fn kind_links(authed: &Authed, current: &str) -> Vec<KindLink> {
    let mut links: Vec<KindLink> = InstrumentKind::ALL
        .into_iter()
        .filter(|k| authed.can(permission_of(*k)))
        .map(|k| KindLink {
            code: k.code(),
            label: k.label_zh(),
            current: k.code() == current,
        })
        .collect();
    if authed.can(Permission::MembersView) {
        links.push(KindLink {
            code: MEMBERS,
            label: "会员卡",
            current: current == MEMBERS,
        });
    }
    links
}

/// The figures of a query's kind and period, for one allowed to see them.
pub async fn analytics(
    state: &AppState,
    authed: &Authed,
    query: &AnalyticsQuery,
) -> ApiResult<AnalyticsView> {
    let kind = match query.kind.trim() {
        "" => Some(InstrumentKind::Batch),
        MEMBERS => None,
        code => {
            Some(InstrumentKind::parse(code).ok_or_else(|| ApiError::invalid("未知的统计对象"))?)
        }
    };
    authed.require(kind.map_or(Permission::MembersView, permission_of))?;
    let now = crate::now();
    let (from, to) = period(Some(&query.from), Some(&query.to), now)?;
    let m = authed.merchant_id();
    let (mut instruments, mut programs) = (Vec::new(), Vec::new());
    match kind {
        Some(kind) => {
            let facts = state.store.issue_facts(m, kind, from, to, now).await?;
            let refunds = state.store.refunded_counts(m, kind, from, to).await?;
            for f in figures(&facts, &refunds).iter().rev() {
                instruments.push(view_of(state, m, kind, f).await?);
            }
        }
        None => {
            let totals = state.store.member_operation_totals(m, from, to).await?;
            let holdings = state.store.program_holdings(m).await?;
            for f in program_figures(&totals, &holdings).iter().rev() {
                programs.push(program_view(state, m, f).await?);
            }
        }
    }
    let code = kind.map_or(MEMBERS, InstrumentKind::code);
    Ok(AnalyticsView {
        kind: code,
        kinds: kind_links(authed, code),
        from: format_date(from),
        to: format_date(to - 1),
        buckets: REDEEM_BUCKETS.iter().map(|(_, label)| *label).collect(),
        instruments,
        programs,
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

/// A cell of the export.
enum Cell<'a> {
    Text(&'a str),
    Number(i64),
}

const INSTRUMENT_TITLES: [&str; 9] = [
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

const PROGRAM_TITLES: [&str; 13] = [
    "名称",
    "新会员",
    "积分发放",
    "积分使用",
    "积分过期",
    "积分扣回",
    "充值（元）",
    "充值赠送（元）",
    "储值消费（元）",
    "会员消费（元）",
    "会员数",
    "积分余额",
    "储值余额（元）",
];

fn instrument_row(v: &InstrumentView) -> Vec<Cell<'_>> {
    let mut row = vec![
        Cell::Text(&v.name),
        Cell::Number(v.issued),
        Cell::Number(v.redeemed),
        Cell::Text(&v.rate),
        Cell::Text(&v.median),
        Cell::Text(&v.p90),
        Cell::Number(v.lapsed),
        Cell::Number(v.outstanding),
        Cell::Text(&v.outstanding_yuan),
    ];
    row.extend(v.distribution.iter().map(|n| Cell::Number(*n)));
    row.push(Cell::Number(v.refunded));
    row
}

fn program_row(v: &ProgramView) -> Vec<Cell<'_>> {
    vec![
        Cell::Text(&v.name),
        Cell::Number(v.joined),
        Cell::Number(v.points_issued),
        Cell::Number(v.points_used),
        Cell::Number(v.points_expired),
        Cell::Number(v.points_taken),
        Cell::Text(&v.recharged_yuan),
        Cell::Text(&v.bonus_yuan),
        Cell::Text(&v.balance_spent_yuan),
        Cell::Text(&v.spend_yuan),
        Cell::Number(v.members),
        Cell::Number(v.points),
        Cell::Text(&v.balance_yuan),
    ]
}

/// The figures as xlsx, the headers in the language the person chose.
/// Columns are only ever added at the end (已退款 came after the
/// distribution), so a sheet read by position keeps reading.
async fn export_analytics(
    State(state): State<AppState>,
    authed: Authed,
    Query(query): Query<AnalyticsQuery>,
) -> ApiResult<Response> {
    let view = analytics(&state, &authed, &query).await?;
    let xlsx = |e: rust_xlsxwriter::XlsxError| ApiError::Internal(format!("xlsx: {e}"));
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let sheet = workbook.add_worksheet();
    let (titles, rows): (Vec<&str>, Vec<Vec<Cell>>) = if view.kind == MEMBERS {
        (
            PROGRAM_TITLES.to_vec(),
            view.programs.iter().map(program_row).collect(),
        )
    } else {
        let mut titles = INSTRUMENT_TITLES.to_vec();
        titles.extend(view.buckets.iter());
        titles.push("已退款");
        (
            titles,
            view.instruments.iter().map(instrument_row).collect(),
        )
    };
    for (col, title) in authed.export_lang.headers(&titles).iter().enumerate() {
        sheet.write_string(0, col as u16, title).map_err(xlsx)?;
    }
    for (i, cells) in rows.iter().enumerate() {
        let row = i as u32 + 1;
        for (col, cell) in cells.iter().enumerate() {
            let col = col as u16;
            match cell {
                // Names are the merchant's words: never a formula.
                Cell::Text(text) if col == 0 => sheet
                    .write_string(row, col, crate::exports::escape_formula(text))
                    .map_err(xlsx)?,
                Cell::Text(text) => sheet.write_string(row, col, *text).map_err(xlsx)?,
                Cell::Number(n) => sheet.write_number(row, col, *n as f64).map_err(xlsx)?,
            };
        }
    }
    let bytes = workbook.save_to_buffer().map_err(xlsx)?;
    Ok(crate::exports::download(
        bytes,
        &format!("数据分析-{}-{}至{}.xlsx", view.kind, view.from, view.to),
        crate::exports::XLSX_CONTENT_TYPE,
    ))
}
