//! 电子卡密's console API: 虚拟商品 (`/api/v1/ecard-products`) with their
//! marketplace listings, and 卡密库存 (`/api/v1/ecard-stock`): the import
//! template, imports all or nothing with a per-row report, kaquan's own
//! generated codes, the masked list and an audited reveal.

use crate::auth::Authed;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Multipart, Path, Query};
use crate::lists::ListDto;
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use kaquan_core::auth::Permission;
use kaquan_core::batch::usecases::RowError;
use kaquan_core::clock::{end_of_day, format_date, parse_date};
use kaquan_core::ecard::usecases::{
    self, generate_stock_codes, open_stock, ImportOutcome, ImportRequest,
};
use kaquan_core::ecard::{
    DeliveryForm, EcardProduct, EcardProductFields, EcardValidity, Listing, Marketplace,
    StockCounts, StockFilter, StockImport, StockItem, StockState,
};
use kaquan_core::money::parse_yuan;
use kaquan_core::store::Page as ListPage;
use serde::{Deserialize, Serialize};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/ecard-products",
            get(list_ecard_products).post(create_ecard_product),
        )
        .route(
            "/api/v1/ecard-products/{product_id}",
            get(get_ecard_product).put(update_ecard_product),
        )
        .route(
            "/api/v1/ecard-products/{product_id}/stock",
            post(create_ecard_stock_import),
        )
        .route(
            "/api/v1/ecard-products/{product_id}/stock/generate",
            post(create_ecard_stock_codes),
        )
        .route(
            "/api/v1/ecard-products/{product_id}/imports",
            get(list_ecard_stock_imports),
        )
        .route("/api/v1/ecard-stock", get(list_ecard_stock))
        .route(
            "/api/v1/ecard-stock/template",
            get(get_ecard_stock_template),
        )
        .route(
            "/api/v1/ecard-stock/{stock_id}/reveal",
            post(create_ecard_stock_reveal),
        )
}

/// Most codes one generation makes.
pub const GENERATE_CODES_MAX: i64 = 100_000;

#[derive(Deserialize, Serialize, Clone, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ListingDto {
    /// `pinduoduo`, `taobao`, `douyin`, `xianyu` or `own`.
    pub marketplace: String,
    #[schema(min_length = 1, max_length = 64)]
    pub product_id: String,
    /// Empty when the listing has one SKU.
    #[schema(max_length = 64)]
    #[serde(default)]
    pub sku_id: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "视频会员月卡", "face_value_yuan": "19.90", "delivery_form": "number_password", "instructions": "打开视频 App → 我的 → 兑换会员，输入卡号和密码", "valid_days": 30, "own_verification_code": false, "low_stock_threshold": 20, "listings": [{"marketplace": "pinduoduo", "product_id": "pdd-100", "sku_id": ""}], "remind_days": 3, "refund_expired": false}))]
pub struct EcardProductRequest {
    #[schema(min_length = 1, max_length = 60)]
    pub name: String,
    /// 面值 in yuan, e.g. `19.90`.
    pub face_value_yuan: String,
    /// `number_password` (卡号+密码), `code` (兑换码), `link` (兑换链接) or
    /// `qr_image` (二维码: the code shown as a QR).
    pub delivery_form: String,
    /// 兑换说明 shown on the delivery page: how and where to redeem.
    #[schema(min_length = 1, max_length = 2000)]
    pub instructions: String,
    /// Valid this many days from delivery (1–3650); or give `valid_until`.
    pub valid_days: Option<i64>,
    /// A fixed last day, `YYYY-MM-DD` (merchant-local).
    pub valid_until: Option<String>,
    /// kaquan issues its own verification code (核销码) per delivered card.
    #[serde(default)]
    pub own_verification_code: bool,
    /// 低库存预警: `ecard.low_stock` fires when available stock falls to it (0: off).
    #[serde(default)]
    pub low_stock_threshold: i64,
    #[serde(default)]
    pub listings: Vec<ListingDto>,
    /// 过期预警: days before its end an unused card's buyer is reminded
    /// once (SMS I and `ecard.expiring`); 0 (default) never.
    #[serde(default)]
    pub remind_days: i64,
    /// An unused card past its end raises `ecard.expired` for the
    /// merchant's system to refund.
    #[serde(default)]
    pub refund_expired: bool,
}

#[derive(Serialize, Default, utoipa::ToSchema)]
pub struct StockCountsDto {
    pub available: i64,
    pub delivered: i64,
    pub used: i64,
    pub expired: i64,
    pub voided: i64,
}

