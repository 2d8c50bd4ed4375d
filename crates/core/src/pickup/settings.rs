//! 提货设置: the merchant's pickup front page and its rules (title, texts,
//! the switch, 提货预约模式, blocked dates, the redirect, 兑换防刷), checked
//! here for every caller, and their store.

use super::AppointmentMode;
use crate::attempts::ATTEMPT_LIMIT_MAX;
use crate::audit::AuditEntry;
use crate::StoreResult;
use time::Date;

/// 提货设置: the merchant's pickup front page and its rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PickupSettings {
    /// 提货网站名称, shown on the customer's page.
    pub title: String,
    /// A text shown above the form (opening hours, delivery notes…).
    pub notice: String,
    /// 前台提货开关: when off, the page shows `closed_message` and accepts nothing.
    pub enabled: bool,
    pub closed_message: String,
    pub appointment: AppointmentMode,
    /// Days that cannot be chosen (holidays, stock-taking).
    pub blocked_dates: Vec<Date>,
    /// Where the customer goes after a successful order (http/https only).
    pub redirect_url: Option<String>,
    /// 兑换防刷: wrong guesses allowed per card, and per client, per hour.
    pub attempts_per_card: i64,
    pub attempts_per_client: i64,
    /// 公网地址: where customers reach this shop (printed in QR codes and
    /// links); `None`: the server's `--public-url`.
    pub public_url: Option<String>,
}

impl Default for PickupSettings {
    fn default() -> Self {
        Self {
            title: "提货中心".into(),
            notice: String::new(),
            enabled: true,
            closed_message: "暂停提货，请稍后再来".into(),
            appointment: AppointmentMode::AnyFutureDate,
            blocked_dates: Vec::new(),
            redirect_url: None,
            attempts_per_card: 5,
            attempts_per_client: 20,
            public_url: None,
        }
    }
}

/// Checks a redirect address: http or https, no spaces or control characters.
pub fn check_redirect_url(text: &str) -> Result<Option<String>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let lower = text.to_ascii_lowercase();
    let has_host = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
        .is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'));
    if !has_host
        || text.len() > 500
        || text
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '"' || c == '<' || c == '>')
    {
        return Err("跳转地址须以 http:// 或 https:// 开头，且不能含空格".into());
    }
    Ok(Some(text.to_owned()))
}

/// Checks a 公网地址: `http(s)://host[:port]`, nothing after but an
/// optional `/`, which is dropped; empty means none.
pub fn check_public_url(text: &str) -> Result<Option<String>, String> {
    let text = text.trim().trim_end_matches('/');
    if text.is_empty() {
        return Ok(None);
    }
    let lower = text.to_ascii_lowercase();
    let host = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
        .unwrap_or("");
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c) || !c.is_ascii());
    if !host_ok || text.len() > 200 {
        return Err("公网地址须形如 https://card.example.com（只写到域名或端口，不含路径）".into());
    }
    Ok(Some(text.to_owned()))
}

impl AppointmentMode {
    /// The mode as stored: (code, min days, range from, range until).
    pub fn to_parts(&self) -> (&'static str, Option<i64>, Option<String>, Option<String>) {
        match self {
            Self::MinDaysAhead(days) => (self.code(), Some(i64::from(*days)), None, None),
            Self::DateRange(from, until) => (
                self.code(),
                None,
                Some(from.to_string()),
                Some(until.to_string()),
            ),
            _ => (self.code(), None, None, None),
        }
    }

