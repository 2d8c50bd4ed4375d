//! 概况: the owner's figures across every product. Each business event the
//! figures count is tallied per merchant-local day (and per 门店 where it
//! names one) in the change's own transaction, so a figure over 30 days
//! reads at most 30 × its locations rows however large the shop is. What
//! the figures mean and how days and periods are cut lives here; the stores
//! keep the tallies (a trigger on the outbox, `events`, in each backend's
//! migration) and sum what still stands (balances owed, deliveries given up).

use crate::clock::MERCHANT_UTC_OFFSET_SECONDS;
use crate::event::EventType;
use crate::StoreResult;

/// The events the stores tally: exactly those a [`Figure`] counts.
pub const TALLIED: [EventType; 10] = [
    EventType::CardsActivated,
    EventType::PickupOrderCreated,
    EventType::PickupOrderShipped,
    EventType::CodeRedeemed,
    EventType::CouponClaimed,
    EventType::CouponVerified,
    EventType::CouponUndone,
    EventType::MemberActivated,
    EventType::EcardDelivered,
    EventType::EcardVerified,
];

/// One figure of 概况.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Figure {
    CardsActivated,
    PickupsPlaced,
    OrdersShipped,
    CodesRedeemed,
    CouponsClaimed,
    CouponsVerified,
    MembersJoined,
    EcardsDelivered,
    EcardsVerified,
}

impl Figure {
    pub const ALL: [Figure; 9] = [
        Self::CardsActivated,
        Self::PickupsPlaced,
        Self::OrdersShipped,
        Self::CodesRedeemed,
        Self::CouponsClaimed,
        Self::CouponsVerified,
        Self::MembersJoined,
        Self::EcardsDelivered,
        Self::EcardsVerified,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Self::CardsActivated => "cards_activated",
            Self::PickupsPlaced => "pickups_placed",
            Self::OrdersShipped => "orders_shipped",
            Self::CodesRedeemed => "codes_redeemed",
            Self::CouponsClaimed => "coupons_claimed",
            Self::CouponsVerified => "coupons_verified",
            Self::MembersJoined => "members_joined",
            Self::EcardsDelivered => "ecards_delivered",
            Self::EcardsVerified => "ecards_verified",
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.code() == code)
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            Self::CardsActivated => "卡券激活",
            Self::PickupsPlaced => "提货下单",
            Self::OrdersShipped => "已发货",
            Self::CodesRedeemed => "兑换码兑换",
            Self::CouponsClaimed => "优惠券领取",
            Self::CouponsVerified => "优惠券核销",
            Self::MembersJoined => "新会员",
            Self::EcardsDelivered => "电子卡密发货",
            Self::EcardsVerified => "电子卡密核销",
        }
    }

    /// How an event moves this figure: +1 per thing it names, −1 for an
    /// undone verification; `None` when it does not count here.
    pub fn sign_of(self, event_type: EventType) -> Option<i64> {
        use EventType as E;
        let sign = match (self, event_type) {
            (Self::CardsActivated, E::CardsActivated)
            | (Self::PickupsPlaced, E::PickupOrderCreated)
            | (Self::OrdersShipped, E::PickupOrderShipped)
            | (Self::CodesRedeemed, E::CodeRedeemed)
            | (Self::CouponsClaimed, E::CouponClaimed)
            | (Self::CouponsVerified, E::CouponVerified)
            | (Self::MembersJoined, E::MemberActivated)
            | (Self::EcardsDelivered, E::EcardDelivered)
            | (Self::EcardsVerified, E::EcardVerified) => 1,
            (Self::CouponsVerified, E::CouponUndone) => -1,
            _ => return None,
        };
        Some(sign)
    }
}

/// The period 概况 covers: today, or the last 7 or 30 days with today.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Period {
    #[default]
    Today,
    Week,
    Month,
}

impl Period {
    pub const ALL: [Period; 3] = [Self::Today, Self::Week, Self::Month];

    pub fn code(self) -> &'static str {
        match self {
            Self::Today => "today",
            Self::Week => "7d",
            Self::Month => "30d",
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.code() == code)
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            Self::Today => "今天",
            Self::Week => "近 7 天",
            Self::Month => "近 30 天",
        }
    }

    pub fn n_days(self) -> i64 {
        match self {
            Self::Today => 1,
            Self::Week => 7,
            Self::Month => 30,
        }
    }

    /// The days a chart of this period draws: at least a week, so today
    /// has something to stand beside.
    pub fn chart_days(self) -> i64 {
        self.n_days().max(7)
    }
}

