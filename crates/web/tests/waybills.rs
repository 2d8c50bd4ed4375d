//! 电子面单 over HTTP: settings, 电子面单发货 through the SF and 快递100
//! doubles (which recompute each signature from the raw form), one waybill
//! per order however often it is pressed or retried, a failure reported for
//! its own order, and the printable label.

mod common;

use common::providers::{KUAIDI100_KEY, KUAIDI100_SECRET, SF_CHECK_WORD, SF_PARTNER_ID};
use common::{h5_orders, pickup_cards, Client, TestApp};
use serde_json::{json, Value};

on_both_backends! {
    sf_waybills_are_made_once_per_order_however_often_pressed => sf_once;
    kuaidi100_waybills_and_a_failure_on_one_order => kuaidi100_and_failures;
    waybill_settings_need_a_whole_sender => settings_rules;
}

fn settings(carriers: Value) -> Value {
    json!({
        "sender_name": "果园仓", "sender_phone": "0571-88880000", "sender_province": "浙江省",
        "sender_city": "杭州市", "sender_district": "西湖区", "sender_address": "文三路 1 号",
        "sf_partner_id": SF_PARTNER_ID, "sf_check_word": SF_CHECK_WORD,
        "kuaidi100_key": KUAIDI100_KEY, "kuaidi100_secret": KUAIDI100_SECRET,
        "carriers": carriers
    })
}

/// `n` pending orders through the H5 form; their ids, oldest first.
async fn orders(app: &TestApp, owner: &Client, n: usize) -> Vec<i64> {
    h5_orders(app, owner, pickup_cards(app, n as i64).await).await
}

