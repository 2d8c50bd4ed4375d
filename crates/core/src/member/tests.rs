use super::operation::*;
use super::*;

fn program() -> ProgramFields {
    ProgramFields {
        discount_percent_off: 5,
        points: Some(PointsRule {
            cost_money_unit: 100,
            increase_bonus: 1,
            max_increase_bonus: 500,
            init_increase_bonus: 10,
            cost_bonus_unit: 100,
            reduce_money: 100,
            least_money_to_use_bonus: 1000,
            max_reduce_bonus: 2000,
        }),
        tiers: vec![
            Tier {
                name: "银卡".into(),
                threshold: 100,
                discount_percent_off: 10,
            },
            Tier {
                name: "金卡".into(),
                threshold: 1000,
                discount_percent_off: 20,
            },
        ],
        ..ProgramFields::default()
    }
}

fn member(points: i64, balance_fen: i64) -> Member {
    Member {
        id: 1,
        merchant_id: 1,
        program_id: 1,
        customer_id: 1,
        external_id: None,
        phone: "13800000000".into(),
        name: String::new(),
        birthday: None,
        gender: None,
        tier: 0,
        points_earned: 0,
        spend_fen: 0,
        points,
        balance_fen,
        activated_at: 0,
    }
}

fn pay(amount_fen: i64, use_points: i64, balance_fen: i64) -> ReportPayment {
    ReportPayment {
        member: MemberRef::Id(1),
        amount_fen,
        use_points,
        balance_fen,
        reference: "o-1".into(),
        location_id: None,
    }
}

#[test]
fn a_payment_takes_the_discount_then_points_then_balance_and_earns_on_what_was_paid() {
    let plan = plan_payment(
        &program(),
        ProgramState::Active,
        &member(500, 5000),
        &pay(10_000, 250, 2000),
    )
    .unwrap();
    assert_eq!(plan.discount_fen, 500, "9.5折 of ¥100");
    assert_eq!(plan.points_used, 200, "whole units of 100 points");
    assert_eq!(plan.points_deduction_fen, 200);
    assert_eq!(plan.balance_fen, 2000);
    assert_eq!(plan.paid_fen, 9300);
    assert_eq!(plan.points_earned, 93, "1 point per ¥1 paid");
    assert_eq!(plan.tier_after, 0, "93 points earned is below 银卡");
}

#[test]
fn earning_is_capped_and_crossing_a_threshold_raises_the_tier_in_the_same_plan() {
    let m = Member {
        points_earned: 90,
        ..member(0, 0)
    };
    let plan = plan_payment(&program(), ProgramState::Active, &m, &pay(1000, 0, 0)).unwrap();
    assert_eq!(plan.points_earned, 9);
    assert_eq!(plan.tier_after, 0, "99 earned: one short");
    let plan = plan_payment(&program(), ProgramState::Active, &m, &pay(1100, 0, 0)).unwrap();
    assert_eq!(plan.points_earned, 10);
    assert_eq!(plan.tier_after, 1, "exactly 100 earned reaches 银卡");
    let plan = plan_payment(&program(), ProgramState::Active, &m, &pay(10_000_000, 0, 0)).unwrap();
    assert_eq!(plan.points_earned, 500, "the per-payment cap");
    assert_eq!(plan.tier_after, 1);
    // A member's tier never falls by a payment, and its discount applies.
    let gold = Member { tier: 2, ..m };
    let plan = plan_payment(&program(), ProgramState::Active, &gold, &pay(1000, 0, 0)).unwrap();
    assert_eq!((plan.tier_after, plan.discount_fen), (2, 200));
}

#[test]
fn points_use_keeps_the_minimum_order_the_maximum_and_the_members_points() {
    let p = program();
    let run = |m: &Member, ask: ReportPayment| plan_payment(&p, ProgramState::Active, m, &ask);
    let rich = member(100_000, 0);
    // ¥10.00 order, 9.5折: 950 fen payable, below the 1000 minimum.
    assert_eq!(
        run(&rich, pay(1000, 100, 0)),
        Err(MemberRefusal::PointsBelowMinimumOrder)
    );
    assert!(run(&rich, pay(1053, 100, 0)).is_ok(), "1001 payable");
    assert_eq!(
        run(&rich, pay(1_000_000, 2100, 0)),
        Err(MemberRefusal::PointsOverMaximum)
    );
    assert!(run(&rich, pay(1_000_000, 2000, 0)).is_ok());
    assert_eq!(
        run(&member(199, 0), pay(10_000, 200, 0)),
        Err(MemberRefusal::InsufficientPoints)
    );
    // 20 units of ¥1 off a ¥15.79 payable order: more than the order.
    assert_eq!(
        run(&rich, pay(1662, 2000, 0)),
        Err(MemberRefusal::PointsExceedOrder)
    );
    let off = ProgramFields {
        points: None,
        ..program()
    };
    assert_eq!(
        plan_payment(&off, ProgramState::Active, &rich, &pay(10_000, 100, 0)),
        Err(MemberRefusal::PointsDisabled)
    );
    let plan = plan_payment(&off, ProgramState::Active, &rich, &pay(10_000, 0, 0)).unwrap();
    assert_eq!(plan.points_earned, 0);
}

