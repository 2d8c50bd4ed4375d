//! Batches (批次): create (generate) with progress, list, import from xlsx
//! or CSV with a per-row report, and the import template.

use crate::auth::Authed;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Multipart, Path, Query};
use crate::lists::parse_optional_date;
use crate::lists::ListDto;
use crate::lists::PageQuery;
use crate::pages::{render, Page, PageError, PageResult};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use kaquan_core::auth::Permission;
use kaquan_core::batch::usecases::{self as usecases, BatchProgress, ImportFields};
use kaquan_core::batch::Batch;
use kaquan_core::batch::{
    password_strength, BatchFields, BatchSpec, Numbering, PasswordCharset, BATCH_QUANTITY_MAX,
};
use kaquan_core::clock::{format_date, format_datetime};
use kaquan_core::money::{format_yuan, parse_yuan};
use kaquan_core::store::Page as ListPage;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/batches", get(list_batches).post(create_batch))
        .route("/api/v1/batches/{batch_id}", get(get_batch))
        .route(
            "/api/v1/batches/password-strength",
            post(estimate_password_strength),
        )
        .route("/api/v1/batches/import", post(import_batch))
        .route("/api/v1/batches/import-template", get(get_import_template))
        .route("/batches", get(batches_page).post(create_batch_form))
        .route("/batches/new", get(new_batch_page))
        .route("/batches/{batch_id}", get(batch_page))
        .route("/cards/import", get(import_page).post(import_form))
}

/// A batch as the API and console show it.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": 12, "name": "2026 中秋提货卡", "source": "generated", "state": "ready", "state_label": "已完成", "quantity": 1000, "prefix": "88", "number_length": 12, "numbering": "sequential", "start_number": 1, "password_length": 10, "password_charset": "digits", "face_value_fen": 29900, "face_value_yuan": "299.00", "valid_from": "2026-09-01", "valid_until": "2026-12-31", "remark": "中秋团购", "serial_first": 1, "serial_last": 1000, "progress_done": null, "error": null, "created_by": "owner", "created_at": "2026-11-30 14:05:00", "n_copies": 1000}))]
pub struct BatchDto {
    pub id: i64,
    pub name: String,
    pub source: &'static str,
    pub state: &'static str,
    pub state_label: &'static str,
    pub prefix: String,
    pub number_length: i64,
    pub numbering: &'static str,
    pub start_number: Option<i64>,
    pub password_length: i64,
    pub password_charset: &'static str,
    pub quantity: i64,
    pub face_value_fen: Option<i64>,
    pub face_value_yuan: Option<String>,
    pub valid_from: Option<String>,
    pub valid_until: Option<String>,
    pub remark: String,
    pub serial_first: i64,
    pub serial_last: i64,
    pub error: Option<String>,
    pub created_by: String,
    pub created_at: String,
    /// Cards written so far, while this process generates the batch.
    pub progress_done: Option<i64>,
    /// Cards still holding kaquan's sealed password copy (密码副本), for
    /// another export; 0 once purged after printing.
    pub n_copies: i64,
}

impl BatchDto {
    pub fn new(batch: &Batch, progress: Option<&BatchProgress>) -> Self {
        Self {
            id: batch.id,
            name: batch.name.clone(),
            source: batch.source.code(),
            state: batch.state.code(),
            state_label: batch.state.label_zh(),
            prefix: batch.prefix.clone(),
            number_length: batch.number_length,
            numbering: batch.numbering.code(),
            start_number: batch.start_number,
            password_length: batch.password_length,
            password_charset: batch.password_charset.code(),
            quantity: batch.quantity,
            face_value_fen: batch.face_value_fen,
            face_value_yuan: batch.face_value_fen.map(format_yuan),
            valid_from: batch.valid_from.map(format_date),
            valid_until: batch.valid_until.map(format_date),
            remark: batch.remark.clone(),
            serial_first: batch.serial_first,
            serial_last: batch.serial_first + batch.quantity - 1,
            error: batch.error.clone(),
            created_by: batch.created_by.clone(),
            created_at: format_datetime(batch.created_at),
            progress_done: progress.map(|p| p.snapshot().0),
            n_copies: batch.n_copies,
        }
    }
}

