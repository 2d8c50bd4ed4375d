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
