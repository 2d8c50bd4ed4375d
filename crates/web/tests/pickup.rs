//! Pickup cards over HTTP on SQLite and PostgreSQL: the customer's pages,
//! attempt limits, staff pickups, and fifty simultaneous pickups of a card.

mod common;

use common::TestApp;
use serde_json::json;

on_both_backends! {
    a_customer_picks_up_one_goods_with_number_and_password => customer_pickup;
    every_wrong_answer_looks_the_same_and_guessing_locks_out => uniform_refusals;
    staff_pick_up_in_store_and_by_phone_through_the_api => staff_pickups;
    fifty_simultaneous_pickups_over_http_make_one_order => concurrent_pickups;
}

/// An active batch of `n` cards linked to two goods; returns (numbers, passwords, goods ids).
pub async fn pickup_cards(app: &TestApp, n: i64) -> (Vec<String>, Vec<String>, Vec<i64>) {
    let client = app.client("owner").await;
    let (_, apple) = client.post("/api/v1/goods", json!({"name": "苹果"})).await;
    let (_, peach) = client.post("/api/v1/goods", json!({"name": "桃子"})).await;
    let goods = vec![apple["id"].as_i64().unwrap(), peach["id"].as_i64().unwrap()];
    let (status, created) = client
        .post(
            "/api/v1/batches",
            json!({"quantity": n, "face_value_fen": 38800, "goods_ids": goods, "activate": true}),
        )
        .await;
    assert_eq!(status, 202, "{created}");
    let batch = app
        .wait_for_batch(&client, created["batch_id"].as_i64().unwrap())
        .await;
    assert_eq!(batch["state"], "ready");
    let (_, csv) = client
        .get_bytes(&format!(
            "/api/v1/cards/export?batch_id={}&format=csv&with_secrets=true",
            batch["id"]
        ))
        .await;
    let text = String::from_utf8(csv).unwrap();
    let rows: Vec<(String, String)> = text
        .lines()
        .skip(1)
        .map(|l| {
            let cells: Vec<_> = l.split(',').collect();
            (cells[1].to_owned(), cells[2].to_owned())
        })
        .collect();
    let (numbers, passwords) = rows.into_iter().unzip();
    (numbers, passwords, goods)
}

async fn post_form(app: &TestApp, path: &str, form: &[(&str, &str)]) -> (u16, String) {
    let response = reqwest::Client::new()
        .post(app.url(path))
        .form(form)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

fn address<'a>(number: &'a str, password: &'a str, goods_id: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("number", number),
        ("password", password),
        ("goods_id", goods_id),
        ("consignee", "张三"),
        ("phone", "13800001234"),
        ("province", "浙江省"),
        ("city", "杭州市"),
        ("district", "西湖区"),
        ("address", "文三路 100 号"),
        ("appointment_date", "2099-01-05"),
    ]
}

async fn customer_pickup(app: TestApp) {
    let (numbers, passwords, goods) = pickup_cards(&app, 3).await;
    let m = app.merchant_id;
    let page = reqwest::get(app.url(&format!("/m/{m}/redeem?number={}", numbers[0])))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(&numbers[0]),
        "the QR code's number is filled in"
    );
    let (status, page) = post_form(
        &app,
        &format!("/m/{m}/redeem/check"),
        &[("number", &numbers[0]), ("password", &passwords[0])],
    )
    .await;
    assert_eq!(status, 200);
    assert!(page.contains("苹果") && page.contains("桃子") && page.contains("388.00"));
    let peach = goods[1].to_string();
    let (status, page) = post_form(
        &app,
        &format!("/m/{m}/redeem/confirm"),
        &address(&numbers[0], &passwords[0], &peach),
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("提货成功"));
    let (status, page) = post_form(
        &app,
        &format!("/m/{m}/redeem/confirm"),
        &address(&numbers[0], &passwords[0], &peach),
    )
    .await;
    assert_eq!(status, 422);
    assert!(
        page.contains(kaquan_web::pickup::REFUSED_MESSAGE),
        "a used card is refused like any other"
    );
    let (status, page) = post_form(
        &app,
        &format!("/m/{m}/orders"),
        &[("number", &numbers[0]), ("password", &passwords[0])],
    )
    .await;
    assert_eq!(status, 200);
    assert!(page.contains("待发货") && page.contains("桃子"), "{page}");
    // A bad address keeps the customer on the form with the reason.
    let mut bad = address(&numbers[1], &passwords[1], &peach);
    bad[4] = ("phone", "12");
    let (status, page) = post_form(&app, &format!("/m/{m}/redeem/confirm"), &bad).await;
    assert_eq!(status, 422);
    assert!(
        page.contains("联系电话") && page.contains("桃子"),
        "the goods are shown again"
    );
    // The merchant's pickup switch.
    let closed = kaquan_core::pickup::PickupSettings {
        enabled: false,
        closed_message: "春节暂停提货".into(),
        ..Default::default()
    };
    let audit = kaquan_core::store::AuditEntry {
        merchant_id: m,
        actor: kaquan_core::store::Actor::cli(),
        action: "update_pickup_settings".into(),
        target: String::new(),
        detail: String::new(),
        n_affected: 0,
        created_at: 0,
    };
    app.store
        .put_pickup_settings(m, &closed, &audit)
        .await
        .unwrap();
    let (_, page) = post_form(
        &app,
        &format!("/m/{m}/redeem/confirm"),
        &address(&numbers[2], &passwords[2], &peach),
    )
    .await;
    assert!(
        page.contains("春节暂停提货") || page.contains("暂停提货"),
        "{page}"
    );
    let card = app
        .store
        .get_card_by_number(m, &numbers[2])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        card.state,
        kaquan_core::card::CardState::Active,
        "nothing accepted while closed"
    );
}

