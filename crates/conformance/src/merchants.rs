//! Merchants.

#[allow(unused_imports)]
use crate::fixtures::*;
use crate::NOW;
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

/// 预付卡政策: off for a new merchant, switched per merchant with an audit
/// record; while on, a code template over ¥1,000 is refused naming the
/// rule, and one that keeps the rules is made.
pub async fn the_prepaid_policy_is_switched_per_merchant_and_holds_templates(store: &dyn Store) {
    use kaquan_core::code::{create_code_template, CodeKind, CodeTemplateError, NewCodeTemplate};
    let a = merchant(store, "A").await.id;
    let b = merchant(store, "B").await.id;
    assert!(!store.get_merchant(a).await.unwrap().prepaid_policy);
    store
        .set_prepaid_policy(a, true, &audit(a, "set_prepaid_policy"))
        .await
        .unwrap();
    assert!(store.get_merchant(a).await.unwrap().prepaid_policy);
    assert!(!store.get_merchant(b).await.unwrap().prepaid_policy);
    let (records, _) = store.list_audit(a, Default::default()).await.unwrap();
    assert_eq!(records[0].entry.action, "set_prepaid_policy");
    assert!(matches!(
        store
            .set_prepaid_policy(9_999, true, &audit(9_999, "set_prepaid_policy"))
            .await,
        Err(kaquan_core::StoreError::NotFound)
    ));
    let template = |face_value_fen| NewCodeTemplate {
        kind: CodeKind::Online,
        fields: fields("礼品卡", face_value_fen),
        quantity: 0,
    };
    let actor = kaquan_core::audit::Actor::cli();
    let refused =
        create_code_template(store, &master(), a, &template(100_001), actor.clone(), NOW).await;
    match refused {
        Err(CodeTemplateError::Invalid(broken)) => {
            assert_eq!(broken, ["预付卡政策：不记名卡、兑换码面值不超过 1000 元"])
        }
        other => panic!("{other:?}"),
    }
    create_code_template(store, &master(), a, &template(100_000), actor.clone(), NOW)
        .await
        .unwrap();
    // Another merchant, policy off: the same template is made.
    create_code_template(store, &master(), b, &template(100_001), actor, NOW)
        .await
        .unwrap();
}
