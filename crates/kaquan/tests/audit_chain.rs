//! The audit chain against the real binary on SQLite and PostgreSQL:
//! records edited, swapped or deleted by hand in the database make `kaquan
//! verify` fail naming the first broken record; a head written down shows
//! a cut-off tail; an export checks with the documented auditor's script.

mod common;

use common::{tamper, Env};
use serde_json::Value;

/// What `kaquan verify` prints and whether it passed.
async fn verify(env: &std::sync::Arc<Env>) -> (bool, String) {
    cli(env, &["verify"]).await
}

/// Runs `kaquan args` off the runtime: whether it passed, and its stdout.
async fn cli(env: &std::sync::Arc<Env>, args: &[&str]) -> (bool, String) {
    let (env, args) = (
        env.clone(),
        args.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
    );
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let output = env.command(&args).output().unwrap();
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    })
    .await
    .unwrap()
}

/// The record id at `seq` of merchant 1's chain.
async fn id_at(env: &std::sync::Arc<Env>, seq: i64) -> i64 {
    let (_, out) = cli(
        env,
        &[
            "audit",
            "export",
            "--from",
            "2000-01-01",
            "--to",
            "2100-01-01",
        ],
    )
    .await;
    out.lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|r| r["seq"] == seq)
        .unwrap_or_else(|| panic!("#{seq} in {out}"))["id"]
        .as_i64()
        .unwrap()
}

/// A merchant with a few audit records, sealed; its head as written down
/// and its length.
async fn sealed_chain(env: &std::sync::Arc<Env>) -> (String, i64) {
    let setup = env.clone();
    tokio::task::spawn_blocking(move || {
        setup.setup();
        for _ in 0..2 {
            setup.run(&["batch", "generate", "--quantity", "5"]);
        }
        setup.run(&["cards", "activate", "--batch", "1"]);
        setup.run(&[
            "cards",
            "void",
            "--batch",
            "2",
            "--serial-from",
            "1",
            "--serial-to",
            "2",
        ]);
    })
    .await
    .unwrap();
    let (ok, head) = cli(env, &["audit", "head", "--json"]).await;
    assert!(ok);
    let head: Value = serde_json::from_str(&head).unwrap();
    let n = head["seq"].as_i64().unwrap();
    assert!(n >= 4, "{head}");
    let written_down = head["head"].as_str().unwrap().to_owned();
    assert_eq!(verify(env).await, (true, String::new()));
    assert!(
        cli(env, &["audit", "head", "--check", &written_down])
            .await
            .0
    );
    (written_down, n)
}

async fn chain_catches_tampering(env: Env, drop_guards: &str) {
    let env = std::sync::Arc::new(env);
    let (written_down, n) = sealed_chain(&env).await;

    // The database refuses to change a sealed record until its guard goes.
    let second = id_at(&env, 2).await;
    let edit = format!("UPDATE audit_log SET detail = 'x' WHERE id = {second}");
    let refused = std::panic::AssertUnwindSafe(tamper(&env, &edit));
    assert!(futures_util::FutureExt::catch_unwind(refused)
        .await
        .is_err());
    tamper(&env, drop_guards).await;

    // Edited: named, and clean again once undone.
    tamper(
        &env,
        &format!("UPDATE audit_log SET n_affected = n_affected + 1 WHERE id = {second}"),
    )
    .await;
    let (ok, out) = verify(&env).await;
    assert!(!ok);
    assert!(
        out.contains(&format!("broken at record {second} (#2 of the chain)")),
        "{out}"
    );
    tamper(
        &env,
        &format!("UPDATE audit_log SET n_affected = n_affected - 1 WHERE id = {second}"),
    )
    .await;
    assert!(verify(&env).await.0);

    swapped_records_are_named(&env, second).await;
    exports_check_with_the_auditors_script(&env, &written_down).await;

    // The tail cut off: the chain itself still walks, the head written down does not.
    let last = id_at(&env, n).await;
    tamper(&env, &format!("DELETE FROM audit_log WHERE id = {last}")).await;
    assert!(
        verify(&env).await.0,
        "a cut-off tail leaves a chain that walks"
    );
    let (ok, out) = cli(&env, &["audit", "head", "--check", &written_down]).await;
    assert!(!ok);
    assert!(out.contains("cut off"), "{out}");

    // A record deleted from the middle: the next one is named.
    let third = id_at(&env, 3).await;
    tamper(&env, &format!("DELETE FROM audit_log WHERE id = {second}")).await;
    let (ok, out) = verify(&env).await;
    assert!(!ok);
    assert!(
        out.contains(&format!("broken at record {third} (#3 of the chain)")),
        "{out}"
    );
    assert!(out.contains("missing"), "{out}");
}

/// Gives record `a` the chain place `a_seq` and record `b` the place `b_seq`.
async fn place(env: &Env, (a, a_seq): (i64, i64), (b, b_seq): (i64, i64)) {
    let sql = format!(
        "UPDATE audit_log SET chain_seq = -1 WHERE id = {a}; \
         UPDATE audit_log SET chain_seq = {b_seq} WHERE id = {b}; \
         UPDATE audit_log SET chain_seq = {a_seq} WHERE id = {a};"
    );
    tamper(env, &sql).await;
}

/// Two records swapped in the chain's order: the one moved up is named; swapped back, clean.
async fn swapped_records_are_named(env: &std::sync::Arc<Env>, second: i64) {
    let third = id_at(env, 3).await;
    place(env, (second, 3), (third, 2)).await;
    let (ok, out) = verify(env).await;
    assert!(!ok);
    assert!(
        out.contains(&format!("broken at record {third} (#2 of the chain)")),
        "{out}"
    );
    place(env, (second, 2), (third, 3)).await;
    assert!(verify(env).await.0);
}

/// The export checks with the auditor's script, and an edited line does not.
async fn exports_check_with_the_auditors_script(env: &std::sync::Arc<Env>, written_down: &str) {
    let export = env.dir.join("audit.jsonl");
    let path = export.display().to_string();
    assert!(
        cli(
            env,
            &[
                "audit",
                "export",
                "--from",
                "2000-01-01",
                "--to",
                "2100-01-01",
                "--output",
                &path
            ]
        )
        .await
        .0
    );
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/audit-check.py");
    let check = |extra: &[&str]| {
        std::process::Command::new("python3")
            .arg(script)
            .arg(&export)
            .args(extra)
            .output()
            .unwrap()
    };
    let checked = check(&["--head", written_down]);
    assert!(
        checked.status.success(),
        "{}",
        String::from_utf8_lossy(&checked.stdout)
    );
    let text = std::fs::read_to_string(&export).unwrap();
    std::fs::write(
        &export,
        text.replacen("\"n_affected\":5", "\"n_affected\":6", 1),
    )
    .unwrap();
    let checked = check(&[]);
    assert!(!checked.status.success());
    assert!(String::from_utf8_lossy(&checked.stdout).contains("does not match its hash"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_audit_chain_catches_edited_swapped_and_deleted_records_on_sqlite() {
    chain_catches_tampering(
        Env::sqlite(),
        "DROP TRIGGER audit_log_sealed_no_update; DROP TRIGGER audit_log_sealed_no_delete;",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_audit_chain_catches_edited_swapped_and_deleted_records_on_postgres() {
    chain_catches_tampering(
        Env::postgres().await,
        "DROP TRIGGER audit_log_sealed_no_change ON audit_log;",
    )
    .await;
}
