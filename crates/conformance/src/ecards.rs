//! 电子卡密: stock imported once, paid events delivered exactly once (also
//! when they race), 缺货 delivered by one action, refunds with and without
//! a reveal, the three ways of 核销, statuses derived from facts, and the
//! evidence of an order.

use crate::fixtures::*;
use crate::NOW;
use kaquan_core::audit::Actor;
use kaquan_core::ecard::usecases::{self, ImportOutcome, ImportRequest, PaidEvent};
use kaquan_core::ecard::*;
use kaquan_core::event::EventType;
use kaquan_core::store::*;

pub(crate) fn product_fields(own_code: bool) -> EcardProductFields {
    EcardProductFields {
        name: "视频会员月卡".into(),
        face_value_fen: 1_990,
        delivery_form: DeliveryForm::NumberAndPassword,
        instructions: "打开视频 App → 我的 → 兑换会员，输入卡号和密码".into(),
        validity: EcardValidity::DaysAfterDelivery(30),
        own_verification_code: own_code,
        listings: vec![Listing {
            marketplace: Marketplace::Pinduoduo,
            product_id: "pdd-100".into(),
            sku_id: String::new(),
        }],
        remind_days: 3,
        refund_expired: false,
    }
}

pub(crate) async fn product(store: &dyn Store, m: i64, own_code: bool) -> EcardProduct {
    store
        .create_ecard_product(m, &product_fields(own_code), 0, &Actor::cli(), NOW)
        .await
        .expect("create e-card product")
}

/// Imports `rows` as (number, secret); answers the outcome.
pub(crate) async fn import(
    store: &dyn Store,
    m: i64,
    product_id: i64,
    rows: &[(&str, &str)],
) -> ImportOutcome {
    let cli = Actor::cli();
    let request = ImportRequest {
        merchant_id: m,
        key_version: 1,
        product_id,
        file_name: "卡密.xlsx".into(),
        file_digest: "ab".repeat(32),
        rows: rows
            .iter()
            .map(|(n, s)| (n.to_string(), s.to_string()))
            .collect(),
        actor: &cli,
        now: NOW,
        progress: None,
    };
    usecases::import_stock(store, &master(), request)
        .await
        .expect("import")
}

pub(crate) async fn stock(store: &dyn Store, m: i64, product_id: i64, n: usize) {
    let rows: Vec<(String, String)> = (0..n)
        .map(|i| (format!("8800{product_id:03}{i:06}"), format!("pw{i:08}")))
        .collect();
    let rows: Vec<(&str, &str)> = rows.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    assert!(matches!(
        import(store, m, product_id, &rows).await,
        ImportOutcome::Stored { .. }
    ));
}

pub(crate) fn line(line_id: &str, quantity: i64) -> PaidLine {
    PaidLine {
        line_id: line_id.into(),
        product_id: "pdd-100".into(),
        sku_id: "red".into(),
        quantity,
    }
}

pub(crate) async fn pay(
    store: &dyn Store,
    m: i64,
    order_id: &str,
    lines: Vec<PaidLine>,
    now: i64,
) -> Result<(EcardOrder, String), OrderRefusal> {
    let cli = Actor::cli();
    let event = PaidEvent {
        merchant_id: m,
        key_version: 1,
        marketplace: Marketplace::Pinduoduo,
        order_id: order_id.into(),
        buyer_phone: "13800138000".into(),
        lines,
        actor: &cli,
        now,
    };
    usecases::record_paid_order(store, &master(), event)
        .await
        .expect("paid event")
        .map(|(outcome, token)| (outcome.order, token))
}

pub(crate) async fn refund(
    store: &dyn Store,
    m: i64,
    order_id: &str,
    line_id: Option<&str>,
    now: i64,
) -> EcardOrder {
    let token = usecases::delivery_token(&master(), m, Marketplace::Pinduoduo, order_id);
    let refund = OrderRefund {
        merchant_id: m,
        marketplace: Marketplace::Pinduoduo,
        order_id: order_id.into(),
        line_id: line_id.map(str::to_owned),
        token_hash: kaquan_core::secrets::token_hash_hex(&token),
        actor: Actor::cli(),
        now,
    };
    store.record_refund(&refund).await.expect("refund")
}

async fn counts(store: &dyn Store, m: i64, product_id: i64, now: i64) -> StockCounts {
    store.ecard_stock_counts(m, product_id, now).await.unwrap()
}

