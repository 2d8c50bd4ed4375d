//! 优惠券 (seed 001): a merchant's coupon programs of WeChat's five kinds,
//! their benefit, validity, time and location rules and their states. The
//! coupons customers hold, their codes and verification (核销) are in
//! [`code`] and [`usage`]; the use cases in [`usecases`]; 门店 and 核销员
//! bindings in [`crate::location`].
//!
//! The fields follow WeChat's `card/create` (`base_info`, `date_info`,
//! `advanced_info`), so a merchant who knows 微信卡券 finds the same words;
//! kaquan is the coupon platform itself and calls no one.

pub mod code;
pub mod refusal;
pub mod shared;
pub mod targeted;
pub mod usage;
pub mod usecases;

pub use shared::SharedCoupon;

use crate::clock::{end_of_day, format_date, start_of_day, MERCHANT_UTC_OFFSET_SECONDS};
use crate::money::{format_yuan, FEN_MAX};
use crate::text::check_field;

/// WeChat's `title`: at most 9 汉字.
pub const TITLE_CHARS_MAX: usize = 9;
/// `sub_title`.
pub const SUB_TITLE_CHARS_MAX: usize = 18;
/// `brand_name`: at most 12 汉字.
pub const BRAND_NAME_CHARS_MAX: usize = 12;
/// `notice` (使用提醒): at most 16 汉字.
pub const NOTICE_CHARS_MAX: usize = 16;
/// `description` (使用说明): at most 1024 汉字.
pub const DESCRIPTION_CHARS_MAX: usize = 1024;
/// A 兑换券's gift, a 团购券's contents, a 优惠券's benefit.
pub const DETAIL_CHARS_MAX: usize = 300;
/// `sku.quantity`: the most stock a program holds.
pub const STOCK_MAX: i64 = 100_000_000;
/// `get_limit` and `use_limit` per customer.
pub const PER_CUSTOMER_LIMIT_MAX: i64 = 1000;
/// `fixed_term`: the longest relative validity, in days.
pub const TERM_DAYS_MAX: i64 = 3650;
/// `fixed_begin_term`: the longest delay before a claimed coupon is valid.
pub const BEGIN_AFTER_DAYS_MAX: i64 = 365;
/// Most locations one program lists.
pub const PROGRAM_LOCATIONS_MAX: usize = 500;

/// WeChat's five coupon kinds (`card_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CouponKind {
    Discount,
    Cash,
    Gift,
    Groupon,
    General,
}

impl CouponKind {
    pub const ALL: [Self; 5] = [
        Self::Discount,
        Self::Cash,
        Self::Gift,
        Self::Groupon,
        Self::General,
    ];
    pub fn code(self) -> &'static str {
        match self {
            Self::Discount => "discount",
            Self::Cash => "cash",
            Self::Gift => "gift",
            Self::Groupon => "groupon",
            Self::General => "general_coupon",
        }
    }
    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.code() == code)
    }
    pub fn label_zh(self) -> &'static str {
        match self {
            Self::Discount => "折扣券",
            Self::Cash => "代金券",
            Self::Gift => "兑换券",
            Self::Groupon => "团购券",
            Self::General => "优惠券",
        }
    }
}

/// What a coupon is worth, with its kind's own fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Benefit {
    /// 折扣券: `percent_off` percent off (15 is 8.5折), at most `cap_fen` (最高优惠).
    Discount {
        percent_off: i64,
        cap_fen: Option<i64>,
    },
    /// 代金券: `reduce_cost_fen` off an order of at least `least_cost_fen`
    /// (满 100 减 20; 0 is no threshold).
    Cash {
        least_cost_fen: i64,
        reduce_cost_fen: i64,
    },
    /// 兑换券: one 提货商品, or a gift named in text.
    Gift { goods_id: Option<i64>, gift: String },
    /// 团购券: the package's contents and its price.
    Groupon { deal_detail: String, price_fen: i64 },
    /// 优惠券: a benefit in text.
    General { default_detail: String },
}

/// A benefit as both stores keep it: one column per field, unused ones empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BenefitColumns {
    pub percent_off: Option<i64>,
    pub cap_fen: Option<i64>,
    pub least_cost_fen: Option<i64>,
    pub reduce_cost_fen: Option<i64>,
    pub goods_id: Option<i64>,
    pub detail: String,
    pub price_fen: Option<i64>,
}

