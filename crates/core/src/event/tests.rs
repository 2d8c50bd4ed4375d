use super::*;

#[test]
fn the_schedule_is_standard_webhooks_and_gives_up_after_ten_attempts() {
    let mut at = 0;
    let mut cumulative = Vec::new();
    for attempts in 1..ATTEMPTS_MAX {
        at = next_attempt_at(attempts, at, 0).unwrap();
        cumulative.push(at);
    }
    // 00:00:05, 00:05:05, 00:35:05, 02:35:05, 07:35:05, 17:35:05,
    // 31:35:05, 51:35:05, 75:35:05 after the first attempt.
    assert_eq!(
        cumulative,
        [5, 305, 2_105, 9_305, 27_305, 63_305, 113_705, 185_705, 272_105]
    );
    assert_eq!(next_attempt_at(ATTEMPTS_MAX, at, 0), None);
    assert_eq!(next_attempt_at(0, 0, 0), None);
    // Jitter adds at most a tenth of the delay.
    assert_eq!(next_attempt_at(2, 0, 999), Some(300 + 29));
    assert_eq!(next_attempt_at(2, 0, 5_000), Some(300 + 29));
    assert_eq!(next_attempt_at(2, 0, -3), Some(300));
}

fn outcome(status: Option<u16>) -> AttemptOutcome {
    AttemptOutcome {
        status,
        error: String::new(),
        duration_ms: 1,
    }
}

#[test]
fn card_operations_and_moves_record_their_events_only_when_cards_changed() {
    use crate::card::CardOp;
    assert_eq!(
        EventType::of_card_op(CardOp::Activate),
        Some(EventType::CardsActivated)
    );
    assert_eq!(
        EventType::of_card_op(CardOp::Deactivate),
        Some(EventType::CardsDeactivated)
    );
    assert_eq!(
        EventType::of_card_op(CardOp::Void),
        Some(EventType::CardsVoided)
    );
    assert_eq!(EventType::of_card_op(CardOp::Restore), None);
    assert_eq!(EventType::of_card_op(CardOp::Delete), None);
    let audit = AuditEntry {
        merchant_id: 3,
        actor: crate::audit::Actor::cli(),
        action: "void".into(),
        target: "batch=1".into(),
        detail: String::new(),
        n_affected: 0,
        created_at: 9,
    };
    assert_eq!(NewEvent::cards(CardOp::Void, &audit, 0), None);
    let voided = NewEvent::cards(CardOp::Void, &audit, 1).unwrap();
    assert_eq!(
        (voided.event_type, voided.merchant_id, voided.created_at),
        (EventType::CardsVoided, 3, 9)
    );
    assert_eq!(
        voided.data,
        r#"{"actor":"命令行","filter":"batch=1","n_cards":1}"#
            .replace("命令行", &audit.actor.label)
    );
    assert_eq!(
        NewEvent::cards_moved(EventType::CardsActivated, &audit, 0),
        None
    );
    assert_eq!(
        NewEvent::cards_moved(EventType::CardsActivated, &audit, -1),
        None
    );
    assert_eq!(
        NewEvent::cards_moved(EventType::CardsActivated, &audit, 2)
            .unwrap()
            .event_type,
        EventType::CardsActivated
    );
    let labels: std::collections::HashSet<_> =
        EventType::ALL.iter().map(|t| t.label_zh()).collect();
    assert_eq!(labels.len(), EventType::ALL.len());
    assert!(labels.iter().all(|l| !l.is_empty() && !l.contains("xyzzy")));
}

#[test]
fn a_redemption_records_its_balance_change_and_the_code_redeemed() {
    let t = |kind| LedgerTransaction {
        id: 12,
        merchant_id: 3,
        customer_id: 5,
        kind,
        amount_fen: 5000,
        balance_after_fen: 8000,
        reference: "code:7".into(),
        reason: String::new(),
        channel: crate::pickup::Channel::Api,
        created_by: "api".into(),
        created_at: 77,
    };
    let redeemed = ledger_events(&t(crate::ledger::TransactionKind::Redeem), Some("u1001"));
    let types: Vec<_> = redeemed.iter().map(|e| e.event_type).collect();
    assert_eq!(types, [EventType::BalanceChanged, EventType::CodeRedeemed]);
    assert_eq!(redeemed[0].data, redeemed[1].data);
    let data: Value = serde_json::from_str(&redeemed[0].data).unwrap();
    assert_eq!(
        data,
        json!({"transaction_id": 12, "customer_id": "u1001", "kind": "redeem", "amount_fen": 5000, "balance_after_fen": 8000, "reference": "code:7", "channel": "api"})
    );
    let spent = ledger_events(&t(crate::ledger::TransactionKind::Spend), None);
    assert_eq!(spent.len(), 1);
    assert_eq!(spent[0].event_type, EventType::BalanceChanged);
    assert_eq!(spent[0].created_at, 77);
}

