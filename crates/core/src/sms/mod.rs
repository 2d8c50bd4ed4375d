//! 短信 (通知设置): the merchant's SMS provider and the seed's three
//! switches - A: text the customer when they submit a pickup order; B: text
//! the admin phones when one is submitted; C: text the customer when it is
//! shipped (carrier and tracking number); and ours - D: cards sold through
//! the open platform; E: a member's points or balance changed (one text
//! when both did); F: 支付后赠会员卡's link to 开卡; G: points about to
//! lapse. Messages are planned in the transaction that records the
//! event ([`messages_for`]) and sent
//! later by a worker, never inside the customer's request. The request
//! signatures of the two providers, Aliyun (Dysmsapi `SendSms` 2017-05-25,
//! ACS3-HMAC-SHA256 as the current SDKs sign) and Tencent Cloud (`SendSms`
//! 2021-01-11, TC3-HMAC-SHA256), are pinned to their published vectors.

use hmac::Mac;
use sha2::{Digest, Sha256};

type HmacSha256 = hmac::Hmac<Sha256>;

use crate::event::{EventType, NewEvent};
use crate::secrets::MasterKey;
use crate::StoreResult;
use serde_json::Value;

/// The SMS providers a merchant may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SmsProvider {
    #[default]
    Aliyun,
    Tencent,
}

impl SmsProvider {
    pub const ALL: [SmsProvider; 2] = [Self::Aliyun, Self::Tencent];

    pub fn code(self) -> &'static str {
        match self {
            Self::Aliyun => "aliyun",
            Self::Tencent => "tencent",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Aliyun => "阿里云短信",
            Self::Tencent => "腾讯云短信",
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.code() == code)
    }
}

/// Which message: the seed's switches A, B and C, and ours D to G.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmsKind {
    /// A: the customer submitted a pickup order.
    OrderSubmitted,
    /// B: the admin phones hear of a submitted order.
    OrderSubmittedAdmin,
    /// C: the order was shipped.
    OrderShipped,
    /// D: cards sold through the open platform go to the buyer's phone
    /// (their passwords are read when the text is sent, never stored with it).
    CardsSold,
    /// E: a member's points or balance changed (one text when both did).
    MemberChanged,
    /// F: 支付后赠会员卡: the link to 开卡, after a payment.
    MemberInvited,
    /// G: a member's points lapse soon.
    PointsExpiring,
    /// H: 电子卡密 delivered: the delivery page's link to the buyer (the
    /// link is made when the text is sent, never stored with it).
    EcardDelivered,
    /// I: 过期预警 of an unused e-card, with its link.
    EcardExpiring,
    /// J: a 虚拟商品's stock fell to its 低库存预警: the admin phones hear.
    EcardLowStock,
}

impl SmsKind {
    pub const ALL: [SmsKind; 10] = [
        Self::OrderSubmitted,
        Self::OrderSubmittedAdmin,
        Self::OrderShipped,
        Self::CardsSold,
        Self::MemberChanged,
        Self::MemberInvited,
        Self::PointsExpiring,
        Self::EcardDelivered,
        Self::EcardExpiring,
        Self::EcardLowStock,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Self::OrderSubmitted => "order_submitted",
            Self::OrderSubmittedAdmin => "order_submitted_admin",
            Self::OrderShipped => "order_shipped",
            Self::CardsSold => "cards_sold",
            Self::MemberChanged => "member_changed",
            Self::MemberInvited => "member_invited",
            Self::PointsExpiring => "points_expiring",
            Self::EcardDelivered => "ecard_delivered",
            Self::EcardExpiring => "ecard_expiring",
            Self::EcardLowStock => "ecard_low_stock",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::OrderSubmitted => "A 提货订单提交，通知顾客",
            Self::OrderSubmittedAdmin => "B 提货订单提交，通知管理员",
            Self::OrderShipped => "C 订单发货，通知顾客",
            Self::CardsSold => "D 商城卖卡，卡号密码发给顾客",
            Self::MemberChanged => "E 会员积分/余额变动，通知会员",
            Self::MemberInvited => "F 支付后赠会员卡，发送领卡链接",
            Self::PointsExpiring => "G 积分即将过期，提醒会员",
            Self::EcardDelivered => "H 电子卡密自动发货，发送卡密查看链接",
            Self::EcardExpiring => "I 电子卡密即将过期，提醒买家使用",
            Self::EcardLowStock => "J 卡密库存不足，通知管理员",
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.code() == code)
    }

    /// The template's variables, in the order Tencent's positional
    /// `TemplateParamSet` takes them (Aliyun's `TemplateParam` names them).
    pub fn variables(self) -> &'static [&'static str] {
        match self {
            Self::OrderSubmitted => &["order", "goods", "date"],
            Self::OrderSubmittedAdmin => &["order", "goods", "consignee"],
            Self::OrderShipped => &["order", "carrier", "number"],
            Self::CardsSold => &["order", "cards"],
            Self::MemberChanged => &[
                "number",
                "points_change",
                "points",
                "balance_change",
                "balance",
            ],
            Self::MemberInvited => &["link"],
            Self::PointsExpiring => &["number", "points", "date"],
            Self::EcardDelivered => &["order", "link"],
            Self::EcardExpiring => &["order", "date", "link"],
            Self::EcardLowStock => &["goods", "number"],
        }
    }
}

