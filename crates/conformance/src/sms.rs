//! 短信: settings, texts planned with their events, leased tries.

use crate::fixtures::*;
use crate::NOW;
use kaquan_core::pickup::order::Shipment;
use kaquan_core::pickup::Channel;
use kaquan_core::sms::*;
use kaquan_core::store::*;

fn fields() -> SmsSettingsFields {
    SmsSettingsFields {
        provider: SmsProvider::Tencent,
        access_key_id: "AKID".into(),
        sdk_app_id: "1400006666".into(),
        region: "ap-guangzhou".into(),
        sign_name: "果园".into(),
        notify_customer_on_submit: true,
        template_submit: "101".into(),
        notify_admin_on_submit: true,
        template_admin: "102".into(),
        admin_phones: vec!["13900000001".into(), "13900000002".into()],
        notify_customer_on_ship: false,
        template_ship: "103".into(),
        ..Default::default()
    }
}

async fn save(store: &dyn Store, m: i64, fields: SmsSettingsFields, secret: Option<&str>) {
    let settings = SmsSettings {
        merchant_id: m,
        fields,
        secret_sealed: secret.map(|s| seal_secret(&master(), m, 1, s)),
        key_version: 1,
        updated_at: NOW,
    };
    store
        .save_sms_settings(&settings, &audit(m, "save_sms_settings"))
        .await
        .unwrap();
}

pub async fn sms_settings_are_saved_with_the_secret_sealed_and_kept(store: &dyn Store) {
    let m = merchant(store, "A").await.id;
    assert_eq!(store.get_sms_settings(m).await.unwrap(), None);
    save(store, m, fields(), Some("topsecret")).await;
    let saved = store.get_sms_settings(m).await.unwrap().unwrap();
    assert_eq!(saved.fields, fields());
    assert_eq!(open_secret(&master(), &saved).as_deref(), Some("topsecret"));
    // Saving without a new secret keeps the saved one.
    let mut changed = fields();
    changed.notify_customer_on_ship = true;
    changed.admin_phones.clear();
    changed.notify_admin_on_submit = false;
    save(store, m, changed.clone(), None).await;
    let saved = store.get_sms_settings(m).await.unwrap().unwrap();
    assert_eq!(saved.fields, changed);
    assert_eq!(open_secret(&master(), &saved).as_deref(), Some("topsecret"));
    let other = merchant(store, "B").await.id;
    assert_eq!(store.get_sms_settings(other).await.unwrap(), None);
}

pub async fn pickup_orders_plan_texts_by_the_switches(store: &dyn Store) {
    let (m, cards, goods) = pickup_fixture(store, 3).await;
    // No settings: an order plans nothing.
    store
        .redeem_pickup(
            &new_order(m, cards[0], goods[0], Channel::Web),
            &audit(m, "redeem_pickup"),
        )
        .await
        .unwrap();
    assert_eq!(store.list_sms(m, Page::default()).await.unwrap().1, 0);
    save(store, m, fields(), Some("k")).await;
    let order = store
        .redeem_pickup(
            &new_order(m, cards[1], goods[0], Channel::Web),
            &audit(m, "redeem_pickup"),
        )
        .await
        .unwrap();
    let ship = Shipment {
        order_id: order.id,
        carrier: "顺丰速运".into(),
        tracking_number: "SF1".into(),
    };
    store
        .ship_orders(m, &[ship], NOW + 1, &audit(m, "ship"))
        .await
        .unwrap();
    let (texts, total) = store.list_sms(m, Page::default()).await.unwrap();
    assert_eq!(total, 3, "A to the customer and B to two admins; C is off");
    let mut to: Vec<_> = texts.iter().map(|t| (t.kind, t.phone.clone())).collect();
    to.sort_by_key(|(_, phone)| phone.clone());
    assert_eq!(
        to,
        [
            (SmsKind::OrderSubmitted, "13800001234".to_owned()),
            (SmsKind::OrderSubmittedAdmin, "13900000001".to_owned()),
            (SmsKind::OrderSubmittedAdmin, "13900000002".to_owned()),
        ]
    );
    assert!(texts
        .iter()
        .all(|t| t.state == SmsState::Pending && t.attempts == 0));
    // C on: shipping texts the customer with the tracking number.
    let mut on = fields();
    on.notify_customer_on_ship = true;
    save(store, m, on, None).await;
    let third = store
        .redeem_pickup(
            &new_order(m, cards[2], goods[0], Channel::Web),
            &audit(m, "redeem_pickup"),
        )
        .await
        .unwrap();
    let ship = Shipment {
        order_id: third.id,
        carrier: "中通快递".into(),
        tracking_number: "ZT9".into(),
    };
    store
        .ship_orders(m, &[ship], NOW + 9, &audit(m, "ship"))
        .await
        .unwrap();
    let texts = store.list_sms(m, Page::default()).await.unwrap().0;
    let shipped = texts
        .iter()
        .find(|t| t.kind == SmsKind::OrderShipped)
        .unwrap();
    assert!(shipped.params.contains("ZT9") && shipped.params.contains("中通快递"));
    assert_eq!(shipped.template, "103");
}