/// The fields of 创建卡券. Only `quantity` is required (快速创建).
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "2026 中秋提货卡", "quantity": 1000, "prefix": "88", "number_length": 12, "numbering": "sequential", "start_number": 1, "password_length": 10, "password_charset": "digits", "face_value_fen": 29900, "valid_from": "2026-09-01", "valid_until": "2026-12-31", "remark": "中秋团购", "goods_ids": [3], "activate": false}))]
pub struct BatchRequest {
    #[schema(max_length = 64)]
    pub name: Option<String>,
    /// 卡号前缀.
    #[schema(max_length = 12)]
    pub prefix: Option<String>,
    /// 卡号长度: digits after the prefix (without a start number).
    #[schema(minimum = 4, maximum = 18)]
    pub number_length: Option<usize>,
    /// `sequential` (default) or `random`.
    #[schema(pattern = "^(sequential|random)$")]
    pub numbering: Option<String>,
    /// 起始号 for sequential numbering.
    pub start_number: Option<u64>,
    #[schema(minimum = 4, maximum = 32)]
    pub password_length: Option<usize>,
    /// 密码规则: `digits`, `letters`, `mixed` or `unambiguous` (default).
    #[schema(pattern = "^(digits|letters|mixed|unambiguous)$")]
    pub password_charset: Option<String>,
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub quantity: i64,
    #[schema(minimum = 0, maximum = 100_000_000)]
    pub face_value_fen: Option<i64>,
    /// `YYYY-MM-DD`, the first day the card can be used.
    pub valid_from: Option<String>,
    /// `YYYY-MM-DD`, the last day the card can be used.
    pub valid_until: Option<String>,
    #[schema(max_length = 200)]
    pub remark: Option<String>,
    /// 卡号状态: `true` activates the cards as soon as they exist.
    #[serde(default)]
    pub activate: bool,
    /// 对应商品: goods every card may be exchanged for (one of them).
    #[serde(default)]
    pub goods_ids: Vec<i64>,
}

impl BatchRequest {
    pub fn into_spec(self) -> ApiResult<BatchSpec> {
        let numbering = match self.numbering.as_deref().filter(|s| !s.is_empty()) {
            None => None,
            Some(code) => Some(
                Numbering::parse(code)
                    .ok_or_else(|| ApiError::invalid("卡号规格应为 sequential 或 random"))?,
            ),
        };
        let password_charset = match self.password_charset.as_deref().filter(|s| !s.is_empty()) {
            None => None,
            Some(code) => Some(PasswordCharset::parse(code).ok_or_else(|| {
                ApiError::invalid("密码规则应为 digits、letters、mixed 或 unambiguous")
            })?),
        };
        let fields = BatchFields {
            name: self.name,
            prefix: self.prefix,
            number_length: self.number_length,
            numbering,
            start_number: self.start_number,
            password_length: self.password_length,
            password_charset,
            quantity: self.quantity,
            face_value_fen: self.face_value_fen,
            valid_from: parse_optional_date(self.valid_from.as_deref(), "卡有效期开始", false)?,
            valid_until: parse_optional_date(self.valid_until.as_deref(), "卡有效期结束", true)?,
            remark: self.remark,
            activate: self.activate,
            goods_ids: self.goods_ids,
        };
        BatchSpec::new(fields).map_err(|errors| ApiError::Invalid(errors.join("；"), errors))
    }
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"bits": 33.2, "warnings": []}))]
pub struct StrengthDto {
    pub bits: f64,
    pub warnings: Vec<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"batch_id": 12, "n_cards": 1000, "state": "generating", "strength": {"bits": 33.2, "warnings": []}}))]
pub struct CreatedBatchDto {
    pub batch_id: i64,
    pub state: &'static str,
    pub n_cards: i64,
    pub strength: StrengthDto,
}

/// Refuses a batch the merchant's 预付卡政策 forbids, naming each rule.
async fn prepaid_policy(
    state: &AppState,
    authed: &Authed,
    face_value_fen: Option<i64>,
    valid_from: Option<i64>,
    valid_until: Option<i64>,
) -> ApiResult<()> {
    let broken = kaquan_core::prepaid::check(
        state.store.as_ref(),
        authed.merchant_id(),
        face_value_fen,
        valid_from,
        valid_until,
        crate::now(),
    )
    .await?;
    match broken.first() {
        None => Ok(()),
        Some(first) => Err(ApiError::Invalid(first.clone(), broken.clone())),
    }
}

