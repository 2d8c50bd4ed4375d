//! The JSON API against the real app on port 0, on SQLite and PostgreSQL.

mod common;

use common::TestApp;
use serde_json::{json, Value};

on_both_backends! {
    signing_in_with_a_wrong_password_locks_the_account_after_five_tries => sign_in_lockout;
    writes_without_the_csrf_token_are_refused => csrf_is_required;
    a_batch_is_created_listed_and_filtered_with_counts => batch_and_filters;
    bulk_operations_change_only_matching_cards_and_are_audited => bulk_operations;
    a_read_only_user_can_look_but_not_change_or_export => read_only_user;
    exporting_passwords_needs_its_own_permission_and_is_audited => export_permission;
    an_import_with_one_bad_row_imports_nothing_and_reports_the_row => import_all_or_nothing;
    bad_batch_fields_get_a_clear_error_and_create_nothing => bad_batch_fields;
    staff_and_distributors_are_managed_through_the_api => staff_and_distributors;
    a_batch_can_be_activated_as_soon_as_it_is_generated => activate_on_create;
    goods_are_catalogued_with_images_and_linked_to_cards => goods_catalogue;
}

async fn create_batch(app: &TestApp, client: &common::Client, body: Value) -> Value {
    let (status, created) = client.post("/api/v1/batches", body).await;
    assert_eq!(status, 202, "{created}");
    let batch = app
        .wait_for_batch(client, created["batch_id"].as_i64().unwrap())
        .await;
    assert_eq!(batch["state"], "ready", "{batch}");
    batch
}

async fn sign_in_lockout(app: TestApp) {
    let http = reqwest::Client::new();
    let attempt = |password: &'static str| {
        let http = http.clone();
        let url = app.url("/api/v1/sessions");
        async move {
            let response = http
                .post(url)
                .json(&json!({"username": "owner", "password": password}))
                .send()
                .await
                .unwrap();
            let retry_after = response
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned());
            (
                response.status().as_u16(),
                retry_after,
                response.json::<Value>().await.unwrap(),
            )
        }
    };
    let unknown = http
        .post(app.url("/api/v1/sessions"))
        .json(&json!({"username": "nobody", "password": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 422);
    let unknown: Value = unknown.json().await.unwrap();
    for _ in 0..4 {
        let (status, _, body) = attempt("wrong1234").await;
        assert_eq!(status, 422);
        assert_eq!(
            body["error"]["message"], unknown["error"]["message"],
            "unknown user and wrong password look the same"
        );
    }
    let (status, retry_after, body) = attempt("wrong1234").await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "too_many_attempts");
    assert!(retry_after.unwrap().parse::<i64>().unwrap() > 0);
    let (status, _, _) = attempt(common::PASSWORD).await;
    assert_eq!(status, 429, "even the right password waits out the lock");
}