pub async fn texts_are_leased_to_one_sender_and_retried_after_their_delay(store: &dyn Store) {
    let (m, cards, goods) = pickup_fixture(store, 1).await;
    save(store, m, fields(), Some("k")).await;
    store
        .redeem_pickup(
            &new_order(m, cards[0], goods[0], Channel::Web),
            &audit(m, "redeem_pickup"),
        )
        .await
        .unwrap();
    // Two senders at once: each text is leased to one of them.
    let (first, second) =
        futures_util::join!(store.claim_sms(2, 60, NOW), store.claim_sms(2, 60, NOW));
    let (first, second) = (first.unwrap(), second.unwrap());
    assert_eq!(first.len() + second.len(), 3);
    assert!(first.iter().all(|a| second.iter().all(|b| a.id != b.id)));
    assert!(
        store.claim_sms(10, 60, NOW).await.unwrap().is_empty(),
        "leased"
    );
    let sent = SmsOutcome {
        sent: true,
        provider_code: "Ok".into(),
        provider_message: "send success".into(),
    };
    let refused = SmsOutcome {
        sent: false,
        provider_code: "FailedOperation.SignatureIncorrectOrUnapproved".into(),
        provider_message: "签名未审批".into(),
    };
    let text = &first[0];
    assert_eq!(text.attempts, 1);
    store
        .record_sms_attempt(text.id, 1, &sent, NOW + 2)
        .await
        .unwrap();
    // A stale try (its lease lost) changes nothing.
    assert!(store
        .record_sms_attempt(text.id, 1, &refused, NOW + 3)
        .await
        .is_err());
    let other = &second[0];
    store
        .record_sms_attempt(other.id, 1, &refused, NOW + 2)
        .await
        .unwrap();
    let texts = store.list_sms(m, Page::default()).await.unwrap().0;
    let find = |id| texts.iter().find(|t| t.id == id).unwrap();
    assert_eq!(
        (find(text.id).state, find(text.id).sent_at),
        (SmsState::Sent, Some(NOW + 2))
    );
    let retried = find(other.id);
    assert_eq!(retried.state, SmsState::Pending);
    assert_eq!(retried.next_attempt_at, Some(NOW + 2 + SMS_RETRY_DELAYS[0]));
    assert_eq!(retried.provider_code, refused.provider_code);
    // Due again only after its delay.
    assert!(!store
        .claim_sms(10, 60, NOW + 5)
        .await
        .unwrap()
        .iter()
        .any(|t| t.id == other.id));
    let again = store
        .claim_sms(10, 60, NOW + 2 + SMS_RETRY_DELAYS[0])
        .await
        .unwrap();
    assert!(again.iter().any(|t| t.id == other.id && t.attempts == 2));
}
