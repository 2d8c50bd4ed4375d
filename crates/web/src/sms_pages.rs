//! 通知设置's console page (全局设置 → 通知设置): the settings form with its
//! switches, a test send and the log; it calls the functions the API calls.

use crate::approvals::{held_message, Gated};
use crate::auth::Authed;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Form, Query};
use crate::forms::redirect_with;
use crate::lists::PageQuery;
use crate::pages::{render, Page, PageResult};
use crate::sms::{messages_page, save, test_send, SmsSettingsDto, SmsSettingsRequest};
use crate::AppState;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use kaquan_core::auth::Permission;
use kaquan_core::sms::{SmsKind, SmsProvider};
use serde::Deserialize;
use serde_json::{json, Value};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/settings/sms", get(sms_page).post(save_form))
        .route("/settings/sms/test", post(test_form))
}

async fn sms_view(
    state: &AppState,
    authed: &Authed,
    query: &PageQuery,
    message: Option<String>,
) -> ApiResult<Response> {
    let settings = state.store.get_sms_settings(authed.merchant_id()).await?;
    let messages = messages_page(state, authed, query).await?;
    let providers: Vec<Value> = SmsProvider::ALL
        .iter()
        .map(|p| json!({"code": p.code(), "label": p.label()}))
        .collect();
    let kinds: Vec<Value> = SmsKind::ALL
        .iter()
        .map(|k| json!({"label": k.label(), "variables": k.variables().iter().map(|v| format!("${{{v}}}")).collect::<Vec<_>>().join(" ")}))
        .collect();
    Ok(render(
        state,
        "sms.html",
        &Page::settings("通知设置", authed).with_message(message),
        minijinja::context! {
            settings => SmsSettingsDto::new(settings.as_ref()),
            messages => messages,
            providers => providers,
            kinds => kinds,
        },
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SmsPageQuery {
    msg: Option<String>,
    page: Option<i64>,
}

async fn sms_page(
    State(state): State<AppState>,
    authed: Authed,
    Query(query): Query<SmsPageQuery>,
) -> PageResult {
    authed.require(Permission::ApiKeysManage)?;
    let page = PageQuery {
        page: query.page,
        page_size: None,
    };
    Ok(sms_view(&state, &authed, &page, query.msg).await?)
}

/// The console's form: switches as checkboxes, admin phones one per line.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SmsForm {
    csrf: String,
    provider: String,
    #[serde(default)]
    access_key_id: String,
    #[serde(default)]
    access_key_secret: String,
    #[serde(default)]
    sdk_app_id: String,
    #[serde(default)]
    region: String,
    #[serde(default)]
    sign_name: String,
    #[serde(default)]
    notify_customer_on_submit: Option<String>,
    #[serde(default)]
    template_submit: String,
    #[serde(default)]
    notify_admin_on_submit: Option<String>,
    #[serde(default)]
    template_admin: String,
    #[serde(default)]
    admin_phones: String,
    #[serde(default)]
    notify_customer_on_ship: Option<String>,
    #[serde(default)]
    template_ship: String,
    #[serde(default)]
    notify_buyer_on_sale: Option<String>,
    #[serde(default)]
    template_sale: String,
    #[serde(default)]
    notify_member_on_change: Option<String>,
    #[serde(default)]
    template_member_change: String,
    #[serde(default)]
    notify_customer_on_invite: Option<String>,
    #[serde(default)]
    template_invite: String,
    #[serde(default)]
    notify_member_on_expiry: Option<String>,
    #[serde(default)]
    template_points_expiring: String,
    #[serde(default)]
    notify_buyer_on_ecard: Option<String>,
    #[serde(default)]
    template_ecard: String,
    #[serde(default)]
    notify_buyer_on_ecard_expiry: Option<String>,
    #[serde(default)]
    template_ecard_expiring: String,
    #[serde(default)]
    notify_admin_on_low_stock: Option<String>,
    #[serde(default)]
    template_low_stock: String,
}

async fn save_form(
    State(state): State<AppState>,
    authed: Authed,
    Form(form): Form<SmsForm>,
) -> PageResult {
    authed.check_form_csrf(&form.csrf)?;
    let request = SmsSettingsRequest {
        provider: form.provider,
        access_key_id: form.access_key_id,
        access_key_secret: form.access_key_secret,
        sdk_app_id: form.sdk_app_id,
        region: form.region,
        sign_name: form.sign_name,
        notify_customer_on_submit: form.notify_customer_on_submit.is_some(),
        template_submit: form.template_submit,
        notify_admin_on_submit: form.notify_admin_on_submit.is_some(),
        template_admin: form.template_admin,
        admin_phones: form
            .admin_phones
            .split(|c: char| c == ',' || c == '，' || c.is_whitespace())
            .map(str::to_owned)
            .collect(),
        notify_customer_on_ship: form.notify_customer_on_ship.is_some(),
        template_ship: form.template_ship,
        notify_buyer_on_sale: form.notify_buyer_on_sale.is_some(),
        template_sale: form.template_sale,
        notify_member_on_change: form.notify_member_on_change.is_some(),
        template_member_change: form.template_member_change,
        notify_customer_on_invite: form.notify_customer_on_invite.is_some(),
        template_invite: form.template_invite,
        notify_member_on_expiry: form.notify_member_on_expiry.is_some(),
        template_points_expiring: form.template_points_expiring,
        notify_buyer_on_ecard: form.notify_buyer_on_ecard.is_some(),
        template_ecard: form.template_ecard,
        notify_buyer_on_ecard_expiry: form.notify_buyer_on_ecard_expiry.is_some(),
        template_ecard_expiring: form.template_ecard_expiring,
        notify_admin_on_low_stock: form.notify_admin_on_low_stock.is_some(),
        template_low_stock: form.template_low_stock,
    };
    match save(&state, &authed, request).await {
        Ok(Gated::Done(_)) => Ok(redirect_with("/settings/sms", "通知设置已保存")),
        Ok(Gated::Held(held)) => Ok(redirect_with("/settings/sms", &held_message(&held))),
        Err(ApiError::Invalid(message, _)) => Ok(sms_view(
            &state,
            &authed,
            &PageQuery {
                page: None,
                page_size: None,
            },
            Some(message),
        )
        .await?),
        Err(other) => Err(other.into()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TestForm {
    csrf: String,
    phone: String,
}

async fn test_form(
    State(state): State<AppState>,
    authed: Authed,
    Form(form): Form<TestForm>,
) -> PageResult {
    authed.check_form_csrf(&form.csrf)?;
    let message = match test_send(&state, &authed, &form.phone).await {
        Ok(outcome) if outcome.sent => "测试短信已发送，请查收".to_owned(),
        Ok(outcome) => format!(
            "测试短信发送失败：{} {}",
            outcome.provider_code, outcome.provider_message
        ),
        Err(ApiError::Invalid(message, _)) => message,
        Err(other) => return Err(other.into()),
    };
    Ok(sms_view(
        &state,
        &authed,
        &PageQuery {
            page: None,
            page_size: None,
        },
        Some(message),
    )
    .await?
    .into_response())
}