async fn waybills(owner: &Client, order_ids: &[i64], carrier: &str) -> Value {
    let (status, answer) = owner
        .post(
            "/api/v1/orders/waybills",
            json!({"order_ids": order_ids, "carrier": carrier}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    answer
}

async fn sf_once(app: TestApp) {
    let owner = app.client("owner").await;
    let sf = json!([{"carrier": "顺丰速运", "channel": "sf", "monthly_account": "7551234567", "product_type": "1"}]);
    let (status, saved) = owner
        .send(
            reqwest::Method::PUT,
            "/api/v1/waybill-settings",
            settings(sf),
        )
        .await;
    assert_eq!(status, 200, "{saved}");
    assert!(!saved.to_string().contains(SF_CHECK_WORD));
    let ids = orders(&app, &owner, 3).await;
    // Two clicks at once on the first order: one waybill.
    let (first, second) = futures_util::join!(
        waybills(&owner, &ids[..1], "顺丰速运"),
        waybills(&owner, &ids[..1], "顺丰速运")
    );
    let shipped: Vec<&Value> = [&first, &second]
        .into_iter()
        .filter(|a| a["results"][0]["shipped"] == true)
        .collect();
    assert_eq!(shipped.len(), 1, "{first} {second}");
    let no = shipped[0]["results"][0]["waybill_no"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(no.starts_with("SF"));
    let (_, order) = owner.get(&format!("/api/v1/orders/{}", ids[0])).await;
    assert_eq!(
        (order["status"].as_str(), order["tracking_number"].as_str()),
        (Some("shipped"), Some(no.as_str()))
    );
    // The answer of the second order's create is lost; pressing again gets
    // the same waybill (SF answers 重复下单 and kaquan looks it up).
    app.providers.waybills.lock().unwrap().lose_next_answer = true;
    let lost = waybills(&owner, &ids[1..2], "顺丰速运").await;
    assert_eq!(lost["results"][0]["shipped"], false, "{lost}");
    let again = waybills(&owner, &ids[1..], "顺丰速运").await;
    assert_eq!(again["n_shipped"], 2, "{again}");
    let made = app.providers.waybills.lock().unwrap().by_order.clone();
    assert_eq!(made.len(), 3, "one waybill per order: {made:?}");
    assert_eq!(
        again["results"][0]["waybill_no"].as_str(),
        made.get(&format!("KQ{}", ids[1])).map(String::as_str)
    );
    // Pressing on a shipped order calls nobody.
    let calls = app.providers.waybills.lock().unwrap().create_calls;
    let done = waybills(&owner, &ids[..1], "顺丰速运").await;
    assert_eq!(done["results"][0]["error"], "订单不是待发状态");
    assert_eq!(app.providers.waybills.lock().unwrap().create_calls, calls);
    assert_eq!(*app.providers.bad_signatures.lock().unwrap(), 0);
    // The label prints the waybill, the receiver and the sender.
    let label = owner.page(&format!("/orders/{}/waybill", ids[0])).await;
    for shown in [no.as_str(), "张三", "果园仓", "<svg"] {
        assert!(label.contains(shown), "{shown}: {label}");
    }
}

async fn kuaidi100_and_failures(app: TestApp) {
    let owner = app.client("owner").await;
    let carriers = json!([{"carrier": "中通快递", "channel": "kuaidi100", "monthly_account": "ZT-001", "product_type": "标准快递", "carrier_code": "zhongtong"}]);
    owner
        .send(
            reqwest::Method::PUT,
            "/api/v1/waybill-settings",
            settings(carriers.clone()),
        )
        .await;
    let ids = orders(&app, &owner, 2).await;
    let answer = waybills(&owner, &[ids[0], 999_999], "中通快递").await;
    assert_eq!(answer["n_shipped"], 1, "{answer}");
    assert!(answer["results"][0]["waybill_no"]
        .as_str()
        .unwrap()
        .starts_with("ZT"));
    assert_eq!(answer["results"][1]["error"], "找不到该订单");
    // A carrier without e-waybills is refused as a whole.
    let (status, refused) = owner
        .post(
            "/api/v1/orders/waybills",
            json!({"order_ids": [ids[1]], "carrier": "顺丰速运"}),
        )
        .await;
    assert_eq!(status, 422, "{refused}");
    // A wrong secret: 快递100 refuses the sign; the order stays pending.
    let mut wrong = settings(carriers);
    wrong["kuaidi100_secret"] = "wrong".into();
    owner
        .send(reqwest::Method::PUT, "/api/v1/waybill-settings", wrong)
        .await;
    let failed = waybills(&owner, &ids[1..], "中通快递").await;
    assert_eq!(failed["n_shipped"], 0);
    assert!(
        failed["results"][0]["error"]
            .as_str()
            .unwrap()
            .contains("验证签名失败"),
        "{failed}"
    );
    let (_, order) = owner.get(&format!("/api/v1/orders/{}", ids[1])).await;
    assert_eq!(order["status"], "pending");
}

async fn settings_rules(app: TestApp) {
    let owner = app.client("owner").await;
    let sf = json!([{"carrier": "顺丰速运", "channel": "sf", "monthly_account": "7551234567", "product_type": "1"}]);
    let mut no_district = settings(sf.clone());
    no_district["sender_district"] = "".into();
    let (status, answer) = owner
        .send(
            reqwest::Method::PUT,
            "/api/v1/waybill-settings",
            no_district,
        )
        .await;
    assert_eq!(status, 422);
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("省市县"),
        "{answer}"
    );
    let unknown = json!([{"carrier": "某快递", "channel": "sf", "monthly_account": "1", "product_type": "1"}]);
    let (status, _) = owner
        .send(
            reqwest::Method::PUT,
            "/api/v1/waybill-settings",
            settings(unknown),
        )
        .await;
    assert_eq!(status, 422);
    let (status, _) = owner
        .post(
            "/api/v1/orders/waybills",
            json!({"order_ids": [1], "carrier": "顺丰速运"}),
        )
        .await;
    assert_eq!(status, 422, "no settings yet");
    let page = owner.page("/settings/waybill").await;
    assert!(
        page.contains("省外顺丰") || page.contains("顺丰速运"),
        "{page}"
    );
}
