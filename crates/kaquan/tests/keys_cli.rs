//! `kaquan keys` against the real binary on SQLite and PostgreSQL: a
//! rotation re-seals the cards' passwords and the 兑换码 (the same
//! passwords export again, `verify` passes); a row under a version its
//! merchant never had fails `verify`; a rewrap replaces the key file
//! without touching a row: the old file no longer opens the database, the
//! new one opens everything.

mod common;

use common::{fails_saying, tamper, Env};
use std::sync::Arc;

#[tokio::test]
async fn keys_rotate_and_rewrap_on_sqlite() {
    keys_rotate_and_rewrap(Arc::new(Env::sqlite())).await;
}

#[tokio::test]
async fn keys_rotate_and_rewrap_on_postgres() {
    keys_rotate_and_rewrap(Arc::new(Env::postgres().await)).await;
}

/// Runs `kaquan args` off the runtime and returns its standard output.
async fn run(env: &Arc<Env>, args: &[&str]) -> Vec<u8> {
    let (env, args) = (
        env.clone(),
        args.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
    );
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        env.run(&args).stdout
    })
    .await
    .unwrap()
}

async fn json(env: &Arc<Env>, args: &[&str]) -> serde_json::Value {
    serde_json::from_slice(&run(env, args).await).unwrap()
}

/// The cards' numbers and passwords as a CSV export with passwords gives them.
async fn passwords(env: &Arc<Env>, name: &str) -> Vec<(String, String)> {
    let path = env.dir.join(name);
    run(env, &common::export_passwords_args(path.to_str().unwrap())).await;
    common::read_csv_passwords(&path)
}

async fn keys_rotate_and_rewrap(env: Arc<Env>) {
    let setup = env.clone();
    tokio::task::spawn_blocking(move || setup.setup())
        .await
        .unwrap();
    run(&env, &["batch", "generate", "--quantity", "4"]).await;
    run(
        &env,
        &[
            "codes",
            "generate",
            "--name",
            "礼品卡",
            "--face-value",
            "10",
            "--quantity",
            "3",
        ],
    )
    .await;
    let before = passwords(&env, "before.csv").await;
    let status = json(&env, &["keys", "status", "--json"]).await;
    assert_eq!(status["merchants"][0]["key_version"], 1);
    assert_eq!(status["key_ring"], false);

    let rotated = json(&env, &["keys", "rotate", "--json"]).await;
    assert_eq!(rotated["key_version"], 2);
    assert_eq!(rotated["resealed"]["cards"]["resealed"], 4);
    assert_eq!(rotated["resealed"]["codes"]["resealed"], 3);
    let status = json(&env, &["keys", "status", "--json"]).await;
    assert_eq!(status["merchants"][0]["pending"]["cards"], 0);
    assert_eq!(
        passwords(&env, "after.csv").await,
        before,
        "the same passwords"
    );
    run(&env, &["verify"]).await;

    // A row under a version its merchant never had.
    tamper(&env, "UPDATE cards SET key_version = 9 WHERE id = 1").await;
    let check = env.clone();
    tokio::task::spawn_blocking(move || {
        fails_saying(check.command(&["verify"]), "");
        let out = check.command(&["verify"]).output().unwrap();
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("key version their merchant never had")
        );
    })
    .await
    .unwrap();
    tamper(&env, "UPDATE cards SET key_version = 2 WHERE id = 1").await;

    rewrap(&env, before).await;
}

/// Rewrap: a new key file, no row touched; the old one opens nothing.
async fn rewrap(env: &Arc<Env>, before: Vec<(String, String)>) {
    let new_key = env.dir.join("new.key");
    run(
        env,
        &[
            "keys",
            "rewrap",
            "--new-key-file",
            new_key.to_str().unwrap(),
        ],
    )
    .await;
    let old_key = env.dir.join("test.key");
    let (old, new, url) = (old_key.clone(), new_key.clone(), env.url.clone());
    let check = env.clone();
    tokio::task::spawn_blocking(move || {
        let export = |key: &std::path::Path, out: &str| {
            check.command_on(&url, key, &common::export_passwords_args(out))
        };
        fails_saying(export(&old, "old.csv"), "打不开本数据库的密钥环");
        assert!(export(&new, "new.csv").status().unwrap().success());
        assert_eq!(
            common::read_csv_passwords(&check.dir.join("new.csv")),
            before
        );
        let verify = check.command_on(&url, &new, &["verify"]).output().unwrap();
        assert!(verify.status.success(), "{verify:?}");
        let verify = check.command_on(&url, &old, &["verify"]).output().unwrap();
        assert!(
            String::from_utf8_lossy(&verify.stdout).contains("key ring"),
            "{verify:?}"
        );
        // A second rewrap from the new key to a third.
        let third = check.dir.join("third.key");
        let again = check
            .command_on(
                &url,
                &new,
                &["keys", "rewrap", "--new-key-file", third.to_str().unwrap()],
            )
            .output()
            .unwrap();
        assert!(again.status.success(), "{again:?}");
        assert!(export(&third, "third.csv").status().unwrap().success());
        assert_eq!(
            common::read_csv_passwords(&check.dir.join("third.csv")),
            before
        );
    })
    .await
    .unwrap();
}
