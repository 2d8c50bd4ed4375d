use super::usage::{
    check_location, check_usable, check_verifier_location, format_day_number, local_day_number,
    Coupon, CouponRefusal, CouponSource, CouponState, CouponStatus,
};
use super::*;
use crate::clock::{format_datetime, parse_date};

fn date(text: &str) -> time::Date {
    parse_date(text).unwrap()
}

pub(crate) fn at(text: &str) -> i64 {
    // `YYYY-MM-DD HH:MM` in China time.
    let (day, clock) = text.split_once(' ').unwrap();
    let (h, m) = clock.split_once(':').unwrap();
    start_of_day(date(day)) + h.parse::<i64>().unwrap() * 3600 + m.parse::<i64>().unwrap() * 60
}

pub(crate) fn cash_fields() -> CouponProgramFields {
    CouponProgramFields {
        benefit: Benefit::Cash {
            least_cost_fen: 10_000,
            reduce_cost_fen: 2_000,
        },
        title: "满100减20".into(),
        sub_title: String::new(),
        brand_name: "果园".into(),
        logo_url: String::new(),
        color: "Color010".into(),
        notice: "结账时出示".into(),
        description: String::new(),
        service_phone: String::new(),
        get_limit: 1,
        use_limit: 1,
        validity: fixed_validity(date("2026-12-01"), date("2026-12-31")),
        time_limit: TimeLimit::default(),
        use_all_locations: false,
        location_ids: vec![1, 2],
        code_type: CodeType::Qrcode,
        rotating_code: false,
        can_give_friend: true,
        can_use_with_other_discount: false,
        shared: None,
        give_program_id: None,
    }
}

pub(crate) fn program(fields: CouponProgramFields, state: ProgramState) -> CouponProgram {
    CouponProgram {
        id: 1,
        merchant_id: 1,
        fields,
        state,
        quantity: 100,
        n_claimed: 0,
        n_verified: 0,
        n_expired: 0,
        claim_token: "t".into(),
        version: 1,
        created_by: "boss".into(),
        created_at: 0,
    }
}

pub(crate) fn coupon(valid_from: i64, valid_until: i64) -> Coupon {
    Coupon {
        id: 1,
        merchant_id: 1,
        program_id: 1,
        customer_id: 1,
        state: CouponState::Available,
        valid_from,
        valid_until,
        sealed: Vec::new(),
        key_version: 1,
        source: CouponSource::Claim,
        order_id: None,
        claimed_at: valid_from,
        verified_at: None,
        gifting: false,
    }
}

#[test]
fn discounts_read_as_zhe_and_benefits_as_one_line() {
    assert_eq!(discount_label(15), "8.5折");
    assert_eq!(discount_label(30), "7折");
    assert_eq!(discount_label(1), "9.9折");
    assert_eq!(discount_label(99), "0.1折");
    let cash = cash_fields().benefit;
    assert_eq!(cash.summary_zh(), "满100.00元减20.00元");
    let free = Benefit::Cash {
        least_cost_fen: 0,
        reduce_cost_fen: 500,
    };
    assert_eq!(free.summary_zh(), "减5.00元，无门槛");
    let capped = Benefit::Discount {
        percent_off: 15,
        cap_fen: Some(2000),
    };
    assert_eq!(capped.summary_zh(), "8.5折，最高优惠20.00元");
    assert_eq!(
        Benefit::Gift {
            goods_id: None,
            gift: "咖啡一杯".into()
        }
        .summary_zh(),
        "兑换：咖啡一杯"
    );
    assert_eq!(
        Benefit::Groupon {
            deal_detail: "双人餐".into(),
            price_fen: 9900
        }
        .summary_zh(),
        "双人餐（团购价99.00元）"
    );
}

