//! 双人复核 through the API and the console on SQLite and PostgreSQL: with
//! thresholds set, an activation over them waits in 待审批; the person who
//! asked cannot approve it, a card manager without the approve permission
//! cannot either; a second owner approves it and it runs the filter as it
//! was asked on the cards as they are then (the count taken again); a
//! rejected request does nothing; the daily cap turns the activation past
//! it into a request; a password export waits and is downloaded once by
//! the person who asked; a balance adjustment over the threshold runs once
//! on approval. Every step is in the audit log.

mod common;

use common::TestApp;
use serde_json::{json, Value};

on_both_backends! {
    bulk_actions_over_the_thresholds_wait_for_a_second_person => maker_checker;
    the_daily_cap_and_secrets_exports_and_adjustments_wait_too => caps_exports_adjustments;
}

async fn batch(app: &TestApp, client: &common::Client, quantity: i64) -> i64 {
    let (status, made) = client
        .post(
            "/api/v1/batches",
            json!({"name": "复核卡", "quantity": quantity, "face_value_fen": 10_000}),
        )
        .await;
    assert_eq!(status, 202, "{made}");
    let id = made["batch_id"].as_i64().unwrap();
    app.wait_for_batch(client, id).await;
    id
}

async fn active_cards(client: &common::Client, batch_id: i64) -> i64 {
    let (_, list) = client
        .get(&format!("/api/v1/cards?batch_id={batch_id}&state=active"))
        .await;
    list["total"].as_i64().unwrap()
}

async fn set_policy(client: &common::Client, policy: Value) {
    let (status, saved) = client
        .send(reqwest::Method::PUT, "/api/v1/approval-policy", policy)
        .await;
    assert_eq!(status, 200, "{saved}");
}

async fn maker_checker(app: TestApp) {
    app.add_staff("checker", "owner").await;
    app.add_staff("cards", "card_manager").await;
    let owner = app.client("owner").await;

    let cards = app.client("cards").await;
    let (status, policy) = owner.get("/api/v1/approval-policy").await;
    assert_eq!(status, 200);
    assert_eq!(policy["activate_count_over"], Value::Null, "off by default");
    set_policy(
        &owner,
        json!({"activate_count_over": 5, "activate_value_over_fen": null, "export_secrets": false,
               "delete_cards": true, "adjust_over_fen": null, "daily_max_cards": null,
               "daily_max_value_fen": null, "expiry_hours": 24}),
    )
    .await;
    let (status, refused) = owner
        .send(
            reqwest::Method::PUT,
            "/api/v1/approval-policy",
            json!({"activate_count_over": -1, "expiry_hours": 24}),
        )
        .await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (422, Some("invalid"))
    );
    let batch_id = batch(&app, &owner, 10).await;

    // Within the threshold: runs at once.
    let five = json!({"filter": {"batch_id": batch_id, "serial_to": first_serial(&owner, batch_id).await + 4}});
    let (status, done) = cards.post("/api/v1/cards/activate", five).await;
    assert_eq!((status, done["n_cards"].as_i64()), (200, Some(5)));
    // Over it (10 > 5, counting only what would move? 5 inactive left, so
    // ask for the whole batch after deactivating them again).
    let (status, _) = cards
        .post(
            "/api/v1/cards/deactivate",
            json!({"filter": {"batch_id": batch_id}}),
        )
        .await;
    assert_eq!(status, 200);
    let whole = json!({"filter": {"batch_id": batch_id}});
    let (status, held) = cards.post("/api/v1/cards/activate", whole.clone()).await;
    assert_eq!(status, 202, "{held}");
    assert_eq!(held["state"], "pending");
    assert_eq!(held["kind"], "activate_cards");
    assert_eq!(held["n_cards"], 10);
    assert_eq!(held["reason"], "一次激活超过 5 张");
    assert_eq!(active_cards(&owner, batch_id).await, 0, "nothing ran");
    // A second click finds the same request.
    let (status, again) = cards.post("/api/v1/cards/activate", whole).await;
    assert_eq!((status, &again["id"]), (202, &held["id"]));
    let id = held["id"].as_i64().unwrap();

    decide_activation(&app, batch_id, id).await;
}

