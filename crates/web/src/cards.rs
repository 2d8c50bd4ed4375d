//! The card list (卡券列表): filters with counts, single and bulk state
//! changes, 修改卡属性, purging sealed passwords, exports and QR codes.

use crate::approvals::Gated;
use crate::auth::Authed;
use crate::error::{ApiError, ApiResult};
use crate::exports::{self, ExportFormat, ExportKind, ExportRequest, QrImageFormat};
use crate::extract::{Form, Json, Path, Query};
use crate::lists::ChangedDto;
use crate::pages::{render, Page, PageResult};
use crate::AppState;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use kaquan_core::auth::Permission;
use kaquan_core::card::Card;
use kaquan_core::card::{CardEdit, CardFilter, CardOp, CardState};
use kaquan_core::clock::{format_date, format_datetime};
use kaquan_core::money::{format_yuan, parse_yuan};
use kaquan_core::store::Page as ListPage;
use serde::{Deserialize, Serialize};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/cards", get(list_cards))
        .route("/api/v1/cards/activate", post(activate_cards))
        .route("/api/v1/cards/deactivate", post(deactivate_cards))
        .route("/api/v1/cards/void", post(void_cards))
        .route("/api/v1/cards/restore", post(restore_cards))
        .route("/api/v1/cards/delete", post(delete_cards))
        .route("/api/v1/cards/edit", post(edit_cards))
        .route("/api/v1/cards/purge-secrets", post(purge_card_secrets))
        .route("/api/v1/cards/export", get(export_cards))
        .route("/api/v1/cards/qr-codes", get(export_qr_codes))
        .route("/cards", get(cards_page))
        .route("/cards/op", post(card_op_form))
        .route("/cards/edit", post(edit_cards_form))
        .route("/cards/purge-secrets", post(purge_form))
        .route("/cards/{number}/op/{op}", post(single_card_op_form))
}

/// A card filter as a JSON body carries it. A bulk operation with no
/// condition needs `"all": true`.
#[derive(Deserialize, Serialize, Default, Debug, Clone, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"batch_id": 12, "state": "inactive", "serial_from": 1, "serial_to": 500}))]
pub struct CardFilterDto {
    pub batch_id: Option<i64>,
    /// `inactive`, `active`, `used` or `voided`.
    #[schema(pattern = "^(inactive|active|used|voided)$")]
    pub state: Option<String>,
    pub activated: Option<bool>,
    pub used: Option<bool>,
    /// 0 selects cards with no distributor.
    pub distributor_id: Option<i64>,
    pub serial_from: Option<i64>,
    pub serial_to: Option<i64>,
    /// Part of the card number.
    pub number: Option<String>,
    /// Every card of the merchant: required when no other field narrows.
    #[serde(default)]
    pub all: bool,
}

/// The refusal of a bulk operation that named no condition.
fn unchosen_cards(_: kaquan_core::card::UnchosenCards) -> ApiError {
    ApiError::malformed(
        axum::http::StatusCode::UNPROCESSABLE_ENTITY,
        "no_cards_chosen",
        "没有选择卡：请给出筛选条件；要对全部卡操作，请明确传 all=true",
    )
}

impl CardFilterDto {
    fn into_filter(self) -> ApiResult<(CardFilter, bool)> {
        let state = match self.state.as_deref().filter(|s| !s.is_empty()) {
            None => None,
            Some(code) => {
                Some(CardState::parse(code).ok_or_else(|| ApiError::invalid("未知的卡状态"))?)
            }
        };
        if let Some(number) = &self.number {
            crate::extract::check_chars("number", number, kaquan_core::text::SEARCH_CHARS_MAX)?;
        }
        let filter = CardFilter {
            batch_id: self.batch_id,
            state,
            activated: self.activated,
            used: self.used,
            distributor_id: self.distributor_id,
            serial_from: self.serial_from,
            serial_to: self.serial_to,
            number_contains: self.number.filter(|n| !n.trim().is_empty()),
        };
        Ok((filter, self.all))
    }

    /// The cards a bulk operation touches (see `CardFilter::bulk_target`).
    pub fn into_target(self) -> ApiResult<CardFilter> {
        let (filter, all) = self.into_filter()?;
        filter.bulk_target(all).map_err(unchosen_cards)
    }
}

