//! Cards: the state machine, deletion, edits, filters, merchant scoping, exports.

#[allow(unused_imports)]
use crate::fixtures::*;
use crate::NOW;
use kaquan_core::StoreError;
use kaquan_core::{batch::*, card::*, distributor::*, store::*};

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
    assert!(store.check_invariants().await.unwrap().is_empty());
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
        store.check_invariants().await.unwrap().is_empty(),
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