/// Only another person with the permission decides; approval runs the
/// filter on the cards as they are then; a rejection runs nothing.
async fn decide_activation(app: &TestApp, batch_id: i64, id: i64) {
    let owner = app.client("owner").await;
    let checker = app.client("checker").await;
    let cards = app.client("cards").await;
    // The person who asked cannot approve; nor can a role without the permission.
    let (status, refused) = cards
        .post(&format!("/api/v1/approvals/{id}/approve"), json!({}))
        .await;
    assert_eq!(status, 403, "{refused}");
    let (status, mine) = owner
        .post(
            "/api/v1/cards/delete",
            json!({"filter": {"batch_id": batch_id, "state": "voided"}}),
        )
        .await;
    assert_eq!(status, 202, "{mine}");
    let (status, refused) = owner
        .post(
            &format!("/api/v1/approvals/{}/approve", mine["id"]),
            json!({}),
        )
        .await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (403, Some("own_request"))
    );

    // Cards change before approval: the count is taken again and shown.
    let one = json!({"filter": {"batch_id": batch_id, "serial_to": first_serial(&owner, batch_id).await}});
    let (status, _) = owner.post("/api/v1/cards/void", one).await;
    assert_eq!(status, 200);
    let (status, pending) = checker.get(&format!("/api/v1/approvals/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(
        (pending["n_cards"].as_i64(), pending["n_cards_now"].as_i64()),
        (Some(10), Some(9))
    );
    let page = checker.page("/approvals").await;
    assert!(page.contains("现在 9 张"), "{page}");
    assert!(page.contains("批准"), "the checker is offered the buttons");

    let (status, approved) = checker
        .post(&format!("/api/v1/approvals/{id}/approve"), json!({}))
        .await;
    assert_eq!(status, 200, "{approved}");
    assert_eq!(approved["state"], "done");
    assert_eq!(approved["n_done"], 9);
    assert_eq!(approved["decided_by"], "checker");
    assert_eq!(active_cards(&owner, batch_id).await, 9);
    let (status, twice) = checker
        .post(&format!("/api/v1/approvals/{id}/approve"), json!({}))
        .await;
    assert_eq!(
        (status, twice["error"]["code"].as_str()),
        (409, Some("approval_decided"))
    );

    // Rejected: nothing runs.
    let (status, rejected) = checker
        .post(
            &format!("/api/v1/approvals/{}/reject", mine["id"]),
            json!({}),
        )
        .await;
    assert_eq!(
        (status, rejected["state"].as_str()),
        (200, Some("rejected"))
    );
    let (_, voided) = owner
        .get(&format!("/api/v1/cards?batch_id={batch_id}&state=voided"))
        .await;
    assert_eq!(voided["total"], 1, "the voided card was not deleted");

    let (_, pending) = owner.get("/api/v1/approvals?state=pending").await;
    assert_eq!(pending["total"], 0);
    let (_, all) = owner.get("/api/v1/approvals").await;
    assert_eq!(all["total"], 2);
    let (_, audit) = owner.get("/api/v1/audit-log?action=approve_request").await;
    assert_eq!(audit["total"], 1, "{audit}");
    let (_, audit) = owner.get("/api/v1/audit-log?action=request_approval").await;
    assert_eq!(audit["total"], 2, "{audit}");
    let (_, audit) = owner.get("/api/v1/audit-log?action=activate_cards").await;
    assert!(audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("approval={id}"))));
    // A read-only role sees no queue.
    app.add_staff("viewer", "readonly").await;
    let viewer = app.client("viewer").await;
    assert_eq!(viewer.get("/api/v1/approvals").await.0, 403);
}

async fn first_serial(client: &common::Client, batch_id: i64) -> i64 {
    let (_, list) = client
        .get(&format!("/api/v1/cards?batch_id={batch_id}&page_size=100"))
        .await;
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["serial"].as_i64().unwrap())
        .min()
        .unwrap()
}

async fn caps_exports_adjustments(app: TestApp) {
    app.add_staff("checker", "owner").await;
    let owner = app.client("owner").await;
    let checker = app.client("checker").await;
    set_policy(
        &owner,
        json!({"activate_count_over": null, "activate_value_over_fen": null, "export_secrets": true,
               "delete_cards": false, "adjust_over_fen": 10_000, "daily_max_cards": 6,
               "daily_max_value_fen": null, "expiry_hours": 1}),
    )
    .await;
    let batch_id = batch(&app, &owner, 10).await;
    let first = first_serial(&owner, batch_id).await;
    let range = |from: i64, to: i64| json!({"filter": {"batch_id": batch_id, "serial_from": first + from, "serial_to": first + to}});
    let (status, done) = owner.post("/api/v1/cards/activate", range(0, 3)).await;
    assert_eq!((status, done["n_cards"].as_i64()), (200, Some(4)));
    // 4 + 4 > 6: the whole activation is held, none of it runs.
    let (status, held) = owner.post("/api/v1/cards/activate", range(4, 7)).await;
    assert_eq!(status, 202, "{held}");
    assert_eq!(
        held["n_cards"], 4,
        "a held request records what it reaches: {held}"
    );
    assert!(
        held["reason"].as_str().unwrap().contains("每日激活上限"),
        "{held}"
    );
    assert_eq!(active_cards(&owner, batch_id).await, 4);
    let page = owner.page("/approvals").await;
    assert!(page.contains("今天您已激活 4 张卡"), "{page}");
    let (status, approved) = checker
        .post(
            &format!("/api/v1/approvals/{}/approve", held["id"]),
            json!({}),
        )
        .await;
    assert_eq!(
        (status, approved["n_done"].as_i64()),
        (200, Some(4)),
        "{approved}"
    );
    assert_eq!(active_cards(&owner, batch_id).await, 8);

    exports_wait(&app, batch_id).await;
    adjustments_wait(&app).await;
}