#[test]
fn delivery_states_round_trip_and_jitter_adds_a_share_of_the_delay() {
    for s in [
        DeliveryState::Pending,
        DeliveryState::Delivered,
        DeliveryState::Failed,
    ] {
        assert_eq!(DeliveryState::parse(s.code()), Some(s));
        assert!(!s.label_zh().is_empty() && !s.label_zh().contains("xyzzy"));
    }
    assert_eq!(DeliveryState::parse("PENDING"), None);
    assert_eq!(DeliveryState::Delivered.code(), "delivered");
    // The second retry waits 300 s, plus up to a tenth of it.
    assert_eq!(next_attempt_at(2, 0, 0), Some(300));
    assert_eq!(next_attempt_at(2, 0, 500), Some(315));
    assert_eq!(next_attempt_at(2, 0, 999), Some(329));
    assert!(outcome(Some(410)).disable_reason().contains("410"));
    assert!(outcome(Some(500)).disable_reason().contains("5 天"));
}

#[test]
fn only_2xx_delivers_and_410_gives_up_at_once() {
    assert_eq!(
        after_attempt(1, &outcome(Some(200)), 0, 0),
        (DeliveryState::Delivered, None)
    );
    assert_eq!(
        after_attempt(1, &outcome(Some(299)), 0, 0),
        (DeliveryState::Delivered, None)
    );
    for failing in [Some(199), Some(300), Some(302), Some(429), Some(500), None] {
        assert_eq!(
            after_attempt(1, &outcome(failing), 0, 0),
            (DeliveryState::Pending, Some(5)),
            "{failing:?}"
        );
    }
    assert_eq!(
        after_attempt(1, &outcome(Some(410)), 0, 0),
        (DeliveryState::Failed, None)
    );
    assert_eq!(
        after_attempt(ATTEMPTS_MAX, &outcome(Some(500)), 0, 0),
        (DeliveryState::Failed, None)
    );
}

#[test]
fn event_types_round_trip_through_their_stored_text() {
    assert_eq!(event_types_to_text(&[]), "");
    let some = [EventType::PickupOrderShipped, EventType::BalanceChanged];
    let text = event_types_to_text(&some);
    assert_eq!(text, ",pickup_order.shipped,balance.changed,");
    assert_eq!(event_types_from_text(&text), some);
    let endpoint = |types: Vec<EventType>| WebhookEndpoint {
        id: 1,
        merchant_id: 1,
        url: String::new(),
        description: String::new(),
        event_types: types,
        enabled: true,
        disabled_reason: String::new(),
        failing_since: None,
        previous_secret_until: None,
        created_at: 0,
    };
    assert!(endpoint(vec![]).wants(EventType::CardsVoided));
    assert!(endpoint(some.to_vec()).wants(EventType::BalanceChanged));
    assert!(!endpoint(some.to_vec()).wants(EventType::CardsVoided));
}

#[test]
fn the_body_is_type_timestamp_and_data() {
    let event = Event {
        id: 7,
        merchant_id: 1,
        event_type: EventType::CardsVoided,
        data: r#"{"n_cards":3}"#.into(),
        created_at: 1_614_265_330,
    };
    assert_eq!(event.webhook_id(), "evt_7");
    assert_eq!(
        event.body(),
        r#"{"data":{"n_cards":3},"timestamp":"2021-02-25T15:02:10Z","type":"cards.voided"}"#
    );
}

/// The vector every official Standard Webhooks library tests against
/// (integrations.md §1.2, recomputed there and pinned here).
#[test]
fn unsealed_secrets_open_only_for_their_merchant() {
    let master = MasterKey::from_bytes([3; 32]);
    let secret = WebhookSecret::generate();
    let sealed = master
        .merchant_keys(1, 1)
        .seal(WEBHOOK_SECRET_CONTEXT, &secret.to_text());
    let claimed = |merchant_id, previous| ClaimedDelivery {
        delivery_id: 1,
        attempt_no: 1,
        round_attempt: 1,
        event: Event {
            id: 1,
            merchant_id,
            event_type: EventType::CardsVoided,
            data: "{}".into(),
            created_at: 0,
        },
        endpoint_id: 1,
        url: String::new(),
        secrets: EndpointSecrets {
            secret_sealed: sealed.clone(),
            key_version: 1,
            previous,
        },
    };
    assert_eq!(
        open_secrets(&master, &claimed(1, None)),
        std::slice::from_ref(&secret)
    );
    assert!(open_secrets(&master, &claimed(2, None)).is_empty());
    let old = WebhookSecret::generate();
    let old_sealed = master
        .merchant_keys(1, 1)
        .seal(WEBHOOK_SECRET_CONTEXT, &old.to_text());
    assert_eq!(
        open_secrets(&master, &claimed(1, Some((old_sealed, 1)))),
        [secret, old]
    );
}
