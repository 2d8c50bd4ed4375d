//! The customer's pickup page on a phone (390 px, headless Chromium): the
//! date picker follows the 提货预约模式 and says its rule, the mobile number
//! is checked, a pasted address fills the fields, the password can be shown,
//! and the success page shows what to check and where to track.

mod common;

use common::browser::Browser;
use common::{Backend, TestApp};
use serde_json::json;

async fn set_mode(owner: &common::Client, changes: serde_json::Value) {
    let (_, mut settings) = owner.get("/api/v1/pickup-settings").await;
    for (key, value) in changes.as_object().unwrap() {
        settings[key] = value.clone();
    }
    settings["title"] = json!("鲜果提货中心");
    let (status, body) = owner
        .send(reqwest::Method::PUT, "/api/v1/pickup-settings", settings)
        .await;
    assert_eq!(status, 204, "{body}");
}

fn today_plus(days: i64) -> String {
    let today = kaquan_core::clock::parse_date(&kaquan_core::clock::format_date(kaquan_web::now()))
        .unwrap();
    (today + time::Duration::days(days)).to_string()
}

/// The pickup form, after checking a card (with the password shown once).
async fn open_form(phone: &Browser, app: &TestApp, number: &str, password: &str) {
    phone
        .goto(&app.url(&format!("/m/{}/redeem", app.merchant_id)))
        .await;
    phone.type_into("#number", number).await;
    phone.type_into("#password", password).await;
    phone.click("#show-password").await;
    let shown = phone
        .execute("return document.getElementById('password').type;")
        .await;
    assert_eq!(shown, "text", "显示 shows the password");
    phone.click("#check").await;
    phone.wait_for_text("#pickup-form", "收货信息").await;
}

async fn phone_browser() -> Browser {
    Browser::start(390, 844, &common::temp_dir("downloads")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_date_picker_follows_each_appointment_mode_and_says_its_rule() {
    let app = TestApp::start(Backend::Sqlite).await;
    let owner = app.client("owner").await;
    let (numbers, passwords, _) = common::pickup_cards(&app, 1).await;
    let phone = phone_browser().await;
    let min = || async {
        phone
            .execute("return document.getElementById('appointment_date').min;")
            .await
    };
    set_mode(
        &owner,
        json!({"appointment_mode": "min_days", "appointment_min_days": 3}),
    )
    .await;
    open_form(&phone, &app, &numbers[0], &passwords[0]).await;
    assert_eq!(min().await, today_plus(3));
    assert!(phone.text("#date-rule").await.contains("须提前 3 天"));
    let (from, until) = (today_plus(5), today_plus(9));
    set_mode(
        &owner,
        json!({"appointment_mode": "range", "appointment_from": from, "appointment_until": until}),
    )
    .await;
    open_form(&phone, &app, &numbers[0], &passwords[0]).await;
    assert_eq!(min().await, from);
    let max = phone
        .execute("return document.getElementById('appointment_date').max;")
        .await;
    assert_eq!(max, until);
    set_mode(&owner, json!({"appointment_mode": "weekdays"})).await;
    open_form(&phone, &app, &numbers[0], &passwords[0]).await;
    assert!(phone.text("#date-rule").await.contains("工作日"));
    set_mode(
        &owner,
        json!({"appointment_mode": "any", "blocked_dates": today_plus(2)}),
    )
    .await;
    open_form(&phone, &app, &numbers[0], &passwords[0]).await;
    assert_eq!(min().await, today_plus(0));
    assert!(phone
        .text("#date-rule")
        .await
        .contains(&format!("不可预约：{}", today_plus(2))));
    let refused = phone
        .execute(&format!("var d = document.getElementById('appointment_date'); d.value = '{}'; d.dispatchEvent(new Event('change')); return d.validationMessage;", today_plus(2)))
        .await;
    assert!(refused.as_str().unwrap().contains("不可预约"), "{refused}");
    set_mode(&owner, json!({"appointment_mode": "none"})).await;
    open_form(&phone, &app, &numbers[0], &passwords[0]).await;
    assert!(!phone.exists("#appointment_date").await, "no date asked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pasted_address_fills_the_form_and_the_success_page_shows_what_to_check() {
    let app = TestApp::start(Backend::Sqlite).await;
    let owner = app.client("owner").await;
    let (numbers, passwords, _) = common::pickup_cards(&app, 2).await;
    set_mode(&owner, json!({"appointment_mode": "none"})).await;
    let phone = phone_browser().await;
    let m = app.merchant_id;
    open_form(&phone, &app, &numbers[0], &passwords[0]).await;
    // 省/市/区 are drop-downs from the bundled table, each level from the one before.
    phone.choose_region("北京市", "北京市", "朝阳区").await;
    let districts = phone
        .execute("return document.getElementById('district').options.length;")
        .await;
    assert_eq!(districts, 17, "北京's 16 districts and the placeholder");
    // A pasted address fills the fields; a bad mobile is refused by the page and the server.
    phone
        .type_into(
            "#paste-address",
            "李四 13912345678 浙江省杭州市西湖区文三路100号2幢",
        )
        .await;
    let filled = phone
        .execute("return ['consignee','phone','province','city','district','address'].map(id => document.getElementById(id).value);")
        .await;
    assert_eq!(
        filled,
        json!([
            "李四",
            "13912345678",
            "浙江省",
            "杭州市",
            "西湖区",
            "文三路100号2幢"
        ])
    );
    let inputmode = phone
        .execute("return document.getElementById('phone').inputMode;")
        .await;
    assert_eq!(inputmode, "numeric");
    phone
        .execute("document.getElementById('phone').value = '12345678901';")
        .await;
    let invalid = phone
        .execute("return document.getElementById('phone').checkValidity();")
        .await;
    assert_eq!(invalid, false, "the page checks the mobile number");
    phone
        .execute("document.getElementById('phone').value = '13912345678';")
        .await;
    phone.click("input[name=goods_id]").await;
    phone.click("#confirm").await;
    phone.wait_for_text("#pickup-done", "提货成功").await;
    assert_eq!(
        phone.text("#done-address").await,
        "浙江省杭州市西湖区文三路100号2幢"
    );
    assert!(phone.text("#done-goods").await.len() > 1);
    let title = phone.execute("return document.title;").await;
    assert_eq!(title, "鲜果提货中心", "the merchant's name, not ours");
    phone.click("#track-link").await;
    phone.wait_for_text("h1", "订单查询").await;
    // The server checks the mobile too.
    let (status, page) = common::post_form(
        &app,
        &format!("/m/{m}/redeem/confirm"),
        &[
            ("number", numbers[1].as_str()),
            ("password", passwords[1].as_str()),
            ("goods_id", "1"),
            ("consignee", "王五"),
            ("phone", "0571-88888888"),
            ("province", "浙江省"),
            ("city", "杭州市"),
            ("district", "西湖区"),
            ("address", "文三路 100 号"),
        ],
    )
    .await;
    assert_eq!(status, 422);
    assert!(page.contains("11 位手机号"), "{page}");
}
