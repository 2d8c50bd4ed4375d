//! 概况: every tallied event lands on its merchant-local day with the count
//! and money it names, nothing else is tallied, and what is owed and what
//! failed are summed per merchant.

#[allow(unused_imports)]
use crate::fixtures::*;
use crate::NOW;
use kaquan_core::dashboard::*;
use kaquan_core::event::*;
use kaquan_core::store::*;
use serde_json::json;

fn event(merchant_id: i64, event_type: EventType, data: serde_json::Value, at: i64) -> NewEvent {
    NewEvent {
        merchant_id,
        event_type,
        data: data.to_string(),
        created_at: at,
    }
}

fn activated(m: i64, at: i64) -> kaquan_core::audit::AuditEntry {
    let mut entry = audit(m, "activate_cards");
    entry.created_at = at;
    entry
}

/// The data each tallied event carries, as `kaquan_core::event` writes it,
/// and what it adds to its day: (n, amount_fen).
fn samples(m: i64, at: i64) -> Vec<(NewEvent, i64, i64)> {
    use EventType as E;
    vec![
        (
            NewEvent::cards_moved(E::CardsActivated, &activated(m, at), 5).unwrap(),
            5,
            0,
        ),
        (
            event(
                m,
                E::PickupOrderCreated,
                json!({"order_id": 1, "status": "pending"}),
                at,
            ),
            1,
            0,
        ),
        (
            event(
                m,
                E::PickupOrderShipped,
                json!({"order_id": 1, "status": "shipped"}),
                at,
            ),
            1,
            0,
        ),
        (
            event(
                m,
                E::CodeRedeemed,
                json!({"transaction_id": 1, "amount_fen": 5000, "balance_after_fen": 5000}),
                at,
            ),
            1,
            5000,
        ),
        (
            NewEvent::coupons_issued(m, 1, "claim", None, &[(1, 2), (3, 4)], at),
            2,
            0,
        ),
        (
            event(
                m,
                E::CouponVerified,
                json!({"verification_id": 1, "location_id": null, "discount_fen": 300, "order_amount_fen": 9000}),
                at,
            ),
            1,
            300,
        ),
        (
            event(
                m,
                E::CouponUndone,
                json!({"verification_id": 1, "location_id": null, "discount_fen": 300}),
                at,
            ),
            1,
            300,
        ),
        (
            event(m, E::MemberActivated, json!({"member_id": 1}), at),
            1,
            0,
        ),
        (
            event(
                m,
                E::EcardDelivered,
                json!({"order_ref": 1, "line_id": "L1", "product_id": 1, "cards": 3}),
                at,
            ),
            3,
            0,
        ),
        (
            event(
                m,
                E::EcardVerified,
                json!({"order_ref": 1, "delivery_id": 1, "way": "manual"}),
                at,
            ),
            1,
            0,
        ),
    ]
}

/// Each tallied event type adds what it names to its day; an untallied one
/// (a balance change, a void) adds nothing; another merchant's never shows.
pub async fn tallied_events_add_what_they_name_to_their_day(store: &dyn Store) {
    let m = merchant(store, "A").await.id;
    let other = merchant(store, "B").await.id;
    let samples = samples(m, NOW);
    let tallied: Vec<EventType> = samples.iter().map(|(e, _, _)| e.event_type).collect();
    assert_eq!(tallied, TALLIED, "one sample per tallied type");
    let mut events: Vec<NewEvent> = samples.iter().map(|(e, _, _)| e.clone()).collect();
    // Twice each, the second time in one call with the first.
    events.extend(events.clone());
    events.push(event(
        m,
        EventType::BalanceChanged,
        json!({"amount_fen": 70}),
        NOW,
    ));
    events.push(event(m, EventType::CardsVoided, json!({"n_cards": 9}), NOW));
    events.push(event(
        other,
        EventType::CardsActivated,
        json!({"n_cards": 4}),
        NOW,
    ));
    store.record_events(&events).await.unwrap();

    let today = day_of(NOW);
    let mut tallies = store.daily_tallies(m, today, today).await.unwrap();
    tallies.sort_by_key(|t| t.event_type.code());
    let mut expected: Vec<DailyTally> = samples
        .iter()
        .map(|(e, n, amount_fen)| DailyTally {
            day: today,
            event_type: e.event_type,
            location_id: None,
            n: 2 * n,
            amount_fen: 2 * amount_fen,
        })
        .collect();
    expected.sort_by_key(|t| t.event_type.code());
    assert_eq!(tallies, expected);
    let theirs = store.daily_tallies(other, today, today).await.unwrap();
    assert_eq!(theirs.len(), 1);
    assert_eq!(theirs[0].n, 4);
    assert!(store
        .daily_tallies(m, today + 1, today + 30)
        .await
        .unwrap()
        .is_empty());
}

