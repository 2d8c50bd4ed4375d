//! What a careless integrator or an attacker sends: misspelled fields,
//! malformed bodies, unknown routes, control characters. Each class is
//! refused at the edge, the same way on SQLite and PostgreSQL.

mod common;

use common::TestApp;
use serde_json::{json, Value};

on_both_backends! {
    a_misspelled_filter_never_widens_a_bulk_operation_to_every_card => misspelled_filters;
    every_refused_api_request_answers_the_envelope => api_envelopes;
    console_and_customer_pages_answer_malformed_input_with_an_error_page => error_pages;
    nul_and_control_characters_are_refused_before_the_database => control_characters;
    a_hostile_xlsx_is_refused_and_the_server_keeps_serving => hostile_uploads;
    the_server_keeps_answering_during_large_exports => exports_do_not_stall;
    sign_in_never_tells_which_usernames_exist => sign_in_enumeration;
    sign_in_failures_are_throttled_per_client_address => sign_in_per_client;
    an_export_runs_in_the_background_and_leaves_a_download => background_export;
    the_console_exports_many_cards_in_the_background => console_background_export;
    every_field_has_a_limit_and_money_one_cap => field_limits;
    the_most_extreme_numbers_are_refused_not_overflowed => extreme_numbers;
}

/// Two batches of ten cards each; returns their ids.
async fn two_batches(app: &TestApp, client: &common::Client) -> (i64, i64) {
    let mut ids = Vec::new();
    for name in ["甲", "乙"] {
        let (status, created) = client
            .post(
                "/api/v1/batches",
                json!({"name": name, "quantity": 10, "face_value_fen": 10_000}),
            )
            .await;
        assert_eq!(status, 202, "{created}");
        let batch = app
            .wait_for_batch(client, created["batch_id"].as_i64().unwrap())
            .await;
        ids.push(batch["id"].as_i64().unwrap());
    }
    (ids[0], ids[1])
}

