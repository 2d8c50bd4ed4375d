//! 券点 and 朋友的券's stock: unit prices by condition, free credits
//! before paid, purchases confirmed once, racing stock purchases against a
//! balance, expired stock returned to the kind it came from, the shared
//! program's rules and the operators.

use crate::coupons::{active_program, cash_program_fields, claim_one};
use crate::fixtures::*;
use crate::NOW;
use kaquan_core::audit::Actor;
use kaquan_core::coupon::usecases::{self, ProgramError};
use kaquan_core::coupon::*;
use kaquan_core::credit::*;
use kaquan_core::store::*;

fn operator() -> Actor {
    Actor {
        staff_id: None,
        label: "platform".into(),
    }
}

/// A 无门槛代金券 shared with friends, usable everywhere and with other offers:
/// 0.2 券点 a unit.
pub(crate) fn shared_fields() -> CouponProgramFields {
    let mut fields = cash_program_fields(vec![]);
    fields.benefit = Benefit::Cash {
        least_cost_fen: 0,
        reduce_cost_fen: 500,
    };
    fields.title = "5元代金券".into();
    fields.can_use_with_other_discount = true;
    fields.shared = Some(SharedCoupon {
        cover_url: "/images/cover.png".into(),
        abstract_text: "进店立减 5 元".into(),
        detail_text: "全场通用，每单限用一张。".into(),
    });
    fields
}

pub(crate) async fn shared_program(
    store: &dyn Store,
    m: i64,
    fields: &CouponProgramFields,
) -> CouponProgram {
    usecases::create_coupon_program(store, m, fields, 0, &Actor::cli(), NOW)
        .await
        .expect("create shared program")
}

/// 开始投放, and the program as it is then.
pub(crate) async fn start(store: &dyn Store, m: i64, program_id: i64) -> CouponProgram {
    let cli = Actor::cli();
    let started =
        usecases::set_program_state(store, m, program_id, ProgramState::Active, &cli, NOW);
    assert!(started.await.unwrap());
    store.get_coupon_program(m, program_id).await.unwrap()
}

pub(crate) async fn grant(store: &dyn Store, m: i64, credits: i64) -> CreditTransaction {
    grant_credits(
        store,
        &GrantCredits {
            merchant_id: m,
            tenths: credits * TENTHS_PER_CREDIT,
            reason: "开业活动".into(),
            expected_free_tenths: None,
            actor: operator(),
            now: NOW,
        },
    )
    .await
    .expect("grant")
}

pub(crate) fn buy(m: i64, program_id: i64, units: i64) -> BuyStock {
    BuyStock {
        merchant_id: m,
        program_id,
        units,
        expected_quantity: None,
        actor: Actor::cli(),
        now: NOW,
    }
}

async fn location(store: &dyn Store, m: i64) -> i64 {
    let place = kaquan_core::location::LocationFields {
        name: "一号店".into(),
        address: "人民路 1 号".into(),
        phone: String::new(),
        hours: String::new(),
        enabled: true,
    };
    store
        .create_location(m, &place, &audit(m, "create_location"))
        .await
        .unwrap()
        .id
}

async fn held(store: &dyn Store, m: i64) -> (i64, i64) {
    let b = store.get_credit_balance(m).await.unwrap();
    (b.free_tenths, b.paid_tenths)
}

