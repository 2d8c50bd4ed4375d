//! The embedded SQLite backend: one file, WAL, `synchronous=FULL`.
//!
//! All writes go through one writer thread that groups whatever is queued
//! (up to [`GROUP_COMMIT_JOBS_MAX`] jobs) into one `BEGIN IMMEDIATE`
//! transaction and answers every job only after the group's COMMIT is
//! durable: FULL sync costs one fsync per group, not per write. The group's
//! signed redemptions run set-wise before the other jobs (see
//! `stored_value::redeem_set_wise`). Reads run on a small pool of read-only
//! connections.
//!
//! Architecture invariant: this file and `migrations/` hold all of kaquan's
//! SQLite SQL.

use kaquan_core::auth::{builtin_roles, Permission};
use kaquan_core::batch::{Numbering, PasswordCharset};
use kaquan_core::card::{CardEdit, CardFilter, CardOp, CardState};
use kaquan_core::goods::{Goods, GoodsFields, GoodsLinkMode, GOODS_PER_CARD_MAX};
use kaquan_core::pickup::{
    format_blocked_dates, parse_blocked_dates, AppointmentMode, Channel, Consignee, OrderStatus,
    PickupSettings,
};
use kaquan_core::store::*;
use kaquan_core::{StoreError, StoreResult};
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, OpenFlags, OptionalExtension, Row};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};

mod nonces;
mod stored_value;

/// Most jobs one group commit takes.
pub const GROUP_COMMIT_JOBS_MAX: usize = 64;
/// How long a write waits for another process's lock on the file.
const BUSY_TIMEOUT_MS: u64 = 60_000;
/// Numbers per `IN (…)` lookup.
const LOOKUP_CHUNK: usize = 500;
/// Failed attempts older than this are forgotten.
const ATTEMPT_FAILURES_KEPT_SECONDS: i64 = 86_400;
/// How often the checkpoint thread copies the WAL into the database file:
/// while commits keep coming (the WAL changed since its last copy), and
/// while they do not. Copying often keeps each copy, and the fsync of the
/// database file that ends it, small, and leaves the writer little to copy
/// when it starts the WAL over (a second's worth of frames at once made
/// that fsync stall the writer's own for tens of ms); not too often, so
/// that a page the writer changes again and again is copied once per pass
/// and the disk sees fewer writes and flushes (50 ms measured better than
/// 5 ms: more redemptions/s and fewer p99 spikes).
const CHECKPOINT_BUSY_EVERY_MS: u64 = 50;
const CHECKPOINT_IDLE_EVERY_MS: u64 = 1000;
/// Past this many frames (about 128 MB), the writer copies what the
/// checkpoint thread has not yet (SQLite's automatic checkpoint, after the
/// COMMIT), so that its next transaction can start the WAL over. Under
/// steady writes the checkpoint thread alone never catches up, and a WAL
/// that only grows makes the filesystem allocate and zero new blocks on
/// every commit (a tenth of the server's CPU under the redemption
/// benchmark on ext4); a WAL started over is overwritten in place. Rare
/// and short (the copy of a few ms of frames and one fsync of the database
/// file), these pauses keep p99 low; a lower threshold makes them frequent.
const WAL_FRAMES_CHECKPOINTED_BY_WRITER: i64 = if cfg!(test) { 64 } else { 32_768 };
/// The WAL file is cut back to this size when SQLite starts it over: above
/// the length the writer lets it reach, so that under load it keeps its
/// blocks, and after a burst (one huge transaction) it does not keep that
/// size for good.
const WAL_BYTES_KEPT_MAX: i64 = if cfg!(test) { 1 << 20 } else { 192 << 20 };
/// Prepared statements each connection keeps (rusqlite's default is 16).
const STATEMENTS_CACHED_MAX: usize = 256;
/// Idle read connections kept open.
const READERS_KEPT_MAX: usize = 64;

const MIGRATIONS: &[&str] = &[
    include_str!("migrations/001_schema.sql"),
    include_str!("migrations/002_goods.sql"),
    include_str!("migrations/003_orders.sql"),
    include_str!("migrations/004_pickup_settings.sql"),
    include_str!("migrations/005_carriers.sql"),
    include_str!("migrations/006_logos.sql"),
    include_str!("migrations/007_stored_value.sql"),
    include_str!("migrations/008_nonces_by_time.sql"),
    include_str!("migrations/009_statement_chains.sql"),
    include_str!("migrations/010_compact_nonces.sql"),
    include_str!("migrations/011_idempotency_in_arrival_order.sql"),
    include_str!("migrations/012_nonce_log.sql"),
    include_str!("migrations/013_room_for_redemption.sql"),
];

/// Whether opening may create a missing database file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    CreateIfMissing,
    MustExist,
}

/// The writer thread's connection and what it alone keeps beside it: the
/// nonces seen (`nonces`). Jobs use it as a `Connection`.
pub(crate) struct Writer {
    conn: Connection,
    nonces: std::cell::RefCell<nonces::SeenNonces>,
}

impl std::ops::Deref for Writer {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        &self.conn
    }
}

/// The writer's transaction control: each end of a transaction or savepoint
/// also settles the nonces claimed in it.
impl Writer {
    /// BEGIN IMMEDIATE for a group; on failure the caller drops the jobs,
    /// which drops their reply channels: each caller gets an error.
    fn begin(&self, n_jobs: usize) -> bool {
        self.nonces.borrow_mut().begin();
        let begun = run_cached(self, "BEGIN IMMEDIATE");
        if let Err(e) = &begun {
            tracing::error!(error = %e, n_jobs, "sqlite writer could not begin a transaction");
        }
        begun.is_ok()
    }

    fn rollback(&self) -> rusqlite::Result<()> {
        self.nonces.borrow_mut().undo_to(0);
        run_cached(self, "ROLLBACK")
    }

    /// COMMIT, or on failure ROLLBACK.
    fn commit(&self) -> Result<(), String> {
        match run_cached(self, "COMMIT") {
            Ok(()) => {
                self.nonces.borrow_mut().committed();
                Ok(())
            }
            Err(e) => {
                let _ = self.rollback();
                Err(e.to_string())
            }
        }
    }

    /// Runs `job` in a savepoint of its own, rolled back if it fails.
    fn run_in_savepoint(&self, job: &mut Job) {
        let savepoint = run_cached(self, "SAVEPOINT job");
        let mark = self.nonces.borrow().mark();
        let ok = job.run(self);
        if savepoint.is_err() {
            return;
        }
        let end = if ok {
            run_cached(self, "RELEASE job")
        } else {
            self.nonces.borrow_mut().undo_to(mark);
            run_cached(self, "ROLLBACK TO job").and_then(|()| run_cached(self, "RELEASE job"))
        };
        if let Err(e) = end {
            tracing::error!(error = %e, "sqlite writer could not end a savepoint");
        }
    }
}

/// A write queued for the writer thread. `run` may be called twice: when
/// another job of its group fails after writing, the group is rolled back
/// and run again (see [`run_group`]).
trait Work: Send {
    /// Runs the work inside the group's transaction; false when it failed.
    fn run(&mut self, writer: &Writer) -> bool;
    /// Answers the caller once the group's fate is known.
    fn finish(self: Box<Self>, commit: Result<(), String>);
    /// A redemption the writer may run set-wise with the rest of its group.
    fn redemption(&mut self) -> Option<&mut stored_value::GroupRedemption> {
        None
    }
}
type Job = Box<dyn Work>;

/// The answer to a job: its result, unless the group's COMMIT failed.
fn answer<T>(
    result: Option<StoreResult<T>>,
    commit: Result<(), String>,
    reply: tokio::sync::oneshot::Sender<StoreResult<T>>,
) {
    let result = match (result, commit) {
        (None, _) => Err(StoreError::Backend(
            "sqlite writer did not run a job".into(),
        )),
        (Some(Ok(_)), Err(e)) => Err(StoreError::Backend(format!("commit failed: {e}"))),
        (Some(result), _) => result,
    };
    let _ = reply.send(result);
}

struct Pending<T, F> {
    work: F,
    result: Option<StoreResult<T>>,
    reply: tokio::sync::oneshot::Sender<StoreResult<T>>,
}

impl<T, F> Work for Pending<T, F>
where
    T: Send,
    F: FnMut(&Writer) -> StoreResult<T> + Send,
{
    fn run(&mut self, writer: &Writer) -> bool {
        let result = (self.work)(writer);
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn finish(self: Box<Self>, commit: Result<(), String>) {
        answer(self.result, commit, self.reply);
    }
}

pub struct SqliteStore {
    writer: Mutex<mpsc::Sender<Job>>,
    readers: Arc<ReaderPool>,
}

struct ReaderPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl ReaderPool {
    fn take(&self) -> StoreResult<Connection> {
        if let Some(conn) = self.idle.lock().expect("reader pool lock").pop() {
            return Ok(conn);
        }
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(map_err)?;
        conn.busy_timeout(std::time::Duration::from_millis(BUSY_TIMEOUT_MS))
            .map_err(map_err)?;
        conn.set_prepared_statement_cache_capacity(STATEMENTS_CACHED_MAX);
        Ok(conn)
    }

    fn give(&self, conn: Connection) {
        let mut idle = self.idle.lock().expect("reader pool lock");
        if idle.len() < READERS_KEPT_MAX {
            idle.push(conn);
        }
    }
}

fn map_err(error: rusqlite::Error) -> StoreError {
    match &error {
        rusqlite::Error::SqliteFailure(e, message)
            if e.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            let message = message.clone().unwrap_or_default();
            if message.contains("UNIQUE") {
                StoreError::Conflict(message)
            } else {
                StoreError::Invalid(message)
            }
        }
        rusqlite::Error::QueryReturnedNoRows => StoreError::NotFound,
        _ => StoreError::Backend(error.to_string()),
    }
}

/// Opens (and migrates) the database at `path`.
pub fn open(path: &Path, mode: OpenMode) -> StoreResult<SqliteStore> {
    if mode == OpenMode::MustExist && !path.exists() {
        return Err(StoreError::Backend(format!(
            "database file {} does not exist; run `kaquan migrate` or `kaquan serve` to create it",
            path.display()
        )));
    }
    let conn = Connection::open(path).map_err(map_err)?;
    conn.busy_timeout(std::time::Duration::from_millis(BUSY_TIMEOUT_MS))
        .map_err(map_err)?;
    conn.execute_batch(
        // Statement journals (one per job's savepoint) stay in memory: a group
        // commit costs one WAL append and one fsync, not temp-file writes per
        // job. The writer keeps 16 MB of pages cached, not more: when a page
        // split reorders sibling pages, SQLite re-keys one through the
        // pending-byte page and then scans the cache's whole hash table at
        // COMMIT, so a larger cache costs every such commit more than its
        // extra hits save (measured: 4% more redemptions/s and a lower p99
        // than with 64 MB).
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; \
         PRAGMA temp_store = MEMORY; PRAGMA cache_size = -16384;",
    )
    .map_err(map_err)?;
    conn.execute_batch(&format!(
        "PRAGMA journal_size_limit = {WAL_BYTES_KEPT_MAX}; \
         PRAGMA wal_autocheckpoint = {WAL_FRAMES_CHECKPOINTED_BY_WRITER};"
    ))
    .map_err(map_err)?;
    migrate(&conn)?;
    stored_value::create_redemption_tables(&conn)?;
    // The writer runs every write statement there is: keep them all prepared.
    conn.set_prepared_statement_cache_capacity(STATEMENTS_CACHED_MAX);
    let (sender, receiver) = mpsc::channel::<Job>();
    std::thread::Builder::new()
        .name("sqlite-writer".into())
        .spawn(move || writer_loop(conn, receiver))
        .map_err(|e| StoreError::Backend(format!("cannot start writer thread: {e}")))?;
    let readers = Arc::new(ReaderPool {
        path: path.to_owned(),
        idle: Mutex::new(Vec::new()),
    });
    start_checkpointer(path, Arc::downgrade(&readers))?;
    Ok(SqliteStore {
        writer: Mutex::new(sender),
        readers,
    })
}

fn migrate(conn: &Connection) -> StoreResult<()> {
    conn.execute_batch("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)")
        .map_err(map_err)?;
    let applied: i64 = conn
        .query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            [],
            |r| r.get(0),
        )
        .map_err(map_err)?;
    for (idx, sql) in MIGRATIONS.iter().enumerate() {
        let version = idx as i64 + 1;
        if version <= applied {
            continue;
        }
        in_transaction(conn, || {
            conn.execute_batch(sql)?;
            conn.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, strftime('%s','now'))",
                [version],
            )
        })?;
    }
    stored_value::carry_over_nonces(conn)
}

/// Runs `work` in a transaction of its own on a connection that is not the
/// writer's (opening the store: migrations and the fix-ups after them).
fn in_transaction<T>(
    conn: &Connection,
    work: impl FnOnce() -> rusqlite::Result<T>,
) -> StoreResult<T> {
    conn.execute_batch("BEGIN IMMEDIATE").map_err(map_err)?;
    match work() {
        Ok(done) => {
            conn.execute_batch("COMMIT").map_err(map_err)?;
            Ok(done)
        }
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(map_err(e))
        }
    }
}

