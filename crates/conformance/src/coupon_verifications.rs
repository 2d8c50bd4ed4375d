//! 核销 across the stores: location and verifier checks, the undo window
//! and reconciliation, rotating codes and the verifier's throttle, gifts,
//! and the expiry announcement. The shared fixtures are in `coupons.rs`.

use crate::coupons::{
    active_program, at_location, cash_program_fields, claim_one, code_of, verify,
};
use crate::fixtures::*;
use crate::NOW;
use kaquan_core::coupon::code::{digest_keys, rotating_code, ROTATION_SECONDS};
use kaquan_core::coupon::usage::*;
use kaquan_core::coupon::usecases::{self, CodeReader, VerifyRequest};
use kaquan_core::location::LocationFields;
use kaquan_core::{audit::*, ledger::*, store::*};

fn actor() -> Actor {
    Actor::cli()
}
/// A merchant with three locations and a coupon valid at the first two.
async fn coupon_at_two_of_three_locations(store: &dyn Store) -> (i64, [i64; 3], Coupon) {
    let m = merchant(store, "A").await.id;
    let location = |name: &str| LocationFields {
        name: name.into(),
        address: "中山路 1 号".into(),
        phone: String::new(),
        hours: "09:00-21:00".into(),
        enabled: true,
    };
    let one = store
        .create_location(m, &location("一店"), &audit(m, "create_location"))
        .await
        .unwrap();
    let two = store
        .create_location(m, &location("二店"), &audit(m, "create_location"))
        .await
        .unwrap();
    let three = store
        .create_location(m, &location("三店"), &audit(m, "create_location"))
        .await
        .unwrap();
    let program = active_program(store, m, &cash_program_fields(vec![one.id, two.id]), 10).await;
    let alice = customer_id(store, m, "alice").await;
    let coupon = claim_one(store, &program, alice, NOW).await.unwrap();
    (m, [one.id, two.id, three.id], coupon)
}

pub async fn verification_checks_the_location_the_verifier_and_the_threshold(store: &dyn Store) {
    let (m, [one, two, three], coupon) = coupon_at_two_of_three_locations(store).await;
    let later = NOW + 3600;
    assert_eq!(
        verify(
            store,
            &coupon,
            &at_location(Some(three), later),
            &ApiCall::default()
        )
        .await,
        Err(CouponRefusal::WrongLocation)
    );
    let mut bound = at_location(Some(one), later);
    bound.verifier_locations = vec![two];
    assert_eq!(
        verify(store, &coupon, &bound, &ApiCall::default()).await,
        Err(CouponRefusal::NotYourLocation)
    );
    let mut below = at_location(Some(one), later);
    below.order_amount_fen = Some(9_999);
    assert_eq!(
        verify(store, &coupon, &below, &ApiCall::default()).await,
        Err(CouponRefusal::BelowThreshold {
            least_cost_fen: 10_000
        })
    );
    let key = claim("verify-1", "h1");
    let done = verify(store, &coupon, &at_location(Some(one), later), &key)
        .await
        .expect("verified at a listed location");
    assert_eq!(
        (done.discount_fen, done.order_amount_fen),
        (2_000, Some(12_000))
    );
    assert_eq!(done.location_name.as_deref(), Some("一店"));
    let replay = usecases::verify_coupon(
        store,
        &master(),
        &key,
        &store.get_coupon(m, coupon.id).await.unwrap().unwrap(),
        &at_location(Some(one), later),
    )
    .await
    .unwrap();
    assert!(
        replay.replayed,
        "a retry with the key answers the first verification"
    );
    assert_eq!(
        replay.result.as_ref(),
        Ok(&done),
        "the first answer is the verification as recorded"
    );
    assert_eq!(
        store.get_coupon_verification(m, done.id).await.unwrap(),
        Some(done.clone())
    );
    let again = usecases::verify_coupon(
        store,
        &master(),
        &ApiCall::default(),
        &store.get_coupon(m, coupon.id).await.unwrap().unwrap(),
        &at_location(Some(one), later),
    )
    .await
    .unwrap();
    assert!(
        matches!(again.result, Err(CouponRefusal::Used { .. })),
        "without the key it is used"
    );
    let replay = store
        .verify_coupon(
            &key,
            &VerifyCoupon {
                merchant_id: m,
                coupon_id: coupon.id,
                program_id: coupon.program_id,
                customer_id: coupon.customer_id,
                location_id: Some(one),
                actor: actor(),
                channel: VerifyChannel::Api,
                order_amount_fen: None,
                discount_fen: 0,
                order_ref: String::new(),
                give: None,
                now: later,
            },
        )
        .await
        .unwrap();
    assert!(replay.replayed);
    assert_eq!(
        replay.result.unwrap().id,
        done.id,
        "the key answers the first verification"
    );
}

