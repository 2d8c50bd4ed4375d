//! 会员卡 on SQLite: programs, members, and every call on a member as one
//! writer job — nonce, idempotency key, the plan from core, the ledger's
//! transactions in both assets, the member's counters, the operation
//! record, one audit record and one event.

use crate::customers::resolve_customer;
use crate::engine::Writer;
use crate::events::insert_event;
use crate::ledger::{guard_call, post_on, post_postings, AccountHead};
use crate::member_payments::{pay_planned, plan_on_reader, PlannedPayment};
use crate::member_programs::program_rules;
use crate::sql::{decode, execute_one, insert_audit, map_err};
use crate::SqliteStore;
use kaquan_core::audit::{Actor, AuditEntry};
use kaquan_core::event::NewEvent;
use kaquan_core::ledger::{
    ApiCall, Asset, Called, CustomerRef, LedgerTransaction, TransactionKind,
};
use kaquan_core::member::operation::{
    plan_payment, plan_refund, ActivateMember, AdjustPoints, MemberAction, MemberOp,
    MemberOperation, MemberRef, MemberRefusal, OperationKind, PaymentPlan, Recharge, RefundPayment,
    ReportPayment,
};
use kaquan_core::member::{Gender, Member, ProgramFields, ProgramState};
use kaquan_core::pickup::Channel;
use kaquan_core::store::Page;
use kaquan_core::{StoreError, StoreResult};
use rusqlite::types::Value;
use rusqlite::{params, Connection, OptionalExtension, Row};

pub(crate) const MEMBER_SELECT: &str = "SELECT m.id, m.merchant_id, m.program_id, m.customer_id, c.external_id, m.phone, m.name, \
    m.birthday, m.gender, m.tier, m.points_earned, m.spend_fen, COALESCE(p.balance, 0), COALESCE(f.balance, 0), \
    m.activated_at FROM members m JOIN customers c ON c.id = m.customer_id \
    LEFT JOIN ledger_accounts p ON p.customer_id = m.customer_id AND p.asset = 'points' \
    LEFT JOIN ledger_accounts f ON f.customer_id = m.customer_id AND f.asset = 'fen'";

pub(crate) fn member_from_row(r: &Row) -> rusqlite::Result<Member> {
    let gender: Option<String> = r.get(8)?;
    Ok(Member {
        id: r.get(0)?,
        merchant_id: r.get(1)?,
        program_id: r.get(2)?,
        customer_id: r.get(3)?,
        external_id: r.get(4)?,
        phone: r.get(5)?,
        name: r.get(6)?,
        birthday: r.get(7)?,
        gender: gender.as_deref().and_then(Gender::parse),
        tier: usize::try_from(r.get::<_, i64>(9)?).unwrap_or(0),
        points_earned: r.get(10)?,
        spend_fen: r.get(11)?,
        points: r.get(12)?,
        balance_fen: r.get(13)?,
        activated_at: r.get(14)?,
    })
}

pub(crate) fn find_member(
    conn: &Connection,
    condition: &str,
    values: impl rusqlite::Params,
) -> StoreResult<Vec<Member>> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "{MEMBER_SELECT} WHERE {condition} ORDER BY m.id DESC"
        ))
        .map_err(map_err)?;
    let rows = stmt.query_map(values, member_from_row).map_err(map_err)?;
    rows.collect::<Result<_, _>>().map_err(map_err)
}

/// The member a call names, or why there is none.
pub(crate) fn resolve_member(
    conn: &Connection,
    merchant_id: i64,
    member: &MemberRef,
) -> StoreResult<Result<Member, MemberRefusal>> {
    let found = match member {
        MemberRef::Id(id) => find_member(
            conn,
            "m.id = ?1 AND m.merchant_id = ?2",
            params![id, merchant_id],
        )?,
        MemberRef::Customer {
            customer,
            program_id,
        } => {
            // The customer and their cards in one read, by the customer's index.
            let by = match customer {
                CustomerRef::Id(_) => "c.id = ?1",
                CustomerRef::External(_) => "c.external_id = ?1",
            };
            let who: &dyn rusqlite::ToSql = match customer {
                CustomerRef::Id(id) => id,
                CustomerRef::External(external) => external,
            };
            find_member(
                conn,
                &format!(
                    "{by} AND c.merchant_id = ?2 AND m.merchant_id = ?2 AND (?3 IS NULL OR m.program_id = ?3)"
                ),
                params![who, merchant_id, program_id],
            )?
        }
    };
    Ok(match found.as_slice() {
        [] => Err(MemberRefusal::NotAMember),
        [one] => Ok(one.clone()),
        _ => Err(MemberRefusal::ProgramRequired),
    })
}

