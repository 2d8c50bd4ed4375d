//! 会员卡 across two `kaquan serve` nodes sharing one PostgreSQL database:
//! 200 simultaneous payments that each use 100 of a member's 1,000 points
//! make exactly 10 payments and no 5xx, then 200 that each spend ¥1 of the
//! ¥10 left make exactly 10; the balances end at zero, never below, and
//! `kaquan verify` finds both assets of the ledger whole.

mod common;

use common::{api_key, sign_in, signed_post, start_server, Env};
use serde_json::{json, Value};

/// Sends `n` payments at once, alternating between the nodes; the status
/// of each and the refusal codes.
async fn race(
    nodes: [&str; 2],
    key: (&str, &str),
    n: usize,
    body: impl Fn(usize) -> Value,
) -> (usize, Vec<String>) {
    let plain = reqwest::Client::new();
    let calls = (0..n).map(|i| {
        let (plain, body) = (plain.clone(), body(i));
        let node = nodes[i % 2];
        async move {
            signed_post(
                &plain,
                node,
                key,
                "/open/v1/payments",
                &body,
                &format!("race-{}", body["order_id"].as_str().unwrap()),
            )
            .await
        }
    });
    let answers = futures_util::future::join_all(calls).await;
    let mut paid = 0;
    let mut refusals = Vec::new();
    for (status, answer) in answers {
        match status {
            201 => paid += 1,
            422 => refusals.push(answer["error"]["code"].as_str().unwrap().to_owned()),
            other => panic!("{other}: {answer}"),
        }
    }
    (paid, refusals)
}

#[tokio::test(flavor = "multi_thread")]
async fn two_nodes_on_postgres_never_overdraw_points_or_balance() {
    let env = Env::postgres().await.with_owner().await;
    let (first, a) = start_server(&env);
    let (second, b) = start_server(&env);
    let nodes = [a.as_str(), b.as_str()];
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let csrf = sign_in(&http, &a).await;
    let program: Value = http
        .post(format!("http://{a}/api/v1/member-programs"))
        .header("x-csrf-token", &csrf)
        .json(&json!({
            "title": "果园会员卡",
            "points_rule": {"cost_money_unit": 100, "increase_bonus": 0, "init_increase_bonus": 1000,
                "cost_bonus_unit": 100, "reduce_money": 100},
            "stored_value": true,
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let program_id = program["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("{program}"));
    let key = api_key(&env, "收银");
    let key = (key.0.as_str(), key.1.as_str());
    let plain = reqwest::Client::new();
    let open = json!({"program_id": program_id, "customer_id": "u-1", "phone": "13800000000"});
    let (status, card) = signed_post(&plain, &a, key, "/open/v1/members", &open, "open").await;
    assert_eq!(
        (status, card["points"].as_i64()),
        (201, Some(1000)),
        "{card}"
    );
    let top_up = json!({"customer_id": "u-1", "amount_fen": 2000, "recharge_id": "R1"});
    let (status, _) = signed_post(&plain, &b, key, "/open/v1/recharges", &top_up, "top").await;
    assert_eq!(status, 201);

    let (paid, refusals) = race(nodes, key, 200, |i| {
        json!({"customer_id": "u-1", "amount_fen": 10000, "use_points": 100, "balance_fen": 100,
            "order_id": format!("P{i}")})
    })
    .await;
    assert_eq!(paid, 10, "{refusals:?}");
    assert!(
        refusals.iter().all(|code| code == "insufficient_points"),
        "{refusals:?}"
    );
    let (paid, refusals) = race(nodes, key, 200, |i| {
        json!({"customer_id": "u-1", "amount_fen": 10000, "balance_fen": 100,
            "order_id": format!("B{i}")})
    })
    .await;
    assert_eq!(paid, 10, "{refusals:?}");
    assert!(
        refusals.iter().all(|code| code == "insufficient_balance"),
        "{refusals:?}"
    );

    let (status, member) = common_get(&http, &a, &csrf, "/api/v1/members").await;
    assert_eq!(status, 200);
    let member = &member["items"][0];
    assert_eq!(
        (member["points"].as_i64(), member["balance_fen"].as_i64()),
        (Some(0), Some(0)),
        "{member}"
    );
    for server in [first, second] {
        let mut server = server;
        let _ = server.kill();
        let _ = server.wait();
    }
    let verified = env.command(&["verify"]).output().unwrap();
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
}

async fn common_get(http: &reqwest::Client, node: &str, csrf: &str, path: &str) -> (u16, Value) {
    let response = http
        .get(format!("http://{node}{path}"))
        .header("x-csrf-token", csrf)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}
