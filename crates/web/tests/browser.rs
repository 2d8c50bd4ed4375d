//! The console in real headless Chromium: what a merchant's staff do.

mod common;

use common::browser::Browser;
use common::{Backend, TestApp, PASSWORD};
use kaquan_core::card::CardFilter;
use kaquan_core::store::Page;

async fn sign_in(browser: &Browser, app: &TestApp, username: &str) {
    browser.sign_in(app, username).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merchant_creates_activates_edits_and_exports_cards_in_the_console() {
    let app = TestApp::start(Backend::Sqlite).await;
    let downloads = common::temp_dir("downloads");
    let browser = Browser::start(1280, 900, &downloads).await;

    browser.goto(&app.url("/login")).await;
    browser.type_into("#username", "owner").await;
    browser.type_into("#password", "wrong-password1").await;
    browser.click("#login").await;
    browser
        .wait_for_text("#login-error", "账号或密码错误")
        .await;
    // Another site posting the sign-in form (login CSRF) signs nobody in.
    let forged = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(app.url("/login"))
        .form(&[("username", "owner"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 422);
    assert!(forged.text().await.unwrap().contains("页面已过期"));
    sign_in(&browser, &app, "owner").await;

    // 创建卡券: a weak password rule shows its warning before submitting.
    browser.goto(&app.url("/batches/new")).await;
    browser.type_into("#name", "588 卡").await;
    browser.type_into("#quantity", "30").await;
    browser.type_into("#prefix", "A588").await;
    browser.type_into("#password_length", "8").await;
    browser.execute("var s = document.getElementById('password_charset'); s.value = 'digits'; s.dispatchEvent(new Event('change'));").await;
    browser.wait_for_text("#strength", "低于建议的 40 位").await;
    browser
        .wait_for_text("#strength", "顺序生成的卡号可以被推算")
        .await;
    browser.click("#create").await;
    browser.wait_for_text("#batch-state", "已完成").await;
    browser.wait_for_text("#progress-text", "30 / 30").await;

    // 区间激活: serials 11–20.
    browser.goto(&app.url("/cards")).await;
    browser.type_into("#serial_from", "11").await;
    browser.type_into("#serial_to", "20").await;
    browser.click("#search").await;
    browser.wait_for_text("#total", "10").await;
    browser.accept_confirms().await;
    browser.click("#op-activate").await;
    browser.wait_for_text("#message", "激活：共 10 张卡").await;

    // 修改卡属性: only the remark of the same ten cards.
    browser.accept_confirms().await;
    browser
        .execute("document.querySelector('details').open = true;")
        .await;
    browser.click("#field_remark").await;
    browser.type_into("#new_remark", "中秋礼盒").await;
    browser.click("#edit-submit").await;
    // Its own message: the page before still says "激活：共 10 张卡".
    browser.wait_for_text("#message", "修改卡属性").await;
    let cards = app
        .store
        .list_cards(
            app.merchant_id,
            &CardFilter::default(),
            Page::new(None, Some(100)),
        )
        .await
        .unwrap();
    for card in &cards {
        let in_range = (11..=20).contains(&card.serial);
        assert_eq!(card.remark == "中秋礼盒", in_range, "card {}", card.serial);
        assert_eq!(
            card.state == kaquan_core::card::CardState::Active,
            in_range,
            "card {}",
            card.serial
        );
        assert_eq!(card.face_value_fen, None, "face value was not chosen");
    }

    browser.accept_confirms().await; // a loopback public URL makes 导出 ask first
    browser.click("#export-secrets").await;
    let file = browser.wait_for_download("xlsx").await;
    let rows = read_xlsx(&file);
    assert_eq!(rows[0][..3], ["卡序号", "卡号", "密码"]);
    assert_eq!(rows.len(), 11);
    let sealed = app
        .store
        .cards_after(app.merchant_id, &CardFilter::default(), 10, 10)
        .await
        .unwrap();
    let keys = app
        .master
        .merchant_keys(app.merchant_id, sealed[0].key_version);
    for (row, card) in rows[1..].iter().zip(&sealed) {
        assert_eq!(row[1], card.card.number);
        assert_eq!(
            Some(row[2].clone()),
            keys.open(&card.card.number, card.secret_sealed.as_ref().unwrap())
        );
        assert_eq!(row[2].len(), 8);
    }

    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    browser
        .screenshot(&shots.join("console-cards-desktop.png"))
        .await;
}

fn read_xlsx(path: &std::path::Path) -> Vec<Vec<String>> {
    common::xlsx_rows(path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_user_sees_cards_but_is_denied_every_change() {
    let app = TestApp::start(Backend::Sqlite).await;
    app.add_staff("viewer", "readonly").await;
    let downloads = common::temp_dir("downloads");
    let browser = Browser::start(390, 844, &downloads).await;
    sign_in(&browser, &app, "viewer").await;
    assert!(
        !browser.exists("#op-activate").await,
        "no bulk buttons without the permission"
    );
    assert!(!browser.exists("#export-secrets").await);
    assert!(!browser.exists("a[href='/staff']").await);
    browser.goto(&app.url("/batches/new")).await;
    browser.wait_for_text("#error", "没有权限").await;
    browser.goto(&app.url("/staff")).await;
    browser.wait_for_text("#error", "没有权限").await;
    browser
        .goto(&app.url("/api/v1/cards/export?format=xlsx&with_secrets=true&all=true"))
        .await;
    let body = browser.execute("return document.body.innerText;").await;
    assert!(body.as_str().unwrap().contains("forbidden"), "{body}");
    assert!(
        std::fs::read_dir(&downloads).unwrap().next().is_none(),
        "nothing was downloaded"
    );
    browser.goto(&app.url("/cards")).await;
    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    browser
        .screenshot(&shots.join("console-cards-phone.png"))
        .await;
}

/// An active batch linked to two goods (one with a picture); returns (numbers, passwords).
async fn pickup_fixture(app: &TestApp, n: i64) -> (Vec<String>, Vec<String>) {
    use kaquan_core::goods::{GoodsFields, GoodsLinkMode};
    let store = app.store.as_ref();
    let m = app.merchant_id;
    let apple = store
        .create_goods(
            m,
            &GoodsFields::new("苹果礼盒", "烟台红富士 5 斤", "", "", "", true).unwrap(),
            0,
        )
        .await
        .unwrap();
    let peach = store
        .create_goods(
            m,
            &GoodsFields::new("桃子礼盒", "", "", "", "", true).unwrap(),
            0,
        )
        .await
        .unwrap();
    let png = kaquan_web::exports::qr_png(&qrcode::QrCode::new(b"apple").unwrap(), 4);
    store
        .add_goods_image(m, apple.id, "image/png", &png, 0)
        .await
        .unwrap();
    let spec = kaquan_core::batch::BatchSpec::new(kaquan_core::batch::BatchFields {
        quantity: n,
        face_value_fen: Some(38800),
        password_charset: Some(kaquan_core::batch::PasswordCharset::Digits),
        password_length: Some(10),
        ..Default::default()
    })
    .unwrap();
    let batch = kaquan_core::batch::usecases::start_generated_batch(store, m, &spec, "test", 0)
        .await
        .unwrap();
    let audit = kaquan_core::audit::AuditEntry {
        merchant_id: m,
        actor: kaquan_core::audit::Actor::cli(),
        action: "generate_batch".into(),
        target: String::new(),
        detail: String::new(),
        n_affected: 0,
        created_at: 0,
    };
    let progress = std::sync::Arc::new(kaquan_core::batch::usecases::BatchProgress::default());
    kaquan_core::batch::usecases::fill_generated_batch(
        store,
        &app.master,
        &batch,
        &spec,
        audit.clone(),
        progress,
        0,
    )
    .await
    .unwrap();
    store
        .link_card_goods(
            m,
            &CardFilter::default(),
            &[apple.id, peach.id],
            GoodsLinkMode::Replace,
            &audit,
        )
        .await
        .unwrap();
    store
        .apply_card_op(
            m,
            &CardFilter::default(),
            kaquan_core::card::CardOp::Activate,
            &audit,
        )
        .await
        .unwrap();
    let rows = store
        .cards_after(m, &CardFilter::default(), 0, 100)
        .await
        .unwrap();
    let keys = app.master.merchant_keys(m, rows[0].key_version);
    let numbers = rows.iter().map(|r| r.card.number.clone()).collect();
    let passwords = rows
        .iter()
        .map(|r| {
            keys.open(&r.card.number, r.secret_sealed.as_ref().unwrap())
                .unwrap()
        })
        .collect();
    (numbers, passwords)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_on_a_phone_picks_up_from_the_qr_link_and_looks_up_the_order() {
    let app = TestApp::start(Backend::Sqlite).await;
    let (numbers, passwords) = pickup_fixture(&app, 2).await;
    let browser = Browser::start(390, 844, &common::temp_dir("downloads")).await;
    let m = app.merchant_id;
    // The QR code's link: the number is filled in, only the password to type.
    browser
        .goto(&kaquan_web::exports::qr_content(&app.base, m, &numbers[0]))
        .await;
    let filled = browser
        .execute("return document.getElementById('number').value;")
        .await;
    assert_eq!(filled.as_str(), Some(numbers[0].as_str()));
    browser.type_into("#password", &passwords[0]).await;
    browser.click("#check").await;
    browser.wait_for_text("#face-value", "388.00").await;
    assert!(browser.exists("img").await, "goods pictures are shown");
    browser.click("input[name=goods_id]").await;
    browser.type_into("#consignee", "张三").await;
    browser.type_into("#phone", "13800001234").await;
    browser.choose_region("浙江省", "杭州市", "西湖区").await;
    browser.type_into("#address", "文三路 100 号").await;
    browser
        .execute("document.getElementById('appointment_date').value = '2099-01-05';")
        .await;
    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    browser
        .screenshot(&shots.join("pickup-phone-form.png"))
        .await;
    browser.click("#confirm").await;
    browser.wait_for_text("#pickup-done", "提货成功").await;
    // Later: the order's status with number + password.
    browser.goto(&app.url(&format!("/m/{m}/orders"))).await;
    browser.type_into("#number", &numbers[0]).await;
    browser.type_into("#password", &passwords[0]).await;
    browser.click("#lookup").await;
    browser.wait_for_text("#order-status", "待发货").await;
    // Wrong passwords on another card, then the lockout message.
    browser
        .goto(&app.url(&format!("/m/{m}/redeem?number={}", numbers[1])))
        .await;
    for _ in 0..5 {
        browser.type_into("#password", "0000000000").await;
        browser.click("#check").await;
        browser
            .wait_for_text("#pickup-error", kaquan_web::pickup::REFUSED_MESSAGE)
            .await;
        browser.type_into("#number", &numbers[1]).await;
    }
    browser.type_into("#password", &passwords[1]).await;
    browser.click("#check").await;
    browser.wait_for_text("#pickup-error", "尝试次数过多").await;
    browser
        .screenshot(&shots.join("pickup-phone-locked.png"))
        .await;
}

/// 电话提货 at the desk: the clerk types the caller's card and address.
async fn phone_pickup(browser: &Browser, app: &TestApp, number: &str, password: &str) {
    browser.goto(&app.url("/pickup/phone")).await;
    browser.type_into("#number", number).await;
    browser.type_into("#password", password).await;
    browser.click("#check").await;
    browser.click("input[name=goods_id]").await;
    for (field, value) in [
        ("#consignee", "李四"),
        ("#phone", "13900000000"),
        ("#address", "中山路 1 号"),
    ] {
        browser.type_into(field, value).await;
    }
    browser.choose_region("江苏省", "南京市", "玄武区").await;
    browser
        .execute(
            "var d = document.getElementById('appointment_date'); if (d) d.value = '2099-01-05';",
        )
        .await;
    browser.click("#confirm").await;
    browser
        .wait_for_text("#pickup-done", "已进入待发订单")
        .await;
}

/// The ids of the merchant's pending orders.
async fn pending_orders(app: &TestApp) -> Vec<i64> {
    let (orders, _) = app
        .store
        .list_orders(app.merchant_id, &Default::default(), Default::default())
        .await
        .unwrap();
    orders
        .iter()
        .filter(|o| o.status == kaquan_core::pickup::OrderStatus::Pending)
        .map(|o| o.id)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_hand_over_in_store_and_ship_orders_inline_and_from_a_file() {
    let app = TestApp::start(Backend::Sqlite).await;
    let (numbers, passwords) = pickup_fixture(&app, 4).await;
    let downloads = common::temp_dir("downloads");
    let browser = Browser::start(1280, 900, &downloads).await;
    sign_in(&browser, &app, "owner").await;
    // 到店提货.
    browser.goto(&app.url("/pickup/store")).await;
    browser.type_into("#number", &numbers[0]).await;
    browser.type_into("#password", &passwords[0]).await;
    browser.click("#check").await;
    browser.click("input[name=goods_id]").await;
    browser.click("#confirm").await;
    browser.wait_for_text("#pickup-done", "已提货").await;
    // Two phone pickups join the queue.
    for idx in 1..=2 {
        phone_pickup(&browser, &app, &numbers[idx], &passwords[idx]).await;
    }
    let pending = pending_orders(&app).await;
    assert_eq!(pending.len(), 2);
    // Inline: type the tracking number straight into the list and press Enter.
    browser.goto(&app.url("/orders?status=pending")).await;
    browser
        .type_into(&format!("#tracking-{}", pending[0]), "SF1234567890\u{E007}")
        .await;
    browser.wait_for_text("#message", "已发货").await;
    // A file with one bad row ships nothing and names the row.
    let file = downloads.join("ship.csv");
    std::fs::write(
        &file,
        format!("订单号,物流公司,运单号\n{},顺丰速运,SF99\n", pending[1]),
    )
    .unwrap();
    browser.goto(&app.url("/orders?status=pending")).await;
    browser.click("#bulk summary").await;
    browser
        .type_into("#ship-file", file.to_str().unwrap())
        .await;
    browser.click("#ship-import").await;
    browser.wait_for_text("#row-errors", "运单号").await;
    let order = app
        .store
        .get_order(app.merchant_id, pending[1])
        .await
        .unwrap();
    assert_eq!(
        order.status,
        kaquan_core::pickup::OrderStatus::Pending,
        "nothing shipped"
    );
    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    browser.screenshot(&shots.join("orders-desktop.png")).await;
}

/// A customer on a phone: signed in by the mall's login link, redeems a
/// gift-card code (filled in from a scanned QR link), sees the statement, and
/// finds the used code struck through in their order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_redeems_a_code_in_the_exchange_centre_on_a_phone() {
    use serde_json::json;
    let app = TestApp::start(Backend::Sqlite).await;
    let m = app.merchant_id;
    let owner = app.client("owner").await;
    let mall = common::Mall::new(&app).await;
    let (_, product) = owner
        .giftcard_product("200元电子礼品卡", 20000, 19000)
        .await;
    let codes = mall
        .order_codes("M-77", &product, 2, Some("shopper-9"))
        .await;
    let code = codes[0].clone();
    let link = mall
        .post(
            "/open/v1/login-links",
            json!({"customer_id": "shopper-9"}),
            "link",
        )
        .await;
    let url = link.body["url"].as_str().unwrap().to_owned();

    let browser = Browser::start(390, 844, &common::temp_dir("downloads")).await;
    browser.goto(&url).await;
    browser.wait_for_text("#balance", "¥0.00").await;
    assert!(browser
        .current_url()
        .await
        .ends_with(&format!("/m/{m}/exchange")));
    // Scanning the card's QR code opens the centre with the code filled in.
    browser
        .goto(&app.url(&format!("/m/{m}/exchange#code={code}")))
        .await;
    let filled = browser
        .execute("return document.getElementById('code').value;")
        .await;
    assert_eq!(filled.as_str(), Some(code.as_str()));
    browser.click("#redeem-button").await;
    browser.wait_for_text("#redeem-done", "兑换成功").await;
    browser.wait_for_text("#balance", "¥200.00").await;
    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    browser
        .screenshot(&shots.join("exchange-phone-redeemed.png"))
        .await;
    // Redeeming it again is refused with the one message.
    browser.type_into("#code", &code).await;
    browser.click("#redeem-button").await;
    browser
        .wait_for_text("#redeem-error", "兑换码无效或已被使用")
        .await;
    browser.click("#statement-link").await;
    browser.wait_for_text("#statement", "+200.00").await;
    browser.wait_for_text("#statement", "兑换「").await;
    browser
        .goto(&app.url(&format!("/m/{m}/exchange/orders")))
        .await;
    browser.wait_for_text("del.code.used", &code).await;
    let unused = browser.text("code.code.unused").await;
    assert_eq!(unused, codes[1]);
    let struck = browser
        .execute(
            "return getComputedStyle(document.querySelector('del.code.used')).textDecorationLine;",
        )
        .await;
    assert_eq!(struck.as_str(), Some("line-through"));
    let overflow = browser
        .execute(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
        )
        .await;
    assert!(
        overflow.as_i64().unwrap() <= 0,
        "no sideways scrolling on a phone"
    );
    browser
        .screenshot(&shots.join("exchange-phone-orders.png"))
        .await;
}

/// Every console page at phone width (390 px): nothing makes the page
/// scroll sideways (wide tables scroll inside their own frame), so staff
/// can work from a phone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_console_page_fits_a_phone() {
    use serde_json::json;
    let app = TestApp::start(Backend::Sqlite).await;
    pickup_fixture(&app, 3).await;
    let owner = app.client("owner").await;
    let mall = common::Mall::new(&app).await;
    let (_, offline) = owner
        .post(
            "/api/v1/code-templates",
            json!({"kind": "offline", "name": "100元线下兑换码", "face_value_fen": 10000, "quantity": 5}),
        )
        .await;
    let (online, product) = owner
        .giftcard_product("200元电子礼品卡", 20000, 19000)
        .await;
    let code = mall
        .order_codes("M-1", &product, 1, Some("shopper-1"))
        .await
        .remove(0);
    let redeemed = mall
        .post(
            "/open/v1/redemptions",
            json!({"customer_id": "shopper-1", "code": code}),
            "redeem-1",
        )
        .await;
    assert_eq!(redeemed.status, 201, "{}", redeemed.body);
    let (_, customers) = owner.get("/api/v1/customers").await;
    let customer_id = customers["items"][0]["id"].as_i64().unwrap();
    let batch_id = app
        .store
        .list_batches(app.merchant_id, Page::new(None, None))
        .await
        .unwrap()
        .0[0]
        .id;

    let browser = Browser::start(390, 844, &common::temp_dir("downloads")).await;
    sign_in(&browser, &app, "owner").await;
    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let pages = [
        "/cards".to_owned(),
        "/cards/import".into(),
        "/batches".into(),
        "/batches/new".into(),
        format!("/batches/{batch_id}"),
        "/goods".into(),
        "/orders".into(),
        "/settings/pickup".into(),
        "/pickup/store".into(),
        "/giftcards/settings".into(),
        "/giftcards/codes".into(),
        format!("/giftcards/codes/{}", offline["id"]),
        format!("/giftcards/codes/{}", online["id"]),
        "/giftcards/products".into(),
        "/customers".into(),
        format!("/customers/{customer_id}"),
        "/settings/api-keys".into(),
        "/settings/webhooks".into(),
        "/settings/sms".into(),
        "/settings/erp".into(),
        "/settings/waybill".into(),
        "/card-sales".into(),
        "/distributors".into(),
        "/staff".into(),
        "/audit".into(),
    ];
    let mut too_wide = Vec::new();
    for path in &pages {
        browser.goto(&app.url(path)).await;
        assert!(browser.exists("main").await, "{path} shows a console page");
        let overflow = browser
            .execute("return document.documentElement.scrollWidth - document.documentElement.clientWidth;")
            .await
            .as_i64()
            .unwrap();
        let name = path.trim_start_matches('/').replace('/', "-");
        browser
            .screenshot(&shots.join(format!("phone-{name}.png")))
            .await;
        if overflow > 0 {
            too_wide.push(format!("{path}: {overflow} px"));
        }
    }
    assert!(
        too_wide.is_empty(),
        "pages wider than a phone: {too_wide:?}"
    );
}

/// 线下兑换码 in the console: the merchant fills in name, face value and
/// quantity, and the list they come back to says how many codes were made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merchant_adds_offline_codes_and_is_told_how_many() {
    let app = TestApp::start(Backend::Sqlite).await;
    let browser = Browser::start(390, 844, &common::temp_dir("downloads")).await;
    sign_in(&browser, &app, "owner").await;
    // On a phone the menu is a drawer behind ☰.
    browser.click("#menu-toggle").await;
    browser
        .click("a[href='/giftcards/codes?kind=offline']")
        .await;
    browser.type_into("#template-name", "门店活动券").await;
    browser.type_into("#face-value", "10").await;
    browser.type_into("#quantity", "200").await;
    browser.click("#add-template-button").await;
    browser
        .wait_for_text("#message", "已添加「门店活动券」，共 200 个兑换码")
        .await;
    browser.wait_for_text("#templates", "门店活动券").await;
    assert!(browser
        .current_url()
        .await
        .contains("/giftcards/codes?kind=offline&msg="));
}

/// Fills the exchange centre's phone form and presses `button`.
async fn phone_form(browser: &Browser, phone: &str, password: &str, button: &str) {
    browser.type_into("#phone", phone).await;
    browser.type_into("#password", password).await;
    browser.click(button).await;
}

/// A customer of a shop that allows phone sign-in, on a phone: signs up,
/// redeems a code, signs out, mistypes the password and stays on the
/// centre with the error and the phone kept, then signs in again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_signs_up_with_a_phone_number_and_redeems() {
    use serde_json::json;
    let app = TestApp::start(Backend::Sqlite).await;
    let m = app.merchant_id;
    let owner = app.client("owner").await;
    owner
        .put_giftcard_settings(json!({"phone_login": true}))
        .await;
    let mall = common::Mall::new(&app).await;
    let (_, product) = owner.giftcard_product("50元电子礼品卡", 5000, 5000).await;
    let code = mall.order_codes("M-5", &product, 1, None).await.remove(0);

    let browser = Browser::start(390, 844, &common::temp_dir("downloads")).await;
    let centre = app.url(&format!("/m/{m}/exchange"));
    browser.goto(&centre).await;
    phone_form(&browser, "13800138000", "short", "#signup-button").await;
    browser
        .wait_for_text("#redeem-error", "密码至少 8 位")
        .await;
    assert_eq!(
        browser
            .execute("return document.getElementById('phone').value;")
            .await,
        "13800138000"
    );
    phone_form(&browser, "13800138000", "gift2026card", "#signup-button").await;
    browser.wait_for_text("#balance", "¥0.00").await;
    browser.type_into("#code", &code).await;
    browser.click("#redeem-button").await;
    browser.wait_for_text("#redeem-done", "兑换成功").await;
    browser.wait_for_text("#balance", "¥50.00").await;

    browser
        .click("form[action$='/exchange/logout'] button")
        .await;
    browser.wait_for_text("#signin-form", "注册并登录").await;
    phone_form(&browser, "13800138000", "wrong2026card", "#signin-button").await;
    browser
        .wait_for_text("#redeem-error", "手机号或密码错误")
        .await;
    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    browser
        .screenshot(&shots.join("exchange-phone-wrong-password.png"))
        .await;
    phone_form(&browser, "13800138000", "gift2026card", "#signin-button").await;
    browser.wait_for_text("#balance", "¥50.00").await;
    assert_eq!(browser.current_url().await, centre);
    // Signing up again with the same phone says to sign in instead.
    browser
        .click("form[action$='/exchange/logout'] button")
        .await;
    phone_form(&browser, "13800138000", "other2026card", "#signup-button").await;
    browser
        .wait_for_text("#redeem-error", "该手机号已注册，请直接登录")
        .await;
    // Another site posting the form (login CSRF) signs nobody in, even with
    // the right password: it has no token matching the Strict cookie.
    let forged = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(app.url(&format!("/m/{m}/exchange/signin")))
        .header("cookie", "kaquan_form=forged")
        .form(&[
            ("phone", "13800138000"),
            ("password", "gift2026card"),
            ("form_token", "other"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 422);
    assert!(forged
        .headers()
        .get_all("set-cookie")
        .iter()
        .all(|c| !c.to_str().unwrap().starts_with("kaquan_customer=")));
    assert!(forged.text().await.unwrap().contains("页面已过期"));
    // A spoilt login link says to go back to the mall, and offers no console.
    browser
        .goto(&app.url(&format!("/m/{m}/exchange/login?token=spoilt")))
        .await;
    browser.wait_for_text("#error", "请回到商城重新进入").await;
    assert!(!browser.exists("#console-link").await);
}

/// 礼品卡设置 in the console: the merchant names the centre, sets the share
/// title and uploads the page banner and share picture; the customer's
/// exchange centre shows the banner and carries the share card.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merchant_sets_up_the_exchange_centre_with_pictures() {
    let app = TestApp::start(Backend::Sqlite).await;
    let m = app.merchant_id;
    let downloads = common::temp_dir("downloads");
    let browser = Browser::start(390, 844, &downloads).await;
    sign_in(&browser, &app, "owner").await;
    browser.goto(&app.url("/giftcards/settings")).await;
    browser.type_into("#centre_name", "好礼兑换").await;
    browser.type_into("#share_title", "送你一份心意").await;
    browser
        .type_into("#description", "兑换后金额存入余额，可在商城抵扣。")
        .await;
    browser.click("#save-settings").await;
    browser.wait_for_text("#message", "已保存").await;
    let png = kaquan_web::exports::qr_png(&qrcode::QrCode::new(b"banner").unwrap(), 4);
    let picture = downloads.join("banner.png");
    std::fs::write(&picture, &png).unwrap();
    for (slot, label) in [("banner", "礼品卡页顶部图片"), ("share", "分享图片")] {
        browser
            .type_into(&format!("#file-{slot}"), picture.to_str().unwrap())
            .await;
        browser
            .click(&format!("#image-{slot} button[type=submit]"))
            .await;
        browser
            .wait_for_text("#message", &format!("{label}已更新"))
            .await;
        assert!(browser.exists(&format!("#picture-{slot}")).await);
    }
    // Not a picture: refused with a reason, nothing replaced.
    let text = downloads.join("notes.png");
    std::fs::write(&text, "not a picture").unwrap();
    browser
        .type_into("#file-cover", text.to_str().unwrap())
        .await;
    browser.click("#image-cover button[type=submit]").await;
    browser.wait_for_text("#form-error", "图片").await;

    browser.goto(&app.url(&format!("/m/{m}/exchange"))).await;
    browser.wait_for_text("#centre-name", "好礼兑换").await;
    browser.wait_for_text("#description", "可在商城抵扣").await;
    let shown = browser
        .execute(
            "var i = document.querySelector('img'); return i && i.complete && i.naturalWidth > 0;",
        )
        .await;
    assert_eq!(shown.as_bool(), Some(true), "the banner shows");
    let share = browser
        .execute("return document.querySelector('meta[property=\"og:image\"]').content;")
        .await;
    assert!(share
        .as_str()
        .unwrap()
        .starts_with(&app.url(&format!("/m/{m}/giftcard-images/share?v="))));
    let title = browser
        .execute("return document.querySelector('meta[property=\"og:title\"]').content;")
        .await;
    assert_eq!(title.as_str(), Some("送你一份心意"));
}

/// 开放接口 links to the API reference, which reads on a phone without
/// scrolling sideways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_reference_is_one_click_from_the_keys_page_and_fits_a_phone() {
    let app = TestApp::start(Backend::Sqlite).await;
    let browser = Browser::start(390, 844, &common::temp_dir("downloads")).await;
    sign_in(&browser, &app, "owner").await;
    browser.goto(&app.url("/settings/api-keys")).await;
    browser.click("#api-reference-link").await;
    browser.wait_for_text("h1", "API 参考").await;
    assert!(browser.exists("#create_redemption").await);
    assert!(browser.exists("#schema-RedeemRequest").await);
    let overflow = browser
        .execute(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
        )
        .await;
    assert!(overflow.as_i64().unwrap() <= 0, "sideways by {overflow}px");
    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    browser
        .screenshot(&shots.join("api-reference-phone.png"))
        .await;
}

/// 开放接口 → 事件推送 and 通知设置 on a phone: the owner adds an endpoint
/// for shipped orders and turns on switch C, ships an order, and finds the
/// webhook delivery with its attempt and the text in the SMS log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merchant_adds_a_webhook_endpoint_and_sees_a_shipped_order_delivered() {
    let app = TestApp::start(Backend::Sqlite).await;
    let (numbers, passwords) = pickup_fixture(&app, 1).await;
    let (receiver, url) = common::receiver::Receiver::start(&[]).await;
    let browser = Browser::start(390, 844, &common::temp_dir("downloads")).await;
    sign_in(&browser, &app, "owner").await;
    browser.goto(&app.url("/settings/webhooks")).await;
    browser.type_into("#endpoint-url", &url).await;
    browser
        .click("input[name=event_type][value='pickup_order.shipped']")
        .await;
    browser.click("#create-endpoint").await;
    browser.wait_for_text("#created-secret", "whsec_").await;
    // 通知设置: switch C texts the customer when the order ships.
    browser.goto(&app.url("/settings/sms")).await;
    for (field, value) in [
        ("#sms-key-id", common::providers::ACCESS_KEY_ID),
        ("#sms-key-secret", common::providers::ACCESS_KEY_SECRET),
        ("#sms-sign", common::providers::SIGN_NAME),
        ("#sms-template-c", "SMS_1003"),
    ] {
        browser.type_into(field, value).await;
    }
    browser.click("#sms-switch-c").await;
    browser.click("#save-sms").await;
    browser.wait_for_text("#message", "通知设置已保存").await;
    phone_pickup(&browser, &app, &numbers[0], &passwords[0]).await;
    let order_id = pending_orders(&app).await[0];
    browser.goto(&app.url("/orders?status=pending")).await;
    browser
        .type_into(&format!("#tracking-{order_id}"), "SF1234567890\u{E007}")
        .await;
    browser.wait_for_text("#message", "已发货").await;
    let seen = receiver.wait_for(1).await;
    let body: serde_json::Value = serde_json::from_slice(&seen[0].1).unwrap();
    assert_eq!(body["type"], "pickup_order.shipped");
    assert_eq!(body["data"]["tracking_number"], "SF1234567890");
    common::browser::wait_until("the delivery shown as delivered", || async {
        browser.goto(&app.url("/settings/webhooks")).await;
        browser
            .exists("#deliveries tr[data-state=delivered]")
            .await
            .then_some(())
    })
    .await;
    browser
        .click("#deliveries tr[data-state=delivered] a")
        .await;
    browser.wait_for_text("#delivery-state", "已送达").await;
    browser.wait_for_text("#attempts", "200").await;
    browser
        .wait_for_text("#delivery-body", "SF1234567890")
        .await;
    let overflow = browser
        .execute(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
        )
        .await;
    assert_eq!(overflow, 0, "the delivery page fits a phone");
    // The text went to the customer's phone, and the log says so.
    common::browser::wait_until("the text shown as sent", || async {
        browser.goto(&app.url("/settings/sms")).await;
        browser
            .exists("#sms-messages tr[data-state=sent]")
            .await
            .then_some(())
    })
    .await;
    browser
        .wait_for_text("#sms-messages", "C 订单发货，通知顾客")
        .await;
    let sent = app.providers.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].params["number"], "SF1234567890");
}
