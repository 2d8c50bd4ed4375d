//! The storage engine: opening the file, migrations, the one writer thread
//! with group commit, the read-only connection pool and the checkpointer.
//!
//! All writes go through one writer thread that groups whatever is queued
//! (up to [`GROUP_COMMIT_JOBS_MAX`] jobs) into one `BEGIN IMMEDIATE`
//! transaction and answers every job only after the group's COMMIT is
//! durable: FULL sync costs one fsync per group, not per write. A group's
//! signed redemptions, coupon verifications and planned member payments
//! run set-wise first (`redeem_set_wise`, `verify_set_wise`,
//! `pay_set_wise`); a job or phase that fails after
//! writing makes the group roll back and rerun with a savepoint per job.
//!
//! Reads take a read-only connection from the pool on tokio's blocking
//! pool (`read`), except a point read on a request's hot path (the code a
//! verifier scans), which runs on the request's own thread (`read_point`).
//!
//! Tuning: a checkpoint thread copies the WAL into the database file
//! (PASSIVE; every [`CHECKPOINT_BUSY_EVERY_MS`] while commits keep coming,
//! so each copy and its fsync stay small; once a second when idle); past
//! [`WAL_FRAMES_CHECKPOINTED_BY_WRITER`] frames the writer copies what is
//! left after its COMMIT, so its next transaction starts the WAL over (a WAL
//! that only grows costs the filesystem new zeroed blocks on every commit),
//! and the WAL file is cut back to [`WAL_BYTES_KEPT_MAX`] when SQLite starts
//! it over. SQLite is built to sync with fdatasync (`.cargo/config.toml`:
//! `HAVE_FDATASYNC`, as SQLite's own Linux build does).

use crate::nonces::carry_over_nonces;
use crate::pay_set_wise::{create_payment_tables, pay_set_wise, GroupPayment};
use crate::redeem_set_wise::create_redemption_tables;
use crate::redeem_set_wise::redeem_set_wise;
use crate::redeem_set_wise::GroupRedemption;
use crate::sql::map_err;
use crate::verify_set_wise::create_verification_tables;
use crate::verify_set_wise::verify_set_wise;
use crate::verify_set_wise::GroupVerification;
use kaquan_core::{StoreError, StoreResult};
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};

/// Most jobs one group commit takes.
pub const GROUP_COMMIT_JOBS_MAX: usize = 64;
/// How long a write waits for another process's lock on the file.
pub(crate) const BUSY_TIMEOUT_MS: u64 = 60_000;
/// Numbers per `IN (…)` lookup.
pub(crate) const LOOKUP_CHUNK: usize = 500;
/// Failed attempts older than this are forgotten.
pub(crate) const ATTEMPT_FAILURES_KEPT_SECONDS: i64 = 86_400;
/// How often the checkpoint thread copies the WAL into the database file:
/// while commits keep coming (the WAL changed since its last copy), and
/// while they do not. Copying often keeps each copy, and the fsync of the
/// database file that ends it, small, and leaves the writer little to copy
/// when it starts the WAL over (a second's worth of frames at once made
/// that fsync stall the writer's own for tens of ms); not too often, so
/// that a page the writer changes again and again is copied once per pass
/// and the disk sees fewer writes and flushes (50 ms measured better than
/// 5 ms: more redemptions/s and fewer p99 spikes).
pub(crate) const CHECKPOINT_BUSY_EVERY_MS: u64 = 50;
pub(crate) const CHECKPOINT_IDLE_EVERY_MS: u64 = 1000;
/// Past this many frames (about 128 MB), the writer copies what the
/// checkpoint thread has not yet (SQLite's automatic checkpoint, after the
/// COMMIT), so that its next transaction can start the WAL over. Under
/// steady writes the checkpoint thread alone never catches up, and a WAL
/// that only grows makes the filesystem allocate and zero new blocks on
/// every commit (a tenth of the server's CPU under the redemption
/// benchmark on ext4); a WAL started over is overwritten in place. Rare
/// and short (the copy of a few ms of frames and one fsync of the database
/// file), these pauses keep p99 low; a lower threshold makes them frequent.
pub(crate) const WAL_FRAMES_CHECKPOINTED_BY_WRITER: i64 = if cfg!(test) { 64 } else { 32_768 };
/// The WAL file is cut back to this size when SQLite starts it over: above
/// the length the writer lets it reach, so that under load it keeps its
/// blocks, and after a burst (one huge transaction) it does not keep that
/// size for good.
pub(crate) const WAL_BYTES_KEPT_MAX: i64 = if cfg!(test) { 1 << 20 } else { 192 << 20 };
/// Prepared statements each connection keeps (rusqlite's default is 16).
pub(crate) const STATEMENTS_CACHED_MAX: usize = 256;
/// Idle read connections kept open.
pub(crate) const READERS_KEPT_MAX: usize = 64;

