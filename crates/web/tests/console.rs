//! The console as each role meets it on the first day, in headless Chromium
//! at a laptop's width (1366 px) and a phone's (390 px): where each role
//! lands, the menu it sees, errors inside the frame, 概况 and 提货前台.

mod common;

use common::browser::Browser;
use common::{Backend, TestApp};

const LAPTOP: (u32, u32) = (1366, 900);
const DESK: (u32, u32) = (1280, 800);
const PHONE: (u32, u32) = (390, 844);

async fn browser(size: (u32, u32)) -> Browser {
    Browser::start(size.0, size.1, &common::temp_dir("downloads")).await
}

/// The menu's entries, as labels and addresses.
async fn menu(browser: &Browser) -> Vec<(String, String)> {
    let entries = browser
        .execute("return Array.from(document.querySelectorAll('.sidebar a')).map(a => [a.textContent.trim(), a.getAttribute('href')]);")
        .await;
    serde_json::from_value(entries).unwrap()
}

async fn sign_out(browser: &Browser) {
    browser.click("#logout").await;
    browser.wait_for_text("h1", "登录").await;
}

async fn path(browser: &Browser) -> String {
    let url = browser.current_url().await;
    url.splitn(4, '/')
        .nth(3)
        .map(|p| format!("/{p}"))
        .unwrap_or_default()
}