pub async fn stock_costs_credits_by_condition_and_free_credits_go_first(store: &dyn Store) {
    let m = merchant(store, "A").await.id;
    grant(store, m, 100).await;
    let plain = shared_program(store, m, &shared_fields()).await;
    let bought = buy_stock(store, &buy(m, plain.id, 400)).await.unwrap();
    assert_eq!(
        (
            bought.unit_price_tenths,
            bought.free_tenths,
            bought.paid_tenths
        ),
        (2, 800, 0)
    );
    assert_eq!(held(store, m).await, (200, 0));
    assert_eq!(
        store
            .get_coupon_program(m, plain.id)
            .await
            .unwrap()
            .quantity,
        400
    );

    // A minimum spend and a location scope: the highest price, 0.4.
    let location = location(store, m).await;
    let mut conditioned = shared_fields();
    conditioned.benefit = Benefit::Cash {
        least_cost_fen: 5_000,
        reduce_cost_fen: 500,
    };
    conditioned.use_all_locations = false;
    conditioned.location_ids = vec![location];
    let dear = shared_program(store, m, &conditioned).await;
    let short = buy_stock(store, &buy(m, dear.id, 100)).await.unwrap_err();
    assert!(
        matches!(
            short,
            CreditError::Stock(StockRefusal::Insufficient(Shortfall {
                needed_tenths: 400,
                held_tenths: 200
            }))
        ),
        "{short:?}"
    );
    assert_eq!(held(store, m).await, (200, 0), "a refusal moves nothing");

    let purchase = request_purchase(store, m, 100, &Actor::cli(), NOW)
        .await
        .unwrap();
    assert_eq!(
        (purchase.amount_fen, purchase.state),
        (10_000, PurchaseState::Requested)
    );
    assert_eq!(held(store, m).await, (200, 0), "a request is not money");
    let confirmed = store
        .decide_credit_purchase(m, purchase.id, true, &operator(), NOW)
        .await
        .unwrap()
        .expect("confirmed");
    assert_eq!(confirmed.state, PurchaseState::Confirmed);
    assert_eq!(held(store, m).await, (200, 1000));
    let mixed = buy_stock(store, &buy(m, dear.id, 100)).await.unwrap();
    assert_eq!(
        (
            mixed.unit_price_tenths,
            mixed.free_tenths,
            mixed.paid_tenths
        ),
        (4, 200, 200)
    );
    assert_eq!(held(store, m).await, (0, 800));

    let (lines, total) = store
        .list_credit_transactions(m, Page::default())
        .await
        .unwrap();
    assert_eq!(total, 5);
    let kinds: Vec<_> = lines
        .iter()
        .map(|t| (t.kind, t.holder, t.amount_tenths, t.balance_after_tenths))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (CreditTransactionKind::BuyStock, CreditKind::Paid, -200, 800),
            (CreditTransactionKind::BuyStock, CreditKind::Free, -200, 0),
            (
                CreditTransactionKind::Purchase,
                CreditKind::Paid,
                1000,
                1000
            ),
            (CreditTransactionKind::BuyStock, CreditKind::Free, -800, 200),
            (CreditTransactionKind::Grant, CreditKind::Free, 1000, 1000),
        ]
    );
    assert_verified(store).await;
}

pub async fn a_purchase_is_confirmed_or_cancelled_once(store: &dyn Store) {
    let m = merchant(store, "A").await.id;
    for credits in [99, 50_001] {
        assert!(matches!(
            request_purchase(store, m, credits, &Actor::cli(), NOW).await,
            Err(CreditError::Invalid(_))
        ));
    }
    let first = request_purchase(store, m, 100, &Actor::cli(), NOW)
        .await
        .unwrap();
    let second = request_purchase(store, m, 300, &Actor::cli(), NOW)
        .await
        .unwrap();
    let op = operator();
    let decide = |id, confirm| store.decide_credit_purchase(m, id, confirm, &op, NOW);
    assert!(decide(first.id, true).await.unwrap().is_some());
    assert!(
        decide(first.id, true).await.unwrap().is_none(),
        "confirmed twice"
    );
    assert!(
        decide(first.id, false).await.unwrap().is_none(),
        "cancelled after"
    );
    assert!(decide(second.id, false).await.unwrap().is_some());
    assert!(
        decide(second.id, true).await.unwrap().is_none(),
        "confirmed after cancel"
    );
    assert_eq!(held(store, m).await, (0, 1000));
    let other = merchant(store, "B").await.id;
    assert!(
        store
            .decide_credit_purchase(other, second.id, true, &operator(), NOW)
            .await
            .unwrap()
            .is_none(),
        "another merchant's purchase"
    );
    let requested = PurchaseFilter {
        merchant_id: Some(m),
        state: Some(PurchaseState::Cancelled),
    };
    let (cancelled, n) = store
        .list_credit_purchases(&requested, Page::default())
        .await
        .unwrap();
    assert_eq!((n, cancelled[0].id), (1, second.id));
    let (merchants, _) = store.list_merchant_credits(Page::default()).await.unwrap();
    let a = merchants.iter().find(|c| c.merchant_id == m).unwrap();
    assert_eq!((a.balance.paid_tenths, a.n_requested), (1000, 0));
    assert_verified(store).await;
}

