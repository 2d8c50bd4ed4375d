//! 优惠券: stock and limits under concurrency, validity modes, location
//! scope, rotating codes, undo inside its window, gifts, the mall's order
//! lines and reconciliation.

use crate::fixtures::*;
use crate::NOW;
use kaquan_core::clock::{end_of_day, format_date, parse_date};
use kaquan_core::coupon::code::{digest_keys, open_coupon_code, rotating_code, ROTATION_SECONDS};
use kaquan_core::coupon::usage::*;
use kaquan_core::coupon::usecases::{self, CodeReader, Recipients, VerifyRequest};
use kaquan_core::coupon::*;
use kaquan_core::location::LocationFields;
use kaquan_core::{audit::*, ledger::*, store::*};

fn actor() -> Actor {
    Actor::cli()
}

pub(crate) fn cash_program_fields(location_ids: Vec<i64>) -> CouponProgramFields {
    CouponProgramFields {
        benefit: Benefit::Cash {
            least_cost_fen: 10_000,
            reduce_cost_fen: 2_000,
        },
        title: "满100减20".into(),
        sub_title: String::new(),
        brand_name: "果园".into(),
        logo_url: String::new(),
        color: "Color010".into(),
        notice: "结账时出示".into(),
        description: String::new(),
        service_phone: String::new(),
        get_limit: 1,
        use_limit: 1,
        validity: Validity::Relative {
            term_days: 30,
            begin_after_days: 0,
            hard_end: None,
        },
        time_limit: TimeLimit::default(),
        use_all_locations: location_ids.is_empty(),
        location_ids,
        code_type: CodeType::Qrcode,
        rotating_code: false,
        can_give_friend: true,
        can_use_with_other_discount: false,
    }
}

async fn active_program(
    store: &dyn Store,
    m: i64,
    fields: &CouponProgramFields,
    quantity: i64,
) -> CouponProgram {
    let program = usecases::create_coupon_program(store, m, fields, quantity, &actor(), NOW)
        .await
        .expect("create program");
    assert_eq!(program.state, ProgramState::Draft);
    assert!(
        usecases::set_program_state(store, m, program.id, ProgramState::Active, &actor(), NOW)
            .await
            .unwrap()
    );
    store.get_coupon_program(m, program.id).await.unwrap()
}

async fn claim_one(
    store: &dyn Store,
    program: &CouponProgram,
    customer_id: i64,
    now: i64,
) -> Result<Coupon, CouponRefusal> {
    let recipients = Recipients {
        source: CouponSource::Claim,
        customer_ids: vec![customer_id],
        order: None,
    };
    let called = usecases::issue_coupons(
        store,
        &master(),
        &ApiCall::default(),
        program,
        recipients,
        &actor(),
        now,
    )
    .await
    .expect("claim");
    called
        .result
        .map(|mut coupons| coupons.pop().expect("one coupon"))
}

fn code_of(coupon: &Coupon) -> String {
    open_coupon_code(
        &master(),
        coupon.merchant_id,
        coupon.key_version,
        &coupon.sealed,
    )
    .expect("the sealed code opens")
}

fn at_location(location_id: Option<i64>, now: i64) -> VerifyRequest {
    VerifyRequest {
        location_id,
        verifier_locations: Vec::new(),
        channel: VerifyChannel::Typed,
        order_amount_fen: Some(12_000),
        order_ref: "POS-1".into(),
        exchange_goods: None,
        actor: Actor {
            staff_id: None,
            label: "desk".into(),
        },
        now,
    }
}

async fn verify(
    store: &dyn Store,
    coupon: &Coupon,
    request: &VerifyRequest,
    call: &ApiCall,
) -> Result<CouponVerification, CouponRefusal> {
    let held = store
        .get_coupon(coupon.merchant_id, coupon.id)
        .await
        .unwrap()
        .expect("held coupon");
    usecases::verify_coupon(store, call, &held, request)
        .await
        .expect("verify")
        .result
}