pub async fn undo_keeps_its_window_and_reconciliation_counts_it(store: &dyn Store) {
    let (m, [one, two, _], coupon) = coupon_at_two_of_three_locations(store).await;
    let later = NOW + 3600;
    let done = verify(
        store,
        &coupon,
        &at_location(Some(one), later),
        &ApiCall::default(),
    )
    .await
    .expect("verified");
    // Undo: outside the window refused, inside it the coupon is usable again, once.
    let outside = usecases::undo_verification(
        store,
        &ApiCall::default(),
        m,
        done.id,
        &actor(),
        later + 3601,
    )
    .await
    .unwrap();
    assert_eq!(
        outside.result,
        Err(CouponRefusal::UndoWindowPassed { window_minutes: 60 })
    );
    let undone = usecases::undo_verification(
        store,
        &ApiCall::default(),
        m,
        done.id,
        &actor(),
        later + 3599,
    )
    .await
    .unwrap()
    .result
    .expect("undone inside the window");
    assert!(undone.undone_at.is_some());
    let again = usecases::undo_verification(
        store,
        &ApiCall::default(),
        m,
        done.id,
        &actor(),
        later + 3599,
    )
    .await
    .unwrap();
    assert_eq!(again.result, Err(CouponRefusal::AlreadyUndone));
    assert!(
        verify(
            store,
            &coupon,
            &at_location(Some(two), later + 3700),
            &ApiCall::default()
        )
        .await
        .is_ok(),
        "usable again after the undo"
    );
    let stats = store
        .daily_verification_stats(m, &VerificationFilter::default())
        .await
        .unwrap();
    let verified: i64 = stats.iter().map(|s| s.n_verified).sum();
    let undone: i64 = stats.iter().map(|s| s.n_undone).sum();
    assert_eq!((verified, undone), (1, 1));
    let by_verifier = store
        .verifier_stats(m, &VerificationFilter::default())
        .await
        .unwrap();
    assert_eq!(by_verifier.len(), 1);
    assert_eq!(
        (
            by_verifier[0].verifier.as_str(),
            by_verifier[0].n_verified,
            by_verifier[0].discount_fen
        ),
        ("desk", 1, 2_000)
    );
    let at_two = VerificationFilter {
        location_id: Some(two),
        ..Default::default()
    };
    assert_eq!(
        store
            .list_coupon_verifications(m, &at_two, Page::default())
            .await
            .unwrap()
            .1,
        1
    );
    verifications_are_audited_and_the_window_is_a_setting(store, m).await;
}

async fn verifications_are_audited_and_the_window_is_a_setting(store: &dyn Store, m: i64) {
    let actions: Vec<String> = store
        .list_audit(m, Page::default())
        .await
        .unwrap()
        .0
        .into_iter()
        .map(|r| r.entry.action)
        .collect();
    assert_eq!(actions.iter().filter(|a| *a == "verify_coupon").count(), 2);
    assert_eq!(
        actions
            .iter()
            .filter(|a| *a == "undo_coupon_verification")
            .count(),
        1
    );
    let settings = CouponSettings {
        undo_window_minutes: 5,
    };
    store
        .save_coupon_settings(m, &settings, &audit(m, "save_coupon_settings"))
        .await
        .unwrap();
    assert_eq!(store.get_coupon_settings(m).await.unwrap(), settings);
}