    /// The mode from its stored or submitted parts.
    pub fn from_parts(
        code: &str,
        min_days: Option<i64>,
        from: Option<&str>,
        until: Option<&str>,
    ) -> Result<Self, String> {
        match code {
            "none" => Ok(Self::None),
            "any" => Ok(Self::AnyFutureDate),
            "weekdays" => Ok(Self::WeekdaysOnly),
            "min_days" => match min_days {
                Some(days @ 0..=365) => Ok(Self::MinDaysAhead(days as u16)),
                _ => Err("提前天数须为 0–365".into()),
            },
            "range" => {
                let parse = |d: Option<&str>| d.and_then(crate::clock::parse_date);
                match (parse(from), parse(until)) {
                    (Some(from), Some(until)) if from <= until => Ok(Self::DateRange(from, until)),
                    _ => Err("请填写正确的可预约日期范围".into()),
                }
            }
            _ => Err("未知的提货预约模式".into()),
        }
    }
}

/// Parses blocked dates written one per line or separated by commas.
pub fn parse_blocked_dates(text: &str) -> Result<Vec<Date>, String> {
    let mut dates = Vec::new();
    for part in text
        .split([',', '\n', '，', ' '])
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        dates.push(
            crate::clock::parse_date(part)
                .ok_or_else(|| format!("不可预约日期格式不对：{part}"))?,
        );
    }
    dates.sort();
    dates.dedup();
    Ok(dates)
}

pub fn format_blocked_dates(dates: &[Date]) -> String {
    dates
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// Longest 提货网站名称.
pub const PICKUP_TITLE_LENGTH_MAX: usize = 40;
/// Longest 提示文字 and 暂停提货提示.
pub const PICKUP_TEXT_LENGTH_MAX: usize = 500;

/// 提货设置 as a form, the API or a file gives them, before any check.
#[derive(Debug, Clone, Default)]
pub struct PickupSettingsFields {
    pub title: String,
    pub notice: String,
    pub enabled: bool,
    pub closed_message: String,
    /// `none`, `any`, `min_days`, `range`, `weekdays`.
    pub appointment_mode: String,
    pub appointment_min_days: Option<i64>,
    pub appointment_from: Option<String>,
    pub appointment_until: Option<String>,
    /// `YYYY-MM-DD`, one per line or separated by commas.
    pub blocked_dates: String,
    pub redirect_url: Option<String>,
    pub attempts_per_card: i64,
    pub attempts_per_client: i64,
    pub public_url: Option<String>,
}

impl PickupSettings {
    /// Checks every field and reports every problem at once, in Chinese.
    pub fn from_fields(f: &PickupSettingsFields) -> Result<Self, Vec<String>> {
        let mut errors = Vec::new();
        if f.title.trim().is_empty() || f.title.chars().count() > PICKUP_TITLE_LENGTH_MAX {
            errors.push(format!("提货网站名称须为 1–{PICKUP_TITLE_LENGTH_MAX} 个字"));
        }
        for (value, label) in [(&f.notice, "提示文字"), (&f.closed_message, "暂停提货提示")]
        {
            if value.chars().count() > PICKUP_TEXT_LENGTH_MAX {
                errors.push(format!("{label}最多 {PICKUP_TEXT_LENGTH_MAX} 个字"));
            }
        }
        let appointment = AppointmentMode::from_parts(
            &f.appointment_mode,
            f.appointment_min_days,
            f.appointment_from.as_deref(),
            f.appointment_until.as_deref(),
        )
        .map_err(|e| errors.push(e))
        .ok();
        let blocked = parse_blocked_dates(&f.blocked_dates)
            .map_err(|e| errors.push(e))
            .ok();
        let redirect = check_redirect_url(f.redirect_url.as_deref().unwrap_or(""))
            .map_err(|e| errors.push(e))
            .ok();
        let public_url = check_public_url(f.public_url.as_deref().unwrap_or(""))
            .map_err(|e| errors.push(e))
            .ok();
        for (value, label) in [
            (f.attempts_per_card, "每张卡"),
            (f.attempts_per_client, "每个访客"),
        ] {
            if !(1..=ATTEMPT_LIMIT_MAX).contains(&value) {
                errors.push(format!(
                    "兑换防刷：{label}每小时允许的错误次数须为 1–{ATTEMPT_LIMIT_MAX}"
                ));
            }
        }
        match (appointment, blocked, redirect, public_url) {
            (Some(appointment), Some(blocked_dates), Some(redirect_url), Some(public_url))
                if errors.is_empty() =>
            {
                Ok(Self {
                    title: f.title.trim().to_owned(),
                    notice: f.notice.trim().to_owned(),
                    enabled: f.enabled,
                    closed_message: f.closed_message.trim().to_owned(),
                    appointment,
                    blocked_dates,
                    redirect_url,
                    attempts_per_card: f.attempts_per_card,
                    attempts_per_client: f.attempts_per_client,
                    public_url,
                })
            }
            _ => Err(errors),
        }
    }

    /// The fields that [`PickupSettings::from_fields`] turns back into these settings.
    pub fn to_fields(&self) -> PickupSettingsFields {
        let (mode, days, from, until) = self.appointment.to_parts();
        PickupSettingsFields {
            title: self.title.clone(),
            notice: self.notice.clone(),
            enabled: self.enabled,
            closed_message: self.closed_message.clone(),
            appointment_mode: mode.to_owned(),
            appointment_min_days: days,
            appointment_from: from,
            appointment_until: until,
            blocked_dates: format_blocked_dates(&self.blocked_dates),
            redirect_url: self.redirect_url.clone(),
            attempts_per_card: self.attempts_per_card,
            attempts_per_client: self.attempts_per_client,
            public_url: self.public_url.clone(),
        }
    }
}

/// 提货设置, carriers and the pickup page's logo in the database.
#[async_trait::async_trait]
pub trait PickupSettingsStore: Send + Sync + 'static {
    /// 提货设置; the defaults when the merchant never saved any.
    async fn get_pickup_settings(&self, merchant_id: i64) -> StoreResult<PickupSettings>;
    async fn put_pickup_settings(
        &self,
        merchant_id: i64,
        settings: &PickupSettings,
        audit: &AuditEntry,
    ) -> StoreResult<()>;

    /// The merchant's own carrier names (the common ones are in `pickup::CARRIERS`).
    async fn list_carriers(&self, merchant_id: i64) -> StoreResult<Vec<String>>;
    async fn add_carrier(&self, merchant_id: i64, name: &str) -> StoreResult<()>;

    /// The pickup page's logo (type checked by the caller), replacing any earlier one.
    async fn put_logo(
        &self,
        merchant_id: i64,
        content_type: &str,
        bytes: &[u8],
        now: i64,
    ) -> StoreResult<()>;
    /// When the logo last changed, or `None` without a logo (cheap: no bytes).
    async fn logo_updated_at(&self, merchant_id: i64) -> StoreResult<Option<i64>>;
    async fn get_logo(&self, merchant_id: i64) -> StoreResult<Option<(String, Vec<u8>)>>;
}