/// Declares a query-string or form type that carries the card filter's
/// fields beside its own. serde's `flatten` cannot refuse unknown fields,
/// so the filter's fields are spelled out once, here, and every type that
/// carries them is declared through this macro (every field a string,
/// empty meaning "any").
macro_rules! with_card_filter {
    ($(#[$meta:meta])* pub struct $name:ident { $($(#[$field_meta:meta])* pub $field:ident: $ty:ty,)* }) => {
        $(#[$meta])*
        #[derive(serde::Deserialize, serde::Serialize, Default, Debug, Clone, utoipa::IntoParams)]
        #[into_params(parameter_in = Query)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            #[serde(default)]
            pub batch_id: String,
            #[serde(default)]
            pub state: String,
            #[serde(default)]
            pub activated: String,
            #[serde(default)]
            pub used: String,
            #[serde(default)]
            pub distributor_id: String,
            #[serde(default)]
            pub serial_from: String,
            #[serde(default)]
            pub serial_to: String,
            #[serde(default)]
            pub number: String,
            /// `true`: every card, when no other field narrows (bulk operations).
            #[serde(default, skip_serializing_if = "String::is_empty")]
            pub all: String,
            $($(#[$field_meta])* pub $field: $ty,)*
        }

        impl $name {
            /// The card filter's fields alone.
            pub fn filter_form(&self) -> $crate::cards::CardFilterForm {
                $crate::cards::CardFilterForm {
                    batch_id: self.batch_id.clone(),
                    state: self.state.clone(),
                    activated: self.activated.clone(),
                    used: self.used.clone(),
                    distributor_id: self.distributor_id.clone(),
                    serial_from: self.serial_from.clone(),
                    serial_to: self.serial_to.clone(),
                    number: self.number.clone(),
                    all: self.all.clone(),
                }
            }
        }
    };
}
pub(crate) use with_card_filter;

with_card_filter! {
    /// A card filter as a query string or console form carries it.
    pub struct CardFilterForm {}
}

fn int_field(text: &str, field: &str) -> ApiResult<Option<i64>> {
    match text.trim() {
        "" => Ok(None),
        t => t
            .parse()
            .map(Some)
            .map_err(|_| ApiError::invalid(format!("{field}应为整数"))),
    }
}

fn bool_field(text: &str) -> ApiResult<Option<bool>> {
    match text.trim() {
        "" => Ok(None),
        "true" | "1" | "yes" => Ok(Some(true)),
        "false" | "0" | "no" => Ok(Some(false)),
        _ => Err(ApiError::invalid("是/否 字段应为 true 或 false")),
    }
}

impl CardFilterForm {
    fn to_dto(&self) -> ApiResult<CardFilterDto> {
        Ok(CardFilterDto {
            batch_id: int_field(&self.batch_id, "批次号")?,
            state: Some(self.state.clone()),
            activated: bool_field(&self.activated)?,
            used: bool_field(&self.used)?,
            distributor_id: int_field(&self.distributor_id, "券商")?,
            serial_from: int_field(&self.serial_from, "卡序号")?,
            serial_to: int_field(&self.serial_to, "卡序号")?,
            number: Some(self.number.clone()),
            all: bool_field(&self.all)?.unwrap_or(false),
        })
    }

    /// The filter of a list or count, where no condition means every card.
    pub fn into_filter(&self) -> ApiResult<CardFilter> {
        Ok(self.to_dto()?.into_filter()?.0)
    }

    /// The cards a bulk operation or export touches (see `CardFilter::bulk_target`).
    pub fn into_target(&self) -> ApiResult<CardFilter> {
        self.to_dto()?.into_target()
    }

    fn query_string(&self) -> String {
        serde_urlencoded::to_string(self).unwrap_or_default()
    }
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": 501, "batch_id": 12, "serial": 1, "number": "880000000001", "state": "active", "state_label": "已激活", "face_value_fen": 29900, "face_value_yuan": "299.00", "valid_from": "2026-09-01", "valid_until": "2026-12-31", "expired": false, "distributor_id": 4, "distributor_name": "华东经销", "remark": "", "activated_at": "2026-11-30 14:05:00", "used_at": null, "created_at": "2026-11-30 14:05:00"}))]
pub struct CardDto {
    pub id: i64,
    pub batch_id: i64,
    pub serial: i64,
    pub number: String,
    pub state: &'static str,
    pub state_label: &'static str,
    pub expired: bool,
    pub face_value_fen: Option<i64>,
    pub face_value_yuan: Option<String>,
    pub valid_from: Option<String>,
    pub valid_until: Option<String>,
    pub remark: String,
    pub distributor_id: Option<i64>,
    pub distributor_name: Option<String>,
    pub activated_at: Option<String>,
    pub used_at: Option<String>,
    pub created_at: String,
}

impl CardDto {
    pub fn new(card: &Card, now: i64) -> Self {
        Self {
            id: card.id,
            batch_id: card.batch_id,
            serial: card.serial,
            number: card.number.clone(),
            state: card.state.code(),
            state_label: card.state.label_zh(),
            expired: kaquan_core::card::is_expired(card.valid_until, now),
            face_value_fen: card.face_value_fen,
            face_value_yuan: card.face_value_fen.map(format_yuan),
            valid_from: card.valid_from.map(format_date),
            valid_until: card.valid_until.map(format_date),
            remark: card.remark.clone(),
            distributor_id: card.distributor_id,
            distributor_name: card.distributor_name.clone(),
            activated_at: card.activated_at.map(format_datetime),
            used_at: card.used_at.map(format_datetime),
            created_at: format_datetime(card.created_at),
        }
    }
}

/// A page of cards with the count for the filter (统计).
pub type CardListDto = crate::lists::ListDto<CardDto>;

with_card_filter! {
    /// The card list's query: the filter and the page.
    pub struct ListQuery {
        #[serde(default)]
        pub page: Option<String>,
        #[serde(default)]
        pub page_size: Option<String>,
        #[serde(default)]
        pub msg: Option<String>,
    }
}

async fn load_cards(
    state: &AppState,
    authed: &Authed,
    query: &ListQuery,
) -> ApiResult<CardListDto> {
    authed.require(Permission::CardsView)?;
    let filter = query.filter_form().into_filter()?;
    let page = ListPage::new(
        int_field(query.page.as_deref().unwrap_or(""), "页码")?,
        int_field(query.page_size.as_deref().unwrap_or(""), "每页条数")?,
    );
    let merchant_id = authed.merchant_id();
    let (cards, total) = tokio::try_join!(
        state.store.list_cards(merchant_id, &filter, page),
        state.store.count_cards(merchant_id, &filter)
    )?;
    let now = crate::now();
    Ok(CardListDto {
        items: cards.iter().map(|c| CardDto::new(c, now)).collect(),
        total,
        page: page.page,
        page_size: page.page_size,
    })
}

async fn list_cards(
    State(state): State<AppState>,
    authed: Authed,
    Query(query): Query<ListQuery>,
) -> ApiResult<Json<CardListDto>> {
    Ok(Json(load_cards(&state, &authed, &query).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"filter": {"batch_id": 12, "serial_from": 1, "serial_to": 500}}))]
pub struct CardOpRequest {
    pub filter: CardFilterDto,
}

/// Applies a bulk state change and records who did it, to what, and how
/// many; 激活 and 删除 pass through 双人复核 first.
pub async fn apply_op(
    state: &AppState,
    authed: &Authed,
    filter: &CardFilter,
    op: CardOp,
) -> ApiResult<Gated<i64>> {
    authed.require(Permission::CardsManage)?;
    let gated = if matches!(op, CardOp::Activate | CardOp::Delete) {
        crate::approvals::card_op(state, authed, filter, op).await?
    } else {
        let audit = authed.audit(
            &format!("{}_cards", op.code()),
            filter.describe(),
            String::new(),
        );
        let n = state
            .store
            .apply_card_op(authed.merchant_id(), filter, op, &audit)
            .await?;
        Gated::Done(n)
    };
    if let Gated::Done(n) = gated {
        tracing::info!(
            merchant.id = authed.merchant_id(),
            op = op.code(),
            n_cards = n,
            "cards changed"
        );
    }
    Ok(gated)
}

async fn run_op(
    state: AppState,
    authed: Authed,
    body: CardOpRequest,
    op: CardOp,
) -> ApiResult<Response> {
    authed.require(Permission::CardsManage)?;
    let filter = body.filter.into_target()?;
    Ok(match apply_op(&state, &authed, &filter, op).await? {
        Gated::Done(n_cards) => Json(ChangedDto { n_cards }).into_response(),
        Gated::Held(request) => crate::approvals::held_answer(&request),
    })
}

async fn activate_cards(
    State(state): State<AppState>,
    authed: Authed,
    Json(body): Json<CardOpRequest>,
) -> ApiResult<Response> {
    run_op(state, authed, body, CardOp::Activate).await
}
async fn deactivate_cards(
    State(state): State<AppState>,
    authed: Authed,
    Json(body): Json<CardOpRequest>,
) -> ApiResult<Response> {
    run_op(state, authed, body, CardOp::Deactivate).await
}
async fn void_cards(
    State(state): State<AppState>,
    authed: Authed,
    Json(body): Json<CardOpRequest>,
) -> ApiResult<Response> {
    run_op(state, authed, body, CardOp::Void).await
}
async fn restore_cards(
    State(state): State<AppState>,
    authed: Authed,
    Json(body): Json<CardOpRequest>,
) -> ApiResult<Response> {
    run_op(state, authed, body, CardOp::Restore).await
}
async fn delete_cards(
    State(state): State<AppState>,
    authed: Authed,
    Json(body): Json<CardOpRequest>,
) -> ApiResult<Response> {
    run_op(state, authed, body, CardOp::Delete).await
}

/// 修改卡属性: `fields` names the attributes to change; only those change.
/// A listed field with a null or empty value is cleared.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"filter": {"batch_id": 12}, "fields": ["valid_until", "remark"], "valid_until": "2027-03-31", "remark": "延期至 3 月底"}))]
pub struct EditCardsRequest {
    pub filter: CardFilterDto,
    pub fields: Vec<String>,
    pub face_value_fen: Option<i64>,
    pub valid_from: Option<String>,
    pub valid_until: Option<String>,
    pub remark: Option<String>,
    pub distributor_id: Option<i64>,
}

impl EditCardsRequest {
    pub fn into_edit(self) -> ApiResult<(CardFilter, CardEdit)> {
        let mut edit = CardEdit::default();
        for field in &self.fields {
            match field.as_str() {
                "face_value" => {
                    if self.face_value_fen.is_some_and(|f| f < 0) {
                        return Err(ApiError::invalid("卡券面值不能为负"));
                    }
                    if self
                        .face_value_fen
                        .is_some_and(|f| !kaquan_core::money::is_valid_fen(f))
                    {
                        return Err(ApiError::invalid("卡券面值超过上限 ¥1,000,000.00"));
                    }
                    edit.face_value_fen = Some(self.face_value_fen);
                }
                "valid_from" => {
                    edit.valid_from = Some(crate::lists::parse_optional_date(
                        self.valid_from.as_deref(),
                        "卡有效期开始",
                        false,
                    )?)
                }
                "valid_until" => {
                    edit.valid_until = Some(crate::lists::parse_optional_date(
                        self.valid_until.as_deref(),
                        "卡有效期结束",
                        true,
                    )?)
                }
                "remark" => {
                    edit.remark = Some(self.remark.clone().unwrap_or_default().trim().to_owned())
                }
                "distributor" => {
                    edit.distributor_id = Some(self.distributor_id.filter(|id| *id != 0))
                }
                "number" | "password" => return Err(ApiError::invalid("卡号和密码不能修改")),
                other => return Err(ApiError::invalid(format!("未知的卡属性：{other}"))),
            }
        }
        if edit.is_empty() {
            return Err(ApiError::invalid("请勾选要修改的卡属性"));
        }
        if edit
            .remark
            .as_ref()
            .is_some_and(|r| r.chars().count() > kaquan_core::batch::REMARK_LENGTH_MAX)
        {
            return Err(ApiError::invalid("卡券备注过长"));
        }
        Ok((self.filter.into_target()?, edit))
    }
}

pub async fn apply_edit(
    state: &AppState,
    authed: &Authed,
    filter: &CardFilter,
    edit: &CardEdit,
) -> ApiResult<i64> {
    authed.require(Permission::CardsManage)?;
    let audit = authed.audit("edit_cards", filter.describe(), edit.describe());
    Ok(state
        .store
        .edit_cards(authed.merchant_id(), filter, edit, &audit)
        .await?)
}

async fn edit_cards(
    State(state): State<AppState>,
    authed: Authed,
    Json(body): Json<EditCardsRequest>,
) -> ApiResult<Json<ChangedDto>> {
    authed.require(Permission::CardsManage)?;
    let (filter, edit) = body.into_edit()?;
    Ok(Json(ChangedDto {
        n_cards: apply_edit(&state, &authed, &filter, &edit).await?,
    }))
}

async fn purge(state: &AppState, authed: &Authed, filter: &CardFilter) -> ApiResult<i64> {
    authed.require(Permission::CardsExportSecrets)?;
    let audit = authed.audit("purge_card_secrets", filter.describe(), String::new());
    Ok(state
        .store
        .purge_card_secrets(authed.merchant_id(), filter, &audit)
        .await?)
}

async fn purge_card_secrets(
    State(state): State<AppState>,
    authed: Authed,
    Json(body): Json<CardOpRequest>,
) -> ApiResult<Json<ChangedDto>> {
    authed.require(Permission::CardsExportSecrets)?;
    let filter = body.filter.into_target()?;
    Ok(Json(ChangedDto {
        n_cards: purge(&state, &authed, &filter).await?,
    }))
}

with_card_filter! {
    /// An export's query: the filter and what to write.
    pub struct ExportQuery {
        /// `xlsx` (the default) or `csv`.
        #[serde(default)]
        #[param(pattern = "^(|xlsx|csv)$", example = "xlsx")]
        pub format: Option<String>,
        /// `true` adds the passwords (needs cards.export_secrets; audited).
        #[serde(default)]
        #[param(pattern = "^(|true|false|1|0|yes|no)$", example = "false")]
        pub with_secrets: Option<String>,
        /// The QR images' format: `png` (the default) or `svg`.
        #[serde(default)]
        #[param(pattern = "^(|png|svg)$", example = "png")]
        pub image: Option<String>,
        /// With passwords: seal the file to this 印刷厂's age key (`.age`).
        #[serde(default)]
        #[param(pattern = "^[0-9]*$", example = "")]
        pub print_shop_id: Option<String>,
    }
}

async fn export_cards(
    State(state): State<AppState>,
    authed: Authed,
    Query(query): Query<ExportQuery>,
) -> ApiResult<Response> {
    let with_secrets = bool_field(query.with_secrets.as_deref().unwrap_or(""))?.unwrap_or(false);
    let format = ExportFormat::parse(query.format.as_deref().unwrap_or("xlsx"))
        .ok_or_else(|| ApiError::invalid("导出格式应为 xlsx 或 csv"))?;
    let shop_id = crate::print_shops::id_field(query.print_shop_id.as_deref())?;
    export(
        &state,
        &authed,
        &query.filter_form(),
        (ExportKind::Cards(format), shop_id),
        with_secrets,
    )
    .await
}

async fn export_qr_codes(
    State(state): State<AppState>,
    authed: Authed,
    Query(query): Query<ExportQuery>,
) -> ApiResult<Response> {
    let image = QrImageFormat::parse(query.image.as_deref().unwrap_or("svg"))
        .ok_or_else(|| ApiError::invalid("图片格式应为 svg 或 png"))?;
    let shop_id = crate::print_shops::id_field(query.print_shop_id.as_deref())?;
    export(
        &state,
        &authed,
        &query.filter_form(),
        (ExportKind::QrCodes(image), shop_id),
        false,
    )
    .await
}

/// Checks the permissions, writes the export, audits it, and streams it;
/// an export with passwords passes through 双人复核 first.
async fn export(
    state: &AppState,
    authed: &Authed,
    filter: &CardFilterForm,
    (kind, print_shop_id): (ExportKind, Option<i64>),
    with_secrets: bool,
) -> ApiResult<Response> {
    authed.require(Permission::CardsExport)?;
    if with_secrets {
        authed.require(Permission::CardsExportSecrets)?;
    }
    let filter = filter.into_target()?;
    let shop = crate::print_shops::chosen(state, authed, print_shop_id).await?;
    if with_secrets {
        let shop_id = shop.as_ref().map(|s| s.id);
        if let Some(request) =
            crate::approvals::secrets_export(state, authed, &filter, (kind.extension(), shop_id))
                .await?
        {
            return Ok(crate::approvals::held_answer(&request));
        }
    }
    let detail = kind.audit_detail(with_secrets);
    let (path, name, _) = write_export(
        state,
        authed,
        &filter,
        kind,
        (with_secrets, detail, shop.as_ref()),
    )
    .await?;
    let content_type = match shop {
        Some(_) => crate::print_shops::SEALED_CONTENT_TYPE,
        None => kind.content_type(),
    };
    exports::stream_file(&path, &name, content_type).await
}

/// Writes an export of `filter` (sealed to `shop`'s key when given) and
/// its audit record (`detail`); returns the file, its name and how many
/// cards it holds.
pub(crate) async fn write_export(
    state: &AppState,
    authed: &Authed,
    filter: &CardFilter,
    kind: ExportKind,
    (with_secrets, detail, shop): (bool, String, Option<&kaquan_core::print_shop::PrintShop>),
) -> ApiResult<(std::path::PathBuf, String, i64)> {
    let _slot = state.exports.take(authed.merchant_id())?;
    let path = exports::temp_export_path(kind.extension());
    let public_url = state.public_url_for(authed.merchant_id()).await?;
    let request = ExportRequest {
        store: state.store.as_ref(),
        master: &state.master,
        merchant_id: authed.merchant_id(),
        filter,
        with_secrets,
        public_url: &public_url,
        progress: None,
        lang: authed.export_lang,
    };
    let (path, n) = crate::print_shops::write_sealed(kind, &request, path, shop).await?;
    let detail = match shop {
        Some(shop) => format!("{detail} print_shop={}", shop.id),
        None => detail,
    };
    let mut audit = authed.audit(kind.action(), filter.describe(), detail);
    audit.n_affected = n;
    state.store.append_audit(&audit).await?;
    let mut name = export_file_name(state, authed, kind, with_secrets, filter).await?;
    if shop.is_some() {
        name.push_str(".age");
    }
    Ok((path, name, n))
}

/// What an export's file is called: by what it holds, its batch and the day.
pub(crate) async fn export_file_name(
    state: &AppState,
    authed: &Authed,
    kind: ExportKind,
    with_secrets: bool,
    filter: &CardFilter,
) -> ApiResult<String> {
    let batch = match filter.batch_id {
        Some(id) => Some(state.store.get_batch(authed.merchant_id(), id).await?),
        None => None,
    };
    Ok(kind.file_name(
        with_secrets,
        batch.as_ref().map(|b| (b.id, b.name.as_str())),
        crate::now(),
    ))
}

// ---- console ----------------------------------------------------------------

#[derive(Serialize)]
struct CardsView {
    list: CardListDto,
    filter: CardFilterForm,
    /// No condition narrows: bulk operations cover every card.
    everything: bool,
    /// So many cards that the export buttons start background exports.
    background_exports: bool,
    /// Why QR codes exported now would not open on a phone.
    qr_problem: Option<&'static str>,
    background_rows: i64,
    filter_query: String,
    distributors: Vec<(i64, String)>,
    states: Vec<(&'static str, &'static str)>,
    ops: Vec<(&'static str, &'static str)>,
    n_pages: i64,
    goods: Vec<(i64, String)>,
    batches: Vec<(i64, String)>,
    /// 对应商品 of each listed card, by card id.
    card_goods: std::collections::HashMap<String, String>,
}

async fn cards_page(
    State(state): State<AppState>,
    authed: Authed,
    Query(query): Query<ListQuery>,
) -> PageResult {
    let list = load_cards(&state, &authed, &query).await?;
    let distributors = state
        .store
        .list_distributors(authed.merchant_id())
        .await?
        .into_iter()
        .map(|d| (d.id, d.name))
        .collect();
    let n_pages = ((list.total + list.page_size - 1) / list.page_size).max(1);
    // With no condition the page's bulk forms and exports act on every
    // card, and say so: they carry `all=true` and confirm "全部 N 张卡".
    let mut filter = query.filter_form();
    let everything = filter.into_filter()?.is_everything();
    if everything {
        filter.all = "true".into();
    }
    let goods = state
        .store
        .list_goods(authed.merchant_id(), false)
        .await?
        .into_iter()
        .map(|g| (g.id, g.name))
        .collect();
    let m = authed.merchant_id();
    let ids: Vec<i64> = list.items.iter().map(|c| c.id).collect();
    let mut card_goods = std::collections::HashMap::<String, String>::new();
    for (card_id, name) in state.store.goods_names_of_cards(m, &ids).await? {
        let names = card_goods.entry(card_id.to_string()).or_default();
        if !names.is_empty() {
            names.push('、');
        }
        names.push_str(&name);
    }
    let batches = crate::batches::batch_choices(&state, m, &filter.batch_id).await?;
    let view = CardsView {
        batches,
        card_goods,
        background_exports: list.total > crate::export_jobs::EXPORT_IN_BACKGROUND_ROWS,
        qr_problem: crate::exports::public_url_problem(&state.public_url_for(m).await?),
        background_rows: crate::export_jobs::EXPORT_IN_BACKGROUND_ROWS,
        list,
        filter_query: filter.query_string(),
        filter,
        everything,
        distributors,
        states: CardState::ALL
            .iter()
            .map(|s| (s.code(), s.label_zh()))
            .collect(),
        ops: CardOp::ALL
            .iter()
            .map(|op| (op.code(), op.label_zh()))
            .collect(),
        n_pages,
        goods,
    };
    Ok(render(
        &state,
        "cards.html",
        &Page::new("卡券列表", &authed).with_message(query.msg.clone()),
        view,
    ))
}

pub fn back_to_cards(filter: &CardFilterForm, message: &str) -> Response {
    let msg = serde_urlencoded::to_string([("msg", message)]).unwrap_or_default();
    Redirect::to(&format!("/cards?{}&{msg}", filter.query_string())).into_response()
}

with_card_filter! {
    /// A bulk operation or purge as the console posts it.
    pub struct CardOpForm {
        pub csrf: String,
        #[serde(default)]
        pub op: String,
    }
}

async fn card_op_form(
    State(state): State<AppState>,
    authed: Authed,
    Form(form): Form<CardOpForm>,
) -> PageResult {
    authed.check_form_csrf(&form.csrf)?;
    let op = CardOp::parse(&form.op).ok_or_else(|| ApiError::invalid("未知的操作"))?;
    let filter = form.filter_form().into_target()?;
    let passed_over = passed_over(&state, &authed, &filter, op).await?;
    let n = match apply_op(&state, &authed, &filter, op).await? {
        Gated::Done(n) => n,
        Gated::Held(request) => {
            return Ok(back_to_cards(
                &form.filter_form(),
                &crate::approvals::held_message(&request),
            ));
        }
    };
    let mut message = format!("{}：共 {n} 张卡", op.label_zh());
    for reason in passed_over {
        message.push('；');
        message.push_str(&reason);
    }
    Ok(back_to_cards(&form.filter_form(), &message))
}

/// The cards of `filter` an operation will pass over, by state, and why
/// (counted just before it runs, for the console's message).
async fn passed_over(
    state: &AppState,
    authed: &Authed,
    filter: &CardFilter,
    op: CardOp,
) -> ApiResult<Vec<String>> {
    let mut reasons = Vec::new();
    for card_state in CardState::ALL {
        if op.from_states().contains(&card_state) || filter.state.is_some_and(|s| s != card_state) {
            continue;
        }
        let in_state = CardFilter {
            state: Some(card_state),
            ..filter.clone()
        };
        let count = state
            .store
            .count_cards(authed.merchant_id(), &in_state)
            .await?;
        reasons.extend(op.passed_over(card_state, count));
    }
    Ok(reasons)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SingleOpForm {
    csrf: String,
    /// `store` or `phone`: back to 到店提货 / 电话提货, which offered the button.
    #[serde(default)]
    back: String,
}

async fn single_card_op_form(
    State(state): State<AppState>,
    authed: Authed,
    Path((number, op)): Path<(String, String)>,
    Form(form): Form<SingleOpForm>,
) -> PageResult {
    authed.check_form_csrf(&form.csrf)?;
    let op = CardOp::parse(&op).ok_or_else(|| ApiError::invalid("未知的操作"))?;
    let card = state
        .store
        .get_card_by_number(authed.merchant_id(), &number)
        .await?
        .ok_or(ApiError::NotFound)?;
    let filter = CardFilter {
        serial_from: Some(card.serial),
        serial_to: Some(card.serial),
        ..Default::default()
    };
    let message = match apply_op(&state, &authed, &filter, op).await? {
        Gated::Done(n) => format!(
            "卡 {}：{}{}",
            card.number,
            op.label_zh(),
            if n == 1 {
                "成功"
            } else {
                "未执行（状态不符）"
            }
        ),
        Gated::Held(request) => crate::approvals::held_message(&request),
    };
    if matches!(form.back.as_str(), "store" | "phone") {
        return Ok(crate::forms::redirect_with(
            &format!("/pickup/{}", form.back),
            &message,
        ));
    }
    let form = CardFilterForm {
        number: card.number.clone(),
        ..Default::default()
    };
    Ok(back_to_cards(&form, &message))
}

with_card_filter! {
    /// 修改卡属性 as the console posts it: checkboxes `field_*` choose the fields.
    pub struct EditForm {
        pub csrf: String,
        #[serde(default)]
        pub field_face_value: Option<String>,
        #[serde(default)]
        pub field_valid_from: Option<String>,
        #[serde(default)]
        pub field_valid_until: Option<String>,
        #[serde(default)]
        pub field_remark: Option<String>,
        #[serde(default)]
        pub field_distributor: Option<String>,
        #[serde(default)]
        pub new_face_value_yuan: Option<String>,
        #[serde(default)]
        pub new_valid_from: Option<String>,
        #[serde(default)]
        pub new_valid_until: Option<String>,
        #[serde(default)]
        pub new_remark: Option<String>,
        #[serde(default)]
        pub new_distributor_id: Option<String>,
    }
}

async fn edit_cards_form(
    State(state): State<AppState>,
    authed: Authed,
    Form(form): Form<EditForm>,
) -> PageResult {
    authed.check_form_csrf(&form.csrf)?;
    let filter_form = form.filter_form();
    let mut fields = Vec::new();
    for (checked, name) in [
        (&form.field_face_value, "face_value"),
        (&form.field_valid_from, "valid_from"),
        (&form.field_valid_until, "valid_until"),
        (&form.field_remark, "remark"),
        (&form.field_distributor, "distributor"),
    ] {
        if checked.is_some() {
            fields.push(name.to_owned());
        }
    }
    let face_value_fen = match form
        .new_face_value_yuan
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        None => None,
        Some(t) => Some(parse_yuan(t).ok_or_else(|| ApiError::invalid("卡券面值格式不对"))?),
    };
    let request = EditCardsRequest {
        filter: CardFilterDto {
            all: true,
            ..Default::default()
        },
        fields,
        face_value_fen,
        valid_from: form.new_valid_from,
        valid_until: form.new_valid_until,
        remark: form.new_remark,
        distributor_id: int_field(form.new_distributor_id.as_deref().unwrap_or(""), "券商")?,
    };
    let (_, edit) = request.into_edit()?;
    let filter = filter_form.into_target()?;
    let n = apply_edit(&state, &authed, &filter, &edit).await?;
    Ok(back_to_cards(
        &filter_form,
        &format!("修改卡属性（{}）：共 {n} 张卡", edit.describe()),
    ))
}

async fn purge_form(
    State(state): State<AppState>,
    authed: Authed,
    Form(form): Form<CardOpForm>,
) -> PageResult {
    authed.check_form_csrf(&form.csrf)?;
    let filter = form.filter_form().into_target()?;
    let n = purge(&state, &authed, &filter).await?;
    Ok(back_to_cards(
        &form.filter_form(),
        &format!("已清除 {n} 张卡的导出密码副本"),
    ))
}