impl From<StockCounts> for StockCountsDto {
    fn from(c: StockCounts) -> Self {
        Self {
            available: c.available,
            delivered: c.delivered,
            used: c.used,
            expired: c.expired,
            voided: c.voided,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": 3, "name": "视频会员月卡", "face_value_fen": 1990, "delivery_form": "number_password", "delivery_form_label": "卡号+密码", "instructions": "打开视频 App → 我的 → 兑换会员", "valid_days": 30, "valid_until": null, "own_verification_code": false, "low_stock_threshold": 20, "listings": [{"marketplace": "pinduoduo", "product_id": "pdd-100", "sku_id": ""}], "remind_days": 3, "refund_expired": false, "stock": {"available": 120, "delivered": 30, "used": 12, "expired": 1, "voided": 0}, "created_at": 1796100000, "updated_at": 1796100000}))]
pub struct EcardProductDto {
    pub id: i64,
    pub name: String,
    pub face_value_fen: i64,
    pub delivery_form: &'static str,
    pub delivery_form_label: &'static str,
    pub instructions: String,
    pub valid_days: Option<i64>,
    /// `YYYY-MM-DD`.
    pub valid_until: Option<String>,
    pub own_verification_code: bool,
    pub low_stock_threshold: i64,
    pub listings: Vec<ListingDto>,
    pub remind_days: i64,
    pub refund_expired: bool,
    pub stock: Option<StockCountsDto>,
    pub created_at: i64,
    pub updated_at: i64,
}

pub(crate) fn product_dto(p: &EcardProduct, counts: Option<StockCounts>) -> EcardProductDto {
    let f = &p.fields;
    let (valid_days, valid_until) = match f.validity {
        EcardValidity::DaysAfterDelivery(days) => (Some(days), None),
        EcardValidity::Until(end) => (None, Some(format_date(end))),
    };
    EcardProductDto {
        id: p.id,
        name: f.name.clone(),
        face_value_fen: f.face_value_fen,
        delivery_form: f.delivery_form.code(),
        delivery_form_label: f.delivery_form.label_zh(),
        instructions: f.instructions.clone(),
        valid_days,
        valid_until,
        own_verification_code: f.own_verification_code,
        low_stock_threshold: p.low_stock_threshold,
        listings: f
            .listings
            .iter()
            .map(|l| ListingDto {
                marketplace: l.marketplace.code().into(),
                product_id: l.product_id.clone(),
                sku_id: l.sku_id.clone(),
            })
            .collect(),
        remind_days: f.remind_days,
        refund_expired: f.refund_expired,
        stock: counts.map(StockCountsDto::from),
        created_at: p.created_at,
        updated_at: p.updated_at,
    }
}

/// The product a request describes, every problem reported at once.
pub(crate) fn product_fields(r: &EcardProductRequest) -> ApiResult<(EcardProductFields, i64)> {
    let mut errors = Vec::new();
    let face_value_fen = parse_yuan(r.face_value_yuan.trim()).unwrap_or_else(|| {
        errors.push("面值应为金额，如 19.90".to_owned());
        0
    });
    let delivery_form = DeliveryForm::parse(&r.delivery_form).unwrap_or_else(|| {
        errors.push("发货形式应为 number_password、code、link 或 qr_image".to_owned());
        DeliveryForm::Code
    });
    let until = r
        .valid_until
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let validity = match (r.valid_days, until) {
        (Some(days), None) => EcardValidity::DaysAfterDelivery(days),
        (None, Some(date)) => match parse_date(date) {
            Some(date) => EcardValidity::Until(end_of_day(date)),
            None => {
                errors.push("有效期截止日应为 YYYY-MM-DD".to_owned());
                EcardValidity::DaysAfterDelivery(1)
            }
        },
        _ => {
            errors.push("有效期：请填写发货后有效天数或截止日期（二选一）".to_owned());
            EcardValidity::DaysAfterDelivery(1)
        }
    };
    if !(0..=1_000_000).contains(&r.low_stock_threshold) {
        errors.push("低库存预警须为 0–1000000".to_owned());
    }
    let mut listings = Vec::new();
    for l in &r.listings {
        match Marketplace::parse(&l.marketplace) {
            Some(marketplace) => listings.push(Listing {
                marketplace,
                product_id: l.product_id.trim().to_owned(),
                sku_id: l.sku_id.trim().to_owned(),
            }),
            None => errors.push(format!("未知的平台 {}", l.marketplace)),
        }
    }
    let fields = EcardProductFields {
        name: r.name.trim().to_owned(),
        face_value_fen,
        delivery_form,
        instructions: r.instructions.trim().to_owned(),
        validity,
        own_verification_code: r.own_verification_code,
        listings,
        remind_days: r.remind_days,
        refund_expired: r.refund_expired,
    };
    if let Err(more) = fields.check() {
        errors.extend(more);
    }
    if errors.is_empty() {
        Ok((fields, r.low_stock_threshold))
    } else {
        Err(ApiError::Invalid(errors.join("；"), errors))
    }
}

/// Every product with its stock counts, as the list shows them.
pub(crate) async fn products_with_counts(
    state: &AppState,
    authed: &Authed,
) -> ApiResult<Vec<EcardProductDto>> {
    authed.require(Permission::EcardsManage)?;
    let (m, now) = (authed.merchant_id(), crate::now());
    let mut products = Vec::new();
    for p in state.store.list_ecard_products(m).await? {
        let counts = state.store.ecard_stock_counts(m, p.id, now).await?;
        products.push(product_dto(&p, Some(counts)));
    }
    Ok(products)
}

async fn list_ecard_products(
    State(state): State<AppState>,
    authed: Authed,
) -> ApiResult<Json<Vec<EcardProductDto>>> {
    Ok(Json(products_with_counts(&state, &authed).await?))
}

pub(crate) async fn create_product(
    state: &AppState,
    authed: &Authed,
    request: &EcardProductRequest,
) -> ApiResult<EcardProduct> {
    authed.require(Permission::EcardsManage)?;
    let (fields, threshold) = product_fields(request)?;
    match state
        .store
        .create_ecard_product(
            authed.merchant_id(),
            &fields,
            threshold,
            &authed.actor(),
            crate::now(),
        )
        .await
    {
        Err(kaquan_core::StoreError::Conflict(_)) => Err(ApiError::Conflict(
            "有平台商品已对应另一个虚拟商品（同一平台商品 ID 与 SKU 只能对应一个）".into(),
        )),
        other => Ok(other?),
    }
}

async fn create_ecard_product(
    State(state): State<AppState>,
    authed: Authed,
    Json(request): Json<EcardProductRequest>,
) -> ApiResult<(StatusCode, Json<EcardProductDto>)> {
    let product = create_product(&state, &authed, &request).await?;
    Ok((StatusCode::CREATED, Json(product_dto(&product, None))))
}

async fn get_ecard_product(
    State(state): State<AppState>,
    authed: Authed,
    Path(product_id): Path<i64>,
) -> ApiResult<Json<EcardProductDto>> {
    authed.require(Permission::EcardsManage)?;
    let m = authed.merchant_id();
    let product = state.store.get_ecard_product(m, product_id).await?;
    let counts = state
        .store
        .ecard_stock_counts(m, product_id, crate::now())
        .await?;
    Ok(Json(product_dto(&product, Some(counts))))
}

pub(crate) async fn update_product(
    state: &AppState,
    authed: &Authed,
    product_id: i64,
    request: &EcardProductRequest,
) -> ApiResult<EcardProduct> {
    authed.require(Permission::EcardsManage)?;
    let (fields, low_stock_threshold) = product_fields(request)?;
    let before = state
        .store
        .get_ecard_product(authed.merchant_id(), product_id)
        .await?;
    let product = EcardProduct {
        fields,
        low_stock_threshold,
        updated_at: crate::now(),
        ..before
    };
    match state
        .store
        .update_ecard_product(&product, &authed.actor())
        .await
    {
        Err(kaquan_core::StoreError::Conflict(_)) => Err(ApiError::Conflict(
            "有平台商品已对应另一个虚拟商品（同一平台商品 ID 与 SKU 只能对应一个）".into(),
        )),
        other => Ok(other?),
    }
}

async fn update_ecard_product(
    State(state): State<AppState>,
    authed: Authed,
    Path(product_id): Path<i64>,
    Json(request): Json<EcardProductRequest>,
) -> ApiResult<Json<EcardProductDto>> {
    let product = update_product(&state, &authed, product_id, &request).await?;
    Ok(Json(product_dto(&product, None)))
}

// ---- stock -------------------------------------------------------------------

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": 4, "product_id": 3, "file_name": "卡密.xlsx", "file_sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "n_rows": 3, "n_imported": 2, "created_by": "owner", "created_at": 1796100000}))]
pub struct StockImportDto {
    pub id: i64,
    pub product_id: i64,
    pub file_name: String,
    /// SHA-256 of the file as uploaded, hex.
    pub file_sha256: String,
    pub n_rows: i64,
    pub n_imported: i64,
    pub created_by: String,
    pub created_at: i64,
}

