//! 会员卡 on PostgreSQL: every call on a member in
//! one transaction — nonce and idempotency key claimed first, the member
//! and its accounts locked (so the plan from core holds until commit, on
//! every node), the ledger's transactions in both assets, the member's
//! counters, the operation record, one audit record and one event.

use crate::customers::resolve_customer;
use crate::events::insert_event;
use crate::ledger::claim_call;
use crate::member_programs::program_rules;
use crate::sql::{
    all, exec, expect_one, filtered_page, insert_audit, map_err, one, opt, parse_or, P,
};
use crate::PgStore;
use deadpool_postgres::GenericClient;
use kaquan_core::audit::{Actor, AuditEntry};
use kaquan_core::event::NewEvent;
use kaquan_core::ledger::{ApiCall, Called, CustomerRef, Refusal, TransactionKind};
use kaquan_core::member::operation::{
    audit_detail, plan_payment, plan_refund, ActivateMember, AdjustPoints, MemberAction, MemberOp,
    MemberOperation, MemberRef, MemberRefusal, OperationKind, Recharge, RefundPayment,
    ReportPayment,
};
use kaquan_core::member::{Gender, Member, MemberProgram, ProgramFields, ProgramState};
use kaquan_core::pickup::Channel;
use kaquan_core::store::Page;
use kaquan_core::{StoreError, StoreResult};
use tokio_postgres::Row;

pub(crate) const MEMBER_COLUMNS: &str = "m.id, m.merchant_id, m.program_id, m.customer_id, c.external_id, m.phone, m.name, \
    m.birthday, m.gender, m.tier, m.points_earned, m.spend_fen, COALESCE(p.balance, 0), COALESCE(f.balance, 0), \
    m.activated_at";
pub(crate) const MEMBER_FROM: &str = "members m JOIN customers c ON c.id = m.customer_id \
    LEFT JOIN ledger_accounts p ON p.customer_id = m.customer_id AND p.asset = 'points' \
    LEFT JOIN ledger_accounts f ON f.customer_id = m.customer_id AND f.asset = 'fen'";

pub(crate) fn member_from_row(r: &Row) -> Member {
    member_from_row_at(r, 0)
}

/// The member whose [`MEMBER_COLUMNS`] start at column `at`.
pub(crate) fn member_from_row_at(r: &Row, at: usize) -> Member {
    let gender: Option<String> = r.get(at + 8);
    Member {
        id: r.get(at),
        merchant_id: r.get(at + 1),
        program_id: r.get(at + 2),
        customer_id: r.get(at + 3),
        external_id: r.get(at + 4),
        phone: r.get(at + 5),
        name: r.get(at + 6),
        birthday: r.get(at + 7),
        gender: gender.as_deref().and_then(Gender::parse),
        tier: usize::try_from(r.get::<_, i64>(at + 9)).unwrap_or(0),
        points_earned: r.get(at + 10),
        spend_fen: r.get(at + 11),
        points: r.get(at + 12),
        balance_fen: r.get(at + 13),
        activated_at: r.get(at + 14),
    }
}

