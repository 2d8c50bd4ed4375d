//! 开放接口 → 事件推送 in the console and the staff API: the merchant's
//! webhook endpoints (URL, event types, enabled; a `whsec_` secret shown
//! once and rotatable), the delivery log with every attempt, replays, and
//! the recorded events. Delivery itself is [`crate::outbox`]'s.

use crate::approvals::{held_answer, held_message, Gated};
use crate::auth::Authed;
use crate::credential_approvals::{self, Payload};
use crate::error::{ApiError, ApiResult};
use crate::extract::{check_chars, Json, Path, Query};
use crate::forms::{redirect_with, CsrfForm, FormPairs, MsgQuery};
use crate::pages::{render, Page, PageResult};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use kaquan_core::approval::CredentialChange;
use kaquan_core::auth::Permission;
use kaquan_core::clock::format_datetime;
use kaquan_core::event::{
    self as event, Attempt, Delivery, DeliveryFilter, DeliveryState, EndpointFields, Event,
    EventType, WebhookEndpoint,
};
use kaquan_core::store::Page as ListPage;
use serde::{Deserialize, Serialize};

/// Endpoints a merchant may have.
pub const ENDPOINTS_MAX: usize = 10;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/settings/webhooks", get(webhooks_page).post(create_form))
        .route("/settings/webhooks/{endpoint_id}", post(update_form))
        .route(
            "/settings/webhooks/{endpoint_id}/rotate-secret",
            post(rotate_form),
        )
        .route("/settings/webhooks/{endpoint_id}/delete", post(delete_form))
        .route(
            "/settings/webhooks/deliveries/{delivery_id}",
            get(delivery_page),
        )
        .route(
            "/settings/webhooks/deliveries/{delivery_id}/replay",
            post(replay_form),
        )
        .route(
            "/api/v1/webhook-endpoints",
            get(list_webhook_endpoints).post(create_webhook_endpoint),
        )
        .route(
            "/api/v1/webhook-endpoints/{endpoint_id}",
            axum::routing::put(update_webhook_endpoint).delete(delete_webhook_endpoint),
        )
        .route(
            "/api/v1/webhook-endpoints/{endpoint_id}/rotate-secret",
            post(rotate_webhook_endpoint_secret),
        )
        .route("/api/v1/webhook-deliveries", get(list_webhook_deliveries))
        .route(
            "/api/v1/webhook-deliveries/{delivery_id}",
            get(get_webhook_delivery),
        )
        .route(
            "/api/v1/webhook-deliveries/{delivery_id}/replay",
            post(replay_webhook_delivery),
        )
        .route("/api/v1/events", get(list_events))
}

// ---- wire types ------------------------------------------------------------------

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": 3, "url": "https://erp.example.com/kaquan/webhooks", "description": "ERP", "event_types": ["pickup_order.created", "pickup_order.shipped"], "enabled": true, "disabled_reason": "", "failing_since": null, "previous_secret_until": null, "created_at": "2026-11-30 14:05:00", "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}))]
pub struct WebhookEndpointDto {
    pub id: i64,
    pub url: String,
    pub description: String,
    /// Empty: every event type.
    pub event_types: Vec<&'static str>,
    pub enabled: bool,
    /// Why kaquan disabled it (410 Gone, failing for days); empty otherwise.
    pub disabled_reason: String,
    /// The first failed attempt since the last success.
    pub failing_since: Option<String>,
    /// Until when the previous secret still signs (after a rotation).
    pub previous_secret_until: Option<String>,
    pub created_at: String,
    /// `whsec_…`: only in the answer that made it; never shown again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl WebhookEndpointDto {
    fn new(e: &WebhookEndpoint, secret: Option<String>) -> Self {
        Self {
            id: e.id,
            url: e.url.clone(),
            description: e.description.clone(),
            event_types: e.event_types.iter().map(|t| t.code()).collect(),
            enabled: e.enabled,
            disabled_reason: e.disabled_reason.clone(),
            failing_since: e.failing_since.map(format_datetime),
            previous_secret_until: e.previous_secret_until.map(format_datetime),
            created_at: format_datetime(e.created_at),
            secret,
        }
    }
}

