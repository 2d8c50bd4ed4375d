//! The coupon rules pinned one by one (what `cargo mutants` showed no
//! other test checked): every boundary of the fields' checks, the words and
//! codes people and programs see, the stored forms, and the re-checks the
//! stores run inside their transactions.

use super::usage::*;
use super::*;
use crate::money::FEN_MAX;

fn errors_of(benefit: Benefit) -> Vec<String> {
    let mut errors = Vec::new();
    benefit.check(&mut errors);
    errors
}

#[test]
fn every_kind_checks_its_own_fields_at_their_boundaries() {
    let discount = |percent_off, cap_fen| Benefit::Discount {
        percent_off,
        cap_fen,
    };
    assert!(errors_of(discount(1, None)).is_empty());
    assert!(errors_of(discount(99, Some(1))).is_empty());
    assert!(errors_of(discount(50, Some(FEN_MAX))).is_empty());
    assert_eq!(errors_of(discount(0, None)).len(), 1);
    assert_eq!(errors_of(discount(100, None)).len(), 1);
    assert_eq!(errors_of(discount(50, Some(0))), ["最高优惠须大于 0"]);
    assert_eq!(errors_of(discount(50, Some(FEN_MAX + 1))).len(), 1);
    let cash = |least_cost_fen, reduce_cost_fen| Benefit::Cash {
        least_cost_fen,
        reduce_cost_fen,
    };
    assert!(errors_of(cash(0, 1)).is_empty(), "no threshold");
    assert!(errors_of(cash(500, 500)).is_empty(), "满5减5");
    assert!(errors_of(cash(FEN_MAX, FEN_MAX)).is_empty());
    assert_eq!(errors_of(cash(499, 500)), ["起用金额不能小于减免金额"]);
    assert_eq!(errors_of(cash(0, 0)), ["减免金额须大于 0"]);
    assert_eq!(
        errors_of(cash(1, FEN_MAX + 1)),
        ["减免金额须大于 0", "起用金额不能小于减免金额"]
    );
    assert_eq!(errors_of(cash(-1, 5)), ["起用金额须为 0（无门槛）或正数"]);
    assert_eq!(
        errors_of(cash(FEN_MAX + 1, 5)),
        ["起用金额须为 0（无门槛）或正数"]
    );
    let gift = |goods_id, gift: &str| Benefit::Gift {
        goods_id,
        gift: gift.into(),
    };
    assert!(
        errors_of(gift(Some(1), "")).is_empty(),
        "a goods item alone"
    );
    assert!(errors_of(gift(None, "咖啡")).is_empty(), "a text alone");
    assert_eq!(
        errors_of(gift(None, " ")),
        ["兑换券须选择提货商品或填写兑换内容"]
    );
    assert_eq!(
        errors_of(gift(Some(1), &"x".repeat(DETAIL_CHARS_MAX + 1))).len(),
        1
    );
    let groupon = |deal_detail: &str, price_fen| Benefit::Groupon {
        deal_detail: deal_detail.into(),
        price_fen,
    };
    assert!(errors_of(groupon("双人餐", 1)).is_empty());
    assert_eq!(errors_of(groupon("", 1)), ["团购券须填写团购详情"]);
    assert_eq!(errors_of(groupon("双人餐", 0)), ["团购价须大于 0"]);
    assert_eq!(
        errors_of(groupon("双人餐", FEN_MAX + 1)),
        ["团购价须大于 0"]
    );
    assert_eq!(
        errors_of(groupon(&"x".repeat(DETAIL_CHARS_MAX + 1), 1)).len(),
        1
    );
    let general = |text: &str| Benefit::General {
        default_detail: text.into(),
    };
    assert!(errors_of(general("买一送一")).is_empty());
    assert_eq!(errors_of(general("")), ["优惠券须填写优惠详情"]);
    assert_eq!(
        errors_of(general(&"x".repeat(DETAIL_CHARS_MAX + 1))).len(),
        1
    );
}

#[test]
fn a_capped_discount_keeps_its_cap_through_the_columns() {
    let capped = Benefit::Discount {
        percent_off: 20,
        cap_fen: Some(300),
    };
    assert_eq!(capped.to_columns().cap_fen, Some(300));
    assert_eq!(
        Benefit::from_columns(CouponKind::Discount, capped.to_columns()),
        Some(capped)
    );
}

