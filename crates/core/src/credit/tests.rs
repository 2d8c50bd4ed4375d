use super::*;
use crate::coupon::tests::{cash_fields, program};
use crate::coupon::{ProgramState, SharedCoupon, Validity, STOCK_MAX};

fn purchase(units: i64, price: i64, free: i64, paid: i64) -> StockPurchase {
    StockPurchase {
        id: 0,
        merchant_id: 1,
        program_id: 1,
        units,
        unit_price_tenths: price,
        free_tenths: free,
        paid_tenths: paid,
        created_by: String::new(),
        created_at: 0,
    }
}

#[test]
fn a_coupon_without_conditions_costs_two_tenths_and_any_condition_four() {
    let check = |least_cost_fen: i64, all_locations: bool, combinable: bool, expected: i64| {
        let mut fields = cash_fields();
        fields.benefit = Benefit::Cash {
            least_cost_fen,
            reduce_cost_fen: 1_000,
        };
        fields.use_all_locations = all_locations;
        fields.location_ids = if all_locations { vec![] } else { vec![1] };
        fields.can_use_with_other_discount = combinable;
        assert_eq!(
            unit_price_tenths(&fields),
            expected,
            "least {least_cost_fen}, all locations {all_locations}, combinable {combinable}"
        );
    };
    check(0, true, true, 2);
    check(10_000, true, true, 4);
    check(0, false, true, 4);
    check(0, true, false, 4);
    check(10_000, false, false, 4);
}

#[test]
fn free_credits_pay_first_and_a_shortfall_names_both_sides() {
    let held = |free, paid| CreditBalance {
        merchant_id: 1,
        free_tenths: free,
        paid_tenths: paid,
    };
    assert_eq!(split_cost(30, &held(50, 10)), Ok((30, 0)));
    assert_eq!(split_cost(50, &held(50, 10)), Ok((50, 0)));
    assert_eq!(split_cost(55, &held(50, 10)), Ok((50, 5)));
    assert_eq!(split_cost(60, &held(50, 10)), Ok((50, 10)));
    assert_eq!(split_cost(8, &held(0, 10)), Ok((0, 8)));
    assert_eq!(
        split_cost(61, &held(50, 10)),
        Err(Shortfall {
            needed_tenths: 61,
            held_tenths: 60
        })
    );
}

#[test]
fn unused_stock_returns_the_last_bought_units_paid_credits_first() {
    // 100 units at 0.2 paid 15 free + 5 paid; then 50 at 0.4 all paid.
    let bought = [purchase(100, 2, 150, 50), purchase(50, 4, 0, 200)];
    assert_eq!(stock_return(&bought, 0), (0, 0));
    assert_eq!(stock_return(&bought, 10), (0, 40));
    assert_eq!(stock_return(&bought, 50), (0, 200));
    // 20 of the first purchase: 40 tenths, its 50 paid cover them.
    assert_eq!(stock_return(&bought, 70), (0, 240));
    // All 100 of the first: 200 tenths, 50 paid and 150 free.
    assert_eq!(stock_return(&bought, 150), (150, 250));
    assert_eq!(stock_return(&bought, 151), (150, 250));
    assert_eq!(stock_return(&bought, -1), (0, 0));
    // One purchase paid for with free credits alone gives free back.
    assert_eq!(stock_return(&[purchase(10, 2, 20, 0)], 3), (6, 0));
}

#[test]
fn credits_show_in_whole_and_tenths() {
    for (tenths, text) in [(0, "0"), (2, "0.2"), (10, "1"), (805, "80.5"), (-4, "-0.4")] {
        assert_eq!(format_credits(tenths), text);
    }
}

#[test]
fn postings_of_a_credit_transaction_sum_to_zero() {
    for kind in CreditTransactionKind::ALL {
        for holder in CreditKind::ALL {
            let [(a, x), (b, y)] = credit_postings(kind, holder, -7);
            assert_eq!(x + y, 0);
            assert_eq!(b, kind.counter_account());
            assert!(matches!(
                a,
                CreditAccountKind::Free | CreditAccountKind::Paid
            ));
            assert!(!matches!(
                b,
                CreditAccountKind::Free | CreditAccountKind::Paid
            ));
            assert_eq!(a, CreditAccountKind::holder(holder));
        }
    }
}

