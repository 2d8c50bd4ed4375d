//! 优惠券 end to end in headless Chromium at a phone's width: the merchant
//! makes a 代金券 满100减20 valid at two 门店 and downloads the claim QR (it
//! decodes to the claim link); a customer claims it and finds it in 我的卡券;
//! a verifier at a third location is refused with the reason; a verifier at
//! one of the two types the code with Enter (a scanner gun) and confirms
//! with 120 元 → 20 元 off; 核销记录 and 数据与对账 show that one verification.

mod common;

use common::browser::{phone, set_value, Browser};
use common::{Backend, TestApp};
use serde_json::json;

async fn add_location(browser: &Browser, name: &str) {
    browser.type_into("#location-name", name).await;
    browser.type_into("#location-address", "中山路 1 号").await;
    browser.click("#add-location").await;
    browser
        .wait_for_text("#message", &format!("已添加门店「{name}」"))
        .await;
}

/// The merchant's part: 门店, the program, 开始投放, the claim QR; returns the claim link.
async fn merchant_makes_the_program(app: &TestApp, owner: &Browser) -> String {
    owner.sign_in(app, "owner").await;
    owner.goto(&app.url("/coupons/locations")).await;
    for name in ["一店", "二店", "三店"] {
        add_location(owner, name).await;
    }
    owner.goto(&app.url("/coupons/new")).await;
    set_value(owner, "#kind", "cash").await;
    owner.type_into("#least-cost", "100").await;
    owner.type_into("#reduce-cost", "20").await;
    owner.type_into("#title", "满100减20").await;
    owner.type_into("#brand-name", "果园").await;
    owner.type_into("#quantity", "100").await;
    let today = kaquan_core::clock::format_date(kaquan_web::now());
    set_value(owner, "#begin-date", &today).await;
    set_value(owner, "#end-date", "2199-12-31").await;
    let locations = app.store.list_locations(app.merchant_id).await.unwrap();
    for l in &locations[..2] {
        owner.click(&format!("#location-{}", l.id)).await;
    }
    owner.click("#save-program").await;
    owner.wait_for_text("#message", "已创建「满100减20」").await;
    owner.accept_confirms().await;
    owner.click("#move-active").await;
    owner.wait_for_text("#message", "投放中").await;
    assert_eq!(owner.text("#program-benefit").await, "满100.00元减20.00元");
    let claim_url = owner.text("#claim-url").await;
    owner.click("#qr-png").await;
    let png = owner.wait_for_download("png").await;
    let bytes = common::browser::wait_until("the whole QR download", || async {
        std::fs::read(&png)
            .ok()
            .filter(|b| b.ends_with(b"IEND\xaeB`\x82"))
    })
    .await;
    assert_eq!(
        common::decode_qr_png(&bytes),
        claim_url,
        "the poster's QR code opens the claim link"
    );
    claim_url
}

/// The customer's part: sign up on the claim page, 领取, the wallet; returns the code.
async fn customer_claims(app: &TestApp, customer: &Browser, claim_url: &str) -> String {
    customer.goto(claim_url).await;
    customer
        .wait_for_text("#coupon-benefit", "满100.00元减20.00元")
        .await;
    assert!(customer.text("#coupon-locations").await.contains("一店"));
    customer.type_into("#phone", "13800001234").await;
    customer.type_into("#password", "abc12345").await;
    customer.click("#signup-button").await;
    customer.wait_for_text("#claim", "领取").await;
    customer.click("#claim").await;
    customer.wait_for_text("#claimed", "领取成功").await;
    let code: String = customer
        .text("#code-text")
        .await
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    assert_eq!(code.len(), 20);
    assert!(
        customer.exists("#code-qr svg").await,
        "the code shows as a QR code too"
    );
    customer
        .goto(&app.url(&format!("/m/{}/wallet", app.merchant_id)))
        .await;
    customer.wait_for_text(".card", "满100减20").await;
    let width = customer
        .execute("return document.documentElement.scrollWidth;")
        .await;
    assert!(
        width.as_i64().unwrap() <= 390,
        "the wallet fits a phone: {width}"
    );
    code
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coupon_is_made_claimed_refused_elsewhere_and_verified_with_its_discount() {
    let app = TestApp::start(Backend::Sqlite).await;
    let owner_client = app.client("owner").await;
    owner_client
        .put_giftcard_settings(json!({"phone_login": true}))
        .await;
    let owner = phone("owner-downloads").await;
    let claim_url = merchant_makes_the_program(&app, &owner).await;
    let customer = phone("customer-downloads").await;
    let code = customer_claims(&app, &customer, &claim_url).await;

    let locations = app.store.list_locations(app.merchant_id).await.unwrap();
    app.add_staff("far", "verifier").await;
    app.add_staff("desk", "verifier").await;
    for (username, location) in [("far", &locations[2]), ("desk", &locations[0])] {
        let staff = app.store.list_staff(app.merchant_id).await.unwrap();
        let id = staff.iter().find(|s| s.username == username).unwrap().id;
        let (status, body) = owner_client
            .send(
                reqwest::Method::PUT,
                &format!("/api/v1/staff/{id}/locations"),
                json!({"location_ids": [location.id]}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
    // A verifier at the third location is refused, with the reason.
    let far = phone("far-downloads").await;
    far.sign_in(&app, "far").await;
    far.wait_for_text("h1", "核销").await;
    far.type_into("#code", &format!("{code}\u{E007}")).await;
    far.wait_for_text("#refusal-reason", "该券不适用于本门店")
        .await;
    assert!(!far.exists("#confirm").await);

    // The desk's scanner gun: the code and Enter; then 确认核销 with 120 元.
    let desk = phone("desk-downloads").await;
    desk.sign_in(&app, "desk").await;
    desk.wait_for_text("h1", "核销").await;
    desk.type_into("#amount", "120").await;
    desk.type_into("#code", &format!("{code}\u{E007}")).await;
    desk.wait_for_text("#coupon-discount", "20.00").await;
    assert_eq!(desk.text("#coupon-customer").await, "138****1234");
    desk.click("#confirm").await;
    desk.wait_for_text("#verify-done", "核销成功").await;
    assert_eq!(desk.text("#done-discount").await, "20.00");
    let (records, _) = app
        .store
        .list_coupon_verifications(app.merchant_id, &Default::default(), Default::default())
        .await
        .unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(
        records[0].channel.code(),
        "scan",
        "a scanner gun's Enter counts as a scan"
    );

    // 核销记录 and 数据与对账 show the one verification.
    owner.goto(&app.url("/coupons/verifications")).await;
    owner.wait_for_text("#records", "一店").await;
    assert!(owner.text("#records").await.contains("20.00"));
    owner.goto(&app.url("/coupons/reconciliation")).await;
    assert_eq!(owner.text("#stats-n").await, "1");
    assert_eq!(owner.text("#stats-discount").await, "20.00");
    assert!(owner.text("#stats-verifiers").await.contains("desk"));
    // The customer's coupon is now under 已使用.
    customer
        .goto(&app.url(&format!("/m/{}/wallet?tab=used", app.merchant_id)))
        .await;
    customer.wait_for_text(".card", "满100减20").await;
}