/// Copies the WAL back into the database file on a thread of its own, so
/// the writer's commits seldom wait for a checkpoint (the writer copies
/// only what is left past `WAL_FRAMES_CHECKPOINTED_BY_WRITER`). PASSIVE: it
/// never blocks the writer or readers. It stops once the store is dropped
/// (`alive` no longer upgrades).
fn start_checkpointer(path: &Path, alive: std::sync::Weak<ReaderPool>) -> StoreResult<()> {
    let conn = Connection::open(path).map_err(map_err)?;
    conn.busy_timeout(std::time::Duration::from_millis(BUSY_TIMEOUT_MS))
        .map_err(map_err)?;
    std::thread::Builder::new()
        .name("sqlite-checkpoint".into())
        .spawn(move || {
            let (mut pause, mut last_length) = (CHECKPOINT_IDLE_EVERY_MS, 0);
            while alive.upgrade().is_some() {
                std::thread::sleep(std::time::Duration::from_millis(pause));
                // The second column: the WAL's length in frames.
                match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(1)) {
                    Ok(length) => {
                        pause = if length == last_length {
                            CHECKPOINT_IDLE_EVERY_MS
                        } else {
                            CHECKPOINT_BUSY_EVERY_MS
                        };
                        last_length = length;
                    }
                    Err(e) => {
                        pause = CHECKPOINT_IDLE_EVERY_MS;
                        tracing::warn!(error = %e, "sqlite checkpoint failed; will retry");
                    }
                }
            }
        })
        .map_err(|e| StoreError::Backend(format!("cannot start checkpoint thread: {e}")))?;
    Ok(())
}

/// Runs one statement without parameters through the statement cache.
fn run_cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

fn writer_loop(conn: Connection, receiver: mpsc::Receiver<Job>) {
    let writer = Writer {
        conn,
        nonces: Default::default(),
    };
    while let Ok(first) = receiver.recv() {
        let mut jobs = vec![first];
        while jobs.len() < GROUP_COMMIT_JOBS_MAX {
            match receiver.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        run_group(&writer, jobs);
    }
}

/// Runs a group of jobs in one transaction and answers them after COMMIT.
///
/// The jobs share the transaction without savepoints: most writes succeed,
/// and a savepoint per job would copy every page it touches. A job that
/// fails without having changed a row costs nothing; one that fails after
/// writing makes the group roll back and run again with each job in its own
/// savepoint, the failed job answered with its error and left out.
fn run_group(writer: &Writer, mut jobs: Vec<Job>) {
    if !writer.begin(jobs.len()) {
        return;
    }
    // Redemptions first, set-wise: the usual ones take one statement per
    // table for the whole group; the rest are left to run one by one.
    let mut redemptions: Vec<&mut stored_value::GroupRedemption> =
        jobs.iter_mut().filter_map(|job| job.redemption()).collect();
    let set_wise = if redemptions.len() > 1 {
        stored_value::redeem_set_wise(writer, &mut redemptions)
    } else {
        Ok(())
    };
    drop(redemptions);
    // A failed set-wise phase may have written: everything reruns one by one.
    let mut rerun = set_wise.is_err();
    if let Err(e) = &set_wise {
        tracing::warn!(error = %e, "set-wise redemptions failed; the group runs job by job");
    }
    let mut failed_after_writing = None;
    if !rerun {
        for (idx, job) in jobs.iter_mut().enumerate() {
            if job.redemption().is_some_and(|r| r.result.is_some()) {
                continue;
            }
            let before = writer.total_changes();
            if !job.run(writer) && writer.total_changes() != before {
                failed_after_writing = Some(idx);
                rerun = true;
                break;
            }
        }
    }
    if rerun {
        if let Err(e) = writer.rollback() {
            tracing::error!(error = %e, "sqlite writer could not roll a group back");
            return;
        }
        if let Some(idx) = failed_after_writing {
            jobs.remove(idx).finish(Ok(()));
        }
        if !writer.begin(jobs.len()) {
            return;
        }
        for job in jobs.iter_mut() {
            if let Some(redemption) = job.redemption() {
                redemption.result = None;
            }
            writer.run_in_savepoint(job);
        }
    }
    let commit = writer.commit();
    for job in jobs {
        job.finish(commit.clone());
    }
}

impl SqliteStore {
    /// Runs `work` on the writer thread inside a group transaction and
    /// returns its result once the group has committed.
    async fn write<T: Send + 'static>(
        &self,
        work: impl FnMut(&Writer) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        self.queue(|reply| {
            Box::new(Pending {
                work,
                result: None,
                reply,
            })
        })
        .await
    }

    /// Queues the job `make` builds around its reply channel and waits for
    /// its answer.
    async fn queue<T>(
        &self,
        make: impl FnOnce(tokio::sync::oneshot::Sender<StoreResult<T>>) -> Job,
    ) -> StoreResult<T> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.writer
            .lock()
            .expect("writer sender lock")
            .send(make(reply))
            .map_err(|_| StoreError::Backend("sqlite writer thread has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Backend("sqlite writer dropped a job".into()))?
    }

    async fn read<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let pool = Arc::clone(&self.readers);
        tokio::task::spawn_blocking(move || {
            let conn = pool.take()?;
            let result = work(&conn);
            pool.give(conn);
            result
        })
        .await
        .map_err(|e| StoreError::Backend(format!("read task failed: {e}")))?
    }
}

// ---- row mapping ---------------------------------------------------------

const MERCHANT_COLUMNS: &str = "id, name, key_version, created_at";

fn merchant_from_row(row: &Row) -> rusqlite::Result<Merchant> {
    Ok(Merchant {
        id: row.get(0)?,
        name: row.get(1)?,
        key_version: row.get(2)?,
        created_at: row.get(3)?,
    })
}

const ROLE_COLUMNS: &str = "id, merchant_id, name, label, permissions";

fn role_from_row(row: &Row) -> rusqlite::Result<Role> {
    Ok(Role {
        id: row.get(0)?,
        merchant_id: row.get(1)?,
        name: row.get(2)?,
        label: row.get(3)?,
        permissions: Permission::decode_set(&row.get::<_, String>(4)?),
    })
}

const STAFF_COLUMNS: &str =
    "id, merchant_id, username, name, phone, role_id, password_hash, failed_logins, locked_until, disabled, created_at";

fn staff_from_row(row: &Row) -> rusqlite::Result<Staff> {
    Ok(Staff {
        id: row.get(0)?,
        merchant_id: row.get(1)?,
        username: row.get(2)?,
        name: row.get(3)?,
        phone: row.get(4)?,
        role_id: row.get(5)?,
        password_hash: row.get(6)?,
        failed_logins: row.get(7)?,
        locked_until: row.get(8)?,
        disabled: row.get(9)?,
        created_at: row.get(10)?,
    })
}

const BATCH_COLUMNS: &str = "id, merchant_id, name, source, prefix, number_length, numbering, start_number, \
    password_length, password_charset, quantity, face_value_fen, valid_from, valid_until, remark, state, \
    serial_first, error, created_by, created_at, completed_at";

fn decode<T>(value: Option<T>, column: usize, what: &str) -> rusqlite::Result<T> {
    value.ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            column,
            rusqlite::types::Type::Text,
            format!("unknown {what}").into(),
        )
    })
}

fn batch_from_row(row: &Row) -> rusqlite::Result<Batch> {
    Ok(Batch {
        id: row.get(0)?,
        merchant_id: row.get(1)?,
        name: row.get(2)?,
        source: decode(
            BatchSource::parse(&row.get::<_, String>(3)?),
            3,
            "batch source",
        )?,
        prefix: row.get(4)?,
        number_length: row.get(5)?,
        numbering: decode(Numbering::parse(&row.get::<_, String>(6)?), 6, "numbering")?,
        start_number: row.get(7)?,
        password_length: row.get(8)?,
        password_charset: decode(
            PasswordCharset::parse(&row.get::<_, String>(9)?),
            9,
            "password charset",
        )?,
        quantity: row.get(10)?,
        face_value_fen: row.get(11)?,
        valid_from: row.get(12)?,
        valid_until: row.get(13)?,
        remark: row.get(14)?,
        state: decode(
            BatchState::parse(&row.get::<_, String>(15)?),
            15,
            "batch state",
        )?,
        serial_first: row.get(16)?,
        error: row.get(17)?,
        created_by: row.get(18)?,
        created_at: row.get(19)?,
        completed_at: row.get(20)?,
    })
}

const CARD_COLUMNS: &str = "cards.id, cards.merchant_id, cards.batch_id, cards.serial, cards.number, cards.state, \
    cards.face_value_fen, cards.valid_from, cards.valid_until, cards.remark, cards.distributor_id, distributors.name, \
    cards.activated_at, cards.used_at, cards.voided_at, cards.created_at";
const CARD_FROM: &str = "cards LEFT JOIN distributors ON distributors.id = cards.distributor_id";

fn card_from_row(row: &Row) -> rusqlite::Result<Card> {
    Ok(Card {
        id: row.get(0)?,
        merchant_id: row.get(1)?,
        batch_id: row.get(2)?,
        serial: row.get(3)?,
        number: row.get(4)?,
        state: decode(CardState::parse(&row.get::<_, String>(5)?), 5, "card state")?,
        face_value_fen: row.get(6)?,
        valid_from: row.get(7)?,
        valid_until: row.get(8)?,
        remark: row.get(9)?,
        distributor_id: row.get(10)?,
        distributor_name: row.get(11)?,
        activated_at: row.get(12)?,
        used_at: row.get(13)?,
        voided_at: row.get(14)?,
        created_at: row.get(15)?,
    })
}

const GOODS_COLUMNS: &str =
    "goods.id, goods.merchant_id, goods.name, goods.description, goods.sku, goods.erp_code, goods.attributes, goods.on_shelf, goods.created_at, goods.updated_at";

fn goods_from_row(row: &Row) -> rusqlite::Result<Goods> {
    Ok(Goods {
        id: row.get(0)?,
        merchant_id: row.get(1)?,
        name: row.get(2)?,
        description: row.get(3)?,
        sku: row.get(4)?,
        erp_code: row.get(5)?,
        attributes: row.get(6)?,
        on_shelf: row.get(7)?,
        image_ids: Vec::new(),
        created_at: row.get(8)?,
        updated_at: row.get(9)?,
    })
}

/// Fills in each goods' image ids, in upload order.
fn attach_images(conn: &Connection, merchant_id: i64, goods: &mut [Goods]) -> StoreResult<()> {
    if goods.is_empty() {
        return Ok(());
    }
    let mut stmt = conn
        .prepare_cached("SELECT goods_id, id FROM goods_images WHERE merchant_id = ?1 ORDER BY id")
        .map_err(map_err)?;
    let rows = stmt
        .query_map([merchant_id], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
        })
        .map_err(map_err)?;
    for row in rows {
        let (goods_id, image_id) = row.map_err(map_err)?;
        if let Some(g) = goods.iter_mut().find(|g| g.id == goods_id) {
            g.image_ids.push(image_id);
        }
    }
    Ok(())
}

fn query_goods(
    conn: &Connection,
    merchant_id: i64,
    sql: &str,
    values: Vec<Value>,
) -> StoreResult<Vec<Goods>> {
    let mut stmt = conn.prepare(sql).map_err(map_err)?;
    let rows = stmt
        .query_map(params_from_iter(values), goods_from_row)
        .map_err(map_err)?;
    let mut goods: Vec<Goods> = rows.collect::<Result<_, _>>().map_err(map_err)?;
    attach_images(conn, merchant_id, &mut goods)?;
    Ok(goods)
}

const ORDER_COLUMNS: &str = "id, merchant_id, card_id, card_number, batch_id, goods_id, goods_name, channel, status, \
    consignee, phone, province, city, district, address, appointment_date, carrier, tracking_number, shipped_at, \
    created_by, created_at, cancelled_at";

fn order_from_row(row: &Row) -> rusqlite::Result<Order> {
    Ok(Order {
        id: row.get(0)?,
        merchant_id: row.get(1)?,
        card_id: row.get(2)?,
        card_number: row.get(3)?,
        batch_id: row.get(4)?,
        goods_id: row.get(5)?,
        goods_name: row.get(6)?,
        channel: decode(Channel::parse(&row.get::<_, String>(7)?), 7, "channel")?,
        status: decode(
            OrderStatus::parse(&row.get::<_, String>(8)?),
            8,
            "order status",
        )?,
        consignee: Consignee {
            name: row.get(9)?,
            phone: row.get(10)?,
            province: row.get(11)?,
            city: row.get(12)?,
            district: row.get(13)?,
            address: row.get(14)?,
        },
        appointment_date: row.get(15)?,
        carrier: row.get(16)?,
        tracking_number: row.get(17)?,
        shipped_at: row.get(18)?,
        created_by: row.get(19)?,
        created_at: row.get(20)?,
        cancelled_at: row.get(21)?,
    })
}

