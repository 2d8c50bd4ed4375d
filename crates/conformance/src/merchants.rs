//! Merchants.

#[allow(unused_imports)]
use crate::fixtures::*;
use kaquan_core::auth::Permission;
use kaquan_core::store::*;
use kaquan_core::StoreError;

pub async fn merchants_start_with_the_builtin_roles(store: &dyn Store) {
    let m = merchant(store, "果园").await;
    assert_eq!(store.get_merchant(m.id).await.unwrap().name, "果园");
    let roles = store.list_roles(m.id).await.unwrap();
    let names: Vec<_> = roles.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "owner",
            "card_manager",
            "order_clerk",
            "verifier",
            "readonly"
        ]
    );
    assert_eq!(roles[0].permissions, Permission::ALL.to_vec());
    let custom = store
        .create_role(m.id, "printer", "印刷对接", &[Permission::CardsExport])
        .await
        .unwrap();
    store
        .update_role(
            m.id,
            custom.id,
            "印刷厂",
            &[Permission::CardsExport, Permission::CardsView],
        )
        .await
        .unwrap();
    let roles = store.list_roles(m.id).await.unwrap();
    let custom = roles.iter().find(|r| r.name == "printer").unwrap();
    assert_eq!(custom.label, "印刷厂");
    assert_eq!(
        custom.permissions,
        vec![Permission::CardsView, Permission::CardsExport]
    );
    assert!(matches!(
        store.create_role(m.id, "printer", "x", &[]).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.list_merchants().await.unwrap().len(), 1);
    assert!(matches!(
        store.get_merchant(m.id + 100).await,
        Err(StoreError::NotFound)
    ));
}
