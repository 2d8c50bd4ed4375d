//! 券点 over HTTP on both databases: only the operator grants and confirms;
//! a merchant makes a 朋友的券, buys its stock with free credits first (a
//! second click with the stock it saw buys nothing), asks to buy paid
//! credits, and finds every change in its statement and 操作日志; a shared
//! program refuses 定向发放 and a stock change by hand.

mod common;

use common::{Client, TestApp};
use serde_json::{json, Value};

on_both_backends! {
    the_operator_grants_and_confirms_and_the_merchant_buys_stock => operator_flow;
}

/// A 5元 无门槛 朋友的券 at every 门店, valid for a month.
pub async fn shared_program(owner: &Client) -> Value {
    let now = kaquan_web::now();
    let (begin, end) = (
        kaquan_core::clock::format_date(now),
        kaquan_core::clock::format_date(now + 30 * 86_400),
    );
    let (status, program) = owner
        .post(
            "/api/v1/coupon-programs",
            json!({
                "kind": "cash", "least_cost_fen": 0, "reduce_cost_fen": 500,
                "title": "5元代金券", "brand_name": "果园", "quantity": 0,
                "validity_type": "fixed", "begin_date": begin, "end_date": end,
                "use_all_locations": true, "can_use_with_other_discount": true,
                "shared": {"cover_url": "", "abstract_text": "进店立减 5 元", "detail_text": "全场通用"},
            }),
        )
        .await;
    assert_eq!(status, 201, "{program}");
    assert_eq!(program["unit_price_tenths"], 2);
    assert_eq!(program["quantity"], 0);
    program
}