pub async fn coupon_stock_and_claim_limits_hold_and_programs_follow_their_states(
    store: &dyn Store,
) {
    let m = merchant(store, "A").await.id;
    let mut fields = cash_program_fields(Vec::new());
    fields.get_limit = 2;
    let draft = usecases::create_coupon_program(store, m, &fields, 3, &actor(), NOW)
        .await
        .unwrap();
    let alice = customer_id(store, m, "alice").await;
    let bob = customer_id(store, m, "bob").await;
    assert_eq!(
        claim_one(store, &draft, alice, NOW).await,
        Err(CouponRefusal::ProgramNotActive)
    );
    let program = active_program(store, m, &fields, 3).await;
    assert!(claim_one(store, &program, alice, NOW).await.is_ok());
    assert!(claim_one(store, &program, alice, NOW).await.is_ok());
    assert_eq!(
        claim_one(store, &program, alice, NOW).await,
        Err(CouponRefusal::ClaimLimitReached { get_limit: 2 })
    );
    assert!(claim_one(store, &program, bob, NOW).await.is_ok());
    let carol = customer_id(store, m, "carol").await;
    assert_eq!(
        claim_one(store, &program, carol, NOW).await,
        Err(CouponRefusal::OutOfStock)
    );
    assert!(
        !usecases::change_stock(store, m, program.id, -1, &actor(), NOW)
            .await
            .unwrap(),
        "stock never falls below what was claimed"
    );
    assert!(
        usecases::change_stock(store, m, program.id, 2, &actor(), NOW)
            .await
            .unwrap()
    );
    let program = store.get_coupon_program(m, program.id).await.unwrap();
    assert_eq!(
        (program.quantity, program.n_claimed, program.stock_left()),
        (5, 3, 2)
    );
    assert!(
        usecases::set_program_state(store, m, program.id, ProgramState::Paused, &actor(), NOW)
            .await
            .unwrap()
    );
    assert_eq!(
        claim_one(store, &program, carol, NOW).await,
        Err(CouponRefusal::ProgramPaused)
    );
    assert!(
        !usecases::set_program_state(store, m, program.id, ProgramState::Paused, &actor(), NOW)
            .await
            .unwrap(),
        "paused only from active"
    );
    let other = merchant(store, "B").await.id;
    assert!(store.get_coupon_program(other, program.id).await.is_err());
    let (programs, total) = store
        .list_coupon_programs(
            m,
            &ProgramFilter {
                state: Some(ProgramState::Paused),
                ..Default::default()
            },
            Page::default(),
        )
        .await
        .unwrap();
    assert_eq!((programs.len(), total), (1, 1));
    let (wallet, n) = store
        .list_customer_coupons(m, alice, Some(WalletTab::Usable), NOW, Page::default())
        .await
        .unwrap();
    assert_eq!((wallet.len(), n), (2, 2));
    let actions: Vec<String> = store
        .list_audit(m, Page::default())
        .await
        .unwrap()
        .0
        .into_iter()
        .map(|r| r.entry.action)
        .collect();
    for action in [
        "create_coupon_program",
        "set_coupon_program_state",
        "change_coupon_stock",
    ] {
        assert!(actions.iter().any(|a| a == action), "{action} is audited");
    }
}

pub async fn one_thousand_concurrent_claims_of_a_hundred_stock_take_exactly_one_hundred(
    store: &dyn Store,
) {
    let m = merchant(store, "A").await.id;
    let program = active_program(store, m, &cash_program_fields(Vec::new()), 100).await;
    let mut customers = Vec::new();
    for i in 0..1000 {
        customers.push(customer_id(store, m, &format!("c{i}")).await);
    }
    let claims = customers
        .iter()
        .map(|customer| claim_one(store, &program, *customer, NOW));
    let results = futures_util::future::join_all(claims).await;
    let n_claimed = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(n_claimed, 100);
    assert!(results
        .iter()
        .all(|r| r.is_ok() || *r == Err(CouponRefusal::OutOfStock)));
    let program = store.get_coupon_program(m, program.id).await.unwrap();
    assert_eq!((program.n_claimed, program.stock_left()), (100, 0));
}

