//! 印刷厂 on SQLite and PostgreSQL: a print shop registered with a key the
//! `age-keygen` tool made; an export with passwords sealed to it (the card
//! list's, and a background one) opens with the `age` tool and the shop's
//! private key only, and holds exactly what the unsealed export holds; the
//! console shows which batches still hold kaquan's sealed copies until
//! they are purged, and deleting cards counts their copies off.

mod common;

use common::TestApp;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;

on_both_backends! {
    exports_sealed_to_a_print_shop_open_with_its_key_only => sealed_exports;
}

/// A key pair made by `age-keygen`: the identity file and the public key.
fn keygen(dir: &Path, name: &str) -> (PathBuf, String) {
    let path = dir.join(name);
    let made = Command::new("age-keygen")
        .arg("-o")
        .arg(&path)
        .output()
        .expect("age-keygen (Debian package age) is installed");
    assert!(made.status.success(), "{made:?}");
    let text = std::fs::read_to_string(&path).unwrap();
    let recipient = text
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .unwrap()
        .to_owned();
    (path, recipient)
}

/// What `age -d` makes of `sealed` with `identity`, or `None` when it cannot.
fn open_with_age(identity: &Path, sealed: &[u8], dir: &Path) -> Option<Vec<u8>> {
    let input = dir.join("sealed.age");
    std::fs::write(&input, sealed).unwrap();
    let out = Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(identity)
        .arg(&input)
        .output()
        .unwrap();
    out.status.success().then_some(out.stdout)
}

async fn sealed_exports(app: TestApp) {
    let dir = common::temp_dir("print-shops");
    let (identity, recipient) = keygen(&dir, "shop.txt");
    let (stranger, _) = keygen(&dir, "stranger.txt");
    let owner = app.client("owner").await;
    let (status, refused) = owner
        .post(
            "/api/v1/print-shops",
            json!({"name": "城南印刷厂", "recipient": "ssh-ed25519 AAAA"}),
        )
        .await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (422, Some("invalid"))
    );
    let (status, refused) = owner
        .post(
            "/api/v1/print-shops",
            json!({"name": "城南印刷厂", "recipent": recipient}),
        )
        .await;
    assert_eq!(status, 422, "a misspelled field: {refused}");
    let (status, shop) = owner
        .post(
            "/api/v1/print-shops",
            json!({"name": "城南印刷厂", "recipient": recipient.to_uppercase()}),
        )
        .await;
    assert_eq!(status, 201, "{shop}");
    assert_eq!(shop["recipient"], recipient.as_str(), "kept in lower case");
    let (status, _) = owner
        .post(
            "/api/v1/print-shops",
            json!({"name": "城南印刷厂", "recipient": recipient}),
        )
        .await;
    assert_eq!(status, 409, "one name per merchant");
    let shop_id = shop["id"].as_i64().unwrap();

    let (status, made) = owner
        .post(
            "/api/v1/batches",
            json!({"name": "印刷批", "quantity": 20, "face_value_fen": 5_000}),
        )
        .await;
    assert_eq!(status, 202, "{made}");
    let batch_id = made["batch_id"].as_i64().unwrap();
    let batch = app.wait_for_batch(&owner, batch_id).await;
    assert_eq!(batch["n_copies"], 20);

    // The card list's export, sealed and not.
    let plain_path = format!("/api/v1/cards/export?batch_id={batch_id}&with_secrets=true");
    let (status, plain) = owner.get_bytes(&plain_path).await;
    assert_eq!(status, 200);
    let (status, sealed) = owner
        .get_bytes(&format!("{plain_path}&print_shop_id={shop_id}"))
        .await;
    assert_eq!(status, 200);
    assert!(sealed.starts_with(b"age-encryption.org/v1\n-> X25519 "));
    assert!(
        !sealed.windows(4).any(|w| w == b"PK\x03\x04"),
        "no xlsx inside in the clear"
    );
    assert_eq!(
        open_with_age(&stranger, &sealed, &dir),
        None,
        "another key opens nothing"
    );
    let opened = open_with_age(&identity, &sealed, &dir).expect("the shop's key opens it");
    let (a, b) = (dir.join("plain.xlsx"), dir.join("opened.xlsx"));
    std::fs::write(&a, &plain).unwrap();
    std::fs::write(&b, &opened).unwrap();
    let rows = common::xlsx_rows(&b);
    assert_eq!(rows.len(), 21);
    assert_eq!(common::xlsx_rows(&a), rows, "the same cards and passwords");
    let (status, _) = owner
        .get_bytes(&format!("{plain_path}&print_shop_id=999999"))
        .await;
    assert_eq!(status, 422, "a print shop that is not there");

    background_export_is_sealed(&owner, (batch_id, shop_id), &identity, &dir).await;
    copies_are_shown_until_purged(&app, batch_id).await;
    let (_, audit) = owner.get("/api/v1/audit-log?action=export_cards").await;
    assert!(audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("print_shop={shop_id}"))));
}

