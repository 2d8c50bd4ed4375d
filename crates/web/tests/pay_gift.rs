//! 支付后赠会员卡 over HTTP: staff add a rule in the console, a second rule
//! for the same 商户号 is refused naming the first; the payment system's
//! signed notifications answer what each payment led to, once per payment
//! id; a deleted rule moves to 已失效 and sends nothing.

mod common;

use common::{Mall, TestApp};
use kaquan_core::member::ProgramFields;
use serde_json::json;

on_both_backends! {
    a_rule_sends_one_claim_message_per_payment_until_deleted => rule_flow;
}

async fn rule_flow(app: TestApp) {
    let program = app.member_program(&ProgramFields::default()).await;
    let owner = app.client("owner").await;
    let today = kaquan_core::clock::format_date(kaquan_web::now());
    let program_id = program.id.to_string();
    let form = [
        ("csrf", owner.csrf.as_str()),
        ("program_id", program_id.as_str()),
        ("mch_ids", "1900000109， 1900000110"),
        ("condition", "range"),
        ("least_cost", "50"),
        ("max_cost", ""),
        ("begin_date", today.as_str()),
        ("end_date", "2199-12-31"),
    ];
    let response = owner
        .http
        .post(format!("{}/member-programs/pay-gift", owner.base))
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
    let (_, rules) = owner.get("/api/v1/pay-gift-rules").await;
    let rule_id = rules[0]["id"].as_i64().unwrap();
    assert_eq!(rules[0]["condition"], "满 ¥50.00 及以上");
    assert_eq!(rules[0]["mch_ids"], json!(["1900000109", "1900000110"]));
    let (status, taken) = owner
        .post(
            "/api/v1/pay-gift-rules",
            json!({"program_id": program.id, "mch_ids": ["1900000110"], "begin_date": today, "end_date": today}),
        )
        .await;
    assert_eq!(status, 409);
    assert_eq!(taken["error"]["code"], "mch_id_taken");
    assert_eq!(
        taken["error"]["message"],
        format!("商户号 1900000110 已被规则 #{rule_id} 使用，一个商户号只能配一个规则")
    );

    let mall = Mall::new(&app).await;
    let pay = json!({"payment_id": "wx-1", "mch_id": "1900000109", "amount_fen": 8800, "customer_id": "u-1"});
    let sent = mall
        .send("POST", "/open/v1/payment-notifications", Some(&pay), None)
        .await;
    assert_eq!(
        (sent.status, sent.body["outcome"].as_str()),
        (201, Some("sent")),
        "{}",
        sent.body
    );
    let again = mall
        .send("POST", "/open/v1/payment-notifications", Some(&pay), None)
        .await;
    assert_eq!((again.status, again.replayed), (200, true));
    let small = json!({"payment_id": "wx-2", "mch_id": "1900000109", "amount_fen": 4999});
    let small = mall
        .send("POST", "/open/v1/payment-notifications", Some(&small), None)
        .await;
    assert_eq!(small.body["outcome"], "amount_out_of_range");
    let bad = json!({"payment_id": "wx-3", "mch_id": "19000 00109", "amount_fen": 100});
    let bad = mall
        .send("POST", "/open/v1/payment-notifications", Some(&bad), None)
        .await;
    assert_eq!(bad.status, 422);
    let (events, _) = app
        .store
        .list_events(app.merchant_id, Default::default())
        .await
        .unwrap();
    let invited: Vec<_> = events
        .iter()
        .filter(|e| e.event_type.code() == "member.invited")
        .collect();
    assert_eq!(invited.len(), 1);
    let data: serde_json::Value = serde_json::from_str(&invited[0].data).unwrap();
    assert!(data["open_url"].as_str().unwrap().ends_with(&format!(
        "/m/{}/member-cards/{}",
        app.merchant_id, program.id
    )));

    deleted_rules_are_void(&owner, &mall, rule_id).await;
}

/// A deleted rule is listed under 已失效 and sends nothing.
async fn deleted_rules_are_void(owner: &common::Client, mall: &Mall, rule_id: i64) {
    let delete = [("csrf", owner.csrf.as_str())];
    let response = owner
        .http
        .post(format!(
            "{}/member-programs/pay-gift/{rule_id}/delete",
            owner.base
        ))
        .form(&delete)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 303);
    let page = owner.page("/member-programs/pay-gift").await;
    let void = page.split("id=\"void-rules\"").nth(1).unwrap();
    assert!(
        void.contains(&format!("#{rule_id}")) && void.contains("已删除"),
        "{page}"
    );
    assert!(page.contains("已发送领卡消息") && page.contains("wx-1"));
    let late = json!({"payment_id": "wx-4", "mch_id": "1900000109", "amount_fen": 8800});
    let late = mall
        .send("POST", "/open/v1/payment-notifications", Some(&late), None)
        .await;
    assert_eq!(late.body["outcome"], "no_live_rule");
    let (_, sends) = owner.get("/api/v1/pay-gift-sends").await;
    assert_eq!(sends["total"], 3);
}