#[test]
fn balance_pays_at_most_what_is_left_and_what_is_held() {
    let p = program();
    let run = |m: &Member, ask: ReportPayment| plan_payment(&p, ProgramState::Active, m, &ask);
    assert_eq!(
        run(&member(0, 100_000), pay(10_000, 0, 9501)),
        Err(MemberRefusal::BalanceExceedsOrder)
    );
    assert!(run(&member(0, 100_000), pay(10_000, 0, 9500)).is_ok());
    assert_eq!(
        run(&member(0, 9499), pay(10_000, 0, 9500)),
        Err(MemberRefusal::InsufficientBalance)
    );
    let no_stored_value = ProgramFields {
        stored_value: false,
        ..program()
    };
    assert_eq!(
        plan_payment(
            &no_stored_value,
            ProgramState::Active,
            &member(0, 100),
            &pay(1000, 0, 1)
        ),
        Err(MemberRefusal::StoredValueDisabled)
    );
    assert_eq!(
        plan_payment(
            &program(),
            ProgramState::Disabled,
            &member(0, 0),
            &pay(1000, 0, 0)
        ),
        Err(MemberRefusal::ProgramDisabled)
    );
}

fn payment() -> MemberOperation {
    MemberOperation {
        id: 7,
        merchant_id: 1,
        member_id: 1,
        kind: OperationKind::Payment,
        reference: "o-1".into(),
        payment_id: None,
        location_id: None,
        amount_fen: 10_000,
        discount_fen: 500,
        points_used: 200,
        points_deduction_fen: 200,
        balance_fen: 2000,
        bonus_fen: 0,
        points_earned: 93,
        points_after: 393,
        balance_after_fen: 3000,
        tier_after: 0,
        refunded_fen: 0,
        reason: String::new(),
        created_by: "api".into(),
        created_at: 0,
    }
}

#[test]
fn partial_refunds_add_up_to_exactly_what_a_full_refund_gives_back() {
    let full = plan_refund(&payment(), 9500, 1000).unwrap();
    assert_eq!(
        (
            full.points_returned,
            full.balance_returned_fen,
            full.points_reversed,
            full.spend_reversed_fen
        ),
        (200, 2000, 93, 9300)
    );
    let (mut paid, mut totals) = (payment(), (0, 0, 0, 0));
    for amount in [3333, 3333, 2834] {
        let part = plan_refund(&paid, amount, 1000).unwrap();
        totals.0 += part.points_returned;
        totals.1 += part.balance_returned_fen;
        totals.2 += part.points_reversed;
        totals.3 += part.spend_reversed_fen;
        paid.refunded_fen = part.refunded_after;
    }
    assert_eq!(totals, (200, 2000, 93, 9300));
    assert_eq!(
        plan_refund(&paid, 1, 1000),
        Err(MemberRefusal::RefundExceedsPayment)
    );
    assert_eq!(
        plan_refund(&payment(), 9501, 1000),
        Err(MemberRefusal::RefundExceedsPayment)
    );
    assert_eq!(
        plan_refund(&payment(), 0, 1000),
        Err(MemberRefusal::RefundExceedsPayment)
    );
}

#[test]
fn a_refund_never_takes_back_more_points_than_the_member_then_holds() {
    // The member spent the earned points elsewhere: 10 left, 200 returned.
    let plan = plan_refund(&payment(), 9500, 10).unwrap();
    assert_eq!(plan.points_reversed, 93);
    let plan = plan_refund(
        &MemberOperation {
            points_used: 0,
            points_deduction_fen: 0,
            ..payment()
        },
        9500,
        10,
    )
    .unwrap();
    assert_eq!(plan.points_reversed, 10, "no more than held");
}

