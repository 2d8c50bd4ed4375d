//! 预付卡政策 (全局设置 → 预付卡政策, `GET/PUT /api/v1/prepaid-policy`):
//! the owner switches China's single-purpose prepaid card rules on for the
//! merchant; while on, card batches and 兑换码 templates that break them
//! are refused with the rule named (`kaquan_core::prepaid`).

use crate::auth::Authed;
use crate::error::ApiResult;
use crate::extract::{Form, Json};
use crate::forms::redirect_with;
use crate::pages::{render, Page, PageResult};
use crate::AppState;
use axum::extract::State;
use axum::routing::get;
use axum::Router;
use kaquan_core::auth::Permission;
use kaquan_core::prepaid::RULES_ZH;
use serde::{Deserialize, Serialize};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/settings/prepaid", get(policy_page).post(save_form))
        .route(
            "/api/v1/prepaid-policy",
            get(get_prepaid_policy).put(update_prepaid_policy),
        )
}

/// The policy in force and its rules.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"enabled": true, "rules": ["不记名卡、兑换码面值不超过 1000 元", "不记名卡、兑换码有效期不少于 3 年（或不设截止日期）", "记名卡（会员储值）余额不超过 5000 元"]}))]
pub struct PrepaidPolicyDto {
    pub enabled: bool,
    /// What it holds batches and templates to.
    pub rules: Vec<&'static str>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"enabled": true}))]
pub struct PrepaidPolicyRequest {
    pub enabled: bool,
}

async fn policy(state: &AppState, authed: &Authed) -> ApiResult<PrepaidPolicyDto> {
    authed.require(Permission::StaffManage)?;
    let merchant = state.store.get_merchant(authed.merchant_id()).await?;
    Ok(PrepaidPolicyDto {
        enabled: merchant.prepaid_policy,
        rules: RULES_ZH.to_vec(),
    })
}

async fn save(state: &AppState, authed: &Authed, enabled: bool) -> ApiResult<()> {
    authed.require(Permission::StaffManage)?;
    let audit = authed.audit(
        "set_prepaid_policy",
        String::new(),
        if enabled { "on" } else { "off" }.to_owned(),
    );
    state
        .store
        .set_prepaid_policy(authed.merchant_id(), enabled, &audit)
        .await?;
    Ok(())
}

async fn get_prepaid_policy(
    State(state): State<AppState>,
    authed: Authed,
) -> ApiResult<Json<PrepaidPolicyDto>> {
    Ok(Json(policy(&state, &authed).await?))
}

async fn update_prepaid_policy(
    State(state): State<AppState>,
    authed: Authed,
    Json(request): Json<PrepaidPolicyRequest>,
) -> ApiResult<Json<PrepaidPolicyDto>> {
    save(&state, &authed, request.enabled).await?;
    Ok(Json(policy(&state, &authed).await?))
}

async fn policy_page(State(state): State<AppState>, authed: Authed) -> PageResult {
    let view = policy(&state, &authed).await?;
    Ok(render(
        &state,
        "prepaid.html",
        &Page::settings("预付卡政策", &authed),
        view,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyForm {
    csrf: String,
    #[serde(default)]
    enabled: Option<String>,
}

async fn save_form(
    State(state): State<AppState>,
    authed: Authed,
    Form(form): Form<PolicyForm>,
) -> PageResult {
    authed.check_form_csrf(&form.csrf)?;
    let enabled = form.enabled.is_some();
    save(&state, &authed, enabled).await?;
    let message = if enabled {
        "预付卡政策已开启"
    } else {
        "预付卡政策已关闭"
    };
    Ok(redirect_with("/settings/prepaid", message))
}
