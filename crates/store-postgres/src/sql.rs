//! Query helpers every domain file uses: error mapping, prepared-statement
//! shortcuts (`opt`, `one`, `all`, `exec`), parameter lists, the audit
//! insert and the one-row check.

use crate::engine::db_message;
use deadpool_postgres::GenericClient;
use kaquan_core::audit::AuditEntry;
use kaquan_core::{Conflict, StoreError, StoreResult};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

pub(crate) fn map_err(error: tokio_postgres::Error) -> StoreError {
    match error.code() {
        Some(code) if *code == SqlState::UNIQUE_VIOLATION => {
            StoreError::Conflict(Conflict::Duplicate)
        }
        Some(code)
            if *code == SqlState::CHECK_VIOLATION || *code == SqlState::FOREIGN_KEY_VIOLATION =>
        {
            StoreError::Invalid(db_message(&error))
        }
        _ => StoreError::Backend(format!("{error}: {}", db_message(&error))),
    }
}

pub(crate) type Params = Vec<Box<dyn ToSql + Sync + Send>>;

pub(crate) fn refs(params: &Params) -> Vec<&(dyn ToSql + Sync)> {
    params
        .iter()
        .map(|p| p.as_ref() as &(dyn ToSql + Sync))
        .collect()
}

pub(crate) fn parse_or<T>(value: Option<T>, what: &str) -> StoreResult<T> {
    value.ok_or_else(|| StoreError::Backend(format!("unknown {what} in database")))
}

pub(crate) async fn insert_audit(
    client: &impl GenericClient,
    entry: &AuditEntry,
    n_affected: i64,
) -> StoreResult<i64> {
    let row = client
        .query_one(
            "INSERT INTO audit_log (merchant_id, actor_staff_id, actor, action, target, detail, n_affected, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
            &[
                &entry.merchant_id,
                &entry.actor.staff_id,
                &entry.actor.label,
                &entry.action,
                &entry.target,
                &entry.detail,
                &n_affected,
                &entry.created_at,
            ],
        )
        .await
        .map_err(map_err)?;
    Ok(row.get(0))
}

pub(crate) fn expect_one(n: u64) -> StoreResult<()> {
    if n == 1 {
        Ok(())
    } else {
        Err(StoreError::NotFound)
    }
}

pub(crate) type P<'a> = &'a (dyn ToSql + Sync);

/// Runs a statement this connection prepared once.
pub(crate) async fn opt(
    c: &impl GenericClient,
    sql: &str,
    params: &[P<'_>],
) -> StoreResult<Option<Row>> {
    let statement = c.prepare_cached(sql).await.map_err(map_err)?;
    c.query_opt(&statement, params).await.map_err(map_err)
}
pub(crate) async fn one(c: &impl GenericClient, sql: &str, params: &[P<'_>]) -> StoreResult<Row> {
    let statement = c.prepare_cached(sql).await.map_err(map_err)?;
    c.query_one(&statement, params).await.map_err(map_err)
}
pub(crate) async fn all(
    c: &impl GenericClient,
    sql: &str,
    params: &[P<'_>],
) -> StoreResult<Vec<Row>> {
    let statement = c.prepare_cached(sql).await.map_err(map_err)?;
    c.query(&statement, params).await.map_err(map_err)
}
/// One page of the rows of `table` that match `condition` (with `params`),
/// in `order`, and how many match in all.
pub(crate) async fn filtered_page(
    c: &impl GenericClient,
    (table, columns, order): (&str, &str, &str),
    condition: &str,
    mut params: Params,
    page: kaquan_core::store::Page,
) -> StoreResult<(Vec<Row>, i64)> {
    let count = format!("SELECT count(*) FROM {table} WHERE {condition}");
    let total: i64 = one(c, &count, &refs(&params)).await?.get(0);
    let n = params.len();
    params.push(Box::new(page.page_size));
    params.push(Box::new(page.offset()));
    let sql = format!(
        "SELECT {columns} FROM {table} WHERE {condition} ORDER BY {order} LIMIT ${} OFFSET ${}",
        n + 1,
        n + 2
    );
    Ok((all(c, &sql, &refs(&params)).await?, total))
}
pub(crate) async fn exec(c: &impl GenericClient, sql: &str, params: &[P<'_>]) -> StoreResult<u64> {
    let statement = c.prepare_cached(sql).await.map_err(map_err)?;
    c.execute(&statement, params).await.map_err(map_err)
}

/// Leases up to `limit` due rows of an outbound queue (`sms_messages`,
/// `erp_pushes`: `state`, `next_attempt_at`, `lease_until`, `attempts`)
/// for `lease_seconds`, counting the attempt; returns the rows of
/// `columns`. Rows another node is leasing are skipped, never waited for.
pub(crate) async fn lease_due(
    c: &impl GenericClient,
    table: &str,
    columns: &str,
    (limit, lease_seconds, now): (i64, i64, i64),
) -> StoreResult<Vec<Row>> {
    all(
        c,
        &format!(
            "UPDATE {table} SET lease_until = $1, attempts = attempts + 1 \
             WHERE id IN (SELECT id FROM {table} WHERE state = 'pending' \
             AND next_attempt_at <= $2 AND lease_until <= $2 ORDER BY next_attempt_at, id LIMIT $3 \
             FOR UPDATE SKIP LOCKED) RETURNING {columns}"
        ),
        &[&(now + lease_seconds), &now, &limit],
    )
    .await
}
