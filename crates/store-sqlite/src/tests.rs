//! Engine tests: group commit, checkpoints, the WAL, crash recovery.

use crate::{engine::*, sql::*};
use kaquan_core::api_key::ApiKeyStore;
use kaquan_core::audit::Actor;
use kaquan_core::audit::AuditEntry;
use kaquan_core::code::CodeStore;
use kaquan_core::customer::CustomerStore;
use kaquan_core::ledger::LedgerStore;
use kaquan_core::merchant::MerchantStore;
use kaquan_core::pickup::Channel;
use kaquan_core::store::MaintenanceStore;
use kaquan_core::store::Page;
use kaquan_core::{StoreError, StoreResult};
use rusqlite::{params, Connection};
use std::path::{Path, PathBuf};
use std::sync::Arc;

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
        rows("SELECT id, last_transaction_id, n_transactions FROM ledger_accounts WHERE id <= 3 ORDER BY id")
            .await,
        vec![(1, Some(3), 2), (2, Some(2), 1), (3, None, 0)]
    );
    let violations = store.check_invariants().await.unwrap();
    assert_eq!(violations, Vec::<String>::new());
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
        store.check_invariants().await.unwrap(),
        vec![
            "1 statement chains that skip or repeat a transaction".to_owned(),
            "1 customer accounts whose last transaction or transaction count is wrong".to_owned(),
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
    use kaquan_core::code::{code_digest, Code, CodeKind, CodeTemplateFields, NewCode};
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
fn redemption(merchant: i64, customer: usize, digest: Vec<u8>) -> kaquan_core::ledger::LedgerOp {
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
    assert!(store.check_invariants().await.unwrap().is_empty());
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
    assert!(store.check_invariants().await.unwrap().is_empty());
}

/// Verifications whose set-wise phase fails (here: a trigger on the
/// writer's scratch table refuses every move) are rolled back and run job
/// by job, and record exactly what they would have: the conformance check
/// of verifications at once passes whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verifications_whose_set_wise_phase_fails_run_job_by_job() {
    let (_dir, store) = refusing_moves("verify-set-wise", "verification_moves").await;
    kaquan_conformance::verifications_at_once_record_what_one_at_a_time_records(&store).await;
}

/// A store whose writer's scratch table `moves` refuses every row (a
/// trigger): every set-wise phase that writes there fails. The store's
/// folder goes with the `TestDir`.
async fn refusing_moves(name: &str, moves: &str) -> (TestDir, SqliteStore) {
    let dir = test_dir(name);
    let store = open(&dir.join("test.db"), OpenMode::CreateIfMissing).unwrap();
    let sql = format!(
        "CREATE TEMP TRIGGER refuse_moves BEFORE INSERT ON {moves} \
         BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;"
    );
    store
        .write(move |c| c.execute_batch(&sql).map_err(map_err))
        .await
        .unwrap();
    (dir, store)
}

/// Payments whose set-wise phase fails (here: a trigger on the writer's
/// scratch table refuses every move) are rolled back and run job by job,
/// and record exactly what they would have: the conformance check of
/// payments at once passes whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payments_whose_set_wise_phase_fails_run_job_by_job() {
    let (_dir, store) = refusing_moves("pay-set-wise", "payment_transactions").await;
    kaquan_conformance::payments_at_once_record_what_one_at_a_time_records(&store).await;
}