/// Days are cut at midnight in the merchant's time zone, as core cuts
/// them; verifications are tallied per location.
pub async fn tallies_are_cut_by_local_day_and_location(store: &dyn Store) {
    let m = merchant(store, "A").await.id;
    let midnight = kaquan_core::clock::start_of_today(NOW);
    let verified = |location: Option<i64>, at: i64| {
        event(
            m,
            EventType::CouponVerified,
            json!({"location_id": location, "discount_fen": 100}),
            at,
        )
    };
    store
        .record_events(&[
            verified(Some(7), midnight - 1),
            verified(Some(7), midnight),
            verified(Some(7), midnight + 86_399),
            verified(Some(8), midnight + 60),
            verified(None, midnight + 60),
        ])
        .await
        .unwrap();
    let today = day_of(midnight);
    let mut tallies = store.daily_tallies(m, today - 1, today).await.unwrap();
    tallies.sort_by_key(|t| (t.day, t.location_id));
    let cut: Vec<(i64, Option<i64>, i64, i64)> = tallies
        .iter()
        .map(|t| (t.day, t.location_id, t.n, t.amount_fen))
        .collect();
    assert_eq!(
        cut,
        [
            (today - 1, Some(7), 1, 100),
            (today, None, 1, 100),
            (today, Some(7), 2, 200),
            (today, Some(8), 1, 100),
        ]
    );
    let summary = Summary::of(&tallies, Period::Today, midnight + 100);
    assert_eq!(summary.figure(Figure::CouponsVerified).total, 4);
    assert_eq!(summary.verified_by_location, [(7, 2), (8, 1)]);
}

/// What is owed is the sum of the merchant's customers' balances; failed
/// webhook deliveries are counted, pending ones are not.
pub async fn liabilities_and_failures_are_summed_per_merchant(store: &dyn Store) {
    let m = merchant(store, "A").await.id;
    let other = merchant(store, "B").await.id;
    assert_eq!(store.liabilities(m).await.unwrap(), Liabilities::default());
    for (merchant_id, customer, fen) in [(m, "u1", 10_000), (m, "u2", 2_500), (other, "u1", 99)] {
        let u = customer_id(store, merchant_id, customer).await;
        post(store, adjust(merchant_id, u, fen)).await.unwrap();
    }
    post(store, spend(m, "u1", 3_000)).await.unwrap();
    assert_eq!(
        store.liabilities(m).await.unwrap(),
        Liabilities {
            balance_fen: 9_500,
            points: 0
        }
    );

    crate::events::one_pending(store, m).await;
    assert_eq!(
        store.needing_attention(m).await.unwrap(),
        Attention::default()
    );
    let claimed = store.claim_deliveries(10, 60, NOW).await.unwrap();
    store
        .record_attempt(
            &claimed[0],
            &crate::events::answered(410),
            DeliveryState::Failed,
            None,
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(
        store.needing_attention(m).await.unwrap(),
        Attention {
            failed_webhooks: 1,
            failed_sms: 0
        }
    );
    assert_eq!(
        store.needing_attention(other).await.unwrap(),
        Attention::default()
    );
}
