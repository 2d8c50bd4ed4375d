//! The outbox and webhook deliveries.

#[allow(unused_imports)]
use crate::fixtures::*;
use crate::NOW;
use kaquan_core::event::*;
use kaquan_core::pickup::order::Shipment;
use kaquan_core::pickup::Channel;
use kaquan_core::{card::*, store::*, Conflict, StoreError};
use serde_json::Value;

async fn events(store: &dyn Store, merchant_id: i64) -> Vec<Event> {
    let mut events = store
        .list_events(merchant_id, Page::new(Some(1), Some(200)))
        .await
        .unwrap()
        .0;
    events.reverse();
    events
}

fn types(events: &[Event]) -> Vec<&'static str> {
    events.iter().map(|e| e.event_type.code()).collect()
}

fn data(event: &Event) -> Value {
    serde_json::from_str(&event.data).unwrap()
}

/// Every change other systems care about leaves its event, written with
/// the change: a refused change leaves none.
pub async fn changes_record_their_events_in_their_own_transaction(store: &dyn Store) {
    let (m, cards, goods) = pickup_fixture(store, 3).await;
    let before = events(store, m).await;
    assert_eq!(types(&before), ["batch.ready", "cards.activated"]);
    assert_eq!(data(&before[0])["n_cards"], 3);
    assert_eq!(data(&before[1])["n_cards"], 3);
    let order = store
        .redeem_pickup(
            &new_order(m, cards[0], goods[0], Channel::Web),
            &audit(m, "redeem_pickup"),
        )
        .await
        .unwrap();
    let second = store
        .redeem_pickup(
            &new_order(m, cards[1], goods[0], Channel::Phone),
            &audit(m, "redeem_pickup"),
        )
        .await
        .unwrap();
    // Refused: the card is used already; nothing recorded.
    assert!(store
        .redeem_pickup(
            &new_order(m, cards[0], goods[0], Channel::Web),
            &audit(m, "redeem_pickup"),
        )
        .await
        .is_err());
    let ship = |order_id| Shipment {
        order_id,
        carrier: "顺丰速运".into(),
        tracking_number: "SF1234567890".into(),
    };
    // Refused as a whole: one of the two is not an order.
    assert!(store
        .ship_orders(m, &[ship(order.id), ship(999_999)], NOW, &audit(m, "ship"))
        .await
        .is_err());
    store
        .ship_orders(m, &[ship(order.id)], NOW + 1, &audit(m, "ship"))
        .await
        .unwrap();
    store
        .cancel_order(m, second.id, &audit(m, "cancel_order"))
        .await
        .unwrap();
    let filter = CardFilter {
        serial_from: Some(3),
        ..Default::default()
    };
    store
        .apply_card_op(m, &filter, CardOp::Void, &audit(m, "void"))
        .await
        .unwrap();
    // Nothing left to void: no event for no card.
    store
        .apply_card_op(m, &filter, CardOp::Void, &audit(m, "void"))
        .await
        .unwrap();
    let recorded = events(store, m).await;
    assert_eq!(
        types(&recorded[2..]),
        [
            "pickup_order.created",
            "pickup_order.created",
            "pickup_order.shipped",
            "pickup_order.cancelled",
            "cards.voided"
        ]
    );
    let shipped = data(&recorded[4]);
    assert_eq!(shipped["order_id"], order.id);
    assert_eq!(shipped["status"], "shipped");
    assert_eq!(shipped["tracking_number"], "SF1234567890");
    assert_eq!(shipped["consignee"], order.consignee.name);
    assert_eq!(data(&recorded[5])["status"], "cancelled");
    assert_eq!(data(&recorded[6])["n_cards"], 1);
    assert!(recorded.iter().all(|e| e.merchant_id == m));
}