pub async fn rotating_codes_find_the_coupon_and_the_counter_refuses_the_fixed_one(
    store: &dyn Store,
) {
    let m = merchant(store, "A").await.id;
    let mut fields = cash_program_fields(Vec::new());
    fields.rotating_code = true;
    let program = active_program(store, m, &fields, 10).await;
    let alice = customer_id(store, m, "alice").await;
    let coupon = claim_one(store, &program, alice, NOW).await.unwrap();
    let code = code_of(&coupon);
    let staff = CodeReader::staff(m, 99);
    let keys = digest_keys(&master(), m);
    let now = NOW + 100;
    let shown = rotating_code(&keys, coupon.id, &code, now);
    let found = usecases::look_up_code(store, &master(), &staff, &shown, now + ROTATION_SECONDS)
        .await
        .unwrap()
        .expect("the rotating code of the last step finds the coupon");
    assert_eq!(found.coupon.id, coupon.id);
    assert_eq!(
        usecases::look_up_code(store, &master(), &staff, &shown, now + 3 * ROTATION_SECONDS)
            .await
            .unwrap()
            .map(|h| h.coupon.id),
        Err(CouponRefusal::UnknownCode),
        "a screenshot a minute later is useless"
    );
    assert_eq!(
        usecases::look_up_code(store, &master(), &staff, &code, now)
            .await
            .unwrap()
            .map(|h| h.coupon.id),
        Err(CouponRefusal::RotatingCodeRequired)
    );
    let api = CodeReader::api(m, "key-1");
    assert_eq!(
        usecases::look_up_code(store, &master(), &api, &code, now)
            .await
            .unwrap()
            .map(|h| h.coupon.id),
        Ok(coupon.id),
        "the mall's systems may use the fixed code"
    );
    // Wrong codes lock the verifier.
    for _ in 0..usecases::VERIFIER_FAILURES_MAX {
        let _ = usecases::look_up_code(store, &master(), &staff, "00000000000000000000", now).await;
    }
    assert!(matches!(
        usecases::look_up_code(store, &master(), &staff, &shown, now)
            .await
            .unwrap(),
        Err(CouponRefusal::Locked { .. })
    ));
    // Failures older than the window no longer count.
    let later = now + kaquan_core::attempts::ATTEMPT_WINDOW_SECONDS + 1;
    let fresh = rotating_code(&keys, coupon.id, &code, later);
    assert_eq!(
        usecases::look_up_code(store, &master(), &staff, &fresh, later)
            .await
            .unwrap()
            .map(|h| h.coupon.id),
        Ok(coupon.id),
        "the verifier is let in again once the window has passed"
    );
}

pub async fn a_gift_moves_the_coupon_to_the_friend_once(store: &dyn Store) {
    let m = merchant(store, "A").await.id;
    let program = active_program(store, m, &cash_program_fields(Vec::new()), 10).await;
    let alice = customer_id(store, m, "alice").await;
    let bob = customer_id(store, m, "bob").await;
    let carol = customer_id(store, m, "carol").await;
    let coupon = claim_one(store, &program, alice, NOW).await.unwrap();
    let held = store.get_coupon(m, coupon.id).await.unwrap().unwrap();
    let token = usecases::offer_gift(store, &held, alice, NOW)
        .await
        .unwrap()
        .expect("offered");
    let hash = kaquan_core::secrets::token_hash_hex(&token);
    let gifting = store
        .find_coupon_gift(&hash)
        .await
        .unwrap()
        .expect("open gift");
    assert_eq!(gifting.coupon.status(NOW), CouponStatus::Gifting);
    assert!(matches!(
        verify(
            store,
            &coupon,
            &at_location(None, NOW + 60),
            &ApiCall::default()
        )
        .await,
        Err(CouponRefusal::Gifting)
    ));
    assert_eq!(
        store
            .accept_coupon_gift(m, &hash, alice, NOW)
            .await
            .unwrap(),
        Err(CouponRefusal::OwnGift)
    );
    let (b, c) = futures_util::join!(
        store.accept_coupon_gift(m, &hash, bob, NOW),
        store.accept_coupon_gift(m, &hash, carol, NOW)
    );
    let (b, c) = (b.unwrap(), c.unwrap());
    assert_eq!(b.is_ok() as u8 + c.is_ok() as u8, 1, "once: {b:?} {c:?}");
    let winner = if b.is_ok() { bob } else { carol };
    let moved = store
        .get_coupon(m, coupon.id)
        .await
        .unwrap()
        .unwrap()
        .coupon;
    assert_eq!(
        (moved.customer_id, moved.source, moved.gifting),
        (winner, CouponSource::Gift, false)
    );
    assert_eq!(
        store
            .list_customer_coupons(m, alice, None, NOW, Page::default())
            .await
            .unwrap()
            .1,
        0,
        "the giver lost it"
    );
    assert_eq!(
        store.accept_coupon_gift(m, &hash, bob, NOW).await.unwrap(),
        Err(CouponRefusal::GiftUnavailable)
    );
    let mut no_gifts = cash_program_fields(Vec::new());
    no_gifts.can_give_friend = false;
    let no_gifts = active_program(store, m, &no_gifts, 10).await;
    let kept = claim_one(store, &no_gifts, alice, NOW).await.unwrap();
    let held = store.get_coupon(m, kept.id).await.unwrap().unwrap();
    assert_eq!(
        usecases::offer_gift(store, &held, alice, NOW)
            .await
            .unwrap(),
        Err(CouponRefusal::GiftNotAllowed)
    );
}

