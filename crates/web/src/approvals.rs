//! 双人复核 (maker-checker): the gate the card operations, password
//! exports and balance adjustments pass through, and 待审批 (`/approvals`,
//! `/api/v1/approvals`) where a second person approves or rejects. The
//! thresholds are [`crate::approval_policy`]'s.
//!
//! Approval runs the request as it was made: the same filter on the cards
//! as they are then (the count is taken again and shown), the same
//! customer and amount. An approved password export is written for the
//! person who asked, once, from 待审批.

use crate::auth::Authed;
use crate::credential_approvals::{self, Payload};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Form, Json, Path, Query};
use crate::forms::redirect_with;
use crate::pages::{render, Page, PageResult};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use kaquan_core::approval::{
    ActivationTally, ApprovalKind, ApprovalRequest, ApprovalState, DailyCap, Decider, Decision,
    DecisionRefusal, NewApproval, Reach,
};
use kaquan_core::auth::Permission;
use kaquan_core::card::{CardFilter, CardOp};
use kaquan_core::clock::{format_datetime, start_of_today};
use kaquan_core::money::format_yuan;
use kaquan_core::{Conflict, StoreError};
use serde::{Deserialize, Serialize};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/approvals", get(queue_page))
        .route("/approvals/{id}/decide", post(decide_form))
        .route("/approvals/{id}/file", get(download_export))
        .route("/api/v1/approvals", get(list_approval_requests))
        .route("/api/v1/approvals/{approval_id}", get(get_approval_request))
        .route(
            "/api/v1/approvals/{approval_id}/approve",
            post(approve_approval_request),
        )
        .route(
            "/api/v1/approvals/{approval_id}/reject",
            post(reject_approval_request),
        )
        .route("/api/v1/approvals/{approval_id}/file", get(download_export))
}

// ---- the gate ------------------------------------------------------------------

/// What became of an action that passed through the gate.
pub enum Gated<T> {
    Done(T),
    /// Waiting in 待审批.
    Held(Box<ApprovalRequest>),
}

/// The console's message for a held request.
pub fn held_message(request: &ApprovalRequest) -> String {
    format!(
        "已提交审批（编号 {}）：{}。请另一位有审批权限的管理员在「待审批」中批准后执行",
        request.id, request.request.reason
    )
}

/// Records a request waiting for a second person.
pub(crate) async fn hold(
    state: &AppState,
    authed: &Authed,
    kind: ApprovalKind,
    (target, detail): (String, String),
    reach: Reach,
    (reason, expiry_hours): (String, i64),
    payload: Payload,
) -> ApiResult<ApprovalRequest> {
    let now = crate::now();
    // A second click (or a retried call) finds the request the first made;
    // a new secret cannot be compared with a sealed one, so each request
    // carrying one stands on its own and the secret approved is the one given.
    let new_secret = payload
        .sealed
        .as_ref()
        .is_some_and(|s| s.secret_sealed.is_some());
    if !new_secret {
        let page = kaquan_core::store::Page::new(Some(1), Some(kaquan_core::store::PAGE_SIZE_MAX));
        let (pending, _) = state
            .store
            .list_approvals(
                authed.merchant_id(),
                Some(ApprovalState::Pending),
                now,
                page,
            )
            .await?;
        let same = |r: &&ApprovalRequest| {
            r.request.requested_by == authed.staff.id
                && r.request.kind == kind
                && r.request.target == target
                && r.request.detail == detail
                && r.request.reach == reach
                && r.request.payload == payload.json
        };
        if let Some(existing) = pending.iter().find(same) {
            return Ok(existing.clone());
        }
    }
    let request = NewApproval {
        merchant_id: authed.merchant_id(),
        kind,
        target,
        detail,
        payload: payload.json,
        secret_sealed: payload
            .sealed
            .as_ref()
            .and_then(|s| s.secret_sealed.clone()),
        key_version: payload.sealed.as_ref().map_or(0, |s| s.key_version),
        reach,
        reason,
        requested_by: authed.staff.id,
        requested_by_name: authed.staff.username.clone(),
        requested_at: now,
        expires_at: now + expiry_hours * 3600,
    };
    let audit = authed.audit(
        "request_approval",
        request.target.clone(),
        format!("kind={} {}", kind.code(), request.detail)
            .trim()
            .to_owned(),
    );
    tracing::info!(
        merchant.id = authed.merchant_id(),
        kind = kind.code(),
        "approval requested"
    );
    Ok(state.store.create_approval(&request, &audit).await?)
}