impl Benefit {
    pub fn kind(&self) -> CouponKind {
        match self {
            Self::Discount { .. } => CouponKind::Discount,
            Self::Cash { .. } => CouponKind::Cash,
            Self::Gift { .. } => CouponKind::Gift,
            Self::Groupon { .. } => CouponKind::Groupon,
            Self::General { .. } => CouponKind::General,
        }
    }

    pub fn to_columns(&self) -> BenefitColumns {
        let none = BenefitColumns::default();
        match self.clone() {
            Self::Discount {
                percent_off,
                cap_fen,
            } => BenefitColumns {
                percent_off: Some(percent_off),
                cap_fen,
                ..none
            },
            Self::Cash {
                least_cost_fen,
                reduce_cost_fen,
            } => BenefitColumns {
                least_cost_fen: Some(least_cost_fen),
                reduce_cost_fen: Some(reduce_cost_fen),
                ..none
            },
            Self::Gift { goods_id, gift } => BenefitColumns {
                goods_id,
                detail: gift,
                ..none
            },
            Self::Groupon {
                deal_detail,
                price_fen,
            } => BenefitColumns {
                detail: deal_detail,
                price_fen: Some(price_fen),
                ..none
            },
            Self::General { default_detail } => BenefitColumns {
                detail: default_detail,
                ..none
            },
        }
    }

    /// Reads stored columns back; `None` when a kind's field is missing.
    pub fn from_columns(kind: CouponKind, c: BenefitColumns) -> Option<Self> {
        Some(match kind {
            CouponKind::Discount => Self::Discount {
                percent_off: c.percent_off?,
                cap_fen: c.cap_fen,
            },
            CouponKind::Cash => Self::Cash {
                least_cost_fen: c.least_cost_fen?,
                reduce_cost_fen: c.reduce_cost_fen?,
            },
            CouponKind::Gift => Self::Gift {
                goods_id: c.goods_id,
                gift: c.detail,
            },
            CouponKind::Groupon => Self::Groupon {
                deal_detail: c.detail,
                price_fen: c.price_fen?,
            },
            CouponKind::General => Self::General {
                default_detail: c.detail,
            },
        })
    }

    /// The benefit in one line, as the coupon shows it: `8.5折`,
    /// `满100.00元减20.00元`, `兑换：…`.
    pub fn summary_zh(&self) -> String {
        match self {
            Self::Discount {
                percent_off,
                cap_fen,
            } => {
                let text = discount_label(*percent_off);
                match cap_fen {
                    Some(cap) => format!("{text}，最高优惠{}元", format_yuan(*cap)),
                    None => text,
                }
            }
            Self::Cash {
                least_cost_fen: 0,
                reduce_cost_fen,
            } => format!("减{}元，无门槛", format_yuan(*reduce_cost_fen)),
            Self::Cash {
                least_cost_fen,
                reduce_cost_fen,
            } => format!(
                "满{}元减{}元",
                format_yuan(*least_cost_fen),
                format_yuan(*reduce_cost_fen)
            ),
            Self::Gift { gift, .. } => format!("兑换：{gift}"),
            Self::Groupon {
                deal_detail,
                price_fen,
            } => format!("{deal_detail}（团购价{}元）", format_yuan(*price_fen)),
            Self::General { default_detail } => default_detail.clone(),
        }
    }

    fn check(&self, errors: &mut Vec<String>) {
        let amount_ok = |fen: i64| (0..=FEN_MAX).contains(&fen);
        match self {
            Self::Discount {
                percent_off,
                cap_fen,
            } => {
                if !(1..=99).contains(percent_off) {
                    errors.push("折扣须在 0.1折 到 9.9折 之间（优惠 1%–99%）".into());
                }
                if cap_fen.is_some_and(|cap| cap <= 0 || cap > FEN_MAX) {
                    errors.push("最高优惠须大于 0".into());
                }
            }
            Self::Cash {
                least_cost_fen,
                reduce_cost_fen,
            } => {
                if *reduce_cost_fen <= 0 || !amount_ok(*reduce_cost_fen) {
                    errors.push("减免金额须大于 0".into());
                }
                if !amount_ok(*least_cost_fen) {
                    errors.push("起用金额须为 0（无门槛）或正数".into());
                } else if *least_cost_fen > 0 && least_cost_fen < reduce_cost_fen {
                    errors.push("起用金额不能小于减免金额".into());
                }
            }
            Self::Gift { goods_id, gift } => {
                if goods_id.is_none() && gift.trim().is_empty() {
                    errors.push("兑换券须选择提货商品或填写兑换内容".into());
                }
                detail_check("兑换内容", gift, errors);
            }
            Self::Groupon {
                deal_detail,
                price_fen,
            } => {
                if deal_detail.trim().is_empty() {
                    errors.push("团购券须填写团购详情".into());
                }
                detail_check("团购详情", deal_detail, errors);
                if *price_fen <= 0 || !amount_ok(*price_fen) {
                    errors.push("团购价须大于 0".into());
                }
            }
            Self::General { default_detail } => {
                if default_detail.trim().is_empty() {
                    errors.push("优惠券须填写优惠详情".into());
                }
                detail_check("优惠详情", default_detail, errors);
            }
        }
    }