pub async fn one_customer_racing_fifty_claims_of_a_limit_one_program_gets_one(store: &dyn Store) {
    let m = merchant(store, "A").await.id;
    let program = active_program(store, m, &cash_program_fields(Vec::new()), 1000).await;
    let alice = customer_id(store, m, "alice").await;
    let claims = (0..50).map(|_| claim_one(store, &program, alice, NOW));
    let results = futures_util::future::join_all(claims).await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    assert!(results
        .iter()
        .all(|r| r.is_ok() || *r == Err(CouponRefusal::ClaimLimitReached { get_limit: 1 })));
    assert_eq!(
        store
            .get_coupon_program(m, program.id)
            .await
            .unwrap()
            .n_claimed,
        1
    );
}

pub async fn fifty_concurrent_verifications_of_one_coupon_verify_it_once(store: &dyn Store) {
    let m = merchant(store, "A").await.id;
    let program = active_program(store, m, &cash_program_fields(Vec::new()), 10).await;
    let alice = customer_id(store, m, "alice").await;
    let coupon = claim_one(store, &program, alice, NOW).await.unwrap();
    let request = at_location(None, NOW + 60);
    let call = ApiCall::default();
    let verifications = (0..50).map(|_| verify(store, &coupon, &request, &call));
    let results = futures_util::future::join_all(verifications).await;
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "{results:?}"
    );
    assert!(results.iter().all(|r| match r {
        Ok(v) => v.discount_fen == 2_000,
        Err(refusal) => matches!(refusal, CouponRefusal::Used { .. }),
    }));
    let (records, total) = store
        .list_coupon_verifications(m, &VerificationFilter::default(), Page::default())
        .await
        .unwrap();
    assert_eq!((records.len(), total), (1, 1));
}

pub async fn validity_modes_reach_the_coupons_and_widen_with_their_program(store: &dyn Store) {
    let m = merchant(store, "A").await.id;
    let alice = customer_id(store, m, "alice").await;
    let claimed_at = NOW;
    let mut fields = cash_program_fields(Vec::new());
    fields.get_limit = 10;
    fields.validity = Validity::Relative {
        term_days: 7,
        begin_after_days: 2,
        hard_end: None,
    };
    let relative = active_program(store, m, &fields, 10).await;
    let coupon = claim_one(store, &relative, alice, claimed_at)
        .await
        .unwrap();
    let day = day_start(claimed_at);
    assert_eq!(coupon.valid_from, day + 2 * 86_400);
    assert_eq!(coupon.valid_until, day + 9 * 86_400 - 1);
    assert!(matches!(
        verify(
            store,
            &coupon,
            &at_location(None, claimed_at),
            &ApiCall::default()
        )
        .await,
        Err(CouponRefusal::NotYetValid { .. })
    ));
    assert!(matches!(
        verify(
            store,
            &coupon,
            &at_location(None, coupon.valid_until + 1),
            &ApiCall::default()
        )
        .await,
        Err(CouponRefusal::Expired { .. })
    ));
    // Widened after claims: the held coupon follows (same claim day).
    let mut wider = fields.clone();
    wider.validity = Validity::Relative {
        term_days: 10,
        begin_after_days: 1,
        hard_end: None,
    };
    let narrower_refused = usecases::edit_coupon_program(
        store,
        m,
        relative.id,
        relative.version,
        &fields_with_term(&fields, 3),
        &actor(),
        NOW,
    )
    .await;
    assert!(matches!(
        narrower_refused,
        Err(usecases::ProgramError::Invalid(_))
    ));
    usecases::edit_coupon_program(
        store,
        m,
        relative.id,
        relative.version,
        &wider,
        &actor(),
        NOW,
    )
    .await
    .expect("a wider validity is saved");
    let held = store
        .get_coupon(m, coupon.id)
        .await
        .unwrap()
        .unwrap()
        .coupon;
    assert_eq!(held.valid_from, day + 86_400);
    assert_eq!(held.valid_until, day + 11 * 86_400 - 1);
    assert!(
        matches!(
            usecases::edit_coupon_program(
                store,
                m,
                relative.id,
                relative.version,
                &wider,
                &actor(),
                NOW
            )
            .await,
            Err(usecases::ProgramError::Store(
                kaquan_core::StoreError::Conflict(kaquan_core::Conflict::ProgramChanged)
            ))
        ),
        "an edit of an old version is refused"
    );
}

