//! 投放 by staff: 定向发放 to one customer or a list (all or none, with a
//! per-row report), and the poster-ready QR code of a program's claim link.

use crate::auth::Authed;
use crate::coupons::claim_path;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path, Query};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use kaquan_core::auth::Permission;
use kaquan_core::coupon::targeted::{self, ListRefusal};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, Mutex};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/coupon-programs/{program_id}/issues",
            post(create_coupon_issue),
        )
        .route(
            "/api/v1/coupon-programs/{program_id}/qr",
            get(get_coupon_program_qr),
        )
}

// ---- 定向发放 ----------------------------------------------------------------

/// One recipient of a targeted issue: a mobile number or the mall's customer id.
#[derive(Deserialize, utoipa::ToSchema, Clone)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"phone": "13800001234"}))]
pub struct Recipient {
    pub phone: Option<String>,
    pub customer_id: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"recipients": [{"phone": "13800001234"}, {"customer_id": "u-1001"}]}))]
pub struct CouponIssueRequest {
    /// One coupon per entry (a customer listed twice gets two); at most 10000.
    pub recipients: Vec<Recipient>,
}

#[derive(Serialize, utoipa::ToSchema, Clone)]
#[schema(example = json!({"program_id": 3, "n_issued": 2, "stock_left": 878}))]
pub struct CouponIssueDto {
    pub program_id: i64,
    pub n_issued: i64,
    pub stock_left: i64,
}

impl From<&Recipient> for targeted::Recipient {
    fn from(r: &Recipient) -> Self {
        targeted::Recipient {
            phone: r.phone.clone(),
            customer_id: r.customer_id.clone(),
        }
    }
}

/// 定向发放: one coupon per recipient, all or none.
pub async fn issue_to(
    state: &AppState,
    authed: &Authed,
    program_id: i64,
    recipients: &[targeted::Recipient],
) -> ApiResult<CouponIssueDto> {
    authed.require(Permission::CouponsManage)?;
    issue_for(
        state,
        authed.merchant_id(),
        &authed.actor(),
        program_id,
        recipients,
        None,
    )
    .await
}

/// 定向发放 for a merchant, counting each recipient resolved in `progress`.
async fn issue_for(
    state: &AppState,
    merchant_id: i64,
    actor: &kaquan_core::audit::Actor,
    program_id: i64,
    recipients: &[targeted::Recipient],
    progress: Option<&AtomicI64>,
) -> ApiResult<CouponIssueDto> {
    let list = targeted::ListIssue {
        merchant_id,
        program_id,
        recipients,
        actor,
        now: crate::now(),
    };
    match targeted::issue_to_list(state.store.as_ref(), &state.master, &list, progress).await? {
        Ok(issued) => Ok(CouponIssueDto {
            program_id,
            n_issued: issued.n_issued,
            stock_left: issued.stock_left,
        }),
        Err(ListRefusal::Rows(rows)) => Err(ApiError::ImportRows(rows)),
        Err(ListRefusal::Refused(refusal)) => Err(ApiError::CouponRefused(refusal)),
        Err(refusal @ ListRefusal::Size) => Err(ApiError::invalid(refusal.message())),
    }
}

/// A list's bad rows named by their lines in the uploaded file (`lines[i]`
/// is the line of the list's entry `i + 1`).
pub fn on_file_lines(error: ApiError, lines: &[usize]) -> ApiError {
    match error {
        ApiError::ImportRows(rows) => ApiError::ImportRows(targeted::on_file_lines(rows, lines)),
        other => other,
    }
}

/// Lists longer than this are issued by a background job with progress (console).
pub const ISSUE_IN_BACKGROUND_ROWS: usize = 1000;
/// How long a finished job's outcome is kept to be read.
const ISSUE_JOB_KEPT_SECONDS: i64 = 3600;

/// How a background 定向发放 ended: what was issued, or why nothing was
/// (the message and each bad row with its line).
pub type IssueOutcome = Result<CouponIssueDto, (String, Vec<(usize, String)>)>;

/// A 定向发放 running in the background on this node.
pub struct IssueJob {
    pub id: String,
    merchant_id: i64,
    staff_id: i64,
    pub program_id: i64,
    pub n_total: i64,
    pub n_done: AtomicI64,
    started_at: i64,
    /// `None` while running; then what was issued, or why nothing was
    /// (the message and each bad row).
    pub outcome: Mutex<Option<IssueOutcome>>,
}

