//! 概况's figures across every product for a period (today, 7 or 30
//! days): what waits to be done, what happened (each figure with its daily
//! columns and a link to its list), what is owed and what failed. Each
//! figure shows only to a role that may open its list. The numbers come
//! from `kaquan_core::dashboard`'s tallies, so the page costs the same on a
//! shop of ten cards and one of ten million.

use crate::auth::Authed;
use crate::charts::{self, Bar};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Query};
use crate::AppState;
use axum::extract::State;
use axum::routing::get;
use axum::Router;
use kaquan_core::auth::Permission;
use kaquan_core::dashboard::{date_of_day, day_of, Figure, FigureSeries, Period, Summary};
use kaquan_core::money::format_yuan;
use serde::{Deserialize, Serialize};

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/overview", get(get_overview))
}

/// 概况's query: the period it covers.
#[derive(Deserialize, Default, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct OverviewQuery {
    /// `today` (the default), `7d` or `30d`.
    #[serde(default)]
    pub period: String,
}

impl OverviewQuery {
    pub fn period(&self) -> ApiResult<Period> {
        match self.period.as_str() {
            "" => Ok(Period::Today),
            code => Period::parse(code).ok_or_else(|| ApiError::invalid("未知的统计周期")),
        }
    }
}

/// 待处理: pickup orders to ship.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ToShip {
    pub pending: i64,
    pub today: i64,
    pub tomorrow: i64,
    pub overdue: i64,
}

/// One day's value of a figure.
#[derive(Serialize, utoipa::ToSchema)]
pub struct DayValue {
    /// `YYYY-MM-DD`, in the server's time zone.
    pub date: String,
    pub value: i64,
}

/// One figure's tile.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Tile {
    /// `cards_activated`, `pickups_placed`, `orders_shipped`,
    /// `codes_redeemed`, `coupons_claimed`, `coupons_verified`,
    /// `members_joined`, `ecards_delivered` or `ecards_verified`.
    pub code: &'static str,
    pub label: &'static str,
    pub total: i64,
    /// The money it carried, where it carries any: `¥12.34`.
    pub amount: Option<String>,
    /// The same in fen.
    pub amount_fen: Option<i64>,
    /// The console's list it opens.
    pub href: String,
    /// Its days, oldest first (at least a week).
    pub daily: Vec<DayValue>,
    /// Its daily columns, as SVG.
    pub chart: String,
}

/// 未兑付: what customers hold, for a role that may see it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Owed {
    /// 储值余额: `¥12.34`.
    pub balance: Option<String>,
    pub balance_fen: Option<i64>,
    /// 积分.
    pub points: Option<i64>,
}

/// Webhook deliveries and texts given up on.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Failures {
    pub webhooks: i64,
    pub sms: i64,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PeriodLink {
    pub code: &'static str,
    pub label: &'static str,
    pub current: bool,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"periods": [{"code": "today", "label": "今天", "current": true}],
    "first_date": "2026-12-07", "last_date": "2026-12-07",
    "to_ship": {"pending": 12, "today": 3, "tomorrow": 4, "overdue": 1},
    "tiles": [{"code": "codes_redeemed", "label": "兑换码兑换", "total": 8, "amount": "¥400.00", "amount_fen": 40000,
        "href": "/customers", "daily": [{"date": "2026-12-07", "value": 8}], "chart": "<svg …>"}],
    "owed": {"balance": "¥1200.00", "balance_fen": 120000, "points": 5300},
    "failures": {"webhooks": 0, "sms": 1}, "by_location": null}))]
pub struct Overview {
    pub periods: Vec<PeriodLink>,
    pub first_date: String,
    pub last_date: String,
    pub to_ship: Option<ToShip>,
    pub tiles: Vec<Tile>,
    pub owed: Option<Owed>,
    pub failures: Option<Failures>,
    /// Coupons verified per 门店, as SVG; none when no role or no data.
    pub by_location: Option<String>,
}

/// Who may see a figure: whoever may open the list it links to.
fn permission_of(figure: Figure) -> Permission {
    match figure {
        Figure::CardsActivated => Permission::AuditView,
        Figure::PickupsPlaced | Figure::OrdersShipped => Permission::OrdersManage,
        Figure::CodesRedeemed => Permission::BalancesView,
        Figure::CouponsClaimed | Figure::CouponsVerified => Permission::CouponsManage,
        Figure::MembersJoined => Permission::MembersView,
        Figure::EcardsDelivered | Figure::EcardsVerified => Permission::EcardsManage,
    }
}

/// The list a figure opens, filtered to its period where the list can be.
fn href_of(figure: Figure, from: &str) -> String {
    match figure {
        Figure::CardsActivated => format!("/audit?action=activate_cards&date_from={from}"),
        Figure::PickupsPlaced => format!("/orders?date_from={from}"),
        Figure::OrdersShipped => "/orders?status=shipped".into(),
        Figure::CodesRedeemed => "/customers".into(),
        Figure::CouponsClaimed => "/coupons".into(),
        Figure::CouponsVerified => format!("/coupons/verifications?from={from}"),
        Figure::MembersJoined => format!("/members?activated_from={from}"),
        Figure::EcardsDelivered | Figure::EcardsVerified => format!("/ecards/orders?from={from}"),
    }
}

