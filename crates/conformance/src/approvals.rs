//! 双人复核: the policy per merchant, requests decided once by another
//! person before they expire, and activations counted per staff member and
//! day, undone whole past the cap.

#[allow(unused_imports)]
use crate::fixtures::*;
use crate::NOW;
use kaquan_core::approval::*;
use kaquan_core::batch::BatchFields;
use kaquan_core::card::{CardFilter, CardOp, CardState};
use kaquan_core::store::*;
use kaquan_core::{Conflict, StoreError};

fn request(merchant_id: i64, by: i64, target: String, expires_at: i64) -> NewApproval {
    NewApproval {
        merchant_id,
        kind: ApprovalKind::ActivateCards,
        target,
        detail: String::new(),
        payload: String::new(),
        secret_sealed: None,
        key_version: 0,
        reach: Reach {
            n_cards: 4,
            value_fen: 400,
        },
        reason: "一次激活超过 3 张".into(),
        requested_by: by,
        requested_by_name: format!("staff{by}"),
        requested_at: NOW,
        expires_at,
    }
}

fn by(staff_id: i64, now: i64) -> Decider {
    Decider {
        staff_id,
        name: format!("staff{staff_id}"),
        now,
    }
}

/// Thresholds are kept per merchant (off until set); a request is decided
/// once, never by the person who asked nor after it expired, and finished
/// once; lists narrow by state, an expired request listed as expired.
pub async fn approval_requests_are_decided_once_by_another_person_in_time(store: &dyn Store) {
    let a = merchant(store, "A").await.id;
    let b = merchant(store, "B").await.id;
    assert_eq!(
        store.approval_policy(a).await.unwrap(),
        ApprovalPolicy::default()
    );
    let policy = ApprovalPolicy {
        activate_count_over: Some(3),
        export_secrets: true,
        daily_cap: DailyCap {
            max_cards: Some(10),
            max_value_fen: None,
        },
        expiry_hours: 2,
        credentials: true,
        ..ApprovalPolicy::default()
    };
    for _ in 0..2 {
        store
            .set_approval_policy(a, &policy, &audit(a, "set_approval_policy"))
            .await
            .unwrap();
    }
    assert_eq!(store.approval_policy(a).await.unwrap(), policy);
    assert_eq!(
        store.approval_policy(b).await.unwrap(),
        ApprovalPolicy::default()
    );

    decisions(store, a, b).await;
    credential_change_keeps_its_payload(store, a).await;
}

/// A credential change keeps its new settings and their sealed secret as
/// asked, for the run after approval.
async fn credential_change_keeps_its_payload(store: &dyn Store, a: i64) {
    let change = CredentialChange::SmsSettings;
    let asked = NewApproval {
        kind: ApprovalKind::ChangeCredentials,
        target: change.target(),
        detail: change.verb().into(),
        payload: r#"{"provider":"aliyun"}"#.into(),
        secret_sealed: Some(vec![0, 1, 2, 255]),
        key_version: 3,
        reach: Reach::default(),
        ..request(a, 1, String::new(), NOW + 100)
    };
    let made = store
        .create_approval(&asked, &audit(a, "request_approval"))
        .await
        .unwrap();
    let found = store.approval(a, made.id).await.unwrap().unwrap();
    assert_eq!(found.request, asked);
    assert_eq!(found.request.credential_change(), Some(change));
}