/// Payments queued while the writer is busy go set-wise once it is free:
/// the writer is held by a job until ten payments of ten members are in
/// its queue (each future polled once queues its job), and then writes at
/// least nine of them through its scratch tables (a trigger counts them),
/// each answered with its own record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payments_queued_together_go_set_wise() {
    use kaquan_core::member::operation::*;
    use kaquan_core::member::MemberStore;
    use std::future::Future;
    let dir = test_dir("pay-set-wise-queued");
    let store = open(&dir.join("test.db"), OpenMode::CreateIfMissing).unwrap();
    let m = members_topped_up(&store, 10).await;
    let op = |action| member_op(m, action);
    store
        .write(|c| {
            c.execute_batch(
                "CREATE TEMP TABLE set_wise_payments (operation_id INTEGER NOT NULL); \
                 CREATE TEMP TRIGGER count_payments AFTER INSERT ON payment_moves \
                 BEGIN INSERT INTO set_wise_payments VALUES (NEW.operation_id); END;",
            )
            .map_err(map_err)
        })
        .await
        .unwrap();
    let (release, held) = std::sync::mpsc::channel::<()>();
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    let mut blocker = Box::pin(store.write(move |_| {
        let _ = held.recv();
        Ok(())
    }));
    let _ = blocker.as_mut().poll(&mut context);
    let payments: Vec<MemberOp> = (0..10)
        .map(|i| {
            op(MemberAction::Pay(ReportPayment {
                member: who(i),
                amount_fen: 3_000,
                use_points: 10,
                balance_fen: 1_000,
                reference: format!("o{i}"),
                location_id: None,
            }))
        })
        .collect();
    let calls = signed_calls(10);
    let mut queued: Vec<_> = payments
        .iter()
        .zip(&calls)
        .map(|(p, call)| Box::pin(store.post_member_op(call, p)))
        .collect();
    for payment in &mut queued {
        assert!(payment.as_mut().poll(&mut context).is_pending());
    }
    release.send(()).unwrap();
    blocker.await.unwrap();
    // Each as one alone would be: ¥10.00 of the balance and 10 of the 20
    // points spent, its id after every earlier operation's, the member
    // left as its record says.
    let mut earned = Vec::new();
    for (i, payment) in queued.into_iter().enumerate() {
        let paid = payment.await.unwrap().result.unwrap();
        assert_eq!((paid.balance_after_fen, paid.points_used), (4_000, 10));
        assert_eq!(paid.points_after, 20 - 10 + paid.points_earned);
        assert!(paid.id > 2 * 10, "{paid:?}");
        let member = store.get_member(m, paid.member_id).await.unwrap();
        assert_eq!(
            (member.points, member.balance_fen),
            (paid.points_after, 4_000)
        );
        assert_eq!(paid.reference, format!("o{i}"));
        earned.push(paid.points_earned);
    }
    assert!(
        earned.iter().all(|e| *e == earned[0] && *e > 0),
        "{earned:?}"
    );
    let (n, written) = store
        .write(|c| {
            c.query_row(
                "SELECT count(*), count(o.id) FROM temp.set_wise_payments s \
                 LEFT JOIN member_operations o ON o.id = s.operation_id AND o.kind = 'payment'",
                [],
                |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
            )
            .map_err(map_err)
        })
        .await
        .unwrap();
    assert!(n >= 9, "{n} payments went set-wise");
    assert_eq!(written, n);
    assert!(store.check_invariants().await.unwrap().is_empty());
}

/// A call by the CLI on a member of merchant `m`, at time 0.
fn member_op(
    m: i64,
    action: kaquan_core::member::operation::MemberAction,
) -> kaquan_core::member::operation::MemberOp {
    kaquan_core::member::operation::MemberOp {
        merchant_id: m,
        action,
        actor: Actor::cli(),
        now: 0,
    }
}

/// Member c`i`, named by the mall's customer id.
fn who(i: usize) -> kaquan_core::member::operation::MemberRef {
    kaquan_core::member::operation::MemberRef::Customer {
        customer: kaquan_core::ledger::CustomerRef::External(format!("c{i}")),
        program_id: None,
    }
}

/// Calls signed under keys k0.. and nonces n0.. (n of each).
fn signed_calls(n: usize) -> Vec<kaquan_core::ledger::ApiCall> {
    use kaquan_core::ledger::{ApiCall, IdempotencyClaim, IdempotencyKey, NonceUse};
    (0..n)
        .map(|i| ApiCall {
            nonce: Some(NonceUse {
                api_key_id: "kq_test".into(),
                nonce: format!("n{i}"),
                signed_at: 0,
            }),
            idempotency: Some(IdempotencyClaim {
                key: IdempotencyKey::parse(&format!("k{i}")).unwrap(),
                request_hash: format!("h{i}"),
            }),
        })
        .collect()
}

