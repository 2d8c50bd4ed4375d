//! Conformance checks for stored value: codes, mall orders, the ledger,
//! idempotency, nonces, API keys and customer sessions.

use super::{audit, master, merchant, NOW};
use kaquan_core::giftcard::{
    self, open_code, CodeKind, CodeRedeemer, CodeState, CodeTemplateFields, GiftcardProductFields,
    GiftcardSettings, IssueOrderCodesRequest,
};
use kaquan_core::ledger::{
    AdjustBalance, ApiCall, Called, CustomerRef, IdempotencyClaim, IdempotencyKey, LedgerOp,
    LedgerTransaction, NonceUse, RefundSpend, Refusal, SpendBalance, TransactionKind,
};
use kaquan_core::pickup::Channel;
use kaquan_core::signing::NONCE_KEPT_SECONDS;
use kaquan_core::store::*;
use kaquan_core::StoreError;

fn fields(name: &str, face_value_fen: i64) -> CodeTemplateFields {
    CodeTemplateFields {
        name: name.into(),
        face_value_fen,
        valid_from: None,
        valid_until: None,
    }
}

/// An offline batch of `n` codes; returns the template id and the plaintext codes.
async fn offline_codes(
    store: &dyn Store,
    merchant_id: i64,
    fields: CodeTemplateFields,
    n: usize,
) -> (i64, Vec<String>) {
    let codes = giftcard::new_codes(&master(), merchant_id, 1, n);
    let template = store
        .create_code_template(
            merchant_id,
            CodeKind::Offline,
            &fields,
            &codes,
            &audit(merchant_id, "create_code_template"),
        )
        .await
        .expect("create offline codes");
    assert_eq!((template.n_issued, template.n_used), (n as i64, 0));
    (
        template.id,
        plaintext_codes(store, merchant_id, template.id).await,
    )
}

async fn plaintext_codes(store: &dyn Store, merchant_id: i64, template_id: i64) -> Vec<String> {
    let keys = master().merchant_keys(merchant_id, 1);
    store
        .codes_after(merchant_id, template_id, 0, 1000)
        .await
        .expect("codes")
        .iter()
        .map(|c| open_code(&keys, c.sealed.as_deref().expect("sealed")).expect("opens"))
        .collect()
}

fn redeemer(merchant_id: i64, customer: &str, client: &str) -> CodeRedeemer {
    CodeRedeemer {
        merchant_id,
        customer: CustomerRef::External(customer.into()),
        client_key: client.into(),
        channel: Channel::Api,
        actor: Actor::cli(),
        now: NOW,
    }
}

async fn redeem(
    store: &dyn Store,
    settings: &GiftcardSettings,
    who: CodeRedeemer,
    code: &str,
) -> Result<LedgerTransaction, Refusal> {
    giftcard::redeem_code(store, &master(), settings, &ApiCall::default(), who, code)
        .await
        .expect("redeem")
        .result
}

fn claim(key: &str, body: &str) -> ApiCall {
    ApiCall {
        nonce: None,
        idempotency: Some(IdempotencyClaim {
            key: IdempotencyKey::parse(key).unwrap(),
            request_hash: body.into(),
        }),
    }
}

async fn customer_id(store: &dyn Store, merchant_id: i64, external_id: &str) -> i64 {
    store
        .ensure_customer(merchant_id, external_id, NOW)
        .await
        .expect("customer")
        .id
}

async fn balance(store: &dyn Store, merchant_id: i64, customer_id: i64) -> i64 {
    store
        .get_customer(merchant_id, customer_id)
        .await
        .expect("customer")
        .balance_fen
}

fn adjust(merchant_id: i64, customer_id: i64, delta_fen: i64) -> LedgerOp {
    LedgerOp::Adjust(AdjustBalance {
        merchant_id,
        customer_id,
        delta_fen,
        reason: "测试".into(),
        actor: Actor::cli(),
        now: NOW,
    })
}

fn spend(merchant_id: i64, customer: &str, amount_fen: i64) -> LedgerOp {
    LedgerOp::Spend(SpendBalance {
        merchant_id,
        customer: CustomerRef::External(customer.into()),
        amount_fen,
        reference: "order-1".into(),
        actor: Actor::cli(),
        now: NOW,
    })
}

fn refund(merchant_id: i64, spend_transaction_id: i64, amount_fen: i64) -> LedgerOp {
    LedgerOp::Refund(RefundSpend {
        merchant_id,
        spend_transaction_id,
        amount_fen,
        reason: "退货".into(),
        actor: Actor::cli(),
        now: NOW,
    })
}

async fn post(store: &dyn Store, op: LedgerOp) -> Result<LedgerTransaction, Refusal> {
    store
        .post_ledger(&ApiCall::default(), &op)
        .await
        .expect("post")
        .result
}

async fn assert_verified(store: &dyn Store) {
    assert_eq!(store.verify().await.expect("verify"), Vec::<String>::new());
}

