//! The audit log: searched by who, what, which card and when.

#[allow(unused_imports)]
use crate::fixtures::*;
use crate::NOW;
use kaquan_core::audit::*;
use kaquan_core::store::*;

pub async fn the_audit_log_is_searched_by_actor_action_text_and_time(store: &dyn Store) {
    let m = merchant(store, "日志店").await.id;
    let other = merchant(store, "别家").await.id;
    let entry = |actor: &str, action: &str, target: &str, at: i64| AuditEntry {
        actor: Actor {
            staff_id: None,
            label: actor.into(),
        },
        target: target.into(),
        created_at: at,
        ..audit(m, action)
    };
    for e in [
        entry("owner", "activate_cards", "serial 1-10", NOW - 100),
        entry("clerk", "ship_orders", "order=7", NOW - 50),
        entry("clerk", "pickup_refused", "card=A588000123", NOW),
        AuditEntry {
            detail: "A588000123 已提货".into(),
            ..entry("owner", "redeem_pickup", "order=8", NOW + 50)
        },
    ] {
        store.append_audit(&e).await.unwrap();
    }
    store
        .append_audit(&audit(other, "ship_orders"))
        .await
        .unwrap();
    let search = |filter: AuditFilter| async move {
        let (records, total) = store
            .search_audit(m, &filter, Page::default())
            .await
            .unwrap();
        assert_eq!(records.len() as i64, total);
        records
            .into_iter()
            .map(|r| r.entry.action)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        search(AuditFilter::default()).await.len(),
        4,
        "only this merchant's"
    );
    assert_eq!(
        search(AuditFilter {
            actor: Some("clerk".into()),
            ..Default::default()
        })
        .await,
        ["pickup_refused", "ship_orders"],
        "newest first"
    );
    assert_eq!(
        search(AuditFilter {
            actions: vec!["ship_orders".into(), "activate_cards".into()],
            ..Default::default()
        })
        .await,
        ["ship_orders", "activate_cards"]
    );
    assert_eq!(
        search(AuditFilter {
            text: Some("A588000123".into()),
            ..Default::default()
        })
        .await,
        ["redeem_pickup", "pickup_refused"],
        "in the target or the detail"
    );
    assert_eq!(
        search(AuditFilter {
            created_from: Some(NOW - 50),
            created_until: Some(NOW),
            ..Default::default()
        })
        .await,
        ["pickup_refused", "ship_orders"],
        "bounds are inclusive"
    );
    assert!(
        search(AuditFilter {
            text: Some("%".into()),
            ..Default::default()
        })
        .await
        .is_empty(),
        "no wildcards"
    );
    let (_, total) = store
        .list_audit(m, Page::new(Some(2), Some(3)))
        .await
        .unwrap();
    assert_eq!(total, 4);
}

/// The sealer links each merchant's records in order, once, however many
/// seal at the same time; heads, ranges and the walk read them back.
pub async fn the_audit_chain_seals_each_record_once_per_merchant(store: &dyn Store) {
    use kaquan_core::audit::chain::{seal_all, GENESIS};
    let a = merchant(store, "A").await.id;
    let b = merchant(store, "B").await.id;
    assert!(store.audit_heads(None).await.unwrap().is_empty());
    for i in 0..30 {
        let m = if i % 3 == 0 { b } else { a };
        let mut entry = audit(m, "activate_cards");
        entry.target = format!("batch={i}");
        entry.created_at = NOW + i;
        store.append_audit(&entry).await.unwrap();
    }
    // Sealers racing: every record gets one place.
    let (x, y, z) = tokio::join!(store.seal_audit(7), store.seal_audit(7), seal_all(store));
    let sealed = x.unwrap() + y.unwrap() + z.unwrap();
    assert_eq!(sealed, 30);
    assert_eq!(seal_all(store).await.unwrap(), 0, "nothing is sealed twice");
    let heads = store.audit_heads(None).await.unwrap();
    assert_eq!(
        heads
            .iter()
            .map(|h| (h.merchant_id, h.seq))
            .collect::<Vec<_>>(),
        [(a, 20), (b, 10)]
    );
    assert_eq!(
        store.audit_heads(Some(b)).await.unwrap(),
        vec![heads[1].clone()]
    );
    let (broken, walked) = store.check_audit_chains().await.unwrap();
    assert!(broken.is_empty(), "{broken:?}");
    assert_eq!(walked, 30);
    let first = store.sealed_at(a, 1).await.unwrap().unwrap();
    assert_eq!(first.prev_hash, GENESIS);
    let last = store.sealed_at(a, 20).await.unwrap().unwrap();
    assert_eq!(last.hash, heads[0].hash);
    assert!(store.sealed_at(a, 21).await.unwrap().is_none());
    // A period's records, in chain order.
    let some = store.sealed_audit(b, NOW + 3, NOW + 10).await.unwrap();
    assert_eq!(
        some.iter()
            .map(|s| s.record.entry.target.as_str())
            .collect::<Vec<_>>(),
        ["batch=3", "batch=6", "batch=9"]
    );
    assert!(some.windows(2).all(|w| w[1].prev_hash == w[0].hash));
    // New records continue the chain from its head.
    store.append_audit(&audit(a, "void_cards")).await.unwrap();
    assert_eq!(seal_all(store).await.unwrap(), 1);
    let next = store.sealed_at(a, 21).await.unwrap().unwrap();
    assert_eq!(next.prev_hash, heads[0].hash);
}