/// A merchant whose members c0.. (n of them) each hold ¥50.00 and 20
/// points on a card that earns a point per yuan and takes a point as a fen.
async fn members_topped_up(store: &SqliteStore, n: usize) -> i64 {
    use kaquan_core::ledger::{ApiCall, CustomerRef};
    use kaquan_core::member::operation::*;
    use kaquan_core::member::{MemberStore, PointsRule, ProgramFields};
    let m = store.create_merchant("甲", 0).await.unwrap().id;
    let fields = ProgramFields {
        title: "会员卡".into(),
        points: Some(PointsRule {
            cost_money_unit: 100,
            increase_bonus: 1,
            init_increase_bonus: 20,
            cost_bonus_unit: 1,
            reduce_money: 1,
            ..PointsRule::default()
        }),
        ..ProgramFields::default()
    };
    let program = store
        .create_member_program(m, &fields, &Actor::cli(), 0)
        .await
        .unwrap();
    let op = |action| member_op(m, action);
    for i in 0..n {
        for action in [
            MemberAction::Activate(ActivateMember {
                merchant_id: m,
                program_id: program.id,
                customer: CustomerRef::External(format!("c{i}")),
                phone: "13800000000".into(),
                name: String::new(),
                birthday: None,
                gender: None,
            }),
            MemberAction::Recharge(Recharge {
                member: who(i),
                amount_fen: 5_000,
                bonus_fen: 0,
                reference: format!("r{i}"),
            }),
        ] {
            let done = store.post_member_op(&ApiCall::default(), &op(action)).await;
            done.unwrap().result.unwrap();
        }
    }
    m
}

/// A cached statement that joins tables is prepared once: binding new
/// values does not make SQLite plan it again on the writer or on a reader
/// (by default it re-prepares a join whenever a `column = ?` term gets a
/// new value, which cost the verification path 40% of its CPU).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_is_planned_once_whatever_its_values() {
    const JOIN: &str =
        "SELECT p.state FROM coupons c JOIN coupon_programs p ON p.id = c.program_id \
        WHERE c.id = ?1 AND c.merchant_id = ?2";
    fn run_twice(conn: &Connection) -> StoreResult<i32> {
        for id in [1_i64, 2] {
            let mut stmt = conn.prepare_cached(JOIN).map_err(map_err)?;
            let mut rows = stmt.query(params![id, id + 10]).map_err(map_err)?;
            while rows.next().map_err(map_err)?.is_some() {}
        }
        let stmt = conn.prepare_cached(JOIN).map_err(map_err)?;
        Ok(stmt.get_status(rusqlite::StatementStatus::RePrepare))
    }
    let dir = test_dir("reprepare");
    let store = open(&dir.join("test.db"), OpenMode::CreateIfMissing).unwrap();
    assert_eq!(store.read(run_twice).await.unwrap(), 0, "a reader");
    assert_eq!(
        store.write(|c| run_twice(c)).await.unwrap(),
        0,
        "the writer"
    );
}

/// A database a migration behind this binary is not ready: `/readyz`
/// answers 503 with what to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_behind_the_binary_is_not_ready() {
    use kaquan_core::store::MaintenanceStore;
    let dir = test_dir("readiness");
    let path = dir.join("kaquan.db");
    let store = crate::open(&path, crate::OpenMode::CreateIfMissing).unwrap();
    assert_eq!(store.readiness().await, Ok(()));
    let conn = Connection::open(&path).unwrap();
    conn.execute(
        "DELETE FROM schema_migrations WHERE version = (SELECT MAX(version) FROM schema_migrations)",
        [],
    )
    .unwrap();
    let reason = store.readiness().await.unwrap_err();
    assert!(reason.contains("run kaquan migrate"), "{reason}");
}