pub(crate) fn import_dto(i: &StockImport) -> StockImportDto {
    StockImportDto {
        id: i.id,
        product_id: i.product_id,
        file_name: i.file_name.clone(),
        file_sha256: i.file_digest.clone(),
        n_rows: i.n_rows,
        n_imported: i.n_imported,
        created_by: i.created_by.clone(),
        created_at: i.created_at,
    }
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"import": {"id": 4, "product_id": 3, "file_name": "卡密.xlsx", "file_sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "n_rows": 3, "n_imported": 2, "created_by": "owner", "created_at": 1796100000}, "skipped": [{"line": 4, "message": "与文件中前面的行重复"}]}))]
pub struct StockImportResultDto {
    pub import: StockImportDto,
    /// Rows left out as duplicates (within the file or of stock already
    /// held), by the file's line.
    pub skipped: Vec<SkippedRowDto>,
}

/// A row an import left out.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SkippedRowDto {
    /// The file's line (the header is line 1).
    pub line: usize,
    pub message: String,
}

/// The template's header: 卡号 (for 卡号+密码; may stay empty otherwise)
/// and 卡密 (the password, the code or the link).
pub const TEMPLATE_HEADER: [&str; 2] = ["卡号", "卡密（密码/兑换码/兑换链接）"];

/// Rows of an uploaded table as (line, number, secret): the header line
/// (its first cell 卡号) is skipped.
pub fn stock_rows(
    file_name: &str,
    bytes: &[u8],
    limits: crate::tables::TableLimits,
) -> ApiResult<Vec<(usize, String, String)>> {
    let rows = crate::tables::parse_rows_within(file_name, bytes, 2, limits)?;
    Ok(rows
        .into_iter()
        .filter(|(line, cells)| !(*line == 1 && cells[0].trim() == TEMPLATE_HEADER[0]))
        .map(|(line, mut cells)| {
            let secret = cells.swap_remove(1).trim().to_owned();
            (line, cells.swap_remove(0).trim().to_owned(), secret)
        })
        .collect())
}

/// Imports rows into a product's stock; a refusal lists every wrong row
/// by its line in the file.
pub(crate) async fn import_rows(
    state: &AppState,
    authed: &Authed,
    product_id: i64,
    (file_name, file_digest): (String, String),
    rows: Vec<(usize, String, String)>,
) -> ApiResult<StockImportResultDto> {
    authed.require(Permission::EcardsManage)?;
    let m = authed.merchant_id();
    let key_version = state.store.get_merchant(m).await?.key_version;
    let lines: Vec<usize> = rows.iter().map(|(line, _, _)| *line).collect();
    let line_of = |row: usize| {
        row.checked_sub(1)
            .and_then(|i| lines.get(i))
            .copied()
            .unwrap_or(0)
    };
    let actor = authed.actor();
    let request = ImportRequest {
        merchant_id: m,
        key_version,
        product_id,
        file_name,
        file_digest,
        rows: rows.into_iter().map(|(_, n, s)| (n, s)).collect(),
        actor: &actor,
        now: crate::now(),
        progress: None,
    };
    match usecases::import_stock(state.store.as_ref(), &state.master, request).await {
        Ok(ImportOutcome::Stored { import, skipped }) => Ok(StockImportResultDto {
            import: import_dto(&import),
            skipped: skipped
                .into_iter()
                .map(|r| SkippedRowDto {
                    line: line_of(r.row),
                    message: r.message,
                })
                .collect(),
        }),
        Ok(ImportOutcome::Refused(wrong)) if wrong.len() == 1 && wrong[0].row == 0 => {
            Err(ApiError::invalid(wrong[0].message.clone()))
        }
        Ok(ImportOutcome::Refused(wrong)) => Err(ApiError::ImportRows(
            wrong
                .into_iter()
                .map(|r| RowError {
                    line: line_of(r.row),
                    message: r.message,
                })
                .collect(),
        )),
        Err(kaquan_core::StoreError::Conflict(_)) => Err(ApiError::Conflict(
            "导入期间有相同卡密入库，请重新导入".into(),
        )),
        Err(e) => Err(e.into()),
    }
}

/// An uploaded stock file: its name and bytes.
pub(crate) async fn read_stock_upload(
    mut multipart: Multipart,
) -> ApiResult<(String, Vec<u8>, String)> {
    let (mut file_name, mut bytes, mut csrf) = (String::new(), Vec::new(), String::new());
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|_| ApiError::invalid("上传的表单无法解析（文件过大？）"))?
    {
        match field.name().unwrap_or("") {
            "file" => {
                file_name = field.file_name().unwrap_or("").to_owned();
                bytes = field
                    .bytes()
                    .await
                    .map_err(|_| ApiError::invalid("文件上传不完整"))?
                    .to_vec();
            }
            "csrf" => {
                csrf = field
                    .text()
                    .await
                    .map_err(|_| ApiError::invalid("表单字段无法读取"))?
            }
            other => return Err(crate::extract::unknown_field(other)),
        }
    }
    if bytes.is_empty() {
        return Err(ApiError::invalid("请选择要导入的文件"));
    }
    Ok((file_name, bytes, csrf))
}

