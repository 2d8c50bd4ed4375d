//! The redemption floors: the least a durable redemption must do, with no
//! HTTP, no signature, no idempotency record, no attempt limit, no audit.

use std::sync::mpsc;
use std::time::Instant;

/// Concurrent clients for the SQLite floor (as wrk's connections).
const CLIENTS: usize = 64;
/// Jobs one SQLite group commit takes at most (as kaquan's writer).
const GROUP_MAX: usize = 64;
/// Connections for the PostgreSQL floor (as kaquan's pool).
const CONNECTIONS: usize = 16;

const SCHEMA: &str = "
CREATE TABLE codes (id INTEGER PRIMARY KEY, digest BLOB NOT NULL UNIQUE, state TEXT NOT NULL, face_value_fen INTEGER NOT NULL, customer_id INTEGER, redeemed_at INTEGER);
CREATE TABLE accounts (id INTEGER PRIMARY KEY, customer_id INTEGER, balance INTEGER CHECK (balance >= 0));
CREATE TABLE transactions (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL, amount_fen INTEGER NOT NULL, balance_after_fen INTEGER NOT NULL, reference TEXT NOT NULL, created_at INTEGER NOT NULL);
CREATE TABLE postings (id INTEGER PRIMARY KEY, transaction_id INTEGER NOT NULL, account_id INTEGER NOT NULL, amount INTEGER NOT NULL);
CREATE INDEX postings_transaction ON postings (transaction_id);
";

const REDEEM: [&str; 4] = [
    "UPDATE codes SET state = 'used', customer_id = ?1, redeemed_at = ?2 WHERE digest = ?3 AND state = 'unused' RETURNING id, face_value_fen",
    "UPDATE accounts SET balance = balance + ?1 WHERE customer_id = ?2 RETURNING id, balance",
    "INSERT INTO transactions (customer_id, amount_fen, balance_after_fen, reference, created_at) VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
    "INSERT INTO postings (transaction_id, account_id, amount) VALUES (?1, ?2, ?3), (?1, 1, ?4)",
];

fn digest(i: i64) -> Vec<u8> {
    let mut d = [0u8; 32];
    d[..8].copy_from_slice(&i.to_le_bytes());
    d.to_vec()
}

