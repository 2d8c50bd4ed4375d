//! Customers and their sessions.

#[allow(unused_imports)]
use crate::fixtures::*;
use crate::NOW;
use kaquan_core::StoreError;
use kaquan_core::{customer::*, store::*};

pub async fn customers_sign_in_by_link_or_phone_with_sessions(store: &dyn Store) {
    let m = merchant(store, "A").await.id;
    let by_phone = store
        .create_phone_customer(m, "13800001111", "hash", NOW)
        .await
        .unwrap();
    assert!(matches!(
        store
            .create_phone_customer(m, "13800001111", "hash", NOW)
            .await,
        Err(StoreError::Conflict(_))
    ));
    let (found, hash) = store
        .find_phone_customer(m, "13800001111")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((found.id, hash.as_str()), (by_phone.id, "hash"));
    assert!(store
        .find_phone_customer(m, "13800002222")
        .await
        .unwrap()
        .is_none());
    let mall = store.ensure_customer(m, "mall-7", NOW).await.unwrap();
    assert_eq!(
        store.ensure_customer(m, "mall-7", NOW).await.unwrap().id,
        mall.id
    );
    assert_eq!(
        store
            .find_external_customer(m, "mall-7")
            .await
            .unwrap()
            .map(|c| c.id),
        Some(mall.id)
    );
    let (listed, total) = store
        .list_customers(m, "mall", Page::default())
        .await
        .unwrap();
    assert_eq!((listed.len(), total), (1, 1));
    assert_eq!(
        store
            .list_customers(m, "", Page::default())
            .await
            .unwrap()
            .1,
        2
    );
    store
        .consume_login_link("nonce-1", NOW + 300)
        .await
        .unwrap();
    assert!(matches!(
        store.consume_login_link("nonce-1", NOW + 300).await,
        Err(StoreError::Conflict(_))
    ));
    let session = CustomerSession {
        token_hash: "t".into(),
        merchant_id: m,
        customer_id: mall.id,
        csrf_token: "c".into(),
        expires_at: NOW + 10,
    };
    store.create_customer_session(&session).await.unwrap();
    assert_eq!(
        store.find_customer_session("t", NOW).await.unwrap(),
        Some(session)
    );
    assert_eq!(
        store.find_customer_session("t", NOW + 10).await.unwrap(),
        None
    );
    store.delete_customer_session("t").await.unwrap();
    assert_eq!(store.find_customer_session("t", NOW).await.unwrap(), None);
}
