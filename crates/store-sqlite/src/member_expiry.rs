//! Points expiry on SQLite (积分有效期): members of programs whose points
//! lapse, not checked yet today, with points; for each, the points earned
//! up to the cutoff and everything taken so far are summed along the
//! account's statement chain, and what lapses is posted as one
//! `expire_points` transaction with its operation record, audit record and
//! message; points lapsing within the notice days get one notice each.

use crate::events::insert_event;
use crate::member_programs::program_rules;
use crate::members::{find_member, record_operation, Posting};
use crate::sql::map_err;
use kaquan_core::audit::Actor;
use kaquan_core::event::NewEvent;
use kaquan_core::ledger::TransactionKind;
use kaquan_core::member::expiry::{cutoff, expiring_event, lapse, PointsSweep, NOTICE_DAYS};
use kaquan_core::member::operation::{MemberOperation, OperationKind};
use kaquan_core::member::PointsExpiry;
use kaquan_core::{StoreError, StoreResult};
use rusqlite::{params, Connection};

/// Points earned up to `matured_by` and up to `soon_by`, all taken, and
/// when the last points earned up to `soon_by` were earned (what a notice
/// is keyed on: the same points lapsing soon are told of once), along the
/// customer's points chain.
fn sums(
    conn: &Connection,
    customer_id: i64,
    matured_by: i64,
    soon_by: i64,
) -> StoreResult<(i64, i64, i64, i64)> {
    conn.prepare_cached(
        "WITH RECURSIVE chain(id, previous_id, amount, created_at) AS ( \
           SELECT t.id, t.previous_id, t.amount_fen, t.created_at FROM ledger_accounts a \
           JOIN ledger_transactions t ON t.id = a.last_transaction_id WHERE a.customer_id = ?1 AND a.asset = 'points' \
           UNION ALL \
           SELECT t.id, t.previous_id, t.amount_fen, t.created_at FROM chain JOIN ledger_transactions t ON t.id = chain.previous_id) \
         SELECT COALESCE(SUM(CASE WHEN amount > 0 AND created_at <= ?2 THEN amount END), 0), \
                COALESCE(SUM(CASE WHEN amount > 0 AND created_at <= ?3 THEN amount END), 0), \
                COALESCE(SUM(CASE WHEN amount < 0 THEN -amount END), 0), \
                COALESCE(MAX(CASE WHEN amount > 0 AND created_at <= ?3 THEN created_at END), 0) FROM chain",
    )
    .and_then(|mut s| s.query_row(params![customer_id, matured_by, soon_by], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))))
    .map_err(map_err)
}

/// One sweep: at most `limit` members; returns (members whose points
/// lapsed, members told of points lapsing soon).
pub(crate) fn expire_points(conn: &Connection, now: i64, limit: i64) -> StoreResult<PointsSweep> {
    let today = kaquan_core::clock::start_of_today(now);
    let candidates: Vec<(i64, i64)> = conn
        .prepare_cached(
            "SELECT m.id, m.merchant_id FROM members m JOIN member_programs p ON p.id = m.program_id \
             JOIN ledger_accounts a ON a.customer_id = m.customer_id AND a.asset = 'points' \
             WHERE p.expiry <> 'never' AND m.expiry_checked_at < ?1 AND a.balance > 0 ORDER BY m.id LIMIT ?2",
        )
        .and_then(|mut s| {
            s.query_map(params![today, limit], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(map_err)?;
    let (mut expired, mut noticed, looked_at) = (0, 0, candidates.len() as i64);
    let actor = Actor {
        staff_id: None,
        label: "system".into(),
    };
    for (member_id, merchant_id) in candidates {
        let member = find_member(conn, "m.id = ?1", params![member_id])?
            .pop()
            .ok_or(StoreError::NotFound)?;
        let program =
            program_rules(conn, merchant_id, member.program_id)?.ok_or(StoreError::NotFound)?;
        let policy: PointsExpiry = program.fields.expiry;
        let soon = now + NOTICE_DAYS * 86_400;
        let (Some(cut), Some(soon_cut)) = (cutoff(policy, now), cutoff(policy, soon)) else {
            continue;
        };
        let (matured, matured_soon, taken, last_soon) =
            sums(conn, member.customer_id, cut, soon_cut)?;
        let lapsing = lapse(matured, taken).min(member.points);
        if lapsing > 0 {
            let posting = Posting {
                conn,
                member: &member,
                reference: format!("expiry:{}", kaquan_core::clock::format_date(now)),
                reason: "积分过期",
                actor: &actor,
                now,
            };
            if !posting.post(TransactionKind::ExpirePoints, -lapsing)? {
                return Err(StoreError::Backend(format!(
                    "member {member_id}: expiry overdrew its points"
                )));
            }
            let record = MemberOperation {
                reference: posting.reference.clone(),
                points_earned: -lapsing,
                reason: "积分过期".into(),
                ..kaquan_core::member::operation::blank_operation(
                    merchant_id,
                    member_id,
                    OperationKind::ExpirePoints,
                    &actor,
                    now,
                )
            };
            record_operation(conn, record, &program.fields, &actor, &member)?;
            expired += 1;
        }
        let upcoming = lapse(matured_soon, taken + lapsing);
        if upcoming > 0 {
            let inserted = conn
                .execute(
                    "INSERT INTO member_expiry_notices (member_id, cutoff, points, created_at) VALUES (?1, ?2, ?3, ?4) \
                     ON CONFLICT DO NOTHING",
                    params![member_id, last_soon, upcoming, now],
                )
                .map_err(map_err)?;
            if inserted == 1 {
                let number = program.fields.member_number(member_id);
                let event: NewEvent = expiring_event(&member, &number, upcoming, policy, now);
                insert_event(conn, &event)?;
                noticed += 1;
            }
        }
        conn.execute(
            "UPDATE members SET expiry_checked_at = ?1 WHERE id = ?2",
            params![now, member_id],
        )
        .map_err(map_err)?;
    }
    Ok(PointsSweep {
        looked_at,
        expired,
        noticed,
    })
}
