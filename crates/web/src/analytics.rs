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
use crate::extract::{Json, Query};
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
        .route("/api/v1/analytics", get(get_analytics))
        .route("/api/v1/analytics/export", get(export_analytics))
}

#[derive(Deserialize, Serialize, Default, utoipa::IntoParams)]
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
#[derive(Serialize, utoipa::ToSchema)]
pub struct InstrumentView {
    /// The batch, template or program.
    pub id: i64,
    pub name: String,
    /// 发放数: cards activated, codes issued, coupons claimed.
    pub issued: i64,
    /// 已兑换: picked up, redeemed, verified.
    pub redeemed: i64,
    /// 兑换率 as shown: `66.7%`.
    pub rate: String,
    /// The same, 0–1.
    pub redemption_rate: f64,
    /// Time to redeem as shown (`3 小时`), and in seconds.
    pub median: String,
    pub median_seconds: Option<i64>,
    pub p90: String,
    pub p90_seconds: Option<i64>,
    /// 已失效: voided, or past validity unused.
    pub lapsed: i64,
    /// 已退款: of card sales refunded in the period (batches only).
    pub refunded: i64,
    /// 未兑换, and its face value.
    pub outstanding: i64,
    pub outstanding_yuan: String,
    pub outstanding_fen: i64,
    /// Redemptions per bucket of time to redeem (see `buckets`).
    pub distribution: Vec<i64>,
    /// The distribution as SVG columns.
    pub chart: String,
}

/// One 会员卡 program's figures, as the page and the export show them:
/// what its members did in the period, and hold now.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ProgramView {
    pub id: i64,
    pub name: String,
    /// 新会员.
    pub joined: i64,
    /// 积分发放 (开卡赠送, 消费, 手动增加).
    pub points_issued: i64,
    /// 积分使用, less what refunds gave back.
    pub points_used: i64,
    pub points_expired: i64,
    /// 积分扣回: by refunds and by hand.
    pub points_taken: i64,
    /// 充值 and its 赠送, as shown and in fen.
    pub recharged_yuan: String,
    pub recharged_fen: i64,
    pub bonus_yuan: String,
    pub bonus_fen: i64,
    /// 储值消费, less refunds.
    pub balance_spent_yuan: String,
    pub balance_spent_fen: i64,
    /// 会员消费: paid after the member discount, less refunds.
    pub spend_yuan: String,
    pub spend_fen: i64,
    /// Members now, and their 积分 and 储值余额 (a customer with cards of
    /// two programs counts in each).
    pub members: i64,
    pub points: i64,
    pub balance_yuan: String,
    pub balance_fen: i64,
}

/// The kind of the page: an instrument, or the member programs.
const MEMBERS: &str = "members";

#[derive(Serialize, utoipa::ToSchema)]
pub struct KindLink {
    pub code: &'static str,
    pub label: &'static str,
    pub current: bool,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"kind": "batches", "kinds": [{"code": "batches", "label": "卡券批次", "current": true}, {"code": "members", "label": "会员卡", "current": false}],
    "from": "2026-11-01", "to": "2026-11-30", "buckets": ["1 小时内", "1–24 小时", "1–3 天", "3–7 天", "7–30 天", "30 天以上"],
    "instruments": [{"id": 3, "name": "中秋提货卡", "issued": 100, "redeemed": 60, "rate": "60.0%", "redemption_rate": 0.6,
        "median": "2 天", "median_seconds": 172800, "p90": "12 天", "p90_seconds": 1036800, "lapsed": 5, "refunded": 2,
        "outstanding": 35, "outstanding_yuan": "7000.00", "outstanding_fen": 700000, "distribution": [5, 10, 20, 10, 10, 5], "chart": "<svg …>"}],
    "programs": []}))]
pub struct AnalyticsView {
    /// `batches`, `codes`, `coupons` or `members`.
    pub kind: &'static str,
    /// The kinds this role may look at.
    pub kinds: Vec<KindLink>,
    /// The period, both days included.
    pub from: String,
    pub to: String,
    /// The labels of the buckets of time to redeem.
    pub buckets: Vec<&'static str>,
    /// Of an instrument kind; empty for `members`.
    pub instruments: Vec<InstrumentView>,
    /// Of `members`; empty otherwise.
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
        redemption_rate: f.redemption_rate(),
        median: duration_zh(f.median_seconds),
        median_seconds: f.median_seconds,
        p90: duration_zh(f.p90_seconds),
        p90_seconds: f.p90_seconds,
        lapsed: f.lapsed,
        refunded: f.refunded,
        outstanding: f.outstanding,
        outstanding_yuan: format_yuan(f.outstanding_fen),
        outstanding_fen: f.outstanding_fen,
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
        recharged_fen: f.recharged_fen,
        bonus_yuan: format_yuan(f.bonus_fen),
        bonus_fen: f.bonus_fen,
        balance_spent_yuan: format_yuan(f.balance_spent_fen),
        balance_spent_fen: f.balance_spent_fen,
        spend_yuan: format_yuan(f.spend_fen),
        spend_fen: f.spend_fen,
        members: f.holdings.members,
        points: f.holdings.points,
        balance_yuan: format_yuan(f.holdings.balance_fen),
        balance_fen: f.holdings.balance_fen,
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

/// The figures as JSON.
async fn get_analytics(
    State(state): State<AppState>,
    authed: Authed,
    Query(query): Query<AnalyticsQuery>,
) -> ApiResult<Json<AnalyticsView>> {
    Ok(Json(analytics(&state, &authed, &query).await?))
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