pub async fn coupons_past_their_validity_are_announced_once(store: &dyn Store) {
    let m = merchant(store, "A").await.id;
    let mut fields = cash_program_fields(Vec::new());
    fields.get_limit = 5;
    let program = active_program(store, m, &fields, 10).await;
    let alice = customer_id(store, m, "alice").await;
    let expiring = claim_one(store, &program, alice, NOW).await.unwrap();
    let used = claim_one(store, &program, alice, NOW).await.unwrap();
    verify(
        store,
        &used,
        &at_location(None, NOW + 60),
        &ApiCall::default(),
    )
    .await
    .expect("verified before it expired");
    let after = expiring.valid_until + 1;
    assert_eq!(
        store
            .announce_expired_coupons(expiring.valid_until, 100)
            .await
            .unwrap(),
        0,
        "not before its last second ends"
    );
    let (a, b) = futures_util::join!(
        store.announce_expired_coupons(after, 100),
        store.announce_expired_coupons(after, 100)
    );
    assert_eq!(
        a.unwrap() + b.unwrap(),
        1,
        "once, whoever sweeps; a used coupon never"
    );
    assert_eq!(
        store
            .announce_expired_coupons(after + 86_400, 100)
            .await
            .unwrap(),
        0
    );
    let expired = crate::coupons::expired_events(store, m).await;
    assert_eq!(expired.len(), 1);
    assert!(expired[0].contains(&format!("\"coupon_id\":{}", expiring.id)));
}

/// 核销 and its undo keep the program's counts (verified; expired is
/// what is left unused past its end, by the real clock), and a coupon
/// whose verification is undone after its validity ended is announced
/// expired then, once.
pub async fn a_program_counts_its_verified_and_expired_coupons_through_undo(store: &dyn Store) {
    let m = merchant(store, "A").await.id;
    let mut fields = cash_program_fields(Vec::new());
    fields.get_limit = 5;
    let program = active_program(store, m, &fields, 10).await;
    let alice = customer_id(store, m, "alice").await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(claim_one(store, &program, alice, NOW).await.unwrap());
    }
    let counts = |n_verified: i64, n_expired: i64, why: &'static str| async move {
        let p = store.get_coupon_program(m, program.id).await.unwrap();
        assert_eq!(
            (p.n_verified, p.n_expired),
            (n_verified, n_expired),
            "{why}"
        );
        assert_eq!(
            store.check_invariants().await.unwrap(),
            Vec::<String>::new()
        );
    };
    // Claimed at NOW, they ended long before the real clock's today.
    counts(0, 3, "claimed, unused, past their end").await;
    let end = held[0].valid_until;
    let done = verify(
        store,
        &held[0],
        &at_location(None, end - 30),
        &ApiCall::default(),
    )
    .await
    .expect("verified in its last minute");
    counts(1, 2, "one verified").await;
    assert_eq!(
        store.announce_expired_coupons(end + 1, 100).await.unwrap(),
        2,
        "the two unused ones; the verified one never"
    );
    usecases::undo_verification(store, &ApiCall::default(), m, done.id, &actor(), end + 60)
        .await
        .unwrap()
        .result
        .expect("undone inside the window, after the end");
    counts(0, 3, "the undone one is unused again").await;
    assert_eq!(
        store
            .announce_expired_coupons(end + 120, 100)
            .await
            .unwrap(),
        1,
        "the undone one is due now"
    );
    assert_eq!(
        store
            .announce_expired_coupons(end + 180, 100)
            .await
            .unwrap(),
        0
    );
    let announced = crate::coupons::expired_events(store, m)
        .await
        .iter()
        .filter(|data| data.contains(&format!("\"coupon_id\":{}", held[0].id)))
        .count();
    assert_eq!(announced, 1);
}