/// A box's `[left, top, right, bottom]` in the viewport.
async fn rect(browser: &Browser, css: &str) -> [f64; 4] {
    let r = browser
        .execute(&format!("var r = document.querySelector('{css}').getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom];"))
        .await;
    serde_json::from_value(r).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_role_lands_on_its_work_and_every_menu_entry_opens() {
    let app = TestApp::start(Backend::Sqlite).await;
    app.add_staff("clerk", "order_clerk").await;
    app.add_staff("desk", "verifier").await;
    let browser = browser(LAPTOP).await;

    // The owner lands on 概况; nothing of 三步上手 is done on a new shop.
    browser.sign_in(&app, "owner").await;
    assert_eq!(path(&browser).await, "/");
    browser.wait_for_text("#steps", "三步上手").await;
    let done = browser
        .execute("return document.querySelectorAll('#steps li.done').length;")
        .await;
    assert_eq!(done, 0);
    // One line of header at a laptop's width, the menu beside the page.
    let header = rect(&browser, "header").await;
    assert!(header[3] - header[1] <= 56.0, "header {header:?}");
    assert!(rect(&browser, ".sidebar").await[0] >= 0.0);
    let owner_menu = menu(&browser).await;
    for group in [
        "卡券管理",
        "提货管理",
        "订单发货",
        "核销台",
        "优惠券",
        "会员卡",
        "电子卡密",
        "营销·礼品卡",
        "通知与推送",
        "系统设置",
    ] {
        assert!(browser.text(".sidebar").await.contains(group), "{group}");
    }
    for (label, href) in &owner_menu {
        browser.goto(&app.url(href)).await;
        assert!(
            !browser.exists("#error").await,
            "{label} ({href}) opens without an error"
        );
        let active = browser.text(".sidebar a.active").await;
        assert_eq!(&active, label, "{href} marks its own entry");
    }
    // 全局设置 opens on its first tab, with every tab of the settings.
    browser.goto(&app.url("/settings")).await;
    assert_eq!(path(&browser).await, "/settings/pickup");
    let tabs = browser.text(".tabs").await;
    for tab in ["提货设置", "物流配置", "通知设置", "开放接口"] {
        assert!(tabs.contains(tab), "{tab} in {tabs}");
    }
    // An error keeps the frame: an unknown page still has the menu and 退出.
    browser.goto(&app.url("/cards/no-such-page")).await;
    assert!(browser.exists("#error").await);
    assert!(browser.exists(".sidebar").await && browser.exists("#logout").await);
    sign_out(&browser).await;

    // The order clerk lands on 待发 orders and sees no staff pages.
    browser.sign_in(&app, "clerk").await;
    assert_eq!(path(&browser).await, "/orders?status=pending");
    let clerk_menu: Vec<_> = menu(&browser).await.into_iter().map(|(l, _)| l).collect();
    assert!(clerk_menu.contains(&"订单列表".to_owned()));
    for hidden in ["管理员", "操作日志", "创建卡券", "开放接口"] {
        assert!(
            !clerk_menu.contains(&hidden.to_owned()),
            "{hidden} hidden from the clerk"
        );
    }
    // A page the role may not open says so, inside the menu.
    browser.goto(&app.url("/staff")).await;
    browser.wait_for_text("h1", "没有权限").await;
    assert!(browser.exists(".sidebar").await && browser.exists("#logout").await);
    sign_out(&browser).await;

    // The verifier lands on 核销 with the desk's menu.
    browser.sign_in(&app, "desk").await;
    assert_eq!(path(&browser).await, "/verify");
    let desk_menu: Vec<_> = menu(&browser).await.into_iter().map(|(l, _)| l).collect();
    assert_eq!(
        desk_menu,
        ["概况", "提货前台", "到店提货", "电话提货", "核销"]
    );
    browser.goto(&app.url("/")).await;
    assert_eq!(path(&browser).await, "/verify", "the desk's home is 核销");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_phone_the_menu_is_a_drawer_with_tappable_entries() {
    let app = TestApp::start(Backend::Sqlite).await;
    app.add_staff("desk", "verifier").await;
    let browser = browser(PHONE).await;
    browser.sign_in(&app, "desk").await;
    let header = rect(&browser, "header").await;
    assert!(
        header[3] - header[1] <= 56.0,
        "one short header line: {header:?}"
    );
    assert!(
        rect(&browser, ".sidebar").await[2] <= 0.0,
        "the drawer starts closed"
    );
    let toggle = rect(&browser, "#menu-toggle").await;
    assert!(
        toggle[2] - toggle[0] >= 44.0 && toggle[3] - toggle[1] >= 44.0,
        "{toggle:?}"
    );
    browser.click("#menu-toggle").await;
    common::browser::wait_until("the drawer to open", || async {
        (rect(&browser, ".sidebar").await[0] >= 0.0).then_some(())
    })
    .await;
    let heights = browser
        .execute("return Array.from(document.querySelectorAll('.sidebar a')).map(a => a.getBoundingClientRect().height);")
        .await;
    for height in heights.as_array().unwrap() {
        assert!(height.as_f64().unwrap() >= 44.0, "tap target {height}");
    }
    browser.click(".sidebar a[href='/pickup/phone']").await;
    browser.wait_for_text("h1", "电话提货").await;
    let overflow = browser
        .execute(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
        )
        .await;
    assert_eq!(overflow, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overview_counts_the_day_and_ticks_the_first_steps() {
    let app = TestApp::start(Backend::Sqlite).await;
    let owner = app.client("owner").await;
    // Goods entered, a batch made and exported: two of the three steps.
    let cards = common::pickup_cards(&app, 3).await;
    let number = cards.0[0].clone();
    common::h5_orders(&app, &owner, cards).await;
    let browser = browser(DESK).await;
    browser.sign_in(&app, "owner").await;
    let done = browser
        .execute("return document.querySelectorAll('#steps li.done').length;")
        .await;
    assert_eq!(done, 2);
    assert!(browser.text("#tile-pending").await.starts_with('3'));
    assert!(browser
        .text("#figure-pickups_placed")
        .await
        .starts_with('3'));
    assert!(browser.text("#tile-overdue").await.starts_with('0'));
    // Every chart is well-formed SVG (the browser's own XML parser reads
    // it), and its last column, today, is the figure.
    let charts = browser
        .execute(
            "return Array.from(document.querySelectorAll('#figures svg')).map(s => {
               var doc = new DOMParser().parseFromString(s.outerHTML, 'image/svg+xml');
               var bars = Array.from(doc.querySelectorAll('rect.bar')).map(b => +b.getAttribute('data-value'));
               return [doc.getElementsByTagName('parsererror').length, bars.length, bars[bars.length - 1],
                       +s.closest('.tile').getAttribute('data-total')];
             });",
        )
        .await;
    let charts: Vec<[i64; 4]> = serde_json::from_value(charts).unwrap();
    assert!(charts.len() >= 8, "{charts:?}");
    for [errors, n_bars, today, total] in charts {
        assert_eq!((errors, n_bars, today), (0, 7, total));
    }
    browser.click("#tile-pending").await;
    browser.wait_for_text("h1", "订单").await;
    // The header's search box opens the one card it finds.
    browser.type_into("#search-q", &format!("{number}\n")).await;
    browser.wait_for_text("h1", &number).await;

    // On a phone: the same figures and charts, nothing wider than the
    // screen, and the page switches to English from the header.
    let phone = self::browser(PHONE).await;
    phone.sign_in(&app, "owner").await;
    assert_eq!(path(&phone).await, "/");
    assert!(phone.text("#figure-pickups_placed").await.starts_with('3'));
    let n_charts = phone
        .execute("return document.querySelectorAll('#figures svg rect.bar').length;")
        .await;
    assert!(n_charts.as_i64().unwrap() >= 7 * 8, "{n_charts}");
    let overflow = phone
        .execute(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
        )
        .await;
    assert_eq!(overflow, 0);
    phone.click("#lang-switch").await;
    phone.wait_for_text("h1", "Overview").await;
    assert!(phone
        .text("#figure-pickups_placed")
        .await
        .contains("Pickups placed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pickup_site_shows_its_address_its_qr_code_and_a_dead_address_warning() {
    let app = TestApp::start(Backend::Sqlite).await;
    app.add_staff("desk", "verifier").await;
    let browser = browser(PHONE).await;
    browser.sign_in(&app, "desk").await;
    browser.goto(&app.url("/pickup/site")).await;
    let url = browser
        .execute("return document.getElementById('site-url').value;")
        .await;
    assert_eq!(
        url.as_str().unwrap(),
        app.url(&format!("/m/{}/redeem", app.merchant_id))
    );
    // The tests' server listens on 127.0.0.1: a printed QR code would be dead.
    browser
        .wait_for_text("#public-url-problem", "--public-url")
        .await;
    browser.click("#copy-url").await;
    browser.wait_for_text("#copy-url", "已复制").await;
    let desk = app.client("desk").await;
    let (status, png) = desk.get_bytes("/pickup/site/qr.png").await;
    assert_eq!(status, 200);
    assert_eq!(
        common::decode_qr_png(&png),
        app.url(&format!("/m/{}/redeem", app.merchant_id))
    );
    // 提货设置's 公网地址: the site, its QR code and the exports use it.
    let owner = app.client("owner").await;
    let (_, mut settings) = owner.get("/api/v1/pickup-settings").await;
    settings["public_url"] = serde_json::json!("https://card.example.com/");
    let (status, body) = owner
        .send(reqwest::Method::PUT, "/api/v1/pickup-settings", settings)
        .await;
    assert_eq!(status, 204, "{body}");
    browser.goto(&app.url("/pickup/site")).await;
    assert!(!browser.exists("#public-url-problem").await);
    let shop = format!("https://card.example.com/m/{}/redeem", app.merchant_id);
    let (_, png) = desk.get_bytes("/pickup/site/qr.png").await;
    assert_eq!(common::decode_qr_png(&png), shop);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_reads_in_chinese_filters_and_exports() {
    let app = TestApp::start(Backend::Sqlite).await;
    let owner = app.client("owner").await;
    let (numbers, passwords, goods) = common::pickup_cards(&app, 2).await;
    let (status, _) = common::post_form(
        &app,
        &format!("/m/{}/redeem/check", app.merchant_id),
        &[("number", numbers[0].as_str()), ("password", "wrong-one")],
    )
    .await;
    assert_eq!(status, 422);
    common::h5_orders(
        &app,
        &owner,
        (numbers[1..].to_vec(), passwords[1..].to_vec(), goods),
    )
    .await;

    // The chain's head is on the page once sealed, as `kaquan audit head` prints it.
    kaquan_core::audit::chain::seal_all(app.store.as_ref())
        .await
        .unwrap();
    let head = app
        .store
        .audit_heads(Some(app.merchant_id))
        .await
        .unwrap()
        .pop()
        .expect("a head");
    let browser = browser(LAPTOP).await;
    browser.sign_in(&app, "owner").await;
    browser.goto(&app.url("/audit")).await;
    assert_eq!(browser.text("#audit-head-text").await, head.text());
    let actions = browser
        .execute("return Array.from(document.querySelectorAll('#audit td.action')).map(td => td.textContent.trim());")
        .await;
    let actions: Vec<String> = serde_json::from_value(actions).unwrap();
    assert!(actions.len() >= 4, "{actions:?}");
    for action in &actions {
        assert!(!action.is_ascii(), "an action code on the page: {action}");
    }
    for expected in ["提货被拒（密码错误）", "导出卡号和密码", "创建卡券", "提货"]
    {
        assert!(
            actions.iter().any(|a| a == expected),
            "{expected} in {actions:?}"
        );
    }
    let page = browser.text("#audit").await;
    assert!(
        !page.contains("Some(") && !page.contains("channel="),
        "{page}"
    );
    assert!(page.contains("顾客自助"));
    // Filter: 提货被拒 of one card.
    browser
        .execute("document.getElementById('action').value = 'pickup_refused';")
        .await;
    browser.type_into("#text", &numbers[0]).await;
    browser.click("#search").await;
    browser.wait_for_text("#total", "1").await;
    assert!(browser
        .text("#audit")
        .await
        .contains(&format!("卡号 {}", numbers[0])));
    // The filter survives into the export.
    let href = browser
        .execute("return document.getElementById('export').getAttribute('href');")
        .await;
    let (status, bytes) = owner
        .get_bytes(
            &href
                .as_str()
                .unwrap()
                .replace("/audit/export", "/api/v1/audit-log/export"),
        )
        .await;
    assert_eq!(status, 200);
    let path = common::temp_dir("audit").join("audit.xlsx");
    std::fs::write(&path, bytes).unwrap();
    let range = common::xlsx_range(&path);
    let rows = common::xlsx_rows(&path);
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0][2], "操作");
    assert_eq!(rows[1][2], "提货被拒（密码错误）");
    assert_eq!(rows[1][3], "顾客自助");
    assert!(
        matches!(range.get((1, 6)), Some(calamine::Data::Float(_))),
        "数量 is a number"
    );
    // The API filters the same way and keeps the codes.
    let (_, listed) = owner.get("/api/v1/audit-log?action=redeem_pickup").await;
    assert_eq!(listed["total"], 1);
    assert_eq!(listed["items"][0]["action"], "redeem_pickup");
    assert_eq!(listed["items"][0]["action_label"], "提货");
    let (status, bad) = owner.get("/api/v1/audit-log?date_from=2026-13-01").await;
    assert_eq!(status, 422, "{bad}");
}

/// Three active cards: the first used by a customer's order (its id
/// returned), the second deactivated.
async fn used_and_inactive_cards(app: &TestApp) -> (Vec<String>, Vec<String>, i64) {
    let owner = app.client("owner").await;
    let (numbers, passwords, goods) = common::pickup_cards(app, 3).await;
    let cards = (numbers[..1].to_vec(), passwords[..1].to_vec(), goods);
    let orders = common::h5_orders(app, &owner, cards).await;
    let (status, _) = owner
        .post(
            "/api/v1/cards/deactivate",
            serde_json::json!({"filter": {"number": numbers[1]}}),
        )
        .await;
    assert_eq!(status, 200);
    (numbers, passwords, orders[0])
}

/// 到店提货 tells signed-in staff why a card is refused: 已提货 with its
/// order, 未激活 with 激活 for those allowed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_see_the_real_refusal_and_may_activate_the_card() {
    let app = TestApp::start(Backend::Sqlite).await;
    app.add_staff("desk", "verifier").await;
    let (numbers, passwords, order) = used_and_inactive_cards(&app).await;
    let browser = browser(LAPTOP).await;
    let check = |number: &str, password: &str| {
        let (number, password) = (number.to_owned(), password.to_owned());
        let (browser, app) = (&browser, &app);
        async move {
            browser.goto(&app.url("/pickup/store")).await;
            browser.type_into("#number", &number).await;
            browser.type_into("#password", &password).await;
            browser.click("#check").await;
            browser.wait_for_text("#pickup-error", "").await
        }
    };
    browser.sign_in(&app, "desk").await;
    let used = check(&numbers[0], &passwords[0]).await;
    assert!(
        used.contains(&format!("该卡已提货：订单 {order}")),
        "{used}"
    );
    assert!(
        !browser.exists("#refusal-order").await,
        "the desk cannot open orders"
    );
    let inactive = check(&numbers[1], &passwords[1]).await;
    assert!(
        inactive.contains("该卡未激活") && inactive.contains("联系卡券管理员"),
        "{inactive}"
    );
    assert!(!browser.exists("#refusal-activate").await);
    assert!(check(&numbers[1], "wrong-pass1").await.contains("密码错误"));
    sign_out(&browser).await;

    browser.sign_in(&app, "owner").await;
    check(&numbers[0], &passwords[0]).await;
    assert!(
        browser.exists("#refusal-order").await,
        "the owner may open the order"
    );
    check(&numbers[1], &passwords[1]).await;
    browser.click("#refusal-activate").await;
    browser.wait_for_text("#message", "激活成功").await;
    assert!(path(&browser).await.starts_with("/pickup/store"));
    browser.type_into("#number", &numbers[1]).await;
    browser.type_into("#password", &passwords[1]).await;
    browser.click("#check").await;
    browser
        .wait_for_text("#pickup-form", "与顾客确认要提的商品")
        .await;
    // The staff API says the reason too.
    let desk = app.client("desk").await;
    let (status, body) = desk
        .post(
            "/api/v1/pickups/check",
            serde_json::json!({"number": numbers[0], "password": passwords[0]}),
        )
        .await;
    assert_eq!(status, 422);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("已提货"),
        "{body}"
    );
}

/// The customer's page keeps one answer for every wrong card, and shows a
/// used card's order only after its right password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_sees_a_used_cards_order_only_after_its_right_password() {
    let app = TestApp::start(Backend::Sqlite).await;
    let (numbers, passwords, order) = used_and_inactive_cards(&app).await;
    let phone = browser(PHONE).await;
    phone
        .goto(&app.url(&format!("/m/{}/redeem", app.merchant_id)))
        .await;
    phone.type_into("#number", &numbers[0]).await;
    phone.type_into("#password", &passwords[0]).await;
    phone.click("#check").await;
    phone.wait_for_text("#already-used", "已经提过货").await;
    assert!(phone.text("#order").await.contains(&order.to_string()));
    let check = |number: &str, password: &str| {
        let form = [
            ("number", number.to_owned()),
            ("password", password.to_owned()),
        ];
        let app = &app;
        async move {
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            common::post_form(app, &format!("/m/{}/redeem/check", app.merchant_id), &form).await
        }
    };
    for (number, password) in [
        (numbers[0].as_str(), "wrong-pass1"),
        (numbers[1].as_str(), passwords[1].as_str()),
        ("ZZ404", "wrong-pass1"),
    ] {
        let (status, page) = check(number, password).await;
        assert_eq!(status, 422, "{number}");
        assert!(
            page.contains("卡号或密码错误") && !page.contains("已提货") && !page.contains("未激活"),
            "{page}"
        );
    }
}

