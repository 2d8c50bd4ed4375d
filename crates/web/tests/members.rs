//! 会员卡 over HTTP: the POS opens a card for the mall's customer, tops it
//! up, reports payments (discount, points, balance), refunds one, reads
//! the member and the points statement, through the signed open API with
//! idempotency; bad input is refused with its stable code.

mod common;

use common::{Client, Mall, TestApp};
use kaquan_core::member::{PointsRule, ProgramFields, Tier};
use serde_json::{json, Value};

on_both_backends! {
    the_pos_opens_a_card_tops_up_pays_and_refunds => pos_flow;
    staff_make_a_card_in_the_console_and_adjust_points_once => console_flow;
    the_open_form_checks_what_the_card_asks_and_opens_once => open_form_flow;
    a_card_face_shows_its_pictures_and_an_edit_keeps_them => card_face;
}

/// The 开卡 form's refusals: each with its message and the form again.
async fn refusals_show_the_form_again(browser: &reqwest::Client, url: &str, csrf: &str) {
    for (form, message) in [
        (vec![("csrf", csrf), ("phone", "13800000000")], "请填写生日"),
        (
            vec![
                ("csrf", csrf),
                ("phone", "1380000"),
                ("birthday", "1990-01-01"),
            ],
            "手机号",
        ),
        (
            vec![
                ("csrf", csrf),
                ("phone", "13800000000"),
                ("birthday", "1990-02-30"),
            ],
            "生日须为 YYYY-MM-DD",
        ),
    ] {
        let refused = browser.post(url).form(&form).send().await.unwrap();
        assert_eq!(refused.status().as_u16(), 422);
        let body = refused.text().await.unwrap();
        assert!(
            body.contains(message) && body.contains("id=\"open-form\""),
            "{message}: {body}"
        );
    }
}

