//! 会员卡: activation, payments with discount, points and balance, tiers,
//! refunds, top-ups, adjustments, one event per operation, and races.

#[allow(unused_imports)]
use crate::fixtures::*;
use crate::NOW;
use kaquan_core::audit::Actor;
use kaquan_core::event::EventType;
use kaquan_core::member::operation::*;
use kaquan_core::member::*;
use kaquan_core::{ledger::*, store::*};

fn rule() -> PointsRule {
    PointsRule {
        cost_money_unit: 100,
        increase_bonus: 1,
        max_increase_bonus: 0,
        init_increase_bonus: 20,
        cost_bonus_unit: 100,
        reduce_money: 100,
        least_money_to_use_bonus: 0,
        max_reduce_bonus: 0,
    }
}

pub(crate) fn fields() -> ProgramFields {
    ProgramFields {
        title: "果园会员卡".into(),
        discount_percent_off: 5,
        points: Some(rule()),
        tiers: vec![Tier {
            name: "金卡".into(),
            threshold: 100,
            discount_percent_off: 10,
        }],
        number_prefix: "VIP".into(),
        number_length: 8,
        ..ProgramFields::default()
    }
}

pub(crate) async fn program(
    store: &dyn Store,
    merchant_id: i64,
    fields: ProgramFields,
) -> MemberProgram {
    store
        .create_member_program(merchant_id, &fields, &Actor::cli(), NOW)
        .await
        .expect("program")
}

fn op(merchant_id: i64, action: MemberAction) -> MemberOp {
    MemberOp {
        merchant_id,
        action,
        actor: Actor::cli(),
        now: NOW,
    }
}

pub(crate) async fn run(
    store: &dyn Store,
    call: &ApiCall,
    merchant_id: i64,
    action: MemberAction,
) -> Called<MemberOperation, MemberRefusal> {
    store
        .post_member_op(call, &op(merchant_id, action))
        .await
        .expect("member op")
}

/// Runs `action`, which must be done.
pub(crate) async fn performed(store: &dyn Store, m: i64, action: MemberAction) -> MemberOperation {
    run(store, &ApiCall::default(), m, action)
        .await
        .result
        .expect("performed")
}

pub(crate) async fn activate(
    store: &dyn Store,
    m: i64,
    program_id: i64,
    customer: &str,
) -> MemberOperation {
    performed(store, m, activation(program_id, customer)).await
}

fn activation(program_id: i64, customer: &str) -> MemberAction {
    MemberAction::Activate(ActivateMember {
        merchant_id: 0,
        program_id,
        customer: CustomerRef::External(customer.into()),
        phone: "13800000000".into(),
        name: "小王".into(),
        birthday: Some("1990-05-01".into()),
        gender: Some(Gender::Female),
    })
}

pub(crate) fn payment(
    customer: &str,
    amount_fen: i64,
    use_points: i64,
    balance_fen: i64,
    reference: &str,
) -> MemberAction {
    MemberAction::Pay(ReportPayment {
        member: MemberRef::Customer {
            customer: CustomerRef::External(customer.into()),
            program_id: None,
        },
        amount_fen,
        use_points,
        balance_fen,
        reference: reference.into(),
        location_id: None,
    })
}

pub(crate) fn recharge(
    customer: &str,
    amount_fen: i64,
    bonus_fen: i64,
    reference: &str,
) -> MemberAction {
    MemberAction::Recharge(Recharge {
        member: MemberRef::Customer {
            customer: CustomerRef::External(customer.into()),
            program_id: None,
        },
        amount_fen,
        bonus_fen,
        reference: reference.into(),
    })
}