/// Most admin phones switch B texts.
pub const ADMIN_PHONES_MAX: usize = 5;

/// The merchant's 通知设置 as entered (the AccessKey secret in the clear,
/// only on its way to being sealed; empty keeps the saved one).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SmsSettingsFields {
    pub provider: SmsProvider,
    pub access_key_id: String,
    pub access_key_secret: String,
    /// Tencent's SdkAppId (短信应用 ID).
    pub sdk_app_id: String,
    /// Tencent's region, `ap-guangzhou` when empty.
    pub region: String,
    /// 短信签名, as approved by the provider.
    pub sign_name: String,
    pub notify_customer_on_submit: bool,
    pub template_submit: String,
    pub notify_admin_on_submit: bool,
    pub template_admin: String,
    pub admin_phones: Vec<String>,
    pub notify_customer_on_ship: bool,
    pub template_ship: String,
    pub notify_buyer_on_sale: bool,
    pub template_sale: String,
    pub notify_member_on_change: bool,
    pub template_member_change: String,
    pub notify_customer_on_invite: bool,
    pub template_invite: String,
    pub notify_member_on_expiry: bool,
    pub template_points_expiring: String,
    pub notify_buyer_on_ecard: bool,
    pub template_ecard: String,
    pub notify_buyer_on_ecard_expiry: bool,
    pub template_ecard_expiring: String,
    pub notify_admin_on_low_stock: bool,
    pub template_low_stock: String,
}

/// The saved settings: the secret sealed with the merchant's key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SmsSettings {
    pub merchant_id: i64,
    pub fields: SmsSettingsFields,
    pub secret_sealed: Option<Vec<u8>>,
    pub key_version: i32,
    pub updated_at: i64,
}

impl SmsSettings {
    /// The template of a switch that is on, or `None`.
    pub fn template(&self, kind: SmsKind) -> Option<&str> {
        let f = &self.fields;
        let (on, template) = match kind {
            SmsKind::OrderSubmitted => (f.notify_customer_on_submit, &f.template_submit),
            SmsKind::OrderSubmittedAdmin => (f.notify_admin_on_submit, &f.template_admin),
            SmsKind::OrderShipped => (f.notify_customer_on_ship, &f.template_ship),
            SmsKind::CardsSold => (f.notify_buyer_on_sale, &f.template_sale),
            SmsKind::MemberChanged => (f.notify_member_on_change, &f.template_member_change),
            SmsKind::MemberInvited => (f.notify_customer_on_invite, &f.template_invite),
            SmsKind::PointsExpiring => (f.notify_member_on_expiry, &f.template_points_expiring),
            SmsKind::EcardDelivered => (f.notify_buyer_on_ecard, &f.template_ecard),
            SmsKind::EcardExpiring => (f.notify_buyer_on_ecard_expiry, &f.template_ecard_expiring),
            SmsKind::EcardLowStock => (f.notify_admin_on_low_stock, &f.template_low_stock),
        };
        (on && !template.is_empty()).then_some(template.as_str())
    }

    /// Whether any switch is on.
    pub fn any_on(&self) -> bool {
        SmsKind::ALL.into_iter().any(|k| self.template(k).is_some())
    }
}

/// The context AccessKey secrets are sealed under.
const SMS_SECRET_CONTEXT: &str = "sms-settings";