/// The customer's 开卡 form over HTTP: signed in by the mall's link, a
/// missing field or a bad phone is refused with the form again, and two
/// submissions give one card.
async fn open_form_flow(app: TestApp) {
    let fields = ProgramFields {
        activation_fields: vec![kaquan_core::member::ActivationField::Birthday],
        ..ProgramFields::default()
    };
    let program = app.member_program(&fields).await;
    let mall = Mall::new(&app).await;
    let link = mall
        .post("/open/v1/login-links", json!({"customer_id": "u-5"}), "l-5")
        .await;
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let path = format!("/m/{}/member-cards/{}", app.merchant_id, program.id);
    let signed_out = browser.get(app.url(&path)).send().await.unwrap();
    assert_eq!(signed_out.status().as_u16(), 303);
    let login = browser
        .get(link.body["url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(login.status().as_u16(), 303);
    let page = browser
        .get(app.url(&path))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    refusals_show_the_form_again(&browser, &app.url(&path), &csrf).await;
    let forged = browser
        .post(app.url(&path))
        .form(&[
            ("csrf", "x"),
            ("phone", "13800000000"),
            ("birthday", "1990-01-01"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status().as_u16(), 403);
    let good = [
        ("csrf", csrf.as_str()),
        ("phone", "13800000000"),
        ("birthday", "1990-01-01"),
    ];
    for _ in 0..2 {
        let opened = browser
            .post(app.url(&path))
            .form(&good)
            .send()
            .await
            .unwrap();
        assert_eq!(opened.status().as_u16(), 303);
    }
    let (members, total) = app
        .store
        .list_members(app.merchant_id, &Default::default(), Default::default())
        .await
        .unwrap();
    assert_eq!(
        (total, members[0].birthday.as_deref()),
        (1, Some("1990-01-01"))
    );
    let card = browser
        .get(app.url(&format!("{path}/card")))
        .send()
        .await
        .unwrap();
    assert!(card.text().await.unwrap().contains("id=\"member-qr\""));
}

/// The 新建会员卡 form as a merchant fills it (yuan and 折 as typed).
fn program_form(csrf: &str) -> Vec<(&str, &str)> {
    vec![
        ("csrf", csrf),
        ("title", "果园会员卡"),
        ("brand_name", "果园"),
        ("color", "#336699"),
        ("discount", "9.5"),
        ("points_enabled", "on"),
        ("cost_money_unit", "1"),
        ("increase_bonus", "1"),
        ("init_increase_bonus", "50"),
        ("cost_bonus_unit", "100"),
        ("reduce_money", "1"),
        ("stored_value", "on"),
        ("tier_basis", "spend"),
        ("downgrade_on_refund", "on"),
        ("tier_name", "金卡"),
        ("tier_threshold", "1000"),
        ("tier_discount", "9"),
        ("tier_name", ""),
        ("tier_threshold", ""),
        ("tier_discount", ""),
        ("field_name", "等级"),
        ("field_kind", "tier"),
        ("link_name", "商城"),
        ("link_url", "https://shop.example.com"),
        ("activation_fields", "name"),
        ("activation_fields", "birthday"),
        ("number_prefix", "VIP"),
        ("number_length", "8"),
        ("expiry", "rolling"),
        ("expiry_months", "12"),
        ("notify", "on"),
    ]
}

async fn console_flow(app: TestApp) {
    let owner = app.client("owner").await;
    let form = program_form(&owner.csrf);
    let response = owner
        .http
        .post(format!("{}/member-programs/new", owner.base))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status().as_u16(),
        303,
        "{}",
        response.text().await.unwrap()
    );
    let (status, programs) = owner.get("/api/v1/member-programs").await;
    assert_eq!(status, 200);
    let program = &programs[0];
    assert_eq!(program["discount_label"], "9.5折");
    assert_eq!(program["tiers"][0]["threshold"], 100_000, "¥1000 as fen");
    assert_eq!(program["tiers"][0]["discount_percent_off"], 10);
    assert_eq!(program["expiry_label"], "获得后 12 个月过期");
    assert_eq!(program["points_rule"]["init_increase_bonus"], 50);
    let id = program["id"].as_i64().unwrap();
    let page = owner.page(&format!("/member-programs/{id}")).await;
    assert!(
        page.contains("id=\"open-url\"") && page.contains("<svg"),
        "{page}"
    );
    let edit = owner.page(&format!("/member-programs/{id}/edit")).await;
    assert!(edit.contains("value=\"金卡\""), "{edit}");
    // A bad rule is refused with its reason, and nothing is saved.
    let (status, refused) = owner
        .post(
            "/api/v1/member-programs",
            json!({"title": "x", "color": "red"}),
        )
        .await;
    assert_eq!(
        (status, refused["error"]["message"].as_str()),
        (422, Some("卡面颜色须为 #RRGGBB"))
    );
    let (status, _) = owner
        .post(
            "/api/v1/member-programs",
            json!({"title": "x", "colour": "#000000"}),
        )
        .await;
    assert_eq!(status, 422, "a misspelled field");

    let mall = Mall::new(&app).await;
    let open =
        json!({"program_id": id, "customer_id": "u-9", "phone": "13900000000", "name": "李四"});
    let card = mall.post("/open/v1/members", open, "open-9").await;
    assert_eq!(card.status, 201, "{}", card.body);
    let member_id = card.body["member_id"].as_i64().unwrap();
    assert!(owner.page("/member-programs").await.contains("果园会员卡"));
    let list = owner.page("/members?search=13900000000").await;
    assert!(
        list.contains(&format!("id=\"member-{member_id}\"")),
        "{list}"
    );
    let (_, members) = owner
        .get(&format!(
            "/api/v1/members?program_id={id}&points_at_least=50"
        ))
        .await;
    assert_eq!(members["total"], 1);
    let (_, none) = owner
        .get(&format!(
            "/api/v1/members?program_id={id}&points_at_least=51"
        ))
        .await;
    assert_eq!(none["total"], 0);

    adjust_and_export(
        &app,
        &owner,
        id,
        member_id,
        card.body["member_number"].as_str().unwrap(),
    )
    .await;
    let (status, disabled) = owner
        .post(
            &format!("/api/v1/member-programs/{id}/state"),
            json!({"state": "disabled"}),
        )
        .await;
    assert_eq!(
        (status, disabled["state"].as_str()),
        (200, Some("disabled"))
    );
    let pay = json!({"customer_id": "u-9", "amount_fen": 100, "order_id": "M9"});
    let refused = mall.post("/open/v1/payments", pay, "pay-9").await;
    assert_eq!(refused.body["error"]["code"], "program_disabled");
}

async fn pos_flow(app: TestApp) {
    let fields = ProgramFields {
        title: "果园会员卡".into(),
        discount_percent_off: 5,
        points: Some(PointsRule {
            init_increase_bonus: 20,
            ..PointsRule::default()
        }),
        tiers: vec![Tier {
            name: "金卡".into(),
            threshold: 100,
            discount_percent_off: 10,
        }],
        number_prefix: "VIP".into(),
        number_length: 8,
        ..ProgramFields::default()
    };
    let program = app.member_program(&fields).await;
    let mall = Mall::new(&app).await;
    let open = json!({"program_id": program.id, "customer_id": "u-1", "phone": "13800000000",
        "name": "王小明", "birthday": "1990-05-01", "gender": "female"});
    let card = mall.post("/open/v1/members", open.clone(), "open-1").await;
    assert_eq!(card.status, 201, "{}", card.body);
    assert_eq!(card.body["points"], 20);
    let number = card.body["member_number"].as_str().unwrap().to_owned();
    assert!(number.starts_with("VIP") && number.len() == 11, "{number}");
    let again = mall.post("/open/v1/members", open, "open-2").await;
    assert_eq!(
        (again.status, again.body["member_number"].as_str()),
        (200, Some(number.as_str()))
    );

    for (body, code) in [
        (
            json!({"program_id": program.id, "customer_id": "u-2", "phone": "12345"}),
            "invalid",
        ),
        (
            json!({"program_id": program.id, "customer_id": "u-2", "phone": "13800000001", "birthday": "1990-02-30"}),
            "invalid",
        ),
        (
            json!({"program_id": 999, "customer_id": "u-2", "phone": "13800000001"}),
            "program_not_found",
        ),
        (
            json!({"program_id": program.id, "customer_id": "u-2", "phone": "13800000001", "nmae": "x"}),
            "unknown_field",
        ),
    ] {
        let refused = mall.post("/open/v1/members", body, "bad").await;
        assert_eq!(refused.body["error"]["code"], code, "{}", refused.body);
    }

    pays_and_refunds(&app, &mall).await;
}

/// 积分调整 (twice with one form key), the member's page and the export.
async fn adjust_and_export(
    app: &TestApp,
    owner: &common::Client,
    id: i64,
    member_id: i64,
    number: &str,
) {
    // 积分调整 pressed twice with one form key: one adjustment.
    let adjust = [
        ("csrf", owner.csrf.as_str()),
        ("form_key", "k1"),
        ("direction", "credit"),
        ("points", "30"),
        ("reason", "活动补发"),
    ];
    for _ in 0..2 {
        let response = owner
            .http
            .post(format!("{}/members/{member_id}/points", owner.base))
            .form(&adjust)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 303);
    }
    let (_, member) = owner.get(&format!("/api/v1/members/{member_id}")).await;
    assert_eq!(member["points"], 80);
    let (status, too_much) = owner
        .post(
            &format!("/api/v1/members/{member_id}/points-adjustments"),
            json!({"delta": -81, "reason": "纠正"}),
        )
        .await;
    assert_eq!(
        (status, too_much["error"]["code"].as_str()),
        (422, Some("insufficient_points"))
    );
    // The fuzzer's find: the smallest i64 has no size; it is refused, not a crash.
    let (status, _) = owner
        .post(
            &format!("/api/v1/members/{member_id}/points-adjustments"),
            json!({"delta": i64::MIN, "reason": "x"}),
        )
        .await;
    assert_eq!(status, 422);
    let detail = owner.page(&format!("/members/{member_id}")).await;
    assert!(
        detail.contains("活动补发") && detail.contains("开卡赠送"),
        "{detail}"
    );

    let (status, bytes) = owner
        .get_bytes(&format!("/members/export?program_id={id}"))
        .await;
    assert_eq!(status, 200);
    let path = app.dir.join("members.xlsx");
    std::fs::write(&path, bytes).unwrap();
    let rows = common::xlsx_rows(&path);
    assert_eq!(rows[0][0], "会员号");
    assert_eq!(rows[1][0], number);
    assert_eq!(rows[1][8], "80");
}

async fn pays_and_refunds(app: &TestApp, mall: &Mall) {
    let top_up =
        json!({"customer_id": "u-1", "amount_fen": 10000, "bonus_fen": 1000, "recharge_id": "R1"});
    let topped = mall.post("/open/v1/recharges", top_up, "top-1").await;
    assert_eq!(
        (topped.status, topped.body["balance_after_fen"].as_i64()),
        (201, Some(11000)),
        "{}",
        topped.body
    );

    let pay =
        json!({"customer_id": "u-1", "amount_fen": 10000, "balance_fen": 2000, "order_id": "M1"});
    let paid = mall.post("/open/v1/payments", pay.clone(), "pay-1").await;
    assert_eq!(paid.status, 201, "{}", paid.body);
    assert_eq!(paid.body["discount_fen"], 500);
    assert_eq!(paid.body["cash_fen"], 7500);
    assert_eq!(paid.body["points_earned"], 95);
    assert_eq!(paid.body["tier"], 1);
    let replay = mall.post("/open/v1/payments", pay.clone(), "pay-1").await;
    assert!(replay.replayed);
    assert_eq!(replay.body, paid.body);
    let twice = mall.post("/open/v1/payments", pay, "pay-2").await;
    assert_eq!(
        (twice.status, twice.body["error"]["code"].as_str()),
        (409, Some("payment_exists"))
    );
    let greedy =
        json!({"customer_id": "u-1", "amount_fen": 1000, "use_points": 100000, "order_id": "M2"});
    let greedy = mall.post("/open/v1/payments", greedy, "pay-3").await;
    assert_eq!(
        (greedy.status, greedy.body["error"]["code"].as_str()),
        (422, Some("points_exceed_order"))
    );
    let stranger = json!({"customer_id": "nobody", "amount_fen": 1000, "order_id": "M3"});
    let stranger = mall.post("/open/v1/payments", stranger, "pay-4").await;
    assert_eq!(
        (stranger.status, stranger.body["error"]["code"].as_str()),
        (404, Some("not_a_member"))
    );

    let payment_id = paid.body["operation_id"].as_i64().unwrap();
    let refund = mall
        .post(
            &format!("/open/v1/payments/{payment_id}/refunds"),
            json!({"amount_fen": 9500, "reason": "退货"}),
            "refund-1",
        )
        .await;
    assert_eq!(refund.status, 201, "{}", refund.body);
    assert_eq!(
        (
            refund.body["balance_fen"].as_i64(),
            refund.body["points_earned"].as_i64()
        ),
        (Some(2000), Some(-95))
    );
    let over = mall
        .post(
            &format!("/open/v1/payments/{payment_id}/refunds"),
            json!({"amount_fen": 1}),
            "refund-2",
        )
        .await;
    assert_eq!(over.body["error"]["code"], "refund_exceeds_payment");

    let member = mall.send("GET", "/open/v1/members/u-1", None, None).await;
    assert_eq!(member.status, 200, "{}", member.body);
    assert_eq!(
        (
            member.body["points"].as_i64(),
            member.body["balance_fen"].as_i64()
        ),
        (Some(20), Some(11000))
    );
    assert_eq!(
        member.body["tier_name"], "金卡",
        "a refund does not lower the tier"
    );
    let points = mall
        .send("GET", "/open/v1/members/u-1/points-statement", None, None)
        .await;
    let kinds: Vec<_> = points.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["kind"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kinds, ["reverse_earn", "earn", "earn"]);
    let (violations, _) = (app.store.check_invariants().await.unwrap(), ());
    assert!(violations.is_empty(), "{violations:?}");
}

/// Uploads `bytes` as the program's `picture` through the staff API.
async fn upload_picture(owner: &Client, id: i64, picture: &str, bytes: &[u8]) -> (u16, Value) {
    owner
        .upload(
            &format!("/api/v1/member-programs/{id}/pictures/{picture}"),
            bytes,
        )
        .await
}

/// 卡面: a background picture and a logo, uploaded or given as addresses,
/// on the 开卡 page; an edit that leaves them out keeps them.
async fn card_face(app: TestApp) {
    let owner = app.client("owner").await;
    let (status, program) = owner
        .post(
            "/api/v1/member-programs",
            json!({"title": "果园会员卡", "brand_name": "果园"}),
        )
        .await;
    assert_eq!(status, 201, "{program}");
    let id = program["id"].as_i64().unwrap();
    assert_eq!(
        (
            program["logo_url"].as_str(),
            program["background_pic_url"].as_str()
        ),
        (Some(""), Some(""))
    );
    let (status, body) = upload_picture(&owner, id, "logo", b"<svg onload=alert(1)>").await;
    assert_eq!(status, 422, "not an image: {body}");
    let (status, _) = upload_picture(&owner, id, "banner", b"\x89PNG\r\n\x1a\n").await;
    assert_eq!(status, 404, "only logo and background");
    let background = upload_background(&app, &owner, id).await;
    addresses_and_edits(&owner, id, &background).await;
}

/// Uploads a background picture that customers fetch; its address.
async fn upload_background(app: &TestApp, owner: &Client, id: i64) -> String {
    let png = [&b"\x89PNG\r\n\x1a\n"[..], &[0u8; 64][..]].concat();
    let (status, body) = upload_picture(owner, id, "background", &png).await;
    assert_eq!(status, 200, "{body}");
    let background = body["background_pic_url"].as_str().unwrap().to_owned();
    assert!(
        background.starts_with(&format!("/m/member-card-pictures/{id}/background?v=")),
        "{background}"
    );
    // Customers fetch it without signing in.
    let served = reqwest::get(app.url(&background)).await.unwrap();
    assert_eq!(served.status(), 200);
    assert_eq!(served.headers()["content-type"], "image/png");
    assert_eq!(served.bytes().await.unwrap().as_ref(), &png[..]);

    background
}

/// A logo by address (a hostile one refused), the card's page, an edit
/// that keeps both pictures, and clearing them.
async fn addresses_and_edits(owner: &Client, id: i64, background: &str) {
    // An address for the logo; a hostile one is refused.
    let (status, refused) = owner
        .send(
            reqwest::Method::PUT,
            &format!("/api/v1/member-programs/{id}"),
            json!({"title": "果园会员卡", "logo_url": "javascript:alert(1)"}),
        )
        .await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (422, Some("invalid")),
        "{refused}"
    );
    let logo = "https://cdn.example.com/logo.png";
    let (status, saved) = owner
        .send(
            reqwest::Method::PUT,
            &format!("/api/v1/member-programs/{id}"),
            json!({"title": "果园会员卡", "brand_name": "果园", "logo_url": logo}),
        )
        .await;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(
        (
            saved["logo_url"].as_str(),
            saved["background_pic_url"].as_str()
        ),
        (Some(logo), Some(background))
    );
    // The card face on the card's page (the customer's pages draw it alike).
    let page = owner.page(&format!("/member-programs/{id}")).await;
    assert!(
        page.replace("&#x2f;", "/").contains(&format!(
            "src=\"{background}\" alt=\"\" id=\"member-card-background\""
        )),
        "{page}"
    );
    assert!(page.contains("id=\"member-card-logo\""), "{page}");
    // The console's edit form has no pictures: saving it keeps both.
    let response = owner
        .http
        .post(format!("{}/member-programs/{id}/edit", owner.base))
        .form(&program_form(&owner.csrf))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303, "{}", response.text().await.unwrap());
    let (_, kept) = owner.get(&format!("/api/v1/member-programs/{id}")).await;
    assert_eq!(kept["downgrade_on_refund"], true, "the form's 降级规则");
    assert!(owner
        .page(&format!("/member-programs/{id}"))
        .await
        .contains("退款使累计低于所在等级门槛时随之降级"));
    assert_eq!(
        (
            kept["logo_url"].as_str(),
            kept["background_pic_url"].as_str()
        ),
        (Some(logo), Some(background))
    );
    assert!(page.contains("id=\"logo-form\"") && page.contains("id=\"background-form\""));
    // Empty clears it.
    let (_, cleared) = owner
        .send(
            reqwest::Method::PUT,
            &format!("/api/v1/member-programs/{id}"),
            json!({"title": "果园会员卡", "logo_url": "", "background_pic_url": ""}),
        )
        .await;
    assert_eq!(
        (
            cleared["logo_url"].as_str(),
            cleared["background_pic_url"].as_str()
        ),
        (Some(""), Some(""))
    );
}
