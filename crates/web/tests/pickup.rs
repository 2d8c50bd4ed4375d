//! Pickup cards over HTTP on SQLite and PostgreSQL: the customer's pages,
//! attempt limits, staff pickups, and fifty simultaneous pickups of a card.

mod common;

use common::{address, pickup_cards, post_form, TestApp};
use serde_json::json;

on_both_backends! {
    a_customer_picks_up_one_goods_with_number_and_password => customer_pickup;
    every_wrong_answer_looks_the_same_and_guessing_locks_out => uniform_refusals;
    staff_pick_up_in_store_and_by_phone_through_the_api => staff_pickups;
    fifty_simultaneous_pickups_over_http_make_one_order => concurrent_pickups;
    orders_are_listed_shipped_cancelled_and_exported => orders_flow;
    pickup_settings_are_validated_and_change_the_customer_page => settings_flow;
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
    assert_eq!(status, 409, "the same card again made no order");
    assert!(
        page.contains("已经提过货") && page.contains("订单号"),
        "a right password on the used card shows its order: {page}"
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
        page.contains("11 位手机号") && page.contains("桃子"),
        "the goods are shown again"
    );
    // The merchant's pickup switch, saved as the console saves it (the
    // page reads 提货设置 through this node's short cache, which a save
    // here forgets).
    let owner = app.client("owner").await;
    let (status, mut settings) = owner.get("/api/v1/pickup-settings").await;
    assert_eq!(status, 200);
    settings["enabled"] = serde_json::json!(false);
    settings["closed_message"] = serde_json::json!("春节暂停提货");
    let (status, saved) = owner
        .send(reqwest::Method::PUT, "/api/v1/pickup-settings", settings)
        .await;
    assert_eq!(status, 204, "{saved}");
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
        statuses.iter().all(|s| [200, 409, 422, 429].contains(s)),
        "no 5xx: {statuses:?}"
    );
    let (orders, total) = app
        .store
        .list_orders(m, &Default::default(), Default::default())
        .await
        .unwrap();
    assert_eq!((total, orders.len()), (1, 1));
}

async fn web_pickup(
    app: &TestApp,
    number: &str,
    password: &str,
    goods_id: i64,
    date: &str,
    phone: &str,
) -> u16 {
    let goods = goods_id.to_string();
    let mut form = address(number, password, &goods);
    form[4] = ("phone", phone);
    form[9] = ("appointment_date", date);
    post_form(
        app,
        &format!("/m/{}/redeem/confirm", app.merchant_id),
        &form,
    )
    .await
    .0
}

