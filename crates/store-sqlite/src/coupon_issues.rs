//! 投放 on SQLite: a give-out (领取, 定向发放, a mall order line, a
//! friend's share link) as one writer job, and the coupon 核销后返券 gives
//! inside a verification's job. The single writer runs each job alone, so
//! what a job checks before it writes is what it writes over.

use crate::coupons::{
    coupons_of_issue, program_from_row, record_coupon_call, refused, NO_COUNTS, PROGRAM_COLUMNS,
};
use crate::events::insert_event;
use crate::ledger::guard_call;
use crate::sql::{insert_audit, map_err};
use kaquan_core::coupon::usage::{
    check_issue, refusal_of_guard, Coupon, CouponRefusal, IssueCoupons,
};
use kaquan_core::coupon::CouponProgram;
use kaquan_core::ledger::{ApiCall, Called};
use kaquan_core::{StoreError, StoreResult};
use rusqlite::{params, Connection, OptionalExtension};

pub(crate) fn issue_job(
    conn: &crate::engine::Writer,
    call: &ApiCall,
    issue: &IssueCoupons,
) -> StoreResult<Called<Vec<Coupon>, CouponRefusal>> {
    let m = issue.merchant_id;
    let replayed = |id| -> StoreResult<Called<Vec<Coupon>, CouponRefusal>> {
        Ok(Called {
            result: Ok(coupons_of_issue(conn, id)?),
            replayed: true,
        })
    };
    match guard_call(conn, m, call)? {
        Some(Err(refusal)) => return refused(refusal_of_guard(refusal)),
        Some(Ok(recorded)) => {
            return replayed(
                recorded.coupon_issue_id.ok_or_else(|| {
                    StoreError::Backend("an idempotency key of another call".into())
                })?,
            )
        }
        None => {}
    }
    match earlier_line(conn, issue)? {
        Some(Ok(id)) => {
            record_coupon_call(conn, m, call, "coupon_issue_id", id, issue.now)?;
            return replayed(id);
        }
        Some(Err(refusal)) => return refused(refusal),
        None => {}
    }
    let program = match check_issue_job(conn, issue)? {
        Ok(program) => program,
        Err(refusal) => return refused(refusal),
    };
    let issue_id = write_issue(conn, issue, &program)?;
    record_coupon_call(conn, m, call, "coupon_issue_id", issue_id, issue.now)?;
    Ok(Called {
        result: Ok(coupons_of_issue(conn, issue_id)?),
        replayed: false,
    })
}

