//! 支付后赠会员卡: the rules in the staff API and the console (生效中 and
//! 已失效, add, delete), the payments reported and what each led to, and
//! the payment system's signed notification (`POST
//! /open/v1/payment-notifications`).

use crate::auth::Authed;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Form, Json, Path, Query};
use crate::forms::redirect_with;
use crate::lists::ListDto;
use crate::member_programs::open_path;
use crate::open_api::Signed;
use crate::pages::{render, Page, PageResult};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;
use kaquan_core::auth::Permission;
use kaquan_core::clock::format_datetime;
use kaquan_core::member::pay_gift::{
    check_mch_id, notify_payment, GiftSend, PayGiftFields, PayGiftRule, PaymentNotice,
};
use kaquan_core::member::ProgramState;
use kaquan_core::store::Page as ListPage;
use serde::{Deserialize, Serialize};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/pay-gift-rules",
            get(list_pay_gift_rules).post(create_pay_gift_rule),
        )
        .route(
            "/api/v1/pay-gift-rules/{rule_id}",
            delete(delete_pay_gift_rule),
        )
        .route("/api/v1/pay-gift-sends", get(list_pay_gift_sends))
        .route(
            "/open/v1/payment-notifications",
            post(create_payment_notification),
        )
        .route(
            "/member-programs/pay-gift",
            get(rules_page).post(create_form),
        )
        .route(
            "/member-programs/pay-gift/{rule_id}/delete",
            post(delete_form),
        )
}

/// A rule as staff write it.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"program_id": 1, "mch_ids": ["1900000109"], "least_cost_fen": 0, "max_cost_fen": null, "begin_date": "2026-12-01", "end_date": "2026-12-31"}))]
pub struct PayGiftRuleRequest {
    /// The 会员卡 to give.
    pub program_id: i64,
    /// 微信支付商户号 (one rule each).
    pub mch_ids: Vec<String>,
    /// 0 and no maximum: 不限额.
    #[serde(default)]
    pub least_cost_fen: i64,
    pub max_cost_fen: Option<i64>,
    /// `YYYY-MM-DD`: live from the start of this day …
    pub begin_date: String,
    /// … to the end of this one.
    pub end_date: String,
}

impl PayGiftRuleRequest {
    fn fields(&self) -> ApiResult<PayGiftFields> {
        let date = |text: &str, end: bool| {
            crate::lists::parse_optional_date(Some(text), "生效时间", end)?
                .ok_or_else(|| ApiError::invalid("请填写生效时间"))
        };
        let fields = PayGiftFields {
            program_id: self.program_id,
            mch_ids: self
                .mch_ids
                .iter()
                .map(|m| check_mch_id(m))
                .collect::<Result<_, _>>()
                .map_err(ApiError::invalid)?,
            least_cost_fen: self.least_cost_fen,
            max_cost_fen: self.max_cost_fen,
            begin_at: date(&self.begin_date, false)?,
            end_at: date(&self.end_date, true)?,
        };
        fields.check().map_err(ApiError::invalid)?;
        Ok(fields)
    }
}

/// A rule as the console shows it, with where it stands.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": 3, "program_id": 1, "program_title": "果园会员卡", "mch_ids": ["1900000109"], "least_cost_fen": 0, "max_cost_fen": null, "condition": "不限额", "begin_at_text": "2026-12-01 00:00", "end_at_text": "2026-12-31 23:59", "status": "live", "status_label": "生效中", "void": false, "created_at_text": "2026-12-01 09:00"}))]
pub struct PayGiftRuleDto {
    pub id: i64,
    pub program_id: i64,
    pub program_title: String,
    pub mch_ids: Vec<String>,
    pub least_cost_fen: i64,
    pub max_cost_fen: Option<i64>,
    /// 不限额, or the range in yuan.
    pub condition: String,
    pub begin_at_text: String,
    pub end_at_text: String,
    /// `pending`, `live`, `deleted`, `ended` or `program_disabled`.
    pub status: &'static str,
    pub status_label: &'static str,
    /// 已失效: deleted, ended, or its card disabled; it never fires again.
    pub void: bool,
    pub created_at_text: String,
}

async fn rule_dtos(state: &AppState, authed: &Authed) -> ApiResult<Vec<PayGiftRuleDto>> {
    authed.require(Permission::MembersView)?;
    let m = authed.merchant_id();
    let programs = state.store.list_member_programs(m).await?;
    let now = crate::now();
    Ok(state
        .store
        .list_pay_gift_rules(m)
        .await?
        .iter()
        .map(|(rule, program_state)| dto(rule, *program_state, &programs, now))
        .collect())
}

fn dto(
    rule: &PayGiftRule,
    program_state: ProgramState,
    programs: &[kaquan_core::member::MemberProgram],
    now: i64,
) -> PayGiftRuleDto {
    let f = &rule.fields;
    let status = rule.status(program_state, now);
    PayGiftRuleDto {
        id: rule.id,
        program_id: f.program_id,
        program_title: programs
            .iter()
            .find(|p| p.id == f.program_id)
            .map(|p| p.fields.title.clone())
            .unwrap_or_default(),
        mch_ids: f.mch_ids.clone(),
        least_cost_fen: f.least_cost_fen,
        max_cost_fen: f.max_cost_fen,
        condition: f.condition_zh(),
        begin_at_text: format_datetime(f.begin_at),
        end_at_text: format_datetime(f.end_at),
        status: status.code(),
        status_label: status.label_zh(),
        void: status.is_void(),
        created_at_text: format_datetime(rule.created_at),
    }
}

