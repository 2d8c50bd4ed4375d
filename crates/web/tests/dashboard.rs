//! 概况 and 全局搜索 against the real app on SQLite and PostgreSQL: the
//! figures of a seeded shop across products, their daily columns, what is
//! owed, the period picker, and one box that finds a card, an order and a
//! phone, masked by permission.

mod common;

use common::TestApp;
use kaquan_core::audit::Actor;
use kaquan_core::event::{EventType, NewEvent};
use kaquan_core::ledger::{AdjustBalance, ApiCall, LedgerOp};
use serde_json::json;

on_both_backends! {
    the_overview_sums_a_seeded_shop_across_products => overview_of_a_seeded_shop;
    the_overview_refuses_an_unknown_period_and_hides_what_a_role_may_not_open => overview_by_role;
    one_search_box_finds_cards_orders_and_phones_masked_by_permission => search_finds;
    one_search_box_finds_codes_coupons_and_members_each_by_its_permission => search_finds_other_kinds;
    analytics_count_a_batch_its_pickups_and_their_times_and_export_them => analytics_of_a_batch;
    analytics_of_membership_cards_add_up_joins_points_and_top_ups => analytics_of_members;
    analytics_count_the_cards_of_refunded_sales_against_their_batch => analytics_of_refunds;
}