/// Creates the batch and generates its cards on a background task.
pub async fn start_generation(
    state: &AppState,
    authed: &Authed,
    spec: BatchSpec,
) -> ApiResult<Batch> {
    authed.require(Permission::CardsCreate)?;
    prepaid_policy(
        state,
        authed,
        spec.face_value_fen,
        spec.valid_from,
        spec.valid_until,
    )
    .await?;
    let batch = usecases::start_generated_batch(
        state.store.as_ref(),
        authed.merchant_id(),
        &spec,
        &authed.staff.username,
        crate::now(),
    )
    .await?;
    let progress = Arc::new(BatchProgress::default());
    progress
        .total
        .store(spec.quantity, std::sync::atomic::Ordering::Relaxed);
    state
        .progress
        .lock()
        .expect("progress lock")
        .insert(batch.id, Arc::clone(&progress));
    let audit = authed.audit(
        "generate_batch",
        format!("batch={}", batch.id),
        spec.name.clone(),
    );
    let task_state = state.clone();
    let task_batch = batch.clone();
    tokio::spawn(async move {
        let result = usecases::fill_generated_batch(
            task_state.store.as_ref(),
            &task_state.master,
            &task_batch,
            &spec,
            audit,
            progress,
            crate::now(),
        )
        .await;
        match result {
            Ok(n_cards) => tracing::info!(batch.id = task_batch.id, n_cards, "batch generated"),
            Err(error) => {
                tracing::error!(batch.id = task_batch.id, error = %error, "batch generation failed")
            }
        }
        task_state
            .progress
            .lock()
            .expect("progress lock")
            .remove(&task_batch.id);
    });
    Ok(batch)
}

async fn create_batch(
    State(state): State<AppState>,
    authed: Authed,
    Json(body): Json<BatchRequest>,
) -> ApiResult<Response> {
    let spec = body.into_spec()?;
    let strength = spec.strength();
    let batch = start_generation(&state, &authed, spec).await?;
    let body = CreatedBatchDto {
        batch_id: batch.id,
        state: batch.state.code(),
        n_cards: batch.quantity,
        strength: StrengthDto {
            bits: strength.bits,
            warnings: strength.warnings,
        },
    };
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

async fn load_batches(
    state: &AppState,
    authed: &Authed,
    query: &PageQuery,
) -> ApiResult<ListDto<BatchDto>> {
    authed.require(Permission::CardsView)?;
    let page = ListPage::new(query.page, query.page_size);
    let (batches, total) = state.store.list_batches(authed.merchant_id(), page).await?;
    let progress = state.progress.lock().expect("progress lock").clone();
    let items = batches
        .iter()
        .map(|b| BatchDto::new(b, progress.get(&b.id).map(|p| p.as_ref())))
        .collect();
    Ok(ListDto::new(items, total, page))
}

async fn list_batches(
    State(state): State<AppState>,
    authed: Authed,
    Query(query): Query<PageQuery>,
) -> ApiResult<Json<ListDto<BatchDto>>> {
    Ok(Json(load_batches(&state, &authed, &query).await?))
}

async fn load_batch(state: &AppState, authed: &Authed, batch_id: i64) -> ApiResult<BatchDto> {
    authed.require(Permission::CardsView)?;
    let batch = state
        .store
        .get_batch(authed.merchant_id(), batch_id)
        .await?;
    let progress = state
        .progress
        .lock()
        .expect("progress lock")
        .get(&batch_id)
        .cloned();
    Ok(BatchDto::new(&batch, progress.as_deref()))
}

async fn get_batch(
    State(state): State<AppState>,
    authed: Authed,
    Path(batch_id): Path<i64>,
) -> ApiResult<Json<BatchDto>> {
    Ok(Json(load_batch(&state, &authed, batch_id).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"password_length": 10, "password_charset": "digits", "numbering": "sequential"}))]
pub struct StrengthRequest {
    pub password_length: usize,
    pub password_charset: String,
    pub numbering: Option<String>,
}

