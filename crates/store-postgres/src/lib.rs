//! The PostgreSQL backend, for many `kaquan serve` nodes sharing one
//! database. A connection pool; every read-modify-write is one guarded
//! statement in a transaction; batches are loaded with binary COPY.
//!
//! Architecture invariant: this file and `migrations/` hold all of kaquan's
//! PostgreSQL SQL.

use deadpool_postgres::GenericClient;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use futures_util::pin_mut;
use kaquan_core::auth::{builtin_roles, Permission};
use kaquan_core::batch::{Numbering, PasswordCharset};
use kaquan_core::card::{CardEdit, CardFilter, CardOp, CardState};
use kaquan_core::goods::{Goods, GoodsFields, GoodsLinkMode, GOODS_IMAGES_MAX, GOODS_PER_CARD_MAX};
use kaquan_core::pickup::{
    format_blocked_dates, parse_blocked_dates, AppointmentMode, Channel, Consignee, OrderStatus,
    PickupSettings,
};
use kaquan_core::store::*;
use kaquan_core::{StoreError, StoreResult};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{NoTls, Row};

mod stored_value;

/// Connections per `kaquan serve` node. Kept small: PostgreSQL runs a
/// statement per connection at a time on one core, so connections beyond a
/// few per server core only queue inside it (two nodes × 8 redeem faster
/// than two × 16 on a 2-core server, see bench/redemptions.sh).
pub const POOL_SIZE_MAX: usize = 8;
/// How long start-up waits for a `generating` batch's lock before deciding
/// a live node is filling it.
const INTERRUPTED_BATCH_LOCK_WAIT_MS: u64 = 5000;
/// Failed attempts older than this are forgotten.
const ATTEMPT_FAILURES_KEPT_SECONDS: i64 = 86_400;
/// Rows a bulk insert adds before the store refreshes its table's planner
/// statistics at once. Until autovacuum gets round to it (a minute or
/// more), PostgreSQL plans for the table as it was: right after 100,000 new
/// codes their export read the whole batch for every page it wrote (3.7 s
/// instead of 0.45 s; cards 0.79 s instead of 0.27 s).
const ANALYZE_AFTER_ROWS_MIN: i64 = 10_000;
/// Key for the advisory lock that serialises migrations across nodes.
const MIGRATION_LOCK_KEY: i64 = 0x6b61_7175_616e; // "kaquan"

const MIGRATIONS: &[&str] = &[
    include_str!("migrations/001_schema.sql"),
    include_str!("migrations/002_goods.sql"),
    include_str!("migrations/003_orders.sql"),
    include_str!("migrations/004_pickup_settings.sql"),
    include_str!("migrations/005_carriers.sql"),
    include_str!("migrations/006_logos.sql"),
    include_str!("migrations/007_stored_value.sql"),
    include_str!("migrations/008_nonces_by_time.sql"),
    include_str!("migrations/009_no_hot_row_locks.sql"),
];

pub struct PgStore {
    pool: Pool,
}

fn map_err(error: tokio_postgres::Error) -> StoreError {
    match error.code() {
        Some(code) if *code == SqlState::UNIQUE_VIOLATION => {
            StoreError::Conflict(db_message(&error))
        }
        Some(code)
            if *code == SqlState::CHECK_VIOLATION || *code == SqlState::FOREIGN_KEY_VIOLATION =>
        {
            StoreError::Invalid(db_message(&error))
        }
        _ => StoreError::Backend(format!("{error}: {}", db_message(&error))),
    }
}

fn db_message(error: &tokio_postgres::Error) -> String {
    error
        .as_db_error()
        .map(|e| e.message().to_owned())
        .unwrap_or_else(|| error.to_string())
}

/// After a bulk insert of `n_rows` into `table` has committed: fresh
/// planner statistics (`ANALYZE_AFTER_ROWS_MIN`). The rows are in either
/// way; a failure here is only logged.
async fn refresh_statistics(client: &impl GenericClient, table: &'static str, n_rows: i64) {
    if n_rows < ANALYZE_AFTER_ROWS_MIN {
        return;
    }
    if let Err(e) = client.batch_execute(&format!("ANALYZE {table}")).await {
        tracing::warn!(error = %e, table, "could not refresh planner statistics");
    }
}

