//! ERP 参数 over HTTP: pickup orders pushed to 旺店通's double, which
//! recomputes the openapi2 sign from the raw form; a wrong appsecret is
//! refused and retried; a re-push updates the same trade.

mod common;

use common::browser::wait_until;
use common::providers::{WDT_APPKEY, WDT_SECRET, WDT_SID};
use common::{h5_orders, pickup_cards, TestApp};
use serde_json::{json, Value};

on_both_backends! {
    orders_to_deliver_are_pushed_to_wangdiantong_and_updated_when_shipped => pushed;
    a_wrong_appsecret_is_refused_logged_and_retried => refused;
}

fn settings(secret: &str) -> Value {
    json!({"enabled": true, "sid": WDT_SID, "appkey": WDT_APPKEY, "appsecret": secret, "shop_no": "KQ01"})
}

/// One order through the H5 form for goods with ERP 编码 `APPLE-5`; its id.
async fn order(app: &TestApp, owner: &common::Client) -> i64 {
    let cards = pickup_cards(app, 1).await;
    let (status, _) = owner
        .send(
            reqwest::Method::PUT,
            &format!("/api/v1/goods/{}", cards.2[0]),
            json!({"name": "苹果", "erp_code": "APPLE-5"}),
        )
        .await;
    assert_eq!(status, 204);
    h5_orders(app, owner, cards).await[0]
}

async fn trades(app: &TestApp, n: usize) -> Vec<Value> {
    let trades = wait_until("the pushed trades", || async {
        Some(app.providers.trades()).filter(|trades| trades.len() >= n)
    })
    .await;
    assert_eq!(trades.len(), n, "{trades:?}");
    trades
}

async fn pushed(app: TestApp) {
    let owner = app.client("owner").await;
    let (status, saved) = owner
        .send(
            reqwest::Method::PUT,
            "/api/v1/erp-settings",
            settings(WDT_SECRET),
        )
        .await;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(saved["has_secret"], true);
    assert!(!saved.to_string().contains(WDT_SECRET));
    let order_id = order(&app, &owner).await;
    let trade = trades(&app, 1).await.remove(0);
    assert_eq!(trade["tid"], format!("KQ{order_id}"));
    assert_eq!(trade["trade_status"], 30);
    assert_eq!(trade["receiver_name"], "张三");
    assert_eq!(trade["receiver_mobile"], "13800001234");
    assert_eq!(trade["order_list"][0]["goods_no"], "APPLE-5");
    assert_eq!(trade["order_list"][0]["goods_name"], "苹果");
    let (status, _) = owner
        .post(
            "/api/v1/orders/ship",
            json!({"shipments": [{"order_id": order_id, "carrier": "顺丰速运", "tracking_number": "SF1234567890"}]}),
        )
        .await;
    assert_eq!(status, 200);
    let shipped = trades(&app, 2).await.remove(1);
    assert_eq!(
        (shipped["tid"].clone(), shipped["trade_status"].clone()),
        (trade["tid"].clone(), json!(50))
    );
    let (_, log) = owner.get("/api/v1/erp-pushes").await;
    assert_eq!(log["total"], 2);
    assert!(log["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["state"] == "pushed" && p["result_code"] == "0"));
    let page = owner.page("/settings/erp").await;
    assert!(
        page.contains("已推送") && page.contains("提货订单发货"),
        "{page}"
    );
}

async fn refused(app: TestApp) {
    let owner = app.client("owner").await;
    owner
        .send(
            reqwest::Method::PUT,
            "/api/v1/erp-settings",
            settings("wrong"),
        )
        .await;
    let order_id = order(&app, &owner).await;
    let logged = wait_until("the refused push in the log", || async {
        let (_, log) = owner.get("/api/v1/erp-pushes").await;
        let first = log["items"][0].clone();
        (first["attempts"] == 1 && first["result_code"] != "").then_some(first)
    })
    .await;
    assert_eq!(
        (logged["state"].as_str(), logged["result_message"].as_str()),
        (Some("pending"), Some("签名错误")),
        "{logged}"
    );
    assert_eq!(logged["order_id"], order_id);
    assert_eq!(*app.providers.bad_signatures.lock().unwrap(), 1);
    // The right appsecret: the retry (10 s later) goes through.
    owner
        .send(
            reqwest::Method::PUT,
            "/api/v1/erp-settings",
            settings(WDT_SECRET),
        )
        .await;
    assert_eq!(trades(&app, 1).await[0]["tid"], format!("KQ{order_id}"));
    // Settings are checked.
    let (status, answer) = owner
        .send(
            reqwest::Method::PUT,
            "/api/v1/erp-settings",
            json!({"enabled": true, "sid": "x"}),
        )
        .await;
    assert_eq!(status, 422, "{answer}");
    let (status, _) = owner
        .send(
            reqwest::Method::PUT,
            "/api/v1/erp-settings",
            json!({"enabled": true, "sid": "x", "shopno": "1"}),
        )
        .await;
    assert_eq!(status, 422);
}