/// The filter a request can carry: what `describe` writes must read back
/// as the same filter, or approval could run something else.
fn recordable(filter: &CardFilter) -> ApiResult<CardFilter> {
    let mut filter = filter.clone();
    filter.number_contains = filter.number_needle();
    if CardFilter::from_description(&filter.describe()).as_ref() != Some(&filter) {
        return Err(ApiError::invalid(
            "卡号条件含空格等字符，无法提交审批，请换一个条件",
        ));
    }
    Ok(filter)
}

/// 激活 or 删除 under the policy: held when over a threshold (or, for
/// 激活, beyond the staff member's day), else run now.
pub async fn card_op(
    state: &AppState,
    authed: &Authed,
    filter: &CardFilter,
    op: CardOp,
) -> ApiResult<Gated<i64>> {
    let kind = match op {
        CardOp::Activate => ApprovalKind::ActivateCards,
        CardOp::Delete => ApprovalKind::DeleteCards,
        _ => return Err(ApiError::Internal(format!("{} is not gated", op.code()))),
    };
    let merchant_id = authed.merchant_id();
    let policy = state.store.approval_policy(merchant_id).await?;
    // Counting the cards costs a scan of the filter: before running, only
    // when a threshold reads it; a held request always records it.
    let measured = match policy.reads_reach(kind) {
        true => Some(state.store.card_op_reach(merchant_id, filter, op).await?),
        false => None,
    };
    let held = |reason: String| async move {
        let filter = recordable(filter)?;
        let reach = match measured {
            Some(reach) => reach,
            None => state.store.card_op_reach(merchant_id, &filter, op).await?,
        };
        let request = hold(
            state,
            authed,
            kind,
            (filter.describe(), String::new()),
            reach,
            (reason, policy.expiry_hours),
            Payload::default(),
        )
        .await?;
        Ok::<_, ApiError>(Gated::Held(Box::new(request)))
    };
    if let Some(reason) = policy.reason(kind, measured.unwrap_or_default()) {
        return held(reason).await;
    }
    let audit = authed.audit(
        &format!("{}_cards", op.code()),
        filter.describe(),
        String::new(),
    );
    if op == CardOp::Delete {
        let n = state
            .store
            .apply_card_op(merchant_id, filter, op, &audit)
            .await?;
        return Ok(Gated::Done(n));
    }
    let tally = ActivationTally {
        staff_id: authed.staff.id,
        day: start_of_today(audit.created_at),
        cap: Some(policy.daily_cap),
    };
    match state
        .store
        .activate_cards_counted(merchant_id, filter, &audit, &tally)
        .await
    {
        Ok(n) => Ok(Gated::Done(n)),
        Err(StoreError::Conflict(Conflict::DailyCapReached)) => {
            held(daily_cap_reason(&policy.daily_cap)).await
        }
        Err(e) => Err(e.into()),
    }
}

fn daily_cap_reason(cap: &DailyCap) -> String {
    let mut limits = Vec::new();
    if let Some(n) = cap.max_cards {
        limits.push(format!("{n} 张"));
    }
    if let Some(fen) = cap.max_value_fen {
        limits.push(format!("面值 {} 元", format_yuan(fen)));
    }
    format!("超过每人每日激活上限（{}）", limits.join("、"))
}

/// A password export under the policy: `None` lets it run now.
pub async fn secrets_export(
    state: &AppState,
    authed: &Authed,
    filter: &CardFilter,
    (format, print_shop_id): (&str, Option<i64>),
) -> ApiResult<Option<ApprovalRequest>> {
    let merchant_id = authed.merchant_id();
    let policy = state.store.approval_policy(merchant_id).await?;
    let Some(reason) = policy.reason(ApprovalKind::ExportSecrets, Reach::default()) else {
        return Ok(None);
    };
    let filter = recordable(filter)?;
    let n_cards = state.store.count_cards(merchant_id, &filter).await?;
    let reach = Reach {
        n_cards,
        value_fen: 0,
    };
    let detail = match print_shop_id {
        Some(id) => format!("format={format} print_shop={id}"),
        None => format!("format={format}"),
    };
    let target = (filter.describe(), detail);
    let request = hold(
        state,
        authed,
        ApprovalKind::ExportSecrets,
        target,
        reach,
        (reason, policy.expiry_hours),
        Payload::default(),
    )
    .await?;
    Ok(Some(request))
}