    /// The discount an order of `order_amount_fen` gets. Without an amount
    /// a 代金券 is worth its face value and the others nothing computed (staff
    /// confirm the conditions, as the seed says); with one, a 代金券 below its
    /// threshold is refused.
    pub fn discount_fen(&self, order_amount_fen: Option<i64>) -> Result<i64, usage::CouponRefusal> {
        match (self, order_amount_fen) {
            (
                Self::Cash {
                    least_cost_fen,
                    reduce_cost_fen,
                },
                Some(amount),
            ) => {
                if amount < *least_cost_fen {
                    return Err(usage::CouponRefusal::BelowThreshold {
                        least_cost_fen: *least_cost_fen,
                    });
                }
                Ok((*reduce_cost_fen).min(amount))
            }
            (
                Self::Cash {
                    reduce_cost_fen, ..
                },
                None,
            ) => Ok(*reduce_cost_fen),
            (
                Self::Discount {
                    percent_off,
                    cap_fen,
                },
                Some(amount),
            ) => {
                let off = amount * percent_off / 100;
                Ok(cap_fen.map_or(off, |cap| off.min(cap)))
            }
            _ => Ok(0),
        }
    }
}

fn detail_check(what: &str, text: &str, errors: &mut Vec<String>) {
    if let Err(e) = check_field(what, text, DETAIL_CHARS_MAX) {
        errors.push(e);
    }
}

/// `15` percent off → `8.5折`; `30` → `7折`.
pub fn discount_label(percent_off: i64) -> String {
    let tenths = 100 - percent_off;
    if tenths % 10 == 0 {
        format!("{}折", tenths / 10)
    } else {
        format!("{}.{}折", tenths / 10, tenths % 10)
    }
}

/// When a claimed coupon may be used (`date_info`). Days are Asia/Shanghai
/// calendar days; times are stored as UTC unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    /// `DATE_TYPE_FIX_TIME_RANGE`: from the first second of one day to
    /// the last second of another.
    Fixed { begin: i64, end: i64 },
    /// `DATE_TYPE_FIX_TERM`: valid for `term_days` days (≥ 1) starting
    /// `begin_after_days` days after the day of claim (0: that day), and
    /// never after `hard_end` when it is set.
    Relative {
        term_days: i64,
        begin_after_days: i64,
        hard_end: Option<i64>,
    },
}

/// The first second of the merchant-local day `timestamp` falls on.
pub fn day_start(timestamp: i64) -> i64 {
    let offset = i64::from(MERCHANT_UTC_OFFSET_SECONDS);
    (timestamp + offset).div_euclid(86_400) * 86_400 - offset
}

