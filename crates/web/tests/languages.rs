//! English beside zh-CN: `?lang=en` on any page switches it, keeps the
//! choice in a cookie and the staff member's account (restored at the next
//! sign-in anywhere), `Accept-Language` chooses for a first visit, the
//! API's error messages follow while their codes stay, and every console
//! page in English shows no Chinese but the shop's own data.

mod common;

use common::TestApp;
use serde_json::json;

on_both_backends! {
    a_chosen_language_is_kept_by_the_cookie_and_the_account => chosen_language_is_kept;
    api_errors_follow_the_language_and_keep_their_codes => api_errors_follow;
    exports_follow_only_a_chosen_language_and_read_back => exports_follow;
}

/// Chinese the shop itself wrote (goods, the shop's name, a 门店), which
/// stays as written in every language.
const SHOP_DATA: &[&str] = &[
    "测试商户",
    "苹果",
    "桃子",
    "西湖店",
    "张三",
    "浙江省杭州市西湖区文三路 100 号",
    "浙江省",
    "杭州市",
    "西湖区",
    "文三路 100 号",
    // The name a quick-created batch is given, stored with it.
    "快速创建",
];

/// The lines of text a page shows a reader: its text outside scripts,
/// styles, text areas and `<pre>` (data as it was sent), and the
/// attributes people read.
fn visible_lines(html: &str) -> Vec<String> {
    let mut text = String::new();
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        text.push_str(&rest[..open]);
        text.push('\n');
        let close = rest[open..].find('>').map_or(rest.len(), |c| open + c);
        let tag = &rest[open..close];
        for attribute in [
            "placeholder=\"",
            "aria-label=\"",
            "title=\"",
            "alt=\"",
            "data-confirm=\"",
        ] {
            if let Some(at) = tag.find(attribute) {
                let value = &tag[at + attribute.len()..];
                text.push_str(value.split('"').next().unwrap_or(""));
                text.push('\n');
            }
        }
        rest = &rest[(close + 1).min(rest.len())..];
        for raw in ["script", "style", "textarea", "pre"] {
            if tag.starts_with(&format!("<{raw}")) {
                let end = rest.find(&format!("</{raw}")).unwrap_or(rest.len());
                rest = &rest[end..];
            }
        }
    }
    text.push_str(rest);
    text.lines()
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect()
}

/// The Chinese a page shows a reader, the shop's own words and the
/// language switch (中文, written in its own language) left out.
fn visible_chinese(html: &str) -> Vec<String> {
    let mut found = Vec::new();
    for line in visible_lines(html) {
        let mut line = line.replace("id=\"lang-switch\"", "");
        for data in SHOP_DATA {
            line = line.replace(data, "");
        }
        // What is left of a list of the shop's words is its separators.
        let line = line.trim().trim_matches(|c| c == '、' || c == ' ');
        if line != "中文" && kaquan_web::i18n::has_cjk(line) {
            found.push(line.to_owned());
        }
    }
    found
}

/// English words the Chinese console may show: names of formats, systems
/// and protocols, and what people type in Latin letters anyway.
const TECHNICAL_WORDS: &[&str] = &[
    "kaquan",
    // The file tool print shops open sealed exports with, and what its keygen prints.
    "age",
    "Public",
    "Logo",
    "logo",
    "API",
    "ERP",
    "SKU",
    "ID",
    "URL",
    "CSV",
    "csv",
    "xlsx",
    "PNG",
    "JPEG",
    "WebP",
    "GIF",
    "SVG",
    "MB",
    "QR",
    "HTTP",
    "http",
    "https",
    "JSON",
    "Standard",
    "Webhooks",
    "AccessKey",
    "Secret",
    "SecretId",
    "SecretKey",
    "SdkAppId",
    "appsecret",
    "sid",
    "key",
    "secret",
    "webhook",
    "id",
    "POST",
    "GET",
    "PUT",
    "open",
    "v1",
    "EMS",
    "KQ",
    "SHA",
    "CODE",
    "Excel",
    "Content",
    "Type",
    "Idempotency",
    "Key",
    "Nonce",
    "Timestamp",
    "Signature",
    "Token",
    "CSRF",
    "serve",
    "public",
    "url",
    "English",
    "expressTypeId",
    "zhongtong",
    "ap",
    "guangzhou",
    "Gone",
    "PDF",
    "pdf",
    "png",
    "svg",
    "example",
    "com",
    "card",
    "your",
    "domain",
    "Kaquan",
    "X",
    "In",
    "store",
    "pickup",
    "pinduoduo",
    "sms",
    "send",
    "order",
    "date",
    "link",
    "goods",
    "number",
    "type",
    "timestamp",
    "data",
    "refund",
    "sales",
    "marketplace",
    "orders",
    "the",
    "P90",
    "ms",
    "appkey",
    "ecards",
    "import",
    "p90",
];

