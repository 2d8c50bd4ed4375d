//! The mall's and POS's 会员卡 contract (signed open API, an
//! Idempotency-Key on every write): 开卡 for a customer, read a member,
//! 买单 (report a payment: the member discount, points used, balance
//! spent, points earned), its refunds, 充值, and the points statement.

use crate::error::{ApiError, ApiResult};
use crate::extract::{Path, Query};
use crate::open_api::{respond, Signed, TransactionDto};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use kaquan_core::customer::check_mobile;
use kaquan_core::ledger::{check_amount, check_reference, CustomerRef, REASON_LENGTH_MAX};
use kaquan_core::member::operation::{
    ActivateMember, MemberAction, MemberOp, MemberOperation, MemberRef, Recharge, RefundPayment,
    ReportPayment,
};
use kaquan_core::member::{Gender, Member, MemberProgram};
use kaquan_core::store::Page;
use serde::{Deserialize, Serialize};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/open/v1/members", post(create_member))
        .route("/open/v1/members/{customer_id}", get(get_member))
        .route(
            "/open/v1/members/{customer_id}/points-statement",
            get(list_member_points),
        )
        .route("/open/v1/payments", post(create_payment))
        .route(
            "/open/v1/payments/{payment_id}/refunds",
            post(create_payment_refund),
        )
        .route("/open/v1/recharges", post(create_recharge))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"program_id": 1, "customer_id": "u-1001", "phone": "13800000000", "name": "王小明", "birthday": "1990-05-01", "gender": "female"}))]
pub struct MemberRequest {
    /// The 会员卡 program.
    pub program_id: i64,
    /// The customer's id in the mall.
    #[schema(min_length = 1, max_length = 64)]
    pub customer_id: String,
    /// A mainland mobile number (11 digits).
    pub phone: String,
    #[serde(default)]
    #[schema(max_length = 32)]
    pub name: String,
    /// `YYYY-MM-DD`.
    pub birthday: Option<String>,
    /// `male` or `female`.
    pub gender: Option<String>,
}

/// A member as the mall reads it (the partner contract).
#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"member_id": 7, "member_number": "VIP00000007", "program_id": 1, "customer_id": "u-1001", "phone": "13800000000", "name": "王小明", "tier": 1, "tier_name": "金卡", "discount_percent_off": 10, "points": 115, "points_earned": 115, "balance_fen": 9000, "spend_fen": 9500, "activated_at": 1790000000}))]
pub struct MemberDto {
    pub member_id: i64,
    pub member_number: String,
    pub program_id: i64,
    pub customer_id: Option<String>,
    pub phone: String,
    pub name: String,
    /// Rank in the program's tiers (0: none yet).
    pub tier: usize,
    pub tier_name: String,
    /// The member's discount now, percent off (10 = 9折).
    pub discount_percent_off: i64,
    pub points: i64,
    /// Points earned in total (what points tiers count).
    pub points_earned: i64,
    pub balance_fen: i64,
    /// Money paid in total (what spend tiers count).
    pub spend_fen: i64,
    pub activated_at: i64,
}

pub(crate) fn member_dto(member: &Member, program: &MemberProgram) -> MemberDto {
    MemberDto {
        member_id: member.id,
        member_number: program.fields.member_number(member.id),
        program_id: member.program_id,
        customer_id: member.external_id.clone(),
        phone: member.phone.clone(),
        name: member.name.clone(),
        tier: member.tier,
        tier_name: program.fields.tier_name(member.tier).to_owned(),
        discount_percent_off: program.fields.discount_for(member.tier),
        points: member.points,
        points_earned: member.points_earned,
        balance_fen: member.balance_fen,
        spend_fen: member.spend_fen,
        activated_at: member.activated_at,
    }
}