/// A signed call: its idempotency key and request, and its nonce.
/// Verifications sent at once (which a store may write together, as the
/// SQLite writer does) record exactly what verifications one at a time
/// do: the record, its audit record and event, the holder's and the
/// program's counts; and each rule holds inside the crowd: a coupon sent
/// twice is verified once, a key sent twice is one verification, a nonce
/// sent twice passes once.
pub async fn verifications_at_once_record_what_one_at_a_time_records(store: &dyn Store) {
    let m = merchant(store, "A").await.id;
    let program = active_program(store, m, &cash_program_fields(Vec::new()), 100).await;
    let mut coupons = Vec::new();
    for i in 0..41 {
        let holder = customer_id(store, m, &format!("c{i}")).await;
        coupons.push(claim_one(store, &program, holder, NOW).await.unwrap());
    }
    let request = at_location(None, NOW + 60);
    let mut verified = Vec::new();
    for (i, coupon) in coupons[..10].iter().enumerate() {
        let call = signed_call(&format!("alone-{i}"), &format!("n-alone-{i}"));
        verified.push(verify(store, coupon, &request, &call).await.unwrap());
    }
    let results = verify_a_crowd(store, m, &coupons, &request).await;
    let twice = |a: usize, b: usize| [&results[a], &results[b]];
    let used = Err(CouponRefusal::Used {
        verified_at: NOW + 60,
    });
    assert_eq!(twice(0, 30).iter().filter(|r| ***r == used).count(), 1);
    assert_eq!(
        results[1].as_ref().map(|v| v.id),
        results[31].as_ref().map(|v| v.id),
        "one key, one verification"
    );
    let reused = Err(CouponRefusal::NonceReused);
    assert_eq!(twice(2, 32).iter().filter(|r| ***r == reused).count(), 1);
    verified.extend(results.iter().filter_map(|r| r.as_ref().ok()).cloned());
    verified.sort_by_key(|v| v.id);
    verified.dedup_by_key(|v| v.id);
    // The coupon whose nonce was taken, verified again with its own.
    for (coupon, result) in [(12, &results[2]), (40, &results[32])] {
        if result.is_err() {
            let call = signed_call("later", "n-later");
            verified.push(
                verify(store, &coupons[coupon], &request, &call)
                    .await
                    .unwrap(),
            );
        }
    }
    assert_eq!(verified.len(), 41, "{results:?}");
    let first = verified[0].clone();
    for v in &verified {
        let holder = coupons.iter().position(|c| c.id == v.coupon_id).unwrap();
        assert_eq!(
            (
                v.customer_id,
                v.program_id,
                v.discount_fen,
                v.order_amount_fen
            ),
            (coupons[holder].customer_id, program.id, 2_000, Some(12_000))
        );
        assert_eq!(
            (
                &v.program_title,
                v.kind,
                &v.verifier,
                v.channel,
                v.created_at
            ),
            (
                &first.program_title,
                first.kind,
                &first.verifier,
                first.channel,
                first.created_at
            )
        );
        assert_eq!(v.customer_label, format!("c{holder}"));
        assert_eq!(
            store
                .get_coupon_verification(m, v.id)
                .await
                .unwrap()
                .as_ref(),
            Some(v)
        );
    }
    written_alike(store, m, &verified, &request.actor).await;
    let program = store.get_coupon_program(m, program.id).await.unwrap();
    assert_eq!(program.n_verified, 41);
    assert_eq!(
        store.check_invariants().await.unwrap(),
        Vec::<String>::new()
    );
}

