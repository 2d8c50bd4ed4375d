//! Failed-attempt counters (兑换防刷); core decides, this only counts.

use crate::engine::ATTEMPT_FAILURES_KEPT_SECONDS;
use crate::sql::map_err;
use crate::SqliteStore;
use kaquan_core::StoreResult;
use rusqlite::params;

/// Failures of `key` since `since`.
pub(crate) fn count_failures(
    conn: &rusqlite::Connection,
    merchant_id: i64,
    key: &str,
    since: i64,
) -> StoreResult<i64> {
    crate::sql::cached_row(
        conn,
        "SELECT count(*) FROM attempt_failures WHERE merchant_id = ?1 AND key = ?2 AND at >= ?3",
        params![merchant_id, key, since],
        |r| r.get(0),
    )
    .map_err(map_err)
}

/// The first failure of `key` since `since`.
pub(crate) fn oldest_failure(
    conn: &rusqlite::Connection,
    merchant_id: i64,
    key: &str,
    since: i64,
) -> StoreResult<Option<i64>> {
    crate::sql::cached_row(
        conn,
        "SELECT MIN(at) FROM attempt_failures WHERE merchant_id = ?1 AND key = ?2 AND at >= ?3",
        params![merchant_id, key, since],
        |r| r.get(0),
    )
    .map_err(map_err)
}

/// Counts a failure of `key` at `now`, forgetting its old ones.
pub(crate) fn record_failure(
    conn: &rusqlite::Connection,
    merchant_id: i64,
    key: &str,
    now: i64,
) -> StoreResult<()> {
    crate::sql::cached_execute(
        conn,
        "DELETE FROM attempt_failures WHERE merchant_id = ?1 AND key = ?2 AND at < ?3",
        params![merchant_id, key, now - ATTEMPT_FAILURES_KEPT_SECONDS],
    )
    .map_err(map_err)?;
    crate::sql::cached_execute(
        conn,
        "INSERT INTO attempt_failures (merchant_id, key, at) VALUES (?1, ?2, ?3)",
        params![merchant_id, key, now],
    )
    .map_err(map_err)?;
    Ok(())
}

#[async_trait::async_trait]
impl kaquan_core::attempts::AttemptStore for SqliteStore {
    async fn oldest_failure(
        &self,
        merchant_id: i64,
        key: &str,
        since: i64,
    ) -> StoreResult<Option<i64>> {
        let key = key.to_owned();
        self.read(move |conn| oldest_failure(conn, merchant_id, &key, since))
            .await
    }

    async fn count_failures(&self, merchant_id: i64, key: &str, since: i64) -> StoreResult<i64> {
        let key = key.to_owned();
        self.read(move |conn| count_failures(conn, merchant_id, &key, since))
            .await
    }

    async fn clear_failures(&self, merchant_id: i64, key: &str) -> StoreResult<()> {
        let key = key.to_owned();
        self.write(move |conn| {
            crate::sql::cached_execute(
                conn,
                "DELETE FROM attempt_failures WHERE merchant_id = ?1 AND key = ?2",
                params![merchant_id, key],
            )
            .map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn record_failure(&self, merchant_id: i64, key: &str, now: i64) -> StoreResult<()> {
        let key = key.to_owned();
        self.write(move |conn| record_failure(conn, merchant_id, &key, now))
            .await
    }
}
