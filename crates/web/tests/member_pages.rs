//! 会员卡 end to end in headless Chromium at a phone's width: a customer
//! opens 开卡 from the program's link, signs up, fills the form and sees
//! the card with its QR code (which decodes to the member number); the POS
//! reports a payment through the signed open API (points earned, balance
//! spent); the card page shows the new points and balance, and 消息记录
//! shows ONE merged message for it.

mod common;

use common::browser::Browser;
use common::{Backend, Mall, TestApp};
use kaquan_core::member::{ActivationField, PointsRule, ProgramFields};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_opens_a_card_on_a_phone_and_sees_a_payment_as_one_message() {
    let app = TestApp::start(Backend::Sqlite).await;
    let owner = app.client("owner").await;
    owner
        .put_giftcard_settings(json!({"phone_login": true}))
        .await;
    let fields = ProgramFields {
        title: "果园会员卡".into(),
        brand_name: "果园".into(),
        discount_percent_off: 5,
        points: Some(PointsRule {
            init_increase_bonus: 20,
            ..PointsRule::default()
        }),
        activation_fields: vec![ActivationField::Name, ActivationField::Birthday],
        number_prefix: "VIP".into(),
        number_length: 8,
        ..ProgramFields::default()
    };
    let program = app.member_program(&fields).await;
    let (_, dto) = owner
        .get(&format!("/api/v1/member-programs/{}", program.id))
        .await;
    let open_url = dto["open_url"].as_str().unwrap().to_owned();

    let mall = Mall::new(&app).await;
    let link = mall
        .post(
            "/open/v1/login-links",
            json!({"customer_id": "u-77"}),
            "link-77",
        )
        .await;
    assert_eq!(link.status, 201, "{}", link.body);
    let open_path = open_url
        .split_once("/m/")
        .map(|(_, p)| format!("/m/{p}"))
        .unwrap();
    let login = format!(
        "{}&next={}",
        link.body["url"].as_str().unwrap(),
        form_urlencoded::byte_serialize(open_path.as_bytes()).collect::<String>()
    );

    // Signed out, the 开卡 link asks to sign in first.
    let stranger = Browser::start(390, 844, &common::temp_dir("member-stranger")).await;
    stranger.goto(&open_url).await;
    stranger.wait_for_text("body", "登录").await;
    assert!(stranger.current_url().await.contains("/exchange?next="));

    // The mall's customer follows the mall's link to 开卡 and fills the form.
    let customer = Browser::start(390, 844, &common::temp_dir("member-customer")).await;
    customer.goto(&login).await;
    customer
        .wait_for_text("#member-card-title", "果园会员卡")
        .await;
    customer.type_into("#open-phone", "13800005678").await;
    customer.type_into("#open-name", "王小明").await;
    customer
        .execute("var el = document.querySelector('#open-birthday'); el.value = '1990-05-01';")
        .await;
    customer.click("#open-button").await;
    customer.wait_for_text("#opened", "开卡成功").await;
    let number = customer.text("#member-number").await;
    assert!(number.starts_with("VIP") && number.len() == 11, "{number}");
    assert_eq!(customer.text("#card-points").await, "20");
    let width = customer
        .execute("return document.documentElement.scrollWidth;")
        .await;
    assert!(
        width.as_i64().unwrap() <= 390,
        "the card fits a phone: {width}"
    );
    let svg = customer
        .execute("return document.querySelector('#member-qr svg').outerHTML;")
        .await;
    assert!(
        svg.as_str().unwrap().contains("<path"),
        "the member number as a QR code"
    );

    pos_pays_and_the_card_and_messages_show_it(&app, &mall, &customer).await;
}

/// The POS's top-up and payment through the open API; the card page and
/// 消息记录 after them.
async fn pos_pays_and_the_card_and_messages_show_it(
    app: &TestApp,
    mall: &Mall,
    customer: &Browser,
) {
    // The POS: a top-up, then a payment that earns points and spends balance.
    let topped = mall
        .post(
            "/open/v1/recharges",
            json!({"customer_id": "u-77", "amount_fen": 5_000, "recharge_id": "R-1"}),
            "top-77",
        )
        .await;
    assert_eq!(topped.status, 201, "{}", topped.body);
    let paid = mall
        .post(
            "/open/v1/payments",
            json!({"customer_id": "u-77", "amount_fen": 10_000, "balance_fen": 2_000, "order_id": "POS-1"}),
            "pos-1",
        )
        .await;
    assert_eq!(paid.status, 201, "{}", paid.body);
    assert_eq!(
        (
            paid.body["points_earned"].as_i64(),
            paid.body["balance_fen"].as_i64()
        ),
        (Some(95), Some(2_000))
    );

    let card = customer.current_url().await.replace("?opened=1", "");
    customer.goto(&card).await;
    customer.wait_for_text("#card-points", "115").await;
    assert_eq!(customer.text("#card-balance").await, "¥30.00");
    assert!(customer
        .text("#card-points-statement")
        .await
        .contains("积分获得"));
    assert!(customer
        .text("#card-balance-statement")
        .await
        .contains("储值充值"));

    let staff = Browser::start(1366, 900, &common::temp_dir("member-staff")).await;
    staff.sign_in(app, "owner").await;
    staff.goto(&app.url("/members/messages")).await;
    staff
        .wait_for_text("#member-messages", "积分和余额变动")
        .await;
    let rows = staff
        .execute("return [...document.querySelectorAll('#member-messages tbody tr')].map(r => r.innerText);")
        .await;
    let rows: Vec<String> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        rows.len(),
        2,
        "the top-up and the payment, one message each: {rows:?}"
    );
    assert!(rows[0].contains("积分和余额变动"), "{rows:?}");
    assert!(
        rows[0].contains("积分 +95，当前 115；余额 -¥20.00，当前 ¥30.00"),
        "{rows:?}"
    );
    assert!(
        rows[1].contains("余额变动") && !rows[1].contains("积分和"),
        "{rows:?}"
    );
}
