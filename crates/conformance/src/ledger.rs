//! The ledger: balances, idempotency, nonces, races and random operations
//! against every invariant.

#[allow(unused_imports)]
use crate::fixtures::*;
use crate::NOW;
use kaquan_core::signing::NONCE_KEPT_SECONDS;
use kaquan_core::StoreError;
use kaquan_core::{giftcard::*, ledger::*, store::*};

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