async fn events_of(store: &dyn Store, m: i64, event_type: EventType) -> usize {
    let page = Page::new(Some(1), Some(PAGE_SIZE_MAX));
    let (events, _) = store.list_events(m, page).await.unwrap();
    events.iter().filter(|e| e.event_type == event_type).count()
}

pub async fn stock_is_imported_once_and_kept_sealed(store: &dyn Store) {
    let m = merchant(store, "A").await.id;
    let p = product(store, m, false).await;
    let rows = [("N1", "p1"), ("N2", "p2"), ("N1", "p3"), ("N3", "p3")];
    let ImportOutcome::Stored {
        import: first,
        skipped,
    } = import(store, m, p.id, &rows).await
    else {
        panic!("stored");
    };
    assert_eq!((first.n_rows, first.n_imported), (4, 3));
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0].row, 3);
    // Against all stock: N2 is known, N4 is new.
    let ImportOutcome::Stored {
        import: second,
        skipped,
    } = import(store, m, p.id, &[("N2", "x"), ("N4", "p4")]).await
    else {
        panic!("stored");
    };
    assert_eq!(second.n_imported, 1);
    assert_eq!(
        (skipped[0].row, skipped[0].message.as_str()),
        (1, "已在库存中")
    );
    // One wrong row refuses the file, naming each wrong row.
    let ImportOutcome::Refused(wrong) =
        import(store, m, p.id, &[("N5", "p5"), ("", "p6"), ("N7", "")]).await
    else {
        panic!("refused");
    };
    assert_eq!(wrong.iter().map(|w| w.row).collect::<Vec<_>>(), vec![2, 3]);
    assert_eq!(counts(store, m, p.id, NOW).await.available, 4);
    let filter = StockFilter {
        merchant_id: m,
        product_id: Some(p.id),
        state: None,
    };
    let (items, total) = store
        .list_ecard_stock(&filter, Page::default())
        .await
        .unwrap();
    assert_eq!(total, 4);
    assert!(items
        .iter()
        .all(|i| i.state == StockState::Available && i.tail.starts_with('N')));
    // A permitted reveal opens the sealed copy and is audited.
    let (version, sealed) = store
        .reveal_stock(m, items[0].id, &Actor::cli(), NOW)
        .await
        .unwrap();
    let keys = master().merchant_keys(m, version);
    let (number, secret) = usecases::open_stock(&keys, &sealed).unwrap();
    assert_eq!((number.as_str(), secret.as_str()), ("N4", "p4"));
    let imports = store.list_stock_imports(m, p.id).await.unwrap();
    assert_eq!(imports.len(), 2);
    let other = merchant(store, "B").await.id;
    assert!(store
        .reveal_stock(other, items[0].id, &Actor::cli(), NOW)
        .await
        .is_err());
}

pub async fn a_paid_order_is_delivered_once_from_stock(store: &dyn Store) {
    let m = merchant(store, "A").await.id;
    let p = product(store, m, true).await;
    stock(store, m, p.id, 5).await;
    let (order, token) = pay(store, m, "PDD-1", vec![line("L1", 2), line("L2", 1)], NOW)
        .await
        .unwrap();
    assert_eq!(token.len(), 48);
    assert_eq!(order.cards().count(), 3);
    assert!(order
        .lines
        .iter()
        .all(|l| l.state() == Some(LineState::Delivered)));
    let card = &order.lines[0].cards[0];
    assert_eq!(card.status(NOW), DeliveredStatus::Unverified);
    assert_eq!(card.facts.valid_until, NOW + 30 * 86_400 - 1);
    assert!(card.code_sealed.is_some(), "an own code per card");
    // The same event ten times later: the same cards, nothing taken.
    for _ in 0..10 {
        let (again, again_token) = pay(
            store,
            m,
            "PDD-1",
            vec![line("L1", 2), line("L2", 1)],
            NOW + 5,
        )
        .await
        .unwrap();
        assert_eq!(again_token, token);
        assert_eq!(again, order);
    }
    assert_eq!(counts(store, m, p.id, NOW).await.available, 2);
    assert_eq!(counts(store, m, p.id, NOW).await.delivered, 3);
    assert_eq!(events_of(store, m, EventType::EcardDelivered).await, 2);
    // The link finds the order; a changed line is refused.
    let hash = kaquan_core::secrets::token_hash_hex(&token);
    let found = store
        .find_ecard_order_by_token(m, &hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, order.id);
    assert_eq!(
        pay(store, m, "PDD-1", vec![line("L1", 3)], NOW)
            .await
            .unwrap_err(),
        OrderRefusal::LineChanged {
            line_id: "L1".into()
        }
    );
    let mut unknown = line("L9", 1);
    unknown.product_id = "nope".into();
    assert_eq!(
        pay(store, m, "PDD-2", vec![line("L1", 1), unknown], NOW)
            .await
            .unwrap_err(),
        OrderRefusal::UnknownListing {
            line_id: "L9".into()
        }
    );
    let filter = OrderFilter {
        merchant_id: m,
        order_id: Some("PDD-2".into()),
        now: NOW,
        ..Default::default()
    };
    let (_, none) = store
        .list_ecard_orders(&filter, Page::default())
        .await
        .unwrap();
    assert_eq!(none, 0, "a refused event records nothing");
    // The delivered secrets are the imported ones, each once.
    let keys = master().merchant_keys(m, 1);
    let numbers: std::collections::BTreeSet<String> = order
        .cards()
        .map(|c| usecases::open_stock(&keys, &c.sealed).unwrap().0)
        .collect();
    assert_eq!(numbers.len(), 3);
}

