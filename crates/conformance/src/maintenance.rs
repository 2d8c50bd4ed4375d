//! The invariant check on a healthy database.

#[allow(unused_imports)]
use crate::fixtures::*;
use kaquan_core::{card::*, store::*};

pub async fn verify_finds_no_violation_in_a_healthy_database(store: &dyn Store) {
    assert!(store.check_invariants().await.unwrap().is_empty());
    let m = merchant(store, "A").await;
    generate(store, m.id, quantity(20)).await;
    store
        .apply_card_op(
            m.id,
            &CardFilter::default(),
            CardOp::Activate,
            &audit(m.id, "a"),
        )
        .await
        .unwrap();
    assert_eq!(
        store.check_invariants().await.unwrap(),
        Vec::<String>::new()
    );
}

/// What `/readyz` and `/metrics` read: ready on a migrated database, each
/// outbound queue's backlog, and the engine's own gauges.
pub async fn readiness_backlog_and_engine_gauges_read_the_database(store: &dyn Store) {
    assert_eq!(store.readiness().await, Ok(()));
    let queues = store.outbox_backlog().await.unwrap();
    assert_eq!(
        queues.iter().map(|q| q.queue).collect::<Vec<_>>(),
        ["webhooks", "sms", "erp"]
    );
    assert!(queues
        .iter()
        .all(|q| q.pending == 0 && q.oldest_created_at.is_none()));
    let gauges = store.engine_gauges();
    assert!(!gauges.is_empty());
    assert!(gauges
        .iter()
        .all(|g| g.value >= 0.0 && !g.help.is_empty() && g.name.starts_with(store.backend())));
}
