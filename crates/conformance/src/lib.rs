//! The behavioural conformance suite every `Store` backend must pass.
//!
//! Each check is an async function over `&dyn Store`; a backend's test file
//! invokes [`conformance_tests!`] with an expression that makes a fresh,
//! empty store, so every check runs on its own database.

use kaquan_core::auth::Permission;
use kaquan_core::batch::{BatchFields, BatchSpec, NewCard, Numbering, PasswordCharset};
use kaquan_core::card::{CardEdit, CardFilter, CardNumber, CardOp, CardPassword, CardState};
use kaquan_core::goods::{GoodsFields, GoodsLinkMode, GOODS_IMAGES_MAX};
use kaquan_core::pickup::{AppointmentMode, Channel, Consignee, OrderStatus, PickupSettings};
use kaquan_core::secrets::MasterKey;
use kaquan_core::store::*;
use kaquan_core::usecases::{self, BatchProgress, ImportError, ImportRow};
use kaquan_core::StoreError;
use std::sync::Arc;

mod stored_value;
pub use stored_value::*;

pub const NOW: i64 = 1_790_000_000;

/// Generates the `#[tokio::test]` functions for every check.
#[macro_export]
macro_rules! conformance_tests {
    ($make_store:expr) => {
        $crate::conformance_tests!(@each $make_store;
            merchants_start_with_the_builtin_roles,
            staff_usernames_are_unique_and_roles_stay_within_their_merchant,
            failed_logins_count_up_and_success_resets_them,
            sessions_expire_and_can_be_deleted,
            a_generated_batch_is_complete_and_ready,
            a_failed_fill_leaves_no_cards_and_a_failed_batch,
            interrupted_batches_become_failed,
            sequential_batches_continue_numbering_and_serials,
            goods_and_activation_commit_with_the_batch,
            card_operations_follow_the_state_machine_and_are_audited,
            deleting_keeps_the_numbers_in_the_audit_log,
            editing_changes_only_the_chosen_fields,
            filters_narrow_lists_and_counts,
            merchants_cannot_see_or_change_each_others_cards,
            imports_are_validated_completely_before_anything_is_written,
            exports_page_through_every_card_with_its_sealed_password,
            verify_finds_no_violation_in_a_healthy_database,
            goods_are_kept_per_merchant_with_their_images,
            cards_are_linked_to_goods_by_filter,
            a_pickup_uses_the_card_and_creates_one_order,
            cancelling_an_order_makes_the_card_usable_again,
            shipping_is_all_or_nothing,
            failed_attempts_are_counted_in_a_window,
            fifty_simultaneous_pickups_of_one_card_create_one_order,
            pickup_refusals_take_the_same_time_whatever_the_reason,
            pickup_checks_follow_the_card_and_the_attempt_limits,
            a_pickup_follows_the_channel_goods_consignee_and_date_rules,
            pickup_settings_default_until_saved_and_round_trip,
            offline_codes_redeem_once_into_the_balance,
            wrong_codes_count_against_the_attempt_limit,
            expired_and_deleted_codes_are_refused,
            code_refusals_take_the_same_time_whatever_the_reason,
            spends_refunds_and_adjustments_keep_the_balance_at_or_above_zero,
            idempotency_keys_replay_the_first_outcome,
            one_hundred_concurrent_replays_have_one_effect,
            reused_nonces_are_refused,
            signed_redemptions_keep_nonce_and_idempotency_rules,
            concurrent_signed_redemptions_credit_each_code_once,
            one_thousand_concurrent_redemptions_of_one_code_credit_once,
            the_overspend_race_never_goes_below_zero,
            mall_orders_issue_codes_once,
            api_keys_allow_two_active_at_once,
            an_api_key_secret_is_sealed_to_its_key_and_opens_again,
            customers_sign_in_by_link_or_phone_with_sessions,
            random_ledger_operations_keep_every_invariant,
        );
    };
    (@each $make_store:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let store = $make_store.await;
                $crate::$name(store.as_ref()).await;
            }
        )*
    };
}

fn audit(merchant_id: i64, action: &str) -> AuditEntry {
    AuditEntry {
        merchant_id,
        actor: Actor::cli(),
        action: action.into(),
        target: String::new(),
        detail: String::new(),
        n_affected: 0,
        created_at: NOW,
    }
}

async fn merchant(store: &dyn Store, name: &str) -> Merchant {
    store
        .create_merchant(name, NOW)
        .await
        .expect("create merchant")
}

fn master() -> MasterKey {
    MasterKey::from_bytes([7; 32])
}

/// Generates a batch through the real use case and returns it ready.
pub async fn generate(store: &dyn Store, merchant_id: i64, fields: BatchFields) -> Batch {
    let spec = BatchSpec::new(fields).expect("valid spec");
    let batch = usecases::start_generated_batch(store, merchant_id, &spec, "test", NOW)
        .await
        .expect("start batch");
    assert_eq!(batch.state, BatchState::Generating);
    let progress = Arc::new(BatchProgress::default());
    let n = usecases::fill_generated_batch(
        store,
        &master(),
        &batch,
        &spec,
        audit(merchant_id, "generate_batch"),
        progress.clone(),
        NOW,
    )
    .await
    .expect("fill batch");
    assert_eq!(n, spec.quantity);
    assert_eq!(progress.snapshot(), (spec.quantity, spec.quantity));
    store
        .get_batch(merchant_id, batch.id)
        .await
        .expect("get batch")
}

fn quantity(n: i64) -> BatchFields {
    BatchFields {
        quantity: n,
        ..Default::default()
    }
}

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