#[test]
fn a_cash_coupon_needs_its_threshold_and_a_discount_stops_at_its_cap() {
    let cash = cash_fields().benefit;
    assert_eq!(cash.discount_fen(Some(12_000)), Ok(2_000));
    assert_eq!(
        cash.discount_fen(Some(10_000)),
        Ok(2_000),
        "满 means at least"
    );
    assert_eq!(
        cash.discount_fen(Some(9_999)),
        Err(CouponRefusal::BelowThreshold {
            least_cost_fen: 10_000
        })
    );
    assert_eq!(cash.discount_fen(None), Ok(2_000));
    let free = Benefit::Cash {
        least_cost_fen: 0,
        reduce_cost_fen: 500,
    };
    assert_eq!(
        free.discount_fen(Some(300)),
        Ok(300),
        "never more than the order"
    );
    let capped = Benefit::Discount {
        percent_off: 15,
        cap_fen: Some(2_000),
    };
    assert_eq!(capped.discount_fen(Some(10_000)), Ok(1_500));
    assert_eq!(capped.discount_fen(Some(20_000)), Ok(2_000));
    assert_eq!(capped.discount_fen(Some(13_333)), Ok(1_999), "rounded down");
    assert_eq!(capped.discount_fen(None), Ok(0));
    let uncapped = Benefit::Discount {
        percent_off: 15,
        cap_fen: None,
    };
    assert_eq!(uncapped.discount_fen(Some(20_000)), Ok(3_000));
    let general = Benefit::General {
        default_detail: "送饮料".into(),
    };
    assert_eq!(general.discount_fen(Some(20_000)), Ok(0));
}

#[test]
fn benefits_round_trip_through_their_columns() {
    for benefit in [
        cash_fields().benefit,
        Benefit::Discount {
            percent_off: 20,
            cap_fen: None,
        },
        Benefit::Gift {
            goods_id: Some(4),
            gift: "礼盒".into(),
        },
        Benefit::Groupon {
            deal_detail: "套餐".into(),
            price_fen: 1,
        },
        Benefit::General {
            default_detail: "买一送一".into(),
        },
    ] {
        assert_eq!(
            Benefit::from_columns(benefit.kind(), benefit.to_columns()),
            Some(benefit.clone())
        );
        assert_eq!(
            CouponKind::parse(benefit.kind().code()),
            Some(benefit.kind())
        );
    }
    assert_eq!(
        Benefit::from_columns(CouponKind::Cash, BenefitColumns::default()),
        None
    );
}

#[test]
fn relative_validity_counts_china_days_from_the_claim_with_a_delay_and_a_hard_end() {
    let claimed = at("2026-12-01 23:30");
    let same_day = Validity::Relative {
        term_days: 1,
        begin_after_days: 0,
        hard_end: None,
    };
    let (from, until) = same_day.window(claimed);
    assert_eq!(format_datetime(from), "2026-12-01 00:00:00");
    assert_eq!(format_datetime(until), "2026-12-01 23:59:59");
    let delayed = Validity::Relative {
        term_days: 30,
        begin_after_days: 2,
        hard_end: None,
    };
    let (from, until) = delayed.window(claimed);
    assert_eq!(format_datetime(from), "2026-12-03 00:00:00");
    assert_eq!(format_datetime(until), "2027-01-01 23:59:59");
    let hard = Validity::Relative {
        term_days: 30,
        begin_after_days: 2,
        hard_end: Some(end_of_day(date("2026-12-20"))),
    };
    assert_eq!(
        format_datetime(hard.window(claimed).1),
        "2026-12-20 23:59:59"
    );
    assert!(hard.claimable_at(claimed));
    assert!(
        !hard.claimable_at(at("2026-12-19 10:00")),
        "begins after the hard end: never usable"
    );
    let fixed = fixed_validity(date("2026-12-01"), date("2026-12-31"));
    assert_eq!(fixed.window(claimed), fixed.window(0));
    assert!(fixed.claimable_at(at("2026-12-31 23:59")));
    assert!(!fixed.claimable_at(at("2027-01-01 00:00")));
    assert!(
        fixed.claimable_at(at("2026-11-01 00:00")),
        "claim before, use later"
    );
}

