//! Pickup cards (提货卡): orders, channels, consignee details, appointment
//! rules, carriers, and the merchant's pickup settings.
//!
//! Architecture invariant: a pickup is one transaction that moves the card
//! `active → used` with a guarded UPDATE (valid window included), inserts the
//! order and writes the audit record; a card has at most one order that is
//! not cancelled (a partial unique index backs this).

pub mod order;
pub mod redeem;
mod settings;

pub use settings::{
    check_redirect_url, format_blocked_dates, parse_blocked_dates, PickupSettings,
    PickupSettingsFields, PickupSettingsStore,
};

use time::{Date, Duration, Weekday};

/// How a pickup reached us (recorded on every order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    /// The customer's own pickup page (提货前台).
    Web,
    /// 到店提货: staff hand the goods over at a location (门店). Its wire
    /// code stays `store` (the API's contract).
    AtLocation,
    /// 电话提货: staff enter the customer's details on their behalf.
    Phone,
    /// The merchant's systems through the open API.
    Api,
}

impl Channel {
    pub const ALL: [Channel; 4] = [Self::Web, Self::AtLocation, Self::Phone, Self::Api];

    pub fn code(self) -> &'static str {
        match self {
            Self::Web => "web",
            Self::AtLocation => "store",
            Self::Phone => "phone",
            Self::Api => "api",
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.code() == code)
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            Self::Web => "顾客自助",
            Self::AtLocation => "到店提货",
            Self::Phone => "电话提货",
            Self::Api => "接口",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrderStatus {
    /// 待发: waiting to be shipped.
    Pending,
    /// 已发: shipped with a carrier and tracking number.
    Shipped,
    /// Handed over in the store; nothing to ship.
    PickedUp,
    /// Cancelled before shipping; the card became usable again.
    Cancelled,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 4] = [
        Self::Pending,
        Self::Shipped,
        Self::PickedUp,
        Self::Cancelled,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Shipped => "shipped",
            Self::PickedUp => "picked_up",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.code() == code)
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            Self::Pending => "待发货",
            Self::Shipped => "已发货",
            Self::PickedUp => "已到店提货",
            Self::Cancelled => "已取消",
        }
    }
}

/// Where and to whom the goods go. Personal data: never logged.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Consignee {
    pub name: String,
    pub phone: String,
    pub province: String,
    pub city: String,
    pub district: String,
    pub address: String,
}

impl std::fmt::Debug for Consignee {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Consignee(<personal data>)")
    }
}

impl Consignee {
    pub fn new(
        name: &str,
        phone: &str,
        province: &str,
        city: &str,
        district: &str,
        address: &str,
    ) -> Result<Self, Vec<String>> {
        let mut errors = Vec::new();
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 32 {
            errors.push("请填写收货人（最多 32 个字）".to_owned());
        }
        let phone = mobile_number(phone);
        if phone.is_none() {
            errors.push("请填写 11 位手机号（1 开头，第二位 3–9）".to_owned());
        }
        let phone = phone.unwrap_or_default();
        for (value, label) in [(province, "省"), (city, "市"), (district, "区/县")] {
            if value.trim().is_empty() || value.trim().chars().count() > 32 {
                errors.push(format!("请选择{label}"));
            }
        }
        let address = address.trim();
        if address.chars().count() < 4 || address.chars().count() > 200 {
            errors.push("请填写详细地址（4–200 个字）".to_owned());
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Self {
            name: name.to_owned(),
            phone,
            province: province.trim().to_owned(),
            city: city.trim().to_owned(),
            district: district.trim().to_owned(),
            address: address.to_owned(),
        })
    }
}

/// A mainland mobile number as typed (spaces, dashes and a +86 prefix
/// allowed): its 11 digits, `1` then `3`–`9`; `None` when it is not one.
pub fn mobile_number(typed: &str) -> Option<String> {
    let digits: String = typed
        .trim()
        .chars()
        .filter(|c| *c != ' ' && *c != '-')
        .collect();
    let digits = digits
        .strip_prefix("+86")
        .or_else(|| digits.strip_prefix("86").filter(|d| d.len() == 11))
        .unwrap_or(&digits);
    let bytes = digits.as_bytes();
    let ok = bytes.len() == 11
        && bytes[0] == b'1'
        && (b'3'..=b'9').contains(&bytes[1])
        && bytes.iter().all(u8::is_ascii_digit);
    ok.then(|| digits.to_owned())
}

/// Masks a phone number for staff who may not see personal data: 138****0000.
pub fn mask_phone(phone: &str) -> String {
    let chars: Vec<char> = phone.chars().collect();
    if chars.len() <= 4 {
        return "*".repeat(chars.len());
    }
    // At least one character is hidden, however short the number.
    let keep_head = 3.min(chars.len() - 5);
    let head: String = chars[..keep_head].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - keep_head - 4))
}

/// Masks a name: 张** .
pub fn mask_name(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => format!("{first}{}", "*".repeat(chars.count().max(1))),
        None => String::new(),
    }
}