impl Validity {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Fixed { .. } => "fixed",
            Self::Relative { .. } => "relative",
        }
    }

    /// When a coupon claimed at `claimed_at` is valid: `(valid_from, valid_until)`, inclusive.
    pub fn window(&self, claimed_at: i64) -> (i64, i64) {
        match *self {
            Self::Fixed { begin, end } => (begin, end),
            Self::Relative {
                term_days,
                begin_after_days,
                hard_end,
            } => {
                let from = day_start(claimed_at) + begin_after_days * 86_400;
                let until = from + term_days * 86_400 - 1;
                (from, hard_end.map_or(until, |end| until.min(end)))
            }
        }
    }

    /// The most days a coupon of this validity is usable: the fixed
    /// range's days, or the relative term.
    pub fn longest_days(&self) -> i64 {
        match *self {
            // A range runs from a day's first second to a day's last.
            Self::Fixed { begin, end } => (end - begin).div_euclid(86_400) + 1,
            Self::Relative { term_days, .. } => term_days,
        }
    }

    /// Whether a coupon claimed now could still be used at some time:
    /// a claim after the last day is refused.
    pub fn claimable_at(&self, now: i64) -> bool {
        let (from, until) = self.window(now);
        from <= until && until >= now
    }

    /// Once a program is active its validity may only widen (WeChat's
    /// `card/update` rule): the same type, begin no later, end no earlier.
    pub fn widens(&self, old: &Validity) -> bool {
        match (*old, *self) {
            (Self::Fixed { begin: b0, end: e0 }, Self::Fixed { begin, end }) => {
                begin <= b0 && end >= e0
            }
            (
                Self::Relative {
                    term_days: t0,
                    begin_after_days: d0,
                    hard_end: h0,
                },
                Self::Relative {
                    term_days,
                    begin_after_days,
                    hard_end,
                },
            ) => {
                term_days >= t0
                    && begin_after_days <= d0
                    && match (h0, hard_end) {
                        (_, None) => true,
                        (None, Some(_)) => false,
                        (Some(old_end), Some(end)) => end >= old_end,
                    }
            }
            _ => false,
        }
    }

    fn check(&self, errors: &mut Vec<String>) {
        match *self {
            Self::Fixed { begin, end } => {
                if begin > end {
                    errors.push("有效期的开始日期晚于结束日期".into());
                }
            }
            Self::Relative {
                term_days,
                begin_after_days,
                ..
            } => {
                if !(1..=TERM_DAYS_MAX).contains(&term_days) {
                    errors.push(format!("领取后有效天数须为 1–{TERM_DAYS_MAX} 天"));
                }
                if !(0..=BEGIN_AFTER_DAYS_MAX).contains(&begin_after_days) {
                    errors.push(format!(
                        "领取后生效天数须为 0（当天）–{BEGIN_AFTER_DAYS_MAX} 天"
                    ));
                }
            }
        }
    }

    /// `2026-12-01 至 2026-12-31`, or `领取后当天生效，有效 30 天（最晚 2027-06-30）`.
    pub fn text_zh(&self) -> String {
        match *self {
            Self::Fixed { begin, end } => format!("{} 至 {}", format_date(begin), format_date(end)),
            Self::Relative {
                term_days,
                begin_after_days,
                hard_end,
            } => {
                let begin = if begin_after_days == 0 {
                    "领取后当天生效".to_owned()
                } else {
                    format!("领取后第 {begin_after_days} 天生效")
                };
                let end = hard_end
                    .map(|t| format!("（最晚 {}）", format_date(t)))
                    .unwrap_or_default();
                format!("{begin}，有效 {term_days} 天{end}")
            }
        }
    }
}

/// A validity as both stores keep it: `(type, begin_at, end_at, term_days,
/// begin_after_days, hard_end)`.
pub type ValidityColumns = (
    &'static str,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
);

/// A validity's numbers as stored: `(begin_at, end_at, term_days, begin_after_days, hard_end)`.
pub type ValidityNumbers = (
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
);

impl Validity {
    pub fn to_columns(&self) -> ValidityColumns {
        match *self {
            Self::Fixed { begin, end } => ("fixed", Some(begin), Some(end), None, None, None),
            Self::Relative {
                term_days,
                begin_after_days,
                hard_end,
            } => (
                "relative",
                None,
                None,
                Some(term_days),
                Some(begin_after_days),
                hard_end,
            ),
        }
    }

    /// Reads stored columns back; `None` when they do not make a validity.
    pub fn from_columns(
        validity_type: &str,
        (begin_at, end_at, term_days, begin_after_days, hard_end): ValidityNumbers,
    ) -> Option<Self> {
        match validity_type {
            "fixed" => Some(Self::Fixed {
                begin: begin_at?,
                end: end_at?,
            }),
            "relative" => Some(Self::Relative {
                term_days: term_days?,
                begin_after_days: begin_after_days?,
                hard_end,
            }),
            _ => None,
        }
    }
}

/// A program's location ids as both stores keep them: `1,2,3`.
pub fn encode_location_ids(ids: &[i64]) -> String {
    ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
}

/// Stored location ids back; anything unreadable is left out.
pub fn decode_location_ids(text: &str) -> Vec<i64> {
    text.split(',').filter_map(|id| id.parse().ok()).collect()
}