pub(crate) async fn find_member(
    c: &impl GenericClient,
    condition: &str,
    params: &[P<'_>],
) -> StoreResult<Vec<Member>> {
    let sql =
        format!("SELECT {MEMBER_COLUMNS} FROM {MEMBER_FROM} WHERE {condition} ORDER BY m.id DESC");
    Ok(all(c, &sql, params)
        .await?
        .iter()
        .map(member_from_row)
        .collect())
}

pub(crate) async fn member_by_id(c: &impl GenericClient, member_id: i64) -> StoreResult<Member> {
    find_member(c, "m.id = $1", &[&member_id])
        .await?
        .pop()
        .ok_or(StoreError::NotFound)
}

/// The member a call names, locked with its accounts until commit.
async fn resolve_member(
    c: &impl GenericClient,
    merchant_id: i64,
    member: &MemberRef,
) -> StoreResult<Result<Member, MemberRefusal>> {
    // The member's row is found and locked in one round trip; the member
    // is then read with its two accounts locked in a second. Members
    // before accounts: every call locks alike.
    let ids: Vec<(i64, i64)> = match member {
        MemberRef::Id(id) => {
            all(
                c,
                "SELECT id, customer_id FROM members WHERE id = $1 AND merchant_id = $2 FOR UPDATE",
                &[id, &merchant_id],
            )
            .await?
        }
        MemberRef::Customer {
            customer,
            program_id,
        } => {
            // One statement per way of naming the customer, so that each
            // finds the customer by its index (an `$n IS NULL OR …` of both
            // would be planned as a scan).
            let (sql, who): (&str, &(dyn tokio_postgres::types::ToSql + Sync)) = match customer {
                CustomerRef::Id(id) => (
                    "SELECT m.id, m.customer_id FROM members m JOIN customers c ON c.id = m.customer_id \
                     WHERE c.id = $2 AND c.merchant_id = $1 AND m.merchant_id = $1 \
                     AND ($3::bigint IS NULL OR m.program_id = $3) ORDER BY m.id FOR UPDATE OF m",
                    id,
                ),
                CustomerRef::External(external) => (
                    "SELECT m.id, m.customer_id FROM members m JOIN customers c ON c.id = m.customer_id \
                     WHERE c.merchant_id = $1 AND c.external_id = $2 AND m.merchant_id = $1 \
                     AND ($3::bigint IS NULL OR m.program_id = $3) ORDER BY m.id FOR UPDATE OF m",
                    external,
                ),
            };
            all(c, sql, &[&merchant_id, who, program_id])
            .await?
        }
    }
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect();
    let member_id = match ids.as_slice() {
        [] => return Ok(Err(MemberRefusal::NotAMember)),
        [(member_id, _)] => *member_id,
        _ => return Ok(Err(MemberRefusal::ProgramRequired)),
    };
    let sql = format!(
        "SELECT {MEMBER_COLUMNS} FROM members m JOIN customers c ON c.id = m.customer_id \
         JOIN ledger_accounts p ON p.customer_id = m.customer_id AND p.asset = 'points' \
         JOIN ledger_accounts f ON f.customer_id = m.customer_id AND f.asset = 'fen' \
         WHERE m.id = $1 FOR UPDATE OF p, f"
    );
    let row = one(c, &sql, &[&member_id]).await?;
    Ok(Ok(member_from_row(&row)))
}

const OPERATION_COLUMNS: &str = "id, merchant_id, member_id, kind, reference, payment_id, location_id, amount_fen, \
    discount_fen, points_used, points_deduction_fen, balance_fen, bonus_fen, points_earned, points_after, \
    balance_after_fen, tier_after, refunded_fen, reason, created_by, created_at";

fn operation_from_row(r: &Row) -> StoreResult<MemberOperation> {
    Ok(MemberOperation {
        id: r.get(0),
        merchant_id: r.get(1),
        member_id: r.get(2),
        kind: parse_or(OperationKind::parse(r.get(3)), "operation")?,
        reference: r.get(4),
        payment_id: r.get(5),
        location_id: r.get(6),
        amount_fen: r.get(7),
        discount_fen: r.get(8),
        points_used: r.get(9),
        points_deduction_fen: r.get(10),
        balance_fen: r.get(11),
        bonus_fen: r.get(12),
        points_earned: r.get(13),
        points_after: r.get(14),
        balance_after_fen: r.get(15),
        tier_after: usize::try_from(r.get::<_, i64>(16)).unwrap_or(0),
        refunded_fen: r.get(17),
        reason: r.get(18),
        created_by: r.get(19),
        created_at: r.get(20),
    })
}

pub(crate) async fn get_operation(
    c: &impl GenericClient,
    merchant_id: i64,
    id: i64,
) -> StoreResult<MemberOperation> {
    let sql = format!(
        "SELECT {OPERATION_COLUMNS} FROM member_operations WHERE id = $1 AND merchant_id = $2"
    );
    let row = opt(c, &sql, &[&id, &merchant_id])
        .await?
        .ok_or(StoreError::NotFound)?;
    operation_from_row(&row)
}

/// One transaction of a member operation in the ledger, in one statement:
/// the guarded account update, the transaction and both postings. `false`
/// when the account would drop below zero.
pub(crate) struct Posting<'a> {
    pub(crate) member: &'a Member,
    pub(crate) reference: String,
    pub(crate) reason: &'a str,
    pub(crate) actor: &'a Actor,
    pub(crate) now: i64,
}