const OPERATION_COLUMNS: &str = "id, merchant_id, member_id, kind, reference, payment_id, location_id, amount_fen, \
    discount_fen, points_used, points_deduction_fen, balance_fen, bonus_fen, points_earned, points_after, \
    balance_after_fen, tier_after, refunded_fen, reason, created_by, created_at";

fn operation_from_row(r: &Row) -> rusqlite::Result<MemberOperation> {
    Ok(MemberOperation {
        id: r.get(0)?,
        merchant_id: r.get(1)?,
        member_id: r.get(2)?,
        kind: decode(
            OperationKind::parse(&r.get::<_, String>(3)?),
            3,
            "operation",
        )?,
        reference: r.get(4)?,
        payment_id: r.get(5)?,
        location_id: r.get(6)?,
        amount_fen: r.get(7)?,
        discount_fen: r.get(8)?,
        points_used: r.get(9)?,
        points_deduction_fen: r.get(10)?,
        balance_fen: r.get(11)?,
        bonus_fen: r.get(12)?,
        points_earned: r.get(13)?,
        points_after: r.get(14)?,
        balance_after_fen: r.get(15)?,
        tier_after: usize::try_from(r.get::<_, i64>(16)?).unwrap_or(0),
        refunded_fen: r.get(17)?,
        reason: r.get(18)?,
        created_by: r.get(19)?,
        created_at: r.get(20)?,
    })
}

pub(crate) fn get_operation(
    conn: &Connection,
    merchant_id: i64,
    id: i64,
) -> StoreResult<MemberOperation> {
    conn.prepare_cached(&format!(
        "SELECT {OPERATION_COLUMNS} FROM member_operations WHERE id = ?1 AND merchant_id = ?2"
    ))
    .and_then(|mut s| s.query_row(params![id, merchant_id], operation_from_row))
    .optional()
    .map_err(map_err)?
    .ok_or(StoreError::NotFound)
}

/// One transaction of a member operation in the ledger; `false` when the
/// account would drop below zero.
pub(crate) struct Posting<'a> {
    pub(crate) conn: &'a Connection,
    pub(crate) member: &'a Member,
    pub(crate) reference: String,
    pub(crate) reason: &'a str,
    pub(crate) actor: &'a Actor,
    pub(crate) now: i64,
}

