//! 优惠券: stock and limits under concurrency, validity modes, location
//! scope, rotating codes, undo inside its window, gifts, the mall's order
//! lines and reconciliation.

use crate::fixtures::*;
use crate::NOW;
use kaquan_core::clock::{end_of_day, format_date, parse_date};
use kaquan_core::coupon::code::open_coupon_code;
use kaquan_core::coupon::usage::*;
use kaquan_core::coupon::usecases::{self, Recipients, VerifyRequest};
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
        shared: None,
        give_program_id: None,
    }
}

pub(crate) async fn active_program(
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

pub(crate) async fn claim_one(
    store: &dyn Store,
    program: &CouponProgram,
    customer_id: i64,
    now: i64,
) -> Result<Coupon, CouponRefusal> {
    let recipients = Recipients {
        source: CouponSource::Claim,
        customer_ids: vec![customer_id],
        order: None,
        shared_by: None,
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

pub(crate) fn code_of(coupon: &Coupon) -> String {
    open_coupon_code(
        &master(),
        coupon.merchant_id,
        coupon.key_version,
        &coupon.sealed,
    )
    .expect("the sealed code opens")
}

pub(crate) fn at_location(location_id: Option<i64>, now: i64) -> VerifyRequest {
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

pub(crate) async fn verify(
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
    usecases::verify_coupon(store, &master(), call, &held, request)
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

/// 每人可用: a holder of five coupons with a use limit of two, all five
/// verified at once (each with its own key): two go through, three are
/// refused for the limit and leave nothing behind.
pub async fn a_holders_use_limit_holds_when_their_coupons_are_verified_at_once(store: &dyn Store) {
    let m = merchant(store, "A").await.id;
    let mut fields = cash_program_fields(Vec::new());
    (fields.get_limit, fields.use_limit) = (5, 2);
    let program = active_program(store, m, &fields, 10).await;
    let alice = customer_id(store, m, "alice").await;
    let mut coupons = Vec::new();
    for _ in 0..5 {
        coupons.push(claim_one(store, &program, alice, NOW).await.unwrap());
    }
    let request = at_location(None, NOW + 60);
    let calls: Vec<ApiCall> = (0..5)
        .map(|i| claim(&format!("use-{i}"), &format!("h{i}")))
        .collect();
    let verifications = coupons
        .iter()
        .zip(&calls)
        .map(|(coupon, call)| verify(store, coupon, &request, call));
    let results = futures_util::future::join_all(verifications).await;
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        2,
        "{results:?}"
    );
    assert!(results
        .iter()
        .all(|r| r.is_ok() || *r == Err(CouponRefusal::UseLimitReached { use_limit: 2 })));
    let (records, total) = store
        .list_coupon_verifications(m, &VerificationFilter::default(), Page::default())
        .await
        .unwrap();
    assert_eq!((records.len(), total), (2, 2));
    let (usable, _) = store
        .list_customer_coupons(m, alice, Some(WalletTab::Usable), NOW + 60, Page::default())
        .await
        .unwrap();
    assert_eq!(usable.len(), 3, "the refused ones stay usable");
    assert_eq!(
        store.check_invariants().await.unwrap(),
        Vec::<String>::new()
    );
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
    let old_end = coupon.valid_until;
    assert_eq!(
        store
            .announce_expired_coupons(old_end + 1, 100)
            .await
            .unwrap(),
        1
    );
    // Widened after claims: the held coupon follows (same claim day).
    let mut wider = fields.clone();
    wider.validity = Validity::Relative {
        term_days: 10,
        begin_after_days: 1,
        hard_end: None,
    };
    let edit = |fields: CouponProgramFields| async move {
        usecases::edit_coupon_program(
            store,
            m,
            relative.id,
            relative.version,
            &fields,
            &actor(),
            NOW,
        )
        .await
    };
    assert!(matches!(
        edit(fields_with_term(&fields, 3)).await,
        Err(usecases::ProgramError::Invalid(_))
    ));
    edit(wider.clone())
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
    expires_again_at_its_new_end(store, m, old_end, held.valid_until).await;
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

/// The data of the merchant's `coupon.expired` events.
pub(crate) async fn expired_events(store: &dyn Store, m: i64) -> Vec<String> {
    let (events, _) = store.list_events(m, Page::default()).await.unwrap();
    events
        .into_iter()
        .filter(|e| e.event_type == kaquan_core::event::EventType::CouponExpired)
        .map(|e| e.data)
        .collect()
}

/// A coupon announced expired at `old_end`, then widened to `new_end`:
/// not expired in between, announced again once after its new end.
async fn expires_again_at_its_new_end(store: &dyn Store, m: i64, old_end: i64, new_end: i64) {
    assert_eq!(
        store
            .announce_expired_coupons(old_end + 1, 100)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .announce_expired_coupons(new_end + 1, 100)
            .await
            .unwrap(),
        1
    );
    let ends = expired_events(store, m).await;
    assert_eq!(ends.len(), 2, "{ends:?}");
    assert!(
        ends.iter().any(|d| d.contains(&format!("{new_end}"))),
        "{ends:?}"
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
        shared_by: None,
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
        shared_by: None,
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

pub async fn a_phone_sent_coupons_before_signing_up_is_taken_over_once(store: &dyn Store) {
    let m = merchant(store, "A").await.id;
    let made = store
        .create_phone_customer(m, "13800001234", "", NOW)
        .await
        .unwrap();
    let adopted = store
        .adopt_phone_customer(m, "13800001234", "hash-1")
        .await
        .unwrap()
        .expect("a customer without a password is taken over");
    assert_eq!(adopted.id, made.id);
    assert!(
        store
            .adopt_phone_customer(m, "13800001234", "hash-2")
            .await
            .unwrap()
            .is_none(),
        "once: then the password is theirs"
    );
    let (_, hash) = store
        .find_phone_customer(m, "13800001234")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(hash, "hash-1");
    assert!(store
        .adopt_phone_customer(m, "13900000000", "x")
        .await
        .unwrap()
        .is_none());
    let other = merchant(store, "B").await.id;
    assert!(store
        .adopt_phone_customer(other, "13800001234", "x")
        .await
        .unwrap()
        .is_none());
}

/// An uploaded logo replaces the one before, and the program points at it
/// as a new version; another merchant cannot put one on the program.
pub async fn a_program_keeps_the_logo_uploaded_for_it(store: &dyn Store) {
    let m = merchant(store, "A").await.id;
    let other = merchant(store, "B").await.id;
    let program = active_program(store, m, &cash_program_fields(Vec::new()), 10).await;
    let logo = |merchant_id: i64, bytes: &[u8]| CouponLogo {
        picture: CouponPicture::Logo,
        merchant_id,
        program_id: program.id,
        content_type: "image/png",
        bytes: bytes.to_vec(),
        url: format!("/m/coupon-logos/{}?v=1", program.id),
        now: NOW,
    };
    assert_eq!(
        store
            .get_coupon_logo(program.id, CouponPicture::Logo)
            .await
            .unwrap(),
        None
    );
    for bytes in [&b"first"[..], &b"second"[..]] {
        store
            .put_coupon_logo(&logo(m, bytes), &audit(m, "upload_coupon_logo"))
            .await
            .unwrap();
        assert_eq!(
            store
                .get_coupon_logo(program.id, CouponPicture::Logo)
                .await
                .unwrap(),
            Some(("image/png".to_owned(), bytes.to_vec()))
        );
    }
    let saved = store.get_coupon_program(m, program.id).await.unwrap();
    assert_eq!(
        saved.fields.logo_url,
        format!("/m/coupon-logos/{}?v=1", program.id)
    );
    assert_eq!(saved.version, program.version + 2);
    assert!(matches!(
        store
            .put_coupon_logo(&logo(other, b"theirs"), &audit(other, "upload_coupon_logo"))
            .await,
        Err(kaquan_core::StoreError::NotFound)
    ));
    assert_eq!(
        store
            .get_coupon_logo(program.id, CouponPicture::Logo)
            .await
            .unwrap(),
        Some(("image/png".to_owned(), b"second".to_vec()))
    );
}