async fn estimate_password_strength(
    _authed: Authed,
    Json(body): Json<StrengthRequest>,
) -> ApiResult<Json<StrengthDto>> {
    let charset = PasswordCharset::parse(&body.password_charset)
        .ok_or_else(|| ApiError::invalid("未知的密码规则"))?;
    let numbering = Numbering::parse(body.numbering.as_deref().unwrap_or("sequential"))
        .ok_or_else(|| ApiError::invalid("未知的卡号规格"))?;
    let strength = password_strength(body.password_length, charset, numbering);
    Ok(Json(StrengthDto {
        bits: strength.bits,
        warnings: strength.warnings,
    }))
}

// ---- import ---------------------------------------------------------------

/// Column headers of the import template.
pub const IMPORT_HEADERS: [&str; 2] = ["卡号", "密码"];

async fn get_import_template(
    authed: Authed,
    Query(query): Query<FormatQuery>,
) -> ApiResult<Response> {
    authed.require(Permission::CardsCreate)?;
    let sample = [["A0000001", "K7M2Q9XP4T"], ["A0000002", "W3N8R5ZH6C"]];
    if query.format.as_deref() == Some("csv") {
        let mut text = String::from("\u{feff}");
        text.push_str(&IMPORT_HEADERS.join(","));
        text.push('\n');
        for row in sample {
            text.push_str(&row.join(","));
            text.push('\n');
        }
        return Ok(crate::exports::download(
            text.into_bytes(),
            "卡券导入模板.csv",
            "text/csv; charset=utf-8",
        ));
    }
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let sheet = workbook.add_worksheet();
    let write = |sheet: &mut rust_xlsxwriter::Worksheet, r: u32, c: u16, text: &str| {
        sheet
            .write_string(r, c, text)
            .map(|_| ())
            .map_err(|e| ApiError::Internal(e.to_string()))
    };
    for (c, h) in IMPORT_HEADERS.iter().enumerate() {
        write(sheet, 0, c as u16, h)?;
    }
    for (r, row) in sample.iter().enumerate() {
        for (c, v) in row.iter().enumerate() {
            write(sheet, r as u32 + 1, c as u16, v)?;
        }
    }
    // Both columns are text: Excel keeps only 15 digits of a number, so a
    // longer card number typed into a number cell would be rounded.
    let text = rust_xlsxwriter::Format::new().set_num_format("@");
    for column in 0..2 {
        sheet
            .set_column_width(column, 24)
            .and_then(|sheet| sheet.set_column_format(column, &text))
            .map_err(|e| ApiError::Internal(e.to_string()))?;
    }
    write(sheet, 0, 3, "说明：卡号和密码两列须为“文本”格式（本模板已设好）；数字格式超过 15 位会失真，这样的行会被拒绝。")?;
    let bytes = workbook
        .save_to_buffer()
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(crate::exports::download(
        bytes,
        "卡券导入模板.xlsx",
        crate::exports::XLSX_CONTENT_TYPE,
    ))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FormatQuery {
    /// `xlsx` (the default) or `csv`.
    #[param(pattern = "^(|xlsx|csv)$", example = "xlsx")]
    pub format: Option<String>,
}

/// The multipart fields of an import: `file`, plus optional batch fields.
#[derive(Default)]
struct ImportUpload {
    file_name: String,
    bytes: Vec<u8>,
    name: String,
    face_value: String,
    valid_from: String,
    valid_until: String,
    remark: String,
    csrf: String,
}

async fn read_upload(mut multipart: Multipart) -> ApiResult<ImportUpload> {
    let mut upload = ImportUpload::default();
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|_| ApiError::invalid("上传的表单无法解析（文件过大？）"))?
    {
        let name = field.name().unwrap_or("").to_owned();
        if name == "file" {
            upload.file_name = field.file_name().unwrap_or("").to_owned();
            upload.bytes = field
                .bytes()
                .await
                .map_err(|_| ApiError::invalid("文件上传不完整"))?
                .to_vec();
            continue;
        }
        let text = field
            .text()
            .await
            .map_err(|_| ApiError::invalid("表单字段无法读取"))?;
        crate::extract::check_text(&name, &text)?;
        match name.as_str() {
            "name" => upload.name = text,
            "face_value_fen" => {
                upload.face_value = format_yuan(
                    text.trim()
                        .parse()
                        .map_err(|_| ApiError::invalid("卡券面值应为整数（分）"))?,
                )
            }
            "face_value_yuan" => upload.face_value = text,
            "valid_from" => upload.valid_from = text,
            "valid_until" => upload.valid_until = text,
            "remark" => upload.remark = text,
            "csrf" => upload.csrf = text,
            other => return Err(crate::extract::unknown_field(other)),
        }
    }
    if upload.bytes.is_empty() {
        return Err(ApiError::invalid("请选择要导入的文件"));
    }
    Ok(upload)
}

