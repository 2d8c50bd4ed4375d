//! ERP 参数 (全局设置): the merchant's 旺店通 企业版 account, the push log,
//! and the pusher that runs beside the server on every node. Pushes are
//! planned by the store in the transaction of the order's event; the pusher
//! leases due ones, reads the order as it is then, and sends it to
//! `trade_push.php` signed as 旺店通's openapi2 says.

use crate::auth::Authed;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Form, Json, Query};
use crate::forms::redirect_with;
use crate::lists::{ListDto, PageQuery};
use crate::pages::{render, Page, PageResult};
use crate::AppState;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use kaquan_core::auth::Permission;
use kaquan_core::clock::format_datetime;
use kaquan_core::erp::{
    check_settings, open_secret, seal_secret, trade, wdt_sign, ErpPush, ErpSettings,
    ErpSettingsFields, PushState,
};
use kaquan_core::store::Page as ListPage;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::Duration;

/// 旺店通's `trade_push.php` (an operator may point it at the sandbox or a
/// proxy: `[erp] wdt_endpoint`).
pub const WDT_ENDPOINT: &str = "https://api.wangdian.cn/openapi2/trade_push.php";
/// Pushes in flight per node.
const CONCURRENT_PUSHES_MAX: i64 = 8;
/// A claimed push's lease: longer than any call.
const LEASE_SECONDS: i64 = 60;
/// How long the pusher rests when nothing is due.
const IDLE: Duration = Duration::from_millis(500);
/// The most of an answer read.
const ANSWER_BYTES_MAX: usize = 64 * 1024;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/settings/erp", get(erp_page).post(save_form))
        .route(
            "/api/v1/erp-settings",
            get(get_erp_settings).put(update_erp_settings),
        )
        .route("/api/v1/erp-pushes", get(list_erp_pushes))
}

// ---- pushing ---------------------------------------------------------------------

/// Pushes one order as a trade; `(pushed, code, message)` as 旺店通 answered.
async fn push(state: &AppState, client: &reqwest::Client, job: &ErpPush) -> (bool, String, String) {
    let failed = |code: &str, message: String| (false, code.to_owned(), message);
    let settings = match state.store.get_erp_settings(job.merchant_id).await {
        Ok(Some(settings)) if settings.fields.enabled => settings,
        Ok(_) => return failed("config", "ERP 推送已关闭".into()),
        Err(error) => return failed("internal", format!("读取 ERP 参数失败：{error}")),
    };
    let Some(secret) = open_secret(&state.master, &settings) else {
        return failed("config", "appsecret 无法解密，请重新填写".into());
    };
    let order = match state.store.get_order(job.merchant_id, job.order_id).await {
        Ok(order) => order,
        Err(error) => return failed("internal", format!("读取订单失败：{error}")),
    };
    let erp_code = match state.store.get_goods(job.merchant_id, order.goods_id).await {
        Ok(goods) if !goods.erp_code.is_empty() => goods.erp_code,
        Ok(goods) => return failed("config", format!("提货商品「{}」未填 ERP 编码", goods.name)),
        Err(error) => return failed("internal", format!("读取提货商品失败：{error}")),
    };
    let trade_list = Value::Array(vec![trade(&order, &erp_code)]).to_string();
    let timestamp = crate::now().to_string();
    let f = &settings.fields;
    let mut params = vec![
        ("sid", f.sid.as_str()),
        ("appkey", f.appkey.as_str()),
        ("timestamp", timestamp.as_str()),
        ("shop_no", f.shop_no.as_str()),
        ("switch", "0"),
        ("trade_list", trade_list.as_str()),
    ];
    let sign = wdt_sign(&params, &secret);
    params.push(("sign", &sign));
    let body = serde_urlencoded::to_string(&params).unwrap_or_default();
    let sent = client
        .post(&state.wdt_endpoint)
        .header(
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8",
        )
        .body(body)
        .send()
        .await;
    let mut response = match sent {
        Ok(response) => response,
        Err(error) if error.is_timeout() => return failed("timeout", "旺店通超时未回复".into()),
        Err(_) => return failed("unreachable", "无法连接旺店通".into()),
    };
    let status = response.status().as_u16();
    let mut kept = Vec::new();
    while kept.len() < ANSWER_BYTES_MAX {
        match response.chunk().await {
            Ok(Some(chunk)) => kept.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    let Ok(answer) = serde_json::from_slice::<Value>(&kept) else {
        return failed(&format!("HTTP {status}"), "旺店通的回复无法解析".into());
    };
    let code = match &answer["code"] {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        _ => String::new(),
    };
    let message = answer["message"].as_str().unwrap_or("").to_owned();
    (code == "0", code, message)
}

/// Starts the pusher; it stops when the returned handle is aborted.
pub fn spawn(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let client = crate::sms::http_client();
        loop {
            let claimed = match state
                .store
                .claim_erp_pushes(CONCURRENT_PUSHES_MAX, LEASE_SECONDS, crate::now())
                .await
            {
                Ok(claimed) => claimed,
                Err(error) => {
                    tracing::warn!(%error, "claiming ERP pushes failed; will retry");
                    Vec::new()
                }
            };
            if claimed.is_empty() {
                tokio::time::sleep(IDLE).await;
                continue;
            }
            let mut pushes = tokio::task::JoinSet::new();
            for job in claimed {
                let (state, client) = (state.clone(), client.clone());
                pushes.spawn(async move {
                    let (pushed, code, message) = push(&state, &client, &job).await;
                    let recorded = state
                        .store
                        .record_erp_push(job.id, job.attempts, pushed, &code, &message, crate::now())
                        .await;
                    if let Err(error) = recorded {
                        tracing::warn!(%error, erp_push.id = job.id, "recording an ERP push failed");
                    }
                });
            }
            while pushes.join_next().await.is_some() {}
        }
    })
}