#[derive(Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"url": "https://erp.example.com/kaquan/webhooks", "description": "ERP", "event_types": ["pickup_order.created", "pickup_order.shipped"], "enabled": true}))]
pub struct WebhookEndpointRequest {
    /// `http://` or `https://`; never a loopback or private address unless
    /// the operator allows it (`[webhooks] allow_private_addresses`).
    #[schema(min_length = 1, max_length = 2000)]
    pub url: String,
    #[serde(default)]
    #[schema(max_length = 64)]
    pub description: String,
    /// The event types to send; empty or absent: every type.
    #[serde(default)]
    #[schema(schema_with = event_type_codes)]
    pub event_types: Vec<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

/// The schema of a list of event type codes: each one of [`EventType::ALL`].
fn event_type_codes() -> utoipa::openapi::Array {
    use utoipa::openapi::{ArrayBuilder, ObjectBuilder, Type};
    ArrayBuilder::new()
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(EventType::ALL.map(EventType::code))),
        )
        .build()
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": 41, "event_id": 120, "event_type": "pickup_order.shipped", "endpoint_id": 3, "endpoint_url": "https://erp.example.com/kaquan/webhooks", "state": "pending", "state_label": "待推送", "attempts": 2, "next_attempt_at": "2026-11-30 14:10:05", "last_status": 503, "last_error": "HTTP 503", "delivered_at": null, "created_at": "2026-11-30 14:05:00", "webhook_id": "evt_120"}))]
pub struct WebhookDeliveryDto {
    pub id: i64,
    pub event_id: i64,
    pub event_type: &'static str,
    pub endpoint_id: i64,
    pub endpoint_url: String,
    /// `pending`, `delivered` or `failed` (given up).
    pub state: &'static str,
    pub state_label: &'static str,
    pub attempts: i64,
    pub next_attempt_at: Option<String>,
    pub last_status: Option<u16>,
    pub last_error: String,
    pub delivered_at: Option<String>,
    pub created_at: String,
    /// The `webhook-id` header: the same on every attempt and replay.
    pub webhook_id: String,
}

impl From<&Delivery> for WebhookDeliveryDto {
    fn from(d: &Delivery) -> Self {
        Self {
            id: d.id,
            event_id: d.event_id,
            event_type: d.event_type.code(),
            endpoint_id: d.endpoint_id,
            endpoint_url: d.endpoint_url.clone(),
            state: d.state.code(),
            state_label: d.state.label_zh(),
            attempts: d.attempts,
            next_attempt_at: d
                .next_attempt_at
                .filter(|_| d.state == DeliveryState::Pending)
                .map(format_datetime),
            last_status: d.last_status,
            last_error: d.last_error.clone(),
            delivered_at: d.delivered_at.map(format_datetime),
            created_at: format_datetime(d.created_at),
            webhook_id: format!("evt_{}", d.event_id),
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"attempt_no": 1, "status": 503, "error": "HTTP 503", "duration_ms": 120, "created_at": "2026-11-30 14:05:01"}))]
pub struct WebhookAttemptDto {
    pub attempt_no: i64,
    /// The endpoint's answer; null when it could not be reached.
    pub status: Option<u16>,
    pub error: String,
    pub duration_ms: i64,
    pub created_at: String,
}