#[test]
fn purchases_and_grants_keep_their_limits() {
    assert!(check_purchase_credits(99).is_err());
    assert!(check_purchase_credits(100).is_ok());
    assert!(check_purchase_credits(PURCHASE_CREDITS_MAX).is_ok());
    assert!(check_purchase_credits(PURCHASE_CREDITS_MAX + 1).is_err());
    assert!(check_grant(1000, "开业活动").is_ok());
    assert!(check_grant(0, "开业活动").is_err());
    assert!(check_grant(1000, " ").is_err());
    assert!(check_grant(GRANT_CREDITS_MAX * TENTHS_PER_CREDIT, "x").is_ok());
    assert!(check_grant(GRANT_CREDITS_MAX * TENTHS_PER_CREDIT + 1, "x").is_err());
}

#[test]
fn codes_read_back_as_what_they_name() {
    for k in CreditKind::ALL {
        assert_eq!(CreditKind::parse(k.code()), Some(k));
    }
    for k in CreditTransactionKind::ALL {
        assert_eq!(CreditTransactionKind::parse(k.code()), Some(k));
    }
    for k in CreditAccountKind::ALL {
        assert_eq!(CreditAccountKind::parse(k.code()), Some(k));
    }
    for k in PurchaseState::ALL {
        assert_eq!(PurchaseState::parse(k.code()), Some(k));
    }
}

fn shared(mut fields: crate::coupon::CouponProgramFields) -> crate::coupon::CouponProgramFields {
    fields.shared = Some(SharedCoupon {
        cover_url: "/m/coupon-covers/1".into(),
        abstract_text: "进店立减".into(),
        detail_text: "全场通用".into(),
    });
    fields
}

#[test]
fn stock_is_bought_only_for_an_open_shared_program_as_it_was_seen() {
    let now = crate::coupon::tests::at("2026-12-10 12:00");
    let held = CreditBalance {
        merchant_id: 1,
        free_tenths: 100,
        paid_tenths: 50,
    };
    let buy = |units, expected_quantity| BuyStock {
        merchant_id: 1,
        program_id: 1,
        units,
        expected_quantity,
        actor: crate::audit::Actor::cli(),
        now,
    };
    // cash_fields: listed locations and 满100减20, so 0.4 a unit.
    let open = program(shared(cash_fields()), ProgramState::Active);
    assert_eq!(
        check_buy(Some(&open), &buy(30, Some(100)), &held),
        Ok((4, (100, 20)))
    );
    assert_eq!(
        check_buy(Some(&open), &buy(30, None), &held),
        Ok((4, (100, 20)))
    );
    assert_eq!(
        check_buy(Some(&open), &buy(38, None), &held),
        Err(StockRefusal::Insufficient(Shortfall {
            needed_tenths: 152,
            held_tenths: 150
        }))
    );
    assert_eq!(
        check_buy(None, &buy(1, None), &held),
        Err(StockRefusal::ProgramNotFound)
    );
    let ordinary = program(cash_fields(), ProgramState::Active);
    assert_eq!(
        check_buy(Some(&ordinary), &buy(1, None), &held),
        Err(StockRefusal::NotShared)
    );
    let ended = program(shared(cash_fields()), ProgramState::Ended);
    assert_eq!(
        check_buy(Some(&ended), &buy(1, None), &held),
        Err(StockRefusal::ProgramClosed)
    );
    let mut past = shared(cash_fields());
    past.validity = Validity::Fixed {
        begin: now - 10 * 86_400,
        end: now - 1,
    };
    let past = program(past, ProgramState::Active);
    assert_eq!(
        check_buy(Some(&past), &buy(1, None), &held),
        Err(StockRefusal::ProgramClosed)
    );
    assert_eq!(
        check_buy(Some(&open), &buy(1, Some(99)), &held),
        Err(StockRefusal::QuantityChanged)
    );
    // The program holds 100: at most STOCK_MAX - 100 more.
    let rich = CreditBalance {
        merchant_id: 1,
        free_tenths: i64::MAX / 4,
        paid_tenths: 0,
    };
    assert!(check_buy(Some(&open), &buy(STOCK_MAX - 100, None), &rich).is_ok());
    for units in [STOCK_MAX - 99, 0, -1] {
        assert_eq!(
            check_buy(Some(&open), &buy(units, None), &rich),
            Err(StockRefusal::BadUnits),
            "{units}"
        );
    }
}