/// The order table at a laptop's width: 发货 within the screen, tabs with
/// counts, the tab and filters kept after shipping, the carrier remembered;
/// on a phone the orders are cards and the filters fold away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clerk_ships_from_a_table_that_fits_and_keeps_the_tab() {
    let app = TestApp::start(Backend::Sqlite).await;
    app.add_staff("clerk", "order_clerk").await;
    let owner = app.client("owner").await;
    let cards = common::pickup_cards(&app, 3).await;
    let orders = common::h5_orders(&app, &owner, cards).await;
    let browser = browser(LAPTOP).await;
    browser.sign_in(&app, "clerk").await;
    browser.wait_for_text("#tab-pending", "3").await;
    assert!(browser.text("#tab-overdue").await.ends_with('0'));
    let ship = rect(&browser, &format!("#ship-{}", orders[0])).await;
    assert!(
        ship[0] >= 0.0 && ship[2] <= 1366.0,
        "发货 inside the viewport: {ship:?}"
    );
    let overflow = browser
        .execute(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
        )
        .await;
    assert_eq!(overflow, 0, "the page itself never scrolls sideways");
    // Filter by batch (a drop-down), then ship inline with another carrier.
    browser
        .execute("var s = document.getElementById('filter-batch'); s.selectedIndex = 1;")
        .await;
    browser.click("#order-filter button[type=submit]").await;
    browser.wait_for_text("#order-total", "3").await;
    let filtered = path(&browser).await;
    assert!(filtered.contains("batch_id="), "{filtered}");
    browser
        .execute(&format!("var s = document.querySelector('#order-{} select.carrier'); s.value = '中通快递'; s.dispatchEvent(new Event('change'));", orders[0]))
        .await;
    browser
        .type_into(&format!("#tracking-{}", orders[0]), "ZT100200300")
        .await;
    browser.click(&format!("#ship-{}", orders[0])).await;
    browser.wait_for_text("#message", "已发货").await;
    let after = path(&browser).await;
    assert!(
        after.contains("batch_id=") && after.contains("status=pending"),
        "{after}"
    );
    browser.wait_for_text("#tab-pending", "2").await;
    let carrier = browser
        .execute(&format!(
            "return document.querySelector('#order-{} select.carrier').value;",
            orders[1]
        ))
        .await;
    assert_eq!(carrier, "中通快递", "the last carrier is remembered");
    // 待发 lists the soonest due first: same date, so the oldest order first.
    let first = browser
        .execute("return document.querySelector('#orders tbody tr').id;")
        .await;
    assert_eq!(first, format!("order-{}", orders[1]));

    let phone = self::browser(PHONE).await;
    phone.sign_in(&app, "clerk").await;
    assert!(
        !phone.exists("#filters[open]").await,
        "filters fold away on a phone"
    );
    let head = phone
        .execute("return getComputedStyle(document.querySelector('#orders thead')).display;")
        .await;
    assert_eq!(head, "none", "orders are cards");
    let overflow = phone
        .execute(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
        )
        .await;
    assert_eq!(overflow, 0);
    let ship = rect(&phone, &format!("#ship-{}", orders[1])).await;
    assert!(ship[2] <= 390.0, "{ship:?}");
}

