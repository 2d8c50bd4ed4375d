//! 会员卡 in the staff API: members (the
//! list with its filters, a member with their points and balance
//! statements and operations, 积分调整, the xlsx export). The console
//! pages are `member_pages.rs`, the customer's pages `member_card.rs`, the
//! mall's signed contract `member_open.rs`.

use crate::auth::Authed;
use crate::customers::TransactionView;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path, Query};
use crate::lists::{parse_optional_date, ListDto};
use crate::member_programs::discount_label;
use crate::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use kaquan_core::auth::Permission;
use kaquan_core::clock::{format_date, format_datetime};
use kaquan_core::ledger::{ApiCall, IdempotencyClaim, IdempotencyKey};
use kaquan_core::member::operation::{
    AdjustPoints, MemberAction, MemberOp, MemberOperation, OperationKind,
};
use kaquan_core::member::{Member, MemberFilter, MemberProgram};
use kaquan_core::store::Page as ListPage;
use serde::{Deserialize, Serialize};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/members", get(list_members))
        .route("/api/v1/members/export", get(export_members))
        .route("/api/v1/members/{member_id}", get(get_member))
        .route(
            "/api/v1/members/{member_id}/points-statement",
            get(list_member_points_statement),
        )
        .route(
            "/api/v1/members/{member_id}/operations",
            get(list_member_operations),
        )
        .route(
            "/api/v1/members/{member_id}/points-adjustments",
            post(create_points_adjustment),
        )
        .route("/api/v1/member-messages", get(list_member_messages))
}

// ---- members ----------------------------------------------------------------

/// Which members a list or export shows.
#[derive(Deserialize, utoipa::IntoParams, utoipa::ToSchema, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct MemberQuery {
    pub program_id: Option<i64>,
    /// Part of the phone or name, or the member number.
    pub search: Option<String>,
    /// Rank in the program's tiers (0: none).
    pub tier: Option<usize>,
    /// `YYYY-MM-DD`, the activation date from …
    pub activated_from: Option<String>,
    /// … until (inclusive).
    pub activated_until: Option<String>,
    pub points_at_least: Option<i64>,
    pub balance_at_least_fen: Option<i64>,
    pub page: Option<i64>,
    pub page_size: Option<i64>,
    /// Shown once after a console form (not a filter).
    pub msg: Option<String>,
}

impl MemberQuery {
    pub fn filter(&self) -> ApiResult<MemberFilter> {
        let search = self
            .search
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty());
        if search
            .is_some_and(|s| kaquan_core::text::is_too_long(s, kaquan_core::text::SEARCH_CHARS_MAX))
        {
            return Err(ApiError::invalid("搜索最多 64 个字符"));
        }
        Ok(MemberFilter {
            program_id: self.program_id,
            search: search.map(str::to_owned),
            tier: self.tier,
            activated_from: parse_optional_date(self.activated_from.as_deref(), "开卡日期", false)?,
            activated_until: parse_optional_date(
                self.activated_until.as_deref(),
                "开卡日期",
                true,
            )?,
            points_at_least: self.points_at_least,
            balance_at_least_fen: self.balance_at_least_fen,
        })
    }
}

/// A member as staff see them (the phone masked without 查看个人信息).
#[derive(Serialize, utoipa::ToSchema, Clone)]
#[schema(example = json!({"member_id": 7, "member_number": "VIP00000007", "program_id": 1, "program_title": "果园会员卡", "customer_id": 3, "external_id": "u-1001", "phone": "138****0000", "name": "王*", "birthday": "", "gender": "女", "tier": 1, "tier_name": "金卡", "discount_label": "9折", "points": 115, "points_earned": 115, "balance_fen": 9000, "balance_yuan": "90.00", "spend_yuan": "95.00", "activated_at_text": "2026-12-06 10:00"}))]
pub struct MemberView {
    pub member_id: i64,
    pub member_number: String,
    pub program_id: i64,
    pub program_title: String,
    pub customer_id: i64,
    /// The mall's id of the customer.
    pub external_id: Option<String>,
    pub phone: String,
    pub name: String,
    pub birthday: String,
    pub gender: String,
    pub tier: usize,
    pub tier_name: String,
    pub discount_label: String,
    pub points: i64,
    pub points_earned: i64,
    pub balance_fen: i64,
    pub balance_yuan: String,
    pub spend_yuan: String,
    pub activated_at_text: String,
}

