//! Card sales (商城卖卡).

use crate::fixtures::*;
use crate::NOW;
use kaquan_core::card_sale::{self, NewCardSale, RefundCardSale, SaleState, SoldCards};
use kaquan_core::{audit::*, card::*, event::*, ledger::*, store::*};

pub(crate) fn sale(m: i64, batch_id: i64, order_id: &str, quantity: i64) -> NewCardSale {
    NewCardSale {
        merchant_id: m,
        order_id: order_id.into(),
        batch_id,
        quantity,
        phone: "13800001234".into(),
        send_sms: false,
        actor: Actor::cli(),
        now: NOW,
    }
}

pub(crate) async fn sell(store: &dyn Store, sale: NewCardSale) -> Called<SoldCards> {
    card_sale::sell_cards(store, &master(), &ApiCall::default(), &sale)
        .await
        .expect("sell cards")
}

pub(crate) async fn refund(store: &dyn Store, m: i64, order_id: &str) -> Called<SoldCards> {
    let refund = RefundCardSale {
        merchant_id: m,
        order_id: order_id.into(),
        actor: Actor::cli(),
        now: NOW + 60,
    };
    card_sale::refund_card_sale(store, &master(), &ApiCall::default(), &refund)
        .await
        .expect("refund")
}

async fn count(store: &dyn Store, m: i64, state: CardState) -> i64 {
    let filter = CardFilter {
        state: Some(state),
        ..Default::default()
    };
    store.count_cards(m, &filter).await.unwrap()
}

pub async fn a_sale_takes_unsold_cards_once_per_order_with_their_passwords(store: &dyn Store) {
    let m = merchant(store, "A").await.id;
    let batch = generate(store, m, quantity(5)).await;
    let first = sell(store, sale(m, batch.id, "o1", 2)).await;
    assert!(!first.replayed);
    let sold = first.result.clone().expect("sold");
    assert_eq!(sold.cards.len(), 2);
    assert_eq!(sold.sale.state, SaleState::Sold);
    assert_eq!(sold.sale.phone, "13800001234");
    let stored = store
        .cards_after(m, &CardFilter::default(), 0, 10)
        .await
        .unwrap();
    for card in &sold.cards {
        assert_eq!(card.state, CardState::Active);
        let found = stored
            .iter()
            .find(|c| c.card.number == card.number)
            .expect("the card");
        let keys = master().merchant_keys(m, found.key_version);
        let opened = keys.open(&card.number, found.secret_sealed.as_ref().unwrap());
        assert_eq!(opened.as_deref(), Some(card.password.as_str()));
    }
    assert_eq!(count(store, m, CardState::Active).await, 2);
    let again = sell(store, sale(m, batch.id, "o1", 2)).await;
    assert!(again.replayed);
    assert_eq!(again.result, first.result, "the same cards and passwords");
    assert_eq!(
        sell(store, sale(m, batch.id, "o1", 3)).await.result,
        Err(Refusal::OrderMismatch)
    );
    // Three are left: four are refused and none is taken.
    assert_eq!(
        sell(store, sale(m, batch.id, "o2", 4)).await.result,
        Err(Refusal::CardsOutOfStock)
    );
    assert_eq!(count(store, m, CardState::Active).await, 2);
    let second = sell(store, sale(m, batch.id, "o2", 3))
        .await
        .result
        .unwrap();
    assert!(second
        .cards
        .iter()
        .all(|c| sold.cards.iter().all(|s| s.number != c.number)));
    assert_eq!(
        sell(store, sale(m, batch.id, "o3", 1)).await.result,
        Err(Refusal::CardsOutOfStock)
    );
    assert_eq!(
        sell(store, sale(m, batch.id + 100, "o4", 1)).await.result,
        Err(Refusal::BatchNotFound)
    );
    let other = merchant(store, "B").await.id;
    assert_eq!(
        sell(store, sale(other, batch.id, "o5", 1)).await.result,
        Err(Refusal::BatchNotFound),
        "another merchant's batch"
    );
    let (sales, total) = store.list_card_sales(m, Page::default()).await.unwrap();
    assert_eq!(total, 2);
    assert_eq!(sales[0].order_id, "o2", "newest first");
    assert_eq!(sales[0].cards.len(), 3);
    let events = store.list_events(m, Page::default()).await.unwrap().0;
    let activated: Vec<_> = events
        .iter()
        .filter(|e| e.event_type == EventType::CardsActivated)
        .collect();
    assert_eq!(activated.len(), 2, "one event per sale, none for a replay");
}