#[test]
fn once_active_a_validity_only_widens() {
    let fixed = fixed_validity(date("2026-12-01"), date("2026-12-31"));
    assert!(fixed.widens(&fixed));
    assert!(fixed_validity(date("2026-11-30"), date("2027-01-01")).widens(&fixed));
    assert!(!fixed_validity(date("2026-12-02"), date("2026-12-31")).widens(&fixed));
    assert!(!fixed_validity(date("2026-12-01"), date("2026-12-30")).widens(&fixed));
    let relative = |term_days, begin_after_days, hard_end| Validity::Relative {
        term_days,
        begin_after_days,
        hard_end,
    };
    let old = relative(30, 1, Some(100));
    assert!(relative(31, 0, Some(100)).widens(&old));
    assert!(relative(30, 1, None).widens(&old), "no hard end is wider");
    assert!(!relative(29, 1, Some(100)).widens(&old));
    assert!(!relative(30, 2, Some(100)).widens(&old));
    assert!(!relative(30, 1, Some(99)).widens(&old));
    assert!(!relative(30, 1, Some(100)).widens(&relative(30, 1, None)));
    assert!(!fixed.widens(&old) && !old.widens(&fixed), "the type stays");
}

#[test]
fn time_limits_follow_china_weekdays_and_minutes() {
    let weekdays_daytime = TimeLimit {
        weekdays: 0b001_1111,
        day_minutes: Some((9 * 60, 21 * 60)),
    };
    // 2026-12-04 is a Friday, 2026-12-05 a Saturday.
    assert!(weekdays_daytime.allows(at("2026-12-04 09:00")));
    assert!(weekdays_daytime.allows(at("2026-12-04 20:59")));
    assert!(!weekdays_daytime.allows(at("2026-12-04 21:00")));
    assert!(!weekdays_daytime.allows(at("2026-12-04 08:59")));
    assert!(!weekdays_daytime.allows(at("2026-12-05 12:00")));
    assert!(
        TimeLimit {
            weekdays: 1 << 6,
            day_minutes: None
        }
        .allows(at("2026-12-06 00:00")),
        "Sunday is bit 6"
    );
    assert_eq!(
        weekdays_daytime.text_zh(),
        "周一、二、三、四、五 09:00–21:00"
    );
    assert_eq!(TimeLimit::default().text_zh(), "不限");
    assert!(TimeLimit::default().allows(at("2026-12-05 03:00")));
}

#[test]
fn fields_report_every_problem_at_once() {
    assert_eq!(cash_fields().check(), Ok(()));
    let mut bad = cash_fields();
    bad.title = "一二三四五六七八九十".into();
    bad.notice = "x".repeat(17);
    bad.color = "red".into();
    bad.get_limit = 0;
    bad.location_ids.clear();
    bad.benefit = Benefit::Cash {
        least_cost_fen: 100,
        reduce_cost_fen: 200,
    };
    bad.time_limit.weekdays = 0;
    let errors = bad.check().unwrap_err();
    for expected in [
        "券名称最多 9 个字符",
        "使用提醒最多 16 个字符",
        "请选择券颜色",
        "每人可领张数须为 1–1000",
        "请选择适用门店，或选择全部门店可用",
        "起用金额不能小于减免金额",
        "可用日期至少选择一天",
    ] {
        assert!(
            errors.iter().any(|e| e == expected),
            "{expected}: {errors:?}"
        );
    }
    let mut relative = cash_fields();
    relative.validity = Validity::Relative {
        term_days: 0,
        begin_after_days: -1,
        hard_end: None,
    };
    assert_eq!(relative.check().unwrap_err().len(), 2);
}

#[test]
fn an_active_program_keeps_its_benefit_and_only_widens_its_validity() {
    let active = program(cash_fields(), ProgramState::Active);
    let mut wider = cash_fields();
    wider.validity = fixed_validity(date("2026-12-01"), date("2027-01-31"));
    wider.title = "新名称".into();
    assert_eq!(check_edit(&active, &wider), Ok(()));
    let mut narrower = cash_fields();
    narrower.validity = fixed_validity(date("2026-12-05"), date("2026-12-31"));
    narrower.benefit = Benefit::Cash {
        least_cost_fen: 0,
        reduce_cost_fen: 100,
    };
    assert_eq!(check_edit(&active, &narrower).unwrap_err().len(), 2);
    let draft = program(cash_fields(), ProgramState::Draft);
    assert_eq!(check_edit(&draft, &narrower), Ok(()));
}