/// A balance adjustment under the policy: `None` lets it run now.
pub async fn adjustment(
    state: &AppState,
    authed: &Authed,
    customer_id: i64,
    delta_fen: i64,
    reason_text: &str,
) -> ApiResult<Option<ApprovalRequest>> {
    let policy = state.store.approval_policy(authed.merchant_id()).await?;
    let reach = Reach {
        n_cards: 0,
        value_fen: delta_fen,
    };
    let Some(reason) = policy.reason(ApprovalKind::AdjustBalance, reach) else {
        return Ok(None);
    };
    state
        .store
        .get_customer(authed.merchant_id(), customer_id)
        .await?;
    let target = (format!("customer={customer_id}"), reason_text.to_owned());
    let request = hold(
        state,
        authed,
        ApprovalKind::AdjustBalance,
        target,
        reach,
        (reason, policy.expiry_hours),
        Payload::default(),
    )
    .await?;
    Ok(Some(request))
}

/// The answer of an API call the gate held: 202 with the request.
pub fn held_answer(request: &ApprovalRequest) -> Response {
    (
        StatusCode::ACCEPTED,
        Json(ApprovalDto::new(request, None, crate::now())),
    )
        .into_response()
}

// ---- 待审批 --------------------------------------------------------------------

/// A request in 待审批.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": 7, "kind": "activate_cards", "kind_label": "激活卡", "state": "pending", "state_label": "待审批", "target": "batch=12", "target_text": "批次 12", "detail": "", "n_cards": 5000, "value_fen": 50000000, "value_yuan": "500000.00", "n_cards_now": 4990, "value_fen_now": 49900000, "reason": "一次激活超过 1000 张", "requested_by": "clerk", "requested_at": "2026-12-07T10:00:00+08:00", "expires_at": "2026-12-08T10:00:00+08:00", "decided_by": null, "decided_at": null, "n_done": null, "outcome": ""}))]
pub struct ApprovalDto {
    pub id: i64,
    /// `activate_cards`, `delete_cards`, `export_secrets`, `adjust_balance` or `change_credentials`.
    pub kind: &'static str,
    pub kind_label: &'static str,
    /// `pending`, `approved` (running), `rejected`, `done`, `failed` or `expired`.
    pub state: &'static str,
    pub state_label: &'static str,
    /// What it runs on: the card filter as the audit log writes it, `customer=ID`, `webhook_endpoint=ID` (`new` for a new one) or `sms_settings`.
    pub target: String,
    pub target_text: String,
    /// The export's format, the adjustment's reason, or the credential change: `create`, `update`, `rotate_secret` or `save`.
    pub detail: String,
    /// Cards it reached when asked.
    pub n_cards: i64,
    /// Face value it reached when asked, or the adjustment's signed amount.
    pub value_fen: i64,
    /// `value_fen` in yuan, as people read it.
    pub value_yuan: String,
    /// The same filter counted now, for a pending card request.
    pub n_cards_now: Option<i64>,
    pub value_fen_now: Option<i64>,
    /// Why it needs a second person.
    pub reason: String,
    pub requested_by: String,
    pub requested_at: String,
    pub expires_at: String,
    pub decided_by: Option<String>,
    pub decided_at: Option<String>,
    /// What the run changed: cards, or 1 for an adjustment.
    pub n_done: Option<i64>,
    /// Why the run failed.
    pub outcome: String,
}

impl ApprovalDto {
    fn new(r: &ApprovalRequest, now_reach: Option<Reach>, now: i64) -> Self {
        let shown = r.shown_state(now);
        let target_text = match (r.request.customer_id(), credential_approvals::describe(r)) {
            (Some(id), _) => format!("顾客 {id}"),
            (None, Some(change)) => change,
            (None, None) => kaquan_core::audit::words_zh(&r.request.target),
        };
        ApprovalDto {
            id: r.id,
            kind: r.request.kind.code(),
            kind_label: r.request.kind.label_zh(),
            state: shown.code(),
            state_label: shown.label_zh(),
            target: r.request.target.clone(),
            target_text,
            detail: r.request.detail.clone(),
            n_cards: r.request.reach.n_cards,
            value_fen: r.request.reach.value_fen,
            value_yuan: format_yuan(r.request.reach.value_fen),
            n_cards_now: now_reach.map(|n| n.n_cards),
            value_fen_now: now_reach.map(|n| n.value_fen),
            reason: r.request.reason.clone(),
            requested_by: r.request.requested_by_name.clone(),
            requested_at: format_datetime(r.request.requested_at),
            expires_at: format_datetime(r.request.expires_at),
            decided_by: r.decided_by_name.clone(),
            decided_at: r.decided_at.map(format_datetime),
            n_done: r.n_done,
            outcome: r.outcome.clone(),
        }
    }
}

