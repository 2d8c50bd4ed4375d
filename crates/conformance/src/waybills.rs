//! 电子面单: settings, and one waybill per order whatever the clicks.

use crate::fixtures::*;
use crate::NOW;
use kaquan_core::store::*;
use kaquan_core::waybill::*;

pub async fn waybill_settings_are_saved_with_their_secrets_sealed_and_kept(store: &dyn Store) {
    let m = merchant(store, "A").await.id;
    assert_eq!(store.get_waybill_settings(m).await.unwrap(), None);
    let fields = WaybillSettingsFields {
        sender: WaybillSender {
            name: "果园仓".into(),
            phone: "0571-88880000".into(),
            province: "浙江省".into(),
            city: "杭州市".into(),
            district: "西湖区".into(),
            address: "文三路 1 号".into(),
        },
        sf_partner_id: "KQ_SF".into(),
        kuaidi100_key: "kd-key".into(),
        carriers: vec![CarrierChannel {
            carrier: "省外顺丰".into(),
            channel: WaybillChannel::SfExpress,
            monthly_account: "7551234567".into(),
            product_type: "2".into(),
            carrier_code: String::new(),
        }],
        ..Default::default()
    };
    let mut settings = WaybillSettings {
        merchant_id: m,
        fields: fields.clone(),
        sf_check_word_sealed: Some(seal_sf(&master(), m, 1, "check")),
        kuaidi100_secret_sealed: Some(seal_kuaidi100(&master(), m, 1, "kd-secret")),
        key_version: 1,
        updated_at: NOW,
    };
    store
        .save_waybill_settings(&settings, &audit(m, "save_waybill_settings"))
        .await
        .unwrap();
    settings.sf_check_word_sealed = None;
    settings.kuaidi100_secret_sealed = None;
    settings.fields.sender.name = "新仓".into();
    store
        .save_waybill_settings(&settings, &audit(m, "save_waybill_settings"))
        .await
        .unwrap();
    let saved = store.get_waybill_settings(m).await.unwrap().unwrap();
    assert_eq!(saved.fields.sender.name, "新仓");
    assert_eq!(saved.fields.carriers, fields.carriers);
    let (sf, kd) = open_secrets(&master(), &saved);
    assert_eq!(
        (sf.as_deref(), kd.as_deref()),
        (Some("check"), Some("kd-secret"))
    );
}

pub async fn an_order_gets_one_waybill_however_often_it_is_asked(store: &dyn Store) {
    let m = merchant(store, "A").await.id;
    let (first, second) = futures_util::join!(
        store.claim_waybill(m, 7, "顺丰速运", NOW),
        store.claim_waybill(m, 7, "顺丰速运", NOW)
    );
    let mut claims = [first.unwrap(), second.unwrap()];
    claims.sort_by_key(|c| format!("{c:?}"));
    assert_eq!(
        claims,
        [WaybillClaim::Busy, WaybillClaim::Call],
        "one caller at a time"
    );
    // The call failed: the next click calls again.
    store
        .record_waybill(m, 7, Err("超时"), NOW + 1)
        .await
        .unwrap();
    assert_eq!(
        store
            .claim_waybill(m, 7, "顺丰速运", NOW + 2)
            .await
            .unwrap(),
        WaybillClaim::Call
    );
    store
        .record_waybill(m, 7, Ok("SF7444407670710"), NOW + 3)
        .await
        .unwrap();
    assert_eq!(
        store
            .claim_waybill(m, 7, "顺丰速运", NOW + 4)
            .await
            .unwrap(),
        WaybillClaim::Done("SF7444407670710".into())
    );
    assert!(
        store
            .record_waybill(m, 7, Ok("SF2"), NOW + 5)
            .await
            .is_err(),
        "not calling"
    );
    // A caller that died: its claim runs out and another may call.
    assert_eq!(
        store.claim_waybill(m, 8, "中通快递", NOW).await.unwrap(),
        WaybillClaim::Call
    );
    assert_eq!(
        store
            .claim_waybill(m, 8, "中通快递", NOW + 1)
            .await
            .unwrap(),
        WaybillClaim::Busy
    );
    assert_eq!(
        store
            .claim_waybill(m, 8, "中通快递", NOW + CLAIM_SECONDS)
            .await
            .unwrap(),
        WaybillClaim::Call
    );
    // Another merchant's order 7 is its own.
    let other = merchant(store, "B").await.id;
    assert_eq!(
        store
            .claim_waybill(other, 7, "顺丰速运", NOW)
            .await
            .unwrap(),
        WaybillClaim::Call
    );
}
