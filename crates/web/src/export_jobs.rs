//! Card exports that run in the background: a large export (thousands of
//! QR images, a million rows) is started, shows its progress, and leaves a
//! download link, instead of holding a request open for minutes.
//!
//! `POST /api/v1/exports` (or the console's export buttons above
//! [`EXPORT_IN_BACKGROUND_ROWS`] cards) starts one; `GET /api/v1/exports/{id}`
//! says how far it is; `GET /api/v1/exports/{id}/file` downloads the file
//! once ready, as often as needed until it expires after
//! [`EXPORT_KEPT_SECONDS`]. Only the staff member who started an export sees
//! it. Jobs live in the memory of the node that runs them: a restart loses
//! the running ones (start them again), and behind a load balancer the
//! status and file requests must reach that node.

use crate::approvals::Gated;
use crate::auth::Authed;
use crate::cards::CardFilterDto;
use crate::error::{ApiError, ApiResult};
use crate::exports::{self, ExportFormat, ExportKind, ExportRequest, QrImageFormat};
use crate::extract::{Form, Json, Path};
use crate::pages::{render, Page, PageResult};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use kaquan_core::auth::Permission;
use kaquan_core::card::CardFilter;
use kaquan_core::print_shop::PrintShop;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

/// Above this many cards the console runs an export in the background.
pub const EXPORT_IN_BACKGROUND_ROWS: i64 = 10_000;
/// How long a finished export stays downloadable.
pub const EXPORT_KEPT_SECONDS: i64 = 3600;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/exports", post(create_export))
        .route("/api/v1/exports/{export_id}", get(get_export))
        .route("/api/v1/exports/{export_id}/file", get(get_export_file))
        .route("/exports", post(create_export_form))
        .route("/exports/{export_id}", get(export_page))
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Running,
    Ready,
    Failed(String),
}

/// One background export.
pub struct ExportJob {
    id: String,
    merchant_id: i64,
    staff_id: i64,
    kind: ExportKind,
    /// The download's name (what it holds, its batch, the day).
    file_name: String,
    n_total: i64,
    n_done: AtomicI64,
    outcome: Mutex<Outcome>,
    path: std::path::PathBuf,
    /// Sealed to a 印刷厂's key.
    sealed: bool,
    created_at: i64,
}

impl ExportJob {
    fn outcome(&self) -> Outcome {
        self.outcome
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn finish(&self, outcome: Outcome) {
        *self.outcome.lock().unwrap_or_else(|e| e.into_inner()) = outcome;
    }
}

/// The background exports of this node, by id.
#[derive(Default)]
pub struct ExportJobs(Mutex<HashMap<String, Arc<ExportJob>>>);

impl ExportJobs {
    /// Forgets exports older than [`EXPORT_KEPT_SECONDS`] and deletes their files.
    fn sweep(&self, now: i64) {
        let mut jobs = self.0.lock().unwrap_or_else(|e| e.into_inner());
        jobs.retain(|_, job| {
            let keep =
                job.created_at + EXPORT_KEPT_SECONDS > now || job.outcome() == Outcome::Running;
            if !keep {
                let _ = std::fs::remove_file(&job.path);
            }
            keep
        });
    }

    /// Exports still being written.
    pub fn running(&self) -> usize {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter(|job| matches!(job.outcome(), Outcome::Running))
            .count()
    }

    fn insert(&self, job: Arc<ExportJob>) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(job.id.clone(), job);
    }

    /// The export, if it is the asking staff member's own.
    fn get(&self, id: &str, authed: &Authed) -> ApiResult<Arc<ExportJob>> {
        self.sweep(crate::now());
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .filter(|job| {
                job.merchant_id == authed.merchant_id() && job.staff_id == authed.staff.id
            })
            .cloned()
            .ok_or(ApiError::NotFound)
    }
}

/// An export to start, as the API takes it.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"kind": "cards", "format": "xlsx", "with_secrets": false, "filter": {"batch_id": 12}}))]
pub struct ExportJobRequest {
    /// `cards` (xlsx or CSV) or `qr_codes` (a zip of images).
    #[schema(pattern = "^(cards|qr_codes)$")]
    pub kind: String,
    /// For `cards`: `xlsx` (default) or `csv`.
    #[serde(default)]
    #[schema(pattern = "^(xlsx|csv)$")]
    pub format: Option<String>,
    /// For `qr_codes`: `png` (default) or `svg`.
    #[serde(default)]
    #[schema(pattern = "^(png|svg)$")]
    pub image: Option<String>,
    /// For `cards`: include the passwords (needs `cards.export_secrets`).
    #[serde(default)]
    pub with_secrets: bool,
    /// Seal the file to this 印刷厂's age key (the download ends in `.age`).
    #[serde(default)]
    pub print_shop_id: Option<i64>,
    /// The cards; no condition needs `"all": true`.
    pub filter: CardFilterDto,
}

