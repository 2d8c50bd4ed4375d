//! 短信 (全局设置 → 通知设置): the merchant's SMS provider, the seed's
//! switches A/B/C, a test send, the log of every text, and the sender that
//! runs beside the server on every node. Texts are planned by the store in
//! the transaction of the order's event; the sender leases due ones, calls
//! Aliyun (`SendSms`, ACS3-HMAC-SHA256) or Tencent Cloud (`SendSms`
//! 2021-01-11, TC3-HMAC-SHA256) with a timeout, and records the provider's
//! answer. A slow provider never slows a customer's request.

use crate::approvals::{held_answer, Gated};
use crate::auth::Authed;
use crate::credential_approvals::{self, Payload, Sealed};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Query};
use crate::lists::{ListDto, PageQuery};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use kaquan_core::approval::CredentialChange;
use kaquan_core::auth::Permission;
use kaquan_core::clock::format_datetime;
use kaquan_core::pickup::mask_phone;
use kaquan_core::sms::{
    aliyun_authorization, check_settings, open_secret, percent_encode, seal_secret, sha256_hex,
    tencent_authorization, SignedRequest, SmsKind, SmsMessage, SmsOutcome, SmsProvider,
    SmsSettings, SmsSettingsFields,
};
use kaquan_core::store::Page as ListPage;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::time::Duration;

/// Where the providers' APIs are: their public hosts, or an operator's
/// override (`[sms] aliyun_endpoint`, `tencent_endpoint`; tests point them
/// at a local double).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsEndpoints {
    pub aliyun: String,
    pub tencent: String,
}

impl Default for SmsEndpoints {
    fn default() -> Self {
        Self {
            aliyun: "https://dysmsapi.aliyuncs.com".into(),
            tencent: "https://sms.tencentcloudapi.com".into(),
        }
    }
}

/// How long one call to a provider may take.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Texts in flight per node.
const CONCURRENT_SENDS_MAX: i64 = 16;
/// A claimed text's lease: longer than any call.
const LEASE_SECONDS: i64 = 60;
/// How long the sender rests when nothing is due.
const IDLE: Duration = Duration::from_millis(500);
/// The most of a provider's answer read.
const ANSWER_BYTES_MAX: usize = 64 * 1024;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/sms-settings",
            get(get_sms_settings).put(update_sms_settings),
        )
        .route("/api/v1/sms-settings/test", post(create_sms_test))
        .route("/api/v1/sms-messages", get(list_sms_messages))
}

// ---- sending ---------------------------------------------------------------------

pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(SEND_TIMEOUT)
        .connect_timeout(Duration::from_secs(5))
        .user_agent(concat!("kaquan-sms/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("the SMS client builds")
}

/// One text as a provider takes it.
pub struct Text<'a> {
    pub kind: SmsKind,
    pub phone: &'a str,
    pub template: &'a str,
    /// The template's variables, a JSON object.
    pub params: &'a str,
}

/// `Host` as the request will carry it: with the port when not the default.
fn host_of(url: &reqwest::Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_owned(),
        _ => String::new(),
    }
}

fn failed(code: &str, message: impl Into<String>) -> SmsOutcome {
    SmsOutcome {
        sent: false,
        provider_code: code.into(),
        provider_message: message.into(),
    }
}

/// Sends one text with the merchant's settings; the provider's answer.
pub async fn send(
    client: &reqwest::Client,
    endpoints: &SmsEndpoints,
    settings: &SmsSettings,
    secret: &str,
    text: &Text<'_>,
) -> SmsOutcome {
    let params: Value = serde_json::from_str(text.params).unwrap_or_else(|_| json!({}));
    let answer = match settings.fields.provider {
        SmsProvider::Aliyun => {
            send_aliyun(client, &endpoints.aliyun, settings, secret, text, &params).await
        }
        SmsProvider::Tencent => {
            send_tencent(client, &endpoints.tencent, settings, secret, text, &params).await
        }
    };
    answer.unwrap_or_else(|outcome| outcome)
}

