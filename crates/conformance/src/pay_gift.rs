//! 支付后赠会员卡: rules and their 商户号 (one rule each unless 已失效), the
//! payments they answer once per payment id, never to a member, and rules
//! that are deleted, ended or of a disabled program firing nothing.

#[allow(unused_imports)]
use crate::fixtures::*;
use crate::NOW;
use kaquan_core::audit::Actor;
use kaquan_core::event::EventType;
use kaquan_core::ledger::{ApiCall, CustomerRef};
use kaquan_core::member::operation::{ActivateMember, MemberAction, MemberOp};
use kaquan_core::member::pay_gift::*;
use kaquan_core::member::{ProgramFields, ProgramState};
use kaquan_core::store::*;

fn rule(program_id: i64, mch_ids: &[&str], least: i64, max: Option<i64>) -> PayGiftFields {
    PayGiftFields {
        program_id,
        mch_ids: mch_ids.iter().map(|m| (*m).to_owned()).collect(),
        least_cost_fen: least,
        max_cost_fen: max,
        begin_at: NOW - 100,
        end_at: NOW + 100,
    }
}

fn notice(payment_id: &str, mch_id: &str, amount_fen: i64, customer: &str) -> PaymentNotice {
    PaymentNotice {
        payment_id: payment_id.into(),
        mch_id: mch_id.into(),
        amount_fen,
        paid_at: NOW,
        customer_id: Some(customer.into()),
        phone: None,
    }
}

async fn notify(store: &dyn Store, m: i64, n: &PaymentNotice) -> (GiftSend, bool) {
    let open = |program_id: i64| format!("https://kq.example/m/{m}/member-cards/{program_id}");
    notify_payment(store, m, n, &open, NOW)
        .await
        .expect("notify")
}

