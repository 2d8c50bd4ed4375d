//! The storage engine: the connection pool, connecting and migrating,
//! statistics after bulk loads, and `Pipelined`, the ledger's transaction
//! whose first statements travel with its BEGIN.
//!
//! Tuning: [`POOL_SIZE_MAX`] connections per node; `ANALYZE` of `cards` and
//! `codes` after a bulk insert of many rows commits (`refresh_statistics`:
//! stale statistics made the export that follows a new batch read the whole
//! batch per page). A signed redemption for a known customer is one
//! autocommit statement (`ledger::redeem_in_one_statement`), and so is the
//! usual coupon verification (`coupon_verifications::VERIFY_STATEMENT`); any other
//! ledger call is a `Pipelined` transaction whose ledger statement is one
//! CTE: three round trips. The ledger's postings, transactions and audit
//! records carry no foreign key to the merchant or to accounts (each
//! redemption would lock the same rows); the invariant checks cover them.

use crate::sql::map_err;
use deadpool_postgres::GenericClient;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use kaquan_core::ledger::Refusal;
use kaquan_core::store::Page;
use kaquan_core::{StoreError, StoreResult};
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};

/// Connections per `kaquan serve` node. Kept small: PostgreSQL runs a
/// statement per connection at a time on one core, so connections beyond a
/// few per server core only queue inside it (two nodes × 8 redeem faster
/// than two × 16 on a 2-core server, see bench/redemptions.sh).
pub const POOL_SIZE_MAX: usize = 8;
/// How long start-up waits for a `generating` batch's lock before deciding
/// a live node is filling it.
pub(crate) const INTERRUPTED_BATCH_LOCK_WAIT_MS: u64 = 5000;
/// Failed attempts older than this are forgotten.
pub(crate) const ATTEMPT_FAILURES_KEPT_SECONDS: i64 = 86_400;
/// Rows a bulk insert adds before the store refreshes its table's planner
/// statistics at once. Until autovacuum gets round to it (a minute or
/// more), PostgreSQL plans for the table as it was: right after 100,000 new
/// codes their export read the whole batch for every page it wrote (3.7 s
/// instead of 0.45 s; cards 0.79 s instead of 0.27 s).
pub(crate) const ANALYZE_AFTER_ROWS_MIN: i64 = 10_000;
/// Key for the advisory lock that serialises migrations across nodes.
pub(crate) const MIGRATION_LOCK_KEY: i64 = 0x6b61_7175_616e; // "kaquan"

pub(crate) const MIGRATIONS: &[&str] = &[
    include_str!("migrations/001_schema.sql"),
    include_str!("migrations/002_goods.sql"),
    include_str!("migrations/003_orders.sql"),
    include_str!("migrations/004_pickup_settings.sql"),
    include_str!("migrations/005_carriers.sql"),
    include_str!("migrations/006_logos.sql"),
    include_str!("migrations/007_stored_value.sql"),
    include_str!("migrations/008_nonces_by_time.sql"),
    include_str!("migrations/009_no_hot_row_locks.sql"),
    include_str!("migrations/010_events.sql"),
    include_str!("migrations/011_card_sales.sql"),
    include_str!("migrations/012_sms.sql"),
    include_str!("migrations/013_erp.sql"),
    include_str!("migrations/014_waybills.sql"),
    include_str!("migrations/015_batch_counts.sql"),
    include_str!("migrations/016_must_change_password.sql"),
    include_str!("migrations/017_public_url.sql"),
    include_str!("migrations/018_coupons.sql"),
    include_str!("migrations/019_coupon_expiry.sql"),
    include_str!("migrations/020_abort.sql"),
    include_str!("migrations/021_verification_keys.sql"),
    include_str!("migrations/022_coupon_stock.sql"),
    include_str!("migrations/023_coupon_logos.sql"),
    include_str!("migrations/024_members.sql"),
    include_str!("migrations/025_member_sms.sql"),
    include_str!("migrations/026_member_card_face.sql"),
    include_str!("migrations/027_member_operation_owner.sql"),
    include_str!("migrations/028_credits.sql"),
    include_str!("migrations/029_ecards.sql"),
    include_str!("migrations/030_daily_tallies.sql"),
    include_str!("migrations/031_staff_language.sql"),
    include_str!("migrations/032_analytics_indexes.sql"),
    include_str!("migrations/033_audit_chain.sql"),
    include_str!("migrations/034_prepaid_policy.sql"),
    include_str!("migrations/035_approvals.sql"),
    include_str!("migrations/036_print_shops.sql"),
    include_str!("migrations/037_key_ring.sql"),
    include_str!("migrations/038_distributable.sql"),
    include_str!("migrations/039_credential_approvals.sql"),
];

pub struct PgStore {
    pub(crate) pool: Pool,
}

pub(crate) fn db_message(error: &tokio_postgres::Error) -> String {
    error
        .as_db_error()
        .map(|e| e.message().to_owned())
        .unwrap_or_else(|| error.to_string())
}

