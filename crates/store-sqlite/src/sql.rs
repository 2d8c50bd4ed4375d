//! Query helpers every domain file uses: error mapping, column decoding,
//! paged merchant lists, the audit insert and the one-row check.

use kaquan_core::audit::AuditEntry;
use kaquan_core::store::Page;
use kaquan_core::{Conflict, StoreError, StoreResult};
use rusqlite::{params, Connection, Row};

pub(crate) fn map_err(error: rusqlite::Error) -> StoreError {
    match &error {
        rusqlite::Error::SqliteFailure(e, message)
            if e.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            let message = message.clone().unwrap_or_default();
            if message.contains("UNIQUE") {
                StoreError::Conflict(Conflict::Duplicate)
            } else {
                StoreError::Invalid(message)
            }
        }
        rusqlite::Error::QueryReturnedNoRows => StoreError::NotFound,
        _ => StoreError::Backend(error.to_string()),
    }
}

pub(crate) fn decode<T>(value: Option<T>, column: usize, what: &str) -> rusqlite::Result<T> {
    value.ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            column,
            rusqlite::types::Type::Text,
            format!("unknown {what}").into(),
        )
    })
}

/// One page of a merchant's rows of `table`, newest first, and their total.
pub(crate) fn merchant_page<T>(
    conn: &Connection,
    table: &str,
    columns: &str,
    merchant_id: i64,
    page: Page,
    map: impl FnMut(&Row) -> rusqlite::Result<T>,
) -> StoreResult<(Vec<T>, i64)> {
    let merchant = vec![rusqlite::types::Value::Integer(merchant_id)];
    filtered_page(
        conn,
        (table, columns, "id DESC"),
        "merchant_id = ?",
        merchant,
        page,
        map,
    )
}

/// One page of the rows of `table` that match `condition` (with `values`),
/// in `order`, and how many match in all.
pub(crate) fn filtered_page<T>(
    conn: &Connection,
    (table, columns, order): (&str, &str, &str),
    condition: &str,
    mut values: Vec<rusqlite::types::Value>,
    page: Page,
    map: impl FnMut(&Row) -> rusqlite::Result<T>,
) -> StoreResult<(Vec<T>, i64)> {
    let total: i64 = conn
        .query_row(
            &format!("SELECT count(*) FROM {table} WHERE {condition}"),
            rusqlite::params_from_iter(values.clone()),
            |r| r.get(0),
        )
        .map_err(map_err)?;
    values.push(rusqlite::types::Value::Integer(page.page_size));
    values.push(rusqlite::types::Value::Integer(page.offset()));
    let mut stmt = conn
        .prepare(&format!(
            "SELECT {columns} FROM {table} WHERE {condition} ORDER BY {order} LIMIT ? OFFSET ?"
        ))
        .map_err(map_err)?;
    let rows = stmt
        .query_map(rusqlite::params_from_iter(values), map)
        .map_err(map_err)?;
    Ok((rows.collect::<Result<_, _>>().map_err(map_err)?, total))
}

pub(crate) fn insert_audit(
    conn: &Connection,
    entry: &AuditEntry,
    n_affected: i64,
) -> rusqlite::Result<i64> {
    conn.prepare_cached(
        "INSERT INTO audit_log (merchant_id, actor_staff_id, actor, action, target, detail, n_affected, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(
        params![
            entry.merchant_id,
            entry.actor.staff_id,
            entry.actor.label,
            entry.action,
            entry.target,
            entry.detail,
            n_affected,
            entry.created_at
        ],
    )?;
    Ok(conn.last_insert_rowid())
}

/// Runs a statement through the connection's statement cache: a job that
/// runs thousands of times a second does not parse its SQL each time.
pub(crate) fn cached_execute<P: rusqlite::Params>(
    conn: &Connection,
    sql: &str,
    params: P,
) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute(params)
}

/// [`cached_execute`] for a statement that answers one row.
pub(crate) fn cached_row<T, P: rusqlite::Params>(
    conn: &Connection,
    sql: &str,
    params: P,
    map: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    conn.prepare_cached(sql)?.query_row(params, map)
}

/// A guarded write through the statement cache that must change exactly
/// one row ([`expect_one`]).
pub(crate) fn execute_one<P: rusqlite::Params>(
    conn: &Connection,
    sql: &str,
    params: P,
) -> StoreResult<()> {
    expect_one(cached_execute(conn, sql, params).map_err(map_err)?)
}

pub(crate) fn expect_one(n: usize) -> StoreResult<()> {
    if n == 1 {
        Ok(())
    } else {
        Err(StoreError::NotFound)
    }
}

/// Leases up to `limit` due rows of an outbound queue (`sms_messages`,
/// `erp_pushes`: `state`, `next_attempt_at`, `lease_until`, `attempts`)
/// for `lease_seconds`, counting the attempt; returns them as `map` reads
/// `columns`. The writer runs it alone, so no row is leased twice.
pub(crate) fn lease_due<T>(
    conn: &Connection,
    table: &str,
    columns: &str,
    (limit, lease_seconds, now): (i64, i64, i64),
    map: impl FnMut(&Row) -> rusqlite::Result<T>,
) -> StoreResult<Vec<T>> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "UPDATE {table} SET lease_until = ?1, attempts = attempts + 1 \
             WHERE id IN (SELECT id FROM {table} WHERE state = 'pending' \
             AND next_attempt_at <= ?2 AND lease_until <= ?2 ORDER BY next_attempt_at, id LIMIT ?3) \
             RETURNING {columns}"
        ))
        .map_err(map_err)?;
    let rows = stmt
        .query_map(params![now + lease_seconds, now, limit], map)
        .map_err(map_err)?;
    rows.collect::<Result<_, _>>().map_err(map_err)
}