impl From<&Attempt> for WebhookAttemptDto {
    fn from(a: &Attempt) -> Self {
        Self {
            attempt_no: a.attempt_no,
            status: a.status,
            error: a.error.clone(),
            duration_ms: a.duration_ms,
            created_at: format_datetime(a.created_at),
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"delivery": {"id": 41, "event_id": 120, "event_type": "pickup_order.shipped", "endpoint_id": 3, "endpoint_url": "https://erp.example.com/kaquan/webhooks", "state": "delivered", "state_label": "已送达", "attempts": 1, "next_attempt_at": null, "last_status": 200, "last_error": "", "delivered_at": "2026-11-30 14:05:01", "created_at": "2026-11-30 14:05:00", "webhook_id": "evt_120"}, "attempts": [{"attempt_no": 1, "status": 200, "error": "", "duration_ms": 35, "created_at": "2026-11-30 14:05:01"}], "body": "{\"data\":{\"order_id\":88},\"timestamp\":\"2026-11-30T06:05:00Z\",\"type\":\"pickup_order.shipped\"}"}))]
pub struct WebhookDeliveryDetailDto {
    pub delivery: WebhookDeliveryDto,
    /// Newest first.
    pub attempts: Vec<WebhookAttemptDto>,
    /// The body every attempt sends.
    pub body: String,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": 120, "event_type": "pickup_order.shipped", "event_label": "提货订单发货", "data": {"order_id": 88, "status": "shipped"}, "created_at": "2026-11-30 14:05:00", "webhook_id": "evt_120"}))]
pub struct EventDto {
    pub id: i64,
    pub event_type: &'static str,
    pub event_label: &'static str,
    /// The event's data, as webhooks carry it.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    pub created_at: String,
    pub webhook_id: String,
}

impl From<&Event> for EventDto {
    fn from(e: &Event) -> Self {
        Self {
            id: e.id,
            event_type: e.event_type.code(),
            event_label: e.event_type.label_zh(),
            data: serde_json::from_str(&e.data).unwrap_or(serde_json::Value::Null),
            created_at: format_datetime(e.created_at),
            webhook_id: e.webhook_id(),
        }
    }
}

/// The delivery log's filter.
#[derive(Deserialize, Default, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeliveryQuery {
    #[param(example = 3)]
    pub endpoint_id: Option<i64>,
    /// `pending`, `delivered` or `failed`.
    #[param(pattern = "^(|pending|delivered|failed)$", example = "failed")]
    pub state: Option<String>,
    /// An event type, such as `pickup_order.shipped`.
    #[param(max_length = 64, example = "pickup_order.shipped")]
    pub event_type: Option<String>,
    /// 1-based; 1 when absent.
    #[param(minimum = 1, example = 1)]
    pub page: Option<i64>,
    /// 50 when absent, at most 200.
    #[param(minimum = 1, maximum = 200, example = 50)]
    pub page_size: Option<i64>,
    /// A notice the console's own redirects carry; programs leave it out.
    #[param(max_length = 200)]
    pub msg: Option<String>,
}

impl DeliveryQuery {
    fn filter(&self) -> ApiResult<DeliveryFilter> {
        fn text(t: &Option<String>) -> Option<&str> {
            t.as_deref().map(str::trim).filter(|t| !t.is_empty())
        }
        Ok(DeliveryFilter {
            endpoint_id: self.endpoint_id,
            state: text(&self.state)
                .map(|s| DeliveryState::parse(s).ok_or_else(|| ApiError::invalid("未知的推送状态")))
                .transpose()?,
            event_type: text(&self.event_type)
                .map(|t| EventType::parse(t).ok_or_else(|| ApiError::invalid("未知的事件类型")))
                .transpose()?,
        })
    }
}

// ---- the rules both the API and the console follow -------------------------------

pub(crate) fn fields(
    state: &AppState,
    request: &WebhookEndpointRequest,
) -> ApiResult<EndpointFields> {
    check_chars("url", &request.url, 2_000)?;
    check_chars(
        "description",
        &request.description,
        kaquan_core::text::NAME_CHARS_MAX,
    )?;
    let url = state
        .webhook_policy
        .check_url(&request.url)
        .map_err(ApiError::invalid)?;
    let mut event_types = Vec::new();
    for code in &request.event_types {
        let t = EventType::parse(code.trim())
            .ok_or_else(|| ApiError::invalid(format!("未知的事件类型：{code}")))?;
        if !event_types.contains(&t) {
            event_types.push(t);
        }
    }
    Ok(EndpointFields {
        url: url.to_string(),
        description: request.description.trim().to_owned(),
        event_types,
        enabled: request.enabled,
    })
}