pub async fn a_hard_end_and_a_fixed_range_bound_every_claim(store: &dyn Store) {
    let m = merchant(store, "A").await.id;
    let alice = customer_id(store, m, "alice").await;
    let day = day_start(NOW);
    let mut fields = cash_program_fields(Vec::new());
    fields.get_limit = 10;
    // A hard end cuts the relative window.
    let hard_end = end_of_day(parse_date(&format_date(day + 4 * 86_400)).unwrap());
    let mut hard = fields.clone();
    hard.validity = Validity::Relative {
        term_days: 30,
        begin_after_days: 0,
        hard_end: Some(hard_end),
    };
    let hard = active_program(store, m, &hard, 10).await;
    assert_eq!(
        claim_one(store, &hard, alice, NOW)
            .await
            .unwrap()
            .valid_until,
        hard_end
    );
    assert_eq!(
        claim_one(store, &hard, alice, hard_end + 1).await,
        Err(CouponRefusal::ProgramExpired)
    );
    // A fixed range is the same for every claim.
    let mut fixed = fields;
    fixed.validity = Validity::Fixed {
        begin: day,
        end: day + 86_399,
    };
    let fixed = active_program(store, m, &fixed, 10).await;
    let coupon = claim_one(store, &fixed, alice, NOW).await.unwrap();
    assert_eq!((coupon.valid_from, coupon.valid_until), (day, day + 86_399));
}

