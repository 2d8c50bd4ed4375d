//! 优惠券 over HTTP: staff make programs, 门店 and bindings and verify with
//! the exact reason for a refusal; the mall issues, queries, verifies,
//! undoes (inside and outside its window) and exchanges through the signed
//! open API with idempotency.

mod common;

use common::{Client, Mall, TestApp};
use serde_json::{json, Value};

on_both_backends! {
    the_mall_issues_queries_verifies_undoes_and_exchanges => mall_flow;
    staff_make_programs_and_verify_only_where_a_coupon_is_valid => staff_flow;
    bad_programs_and_targeted_lists_are_refused_with_every_reason => refusals;
    a_long_list_is_issued_in_the_background_all_or_nothing => long_list;
    a_program_logo_is_uploaded_served_to_customers_and_kept_by_an_edit => logo_flow;
}

async fn location(owner: &Client, name: &str) -> i64 {
    let (status, body) = owner
        .post(
            "/api/v1/locations",
            json!({"name": name, "address": "中山路 1 号"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_i64().unwrap()
}

/// An active 满100减20 program valid at `location_ids` (all when empty),
/// from yesterday (so that a verification an hour old fits in it at any
/// time of day) for a month.
async fn cash_program(owner: &Client, location_ids: &[i64], get_limit: i64) -> Value {
    let now = kaquan_web::now();
    let (begin, end) = (
        kaquan_core::clock::format_date(now - 86_400),
        kaquan_core::clock::format_date(now + 30 * 86_400),
    );
    let (status, program) = owner
        .post(
            "/api/v1/coupon-programs",
            json!({
                "kind": "cash", "least_cost_fen": 10000, "reduce_cost_fen": 2000,
                "title": "满100减20", "brand_name": "果园", "quantity": 100,
                "get_limit": get_limit, "use_limit": 5,
                "validity_type": "fixed", "begin_date": begin, "end_date": end,
                "use_all_locations": location_ids.is_empty(), "location_ids": location_ids,
            }),
        )
        .await;
    assert_eq!(status, 201, "{program}");
    assert_eq!(program["state"], "draft");
    assert_eq!(program["benefit"], "满100.00元减20.00元");
    let id = program["id"].as_i64().unwrap();
    let (status, program) = owner
        .post(
            &format!("/api/v1/coupon-programs/{id}/state"),
            json!({"state": "active"}),
        )
        .await;
    assert_eq!(status, 200, "{program}");
    program
}

async fn mall_flow(app: TestApp) {
    let owner = app.client("owner").await;
    let program = cash_program(&owner, &[], 1).await;
    let program_id = program["id"].as_i64().unwrap();
    let mall = Mall::new(&app).await;
    let order = json!({"program_id": program_id, "customer_id": "u-1001", "order_id": "M1", "order_line": "1", "quantity": 2});
    let issued = mall
        .post("/open/v1/coupons", order.clone(), "issue-M1-1")
        .await;
    assert_eq!(issued.status, 201, "{}", issued.body);
    let coupons = issued.body["coupons"].as_array().unwrap().clone();
    assert_eq!(coupons.len(), 2, "one per unit, whatever the claim limit");
    let code = coupons[0]["code"].as_str().unwrap().to_owned();
    assert_eq!(code.len(), 20);
    let again = mall
        .post("/open/v1/coupons", order.clone(), "issue-M1-1-retry")
        .await;
    assert_eq!(
        (again.status, again.replayed),
        (200, true),
        "the order line is issued once"
    );
    assert_eq!(again.body["coupons"], issued.body["coupons"]);
    let mut other = order.clone();
    other["quantity"] = json!(3);
    let mismatch = mall
        .post("/open/v1/coupons", other, "issue-M1-1-more")
        .await;
    assert_eq!(
        (mismatch.status, mismatch.body["error"]["code"].as_str()),
        (409, Some("order_mismatch"))
    );

    let listed = mall
        .send(
            "GET",
            "/open/v1/customers/u-1001/coupons?status=usable",
            None,
            None,
        )
        .await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert_eq!(listed.body["total"], 2);
    let query = mall
        .send(
            "POST",
            "/open/v1/coupons/query",
            Some(&json!({"code": code, "order_amount_fen": 9000})),
            None,
        )
        .await;
    assert_eq!(query.status, 200, "{}", query.body);
    assert_eq!(query.body["usable"], false);
    assert_eq!(query.body["reason_code"], "coupon_below_threshold");
    let query = mall
        .send(
            "POST",
            "/open/v1/coupons/query",
            Some(&json!({"code": code, "order_amount_fen": 12000})),
            None,
        )
        .await;
    assert_eq!(
        (
            query.body["usable"].as_bool(),
            query.body["discount_fen"].as_i64()
        ),
        (Some(true), Some(2000))
    );

    verifies_and_undoes(&app, &mall, &code, &coupons).await;
    exchanges(&owner, &mall, program_id).await;
}

async fn verifies_and_undoes(app: &TestApp, mall: &Mall, code: &str, coupons: &[Value]) {
    let verify = json!({"code": code, "order_amount_fen": 12000, "order_ref": "POS-1"});
    let done = mall
        .post("/open/v1/coupon-verifications", verify.clone(), "verify-1")
        .await;
    assert_eq!(done.status, 201, "{}", done.body);
    assert_eq!(done.body["discount_fen"], 2000);
    let replay = mall
        .post("/open/v1/coupon-verifications", verify.clone(), "verify-1")
        .await;
    assert_eq!(
        (replay.status, replay.replayed),
        (200, true),
        "{}",
        replay.body
    );
    assert_eq!(replay.body["verification_id"], done.body["verification_id"]);
    let twice = mall
        .post("/open/v1/coupon-verifications", verify.clone(), "verify-2")
        .await;
    assert_eq!(
        (twice.status, twice.body["error"]["code"].as_str()),
        (409, Some("coupon_used"))
    );
    let id = done.body["verification_id"].as_i64().unwrap();
    let undo = mall
        .post(
            &format!("/open/v1/coupon-verifications/{id}/undo"),
            json!({}),
            "undo-1",
        )
        .await;
    assert_eq!(undo.status, 200, "{}", undo.body);
    assert!(undo.body["undone_at"].is_i64());
    let again = mall
        .post("/open/v1/coupon-verifications", verify, "verify-3")
        .await;
    assert_eq!(
        again.status, 201,
        "usable again after the undo: {}",
        again.body
    );

    // A verification an hour and a minute old cannot be undone.
    let second = coupons[1]["code"].as_str().unwrap();
    let old = verify_an_hour_ago(app, coupons[1]["coupon_id"].as_i64().unwrap()).await;
    let late = mall
        .post(
            &format!("/open/v1/coupon-verifications/{}/undo", old.id),
            json!({}),
            "undo-old",
        )
        .await;
    assert_eq!(
        (late.status, late.body["error"]["code"].as_str()),
        (409, Some("coupon_undo_window_passed"))
    );
    let unknown = mall
        .post(
            "/open/v1/coupon-verifications/999999/undo",
            json!({}),
            "undo-none",
        )
        .await;
    assert_eq!(unknown.status, 404);
    let query = mall
        .send(
            "POST",
            "/open/v1/coupons/query",
            Some(&json!({"code": second})),
            None,
        )
        .await;
    assert_eq!(query.body["reason_code"], "coupon_used");
}

async fn exchanges(owner: &Client, mall: &Mall, program_id: i64) {
    // 使用卡券ID: a 兑换券 for its goods.
    let (status, gift) = owner
        .post(
            "/api/v1/coupon-programs",
            json!({"kind": "gift", "gift": "中秋礼盒", "title": "礼盒兑换券", "quantity": 10,
                   "validity_type": "relative", "term_days": 7, "use_all_locations": true}),
        )
        .await;
    assert_eq!(status, 201, "{gift}");
    let gift_id = gift["id"].as_i64().unwrap();
    owner
        .post(
            &format!("/api/v1/coupon-programs/{gift_id}/state"),
            json!({"state": "active"}),
        )
        .await;
    let issued = mall
        .post(
            "/open/v1/coupons",
            json!({"program_id": gift_id, "customer_id": "u-1001", "order_id": "M2"}),
            "issue-M2",
        )
        .await;
    let gift_code = issued.body["coupons"][0]["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let cash = mall
        .post("/open/v1/coupons", json!({"program_id": program_id, "customer_id": "u-1001", "order_id": "M1", "order_line": "2"}), "issue-M1-2")
        .await;
    let cash_code = cash.body["coupons"][0]["code"].as_str().unwrap().to_owned();
    let wrong = mall
        .post(
            "/open/v1/coupon-exchanges",
            json!({"code": cash_code, "order_ref": "M3"}),
            "exchange-cash",
        )
        .await;
    assert_eq!(wrong.body["error"]["code"], "coupon_not_an_exchange");
    let exchanged = mall
        .post(
            "/open/v1/coupon-exchanges",
            json!({"code": gift_code, "order_ref": "M3"}),
            "exchange-1",
        )
        .await;
    assert_eq!(exchanged.status, 201, "{}", exchanged.body);
    assert_eq!(exchanged.body["gift"], "中秋礼盒");

    // Unknown codes, signed or not: one answer.
    let unknown = mall
        .send(
            "POST",
            "/open/v1/coupons/query",
            Some(&json!({"code": "00000000000000000000"})),
            None,
        )
        .await;
    assert_eq!(
        (unknown.status, unknown.body["error"]["code"].as_str()),
        (404, Some("coupon_unknown_code"))
    );
    let malformed = mall
        .send(
            "POST",
            "/open/v1/coupons/query",
            Some(&json!({"code": "abc"})),
            None,
        )
        .await;
    assert_eq!(malformed.body["error"]["code"], "coupon_unknown_code");
}

async fn staff_flow(app: TestApp) {
    let owner = app.client("owner").await;
    let one = location(&owner, "一店").await;
    let two = location(&owner, "二店").await;
    let three = location(&owner, "三店").await;
    let program = cash_program(&owner, &[one, two], 1).await;
    let program_id = program["id"].as_i64().unwrap();
    let (status, qr) = owner
        .get_bytes(&format!("/api/v1/coupon-programs/{program_id}/qr"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        common::decode_qr_png(&qr),
        program["claim_url"].as_str().unwrap()
    );
    let (status, issued) = owner
        .post(
            &format!("/api/v1/coupon-programs/{program_id}/issues"),
            json!({"recipients": [{"phone": "13800001234"}]}),
        )
        .await;
    assert_eq!(
        (status, issued["n_issued"].as_i64()),
        (201, Some(1)),
        "{issued}"
    );
    let code = code_of_phone(&app, "13800001234").await;
    app.add_staff("desk", "verifier").await;
    let desk = app.client("desk").await;
    let (status, body) = owner
        .send(
            reqwest::Method::PUT,
            &format!("/api/v1/staff/{}/locations", staff_id(&app, "desk").await),
            json!({"location_ids": [three]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let check = json!({"code": code, "location_id": three, "order_amount_fen": 12000});
    let (status, checked) = desk.post("/api/v1/coupon-verifications/check", check).await;
    assert_eq!(status, 200, "{checked}");
    assert_eq!(checked["usable"], false);
    assert_eq!(checked["reason_code"], "coupon_wrong_location");
    assert_eq!(checked["reason"], "该券不适用于本门店");
    assert_eq!(checked["customer"], "138****1234", "masked for a verifier");
    let (status, refused) = desk
        .post(
            "/api/v1/coupon-verifications",
            json!({"code": code, "location_id": one, "order_amount_fen": 12000}),
        )
        .await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (409, Some("coupon_not_your_location"))
    );
    owner
        .send(
            reqwest::Method::PUT,
            &format!("/api/v1/staff/{}/locations", staff_id(&app, "desk").await),
            json!({"location_ids": [one, three]}),
        )
        .await;
    let (status, done) = desk
        .post(
            "/api/v1/coupon-verifications",
            json!({"code": code, "location_id": one, "order_amount_fen": 12000, "channel": "scan"}),
        )
        .await;
    assert_eq!(status, 201, "{done}");
    assert_eq!(
        (
            done["discount_yuan"].as_str(),
            done["location_name"].as_str()
        ),
        (Some("20.00"), Some("一店"))
    );
    records_show_the_verification(&app, &owner, &desk).await;
    let (_, program) = owner
        .get(&format!("/api/v1/coupon-programs/{program_id}"))
        .await;
    assert_eq!(
        (
            program["n_claimed"].as_i64(),
            program["n_verified"].as_i64()
        ),
        (Some(1), Some(1))
    );
}

async fn records_show_the_verification(app: &TestApp, owner: &Client, desk: &Client) {
    let (status, _) = desk.get("/api/v1/coupon-verifications").await;
    assert_eq!(status, 403, "records are for managers");
    let (_, records) = owner.get("/api/v1/coupon-verifications").await;
    assert_eq!(records["total"], 1);
    assert_eq!(records["items"][0]["channel_label"], "扫码核销");
    let (_, stats) = owner.get("/api/v1/coupon-verifications/stats").await;
    assert_eq!(
        (
            stats["n_verified"].as_i64(),
            stats["discount_yuan"].as_str()
        ),
        (Some(1), Some("20.00"))
    );
    assert_eq!(stats["days"][0]["location_name"], "一店");
    assert_eq!(stats["verifiers"][0]["verifier"], "desk");
    let (status, xlsx) = owner.get_bytes("/api/v1/coupon-verifications/export").await;
    assert_eq!(status, 200);
    let path = app.dir.join("records.xlsx");
    std::fs::write(&path, xlsx).unwrap();
    let rows = common::xlsx_rows(&path);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1][1], "一店");
    assert_eq!(rows[1][9], "20");
    let (status, xlsx) = owner
        .get_bytes("/api/v1/coupon-verifications/stats/export")
        .await;
    assert_eq!(status, 200);
    let path = app.dir.join("stats.xlsx");
    std::fs::write(&path, xlsx).unwrap();
    let rows = common::xlsx_rows(&path);
    assert_eq!(rows[0][..3], ["日期", "门店", "核销张数"]);
    assert_eq!((rows[1][1].as_str(), rows[1][2].as_str()), ("一店", "1"));
}

/// The code of the first coupon the customer with `phone` holds.
async fn code_of_phone(app: &TestApp, phone: &str) -> String {
    let customer = app
        .store
        .find_phone_customer(app.merchant_id, phone)
        .await
        .unwrap()
        .unwrap()
        .0;
    let (coupons, _) = app
        .store
        .list_customer_coupons(
            app.merchant_id,
            customer.id,
            None,
            kaquan_web::now(),
            Default::default(),
        )
        .await
        .unwrap();
    kaquan_core::coupon::code::open_coupon_code(
        &app.master,
        app.merchant_id,
        coupons[0].coupon.key_version,
        &coupons[0].coupon.sealed,
    )
    .unwrap()
}

async fn staff_id(app: &TestApp, username: &str) -> i64 {
    app.store
        .list_staff(app.merchant_id)
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.username == username)
        .unwrap()
        .id
}

async fn refusals(app: TestApp) {
    let owner = app.client("owner").await;
    let (status, body) = owner
        .post(
            "/api/v1/coupon-programs",
            json!({"kind": "cash", "least_cost_fen": 100, "reduce_cost_fen": 2000, "title": "一二三四五六七八九十",
                   "quantity": 0, "validity_type": "fixed", "begin_date": "2026-12-31", "end_date": "2026-12-01",
                   "use_all_locations": false, "color": "red"}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let details: Vec<&str> = body["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    for expected in [
        "券名称最多 9 个字符",
        "起用金额不能小于减免金额",
        "有效期的开始日期晚于结束日期",
        "请选择适用门店，或选择全部门店可用",
        "请选择券颜色",
    ] {
        assert!(details.contains(&expected), "{expected}: {details:?}");
    }
    let (status, body) = owner.post("/api/v1/coupon-programs", json!({"kind": "cash", "reduce_cost_fen": 1, "title": "x", "validity_type": "relative", "term_days": 1, "use_all_locations": true, "quantiy": 5})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("unknown_field")),
        "a misspelled field is refused"
    );
    let program = cash_program(&owner, &[], 1).await;
    let id = program["id"].as_i64().unwrap();
    let (status, body) = owner
        .post(&format!("/api/v1/coupon-programs/{id}/issues"), json!({"recipients": [{"phone": "13800001234"}, {"phone": "123"}, {}, {"customer_id": "u\u{0}1"}]}))
        .await;
    assert!(status == 422, "{body}");
    let (_, program) = owner.get(&format!("/api/v1/coupon-programs/{id}")).await;
    assert_eq!(program["n_claimed"], 0, "a bad list issues nothing");
    let (status, body) = owner
        .post(
            &format!("/api/v1/coupon-programs/{id}/stock"),
            json!({"delta": -101}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let (status, body) = owner
        .post(
            &format!("/api/v1/coupon-programs/{id}/state"),
            json!({"state": "draft"}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let mut narrower = program.clone();
    let update = json!({"version": narrower["version"], "program": {"kind": "cash", "least_cost_fen": 10000, "reduce_cost_fen": 2000, "title": "满100减20", "validity_type": "relative", "term_days": 10, "use_all_locations": true}});
    let (status, body) = owner
        .send(
            reqwest::Method::PUT,
            &format!("/api/v1/coupon-programs/{id}"),
            update,
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("有效期只能延长"));
    narrower["version"] = json!(0);
    let wider_end = kaquan_core::clock::format_date(kaquan_web::now() + 60 * 86_400);
    let stale = json!({"version": 0, "program": {"kind": "cash", "least_cost_fen": 10000, "reduce_cost_fen": 2000, "title": "满100减20", "validity_type": "fixed", "begin_date": program["begin_date"], "end_date": wider_end, "use_all_locations": true}});
    let (status, body) = owner
        .send(
            reqwest::Method::PUT,
            &format!("/api/v1/coupon-programs/{id}"),
            stale,
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("coupon_program_changed"))
    );
    let (status, body) = owner
        .post("/api/v1/locations", json!({"name": "一店"}))
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = owner
        .post("/api/v1/locations", json!({"name": "一店"}))
        .await;
    assert_eq!(status, 409, "{body}");
}

/// Uploads a 定向发放 list (first column: phones) through the console;
/// returns the job page's path it redirects to.
async fn upload_list(owner: &Client, program_id: i64, phones: &[String]) -> String {
    let csv = std::iter::once("手机号".to_owned())
        .chain(phones.iter().cloned())
        .collect::<Vec<_>>()
        .join("\n");
    let form = reqwest::multipart::Form::new()
        .text("csrf", owner.csrf.clone())
        .part(
            "file",
            reqwest::multipart::Part::bytes(csv.into_bytes()).file_name("list.csv"),
        );
    let response = owner
        .http
        .post(format!("{}/coupons/{program_id}/issues/upload", owner.base))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let path = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        path.contains("/issues/jobs/"),
        "a long list runs in the background: {path}"
    );
    path
}

/// Waits for a background 定向发放 to end; returns its page.
async fn job_outcome(owner: &Client, path: &str) -> String {
    common::browser::wait_until("the background issue to end", || async {
        let page = owner.page(path).await;
        (page.contains("id=\"job-issued\"") || page.contains("id=\"job-error\"")).then_some(page)
    })
    .await
}

async fn long_list(app: TestApp) {
    let owner = app.client("owner").await;
    let program = cash_program(&owner, &[], 1).await;
    let id = program["id"].as_i64().unwrap();
    let mut phones: Vec<String> = (0..1001).map(|i| format!("1380000{i:04}")).collect();
    phones[500] = "坏号".into();
    let page = job_outcome(&owner, &upload_list(&owner, id, &phones).await).await;
    assert!(page.contains("id=\"job-rows\""), "the bad row is listed");
    assert!(
        page.contains("<td>502</td>"),
        "by its line (the header is line 1)"
    );
    let (_, after) = owner.get(&format!("/api/v1/coupon-programs/{id}")).await;
    assert_eq!(after["n_claimed"], 0, "nothing was issued");
    phones[500] = "13899999999".into();
    let page = job_outcome(&owner, &upload_list(&owner, id, &phones).await).await;
    assert!(
        page.contains("优惠券已领完"),
        "a stock of 100 holds: nothing is issued"
    );
    let (status, _) = owner
        .post(
            &format!("/api/v1/coupon-programs/{id}/stock"),
            json!({"delta": 1000}),
        )
        .await;
    assert_eq!(status, 200);
    let page = job_outcome(&owner, &upload_list(&owner, id, &phones).await).await;
    assert!(page.contains("已发放 1001 张"), "{page}");
    let (_, after) = owner.get(&format!("/api/v1/coupon-programs/{id}")).await;
    assert_eq!(after["n_claimed"], 1001);
}

/// Verifies a coupon as if an hour and a minute ago, straight in the store.
async fn verify_an_hour_ago(
    app: &TestApp,
    coupon_id: i64,
) -> kaquan_core::coupon::usage::CouponVerification {
    let held = app
        .store
        .get_coupon(app.merchant_id, coupon_id)
        .await
        .unwrap()
        .unwrap();
    app.store
        .verify_coupon(
            &Default::default(),
            &kaquan_core::coupon::usage::VerifyCoupon {
                merchant_id: app.merchant_id,
                coupon_id: held.coupon.id,
                program_id: held.coupon.program_id,
                customer_id: held.coupon.customer_id,
                location_id: None,
                actor: kaquan_core::audit::Actor::cli(),
                channel: kaquan_core::coupon::usage::VerifyChannel::Api,
                order_amount_fen: None,
                discount_fen: 2000,
                order_ref: "POS-OLD".into(),
                give: None,
                now: kaquan_web::now() - 3660,
            },
        )
        .await
        .unwrap()
        .result
        .unwrap()
}

/// Uploads `bytes` as the program's logo through the staff API.
async fn upload_logo(owner: &Client, program_id: i64, bytes: &[u8]) -> (u16, Value) {
    owner
        .upload(&format!("/api/v1/coupon-programs/{program_id}/logo"), bytes)
        .await
}

async fn logo_flow(app: TestApp) {
    let owner = app.client("owner").await;
    let program = cash_program(&owner, &[], 1).await;
    let id = program["id"].as_i64().unwrap();
    let (status, body) = upload_logo(&owner, id, b"<svg onload=alert(1)>").await;
    assert_eq!(status, 422, "not an image: {body}");
    let png = [&b"\x89PNG\r\n\x1a\n"[..], &[0u8; 64][..]].concat();
    let (status, body) = upload_logo(&owner, id, &png).await;
    assert_eq!(status, 200, "{body}");
    let url = body["logo_url"].as_str().unwrap().to_owned();
    assert!(
        url.starts_with(&format!("/m/coupon-logos/{id}?v=")),
        "{url}"
    );
    // Customers fetch it without signing in.
    let served = reqwest::get(app.url(&url)).await.unwrap();
    assert_eq!(served.status(), 200);
    assert_eq!(served.headers()["content-type"], "image/png");
    assert_eq!(served.bytes().await.unwrap().as_ref(), &png[..]);
    assert!(owner
        .page(&format!("/coupons/{id}"))
        .await
        .contains("id=\"program-logo\""));
    // Saving the program in the console keeps it (the form has no logo field).
    let version = body["version"].as_i64().unwrap().to_string();
    let (begin, end) = (
        body["begin_date"].as_str().unwrap().to_owned(),
        body["end_date"].as_str().unwrap().to_owned(),
    );
    let edit = [
        ("csrf", owner.csrf.as_str()),
        ("version", &version),
        ("kind", "cash"),
        ("least_cost", "100"),
        ("reduce_cost", "20"),
        ("title", "满百减二十"),
        ("quantity", "100"),
        ("get_limit", "1"),
        ("use_limit", "5"),
        ("validity_type", "fixed"),
        ("begin_date", &begin),
        ("end_date", &end),
        ("use_all_locations", "all"),
    ];
    let response = owner
        .http
        .post(format!("{}/coupons/{id}/edit", owner.base))
        .form(&edit)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303, "{}", response.text().await.unwrap());
    let (_, saved) = owner.get(&format!("/api/v1/coupon-programs/{id}")).await;
    assert_eq!(saved["title"], "满百减二十");
    assert_eq!(saved["logo_url"], url.as_str());
}
