//! 操作日志: the audit log in the merchant's words, filtered by who, what,
//! which card or order and when, paged and exported; and the numbers a
//! delete removed.

use crate::auth::Authed;
use crate::error::{ApiError, ApiResult};
use crate::exports;
use crate::extract::{Json, Path, Query};
use crate::lists::{parse_optional_date, ListDto};
use crate::pages::{render, Page, PageResult};
use crate::AppState;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use kaquan_core::audit::{action_labels, AuditFilter, AuditRecord};
use kaquan_core::auth::Permission;
use kaquan_core::clock::format_datetime;
use kaquan_core::store::Page as ListPage;
use serde::{Deserialize, Serialize};

/// Most records one export holds: the newest.
pub const AUDIT_EXPORT_ROWS_MAX: i64 = 100_000;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/audit-log", get(list_audit_log))
        .route("/api/v1/audit-log/export", get(export_audit_log))
        .route(
            "/api/v1/audit-log/{audit_id}/deleted-cards",
            get(list_deleted_cards),
        )
        .route("/audit", get(audit_page))
        .route("/audit/export", get(export_audit_log))
        .route("/audit/{audit_id}/deleted-cards", get(deleted_cards_page))
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": 120, "actor": "owner", "action": "pickup_refused", "action_label": "提货被拒（密码错误）", "channel_label": "电话提货", "target": "card=A588000123", "target_text": "卡号 A588000123", "detail": "channel=phone reason=wrong_password", "detail_text": "", "n_affected": 0, "created_at": "2026-11-30 14:05:00"}))]
pub struct AuditDto {
    pub id: i64,
    pub actor: String,
    /// The action's code (stable, for programs).
    pub action: String,
    /// The action as the console names it, with a refusal's reason.
    pub action_label: String,
    /// 顾客自助, 到店提货, 电话提货 or 接口, for pickups.
    pub channel_label: Option<&'static str>,
    pub target: String,
    pub target_text: String,
    pub detail: String,
    pub detail_text: String,
    pub n_affected: i64,
    pub created_at: String,
}

impl AuditDto {
    fn new(record: AuditRecord) -> Self {
        let text = record.entry.text_zh();
        Self {
            id: record.id,
            actor: record.entry.actor.label,
            action: record.entry.action,
            action_label: text.action,
            channel_label: text.channel,
            target: record.entry.target,
            target_text: text.target,
            detail: record.entry.detail,
            detail_text: text.detail,
            n_affected: record.entry.n_affected,
            created_at: format_datetime(record.entry.created_at),
        }
    }
}

/// The audit log's filters; empty means "any".
#[derive(Deserialize, Serialize, Default, Clone, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Who did it: a staff member's username, `cli` or `system`.
    #[serde(default)]
    #[param(max_length = 64, example = "clerk.1")]
    pub actor: String,
    /// An action code (`GET /api/v1/audit-log` answers them in `action`).
    #[serde(default)]
    #[param(max_length = 64, example = "pickup_refused")]
    pub action: String,
    /// A card number or order number the record names.
    #[serde(default)]
    #[param(max_length = 64, example = "A588000123")]
    pub text: String,
    /// On or after this day, `YYYY-MM-DD`.
    #[serde(default)]
    #[param(pattern = "^([0-9]{4}-[0-9]{2}-[0-9]{2})?$", example = "2026-11-01")]
    pub date_from: String,
    /// On or before this day, `YYYY-MM-DD`.
    #[serde(default)]
    #[param(pattern = "^([0-9]{4}-[0-9]{2}-[0-9]{2})?$", example = "2026-11-30")]
    pub date_until: String,
    /// 1-based; 1 when absent.
    #[serde(default, skip_serializing)]
    #[param(minimum = 1, example = 1)]
    pub page: Option<i64>,
    /// 50 when absent, at most 200.
    #[serde(default, skip_serializing)]
    #[param(minimum = 1, maximum = 200, example = 50)]
    pub page_size: Option<i64>,
}

impl AuditQuery {
    fn to_filter(&self) -> ApiResult<AuditFilter> {
        for (field, text) in [
            ("actor", &self.actor),
            ("action", &self.action),
            ("text", &self.text),
        ] {
            crate::extract::check_chars(field, text, kaquan_core::text::SEARCH_CHARS_MAX)?;
        }
        let some = |t: &str| Some(t.trim().to_owned()).filter(|t| !t.is_empty());
        Ok(AuditFilter {
            actor: some(&self.actor),
            actions: some(&self.action).into_iter().collect(),
            text: some(&self.text).map(|t| t.to_ascii_uppercase()),
            created_from: parse_optional_date(Some(&self.date_from), "开始日期", false)?,
            created_until: parse_optional_date(Some(&self.date_until), "结束日期", true)?,
        })
    }
}

async fn load_audit(
    state: &AppState,
    authed: &Authed,
    query: &AuditQuery,
) -> ApiResult<ListDto<AuditDto>> {
    authed.require(Permission::AuditView)?;
    let filter = query.to_filter()?;
    let page = ListPage::new(query.page, query.page_size);
    let (records, total) = state
        .store
        .search_audit(authed.merchant_id(), &filter, page)
        .await?;
    let items = records.into_iter().map(AuditDto::new).collect();
    Ok(ListDto::new(items, total, page))
}

async fn list_audit_log(
    State(state): State<AppState>,
    authed: Authed,
    Query(query): Query<AuditQuery>,
) -> ApiResult<Json<ListDto<AuditDto>>> {
    Ok(Json(load_audit(&state, &authed, &query).await?))
}