/// The merchant-local day `timestamp` falls in, as whole days since
/// 1970-01-01; the stores' tally triggers cut days the same way.
pub fn day_of(timestamp: i64) -> i64 {
    (timestamp + i64::from(MERCHANT_UTC_OFFSET_SECONDS)).div_euclid(86_400)
}

/// The Julian day number of 1970-01-01, day 0 of [`day_of`].
const JULIAN_DAY_OF_EPOCH: i64 = 2_440_588;

/// The date of a day number, `YYYY-MM-DD`.
pub fn date_of_day(day: i64) -> String {
    i32::try_from(day + JULIAN_DAY_OF_EPOCH)
        .ok()
        .and_then(|julian| time::Date::from_julian_day(julian).ok())
        .map_or_else(String::new, |date| date.to_string())
}

/// One row of the tallies: the events of one type on one day (at one
/// location, where they name one), summed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DailyTally {
    pub day: i64,
    pub event_type: EventType,
    pub location_id: Option<i64>,
    /// How many things the events named (cards, coupons, e-cards, …).
    pub n: i64,
    /// The money they carried: a code's value, a coupon's discount.
    pub amount_fen: i64,
}

/// What the merchant owes its customers now: stored value and points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Liabilities {
    pub balance_fen: i64,
    pub points: i64,
}

/// Deliveries given up on, which someone should look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Attention {
    pub failed_webhooks: i64,
    pub failed_sms: i64,
}

/// A figure over a period: its total and its daily series.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FigureSeries {
    pub figure: Figure,
    pub total: i64,
    pub amount_fen: i64,
    /// One value per day of the chart, oldest first.
    pub daily: Vec<i64>,
}

/// 概况's figures for a period ending today.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub period: Period,
    /// The chart's days, oldest first.
    pub days: Vec<i64>,
    pub figures: Vec<FigureSeries>,
    /// Coupons verified per location in the period, the most first; a
    /// verification at no location is left out.
    pub verified_by_location: Vec<(i64, i64)>,
}

impl Summary {
    /// Sums `tallies` (which cover at least the chart's days) into the
    /// figures of `period` ending on the day of `now`.
    pub fn of(tallies: &[DailyTally], period: Period, now: i64) -> Self {
        let today = day_of(now);
        let days: Vec<i64> = (today - period.chart_days() + 1..=today).collect();
        let in_period = |day: i64| day > today - period.n_days() && day <= today;
        let figures = Figure::ALL
            .into_iter()
            .map(|figure| {
                let mut series = FigureSeries {
                    figure,
                    total: 0,
                    amount_fen: 0,
                    daily: vec![0; days.len()],
                };
                for t in tallies {
                    let Some(sign) = figure.sign_of(t.event_type) else {
                        continue;
                    };
                    if let Some(slot) = days.iter().position(|d| *d == t.day) {
                        series.daily[slot] += sign * t.n;
                    }
                    if in_period(t.day) {
                        series.total += sign * t.n;
                        series.amount_fen += sign * t.amount_fen;
                    }
                }
                series
            })
            .collect();
        let mut by_location: Vec<(i64, i64)> = Vec::new();
        for t in tallies {
            let (Some(location), Some(sign)) =
                (t.location_id, Figure::CouponsVerified.sign_of(t.event_type))
            else {
                continue;
            };
            if !in_period(t.day) {
                continue;
            }
            match by_location.iter_mut().find(|(l, _)| *l == location) {
                Some((_, n)) => *n += sign * t.n,
                None => by_location.push((location, sign * t.n)),
            }
        }
        by_location.retain(|(_, n)| *n != 0);
        by_location.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        Self {
            period,
            days,
            figures,
            verified_by_location: by_location,
        }
    }

    pub fn figure(&self, figure: Figure) -> &FigureSeries {
        self.figures
            .iter()
            .find(|f| f.figure == figure)
            .expect("a summary holds every figure")
    }
}