impl TimeLimit {
    /// Reads stored columns back (`day_minutes` needs both ends).
    pub fn from_columns(weekdays: i64, begin: Option<i64>, end: Option<i64>) -> Self {
        Self {
            weekdays: u8::try_from(weekdays & i64::from(ALL_WEEKDAYS)).unwrap_or(ALL_WEEKDAYS),
            day_minutes: begin.zip(end),
        }
    }
}

/// A fixed range from two dates, whole days.
pub fn fixed_validity(begin: time::Date, end: time::Date) -> Validity {
    Validity::Fixed {
        begin: start_of_day(begin),
        end: end_of_day(end),
    }
}

/// Weekday and time-of-day limits (`advanced_info.time_limit`), enforced at
/// verification. `weekdays` has bit 0 for Monday … bit 6 for Sunday.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeLimit {
    pub weekdays: u8,
    /// Minutes of the merchant-local day, `[begin, end)`; `None` is all day.
    pub day_minutes: Option<(i64, i64)>,
}

pub const ALL_WEEKDAYS: u8 = 0x7f;
const WEEKDAY_NAMES: [&str; 7] = ["一", "二", "三", "四", "五", "六", "日"];

impl Default for TimeLimit {
    fn default() -> Self {
        Self {
            weekdays: ALL_WEEKDAYS,
            day_minutes: None,
        }
    }
}

impl TimeLimit {
    /// Whether a coupon may be used at `now`.
    pub fn allows(&self, now: i64) -> bool {
        let local = now + i64::from(MERCHANT_UTC_OFFSET_SECONDS);
        let days = local.div_euclid(86_400);
        // 1970-01-01 was a Thursday (index 3 with Monday as 0).
        let weekday = (days + 3).rem_euclid(7);
        let minute = local.rem_euclid(86_400) / 60;
        self.weekdays & (1 << weekday) != 0
            && self
                .day_minutes
                .is_none_or(|(begin, end)| (begin..end).contains(&minute))
    }

    pub fn is_unlimited(&self) -> bool {
        *self == Self::default()
    }

    fn check(&self, errors: &mut Vec<String>) {
        if self.weekdays & ALL_WEEKDAYS == 0 || self.weekdays & !ALL_WEEKDAYS != 0 {
            errors.push("可用日期至少选择一天".into());
        }
        if let Some((begin, end)) = self.day_minutes {
            if !(0..1440).contains(&begin) || !(1..=1440).contains(&end) || begin >= end {
                errors.push("可用时段的开始须早于结束".into());
            }
        }
    }

    /// `周一至周五 09:00–21:00`, or `不限` when unlimited.
    pub fn text_zh(&self) -> String {
        if self.is_unlimited() {
            return "不限".into();
        }
        let days = if self.weekdays == ALL_WEEKDAYS {
            "每天".to_owned()
        } else {
            let names: Vec<_> = (0..7)
                .filter(|i| self.weekdays & (1 << i) != 0)
                .map(|i| WEEKDAY_NAMES[i])
                .collect();
            format!("周{}", names.join("、"))
        };
        match self.day_minutes {
            Some((begin, end)) => format!(
                "{days} {:02}:{:02}–{:02}:{:02}",
                begin / 60,
                begin % 60,
                end / 60,
                end % 60
            ),
            None => days,
        }
    }
}

/// How the customer's coupon shows its code (`code_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeType {
    Qrcode,
    Barcode,
    Text,
    OnlyQrcode,
    OnlyBarcode,
}

impl CodeType {
    pub const ALL: [Self; 5] = [
        Self::Qrcode,
        Self::Barcode,
        Self::Text,
        Self::OnlyQrcode,
        Self::OnlyBarcode,
    ];
    pub fn code(self) -> &'static str {
        match self {
            Self::Qrcode => "qrcode",
            Self::Barcode => "barcode",
            Self::Text => "text",
            Self::OnlyQrcode => "only_qrcode",
            Self::OnlyBarcode => "only_barcode",
        }
    }
    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.code() == code)
    }
    pub fn label_zh(self) -> &'static str {
        match self {
            Self::Qrcode => "二维码（显示券码）",
            Self::Barcode => "条形码（显示券码）",
            Self::Text => "仅券码",
            Self::OnlyQrcode => "仅二维码",
            Self::OnlyBarcode => "仅条形码",
        }
    }
    pub fn shows_qr(self) -> bool {
        matches!(self, Self::Qrcode | Self::OnlyQrcode)
    }
    pub fn shows_barcode(self) -> bool {
        matches!(self, Self::Barcode | Self::OnlyBarcode)
    }
    pub fn shows_text(self) -> bool {
        matches!(self, Self::Qrcode | Self::Barcode | Self::Text)
    }
}