async fn operator_flow(app: TestApp) {
    let owner = app.client("owner").await;
    let m = app.merchant_id;
    let (status, body) = owner.get("/api/v1/credits/merchants").await;
    assert_eq!(status, 403, "only the operator: {body}");
    let grant = json!({"tenths": 1000, "reason": "开业活动"});
    let grants = format!("/api/v1/credits/merchants/{m}/grants");
    assert_eq!(owner.post(&grants, grant.clone()).await.0, 403);
    app.make_owner_operator().await;

    let grant = json!({"tenths": 1000, "reason": "开业活动", "expected_free_tenths": 0});
    let (status, line) = owner.post(&grants, grant.clone()).await;
    assert_eq!(status, 201, "{line}");
    let (status, twice) = owner.post(&grants, grant).await;
    assert_eq!(
        (status, &twice["error"]["code"]),
        (409, &json!("credits_changed"))
    );
    assert_eq!(
        (&line["kind"], &line["balance_after_tenths"]),
        (&json!("grant"), &json!(1000))
    );
    let (_, account) = owner.get("/api/v1/credits").await;
    assert_eq!(
        (&account["free_text"], &account["paid_text"]),
        (&json!("100"), &json!("0"))
    );

    let program = shared_program(&owner).await;
    let id = program["id"].as_i64().unwrap();
    let buy = format!("/api/v1/coupon-programs/{id}/stock-purchases");
    let (status, bought) = owner
        .post(&buy, json!({"units": 400, "expected_quantity": 0}))
        .await;
    assert_eq!(status, 201, "{bought}");
    assert_eq!(
        (&bought["free_tenths"], &bought["cost_text"]),
        (&json!(800), &json!("80"))
    );
    let (status, twice) = owner
        .post(&buy, json!({"units": 400, "expected_quantity": 0}))
        .await;
    assert_eq!(
        (status, &twice["error"]["code"]),
        (409, &json!("coupon_stock_changed"))
    );
    let (status, short) = owner.post(&buy, json!({"units": 101})).await;
    assert_eq!(
        (status, &short["error"]["code"]),
        (409, &json!("insufficient_credits"))
    );
    let (status, _) = owner.post(&buy, json!({"units": 0})).await;
    assert_eq!(status, 422);
    let (_, listed) = owner.get(&buy).await;
    assert_eq!(listed.as_array().unwrap().len(), 1);

    let (status, refused) = owner
        .post(
            &format!("/api/v1/coupon-programs/{id}/stock"),
            json!({"delta": 10}),
        )
        .await;
    assert_eq!(status, 422, "{refused}");
    let (status, _) = owner
        .post(
            &format!("/api/v1/coupon-programs/{id}/state"),
            json!({"state": "active"}),
        )
        .await;
    assert_eq!(status, 422, "no cover yet");
    let png = [&b"\x89PNG\r\n\x1a\n"[..], &[0u8; 64][..]].concat();
    let (status, covered) = owner
        .upload(&format!("/api/v1/coupon-programs/{id}/cover"), &png)
        .await;
    assert_eq!(status, 200, "{covered}");
    assert!(covered["shared"]["cover_url"]
        .as_str()
        .unwrap()
        .starts_with(&format!("/m/coupon-covers/{id}?v=")));
    let (status, _) = owner
        .post(
            &format!("/api/v1/coupon-programs/{id}/state"),
            json!({"state": "active"}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, targeted) = owner
        .post(
            &format!("/api/v1/coupon-programs/{id}/issues"),
            json!({"recipients": [{"phone": "13800001234"}]}),
        )
        .await;
    assert_eq!(
        (status, &targeted["error"]["code"]),
        (409, &json!("coupon_claim_only"))
    );

    purchases(&app, &owner).await;
}

/// 购买券点: a request, the operator's confirmation (once), the statement.
async fn purchases(app: &TestApp, owner: &Client) {
    let m = app.merchant_id;
    let (status, _) = owner
        .post("/api/v1/credits/purchases", json!({"credits": 99}))
        .await;
    assert_eq!(status, 422);
    let (status, purchase) = owner
        .post("/api/v1/credits/purchases", json!({"credits": 100}))
        .await;
    assert_eq!(status, 201, "{purchase}");
    assert_eq!(
        (&purchase["state"], &purchase["amount_fen"]),
        (&json!("requested"), &json!(10000))
    );
    let (_, requests) = owner.get("/api/v1/credits/requests?state=requested").await;
    assert_eq!(requests["total"], 1);
    let confirm = format!(
        "/api/v1/credits/merchants/{m}/purchases/{}/confirm",
        purchase["id"]
    );
    let (status, confirmed) = owner.post(&confirm, json!({})).await;
    assert_eq!((status, &confirmed["state"]), (200, &json!("confirmed")));
    let (status, again) = owner.post(&confirm, json!({})).await;
    assert_eq!((status, &again["error"]["code"]), (409, &json!("conflict")));
    let (_, account) = owner.get("/api/v1/credits").await;
    assert_eq!(
        (&account["free_tenths"], &account["paid_tenths"]),
        (&json!(200), &json!(1000))
    );
    let (_, statement) = owner.get("/api/v1/credits/transactions").await;
    let kinds: Vec<&str> = statement["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["purchase", "buy_stock", "grant"]);
    let (status, bytes) = owner.get_bytes("/api/v1/credits/transactions/export").await;
    assert_eq!(status, 200);
    use calamine::Reader;
    let mut book: calamine::Xlsx<_> =
        calamine::open_workbook_from_rs(std::io::Cursor::new(bytes)).unwrap();
    let sheet = book.sheet_names()[0].clone();
    let range = book.worksheet_range(&sheet).unwrap();
    assert_eq!(range.get((0, 3)).unwrap().to_string(), "变动（券点）");
    assert_eq!(range.get((1, 1)).unwrap().to_string(), "付费充值");
    assert_eq!(range.get((1, 3)), Some(&calamine::Data::Float(100.0)));
    assert_eq!(range.get((2, 3)), Some(&calamine::Data::Float(-80.0)));
    let (_, audit) = owner.get("/api/v1/audit-log?action=grant_credits").await;
    assert_eq!(audit["total"], 1, "{audit}");
    let page = owner.page("/credits").await;
    assert!(
        page.contains("券点账户") && page.contains("付费充值"),
        "{page}"
    );
    let page = owner.page("/operator").await;
    assert!(page.contains("商户券点"), "{page}");
    let page = owner.page(&format!("/operator/merchants/{m}")).await;
    assert!(
        page.contains("活动赠送") && page.contains("开业活动"),
        "{page}"
    );
    let (_, lines) = owner
        .get(&format!("/api/v1/credits/merchants/{m}/transactions"))
        .await;
    assert_eq!(lines["total"], 3);
}