pub(crate) async fn import_upload(
    state: &AppState,
    authed: &Authed,
    product_id: i64,
    (file_name, bytes): (String, Vec<u8>),
) -> ApiResult<StockImportResultDto> {
    authed.require(Permission::EcardsManage)?;
    let digest = kaquan_core::signing::body_hash_hex(&bytes);
    let name = file_name.clone();
    let limits = crate::tables::TableLimits::UPLOAD;
    let rows = crate::off_runtime(move || stock_rows(&name, &bytes, limits)).await??;
    import_rows(state, authed, product_id, (file_name, digest), rows).await
}

async fn create_ecard_stock_import(
    State(state): State<AppState>,
    authed: Authed,
    Path(product_id): Path<i64>,
    multipart: Multipart,
) -> ApiResult<(StatusCode, Json<StockImportResultDto>)> {
    let (file_name, bytes, _) = read_stock_upload(multipart).await?;
    let result = import_upload(&state, &authed, product_id, (file_name, bytes)).await?;
    Ok((StatusCode::CREATED, Json(result)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"count": 100}))]
pub struct GenerateCodesRequest {
    /// How many codes kaquan makes (1–100000): 16 letters and digits, the
    /// product's secrets, verified by kaquan itself.
    pub count: i64,
}

pub(crate) async fn generate_codes(
    state: &AppState,
    authed: &Authed,
    product_id: i64,
    count: i64,
) -> ApiResult<StockImportResultDto> {
    authed.require(Permission::EcardsManage)?;
    if !(1..=GENERATE_CODES_MAX).contains(&count) {
        return Err(ApiError::invalid(format!(
            "数量须为 1–{GENERATE_CODES_MAX}"
        )));
    }
    let product = state
        .store
        .get_ecard_product(authed.merchant_id(), product_id)
        .await?;
    if product.fields.delivery_form == DeliveryForm::NumberAndPassword
        || product.fields.delivery_form == DeliveryForm::Link
    {
        return Err(ApiError::invalid(
            "只有兑换码或二维码形式的商品可以由系统生成卡密",
        ));
    }
    let codes = crate::off_runtime(move || generate_stock_codes(count as usize)).await?;
    let rows = codes
        .into_iter()
        .enumerate()
        .map(|(i, code)| (i + 1, String::new(), code))
        .collect();
    let source = ("generated".to_owned(), String::new());
    import_rows(state, authed, product_id, source, rows).await
}