/// What one call on a member did (the partner contract).
#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"operation_id": 42, "kind": "payment", "member_id": 7, "reference": "M20261206001", "payment_id": null, "amount_fen": 10000, "discount_fen": 500, "points_used": 100, "points_deduction_fen": 100, "balance_fen": 2000, "bonus_fen": 0, "cash_fen": 7400, "points_earned": 94, "points_after": 109, "balance_after_fen": 9000, "tier": 1, "refunded_fen": 0, "created_at": 1790000000}))]
pub struct MemberOperationDto {
    pub operation_id: i64,
    /// `activate`, `payment`, `refund`, `recharge`, `adjust_points` or `expire_points`.
    pub kind: &'static str,
    pub member_id: i64,
    /// The order or top-up id; `payment:<id>` on a refund.
    pub reference: String,
    /// The payment a refund returns.
    pub payment_id: Option<i64>,
    /// The order amount, the refunded amount or the top-up.
    pub amount_fen: i64,
    /// The member discount taken off the order.
    pub discount_fen: i64,
    /// Points used (payment) or given back (refund).
    pub points_used: i64,
    /// What the used points took off the order.
    pub points_deduction_fen: i64,
    /// Balance spent (payment), given back (refund) or topped up.
    pub balance_fen: i64,
    /// A top-up's bonus (充 100 送 10: 1000).
    pub bonus_fen: i64,
    /// What is left to pay otherwise (cash, card, WeChat Pay).
    pub cash_fen: i64,
    /// Points earned; negative when a refund took them back.
    pub points_earned: i64,
    pub points_after: i64,
    pub balance_after_fen: i64,
    pub tier: usize,
    /// Of a payment: refunded so far.
    pub refunded_fen: i64,
    pub created_at: i64,
}

pub(crate) fn operation_dto(op: &MemberOperation) -> MemberOperationDto {
    MemberOperationDto {
        operation_id: op.id,
        kind: op.kind.code(),
        member_id: op.member_id,
        reference: op.reference.clone(),
        payment_id: op.payment_id,
        amount_fen: op.amount_fen,
        discount_fen: op.discount_fen,
        points_used: op.points_used,
        points_deduction_fen: op.points_deduction_fen,
        balance_fen: op.balance_fen,
        bonus_fen: op.bonus_fen,
        cash_fen: op.cash_fen(),
        points_earned: op.points_earned,
        points_after: op.points_after,
        balance_after_fen: op.balance_after_fen,
        tier: op.tier_after,
        refunded_fen: op.refunded_fen,
        created_at: op.created_at,
    }
}

fn member_op(signed: &Signed, action: MemberAction) -> MemberOp {
    MemberOp {
        merchant_id: signed.merchant_id,
        action,
        actor: signed.actor(),
        now: crate::now(),
    }
}

/// 开卡: the customer becomes a member (201); a member already answers
/// with their card (200).
async fn create_member(State(state): State<AppState>, signed: Signed) -> ApiResult<Response> {
    let request: MemberRequest = signed.json()?;
    let customer =
        check_reference("customer_id", &request.customer_id).map_err(ApiError::invalid)?;
    let phone = check_mobile(&request.phone).map_err(ApiError::invalid)?;
    kaquan_core::text::check_field("name", &request.name, 32).map_err(ApiError::invalid)?;
    let birthday = request
        .birthday
        .as_deref()
        .map(kaquan_core::member::check_birthday)
        .transpose()
        .map_err(ApiError::invalid)?;
    let gender = match request.gender.as_deref() {
        None => None,
        Some(code) => Some(
            Gender::parse(code).ok_or_else(|| ApiError::invalid("gender 须为 male 或 female"))?,
        ),
    };
    let call = signed.call()?;
    let action = MemberAction::Activate(ActivateMember {
        merchant_id: signed.merchant_id,
        program_id: request.program_id,
        customer: CustomerRef::External(customer),
        phone,
        name: request.name.trim().to_owned(),
        birthday,
        gender,
    });
    let called = state
        .store
        .post_member_op(&call, &member_op(&signed, action))
        .await?;
    let status = if called.replayed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let op = called.result.clone().map_err(ApiError::from)?;
    let member = state
        .store
        .get_member(signed.merchant_id, op.member_id)
        .await?;
    let program = state
        .store
        .get_member_program(signed.merchant_id, member.program_id)
        .await?;
    respond(called, status, |_| member_dto(&member, &program))
}

#[derive(Deserialize, utoipa::IntoParams, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberQuery {
    /// Which card, when the customer holds several.
    pub program_id: Option<i64>,
}

