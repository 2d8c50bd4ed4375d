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
    let figures = figures(&batch);
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