/// 批次 is the print shop's hub: its settings in Chinese, 对应商品, the
/// counts, and the exports — which ask first while the public address is a
/// loopback one and are named by what they hold, with numbers as numbers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_batch_page_is_the_print_shops_hub() {
    let app = TestApp::start(Backend::Sqlite).await;
    let owner = app.client("owner").await;
    let cards = common::pickup_cards(&app, 4).await;
    common::h5_orders(
        &app,
        &owner,
        (
            cards.0[..1].to_vec(),
            cards.1[..1].to_vec(),
            cards.2.clone(),
        ),
    )
    .await;
    let downloads = common::temp_dir("downloads");
    let browser = Browser::start(LAPTOP.0, LAPTOP.1, &downloads).await;
    browser.sign_in(&app, "owner").await;
    browser.goto(&app.url("/batches")).await;
    let row = browser.text("#batches tbody tr").await;
    assert!(row.contains("已完成"), "{row}");
    assert_eq!(browser.text("#batches tbody tr .n-activated").await, "4");
    assert_eq!(browser.text("#batches tbody tr .n-used").await, "1");
    browser.click("#batches tbody tr a").await;
    browser.wait_for_text("#batch-counts", "已兑换").await;
    assert!(browser.text("#count-used").await.starts_with('1'));
    assert!(browser.text("#count-activated").await.starts_with('4'));
    assert_eq!(browser.text("#batch-goods").await, "苹果、桃子");
    assert!(
        browser.text("#charset").await.contains("字母")
            || browser.text("#charset").await.contains("数字")
    );
    assert!(!browser.text("#numbering").await.is_ascii());
    // A loopback public URL: the export asks first; saying no downloads nothing.
    browser.wait_for_text("#public-url-problem", "打不开").await;
    browser
        .execute("window.asked = []; window.confirm = function (text) { window.asked.push(text); return false; };")
        .await;
    browser.click("#export-secrets").await;
    let asked = browser.execute("return window.asked;").await;
    assert!(asked[0].as_str().unwrap().contains("打不开"), "{asked}");
    browser.accept_confirms().await;
    browser.click("#export-secrets").await;
    let file = browser.wait_for_download("xlsx").await;
    let name = file.file_name().unwrap().to_str().unwrap().to_owned();
    assert!(
        name.starts_with("卡号密码-") && name.contains("-批次1-"),
        "{name}"
    );
    let range = common::xlsx_range(&file);
    assert_eq!(range.get((0, 0)).unwrap().to_string(), "卡序号");
    assert!(
        matches!(range.get((1, 0)), Some(calamine::Data::Float(_))),
        "序号 is a number"
    );
    assert_eq!(
        range.get((1, 4)),
        Some(&calamine::Data::Float(388.0)),
        "面值 is a number"
    );
    assert!(
        matches!(range.get((1, 2)), Some(calamine::Data::String(_))),
        "the password stays text"
    );

    // 区间激活 from the batch page, on a phone.
    let phone = self::browser(PHONE).await;
    phone.sign_in(&app, "owner").await;
    phone.goto(&app.url("/batches/1")).await;
    let overflow = phone
        .execute(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
        )
        .await;
    assert_eq!(overflow, 0);
    phone.type_into("#activate-from", "1").await;
    phone.type_into("#activate-to", "2").await;
    phone.accept_confirms().await;
    phone.click("#activate-range").await;
    phone.wait_for_text("#message", "激活").await;
}

