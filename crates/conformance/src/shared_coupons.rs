//! 朋友的券 given out and used: claims by link and by a friend's share
//! link within 每人可领 and the bought stock, no targeted issue, no
//! verification through the mall's API; and 核销后返券 with and without
//! stock, through a looked-up coupon and a typed code.

use crate::coupons::{
    active_program, at_location, cash_program_fields, claim_one, code_of, verify,
};
use crate::credits::{buy, grant, shared_fields, shared_program, start};
use crate::fixtures::*;
use crate::NOW;
use kaquan_core::audit::Actor;
use kaquan_core::coupon::usage::*;
use kaquan_core::coupon::usecases::{self, CodeReader, Recipients};
use kaquan_core::coupon::*;
use kaquan_core::credit::buy_stock;
use kaquan_core::ledger::ApiCall;
use kaquan_core::store::*;

async fn give(
    store: &dyn Store,
    program: &CouponProgram,
    source: CouponSource,
    customer_id: i64,
    shared_by: Option<i64>,
) -> Result<Coupon, CouponRefusal> {
    let recipients = Recipients {
        source,
        customer_ids: vec![customer_id],
        order: None,
        shared_by,
    };
    usecases::issue_coupons(
        store,
        &master(),
        &ApiCall::default(),
        program,
        recipients,
        &Actor::cli(),
        NOW,
    )
    .await
    .expect("issue")
    .result
    .map(|mut coupons| coupons.pop().expect("one coupon"))
}

pub async fn friends_claim_a_shared_coupon_through_a_share_link_within_its_limits(
    store: &dyn Store,
) {
    let m = merchant(store, "A").await.id;
    grant(store, m, 1).await;
    let program = shared_program(store, m, &shared_fields()).await;
    buy_stock(store, &buy(m, program.id, 3)).await.unwrap();
    let program = start(store, m, program.id).await;
    let [alice, bob, carol, dan] = [
        customer_id(store, m, "alice").await,
        customer_id(store, m, "bob").await,
        customer_id(store, m, "carol").await,
        customer_id(store, m, "dan").await,
    ];
    assert_eq!(
        give(store, &program, CouponSource::Targeted, alice, None).await,
        Err(CouponRefusal::ClaimOnly)
    );
    assert_eq!(
        give(store, &program, CouponSource::Order, alice, None).await,
        Err(CouponRefusal::ClaimOnly)
    );
    let first = claim_one(store, &program, alice, NOW).await.unwrap();
    let friend = give(store, &program, CouponSource::Share, bob, Some(alice))
        .await
        .unwrap();
    assert_eq!(friend.source, CouponSource::Share);
    assert_eq!(friend.program_id, first.program_id);
    assert_eq!(
        give(store, &program, CouponSource::Share, bob, Some(alice)).await,
        Err(CouponRefusal::ClaimLimitReached { get_limit: 1 }),
        "each friend within 每人可领"
    );
    give(store, &program, CouponSource::Share, carol, Some(alice))
        .await
        .unwrap();
    assert_eq!(
        give(store, &program, CouponSource::Share, dan, Some(bob)).await,
        Err(CouponRefusal::OutOfStock),
        "the sharer's stock is the program's"
    );

    let ordinary = active_program(store, m, &cash_program_fields(vec![]), 5).await;
    assert_eq!(
        give(store, &ordinary, CouponSource::Share, dan, Some(alice)).await,
        Err(CouponRefusal::NotShared)
    );

    let mut by_api = at_location(None, NOW + 60);
    by_api.channel = VerifyChannel::Api;
    assert_eq!(
        verify(store, &friend, &by_api, &ApiCall::default()).await,
        Err(CouponRefusal::OfflineOnly)
    );
    let at_counter = at_location(None, NOW + 60);
    let done = verify(store, &friend, &at_counter, &ApiCall::default())
        .await
        .unwrap();
    assert_eq!(done.customer_id, bob);
    assert_eq!(done.given_coupon_id, None, "no 核销后返券 named");
    assert_verified(store).await;
}