async fn list_pay_gift_rules(
    State(state): State<AppState>,
    authed: Authed,
) -> ApiResult<Json<Vec<PayGiftRuleDto>>> {
    Ok(Json(rule_dtos(&state, &authed).await?))
}

async fn create_rule(
    state: &AppState,
    authed: &Authed,
    request: &PayGiftRuleRequest,
) -> ApiResult<PayGiftRule> {
    authed.require(Permission::MembersManage)?;
    let fields = request.fields()?;
    state
        .store
        .create_pay_gift_rule(authed.merchant_id(), &fields, &authed.actor(), crate::now())
        .await?
        .map_err(ApiError::RuleRefused)
}

async fn create_pay_gift_rule(
    State(state): State<AppState>,
    authed: Authed,
    Json(request): Json<PayGiftRuleRequest>,
) -> ApiResult<(StatusCode, Json<PayGiftRuleDto>)> {
    let rule = create_rule(&state, &authed, &request).await?;
    let programs = state
        .store
        .list_member_programs(authed.merchant_id())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(dto(&rule, ProgramState::Active, &programs, crate::now())),
    ))
}

async fn delete_rule(state: &AppState, authed: &Authed, rule_id: i64) -> ApiResult<()> {
    authed.require(Permission::MembersManage)?;
    Ok(state
        .store
        .delete_pay_gift_rule(authed.merchant_id(), rule_id, &authed.actor(), crate::now())
        .await?)
}

async fn delete_pay_gift_rule(
    State(state): State<AppState>,
    authed: Authed,
    Path(rule_id): Path<i64>,
) -> ApiResult<StatusCode> {
    delete_rule(&state, &authed, rule_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A reported payment and what it led to.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"payment_id": "4200001234202612060000000001", "mch_id": "1900000109", "amount_fen": 8800, "amount_yuan": "88.00", "outcome": "sent", "outcome_label": "已发送领卡消息", "rule_id": 3, "program_id": 1, "created_at_text": "2026-12-06 12:00"}))]
pub struct GiftSendDto {
    pub payment_id: String,
    pub mch_id: String,
    pub amount_fen: i64,
    pub amount_yuan: String,
    /// `sent`, `no_live_rule`, `amount_out_of_range` or `already_member`.
    pub outcome: &'static str,
    pub outcome_label: &'static str,
    pub rule_id: Option<i64>,
    pub program_id: Option<i64>,
    pub created_at_text: String,
}

impl GiftSendDto {
    fn new(send: &GiftSend) -> Self {
        Self {
            payment_id: send.notice.payment_id.clone(),
            mch_id: send.notice.mch_id.clone(),
            amount_fen: send.notice.amount_fen,
            amount_yuan: kaquan_core::money::format_yuan(send.notice.amount_fen),
            outcome: send.outcome.code(),
            outcome_label: send.outcome.label_zh(),
            rule_id: send.rule_id,
            program_id: send.program_id,
            created_at_text: format_datetime(send.created_at),
        }
    }
}

#[derive(Deserialize, utoipa::IntoParams, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendQuery {
    pub page: Option<i64>,
    pub page_size: Option<i64>,
}

async fn send_page(
    state: &AppState,
    authed: &Authed,
    page: ListPage,
) -> ApiResult<ListDto<GiftSendDto>> {
    authed.require(Permission::MembersView)?;
    let (sends, total) = state
        .store
        .list_gift_sends(authed.merchant_id(), page)
        .await?;
    Ok(ListDto::new(
        sends.iter().map(GiftSendDto::new).collect(),
        total,
        page,
    ))
}

async fn list_pay_gift_sends(
    State(state): State<AppState>,
    authed: Authed,
    Query(query): Query<SendQuery>,
) -> ApiResult<Json<ListDto<GiftSendDto>>> {
    let page = ListPage::new(query.page, query.page_size);
    Ok(Json(send_page(&state, &authed, page).await?))
}

/// What the merchant's payment system reports.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"payment_id": "4200001234202612060000000001", "mch_id": "1900000109", "amount_fen": 8800, "paid_at": 1796530000, "customer_id": "u-1001", "phone": "13800000000"}))]
pub struct PaymentNotificationRequest {
    /// The payment's id: one message per payment, whatever the retries.
    #[schema(min_length = 1, max_length = 64)]
    pub payment_id: String,
    /// The 商户号 it was paid to.
    pub mch_id: String,
    #[schema(minimum = 1, maximum = 100_000_000)]
    pub amount_fen: i64,
    /// Unix seconds; default now.
    pub paid_at: Option<i64>,
    /// The mall's customer id, if known.
    pub customer_id: Option<String>,
    /// The customer's mobile, if known.
    pub phone: Option<String>,
}