// ---- settings: API and console ---------------------------------------------------

/// ERP 参数 as shown: the appsecret never, only whether one is saved.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"enabled": true, "sid": "kaquan", "appkey": "kaquan2-ot", "has_secret": true, "shop_no": "KQ01"}))]
pub struct ErpSettingsDto {
    /// 开关: push pickup orders to 旺店通.
    pub enabled: bool,
    /// 卖家账号.
    pub sid: String,
    pub appkey: String,
    pub has_secret: bool,
    /// 店铺编号.
    pub shop_no: String,
}

impl ErpSettingsDto {
    fn new(settings: Option<&ErpSettings>) -> Self {
        let default = ErpSettings::default();
        let s = settings.unwrap_or(&default);
        Self {
            enabled: s.fields.enabled,
            sid: s.fields.sid.clone(),
            appkey: s.fields.appkey.clone(),
            has_secret: s.secret_sealed.is_some(),
            shop_no: s.fields.shop_no.clone(),
        }
    }
}

/// ERP 参数 to save; leave `appsecret` out (or empty) to keep the saved one.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"enabled": true, "sid": "kaquan", "appkey": "kaquan2-ot", "appsecret": "example-secret", "shop_no": "KQ01"}))]
pub struct ErpSettingsRequest {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default)]
    #[schema(max_length = 64)]
    pub sid: String,
    #[serde(default)]
    #[schema(max_length = 64)]
    pub appkey: String,
    #[serde(default)]
    #[schema(max_length = 64)]
    pub appsecret: String,
    #[serde(default)]
    #[schema(max_length = 64)]
    pub shop_no: String,
}

async fn save(
    state: &AppState,
    authed: &Authed,
    request: ErpSettingsRequest,
) -> ApiResult<ErpSettings> {
    authed.require(Permission::ApiKeysManage)?;
    let merchant_id = authed.merchant_id();
    let fields = ErpSettingsFields {
        enabled: request.enabled,
        sid: request.sid.trim().to_owned(),
        appkey: request.appkey.trim().to_owned(),
        appsecret: request.appsecret.trim().to_owned(),
        shop_no: request.shop_no.trim().to_owned(),
    };
    let saved = state.store.get_erp_settings(merchant_id).await?;
    let has_saved_secret = saved.as_ref().is_some_and(|s| s.secret_sealed.is_some());
    check_settings(&fields, has_saved_secret).map_err(ApiError::invalid)?;
    let merchant = state.store.get_merchant(merchant_id).await?;
    let secret_sealed = (!fields.appsecret.is_empty()).then(|| {
        seal_secret(
            &state.master,
            merchant_id,
            merchant.key_version,
            &fields.appsecret,
        )
    });
    let settings = ErpSettings {
        merchant_id,
        fields: ErpSettingsFields {
            appsecret: String::new(),
            ..fields
        },
        secret_sealed,
        key_version: merchant.key_version,
        updated_at: crate::now(),
    };
    let detail = format!(
        "enabled={} shop_no={}",
        settings.fields.enabled, settings.fields.shop_no
    );
    state
        .store
        .save_erp_settings(
            &settings,
            &authed.audit("save_erp_settings", String::new(), detail),
        )
        .await?;
    Ok(state
        .store
        .get_erp_settings(merchant_id)
        .await?
        .unwrap_or(settings))
}

async fn get_erp_settings(
    State(state): State<AppState>,
    authed: Authed,
) -> ApiResult<Json<ErpSettingsDto>> {
    authed.require(Permission::ApiKeysManage)?;
    let settings = state.store.get_erp_settings(authed.merchant_id()).await?;
    Ok(Json(ErpSettingsDto::new(settings.as_ref())))
}