pub(crate) const MIGRATIONS: &[&str] = &[
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
    include_str!("migrations/014_events.sql"),
    include_str!("migrations/015_card_sales.sql"),
    include_str!("migrations/016_sms.sql"),
    include_str!("migrations/017_erp.sql"),
    include_str!("migrations/018_waybills.sql"),
    include_str!("migrations/019_batch_counts.sql"),
    include_str!("migrations/020_must_change_password.sql"),
    include_str!("migrations/021_public_url.sql"),
    include_str!("migrations/022_coupons.sql"),
    include_str!("migrations/023_coupon_expiry.sql"),
    include_str!("migrations/024_coupon_counts.sql"),
    include_str!("migrations/025_coupon_logos.sql"),
    include_str!("migrations/026_members.sql"),
    include_str!("migrations/027_member_sms.sql"),
    include_str!("migrations/028_member_card_face.sql"),
    include_str!("migrations/029_credits.sql"),
    include_str!("migrations/030_ecards.sql"),
    include_str!("migrations/031_daily_tallies.sql"),
    include_str!("migrations/032_staff_language.sql"),
    include_str!("migrations/033_analytics_indexes.sql"),
    include_str!("migrations/034_audit_chain.sql"),
    include_str!("migrations/035_prepaid_policy.sql"),
    include_str!("migrations/036_approvals.sql"),
    include_str!("migrations/037_print_shops.sql"),
    include_str!("migrations/038_key_ring.sql"),
    include_str!("migrations/039_credential_approvals.sql"),
];

/// The first line of a migration that rebuilds a table others refer to:
/// SQLite's documented rebuild runs with foreign keys off (a pragma that
/// cannot change inside a transaction) and checks them before commit.
const FOREIGN_KEYS_OFF: &str = "-- foreign_keys off";

/// Whether opening may create a missing database file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    CreateIfMissing,
    MustExist,
}

/// The writer thread's connection and what it alone keeps beside it: the
/// nonces seen (`nonces`). Jobs use it as a `Connection`.
pub(crate) struct Writer {
    pub(crate) conn: Connection,
    pub(crate) nonces: std::cell::RefCell<crate::nonces::SeenNonces>,
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
    pub(crate) fn begin(&self, n_jobs: usize) -> bool {
        self.nonces.borrow_mut().begin();
        let begun = run_cached(self, "BEGIN IMMEDIATE");
        if let Err(e) = &begun {
            tracing::error!(error = %e, n_jobs, "sqlite writer could not begin a transaction");
        }
        begun.is_ok()
    }

    pub(crate) fn rollback(&self) -> rusqlite::Result<()> {
        self.nonces.borrow_mut().undo_to(0);
        run_cached(self, "ROLLBACK")
    }