impl MemberView {
    pub fn new(m: &Member, program: Option<&MemberProgram>, show_personal: bool) -> Self {
        let f = program.map(|p| &p.fields);
        let mask = |text: &str, masker: fn(&str) -> String| {
            if show_personal {
                text.to_owned()
            } else {
                masker(text)
            }
        };
        Self {
            member_id: m.id,
            member_number: f
                .map(|f| f.member_number(m.id))
                .unwrap_or_else(|| m.id.to_string()),
            program_id: m.program_id,
            program_title: f.map(|f| f.title.clone()).unwrap_or_default(),
            customer_id: m.customer_id,
            external_id: m.external_id.clone(),
            phone: mask(&m.phone, kaquan_core::pickup::mask_phone),
            name: mask(&m.name, kaquan_core::pickup::mask_name),
            birthday: if show_personal {
                m.birthday.clone().unwrap_or_default()
            } else {
                String::new()
            },
            gender: m.gender.map(|g| g.label_zh()).unwrap_or("").to_owned(),
            tier: m.tier,
            tier_name: f
                .map(|f| f.tier_name(m.tier).to_owned())
                .unwrap_or_default(),
            discount_label: f
                .map(|f| discount_label(f.discount_for(m.tier)))
                .unwrap_or_default(),
            points: m.points,
            points_earned: m.points_earned,
            balance_fen: m.balance_fen,
            balance_yuan: kaquan_core::money::format_yuan(m.balance_fen),
            spend_yuan: kaquan_core::money::format_yuan(m.spend_fen),
            activated_at_text: format_datetime(m.activated_at),
        }
    }
}

/// The programs of a merchant by id, for the views of a page of members.
pub async fn programs_by_id(state: &AppState, merchant_id: i64) -> ApiResult<Vec<MemberProgram>> {
    Ok(state.store.list_member_programs(merchant_id).await?)
}

pub async fn member_page(
    state: &AppState,
    authed: &Authed,
    query: &MemberQuery,
) -> ApiResult<ListDto<MemberView>> {
    authed.require(Permission::MembersView)?;
    let filter = query.filter()?;
    let page = ListPage::new(query.page, query.page_size);
    let (members, total) = state
        .store
        .list_members(authed.merchant_id(), &filter, page)
        .await?;
    let programs = programs_by_id(state, authed.merchant_id()).await?;
    let show = authed.can(Permission::PersonalDataView);
    let items = members
        .iter()
        .map(|m| MemberView::new(m, programs.iter().find(|p| p.id == m.program_id), show))
        .collect();
    Ok(ListDto::new(items, total, page))
}

async fn list_members(
    State(state): State<AppState>,
    authed: Authed,
    Query(query): Query<MemberQuery>,
) -> ApiResult<Json<ListDto<MemberView>>> {
    Ok(Json(member_page(&state, &authed, &query).await?))
}

pub async fn member_view(
    state: &AppState,
    authed: &Authed,
    member_id: i64,
) -> ApiResult<MemberView> {
    authed.require(Permission::MembersView)?;
    let member = state
        .store
        .get_member(authed.merchant_id(), member_id)
        .await?;
    let program = state
        .store
        .get_member_program(authed.merchant_id(), member.program_id)
        .await?;
    Ok(MemberView::new(
        &member,
        Some(&program),
        authed.can(Permission::PersonalDataView),
    ))
}

async fn get_member(
    State(state): State<AppState>,
    authed: Authed,
    Path(member_id): Path<i64>,
) -> ApiResult<Json<MemberView>> {
    Ok(Json(member_view(&state, &authed, member_id).await?))
}

#[derive(Deserialize, utoipa::IntoParams, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    pub page: Option<i64>,
    pub page_size: Option<i64>,
}

pub async fn points_statement(
    state: &AppState,
    authed: &Authed,
    member_id: i64,
    page: ListPage,
) -> ApiResult<ListDto<TransactionView>> {
    authed.require(Permission::MembersView)?;
    let member = state
        .store
        .get_member(authed.merchant_id(), member_id)
        .await?;
    let (lines, total) = state
        .store
        .list_points_statement(authed.merchant_id(), member.customer_id, page)
        .await?;
    Ok(ListDto::new(
        lines.iter().map(TransactionView::new).collect(),
        total,
        page,
    ))
}

