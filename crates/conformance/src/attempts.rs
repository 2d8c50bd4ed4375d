//! Failed-attempt counters.

#[allow(unused_imports)]
use crate::fixtures::*;
use crate::NOW;
use kaquan_core::store::*;

pub async fn failed_attempts_are_counted_in_a_window(store: &dyn Store) {
    let m = merchant(store, "A").await;
    for offset in [0, 10, 20] {
        store
            .record_failure(m.id, "card:A0001", NOW + offset)
            .await
            .unwrap();
    }
    store
        .record_failure(m.id, "client:127.0.0.1", NOW)
        .await
        .unwrap();
    assert_eq!(
        store.count_failures(m.id, "card:A0001", NOW).await.unwrap(),
        3
    );
    assert_eq!(
        store
            .count_failures(m.id, "card:A0001", NOW + 15)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .count_failures(m.id, "client:127.0.0.1", NOW)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .oldest_failure(m.id, "card:A0001", NOW + 5)
            .await
            .unwrap(),
        Some(NOW + 10)
    );
    assert_eq!(
        store.oldest_failure(m.id, "card:NONE", NOW).await.unwrap(),
        None
    );
    let other = merchant(store, "B").await;
    assert_eq!(
        store
            .count_failures(other.id, "card:A0001", 0)
            .await
            .unwrap(),
        0
    );
    store.clear_failures(m.id, "card:A0001").await.unwrap();
    assert_eq!(
        store.count_failures(m.id, "card:A0001", 0).await.unwrap(),
        0
    );
    assert_eq!(
        store
            .count_failures(m.id, "client:127.0.0.1", 0)
            .await
            .unwrap(),
        1,
        "other keys stay"
    );
}