impl Posting<'_> {
    fn transaction(&self, kind: TransactionKind, delta: i64) -> LedgerTransaction {
        LedgerTransaction {
            id: 0,
            merchant_id: self.member.merchant_id,
            customer_id: self.member.customer_id,
            kind,
            amount_fen: delta,
            balance_after_fen: 0,
            reference: self.reference.clone(),
            reason: self.reason.to_owned(),
            channel: Channel::Api,
            created_by: self.actor.label.clone(),
            created_at: self.now,
        }
    }

    pub(crate) fn post(&self, kind: TransactionKind, delta: i64) -> StoreResult<bool> {
        if delta == 0 {
            return Ok(true);
        }
        Ok(post_postings(self.conn, &self.transaction(kind, delta))?.is_some())
    }

    /// Posts each move in turn. The plan read the balances in this
    /// transaction and the writer is alone: a guard that fails now is a
    /// broken invariant, not a race.
    pub(crate) fn post_all(&self, moves: &[(TransactionKind, i64)]) -> StoreResult<()> {
        self.post_all_with(moves, |kind, delta| self.post(kind, delta))
    }

    /// [`Posting::post_all`] on the member's accounts as read in this
    /// transaction (`heads`: points, then fen), without reading them again.
    pub(crate) fn post_all_on(
        &self,
        moves: &[(TransactionKind, i64)],
        heads: &mut MemberAccounts,
    ) -> StoreResult<()> {
        self.post_all_with(moves, |kind, delta| {
            if delta == 0 {
                return Ok(true);
            }
            let head = match kind.asset() {
                Asset::Points => &mut heads.points,
                Asset::Fen => &mut heads.fen,
            };
            Ok(post_on(self.conn, &self.transaction(kind, delta), head)?.is_some())
        })
    }

    fn post_all_with(
        &self,
        moves: &[(TransactionKind, i64)],
        mut post: impl FnMut(TransactionKind, i64) -> StoreResult<bool>,
    ) -> StoreResult<()> {
        for (kind, delta) in moves {
            if !post(*kind, *delta)? {
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

/// A member's two accounts as the writer read them in this transaction.
pub(crate) struct MemberAccounts {
    pub(crate) points: AccountHead,
    pub(crate) fen: AccountHead,
}

/// Writes the operation record, its audit record and its event; returns
/// the record as read back (with the balances after it).
pub(crate) fn record_operation(
    conn: &Connection,
    op: MemberOperation,
    program: &ProgramFields,
    actor: &Actor,
    before: &Member,
) -> StoreResult<MemberOperation> {
    // The member as the operation left them: their balances and tier
    // (the rest is as read before it).
    let member = conn
        .prepare_cached(
            "SELECT (SELECT balance FROM ledger_accounts WHERE customer_id = ?1 AND asset = 'points'), \
             (SELECT balance FROM ledger_accounts WHERE customer_id = ?1 AND asset = 'fen'), tier \
             FROM members WHERE id = ?2",
        )
        .and_then(|mut s| {
            s.query_row(params![before.customer_id, op.member_id], |r| {
                Ok(Member {
                    points: r.get::<_, Option<i64>>(0)?.unwrap_or(0),
                    balance_fen: r.get::<_, Option<i64>>(1)?.unwrap_or(0),
                    tier: usize::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
                    ..before.clone()
                })
            })
        })
        .map_err(map_err)?;
    record_operation_after(conn, op, program, actor, &member)
}

/// [`record_operation`] when the caller knows the member as the operation
/// left them (`member`: balances and tier after it).
fn record_operation_after(
    conn: &Connection,
    mut op: MemberOperation,
    program: &ProgramFields,
    actor: &Actor,
    member: &Member,
) -> StoreResult<MemberOperation> {
    op.points_after = member.points;
    op.balance_after_fen = member.balance_fen;
    op.tier_after = member.tier;
    conn.prepare_cached(
        "INSERT INTO member_operations (merchant_id, member_id, kind, reference, payment_id, location_id, amount_fen, \
         discount_fen, points_used, points_deduction_fen, balance_fen, bonus_fen, points_earned, points_after, \
         balance_after_fen, tier_after, refunded_fen, reason, created_by, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, 0, ?17, ?18, ?19)",
    )
    .and_then(|mut s| {
        s.execute(params![
            op.merchant_id,
            op.member_id,
            op.kind.code(),
            op.reference,
            op.payment_id,
            op.location_id,
            op.amount_fen,
            op.discount_fen,
            op.points_used,
            op.points_deduction_fen,
            op.balance_fen,
            op.bonus_fen,
            op.points_earned,
            op.points_after,
            op.balance_after_fen,
            i64::try_from(op.tier_after).unwrap_or(0),
            op.reason,
            op.created_by,
            op.created_at
        ])
    })
    .map_err(map_err)?;
    op.id = conn.last_insert_rowid();
    let entry = AuditEntry {
        merchant_id: op.merchant_id,
        actor: actor.clone(),
        action: format!("member_{}", op.kind.code()),
        target: format!("member={}", op.member_id),
        detail: kaquan_core::member::operation::audit_detail(&op),
        n_affected: 1,
        created_at: op.created_at,
    };
    insert_audit(conn, &entry, 1).map_err(map_err)?;
    let number = program.member_number(member.id);
    let coupon = match program.notify_coupon_program_id {
        Some(id) if op.points_delta() != 0 => conn
            .prepare_cached(
                "SELECT claim_token FROM coupon_programs WHERE id = ?1 AND merchant_id = ?2",
            )
            .and_then(|mut s| {
                s.query_row(params![id, op.merchant_id], |r| r.get::<_, String>(0))
                    .optional()
            })
            .map_err(map_err)?
            .map(|token| format!("/m/{}/coupons/{token}", op.merchant_id)),
        _ => None,
    };
    if let Some(event) = NewEvent::member_operation(&op, member, &number, coupon.as_deref()) {
        if program.notify || op.kind == OperationKind::Activate {
            insert_event(conn, &event)?;
        }
    }
    Ok(op)
}

/// What a call on a member did (and whether it answers an earlier call), or why not.
pub(crate) type Answer = Result<(MemberOperation, bool), MemberRefusal>;
type Outcome = StoreResult<Answer>;

fn activate(conn: &Connection, op: &MemberOp, a: &ActivateMember) -> Outcome {
    let Some(program) = program_rules(conn, op.merchant_id, a.program_id)? else {
        return Ok(Err(MemberRefusal::ProgramNotFound));
    };
    if program.state != ProgramState::Active {
        return Ok(Err(MemberRefusal::ProgramDisabled));
    }
    let Some(customer_id) = resolve_customer(conn, op.merchant_id, &a.customer, op.now, true)?
    else {
        return Ok(Err(MemberRefusal::NotAMember));
    };
    let existing: Option<i64> = conn
        .prepare_cached(
            "SELECT o.id FROM members m JOIN member_operations o ON o.member_id = m.id AND o.kind = 'activate' \
             WHERE m.program_id = ?1 AND m.customer_id = ?2",
        )
        .and_then(|mut s| s.query_row(params![a.program_id, customer_id], |r| r.get(0)).optional())
        .map_err(map_err)?;
    if let Some(id) = existing {
        // One card per customer per program: the first activation answers.
        return Ok(Ok((get_operation(conn, op.merchant_id, id)?, true)));
    }
    let f = &program.fields;
    conn.prepare_cached(
        "INSERT OR IGNORE INTO ledger_accounts (merchant_id, kind, customer_id, asset, balance) \
         VALUES (?1, 'customer', ?2, 'points', 0)",
    )
    .and_then(|mut s| s.execute(params![op.merchant_id, customer_id]))
    .map_err(map_err)?;
    let initial = f.points.map_or(0, |rule| rule.init_increase_bonus);
    let tier = f.tier_reached(initial, 0);
    conn.prepare_cached(
        "INSERT INTO members (merchant_id, program_id, customer_id, phone, name, birthday, gender, tier, \
         points_earned, spend_fen, activated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 0, ?10)",
    )
    .and_then(|mut s| {
        s.execute(params![
            op.merchant_id,
            a.program_id,
            customer_id,
            a.phone,
            a.name,
            a.birthday,
            a.gender.map(Gender::code),
            i64::try_from(tier).unwrap_or(0),
            initial,
            op.now
        ])
    })
    .map_err(map_err)?;
    let member_id = conn.last_insert_rowid();
    let member = find_member(conn, "m.id = ?1", params![member_id])?
        .pop()
        .ok_or(StoreError::NotFound)?;
    let posting = Posting {
        conn,
        member: &member,
        reference: format!("member:{member_id}"),
        reason: "开卡赠送",
        actor: &op.actor,
        now: op.now,
    };
    posting.post_all(&[(TransactionKind::Earn, initial)])?;
    let mut record = op.blank_operation(member_id, OperationKind::Activate);
    record.reference = format!("member:{member_id}");
    record.points_earned = initial;
    Ok(Ok((
        record_operation(conn, record, f, &op.actor, &member)?,
        false,
    )))
}

/// Whether an order (or top-up id) was reported before. The kind is
/// written in, so that SQLite uses the kind's partial unique index.
fn reference_taken(
    conn: &Connection,
    merchant_id: i64,
    kind: OperationKind,
    reference: &str,
) -> StoreResult<bool> {
    let sql = match kind {
        OperationKind::Payment => {
            "SELECT 1 FROM member_operations WHERE merchant_id = ?1 AND kind = 'payment' AND reference = ?2"
        }
        _ => "SELECT 1 FROM member_operations WHERE merchant_id = ?1 AND kind = 'recharge' AND reference = ?2",
    };
    conn.prepare_cached(sql)
        .and_then(|mut s| s.exists(params![merchant_id, reference]))
        .map_err(map_err)
}

fn pay(conn: &Connection, op: &MemberOp, p: &ReportPayment) -> Outcome {
    let member = match resolve_member(conn, op.merchant_id, &p.member)? {
        Ok(member) => member,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let program =
        program_rules(conn, op.merchant_id, member.program_id)?.ok_or(StoreError::NotFound)?;
    let plan = match plan_payment(&program.fields, program.state, &member, p) {
        Ok(plan) => plan,
        Err(refusal) => return Ok(Err(refusal)),
    };
    write_payment(conn, op, p, (&member, &program.fields), &plan, None)
}

/// Writes a payment planned from `member` as they are now: unless the
/// order was reported before, the ledger's transactions, the member's
/// counters and tier, and the operation's records. `accounts`: the
/// member's accounts as read in this transaction by a caller that also
/// found the order not yet reported.
pub(crate) fn write_payment(
    conn: &Connection,
    op: &MemberOp,
    p: &ReportPayment,
    (member, fields): (&Member, &ProgramFields),
    plan: &PaymentPlan,
    accounts: Option<&mut MemberAccounts>,
) -> Outcome {
    if accounts.is_none()
        && reference_taken(conn, op.merchant_id, OperationKind::Payment, &p.reference)?
    {
        return Ok(Err(MemberRefusal::PaymentExists));
    }
    let posting = Posting {
        conn,
        member,
        reference: p.reference.clone(),
        reason: "",
        actor: &op.actor,
        now: op.now,
    };
    let moves = plan.ledger_moves();
    match accounts {
        Some(accounts) => posting.post_all_on(&moves, accounts)?,
        None => posting.post_all(&moves)?,
    }
    execute_one(
        conn,
        "UPDATE members SET points_earned = points_earned + ?1, spend_fen = spend_fen + ?2, tier = ?3 \
         WHERE id = ?4 AND tier <= ?3",
        params![
            plan.points_earned,
            plan.paid_fen,
            i64::try_from(plan.tier_after).unwrap_or(0),
            member.id
        ],
    )?;
    // The member was read in this transaction: what the payment leaves is known.
    let (record, after) = plan.record(op, member, p);
    Ok(Ok((
        record_operation_after(conn, record, fields, &op.actor, &after)?,
        false,
    )))
}

fn refund(conn: &Connection, op: &MemberOp, r: &RefundPayment) -> Outcome {
    let payment = match get_operation(conn, op.merchant_id, r.payment_id) {
        Ok(p) if p.kind == OperationKind::Payment => p,
        Ok(_) | Err(StoreError::NotFound) => return Ok(Err(MemberRefusal::PaymentNotFound)),
        Err(e) => return Err(e),
    };
    let member = match resolve_member(conn, op.merchant_id, &MemberRef::Id(payment.member_id))? {
        Ok(member) => member,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let program =
        program_rules(conn, op.merchant_id, member.program_id)?.ok_or(StoreError::NotFound)?;
    let plan = match plan_refund(&payment, r.amount_fen, member.points) {
        Ok(plan) => plan,
        Err(refusal) => return Ok(Err(refusal)),
    };
    execute_one(
        conn,
        "UPDATE member_operations SET refunded_fen = ?1 WHERE id = ?2 AND refunded_fen = ?3",
        params![plan.refunded_after, payment.id, payment.refunded_fen],
    )?;
    let posting = Posting {
        conn,
        member: &member,
        reference: format!("payment:{}", payment.id),
        reason: &r.reason,
        actor: &op.actor,
        now: op.now,
    };
    posting.post_all(&[
        (TransactionKind::ReturnPoints, plan.points_returned),
        (TransactionKind::Refund, plan.balance_returned_fen),
        (TransactionKind::ReverseEarn, -plan.points_reversed),
    ])?;
    let points_earned = (member.points_earned - plan.points_reversed).max(0);
    let spend_fen = (member.spend_fen - plan.spend_reversed_fen).max(0);
    let tier = program
        .fields
        .tier_after_refund(member.tier, points_earned, spend_fen);
    execute_one(
        conn,
        "UPDATE members SET points_earned = ?1, spend_fen = ?2, tier = ?3 \
         WHERE id = ?4 AND points_earned = ?5 AND spend_fen = ?6",
        params![
            points_earned,
            spend_fen,
            i64::try_from(tier).unwrap_or(0),
            member.id,
            member.points_earned,
            member.spend_fen
        ],
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
        record_operation(conn, record, &program.fields, &op.actor, &member)?,
        false,
    )))
}

fn recharge(conn: &Connection, op: &MemberOp, r: &Recharge) -> Outcome {
    let member = match resolve_member(conn, op.merchant_id, &r.member)? {
        Ok(member) => member,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let program =
        program_rules(conn, op.merchant_id, member.program_id)?.ok_or(StoreError::NotFound)?;
    if program.state != ProgramState::Active {
        return Ok(Err(MemberRefusal::ProgramDisabled));
    }
    if !program.fields.stored_value {
        return Ok(Err(MemberRefusal::StoredValueDisabled));
    }
    let policy: bool = conn
        .query_row(
            "SELECT prepaid_policy FROM merchants WHERE id = ?1",
            [op.merchant_id],
            |r| r.get(0),
        )
        .map_err(map_err)?;
    let after = member.balance_fen + r.amount_fen + r.bonus_fen;
    if policy && kaquan_core::prepaid::named_balance_breaks(after) {
        return Ok(Err(MemberRefusal::PrepaidBalanceCap));
    }
    if reference_taken(conn, op.merchant_id, OperationKind::Recharge, &r.reference)? {
        return Ok(Err(MemberRefusal::PaymentExists));
    }
    let posting = Posting {
        conn,
        member: &member,
        reference: r.reference.clone(),
        reason: "",
        actor: &op.actor,
        now: op.now,
    };
    posting.post_all(&[
        (TransactionKind::Recharge, r.amount_fen),
        (TransactionKind::RechargeBonus, r.bonus_fen),
    ])?;
    let mut record = op.blank_operation(member.id, OperationKind::Recharge);
    record.reference = r.reference.clone();
    record.amount_fen = r.amount_fen;
    record.balance_fen = r.amount_fen;
    record.bonus_fen = r.bonus_fen;
    Ok(Ok((
        record_operation(conn, record, &program.fields, &op.actor, &member)?,
        false,
    )))
}

fn adjust_points(conn: &Connection, op: &MemberOp, a: &AdjustPoints) -> Outcome {
    let member = match resolve_member(conn, op.merchant_id, &MemberRef::Id(a.member_id))? {
        Ok(member) => member,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let program =
        program_rules(conn, op.merchant_id, member.program_id)?.ok_or(StoreError::NotFound)?;
    let posting = Posting {
        conn,
        member: &member,
        reference: String::new(),
        reason: &a.reason,
        actor: &op.actor,
        now: op.now,
    };
    if !posting.post(TransactionKind::AdjustPoints, a.delta)? {
        return Ok(Err(MemberRefusal::InsufficientPoints));
    }
    let mut record = op.blank_operation(member.id, OperationKind::AdjustPoints);
    record.points_earned = a.delta;
    record.reason = a.reason.clone();
    Ok(Ok((
        record_operation(conn, record, &program.fields, &op.actor, &member)?,
        false,
    )))
}

fn run_member_op(conn: &Connection, op: &MemberOp) -> Outcome {
    match &op.action {
        MemberAction::Activate(a) => activate(conn, op, a),
        MemberAction::Pay(p) => pay(conn, op, p),
        MemberAction::Refund(r) => refund(conn, op, r),
        MemberAction::Recharge(r) => recharge(conn, op, r),
        MemberAction::AdjustPoints(a) => adjust_points(conn, op, a),
    }
}

pub(crate) fn post_member_job(
    conn: &Writer,
    call: &ApiCall,
    op: &MemberOp,
    planned: Option<&PlannedPayment>,
) -> StoreResult<Called<MemberOperation, MemberRefusal>> {
    let merchant_id = op.merchant_id;
    match guard_call(conn, merchant_id, call)? {
        Some(Err(refusal)) => {
            let refusal = match refusal {
                kaquan_core::ledger::Refusal::NonceReused => MemberRefusal::NonceReused,
                _ => MemberRefusal::IdempotencyMismatch,
            };
            return Ok(Called {
                result: Err(refusal),
                replayed: false,
            });
        }
        Some(Ok(recorded)) => {
            let result = match (recorded.member_operation_id, recorded.refusal.as_deref()) {
                (Some(id), _) => Ok(get_operation(conn, merchant_id, id)?),
                (None, Some(code)) => Err(MemberRefusal::parse(code).ok_or_else(|| {
                    StoreError::Backend("idempotency record without an outcome".into())
                })?),
                // The key was used by another kind of call.
                (None, None) => Err(MemberRefusal::IdempotencyMismatch),
            };
            return Ok(Called {
                result,
                replayed: true,
            });
        }
        None => {}
    }
    let paid = match (planned, &op.action) {
        (Some(planned), MemberAction::Pay(p)) => pay_planned(conn, op, p, planned)?,
        _ => None,
    };
    let outcome = match paid {
        Some(outcome) => outcome,
        None => run_member_op(conn, op)?,
    };
    let (operation_id, refusal) = match &outcome {
        Ok((record, _)) => (Some(record.id), None),
        Err(refusal) => (None, Some(*refusal)),
    };
    if let Some(claim) = &call.idempotency {
        if refusal.is_none_or(MemberRefusal::is_recorded) {
            conn.prepare_cached(
                "INSERT INTO idempotency_keys (merchant_id, key, request_hash, member_operation_id, refusal, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    merchant_id,
                    claim.key.as_str(),
                    claim.request_hash,
                    operation_id,
                    refusal.map(MemberRefusal::code),
                    op.now
                ])
            })
            .map_err(map_err)?;
        }
    }
    Ok(match outcome {
        Ok((record, replayed)) => Called {
            result: Ok(record),
            replayed,
        },
        Err(refusal) => Called {
            result: Err(refusal),
            replayed: false,
        },
    })
}

#[async_trait::async_trait]
impl kaquan_core::member::operation::MemberOpStore for SqliteStore {
    async fn post_member_op(
        &self,
        call: &ApiCall,
        op: &MemberOp,
    ) -> StoreResult<Called<MemberOperation, MemberRefusal>> {
        // A payment is planned here, on the request's thread; the writer
        // only checks that the plan still holds.
        let planned = match &op.action {
            MemberAction::Pay(p) => {
                self.read_point(|conn| plan_on_reader(conn, op.merchant_id, p))?
            }
            _ => None,
        };
        if let Some(planned) = planned {
            return crate::pay_set_wise::queue_payment(self, call, op, planned).await;
        }
        let (call, op) = (call.clone(), op.clone());
        self.write(move |conn| post_member_job(conn, &call, &op, None))
            .await
    }

    async fn get_member_operation(
        &self,
        merchant_id: i64,
        operation_id: i64,
    ) -> StoreResult<MemberOperation> {
        self.read(move |conn| get_operation(conn, merchant_id, operation_id))
            .await
    }

    async fn expire_points(
        &self,
        now: i64,
        limit: i64,
    ) -> StoreResult<kaquan_core::member::expiry::PointsSweep> {
        self.write(move |conn| crate::member_expiry::expire_points(conn, now, limit))
            .await
    }

    async fn list_member_operations(
        &self,
        merchant_id: i64,
        member_id: i64,
        page: Page,
    ) -> StoreResult<(Vec<MemberOperation>, i64)> {
        self.read(move |conn| {
            crate::sql::filtered_page(
                conn,
                ("member_operations", OPERATION_COLUMNS, "id DESC"),
                "merchant_id = ? AND member_id = ?",
                vec![Value::Integer(merchant_id), Value::Integer(member_id)],
                page,
                operation_from_row,
            )
        })
        .await
    }
}