async fn update_erp_settings(
    State(state): State<AppState>,
    authed: Authed,
    Json(request): Json<ErpSettingsRequest>,
) -> ApiResult<Json<ErpSettingsDto>> {
    let saved = save(&state, &authed, request).await?;
    Ok(Json(ErpSettingsDto::new(Some(&saved))))
}

/// One push in the log.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": 3, "order_id": 88, "reason": "pickup_order.shipped", "reason_label": "提货订单发货", "state": "pushed", "state_label": "已推送", "attempts": 1, "next_attempt_at": null, "result_code": "0", "result_message": "", "created_at": "2026-12-06 09:30:00", "pushed_at": "2026-12-06 09:30:01"}))]
pub struct ErpPushDto {
    pub id: i64,
    pub order_id: i64,
    /// The order's event that caused it.
    pub reason: &'static str,
    pub reason_label: &'static str,
    /// `pending`, `pushed` or `failed`.
    pub state: &'static str,
    pub state_label: &'static str,
    pub attempts: i64,
    pub next_attempt_at: Option<String>,
    /// 旺店通's `code` (`0` is success) or a transport error, and its message.
    pub result_code: String,
    pub result_message: String,
    pub created_at: String,
    pub pushed_at: Option<String>,
}

impl From<&ErpPush> for ErpPushDto {
    fn from(p: &ErpPush) -> Self {
        Self {
            id: p.id,
            order_id: p.order_id,
            reason: p.reason.code(),
            reason_label: p.reason.label_zh(),
            state: p.state.code(),
            state_label: p.state.label(),
            attempts: p.attempts,
            next_attempt_at: p
                .next_attempt_at
                .filter(|_| p.state == PushState::Pending)
                .map(format_datetime),
            result_code: p.result_code.clone(),
            result_message: p.result_message.clone(),
            created_at: format_datetime(p.created_at),
            pushed_at: p.pushed_at.map(format_datetime),
        }
    }
}

async fn pushes_page(
    state: &AppState,
    authed: &Authed,
    query: &PageQuery,
) -> ApiResult<ListDto<ErpPushDto>> {
    authed.require(Permission::ApiKeysManage)?;
    let page = ListPage::new(query.page, query.page_size);
    let (items, total) = state
        .store
        .list_erp_pushes(authed.merchant_id(), page)
        .await?;
    Ok(ListDto::new(
        items.iter().map(ErpPushDto::from).collect(),
        total,
        page,
    ))
}

async fn list_erp_pushes(
    State(state): State<AppState>,
    authed: Authed,
    Query(query): Query<PageQuery>,
) -> ApiResult<Json<ListDto<ErpPushDto>>> {
    Ok(Json(pushes_page(&state, &authed, &query).await?))
}

async fn erp_view(
    state: &AppState,
    authed: &Authed,
    page: Option<i64>,
    message: Option<String>,
) -> ApiResult<Response> {
    let settings = state.store.get_erp_settings(authed.merchant_id()).await?;
    let query = PageQuery {
        page,
        page_size: None,
    };
    let pushes = pushes_page(state, authed, &query).await?;
    Ok(render(
        state,
        "erp.html",
        &Page::settings("ERP 参数", authed).with_message(message),
        minijinja::context! { settings => ErpSettingsDto::new(settings.as_ref()), pushes => pushes },
    ))
}

async fn erp_page(
    State(state): State<AppState>,
    authed: Authed,
    Query(query): Query<crate::forms::MsgQuery>,
) -> PageResult {
    authed.require(Permission::ApiKeysManage)?;
    Ok(erp_view(&state, &authed, query.page, query.msg).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ErpForm {
    csrf: String,
    #[serde(default)]
    enabled: Option<String>,
    #[serde(default)]
    sid: String,
    #[serde(default)]
    appkey: String,
    #[serde(default)]
    appsecret: String,
    #[serde(default)]
    shop_no: String,
}

async fn save_form(
    State(state): State<AppState>,
    authed: Authed,
    Form(form): Form<ErpForm>,
) -> PageResult {
    authed.check_form_csrf(&form.csrf)?;
    let request = ErpSettingsRequest {
        enabled: form.enabled.is_some(),
        sid: form.sid,
        appkey: form.appkey,
        appsecret: form.appsecret,
        shop_no: form.shop_no,
    };
    match save(&state, &authed, request).await {
        Ok(_) => Ok(redirect_with("/settings/erp", "ERP 参数已保存")),
        Err(ApiError::Invalid(message, _)) => {
            Ok(erp_view(&state, &authed, None, Some(message)).await?)
        }
        Err(other) => Err(other.into()),
    }
}