async fn list_member_points_statement(
    State(state): State<AppState>,
    authed: Authed,
    Path(member_id): Path<i64>,
    Query(query): Query<PageQuery>,
) -> ApiResult<Json<ListDto<TransactionView>>> {
    let page = ListPage::new(query.page, query.page_size);
    Ok(Json(
        points_statement(&state, &authed, member_id, page).await?,
    ))
}

/// A member's operation as staff read it.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"operation_id": 42, "kind": "payment", "kind_label": "买单", "reference": "M20261206001", "amount_yuan": "100.00", "discount_yuan": "5.00", "points_delta": 95, "balance_delta_yuan": "-20.00", "points_after": 115, "balance_after_yuan": "90.00", "reason": "", "created_by": "api:kq_1", "created_at_text": "2026-12-06 10:00"}))]
pub struct MemberOperationView {
    pub operation_id: i64,
    pub kind: &'static str,
    pub kind_label: &'static str,
    pub reference: String,
    pub amount_yuan: String,
    pub discount_yuan: String,
    pub points_delta: i64,
    pub balance_delta_yuan: String,
    pub points_after: i64,
    pub balance_after_yuan: String,
    pub reason: String,
    pub created_by: String,
    pub created_at_text: String,
}

impl MemberOperationView {
    pub fn new(op: &MemberOperation) -> Self {
        let yuan = kaquan_core::money::format_yuan;
        Self {
            operation_id: op.id,
            kind: op.kind.code(),
            kind_label: op.kind.label_zh(),
            reference: op.reference.clone(),
            amount_yuan: yuan(op.amount_fen),
            discount_yuan: yuan(op.discount_fen),
            points_delta: op.points_delta(),
            balance_delta_yuan: yuan(op.balance_delta_fen()),
            points_after: op.points_after,
            balance_after_yuan: yuan(op.balance_after_fen),
            reason: op.reason.clone(),
            created_by: op.created_by.clone(),
            created_at_text: format_datetime(op.created_at),
        }
    }
}

pub async fn operations(
    state: &AppState,
    authed: &Authed,
    member_id: i64,
    page: ListPage,
) -> ApiResult<ListDto<MemberOperationView>> {
    authed.require(Permission::MembersView)?;
    let (ops, total) = state
        .store
        .list_member_operations(authed.merchant_id(), member_id, page)
        .await?;
    Ok(ListDto::new(
        ops.iter().map(MemberOperationView::new).collect(),
        total,
        page,
    ))
}

async fn list_member_operations(
    State(state): State<AppState>,
    authed: Authed,
    Path(member_id): Path<i64>,
    Query(query): Query<PageQuery>,
) -> ApiResult<Json<ListDto<MemberOperationView>>> {
    let page = ListPage::new(query.page, query.page_size);
    Ok(Json(operations(&state, &authed, member_id, page).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"delta": -100, "reason": "重复赠送，扣回"}))]
pub struct PointsAdjustmentRequest {
    /// Points to add (positive) or take (negative, never below zero).
    pub delta: i64,
    /// Required: what the audit log and the member's statement say.
    #[schema(min_length = 1, max_length = 200)]
    pub reason: String,
}

/// 积分调整 by hand, with a reason (audited; replayed on the same key).
pub async fn adjust_points(
    state: &AppState,
    authed: &Authed,
    member_id: i64,
    request: &PointsAdjustmentRequest,
    idempotency: Option<IdempotencyClaim>,
) -> ApiResult<MemberOperation> {
    authed.require(Permission::MembersManage)?;
    kaquan_core::member::check_points_delta(request.delta).map_err(ApiError::invalid)?;
    let reason = request.reason.trim();
    if reason.is_empty() {
        return Err(ApiError::invalid("请填写调整原因"));
    }
    kaquan_core::text::check_field("调整原因", reason, kaquan_core::ledger::REASON_LENGTH_MAX)
        .map_err(ApiError::invalid)?;
    let called = state
        .store
        .post_member_op(
            &ApiCall {
                nonce: None,
                idempotency,
            },
            &MemberOp {
                merchant_id: authed.merchant_id(),
                action: MemberAction::AdjustPoints(AdjustPoints {
                    member_id,
                    delta: request.delta,
                    reason: reason.to_owned(),
                }),
                actor: authed.actor(),
                now: crate::now(),
            },
        )
        .await?;
    Ok(called.result?)
}