/// Who may open 待审批: a checker, or anyone whose actions the gate holds.
fn require_queue(authed: &Authed) -> ApiResult<()> {
    let may = [
        Permission::ApprovalsDecide,
        Permission::CardsManage,
        Permission::CardsExportSecrets,
        Permission::BalancesAdjust,
        Permission::ApiKeysManage,
    ]
    .into_iter()
    .any(|p| authed.can(p));
    if may {
        Ok(())
    } else {
        authed.require(Permission::ApprovalsDecide)
    }
}

/// What a decision on `kind` needs besides the approve permission.
fn permission_of(kind: ApprovalKind) -> Permission {
    match kind {
        ApprovalKind::ActivateCards | ApprovalKind::DeleteCards => Permission::CardsManage,
        ApprovalKind::ExportSecrets => Permission::CardsExportSecrets,
        ApprovalKind::AdjustBalance => Permission::BalancesAdjust,
        ApprovalKind::ChangeCredentials => Permission::ApiKeysManage,
    }
}

/// A pending card request's filter counted again.
async fn reach_now(state: &AppState, r: &ApprovalRequest, now: i64) -> ApiResult<Option<Reach>> {
    if r.shown_state(now) != ApprovalState::Pending {
        return Ok(None);
    }
    let Some(filter) = r.request.filter() else {
        return Ok(None);
    };
    let m = r.request.merchant_id;
    Ok(Some(match r.request.kind.card_op() {
        Some(op) => state.store.card_op_reach(m, &filter, op).await?,
        None => Reach {
            n_cards: state.store.count_cards(m, &filter).await?,
            value_fen: 0,
        },
    }))
}

