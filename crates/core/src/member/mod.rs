//! 会员卡 (seed 002): a merchant's membership programs and their members.
//!
//! A program is the card face (colour, brand, title, 特权说明), the member
//! discount, the points rules (WeChat's `bonus_rule`: earn per spend, use
//! per unit, caps and minimums), stored value on or off, tiers (等级) by
//! points earned or by cumulative spend, up to three custom fields and
//! links, the member number pattern, the points expiry policy and the
//! messages. A member is one customer's card in one program; points and
//! balance are the customer's accounts in the ledger
//! ([`crate::ledger::Asset`]), so a card shows them, never holds a copy.
//!
//! What a payment, refund or top-up does is decided here
//! ([`operation`]); stores run it in one transaction.

pub mod expiry;
pub mod operation;
pub mod pay_gift;

use crate::text::check_field;
use crate::StoreResult;

/// Longest card title (WeChat: 9 汉字; we allow a little more).
pub const TITLE_CHARS_MAX: usize = 20;
/// Longest brand name (WeChat: 12 汉字).
pub const BRAND_CHARS_MAX: usize = 20;
/// Longest 特权说明.
pub const PREROGATIVE_CHARS_MAX: usize = 1000;
/// Most tiers a program has.
pub const TIERS_MAX: usize = 10;
/// Most custom fields and most custom links on a card (WeChat: three each).
pub const CUSTOM_ITEMS_MAX: usize = 3;
/// Longest tier, field or link name.
pub const ITEM_NAME_CHARS_MAX: usize = 10;
/// Longest link.
pub const URL_CHARS_MAX: usize = 500;
/// Longest member number prefix.
pub const NUMBER_PREFIX_CHARS_MAX: usize = 6;

/// Whether a program takes new members and payments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgramState {
    Active,
    /// 已停用: no activations, payments or top-ups; existing members keep
    /// their points and balance.
    Disabled,
}

impl ProgramState {
    pub fn code(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Disabled => "disabled",
        }
    }
    pub fn parse(code: &str) -> Option<Self> {
        [Self::Active, Self::Disabled]
            .into_iter()
            .find(|s| s.code() == code)
    }
    pub fn label_zh(self) -> &'static str {
        match self {
            Self::Active => "使用中",
            Self::Disabled => "已停用",
        }
    }
}

/// WeChat's `bonus_rule`, in fen and points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PointsRule {
    /// Every `cost_money_unit` fen paid …
    pub cost_money_unit: i64,
    /// … earns `increase_bonus` points.
    pub increase_bonus: i64,
    /// Most points one payment earns (0: no cap).
    pub max_increase_bonus: i64,
    /// Points given on activation.
    pub init_increase_bonus: i64,
    /// Every `cost_bonus_unit` points used …
    pub cost_bonus_unit: i64,
    /// … take `reduce_money` fen off the order.
    pub reduce_money: i64,
    /// Smallest order (after the member discount) points may pay part of.
    pub least_money_to_use_bonus: i64,
    /// Most points one order may use (0: no limit).
    pub max_reduce_bonus: i64,
}

impl Default for PointsRule {
    /// 1 point per ¥1, 100 points take ¥1 off: the common rule.
    fn default() -> Self {
        Self {
            cost_money_unit: 100,
            increase_bonus: 1,
            max_increase_bonus: 0,
            init_increase_bonus: 0,
            cost_bonus_unit: 100,
            reduce_money: 100,
            least_money_to_use_bonus: 0,
            max_reduce_bonus: 0,
        }
    }
}

/// Largest points figure a rule or an adjustment may name.
pub const POINTS_MAX: i64 = 100_000_000;

impl PointsRule {
    pub fn check(&self) -> Result<(), String> {
        let money = crate::money::FEN_MAX;
        let checks = [
            (self.cost_money_unit, 1, money, "每消费金额（分）"),
            (self.increase_bonus, 0, POINTS_MAX, "赠送积分"),
            (self.max_increase_bonus, 0, POINTS_MAX, "单次最多赠送积分"),
            (self.init_increase_bonus, 0, POINTS_MAX, "开卡赠送积分"),
            (self.cost_bonus_unit, 1, POINTS_MAX, "每使用积分"),
            (self.reduce_money, 0, money, "抵扣金额（分）"),
            (
                self.least_money_to_use_bonus,
                0,
                money,
                "订单满多少可用积分（分）",
            ),
            (self.max_reduce_bonus, 0, POINTS_MAX, "单笔最多使用积分"),
        ];
        for (value, low, high, what) in checks {
            if !(low..=high).contains(&value) {
                return Err(format!("{what}须在 {low}–{high} 之间"));
            }
        }
        Ok(())
    }
}

