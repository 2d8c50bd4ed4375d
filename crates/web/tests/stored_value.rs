//! Stored value over HTTP on SQLite and PostgreSQL: the signed open API
//! (issue, redeem, spend, refund, balance, statement, login links), its
//! signature and idempotency rules, concurrency, and the console pages.

mod common;

use common::{Client, Mall, Signed, TestApp};
use kaquan_core::signing;
use serde_json::json;

on_both_backends! {
    the_mall_issues_codes_and_customers_redeem_spend_and_get_refunds => open_api_flow;
    bad_signatures_stale_timestamps_and_reused_nonces_get_401 => signature_rules;
    one_hundred_concurrent_replays_of_a_key_have_one_effect => concurrent_replays;
    one_thousand_concurrent_redemptions_of_a_code_credit_once => concurrent_redemptions;
    concurrent_spends_never_take_the_balance_below_zero => overspend_race;
    a_login_link_signs_the_customer_in_once => login_links;
    console_pages_create_export_delete_codes_and_adjust_balances => console_flow;
    the_mall_reads_what_to_show_of_the_giftcard_centre => giftcard_centre;
    staff_filter_codes_by_state_and_look_one_up => code_lookup;
}

/// An offline batch of `n` codes of `face_value_fen`; returns the plaintext codes.
pub async fn offline_codes(
    app: &TestApp,
    owner: &Client,
    face_value_fen: i64,
    n: i64,
) -> Vec<String> {
    let (status, template) = owner
        .post(
            "/api/v1/code-templates",
            json!({"kind": "offline", "name": "线下卡", "face_value_fen": face_value_fen, "quantity": n}),
        )
        .await;
    assert_eq!(status, 201, "{template}");
    let keys = app.master.merchant_keys(app.merchant_id, 1);
    app.store
        .codes_after(app.merchant_id, template["id"].as_i64().unwrap(), 0, 10_000)
        .await
        .unwrap()
        .iter()
        .map(|c| kaquan_core::code::open_code(&keys, c.sealed.as_deref().unwrap()).unwrap())
        .collect()
}

