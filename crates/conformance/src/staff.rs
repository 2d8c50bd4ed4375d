//! Staff, roles, sign-in counts and sessions.

#[allow(unused_imports)]
use crate::fixtures::*;
use crate::NOW;
use kaquan_core::StoreError;
use kaquan_core::{staff::*, store::*};

pub(crate) fn new_staff(merchant_id: i64, role_id: i64, username: &str) -> NewStaff {
    NewStaff {
        merchant_id,
        username: username.into(),
        name: "张三".into(),
        phone: "13800000000".into(),
        role_id,
        password_hash: "hash".into(),
        must_change_password: true,
    }
}

pub async fn staff_usernames_are_unique_and_roles_stay_within_their_merchant(store: &dyn Store) {
    let a = merchant(store, "A").await;
    let b = merchant(store, "B").await;
    let a_owner = store.list_roles(a.id).await.unwrap()[0].id;
    let b_owner = store.list_roles(b.id).await.unwrap()[0].id;
    let staff = store
        .create_staff(&new_staff(a.id, a_owner, "boss"), NOW)
        .await
        .unwrap();
    assert_eq!(staff.username, "boss");
    assert!(matches!(
        store
            .create_staff(&new_staff(b.id, b_owner, "boss"), NOW)
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert!(
        store
            .create_staff(&new_staff(a.id, b_owner, "sneaky"), NOW)
            .await
            .is_err(),
        "a role of another merchant cannot be given"
    );
    let update = StaffUpdate {
        name: Some("李四".into()),
        role_id: Some(b_owner),
        ..Default::default()
    };
    assert!(store.update_staff(a.id, staff.id, &update).await.is_err());
    let update = StaffUpdate {
        name: Some("李四".into()),
        disabled: Some(true),
        ..Default::default()
    };
    store.update_staff(a.id, staff.id, &update).await.unwrap();
    let found = store.find_staff_by_username("boss").await.unwrap().unwrap();
    assert_eq!(
        (found.name.as_str(), found.disabled, found.phone.as_str()),
        ("李四", true, "13800000000")
    );
    assert!(found.must_change_password, "kept until changed");
    assert_eq!(found.language, None, "a new account follows the browser");
    let english = StaffUpdate {
        language: Some("en".into()),
        ..Default::default()
    };
    store.update_staff(a.id, staff.id, &english).await.unwrap();
    let found = store.get_staff(staff.id).await.unwrap();
    assert_eq!(
        (found.language.as_deref(), found.name.as_str()),
        (Some("en"), "李四")
    );
    let unknown = StaffUpdate {
        language: Some("fr".into()),
        ..Default::default()
    };
    assert!(store.update_staff(a.id, staff.id, &unknown).await.is_err());
    let chosen = StaffUpdate {
        password_hash: Some("own".into()),
        must_change_password: Some(false),
        ..Default::default()
    };
    store.update_staff(a.id, staff.id, &chosen).await.unwrap();
    assert!(
        !store
            .get_staff(staff.id)
            .await
            .unwrap()
            .must_change_password
    );
    assert!(store
        .find_staff_by_username("nobody")
        .await
        .unwrap()
        .is_none());
    assert!(matches!(
        store.update_staff(b.id, staff.id, &update).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(store.list_staff(a.id).await.unwrap().len(), 1);
    assert!(store.list_staff(b.id).await.unwrap().is_empty());
}

pub async fn failed_logins_count_up_and_success_resets_them(store: &dyn Store) {
    let m = merchant(store, "A").await;
    let role = store.list_roles(m.id).await.unwrap()[0].id;
    let staff = store
        .create_staff(&new_staff(m.id, role, "boss"), NOW)
        .await
        .unwrap();
    assert_eq!(store.record_login(staff.id, false, None).await.unwrap(), 1);
    assert_eq!(
        store
            .record_login(staff.id, false, Some(NOW + 60))
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        store.get_staff(staff.id).await.unwrap().locked_until,
        Some(NOW + 60)
    );
    assert_eq!(store.record_login(staff.id, true, None).await.unwrap(), 0);
    assert_eq!(store.get_staff(staff.id).await.unwrap().locked_until, None);
}

pub async fn sessions_expire_and_can_be_deleted(store: &dyn Store) {
    let m = merchant(store, "A").await;
    let role = store.list_roles(m.id).await.unwrap()[0].id;
    let staff = store
        .create_staff(&new_staff(m.id, role, "boss"), NOW)
        .await
        .unwrap();
    let session = Session {
        token_hash: "h1".into(),
        staff_id: staff.id,
        merchant_id: m.id,
        csrf_token: "c".into(),
        expires_at: NOW + 10,
    };
    store.create_session(&session).await.unwrap();
    assert_eq!(store.find_session("h1", NOW).await.unwrap(), Some(session));
    assert_eq!(
        store.find_session("h1", NOW + 10).await.unwrap(),
        None,
        "expired"
    );
    store.delete_session("h1").await.unwrap();
    assert_eq!(store.find_session("h1", NOW).await.unwrap(), None);
}