async fn dto(state: &AppState, r: &ApprovalRequest) -> ApiResult<ApprovalDto> {
    let now = crate::now();
    Ok(ApprovalDto::new(r, reach_now(state, r, now).await?, now))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ApprovalQuery {
    /// `pending`, `approved`, `rejected`, `done`, `failed` or `expired`; empty for all.
    #[serde(default)]
    pub state: String,
    pub page: Option<i64>,
    pub page_size: Option<i64>,
}

async fn load(
    state: &AppState,
    authed: &Authed,
    query: &ApprovalQuery,
) -> ApiResult<crate::lists::ListDto<ApprovalDto>> {
    require_queue(authed)?;
    let filter = match query.state.trim() {
        "" => None,
        code => {
            Some(ApprovalState::parse(code).ok_or_else(|| ApiError::invalid("未知的审批状态"))?)
        }
    };
    let page = kaquan_core::store::Page::new(query.page, query.page_size);
    let now = crate::now();
    let (items, total) = state
        .store
        .list_approvals(authed.merchant_id(), filter, now, page)
        .await?;
    let mut dtos = Vec::with_capacity(items.len());
    for r in &items {
        dtos.push(dto(state, r).await?);
    }
    Ok(crate::lists::ListDto::new(dtos, total, page))
}

async fn list_approval_requests(
    State(state): State<AppState>,
    authed: Authed,
    Query(query): Query<ApprovalQuery>,
) -> ApiResult<Json<crate::lists::ListDto<ApprovalDto>>> {
    Ok(Json(load(&state, &authed, &query).await?))
}

pub(crate) async fn find(state: &AppState, authed: &Authed, id: i64) -> ApiResult<ApprovalRequest> {
    state
        .store
        .approval(authed.merchant_id(), id)
        .await?
        .ok_or(ApiError::NotFound)
}

async fn get_approval_request(
    State(state): State<AppState>,
    authed: Authed,
    Path(id): Path<i64>,
) -> ApiResult<Json<ApprovalDto>> {
    require_queue(&authed)?;
    let r = find(&state, &authed, id).await?;
    Ok(Json(dto(&state, &r).await?))
}

fn refused(refusal: DecisionRefusal) -> ApiError {
    let status = match refusal {
        DecisionRefusal::OwnRequest => StatusCode::FORBIDDEN,
        _ => StatusCode::CONFLICT,
    };
    ApiError::malformed(status, refusal.code(), refusal.message_zh())
}

/// Decides a request and, when approved, runs it (a password export waits
/// for the person who asked to download it).
async fn decide(
    state: &AppState,
    authed: &Authed,
    id: i64,
    decision: Decision,
) -> ApiResult<ApprovalRequest> {
    authed.require(Permission::ApprovalsDecide)?;
    let request = find(state, authed, id).await?;
    authed.require(permission_of(request.request.kind))?;
    let now = crate::now();
    request.may_decide(authed.staff.id, now).map_err(refused)?;
    let by = Decider {
        staff_id: authed.staff.id,
        name: authed.staff.username.clone(),
        now,
    };
    let action = match decision {
        Decision::Approve => "approve_request",
        Decision::Reject => "reject_request",
    };
    let audit = authed.audit(
        action,
        format!("approval={id}"),
        format!(
            "kind={} requested_by={}",
            request.request.kind.code(),
            request.request.requested_by_name
        ),
    );
    let decided = state
        .store
        .decide_approval(authed.merchant_id(), id, decision, &by, &audit)
        .await?;
    if !decided {
        // Another checker, or the clock, was first: say which.
        let now_request = find(state, authed, id).await?;
        return Err(refused(
            now_request
                .may_decide(authed.staff.id, crate::now())
                .err()
                .unwrap_or(DecisionRefusal::Decided(now_request.state)),
        ));
    }
    if decision == Decision::Approve && !request.request.run_by_requester() {
        let outcome = run(state, authed, &request).await;
        let recorded = outcome.as_ref().map(|n| *n).map_err(|e| e.public_message());
        state
            .store
            .finish_approval(authed.merchant_id(), id, recorded)
            .await?;
    }
    find(state, authed, id).await
}

/// Runs an approved request as it was asked, in the checker's name.
async fn run(state: &AppState, authed: &Authed, r: &ApprovalRequest) -> ApiResult<i64> {
    let merchant_id = authed.merchant_id();
    let detail = format!(
        "approval={} requested_by={}",
        r.id, r.request.requested_by_name
    );
    match r.request.kind {
        ApprovalKind::ActivateCards | ApprovalKind::DeleteCards => {
            let filter = r.request.filter().ok_or(ApiError::NotFound)?;
            let op = r.request.kind.card_op().ok_or(ApiError::NotFound)?;
            let audit = authed.audit(&format!("{}_cards", op.code()), filter.describe(), detail);
            if op == CardOp::Delete {
                return Ok(state
                    .store
                    .apply_card_op(merchant_id, &filter, op, &audit)
                    .await?);
            }
            let tally = ActivationTally {
                staff_id: r.request.requested_by,
                day: start_of_today(audit.created_at),
                cap: None,
            };
            Ok(state
                .store
                .activate_cards_counted(merchant_id, &filter, &audit, &tally)
                .await?)
        }
        ApprovalKind::AdjustBalance => {
            let customer_id = r.request.customer_id().ok_or(ApiError::NotFound)?;
            crate::customers::run_adjustment(
                state,
                authed,
                customer_id,
                r.request.reach.value_fen,
                &r.request.detail,
                &format!("approval-{}", r.id),
            )
            .await?;
            Ok(1)
        }
        ApprovalKind::ChangeCredentials => {
            crate::credential_approvals::run(state, authed, r, &detail).await
        }
        ApprovalKind::ExportSecrets => Err(ApiError::Internal("exports run on download".into())),
    }
}

async fn approve_approval_request(
    State(state): State<AppState>,
    authed: Authed,
    Path(id): Path<i64>,
) -> ApiResult<Json<ApprovalDto>> {
    let r = decide(&state, &authed, id, Decision::Approve).await?;
    Ok(Json(dto(&state, &r).await?))
}

async fn reject_approval_request(
    State(state): State<AppState>,
    authed: Authed,
    Path(id): Path<i64>,
) -> ApiResult<Json<ApprovalDto>> {
    let r = decide(&state, &authed, id, Decision::Reject).await?;
    Ok(Json(dto(&state, &r).await?))
}

/// Why a request the person who asked runs cannot run now.
pub(crate) fn not_approved(r: &ApprovalRequest, what: &str) -> ApiError {
    ApiError::malformed(
        StatusCode::CONFLICT,
        "approval_not_approved",
        format!("{what}（{}）", r.shown_state(crate::now()).label_zh()),
    )
}

/// The approved password export, once, for the person who asked.
async fn download_export(
    State(state): State<AppState>,
    authed: Authed,
    Path(id): Path<i64>,
) -> ApiResult<Response> {
    // The person who asked, still allowed to export passwords.
    authed.require(Permission::CardsExport)?;
    authed.require(Permission::CardsExportSecrets)?;
    let r = find(&state, &authed, id).await?;
    if r.request.kind != ApprovalKind::ExportSecrets || r.request.requested_by != authed.staff.id {
        return Err(ApiError::NotFound);
    }
    if r.state != ApprovalState::Approved {
        return Err(not_approved(&r, "该导出不能下载"));
    }
    let filter = r.request.filter().ok_or(ApiError::NotFound)?;
    let word = |key: &str| {
        r.request
            .detail
            .split_whitespace()
            .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
            .map(str::to_owned)
    };
    let format = word("format").unwrap_or_else(|| "xlsx".into());
    let format = crate::exports::ExportFormat::parse(&format).ok_or(ApiError::NotFound)?;
    let shop_id = word("print_shop").and_then(|id| id.parse().ok());
    let shop = crate::print_shops::chosen(&state, &authed, shop_id).await?;
    let kind = crate::exports::ExportKind::Cards(format);
    let detail = format!(
        "{} approval={} approved_by={}",
        kind.audit_detail(true),
        r.id,
        r.decided_by_name.clone().unwrap_or_default()
    );
    let (path, name, n) = crate::cards::write_export(
        &state,
        &authed,
        &filter,
        kind,
        (true, detail, shop.as_ref()),
    )
    .await?;
    // Once: a second download finds it done.
    if !state
        .store
        .finish_approval(authed.merchant_id(), id, Ok(n))
        .await?
    {
        let _ = std::fs::remove_file(&path);
        return Err(ApiError::malformed(
            StatusCode::CONFLICT,
            "approval_not_approved",
            "该导出已下载过".to_owned(),
        ));
    }
    let content_type = match shop {
        Some(_) => crate::print_shops::SEALED_CONTENT_TYPE,
        None => kind.content_type(),
    };
    crate::exports::stream_file(&path, &name, content_type).await
}

#[derive(Serialize)]
struct QueueView {
    list: crate::lists::ListDto<ApprovalDto>,
    state: String,
    states: Vec<(&'static str, &'static str)>,
    can_decide: bool,
    me: String,
    daily: String,
}

async fn queue_page(
    State(state): State<AppState>,
    authed: Authed,
    Query(query): Query<QueueQuery>,
) -> PageResult {
    let approvals = ApprovalQuery {
        state: query.state.clone().unwrap_or_else(|| "pending".into()),
        page: query.page,
        page_size: None,
    };
    let list = load(&state, &authed, &approvals).await?;
    let today = start_of_today(crate::now());
    let done = state
        .store
        .activated_in_day(authed.merchant_id(), authed.staff.id, today)
        .await?;
    let view = QueueView {
        list,
        state: approvals.state,
        states: ApprovalState::ALL
            .iter()
            .map(|s| (s.code(), s.label_zh()))
            .collect(),
        can_decide: authed.can(Permission::ApprovalsDecide),
        me: authed.staff.username.clone(),
        daily: format!(
            "今天您已激活 {} 张卡，面值 {} 元",
            done.n_cards,
            format_yuan(done.value_fen)
        ),
    };
    Ok(render(
        &state,
        "approvals.html",
        &Page::new("待审批", &authed).with_message(query.msg),
        view,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QueueQuery {
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    page: Option<i64>,
    #[serde(default)]
    msg: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DecideForm {
    csrf: String,
    decision: String,
}

async fn decide_form(
    State(state): State<AppState>,
    authed: Authed,
    Path(id): Path<i64>,
    Form(form): Form<DecideForm>,
) -> PageResult {
    authed.check_form_csrf(&form.csrf)?;
    let decision = match form.decision.as_str() {
        "approve" => Decision::Approve,
        "reject" => Decision::Reject,
        _ => return Err(ApiError::invalid("未知的审批操作").into()),
    };
    let r = decide(&state, &authed, id, decision).await?;
    let message = match (r.state, r.request.kind) {
        (ApprovalState::Rejected, _) => format!("已驳回请求 {id}"),
        (ApprovalState::Approved, ApprovalKind::ExportSecrets) => {
            format!("已批准请求 {id}：提交人可在「待审批」中下载导出文件")
        }
        (ApprovalState::Approved, ApprovalKind::ChangeCredentials) => {
            format!("已批准请求 {id}：提交人可在「待审批」中领取签名密钥")
        }
        (ApprovalState::Done, _) => {
            format!("已批准并执行请求 {id}：{} 张/笔", r.n_done.unwrap_or(0))
        }
        _ => format!("请求 {id} 执行失败：{}", r.outcome),
    };
    Ok(redirect_with("/approvals?state=", &message))
}