fn order_filter_sql(merchant_id: i64, filter: &OrderFilter) -> (String, Vec<Value>) {
    let mut sql = String::from("merchant_id = ?");
    let mut values = vec![Value::Integer(merchant_id)];
    let mut push = |clause: &str, value: Value| {
        sql.push_str(clause);
        values.push(value);
    };
    if let Some(v) = filter.status {
        push(" AND status = ?", Value::Text(v.code().into()));
    }
    if let Some(v) = &filter.appointment_from {
        push(" AND appointment_date >= ?", Value::Text(v.clone()));
    }
    if let Some(v) = &filter.appointment_until {
        push(" AND appointment_date <= ?", Value::Text(v.clone()));
    }
    if let Some(v) = filter.shipped_from {
        push(" AND shipped_at >= ?", Value::Integer(v));
    }
    if let Some(v) = filter.shipped_until {
        push(" AND shipped_at <= ?", Value::Integer(v));
    }
    if let Some(v) = filter.created_from {
        push(" AND created_at >= ?", Value::Integer(v));
    }
    if let Some(v) = filter.created_until {
        push(" AND created_at <= ?", Value::Integer(v));
    }
    if let Some(v) = filter.batch_id {
        push(" AND batch_id = ?", Value::Integer(v));
    }
    if let Some(v) = filter.goods_id {
        push(" AND goods_id = ?", Value::Integer(v));
    }
    if let Some(v) = filter.channel {
        push(" AND channel = ?", Value::Text(v.code().into()));
    }
    if let Some(v) = &filter.card_number {
        push(
            " AND card_number = ?",
            Value::Text(v.trim().to_ascii_uppercase()),
        );
    }
    if let Some(v) = &filter.phone {
        push(" AND phone = ?", Value::Text(v.trim().to_owned()));
    }
    (sql, values)
}

const AUDIT_COLUMNS: &str =
    "id, merchant_id, actor_staff_id, actor, action, target, detail, n_affected, created_at";

fn audit_from_row(row: &Row) -> rusqlite::Result<AuditRecord> {
    Ok(AuditRecord {
        id: row.get(0)?,
        entry: AuditEntry {
            merchant_id: row.get(1)?,
            actor: Actor {
                staff_id: row.get(2)?,
                label: row.get(3)?,
            },
            action: row.get(4)?,
            target: row.get(5)?,
            detail: row.get(6)?,
            n_affected: row.get(7)?,
            created_at: row.get(8)?,
        },
    })
}

/// `WHERE` conditions for a card filter, qualified with `cards.` so they
/// work in SELECT, UPDATE and DELETE alike.
fn card_filter_sql(merchant_id: i64, filter: &CardFilter) -> (String, Vec<Value>) {
    let mut sql = String::from("cards.merchant_id = ?");
    let mut values = vec![Value::Integer(merchant_id)];
    if let Some(v) = filter.batch_id {
        sql.push_str(" AND cards.batch_id = ?");
        values.push(Value::Integer(v));
    }
    if let Some(v) = filter.state {
        sql.push_str(" AND cards.state = ?");
        values.push(Value::Text(v.code().into()));
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
        Some(v) => {
            sql.push_str(" AND cards.distributor_id = ?");
            values.push(Value::Integer(v));
        }
        None => {}
    }
    if let Some(v) = filter.serial_from {
        sql.push_str(" AND cards.serial >= ?");
        values.push(Value::Integer(v));
    }
    if let Some(v) = filter.serial_to {
        sql.push_str(" AND cards.serial <= ?");
        values.push(Value::Integer(v));
    }
    if let Some(needle) = filter.number_needle() {
        sql.push_str(" AND instr(cards.number, ?) > 0");
        values.push(Value::Text(needle));
    }
    (sql, values)
}

/// One page of a merchant's rows of `table`, newest first, and their total.
fn merchant_page<T>(
    conn: &Connection,
    table: &str,
    columns: &str,
    merchant_id: i64,
    page: Page,
    map: impl FnMut(&Row) -> rusqlite::Result<T>,
) -> StoreResult<(Vec<T>, i64)> {
    let total: i64 = conn
        .query_row(
            &format!("SELECT count(*) FROM {table} WHERE merchant_id = ?1"),
            [merchant_id],
            |r| r.get(0),
        )
        .map_err(map_err)?;
    let mut stmt = conn
        .prepare(&format!("SELECT {columns} FROM {table} WHERE merchant_id = ?1 ORDER BY id DESC LIMIT ?2 OFFSET ?3"))
        .map_err(map_err)?;
    let rows = stmt
        .query_map(params![merchant_id, page.page_size, page.offset()], map)
        .map_err(map_err)?;
    Ok((rows.collect::<Result<_, _>>().map_err(map_err)?, total))
}