#[test]
fn the_program_state_machine_is_written_once() {
    use ProgramState::*;
    assert_eq!(ProgramState::sources_of(Active), &[Draft, Paused]);
    assert_eq!(ProgramState::sources_of(Paused), &[Active]);
    assert_eq!(ProgramState::sources_of(Ended), &[Draft, Active, Paused]);
    assert!(ProgramState::sources_of(Draft).is_empty());
    for state in ProgramState::ALL {
        assert_eq!(ProgramState::parse(state.code()), Some(state));
    }
}

#[test]
fn usability_names_the_first_reason_that_holds() {
    let fields = cash_fields();
    let active = program(fields.clone(), ProgramState::Active);
    let (from, until) = fields.validity.window(0);
    let now = at("2026-12-10 12:00");
    let ok = coupon(from, until);
    assert_eq!(check_usable(&active, &ok, Some(1), now), Ok(()));
    assert_eq!(
        check_usable(&active, &ok, Some(3), now),
        Err(CouponRefusal::WrongLocation)
    );
    assert_eq!(
        check_usable(&active, &ok, None, now),
        Err(CouponRefusal::LocationRequired)
    );
    assert_eq!(
        check_usable(&active, &ok, Some(1), from - 1),
        Err(CouponRefusal::NotYetValid { valid_from: from })
    );
    assert_eq!(
        check_usable(&active, &ok, Some(1), until + 1),
        Err(CouponRefusal::Expired { valid_until: until })
    );
    assert_eq!(
        check_usable(&active, &ok, Some(1), until),
        Ok(()),
        "inclusive"
    );
    let paused = program(fields.clone(), ProgramState::Paused);
    assert_eq!(
        check_usable(&paused, &ok, Some(1), now),
        Err(CouponRefusal::ProgramPaused)
    );
    let ended = program(fields.clone(), ProgramState::Ended);
    assert_eq!(
        check_usable(&ended, &ok, Some(1), now),
        Ok(()),
        "held coupons stay usable"
    );
    let used = Coupon {
        state: CouponState::Verified,
        verified_at: Some(now - 5),
        ..ok.clone()
    };
    assert_eq!(
        check_usable(&paused, &used, Some(3), now),
        Err(CouponRefusal::Used {
            verified_at: now - 5
        }),
        "used comes first"
    );
    let gifting = Coupon {
        gifting: true,
        ..ok.clone()
    };
    assert_eq!(
        check_usable(&active, &gifting, Some(1), now),
        Err(CouponRefusal::Gifting)
    );
    let mut weekdays = fields.clone();
    weekdays.time_limit.weekdays = 0b001_1111;
    assert_eq!(
        check_usable(
            &program(weekdays, ProgramState::Active),
            &ok,
            Some(1),
            at("2026-12-05 12:00")
        ),
        Err(CouponRefusal::WrongTime)
    );
    let mut everywhere = fields;
    everywhere.use_all_locations = true;
    assert_eq!(check_location(&everywhere, None), Ok(()));
}

#[test]
fn a_bound_verifier_verifies_only_at_their_locations() {
    assert_eq!(check_verifier_location(&[], Some(9)), Ok(()));
    assert_eq!(check_verifier_location(&[], None), Ok(()));
    assert_eq!(check_verifier_location(&[1, 2], Some(2)), Ok(()));
    assert_eq!(
        check_verifier_location(&[1, 2], Some(3)),
        Err(CouponRefusal::NotYourLocation)
    );
    assert_eq!(
        check_verifier_location(&[1], None),
        Err(CouponRefusal::LocationRequired)
    );
}

#[test]
fn a_coupon_status_is_derived_from_its_state_gift_and_dates() {
    let c = coupon(100, 200);
    assert_eq!(c.status(150), CouponStatus::Usable);
    assert_eq!(c.status(99), CouponStatus::NotYetValid);
    assert_eq!(c.status(201), CouponStatus::Expired);
    assert_eq!(
        Coupon {
            gifting: true,
            ..c.clone()
        }
        .status(150),
        CouponStatus::Gifting
    );
    assert_eq!(
        Coupon {
            state: CouponState::Verified,
            ..c
        }
        .status(999),
        CouponStatus::Verified
    );
}