/// The `data-value`s of the bars of a tile's chart, in order.
fn bars_of(page: &str, tile_id: &str) -> Vec<i64> {
    let start = page
        .find(&format!("id=\"{tile_id}\""))
        .unwrap_or_else(|| panic!("{tile_id} on the page"));
    let tile = &page[start..];
    let tile = &tile[..tile.find("</svg>").expect("the tile's chart")];
    tile.split("data-value=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap().parse().unwrap())
        .collect()
}

fn total_of(page: &str, tile_id: &str) -> i64 {
    let start = page.find(&format!("id=\"{tile_id}\"")).unwrap();
    let rest = &page[start..];
    let at = rest.find("data-total=\"").unwrap() + "data-total=\"".len();
    rest[at..].split('"').next().unwrap().parse().unwrap()
}

async fn seed(app: &TestApp) -> i64 {
    let owner = app.client("owner").await;
    // Three cards made and picked up through the customer's page.
    let cards = common::pickup_cards(app, 3).await;
    common::h5_orders(app, &owner, cards).await;
    // Two 门店 and five coupons verified in them, one undone.
    let mut locations = Vec::new();
    for name in ["西湖店", "滨江店"] {
        let (status, created) = owner.post("/api/v1/locations", json!({"name": name})).await;
        assert_eq!(status, 201, "{created}");
        locations.push(created["id"].as_i64().unwrap());
    }
    let now = kaquan_web::now();
    let m = app.merchant_id;
    let verified = |event_type, location: i64| NewEvent {
        merchant_id: m,
        event_type,
        data: json!({"location_id": location, "discount_fen": 500}).to_string(),
        created_at: now,
    };
    app.store
        .record_events(&[
            verified(EventType::CouponVerified, locations[0]),
            verified(EventType::CouponVerified, locations[0]),
            verified(EventType::CouponVerified, locations[0]),
            verified(EventType::CouponVerified, locations[1]),
            verified(EventType::CouponVerified, locations[1]),
            verified(EventType::CouponUndone, locations[1]),
        ])
        .await
        .unwrap();
    // A customer holding ¥123.45 of stored value.
    let customer = app.store.ensure_customer(m, "u1", now).await.unwrap();
    let op = LedgerOp::Adjust(AdjustBalance {
        merchant_id: m,
        customer_id: customer.id,
        delta_fen: 12_345,
        reason: "测试".into(),
        actor: Actor::cli(),
        now,
    });
    app.store
        .post_ledger(&ApiCall::default(), &op)
        .await
        .unwrap()
        .result
        .unwrap();
    locations[0]
}

async fn overview_of_a_seeded_shop(app: TestApp) {
    seed(&app).await;
    let owner = app.client("owner").await;
    let page = owner.page("/").await;
    assert_eq!(total_of(&page, "figure-pickups_placed"), 3);
    assert_eq!(total_of(&page, "figure-coupons_verified"), 4);
    assert!(page.contains("¥20.00"), "the discount of four coupons");
    assert_eq!(total_of(&page, "figure-members_joined"), 0);
    // Today is the last of the week's columns.
    let pickups = bars_of(&page, "figure-pickups_placed");
    assert_eq!(pickups.len(), 7);
    assert_eq!(pickups, [0, 0, 0, 0, 0, 0, 3]);
    assert_eq!(bars_of(&page, "figure-coupons_verified")[6], 4);
    // 待处理: three pending orders, none due today, all due later.
    assert!(page.contains(r#"id="tile-pending"><b>3</b>"#), "{page}");
    assert!(page.contains(r#"id="tile-overdue"><b>0</b>"#));
    assert!(page.contains(r#"id="owed-balance"><b>¥123.45</b>"#));
    assert!(page.contains(r#"id="tile-failed-webhooks"><b>0</b>"#));
    // Coupons verified per 门店, the most first.
    let by_location = &page[page.find("id=\"by-location\"").unwrap()..];
    let west = by_location
        .find(r#"data-label="西湖店" data-value="3""#)
        .unwrap();
    let river = by_location
        .find(r#"data-label="滨江店" data-value="1""#)
        .unwrap();
    assert!(west < river);
    // Each figure links to its list, filtered to the period.
    let today = kaquan_core::clock::format_date(kaquan_web::now());
    assert!(
        page.contains(&format!("orders?date_from={today}\"")),
        "{page}"
    );
    // Thirty days chart thirty columns with the same totals.
    let month = owner.page("/?period=30d").await;
    assert_eq!(bars_of(&month, "figure-pickups_placed").len(), 30);
    assert_eq!(total_of(&month, "figure-pickups_placed"), 3);
    assert!(month.contains(r#"id="period-30d" class="current""#));
    // The same figures as JSON, for the shop's own systems.
    let (status, api) = owner.get("/api/v1/overview?period=30d").await;
    assert_eq!(status, 200, "{api}");
    let tile = api["tiles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["code"] == "pickups_placed")
        .expect("the pickups' figure");
    assert_eq!(tile["total"], 3);
    let daily: Vec<i64> = tile["daily"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["value"].as_i64().unwrap())
        .collect();
    assert_eq!(daily, bars_of(&month, "figure-pickups_placed"));
    assert_eq!(api["last_date"], tile["daily"][29]["date"]);
    let verified = api["tiles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["code"] == "coupons_verified")
        .unwrap();
    assert_eq!(verified["total"], 4);
    assert!(verified["amount_fen"].as_i64().unwrap() > 0);
}

async fn overview_by_role(app: TestApp) {
    let owner = app.client("owner").await;
    let (status, _) = owner.get("/?period=week").await;
    assert_eq!(status, 422);
    let (status, _) = owner.get("/?perod=7d").await;
    assert_eq!(status, 422, "a misspelled field is refused");
    // A read-only role sees the cards activated (it reads the 操作日志
    // they link to) and nothing of orders, money owed or coupons.
    app.add_staff("viewer", "readonly").await;
    let viewer = app.client("viewer").await;
    let page = viewer.page("/").await;
    assert!(page.contains("id=\"figure-cards_activated\""));
    for hidden in [
        "figure-pickups_placed",
        "figure-coupons_verified",
        "figure-ecards_delivered",
        "id=\"owed\"",
        "tile-pending",
        "tile-failed-webhooks",
    ] {
        assert!(!page.contains(hidden), "{hidden}");
    }
    // The API shows the same role the same parts.
    let (status, api) = viewer.get("/api/v1/overview").await;
    assert_eq!(status, 200, "{api}");
    let codes: Vec<&str> = api["tiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["cards_activated"]);
    assert!(api["owed"].is_null() && api["to_ship"].is_null() && api["failures"].is_null());
    let (status, refused) = viewer.get("/api/v1/overview?period=week").await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (422, Some("invalid"))
    );
}

async fn search(client: &common::Client, q: &str) -> (u16, String, String) {
    let response = client
        .http
        .post(format!("{}/search", client.base))
        .form(&[("csrf", client.csrf.as_str()), ("q", q)])
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, location, response.text().await.unwrap())
}

async fn search_finds(app: TestApp) {
    let owner = app.client("owner").await;
    let cards = common::pickup_cards(&app, 2).await;
    let number = cards.0[0].clone();
    let orders = common::h5_orders(&app, &owner, cards).await;
    // One find opens at once.
    let (status, location, _) = search(&owner, &number).await;
    assert_eq!(
        (status, location.as_str()),
        (303, format!("/cards/{number}").as_str())
    );
    let (status, location, _) = search(&owner, &format!(" {} ", orders[1])).await;
    assert_eq!(status, 303);
    assert_eq!(location, format!("/orders/{}", orders[1]));
    // A phone finds both its orders, listed.
    let (status, _, page) = search(&owner, "13800001234").await;
    assert_eq!(status, 200);
    assert_eq!(page.matches("<tr><td>提货订单</td>").count(), 2, "{page}");
    assert!(page.contains("13800001234"));
    // Nothing found says what can be searched.
    let (status, _, page) = search(&owner, "nothing-like-this").await;
    assert_eq!(status, 200);
    assert!(page.contains("id=\"no-hits\""));
    // A clerk without personal data sees phones masked.
    let (status, role) = owner
        .post(
            "/api/v1/roles",
            json!({"name": "shipper", "label": "发货", "permissions": ["orders.manage"]}),
        )
        .await;
    assert_eq!(status, 201, "{role}");
    app.add_staff("clerk", "shipper").await;
    let clerk = app.client("clerk").await;
    let (_, _, page) = search(&clerk, "13800001234").await;
    assert!(!page.contains("13800001234"), "{page}");
    assert!(page.contains("138****1234"));
    // Bad input gets a clear refusal; the search never travels in a URL.
    let (status, _, _) = search(&owner, "a\u{0}b").await;
    assert_eq!(status, 422);
    let (status, _, _) = search(&owner, &"9".repeat(65)).await;
    assert_eq!(status, 422);
    let (status, _) = owner.get("/search?q=1234").await;
    assert_eq!(status, 405);
    // Without the form's token nothing is searched.
    let response = owner
        .http
        .post(format!("{}/search", owner.base))
        .form(&[("q", "1234")])
        .send()
        .await
        .unwrap();
    assert!(response.status().is_client_error());
}

async fn search_finds_other_kinds(app: TestApp) {
    let owner = app.client("owner").await;
    let mall = common::Mall::new(&app).await;
    // 查码: a 兑换码 opens its template, shown masked.
    let (template, product) = owner.giftcard_product("50元礼品卡", 5_000, 5_000).await;
    let codes = mall.order_codes("G-1", &product, 1, None).await;
    let (status, location, _) = search(&owner, &codes[0]).await;
    assert_eq!(status, 303, "a code is found");
    assert_eq!(location, format!("/giftcards/codes/{}", template["id"]));
    // A coupon's code is shown with its state and a way to 核销台 (which
    // cannot be told the code in its address).
    let now = kaquan_web::now();
    let (status, program) = owner
        .post(
            "/api/v1/coupon-programs",
            json!({"kind": "cash", "least_cost_fen": 10000, "reduce_cost_fen": 2000,
                "title": "满100减20", "brand_name": "果园", "quantity": 10, "get_limit": 1,
                "use_limit": 1, "validity_type": "fixed",
                "begin_date": kaquan_core::clock::format_date(now - 86_400),
                "end_date": kaquan_core::clock::format_date(now + 86_400),
                "use_all_locations": true, "location_ids": []}),
        )
        .await;
    assert_eq!(status, 201, "{program}");
    let program_id = program["id"].as_i64().unwrap();
    let (status, _) = owner
        .post(
            &format!("/api/v1/coupon-programs/{program_id}/state"),
            json!({"state": "active"}),
        )
        .await;
    assert_eq!(status, 200);
    let order = json!({"program_id": program_id, "customer_id": "u-1", "order_id": "C-1",
        "order_line": "1", "quantity": 1});
    let issued = mall.post("/open/v1/coupons", order, "coupon-1").await;
    assert_eq!(issued.status, 201, "{}", issued.body);
    let coupon_code = issued.body["coupons"][0]["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _, page) = search(&owner, &coupon_code).await;
    assert_eq!(status, 200);
    assert!(
        page.contains(r#"<tr><td>优惠券</td><td><a href="&#x2f;verify">满100减20</a></td><td>可使用</td></tr>"#),
        "{page}"
    );
    assert!(!page.contains(&coupon_code), "the code is not repeated");
    // A member by member number, and by phone.
    let fields = kaquan_core::member::ProgramFields {
        title: "果园会员卡".into(),
        number_prefix: "VIP".into(),
        number_length: 8,
        ..Default::default()
    };
    let member_program = app.member_program(&fields).await;
    let body = json!({"program_id": member_program.id, "customer_id": "u-7",
        "phone": "13911112222", "name": "李四"});
    let opened = mall.post("/open/v1/members", body, "open-7").await;
    assert_eq!(opened.status, 201, "{}", opened.body);
    let member_id = opened.body["member_id"].as_i64().unwrap();
    let number = opened.body["member_number"].as_str().unwrap().to_owned();
    for q in [number.as_str(), "13911112222"] {
        let (status, location, _) = search(&owner, q).await;
        assert_eq!(
            (status, location),
            (303, format!("/members/{member_id}")),
            "{q}"
        );
    }
    // A role without a kind's permission finds nothing of it.
    app.add_staff("viewer", "readonly").await;
    let viewer = app.client("viewer").await;
    for q in [codes[0].as_str(), coupon_code.as_str(), number.as_str()] {
        let (status, _, page) = search(&viewer, q).await;
        assert_eq!(status, 200);
        assert!(page.contains("id=\"no-hits\""), "{q}: {page}");
    }
}

async fn analytics_of_a_batch(app: TestApp) {
    let owner = app.client("owner").await;
    let cards = common::pickup_cards(&app, 3).await;
    common::h5_orders(&app, &owner, cards).await;
    let page = owner.page("/analytics").await;
    let row = &page[page.find("id=\"instrument-").expect("the batch's row")..];
    assert!(
        row.contains(r#"data-issued="3" data-redeemed="3""#),
        "{row}"
    );
    // All three picked up within the hour: the first column holds them.
    let chart = &row[..row.find("</svg>").unwrap()];
    let bars: Vec<i64> = chart
        .split("data-value=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(bars, [3, 0, 0, 0, 0, 0]);
    assert!(row.contains("100.0%"));
    // Nothing issued of the other kinds; an unknown kind is refused.
    assert!(owner
        .page("/analytics?kind=codes")
        .await
        .contains("id=\"no-figures\""));
    let (status, _) = owner.get("/analytics?kind=cards").await;
    assert_eq!(status, 422);
    let (status, _) = owner.get("/analytics?from=2026-12-31&to=2026-01-01").await;
    assert_eq!(status, 422);
    // The same figures as xlsx, read by a real reader.
    let (status, bytes) = owner.get_bytes("/analytics/export").await;
    assert_eq!(status, 200);
    let file = common::temp_dir("analytics").join("analytics.xlsx");
    std::fs::write(&file, bytes).unwrap();
    let rows = common::xlsx_rows(&file);
    assert_eq!(&rows[0][..3], ["名称", "发放数", "已兑换"]);
    assert_eq!(&rows[1][1..3], ["3", "3"]);
    assert_eq!(rows[1][9], "3", "the first bucket");
    // One without the cards' permission may not look.
    app.add_staff("desk", "verifier").await;
    let desk = app.client("desk").await;
    let (status, _) = desk.get("/analytics").await;
    assert_eq!(status, 403);
}

async fn analytics_of_members(app: TestApp) {
    let fields = kaquan_core::member::ProgramFields {
        title: "果园会员卡".into(),
        ..Default::default()
    };
    let program = app.member_program(&fields).await;
    let mall = common::Mall::new(&app).await;
    for (customer, key) in [("u-1", "open-1"), ("u-2", "open-2")] {
        let body = json!({"program_id": program.id, "customer_id": customer,
            "phone": "13800000000", "name": "王小明"});
        assert_eq!(mall.post("/open/v1/members", body, key).await.status, 201);
    }
    let top_up = json!({"customer_id": "u-1", "amount_fen": 10_000, "bonus_fen": 1_000,
        "recharge_id": "r-1"});
    let answer = mall.post("/open/v1/recharges", top_up, "r-1").await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    let owner = app.client("owner").await;
    let page = owner.page("/analytics?kind=members").await;
    let row = &page[page
        .find(&format!("id=\"program-{}\"", program.id))
        .expect("the program's row")..];
    let row = &row[..row.find("</tr>").unwrap()];
    assert!(row.contains(r#"data-joined="2""#), "{row}");
    for figure in ["果园会员卡", "100.00", "10.00", "110.00"] {
        assert!(row.contains(figure), "{figure} in {row}");
    }
    let (status, bytes) = owner.get_bytes("/analytics/export?kind=members").await;
    assert_eq!(status, 200);
    let file = common::temp_dir("analytics").join("members.xlsx");
    std::fs::write(&file, bytes).unwrap();
    let rows = common::xlsx_rows(&file);
    assert_eq!(&rows[0][..3], ["名称", "新会员", "积分发放"]);
    assert_eq!(rows[0][12], "储值余额（元）");
    assert_eq!(
        (rows[1][0].as_str(), rows[1][1].as_str()),
        ("果园会员卡", "2")
    );
    assert_eq!((rows[1][6].as_str(), rows[1][10].as_str()), ("100.00", "2"));
    // The same as JSON.
    let (status, api) = owner.get("/api/v1/analytics?kind=members").await;
    assert_eq!(status, 200, "{api}");
    let p = &api["programs"][0];
    assert_eq!(
        (p["id"].as_i64(), p["joined"].as_i64()),
        (Some(program.id), Some(2))
    );
    assert_eq!(
        (p["recharged_fen"].as_i64(), p["bonus_fen"].as_i64()),
        (Some(10_000), Some(1_000))
    );
    assert_eq!(
        (p["members"].as_i64(), p["balance_fen"].as_i64()),
        (Some(2), Some(11_000))
    );
    assert_eq!(api["instruments"], json!([]));
    // 会员卡 is a tab for one who may see members, and not for a verifier.
    assert!(owner
        .page("/analytics")
        .await
        .contains("id=\"kind-members\""));
    app.add_staff("desk", "verifier").await;
    let desk = app.client("desk").await;
    let (status, _) = desk.get("/analytics?kind=members").await;
    assert_eq!(status, 403);
    let (status, refused) = desk.get("/api/v1/analytics?kind=members").await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );
}

async fn analytics_of_refunds(app: TestApp) {
    let owner = app.client("owner").await;
    let (status, batch) = owner
        .post(
            "/api/v1/batches",
            json!({"name": "售卡批次", "quantity": 3}),
        )
        .await;
    assert_eq!(status, 202, "{batch}");
    let batch_id = batch["batch_id"].as_i64().unwrap();
    app.wait_for_batch(&owner, batch_id).await;
    let mall = common::Mall::new(&app).await;
    let sale = json!({"order_id": "o-1", "batch_id": batch_id, "quantity": 2,
        "phone": "13800001234"});
    let sold = mall.post("/open/v1/card-sales", sale, "s-1").await;
    assert_eq!(sold.status, 201, "{}", sold.body);
    let refunded = mall
        .post("/open/v1/card-sales/o-1/refund", json!({}), "rf-1")
        .await;
    assert_eq!(refunded.status, 200, "{}", refunded.body);
    let page = owner.page("/analytics").await;
    let row = &page[page
        .find(&format!("id=\"instrument-{batch_id}\""))
        .expect("the batch's row")..];
    let row = &row[..row.find("<svg").unwrap()];
    assert!(row.contains(r#"data-issued="0""#), "{row}");
    assert!(row.contains("<td>2</td>"), "two refunded in {row}");
    let (_, bytes) = owner.get_bytes("/analytics/export").await;
    let file = common::temp_dir("analytics").join("refunds.xlsx");
    std::fs::write(&file, bytes).unwrap();
    let rows = common::xlsx_rows(&file);
    assert_eq!(rows[0][15], "已退款");
    assert_eq!(rows[1][15], "2");
}