async fn orders_flow(app: TestApp) {
    let (numbers, passwords, goods) = pickup_cards(&app, 4).await;
    let today = kaquan_core::clock::format_date(kaquan_web::now());
    let tomorrow = {
        let d = kaquan_core::clock::parse_date(&today).unwrap() + time::Duration::days(1);
        d.to_string()
    };
    assert_eq!(
        web_pickup(
            &app,
            &numbers[0],
            &passwords[0],
            goods[0],
            &today,
            "13800000001"
        )
        .await,
        200
    );
    assert_eq!(
        web_pickup(
            &app,
            &numbers[1],
            &passwords[1],
            goods[1],
            &tomorrow,
            "13800000002"
        )
        .await,
        200
    );
    assert_eq!(
        web_pickup(
            &app,
            &numbers[2],
            &passwords[2],
            goods[1],
            &tomorrow,
            "13800000003"
        )
        .await,
        200
    );
    let owner = app.client("owner").await;
    let (_, pending) = owner.get("/api/v1/orders?status=pending").await;
    assert_eq!(pending["total"], 3);
    assert_eq!(owner.get("/api/v1/orders?quick=today").await.1["total"], 1);
    assert_eq!(
        owner.get("/api/v1/orders?quick=tomorrow").await.1["total"],
        2
    );
    assert_eq!(
        owner.get("/api/v1/orders?quick=day_after").await.1["total"],
        0
    );
    assert_eq!(
        owner.get("/api/v1/orders?phone=13800000002").await.1["total"],
        1
    );
    assert_eq!(
        owner
            .get(&format!("/api/v1/orders?card_number={}", numbers[0]))
            .await
            .1["total"],
        1
    );
    assert_eq!(owner.get("/api/v1/orders?channel=web").await.1["total"], 3);
    let ids: Vec<i64> = pending["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_i64().unwrap())
        .collect();
    assert_eq!(
        pending["items"][0]["consignee"], "张三",
        "the owner sees personal data"
    );
    // Role without personal-data permission sees it masked.
    app.add_staff("viewer", "card_manager").await;
    let (status, _) = app.client("viewer").await.get("/api/v1/orders").await;
    assert_eq!(status, 403, "card managers do not see orders");
    let roles = owner.get("/api/v1/roles").await.1;
    let clerk_role = roles
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "order_clerk")
        .unwrap()["id"]
        .clone();
    let (status, _) = owner
        .send(
            reqwest::Method::PUT,
            &format!("/api/v1/roles/{clerk_role}"),
            json!({"label": "订单员", "permissions": ["orders.manage"]}),
        )
        .await;
    assert_eq!(status, 204);
    app.add_staff("clerk", "order_clerk").await;
    let clerk = app.client("clerk").await;
    let (_, masked) = clerk.get("/api/v1/orders").await;
    assert_eq!(masked["items"][0]["consignee"], "张*");
    assert_eq!(masked["items"][0]["phone"], "138****0003");
    // Ship one, then a file with a bad row ships nothing.
    let (status, body) = owner.post("/api/v1/orders/ship", json!({"shipments": [{"order_id": ids[0], "carrier": "顺丰速运", "tracking_number": "SF100000001"}]})).await;
    assert_eq!(status, 200, "{body}");
    let csv = format!(
        "订单号,物流公司,运单号\n{},中通快递,ZT2000000001\n{},不存在快递,ZT2000000002\n",
        ids[1], ids[2]
    );
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(csv.into_bytes()).file_name("ship.csv"),
    );
    let response = owner
        .http
        .post(app.url("/api/v1/orders/ship-import"))
        .header("x-csrf-token", &owner.csrf)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    let report: serde_json::Value = response.json().await.unwrap();
    assert_eq!(report["error"]["rows"][0]["line"], 3, "{report}");
    assert_eq!(
        owner.get("/api/v1/orders?status=shipped").await.1["total"],
        1,
        "nothing else shipped"
    );
    let (status, _) = owner
        .post("/api/v1/carriers", json!({"name": "省外顺丰"}))
        .await;
    assert_eq!(status, 201);
    let csv = format!(
        "订单号,物流公司,运单号\n{},中通快递,ZT2000000001\n{},省外顺丰,SF2000000002\n",
        ids[1], ids[2]
    );
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(csv.into_bytes()).file_name("ship.csv"),
    );
    let response = owner
        .http
        .post(app.url("/api/v1/orders/ship-import"))
        .header("x-csrf-token", &owner.csrf)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        owner.get("/api/v1/orders?quick=shipped_today").await.1["total"],
        3
    );
    // Cancel: only unshipped orders; the card is usable again.
    assert_eq!(
        web_pickup(
            &app,
            &numbers[3],
            &passwords[3],
            goods[0],
            &today,
            "13800000004"
        )
        .await,
        200
    );
    let (_, latest) = owner.get("/api/v1/orders?status=pending").await;
    let pending_id = latest["items"][0]["id"].as_i64().unwrap();
    let (status, _) = owner
        .post(&format!("/api/v1/orders/{}/cancel", ids[0]), json!({}))
        .await;
    assert_eq!(status, 409, "shipped orders cannot be cancelled");
    let (status, _) = owner
        .post(&format!("/api/v1/orders/{pending_id}/cancel"), json!({}))
        .await;
    assert_eq!(status, 204);
    assert_eq!(
        web_pickup(
            &app,
            &numbers[3],
            &passwords[3],
            goods[1],
            &today,
            "13800000004"
        )
        .await,
        200,
        "usable again"
    );
    // Export reads back with a real reader; user text is escaped.
    let (status, bytes) = owner
        .get_bytes("/api/v1/orders/export?status=shipped")
        .await;
    assert_eq!(status, 200);
    let path = common::temp_dir("orders").join("orders.xlsx");
    std::fs::write(&path, bytes).unwrap();
    use calamine::Reader;
    let mut workbook: calamine::Xlsx<_> = calamine::open_workbook(&path).unwrap();
    let range = workbook.worksheet_range_at(0).unwrap().unwrap();
    let rows: Vec<Vec<String>> = range
        .rows()
        .map(|r| r.iter().map(|c| c.to_string()).collect())
        .collect();
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[0][0], "订单号");
    assert!(rows[1..]
        .iter()
        .any(|r| r[13] == "SF2000000002" && r[12] == "省外顺丰"));
    // 批量发货 round trip: export the pending orders, fill 物流公司 and 运单号, import the same layout.
    let (_, bytes) = owner
        .get_bytes("/api/v1/orders/export?status=pending")
        .await;
    std::fs::write(&path, bytes).unwrap();
    let mut workbook: calamine::Xlsx<_> = calamine::open_workbook(&path).unwrap();
    let range = workbook.worksheet_range_at(0).unwrap().unwrap();
    let mut rows: Vec<Vec<String>> = range
        .rows()
        .map(|r| r.iter().map(|c| c.to_string()).collect())
        .collect();
    assert_eq!(rows.len(), 2, "one pending order");
    rows[1][12] = "韵达快递".into();
    rows[1][13] = "YD3000000001".into();
    let csv: String = rows.iter().map(|r| r.join(",") + "\n").collect();
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(csv.into_bytes()).file_name("filled.csv"),
    );
    let response = owner
        .http
        .post(app.url("/api/v1/orders/ship-import"))
        .header("x-csrf-token", &owner.csrf)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    assert_eq!(
        owner.get("/api/v1/orders?status=pending").await.1["total"],
        0
    );
}