async fn create_points_adjustment(
    State(state): State<AppState>,
    authed: Authed,
    Path(member_id): Path<i64>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<MemberOperationView>)> {
    let request: PointsAdjustmentRequest = crate::extract::parse_json(&body)?;
    let idempotency = match headers.get("idempotency-key").and_then(|v| v.to_str().ok()) {
        None => None,
        Some(text) => Some(IdempotencyClaim {
            key: IdempotencyKey::parse(text)
                .ok_or_else(|| ApiError::invalid("Idempotency-Key 须为 1–255 个可见 ASCII 字符"))?,
            request_hash: kaquan_core::signing::body_hash_hex(
                format!("points:{member_id}:{}", String::from_utf8_lossy(&body)).as_bytes(),
            ),
        }),
    };
    let op = adjust_points(&state, &authed, member_id, &request, idempotency).await?;
    debug_assert_eq!(op.kind, OperationKind::AdjustPoints);
    Ok((StatusCode::CREATED, Json(MemberOperationView::new(&op))))
}

/// Members one export holds at most.
const MEMBERS_EXPORT_ROWS_MAX: i64 = 100_000;

const MEMBER_HEADERS: [&str; 12] = [
    "会员号",
    "会员卡",
    "商城顾客ID",
    "手机号",
    "姓名",
    "生日",
    "性别",
    "等级",
    "积分",
    "累计获得积分",
    "余额（元）",
    "开卡时间",
];

/// Every matching member as xlsx.
pub async fn export_member_file(
    state: &AppState,
    authed: &Authed,
    query: &MemberQuery,
) -> ApiResult<Response> {
    authed.require(Permission::MembersView)?;
    let mut rows = Vec::new();
    for number in 1.. {
        let query = MemberQuery {
            page: Some(number),
            page_size: Some(kaquan_core::store::PAGE_SIZE_MAX),
            ..query.clone()
        };
        let page = member_page(state, authed, &query).await?;
        let n = page.items.len() as i64;
        rows.extend(page.items);
        if n < page.page_size || rows.len() as i64 >= MEMBERS_EXPORT_ROWS_MAX {
            break;
        }
    }
    let path = crate::exports::temp_export_path("xlsx");
    let written = path.clone();
    let lang = authed.export_lang;
    crate::off_runtime(move || write_members(&rows, &written, lang)).await??;
    let name = format!("会员-{}.xlsx", format_date(crate::now()).replace('-', ""));
    crate::exports::stream_file(&path, &name, crate::exports::XLSX_CONTENT_TYPE).await
}

/// Writes members as xlsx (the console's and the CLI's export), its
/// headers in `lang`.
pub fn write_members(
    rows: &[MemberView],
    path: &std::path::Path,
    lang: crate::i18n::Lang,
) -> ApiResult<()> {
    let xlsx_err = |e: rust_xlsxwriter::XlsxError| ApiError::Internal(format!("xlsx: {e}"));
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let sheet = workbook.add_worksheet();
    sheet.set_name(lang.text("会员")).map_err(xlsx_err)?;
    for (c, h) in lang.headers(&MEMBER_HEADERS).iter().enumerate() {
        sheet.write_string(0, c as u16, h).map_err(xlsx_err)?;
    }
    let money = rust_xlsxwriter::Format::new().set_num_format("0.00");
    for (i, m) in rows.iter().enumerate() {
        let row = i as u32 + 1;
        let gender = lang.text(&m.gender);
        let texts = [
            &m.member_number,
            &m.program_title,
            m.external_id.as_deref().unwrap_or(""),
            &m.phone,
            &m.name,
            &m.birthday,
            &gender,
            &m.tier_name,
        ];
        for (c, text) in texts.iter().enumerate() {
            sheet
                .write_string(row, c as u16, crate::exports::escape_formula(text))
                .map_err(xlsx_err)?;
        }
        sheet
            .write_number(row, 8, m.points as f64)
            .map_err(xlsx_err)?;
        sheet
            .write_number(row, 9, m.points_earned as f64)
            .map_err(xlsx_err)?;
        sheet
            .write_number_with_format(row, 10, m.balance_fen as f64 / 100.0, &money)
            .map_err(xlsx_err)?;
        sheet
            .write_string(row, 11, &m.activated_at_text)
            .map_err(xlsx_err)?;
    }
    workbook.save(path).map_err(xlsx_err)?;
    Ok(())
}

