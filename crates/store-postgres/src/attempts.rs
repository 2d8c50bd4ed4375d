//! Failed-attempt counters (兑换防刷); core decides, this only counts.

use crate::engine::ATTEMPT_FAILURES_KEPT_SECONDS;
use crate::sql::{exec, one};
use crate::PgStore;
use kaquan_core::StoreResult;

/// Failures of `key` since `since`.
pub(crate) async fn count_failures(
    c: &impl deadpool_postgres::GenericClient,
    merchant_id: i64,
    key: &str,
    since: i64,
) -> StoreResult<i64> {
    let row = one(
        c,
        "SELECT count(*) FROM attempt_failures WHERE merchant_id = $1 AND key = $2 AND at >= $3",
        &[&merchant_id, &key, &since],
    )
    .await?;
    Ok(row.get(0))
}

#[async_trait::async_trait]
impl kaquan_core::attempts::AttemptStore for PgStore {
    async fn oldest_failure(
        &self,
        merchant_id: i64,
        key: &str,
        since: i64,
    ) -> StoreResult<Option<i64>> {
        let row = one(
            &self.client().await?,
            "SELECT MIN(at) FROM attempt_failures WHERE merchant_id = $1 AND key = $2 AND at >= $3",
            &[&merchant_id, &key, &since],
        )
        .await?;
        Ok(row.get(0))
    }

    async fn count_failures(&self, merchant_id: i64, key: &str, since: i64) -> StoreResult<i64> {
        count_failures(&self.client().await?, merchant_id, key, since).await
    }

    async fn clear_failures(&self, merchant_id: i64, key: &str) -> StoreResult<()> {
        exec(
            &self.client().await?,
            "DELETE FROM attempt_failures WHERE merchant_id = $1 AND key = $2",
            &[&merchant_id, &key],
        )
        .await?;
        Ok(())
    }

    async fn record_failure(&self, merchant_id: i64, key: &str, now: i64) -> StoreResult<()> {
        let client = self.client().await?;
        exec(
            &client,
            "DELETE FROM attempt_failures WHERE merchant_id = $1 AND key = $2 AND at < $3",
            &[&merchant_id, &key, &(now - ATTEMPT_FAILURES_KEPT_SECONDS)],
        )
        .await?;
        exec(
            &client,
            "INSERT INTO attempt_failures (merchant_id, key, at) VALUES ($1, $2, $3)",
            &[&merchant_id, &key, &now],
        )
        .await?;
        Ok(())
    }
}