/// Checks the fields: a signature and the AccessKey when any switch is on,
/// a template for each switch that is on, 11-digit admin phones.
impl SmsSettingsFields {
    /// Whether saving these over `saved` changes what signs in to the
    /// provider (provider, AccessKey, SdkAppId, region; a new secret), which
    /// 双人复核 may hold for a second person. Templates, switches and the
    /// 短信签名 are not credentials.
    pub fn changes_credentials(&self, saved: Option<&SmsSettings>) -> bool {
        let Some(saved) = saved else {
            return true;
        };
        let s = &saved.fields;
        !self.access_key_secret.is_empty()
            || self.provider != s.provider
            || self.access_key_id != s.access_key_id
            || self.sdk_app_id != s.sdk_app_id
            || self.region != s.region
    }
}

pub fn check_settings(fields: &SmsSettingsFields, has_saved_secret: bool) -> Result<(), String> {
    let text = crate::text::check_field;
    text("AccessKey ID", &fields.access_key_id, 128)?;
    text("AccessKey Secret", &fields.access_key_secret, 128)?;
    text("短信应用 ID", &fields.sdk_app_id, 32)?;
    text("地域", &fields.region, 32)?;
    text("短信签名", &fields.sign_name, 32)?;
    for template in [
        &fields.template_submit,
        &fields.template_admin,
        &fields.template_ship,
        &fields.template_sale,
        &fields.template_member_change,
        &fields.template_invite,
        &fields.template_points_expiring,
        &fields.template_ecard,
        &fields.template_ecard_expiring,
        &fields.template_low_stock,
    ] {
        text("模板 ID", template, 64)?;
    }
    if fields.admin_phones.len() > ADMIN_PHONES_MAX {
        return Err(format!("管理员手机号最多 {ADMIN_PHONES_MAX} 个"));
    }
    for phone in &fields.admin_phones {
        crate::customer::check_mobile(phone).map_err(|e| format!("管理员手机号 {phone}：{e}"))?;
    }
    let switches = [
        (
            fields.notify_customer_on_submit,
            &fields.template_submit,
            "A",
        ),
        (fields.notify_admin_on_submit, &fields.template_admin, "B"),
        (fields.notify_customer_on_ship, &fields.template_ship, "C"),
        (fields.notify_buyer_on_sale, &fields.template_sale, "D"),
        (
            fields.notify_member_on_change,
            &fields.template_member_change,
            "E",
        ),
        (
            fields.notify_customer_on_invite,
            &fields.template_invite,
            "F",
        ),
        (
            fields.notify_member_on_expiry,
            &fields.template_points_expiring,
            "G",
        ),
        (fields.notify_buyer_on_ecard, &fields.template_ecard, "H"),
        (
            fields.notify_buyer_on_ecard_expiry,
            &fields.template_ecard_expiring,
            "I",
        ),
        (
            fields.notify_admin_on_low_stock,
            &fields.template_low_stock,
            "J",
        ),
    ];
    for (on, template, letter) in switches {
        if on && template.trim().is_empty() {
            return Err(format!("开启通知 {letter} 须填写它的模板 ID"));
        }
    }
    if fields.notify_admin_on_submit && fields.admin_phones.is_empty() {
        return Err("开启通知 B 须填写管理员手机号".into());
    }
    if fields.notify_admin_on_low_stock && fields.admin_phones.is_empty() {
        return Err("开启通知 J 须填写管理员手机号".into());
    }
    if switches.iter().any(|(on, ..)| *on) {
        if fields.sign_name.trim().is_empty() {
            return Err("请填写短信签名".into());
        }
        if fields.access_key_id.trim().is_empty()
            || (fields.access_key_secret.is_empty() && !has_saved_secret)
        {
            return Err("请填写 AccessKey ID 和 Secret（腾讯云为 SecretId 和 SecretKey）".into());
        }
        if fields.provider == SmsProvider::Tencent && fields.sdk_app_id.trim().is_empty() {
            return Err("腾讯云短信须填写短信应用 ID（SdkAppId）".into());
        }
    }
    Ok(())
}

/// Seals a new AccessKey secret with the merchant's key.
pub fn seal_secret(
    master: &MasterKey,
    merchant_id: i64,
    key_version: i32,
    secret: &str,
) -> Vec<u8> {
    master
        .merchant_keys(merchant_id, key_version)
        .seal(SMS_SECRET_CONTEXT, secret)
}

/// Opens the saved AccessKey secret, if any.
pub fn open_secret(master: &MasterKey, settings: &SmsSettings) -> Option<String> {
    master
        .merchant_keys(settings.merchant_id, settings.key_version)
        .open(SMS_SECRET_CONTEXT, settings.secret_sealed.as_deref()?)
}

