//! 短信 (通知设置) over HTTP: settings through the staff API, texts sent by
//! the switches through the Aliyun and Tencent Cloud doubles (which check
//! every signature from the raw request), a provider's refusal retried, a
//! test send, and the log.

mod common;

use common::browser::wait_until;
use common::providers::{ACCESS_KEY_ID, ACCESS_KEY_SECRET, SDK_APP_ID, SIGN_NAME};
use common::{h5_orders, pickup_cards, Client, Mall, TestApp};
use serde_json::{json, Value};

on_both_backends! {
    switches_a_b_and_c_text_through_aliyun => aliyun_switches;
    a_refused_text_is_retried_and_a_test_send_checks_tencent_settings => tencent_retry;
    settings_are_checked_and_the_secret_never_shown => settings_rules;
    a_member_gets_one_text_per_payment_and_a_paying_stranger_the_card_link => member_texts;
}

fn aliyun_settings() -> Value {
    json!({
        "provider": "aliyun",
        "access_key_id": ACCESS_KEY_ID,
        "access_key_secret": ACCESS_KEY_SECRET,
        "sign_name": SIGN_NAME,
        "notify_customer_on_submit": true,
        "template_submit": "SMS_1001",
        "notify_admin_on_submit": true,
        "template_admin": "SMS_1002",
        "admin_phones": ["13900000001"],
        "notify_customer_on_ship": true,
        "template_ship": "SMS_1003"
    })
}

/// Waits until the doubles accepted `n` texts.
async fn sent(app: &TestApp, n: usize) -> Vec<common::providers::Sent> {
    let sent = wait_until("the texts", || async {
        Some(app.providers.sent()).filter(|sent| sent.len() >= n)
    })
    .await;
    assert_eq!(sent.len(), n, "{sent:?}");
    sent
}

/// One customer's pickup order through the H5 form; its id.
async fn order(app: &TestApp, owner: &Client) -> i64 {
    h5_orders(app, owner, pickup_cards(app, 1).await).await[0]
}

async fn aliyun_switches(app: TestApp) {
    let owner = app.client("owner").await;
    let (status, saved) = owner
        .send(
            reqwest::Method::PUT,
            "/api/v1/sms-settings",
            aliyun_settings(),
        )
        .await;
    assert_eq!(status, 200, "{saved}");
    let order_id = order(&app, &owner).await;
    let texts = sent(&app, 2).await;
    let customer = texts.iter().find(|t| t.template == "SMS_1001").unwrap();
    assert_eq!(
        (customer.provider, customer.phone.as_str()),
        ("aliyun", "13800001234")
    );
    assert_eq!(customer.params["order"], order_id.to_string());
    assert_eq!(customer.params["goods"], "苹果");
    let admin = texts.iter().find(|t| t.template == "SMS_1002").unwrap();
    assert_eq!(admin.phone, "13900000001");
    assert_eq!(admin.params["consignee"], "张三");
    let (status, shipped) = owner
        .post(
            "/api/v1/orders/ship",
            json!({"shipments": [{"order_id": order_id, "carrier": "顺丰速运", "tracking_number": "SF1234567890"}]}),
        )
        .await;
    assert_eq!(status, 200, "{shipped}");
    let texts = sent(&app, 3).await;
    let shipped = texts.iter().find(|t| t.template == "SMS_1003").unwrap();
    assert_eq!(
        shipped.params,
        json!({"order": order_id.to_string(), "carrier": "顺丰速运", "number": "SF1234567890"})
    );
    assert_eq!(*app.providers.bad_signatures.lock().unwrap(), 0);
    // The log shows each text with the provider's answer.
    let (_, log) = owner.get("/api/v1/sms-messages").await;
    assert_eq!(log["total"], 3);
    for item in log["items"].as_array().unwrap() {
        assert_eq!(
            (item["state"].as_str(), item["provider_code"].as_str()),
            (Some("sent"), Some("OK")),
            "{item}"
        );
    }
    let page = owner.page("/settings/sms").await;
    assert!(
        page.contains("已发送") && page.contains("C 订单发货，通知顾客"),
        "{page}"
    );
}

