//! ERP 参数 (旺店通): settings, pushes planned with orders' events, leased tries.

use crate::fixtures::*;
use crate::NOW;
use kaquan_core::erp::*;
use kaquan_core::event::EventType;
use kaquan_core::pickup::Channel;
use kaquan_core::store::*;

async fn save(store: &dyn Store, m: i64, enabled: bool, secret: Option<&str>) {
    let settings = ErpSettings {
        merchant_id: m,
        fields: ErpSettingsFields {
            enabled,
            sid: "seller".into(),
            appkey: "key".into(),
            appsecret: String::new(),
            shop_no: "shop1".into(),
        },
        secret_sealed: secret.map(|s| seal_secret(&master(), m, 1, s)),
        key_version: 1,
        updated_at: NOW,
    };
    store
        .save_erp_settings(&settings, &audit(m, "save_erp_settings"))
        .await
        .unwrap();
}

pub async fn orders_to_deliver_plan_erp_pushes_when_the_switch_is_on(store: &dyn Store) {
    let (m, cards, goods) = pickup_fixture(store, 3).await;
    assert_eq!(store.get_erp_settings(m).await.unwrap(), None);
    save(store, m, false, Some("appsecret")).await;
    let pickup = |card, channel| {
        let order = new_order(m, card, goods[0], channel);
        async move {
            store
                .redeem_pickup(&order, &audit(m, "redeem_pickup"))
                .await
                .unwrap()
        }
    };
    pickup(cards[0], Channel::Web).await;
    assert_eq!(
        store.list_erp_pushes(m, Page::default()).await.unwrap().1,
        0,
        "off"
    );
    save(store, m, true, None).await;
    let saved = store.get_erp_settings(m).await.unwrap().unwrap();
    assert_eq!(
        open_secret(&master(), &saved).as_deref(),
        Some("appsecret"),
        "kept"
    );
    let order = pickup(cards[1], Channel::Phone).await;
    pickup(cards[2], Channel::AtLocation).await;
    store
        .cancel_order(m, order.id, &audit(m, "cancel_order"))
        .await
        .unwrap();
    let (pushes, total) = store.list_erp_pushes(m, Page::default()).await.unwrap();
    assert_eq!(
        total, 2,
        "created and cancelled; none for the hand-over in store"
    );
    assert!(pushes
        .iter()
        .all(|p| p.order_id == order.id && p.state == PushState::Pending));
    let reasons: Vec<_> = pushes.iter().map(|p| p.reason).collect();
    assert_eq!(
        reasons,
        [
            EventType::PickupOrderCancelled,
            EventType::PickupOrderCreated
        ]
    );
    // Two pushers at once take different pushes; a try is recorded once.
    let (a, b) = futures_util::join!(
        store.claim_erp_pushes(1, 60, NOW),
        store.claim_erp_pushes(1, 60, NOW)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!((a.len(), b.len()), (1, 1));
    assert_ne!(a[0].id, b[0].id);
    store
        .record_erp_push(a[0].id, 1, true, "0", "", NOW + 1)
        .await
        .unwrap();
    assert!(store
        .record_erp_push(a[0].id, 1, false, "x", "", NOW + 1)
        .await
        .is_err());
    store
        .record_erp_push(b[0].id, 1, false, "-1", "签名错误", NOW + 1)
        .await
        .unwrap();
    let pushes = store.list_erp_pushes(m, Page::default()).await.unwrap().0;
    let find = |id| pushes.iter().find(|p| p.id == id).unwrap();
    assert_eq!(
        (find(a[0].id).state, find(a[0].id).pushed_at),
        (PushState::Pushed, Some(NOW + 1))
    );
    let retried = find(b[0].id);
    assert_eq!(
        (retried.state, retried.next_attempt_at),
        (PushState::Pending, Some(NOW + 1 + PUSH_RETRY_DELAYS[0]))
    );
    assert_eq!(retried.result_message, "签名错误");
}