/// A text to send, planned in the transaction of the event behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSms {
    pub merchant_id: i64,
    pub kind: SmsKind,
    pub phone: String,
    pub template: String,
    /// The template's variables as a JSON object (names of [`SmsKind::variables`]).
    pub params: String,
    pub created_at: i64,
}

/// Whether an event may cause a text (so a store reads the settings only then).
pub fn wants(event_type: EventType) -> bool {
    matches!(
        event_type,
        EventType::PickupOrderCreated
            | EventType::PickupOrderShipped
            | EventType::MemberChanged
            | EventType::MemberInvited
            | EventType::MemberPointsExpiring
            | EventType::EcardDelivered
            | EventType::EcardExpiring
            | EventType::EcardLowStock
    )
}

/// The texts an event causes under the merchant's settings.
pub fn messages_for(event: &NewEvent, settings: &SmsSettings) -> Vec<NewSms> {
    let data: Value = serde_json::from_str(&event.data).unwrap_or(Value::Null);
    let field = |name: &str| match &data[name] {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    };
    let customer = field("phone");
    let planned = |kind: SmsKind, phone: &str, params: Value| {
        settings.template(kind).map(|template| NewSms {
            merchant_id: event.merchant_id,
            kind,
            phone: phone.to_owned(),
            template: template.to_owned(),
            params: params.to_string(),
            created_at: event.created_at,
        })
    };
    let mobile = |phone: &str| crate::customer::check_mobile(phone).is_ok();
    let mut messages = Vec::new();
    match event.event_type {
        EventType::PickupOrderCreated => {
            if mobile(&customer) {
                let params = serde_json::json!({"order": field("order_id"), "goods": field("goods_name"), "date": field("appointment_date")});
                messages.extend(planned(SmsKind::OrderSubmitted, &customer, params));
            }
            let params = serde_json::json!({"order": field("order_id"), "goods": field("goods_name"), "consignee": field("consignee")});
            for admin in &settings.fields.admin_phones {
                messages.extend(planned(SmsKind::OrderSubmittedAdmin, admin, params.clone()));
            }
        }
        EventType::PickupOrderShipped if mobile(&customer) => {
            let params = serde_json::json!({"order": field("order_id"), "carrier": field("carrier"), "number": field("tracking_number")});
            messages.extend(planned(SmsKind::OrderShipped, &customer, params));
        }
        EventType::MemberChanged if mobile(&customer) => {
            let yuan = |name: &str| match &data[name] {
                Value::Number(n) => crate::money::format_yuan(n.as_i64().unwrap_or(0)),
                _ => String::new(),
            };
            let points_change = data["points_delta"].as_i64().unwrap_or(0);
            let balance_change = data["balance_delta_fen"].as_i64().unwrap_or(0);
            let sign = if balance_change < 0 { "-" } else { "+" };
            let params = serde_json::json!({
                "number": field("member_number"),
                "points_change": format!("{points_change:+}"),
                "points": field("points"),
                "balance_change": format!("{sign}{}", crate::money::format_yuan(balance_change.abs())),
                "balance": yuan("balance_fen"),
            });
            messages.extend(planned(SmsKind::MemberChanged, &customer, params));
        }
        EventType::MemberInvited if mobile(&customer) => {
            let params = serde_json::json!({"link": field("open_url")});
            messages.extend(planned(SmsKind::MemberInvited, &customer, params));
        }
        EventType::MemberPointsExpiring if mobile(&customer) => {
            let params = serde_json::json!({"number": field("member_number"), "points": field("points"), "date": field("expires_by")});
            messages.extend(planned(SmsKind::PointsExpiring, &customer, params));
        }
        // The link is the cards' bearer: the text keeps the order's id and
        // the sender makes the link when it sends.
        EventType::EcardDelivered if mobile(&customer) => {
            let params =
                serde_json::json!({"order": field("order_id"), "order_ref": data["order_ref"]});
            messages.extend(planned(SmsKind::EcardDelivered, &customer, params));
        }
        EventType::EcardExpiring if mobile(&customer) => {
            let date = data["valid_until"]
                .as_i64()
                .map(crate::clock::format_date)
                .unwrap_or_default();
            let params = serde_json::json!({"order": field("order_id"), "date": date, "order_ref": data["order_ref"]});
            messages.extend(planned(SmsKind::EcardExpiring, &customer, params));
        }
        EventType::EcardLowStock => {
            let params = serde_json::json!({"goods": field("name"), "number": field("available")});
            for admin in &settings.fields.admin_phones {
                messages.extend(planned(SmsKind::EcardLowStock, admin, params.clone()));
            }
        }
        _ => {}
    }
    messages
}