pub async fn racing_stock_purchases_never_overdraw(store: &dyn Store) {
    let m = merchant(store, "A").await.id;
    // 6 券点 pays for 30 units at 0.2.
    grant(store, m, 6).await;
    let program = shared_program(store, m, &shared_fields()).await;
    let buys = (0..100).map(|_| async move { buy_stock(store, &buy(m, program.id, 1)).await });
    let results = futures_util::future::join_all(buys).await;
    let n_bought = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(n_bought, 30);
    assert!(results.iter().all(|r| matches!(
        r,
        Ok(_) | Err(CreditError::Stock(StockRefusal::Insufficient(_)))
    )));
    assert_eq!(held(store, m).await, (0, 0));
    assert_eq!(
        store
            .get_coupon_program(m, program.id)
            .await
            .unwrap()
            .quantity,
        30
    );
    assert_verified(store).await;
}

pub async fn expired_stock_returns_its_credits_to_the_kind_they_came_from(store: &dyn Store) {
    let m = merchant(store, "A").await.id;
    grant(store, m, 10).await;
    let purchase = request_purchase(store, m, 100, &Actor::cli(), NOW)
        .await
        .unwrap();
    store
        .decide_credit_purchase(m, purchase.id, true, &operator(), NOW)
        .await
        .unwrap();
    let mut fields = shared_fields();
    let last_day = NOW + 10 * 86_400;
    fields.validity = Validity::Fixed {
        begin: day_start(NOW),
        end: day_start(last_day) + 86_399,
    };
    let program = shared_program(store, m, &fields).await;
    // 100 units: 10 free credits, then 10 paid.
    let bought = buy_stock(store, &buy(m, program.id, 100)).await.unwrap();
    assert_eq!((bought.free_tenths, bought.paid_tenths), (100, 100));
    let program = start(store, m, program.id).await;
    for i in 0..60 {
        let customer = customer_id(store, m, &format!("c{i}")).await;
        claim_one(store, &program, customer, NOW).await.unwrap();
    }
    assert_eq!(
        store.return_expired_stock(last_day, 100).await.unwrap(),
        0,
        "still claimable on its last day"
    );
    let after = last_day + 86_400;
    assert_eq!(store.return_expired_stock(after, 100).await.unwrap(), 1);
    // 40 unused units cost 80 tenths, all of them paid ones.
    assert_eq!(held(store, m).await, (0, 900 + 80));
    assert_eq!(
        store.return_expired_stock(after, 100).await.unwrap(),
        0,
        "once"
    );
    let program = store.get_coupon_program(m, program.id).await.unwrap();
    assert_eq!((program.quantity, program.n_claimed), (60, 60));
    let mut late = buy(m, program.id, 1);
    late.now = after;
    assert!(matches!(
        buy_stock(store, &late).await,
        Err(CreditError::Stock(StockRefusal::ProgramClosed))
    ));

    // A program bought with free credits only gives free ones back.
    let free_only = shared_program(store, m, &fields).await;
    grant(store, m, 1).await;
    buy_stock(store, &buy(m, free_only.id, 5)).await.unwrap();
    assert_eq!(held(store, m).await, (0, 980));
    assert_eq!(store.return_expired_stock(after, 100).await.unwrap(), 1);
    assert_eq!(held(store, m).await, (10, 980));
    assert_verified(store).await;
}

