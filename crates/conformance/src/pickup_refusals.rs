//! Pickup refusals: every wrong answer takes the same time, and each
//! carries its precise reason, naming the card only after a right password.

#[allow(unused_imports)]
use crate::fixtures::*;
use crate::NOW;
use kaquan_core::pickup::redeem::*;
use kaquan_core::{audit::*, card::*, pickup::*, store::*};

/// A wrong guess and a right password on a card that cannot be picked up
/// (unsold, voided, used, expired) are refused alike, and each counts
/// against the client's attempt limit: a refusal that skipped the count
/// once answered 2.5x faster, which confirmed the passwords of unsold
/// cards to a guesser. (Counted, not timed: tests assert no wall-clock time.)
pub async fn pickup_refusals_count_against_the_limit_whatever_the_reason(store: &dyn Store) {
    let (m, _, goods) = pickup_fixture(store, 5).await;
    let cards = card_secrets(store, m).await;
    let serial = |serial| CardFilter {
        serial_from: Some(serial),
        serial_to: Some(serial),
        ..Default::default()
    };
    for (card_serial, op) in [(1, CardOp::Deactivate), (2, CardOp::Void)] {
        store
            .apply_card_op(m, &serial(card_serial), op, &audit(m, "op"))
            .await
            .unwrap();
    }
    let cards_ids = store
        .list_cards(m, &serial(3), Page::default())
        .await
        .unwrap();
    store
        .redeem_pickup(
            &new_order(m, cards_ids[0].id, goods[0], Channel::Web),
            &audit(m, "redeem_pickup"),
        )
        .await
        .unwrap();
    edit_serials(
        store,
        m,
        4,
        4,
        CardEdit {
            valid_until: Some(Some(NOW - 86_400)),
            ..Default::default()
        },
    )
    .await;
    let settings = PickupSettings {
        attempts_per_card: i64::MAX,
        attempts_per_client: 3,
        ..Default::default()
    };
    let master = master();
    let redeemer = Redeemer {
        store,
        master: &master,
        merchant_id: m,
        now: NOW,
    };
    let attempts: [(&str, &str, &str); 6] = [
        ("unknown number", "ZZ99999999", "abcd1234"),
        ("wrong password", &cards[4].0, "wrong9999"),
        ("right password, inactive", &cards[0].0, &cards[0].1),
        ("right password, voided", &cards[1].0, &cards[1].1),
        ("right password, used", &cards[2].0, &cards[2].1),
        ("right password, expired", &cards[3].0, &cards[3].1),
    ];
    for (class, number, password) in attempts {
        let requester = Requester {
            channel: Channel::Web,
            client_key: format!("client-{class}"),
            actor: Actor::cli(),
        };
        for attempt in 1..=settings.attempts_per_client {
            let result =
                check_card(&redeemer, &settings, number, password, &requester, false).await;
            assert!(
                matches!(result, Err(RedeemError::Refused(_))),
                "{class} #{attempt}: {result:?}"
            );
        }
        let result = check_card(&redeemer, &settings, number, password, &requester, false).await;
        assert!(
            matches!(result, Err(RedeemError::Locked { .. })),
            "every {class} refusal counted: {result:?}"
        );
    }
    // Each class's refusals carry their precise reasons.
    let (log, _) = store.list_audit(m, Page::default()).await.unwrap();
    let mut reasons: Vec<_> = log
        .iter()
        .filter(|a| a.entry.detail.starts_with("channel=web reason="))
        .map(|a| a.entry.detail.trim_start_matches("channel=web reason="))
        .collect();
    reasons.sort();
    reasons.dedup();
    assert_eq!(
        reasons,
        [
            "expired",
            "inactive",
            "unknown_number",
            "used",
            "voided",
            "wrong_password"
        ]
    );
}

/// A refusal carries its precise reason, and names the card only when the
/// password was right.
pub async fn a_refusal_names_its_reason_and_the_card_only_after_a_right_password(
    store: &dyn Store,
) {
    let (m, card_ids, goods) = pickup_fixture(store, 3).await;
    let master = master();
    let cards: &'static [(String, String)] =
        Box::leak(card_secrets(store, m).await.into_boxed_slice());
    let redeemer = Redeemer {
        store,
        master: &master,
        merchant_id: m,
        now: NOW,
    };
    let settings = PickupSettings {
        attempts_per_card: 100,
        attempts_per_client: 100,
        ..Default::default()
    };
    let web = Requester {
        channel: Channel::Web,
        client_key: "c".into(),
        actor: Actor::cli(),
    };
    let refusal = |result: Result<CheckedCard, RedeemError>| match result {
        Err(RedeemError::Refused(r)) => Some((r.reason, r.card_id)),
        _ => None,
    };
    let check = |number: &'static str, password: &'static str| {
        check_card(&redeemer, &settings, number, password, &web, false)
    };
    let (number, password) = (&cards[0].0, &cards[0].1);
    assert_eq!(
        refusal(check("ZZ0000", "abcd1234").await),
        Some((Reason::UnknownNumber, None))
    );
    assert_eq!(
        refusal(check(number, "wrong9999").await),
        Some((Reason::WrongPassword, None))
    );
    store
        .redeem_pickup(
            &new_order(m, card_ids[0], goods[0], Channel::Web),
            &audit(m, "redeem_pickup"),
        )
        .await
        .unwrap();
    assert_eq!(
        refusal(check(number, password).await),
        Some((Reason::Used, Some(card_ids[0])))
    );
    assert_eq!(
        refusal(check(number, "wrong9999").await),
        Some((Reason::WrongPassword, None)),
        "a wrong password on a used card names nothing"
    );
    let one = CardFilter {
        serial_from: Some(2),
        serial_to: Some(2),
        ..Default::default()
    };
    store
        .apply_card_op(m, &one, CardOp::Deactivate, &audit(m, "d"))
        .await
        .unwrap();
    assert_eq!(
        refusal(check(&cards[1].0, &cards[1].1).await),
        Some((Reason::Inactive, Some(card_ids[1])))
    );
    store
        .apply_card_op(m, &one, CardOp::Void, &audit(m, "v"))
        .await
        .unwrap();
    assert_eq!(
        refusal(check(&cards[1].0, &cards[1].1).await),
        Some((Reason::Voided, Some(card_ids[1])))
    );
    let expire = CardEdit {
        valid_until: Some(Some(NOW - 1)),
        ..Default::default()
    };
    let third = CardFilter {
        serial_from: Some(3),
        serial_to: Some(3),
        ..Default::default()
    };
    store
        .edit_cards(m, &third, &expire, &audit(m, "e"))
        .await
        .unwrap();
    assert_eq!(
        refusal(check(&cards[2].0, &cards[2].1).await),
        Some((Reason::Expired, Some(card_ids[2])))
    );
}