/// A refused form keeps what was typed and says why on the same page; a
/// bulk operation says which cards it passed over and why; typing in 修改卡属性
/// ticks the field's box.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forms_keep_what_was_typed_and_bulk_results_say_what_was_skipped() {
    let app = TestApp::start(Backend::Sqlite).await;
    let owner = app.client("owner").await;
    let cards = common::pickup_cards(&app, 4).await;
    common::h5_orders(
        &app,
        &owner,
        (
            cards.0[..2].to_vec(),
            cards.1[..2].to_vec(),
            cards.2.clone(),
        ),
    )
    .await;
    let browser = browser(LAPTOP).await;
    browser.sign_in(&app, "owner").await;
    browser.goto(&app.url("/batches/new")).await;
    browser.type_into("#name", "中秋 588 卡").await;
    browser.type_into("#quantity", "20").await;
    browser.type_into("#face_value_yuan", "2000000").await;
    browser.click("#create").await;
    browser.wait_for_text("#form-error", "").await;
    assert!(
        browser.text("#form-error").await.contains("面值"),
        "the reason, in Chinese"
    );
    let kept = browser
        .execute("return [document.getElementById('name').value, document.getElementById('quantity').value];")
        .await;
    assert_eq!(kept, serde_json::json!(["中秋 588 卡", "20"]));
    assert_eq!(path(&browser).await, "/batches/new", "still on the form");

    // 批量作废 of all four: two were used by pickups.
    browser.goto(&app.url("/cards?batch_id=1")).await;
    browser.accept_confirms().await;
    browser.click("#op-void").await;
    browser.wait_for_text("#message", "作废：共 2 张卡").await;
    assert!(browser
        .text("#message")
        .await
        .contains("2 张已兑换的卡不能作废"));
    browser.accept_confirms().await;
    browser.click("#op-delete").await;
    browser.wait_for_text("#message", "删除：共 2 张卡").await;
    // A changed filter that was not queried: the bulk buttons say so first.
    browser.goto(&app.url("/cards?batch_id=1")).await;
    browser.type_into("#serial_from", "3").await;
    browser
        .execute("window.alerted = []; window.alert = function (t) { window.alerted.push(t); };")
        .await;
    browser.accept_confirms().await;
    browser.click("#op-activate").await;
    let alerted = browser.execute("return window.alerted;").await;
    assert!(
        alerted[0].as_str().unwrap().contains("请先点「查询」"),
        "{alerted}"
    );
    // 修改卡属性: typing a value ticks its box.
    browser
        .execute("document.querySelector('#edit-form').closest('details').open = true;")
        .await;
    browser.type_into("#new_remark", "批发").await;
    let ticked = browser
        .execute("return document.getElementById('field_remark').checked;")
        .await;
    assert_eq!(ticked, true);
    // The list shows 对应商品 and 兑换时间; the number opens the card's page.
    browser.goto(&app.url("/cards?batch_id=1&state=used")).await;
    assert!(browser.text("#cards tbody tr").await.contains("苹果、桃子"));
}