/// Each balance change records `balance.changed`; a redemption also
/// records `code.redeemed`; a refused spend records nothing.
pub async fn balance_changes_and_redemptions_record_their_events(store: &dyn Store) {
    let m = merchant(store, "A").await.id;
    let u = customer_id(store, m, "u1").await;
    let (_, codes) = offline_codes(store, m, fields("中秋卡", 3_000), 1).await;
    let recorded = events(store, m).await;
    post(store, adjust(m, u, 10_000)).await.unwrap();
    let spent = post(store, spend(m, "u1", 2_500)).await.unwrap();
    assert!(post(store, spend(m, "u1", 1_000_000)).await.is_err());
    post(store, refund(m, spent.id, 500)).await.unwrap();
    redeem_signed(
        store,
        &signed("n-1", None),
        redeemer(m, "u1", "ip"),
        &codes[0],
    )
    .await;
    let ledger = events(store, m).await.split_off(recorded.len());
    assert_eq!(
        types(&ledger),
        [
            "balance.changed",
            "balance.changed",
            "balance.changed",
            "balance.changed",
            "code.redeemed"
        ]
    );
    let kinds: Vec<Value> = ledger.iter().map(|e| data(e)["kind"].clone()).collect();
    assert_eq!(kinds, ["adjust", "spend", "refund", "redeem", "redeem"]);
    let redeemed = data(&ledger[4]);
    assert_eq!(redeemed, data(&ledger[3]), "the same transaction");
    assert_eq!(redeemed["customer_id"], "u1");
    assert_eq!(redeemed["amount_fen"], 3_000);
    assert_eq!(redeemed["balance_after_fen"], 11_000);
}

/// Signed redemptions that arrive together (SQLite runs them set-wise)
/// each record their two events.
pub async fn simultaneous_redemptions_each_record_their_events(store: &dyn Store) {
    let m = merchant(store, "A").await.id;
    let (_, codes) = offline_codes(store, m, fields("中秋卡", 100), 20).await;
    let before = events(store, m).await.len();
    let redemptions = codes.iter().enumerate().map(|(i, code)| async move {
        let customer = format!("u{i}");
        redeem_signed(
            store,
            &signed(&format!("nonce-{i:04}"), None),
            redeemer(m, &customer, "ip"),
            code,
        )
        .await
    });
    futures_util::future::join_all(redemptions).await;
    let recorded = events(store, m).await.split_off(before);
    assert_eq!(recorded.len(), 40, "{:?}", types(&recorded));
    let mut transactions: Vec<i64> = recorded
        .iter()
        .filter(|e| e.event_type == EventType::CodeRedeemed)
        .map(|e| data(e)["transaction_id"].as_i64().unwrap())
        .collect();
    transactions.sort_unstable();
    transactions.dedup();
    assert_eq!(transactions.len(), 20);
    assert!(recorded
        .iter()
        .all(|e| data(e)["customer_id"].as_str().unwrap().starts_with('u')));
}

fn endpoint(merchant_id: i64, url: &str, types: Vec<EventType>, enabled: bool) -> NewEndpoint {
    NewEndpoint {
        merchant_id,
        fields: EndpointFields {
            url: url.into(),
            description: String::new(),
            event_types: types,
            enabled,
        },
        secret_sealed: b"sealed".to_vec(),
        key_version: 1,
        created_at: NOW,
    }
}

fn voided(merchant_id: i64) -> NewEvent {
    NewEvent {
        merchant_id,
        event_type: EventType::CardsVoided,
        data: r#"{"n_cards":1}"#.into(),
        created_at: NOW,
    }
}

fn shipped(merchant_id: i64) -> NewEvent {
    NewEvent {
        event_type: EventType::PickupOrderShipped,
        ..voided(merchant_id)
    }
}