/// A program (stock 5) whose verified coupons give one of another (stock `gift_stock`).
async fn give_back_programs(
    store: &dyn Store,
    m: i64,
    gift_stock: i64,
) -> (CouponProgram, CouponProgram) {
    let mut gift_fields = cash_program_fields(vec![]);
    gift_fields.get_limit = 5;
    let gift = active_program(store, m, &gift_fields, gift_stock).await;
    let mut fields = cash_program_fields(vec![]);
    fields.get_limit = 5;
    fields.use_limit = 5;
    fields.give_program_id = Some(gift.id);
    (gift.clone(), active_program(store, m, &fields, 5).await)
}

pub async fn a_verified_coupon_gives_one_back_while_the_give_program_has_stock(store: &dyn Store) {
    let m = merchant(store, "A").await.id;
    let (gift, program) = give_back_programs(store, m, 1).await;
    let alice = customer_id(store, m, "alice").await;
    let first = claim_one(store, &program, alice, NOW).await.unwrap();
    let second = claim_one(store, &program, alice, NOW).await.unwrap();

    let done = verify(
        store,
        &first,
        &at_location(None, NOW + 60),
        &ApiCall::default(),
    )
    .await
    .unwrap();
    let given = done.given_coupon_id.expect("one coupon given back");
    let held = store.get_coupon(m, given).await.unwrap().expect("held");
    assert_eq!(
        (
            held.coupon.program_id,
            held.coupon.customer_id,
            held.coupon.source
        ),
        (gift.id, alice, CouponSource::GiveBack)
    );
    assert_eq!(
        store.get_coupon_verification(m, done.id).await.unwrap(),
        Some(done.clone()),
        "the record says what was given"
    );

    // The give program is out of stock: the verification still goes through.
    let empty = verify(
        store,
        &second,
        &at_location(None, NOW + 60),
        &ApiCall::default(),
    )
    .await
    .unwrap();
    assert_eq!(empty.given_coupon_id, None);
    assert_eq!(
        store
            .get_coupon(m, second.id)
            .await
            .unwrap()
            .unwrap()
            .coupon
            .state,
        CouponState::Verified
    );
    assert_verified(store).await;
}

pub async fn a_typed_code_and_a_program_of_its_own_give_back_too(store: &dyn Store) {
    let m = merchant(store, "A").await.id;
    let (gift, program) = give_back_programs(store, m, 1).await;
    let alice = customer_id(store, m, "alice").await;
    let third = claim_one(store, &program, alice, NOW).await.unwrap();
    // A typed code takes the same way, with its code made after the look-up.
    let gift = store.get_coupon_program(m, gift.id).await.unwrap();
    let more = usecases::edit_coupon_program(
        store,
        m,
        gift.id,
        gift.version,
        &gift.fields,
        &Actor::cli(),
        NOW,
    )
    .await
    .unwrap();
    assert!(
        usecases::change_stock(store, m, more.id, 1, &Actor::cli(), NOW)
            .await
            .unwrap()
    );
    let typed = usecases::verify_code(
        store,
        &master(),
        &CodeReader::staff(m, 99),
        &ApiCall::default(),
        &code_of(&third),
        &at_location(None, NOW + 60),
    )
    .await
    .unwrap()
    .result
    .unwrap();
    assert!(typed.given_coupon_id.is_some());
    let (wallet, _) = store
        .list_customer_coupons(m, alice, None, NOW, Page::default())
        .await
        .unwrap();
    assert_eq!(
        wallet
            .iter()
            .filter(|h| h.coupon.source == CouponSource::GiveBack && h.coupon.program_id == gift.id)
            .count(),
        1
    );

    // A program that gives one of its own.
    let mut own = cash_program_fields(vec![]);
    own.get_limit = 5;
    let own_program = active_program(store, m, &own, 5).await;
    own.give_program_id = Some(own_program.id);
    let own_program = usecases::edit_coupon_program(
        store,
        m,
        own_program.id,
        own_program.version,
        &own,
        &Actor::cli(),
        NOW,
    )
    .await
    .unwrap();
    let bob = customer_id(store, m, "bob").await;
    let coupon = claim_one(store, &own_program, bob, NOW).await.unwrap();
    let done = verify(
        store,
        &coupon,
        &at_location(None, NOW + 60),
        &ApiCall::default(),
    )
    .await
    .unwrap();
    let again = store
        .get_coupon(m, done.given_coupon_id.unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.coupon.program_id, own_program.id);
    assert_verified(store).await;
}