fn new_staff(merchant_id: i64, role_id: i64, username: &str) -> NewStaff {
    NewStaff {
        merchant_id,
        username: username.into(),
        name: "张三".into(),
        phone: "13800000000".into(),
        role_id,
        password_hash: "hash".into(),
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

pub async fn a_generated_batch_is_complete_and_ready(store: &dyn Store) {
    let m = merchant(store, "A").await;
    let batch = generate(
        store,
        m.id,
        BatchFields {
            name: Some("388 卡".into()),
            prefix: Some("A388".into()),
            numbering: Some(Numbering::Random),
            number_length: Some(12),
            password_length: Some(12),
            password_charset: Some(PasswordCharset::Digits),
            quantity: 5000,
            face_value_fen: Some(38800),
            remark: Some("中秋".into()),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(batch.state, BatchState::Ready);
    assert_eq!(batch.serial_first, 1);
    let filter = CardFilter {
        batch_id: Some(batch.id),
        ..Default::default()
    };
    assert_eq!(store.count_cards(m.id, &filter).await.unwrap(), 5000);
    let cards = store
        .list_cards(m.id, &filter, Page::new(Some(1), Some(10)))
        .await
        .unwrap();
    assert_eq!(cards.len(), 10);
    let card = &cards[0];
    assert_eq!(card.serial, 1);
    assert_eq!(card.state, CardState::Inactive);
    assert_eq!(card.face_value_fen, Some(38800));
    assert_eq!(card.remark, "中秋");
    assert!(
        card.number.starts_with("A388") && card.number.len() == 16,
        "{}",
        card.number
    );
    let found = store
        .get_card_by_number(m.id, &card.number)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&found, card);
    let (batches, total) = store.list_batches(m.id, Page::default()).await.unwrap();
    assert_eq!((batches.len(), total), (1, 1));
    let (log, _) = store.list_audit(m.id, Page::default()).await.unwrap();
    assert_eq!(log[0].entry.action, "generate_batch");
    assert_eq!(log[0].entry.n_affected, 5000);
}

struct DuplicatingSource(u8);

impl CardSource for DuplicatingSource {
    fn next_chunk(&mut self) -> Vec<NewCard> {
        self.0 += 1;
        if self.0 > 3 {
            return Vec::new();
        }
        // The third chunk repeats a number from the first: the unique constraint fires mid-batch.
        let base = if self.0 == 3 {
            100
        } else {
            self.0 as i64 * 100
        };
        (0..100)
            .map(|i| NewCard {
                serial: self.0 as i64 * 1000 + i,
                number: format!("X{:06}", base + i),
                secret_digest: [1; 32],
                secret_sealed: vec![1, 2, 3],
            })
            .collect()
    }
}

pub async fn a_failed_fill_leaves_no_cards_and_a_failed_batch(store: &dyn Store) {
    let m = merchant(store, "A").await;
    let spec = BatchSpec::new(quantity(300)).unwrap();
    let batch = usecases::start_generated_batch(store, m.id, &spec, "test", NOW)
        .await
        .unwrap();
    let result = store
        .fill_batch(
            m.id,
            batch.id,
            Box::new(DuplicatingSource(0)),
            &audit(m.id, "generate_batch"),
            &AfterFill::default(),
            NOW,
        )
        .await;
    assert!(matches!(result, Err(StoreError::Conflict(_))), "{result:?}");
    store.fail_batch(batch.id, "卡号冲突").await.unwrap();
    assert_eq!(
        store
            .count_cards(m.id, &CardFilter::default())
            .await
            .unwrap(),
        0
    );
    let batch = store.get_batch(m.id, batch.id).await.unwrap();
    assert_eq!(batch.state, BatchState::Failed);
    assert_eq!(batch.error.as_deref(), Some("卡号冲突"));
    let (log, _) = store.list_audit(m.id, Page::default()).await.unwrap();
    assert!(
        log.is_empty(),
        "the audit record rolled back with the cards"
    );
    assert!(store.verify().await.unwrap().is_empty());
}

pub async fn interrupted_batches_become_failed(store: &dyn Store) {
    let m = merchant(store, "A").await;
    let spec = BatchSpec::new(quantity(10)).unwrap();
    let batch = usecases::start_generated_batch(store, m.id, &spec, "test", NOW)
        .await
        .unwrap();
    assert_eq!(store.fail_interrupted_batches().await.unwrap(), 1);
    assert_eq!(
        store.get_batch(m.id, batch.id).await.unwrap().state,
        BatchState::Failed
    );
    let result = store
        .fill_batch(
            m.id,
            batch.id,
            Box::new(VecSource(Some(Vec::new()))),
            &audit(m.id, "x"),
            &AfterFill::default(),
            NOW,
        )
        .await;
    assert!(result.is_err(), "a failed batch can never be filled later");
}

pub async fn goods_and_activation_commit_with_the_batch(store: &dyn Store) {
    let m = merchant(store, "A").await;
    let apple = store
        .create_goods(m.id, &goods_fields("苹果"), NOW)
        .await
        .unwrap();
    let batch = generate(
        store,
        m.id,
        BatchFields {
            quantity: 3,
            activate: true,
            goods_ids: vec![apple.id],
            ..Default::default()
        },
    )
    .await;
    let cards = store
        .list_cards(
            m.id,
            &CardFilter {
                batch_id: Some(batch.id),
                ..Default::default()
            },
            Page::default(),
        )
        .await
        .unwrap();
    for card in &cards {
        assert_eq!(
            card.state,
            CardState::Active,
            "active as soon as the batch is ready"
        );
        assert_eq!(
            store.goods_of_card(m.id, card.id).await.unwrap()[0].id,
            apple.id
        );
    }
    let (log, _) = store.list_audit(m.id, Page::default()).await.unwrap();
    let actions: Vec<_> = log
        .iter()
        .map(|r| (r.entry.action.as_str(), r.entry.n_affected))
        .collect();
    assert_eq!(
        actions,
        [
            ("activate_cards", 3),
            ("link_goods", 3),
            ("generate_batch", 3)
        ]
    );
    assert!(store.verify().await.unwrap().is_empty());
}

pub async fn sequential_batches_continue_numbering_and_serials(store: &dyn Store) {
    let m = merchant(store, "A").await;
    let fields = || BatchFields {
        prefix: Some("B8".into()),
        number_length: Some(6),
        quantity: 3,
        ..Default::default()
    };
    let first = generate(store, m.id, fields()).await;
    let second = generate(store, m.id, fields()).await;
    assert_eq!(second.serial_first, first.serial_first + 3);
    let cards = store
        .list_cards(m.id, &CardFilter::default(), Page::default())
        .await
        .unwrap();
    let numbers: Vec<_> = cards.iter().map(|c| c.number.as_str()).collect();
    assert_eq!(
        numbers,
        ["B8000001", "B8000002", "B8000003", "B8000004", "B8000005", "B8000006"]
    );
    let with_start = generate(
        store,
        m.id,
        BatchFields {
            start_number: Some(10000),
            quantity: 2,
            ..Default::default()
        },
    )
    .await;
    let cards = store
        .list_cards(
            m.id,
            &CardFilter {
                batch_id: Some(with_start.id),
                ..Default::default()
            },
            Page::default(),
        )
        .await
        .unwrap();
    assert_eq!(
        cards.iter().map(|c| c.number.as_str()).collect::<Vec<_>>(),
        ["10001", "10002"]
    );
}

pub async fn card_operations_follow_the_state_machine_and_are_audited(store: &dyn Store) {
    let m = merchant(store, "A").await;
    generate(store, m.id, quantity(200)).await;
    let range = CardFilter {
        serial_from: Some(11),
        serial_to: Some(30),
        ..Default::default()
    };
    assert_eq!(
        store
            .apply_card_op(
                m.id,
                &range,
                CardOp::Activate,
                &audit(m.id, "activate_cards")
            )
            .await
            .unwrap(),
        20
    );
    assert_eq!(
        store
            .apply_card_op(
                m.id,
                &range,
                CardOp::Activate,
                &audit(m.id, "activate_cards")
            )
            .await
            .unwrap(),
        0,
        "active cards are not activated twice"
    );
    let active = CardFilter {
        state: Some(CardState::Active),
        ..Default::default()
    };
    assert_eq!(store.count_cards(m.id, &active).await.unwrap(), 20);
    let card = store
        .list_cards(m.id, &active, Page::default())
        .await
        .unwrap()
        .remove(0);
    assert_eq!(card.activated_at, Some(NOW));
    let first_ten = CardFilter {
        serial_to: Some(20),
        ..Default::default()
    };
    assert_eq!(
        store
            .apply_card_op(
                m.id,
                &first_ten,
                CardOp::Deactivate,
                &audit(m.id, "deactivate_cards")
            )
            .await
            .unwrap(),
        10
    );
    assert_eq!(
        store
            .apply_card_op(m.id, &first_ten, CardOp::Void, &audit(m.id, "void_cards"))
            .await
            .unwrap(),
        20
    );
    assert_eq!(
        store
            .apply_card_op(
                m.id,
                &CardFilter::default(),
                CardOp::Restore,
                &audit(m.id, "restore_cards")
            )
            .await
            .unwrap(),
        20
    );
    let restored = store
        .list_cards(m.id, &first_ten, Page::default())
        .await
        .unwrap();
    assert!(restored
        .iter()
        .all(|c| c.state == CardState::Inactive && c.voided_at.is_none()));
    assert_eq!(
        store
            .apply_card_op(
                m.id,
                &CardFilter::default(),
                CardOp::Delete,
                &audit(m.id, "delete_cards")
            )
            .await
            .unwrap(),
        0,
        "only voided cards can be deleted"
    );
    let (log, total) = store.list_audit(m.id, Page::default()).await.unwrap();
    assert_eq!(total, 7);
    let counts: Vec<_> = log
        .iter()
        .map(|r| (r.entry.action.as_str(), r.entry.n_affected))
        .collect();
    assert_eq!(
        counts,
        [
            ("delete_cards", 0),
            ("restore_cards", 20),
            ("void_cards", 20),
            ("deactivate_cards", 10),
            ("activate_cards", 0),
            ("activate_cards", 20),
            ("generate_batch", 200)
        ]
    );
    assert!(store.verify().await.unwrap().is_empty());
}

pub async fn deleting_keeps_the_numbers_in_the_audit_log(store: &dyn Store) {
    let m = merchant(store, "A").await;
    generate(store, m.id, quantity(10)).await;
    let some = CardFilter {
        serial_to: Some(3),
        ..Default::default()
    };
    let numbers: Vec<_> = store
        .list_cards(m.id, &some, Page::default())
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.number)
        .collect();
    store
        .apply_card_op(m.id, &some, CardOp::Void, &audit(m.id, "void_cards"))
        .await
        .unwrap();
    let n = store
        .apply_card_op(
            m.id,
            &CardFilter::default(),
            CardOp::Delete,
            &audit(m.id, "delete_cards"),
        )
        .await
        .unwrap();
    assert_eq!(n, 3);
    assert_eq!(
        store
            .count_cards(m.id, &CardFilter::default())
            .await
            .unwrap(),
        7
    );
    let (log, _) = store.list_audit(m.id, Page::default()).await.unwrap();
    assert_eq!(
        (log[0].entry.action.as_str(), log[0].entry.n_affected),
        ("delete_cards", 3)
    );
    assert_eq!(
        store.list_deleted_numbers(m.id, log[0].id).await.unwrap(),
        numbers
    );
    assert!(
        store.verify().await.unwrap().is_empty(),
        "deleted cards still add up to the batch quantity"
    );
}

pub async fn editing_changes_only_the_chosen_fields(store: &dyn Store) {
    let m = merchant(store, "A").await;
    generate(
        store,
        m.id,
        BatchFields {
            quantity: 5,
            face_value_fen: Some(100),
            remark: Some("原备注".into()),
            ..Default::default()
        },
    )
    .await;
    let d = store
        .create_distributor(
            m.id,
            &DistributorFields {
                name: "小名分销商".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let two = CardFilter {
        serial_to: Some(2),
        ..Default::default()
    };
    let edit = CardEdit {
        valid_until: Some(Some(NOW + 86_400)),
        distributor_id: Some(Some(d.id)),
        ..Default::default()
    };
    assert_eq!(
        store
            .edit_cards(m.id, &two, &edit, &audit(m.id, "edit_cards"))
            .await
            .unwrap(),
        2
    );
    let cards = store
        .list_cards(m.id, &CardFilter::default(), Page::default())
        .await
        .unwrap();
    assert_eq!(cards[0].valid_until, Some(NOW + 86_400));
    assert_eq!(cards[0].distributor_name.as_deref(), Some("小名分销商"));
    assert_eq!(
        (cards[0].face_value_fen, cards[0].remark.as_str()),
        (Some(100), "原备注"),
        "unchosen fields stay"
    );
    assert_eq!(cards[2].valid_until, None, "cards outside the filter stay");
    let by_distributor = CardFilter {
        distributor_id: Some(d.id),
        ..Default::default()
    };
    assert_eq!(store.count_cards(m.id, &by_distributor).await.unwrap(), 2);
    assert_eq!(store.list_distributors(m.id).await.unwrap()[0].n_cards, 2);
    let unassign = CardEdit {
        distributor_id: Some(None),
        ..Default::default()
    };
    store
        .edit_cards(m.id, &by_distributor, &unassign, &audit(m.id, "edit_cards"))
        .await
        .unwrap();
    assert_eq!(
        store
            .count_cards(
                m.id,
                &CardFilter {
                    distributor_id: Some(0),
                    ..Default::default()
                }
            )
            .await
            .unwrap(),
        5
    );
    let other = merchant(store, "B").await;
    let foreign = store
        .create_distributor(
            other.id,
            &DistributorFields {
                name: "别家".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let edit = CardEdit {
        distributor_id: Some(Some(foreign.id)),
        ..Default::default()
    };
    assert!(matches!(
        store
            .edit_cards(m.id, &two, &edit, &audit(m.id, "edit_cards"))
            .await,
        Err(StoreError::NotFound)
    ));
    let negative = CardEdit {
        face_value_fen: Some(Some(-1)),
        ..Default::default()
    };
    assert!(matches!(
        store
            .edit_cards(m.id, &two, &negative, &audit(m.id, "edit_cards"))
            .await,
        Err(StoreError::Invalid(_))
    ));
}

pub async fn filters_narrow_lists_and_counts(store: &dyn Store) {
    let m = merchant(store, "A").await;
    let a = generate(
        store,
        m.id,
        BatchFields {
            prefix: Some("A".into()),
            quantity: 30,
            ..Default::default()
        },
    )
    .await;
    generate(
        store,
        m.id,
        BatchFields {
            prefix: Some("B".into()),
            quantity: 20,
            ..Default::default()
        },
    )
    .await;
    let count = |filter: CardFilter| async move { store.count_cards(m.id, &filter).await.unwrap() };
    assert_eq!(count(CardFilter::default()).await, 50);
    assert_eq!(
        count(CardFilter {
            batch_id: Some(a.id),
            ..Default::default()
        })
        .await,
        30
    );
    assert_eq!(
        count(CardFilter {
            number_contains: Some("b0".into()),
            ..Default::default()
        })
        .await,
        20
    );
    assert_eq!(
        count(CardFilter {
            number_contains: Some("%".into()),
            ..Default::default()
        })
        .await,
        50,
        "wildcards are not special"
    );
    assert_eq!(
        count(CardFilter {
            serial_from: Some(25),
            serial_to: Some(34),
            ..Default::default()
        })
        .await,
        10
    );
    store
        .apply_card_op(
            m.id,
            &CardFilter {
                serial_to: Some(5),
                ..Default::default()
            },
            CardOp::Activate,
            &audit(m.id, "a"),
        )
        .await
        .unwrap();
    assert_eq!(
        count(CardFilter {
            activated: Some(true),
            ..Default::default()
        })
        .await,
        5
    );
    assert_eq!(
        count(CardFilter {
            activated: Some(false),
            ..Default::default()
        })
        .await,
        45
    );
    assert_eq!(
        count(CardFilter {
            used: Some(false),
            ..Default::default()
        })
        .await,
        50
    );
    assert_eq!(
        count(CardFilter {
            used: Some(true),
            ..Default::default()
        })
        .await,
        0
    );
    assert_eq!(
        count(CardFilter {
            state: Some(CardState::Active),
            batch_id: Some(a.id),
            ..Default::default()
        })
        .await,
        5
    );
    let page2 = store
        .list_cards(m.id, &CardFilter::default(), Page::new(Some(2), Some(20)))
        .await
        .unwrap();
    assert_eq!(page2.first().map(|c| c.serial), Some(21));
}

pub async fn merchants_cannot_see_or_change_each_others_cards(store: &dyn Store) {
    let a = merchant(store, "A").await;
    let b = merchant(store, "B").await;
    let batch = generate(store, a.id, quantity(10)).await;
    generate(store, b.id, quantity(10)).await;
    assert_eq!(
        store
            .count_cards(b.id, &CardFilter::default())
            .await
            .unwrap(),
        10
    );
    let a_filter = CardFilter {
        batch_id: Some(batch.id),
        ..Default::default()
    };
    assert_eq!(store.count_cards(b.id, &a_filter).await.unwrap(), 0);
    assert_eq!(
        store
            .apply_card_op(b.id, &a_filter, CardOp::Activate, &audit(b.id, "a"))
            .await
            .unwrap(),
        0
    );
    assert!(matches!(
        store.get_batch(b.id, batch.id).await,
        Err(StoreError::NotFound)
    ));
    let number = store
        .list_cards(a.id, &a_filter, Page::default())
        .await
        .unwrap()[0]
        .number
        .clone();
    assert!(
        store
            .get_card_by_number(b.id, &number)
            .await
            .unwrap()
            .is_some(),
        "both merchants may use the same number"
    );
    assert_eq!(
        store
            .count_cards(
                a.id,
                &CardFilter {
                    state: Some(CardState::Active),
                    ..Default::default()
                }
            )
            .await
            .unwrap(),
        0
    );
}

fn row(line: usize, number: &str, password: &str) -> ImportRow {
    ImportRow {
        line,
        number: number.into(),
        password: password.into(),
    }
}

pub async fn imports_are_validated_completely_before_anything_is_written(store: &dyn Store) {
    let m = merchant(store, "A").await;
    generate(
        store,
        m.id,
        BatchFields {
            start_number: Some(5000),
            quantity: 1,
            ..Default::default()
        },
    )
    .await;
    let rows = vec![
        row(2, "IMP0001", "pass1234"),
        row(3, "IMP0001", "pass1234"),
        row(4, "5001", "pass1234"),
        row(5, "IMP0002", "=cmd|1"),
        row(6, "IMP0003", "pass5678"),
    ];
    match usecases::validate_import(store, m.id, &rows).await {
        Err(ImportError::Rows(errors)) => {
            let lines: Vec<_> = errors.iter().map(|e| e.line).collect();
            assert_eq!(lines, [3, 4, 5], "{errors:?}");
        }
        other => panic!("expected row errors, got {other:?}"),
    }
    assert_eq!(
        store
            .count_cards(m.id, &CardFilter::default())
            .await
            .unwrap(),
        1,
        "nothing imported"
    );
    let good = vec![row(2, "imp0001", "pass1234"), row(3, "IMP0002", "pass5678")];
    let cards = usecases::validate_import(store, m.id, &good).await.unwrap();
    let batch = usecases::import_batch(
        store,
        &master(),
        m.id,
        &usecases::ImportFields {
            name: "自编卡".into(),
            ..Default::default()
        },
        cards,
        audit(m.id, "import_batch"),
        NOW,
    )
    .await
    .unwrap();
    assert_eq!(
        (batch.state, batch.quantity, batch.source),
        (BatchState::Ready, 2, BatchSource::Imported)
    );
    let card = store
        .get_card_by_number(m.id, "IMP0001")
        .await
        .unwrap()
        .expect("numbers are stored upper case");
    assert_eq!(card.batch_id, batch.id);
    let exported = store
        .cards_after(
            m.id,
            &CardFilter {
                batch_id: Some(batch.id),
                ..Default::default()
            },
            0,
            10,
        )
        .await
        .unwrap();
    let keys = master().merchant_keys(m.id, exported[0].key_version);
    assert_eq!(
        keys.open("IMP0001", exported[0].secret_sealed.as_ref().unwrap())
            .as_deref(),
        Some("pass1234")
    );
    assert!(CardNumber::parse("IMP0001").is_ok() && CardPassword::parse("pass1234").is_ok());
}

pub async fn exports_page_through_every_card_with_its_sealed_password(store: &dyn Store) {
    let m = merchant(store, "A").await;
    let batch = generate(store, m.id, quantity(250)).await;
    let filter = CardFilter {
        batch_id: Some(batch.id),
        ..Default::default()
    };
    let keys = master().merchant_keys(m.id, m.key_version);
    let (mut after, mut seen) = (0, Vec::new());
    loop {
        let page = store.cards_after(m.id, &filter, after, 100).await.unwrap();
        let Some(last) = page.last() else { break };
        after = last.card.serial;
        for row in &page {
            let password = keys
                .open(&row.card.number, row.secret_sealed.as_ref().unwrap())
                .expect("sealed for this card");
            assert_eq!(password.len(), 12);
            seen.push(row.card.serial);
        }
    }
    assert_eq!(seen, (1..=250).collect::<Vec<_>>());
    let n = store
        .purge_card_secrets(m.id, &filter, &audit(m.id, "purge_card_secrets"))
        .await
        .unwrap();
    assert_eq!(n, 250);
    let page = store.cards_after(m.id, &filter, 0, 10).await.unwrap();
    assert!(page.iter().all(|r| r.secret_sealed.is_none()));
    assert_eq!(
        store
            .purge_card_secrets(m.id, &filter, &audit(m.id, "purge_card_secrets"))
            .await
            .unwrap(),
        0
    );
}

pub async fn verify_finds_no_violation_in_a_healthy_database(store: &dyn Store) {
    assert!(store.verify().await.unwrap().is_empty());
    let m = merchant(store, "A").await;
    generate(store, m.id, quantity(20)).await;
    store
        .apply_card_op(
            m.id,
            &CardFilter::default(),
            CardOp::Activate,
            &audit(m.id, "a"),
        )
        .await
        .unwrap();
    assert_eq!(store.verify().await.unwrap(), Vec::<String>::new());
}

fn goods_fields(name: &str) -> GoodsFields {
    GoodsFields::new(name, "<p>产地直发</p>", "SKU-1", "ERP-1", "规格: 5斤", true).unwrap()
}

pub async fn goods_are_kept_per_merchant_with_their_images(store: &dyn Store) {
    let m = merchant(store, "A").await;
    let other = merchant(store, "B").await;
    let apple = store
        .create_goods(m.id, &goods_fields("苹果"), NOW)
        .await
        .unwrap();
    let mut peach_fields = goods_fields("桃子");
    peach_fields.on_shelf = false;
    let peach = store.create_goods(m.id, &peach_fields, NOW).await.unwrap();
    store
        .create_goods(other.id, &goods_fields("别家的梨"), NOW)
        .await
        .unwrap();
    assert_eq!(store.list_goods(m.id, false).await.unwrap().len(), 2);
    let on_shelf = store.list_goods(m.id, true).await.unwrap();
    assert_eq!(
        on_shelf.iter().map(|g| g.name.as_str()).collect::<Vec<_>>(),
        ["苹果"]
    );
    let mut renamed = goods_fields("苹果礼盒");
    renamed.sku = "SKU-9".into();
    store
        .update_goods(m.id, apple.id, &renamed, NOW + 1)
        .await
        .unwrap();
    let apple = store.get_goods(m.id, apple.id).await.unwrap();
    assert_eq!(
        (apple.name.as_str(), apple.sku.as_str(), apple.updated_at),
        ("苹果礼盒", "SKU-9", NOW + 1)
    );
    assert_eq!(apple.description, "<p>产地直发</p>");
    assert!(matches!(
        store.get_goods(other.id, apple.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.update_goods(other.id, apple.id, &renamed, NOW).await,
        Err(StoreError::NotFound)
    ));
    let png = b"\x89PNG\r\n\x1a\nfake".to_vec();
    let first = store
        .add_goods_image(m.id, apple.id, "image/png", &png, NOW)
        .await
        .unwrap();
    let second = store
        .add_goods_image(m.id, apple.id, "image/jpeg", &[0xFF, 0xD8, 0xFF], NOW)
        .await
        .unwrap();
    assert_eq!(
        store.get_goods(m.id, apple.id).await.unwrap().image_ids,
        vec![first, second]
    );
    assert_eq!(
        store.get_goods_image(m.id, first).await.unwrap(),
        ("image/png".to_owned(), png.clone())
    );
    assert!(matches!(
        store.get_goods_image(other.id, first).await,
        Err(StoreError::NotFound)
    ));
    assert!(
        store
            .add_goods_image(other.id, apple.id, "image/png", &png, NOW)
            .await
            .is_err(),
        "not another merchant's goods"
    );
    assert!(
        store
            .add_goods_image(m.id, peach.id, "text/html", b"<html>", NOW)
            .await
            .is_err(),
        "only image types"
    );
    store
        .delete_goods_image(m.id, apple.id, first)
        .await
        .unwrap();
    assert_eq!(
        store.get_goods(m.id, apple.id).await.unwrap().image_ids,
        vec![second]
    );
    for _ in 1..GOODS_IMAGES_MAX {
        store
            .add_goods_image(m.id, apple.id, "image/png", &png, NOW)
            .await
            .unwrap();
    }
    assert!(matches!(
        store
            .add_goods_image(m.id, apple.id, "image/png", &png, NOW)
            .await,
        Err(StoreError::Invalid(_))
    ));
}

pub async fn cards_are_linked_to_goods_by_filter(store: &dyn Store) {
    let m = merchant(store, "A").await;
    generate(store, m.id, quantity(10)).await;
    let [a, b, c] = ["苹果", "桃子", "苹果桃子礼盒"].map(goods_fields);
    let a = store.create_goods(m.id, &a, NOW).await.unwrap();
    let b = store.create_goods(m.id, &b, NOW).await.unwrap();
    let c = store.create_goods(m.id, &c, NOW).await.unwrap();
    let first_five = CardFilter {
        serial_to: Some(5),
        ..Default::default()
    };
    let first_two = CardFilter {
        serial_to: Some(2),
        ..Default::default()
    };
    let n = store
        .link_card_goods(
            m.id,
            &first_five,
            &[a.id, b.id, a.id],
            GoodsLinkMode::Replace,
            &audit(m.id, "link_goods"),
        )
        .await
        .unwrap();
    assert_eq!(n, 5);
    store
        .link_card_goods(
            m.id,
            &first_two,
            &[c.id],
            GoodsLinkMode::Add,
            &audit(m.id, "link_goods"),
        )
        .await
        .unwrap();
    let cards = store
        .list_cards(m.id, &CardFilter::default(), Page::default())
        .await
        .unwrap();
    let card_ids: Vec<i64> = cards.iter().map(|c| c.id).collect();
    let names = |card_idx: usize| {
        let card_id = card_ids[card_idx];
        async move {
            store
                .goods_of_card(m.id, card_id)
                .await
                .unwrap()
                .into_iter()
                .map(|g| g.name)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(names(0).await, ["苹果", "桃子", "苹果桃子礼盒"]);
    assert_eq!(names(2).await, ["苹果", "桃子"]);
    assert!(names(5).await.is_empty());
    store
        .link_card_goods(
            m.id,
            &first_five,
            &[c.id],
            GoodsLinkMode::Replace,
            &audit(m.id, "link_goods"),
        )
        .await
        .unwrap();
    assert_eq!(names(0).await, ["苹果桃子礼盒"]);
    let other = merchant(store, "B").await;
    let foreign = store
        .create_goods(other.id, &goods_fields("别家"), NOW)
        .await
        .unwrap();
    let result = store
        .link_card_goods(
            m.id,
            &first_two,
            &[foreign.id],
            GoodsLinkMode::Add,
            &audit(m.id, "link_goods"),
        )
        .await;
    assert!(matches!(result, Err(StoreError::NotFound)));
    assert_eq!(
        names(0).await,
        ["苹果桃子礼盒"],
        "a refused link changes nothing"
    );
    let (log, _) = store.list_audit(m.id, Page::default()).await.unwrap();
    assert_eq!(
        (log[0].entry.action.as_str(), log[0].entry.n_affected),
        ("link_goods", 5)
    );
    store
        .apply_card_op(m.id, &first_two, CardOp::Void, &audit(m.id, "void_cards"))
        .await
        .unwrap();
    assert_eq!(
        store
            .apply_card_op(
                m.id,
                &first_two,
                CardOp::Delete,
                &audit(m.id, "delete_cards")
            )
            .await
            .unwrap(),
        2,
        "linked cards can be deleted"
    );
    assert!(store.verify().await.unwrap().is_empty());
}

/// A merchant with `n` active cards linked to two goods; returns (merchant, card ids, goods ids).
async fn pickup_fixture(store: &dyn Store, n: i64) -> (i64, Vec<i64>, Vec<i64>) {
    let m = merchant(store, "A").await;
    generate(store, m.id, quantity(n)).await;
    let apple = store
        .create_goods(m.id, &goods_fields("苹果"), NOW)
        .await
        .unwrap();
    let peach = store
        .create_goods(m.id, &goods_fields("桃子"), NOW)
        .await
        .unwrap();
    store
        .link_card_goods(
            m.id,
            &CardFilter::default(),
            &[apple.id, peach.id],
            GoodsLinkMode::Replace,
            &audit(m.id, "link_goods"),
        )
        .await
        .unwrap();
    store
        .apply_card_op(
            m.id,
            &CardFilter::default(),
            CardOp::Activate,
            &audit(m.id, "activate_cards"),
        )
        .await
        .unwrap();
    let cards = store
        .list_cards(m.id, &CardFilter::default(), Page::new(None, Some(200)))
        .await
        .unwrap();
    (
        m.id,
        cards.iter().map(|c| c.id).collect(),
        vec![apple.id, peach.id],
    )
}

fn consignee() -> Consignee {
    Consignee::new(
        "张三",
        "13800001234",
        "浙江省",
        "杭州市",
        "西湖区",
        "文三路 100 号",
    )
    .unwrap()
}

fn new_order(merchant_id: i64, card_id: i64, goods_id: i64, channel: Channel) -> NewOrder {
    NewOrder {
        merchant_id,
        card_id,
        goods_id,
        channel,
        consignee: (channel != Channel::Store).then(consignee),
        appointment_date: Some("2026-12-01".into()),
        created_by: "customer".into(),
        created_at: NOW,
    }
}

pub async fn a_pickup_uses_the_card_and_creates_one_order(store: &dyn Store) {
    let (m, cards, goods) = pickup_fixture(store, 6).await;
    let order = store
        .redeem_pickup(
            &new_order(m, cards[0], goods[0], Channel::Web),
            &audit(m, "redeem_pickup"),
        )
        .await
        .unwrap();
    assert_eq!(
        (order.status, order.channel, order.goods_name.as_str()),
        (OrderStatus::Pending, Channel::Web, "苹果")
    );
    assert_eq!(order.consignee, consignee());
    assert_eq!(order.appointment_date.as_deref(), Some("2026-12-01"));
    let card = store
        .list_cards(
            m,
            &CardFilter {
                serial_to: Some(1),
                ..Default::default()
            },
            Page::default(),
        )
        .await
        .unwrap()
        .remove(0);
    assert_eq!((card.state, card.used_at), (CardState::Used, Some(NOW)));
    assert_eq!(order.card_number, card.number);
    let again = store
        .redeem_pickup(
            &new_order(m, cards[0], goods[1], Channel::Web),
            &audit(m, "redeem_pickup"),
        )
        .await;
    assert!(
        matches!(again, Err(StoreError::Conflict(_))),
        "one card, one order: {again:?}"
    );
    // Not linked goods: nothing changes.
    let other = store
        .create_goods(m, &goods_fields("梨"), NOW)
        .await
        .unwrap();
    let result = store
        .redeem_pickup(
            &new_order(m, cards[1], other.id, Channel::Web),
            &audit(m, "redeem_pickup"),
        )
        .await;
    assert!(matches!(result, Err(StoreError::NotFound)), "{result:?}");
    // Inactive and expired cards cannot be used.
    store
        .apply_card_op(
            m,
            &CardFilter {
                serial_from: Some(2),
                serial_to: Some(2),
                ..Default::default()
            },
            CardOp::Deactivate,
            &audit(m, "d"),
        )
        .await
        .unwrap();
    let result = store
        .redeem_pickup(
            &new_order(m, cards[1], goods[0], Channel::Web),
            &audit(m, "redeem_pickup"),
        )
        .await;
    assert!(
        matches!(result, Err(StoreError::Conflict(_))),
        "inactive: {result:?}"
    );
    let expire = CardEdit {
        valid_until: Some(Some(NOW - 1)),
        ..Default::default()
    };
    store
        .edit_cards(
            m,
            &CardFilter {
                serial_from: Some(3),
                serial_to: Some(3),
                ..Default::default()
            },
            &expire,
            &audit(m, "e"),
        )
        .await
        .unwrap();
    let result = store
        .redeem_pickup(
            &new_order(m, cards[2], goods[0], Channel::Web),
            &audit(m, "redeem_pickup"),
        )
        .await;
    assert!(
        matches!(result, Err(StoreError::Conflict(_))),
        "expired: {result:?}"
    );
    let not_yet = CardEdit {
        valid_from: Some(Some(NOW + 10)),
        ..Default::default()
    };
    store
        .edit_cards(
            m,
            &CardFilter {
                serial_from: Some(4),
                serial_to: Some(4),
                ..Default::default()
            },
            &not_yet,
            &audit(m, "e"),
        )
        .await
        .unwrap();
    let result = store
        .redeem_pickup(
            &new_order(m, cards[3], goods[0], Channel::Web),
            &audit(m, "redeem_pickup"),
        )
        .await;
    assert!(
        matches!(result, Err(StoreError::Conflict(_))),
        "not yet valid: {result:?}"
    );
    // In-store pickups are handed over at once; phone pickups join the queue.
    let in_store = store
        .redeem_pickup(
            &new_order(m, cards[4], goods[1], Channel::Store),
            &audit(m, "redeem_pickup"),
        )
        .await
        .unwrap();
    assert_eq!(in_store.status, OrderStatus::PickedUp);
    assert_eq!(in_store.consignee, Consignee::default());
    let by_phone = store
        .redeem_pickup(
            &new_order(m, cards[5], goods[1], Channel::Phone),
            &audit(m, "redeem_pickup"),
        )
        .await
        .unwrap();
    assert_eq!(by_phone.status, OrderStatus::Pending);
    assert_eq!(
        store.latest_order_of_card(m, cards[5]).await.unwrap(),
        Some(by_phone.clone())
    );
    assert_eq!(store.get_order(m, by_phone.id).await.unwrap(), by_phone);
    let count = |filter: OrderFilter| async move {
        store
            .list_orders(m, &filter, Page::default())
            .await
            .unwrap()
            .1
    };
    assert_eq!(count(OrderFilter::default()).await, 3);
    assert_eq!(
        count(OrderFilter {
            status: Some(OrderStatus::Pending),
            ..Default::default()
        })
        .await,
        2
    );
    assert_eq!(
        count(OrderFilter {
            channel: Some(Channel::Phone),
            ..Default::default()
        })
        .await,
        1
    );
    assert_eq!(
        count(OrderFilter {
            goods_id: Some(goods[1]),
            ..Default::default()
        })
        .await,
        2
    );
    assert_eq!(
        count(OrderFilter {
            card_number: Some(order.card_number.to_ascii_lowercase()),
            ..Default::default()
        })
        .await,
        1
    );
    assert_eq!(
        count(OrderFilter {
            phone: Some("13800001234".into()),
            ..Default::default()
        })
        .await,
        2
    );
    assert_eq!(
        count(OrderFilter {
            appointment_from: Some("2026-12-01".into()),
            appointment_until: Some("2026-12-01".into()),
            ..Default::default()
        })
        .await,
        3
    );
    assert_eq!(
        count(OrderFilter {
            appointment_from: Some("2026-12-02".into()),
            ..Default::default()
        })
        .await,
        0
    );
    let (log, _) = store.list_audit(m, Page::default()).await.unwrap();
    assert_eq!(log[0].entry.action, "redeem_pickup");
    assert!(log[0]
        .entry
        .target
        .contains(&format!("order={}", by_phone.id)));
    let other_merchant = merchant(store, "B").await;
    assert!(matches!(
        store.get_order(other_merchant.id, order.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(store.verify().await.unwrap().is_empty());
}

pub async fn cancelling_an_order_makes_the_card_usable_again(store: &dyn Store) {
    let (m, cards, goods) = pickup_fixture(store, 2).await;
    let order = store
        .redeem_pickup(
            &new_order(m, cards[0], goods[0], Channel::Web),
            &audit(m, "redeem_pickup"),
        )
        .await
        .unwrap();
    store
        .cancel_order(m, order.id, &audit(m, "cancel_order"))
        .await
        .unwrap();
    let cancelled = store.get_order(m, order.id).await.unwrap();
    assert_eq!(
        (cancelled.status, cancelled.cancelled_at),
        (OrderStatus::Cancelled, Some(NOW))
    );
    assert!(matches!(
        store
            .cancel_order(m, order.id, &audit(m, "cancel_order"))
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store
            .cancel_order(m, 999_999, &audit(m, "cancel_order"))
            .await,
        Err(StoreError::NotFound)
    ));
    let again = store
        .redeem_pickup(
            &new_order(m, cards[0], goods[1], Channel::Web),
            &audit(m, "redeem_pickup"),
        )
        .await
        .unwrap();
    assert_eq!(again.goods_name, "桃子", "the card was usable again");
    let in_store = store
        .redeem_pickup(
            &new_order(m, cards[1], goods[0], Channel::Store),
            &audit(m, "redeem_pickup"),
        )
        .await
        .unwrap();
    assert!(
        matches!(
            store
                .cancel_order(m, in_store.id, &audit(m, "cancel_order"))
                .await,
            Err(StoreError::Conflict(_))
        ),
        "handed over already"
    );
}

pub async fn shipping_is_all_or_nothing(store: &dyn Store) {
    let (m, cards, goods) = pickup_fixture(store, 3).await;
    let o1 = store
        .redeem_pickup(
            &new_order(m, cards[0], goods[0], Channel::Web),
            &audit(m, "redeem_pickup"),
        )
        .await
        .unwrap();
    let o2 = store
        .redeem_pickup(
            &new_order(m, cards[1], goods[0], Channel::Phone),
            &audit(m, "redeem_pickup"),
        )
        .await
        .unwrap();
    let ship = |id: i64| Shipment {
        order_id: id,
        carrier: "顺丰速运".into(),
        tracking_number: format!("SF{id:010}"),
    };
    let result = store
        .ship_orders(
            m,
            &[ship(o1.id), ship(999_999)],
            NOW + 5,
            &audit(m, "ship_orders"),
        )
        .await;
    assert!(
        matches!(&result, Err(StoreError::Conflict(id)) if id == "999999"),
        "{result:?}"
    );
    assert_eq!(
        store.get_order(m, o1.id).await.unwrap().status,
        OrderStatus::Pending,
        "nothing shipped"
    );
    assert_eq!(
        store
            .ship_orders(
                m,
                &[ship(o1.id), ship(o2.id)],
                NOW + 5,
                &audit(m, "ship_orders")
            )
            .await
            .unwrap(),
        2
    );
    let shipped = store.get_order(m, o1.id).await.unwrap();
    assert_eq!(shipped.status, OrderStatus::Shipped);
    assert_eq!(
        (shipped.carrier.as_deref(), shipped.shipped_at),
        (Some("顺丰速运"), Some(NOW + 5))
    );
    assert!(matches!(
        store
            .ship_orders(m, &[ship(o1.id)], NOW, &audit(m, "ship_orders"))
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert!(
        matches!(
            store
                .cancel_order(m, o1.id, &audit(m, "cancel_order"))
                .await,
            Err(StoreError::Conflict(_))
        ),
        "shipped orders stay"
    );
    let shipped_today = OrderFilter {
        shipped_from: Some(NOW),
        shipped_until: Some(NOW + 10),
        ..Default::default()
    };
    assert_eq!(
        store
            .list_orders(m, &shipped_today, Page::default())
            .await
            .unwrap()
            .1,
        2
    );
    let after = store
        .orders_after(m, &OrderFilter::default(), 0, 1)
        .await
        .unwrap();
    assert_eq!(after[0].id, o1.id);
    assert_eq!(
        store
            .orders_after(m, &OrderFilter::default(), o1.id, 10)
            .await
            .unwrap()[0]
            .id,
        o2.id
    );
}

pub async fn failed_attempts_are_counted_in_a_window(store: &dyn Store) {
    let m = merchant(store, "A").await;
    for offset in [0, 10, 20] {
        store
            .record_failure(m.id, "card:A0001", NOW + offset)
            .await
            .unwrap();
    }
    store
        .record_failure(m.id, "client:127.0.0.1", NOW)
        .await
        .unwrap();
    assert_eq!(
        store.count_failures(m.id, "card:A0001", NOW).await.unwrap(),
        3
    );
    assert_eq!(
        store
            .count_failures(m.id, "card:A0001", NOW + 15)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .count_failures(m.id, "client:127.0.0.1", NOW)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .oldest_failure(m.id, "card:A0001", NOW + 5)
            .await
            .unwrap(),
        Some(NOW + 10)
    );
    assert_eq!(
        store.oldest_failure(m.id, "card:NONE", NOW).await.unwrap(),
        None
    );
    let other = merchant(store, "B").await;
    assert_eq!(
        store
            .count_failures(other.id, "card:A0001", 0)
            .await
            .unwrap(),
        0
    );
    store.clear_failures(m.id, "card:A0001").await.unwrap();
    assert_eq!(
        store.count_failures(m.id, "card:A0001", 0).await.unwrap(),
        0
    );
    assert_eq!(
        store
            .count_failures(m.id, "client:127.0.0.1", 0)
            .await
            .unwrap(),
        1,
        "other keys stay"
    );
}

/// The median of `times`.
fn median(times: &mut [std::time::Duration]) -> std::time::Duration {
    times.sort();
    times[times.len() / 2]
}

/// Runs each class of `attempt` `n` times, the classes taking turns so that
/// whatever else the machine does falls on all of them alike, and checks
/// that no class's median time is more than 20% above another's.
pub(crate) async fn assert_same_time<F, Fut>(classes: &[&str], n: usize, mut attempt: F)
where
    F: FnMut(usize, usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut times = vec![Vec::with_capacity(n); classes.len()];
    for round in 0..n {
        for (class, times) in times.iter_mut().enumerate() {
            let started = std::time::Instant::now();
            attempt(class, round).await;
            times.push(started.elapsed());
        }
    }
    let medians: Vec<_> = times.iter_mut().map(|t| median(t)).collect();
    let (fastest, slowest) = (
        *medians.iter().min().unwrap(),
        *medians.iter().max().unwrap(),
    );
    let report: Vec<_> = classes.iter().zip(&medians).collect();
    assert!(
        slowest.as_secs_f64() <= fastest.as_secs_f64() * 1.2,
        "refusals differ in time: {report:?}"
    );
}

/// Changes the chosen fields of the cards with serials `from..=to`.
async fn edit_serials(store: &dyn Store, merchant_id: i64, from: i64, to: i64, edit: CardEdit) {
    store
        .edit_cards(
            merchant_id,
            &CardFilter {
                serial_from: Some(from),
                serial_to: Some(to),
                ..Default::default()
            },
            &edit,
            &audit(merchant_id, "edit_cards"),
        )
        .await
        .unwrap();
}

/// Numbers and passwords of the merchant's cards, by serial.
async fn card_secrets(store: &dyn Store, merchant_id: i64) -> Vec<(String, String)> {
    let keys = master().merchant_keys(merchant_id, 1);
    store
        .cards_after(merchant_id, &CardFilter::default(), 0, 100)
        .await
        .unwrap()
        .iter()
        .map(|row| {
            let sealed = row.secret_sealed.as_deref().unwrap();
            (
                row.card.number.clone(),
                keys.open(&row.card.number, sealed).unwrap(),
            )
        })
        .collect()
}

/// A pickup check passes a right card and password with the card's goods,
/// refuses everything else with one answer and the precise reason in the
/// audit log, and locks a card or a client after the merchant's limit of
/// refusals in the window, until the oldest leaves it.
pub async fn pickup_checks_follow_the_card_and_the_attempt_limits(store: &dyn Store) {
    use kaquan_core::pickup::ATTEMPT_WINDOW_SECONDS;
    use kaquan_core::redeem::{check_card, RedeemError, Redeemer, Requester};
    let (m, _, goods) = pickup_fixture(store, 3).await;
    let cards = card_secrets(store, m).await;
    let master = master();
    let settings = PickupSettings {
        attempts_per_card: 3,
        attempts_per_client: 5,
        ..Default::default()
    };
    let requester = |client: &str| Requester {
        channel: Channel::Web,
        client_key: client.into(),
        actor: Actor::cli(),
    };
    let check = |number: String, password: String, client: &'static str, now: i64| {
        let (master, settings) = (&master, &settings);
        async move {
            let redeemer = Redeemer {
                store,
                master,
                merchant_id: m,
                now,
            };
            check_card(
                &redeemer,
                settings,
                &number,
                &password,
                &requester(client),
                false,
            )
            .await
        }
    };
    let (number, password) = cards[0].clone();
    let checked = check(number.clone(), password.clone(), "c1", NOW)
        .await
        .expect("the right card and password pass");
    assert_eq!(checked.card.number, number);
    assert_eq!(
        checked.goods.iter().map(|g| g.id).collect::<Vec<_>>(),
        goods,
        "with the card's goods"
    );
    // Typed in lower case, the number is the same card.
    assert!(check(number.to_lowercase(), password.clone(), "c1", NOW)
        .await
        .is_ok());
    // Wrong passwords: refused, counted per card whatever the case typed.
    for typed in [number.clone(), number.to_lowercase(), number.clone()] {
        assert_eq!(
            check(typed, "wrong9999".into(), "c1", NOW).await.err(),
            Some(RedeemError::Refused)
        );
    }
    let locked = check(number.clone(), password.clone(), "c2", NOW + 10).await;
    assert_eq!(
        locked.err(),
        Some(RedeemError::Locked {
            retry_after_seconds: ATTEMPT_WINDOW_SECONDS - 9
        }),
        "the card waits until its oldest failure leaves the window, whoever asks"
    );
    let at = |now: i64| check(number.clone(), password.clone(), "c2", now);
    assert!(
        matches!(
            at(NOW + ATTEMPT_WINDOW_SECONDS).await,
            Err(RedeemError::Locked {
                retry_after_seconds: 1
            })
        ),
        "a failure counts for the whole window"
    );
    assert!(
        at(NOW + ATTEMPT_WINDOW_SECONDS + 1).await.is_ok(),
        "and then the card passes again, when Retry-After said"
    );
    // Per client: two more refusals on other cards reach c1's limit of five.
    let (other, other_password) = cards[1].clone();
    for _ in 0..2 {
        assert_eq!(
            check(other.clone(), "wrong9999".into(), "c1", NOW + 20)
                .await
                .err(),
            Some(RedeemError::Refused)
        );
    }
    assert_eq!(
        check(other.clone(), other_password.clone(), "c1", NOW + 30)
            .await
            .err(),
        Some(RedeemError::Locked {
            retry_after_seconds: ATTEMPT_WINDOW_SECONDS - 29
        })
    );
    assert!(check(other, other_password, "c3", NOW + 30).await.is_ok());
    // The audit log has the precise reasons; the caller never does.
    let (log, _) = store.list_audit(m, Page::default()).await.unwrap();
    let reasons: Vec<_> = log
        .iter()
        .filter(|a| a.entry.action == "pickup_refused")
        .map(|a| a.entry.detail.clone())
        .collect();
    assert_eq!(reasons.len(), 5, "{reasons:?}");
    assert!(
        reasons
            .iter()
            .all(|r| r == "channel=web reason=wrong_password"),
        "{reasons:?}"
    );
    let unknown = check("ZZ0000".into(), "abcd1234".into(), "c4", NOW).await;
    assert_eq!(unknown.err(), Some(RedeemError::Refused));
    let (log, _) = store.list_audit(m, Page::default()).await.unwrap();
    assert!(log
        .iter()
        .any(|a| a.entry.detail == "channel=web reason=unknown_number"
            && a.entry.target == "card=ZZ0000"));
}

/// Redeeming a pickup card: the page may be closed to customers, the goods
/// must be one of the card's, customers and phone orders need a consignee
/// and a date the merchant's mode allows, a counter handover needs neither;
/// the order lookup finds the order of a used card.
pub async fn a_pickup_follows_the_channel_goods_consignee_and_date_rules(store: &dyn Store) {
    use kaquan_core::redeem::{
        check_card, find_order, redeem_pickup, PickupRequest, RedeemError, Redeemer, Requester,
    };
    let (m, _, goods) = pickup_fixture(store, 4).await;
    let cards = card_secrets(store, m).await;
    let master = master();
    let redeemer = Redeemer {
        store,
        master: &master,
        merchant_id: m,
        now: NOW,
    };
    let requester = |channel| Requester {
        channel,
        client_key: "c".into(),
        actor: Actor::cli(),
    };
    let request =
        |card: usize, goods_id: i64, with_consignee: bool, date: Option<&str>| PickupRequest {
            number: cards[card].0.clone(),
            password: cards[card].1.clone(),
            goods_id,
            consignee: with_consignee.then(consignee),
            appointment_date: date.map(str::to_owned),
        };
    let mut settings = PickupSettings {
        appointment: AppointmentMode::MinDaysAhead(2),
        ..Default::default()
    };
    let today = kaquan_core::clock::format_date(NOW);
    let date = |days: i64| {
        (kaquan_core::clock::parse_date(&today).unwrap() + time::Duration::days(days)).to_string()
    };
    let in_three_days = date(3);
    // Closed to customers: the page takes nothing, staff still can.
    settings.enabled = false;
    let web = requester(Channel::Web);
    assert_eq!(
        redeem_pickup(
            &redeemer,
            &settings,
            &request(0, goods[0], true, Some(&in_three_days)),
            &web
        )
        .await
        .err(),
        Some(RedeemError::Closed)
    );
    settings.enabled = true;
    // Goods that are not the card's.
    assert_eq!(
        redeem_pickup(
            &redeemer,
            &settings,
            &request(0, -1, true, Some(&in_three_days)),
            &web
        )
        .await
        .err(),
        Some(RedeemError::GoodsUnavailable)
    );
    // Goods of the card's that went off the shelf.
    let off_shelf = GoodsFields {
        on_shelf: false,
        ..goods_fields("苹果")
    };
    store
        .update_goods(m, goods[0], &off_shelf, NOW)
        .await
        .unwrap();
    assert_eq!(
        redeem_pickup(
            &redeemer,
            &settings,
            &request(0, goods[0], true, Some(&in_three_days)),
            &web
        )
        .await
        .err(),
        Some(RedeemError::GoodsUnavailable)
    );
    store
        .update_goods(m, goods[0], &goods_fields("苹果"), NOW)
        .await
        .unwrap();
    // No consignee, a date too soon, a malformed date: every problem at once.
    match redeem_pickup(
        &redeemer,
        &settings,
        &request(0, goods[0], false, Some(&date(1))),
        &web,
    )
    .await
    {
        Err(RedeemError::Invalid(errors)) => assert_eq!(errors.len(), 2, "{errors:?}"),
        other => panic!("{other:?}"),
    }
    match redeem_pickup(
        &redeemer,
        &settings,
        &request(0, goods[0], true, Some("2026/13/01")),
        &web,
    )
    .await
    {
        Err(RedeemError::Invalid(errors)) => {
            assert!(
                errors.iter().any(|e| e.contains("YYYY-MM-DD")),
                "{errors:?}"
            )
        }
        other => panic!("{other:?}"),
    }
    // A customer's order: consignee and the allowed date kept.
    let order = redeem_pickup(
        &redeemer,
        &settings,
        &request(0, goods[1], true, Some(&in_three_days)),
        &web,
    )
    .await
    .unwrap();
    assert_eq!(
        (
            order.channel,
            order.goods_id,
            order.appointment_date.as_deref()
        ),
        (Channel::Web, goods[1], Some(in_three_days.as_str()))
    );
    assert!(order.consignee == consignee());
    // The same card again: refused like any used card.
    assert_eq!(
        redeem_pickup(
            &redeemer,
            &settings,
            &request(0, goods[0], true, Some(&in_three_days)),
            &web
        )
        .await
        .err(),
        Some(RedeemError::Refused)
    );
    // A counter handover: no consignee, no date, even with the page closed.
    settings.enabled = false;
    let handed = redeem_pickup(
        &redeemer,
        &settings,
        &request(1, goods[0], false, None),
        &requester(Channel::Store),
    )
    .await
    .unwrap();
    assert!(handed.consignee == Consignee::default());
    assert_eq!(handed.appointment_date, None);
    // A phone order needs the consignee even with the page closed.
    assert!(matches!(
        redeem_pickup(
            &redeemer,
            &settings,
            &request(2, goods[0], false, Some(&in_three_days)),
            &requester(Channel::Phone)
        )
        .await,
        Err(RedeemError::Invalid(_))
    ));
    // The lookup finds a used card's order; the check for a pickup refuses it.
    let found = find_order(&redeemer, &cards[0].0, &cards[0].1, &web)
        .await
        .unwrap()
        .expect("the order of the used card");
    assert_eq!(found.id, order.id);
    assert_eq!(
        find_order(&redeemer, &cards[3].0, &cards[3].1, &web)
            .await
            .unwrap(),
        None,
        "an unused card has no order"
    );
    assert_eq!(
        check_card(&redeemer, &settings, &cards[0].0, &cards[0].1, &web, false)
            .await
            .err(),
        Some(RedeemError::Refused)
    );
    // A card valid only from tomorrow is refused until then.
    let tomorrow = NOW + 86_400;
    edit_serials(
        store,
        m,
        4,
        4,
        CardEdit {
            valid_from: Some(Some(tomorrow)),
            ..Default::default()
        },
    )
    .await;
    let at = |now| Redeemer {
        store,
        master: &master,
        merchant_id: m,
        now,
    };
    assert_eq!(
        check_card(
            &at(tomorrow - 1),
            &settings,
            &cards[3].0,
            &cards[3].1,
            &web,
            false
        )
        .await
        .err(),
        Some(RedeemError::Refused)
    );
    assert!(check_card(
        &at(tomorrow),
        &settings,
        &cards[3].0,
        &cards[3].1,
        &web,
        false
    )
    .await
    .is_ok());
    // A card valid until now passes now and is refused a second later; the
    // lookup still finds an expired card's order.
    edit_serials(
        store,
        m,
        1,
        3,
        CardEdit {
            valid_until: Some(Some(NOW)),
            ..Default::default()
        },
    )
    .await;
    let (number, password) = (&cards[2].0, &cards[2].1);
    assert!(
        check_card(&at(NOW), &settings, number, password, &web, false)
            .await
            .is_ok()
    );
    assert_eq!(
        check_card(&at(NOW + 1), &settings, number, password, &web, false)
            .await
            .err(),
        Some(RedeemError::Refused)
    );
    assert!(find_order(&at(NOW + 1), &cards[0].0, &cards[0].1, &web)
        .await
        .unwrap()
        .is_some());
}

/// A wrong guess and a right password on a card that cannot be picked up
/// (unsold, voided, used, expired) are refused alike, and take the same
/// time: otherwise a guesser could confirm the passwords of unsold cards.
pub async fn pickup_refusals_take_the_same_time_whatever_the_reason(store: &dyn Store) {
    use kaquan_core::redeem::{check_card, RedeemError, Redeemer, Requester};
    let (m, _, goods) = pickup_fixture(store, 5).await;
    let cards = card_secrets(store, m).await;
    let serial = |serial| CardFilter {
        serial_from: Some(serial),
        serial_to: Some(serial),
        ..Default::default()
    };
    for (card_serial, op) in [(1, CardOp::Deactivate), (2, CardOp::Void)] {
        store
            .apply_card_op(m, &serial(card_serial), op, &audit(m, "op"))
            .await
            .unwrap();
    }
    let cards_ids = store
        .list_cards(m, &serial(3), Page::default())
        .await
        .unwrap();
    store
        .redeem_pickup(
            &new_order(m, cards_ids[0].id, goods[0], Channel::Web),
            &audit(m, "redeem_pickup"),
        )
        .await
        .unwrap();
    edit_serials(
        store,
        m,
        4,
        4,
        CardEdit {
            valid_until: Some(Some(NOW - 86_400)),
            ..Default::default()
        },
    )
    .await;
    let settings = PickupSettings {
        attempts_per_card: i64::MAX,
        attempts_per_client: i64::MAX,
        ..Default::default()
    };
    let master = master();
    let redeemer = Redeemer {
        store,
        master: &master,
        merchant_id: m,
        now: NOW,
    };
    let attempts: [(&str, &str, &str); 6] = [
        ("unknown number", "ZZ99999999", "abcd1234"),
        ("wrong password", &cards[4].0, "wrong9999"),
        ("right password, inactive", &cards[0].0, &cards[0].1),
        ("right password, voided", &cards[1].0, &cards[1].1),
        ("right password, used", &cards[2].0, &cards[2].1),
        ("right password, expired", &cards[3].0, &cards[3].1),
    ];
    let classes: Vec<&str> = attempts.iter().map(|a| a.0).collect();
    assert_same_time(&classes, 200, |class, round| {
        let (_, number, password) = attempts[class];
        let requester = Requester {
            channel: Channel::Web,
            client_key: format!("client-{round}"),
            actor: Actor::cli(),
        };
        let redeemer = &redeemer;
        let settings = &settings;
        async move {
            let result = check_card(redeemer, settings, number, password, &requester, false).await;
            assert!(matches!(result, Err(RedeemError::Refused)), "{result:?}");
        }
    })
    .await;
    // The last round's refusals, newest first, with their precise reasons.
    let (log, _) = store.list_audit(m, Page::default()).await.unwrap();
    let mut reasons: Vec<_> = log[..6]
        .iter()
        .map(|a| a.entry.detail.trim_start_matches("channel=web reason="))
        .collect();
    reasons.sort();
    assert_eq!(
        reasons,
        [
            "expired",
            "inactive",
            "unknown_number",
            "used",
            "voided",
            "wrong_password"
        ]
    );
}

pub async fn fifty_simultaneous_pickups_of_one_card_create_one_order(store: &dyn Store) {
    let (m, cards, goods) = pickup_fixture(store, 1).await;
    let attempts = (0..50).map(|i| {
        let order = new_order(m, cards[0], goods[i % 2], Channel::Web);
        async move {
            store
                .redeem_pickup(&order, &audit(m, "redeem_pickup"))
                .await
        }
    });
    let results = futures_util::future::join_all(attempts).await;
    let won = results.iter().filter(|r| r.is_ok()).count();
    let lost = results
        .iter()
        .filter(|r| matches!(r, Err(StoreError::Conflict(_))))
        .count();
    assert_eq!((won, lost), (1, 49), "{results:?}");
    assert_eq!(
        store
            .list_orders(m, &OrderFilter::default(), Page::default())
            .await
            .unwrap()
            .1,
        1
    );
}

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
    };
    store
        .put_pickup_settings(m.id, &settings, &audit(m.id, "update_pickup_settings"))
        .await
        .unwrap();
    assert_eq!(store.get_pickup_settings(m.id).await.unwrap(), settings);
    let changed = PickupSettings {
        appointment: AppointmentMode::MinDaysAhead(2),
        enabled: true,
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