/// The background issues of this node (lost on restart: nothing is issued
/// until the whole list is resolved, so a lost job issued nothing).
#[derive(Default)]
pub struct IssueJobs(Mutex<HashMap<String, Arc<IssueJob>>>);

impl IssueJobs {
    /// The job, for the staff member who started it.
    pub fn get(&self, authed: &Authed, id: &str) -> Option<Arc<IssueJob>> {
        let jobs = self.0.lock().expect("the job list is never poisoned");
        jobs.get(id)
            .filter(|j| j.merchant_id == authed.merchant_id() && j.staff_id == authed.staff.id)
            .cloned()
    }
}

/// Starts 定向发放 of a long list in the background; returns the job.
pub fn start_issue_job(
    state: &AppState,
    authed: &Authed,
    program_id: i64,
    recipients: Vec<targeted::Recipient>,
    lines: Vec<usize>,
) -> ApiResult<Arc<IssueJob>> {
    authed.require(Permission::CouponsManage)?;
    let now = crate::now();
    let job = Arc::new(IssueJob {
        id: kaquan_core::secrets::random_token_hex(8),
        merchant_id: authed.merchant_id(),
        staff_id: authed.staff.id,
        program_id,
        n_total: recipients.len() as i64,
        n_done: AtomicI64::new(0),
        started_at: now,
        outcome: Mutex::new(None),
    });
    {
        let mut jobs = state
            .issue_jobs
            .0
            .lock()
            .expect("the job list is never poisoned");
        jobs.retain(|_, j| j.started_at + ISSUE_JOB_KEPT_SECONDS > now);
        jobs.insert(job.id.clone(), Arc::clone(&job));
    }
    let (state, actor, running) = (state.clone(), authed.actor(), Arc::clone(&job));
    tokio::spawn(async move {
        let issued = issue_for(
            &state,
            running.merchant_id,
            &actor,
            program_id,
            &recipients,
            Some(&running.n_done),
        )
        .await;
        let outcome = issued.map_err(|e| {
            let e = on_file_lines(e, &lines);
            let rows = match &e {
                ApiError::ImportRows(rows) => {
                    rows.iter().map(|r| (r.line, r.message.clone())).collect()
                }
                _ => Vec::new(),
            };
            (e.public_message(), rows)
        });
        *running
            .outcome
            .lock()
            .expect("a job's outcome is never poisoned") = Some(outcome);
    });
    Ok(job)
}

async fn create_coupon_issue(
    State(state): State<AppState>,
    authed: Authed,
    Path(program_id): Path<i64>,
    Json(request): Json<CouponIssueRequest>,
) -> ApiResult<(StatusCode, Json<CouponIssueDto>)> {
    let recipients: Vec<targeted::Recipient> = request.recipients.iter().map(Into::into).collect();
    let issued = issue_to(&state, &authed, program_id, &recipients).await?;
    Ok((StatusCode::CREATED, Json(issued)))
}

// ---- the claim QR code ------------------------------------------------------

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct QrQuery {
    /// `png` (default, for print) or `svg` (for posters).
    pub format: Option<String>,
}

/// The poster-ready QR code of a program's claim link.
pub async fn claim_qr(
    state: &AppState,
    authed: &Authed,
    program_id: i64,
    format: Option<&str>,
) -> ApiResult<Response> {
    authed.require(Permission::CouponsManage)?;
    let m = authed.merchant_id();
    let program = state.store.get_coupon_program(m, program_id).await?;
    let url = format!(
        "{}{}",
        state.public_url_for(m).await?,
        claim_path(m, &program.claim_token)
    );
    let code = qrcode::QrCode::new(url.as_bytes())
        .map_err(|e| ApiError::Internal(format!("a claim link does not fit a QR code: {e}")))?;
    let title = program.fields.title.clone();
    Ok(match format.unwrap_or("png") {
        "png" => {
            let png = crate::off_runtime(move || crate::exports::qr_png(&code, 12)).await?;
            crate::exports::download(png, &format!("领券二维码-{title}.png"), "image/png")
        }
        "svg" => crate::exports::download(
            crate::exports::qr_svg(&code).into_bytes(),
            &format!("领券二维码-{title}.svg"),
            "image/svg+xml",
        ),
        _ => return Err(ApiError::invalid("format 应为 png 或 svg")),
    })
}

async fn get_coupon_program_qr(
    State(state): State<AppState>,
    authed: Authed,
    Path(program_id): Path<i64>,
    Query(query): Query<QrQuery>,
) -> ApiResult<Response> {
    claim_qr(&state, &authed, program_id, query.format.as_deref()).await
}