pub async fn a_member_pays_with_discount_points_and_balance_and_reaches_a_tier(store: &dyn Store) {
    let m = merchant(store, "A").await.id;
    let p = program(store, m, fields()).await;
    let opened = activate(store, m, p.id, "u1").await;
    assert_eq!(
        (opened.kind, opened.points_earned, opened.points_after),
        (OperationKind::Activate, 20, 20)
    );
    let again = run(store, &ApiCall::default(), m, activation(p.id, "u1")).await;
    assert!(again.replayed, "one card per customer per program");
    assert_eq!(again.result.unwrap().id, opened.id);
    let member = store.get_member(m, opened.member_id).await.unwrap();
    assert_eq!(
        p.fields.member_number(member.id),
        format!("VIP{:08}", member.id)
    );
    assert_eq!(
        (member.points, member.tier, member.phone.as_str()),
        (20, 0, "13800000000")
    );

    let top_up = run(
        store,
        &ApiCall::default(),
        m,
        recharge("u1", 10_000, 1_000, "r-1"),
    )
    .await;
    let top_up = top_up.result.unwrap();
    assert_eq!(
        (top_up.balance_after_fen, top_up.bonus_fen),
        (11_000, 1_000)
    );
    assert_eq!(
        run(
            store,
            &ApiCall::default(),
            m,
            recharge("u1", 10_000, 0, "r-1")
        )
        .await
        .result,
        Err(MemberRefusal::PaymentExists)
    );

    // ¥100 at 9.5折: 9500 payable; 20 points take ¥0.00 (below one unit
    // of 100), ¥20 of balance, 95 points earned on 9500 paid.
    let paid = run(
        store,
        &ApiCall::default(),
        m,
        payment("u1", 10_000, 0, 2_000, "o-1"),
    )
    .await;
    let paid = paid.result.unwrap();
    assert_eq!(
        (
            paid.discount_fen,
            paid.balance_fen,
            paid.points_earned,
            paid.cash_fen()
        ),
        (500, 2_000, 95, 7_500)
    );
    assert_eq!((paid.points_after, paid.balance_after_fen), (115, 9_000));
    assert_eq!(
        paid.tier_after, 1,
        "115 earned crosses 金卡 in the same transaction"
    );
    // 金卡's own discount now applies; 100 points take ¥1.00 off.
    let gold = run(
        store,
        &ApiCall::default(),
        m,
        payment("u1", 1_000, 100, 0, "o-2"),
    )
    .await;
    let gold = gold.result.unwrap();
    assert_eq!(
        (
            gold.discount_fen,
            gold.points_used,
            gold.points_deduction_fen
        ),
        (100, 100, 100)
    );
    assert_eq!(gold.points_earned, 8, "on ¥8.00 paid");
    assert_eq!(gold.points_after, 115 - 100 + 8);
    payments_refuse_beyond_funds_repeats_and_strangers(store, m).await;
    statements_show_each_asset_apart(store, m, member.customer_id).await;
    assert_verified(store).await;
}

/// The refusals of the check above: funds, a repeated order, a stranger.
async fn payments_refuse_beyond_funds_repeats_and_strangers(store: &dyn Store, m: i64) {
    let refused = run(
        store,
        &ApiCall::default(),
        m,
        payment("u1", 100_000, 0, 90_000, "o-3"),
    )
    .await;
    assert_eq!(refused.result, Err(MemberRefusal::InsufficientBalance));
    assert_eq!(
        run(
            store,
            &ApiCall::default(),
            m,
            payment("u1", 1_000, 0, 0, "o-1")
        )
        .await
        .result,
        Err(MemberRefusal::PaymentExists)
    );
    assert_eq!(
        run(
            store,
            &ApiCall::default(),
            m,
            payment("nobody", 1_000, 0, 0, "o-9")
        )
        .await
        .result,
        Err(MemberRefusal::NotAMember)
    );
}

/// The points and balance statements of the check above, each its own asset.
async fn statements_show_each_asset_apart(store: &dyn Store, m: i64, customer_id: i64) {
    let (points, total) = store
        .list_points_statement(m, customer_id, Page::default())
        .await
        .unwrap();
    let kinds: Vec<_> = points.iter().map(|t| (t.kind, t.amount_fen)).collect();
    assert_eq!(total, 4);
    assert_eq!(
        kinds,
        [
            (TransactionKind::Earn, 8),
            (TransactionKind::UsePoints, -100),
            (TransactionKind::Earn, 95),
            (TransactionKind::Earn, 20)
        ]
    );
    let (fen, _) = store
        .list_statement(m, customer_id, Page::default())
        .await
        .unwrap();
    let kinds: Vec<_> = fen
        .iter()
        .map(|t| (t.kind, t.amount_fen, t.balance_after_fen))
        .collect();
    assert_eq!(
        kinds,
        [
            (TransactionKind::Spend, -2_000, 9_000),
            (TransactionKind::RechargeBonus, 1_000, 11_000),
            (TransactionKind::Recharge, 10_000, 10_000)
        ]
    );
}

