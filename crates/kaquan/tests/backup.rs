//! `kaquan backup` while `kaquan serve` takes redemptions, and `kaquan
//! restore` of it: the restored database verifies and holds every
//! redemption acknowledged before the backup began; a restore never
//! overwrites a database and refuses a damaged file or another key.

mod common;

use common::{fails_saying, key_and_codes, signed_post, start_server, Env};
use std::sync::{Arc, Mutex};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backup_under_load_restores_every_acknowledged_redemption_and_verifies() {
    let env = Env::sqlite();
    let (env, (key_id, secret, codes)) = tokio::task::spawn_blocking(move || {
        env.setup();
        let made = key_and_codes(&env, 400);
        (env, made)
    })
    .await
    .unwrap();
    let (mut server, address) = start_server(&env);
    let http = reqwest::Client::new();
    // Acknowledged redemptions, by customer, in the order they were answered.
    let acknowledged: Arc<Mutex<Vec<String>>> = Arc::default();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let codes = Arc::new(codes);
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let (http, address, key_id, secret) =
                (http.clone(), address.clone(), key_id.clone(), secret.clone());
            let (acknowledged, next, codes) = (acknowledged.clone(), next.clone(), codes.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let Some(code) = codes.get(i) else { return };
                    let customer = format!("c{i}");
                    let body = serde_json::json!({"customer_id": customer, "code": code, "client_ip": "10.0.0.1"});
                    let (status, answer) = signed_post(
                        &http,
                        &address,
                        (&key_id, &secret),
                        "/open/v1/redemptions",
                        &body,
                        &format!("redeem-{i}"),
                    )
                    .await;
                    assert_eq!(status, 201, "{answer}");
                    acknowledged.lock().unwrap().push(customer);
                }
            })
        })
        .collect();
    // Once a good share is in, back up while the rest keep coming.
    while acknowledged.lock().unwrap().len() < 100 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let before: Vec<String> = acknowledged.lock().unwrap().clone();
    let env = Arc::new(env);
    let backup = env.dir.join("backup.db");
    let (taking, file) = (env.clone(), backup.clone());
    tokio::task::spawn_blocking(move || {
        taking.run(&["backup", "--output", file.to_str().unwrap()])
    })
    .await
    .unwrap();
    for worker in workers {
        worker.await.unwrap();
    }
    server.kill().unwrap();
    server.wait().unwrap();
    assert!(acknowledged.lock().unwrap().len() == 400);
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(env.dir.join("backup.db.manifest.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["format"], "kaquan-backup-v1");
    assert_eq!(manifest["sha256"].as_str().unwrap().len(), 64);

    let restored = tokio::task::spawn_blocking(move || restore_and_refusals(&env, &backup))
        .await
        .unwrap();
    let conn = rusqlite::Connection::open(&restored).unwrap();
    let mut stmt = conn
        .prepare("SELECT c.external_id FROM ledger_transactions t JOIN customers c ON c.id = t.customer_id WHERE t.kind = 'redeem'")
        .unwrap();
    let in_backup: std::collections::HashSet<String> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for customer in &before {
        assert!(
            in_backup.contains(customer),
            "{customer} was acknowledged before the backup"
        );
    }
    assert!(in_backup.len() >= before.len());
}

/// Restores `backup` into a new database beside the old (verified by the
/// restore itself), after the refusals; returns the new database's path.
fn restore_and_refusals(env: &Env, backup: &std::path::Path) -> std::path::PathBuf {
    let file = backup.to_str().unwrap();
    fails_saying(env.command(&["backup", "--output", file]), "exists");
    fails_saying(
        env.command(&["restore", "--input", file]),
        "never overwrites",
    );
    let target = env.dir.join("restored.db");
    let url = format!("sqlite://{}", target.display());
    let key = env.dir.join("test.key");
    let other_key = env.dir.join("other.key");
    std::fs::write(&other_key, format!("{}\n", "ab".repeat(32))).unwrap();
    fails_saying(
        env.command_on(&url, &other_key, &["restore", "--input", file]),
        "another master key",
    );
    let damaged = env.dir.join("damaged.db");
    let mut bytes = std::fs::read(backup).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&damaged, bytes).unwrap();
    std::fs::copy(
        env.dir.join("backup.db.manifest.json"),
        env.dir.join("damaged.db.manifest.json"),
    )
    .unwrap();
    fails_saying(
        env.command_on(
            &url,
            &key,
            &["restore", "--input", damaged.to_str().unwrap()],
        ),
        "damaged",
    );
    assert!(!target.exists(), "a refused restore writes nothing");
    let output = env
        .command_on(&url, &key, &["restore", "--input", file])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("no violation"));
    target
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_is_backed_up_with_pg_dump_and_says_so() {
    let env = Env::postgres().await;
    tokio::task::spawn_blocking(move || {
        env.setup();
        fails_saying(env.command(&["backup", "--output", "x.db"]), "pg_dump");
    })
    .await
    .unwrap();
}