/// 提货预约模式: how the customer may choose the delivery date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppointmentMode {
    /// No date is asked for.
    None,
    /// Any day from today on.
    AnyFutureDate,
    /// At least this many days after today.
    MinDaysAhead(u16),
    /// Only within this range (inclusive).
    DateRange(Date, Date),
    /// Monday to Friday only.
    WeekdaysOnly,
}

impl AppointmentMode {
    pub fn code(&self) -> &'static str {
        match self {
            Self::None => "none",
            Self::AnyFutureDate => "any",
            Self::MinDaysAhead(_) => "min_days",
            Self::DateRange(..) => "range",
            Self::WeekdaysOnly => "weekdays",
        }
    }

    pub fn asks_for_date(&self) -> bool {
        *self != Self::None
    }

    /// The earliest and latest day the customer's date picker offers
    /// (`None`: no latest).
    pub fn date_bounds(&self, today: Date) -> (Date, Option<Date>) {
        match self {
            Self::MinDaysAhead(days) => (today + Duration::days(i64::from(*days)), None),
            Self::DateRange(from, until) => ((*from).max(today), Some(*until)),
            Self::None | Self::AnyFutureDate | Self::WeekdaysOnly => (today, None),
        }
    }

    /// The rule printed beside the date picker, with the blocked days.
    pub fn rule_zh(&self, today: Date, blocked: &[Date]) -> String {
        let (earliest, _) = self.date_bounds(today);
        let mut rule = match self {
            Self::None => String::new(),
            Self::AnyFutureDate => "可选今天及以后的任一天".to_owned(),
            Self::MinDaysAhead(days) => format!("须提前 {days} 天预约，最早 {earliest}"),
            Self::DateRange(_, until) => format!("只能选 {earliest} 至 {until}"),
            Self::WeekdaysOnly => "只能选工作日（周一至周五）".to_owned(),
        };
        let upcoming: Vec<String> = blocked
            .iter()
            .filter(|d| **d >= earliest)
            .map(|d| d.to_string())
            .collect();
        if self.asks_for_date() && !upcoming.is_empty() {
            rule.push_str(&format!("；不可预约：{}", upcoming.join("、")));
        }
        rule
    }

    /// Checks a chosen date against the mode and the blocked dates.
    /// `today` is the merchant's current calendar date.
    pub fn check(
        &self,
        chosen: Option<Date>,
        today: Date,
        blocked: &[Date],
    ) -> Result<Option<Date>, String> {
        let Some(date) = chosen else {
            return if self.asks_for_date() {
                Err("请选择预约发货日期".into())
            } else {
                Ok(None)
            };
        };
        if !self.asks_for_date() {
            return Ok(None);
        }
        if date < today {
            return Err("预约日期不能早于今天".into());
        }
        if blocked.contains(&date) {
            return Err("该日期不可预约，请另选一天".into());
        }
        match self {
            Self::None | Self::AnyFutureDate => {}
            Self::MinDaysAhead(days) => {
                if date < today + Duration::days(i64::from(*days)) {
                    return Err(format!("预约日期须在 {days} 天之后"));
                }
            }
            Self::DateRange(from, until) => {
                if date < *from || date > *until {
                    return Err(format!("预约日期须在 {from} 至 {until} 之间"));
                }
            }
            Self::WeekdaysOnly => {
                if matches!(date.weekday(), Weekday::Saturday | Weekday::Sunday) {
                    return Err("只能预约工作日（周一至周五）".into());
                }
            }
        }
        Ok(Some(date))
    }
}

/// The common Chinese carriers every merchant starts with (物流配置); a
/// merchant adds its own named variants such as 省外顺丰.
pub const CARRIERS: &[&str] = &[
    "顺丰速运",
    "圆通速递",
    "中通快递",
    "申通快递",
    "韵达快递",
    "京东物流",
    "EMS",
    "极兔速递",
    "百世快递",
    "德邦快递",
    "邮政快递包裹",
];

