//! Points expiry on PostgreSQL (积分有效期): a sweep takes members not
//! checked today (skipping those another node is sweeping), locks each
//! with its accounts, sums the points earned up to the cutoff and all
//! taken so far, and posts what lapses as one `expire_points` transaction
//! with its operation record, audit record and message; points lapsing
//! within the notice days get one notice each.

use crate::events::insert_event;
use crate::member_programs::program_rules;
use crate::members::{member_by_id, record_operation, Posting};
use crate::sql::{all, exec, map_err, one};
use crate::PgStore;
use kaquan_core::audit::Actor;
use kaquan_core::ledger::TransactionKind;
use kaquan_core::member::expiry::{cutoff, expiring_event, lapse, PointsSweep, NOTICE_DAYS};
use kaquan_core::member::operation::{blank_operation, MemberOperation, OperationKind};
use kaquan_core::{StoreError, StoreResult};

impl PgStore {
    pub(crate) async fn sweep_points(&self, now: i64, limit: i64) -> StoreResult<PointsSweep> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let today = kaquan_core::clock::start_of_today(now);
        let candidates: Vec<(i64, i64)> = all(
            &tx,
            "SELECT m.id, m.merchant_id FROM members m JOIN member_programs p ON p.id = m.program_id \
             JOIN ledger_accounts a ON a.customer_id = m.customer_id AND a.asset = 'points' \
             WHERE p.expiry <> 'never' AND m.expiry_checked_at < $1 AND a.balance > 0 ORDER BY m.id LIMIT $2 \
             FOR UPDATE OF m SKIP LOCKED",
            &[&today, &limit],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
        let actor = Actor {
            staff_id: None,
            label: "system".into(),
        };
        let (mut expired, mut noticed, looked_at) = (0, 0, candidates.len() as i64);
        for (member_id, merchant_id) in candidates {
            let (lapsed, told) = expire_member(&tx, member_id, merchant_id, now, &actor).await?;
            expired += i64::from(lapsed);
            noticed += i64::from(told);
        }
        tx.commit().await.map_err(map_err)?;
        Ok(PointsSweep {
            looked_at,
            expired,
            noticed,
        })
    }
}

/// One member of a sweep, locked with its accounts: what lapses, and the
/// notice of what lapses soon. Returns (lapsed, told).
async fn expire_member(
    tx: &impl deadpool_postgres::GenericClient,
    member_id: i64,
    merchant_id: i64,
    now: i64,
    actor: &Actor,
) -> StoreResult<(bool, bool)> {
    let (mut lapsed, mut told) = (false, false);

    let customer_id: i64 = one(
        tx,
        "SELECT customer_id FROM members WHERE id = $1",
        &[&member_id],
    )
    .await?
    .get(0);
    exec(
        tx,
        "SELECT 1 FROM ledger_accounts WHERE customer_id = $1 ORDER BY id FOR UPDATE",
        &[&customer_id],
    )
    .await?;
    let member = member_by_id(tx, member_id).await?;
    let program = program_rules(tx, merchant_id, member.program_id)
        .await?
        .ok_or(StoreError::NotFound)?;
    let policy = program.fields.expiry;
    let soon = now + NOTICE_DAYS * 86_400;
    let (Some(cut), Some(soon_cut)) = (cutoff(policy, now), cutoff(policy, soon)) else {
        return Ok((false, false));
    };
    let row = one(
        tx,
        "SELECT COALESCE(SUM(CASE WHEN amount_fen > 0 AND created_at <= $2 THEN amount_fen END), 0)::bigint, \
         COALESCE(SUM(CASE WHEN amount_fen > 0 AND created_at <= $3 THEN amount_fen END), 0)::bigint, \
         COALESCE(SUM(CASE WHEN amount_fen < 0 THEN -amount_fen END), 0)::bigint, \
         COALESCE(MAX(CASE WHEN amount_fen > 0 AND created_at <= $3 THEN created_at END), 0)::bigint \
         FROM ledger_transactions WHERE customer_id = $1 AND asset = 'points'",
        &[&customer_id, &cut, &soon_cut],
    )
    .await?;
    let (matured, matured_soon, taken, last_soon): (i64, i64, i64, i64) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    let lapsing = lapse(matured, taken).min(member.points);
    if lapsing > 0 {
        let posting = Posting {
            member: &member,
            reference: format!("expiry:{}", kaquan_core::clock::format_date(now)),
            reason: "积分过期",
            actor,
            now,
        };
        if !posting
            .post(tx, TransactionKind::ExpirePoints, -lapsing)
            .await?
        {
            return Err(StoreError::Backend(format!(
                "member {member_id}: expiry overdrew its points"
            )));
        }
        let record = MemberOperation {
            reference: posting.reference.clone(),
            points_earned: -lapsing,
            reason: "积分过期".into(),
            ..blank_operation(
                merchant_id,
                member_id,
                OperationKind::ExpirePoints,
                actor,
                now,
            )
        };
        record_operation(tx, record, &program.fields, actor, &member).await?;
        lapsed = true;
    }
    let upcoming = lapse(matured_soon, taken + lapsing);
    if upcoming > 0 {
        let inserted = exec(
            tx,
            "INSERT INTO member_expiry_notices (member_id, cutoff, points, created_at, merchant_id) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            &[&member_id, &last_soon, &upcoming, &now, &merchant_id],
        )
        .await?;
        if inserted == 1 {
            let number = program.fields.member_number(member_id);
            insert_event(tx, &expiring_event(&member, &number, upcoming, policy, now)).await?;
            told = true;
        }
    }
    exec(
        tx,
        "UPDATE members SET expiry_checked_at = $1 WHERE id = $2",
        &[&now, &member_id],
    )
    .await?;
    Ok((lapsed, told))
}