const POSTING_STATEMENT: &str = "WITH account AS ( \
      UPDATE ledger_accounts SET balance = balance + $1 WHERE customer_id = $2 AND asset = $3 AND balance + $1 >= 0 \
      RETURNING id, balance \
    ), t AS ( \
      INSERT INTO ledger_transactions (merchant_id, customer_id, kind, amount_fen, balance_after_fen, reference, \
      reason, channel, created_by, created_at, asset) \
      SELECT $4, $2, $5, $1, account.balance, $6, $7, $8, $9, $10, $3 FROM account RETURNING id \
    ), p AS ( \
      INSERT INTO ledger_postings (transaction_id, account_id, asset, amount, merchant_id) \
      SELECT t.id, account.id, $3, $1, $4 FROM t, account \
      UNION ALL \
      SELECT t.id, (SELECT id FROM ledger_accounts WHERE merchant_id = $4 AND kind = $11 AND customer_id IS NULL \
      AND asset = $3), $3, -$1, $4 FROM t \
      RETURNING 1 \
    ) SELECT (SELECT count(*) FROM t), (SELECT count(*) FROM p)";

impl Posting<'_> {
    pub(crate) async fn post(
        &self,
        c: &impl GenericClient,
        kind: TransactionKind,
        delta: i64,
    ) -> StoreResult<bool> {
        if delta == 0 {
            return Ok(true);
        }
        let (asset, code, channel, counter) = (
            kind.asset().code(),
            kind.code(),
            Channel::Api.code(),
            kind.counter_account().code(),
        );
        let row = one(
            c,
            POSTING_STATEMENT,
            &[
                &delta,
                &self.member.customer_id,
                &asset,
                &self.member.merchant_id,
                &code,
                &self.reference,
                &self.reason,
                &channel,
                &self.actor.label,
                &self.now,
                &counter,
            ],
        )
        .await?;
        let (n_transactions, n_postings): (i64, i64) = (row.get(0), row.get(1));
        match (n_transactions, n_postings) {
            (0, _) => Ok(false),
            (1, 2) => Ok(true),
            _ => Err(StoreError::Backend(format!(
                "ledger: {n_postings} postings written, not 2"
            ))),
        }
    }

    async fn post_all(
        &self,
        c: &impl GenericClient,
        moves: &[(TransactionKind, i64)],
    ) -> StoreResult<()> {
        for &(kind, delta) in moves {
            // The plan read the accounts under lock: a guard that fails
            // now is a broken invariant, not a race.
            if !self.post(c, kind, delta).await? {
                return Err(StoreError::Backend(format!(
                    "member {}: {} overdrew its account",
                    self.member.id,
                    kind.code()
                )));
            }
        }
        Ok(())
    }
}