const AUDIT_HEADERS: [&str; 8] = [
    "时间",
    "操作人",
    "操作",
    "渠道",
    "对象",
    "详情",
    "数量",
    "操作代码",
];

/// The filtered log as xlsx, newest first (at most [`AUDIT_EXPORT_ROWS_MAX`] rows).
async fn export_audit_log(
    State(state): State<AppState>,
    authed: Authed,
    Query(query): Query<AuditQuery>,
) -> ApiResult<Response> {
    authed.require(Permission::AuditView)?;
    let filter = query.to_filter()?;
    let xlsx_err = |e: rust_xlsxwriter::XlsxError| ApiError::Internal(format!("xlsx: {e}"));
    let path = exports::temp_export_path("xlsx");
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let sheet = workbook
        .add_worksheet_with_constant_memory()
        .map_err(xlsx_err)?;
    for (c, h) in authed
        .export_lang
        .headers(&AUDIT_HEADERS)
        .iter()
        .enumerate()
    {
        sheet.write_string(0, c as u16, h).map_err(xlsx_err)?;
    }
    let (mut row, mut written) = (1u32, 0i64);
    let page_size = kaquan_core::store::PAGE_SIZE_MAX;
    for number in 1.. {
        let page = ListPage::new(Some(number), Some(page_size));
        let (records, _) = state
            .store
            .search_audit(authed.merchant_id(), &filter, page)
            .await?;
        let n = records.len() as i64;
        let lang = authed.export_lang;
        for a in records.into_iter().map(AuditDto::new) {
            // As the page shows them: labels and descriptions in the
            // person's language, a merchant's own words kept.
            let texts = [
                a.created_at.clone(),
                a.actor.clone(),
                lang.text(&a.action_label),
                lang.text(a.channel_label.unwrap_or("")),
                lang.text(&a.target_text),
                lang.text(&a.detail_text),
            ];
            for (c, text) in texts.iter().enumerate() {
                sheet
                    .write_string(row, c as u16, exports::escape_formula(text))
                    .map_err(xlsx_err)?;
            }
            sheet
                .write_number(row, 6, a.n_affected as f64)
                .map_err(xlsx_err)?;
            sheet.write_string(row, 7, &a.action).map_err(xlsx_err)?;
            row += 1;
        }
        written += n;
        if n < page_size || written >= AUDIT_EXPORT_ROWS_MAX {
            break;
        }
    }
    workbook.save(&path).map_err(xlsx_err)?;
    let name = format!(
        "操作日志-{}.xlsx",
        kaquan_core::clock::format_date(crate::now()).replace('-', "")
    );
    exports::stream_file(&path, &name, exports::XLSX_CONTENT_TYPE).await
}

#[derive(Serialize)]
struct AuditView {
    list: ListDto<AuditDto>,
    query: AuditQuery,
    /// The filter as a query string, for the pager and the export.
    query_string: String,
    actions: &'static [(&'static str, &'static str)],
    actors: Vec<String>,
    /// The chain's head: `seq:hash`, with when its record was written.
    head: Option<(String, String)>,
}

async fn audit_page(
    State(state): State<AppState>,
    authed: Authed,
    Query(query): Query<AuditQuery>,
) -> PageResult {
    let list = load_audit(&state, &authed, &query).await?;
    let staff = state.store.list_staff(authed.merchant_id()).await?;
    let mut actors: Vec<String> = staff.into_iter().map(|s| s.username).collect();
    actors.extend(["cli".to_owned(), "system".to_owned()]);
    let head = state
        .store
        .audit_heads(Some(authed.merchant_id()))
        .await?
        .pop();
    let view = AuditView {
        head: head.map(|h| (h.text(), kaquan_core::clock::format_datetime(h.created_at))),
        list,
        query_string: serde_urlencoded::to_string(&query).unwrap_or_default(),
        query,
        actions: action_labels(),
        actors,
    };
    Ok(render(
        &state,
        "audit.html",
        &Page::new("操作日志", &authed),
        view,
    ))
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"audit_id": 120, "numbers": ["880000000001", "880000000002"]}))]
pub struct DeletedCardsDto {
    pub audit_id: i64,
    pub numbers: Vec<String>,
}

async fn load_deleted(
    state: &AppState,
    authed: &Authed,
    audit_id: i64,
) -> ApiResult<DeletedCardsDto> {
    authed.require(Permission::AuditView)?;
    let numbers = state
        .store
        .list_deleted_numbers(authed.merchant_id(), audit_id)
        .await?;
    Ok(DeletedCardsDto { audit_id, numbers })
}

/// The card numbers one delete removed (the audit log keeps them).
async fn list_deleted_cards(
    State(state): State<AppState>,
    authed: Authed,
    Path(audit_id): Path<i64>,
) -> ApiResult<Json<DeletedCardsDto>> {
    Ok(Json(load_deleted(&state, &authed, audit_id).await?))
}

async fn deleted_cards_page(
    State(state): State<AppState>,
    authed: Authed,
    Path(audit_id): Path<i64>,
) -> PageResult {
    let view = load_deleted(&state, &authed, audit_id).await?;
    Ok(render(
        &state,
        "deleted_cards.html",
        &Page::new("已删除的卡", &authed),
        view,
    ))
}

/// How often the sealer looks for records to link.
const SEAL_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// The audit chain's sealer beside every server: links new records into
/// their merchant's chain within about a second (one sealer at a time,
/// however many nodes run).
pub fn spawn_sealer(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(SEAL_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            if let Err(error) = kaquan_core::audit::chain::seal_all(state.store.as_ref()).await {
                tracing::warn!(%error, "sealing the audit chain failed; will retry");
            }
        }
    })
}
