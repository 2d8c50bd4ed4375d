//! 双人复核 of credential changes through the API and the console on SQLite
//! and PostgreSQL: with the switch on, a new webhook endpoint, a changed
//! endpoint URL, a rotated signing secret and new SMS provider credentials
//! wait in 待审批 showing what they change; the person who asked cannot
//! approve; once another owner approves, a URL or SMS change runs, and a
//! new signing secret is collected once by the person who asked (never
//! shown to the checker). Changes that are not credentials run at once. The
//! SMS secret is kept sealed while it waits: it is nowhere in the answers.

mod common;

use common::TestApp;
use serde_json::{json, Value};

on_both_backends! {
    webhook_credential_changes_wait_for_a_second_person => webhooks;
    sms_credentials_wait_for_a_second_person => sms;
}

const SECRET: &str = "sms-secret-9f3a";

async fn switch_on(app: &TestApp) -> (common::Client, common::Client) {
    app.add_staff("checker", "owner").await;
    let owner = app.client("owner").await;
    let (status, saved) = owner
        .send(
            reqwest::Method::PUT,
            "/api/v1/approval-policy",
            json!({"credentials": true, "expiry_hours": 24}),
        )
        .await;
    assert_eq!(
        (status, &saved["credentials"]),
        (200, &json!(true)),
        "{saved}"
    );
    (owner, app.client("checker").await)
}

async fn approve(checker: &common::Client, id: &Value) -> Value {
    let (status, approved) = checker
        .post(&format!("/api/v1/approvals/{id}/approve"), json!({}))
        .await;
    assert_eq!(status, 200, "{approved}");
    approved
}

async fn webhooks(app: TestApp) {
    let (owner, checker) = switch_on(&app).await;
    let body = json!({"url": "https://example.com/hook", "description": "ERP"});
    let (status, held) = owner.post("/api/v1/webhook-endpoints", body.clone()).await;
    assert_eq!(status, 202, "{held}");
    assert_eq!(
        (&held["kind"], &held["target"], &held["detail"]),
        (
            &json!("change_credentials"),
            &json!("webhook_endpoint=new"),
            &json!("create")
        )
    );
    assert_eq!(
        held["target_text"],
        "新增推送地址：https://example.com/hook"
    );
    let (_, listed) = owner.get("/api/v1/webhook-endpoints").await;
    assert_eq!(listed, json!([]), "nothing made while it waits");
    let (status, again) = owner.post("/api/v1/webhook-endpoints", body).await;
    assert_eq!((status, &again["id"]), (202, &held["id"]), "a second click");
    let id = &held["id"];
    let (status, own) = owner
        .post(&format!("/api/v1/approvals/{id}/approve"), json!({}))
        .await;
    assert_eq!(
        (status, &own["error"]["code"]),
        (403, &json!("own_request"))
    );
    let approved = approve(&checker, id).await;
    assert_eq!(approved["state"], "approved");
    assert!(!approved.to_string().contains("whsec_"), "{approved}");
    // Only the person who asked collects the secret, once.
    let collect = format!("/api/v1/approvals/{id}/collect");
    let (status, _) = checker.post(&collect, json!({})).await;
    assert_eq!(status, 404);
    let (status, created) = owner.post(&collect, json!({})).await;
    assert_eq!(status, 200, "{created}");
    assert!(created["secret"].as_str().unwrap().starts_with("whsec_"));
    assert_eq!(created["url"], "https://example.com/hook");
    let (status, twice) = owner.post(&collect, json!({})).await;
    assert_eq!(
        (status, &twice["error"]["code"]),
        (409, &json!("approval_not_approved"))
    );
    let (_, done) = owner.get(&format!("/api/v1/approvals/{id}")).await;
    assert_eq!(done["state"], "done");
    let endpoint = created["id"].as_i64().unwrap();
    rotate_and_update(&app, endpoint, created["secret"].as_str().unwrap()).await;
}