fn export_kind(kind: &str, format: Option<&str>, image: Option<&str>) -> ApiResult<ExportKind> {
    match kind {
        "cards" => ExportFormat::parse(format.unwrap_or("xlsx"))
            .map(ExportKind::Cards)
            .ok_or_else(|| ApiError::invalid("导出格式应为 xlsx 或 csv")),
        "qr_codes" => QrImageFormat::parse(image.unwrap_or("png"))
            .map(ExportKind::QrCodes)
            .ok_or_else(|| ApiError::invalid("图片格式应为 svg 或 png")),
        _ => Err(ApiError::invalid("kind 应为 cards 或 qr_codes")),
    }
}

/// How an export stands, on the wire.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"export_id": "9f2c4e6a8b0d1f3e5a7c9e1b3d5f7a9c", "state": "running", "n_done": 40000, "n_total": 100000, "file_name": "卡券数据-中秋提货卡-批次12-20261201.xlsx", "message": null, "status_url": "/api/v1/exports/9f2c4e6a8b0d1f3e5a7c9e1b3d5f7a9c", "download_url": null, "expires_at": 1795000000}))]
pub struct ExportJobDto {
    pub export_id: String,
    /// `running`, `ready` or `failed`.
    pub state: &'static str,
    pub n_done: i64,
    pub n_total: i64,
    pub file_name: String,
    /// Why it failed, for people.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub status_url: String,
    /// Where the file is, once ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub download_url: Option<String>,
    /// Until when the file can be downloaded (unix seconds).
    pub expires_at: i64,
}

impl ExportJobDto {
    fn new(job: &ExportJob) -> Self {
        let outcome = job.outcome();
        let (state, message) = match &outcome {
            Outcome::Running => ("running", None),
            Outcome::Ready => ("ready", None),
            Outcome::Failed(message) => ("failed", Some(message.clone())),
        };
        Self {
            export_id: job.id.clone(),
            state,
            n_done: job.n_done.load(Ordering::Relaxed),
            n_total: job.n_total,
            file_name: job.file_name.clone(),
            message,
            status_url: format!("/api/v1/exports/{}", job.id),
            download_url: (outcome == Outcome::Ready)
                .then(|| format!("/api/v1/exports/{}/file", job.id)),
            expires_at: job.created_at + EXPORT_KEPT_SECONDS,
        }
    }
}

/// Checks the permissions, takes one of the merchant's export slots, and
/// starts writing the export on its own task; the audit record is written
/// when it is done.
pub async fn start_export(
    state: &AppState,
    authed: &Authed,
    (kind, shop): (ExportKind, Option<PrintShop>),
    with_secrets: bool,
    filter: CardFilter,
) -> ApiResult<Gated<Arc<ExportJob>>> {
    authed.require(Permission::CardsExport)?;
    let with_secrets = with_secrets && matches!(kind, ExportKind::Cards(_));
    if with_secrets {
        authed.require(Permission::CardsExportSecrets)?;
        if let Some(request) = crate::approvals::secrets_export(
            state,
            authed,
            &filter,
            (kind.extension(), shop.as_ref().map(|s| s.id)),
        )
        .await?
        {
            return Ok(Gated::Held(Box::new(request)));
        }
    }
    let slot = state.exports.take(authed.merchant_id())?;
    let n_total = state
        .store
        .count_cards(authed.merchant_id(), &filter)
        .await?;
    let now = crate::now();
    state.export_jobs.sweep(now);
    let mut file_name =
        crate::cards::export_file_name(state, authed, kind, with_secrets, &filter).await?;
    // A sealed export is written in the clear to `plain`, then sealed to `path`.
    let plain = exports::temp_export_path(kind.extension());
    let path = match &shop {
        Some(_) => {
            file_name.push_str(".age");
            crate::print_shops::sealed_path(&plain)
        }
        None => plain.clone(),
    };
    let job = Arc::new(ExportJob {
        id: kaquan_core::secrets::random_token_hex(16),
        merchant_id: authed.merchant_id(),
        staff_id: authed.staff.id,
        kind,
        file_name,
        n_total,
        n_done: AtomicI64::new(0),
        outcome: Mutex::new(Outcome::Running),
        path,
        sealed: shop.is_some(),
        created_at: now,
    });
    state.export_jobs.insert(Arc::clone(&job));
    let mut detail = kind.audit_detail(with_secrets);
    if let Some(shop) = &shop {
        detail.push_str(&format!(" print_shop={}", shop.id));
    }
    let mut audit = authed.audit(kind.action(), filter.describe(), detail);
    let public_url = state.public_url_for(authed.merchant_id()).await?;
    let lang = authed.export_lang;
    let (state, running) = (state.clone(), Arc::clone(&job));
    tokio::spawn(async move {
        let _slot = slot;
        let request = ExportRequest {
            store: state.store.as_ref(),
            master: &state.master,
            merchant_id: running.merchant_id,
            filter: &filter,
            with_secrets,
            public_url: &public_url,
            progress: Some(&running.n_done),
            lang,
        };
        let written =
            crate::print_shops::write_sealed(running.kind, &request, plain, shop.as_ref()).await;
        let audited = match written.map(|(_, n)| n) {
            Ok(n) => {
                audit.n_affected = n;
                state
                    .store
                    .append_audit(&audit)
                    .await
                    .map_err(ApiError::from)
            }
            Err(error) => Err(error),
        };
        match audited {
            Ok(()) => running.finish(Outcome::Ready),
            Err(error) => {
                if let ApiError::Internal(cause) = &error {
                    tracing::error!(error = %cause, "background export failed");
                }
                let _ = std::fs::remove_file(&running.path);
                running.finish(Outcome::Failed(error.public_message()));
            }
        }
    });
    Ok(Gated::Done(job))
}

