//! A payment reported for a member on SQLite, planned before it reaches the
//! writer: the member, their program and core's plan are read on the
//! request's own thread ([`plan_on_reader`]), so that the one writer thread
//! only checks that the member's tier, counters and balances are still what
//! the plan saw and the order was not reported (one point read) and writes;
//! with others of its group, set-wise (`pay_set_wise`). When the member
//! changed (another call on the member came between), or nothing could be
//! planned (a refusal, an unknown customer), the writer runs the call the
//! general way.

use crate::ledger::AccountHead;
use crate::member_programs::program_rules;
use crate::members::{resolve_member, write_payment, Answer, MemberAccounts};
use crate::sql::map_err;
use kaquan_core::member::operation::{plan_payment, MemberOp, PaymentPlan, ReportPayment};
use kaquan_core::member::{Member, ProgramFields};
use kaquan_core::StoreResult;
use rusqlite::{params, Connection, OptionalExtension};

/// What a payment's plan was made from, and the plan.
pub(crate) struct PlannedPayment {
    pub(crate) member: Member,
    pub(crate) fields: ProgramFields,
    pub(crate) plan: PaymentPlan,
}

/// Plans a payment on a read connection; `None` when the general way must
/// decide (no such member, or core refuses: the refusal is recorded there).
pub(crate) fn plan_on_reader(
    conn: &Connection,
    merchant_id: i64,
    p: &ReportPayment,
) -> StoreResult<Option<PlannedPayment>> {
    let Ok(member) = resolve_member(conn, merchant_id, &p.member)? else {
        return Ok(None);
    };
    let Some(program) = program_rules(conn, merchant_id, member.program_id)? else {
        return Ok(None);
    };
    let Ok(plan) = plan_payment(&program.fields, program.state, &member, p) else {
        return Ok(None);
    };
    Ok(Some(PlannedPayment {
        member,
        fields: program.fields,
        plan,
    }))
}

/// On the writer: the planned payment, if the member is as the plan saw
/// them and the order was not reported; `None` (nothing written) when not.
/// One read finds both, with the member's accounts, which the postings
/// then use without reading them again.
pub(crate) fn pay_planned(
    conn: &Connection,
    op: &MemberOp,
    p: &ReportPayment,
    planned: &PlannedPayment,
) -> StoreResult<Option<Answer>> {
    let m = &planned.member;
    let accounts = conn
        .prepare_cached(
            "SELECT pa.id, pa.last_transaction_id, fa.id, fa.last_transaction_id FROM members m \
             JOIN ledger_accounts pa ON pa.customer_id = m.customer_id AND pa.asset = 'points' \
             JOIN ledger_accounts fa ON fa.customer_id = m.customer_id AND fa.asset = 'fen' \
             WHERE m.id = ?1 AND m.tier = ?2 AND m.points_earned = ?3 AND m.spend_fen = ?4 \
             AND pa.balance = ?5 AND fa.balance = ?6 AND NOT EXISTS (SELECT 1 FROM member_operations o \
             WHERE o.merchant_id = ?7 AND o.kind = 'payment' AND o.reference = ?8)",
        )
        .and_then(|mut s| {
            let [id, tier, earned, spend, points, balance] = as_planned(m);
            s.query_row(
                params![id, tier, earned, spend, points, balance, op.merchant_id, p.reference],
                |r| {
                    Ok(MemberAccounts {
                        points: AccountHead {
                            id: r.get(0)?,
                            balance: m.points,
                            last_transaction_id: r.get(1)?,
                        },
                        fen: AccountHead {
                            id: r.get(2)?,
                            balance: m.balance_fen,
                            last_transaction_id: r.get(3)?,
                        },
                    })
                },
            )
            .optional()
        })
        .map_err(map_err)?;
    let Some(mut accounts) = accounts else {
        return Ok(None);
    };
    let program = (m, &planned.fields);
    write_payment(conn, op, p, program, &planned.plan, Some(&mut accounts)).map(Some)
}

/// The member as a plan saw them, as the checks bind it: id, tier, points
/// earned, spend, points, balance.
pub(crate) fn as_planned(m: &Member) -> [i64; 6] {
    [
        m.id,
        i64::try_from(m.tier).unwrap_or(-1),
        m.points_earned,
        m.spend_fen,
        m.points,
        m.balance_fen,
    ]
}