#[cfg(test)]
mod settings_tests {
    use super::*;

    fn good() -> PickupSettingsFields {
        PickupSettings::default().to_fields()
    }

    #[test]
    fn a_public_url_is_a_scheme_and_a_host_only() {
        assert_eq!(check_public_url(""), Ok(None));
        assert_eq!(
            check_public_url(" https://card.example.com/ ")
                .unwrap()
                .as_deref(),
            Some("https://card.example.com")
        );
        assert!(check_public_url("http://203.0.113.9:8080")
            .unwrap()
            .is_some());
        assert!(check_public_url("https://卡券.中国").unwrap().is_some());
        let longest = format!("https://{}.com", "a".repeat(200 - 12));
        assert_eq!(longest.len(), 200);
        assert!(
            check_public_url(&longest).unwrap().is_some(),
            "200 characters is the limit"
        );
        assert!(check_public_url(&format!("{longest}m")).is_err());
        for bad in [
            "card.example.com",
            "ftp://x.com",
            "https://x.com/path",
            "https://x.com?a=1",
            "https://",
            "https://a b.com",
            "javascript:alert(1)",
        ] {
            assert!(check_public_url(bad).is_err(), "{bad}");
        }
        let saved = PickupSettings::from_fields(&PickupSettingsFields {
            public_url: Some("https://card.example.com/".into()),
            ..good()
        })
        .unwrap();
        assert_eq!(
            saved.public_url.as_deref(),
            Some("https://card.example.com")
        );
        assert_eq!(PickupSettings::from_fields(&saved.to_fields()), Ok(saved));
    }

