//! 朋友的券 end to end in headless Chromium at a phone's width: the
//! operator grants 100 free 券点; the merchant makes a 朋友的券 that gives
//! one of its own back on verification, uploads its cover, adds 400 units
//! of stock for 80 券点, starts it and downloads the claim QR (it decodes to
//! the claim link); customer A claims and shares; customer B opens the share
//! link and claims one; a verifier verifies A's coupon and A receives the
//! give-back coupon.

mod common;

use common::browser::{phone, set_value, Browser};
use common::{Backend, TestApp};
use serde_json::json;

/// The operator (the shop's owner) grants 100 free 券点 on 平台运营.
async fn operator_grants(app: &TestApp, owner: &Browser) {
    app.make_owner_operator().await;
    owner.sign_in(app, "owner").await;
    owner.goto(&app.url("/operator")).await;
    let m = app.merchant_id;
    owner.type_into(&format!("#grant-credits-{m}"), "100").await;
    owner
        .type_into(&format!("#grant-reason-{m}"), "开业活动")
        .await;
    owner.click(&format!("#grant-{m}")).await;
    owner.wait_for_text("#message", "赠送 100 免费券点").await;
    fits_a_phone(owner, "平台运营").await;
}

/// Nothing on the page scrolls sideways at a phone's width.
async fn fits_a_phone(browser: &Browser, what: &str) {
    let overflow = browser
        .execute(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
        )
        .await;
    let widest = browser
        .execute(
            "var w = document.documentElement.clientWidth; return Array.from(document.querySelectorAll('body *')).filter(function (e) { return e.getBoundingClientRect().right > w + 1; }).slice(0, 5).map(function (e) { return e.tagName + '#' + e.id + '.' + e.className; }).join(' ');",
        )
        .await;
    assert_eq!(
        overflow.as_i64(),
        Some(0),
        "{what} scrolls sideways: {widest}"
    );
}

/// The merchant's part: 制券, cover, 增加库存, 核销后返券, 开始投放, the QR;
/// returns the claim link.
async fn merchant_makes_the_shared_program(app: &TestApp, owner: &Browser) -> String {
    owner.goto(&app.url("/coupons/new")).await;
    owner.click("#shared").await;
    owner.type_into("#abstract-text", "进店立减 5 元").await;
    owner
        .type_into("#detail-text", "全场通用，每单限用一张。")
        .await;
    set_value(owner, "#kind", "cash").await;
    owner.type_into("#least-cost", "0").await;
    owner.type_into("#reduce-cost", "5").await;
    owner.type_into("#title", "5元代金券").await;
    owner.type_into("#brand-name", "果园").await;
    set_value(owner, "input[name=get_limit]", "2").await;
    let now = kaquan_web::now();
    set_value(owner, "#begin-date", &kaquan_core::clock::format_date(now)).await;
    let end = kaquan_core::clock::format_date(now + 30 * 86_400);
    set_value(owner, "#end-date", &end).await;
    owner
        .execute(
            "document.querySelector('input[name=can_use_with_other_discount]').checked = true;",
        )
        .await;
    owner.click("#save-program").await;
    owner.wait_for_text("#message", "已创建「5元代金券」").await;
    assert!(owner.exists("#cover-missing").await);
    // 核销后返券: one of its own (支持赠送相同的优惠券).
    let id = owner
        .execute("return location.pathname.split('/')[2];")
        .await
        .as_str()
        .unwrap()
        .to_owned();
    owner.goto(&app.url(&format!("/coupons/{id}/edit"))).await;
    set_value(owner, "#give-program", &id).await;
    owner.click("#save-program").await;
    owner.wait_for_text("#give-back", "核销后返券").await;

    let cover = common::temp_dir("cover").join("cover.png");
    std::fs::write(&cover, [&b"\x89PNG\r\n\x1a\n"[..], &[0u8; 64][..]].concat()).unwrap();
    owner
        .type_into("#cover-file", cover.to_str().unwrap())
        .await;
    owner.click("#cover-save").await;
    owner.wait_for_text("#message", "封面已更新").await;
    assert_eq!(owner.text("#unit-price").await, "0.2");
    owner.type_into("#stock-units", "400").await;
    owner.wait_for_text("#stock-cost", "80").await;
    owner.accept_confirms().await;
    owner.click("#stock-buy").await;
    owner
        .wait_for_text("#message", "已增加库存 400 张，消耗 80 券点")
        .await;
    assert_eq!(owner.text("#stock-credits").await, "20");
    fits_a_phone(owner, "the 朋友的券's page").await;
    owner.goto(&app.url("/credits")).await;
    owner.wait_for_text("#credit-lines", "兑换库存").await;
    assert_eq!(owner.text("#credits-free").await, "20");
    fits_a_phone(owner, "券点账户").await;
    owner.goto(&app.url(&format!("/coupons/{id}"))).await;
    owner.click("#move-active").await;
    owner.wait_for_text("#message", "投放中").await;
    let claim_url = owner.text("#claim-url").await;
    owner.click("#qr-png").await;
    let png = owner.wait_for_download("png").await;
    let bytes = common::browser::wait_until("the whole QR download", || async {
        std::fs::read(&png)
            .ok()
            .filter(|b| b.ends_with(b"IEND\xaeB`\x82"))
    })
    .await;
    assert_eq!(common::decode_qr_png(&bytes), claim_url);
    claim_url
}