pub async fn refunds_give_back_in_proportion_and_add_up_to_the_whole(store: &dyn Store) {
    let m = merchant(store, "A").await.id;
    let p = program(
        store,
        m,
        ProgramFields {
            tiers: vec![],
            ..fields()
        },
    )
    .await;
    let opened = activate(store, m, p.id, "u1").await;
    performed(store, m, recharge("u1", 5_000, 0, "r-1")).await;
    let paid = performed(store, m, payment("u1", 10_000, 20, 3_000, "o-1")).await;
    // 20 points are below one unit: none used.
    assert_eq!((paid.points_used, paid.points_earned), (0, 95));
    let refund = |amount_fen: i64| {
        MemberAction::Refund(RefundPayment {
            payment_id: paid.id,
            amount_fen,
            reason: "退货".into(),
        })
    };
    let first = performed(store, m, refund(4_750)).await;
    assert_eq!((first.balance_fen, first.points_earned), (1_500, -47));
    assert_eq!(first.payment_id, Some(paid.id));
    let second = performed(store, m, refund(4_750)).await;
    assert_eq!((second.balance_fen, second.points_earned), (1_500, -48));
    assert_eq!(
        run(store, &ApiCall::default(), m, refund(1)).await.result,
        Err(MemberRefusal::RefundExceedsPayment)
    );
    let member = store.get_member(m, opened.member_id).await.unwrap();
    assert_eq!(
        (member.points, member.balance_fen),
        (20, 5_000),
        "back where it was"
    );
    assert_eq!((member.points_earned, member.spend_fen), (20, 0));
    let payment = store.get_member_operation(m, paid.id).await.unwrap();
    assert_eq!(payment.refunded_fen, 9_500);
    assert_eq!(
        run(
            store,
            &ApiCall::default(),
            m,
            MemberAction::Refund(RefundPayment {
                payment_id: opened.id,
                amount_fen: 1,
                reason: String::new()
            })
        )
        .await
        .result,
        Err(MemberRefusal::PaymentNotFound)
    );
    assert_verified(store).await;
}

pub async fn a_refund_takes_the_tier_down_only_under_the_downgrade_rule(store: &dyn Store) {
    let m = merchant(store, "A").await.id;
    for (rule, customer) in [(false, "keeps"), (true, "falls")] {
        let p = program(
            store,
            m,
            ProgramFields {
                downgrade_on_refund: rule,
                ..fields()
            },
        )
        .await;
        assert_eq!(p.fields.downgrade_on_refund, rule, "saved as given");
        let opened = activate(store, m, p.id, customer).await;
        let order = format!("o-{customer}");
        let paid = performed(store, m, payment(customer, 10_000, 0, 0, &order)).await;
        // 20 on 开卡 and 95 earned: 115 reaches 金卡 (100).
        assert_eq!(paid.tier_after, 1);
        let refunded = run(
            store,
            &ApiCall::default(),
            m,
            MemberAction::Refund(RefundPayment {
                payment_id: paid.id,
                amount_fen: 4_750,
                reason: "退货".into(),
            }),
        )
        .await
        .result
        .unwrap();
        // 47 reversed: 68 earned in all, below 金卡's 100.
        let member = store.get_member(m, opened.member_id).await.unwrap();
        assert_eq!(member.points_earned, 68);
        let tier = usize::from(!rule);
        assert_eq!(
            (member.tier, refunded.tier_after),
            (tier, tier),
            "rule {rule}"
        );
    }
    assert_verified(store).await;
}

