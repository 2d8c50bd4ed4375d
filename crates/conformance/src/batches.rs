//! Batches: generation, failure, interruption, numbering, imports.

#[allow(unused_imports)]
use crate::fixtures::*;
use crate::NOW;
use kaquan_core::batch::usecases::{self as usecases, ImportError, ImportRow};
use kaquan_core::StoreError;
use kaquan_core::{batch::*, card::*, store::*};

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
    store.fail_batch(batch.id, "卡号冲突", NOW).await.unwrap();
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
    assert!(store.check_invariants().await.unwrap().is_empty());
}

pub async fn interrupted_batches_become_failed(store: &dyn Store) {
    let m = merchant(store, "A").await;
    let spec = BatchSpec::new(quantity(10)).unwrap();
    let batch = usecases::start_generated_batch(store, m.id, &spec, "test", NOW)
        .await
        .unwrap();
    assert_eq!(store.fail_interrupted_batches(NOW + 5).await.unwrap(), 1);
    assert_eq!(
        store.get_batch(m.id, batch.id).await.unwrap().state,
        BatchState::Failed
    );
    let events = store.list_events(m.id, Page::default()).await.unwrap().0;
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0].event_type,
        kaquan_core::event::EventType::BatchFailed
    );
    assert!(events[0].data.contains("生成被中断"), "{}", events[0].data);
    assert_eq!(events[0].created_at, NOW + 5);
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
    assert!(store.check_invariants().await.unwrap().is_empty());
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

/// A batch's cards are counted by state, every batch asked in one call.
pub async fn batch_cards_are_counted_by_state(store: &dyn Store) {
    let m = merchant(store, "计数店").await;
    let first = generate(store, m.id, quantity(5)).await;
    let second = generate(store, m.id, quantity(2)).await;
    let serials = |from, to| CardFilter {
        batch_id: Some(first.id),
        serial_from: Some(from),
        serial_to: Some(to),
        ..Default::default()
    };
    store
        .apply_card_op(m.id, &serials(1, 3), CardOp::Activate, &audit(m.id, "a"))
        .await
        .unwrap();
    store
        .apply_card_op(m.id, &serials(1, 1), CardOp::Deactivate, &audit(m.id, "d"))
        .await
        .unwrap();
    store
        .apply_card_op(m.id, &serials(1, 1), CardOp::Void, &audit(m.id, "v"))
        .await
        .unwrap();
    let counts = store
        .batch_card_counts(m.id, &[second.id, first.id, 999_999])
        .await
        .unwrap();
    let plain = |c: &BatchCardCounts| (c.batch_id, c.inactive, c.active, c.used, c.voided);
    assert_eq!(
        counts.iter().map(plain).collect::<Vec<_>>(),
        [
            (second.id, 2, 0, 0, 0),
            (first.id, 2, 2, 0, 1),
            (999_999, 0, 0, 0, 0)
        ]
    );
    let other = merchant(store, "别家").await;
    let theirs = store
        .batch_card_counts(other.id, &[first.id])
        .await
        .unwrap();
    assert_eq!(
        plain(&theirs[0]),
        (first.id, 0, 0, 0, 0),
        "only the merchant's own"
    );
}