async fn run_import(state: &AppState, authed: &Authed, upload: &ImportUpload) -> ApiResult<Batch> {
    authed.require(Permission::CardsCreate)?;
    let (file_name, bytes) = (upload.file_name.clone(), upload.bytes.clone());
    let rows =
        crate::off_runtime(move || crate::tables::parse_import_file(&file_name, &bytes)).await??;
    let cards =
        usecases::validate_import(state.store.as_ref(), authed.merchant_id(), &rows).await?;
    let face_value_fen = match upload.face_value.trim() {
        "" => None,
        text => Some(parse_yuan(text).ok_or_else(|| ApiError::invalid("卡券面值格式不对"))?),
    };
    let fields = ImportFields {
        name: upload.name.clone(),
        face_value_fen,
        valid_from: parse_optional_date(Some(&upload.valid_from), "卡有效期开始", false)?,
        valid_until: parse_optional_date(Some(&upload.valid_until), "卡有效期结束", true)?,
        remark: upload.remark.trim().to_owned(),
    };
    prepaid_policy(
        state,
        authed,
        face_value_fen,
        fields.valid_from,
        fields.valid_until,
    )
    .await?;
    let audit = authed.audit(
        "import_batch",
        upload.file_name.clone(),
        format!("{} rows", cards.len()),
    );
    Ok(usecases::import_batch(
        state.store.as_ref(),
        &state.master,
        authed.merchant_id(),
        &fields,
        cards,
        audit,
        crate::now(),
    )
    .await?)
}

async fn import_batch(
    State(state): State<AppState>,
    authed: Authed,
    multipart: Multipart,
) -> ApiResult<Response> {
    let upload = read_upload(multipart).await?;
    let batch = run_import(&state, &authed, &upload).await?;
    Ok((StatusCode::CREATED, Json(BatchDto::new(&batch, None))).into_response())
}

// ---- console pages ----------------------------------------------------------

async fn batches_page(
    State(state): State<AppState>,
    authed: Authed,
    Query(query): Query<crate::forms::MsgQuery>,
) -> PageResult {
    let list = load_batches(
        &state,
        &authed,
        &PageQuery {
            page: query.page,
            page_size: None,
        },
    )
    .await?;
    let ids: Vec<i64> = list.items.iter().map(|b| b.id).collect();
    let counts = state
        .store
        .batch_card_counts(authed.merchant_id(), &ids)
        .await?;
    let rows = list
        .items
        .into_iter()
        .zip(counts)
        .map(|(batch, counts)| BatchRow {
            counts: CountsView::from(counts),
            batch,
        })
        .collect();
    let view = BatchesView {
        rows,
        total: list.total,
        page: list.page,
        page_size: list.page_size,
    };
    Ok(render(
        &state,
        "batches.html",
        &Page::new("批次", &authed).with_message(query.msg),
        view,
    ))
}

/// A batch's cards by state, as the console shows them.
#[derive(Serialize)]
struct CountsView {
    inactive: i64,
    active: i64,
    used: i64,
    voided: i64,
    /// Activated: sold and in circulation (active or used).
    activated: i64,
}

impl From<kaquan_core::batch::BatchCardCounts> for CountsView {
    fn from(c: kaquan_core::batch::BatchCardCounts) -> Self {
        Self {
            inactive: c.inactive,
            active: c.active,
            used: c.used,
            voided: c.voided,
            activated: c.active + c.used,
        }
    }
}

#[derive(Serialize)]
struct BatchRow {
    batch: BatchDto,
    counts: CountsView,
}

#[derive(Serialize)]
struct BatchesView {
    rows: Vec<BatchRow>,
    total: i64,
    page: i64,
    page_size: i64,
}

/// 批次 page: the print shop's hub.
#[derive(Serialize)]
struct BatchView {
    b: BatchDto,
    numbering_label: &'static str,
    charset_label: &'static str,
    source_label: &'static str,
    counts: CountsView,
    goods: Vec<String>,
    /// Why QR codes exported now would not open on a phone.
    qr_problem: Option<&'static str>,
    /// 印刷厂 an export with passwords can be sealed to.
    print_shops: Vec<(i64, String)>,
}