pub async fn out_of_stock_delivers_nothing_until_stock_arrives(store: &dyn Store) {
    let m = merchant(store, "A").await.id;
    let mut fields = product_fields(false);
    fields.listings[0].sku_id = "red".into();
    let p = store
        .create_ecard_product(m, &fields, 2, &Actor::cli(), NOW)
        .await
        .unwrap();
    stock(store, m, p.id, 4).await;
    let (first, _) = pay(store, m, "O-1", vec![line("L1", 2)], NOW)
        .await
        .unwrap();
    assert_eq!(first.cards().count(), 2);
    assert_eq!(events_of(store, m, EventType::EcardLowStock).await, 1);
    let (order, _) = pay(store, m, "O-2", vec![line("L1", 3)], NOW)
        .await
        .unwrap();
    assert_eq!(order.cards().count(), 0);
    assert_eq!(order.lines[0].state(), Some(LineState::OutOfStock));
    pay(store, m, "O-2", vec![line("L1", 3)], NOW)
        .await
        .unwrap();
    assert_eq!(events_of(store, m, EventType::EcardOutOfStock).await, 1);
    assert_eq!(counts(store, m, p.id, NOW).await.available, 2, "none taken");
    let waiting = OrderFilter {
        merchant_id: m,
        out_of_stock: true,
        now: NOW,
        ..Default::default()
    };
    let (listed, total) = store
        .list_ecard_orders(&waiting, Page::default())
        .await
        .unwrap();
    assert_eq!((total, listed[0].id), (1, order.id));
    assert_eq!(
        store
            .deliver_waiting(m, &Actor::cli(), NOW + 60)
            .await
            .unwrap(),
        0
    );
    let rows = [("X1", "a"), ("X2", "b")];
    assert!(matches!(
        import(store, m, p.id, &rows).await,
        ImportOutcome::Stored { .. }
    ));
    assert_eq!(
        store
            .deliver_waiting(m, &Actor::cli(), NOW + 60)
            .await
            .unwrap(),
        1
    );
    let order = store.get_ecard_order(m, order.id).await.unwrap();
    assert_eq!(order.cards().count(), 3);
    assert_eq!(order.lines[0].state(), Some(LineState::Delivered));
    assert_eq!(counts(store, m, p.id, NOW).await.available, 1);
}