/// 卡券详情: the card with its batch, goods, orders and the operations that
/// changed it, each with who and when.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cards_page_shows_its_history_orders_and_goods() {
    let app = TestApp::start(Backend::Sqlite).await;
    app.add_staff("clerk", "order_clerk").await;
    let owner = app.client("owner").await;
    let (numbers, passwords, goods) = common::pickup_cards(&app, 3).await;
    let orders = common::h5_orders(
        &app,
        &owner,
        (numbers[..1].to_vec(), passwords[..1].to_vec(), goods),
    )
    .await;
    let (status, _) = owner
        .post(
            "/api/v1/cards/deactivate",
            serde_json::json!({"filter": {"serial_from": 2, "serial_to": 3}}),
        )
        .await;
    assert_eq!(status, 200);
    let browser = browser(PHONE).await;
    browser.sign_in(&app, "owner").await;
    browser.goto(&app.url("/cards?batch_id=1")).await;
    browser
        .click(&format!("a.card-link[href='/cards/{}']", numbers[0]))
        .await;
    browser.wait_for_text("h1", &numbers[0]).await;
    assert_eq!(browser.text("#card-state").await, "已兑换");
    assert_eq!(browser.text("#card-goods").await, "苹果、桃子");
    assert!(browser
        .text("#card-orders")
        .await
        .contains(&orders[0].to_string()));
    let history = browser.text("#card-history").await;
    for entry in ["创建卡券", "生成后立即激活", "提货", "顾客自助"] {
        assert!(history.contains(entry), "{entry} in {history}");
    }
    assert!(
        !history.contains("反激活"),
        "the deactivation of cards 2–3 did not touch card 1: {history}"
    );
    browser
        .goto(&app.url(&format!("/cards/{}", numbers[1])))
        .await;
    assert!(browser.text("#card-history").await.contains("反激活"));
    let overflow = browser
        .execute(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
        )
        .await;
    assert_eq!(overflow, 0);
    browser.goto(&app.url("/cards/NO-SUCH-CARD")).await;
    assert!(browser.exists("#error").await && browser.exists(".sidebar").await);
}