/// The member a signed read names (the customer's only card, or the
/// program's).
async fn find_member(
    state: &AppState,
    signed: &Signed,
    customer_id: &str,
    program_id: Option<i64>,
) -> ApiResult<(Member, MemberProgram)> {
    let external = check_reference("customer_id", customer_id).map_err(ApiError::invalid)?;
    let customer = state
        .store
        .find_external_customer(signed.merchant_id, &external)
        .await?
        .ok_or(ApiError::MemberRefused(
            kaquan_core::member::operation::MemberRefusal::NotAMember,
        ))?;
    let cards: Vec<Member> = state
        .store
        .find_customer_members(signed.merchant_id, customer.id)
        .await?
        .into_iter()
        .filter(|m| program_id.is_none_or(|p| m.program_id == p))
        .collect();
    use kaquan_core::member::operation::MemberRefusal as R;
    let member = match cards.as_slice() {
        [] => return Err(R::NotAMember.into()),
        [one] => one.clone(),
        _ => return Err(R::ProgramRequired.into()),
    };
    let program = state
        .store
        .get_member_program(signed.merchant_id, member.program_id)
        .await?;
    Ok((member, program))
}

async fn get_member(
    State(state): State<AppState>,
    Path(customer_id): Path<String>,
    Query(query): Query<MemberQuery>,
    signed: Signed,
) -> ApiResult<Response> {
    signed.record_nonce(&state).await?;
    let (member, program) = find_member(&state, &signed, &customer_id, query.program_id).await?;
    Ok(axum::response::IntoResponse::into_response(
        crate::extract::Json(member_dto(&member, &program)),
    ))
}

#[derive(Deserialize, utoipa::IntoParams, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PointsQuery {
    pub program_id: Option<i64>,
    pub page: Option<i64>,
    pub page_size: Option<i64>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PointsStatementDto {
    /// 积分明细, newest first: `amount_fen` and `balance_after_fen` are in points.
    pub items: Vec<TransactionDto>,
    pub total: i64,
    pub page: i64,
    pub page_size: i64,
}

async fn list_member_points(
    State(state): State<AppState>,
    Path(customer_id): Path<String>,
    Query(query): Query<PointsQuery>,
    signed: Signed,
) -> ApiResult<Response> {
    signed.record_nonce(&state).await?;
    let (member, _) = find_member(&state, &signed, &customer_id, query.program_id).await?;
    let page = Page::new(query.page, query.page_size);
    let (lines, total) = state
        .store
        .list_points_statement(signed.merchant_id, member.customer_id, page)
        .await?;
    Ok(axum::response::IntoResponse::into_response(
        crate::extract::Json(PointsStatementDto {
            items: lines.iter().map(TransactionDto::new).collect(),
            total,
            page: page.page,
            page_size: page.page_size,
        }),
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"customer_id": "u-1001", "amount_fen": 10000, "use_points": 100, "balance_fen": 2000, "order_id": "M20261206001"}))]
pub struct PaymentRequest {
    #[schema(min_length = 1, max_length = 64)]
    pub customer_id: String,
    /// Which card, when the customer holds several.
    pub program_id: Option<i64>,
    /// The order's amount before the member discount.
    #[schema(minimum = 1, maximum = 100_000_000)]
    pub amount_fen: i64,
    /// Points to use (whole units of the rule's `cost_bonus_unit` are taken).
    #[serde(default)]
    #[schema(minimum = 0)]
    pub use_points: i64,
    /// Balance to pay with.
    #[serde(default)]
    #[schema(minimum = 0)]
    pub balance_fen: i64,
    /// The order id: one payment per order.
    #[schema(min_length = 1, max_length = 64)]
    pub order_id: String,
    /// Where it was paid (门店).
    pub location_id: Option<i64>,
}