fn redeem_sqlite(conn: &rusqlite::Connection, code: i64, customer: i64) -> rusqlite::Result<()> {
    let (code_id, value): (i64, i64) = conn
        .prepare_cached(REDEEM[0])?
        .query_row(rusqlite::params![customer, 0, digest(code)], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
    let (account, balance): (i64, i64) = conn
        .prepare_cached(REDEEM[1])?
        .query_row(rusqlite::params![value, customer], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
    let transaction: i64 = conn.prepare_cached(REDEEM[2])?.query_row(
        rusqlite::params![customer, value, balance, format!("code:{code_id}"), 0],
        |r| r.get(0),
    )?;
    conn.prepare_cached(REDEEM[3])?.execute(rusqlite::params![
        transaction,
        account,
        value,
        -value
    ])?;
    Ok(())
}

type Job = (i64, i64, tokio::sync::oneshot::Sender<()>);

/// How a writer runs one group of (code, customer) redemptions inside its
/// transaction.
type RunGroup = fn(&rusqlite::Connection, &[(i64, i64)]);

/// Per job, in a savepoint each: the statements one after another.
fn group_per_job(conn: &rusqlite::Connection, jobs: &[(i64, i64)]) {
    for (code, customer) in jobs {
        conn.execute_batch("SAVEPOINT job").unwrap();
        redeem_sqlite(conn, *code, *customer).unwrap();
        conn.execute_batch("RELEASE job").unwrap();
    }
}

/// The whole group per statement: one UPDATE of all its codes, one of all
/// its balances, one INSERT of all its transactions and one of all their
/// postings (the clients' customers differ within a group, as each client
/// has one redemption in flight).
fn group_set_wise(conn: &rusqlite::Connection, jobs: &[(i64, i64)]) {
    use rusqlite::types::Value;
    let n = jobs.len();
    let rows = |width: usize, count: usize| {
        let one = format!("({})", vec!["?"; width].join(", "));
        vec![one; count].join(", ")
    };
    let codes: Vec<Value> = jobs
        .iter()
        .flat_map(|(code, customer)| [Value::Blob(digest(*code)), Value::Integer(*customer)])
        .collect();
    let used: Vec<(i64, i64, i64)> = conn
        .prepare_cached(&format!(
            "WITH v(digest, customer) AS (VALUES {}) \
             UPDATE codes SET state = 'used', customer_id = (SELECT customer FROM v WHERE v.digest = codes.digest), redeemed_at = 0 \
             WHERE codes.digest IN (SELECT digest FROM v) AND codes.state = 'unused' RETURNING codes.id, codes.face_value_fen, codes.customer_id",
            rows(2, n)
        ))
        .unwrap()
        .query_map(rusqlite::params_from_iter(codes), |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(used.len(), n, "every code was unused");
    let credits: Vec<Value> = used
        .iter()
        .flat_map(|(_, value, customer)| [Value::Integer(*customer), Value::Integer(*value)])
        .collect();
    let accounts: Vec<(i64, i64, i64)> = conn
        .prepare_cached(&format!(
            "UPDATE accounts SET balance = balance + v.column2 FROM (VALUES {}) AS v \
             WHERE accounts.customer_id = v.column1 RETURNING accounts.id, accounts.customer_id, accounts.balance",
            rows(2, n)
        ))
        .unwrap()
        .query_map(rusqlite::params_from_iter(credits), |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(accounts.len(), n, "every customer has an account");
    let by_customer: std::collections::HashMap<i64, (i64, i64)> = accounts
        .iter()
        .map(|(id, customer, balance)| (*customer, (*id, *balance)))
        .collect();
    let transactions: Vec<Value> = used
        .iter()
        .flat_map(|(code_id, value, customer)| {
            [
                Value::Integer(*customer),
                Value::Integer(*value),
                Value::Integer(by_customer[customer].1),
                Value::Text(format!("code:{code_id}")),
                Value::Integer(0),
            ]
        })
        .collect();
    let ids: Vec<i64> = conn
        .prepare_cached(&format!(
            "INSERT INTO transactions (customer_id, amount_fen, balance_after_fen, reference, created_at) VALUES {} RETURNING id",
            rows(5, n)
        ))
        .unwrap()
        .query_map(rusqlite::params_from_iter(transactions), |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let postings: Vec<Value> = ids
        .iter()
        .zip(&used)
        .flat_map(|(id, (_, value, customer))| {
            [
                Value::Integer(*id),
                Value::Integer(by_customer[customer].0),
                Value::Integer(*value),
                Value::Integer(*id),
                Value::Integer(1),
                Value::Integer(-value),
            ]
        })
        .collect();
    let written = conn
        .prepare_cached(&format!(
            "INSERT INTO postings (transaction_id, account_id, amount) VALUES {}",
            rows(3, 2 * n)
        ))
        .unwrap()
        .execute(rusqlite::params_from_iter(postings))
        .unwrap();
    assert_eq!(written, 2 * n);
}

pub fn sqlite(n: i64, path: &str) {
    sqlite_with(n, path, "redeem-sqlite", group_per_job)
}

/// Not a floor but a measure of a design: the same work done set-wise.
pub fn sqlite_set_wise(n: i64, path: &str) {
    sqlite_with(n, path, "redeem-sqlite-set-wise", group_set_wise)
}

fn sqlite_with(n: i64, path: &str, label: &str, run_group: RunGroup) {
    let conn = rusqlite::Connection::open(path).unwrap();
    // The same settings as kaquan's writer connection.
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA temp_store = MEMORY; PRAGMA cache_size = -65536;").unwrap();
    conn.set_prepared_statement_cache_capacity(4 * GROUP_MAX + 16);
    conn.execute_batch(SCHEMA).unwrap();
    conn.execute_batch("BEGIN").unwrap();
    {
        let mut insert = conn
            .prepare(
                "INSERT INTO codes (digest, state, face_value_fen) VALUES (?1, 'unused', 5000)",
            )
            .unwrap();
        for i in 0..n {
            insert.execute([digest(i)]).unwrap();
        }
        let mut account = conn
            .prepare("INSERT INTO accounts (customer_id, balance) VALUES (?1, ?2)")
            .unwrap();
        account
            .execute(rusqlite::params![0, Option::<i64>::None])
            .unwrap();
        for customer in 1..=CLIENTS as i64 {
            account.execute(rusqlite::params![customer, 0]).unwrap();
        }
    }
    conn.execute_batch("COMMIT").unwrap();
    let (sender, receiver) = mpsc::channel::<Job>();
    let writer = std::thread::spawn(move || {
        while let Ok(first) = receiver.recv() {
            let mut jobs = vec![first];
            while jobs.len() < GROUP_MAX {
                match receiver.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
            let work: Vec<(i64, i64)> = jobs
                .iter()
                .map(|(code, customer, _)| (*code, *customer))
                .collect();
            conn.execute_batch("BEGIN IMMEDIATE").unwrap();
            run_group(&conn, &work);
            conn.execute_batch("COMMIT").unwrap();
            for (_, _, done) in jobs {
                let _ = done.send(());
            }
        }
    });
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let started = Instant::now();
    runtime.block_on(async {
        let clients = (0..CLIENTS as i64).map(|client| {
            let sender = sender.clone();
            async move {
                let mut code = client;
                while code < n {
                    let (done, wait) = tokio::sync::oneshot::channel();
                    sender.send((code, client + 1, done)).unwrap();
                    wait.await.unwrap();
                    code += CLIENTS as i64;
                }
            }
        });
        futures_util::future::join_all(clients).await;
    });
    let seconds = started.elapsed().as_secs_f64();
    drop(sender);
    writer.join().unwrap();
    println!(
        "{{\"floor\": \"{label}\", \"redemptions\": {n}, \"seconds\": {seconds:.3}, \"per_second\": {:.0}}}",
        n as f64 / seconds
    );
}

pub fn postgres(n: i64, url: &str) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let connect = || async {
            let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
            tokio::spawn(connection);
            client
        };
        let setup = connect().await;
        setup
            .batch_execute(&SCHEMA.replace("INTEGER PRIMARY KEY", "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY").replace("BLOB", "BYTEA").replace("INTEGER", "BIGINT"))
            .await
            .unwrap();
        setup
            .execute(
                "INSERT INTO codes (digest, state, face_value_fen) SELECT int8send(i) || decode(repeat('00', 24), 'hex'), 'unused', 5000 FROM generate_series(0, $1::bigint - 1) AS i",
                &[&n],
            )
            .await
            .unwrap();
        // The merchant-side account takes id 1, as the postings statement expects.
        setup.execute("INSERT INTO accounts (customer_id, balance) VALUES (0, NULL)", &[]).await.unwrap();
        setup
            .execute(
                "INSERT INTO accounts (customer_id, balance) SELECT c, 0 FROM generate_series(1, $1::bigint) AS c",
                &[&(CONNECTIONS as i64)],
            )
            .await
            .unwrap();
        setup.batch_execute("ANALYZE").await.unwrap();
        let started = Instant::now();
        let workers = (0..CONNECTIONS as i64).map(|worker| async move {
            let mut client = connect().await;
            let statements = [
                client.prepare(&pg(REDEEM[0])).await.unwrap(),
                client.prepare(&pg(REDEEM[1])).await.unwrap(),
                client.prepare(&pg(REDEEM[2])).await.unwrap(),
                client.prepare(&pg(REDEEM[3])).await.unwrap(),
            ];
            let customer = worker + 1;
            let mut code = worker;
            while code < n {
                let tx = client.transaction().await.unwrap();
                let used = tx.query_one(&statements[0], &[&customer, &0i64, &pg_digest(code)]).await.unwrap();
                let (code_id, value): (i64, i64) = (used.get(0), used.get(1));
                let account = tx.query_one(&statements[1], &[&value, &customer]).await.unwrap();
                let (account_id, balance): (i64, i64) = (account.get(0), account.get(1));
                let transaction: i64 = tx
                    .query_one(&statements[2], &[&customer, &value, &balance, &format!("code:{code_id}"), &0i64])
                    .await
                    .unwrap()
                    .get(0);
                tx.execute(&statements[3], &[&transaction, &account_id, &value, &-value]).await.unwrap();
                tx.commit().await.unwrap();
                code += CONNECTIONS as i64;
            }
        });
        futures_util::future::join_all(workers).await;
        let seconds = started.elapsed().as_secs_f64();
        println!(
            "{{\"floor\": \"redeem-postgres\", \"redemptions\": {n}, \"seconds\": {seconds:.3}, \"per_second\": {:.0}}}",
            n as f64 / seconds
        );
    });
}

/// SQLite's `?N` placeholders as PostgreSQL's `$N`.
fn pg(sql: &str) -> String {
    let mut out = sql.to_owned();
    for i in (1..=5).rev() {
        out = out.replace(&format!("?{i}"), &format!("${i}"));
    }
    out
}

/// The same digest as [`digest`], as PostgreSQL's `int8send` lays it out (big-endian).
fn pg_digest(i: i64) -> Vec<u8> {
    let mut d = vec![0u8; 32];
    d[..8].copy_from_slice(&i.to_be_bytes());
    d
}

/// kaquan's own SQLite store without HTTP: N redemptions through
/// `post_ledger` from 64 tasks, with (`guarded`) or without a nonce and an
/// Idempotency-Key per call. Says how much of a redemption's cost is the
/// store's and how much the guards add.
pub fn store_sqlite(n: i64, path: &str, guarded: bool) {
    use kaquan_core::audit::{Actor, AuditEntry};
    use kaquan_core::code::CodeStore;
    use kaquan_core::code::{code_digest, Code, CodeKind, CodeTemplateFields, NewCode};
    use kaquan_core::ledger::LedgerStore;
    use kaquan_core::ledger::{
        ApiCall, CustomerRef, IdempotencyClaim, IdempotencyKey, LedgerOp, NonceUse, RedeemCode,
    };
    use kaquan_core::merchant::MerchantStore;
    use kaquan_core::pickup::Channel;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = std::sync::Arc::new(
            kaquan_store_sqlite::open(
                std::path::Path::new(path),
                kaquan_store_sqlite::OpenMode::CreateIfMissing,
            )
            .unwrap(),
        );
        let merchant = store.create_merchant("bench", 0).await.unwrap();
        let keys = kaquan_core::secrets::MasterKey::generate().merchant_keys(merchant.id, 1);
        let digests: Vec<Vec<u8>> = (0..n).map(|_| code_digest(&keys, &Code::generate())).collect();
        let codes: Vec<NewCode> = digests
            .iter()
            .map(|d| NewCode { digest: d.clone(), sealed: vec![0; 44], key_version: 1 })
            .collect();
        let audit = AuditEntry {
            merchant_id: merchant.id,
            actor: Actor::cli(),
            action: "bench".into(),
            target: String::new(),
            detail: String::new(),
            n_affected: 0,
            created_at: 0,
        };
        store
            .create_code_template(
                merchant.id,
                CodeKind::Offline,
                &CodeTemplateFields { name: "bench".into(), face_value_fen: 5000, valid_from: None, valid_until: None },
                &codes,
                &audit,
            )
            .await
            .unwrap();
        let digests = std::sync::Arc::new(digests);
        let started = Instant::now();
        let tasks = (0..CLIENTS as i64).map(|client| {
            let (store, digests) = (store.clone(), digests.clone());
            tokio::spawn(async move {
                let mut i = client;
                while i < n {
                    let call = if guarded {
                        ApiCall {
                            nonce: Some(NonceUse {
                                api_key_id: "kq_bench".into(),
                                nonce: format!("nonce-{i:012}"),
                                signed_at: 1,
                            }),
                            idempotency: Some(IdempotencyClaim {
                                key: IdempotencyKey::parse(&format!("r-{i}")).unwrap(),
                                request_hash: "h".into(),
                            }),
                        }
                    } else {
                        ApiCall::default()
                    };
                    let op = LedgerOp::Redeem(RedeemCode {
                        merchant_id: merchant.id,
                        customer: CustomerRef::External(format!("c{}", i % 1000)),
                        digest: digests[i as usize].clone(),
                        client_key: "bench".into(),
                        attempt_limit: 5,
                        attempts_since: 0,
                        channel: Channel::Api,
                        actor: Actor::cli(),
                        now: 1,
                    });
                    assert!(store.post_ledger(&call, &op).await.unwrap().result.is_ok());
                    i += CLIENTS as i64;
                }
            })
        });
        futures_util::future::join_all(tasks).await;
        let seconds = started.elapsed().as_secs_f64();
        println!(
            "{{\"store\": \"sqlite\", \"guarded\": {guarded}, \"redemptions\": {n}, \"seconds\": {seconds:.3}, \"per_second\": {:.0}}}",
            n as f64 / seconds
        );
    });
}
