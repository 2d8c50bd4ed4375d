//! 投放 on PostgreSQL: a give-out (领取, 定向发放, a mall order line)
//! inside its caller's transaction: the issue row, the holder's count under
//! 每人可领, and the stock taken last, just before commit (every claim of a
//! program waits on its one `coupon_stock` row, so it holds it the least).

use crate::coupons::{program_at, NO_COUNTS, PROGRAM_COLUMNS, PROGRAM_FROM};
use crate::events::insert_event;
use crate::sql::{exec, insert_audit, one, opt, parse_or};
use deadpool_postgres::GenericClient;
use kaquan_core::coupon::usage::{check_issue, CouponRefusal, IssueCoupons};
use kaquan_core::coupon::ProgramState;
use kaquan_core::StoreResult;
/// Gives the coupons out inside the open transaction (after `SAVEPOINT
/// work`): `Ok(Ok(issue id, replayed))` or the refusal, to roll back.
pub(crate) async fn issue_in(
    c: &impl GenericClient,
    issue: &IssueCoupons,
) -> StoreResult<Result<(i64, bool), CouponRefusal>> {
    let issue_id = match insert_issue(c, issue).await? {
        Ok(Ok(id)) => id,
        Ok(Err(earlier)) => return Ok(Ok((earlier, true))),
        Err(refusal) => return Ok(Err(refusal)),
    };
    // The stock is taken last: its row is the one every claim of the
    // program waits for, so it stays locked only until the commit.
    let program = match opt(
        c,
        &format!("SELECT {PROGRAM_COLUMNS}, {NO_COUNTS} FROM {PROGRAM_FROM} WHERE p.id = $1 AND p.merchant_id = $2"),
        &[&issue.program_id, &issue.merchant_id],
    )
    .await?
    {
        Some(row) => program_at(&row, 0)?,
        None => return Ok(Err(CouponRefusal::ProgramNotFound)),
    };
    if let Err(refusal) = count_holders(c, issue, program.fields.get_limit).await? {
        return Ok(Err(refusal));
    }
    let (valid_from, valid_until) = program.fields.validity.window(issue.now);
    let customers: Vec<i64> = issue.coupons.iter().map(|(id, _)| *id).collect();
    let digests: Vec<&[u8]> = issue
        .coupons
        .iter()
        .map(|(_, code)| code.digest.as_slice())
        .collect();
    let sealed: Vec<&[u8]> = issue
        .coupons
        .iter()
        .map(|(_, code)| code.sealed.as_slice())
        .collect();
    let key_version = issue
        .coupons
        .first()
        .map_or(1, |(_, code)| code.key_version);
    let made: Vec<(i64, i64)> = crate::sql::all(
        c,
        "INSERT INTO coupons (merchant_id, program_id, customer_id, digest, sealed, key_version, state, valid_from, \
         valid_until, source, issue_id, claimed_at, shared_by) \
         SELECT $1, $2, customer, digest, sealed, $6, 'available', $7, $8, $9, $10, $11, $12 \
         FROM unnest($3::bigint[], $4::bytea[], $5::bytea[]) AS t(customer, digest, sealed) RETURNING id, customer_id",
        &[&issue.merchant_id, &issue.program_id, &customers, &digests, &sealed, &key_version, &valid_from, &valid_until,
            &issue.source.code(), &issue_id, &issue.now, &issue.shared_by],
    )
    .await?
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect();
    if let Some(audit) = issue.audit(issue_id) {
        insert_audit(c, &audit, audit.n_affected).await?;
    }
    insert_event(c, &issue.event(&made)).await?;
    if let Err(refusal) = take_stock(c, issue).await? {
        return Ok(Err(refusal));
    }
    Ok(Ok((issue_id, false)))
}

/// 核销后返券 inside the verification's transaction: one coupon of the
/// give program to the verified coupon's holder when the program is
/// issuing, has stock and the holder is within 每人可领; otherwise nothing
/// (what the attempt wrote is rolled back to its savepoint).
pub(crate) async fn give_back_in(
    c: &impl GenericClient,
    issue: &IssueCoupons,
) -> StoreResult<Option<i64>> {
    let program = opt(
        c,
        &format!("SELECT {PROGRAM_COLUMNS}, {NO_COUNTS} FROM {PROGRAM_FROM} WHERE p.id = $1 AND p.merchant_id = $2"),
        &[&issue.program_id, &issue.merchant_id],
    )
    .await?;
    let issuable = match program {
        Some(row) => {
            kaquan_core::coupon::usecases::check_issuable(&program_at(&row, 0)?, issue.now).is_ok()
        }
        None => false,
    };
    if !issuable {
        return Ok(None);
    }
    exec(c, "SAVEPOINT give_back", &[]).await?;
    match issue_in(c, issue).await? {
        Ok((issue_id, _)) => {
            exec(c, "RELEASE SAVEPOINT give_back", &[]).await?;
            let row = one(
                c,
                "SELECT id FROM coupons WHERE issue_id = $1",
                &[&issue_id],
            )
            .await?;
            Ok(Some(row.get(0)))
        }
        Err(_) => {
            exec(c, "ROLLBACK TO SAVEPOINT give_back", &[]).await?;
            Ok(None)
        }
    }
}