pub async fn a_merchant_id_belongs_to_one_live_rule_and_void_rules_free_it(store: &dyn Store) {
    let m = merchant(store, "A").await.id;
    let program = store
        .create_member_program(m, &ProgramFields::default(), &Actor::cli(), NOW)
        .await
        .unwrap();
    let first = store
        .create_pay_gift_rule(
            m,
            &rule(program.id, &["m1", "m2"], 0, None),
            &Actor::cli(),
            NOW,
        )
        .await
        .unwrap()
        .unwrap();
    let taken = store
        .create_pay_gift_rule(
            m,
            &rule(program.id, &["m3", "m2"], 0, None),
            &Actor::cli(),
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(
        taken,
        Err(RuleRefusal::MchIdTaken {
            mch_id: "m2".into(),
            rule_id: first.id
        })
    );
    assert_eq!(
        store
            .create_pay_gift_rule(m, &rule(9999, &["m9"], 0, None), &Actor::cli(), NOW)
            .await
            .unwrap(),
        Err(RuleRefusal::ProgramNotFound)
    );
    // An ended rule holds nothing.
    let ended = PayGiftFields {
        begin_at: NOW - 200,
        end_at: NOW - 1,
        ..rule(program.id, &["m5"], 0, None)
    };
    store
        .create_pay_gift_rule(m, &ended, &Actor::cli(), NOW)
        .await
        .unwrap()
        .unwrap();
    store
        .create_pay_gift_rule(m, &rule(program.id, &["m5"], 0, None), &Actor::cli(), NOW)
        .await
        .unwrap()
        .expect("an ended rule's 商户号 is free");
    // A deleted rule frees its ids and is listed as 已失效.
    store
        .delete_pay_gift_rule(m, first.id, &Actor::cli(), NOW)
        .await
        .unwrap();
    store
        .create_pay_gift_rule(m, &rule(program.id, &["m2"], 0, None), &Actor::cli(), NOW)
        .await
        .unwrap()
        .expect("a deleted rule's 商户号 is free");
    let listed = store.list_pay_gift_rules(m).await.unwrap();
    let void: Vec<_> = listed
        .iter()
        .filter(|(r, p)| r.status(*p, NOW).is_void())
        .map(|(r, p)| r.status(*p, NOW))
        .collect();
    assert_eq!(void, [RuleStatus::Ended, RuleStatus::Deleted]);
    assert!(
        store
            .delete_pay_gift_rule(m, first.id, &Actor::cli(), NOW)
            .await
            .is_err(),
        "once"
    );
}

/// A member of the program (by the mall's id or by phone) hears nothing.
async fn members_hear_nothing(store: &dyn Store, m: i64, program_id: i64) {
    let activation = MemberOp {
        merchant_id: m,
        action: MemberAction::Activate(ActivateMember {
            merchant_id: m,
            program_id,
            customer: CustomerRef::External("u3".into()),
            phone: "13800000003".into(),
            name: String::new(),
            birthday: None,
            gender: None,
        }),
        actor: Actor::cli(),
        now: NOW,
    };
    store
        .post_member_op(&ApiCall::default(), &activation)
        .await
        .unwrap()
        .result
        .unwrap();
    assert_eq!(
        notify(store, m, &notice("p7", "m1", 2_000, "u3"))
            .await
            .0
            .outcome,
        GiftOutcome::AlreadyMember
    );
    let by_phone = PaymentNotice {
        customer_id: None,
        phone: Some("13800000003".into()),
        ..notice("p8", "m1", 2_000, "")
    };
    assert_eq!(
        notify(store, m, &by_phone).await.0.outcome,
        GiftOutcome::AlreadyMember
    );
}

pub async fn a_payment_sends_one_claim_message_never_to_a_member_nor_from_a_void_rule(
    store: &dyn Store,
) {
    let m = merchant(store, "A").await.id;
    let program = store
        .create_member_program(m, &ProgramFields::default(), &Actor::cli(), NOW)
        .await
        .unwrap();
    let live = store
        .create_pay_gift_rule(
            m,
            &rule(program.id, &["m1"], 1_000, Some(5_000)),
            &Actor::cli(),
            NOW,
        )
        .await
        .unwrap()
        .unwrap();
    let (sent, replayed) = notify(store, m, &notice("p1", "m1", 1_000, "u1")).await;
    assert_eq!(
        (sent.outcome, sent.rule_id, replayed),
        (GiftOutcome::Sent, Some(live.id), false)
    );
    let (again, replayed) = notify(store, m, &notice("p1", "m1", 1_000, "u1")).await;
    assert_eq!((again.id, replayed), (sent.id, true), "once per payment id");
    assert_eq!(
        notify(store, m, &notice("p2", "m1", 999, "u1"))
            .await
            .0
            .outcome,
        GiftOutcome::AmountOutOfRange
    );
    assert_eq!(
        notify(store, m, &notice("p3", "m1", 5_001, "u1"))
            .await
            .0
            .outcome,
        GiftOutcome::AmountOutOfRange
    );
    assert_eq!(
        notify(store, m, &notice("p4", "m7", 2_000, "u1"))
            .await
            .0
            .outcome,
        GiftOutcome::NoLiveRule
    );
    let late = PaymentNotice {
        paid_at: NOW + 101,
        ..notice("p5", "m1", 2_000, "u1")
    };
    assert_eq!(
        notify(store, m, &late).await.0.outcome,
        GiftOutcome::NoLiveRule,
        "after the window"
    );
    let edge = PaymentNotice {
        paid_at: NOW + 100,
        ..notice("p6", "m1", 2_000, "u2")
    };
    assert_eq!(
        notify(store, m, &edge).await.0.outcome,
        GiftOutcome::Sent,
        "its last second"
    );

    members_hear_nothing(store, m, program.id).await;

    // A disabled program's rule is void.
    store
        .set_member_program_state(m, program.id, ProgramState::Disabled, &Actor::cli(), NOW)
        .await
        .unwrap();
    assert_eq!(
        notify(store, m, &notice("p9", "m1", 2_000, "u4"))
            .await
            .0
            .outcome,
        GiftOutcome::NoLiveRule
    );

    let (events, _) = store.list_events(m, Page::default()).await.unwrap();
    let invited: Vec<_> = events
        .iter()
        .filter(|e| e.event_type == EventType::MemberInvited)
        .map(|e| serde_json::from_str::<serde_json::Value>(&e.data).unwrap())
        .collect();
    assert_eq!(invited.len(), 2, "p1 and p6 only");
    assert!(invited[0]["open_url"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/member-cards/{}", program.id)));
    let (sends, total) = store.list_gift_sends(m, Page::default()).await.unwrap();
    assert_eq!(total, 9);
    assert_eq!(sends[0].notice.payment_id, "p9");
}