    #[test]
    fn settings_check_every_field_and_report_every_problem_at_once() {
        let saved = PickupSettings::from_fields(&good()).unwrap();
        assert_eq!(saved, PickupSettings::default(), "defaults round-trip");
        let trimmed = PickupSettings::from_fields(&PickupSettingsFields {
            title: "  提货  ".into(),
            notice: " 说明 ".into(),
            ..good()
        })
        .unwrap();
        assert_eq!(
            (trimmed.title.as_str(), trimmed.notice.as_str()),
            ("提货", "说明")
        );
        let limits = PickupSettings::from_fields(&PickupSettingsFields {
            title: "名".repeat(PICKUP_TITLE_LENGTH_MAX),
            notice: "字".repeat(PICKUP_TEXT_LENGTH_MAX),
            closed_message: "字".repeat(PICKUP_TEXT_LENGTH_MAX),
            attempts_per_card: 1,
            attempts_per_client: ATTEMPT_LIMIT_MAX,
            ..good()
        });
        assert!(limits.is_ok(), "{limits:?}");
        let errors = PickupSettings::from_fields(&PickupSettingsFields {
            title: "名".repeat(PICKUP_TITLE_LENGTH_MAX + 1),
            notice: "字".repeat(PICKUP_TEXT_LENGTH_MAX + 1),
            closed_message: "字".repeat(PICKUP_TEXT_LENGTH_MAX + 1),
            appointment_mode: "sometimes".into(),
            blocked_dates: "2026-13-01".into(),
            redirect_url: Some("javascript:alert(1)".into()),
            attempts_per_card: 0,
            attempts_per_client: ATTEMPT_LIMIT_MAX + 1,
            ..good()
        })
        .unwrap_err();
        assert_eq!(errors.len(), 8, "{errors:?}");
        assert!(PickupSettings::from_fields(&PickupSettingsFields {
            title: " ".into(),
            ..good()
        })
        .is_err());
    }

    #[test]
    fn redirect_addresses_must_be_http_or_https() {
        assert_eq!(check_redirect_url("").unwrap(), None);
        assert_eq!(
            check_redirect_url(" https://shop.example.com/ok ")
                .unwrap()
                .as_deref(),
            Some("https://shop.example.com/ok")
        );
        assert!(check_redirect_url("http://x.cn").is_ok());
        for bad in [
            "javascript:alert(1)",
            "ftp://x",
            "https://",
            "//evil.com",
            "https://a b",
            "https:///x",
            "http://x\"onmouseover",
        ] {
            assert!(check_redirect_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn appointment_modes_round_trip_through_their_parts() {
        for mode in [
            AppointmentMode::None,
            AppointmentMode::AnyFutureDate,
            AppointmentMode::WeekdaysOnly,
            AppointmentMode::MinDaysAhead(3),
            AppointmentMode::DateRange(
                time::macros::date!(2026 - 12 - 01),
                time::macros::date!(2026 - 12 - 31),
            ),
        ] {
            let (code, days, from, until) = mode.to_parts();
            assert_eq!(
                AppointmentMode::from_parts(code, days, from.as_deref(), until.as_deref()).unwrap(),
                mode
            );
        }
        assert!(
            AppointmentMode::from_parts("range", None, Some("2026-12-31"), Some("2026-12-01"))
                .is_err()
        );
        assert_eq!(
            parse_blocked_dates("2026-12-25, 2026-10-01\n2026-12-25")
                .unwrap()
                .len(),
            2
        );
        assert!(parse_blocked_dates("tomorrow").is_err());
    }
}