fn invalid_state(r: Result<bool, ProgramError>) -> Vec<String> {
    match r {
        Err(ProgramError::Invalid(errors)) => errors,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

pub async fn shared_programs_are_made_by_their_own_rules(store: &dyn Store) {
    let m = merchant(store, "A").await.id;
    let invalid = |r: Result<CouponProgram, ProgramError>| match r {
        Err(ProgramError::Invalid(errors)) => errors,
        other => panic!("expected a refusal, got {other:?}"),
    };
    let create = |fields: CouponProgramFields, quantity| async move {
        usecases::create_coupon_program(store, m, &fields, quantity, &Actor::cli(), NOW).await
    };
    let errors = invalid(create(shared_fields(), 10).await);
    assert!(errors[0].contains("券点"), "{errors:?}");
    let mut bare = shared_fields();
    bare.shared = Some(SharedCoupon::default());
    bare.benefit = Benefit::Discount {
        percent_off: 20,
        cap_fen: None,
    };
    bare.validity = Validity::Relative {
        term_days: 91,
        begin_after_days: 0,
        hard_end: None,
    };
    let errors = invalid(create(bare, 0).await);
    for expected in ["代金券", "简介", "图文详情", "90 天"] {
        assert!(
            errors.iter().any(|e| e.contains(expected)),
            "{expected}: {errors:?}"
        );
    }
    let mut ninety = shared_fields();
    ninety.validity = Validity::Fixed {
        begin: day_start(NOW),
        end: day_start(NOW) + 90 * 86_400 - 1,
    };
    assert!(create(ninety.clone(), 0).await.is_ok());
    ninety.validity = Validity::Fixed {
        begin: day_start(NOW),
        end: day_start(NOW) + 91 * 86_400 - 1,
    };
    assert!(create(ninety, 0).await.is_err());
    let mut gives = cash_program_fields(vec![]);
    gives.give_program_id = Some(9_999_999);
    let errors = invalid(create(gives, 5).await);
    assert!(
        errors.iter().any(|e| e.contains("核销后赠送")),
        "{errors:?}"
    );
}

pub async fn a_shared_program_needs_stock_and_a_cover_before_it_is_given_out(store: &dyn Store) {
    let m = merchant(store, "A").await.id;
    let mut uncovered = shared_fields();
    uncovered.shared.as_mut().unwrap().cover_url.clear();
    let program = shared_program(store, m, &uncovered).await;
    let cli = Actor::cli();
    let activate =
        || usecases::set_program_state(store, m, program.id, ProgramState::Active, &cli, NOW);
    let errors = invalid_state(activate().await);
    assert!(errors.iter().any(|e| e.contains("库存为 0")), "{errors:?}");
    assert!(errors.iter().any(|e| e.contains("封面")), "{errors:?}");
    assert!(matches!(
        usecases::change_stock(store, m, program.id, 10, &Actor::cli(), NOW).await,
        Err(ProgramError::Invalid(_))
    ));
    grant(store, m, 1).await;
    buy_stock(store, &buy(m, program.id, 5)).await.unwrap();
    let errors = invalid_state(activate().await);
    assert_eq!(errors.len(), 1, "{errors:?}");
    let cover = kaquan_core::coupon::usage::CouponLogo {
        picture: kaquan_core::coupon::usage::CouponPicture::Cover,
        merchant_id: m,
        program_id: program.id,
        content_type: "image/png",
        bytes: b"png".to_vec(),
        url: "/m/coupon-covers/1".into(),
        now: NOW,
    };
    store
        .put_coupon_logo(&cover, &audit(m, "upload_coupon_cover"))
        .await
        .unwrap();
    assert_eq!(
        store
            .get_coupon_logo(program.id, kaquan_core::coupon::usage::CouponPicture::Cover)
            .await
            .unwrap(),
        Some(("image/png".into(), b"png".to_vec()))
    );
    assert!(activate().await.unwrap());
    let mut stale = buy(m, program.id, 1);
    stale.expected_quantity = Some(0);
    assert!(matches!(
        buy_stock(store, &stale).await,
        Err(CreditError::Stock(StockRefusal::QuantityChanged))
    ));
    let ordinary = active_program(store, m, &cash_program_fields(vec![]), 5).await;
    assert!(matches!(
        buy_stock(store, &buy(m, ordinary.id, 1)).await,
        Err(CreditError::Stock(StockRefusal::NotShared))
    ));
    assert!(matches!(
        buy_stock(store, &buy(m, 9_999_999, 1)).await,
        Err(CreditError::Stock(StockRefusal::ProgramNotFound))
    ));
    let other = merchant(store, "B").await.id;
    assert!(matches!(
        buy_stock(store, &buy(other, program.id, 1)).await,
        Err(CreditError::Stock(StockRefusal::ProgramNotFound))
    ));
    assert!(matches!(
        buy_stock(store, &buy(m, program.id, 0)).await,
        Err(CreditError::Stock(StockRefusal::BadUnits))
    ));
    assert_verified(store).await;
}

pub async fn stock_changes_by_hand_stay_between_what_was_claimed_and_the_limit(store: &dyn Store) {
    let m = merchant(store, "A").await.id;
    let program = active_program(store, m, &cash_program_fields(vec![]), 1).await;
    let cli = Actor::cli();
    let change = |delta| usecases::change_stock(store, m, program.id, delta, &cli, NOW);
    for delta in [0, STOCK_MAX + 1, -(STOCK_MAX + 1), 2 - STOCK_MAX, -2] {
        assert!(!change(delta).await.unwrap(), "{delta}");
    }
    assert!(change(-1).await.unwrap(), "down to nothing left");
    assert!(change(STOCK_MAX).await.unwrap(), "up to the limit");
    assert!(!change(1).await.unwrap(), "past the limit");
    let program = store.get_coupon_program(m, program.id).await.unwrap();
    assert_eq!(program.quantity, STOCK_MAX);
}

pub async fn operators_are_named_staff_and_every_change_is_audited(store: &dyn Store) {
    let m = merchant(store, "A").await.id;
    let role = store.list_roles(m).await.unwrap()[0].id;
    let owner = store
        .create_staff(&crate::staff::new_staff(m, role, "boss"), NOW)
        .await
        .unwrap()
        .id;
    assert!(!store.is_operator(owner).await.unwrap());
    store
        .set_operator(owner, true, &audit(m, "set_operator"))
        .await
        .unwrap();
    store
        .set_operator(owner, true, &audit(m, "set_operator"))
        .await
        .unwrap();
    assert!(store.is_operator(owner).await.unwrap());
    assert_eq!(store.list_operators().await.unwrap(), vec![owner]);
    store
        .set_operator(owner, false, &audit(m, "set_operator"))
        .await
        .unwrap();
    assert!(store.list_operators().await.unwrap().is_empty());
    grant(store, m, 3).await;
    assert!(matches!(
        grant_credits(
            store,
            &GrantCredits {
                merchant_id: m,
                tenths: 0,
                reason: "x".into(),
                expected_free_tenths: None,
                actor: operator(),
                now: NOW
            }
        )
        .await,
        Err(CreditError::Invalid(_))
    ));
    // A grant made on the balance seen goes in once.
    let seen = GrantCredits {
        merchant_id: m,
        tenths: 5,
        reason: "活动".into(),
        expected_free_tenths: Some(30),
        actor: operator(),
        now: NOW,
    };
    grant_credits(store, &seen).await.unwrap();
    assert!(matches!(
        grant_credits(store, &seen).await,
        Err(CreditError::Store(kaquan_core::StoreError::Conflict(
            kaquan_core::Conflict::CreditsChanged
        )))
    ));
    assert_eq!(held(store, m).await, (35, 0));
    let (records, _) = store
        .search_audit(
            m,
            &kaquan_core::audit::AuditFilter {
                actions: vec!["grant_credits".into()],
                ..Default::default()
            },
            Page::default(),
        )
        .await
        .unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].entry.actor.label, "platform");
    let events = store.list_events(m, Page::default()).await.unwrap().0;
    assert!(events
        .iter()
        .any(|e| e.event_type == kaquan_core::event::EventType::CreditsChanged));
}
