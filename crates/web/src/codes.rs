//! 线上兑换码 and 线下兑换码 in the console and the staff API: templates,
//! creating an offline batch, 兑换记录 / 查看所有 by state, 查码, export and
//! delete.

use crate::auth::Authed;
use crate::error::{ApiError, ApiResult};
use crate::exports::{download, ExportFormat};
use crate::extract::{Form, Json, Path, Query};
use crate::forms::redirect_with;
use crate::lists::ListQuery;
use crate::pages::{render, Page, PageResult};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use kaquan_core::auth::Permission;
use kaquan_core::clock::{format_date, format_datetime};
use kaquan_core::code::{
    code_digest, digest_keys, mask_code, Code, CodeKind, CodeState, CodeTemplate,
    CodeTemplateFields, IssuedCode, OFFLINE_CODES_MAX,
};
use kaquan_core::money::{format_yuan, parse_yuan};
use kaquan_core::store::Page as ListPage;
use serde::{Deserialize, Serialize};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/giftcards/codes", get(templates_page).post(template_form))
        .route("/giftcards/codes/lookup", post(lookup_form))
        .route("/giftcards/codes/{template_id}", get(codes_page))
        .route("/giftcards/codes/{template_id}/export", get(export_codes))
        .route("/giftcards/codes/{template_id}/delete", post(delete_form))
        .route(
            "/api/v1/code-templates",
            get(list_code_templates).post(create_code_template),
        )
        .route("/api/v1/codes/lookup", post(lookup_code))
        .route(
            "/api/v1/code-templates/{template_id}/codes",
            get(list_codes),
        )
        .route(
            "/api/v1/code-templates/{template_id}/delete",
            post(delete_code_template),
        )
}

// ---- 线上/线下兑换码 ------------------------------------------------------

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"kind": "offline", "name": "双十一 100 元兑换码", "face_value_fen": 10000, "valid_from": "2026-11-01", "valid_until": "2027-01-31", "quantity": 500}))]
pub struct CodeTemplateRequest {
    /// `online` (issued per paid mall order) or `offline` (a printed batch).
    #[schema(pattern = "^(online|offline)$")]
    pub kind: String,
    #[schema(min_length = 1, max_length = 60)]
    pub name: String,
    #[schema(minimum = 1, maximum = 100_000_000)]
    pub face_value_fen: i64,
    /// `YYYY-MM-DD`, inclusive.
    pub valid_from: Option<String>,
    pub valid_until: Option<String>,
    /// 生成数量 (offline only).
    #[schema(minimum = 1, maximum = 100_000)]
    pub quantity: Option<i64>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": 7, "kind": "offline", "kind_label": "线下兑换码", "name": "双十一 100 元兑换码", "face_value_fen": 10000, "face_value_yuan": "100.00", "valid_from": "2026-11-01", "valid_until": "2027-01-31", "n_issued": 500, "n_used": 120, "n_unused": 380, "n_voided": 0, "created_by": "owner", "created_at": "2026-11-30 14:05:00"}))]
pub struct CodeTemplateDto {
    pub id: i64,
    pub kind: &'static str,
    pub kind_label: &'static str,
    pub name: String,
    pub face_value_fen: i64,
    pub face_value_yuan: String,
    pub valid_from: Option<String>,
    pub valid_until: Option<String>,
    pub n_issued: i64,
    pub n_used: i64,
    pub n_unused: i64,
    pub n_voided: i64,
    pub created_by: String,
    pub created_at: String,
}

impl CodeTemplateDto {
    pub fn new(t: &CodeTemplate) -> Self {
        Self {
            id: t.id,
            kind: t.kind.code(),
            kind_label: t.kind.label_zh(),
            name: t.fields.name.clone(),
            face_value_fen: t.fields.face_value_fen,
            face_value_yuan: format_yuan(t.fields.face_value_fen),
            valid_from: t.fields.valid_from.map(format_date),
            valid_until: t.fields.valid_until.map(format_date),
            n_issued: t.n_issued,
            n_used: t.n_used,
            n_unused: t.n_unused(),
            n_voided: t.n_voided,
            created_by: t.created_by.clone(),
            created_at: format_datetime(t.created_at),
        }
    }
}

fn parse_kind(code: &str) -> ApiResult<CodeKind> {
    CodeKind::parse(code).ok_or_else(|| ApiError::invalid("kind 应为 online 或 offline"))
}

/// Creates a template; an offline one with its codes, all in one transaction.
async fn create_template(
    state: &AppState,
    authed: &Authed,
    request: CodeTemplateRequest,
) -> ApiResult<CodeTemplate> {
    authed.require(Permission::GiftcardsManage)?;
    let kind = parse_kind(&request.kind)?;
    let fields = CodeTemplateFields {
        name: request.name.trim().to_owned(),
        face_value_fen: request.face_value_fen,
        valid_from: crate::lists::parse_optional_date(
            request.valid_from.as_deref(),
            "有效期开始",
            false,
        )?,
        valid_until: crate::lists::parse_optional_date(
            request.valid_until.as_deref(),
            "有效期结束",
            true,
        )?,
    };
    let request = kaquan_core::code::NewCodeTemplate {
        kind,
        fields,
        quantity: request.quantity.unwrap_or(0),
    };
    Ok(kaquan_core::code::create_code_template(
        state.store.as_ref(),
        &state.master,
        authed.merchant_id(),
        &request,
        authed.actor(),
        crate::now(),
    )
    .await?)
}

/// The code state a list asks for: none for all.
fn parse_code_state(state: Option<&str>) -> ApiResult<Option<CodeState>> {
    match state.filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(code) => CodeState::parse(code)
            .map(Some)
            .ok_or_else(|| ApiError::invalid("状态应为 unused、used 或 voided")),
    }
}