/// What tiers are reached by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TierBasis {
    /// Points earned in total (never lowered by using them).
    PointsEarned,
    /// Money paid in total, in fen.
    Spend,
}

impl TierBasis {
    pub fn code(self) -> &'static str {
        match self {
            Self::PointsEarned => "points",
            Self::Spend => "spend",
        }
    }
    pub fn parse(code: &str) -> Option<Self> {
        [Self::PointsEarned, Self::Spend]
            .into_iter()
            .find(|b| b.code() == code)
    }
    pub fn label_zh(self) -> &'static str {
        match self {
            Self::PointsEarned => "累计获得积分",
            Self::Spend => "累计消费金额",
        }
    }
}

/// One 等级: reached when the basis is at least `threshold`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tier {
    pub name: String,
    /// Points, or fen when the basis is spend.
    pub threshold: i64,
    /// The tier's discount in percent off (5 = 9.5折); 0 keeps the
    /// program's.
    pub discount_percent_off: i64,
}

/// What a custom field on the card shows (WeChat's `name_type`s we can fill).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// 等级: the member's tier.
    Tier,
    /// 优惠券: how many usable coupons the member holds.
    Coupons,
    /// 折扣: the member's discount.
    Discount,
    /// 累计消费.
    Spend,
}

impl FieldKind {
    pub const ALL: [Self; 4] = [Self::Tier, Self::Coupons, Self::Discount, Self::Spend];
    pub fn code(self) -> &'static str {
        match self {
            Self::Tier => "tier",
            Self::Coupons => "coupons",
            Self::Discount => "discount",
            Self::Spend => "spend",
        }
    }
    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.code() == code)
    }
    pub fn label_zh(self) -> &'static str {
        match self {
            Self::Tier => "等级",
            Self::Coupons => "优惠券",
            Self::Discount => "折扣",
            Self::Spend => "累计消费",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomField {
    pub name: String,
    pub kind: FieldKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomLink {
    pub name: String,
    /// `https://…` or `http://…`.
    pub url: String,
}

/// A field of the 开卡 form besides the phone, which is always asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActivationField {
    Name,
    Birthday,
    Gender,
}

impl ActivationField {
    pub const ALL: [Self; 3] = [Self::Name, Self::Birthday, Self::Gender];
    pub fn code(self) -> &'static str {
        match self {
            Self::Name => "name",
            Self::Birthday => "birthday",
            Self::Gender => "gender",
        }
    }
    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.code() == code)
    }
    pub fn label_zh(self) -> &'static str {
        match self {
            Self::Name => "姓名",
            Self::Birthday => "生日",
            Self::Gender => "性别",
        }
    }
}

/// When points lapse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PointsExpiry {
    Never,
    /// All points are cleared at the end of each year (merchant time).
    YearEnd,
    /// Points lapse this many months after they were earned.
    Rolling {
        months: i64,
    },
}

impl PointsExpiry {
    pub fn code(self) -> &'static str {
        match self {
            Self::Never => "never",
            Self::YearEnd => "year_end",
            Self::Rolling { .. } => "rolling",
        }
    }
    pub fn months(self) -> i64 {
        match self {
            Self::Rolling { months } => months,
            _ => 0,
        }
    }
    pub fn parse(code: &str, months: i64) -> Option<Self> {
        match code {
            "never" => Some(Self::Never),
            "year_end" => Some(Self::YearEnd),
            "rolling" if (1..=120).contains(&months) => Some(Self::Rolling { months }),
            _ => None,
        }
    }
    pub fn label_zh(self) -> String {
        match self {
            Self::Never => "永久有效".into(),
            Self::YearEnd => "每年年底清零".into(),
            Self::Rolling { months } => format!("获得后 {months} 个月过期"),
        }
    }
}