/// A new endpoint, or the request for one where 双人复核 holds credential
/// changes (its secret is then shown to the person who asked, once, after
/// approval: [`crate::credential_approvals`]).
async fn add_endpoint(
    state: &AppState,
    authed: &Authed,
    request: WebhookEndpointRequest,
) -> ApiResult<Gated<WebhookEndpointDto>> {
    authed.require(Permission::ApiKeysManage)?;
    let fields = new_endpoint_fields(state, authed, &request).await?;
    let change = CredentialChange::CreateEndpoint;
    if let Some(held) =
        credential_approvals::gate(state, authed, change, Payload::json(&request)?).await?
    {
        return Ok(Gated::Held(Box::new(held)));
    }
    Ok(Gated::Done(create_now(state, authed, fields, "").await?))
}

/// A new endpoint's fields, checked, while the merchant has room for one.
pub(crate) async fn new_endpoint_fields(
    state: &AppState,
    authed: &Authed,
    request: &WebhookEndpointRequest,
) -> ApiResult<EndpointFields> {
    let fields = fields(state, request)?;
    if state
        .store
        .list_endpoints(authed.merchant_id())
        .await?
        .len()
        >= ENDPOINTS_MAX
    {
        return Err(ApiError::invalid(format!(
            "最多添加 {ENDPOINTS_MAX} 个推送地址"
        )));
    }
    Ok(fields)
}

/// Makes the endpoint and its secret; `note` names an approved request.
pub(crate) async fn create_now(
    state: &AppState,
    authed: &Authed,
    fields: EndpointFields,
    note: &str,
) -> ApiResult<WebhookEndpointDto> {
    let detail = format!("{} {note}", fields.url).trim().to_owned();
    let audit = authed.audit("create_webhook_endpoint", String::new(), detail);
    let (endpoint, secret) = event::create_endpoint(
        state.store.as_ref(),
        &state.master,
        authed.merchant_id(),
        fields,
        &audit,
    )
    .await?;
    Ok(WebhookEndpointDto::new(&endpoint, Some(secret.to_text())))
}

/// Saves an endpoint; a new URL is a credential change 双人复核 may hold.
async fn change_endpoint(
    state: &AppState,
    authed: &Authed,
    endpoint_id: i64,
    request: WebhookEndpointRequest,
) -> ApiResult<Gated<()>> {
    authed.require(Permission::ApiKeysManage)?;
    let fields = fields(state, &request)?;
    let saved = state
        .store
        .get_endpoint(authed.merchant_id(), endpoint_id)
        .await?;
    if saved.url != fields.url {
        let change = CredentialChange::UpdateEndpoint(endpoint_id);
        let held =
            credential_approvals::gate(state, authed, change, Payload::json(&request)?).await?;
        if let Some(held) = held {
            return Ok(Gated::Held(Box::new(held)));
        }
    }
    update_now(state, authed, endpoint_id, &fields, "").await?;
    Ok(Gated::Done(()))
}

pub(crate) async fn update_now(
    state: &AppState,
    authed: &Authed,
    endpoint_id: i64,
    fields: &EndpointFields,
    note: &str,
) -> ApiResult<()> {
    let audit = authed.audit(
        "update_webhook_endpoint",
        format!("webhook_endpoint={endpoint_id}"),
        format!("{} enabled={} {note}", fields.url, fields.enabled)
            .trim()
            .to_owned(),
    );
    Ok(state
        .store
        .update_endpoint(authed.merchant_id(), endpoint_id, fields, &audit)
        .await?)
}

/// A new signing secret, or the request for one (see [`add_endpoint`]).
async fn rotate(
    state: &AppState,
    authed: &Authed,
    endpoint_id: i64,
) -> ApiResult<Gated<WebhookEndpointDto>> {
    authed.require(Permission::ApiKeysManage)?;
    state
        .store
        .get_endpoint(authed.merchant_id(), endpoint_id)
        .await?;
    let change = CredentialChange::RotateEndpointSecret(endpoint_id);
    if let Some(held) =
        credential_approvals::gate(state, authed, change, Payload::default()).await?
    {
        return Ok(Gated::Held(Box::new(held)));
    }
    Ok(Gated::Done(
        rotate_now(state, authed, endpoint_id, "").await?,
    ))
}