/// The console lists batches holding copies; deleting cards and purging
/// count them off; `verify` agrees with the count.
async fn copies_are_shown_until_purged(app: &TestApp, batch_id: i64) {
    let owner = app.client("owner").await;
    let page = owner.page("/settings/print-shops").await;
    assert!(page.contains("城南印刷厂"), "{page}");
    assert!(
        page.contains(&format!("<a href=\"/batches/{batch_id}\">")),
        "{page}"
    );
    let batch_page = owner.page(&format!("/batches/{batch_id}")).await;
    assert!(batch_page.contains("加密导出给"), "{batch_page}");
    let (_, list) = owner
        .get(&format!("/api/v1/cards?batch_id={batch_id}&page_size=1"))
        .await;
    let number = list["items"][0]["number"].as_str().unwrap().to_owned();
    let one = json!({"filter": {"batch_id": batch_id, "number": number}});
    assert_eq!(owner.post("/api/v1/cards/void", one.clone()).await.0, 200);
    assert_eq!(owner.post("/api/v1/cards/delete", one).await.0, 200);
    let (_, batch) = owner.get(&format!("/api/v1/batches/{batch_id}")).await;
    assert_eq!(batch["n_copies"], 19);
    assert_eq!(
        app.store.check_invariants().await.unwrap(),
        Vec::<String>::new()
    );
    let (status, purged) = owner
        .post(
            "/api/v1/cards/purge-secrets",
            json!({"filter": {"batch_id": batch_id}}),
        )
        .await;
    assert_eq!((status, purged["n_cards"].as_i64()), (200, Some(19)));
    let (_, batch) = owner.get(&format!("/api/v1/batches/{batch_id}")).await;
    assert_eq!(batch["n_copies"], 0);
    let page = owner.page("/settings/print-shops").await;
    assert!(page.contains("没有批次保存密码副本"), "{page}");
    assert_eq!(
        app.store.check_invariants().await.unwrap(),
        Vec::<String>::new()
    );
}

/// A background export, sealed, opens to what the unsealed CSV holds.
async fn background_export_is_sealed(
    owner: &common::Client,
    (batch_id, shop_id): (i64, i64),
    identity: &Path,
    dir: &Path,
) {
    let plain_path = format!("/api/v1/cards/export?batch_id={batch_id}&with_secrets=true");
    // A background export, sealed.
    let body = json!({"kind": "cards", "format": "csv", "with_secrets": true,
                      "print_shop_id": shop_id, "filter": {"batch_id": batch_id}});
    let (status, job) = owner.post("/api/v1/exports", body).await;
    assert_eq!(status, 202, "{job}");
    assert!(
        job["file_name"].as_str().unwrap().ends_with(".csv.age"),
        "{job}"
    );
    let job = loop {
        let (_, job) = owner.get(job["status_url"].as_str().unwrap()).await;
        if job["state"] != "running" {
            break job;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(job["state"], "ready", "{job}");
    let (status, sealed) = owner.get_bytes(job["download_url"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    let csv = String::from_utf8(open_with_age(identity, &sealed, dir).unwrap()).unwrap();
    let (_, plain_csv) = owner.get_bytes(&format!("{plain_path}&format=csv")).await;
    assert_eq!(csv, String::from_utf8(plain_csv).unwrap());
}