async fn list_code_templates(
    State(state): State<AppState>,
    authed: Authed,
    Query(query): Query<ListQuery>,
) -> ApiResult<Json<crate::lists::ListDto<CodeTemplateDto>>> {
    authed.require(Permission::GiftcardsManage)?;
    let kind = parse_kind(query.kind.as_deref().unwrap_or("offline"))?;
    let page = ListPage::new(query.page, query.page_size);
    let (items, total) = state
        .store
        .list_code_templates(authed.merchant_id(), kind, page)
        .await?;
    Ok(Json(crate::lists::ListDto::new(
        items.iter().map(CodeTemplateDto::new).collect(),
        total,
        page,
    )))
}

async fn create_code_template(
    State(state): State<AppState>,
    authed: Authed,
    Json(request): Json<CodeTemplateRequest>,
) -> ApiResult<(StatusCode, Json<CodeTemplateDto>)> {
    let template = create_template(&state, &authed, request).await?;
    Ok((StatusCode::CREATED, Json(CodeTemplateDto::new(&template))))
}

#[derive(Serialize)]
struct TemplatesView {
    kind: &'static str,
    kind_label: &'static str,
    templates: Vec<CodeTemplateDto>,
    total: i64,
    page: i64,
    pages: i64,
    offline_max: i64,
}