async fn balance(mall: &Mall, customer: &str) -> i64 {
    let reply = mall
        .send(
            "GET",
            &format!("/open/v1/customers/{customer}/balance"),
            None,
            None,
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["balance_fen"].as_i64().unwrap()
}

async fn open_api_flow(app: TestApp) {
    let owner = app.client("owner").await;
    let mall = Mall::new(&app).await;
    let (online, product) = owner
        .giftcard_product("200元电子礼品卡", 20000, 19000)
        .await;
    let order = json!({"order_id": "M-1001", "product_id": product["id"], "quantity": 2, "customer_id": "buyer-1"});
    let issued = mall
        .post("/open/v1/orders", order.clone(), "order-M-1001")
        .await;
    assert_eq!(issued.status, 201, "{}", issued.body);
    let codes: Vec<String> = issued.body["codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["code"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(codes.len(), 2);
    assert!(
        codes
            .iter()
            .all(|c| c.len() == 19 && c.matches('-').count() == 3),
        "{codes:?}"
    );
    // The same order again: the same codes, nothing new (with the same key, or a new one).
    let replay = mall
        .post("/open/v1/orders", order.clone(), "order-M-1001")
        .await;
    assert_eq!((replay.status, replay.replayed), (200, true));
    assert_eq!(replay.body, issued.body);
    let again = mall.post("/open/v1/orders", order, "another-key").await;
    assert_eq!(again.body["codes"], issued.body["codes"]);
    let changed = mall
        .post(
            "/open/v1/orders",
            json!({"order_id": "M-1001", "product_id": product["id"], "quantity": 3}),
            "order-M-1001-b",
        )
        .await;
    assert_eq!(
        (changed.status, changed.body["error"]["code"].as_str()),
        (409, Some("order_mismatch"))
    );

    // The buyer redeems one code; the second redemption of it is refused.
    let redeemed = mall
        .post(
            "/open/v1/redemptions",
            json!({"customer_id": "buyer-1", "code": codes[0]}),
            "r-1",
        )
        .await;
    assert_eq!(redeemed.status, 201, "{}", redeemed.body);
    assert_eq!(redeemed.body["balance_after_fen"], 20000);
    let twice = mall
        .post(
            "/open/v1/redemptions",
            json!({"customer_id": "buyer-1", "code": codes[0]}),
            "r-2",
        )
        .await;
    assert_eq!(
        (twice.status, twice.body["error"]["code"].as_str()),
        (422, Some("code_refused"))
    );
    let unknown = mall
        .post(
            "/open/v1/redemptions",
            json!({"customer_id": "buyer-1", "code": "0000-0000-0000-0000"}),
            "r-3",
        )
        .await;
    assert_eq!(
        unknown.body["error"], twice.body["error"],
        "one answer for every wrong code"
    );
    let missing_key = mall
        .send(
            "POST",
            "/open/v1/redemptions",
            Some(&json!({"customer_id": "buyer-1", "code": codes[1]})),
            None,
        )
        .await;
    assert_eq!(missing_key.status, 422);

    // Spend at checkout, never below zero; refund part of it.
    let spend = mall
        .post(
            "/open/v1/spends",
            json!({"customer_id": "buyer-1", "amount_fen": 15000, "reference": "checkout-9"}),
            "s-1",
        )
        .await;
    assert_eq!(
        (spend.status, spend.body["balance_after_fen"].as_i64()),
        (201, Some(5000))
    );
    let over = mall
        .post(
            "/open/v1/spends",
            json!({"customer_id": "buyer-1", "amount_fen": 5001, "reference": "checkout-10"}),
            "s-2",
        )
        .await;
    assert_eq!(
        (over.status, over.body["error"]["code"].as_str()),
        (422, Some("insufficient_balance"))
    );
    let spend_id = spend.body["transaction_id"].as_i64().unwrap();
    let refund = mall
        .post(
            "/open/v1/refunds",
            json!({"spend_id": spend_id, "amount_fen": 10000, "reason": "退一件"}),
            "f-1",
        )
        .await;
    assert_eq!(
        (refund.status, refund.body["balance_after_fen"].as_i64()),
        (201, Some(15000))
    );
    let too_much = mall
        .post(
            "/open/v1/refunds",
            json!({"spend_id": spend_id, "amount_fen": 5001}),
            "f-2",
        )
        .await;
    assert_eq!(
        (too_much.status, too_much.body["error"]["code"].as_str()),
        (422, Some("refund_exceeds_spend"))
    );
    let bad_amount = mall
        .post(
            "/open/v1/spends",
            json!({"customer_id": "buyer-1", "amount_fen": -5, "reference": "x"}),
            "s-3",
        )
        .await;
    assert_eq!(bad_amount.status, 422);
    assert_eq!(balance(&mall, "buyer-1").await, 15000);
    let nobody = mall
        .send("GET", "/open/v1/customers/nobody/balance", None, None)
        .await;
    assert_eq!(
        (nobody.status, nobody.body["error"]["code"].as_str()),
        (404, Some("customer_not_found"))
    );
    let statement = mall
        .send(
            "GET",
            "/open/v1/customers/buyer-1/statement?page=1&page_size=2",
            None,
            None,
        )
        .await;
    assert_eq!(statement.status, 200, "{}", statement.body);
    assert_eq!(statement.body["total"], 3);
    assert_eq!(statement.body["items"].as_array().unwrap().len(), 2);
    assert_eq!(statement.body["items"][0]["kind"], "refund");
    // Staff see the customer, the used code and who used it.
    let (_, customers) = owner.get("/api/v1/customers?search=buyer").await;
    assert_eq!(customers["items"][0]["balance_fen"], 15000);
    let (_, listed) = owner
        .get(&format!("/api/v1/code-templates/{}/codes", online["id"]))
        .await;
    assert_eq!(listed["items"][0]["state"], "used");
    assert_eq!(listed["items"][0]["customer_label"], "buyer-1");
    assert_eq!(listed["items"][0]["order_id"], "M-1001");
    assert!(listed["items"][0]["code_masked"]
        .as_str()
        .unwrap()
        .starts_with("****-****-****-"));
    let (_, metrics) = owner.get_bytes("/metrics").await;
    let metrics = String::from_utf8(metrics).unwrap();
    assert!(
        metrics.contains("kaquan_code_redemptions_total 3"),
        "{metrics}"
    );
    assert!(
        metrics.contains("kaquan_code_redemption_failures_total 2"),
        "{metrics}"
    );
    assert!(app.store.check_invariants().await.unwrap().is_empty());
}

async fn signature_rules(app: TestApp) {
    let mall = Mall::new(&app).await;
    let owner = app.client("owner").await;
    let body = json!({"customer_id": "c1", "amount_fen": 1, "reference": "x"}).to_string();
    let now = kaquan_web::now();
    let fresh = || kaquan_core::secrets::random_token_hex(16);
    // A minute past the allowed skew: the server's clock ticks on while the
    // test runs (the exact edges are unit-tested in kaquan_core::signing).
    let outside = signing::TIMESTAMP_SKEW_SECONDS_MAX + 60;
    let check = |reply: Signed, what: &str| {
        assert_eq!(reply.status, 401, "{what}: {}", reply.body);
        assert!(
            matches!(
                reply.body["error"]["code"].as_str(),
                Some("bad_signature" | "nonce_reused")
            ),
            "{what}: {}",
            reply.body
        );
    };
    check(
        mall.send_raw(
            "POST",
            "/open/v1/spends",
            "",
            &now.to_string(),
            &fresh(),
            &body,
            Some("k1"),
            "wrong-secret",
        )
        .await,
        "wrong secret",
    );
    check(
        mall.send_raw(
            "POST",
            "/open/v1/spends",
            "",
            &(now - outside).to_string(),
            &fresh(),
            &body,
            Some("k1"),
            &mall.secret,
        )
        .await,
        "stale timestamp",
    );
    check(
        mall.send_raw(
            "POST",
            "/open/v1/spends",
            "",
            &(now + outside).to_string(),
            &fresh(),
            &body,
            Some("k1"),
            &mall.secret,
        )
        .await,
        "future timestamp",
    );
    // An altered body: signed over one body, sent with another.
    let canonical = signing::canonical_request(
        "POST",
        "/open/v1/spends",
        "",
        &now.to_string(),
        "altered-body-nonce-1",
        body.as_bytes(),
    );
    let response = reqwest::Client::new()
        .post(format!("{}/open/v1/spends", app.base))
        .header("x-kaquan-key", &mall.key_id)
        .header("x-kaquan-timestamp", now.to_string())
        .header("x-kaquan-nonce", "altered-body-nonce-1")
        .header(
            "x-kaquan-signature",
            signing::sign(&mall.secret, &canonical),
        )
        .header("idempotency-key", "k1")
        .body(body.replace("\"amount_fen\":1", "\"amount_fen\":100000"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401, "altered body");
    let unsigned = reqwest::Client::new()
        .get(format!("{}/open/v1/customers/c1/balance", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 401);
    // A reused nonce: the first request counts, the replay of it does not.
    let nonce = fresh();
    let first = mall
        .send_raw(
            "GET",
            "/open/v1/customers/c1/balance",
            "",
            &now.to_string(),
            &nonce,
            "",
            None,
            &mall.secret,
        )
        .await;
    assert_eq!(first.status, 404, "c1 does not exist yet: {}", first.body);
    check(
        mall.send_raw(
            "GET",
            "/open/v1/customers/c1/balance",
            "",
            &now.to_string(),
            &nonce,
            "",
            None,
            &mall.secret,
        )
        .await,
        "reused nonce on a read",
    );
    let codes = offline_codes(&app, &owner, 100, 1).await;
    let redeem = json!({"customer_id": "c1", "code": codes[0]}).to_string();
    let nonce = fresh();
    let first = mall
        .send_raw(
            "POST",
            "/open/v1/redemptions",
            "",
            &now.to_string(),
            &nonce,
            &redeem,
            Some("k-redeem"),
            &mall.secret,
        )
        .await;
    assert_eq!(first.status, 201, "{}", first.body);
    check(
        mall.send_raw(
            "POST",
            "/open/v1/redemptions",
            "",
            &now.to_string(),
            &nonce,
            &redeem,
            Some("k-other"),
            &mall.secret,
        )
        .await,
        "reused nonce on a write",
    );
    // A query string is part of what is signed.
    let canonical = signing::canonical_request(
        "GET",
        "/open/v1/customers/c1/statement",
        "page=1",
        &now.to_string(),
        "query-nonce-000001",
        b"",
    );
    let response = reqwest::Client::new()
        .get(format!(
            "{}/open/v1/customers/c1/statement?page=2",
            app.base
        ))
        .header("x-kaquan-key", &mall.key_id)
        .header("x-kaquan-timestamp", now.to_string())
        .header("x-kaquan-nonce", "query-nonce-000001")
        .header(
            "x-kaquan-signature",
            signing::sign(&mall.secret, &canonical),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401, "altered query");
    // A key revoked by another process (`kaquan api-key revoke`, another
    // node) stops working here once this node's cache time has passed.
    let elsewhere = Mall::new(&app).await;
    let reply = elsewhere
        .send("GET", "/open/v1/customers/c1/balance", None, None)
        .await;
    assert_eq!(reply.status, 200, "the key is now cached: {}", reply.body);
    let (_, keys) = owner.get("/api/v1/api-keys").await;
    let id_of = |mall: &Mall| {
        keys.as_array()
            .unwrap()
            .iter()
            .find(|k| k["key_id"] == mall.key_id.as_str())
            .unwrap()["id"]
            .as_i64()
            .unwrap()
    };
    let (id, elsewhere_id) = (id_of(&mall), id_of(&elsewhere));
    let audit = kaquan_core::audit::AuditEntry {
        merchant_id: app.merchant_id,
        actor: kaquan_core::audit::Actor::cli(),
        action: "revoke_api_key".into(),
        target: String::new(),
        detail: String::new(),
        n_affected: 0,
        created_at: now,
    };
    app.store
        .revoke_api_key(app.merchant_id, elsewhere_id, &audit)
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(
        kaquan_web::open_api::API_KEY_CACHE_SECONDS * 1000 + 200,
    ))
    .await;
    check(
        elsewhere
            .send("GET", "/open/v1/customers/c1/balance", None, None)
            .await,
        "key revoked by another process",
    );
    // A key revoked on this node stops working here at once.
    assert_eq!(
        owner
            .post(&format!("/api/v1/api-keys/{id}/revoke"), json!({}))
            .await
            .0,
        204
    );
    check(
        mall.send("GET", "/open/v1/customers/c1/balance", None, None)
            .await,
        "revoked key",
    );
    let (_, metrics) = owner.get_bytes("/metrics").await;
    assert!(!String::from_utf8(metrics)
        .unwrap()
        .contains("kaquan_open_api_bad_signatures_total 0"));
}

async fn concurrent_replays(app: TestApp) {
    let mall = Mall::new(&app).await;
    let owner = app.client("owner").await;
    let codes = offline_codes(&app, &owner, 100_000, 1).await;
    let credited = mall
        .post(
            "/open/v1/redemptions",
            json!({"customer_id": "c1", "code": codes[0]}),
            "credit",
        )
        .await;
    assert_eq!(credited.status, 201);
    let body = json!({"customer_id": "c1", "amount_fen": 700, "reference": "order-7"});
    let mall = &mall;
    let replies = futures_util::future::join_all((0..100).map(|_| {
        let body = body.clone();
        async move { mall.post("/open/v1/spends", body, "spend-order-7").await }
    }))
    .await;
    assert!(
        replies.iter().all(|r| r.status == 201),
        "{:?}",
        replies.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert_eq!(replies.iter().filter(|r| !r.replayed).count(), 1);
    assert!(
        replies.iter().all(|r| r.body == replies[0].body),
        "identical responses"
    );
    assert_eq!(balance(mall, "c1").await, 100_000 - 700);
    let other_body = mall
        .post(
            "/open/v1/spends",
            json!({"customer_id": "c1", "amount_fen": 800, "reference": "order-7"}),
            "spend-order-7",
        )
        .await;
    assert_eq!(
        (other_body.status, other_body.body["error"]["code"].as_str()),
        (409, Some("idempotency_mismatch"))
    );
    assert_eq!(balance(mall, "c1").await, 100_000 - 700);
}

async fn concurrent_redemptions(app: TestApp) {
    let mall = Mall::new(&app).await;
    let owner = app.client("owner").await;
    owner
        .put_giftcard_settings(json!({"attempt_limit": 1000}))
        .await;
    let codes = offline_codes(&app, &owner, 5_000, 1).await;
    let mall = &mall;
    let code = &codes[0];
    let replies = futures_util::future::join_all((0..1000).map(|i| async move {
        mall.post(
            "/open/v1/redemptions",
            json!({"customer_id": format!("c{}", i % 20), "code": code, "client_ip": format!("10.0.{}.{}", i / 250, i % 250)}),
            &format!("redeem-{i}"),
        )
        .await
    }))
    .await;
    let statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 422),
        "no 5xx: {statuses:?}"
    );
    let (_, customers) = owner.get("/api/v1/customers?page_size=200").await;
    let total: i64 = customers["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["balance_fen"].as_i64().unwrap())
        .sum();
    assert_eq!(total, 5_000);
    assert!(app.store.check_invariants().await.unwrap().is_empty());
}

async fn overspend_race(app: TestApp) {
    let mall = Mall::new(&app).await;
    let owner = app.client("owner").await;
    let codes = offline_codes(&app, &owner, 10_000, 1).await;
    assert_eq!(
        mall.post(
            "/open/v1/redemptions",
            json!({"customer_id": "c1", "code": codes[0]}),
            "credit"
        )
        .await
        .status,
        201
    );
    let mall = &mall;
    let replies = futures_util::future::join_all((0..400).map(|i| async move {
        let amount = if i % 2 == 0 { 100 } else { 10_000 };
        let reply = mall
            .post(
                "/open/v1/spends",
                json!({"customer_id": "c1", "amount_fen": amount, "reference": format!("o{i}")}),
                &format!("spend-{i}"),
            )
            .await;
        (amount, reply)
    }))
    .await;
    assert!(
        replies
            .iter()
            .all(|(_, r)| r.status == 201 || r.status == 422),
        "no 5xx"
    );
    let spent: i64 = replies
        .iter()
        .filter(|(_, r)| r.status == 201)
        .map(|(a, _)| a)
        .sum();
    assert!(spent <= 10_000);
    let left = balance(mall, "c1").await;
    assert!(left >= 0);
    assert_eq!(left, 10_000 - spent);
    assert!(app.store.check_invariants().await.unwrap().is_empty());
}

fn customer_browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn login_links(app: TestApp) {
    let mall = Mall::new(&app).await;
    let owner = app.client("owner").await;
    let codes = offline_codes(&app, &owner, 8_800, 2).await;
    let link = mall
        .post(
            "/open/v1/login-links",
            json!({"customer_id": "shopper-5"}),
            "link-1",
        )
        .await;
    assert_eq!(link.status, 201, "{}", link.body);
    let url = link.body["url"].as_str().unwrap().to_owned();
    assert!(url.starts_with(&format!(
        "{}/m/{}/exchange/login?token=",
        app.base, app.merchant_id
    )));
    let browser = customer_browser();
    let first = browser.get(&url).send().await.unwrap();
    assert_eq!(first.status(), 303);
    let cookie = first.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    // The link works once.
    let again = customer_browser().get(&url).send().await.unwrap();
    assert_eq!(again.status(), 422);
    let tampered = customer_browser()
        .get(url.replace("token=", "token=9"))
        .send()
        .await
        .unwrap();
    assert_eq!(tampered.status(), 422);
    let centre = browser
        .get(app.url(&format!("/m/{}/exchange", app.merchant_id)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(centre.contains("id=\"balance\">¥0.00"), "{centre}");
    let csrf = centre
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let redeem = |code: String, csrf: String| {
        let browser = browser.clone();
        let url = app.url(&format!("/m/{}/exchange/redeem", app.merchant_id));
        async move {
            let response = browser
                .post(url)
                .form(&[("csrf", csrf), ("code", code)])
                .send()
                .await
                .unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };
    let (status, page) = redeem(codes[0].to_lowercase(), csrf.clone()).await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("兑换成功") && page.contains("¥88.00"),
        "{page}"
    );
    let (status, page) = redeem(codes[0].clone(), csrf.clone()).await;
    assert_eq!(status, 422);
    assert!(page.contains("兑换码无效或已被使用"));
    let (status, _) = redeem(codes[1].clone(), "wrong".into()).await;
    assert_eq!(status, 403, "csrf is checked");
    let statement = browser
        .get(app.url(&format!("/m/{}/exchange/balance", app.merchant_id)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        statement.contains("兑换「") && statement.contains("+88.00"),
        "{statement}"
    );
    assert_eq!(balance(&mall, "shopper-5").await, 8_800);
    // A session of one merchant does not open another merchant's centre.
    let other = app
        .store
        .create_merchant("别家", kaquan_web::now())
        .await
        .unwrap();
    let elsewhere = browser
        .get(app.url(&format!("/m/{}/exchange/balance", other.id)))
        .send()
        .await
        .unwrap();
    assert_eq!(elsewhere.status(), 303);
}

async fn console_flow(app: TestApp) {
    let owner = app.client("owner").await;
    let form = |path: &str, fields: Vec<(&'static str, String)>| {
        let http = owner.http.clone();
        let url = app.url(path);
        let mut fields = fields;
        fields.push(("csrf", owner.csrf.clone()));
        async move {
            let response = http.post(url).form(&fields).send().await.unwrap();
            let status = response.status().as_u16();
            let location = response
                .headers()
                .get("location")
                .map(|l| l.to_str().unwrap().to_owned());
            (status, location, response.text().await.unwrap())
        }
    };
    for path in [
        "/giftcards/settings",
        "/giftcards/codes?kind=online",
        "/giftcards/codes?kind=offline",
        "/giftcards/products",
        "/customers",
        "/settings/api-keys",
    ] {
        let (status, _) = owner.get_bytes(path).await;
        assert_eq!(status, 200, "{path}");
    }
    let (status, _, page) = form(
        "/giftcards/codes",
        vec![
            ("kind", "offline".into()),
            ("name", "春节卡".into()),
            ("face_value", "50".into()),
            ("valid_from", String::new()),
            ("valid_until", "2099-12-31".into()),
            ("quantity", "30".into()),
        ],
    )
    .await;
    assert_eq!(status, 303, "{page}");
    let (status, _, page) = form(
        "/giftcards/codes",
        vec![
            ("kind", "offline".into()),
            ("name", "坏".into()),
            ("face_value", "abc".into()),
            ("valid_from", String::new()),
            ("valid_until", String::new()),
            ("quantity", "3".into()),
        ],
    )
    .await;
    assert_eq!(status, 422, "{page}");
    let (_, templates) = owner.get("/api/v1/code-templates?kind=offline").await;
    let template = &templates["items"][0];
    assert_eq!(
        (template["n_issued"].as_i64(), template["n_unused"].as_i64()),
        (Some(30), Some(30))
    );
    let id = template["id"].as_i64().unwrap();
    let (status, page) = owner.get_bytes(&format!("/giftcards/codes/{id}")).await;
    assert_eq!(status, 200);
    assert!(String::from_utf8(page)
        .unwrap()
        .contains("30 个未兑换的兑换码"));
    // The export holds the whole codes, read back with a real xlsx reader.
    let (status, bytes) = owner
        .get_bytes(&format!("/giftcards/codes/{id}/export"))
        .await;
    assert_eq!(status, 200);
    let path = app.dir.join("codes.xlsx");
    std::fs::write(&path, bytes).unwrap();
    let rows = read_xlsx(&path);
    assert_eq!(rows.len(), 31);
    assert_eq!(rows[0][0], "兑换码");
    let first_code = rows[1][0].clone();
    assert!(
        kaquan_core::code::Code::parse(&first_code).is_some(),
        "{first_code}"
    );
    assert!(rows[1][7].ends_with(&format!(
        "/m/{}/exchange#code={first_code}",
        app.merchant_id
    )));
    let (audit, _) = app
        .store
        .list_audit(app.merchant_id, kaquan_core::store::Page::default())
        .await
        .unwrap();
    assert!(audit.iter().any(|a| a.entry.action == "export_codes"));
    // A card manager without 导出卡密码 cannot export the codes.
    app.add_staff("clerk", "order_clerk").await;
    let clerk = app.client("clerk").await;
    assert_eq!(
        clerk
            .get_bytes(&format!("/giftcards/codes/{id}/export"))
            .await
            .0,
        403
    );
    assert_eq!(clerk.get_bytes("/customers").await.0, 403);
    // Deleting asks for the confirmation that names the unused codes.
    let (status, _, _) = form(
        &format!("/giftcards/codes/{id}/delete"),
        vec![("confirm_unused", "30".into())],
    )
    .await;
    assert_eq!(status, 422, "unticked confirmation");
    let (status, _, _) = form(
        &format!("/giftcards/codes/{id}/delete"),
        vec![("confirm_unused", "29".into()), ("confirmed", "on".into())],
    )
    .await;
    assert_eq!(status, 409, "a stale count");
    let (status, location, _) = form(
        &format!("/giftcards/codes/{id}/delete"),
        vec![("confirm_unused", "30".into()), ("confirmed", "on".into())],
    )
    .await;
    assert_eq!(status, 303);
    // The list it leads back to says what was voided.
    let (status, page) = owner.get_bytes(&location.unwrap()).await;
    assert_eq!(status, 200);
    assert!(
        String::from_utf8(page)
            .unwrap()
            .contains("作废 30 个未兑换的兑换码"),
        "作废 30"
    );
    // Settings are validated.
    let (status, _, _) = form(
        "/giftcards/settings",
        vec![
            ("enabled", "on".into()),
            ("attempt_limit", "0".into()),
            ("centre_name", "礼品卡中心".into()),
            ("share_title", String::new()),
            ("description", String::new()),
        ],
    )
    .await;
    assert_eq!(status, 422);
    let (status, _, _) = form(
        "/giftcards/settings",
        vec![
            ("enabled", "on".into()),
            ("phone_login", "on".into()),
            ("distribution", "on".into()),
            ("goods_display", "grid".into()),
            ("attempt_limit", "3".into()),
            ("centre_name", "我的礼品卡".into()),
            ("share_title", "送你礼品卡".into()),
            ("description", "兑换后可在商城消费".into()),
        ],
    )
    .await;
    assert_eq!(status, 303);
    let (_, settings) = owner.get("/api/v1/giftcard-settings").await;
    assert_eq!(
        (
            settings["attempt_limit"].as_i64(),
            settings["phone_login"].as_bool(),
            settings["distribution"].as_bool(),
            settings["goods_display"].as_str()
        ),
        (Some(3), Some(true), Some(true), Some("grid"))
    );
    let (status, _) = owner
        .send(
            reqwest::Method::PUT,
            "/api/v1/giftcard-settings",
            json!({"enabled": true, "centre_entry": true, "attempt_limit": 3, "centre_name": "x",
                   "share_title": "", "description": "", "phone_login": false, "goods_display": "mosaic"}),
        )
        .await;
    assert_eq!(status, 422, "an unknown display is refused");
    // Balances are adjusted by hand with a reason; a double click adjusts once.
    let customer = app
        .store
        .ensure_customer(app.merchant_id, "vip-1", kaquan_web::now())
        .await
        .unwrap();
    let adjust = vec![
        ("direction", "credit".to_owned()),
        ("amount", "12.5".into()),
        ("reason", "补偿".into()),
        ("form_key", "k-1".into()),
    ];
    let path = format!("/customers/{}/adjust", customer.id);
    assert_eq!(form(&path, adjust.clone()).await.0, 303);
    assert_eq!(form(&path, adjust).await.0, 303);
    let debit = vec![
        ("direction", "debit".to_owned()),
        ("amount", "20".into()),
        ("reason", "误充".into()),
        ("form_key", "k-2".into()),
    ];
    assert_eq!(form(&path, debit).await.0, 422, "never below zero");
    let (status, statement) = owner
        .get(&format!("/api/v1/customers/{}/statement", customer.id))
        .await;
    assert_eq!(status, 200);
    assert_eq!(statement["total"], 1);
    assert_eq!(statement["items"][0]["amount_fen"], 1250);
    assert_eq!(statement["items"][0]["reason"], "补偿");
    let (audit, _) = app
        .store
        .list_audit(app.merchant_id, kaquan_core::store::Page::default())
        .await
        .unwrap();
    assert!(
        audit
            .iter()
            .any(|a| a.entry.action == "adjust_balance" && a.entry.detail.contains("reason=补偿")),
        "the adjustment and its reason are audited"
    );
    let (status, bytes) = owner.get_bytes("/api/v1/customers/export?search=vip").await;
    assert_eq!(status, 200);
    let path = app.dir.join("customers.xlsx");
    std::fs::write(&path, bytes).unwrap();
    let rows = read_xlsx(&path);
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(
        (rows[1][2].as_str(), rows[1][4].as_str()),
        ("vip-1", "12.50")
    );
    let (status, page) = owner
        .get_bytes(&format!("/customers/{}", customer.id))
        .await;
    assert_eq!(status, 200);
    assert!(String::from_utf8(page).unwrap().contains("¥12.50"));
    let (status, adjusted) = owner
        .post(
            &format!("/api/v1/customers/{}/adjustments", customer.id),
            json!({"delta_fen": -250, "reason": "扣回"}),
        )
        .await;
    assert_eq!(
        (status, adjusted["balance_after_fen"].as_i64()),
        (201, Some(1000))
    );
    // API keys: two at once, the secret shown once.
    let (status, _, page) = form("/settings/api-keys", vec![("label", "商城".into())]).await;
    assert_eq!(status, 200);
    assert!(page.contains("id=\"created-secret\""));
    assert_eq!(form("/settings/api-keys", vec![]).await.0, 200);
    assert_eq!(form("/settings/api-keys", vec![]).await.0, 409);
    assert!(app.store.check_invariants().await.unwrap().is_empty());
}

fn read_xlsx(path: &std::path::Path) -> Vec<Vec<String>> {
    use calamine::{open_workbook, Reader, Xlsx};
    let mut workbook: Xlsx<_> = open_workbook(path).unwrap();
    let sheet = workbook.sheet_names()[0].clone();
    let range = workbook.worksheet_range(&sheet).unwrap();
    range
        .rows()
        .map(|row| row.iter().map(|c| c.to_string()).collect())
        .collect()
}

/// `GET /open/v1/giftcard-centre`: the seed's display rules for the mall
/// (线下兑换码 in 个人中心 whenever the activity is on, the 礼品卡 entry only
/// with 个人中心入口, the home module once a product is on the shelf or a
/// cover is set), and the share card on the exchange centre.
async fn giftcard_centre(app: TestApp) {
    let mall = Mall::new(&app).await;
    let owner = app.client("owner").await;
    let put_settings = |enabled: bool| {
        owner.put_giftcard_settings(json!({
            "enabled": enabled, "centre_entry": false, "centre_name": "好礼中心",
            "share_title": "送你一张礼品卡", "description": "兑换后存入余额", "goods_display": "grid"
        }))
    };
    let centre = || async {
        let reply = mall
            .send("GET", "/open/v1/giftcard-centre", None, None)
            .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.body
    };
    // (线下兑换码 in 个人中心, 礼品卡 entry, home-page module)
    let shows = |shown: &serde_json::Value| {
        ["show_code_entry", "show_centre_entry", "show_home_module"]
            .map(|flag| shown[flag].as_bool().unwrap())
    };
    put_settings(true).await;
    let shown = centre().await;
    assert_eq!(shows(&shown), [true, false, false], "{shown}");
    assert_eq!(shown["centre_name"], "好礼中心");
    assert_eq!(shown["goods_display"], "grid");
    assert_eq!(
        shown["exchange_url"],
        app.url(&format!("/m/{}/exchange", app.merchant_id))
    );
    assert!(shown["products"].as_array().unwrap().is_empty());
    assert!(shown["images"]["cover"].is_null());

    // A product on the shelf brings the home module, with what it credits.
    let (_, product) = owner.giftcard_product("100元电子礼品卡", 10000, 9500).await;
    let shown = centre().await;
    assert_eq!(shows(&shown), [true, false, true]);
    assert_eq!(
        shown["products"],
        json!([{"id": product["id"], "name": "100元电子礼品卡", "price_fen": 9500, "face_value_fen": 10000}])
    );

    // The share picture and title make the exchange centre's share card.
    let png = kaquan_web::exports::qr_png(&qrcode::QrCode::new(b"share").unwrap(), 2);
    app.store
        .put_giftcard_image(
            app.merchant_id,
            kaquan_core::giftcard::GiftcardImageSlot::Share,
            "image/png",
            &png,
            kaquan_web::now(),
        )
        .await
        .unwrap();
    let share = centre().await["images"]["share"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(share.starts_with(&app.url("/")), "{share}");
    let picture = reqwest::get(&share).await.unwrap();
    assert_eq!(picture.status(), 200);
    assert_eq!(picture.bytes().await.unwrap().as_ref(), png.as_slice());
    let page = reqwest::get(app.url(&format!("/m/{}/exchange", app.merchant_id)))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        // The template escapes '/' in attributes, as HTML allows.
        .replace("&#x2f;", "/");
    assert!(page.contains(r#"<meta property="og:title" content="送你一张礼品卡">"#));
    assert!(page.contains(&format!(r#"<meta property="og:image" content="{share}">"#)));

    // With the activity off the mall shows nothing of it.
    put_settings(false).await;
    assert_eq!(shows(&centre().await), [false, false, false]);
}

/// 查看所有 filtered by state, and 查码: the code a customer reads out
/// (any case, spaces or hyphens) found in whichever template, with its
/// state and 使用人; in the JSON API and on the console page.
async fn code_lookup(app: TestApp) {
    let mall = Mall::new(&app).await;
    let owner = app.client("owner").await;
    let codes = offline_codes(&app, &owner, 2_000, 5).await;
    for (i, code) in codes.iter().take(2).enumerate() {
        let reply = mall
            .post(
                "/open/v1/redemptions",
                json!({"customer_id": "walk-in", "code": code}),
                &format!("redeem-{i}"),
            )
            .await;
        assert_eq!(reply.status, 201, "{}", reply.body);
    }
    let (_, templates) = owner.get("/api/v1/code-templates?kind=offline").await;
    let id = templates["items"][0]["id"].as_i64().unwrap();
    for (filter, expected) in [
        ("", 5),
        ("?state=used", 2),
        ("?state=unused", 3),
        ("?state=voided", 0),
    ] {
        let (status, list) = owner
            .get(&format!("/api/v1/code-templates/{id}/codes{filter}"))
            .await;
        assert_eq!(
            (status, list["total"].as_i64()),
            (200, Some(expected)),
            "{filter}"
        );
    }
    let (status, _) = owner
        .get(&format!("/api/v1/code-templates/{id}/codes?state=lost"))
        .await;
    assert_eq!(status, 422);
    let (status, page) = owner
        .get_bytes(&format!("/giftcards/codes/{id}?state=used"))
        .await;
    assert_eq!(status, 200);
    let page = String::from_utf8(page).unwrap();
    assert!(page.contains(r#"<span id="total">2</span>"#), "{page}");

    // As read out over the phone: lower case, spaces instead of hyphens.
    let spoken = codes[0].to_lowercase().replace('-', " ");
    let (status, found) = owner
        .post("/api/v1/codes/lookup", json!({"code": spoken}))
        .await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(
        (
            found["template"]["id"].as_i64(),
            found["code"]["state"].as_str(),
            found["code"]["customer_label"].as_str(),
        ),
        (Some(id), Some("used"), Some("walk-in"))
    );
    let (status, found) = owner
        .post("/api/v1/codes/lookup", json!({"code": codes[4]}))
        .await;
    assert_eq!(
        (status, found["code"]["state"].as_str()),
        (200, Some("unused"))
    );
    let unknown = "ZZZZ-ZZZZ-ZZZZ-ZZZZ";
    assert_eq!(
        owner
            .post("/api/v1/codes/lookup", json!({"code": unknown}))
            .await
            .0,
        404
    );
    assert_eq!(
        owner
            .post("/api/v1/codes/lookup", json!({"code": "short"}))
            .await
            .0,
        422
    );
    // The console's 查码 form shows the one code, or says there is none.
    let form = |code: String| {
        let http = owner.http.clone();
        let url = app.url("/giftcards/codes/lookup");
        let csrf = owner.csrf.clone();
        async move {
            let response = http
                .post(url)
                .form(&[("csrf", csrf), ("kind", "offline".into()), ("code", code)])
                .send()
                .await
                .unwrap();
            let location = response
                .headers()
                .get("location")
                .map(|l| l.to_str().unwrap().to_owned());
            (
                response.status().as_u16(),
                location,
                response.text().await.unwrap(),
            )
        }
    };
    let (status, _, page) = form(codes[1].clone()).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("walk-in") && page.contains("已兑换"),
        "{page}"
    );
    assert!(page.contains(r#"<span id="total">1</span>"#));
    assert!(!page.contains(&codes[1]), "the page shows the code masked");
    let (status, location, _) = form(unknown.into()).await;
    assert_eq!(status, 303);
    let location = location.unwrap();
    assert!(!location.contains("ZZZZ"), "a code never goes into a URL");
    let (_, page) = owner.get_bytes(&location).await;
    assert!(String::from_utf8(page)
        .unwrap()
        .contains("没有找到这个兑换码"));
}