/// A payment for 支付后赠会员卡: 201 with what it led to (200 when the
/// payment id was reported before).
async fn create_payment_notification(
    State(state): State<AppState>,
    signed: Signed,
) -> ApiResult<Response> {
    let request: PaymentNotificationRequest = signed.json()?;
    signed.record_nonce(&state).await?;
    let notice = PaymentNotice {
        payment_id: kaquan_core::ledger::check_reference("payment_id", &request.payment_id)
            .map_err(ApiError::invalid)?,
        mch_id: check_mch_id(&request.mch_id).map_err(ApiError::invalid)?,
        amount_fen: kaquan_core::ledger::check_amount(request.amount_fen)
            .map_err(ApiError::invalid)?,
        paid_at: request.paid_at.unwrap_or_else(crate::now),
        customer_id: request
            .customer_id
            .as_deref()
            .map(|c| kaquan_core::ledger::check_reference("customer_id", c))
            .transpose()
            .map_err(ApiError::invalid)?,
        phone: request
            .phone
            .as_deref()
            .map(kaquan_core::customer::check_mobile)
            .transpose()
            .map_err(ApiError::invalid)?,
    };
    let m = signed.merchant_id;
    let public_url = state.public_url_for(m).await?;
    let open_url = move |program_id: i64| format!("{public_url}{}", open_path(m, program_id));
    let (send, replayed) =
        notify_payment(state.store.as_ref(), m, &notice, &open_url, crate::now()).await?;
    let status = if replayed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let mut response = (status, Json(GiftSendDto::new(&send))).into_response();
    if replayed {
        response.headers_mut().insert(
            "idempotent-replayed",
            axum::http::HeaderValue::from_static("true"),
        );
    }
    Ok(response)
}

#[derive(Serialize)]
struct RulesView {
    live: Vec<PayGiftRuleDto>,
    void: Vec<PayGiftRuleDto>,
    programs: Vec<(i64, String)>,
    sends: ListDto<GiftSendDto>,
    can_manage: bool,
    today: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesQuery {
    msg: Option<String>,
}

async fn rules_page(
    State(state): State<AppState>,
    authed: Authed,
    Query(query): Query<RulesQuery>,
) -> PageResult {
    let (void, live): (Vec<_>, Vec<_>) = rule_dtos(&state, &authed)
        .await?
        .into_iter()
        .partition(|r| r.void);
    let view = RulesView {
        live,
        void,
        programs: state
            .store
            .list_member_programs(authed.merchant_id())
            .await?
            .into_iter()
            .filter(|p| p.state == ProgramState::Active)
            .map(|p| (p.id, p.fields.title))
            .collect(),
        sends: send_page(&state, &authed, ListPage::new(Some(1), Some(20))).await?,
        can_manage: authed.can(Permission::MembersManage),
        today: kaquan_core::clock::format_date(crate::now()),
    };
    Ok(render(
        &state,
        "pay_gift.html",
        &Page::new("支付后赠会员卡", &authed).with_message(query.msg),
        view,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleForm {
    csrf: String,
    program_id: i64,
    mch_ids: String,
    condition: String,
    least_cost: String,
    max_cost: String,
    begin_date: String,
    end_date: String,
}

async fn create_form(
    State(state): State<AppState>,
    authed: Authed,
    Form(form): Form<RuleForm>,
) -> PageResult {
    authed.check_form_csrf(&form.csrf)?;
    let yuan = |text: &str, what: &str| -> ApiResult<Option<i64>> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(None);
        }
        kaquan_core::money::parse_yuan(text)
            .map(Some)
            .ok_or_else(|| ApiError::invalid(format!("{what}应为金额，如 50 或 9.90")))
    };
    let limited = form.condition == "range";
    let request = PayGiftRuleRequest {
        program_id: form.program_id,
        mch_ids: form
            .mch_ids
            .split([',', '，', ' ', '\n'])
            .filter(|m| !m.trim().is_empty())
            .map(|m| m.trim().to_owned())
            .collect(),
        least_cost_fen: if limited {
            yuan(&form.least_cost, "最低金额")?.unwrap_or(0)
        } else {
            0
        },
        max_cost_fen: if limited {
            yuan(&form.max_cost, "最高金额")?
        } else {
            None
        },
        begin_date: form.begin_date,
        end_date: form.end_date,
    };
    let rule = create_rule(&state, &authed, &request).await?;
    Ok(redirect_with(
        "/member-programs/pay-gift",
        &format!(
            "已添加规则 #{}（{}）",
            rule.id,
            rule.fields.mch_ids.join("、")
        ),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CsrfForm {
    csrf: String,
}

async fn delete_form(
    State(state): State<AppState>,
    authed: Authed,
    Path(rule_id): Path<i64>,
    Form(form): Form<CsrfForm>,
) -> PageResult {
    authed.check_form_csrf(&form.csrf)?;
    delete_rule(&state, &authed, rule_id).await?;
    Ok(redirect_with(
        "/member-programs/pay-gift",
        &format!("已删除规则 #{rule_id}，可在“已失效”中查看"),
    ))
}