pub async fn each_member_operation_is_one_event_merged_when_both_assets_move(store: &dyn Store) {
    let m = merchant(store, "A").await.id;
    let p = program(store, m, fields()).await;
    activate(store, m, p.id, "u1").await;
    performed(store, m, recharge("u1", 5_000, 0, "r-1")).await;
    performed(store, m, payment("u1", 1_000, 0, 900, "o-1")).await;
    performed(store, m, payment("u1", 1_000, 0, 0, "o-2")).await;
    let (events, _) = store.list_events(m, Page::default()).await.unwrap();
    let member_events: Vec<_> = events
        .iter()
        .filter(|e| {
            matches!(
                e.event_type,
                EventType::MemberActivated | EventType::MemberChanged
            )
        })
        .map(|e| {
            let data: serde_json::Value = serde_json::from_str(&e.data).unwrap();
            (e.event_type, data["notice"].as_str().map(str::to_owned))
        })
        .collect();
    assert_eq!(
        member_events,
        [
            (EventType::MemberChanged, Some("points".into())),
            (EventType::MemberChanged, Some("points_and_balance".into())),
            (EventType::MemberChanged, Some("balance".into())),
            (EventType::MemberActivated, Some("points".into())),
        ]
    );
    // With messages off, no member.changed is written.
    let quiet = program(
        store,
        m,
        ProgramFields {
            notify: false,
            ..fields()
        },
    )
    .await;
    activate(store, m, quiet.id, "u2").await;
    run(
        store,
        &ApiCall::default(),
        m,
        MemberAction::Pay(ReportPayment {
            member: MemberRef::Customer {
                customer: CustomerRef::External("u2".into()),
                program_id: Some(quiet.id),
            },
            amount_fen: 1_000,
            use_points: 0,
            balance_fen: 0,
            reference: "o-3".into(),
            location_id: None,
        }),
    )
    .await
    .result
    .unwrap();
    let (after, _) = store.list_events(m, Page::default()).await.unwrap();
    assert_eq!(after.len(), events.len() + 1, "only the activation");
}

pub async fn member_calls_replay_under_their_key_and_refuse_another_body(store: &dyn Store) {
    let m = merchant(store, "A").await.id;
    let p = program(store, m, fields()).await;
    activate(store, m, p.id, "u1").await;
    let key = claim("pay-1", "body-1");
    let first = run(store, &key, m, payment("u1", 1_000, 0, 0, "o-1")).await;
    let again = run(store, &key, m, payment("u1", 1_000, 0, 0, "o-1")).await;
    assert!(again.replayed && !first.replayed);
    assert_eq!(again.result, first.result);
    let other = run(
        store,
        &claim("pay-1", "body-2"),
        m,
        payment("u1", 2_000, 0, 0, "o-2"),
    )
    .await;
    assert_eq!(other.result, Err(MemberRefusal::IdempotencyMismatch));
    let refused = claim("pay-2", "body-3");
    let no = run(store, &refused, m, payment("u1", 1_000, 0, 500, "o-3")).await;
    assert_eq!(no.result, Err(MemberRefusal::InsufficientBalance));
    let no_again = run(store, &refused, m, payment("u1", 1_000, 0, 500, "o-3")).await;
    assert!(no_again.replayed);
    assert_eq!(no_again.result, Err(MemberRefusal::InsufficientBalance));
    assert_verified(store).await;
}

pub async fn concurrent_point_deductions_never_overdraw(store: &dyn Store) {
    let m = merchant(store, "A").await.id;
    let p = program(store, m, fields()).await;
    let opened = activate(store, m, p.id, "u1").await;
    let adjust = MemberAction::AdjustPoints(AdjustPoints {
        member_id: opened.member_id,
        delta: 1_000,
        reason: "活动赠送".into(),
    });
    performed(store, m, adjust).await;
    let deductions = (0..200).map(|i| async move {
        run(
            store,
            &ApiCall::default(),
            m,
            payment("u1", 10_000, 100, 0, &format!("race-{i}")),
        )
        .await
        .result
    });
    let results = futures_util::future::join_all(deductions).await;
    let used = results.iter().filter(|r| r.is_ok()).count() as i64;
    assert!(results
        .iter()
        .all(|r| matches!(r, Ok(_) | Err(MemberRefusal::InsufficientPoints))));
    let member = store.get_member(m, opened.member_id).await.unwrap();
    // Each successful payment earns points too, so more than ten may pass;
    // none ever takes the account below zero.
    assert!(used >= 10);
    assert!(member.points >= 0);
    let too_much = MemberAction::AdjustPoints(AdjustPoints {
        member_id: opened.member_id,
        delta: -(member.points + 1),
        reason: "纠正".into(),
    });
    assert_eq!(
        run(store, &ApiCall::default(), m, too_much).await.result,
        Err(MemberRefusal::InsufficientPoints)
    );
    assert_verified(store).await;
}

