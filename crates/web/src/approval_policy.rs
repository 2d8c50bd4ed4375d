//! 双人复核's thresholds: 全局设置 → 双人复核 and `/api/v1/approval-policy`,
//! which the gate in [`crate::approvals`] reads.

use crate::auth::Authed;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Form, Json};
use crate::forms::redirect_with;
use crate::pages::{render, Page, PageResult};
use crate::AppState;
use axum::extract::State;
use axum::routing::get;
use axum::Router;
use kaquan_core::approval::{ApprovalPolicy, DailyCap, EXPIRY_HOURS_MAX};
use kaquan_core::auth::Permission;
use kaquan_core::money::format_yuan;
use serde::{Deserialize, Serialize};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/settings/approvals",
            get(policy_page).post(save_policy_form),
        )
        .route(
            "/api/v1/approval-policy",
            get(get_approval_policy).put(update_approval_policy),
        )
}

/// A merchant's thresholds: `null` (or `false`) lets the action through
/// without a second person.
#[derive(Serialize, Deserialize, Debug, Clone, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"activate_count_over": 1000, "activate_value_over_fen": 5000000, "export_secrets": true, "delete_cards": true, "credentials": true, "adjust_over_fen": 50000, "daily_max_cards": 5000, "daily_max_value_fen": null, "expiry_hours": 24}))]
pub struct ApprovalPolicyDto {
    /// 激活 of more than this many cards at once waits for approval.
    #[schema(minimum = 0)]
    pub activate_count_over: Option<i64>,
    /// 激活 of more than this face value at once waits for approval.
    #[schema(minimum = 0)]
    pub activate_value_over_fen: Option<i64>,
    /// Every export with passwords waits for approval.
    #[serde(default)]
    pub export_secrets: bool,
    /// Every 删除 of cards waits for approval.
    #[serde(default)]
    pub delete_cards: bool,
    /// Every credential change waits for approval: a new webhook endpoint, a changed endpoint URL, a rotated signing secret, new SMS provider credentials.
    #[serde(default)]
    pub credentials: bool,
    /// A balance adjustment above this amount (either way) waits for approval.
    #[schema(minimum = 0)]
    pub adjust_over_fen: Option<i64>,
    /// What one staff member may activate per day on their own; beyond it an activation waits for approval.
    #[schema(minimum = 0)]
    pub daily_max_cards: Option<i64>,
    #[schema(minimum = 0)]
    pub daily_max_value_fen: Option<i64>,
    /// How long a request waits before it expires (1–168).
    #[schema(minimum = 1, maximum = 168)]
    pub expiry_hours: i64,
}

impl From<&ApprovalPolicy> for ApprovalPolicyDto {
    fn from(p: &ApprovalPolicy) -> Self {
        ApprovalPolicyDto {
            activate_count_over: p.activate_count_over,
            activate_value_over_fen: p.activate_value_over_fen,
            export_secrets: p.export_secrets,
            delete_cards: p.delete_cards,
            credentials: p.credentials,
            adjust_over_fen: p.adjust_over_fen,
            daily_max_cards: p.daily_cap.max_cards,
            daily_max_value_fen: p.daily_cap.max_value_fen,
            expiry_hours: p.expiry_hours,
        }
    }
}

impl ApprovalPolicyDto {
    fn into_policy(self) -> ApiResult<ApprovalPolicy> {
        let policy = ApprovalPolicy {
            activate_count_over: self.activate_count_over,
            activate_value_over_fen: self.activate_value_over_fen,
            export_secrets: self.export_secrets,
            delete_cards: self.delete_cards,
            credentials: self.credentials,
            adjust_over_fen: self.adjust_over_fen,
            daily_cap: DailyCap {
                max_cards: self.daily_max_cards,
                max_value_fen: self.daily_max_value_fen,
            },
            expiry_hours: self.expiry_hours,
        };
        policy.check().map_err(ApiError::invalid)?;
        Ok(policy)
    }
}

async fn save_policy(state: &AppState, authed: &Authed, policy: &ApprovalPolicy) -> ApiResult<()> {
    authed.require(Permission::StaffManage)?;
    let dto = ApprovalPolicyDto::from(policy);
    let detail = serde_json::to_string(&dto).map_err(|e| ApiError::Internal(e.to_string()))?;
    let audit = authed.audit("set_approval_policy", String::new(), detail);
    state
        .store
        .set_approval_policy(authed.merchant_id(), policy, &audit)
        .await?;
    Ok(())
}