async fn create_ecard_stock_codes(
    State(state): State<AppState>,
    authed: Authed,
    Path(product_id): Path<i64>,
    Json(request): Json<GenerateCodesRequest>,
) -> ApiResult<(StatusCode, Json<StockImportResultDto>)> {
    let result = generate_codes(&state, &authed, product_id, request.count).await?;
    Ok((StatusCode::CREATED, Json(result)))
}

async fn list_ecard_stock_imports(
    State(state): State<AppState>,
    authed: Authed,
    Path(product_id): Path<i64>,
) -> ApiResult<Json<Vec<StockImportDto>>> {
    authed.require(Permission::EcardsManage)?;
    let imports = state
        .store
        .list_stock_imports(authed.merchant_id(), product_id)
        .await?;
    Ok(Json(imports.iter().map(import_dto).collect()))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StockQuery {
    pub product_id: Option<i64>,
    /// `available`, `delivered` or `voided`.
    #[param(pattern = "^(|available|delivered|voided)$")]
    pub state: Option<String>,
    #[param(minimum = 1)]
    pub page: Option<i64>,
    #[param(minimum = 1, maximum = 200)]
    pub page_size: Option<i64>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": 120, "product_id": 3, "import_id": 4, "masked": "••••3456", "state": "available", "state_label": "可用", "created_at": 1796100000}))]
pub struct StockItemDto {
    pub id: i64,
    pub product_id: i64,
    pub import_id: i64,
    /// Masked: `••••` and the last four characters.
    pub masked: String,
    pub state: &'static str,
    pub state_label: &'static str,
    pub created_at: i64,
}

pub(crate) fn stock_dto(i: &StockItem) -> StockItemDto {
    StockItemDto {
        id: i.id,
        product_id: i.product_id,
        import_id: i.import_id,
        masked: format!("••••{}", i.tail),
        state: i.state.code(),
        state_label: i.state.label_zh(),
        created_at: i.created_at,
    }
}

pub(crate) async fn stock_page(
    state: &AppState,
    authed: &Authed,
    query: &StockQuery,
) -> ApiResult<ListDto<StockItemDto>> {
    authed.require(Permission::EcardsManage)?;
    let stock_state = match query.state.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(code) => Some(
            StockState::parse(code)
                .ok_or_else(|| ApiError::invalid("state 应为 available、delivered 或 voided"))?,
        ),
    };
    let filter = StockFilter {
        merchant_id: authed.merchant_id(),
        product_id: query.product_id,
        state: stock_state,
    };
    let page = ListPage::new(query.page, query.page_size);
    let (items, total) = state.store.list_ecard_stock(&filter, page).await?;
    Ok(ListDto::new(
        items.iter().map(stock_dto).collect(),
        total,
        page,
    ))
}

async fn list_ecard_stock(
    State(state): State<AppState>,
    authed: Authed,
    Query(query): Query<StockQuery>,
) -> ApiResult<Json<ListDto<StockItemDto>>> {
    Ok(Json(stock_page(&state, &authed, &query).await?))
}

/// The import template (xlsx, text cells so long numbers stay exact).
async fn get_ecard_stock_template(authed: Authed) -> ApiResult<Response> {
    authed.require(Permission::EcardsManage)?;
    let xlsx = |e: rust_xlsxwriter::XlsxError| ApiError::Internal(format!("xlsx: {e}"));
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let text = rust_xlsxwriter::Format::new().set_num_format("@");
    let sheet = workbook.add_worksheet();
    sheet.set_column_range_format(0, 1, &text).map_err(xlsx)?;
    sheet.set_column_width(0, 24).map_err(xlsx)?;
    sheet.set_column_width(1, 40).map_err(xlsx)?;
    for (col, title) in TEMPLATE_HEADER.iter().enumerate() {
        sheet.write_string(0, col as u16, *title).map_err(xlsx)?;
    }
    sheet.write_string(1, 0, "8800123456").map_err(xlsx)?;
    sheet.write_string(1, 1, "A1B2C3D4").map_err(xlsx)?;
    let bytes = workbook.save_to_buffer().map_err(xlsx)?;
    Ok(crate::exports::download(
        bytes,
        "卡密导入模板.xlsx",
        crate::openapi::XLSX,
    ))
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"number": "8800123456", "secret": "A1B2C3D4"}))]
pub struct RevealedStockDto {
    pub number: String,
    pub secret: String,
}

pub(crate) async fn reveal_stock(
    state: &AppState,
    authed: &Authed,
    stock_id: i64,
) -> ApiResult<RevealedStockDto> {
    authed.require(Permission::EcardsReveal)?;
    let m = authed.merchant_id();
    let (version, sealed) = state
        .store
        .reveal_stock(m, stock_id, &authed.actor(), crate::now())
        .await?;
    let keys = state.master.merchant_keys(m, version);
    let (number, secret) = open_stock(&keys, &sealed)
        .ok_or_else(|| ApiError::Internal("a stock secret does not open".into()))?;
    Ok(RevealedStockDto { number, secret })
}

/// A permitted staff member reads one secret; audited.
async fn create_ecard_stock_reveal(
    State(state): State<AppState>,
    authed: Authed,
    Path(stock_id): Path<i64>,
) -> ApiResult<Response> {
    let dto = reveal_stock(&state, &authed, stock_id).await?;
    let mut response = Json(dto).into_response();
    response.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}