#[test]
fn reconciliation_days_are_china_days() {
    let t = at("2026-12-01 00:10");
    assert_eq!(format_day_number(local_day_number(t)), "2026-12-01");
    assert_eq!(format_day_number(local_day_number(t - 700)), "2026-11-30");
    assert_eq!(day_start(t), at("2026-12-01 00:00"));
}

#[test]
fn every_refusal_has_its_own_code() {
    use CouponRefusal::*;
    let all = [
        UnknownCode,
        ProgramNotFound,
        CustomerNotFound,
        ProgramNotActive,
        ProgramPaused,
        OutOfStock,
        ClaimLimitReached { get_limit: 1 },
        UseLimitReached { use_limit: 1 },
        ProgramExpired,
        Used { verified_at: 0 },
        NotYetValid { valid_from: 0 },
        Expired { valid_until: 0 },
        WrongTime,
        WrongLocation,
        NotYourLocation,
        LocationRequired,
        Gifting,
        BelowThreshold { least_cost_fen: 1 },
        RotatingCodeRequired,
        NotAnExchange,
        VerificationNotFound,
        AlreadyUndone,
        UndoWindowPassed { window_minutes: 60 },
        GiftUnavailable,
        GiftNotAllowed,
        OwnGift,
        OrderMismatch,
        Locked {
            retry_after_seconds: 61,
        },
        NonceReused,
        IdempotencyMismatch,
    ];
    let codes: std::collections::HashSet<_> = all.iter().map(|r| r.code()).collect();
    assert_eq!(codes.len(), all.len());
    assert_eq!(
        Locked {
            retry_after_seconds: 61
        }
        .message_zh(),
        "输错次数过多，请 2 分钟后再试"
    );
    assert_eq!(
        BelowThreshold {
            least_cost_fen: 10_000
        }
        .message_zh(),
        "订单金额未满 100.00 元，不能使用该券"
    );
    assert!(UnknownCode.is_not_found() && !Used { verified_at: 0 }.is_not_found());
}

#[test]
fn an_exchange_takes_only_a_gift_coupon_of_the_goods_asked_and_a_shared_one_only_offline() {
    use super::usage::{HeldCoupon, VerifyChannel};
    use super::usecases::{preview, VerifyRequest};
    let now = at("2026-12-10 12:00");
    let mut fields = cash_fields();
    fields.use_all_locations = true;
    fields.benefit = Benefit::Gift {
        goods_id: Some(7),
        gift: "咖啡".into(),
    };
    let held = |fields: CouponProgramFields| HeldCoupon {
        coupon: coupon(now - 60, now + 60),
        program: program(fields, ProgramState::Active),
    };
    let request = |exchange_goods, channel| VerifyRequest {
        location_id: None,
        verifier_locations: Vec::new(),
        channel,
        order_amount_fen: None,
        order_ref: String::new(),
        exchange_goods,
        actor: crate::audit::Actor::cli(),
        now,
    };
    let gift = held(fields.clone());
    for (goods, expected) in [
        (None, Ok(0)),
        (Some(None), Ok(0)),
        (Some(Some(7)), Ok(0)),
        (Some(Some(8)), Err(CouponRefusal::NotAnExchange)),
    ] {
        assert_eq!(
            preview(&gift, &request(goods, VerifyChannel::Api)),
            expected,
            "{goods:?}"
        );
    }
    let mut everywhere = held(cash_fields());
    everywhere.program.fields.use_all_locations = true;
    assert_eq!(
        preview(&everywhere, &request(Some(None), VerifyChannel::Api)),
        Err(CouponRefusal::NotAnExchange)
    );
    let mut shared = fields;
    shared.shared = Some(super::SharedCoupon::default());
    let shared = held(shared);
    assert_eq!(
        preview(&shared, &request(None, VerifyChannel::Api)),
        Err(CouponRefusal::OfflineOnly)
    );
    assert_eq!(
        preview(&shared, &request(None, VerifyChannel::Typed)),
        Ok(0)
    );
}