async fn create_export(
    State(state): State<AppState>,
    authed: Authed,
    Json(body): Json<ExportJobRequest>,
) -> ApiResult<Response> {
    authed.require(Permission::CardsExport)?;
    let kind = export_kind(&body.kind, body.format.as_deref(), body.image.as_deref())?;
    let filter = body.filter.into_target()?;
    let shop = crate::print_shops::chosen(&state, &authed, body.print_shop_id).await?;
    Ok(
        match start_export(&state, &authed, (kind, shop), body.with_secrets, filter).await? {
            Gated::Done(job) => {
                (StatusCode::ACCEPTED, Json(ExportJobDto::new(&job))).into_response()
            }
            Gated::Held(request) => crate::approvals::held_answer(&request),
        },
    )
}

async fn get_export(
    State(state): State<AppState>,
    authed: Authed,
    Path(export_id): Path<String>,
) -> ApiResult<Json<ExportJobDto>> {
    let job = state.export_jobs.get(&export_id, &authed)?;
    Ok(Json(ExportJobDto::new(&job)))
}

async fn get_export_file(
    State(state): State<AppState>,
    authed: Authed,
    Path(export_id): Path<String>,
) -> ApiResult<Response> {
    let job = state.export_jobs.get(&export_id, &authed)?;
    match job.outcome() {
        Outcome::Ready => {
            let content_type = match job.sealed {
                true => crate::print_shops::SEALED_CONTENT_TYPE,
                false => job.kind.content_type(),
            };
            exports::stream_kept_file(&job.path, &job.file_name, content_type).await
        }
        Outcome::Running => Err(ApiError::malformed(
            StatusCode::CONFLICT,
            "export_not_ready",
            "导出还在进行中，请稍后再下载",
        )),
        Outcome::Failed(message) => Err(ApiError::malformed(
            StatusCode::CONFLICT,
            "export_failed",
            format!("导出失败：{message}"),
        )),
    }
}

// ---- console ----------------------------------------------------------------

crate::cards::with_card_filter! {
    /// An export button of the card list, as the console posts it.
    pub struct ExportJobForm {
        pub csrf: String,
        #[serde(default)]
        pub kind: String,
        #[serde(default)]
        pub format: Option<String>,
        #[serde(default)]
        pub image: Option<String>,
        #[serde(default)]
        pub with_secrets: Option<String>,
        #[serde(default)]
        pub print_shop_id: Option<String>,
    }
}

async fn create_export_form(
    State(state): State<AppState>,
    authed: Authed,
    Form(form): Form<ExportJobForm>,
) -> PageResult {
    authed.check_form_csrf(&form.csrf)?;
    let kind = export_kind(&form.kind, form.format.as_deref(), form.image.as_deref())?;
    let filter = form.filter_form().into_target()?;
    let with_secrets = form.with_secrets.as_deref() == Some("true");
    let shop_id = crate::print_shops::id_field(form.print_shop_id.as_deref())?;
    let shop = crate::print_shops::chosen(&state, &authed, shop_id).await?;
    Ok(
        match start_export(&state, &authed, (kind, shop), with_secrets, filter).await? {
            Gated::Done(job) => Redirect::to(&format!("/exports/{}", job.id)).into_response(),
            Gated::Held(request) => crate::cards::back_to_cards(
                &form.filter_form(),
                &crate::approvals::held_message(&request),
            ),
        },
    )
}

async fn export_page(
    State(state): State<AppState>,
    authed: Authed,
    Path(export_id): Path<String>,
) -> PageResult {
    let job = state.export_jobs.get(&export_id, &authed)?;
    Ok(render(
        &state,
        "export.html",
        &Page::new("导出", &authed),
        ExportJobDto::new(&job),
    ))
}