#[derive(Serialize)]
struct NewBatchView {
    charsets: Vec<(&'static str, &'static str, usize)>,
    quantity_max: i64,
    error: Option<String>,
    goods: Vec<(i64, String)>,
}

async fn new_batch_page(State(state): State<AppState>, authed: Authed) -> PageResult {
    authed.require(Permission::CardsCreate)?;
    Ok(new_batch_view(&state, &authed, None).await?)
}

async fn new_batch_view(
    state: &AppState,
    authed: &Authed,
    error: Option<String>,
) -> ApiResult<Response> {
    let charsets = PasswordCharset::ALL
        .iter()
        .map(|c| (c.code(), c.label_zh(), c.alphabet().len()))
        .collect();
    let goods = state
        .store
        .list_goods(authed.merchant_id(), true)
        .await?
        .into_iter()
        .map(|g| (g.id, g.name))
        .collect();
    let view = NewBatchView {
        charsets,
        quantity_max: BATCH_QUANTITY_MAX,
        error,
        goods,
    };
    Ok(render(
        state,
        "batch_new.html",
        &Page::new("创建卡券", authed),
        view,
    ))
}

/// 创建卡券 as the console form posts it: every field a string.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchForm {
    csrf: String,
    name: Option<String>,
    prefix: Option<String>,
    number_length: Option<String>,
    numbering: Option<String>,
    start_number: Option<String>,
    password_length: Option<String>,
    password_charset: Option<String>,
    quantity: String,
    face_value_yuan: Option<String>,
    valid_from: Option<String>,
    valid_until: Option<String>,
    remark: Option<String>,
    /// The 生成后立即激活 checkbox.
    activate: Option<String>,
}

fn parse_number<T: std::str::FromStr>(text: Option<&str>, field: &str) -> ApiResult<Option<T>> {
    match text.map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(t) => t
            .parse()
            .map(Some)
            .map_err(|_| ApiError::invalid(format!("{field}应为整数"))),
    }
}

impl BatchForm {
    fn into_request(self) -> ApiResult<BatchRequest> {
        Ok(BatchRequest {
            name: self.name,
            prefix: self.prefix,
            number_length: parse_number(self.number_length.as_deref(), "卡号长度")?,
            numbering: self.numbering,
            start_number: parse_number(self.start_number.as_deref(), "起始号")?,
            password_length: parse_number(self.password_length.as_deref(), "密码长度")?,
            password_charset: self.password_charset,
            quantity: parse_number(Some(&self.quantity), "生成数量")?
                .ok_or_else(|| ApiError::invalid("请填写生成数量"))?,
            face_value_fen: match self
                .face_value_yuan
                .as_deref()
                .map(str::trim)
                .filter(|t| !t.is_empty())
            {
                None => None,
                Some(t) => Some(
                    parse_yuan(t)
                        .ok_or_else(|| ApiError::invalid("卡券面值格式不对（元，最多两位小数）"))?,
                ),
            },
            valid_from: self.valid_from,
            valid_until: self.valid_until,
            remark: self.remark,
            activate: self.activate.is_some(),
            goods_ids: Vec::new(),
        })
    }
}

async fn create_batch_form(
    State(state): State<AppState>,
    authed: Authed,
    crate::extract::FormText(body): crate::extract::FormText,
) -> PageResult {
    let pairs = crate::forms::FormPairs::parse_any(&body)?;
    let form: BatchForm = crate::extract::parse_urlencoded(&pairs.without("goods_id"))?;
    authed.check_form_csrf(&form.csrf)?;
    authed.require(Permission::CardsCreate)?;
    // The 对应商品 checkboxes repeat one key, which a struct cannot hold.
    let goods_ids = pairs.ids("goods_id")?;
    let spec = match form.into_request().and_then(|request| {
        BatchRequest {
            goods_ids,
            ..request
        }
        .into_spec()
    }) {
        Ok(spec) => spec,
        Err(error) => {
            let mut response =
                new_batch_view(&state, &authed, Some(error.public_message())).await?;
            *response.status_mut() = error.status();
            return Ok(response);
        }
    };
    let batch = start_generation(&state, &authed, spec).await?;
    Ok(Redirect::to(&format!("/batches/{}", batch.id)).into_response())
}