/// The issue's row: `Ok(Ok(id))` new, `Ok(Err(id))` the same order line
/// issued before; a line issued with another program or quantity is refused.
/// The same order line at once: the second waits here for the first.
async fn insert_issue(
    c: &impl GenericClient,
    issue: &IssueCoupons,
) -> StoreResult<Result<Result<i64, i64>, CouponRefusal>> {
    let (m, n) = (issue.merchant_id, issue.coupons.len() as i64);
    let (order_id, line) = issue.order.clone().unzip();
    let inserted = opt(
        c,
        "INSERT INTO coupon_issues (merchant_id, program_id, source, order_id, order_line, quantity, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (merchant_id, order_id, order_line) DO NOTHING RETURNING id",
        &[&m, &issue.program_id, &issue.source.code(), &order_id, &line, &n, &issue.now],
    )
    .await?;
    if let Some(row) = inserted {
        return Ok(Ok(Ok(row.get(0))));
    }
    let r = one(
        c,
        "SELECT id, program_id, quantity FROM coupon_issues WHERE merchant_id = $1 AND order_id = $2 AND order_line = $3",
        &[&m, &order_id, &line],
    )
    .await?;
    Ok(
        if r.get::<_, i64>(1) == issue.program_id && r.get::<_, i64>(2) == n {
            Ok(Err(r.get(0)))
        } else {
            Err(CouponRefusal::OrderMismatch)
        },
    )
}

/// Takes the issue's stock from its program in one guarded update, or
/// names why not.
async fn take_stock(
    c: &impl GenericClient,
    issue: &IssueCoupons,
) -> StoreResult<Result<(), CouponRefusal>> {
    let (m, n) = (issue.merchant_id, issue.coupons.len() as i64);
    let taken = exec(
        c,
        "UPDATE coupon_stock s SET n_claimed = s.n_claimed + $1 FROM coupon_programs p \
         WHERE s.program_id = $2 AND p.id = s.program_id AND p.merchant_id = $3 \
         AND p.state = 'active' AND s.quantity - s.n_claimed >= $1",
        &[&n, &issue.program_id, &m],
    )
    .await?;
    if taken == 1 {
        return Ok(Ok(()));
    }
    let row = opt(
        c,
        "SELECT p.state, s.quantity - s.n_claimed FROM coupon_programs p JOIN coupon_stock s ON s.program_id = p.id \
         WHERE p.id = $1 AND p.merchant_id = $2",
        &[&issue.program_id, &m],
    )
    .await?;
    let Some(row) = row else {
        return Ok(Err(CouponRefusal::ProgramNotFound));
    };
    let state = parse_or(ProgramState::parse(row.get(0)), "program state")?;
    Ok(Err(check_issue(state, row.get(1), n, None)
        .err()
        .unwrap_or(CouponRefusal::OutOfStock)))
}

/// Counts the coupons on each holder's row, within the claim limit for a
/// claim (one guarded upsert per holder).
async fn count_holders(
    c: &impl GenericClient,
    issue: &IssueCoupons,
    get_limit: i64,
) -> StoreResult<Result<(), CouponRefusal>> {
    let per_customer = issue.per_customer();
    let ids: Vec<i64> = per_customer.iter().map(|(id, _)| *id).collect();
    let known: i64 = one(
        c,
        "SELECT count(*) FROM customers WHERE id = ANY($1) AND merchant_id = $2",
        &[&ids, &issue.merchant_id],
    )
    .await?
    .get(0);
    if known != ids.len() as i64 {
        return Ok(Err(CouponRefusal::CustomerNotFound));
    }
    let limit = if issue.within_claim_limit() {
        get_limit
    } else {
        i64::MAX
    };
    for (customer_id, k) in &per_customer {
        let held = opt(
            c,
            "INSERT INTO coupon_holdings (program_id, customer_id, n_claimed, n_used, merchant_id) \
             SELECT $1::bigint, $2::bigint, $3::bigint, 0, $5::bigint WHERE $3::bigint <= $4::bigint \
             ON CONFLICT (program_id, customer_id, merchant_id) DO UPDATE SET n_claimed = coupon_holdings.n_claimed + excluded.n_claimed \
             WHERE coupon_holdings.n_claimed + excluded.n_claimed <= $4 RETURNING 1",
            &[&issue.program_id, customer_id, k, &limit, &issue.merchant_id],
        )
        .await?;
        if held.is_none() {
            return Ok(Err(CouponRefusal::ClaimLimitReached { get_limit }));
        }
    }
    Ok(Ok(()))
}