async fn tencent_retry(app: TestApp) {
    let owner = app.client("owner").await;
    let mut settings = json!({
        "provider": "tencent",
        "access_key_id": ACCESS_KEY_ID,
        "access_key_secret": "not-the-secret",
        "sdk_app_id": SDK_APP_ID,
        "sign_name": SIGN_NAME,
        "notify_customer_on_submit": true,
        "template_submit": "1001"
    });
    let (status, saved) = owner
        .send(
            reqwest::Method::PUT,
            "/api/v1/sms-settings",
            settings.clone(),
        )
        .await;
    assert_eq!(status, 200, "{saved}");
    order(&app, &owner).await;
    // The double refuses the signature, as Tencent answers it.
    let refused = wait_until("the refused try in the log", || async {
        let (_, log) = owner.get("/api/v1/sms-messages").await;
        let first = log["items"][0].clone();
        (first["attempts"] == 1 && first["provider_code"] != "").then_some(first)
    })
    .await;
    assert_eq!(
        refused["provider_code"], "AuthFailure.SignatureFailure",
        "{refused}"
    );
    assert_eq!(refused["state"], "pending");
    assert!(refused["next_attempt_at"].is_string());
    assert_eq!(*app.providers.bad_signatures.lock().unwrap(), 1);
    // The right secret: a test send passes, and the text goes on its retry.
    settings["access_key_secret"] = ACCESS_KEY_SECRET.into();
    let (status, _) = owner
        .send(
            reqwest::Method::PUT,
            "/api/v1/sms-settings",
            settings.clone(),
        )
        .await;
    assert_eq!(status, 200);
    let (status, test) = owner
        .post("/api/v1/sms-settings/test", json!({"phone": "13700000000"}))
        .await;
    assert_eq!(
        (status, &test["sent"], &test["provider_code"]),
        (200, &json!(true), &json!("Ok")),
        "{test}"
    );
    let texts = sent(&app, 2).await;
    assert_eq!(texts[0].phone, "13700000000");
    assert_eq!(texts[0].params, json!(["10001", "测试商品", "2026-12-08"]));
    assert_eq!(
        texts[1].phone, "13800001234",
        "sent on its retry, 10 s later"
    );
    assert_eq!(texts[1].params[1], "苹果");
    // A signature name the provider has not approved: the test says so.
    settings["sign_name"] = "别家".into();
    settings["access_key_secret"] = "".into();
    owner
        .send(reqwest::Method::PUT, "/api/v1/sms-settings", settings)
        .await;
    let (_, test) = owner
        .post("/api/v1/sms-settings/test", json!({"phone": "13700000000"}))
        .await;
    assert_eq!(test["sent"], false);
    assert_eq!(
        test["provider_code"],
        "FailedOperation.SignatureIncorrectOrUnapproved"
    );
}

async fn settings_rules(app: TestApp) {
    let owner = app.client("owner").await;
    let (status, test) = owner
        .post("/api/v1/sms-settings/test", json!({"phone": "13700000000"}))
        .await;
    assert_eq!(
        (status, test["error"]["code"].as_str()),
        (422, Some("invalid"))
    );
    let (_, empty) = owner.get("/api/v1/sms-settings").await;
    assert_eq!(
        (empty["has_secret"].as_bool(), empty["provider"].as_str()),
        (Some(false), Some("aliyun"))
    );
    let cases = [
        ("template_submit", json!(""), "模板"),
        ("admin_phones", json!(["123"]), "123"),
        ("sign_name", json!(""), "签名"),
        ("access_key_secret", json!(""), "AccessKey"),
        ("provider", json!("qcloud"), "provider"),
    ];
    for (field, value, said) in cases {
        let mut settings = aliyun_settings();
        settings[field] = value;
        let (status, answer) = owner
            .send(reqwest::Method::PUT, "/api/v1/sms-settings", settings)
            .await;
        assert_eq!(status, 422, "{field}: {answer}");
        assert!(
            answer["error"]["message"].as_str().unwrap().contains(said),
            "{field}: {answer}"
        );
    }
    let mut misspelled = aliyun_settings();
    misspelled["notify_on_ship"] = json!(true);
    let (status, answer) = owner
        .send(reqwest::Method::PUT, "/api/v1/sms-settings", misspelled)
        .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (422, Some("unknown_field"))
    );
    let (status, saved) = owner
        .send(
            reqwest::Method::PUT,
            "/api/v1/sms-settings",
            aliyun_settings(),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(saved["has_secret"], true);
    let (_, read) = owner.get("/api/v1/sms-settings").await;
    assert!(!read.to_string().contains(ACCESS_KEY_SECRET), "{read}");
    assert!(!owner
        .page("/settings/sms")
        .await
        .contains(ACCESS_KEY_SECRET));
    // A wrong AccessKey secret: Aliyun refuses the signature, and the test says so.
    let mut wrong = aliyun_settings();
    wrong["access_key_secret"] = "wrong-secret".into();
    owner
        .send(reqwest::Method::PUT, "/api/v1/sms-settings", wrong)
        .await;
    let (_, test) = owner
        .post("/api/v1/sms-settings/test", json!({"phone": "13700000000"}))
        .await;
    assert_eq!(
        (test["sent"].as_bool(), test["provider_code"].as_str()),
        (Some(false), Some("SignatureDoesNotMatch")),
        "{test}"
    );
    assert_eq!(*app.providers.bad_signatures.lock().unwrap(), 1);
    // A read-only role may not see or change them.
    app.add_staff("viewer", "readonly").await;
    let viewer = app.client("viewer").await;
    assert_eq!(viewer.get("/api/v1/sms-settings").await.0, 403);
}