/// Writes the operation record, its audit record and its event.
pub(crate) async fn record_operation(
    c: &impl GenericClient,
    mut op: MemberOperation,
    program: &ProgramFields,
    actor: &Actor,
    before: &Member,
) -> StoreResult<MemberOperation> {
    // The member as the operation left them: their balances and tier
    // (the rest is as read before it).
    let row = one(
        c,
        "SELECT (SELECT balance FROM ledger_accounts WHERE customer_id = $1 AND asset = 'points'), \
         (SELECT balance FROM ledger_accounts WHERE customer_id = $1 AND asset = 'fen'), tier \
         FROM members WHERE id = $2",
        &[&before.customer_id, &op.member_id],
    )
    .await?;
    let member = Member {
        points: row.get::<_, Option<i64>>(0).unwrap_or(0),
        balance_fen: row.get::<_, Option<i64>>(1).unwrap_or(0),
        tier: usize::try_from(row.get::<_, i64>(2)).unwrap_or(0),
        ..before.clone()
    };
    op.points_after = member.points;
    op.balance_after_fen = member.balance_fen;
    op.tier_after = member.tier;
    let tier = i64::try_from(op.tier_after).unwrap_or(0);
    op.id = one(
        c,
        "INSERT INTO member_operations (merchant_id, member_id, kind, reference, payment_id, location_id, amount_fen, \
         discount_fen, points_used, points_deduction_fen, balance_fen, bonus_fen, points_earned, points_after, \
         balance_after_fen, tier_after, refunded_fen, reason, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, 0, $17, $18, $19) RETURNING id",
        &[
            &op.merchant_id,
            &op.member_id,
            &op.kind.code(),
            &op.reference,
            &op.payment_id,
            &op.location_id,
            &op.amount_fen,
            &op.discount_fen,
            &op.points_used,
            &op.points_deduction_fen,
            &op.balance_fen,
            &op.bonus_fen,
            &op.points_earned,
            &op.points_after,
            &op.balance_after_fen,
            &tier,
            &op.reason,
            &op.created_by,
            &op.created_at,
        ],
    )
    .await?
    .get(0);
    let entry = AuditEntry {
        merchant_id: op.merchant_id,
        actor: actor.clone(),
        action: format!("member_{}", op.kind.code()),
        target: format!("member={}", op.member_id),
        detail: audit_detail(&op),
        n_affected: 1,
        created_at: op.created_at,
    };
    insert_audit(c, &entry, 1).await?;
    let number = program.member_number(member.id);
    let coupon = match program.notify_coupon_program_id {
        Some(id) if op.points_delta() != 0 => opt(
            c,
            "SELECT claim_token FROM coupon_programs WHERE id = $1 AND merchant_id = $2",
            &[&id, &op.merchant_id],
        )
        .await?
        .map(|r| format!("/m/{}/coupons/{}", op.merchant_id, r.get::<_, String>(0))),
        _ => None,
    };
    if let Some(event) = NewEvent::member_operation(&op, &member, &number, coupon.as_deref()) {
        if program.notify || op.kind == OperationKind::Activate {
            insert_event(c, &event).await?;
        }
    }
    Ok(op)
}

type Outcome = StoreResult<Result<(MemberOperation, bool), MemberRefusal>>;

async fn program_of(c: &impl GenericClient, member: &Member) -> StoreResult<MemberProgram> {
    program_rules(c, member.merchant_id, member.program_id)
        .await?
        .ok_or(StoreError::NotFound)
}

async fn activate(c: &impl GenericClient, op: &MemberOp, a: &ActivateMember) -> Outcome {
    let Some(program) = program_rules(c, op.merchant_id, a.program_id).await? else {
        return Ok(Err(MemberRefusal::ProgramNotFound));
    };
    if program.state != ProgramState::Active {
        return Ok(Err(MemberRefusal::ProgramDisabled));
    }
    let Some(customer_id) = resolve_customer(c, op.merchant_id, &a.customer, op.now, true).await?
    else {
        return Ok(Err(MemberRefusal::NotAMember));
    };
    let f = &program.fields;
    let initial = f.points.map_or(0, |rule| rule.init_increase_bonus);
    let tier = i64::try_from(f.tier_reached(initial, 0)).unwrap_or(0);
    // Racing activations of one customer meet on the unique index: the
    // later waits for the first and then finds its card.
    let inserted = opt(
        c,
        "INSERT INTO members (merchant_id, program_id, customer_id, phone, name, birthday, gender, tier, \
         points_earned, spend_fen, activated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, $10) \
         ON CONFLICT (program_id, customer_id, merchant_id) DO NOTHING RETURNING id",
        &[
            &op.merchant_id,
            &a.program_id,
            &customer_id,
            &a.phone,
            &a.name,
            &a.birthday,
            &a.gender.map(Gender::code),
            &tier,
            &initial,
            &op.now,
        ],
    )
    .await?;
    let Some(row) = inserted else {
        let row = one(
            c,
            "SELECT o.id FROM members m JOIN member_operations o ON o.member_id = m.id AND o.kind = 'activate' \
             WHERE m.program_id = $1 AND m.customer_id = $2",
            &[&a.program_id, &customer_id],
        )
        .await?;
        return Ok(Ok((
            get_operation(c, op.merchant_id, row.get(0)).await?,
            true,
        )));
    };
    let member_id: i64 = row.get(0);
    exec(
        c,
        "INSERT INTO ledger_accounts (merchant_id, kind, customer_id, asset, balance) \
         VALUES ($1, 'customer', $2, 'points', 0) ON CONFLICT DO NOTHING",
        &[&op.merchant_id, &customer_id],
    )
    .await?;
    let member = member_by_id(c, member_id).await?;
    let posting = Posting {
        member: &member,
        reference: format!("member:{member_id}"),
        reason: "开卡赠送",
        actor: &op.actor,
        now: op.now,
    };
    posting
        .post_all(c, &[(TransactionKind::Earn, initial)])
        .await?;
    let mut record = op.blank_operation(member_id, OperationKind::Activate);
    record.reference = format!("member:{member_id}");
    record.points_earned = initial;
    Ok(Ok((
        record_operation(c, record, f, &op.actor, &member).await?,
        false,
    )))
}