/// The text of a card sale (switch D) to the buyer's phone, if the switch
/// is on: its parameters name the order only; the cards and passwords are
/// read from the sale when it is sent.
pub fn sale_message(
    settings: &SmsSettings,
    phone: &str,
    order_id: &str,
    now: i64,
) -> Option<NewSms> {
    let template = settings.template(SmsKind::CardsSold)?;
    crate::customer::check_mobile(phone).ok()?;
    Some(NewSms {
        merchant_id: settings.merchant_id,
        kind: SmsKind::CardsSold,
        phone: phone.to_owned(),
        template: template.to_owned(),
        params: serde_json::json!({"order": order_id}).to_string(),
        created_at: now,
    })
}

/// The `cards` variable of a card sale's text: each card's number and
/// password, `；`-separated.
pub fn cards_param(cards: &[crate::card_sale::SoldCardView]) -> String {
    cards
        .iter()
        .map(|c| format!("卡号{} 密码{}", c.number, c.password))
        .collect::<Vec<_>>()
        .join("；")
}

/// Where a text stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmsState {
    Pending,
    Sent,
    Failed,
}

impl SmsState {
    pub fn code(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sent => "sent",
            Self::Failed => "failed",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Pending => "待发送",
            Self::Sent => "已发送",
            Self::Failed => "发送失败",
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        [Self::Pending, Self::Sent, Self::Failed]
            .into_iter()
            .find(|s| s.code() == code)
    }
}

/// Seconds before each retry of a text the provider refused or did not
/// answer: a text hours late is worse than none, so the last try is within
/// the hour.
pub const SMS_RETRY_DELAYS: [i64; 4] = [10, 60, 300, 1_800];

/// When a text that failed its `attempts`-th try goes again; `None`: give up.
pub fn next_sms_attempt_at(attempts: i64, now: i64) -> Option<i64> {
    let delay = *SMS_RETRY_DELAYS.get(usize::try_from(attempts - 1).ok()?)?;
    Some(now + delay)
}

/// Where a text goes after its `attempts`-th try: sent, due again at a
/// time, or given up.
pub fn after_sms_attempt(attempts: i64, outcome: &SmsOutcome, now: i64) -> (SmsState, Option<i64>) {
    if outcome.sent {
        return (SmsState::Sent, None);
    }
    match next_sms_attempt_at(attempts, now) {
        Some(at) => (SmsState::Pending, Some(at)),
        None => (SmsState::Failed, None),
    }
}

/// A planned text with what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsMessage {
    pub id: i64,
    pub merchant_id: i64,
    pub kind: SmsKind,
    pub phone: String,
    pub template: String,
    pub params: String,
    pub state: SmsState,
    pub attempts: i64,
    pub next_attempt_at: Option<i64>,
    /// The provider's answer code (`OK`, `Ok`, or its error code) and message.
    pub provider_code: String,
    pub provider_message: String,
    pub created_at: i64,
    pub sent_at: Option<i64>,
}

/// What one try of a text came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsOutcome {
    pub sent: bool,
    pub provider_code: String,
    pub provider_message: String,
}

/// 通知设置 and the texts in the database.
#[async_trait::async_trait]
pub trait SmsStore: Send + Sync + 'static {
    async fn get_sms_settings(&self, merchant_id: i64) -> StoreResult<Option<SmsSettings>>;
    /// Saves the settings (the secret already sealed, or `None` to keep the
    /// saved one) with an audit record.
    async fn save_sms_settings(
        &self,
        settings: &SmsSettings,
        audit: &crate::audit::AuditEntry,
    ) -> StoreResult<()>;
    /// Leases up to `limit` due texts for `lease_seconds` and counts the attempt.
    async fn claim_sms(
        &self,
        limit: i64,
        lease_seconds: i64,
        now: i64,
    ) -> StoreResult<Vec<SmsMessage>>;
    /// Records a try of a claimed text: sent, retried later, or given up.
    async fn record_sms_attempt(
        &self,
        id: i64,
        attempts: i64,
        outcome: &SmsOutcome,
        now: i64,
    ) -> StoreResult<()>;
    /// The texts, newest first.
    async fn list_sms(
        &self,
        merchant_id: i64,
        page: crate::store::Page,
    ) -> StoreResult<(Vec<SmsMessage>, i64)>;
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

