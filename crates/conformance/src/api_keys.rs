//! Open-API keys.

#[allow(unused_imports)]
use crate::fixtures::*;
use kaquan_core::StoreError;
use kaquan_core::{api_key::*, store::*};

/// A new key's secret is kept only sealed, to its own key id: the node
/// that looks the key up opens the same secret, and a sealed copy moved to
/// another key id opens to nothing.
pub async fn an_api_key_secret_is_sealed_to_its_key_and_opens_again(store: &dyn Store) {
    use kaquan_core::signing::{create_api_key, open_api_secret};
    let m = merchant(store, "A").await.id;
    let master = master();
    let (key, secret) = create_api_key(store, &master, m, "商城", &audit(m, "create_api_key"))
        .await
        .unwrap();
    assert!(key.key_id.starts_with("kq_"));
    assert_eq!(secret.len(), 64);
    let found = store.find_api_key(&key.key_id).await.unwrap().unwrap();
    assert_ne!(
        found.secret_sealed,
        secret.as_bytes(),
        "never kept in plaintext"
    );
    assert_eq!(
        open_api_secret(&master, &found).as_deref(),
        Some(secret.as_str())
    );
    let moved = ApiKeySecret {
        key_id: "kq_0000000000000000".into(),
        ..found.clone()
    };
    assert_eq!(open_api_secret(&master, &moved), None);
    let (other, other_secret) =
        create_api_key(store, &master, m, "备用", &audit(m, "create_api_key"))
            .await
            .unwrap();
    assert_ne!(
        (other.key_id.as_str(), other_secret.as_str()),
        (key.key_id.as_str(), secret.as_str())
    );
}

pub async fn api_keys_allow_two_active_at_once(store: &dyn Store) {
    let m = merchant(store, "A").await.id;
    let create = |key_id: &'static str| async move {
        store
            .create_api_key(m, key_id, "商城", b"sealed", 1, &audit(m, "create_api_key"))
            .await
    };
    let first = create("kq_a").await.unwrap();
    create("kq_b").await.unwrap();
    assert!(matches!(create("kq_c").await, Err(StoreError::Conflict(_))));
    assert_eq!(
        store
            .find_api_key("kq_a")
            .await
            .unwrap()
            .map(|k| k.merchant_id),
        Some(m)
    );
    store
        .revoke_api_key(m, first.id, &audit(m, "revoke_api_key"))
        .await
        .unwrap();
    assert!(store.find_api_key("kq_a").await.unwrap().is_none());
    create("kq_c").await.expect("room again after revoking");
    let keys = store.list_api_keys(m).await.unwrap();
    assert_eq!(keys.iter().filter(|k| k.active).count(), 2);
    assert!(matches!(
        store
            .revoke_api_key(m, first.id, &audit(m, "revoke_api_key"))
            .await,
        Err(StoreError::NotFound)
    ));
}