async fn export_members(
    State(state): State<AppState>,
    authed: Authed,
    Query(query): Query<MemberQuery>,
) -> ApiResult<Response> {
    export_member_file(&state, &authed, &query).await
}

/// One 消息记录 line: what a member was told after one operation.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"event_id": 9, "member_id": 7, "member_number": "VIP00000007", "phone": "138****0000", "operation": "payment", "notice": "points_and_balance", "notice_label": "积分和余额变动", "message": "积分 +95，当前 115；余额 -¥20.00，当前 ¥90.00", "created_at_text": "2026-12-06 10:00"}))]
pub struct MemberMessageView {
    pub event_id: i64,
    pub member_id: i64,
    pub member_number: String,
    pub phone: String,
    pub operation: String,
    /// `points`, `balance` or `points_and_balance` (one merged message).
    pub notice: String,
    pub notice_label: &'static str,
    pub message: String,
    pub created_at_text: String,
}

impl MemberMessageView {
    pub fn new(event: &kaquan_core::event::Event, show_personal: bool) -> Self {
        let data: serde_json::Value = serde_json::from_str(&event.data).unwrap_or_default();
        let text = |key: &str| data[key].as_str().unwrap_or_default().to_owned();
        let notice = text("notice");
        let phone = text("phone");
        Self {
            event_id: event.id,
            member_id: data["member_id"].as_i64().unwrap_or_default(),
            member_number: text("member_number"),
            phone: if show_personal {
                phone
            } else {
                kaquan_core::pickup::mask_phone(&phone)
            },
            operation: text("operation"),
            notice_label: match notice.as_str() {
                "points" => "积分变动",
                "balance" => "余额变动",
                _ => "积分和余额变动",
            },
            notice,
            message: text("message"),
            created_at_text: format_datetime(event.created_at),
        }
    }
}

pub async fn message_page(
    state: &AppState,
    authed: &Authed,
    page: ListPage,
) -> ApiResult<ListDto<MemberMessageView>> {
    authed.require(Permission::MembersView)?;
    let (events, total) = state
        .store
        .list_member_messages(authed.merchant_id(), page)
        .await?;
    let show = authed.can(Permission::PersonalDataView);
    Ok(ListDto::new(
        events
            .iter()
            .map(|e| MemberMessageView::new(e, show))
            .collect(),
        total,
        page,
    ))
}

async fn list_member_messages(
    State(state): State<AppState>,
    authed: Authed,
    Query(query): Query<PageQuery>,
) -> ApiResult<Json<ListDto<MemberMessageView>>> {
    let page = ListPage::new(query.page, query.page_size);
    Ok(Json(message_page(&state, &authed, page).await?))
}

/// Members one 积分有效期 sweep looks at; a full sweep goes on at once.
pub const POINTS_SWEEP_MAX: i64 = 500;
/// How long the sweep rests once it found less than a full sweep's work
/// (every member is looked at once a day; a sweep is cheap when done).
const POINTS_SWEEP_IDLE: std::time::Duration = std::time::Duration::from_secs(600);

/// 积分有效期 beside every server: lapses points and sends the notices
/// before they do, on any number of nodes (each point lapses once).
pub fn spawn_points_sweep(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let looked_at = match state
                .store
                .expire_points(crate::now(), POINTS_SWEEP_MAX)
                .await
            {
                Ok(sweep) => {
                    if sweep.expired + sweep.noticed > 0 {
                        tracing::info!(sweep.expired, sweep.noticed, "points expiry sweep");
                    }
                    sweep.looked_at
                }
                Err(error) => {
                    tracing::warn!(%error, "the points expiry sweep failed; will retry");
                    0
                }
            };
            if looked_at < POINTS_SWEEP_MAX {
                tokio::time::sleep(POINTS_SWEEP_IDLE).await;
            }
        }
    })
}