#[test]
fn validities_read_back_from_their_columns_and_say_themselves() {
    let fixed = Validity::Fixed { begin: 10, end: 20 };
    let relative = Validity::Relative {
        term_days: 7,
        begin_after_days: 0,
        hard_end: Some(99),
    };
    for v in [fixed, relative] {
        let (kind, a, b, c, d, e) = v.to_columns();
        assert_eq!(kind, v.code());
        assert_eq!(Validity::from_columns(kind, (a, b, c, d, e)), Some(v));
    }
    assert_eq!((fixed.code(), relative.code()), ("fixed", "relative"));
    assert_eq!(
        Validity::from_columns("forever", (Some(1), Some(2), None, None, None)),
        None
    );
    assert_eq!(
        Validity::from_columns("fixed", (Some(1), None, None, None, None)),
        None
    );
    assert_eq!(
        Validity::from_columns("relative", (None, None, None, Some(0), None)),
        None
    );
    let mut errors = Vec::new();
    Validity::Fixed { begin: 5, end: 5 }.check(&mut errors);
    assert!(errors.is_empty(), "one second is a range");
    Validity::Fixed { begin: 6, end: 5 }.check(&mut errors);
    assert_eq!(errors.len(), 1);
    let day = crate::clock::start_of_day(crate::clock::parse_date("2026-12-01").unwrap());
    assert_eq!(
        Validity::Fixed {
            begin: day,
            end: day + 86_399
        }
        .text_zh(),
        "2026-12-01 至 2026-12-01"
    );
    assert_eq!(
        Validity::Relative {
            term_days: 30,
            begin_after_days: 0,
            hard_end: None
        }
        .text_zh(),
        "领取后当天生效，有效 30 天"
    );
    assert_eq!(
        Validity::Relative {
            term_days: 7,
            begin_after_days: 2,
            hard_end: Some(day)
        }
        .text_zh(),
        "领取后第 2 天生效，有效 7 天（最晚 2026-12-01）"
    );
}

#[test]
fn locations_and_time_limits_are_stored_as_plain_columns() {
    assert_eq!(encode_location_ids(&[1, 22, 333]), "1,22,333");
    assert_eq!(decode_location_ids("1,22,333"), [1, 22, 333]);
    assert_eq!(decode_location_ids(""), Vec::<i64>::new());
    assert_eq!(decode_location_ids("x,2"), [2]);
    let limit = TimeLimit::from_columns(0b101, Some(60), Some(120));
    assert_eq!(
        limit,
        TimeLimit {
            weekdays: 0b101,
            day_minutes: Some((60, 120))
        }
    );
    assert_eq!(
        TimeLimit::from_columns(0x1ff, None, None).weekdays,
        ALL_WEEKDAYS,
        "unknown bits are dropped"
    );
    assert_eq!(TimeLimit::from_columns(3, Some(60), None).day_minutes, None);
}

#[test]
fn time_limits_check_their_days_and_minutes() {
    let check = |weekdays, day_minutes| {
        let mut errors = Vec::new();
        TimeLimit {
            weekdays,
            day_minutes,
        }
        .check(&mut errors);
        errors.len()
    };
    assert_eq!(check(ALL_WEEKDAYS, None), 0);
    assert_eq!(check(0, None), 1);
    assert_eq!(check(0x80, None), 1);
    assert_eq!(check(0x81, None), 1, "a bit beyond Sunday");
    assert_eq!(check(1, Some((0, 1440))), 0);
    assert_eq!(check(1, Some((1439, 1440))), 0);
    assert_eq!(check(1, Some((-1, 10))), 1);
    assert_eq!(check(1, Some((1440, 1441))), 1);
    assert_eq!(check(1, Some((10, 1441))), 1);
    assert_eq!(check(1, Some((10, 10))), 1);
    assert_eq!(check(1, Some((10, 0))), 1);
}

#[test]
fn code_types_show_what_wechat_shows() {
    let shows = |t: CodeType| (t.shows_qr(), t.shows_barcode(), t.shows_text());
    assert_eq!(shows(CodeType::Qrcode), (true, false, true));
    assert_eq!(shows(CodeType::Barcode), (false, true, true));
    assert_eq!(shows(CodeType::Text), (false, false, true));
    assert_eq!(shows(CodeType::OnlyQrcode), (true, false, false));
    assert_eq!(shows(CodeType::OnlyBarcode), (false, true, false));
    assert_eq!(color_hex("Color100"), "#cc463d");
    assert_eq!(color_hex("Color010"), "#63b359");
    assert_eq!(color_hex("nonsense"), "#63b359", "the first when unknown");
}