pub async fn offline_codes_redeem_once_into_the_balance(store: &dyn Store) {
    let m = merchant(store, "A").await.id;
    let settings = GiftcardSettings::default();
    let (template_id, codes) = offline_codes(store, m, fields("中秋卡", 10_000), 3).await;
    assert!(codes.iter().all(|c| c.len() == 16));
    let credited = redeem(
        store,
        &settings,
        redeemer(m, "u1", "ip"),
        &giftcard::group_code(&codes[0]),
    )
    .await
    .expect("first redemption credits");
    assert_eq!(
        (
            credited.kind,
            credited.amount_fen,
            credited.balance_after_fen
        ),
        (TransactionKind::Redeem, 10_000, 10_000)
    );
    // A second redemption of the same code, by anyone, is refused alike.
    for who in ["u1", "u2"] {
        assert_eq!(
            redeem(store, &settings, redeemer(m, who, "ip"), &codes[0]).await,
            Err(Refusal::CodeRefused)
        );
    }
    let second = redeem(
        store,
        &settings,
        redeemer(m, "u1", "ip"),
        &codes[1].to_lowercase(),
    )
    .await
    .expect("lower case works");
    assert_eq!(second.balance_after_fen, 20_000);
    let u1 = customer_id(store, m, "u1").await;
    assert_eq!(balance(store, m, u1).await, 20_000);
    let (statement, total) = store.list_statement(m, u1, Page::default()).await.unwrap();
    assert_eq!(total, 2);
    assert_eq!(statement[0].id, second.id, "newest first");
    let template = store.get_code_template(m, template_id).await.unwrap();
    assert_eq!(
        (template.n_issued, template.n_used, template.n_unused()),
        (3, 2, 1)
    );
    let (listed, _) = store
        .list_codes(m, template_id, None, Page::default())
        .await
        .unwrap();
    assert_eq!(listed[0].state, CodeState::Used);
    assert_eq!(listed[0].customer_label.as_deref(), Some("u1"));
    assert_eq!(listed[0].redeemed_at, Some(NOW));
    assert_eq!(listed[2].state, CodeState::Unused);
    // Another merchant's customer cannot redeem this merchant's codes.
    let other = merchant(store, "B").await.id;
    assert_eq!(
        redeem(store, &settings, redeemer(other, "u1", "ip"), &codes[2]).await,
        Err(Refusal::CodeRefused)
    );
    let (audit_log, _) = store.list_audit(m, Page::default()).await.unwrap();
    let refused: Vec<_> = audit_log
        .iter()
        .filter(|a| a.entry.action == "code_refused")
        .collect();
    assert_eq!(refused.len(), 2);
    assert!(refused
        .iter()
        .all(|a| a.entry.detail.contains("reason=used")));
    assert!(
        audit_log
            .iter()
            .all(|a| !a.entry.detail.contains(&codes[0])),
        "codes never reach the audit log"
    );
    assert_verified(store).await;
}

pub async fn wrong_codes_count_against_the_attempt_limit(store: &dyn Store) {
    let m = merchant(store, "A").await.id;
    let settings = GiftcardSettings {
        attempt_limit: 3,
        ..Default::default()
    };
    let (_, codes) = offline_codes(store, m, fields("卡", 100), 2).await;
    redeem(store, &settings, redeemer(m, "u1", "ip1"), &codes[0])
        .await
        .unwrap();
    // Every refusal counts, a used code as much as a guess: all do the same
    // work, so none answers faster than another.
    for code in [codes[0].as_str(), "not a code", "ZZZZ-ZZZZ-ZZZZ-ZZZZ"] {
        assert_eq!(
            redeem(store, &settings, redeemer(m, "u1", "ip1"), code).await,
            Err(Refusal::CodeRefused)
        );
    }
    // Now u1 is locked, even with a good code and from another client.
    let locked = redeem(store, &settings, redeemer(m, "u1", "ip2"), &codes[1]).await;
    assert!(
        matches!(locked, Err(Refusal::Locked { retry_after_seconds }) if retry_after_seconds > 0),
        "{locked:?}"
    );
    // And so is the client ip1, for another customer.
    let locked = redeem(store, &settings, redeemer(m, "u2", "ip1"), &codes[1]).await;
    assert!(matches!(locked, Err(Refusal::Locked { .. })), "{locked:?}");
    // Another customer on another client is not.
    redeem(store, &settings, redeemer(m, "u2", "ip2"), &codes[1])
        .await
        .expect("u2 from ip2 redeems");
    // The lock lifts once the refusals are older than the window.
    let (_, later) = offline_codes(store, m, fields("卡", 100), 2).await;
    let at = |now: i64| CodeRedeemer {
        now,
        ..redeemer(m, "u1", "ip1")
    };
    let window = kaquan_core::pickup::ATTEMPT_WINDOW_SECONDS;
    assert!(matches!(
        redeem(store, &settings, at(NOW + window), &later[0]).await,
        Err(Refusal::Locked {
            retry_after_seconds: 1
        })
    ));
    redeem(store, &settings, at(NOW + window + 1), &later[0])
        .await
        .expect("u1 redeems again an hour after its refusals");
    assert_verified(store).await;
}

