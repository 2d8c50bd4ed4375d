//! 数据分析's facts: one per card activated, code issued or coupon claimed
//! in the period, with its redemption and whether it lapsed.

#[allow(unused_imports)]
use crate::fixtures::*;
use crate::NOW;
use kaquan_core::analytics::*;
use kaquan_core::giftcard::GiftcardSettings;
use kaquan_core::pickup::Channel;
use kaquan_core::store::*;

/// Cards activated in the period, one picked up; codes issued, one
/// redeemed; nothing outside the period or of another merchant.
pub async fn issue_facts_follow_what_was_issued_and_redeemed(store: &dyn Store) {
    let (m, cards, goods) = pickup_fixture(store, 3).await;
    store
        .redeem_pickup(
            &new_order(m, cards[0], goods[0], Channel::Web),
            &audit(m, "redeem_pickup"),
        )
        .await
        .unwrap();
    let period = (NOW - 60, NOW + 60);
    let mut batch = store
        .issue_facts(m, InstrumentKind::Batch, period.0, period.1, NOW)
        .await
        .unwrap();
    batch.sort_by_key(|f| f.redeemed_at.is_none());
    assert_eq!(batch.len(), 3);
    assert_eq!(batch[0].redeemed_at, Some(NOW));
    assert!(batch.iter().all(|f| f.issued_at == NOW && !f.lapsed));
    assert!(batch[1..].iter().all(|f| f.redeemed_at.is_none()));
    let figures = figures(&batch, &[]);
    assert_eq!(
        (
            figures[0].issued,
            figures[0].redeemed,
            figures[0].outstanding
        ),
        (3, 1, 2)
    );
    // Outside the period, nothing; and the cards lapse once past validity.
    assert!(store
        .issue_facts(m, InstrumentKind::Batch, NOW + 60, NOW + 120, NOW)
        .await
        .unwrap()
        .is_empty());

    let (template_id, codes) = offline_codes(store, m, fields("100 元", 10_000), 2).await;
    redeem(
        store,
        &GiftcardSettings::default(),
        redeemer(m, "u1", "ip"),
        &codes[1],
    )
    .await
    .unwrap();
    let codes = store
        .issue_facts(m, InstrumentKind::CodeTemplate, 0, i64::MAX, NOW)
        .await
        .unwrap();
    assert_eq!(codes.len(), 2);
    assert!(codes
        .iter()
        .all(|f| f.instrument_id == template_id && f.value_fen == 10_000));
    assert_eq!(
        codes.iter().filter(|f| f.redeemed_at == Some(NOW)).count(),
        1
    );
    assert!(store
        .issue_facts(m, InstrumentKind::CouponProgram, 0, i64::MAX, NOW)
        .await
        .unwrap()
        .is_empty());
    let other = merchant(store, "B").await.id;
    for kind in InstrumentKind::ALL {
        assert!(store
            .issue_facts(other, kind, 0, i64::MAX, NOW)
            .await
            .unwrap()
            .is_empty());
    }
}

/// A card sale refunded in the period counts against its batch, and only
/// in the period it was refunded.
pub async fn card_sale_refunds_count_against_their_batch(store: &dyn Store) {
    use crate::card_sales::{refund, sale, sell};
    let m = merchant(store, "A").await.id;
    let batch = generate(store, m, quantity(5)).await;
    sell(store, sale(m, batch.id, "o1", 2))
        .await
        .result
        .unwrap();
    sell(store, sale(m, batch.id, "o2", 1))
        .await
        .result
        .unwrap();
    refund(store, m, "o1").await.result.unwrap();
    let counted = store
        .refunded_counts(m, InstrumentKind::Batch, NOW, NOW + 120)
        .await
        .unwrap();
    assert_eq!(
        counted,
        vec![Refunded {
            instrument_id: batch.id,
            count: 2
        }]
    );
    let facts = store
        .issue_facts(m, InstrumentKind::Batch, NOW, NOW + 120, NOW + 120)
        .await
        .unwrap();
    let f = &figures(&facts, &counted)[0];
    assert_eq!(
        (f.issued, f.refunded),
        (1, 2),
        "refunded cards are inactive"
    );
    for (from, to) in [(NOW + 61, NOW + 120), (NOW, NOW + 60)] {
        assert!(store
            .refunded_counts(m, InstrumentKind::Batch, from, to)
            .await
            .unwrap()
            .is_empty());
    }
    for kind in [InstrumentKind::CodeTemplate, InstrumentKind::CouponProgram] {
        assert!(store
            .refunded_counts(m, kind, 0, i64::MAX)
            .await
            .unwrap()
            .is_empty());
    }
    let other = merchant(store, "B").await.id;
    assert!(store
        .refunded_counts(other, InstrumentKind::Batch, 0, i64::MAX)
        .await
        .unwrap()
        .is_empty());
}

/// 会员卡 analytics: members joined, points issued and used, top-ups and
/// spending per program, and what the members hold now.
pub async fn member_programs_add_up_what_their_members_did(store: &dyn Store) {
    use crate::members::{activate, fields, payment, performed, program, recharge};
    let m = merchant(store, "A").await.id;
    let p = program(store, m, fields()).await;
    let quiet = program(store, m, fields()).await;
    activate(store, m, p.id, "u1").await;
    activate(store, m, p.id, "u2").await;
    performed(store, m, recharge("u1", 10_000, 1_000, "r-1")).await;
    let paid = performed(store, m, payment("u1", 10_000, 0, 2_000, "o-1")).await;
    let totals = store
        .member_operation_totals(m, NOW, NOW + 1)
        .await
        .unwrap();
    let holdings = store.program_holdings(m).await.unwrap();
    let all = program_figures(&totals, &holdings);
    assert_eq!(all.len(), 1, "a program without members shows nothing");
    let f = &all[0];
    assert_eq!(f.program_id, p.id);
    assert_ne!(f.program_id, quiet.id);
    assert_eq!(f.joined, 2);
    assert_eq!(f.points_issued, 20 + 20 + paid.points_earned);
    assert_eq!((f.recharged_fen, f.bonus_fen), (10_000, 1_000));
    assert_eq!(f.balance_spent_fen, 2_000);
    assert_eq!(f.spend_fen, 10_000 - paid.discount_fen);
    assert_eq!(f.holdings.members, 2);
    assert_eq!(f.holdings.points, 40 + paid.points_earned);
    assert_eq!(f.holdings.balance_fen, 11_000 - 2_000);
    assert!(store
        .member_operation_totals(m, NOW + 1, NOW + 2)
        .await
        .unwrap()
        .is_empty());
    let other = merchant(store, "B").await.id;
    assert!(store.program_holdings(other).await.unwrap().is_empty());
}
