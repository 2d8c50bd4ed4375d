//! `kaquan ecards` as a merchant scripts it: a large stock file imported
//! with progress lines (duplicates skipped and listed by line), a file
//! with a wrong row refused whole, the products with their counts, and
//! 补发缺货.

mod common;
use common::*;

/// A 兑换码 product sold on 拼多多, made through core as the console does.
async fn product(env: &Env) -> i64 {
    use kaquan_core::ecard::*;
    let store = env.sqlite_store();
    let fields = EcardProductFields {
        name: "视频会员月卡".into(),
        face_value_fen: 1_990,
        delivery_form: DeliveryForm::Code,
        instructions: "在视频 App 兑换".into(),
        validity: EcardValidity::DaysAfterDelivery(30),
        own_verification_code: false,
        listings: vec![],
        remind_days: 0,
        refund_expired: false,
    };
    let actor = kaquan_core::audit::Actor::cli();
    store
        .create_ecard_product(1, &fields, 0, &actor, kaquan_web::now())
        .await
        .unwrap()
        .id
}

#[tokio::test(flavor = "multi_thread")]
async fn stock_is_imported_from_the_command_line() {
    let env = Env::sqlite();
    env.setup();
    let id = product(&env).await.to_string();
    let file = env.dir.join("卡密.csv");
    let mut csv = String::from("卡号,卡密\n");
    for i in 0..20_000 {
        csv.push_str(&format!(",CODE{i:08}\n"));
    }
    csv.push_str(",CODE00000007\n");
    std::fs::write(&file, &csv).unwrap();
    let out = env.run(&[
        "ecards",
        "import",
        "--product",
        &id,
        "--file",
        file.to_str().unwrap(),
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (report["n_rows"].as_i64(), report["n_imported"].as_i64()),
        (Some(20_001), Some(20_000))
    );
    assert_eq!(report["skipped"][0]["line"], 20_002);
    let progress = String::from_utf8_lossy(&out.stderr);
    assert!(
        progress.contains("加密 100%") && progress.contains("入库中"),
        "{progress}"
    );

    let bad = env.dir.join("bad.csv");
    std::fs::write(&bad, "卡号,卡密\n,NEW-1\nX,\n").unwrap();
    let refused = env
        .command(&[
            "ecards",
            "import",
            "--product",
            &id,
            "--file",
            bad.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("第 3 行：缺少兑换码") && stderr.contains("没有导入任何一行"),
        "{stderr}"
    );

    assert!(!stderr.contains("入库中"), "{stderr}");
    let products = env.json(&["ecards", "products", "--json"]);
    assert_eq!(products[0]["available"], 20_000);
    let delivered = env.json(&["ecards", "deliver-waiting", "--json"]);
    assert_eq!(delivered["delivered_lines"], 0);
    let missing = env
        .command(&[
            "ecards",
            "import",
            "--product",
            "999",
            "--file",
            file.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!missing.status.success());
}