/// 概况 in the database.
#[async_trait::async_trait]
pub trait DashboardStore: Send + Sync + 'static {
    /// The tallies of days `first_day..=last_day`, one row per day, event
    /// type and location.
    async fn daily_tallies(
        &self,
        merchant_id: i64,
        first_day: i64,
        last_day: i64,
    ) -> StoreResult<Vec<DailyTally>>;
    /// The sum of the merchant's customers' balances, in each asset.
    async fn liabilities(&self, merchant_id: i64) -> StoreResult<Liabilities>;
    /// Webhook deliveries and texts given up on.
    async fn needing_attention(&self, merchant_id: i64) -> StoreResult<Attention>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally(day: i64, event_type: EventType, location_id: Option<i64>, n: i64) -> DailyTally {
        DailyTally {
            day,
            event_type,
            location_id,
            n,
            amount_fen: n * 100,
        }
    }

    #[test]
    fn every_tallied_event_moves_exactly_one_figure_and_every_figure_is_tallied() {
        for event_type in EventType::ALL {
            let moved = Figure::ALL
                .iter()
                .filter(|f| f.sign_of(event_type).is_some())
                .count();
            assert_eq!(
                moved,
                usize::from(TALLIED.contains(&event_type)),
                "{event_type:?}"
            );
        }
        for figure in Figure::ALL {
            assert!(TALLIED.iter().any(|e| figure.sign_of(*e) == Some(1)));
            assert_eq!(Figure::parse(figure.code()), Some(figure));
        }
        for period in Period::ALL {
            assert_eq!(Period::parse(period.code()), Some(period));
        }
        assert_eq!(Period::parse("week"), None);
        assert_eq!(Figure::parse("cards"), None);
    }

    #[test]
    fn days_are_cut_at_midnight_in_the_merchants_time_zone() {
        // 2026-12-07 00:00 in Shanghai is 2026-12-06 16:00 UTC.
        let midnight = 1_796_572_800;
        assert_eq!(date_of_day(day_of(midnight)), "2026-12-07");
        assert_eq!(date_of_day(day_of(midnight - 1)), "2026-12-06");
        assert_eq!(day_of(midnight) - day_of(midnight - 1), 1);
        assert_eq!(day_of(midnight + 86_399), day_of(midnight));
    }

    #[test]
    fn a_summary_sums_its_period_and_charts_at_least_a_week() {
        let now = 1_796_572_800;
        let today = day_of(now);
        let tallies = [
            tally(today, EventType::CouponVerified, Some(7), 5),
            tally(today, EventType::CouponUndone, Some(7), 1),
            tally(today - 1, EventType::CouponVerified, Some(8), 9),
            tally(today - 6, EventType::CardsActivated, None, 1000),
            tally(today - 7, EventType::CardsActivated, None, 1),
            tally(today, EventType::BalanceChanged, None, 3),
        ];
        let week = Summary::of(&tallies, Period::Week, now);
        assert_eq!(week.days.len(), 7);
        assert_eq!(week.days.last(), Some(&today));
        let verified = week.figure(Figure::CouponsVerified);
        assert_eq!((verified.total, verified.amount_fen), (13, 1300));
        assert_eq!(verified.daily[6], 4);
        assert_eq!(verified.daily[5], 9);
        assert_eq!(
            week.figure(Figure::CardsActivated).total,
            1000,
            "day 7 is out"
        );
        assert_eq!(week.figure(Figure::CardsActivated).daily[0], 1000);
        assert_eq!(week.verified_by_location, [(8, 9), (7, 4)]);

        let day = Summary::of(&tallies, Period::Today, now);
        assert_eq!(day.days.len(), 7, "today is charted beside its week");
        assert_eq!(day.figure(Figure::CouponsVerified).total, 4);
        assert_eq!(day.figure(Figure::CardsActivated).total, 0);
        assert_eq!(day.verified_by_location, [(7, 4)]);

        let month = Summary::of(&tallies, Period::Month, now);
        assert_eq!(month.days.len(), 30);
        assert_eq!(month.figure(Figure::CardsActivated).total, 1001);
        assert_eq!(month.figure(Figure::MembersJoined).total, 0);
    }

    #[test]
    fn a_location_whose_verifications_were_all_undone_is_not_charted() {
        let now = 1_796_572_800;
        let today = day_of(now);
        let tallies = [
            tally(today, EventType::CouponVerified, Some(7), 2),
            tally(today, EventType::CouponUndone, Some(7), 2),
        ];
        assert!(Summary::of(&tallies, Period::Today, now)
            .verified_by_location
            .is_empty());
    }
}