pub async fn a_refund_returns_unseen_cards_and_voids_revealed_ones(store: &dyn Store) {
    let m = merchant(store, "A").await.id;
    let p = product(store, m, false).await;
    stock(store, m, p.id, 3).await;
    let (order, _) = pay(store, m, "O-1", vec![line("L1", 2)], NOW)
        .await
        .unwrap();
    let seen = &order.lines[0].cards[0];
    let reveal = Reveal {
        merchant_id: m,
        delivery_id: seen.id,
        order_ref: Some(order.id),
        ip: "203.0.113.9".into(),
        user_agent: "Mozilla/5.0 (iPhone)".into(),
        actor: Actor::cli(),
        now: NOW + 10,
    };
    let opened = store.reveal_ecard(&reveal).await.unwrap();
    assert_eq!(opened.revealed_at, Some(NOW + 10));
    let mut elsewhere = reveal.clone();
    elsewhere.order_ref = Some(order.id + 1000);
    assert!(
        store.reveal_ecard(&elsewhere).await.is_err(),
        "another order's link opens nothing"
    );
    let refunded = refund(store, m, "O-1", None, NOW + 20).await;
    assert!(refunded
        .cards()
        .all(|c| c.status(NOW + 20) == DeliveredStatus::Refunded));
    let c = counts(store, m, p.id, NOW + 20).await;
    assert_eq!((c.available, c.voided, c.delivered), (2, 1, 0));
    // A refunded card opens no more, and a repeat changes nothing.
    assert!(store.reveal_ecard(&reveal).await.is_err());
    refund(store, m, "O-1", None, NOW + 30).await;
    assert_eq!(events_of(store, m, EventType::EcardRefunded).await, 1);
    // The unseen one goes to the next order.
    let (next, _) = pay(store, m, "O-2", vec![line("L1", 2)], NOW + 40)
        .await
        .unwrap();
    assert_eq!(next.cards().count(), 2);
    assert_eq!(counts(store, m, p.id, NOW + 40).await.available, 0);
    // A used card stays used through a refund.
    let verify = VerifyEcard {
        merchant_id: m,
        target: VerifyTarget::Delivery(next.lines[0].cards[0].id),
        way: VerificationWay::Manual,
        note: "顾客截图".into(),
        proof: None,
        actor: Actor::cli(),
        now: NOW + 50,
    };
    store.verify_ecard(&verify).await.unwrap().unwrap();
    let after = refund(store, m, "O-2", Some("L1"), NOW + 60).await;
    let statuses: Vec<_> = after.cards().map(|c| c.status(NOW + 60)).collect();
    assert_eq!(
        statuses,
        vec![DeliveredStatus::Verified, DeliveredStatus::Refunded]
    );
    // A refund before its paid event leaves nothing delivered.
    refund(store, m, "O-3", Some("L1"), NOW).await;
    let (late, _) = pay(store, m, "O-3", vec![line("L1", 1), line("L2", 1)], NOW + 1)
        .await
        .unwrap();
    assert_eq!(late.lines[0].state(), Some(LineState::Refunded));
    assert_eq!(late.lines[0].cards.len(), 0);
    assert_eq!(late.lines[1].state(), Some(LineState::Delivered));
    refund(store, m, "O-4", None, NOW).await;
    let (whole, _) = pay(store, m, "O-4", vec![line("L1", 1)], NOW + 1)
        .await
        .unwrap();
    assert_eq!(whole.cards().count(), 0);
    assert_eq!(
        store.check_invariants().await.unwrap(),
        Vec::<String>::new()
    );
}

pub async fn a_card_is_verified_three_ways_once(store: &dyn Store) {
    let m = merchant(store, "A").await.id;
    let p = product(store, m, true).await;
    stock(store, m, p.id, 4).await;
    let (order, _) = pay(store, m, "O-1", vec![line("L1", 3)], NOW)
        .await
        .unwrap();
    let keys = master().merchant_keys(m, 1);
    let cards = &order.lines[0].cards;
    let code = usecases::open_own_code(&keys, cards[0].code_sealed.as_ref().unwrap()).unwrap();
    let (number, secret) = usecases::open_stock(&keys, &cards[1].sealed).unwrap();
    let ways = [
        (
            VerifyTarget::CodeDigest(usecases::own_code_digest(&keys, &code)),
            VerificationWay::OwnCode,
        ),
        (
            VerifyTarget::StockDigest(usecases::stock_digest(&keys, &number, &secret)),
            VerificationWay::Callback,
        ),
        (VerifyTarget::Delivery(cards[2].id), VerificationWay::Manual),
    ];
    for (i, (target, way)) in ways.into_iter().enumerate() {
        let verify = VerifyEcard {
            merchant_id: m,
            target,
            way,
            note: String::new(),
            proof: (way == VerificationWay::Manual).then(|| ("image/png".into(), vec![0x89, b'P'])),
            actor: Actor::cli(),
            now: NOW + 100,
        };
        let first = store.verify_ecard(&verify).await.unwrap().unwrap();
        assert_eq!(
            (first.delivery_id, first.way, first.repeated),
            (cards[i].id, way, false)
        );
        let mut again = verify.clone();
        again.now = NOW + 200;
        let repeat = store.verify_ecard(&again).await.unwrap().unwrap();
        assert_eq!((repeat.verified_at, repeat.repeated), (NOW + 100, true));
    }
    assert!(store
        .get_ecard_proof(m, cards[2].id)
        .await
        .unwrap()
        .is_some());
    assert_eq!(events_of(store, m, EventType::EcardVerified).await, 3);
    let unknown = VerifyEcard {
        merchant_id: m,
        target: VerifyTarget::CodeDigest(usecases::own_code_digest(&keys, "0000000000000000")),
        way: VerificationWay::OwnCode,
        note: String::new(),
        proof: None,
        actor: Actor::cli(),
        now: NOW,
    };
    assert_eq!(
        store.verify_ecard(&unknown).await.unwrap(),
        Err(EcardRefusal::UnknownCard)
    );
    // Past its validity an unused card is 已过期 and cannot be verified.
    let (late, _) = pay(store, m, "O-2", vec![line("L1", 1)], NOW)
        .await
        .unwrap();
    let after = NOW + 31 * 86_400;
    assert_eq!(
        late.lines[0].cards[0].status(after),
        DeliveredStatus::Expired
    );
    let mut expired = unknown.clone();
    expired.target = VerifyTarget::Delivery(late.lines[0].cards[0].id);
    expired.now = after;
    assert_eq!(
        store.verify_ecard(&expired).await.unwrap(),
        Err(EcardRefusal::Expired)
    );
    // The list filters by derived status.
    for (status, at, n) in [
        (DeliveredStatus::Verified, after, 1),
        (DeliveredStatus::Expired, after, 1),
        (DeliveredStatus::Unverified, after, 0),
        (DeliveredStatus::Unverified, NOW, 1),
    ] {
        let filter = OrderFilter {
            merchant_id: m,
            status: Some(status),
            now: at,
            ..Default::default()
        };
        let (_, total) = store
            .list_ecard_orders(&filter, Page::default())
            .await
            .unwrap();
        assert_eq!(total, n, "{status:?} at {at}");
    }
    let c = counts(store, m, p.id, after).await;
    assert_eq!((c.used, c.expired, c.delivered, c.available), (3, 1, 0, 0));
}