fn fields_with_term(fields: &CouponProgramFields, term_days: i64) -> CouponProgramFields {
    CouponProgramFields {
        validity: Validity::Relative {
            term_days,
            begin_after_days: 0,
            hard_end: None,
        },
        ..fields.clone()
    }
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
        &key,
        &store.get_coupon(m, coupon.id).await.unwrap().unwrap(),
        &at_location(Some(one), later),
    )
    .await
    .unwrap();
    assert!(
        matches!(replay.result, Err(CouponRefusal::Used { .. })),
        "the use case checks first"
    );
    let replay = store
        .verify_coupon(
            &key,
            &VerifyCoupon {
                merchant_id: m,
                coupon_id: coupon.id,
                location_id: Some(one),
                actor: actor(),
                channel: VerifyChannel::Api,
                order_amount_fen: None,
                discount_fen: 0,
                order_ref: String::new(),
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

pub async fn mall_order_lines_issue_coupons_once(store: &dyn Store) {
    let m = merchant(store, "A").await.id;
    let mut fields = cash_program_fields(Vec::new());
    fields.get_limit = 1;
    let program = active_program(store, m, &fields, 10).await;
    let alice = customer_id(store, m, "alice").await;
    let order = |line: &str, n: usize| Recipients {
        source: CouponSource::Order,
        customer_ids: vec![alice; n],
        order: Some(("M-1".into(), line.into())),
    };
    let program = &program;
    let issue = |recipients, call: ApiCall| async move {
        usecases::issue_coupons(store, &master(), &call, program, recipients, &actor(), NOW)
            .await
            .unwrap()
    };
    let first = issue(order("1", 3), ApiCall::default()).await;
    let coupons = first.result.clone().expect("three for a line of three");
    assert_eq!(
        coupons.len(),
        3,
        "a purchase is not held to the claim limit"
    );
    assert!(coupons.iter().all(|c| c.order_id.as_deref() == Some("M-1")));
    let again = issue(order("1", 3), ApiCall::default()).await;
    assert!(again.replayed);
    assert_eq!(again.result.unwrap(), coupons);
    assert_eq!(
        issue(order("1", 2), ApiCall::default()).await.result,
        Err(CouponRefusal::OrderMismatch)
    );
    let keyed = issue(order("2", 1), claim("issue-2", "h")).await;
    let replay = issue(order("2", 1), claim("issue-2", "h")).await;
    assert!(replay.replayed);
    assert_eq!(replay.result, keyed.result);
    assert_eq!(
        issue(order("3", 1), claim("issue-2", "other")).await.result,
        Err(CouponRefusal::IdempotencyMismatch)
    );
    assert_eq!(
        store
            .get_coupon_program(m, program.id)
            .await
            .unwrap()
            .n_claimed,
        4
    );
    let stranger = Recipients {
        source: CouponSource::Targeted,
        customer_ids: vec![alice, 999_999],
        order: None,
    };
    assert_eq!(
        issue(stranger, ApiCall::default()).await.result,
        Err(CouponRefusal::CustomerNotFound)
    );
    assert_eq!(
        store
            .get_coupon_program(m, program.id)
            .await
            .unwrap()
            .n_claimed,
        4,
        "all or nothing"
    );
}

pub async fn locations_and_verifier_bindings_stay_within_their_merchant(store: &dyn Store) {
    let m = merchant(store, "A").await.id;
    let other = merchant(store, "B").await.id;
    let fields = LocationFields {
        name: "一店".into(),
        address: String::new(),
        phone: String::new(),
        hours: String::new(),
        enabled: true,
    };
    let one = store
        .create_location(m, &fields, &audit(m, "create_location"))
        .await
        .unwrap();
    assert!(
        store
            .create_location(m, &fields, &audit(m, "create_location"))
            .await
            .is_err(),
        "names are unique"
    );
    let theirs = store
        .create_location(other, &fields, &audit(other, "create_location"))
        .await
        .unwrap();
    let closed = LocationFields {
        enabled: false,
        ..fields.clone()
    };
    assert!(
        !store
            .update_location(m, one.id, &closed, &audit(m, "update_location"))
            .await
            .unwrap()
            .fields
            .enabled
    );
    assert!(store
        .update_location(m, theirs.id, &closed, &audit(m, "update_location"))
        .await
        .is_err());
    let staff = store.list_staff(m).await.unwrap();
    let staff_id = match staff.first() {
        Some(s) => s.id,
        None => {
            let role = store.list_roles(m).await.unwrap()[0].id;
            store
                .create_staff(
                    &kaquan_core::staff::NewStaff {
                        merchant_id: m,
                        username: "desk".into(),
                        name: String::new(),
                        phone: String::new(),
                        role_id: role,
                        password_hash: "x".into(),
                        must_change_password: false,
                    },
                    NOW,
                )
                .await
                .unwrap()
                .id
        }
    };
    assert_eq!(
        store.staff_locations(m, staff_id).await.unwrap(),
        Vec::<i64>::new()
    );
    store
        .set_staff_locations(m, staff_id, &[one.id], &audit(m, "set_staff_locations"))
        .await
        .unwrap();
    assert_eq!(
        store.staff_locations(m, staff_id).await.unwrap(),
        vec![one.id]
    );
    assert!(store
        .set_staff_locations(
            m,
            staff_id,
            &[one.id, theirs.id],
            &audit(m, "set_staff_locations")
        )
        .await
        .is_err());
    assert_eq!(
        store.staff_locations(m, staff_id).await.unwrap(),
        vec![one.id],
        "nothing changed"
    );
    assert_eq!(
        store.staff_locations(other, staff_id).await.unwrap(),
        Vec::<i64>::new()
    );
    assert_eq!(store.list_locations(m).await.unwrap().len(), 1);
}