/// After a bulk insert of `n_rows` into `table` has committed: fresh
/// planner statistics (`ANALYZE_AFTER_ROWS_MIN`). The rows are in either
/// way; a failure here is only logged.
pub(crate) async fn refresh_statistics(
    client: &impl GenericClient,
    table: &'static str,
    n_rows: i64,
) {
    if n_rows < ANALYZE_AFTER_ROWS_MIN {
        return;
    }
    if let Err(e) = client.batch_execute(&format!("ANALYZE {table}")).await {
        tracing::warn!(error = %e, table, "could not refresh planner statistics");
    }
}

pub(crate) fn pool_err(error: deadpool_postgres::PoolError) -> StoreError {
    StoreError::Backend(format!("connection pool: {error}"))
}

/// Connects to `url` and applies pending migrations.
pub async fn connect(url: &str) -> StoreResult<PgStore> {
    let config: tokio_postgres::Config = url
        .parse()
        .map_err(|e| StoreError::Backend(format!("bad PostgreSQL URL: {e}")))?;
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    let pool = Pool::builder(manager)
        .max_size(POOL_SIZE_MAX)
        .build()
        .map_err(|e| StoreError::Backend(format!("connection pool: {e}")))?;
    let store = PgStore { pool };
    store.migrate().await?;
    Ok(store)
}

impl PgStore {
    pub(crate) async fn migrate(&self) -> StoreResult<()> {
        let mut client = self.pool.get().await.map_err(pool_err)?;
        let tx = client.transaction().await.map_err(map_err)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK_KEY])
            .await
            .map_err(map_err)?;
        tx.batch_execute("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")
            .await
            .map_err(map_err)?;
        let applied: i64 = tx
            .query_one(
                "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
                &[],
            )
            .await
            .map_err(map_err)?
            .get(0);
        for (idx, sql) in MIGRATIONS.iter().enumerate() {
            let version = idx as i64 + 1;
            if version > applied {
                tx.batch_execute(sql).await.map_err(map_err)?;
                tx.execute(
                    "INSERT INTO schema_migrations (version) VALUES ($1)",
                    &[&version],
                )
                .await
                .map_err(map_err)?;
            }
        }
        tx.commit().await.map_err(map_err)
    }

    pub(crate) async fn client(&self) -> StoreResult<deadpool_postgres::Object> {
        self.pool.get().await.map_err(pool_err)
    }

    /// The first column of every row, as strings.
    pub(crate) async fn query_strings(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> StoreResult<Vec<String>> {
        let rows = self
            .client()
            .await?
            .query(sql, params)
            .await
            .map_err(map_err)?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// One page of a merchant's rows of `table`, newest first, and their total.
    pub(crate) async fn merchant_page(
        &self,
        table: &str,
        columns: &str,
        merchant_id: i64,
        page: Page,
    ) -> StoreResult<(Vec<Row>, i64)> {
        let merchant: crate::sql::Params = vec![Box::new(merchant_id)];
        let what = (table, columns, "id DESC");
        crate::sql::filtered_page(
            &self.client().await?,
            what,
            "merchant_id = $1",
            merchant,
            page,
        )
        .await
    }

    /// Runs a query whose statement each connection prepares once; for the
    /// hot paths (a pickup makes several reads per request).
    pub(crate) async fn query_cached(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> StoreResult<Vec<Row>> {
        let client = self.client().await?;
        let statement = client.prepare_cached(sql).await.map_err(map_err)?;
        client.query(&statement, params).await.map_err(map_err)
    }
}

/// A transaction begun by hand, so that BEGIN travels with its first
/// statements instead of costing a round trip of its own. Dropped before
/// `end` (an error, a cancelled request) it closes its connection rather
/// than give it back to the pool inside an open transaction; the server
/// then rolls the transaction back.
pub(crate) struct Pipelined {
    pub(crate) client: Option<deadpool_postgres::Object>,
}

impl Pipelined {
    pub(crate) fn new(client: deadpool_postgres::Object) -> Self {
        Pipelined {
            client: Some(client),
        }
    }

    pub(crate) fn client(&self) -> &deadpool_postgres::Object {
        self.client
            .as_ref()
            .expect("a pipelined transaction has its connection until it ends")
    }

    /// BEGIN; join it with the first statements so they travel together.
    pub(crate) async fn begin(&self) -> StoreResult<()> {
        self.client().batch_execute("BEGIN").await.map_err(map_err)
    }

    /// Commits a guarded call, except one refused for a reused nonce: that
    /// rolls back, so the idempotency key it claimed alongside stays free.
    /// The connection then goes back to the pool.
    pub(crate) async fn finish<T>(self, result: &Result<T, Refusal>) -> StoreResult<()> {
        self.end(matches!(result, Err(Refusal::NonceReused))).await
    }

    /// Commits, or rolls back when `roll_back`; the connection then goes
    /// back to the pool.
    pub(crate) async fn end(mut self, roll_back: bool) -> StoreResult<()> {
        let end = if roll_back { "ROLLBACK" } else { "COMMIT" };
        self.client().batch_execute(end).await.map_err(map_err)?;
        self.client = None;
        Ok(())
    }
}

impl Drop for Pipelined {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            drop(deadpool_postgres::Object::take(client));
        }
    }
}