pub(crate) async fn rotate_now(
    state: &AppState,
    authed: &Authed,
    endpoint_id: i64,
    note: &str,
) -> ApiResult<WebhookEndpointDto> {
    let merchant_id = authed.merchant_id();
    let audit = authed.audit(
        "rotate_webhook_secret",
        format!("webhook_endpoint={endpoint_id}"),
        note.to_owned(),
    );
    let secret = event::rotate_endpoint_secret(
        state.store.as_ref(),
        &state.master,
        merchant_id,
        endpoint_id,
        &audit,
    )
    .await?;
    let endpoint = state.store.get_endpoint(merchant_id, endpoint_id).await?;
    Ok(WebhookEndpointDto::new(&endpoint, Some(secret.to_text())))
}

async fn remove(state: &AppState, authed: &Authed, endpoint_id: i64) -> ApiResult<()> {
    authed.require(Permission::ApiKeysManage)?;
    let audit = authed.audit(
        "delete_webhook_endpoint",
        format!("webhook_endpoint={endpoint_id}"),
        String::new(),
    );
    Ok(state
        .store
        .delete_endpoint(authed.merchant_id(), endpoint_id, &audit)
        .await?)
}

async fn replay(state: &AppState, authed: &Authed, delivery_id: i64) -> ApiResult<()> {
    authed.require(Permission::ApiKeysManage)?;
    let audit = authed.audit(
        "replay_webhook_delivery",
        format!("webhook_delivery={delivery_id}"),
        String::new(),
    );
    Ok(state
        .store
        .replay_delivery(authed.merchant_id(), delivery_id, &audit, crate::now())
        .await?)
}

async fn deliveries(
    state: &AppState,
    authed: &Authed,
    query: &DeliveryQuery,
) -> ApiResult<crate::lists::ListDto<WebhookDeliveryDto>> {
    authed.require(Permission::ApiKeysManage)?;
    let page = ListPage::new(query.page, query.page_size);
    let (items, total) = state
        .store
        .list_deliveries(authed.merchant_id(), &query.filter()?, page)
        .await?;
    Ok(crate::lists::ListDto::new(
        items.iter().map(WebhookDeliveryDto::from).collect(),
        total,
        page,
    ))
}

async fn delivery_detail(
    state: &AppState,
    authed: &Authed,
    delivery_id: i64,
) -> ApiResult<WebhookDeliveryDetailDto> {
    authed.require(Permission::ApiKeysManage)?;
    let merchant_id = authed.merchant_id();
    let (delivery, attempts) = state.store.get_delivery(merchant_id, delivery_id).await?;
    let event = state
        .store
        .get_event(merchant_id, delivery.event_id)
        .await?;
    Ok(WebhookDeliveryDetailDto {
        delivery: WebhookDeliveryDto::from(&delivery),
        attempts: attempts.iter().map(WebhookAttemptDto::from).collect(),
        body: event.body(),
    })
}

// ---- API -------------------------------------------------------------------------

async fn list_webhook_endpoints(
    State(state): State<AppState>,
    authed: Authed,
) -> ApiResult<Json<Vec<WebhookEndpointDto>>> {
    authed.require(Permission::ApiKeysManage)?;
    let endpoints = state.store.list_endpoints(authed.merchant_id()).await?;
    Ok(Json(
        endpoints
            .iter()
            .map(|e| WebhookEndpointDto::new(e, None))
            .collect(),
    ))
}

async fn create_webhook_endpoint(
    State(state): State<AppState>,
    authed: Authed,
    Json(request): Json<WebhookEndpointRequest>,
) -> ApiResult<Response> {
    Ok(match add_endpoint(&state, &authed, request).await? {
        Gated::Done(created) => (StatusCode::CREATED, Json(created)).into_response(),
        Gated::Held(request) => held_answer(&request),
    })
}