#[test]
fn one_operation_is_one_message_merged_when_both_assets_moved() {
    let op = payment();
    let notice = op.notice().unwrap();
    assert_eq!(notice.kind, NoticeKind::Merged);
    assert_eq!(
        (notice.points_delta, notice.balance_delta_fen),
        (-107, -2000)
    );
    assert_eq!(
        notice.text_zh(),
        "积分 -107，当前 393；余额 -¥20.00，当前 ¥30.00"
    );
    let cash_only = MemberOperation {
        balance_fen: 0,
        ..payment()
    };
    assert_eq!(cash_only.notice().unwrap().kind, NoticeKind::Points);
    let no_points = MemberOperation {
        points_used: 0,
        points_earned: 0,
        ..payment()
    };
    assert_eq!(no_points.notice().unwrap().kind, NoticeKind::Balance);
    let nothing = MemberOperation {
        points_used: 0,
        points_earned: 0,
        balance_fen: 0,
        ..payment()
    };
    assert_eq!(nothing.notice(), None);
    assert_eq!(nothing.cash_fen(), 9300);
    let recharge = MemberOperation {
        kind: OperationKind::Recharge,
        balance_fen: 10_000,
        bonus_fen: 1000,
        points_used: 0,
        points_earned: 0,
        ..payment()
    };
    assert_eq!(recharge.balance_delta_fen(), 11_000);
    assert_eq!(recharge.notice().unwrap().kind, NoticeKind::Balance);
}

#[test]
fn card_pictures_are_https_addresses_or_ours() {
    let with = |background: &str, logo: &str| {
        ProgramFields {
            background_pic_url: background.into(),
            logo_url: logo.into(),
            ..program()
        }
        .check()
    };
    assert_eq!(with("", ""), Ok(()));
    assert_eq!(
        with(
            "https://cdn.example.com/bg.jpg",
            "/m/member-card-pictures/3/logo?v=ab12"
        ),
        Ok(())
    );
    for bad in [
        "javascript:alert(1)",
        "http://cdn.example.com/bg.jpg",
        "https://cdn.example.com/a b.jpg",
        "https://x\"onerror=\"alert(1)",
        "/m/coupon-logos/3",
    ] {
        assert!(
            with(bad, "").unwrap_err().starts_with("卡面背景图"),
            "{bad}"
        );
        assert!(with("", bad).unwrap_err().starts_with("商户 logo"), "{bad}");
    }
    let long = format!("https://cdn.example.com/{}", "a".repeat(URL_CHARS_MAX));
    assert!(with(&long, "").is_err());
    assert_eq!(CardPicture::parse("logo"), Some(CardPicture::Logo));
    assert_eq!(
        CardPicture::parse(CardPicture::Background.code()),
        Some(CardPicture::Background)
    );
    assert_eq!(CardPicture::parse("banner"), None);
}

#[test]
fn programs_check_their_fields_in_chinese() {
    assert_eq!(program().check(), Ok(()));
    let bad = |f: ProgramFields| f.check().unwrap_err();
    assert_eq!(
        bad(ProgramFields {
            color: "green".into(),
            ..program()
        }),
        "卡面颜色须为 #RRGGBB"
    );
    assert_eq!(
        bad(ProgramFields {
            title: " ".into(),
            ..program()
        }),
        "会员卡名称不能为空"
    );
    let mut tiers = program();
    tiers.tiers.swap(0, 1);
    assert_eq!(bad(tiers), "等级的门槛须从低到高，且各不相同");
    let mut rule = program();
    rule.points.as_mut().unwrap().cost_money_unit = 0;
    assert!(bad(rule).starts_with("每消费金额（分）须在 1–"));
    let links = ProgramFields {
        custom_links: vec![CustomLink {
            name: "商城".into(),
            url: "javascript:alert(1)".into(),
        }],
        ..program()
    };
    assert_eq!(bad(links), "自定义入口链接须以 http:// 或 https:// 开头");
    let many = ProgramFields {
        custom_fields: vec![
            CustomField {
                name: "等级".into(),
                kind: FieldKind::Tier
            };
            4
        ],
        ..program()
    };
    assert_eq!(bad(many), "自定义字段和自定义入口各最多 3 个");
    assert_eq!(
        bad(ProgramFields {
            number_prefix: "VIP-".into(),
            ..program()
        }),
        "会员号前缀最多 6 个字母或数字"
    );
}