/// The crowd of `verifications_at_once_record_what_one_at_a_time_records`,
/// sent at once: coupons 10..40, then coupon 10 again (another key), key
/// many-11 again (the same request), and coupon 40 with 12's nonce; every
/// other one by its typed code (looked up in the same visit where the
/// store can), the rest by the coupon looked up before.
async fn verify_a_crowd(
    store: &dyn Store,
    m: i64,
    coupons: &[Coupon],
    request: &VerifyRequest,
) -> Vec<Result<CouponVerification, CouponRefusal>> {
    let mut calls: Vec<(usize, ApiCall)> = (10..40)
        .map(|i| (i, signed_call(&format!("many-{i}"), &format!("n-many-{i}"))))
        .collect();
    calls.push((10, signed_call("many-again", "n-again")));
    calls.push((11, signed_call("many-11", "n-many-11-again")));
    calls.push((40, signed_call("many-40", "n-many-12")));
    let reader = CodeReader::api(m, "kq_test");
    let crowd = calls.iter().enumerate().map(|(k, (i, call))| {
        let (coupon, reader) = (&coupons[*i], &reader);
        async move {
            if k % 2 == 0 {
                let typed = code_of(coupon);
                usecases::verify_code(store, &master(), reader, call, &typed, request)
                    .await
                    .expect("verify")
                    .result
            } else {
                verify(store, coupon, request, call).await
            }
        }
    });
    futures_util::future::join_all(crowd).await
}

/// A used code sent again without a key is refused before anything is
/// written: its nonce stays free for the next request. Failures older
/// than the throttle's window do not count.
async fn refusals_leave_the_nonce_and_old_failures_lapse(
    store: &dyn Store,
    program: &kaquan_core::coupon::CouponProgram,
    used_code: &str,
    request: &VerifyRequest,
) {
    let m = program.merchant_id;
    let nonce_only = ApiCall {
        idempotency: None,
        ..signed_call("unused", "n-free")
    };
    let reader = CodeReader::api(m, "kq_c");
    let verify = |typed: String| {
        let (reader, nonce_only) = (&reader, &nonce_only);
        async move {
            usecases::verify_code(store, &master(), reader, nonce_only, &typed, request)
                .await
                .expect("verify")
                .result
        }
    };
    let refused = verify(used_code.into()).await;
    assert!(
        matches!(refused, Err(CouponRefusal::Used { .. })),
        "{refused:?}"
    );
    let bob = customer_id(store, m, "bob").await;
    let fresh = claim_one(store, program, bob, NOW).await.unwrap();
    let verified = verify(code_of(&fresh))
        .await
        .expect("the nonce was still free");
    assert_eq!(verified.coupon_id, fresh.id);
    // kq_d's failures all lie before the window: it is not locked out.
    let lapsed = request.now - kaquan_core::attempts::ATTEMPT_WINDOW_SECONDS - 1;
    for _ in 0..3 {
        store
            .record_failure(m, "coupon-client:kq_d", lapsed)
            .await
            .unwrap();
    }
    let throttled = CodeReader {
        failures_max: 3,
        ..CodeReader::api(m, "kq_d")
    };
    let called = usecases::verify_code(
        store,
        &master(),
        &throttled,
        &ApiCall::default(),
        "12345678901234567890",
        request,
    )
    .await
    .unwrap();
    assert_eq!(called.result, Err(CouponRefusal::UnknownCode));
}

/// An event's data in one spelling (PostgreSQL keeps it as jsonb).
fn json(data: &str) -> String {
    serde_json::from_str::<serde_json::Value>(data)
        .expect("event data is JSON")
        .to_string()
}