/// The English UI words a Chinese page shows: Latin words that are not a
/// technical name, a code (`member.changed`, `send_sms`) or the shop's own.
fn visible_english(html: &str, shop_words: &std::collections::BTreeSet<String>) -> Vec<String> {
    let mut found = Vec::new();
    for line in visible_lines(html) {
        // Addresses, `key=value` codes and SMS template variables are not words.
        let line = line.replace("&#x2f;", "/");
        let line: String = line
            .split(' ')
            .filter(|part| !part.contains('=') && !part.starts_with("${") && !part.contains("://"))
            .collect::<Vec<_>>()
            .join(" ");
        for token in line.split(|c: char| {
            !(c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-' || c == '/' || c == ':')
        }) {
            let word = token.trim_matches(|c: char| !c.is_ascii_alphanumeric());
            // Codes (`member.changed`, `send_sms`, `--public-url`), masked
            // codes and acronyms (`XXXX`, `EMS`) are not words either.
            let is_code = word.contains(['_', '.', '/', ':', '-'])
                || word.chars().any(|c| c.is_ascii_digit())
                || word.chars().all(|c| c.is_ascii_uppercase());
            if word.len() < 2 || is_code || !word.chars().any(|c| c.is_ascii_alphabetic()) {
                continue;
            }
            if !TECHNICAL_WORDS.contains(&word) && !shop_words.contains(word) {
                found.push(format!("{word}\t{line}"));
            }
        }
    }
    found
}

/// The console's addresses a page links to: its own pages, not the API,
/// the customers' pages, downloads or signing out.
fn console_links(html: &str) -> Vec<String> {
    html.split("href=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .map(|href| href.replace("&#x2f;", "/").replace("&amp;", "&"))
        .filter(|href| href.starts_with('/') && !href.starts_with("//"))
        .filter(|href| {
            ![
                "/api", "/open", "/m/", "/logout", "export", "download", "/qr", ".png", ".xlsx",
                ".csv", ".pdf", ".svg", "evidence", "/images/", "/logo", "lang=",
            ]
            .iter()
            .any(|skip| href.contains(skip))
        })
        .collect()
}

/// The words of the seeded shop's own names and texts.
const SEED_WORDS: &str = "East Wang Main St Orchard Save Show at the till Orchard card off Gold \
    Video month Open app and enter code Offline Online ERP Mall bench goods Zhang Zhejiang Hangzhou Xihu \
    Wensan Rd owner";

/// A shop with something of every product, written in English so that
/// any Chinese left on a page is the console's own.
async fn seed_in_english(app: &TestApp, owner: &common::Client) {
    let today = kaquan_core::clock::format_date(kaquan_web::now());
    let bodies = [
        (
            "/api/v1/distributors",
            json!({"name": "East", "contact": "Wang", "phone": "13900000000"}),
        ),
        (
            "/api/v1/locations",
            json!({"name": "Main St", "address": "1 Main St", "hours": "09:00-21:00", "enabled": true}),
        ),
        (
            "/api/v1/coupon-programs",
            json!({"begin_date": today, "brand_name": "Orchard", "code_type": "qrcode", "color": "Color010", "end_date": "2199-12-31", "get_limit": 1, "kind": "cash", "least_cost_fen": 10000, "location_ids": [], "notice": "Show at the till", "quantity": 1000, "reduce_cost_fen": 2000, "title": "Save 20", "use_all_locations": true, "use_limit": 1, "validity_type": "fixed"}),
        ),
        (
            "/api/v1/member-programs",
            json!({"activation_fields": ["name"], "brand_name": "Orchard", "color": "#63b359", "discount_percent_off": 5, "expiry": "year_end", "number_length": 8, "number_prefix": "VIP", "points_rule": {"cost_bonus_unit": 100, "cost_money_unit": 100, "increase_bonus": 1, "init_increase_bonus": 20, "reduce_money": 100}, "prerogative": "5% off", "stored_value": true, "tier_basis": "points", "tiers": [{"discount_percent_off": 10, "name": "Gold", "threshold": 1000}], "title": "Orchard card"}),
        ),
        (
            "/api/v1/ecard-products",
            json!({"delivery_form": "number_password", "face_value_yuan": "19.90", "instructions": "Open the app and enter the code", "listings": [{"marketplace": "pinduoduo", "product_id": "pdd-100", "sku_id": ""}], "low_stock_threshold": 20, "name": "Video month", "own_verification_code": false, "refund_expired": false, "remind_days": 3, "valid_days": 30}),
        ),
        (
            "/api/v1/code-templates",
            json!({"face_value_fen": 10000, "kind": "offline", "name": "Offline 100", "quantity": 5, "valid_from": today, "valid_until": "2199-12-31"}),
        ),
        (
            "/api/v1/code-templates",
            json!({"face_value_fen": 10000, "kind": "online", "name": "Online 100", "valid_from": today, "valid_until": "2199-12-31"}),
        ),
        (
            "/api/v1/webhook-endpoints",
            json!({"description": "ERP", "enabled": true, "event_types": [], "url": "https://erp.example.com/kaquan/webhooks"}),
        ),
        ("/api/v1/api-keys", json!({"label": "Mall"})),
    ];
    for (path, body) in bodies {
        let (status, answer) = owner.post(path, body).await;
        assert!((200..300).contains(&status), "{path}: {answer}");
    }
    let cards = common::pickup_cards(app, 2).await;
    common::h5_orders(app, owner, cards).await;
}

/// Every console page reachable from 概况, with its HTML.
async fn crawl(app: &TestApp, owner: &common::Client) -> Vec<(String, String)> {
    let mut queue: Vec<String> = vec!["/".into()];
    let mut seen: std::collections::BTreeSet<String> = queue.iter().cloned().collect();
    let mut pages = Vec::new();
    while let Some(page) = queue.pop() {
        let response = owner.http.get(app.url(&page)).send().await.unwrap();
        if response.status().is_redirection() {
            continue;
        }
        assert_eq!(response.status(), 200, "{page}");
        let html = response.text().await.unwrap();
        for link in console_links(&html) {
            if seen.len() < 400 && seen.insert(link.clone()) {
                queue.push(link);
            }
        }
        pages.push((page, html));
    }
    assert!(pages.len() > 60, "the walk reached {} pages", pages.len());
    pages
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_console_page_in_english_shows_no_chinese_but_the_shops_own() {
    let app = TestApp::start(common::Backend::Sqlite).await;
    let owner = app.client("owner").await;
    seed_in_english(&app, &owner).await;
    owner.page("/?lang=en").await;
    let pages = crawl(&app, &owner).await;
    let mut missing: Vec<String> = Vec::new();
    for (page, html) in &pages {
        assert!(html.contains("<html lang=\"en\">"), "{page} is in English");
        for text in visible_chinese(html) {
            missing.push(format!("{page}\t{text}"));
        }
    }
    missing.sort();
    missing.dedup();
    assert!(
        missing.is_empty(),
        "{} texts untranslated on {} pages:\n{}",
        missing.len(),
        pages.len(),
        missing.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_console_page_in_chinese_shows_no_english_ui_words() {
    let app = TestApp::start(common::Backend::Sqlite).await;
    let owner = app.client("owner").await;
    seed_in_english(&app, &owner).await;
    // The seed's own words are the shop's data.
    let shop_words: std::collections::BTreeSet<String> =
        SEED_WORDS.split_whitespace().map(String::from).collect();
    let pages = crawl(&app, &owner).await;
    let mut english: Vec<String> = Vec::new();
    for (page, html) in &pages {
        assert!(
            html.contains("<html lang=\"zh-CN\">"),
            "{page} is in Chinese"
        );
        for word in visible_english(html, &shop_words) {
            english.push(format!("{page}\t{word}"));
        }
    }
    english.sort();
    english.dedup();
    assert!(
        english.is_empty(),
        "{} English words on Chinese pages:\n{}",
        english.len(),
        english.join("\n")
    );
}

async fn chosen_language_is_kept(app: TestApp) {
    let owner = app.client("owner").await;
    // Chinese by default; English once asked, and `lang` never reaches a
    // handler (whose query refuses unknown fields).
    let page = owner.page("/orders?status=pending").await;
    assert!(page.contains("<html lang=\"zh-CN\">") && page.contains(">概况<"));
    let page = owner.page("/orders?status=pending&lang=en").await;
    assert!(page.contains("<html lang=\"en\">"), "{page}");
    assert!(page.contains(">Overview<"));
    // The cookie keeps it for the next page.
    let page = owner.page("/").await;
    assert!(page.contains(">Overview<") && page.contains("id=\"lang-switch\" lang=\"zh-CN\""));
    // The account keeps it: a new sign-in elsewhere is English at once.
    let elsewhere = app.client("owner").await;
    assert!(elsewhere.page("/").await.contains(">Overview<"));
    // Switching back is kept the same way.
    owner.page("/?lang=zh-CN").await;
    let again = app.client("owner").await;
    assert!(again.page("/").await.contains(">概况<"));
    // A customer's phone says what it prefers; the console waits for a
    // staff member to choose.
    let redeem = format!("/m/{}/redeem", app.merchant_id);
    let (status, body) = with_language(&app, &redeem, "en-US,en;q=0.9").await;
    assert_eq!(status, 200);
    assert!(
        body.contains("<html lang=\"en\">") && body.contains("Pickup centre"),
        "{body}"
    );
    let (_, body) = with_language(&app, &redeem, "zh-CN,zh;q=0.9,en;q=0.8").await;
    assert!(body.contains("<html lang=\"zh-CN\">"));
    let (_, body) = with_language(&app, "/login", "en-US,en;q=0.9").await;
    assert!(body.contains("<html lang=\"zh-CN\">") && body.contains("登录"));
    let (_, body) = with_language(&app, "/login?lang=en", "zh-CN").await;
    assert!(body.contains("<html lang=\"en\">") && body.contains("Sign in"));
    // An unknown language changes nothing.
    let page = again.page("/?lang=fr").await;
    assert!(page.contains(">概况<"));
}

async fn api_errors_follow(app: TestApp) {
    let owner = app.client("owner").await;
    let (status, zh) = owner.get("/api/v1/orders?status=nonsense").await;
    assert_eq!(status, 422);
    assert_eq!(zh["error"]["message"], "未知的订单状态");
    let (status, en) = owner.get("/api/v1/orders?status=nonsense&lang=en").await;
    assert_eq!(status, 422);
    assert_eq!(en["error"]["code"], zh["error"]["code"], "codes stay");
    assert_eq!(en["error"]["message"], "Unknown order status");
    // The choice holds for the next call, a message with a field's name too.
    let (status, en) = owner.get("/api/v1/orders?batch_id=x").await;
    assert_eq!(status, 422);
    assert_eq!(
        en["error"]["message"],
        "Batch number must be a whole number"
    );
    let (_, back) = owner.get("/api/v1/orders?status=nonsense&lang=zh-CN").await;
    assert_eq!(back["error"]["message"], "未知的订单状态");
}

/// A page fetched by a browser that says which languages it prefers.
async fn with_language(app: &TestApp, path: &str, accept_language: &str) -> (u16, String) {
    let response = reqwest::Client::new()
        .get(app.url(path))
        .header("accept-language", accept_language)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// The customers' pages (提货, 兑换中心, 领券, 开卡) follow the phone's
/// language, and so do their refusals.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customer_pages_follow_the_phones_language() {
    let app = TestApp::start(common::Backend::Sqlite).await;
    let owner = app.client("owner").await;
    seed_in_english(&app, &owner).await;
    let (numbers, passwords, goods) = common::pickup_cards(&app, 1).await;
    let (_, coupon) = owner.get("/api/v1/coupon-programs/1").await;
    let (_, card) = owner.get("/api/v1/member-programs/1").await;
    let base = app.url("");
    let relative = |url: &str| url.trim_start_matches(&base).to_owned();
    let m = app.merchant_id;
    let english = reqwest::Client::builder()
        .cookie_store(true)
        .default_headers(
            [(
                reqwest::header::ACCEPT_LANGUAGE,
                reqwest::header::HeaderValue::from_static("en-US,en;q=0.9"),
            )]
            .into_iter()
            .collect(),
        )
        .build()
        .unwrap();
    let mut pages: Vec<(String, String)> = Vec::new();
    for path in [
        format!("/m/{m}/redeem"),
        format!("/m/{m}/orders"),
        format!("/m/{m}/exchange/login"),
        format!("/m/{m}/wallet"),
        relative(coupon["claim_url"].as_str().unwrap()),
        relative(card["open_url"].as_str().unwrap()),
        format!("/m/{m}/d/no-such-token"),
        format!("/m/{m}/no-such-page"),
    ] {
        let response = english.get(app.url(&path)).send().await.unwrap();
        pages.push((path, response.text().await.unwrap()));
    }
    // A card checked, a wrong password refused, and the order placed.
    let goods_id = goods[0].to_string();
    let form = common::address(&numbers[0], &passwords[0], &goods_id);
    let wrong = common::address(&numbers[0], "WRONG-PASSWORD", &goods_id);
    for (label, path, form) in [
        ("check", "redeem/check", &form),
        ("refused", "redeem/confirm", &wrong),
        ("confirm", "redeem/confirm", &form),
    ] {
        let response = english
            .post(app.url(&format!("/m/{m}/{path}")))
            .form(form)
            .send()
            .await
            .unwrap();
        pages.push((label.into(), response.text().await.unwrap()));
    }
    let mut missing = Vec::new();
    for (path, html) in &pages {
        assert!(html.contains("<html lang=\"en\">"), "{path}: {html}");
        for text in visible_chinese(html) {
            missing.push(format!("{path}\t{text}"));
        }
    }
    missing.sort();
    missing.dedup();
    assert!(
        missing.is_empty(),
        "{} texts untranslated:\n{}",
        missing.len(),
        missing.join("\n")
    );
}

/// The form fields of a page no one can name: an input, select or text
/// area outside any `<label>`, without `aria-label` or `title`, and whose
/// id no `<label for>` names.
fn unlabelled_fields(html: &str) -> Vec<String> {
    let fors: Vec<&str> = html
        .split("<label for=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .collect();
    let mut found = Vec::new();
    let mut depth = 0usize;
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        let close = rest[open..].find('>').map_or(rest.len(), |c| open + c);
        let tag = &rest[open..close];
        rest = &rest[(close + 1).min(rest.len())..];
        if tag.starts_with("<label") {
            depth += 1;
        } else if tag.starts_with("</label") {
            depth = depth.saturating_sub(1);
        } else if ["<input", "<select", "<textarea"]
            .iter()
            .any(|t| tag.starts_with(t))
        {
            let hidden = ["type=\"hidden\"", "type=\"submit\"", "type=\"button\""]
                .iter()
                .any(|t| tag.contains(t));
            let named = tag.contains("aria-label=") || tag.contains("title=");
            let id = tag
                .split(" id=\"")
                .nth(1)
                .and_then(|s| s.split('"').next())
                .unwrap_or("");
            if !hidden && !named && depth == 0 && (id.is_empty() || !fors.contains(&id)) {
                found.push(tag.chars().take(120).collect());
            }
        }
        for raw in ["script", "style"] {
            if tag.starts_with(&format!("<{raw}")) {
                let end = rest.find(&format!("</{raw}")).unwrap_or(rest.len());
                rest = &rest[end..];
            }
        }
    }
    found
}

/// Every form field of every console page has a name a screen reader
/// reads out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_form_field_of_the_console_is_labelled() {
    let app = TestApp::start(common::Backend::Sqlite).await;
    let owner = app.client("owner").await;
    seed_in_english(&app, &owner).await;
    let mut unlabelled = Vec::new();
    for (page, html) in crawl(&app, &owner).await {
        for field in unlabelled_fields(&html) {
            unlabelled.push(format!("{page}\t{field}"));
        }
    }
    unlabelled.sort();
    unlabelled.dedup();
    assert!(
        unlabelled.is_empty(),
        "{} fields without a label:\n{}",
        unlabelled.len(),
        unlabelled.join("\n")
    );
}

/// The header row of an xlsx download.
async fn export_headers(client: &common::Client, path: &str, accept_language: &str) -> Vec<String> {
    export_rows(client, path, accept_language)
        .await
        .into_iter()
        .next()
        .unwrap()
}

async fn export_rows(
    client: &common::Client,
    path: &str,
    accept_language: &str,
) -> Vec<Vec<String>> {
    let response = client
        .http
        .get(format!("{}{path}", client.base))
        .header("accept-language", accept_language)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{path}");
    let bytes = response.bytes().await.unwrap();
    let file = common::temp_dir("export").join("export.xlsx");
    std::fs::write(&file, &bytes).unwrap();
    common::xlsx_rows(&file)
}

async fn exports_follow(app: TestApp) {
    let owner = app.client("owner").await;
    let cards = common::pickup_cards(&app, 2).await;
    let orders = common::h5_orders(&app, &owner, cards).await;
    // Other systems read exports by their headers: a program's language
    // never changes them.
    let zh = export_headers(&owner, "/api/v1/orders/export?status=pending", "en-US,en").await;
    assert_eq!(&zh[..3], ["订单号", "状态", "提货方式"]);
    // A person who chose English gets English headers.
    owner.page("/?lang=en").await;
    let en = export_headers(&owner, "/api/v1/orders/export?status=pending", "zh-CN").await;
    assert_eq!(&en[..3], ["Order number", "Status", "Pickup channel"]);
    assert!(en.iter().all(|h| !kaquan_web::i18n::has_cjk(h)), "{en:?}");
    for path in [
        "/api/v1/audit-log/export",
        "/api/v1/cards/export?all=true&format=xlsx",
        "/api/v1/customers/export",
    ] {
        let headers = export_headers(&owner, path, "zh-CN").await;
        assert!(
            headers.iter().all(|h| !kaquan_web::i18n::has_cjk(h)),
            "{path}: {headers:?}"
        );
    }
    // The cells that are labels (a state, a channel, an action) are
    // English too; what the shop and its customers wrote is kept.
    for (path, header) in [
        ("/api/v1/orders/export?status=pending", "Status"),
        ("/api/v1/orders/export?status=pending", "Pickup channel"),
        ("/api/v1/cards/export?all=true&format=xlsx", "Status"),
        ("/api/v1/audit-log/export", "Action"),
    ] {
        let rows = export_rows(&owner, path, "zh-CN").await;
        let col = rows[0]
            .iter()
            .position(|h| h == header)
            .unwrap_or_else(|| panic!("{path}: {header} in {:?}", rows[0]));
        assert!(rows.len() > 1, "{path} has rows");
        for row in &rows[1..] {
            assert!(
                !kaquan_web::i18n::has_cjk(&row[col]),
                "{path}: {header} {:?}",
                row[col]
            );
        }
    }
    // The English file, filled in, ships its orders: columns are found by
    // their English headers, in any order.
    let csv = format!(
        "Tracking number,Order number,Carrier\nSF100001,{},顺丰速运\nSF100002,{},顺丰速运\n",
        orders[0], orders[1]
    );
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(csv.into_bytes()).file_name("ship.csv"),
    );
    let response = owner
        .http
        .post(format!("{}/api/v1/orders/ship-import", owner.base))
        .header("x-csrf-token", &owner.csrf)
        .multipart(form)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    assert_eq!(status, 200, "{}", response.text().await.unwrap());
    let (_, shipped) = owner.get("/api/v1/orders?status=shipped").await;
    assert_eq!(shipped["total"], 2, "{shipped}");
    assert_eq!(
        shipped["items"][0]["tracking_number"]
            .as_str()
            .unwrap()
            .len(),
        8
    );
}
