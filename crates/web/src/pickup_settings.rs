//! 提货设置: the pickup page's title, logo, texts, switch, 提货预约模式,
//! blocked dates, redirect URL and 兑换防刷 limits, in the staff API and the
//! console (where 物流配置, the merchant's own carriers, is shown beside them).

use crate::auth::Authed;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Form, Json, Multipart, Query};
use crate::forms::{redirect_with, MsgQuery};
use crate::orders::{add_carrier, int};
use crate::pages::{render, Page, PageResult};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use axum::Router;
use kaquan_core::auth::Permission;
use kaquan_core::pickup::{PickupSettings, PickupSettingsFields, CARRIERS};
use serde::{Deserialize, Serialize};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/pickup-settings",
            get(get_pickup_settings).put(update_pickup_settings),
        )
        .route("/settings/pickup", get(settings_page).post(settings_form))
        .route("/api/v1/pickup-settings/logo", post(update_pickup_logo))
        .route("/settings/pickup/logo", post(logo_form))
        .route("/settings/carriers", post(carrier_form))
}

/// 提货设置 on the wire.
#[derive(Serialize, Deserialize, Default, Clone, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "title": "年货提货中心", "notice": "请在 12 月 31 日前提货", "enabled": true,
    "closed_message": "春节期间暂停提货", "appointment_mode": "min_days",
    "appointment_min_days": 2, "appointment_from": null, "appointment_until": null,
    "blocked_dates": "2027-01-28,2027-01-29", "redirect_url": null,
    "attempts_per_card": 5, "attempts_per_client": 20,
    "public_url": "https://card.example.com"
}))]
pub struct PickupSettingsDto {
    /// 提货网站名称, 1–40 characters.
    #[schema(min_length = 1, max_length = 40)]
    pub title: String,
    /// 提示文字 on the pickup page, at most 500 characters.
    #[serde(default)]
    #[schema(max_length = 500)]
    pub notice: String,
    /// 提货开关: false closes the pickup page.
    pub enabled: bool,
    /// 暂停提货提示 shown while closed, at most 500 characters.
    #[serde(default)]
    #[schema(max_length = 500)]
    pub closed_message: String,
    /// 预约方式: `none`, `any`, `min_days` (at least N days ahead), `range`
    /// (between two dates) or `weekdays`.
    #[schema(pattern = "^(none|any|min_days|range|weekdays)$")]
    pub appointment_mode: String,
    /// For `min_days`: how many days ahead at least, 0–365.
    #[schema(minimum = 0, maximum = 365)]
    pub appointment_min_days: Option<i64>,
    /// For `range`: the first day, `YYYY-MM-DD`.
    #[schema(pattern = "^([0-9]{4}-[0-9]{2}-[0-9]{2})?$")]
    pub appointment_from: Option<String>,
    /// For `range`: the last day, `YYYY-MM-DD`.
    #[schema(pattern = "^([0-9]{4}-[0-9]{2}-[0-9]{2})?$")]
    pub appointment_until: Option<String>,
    /// 不可预约日期: comma-separated `YYYY-MM-DD`.
    #[serde(default)]
    pub blocked_dates: String,
    /// 提货后跳转: an `https://` (or `http://`) address, or null.
    pub redirect_url: Option<String>,
    /// 兑换防刷: wrong passwords allowed per card per hour, 1–1000.
    #[schema(minimum = 1, maximum = 1000)]
    pub attempts_per_card: i64,
    /// 兑换防刷: wrong passwords allowed per visitor per hour, 1–1000.
    #[schema(minimum = 1, maximum = 1000)]
    pub attempts_per_client: i64,
    /// 公网地址: `https://host[:port]` where this shop's customers reach it,
    /// printed in QR codes and links; null or absent: the server's
    /// `--public-url`.
    #[serde(default)]
    #[schema(max_length = 200)]
    pub public_url: Option<String>,
}