/// Signs a customer up on a claim page and claims one.
async fn sign_up_and_claim(customer: &Browser, url: &str, phone_number: &str) {
    customer.goto(url).await;
    customer
        .wait_for_text("#coupon-benefit", "减5.00元，无门槛")
        .await;
    customer.type_into("#phone", phone_number).await;
    customer.type_into("#password", "abc12345").await;
    customer.click("#signup-button").await;
    customer.wait_for_text("#claim", "领取").await;
    customer.click("#claim").await;
    customer.wait_for_text("#claimed", "领取成功").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_coupon_is_bought_with_credits_shared_with_a_friend_and_gives_one_back() {
    let app = TestApp::start(Backend::Sqlite).await;
    app.client("owner")
        .await
        .put_giftcard_settings(json!({"phone_login": true}))
        .await;
    let owner = phone("shared-owner").await;
    operator_grants(&app, &owner).await;
    let claim_url = merchant_makes_the_shared_program(&app, &owner).await;

    let alice = phone("shared-alice").await;
    sign_up_and_claim(&alice, &claim_url, "13800001111").await;
    let code: String = alice
        .text("#code-text")
        .await
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    let share_link = alice.text("#share-link").await;
    assert!(share_link.contains("/shared/"), "{share_link}");

    let bob = phone("shared-bob").await;
    sign_up_and_claim(&bob, &share_link, "13800002222").await;
    bob.goto(&share_link).await;
    bob.wait_for_text("#shared-by", "分享给你一张券").await;
    assert!(bob.exists("#coupon-cover").await);
    assert_eq!(bob.text("#coupon-abstract").await, "进店立减 5 元");

    app.add_staff("desk", "verifier").await;
    let desk = phone("shared-desk").await;
    desk.sign_in(&app, "desk").await;
    desk.wait_for_text("h1", "核销").await;
    desk.type_into("#code", &format!("{code}\u{E007}")).await;
    desk.wait_for_text("#confirm", "确认核销").await;
    desk.click("#confirm").await;
    desk.wait_for_text("#verify-done", "核销成功").await;
    assert!(desk.text("#done-given").await.contains("5元代金券"));

    alice
        .goto(&app.url(&format!("/m/{}/wallet", app.merchant_id)))
        .await;
    alice.wait_for_text(".card", "5元代金券").await;
    let usable = alice
        .execute("return document.querySelectorAll('a[href*=\"/wallet/\"]').length;")
        .await;
    assert_eq!(usable.as_i64(), Some(1), "the coupon given back is usable");
    fits_a_phone(&alice, "我的卡券").await;
    let violations = app.store.check_invariants().await.unwrap();
    assert!(violations.is_empty(), "{violations:?}");
}
