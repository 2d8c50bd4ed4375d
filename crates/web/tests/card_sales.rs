//! 商城卖卡 over HTTP: the mall sells pickup cards through the signed open
//! API, once per order however often it calls back, and refunds them; staff
//! see the sales without passwords.

mod common;

use common::{Client, Mall, TestApp};
use serde_json::{json, Value};

on_both_backends! {
    a_mall_sells_cards_once_per_order_and_refunds_them => sells_and_refunds;
    fifty_callbacks_of_one_paid_order_allocate_once => fifty_callbacks;
    bad_sales_are_refused_with_a_clear_error_and_take_nothing => refusals;
    sold_cards_are_texted_to_the_buyer_when_asked => texted;
}

/// A ready batch of `quantity` inactive cards; its id.
async fn batch(app: &TestApp, owner: &Client, quantity: i64) -> i64 {
    let (status, created) = owner
        .post(
            "/api/v1/batches",
            json!({"name": "卖卡批次", "quantity": quantity}),
        )
        .await;
    assert_eq!(status, 202, "{created}");
    let batch_id = created["batch_id"].as_i64().unwrap();
    app.wait_for_batch(owner, batch_id).await;
    batch_id
}

/// The password of each card, as the merchant's key opens it.
async fn passwords(app: &TestApp) -> Vec<(String, String)> {
    let rows = app
        .store
        .cards_after(app.merchant_id, &Default::default(), 0, 100)
        .await
        .unwrap();
    rows.iter()
        .map(|r| {
            let keys = app.master.merchant_keys(app.merchant_id, r.key_version);
            let password = keys
                .open(&r.card.number, r.secret_sealed.as_ref().unwrap())
                .unwrap();
            (r.card.number.clone(), password)
        })
        .collect()
}

fn numbers(sale: &Value) -> Vec<String> {
    sale["cards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["number"].as_str().unwrap().to_owned())
        .collect()
}

async fn sells_and_refunds(app: TestApp) {
    let owner = app.client("owner").await;
    let mall = Mall::new(&app).await;
    let batch_id = batch(&app, &owner, 3).await;
    let order =
        json!({"order_id": "M1", "batch_id": batch_id, "quantity": 2, "phone": "13800001234"});
    let sold = mall
        .post("/open/v1/card-sales", order.clone(), "sale-M1")
        .await;
    assert_eq!(sold.status, 201, "{}", sold.body);
    assert!(!sold.replayed);
    assert_eq!(sold.body["state"], "sold");
    assert_eq!(sold.body["phone"], "138****1234");
    let known = passwords(&app).await;
    for card in sold.body["cards"].as_array().unwrap() {
        assert_eq!(card["state"], "active");
        let number = card["number"].as_str().unwrap();
        let (_, password) = known.iter().find(|(n, _)| n == number).unwrap();
        assert_eq!(card["password"], password.as_str());
    }
    // The mall calls back again, with the same key or a new one: the same cards.
    for key in ["sale-M1", "sale-M1-retry"] {
        let again = mall.post("/open/v1/card-sales", order.clone(), key).await;
        assert_eq!(
            (again.status, again.replayed),
            (200, true),
            "{}",
            again.body
        );
        assert_eq!(again.body, sold.body);
    }
    // Staff see the sale, never a password.
    let (status, listed) = owner.get("/api/v1/card-sales").await;
    assert_eq!(status, 200);
    assert_eq!(listed["total"], 1);
    assert_eq!(listed["items"][0]["order_id"], "M1");
    assert_eq!(listed["items"][0]["cards"].as_array().unwrap().len(), 2);
    assert!(!listed.to_string().contains("password"));
    let page = owner.page("/card-sales").await;
    assert!(page.contains("M1") && page.contains("已售出"), "{page}");
    // Only one card is left.
    let short = mall
        .post(
            "/open/v1/card-sales",
            json!({"order_id": "M2", "batch_id": batch_id, "quantity": 2}),
            "sale-M2",
        )
        .await;
    assert_eq!(short.status, 409);
    assert_eq!(short.body["error"]["code"], "out_of_stock");
    // The refund makes both cards inactive; they are never sold again.
    let refunded = mall
        .post("/open/v1/card-sales/M1/refund", json!({}), "refund-M1")
        .await;
    assert_eq!(refunded.status, 200, "{}", refunded.body);
    assert_eq!(refunded.body["state"], "refunded");
    assert_eq!(refunded.body["n_refunded"], 2);
    assert!(refunded.body["cards"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["state"] == "inactive"));
    let last = mall
        .post(
            "/open/v1/card-sales",
            json!({"order_id": "M2", "batch_id": batch_id, "quantity": 1}),
            "sale-M2-one",
        )
        .await;
    assert_eq!(last.status, 201, "{}", last.body);
    assert!(numbers(&sold.body)
        .iter()
        .all(|n| !numbers(&last.body).contains(n)));
    let (_, events) = owner.get("/api/v1/events").await;
    let types: Vec<&str> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "cards.activated",
            "cards.deactivated",
            "cards.activated",
            "batch.ready"
        ]
    );
}