pub async fn racing_paid_events_deliver_each_line_once(store: &dyn Store) {
    let m = merchant(store, "A").await.id;
    let p = product(store, m, false).await;
    stock(store, m, p.id, 30).await;
    let ids: Vec<String> = (0..200).map(|i| format!("O-{}", i % 20)).collect();
    let tasks = ids
        .iter()
        .map(|id| pay(store, m, id, vec![line("L1", 1)], NOW));
    for outcome in futures_util::future::join_all(tasks).await {
        outcome.unwrap();
    }
    let filter = OrderFilter {
        merchant_id: m,
        now: NOW,
        ..Default::default()
    };
    let (orders, total) = store
        .list_ecard_orders(&filter, Page::new(Some(1), Some(100)))
        .await
        .unwrap();
    assert_eq!(total, 20);
    let mut stock_ids = std::collections::BTreeSet::new();
    for order in &orders {
        assert_eq!(order.cards().count(), 1, "{}", order.order_id);
        for card in order.cards() {
            assert!(stock_ids.insert(card.stock_id), "a secret in two orders");
        }
    }
    assert_eq!(counts(store, m, p.id, NOW).await.available, 10);
    assert_eq!(events_of(store, m, EventType::EcardDelivered).await, 20);
    assert_eq!(
        store.check_invariants().await.unwrap(),
        Vec::<String>::new()
    );
}

pub async fn an_orders_evidence_holds_every_step(store: &dyn Store) {
    let m = merchant(store, "A").await.id;
    let p = product(store, m, false).await;
    stock(store, m, p.id, 2).await;
    let (order, _) = pay(store, m, "O-1", vec![line("L1", 1)], NOW)
        .await
        .unwrap();
    pay(store, m, "O-10", vec![line("L1", 1)], NOW)
        .await
        .unwrap();
    let reveal = Reveal {
        merchant_id: m,
        delivery_id: order.lines[0].cards[0].id,
        order_ref: Some(order.id),
        ip: "198.51.100.7".into(),
        user_agent: "WeChat".into(),
        actor: Actor {
            staff_id: None,
            label: "customer".into(),
        },
        now: NOW + 1,
    };
    store.reveal_ecard(&reveal).await.unwrap();
    // More steps than one page of the audit log: every one is in.
    for i in 0..205 {
        let mut again = reveal.clone();
        again.now = NOW + 1;
        again.user_agent = format!("UA-{i}");
        store.reveal_ecard(&again).await.unwrap();
    }
    let verify = VerifyEcard {
        merchant_id: m,
        target: VerifyTarget::Delivery(order.lines[0].cards[0].id),
        way: VerificationWay::Manual,
        note: "截图".into(),
        proof: None,
        actor: Actor::cli(),
        now: NOW + 2,
    };
    store.verify_ecard(&verify).await.unwrap().unwrap();
    refund(store, m, "O-1", None, NOW + 3).await;
    let evidence = usecases::evidence(store, m, order.id).await.unwrap();
    let actions: Vec<&str> = evidence
        .steps
        .iter()
        .map(|s| s.entry.action.as_str())
        .collect();
    let mut expected = vec!["deliver_ecards"];
    expected.extend(["reveal_ecard"; 206]);
    expected.extend(["verify_ecard", "refund_ecards"]);
    assert_eq!(actions, expected);
    assert!(evidence.steps[206].entry.detail.ends_with("ua=UA-204"));
    assert!(evidence.steps[1].entry.detail.contains("ip=198.51.100.7"));
    assert!(evidence.steps[1].entry.detail.contains("ua=WeChat"));
    assert_eq!(evidence.imports.len(), 1);
    assert_eq!(evidence.imports[0].file_digest, "ab".repeat(32));
}