/// Reads at most [`ANSWER_BYTES_MAX`] of an answer as JSON.
async fn read_answer(response: reqwest::Response) -> Result<(u16, Value), SmsOutcome> {
    let status = response.status().as_u16();
    let mut response = response;
    let mut kept = Vec::new();
    while kept.len() < ANSWER_BYTES_MAX {
        match response.chunk().await {
            Ok(Some(chunk)) => kept.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    serde_json::from_slice(&kept)
        .map(|v| (status, v))
        .map_err(|_| failed(&format!("HTTP {status}"), "短信平台的回复无法解析"))
}

fn sent_error(error: &reqwest::Error) -> SmsOutcome {
    if error.is_timeout() {
        failed("timeout", "短信平台超时未回复")
    } else {
        failed("unreachable", "无法连接短信平台")
    }
}

async fn send_aliyun(
    client: &reqwest::Client,
    endpoint: &str,
    settings: &SmsSettings,
    secret: &str,
    text: &Text<'_>,
    params: &Value,
) -> Result<SmsOutcome, SmsOutcome> {
    let f = &settings.fields;
    let url = reqwest::Url::parse(endpoint).map_err(|_| failed("config", "短信平台地址无效"))?;
    let template_param = params.to_string();
    let query = [
        ("PhoneNumbers", text.phone),
        ("SignName", f.sign_name.as_str()),
        ("TemplateCode", text.template),
        ("TemplateParam", template_param.as_str()),
    ];
    let host = host_of(&url);
    let date = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let date = format!("{}Z", &date[..19.min(date.len())]);
    let nonce = kaquan_core::secrets::random_token_hex(16);
    let payload_hash = sha256_hex(b"");
    let headers = [
        ("host", host.as_str()),
        ("x-acs-action", "SendSms"),
        ("x-acs-version", "2017-05-25"),
        ("x-acs-date", date.as_str()),
        ("x-acs-signature-nonce", nonce.as_str()),
        ("x-acs-content-sha256", payload_hash.as_str()),
    ];
    let authorization = aliyun_authorization(
        &SignedRequest {
            method: "POST",
            path: "/",
            query: &query,
            headers: &headers,
            payload_hash: &payload_hash,
        },
        &f.access_key_id,
        secret,
    );
    let mut sorted = query;
    sorted.sort();
    let encoded: Vec<String> = sorted
        .iter()
        .map(|(k, v)| format!("{k}={}", percent_encode(v)))
        .collect();
    let mut request = client.post(format!(
        "{}/?{}",
        endpoint.trim_end_matches('/'),
        encoded.join("&")
    ));
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let response = request
        .header("authorization", authorization)
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|e| sent_error(&e))?;
    let (_, answer) = read_answer(response).await?;
    let code = answer["Code"].as_str().unwrap_or("").to_owned();
    let message = answer["Message"].as_str().unwrap_or("").to_owned();
    Ok(SmsOutcome {
        sent: code == "OK",
        provider_code: code,
        provider_message: message,
    })
}

async fn send_tencent(
    client: &reqwest::Client,
    endpoint: &str,
    settings: &SmsSettings,
    secret: &str,
    text: &Text<'_>,
    params: &Value,
) -> Result<SmsOutcome, SmsOutcome> {
    let f = &settings.fields;
    let url = reqwest::Url::parse(endpoint).map_err(|_| failed("config", "短信平台地址无效"))?;
    let template_params: Vec<String> = text
        .kind
        .variables()
        .iter()
        .map(|name| params[*name].as_str().unwrap_or("").to_owned())
        .collect();
    let body = json!({
        "PhoneNumberSet": [format!("+86{}", text.phone)],
        "SmsSdkAppId": f.sdk_app_id,
        "SignName": f.sign_name,
        "TemplateId": text.template,
        "TemplateParamSet": template_params,
    })
    .to_string();
    let host = host_of(&url);
    let timestamp = crate::now();
    let content_type = "application/json; charset=utf-8";
    let region = if f.region.trim().is_empty() {
        "ap-guangzhou"
    } else {
        f.region.trim()
    };
    let authorization = tencent_authorization(
        "sms",
        &[
            ("content-type", content_type),
            ("host", &host),
            ("x-tc-action", "SendSms"),
        ],
        body.as_bytes(),
        timestamp,
        &f.access_key_id,
        secret,
    );
    let response = client
        .post(format!("{}/", endpoint.trim_end_matches('/')))
        .header("content-type", content_type)
        .header("host", &host)
        .header("x-tc-action", "SendSms")
        .header("x-tc-version", "2021-01-11")
        .header("x-tc-timestamp", timestamp.to_string())
        .header("x-tc-region", region)
        .header("authorization", authorization)
        .body(body)
        .send()
        .await
        .map_err(|e| sent_error(&e))?;
    let (_, answer) = read_answer(response).await?;
    let answer = &answer["Response"];
    if let Some(error) = answer.get("Error") {
        return Ok(failed(
            error["Code"].as_str().unwrap_or("Error"),
            error["Message"].as_str().unwrap_or(""),
        ));
    }
    let status = &answer["SendStatusSet"][0];
    let code = status["Code"].as_str().unwrap_or("").to_owned();
    Ok(SmsOutcome {
        sent: code == "Ok",
        provider_code: code,
        provider_message: status["Message"].as_str().unwrap_or("").to_owned(),
    })
}

// ---- the sender ------------------------------------------------------------------

/// Starts the sender; it stops when the returned handle is aborted.
pub fn spawn(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(run(state))
}

async fn run(state: AppState) {
    let client = http_client();
    loop {
        let now = crate::now();
        let claimed = match state
            .store
            .claim_sms(CONCURRENT_SENDS_MAX, LEASE_SECONDS, now)
            .await
        {
            Ok(claimed) => claimed,
            Err(error) => {
                tracing::warn!(%error, "claiming texts failed; will retry");
                Vec::new()
            }
        };
        if claimed.is_empty() {
            tokio::time::sleep(IDLE).await;
            continue;
        }
        let mut sends = tokio::task::JoinSet::new();
        for text in claimed {
            let (state, client) = (state.clone(), client.clone());
            sends.spawn(async move { deliver(&state, &client, text).await });
        }
        while sends.join_next().await.is_some() {}
    }
}

/// The variables of a text as sent: a card sale's cards and passwords are
/// read from the sale now (they are never stored with the text).
async fn params_of(state: &AppState, text: &SmsMessage) -> Result<String, SmsOutcome> {
    if matches!(text.kind, SmsKind::EcardDelivered | SmsKind::EcardExpiring) {
        return ecard_params(state, text).await;
    }
    if text.kind != SmsKind::CardsSold {
        return Ok(text.params.clone());
    }
    let params: Value = serde_json::from_str(&text.params).unwrap_or_default();
    let order = params["order"].as_str().unwrap_or_default();
    let sale = match state.store.get_card_sale(text.merchant_id, order).await {
        Ok(Some(sale)) => sale,
        Ok(None) => return Err(failed("internal", "找不到该订单的售卡记录")),
        Err(error) => return Err(failed("internal", format!("读取售卡记录失败：{error}"))),
    };
    let sold = kaquan_core::card_sale::open_sale(&state.master, sale)
        .map_err(|error| failed("internal", format!("卡密无法解密：{error}")))?;
    Ok(json!({"order": order, "cards": kaquan_core::sms::cards_param(&sold.cards)}).to_string())
}

/// An e-card text's variables with the delivery link made now (the link
/// is the cards' bearer and is never stored with the text).
async fn ecard_params(state: &AppState, text: &SmsMessage) -> Result<String, SmsOutcome> {
    let mut params: Value = serde_json::from_str(&text.params).unwrap_or_default();
    let order_ref = params["order_ref"].as_i64().unwrap_or_default();
    let order = match state
        .store
        .get_ecard_order(text.merchant_id, order_ref)
        .await
    {
        Ok(order) => order,
        Err(error) => return Err(failed("internal", format!("读取电子卡密订单失败：{error}"))),
    };
    let link = crate::ecard_open::delivery_url(state, &order)
        .await
        .map_err(|_| failed("internal", "无法生成卡密查看链接"))?;
    if let Value::Object(map) = &mut params {
        map.remove("order_ref");
        map.insert("link".into(), Value::String(link));
    }
    Ok(params.to_string())
}

/// One try of one text, and its outcome recorded.
async fn deliver(state: &AppState, client: &reqwest::Client, text: SmsMessage) {
    let outcome = match state.store.get_sms_settings(text.merchant_id).await {
        Ok(Some(settings)) => match (
            open_secret(&state.master, &settings),
            params_of(state, &text).await,
        ) {
            (Some(secret), Ok(params)) => {
                let message = Text {
                    kind: text.kind,
                    phone: &text.phone,
                    template: &text.template,
                    params: &params,
                };
                send(client, &state.sms_endpoints, &settings, &secret, &message).await
            }
            (None, _) => failed("config", "AccessKey Secret 无法解密，请重新填写"),
            (_, Err(outcome)) => outcome,
        },
        Ok(None) => failed("config", "尚未设置短信"),
        Err(error) => failed("internal", format!("读取短信设置失败：{error}")),
    };
    metrics::counter!("kaquan_sms_attempts_total", "sent" => if outcome.sent { "true" } else { "false" })
        .increment(1);
    if let Err(error) = state
        .store
        .record_sms_attempt(text.id, text.attempts, &outcome, crate::now())
        .await
    {
        tracing::warn!(%error, sms.id = text.id, "recording a text's try failed");
    }
}

// ---- settings: API and console ---------------------------------------------------

/// 通知设置 as the API and the console show them: the AccessKey secret
/// never, only whether one is saved.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"provider": "aliyun", "access_key_id": "LTAI5tExample", "has_secret": true, "sdk_app_id": "", "region": "", "sign_name": "果园", "notify_customer_on_submit": true, "template_submit": "SMS_465000001", "notify_admin_on_submit": true, "template_admin": "SMS_465000002", "admin_phones": ["13900000001"], "notify_customer_on_ship": true, "template_ship": "SMS_465000003", "notify_buyer_on_sale": false, "template_sale": "", "notify_member_on_change": true, "template_member_change": "SMS_465000005", "notify_customer_on_invite": false, "template_invite": "", "notify_member_on_expiry": false, "template_points_expiring": "", "notify_buyer_on_ecard": false, "template_ecard": "", "notify_buyer_on_ecard_expiry": false, "template_ecard_expiring": "", "notify_admin_on_low_stock": false, "template_low_stock": ""}))]
pub struct SmsSettingsDto {
    /// `aliyun` or `tencent`.
    pub provider: &'static str,
    /// AccessKey ID (Tencent: SecretId).
    pub access_key_id: String,
    /// Whether an AccessKey secret is saved (it is never shown).
    pub has_secret: bool,
    /// Tencent's SdkAppId.
    pub sdk_app_id: String,
    /// Tencent's region; `ap-guangzhou` when empty.
    pub region: String,
    /// 短信签名.
    pub sign_name: String,
    /// A: text the customer when they submit a pickup order.
    pub notify_customer_on_submit: bool,
    pub template_submit: String,
    /// B: text the admin phones when a pickup order is submitted.
    pub notify_admin_on_submit: bool,
    pub template_admin: String,
    pub admin_phones: Vec<String>,
    /// C: text the customer when the order is shipped.
    pub notify_customer_on_ship: bool,
    pub template_ship: String,
    /// D: text cards sold through the open platform to the buyer, when the
    /// mall asks (`send_sms`).
    pub notify_buyer_on_sale: bool,
    pub template_sale: String,
    /// E: text a member when their points or balance change (one text
    /// when both do; the card's 消息通知 must be on too).
    pub notify_member_on_change: bool,
    pub template_member_change: String,
    /// F: text the 开卡 link of 支付后赠会员卡 to the paying customer.
    pub notify_customer_on_invite: bool,
    pub template_invite: String,
    /// G: text a member whose points lapse within 7 days.
    pub notify_member_on_expiry: bool,
    pub template_points_expiring: String,
    /// H: text an e-card buyer the delivery page's link (variables
    /// `order`, `link`).
    pub notify_buyer_on_ecard: bool,
    pub template_ecard: String,
    /// I: 过期预警 of an unused e-card (variables `order`, `date`, `link`).
    pub notify_buyer_on_ecard_expiry: bool,
    pub template_ecard_expiring: String,
    /// J: text the admin phones when a 虚拟商品's stock falls to its
    /// 低库存预警 (variables `goods`, `number`: what is left).
    pub notify_admin_on_low_stock: bool,
    pub template_low_stock: String,
}

impl SmsSettingsDto {
    pub(crate) fn new(settings: Option<&SmsSettings>) -> Self {
        let default = SmsSettings::default();
        let s = settings.unwrap_or(&default);
        let f = &s.fields;
        Self {
            provider: f.provider.code(),
            access_key_id: f.access_key_id.clone(),
            has_secret: s.secret_sealed.is_some(),
            sdk_app_id: f.sdk_app_id.clone(),
            region: f.region.clone(),
            sign_name: f.sign_name.clone(),
            notify_customer_on_submit: f.notify_customer_on_submit,
            template_submit: f.template_submit.clone(),
            notify_admin_on_submit: f.notify_admin_on_submit,
            template_admin: f.template_admin.clone(),
            admin_phones: f.admin_phones.clone(),
            notify_customer_on_ship: f.notify_customer_on_ship,
            template_ship: f.template_ship.clone(),
            notify_buyer_on_sale: f.notify_buyer_on_sale,
            template_sale: f.template_sale.clone(),
            notify_member_on_change: f.notify_member_on_change,
            template_member_change: f.template_member_change.clone(),
            notify_customer_on_invite: f.notify_customer_on_invite,
            template_invite: f.template_invite.clone(),
            notify_member_on_expiry: f.notify_member_on_expiry,
            template_points_expiring: f.template_points_expiring.clone(),
            notify_buyer_on_ecard: f.notify_buyer_on_ecard,
            template_ecard: f.template_ecard.clone(),
            notify_buyer_on_ecard_expiry: f.notify_buyer_on_ecard_expiry,
            template_ecard_expiring: f.template_ecard_expiring.clone(),
            notify_admin_on_low_stock: f.notify_admin_on_low_stock,
            template_low_stock: f.template_low_stock.clone(),
        }
    }
}

/// The settings to save. Leave `access_key_secret` out (or empty) to keep
/// the saved one.
#[derive(Deserialize, Serialize, Clone, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"provider": "aliyun", "access_key_id": "LTAI5tExample", "access_key_secret": "example-secret", "sign_name": "果园", "notify_customer_on_submit": true, "template_submit": "SMS_465000001", "notify_admin_on_submit": false, "template_admin": "", "admin_phones": [], "notify_customer_on_ship": true, "template_ship": "SMS_465000003"}))]
pub struct SmsSettingsRequest {
    #[schema(pattern = "^(aliyun|tencent)$")]
    pub provider: String,
    #[serde(default)]
    #[schema(max_length = 128)]
    pub access_key_id: String,
    #[serde(default)]
    #[schema(max_length = 128)]
    pub access_key_secret: String,
    #[serde(default)]
    #[schema(max_length = 32)]
    pub sdk_app_id: String,
    #[serde(default)]
    #[schema(max_length = 32)]
    pub region: String,
    #[serde(default)]
    #[schema(max_length = 32)]
    pub sign_name: String,
    #[serde(default)]
    pub notify_customer_on_submit: bool,
    #[serde(default)]
    #[schema(max_length = 64)]
    pub template_submit: String,
    #[serde(default)]
    pub notify_admin_on_submit: bool,
    #[serde(default)]
    #[schema(max_length = 64)]
    pub template_admin: String,
    #[serde(default)]
    #[schema(max_items = 5)]
    pub admin_phones: Vec<String>,
    #[serde(default)]
    pub notify_customer_on_ship: bool,
    #[serde(default)]
    #[schema(max_length = 64)]
    pub template_ship: String,
    #[serde(default)]
    pub notify_buyer_on_sale: bool,
    #[serde(default)]
    #[schema(max_length = 64)]
    pub template_sale: String,
    #[serde(default)]
    pub notify_member_on_change: bool,
    #[serde(default)]
    #[schema(max_length = 64)]
    pub template_member_change: String,
    #[serde(default)]
    pub notify_customer_on_invite: bool,
    #[serde(default)]
    #[schema(max_length = 64)]
    pub template_invite: String,
    #[serde(default)]
    pub notify_member_on_expiry: bool,
    #[serde(default)]
    #[schema(max_length = 64)]
    pub template_points_expiring: String,
    #[serde(default)]
    pub notify_buyer_on_ecard: bool,
    #[serde(default)]
    #[schema(max_length = 64)]
    pub template_ecard: String,
    #[serde(default)]
    pub notify_buyer_on_ecard_expiry: bool,
    #[serde(default)]
    #[schema(max_length = 64)]
    pub template_ecard_expiring: String,
    #[serde(default)]
    pub notify_admin_on_low_stock: bool,
    #[serde(default)]
    #[schema(max_length = 64)]
    pub template_low_stock: String,
}

impl SmsSettingsRequest {
    pub(crate) fn fields(self) -> ApiResult<SmsSettingsFields> {
        let provider = SmsProvider::parse(&self.provider)
            .ok_or_else(|| ApiError::invalid("provider 须为 aliyun 或 tencent"))?;
        Ok(SmsSettingsFields {
            provider,
            access_key_id: self.access_key_id.trim().to_owned(),
            access_key_secret: self.access_key_secret.trim().to_owned(),
            sdk_app_id: self.sdk_app_id.trim().to_owned(),
            region: self.region.trim().to_owned(),
            sign_name: self.sign_name.trim().to_owned(),
            notify_customer_on_submit: self.notify_customer_on_submit,
            template_submit: self.template_submit.trim().to_owned(),
            notify_admin_on_submit: self.notify_admin_on_submit,
            template_admin: self.template_admin.trim().to_owned(),
            admin_phones: self
                .admin_phones
                .iter()
                .map(|p| p.trim().to_owned())
                .filter(|p| !p.is_empty())
                .collect(),
            notify_customer_on_ship: self.notify_customer_on_ship,
            template_ship: self.template_ship.trim().to_owned(),
            notify_buyer_on_sale: self.notify_buyer_on_sale,
            template_sale: self.template_sale.trim().to_owned(),
            notify_member_on_change: self.notify_member_on_change,
            template_member_change: self.template_member_change.trim().to_owned(),
            notify_customer_on_invite: self.notify_customer_on_invite,
            template_invite: self.template_invite.trim().to_owned(),
            notify_member_on_expiry: self.notify_member_on_expiry,
            template_points_expiring: self.template_points_expiring.trim().to_owned(),
            notify_buyer_on_ecard: self.notify_buyer_on_ecard,
            template_ecard: self.template_ecard.trim().to_owned(),
            notify_buyer_on_ecard_expiry: self.notify_buyer_on_ecard_expiry,
            template_ecard_expiring: self.template_ecard_expiring.trim().to_owned(),
            notify_admin_on_low_stock: self.notify_admin_on_low_stock,
            template_low_stock: self.template_low_stock.trim().to_owned(),
        })
    }
}

/// Saves the settings, or, where 双人复核 holds credential changes and
/// these change what signs in to the provider, asks for approval with the
/// new settings (their secret sealed as the settings keep it).
pub(crate) async fn save(
    state: &AppState,
    authed: &Authed,
    request: SmsSettingsRequest,
) -> ApiResult<Gated<SmsSettings>> {
    authed.require(Permission::ApiKeysManage)?;
    let merchant_id = authed.merchant_id();
    let fields = request.clone().fields()?;
    let saved = state.store.get_sms_settings(merchant_id).await?;
    let has_saved_secret = saved.as_ref().is_some_and(|s| s.secret_sealed.is_some());
    check_settings(&fields, has_saved_secret).map_err(ApiError::invalid)?;
    let merchant = state.store.get_merchant(merchant_id).await?;
    let sealed = Sealed {
        secret_sealed: (!fields.access_key_secret.is_empty()).then(|| {
            seal_secret(
                &state.master,
                merchant_id,
                merchant.key_version,
                &fields.access_key_secret,
            )
        }),
        key_version: merchant.key_version,
    };
    if fields.changes_credentials(saved.as_ref()) {
        let payload = Payload::sealed(
            &SmsSettingsRequest {
                access_key_secret: String::new(),
                ..request
            },
            &sealed,
        )?;
        let change = CredentialChange::SmsSettings;
        if let Some(held) = credential_approvals::gate(state, authed, change, payload).await? {
            return Ok(Gated::Held(Box::new(held)));
        }
    }
    Ok(Gated::Done(
        save_now(state, authed, fields, sealed, "").await?,
    ))
}

/// Saves checked settings with their secret already sealed; `note` names
/// an approved request.
pub(crate) async fn save_now(
    state: &AppState,
    authed: &Authed,
    fields: SmsSettingsFields,
    sealed: Sealed,
    note: &str,
) -> ApiResult<SmsSettings> {
    let merchant_id = authed.merchant_id();
    let switches = format!(
        "A={} B={} C={} {note}",
        fields.notify_customer_on_submit,
        fields.notify_admin_on_submit,
        fields.notify_customer_on_ship
    );
    let settings = SmsSettings {
        merchant_id,
        fields: SmsSettingsFields {
            access_key_secret: String::new(),
            ..fields
        },
        key_version: sealed.key_version,
        secret_sealed: sealed.secret_sealed,
        updated_at: crate::now(),
    };
    state
        .store
        .save_sms_settings(
            &settings,
            &authed.audit(
                "save_sms_settings",
                settings.fields.provider.code().into(),
                switches.trim().to_owned(),
            ),
        )
        .await?;
    Ok(state
        .store
        .get_sms_settings(merchant_id)
        .await?
        .unwrap_or(settings))
}

/// Sends a sample text with the first template that is set, now; the
/// provider's answer. Nothing is logged but the audit record.
pub(crate) async fn test_send(
    state: &AppState,
    authed: &Authed,
    phone: &str,
) -> ApiResult<SmsOutcome> {
    authed.require(Permission::ApiKeysManage)?;
    let phone = kaquan_core::customer::check_mobile(phone).map_err(ApiError::invalid)?;
    let settings = state
        .store
        .get_sms_settings(authed.merchant_id())
        .await?
        .ok_or_else(|| ApiError::invalid("请先保存短信设置"))?;
    let secret = open_secret(&state.master, &settings)
        .ok_or_else(|| ApiError::invalid("请先填写 AccessKey Secret"))?;
    let f = &settings.fields;
    let (kind, template) = [
        (SmsKind::OrderSubmitted, &f.template_submit),
        (SmsKind::OrderSubmittedAdmin, &f.template_admin),
        (SmsKind::OrderShipped, &f.template_ship),
        (SmsKind::CardsSold, &f.template_sale),
        (SmsKind::MemberChanged, &f.template_member_change),
        (SmsKind::MemberInvited, &f.template_invite),
        (SmsKind::PointsExpiring, &f.template_points_expiring),
        (SmsKind::EcardDelivered, &f.template_ecard),
        (SmsKind::EcardExpiring, &f.template_ecard_expiring),
        (SmsKind::EcardLowStock, &f.template_low_stock),
    ]
    .into_iter()
    .find(|(_, t)| !t.is_empty())
    .ok_or_else(|| ApiError::invalid("请先填写至少一个模板 ID"))?;
    let params = json!({"order": "10001", "goods": "测试商品", "date": "2026-12-08", "consignee": "张三", "carrier": "顺丰速运", "number": "SF0000000000", "cards": "卡号A0000000001 密码123456", "number": "VIP00000001", "points_change": "+10", "points": "110", "balance_change": "-25.00", "balance": "75.00", "link": "https://example.com/m/1/member-cards/1"}).to_string();
    let text = Text {
        kind,
        phone: &phone,
        template,
        params: &params,
    };
    let outcome = send(
        &http_client(),
        &state.sms_endpoints,
        &settings,
        &secret,
        &text,
    )
    .await;
    state
        .store
        .append_audit(&authed.audit(
            "test_sms",
            mask_phone(&phone),
            format!("{} {}", outcome.provider_code, outcome.provider_message),
        ))
        .await?;
    Ok(outcome)
}

async fn get_sms_settings(
    State(state): State<AppState>,
    authed: Authed,
) -> ApiResult<Json<SmsSettingsDto>> {
    authed.require(Permission::ApiKeysManage)?;
    let settings = state.store.get_sms_settings(authed.merchant_id()).await?;
    Ok(Json(SmsSettingsDto::new(settings.as_ref())))
}

async fn update_sms_settings(
    State(state): State<AppState>,
    authed: Authed,
    Json(request): Json<SmsSettingsRequest>,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    Ok(match save(&state, &authed, request).await? {
        Gated::Done(saved) => Json(SmsSettingsDto::new(Some(&saved))).into_response(),
        Gated::Held(request) => held_answer(&request),
    })
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"phone": "13800001234"}))]
pub struct SmsTestRequest {
    #[schema(pattern = "^1[0-9]{10}$")]
    pub phone: String,
}

