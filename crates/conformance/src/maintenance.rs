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
