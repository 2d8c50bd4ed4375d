//! Codes: redeeming once, attempt limits, expiry and deletion, uniform refusals.

#[allow(unused_imports)]
use crate::fixtures::*;
use crate::NOW;
use kaquan_core::StoreError;
use kaquan_core::{code::*, giftcard::*, ledger::*, store::*};

pub async fn offline_codes_redeem_once_into_the_balance(store: &dyn Store) {
    let m = merchant(store, "A").await.id;
    let settings = GiftcardSettings::default();
    let (template_id, codes) = offline_codes(store, m, fields("中秋卡", 10_000), 3).await;
    assert!(codes.iter().all(|c| c.len() == 16));
    let credited = redeem(
        store,
        &settings,
        redeemer(m, "u1", "ip"),
        &kaquan_core::code::group_code(&codes[0]),
    )
    .await
    .expect("first redemption credits");
    assert_eq!(
        (
            credited.kind,
            credited.amount_fen,
            credited.balance_after_fen
        ),
        (TransactionKind::Redeem, 10_000, 10_000)
    );
    // A second redemption of the same code, by anyone, is refused alike.
    for who in ["u1", "u2"] {
        assert_eq!(
            redeem(store, &settings, redeemer(m, who, "ip"), &codes[0]).await,
            Err(Refusal::CodeRefused)
        );
    }
    let second = redeem(
        store,
        &settings,
        redeemer(m, "u1", "ip"),
        &codes[1].to_lowercase(),
    )
    .await
    .expect("lower case works");
    assert_eq!(second.balance_after_fen, 20_000);
    let u1 = customer_id(store, m, "u1").await;
    assert_eq!(balance(store, m, u1).await, 20_000);
    let (statement, total) = store.list_statement(m, u1, Page::default()).await.unwrap();
    assert_eq!(total, 2);
    assert_eq!(statement[0].id, second.id, "newest first");
    let template = store.get_code_template(m, template_id).await.unwrap();
    assert_eq!(
        (template.n_issued, template.n_used, template.n_unused()),
        (3, 2, 1)
    );
    let (listed, _) = store
        .list_codes(m, template_id, None, Page::default())
        .await
        .unwrap();
    assert_eq!(listed[0].state, CodeState::Used);
    assert_eq!(listed[0].customer_label.as_deref(), Some("u1"));
    assert_eq!(listed[0].redeemed_at, Some(NOW));
    assert_eq!(listed[2].state, CodeState::Unused);
    // Another merchant's customer cannot redeem this merchant's codes.
    let other = merchant(store, "B").await.id;
    assert_eq!(
        redeem(store, &settings, redeemer(other, "u1", "ip"), &codes[2]).await,
        Err(Refusal::CodeRefused)
    );
    let (audit_log, _) = store.list_audit(m, Page::default()).await.unwrap();
    let refused: Vec<_> = audit_log
        .iter()
        .filter(|a| a.entry.action == "code_refused")
        .collect();
    assert_eq!(refused.len(), 2);
    assert!(refused
        .iter()
        .all(|a| a.entry.detail.contains("reason=used")));
    assert!(
        audit_log
            .iter()
            .all(|a| !a.entry.detail.contains(&codes[0])),
        "codes never reach the audit log"
    );
    assert_verified(store).await;
}

pub async fn wrong_codes_count_against_the_attempt_limit(store: &dyn Store) {
    let m = merchant(store, "A").await.id;
    let settings = GiftcardSettings {
        attempt_limit: 3,
        ..Default::default()
    };
    let (_, codes) = offline_codes(store, m, fields("卡", 100), 2).await;
    redeem(store, &settings, redeemer(m, "u1", "ip1"), &codes[0])
        .await
        .unwrap();
    // Every refusal counts, a used code as much as a guess: all do the same
    // work, so none answers faster than another.
    for code in [codes[0].as_str(), "not a code", "ZZZZ-ZZZZ-ZZZZ-ZZZZ"] {
        assert_eq!(
            redeem(store, &settings, redeemer(m, "u1", "ip1"), code).await,
            Err(Refusal::CodeRefused)
        );
    }
    // Now u1 is locked, even with a good code and from another client.
    let locked = redeem(store, &settings, redeemer(m, "u1", "ip2"), &codes[1]).await;
    assert!(
        matches!(locked, Err(Refusal::Locked { retry_after_seconds }) if retry_after_seconds > 0),
        "{locked:?}"
    );
    // And so is the client ip1, for another customer.
    let locked = redeem(store, &settings, redeemer(m, "u2", "ip1"), &codes[1]).await;
    assert!(matches!(locked, Err(Refusal::Locked { .. })), "{locked:?}");
    // Another customer on another client is not.
    redeem(store, &settings, redeemer(m, "u2", "ip2"), &codes[1])
        .await
        .expect("u2 from ip2 redeems");
    // The lock lifts once the refusals are older than the window.
    let (_, later) = offline_codes(store, m, fields("卡", 100), 2).await;
    let at = |now: i64| CodeRedeemer {
        now,
        ..redeemer(m, "u1", "ip1")
    };
    let window = kaquan_core::attempts::ATTEMPT_WINDOW_SECONDS;
    assert!(matches!(
        redeem(store, &settings, at(NOW + window), &later[0]).await,
        Err(Refusal::Locked {
            retry_after_seconds: 1
        })
    ));
    redeem(store, &settings, at(NOW + window + 1), &later[0])
        .await
        .expect("u1 redeems again an hour after its refusals");
    assert_verified(store).await;
}