    /// COMMIT, or on failure ROLLBACK.
    pub(crate) fn commit(&self) -> Result<(), String> {
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
    pub(crate) fn run_in_savepoint(&self, job: &mut Job) {
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
pub(crate) trait Work: Send {
    /// Runs the work inside the group's transaction; false when it failed.
    fn run(&mut self, writer: &Writer) -> bool;
    /// Answers the caller once the group's fate is known.
    fn finish(self: Box<Self>, commit: Result<(), String>);
    /// A redemption the writer may run set-wise with the rest of its group.
    fn redemption(&mut self) -> Option<&mut GroupRedemption> {
        None
    }
    /// A verification the writer may run set-wise with the rest of its group.
    fn verification(&mut self) -> Option<&mut GroupVerification> {
        None
    }
    /// A planned payment the writer may run set-wise with the rest of its group.
    fn payment(&mut self) -> Option<&mut GroupPayment> {
        None
    }
    /// Whether the group's set-wise phase has run the job.
    fn ran_set_wise(&mut self) -> bool {
        self.redemption().is_some_and(|r| r.result.is_some())
            || self.verification().is_some_and(|v| v.result.is_some())
            || self.payment().is_some_and(|p| p.result.is_some())
    }
    /// Forgets what the set-wise phase did: its group was rolled back.
    fn forget_set_wise(&mut self) {
        if let Some(r) = self.redemption() {
            r.result = None;
        }
        if let Some(v) = self.verification() {
            v.result = None;
        }
        if let Some(p) = self.payment() {
            p.result = None;
        }
    }
}
pub(crate) type Job = Box<dyn Work>;

/// The answer to a job: its result, unless the group's COMMIT failed.
pub(crate) fn answer<T>(
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

pub(crate) struct Pending<T, F> {
    pub(crate) work: F,
    pub(crate) result: Option<StoreResult<T>>,
    pub(crate) reply: tokio::sync::oneshot::Sender<StoreResult<T>>,
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
    pub(crate) writer: Mutex<mpsc::Sender<Job>>,
    pub(crate) readers: Arc<ReaderPool>,
    pub(crate) gauges: Arc<WriterGauges>,
}

/// What the writer is doing, for `/metrics`: jobs waiting for it, and the
/// groups it committed.
#[derive(Debug, Default)]
pub(crate) struct WriterGauges {
    pub(crate) queued: std::sync::atomic::AtomicI64,
    pub(crate) last_group: std::sync::atomic::AtomicI64,
    pub(crate) groups: std::sync::atomic::AtomicU64,
    pub(crate) jobs: std::sync::atomic::AtomicU64,
}

pub(crate) struct ReaderPool {
    pub(crate) path: PathBuf,
    pub(crate) idle: Mutex<Vec<Connection>>,
}

impl ReaderPool {
    pub(crate) fn take(&self) -> StoreResult<Connection> {
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
        plan_once(&conn)?;
        Ok(conn)
    }

    pub(crate) fn give(&self, conn: Connection) {
        let mut idle = self.idle.lock().expect("reader pool lock");
        if idle.len() < READERS_KEPT_MAX {
            idle.push(conn);
        }
    }
}

/// Keeps a connection's statements prepared: up to
/// [`STATEMENTS_CACHED_MAX`] of them (the writer runs every write statement
/// there is), each planned once. By default SQLite plans a statement again
/// whenever a new value is bound to a parameter its plan looked at, and it
/// looks at the parameter of every `column = ?` term of a join: the coupon
/// verification's reads and writes spent 40% of the server's CPU preparing
/// their statements again. The query planner stability guarantee (QPSG)
/// turns that off; no plan of ours depends on a bound value (partial
/// indexes are matched by literals).
fn plan_once(conn: &Connection) -> StoreResult<()> {
    conn.set_prepared_statement_cache_capacity(STATEMENTS_CACHED_MAX);
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )
    .map_err(map_err)?;
    Ok(())
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
    create_redemption_tables(&conn)?;
    create_verification_tables(&conn)?;
    create_payment_tables(&conn)?;
    plan_once(&conn)?;
    let (sender, receiver) = mpsc::channel::<Job>();
    let gauges = Arc::new(WriterGauges::default());
    let counted = Arc::clone(&gauges);
    std::thread::Builder::new()
        .name("sqlite-writer".into())
        .spawn(move || writer_loop(conn, receiver, &counted))
        .map_err(|e| StoreError::Backend(format!("cannot start writer thread: {e}")))?;
    let readers = Arc::new(ReaderPool {
        path: path.to_owned(),
        idle: Mutex::new(Vec::new()),
    });
    start_checkpointer(path, Arc::downgrade(&readers))?;
    Ok(SqliteStore {
        writer: Mutex::new(sender),
        readers,
        gauges,
    })
}

pub(crate) fn migrate(conn: &Connection) -> StoreResult<()> {
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
        let rebuilds = sql.starts_with(FOREIGN_KEYS_OFF);
        if rebuilds {
            conn.execute_batch("PRAGMA foreign_keys = OFF")
                .map_err(map_err)?;
        }
        let applied = in_transaction(conn, || {
            conn.execute_batch(sql)?;
            if rebuilds {
                let broken: Option<String> = conn
                    .query_row("PRAGMA foreign_key_check", [], |r| r.get(0))
                    .optional()?;
                if let Some(table) = broken {
                    return Err(rusqlite::Error::SqliteFailure(
                        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY),
                        Some(format!(
                            "migration {version} left a broken foreign key in {table}"
                        )),
                    ));
                }
            }
            conn.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, strftime('%s','now'))",
                [version],
            )
        });
        if rebuilds {
            conn.execute_batch("PRAGMA foreign_keys = ON")
                .map_err(map_err)?;
        }
        applied?;
    }
    carry_over_nonces(conn)
}

