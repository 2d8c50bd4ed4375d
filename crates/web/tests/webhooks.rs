//! 事件推送 over HTTP: endpoints through the staff API, deliveries to a
//! real receiver on 127.0.0.1 signed as Standard Webhooks says, retried,
//! logged with their attempts, replayed, and an endpoint that answers 410
//! disabled. The Python suite (scripts/client-test) checks the same
//! deliveries with the official `standardwebhooks` verifier.

mod common;

use axum::http::HeaderMap;
use common::receiver::Receiver;
use common::TestApp;
use kaquan_core::event::WebhookSecret;
use serde_json::{json, Value};
use std::time::Duration;

on_both_backends! {
    deliveries_are_signed_retried_logged_and_replayed => delivered;
    endpoints_are_checked_and_their_secret_shown_once => endpoint_rules;
    an_endpoint_that_answers_gone_is_disabled_and_rotation_signs_with_both_secrets => gone_and_rotation;
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers.get(name).unwrap().to_str().unwrap()
}

/// Checks a request's signatures as a receiver holding `secret` does.
fn signed_by(secret: &str, headers: &HeaderMap, body: &[u8]) -> bool {
    let secret = WebhookSecret::parse(secret).unwrap();
    let id = header(headers, "webhook-id");
    let timestamp: i64 = header(headers, "webhook-timestamp").parse().unwrap();
    let expected = secret.sign(id, timestamp, body);
    header(headers, "webhook-signature")
        .split(' ')
        .any(|s| s == expected)
}

async fn add_endpoint(owner: &common::Client, url: &str, types: Value) -> Value {
    let (status, created) = owner
        .post(
            "/api/v1/webhook-endpoints",
            json!({"url": url, "description": "ERP", "event_types": types}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    created
}

async fn void_a_batch(app: &TestApp, owner: &common::Client, quantity: i64) -> i64 {
    let (status, created) = owner
        .post(
            "/api/v1/batches",
            json!({"name": "推送", "quantity": quantity}),
        )
        .await;
    assert_eq!(status, 202, "{created}");
    let batch_id = created["batch_id"].as_i64().unwrap();
    app.wait_for_batch(owner, batch_id).await;
    let (status, voided) = owner
        .post(
            "/api/v1/cards/void",
            json!({"filter": {"batch_id": batch_id}}),
        )
        .await;
    assert_eq!((status, voided["n_cards"].as_i64()), (200, Some(quantity)));
    batch_id
}

async fn delivered(app: TestApp) {
    let (receiver, url) = Receiver::start(&[500]).await;
    let owner = app.client("owner").await;
    let endpoint = add_endpoint(&owner, &url, json!(["cards.voided"])).await;
    let secret = endpoint["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{endpoint}");
    void_a_batch(&app, &owner, 3).await;
    // The first attempt is refused (500); the retry 5 seconds later lands.
    let seen = receiver.wait_for(2).await;
    let (first, second) = (&seen[0], &seen[1]);
    assert_eq!(
        header(&first.0, "webhook-id"),
        header(&second.0, "webhook-id")
    );
    assert_eq!(first.1, second.1, "the same body on every attempt");
    for (headers, body) in &seen {
        assert!(signed_by(&secret, headers, body));
        assert_eq!(header(headers, "content-type"), "application/json");
    }
    let body: Value = serde_json::from_slice(&second.1).unwrap();
    assert_eq!(body["type"], "cards.voided");
    assert_eq!(body["data"]["n_cards"], 3);
    assert!(body["timestamp"].as_str().unwrap().ends_with('Z'));

    // The log shows the delivery and both attempts, newest first.
    let mut log = Value::Null;
    for _ in 0..100 {
        log = owner.get("/api/v1/webhook-deliveries").await.1;
        if log["items"][0]["state"] == "delivered" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(log["total"], 1, "only cards.voided was asked for: {log}");
    let delivery = &log["items"][0];
    assert_eq!(
        (delivery["state"].as_str(), delivery["attempts"].as_i64()),
        (Some("delivered"), Some(2))
    );
    assert_eq!(delivery["webhook_id"], header(&first.0, "webhook-id"));
    let (status, detail) = owner
        .get(&format!("/api/v1/webhook-deliveries/{}", delivery["id"]))
        .await;
    assert_eq!(status, 200, "{detail}");
    let statuses: Vec<i64> = detail["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status"].as_i64().unwrap())
        .collect();
    assert_eq!(statuses, [200, 500]);
    assert_eq!(detail["body"].as_str().unwrap().as_bytes(), second.1);
    let (status, failed) = owner.get("/api/v1/webhook-deliveries?state=failed").await;
    assert_eq!((status, failed["total"].as_i64()), (200, Some(0)));

    // A replay sends it once more, with the same webhook-id.
    let (status, _) = owner
        .post(
            &format!("/api/v1/webhook-deliveries/{}/replay", delivery["id"]),
            json!({}),
        )
        .await;
    assert_eq!(status, 204);
    let seen = receiver.wait_for(3).await;
    assert_eq!(
        header(&seen[2].0, "webhook-id"),
        header(&first.0, "webhook-id")
    );
    // Every change is in the event log, wanted or not.
    let (_, events) = owner.get("/api/v1/events").await;
    let types: Vec<&str> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["cards.voided", "batch.ready"]);
    // The console shows the same log.
    let page = owner.page("/settings/webhooks?state=delivered").await;
    assert!(
        page.contains("已送达") && page.contains("cards.voided"),
        "{page}"
    );
    assert!(!page.contains(&secret), "the secret is shown only once");
}

async fn endpoint_rules(app: TestApp) {
    let owner = app.client("owner").await;
    for (body, expected) in [
        (json!({"url": "ftp://example.com/"}), "http"),
        (json!({"url": "example.com/hook"}), "完整网址"),
        (json!({"url": "https://u:p@example.com/"}), "用户名"),
        (
            json!({"url": "https://example.com/", "event_types": ["card.voided"]}),
            "未知的事件类型",
        ),
    ] {
        let (status, refused) = owner.post("/api/v1/webhook-endpoints", body.clone()).await;
        assert_eq!(status, 422, "{body}: {refused}");
        assert!(
            refused["error"]["message"]
                .as_str()
                .unwrap()
                .contains(expected),
            "{body}: {refused}"
        );
    }
    let (status, refused) = owner
        .post(
            "/api/v1/webhook-endpoints",
            json!({"url": "https://example.com/", "evnt_types": []}),
        )
        .await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (422, Some("unknown_field"))
    );
    let created = add_endpoint(&owner, "https://example.com/hook", json!([])).await;
    assert!(created["secret"].as_str().unwrap().starts_with("whsec_"));
    let (_, listed) = owner.get("/api/v1/webhook-endpoints").await;
    assert_eq!(listed[0]["event_types"], json!([]));
    assert!(listed[0].get("secret").is_none(), "{listed}");
    for i in 1..10 {
        add_endpoint(&owner, &format!("https://example.com/{i}"), json!([])).await;
    }
    let (status, full) = owner
        .post(
            "/api/v1/webhook-endpoints",
            json!({"url": "https://example.com/11"}),
        )
        .await;
    assert_eq!(status, 422, "{full}");
    let id = created["id"].as_i64().unwrap();
    let (status, _) = owner
        .send(
            reqwest::Method::PUT,
            &format!("/api/v1/webhook-endpoints/{id}"),
            json!({"url": "https://example.com/new", "event_types": ["pickup_order.shipped"], "enabled": false}),
        )
        .await;
    assert_eq!(status, 204);
    let (_, listed) = owner.get("/api/v1/webhook-endpoints").await;
    assert_eq!(listed[0]["url"], "https://example.com/new");
    assert_eq!(listed[0]["enabled"], false);
    let (status, _) = owner
        .send(
            reqwest::Method::DELETE,
            &format!("/api/v1/webhook-endpoints/{id}"),
            json!(null),
        )
        .await;
    assert_eq!(status, 204);
    let (status, _) = owner
        .send(
            reqwest::Method::DELETE,
            &format!("/api/v1/webhook-endpoints/{id}"),
            json!(null),
        )
        .await;
    assert_eq!(status, 404);
    // Only who manages the open API sees or changes endpoints.
    app.add_staff("clerk", "card_manager").await;
    let clerk = app.client("clerk").await;
    assert_eq!(clerk.get("/api/v1/webhook-endpoints").await.0, 403);
    assert_eq!(clerk.get("/api/v1/webhook-deliveries").await.0, 403);
    let (_, audit) = owner.get("/api/v1/audit-log").await;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"delete_webhook_endpoint")
            && actions.contains(&"create_webhook_endpoint")
    );
}

