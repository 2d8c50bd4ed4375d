//! 电子卡密 over HTTP on both databases: a 虚拟商品 made and stocked from a
//! file (duplicates skipped, a wrong row refusing the file), a paid order
//! delivered once with its link, the delivery page that shows no secret
//! until 查看, the three ways of 核销, a refund, 缺货 delivered by one
//! action, the evidence as xlsx and PDF (read back with calamine and
//! pdftotext), analytics; and on PostgreSQL, paid events racing across two
//! nodes.

mod common;

use common::browser::wait_until;
use common::providers::{ACCESS_KEY_ID, ACCESS_KEY_SECRET, SIGN_NAME};
use common::{Client, Mall, TestApp};
use serde_json::{json, Value};

on_both_backends! {
    a_marketplace_order_is_delivered_revealed_verified_and_evidenced => order_flow;
    stock_and_refunds_follow_the_rules => stock_and_refunds;
}

pub async fn product(owner: &Client, form: &str, own_code: bool) -> Value {
    let (status, product) = owner
        .post(
            "/api/v1/ecard-products",
            json!({
                "name": "视频会员月卡", "face_value_yuan": "19.90", "delivery_form": form,
                "instructions": "打开视频 App → 我的 → 兑换会员，输入卡号和密码",
                "valid_days": 30, "own_verification_code": own_code, "low_stock_threshold": 1,
                "listings": [{"marketplace": "pinduoduo", "product_id": "pdd-100", "sku_id": ""}],
            }),
        )
        .await;
    assert_eq!(status, 201, "{product}");
    product
}

pub async fn import_csv(owner: &Client, product_id: i64, csv: &str) -> (u16, Value) {
    owner
        .upload(
            &format!("/api/v1/ecard-products/{product_id}/stock"),
            csv.as_bytes(),
        )
        .await
}

pub async fn paid(mall: &Mall, order_id: &str, quantity: i64) -> common::Signed {
    let body = json!({
        "marketplace": "pinduoduo", "order_id": order_id, "buyer_phone": "13800138000",
        "lines": [{"line_id": "1", "product_id": "pdd-100", "quantity": quantity}],
    });
    mall.send("POST", "/open/v1/marketplace-orders", Some(&body), None)
        .await
}

/// The delivery page's path of a delivery URL.
fn path_of(url: &str) -> String {
    let at = url.find("/m/").unwrap();
    url[at..].to_owned()
}

