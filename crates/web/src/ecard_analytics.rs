//! 数据驱动选品 (`/api/v1/ecard-analytics`): per product and per
//! marketplace over a period, 核销率, time to redeem (median, p90 and its
//! distribution), 退款率 and 过期率; the console draws them as SVG, and
//! the same figures export as xlsx.

use crate::auth::Authed;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Query};
use crate::AppState;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use kaquan_core::auth::Permission;
use kaquan_core::clock::format_date;
use kaquan_core::ecard::analytics::{by_product_and_marketplace, figures, Figures, REDEEM_BUCKETS};
use serde::{Deserialize, Serialize};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/ecard-analytics", get(get_ecard_analytics))
        .route(
            "/api/v1/ecard-analytics/export",
            get(export_ecard_analytics),
        )
}

/// The longest period one query covers, in days.
pub const PERIOD_DAYS_MAX: i64 = 366;
/// The period when none is asked: the last 30 days.
pub const PERIOD_DAYS_DEFAULT: i64 = 30;

#[derive(Deserialize, Default, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AnalyticsQuery {
    /// Cards delivered from this day (`YYYY-MM-DD`); 30 days ago when absent.
    pub from: Option<String>,
    /// Until this day, inclusive; today when absent.
    pub to: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct FiguresDto {
    pub delivered: i64,
    pub verified: i64,
    pub refunded: i64,
    pub expired: i64,
    /// 核销率: verified ÷ delivered (0–1).
    pub verify_rate: f64,
    pub refund_rate: f64,
    pub expiry_rate: f64,
    /// Seconds from delivery to use.
    pub median_seconds: Option<i64>,
    pub p90_seconds: Option<i64>,
    /// Uses per bucket, in the order of `buckets` of the answer.
    pub distribution: Vec<i64>,
}