/// Checks a type's codes and labels, and that every code parses back.
fn pinned<T: Copy + PartialEq + std::fmt::Debug>(
    values: &[T],
    code: fn(T) -> &'static str,
    label: fn(T) -> &'static str,
    parse: Option<fn(&str) -> Option<T>>,
    expected: &[(&str, &str)],
) {
    let got: Vec<_> = values.iter().map(|v| (code(*v), label(*v))).collect();
    assert_eq!(got, expected);
    if let Some(parse) = parse {
        for v in values {
            assert_eq!(parse(code(*v)), Some(*v));
        }
        assert_eq!(parse("nonsense"), None);
    }
}

/// Every code parses back and every label is pinned: changing one is a
/// change users or integrators see.
#[test]
fn the_words_and_codes_of_programs_are_pinned() {
    pinned(
        &CouponKind::ALL,
        CouponKind::code,
        CouponKind::label_zh,
        Some(CouponKind::parse),
        &[
            ("discount", "折扣券"),
            ("cash", "代金券"),
            ("gift", "兑换券"),
            ("groupon", "团购券"),
            ("general_coupon", "优惠券"),
        ],
    );
    pinned(
        &CodeType::ALL,
        CodeType::code,
        CodeType::label_zh,
        Some(CodeType::parse),
        &[
            ("qrcode", "二维码（显示券码）"),
            ("barcode", "条形码（显示券码）"),
            ("text", "仅券码"),
            ("only_qrcode", "仅二维码"),
            ("only_barcode", "仅条形码"),
        ],
    );
    pinned(
        &ProgramState::ALL,
        ProgramState::code,
        ProgramState::label_zh,
        Some(ProgramState::parse),
        &[
            ("draft", "草稿"),
            ("active", "投放中"),
            ("paused", "已暂停"),
            ("ended", "已结束"),
        ],
    );
    pinned(
        &ProgramState::ALL,
        ProgramState::code,
        ProgramState::verb_zh,
        None,
        &[
            ("draft", "存为草稿"),
            ("active", "开始投放"),
            ("paused", "暂停"),
            ("ended", "结束"),
        ],
    );
}

#[test]
fn the_words_and_codes_of_held_coupons_are_pinned() {
    pinned(
        &CouponSource::ALL,
        CouponSource::code,
        CouponSource::label_zh,
        Some(CouponSource::parse),
        &[
            ("claim", "领取"),
            ("targeted", "定向发放"),
            ("order", "商城购买"),
            ("gift", "好友转赠"),
            ("share", "好友分享"),
            ("give_back", "核销后返券"),
        ],
    );
    pinned(
        &WalletTab::ALL,
        WalletTab::code,
        WalletTab::label_zh,
        Some(WalletTab::parse),
        &[
            ("usable", "可使用"),
            ("used", "已使用"),
            ("expired", "已过期"),
        ],
    );
    pinned(
        &VerifyChannel::ALL,
        VerifyChannel::code,
        VerifyChannel::label_zh,
        Some(VerifyChannel::parse),
        &[
            ("scan", "扫码核销"),
            ("typed", "券码核销"),
            ("api", "接口核销"),
        ],
    );
    let statuses = [
        CouponStatus::Usable,
        CouponStatus::NotYetValid,
        CouponStatus::Expired,
        CouponStatus::Verified,
        CouponStatus::Gifting,
    ];
    pinned(
        &statuses,
        CouponStatus::code,
        CouponStatus::label_zh,
        None,
        &[
            ("usable", "可使用"),
            ("not_yet_valid", "未到使用时间"),
            ("expired", "已过期"),
            ("verified", "已使用"),
            ("gifting", "转赠中"),
        ],
    );
    for state in [CouponState::Available, CouponState::Verified] {
        assert_eq!(CouponState::parse(state.code()), Some(state));
    }
    assert_eq!(
        (CouponState::Available.code(), CouponState::Verified.code()),
        ("available", "verified")
    );
    assert_eq!(CouponState::parse("used"), None);
    assert_eq!(UNDO_WINDOW_MINUTES_MAX, 7 * 24 * 60, "a week");
    assert_eq!(
        CouponSettings::default().undo_window_minutes,
        60,
        "as Douyin's cancel"
    );
}