impl From<&PickupSettings> for PickupSettingsDto {
    fn from(s: &PickupSettings) -> Self {
        let f = s.to_fields();
        Self {
            title: f.title,
            notice: f.notice,
            enabled: f.enabled,
            closed_message: f.closed_message,
            appointment_mode: f.appointment_mode,
            appointment_min_days: f.appointment_min_days,
            appointment_from: f.appointment_from,
            appointment_until: f.appointment_until,
            blocked_dates: f.blocked_dates,
            redirect_url: f.redirect_url,
            attempts_per_card: f.attempts_per_card,
            attempts_per_client: f.attempts_per_client,
            public_url: f.public_url,
        }
    }
}

impl PickupSettingsDto {
    /// The rules are core's (`PickupSettings::from_fields`); this only moves the fields.
    fn into_settings(self) -> ApiResult<PickupSettings> {
        PickupSettings::from_fields(&PickupSettingsFields {
            title: self.title,
            notice: self.notice,
            enabled: self.enabled,
            closed_message: self.closed_message,
            appointment_mode: self.appointment_mode,
            appointment_min_days: self.appointment_min_days,
            appointment_from: self.appointment_from,
            appointment_until: self.appointment_until,
            blocked_dates: self.blocked_dates,
            redirect_url: self.redirect_url,
            attempts_per_card: self.attempts_per_card,
            attempts_per_client: self.attempts_per_client,
            public_url: self.public_url,
        })
        .map_err(|errors| ApiError::Invalid(errors.join("；"), errors))
    }
}

async fn get_pickup_settings(
    State(state): State<AppState>,
    authed: Authed,
) -> ApiResult<Json<PickupSettingsDto>> {
    authed.require(Permission::OrdersManage)?;
    Ok(Json(PickupSettingsDto::from(
        &state
            .store
            .get_pickup_settings(authed.merchant_id())
            .await?,
    )))
}

async fn save_settings(state: &AppState, authed: &Authed, dto: PickupSettingsDto) -> ApiResult<()> {
    authed.require(Permission::OrdersManage)?;
    let settings = dto.into_settings()?;
    let audit = authed.audit(
        "update_pickup_settings",
        String::new(),
        format!(
            "enabled={} mode={}",
            settings.enabled,
            settings.appointment.code()
        ),
    );
    state
        .store
        .put_pickup_settings(authed.merchant_id(), &settings, &audit)
        .await?;
    state.shop_urls.forget(&authed.merchant_id());
    state.pickup_settings.forget(&authed.merchant_id());
    Ok(())
}

