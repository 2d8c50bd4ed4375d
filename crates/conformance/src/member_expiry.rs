//! 积分有效期: points lapse oldest first, exactly once however often the
//! sweep runs, with one notice before they do.

#[allow(unused_imports)]
use crate::fixtures::*;
use crate::NOW;
use kaquan_core::audit::Actor;
use kaquan_core::event::EventType;
use kaquan_core::ledger::{ApiCall, CustomerRef, TransactionKind};
use kaquan_core::member::operation::*;
use kaquan_core::member::{PointsExpiry, PointsRule, ProgramFields};
use kaquan_core::store::*;

const DAY: i64 = 86_400;

/// (members whose points lapsed, members told) of one sweep.
async fn sweep(store: &dyn Store, now: i64) -> (i64, i64) {
    let done = store.expire_points(now, 100).await.unwrap();
    (done.expired, done.noticed)
}

async fn at(store: &dyn Store, m: i64, now: i64, action: MemberAction) -> MemberOperation {
    let op = MemberOp {
        merchant_id: m,
        action,
        actor: Actor::cli(),
        now,
    };
    store
        .post_member_op(&ApiCall::default(), &op)
        .await
        .unwrap()
        .result
        .unwrap()
}

fn pay(reference: &str) -> MemberAction {
    MemberAction::Pay(ReportPayment {
        member: MemberRef::Customer {
            customer: CustomerRef::External("u1".into()),
            program_id: None,
        },
        amount_fen: 10_000,
        use_points: 0,
        balance_fen: 0,
        reference: reference.into(),
        location_id: None,
    })
}

/// 开卡 of customer u1.
fn open_card(merchant_id: i64, program_id: i64) -> MemberAction {
    MemberAction::Activate(ActivateMember {
        merchant_id,
        program_id,
        customer: CustomerRef::External("u1".into()),
        phone: "13800000000".into(),
        name: String::new(),
        birthday: None,
        gender: None,
    })
}

pub async fn points_lapse_oldest_first_exactly_once_with_a_notice_before(store: &dyn Store) {
    let m = merchant(store, "A").await.id;
    let fields = ProgramFields {
        points: Some(PointsRule::default()),
        expiry: PointsExpiry::Rolling { months: 12 },
        ..ProgramFields::default()
    };
    let program = store
        .create_member_program(m, &fields, &Actor::cli(), NOW - 500 * DAY)
        .await
        .unwrap();
    let activation = open_card(m, program.id);
    let opened = at(store, m, NOW - 400 * DAY, activation).await;
    at(store, m, NOW - 400 * DAY, pay("old")).await; // 100 points, 400 days ago
    at(store, m, NOW - 100 * DAY, pay("new")).await; // 100 points, 100 days ago
    let used = MemberAction::AdjustPoints(AdjustPoints {
        member_id: opened.member_id,
        delta: -30,
        reason: "兑换礼品".into(),
    });
    at(store, m, NOW - 99 * DAY, used).await;

    // 100 matured, 30 taken since (oldest first): 70 lapse, once.
    assert_eq!(sweep(store, NOW).await, (1, 0));
    let member = store.get_member(m, opened.member_id).await.unwrap();
    assert_eq!(member.points, 100, "200 earned − 30 used − 70 lapsed");
    assert_eq!(sweep(store, NOW).await, (0, 0), "checked today");
    assert_eq!(
        sweep(store, NOW + DAY).await,
        (0, 0),
        "nothing more has matured"
    );
    let (lines, _) = store
        .list_points_statement(m, member.customer_id, Page::default())
        .await
        .unwrap();
    assert_eq!(
        (lines[0].kind, lines[0].amount_fen),
        (TransactionKind::ExpirePoints, -70)
    );

    // A week before the newer points lapse: one notice, not one a day.
    let week_before = NOW + 258 * DAY;
    assert_eq!(sweep(store, week_before).await, (0, 1));
    assert_eq!(sweep(store, week_before + DAY).await, (0, 0));
    let (events, _) = store.list_events(m, Page::default()).await.unwrap();
    let notices: Vec<_> = events
        .iter()
        .filter(|e| e.event_type == EventType::MemberPointsExpiring)
        .collect();
    assert_eq!(notices.len(), 1);
    let data: serde_json::Value = serde_json::from_str(&notices[0].data).unwrap();
    assert_eq!(data["points"], 100);
    // Then they lapse, the rest of the points with them.
    assert_eq!(sweep(store, NOW + 266 * DAY).await, (1, 0));
    assert_eq!(
        store.get_member(m, opened.member_id).await.unwrap().points,
        0
    );
    assert_verified(store).await;
}

pub async fn year_end_clears_what_was_earned_before_the_new_year(store: &dyn Store) {
    let m = merchant(store, "A").await.id;
    let fields = ProgramFields {
        points: Some(PointsRule::default()),
        expiry: PointsExpiry::YearEnd,
        ..ProgramFields::default()
    };
    let program = store
        .create_member_program(m, &fields, &Actor::cli(), NOW - 500 * DAY)
        .await
        .unwrap();
    let activation = open_card(m, program.id);
    // NOW is 2026-09-21; points of last year and of this year.
    let last_year =
        kaquan_core::member::expiry::cutoff(PointsExpiry::YearEnd, NOW).unwrap() - 10 * DAY;
    let opened = at(store, m, last_year, activation).await;
    at(store, m, last_year, pay("old")).await;
    at(store, m, NOW - DAY, pay("new")).await;
    assert_eq!(sweep(store, NOW).await, (1, 0));
    assert_eq!(
        store.get_member(m, opened.member_id).await.unwrap().points,
        100
    );
    // Never-expiring programs are left alone.
    let never = store
        .create_member_program(m, &ProgramFields::default(), &Actor::cli(), NOW)
        .await
        .unwrap();
    assert_eq!(never.fields.expiry, PointsExpiry::Never);
    assert_eq!(sweep(store, NOW + 2 * DAY).await, (0, 0));
    assert_verified(store).await;
}