/// What a merchant sets on a program (制卡 and 修改).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramFields {
    pub title: String,
    pub brand_name: String,
    /// The card's background colour, `#RRGGBB`.
    pub color: String,
    /// 卡面背景图 (WeChat's `background_pic_url`): shown instead of the
    /// colour; an `https://` address or a picture uploaded here. Empty: none.
    pub background_pic_url: String,
    /// 商户 logo (WeChat's `logo_url`), as the background. Empty: none.
    pub logo_url: String,
    /// 特权说明.
    pub prerogative: String,
    /// The member discount in percent off (5 = 9.5折, 0 = none).
    pub discount_percent_off: i64,
    /// `None`: points are off.
    pub points: Option<PointsRule>,
    /// 储值: members may top up and pay with balance.
    pub stored_value: bool,
    pub tier_basis: TierBasis,
    /// Ascending thresholds; the first may be 0 (everyone's tier).
    pub tiers: Vec<Tier>,
    /// 降级规则: a refund that takes the member's total below their tier's
    /// threshold takes the tier down with it. Off: tiers never fall (they
    /// rise by themselves either way).
    pub downgrade_on_refund: bool,
    pub custom_fields: Vec<CustomField>,
    pub custom_links: Vec<CustomLink>,
    pub activation_fields: Vec<ActivationField>,
    /// Customers the mall already knows (a login link) get the card
    /// without filling the form.
    pub auto_activate: bool,
    /// Member numbers are this prefix and the member's id, zero-padded
    /// to `number_length` digits.
    pub number_prefix: String,
    pub number_length: i64,
    pub expiry: PointsExpiry,
    /// 消息通知: members hear when their points or balance change.
    pub notify: bool,
    /// 积分变动消息下发优惠券: the points message carries this coupon
    /// program's claim link.
    pub notify_coupon_program_id: Option<i64>,
}

impl Default for ProgramFields {
    fn default() -> Self {
        Self {
            title: "会员卡".into(),
            brand_name: String::new(),
            color: "#63b359".into(),
            background_pic_url: String::new(),
            logo_url: String::new(),
            prerogative: String::new(),
            discount_percent_off: 0,
            points: Some(PointsRule::default()),
            stored_value: true,
            tier_basis: TierBasis::PointsEarned,
            tiers: Vec::new(),
            downgrade_on_refund: false,
            custom_fields: Vec::new(),
            custom_links: Vec::new(),
            activation_fields: vec![ActivationField::Name],
            auto_activate: false,
            number_prefix: String::new(),
            number_length: 10,
            expiry: PointsExpiry::Never,
            notify: true,
            notify_coupon_program_id: None,
        }
    }
}

/// Where uploaded card pictures are served: `{CARD_PICTURE_PATH}{program}/{kind}`.
pub const CARD_PICTURE_PATH: &str = "/m/member-card-pictures/";

/// A card picture's address: empty, `https://`, or one of ours.
fn check_picture(what: &str, url: &str) -> Result<(), String> {
    check_field(what, url, URL_CHARS_MAX)?;
    if url.is_empty() || url.starts_with(CARD_PICTURE_PATH) {
        return Ok(());
    }
    if !url.starts_with("https://") || url.contains(char::is_whitespace) || url.contains('"') {
        return Err(format!("{what}须为 https:// 开头的图片地址，或在此上传"));
    }
    Ok(())
}

/// Which picture of a card face.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardPicture {
    Logo,
    Background,
}

impl CardPicture {
    pub fn code(self) -> &'static str {
        match self {
            Self::Logo => "logo",
            Self::Background => "background",
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        [Self::Logo, Self::Background]
            .into_iter()
            .find(|p| p.code() == code)
    }
}

/// An uploaded card picture (checked to be an image) and the address the
/// program then shows it at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardPictureUpload {
    pub merchant_id: i64,
    pub program_id: i64,
    pub picture: CardPicture,
    pub content_type: &'static str,
    pub bytes: Vec<u8>,
    pub url: String,
    pub now: i64,
}

fn check_name(what: &str, name: &str, chars_max: usize) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err(format!("{what}不能为空"));
    }
    check_field(what, name, chars_max)
}