pub async fn expired_and_deleted_codes_are_refused(store: &dyn Store) {
    let m = merchant(store, "A").await.id;
    let settings = GiftcardSettings::default();
    let expired = CodeTemplateFields {
        valid_until: Some(NOW - 1),
        ..fields("过期", 100)
    };
    let (_, old) = offline_codes(store, m, expired, 1).await;
    assert_eq!(
        redeem(store, &settings, redeemer(m, "u1", "ip"), &old[0]).await,
        Err(Refusal::CodeRefused)
    );
    let (template_id, codes) = offline_codes(store, m, fields("删除", 100), 3).await;
    redeem(store, &settings, redeemer(m, "u1", "ip"), &codes[0])
        .await
        .unwrap();
    // Deleting asks for the number of unused codes the merchant confirmed.
    assert!(matches!(
        store
            .delete_code_template(m, template_id, 3, &audit(m, "delete_code_template"))
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store
            .delete_code_template(m, template_id, 2, &audit(m, "delete_code_template"))
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        redeem(store, &settings, redeemer(m, "u1", "ip"), &codes[1]).await,
        Err(Refusal::CodeRefused)
    );
    let template = store.get_code_template(m, template_id).await.unwrap();
    assert_eq!(
        (template.n_used, template.n_voided, template.n_unused()),
        (1, 2, 0)
    );
    assert!(template.deleted_at.is_some());
    assert_eq!(
        store
            .list_code_templates(m, CodeKind::Offline, Page::default())
            .await
            .unwrap()
            .1,
        1
    );
    let (audit_log, _) = store.list_audit(m, Page::default()).await.unwrap();
    let reasons: Vec<_> = audit_log
        .iter()
        .filter(|a| a.entry.action == "code_refused")
        .map(|a| a.entry.detail.clone())
        .collect();
    assert!(
        reasons.iter().any(|d| d.contains("reason=expired")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|d| d.contains("reason=voided")),
        "{reasons:?}"
    );
    assert_verified(store).await;
}

/// An unknown code and a used, voided or expired one are refused alike and
/// take the same time, whichever customer and client ask.
pub async fn code_refusals_take_the_same_time_whatever_the_reason(store: &dyn Store) {
    let m = merchant(store, "A").await.id;
    let settings = GiftcardSettings {
        attempt_limit: i64::MAX,
        ..GiftcardSettings::default()
    };
    let expired = CodeTemplateFields {
        valid_until: Some(NOW - 1),
        ..fields("过期", 100)
    };
    let (_, expired) = offline_codes(store, m, expired, 1).await;
    let (_, used) = offline_codes(store, m, fields("已用", 100), 1).await;
    redeem(store, &settings, redeemer(m, "u0", "ip"), &used[0])
        .await
        .unwrap();
    let (template_id, voided) = offline_codes(store, m, fields("作废", 100), 1).await;
    store
        .delete_code_template(m, template_id, 1, &audit(m, "delete_code_template"))
        .await
        .unwrap();
    let (_, unknown) =
        offline_codes(store, merchant(store, "B").await.id, fields("别家", 100), 1).await;
    let codes = [&unknown[0], &used[0], &voided[0], &expired[0]];
    // One customer per round: a new customer is created on its first
    // redemption, which the timing must not depend on; warm them all up.
    for round in 0..200 {
        let who = redeemer(m, &format!("u{round}"), &format!("ip{round}"));
        let _ = redeem(store, &settings, who, &unknown[0]).await;
    }
    super::assert_same_time(
        &["unknown", "used", "voided", "expired"],
        200,
        |class, round| {
            let who = redeemer(m, &format!("u{round}"), &format!("ip{round}"));
            let code = codes[class].clone();
            let settings = &settings;
            async move {
                assert_eq!(
                    redeem(store, settings, who, &code).await,
                    Err(Refusal::CodeRefused)
                );
            }
        },
    )
    .await;
}

pub async fn spends_refunds_and_adjustments_keep_the_balance_at_or_above_zero(store: &dyn Store) {
    let m = merchant(store, "A").await.id;
    let u = customer_id(store, m, "u1").await;
    assert_eq!(
        post(store, adjust(m, u, -1)).await,
        Err(Refusal::InsufficientBalance)
    );
    post(store, adjust(m, u, 10_000)).await.unwrap();
    let spent = post(store, spend(m, "u1", 3_000)).await.unwrap();
    assert_eq!((spent.amount_fen, spent.balance_after_fen), (-3_000, 7_000));
    assert_eq!(
        post(store, spend(m, "u1", 8_000)).await,
        Err(Refusal::InsufficientBalance)
    );
    assert_eq!(
        post(store, spend(m, "nobody", 1)).await,
        Err(Refusal::CustomerNotFound)
    );
    assert_eq!(
        post(store, refund(m, spent.id, 1_000))
            .await
            .unwrap()
            .balance_after_fen,
        8_000
    );
    assert_eq!(
        post(store, refund(m, spent.id, 2_001)).await,
        Err(Refusal::RefundExceedsSpend)
    );
    assert_eq!(
        post(store, refund(m, spent.id, 2_000))
            .await
            .unwrap()
            .balance_after_fen,
        10_000
    );
    assert_eq!(
        post(store, refund(m, spent.id, 1)).await,
        Err(Refusal::RefundExceedsSpend)
    );
    assert_eq!(
        post(store, refund(m, spent.id + 1000, 1)).await,
        Err(Refusal::SpendNotFound)
    );
    let adjusted = post(store, adjust(m, u, -10_000)).await.unwrap();
    assert_eq!(adjusted.balance_after_fen, 0);
    assert_eq!(
        post(store, adjust(m, 999_999, 5)).await,
        Err(Refusal::CustomerNotFound)
    );
    // Another merchant cannot refund this merchant's spend.
    let other = merchant(store, "B").await.id;
    assert_eq!(
        post(store, refund(other, spent.id, 1)).await,
        Err(Refusal::SpendNotFound)
    );
    assert_eq!(balance(store, m, u).await, 0);
    let (lines, total) = store.list_statement(m, u, Page::default()).await.unwrap();
    assert_eq!(total, 5);
    assert_eq!(lines.iter().map(|l| l.amount_fen).sum::<i64>(), 0);
    assert_verified(store).await;
}

pub async fn idempotency_keys_replay_the_first_outcome(store: &dyn Store) {
    let m = merchant(store, "A").await.id;
    let u = customer_id(store, m, "u1").await;
    post(store, adjust(m, u, 5_000)).await.unwrap();
    let first = store
        .post_ledger(&claim("k1", "spend 1000"), &spend(m, "u1", 1_000))
        .await
        .unwrap();
    assert!(!first.replayed);
    let replay = store
        .post_ledger(&claim("k1", "spend 1000"), &spend(m, "u1", 1_000))
        .await
        .unwrap();
    assert_eq!(
        replay,
        Called {
            result: first.result.clone(),
            replayed: true
        }
    );
    assert_eq!(balance(store, m, u).await, 4_000);
    let mismatch = store
        .post_ledger(&claim("k1", "spend 2000"), &spend(m, "u1", 2_000))
        .await
        .unwrap();
    assert_eq!(mismatch.result, Err(Refusal::IdempotencyMismatch));
    // A refusal is kept too: topping up later does not change the answer to k2.
    let refused = store
        .post_ledger(&claim("k2", "spend 9000"), &spend(m, "u1", 9_000))
        .await
        .unwrap();
    assert_eq!(refused.result, Err(Refusal::InsufficientBalance));
    post(store, adjust(m, u, 10_000)).await.unwrap();
    let replay = store
        .post_ledger(&claim("k2", "spend 9000"), &spend(m, "u1", 9_000))
        .await
        .unwrap();
    assert_eq!(
        replay,
        Called {
            result: Err(Refusal::InsufficientBalance),
            replayed: true
        }
    );
    // Keys are per merchant.
    let other = merchant(store, "B").await.id;
    let elsewhere = store
        .post_ledger(&claim("k1", "spend 1000"), &spend(other, "u1", 1_000))
        .await
        .unwrap();
    assert_eq!(elsewhere.result, Err(Refusal::CustomerNotFound));
    assert_eq!(
        store.purge_expired(NOW).await.unwrap(),
        0,
        "nothing is old yet"
    );
    assert!(store.purge_expired(NOW + 3 * 86_400).await.unwrap() >= 3);
    let after_purge = store
        .post_ledger(&claim("k1", "spend 1000"), &spend(m, "u1", 1_000))
        .await
        .unwrap();
    assert!(
        !after_purge.replayed,
        "a key forgotten after its keeping time is new again"
    );
    assert_verified(store).await;
}

pub async fn one_hundred_concurrent_replays_have_one_effect(store: &dyn Store) {
    let m = merchant(store, "A").await.id;
    let u = customer_id(store, m, "u1").await;
    post(store, adjust(m, u, 100_000)).await.unwrap();
    let calls = (0..100).map(|_| async move {
        store
            .post_ledger(&claim("same", "spend 700"), &spend(m, "u1", 700))
            .await
            .expect("post")
    });
    let results = futures_util::future::join_all(calls).await;
    let first = results
        .iter()
        .find(|r| !r.replayed)
        .expect("one call did the work");
    assert_eq!(results.iter().filter(|r| !r.replayed).count(), 1);
    assert!(results.iter().all(|r| r.result == first.result));
    assert_eq!(balance(store, m, u).await, 100_000 - 700);
    assert_verified(store).await;
}

pub async fn reused_nonces_are_refused(store: &dyn Store) {
    let m = merchant(store, "A").await.id;
    let u = customer_id(store, m, "u1").await;
    let call = ApiCall {
        nonce: Some(NonceUse {
            api_key_id: "kq_1".into(),
            nonce: "n-0123456789abcdef".into(),
            signed_at: NOW,
        }),
        idempotency: None,
    };
    assert!(store
        .post_ledger(&call, &adjust(m, u, 5))
        .await
        .unwrap()
        .result
        .is_ok());
    assert_eq!(
        store
            .post_ledger(&call, &adjust(m, u, 5))
            .await
            .unwrap()
            .result,
        Err(Refusal::NonceReused)
    );
    assert_eq!(balance(store, m, u).await, 5);
    let nonce = |key: &str, signed_at: i64| NonceUse {
        api_key_id: key.into(),
        nonce: "n-other-0123456789".into(),
        signed_at,
    };
    store.record_nonce(&nonce("kq_1", NOW)).await.unwrap();
    assert!(matches!(
        store.record_nonce(&nonce("kq_1", NOW)).await,
        Err(StoreError::Conflict(_))
    ));
    store
        .record_nonce(&nonce("kq_2", NOW))
        .await
        .expect("nonces are per key");
    // Kept while a request signed then could still be accepted, then forgotten.
    store.purge_expired(NOW + NONCE_KEPT_SECONDS).await.unwrap();
    assert!(matches!(
        store.record_nonce(&nonce("kq_1", NOW)).await,
        Err(StoreError::Conflict(_))
    ));
    store
        .purge_expired(NOW + NONCE_KEPT_SECONDS + 1)
        .await
        .unwrap();
    store
        .record_nonce(&nonce("kq_1", NOW))
        .await
        .expect("forgotten after NONCE_KEPT_SECONDS");
}

/// A signed call: its nonce and, when given, its idempotency key and body.
fn signed(nonce: &str, key: Option<(&str, &str)>) -> ApiCall {
    ApiCall {
        nonce: Some(NonceUse {
            api_key_id: "kq_1".into(),
            nonce: nonce.into(),
            signed_at: NOW,
        }),
        idempotency: key.map(|(key, body)| claim(key, body).idempotency.unwrap()),
    }
}

async fn redeem_signed(
    store: &dyn Store,
    call: &ApiCall,
    who: CodeRedeemer,
    code: &str,
) -> Called<LedgerTransaction> {
    let settings = GiftcardSettings::default();
    giftcard::redeem_code(store, &master(), &settings, call, who, code)
        .await
        .expect("redeem")
}

pub async fn signed_redemptions_keep_nonce_and_idempotency_rules(store: &dyn Store) {
    let m = merchant(store, "A").await.id;
    let (_, codes) = offline_codes(store, m, fields("卡", 2_000), 4).await;
    let who = || redeemer(m, "u1", "api");
    // A customer seen for the first time is created and credited.
    let first = redeem_signed(
        store,
        &signed("n-1", Some(("r1", "code 0"))),
        who(),
        &codes[0],
    )
    .await;
    assert!(!first.replayed);
    let first = first.result.expect("credited");
    assert_eq!(first.balance_after_fen, 2_000);
    // Known customer: credited again.
    let second = redeem_signed(
        store,
        &signed("n-2", Some(("r2", "code 1"))),
        who(),
        &codes[1],
    )
    .await;
    assert_eq!(
        second.result.as_ref().map(|t| t.balance_after_fen),
        Ok(4_000)
    );
    // The same request again (same nonce): refused, nothing changes.
    let replayed_nonce = redeem_signed(
        store,
        &signed("n-2", Some(("r2", "code 1"))),
        who(),
        &codes[1],
    )
    .await;
    assert_eq!(replayed_nonce.result, Err(Refusal::NonceReused));
    // Re-signed with a new nonce, same key and body: the first answer.
    let again = redeem_signed(
        store,
        &signed("n-3", Some(("r2", "code 1"))),
        who(),
        &codes[1],
    )
    .await;
    assert_eq!(
        again,
        Called {
            result: second.result.clone(),
            replayed: true
        }
    );
    // Same key, another code: 409, and that code stays unused.
    let mismatch = redeem_signed(
        store,
        &signed("n-4", Some(("r2", "code 2"))),
        who(),
        &codes[2],
    )
    .await;
    assert_eq!(mismatch.result, Err(Refusal::IdempotencyMismatch));
    // A reused nonce with a fresh key and a good code redeems nothing either.
    let reused = redeem_signed(
        store,
        &signed("n-1", Some(("r9", "code 2"))),
        who(),
        &codes[2],
    )
    .await;
    assert_eq!(reused.result, Err(Refusal::NonceReused));
    let u1 = customer_id(store, m, "u1").await;
    assert_eq!(balance(store, m, u1).await, 4_000);
    let third = redeem_signed(
        store,
        &signed("n-5", Some(("r3", "code 2"))),
        who(),
        &codes[2],
    )
    .await;
    assert_eq!(third.result.map(|t| t.balance_after_fen), Ok(6_000));
    // A refusal is kept under its key like a success.
    let refused = redeem_signed(
        store,
        &signed("n-6", Some(("r4", "code 0"))),
        who(),
        &codes[0],
    )
    .await;
    assert_eq!(refused.result, Err(Refusal::CodeRefused));
    let refused_again = redeem_signed(
        store,
        &signed("n-7", Some(("r4", "code 0"))),
        who(),
        &codes[0],
    )
    .await;
    assert_eq!(
        refused_again,
        Called {
            result: Err(Refusal::CodeRefused),
            replayed: true
        }
    );
    // Without a key, a signed redemption still credits once.
    let keyless = redeem_signed(store, &signed("n-8", None), who(), &codes[3]).await;
    assert_eq!(keyless.result.map(|t| t.balance_after_fen), Ok(8_000));
    // Fifty concurrent re-signed replays of one key: one effect, one answer.
    let (_, more) = offline_codes(store, m, fields("卡", 100), 1).await;
    let more = &more;
    let calls = (0..50).map(|i| async move {
        redeem_signed(
            store,
            &signed(&format!("n-c{i}"), Some(("r-same", "more 0"))),
            redeemer(m, "u2", "api"),
            &more[0],
        )
        .await
    });
    let results = futures_util::future::join_all(calls).await;
    assert_eq!(results.iter().filter(|r| !r.replayed).count(), 1);
    let winner = results.iter().find(|r| !r.replayed).unwrap();
    assert!(winner.result.is_ok());
    assert!(results.iter().all(|r| r.result == winner.result));
    let u2 = customer_id(store, m, "u2").await;
    assert_eq!(balance(store, m, u2).await, 100);
    assert_verified(store).await;
}

pub async fn concurrent_signed_redemptions_credit_each_code_once(store: &dyn Store) {
    let m = merchant(store, "A").await.id;
    let (template_id, codes) = offline_codes(store, m, fields("卡", 1_000), 200).await;
    let mut customers = Vec::new();
    for c in 0..10 {
        customers.push(customer_id(store, m, &format!("u{c}")).await);
    }
    let codes = &codes;
    // 300 calls over 200 codes (100 asked twice), ten customers; every
    // 50th call reuses the first call's nonce; every 7th shares one key
    // with a body of its own.
    let calls = (0..300usize).map(|i| async move {
        let nonce = if i % 50 == 0 {
            "n-0".to_string()
        } else {
            format!("n-{i}")
        };
        let code = i % 200;
        let body = format!("code {code}");
        let key = if i % 7 == 0 {
            "k-shared".to_string()
        } else {
            format!("k-{i}")
        };
        let called = redeem_signed(
            store,
            &signed(&nonce, Some((&key, &body))),
            redeemer(m, &format!("u{}", i % 10), "api"),
            &codes[code],
        )
        .await;
        (i, called)
    });
    let results = futures_util::future::join_all(calls).await;
    let credited: Vec<&LedgerTransaction> = results
        .iter()
        .filter(|(_, c)| !c.replayed)
        .filter_map(|(_, c)| c.result.as_ref().ok())
        .collect();
    let mut references: Vec<&str> = credited.iter().map(|t| t.reference.as_str()).collect();
    references.sort();
    references.dedup();
    assert_eq!(references.len(), credited.len(), "a code credits once");
    let template = store.get_code_template(m, template_id).await.unwrap();
    assert_eq!(template.n_used as usize, credited.len());
    let mut total = 0;
    for c in &customers {
        total += balance(store, m, *c).await;
    }
    assert_eq!(total, 1_000 * credited.len() as i64);
    let first_nonce_uses = results
        .iter()
        .filter(|(i, c)| i % 50 == 0 && c.result != Err(Refusal::NonceReused))
        .count();
    assert_eq!(first_nonce_uses, 1, "a nonce is used once");
    let shared_key_answers = results
        .iter()
        .filter(|(i, c)| i % 7 == 0 && c.result != Err(Refusal::NonceReused))
        .filter(|(_, c)| c.result != Err(Refusal::IdempotencyMismatch))
        .count();
    assert_eq!(shared_key_answers, 1, "a key answers one body");
    // Every code asked once with its own key and nonce was credited.
    for (i, called) in &results {
        let code = i % 200;
        let asked_twice = code < 100;
        if !asked_twice && i % 7 != 0 && i % 50 != 0 {
            assert!(called.result.is_ok(), "call {i}: {:?}", called.result);
        }
    }
    assert_verified(store).await;
}

pub async fn one_thousand_concurrent_redemptions_of_one_code_credit_once(store: &dyn Store) {
    let m = merchant(store, "A").await.id;
    let settings = GiftcardSettings {
        attempt_limit: 1000,
        ..Default::default()
    };
    let (_, codes) = offline_codes(store, m, fields("卡", 5_000), 1).await;
    let settings = &settings;
    let codes = &codes;
    let attempts = (0..1000).map(|i| async move {
        redeem(
            store,
            settings,
            redeemer(m, &format!("u{}", i % 10), &format!("ip{i}")),
            &codes[0],
        )
        .await
    });
    let results = futures_util::future::join_all(attempts).await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    assert!(results
        .iter()
        .filter(|r| r.is_err())
        .all(|r| *r == Err(Refusal::CodeRefused)));
    let (customers, _) = store.list_customers(m, "", Page::default()).await.unwrap();
    assert_eq!(customers.iter().map(|c| c.balance_fen).sum::<i64>(), 5_000);
    assert_verified(store).await;
}

pub async fn the_overspend_race_never_goes_below_zero(store: &dyn Store) {
    let m = merchant(store, "A").await.id;
    let u = customer_id(store, m, "u1").await;
    post(store, adjust(m, u, 10_000)).await.unwrap();
    let spends = (0..400).map(|i| {
        let amount = if i % 2 == 0 { 100 } else { 10_000 };
        async move { (amount, post(store, spend(m, "u1", amount)).await) }
    });
    let results = futures_util::future::join_all(spends).await;
    let spent: i64 = results
        .iter()
        .filter(|(_, r)| r.is_ok())
        .map(|(a, _)| a)
        .sum();
    assert!(results
        .iter()
        .all(|(_, r)| matches!(r, Ok(_) | Err(Refusal::InsufficientBalance))));
    assert!(spent <= 10_000);
    assert_eq!(balance(store, m, u).await, 10_000 - spent);
    assert_verified(store).await;
}

pub async fn mall_orders_issue_codes_once(store: &dyn Store) {
    let m = merchant(store, "A").await.id;
    let online = store
        .create_code_template(
            m,
            CodeKind::Online,
            &fields("线上卡", 20_000),
            &[],
            &audit(m, "create_code_template"),
        )
        .await
        .unwrap();
    let product = store
        .create_giftcard_product(
            m,
            &GiftcardProductFields {
                name: "200元礼品卡".into(),
                template_id: online.id,
                price_fen: 19_000,
                on_shelf: true,
            },
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(product.face_value_fen, 20_000);
    assert!(product.template_live, "its template exists");
    let request = |order_id: &str, quantity: i64| IssueOrderCodesRequest {
        merchant_id: m,
        order_id: order_id.into(),
        product_id: product.id,
        quantity,
        customer: Some(CustomerRef::External("buyer".into())),
        actor: Actor::cli(),
        now: NOW,
    };
    let issue = |order_id: &'static str, quantity: i64| {
        let request = request(order_id, quantity);
        async move {
            giftcard::issue_order_codes(store, &master(), &ApiCall::default(), request)
                .await
                .unwrap()
        }
    };
    let first = issue("o1", 2).await;
    let order = first.result.clone().expect("issued");
    assert!(!first.replayed);
    assert_eq!(order.codes.len(), 2);
    let again = issue("o1", 2).await;
    assert!(again.replayed);
    assert_eq!(again.result, first.result, "the same codes, nothing new");
    assert_eq!(issue("o1", 3).await.result, Err(Refusal::OrderMismatch));
    assert_eq!(
        store
            .get_code_template(m, online.id)
            .await
            .unwrap()
            .n_issued,
        2
    );
    // The buyer redeems one of them; the order then shows it used.
    let keys = master().merchant_keys(m, 1);
    let code = open_code(&keys, order.codes[0].sealed.as_deref().unwrap()).unwrap();
    redeem(
        store,
        &GiftcardSettings::default(),
        redeemer(m, "buyer", "ip"),
        &code,
    )
    .await
    .unwrap();
    let buyer = customer_id(store, m, "buyer").await;
    let orders = store.list_customer_orders(m, buyer).await.unwrap();
    assert_eq!(orders.len(), 1);
    assert_eq!(
        orders[0].codes.iter().map(|c| c.state).collect::<Vec<_>>(),
        [CodeState::Used, CodeState::Unused]
    );
    store
        .update_giftcard_product(
            m,
            product.id,
            &GiftcardProductFields {
                on_shelf: false,
                ..product.fields.clone()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        issue("o2", 1).await.result,
        Err(Refusal::ProductUnavailable)
    );
    let products = store.list_giftcard_products(m).await.unwrap();
    assert_eq!(products.len(), 1);
    assert!(products[0].template_live);
    // Deleting the template (voiding its one unused code) leaves the
    // product, which says so.
    store
        .delete_code_template(m, online.id, 1, &audit(m, "delete_code_template"))
        .await
        .unwrap();
    let products = store.list_giftcard_products(m).await.unwrap();
    assert!(!products[0].template_live, "the template is gone");
    assert_verified(store).await;
}

/// A new key's secret is kept only sealed, to its own key id: the node
/// that looks the key up opens the same secret, and a sealed copy moved to
/// another key id opens to nothing.
pub async fn an_api_key_secret_is_sealed_to_its_key_and_opens_again(store: &dyn Store) {
    use kaquan_core::signing::{create_api_key, open_api_secret};
    let m = merchant(store, "A").await.id;
    let master = master();
    let (key, secret) = create_api_key(store, &master, m, "商城", &audit(m, "create_api_key"))
        .await
        .unwrap();
    assert!(key.key_id.starts_with("kq_"));
    assert_eq!(secret.len(), 64);
    let found = store.find_api_key(&key.key_id).await.unwrap().unwrap();
    assert_ne!(
        found.secret_sealed,
        secret.as_bytes(),
        "never kept in plaintext"
    );
    assert_eq!(
        open_api_secret(&master, &found).as_deref(),
        Some(secret.as_str())
    );
    let moved = ApiKeySecret {
        key_id: "kq_0000000000000000".into(),
        ..found.clone()
    };
    assert_eq!(open_api_secret(&master, &moved), None);
    let (other, other_secret) =
        create_api_key(store, &master, m, "备用", &audit(m, "create_api_key"))
            .await
            .unwrap();
    assert_ne!(
        (other.key_id.as_str(), other_secret.as_str()),
        (key.key_id.as_str(), secret.as_str())
    );
}

pub async fn api_keys_allow_two_active_at_once(store: &dyn Store) {
    let m = merchant(store, "A").await.id;
    let create = |key_id: &'static str| async move {
        store
            .create_api_key(m, key_id, "商城", b"sealed", 1, &audit(m, "create_api_key"))
            .await
    };
    let first = create("kq_a").await.unwrap();
    create("kq_b").await.unwrap();
    assert!(matches!(create("kq_c").await, Err(StoreError::Conflict(_))));
    assert_eq!(
        store
            .find_api_key("kq_a")
            .await
            .unwrap()
            .map(|k| k.merchant_id),
        Some(m)
    );
    store
        .revoke_api_key(m, first.id, &audit(m, "revoke_api_key"))
        .await
        .unwrap();
    assert!(store.find_api_key("kq_a").await.unwrap().is_none());
    create("kq_c").await.expect("room again after revoking");
    let keys = store.list_api_keys(m).await.unwrap();
    assert_eq!(keys.iter().filter(|k| k.active).count(), 2);
    assert!(matches!(
        store
            .revoke_api_key(m, first.id, &audit(m, "revoke_api_key"))
            .await,
        Err(StoreError::NotFound)
    ));
}

pub async fn customers_sign_in_by_link_or_phone_with_sessions(store: &dyn Store) {
    let m = merchant(store, "A").await.id;
    let by_phone = store
        .create_phone_customer(m, "13800001111", "hash", NOW)
        .await
        .unwrap();
    assert!(matches!(
        store
            .create_phone_customer(m, "13800001111", "hash", NOW)
            .await,
        Err(StoreError::Conflict(_))
    ));
    let (found, hash) = store
        .find_phone_customer(m, "13800001111")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((found.id, hash.as_str()), (by_phone.id, "hash"));
    assert!(store
        .find_phone_customer(m, "13800002222")
        .await
        .unwrap()
        .is_none());
    let mall = store.ensure_customer(m, "mall-7", NOW).await.unwrap();
    assert_eq!(
        store.ensure_customer(m, "mall-7", NOW).await.unwrap().id,
        mall.id
    );
    assert_eq!(
        store
            .find_external_customer(m, "mall-7")
            .await
            .unwrap()
            .map(|c| c.id),
        Some(mall.id)
    );
    let (listed, total) = store
        .list_customers(m, "mall", Page::default())
        .await
        .unwrap();
    assert_eq!((listed.len(), total), (1, 1));
    assert_eq!(
        store
            .list_customers(m, "", Page::default())
            .await
            .unwrap()
            .1,
        2
    );
    store
        .consume_login_link("nonce-1", NOW + 300)
        .await
        .unwrap();
    assert!(matches!(
        store.consume_login_link("nonce-1", NOW + 300).await,
        Err(StoreError::Conflict(_))
    ));
    let session = CustomerSession {
        token_hash: "t".into(),
        merchant_id: m,
        customer_id: mall.id,
        csrf_token: "c".into(),
        expires_at: NOW + 10,
    };
    store.create_customer_session(&session).await.unwrap();
    assert_eq!(
        store.find_customer_session("t", NOW).await.unwrap(),
        Some(session)
    );
    assert_eq!(
        store.find_customer_session("t", NOW + 10).await.unwrap(),
        None
    );
    store.delete_customer_session("t").await.unwrap();
    assert_eq!(store.find_customer_session("t", NOW).await.unwrap(), None);
}

/// A small deterministic generator, so a failing sequence can be replayed.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

pub async fn random_ledger_operations_keep_every_invariant(store: &dyn Store) {
    let m = merchant(store, "A").await.id;
    let settings = GiftcardSettings {
        attempt_limit: 1000,
        ..Default::default()
    };
    let (_, codes) = offline_codes(store, m, fields("卡", 1_234), 40).await;
    let mut unused_codes = codes.clone();
    let names = ["p0", "p1", "p2"];
    let mut ids = Vec::new();
    for name in names {
        ids.push(customer_id(store, m, name).await);
    }
    let mut model = [0i64; 3];
    let mut spends: Vec<(usize, i64, i64)> = Vec::new(); // (customer, transaction, refundable)
    let mut rng = Lcg(20_261_123);
    for step in 0..300 {
        let who = rng.below(3) as usize;
        match rng.below(5) {
            0 => {
                // Redeem a fresh code, or (sometimes) a used one.
                let (code, fresh) = if !unused_codes.is_empty() && rng.below(4) != 0 {
                    let idx = rng.below(unused_codes.len() as u64) as usize;
                    (unused_codes.swap_remove(idx), true)
                } else {
                    let code = codes[rng.below(codes.len() as u64) as usize].clone();
                    let fresh = unused_codes.contains(&code);
                    unused_codes.retain(|c| *c != code);
                    (code, fresh)
                };
                match redeem(store, &settings, redeemer(m, names[who], "ip"), &code).await {
                    Ok(t) => {
                        assert!(fresh, "step {step}");
                        model[who] += 1_234;
                        assert_eq!(t.balance_after_fen, model[who], "step {step}");
                    }
                    Err(refusal) => {
                        assert!(!fresh, "step {step}");
                        assert_eq!(refusal, Refusal::CodeRefused);
                    }
                }
            }
            1 => {
                let amount = 1 + rng.below(3_000) as i64;
                match post(store, spend(m, names[who], amount)).await {
                    Ok(t) => {
                        model[who] -= amount;
                        spends.push((who, t.id, amount));
                    }
                    Err(refusal) => {
                        assert_eq!(refusal, Refusal::InsufficientBalance);
                        assert!(model[who] < amount, "step {step}");
                    }
                }
            }
            2 if !spends.is_empty() => {
                let idx = rng.below(spends.len() as u64) as usize;
                let (customer, transaction, refundable) = spends[idx];
                let amount = 1 + rng.below(refundable as u64 + 500) as i64;
                match post(store, refund(m, transaction, amount)).await {
                    Ok(_) => {
                        assert!(amount <= refundable);
                        model[customer] += amount;
                        spends[idx].2 -= amount;
                    }
                    Err(refusal) => {
                        assert_eq!(refusal, Refusal::RefundExceedsSpend);
                        assert!(amount > refundable);
                    }
                }
            }
            _ => {
                let delta = rng.below(4_000) as i64 - 2_000;
                if delta == 0 {
                    continue;
                }
                match post(store, adjust(m, ids[who], delta)).await {
                    Ok(_) => model[who] += delta,
                    Err(refusal) => {
                        assert_eq!(refusal, Refusal::InsufficientBalance);
                        assert!(model[who] + delta < 0);
                    }
                }
            }
        }
        for (idx, id) in ids.iter().enumerate() {
            assert!(model[idx] >= 0);
            assert_eq!(balance(store, m, *id).await, model[idx], "step {step}");
        }
    }
    assert_verified(store).await;
}
