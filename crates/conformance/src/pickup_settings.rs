//! 提货设置.

#[allow(unused_imports)]
use crate::fixtures::*;
use crate::NOW;
use kaquan_core::StoreError;
use kaquan_core::{pickup::*, store::*};

pub async fn pickup_settings_default_until_saved_and_round_trip(store: &dyn Store) {
    let m = merchant(store, "A").await;
    assert_eq!(
        store.get_pickup_settings(m.id).await.unwrap(),
        PickupSettings::default()
    );
    let settings = PickupSettings {
        title: "鲜果提货".into(),
        notice: "每周一至周五发货".into(),
        enabled: false,
        closed_message: "春节暂停提货".into(),
        appointment: AppointmentMode::DateRange(
            time::macros::date!(2027 - 01 - 01),
            time::macros::date!(2027 - 01 - 31),
        ),
        blocked_dates: vec![time::macros::date!(2027 - 01 - 10)],
        redirect_url: Some("https://shop.example.com".into()),
        attempts_per_card: 3,
        attempts_per_client: 10,
        public_url: Some("https://card.example.com".into()),
    };
    store
        .put_pickup_settings(m.id, &settings, &audit(m.id, "update_pickup_settings"))
        .await
        .unwrap();
    assert_eq!(store.get_pickup_settings(m.id).await.unwrap(), settings);
    let changed = PickupSettings {
        appointment: AppointmentMode::MinDaysAhead(2),
        enabled: true,
        public_url: None,
        ..settings
    };
    store
        .put_pickup_settings(m.id, &changed, &audit(m.id, "update_pickup_settings"))
        .await
        .unwrap();
    assert_eq!(store.get_pickup_settings(m.id).await.unwrap(), changed);
    let other = merchant(store, "B").await;
    assert_eq!(
        store.get_pickup_settings(other.id).await.unwrap(),
        PickupSettings::default()
    );
    store.add_carrier(m.id, "省外顺丰").await.unwrap();
    assert!(matches!(
        store.add_carrier(m.id, "省外顺丰").await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.list_carriers(m.id).await.unwrap(), ["省外顺丰"]);
    assert!(store.list_carriers(other.id).await.unwrap().is_empty());
    assert_eq!(store.logo_updated_at(m.id).await.unwrap(), None);
    store
        .put_logo(m.id, "image/png", b"\x89PNG1", NOW)
        .await
        .unwrap();
    store
        .put_logo(m.id, "image/gif", b"GIF89a", NOW + 1)
        .await
        .unwrap();
    assert_eq!(store.logo_updated_at(m.id).await.unwrap(), Some(NOW + 1));
    assert_eq!(
        store.get_logo(m.id).await.unwrap(),
        Some(("image/gif".to_owned(), b"GIF89a".to_vec()))
    );
    assert_eq!(store.get_logo(other.id).await.unwrap(), None);
}
