//! 会员卡 over HTTP: the POS opens a card for the mall's customer, tops it
//! up, reports payments (discount, points, balance), refunds one, reads
//! the member and the points statement, through the signed open API with
//! idempotency; bad input is refused with its stable code.

mod common;

use common::{Mall, TestApp};
use kaquan_core::member::{PointsRule, ProgramFields, Tier};
use serde_json::json;

on_both_backends! {
    the_pos_opens_a_card_tops_up_pays_and_refunds => pos_flow;
}

async fn pos_flow(app: TestApp) {
    let fields = ProgramFields {
        title: "果园会员卡".into(),
        discount_percent_off: 5,
        points: Some(PointsRule {
            init_increase_bonus: 20,
            ..PointsRule::default()
        }),
        tiers: vec![Tier {
            name: "金卡".into(),
            threshold: 100,
            discount_percent_off: 10,
        }],
        number_prefix: "VIP".into(),
        number_length: 8,
        ..ProgramFields::default()
    };
    let program = app
        .store
        .create_member_program(
            app.merchant_id,
            &fields,
            &kaquan_core::audit::Actor::cli(),
            kaquan_web::now(),
        )
        .await
        .unwrap();
    let mall = Mall::new(&app).await;
    let open = json!({"program_id": program.id, "customer_id": "u-1", "phone": "13800000000",
        "name": "王小明", "birthday": "1990-05-01", "gender": "female"});
    let card = mall.post("/open/v1/members", open.clone(), "open-1").await;
    assert_eq!(card.status, 201, "{}", card.body);
    assert_eq!(card.body["points"], 20);
    let number = card.body["member_number"].as_str().unwrap().to_owned();
    assert!(number.starts_with("VIP") && number.len() == 11, "{number}");
    let again = mall.post("/open/v1/members", open, "open-2").await;
    assert_eq!(
        (again.status, again.body["member_number"].as_str()),
        (200, Some(number.as_str()))
    );

    for (body, code) in [
        (
            json!({"program_id": program.id, "customer_id": "u-2", "phone": "12345"}),
            "invalid",
        ),
        (
            json!({"program_id": program.id, "customer_id": "u-2", "phone": "13800000001", "birthday": "1990-02-30"}),
            "invalid",
        ),
        (
            json!({"program_id": 999, "customer_id": "u-2", "phone": "13800000001"}),
            "program_not_found",
        ),
        (
            json!({"program_id": program.id, "customer_id": "u-2", "phone": "13800000001", "nmae": "x"}),
            "unknown_field",
        ),
    ] {
        let refused = mall.post("/open/v1/members", body, "bad").await;
        assert_eq!(refused.body["error"]["code"], code, "{}", refused.body);
    }

    pays_and_refunds(&app, &mall).await;
}

async fn pays_and_refunds(app: &TestApp, mall: &Mall) {
    let top_up =
        json!({"customer_id": "u-1", "amount_fen": 10000, "bonus_fen": 1000, "recharge_id": "R1"});
    let topped = mall.post("/open/v1/recharges", top_up, "top-1").await;
    assert_eq!(
        (topped.status, topped.body["balance_after_fen"].as_i64()),
        (201, Some(11000)),
        "{}",
        topped.body
    );

    let pay =
        json!({"customer_id": "u-1", "amount_fen": 10000, "balance_fen": 2000, "order_id": "M1"});
    let paid = mall.post("/open/v1/payments", pay.clone(), "pay-1").await;
    assert_eq!(paid.status, 201, "{}", paid.body);
    assert_eq!(paid.body["discount_fen"], 500);
    assert_eq!(paid.body["cash_fen"], 7500);
    assert_eq!(paid.body["points_earned"], 95);
    assert_eq!(paid.body["tier"], 1);
    let replay = mall.post("/open/v1/payments", pay.clone(), "pay-1").await;
    assert!(replay.replayed);
    assert_eq!(replay.body, paid.body);
    let twice = mall.post("/open/v1/payments", pay, "pay-2").await;
    assert_eq!(
        (twice.status, twice.body["error"]["code"].as_str()),
        (409, Some("payment_exists"))
    );
    let greedy =
        json!({"customer_id": "u-1", "amount_fen": 1000, "use_points": 100000, "order_id": "M2"});
    let greedy = mall.post("/open/v1/payments", greedy, "pay-3").await;
    assert_eq!(
        (greedy.status, greedy.body["error"]["code"].as_str()),
        (422, Some("points_exceed_order"))
    );
    let stranger = json!({"customer_id": "nobody", "amount_fen": 1000, "order_id": "M3"});
    let stranger = mall.post("/open/v1/payments", stranger, "pay-4").await;
    assert_eq!(
        (stranger.status, stranger.body["error"]["code"].as_str()),
        (404, Some("not_a_member"))
    );

    let payment_id = paid.body["operation_id"].as_i64().unwrap();
    let refund = mall
        .post(
            &format!("/open/v1/payments/{payment_id}/refunds"),
            json!({"amount_fen": 9500, "reason": "退货"}),
            "refund-1",
        )
        .await;
    assert_eq!(refund.status, 201, "{}", refund.body);
    assert_eq!(
        (
            refund.body["balance_fen"].as_i64(),
            refund.body["points_earned"].as_i64()
        ),
        (Some(2000), Some(-95))
    );
    let over = mall
        .post(
            &format!("/open/v1/payments/{payment_id}/refunds"),
            json!({"amount_fen": 1}),
            "refund-2",
        )
        .await;
    assert_eq!(over.body["error"]["code"], "refund_exceeds_payment");

    let member = mall.send("GET", "/open/v1/members/u-1", None, None).await;
    assert_eq!(member.status, 200, "{}", member.body);
    assert_eq!(
        (
            member.body["points"].as_i64(),
            member.body["balance_fen"].as_i64()
        ),
        (Some(20), Some(11000))
    );
    assert_eq!(
        member.body["tier_name"], "金卡",
        "a refund does not lower the tier"
    );
    let points = mall
        .send("GET", "/open/v1/members/u-1/points-statement", None, None)
        .await;
    let kinds: Vec<_> = points.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["kind"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kinds, ["reverse_earn", "earn", "earn"]);
    let (violations, _) = (app.store.check_invariants().await.unwrap(), ());
    assert!(violations.is_empty(), "{violations:?}");
}
