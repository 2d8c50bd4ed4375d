//! When points lapse (积分有效期): never, at each year's end, or N months
//! after they were earned. Points are used oldest first, so what lapses at
//! a moment is what was earned up to the cutoff less everything taken
//! from the account so far (uses, reversals, earlier lapses); expiring
//! that amount makes the next sweep find nothing: each point lapses
//! exactly once, whenever and however often the sweep runs.

use super::PointsExpiry;
use crate::clock::MERCHANT_UTC_OFFSET_SECONDS;
use time::{Date, Month, OffsetDateTime, UtcOffset};

/// What one sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PointsSweep {
    /// Members looked at (each once a day).
    pub looked_at: i64,
    /// Members whose points lapsed.
    pub expired: i64,
    /// Members told of points lapsing soon.
    pub noticed: i64,
}

/// Members hear this many days before their points lapse.
pub const NOTICE_DAYS: i64 = 7;

fn local(now: i64) -> Option<OffsetDateTime> {
    let offset = UtcOffset::from_whole_seconds(MERCHANT_UTC_OFFSET_SECONDS).ok()?;
    Some(
        OffsetDateTime::from_unix_timestamp(now)
            .ok()?
            .to_offset(offset),
    )
}

/// Points earned at or before this second have lapsed at `now`; `None`
/// when points never lapse.
pub fn cutoff(expiry: PointsExpiry, now: i64) -> Option<i64> {
    let here = local(now)?;
    match expiry {
        PointsExpiry::Never => None,
        // Everything earned before this year's first second.
        PointsExpiry::YearEnd => {
            let new_year = Date::from_calendar_date(here.year(), Month::January, 1).ok()?;
            Some(crate::clock::start_of_day(new_year) - 1)
        }
        // Earned N calendar months ago or earlier (the day clamped to the
        // month's end: 31 March less one month is 28 or 29 February).
        PointsExpiry::Rolling { months } => {
            let total =
                i64::from(here.year()) * 12 + i64::from(u8::from(here.month())) - 1 - months;
            let (year, month) = (
                i32::try_from(total.div_euclid(12)).ok()?,
                total.rem_euclid(12) + 1,
            );
            let month = Month::try_from(u8::try_from(month).ok()?).ok()?;
            let day = here.day().min(month.length(year));
            let then = Date::from_calendar_date(year, month, day).ok()?;
            Some(now - (here.date() - then).whole_seconds())
        }
    }
}

/// The notice that `points` of a member lapse within [`NOTICE_DAYS`]
/// (`member.points_expiring`), once per member and cutoff.
pub fn expiring_event(
    member: &super::Member,
    number: &str,
    points: i64,
    expiry: PointsExpiry,
    now: i64,
) -> crate::event::NewEvent {
    let by = match expiry {
        PointsExpiry::YearEnd => format!("{}-12-31", local(now).map_or(0, |t| t.year())),
        _ => crate::clock::format_date(now + NOTICE_DAYS * 86_400),
    };
    crate::event::NewEvent::new(
        member.merchant_id,
        crate::event::EventType::MemberPointsExpiring,
        serde_json::json!({
            "member_id": member.id,
            "member_number": number,
            "program_id": member.program_id,
            "customer_id": member.external_id,
            "phone": member.phone,
            "points": points,
            "expires_by": by,
            "message": format!("您有 {points} 积分将于 {by} 前过期，请尽快使用"),
        }),
        now,
    )
}

/// What lapses: points earned up to the cutoff (`matured`) less all taken
/// so far (`taken`, as a positive number).
pub fn lapse(matured: i64, taken: i64) -> i64 {
    (matured - taken).max(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-06-15 12:00 in Shanghai.
    const JUNE: i64 = 1_781_496_000;

    #[test]
    fn year_end_lapses_what_was_earned_before_new_year() {
        let cut = cutoff(PointsExpiry::YearEnd, JUNE).unwrap();
        assert_eq!(
            crate::clock::format_datetime(cut + 1),
            "2026-01-01 00:00:00"
        );
        assert_eq!(crate::clock::format_datetime(cut), "2025-12-31 23:59:59");
        assert_eq!(cutoff(PointsExpiry::Never, JUNE), None);
    }

    #[test]
    fn rolling_months_are_calendar_months_clamped_to_the_months_end() {
        let cut = cutoff(PointsExpiry::Rolling { months: 12 }, JUNE).unwrap();
        assert_eq!(crate::clock::format_datetime(cut), "2025-06-15 12:00:00");
        let cut = cutoff(PointsExpiry::Rolling { months: 7 }, JUNE).unwrap();
        assert_eq!(crate::clock::format_datetime(cut), "2025-11-15 12:00:00");
        // 2026-03-31 12:00 less one month: 28 February.
        let march = JUNE - (76 * 86_400);
        assert_eq!(crate::clock::format_datetime(march), "2026-03-31 12:00:00");
        let cut = cutoff(PointsExpiry::Rolling { months: 1 }, march).unwrap();
        assert_eq!(crate::clock::format_datetime(cut), "2026-02-28 12:00:00");
    }

    #[test]
    fn what_lapses_is_what_matured_less_what_was_taken_oldest_first() {
        assert_eq!(lapse(100, 30), 70);
        assert_eq!(
            lapse(100, 130),
            0,
            "used more than matured: nothing left to lapse"
        );
        // After lapsing 70, the taken total includes them: nothing more.
        assert_eq!(lapse(100, 30 + 70), 0);
    }
}
