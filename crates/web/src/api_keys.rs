//! 开放接口密钥 in the console and the staff API: create (the secret shown
//! once), list and revoke the merchant's open-API keys.

use crate::auth::Authed;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Form, Json, Path, Query};
use crate::forms::{redirect_with, CsrfForm, MsgQuery};
use crate::pages::{render, Page, PageResult};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use kaquan_core::auth::Permission;
use kaquan_core::clock::format_datetime;
use kaquan_core::signing;
use serde::{Deserialize, Serialize};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/settings/api-keys", get(api_keys_page).post(api_key_form))
        .route("/settings/api-keys/{id}/revoke", post(revoke_form))
        .route("/api/v1/api-keys", get(list_api_keys).post(create_api_key))
        .route("/api/v1/api-keys/{id}/revoke", post(revoke_api_key))
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": 2, "key_id": "kq_7f3a9c2e51b04d68", "label": "商城", "active": true, "created_at": "2026-11-30 14:05:00", "revoked_at": null, "secret": "3f9d0c6e8b2a47f1a5c9e0d4b7f2a8c1e6d3b9f0a4c7e2d5b8f1a3c6e9d0b7f4"}))]
pub struct ApiKeyDto {
    pub id: i64,
    pub key_id: String,
    pub label: String,
    pub active: bool,
    pub created_at: String,
    pub revoked_at: Option<String>,
    /// Only in the answer to creating the key; never shown again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl ApiKeyDto {
    fn new(k: &kaquan_core::api_key::ApiKey, secret: Option<String>) -> Self {
        Self {
            id: k.id,
            key_id: k.key_id.clone(),
            label: k.label.clone(),
            active: k.active,
            created_at: format_datetime(k.created_at),
            revoked_at: k.revoked_at.map(format_datetime),
            secret,
        }
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"label": "商城"}))]
pub struct ApiKeyRequest {
    #[serde(default)]
    pub label: String,
}

async fn new_key(state: &AppState, authed: &Authed, label: &str) -> ApiResult<ApiKeyDto> {
    authed.require(Permission::ApiKeysManage)?;
    let label = label.trim();
    if label.chars().count() > 40 {
        return Err(ApiError::invalid("备注最多 40 个字"));
    }
    match signing::create_api_key(
        state.store.as_ref(),
        &state.master,
        authed.merchant_id(),
        label,
        &authed.audit("create_api_key", String::new(), String::new()),
    )
    .await
    {
        Ok((key, secret)) => Ok(ApiKeyDto::new(&key, Some(secret))),
        Err(kaquan_core::StoreError::Conflict(_)) => Err(ApiError::Conflict(
            "最多同时启用两个密钥：请先停用旧密钥".into(),
        )),
        Err(other) => Err(other.into()),
    }
}

async fn revoke_key(state: &AppState, authed: &Authed, id: i64) -> ApiResult<()> {
    authed.require(Permission::ApiKeysManage)?;
    let merchant_id = authed.merchant_id();
    let key = state
        .store
        .list_api_keys(merchant_id)
        .await?
        .into_iter()
        .find(|k| k.id == id)
        .ok_or(ApiError::NotFound)?;
    state
        .store
        .revoke_api_key(
            merchant_id,
            id,
            &authed.audit(
                "revoke_api_key",
                format!("api_key={}", key.key_id),
                String::new(),
            ),
        )
        .await?;
    state.api_keys.forget(&key.key_id);
    Ok(())
}

async fn list_api_keys(
    State(state): State<AppState>,
    authed: Authed,
) -> ApiResult<Json<Vec<ApiKeyDto>>> {
    authed.require(Permission::ApiKeysManage)?;
    let keys = state.store.list_api_keys(authed.merchant_id()).await?;
    Ok(Json(keys.iter().map(|k| ApiKeyDto::new(k, None)).collect()))
}

async fn create_api_key(
    State(state): State<AppState>,
    authed: Authed,
    Json(request): Json<ApiKeyRequest>,
) -> ApiResult<(StatusCode, Json<ApiKeyDto>)> {
    Ok((
        StatusCode::CREATED,
        Json(new_key(&state, &authed, &request.label).await?),
    ))
}

async fn revoke_api_key(
    State(state): State<AppState>,
    authed: Authed,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    revoke_key(&state, &authed, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn api_keys_view(
    state: &AppState,
    authed: &Authed,
    created: Option<ApiKeyDto>,
    message: Option<String>,
) -> ApiResult<Response> {
    let keys = state.store.list_api_keys(authed.merchant_id()).await?;
    Ok(render(
        state,
        "api_keys.html",
        &Page::settings("开放接口", authed).with_message(message),
        minijinja::context! {
            keys => keys.iter().map(|k| ApiKeyDto::new(k, None)).collect::<Vec<_>>(),
            created => created,
            merchant_id => authed.merchant_id(),
            public_url => state.public_url_for(authed.merchant_id()).await?,
        },
    ))
}

async fn api_keys_page(
    State(state): State<AppState>,
    authed: Authed,
    Query(query): Query<MsgQuery>,
) -> PageResult {
    authed.require(Permission::ApiKeysManage)?;
    Ok(api_keys_view(&state, &authed, None, query.msg).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ApiKeyForm {
    csrf: String,
    #[serde(default)]
    label: String,
}

async fn api_key_form(
    State(state): State<AppState>,
    authed: Authed,
    Form(form): Form<ApiKeyForm>,
) -> PageResult {
    authed.check_form_csrf(&form.csrf)?;
    let created = new_key(&state, &authed, &form.label).await?;
    let mut response = api_keys_view(
        &state,
        &authed,
        Some(created),
        Some("密钥已创建：密钥只显示这一次，请立即复制保存".into()),
    )
    .await?;
    // The page holds a secret: never cache it.
    response.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok(response.into_response())
}

async fn revoke_form(
    State(state): State<AppState>,
    authed: Authed,
    Path(id): Path<i64>,
    Form(form): Form<CsrfForm>,
) -> PageResult {
    authed.check_form_csrf(&form.csrf)?;
    revoke_key(&state, &authed, id).await?;
    Ok(redirect_with("/settings/api-keys", "密钥已停用"))
}