/// The earlier issue of the same order line: its id, or a mismatch.
fn earlier_line(
    conn: &Connection,
    issue: &IssueCoupons,
) -> StoreResult<Option<Result<i64, CouponRefusal>>> {
    let Some((order_id, line)) = &issue.order else {
        return Ok(None);
    };
    let earlier: Option<(i64, i64, i64)> = crate::sql::cached_row(conn,
            "SELECT id, program_id, quantity FROM coupon_issues WHERE merchant_id = ?1 AND order_id = ?2 AND order_line = ?3",
            params![issue.merchant_id, order_id, line],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()
        .map_err(map_err)?;
    Ok(earlier.map(|(id, program_id, quantity)| {
        if program_id == issue.program_id && quantity == issue.coupons.len() as i64 {
            Ok(id)
        } else {
            Err(CouponRefusal::OrderMismatch)
        }
    }))
}

/// Whether the issue may go ahead: the program, stock, customers and limits.
fn check_issue_job(
    conn: &Connection,
    issue: &IssueCoupons,
) -> StoreResult<Result<CouponProgram, CouponRefusal>> {
    let Some(program) = crate::sql::cached_row(conn,
            &format!("SELECT {PROGRAM_COLUMNS}, {NO_COUNTS} FROM coupon_programs p WHERE p.id = ?1 AND p.merchant_id = ?2"),
            params![issue.program_id, issue.merchant_id],
            program_from_row,
        )
        .optional()
        .map_err(map_err)?
    else {
        return Ok(Err(CouponRefusal::ProgramNotFound));
    };
    for (customer_id, k) in issue.per_customer() {
        let known: Option<Option<i64>> = crate::sql::cached_row(conn,
                "SELECT (SELECT n_claimed FROM coupon_holdings WHERE program_id = ?1 AND customer_id = ?2) \
                 FROM customers WHERE id = ?2 AND merchant_id = ?3",
                params![issue.program_id, customer_id, issue.merchant_id],
                |r| r.get::<_, Option<i64>>(0),
            )
            .optional()
            .map_err(map_err)?;
        let Some(n_claimed) = known else {
            return Ok(Err(CouponRefusal::CustomerNotFound));
        };
        let claim = issue
            .within_claim_limit()
            .then(|| (n_claimed.unwrap_or(0), program.fields.get_limit));
        if let Err(refusal) = check_issue(program.state, program.stock_left(), k, claim) {
            return Ok(Err(refusal));
        }
    }
    let n = issue.coupons.len() as i64;
    Ok(check_issue(program.state, program.stock_left(), n, None).map(|()| program))
}

/// 核销后返券 inside the verification's job: one coupon of the give
/// program to the verified coupon's holder when the program is issuing,
/// has stock and the holder is within 每人可领; otherwise nothing.
pub(crate) fn give_back(conn: &Connection, issue: &IssueCoupons) -> StoreResult<Option<i64>> {
    let program = match check_issue_job(conn, issue)? {
        Ok(program) => program,
        Err(_) => return Ok(None),
    };
    if kaquan_core::coupon::usecases::check_issuable(&program, issue.now).is_err() {
        return Ok(None);
    }
    let issue_id = write_issue(conn, issue, &program)?;
    Ok(Some(
        coupons_of_issue(conn, issue_id)?
            .first()
            .map(|c| c.id)
            .ok_or(StoreError::NotFound)?,
    ))
}

/// Takes the stock and writes the issue, its coupons, the holders' counts,
/// the audit record and the event; returns the issue's id.
fn write_issue(
    conn: &Connection,
    issue: &IssueCoupons,
    program: &CouponProgram,
) -> StoreResult<i64> {
    let (m, n) = (issue.merchant_id, issue.coupons.len() as i64);
    crate::sql::expect_one(
        crate::sql::cached_execute(
            conn,
            "UPDATE coupon_programs SET n_claimed = n_claimed + ?1 WHERE id = ?2 AND state = 'active' AND quantity - n_claimed >= ?1",
            params![n, issue.program_id],
        )
        .map_err(map_err)?,
    )?;
    let (order_id, line) = issue.order.clone().unzip();
    let issue_id: i64 = crate::sql::cached_row(conn,
            "INSERT INTO coupon_issues (merchant_id, program_id, source, order_id, order_line, quantity, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING id",
            params![m, issue.program_id, issue.source.code(), order_id, line, n, issue.now],
            |r| r.get(0),
        )
        .map_err(map_err)?;
    let (valid_from, valid_until) = program.fields.validity.window(issue.now);
    let mut made = Vec::with_capacity(issue.coupons.len());
    let mut insert = conn
        .prepare_cached(
            "INSERT INTO coupons (merchant_id, program_id, customer_id, digest, sealed, key_version, state, valid_from, \
             valid_until, source, issue_id, claimed_at, shared_by) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'available', ?7, ?8, ?9, ?10, ?11, ?12) RETURNING id",
        )
        .map_err(map_err)?;
    for (customer_id, code) in &issue.coupons {
        let id: i64 = insert
            .query_row(
                params![
                    m,
                    issue.program_id,
                    customer_id,
                    code.digest,
                    code.sealed,
                    code.key_version,
                    valid_from,
                    valid_until,
                    issue.source.code(),
                    issue_id,
                    issue.now,
                    issue.shared_by
                ],
                |r| r.get(0),
            )
            .map_err(map_err)?;
        made.push((id, *customer_id));
    }
    for (customer_id, k) in issue.per_customer() {
        crate::sql::cached_execute(
            conn,
            "INSERT INTO coupon_holdings (program_id, customer_id, n_claimed, n_used) VALUES (?1, ?2, ?3, 0) \
             ON CONFLICT (program_id, customer_id) DO UPDATE SET n_claimed = n_claimed + excluded.n_claimed",
            params![issue.program_id, customer_id, k],
        )
        .map_err(map_err)?;
    }
    if let Some(audit) = issue.audit(issue_id) {
        insert_audit(conn, &audit, n).map_err(map_err)?;
    }
    insert_event(conn, &issue.event(&made))?;
    Ok(issue_id)
}