impl ProgramFields {
    /// Every rule a program's fields keep; the error says which in Chinese.
    pub fn check(&self) -> Result<(), String> {
        check_name("会员卡名称", &self.title, TITLE_CHARS_MAX)?;
        check_field("商户名称", &self.brand_name, BRAND_CHARS_MAX)?;
        let hex = self.color.strip_prefix('#').unwrap_or("");
        if hex.len() != 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err("卡面颜色须为 #RRGGBB".into());
        }
        check_picture("卡面背景图", &self.background_pic_url)?;
        check_picture("商户 logo", &self.logo_url)?;
        if is_too_long_text(&self.prerogative) {
            return Err(format!("特权说明最多 {PREROGATIVE_CHARS_MAX} 个字符"));
        }
        if !(0..=99).contains(&self.discount_percent_off) {
            return Err("会员折扣须在 0–99（减免百分比）之间".into());
        }
        if let Some(rule) = &self.points {
            rule.check()?;
        }
        self.check_tiers()?;
        self.check_items()?;
        if !self
            .number_prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric())
            || self.number_prefix.len() > NUMBER_PREFIX_CHARS_MAX
        {
            return Err(format!(
                "会员号前缀最多 {NUMBER_PREFIX_CHARS_MAX} 个字母或数字"
            ));
        }
        if !(6..=16).contains(&self.number_length) {
            return Err("会员号位数须在 6–16 之间".into());
        }
        if let PointsExpiry::Rolling { months } = self.expiry {
            if !(1..=120).contains(&months) {
                return Err("积分有效月数须在 1–120 之间".into());
            }
        }
        Ok(())
    }

    fn check_tiers(&self) -> Result<(), String> {
        if self.tiers.len() > TIERS_MAX {
            return Err(format!("等级最多 {TIERS_MAX} 个"));
        }
        let mut last = -1;
        for tier in &self.tiers {
            check_name("等级名称", &tier.name, ITEM_NAME_CHARS_MAX)?;
            if tier.threshold <= last {
                return Err("等级的门槛须从低到高，且各不相同".into());
            }
            if tier.threshold < 0 || tier.threshold > crate::money::FEN_MAX * 100 {
                return Err("等级门槛超出范围".into());
            }
            if !(0..=99).contains(&tier.discount_percent_off) {
                return Err("等级折扣须在 0–99（减免百分比）之间".into());
            }
            last = tier.threshold;
        }
        Ok(())
    }

    fn check_items(&self) -> Result<(), String> {
        if self.custom_fields.len() > CUSTOM_ITEMS_MAX || self.custom_links.len() > CUSTOM_ITEMS_MAX
        {
            return Err(format!(
                "自定义字段和自定义入口各最多 {CUSTOM_ITEMS_MAX} 个"
            ));
        }
        for field in &self.custom_fields {
            check_name("自定义字段名称", &field.name, ITEM_NAME_CHARS_MAX)?;
        }
        for link in &self.custom_links {
            check_name("自定义入口名称", &link.name, ITEM_NAME_CHARS_MAX)?;
            check_field("自定义入口链接", &link.url, URL_CHARS_MAX)?;
            if !(link.url.starts_with("https://") || link.url.starts_with("http://"))
                || link.url.contains(char::is_whitespace)
            {
                return Err("自定义入口链接须以 http:// 或 https:// 开头".into());
            }
        }
        let mut seen = Vec::new();
        for field in &self.activation_fields {
            if seen.contains(field) {
                return Err("开卡资料字段重复".into());
            }
            seen.push(*field);
        }
        Ok(())
    }

    /// The tier a member reaches with `points_earned` points earned and
    /// `spend_fen` paid in total: its rank (1-based; 0 below every tier).
    pub fn tier_reached(&self, points_earned: i64, spend_fen: i64) -> usize {
        let basis = match self.tier_basis {
            TierBasis::PointsEarned => points_earned,
            TierBasis::Spend => spend_fen,
        };
        self.tiers.iter().filter(|t| basis >= t.threshold).count()
    }

    /// The tier a member of tier `tier` keeps after a refund leaves them
    /// `points_earned` points earned and `spend_fen` paid in total: lower
    /// only under [`ProgramFields::downgrade_on_refund`], never higher.
    pub fn tier_after_refund(&self, tier: usize, points_earned: i64, spend_fen: i64) -> usize {
        if self.downgrade_on_refund {
            tier.min(self.tier_reached(points_earned, spend_fen))
        } else {
            tier
        }
    }

    /// The discount (percent off) a member of tier `rank` gets: the tier's
    /// own, else the program's.
    pub fn discount_for(&self, rank: usize) -> i64 {
        rank.checked_sub(1)
            .and_then(|i| self.tiers.get(i))
            .map(|t| t.discount_percent_off)
            .filter(|d| *d > 0)
            .unwrap_or(self.discount_percent_off)
    }

    pub fn tier_name(&self, rank: usize) -> &str {
        rank.checked_sub(1)
            .and_then(|i| self.tiers.get(i))
            .map_or("", |t| t.name.as_str())
    }

    /// The member number of member `member_id`.
    pub fn member_number(&self, member_id: i64) -> String {
        let width = usize::try_from(self.number_length).unwrap_or(10);
        format!("{}{member_id:0width$}", self.number_prefix)
    }

    /// The member id a typed or scanned member number names, if it fits
    /// this program's pattern.
    pub fn parse_member_number(&self, number: &str) -> Option<i64> {
        let digits = number.trim().strip_prefix(self.number_prefix.as_str())?;
        if digits.len() < usize::try_from(self.number_length).ok()?
            || !digits.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        digits.parse().ok().filter(|id| *id > 0)
    }
}