async fn update_webhook_endpoint(
    State(state): State<AppState>,
    authed: Authed,
    Path(endpoint_id): Path<i64>,
    Json(request): Json<WebhookEndpointRequest>,
) -> ApiResult<Response> {
    Ok(
        match change_endpoint(&state, &authed, endpoint_id, request).await? {
            Gated::Done(()) => StatusCode::NO_CONTENT.into_response(),
            Gated::Held(request) => held_answer(&request),
        },
    )
}

async fn delete_webhook_endpoint(
    State(state): State<AppState>,
    authed: Authed,
    Path(endpoint_id): Path<i64>,
) -> ApiResult<StatusCode> {
    remove(&state, &authed, endpoint_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn rotate_webhook_endpoint_secret(
    State(state): State<AppState>,
    authed: Authed,
    Path(endpoint_id): Path<i64>,
) -> ApiResult<Response> {
    Ok(match rotate(&state, &authed, endpoint_id).await? {
        Gated::Done(rotated) => Json(rotated).into_response(),
        Gated::Held(request) => held_answer(&request),
    })
}

async fn list_webhook_deliveries(
    State(state): State<AppState>,
    authed: Authed,
    Query(query): Query<DeliveryQuery>,
) -> ApiResult<Json<crate::lists::ListDto<WebhookDeliveryDto>>> {
    Ok(Json(deliveries(&state, &authed, &query).await?))
}

async fn get_webhook_delivery(
    State(state): State<AppState>,
    authed: Authed,
    Path(delivery_id): Path<i64>,
) -> ApiResult<Json<WebhookDeliveryDetailDto>> {
    Ok(Json(delivery_detail(&state, &authed, delivery_id).await?))
}

async fn replay_webhook_delivery(
    State(state): State<AppState>,
    authed: Authed,
    Path(delivery_id): Path<i64>,
) -> ApiResult<StatusCode> {
    replay(&state, &authed, delivery_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_events(
    State(state): State<AppState>,
    authed: Authed,
    Query(query): Query<crate::lists::PageQuery>,
) -> ApiResult<Json<crate::lists::ListDto<EventDto>>> {
    authed.require(Permission::ApiKeysManage)?;
    let page = ListPage::new(query.page, query.page_size);
    let (items, total) = state.store.list_events(authed.merchant_id(), page).await?;
    Ok(Json(crate::lists::ListDto::new(
        items.iter().map(EventDto::from).collect(),
        total,
        page,
    )))
}

// ---- console ---------------------------------------------------------------------

fn held_redirect(request: &kaquan_core::approval::ApprovalRequest) -> Response {
    redirect_with("/settings/webhooks", &held_message(request))
}

pub(crate) async fn webhooks_view(
    state: &AppState,
    authed: &Authed,
    query: &DeliveryQuery,
    created: Option<WebhookEndpointDto>,
    message: Option<String>,
) -> ApiResult<Response> {
    authed.require(Permission::ApiKeysManage)?;
    let endpoints = state.store.list_endpoints(authed.merchant_id()).await?;
    let deliveries = deliveries(state, authed, query).await?;
    let types: Vec<_> = EventType::ALL
        .iter()
        .map(|t| minijinja::context! { code => t.code(), label => t.label_zh() })
        .collect();
    let mut response = render(
        state,
        "webhooks.html",
        &Page::settings("事件推送", authed).with_message(message),
        minijinja::context! {
            endpoints => endpoints.iter().map(|e| WebhookEndpointDto::new(e, None)).collect::<Vec<_>>(),
            created => created,
            deliveries => deliveries,
            types => types,
            states => DeliveryState::ALL.iter().map(|s| minijinja::context! { code => s.code(), label => s.label_zh() }).collect::<Vec<_>>(),
            filter => minijinja::context! {
                endpoint_id => query.endpoint_id,
                state => query.state.clone().unwrap_or_default(),
                event_type => query.event_type.clone().unwrap_or_default(),
            },
            allow_private => state.webhook_policy.allow_private_addresses,
        },
    );
    // The page may hold a secret: never cache it.
    response.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}

async fn webhooks_page(
    State(state): State<AppState>,
    authed: Authed,
    Query(query): Query<DeliveryQuery>,
) -> PageResult {
    let message = query.msg.clone();
    Ok(webhooks_view(&state, &authed, &query, None, message).await?)
}

/// The endpoint form: url, description, enabled and the event-type checkboxes.
fn endpoint_form(body: &str, authed: &Authed) -> ApiResult<WebhookEndpointRequest> {
    let form = FormPairs::parse(
        body,
        &["csrf", "url", "description", "event_type", "enabled"],
    )?;
    authed.check_form_csrf(&form.value("csrf"))?;
    Ok(WebhookEndpointRequest {
        url: form.value("url"),
        description: form.value("description"),
        event_types: form.all("event_type"),
        enabled: form.value("enabled") == "true",
    })
}

async fn create_form(
    State(state): State<AppState>,
    authed: Authed,
    crate::extract::FormText(body): crate::extract::FormText,
) -> PageResult {
    let request = endpoint_form(&body, &authed)?;
    let created = match add_endpoint(&state, &authed, request).await? {
        Gated::Done(created) => created,
        Gated::Held(request) => return Ok(held_redirect(&request)),
    };
    Ok(webhooks_view(
        &state,
        &authed,
        &DeliveryQuery::default(),
        Some(created),
        Some("推送地址已添加：签名密钥只显示这一次，请立即复制保存".into()),
    )
    .await?)
}

async fn update_form(
    State(state): State<AppState>,
    authed: Authed,
    Path(endpoint_id): Path<i64>,
    crate::extract::FormText(body): crate::extract::FormText,
) -> PageResult {
    let request = endpoint_form(&body, &authed)?;
    Ok(
        match change_endpoint(&state, &authed, endpoint_id, request).await? {
            Gated::Done(()) => redirect_with("/settings/webhooks", "推送地址已保存"),
            Gated::Held(request) => held_redirect(&request),
        },
    )
}

async fn rotate_form(
    State(state): State<AppState>,
    authed: Authed,
    Path(endpoint_id): Path<i64>,
    crate::extract::Form(form): crate::extract::Form<CsrfForm>,
) -> PageResult {
    authed.check_form_csrf(&form.csrf)?;
    let rotated = match rotate(&state, &authed, endpoint_id).await? {
        Gated::Done(rotated) => rotated,
        Gated::Held(request) => return Ok(held_redirect(&request)),
    };
    Ok(webhooks_view(
        &state,
        &authed,
        &DeliveryQuery::default(),
        Some(rotated),
        Some("已更换签名密钥：新密钥只显示这一次；旧密钥 24 小时内仍一并签名".into()),
    )
    .await?)
}

async fn delete_form(
    State(state): State<AppState>,
    authed: Authed,
    Path(endpoint_id): Path<i64>,
    crate::extract::Form(form): crate::extract::Form<CsrfForm>,
) -> PageResult {
    authed.check_form_csrf(&form.csrf)?;
    remove(&state, &authed, endpoint_id).await?;
    Ok(redirect_with("/settings/webhooks", "推送地址已删除"))
}

async fn replay_form(
    State(state): State<AppState>,
    authed: Authed,
    Path(delivery_id): Path<i64>,
    crate::extract::Form(form): crate::extract::Form<CsrfForm>,
) -> PageResult {
    authed.check_form_csrf(&form.csrf)?;
    replay(&state, &authed, delivery_id).await?;
    Ok(redirect_with(
        &format!("/settings/webhooks/deliveries/{delivery_id}"),
        "已重新排队推送",
    ))
}

async fn delivery_page(
    State(state): State<AppState>,
    authed: Authed,
    Path(delivery_id): Path<i64>,
    Query(query): Query<MsgQuery>,
) -> PageResult {
    let detail = delivery_detail(&state, &authed, delivery_id).await?;
    Ok(render(
        &state,
        "webhook_delivery.html",
        &Page::new("推送记录", &authed).with_message(query.msg),
        detail,
    ))
}