/// Lowercase hex SHA-256, as both providers hash payloads.
pub fn sha256_hex(bytes: &[u8]) -> String {
    crate::secrets::to_hex(&Sha256::digest(bytes))
}

/// RFC 3986 percent-encoding: `A-Z a-z 0-9 - _ . ~` kept, everything else
/// `%XX` (UTF-8 bytes, uppercase hex), as Aliyun's canonical query wants.
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// An HTTP request as a provider's signature sees it.
#[derive(Debug, Clone)]
pub struct SignedRequest<'a> {
    pub method: &'a str,
    pub path: &'a str,
    /// Query parameters, unencoded.
    pub query: &'a [(&'a str, &'a str)],
    /// The headers to sign, as sent (names in any case).
    pub headers: &'a [(&'a str, &'a str)],
    /// Lowercase hex SHA-256 of the body.
    pub payload_hash: &'a str,
}

/// Aliyun's ACS3-HMAC-SHA256 `Authorization` header: headers grouped by
/// lower-cased name (several values sorted and joined by `,`), the
/// canonical request hashed, the hash signed with the AccessKey secret.
pub fn aliyun_authorization(request: &SignedRequest<'_>, key_id: &str, key_secret: &str) -> String {
    let mut query: Vec<(&str, &str)> = request.query.to_vec();
    query.sort();
    let canonical_query = query
        .iter()
        .map(|(k, v)| format!("{k}={}", percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let mut headers: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for (name, value) in request.headers {
        headers
            .entry(name.to_ascii_lowercase())
            .or_default()
            .push(value.trim().to_owned());
    }
    let mut canonical_headers = String::new();
    for (name, values) in &mut headers {
        values.sort();
        canonical_headers.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    let signed_headers = headers.keys().cloned().collect::<Vec<_>>().join(";");
    let canonical_request = format!(
        "{}\n{}\n{canonical_query}\n{canonical_headers}\n{signed_headers}\n{}",
        request.method,
        if request.path.is_empty() {
            "/"
        } else {
            request.path
        },
        request.payload_hash
    );
    let string_to_sign = format!(
        "ACS3-HMAC-SHA256\n{}",
        sha256_hex(canonical_request.as_bytes())
    );
    let signature = crate::secrets::to_hex(&hmac_sha256(
        key_secret.as_bytes(),
        string_to_sign.as_bytes(),
    ));
    format!(
        "ACS3-HMAC-SHA256 Credential={key_id},SignedHeaders={signed_headers},Signature={signature}"
    )
}

/// Tencent Cloud's TC3-HMAC-SHA256 `Authorization` header for a POST to
/// `/` of `service`: the headers signed are the ones given (names and values
/// lower-cased), the date is the UTC date of `timestamp`.
pub fn tencent_authorization(
    service: &str,
    headers: &[(&str, &str)],
    payload: &[u8],
    timestamp: i64,
    secret_id: &str,
    secret_key: &str,
) -> String {
    let mut headers: Vec<(String, String)> = headers
        .iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), v.trim().to_ascii_lowercase()))
        .collect();
    headers.sort();
    let canonical_headers: String = headers.iter().map(|(n, v)| format!("{n}:{v}\n")).collect();
    let signed_headers = headers
        .iter()
        .map(|(n, _)| n.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let canonical_request = format!(
        "POST\n/\n\n{canonical_headers}\n{signed_headers}\n{}",
        sha256_hex(payload)
    );
    let date = time::OffsetDateTime::from_unix_timestamp(timestamp)
        .map(|t| t.date())
        .unwrap_or(time::Date::MIN);
    let date = format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    );
    let scope = format!("{date}/{service}/tc3_request");
    let string_to_sign = format!(
        "TC3-HMAC-SHA256\n{timestamp}\n{scope}\n{}",
        sha256_hex(canonical_request.as_bytes())
    );
    let k_date = hmac_sha256(format!("TC3{secret_key}").as_bytes(), date.as_bytes());
    let k_service = hmac_sha256(&k_date, service.as_bytes());
    let k_signing = hmac_sha256(&k_service, b"tc3_request");
    let signature = crate::secrets::to_hex(&hmac_sha256(&k_signing, string_to_sign.as_bytes()));
    format!(
        "TC3-HMAC-SHA256 Credential={secret_id}/{scope}, SignedHeaders={signed_headers}, Signature={signature}"
    )
}

#[cfg(test)]
mod tests;