/// 买单: applies the member discount, uses points and spends balance as
/// asked, earns points on what was paid; one merged message when both
/// points and balance moved.
async fn create_payment(State(state): State<AppState>, signed: Signed) -> ApiResult<Response> {
    let request: PaymentRequest = signed.json()?;
    let customer =
        check_reference("customer_id", &request.customer_id).map_err(ApiError::invalid)?;
    let reference = check_reference("order_id", &request.order_id).map_err(ApiError::invalid)?;
    let amount_fen = check_amount(request.amount_fen).map_err(ApiError::invalid)?;
    if request.use_points < 0 || request.use_points > kaquan_core::member::POINTS_MAX {
        return Err(ApiError::invalid("use_points 须在 0–100000000 之间"));
    }
    if request.balance_fen < 0 || request.balance_fen > amount_fen {
        return Err(ApiError::invalid("balance_fen 须在 0 与 amount_fen 之间"));
    }
    let call = signed.call()?;
    let action = MemberAction::Pay(ReportPayment {
        member: MemberRef::Customer {
            customer: CustomerRef::External(customer),
            program_id: request.program_id,
        },
        amount_fen,
        use_points: request.use_points,
        balance_fen: request.balance_fen,
        reference,
        location_id: request.location_id,
    });
    let called = state
        .store
        .post_member_op(&call, &member_op(&signed, action))
        .await?;
    respond(called, StatusCode::CREATED, |op| operation_dto(&op))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"amount_fen": 4750, "reason": "退货"}))]
pub struct PaymentRefundRequest {
    /// Of the amount after the member discount.
    #[schema(minimum = 1, maximum = 100_000_000)]
    pub amount_fen: i64,
    #[serde(default)]
    #[schema(max_length = 200)]
    pub reason: String,
}

/// Refunds (part of) a payment: used points and spent balance come back
/// and earned points are taken back, in proportion.
async fn create_payment_refund(
    State(state): State<AppState>,
    Path(payment_id): Path<i64>,
    signed: Signed,
) -> ApiResult<Response> {
    let request: PaymentRefundRequest = signed.json()?;
    let amount_fen = check_amount(request.amount_fen).map_err(ApiError::invalid)?;
    kaquan_core::text::check_field("reason", &request.reason, REASON_LENGTH_MAX)
        .map_err(ApiError::invalid)?;
    let call = signed.call()?;
    let action = MemberAction::Refund(RefundPayment {
        payment_id,
        amount_fen,
        reason: request.reason,
    });
    let called = state
        .store
        .post_member_op(&call, &member_op(&signed, action))
        .await?;
    respond(called, StatusCode::CREATED, |op| operation_dto(&op))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"customer_id": "u-1001", "amount_fen": 10000, "bonus_fen": 1000, "recharge_id": "R20261206001"}))]
pub struct RechargeRequest {
    #[schema(min_length = 1, max_length = 64)]
    pub customer_id: String,
    pub program_id: Option<i64>,
    /// What the customer paid.
    #[schema(minimum = 1, maximum = 100_000_000)]
    pub amount_fen: i64,
    /// The bonus (充 100 送 10: 1000), posted as its own transaction.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 100_000_000)]
    pub bonus_fen: i64,
    /// The payment id of the top-up: one top-up per id.
    #[schema(min_length = 1, max_length = 64)]
    pub recharge_id: String,
}

/// 充值: prepaid stored value, and its bonus apart.
async fn create_recharge(State(state): State<AppState>, signed: Signed) -> ApiResult<Response> {
    let request: RechargeRequest = signed.json()?;
    let customer =
        check_reference("customer_id", &request.customer_id).map_err(ApiError::invalid)?;
    let reference =
        check_reference("recharge_id", &request.recharge_id).map_err(ApiError::invalid)?;
    let amount_fen = check_amount(request.amount_fen).map_err(ApiError::invalid)?;
    if request.bonus_fen != 0 {
        check_amount(request.bonus_fen).map_err(ApiError::invalid)?;
    }
    let call = signed.call()?;
    let action = MemberAction::Recharge(Recharge {
        member: MemberRef::Customer {
            customer: CustomerRef::External(customer),
            program_id: request.program_id,
        },
        amount_fen,
        bonus_fen: request.bonus_fen,
        reference,
    });
    let called = state
        .store
        .post_member_op(&call, &member_op(&signed, action))
        .await?;
    respond(called, StatusCode::CREATED, |op| operation_dto(&op))
}
