//! 短信 (通知设置): the merchant's SMS provider and the seed's three
//! switches - A: text the customer when they submit a pickup order; B: text
//! the admin phones when one is submitted; C: text the customer when it is
//! shipped (carrier and tracking number). Messages are planned in the
//! transaction that records the order's event ([`messages_for`]) and sent
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

/// Which message: the seed's switches A, B and C.
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
}

impl SmsKind {
    pub const ALL: [SmsKind; 4] = [
        Self::OrderSubmitted,
        Self::OrderSubmittedAdmin,
        Self::OrderShipped,
        Self::CardsSold,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Self::OrderSubmitted => "order_submitted",
            Self::OrderSubmittedAdmin => "order_submitted_admin",
            Self::OrderShipped => "order_shipped",
            Self::CardsSold => "cards_sold",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::OrderSubmitted => "A 提货订单提交，通知顾客",
            Self::OrderSubmittedAdmin => "B 提货订单提交，通知管理员",
            Self::OrderShipped => "C 订单发货，通知顾客",
            Self::CardsSold => "D 商城卖卡，卡号密码发给顾客",
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
    ];
    for (on, template, letter) in switches {
        if on && template.trim().is_empty() {
            return Err(format!("开启通知 {letter} 须填写它的模板 ID"));
        }
    }
    if fields.notify_admin_on_submit && fields.admin_phones.is_empty() {
        return Err("开启通知 B 须填写管理员手机号".into());
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
        EventType::PickupOrderCreated | EventType::PickupOrderShipped
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
mod tests {
    use super::*;

    fn settings() -> SmsSettings {
        SmsSettings {
            merchant_id: 1,
            fields: SmsSettingsFields {
                provider: SmsProvider::Aliyun,
                access_key_id: "LTAI".into(),
                sign_name: "果园".into(),
                notify_customer_on_submit: true,
                template_submit: "SMS_1".into(),
                notify_admin_on_submit: true,
                template_admin: "SMS_2".into(),
                admin_phones: vec!["13900000001".into(), "13900000002".into()],
                notify_customer_on_ship: false,
                template_ship: "SMS_3".into(),
                ..Default::default()
            },
            secret_sealed: Some(vec![1]),
            ..Default::default()
        }
    }

    fn order_event(event_type: EventType, phone: &str) -> NewEvent {
        NewEvent {
            merchant_id: 1,
            event_type,
            data: serde_json::json!({"order_id": 42, "goods_name": "苹果礼盒", "phone": phone, "consignee": "张三", "appointment_date": "2026-12-08", "carrier": "顺丰速运", "tracking_number": "SF1"}).to_string(),
            created_at: 100,
        }
    }

    #[test]
    fn a_submitted_order_texts_the_customer_and_each_admin_by_the_switches() {
        let planned = messages_for(
            &order_event(EventType::PickupOrderCreated, "13800001234"),
            &settings(),
        );
        let to: Vec<_> = planned
            .iter()
            .map(|m| (m.kind, m.phone.as_str(), m.template.as_str()))
            .collect();
        assert_eq!(
            to,
            [
                (SmsKind::OrderSubmitted, "13800001234", "SMS_1"),
                (SmsKind::OrderSubmittedAdmin, "13900000001", "SMS_2"),
                (SmsKind::OrderSubmittedAdmin, "13900000002", "SMS_2"),
            ]
        );
        assert_eq!(
            planned[0].params,
            r#"{"date":"2026-12-08","goods":"苹果礼盒","order":"42"}"#
        );
        assert_eq!(
            planned[1].params,
            r#"{"consignee":"张三","goods":"苹果礼盒","order":"42"}"#
        );
        assert!(planned
            .iter()
            .all(|m| m.created_at == 100 && m.merchant_id == 1));
        // A landline is not texted; the admins still are.
        let landline = messages_for(
            &order_event(EventType::PickupOrderCreated, "057188880000"),
            &settings(),
        );
        assert_eq!(landline.len(), 2);
        assert!(landline
            .iter()
            .all(|m| m.kind == SmsKind::OrderSubmittedAdmin));
    }

    #[test]
    fn shipping_texts_only_when_switch_c_is_on() {
        let shipped = order_event(EventType::PickupOrderShipped, "13800001234");
        assert!(messages_for(&shipped, &settings()).is_empty());
        let mut on = settings();
        on.fields.notify_customer_on_ship = true;
        let planned = messages_for(&shipped, &on);
        assert_eq!(planned.len(), 1);
        assert_eq!(planned[0].kind, SmsKind::OrderShipped);
        assert_eq!(
            planned[0].params,
            r#"{"carrier":"顺丰速运","number":"SF1","order":"42"}"#
        );
        assert!(messages_for(
            &order_event(EventType::PickupOrderCancelled, "13800001234"),
            &on
        )
        .is_empty());
        assert!(!wants(EventType::PickupOrderCancelled) && !wants(EventType::BalanceChanged));
        assert!(wants(EventType::PickupOrderCreated) && wants(EventType::PickupOrderShipped));
    }

    #[test]
    fn settings_need_a_template_per_switch_a_signature_and_a_key() {
        let ok = settings().fields;
        assert_eq!(check_settings(&ok, true), Ok(()));
        assert!(check_settings(&ok, false)
            .unwrap_err()
            .contains("AccessKey"));
        let mut no_template = ok.clone();
        no_template.template_admin.clear();
        assert!(check_settings(&no_template, true)
            .unwrap_err()
            .contains("B"));
        let mut no_sign = ok.clone();
        no_sign.sign_name = " ".into();
        assert!(check_settings(&no_sign, true).unwrap_err().contains("签名"));
        let mut bad_phone = ok.clone();
        bad_phone.admin_phones.push("123".into());
        assert!(check_settings(&bad_phone, true)
            .unwrap_err()
            .contains("123"));
        let mut tencent = ok.clone();
        tencent.provider = SmsProvider::Tencent;
        assert!(check_settings(&tencent, true)
            .unwrap_err()
            .contains("SdkAppId"));
        let mut off = SmsSettingsFields::default();
        assert_eq!(check_settings(&off, false), Ok(()), "all off needs nothing");
        off.admin_phones = vec!["13900000001".into(); ADMIN_PHONES_MAX + 1];
        assert!(check_settings(&off, false).is_err());
    }

    #[test]
    fn a_failed_text_is_retried_four_times_within_the_hour() {
        let failed = SmsOutcome {
            sent: false,
            provider_code: "isv.BUSINESS_LIMIT_CONTROL".into(),
            provider_message: String::new(),
        };
        let sent = SmsOutcome {
            sent: true,
            ..failed.clone()
        };
        assert_eq!(after_sms_attempt(1, &sent, 0), (SmsState::Sent, None));
        let mut at = 0;
        for attempts in 1..=4 {
            let (state, next) = after_sms_attempt(attempts, &failed, at);
            assert_eq!(state, SmsState::Pending);
            at = next.unwrap();
        }
        assert_eq!(at, 10 + 60 + 300 + 1_800);
        assert_eq!(after_sms_attempt(5, &failed, at), (SmsState::Failed, None));
        assert_eq!(next_sms_attempt_at(0, 0), None);
    }

    #[test]
    fn a_card_sale_texts_the_buyer_only_with_switch_d_and_never_its_passwords() {
        let mut on = settings();
        assert_eq!(sale_message(&on, "13800001234", "M1", 7), None);
        on.fields.notify_buyer_on_sale = true;
        on.fields.template_sale = "SMS_4".into();
        let text = sale_message(&on, "13800001234", "M1", 7).unwrap();
        assert_eq!(
            (text.kind, text.template.as_str(), text.params.as_str()),
            (SmsKind::CardsSold, "SMS_4", r#"{"order":"M1"}"#)
        );
        assert_eq!(sale_message(&on, "0571", "M1", 7), None);
        let cards = [
            crate::card_sale::SoldCardView {
                number: "A1".into(),
                password: "11".into(),
                state: crate::card::CardState::Active,
            },
            crate::card_sale::SoldCardView {
                number: "A2".into(),
                password: "22".into(),
                state: crate::card::CardState::Active,
            },
        ];
        assert_eq!(cards_param(&cards), "卡号A1 密码11；卡号A2 密码22");
        let mut no_template = on.fields.clone();
        no_template.template_sale.clear();
        assert!(check_settings(&no_template, true)
            .unwrap_err()
            .contains("D"));
    }

    #[test]
    fn the_secret_is_sealed_for_its_merchant_only() {
        let master = MasterKey::from_bytes([3; 32]);
        let saved = SmsSettings {
            merchant_id: 4,
            key_version: 1,
            secret_sealed: Some(seal_secret(&master, 4, 1, "ak-secret")),
            ..Default::default()
        };
        assert_eq!(open_secret(&master, &saved).as_deref(), Some("ak-secret"));
        assert_eq!(
            open_secret(
                &master,
                &SmsSettings {
                    merchant_id: 5,
                    ..saved.clone()
                }
            ),
            None
        );
        assert_eq!(open_secret(&master, &SmsSettings::default()), None);
    }

    #[test]
    fn switches_and_limits_are_exact() {
        let mut s = settings();
        assert!(s.any_on());
        s.fields.notify_customer_on_submit = false;
        s.fields.notify_admin_on_submit = false;
        assert!(!s.any_on());
        let mut f = settings().fields;
        f.sign_name = "签".repeat(32);
        assert_eq!(check_settings(&f, true), Ok(()));
        f.sign_name = "签".repeat(33);
        assert!(check_settings(&f, true).is_err());
        f.sign_name = "果\u{7}园".into();
        assert!(check_settings(&f, true).is_err());
        let mut phones = settings().fields;
        phones.admin_phones = vec!["13900000001".into(); ADMIN_PHONES_MAX];
        assert_eq!(check_settings(&phones, true), Ok(()));
        assert_eq!(
            SmsKind::OrderSubmitted.variables(),
            ["order", "goods", "date"]
        );
        assert_eq!(
            SmsKind::OrderSubmittedAdmin.variables(),
            ["order", "goods", "consignee"]
        );
        assert_eq!(
            SmsKind::OrderShipped.variables(),
            ["order", "carrier", "number"]
        );
        assert_eq!(SmsKind::CardsSold.variables(), ["order", "cards"]);
        // A shipped order of a landline customer texts nobody.
        let mut on = settings();
        on.fields.notify_customer_on_ship = true;
        assert!(messages_for(
            &order_event(EventType::PickupOrderShipped, "057188880000"),
            &on
        )
        .is_empty());
        let labels: std::collections::HashSet<_> = SmsKind::ALL
            .iter()
            .map(|k| k.label())
            .chain(SmsProvider::ALL.iter().map(|p| p.label()))
            .chain(
                [SmsState::Pending, SmsState::Sent, SmsState::Failed]
                    .iter()
                    .map(|s| s.label()),
            )
            .collect();
        assert_eq!(labels.len(), 9);
        assert!(labels.iter().all(|l| !l.is_empty() && !l.contains("xyzzy")));
    }

    #[test]
    fn codes_round_trip() {
        for p in SmsProvider::ALL {
            assert_eq!(SmsProvider::parse(p.code()), Some(p));
        }
        for k in SmsKind::ALL {
            assert_eq!(SmsKind::parse(k.code()), Some(k));
            assert!(!k.variables().is_empty());
        }
        for s in [SmsState::Pending, SmsState::Sent, SmsState::Failed] {
            assert_eq!(SmsState::parse(s.code()), Some(s));
        }
    }

    const EMPTY_HASH: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn aliyun_matches_the_published_v3_example() {
        let request = SignedRequest {
            method: "POST",
            path: "/",
            query: &[
                ("RegionId", "cn-shanghai"),
                (
                    "ImageId",
                    "win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd",
                ),
            ],
            headers: &[
                ("host", "ecs.cn-shanghai.aliyuncs.com"),
                ("x-acs-action", "RunInstances"),
                ("x-acs-version", "2014-05-26"),
                ("x-acs-date", "2023-10-26T10:22:32Z"),
                ("x-acs-signature-nonce", "3156853299f313e23d1673dc12e1703d"),
                ("x-acs-content-sha256", EMPTY_HASH),
            ],
            payload_hash: EMPTY_HASH,
        };
        assert_eq!(
            aliyun_authorization(&request, "YourAccessKeyId", "YourAccessKeySecret"),
            "ACS3-HMAC-SHA256 Credential=YourAccessKeyId,SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,Signature=06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0"
        );
    }

    #[test]
    fn aliyun_merges_repeated_headers_as_the_sdk_test_does() {
        let request = SignedRequest {
            method: "GET",
            path: "/",
            query: &[("test", "ok"), ("empty", "")],
            headers: &[("x-acs-test", "http"), ("x-acs-TEST", "https")],
            payload_hash: "55e12e91650d2fec56ec74e1d3e4ddbfce2ef3a65890c2a19ecf88a307e76a23",
        };
        assert_eq!(
            aliyun_authorization(&request, "acesskey", "secret"),
            "ACS3-HMAC-SHA256 Credential=acesskey,SignedHeaders=x-acs-test,Signature=d16b30a7699ae9e43875b13195b2f81bcc3ed10c14a9b5eb780e51619aa50be1"
        );
    }

    #[test]
    fn percent_encoding_keeps_only_unreserved_characters() {
        assert_eq!(percent_encode("a/b/c/ test"), "a%2Fb%2Fc%2F%20test");
        assert_eq!(percent_encode("A-z_0.9~*"), "A-z_0.9~%2A");
        assert_eq!(percent_encode("阿"), "%E9%98%BF");
    }

    const TENCENT_PAYLOAD: &str =
        r#"{"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]}"#;

    #[test]
    fn tencent_matches_the_published_example() {
        assert_eq!(
            sha256_hex(TENCENT_PAYLOAD.as_bytes()),
            "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
        );
        let headers = [
            ("Content-Type", "application/json; charset=utf-8"),
            ("Host", "cvm.tencentcloudapi.com"),
        ];
        assert_eq!(
            tencent_authorization("cvm", &headers, TENCENT_PAYLOAD.as_bytes(), 1551113065, "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE", "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE"),
            "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2019-02-25/cvm/tc3_request, SignedHeaders=content-type;host, Signature=72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"
        );
    }

    #[test]
    fn tencent_signs_the_action_header_when_given() {
        let headers = [
            ("Content-Type", "application/json; charset=utf-8"),
            ("Host", "cvm.tencentcloudapi.com"),
            ("X-TC-Action", "DescribeInstances"),
        ];
        let authorization = tencent_authorization(
            "cvm",
            &headers,
            TENCENT_PAYLOAD.as_bytes(),
            1551113065,
            "id",
            "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
        );
        assert!(
            authorization.ends_with("SignedHeaders=content-type;host;x-tc-action, Signature=644be983de9a8a3f00db8eadaba61467c3b429e2215758ba897b738ca469fd26"),
            "{authorization}"
        );
    }

    #[test]
    fn the_tencent_date_is_the_utc_date() {
        // 2019-02-25 23:30 UTC is already the 26th in Beijing: the scope says the 25th.
        let authorization = tencent_authorization(
            "sms",
            &[("Host", "sms.tencentcloudapi.com")],
            b"{}",
            1551137400,
            "id",
            "key",
        );
        assert!(
            authorization.contains("id/2019-02-25/sms/tc3_request"),
            "{authorization}"
        );
    }
}