async fn reference_taken(
    c: &impl GenericClient,
    merchant_id: i64,
    kind: OperationKind,
    reference: &str,
) -> StoreResult<bool> {
    Ok(opt(
        c,
        "SELECT 1 FROM member_operations WHERE merchant_id = $1 AND kind = $2 AND reference = $3",
        &[&merchant_id, &kind.code(), &reference],
    )
    .await?
    .is_some())
}

async fn pay(c: &impl GenericClient, op: &MemberOp, p: &ReportPayment) -> Outcome {
    let member = match resolve_member(c, op.merchant_id, &p.member).await? {
        Ok(member) => member,
        Err(refusal) => return Ok(Err(refusal)),
    };
    // Both go out together (tokio-postgres pipelines them): one round trip.
    let (program, taken) = futures_util::try_join!(
        program_of(c, &member),
        reference_taken(c, op.merchant_id, OperationKind::Payment, &p.reference)
    )?;
    let plan = match plan_payment(&program.fields, program.state, &member, p) {
        Ok(plan) => plan,
        Err(refusal) => return Ok(Err(refusal)),
    };
    if taken {
        return Ok(Err(MemberRefusal::PaymentExists));
    }
    let posting = Posting {
        member: &member,
        reference: p.reference.clone(),
        reason: "",
        actor: &op.actor,
        now: op.now,
    };
    posting.post_all(c, &plan.ledger_moves()).await?;
    let tier = i64::try_from(plan.tier_after).unwrap_or(0);
    expect_one(
        exec(
            c,
            "UPDATE members SET points_earned = points_earned + $1, spend_fen = spend_fen + $2, tier = $3 \
             WHERE id = $4 AND tier <= $3",
            &[&plan.points_earned, &plan.paid_fen, &tier, &member.id],
        )
        .await?,
    )?;
    let (record, _) = plan.record(op, &member, p);
    Ok(Ok((
        record_operation(c, record, &program.fields, &op.actor, &member).await?,
        false,
    )))
}