async fn templates_page(
    State(state): State<AppState>,
    authed: Authed,
    Query(query): Query<ListQuery>,
) -> PageResult {
    authed.require(Permission::GiftcardsManage)?;
    let kind = parse_kind(query.kind.as_deref().unwrap_or("offline"))?;
    let page = ListPage::new(query.page, None);
    let (items, total) = state
        .store
        .list_code_templates(authed.merchant_id(), kind, page)
        .await?;
    let view = TemplatesView {
        kind: kind.code(),
        kind_label: kind.label_zh(),
        templates: items.iter().map(CodeTemplateDto::new).collect(),
        total,
        page: page.page,
        pages: (total + page.page_size - 1) / page.page_size,
        offline_max: OFFLINE_CODES_MAX,
    };
    Ok(render(
        &state,
        "code_templates.html",
        &Page::new(kind.label_zh(), &authed).with_message(query.msg),
        view,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TemplateForm {
    csrf: String,
    kind: String,
    name: String,
    face_value: String,
    valid_from: String,
    valid_until: String,
    #[serde(default)]
    quantity: String,
}

async fn template_form(
    State(state): State<AppState>,
    authed: Authed,
    Form(form): Form<TemplateForm>,
) -> PageResult {
    authed.check_form_csrf(&form.csrf)?;
    let face_value_fen = parse_yuan(&form.face_value)
        .ok_or_else(|| ApiError::invalid("兑换面额应为金额，如 100 或 99.50"))?;
    let quantity = match form.quantity.trim() {
        "" => None,
        t => Some(
            t.parse()
                .map_err(|_| ApiError::invalid("生成数量应为整数"))?,
        ),
    };
    let kind = form.kind.clone();
    let template = create_template(
        &state,
        &authed,
        CodeTemplateRequest {
            kind: form.kind,
            name: form.name,
            face_value_fen,
            valid_from: Some(form.valid_from),
            valid_until: Some(form.valid_until),
            quantity,
        },
    )
    .await?;
    Ok(redirect_with(
        &format!("/giftcards/codes?kind={kind}"),
        &format!(
            "已添加「{}」，共 {} 个兑换码",
            template.fields.name, template.n_issued
        ),
    ))
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": 9, "code_masked": "****-****-****-PQRS", "state": "used", "state_label": "已兑换", "face_value_yuan": "100.00", "order_id": "M20260601001", "customer_id": 31, "customer_label": "小王", "redeemed_at": "2026-11-30 14:05:00", "issued_at": "2026-11-29 10:00:00"}))]
/// An issued code as the console lists it: masked.
pub struct MaskedCodeDto {
    pub id: i64,
    /// Only the last four characters: the whole code is in the permitted export.
    pub code_masked: String,
    pub state: &'static str,
    pub state_label: &'static str,
    pub face_value_yuan: String,
    pub order_id: Option<String>,
    pub customer_id: Option<i64>,
    /// 使用人.
    pub customer_label: Option<String>,
    pub redeemed_at: Option<String>,
    pub issued_at: String,
}

impl MaskedCodeDto {
    fn new(state: &AppState, merchant_id: i64, c: &IssuedCode) -> Self {
        let plain = Some(c.plaintext(&state.master, merchant_id)).filter(|p| !p.is_empty());
        Self {
            id: c.id,
            code_masked: plain
                .as_deref()
                .map(mask_code)
                .unwrap_or_else(|| "（已清除）".into()),
            state: c.state.code(),
            state_label: c.state.label_zh(),
            face_value_yuan: format_yuan(c.face_value_fen),
            order_id: c.order_id.clone(),
            customer_id: c.customer_id,
            customer_label: c.customer_label.clone(),
            redeemed_at: c.redeemed_at.map(format_datetime),
            issued_at: format_datetime(c.issued_at),
        }
    }
}

async fn list_codes(
    State(state): State<AppState>,
    authed: Authed,
    Path(template_id): Path<i64>,
    Query(query): Query<ListQuery>,
) -> ApiResult<Json<crate::lists::ListDto<MaskedCodeDto>>> {
    authed.require(Permission::GiftcardsManage)?;
    let page = ListPage::new(query.page, query.page_size);
    let merchant_id = authed.merchant_id();
    state
        .store
        .get_code_template(merchant_id, template_id)
        .await?;
    let code_state = parse_code_state(query.state.as_deref())?;
    let (codes, total) = state
        .store
        .list_codes(merchant_id, template_id, code_state, page)
        .await?;
    Ok(Json(crate::lists::ListDto::new(
        codes
            .iter()
            .map(|c| MaskedCodeDto::new(&state, merchant_id, c))
            .collect(),
        total,
        page,
    )))
}

#[derive(Serialize)]
struct CodesView {
    template: CodeTemplateDto,
    codes: Vec<MaskedCodeDto>,
    total: i64,
    page: i64,
    pages: i64,
    /// The state shown (`unused`, `used`, `voided`), empty for all.
    state: &'static str,
    /// The one code a 查码 found, shown alone.
    looked_up: bool,
    can_export: bool,
    deleted: bool,
}

impl CodesView {
    /// `codes` of `template`: a page of its list in `code_state`, or the one
    /// a 查码 found (`looked_up`).
    fn new(
        state: &AppState,
        authed: &Authed,
        template: &CodeTemplate,
        codes: &[IssuedCode],
        (total, page): (i64, ListPage),
        code_state: Option<CodeState>,
        looked_up: bool,
    ) -> Self {
        Self {
            template: CodeTemplateDto::new(template),
            codes: codes
                .iter()
                .map(|c| MaskedCodeDto::new(state, authed.merchant_id(), c))
                .collect(),
            total,
            page: page.page,
            pages: (total + page.page_size - 1) / page.page_size,
            state: code_state.map_or("", CodeState::code),
            looked_up,
            can_export: authed.can(Permission::CardsExportSecrets),
            deleted: template.deleted_at.is_some(),
        }
    }
}

fn codes_title(template: &CodeTemplate) -> String {
    format!(
        "{}：{}",
        if template.kind == CodeKind::Online {
            "兑换记录"
        } else {
            "查看所有"
        },
        template.fields.name
    )
}

async fn codes_page(
    State(state): State<AppState>,
    authed: Authed,
    Path(template_id): Path<i64>,
    Query(query): Query<ListQuery>,
) -> PageResult {
    authed.require(Permission::GiftcardsManage)?;
    let merchant_id = authed.merchant_id();
    let template = state
        .store
        .get_code_template(merchant_id, template_id)
        .await?;
    let code_state = parse_code_state(query.state.as_deref())?;
    let page = ListPage::new(query.page, None);
    let (codes, total) = state
        .store
        .list_codes(merchant_id, template_id, code_state, page)
        .await?;
    let view = CodesView::new(
        &state,
        &authed,
        &template,
        &codes,
        (total, page),
        code_state,
        false,
    );
    Ok(render(
        &state,
        "codes.html",
        &Page::new(&codes_title(&template), &authed).with_message(query.msg),
        view,
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"code": "ABCD-EFGH-JKMN-PQRS"}))]
pub struct LookupRequest {
    /// The code as the customer reads it out: case, spaces and hyphens do
    /// not matter. Sent in the body, never in a URL.
    pub code: String,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"code": {"id": 9, "code_masked": "****-****-****-PQRS", "state": "used", "state_label": "已兑换", "face_value_yuan": "100.00", "order_id": null, "customer_id": 31, "customer_label": "小王", "redeemed_at": "2026-11-30 14:05:00", "issued_at": "2026-11-29 10:00:00"}, "template": {"id": 7, "kind": "offline", "kind_label": "线下兑换码", "name": "双十一 100 元兑换码", "face_value_fen": 10000, "face_value_yuan": "100.00", "valid_from": "2026-11-01", "valid_until": "2027-01-31", "n_issued": 500, "n_used": 120, "n_unused": 380, "n_voided": 0, "created_by": "owner", "created_at": "2026-11-30 14:05:00"}}))]