/// What the provider answered a test text.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"sent": true, "provider_code": "OK", "provider_message": "OK"}))]
pub struct SmsTestDto {
    pub sent: bool,
    pub provider_code: String,
    pub provider_message: String,
}

async fn create_sms_test(
    State(state): State<AppState>,
    authed: Authed,
    Json(request): Json<SmsTestRequest>,
) -> ApiResult<(StatusCode, Json<SmsTestDto>)> {
    let outcome = test_send(&state, &authed, &request.phone).await?;
    Ok((
        StatusCode::OK,
        Json(SmsTestDto {
            sent: outcome.sent,
            provider_code: outcome.provider_code,
            provider_message: outcome.provider_message,
        }),
    ))
}

/// One text in the log.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": 7, "kind": "order_shipped", "kind_label": "C 订单发货，通知顾客", "phone": "138****1234", "template": "SMS_465000003", "state": "sent", "state_label": "已发送", "attempts": 1, "next_attempt_at": null, "provider_code": "OK", "provider_message": "OK", "created_at": "2026-12-06 09:30:00", "sent_at": "2026-12-06 09:30:01"}))]
pub struct SmsMessageDto {
    pub id: i64,
    pub kind: &'static str,
    pub kind_label: &'static str,
    /// Masked unless the staff member may see personal data.
    pub phone: String,
    pub template: String,
    /// `pending`, `sent` or `failed`.
    pub state: &'static str,
    pub state_label: &'static str,
    pub attempts: i64,
    pub next_attempt_at: Option<String>,
    pub provider_code: String,
    pub provider_message: String,
    pub created_at: String,
    pub sent_at: Option<String>,
}