async fn uniform_refusals(app: TestApp) {
    let (numbers, passwords, _) = pickup_cards(&app, 2).await;
    let m = app.merchant_id;
    let check = |number: String, password: String| {
        let app = &app;
        async move {
            post_form(
                app,
                &format!("/m/{m}/redeem/check"),
                &[("number", &number), ("password", &password)],
            )
            .await
        }
    };
    let (s1, unknown) = check("NOPE000001".into(), "12345678".into()).await;
    let (s2, wrong) = check(numbers[1].clone(), "WRONGPASS".into()).await;
    assert_eq!((s1, s2), (422, 422));
    assert!(
        unknown.contains(kaquan_web::pickup::REFUSED_MESSAGE)
            && wrong.contains(kaquan_web::pickup::REFUSED_MESSAGE)
    );
    // The default limit allows five wrong guesses per card an hour.
    for _ in 0..5 {
        check(numbers[0].clone(), "WRONGPASS".into()).await;
    }
    let (status, page) = check(numbers[0].clone(), passwords[0].clone()).await;
    assert_eq!(status, 429, "locked even with the right password");
    assert!(page.contains("尝试次数过多"), "{page}");
    let (_, log) = app
        .client("owner")
        .await
        .get("/api/v1/audit-log?page_size=50")
        .await;
    let reasons: Vec<String> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["action"] == "pickup_refused")
        .map(|a| a["detail"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        reasons.iter().any(|r| r.contains("unknown_number"))
            && reasons.iter().any(|r| r.contains("wrong_password")),
        "{reasons:?}"
    );
}

async fn staff_pickups(app: TestApp) {
    let (numbers, passwords, goods) = pickup_cards(&app, 2).await;
    app.add_staff("clerk", "verifier").await;
    let clerk = app.client("clerk").await;
    let (status, checked) = clerk
        .post(
            "/api/v1/pickups/check",
            json!({"number": numbers[0], "password": passwords[0]}),
        )
        .await;
    assert_eq!(status, 200, "{checked}");
    assert_eq!(checked["goods"].as_array().unwrap().len(), 2);
    let (status, order) = clerk
        .post("/api/v1/pickups", json!({"channel": "store", "number": numbers[0], "password": passwords[0], "goods_id": goods[0]}))
        .await;
    assert_eq!(status, 201, "{order}");
    assert_eq!(
        (order["status"].as_str(), order["channel"].as_str()),
        (Some("picked_up"), Some("store"))
    );
    let (status, body) = clerk.post("/api/v1/pickups", json!({"channel": "phone", "number": numbers[1], "password": passwords[1], "goods_id": goods[1]})).await;
    assert_eq!(status, 422, "a phone pickup needs the consignee: {body}");
    let (status, order) = clerk
        .post(
            "/api/v1/pickups",
            json!({"channel": "phone", "number": numbers[1], "password": passwords[1], "goods_id": goods[1], "consignee": "李四",
                   "phone": "13900000000", "province": "江苏省", "city": "南京市", "district": "玄武区", "address": "中山路 1 号",
                   "appointment_date": "2099-02-02"}),
        )
        .await;
    assert_eq!(status, 201, "{order}");
    assert_eq!(order["status"], "pending");
    app.add_staff("viewer", "readonly").await;
    let viewer = app.client("viewer").await;
    let (status, _) = viewer
        .post(
            "/api/v1/pickups/check",
            json!({"number": numbers[0], "password": passwords[0]}),
        )
        .await;
    assert_eq!(status, 403);
}

async fn concurrent_pickups(app: TestApp) {
    let (numbers, passwords, goods) = pickup_cards(&app, 1).await;
    let m = app.merchant_id;
    let goods_id = goods[0].to_string();
    let http = reqwest::Client::new();
    let attempts = (0..50).map(|_| {
        let form: Vec<(String, String)> = address(&numbers[0], &passwords[0], &goods_id)
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let request = http
            .post(app.url(&format!("/m/{m}/redeem/confirm")))
            .form(&form);
        async move { request.send().await.unwrap().status().as_u16() }
    });
    let statuses = futures_util::future::join_all(attempts).await;
    let won = statuses.iter().filter(|s| **s == 200).count();
    assert_eq!(won, 1, "{statuses:?}");
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 422 || *s == 429),
        "no 5xx: {statuses:?}"
    );
    let (orders, total) = app
        .store
        .list_orders(m, &Default::default(), Default::default())
        .await
        .unwrap();
    assert_eq!((total, orders.len()), (1, 1));
}