pub async fn programs_are_kept_per_merchant_and_members_are_filtered(store: &dyn Store) {
    let (a, b) = (merchant(store, "A").await.id, merchant(store, "B").await.id);
    let p = program(store, a, fields()).await;
    assert_eq!(
        store.get_member_program(a, p.id).await.unwrap().fields,
        fields()
    );
    assert!(store.get_member_program(b, p.id).await.is_err());
    let changed = ProgramFields {
        title: "新卡".into(),
        expiry: PointsExpiry::Rolling { months: 12 },
        ..fields()
    };
    let updated = store
        .update_member_program(a, p.id, &changed, &Actor::cli(), NOW)
        .await
        .unwrap();
    assert_eq!(updated.fields, changed);
    activate(store, a, p.id, "u1").await;
    activate(store, a, p.id, "u2").await;
    performed(store, a, recharge("u2", 5_000, 0, "r-1")).await;
    let rich = MemberFilter {
        balance_at_least_fen: Some(1),
        ..MemberFilter::default()
    };
    let (members, total) = store.list_members(a, &rich, Page::default()).await.unwrap();
    assert_eq!((total, members[0].external_id.as_deref()), (1, Some("u2")));
    let (_, all) = store
        .list_members(a, &MemberFilter::default(), Page::default())
        .await
        .unwrap();
    assert_eq!(all, 2);
    let (_, none) = store
        .list_members(b, &MemberFilter::default(), Page::default())
        .await
        .unwrap();
    assert_eq!(none, 0);
    let disabled = store
        .set_member_program_state(a, p.id, ProgramState::Disabled, &Actor::cli(), NOW)
        .await
        .unwrap();
    assert_eq!(
        (disabled.state, disabled.n_members),
        (ProgramState::Disabled, 2)
    );
    assert_eq!(
        run(
            store,
            &ApiCall::default(),
            a,
            payment("u1", 1_000, 0, 0, "o-1")
        )
        .await
        .result,
        Err(MemberRefusal::ProgramDisabled)
    );
    assert_eq!(
        run(store, &ApiCall::default(), a, activation(p.id, "u3"))
            .await
            .result,
        Err(MemberRefusal::ProgramDisabled)
    );
    assert_verified(store).await;
}

/// Random payments (with points and balance), refunds, top-ups and point
/// adjustments of three members: every answer agrees with a model of
/// points and balance kept here, nothing goes below zero, and `verify`
/// finds every invariant of both assets held.
pub async fn random_member_operations_keep_every_invariant(store: &dyn Store) {
    let m = merchant(store, "A").await.id;
    let p = program(store, m, fields()).await;
    let names = ["p0", "p1", "p2"];
    let mut ids = Vec::new();
    for name in names {
        ids.push(activate(store, m, p.id, name).await.member_id);
    }
    let mut payments: Vec<i64> = Vec::new();
    let mut rng = Lcg(20_261_206);
    for step in 0..200 {
        let who = rng.below(3) as usize;
        let before = store.get_member(m, ids[who]).await.unwrap();
        let action = match rng.below(4) {
            0 => Some(recharge(
                names[who],
                1 + rng.below(5_000) as i64,
                rng.below(3) as i64 * 100,
                &format!("r{step}"),
            )),
            1 => Some(payment(
                names[who],
                1 + rng.below(20_000) as i64,
                rng.below(400) as i64,
                rng.below(6_000) as i64,
                &format!("o{step}"),
            )),
            2 if !payments.is_empty() => {
                let id = payments[rng.below(payments.len() as u64) as usize];
                Some(MemberAction::Refund(RefundPayment {
                    payment_id: id,
                    amount_fen: 1 + rng.below(5_000) as i64,
                    reason: String::new(),
                }))
            }
            _ => MemberAction::AdjustPoints(AdjustPoints {
                member_id: ids[who],
                delta: rng.below(200) as i64 - 100,
                reason: "随机".into(),
            })
            .filter_zero(),
        };
        let Some(action) = action else { continue };
        let done = run(store, &ApiCall::default(), m, action.clone())
            .await
            .result;
        let after_all: Vec<_> =
            futures_util::future::join_all(ids.iter().map(|id| store.get_member(m, *id)))
                .await
                .into_iter()
                .map(Result::unwrap)
                .collect();
        for member in &after_all {
            assert!(
                member.points >= 0 && member.balance_fen >= 0,
                "step {step}: {member:?}"
            );
        }
        match done {
            Ok(op) => {
                let member = after_all.iter().find(|x| x.id == op.member_id).unwrap();
                assert_eq!(
                    (op.points_after, op.balance_after_fen),
                    (member.points, member.balance_fen),
                    "step {step}"
                );
                if op.kind == OperationKind::Payment {
                    payments.push(op.id);
                }
                if let MemberAction::AdjustPoints(a) = &action {
                    assert_eq!(member.points, before.points + a.delta, "step {step}");
                }
            }
            Err(refusal) => {
                // A refusal changes nothing of the member asked about.
                let member = after_all.iter().find(|x| x.id == ids[who]).unwrap();
                if !matches!(action, MemberAction::Refund(_)) {
                    assert_eq!(
                        (member.points, member.balance_fen),
                        (before.points, before.balance_fen),
                        "step {step}: {refusal:?}"
                    );
                }
            }
        }
    }
    assert_verified(store).await;
}

