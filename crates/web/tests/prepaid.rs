//! 预付卡政策 through the console and the API on SQLite and PostgreSQL:
//! the owner switches it on; then a batch over ¥1,000, an import valid for
//! a year and a 兑换码 template valid for two years are refused naming the
//! rule, while one that keeps the rules is made; only the owner may switch.

mod common;

use common::TestApp;
use serde_json::json;

on_both_backends! {
    the_prepaid_policy_refuses_batches_and_templates_that_break_it => policy_holds;
}

async fn policy_holds(app: TestApp) {
    let owner = app.client("owner").await;
    let (status, policy) = owner.get("/api/v1/prepaid-policy").await;
    assert_eq!((status, policy["enabled"].as_bool()), (200, Some(false)));
    // Off: a ¥2,000 batch is made.
    let big = json!({"name": "大额卡", "quantity": 2, "face_value_fen": 200_000});
    let (status, made) = owner.post("/api/v1/batches", big.clone()).await;
    assert_eq!(status, 202, "{made}");
    let (status, policy) = owner
        .send(
            reqwest::Method::PUT,
            "/api/v1/prepaid-policy",
            json!({"enabled": true}),
        )
        .await;
    assert_eq!((status, policy["enabled"].as_bool()), (200, Some(true)));
    assert_eq!(policy["rules"].as_array().unwrap().len(), 3);
    // On: the same batch is refused, naming the rule.
    let (status, refused) = owner.post("/api/v1/batches", big).await;
    assert_eq!(status, 422);
    assert_eq!(
        refused["error"]["message"],
        "预付卡政策：不记名卡、兑换码面值不超过 1000 元"
    );
    let today = kaquan_core::clock::format_date(kaquan_web::now());
    let year = kaquan_core::clock::format_date(kaquan_web::now() + 365 * 86_400);
    let short = json!({"name": "短期卡", "quantity": 2, "face_value_fen": 10_000,
        "valid_from": today, "valid_until": year});
    let (status, refused) = owner.post("/api/v1/batches", short).await;
    assert_eq!(status, 422);
    assert!(refused["error"]["message"]
        .as_str()
        .unwrap()
        .contains("不少于 3 年"));
    let kept = json!({"name": "合规卡", "quantity": 2, "face_value_fen": 100_000});
    let (status, made) = owner.post("/api/v1/batches", kept).await;
    assert_eq!(status, 202, "{made}");
    let two_years = kaquan_core::clock::format_date(kaquan_web::now() + 2 * 365 * 86_400);
    let template = json!({"kind": "online", "name": "礼品卡", "face_value_fen": 5_000,
        "valid_until": two_years});
    let (status, refused) = owner.post("/api/v1/code-templates", template).await;
    assert_eq!(status, 422, "{refused}");
    // The console states it; a read-only role may neither read nor switch it.
    let page = owner.page("/settings/prepaid").await;
    assert!(page.contains("<strong>已开启</strong>"), "{page}");
    assert!(page.contains("不记名卡、兑换码面值不超过 1000 元"));
    app.add_staff("viewer", "readonly").await;
    let viewer = app.client("viewer").await;
    let (status, _) = viewer
        .send(
            reqwest::Method::PUT,
            "/api/v1/prepaid-policy",
            json!({"enabled": false}),
        )
        .await;
    assert_eq!(status, 403);
    let (status, _) = owner
        .send(
            reqwest::Method::PUT,
            "/api/v1/prepaid-policy",
            json!({"enabeld": false}),
        )
        .await;
    assert_eq!(status, 422, "a misspelled field is refused");
    let (_, audit) = owner
        .get("/api/v1/audit-log?action=set_prepaid_policy")
        .await;
    assert_eq!(audit["total"], 1);
}