async fn update_pickup_settings(
    State(state): State<AppState>,
    authed: Authed,
    Json(body): Json<PickupSettingsDto>,
) -> ApiResult<StatusCode> {
    save_settings(&state, &authed, body).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- console ----------------------------------------------------------------

#[derive(Serialize)]
struct SettingsView {
    s: PickupSettingsDto,
    merchant_id: i64,
    carriers: Vec<String>,
    own_carriers: Vec<String>,
    error: Option<String>,
    pickup_url: String,
    qr_problem: Option<&'static str>,
}

async fn settings_view(
    state: &AppState,
    authed: &Authed,
    s: PickupSettingsDto,
    error: Option<String>,
) -> ApiResult<SettingsView> {
    Ok(SettingsView {
        s,
        merchant_id: authed.merchant_id(),
        carriers: CARRIERS.iter().map(|c| (*c).to_owned()).collect(),
        own_carriers: state.store.list_carriers(authed.merchant_id()).await?,
        error,
        pickup_url: crate::home::pickup_url(state, authed.merchant_id()).await?,
        qr_problem: crate::exports::public_url_problem(
            &state.public_url_for(authed.merchant_id()).await?,
        ),
    })
}

async fn settings_page(
    State(state): State<AppState>,
    authed: Authed,
    Query(query): Query<MsgQuery>,
) -> PageResult {
    authed.require(Permission::OrdersManage)?;
    let dto = PickupSettingsDto::from(
        &state
            .store
            .get_pickup_settings(authed.merchant_id())
            .await?,
    );
    let view = settings_view(&state, &authed, dto, None).await?;
    Ok(render(
        &state,
        "pickup_settings.html",
        &Page::settings("提货设置", &authed).with_message(query.msg),
        view,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsForm {
    csrf: String,
    title: String,
    #[serde(default)]
    notice: String,
    enabled: Option<String>,
    #[serde(default)]
    closed_message: String,
    appointment_mode: String,
    #[serde(default)]
    appointment_min_days: String,
    #[serde(default)]
    appointment_from: String,
    #[serde(default)]
    appointment_until: String,
    #[serde(default)]
    blocked_dates: String,
    #[serde(default)]
    redirect_url: String,
    attempts_per_card: String,
    attempts_per_client: String,
    #[serde(default)]
    public_url: String,
}

async fn settings_form(
    State(state): State<AppState>,
    authed: Authed,
    Form(form): Form<SettingsForm>,
) -> PageResult {
    authed.check_form_csrf(&form.csrf)?;
    let number = |text: &str, label: &str| int(text, label);
    let dto = PickupSettingsDto {
        title: form.title,
        notice: form.notice,
        enabled: form.enabled.is_some(),
        closed_message: form.closed_message,
        appointment_mode: form.appointment_mode,
        appointment_min_days: number(&form.appointment_min_days, "提前天数")?,
        appointment_from: Some(form.appointment_from).filter(|s| !s.is_empty()),
        appointment_until: Some(form.appointment_until).filter(|s| !s.is_empty()),
        blocked_dates: form.blocked_dates,
        redirect_url: Some(form.redirect_url).filter(|s| !s.is_empty()),
        attempts_per_card: number(&form.attempts_per_card, "兑换防刷")?.unwrap_or(0),
        attempts_per_client: number(&form.attempts_per_client, "兑换防刷")?.unwrap_or(0),
        public_url: Some(form.public_url).filter(|s| !s.is_empty()),
    };
    let shown = dto.clone();
    match save_settings(&state, &authed, dto).await {
        Ok(()) => Ok(redirect_with("/settings/pickup", "已保存")),
        Err(error) => {
            let view = settings_view(&state, &authed, shown, Some(error.public_message())).await?;
            let mut response = render(
                &state,
                "pickup_settings.html",
                &Page::settings("提货设置", &authed),
                view,
            );
            *response.status_mut() = error.status();
            Ok(response)
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CarrierForm {
    csrf: String,
    name: String,
}

async fn carrier_form(
    State(state): State<AppState>,
    authed: Authed,
    Form(form): Form<CarrierForm>,
) -> PageResult {
    authed.check_form_csrf(&form.csrf)?;
    add_carrier(&state, &authed, &form.name).await?;
    Ok(Redirect::to(
        "/settings/pickup?msg=%E5%B7%B2%E6%B7%BB%E5%8A%A0%E7%89%A9%E6%B5%81%E5%85%AC%E5%8F%B8",
    )
    .into_response())
}

async fn save_logo(state: &AppState, authed: &Authed, bytes: &[u8]) -> ApiResult<()> {
    authed.require(Permission::OrdersManage)?;
    let content_type = crate::images::checked_image(bytes)?;
    state
        .store
        .put_logo(authed.merchant_id(), content_type, bytes, crate::now())
        .await?;
    state
        .store
        .append_audit(&authed.audit("update_pickup_logo", String::new(), content_type.to_owned()))
        .await?;
    Ok(())
}

/// The pickup page's logo (multipart field `file`; PNG/JPEG/WebP/GIF, at most 2 MB).
async fn update_pickup_logo(
    State(state): State<AppState>,
    authed: Authed,
    multipart: Multipart,
) -> ApiResult<StatusCode> {
    let (bytes, _) = crate::images::read_image_upload(multipart).await?;
    save_logo(&state, &authed, &bytes).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn logo_form(
    State(state): State<AppState>,
    authed: Authed,
    multipart: Multipart,
) -> PageResult {
    let (bytes, csrf) = crate::images::read_image_upload(multipart).await?;
    authed.check_form_csrf(&csrf)?;
    save_logo(&state, &authed, &bytes).await?;
    Ok(redirect_with("/settings/pickup", "Logo 已更新"))
}