trait ZeroFilter {
    fn filter_zero(self) -> Option<MemberAction>;
}

impl ZeroFilter for MemberAction {
    /// A zero adjustment is not a call anyone makes.
    fn filter_zero(self) -> Option<MemberAction> {
        match &self {
            MemberAction::AdjustPoints(a) if a.delta == 0 => None,
            _ => Some(self),
        }
    }
}

/// 积分变动消息下发优惠券: a message that tells of points carries the
/// coupon's claim path; one of balance alone does not.
pub async fn the_points_message_carries_the_programs_coupon(store: &dyn Store) {
    let m = merchant(store, "A").await.id;
    let coupon = kaquan_core::coupon::usecases::create_coupon_program(
        store,
        m,
        &crate::coupons::cash_program_fields(vec![]),
        100,
        &Actor::cli(),
        NOW,
    )
    .await
    .unwrap();
    let with_coupon = ProgramFields {
        notify_coupon_program_id: Some(coupon.id),
        ..fields()
    };
    let p = program(store, m, with_coupon).await;
    activate(store, m, p.id, "u1").await;
    performed(store, m, recharge("u1", 5_000, 0, "r-1")).await;
    performed(store, m, payment("u1", 1_000, 0, 0, "o-1")).await;
    let (events, _) = store
        .list_member_messages(m, Page::default())
        .await
        .unwrap();
    let paths: Vec<_> = events
        .iter()
        .map(|e| {
            serde_json::from_str::<serde_json::Value>(&e.data).unwrap()["coupon_claim_path"].clone()
        })
        .collect();
    assert_eq!(
        paths,
        [
            serde_json::Value::String(format!("/m/{m}/coupons/{}", coupon.claim_token)),
            serde_json::Value::Null
        ],
        "the payment's points message, then the top-up's balance message"
    );
}

/// 预付卡政策 on: a top-up may take a member's stored value (bonus
/// included) to ¥5,000 but not past it; the refusal is recorded and posts
/// nothing; with the policy off the cap does not apply.
pub async fn the_prepaid_policy_caps_a_named_balance_at_five_thousand(store: &dyn Store) {
    let m = merchant(store, "A").await.id;
    let p = program(store, m, fields()).await;
    activate(store, m, p.id, "u1").await;
    store
        .set_prepaid_policy(m, true, &audit(m, "set_prepaid_policy"))
        .await
        .unwrap();
    performed(store, m, recharge("u1", 400_000, 50_000, "r-1")).await;
    let over = run(
        store,
        &ApiCall::default(),
        m,
        recharge("u1", 50_000, 1, "r-2"),
    )
    .await;
    assert_eq!(over.result.unwrap_err(), MemberRefusal::PrepaidBalanceCap);
    let member = performed(store, m, recharge("u1", 50_000, 0, "r-3")).await;
    assert_eq!(member.balance_after_fen, 500_000, "to the cap exactly");
    store
        .set_prepaid_policy(m, false, &audit(m, "set_prepaid_policy"))
        .await
        .unwrap();
    let off = performed(store, m, recharge("u1", 1, 0, "r-4")).await;
    assert_eq!(off.balance_after_fen, 500_001);
    assert_verified(store).await;
}