async fn batch_page(
    State(state): State<AppState>,
    authed: Authed,
    Path(batch_id): Path<i64>,
) -> PageResult {
    let b = load_batch(&state, &authed, batch_id).await?;
    let m = authed.merchant_id();
    let batch = state.store.get_batch(m, batch_id).await?;
    let counts = state
        .store
        .batch_card_counts(m, &[batch_id])
        .await?
        .remove(0);
    // 对应商品 as the batch's first card has them (a batch is made with one set).
    let first = kaquan_core::card::CardFilter {
        batch_id: Some(batch_id),
        ..Default::default()
    };
    let goods = match state
        .store
        .list_cards(m, &first, ListPage::new(Some(1), Some(1)))
        .await?
        .first()
    {
        Some(card) => state.store.goods_of_card(m, card.id).await?,
        None => Vec::new(),
    };
    let view = BatchView {
        numbering_label: batch.numbering.label_zh(),
        charset_label: batch.password_charset.label_zh(),
        source_label: match batch.source {
            kaquan_core::batch::BatchSource::Generated => "系统生成",
            kaquan_core::batch::BatchSource::Imported => "导入",
        },
        counts: CountsView::from(counts),
        goods: goods.into_iter().map(|g| g.name).collect(),
        qr_problem: crate::exports::public_url_problem(&state.public_url_for(m).await?),
        print_shops: match authed.can(kaquan_core::auth::Permission::CardsExportSecrets) {
            true => state
                .store
                .list_print_shops(m)
                .await?
                .into_iter()
                .map(|s| (s.id, s.name))
                .collect(),
            false => Vec::new(),
        },
        b,
    };
    Ok(render(
        &state,
        "batch.html",
        &Page::new(&format!("批次 {}", batch_id), &authed),
        view,
    ))
}

#[derive(Serialize, Default)]
struct ImportView {
    error: Option<String>,
    rows: Vec<crate::error::RowErrorDto>,
    batch: Option<BatchDto>,
}

async fn import_page(State(state): State<AppState>, authed: Authed) -> PageResult {
    authed.require(Permission::CardsCreate)?;
    Ok(render(
        &state,
        "import.html",
        &Page::new("卡券导入", &authed),
        ImportView::default(),
    ))
}

async fn import_form(
    State(state): State<AppState>,
    authed: Authed,
    multipart: Multipart,
) -> PageResult {
    let upload = read_upload(multipart).await.map_err(PageError)?;
    authed.check_form_csrf(&upload.csrf)?;
    let page = Page::new("卡券导入", &authed);
    let (view, status) = match run_import(&state, &authed, &upload).await {
        Ok(batch) => (
            ImportView {
                batch: Some(BatchDto::new(&batch, None)),
                ..Default::default()
            },
            StatusCode::OK,
        ),
        Err(error) => {
            let status = error.status();
            let rows = match &error {
                ApiError::ImportRows(rows) => rows
                    .iter()
                    .map(|r| crate::error::RowErrorDto {
                        line: r.line,
                        message: r.message.clone(),
                    })
                    .collect(),
                _ => Vec::new(),
            };
            (
                ImportView {
                    error: Some(error.public_message()),
                    rows,
                    batch: None,
                },
                status,
            )
        }
    };
    let mut response = render(&state, "import.html", &page, view);
    *response.status_mut() = status;
    Ok(response)
}

/// The batch drop-down of the card and order filters: the newest batches
/// as `(id, "id · name")`, and `chosen` too when it is an older one, so the
/// filter shows what it applies.
pub(crate) async fn batch_choices(
    state: &AppState,
    merchant_id: i64,
    chosen: &str,
) -> ApiResult<Vec<(i64, String)>> {
    let newest = ListPage::new(Some(1), Some(kaquan_core::store::PAGE_SIZE_MAX));
    let (batches, _) = state.store.list_batches(merchant_id, newest).await?;
    let mut choices: Vec<(i64, String)> = batches
        .into_iter()
        .map(|b| (b.id, format!("{} · {}", b.id, b.name)))
        .collect();
    if let Ok(id) = chosen.trim().parse::<i64>() {
        if !choices.iter().any(|(b, _)| *b == id) {
            choices.push((id, id.to_string()));
        }
    }
    Ok(choices)
}