pub async fn expired_and_deleted_codes_are_refused(store: &dyn Store) {
    let m = merchant(store, "A").await.id;
    let settings = GiftcardSettings::default();
    let expired = CodeTemplateFields {
        valid_until: Some(NOW - 1),
        ..fields("过期", 100)
    };
    let (_, old) = offline_codes(store, m, expired, 1).await;
    assert_eq!(
        redeem(store, &settings, redeemer(m, "u1", "ip"), &old[0]).await,
        Err(Refusal::CodeRefused)
    );
    let (template_id, codes) = offline_codes(store, m, fields("删除", 100), 3).await;
    redeem(store, &settings, redeemer(m, "u1", "ip"), &codes[0])
        .await
        .unwrap();
    // Deleting asks for the number of unused codes the merchant confirmed.
    assert!(matches!(
        store
            .delete_code_template(m, template_id, 3, &audit(m, "delete_code_template"))
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store
            .delete_code_template(m, template_id, 2, &audit(m, "delete_code_template"))
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        redeem(store, &settings, redeemer(m, "u1", "ip"), &codes[1]).await,
        Err(Refusal::CodeRefused)
    );
    let template = store.get_code_template(m, template_id).await.unwrap();
    assert_eq!(
        (template.n_used, template.n_voided, template.n_unused()),
        (1, 2, 0)
    );
    assert!(template.deleted_at.is_some());
    assert_eq!(
        store
            .list_code_templates(m, CodeKind::Offline, Page::default())
            .await
            .unwrap()
            .1,
        1
    );
    let (audit_log, _) = store.list_audit(m, Page::default()).await.unwrap();
    let reasons: Vec<_> = audit_log
        .iter()
        .filter(|a| a.entry.action == "code_refused")
        .map(|a| a.entry.detail.clone())
        .collect();
    assert!(
        reasons.iter().any(|d| d.contains("reason=expired")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|d| d.contains("reason=voided")),
        "{reasons:?}"
    );
    assert_verified(store).await;
}

/// An unknown code and a used, voided or expired one are refused alike and
/// each counts against the attempt limit, whichever the reason: a refusal
/// that skipped the count once answered 2.5x faster, which told a guesser
/// a real code from a wrong one. (Counted, not timed: tests assert no
/// wall-clock time.)
pub async fn code_refusals_count_against_the_limit_whatever_the_reason(store: &dyn Store) {
    let m = merchant(store, "A").await.id;
    let settings = GiftcardSettings {
        attempt_limit: 3,
        ..GiftcardSettings::default()
    };
    let expired = CodeTemplateFields {
        valid_until: Some(NOW - 1),
        ..fields("过期", 100)
    };
    let (_, expired) = offline_codes(store, m, expired, 1).await;
    let (_, used) = offline_codes(store, m, fields("已用", 100), 1).await;
    redeem(store, &settings, redeemer(m, "u0", "ip"), &used[0])
        .await
        .unwrap();
    let (template_id, voided) = offline_codes(store, m, fields("作废", 100), 1).await;
    store
        .delete_code_template(m, template_id, 1, &audit(m, "delete_code_template"))
        .await
        .unwrap();
    let (_, unknown) =
        offline_codes(store, merchant(store, "B").await.id, fields("别家", 100), 1).await;
    let classes = [
        ("unknown", &unknown[0]),
        ("used", &used[0]),
        ("voided", &voided[0]),
        ("expired", &expired[0]),
    ];
    for (class, code) in classes {
        let who = || redeemer(m, &format!("{class}-customer"), &format!("{class}-client"));
        for attempt in 1..=settings.attempt_limit {
            assert_eq!(
                redeem(store, &settings, who(), code).await,
                Err(Refusal::CodeRefused),
                "{class}, attempt {attempt}"
            );
        }
        assert!(
            matches!(
                redeem(store, &settings, who(), code).await,
                Err(Refusal::Locked { .. })
            ),
            "every {class} refusal counted against the limit"
        );
    }
}

/// 余额明细 names what was redeemed: each code's template, in one call.
pub async fn a_redeemed_codes_template_name_is_found_for_the_statement(store: &dyn Store) {
    let m = merchant(store, "A").await.id;
    let (template_id, _) = offline_codes(store, m, fields("中秋卡", 10_000), 2).await;
    let (second_id, _) = offline_codes(store, m, fields("端午卡", 500), 1).await;
    let (codes, _) = store
        .list_codes(m, template_id, None, Page::default())
        .await
        .unwrap();
    let (other, _) = store
        .list_codes(m, second_id, None, Page::default())
        .await
        .unwrap();
    let names = store
        .template_names_of_codes(m, &[other[0].id, codes[0].id, 999_999])
        .await
        .unwrap();
    assert_eq!(
        names,
        [
            (other[0].id, "端午卡".to_owned()),
            (codes[0].id, "中秋卡".to_owned())
        ]
    );
    let b = merchant(store, "B").await.id;
    assert!(store
        .template_names_of_codes(b, &[codes[0].id])
        .await
        .unwrap()
        .is_empty());
}