impl From<&Figures> for FiguresDto {
    fn from(f: &Figures) -> Self {
        Self {
            delivered: f.delivered,
            verified: f.verified,
            refunded: f.refunded,
            expired: f.expired,
            verify_rate: f.rate(f.verified),
            refund_rate: f.rate(f.refunded),
            expiry_rate: f.rate(f.expired),
            median_seconds: f.median_seconds,
            p90_seconds: f.p90_seconds,
            distribution: f.buckets.to_vec(),
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ProductFiguresDto {
    pub product_id: i64,
    pub name: String,
    pub figures: FiguresDto,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct MarketplaceFiguresDto {
    pub marketplace: &'static str,
    pub label: &'static str,
    pub figures: FiguresDto,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"from": "2026-11-01", "to": "2026-11-30", "buckets": ["1 小时内", "1–24 小时", "1–3 天", "3–7 天", "7–30 天", "30 天以上"], "total": {"delivered": 10, "verified": 6, "refunded": 1, "expired": 1, "verify_rate": 0.6, "refund_rate": 0.1, "expiry_rate": 0.1, "median_seconds": 7200, "p90_seconds": 432000, "distribution": [1, 3, 1, 1, 0, 0]}, "products": [], "marketplaces": []}))]
pub struct AnalyticsDto {
    pub from: String,
    pub to: String,
    /// The distribution's buckets of time to redeem.
    pub buckets: Vec<&'static str>,
    pub total: FiguresDto,
    pub products: Vec<ProductFiguresDto>,
    pub marketplaces: Vec<MarketplaceFiguresDto>,
}

/// An analytics period `[from, to)` from its optional days (`to`
/// inclusive): the last [`PERIOD_DAYS_DEFAULT`] days up to today when
/// absent, at most [`PERIOD_DAYS_MAX`] days.
pub(crate) fn period(from: Option<&str>, to: Option<&str>, now: i64) -> ApiResult<(i64, i64)> {
    let to = crate::lists::parse_optional_date(to, "结束日期", true)?
        .unwrap_or_else(|| kaquan_core::clock::start_of_today(now) + 86_399)
        + 1;
    let from = crate::lists::parse_optional_date(from, "开始日期", false)?
        .unwrap_or(to - PERIOD_DAYS_DEFAULT * 86_400);
    if from >= to || to - from > PERIOD_DAYS_MAX * 86_400 {
        return Err(ApiError::invalid(format!(
            "统计区间须为 1–{PERIOD_DAYS_MAX} 天，且开始不晚于结束"
        )));
    }
    Ok((from, to))
}

/// The figures of a query's period.
pub(crate) async fn analytics(
    state: &AppState,
    authed: &Authed,
    query: &AnalyticsQuery,
) -> ApiResult<AnalyticsDto> {
    authed.require(Permission::EcardsManage)?;
    let now = crate::now();
    let (from, to) = period(query.from.as_deref(), query.to.as_deref(), now)?;
    let m = authed.merchant_id();
    let facts = state.store.list_delivery_facts(m, from, to).await?;
    let products = state.store.list_ecard_products(m).await?;
    let (by_product, by_marketplace) = by_product_and_marketplace(&facts, now);
    Ok(AnalyticsDto {
        from: format_date(from),
        to: format_date(to - 1),
        buckets: REDEEM_BUCKETS.iter().map(|(_, label)| *label).collect(),
        total: FiguresDto::from(&figures(&facts, now)),
        products: by_product
            .iter()
            .map(|(id, f)| ProductFiguresDto {
                product_id: *id,
                name: products
                    .iter()
                    .find(|p| p.id == *id)
                    .map(|p| p.fields.name.clone())
                    .unwrap_or_default(),
                figures: f.into(),
            })
            .collect(),
        marketplaces: by_marketplace
            .iter()
            .map(|(m, f)| MarketplaceFiguresDto {
                marketplace: m.code(),
                label: m.label_zh(),
                figures: f.into(),
            })
            .collect(),
    })
}

async fn get_ecard_analytics(
    State(state): State<AppState>,
    authed: Authed,
    Query(query): Query<AnalyticsQuery>,
) -> ApiResult<Json<AnalyticsDto>> {
    Ok(Json(analytics(&state, &authed, &query).await?))
}

/// A duration as people read it.
pub(crate) fn duration_zh(seconds: Option<i64>) -> String {
    match seconds {
        None => "—".into(),
        Some(s) if s < 3_600 => format!("{} 分钟", s / 60),
        Some(s) if s < 86_400 => format!("{:.1} 小时", s as f64 / 3_600.0),
        Some(s) => format!("{:.1} 天", s as f64 / 86_400.0),
    }
}

pub(crate) fn percent(rate: f64) -> String {
    format!("{:.1}%", rate * 100.0)
}

/// The figures as xlsx: one sheet by product, one by marketplace.
async fn export_ecard_analytics(
    State(state): State<AppState>,
    authed: Authed,
    Query(query): Query<AnalyticsQuery>,
) -> ApiResult<Response> {
    let a = analytics(&state, &authed, &query).await?;
    let xlsx = |e: rust_xlsxwriter::XlsxError| ApiError::Internal(format!("xlsx: {e}"));
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let groups: [(&str, Vec<(String, &FiguresDto)>); 2] = [
        (
            "按商品",
            a.products
                .iter()
                .map(|p| (p.name.clone(), &p.figures))
                .collect(),
        ),
        (
            "按平台",
            a.marketplaces
                .iter()
                .map(|m| (m.label.to_owned(), &m.figures))
                .collect(),
        ),
    ];
    for (sheet_name, rows) in groups {
        let sheet = workbook.add_worksheet();
        sheet.set_name(sheet_name).map_err(xlsx)?;
        let mut titles = vec![
            "名称",
            "发货张数",
            "核销张数",
            "退款张数",
            "过期张数",
            "核销率",
            "退款率",
            "过期率",
            "核销时效中位数（小时）",
            "核销时效P90（小时）",
        ];
        titles.extend(a.buckets.iter());
        for (col, t) in authed.export_lang.headers(&titles).iter().enumerate() {
            sheet.write_string(0, col as u16, t).map_err(xlsx)?;
        }
        for (i, (name, f)) in rows.iter().enumerate() {
            let row = i as u32 + 1;
            sheet
                .write_string(row, 0, crate::exports::escape_formula(name))
                .map_err(xlsx)?;
            let hours = |s: Option<i64>| s.map(|s| s as f64 / 3_600.0);
            let numbers = [
                Some(f.delivered as f64),
                Some(f.verified as f64),
                Some(f.refunded as f64),
                Some(f.expired as f64),
                Some(f.verify_rate),
                Some(f.refund_rate),
                Some(f.expiry_rate),
                hours(f.median_seconds),
                hours(f.p90_seconds),
            ];
            let counts = f.distribution.iter().map(|n| Some(*n as f64));
            for (col, n) in numbers.into_iter().chain(counts).enumerate() {
                if let Some(n) = n {
                    sheet.write_number(row, col as u16 + 1, n).map_err(xlsx)?;
                }
            }
        }
    }
    let bytes = workbook.save_to_buffer().map_err(xlsx)?;
    let name = format!("电子卡密数据-{}至{}.xlsx", a.from, a.to);
    Ok(crate::exports::download(bytes, &name, crate::openapi::XLSX))
}

/// A horizontal bar chart as SVG: one bar per (label, value), the value
/// written beside it (`text` of each), scaled to the largest.
pub(crate) fn bars_svg(bars: &[(String, f64, String)]) -> String {
    let max = bars
        .iter()
        .map(|(_, v, _)| *v)
        .fold(0.0_f64, f64::max)
        .max(f64::MIN_POSITIVE);
    let (row, label_w, bar_w) = (26.0, 110.0, 220.0);
    let height = row * bars.len() as f64 + 4.0;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {} {height}\" width=\"100%\" role=\"img\" style=\"max-width:520px\">",
        label_w + bar_w + 90.0
    );
    for (i, (label, value, text)) in bars.iter().enumerate() {
        let y = i as f64 * row + 4.0;
        let w = (value / max * bar_w).max(if *value > 0.0 { 2.0 } else { 0.0 });
        svg.push_str(&format!(
            "<text x=\"{}\" y=\"{}\" font-size=\"12\" text-anchor=\"end\">{}</text>\
             <rect x=\"{label_w}\" y=\"{y}\" width=\"{w:.1}\" height=\"18\" fill=\"#1677ff\"/>\
             <text x=\"{:.1}\" y=\"{}\" font-size=\"12\">{}</text>",
            label_w - 6.0,
            y + 14.0,
            escape(label),
            label_w + w + 6.0,
            y + 14.0,
            escape(text)
        ));
    }
    svg.push_str("</svg>");
    svg
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bar_chart_scales_to_its_largest_bar_and_escapes_labels() {
        let svg = bars_svg(&[
            ("a<b".into(), 2.0, "2".into()),
            ("c".into(), 1.0, "1".into()),
            ("d".into(), 0.0, "0".into()),
        ]);
        assert!(svg.contains("a&lt;b"));
        assert!(svg.contains("width=\"220.0\""));
        assert!(svg.contains("width=\"110.0\""));
        assert!(svg.contains("width=\"0.0\""));
        assert_eq!(bars_svg(&[]).matches("<rect").count(), 0);
    }

    #[test]
    fn durations_read_in_minutes_hours_or_days() {
        assert_eq!(duration_zh(None), "—");
        assert_eq!(duration_zh(Some(120)), "2 分钟");
        assert_eq!(duration_zh(Some(5_400)), "1.5 小时");
        assert_eq!(duration_zh(Some(2 * 86_400)), "2.0 天");
        assert_eq!(percent(0.256), "25.6%");
    }
}