/// Switches E and F: a payment that earns points and spends balance is
/// one text with both changes; 支付后赠会员卡 texts the 开卡 link.
async fn member_texts(app: TestApp) {
    let owner = app.client("owner").await;
    let mut settings = aliyun_settings();
    settings["notify_member_on_change"] = json!(true);
    settings["template_member_change"] = json!("SMS_1005");
    settings["notify_customer_on_invite"] = json!(true);
    settings["template_invite"] = json!("SMS_1006");
    let (status, saved) = owner
        .send(reqwest::Method::PUT, "/api/v1/sms-settings", settings)
        .await;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(
        (
            saved["template_member_change"].as_str(),
            saved["notify_member_on_expiry"].as_bool()
        ),
        (Some("SMS_1005"), Some(false))
    );
    let fields = kaquan_core::member::ProgramFields {
        title: "果园会员卡".into(),
        points: Some(kaquan_core::member::PointsRule::default()),
        number_prefix: "VIP".into(),
        number_length: 8,
        ..Default::default()
    };
    let program = app.member_program(&fields).await;
    let mall = Mall::new(&app).await;
    let open = json!({"program_id": program.id, "customer_id": "u-1", "phone": "13800000000"});
    assert_eq!(
        mall.post("/open/v1/members", open, "open-1").await.status,
        201
    );
    let top_up = json!({"customer_id": "u-1", "amount_fen": 10000, "recharge_id": "R1"});
    assert_eq!(
        mall.post("/open/v1/recharges", top_up, "top-1")
            .await
            .status,
        201
    );
    let pay =
        json!({"customer_id": "u-1", "amount_fen": 3000, "balance_fen": 2500, "order_id": "M1"});
    let paid = mall.post("/open/v1/payments", pay, "pay-1").await;
    assert_eq!(paid.status, 201, "{}", paid.body);
    // The top-up and the payment: two texts, the payment's one merged.
    let texts = sent(&app, 2).await;
    let payment = texts
        .iter()
        .find(|t| t.params["points_change"] == "+30")
        .unwrap_or_else(|| panic!("{texts:?}"));
    assert_eq!(
        (payment.template.as_str(), payment.phone.as_str()),
        ("SMS_1005", "13800000000")
    );
    assert_eq!(payment.params["number"], "VIP00000001");
    assert_eq!(payment.params["balance_change"], "-25.00");
    assert_eq!(payment.params["balance"], "75.00");
    assert_eq!(payment.params["points"], "30");

    let rule = json!({"program_id": program.id, "mch_ids": ["1900000109"], "begin_date": "2020-01-01", "end_date": "2199-12-31"});
    let (status, rule) = owner.post("/api/v1/pay-gift-rules", rule).await;
    assert_eq!(status, 201, "{rule}");
    let notice = json!({"payment_id": "wx-1", "mch_id": "1900000109", "amount_fen": 8800, "phone": "13700000000"});
    let notified = mall
        .send(
            "POST",
            "/open/v1/payment-notifications",
            Some(&notice),
            None,
        )
        .await;
    assert_eq!(notified.body["outcome"], "sent", "{}", notified.body);
    let texts = sent(&app, 3).await;
    let invite = texts.iter().find(|t| t.template == "SMS_1006").unwrap();
    assert_eq!(invite.phone, "13700000000");
    let link = invite.params["link"].as_str().unwrap();
    assert!(
        link.starts_with("http") && link.ends_with(&format!("/member-cards/{}", program.id)),
        "{link}"
    );
}