async fn fifty_callbacks(app: TestApp) {
    let owner = app.client("owner").await;
    let mall = Mall::new(&app).await;
    let batch_id = batch(&app, &owner, 10).await;
    let order = json!({"order_id": "PAID-9", "batch_id": batch_id, "quantity": 3});
    let calls = (0..50).map(|i| {
        let key = if i % 2 == 0 {
            "paid-9".to_owned()
        } else {
            format!("paid-9-{i}")
        };
        let (mall, order) = (&mall, order.clone());
        async move { mall.post("/open/v1/card-sales", order, &key).await }
    });
    let answers = futures_util::future::join_all(calls).await;
    assert_eq!(answers.iter().filter(|a| a.status == 201).count(), 1);
    assert!(answers.iter().all(|a| a.status == 201 || a.status == 200));
    let first = numbers(&answers[0].body);
    assert!(answers.iter().all(|a| numbers(&a.body) == first));
    let (_, cards) = owner.get("/api/v1/cards?state=active").await;
    assert_eq!(cards["total"], 3);
}

/// Sales a mall may send wrongly, with the status and code each gets.
fn bad_sales(batch_id: i64) -> Vec<(Value, u16, &'static str)> {
    vec![
        (
            json!({"order_id": "A", "batch_id": batch_id, "quantity": 0}),
            422,
            "invalid",
        ),
        (
            json!({"order_id": "A", "batch_id": batch_id, "quantity": 101}),
            422,
            "invalid",
        ),
        (
            json!({"order_id": "A", "batch_id": batch_id, "quantity": 1, "phone": "12345"}),
            422,
            "invalid",
        ),
        (
            json!({"order_id": "A", "batch": batch_id, "quantity": 1}),
            422,
            "unknown_field",
        ),
        (
            json!({"order_id": "", "batch_id": batch_id, "quantity": 1}),
            422,
            "invalid",
        ),
        (
            json!({"order_id": "A\u{0}", "batch_id": batch_id, "quantity": 1}),
            422,
            "control_character",
        ),
        (
            json!({"order_id": "A", "batch_id": batch_id + 99, "quantity": 1}),
            404,
            "batch_not_found",
        ),
        (
            json!({"order_id": "A", "batch_id": batch_id, "quantity": 3}),
            409,
            "out_of_stock",
        ),
    ]
}