async fn reveal(app: &TestApp, page: &str, card_id: i64, header: bool) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(app.url(&format!("{page}/cards/{card_id}/reveal")))
        .header("user-agent", "Mozilla/5.0 (iPhone) 测试");
    if header {
        request = request.header("x-kaquan-reveal", "1");
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn order_flow(app: TestApp) {
    let owner = app.client("owner").await;
    let mall = Mall::new(&app).await;
    let sms = json!({
        "provider": "aliyun", "access_key_id": ACCESS_KEY_ID, "access_key_secret": ACCESS_KEY_SECRET,
        "sign_name": SIGN_NAME, "notify_buyer_on_ecard": true, "template_ecard": "SMS_1008",
    });
    let (status, saved) = owner
        .send(reqwest::Method::PUT, "/api/v1/sms-settings", sms)
        .await;
    assert_eq!(status, 200, "{saved}");
    let (status, bad) = owner
        .post(
            "/api/v1/ecard-products",
            json!({"name": " ", "face_value_yuan": "x", "delivery_form": "fax", "instructions": "",
                   "listings": [{"marketplace": "ebay", "product_id": "1"}]}),
        )
        .await;
    assert_eq!(status, 422, "{bad}");
    assert!(
        bad["error"]["details"].as_array().unwrap().len() >= 5,
        "{bad}"
    );
    let p = product(&owner, "number_password", true).await;
    let id = p["id"].as_i64().unwrap();
    let (status, result) = import_csv(
        &owner,
        id,
        "卡号,卡密（密码/兑换码/兑换链接）\n8800000001,pw-one\n8800000002,pw-two\n8800000001,pw-again\n",
    )
    .await;
    assert_eq!(status, 201, "{result}");
    assert_eq!(result["import"]["n_imported"], 2);
    assert_eq!(
        result["skipped"],
        json!([{"line": 4, "message": "与文件中前面的行重复"}])
    );

    let first = paid(&mall, "PDD-1", 1).await;
    assert_eq!(first.status, 201, "{}", first.body);
    let url = first.body["delivery_url"].as_str().unwrap().to_owned();
    let card = first.body["lines"][0]["cards"][0].clone();
    assert_eq!(card["status"], "unverified");
    assert!(
        !first.body.to_string().contains("pw-"),
        "no secret in the answer"
    );
    // Text H carries the link, made when it is sent (the text stored keeps
    // only the order).
    let texts = wait_until("the delivery text", || async {
        Some(app.providers.sent()).filter(|sent| !sent.is_empty())
    })
    .await;
    assert_eq!(
        (texts[0].template.as_str(), texts[0].phone.as_str()),
        ("SMS_1008", "13800138000")
    );
    assert_eq!(
        (&texts[0].params["link"], &texts[0].params["order"]),
        (&json!(url), &json!("PDD-1"))
    );
    assert!(texts[0].params.get("order_ref").is_none());
    let again = paid(&mall, "PDD-1", 1).await;
    assert_eq!(
        (again.status, &again.body["delivery_url"]),
        (200, &json!(url))
    );
    assert_eq!(
        again.body["lines"][0]["cards"],
        first.body["lines"][0]["cards"]
    );

    let code = the_link_reveals(&app, &url, &card).await;
    verified_by_code(&mall, &code).await;
    let order_ref = first.body["order_ref"].as_i64().unwrap();
    evidenced_and_counted(&app, &owner, order_ref).await;
}

/// The link alone shows no secret; 查看 needs the page's own request.
/// Returns the card's own 核销码.
async fn the_link_reveals(app: &TestApp, url: &str, card: &Value) -> String {
    let page = path_of(url);
    let html = reqwest::get(app.url(&page)).await.unwrap();
    assert_eq!(html.headers()["cache-control"], "no-store");
    let html = html.text().await.unwrap();
    assert!(
        html.contains("视频会员月卡") && html.contains("兑换会员"),
        "{html}"
    );
    assert!(
        !html.contains("pw-") && !html.contains("880000000"),
        "{html}"
    );
    let card_id = card["card_id"].as_i64().unwrap();
    assert_eq!(reveal(app, &page, card_id, false).await.0, 403);
    let (status, shown) = reveal(app, &page, card_id, true).await;
    assert_eq!(status, 200, "{shown}");
    assert!(shown["secret"].as_str().unwrap().starts_with("pw-"));
    let code = shown["code"].as_str().unwrap().to_owned();
    assert_eq!(code.len(), 16);
    assert_eq!(
        reqwest::get(app.url(&format!("/m/{}/d/{}", app.merchant_id, "0".repeat(48))))
            .await
            .unwrap()
            .status(),
        404
    );
    code
}

/// 核销 by kaquan's own code through the open API; a repeat answers the first.
async fn verified_by_code(mall: &Mall, code: &str) {
    let body = json!({"verification_code": code});
    let verified = mall
        .send("POST", "/open/v1/ecard-verifications", Some(&body), None)
        .await;
    assert_eq!(
        (verified.status, &verified.body["way"]),
        (201, &json!("own_code")),
        "{}",
        verified.body
    );
    let repeat = mall
        .send("POST", "/open/v1/ecard-verifications", Some(&body), None)
        .await;
    assert_eq!(
        (repeat.status, &repeat.body["repeated"]),
        (200, &json!(true))
    );
    let unknown = json!({"card_number": "nope"});
    let refused = mall
        .send("POST", "/open/v1/ecard-verifications", Some(&unknown), None)
        .await;
    assert_eq!(
        (refused.status, &refused.body["error"]["code"]),
        (404, &json!("ecard_unknown"))
    );
}

/// The console sees the card used; the evidence holds every step; analytics counts it.
async fn evidenced_and_counted(app: &TestApp, owner: &Client, order_ref: i64) {
    let (status, png) = owner
        .get_bytes(&format!(
            "/api/v1/marketplace-orders/{order_ref}/delivery-qr"
        ))
        .await;
    assert_eq!(status, 200);
    let (_, order) = owner
        .get(&format!("/api/v1/marketplace-orders/{order_ref}"))
        .await;
    assert_eq!(
        common::decode_qr_png(&png),
        order["delivery_url"].as_str().unwrap()
    );
    let (_, order) = owner
        .get(&format!("/api/v1/marketplace-orders/{order_ref}"))
        .await;
    assert_eq!(order["lines"][0]["cards"][0]["status"], "verified");
    let (_, list) = owner
        .get("/api/v1/marketplace-orders?status=verified&marketplace=pinduoduo")
        .await;
    assert_eq!(list["total"], 1);

    // The evidence holds the delivery, the reveal (IP, user agent) and the 核销.
    let (status, xlsx) = owner
        .get_bytes(&format!("/api/v1/marketplace-orders/{order_ref}/evidence"))
        .await;
    assert_eq!(status, 200);
    let path = app.dir.join("evidence.xlsx");
    std::fs::write(&path, &xlsx).unwrap();
    let text = common::xlsx_rows(&path).concat().join(" ");
    for expected in [
        "自动发货",
        "查看卡密",
        "ip=127.0.0.1",
        "测试",
        "核销电子卡密",
        "way=own_code",
        "卡密入库",
    ] {
        assert!(text.contains(expected), "{expected} in {text}");
    }
    let (status, pdf) = owner
        .get_bytes(&format!(
            "/api/v1/marketplace-orders/{order_ref}/evidence?format=pdf"
        ))
        .await;
    assert_eq!(status, 200);
    let text = pdf_text(app, &pdf);
    for expected in ["PDD-1", "自动发货", "查看卡密", "核销电子卡密"] {
        assert!(text.contains(expected), "{expected} in {text}");
    }

    // The console sees the card as used, and analytics counts it.
    let (_, analytics) = owner.get("/api/v1/ecard-analytics").await;
    assert_eq!(analytics["total"]["delivered"], 1, "{analytics}");
    assert_eq!(analytics["total"]["verify_rate"], 1.0);
    assert_eq!(analytics["products"][0]["name"], "视频会员月卡");
    let (status, _) = owner.get_bytes("/api/v1/ecard-analytics/export").await;
    assert_eq!(status, 200);
}

/// The text of a PDF as poppler's pdftotext reads it.
fn pdf_text(app: &TestApp, pdf: &[u8]) -> String {
    let path = app
        .dir
        .join(format!("{}.pdf", kaquan_core::secrets::random_token_hex(4)));
    std::fs::write(&path, pdf).unwrap();
    let out = std::process::Command::new("pdftotext")
        .args([path.to_str().unwrap(), "-"])
        .output()
        .expect("pdftotext (poppler-utils) is installed by scripts/test");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

async fn stock_and_refunds(app: TestApp) {
    let owner = app.client("owner").await;
    let mall = Mall::new(&app).await;
    let p = product(&owner, "code", false).await;
    let id = p["id"].as_i64().unwrap();
    let (status, hostile) = import_csv(&owner, id, "卡号,卡密\n,CODE\u{7}\n").await;
    assert_eq!(
        (status, &hostile["error"]["code"]),
        (422, &json!("control_character"))
    );
    let (status, wrong) = import_csv(&owner, id, "卡号,卡密\n,CODE-1\nN1,\n").await;
    assert_eq!(status, 422, "{wrong}");
    assert_eq!(wrong["error"]["code"], "import_rows_invalid");
    let lines: Vec<i64> = wrong["error"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["line"].as_i64().unwrap())
        .collect();
    assert_eq!(lines, vec![3], "{wrong}");
    let (_, product) = owner.get(&format!("/api/v1/ecard-products/{id}")).await;
    assert_eq!(
        product["stock"]["available"], 0,
        "a refused file stores nothing"
    );
    let (status, made) = owner
        .post(
            &format!("/api/v1/ecard-products/{id}/stock/generate"),
            json!({"count": 2}),
        )
        .await;
    assert_eq!(
        (status, &made["import"]["n_imported"]),
        (201, &json!(2)),
        "{made}"
    );

    // Two cards for one line, then one order too many: 缺货 until stock arrives.
    let order = paid(&mall, "PDD-9", 2).await;
    assert_eq!(order.status, 201, "{}", order.body);
    let waiting = paid(&mall, "PDD-10", 1).await;
    assert_eq!(waiting.body["lines"][0]["state"], "out_of_stock");
    let (_, list) = owner.get("/api/v1/marketplace-orders?out_of_stock=1").await;
    assert_eq!(list["total"], 1);
    let (_, stock) = owner
        .get(&format!(
            "/api/v1/ecard-stock?product_id={id}&state=delivered"
        ))
        .await;
    assert_eq!(stock["total"], 2);
    assert!(stock["items"][0]["masked"]
        .as_str()
        .unwrap()
        .starts_with("••••"));
    let (status, _) = owner
        .post(
            &format!("/api/v1/ecard-products/{id}/stock/generate"),
            json!({"count": 1}),
        )
        .await;
    assert_eq!(status, 201);
    let (_, delivered) = owner
        .post("/api/v1/marketplace-orders/deliveries", json!({}))
        .await;
    assert_eq!(delivered["delivered_lines"], 1);

    refunds_void_revealed_cards(&app, &owner, &mall, &order.body, id).await;
    marked_used_by_hand_and_exported(&app, &owner, &mall).await;
}

/// A refund: the revealed card is voided, the unseen one returns to stock.
async fn refunds_void_revealed_cards(
    app: &TestApp,
    owner: &Client,
    mall: &Mall,
    order: &Value,
    id: i64,
) {
    let page = path_of(order["delivery_url"].as_str().unwrap());
    let seen = order["lines"][0]["cards"][0]["card_id"].as_i64().unwrap();
    let (status, shown) = reveal(app, &page, seen, true).await;
    assert_eq!(status, 200);
    assert!(shown["qr_svg"].as_str().unwrap().starts_with("<svg"));
    let body = json!({"marketplace": "pinduoduo", "order_id": "PDD-9"});
    let refunded = mall
        .send(
            "POST",
            "/open/v1/marketplace-orders/refunds",
            Some(&body),
            None,
        )
        .await;
    assert_eq!(refunded.status, 200, "{}", refunded.body);
    let statuses: Vec<&str> = refunded.body["lines"][0]["cards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, vec!["refunded", "refunded"]);
    assert_eq!(
        reveal(app, &page, seen, true).await.0,
        404,
        "a refunded card opens no more"
    );
    let (_, product) = owner.get(&format!("/api/v1/ecard-products/{id}")).await;
    assert_eq!(
        (&product["stock"]["available"], &product["stock"]["voided"]),
        (&json!(1), &json!(1)),
        "{product}"
    );
}

/// Manual 核销 with a note and a screenshot, through the API; refusals; the export.
async fn marked_used_by_hand_and_exported(app: &TestApp, owner: &Client, mall: &Mall) {
    let other = paid(mall, "PDD-11", 1).await;
    let order_ref = other.body["order_ref"].as_i64().unwrap();
    let card_id = other.body["lines"][0]["cards"][0]["card_id"]
        .as_i64()
        .unwrap();
    let png = [&b"\x89PNG\r\n\x1a\n"[..], &[0u8; 64][..]].concat();
    let form = reqwest::multipart::Form::new()
        .text("note", "顾客截图确认")
        .part(
            "proof",
            reqwest::multipart::Part::bytes(png.to_vec()).file_name("shot.png"),
        );
    let response = owner
        .http
        .post(format!(
            "{}/api/v1/marketplace-orders/{order_ref}/cards/{card_id}/verification",
            owner.base
        ))
        .header("x-csrf-token", &owner.csrf)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
    let (status, proof) = owner
        .get_bytes(&format!(
            "/api/v1/marketplace-orders/{order_ref}/cards/{card_id}/proof"
        ))
        .await;
    assert_eq!((status, proof.as_slice()), (200, png.as_slice()));
    // A line paid again with another quantity is refused; an unknown listing too.
    let changed = paid(mall, "PDD-11", 3).await;
    assert_eq!(
        (changed.status, &changed.body["error"]["code"]),
        (409, &json!("ecard_line_changed"))
    );
    let body = json!({"marketplace": "douyin", "order_id": "DY-1", "lines": [{"line_id": "1", "product_id": "x", "quantity": 1}]});
    let unknown = mall
        .send("POST", "/open/v1/marketplace-orders", Some(&body), None)
        .await;
    assert_eq!(
        (unknown.status, &unknown.body["error"]["code"]),
        (422, &json!("ecard_unknown_listing"))
    );
    let (status, xlsx) = owner.get_bytes("/api/v1/marketplace-orders/export").await;
    assert_eq!(status, 200);
    let path = app.dir.join("orders.xlsx");
    std::fs::write(&path, &xlsx).unwrap();
    let rows = common::xlsx_rows(&path);
    assert_eq!(rows[0][0], "平台");
    assert!(
        rows.iter().any(|r| r.iter().any(|c| c == "已退款")),
        "{rows:?}"
    );
    assert!(
        !rows
            .concat()
            .iter()
            .any(|c| c.len() == 16 && !c.starts_with('•')),
        "no secret in the export"
    );
}

/// Ten identical paid events for each of 100 orders, sent at once to two
/// nodes on one PostgreSQL database: each order gets one card, no card
/// goes to two orders.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_paid_events_across_two_nodes_deliver_each_order_once() {
    let app = TestApp::start(common::Backend::Postgres).await;
    let owner = app.client("owner").await;
    let mall = Mall::new(&app).await;
    let p = product(&owner, "code", false).await;
    let id = p["id"].as_i64().unwrap();
    let (status, _) = owner
        .post(
            &format!("/api/v1/ecard-products/{id}/stock/generate"),
            json!({"count": 150}),
        )
        .await;
    assert_eq!(status, 201);
    let second = Mall {
        http: reqwest::Client::new(),
        base: app.second_node().await,
        key_id: mall.key_id.clone(),
        secret: mall.secret.clone(),
    };
    let sends = (0..1000).map(|i| {
        let node = if i % 2 == 0 { &mall } else { &second };
        paid(
            node,
            Box::leak(format!("RACE-{}", i % 100).into_boxed_str()),
            1,
        )
    });
    let answers = futures_util::future::join_all(sends).await;
    assert!(
        answers.iter().all(|a| a.status == 201 || a.status == 200),
        "{:?}",
        answers.iter().map(|a| a.status).collect::<Vec<_>>()
    );
    let mut stock_ids = std::collections::BTreeSet::new();
    for page in 1..=2 {
        let (_, list) = owner
            .get(&format!(
                "/api/v1/marketplace-orders?page_size=50&page={page}&product_id={id}"
            ))
            .await;
        for order in list["items"].as_array().unwrap() {
            let cards = order["lines"][0]["cards"].as_array().unwrap();
            assert_eq!(cards.len(), 1, "{order}");
            assert!(stock_ids.insert(cards[0]["card_id"].as_i64().unwrap()));
        }
    }
    assert_eq!(stock_ids.len(), 100);
    let filter = kaquan_core::ecard::StockFilter {
        merchant_id: app.merchant_id,
        product_id: Some(id),
        state: Some(kaquan_core::ecard::StockState::Available),
    };
    let (_, available) = app
        .store
        .list_ecard_stock(&filter, kaquan_core::store::Page::default())
        .await
        .unwrap();
    assert_eq!(available, 50);
    let (orders, _) = app
        .store
        .list_ecard_orders(
            &kaquan_core::ecard::OrderFilter {
                merchant_id: app.merchant_id,
                now: kaquan_web::now(),
                ..Default::default()
            },
            kaquan_core::store::Page::new(Some(1), Some(200)),
        )
        .await
        .unwrap();
    let secrets: std::collections::BTreeSet<i64> = orders
        .iter()
        .flat_map(|o| o.cards().map(|c| c.stock_id))
        .collect();
    assert_eq!(secrets.len(), 100, "each secret in one order (by stock id)");
}
