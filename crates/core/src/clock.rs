//! Time: a `Clock` so use cases and tests agree on "now", and the merchant's
//! calendar dates. Timestamps are unix seconds (`i64`); validity dates are
//! whole days in the merchant's time zone (Asia/Shanghai, UTC+8, for now).

use time::{macros::format_description, Date, OffsetDateTime, UtcOffset};

pub trait Clock: Send + Sync {
    fn now(&self) -> i64;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        OffsetDateTime::now_utc().unix_timestamp()
    }
}

/// China Standard Time, the default merchant time zone (no daylight saving).
pub const MERCHANT_UTC_OFFSET_SECONDS: i32 = 8 * 3600;

fn merchant_offset() -> UtcOffset {
    UtcOffset::from_whole_seconds(MERCHANT_UTC_OFFSET_SECONDS).expect("constant offset is valid")
}

/// The earliest year a date field takes.
pub const DATE_YEAR_MIN: i32 = 2000;
/// The latest year a date field takes.
pub const DATE_YEAR_MAX: i32 = 2199;

/// What a date field takes, as messages say it.
pub const DATE_FORMAT_HINT: &str = "YYYY-MM-DD，年份在 2000–2199 之间";

/// Parses `YYYY-MM-DD` as a calendar date between [`DATE_YEAR_MIN`] and
/// [`DATE_YEAR_MAX`] (year 0000 is a typo, not a validity period).
pub fn parse_date(text: &str) -> Option<Date> {
    Date::parse(text.trim(), format_description!("[year]-[month]-[day]"))
        .ok()
        .filter(|date| (DATE_YEAR_MIN..=DATE_YEAR_MAX).contains(&date.year()))
}

/// The first second of `date` in the merchant's time zone.
pub fn start_of_day(date: Date) -> i64 {
    date.midnight()
        .assume_offset(merchant_offset())
        .unix_timestamp()
}

/// The first second of the merchant-local day `timestamp` falls in.
pub fn start_of_today(timestamp: i64) -> i64 {
    let local = timestamp + i64::from(MERCHANT_UTC_OFFSET_SECONDS);
    local - local.rem_euclid(86_400) - i64::from(MERCHANT_UTC_OFFSET_SECONDS)
}

/// The last second of `date` in the merchant's time zone (validity is inclusive).
pub fn end_of_day(date: Date) -> i64 {
    start_of_day(date) + 86_399
}

/// The merchant-local calendar date of a timestamp, as `YYYY-MM-DD`.
pub fn format_date(timestamp: i64) -> String {
    OffsetDateTime::from_unix_timestamp(timestamp)
        .map(|t| {
            t.to_offset(merchant_offset())
                .date()
                .format(format_description!("[year]-[month]-[day]"))
                .unwrap_or_default()
        })
        .unwrap_or_default()
}

/// The merchant-local time of a timestamp, as `YYYY-MM-DD HH:MM:SS`.
pub fn format_datetime(timestamp: i64) -> String {
    OffsetDateTime::from_unix_timestamp(timestamp)
        .map(|t| {
            t.to_offset(merchant_offset())
                .format(format_description!(
                    "[year]-[month]-[day] [hour]:[minute]:[second]"
                ))
                .unwrap_or_default()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validity_days_are_whole_days_in_china_time() {
        let date = parse_date("2026-01-01").unwrap();
        assert_eq!(format_datetime(start_of_day(date)), "2026-01-01 00:00:00");
        assert_eq!(format_datetime(end_of_day(date)), "2026-01-01 23:59:59");
        assert_eq!(format_date(end_of_day(date)), "2026-01-01");
        assert!(parse_date("2026-13-01").is_none());
        assert!(parse_date("yesterday").is_none());
        assert!(parse_date("0000-01-01").is_none());
        assert!(parse_date("1999-12-31").is_none());
        assert!(parse_date("2000-01-01").is_some());
        assert!(parse_date("2199-12-31").is_some());
        assert!(parse_date("2200-01-01").is_none());
    }
}