impl SmsMessageDto {
    fn new(m: &SmsMessage, show_phone: bool) -> Self {
        Self {
            id: m.id,
            kind: m.kind.code(),
            kind_label: m.kind.label(),
            phone: if show_phone {
                m.phone.clone()
            } else {
                mask_phone(&m.phone)
            },
            template: m.template.clone(),
            state: m.state.code(),
            state_label: m.state.label(),
            attempts: m.attempts,
            next_attempt_at: m
                .next_attempt_at
                .filter(|_| m.state == kaquan_core::sms::SmsState::Pending)
                .map(format_datetime),
            provider_code: m.provider_code.clone(),
            provider_message: m.provider_message.clone(),
            created_at: format_datetime(m.created_at),
            sent_at: m.sent_at.map(format_datetime),
        }
    }
}

pub(crate) async fn messages_page(
    state: &AppState,
    authed: &Authed,
    query: &PageQuery,
) -> ApiResult<ListDto<SmsMessageDto>> {
    authed.require(Permission::ApiKeysManage)?;
    let page = ListPage::new(query.page, query.page_size);
    let (items, total) = state.store.list_sms(authed.merchant_id(), page).await?;
    let show_phone = authed.can(Permission::PersonalDataView);
    Ok(ListDto::new(
        items
            .iter()
            .map(|m| SmsMessageDto::new(m, show_phone))
            .collect(),
        total,
        page,
    ))
}

async fn list_sms_messages(
    State(state): State<AppState>,
    authed: Authed,
    Query(query): Query<PageQuery>,
) -> ApiResult<Json<ListDto<SmsMessageDto>>> {
    Ok(Json(messages_page(&state, &authed, &query).await?))
}