/// The exchange centre keeps a code scanned before signing up, greets the
/// customer by masked phone (not the mall's id) and names the gift card in
/// 余额明细.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scanned_code_survives_sign_up_and_the_statement_names_the_card() {
    let app = TestApp::start(Backend::Sqlite).await;
    let m = app.merchant_id;
    let owner = app.client("owner").await;
    owner
        .put_giftcard_settings(serde_json::json!({"phone_login": true}))
        .await;
    let mall = common::Mall::new(&app).await;
    let (_, product) = owner.giftcard_product("50元电子礼品卡", 5000, 5000).await;
    let code = mall.order_codes("M-9", &product, 1, None).await.remove(0);
    let phone = browser(PHONE).await;
    phone
        .goto(&app.url(&format!("/m/{m}/exchange#code={code}")))
        .await;
    phone.wait_for_text("#code-kept", "登录后自动填入").await;
    phone.type_into("#phone", "13800138000").await;
    phone.type_into("#password", "gift2026card").await;
    phone.click("#signup-button").await;
    phone.wait_for_text("#greeting", "138****8000").await;
    let filled = phone
        .execute("return document.getElementById('code').value;")
        .await;
    assert_eq!(
        filled,
        code.as_str(),
        "the scanned code waited through sign-up"
    );
    phone.click("#redeem-button").await;
    phone.wait_for_text("#balance", "¥50.00").await;
    phone.click("#statement-link").await;
    phone.wait_for_text("#statement", "兑换「").await;
    let statement = phone.text("#statement").await;
    assert!(
        statement.contains("兑换「50元电子礼品卡兑换码」"),
        "{statement}"
    );
}