fn state_list(states: &[CardState]) -> String {
    states
        .iter()
        .map(|s| format!("'{}'", s.code()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn insert_audit(conn: &Connection, entry: &AuditEntry, n_affected: i64) -> rusqlite::Result<i64> {
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

fn expect_one(n: usize) -> StoreResult<()> {
    if n == 1 {
        Ok(())
    } else {
        Err(StoreError::NotFound)
    }
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn create_merchant(&self, name: &str, now: i64) -> StoreResult<Merchant> {
        let name = name.to_owned();
        self.write(move |conn| {
            let merchant = conn
                .query_row(
                    &format!("INSERT INTO merchants (name, created_at) VALUES (?1, ?2) RETURNING {MERCHANT_COLUMNS}"),
                    params![name, now],
                    merchant_from_row,
                )
                .map_err(map_err)?;
            for (role_name, label, permissions) in builtin_roles() {
                conn.execute(
                    "INSERT INTO roles (merchant_id, name, label, permissions) VALUES (?1, ?2, ?3, ?4)",
                    params![merchant.id, role_name, label, Permission::encode_set(&permissions)],
                )
                .map_err(map_err)?;
            }
            for kind in kaquan_core::ledger::AccountKind::MERCHANT_SIDE {
                conn.execute(
                    "INSERT INTO ledger_accounts (merchant_id, kind, asset) VALUES (?1, ?2, ?3)",
                    params![merchant.id, kind.code(), kaquan_core::ledger::ASSET_FEN],
                )
                .map_err(map_err)?;
            }
            Ok(merchant)
        })
        .await
    }

    async fn list_merchants(&self) -> StoreResult<Vec<Merchant>> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT {MERCHANT_COLUMNS} FROM merchants ORDER BY id"
                ))
                .map_err(map_err)?;
            let rows = stmt.query_map([], merchant_from_row).map_err(map_err)?;
            rows.collect::<Result<_, _>>().map_err(map_err)
        })
        .await
    }

    async fn get_merchant(&self, merchant_id: i64) -> StoreResult<Merchant> {
        self.read(move |conn| {
            conn.query_row(
                &format!("SELECT {MERCHANT_COLUMNS} FROM merchants WHERE id = ?1"),
                [merchant_id],
                merchant_from_row,
            )
            .map_err(map_err)
        })
        .await
    }

    async fn list_roles(&self, merchant_id: i64) -> StoreResult<Vec<Role>> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT {ROLE_COLUMNS} FROM roles WHERE merchant_id = ?1 ORDER BY id"
                ))
                .map_err(map_err)?;
            let rows = stmt
                .query_map([merchant_id], role_from_row)
                .map_err(map_err)?;
            rows.collect::<Result<_, _>>().map_err(map_err)
        })
        .await
    }

    async fn create_role(
        &self,
        merchant_id: i64,
        name: &str,
        label: &str,
        permissions: &[Permission],
    ) -> StoreResult<Role> {
        let (name, label, permissions) = (
            name.to_owned(),
            label.to_owned(),
            Permission::encode_set(permissions),
        );
        self.write(move |conn| {
            conn.query_row(
                &format!("INSERT INTO roles (merchant_id, name, label, permissions) VALUES (?1, ?2, ?3, ?4) RETURNING {ROLE_COLUMNS}"),
                params![merchant_id, name, label, permissions],
                role_from_row,
            )
            .map_err(map_err)
        })
        .await
    }

    async fn update_role(
        &self,
        merchant_id: i64,
        role_id: i64,
        label: &str,
        permissions: &[Permission],
    ) -> StoreResult<()> {
        let (label, permissions) = (label.to_owned(), Permission::encode_set(permissions));
        self.write(move |conn| {
            let n = conn
                .execute(
                    "UPDATE roles SET label = ?1, permissions = ?2 WHERE id = ?3 AND merchant_id = ?4",
                    params![label, permissions, role_id, merchant_id],
                )
                .map_err(map_err)?;
            expect_one(n)
        })
        .await
    }

    async fn create_staff(&self, staff: &NewStaff, now: i64) -> StoreResult<Staff> {
        let staff = staff.clone();
        self.write(move |conn| {
            conn.query_row(
                &format!(
                    "INSERT INTO staff (merchant_id, username, name, phone, role_id, password_hash, created_at) \
                     SELECT ?1, ?2, ?3, ?4, id, ?6, ?7 FROM roles WHERE id = ?5 AND merchant_id = ?1 \
                     RETURNING {STAFF_COLUMNS}"
                ),
                params![staff.merchant_id, staff.username, staff.name, staff.phone, staff.role_id, staff.password_hash, now],
                staff_from_row,
            )
            .map_err(map_err)
        })
        .await
    }

    async fn update_staff(
        &self,
        merchant_id: i64,
        staff_id: i64,
        update: &StaffUpdate,
    ) -> StoreResult<()> {
        let update = update.clone();
        self.write(move |conn| {
            if let Some(role_id) = update.role_id {
                let n: i64 = conn
                    .query_row("SELECT count(*) FROM roles WHERE id = ?1 AND merchant_id = ?2", params![role_id, merchant_id], |r| {
                        r.get(0)
                    })
                    .map_err(map_err)?;
                if n != 1 {
                    return Err(StoreError::NotFound);
                }
            }
            let n = conn
                .execute(
                    "UPDATE staff SET name = COALESCE(?1, name), phone = COALESCE(?2, phone), role_id = COALESCE(?3, role_id), \
                     password_hash = COALESCE(?4, password_hash), disabled = COALESCE(?5, disabled), \
                     failed_logins = CASE WHEN ?4 IS NULL THEN failed_logins ELSE 0 END, \
                     locked_until = CASE WHEN ?4 IS NULL THEN locked_until ELSE NULL END \
                     WHERE id = ?6 AND merchant_id = ?7",
                    params![update.name, update.phone, update.role_id, update.password_hash, update.disabled, staff_id, merchant_id],
                )
                .map_err(map_err)?;
            if update.disabled == Some(true) || update.password_hash.is_some() {
                conn.execute("DELETE FROM sessions WHERE staff_id = ?1", [staff_id]).map_err(map_err)?;
            }
            expect_one(n)
        })
        .await
    }

    async fn list_staff(&self, merchant_id: i64) -> StoreResult<Vec<Staff>> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT {STAFF_COLUMNS} FROM staff WHERE merchant_id = ?1 ORDER BY id"
                ))
                .map_err(map_err)?;
            let rows = stmt
                .query_map([merchant_id], staff_from_row)
                .map_err(map_err)?;
            rows.collect::<Result<_, _>>().map_err(map_err)
        })
        .await
    }

    async fn get_staff(&self, staff_id: i64) -> StoreResult<Staff> {
        self.read(move |conn| {
            conn.query_row(
                &format!("SELECT {STAFF_COLUMNS} FROM staff WHERE id = ?1"),
                [staff_id],
                staff_from_row,
            )
            .map_err(map_err)
        })
        .await
    }

    async fn find_staff_by_username(&self, username: &str) -> StoreResult<Option<Staff>> {
        let username = username.to_owned();
        self.read(move |conn| {
            conn.query_row(
                &format!("SELECT {STAFF_COLUMNS} FROM staff WHERE username = ?1"),
                [username],
                staff_from_row,
            )
            .optional()
            .map_err(map_err)
        })
        .await
    }

    async fn record_login(
        &self,
        staff_id: i64,
        success: bool,
        locked_until: Option<i64>,
    ) -> StoreResult<i64> {
        self.write(move |conn| {
            let sql = if success {
                "UPDATE staff SET failed_logins = 0, locked_until = NULL WHERE id = ?1 RETURNING failed_logins"
            } else {
                "UPDATE staff SET failed_logins = failed_logins + 1, locked_until = COALESCE(?2, locked_until) \
                 WHERE id = ?1 RETURNING failed_logins"
            };
            let mut stmt = conn.prepare(sql).map_err(map_err)?;
            let values: Vec<Value> = if success {
                vec![Value::Integer(staff_id)]
            } else {
                vec![Value::Integer(staff_id), locked_until.map_or(Value::Null, Value::Integer)]
            };
            stmt.query_row(params_from_iter(values), |r| r.get(0)).map_err(map_err)
        })
        .await
    }

    async fn create_session(&self, session: &Session) -> StoreResult<()> {
        let s = session.clone();
        self.write(move |conn| {
            conn.execute("DELETE FROM sessions WHERE expires_at < ?1", [s.expires_at - 86_400 * 30]).map_err(map_err)?;
            conn.execute(
                "INSERT INTO sessions (token_hash, staff_id, merchant_id, csrf_token, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![s.token_hash, s.staff_id, s.merchant_id, s.csrf_token, s.expires_at],
            )
            .map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn find_session(&self, token_hash: &str, now: i64) -> StoreResult<Option<Session>> {
        let token_hash = token_hash.to_owned();
        self.read(move |conn| {
            conn.query_row(
                "SELECT token_hash, staff_id, merchant_id, csrf_token, expires_at FROM sessions \
                 WHERE token_hash = ?1 AND expires_at > ?2",
                params![token_hash, now],
                |r| {
                    Ok(Session {
                        token_hash: r.get(0)?,
                        staff_id: r.get(1)?,
                        merchant_id: r.get(2)?,
                        csrf_token: r.get(3)?,
                        expires_at: r.get(4)?,
                    })
                },
            )
            .optional()
            .map_err(map_err)
        })
        .await
    }

    async fn delete_session(&self, token_hash: &str) -> StoreResult<()> {
        let token_hash = token_hash.to_owned();
        self.write(move |conn| {
            conn.execute("DELETE FROM sessions WHERE token_hash = ?1", [&token_hash])
                .map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn create_distributor(
        &self,
        merchant_id: i64,
        fields: &DistributorFields,
    ) -> StoreResult<Distributor> {
        let f = fields.clone();
        self.write(move |conn| {
            let id: i64 = conn
                .query_row(
                    "INSERT INTO distributors (merchant_id, name, contact, phone, remark) VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
                    params![merchant_id, f.name, f.contact, f.phone, f.remark],
                    |r| r.get(0),
                )
                .map_err(map_err)?;
            Ok(Distributor { id, merchant_id, name: f.name.clone(), contact: f.contact.clone(), phone: f.phone.clone(), remark: f.remark.clone(), n_cards: 0 })
        })
        .await
    }

    async fn update_distributor(
        &self,
        merchant_id: i64,
        distributor_id: i64,
        fields: &DistributorFields,
    ) -> StoreResult<()> {
        let f = fields.clone();
        self.write(move |conn| {
            let n = conn
                .execute(
                    "UPDATE distributors SET name = ?1, contact = ?2, phone = ?3, remark = ?4 WHERE id = ?5 AND merchant_id = ?6",
                    params![f.name, f.contact, f.phone, f.remark, distributor_id, merchant_id],
                )
                .map_err(map_err)?;
            expect_one(n)
        })
        .await
    }

    async fn list_distributors(&self, merchant_id: i64) -> StoreResult<Vec<Distributor>> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare(
                    "SELECT d.id, d.merchant_id, d.name, d.contact, d.phone, d.remark, \
                     (SELECT count(*) FROM cards WHERE cards.distributor_id = d.id) \
                     FROM distributors d WHERE d.merchant_id = ?1 ORDER BY d.id",
                )
                .map_err(map_err)?;
            let rows = stmt
                .query_map([merchant_id], |r| {
                    Ok(Distributor {
                        id: r.get(0)?,
                        merchant_id: r.get(1)?,
                        name: r.get(2)?,
                        contact: r.get(3)?,
                        phone: r.get(4)?,
                        remark: r.get(5)?,
                        n_cards: r.get(6)?,
                    })
                })
                .map_err(map_err)?;
            rows.collect::<Result<_, _>>().map_err(map_err)
        })
        .await
    }

    async fn create_batch(&self, b: &NewBatch) -> StoreResult<Batch> {
        let b = b.clone();
        self.write(move |conn| {
            let serial_first: i64 = conn
                .query_row(
                    "UPDATE merchants SET next_serial = next_serial + ?1 WHERE id = ?2 RETURNING next_serial - ?1",
                    params![b.quantity, b.merchant_id],
                    |r| r.get(0),
                )
                .map_err(map_err)?;
            conn.query_row(
                &format!(
                    "INSERT INTO batches (merchant_id, name, source, prefix, number_length, numbering, start_number, \
                     password_length, password_charset, quantity, face_value_fen, valid_from, valid_until, remark, state, \
                     serial_first, created_by, created_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, 'generating', ?15, ?16, ?17) \
                     RETURNING {BATCH_COLUMNS}"
                ),
                params![
                    b.merchant_id,
                    b.name,
                    b.source.code(),
                    b.prefix,
                    b.number_length,
                    b.numbering.code(),
                    b.start_number,
                    b.password_length,
                    b.password_charset.code(),
                    b.quantity,
                    b.face_value_fen,
                    b.valid_from,
                    b.valid_until,
                    b.remark,
                    serial_first,
                    b.created_by,
                    b.created_at
                ],
                batch_from_row,
            )
            .map_err(map_err)
        })
        .await
    }

    async fn fill_batch(
        &self,
        merchant_id: i64,
        batch_id: i64,
        mut source: Box<dyn CardSource>,
        audit: &AuditEntry,
        after: &AfterFill,
        now: i64,
    ) -> StoreResult<i64> {
        let (audit, after) = (audit.clone(), after.clone());
        self.write(move |conn| {
            let (face_value_fen, valid_from, valid_until, remark, key_version): (Option<i64>, Option<i64>, Option<i64>, String, i32) = conn
                .query_row(
                    "SELECT b.face_value_fen, b.valid_from, b.valid_until, b.remark, m.key_version \
                     FROM batches b JOIN merchants m ON m.id = b.merchant_id \
                     WHERE b.id = ?1 AND b.merchant_id = ?2 AND b.state = 'generating'",
                    params![batch_id, merchant_id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
                )
                .map_err(map_err)?;
            let mut insert = conn
                .prepare_cached(
                    "INSERT INTO cards (merchant_id, batch_id, serial, number, secret_digest, secret_sealed, key_version, \
                     state, face_value_fen, valid_from, valid_until, remark, created_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'inactive', ?8, ?9, ?10, ?11, ?12)",
                )
                .map_err(map_err)?;
            let mut n_cards = 0i64;
            loop {
                let chunk = source.next_chunk();
                if chunk.is_empty() {
                    break;
                }
                for card in &chunk {
                    insert
                        .execute(params![
                            merchant_id,
                            batch_id,
                            card.serial,
                            card.number,
                            &card.secret_digest[..],
                            card.secret_sealed,
                            key_version,
                            face_value_fen,
                            valid_from,
                            valid_until,
                            remark,
                            now
                        ])
                        .map_err(map_err)?;
                }
                n_cards += chunk.len() as i64;
            }
            let n = conn
                .execute(
                    "UPDATE batches SET state = 'ready', completed_at = ?1 WHERE id = ?2 AND state = 'generating'",
                    params![now, batch_id],
                )
                .map_err(map_err)?;
            expect_one(n)?;
            insert_audit(conn, &audit, n_cards).map_err(map_err)?;
            for goods_id in &after.goods_ids {
                let owned: i64 = conn
                    .query_row("SELECT count(*) FROM goods WHERE id = ?1 AND merchant_id = ?2", params![goods_id, merchant_id], |r| r.get(0))
                    .map_err(map_err)?;
                if owned != 1 {
                    return Err(StoreError::NotFound);
                }
                conn.execute(
                    "INSERT OR IGNORE INTO card_goods (card_id, goods_id) SELECT id, ?1 FROM cards WHERE batch_id = ?2",
                    params![goods_id, batch_id],
                )
                .map_err(map_err)?;
            }
            if !after.goods_ids.is_empty() {
                let link = AuditEntry { action: "link_goods".into(), detail: format!("goods={:?}", after.goods_ids), ..audit.clone() };
                insert_audit(conn, &link, n_cards).map_err(map_err)?;
            }
            if after.activate {
                conn.execute(
                    "UPDATE cards SET state = 'active', activated_at = ?1 WHERE batch_id = ?2 AND state = 'inactive'",
                    params![now, batch_id],
                )
                .map_err(map_err)?;
                let activation = AuditEntry { action: "activate_cards".into(), detail: "生成后立即激活".into(), ..audit.clone() };
                insert_audit(conn, &activation, n_cards).map_err(map_err)?;
            }
            Ok(n_cards)
        })
        .await
    }

    async fn fail_batch(&self, batch_id: i64, error: &str) -> StoreResult<()> {
        let error = error.to_owned();
        self.write(move |conn| {
            conn.execute("UPDATE batches SET state = 'failed', error = ?1 WHERE id = ?2 AND state = 'generating'", params![error, batch_id])
                .map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn fail_interrupted_batches(&self) -> StoreResult<u64> {
        self.write(|conn| {
            let n = conn
                .execute("UPDATE batches SET state = 'failed', error = '生成被中断（进程退出）' WHERE state = 'generating'", [])
                .map_err(map_err)?;
            Ok(n as u64)
        })
        .await
    }

    async fn get_batch(&self, merchant_id: i64, batch_id: i64) -> StoreResult<Batch> {
        self.read(move |conn| {
            conn.query_row(
                &format!("SELECT {BATCH_COLUMNS} FROM batches WHERE id = ?1 AND merchant_id = ?2"),
                params![batch_id, merchant_id],
                batch_from_row,
            )
            .map_err(map_err)
        })
        .await
    }

    async fn list_batches(&self, merchant_id: i64, page: Page) -> StoreResult<(Vec<Batch>, i64)> {
        self.read(move |conn| {
            merchant_page(
                conn,
                "batches",
                BATCH_COLUMNS,
                merchant_id,
                page,
                batch_from_row,
            )
        })
        .await
    }

    async fn numbers_with_prefix(
        &self,
        merchant_id: i64,
        prefix: &str,
    ) -> StoreResult<Vec<String>> {
        let prefix = prefix.to_owned();
        self.read(move |conn| {
            let mut stmt = conn
                .prepare("SELECT number FROM cards WHERE merchant_id = ?1 AND substr(number, 1, length(?2)) = ?2")
                .map_err(map_err)?;
            let rows = stmt.query_map(params![merchant_id, prefix], |r| r.get(0)).map_err(map_err)?;
            rows.collect::<Result<_, _>>().map_err(map_err)
        })
        .await
    }

    async fn find_taken_numbers(
        &self,
        merchant_id: i64,
        numbers: &[String],
    ) -> StoreResult<Vec<String>> {
        let numbers = numbers.to_vec();
        self.read(move |conn| {
            let mut taken = Vec::new();
            for chunk in numbers.chunks(LOOKUP_CHUNK) {
                let marks = vec!["?"; chunk.len()].join(",");
                let mut stmt = conn
                    .prepare(&format!(
                        "SELECT number FROM cards WHERE merchant_id = ? AND number IN ({marks})"
                    ))
                    .map_err(map_err)?;
                let values = std::iter::once(Value::Integer(merchant_id))
                    .chain(chunk.iter().map(|n| Value::Text(n.clone())));
                let rows = stmt
                    .query_map(params_from_iter(values), |r| r.get::<_, String>(0))
                    .map_err(map_err)?;
                for row in rows {
                    taken.push(row.map_err(map_err)?);
                }
            }
            Ok(taken)
        })
        .await
    }

    async fn list_cards(
        &self,
        merchant_id: i64,
        filter: &CardFilter,
        page: Page,
    ) -> StoreResult<Vec<Card>> {
        let (condition, mut values) = card_filter_sql(merchant_id, filter);
        values.push(Value::Integer(page.page_size));
        values.push(Value::Integer(page.offset()));
        self.read(move |conn| {
            let mut stmt = conn
                .prepare(&format!("SELECT {CARD_COLUMNS} FROM {CARD_FROM} WHERE {condition} ORDER BY cards.serial LIMIT ? OFFSET ?"))
                .map_err(map_err)?;
            let rows = stmt.query_map(params_from_iter(values), card_from_row).map_err(map_err)?;
            rows.collect::<Result<_, _>>().map_err(map_err)
        })
        .await
    }

    async fn count_cards(&self, merchant_id: i64, filter: &CardFilter) -> StoreResult<i64> {
        let (condition, values) = card_filter_sql(merchant_id, filter);
        self.read(move |conn| {
            conn.query_row(
                &format!("SELECT count(*) FROM cards WHERE {condition}"),
                params_from_iter(values),
                |r| r.get(0),
            )
            .map_err(map_err)
        })
        .await
    }

    async fn cards_after(
        &self,
        merchant_id: i64,
        filter: &CardFilter,
        after_serial: i64,
        limit: i64,
    ) -> StoreResult<Vec<CardWithSecret>> {
        let (condition, mut values) = card_filter_sql(merchant_id, filter);
        values.push(Value::Integer(after_serial));
        values.push(Value::Integer(limit));
        self.read(move |conn| {
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT {CARD_COLUMNS}, cards.secret_sealed, cards.key_version FROM {CARD_FROM} \
                     WHERE {condition} AND cards.serial > ? ORDER BY cards.serial LIMIT ?"
                ))
                .map_err(map_err)?;
            let rows = stmt
                .query_map(params_from_iter(values), |r| {
                    Ok(CardWithSecret { card: card_from_row(r)?, secret_sealed: r.get(16)?, key_version: r.get(17)? })
                })
                .map_err(map_err)?;
            rows.collect::<Result<_, _>>().map_err(map_err)
        })
        .await
    }

    async fn get_card_by_number(
        &self,
        merchant_id: i64,
        number: &str,
    ) -> StoreResult<Option<Card>> {
        let number = number.to_owned();
        self.read(move |conn| {
            conn.query_row(
                &format!("SELECT {CARD_COLUMNS} FROM {CARD_FROM} WHERE cards.merchant_id = ?1 AND cards.number = ?2"),
                params![merchant_id, number],
                card_from_row,
            )
            .optional()
            .map_err(map_err)
        })
        .await
    }

    async fn apply_card_op(
        &self,
        merchant_id: i64,
        filter: &CardFilter,
        op: CardOp,
        audit: &AuditEntry,
    ) -> StoreResult<i64> {
        let (condition, values) = card_filter_sql(merchant_id, filter);
        let audit = audit.clone();
        let guard = format!(
            "{condition} AND cards.state IN ({})",
            state_list(op.from_states())
        );
        self.write(move |conn| {
            let now = Value::Integer(audit.created_at);
            let n = match op.to_state() {
                Some(to) => {
                    let (set, binds_now) = match op {
                        CardOp::Activate => ("activated_at = ?", true),
                        CardOp::Deactivate => ("activated_at = NULL", false),
                        CardOp::Void => ("voided_at = ?", true),
                        CardOp::Restore => ("voided_at = NULL, activated_at = NULL", false),
                        CardOp::Delete => unreachable!("delete has no target state"),
                    };
                    let bound = binds_now.then_some(now).into_iter().chain(values.iter().cloned());
                    conn.execute(&format!("UPDATE cards SET state = '{}', {set} WHERE {guard}", to.code()), params_from_iter(bound))
                        .map_err(map_err)? as i64
                }
                None => {
                    let audit_id = insert_audit(conn, &audit, 0).map_err(map_err)?;
                    let mut bound = vec![Value::Integer(audit_id)];
                    bound.extend(values.iter().cloned());
                    let kept = conn
                        .execute(
                            &format!(
                                "INSERT INTO deleted_cards (audit_id, merchant_id, batch_id, serial, number) \
                                 SELECT ?, merchant_id, batch_id, serial, number FROM cards WHERE {guard}"
                            ),
                            params_from_iter(bound),
                        )
                        .map_err(map_err)?;
                    let deleted = conn.execute(&format!("DELETE FROM cards WHERE {guard}"), params_from_iter(values.iter())).map_err(map_err)?;
                    assert_eq!(kept, deleted, "every deleted card is recorded");
                    conn.execute("UPDATE audit_log SET n_affected = ?1 WHERE id = ?2", params![deleted as i64, audit_id])
                        .map_err(map_err)?;
                    return Ok(deleted as i64);
                }
            };
            insert_audit(conn, &audit, n).map_err(map_err)?;
            Ok(n)
        })
        .await
    }

    async fn edit_cards(
        &self,
        merchant_id: i64,
        filter: &CardFilter,
        edit: &CardEdit,
        audit: &AuditEntry,
    ) -> StoreResult<i64> {
        let (condition, values) = card_filter_sql(merchant_id, filter);
        let (edit, audit) = (edit.clone(), audit.clone());
        self.write(move |conn| {
            if let Some(Some(distributor_id)) = edit.distributor_id {
                let n: i64 = conn
                    .query_row(
                        "SELECT count(*) FROM distributors WHERE id = ?1 AND merchant_id = ?2",
                        params![distributor_id, merchant_id],
                        |r| r.get(0),
                    )
                    .map_err(map_err)?;
                if n != 1 {
                    return Err(StoreError::NotFound);
                }
            }
            let mut sets = Vec::new();
            let mut bound = Vec::new();
            let opt = |v: Option<i64>| v.map_or(Value::Null, Value::Integer);
            if let Some(v) = edit.face_value_fen {
                sets.push("face_value_fen = ?");
                bound.push(opt(v));
            }
            if let Some(v) = edit.valid_from {
                sets.push("valid_from = ?");
                bound.push(opt(v));
            }
            if let Some(v) = edit.valid_until {
                sets.push("valid_until = ?");
                bound.push(opt(v));
            }
            if let Some(v) = &edit.remark {
                sets.push("remark = ?");
                bound.push(Value::Text(v.clone()));
            }
            if let Some(v) = edit.distributor_id {
                sets.push("distributor_id = ?");
                bound.push(opt(v));
            }
            if sets.is_empty() {
                return Err(StoreError::Invalid("no field chosen".into()));
            }
            bound.extend(values.iter().cloned());
            let n = conn
                .execute(
                    &format!("UPDATE cards SET {} WHERE {condition}", sets.join(", ")),
                    params_from_iter(bound),
                )
                .map_err(map_err)? as i64;
            insert_audit(conn, &audit, n).map_err(map_err)?;
            Ok(n)
        })
        .await
    }

    async fn purge_card_secrets(
        &self,
        merchant_id: i64,
        filter: &CardFilter,
        audit: &AuditEntry,
    ) -> StoreResult<i64> {
        let (condition, values) = card_filter_sql(merchant_id, filter);
        let audit = audit.clone();
        self.write(move |conn| {
            let n = conn
                .execute(
                    &format!("UPDATE cards SET secret_sealed = NULL WHERE {condition} AND cards.secret_sealed IS NOT NULL"),
                    params_from_iter(values.iter()),
                )
                .map_err(map_err)? as i64;
            insert_audit(conn, &audit, n).map_err(map_err)?;
            Ok(n)
        })
        .await
    }

    async fn create_goods(
        &self,
        merchant_id: i64,
        f: &GoodsFields,
        now: i64,
    ) -> StoreResult<Goods> {
        let f = f.clone();
        self.write(move |conn| {
            let id: i64 = conn
                .query_row(
                    "INSERT INTO goods (merchant_id, name, description, sku, erp_code, attributes, on_shelf, created_at, updated_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8) RETURNING id",
                    params![merchant_id, f.name, f.description, f.sku, f.erp_code, f.attributes, f.on_shelf, now],
                    |r| r.get(0),
                )
                .map_err(map_err)?;
            Ok(Goods {
                id,
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
        })
        .await
    }

    async fn update_goods(
        &self,
        merchant_id: i64,
        goods_id: i64,
        f: &GoodsFields,
        now: i64,
    ) -> StoreResult<()> {
        let f = f.clone();
        self.write(move |conn| {
            let n = conn
                .execute(
                    "UPDATE goods SET name = ?1, description = ?2, sku = ?3, erp_code = ?4, attributes = ?5, on_shelf = ?6, \
                     updated_at = ?7 WHERE id = ?8 AND merchant_id = ?9",
                    params![f.name, f.description, f.sku, f.erp_code, f.attributes, f.on_shelf, now, goods_id, merchant_id],
                )
                .map_err(map_err)?;
            expect_one(n)
        })
        .await
    }

    async fn list_goods(&self, merchant_id: i64, on_shelf_only: bool) -> StoreResult<Vec<Goods>> {
        self.read(move |conn| {
            let shelf = if on_shelf_only { " AND goods.on_shelf = 1" } else { "" };
            let sql = format!("SELECT {GOODS_COLUMNS} FROM goods WHERE goods.merchant_id = ?1{shelf} ORDER BY goods.id");
            query_goods(conn, merchant_id, &sql, vec![Value::Integer(merchant_id)])
        })
        .await
    }

    async fn get_goods(&self, merchant_id: i64, goods_id: i64) -> StoreResult<Goods> {
        self.read(move |conn| {
            let sql = format!(
                "SELECT {GOODS_COLUMNS} FROM goods WHERE goods.merchant_id = ?1 AND goods.id = ?2"
            );
            query_goods(
                conn,
                merchant_id,
                &sql,
                vec![Value::Integer(merchant_id), Value::Integer(goods_id)],
            )?
            .pop()
            .ok_or(StoreError::NotFound)
        })
        .await
    }

    async fn add_goods_image(
        &self,
        merchant_id: i64,
        goods_id: i64,
        content_type: &str,
        bytes: &[u8],
        now: i64,
    ) -> StoreResult<i64> {
        let (content_type, bytes) = (content_type.to_owned(), bytes.to_vec());
        self.write(move |conn| {
            let n: i64 = conn
                .query_row(
                    "SELECT (SELECT count(*) FROM goods WHERE id = ?1 AND merchant_id = ?2), \
                     (SELECT count(*) FROM goods_images WHERE goods_id = ?1)",
                    params![goods_id, merchant_id],
                    |r| {
                        let exists: i64 = r.get(0)?;
                        let images: i64 = r.get(1)?;
                        Ok(if exists == 1 { images } else { -1 })
                    },
                )
                .map_err(map_err)?;
            if n < 0 {
                return Err(StoreError::NotFound);
            }
            if n as usize >= kaquan_core::goods::GOODS_IMAGES_MAX {
                return Err(StoreError::Invalid("too many images".into()));
            }
            conn.query_row(
                "INSERT INTO goods_images (merchant_id, goods_id, content_type, bytes, created_at) VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
                params![merchant_id, goods_id, content_type, bytes, now],
                |r| r.get(0),
            )
            .map_err(map_err)
        })
        .await
    }

    async fn delete_goods_image(
        &self,
        merchant_id: i64,
        goods_id: i64,
        image_id: i64,
    ) -> StoreResult<()> {
        self.write(move |conn| {
            let n = conn
                .execute(
                    "DELETE FROM goods_images WHERE id = ?1 AND goods_id = ?2 AND merchant_id = ?3",
                    params![image_id, goods_id, merchant_id],
                )
                .map_err(map_err)?;
            expect_one(n)
        })
        .await
    }

    async fn get_goods_image(
        &self,
        merchant_id: i64,
        image_id: i64,
    ) -> StoreResult<(String, Vec<u8>)> {
        self.read(move |conn| {
            conn.query_row(
                "SELECT content_type, bytes FROM goods_images WHERE id = ?1 AND merchant_id = ?2",
                params![image_id, merchant_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(map_err)
        })
        .await
    }

    async fn link_card_goods(
        &self,
        merchant_id: i64,
        filter: &CardFilter,
        goods_ids: &[i64],
        mode: GoodsLinkMode,
        audit: &AuditEntry,
    ) -> StoreResult<i64> {
        let (condition, values) = card_filter_sql(merchant_id, filter);
        let mut goods_ids = goods_ids.to_vec();
        goods_ids.sort_unstable();
        goods_ids.dedup();
        let audit = audit.clone();
        self.write(move |conn| {
            for goods_id in &goods_ids {
                let n: i64 = conn
                    .query_row("SELECT count(*) FROM goods WHERE id = ?1 AND merchant_id = ?2", params![goods_id, merchant_id], |r| r.get(0))
                    .map_err(map_err)?;
                if n != 1 {
                    return Err(StoreError::NotFound);
                }
            }
            let n_cards: i64 = conn
                .query_row(&format!("SELECT count(*) FROM cards WHERE {condition}"), params_from_iter(values.clone()), |r| r.get(0))
                .map_err(map_err)?;
            if mode == GoodsLinkMode::Replace {
                conn.execute(
                    &format!("DELETE FROM card_goods WHERE card_id IN (SELECT cards.id FROM cards WHERE {condition})"),
                    params_from_iter(values.clone()),
                )
                .map_err(map_err)?;
            }
            for goods_id in &goods_ids {
                let bound = std::iter::once(Value::Integer(*goods_id)).chain(values.iter().cloned());
                conn.execute(
                    &format!("INSERT OR IGNORE INTO card_goods (card_id, goods_id) SELECT cards.id, ? FROM cards WHERE {condition}"),
                    params_from_iter(bound),
                )
                .map_err(map_err)?;
            }
            let overfull: i64 = conn
                .query_row(
                    &format!(
                        "SELECT count(*) FROM (SELECT card_id FROM card_goods WHERE card_id IN \
                         (SELECT cards.id FROM cards WHERE {condition}) GROUP BY card_id HAVING count(*) > {GOODS_PER_CARD_MAX})"
                    ),
                    params_from_iter(values.iter()),
                    |r| r.get(0),
                )
                .map_err(map_err)?;
            if overfull > 0 {
                return Err(StoreError::Invalid(format!("a card may be linked to at most {GOODS_PER_CARD_MAX} goods")));
            }
            insert_audit(conn, &audit, n_cards).map_err(map_err)?;
            Ok(n_cards)
        })
        .await
    }

    async fn goods_of_card(&self, merchant_id: i64, card_id: i64) -> StoreResult<Vec<Goods>> {
        self.read(move |conn| {
            let sql = format!(
                "SELECT {GOODS_COLUMNS} FROM goods JOIN card_goods ON card_goods.goods_id = goods.id \
                 WHERE goods.merchant_id = ?1 AND card_goods.card_id = ?2 ORDER BY goods.id"
            );
            query_goods(conn, merchant_id, &sql, vec![Value::Integer(merchant_id), Value::Integer(card_id)])
        })
        .await
    }

    async fn card_for_check(
        &self,
        merchant_id: i64,
        number: &str,
    ) -> StoreResult<Option<CardSecret>> {
        let number = number.trim().to_ascii_uppercase();
        self.read(move |conn| {
            conn.query_row(
                &format!(
                    "SELECT {CARD_COLUMNS}, cards.secret_digest, cards.key_version FROM {CARD_FROM} \
                     WHERE cards.merchant_id = ?1 AND cards.number = ?2"
                ),
                params![merchant_id, number],
                |r| Ok(CardSecret { card: card_from_row(r)?, secret_digest: r.get(16)?, key_version: r.get(17)? }),
            )
            .optional()
            .map_err(map_err)
        })
        .await
    }

    async fn redeem_pickup(&self, order: &NewOrder, audit: &AuditEntry) -> StoreResult<Order> {
        let (order, audit) = (order.clone(), audit.clone());
        self.write(move |conn| {
            let goods_name: String = conn
                .query_row(
                    "SELECT goods.name FROM card_goods JOIN goods ON goods.id = card_goods.goods_id \
                     WHERE card_goods.card_id = ?1 AND card_goods.goods_id = ?2 AND goods.merchant_id = ?3 AND goods.on_shelf = 1",
                    params![order.card_id, order.goods_id, order.merchant_id],
                    |r| r.get(0),
                )
                .optional()
                .map_err(map_err)?
                .ok_or(StoreError::NotFound)?;
            let used: Option<(String, i64)> = conn
                .query_row(
                    "UPDATE cards SET state = 'used', used_at = ?1 \
                     WHERE id = ?2 AND merchant_id = ?3 AND state = 'active' \
                     AND (valid_from IS NULL OR valid_from <= ?1) AND (valid_until IS NULL OR valid_until >= ?1) \
                     RETURNING number, batch_id",
                    params![order.created_at, order.card_id, order.merchant_id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(map_err)?;
            let Some((card_number, batch_id)) = used else {
                return Err(StoreError::Conflict("card is not usable".into()));
            };
            let status = if order.channel == Channel::Store { OrderStatus::PickedUp } else { OrderStatus::Pending };
            let c = order.consignee.clone().unwrap_or_default();
            let created = conn
                .query_row(
                    &format!(
                        "INSERT INTO orders (merchant_id, card_id, card_number, batch_id, goods_id, goods_name, channel, status, \
                         consignee, phone, province, city, district, address, appointment_date, created_by, created_at) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17) RETURNING {ORDER_COLUMNS}"
                    ),
                    params![
                        order.merchant_id,
                        order.card_id,
                        card_number,
                        batch_id,
                        order.goods_id,
                        goods_name,
                        order.channel.code(),
                        status.code(),
                        c.name,
                        c.phone,
                        c.province,
                        c.city,
                        c.district,
                        c.address,
                        order.appointment_date,
                        order.created_by,
                        order.created_at
                    ],
                    order_from_row,
                )
                .map_err(map_err)?;
            let audit = AuditEntry { target: format!("order={} card={}", created.id, created.card_number), ..audit.clone() };
            insert_audit(conn, &audit, 1).map_err(map_err)?;
            Ok(created)
        })
        .await
    }

    async fn get_order(&self, merchant_id: i64, order_id: i64) -> StoreResult<Order> {
        self.read(move |conn| {
            conn.query_row(
                &format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = ?1 AND merchant_id = ?2"),
                params![order_id, merchant_id],
                order_from_row,
            )
            .map_err(map_err)
        })
        .await
    }

    async fn latest_order_of_card(
        &self,
        merchant_id: i64,
        card_id: i64,
    ) -> StoreResult<Option<Order>> {
        self.read(move |conn| {
            conn.query_row(
                &format!("SELECT {ORDER_COLUMNS} FROM orders WHERE merchant_id = ?1 AND card_id = ?2 ORDER BY id DESC LIMIT 1"),
                params![merchant_id, card_id],
                order_from_row,
            )
            .optional()
            .map_err(map_err)
        })
        .await
    }

    async fn list_orders(
        &self,
        merchant_id: i64,
        filter: &OrderFilter,
        page: Page,
    ) -> StoreResult<(Vec<Order>, i64)> {
        let (condition, values) = order_filter_sql(merchant_id, filter);
        self.read(move |conn| {
            let total: i64 = conn
                .query_row(&format!("SELECT count(*) FROM orders WHERE {condition}"), params_from_iter(values.clone()), |r| r.get(0))
                .map_err(map_err)?;
            let mut bound = values;
            bound.push(Value::Integer(page.page_size));
            bound.push(Value::Integer(page.offset()));
            let mut stmt = conn
                .prepare(&format!("SELECT {ORDER_COLUMNS} FROM orders WHERE {condition} ORDER BY id DESC LIMIT ? OFFSET ?"))
                .map_err(map_err)?;
            let rows = stmt.query_map(params_from_iter(bound), order_from_row).map_err(map_err)?;
            Ok((rows.collect::<Result<_, _>>().map_err(map_err)?, total))
        })
        .await
    }

    async fn orders_after(
        &self,
        merchant_id: i64,
        filter: &OrderFilter,
        after_id: i64,
        limit: i64,
    ) -> StoreResult<Vec<Order>> {
        let (condition, mut values) = order_filter_sql(merchant_id, filter);
        values.push(Value::Integer(after_id));
        values.push(Value::Integer(limit));
        self.read(move |conn| {
            let mut stmt = conn
                .prepare(&format!("SELECT {ORDER_COLUMNS} FROM orders WHERE {condition} AND id > ? ORDER BY id LIMIT ?"))
                .map_err(map_err)?;
            let rows = stmt.query_map(params_from_iter(values), order_from_row).map_err(map_err)?;
            rows.collect::<Result<_, _>>().map_err(map_err)
        })
        .await
    }

    async fn cancel_order(
        &self,
        merchant_id: i64,
        order_id: i64,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let audit = audit.clone();
        self.write(move |conn| {
            let card_id: Option<i64> = conn
                .query_row(
                    "UPDATE orders SET status = 'cancelled', cancelled_at = ?1 WHERE id = ?2 AND merchant_id = ?3 AND status = 'pending' \
                     RETURNING card_id",
                    params![audit.created_at, order_id, merchant_id],
                    |r| r.get(0),
                )
                .optional()
                .map_err(map_err)?;
            let Some(card_id) = card_id else {
                let exists: i64 = conn
                    .query_row("SELECT count(*) FROM orders WHERE id = ?1 AND merchant_id = ?2", params![order_id, merchant_id], |r| r.get(0))
                    .map_err(map_err)?;
                return Err(if exists == 1 { StoreError::Conflict("order is not pending".into()) } else { StoreError::NotFound });
            };
            let n = conn
                .execute(
                    "UPDATE cards SET state = 'active', used_at = NULL WHERE id = ?1 AND merchant_id = ?2 AND state = 'used'",
                    params![card_id, merchant_id],
                )
                .map_err(map_err)?;
            if n != 1 {
                return Err(StoreError::Conflict("the order's card is not used".into()));
            }
            insert_audit(conn, &audit, 1).map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn ship_orders(
        &self,
        merchant_id: i64,
        shipments: &[Shipment],
        now: i64,
        audit: &AuditEntry,
    ) -> StoreResult<i64> {
        let (shipments, audit) = (shipments.to_vec(), audit.clone());
        self.write(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "UPDATE orders SET status = 'shipped', carrier = ?1, tracking_number = ?2, shipped_at = ?3 \
                     WHERE id = ?4 AND merchant_id = ?5 AND status = 'pending'",
                )
                .map_err(map_err)?;
            for s in &shipments {
                let n = stmt.execute(params![s.carrier, s.tracking_number, now, s.order_id, merchant_id]).map_err(map_err)?;
                if n != 1 {
                    return Err(StoreError::Conflict(s.order_id.to_string()));
                }
            }
            insert_audit(conn, &audit, shipments.len() as i64).map_err(map_err)?;
            Ok(shipments.len() as i64)
        })
        .await
    }

    async fn oldest_failure(
        &self,
        merchant_id: i64,
        key: &str,
        since: i64,
    ) -> StoreResult<Option<i64>> {
        let key = key.to_owned();
        self.read(move |conn| {
            conn.query_row(
                "SELECT MIN(at) FROM attempt_failures WHERE merchant_id = ?1 AND key = ?2 AND at >= ?3",
                params![merchant_id, key, since],
                |r| r.get(0),
            )
            .map_err(map_err)
        })
        .await
    }

    async fn count_failures(&self, merchant_id: i64, key: &str, since: i64) -> StoreResult<i64> {
        let key = key.to_owned();
        self.read(move |conn| {
            conn.query_row(
                "SELECT count(*) FROM attempt_failures WHERE merchant_id = ?1 AND key = ?2 AND at >= ?3",
                params![merchant_id, key, since],
                |r| r.get(0),
            )
            .map_err(map_err)
        })
        .await
    }

    async fn clear_failures(&self, merchant_id: i64, key: &str) -> StoreResult<()> {
        let key = key.to_owned();
        self.write(move |conn| {
            conn.execute(
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
        self.write(move |conn| {
            conn.execute(
                "DELETE FROM attempt_failures WHERE merchant_id = ?1 AND key = ?2 AND at < ?3",
                params![merchant_id, key, now - ATTEMPT_FAILURES_KEPT_SECONDS],
            )
            .map_err(map_err)?;
            conn.execute(
                "INSERT INTO attempt_failures (merchant_id, key, at) VALUES (?1, ?2, ?3)",
                params![merchant_id, key, now],
            )
            .map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn get_pickup_settings(&self, merchant_id: i64) -> StoreResult<PickupSettings> {
        self.read(move |conn| {
            let row = conn
                .query_row(
                    "SELECT title, notice, enabled, closed_message, appointment_mode, appointment_min_days, appointment_from, \
                     appointment_until, blocked_dates, redirect_url, attempts_per_card, attempts_per_client \
                     FROM pickup_settings WHERE merchant_id = ?1",
                    [merchant_id],
                    |r| {
                        Ok((
                            (r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, bool>(2)?, r.get::<_, String>(3)?),
                            (r.get::<_, String>(4)?, r.get::<_, Option<i64>>(5)?, r.get::<_, Option<String>>(6)?, r.get::<_, Option<String>>(7)?),
                            (r.get::<_, String>(8)?, r.get::<_, Option<String>>(9)?, r.get::<_, i64>(10)?, r.get::<_, i64>(11)?),
                        ))
                    },
                )
                .optional()
                .map_err(map_err)?;
            let Some(((title, notice, enabled, closed_message), (mode, min_days, from, until), (blocked, redirect_url, per_card, per_client))) = row
            else {
                return Ok(PickupSettings::default());
            };
            Ok(PickupSettings {
                title,
                notice,
                enabled,
                closed_message,
                appointment: AppointmentMode::from_parts(&mode, min_days, from.as_deref(), until.as_deref()).map_err(StoreError::Backend)?,
                blocked_dates: parse_blocked_dates(&blocked).map_err(StoreError::Backend)?,
                redirect_url,
                attempts_per_card: per_card,
                attempts_per_client: per_client,
            })
        })
        .await
    }

    async fn put_pickup_settings(
        &self,
        merchant_id: i64,
        settings: &PickupSettings,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let (settings, audit) = (settings.clone(), audit.clone());
        self.write(move |conn| {
            let (mode, min_days, from, until) = settings.appointment.to_parts();
            conn.execute(
                "INSERT INTO pickup_settings (merchant_id, title, notice, enabled, closed_message, appointment_mode, appointment_min_days, \
                 appointment_from, appointment_until, blocked_dates, redirect_url, attempts_per_card, attempts_per_client, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14) \
                 ON CONFLICT (merchant_id) DO UPDATE SET title = excluded.title, notice = excluded.notice, enabled = excluded.enabled, \
                 closed_message = excluded.closed_message, appointment_mode = excluded.appointment_mode, \
                 appointment_min_days = excluded.appointment_min_days, appointment_from = excluded.appointment_from, \
                 appointment_until = excluded.appointment_until, blocked_dates = excluded.blocked_dates, \
                 redirect_url = excluded.redirect_url, attempts_per_card = excluded.attempts_per_card, \
                 attempts_per_client = excluded.attempts_per_client, updated_at = excluded.updated_at",
                params![
                    merchant_id,
                    settings.title,
                    settings.notice,
                    settings.enabled,
                    settings.closed_message,
                    mode,
                    min_days,
                    from,
                    until,
                    format_blocked_dates(&settings.blocked_dates),
                    settings.redirect_url,
                    settings.attempts_per_card,
                    settings.attempts_per_client,
                    audit.created_at
                ],
            )
            .map_err(map_err)?;
            insert_audit(conn, &audit, 1).map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn list_carriers(&self, merchant_id: i64) -> StoreResult<Vec<String>> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare("SELECT name FROM carriers WHERE merchant_id = ?1 ORDER BY name")
                .map_err(map_err)?;
            let rows = stmt
                .query_map([merchant_id], |r| r.get(0))
                .map_err(map_err)?;
            rows.collect::<Result<_, _>>().map_err(map_err)
        })
        .await
    }

    async fn add_carrier(&self, merchant_id: i64, name: &str) -> StoreResult<()> {
        let name = name.to_owned();
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO carriers (merchant_id, name) VALUES (?1, ?2)",
                params![merchant_id, name],
            )
            .map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn put_logo(
        &self,
        merchant_id: i64,
        content_type: &str,
        bytes: &[u8],
        now: i64,
    ) -> StoreResult<()> {
        let (content_type, bytes) = (content_type.to_owned(), bytes.to_vec());
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO merchant_logos (merchant_id, content_type, bytes, updated_at) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (merchant_id) DO UPDATE SET content_type = excluded.content_type, bytes = excluded.bytes, \
                 updated_at = excluded.updated_at",
                params![merchant_id, content_type, bytes, now],
            )
            .map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn logo_updated_at(&self, merchant_id: i64) -> StoreResult<Option<i64>> {
        self.read(move |conn| {
            conn.query_row(
                "SELECT updated_at FROM merchant_logos WHERE merchant_id = ?1",
                [merchant_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(map_err)
        })
        .await
    }

    async fn get_logo(&self, merchant_id: i64) -> StoreResult<Option<(String, Vec<u8>)>> {
        self.read(move |conn| {
            conn.query_row(
                "SELECT content_type, bytes FROM merchant_logos WHERE merchant_id = ?1",
                [merchant_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(map_err)
        })
        .await
    }

    async fn append_audit(&self, entry: &AuditEntry) -> StoreResult<()> {
        let entry = entry.clone();
        self.write(move |conn| {
            insert_audit(conn, &entry, entry.n_affected).map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn list_audit(
        &self,
        merchant_id: i64,
        page: Page,
    ) -> StoreResult<(Vec<AuditRecord>, i64)> {
        self.read(move |conn| {
            merchant_page(
                conn,
                "audit_log",
                AUDIT_COLUMNS,
                merchant_id,
                page,
                audit_from_row,
            )
        })
        .await
    }

    async fn list_deleted_numbers(
        &self,
        merchant_id: i64,
        audit_id: i64,
    ) -> StoreResult<Vec<String>> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare("SELECT number FROM deleted_cards WHERE audit_id = ?1 AND merchant_id = ?2 ORDER BY serial")
                .map_err(map_err)?;
            let rows = stmt.query_map(params![audit_id, merchant_id], |r| r.get(0)).map_err(map_err)?;
            rows.collect::<Result<_, _>>().map_err(map_err)
        })
        .await
    }

    async fn verify(&self) -> StoreResult<Vec<String>> {
        self.read(|conn| {
            let mut violations = Vec::new();
            let integrity: String = conn
                .query_row("PRAGMA integrity_check", [], |r| r.get(0))
                .map_err(map_err)?;
            if integrity != "ok" {
                violations.push(format!("sqlite integrity_check: {integrity}"));
            }
            for (description, sql) in INVARIANT_QUERIES
                .iter()
                .chain(stored_value::LEDGER_INVARIANT_QUERIES)
            {
                let n: i64 = conn.query_row(sql, [], |r| r.get(0)).map_err(map_err)?;
                if n != 0 {
                    violations.push(format!("{n} {description}"));
                }
            }
            Ok(violations)
        })
        .await
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
    ("active or used cards have no activation time", "SELECT count(*) FROM cards WHERE state IN ('active', 'used') AND activated_at IS NULL AND used_at IS NULL"),
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
    ("sessions belong to another merchant than their staff", "SELECT count(*) FROM sessions s JOIN staff t ON t.id = s.staff_id WHERE t.merchant_id <> s.merchant_id"),
];

#[cfg(test)]
mod tests {
    use super::*;

    /// Jobs that fail after writing (i % 10 == 3) or before (i % 10 == 5),
    /// sent together with jobs that succeed: the failed ones leave nothing,
    /// the others all commit, and every caller gets its own answer.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_job_leaves_nothing_and_spares_its_group() {
        let dir = test_dir("writer");
        let store = Arc::new(open(&dir.join("test.db"), OpenMode::CreateIfMissing).unwrap());
        store
            .write(|c| {
                c.execute_batch("CREATE TABLE t (v INTEGER NOT NULL)")
                    .map_err(map_err)
            })
            .await
            .unwrap();
        let tasks: Vec<_> = (0..300_i64)
            .map(|i| {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    store
                        .write(move |c| {
                            if i % 10 == 5 {
                                return Err(StoreError::Invalid("fails before writing".into()));
                            }
                            c.execute("INSERT INTO t (v) VALUES (?1)", [i])
                                .map_err(map_err)?;
                            if i % 10 == 3 {
                                return Err(StoreError::Invalid("fails after writing".into()));
                            }
                            Ok(i)
                        })
                        .await
                })
            })
            .collect();
        for (i, task) in (0..300_i64).zip(tasks) {
            let answer = task.await.unwrap();
            if i % 10 == 3 || i % 10 == 5 {
                assert!(matches!(answer, Err(StoreError::Invalid(_))), "job {i}");
            } else {
                assert_eq!(answer.unwrap(), i);
            }
        }
        let kept: Vec<i64> = store
            .read(|c| {
                c.prepare("SELECT v FROM t ORDER BY v")
                    .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
                    .map_err(map_err)
            })
            .await
            .unwrap();
        let expected: Vec<i64> = (0..300).filter(|i| i % 10 != 3 && i % 10 != 5).collect();
        assert_eq!(kept, expected);
    }

    /// A new, empty folder for one test's database, removed when the test
    /// ends (declared before the store, it outlives it).
    struct TestDir(PathBuf);

    impl std::ops::Deref for TestDir {
        type Target = Path;
        fn deref(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TestDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn test_dir(name: &str) -> TestDir {
        let dir = std::env::temp_dir().join(format!(
            "kaquan-{name}-{}",
            kaquan_core::secrets::random_token_hex(8)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TestDir(dir)
    }

    /// A database with the first `n` migrations applied.
    fn migrated_up_to(path: &Path, n: usize) -> Connection {
        let conn = Connection::open(path).unwrap();
        conn.execute_batch(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
        )
        .unwrap();
        for (idx, sql) in MIGRATIONS[..n].iter().enumerate() {
            conn.execute_batch(sql).unwrap();
            conn.execute(
                "INSERT INTO schema_migrations VALUES (?1, 0)",
                [idx as i64 + 1],
            )
            .unwrap();
        }
        conn
    }

    /// Migration 10 sets the nonces aside and the store carries them over
    /// as digests when it opens: a nonce seen before the upgrade is still
    /// refused after it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn nonces_seen_before_migration_10_stay_used() {
        use kaquan_core::ledger::NonceUse;
        let dir = test_dir("nonces");
        let path = dir.join("test.db");
        let seen = NonceUse {
            api_key_id: "kq_0123456789abcdef".into(),
            nonce: "0123456789abcdef0123".into(),
            signed_at: 1_800_000_000,
        };
        migrated_up_to(&path, 9)
            .execute(
                "INSERT INTO api_nonces (signed_at, key_id, nonce) VALUES (?1, ?2, ?3)",
                params![seen.signed_at, seen.api_key_id, seen.nonce],
            )
            .unwrap();
        let store = open(&path, OpenMode::MustExist).unwrap();
        assert!(matches!(
            store.record_nonce(&seen).await,
            Err(StoreError::Conflict(_))
        ));
        let other = NonceUse {
            nonce: "0123456789abcdef0124".into(),
            ..seen.clone()
        };
        store.record_nonce(&other).await.unwrap();
        let set_aside: i64 = store
            .read(|c| {
                c.query_row(
                    "SELECT count(*) FROM sqlite_schema WHERE name = 'api_nonces_before_10'",
                    [],
                    |r| r.get(0),
                )
                .map_err(map_err)
            })
            .await
            .unwrap();
        assert_eq!(set_aside, 0);
    }

    /// The writer decides from the nonces it keeps in memory (nonces.rs):
    /// those of the log from before migration 12, of an earlier run, and of
    /// another store on the same file are refused all the same, and a purge
    /// forgets the expired ones in memory and in the log.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn nonces_are_refused_across_upgrades_restarts_and_processes() {
        use kaquan_core::ledger::NonceUse;
        use kaquan_core::signing::NONCE_KEPT_SECONDS;
        let dir = test_dir("nonce-log");
        let path = dir.join("test.db");
        let nonce = |n: &str| NonceUse {
            api_key_id: "kq_0123456789abcdef".into(),
            nonce: n.into(),
            signed_at: 1_800_000_000,
        };
        let refused = |answer: StoreResult<()>| matches!(answer, Err(StoreError::Conflict(_)));
        let before_12 = nonce("before-12");
        migrated_up_to(&path, 11)
            .execute(
                "INSERT INTO api_nonces (signed_at, digest) VALUES (?1, ?2)",
                params![before_12.signed_at, before_12.digest()],
            )
            .unwrap();
        let a = open(&path, OpenMode::MustExist).unwrap();
        assert!(refused(a.record_nonce(&before_12).await));
        a.record_nonce(&nonce("n1")).await.unwrap();
        // A second store on the file: a second `kaquan serve`.
        let b = open(&path, OpenMode::MustExist).unwrap();
        assert!(refused(b.record_nonce(&nonce("n1")).await));
        b.record_nonce(&nonce("n2")).await.unwrap();
        assert!(refused(a.record_nonce(&nonce("n2")).await));
        a.record_nonce(&nonce("n3")).await.unwrap();
        assert!(refused(b.record_nonce(&nonce("n3")).await));
        drop((a, b));
        let again = open(&path, OpenMode::MustExist).unwrap();
        for n in ["before-12", "n1", "n2", "n3"] {
            assert!(refused(again.record_nonce(&nonce(n)).await), "{n}");
        }
        let log = || {
            again.read(|c| {
                c.query_row("SELECT count(*) FROM api_nonces", [], |r| {
                    r.get::<_, i64>(0)
                })
                .map_err(map_err)
            })
        };
        assert_eq!(log().await.unwrap(), 4);
        let signed_at = before_12.signed_at;
        assert_eq!(
            again
                .purge_expired(signed_at + NONCE_KEPT_SECONDS)
                .await
                .unwrap(),
            0
        );
        assert!(refused(again.record_nonce(&nonce("n1")).await));
        assert_eq!(
            again
                .purge_expired(signed_at + NONCE_KEPT_SECONDS + 1)
                .await
                .unwrap(),
            4
        );
        assert_eq!(log().await.unwrap(), 0);
        again.record_nonce(&nonce("n1")).await.unwrap();
        assert_eq!(log().await.unwrap(), 1);
    }

    /// Migration 11 keeps every idempotency record, oldest first, and a
    /// purge forgets exactly the expired ones.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn idempotency_records_survive_migration_11_and_expire_oldest_first() {
        let dir = test_dir("idempotency");
        let path = dir.join("test.db");
        migrated_up_to(&path, 10)
            .execute_batch(
                "INSERT INTO merchants (id, name, created_at) VALUES (1, 'A', 0); \
                 INSERT INTO idempotency_keys (merchant_id, key, request_hash, refusal, created_at) VALUES \
                   (1, 'newer', 'h2', 'insufficient_balance', 5000), (1, 'older', 'h1', 'insufficient_balance', 1000);",
            )
            .unwrap();
        let store = open(&path, OpenMode::MustExist).unwrap();
        let records = || {
            store.read(|c| {
                c.prepare("SELECT key, request_hash FROM idempotency_keys ORDER BY id")
                    .and_then(|mut s| {
                        s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                            .collect::<rusqlite::Result<Vec<(String, String)>>>()
                    })
                    .map_err(map_err)
            })
        };
        let kept = kaquan_core::ledger::IDEMPOTENCY_KEPT_SECONDS;
        assert_eq!(
            records().await.unwrap(),
            vec![("older".into(), "h1".into()), ("newer".into(), "h2".into())]
        );
        assert_eq!(store.purge_expired(1000 + kept).await.unwrap(), 0);
        assert_eq!(store.purge_expired(1001 + kept).await.unwrap(), 1);
        assert_eq!(
            records().await.unwrap(),
            vec![("newer".into(), "h2".into())]
        );
        assert_eq!(store.purge_expired(5001 + kept).await.unwrap(), 1);
        assert_eq!(records().await.unwrap(), vec![]);
    }

    /// Migration 9 links every earlier transaction to its customer's
    /// previous one and gives each customer account the head and the count
    /// of its chain; `verify` finds the chains sound and names a broken one.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn statement_chains_are_filled_by_the_migration_and_checked() {
        let dir = test_dir("chains");
        let path = dir.join("test.db");
        {
            // A database as migration 8 left it, with a short ledger.
            let conn = migrated_up_to(&path, 8);
            conn.execute_batch(
                "INSERT INTO merchants (id, name, created_at) VALUES (1, 'A', 0); \
                 INSERT INTO customers (id, merchant_id, external_id, created_at) VALUES (1, 1, 'u1', 0), (2, 1, 'u2', 0); \
                 INSERT INTO ledger_accounts (id, merchant_id, kind, customer_id, asset, balance) VALUES \
                   (1, 1, 'customer', 1, 'fen', 700), (2, 1, 'customer', 2, 'fen', 200), \
                   (3, 1, 'adjustments', NULL, 'fen', NULL); \
                 INSERT INTO ledger_transactions (id, merchant_id, customer_id, kind, amount_fen, balance_after_fen, \
                   reference, reason, channel, created_by, created_at) VALUES \
                   (1, 1, 1, 'adjust', 500, 500, '', 'r', 'web', 'x', 0), \
                   (2, 1, 2, 'adjust', 200, 200, '', 'r', 'web', 'x', 0), \
                   (3, 1, 1, 'adjust', 200, 700, '', 'r', 'web', 'x', 0); \
                 INSERT INTO ledger_postings (transaction_id, account_id, asset, amount) VALUES \
                   (1, 1, 'fen', 500), (1, 3, 'fen', -500), (2, 2, 'fen', 200), (2, 3, 'fen', -200), \
                   (3, 1, 'fen', 200), (3, 3, 'fen', -200);",
            )
            .unwrap();
        }
        let store = open(&path, OpenMode::MustExist).unwrap();
        let rows = |sql: &'static str| {
            let store = &store;
            async move {
                store
                    .read(move |c| {
                        c.prepare(sql)
                            .and_then(|mut s| {
                                s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                                    .collect::<rusqlite::Result<Vec<(i64, Option<i64>, i64)>>>()
                            })
                            .map_err(map_err)
                    })
                    .await
                    .unwrap()
            }
        };
        assert_eq!(
            rows("SELECT id, previous_id, customer_id FROM ledger_transactions ORDER BY id").await,
            vec![(1, None, 1), (2, None, 2), (3, Some(1), 1)]
        );
        assert_eq!(
            rows("SELECT id, last_transaction_id, n_transactions FROM ledger_accounts ORDER BY id")
                .await,
            vec![(1, Some(3), 2), (2, Some(2), 1), (3, None, 0)]
        );
        assert_eq!(store.verify().await.unwrap(), Vec::<String>::new());
        let (lines, total) = store
            .list_statement(
                1,
                1,
                Page {
                    page: 1,
                    page_size: 20,
                },
            )
            .await
            .unwrap();
        assert_eq!(total, 2);
        assert_eq!(lines.iter().map(|t| t.id).collect::<Vec<_>>(), vec![3, 1]);
        let (lines, _) = store
            .list_statement(
                1,
                1,
                Page {
                    page: 2,
                    page_size: 1,
                },
            )
            .await
            .unwrap();
        assert_eq!(lines.iter().map(|t| t.id).collect::<Vec<_>>(), vec![1]);
        // Another merchant sees nothing of this customer.
        assert_eq!(
            store
                .list_statement(
                    2,
                    1,
                    Page {
                        page: 1,
                        page_size: 20
                    }
                )
                .await
                .unwrap(),
            (vec![], 0)
        );
        store
            .write(|c| {
                c.execute_batch(
                    "DROP TRIGGER ledger_transactions_no_update; \
                     UPDATE ledger_transactions SET previous_id = NULL WHERE id = 3; \
                     UPDATE ledger_accounts SET n_transactions = 5 WHERE id = 2;",
                )
                .map_err(map_err)
            })
            .await
            .unwrap();
        assert_eq!(
            store.verify().await.unwrap(),
            vec![
                "1 statement chains that skip or repeat a transaction".to_owned(),
                "1 customer accounts whose last transaction or transaction count is wrong"
                    .to_owned(),
            ]
        );
    }

    /// A burst leaves a WAL far longer than the limit; once the checkpoint
    /// thread has copied it and the writer starts it over, the file is cut
    /// back to the limit.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_long_wal_is_cut_back_once_copied() {
        let dir = test_dir("wal-limit");
        let path = dir.join("test.db");
        let wal = dir.join("test.db-wal");
        let store = open(&path, OpenMode::CreateIfMissing).unwrap();
        store
            .write(|c| {
                c.execute_batch(
                    "CREATE TABLE t (v BLOB); \
                     WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 4000) \
                     INSERT INTO t SELECT randomblob(1000) FROM n;",
                )
                .map_err(map_err)
            })
            .await
            .unwrap();
        let burst = std::fs::metadata(&wal).unwrap().len() as i64;
        assert!(
            burst > 2 * WAL_BYTES_KEPT_MAX,
            "the burst left {burst} bytes"
        );
        let mut cut_back = false;
        for _ in 0..200 {
            std::thread::sleep(std::time::Duration::from_millis(50));
            // Each write lets the writer start the WAL over once it is copied.
            store
                .write(|c| {
                    c.execute("INSERT INTO t VALUES (x'00')", [])
                        .map_err(map_err)
                })
                .await
                .unwrap();
            if std::fs::metadata(&wal).unwrap().len() as i64 <= WAL_BYTES_KEPT_MAX {
                cut_back = true;
                break;
            }
        }
        assert!(cut_back, "the WAL was not cut back");
    }

    /// Under writes that never pause, the writer starts the WAL over once
    /// it passes `WAL_FRAMES_CHECKPOINTED_BY_WRITER`: the file stays short
    /// instead of growing with every commit (the checkpoint thread alone
    /// never catches up with a writer that does not wait).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_wal_under_steady_writes_is_started_over() {
        let dir = test_dir("wal-steady");
        let wal = dir.join("test.db-wal");
        let store = Arc::new(open(&dir.join("test.db"), OpenMode::CreateIfMissing).unwrap());
        store
            .write(|c| c.execute_batch("CREATE TABLE t (v BLOB)").map_err(map_err))
            .await
            .unwrap();
        let writers: Vec<_> = (0..8)
            .map(|_| {
                let (store, wal) = (Arc::clone(&store), wal.clone());
                tokio::spawn(async move {
                    let mut longest = 0;
                    for _ in 0..250 {
                        store
                            .write(|c| {
                                c.execute("INSERT INTO t VALUES (randomblob(3000))", [])
                                    .map_err(map_err)
                            })
                            .await
                            .unwrap();
                        longest = longest.max(std::fs::metadata(&wal).unwrap().len() as i64);
                    }
                    longest
                })
            })
            .collect();
        let mut longest = 0;
        for writer in writers {
            longest = longest.max(writer.await.unwrap());
        }
        // 2,000 rows of 3,000 bytes: about 6 MB of pages went through it.
        assert!(
            longest <= WAL_BYTES_KEPT_MAX,
            "the WAL grew to {longest} bytes"
        );
    }

    /// Merchant "A" with an offline code template of `n_codes` codes (of
    /// 5 yuan; their digests are returned) and the customers u0, u1, …
    async fn codes_and_customers(
        store: &SqliteStore,
        n_codes: usize,
        n_customers: usize,
    ) -> (i64, Vec<Vec<u8>>) {
        use kaquan_core::giftcard::{code_digest, Code, CodeKind, CodeTemplateFields, NewCode};
        let merchant = store.create_merchant("A", 0).await.unwrap().id;
        let keys = kaquan_core::secrets::MasterKey::generate().merchant_keys(merchant, 1);
        let digests: Vec<Vec<u8>> = (0..n_codes)
            .map(|_| code_digest(&keys, &Code::generate()))
            .collect();
        let codes: Vec<NewCode> = digests
            .iter()
            .map(|d| NewCode {
                digest: d.clone(),
                sealed: vec![0; 44],
                key_version: 1,
            })
            .collect();
        let audit = AuditEntry {
            merchant_id: merchant,
            actor: Actor::cli(),
            action: "test".into(),
            target: String::new(),
            detail: String::new(),
            n_affected: 0,
            created_at: 0,
        };
        let fields = CodeTemplateFields {
            name: "卡".into(),
            face_value_fen: 500,
            valid_from: None,
            valid_until: None,
        };
        store
            .create_code_template(merchant, CodeKind::Offline, &fields, &codes, &audit)
            .await
            .unwrap();
        for c in 0..n_customers {
            store
                .ensure_customer(merchant, &format!("u{c}"), 0)
                .await
                .unwrap();
        }
        (merchant, digests)
    }

    /// Customer u{customer} of `merchant` redeems the code of `digest`.
    fn redemption(
        merchant: i64,
        customer: usize,
        digest: Vec<u8>,
    ) -> kaquan_core::ledger::LedgerOp {
        use kaquan_core::ledger::{CustomerRef, LedgerOp, RedeemCode};
        LedgerOp::Redeem(RedeemCode {
            merchant_id: merchant,
            customer: CustomerRef::External(format!("u{customer}")),
            digest,
            client_key: "test".into(),
            attempt_limit: 5,
            attempts_since: 0,
            channel: Channel::Api,
            actor: Actor::cli(),
            now: 1_800_000_000,
        })
    }

    /// Redeems the code of each digest at once, the i-th by customer
    /// u{i % n_customers}, signed with the nonce n{i}; the answers in order.
    async fn redeem_all(
        store: &Arc<SqliteStore>,
        merchant: i64,
        digests: Vec<Vec<u8>>,
        n_customers: usize,
    ) -> Vec<StoreResult<kaquan_core::ledger::Called<kaquan_core::ledger::LedgerTransaction>>> {
        use kaquan_core::ledger::{ApiCall, NonceUse};
        let tasks: Vec<_> = digests
            .into_iter()
            .enumerate()
            .map(|(i, digest)| {
                let store = Arc::clone(store);
                tokio::spawn(async move {
                    let call = ApiCall {
                        nonce: Some(NonceUse {
                            api_key_id: "kq_1".into(),
                            nonce: format!("n{i}"),
                            signed_at: 1,
                        }),
                        idempotency: None,
                    };
                    let op = redemption(merchant, i % n_customers, digest);
                    store.post_ledger(&call, &op).await
                })
            })
            .collect();
        let mut answers = Vec::new();
        for task in tasks {
            answers.push(task.await.unwrap());
        }
        answers
    }

    /// A new code carries room for its redemption (migration 13): redeeming
    /// every code of a batch, set-wise and one by one, leaves the codes
    /// table on as many pages as before.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redeeming_codes_does_not_grow_their_pages() {
        let dir = test_dir("room");
        let store = Arc::new(open(&dir.join("test.db"), OpenMode::CreateIfMissing).unwrap());
        let (merchant, digests) = codes_and_customers(&store, 3000, 300).await;
        let pages = || {
            store.read(|c| {
                c.query_row(
                    "SELECT count(*) FROM dbstat WHERE name = 'codes'",
                    [],
                    |r| r.get::<_, i64>(0),
                )
                .map_err(map_err)
            })
        };
        let before = pages().await.unwrap();
        for answer in redeem_all(&store, merchant, digests, 300).await {
            let called = answer.unwrap();
            assert!(called.result.is_ok(), "{:?}", called.result);
        }
        assert!(before > 20, "{before} pages");
        assert_eq!(pages().await.unwrap(), before);
        assert!(store.verify().await.unwrap().is_empty());
    }

    /// Redemptions whose set-wise statements fail (here: the merchant's
    /// gift-card counter account is missing, so the postings cannot be
    /// written): the group is rolled back and run job by job, and nothing
    /// of it stays. With the account back, the same redemptions all credit.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_set_wise_phase_leaves_nothing_and_reruns_job_by_job() {
        let dir = test_dir("set-wise");
        let store = Arc::new(open(&dir.join("test.db"), OpenMode::CreateIfMissing).unwrap());
        let (merchant, digests) = codes_and_customers(&store, 40, 20).await;
        // Each redemption i is signed with the nonce n{i}: the first round
        // fails, so its nonces must be free again for the second.
        let redeem_all = |digests| redeem_all(&store, merchant, digests, 20);
        let count = |sql: &'static str| {
            let store = Arc::clone(&store);
            async move {
                store
                    .read(move |c| {
                        c.query_row(sql, [], |r| r.get::<_, i64>(0))
                            .map_err(map_err)
                    })
                    .await
                    .unwrap()
            }
        };
        store
            .write(|c| {
                c.execute(
                    "DELETE FROM ledger_accounts WHERE kind = 'giftcard_issued'",
                    [],
                )
                .map_err(map_err)
            })
            .await
            .unwrap();
        let answers = redeem_all(digests[..20].to_vec()).await;
        assert!(answers.iter().all(|a| a.is_err()), "{answers:?}");
        assert_eq!(
            count("SELECT count(*) FROM codes WHERE state = 'used'").await,
            0
        );
        assert_eq!(count("SELECT count(*) FROM ledger_transactions").await, 0);
        assert_eq!(
            count("SELECT COALESCE(SUM(balance), 0) FROM ledger_accounts").await,
            0
        );
        store
            .write(move |c| {
                c.execute(
                    "INSERT INTO ledger_accounts (merchant_id, kind, customer_id, asset, balance) \
                     VALUES (?1, 'giftcard_issued', NULL, 'fen', NULL)",
                    [merchant],
                )
                .map_err(map_err)
            })
            .await
            .unwrap();
        let answers = redeem_all(digests[20..].to_vec()).await;
        for answer in &answers {
            let called = answer.as_ref().expect("credited");
            assert_eq!(called.result.as_ref().map(|t| t.balance_after_fen), Ok(500));
        }
        assert_eq!(
            count("SELECT count(*) FROM codes WHERE state = 'used'").await,
            20
        );
        assert_eq!(
            count("SELECT COALESCE(SUM(balance), 0) FROM ledger_accounts").await,
            20 * 500
        );
        assert!(store.verify().await.unwrap().is_empty());
    }
}