/// Each event becomes one delivery per enabled endpoint that wants it, once.
pub async fn events_fan_out_once_to_the_endpoints_that_want_them(store: &dyn Store) {
    let m = merchant(store, "A").await.id;
    let other = merchant(store, "B").await.id;
    let add = |e: NewEndpoint| async move {
        store
            .create_endpoint(&e, &audit(e.merchant_id, "create_webhook_endpoint"))
            .await
            .unwrap()
    };
    let all = add(endpoint(m, "https://a.example/all", vec![], true)).await;
    let ships = add(endpoint(
        m,
        "https://a.example/ships",
        vec![EventType::PickupOrderShipped],
        true,
    ))
    .await;
    add(endpoint(m, "https://a.example/off", vec![], false)).await;
    let theirs = add(endpoint(other, "https://b.example/", vec![], true)).await;
    store
        .record_events(&[voided(m), shipped(m), shipped(other)])
        .await
        .unwrap();
    assert_eq!(store.dispatch_events(100, NOW).await.unwrap(), 3);
    assert_eq!(store.dispatch_events(100, NOW).await.unwrap(), 0, "once");
    let (deliveries, total) = store
        .list_deliveries(m, &DeliveryFilter::default(), Page::default())
        .await
        .unwrap();
    assert_eq!(total, 3);
    let mut pairs: Vec<(i64, &str)> = deliveries
        .iter()
        .map(|d| (d.endpoint_id, d.event_type.code()))
        .collect();
    pairs.sort_unstable();
    assert_eq!(
        pairs,
        [
            (all.id, "cards.voided"),
            (all.id, "pickup_order.shipped"),
            (ships.id, "pickup_order.shipped")
        ]
    );
    assert!(deliveries
        .iter()
        .all(|d| d.state == DeliveryState::Pending && d.attempts == 0));
    let filter = DeliveryFilter {
        endpoint_id: Some(ships.id),
        ..Default::default()
    };
    assert_eq!(
        store
            .list_deliveries(m, &filter, Page::default())
            .await
            .unwrap()
            .1,
        1
    );
    let theirs_only = store
        .list_deliveries(other, &DeliveryFilter::default(), Page::default())
        .await
        .unwrap()
        .0;
    assert_eq!(theirs_only.len(), 1);
    assert_eq!(theirs_only[0].endpoint_id, theirs.id);
    // Dispatching in small steps takes every event once, in order.
    store
        .record_events(&[voided(m), voided(m), voided(m)])
        .await
        .unwrap();
    assert_eq!(store.dispatch_events(2, NOW).await.unwrap(), 2);
    assert_eq!(store.dispatch_events(2, NOW).await.unwrap(), 1);
    assert_eq!(
        store
            .list_deliveries(m, &DeliveryFilter::default(), Page::default())
            .await
            .unwrap()
            .1,
        6
    );
}

pub(crate) async fn one_pending(store: &dyn Store, m: i64) -> WebhookEndpoint {
    let e = store
        .create_endpoint(
            &endpoint(m, "https://a.example/", vec![], true),
            &audit(m, "create_webhook_endpoint"),
        )
        .await
        .unwrap();
    store.record_events(&[voided(m)]).await.unwrap();
    store.dispatch_events(10, NOW).await.unwrap();
    e
}

pub(crate) fn answered(status: u16) -> AttemptOutcome {
    AttemptOutcome {
        status: Some(status),
        error: String::new(),
        duration_ms: 3,
    }
}