pub struct LookedUpCodeDto {
    pub template: CodeTemplateDto,
    pub code: MaskedCodeDto,
}

/// 查码: the merchant's code a customer reads out, in whichever template.
async fn find_code(
    state: &AppState,
    authed: &Authed,
    code: &str,
) -> ApiResult<(CodeTemplate, IssuedCode)> {
    authed.require(Permission::GiftcardsManage)?;
    let merchant_id = authed.merchant_id();
    let code = Code::parse(code)
        .ok_or_else(|| ApiError::invalid("兑换码应为 16 位字母和数字（可带空格或 -）"))?;
    let keys = digest_keys(&state.master, merchant_id);
    let found = state
        .store
        .find_code(merchant_id, &code_digest(&keys, &code))
        .await?
        .ok_or(ApiError::NotFound)?;
    let template = state
        .store
        .get_code_template(merchant_id, found.template_id)
        .await?;
    Ok((template, found))
}

async fn lookup_code(
    State(state): State<AppState>,
    authed: Authed,
    Json(request): Json<LookupRequest>,
) -> ApiResult<Json<LookedUpCodeDto>> {
    let (template, code) = find_code(&state, &authed, &request.code).await?;
    Ok(Json(LookedUpCodeDto {
        template: CodeTemplateDto::new(&template),
        code: MaskedCodeDto::new(&state, authed.merchant_id(), &code),
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LookupForm {
    csrf: String,
    code: String,
    kind: String,
}

async fn lookup_form(
    State(state): State<AppState>,
    authed: Authed,
    Form(form): Form<LookupForm>,
) -> PageResult {
    authed.check_form_csrf(&form.csrf)?;
    let kind = parse_kind(&form.kind)?;
    let (template, code) = match find_code(&state, &authed, &form.code).await {
        Ok(found) => found,
        Err(ApiError::NotFound) => {
            return Ok(redirect_with(
                &format!("/giftcards/codes?kind={}", kind.code()),
                "没有找到这个兑换码",
            ))
        }
        Err(other) => return Err(other.into()),
    };
    let view = CodesView::new(
        &state,
        &authed,
        &template,
        &[code],
        (1, ListPage::new(None, None)),
        None,
        true,
    );
    Ok(render(
        &state,
        "codes.html",
        &Page::new(&format!("查码：{}", template.fields.name), &authed),
        view,
    ))
}

/// The template's codes in plaintext, for the print shop: a permitted, audited export.
async fn export_codes(
    State(state): State<AppState>,
    authed: Authed,
    Path(template_id): Path<i64>,
) -> ApiResult<Response> {
    authed.require(Permission::GiftcardsManage)?;
    authed.require(Permission::CardsExportSecrets)?;
    let merchant_id = authed.merchant_id();
    let template = state
        .store
        .get_code_template(merchant_id, template_id)
        .await?;
    let _slot = state.exports.take(merchant_id)?;
    let public_url = state.public_url_for(merchant_id).await?;
    let (bytes, n_codes) = crate::exports::export_codes_file(
        state.store.as_ref(),
        &state.master,
        &public_url,
        merchant_id,
        template_id,
        ExportFormat::Xlsx,
        authed.export_lang,
    )
    .await?;
    state
        .store
        .append_audit(&authed.audit(
            "export_codes",
            format!("code_template={template_id}"),
            format!("n_codes={n_codes} with_codes=true"),
        ))
        .await?;
    Ok(download(
        bytes,
        &format!("兑换码-{}.xlsx", template.fields.name),
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"confirm_unused": 380}))]
pub struct DeleteTemplateRequest {
    /// How many unused codes the merchant confirmed voiding (as shown to them).
    pub confirm_unused: i64,
}

async fn delete_template(
    state: &AppState,
    authed: &Authed,
    template_id: i64,
    confirm_unused: i64,
) -> ApiResult<i64> {
    authed.require(Permission::GiftcardsManage)?;
    let merchant_id = authed.merchant_id();
    let template = state
        .store
        .get_code_template(merchant_id, template_id)
        .await?;
    if template.n_unused() != confirm_unused {
        return Err(ApiError::Conflict(format!(
            "该批兑换码现有 {} 个未兑换（可能已发放给客户）：确认作废的数量不符，请刷新后重新确认",
            template.n_unused()
        )));
    }
    match state
        .store
        .delete_code_template(
            merchant_id,
            template_id,
            confirm_unused,
            &authed.audit(
                "delete_code_template",
                format!("code_template={template_id}"),
                format!("confirmed_unused={confirm_unused}"),
            ),
        )
        .await
    {
        Ok(n) => Ok(n),
        Err(kaquan_core::StoreError::Conflict(_)) => Err(ApiError::Conflict(
            "未兑换数量刚刚发生了变化，请刷新后重新确认".into(),
        )),
        Err(other) => Err(other.into()),
    }
}

async fn delete_code_template(
    State(state): State<AppState>,
    authed: Authed,
    Path(template_id): Path<i64>,
    Json(request): Json<DeleteTemplateRequest>,
) -> ApiResult<Json<DeletedTemplateDto>> {
    let n_voided = delete_template(&state, &authed, template_id, request.confirm_unused).await?;
    Ok(Json(DeletedTemplateDto { n_voided }))
}

/// What deleting a template did.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"n_voided": 380}))]
pub struct DeletedTemplateDto {
    /// The unused codes voided with it.
    pub n_voided: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeleteForm {
    csrf: String,
    confirm_unused: i64,
    confirmed: Option<String>,
}

async fn delete_form(
    State(state): State<AppState>,
    authed: Authed,
    Path(template_id): Path<i64>,
    Form(form): Form<DeleteForm>,
) -> PageResult {
    authed.check_form_csrf(&form.csrf)?;
    if form.confirmed.is_none() {
        return Err(ApiError::invalid("请勾选确认：删除后未兑换的兑换码将全部作废").into());
    }
    let template = state
        .store
        .get_code_template(authed.merchant_id(), template_id)
        .await?;
    let n = delete_template(&state, &authed, template_id, form.confirm_unused).await?;
    Ok(redirect_with(
        &format!("/giftcards/codes?kind={}", template.kind.code()),
        &format!(
            "已删除「{}」，作废 {n} 个未兑换的兑换码",
            template.fields.name
        ),
    ))
}