async fn refund(c: &impl GenericClient, op: &MemberOp, r: &RefundPayment) -> Outcome {
    // The payment's row first: refunds of one payment queue on it.
    let locked = opt(
        c,
        "SELECT 1 FROM member_operations WHERE id = $1 AND merchant_id = $2 AND kind = 'payment' FOR UPDATE",
        &[&r.payment_id, &op.merchant_id],
    )
    .await?;
    if locked.is_none() {
        return Ok(Err(MemberRefusal::PaymentNotFound));
    }
    let payment = get_operation(c, op.merchant_id, r.payment_id).await?;
    let member = match resolve_member(c, op.merchant_id, &MemberRef::Id(payment.member_id)).await? {
        Ok(member) => member,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let program = program_of(c, &member).await?;
    let plan = match plan_refund(&payment, r.amount_fen, member.points) {
        Ok(plan) => plan,
        Err(refusal) => return Ok(Err(refusal)),
    };
    expect_one(
        exec(
            c,
            "UPDATE member_operations SET refunded_fen = $1 WHERE id = $2 AND refunded_fen = $3",
            &[&plan.refunded_after, &payment.id, &payment.refunded_fen],
        )
        .await?,
    )?;
    let posting = Posting {
        member: &member,
        reference: format!("payment:{}", payment.id),
        reason: &r.reason,
        actor: &op.actor,
        now: op.now,
    };
    posting
        .post_all(
            c,
            &[
                (TransactionKind::ReturnPoints, plan.points_returned),
                (TransactionKind::Refund, plan.balance_returned_fen),
                (TransactionKind::ReverseEarn, -plan.points_reversed),
            ],
        )
        .await?;
    let points_earned = (member.points_earned - plan.points_reversed).max(0);
    let spend_fen = (member.spend_fen - plan.spend_reversed_fen).max(0);
    let tier = program
        .fields
        .tier_after_refund(member.tier, points_earned, spend_fen);
    let tier = i64::try_from(tier).unwrap_or(0);
    expect_one(
        exec(
            c,
            "UPDATE members SET points_earned = $1, spend_fen = $2, tier = $3 \
             WHERE id = $4 AND points_earned = $5 AND spend_fen = $6",
            &[
                &points_earned,
                &spend_fen,
                &tier,
                &member.id,
                &member.points_earned,
                &member.spend_fen,
            ],
        )
        .await?,
    )?;
    let mut record = op.blank_operation(member.id, OperationKind::Refund);
    record.reference = format!("payment:{}", payment.id);
    record.payment_id = Some(payment.id);
    record.amount_fen = r.amount_fen;
    record.points_used = plan.points_returned;
    record.balance_fen = plan.balance_returned_fen;
    record.points_earned = -plan.points_reversed;
    record.reason = r.reason.clone();
    Ok(Ok((
        record_operation(c, record, &program.fields, &op.actor, &member).await?,
        false,
    )))
}

async fn recharge(c: &impl GenericClient, op: &MemberOp, r: &Recharge) -> Outcome {
    let member = match resolve_member(c, op.merchant_id, &r.member).await? {
        Ok(member) => member,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let program = program_of(c, &member).await?;
    if program.state != ProgramState::Active {
        return Ok(Err(MemberRefusal::ProgramDisabled));
    }
    if !program.fields.stored_value {
        return Ok(Err(MemberRefusal::StoredValueDisabled));
    }
    let policy: bool = crate::sql::one(
        c,
        "SELECT prepaid_policy FROM merchants WHERE id = $1",
        &[&op.merchant_id],
    )
    .await?
    .get(0);
    let after = member.balance_fen + r.amount_fen + r.bonus_fen;
    if policy && kaquan_core::prepaid::named_balance_breaks(after) {
        return Ok(Err(MemberRefusal::PrepaidBalanceCap));
    }
    if reference_taken(c, op.merchant_id, OperationKind::Recharge, &r.reference).await? {
        return Ok(Err(MemberRefusal::PaymentExists));
    }
    let posting = Posting {
        member: &member,
        reference: r.reference.clone(),
        reason: "",
        actor: &op.actor,
        now: op.now,
    };
    posting
        .post_all(
            c,
            &[
                (TransactionKind::Recharge, r.amount_fen),
                (TransactionKind::RechargeBonus, r.bonus_fen),
            ],
        )
        .await?;
    let mut record = op.blank_operation(member.id, OperationKind::Recharge);
    record.reference = r.reference.clone();
    record.amount_fen = r.amount_fen;
    record.balance_fen = r.amount_fen;
    record.bonus_fen = r.bonus_fen;
    Ok(Ok((
        record_operation(c, record, &program.fields, &op.actor, &member).await?,
        false,
    )))
}

async fn adjust_points(c: &impl GenericClient, op: &MemberOp, a: &AdjustPoints) -> Outcome {
    let member = match resolve_member(c, op.merchant_id, &MemberRef::Id(a.member_id)).await? {
        Ok(member) => member,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let program = program_of(c, &member).await?;
    let posting = Posting {
        member: &member,
        reference: String::new(),
        reason: &a.reason,
        actor: &op.actor,
        now: op.now,
    };
    if !posting
        .post(c, TransactionKind::AdjustPoints, a.delta)
        .await?
    {
        return Ok(Err(MemberRefusal::InsufficientPoints));
    }
    let mut record = op.blank_operation(member.id, OperationKind::AdjustPoints);
    record.points_earned = a.delta;
    record.reason = a.reason.clone();
    Ok(Ok((
        record_operation(c, record, &program.fields, &op.actor, &member).await?,
        false,
    )))
}

async fn run_member_op(c: &impl GenericClient, op: &MemberOp) -> Outcome {
    match &op.action {
        MemberAction::Activate(a) => activate(c, op, a).await,
        MemberAction::Pay(p) => pay(c, op, p).await,
        MemberAction::Refund(r) => refund(c, op, r).await,
        MemberAction::Recharge(r) => recharge(c, op, r).await,
        MemberAction::AdjustPoints(a) => adjust_points(c, op, a).await,
    }
}

#[async_trait::async_trait]
impl kaquan_core::member::operation::MemberOpStore for PgStore {
    async fn post_member_op(
        &self,
        call: &ApiCall,
        op: &MemberOp,
    ) -> StoreResult<Called<MemberOperation, MemberRefusal>> {
        let merchant_id = op.merchant_id;
        let mut client = self.client().await?;
        if let MemberAction::Pay(p) = &op.action {
            let paid = crate::member_payments::pay_in_one_statement(&client, call, op, p).await?;
            if let Some(record) = paid {
                return Ok(Called {
                    result: Ok(record),
                    replayed: false,
                });
            }
        }
        let tx = client.transaction().await.map_err(map_err)?;
        let claimed = claim_call(&tx, merchant_id, call, op.now).await?;
        let called = match claimed {
            Some(Err(refusal)) => {
                let refusal = match refusal {
                    Refusal::NonceReused => MemberRefusal::NonceReused,
                    _ => MemberRefusal::IdempotencyMismatch,
                };
                // Nothing to keep: the claim of a reused nonce rolls back.
                tx.rollback().await.map_err(map_err)?;
                return Ok(Called {
                    result: Err(refusal),
                    replayed: false,
                });
            }
            Some(Ok(recorded)) => {
                let result = match (recorded.member_operation_id, recorded.refusal.as_deref()) {
                    (Some(id), _) => Ok(get_operation(&tx, merchant_id, id).await?),
                    (None, Some(code)) => Err(MemberRefusal::parse(code).ok_or_else(|| {
                        StoreError::Backend("idempotency record without an outcome".into())
                    })?),
                    (None, None) => Err(MemberRefusal::IdempotencyMismatch),
                };
                Called {
                    result,
                    replayed: true,
                }
            }
            None => {
                let outcome = run_member_op(&tx, op).await?;
                if let Some(claim) = &call.idempotency {
                    let (operation_id, refusal) = match &outcome {
                        Ok((record, _)) => (Some(record.id), None),
                        Err(refusal) => (None, Some(refusal.code())),
                    };
                    exec(
                        &tx,
                        "UPDATE idempotency_keys SET member_operation_id = $3, refusal = $4 \
                         WHERE merchant_id = $1 AND key = $2",
                        &[&merchant_id, &claim.key.as_str(), &operation_id, &refusal],
                    )
                    .await?;
                }
                match outcome {
                    Ok((record, replayed)) => Called {
                        result: Ok(record),
                        replayed,
                    },
                    Err(refusal) => Called {
                        result: Err(refusal),
                        replayed: false,
                    },
                }
            }
        };
        tx.commit().await.map_err(map_err)?;
        Ok(called)
    }

    async fn get_member_operation(
        &self,
        merchant_id: i64,
        operation_id: i64,
    ) -> StoreResult<MemberOperation> {
        get_operation(&self.client().await?, merchant_id, operation_id).await
    }

    async fn expire_points(
        &self,
        now: i64,
        limit: i64,
    ) -> StoreResult<kaquan_core::member::expiry::PointsSweep> {
        self.sweep_points(now, limit).await
    }

    async fn list_member_operations(
        &self,
        merchant_id: i64,
        member_id: i64,
        page: Page,
    ) -> StoreResult<(Vec<MemberOperation>, i64)> {
        let (rows, total) = filtered_page(
            &self.client().await?,
            ("member_operations", OPERATION_COLUMNS, "id DESC"),
            "merchant_id = $1 AND member_id = $2",
            vec![Box::new(merchant_id), Box::new(member_id)],
            page,
        )
        .await?;
        let ops = rows
            .iter()
            .map(operation_from_row)
            .collect::<StoreResult<_>>()?;
        Ok((ops, total))
    }
}
