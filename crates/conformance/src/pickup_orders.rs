//! Pickups and pickup orders: the checks, the rules, cancelling, shipping, races.

#[allow(unused_imports)]
use crate::fixtures::*;
use crate::NOW;
use kaquan_core::pickup::redeem::*;
use kaquan_core::{
    attempts::*, audit::*, card::*, goods::*, pickup::order::*, pickup::*, store::*,
};
use kaquan_core::{Conflict, StoreError};

pub async fn a_pickup_uses_the_card_and_creates_one_order(store: &dyn Store) {
    let (m, cards, goods) = pickup_fixture(store, 6).await;
    let order = store
        .redeem_pickup(
            &new_order(m, cards[0], goods[0], Channel::Web),
            &audit(m, "redeem_pickup"),
        )
        .await
        .unwrap();
    assert_eq!(
        (order.status, order.channel, order.goods_name.as_str()),
        (OrderStatus::Pending, Channel::Web, "苹果")
    );
    assert_eq!(order.consignee, consignee());
    assert_eq!(order.appointment_date.as_deref(), Some("2026-12-01"));
    let card = store
        .list_cards(
            m,
            &CardFilter {
                serial_to: Some(1),
                ..Default::default()
            },
            Page::default(),
        )
        .await
        .unwrap()
        .remove(0);
    assert_eq!((card.state, card.used_at), (CardState::Used, Some(NOW)));
    assert_eq!(order.card_number, card.number);
    let again = store
        .redeem_pickup(
            &new_order(m, cards[0], goods[1], Channel::Web),
            &audit(m, "redeem_pickup"),
        )
        .await;
    assert!(
        matches!(again, Err(StoreError::Conflict(_))),
        "one card, one order: {again:?}"
    );
    // Not linked goods: nothing changes.
    let other = store
        .create_goods(m, &goods_fields("梨"), NOW)
        .await
        .unwrap();
    let result = store
        .redeem_pickup(
            &new_order(m, cards[1], other.id, Channel::Web),
            &audit(m, "redeem_pickup"),
        )
        .await;
    assert!(matches!(result, Err(StoreError::NotFound)), "{result:?}");
    // Inactive and expired cards cannot be used.
    store
        .apply_card_op(
            m,
            &CardFilter {
                serial_from: Some(2),
                serial_to: Some(2),
                ..Default::default()
            },
            CardOp::Deactivate,
            &audit(m, "d"),
        )
        .await
        .unwrap();
    let result = store
        .redeem_pickup(
            &new_order(m, cards[1], goods[0], Channel::Web),
            &audit(m, "redeem_pickup"),
        )
        .await;
    assert!(
        matches!(result, Err(StoreError::Conflict(_))),
        "inactive: {result:?}"
    );
    let expire = CardEdit {
        valid_until: Some(Some(NOW - 1)),
        ..Default::default()
    };
    store
        .edit_cards(
            m,
            &CardFilter {
                serial_from: Some(3),
                serial_to: Some(3),
                ..Default::default()
            },
            &expire,
            &audit(m, "e"),
        )
        .await
        .unwrap();
    let result = store
        .redeem_pickup(
            &new_order(m, cards[2], goods[0], Channel::Web),
            &audit(m, "redeem_pickup"),
        )
        .await;
    assert!(
        matches!(result, Err(StoreError::Conflict(_))),
        "expired: {result:?}"
    );
    let not_yet = CardEdit {
        valid_from: Some(Some(NOW + 10)),
        ..Default::default()
    };
    store
        .edit_cards(
            m,
            &CardFilter {
                serial_from: Some(4),
                serial_to: Some(4),
                ..Default::default()
            },
            &not_yet,
            &audit(m, "e"),
        )
        .await
        .unwrap();
    let result = store
        .redeem_pickup(
            &new_order(m, cards[3], goods[0], Channel::Web),
            &audit(m, "redeem_pickup"),
        )
        .await;
    assert!(
        matches!(result, Err(StoreError::Conflict(_))),
        "not yet valid: {result:?}"
    );
    // In-store pickups are handed over at once; phone pickups join the queue.
    let in_store = store
        .redeem_pickup(
            &new_order(m, cards[4], goods[1], Channel::AtLocation),
            &audit(m, "redeem_pickup"),
        )
        .await
        .unwrap();
    assert_eq!(in_store.status, OrderStatus::PickedUp);
    assert_eq!(in_store.consignee, Consignee::default());
    let by_phone = store
        .redeem_pickup(
            &new_order(m, cards[5], goods[1], Channel::Phone),
            &audit(m, "redeem_pickup"),
        )
        .await
        .unwrap();
    assert_eq!(by_phone.status, OrderStatus::Pending);
    assert_eq!(
        store.latest_order_of_card(m, cards[5]).await.unwrap(),
        Some(by_phone.clone())
    );
    assert_eq!(store.get_order(m, by_phone.id).await.unwrap(), by_phone);
    let count = |filter: PickupOrderFilter| async move {
        store
            .list_orders(m, &filter, Page::default())
            .await
            .unwrap()
            .1
    };
    assert_eq!(count(PickupOrderFilter::default()).await, 3);
    assert_eq!(
        count(PickupOrderFilter {
            status: Some(OrderStatus::Pending),
            ..Default::default()
        })
        .await,
        2
    );
    assert_eq!(
        count(PickupOrderFilter {
            channel: Some(Channel::Phone),
            ..Default::default()
        })
        .await,
        1
    );
    assert_eq!(
        count(PickupOrderFilter {
            goods_id: Some(goods[1]),
            ..Default::default()
        })
        .await,
        2
    );
    assert_eq!(
        count(PickupOrderFilter {
            card_number: Some(order.card_number.to_ascii_lowercase()),
            ..Default::default()
        })
        .await,
        1
    );
    assert_eq!(
        count(PickupOrderFilter {
            phone: Some("13800001234".into()),
            ..Default::default()
        })
        .await,
        2
    );
    assert_eq!(
        count(PickupOrderFilter {
            appointment_from: Some("2026-12-01".into()),
            appointment_until: Some("2026-12-01".into()),
            ..Default::default()
        })
        .await,
        3
    );
    assert_eq!(
        count(PickupOrderFilter {
            appointment_from: Some("2026-12-02".into()),
            ..Default::default()
        })
        .await,
        0
    );
    let (log, _) = store.list_audit(m, Page::default()).await.unwrap();
    assert_eq!(log[0].entry.action, "redeem_pickup");
    assert!(log[0]
        .entry
        .target
        .contains(&format!("order={}", by_phone.id)));
    let other_merchant = merchant(store, "B").await;
    assert!(matches!(
        store.get_order(other_merchant.id, order.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(store.check_invariants().await.unwrap().is_empty());
}

pub async fn cancelling_an_order_makes_the_card_usable_again(store: &dyn Store) {
    let (m, cards, goods) = pickup_fixture(store, 2).await;
    let order = store
        .redeem_pickup(
            &new_order(m, cards[0], goods[0], Channel::Web),
            &audit(m, "redeem_pickup"),
        )
        .await
        .unwrap();
    store
        .cancel_order(m, order.id, &audit(m, "cancel_order"))
        .await
        .unwrap();
    let cancelled = store.get_order(m, order.id).await.unwrap();
    assert_eq!(
        (cancelled.status, cancelled.cancelled_at),
        (OrderStatus::Cancelled, Some(NOW))
    );
    assert!(matches!(
        store
            .cancel_order(m, order.id, &audit(m, "cancel_order"))
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store
            .cancel_order(m, 999_999, &audit(m, "cancel_order"))
            .await,
        Err(StoreError::NotFound)
    ));
    let again = store
        .redeem_pickup(
            &new_order(m, cards[0], goods[1], Channel::Web),
            &audit(m, "redeem_pickup"),
        )
        .await
        .unwrap();
    assert_eq!(again.goods_name, "桃子", "the card was usable again");
    let in_store = store
        .redeem_pickup(
            &new_order(m, cards[1], goods[0], Channel::AtLocation),
            &audit(m, "redeem_pickup"),
        )
        .await
        .unwrap();
    assert!(
        matches!(
            store
                .cancel_order(m, in_store.id, &audit(m, "cancel_order"))
                .await,
            Err(StoreError::Conflict(_))
        ),
        "handed over already"
    );
}

pub async fn shipping_is_all_or_nothing(store: &dyn Store) {
    let (m, cards, goods) = pickup_fixture(store, 3).await;
    let o1 = store
        .redeem_pickup(
            &new_order(m, cards[0], goods[0], Channel::Web),
            &audit(m, "redeem_pickup"),
        )
        .await
        .unwrap();
    let o2 = store
        .redeem_pickup(
            &new_order(m, cards[1], goods[0], Channel::Phone),
            &audit(m, "redeem_pickup"),
        )
        .await
        .unwrap();
    let ship = |id: i64| Shipment {
        order_id: id,
        carrier: "顺丰速运".into(),
        tracking_number: format!("SF{id:010}"),
    };
    let result = store
        .ship_orders(
            m,
            &[ship(o1.id), ship(999_999)],
            NOW + 5,
            &audit(m, "ship_orders"),
        )
        .await;
    assert!(
        matches!(&result, Err(StoreError::Conflict(Conflict::OrderNotPending { order_id })) if *order_id == 999999),
        "{result:?}"
    );
    assert_eq!(
        store.get_order(m, o1.id).await.unwrap().status,
        OrderStatus::Pending,
        "nothing shipped"
    );
    assert_eq!(
        store
            .ship_orders(
                m,
                &[ship(o1.id), ship(o2.id)],
                NOW + 5,
                &audit(m, "ship_orders")
            )
            .await
            .unwrap(),
        2
    );
    let shipped = store.get_order(m, o1.id).await.unwrap();
    assert_eq!(shipped.status, OrderStatus::Shipped);
    assert_eq!(
        (shipped.carrier.as_deref(), shipped.shipped_at),
        (Some("顺丰速运"), Some(NOW + 5))
    );
    assert!(matches!(
        store
            .ship_orders(m, &[ship(o1.id)], NOW, &audit(m, "ship_orders"))
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert!(
        matches!(
            store
                .cancel_order(m, o1.id, &audit(m, "cancel_order"))
                .await,
            Err(StoreError::Conflict(_))
        ),
        "shipped orders stay"
    );
    let shipped_today = PickupOrderFilter {
        shipped_from: Some(NOW),
        shipped_until: Some(NOW + 10),
        ..Default::default()
    };
    assert_eq!(
        store
            .list_orders(m, &shipped_today, Page::default())
            .await
            .unwrap()
            .1,
        2
    );
    let after = store
        .orders_after(m, &PickupOrderFilter::default(), 0, 1)
        .await
        .unwrap();
    assert_eq!(after[0].id, o1.id);
    assert_eq!(
        store
            .orders_after(m, &PickupOrderFilter::default(), o1.id, 10)
            .await
            .unwrap()[0]
            .id,
        o2.id
    );
}

/// A pickup check passes a right card and password with the card's goods,
/// refuses everything else with one answer and the precise reason in the
/// audit log, and locks a card or a client after the merchant's limit of
/// refusals in the window, until the oldest leaves it.
pub async fn pickup_checks_follow_the_card_and_the_attempt_limits(store: &dyn Store) {
    let (m, _, goods) = pickup_fixture(store, 3).await;
    let cards = card_secrets(store, m).await;
    let master = master();
    let settings = PickupSettings {
        attempts_per_card: 3,
        attempts_per_client: 5,
        ..Default::default()
    };
    let requester = |client: &str| Requester {
        channel: Channel::Web,
        client_key: client.into(),
        actor: Actor::cli(),
    };
    let check = |number: String, password: String, client: &'static str, now: i64| {
        let (master, settings) = (&master, &settings);
        async move {
            let redeemer = Redeemer {
                store,
                master,
                merchant_id: m,
                now,
            };
            check_card(
                &redeemer,
                settings,
                &number,
                &password,
                &requester(client),
                false,
            )
            .await
        }
    };
    let (number, password) = cards[0].clone();
    let checked = check(number.clone(), password.clone(), "c1", NOW)
        .await
        .expect("the right card and password pass");
    assert_eq!(checked.card.number, number);
    assert_eq!(
        checked.goods.iter().map(|g| g.id).collect::<Vec<_>>(),
        goods,
        "with the card's goods"
    );
    // Typed in lower case, the number is the same card.
    assert!(check(number.to_lowercase(), password.clone(), "c1", NOW)
        .await
        .is_ok());
    // Wrong passwords: refused, counted per card whatever the case typed.
    for typed in [number.clone(), number.to_lowercase(), number.clone()] {
        assert!(matches!(
            check(typed, "wrong9999".into(), "c1", NOW).await,
            Err(RedeemError::Refused(_))
        ));
    }
    let locked = check(number.clone(), password.clone(), "c2", NOW + 10).await;
    assert_eq!(
        locked.err(),
        Some(RedeemError::Locked {
            retry_after_seconds: ATTEMPT_WINDOW_SECONDS - 9
        }),
        "the card waits until its oldest failure leaves the window, whoever asks"
    );
    let at = |now: i64| check(number.clone(), password.clone(), "c2", now);
    assert!(
        matches!(
            at(NOW + ATTEMPT_WINDOW_SECONDS).await,
            Err(RedeemError::Locked {
                retry_after_seconds: 1
            })
        ),
        "a failure counts for the whole window"
    );
    assert!(
        at(NOW + ATTEMPT_WINDOW_SECONDS + 1).await.is_ok(),
        "and then the card passes again, when Retry-After said"
    );
    // Per client: two more refusals on other cards reach c1's limit of five.
    let (other, other_password) = cards[1].clone();
    for _ in 0..2 {
        assert!(matches!(
            check(other.clone(), "wrong9999".into(), "c1", NOW + 20).await,
            Err(RedeemError::Refused(_))
        ));
    }
    assert_eq!(
        check(other.clone(), other_password.clone(), "c1", NOW + 30)
            .await
            .err(),
        Some(RedeemError::Locked {
            retry_after_seconds: ATTEMPT_WINDOW_SECONDS - 29
        })
    );
    assert!(check(other, other_password, "c3", NOW + 30).await.is_ok());
    // The audit log has the precise reasons; the caller never does.
    let (log, _) = store.list_audit(m, Page::default()).await.unwrap();
    let reasons: Vec<_> = log
        .iter()
        .filter(|a| a.entry.action == "pickup_refused")
        .map(|a| a.entry.detail.clone())
        .collect();
    assert_eq!(reasons.len(), 5, "{reasons:?}");
    assert!(
        reasons
            .iter()
            .all(|r| r == "channel=web reason=wrong_password"),
        "{reasons:?}"
    );
    let unknown = check("ZZ0000".into(), "abcd1234".into(), "c4", NOW).await;
    assert!(matches!(unknown, Err(RedeemError::Refused(_))));
    let (log, _) = store.list_audit(m, Page::default()).await.unwrap();
    assert!(log
        .iter()
        .any(|a| a.entry.detail == "channel=web reason=unknown_number"
            && a.entry.target == "card=ZZ0000"));
}

/// Redeeming a pickup card: the page may be closed to customers, the goods
/// must be one of the card's, customers and phone orders need a consignee
/// and a date the merchant's mode allows, a counter handover needs neither;
/// the order lookup finds the order of a used card.
pub async fn a_pickup_follows_the_channel_goods_consignee_and_date_rules(store: &dyn Store) {
    let (m, _, goods) = pickup_fixture(store, 4).await;
    let cards = card_secrets(store, m).await;
    let master = master();
    let redeemer = Redeemer {
        store,
        master: &master,
        merchant_id: m,
        now: NOW,
    };
    let requester = |channel| Requester {
        channel,
        client_key: "c".into(),
        actor: Actor::cli(),
    };
    let request =
        |card: usize, goods_id: i64, with_consignee: bool, date: Option<&str>| PickupRequest {
            number: cards[card].0.clone(),
            password: cards[card].1.clone(),
            goods_id,
            consignee: with_consignee.then(consignee),
            appointment_date: date.map(str::to_owned),
        };
    let mut settings = PickupSettings {
        appointment: AppointmentMode::MinDaysAhead(2),
        ..Default::default()
    };
    let today = kaquan_core::clock::format_date(NOW);
    let date = |days: i64| {
        (kaquan_core::clock::parse_date(&today).unwrap() + time::Duration::days(days)).to_string()
    };
    let in_three_days = date(3);
    // Closed to customers: the page takes nothing, staff still can.
    settings.enabled = false;
    let web = requester(Channel::Web);
    assert_eq!(
        redeem_pickup(
            &redeemer,
            &settings,
            &request(0, goods[0], true, Some(&in_three_days)),
            &web
        )
        .await
        .err(),
        Some(RedeemError::Closed)
    );
    settings.enabled = true;
    // Goods that are not the card's.
    assert_eq!(
        redeem_pickup(
            &redeemer,
            &settings,
            &request(0, -1, true, Some(&in_three_days)),
            &web
        )
        .await
        .err(),
        Some(RedeemError::GoodsUnavailable)
    );
    // Goods of the card's that went off the shelf.
    let off_shelf = GoodsFields {
        on_shelf: false,
        ..goods_fields("苹果")
    };
    store
        .update_goods(m, goods[0], &off_shelf, NOW)
        .await
        .unwrap();
    assert_eq!(
        redeem_pickup(
            &redeemer,
            &settings,
            &request(0, goods[0], true, Some(&in_three_days)),
            &web
        )
        .await
        .err(),
        Some(RedeemError::GoodsUnavailable)
    );
    store
        .update_goods(m, goods[0], &goods_fields("苹果"), NOW)
        .await
        .unwrap();
    // No consignee, a date too soon, a malformed date: every problem at once.
    match redeem_pickup(
        &redeemer,
        &settings,
        &request(0, goods[0], false, Some(&date(1))),
        &web,
    )
    .await
    {
        Err(RedeemError::Invalid(errors)) => assert_eq!(errors.len(), 2, "{errors:?}"),
        other => panic!("{other:?}"),
    }
    match redeem_pickup(
        &redeemer,
        &settings,
        &request(0, goods[0], true, Some("2026/13/01")),
        &web,
    )
    .await
    {
        Err(RedeemError::Invalid(errors)) => {
            assert!(
                errors.iter().any(|e| e.contains("YYYY-MM-DD")),
                "{errors:?}"
            )
        }
        other => panic!("{other:?}"),
    }
    // A customer's order: consignee and the allowed date kept.
    let order = redeem_pickup(
        &redeemer,
        &settings,
        &request(0, goods[1], true, Some(&in_three_days)),
        &web,
    )
    .await
    .unwrap();
    assert_eq!(
        (
            order.channel,
            order.goods_id,
            order.appointment_date.as_deref()
        ),
        (Channel::Web, goods[1], Some(in_three_days.as_str()))
    );
    assert!(order.consignee == consignee());
    // The same card again: refused like any used card.
    assert!(matches!(
        redeem_pickup(
            &redeemer,
            &settings,
            &request(0, goods[0], true, Some(&in_three_days)),
            &web
        )
        .await,
        Err(RedeemError::Refused(_))
    ));
    // A counter handover: no consignee, no date, even with the page closed.
    settings.enabled = false;
    let handed = redeem_pickup(
        &redeemer,
        &settings,
        &request(1, goods[0], false, None),
        &requester(Channel::AtLocation),
    )
    .await
    .unwrap();
    assert!(handed.consignee == Consignee::default());
    assert_eq!(handed.appointment_date, None);
    // A phone order needs the consignee even with the page closed.
    assert!(matches!(
        redeem_pickup(
            &redeemer,
            &settings,
            &request(2, goods[0], false, Some(&in_three_days)),
            &requester(Channel::Phone)
        )
        .await,
        Err(RedeemError::Invalid(_))
    ));
    // The lookup finds a used card's order; the check for a pickup refuses it.
    let found = find_order(&redeemer, &cards[0].0, &cards[0].1, &web)
        .await
        .unwrap()
        .expect("the order of the used card");
    assert_eq!(found.id, order.id);
    assert_eq!(
        find_order(&redeemer, &cards[3].0, &cards[3].1, &web)
            .await
            .unwrap(),
        None,
        "an unused card has no order"
    );
    assert!(matches!(
        check_card(&redeemer, &settings, &cards[0].0, &cards[0].1, &web, false).await,
        Err(RedeemError::Refused(_))
    ));
    // A card valid only from tomorrow is refused until then.
    let tomorrow = NOW + 86_400;
    edit_serials(
        store,
        m,
        4,
        4,
        CardEdit {
            valid_from: Some(Some(tomorrow)),
            ..Default::default()
        },
    )
    .await;
    let at = |now| Redeemer {
        store,
        master: &master,
        merchant_id: m,
        now,
    };
    assert!(matches!(
        check_card(
            &at(tomorrow - 1),
            &settings,
            &cards[3].0,
            &cards[3].1,
            &web,
            false
        )
        .await,
        Err(RedeemError::Refused(_))
    ));
    assert!(check_card(
        &at(tomorrow),
        &settings,
        &cards[3].0,
        &cards[3].1,
        &web,
        false
    )
    .await
    .is_ok());
    // A card valid until now passes now and is refused a second later; the
    // lookup still finds an expired card's order.
    edit_serials(
        store,
        m,
        1,
        3,
        CardEdit {
            valid_until: Some(Some(NOW)),
            ..Default::default()
        },
    )
    .await;
    let (number, password) = (&cards[2].0, &cards[2].1);
    assert!(
        check_card(&at(NOW), &settings, number, password, &web, false)
            .await
            .is_ok()
    );
    assert!(matches!(
        check_card(&at(NOW + 1), &settings, number, password, &web, false).await,
        Err(RedeemError::Refused(_))
    ));
    assert!(find_order(&at(NOW + 1), &cards[0].0, &cards[0].1, &web)
        .await
        .unwrap()
        .is_some());
}

pub async fn fifty_simultaneous_pickups_of_one_card_create_one_order(store: &dyn Store) {
    let (m, cards, goods) = pickup_fixture(store, 1).await;
    let attempts = (0..50).map(|i| {
        let order = new_order(m, cards[0], goods[i % 2], Channel::Web);
        async move {
            store
                .redeem_pickup(&order, &audit(m, "redeem_pickup"))
                .await
        }
    });
    let results = futures_util::future::join_all(attempts).await;
    let won = results.iter().filter(|r| r.is_ok()).count();
    let lost = results
        .iter()
        .filter(|r| matches!(r, Err(StoreError::Conflict(_))))
        .count();
    assert_eq!((won, lost), (1, 49), "{results:?}");
    assert_eq!(
        store
            .list_orders(m, &PickupOrderFilter::default(), Page::default())
            .await
            .unwrap()
            .1,
        1
    );
}

/// 逾期待发 and the 待发 order: an order is due on its appointment date, or
/// on the day it was placed when it has none; the soonest due come first;
/// one call counts every tab.
pub async fn pending_orders_list_soonest_due_first_and_count_the_overdue(store: &dyn Store) {
    let (m, cards, goods) = pickup_fixture(store, 4).await;
    let day_start = NOW - 3600;
    let place = |card: i64, date: Option<&str>, created_at: i64| NewPickupOrder {
        appointment_date: date.map(Into::into),
        created_at,
        ..new_order(m, card, goods[0], Channel::Web)
    };
    let mut ids = Vec::new();
    for order in [
        place(cards[0], Some("2026-12-03"), NOW),
        place(cards[1], Some("2026-11-30"), NOW),
        place(cards[2], None, day_start - 1),
        place(cards[3], None, day_start + 1),
    ] {
        let created = store
            .redeem_pickup(&order, &audit(m, "redeem_pickup"))
            .await
            .unwrap();
        ids.push(created.id);
    }
    let pending = PickupOrderFilter {
        status: Some(OrderStatus::Pending),
        ..Default::default()
    };
    let overdue = PickupOrderFilter {
        due_before: Some(("2026-12-01".into(), day_start)),
        ..pending.clone()
    };
    let soonest = PickupOrderFilter {
        soonest_due_first: true,
        ..pending.clone()
    };
    let (listed, total) = store
        .list_orders(m, &soonest, Page::default())
        .await
        .unwrap();
    assert_eq!(total, 4);
    let order: Vec<_> = listed.iter().map(|o| o.id).collect();
    assert_eq!(
        order,
        [ids[1], ids[0], ids[2], ids[3]],
        "by date, then the undated by time"
    );
    let (overdue_listed, _) = store
        .list_orders(m, &overdue, Page::default())
        .await
        .unwrap();
    let mut overdue_ids: Vec<_> = overdue_listed.iter().map(|o| o.id).collect();
    overdue_ids.sort();
    assert_eq!(overdue_ids, [ids[1], ids[2]]);
    let shipped = PickupOrderFilter {
        status: Some(OrderStatus::Shipped),
        ..Default::default()
    };
    assert_eq!(
        store
            .count_orders(m, &[pending, overdue, shipped])
            .await
            .unwrap(),
        [4, 2, 0]
    );
    assert_eq!(store.count_orders(m, &[]).await.unwrap(), Vec::<i64>::new());
}