fn pool_err(error: deadpool_postgres::PoolError) -> StoreError {
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
    async fn migrate(&self) -> StoreResult<()> {
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

    async fn client(&self) -> StoreResult<deadpool_postgres::Object> {
        self.pool.get().await.map_err(pool_err)
    }

    /// The first column of every row, as strings.
    async fn query_strings(
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
    async fn merchant_page(
        &self,
        table: &str,
        columns: &str,
        merchant_id: i64,
        page: Page,
    ) -> StoreResult<(Vec<Row>, i64)> {
        let client = self.client().await?;
        let total: i64 = client
            .query_one(
                &format!("SELECT count(*) FROM {table} WHERE merchant_id = $1"),
                &[&merchant_id],
            )
            .await
            .map_err(map_err)?
            .get(0);
        let rows = client
            .query(
                &format!("SELECT {columns} FROM {table} WHERE merchant_id = $1 ORDER BY id DESC LIMIT $2 OFFSET $3"),
                &[&merchant_id, &page.page_size, &page.offset()],
            )
            .await
            .map_err(map_err)?;
        Ok((rows, total))
    }

    /// Runs a query whose statement each connection prepares once; for the
    /// hot paths (a pickup makes several reads per request).
    async fn query_cached(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> StoreResult<Vec<Row>> {
        let client = self.client().await?;
        let statement = client.prepare_cached(sql).await.map_err(map_err)?;
        client.query(&statement, params).await.map_err(map_err)
    }
}

type Params = Vec<Box<dyn ToSql + Sync + Send>>;

fn refs(params: &Params) -> Vec<&(dyn ToSql + Sync)> {
    params
        .iter()
        .map(|p| p.as_ref() as &(dyn ToSql + Sync))
        .collect()
}

fn parse_or<T>(value: Option<T>, what: &str) -> StoreResult<T> {
    value.ok_or_else(|| StoreError::Backend(format!("unknown {what} in database")))
}

// ---- row mapping ---------------------------------------------------------

const MERCHANT_COLUMNS: &str = "id, name, key_version, created_at";

fn merchant_from_row(row: &Row) -> Merchant {
    Merchant {
        id: row.get(0),
        name: row.get(1),
        key_version: row.get(2),
        created_at: row.get(3),
    }
}

const ROLE_COLUMNS: &str = "id, merchant_id, name, label, permissions";

fn role_from_row(row: &Row) -> Role {
    Role {
        id: row.get(0),
        merchant_id: row.get(1),
        name: row.get(2),
        label: row.get(3),
        permissions: Permission::decode_set(row.get(4)),
    }
}

const STAFF_COLUMNS: &str =
    "id, merchant_id, username, name, phone, role_id, password_hash, failed_logins, locked_until, disabled, created_at";

fn staff_from_row(row: &Row) -> Staff {
    Staff {
        id: row.get(0),
        merchant_id: row.get(1),
        username: row.get(2),
        name: row.get(3),
        phone: row.get(4),
        role_id: row.get(5),
        password_hash: row.get(6),
        failed_logins: row.get(7),
        locked_until: row.get(8),
        disabled: row.get(9),
        created_at: row.get(10),
    }
}

const BATCH_COLUMNS: &str = "id, merchant_id, name, source, prefix, number_length, numbering, start_number, \
    password_length, password_charset, quantity, face_value_fen, valid_from, valid_until, remark, state, \
    serial_first, error, created_by, created_at, completed_at";

fn batch_from_row(row: &Row) -> StoreResult<Batch> {
    Ok(Batch {
        id: row.get(0),
        merchant_id: row.get(1),
        name: row.get(2),
        source: parse_or(BatchSource::parse(row.get(3)), "batch source")?,
        prefix: row.get(4),
        number_length: row.get(5),
        numbering: parse_or(Numbering::parse(row.get(6)), "numbering")?,
        start_number: row.get(7),
        password_length: row.get(8),
        password_charset: parse_or(PasswordCharset::parse(row.get(9)), "password charset")?,
        quantity: row.get(10),
        face_value_fen: row.get(11),
        valid_from: row.get(12),
        valid_until: row.get(13),
        remark: row.get(14),
        state: parse_or(BatchState::parse(row.get(15)), "batch state")?,
        serial_first: row.get(16),
        error: row.get(17),
        created_by: row.get(18),
        created_at: row.get(19),
        completed_at: row.get(20),
    })
}

const CARD_COLUMNS: &str = "cards.id, cards.merchant_id, cards.batch_id, cards.serial, cards.number, cards.state, \
    cards.face_value_fen, cards.valid_from, cards.valid_until, cards.remark, cards.distributor_id, distributors.name, \
    cards.activated_at, cards.used_at, cards.voided_at, cards.created_at";
const CARD_FROM: &str = "cards LEFT JOIN distributors ON distributors.id = cards.distributor_id";

fn card_from_row(row: &Row) -> StoreResult<Card> {
    Ok(Card {
        id: row.get(0),
        merchant_id: row.get(1),
        batch_id: row.get(2),
        serial: row.get(3),
        number: row.get(4),
        state: parse_or(CardState::parse(row.get(5)), "card state")?,
        face_value_fen: row.get(6),
        valid_from: row.get(7),
        valid_until: row.get(8),
        remark: row.get(9),
        distributor_id: row.get(10),
        distributor_name: row.get(11),
        activated_at: row.get(12),
        used_at: row.get(13),
        voided_at: row.get(14),
        created_at: row.get(15),
    })
}

const GOODS_COLUMNS: &str =
    "goods.id, goods.merchant_id, goods.name, goods.description, goods.sku, goods.erp_code, goods.attributes, goods.on_shelf, goods.created_at, goods.updated_at";

fn goods_from_row(row: &Row) -> Goods {
    Goods {
        id: row.get(0),
        merchant_id: row.get(1),
        name: row.get(2),
        description: row.get(3),
        sku: row.get(4),
        erp_code: row.get(5),
        attributes: row.get(6),
        on_shelf: row.get(7),
        image_ids: Vec::new(),
        created_at: row.get(8),
        updated_at: row.get(9),
    }
}

/// Runs a goods query and fills in each goods' image ids, in upload order.
async fn query_goods(
    client: &impl GenericClient,
    merchant_id: i64,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> StoreResult<Vec<Goods>> {
    let statement = client.prepare_cached(sql).await.map_err(map_err)?;
    let rows = client.query(&statement, params).await.map_err(map_err)?;
    let mut goods: Vec<Goods> = rows.iter().map(goods_from_row).collect();
    if goods.is_empty() {
        return Ok(goods);
    }
    let images_sql = "SELECT goods_id, id FROM goods_images WHERE merchant_id = $1 ORDER BY id";
    let images_statement = client.prepare_cached(images_sql).await.map_err(map_err)?;
    let images = client
        .query(&images_statement, &[&merchant_id])
        .await
        .map_err(map_err)?;
    for image in images {
        let goods_id: i64 = image.get(0);
        if let Some(g) = goods.iter_mut().find(|g| g.id == goods_id) {
            g.image_ids.push(image.get(1));
        }
    }
    Ok(goods)
}

const ORDER_COLUMNS: &str = "id, merchant_id, card_id, card_number, batch_id, goods_id, goods_name, channel, status, \
    consignee, phone, province, city, district, address, appointment_date, carrier, tracking_number, shipped_at, \
    created_by, created_at, cancelled_at";

fn order_from_row(row: &Row) -> StoreResult<Order> {
    Ok(Order {
        id: row.get(0),
        merchant_id: row.get(1),
        card_id: row.get(2),
        card_number: row.get(3),
        batch_id: row.get(4),
        goods_id: row.get(5),
        goods_name: row.get(6),
        channel: parse_or(Channel::parse(row.get(7)), "channel")?,
        status: parse_or(OrderStatus::parse(row.get(8)), "order status")?,
        consignee: Consignee {
            name: row.get(9),
            phone: row.get(10),
            province: row.get(11),
            city: row.get(12),
            district: row.get(13),
            address: row.get(14),
        },
        appointment_date: row.get(15),
        carrier: row.get(16),
        tracking_number: row.get(17),
        shipped_at: row.get(18),
        created_by: row.get(19),
        created_at: row.get(20),
        cancelled_at: row.get(21),
    })
}

fn order_filter_sql(merchant_id: i64, filter: &OrderFilter, params: &mut Params) -> String {
    let mut sql = String::new();
    let mut push = |params: &mut Params, clause: &str, value: Box<dyn ToSql + Sync + Send>| {
        params.push(value);
        sql.push_str(&clause.replace('?', &format!("${}", params.len())));
    };
    push(params, "merchant_id = ?", Box::new(merchant_id));
    if let Some(v) = filter.status {
        push(params, " AND status = ?", Box::new(v.code()));
    }
    if let Some(v) = &filter.appointment_from {
        push(params, " AND appointment_date >= ?", Box::new(v.clone()));
    }
    if let Some(v) = &filter.appointment_until {
        push(params, " AND appointment_date <= ?", Box::new(v.clone()));
    }
    if let Some(v) = filter.shipped_from {
        push(params, " AND shipped_at >= ?", Box::new(v));
    }
    if let Some(v) = filter.shipped_until {
        push(params, " AND shipped_at <= ?", Box::new(v));
    }
    if let Some(v) = filter.created_from {
        push(params, " AND created_at >= ?", Box::new(v));
    }
    if let Some(v) = filter.created_until {
        push(params, " AND created_at <= ?", Box::new(v));
    }
    if let Some(v) = filter.batch_id {
        push(params, " AND batch_id = ?", Box::new(v));
    }
    if let Some(v) = filter.goods_id {
        push(params, " AND goods_id = ?", Box::new(v));
    }
    if let Some(v) = filter.channel {
        push(params, " AND channel = ?", Box::new(v.code()));
    }
    if let Some(v) = &filter.card_number {
        push(
            params,
            " AND card_number = ?",
            Box::new(v.trim().to_ascii_uppercase()),
        );
    }
    if let Some(v) = &filter.phone {
        push(params, " AND phone = ?", Box::new(v.trim().to_owned()));
    }
    sql
}

const AUDIT_COLUMNS: &str =
    "id, merchant_id, actor_staff_id, actor, action, target, detail, n_affected, created_at";

fn audit_from_row(row: &Row) -> AuditRecord {
    AuditRecord {
        id: row.get(0),
        entry: AuditEntry {
            merchant_id: row.get(1),
            actor: Actor {
                staff_id: row.get(2),
                label: row.get(3),
            },
            action: row.get(4),
            target: row.get(5),
            detail: row.get(6),
            n_affected: row.get(7),
            created_at: row.get(8),
        },
    }
}

/// `WHERE` conditions for a card filter; placeholders continue after the
/// `params` already bound.
fn card_filter_sql(merchant_id: i64, filter: &CardFilter, params: &mut Params) -> String {
    let bind = |params: &mut Params, value: Box<dyn ToSql + Sync + Send>| {
        params.push(value);
        format!("${}", params.len())
    };
    let mut sql = format!(
        "cards.merchant_id = {}",
        bind(params, Box::new(merchant_id))
    );
    if let Some(v) = filter.batch_id {
        sql.push_str(&format!(
            " AND cards.batch_id = {}",
            bind(params, Box::new(v))
        ));
    }
    if let Some(v) = filter.state {
        sql.push_str(&format!(
            " AND cards.state = {}",
            bind(params, Box::new(v.code()))
        ));
    }
    match filter.activated {
        Some(true) => sql.push_str(" AND cards.state IN ('active', 'used')"),
        Some(false) => sql.push_str(" AND cards.state NOT IN ('active', 'used')"),
        None => {}
    }
    match filter.used {
        Some(true) => sql.push_str(" AND cards.state = 'used'"),
        Some(false) => sql.push_str(" AND cards.state <> 'used'"),
        None => {}
    }
    match filter.distributor_id {
        Some(0) => sql.push_str(" AND cards.distributor_id IS NULL"),
        Some(v) => sql.push_str(&format!(
            " AND cards.distributor_id = {}",
            bind(params, Box::new(v))
        )),
        None => {}
    }
    if let Some(v) = filter.serial_from {
        sql.push_str(&format!(
            " AND cards.serial >= {}",
            bind(params, Box::new(v))
        ));
    }
    if let Some(v) = filter.serial_to {
        sql.push_str(&format!(
            " AND cards.serial <= {}",
            bind(params, Box::new(v))
        ));
    }
    if let Some(needle) = filter.number_needle() {
        sql.push_str(&format!(
            " AND strpos(cards.number, {}) > 0",
            bind(params, Box::new(needle))
        ));
    }
    sql
}

fn state_list(states: &[CardState]) -> String {
    states
        .iter()
        .map(|s| format!("'{}'", s.code()))
        .collect::<Vec<_>>()
        .join(", ")
}

async fn insert_audit(
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

fn expect_one(n: u64) -> StoreResult<()> {
    if n == 1 {
        Ok(())
    } else {
        Err(StoreError::NotFound)
    }
}

#[async_trait::async_trait]
impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn create_merchant(&self, name: &str, now: i64) -> StoreResult<Merchant> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let row = tx
            .query_one(&format!("INSERT INTO merchants (name, created_at) VALUES ($1, $2) RETURNING {MERCHANT_COLUMNS}"), &[&name, &now])
            .await
            .map_err(map_err)?;
        let merchant = merchant_from_row(&row);
        for (role_name, label, permissions) in builtin_roles() {
            tx.execute(
                "INSERT INTO roles (merchant_id, name, label, permissions) VALUES ($1, $2, $3, $4)",
                &[
                    &merchant.id,
                    &role_name,
                    &label,
                    &Permission::encode_set(&permissions),
                ],
            )
            .await
            .map_err(map_err)?;
        }
        for kind in kaquan_core::ledger::AccountKind::MERCHANT_SIDE {
            tx.execute(
                "INSERT INTO ledger_accounts (merchant_id, kind, asset) VALUES ($1, $2, $3)",
                &[&merchant.id, &kind.code(), &kaquan_core::ledger::ASSET_FEN],
            )
            .await
            .map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)?;
        Ok(merchant)
    }

    async fn list_merchants(&self) -> StoreResult<Vec<Merchant>> {
        let rows = self
            .client()
            .await?
            .query(
                &format!("SELECT {MERCHANT_COLUMNS} FROM merchants ORDER BY id"),
                &[],
            )
            .await
            .map_err(map_err)?;
        Ok(rows.iter().map(merchant_from_row).collect())
    }

    async fn get_merchant(&self, merchant_id: i64) -> StoreResult<Merchant> {
        let rows = self
            .query_cached(
                &format!("SELECT {MERCHANT_COLUMNS} FROM merchants WHERE id = $1"),
                &[&merchant_id],
            )
            .await?;
        rows.first()
            .map(merchant_from_row)
            .ok_or(StoreError::NotFound)
    }

    async fn list_roles(&self, merchant_id: i64) -> StoreResult<Vec<Role>> {
        let rows = self
            .client()
            .await?
            .query(
                &format!("SELECT {ROLE_COLUMNS} FROM roles WHERE merchant_id = $1 ORDER BY id"),
                &[&merchant_id],
            )
            .await
            .map_err(map_err)?;
        Ok(rows.iter().map(role_from_row).collect())
    }

    async fn create_role(
        &self,
        merchant_id: i64,
        name: &str,
        label: &str,
        permissions: &[Permission],
    ) -> StoreResult<Role> {
        let row = self
            .client()
            .await?
            .query_one(
                &format!("INSERT INTO roles (merchant_id, name, label, permissions) VALUES ($1, $2, $3, $4) RETURNING {ROLE_COLUMNS}"),
                &[&merchant_id, &name, &label, &Permission::encode_set(permissions)],
            )
            .await
            .map_err(map_err)?;
        Ok(role_from_row(&row))
    }

    async fn update_role(
        &self,
        merchant_id: i64,
        role_id: i64,
        label: &str,
        permissions: &[Permission],
    ) -> StoreResult<()> {
        let n = self
            .client()
            .await?
            .execute(
                "UPDATE roles SET label = $1, permissions = $2 WHERE id = $3 AND merchant_id = $4",
                &[
                    &label,
                    &Permission::encode_set(permissions),
                    &role_id,
                    &merchant_id,
                ],
            )
            .await
            .map_err(map_err)?;
        expect_one(n)
    }

    async fn create_staff(&self, s: &NewStaff, now: i64) -> StoreResult<Staff> {
        let row = self
            .client()
            .await?
            .query_opt(
                &format!(
                    "INSERT INTO staff (merchant_id, username, name, phone, role_id, password_hash, created_at) \
                     SELECT $1, $2, $3, $4, id, $6, $7 FROM roles WHERE id = $5 AND merchant_id = $1 \
                     RETURNING {STAFF_COLUMNS}"
                ),
                &[&s.merchant_id, &s.username, &s.name, &s.phone, &s.role_id, &s.password_hash, &now],
            )
            .await
            .map_err(map_err)?;
        row.as_ref().map(staff_from_row).ok_or(StoreError::NotFound)
    }

    async fn update_staff(
        &self,
        merchant_id: i64,
        staff_id: i64,
        u: &StaffUpdate,
    ) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        if let Some(role_id) = u.role_id {
            let n: i64 = tx
                .query_one(
                    "SELECT count(*) FROM roles WHERE id = $1 AND merchant_id = $2",
                    &[&role_id, &merchant_id],
                )
                .await
                .map_err(map_err)?
                .get(0);
            if n != 1 {
                return Err(StoreError::NotFound);
            }
        }
        let n = tx
            .execute(
                "UPDATE staff SET name = COALESCE($1, name), phone = COALESCE($2, phone), role_id = COALESCE($3, role_id), \
                 password_hash = COALESCE($4, password_hash), disabled = COALESCE($5, disabled), \
                 failed_logins = CASE WHEN $4::text IS NULL THEN failed_logins ELSE 0 END, \
                 locked_until = CASE WHEN $4::text IS NULL THEN locked_until ELSE NULL END \
                 WHERE id = $6 AND merchant_id = $7",
                &[&u.name, &u.phone, &u.role_id, &u.password_hash, &u.disabled, &staff_id, &merchant_id],
            )
            .await
            .map_err(map_err)?;
        expect_one(n)?;
        if u.disabled == Some(true) || u.password_hash.is_some() {
            tx.execute("DELETE FROM sessions WHERE staff_id = $1", &[&staff_id])
                .await
                .map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)
    }

    async fn list_staff(&self, merchant_id: i64) -> StoreResult<Vec<Staff>> {
        let rows = self
            .client()
            .await?
            .query(
                &format!("SELECT {STAFF_COLUMNS} FROM staff WHERE merchant_id = $1 ORDER BY id"),
                &[&merchant_id],
            )
            .await
            .map_err(map_err)?;
        Ok(rows.iter().map(staff_from_row).collect())
    }

    async fn get_staff(&self, staff_id: i64) -> StoreResult<Staff> {
        let row = self
            .client()
            .await?
            .query_opt(
                &format!("SELECT {STAFF_COLUMNS} FROM staff WHERE id = $1"),
                &[&staff_id],
            )
            .await
            .map_err(map_err)?;
        row.as_ref().map(staff_from_row).ok_or(StoreError::NotFound)
    }

    async fn find_staff_by_username(&self, username: &str) -> StoreResult<Option<Staff>> {
        let row = self
            .client()
            .await?
            .query_opt(
                &format!("SELECT {STAFF_COLUMNS} FROM staff WHERE username = $1"),
                &[&username],
            )
            .await
            .map_err(map_err)?;
        Ok(row.as_ref().map(staff_from_row))
    }

    async fn record_login(
        &self,
        staff_id: i64,
        success: bool,
        locked_until: Option<i64>,
    ) -> StoreResult<i64> {
        let client = self.client().await?;
        let row = if success {
            client
                .query_opt("UPDATE staff SET failed_logins = 0, locked_until = NULL WHERE id = $1 RETURNING failed_logins", &[&staff_id])
                .await
        } else {
            client
                .query_opt(
                    "UPDATE staff SET failed_logins = failed_logins + 1, locked_until = COALESCE($2, locked_until) \
                     WHERE id = $1 RETURNING failed_logins",
                    &[&staff_id, &locked_until],
                )
                .await
        }
        .map_err(map_err)?;
        row.map(|r| r.get(0)).ok_or(StoreError::NotFound)
    }

    async fn create_session(&self, s: &Session) -> StoreResult<()> {
        let client = self.client().await?;
        client
            .execute(
                "DELETE FROM sessions WHERE expires_at < $1",
                &[&(s.expires_at - 86_400 * 30)],
            )
            .await
            .map_err(map_err)?;
        client
            .execute(
                "INSERT INTO sessions (token_hash, staff_id, merchant_id, csrf_token, expires_at) VALUES ($1, $2, $3, $4, $5)",
                &[&s.token_hash, &s.staff_id, &s.merchant_id, &s.csrf_token, &s.expires_at],
            )
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn find_session(&self, token_hash: &str, now: i64) -> StoreResult<Option<Session>> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT token_hash, staff_id, merchant_id, csrf_token, expires_at FROM sessions WHERE token_hash = $1 AND expires_at > $2",
                &[&token_hash, &now],
            )
            .await
            .map_err(map_err)?;
        Ok(row.map(|r| Session {
            token_hash: r.get(0),
            staff_id: r.get(1),
            merchant_id: r.get(2),
            csrf_token: r.get(3),
            expires_at: r.get(4),
        }))
    }

    async fn delete_session(&self, token_hash: &str) -> StoreResult<()> {
        self.client()
            .await?
            .execute("DELETE FROM sessions WHERE token_hash = $1", &[&token_hash])
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn create_distributor(
        &self,
        merchant_id: i64,
        f: &DistributorFields,
    ) -> StoreResult<Distributor> {
        let row = self
            .client()
            .await?
            .query_one(
                "INSERT INTO distributors (merchant_id, name, contact, phone, remark) VALUES ($1, $2, $3, $4, $5) RETURNING id",
                &[&merchant_id, &f.name, &f.contact, &f.phone, &f.remark],
            )
            .await
            .map_err(map_err)?;
        Ok(Distributor {
            id: row.get(0),
            merchant_id,
            name: f.name.clone(),
            contact: f.contact.clone(),
            phone: f.phone.clone(),
            remark: f.remark.clone(),
            n_cards: 0,
        })
    }

    async fn update_distributor(
        &self,
        merchant_id: i64,
        distributor_id: i64,
        f: &DistributorFields,
    ) -> StoreResult<()> {
        let n = self
            .client()
            .await?
            .execute(
                "UPDATE distributors SET name = $1, contact = $2, phone = $3, remark = $4 WHERE id = $5 AND merchant_id = $6",
                &[&f.name, &f.contact, &f.phone, &f.remark, &distributor_id, &merchant_id],
            )
            .await
            .map_err(map_err)?;
        expect_one(n)
    }

    async fn list_distributors(&self, merchant_id: i64) -> StoreResult<Vec<Distributor>> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT d.id, d.merchant_id, d.name, d.contact, d.phone, d.remark, \
                 (SELECT count(*) FROM cards WHERE cards.distributor_id = d.id) \
                 FROM distributors d WHERE d.merchant_id = $1 ORDER BY d.id",
                &[&merchant_id],
            )
            .await
            .map_err(map_err)?;
        Ok(rows
            .iter()
            .map(|r| Distributor {
                id: r.get(0),
                merchant_id: r.get(1),
                name: r.get(2),
                contact: r.get(3),
                phone: r.get(4),
                remark: r.get(5),
                n_cards: r.get(6),
            })
            .collect())
    }

    async fn create_batch(&self, b: &NewBatch) -> StoreResult<Batch> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let serial_first: i64 = tx
            .query_opt(
                "UPDATE merchants SET next_serial = next_serial + $1 WHERE id = $2 RETURNING next_serial - $1",
                &[&b.quantity, &b.merchant_id],
            )
            .await
            .map_err(map_err)?
            .ok_or(StoreError::NotFound)?
            .get(0);
        let row = tx
            .query_one(
                &format!(
                    "INSERT INTO batches (merchant_id, name, source, prefix, number_length, numbering, start_number, \
                     password_length, password_charset, quantity, face_value_fen, valid_from, valid_until, remark, state, \
                     serial_first, created_by, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, 'generating', $15, $16, $17) \
                     RETURNING {BATCH_COLUMNS}"
                ),
                &[
                    &b.merchant_id,
                    &b.name,
                    &b.source.code(),
                    &b.prefix,
                    &b.number_length,
                    &b.numbering.code(),
                    &b.start_number,
                    &b.password_length,
                    &b.password_charset.code(),
                    &b.quantity,
                    &b.face_value_fen,
                    &b.valid_from,
                    &b.valid_until,
                    &b.remark,
                    &serial_first,
                    &b.created_by,
                    &b.created_at,
                ],
            )
            .await
            .map_err(map_err)?;
        let batch = batch_from_row(&row)?;
        tx.commit().await.map_err(map_err)?;
        Ok(batch)
    }

    async fn fill_batch(
        &self,
        merchant_id: i64,
        batch_id: i64,
        source: Box<dyn CardSource>,
        audit: &AuditEntry,
        after: &AfterFill,
        now: i64,
    ) -> StoreResult<i64> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let row = tx
            .query_opt(
                "SELECT b.face_value_fen, b.valid_from, b.valid_until, b.remark, m.key_version \
                 FROM batches b JOIN merchants m ON m.id = b.merchant_id \
                 WHERE b.id = $1 AND b.merchant_id = $2 AND b.state = 'generating' FOR UPDATE OF b",
                &[&batch_id, &merchant_id],
            )
            .await
            .map_err(map_err)?
            .ok_or(StoreError::NotFound)?;
        let (face_value_fen, valid_from, valid_until, remark, key_version): (
            Option<i64>,
            Option<i64>,
            Option<i64>,
            String,
            i32,
        ) = (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
        let sink = tx
            .copy_in(
                "COPY cards (merchant_id, batch_id, serial, number, secret_digest, secret_sealed, key_version, state, \
                 face_value_fen, valid_from, valid_until, remark, created_at) FROM STDIN BINARY",
            )
            .await
            .map_err(map_err)?;
        let types = [
            Type::INT8,
            Type::INT8,
            Type::INT8,
            Type::TEXT,
            Type::BYTEA,
            Type::BYTEA,
            Type::INT4,
            Type::TEXT,
            Type::INT8,
            Type::INT8,
            Type::INT8,
            Type::TEXT,
            Type::INT8,
        ];
        let writer = BinaryCopyInWriter::new(sink, &types);
        pin_mut!(writer);
        let mut source = source;
        let mut n_cards = 0i64;
        let state = CardState::Inactive.code();
        loop {
            // The source blocks while the generator thread computes; keep that off the async workers.
            let (returned, chunk) = tokio::task::spawn_blocking(move || {
                let chunk = source.next_chunk();
                (source, chunk)
            })
            .await
            .map_err(|e| StoreError::Backend(format!("card source failed: {e}")))?;
            source = returned;
            if chunk.is_empty() {
                break;
            }
            for card in &chunk {
                let digest: &[u8] = &card.secret_digest;
                writer
                    .as_mut()
                    .write(&[
                        &merchant_id,
                        &batch_id,
                        &card.serial,
                        &card.number,
                        &digest,
                        &card.secret_sealed,
                        &key_version,
                        &state,
                        &face_value_fen,
                        &valid_from,
                        &valid_until,
                        &remark,
                        &now,
                    ])
                    .await
                    .map_err(map_err)?;
            }
            n_cards += chunk.len() as i64;
        }
        writer.finish().await.map_err(map_err)?;
        let n = tx
            .execute("UPDATE batches SET state = 'ready', completed_at = $1 WHERE id = $2 AND state = 'generating'", &[&now, &batch_id])
            .await
            .map_err(map_err)?;
        expect_one(n)?;
        insert_audit(&tx, audit, n_cards).await?;
        if !after.goods_ids.is_empty() {
            let owned: i64 = tx
                .query_one(
                    "SELECT count(*) FROM goods WHERE merchant_id = $1 AND id = ANY($2)",
                    &[&merchant_id, &after.goods_ids],
                )
                .await
                .map_err(map_err)?
                .get(0);
            if owned as usize != after.goods_ids.len() {
                return Err(StoreError::NotFound);
            }
            tx.execute(
                "INSERT INTO card_goods (card_id, goods_id) SELECT cards.id, g FROM cards, unnest($1::bigint[]) AS g \
                 WHERE cards.batch_id = $2 ON CONFLICT DO NOTHING",
                &[&after.goods_ids, &batch_id],
            )
            .await
            .map_err(map_err)?;
            let link = AuditEntry {
                action: "link_goods".into(),
                detail: format!("goods={:?}", after.goods_ids),
                ..audit.clone()
            };
            insert_audit(&tx, &link, n_cards).await?;
        }
        if after.activate {
            tx.execute("UPDATE cards SET state = 'active', activated_at = $1 WHERE batch_id = $2 AND state = 'inactive'", &[&now, &batch_id])
                .await
                .map_err(map_err)?;
            let activation = AuditEntry {
                action: "activate_cards".into(),
                detail: "生成后立即激活".into(),
                ..audit.clone()
            };
            insert_audit(&tx, &activation, n_cards).await?;
        }
        tx.commit().await.map_err(map_err)?;
        refresh_statistics(&client, "cards", n_cards).await;
        Ok(n_cards)
    }

    async fn fail_batch(&self, batch_id: i64, error: &str) -> StoreResult<()> {
        self.client()
            .await?
            .execute("UPDATE batches SET state = 'failed', error = $1 WHERE id = $2 AND state = 'generating'", &[&error, &batch_id])
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn fail_interrupted_batches(&self) -> StoreResult<u64> {
        // A live fill holds its batch row locked (FOR UPDATE) until it commits;
        // a killed client's transaction is aborted by the server moments after
        // its socket closes. So wait a little for the lock: a batch that is
        // still locked after that is being filled by a live node and is left
        // alone; one whose lock went away with its dead client is failed.
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        tx.batch_execute(&format!(
            "SET LOCAL lock_timeout = '{INTERRUPTED_BATCH_LOCK_WAIT_MS}ms'"
        ))
        .await
        .map_err(map_err)?;
        let result = tx
            .execute(
                "UPDATE batches SET state = 'failed', error = '生成被中断（进程退出）' WHERE state = 'generating'",
                &[],
            )
            .await;
        match result {
            Ok(n) => {
                tx.commit().await.map_err(map_err)?;
                Ok(n)
            }
            Err(e) if e.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) => Ok(0),
            Err(e) => Err(map_err(e)),
        }
    }

    async fn get_batch(&self, merchant_id: i64, batch_id: i64) -> StoreResult<Batch> {
        let row = self
            .client()
            .await?
            .query_opt(
                &format!("SELECT {BATCH_COLUMNS} FROM batches WHERE id = $1 AND merchant_id = $2"),
                &[&batch_id, &merchant_id],
            )
            .await
            .map_err(map_err)?;
        batch_from_row(&row.ok_or(StoreError::NotFound)?)
    }

    async fn list_batches(&self, merchant_id: i64, page: Page) -> StoreResult<(Vec<Batch>, i64)> {
        let (rows, total) = self
            .merchant_page("batches", BATCH_COLUMNS, merchant_id, page)
            .await?;
        Ok((
            rows.iter()
                .map(batch_from_row)
                .collect::<StoreResult<_>>()?,
            total,
        ))
    }

    async fn numbers_with_prefix(
        &self,
        merchant_id: i64,
        prefix: &str,
    ) -> StoreResult<Vec<String>> {
        self.query_strings(
            "SELECT number FROM cards WHERE merchant_id = $1 AND left(number, length($2)) = $2",
            &[&merchant_id, &prefix],
        )
        .await
    }

    async fn find_taken_numbers(
        &self,
        merchant_id: i64,
        numbers: &[String],
    ) -> StoreResult<Vec<String>> {
        self.query_strings(
            "SELECT number FROM cards WHERE merchant_id = $1 AND number = ANY($2)",
            &[&merchant_id, &numbers],
        )
        .await
    }

    async fn list_cards(
        &self,
        merchant_id: i64,
        filter: &CardFilter,
        page: Page,
    ) -> StoreResult<Vec<Card>> {
        let mut params: Params = Vec::new();
        let condition = card_filter_sql(merchant_id, filter, &mut params);
        let n = params.len();
        params.push(Box::new(page.page_size));
        params.push(Box::new(page.offset()));
        let rows = self
            .client()
            .await?
            .query(
                &format!("SELECT {CARD_COLUMNS} FROM {CARD_FROM} WHERE {condition} ORDER BY cards.serial LIMIT ${} OFFSET ${}", n + 1, n + 2),
                &refs(&params),
            )
            .await
            .map_err(map_err)?;
        rows.iter().map(card_from_row).collect()
    }

    async fn count_cards(&self, merchant_id: i64, filter: &CardFilter) -> StoreResult<i64> {
        let mut params: Params = Vec::new();
        let condition = card_filter_sql(merchant_id, filter, &mut params);
        let row = self
            .client()
            .await?
            .query_one(
                &format!("SELECT count(*) FROM cards WHERE {condition}"),
                &refs(&params),
            )
            .await
            .map_err(map_err)?;
        Ok(row.get(0))
    }

    async fn cards_after(
        &self,
        merchant_id: i64,
        filter: &CardFilter,
        after_serial: i64,
        limit: i64,
    ) -> StoreResult<Vec<CardWithSecret>> {
        let mut params: Params = Vec::new();
        let condition = card_filter_sql(merchant_id, filter, &mut params);
        let n = params.len();
        params.push(Box::new(after_serial));
        params.push(Box::new(limit));
        let rows = self
            .client()
            .await?
            .query(
                &format!(
                    "SELECT {CARD_COLUMNS}, cards.secret_sealed, cards.key_version FROM {CARD_FROM} \
                     WHERE {condition} AND cards.serial > ${} ORDER BY cards.serial LIMIT ${}",
                    n + 1,
                    n + 2
                ),
                &refs(&params),
            )
            .await
            .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                Ok(CardWithSecret {
                    card: card_from_row(r)?,
                    secret_sealed: r.get(16),
                    key_version: r.get(17),
                })
            })
            .collect()
    }

    async fn get_card_by_number(
        &self,
        merchant_id: i64,
        number: &str,
    ) -> StoreResult<Option<Card>> {
        let row = self
            .client()
            .await?
            .query_opt(
                &format!("SELECT {CARD_COLUMNS} FROM {CARD_FROM} WHERE cards.merchant_id = $1 AND cards.number = $2"),
                &[&merchant_id, &number],
            )
            .await
            .map_err(map_err)?;
        row.as_ref().map(card_from_row).transpose()
    }

    async fn apply_card_op(
        &self,
        merchant_id: i64,
        filter: &CardFilter,
        op: CardOp,
        audit: &AuditEntry,
    ) -> StoreResult<i64> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let mut params: Params = Vec::new();
        let n = match op.to_state() {
            Some(to) => {
                let set = match op {
                    CardOp::Activate => {
                        params.push(Box::new(audit.created_at));
                        "activated_at = $1"
                    }
                    CardOp::Deactivate => "activated_at = NULL",
                    CardOp::Void => {
                        params.push(Box::new(audit.created_at));
                        "voided_at = $1"
                    }
                    CardOp::Restore => "voided_at = NULL, activated_at = NULL",
                    CardOp::Delete => unreachable!("delete has no target state"),
                };
                let condition = card_filter_sql(merchant_id, filter, &mut params);
                let guard = format!(
                    "{condition} AND cards.state IN ({})",
                    state_list(op.from_states())
                );
                let n = tx
                    .execute(
                        &format!(
                            "UPDATE cards SET state = '{}', {set} WHERE {guard}",
                            to.code()
                        ),
                        &refs(&params),
                    )
                    .await
                    .map_err(map_err)? as i64;
                insert_audit(&tx, audit, n).await?;
                n
            }
            None => {
                let audit_id = insert_audit(&tx, audit, 0).await?;
                params.push(Box::new(audit_id));
                let condition = card_filter_sql(merchant_id, filter, &mut params);
                let guard = format!(
                    "{condition} AND cards.state IN ({})",
                    state_list(op.from_states())
                );
                let row = tx
                    .query_one(
                        &format!(
                            "WITH gone AS (DELETE FROM cards WHERE {guard} RETURNING merchant_id, batch_id, serial, number), \
                             kept AS (INSERT INTO deleted_cards (audit_id, merchant_id, batch_id, serial, number) \
                                      SELECT $1, merchant_id, batch_id, serial, number FROM gone RETURNING 1) \
                             SELECT count(*) FROM kept"
                        ),
                        &refs(&params),
                    )
                    .await
                    .map_err(map_err)?;
                let n: i64 = row.get(0);
                tx.execute(
                    "UPDATE audit_log SET n_affected = $1 WHERE id = $2",
                    &[&n, &audit_id],
                )
                .await
                .map_err(map_err)?;
                n
            }
        };
        tx.commit().await.map_err(map_err)?;
        Ok(n)
    }

    async fn edit_cards(
        &self,
        merchant_id: i64,
        filter: &CardFilter,
        edit: &CardEdit,
        audit: &AuditEntry,
    ) -> StoreResult<i64> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        if let Some(Some(distributor_id)) = edit.distributor_id {
            let n: i64 = tx
                .query_one(
                    "SELECT count(*) FROM distributors WHERE id = $1 AND merchant_id = $2",
                    &[&distributor_id, &merchant_id],
                )
                .await
                .map_err(map_err)?
                .get(0);
            if n != 1 {
                return Err(StoreError::NotFound);
            }
        }
        let mut params: Params = Vec::new();
        let mut sets = Vec::new();
        let mut set = |params: &mut Params, column: &str, value: Box<dyn ToSql + Sync + Send>| {
            params.push(value);
            sets.push(format!("{column} = ${}", params.len()));
        };
        if let Some(v) = edit.face_value_fen {
            set(&mut params, "face_value_fen", Box::new(v));
        }
        if let Some(v) = edit.valid_from {
            set(&mut params, "valid_from", Box::new(v));
        }
        if let Some(v) = edit.valid_until {
            set(&mut params, "valid_until", Box::new(v));
        }
        if let Some(v) = &edit.remark {
            set(&mut params, "remark", Box::new(v.clone()));
        }
        if let Some(v) = edit.distributor_id {
            set(&mut params, "distributor_id", Box::new(v));
        }
        if sets.is_empty() {
            return Err(StoreError::Invalid("no field chosen".into()));
        }
        let condition = card_filter_sql(merchant_id, filter, &mut params);
        let n = tx
            .execute(
                &format!("UPDATE cards SET {} WHERE {condition}", sets.join(", ")),
                &refs(&params),
            )
            .await
            .map_err(map_err)? as i64;
        insert_audit(&tx, audit, n).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(n)
    }

    async fn purge_card_secrets(
        &self,
        merchant_id: i64,
        filter: &CardFilter,
        audit: &AuditEntry,
    ) -> StoreResult<i64> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let mut params: Params = Vec::new();
        let condition = card_filter_sql(merchant_id, filter, &mut params);
        let n = tx
            .execute(
                &format!("UPDATE cards SET secret_sealed = NULL WHERE {condition} AND cards.secret_sealed IS NOT NULL"),
                &refs(&params),
            )
            .await
            .map_err(map_err)? as i64;
        insert_audit(&tx, audit, n).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(n)
    }

    async fn create_goods(
        &self,
        merchant_id: i64,
        f: &GoodsFields,
        now: i64,
    ) -> StoreResult<Goods> {
        let row = self
            .client()
            .await?
            .query_one(
                "INSERT INTO goods (merchant_id, name, description, sku, erp_code, attributes, on_shelf, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) RETURNING id",
                &[&merchant_id, &f.name, &f.description, &f.sku, &f.erp_code, &f.attributes, &f.on_shelf, &now],
            )
            .await
            .map_err(map_err)?;
        Ok(Goods {
            id: row.get(0),
            merchant_id,
            name: f.name.clone(),
            description: f.description.clone(),
            sku: f.sku.clone(),
            erp_code: f.erp_code.clone(),
            attributes: f.attributes.clone(),
            on_shelf: f.on_shelf,
            image_ids: Vec::new(),
            created_at: now,
            updated_at: now,
        })
    }

    async fn update_goods(
        &self,
        merchant_id: i64,
        goods_id: i64,
        f: &GoodsFields,
        now: i64,
    ) -> StoreResult<()> {
        let n = self
            .client()
            .await?
            .execute(
                "UPDATE goods SET name = $1, description = $2, sku = $3, erp_code = $4, attributes = $5, on_shelf = $6, \
                 updated_at = $7 WHERE id = $8 AND merchant_id = $9",
                &[&f.name, &f.description, &f.sku, &f.erp_code, &f.attributes, &f.on_shelf, &now, &goods_id, &merchant_id],
            )
            .await
            .map_err(map_err)?;
        expect_one(n)
    }

    async fn list_goods(&self, merchant_id: i64, on_shelf_only: bool) -> StoreResult<Vec<Goods>> {
        let client = self.client().await?;
        let shelf = if on_shelf_only {
            " AND goods.on_shelf"
        } else {
            ""
        };
        let sql = format!("SELECT {GOODS_COLUMNS} FROM goods WHERE goods.merchant_id = $1{shelf} ORDER BY goods.id");
        query_goods(&client, merchant_id, &sql, &[&merchant_id]).await
    }

    async fn get_goods(&self, merchant_id: i64, goods_id: i64) -> StoreResult<Goods> {
        let client = self.client().await?;
        let sql = format!(
            "SELECT {GOODS_COLUMNS} FROM goods WHERE goods.merchant_id = $1 AND goods.id = $2"
        );
        query_goods(&client, merchant_id, &sql, &[&merchant_id, &goods_id])
            .await?
            .pop()
            .ok_or(StoreError::NotFound)
    }

    async fn add_goods_image(
        &self,
        merchant_id: i64,
        goods_id: i64,
        content_type: &str,
        bytes: &[u8],
        now: i64,
    ) -> StoreResult<i64> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        // Locking the goods row serialises concurrent uploads, so the image limit holds.
        tx.query_opt(
            "SELECT id FROM goods WHERE id = $1 AND merchant_id = $2 FOR UPDATE",
            &[&goods_id, &merchant_id],
        )
        .await
        .map_err(map_err)?
        .ok_or(StoreError::NotFound)?;
        let n: i64 = tx
            .query_one(
                "SELECT count(*) FROM goods_images WHERE goods_id = $1",
                &[&goods_id],
            )
            .await
            .map_err(map_err)?
            .get(0);
        if n as usize >= GOODS_IMAGES_MAX {
            return Err(StoreError::Invalid("too many images".into()));
        }
        let row = tx
            .query_one(
                "INSERT INTO goods_images (merchant_id, goods_id, content_type, bytes, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
                &[&merchant_id, &goods_id, &content_type, &bytes, &now],
            )
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(row.get(0))
    }

    async fn delete_goods_image(
        &self,
        merchant_id: i64,
        goods_id: i64,
        image_id: i64,
    ) -> StoreResult<()> {
        let n = self
            .client()
            .await?
            .execute(
                "DELETE FROM goods_images WHERE id = $1 AND goods_id = $2 AND merchant_id = $3",
                &[&image_id, &goods_id, &merchant_id],
            )
            .await
            .map_err(map_err)?;
        expect_one(n)
    }

    async fn get_goods_image(
        &self,
        merchant_id: i64,
        image_id: i64,
    ) -> StoreResult<(String, Vec<u8>)> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT content_type, bytes FROM goods_images WHERE id = $1 AND merchant_id = $2",
                &[&image_id, &merchant_id],
            )
            .await
            .map_err(map_err)?
            .ok_or(StoreError::NotFound)?;
        Ok((row.get(0), row.get(1)))
    }

    async fn link_card_goods(
        &self,
        merchant_id: i64,
        filter: &CardFilter,
        goods_ids: &[i64],
        mode: GoodsLinkMode,
        audit: &AuditEntry,
    ) -> StoreResult<i64> {
        let mut goods_ids = goods_ids.to_vec();
        goods_ids.sort_unstable();
        goods_ids.dedup();
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let n: i64 = tx
            .query_one(
                "SELECT count(*) FROM goods WHERE merchant_id = $1 AND id = ANY($2)",
                &[&merchant_id, &goods_ids],
            )
            .await
            .map_err(map_err)?
            .get(0);
        if n as usize != goods_ids.len() {
            return Err(StoreError::NotFound);
        }
        let mut params: Params = Vec::new();
        let condition = card_filter_sql(merchant_id, filter, &mut params);
        let n_cards: i64 = tx
            .query_one(
                &format!("SELECT count(*) FROM cards WHERE {condition}"),
                &refs(&params),
            )
            .await
            .map_err(map_err)?
            .get(0);
        if mode == GoodsLinkMode::Replace {
            tx.execute(&format!("DELETE FROM card_goods WHERE card_id IN (SELECT cards.id FROM cards WHERE {condition})"), &refs(&params))
                .await
                .map_err(map_err)?;
        }
        let goods_placeholder = params.len() + 1;
        params.push(Box::new(goods_ids.clone()));
        tx.execute(
            &format!(
                "INSERT INTO card_goods (card_id, goods_id) SELECT cards.id, g FROM cards, unnest(${goods_placeholder}::bigint[]) AS g \
                 WHERE {condition} ON CONFLICT DO NOTHING"
            ),
            &refs(&params),
        )
        .await
        .map_err(map_err)?;
        params.pop();
        let overfull: i64 = tx
            .query_one(
                &format!(
                    "SELECT count(*) FROM (SELECT card_id FROM card_goods WHERE card_id IN \
                     (SELECT cards.id FROM cards WHERE {condition}) GROUP BY card_id HAVING count(*) > {GOODS_PER_CARD_MAX}) AS o"
                ),
                &refs(&params),
            )
            .await
            .map_err(map_err)?
            .get(0);
        if overfull > 0 {
            return Err(StoreError::Invalid(format!(
                "a card may be linked to at most {GOODS_PER_CARD_MAX} goods"
            )));
        }
        insert_audit(&tx, audit, n_cards).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(n_cards)
    }

    async fn goods_of_card(&self, merchant_id: i64, card_id: i64) -> StoreResult<Vec<Goods>> {
        let client = self.client().await?;
        let sql = format!(
            "SELECT {GOODS_COLUMNS} FROM goods JOIN card_goods ON card_goods.goods_id = goods.id \
             WHERE goods.merchant_id = $1 AND card_goods.card_id = $2 ORDER BY goods.id"
        );
        query_goods(&client, merchant_id, &sql, &[&merchant_id, &card_id]).await
    }

    async fn card_for_check(
        &self,
        merchant_id: i64,
        number: &str,
    ) -> StoreResult<Option<CardSecret>> {
        let number = number.trim().to_ascii_uppercase();
        let sql = format!(
            "SELECT {CARD_COLUMNS}, cards.secret_digest, cards.key_version FROM {CARD_FROM} \
             WHERE cards.merchant_id = $1 AND cards.number = $2"
        );
        let rows = self.query_cached(&sql, &[&merchant_id, &number]).await?;
        rows.first()
            .map(|r| {
                Ok(CardSecret {
                    card: card_from_row(r)?,
                    secret_digest: r.get(16),
                    key_version: r.get(17),
                })
            })
            .transpose()
    }

    async fn redeem_pickup(&self, order: &NewOrder, audit: &AuditEntry) -> StoreResult<Order> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let goods_statement = tx
            .prepare_cached(
                "SELECT goods.name FROM card_goods JOIN goods ON goods.id = card_goods.goods_id \
                 WHERE card_goods.card_id = $1 AND card_goods.goods_id = $2 AND goods.merchant_id = $3 AND goods.on_shelf",
            )
            .await
            .map_err(map_err)?;
        let goods_name: String = tx
            .query_opt(
                &goods_statement,
                &[&order.card_id, &order.goods_id, &order.merchant_id],
            )
            .await
            .map_err(map_err)?
            .ok_or(StoreError::NotFound)?
            .get(0);
        let use_statement = tx
            .prepare_cached(
                "UPDATE cards SET state = 'used', used_at = $1 \
                 WHERE id = $2 AND merchant_id = $3 AND state = 'active' \
                 AND (valid_from IS NULL OR valid_from <= $1) AND (valid_until IS NULL OR valid_until >= $1) \
                 RETURNING number, batch_id",
            )
            .await
            .map_err(map_err)?;
        let used = tx
            .query_opt(
                &use_statement,
                &[&order.created_at, &order.card_id, &order.merchant_id],
            )
            .await
            .map_err(map_err)?
            .ok_or_else(|| StoreError::Conflict("card is not usable".into()))?;
        let (card_number, batch_id): (String, i64) = (used.get(0), used.get(1));
        let status = if order.channel == Channel::Store {
            OrderStatus::PickedUp
        } else {
            OrderStatus::Pending
        };
        let c = order.consignee.clone().unwrap_or_default();
        let insert_statement = tx
            .prepare_cached(&format!(
                    "INSERT INTO orders (merchant_id, card_id, card_number, batch_id, goods_id, goods_name, channel, status, \
                     consignee, phone, province, city, district, address, appointment_date, created_by, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) RETURNING {ORDER_COLUMNS}"
            ))
            .await
            .map_err(map_err)?;
        let row = tx
            .query_one(
                &insert_statement,
                &[
                    &order.merchant_id,
                    &order.card_id,
                    &card_number,
                    &batch_id,
                    &order.goods_id,
                    &goods_name,
                    &order.channel.code(),
                    &status.code(),
                    &c.name,
                    &c.phone,
                    &c.province,
                    &c.city,
                    &c.district,
                    &c.address,
                    &order.appointment_date,
                    &order.created_by,
                    &order.created_at,
                ],
            )
            .await
            .map_err(map_err)?;
        let created = order_from_row(&row)?;
        let audit = AuditEntry {
            target: format!("order={} card={}", created.id, created.card_number),
            ..audit.clone()
        };
        insert_audit(&tx, &audit, 1).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(created)
    }

    async fn get_order(&self, merchant_id: i64, order_id: i64) -> StoreResult<Order> {
        let row = self
            .client()
            .await?
            .query_opt(
                &format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1 AND merchant_id = $2"),
                &[&order_id, &merchant_id],
            )
            .await
            .map_err(map_err)?
            .ok_or(StoreError::NotFound)?;
        order_from_row(&row)
    }

    async fn latest_order_of_card(
        &self,
        merchant_id: i64,
        card_id: i64,
    ) -> StoreResult<Option<Order>> {
        let row = self
            .client()
            .await?
            .query_opt(
                &format!("SELECT {ORDER_COLUMNS} FROM orders WHERE merchant_id = $1 AND card_id = $2 ORDER BY id DESC LIMIT 1"),
                &[&merchant_id, &card_id],
            )
            .await
            .map_err(map_err)?;
        row.as_ref().map(order_from_row).transpose()
    }

    async fn list_orders(
        &self,
        merchant_id: i64,
        filter: &OrderFilter,
        page: Page,
    ) -> StoreResult<(Vec<Order>, i64)> {
        let client = self.client().await?;
        let mut params: Params = Vec::new();
        let condition = order_filter_sql(merchant_id, filter, &mut params);
        let total: i64 = client
            .query_one(
                &format!("SELECT count(*) FROM orders WHERE {condition}"),
                &refs(&params),
            )
            .await
            .map_err(map_err)?
            .get(0);
        let n = params.len();
        params.push(Box::new(page.page_size));
        params.push(Box::new(page.offset()));
        let rows = client
            .query(
                &format!("SELECT {ORDER_COLUMNS} FROM orders WHERE {condition} ORDER BY id DESC LIMIT ${} OFFSET ${}", n + 1, n + 2),
                &refs(&params),
            )
            .await
            .map_err(map_err)?;
        Ok((
            rows.iter()
                .map(order_from_row)
                .collect::<StoreResult<_>>()?,
            total,
        ))
    }

    async fn orders_after(
        &self,
        merchant_id: i64,
        filter: &OrderFilter,
        after_id: i64,
        limit: i64,
    ) -> StoreResult<Vec<Order>> {
        let mut params: Params = Vec::new();
        let condition = order_filter_sql(merchant_id, filter, &mut params);
        let n = params.len();
        params.push(Box::new(after_id));
        params.push(Box::new(limit));
        let rows = self
            .client()
            .await?
            .query(
                &format!("SELECT {ORDER_COLUMNS} FROM orders WHERE {condition} AND id > ${} ORDER BY id LIMIT ${}", n + 1, n + 2),
                &refs(&params),
            )
            .await
            .map_err(map_err)?;
        rows.iter().map(order_from_row).collect()
    }

    async fn cancel_order(
        &self,
        merchant_id: i64,
        order_id: i64,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let row = tx
            .query_opt(
                "UPDATE orders SET status = 'cancelled', cancelled_at = $1 WHERE id = $2 AND merchant_id = $3 AND status = 'pending' \
                 RETURNING card_id",
                &[&audit.created_at, &order_id, &merchant_id],
            )
            .await
            .map_err(map_err)?;
        let Some(row) = row else {
            let exists: i64 = tx
                .query_one(
                    "SELECT count(*) FROM orders WHERE id = $1 AND merchant_id = $2",
                    &[&order_id, &merchant_id],
                )
                .await
                .map_err(map_err)?
                .get(0);
            return Err(if exists == 1 {
                StoreError::Conflict("order is not pending".into())
            } else {
                StoreError::NotFound
            });
        };
        let card_id: i64 = row.get(0);
        let n = tx
            .execute(
                "UPDATE cards SET state = 'active', used_at = NULL WHERE id = $1 AND merchant_id = $2 AND state = 'used'",
                &[&card_id, &merchant_id],
            )
            .await
            .map_err(map_err)?;
        if n != 1 {
            return Err(StoreError::Conflict("the order's card is not used".into()));
        }
        insert_audit(&tx, audit, 1).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn ship_orders(
        &self,
        merchant_id: i64,
        shipments: &[Shipment],
        now: i64,
        audit: &AuditEntry,
    ) -> StoreResult<i64> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let stmt = tx
            .prepare(
                "UPDATE orders SET status = 'shipped', carrier = $1, tracking_number = $2, shipped_at = $3 \
                 WHERE id = $4 AND merchant_id = $5 AND status = 'pending'",
            )
            .await
            .map_err(map_err)?;
        for s in shipments {
            let n = tx
                .execute(
                    &stmt,
                    &[
                        &s.carrier,
                        &s.tracking_number,
                        &now,
                        &s.order_id,
                        &merchant_id,
                    ],
                )
                .await
                .map_err(map_err)?;
            if n != 1 {
                return Err(StoreError::Conflict(s.order_id.to_string()));
            }
        }
        insert_audit(&tx, audit, shipments.len() as i64).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(shipments.len() as i64)
    }

    async fn oldest_failure(
        &self,
        merchant_id: i64,
        key: &str,
        since: i64,
    ) -> StoreResult<Option<i64>> {
        let row = self
            .client()
            .await?
            .query_one("SELECT MIN(at) FROM attempt_failures WHERE merchant_id = $1 AND key = $2 AND at >= $3", &[&merchant_id, &key, &since])
            .await
            .map_err(map_err)?;
        Ok(row.get(0))
    }

    async fn count_failures(&self, merchant_id: i64, key: &str, since: i64) -> StoreResult<i64> {
        let rows = self
            .query_cached("SELECT count(*) FROM attempt_failures WHERE merchant_id = $1 AND key = $2 AND at >= $3", &[&merchant_id, &key, &since])
            .await?;
        Ok(rows[0].get(0))
    }

    async fn clear_failures(&self, merchant_id: i64, key: &str) -> StoreResult<()> {
        self.client()
            .await?
            .execute(
                "DELETE FROM attempt_failures WHERE merchant_id = $1 AND key = $2",
                &[&merchant_id, &key],
            )
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn record_failure(&self, merchant_id: i64, key: &str, now: i64) -> StoreResult<()> {
        let client = self.client().await?;
        client
            .execute(
                "DELETE FROM attempt_failures WHERE merchant_id = $1 AND key = $2 AND at < $3",
                &[&merchant_id, &key, &(now - ATTEMPT_FAILURES_KEPT_SECONDS)],
            )
            .await
            .map_err(map_err)?;
        client
            .execute(
                "INSERT INTO attempt_failures (merchant_id, key, at) VALUES ($1, $2, $3)",
                &[&merchant_id, &key, &now],
            )
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn get_pickup_settings(&self, merchant_id: i64) -> StoreResult<PickupSettings> {
        let rows = self
            .query_cached(
                "SELECT title, notice, enabled, closed_message, appointment_mode, appointment_min_days, appointment_from, \
                 appointment_until, blocked_dates, redirect_url, attempts_per_card, attempts_per_client \
                 FROM pickup_settings WHERE merchant_id = $1",
                &[&merchant_id],
            )
            .await?;
        let Some(r) = rows.first() else {
            return Ok(PickupSettings::default());
        };
        let (from, until): (Option<String>, Option<String>) = (r.get(6), r.get(7));
        Ok(PickupSettings {
            title: r.get(0),
            notice: r.get(1),
            enabled: r.get(2),
            closed_message: r.get(3),
            appointment: AppointmentMode::from_parts(
                r.get(4),
                r.get(5),
                from.as_deref(),
                until.as_deref(),
            )
            .map_err(StoreError::Backend)?,
            blocked_dates: parse_blocked_dates(r.get(8)).map_err(StoreError::Backend)?,
            redirect_url: r.get(9),
            attempts_per_card: r.get(10),
            attempts_per_client: r.get(11),
        })
    }

    async fn put_pickup_settings(
        &self,
        merchant_id: i64,
        settings: &PickupSettings,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let (mode, min_days, from, until) = settings.appointment.to_parts();
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        tx.execute(
            "INSERT INTO pickup_settings (merchant_id, title, notice, enabled, closed_message, appointment_mode, appointment_min_days, \
             appointment_from, appointment_until, blocked_dates, redirect_url, attempts_per_card, attempts_per_client, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
             ON CONFLICT (merchant_id) DO UPDATE SET title = excluded.title, notice = excluded.notice, enabled = excluded.enabled, \
             closed_message = excluded.closed_message, appointment_mode = excluded.appointment_mode, \
             appointment_min_days = excluded.appointment_min_days, appointment_from = excluded.appointment_from, \
             appointment_until = excluded.appointment_until, blocked_dates = excluded.blocked_dates, \
             redirect_url = excluded.redirect_url, attempts_per_card = excluded.attempts_per_card, \
             attempts_per_client = excluded.attempts_per_client, updated_at = excluded.updated_at",
            &[
                &merchant_id,
                &settings.title,
                &settings.notice,
                &settings.enabled,
                &settings.closed_message,
                &mode,
                &min_days,
                &from,
                &until,
                &format_blocked_dates(&settings.blocked_dates),
                &settings.redirect_url,
                &settings.attempts_per_card,
                &settings.attempts_per_client,
                &audit.created_at,
            ],
        )
        .await
        .map_err(map_err)?;
        insert_audit(&tx, audit, 1).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn list_carriers(&self, merchant_id: i64) -> StoreResult<Vec<String>> {
        self.query_strings(
            "SELECT name FROM carriers WHERE merchant_id = $1 ORDER BY name",
            &[&merchant_id],
        )
        .await
    }

    async fn add_carrier(&self, merchant_id: i64, name: &str) -> StoreResult<()> {
        self.client()
            .await?
            .execute(
                "INSERT INTO carriers (merchant_id, name) VALUES ($1, $2)",
                &[&merchant_id, &name],
            )
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn put_logo(
        &self,
        merchant_id: i64,
        content_type: &str,
        bytes: &[u8],
        now: i64,
    ) -> StoreResult<()> {
        self.client()
            .await?
            .execute(
                "INSERT INTO merchant_logos (merchant_id, content_type, bytes, updated_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (merchant_id) DO UPDATE SET content_type = excluded.content_type, bytes = excluded.bytes, \
                 updated_at = excluded.updated_at",
                &[&merchant_id, &content_type, &bytes, &now],
            )
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn logo_updated_at(&self, merchant_id: i64) -> StoreResult<Option<i64>> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT updated_at FROM merchant_logos WHERE merchant_id = $1",
                &[&merchant_id],
            )
            .await
            .map_err(map_err)?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn get_logo(&self, merchant_id: i64) -> StoreResult<Option<(String, Vec<u8>)>> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT content_type, bytes FROM merchant_logos WHERE merchant_id = $1",
                &[&merchant_id],
            )
            .await
            .map_err(map_err)?;
        Ok(row.map(|r| (r.get(0), r.get(1))))
    }

    async fn append_audit(&self, entry: &AuditEntry) -> StoreResult<()> {
        let client = self.client().await?;
        insert_audit(&client, entry, entry.n_affected)
            .await
            .map(|_| ())
    }

    async fn list_audit(
        &self,
        merchant_id: i64,
        page: Page,
    ) -> StoreResult<(Vec<AuditRecord>, i64)> {
        let (rows, total) = self
            .merchant_page("audit_log", AUDIT_COLUMNS, merchant_id, page)
            .await?;
        Ok((rows.iter().map(audit_from_row).collect(), total))
    }

    async fn list_deleted_numbers(
        &self,
        merchant_id: i64,
        audit_id: i64,
    ) -> StoreResult<Vec<String>> {
        self.query_strings("SELECT number FROM deleted_cards WHERE audit_id = $1 AND merchant_id = $2 ORDER BY serial", &[&audit_id, &merchant_id]).await
    }

    async fn verify(&self) -> StoreResult<Vec<String>> {
        let client = self.client().await?;
        let mut violations = Vec::new();
        for (description, sql) in INVARIANT_QUERIES
            .iter()
            .chain(stored_value::LEDGER_INVARIANT_QUERIES)
        {
            let n: i64 = client.query_one(*sql, &[]).await.map_err(map_err)?.get(0);
            if n != 0 {
                violations.push(format!("{n} {description}"));
            }
        }
        Ok(violations)
    }
}

/// Each query counts the rows that break one invariant.
const INVARIANT_QUERIES: &[(&str, &str)] = &[
    (
        "live orders belong to a card that is not used",
        "SELECT count(*) FROM orders o JOIN cards c ON c.id = o.card_id WHERE o.status <> 'cancelled' AND c.state <> 'used'",
    ),
    (
        "cards belong to a batch that is not ready",
        "SELECT count(*) FROM cards c JOIN batches b ON b.id = c.batch_id WHERE b.state <> 'ready'",
    ),
    (
        "cards belong to another merchant's batch",
        "SELECT count(*) FROM cards c JOIN batches b ON b.id = c.batch_id WHERE b.merchant_id <> c.merchant_id",
    ),
    (
        "cards have a serial outside their batch's reserved range",
        "SELECT count(*) FROM cards c JOIN batches b ON b.id = c.batch_id \
         WHERE c.serial < b.serial_first OR c.serial >= b.serial_first + b.quantity",
    ),
    (
        "active or used cards have no activation time",
        "SELECT count(*) FROM cards WHERE state IN ('active', 'used') AND activated_at IS NULL AND used_at IS NULL",
    ),
    ("used cards have no use time", "SELECT count(*) FROM cards WHERE state = 'used' AND used_at IS NULL"),
    ("voided cards have no void time", "SELECT count(*) FROM cards WHERE state = 'voided' AND voided_at IS NULL"),
    (
        "ready batches hold a different number of cards than their quantity (deleted cards counted)",
        "SELECT count(*) FROM batches b WHERE b.state = 'ready' AND b.quantity <> \
         (SELECT count(*) FROM cards c WHERE c.batch_id = b.id) + (SELECT count(*) FROM deleted_cards d WHERE d.batch_id = b.id)",
    ),
    (
        "merchants would hand out a serial already used",
        "SELECT count(*) FROM merchants m WHERE m.next_serial <= (SELECT COALESCE(MAX(serial), 0) FROM cards c WHERE c.merchant_id = m.id)",
    ),
    (
        "sessions belong to another merchant than their staff",
        "SELECT count(*) FROM sessions s JOIN staff t ON t.id = s.staff_id WHERE t.merchant_id <> s.merchant_id",
    ),
];

/// Test support: makes a new, empty database beside the one `admin_url`
/// points at and returns its URL, so tests can run in parallel. The server
/// must be reachable: a missing PostgreSQL fails the test, never skips it.
pub mod testing {
    /// Where tests find PostgreSQL unless `KAQUAN_TEST_POSTGRES_URL` says otherwise.
    pub const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

    fn admin_url() -> String {
        std::env::var("KAQUAN_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_ADMIN_URL.to_owned())
    }

    async fn admin_client() -> tokio_postgres::Client {
        let admin_url = admin_url();
        let (client, connection) = tokio_postgres::connect(&admin_url, tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| {
                panic!("PostgreSQL must be running for the tests ({admin_url}): {e}")
            });
        tokio::spawn(connection);
        client
    }

    /// A database of one test's own, dropped when the test ends, whether it
    /// passed or failed (the guard drops as the test unwinds).
    pub struct TestDatabase {
        pub url: String,
        name: String,
    }

    impl Drop for TestDatabase {
        fn drop(&mut self) {
            // Drop may run inside the test's runtime, which cannot be
            // blocked on: the statement runs on a thread of its own.
            let name = self.name.clone();
            let dropped = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime to drop the test database");
                runtime.block_on(async move {
                    admin_client()
                        .await
                        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await
                })
            })
            .join();
            if let Ok(Err(error)) = dropped {
                eprintln!("could not drop test database {}: {error}", self.name);
            }
        }
    }

    pub async fn create_test_database() -> TestDatabase {
        let client = admin_client().await;
        let name = format!("kaquan_test_{}", kaquan_core::secrets::random_token_hex(6));
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create test database");
        let url = match admin_url().rsplit_once('/') {
            Some((base, _)) => format!("{base}/{name}"),
            None => panic!("KAQUAN_TEST_POSTGRES_URL must end in /DATABASE"),
        };
        TestDatabase { url, name }
    }
}