/// The audit records and events of `verified` are the ones core makes.
async fn written_alike(store: &dyn Store, m: i64, verified: &[CouponVerification], actor: &Actor) {
    let page = Page {
        page: 1,
        page_size: PAGE_SIZE_MAX,
    };
    type Row = (i64, Option<i64>, String, String, String, String, i64, i64);
    let row = |e: AuditEntry| -> Row {
        let AuditEntry {
            merchant_id,
            actor,
            action,
            target,
            detail,
            n_affected,
            created_at,
        } = e;
        (
            merchant_id,
            actor.staff_id,
            actor.label,
            action,
            target,
            detail,
            n_affected,
            created_at,
        )
    };
    let mut audited: Vec<Row> = store
        .list_audit(m, page)
        .await
        .unwrap()
        .0
        .into_iter()
        .map(|r| row(r.entry))
        .filter(|e| e.3 == "verify_coupon")
        .collect();
    let mut expected: Vec<Row> = verified
        .iter()
        .map(|v| row(v.audit("verify_coupon", actor, v.created_at)))
        .collect();
    audited.sort();
    expected.sort();
    assert_eq!(audited, expected);
    let verified_type = kaquan_core::event::EventType::CouponVerified;
    let mut events: Vec<String> = store
        .list_events(m, page)
        .await
        .unwrap()
        .0
        .into_iter()
        .filter(|e| e.event_type == verified_type)
        .map(|e| json(&e.data))
        .collect();
    let mut expected: Vec<String> = verified
        .iter()
        .map(|v| {
            json(
                &kaquan_core::event::NewEvent::coupon_verification(v, verified_type, v.created_at)
                    .data,
            )
        })
        .collect();
    events.sort();
    expected.sort();
    assert_eq!(events, expected);
}

/// 核销 of a typed code in one call (`usecases::verify_code`, which a
/// store may run as one visit): unknown codes count against the reader
/// until it is locked out, even with a good code; another reader verifies
/// that code once, its retry replays, and a second verification finds it
/// used.
pub async fn a_typed_code_is_verified_under_its_readers_throttle(store: &dyn Store) {
    let m = merchant(store, "A").await.id;
    let program = active_program(store, m, &cash_program_fields(Vec::new()), 10).await;
    let alice = customer_id(store, m, "alice").await;
    let coupon = claim_one(store, &program, alice, NOW).await.unwrap();
    let code = code_of(&coupon);
    let request = at_location(None, NOW + 60);
    let reader = |key: &str| CodeReader {
        failures_max: 3,
        ..CodeReader::api(m, key)
    };
    let verify = |reader: CodeReader, typed: String, call: ApiCall| {
        let request = request.clone();
        async move {
            usecases::verify_code(store, &master(), &reader, &call, &typed, &request)
                .await
                .expect("verify")
        }
    };
    for typed in ["12345678901234567890", "not a code", "00000000000000000000"] {
        let called = verify(reader("kq_a"), typed.into(), ApiCall::default()).await;
        assert_eq!(called.result, Err(CouponRefusal::UnknownCode), "{typed}");
    }
    let locked = verify(reader("kq_a"), code.clone(), ApiCall::default()).await;
    assert!(
        matches!(locked.result, Err(CouponRefusal::Locked { retry_after_seconds }) if retry_after_seconds > 0),
        "{locked:?}"
    );
    let first = verify(reader("kq_b"), code.clone(), claim("typed-1", "h")).await;
    let verified = first.result.expect("verified");
    assert_eq!(
        (verified.coupon_id, verified.discount_fen),
        (coupon.id, 2_000)
    );
    let retry = verify(reader("kq_b"), code.clone(), claim("typed-1", "h")).await;
    assert!(retry.replayed);
    assert_eq!(retry.result.map(|v| v.id), Ok(verified.id));
    let again = verify(reader("kq_b"), code.clone(), claim("typed-2", "h")).await;
    assert_eq!(
        again.result,
        Err(CouponRefusal::Used {
            verified_at: NOW + 60
        })
    );
    refusals_leave_the_nonce_and_old_failures_lapse(store, &program, &code, &request).await;
    assert_eq!(
        store.check_invariants().await.unwrap(),
        Vec::<String>::new()
    );
}