#[test]
fn program_fields_bound_their_description_limits_and_locations() {
    let mut fields = super::tests::cash_fields();
    fields.description = "第一行\r\n第二行".into();
    assert_eq!(fields.check(), Ok(()), "line breaks are allowed");
    fields.description = "响\u{7}".into();
    assert_eq!(
        fields.check().unwrap_err(),
        [format!("使用说明最多 {DESCRIPTION_CHARS_MAX} 个字符")]
    );
    fields.description = "x".repeat(DESCRIPTION_CHARS_MAX);
    assert_eq!(fields.check(), Ok(()));
    fields.description = "x".repeat(DESCRIPTION_CHARS_MAX + 1);
    assert!(fields.check().is_err());
    let mut fields = super::tests::cash_fields();
    fields.use_limit = PER_CUSTOMER_LIMIT_MAX + 1;
    assert_eq!(
        fields.check().unwrap_err(),
        [format!("每人可用张数须为 1–{PER_CUSTOMER_LIMIT_MAX}")]
    );
    fields.use_limit = PER_CUSTOMER_LIMIT_MAX;
    fields.location_ids = (1..=PROGRAM_LOCATIONS_MAX as i64).collect();
    assert_eq!(fields.check(), Ok(()));
    fields.location_ids.push(9999);
    assert_eq!(fields.check().unwrap_err().len(), 1);
    let listed = super::tests::cash_fields();
    assert!(listed.usable_at(Some(1)) && listed.usable_at(Some(2)));
    assert!(!listed.usable_at(Some(3)) && !listed.usable_at(None));
    let everywhere = CouponProgramFields {
        use_all_locations: true,
        ..listed
    };
    assert!(everywhere.usable_at(None) && everywhere.usable_at(Some(3)));
}

fn facts() -> VerifyFacts {
    VerifyFacts {
        state: CouponState::Available,
        verified_at: None,
        gifting: false,
        program_state: ProgramState::Active,
        valid_from: 100,
        valid_until: 200,
        n_used: 0,
        use_limit: 1,
    }
}

#[test]
fn the_stores_recheck_names_every_reason_at_its_boundary() {
    assert_eq!(recheck(&facts(), 100), Ok(()), "from its first second");
    assert_eq!(recheck(&facts(), 200), Ok(()), "to its last");
    assert_eq!(
        recheck(&facts(), 99),
        Err(CouponRefusal::NotYetValid { valid_from: 100 })
    );
    assert_eq!(
        recheck(&facts(), 201),
        Err(CouponRefusal::Expired { valid_until: 200 })
    );
    let used = VerifyFacts {
        state: CouponState::Verified,
        verified_at: Some(150),
        ..facts()
    };
    assert_eq!(
        recheck(&used, 150),
        Err(CouponRefusal::Used { verified_at: 150 })
    );
    let gifting = VerifyFacts {
        gifting: true,
        ..facts()
    };
    assert_eq!(recheck(&gifting, 150), Err(CouponRefusal::Gifting));
    for paused in [ProgramState::Paused, ProgramState::Draft] {
        let f = VerifyFacts {
            program_state: paused,
            ..facts()
        };
        assert_eq!(recheck(&f, 150), Err(CouponRefusal::ProgramPaused));
    }
    let ended = VerifyFacts {
        program_state: ProgramState::Ended,
        ..facts()
    };
    assert_eq!(recheck(&ended, 150), Ok(()));
    let full = VerifyFacts {
        n_used: 1,
        ..facts()
    };
    assert_eq!(
        recheck(&full, 150),
        Err(CouponRefusal::UseLimitReached { use_limit: 1 })
    );
    let room = VerifyFacts {
        n_used: 1,
        use_limit: 2,
        ..facts()
    };
    assert_eq!(recheck(&room, 150), Ok(()));
}

#[test]
fn an_undo_keeps_to_its_window_to_the_second() {
    assert_eq!(
        check_undo(1000, None, 3600, 4600),
        Ok(()),
        "the last second of the window"
    );
    assert_eq!(check_undo(1000, None, 3600, 1000), Ok(()));
    assert_eq!(
        check_undo(1000, None, 3600, 4601),
        Err(CouponRefusal::UndoWindowPassed { window_minutes: 60 })
    );
    assert_eq!(
        check_undo(1000, None, 5400, 7000),
        Err(CouponRefusal::UndoWindowPassed { window_minutes: 90 })
    );
    assert_eq!(
        check_undo(1000, Some(1200), 3600, 1300),
        Err(CouponRefusal::AlreadyUndone)
    );
}