/// WeChat's card colours (`Color010` … `Color102`) and what they look like.
pub const COLORS: [(&str, &str); 14] = [
    ("Color010", "#63b359"),
    ("Color020", "#2c9f67"),
    ("Color030", "#509fc9"),
    ("Color040", "#5885cf"),
    ("Color050", "#9062c0"),
    ("Color060", "#d09a45"),
    ("Color070", "#e4b138"),
    ("Color080", "#ee903c"),
    ("Color081", "#f08500"),
    ("Color082", "#a9d92d"),
    ("Color090", "#dd6549"),
    ("Color100", "#cc463d"),
    ("Color101", "#cf3e36"),
    ("Color102", "#5e6671"),
];

/// The CSS colour of a WeChat colour name (the first when unknown).
pub fn color_hex(name: &str) -> &'static str {
    COLORS
        .iter()
        .find(|(n, _)| *n == name)
        .map_or(COLORS[0].1, |(_, hex)| hex)
}

/// What a merchant fills in for a program (制券).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CouponProgramFields {
    pub benefit: Benefit,
    pub title: String,
    pub sub_title: String,
    pub brand_name: String,
    /// A picture uploaded through the console (`/images/…`), or empty.
    pub logo_url: String,
    pub color: String,
    /// 使用提醒.
    pub notice: String,
    /// 使用说明.
    pub description: String,
    pub service_phone: String,
    /// 每人可领 (`get_limit`).
    pub get_limit: i64,
    /// 每人可用 (`use_limit`).
    pub use_limit: i64,
    pub validity: Validity,
    pub time_limit: TimeLimit,
    /// 全部门店可用, else only at `location_ids`.
    pub use_all_locations: bool,
    pub location_ids: Vec<i64>,
    pub code_type: CodeType,
    /// 动态码: the wallet shows a code that changes every
    /// [`code::ROTATION_SECONDS`], and staff refuse the fixed one.
    pub rotating_code: bool,
    /// 可转赠.
    pub can_give_friend: bool,
    /// 可与其他优惠同享.
    pub can_use_with_other_discount: bool,
    /// 朋友的券: shared with friends, stock bought with 券点; `None` for
    /// an ordinary program.
    pub shared: Option<SharedCoupon>,
    /// 核销后返券: the program (this one or another) a customer gets one
    /// coupon of when theirs is verified.
    pub give_program_id: Option<i64>,
}

