//! The console in real headless Chromium: what a merchant's staff do.

mod common;

use common::browser::Browser;
use common::{Backend, TestApp, PASSWORD};
use kaquan_core::card::CardFilter;
use kaquan_core::store::Page;

async fn sign_in(browser: &Browser, app: &TestApp, username: &str) {
    browser.goto(&app.url("/login")).await;
    browser.type_into("#username", username).await;
    browser.type_into("#password", PASSWORD).await;
    browser.click("#login").await;
    common::browser::wait_until("the card list after sign-in", || async {
        browser
            .current_url()
            .await
            .ends_with("/cards")
            .then_some(())
    })
    .await;
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
    browser.wait_for_text("#message", "共 10 张卡").await;
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

    // 导出卡号和密码: the ten filtered cards with their passwords.
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
    use calamine::Reader;
    let mut workbook: calamine::Xlsx<_> = calamine::open_workbook(path).unwrap();
    let range = workbook.worksheet_range_at(0).unwrap().unwrap();
    range
        .rows()
        .map(|r| r.iter().map(|c| c.to_string()).collect())
        .collect()
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
        .goto(&app.url("/api/v1/cards/export?format=xlsx&with_secrets=true"))
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
