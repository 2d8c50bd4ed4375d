//! 双人复核 of credential changes ([`CredentialChange`]): the gate a new
//! webhook endpoint, a changed endpoint URL, a rotated signing secret and
//! new SMS provider credentials pass through; the run once a second person
//! approves; and the new signing secret, which only the person who asked
//! collects, once (`POST /api/v1/approvals/{id}/collect`, or 领取签名密钥 in
//! 待审批), so the checker never sees it.

use crate::approvals::{find, hold, not_approved};
use crate::auth::Authed;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Form, Json, Path};
use crate::forms::CsrfForm;
use crate::pages::PageResult;
use crate::sms::SmsSettingsRequest;
use crate::webhooks::{WebhookEndpointDto, WebhookEndpointRequest};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use kaquan_core::approval::{
    ApprovalKind, ApprovalRequest, ApprovalState, CredentialChange, Reach,
};
use kaquan_core::auth::Permission;
use serde::Serialize;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/approvals/{id}/collect", post(collect_form))
        .route(
            "/api/v1/approvals/{approval_id}/collect",
            post(collect_approval_request),
        )
}

/// A secret sealed under the merchant's key version, as settings keep it.
pub struct Sealed {
    pub secret_sealed: Option<Vec<u8>>,
    pub key_version: i32,
}

/// What a held credential change will save: its settings as JSON, their
/// secret only sealed.
#[derive(Default)]
pub struct Payload {
    pub json: String,
    pub sealed: Option<Sealed>,
}

impl Payload {
    pub fn json(settings: &impl Serialize) -> ApiResult<Self> {
        Ok(Payload {
            json: serde_json::to_string(settings).map_err(|e| ApiError::Internal(e.to_string()))?,
            sealed: None,
        })
    }

    pub fn sealed(settings: &impl Serialize, sealed: &Sealed) -> ApiResult<Self> {
        Ok(Payload {
            sealed: Some(Sealed {
                secret_sealed: sealed.secret_sealed.clone(),
                key_version: sealed.key_version,
            }),
            ..Payload::json(settings)?
        })
    }
}

/// A credential change under the policy: `None` lets it run now.
pub async fn gate(
    state: &AppState,
    authed: &Authed,
    change: CredentialChange,
    payload: Payload,
) -> ApiResult<Option<ApprovalRequest>> {
    let policy = state.store.approval_policy(authed.merchant_id()).await?;
    let kind = ApprovalKind::ChangeCredentials;
    let Some(reason) = policy.reason(kind, Reach::default()) else {
        return Ok(None);
    };
    let what = (change.target(), change.verb().to_owned());
    let held = hold(
        state,
        authed,
        kind,
        what,
        Reach::default(),
        (reason, policy.expiry_hours),
        payload,
    )
    .await?;
    Ok(Some(held))
}

fn settings<T: serde::de::DeserializeOwned>(r: &ApprovalRequest) -> ApiResult<T> {
    serde_json::from_str(&r.request.payload)
        .map_err(|e| ApiError::Internal(format!("approval {}: payload: {e}", r.id)))
}

/// What the checker reads: the change and the settings it saves.
pub fn describe(r: &ApprovalRequest) -> Option<String> {
    let change = r.request.credential_change()?;
    let to = match change {
        CredentialChange::CreateEndpoint | CredentialChange::UpdateEndpoint(_) => {
            settings::<WebhookEndpointRequest>(r).ok()?.url
        }
        CredentialChange::SmsSettings => {
            let request: SmsSettingsRequest = settings(r).ok()?;
            let (provider, key) = (request.provider, request.access_key_id);
            match r.request.secret_sealed {
                Some(_) => format!("{provider} {key}，新的 AccessKey Secret"),
                None => format!("{provider} {key}"),
            }
        }
        CredentialChange::RotateEndpointSecret(_) => return Some(change.label_zh()),
    };
    Some(format!("{}：{to}", change.label_zh()))
}