impl CouponProgramFields {
    /// Every problem with the fields, in Chinese, at once.
    pub fn check(&self) -> Result<(), Vec<String>> {
        let mut errors = Vec::new();
        if self.title.trim().is_empty() {
            errors.push("请填写券名称".into());
        }
        for (what, value, max) in [
            ("券名称", &self.title, TITLE_CHARS_MAX),
            ("副标题", &self.sub_title, SUB_TITLE_CHARS_MAX),
            ("商户名称", &self.brand_name, BRAND_NAME_CHARS_MAX),
            ("使用提醒", &self.notice, NOTICE_CHARS_MAX),
            (
                "客服电话",
                &self.service_phone,
                crate::text::PHONE_CHARS_MAX,
            ),
            ("券颜色", &self.color, 16),
            ("Logo", &self.logo_url, 300),
        ] {
            if let Err(e) = check_field(what, value, max) {
                errors.push(e);
            }
        }
        if crate::text::is_too_long(&self.description, DESCRIPTION_CHARS_MAX)
            || self
                .description
                .chars()
                .any(|c| c.is_control() && c != '\n' && c != '\r')
        {
            errors.push(format!("使用说明最多 {DESCRIPTION_CHARS_MAX} 个字符"));
        }
        if !COLORS.iter().any(|(name, _)| *name == self.color) {
            errors.push("请选择券颜色".into());
        }
        self.benefit.check(&mut errors);
        self.validity.check(&mut errors);
        self.time_limit.check(&mut errors);
        for (what, n) in [("每人可领", self.get_limit), ("每人可用", self.use_limit)] {
            if !(1..=PER_CUSTOMER_LIMIT_MAX).contains(&n) {
                errors.push(format!("{what}张数须为 1–{PER_CUSTOMER_LIMIT_MAX}"));
            }
        }
        if !self.use_all_locations && self.location_ids.is_empty() {
            errors.push("请选择适用门店，或选择全部门店可用".into());
        }
        if self.location_ids.len() > PROGRAM_LOCATIONS_MAX {
            errors.push(format!("适用门店最多 {PROGRAM_LOCATIONS_MAX} 家"));
        }
        if let Some(shared) = &self.shared {
            shared.check(self, &mut errors);
        }
        if self.give_program_id.is_some_and(|id| id <= 0) {
            errors.push("请选择核销后赠送的券".into());
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// Whether a coupon of this program may be used at `location_id`.
    pub fn usable_at(&self, location_id: Option<i64>) -> bool {
        self.use_all_locations || location_id.is_some_and(|id| self.location_ids.contains(&id))
    }
}

/// Where a program stands. Claims need `Active`; verification refuses
/// `Paused`; an `Ended` program issues no more coupons, and the coupons
/// already held stay usable until their validity ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProgramState {
    Draft,
    Active,
    Paused,
    Ended,
}

impl ProgramState {
    pub const ALL: [Self; 4] = [Self::Draft, Self::Active, Self::Paused, Self::Ended];
    pub fn code(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Active => "active",
            Self::Paused => "paused",
            Self::Ended => "ended",
        }
    }
    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.code() == code)
    }
    pub fn label_zh(self) -> &'static str {
        match self {
            Self::Draft => "草稿",
            Self::Active => "投放中",
            Self::Paused => "已暂停",
            Self::Ended => "已结束",
        }
    }

    /// The states a program may move to `to` from: the one place the
    /// program's state machine is written.
    pub fn sources_of(to: ProgramState) -> &'static [ProgramState] {
        match to {
            Self::Draft => &[],
            Self::Active => &[Self::Draft, Self::Paused],
            Self::Paused => &[Self::Active],
            Self::Ended => &[Self::Draft, Self::Active, Self::Paused],
        }
    }

    /// The action word of a move, for buttons and the audit log.
    pub fn verb_zh(to: ProgramState) -> &'static str {
        match to {
            Self::Draft => "存为草稿",
            Self::Active => "开始投放",
            Self::Paused => "暂停",
            Self::Ended => "结束",
        }
    }
}

/// A coupon program (优惠券) with its stock and counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CouponProgram {
    pub id: i64,
    pub merchant_id: i64,
    pub fields: CouponProgramFields,
    pub state: ProgramState,
    /// 库存: coupons it may issue in all (`sku.quantity`).
    pub quantity: i64,
    pub n_claimed: i64,
    pub n_verified: i64,
    /// Claimed, never verified, and past their validity.
    pub n_expired: i64,
    /// The random token of its claim link (`/m/coupons/{token}`).
    pub claim_token: String,
    /// Bumped by every edit: an edit names the version it was made on.
    pub version: i64,
    pub created_by: String,
    pub created_at: i64,
}

impl CouponProgram {
    /// 剩余库存.
    pub fn stock_left(&self) -> i64 {
        (self.quantity - self.n_claimed).max(0)
    }

    /// A 朋友的券 (its stock is bought with 券点).
    pub fn is_shared(&self) -> bool {
        self.fields.shared.is_some()
    }

    /// Whether the program can never give out another coupon: ended, or
    /// past the last day a claim could still be used.
    pub fn is_closed_at(&self, now: i64) -> bool {
        self.state == ProgramState::Ended || !self.fields.validity.claimable_at(now)
    }
}

/// Why an edit of a program was refused.
pub fn check_edit(
    program: &CouponProgram,
    fields: &CouponProgramFields,
) -> Result<(), Vec<String>> {
    fields.check()?;
    if program.state == ProgramState::Draft {
        return Ok(());
    }
    let mut errors = Vec::new();
    if fields.benefit != program.fields.benefit {
        errors.push("投放后不能修改券类型和优惠内容".to_owned());
    }
    if !fields.validity.widens(&program.fields.validity) {
        errors.push("投放后有效期只能延长，不能缩短或改变类型".to_owned());
    }
    if fields.rotating_code != program.fields.rotating_code {
        errors.push("投放后不能修改动态码设置".to_owned());
    }
    if fields.shared.is_some() != program.fields.shared.is_some() {
        errors.push("投放后不能改变是否为朋友的券".to_owned());
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod rule_tests;
#[cfg(test)]
pub(crate) mod tests;