pub async fn a_refund_deactivates_the_unused_cards_which_are_never_sold_again(store: &dyn Store) {
    let m = merchant(store, "A").await.id;
    let batch = generate(store, m, quantity(2)).await;
    let sold = sell(store, sale(m, batch.id, "o1", 2))
        .await
        .result
        .unwrap();
    // One card is voided before the refund: the refund leaves it as it is.
    let voided = CardFilter {
        number_contains: Some(sold.cards[0].number.clone()),
        ..Default::default()
    };
    assert_eq!(
        store
            .apply_card_op(m, &voided, CardOp::Void, &audit(m, "void"))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        refund(store, m, "nope").await.result,
        Err(Refusal::SaleNotFound)
    );
    let refunded = refund(store, m, "o1").await;
    assert!(!refunded.replayed);
    let refunded = refunded.result.unwrap();
    assert_eq!(refunded.sale.state, SaleState::Refunded);
    assert_eq!(refunded.sale.n_refunded, 1);
    assert_eq!(refunded.sale.refunded_at, Some(NOW + 60));
    let states: Vec<_> = refunded.cards.iter().map(|c| c.state).collect();
    assert_eq!(states, [CardState::Voided, CardState::Inactive]);
    let again = refund(store, m, "o1").await;
    assert!(again.replayed);
    assert_eq!(again.result.unwrap().sale, refunded.sale);
    assert_eq!(count(store, m, CardState::Inactive).await, 1);
    // Its password was shown: the inactive card is never sold again.
    assert_eq!(
        sell(store, sale(m, batch.id, "o2", 1)).await.result,
        Err(Refusal::CardsOutOfStock)
    );
    // A sale reported after its refund is the refunded sale, unchanged.
    let late = sell(store, sale(m, batch.id, "o1", 2)).await;
    assert!(late.replayed);
    assert_eq!(late.result.unwrap().sale.state, SaleState::Refunded);
    let events = store.list_events(m, Page::default()).await.unwrap().0;
    assert!(events
        .iter()
        .any(|e| e.event_type == EventType::CardsDeactivated && e.data.contains("\"n_cards\":1")));
}

pub async fn concurrent_sales_take_each_card_once(store: &dyn Store) {
    let m = merchant(store, "A").await.id;
    let batch = generate(store, m, quantity(30)).await;
    // Fifty callbacks of one order: one allocation.
    let same = (0..50).map(|_| sell(store, sale(m, batch.id, "paid-1", 3)));
    let answers = futures_util::future::join_all(same).await;
    let first = answers[0].result.clone().unwrap();
    assert!(answers.iter().all(|a| a.result.as_ref() == Ok(&first)));
    assert_eq!(answers.iter().filter(|a| !a.replayed).count(), 1);
    // Ten orders at once take different cards.
    let orders: Vec<String> = (0..10).map(|i| format!("paid-{}", i + 2)).collect();
    let many = orders
        .iter()
        .map(|order| sell(store, sale(m, batch.id, order, 2)));
    let mut numbers: Vec<String> = futures_util::future::join_all(many)
        .await
        .into_iter()
        .flat_map(|a| a.result.unwrap().cards.into_iter().map(|c| c.number))
        .chain(first.cards.iter().map(|c| c.number.clone()))
        .collect();
    numbers.sort();
    numbers.dedup();
    assert_eq!(numbers.len(), 23);
    assert_eq!(count(store, m, CardState::Active).await, 23);
}