async fn decisions(store: &dyn Store, a: i64, b: i64) {
    let made = store
        .create_approval(
            &request(a, 1, "batch=1".into(), NOW + 100),
            &audit(a, "request_approval"),
        )
        .await
        .unwrap();
    assert_eq!(made.state, ApprovalState::Pending);
    assert_eq!(made.request.reach.n_cards, 4);
    let late = store
        .create_approval(
            &request(a, 1, "batch=2".into(), NOW + 10),
            &audit(a, "request_approval"),
        )
        .await
        .unwrap();
    assert_eq!(
        store.approval(b, made.id).await.unwrap(),
        None,
        "another merchant's"
    );
    let decide = |id, staff, now, decision| async move {
        store
            .decide_approval(
                a,
                id,
                decision,
                &by(staff, now),
                &audit(a, "approve_request"),
            )
            .await
            .unwrap()
    };
    assert!(
        !decide(made.id, 1, NOW, Decision::Approve).await,
        "own request"
    );
    assert!(
        !decide(late.id, 2, NOW + 10, Decision::Approve).await,
        "expired"
    );
    assert!(decide(made.id, 2, NOW + 1, Decision::Approve).await);
    assert!(
        !decide(made.id, 3, NOW + 2, Decision::Reject).await,
        "decided once"
    );
    let approved = store.approval(a, made.id).await.unwrap().unwrap();
    assert_eq!(
        (approved.state, approved.decided_by, approved.decided_at),
        (ApprovalState::Approved, Some(2), Some(NOW + 1))
    );
    assert!(store.finish_approval(a, made.id, Ok(4)).await.unwrap());
    assert!(
        !store.finish_approval(a, made.id, Ok(4)).await.unwrap(),
        "finished once"
    );
    assert!(
        !store.finish_approval(a, late.id, Ok(1)).await.unwrap(),
        "never approved"
    );
    let done = store.approval(a, made.id).await.unwrap().unwrap();
    assert_eq!((done.state, done.n_done), (ApprovalState::Done, Some(4)));

    let page = Page::default();
    let count = |state| async move {
        store
            .list_approvals(a, state, NOW + 20, page)
            .await
            .unwrap()
            .1
    };
    assert_eq!(count(None).await, 2);
    assert_eq!(count(Some(ApprovalState::Expired)).await, 1);
    assert_eq!(count(Some(ApprovalState::Pending)).await, 0);
    assert_eq!(count(Some(ApprovalState::Done)).await, 1);
    let (audits, _) = store.list_audit(a, Page::default()).await.unwrap();
    let actions: Vec<_> = audits.iter().map(|r| r.entry.action.as_str()).collect();
    assert_eq!(
        actions.iter().filter(|a| **a == "approve_request").count(),
        1,
        "only the decision that held is audited: {actions:?}"
    );
    assert!(audits.iter().any(|r| r.entry.action == "request_approval"
        && r.entry.target.starts_with(&format!("approval={}", made.id))));
}

/// 激活 counted in the staff member's day: the reach is what would move,
/// face value summed; past the cap the whole activation is undone (cards,
/// day and audit record), and an approved run (no cap) still counts.
pub async fn activations_past_the_daily_cap_are_undone_whole(store: &dyn Store) {
    let m = merchant(store, "A").await.id;
    let batch = generate(
        store,
        m,
        BatchFields {
            quantity: 6,
            face_value_fen: Some(1_000),
            ..Default::default()
        },
    )
    .await;
    let filter = |from: i64, to: i64| CardFilter {
        batch_id: Some(batch.id),
        serial_from: Some(batch.serial_first + from),
        serial_to: Some(batch.serial_first + to),
        ..CardFilter::default()
    };
    let reach = store
        .card_op_reach(m, &filter(0, 5), CardOp::Activate)
        .await
        .unwrap();
    assert_eq!(
        reach,
        Reach {
            n_cards: 6,
            value_fen: 6_000
        }
    );
    let day = kaquan_core::clock::start_of_today(NOW);
    let capped = ActivationTally {
        staff_id: 7,
        day,
        cap: Some(DailyCap {
            max_cards: Some(4),
            max_value_fen: None,
        }),
    };
    let activate = |f: CardFilter, tally: ActivationTally| async move {
        store
            .activate_cards_counted(m, &f, &audit(m, "activate_cards"), &tally)
            .await
    };
    assert_eq!(activate(filter(0, 2), capped).await.unwrap(), 3);
    let over = activate(filter(3, 4), capped).await;
    assert!(
        matches!(over, Err(StoreError::Conflict(Conflict::DailyCapReached))),
        "{over:?}"
    );
    let active = CardFilter {
        batch_id: Some(batch.id),
        state: Some(CardState::Active),
        ..CardFilter::default()
    };
    assert_eq!(
        store.count_cards(m, &active).await.unwrap(),
        3,
        "undone whole"
    );
    assert_eq!(
        store.activated_in_day(m, 7, day).await.unwrap(),
        Reach {
            n_cards: 3,
            value_fen: 3_000
        }
    );
    // Already active cards do not count again; another person's day is their own.
    assert_eq!(activate(filter(0, 3), capped).await.unwrap(), 1);
    let approved = ActivationTally {
        cap: None,
        ..capped
    };
    assert_eq!(activate(filter(4, 5), approved).await.unwrap(), 2);
    assert_eq!(
        store.activated_in_day(m, 7, day).await.unwrap(),
        Reach {
            n_cards: 6,
            value_fen: 6_000
        }
    );
    assert_eq!(
        store.activated_in_day(m, 8, day).await.unwrap(),
        Reach::default()
    );
    assert_eq!(
        store.activated_in_day(m, 7, day + 86_400).await.unwrap(),
        Reach::default()
    );
    let (audits, _) = store.list_audit(m, Page::default()).await.unwrap();
    assert_eq!(
        audits
            .iter()
            .filter(|r| r.entry.action == "activate_cards")
            .count(),
        3,
        "the undone activation left no record"
    );
    assert_verified(store).await;
}