pub async fn reminders_and_expiry_are_announced_once(store: &dyn Store) {
    use kaquan_core::sms::{SmsKind, SmsProvider, SmsSettings, SmsSettingsFields};
    let m = merchant(store, "A").await.id;
    let settings = SmsSettings {
        merchant_id: m,
        fields: SmsSettingsFields {
            provider: SmsProvider::Aliyun,
            access_key_id: "AK".into(),
            sign_name: "果园".into(),
            notify_buyer_on_ecard: true,
            template_ecard: "SMS_H".into(),
            notify_buyer_on_ecard_expiry: true,
            template_ecard_expiring: "SMS_I".into(),
            ..Default::default()
        },
        secret_sealed: None,
        key_version: 1,
        updated_at: NOW,
    };
    store
        .save_sms_settings(&settings, &audit(m, "save_sms_settings"))
        .await
        .unwrap();
    let mut fields = product_fields(false);
    fields.refund_expired = true;
    let p = store
        .create_ecard_product(m, &fields, 0, &Actor::cli(), NOW)
        .await
        .unwrap();
    stock(store, m, p.id, 3).await;
    let (order, _) = pay(store, m, "O-1", vec![line("L1", 2)], NOW)
        .await
        .unwrap();
    let end = order.lines[0].cards[0].facts.valid_until;
    // A used card is never reminded nor announced as expired.
    let used = VerifyEcard {
        merchant_id: m,
        target: VerifyTarget::Delivery(order.lines[0].cards[1].id),
        way: VerificationWay::Manual,
        note: String::new(),
        proof: None,
        actor: Actor::cli(),
        now: NOW + 1,
    };
    store.verify_ecard(&used).await.unwrap().unwrap();
    let remind_at = end - 3 * 86_400;
    assert_eq!(
        store.sweep_ecard_expiry(remind_at - 1, 100).await.unwrap(),
        (0, 0),
        "not yet"
    );
    assert_eq!(
        store.sweep_ecard_expiry(remind_at, 100).await.unwrap(),
        (1, 0)
    );
    assert_eq!(
        store.sweep_ecard_expiry(remind_at + 60, 100).await.unwrap(),
        (0, 0),
        "once"
    );
    assert_eq!(events_of(store, m, EventType::EcardExpiring).await, 1);
    assert_eq!(
        store.sweep_ecard_expiry(end, 100).await.unwrap(),
        (0, 0),
        "the last second is still valid"
    );
    assert_eq!(
        store.sweep_ecard_expiry(end + 1, 100).await.unwrap(),
        (0, 1)
    );
    assert_eq!(
        store.sweep_ecard_expiry(end + 2, 100).await.unwrap(),
        (0, 0),
        "once"
    );
    assert_eq!(events_of(store, m, EventType::EcardExpired).await, 1);
    let reminded = store.get_ecard_order(m, order.id).await.unwrap();
    assert!(reminded.lines[0].cards[0].reminded_at.is_some());
    // The texts: the delivery (H) and the reminder (I), naming the order,
    // never carrying the link or a secret.
    let (texts, _) = store.list_sms(m, Page::default()).await.unwrap();
    let kinds: Vec<SmsKind> = texts.iter().rev().map(|t| t.kind).collect();
    assert_eq!(kinds, vec![SmsKind::EcardDelivered, SmsKind::EcardExpiring]);
    assert!(texts
        .iter()
        .all(|t| t.phone == "13800138000" && t.params.contains("\"order_ref\"")));
    assert!(texts
        .iter()
        .all(|t| !t.params.contains("/d/") && !t.params.contains("pw")));
}