/// A tracking number as a carrier prints it: letters, digits and dashes.
pub fn check_tracking_number(text: &str) -> Result<String, String> {
    let text = text.trim();
    if text.len() < 6
        || text.len() > 40
        || !text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err("运单号须为 6–40 位字母、数字或 -".into());
    }
    Ok(text.to_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn consignee_details_are_checked_and_never_printed() {
        let ok = Consignee::new(
            "张三",
            "138-0000-0000",
            "浙江省",
            "杭州市",
            "西湖区",
            "文三路 100 号",
        )
        .unwrap();
        assert_eq!(ok.phone, "13800000000");
        for typed in [
            "13800000000",
            "+86 138 0000 0000",
            "8613800000000",
            "199-0000-0000",
        ] {
            assert!(mobile_number(typed).is_some(), "{typed}");
        }
        for typed in [
            "12800000000",
            "1380000000",
            "138000000000",
            "0571-88888888",
            "1380000000a",
            "+8512800000000",
        ] {
            assert_eq!(mobile_number(typed), None, "{typed}");
        }
        assert_eq!(
            mobile_number("+8613912345678").as_deref(),
            Some("13912345678")
        );
        assert_eq!(format!("{ok:?}"), "Consignee(<personal data>)");
        let errors = Consignee::new("", "12", "", "杭州市", "西湖区", "x").unwrap_err();
        assert_eq!(errors.len(), 4, "{errors:?}");
    }

    #[test]
    fn personal_data_is_masked_for_staff_without_the_permission() {
        assert_eq!(mask_phone("13800001234"), "138****1234");
        assert_eq!(mask_phone("123"), "***");
        assert_eq!(mask_name("张三丰"), "张**");
        assert_eq!(mask_name("李"), "李*");
    }

    #[test]
    fn the_date_picker_offers_what_the_mode_accepts_and_says_its_rule() {
        let today = date!(2026 - 11 - 23);
        let blocked = [date!(2026 - 11 - 20), date!(2026 - 11 - 25)];
        use AppointmentMode::{AnyFutureDate, DateRange, MinDaysAhead, WeekdaysOnly};
        assert_eq!(AnyFutureDate.date_bounds(today), (today, None));
        assert_eq!(WeekdaysOnly.date_bounds(today), (today, None));
        assert_eq!(
            MinDaysAhead(3).date_bounds(today),
            (date!(2026 - 11 - 26), None)
        );
        let range = DateRange(date!(2026 - 11 - 01), date!(2026 - 12 - 31));
        assert_eq!(
            range.date_bounds(today),
            (today, Some(date!(2026 - 12 - 31)))
        );
        let later = DateRange(date!(2026 - 12 - 01), date!(2026 - 12 - 31));
        assert_eq!(later.date_bounds(today).0, date!(2026 - 12 - 01));
        assert_eq!(
            AnyFutureDate.rule_zh(today, &blocked),
            "可选今天及以后的任一天；不可预约：2026-11-25",
            "only blocked days still ahead"
        );
        assert_eq!(
            MinDaysAhead(3).rule_zh(today, &[]),
            "须提前 3 天预约，最早 2026-11-26"
        );
        assert_eq!(later.rule_zh(today, &[]), "只能选 2026-12-01 至 2026-12-31");
        assert_eq!(
            WeekdaysOnly.rule_zh(today, &[]),
            "只能选工作日（周一至周五）"
        );
        assert_eq!(AppointmentMode::None.rule_zh(today, &blocked), "");
        // Every day the picker offers from its earliest is one the check takes (but blocked and weekend days).
        for mode in [AnyFutureDate, MinDaysAhead(3), later, WeekdaysOnly] {
            let (earliest, _) = mode.date_bounds(today);
            assert!(
                mode.check(Some(earliest - Duration::days(1)), today, &[])
                    .is_err()
                    || earliest == today
            );
            let mut day = earliest;
            while matches!(day.weekday(), Weekday::Saturday | Weekday::Sunday) {
                day += Duration::days(1);
            }
            assert_eq!(mode.check(Some(day), today, &[]), Ok(Some(day)), "{mode:?}");
        }
    }

    #[test]
    fn appointment_modes_accept_only_their_dates() {
        let today = date!(2026 - 11 - 23); // a Monday
        let check = |mode: AppointmentMode, chosen: Option<Date>| {
            mode.check(chosen, today, &[date!(2026 - 11 - 25)])
        };
        assert_eq!(check(AppointmentMode::None, None), Ok(None));
        assert!(
            check(AppointmentMode::AnyFutureDate, None).is_err(),
            "a date is required"
        );
        assert!(
            check(AppointmentMode::AnyFutureDate, Some(date!(2026 - 11 - 22))).is_err(),
            "past"
        );
        assert!(
            check(AppointmentMode::AnyFutureDate, Some(date!(2026 - 11 - 25))).is_err(),
            "blocked"
        );
        assert!(check(AppointmentMode::AnyFutureDate, Some(today)).is_ok());
        assert!(check(
            AppointmentMode::MinDaysAhead(3),
            Some(date!(2026 - 11 - 24))
        )
        .is_err());
        assert!(check(
            AppointmentMode::MinDaysAhead(3),
            Some(date!(2026 - 11 - 26))
        )
        .is_ok());
        let range = AppointmentMode::DateRange(date!(2026 - 12 - 01), date!(2026 - 12 - 10));
        assert!(check(range.clone(), Some(date!(2026 - 11 - 30))).is_err());
        assert!(check(range, Some(date!(2026 - 12 - 10))).is_ok());
        assert!(
            check(AppointmentMode::WeekdaysOnly, Some(date!(2026 - 11 - 28))).is_err(),
            "Saturday"
        );
        assert!(
            check(AppointmentMode::WeekdaysOnly, Some(date!(2026 - 11 - 27))).is_ok(),
            "Friday"
        );
    }

    #[test]
    fn tracking_numbers_are_letters_digits_and_dashes() {
        assert_eq!(
            check_tracking_number(" sf1234567890 ").unwrap(),
            "SF1234567890"
        );
        assert!(check_tracking_number("12").is_err());
        assert!(check_tracking_number("=HYPERLINK(1)").is_err());
    }
}