fn is_too_long_text(text: &str) -> bool {
    crate::text::is_too_long(text, PREROGATIVE_CHARS_MAX)
        || text.chars().any(|c| c.is_control() && c != '\n')
}

/// Short lists stored in one column: one item per line, fields split by a
/// tab. Names never hold either (`check_field` refuses control
/// characters), so the format needs no escaping.
pub mod lines {
    use super::*;

    pub fn tiers(tiers: &[Tier]) -> String {
        tiers
            .iter()
            .map(|t| format!("{}\t{}\t{}", t.name, t.threshold, t.discount_percent_off))
            .collect::<Vec<_>>()
            .join("\n")
    }
    pub fn parse_tiers(text: &str) -> Option<Vec<Tier>> {
        split(text)
            .map(|f| match f.as_slice() {
                [name, threshold, discount] => Some(Tier {
                    name: (*name).to_owned(),
                    threshold: threshold.parse().ok()?,
                    discount_percent_off: discount.parse().ok()?,
                }),
                _ => None,
            })
            .collect()
    }
    pub fn fields(fields: &[CustomField]) -> String {
        fields
            .iter()
            .map(|f| format!("{}\t{}", f.name, f.kind.code()))
            .collect::<Vec<_>>()
            .join("\n")
    }
    pub fn parse_fields(text: &str) -> Option<Vec<CustomField>> {
        split(text)
            .map(|f| match f.as_slice() {
                [name, kind] => Some(CustomField {
                    name: (*name).to_owned(),
                    kind: FieldKind::parse(kind)?,
                }),
                _ => None,
            })
            .collect()
    }
    pub fn links(links: &[CustomLink]) -> String {
        links
            .iter()
            .map(|l| format!("{}\t{}", l.name, l.url))
            .collect::<Vec<_>>()
            .join("\n")
    }
    pub fn parse_links(text: &str) -> Option<Vec<CustomLink>> {
        split(text)
            .map(|f| match f.as_slice() {
                [name, url] => Some(CustomLink {
                    name: (*name).to_owned(),
                    url: (*url).to_owned(),
                }),
                _ => None,
            })
            .collect()
    }
    pub fn activation(fields: &[ActivationField]) -> String {
        fields
            .iter()
            .map(|f| f.code())
            .collect::<Vec<_>>()
            .join("\n")
    }
    pub fn parse_activation(text: &str) -> Option<Vec<ActivationField>> {
        text.lines()
            .filter(|l| !l.is_empty())
            .map(ActivationField::parse)
            .collect()
    }
    fn split(text: &str) -> impl Iterator<Item = Vec<&str>> {
        text.lines()
            .filter(|l| !l.is_empty())
            .map(|l| l.split('\t').collect())
    }
}

/// Checks a hand adjustment of points: non-zero, at most [`POINTS_MAX`]
/// either way (and never a figure whose size cannot be taken).
pub fn check_points_delta(delta: i64) -> Result<i64, String> {
    match delta.checked_abs() {
        Some(size) if size > 0 && size <= POINTS_MAX => Ok(delta),
        _ => Err(format!("调整积分须为非零整数，绝对值不超过 {POINTS_MAX}")),
    }
}