async fn misspelled_filters(app: TestApp) {
    let client = app.client("owner").await;
    let (first, _) = two_batches(&app, &client).await;
    let (_, cards) = client.get("/api/v1/cards?state=inactive").await;
    assert_eq!(cards["total"], 20);
    for (path, body, field) in [
        (
            "/api/v1/cards/void",
            json!({"filter": {"batchId": first}}),
            "filter.batchId",
        ),
        (
            "/api/v1/cards/activate",
            json!({"filter": {"batch": first}}),
            "filter.batch",
        ),
        (
            "/api/v1/cards/delete",
            json!({"filter": {"batch": first}}),
            "filter.batch",
        ),
        (
            "/api/v1/cards/purge-secrets",
            json!({"filter": {"batch": first}}),
            "filter.batch",
        ),
        (
            "/api/v1/cards/edit",
            json!({"filter": {"batch": first}, "fields": ["face_value"], "face_value_fen": 1}),
            "filter.batch",
        ),
        (
            "/api/v1/cards/link-goods",
            json!({"filter": {"batch": first}, "goods_ids": []}),
            "filter.batch",
        ),
        (
            "/api/v1/cards/void",
            json!({"filter": {"batch_id": first}, "filters": {}}),
            "filters",
        ),
    ] {
        let (status, body) = client.post(path, body).await;
        assert_eq!(status, 422, "{path}: {body}");
        assert_eq!(body["error"]["code"], "unknown_field", "{path}: {body}");
        assert_eq!(
            body["error"]["message"],
            format!("未知字段：{field}"),
            "{path}"
        );
    }
    // A misspelled query key of an export is refused as well.
    let response = client
        .http
        .get(app.url(&format!(
            "/api/v1/cards/export?batchid={first}&with_secrets=true"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["message"], "未知字段：batchid");
    // No condition at all needs `all`, for every bulk operation and export.
    for path in [
        "/api/v1/cards/void",
        "/api/v1/cards/activate",
        "/api/v1/cards/purge-secrets",
    ] {
        let (status, body) = client.post(path, json!({"filter": {}})).await;
        assert_eq!(status, 422, "{path}: {body}");
        assert_eq!(body["error"]["code"], "no_cards_chosen");
    }
    let (status, _) = client
        .get_bytes("/api/v1/cards/export?format=csv&with_secrets=true")
        .await;
    assert_eq!(status, 422);
    let (_, cards) = client.get("/api/v1/cards?state=inactive").await;
    assert_eq!(cards["total"], 20, "nothing changed");
    // Said explicitly, every card.
    let (status, changed) = client
        .post("/api/v1/cards/activate", json!({"filter": {"all": true}}))
        .await;
    assert_eq!((status, changed["n_cards"].as_i64()), (200, Some(20)));
    // The console says 全部 when no condition narrows, and carries all=true.
    let page = client.page("/cards").await;
    assert!(page.contains("确定对全部 20 张卡执行"), "{page}");
    assert!(page.contains(r#"name="all" value="true""#));
    let page = client.page(&format!("/cards?batch_id={first}")).await;
    assert!(page.contains("确定对当前筛选的 10 张卡执行"));
    // A console form with no condition and no `all` (an old page) changes nothing.
    let response = client
        .http
        .post(app.url("/cards/op"))
        .form(&[("csrf", client.csrf.as_str()), ("op", "deactivate")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    let (_, cards) = client.get("/api/v1/cards?state=active").await;
    assert_eq!(cards["total"], 20);
}

/// Sends a raw request and returns the status and the parsed envelope.
async fn raw(
    client: &common::Client,
    method: reqwest::Method,
    url: String,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (u16, Value) {
    let mut request = client
        .http
        .request(method, url)
        .header("x-csrf-token", &client.csrf)
        // A refused body may be left unread: never reuse that connection.
        .header("connection", "close")
        .body(body);
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let text = response.text().await.unwrap();
    assert!(
        content_type.starts_with("application/json"),
        "{status}: {content_type}: {text}"
    );
    let body: Value = serde_json::from_str(&text).expect("the envelope is JSON");
    (status, body)
}

async fn api_envelopes(app: TestApp) {
    let client = app.client("owner").await;
    let json = Some("application/json");
    let post = reqwest::Method::POST;
    let batches = app.url("/api/v1/batches");
    for (method, url, content_type, body, status, code) in [
        (
            post.clone(),
            batches.clone(),
            json,
            b"{".to_vec(),
            400,
            "malformed_json",
        ),
        (
            post.clone(),
            batches.clone(),
            None,
            b"{}".to_vec(),
            415,
            "unsupported_media_type",
        ),
        (
            post.clone(),
            batches.clone(),
            Some("text/plain"),
            b"{}".to_vec(),
            415,
            "unsupported_media_type",
        ),
        (
            post.clone(),
            batches.clone(),
            json,
            br#"{"quantity": "ten"}"#.to_vec(),
            422,
            "invalid_field",
        ),
        (
            post.clone(),
            app.url("/api/v1/carriers"),
            json,
            b"{}".to_vec(),
            422,
            "missing_field",
        ),
        (
            post.clone(),
            batches.clone(),
            json,
            vec![b' '; 2 * 1024 * 1024],
            413,
            "body_too_large",
        ),
        (
            reqwest::Method::GET,
            app.url("/api/v1/batches/abc"),
            None,
            Vec::new(),
            404,
            "not_found",
        ),
        (
            reqwest::Method::GET,
            app.url("/api/v1/no-such-thing"),
            None,
            Vec::new(),
            404,
            "not_found",
        ),
        (
            reqwest::Method::DELETE,
            app.url("/api/v1/cards/void"),
            None,
            Vec::new(),
            405,
            "method_not_allowed",
        ),
        (
            post.clone(),
            app.url("/open/v1/orders"),
            json,
            b"{}".to_vec(),
            401,
            "bad_signature",
        ),
    ] {
        let (got, body) = raw(&client, method.clone(), url.clone(), content_type, body).await;
        assert_eq!(got, status, "{method} {url}: {body}");
        assert_eq!(body["error"]["code"], code, "{method} {url}: {body}");
        assert!(body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }
    // A create answers what it created.
    let (status, body) = client
        .post("/api/v1/carriers", json!({"name": "同城快送"}))
        .await;
    assert_eq!(status, 201);
    assert_eq!(body["name"], "同城快送");
}

async fn error_pages(app: TestApp) {
    let client = app.client("owner").await;
    let page = |response: reqwest::Response| async move {
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let text = response.text().await.unwrap();
        assert!(content_type.starts_with("text/html"), "{status}: {text}");
        assert!(text.contains("出错了"), "{text}");
        (status, text)
    };
    let (status, text) = page(
        client
            .http
            .get(app.url("/no-such-page"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 404);
    assert!(
        text.contains("卡券列表"),
        "staff get the way back into the console"
    );
    let (status, _) = page(
        client
            .http
            .post(app.url("/cards/op"))
            .form(&[
                ("csrf", client.csrf.as_str()),
                ("op", "void"),
                ("batchid", "1"),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 422);
    let (status, _) = page(client.http.get(app.url("/batches/x")).send().await.unwrap()).await;
    assert_eq!(status, 404);
    let customer = reqwest::Client::new();
    let (status, text) = page(
        customer
            .post(app.url(&format!("/m/{}/redeem/check", app.merchant_id)))
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 415);
    assert!(
        !text.contains("卡券列表"),
        "customers get no link into the console"
    );
    // Customers' landing pages take the parameters WeChat and the mall append.
    let landing = customer
        .get(app.url(&format!(
            "/m/{}/redeem?number=A0001&from=singlemessage&isappinstalled=0&utm_source=mall",
            app.merchant_id
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(landing.status(), 200);
    let (status, _) = page(
        customer
            .get(app.url(&format!("/m/{}/nothing-here", app.merchant_id)))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 404);
}

async fn control_characters(app: TestApp) {
    let anonymous = reqwest::Client::new();
    // Sign-in, anonymous.
    let response = anonymous
        .post(app.url("/api/v1/sessions"))
        .json(&json!({"username": "own\u{0}er", "password": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "control_character");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("username"));
    // The pickup page's check and the order lookup, anonymous.
    for path in ["redeem/check", "orders"] {
        let response = anonymous
            .post(app.url(&format!("/m/{}/{path}", app.merchant_id)))
            .form(&[("number", "12\u{0}34"), ("password", "x")])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 422, "{path}");
        assert!(response.text().await.unwrap().contains("控制字符"));
    }
    // A signed read with NUL in its path.
    let mall = common::Mall::new(&app).await;
    let signed = mall
        .send("GET", "/open/v1/customers/a%00b/balance", None, None)
        .await;
    assert_eq!(signed.status, 422, "{}", signed.body);
    assert_eq!(signed.body["error"]["code"], "control_character");
    // Staff writes: NUL, escape and the other controls; newlines pass where text spans lines.
    let client = app.client("owner").await;
    for name in ["a\u{0}b", "\u{1b}[31m红", "a\u{7f}", "a\u{85}"] {
        let (status, body) = client
            .post("/api/v1/distributors", json!({"name": name}))
            .await;
        assert_eq!(status, 422, "{name:?}: {body}");
        assert_eq!(body["error"]["code"], "control_character");
    }
    let (_, list) = client.get("/api/v1/distributors").await;
    assert_eq!(list.as_array().map(Vec::len), Some(0), "nothing was stored");
    let (status, body) = client
        .post(
            "/api/v1/distributors",
            json!({"name": "华东", "remark": "第一行\r\n第二行"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

/// An xlsx of 5 KB whose two cells sit at A1 and XFD1048576.
fn far_cells_xlsx() -> Vec<u8> {
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let sheet = workbook.add_worksheet();
    sheet.write_string(0, 0, "卡号").unwrap();
    sheet.write_string(1_048_575, 16_383, "x").unwrap();
    workbook.save_to_buffer().unwrap()
}

async fn hostile_uploads(app: TestApp) {
    let owner = app.client("owner").await;
    let bytes = far_cells_xlsx();
    for path in ["/api/v1/batches/import", "/api/v1/orders/ship-import"] {
        let form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(bytes.clone()).file_name("x.xlsx"),
        );
        let response = owner
            .http
            .post(app.url(path))
            .header("x-csrf-token", &owner.csrf)
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 422, "{path}");
        let body: Value = response.json().await.unwrap();
        assert!(
            body["error"]["message"].as_str().unwrap().contains("行"),
            "{body}"
        );
    }
    let health = reqwest::get(app.url("/healthz")).await.unwrap();
    assert_eq!(health.status(), 200, "the server is still up");
    // A misspelled field of an upload is refused, like any other.
    let form = reqwest::multipart::Form::new()
        .part(
            "file",
            reqwest::multipart::Part::bytes(b"\xEF\xBB\xBF\xE5\x8D\xA1\xE5\x8F\xB7,\xE5\xAF\x86\xE7\xA0\x81\nIMP0001,abcd1234\n".to_vec())
                .file_name("cards.csv"),
        )
        .text("face_value_fenn", "10000");
    let response = owner
        .http
        .post(app.url("/api/v1/batches/import"))
        .header("x-csrf-token", &owner.csrf)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["message"], "未知字段：face_value_fenn");
    let (_, cards) = owner.get("/api/v1/cards").await;
    assert_eq!(cards["total"], 0, "nothing imported");
}

/// The median time of `n` GETs of `path`, each checked for a 200.
async fn median_latency(app: &TestApp, path: &str, n: usize) -> std::time::Duration {
    let http = reqwest::Client::new();
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let started = std::time::Instant::now();
        let response = http.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        response.bytes().await.unwrap();
        times.push(started.elapsed());
    }
    times.sort();
    times[n / 2]
}

async fn exports_do_not_stall(app: TestApp) {
    let owner = app.client("owner").await;
    let (status, created) = owner
        .post("/api/v1/batches", json!({"name": "大批", "quantity": 1500}))
        .await;
    assert_eq!(status, 202, "{created}");
    let batch_id = created["batch_id"].as_i64().unwrap();
    app.wait_for_batch(&owner, batch_id).await;
    let pickup_page = format!("/m/{}/redeem", app.merchant_id);
    let idle_health = median_latency(&app, "/healthz", 21).await;
    let idle_pickup = median_latency(&app, &pickup_page, 21).await;
    // Two QR exports (PNG: the most CPU per card), the merchant's limit.
    let export_url = app.url(&format!(
        "/api/v1/cards/qr-codes?batch_id={batch_id}&image=png"
    ));
    let export = move |owner: &common::Client| {
        let request = owner.http.get(export_url.clone());
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.bytes().await.unwrap().len())
        }
    };
    let exports = tokio::spawn({
        let owner = app.client("owner").await;
        let second = app.client("owner").await;
        async move { tokio::join!(export(&owner), export(&second)) }
    });
    // A third while both run is refused, not queued behind them.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let (status, body) = owner
        .get(&format!(
            "/api/v1/cards/qr-codes?batch_id={batch_id}&image=png"
        ))
        .await;
    let busy_health = median_latency(&app, "/healthz", 21).await;
    let busy_pickup = median_latency(&app, &pickup_page, 21).await;
    let still_running = !exports.is_finished();
    let ((first, n_first), (second, n_second)) = exports.await.unwrap();
    assert_eq!((first, second), (200, 200));
    assert!(n_first > 0 && n_second > 0);
    assert!(still_running, "the exports outlasted the measurement");
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "exports_busy");
    // Generous: a stalled runtime answered in seconds (15.6 s for /healthz).
    let bound = |idle: std::time::Duration| (idle * 50).max(std::time::Duration::from_millis(250));
    assert!(
        busy_health <= bound(idle_health),
        "/healthz: idle {idle_health:?}, during exports {busy_health:?}"
    );
    assert!(
        busy_pickup <= bound(idle_pickup),
        "pickup page: idle {idle_pickup:?}, during exports {busy_pickup:?}"
    );
}

/// Signs in and returns the status.
async fn sign_in_status(app: &TestApp, username: &str, password: &str) -> u16 {
    reqwest::Client::new()
        .post(app.url("/api/v1/sessions"))
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn sign_in_enumeration(app: TestApp) {
    // An unknown name and a known one answer alike, lock alike.
    for name in ["owner", "nobody"] {
        let mut statuses = Vec::new();
        for _ in 0..5 {
            statuses.push(sign_in_status(&app, name, "wrong1234").await);
        }
        assert_eq!(statuses, [422, 422, 422, 422, 429], "{name}");
        assert_eq!(sign_in_status(&app, name, "wrong1234").await, 429, "{name}");
    }
    assert_eq!(
        sign_in_status(&app, "owner", common::PASSWORD).await,
        429,
        "the right password waits out the lock too"
    );
    // Another merchant's staff: their names never collide with ours.
    let other = app
        .store
        .create_merchant("别家", kaquan_web::now())
        .await
        .unwrap();
    let roles = app.store.list_roles(other.id).await.unwrap();
    let owner_role = roles.iter().find(|r| r.name == "owner").unwrap();
    let boss = format!("boss@{}", other.id);
    app.store
        .create_staff(
            &kaquan_core::staff::NewStaff {
                merchant_id: other.id,
                username: boss.clone(),
                name: "老板".into(),
                phone: String::new(),
                role_id: owner_role.id,
                password_hash: kaquan_core::auth::hash_staff_password(common::PASSWORD),
                must_change_password: false,
            },
            kaquan_web::now(),
        )
        .await
        .unwrap();
    let boss_client = app.client(&boss).await;
    let new_staff = json!({"username": "owner", "name": "店长", "password": "abc12345", "role_id": owner_role.id});
    let (status, created) = boss_client.post("/api/v1/staff", new_staff.clone()).await;
    assert_eq!(
        status, 201,
        "a name another merchant uses is free here: {created}"
    );
    assert_eq!(created["username"], format!("owner@{}", other.id));
    let (status, body) = boss_client.post("/api/v1/staff", new_staff).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(
        sign_in_status(&app, &format!("owner@{}", other.id), "abc12345").await,
        200
    );
}

async fn sign_in_per_client(app: TestApp) {
    // Twenty failures from one address, each under another name, and the
    // address waits, whatever name it tries next.
    for idx in 0..kaquan_core::auth::LOGIN_FAILURES_PER_CLIENT_MAX {
        assert_eq!(
            sign_in_status(&app, &format!("guess{idx}"), "wrong1234").await,
            if idx + 1 < kaquan_core::auth::LOGIN_FAILURES_PER_CLIENT_MAX {
                422
            } else {
                429
            },
            "attempt {idx}"
        );
    }
    assert_eq!(sign_in_status(&app, "owner", common::PASSWORD).await, 429);
}

/// Polls an export's status until it is no longer running.
async fn wait_for_export(client: &common::Client, status_url: &str) -> Value {
    for _ in 0..600 {
        let (status, job) = client.get(status_url).await;
        assert_eq!(status, 200, "{job}");
        if job["state"] != "running" {
            return job;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the export did not finish");
}

async fn background_export(app: TestApp) {
    let owner = app.client("owner").await;
    let (batch_id, _) = two_batches(&app, &owner).await;
    let (status, body) = owner
        .post("/api/v1/exports", json!({"kind": "cards", "filter": {}}))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("no_cards_chosen"))
    );
    let (status, body) = owner
        .post(
            "/api/v1/exports",
            json!({"kind": "pdf", "filter": {"all": true}}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let (status, started) = owner
        .post(
            "/api/v1/exports",
            json!({"kind": "cards", "format": "csv", "with_secrets": true, "filter": {"batch_id": batch_id}}),
        )
        .await;
    assert_eq!(status, 202, "{started}");
    assert_eq!(started["n_total"], 10);
    let job = wait_for_export(&owner, started["status_url"].as_str().unwrap()).await;
    assert_eq!(
        (job["state"].as_str(), job["n_done"].as_i64()),
        (Some("ready"), Some(10))
    );
    let download = job["download_url"].as_str().unwrap();
    for _ in 0..2 {
        let (status, bytes) = owner.get_bytes(download).await;
        assert_eq!(status, 200, "it can be downloaded again until it expires");
        let text = String::from_utf8(bytes).unwrap();
        assert_eq!(text.lines().count(), 11, "{text}");
        assert!(text.lines().next().unwrap().contains("密码"));
    }
    let (_, log) = owner.get("/api/v1/audit-log").await;
    let exported = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["action"] == "export_cards")
        .cloned()
        .expect("the export is audited");
    assert_eq!(exported["n_affected"], 10);
    // Another staff member sees nothing of it.
    app.add_staff("printer", "card_manager").await;
    let printer = app.client("printer").await;
    let (status, _) = printer.get(started["status_url"].as_str().unwrap()).await;
    assert_eq!(status, 404);
    let (status, _) = printer.get_bytes(download).await;
    assert_eq!(status, 404);
    let (status, _) = owner.get("/api/v1/exports/0123456789abcdef").await;
    assert_eq!(status, 404);
}

async fn console_background_export(app: TestApp) {
    let owner = app.client("owner").await;
    let quantity = kaquan_web::export_jobs::EXPORT_IN_BACKGROUND_ROWS + 1;
    let (status, created) = owner
        .post(
            "/api/v1/batches",
            json!({"name": "大批", "quantity": quantity}),
        )
        .await;
    assert_eq!(status, 202, "{created}");
    let batch_id = created["batch_id"].as_i64().unwrap();
    app.wait_for_batch(&owner, batch_id).await;
    let page = owner.page("/cards").await;
    assert!(
        page.contains(r#"action="/exports""#),
        "large exports are forms"
    );
    assert!(page.contains("在后台进行"));
    let response = owner
        .http
        .post(app.url("/exports"))
        .form(&[
            ("csrf", owner.csrf.as_str()),
            ("kind", "cards"),
            ("format", "csv"),
            ("batch_id", &batch_id.to_string()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let page_url = response.headers()["location"].to_str().unwrap().to_owned();
    let mut html = String::new();
    for _ in 0..600 {
        html = owner.page(&page_url).await;
        if !html.contains(r#"data-state="running""#) {
            break;
        }
        assert!(html.contains("正在导出"), "{html}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(html.contains("导出完成"), "{html}");
    let link = html
        .split(r#"id="export-download" href=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a download link")
        .replace("&#x2f;", "/");
    let (status, bytes) = owner.get_bytes(&link).await;
    assert_eq!(status, 200);
    assert_eq!(
        String::from_utf8(bytes).unwrap().lines().count() as i64,
        quantity + 1
    );
}

async fn field_limits(app: TestApp) {
    let owner = app.client("owner").await;
    let long = |n: usize| "字".repeat(n);
    for (path, body, field) in [
        (
            "/api/v1/distributors",
            json!({"name": long(65)}),
            "券商名称",
        ),
        (
            "/api/v1/distributors",
            json!({"name": "华东", "contact": long(101)}),
            "联系人",
        ),
        (
            "/api/v1/distributors",
            json!({"name": "华东", "phone": "1".repeat(21)}),
            "电话",
        ),
        (
            "/api/v1/distributors",
            json!({"name": "华东", "remark": long(201)}),
            "备注",
        ),
        (
            "/api/v1/distributors",
            json!({"name": "华东", "remark": long(20_001)}),
            "remark",
        ),
        (
            "/api/v1/staff",
            json!({"username": "clerk", "name": long(65), "password": "abc12345", "role_id": 1}),
            "姓名",
        ),
        (
            "/api/v1/staff",
            json!({"username": "clerk", "name": "店员", "phone": "1".repeat(21), "password": "abc12345", "role_id": 1}),
            "手机号",
        ),
        (
            "/api/v1/roles",
            json!({"name": "printer", "label": long(65), "permissions": []}),
            "角色名称",
        ),
        (
            "/api/v1/batches",
            json!({"quantity": 5, "face_value_fen": i64::MAX}),
            "上限",
        ),
        (
            "/api/v1/batches",
            json!({"quantity": 5, "valid_from": "0000-01-01"}),
            "2000",
        ),
    ] {
        let (status, body) = owner.post(path, body).await;
        assert_eq!(status, 422, "{path} {field}: {body}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(field),
            "{path} {field}: {body}"
        );
    }
    // Exactly at the limits, everything is taken.
    let (status, body) = owner
        .post(
            "/api/v1/distributors",
            json!({"name": long(64), "contact": long(100), "phone": "1".repeat(20), "remark": long(200)}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, created) = owner
        .post(
            "/api/v1/batches",
            json!({"quantity": 2, "face_value_fen": 100_000_000}),
        )
        .await;
    assert_eq!(status, 202, "¥1,000,000.00 itself is allowed: {created}");
    app.wait_for_batch(&owner, created["batch_id"].as_i64().unwrap())
        .await;
    let edit =
        json!({"filter": {"all": true}, "fields": ["face_value"], "face_value_fen": 100_000_001});
    let (status, body) = owner.post("/api/v1/cards/edit", edit).await;
    assert_eq!(status, 422, "{body}");
    let (_, cards) = owner.get("/api/v1/cards").await;
    assert_eq!(cards["items"][0]["face_value_fen"], 100_000_000);
    // Every search is bounded at 64 characters, lists and exports alike.
    for path in [
        "/api/v1/customers?search=",
        "/api/v1/customers/export?search=",
        "/api/v1/orders?phone=",
        "/api/v1/orders?card_number=",
        "/api/v1/cards?number=",
    ] {
        let (status, body) = owner.get(&format!("{path}{}", "1".repeat(65))).await;
        assert_eq!(status, 422, "{path}: {body}");
        assert_eq!(body["error"]["code"], "too_long", "{path}");
    }
}

/// The fuzzer's find once the document described the bodies: a balance
/// adjustment of `i64::MIN` overflowed taking its magnitude and dropped the
/// connection. Every extreme integer must answer the envelope.
async fn extreme_numbers(app: TestApp) {
    let owner = app.client("owner").await;
    for delta in [i64::MIN, i64::MAX, i64::MIN + 1] {
        let (status, body) = owner
            .post(
                "/api/v1/customers/1/adjustments",
                json!({"delta_fen": delta, "reason": "测试"}),
            )
            .await;
        assert_eq!(status, 422, "{delta}: {body}");
        assert_eq!(body["error"]["code"], "invalid", "{body}");
    }
}