/// A claimed delivery is leased: not claimed again until the lease ends,
/// and a worker that lost its lease cannot record over the next one.
pub async fn a_delivery_is_leased_retried_and_delivered_once(store: &dyn Store) {
    let m = merchant(store, "A").await.id;
    let e = one_pending(store, m).await;
    let claimed = store.claim_deliveries(10, 60, NOW).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let first = &claimed[0];
    assert_eq!((first.attempt_no, first.round_attempt), (1, 1));
    assert_eq!(first.url, "https://a.example/");
    assert_eq!(first.secrets.secret_sealed, b"sealed");
    assert!(first.secrets.previous.is_none());
    assert_eq!(first.event.event_type, EventType::CardsVoided);
    assert!(
        store
            .claim_deliveries(10, 60, NOW + 59)
            .await
            .unwrap()
            .is_empty(),
        "leased"
    );
    // The lease ran out: another worker takes it, and the first cannot record.
    let second = store.claim_deliveries(10, 60, NOW + 60).await.unwrap();
    assert_eq!(second[0].attempt_no, 2);
    assert!(matches!(
        store
            .record_attempt(
                first,
                &answered(200),
                DeliveryState::Delivered,
                None,
                NOW + 61
            )
            .await,
        Err(StoreError::Conflict(Conflict::DeliveryLeaseLost))
    ));
    let (state, next) = after_attempt(second[0].round_attempt, &answered(503), NOW + 62, 0);
    store
        .record_attempt(&second[0], &answered(503), state, next, NOW + 62)
        .await
        .unwrap();
    let (d, attempts) = store.get_delivery(m, second[0].delivery_id).await.unwrap();
    assert_eq!(
        (d.state, d.attempts, d.last_status, d.next_attempt_at),
        (DeliveryState::Pending, 2, Some(503), Some(NOW + 62 + 300))
    );
    assert_eq!(attempts.len(), 1);
    assert_eq!(
        store.get_endpoint(m, e.id).await.unwrap().failing_since,
        Some(NOW + 62)
    );
    assert!(
        store
            .claim_deliveries(10, 60, NOW + 300)
            .await
            .unwrap()
            .is_empty(),
        "not yet due"
    );
    let third = store.claim_deliveries(10, 60, NOW + 362).await.unwrap();
    store
        .record_attempt(
            &third[0],
            &answered(204),
            DeliveryState::Delivered,
            None,
            NOW + 363,
        )
        .await
        .unwrap();
    let (d, attempts) = store.get_delivery(m, third[0].delivery_id).await.unwrap();
    assert_eq!(
        (d.state, d.delivered_at, attempts.len()),
        (DeliveryState::Delivered, Some(NOW + 363), 2)
    );
    assert_eq!(attempts[0].status, Some(204), "newest first");
    assert_eq!(
        store.get_endpoint(m, e.id).await.unwrap().failing_since,
        None
    );
    assert!(store
        .claim_deliveries(10, 60, NOW + 100_000)
        .await
        .unwrap()
        .is_empty());
    // A replay sends it again, with the same event, as a new round.
    store
        .replay_delivery(m, d.id, &audit(m, "replay_webhook_delivery"), NOW + 400)
        .await
        .unwrap();
    let again = store.claim_deliveries(10, 60, NOW + 400).await.unwrap();
    assert_eq!((again[0].attempt_no, again[0].round_attempt), (4, 1));
    assert_eq!(again[0].event, third[0].event);
    assert!(matches!(
        store
            .replay_delivery(m + 1, d.id, &audit(m, "replay"), NOW)
            .await,
        Err(StoreError::NotFound)
    ));
}

/// Two workers claiming at once never take one delivery twice.
pub async fn concurrent_claims_never_take_one_delivery_twice(store: &dyn Store) {
    let m = merchant(store, "A").await.id;
    one_pending(store, m).await;
    store.record_events(&vec![voided(m); 99]).await.unwrap();
    store.dispatch_events(1_000, NOW).await.unwrap();
    let claims = (0..8).map(|_| store.claim_deliveries(7, 60, NOW));
    let mut ids: Vec<i64> = futures_util::future::join_all(claims)
        .await
        .into_iter()
        .flat_map(|c| c.unwrap())
        .map(|c| c.delivery_id)
        .collect();
    let claimed = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), claimed, "no delivery claimed twice");
    assert_eq!(claimed, 56);
}