async fn gone_and_rotation(app: TestApp) {
    let (receiver, url) = Receiver::start(&[410]).await;
    let owner = app.client("owner").await;
    let endpoint = add_endpoint(&owner, &url, json!(["cards.voided"])).await;
    let id = endpoint["id"].as_i64().unwrap();
    void_a_batch(&app, &owner, 1).await;
    receiver.wait_for(1).await;
    let mut listed = Value::Null;
    for _ in 0..100 {
        listed = owner.get("/api/v1/webhook-endpoints").await.1;
        if listed[0]["enabled"] == false {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(listed[0]["enabled"], false, "{listed}");
    assert!(listed[0]["disabled_reason"]
        .as_str()
        .unwrap()
        .contains("410"));
    let page = owner.page("/settings/webhooks").await;
    assert!(
        page.contains(&format!("id=\"endpoint-disabled-{id}\"")),
        "the merchant is told"
    );
    let (_, log) = owner.get("/api/v1/webhook-deliveries").await;
    assert_eq!(log["items"][0]["state"], "failed");

    // Enabled again and the secret rotated: the next delivery carries both
    // signatures, so a receiver with either secret accepts it.
    let (status, _) = owner
        .send(
            reqwest::Method::PUT,
            &format!("/api/v1/webhook-endpoints/{id}"),
            json!({"url": url, "event_types": ["cards.voided"], "enabled": true}),
        )
        .await;
    assert_eq!(status, 204);
    let (status, rotated) = owner
        .post(
            &format!("/api/v1/webhook-endpoints/{id}/rotate-secret"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{rotated}");
    let new_secret = rotated["secret"].as_str().unwrap();
    assert_ne!(new_secret, endpoint["secret"].as_str().unwrap());
    assert!(rotated["previous_secret_until"].is_string());
    void_a_batch(&app, &owner, 1).await;
    let seen = receiver.wait_for(2).await;
    let (headers, body) = &seen[1];
    assert_eq!(header(headers, "webhook-signature").split(' ').count(), 2);
    assert!(signed_by(new_secret, headers, body));
    assert!(signed_by(
        endpoint["secret"].as_str().unwrap(),
        headers,
        body
    ));
}