/// Checks a birthday: a real `YYYY-MM-DD` date from 1900 on.
pub fn check_birthday(text: &str) -> Result<String, String> {
    let text = text.trim();
    time::Date::parse(
        text,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .ok()
    .filter(|date| (1900..=2199).contains(&date.year()))
    .map(|_| text.to_owned())
    .ok_or_else(|| "生日须为 YYYY-MM-DD".to_owned())
}

/// A program as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberProgram {
    pub id: i64,
    pub merchant_id: i64,
    pub state: ProgramState,
    pub fields: ProgramFields,
    pub created_by: String,
    pub created_at: i64,
    pub updated_at: i64,
    /// Members so far.
    pub n_members: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gender {
    Male,
    Female,
}

impl Gender {
    pub fn code(self) -> &'static str {
        match self {
            Self::Male => "male",
            Self::Female => "female",
        }
    }
    pub fn parse(code: &str) -> Option<Self> {
        [Self::Male, Self::Female]
            .into_iter()
            .find(|g| g.code() == code)
    }
    pub fn label_zh(self) -> &'static str {
        match self {
            Self::Male => "男",
            Self::Female => "女",
        }
    }
}

/// One customer's card in one program, with the customer's points and
/// balance as the ledger has them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: i64,
    pub merchant_id: i64,
    pub program_id: i64,
    pub customer_id: i64,
    /// The mall's id of the customer, if the mall named them.
    pub external_id: Option<String>,
    pub phone: String,
    pub name: String,
    /// `YYYY-MM-DD`.
    pub birthday: Option<String>,
    pub gender: Option<Gender>,
    /// Rank in the program's tiers (0: none yet).
    pub tier: usize,
    pub points_earned: i64,
    pub spend_fen: i64,
    pub points: i64,
    pub balance_fen: i64,
    pub activated_at: i64,
}

/// Which members a list shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberFilter {
    pub program_id: Option<i64>,
    /// Part of the phone, name or member id.
    pub search: Option<String>,
    pub tier: Option<usize>,
    pub activated_from: Option<i64>,
    pub activated_until: Option<i64>,
    pub points_at_least: Option<i64>,
    pub balance_at_least_fen: Option<i64>,
}

/// The programs and members in the database. Value-changing calls on a
/// member are in [`operation::MemberOpStore`].
#[async_trait::async_trait]
pub trait MemberStore: Send + Sync + 'static {
    async fn create_member_program(
        &self,
        merchant_id: i64,
        fields: &ProgramFields,
        actor: &crate::audit::Actor,
        now: i64,
    ) -> StoreResult<MemberProgram>;
    /// Replaces a program's fields (audited).
    async fn update_member_program(
        &self,
        merchant_id: i64,
        program_id: i64,
        fields: &ProgramFields,
        actor: &crate::audit::Actor,
        now: i64,
    ) -> StoreResult<MemberProgram>;
    async fn set_member_program_state(
        &self,
        merchant_id: i64,
        program_id: i64,
        state: ProgramState,
        actor: &crate::audit::Actor,
        now: i64,
    ) -> StoreResult<MemberProgram>;
    /// Keeps an uploaded card picture (replacing the one before) and points
    /// the program's logo or background at it; `NotFound` when the merchant
    /// has no such program.
    async fn put_card_picture(
        &self,
        upload: &CardPictureUpload,
        audit: &crate::audit::AuditEntry,
    ) -> StoreResult<()>;
    /// An uploaded card picture: its content type and bytes.
    async fn get_card_picture(
        &self,
        program_id: i64,
        picture: CardPicture,
    ) -> StoreResult<Option<(String, Vec<u8>)>>;
    async fn get_member_program(
        &self,
        merchant_id: i64,
        program_id: i64,
    ) -> StoreResult<MemberProgram>;
    async fn list_member_programs(&self, merchant_id: i64) -> StoreResult<Vec<MemberProgram>>;
    async fn get_member(&self, merchant_id: i64, member_id: i64) -> StoreResult<Member>;
    /// A customer's cards, newest first.
    async fn find_customer_members(
        &self,
        merchant_id: i64,
        customer_id: i64,
    ) -> StoreResult<Vec<Member>>;
    async fn list_members(
        &self,
        merchant_id: i64,
        filter: &MemberFilter,
        page: crate::store::Page,
    ) -> StoreResult<(Vec<Member>, i64)>;
    /// 消息记录: the `member.changed` events (one per operation that moved
    /// points or balance, merged when both moved), newest first.
    async fn list_member_messages(
        &self,
        merchant_id: i64,
        page: crate::store::Page,
    ) -> StoreResult<(Vec<crate::event::Event>, i64)>;
    /// 积分明细, newest first.
    async fn list_points_statement(
        &self,
        merchant_id: i64,
        customer_id: i64,
        page: crate::store::Page,
    ) -> StoreResult<(Vec<crate::ledger::LedgerTransaction>, i64)>;
}

#[cfg(test)]
mod tests;