/// 410 Gone disables the endpoint at once; failing without a success for
/// days disables it too; both are audited, and re-enabling clears them.
pub async fn failing_endpoints_are_disabled_and_audited(store: &dyn Store) {
    let m = merchant(store, "A").await.id;
    let e = one_pending(store, m).await;
    let claimed = store.claim_deliveries(10, 60, NOW).await.unwrap();
    let (state, next) = after_attempt(1, &answered(410), NOW, 0);
    assert_eq!(state, DeliveryState::Failed);
    store
        .record_attempt(&claimed[0], &answered(410), state, next, NOW)
        .await
        .unwrap();
    let gone = store.get_endpoint(m, e.id).await.unwrap();
    assert!(!gone.enabled);
    assert!(
        gone.disabled_reason.contains("410"),
        "{}",
        gone.disabled_reason
    );
    let (log, _) = store.list_audit(m, Page::default()).await.unwrap();
    assert_eq!(log[0].entry.action, "disable_webhook_endpoint");
    // Enabled again: it starts healthy; a failure 5 days after the first disables it.
    let fields = EndpointFields {
        url: gone.url.clone(),
        description: String::new(),
        event_types: vec![],
        enabled: true,
    };
    store
        .update_endpoint(m, e.id, &fields, &audit(m, "update_webhook_endpoint"))
        .await
        .unwrap();
    let healthy = store.get_endpoint(m, e.id).await.unwrap();
    assert!(healthy.enabled && healthy.disabled_reason.is_empty());
    store.record_events(&[voided(m), voided(m)]).await.unwrap();
    store.dispatch_events(10, NOW).await.unwrap();
    let fail = |c: ClaimedDelivery, at: i64| async move {
        store
            .record_attempt(&c, &answered(500), DeliveryState::Pending, Some(at + 5), at)
            .await
            .unwrap();
    };
    let both = store.claim_deliveries(10, 60, NOW + 1).await.unwrap();
    assert_eq!(both.len(), 2);
    fail(both[0].clone(), NOW + 1).await;
    assert!(store.get_endpoint(m, e.id).await.unwrap().enabled);
    fail(both[1].clone(), NOW + 1 + DISABLE_AFTER_FAILING_SECONDS).await;
    let tired = store.get_endpoint(m, e.id).await.unwrap();
    assert!(!tired.enabled);
    assert!(
        tired.disabled_reason.contains("天"),
        "{}",
        tired.disabled_reason
    );
    store.record_events(&[voided(m)]).await.unwrap();
    store.dispatch_events(10, NOW).await.unwrap();
    assert_eq!(
        store
            .list_deliveries(m, &DeliveryFilter::default(), Page::default())
            .await
            .unwrap()
            .1,
        3,
        "a disabled endpoint gets no new deliveries"
    );
}

/// Rotation keeps signing with the old secret until its grace ends;
/// deleting an endpoint gives up its pending deliveries.
pub async fn rotation_keeps_the_previous_secret_for_its_grace_period(store: &dyn Store) {
    let m = merchant(store, "A").await.id;
    let e = one_pending(store, m).await;
    store
        .rotate_endpoint_secret(m, e.id, b"new", 2, NOW + 100, &audit(m, "rotate"))
        .await
        .unwrap();
    assert!(matches!(
        store
            .rotate_endpoint_secret(m + 1, e.id, b"x", 2, NOW, &audit(m, "rotate"))
            .await,
        Err(StoreError::NotFound)
    ));
    let claimed = store.claim_deliveries(10, 60, NOW).await.unwrap();
    assert_eq!(claimed[0].secrets.secret_sealed, b"new");
    assert_eq!(claimed[0].secrets.key_version, 2);
    assert_eq!(claimed[0].secrets.previous, Some((b"sealed".to_vec(), 1)));
    let late = store.claim_deliveries(10, 60, NOW + 100).await.unwrap();
    assert!(late[0].secrets.previous.is_none(), "the grace is over");
    store
        .delete_endpoint(m, e.id, &audit(m, "delete_webhook_endpoint"))
        .await
        .unwrap();
    assert!(store.list_endpoints(m).await.unwrap().is_empty());
    let (d, _) = store.get_delivery(m, late[0].delivery_id).await.unwrap();
    assert_eq!(d.last_error, "推送地址已删除");
    assert!(matches!(
        store.get_endpoint(m, e.id).await,
        Err(StoreError::NotFound)
    ));
}
