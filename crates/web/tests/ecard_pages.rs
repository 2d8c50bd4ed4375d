//! 电子卡密 end to end in headless Chromium at a phone's width: the
//! merchant makes a 虚拟商品 and imports its stock from a file; a paid order
//! arrives through the signed API; the customer opens the delivery link
//! (secrets masked; a plain fetch of the link holds none), taps 查看 and
//! copies; the verifier verifies the card's own code on the 核销台; the
//! merchant sees 已核销 and downloads the evidence PDF.

mod common;

use common::browser::{phone, Browser};
use common::{Backend, Mall, TestApp};
use serde_json::json;

/// Nothing on the page scrolls sideways at a phone's width.
async fn fits_a_phone(browser: &Browser, what: &str) {
    let overflow = browser
        .execute(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
        )
        .await;
    assert_eq!(overflow.as_i64(), Some(0), "{what} scrolls sideways");
}

/// The merchant's part: the product and its stock; returns the product's id.
async fn merchant_stocks_a_product(app: &TestApp, owner: &Browser) -> String {
    owner.sign_in(app, "owner").await;
    owner.goto(&app.url("/ecards/new")).await;
    owner.type_into("#ecard-name", "视频会员月卡").await;
    owner.type_into("#ecard-face-value", "19.90").await;
    owner
        .type_into("#ecard-instructions", "打开视频 App → 我的 → 兑换会员")
        .await;
    owner.click("#ecard-own-code").await;
    owner.type_into("#ecard-listings", "拼多多,pdd-100").await;
    owner.click("#ecard-create").await;
    owner.wait_for_text("#message", "已创建").await;
    fits_a_phone(owner, "a product's page").await;
    let file = common::temp_dir("ecard-stock").join("卡密.csv");
    std::fs::write(
        &file,
        "卡号,卡密\n8800000001,pw-one\n8800000002,pw-two\n8800000001,pw-dup\n",
    )
    .unwrap();
    owner.type_into("#stock-file", file.to_str().unwrap()).await;
    owner.click("#stock-upload").await;
    owner.wait_for_text("#message", "已导入 2 条卡密").await;
    assert!(owner
        .text("#message")
        .await
        .contains("第 4 行与文件中前面的行重复"));
    assert_eq!(owner.text("#count-available").await, "2");
    assert!(owner.text("#stock-list").await.contains("••••0002"));
    owner
        .execute("return location.pathname.split('/')[2];")
        .await
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ecard_is_delivered_revealed_verified_and_evidenced_on_a_phone() {
    let app = TestApp::start(Backend::Sqlite).await;
    let owner = phone("ecard-owner").await;
    merchant_stocks_a_product(&app, &owner).await;

    let mall = Mall::new(&app).await;
    let body = json!({"marketplace": "pinduoduo", "order_id": "PDD-77", "lines": [{"line_id": "1", "product_id": "pdd-100", "quantity": 1}]});
    let paid = mall
        .send("POST", "/open/v1/marketplace-orders", Some(&body), None)
        .await;
    assert_eq!(paid.status, 201, "{}", paid.body);
    let url = paid.body["delivery_url"].as_str().unwrap().to_owned();
    let card_id = paid.body["lines"][0]["cards"][0]["card_id"]
        .as_i64()
        .unwrap();
    let scraped = reqwest::get(&url).await.unwrap().text().await.unwrap();
    assert!(
        !scraped.contains("pw-") && !scraped.contains("88000000"),
        "a fetch of the link shows no secret"
    );

    let customer = phone("ecard-customer").await;
    customer.goto(&url).await;
    customer.wait_for_text("h1", "您购买的卡密").await;
    assert!(customer
        .text(&format!("#masked-{card_id}"))
        .await
        .contains("••••"));
    fits_a_phone(&customer, "the delivery page").await;
    customer.click(&format!("#reveal-{card_id}")).await;
    let secret = customer
        .wait_for_text(&format!("#secret-{card_id}"), "pw-")
        .await;
    assert!(secret.starts_with("pw-"));
    assert!(customer
        .text(&format!("#number-{card_id}"))
        .await
        .starts_with("88000000"));
    let code = customer
        .wait_for_text(&format!("#code-{card_id}"), "")
        .await;
    assert_eq!(code.len(), 16, "{code}");
    customer
        .click(&format!("[data-copy=secret-{card_id}]"))
        .await;
    customer
        .wait_for_text(&format!("[data-copy=secret-{card_id}]"), "已复制")
        .await;
    fits_a_phone(&customer, "the revealed delivery page").await;

    app.add_staff("desk", "verifier").await;
    let desk = phone("ecard-desk").await;
    desk.sign_in(&app, "desk").await;
    desk.wait_for_text("h1", "核销").await;
    desk.type_into("#code", &format!("{code}\u{E007}")).await;
    desk.wait_for_text("#ecard-title", "视频会员月卡").await;
    desk.click("#confirm").await;
    desk.wait_for_text("#verify-done", "核销成功").await;

    owner.goto(&app.url("/ecards/orders")).await;
    owner.wait_for_text("#ecard-orders", "已核销").await;
    fits_a_phone(&owner, "电子卡密订单").await;
    owner.click("#ecard-orders a").await;
    owner.wait_for_text("h1", "PDD-77").await;
    owner.click("#evidence-pdf").await;
    let pdf = owner.wait_for_download("pdf").await;
    let out = std::process::Command::new("pdftotext")
        .args([pdf.to_str().unwrap(), "-"])
        .output()
        .expect("pdftotext");
    let text = String::from_utf8_lossy(&out.stdout);
    for expected in ["自动发货", "查看卡密", "核销电子卡密", "way=own_code"] {
        assert!(text.contains(expected), "{expected} in {text}");
    }
}