/// Runs `work` in a transaction of its own on a connection that is not the
/// writer's (opening the store: migrations and the fix-ups after them).
pub(crate) fn in_transaction<T>(
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
pub(crate) fn start_checkpointer(
    path: &Path,
    alive: std::sync::Weak<ReaderPool>,
) -> StoreResult<()> {
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
pub(crate) fn run_cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

pub(crate) fn writer_loop(conn: Connection, receiver: mpsc::Receiver<Job>, gauges: &WriterGauges) {
    use std::sync::atomic::Ordering::Relaxed;
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
        let n = jobs.len();
        gauges.queued.fetch_sub(n as i64, Relaxed);
        gauges.last_group.store(n as i64, Relaxed);
        gauges.groups.fetch_add(1, Relaxed);
        gauges.jobs.fetch_add(n as u64, Relaxed);
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
pub(crate) fn run_group(writer: &Writer, mut jobs: Vec<Job>) {
    if !writer.begin(jobs.len()) {
        return;
    }
    // A failed set-wise phase may have written: everything reruns one by one.
    let set_wise = run_set_wise(writer, &mut jobs);
    let mut rerun = set_wise.is_err();
    if let Err(e) = &set_wise {
        tracing::warn!(error = %e, "a set-wise phase failed; the group runs job by job");
    }
    let mut failed_after_writing = None;
    if !rerun {
        for (idx, job) in jobs.iter_mut().enumerate() {
            if job.ran_set_wise() {
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
            job.forget_set_wise();
            writer.run_in_savepoint(job);
        }
    }
    let commit = writer.commit();
    for job in jobs {
        job.finish(commit.clone());
    }
}

/// Redemptions, verifications and payments first, set-wise: the usual ones take one
/// statement per table for the whole group; the rest are left to run one
/// by one.
fn run_set_wise(writer: &Writer, jobs: &mut [Job]) -> StoreResult<()> {
    let mut redemptions: Vec<&mut GroupRedemption> =
        jobs.iter_mut().filter_map(|job| job.redemption()).collect();
    if redemptions.len() > 1 {
        redeem_set_wise(writer, &mut redemptions)?;
    }
    let mut verifications: Vec<&mut GroupVerification> = jobs
        .iter_mut()
        .filter_map(|job| job.verification())
        .collect();
    if verifications.len() > 1 {
        verify_set_wise(writer, &mut verifications)?;
    }
    let mut payments: Vec<&mut GroupPayment> =
        jobs.iter_mut().filter_map(|job| job.payment()).collect();
    if payments.len() > 1 {
        pay_set_wise(writer, &mut payments)?;
    }
    Ok(())
}

impl SqliteStore {
    /// Runs `work` on the writer thread inside a group transaction and
    /// returns its result once the group has committed.
    pub(crate) async fn write<T: Send + 'static>(
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
    pub(crate) async fn queue<T>(
        &self,
        make: impl FnOnce(tokio::sync::oneshot::Sender<StoreResult<T>>) -> Job,
    ) -> StoreResult<T> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.gauges
            .queued
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.writer
            .lock()
            .expect("writer sender lock")
            .send(make(reply))
            .map_err(|_| StoreError::Backend("sqlite writer thread has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Backend("sqlite writer dropped a job".into()))?
    }

    /// A point read on the calling thread: a few rows found through a
    /// unique index, on the hot path of a request (the code a verifier
    /// scans). Such a read takes microseconds; sending it to the blocking
    /// pool and waking the task again cost more than the read (measured:
    /// coupon verifications 0.60× of code redemptions through `read`,
    /// 0.68× through this). Lists, counts and exports, which may scan, use
    /// [`SqliteStore::read`].
    pub(crate) fn read_point<T>(
        &self,
        work: impl FnOnce(&Connection) -> StoreResult<T>,
    ) -> StoreResult<T> {
        let conn = self.readers.take()?;
        let result = work(&conn);
        self.readers.give(conn);
        result
    }

    pub(crate) async fn read<T: Send + 'static>(
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
