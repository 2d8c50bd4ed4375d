//! 优惠券 across two `kaquan serve` nodes sharing one PostgreSQL database:
//! 1,000 simultaneous issues of a 100-stock program make exactly 100
//! coupons and no 5xx; one customer's 50 simultaneous claims of a limit-1
//! program make one; 50 simultaneous verifications of one coupon verify it
//! once. And `kaquan coupons`: the programs' counts and 定向发放 from a
//! list file, all or none.

mod common;

use common::{api_key, sign_in, signed_post, start_server, Env};
use serde_json::{json, Value};

fn cookie_client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// An active 满100减20 program made through the staff API; (id, claim path).
async fn program(
    http: &reqwest::Client,
    address: &str,
    csrf: &str,
    quantity: i64,
) -> (i64, String) {
    let created: Value = http
        .post(format!("http://{address}/api/v1/coupon-programs"))
        .header("x-csrf-token", csrf)
        .json(&json!({
            "kind": "cash", "least_cost_fen": 10000, "reduce_cost_fen": 2000, "title": "满100减20",
            "quantity": quantity, "get_limit": 1, "validity_type": "relative", "term_days": 30,
            "use_all_locations": true,
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_i64().expect("program created");
    let status = http
        .post(format!(
            "http://{address}/api/v1/coupon-programs/{id}/state"
        ))
        .header("x-csrf-token", csrf)
        .json(&json!({"state": "active"}))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
    let url = created["claim_url"].as_str().unwrap();
    let path = url
        .split_once("/m/")
        .map(|(_, p)| format!("/m/{p}"))
        .unwrap();
    (id, path)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_issues_a_list_file_all_or_none_and_lists_the_counts() {
    let env = Env::sqlite().with_owner().await;
    let (mut server, address) = start_server(&env);
    let http = cookie_client();
    let csrf = sign_in(&http, &address).await;
    let (id, _) = program(&http, &address, &csrf, 3).await;
    let _ = server.kill();
    let _ = server.wait();
    let id_text = id.to_string();
    let counts = |env: &Env| {
        let listed = env.json(&["coupons", "list", "--json"]);
        let p = listed["programs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["program_id"] == id)
            .cloned()
            .expect("the program is listed");
        assert_eq!(p["kind"], "cash");
        assert_eq!(p["state"], "active");
        (
            p["stock_left"].as_i64().unwrap(),
            p["n_claimed"].as_i64().unwrap(),
        )
    };
    let issue = |rows: &str| {
        let file = env.dir.join("名单.csv");
        std::fs::write(&file, format!("手机号或顾客编号\n{rows}")).unwrap();
        env.command(&[
            "coupons",
            "issue",
            "--program",
            &id_text,
            "--file",
            file.to_str().unwrap(),
            "--json",
        ])
        .output()
        .unwrap()
    };
    assert_eq!(counts(&env), (3, 0));
    // A program that is not there is named as such.
    let file = env.dir.join("one.csv");
    std::fs::write(&file, "手机号\n13800000001\n").unwrap();
    let missing = env
        .command(&[
            "coupons",
            "issue",
            "--program",
            "999",
            "--file",
            file.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!missing.status.success());
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(stderr.contains("优惠券 999 不存在"), "{stderr}");
    // A bad row (line 3 of the file: a blank line is skipped but counted).
    let refused = issue("13800000001\n\n12345678901\nu-1\n");
    assert!(!refused.status.success());
    let answer: Value = serde_json::from_slice(&refused.stdout).unwrap();
    assert_eq!(answer["issued"], false);
    assert_eq!(answer["errors"][0]["line"], 4, "{answer}");
    assert!(answer["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("手机号"));
    assert_eq!(counts(&env), (3, 0), "nothing issued");
    // More than the stock: nothing issued either.
    let refused = issue("13800000001\nu-1\nu-2\nu-3\n");
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("领完"), "{stderr}");
    assert_eq!(counts(&env), (3, 0));
    let issued = issue("13800000001\nu-1\nu-2\n");
    assert!(
        issued.status.success(),
        "{}",
        String::from_utf8_lossy(&issued.stderr)
    );
    let answer: Value = serde_json::from_slice(&issued.stdout).unwrap();
    assert_eq!(
        (answer["n_issued"].as_i64(), answer["stock_left"].as_i64()),
        (Some(3), Some(0))
    );
    assert_eq!(counts(&env), (0, 3));
}

#[tokio::test(flavor = "multi_thread")]
async fn two_nodes_on_postgres_hold_stock_claim_limits_and_single_verification() {
    let env = Env::postgres().await.with_owner().await;
    let (first, a) = start_server(&env);
    let (second, b) = start_server(&env);
    let nodes = [a.as_str(), b.as_str()];
    let http = cookie_client();
    let csrf = sign_in(&http, &a).await;
    let key = api_key(&env, "商城");
    let key = (key.0.as_str(), key.1.as_str());
    let plain = reqwest::Client::new();

    issues_hold_the_stock(&http, &plain, &csrf, nodes, key).await;
    let code = claims_hold_the_limit(&http, &plain, &csrf, nodes, key).await;
    verifications_verify_once(&plain, nodes, key, &code).await;
    for server in [first, second] {
        let mut server = server;
        let _ = server.kill();
        let _ = server.wait();
    }
}

/// A signed GET of the open API.
async fn signed_get(
    http: &reqwest::Client,
    address: &str,
    (key_id, secret): (&str, &str),
    path: &str,
) -> (u16, Value) {
    let timestamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    let nonce = kaquan_core::secrets::random_token_hex(16);
    let canonical =
        kaquan_core::signing::canonical_request("GET", path, "", &timestamp, &nonce, b"");
    let response = http
        .get(format!("http://{address}{path}"))
        .header("x-kaquan-key", key_id)
        .header("x-kaquan-timestamp", timestamp)
        .header("x-kaquan-nonce", nonce)
        .header(
            "x-kaquan-signature",
            kaquan_core::signing::sign(secret, &canonical),
        )
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// 1,000 orders at once for a program of 100: exactly 100 coupons.
async fn issues_hold_the_stock(
    http: &reqwest::Client,
    plain: &reqwest::Client,
    csrf: &str,
    nodes: [&str; 2],
    key: (&str, &str),
) {
    let a = nodes[0];
    // 1,000 orders at once for a program of 100: exactly 100 coupons.
    let (stocked, _) = program(http, a, csrf, 100).await;
    let issues = (0..1000).map(|i| {
        let body = json!({"program_id": stocked, "customer_id": format!("u{i}"), "order_id": format!("O{i}")});
        let address = nodes[i % 2];
        async move { signed_post(plain, address, key, "/open/v1/coupons", &body, &format!("issue-{i}")).await }
    });
    let answers = futures_util::future::join_all(issues).await;
    assert_eq!(answers.iter().filter(|(s, _)| *s == 201).count(), 100);
    assert!(
        answers
            .iter()
            .all(|(s, b)| *s == 201 || (*s == 409 && b["error"]["code"] == "coupon_out_of_stock")),
        "no other answer, never a 5xx"
    );
}

/// One customer's 50 claims at once of a limit-1 program: one coupon; returns its code.
async fn claims_hold_the_limit(
    http: &reqwest::Client,
    plain: &reqwest::Client,
    csrf: &str,
    nodes: [&str; 2],
    key: (&str, &str),
) -> String {
    let (a, b) = (nodes[0], nodes[1]);
    // One customer's 50 claims at once of a limit-1 program: one coupon.
    let (limited, claim_path) = program(http, a, csrf, 1000).await;
    let (status, link) = signed_post(
        plain,
        a,
        key,
        "/open/v1/login-links",
        &json!({"customer_id": "racer"}),
        "link-1",
    )
    .await;
    assert_eq!(status, 201, "{link}");
    let customer = cookie_client();
    let login = link["url"].as_str().unwrap().replace("http://", "");
    let (_, path) = login.split_once('/').unwrap();
    let signed_in = customer
        .get(format!("http://{a}/{path}"))
        .send()
        .await
        .unwrap();
    assert!(signed_in.status().is_redirection());
    let page = customer
        .get(format!("http://{a}{claim_path}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf_customer = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let claims = (0..50).map(|i| {
        let (customer, address, path, csrf) =
            (&customer, nodes[i % 2], &claim_path, &csrf_customer);
        async move {
            customer
                .post(format!("http://{address}{path}"))
                .form(&[("csrf", csrf.as_str())])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    });
    let statuses = futures_util::future::join_all(claims).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 303).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 303 || *s == 409),
        "{statuses:?}"
    );
    let (_, racer) = signed_get(plain, b, key, "/open/v1/customers/racer/coupons").await;
    let coupons: Vec<&Value> = racer["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["program_id"] == limited)
        .collect();
    assert_eq!(coupons.len(), 1);

    coupons[0]["code"].as_str().unwrap().to_owned()
}

/// 50 verifications at once of one coupon, on both nodes: verified once.
async fn verifications_verify_once(
    plain: &reqwest::Client,
    nodes: [&str; 2],
    key: (&str, &str),
    code: &str,
) {
    // 50 verifications at once of that coupon, on both nodes: verified once.
    let verifications = (0..50).map(|i| {
        let body =
            json!({"code": code, "order_amount_fen": 12000, "order_ref": format!("POS-{i}")});
        let address = nodes[i % 2];
        async move {
            signed_post(
                plain,
                address,
                key,
                "/open/v1/coupon-verifications",
                &body,
                &format!("verify-{i}"),
            )
            .await
        }
    });
    let answers = futures_util::future::join_all(verifications).await;
    assert_eq!(answers.iter().filter(|(s, _)| *s == 201).count(), 1);
    assert!(
        answers
            .iter()
            .all(|(s, b)| *s == 201 || b["error"]["code"] == "coupon_used"),
        "{answers:?}"
    );
}