/// A rotation waits and is collected like a new endpoint; a new URL runs on
/// approval; switching an endpoint off is not a credential change.
async fn rotate_and_update(app: &TestApp, endpoint: i64, first_secret: &str) {
    let owner = app.client("owner").await;
    let checker = app.client("checker").await;
    let rotate = format!("/api/v1/webhook-endpoints/{endpoint}/rotate-secret");
    let (status, held) = owner.post(&rotate, json!({})).await;
    assert_eq!(status, 202, "{held}");
    assert_eq!(
        held["target_text"],
        format!("更换推送地址 {endpoint} 的签名密钥")
    );
    approve(&checker, &held["id"]).await;
    let (status, rotated) = owner
        .post(
            &format!("/api/v1/approvals/{}/collect", held["id"]),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{rotated}");
    let second = rotated["secret"].as_str().unwrap();
    assert!(second.starts_with("whsec_") && second != first_secret);

    let put = |body: Value| {
        let owner = &owner;
        async move {
            owner
                .send(
                    reqwest::Method::PUT,
                    &format!("/api/v1/webhook-endpoints/{endpoint}"),
                    body,
                )
                .await
        }
    };
    let (status, _) = put(json!({"url": "https://example.com/hook", "enabled": false})).await;
    assert_eq!(status, 204, "the same URL switched off runs at once");
    let (status, held) = put(json!({"url": "https://example.com/new", "enabled": true})).await;
    assert_eq!(status, 202, "{held}");
    assert_eq!(
        held["target_text"],
        format!("修改推送地址 {endpoint} 的 URL：https://example.com/new")
    );
    let (_, listed) = owner.get("/api/v1/webhook-endpoints").await;
    assert_eq!(listed[0]["url"], "https://example.com/hook");
    let approved = approve(&checker, &held["id"]).await;
    assert_eq!(
        (approved["state"].as_str(), approved["n_done"].as_i64()),
        (Some("done"), Some(1))
    );
    let (_, listed) = owner.get("/api/v1/webhook-endpoints").await;
    assert_eq!(
        (&listed[0]["url"], &listed[0]["enabled"]),
        (&json!("https://example.com/new"), &json!(true))
    );
    let (_, audit) = owner
        .get("/api/v1/audit-log?action=update_webhook_endpoint")
        .await;
    assert!(
        audit
            .to_string()
            .contains(&format!("approval={}", held["id"])),
        "{audit}"
    );
}

fn aliyun(secret: &str, template: &str) -> Value {
    json!({"provider": "aliyun", "access_key_id": "LTAI5tApproval", "access_key_secret": secret,
           "sign_name": "果园", "notify_customer_on_submit": true, "template_submit": template})
}

async fn sms(app: TestApp) {
    let (owner, checker) = switch_on(&app).await;
    let put = |body: Value| {
        let owner = &owner;
        async move {
            owner
                .send(reqwest::Method::PUT, "/api/v1/sms-settings", body)
                .await
        }
    };
    let (status, held) = put(aliyun(SECRET, "SMS_1")).await;
    assert_eq!(status, 202, "{held}");
    assert_eq!(
        held["target_text"],
        "修改短信服务商凭据：aliyun LTAI5tApproval，新的 AccessKey Secret"
    );
    let (_, saved) = owner.get("/api/v1/sms-settings").await;
    assert_eq!(
        saved["has_secret"], false,
        "nothing saved while it waits: {saved}"
    );
    // A new secret is never matched to a request made with another one.
    let (status, again) = put(aliyun(SECRET, "SMS_1")).await;
    assert_eq!(status, 202);
    assert_ne!(again["id"], held["id"]);
    for answer in [&held, &checker.get("/api/v1/approvals").await.1] {
        assert!(!answer.to_string().contains(SECRET), "{answer}");
    }
    let approved = approve(&checker, &held["id"]).await;
    assert_eq!(approved["state"], "done", "{approved}");
    let (_, saved) = owner.get("/api/v1/sms-settings").await;
    assert_eq!(
        (
            &saved["access_key_id"],
            &saved["has_secret"],
            &saved["template_submit"]
        ),
        (&json!("LTAI5tApproval"), &json!(true), &json!("SMS_1"))
    );
    assert!(!saved.to_string().contains(SECRET));
    // Templates alone are no credential change: saved at once, secret kept.
    let (status, saved) = put(aliyun("", "SMS_2")).await;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(
        (&saved["template_submit"], &saved["has_secret"]),
        (&json!("SMS_2"), &json!(true))
    );
    let (_, audit) = owner.get("/api/v1/audit-log").await;
    assert!(!audit.to_string().contains(SECRET));
    console(&app).await;
}

/// The console: the switch on the policy page, the request in 待审批 with
/// the collect button for the person who asked.
async fn console(app: &TestApp) {
    let owner = app.client("owner").await;
    let checker = app.client("checker").await;
    let page = owner.page("/settings/approvals").await;
    assert!(
        page.contains(r#"id="credentials" value="true" checked"#),
        "{page}"
    );
    let (status, held) = owner
        .post(
            "/api/v1/webhook-endpoints",
            json!({"url": "https://example.com/console"}),
        )
        .await;
    assert_eq!(status, 202);
    approve(&checker, &held["id"]).await;
    let queue = owner.page("/approvals?state=approved").await;
    assert!(queue.contains("领取签名密钥"), "{queue}");
    assert!(!checker
        .page("/approvals?state=approved")
        .await
        .contains("领取签名密钥"));
    let shown = owner
        .http
        .post(format!("{}/approvals/{}/collect", owner.base, held["id"]))
        .form(&[("csrf", owner.csrf.as_str())])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(shown.contains("whsec_"), "{shown}");
}