#[test]
fn member_numbers_are_the_prefix_and_the_padded_id_and_read_back() {
    let p = ProgramFields {
        number_prefix: "VIP".into(),
        number_length: 8,
        ..program()
    };
    assert_eq!(p.member_number(42), "VIP00000042");
    assert_eq!(p.parse_member_number(" VIP00000042 "), Some(42));
    assert_eq!(p.parse_member_number("VIP0042"), None, "too short");
    assert_eq!(p.parse_member_number("XIP00000042"), None);
    assert_eq!(p.parse_member_number("VIP0000004a"), None);
    assert_eq!(p.parse_member_number("VIP00000000"), None);
}

#[test]
fn lists_round_trip_through_their_line_format() {
    let p = ProgramFields {
        custom_fields: vec![CustomField {
            name: "等级".into(),
            kind: FieldKind::Tier,
        }],
        custom_links: vec![CustomLink {
            name: "商城".into(),
            url: "https://shop.example/?a=1".into(),
        }],
        activation_fields: ActivationField::ALL.to_vec(),
        ..program()
    };
    assert_eq!(
        lines::parse_tiers(&lines::tiers(&p.tiers)),
        Some(p.tiers.clone())
    );
    assert_eq!(
        lines::parse_fields(&lines::fields(&p.custom_fields)),
        Some(p.custom_fields.clone())
    );
    assert_eq!(
        lines::parse_links(&lines::links(&p.custom_links)),
        Some(p.custom_links.clone())
    );
    assert_eq!(
        lines::parse_activation(&lines::activation(&p.activation_fields)),
        Some(p.activation_fields.clone())
    );
    assert_eq!(lines::parse_tiers(""), Some(vec![]));
    assert_eq!(lines::parse_tiers("x\t1"), None);
}

#[test]
fn a_tier_discount_replaces_the_programs_and_zero_keeps_it() {
    let mut p = program();
    assert_eq!(p.discount_for(0), 5);
    assert_eq!(p.discount_for(1), 10);
    assert_eq!(p.discount_for(2), 20);
    assert_eq!(p.tier_name(2), "金卡");
    assert_eq!(p.tier_name(0), "");
    p.tiers[0].discount_percent_off = 0;
    assert_eq!(p.discount_for(1), 5);
    p.tier_basis = TierBasis::Spend;
    assert_eq!(p.tier_reached(5000, 999), 1);
    assert_eq!(p.tier_reached(0, 1000), 2);
}

#[test]
fn a_refund_takes_a_tier_down_only_under_the_rule_and_never_up() {
    let mut p = program();
    p.tier_basis = TierBasis::Spend;
    // Spend 1000 reaches tier 2; a refund leaves 999: tier 1 by the rule.
    assert_eq!(p.tier_after_refund(2, 0, 999), 2, "off: tiers never fall");
    p.downgrade_on_refund = true;
    assert_eq!(p.tier_after_refund(2, 0, 999), 1);
    assert_eq!(p.tier_after_refund(2, 0, 1000), 2);
    assert_eq!(p.tier_after_refund(2, 0, 0), 0);
    // A tier held above what the totals reach is never raised by a refund.
    assert_eq!(p.tier_after_refund(1, 0, 5000), 1);
}

#[test]
fn birthdays_are_real_dates_from_1900() {
    assert_eq!(check_birthday(" 1990-05-01 "), Ok("1990-05-01".to_owned()));
    for bad in ["1990-02-30", "1899-12-31", "1990/05/01", "90-05-01", ""] {
        assert!(check_birthday(bad).is_err(), "{bad}");
    }
}

#[test]
fn point_adjustments_are_bounded_both_ways_and_never_overflow() {
    assert_eq!(check_points_delta(-5), Ok(-5));
    assert_eq!(check_points_delta(POINTS_MAX), Ok(POINTS_MAX));
    assert_eq!(check_points_delta(-POINTS_MAX), Ok(-POINTS_MAX));
    for bad in [0, POINTS_MAX + 1, -POINTS_MAX - 1, i64::MIN, i64::MAX] {
        assert!(check_points_delta(bad).is_err(), "{bad}");
    }
}

#[test]
fn an_expiry_notice_names_the_day_the_points_lapse_by() {
    // 2026-06-15 12:00 in Shanghai.
    let june = 1_781_496_000;
    let by = |expiry| {
        let event = super::expiry::expiring_event(&member(30, 0), "VIP1", 30, expiry, june);
        let data: serde_json::Value = serde_json::from_str(&event.data).unwrap();
        assert_eq!(data["points"], 30);
        data["expires_by"].as_str().unwrap().to_owned()
    };
    assert_eq!(by(PointsExpiry::YearEnd), "2026-12-31");
    // Rolling: the notice goes out a week before they lapse.
    assert_eq!(by(PointsExpiry::Rolling { months: 12 }), "2026-06-22");
}