/// A password someone else chose (an admin's, or the first start's) is
/// replaced at the first sign-in: the console asks for a new one, typed twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_chosen_by_an_admin_is_replaced_at_the_first_sign_in() {
    let app = TestApp::start(Backend::Sqlite).await;
    let owner = app.client("owner").await;
    let roles = app.store.list_roles(app.merchant_id).await.unwrap();
    let clerk_role = roles.iter().find(|r| r.name == "order_clerk").unwrap().id;
    let (status, _) = owner
        .post(
            "/api/v1/staff",
            serde_json::json!({"username": "newclerk", "name": "新店员", "password": "Start2026x", "role_id": clerk_role}),
        )
        .await;
    assert_eq!(status, 201);
    let browser = browser(LAPTOP).await;
    browser.goto(&app.url("/login")).await;
    browser.type_into("#username", "newclerk").await;
    browser.type_into("#password", "Start2026x").await;
    browser.click("#login").await;
    browser.wait_for_text("#must-change", "新密码").await;
    assert_eq!(path(&browser).await, "/account/password");
    assert!(menu(&browser).await.is_empty(), "nowhere else to go yet");
    browser.goto(&app.url("/orders")).await;
    assert_eq!(
        path(&browser).await,
        "/account/password",
        "every console page asks first"
    );
    browser.type_into("#new-password", "Mine2026abc").await;
    browser
        .type_into("#new-password-again", "Mine2026abd")
        .await;
    browser.click("#save-password").await;
    browser.wait_for_text("#password-error", "不一致").await;
    browser.type_into("#new-password", "Mine2026abc").await;
    browser
        .type_into("#new-password-again", "Mine2026abc")
        .await;
    browser.click("#save-password").await;
    browser
        .wait_for_text("#login-message", "新密码已保存")
        .await;
    browser.type_into("#username", "newclerk").await;
    browser.type_into("#password", "Mine2026abc").await;
    browser.click("#login").await;
    browser.wait_for_text("h1", "订单列表").await;
    assert_eq!(path(&browser).await, "/orders?status=pending");
    // The sign-in page greets staff with the shop's name.
    sign_out(&browser).await;
    assert!(browser.exists("#shop-name").await);
}

/// Uploading a picture keeps what was typed, unsaved, in the other form.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_picture_upload_keeps_the_unsaved_text_beside_it() {
    let app = TestApp::start(Backend::Sqlite).await;
    let owner = app.client("owner").await;
    let (_, goods) = owner
        .post("/api/v1/goods", serde_json::json!({"name": "苹果礼盒"}))
        .await;
    let downloads = common::temp_dir("downloads");
    let picture = downloads.join("apple.png");
    let png = kaquan_web::exports::qr_png(&qrcode::QrCode::new(b"apple").unwrap(), 4);
    std::fs::write(&picture, png).unwrap();
    let browser = Browser::start(LAPTOP.0, LAPTOP.1, &downloads).await;
    browser.sign_in(&app, "owner").await;
    browser
        .goto(&app.url(&format!("/goods/{}", goods["id"])))
        .await;
    browser
        .type_into("#goods-description", "烟台红富士，十斤装")
        .await;
    browser
        .type_into("#goods-image", picture.to_str().unwrap())
        .await;
    browser.click("#upload-image").await;
    browser.wait_for_text("#message", "").await;
    common::browser::wait_until("the picture", || async {
        browser
            .exists("img[src*='/goods-images/']")
            .await
            .then_some(())
    })
    .await;
    let kept = browser
        .execute("return document.getElementById('goods-description').value;")
        .await;
    assert_eq!(
        kept, "烟台红富士，十斤装",
        "the unsaved text survived the upload"
    );
}