/// A password export waits, then is downloaded once by the person who asked.
async fn exports_wait(app: &TestApp, batch_id: i64) {
    let owner = app.client("owner").await;
    let checker = app.client("checker").await;
    let path = format!("/api/v1/cards/export?batch_id={batch_id}&with_secrets=true");
    let (status, held) = owner.get(&path).await;
    assert_eq!(status, 202, "{held}");
    assert_eq!(held["kind"], "export_secrets");
    let id = held["id"].as_i64().unwrap();
    let file = format!("/api/v1/approvals/{id}/file");
    assert_eq!(owner.get(&file).await.0, 409, "not yet approved");
    let (status, approved) = checker
        .post(&format!("/api/v1/approvals/{id}/approve"), json!({}))
        .await;
    assert_eq!(
        (status, approved["state"].as_str()),
        (200, Some("approved"))
    );
    assert_eq!(
        checker.get(&file).await.0,
        404,
        "only for the person who asked"
    );
    let (status, bytes) = owner.get_bytes(&file).await;
    assert_eq!(status, 200);
    let saved = common::temp_dir("approved-export").join("cards.xlsx");
    std::fs::write(&saved, &bytes).unwrap();
    let rows = common::xlsx_rows(&saved);
    assert_eq!(rows.len(), 11, "a header and ten cards");
    assert!(rows[0].iter().any(|h| h == "密码"), "{:?}", rows[0]);
    assert_eq!(owner.get(&file).await.0, 409, "once");
    // The background export waits the same way.
    let (status, held) = owner
        .post(
            "/api/v1/exports",
            json!({"kind": "cards", "format": "csv", "with_secrets": true, "filter": {"batch_id": batch_id}}),
        )
        .await;
    assert_eq!(
        (status, held["kind"].as_str()),
        (202, Some("export_secrets"))
    );
}

/// An adjustment over ¥100 waits; approval posts it once.
async fn adjustments_wait(app: &TestApp) {
    let owner = app.client("owner").await;
    let checker = app.client("checker").await;
    let customer = app
        .store
        .ensure_customer(app.merchant_id, "vip-approval", kaquan_web::now())
        .await
        .unwrap();
    let adjust = format!("/api/v1/customers/{}/adjustments", customer.id);
    let (status, small) = owner
        .post(&adjust, json!({"delta_fen": 10_000, "reason": "补偿"}))
        .await;
    assert_eq!(status, 201, "{small}");
    let (status, held) = owner
        .post(&adjust, json!({"delta_fen": 20_000, "reason": "大额补偿"}))
        .await;
    assert_eq!(status, 202, "{held}");
    assert_eq!(
        (held["value_fen"].as_i64(), held["target"].as_str()),
        (Some(20_000), Some(&*format!("customer={}", customer.id)))
    );
    let (status, approved) = checker
        .post(
            &format!("/api/v1/approvals/{}/approve", held["id"]),
            json!({}),
        )
        .await;
    assert_eq!(
        (status, approved["state"].as_str()),
        (200, Some("done")),
        "{approved}"
    );
    let (_, statement) = owner
        .get(&format!("/api/v1/customers/{}/statement", customer.id))
        .await;
    assert_eq!(statement["total"], 2);
    assert_eq!(statement["items"][0]["balance_after_fen"], 30_000);
    let (status, _) = owner
        .post(
            "/api/v1/customers/999999/adjustments",
            json!({"delta_fen": 50_000, "reason": "x"}),
        )
        .await;
    assert_eq!(status, 404, "no request for a customer that is not there");

    // The console's settings tab.
    let page = owner.page("/settings/approvals").await;
    assert!(page.contains("每人每日激活上限"), "{page}");
    assert!(page.contains("value=\"6\""), "{page}");
}