#[test]
fn an_issue_needs_an_active_program_stock_and_room_under_the_claim_limit() {
    use ProgramState::*;
    assert_eq!(check_issue(Active, 5, 5, None), Ok(()), "the last five");
    assert_eq!(
        check_issue(Active, 4, 5, None),
        Err(CouponRefusal::OutOfStock)
    );
    assert_eq!(
        check_issue(Paused, 5, 1, None),
        Err(CouponRefusal::ProgramPaused)
    );
    assert_eq!(
        check_issue(Draft, 5, 1, None),
        Err(CouponRefusal::ProgramNotActive)
    );
    assert_eq!(
        check_issue(Ended, 5, 1, None),
        Err(CouponRefusal::ProgramNotActive)
    );
    assert_eq!(
        check_issue(Active, 5, 1, Some((1, 2))),
        Ok(()),
        "up to the limit"
    );
    assert_eq!(check_issue(Active, 5, 2, Some((0, 2))), Ok(()));
    assert_eq!(
        check_issue(Active, 5, 2, Some((1, 2))),
        Err(CouponRefusal::ClaimLimitReached { get_limit: 2 })
    );
    assert_eq!(
        check_issue(Active, 5, 1, Some((2, 2))),
        Err(CouponRefusal::ClaimLimitReached { get_limit: 2 })
    );
    assert_eq!(
        check_issue(Active, 5, 3, Some((0, 2))),
        Err(CouponRefusal::ClaimLimitReached { get_limit: 2 })
    );
}

#[test]
fn a_guards_refusal_keeps_its_meaning() {
    use crate::ledger::Refusal;
    assert_eq!(
        refusal_of_guard(Refusal::NonceReused),
        CouponRefusal::NonceReused
    );
    assert_eq!(
        refusal_of_guard(Refusal::IdempotencyMismatch),
        CouponRefusal::IdempotencyMismatch
    );
}

fn issue(source: CouponSource, customers: &[i64], order: Option<(&str, &str)>) -> IssueCoupons {
    let code = || super::code::NewCouponCode {
        digest: vec![],
        sealed: vec![],
        key_version: 1,
    };
    IssueCoupons {
        merchant_id: 1,
        program_id: 7,
        source,
        coupons: customers.iter().map(|c| (*c, code())).collect(),
        order: order.map(|(o, l)| (o.into(), l.into())),
        shared_by: None,
        actor: crate::audit::Actor::cli(),
        now: 5,
    }
}

#[test]
fn an_issue_counts_each_holder_and_audits_what_the_merchant_gave() {
    assert_eq!(
        issue(CouponSource::Targeted, &[3, 4, 3, 3], None).per_customer(),
        [(3, 3), (4, 1)]
    );
    assert_eq!(
        issue(CouponSource::Claim, &[9], None).per_customer(),
        [(9, 1)]
    );
    assert!(
        issue(CouponSource::Claim, &[9], None).audit(1).is_none(),
        "a customer's own claim"
    );
    let targeted = issue(CouponSource::Targeted, &[3, 4], None)
        .audit(11)
        .unwrap();
    assert_eq!(
        (
            targeted.action.as_str(),
            targeted.target.as_str(),
            targeted.detail.as_str(),
            targeted.n_affected
        ),
        (
            "issue_coupons",
            "coupon_program=7",
            "source=targeted issue=11",
            2
        )
    );
    let ordered = issue(CouponSource::Order, &[3], Some(("M1", "2")))
        .audit(12)
        .unwrap();
    assert_eq!(ordered.detail, "source=order issue=12 order=M1 line=2");
}

#[test]
fn a_programs_stock_left_never_goes_below_zero() {
    let program = |quantity, n_claimed| CouponProgram {
        quantity,
        n_claimed,
        ..super::tests::program(super::tests::cash_fields(), ProgramState::Active)
    };
    assert_eq!(program(100, 30).stock_left(), 70);
    assert_eq!(program(100, 100).stock_left(), 0);
    assert_eq!(program(10, 12).stock_left(), 0);
}

#[test]
fn a_coupon_is_usable_from_its_first_second_to_its_last() {
    let coupon = super::tests::coupon(100, 200);
    assert_eq!(coupon.status(100), CouponStatus::Usable);
    assert_eq!(coupon.status(200), CouponStatus::Usable);
    let program = super::tests::program(
        CouponProgramFields {
            use_all_locations: true,
            ..super::tests::cash_fields()
        },
        ProgramState::Active,
    );
    let day = crate::clock::start_of_day(crate::clock::parse_date("2026-12-02").unwrap());
    let coupon = super::tests::coupon(day, day + 86_399);
    assert_eq!(check_usable(&program, &coupon, None, day), Ok(()));
}