/// Runs an approved change that hands back no secret, in the checker's
/// name; `note` names the request.
pub async fn run(
    state: &AppState,
    authed: &Authed,
    r: &ApprovalRequest,
    note: &str,
) -> ApiResult<i64> {
    match r.request.credential_change().ok_or(ApiError::NotFound)? {
        CredentialChange::UpdateEndpoint(id) => {
            let fields = crate::webhooks::fields(state, &settings(r)?)?;
            crate::webhooks::update_now(state, authed, id, &fields, note).await?;
        }
        CredentialChange::SmsSettings => {
            let fields = settings::<SmsSettingsRequest>(r)?.fields()?;
            let sealed = Sealed {
                secret_sealed: r.request.secret_sealed.clone(),
                key_version: r.request.key_version,
            };
            crate::sms::save_now(state, authed, fields, sealed, note).await?;
        }
        CredentialChange::CreateEndpoint | CredentialChange::RotateEndpointSecret(_) => {
            return Err(ApiError::Internal("collected by the requester".into()));
        }
    }
    Ok(1)
}

/// The approved new endpoint or signing secret, once, for the person who
/// asked; the request is marked done before the secret is made, so a
/// second call finds it collected.
async fn collect(state: &AppState, authed: &Authed, id: i64) -> ApiResult<WebhookEndpointDto> {
    authed.require(Permission::ApiKeysManage)?;
    let r = find(state, authed, id).await?;
    let change = r
        .request
        .credential_change()
        .filter(|c| c.makes_secret() && r.request.requested_by == authed.staff.id)
        .ok_or(ApiError::NotFound)?;
    if r.state != ApprovalState::Approved {
        return Err(not_approved(&r, "不能领取"));
    }
    let note = format!(
        "approval={} approved_by={}",
        r.id,
        r.decided_by_name.clone().unwrap_or_default()
    );
    // Everything that could refuse is checked before the request is spent.
    match change {
        CredentialChange::CreateEndpoint => {
            let request: WebhookEndpointRequest = settings(&r)?;
            let fields = crate::webhooks::new_endpoint_fields(state, authed, &request).await?;
            spend(state, authed, id).await?;
            crate::webhooks::create_now(state, authed, fields, &note).await
        }
        CredentialChange::RotateEndpointSecret(endpoint_id) => {
            let merchant_id = authed.merchant_id();
            state.store.get_endpoint(merchant_id, endpoint_id).await?;
            spend(state, authed, id).await?;
            crate::webhooks::rotate_now(state, authed, endpoint_id, &note).await
        }
        _ => Err(ApiError::NotFound),
    }
}

/// Marks an approved request done, once: a second collect is refused.
async fn spend(state: &AppState, authed: &Authed, id: i64) -> ApiResult<()> {
    let spent = state
        .store
        .finish_approval(authed.merchant_id(), id, Ok(1))
        .await?;
    if !spent {
        return Err(ApiError::malformed(
            StatusCode::CONFLICT,
            "approval_not_approved",
            "该请求已领取过".to_owned(),
        ));
    }
    Ok(())
}

async fn collect_approval_request(
    State(state): State<AppState>,
    authed: Authed,
    Path(id): Path<i64>,
) -> ApiResult<Json<WebhookEndpointDto>> {
    Ok(Json(collect(&state, &authed, id).await?))
}

async fn collect_form(
    State(state): State<AppState>,
    authed: Authed,
    Path(id): Path<i64>,
    Form(form): Form<CsrfForm>,
) -> PageResult {
    authed.check_form_csrf(&form.csrf)?;
    let collected = collect(&state, &authed, id).await?;
    Ok(crate::webhooks::webhooks_view(
        &state,
        &authed,
        &crate::webhooks::DeliveryQuery::default(),
        Some(collected),
        Some(format!(
            "已领取请求 {id}：签名密钥只显示这一次，请立即复制保存"
        )),
    )
    .await?)
}