async fn get_approval_policy(
    State(state): State<AppState>,
    authed: Authed,
) -> ApiResult<Json<ApprovalPolicyDto>> {
    authed.require(Permission::StaffManage)?;
    let policy = state.store.approval_policy(authed.merchant_id()).await?;
    Ok(Json(ApprovalPolicyDto::from(&policy)))
}

async fn update_approval_policy(
    State(state): State<AppState>,
    authed: Authed,
    Json(request): Json<ApprovalPolicyDto>,
) -> ApiResult<Json<ApprovalPolicyDto>> {
    authed.require(Permission::StaffManage)?;
    let policy = request.into_policy()?;
    save_policy(&state, &authed, &policy).await?;
    Ok(Json(ApprovalPolicyDto::from(&policy)))
}

#[derive(Serialize)]
struct PolicyView {
    policy: ApprovalPolicyDto,
    /// The amounts as the form shows them, in yuan.
    activate_value_over: String,
    adjust_over: String,
    daily_max_value: String,
    expiry_hours_max: i64,
}

async fn policy_page(State(state): State<AppState>, authed: Authed) -> PageResult {
    authed.require(Permission::StaffManage)?;
    let policy = state.store.approval_policy(authed.merchant_id()).await?;
    let yuan = |fen: Option<i64>| fen.map(format_yuan).unwrap_or_default();
    let view = PolicyView {
        activate_value_over: yuan(policy.activate_value_over_fen),
        adjust_over: yuan(policy.adjust_over_fen),
        daily_max_value: yuan(policy.daily_cap.max_value_fen),
        policy: ApprovalPolicyDto::from(&policy),
        expiry_hours_max: EXPIRY_HOURS_MAX,
    };
    Ok(render(
        &state,
        "approval_policy.html",
        &Page::settings("双人复核", &authed),
        view,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyForm {
    csrf: String,
    #[serde(default)]
    activate_count_over: String,
    #[serde(default)]
    activate_value_over: String,
    #[serde(default)]
    export_secrets: Option<String>,
    #[serde(default)]
    delete_cards: Option<String>,
    #[serde(default)]
    credentials: Option<String>,
    #[serde(default)]
    adjust_over: String,
    #[serde(default)]
    daily_max_cards: String,
    #[serde(default)]
    daily_max_value: String,
    #[serde(default)]
    expiry_hours: String,
}

/// An empty field is "no threshold"; anything else must read as what it says.
fn count_field(text: &str, label: &str) -> ApiResult<Option<i64>> {
    match text.trim() {
        "" => Ok(None),
        t => t
            .parse()
            .map(Some)
            .map_err(|_| ApiError::invalid(format!("{label}须为整数"))),
    }
}

fn amount_field(text: &str, label: &str) -> ApiResult<Option<i64>> {
    match text.trim() {
        "" => Ok(None),
        t => kaquan_core::money::parse_yuan(t)
            .map(Some)
            .ok_or_else(|| ApiError::invalid(format!("{label}须为金额（元，最多两位小数）"))),
    }
}

async fn save_policy_form(
    State(state): State<AppState>,
    authed: Authed,
    Form(form): Form<PolicyForm>,
) -> PageResult {
    authed.check_form_csrf(&form.csrf)?;
    let dto = ApprovalPolicyDto {
        activate_count_over: count_field(&form.activate_count_over, "一次激活张数")?,
        activate_value_over_fen: amount_field(&form.activate_value_over, "一次激活面值")?,
        export_secrets: form.export_secrets.is_some(),
        delete_cards: form.delete_cards.is_some(),
        credentials: form.credentials.is_some(),
        adjust_over_fen: amount_field(&form.adjust_over, "调整余额金额")?,
        daily_max_cards: count_field(&form.daily_max_cards, "每人每日激活张数")?,
        daily_max_value_fen: amount_field(&form.daily_max_value, "每人每日激活面值")?,
        expiry_hours: count_field(&form.expiry_hours, "审批有效期")?
            .unwrap_or(kaquan_core::approval::EXPIRY_HOURS_DEFAULT),
    };
    save_policy(&state, &authed, &dto.into_policy()?).await?;
    Ok(redirect_with("/settings/approvals", "双人复核设置已保存"))
}