async fn settings_flow(app: TestApp) {
    let (numbers, passwords, goods) = pickup_cards(&app, 1).await;
    let owner = app.client("owner").await;
    let (_, settings) = owner.get("/api/v1/pickup-settings").await;
    assert_eq!(settings["enabled"], true);
    let mut bad = settings.clone();
    bad["redirect_url"] = json!("javascript:alert(1)");
    bad["attempts_per_card"] = json!(0);
    let (status, error) = owner
        .send(reqwest::Method::PUT, "/api/v1/pickup-settings", bad)
        .await;
    assert_eq!(status, 422);
    assert_eq!(
        error["error"]["details"].as_array().unwrap().len(),
        2,
        "{error}"
    );
    let mut good = settings.clone();
    good["title"] = json!("鲜果提货");
    good["appointment_mode"] = json!("weekdays");
    good["redirect_url"] = json!("https://shop.example.com/thanks");
    let (status, _) = owner
        .send(reqwest::Method::PUT, "/api/v1/pickup-settings", good)
        .await;
    assert_eq!(status, 204);
    let page = reqwest::get(app.url(&format!("/m/{}/redeem", app.merchant_id)))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("鲜果提货"));
    // A Saturday is refused in weekdays-only mode; a Monday redirects to the merchant's page.
    let goods_id = goods[0].to_string();
    let mut form = address(&numbers[0], &passwords[0], &goods_id);
    form[9] = ("appointment_date", "2099-01-03");
    let (status, page) = post_form(
        &app,
        &format!("/m/{}/redeem/confirm", app.merchant_id),
        &form,
    )
    .await;
    assert_eq!(status, 422);
    assert!(page.contains("工作日"), "{page}");
    form[9] = ("appointment_date", "2099-01-05");
    let response = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(app.url(&format!("/m/{}/redeem/confirm", app.merchant_id)))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(
        response.headers()["location"],
        "https://shop.example.com/thanks"
    );
    // The logo shows on the customer's page.
    let png = kaquan_web::exports::qr_png(&qrcode::QrCode::new(b"logo").unwrap(), 2);
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(png.clone()).file_name("logo.png"),
    );
    let response = owner
        .http
        .post(app.url("/api/v1/pickup-settings/logo"))
        .header("x-csrf-token", &owner.csrf)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let page = reqwest::get(app.url(&format!("/m/{}/redeem", app.merchant_id)))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("id=\"logo\"") && page.contains("logo?v="),
        "{page}"
    );
    let logo = reqwest::get(app.url(&format!("/m/{}/logo", app.merchant_id)))
        .await
        .unwrap();
    assert_eq!(logo.headers()["content-type"], "image/png");
    assert_eq!(logo.bytes().await.unwrap().to_vec(), png);
    // 订单详情 with the consignee for staff allowed to see it.
    let (orders, _) = app
        .store
        .list_orders(app.merchant_id, &Default::default(), Default::default())
        .await
        .unwrap();
    let (status, html) = owner.get_bytes(&format!("/orders/{}", orders[0].id)).await;
    assert_eq!(status, 200);
    assert!(String::from_utf8(html).unwrap().contains("文三路 100 号"));
}