fn tile(series: &FigureSeries, summary: &Summary, from: &str) -> Tile {
    let daily: Vec<DayValue> = summary
        .days
        .iter()
        .zip(&series.daily)
        .map(|(day, value)| DayValue {
            date: date_of_day(*day),
            value: *value,
        })
        .collect();
    let bars: Vec<Bar> = daily
        .iter()
        .map(|d| Bar {
            label: d.date.clone(),
            value: d.value,
        })
        .collect();
    let carries_money = matches!(
        series.figure,
        Figure::CodesRedeemed | Figure::CouponsVerified
    );
    Tile {
        code: series.figure.code(),
        label: series.figure.label_zh(),
        total: series.total,
        amount: carries_money.then(|| format!("¥{}", format_yuan(series.amount_fen))),
        amount_fen: carries_money.then_some(series.amount_fen),
        href: href_of(series.figure, from),
        daily,
        chart: charts::columns(series.figure.label_zh(), &bars, 210, 40),
    }
}

async fn to_ship(state: &AppState, authed: &Authed, now: i64) -> Result<ToShip, ApiError> {
    // The same filters as 订单列表's tabs the tiles open.
    let tab = |quick| crate::orders::tab_filter("pending", quick, now);
    let filters = [tab("")?, tab("today")?, tab("tomorrow")?, tab("overdue")?];
    let counts = state
        .store
        .count_orders(authed.merchant_id(), &filters)
        .await?;
    Ok(ToShip {
        pending: counts[0],
        today: counts[1],
        tomorrow: counts[2],
        overdue: counts[3],
    })
}

/// 概况 for `period` ending today, as this role may see it.
pub async fn overview(
    state: &AppState,
    authed: &Authed,
    period: Period,
) -> Result<Overview, ApiError> {
    let now = crate::now();
    let m = authed.merchant_id();
    let today = day_of(now);
    let first_day = today - period.chart_days() + 1;
    let from = date_of_day(today - period.n_days() + 1);
    let can = |p| authed.can(p);
    let (tallies, to_ship, owed, failures) = tokio::try_join!(
        async { Ok::<_, ApiError>(state.store.daily_tallies(m, first_day, today).await?) },
        async {
            match can(Permission::OrdersManage) {
                true => Ok(Some(to_ship(state, authed, now).await?)),
                false => Ok(None),
            }
        },
        async {
            let (balance, points) = (can(Permission::BalancesView), can(Permission::MembersView));
            if !balance && !points {
                return Ok(None);
            }
            let owed = state.store.liabilities(m).await?;
            Ok::<_, ApiError>(Some(Owed {
                balance: balance.then(|| format!("¥{}", format_yuan(owed.balance_fen))),
                balance_fen: balance.then_some(owed.balance_fen),
                points: points.then_some(owed.points),
            }))
        },
        async {
            if !can(Permission::ApiKeysManage) {
                return Ok(None);
            }
            let a = state.store.needing_attention(m).await?;
            Ok::<_, ApiError>(Some(Failures {
                webhooks: a.failed_webhooks,
                sms: a.failed_sms,
            }))
        },
    )?;
    let summary = Summary::of(&tallies, period, now);
    let tiles = summary
        .figures
        .iter()
        .filter(|f| can(permission_of(f.figure)))
        .map(|f| tile(f, &summary, &from))
        .collect();
    let by_location =
        match can(Permission::CouponsManage) && !summary.verified_by_location.is_empty() {
            true => Some(location_chart(state, m, &summary).await?),
            false => None,
        };
    Ok(Overview {
        periods: Period::ALL
            .into_iter()
            .map(|p| PeriodLink {
                code: p.code(),
                label: p.label_zh(),
                current: p == period,
            })
            .collect(),
        first_date: from,
        last_date: date_of_day(today),
        to_ship,
        tiles,
        owed,
        failures,
        by_location,
    })
}

async fn location_chart(state: &AppState, m: i64, summary: &Summary) -> Result<String, ApiError> {
    let locations = state.store.list_locations(m).await?;
    let bars: Vec<Bar> = summary
        .verified_by_location
        .iter()
        .map(|(id, n)| Bar {
            label: locations
                .iter()
                .find(|l| l.id == *id)
                .map_or_else(|| format!("门店 {id}"), |l| l.fields.name.clone()),
            value: *n,
        })
        .collect();
    Ok(charts::rows("门店核销", &bars, 560))
}

/// 概况 as JSON, for a role's own systems (a wall screen, a BI tool).
async fn get_overview(
    State(state): State<AppState>,
    authed: Authed,
    Query(query): Query<OverviewQuery>,
) -> ApiResult<Json<Overview>> {
    Ok(Json(overview(&state, &authed, query.period()?).await?))
}