async fn refusals(app: TestApp) {
    let owner = app.client("owner").await;
    let mall = Mall::new(&app).await;
    let batch_id = batch(&app, &owner, 2).await;
    let refused = |body: Value, key: String| {
        let mall = &mall;
        async move {
            let answer = mall.post("/open/v1/card-sales", body, &key).await;
            (
                answer.status,
                answer.body["error"]["code"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned(),
            )
        }
    };
    let cases = bad_sales(batch_id);
    for (i, (body, status, code)) in cases.into_iter().enumerate() {
        let answer = refused(body.clone(), format!("bad-{i}")).await;
        assert_eq!(answer, (status, code.to_owned()), "{body}");
    }
    let (_, cards) = owner.get("/api/v1/cards?state=active").await;
    assert_eq!(cards["total"], 0, "nothing was taken");
    let no_key = mall
        .send(
            "POST",
            "/open/v1/card-sales",
            Some(&json!({"order_id": "A", "batch_id": batch_id, "quantity": 1})),
            None,
        )
        .await;
    assert_eq!(no_key.status, 422, "{}", no_key.body);
    let sold = mall
        .post(
            "/open/v1/card-sales",
            json!({"order_id": "A", "batch_id": batch_id, "quantity": 1}),
            "good",
        )
        .await;
    assert_eq!(sold.status, 201);
    assert_eq!(
        refused(
            json!({"order_id": "A", "batch_id": batch_id, "quantity": 2}),
            "other".into()
        )
        .await,
        (409, "order_mismatch".to_owned())
    );
    let unknown = mall
        .post("/open/v1/card-sales/NOPE/refund", json!({}), "refund-nope")
        .await;
    assert_eq!(
        (unknown.status, unknown.body["error"]["code"].as_str()),
        (404, Some("sale_not_found"))
    );
    let with_body = mall
        .post(
            "/open/v1/card-sales/A/refund",
            json!({"reason": "x"}),
            "refund-a",
        )
        .await;
    assert_eq!(with_body.status, 422, "{}", with_body.body);
}

async fn texted(app: TestApp) {
    use common::providers::{ACCESS_KEY_ID, ACCESS_KEY_SECRET, SIGN_NAME};
    let owner = app.client("owner").await;
    let mall = Mall::new(&app).await;
    let batch_id = batch(&app, &owner, 2).await;
    let order = json!({"order_id": "M7", "batch_id": batch_id, "quantity": 2, "phone": "13800001234", "send_sms": true});
    // Switch D is off: refused, nothing taken.
    let refused = mall
        .post("/open/v1/card-sales", order.clone(), "sms-off")
        .await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(refused.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("D"));
    let (status, saved) = owner
        .send(
            reqwest::Method::PUT,
            "/api/v1/sms-settings",
            json!({"provider": "aliyun", "access_key_id": ACCESS_KEY_ID, "access_key_secret": ACCESS_KEY_SECRET,
                   "sign_name": SIGN_NAME, "notify_buyer_on_sale": true, "template_sale": "SMS_1001"}),
        )
        .await;
    assert_eq!(status, 200, "{saved}");
    let sold = mall.post("/open/v1/card-sales", order, "sms-on").await;
    assert_eq!(sold.status, 201, "{}", sold.body);
    let sent = common::browser::wait_until("the text of the sale", || async {
        Some(app.providers.sent()).filter(|sent| !sent.is_empty())
    })
    .await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].phone, "13800001234");
    let cards = sent[0].params["cards"].as_str().unwrap().to_owned();
    for card in sold.body["cards"].as_array().unwrap() {
        let (number, password) = (
            card["number"].as_str().unwrap(),
            card["password"].as_str().unwrap(),
        );
        assert!(
            cards.contains(&format!("卡号{number} 密码{password}")),
            "{cards}"
        );
        // The stored text names the order only, never a password.
        let (texts, _) = app
            .store
            .list_sms(app.merchant_id, Default::default())
            .await
            .unwrap();
        assert!(texts.iter().all(|t| !t.params.contains(password)));
    }
    let (_, log) = owner.get("/api/v1/sms-messages").await;
    assert_eq!(log["items"][0]["kind"], "cards_sold");
    assert_eq!(log["items"][0]["state"], "sent");
}