async fn csrf_is_required(app: TestApp) {
    let client = app.client("owner").await;
    let response = client
        .http
        .post(app.url("/api/v1/batches"))
        .json(&json!({"quantity": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let response = client
        .http
        .post(app.url("/api/v1/batches"))
        .header("x-csrf-token", "not-the-token")
        .json(&json!({"quantity": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let (_, batches) = client.get("/api/v1/batches").await;
    assert_eq!(batches["total"], 0);
    let anonymous = reqwest::Client::new()
        .get(app.url("/api/v1/cards"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let body: Value = anonymous.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthenticated");
}

async fn batch_and_filters(app: TestApp) {
    let client = app.client("owner").await;
    let batch = create_batch(
        &app,
        &client,
        json!({"name": "388 卡", "quantity": 120, "prefix": "A388", "number_length": 8, "numbering": "sequential",
               "password_length": 10, "password_charset": "digits", "face_value_fen": 38800,
               "valid_from": "2026-01-01", "valid_until": "2026-12-31", "remark": "中秋"}),
    )
    .await;
    assert_eq!(batch["serial_first"], 1);
    assert_eq!(batch["valid_until"], "2026-12-31");
    let (_, cards) = client
        .get(&format!(
            "/api/v1/cards?batch_id={}&page_size=10",
            batch["id"]
        ))
        .await;
    assert_eq!(cards["total"], 120);
    assert_eq!(cards["items"].as_array().unwrap().len(), 10);
    assert_eq!(cards["items"][0]["number"], "A38800000001");
    assert_eq!(cards["items"][0]["face_value_yuan"], "388.00");
    assert!(
        cards["items"][0].get("password").is_none(),
        "no password in a list"
    );
    let (_, page) = client.get("/api/v1/cards?page=3&page_size=50").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 20);
    let (_, page) = client.get("/api/v1/cards?page_size=100000").await;
    assert_eq!(
        page["page_size"],
        kaquan_core::store::PAGE_SIZE_MAX,
        "page size is clamped"
    );
    let (_, found) = client.get("/api/v1/cards?number=00000011").await;
    assert_eq!(found["total"], 1);
    let (status, body) = client.get("/api/v1/cards?serial_from=abc").await;
    assert_eq!(status, 422, "{body}");
    let (status, _) = client.get("/api/v1/batches/9999").await;
    assert_eq!(status, 404);
}

async fn bulk_operations(app: TestApp) {
    let client = app.client("owner").await;
    create_batch(&app, &client, json!({"quantity": 300})).await;
    let range = json!({"serial_from": 101, "serial_to": 300});
    let (status, changed) = client
        .post("/api/v1/cards/activate", json!({"filter": range}))
        .await;
    assert_eq!((status, changed["n_cards"].as_i64()), (200, Some(200)));
    let (_, counts) = client.get("/api/v1/cards?activated=true").await;
    assert_eq!(counts["total"], 200);
    let (_, changed) = client
        .post(
            "/api/v1/cards/deactivate",
            json!({"filter": {"serial_from": 291}}),
        )
        .await;
    assert_eq!(changed["n_cards"], 10);
    let edit = json!({"filter": {"serial_to": 5}, "fields": ["remark"], "remark": "=HYPERLINK(\"x\")", "face_value_fen": 1});
    let (status, changed) = client.post("/api/v1/cards/edit", edit).await;
    assert_eq!((status, changed["n_cards"].as_i64()), (200, Some(5)));
    let (_, cards) = client.get("/api/v1/cards?serial_to=5").await;
    assert_eq!(cards["items"][0]["remark"], "=HYPERLINK(\"x\")");
    assert_eq!(
        cards["items"][0]["face_value_fen"],
        Value::Null,
        "face value was not chosen, so it stays"
    );
    let (status, body) = client
        .post(
            "/api/v1/cards/edit",
            json!({"filter": {}, "fields": ["number"]}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let (_, changed) = client
        .post("/api/v1/cards/void", json!({"filter": {"serial_to": 150}}))
        .await;
    assert_eq!(changed["n_cards"], 150);
    let (_, changed) = client
        .post(
            "/api/v1/cards/restore",
            json!({"filter": {"serial_to": 50}}),
        )
        .await;
    assert_eq!(changed["n_cards"], 50);
    let (_, changed) = client
        .post("/api/v1/cards/delete", json!({"filter": {"all": true}}))
        .await;
    assert_eq!(changed["n_cards"], 100, "only the voided cards go");
    let (_, all) = client.get("/api/v1/cards").await;
    assert_eq!(all["total"], 200);
    let (_, log) = client.get("/api/v1/audit-log").await;
    let actions: Vec<(String, i64)> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["action"].as_str().unwrap().to_owned(),
                a["n_affected"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(actions[0], ("delete_cards".to_owned(), 100));
    assert!(actions.contains(&("activate_cards".to_owned(), 200)));
    assert!(log["items"][0]["actor"] == "owner");
    let (_, deleted) = client
        .get(&format!(
            "/api/v1/audit-log/{}/deleted-cards",
            log["items"][0]["id"]
        ))
        .await;
    assert_eq!(
        deleted["numbers"].as_array().unwrap().len(),
        100,
        "the audit log keeps what was deleted"
    );
    assert!(app.store.check_invariants().await.unwrap().is_empty());
}

async fn read_only_user(app: TestApp) {
    let owner = app.client("owner").await;
    create_batch(&app, &owner, json!({"quantity": 10})).await;
    app.add_staff("viewer", "readonly").await;
    let viewer = app.client("viewer").await;
    let (status, cards) = viewer.get("/api/v1/cards").await;
    assert_eq!((status, cards["total"].as_i64()), (200, Some(10)));
    let (status, body) = viewer
        .post("/api/v1/cards/activate", json!({"filter": {}}))
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "forbidden");
    let (status, _) = viewer.post("/api/v1/batches", json!({"quantity": 5})).await;
    assert_eq!(status, 403);
    let (status, _) = viewer.get_bytes("/api/v1/cards/export?format=csv").await;
    assert_eq!(status, 403);
    let (status, _) = viewer.get("/api/v1/staff").await;
    assert_eq!(status, 403);
    let (_, cards) = viewer.get("/api/v1/cards?activated=true").await;
    assert_eq!(cards["total"], 0, "nothing changed");
}

async fn export_permission(app: TestApp) {
    let owner = app.client("owner").await;
    create_batch(&app, &owner, json!({"quantity": 20})).await;
    let roles: Value = owner.get("/api/v1/roles").await.1;
    let printer_role = owner
        .post("/api/v1/roles", json!({"name": "printer", "label": "印刷对接", "permissions": ["cards.view", "cards.export"]}))
        .await;
    assert_eq!(printer_role.0, 201, "{}", printer_role.1);
    assert!(roles.as_array().unwrap().len() >= 5);
    let (status, _) = owner
        .post("/api/v1/staff", json!({"username": "printer", "name": "印刷厂", "password": common::PASSWORD, "role_id": printer_role.1["id"]}))
        .await;
    assert_eq!(status, 201);
    let printer = app.client("printer").await;
    let (status, csv) = printer
        .get_bytes("/api/v1/cards/export?format=csv&all=true")
        .await;
    assert_eq!(status, 200);
    let text = String::from_utf8(csv).unwrap();
    assert_eq!(text.lines().count(), 21);
    assert!(!text.contains("密码"));
    let (status, _) = printer
        .get_bytes("/api/v1/cards/export?format=csv&with_secrets=true&all=true")
        .await;
    assert_eq!(status, 403);
    let (status, csv) = owner
        .get_bytes("/api/v1/cards/export?format=csv&with_secrets=true&all=true")
        .await;
    assert_eq!(status, 200);
    let text = String::from_utf8(csv).unwrap();
    let header: Vec<_> = text
        .lines()
        .next()
        .unwrap()
        .trim_start_matches('\u{feff}')
        .split(',')
        .collect();
    assert_eq!(&header[..3], ["卡序号", "卡号", "密码"]);
    let (_, log) = owner.get("/api/v1/audit-log").await;
    let exports: Vec<_> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["action"] == "export_cards")
        .collect();
    assert_eq!(exports.len(), 2, "both exports are audited");
    assert!(exports[0]["detail"]
        .as_str()
        .unwrap()
        .contains("with_secrets=true"));
    assert_eq!(exports[0]["actor"], "owner");
    assert_eq!(exports[0]["n_affected"], 20);
}

async fn upload(client: &common::Client, name: &str, bytes: Vec<u8>) -> (u16, Value) {
    let form = reqwest::multipart::Form::new()
        .part(
            "file",
            reqwest::multipart::Part::bytes(bytes).file_name(name.to_owned()),
        )
        .text("name", "自编卡")
        .text("face_value_fen", "10000");
    let response = client
        .http
        .post(format!("{}/api/v1/batches/import", client.base))
        .header("x-csrf-token", &client.csrf)
        .multipart(form)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

fn xlsx(rows: &[(&str, &str)]) -> Vec<u8> {
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let sheet = workbook.add_worksheet();
    sheet.write_string(0, 0, "卡号").unwrap();
    sheet.write_string(0, 1, "密码").unwrap();
    for (r, (number, password)) in rows.iter().enumerate() {
        sheet.write_string(r as u32 + 1, 0, *number).unwrap();
        if let Ok(n) = password.parse::<f64>() {
            sheet.write_number(r as u32 + 1, 1, n).unwrap();
        } else {
            sheet.write_string(r as u32 + 1, 1, *password).unwrap();
        }
    }
    workbook.save_to_buffer().unwrap()
}

async fn import_all_or_nothing(app: TestApp) {
    let client = app.client("owner").await;
    let (status, template) = client
        .get_bytes("/api/v1/batches/import-template?format=xlsx")
        .await;
    assert_eq!(status, 200);
    assert!(template.starts_with(b"PK"));
    let bad = xlsx(&[
        ("IMP0001", "pass1234"),
        ("IMP0002", "pw"),
        ("IMP0001", "pass5678"),
        ("IMP0004", "12345678"),
    ]);
    let (status, body) = upload(&client, "cards.xlsx", bad).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "import_rows_invalid");
    let lines: Vec<_> = body["error"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["line"].as_i64().unwrap())
        .collect();
    assert_eq!(lines, [3, 4]);
    assert_eq!(
        client.get("/api/v1/cards").await.1["total"],
        0,
        "nothing imported"
    );
    let good = xlsx(&[("IMP0001", "pass1234"), ("IMP0004", "12345678")]);
    let (status, batch) = upload(&client, "cards.xlsx", good).await;
    assert_eq!(status, 201, "{batch}");
    assert_eq!(batch["quantity"], 2);
    assert_eq!(batch["face_value_yuan"], "100.00");
    let csv = "\u{feff}卡号,密码\nCSV00001,abcd1234\n,\nCSV00002,abcd5678\n"
        .as_bytes()
        .to_vec();
    let (status, batch) = upload(&client, "cards.csv", csv).await;
    assert_eq!(status, 201, "{batch}");
    assert_eq!(batch["quantity"], 2, "blank rows are skipped");
    let (status, body) = upload(&client, "cards.csv", b"\xff\xfe\x00garbage".to_vec()).await;
    assert_eq!(status, 422, "{body}");
    let (status, body) = upload(
        &client,
        "cards.xlsx",
        b"PK\x03\x04 not really a zip".to_vec(),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    let exported = app
        .store
        .cards_after(
            app.merchant_id,
            &kaquan_core::card::CardFilter {
                number_contains: Some("IMP0004".into()),
                ..Default::default()
            },
            0,
            1,
        )
        .await
        .unwrap();
    let keys = app
        .master
        .merchant_keys(app.merchant_id, exported[0].key_version);
    assert_eq!(
        keys.open("IMP0004", exported[0].secret_sealed.as_ref().unwrap())
            .as_deref(),
        Some("12345678"),
        "numeric cells import as text"
    );
}

async fn bad_batch_fields(app: TestApp) {
    let client = app.client("owner").await;
    for (body, expected) in [
        (json!({"quantity": 0}), "生成数量"),
        (
            json!({"quantity": kaquan_core::batch::BATCH_QUANTITY_MAX + 1}),
            "生成数量",
        ),
        (json!({"quantity": 5, "prefix": "0A"}), "前缀"),
        (
            json!({"quantity": 5, "password_charset": "emoji"}),
            "密码规则",
        ),
        (
            json!({"quantity": 5, "valid_until": "2026-02-30"}),
            "YYYY-MM-DD",
        ),
        (
            json!({"quantity": 5, "valid_from": "2026-03-01", "valid_until": "2026-02-01"}),
            "早于",
        ),
    ] {
        let (status, error) = client.post("/api/v1/batches", body.clone()).await;
        assert_eq!(status, 422, "{body} → {error}");
        let message = error["error"]["message"].as_str().unwrap();
        assert!(message.contains(expected), "{body} → {message}");
    }
    let (_, strength) = client
        .post(
            "/api/v1/batches/password-strength",
            json!({"password_length": 6, "password_charset": "digits", "numbering": "sequential"}),
        )
        .await;
    assert!(strength["bits"].as_f64().unwrap() < 20.0);
    assert_eq!(strength["warnings"].as_array().unwrap().len(), 2);
    assert_eq!(client.get("/api/v1/batches").await.1["total"], 0);
}

async fn staff_and_distributors(app: TestApp) {
    let owner = app.client("owner").await;
    let roles = owner.get("/api/v1/roles").await.1;
    let clerk = roles
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "card_manager")
        .unwrap()["id"]
        .clone();
    let (status, body) = owner
        .post(
            "/api/v1/staff",
            json!({"username": "zhang", "name": "张三", "password": "short", "role_id": clerk}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let (status, staff) = owner.post("/api/v1/staff", json!({"username": "zhang", "name": "张三", "phone": "13800000000", "password": common::PASSWORD, "role_id": clerk})).await;
    assert_eq!(status, 201);
    let (status, _) = owner.post("/api/v1/staff", json!({"username": "zhang", "name": "又一个", "password": common::PASSWORD, "role_id": clerk})).await;
    assert_eq!(status, 409);
    let (status, _) = owner
        .send(
            reqwest::Method::PUT,
            &format!("/api/v1/staff/{}", staff["id"]),
            json!({"disabled": true}),
        )
        .await;
    assert_eq!(status, 204);
    let response = reqwest::Client::new()
        .post(app.url("/api/v1/sessions"))
        .json(&json!({"username": "zhang", "password": common::PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422, "a disabled account cannot sign in");
    let (status, d) = owner
        .post(
            "/api/v1/distributors",
            json!({"name": "小名分销商", "phone": "139"}),
        )
        .await;
    assert_eq!(status, 201);
    create_batch(&app, &owner, json!({"quantity": 10})).await;
    let (_, changed) = owner.post("/api/v1/cards/edit", json!({"filter": {"serial_to": 4}, "fields": ["distributor"], "distributor_id": d["id"]})).await;
    assert_eq!(changed["n_cards"], 4);
    let (_, list) = owner.get("/api/v1/distributors").await;
    assert_eq!(list[0]["n_cards"], 4);
    let (_, cards) = owner
        .get(&format!("/api/v1/cards?distributor_id={}", d["id"]))
        .await;
    assert_eq!(cards["items"][0]["distributor_name"], "小名分销商");
    let (status, _) = owner
        .send(
            reqwest::Method::PUT,
            &format!("/api/v1/distributors/{}", d["id"]),
            json!({"name": "大名分销商"}),
        )
        .await;
    assert_eq!(status, 204);
}

async fn activate_on_create(app: TestApp) {
    let client = app.client("owner").await;
    let inactive = create_batch(&app, &client, json!({"quantity": 5})).await;
    let active = create_batch(&app, &client, json!({"quantity": 7, "activate": true})).await;
    let count = |batch: &Value, state: &str| {
        format!("/api/v1/cards?batch_id={}&state={state}", batch["id"])
    };
    assert_eq!(
        client.get(&count(&inactive, "inactive")).await.1["total"],
        5,
        "inactive is the default"
    );
    let (_, cards) = client.get(&count(&active, "active")).await;
    assert_eq!(cards["total"], 7);
    let (_, log) = client.get("/api/v1/audit-log").await;
    assert_eq!(log["items"][0]["action"], "activate_cards");
    assert_eq!(log["items"][0]["n_affected"], 7);
}

async fn upload_image(client: &common::Client, goods_id: i64, bytes: Vec<u8>) -> (u16, Value) {
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(bytes).file_name("x.png"),
    );
    let response = client
        .http
        .post(format!("{}/api/v1/goods/{goods_id}/images", client.base))
        .header("x-csrf-token", &client.csrf)
        .multipart(form)
        .send()
        .await
        .unwrap();
    (
        response.status().as_u16(),
        response.json().await.unwrap_or(Value::Null),
    )
}

async fn goods_catalogue(app: TestApp) {
    let client = app.client("owner").await;
    let (status, error) = client.post("/api/v1/goods", json!({"name": "  "})).await;
    assert_eq!(status, 422, "{error}");
    let (status, apple) = client
        .post("/api/v1/goods", json!({"name": "苹果", "sku": "APL-5"}))
        .await;
    assert_eq!(status, 201, "{apple}");
    assert_eq!(apple["on_shelf"], true);
    let (_, peach) = client
        .post("/api/v1/goods", json!({"name": "桃子", "on_shelf": false}))
        .await;
    let (_, gift) = client
        .post(
            "/api/v1/goods",
            json!({"name": "苹果桃子礼盒", "description": "<b>礼盒</b>"}),
        )
        .await;
    let png = kaquan_web::exports::qr_png(&qrcode::QrCode::new(b"x").unwrap(), 2);
    let (status, image) = upload_image(&client, apple["id"].as_i64().unwrap(), png.clone()).await;
    assert_eq!(status, 201, "{image}");
    let (status, body) = upload_image(
        &client,
        apple["id"].as_i64().unwrap(),
        b"<svg onload=alert(1)>".to_vec(),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    let (status, _) = upload_image(
        &client,
        apple["id"].as_i64().unwrap(),
        vec![0x89; kaquan_core::goods::GOODS_IMAGE_BYTES_MAX + 1],
    )
    .await;
    assert_eq!(status, 422);
    let served = reqwest::get(app.url(image["url"].as_str().unwrap()))
        .await
        .unwrap();
    assert_eq!(
        served.status(),
        200,
        "images are public: customers see them"
    );
    assert_eq!(served.headers()["content-type"], "image/png");
    assert_eq!(served.headers()["x-content-type-options"], "nosniff");
    assert_eq!(served.bytes().await.unwrap().to_vec(), png);
    let wrong_merchant = reqwest::get(app.url(&format!(
        "/m/{}/goods-images/{}",
        app.merchant_id + 1,
        image["id"]
    )))
    .await
    .unwrap();
    assert_eq!(wrong_merchant.status(), 404);
    let (_, apple_now) = client.get(&format!("/api/v1/goods/{}", apple["id"])).await;
    assert_eq!(apple_now["images"][0]["id"], image["id"]);
    let (status, _) = client
        .send(
            reqwest::Method::PUT,
            &format!("/api/v1/goods/{}", peach["id"]),
            json!({"name": "桃子", "on_shelf": true}),
        )
        .await;
    assert_eq!(status, 204);

    // A batch created with its goods, then more goods added to some cards.
    let batch = create_batch(
        &app,
        &client,
        json!({"quantity": 6, "goods_ids": [apple["id"], peach["id"]]}),
    )
    .await;
    let (status, body) = client
        .post(
            "/api/v1/batches",
            json!({"quantity": 6, "goods_ids": [99999]}),
        )
        .await;
    assert_eq!(
        status, 404,
        "unknown goods are refused before any card exists: {body}"
    );
    let (_, changed) = client
        .post(
            "/api/v1/cards/link-goods",
            json!({"filter": {"serial_to": 2}, "goods_ids": [gift["id"]], "mode": "add"}),
        )
        .await;
    assert_eq!(changed["n_cards"], 2);
    let cards = app
        .store
        .list_cards(
            app.merchant_id,
            &kaquan_core::card::CardFilter::default(),
            kaquan_core::store::Page::default(),
        )
        .await
        .unwrap();
    let names = |idx: usize| {
        let card_id = cards[idx].id;
        let store = app.store.clone();
        let merchant_id = app.merchant_id;
        async move {
            store
                .goods_of_card(merchant_id, card_id)
                .await
                .unwrap()
                .into_iter()
                .map(|g| g.name)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(names(0).await, ["苹果", "桃子", "苹果桃子礼盒"]);
    assert_eq!(names(5).await, ["苹果", "桃子"]);
    assert_eq!(cards[0].batch_id, batch["id"].as_i64().unwrap());
    let (status, _) = client
        .post(
            "/api/v1/cards/link-goods",
            json!({"filter": {}, "goods_ids": [1], "mode": "merge"}),
        )
        .await;
    assert_eq!(status, 422);
    app.add_staff("viewer", "readonly").await;
    let viewer = app.client("viewer").await;
    let (status, _) = viewer.post("/api/v1/goods", json!({"name": "梨"})).await;
    assert_eq!(status, 403);
    let (status, _) = viewer
        .post(
            "/api/v1/cards/link-goods",
            json!({"filter": {}, "goods_ids": [apple["id"]]}),
        )
        .await;
    assert_eq!(status, 403);
    let (status, list) = viewer.get("/api/v1/goods").await;
    assert_eq!((status, list.as_array().unwrap().len()), (200, 3));
}
