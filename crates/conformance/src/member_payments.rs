//! 买单 sent at once (which a store may write together, as the SQLite
//! writer does) record exactly what payments one at a time record.

use crate::fixtures::*;
use crate::members::{activate, fields, payment, program, recharge, run};
use kaquan_core::event::EventType;
use kaquan_core::member::operation::*;
use kaquan_core::member::*;
use kaquan_core::{ledger::*, store::*};

/// Members at the start of the check: each opened and topped up alike.
const MEMBERS: usize = 30;

/// Payments sent at once record what the same payments one at a time do:
/// the operation record with its amounts and balances after, the member's
/// points, balance and counters, one event each; and each rule holds
/// inside the crowd: a member paying twice pays twice in turn, a key sent
/// twice is one payment, a nonce sent twice passes once, an order
/// reported twice is paid once.
pub async fn payments_at_once_record_what_one_at_a_time_records(store: &dyn Store) {
    let m = merchant(store, "A").await.id;
    let notified = ProgramFields {
        notify: true,
        ..fields()
    };
    let p = program(store, m, notified).await;
    for i in 0..MEMBERS {
        let who = format!("c{i}");
        activate(store, m, p.id, &who).await;
        let topped_up = run(
            store,
            &ApiCall::default(),
            m,
            recharge(&who, 10_000, 0, &format!("r{i}")),
        )
        .await;
        topped_up.result.expect("topped up");
    }
    let pay = |i: usize, order: &str| payment(&format!("c{i}"), 12_000, 20, 1_000, order);
    let mut alone = Vec::new();
    for i in 0..5 {
        let call = signed_call(&format!("alone-{i}"), &format!("n-alone-{i}"));
        let paid = run(store, &call, m, pay(i, &format!("o{i}"))).await;
        alone.push(paid.result.expect("paid alone"));
    }
    // The crowd: members 5.. once each; then member 5 again (another
    // order), member 6's key again (another nonce), member 7's nonce with
    // member 8's second order, member 9's order for member 10.
    let mut crowd: Vec<(ApiCall, MemberAction)> = (5..MEMBERS)
        .map(|i| {
            (
                signed_call(&format!("k{i}"), &format!("n{i}")),
                pay(i, &format!("o{i}")),
            )
        })
        .collect();
    crowd.push((signed_call("k5b", "n5b"), pay(5, "o5b")));
    crowd.push((signed_call("k6", "n6-again"), pay(6, "o6")));
    crowd.push((signed_call("k8b", "n7"), pay(8, "o8b")));
    crowd.push((signed_call("k10b", "n10b"), pay(10, "o9")));
    let results: Vec<Result<MemberOperation, MemberRefusal>> = futures_util::future::join_all(
        crowd
            .iter()
            .map(|(call, action)| run(store, call, m, action.clone())),
    )
    .await
    .into_iter()
    .map(|called| called.result)
    .collect();
    let at = |i: usize| &results[i - 5];
    let extra = |k: usize| &results[MEMBERS - 5 + k];
    assert_eq!(extra(1), at(6), "one key, one payment");
    let reused = Err(MemberRefusal::NonceReused);
    assert_eq!(
        [at(7), extra(2)].iter().filter(|r| ***r == reused).count(),
        1,
        "{results:?}"
    );
    let exists = Err(MemberRefusal::PaymentExists);
    assert_eq!(
        [at(9), extra(3)].iter().filter(|r| ***r == exists).count(),
        1,
        "{results:?}"
    );
    paid_alike(store, m, &alone, &results).await;
    assert_eq!(
        store.check_invariants().await.unwrap(),
        Vec::<String>::new()
    );
}

/// Each payment as read back; each member's balances their last
/// payment's; each member's first payment alike whoever paid it and
/// however it was sent; one event per top-up and per payment.
async fn paid_alike(
    store: &dyn Store,
    m: i64,
    alone: &[MemberOperation],
    results: &[Result<MemberOperation, MemberRefusal>],
) {
    // Each member's first payment records what one alone records.
    let like_alone = |op: &MemberOperation| {
        (
            op.kind,
            op.amount_fen,
            op.discount_fen,
            op.points_used,
            op.points_deduction_fen,
            op.balance_fen,
            op.points_earned,
            op.points_after,
            op.balance_after_fen,
            op.tier_after,
            op.created_at,
        )
    };
    let mut paid: Vec<MemberOperation> = alone
        .iter()
        .cloned()
        .chain(results.iter().filter_map(|r| r.as_ref().ok().cloned()))
        .collect();
    paid.sort_by_key(|op| op.id);
    paid.dedup_by_key(|op| op.id);
    for op in &paid {
        assert_eq!(store.get_member_operation(m, op.id).await.unwrap(), *op);
    }
    // Every member's balances are their last operation's, and a member's
    // first payment is alike whoever paid it and however it was sent.
    let mut n_paid_by_member = std::collections::HashMap::new();
    for op in &paid {
        *n_paid_by_member.entry(op.member_id).or_insert(0) += 1;
        let member = store.get_member(m, op.member_id).await.unwrap();
        if n_paid_by_member[&op.member_id] == 1 {
            assert_eq!(like_alone(op), like_alone(&alone[0]), "{op:?}");
        }
        let last = paid.iter().rfind(|o| o.member_id == op.member_id).unwrap();
        assert_eq!(
            (member.points, member.balance_fen, member.tier),
            (last.points_after, last.balance_after_fen, last.tier_after)
        );
    }
    // Five alone; in the crowd each member once, member 5 twice, and of
    // each pair that shares a nonce or an order one.
    assert_eq!(paid.len(), MEMBERS + 1, "{results:?}");
    let second = paid.iter().find(|op| op.reference == "o5b").expect("o5b");
    assert_eq!(n_paid_by_member[&second.member_id], 2);
    let changed = store
        .list_events(
            m,
            Page {
                page: 1,
                page_size: 500,
            },
        )
        .await
        .unwrap()
        .0
        .iter()
        .filter(|e| e.event_type == EventType::MemberChanged)
        .count();
    assert_eq!(
        changed,
        MEMBERS + paid.len(),
        "one event per top-up and per payment"
    );
}
