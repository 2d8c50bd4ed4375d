use super::*;

fn fields() -> EcardProductFields {
    EcardProductFields {
        name: "视频会员月卡".into(),
        face_value_fen: 1_990,
        delivery_form: DeliveryForm::NumberAndPassword,
        instructions: "打开视频 App → 我的 → 兑换会员，输入卡号和密码".into(),
        validity: EcardValidity::DaysAfterDelivery(30),
        own_verification_code: false,
        listings: vec![Listing {
            marketplace: Marketplace::Pinduoduo,
            product_id: "pdd-1".into(),
            sku_id: String::new(),
        }],
        remind_days: 3,
        refund_expired: false,
    }
}

#[test]
fn a_product_reports_every_problem_at_once() {
    assert_eq!(fields().check(), Ok(()));
    let mut bad = fields();
    bad.name = " ".into();
    bad.face_value_fen = -1;
    bad.instructions = String::new();
    bad.validity = EcardValidity::DaysAfterDelivery(0);
    bad.listings.push(bad.listings[0].clone());
    bad.listings.push(Listing {
        marketplace: Marketplace::Douyin,
        product_id: " ".into(),
        sku_id: "x".repeat(LISTING_ID_CHARS_MAX + 1),
    });
    let errors = bad.check().unwrap_err();
    for expected in [
        "请填写商品名称",
        "面值须在 0 到 1,000,000 元之间",
        "请填写兑换说明（在哪里、怎样兑换）",
        "发货后有效天数须为 1–3650",
        "拼多多的商品 pdd-1 重复",
        "抖音的商品 ID 不能为空",
    ] {
        assert!(
            errors.iter().any(|e| e == expected),
            "{expected}: {errors:?}"
        );
    }
    assert_eq!(errors.len(), 7, "{errors:?}");
    let mut fixed = fields();
    fixed.validity = EcardValidity::Until(0);
    assert_eq!(fixed.check(), Ok(()));
    let mut days = fields();
    days.validity = EcardValidity::DaysAfterDelivery(VALID_DAYS_MAX);
    assert_eq!(days.check(), Ok(()));
    days.validity = EcardValidity::DaysAfterDelivery(VALID_DAYS_MAX + 1);
    assert!(days.check().is_err());
    let mut many = fields();
    many.listings = (0..=LISTINGS_MAX)
        .map(|i| Listing {
            marketplace: Marketplace::Own,
            product_id: format!("p{i}"),
            sku_id: String::new(),
        })
        .collect();
    assert_eq!(many.check().unwrap_err().len(), 1);
    many.listings.pop();
    assert_eq!(many.check(), Ok(()));
}

#[test]
fn a_validity_counts_whole_days_from_delivery_or_ends_when_fixed() {
    assert_eq!(
        EcardValidity::DaysAfterDelivery(1).valid_until(1_000),
        1_000 + 86_399
    );
    assert_eq!(
        EcardValidity::DaysAfterDelivery(30).valid_until(0),
        30 * 86_400 - 1
    );
    assert_eq!(EcardValidity::Until(5_000).valid_until(1_000), 5_000);
}

#[test]
fn a_delivered_cards_status_is_derived_from_its_facts() {
    let facts = |verified_at, refunded_at| DeliveredFacts {
        valid_until: 100,
        verified_at,
        refunded_at,
    };
    for (f, now, status) in [
        (facts(None, None), 100, DeliveredStatus::Unverified),
        (facts(None, None), 101, DeliveredStatus::Expired),
        (facts(Some(50), None), 200, DeliveredStatus::Verified),
        (facts(Some(50), Some(60)), 60, DeliveredStatus::Verified),
        (facts(None, Some(60)), 60, DeliveredStatus::Refunded),
        (facts(None, Some(60)), 200, DeliveredStatus::Refunded),
    ] {
        assert_eq!(f.status(now), status, "{f:?} at {now}");
        assert_eq!(f.refundable(now), status == DeliveredStatus::Unverified);
    }
}

#[test]
fn one_reminder_comes_the_chosen_days_before_an_unused_card_expires() {
    let card = DeliveredFacts {
        valid_until: 10 * 86_400,
        verified_at: None,
        refunded_at: None,
    };
    assert!(!card.reminder_due(3, false, 7 * 86_400 - 1));
    assert!(card.reminder_due(3, false, 7 * 86_400));
    assert!(card.reminder_due(3, false, 10 * 86_400));
    assert!(!card.reminder_due(3, true, 8 * 86_400), "once");
    assert!(!card.reminder_due(3, false, 10 * 86_400 + 1), "expired");
    let used = DeliveredFacts {
        verified_at: Some(1),
        ..card
    };
    assert!(!used.reminder_due(3, false, 8 * 86_400));
}

#[test]
fn a_refund_returns_an_unseen_secret_to_stock_and_voids_a_seen_one() {
    assert_eq!(refund_outcome(false), RefundOutcome::BackToStock);
    assert_eq!(refund_outcome(true), RefundOutcome::Voided);
}

#[test]
fn an_import_keeps_the_first_of_each_secret_and_none_already_in_stock() {
    let digests = ["a", "b", "a", "c", "b", "d"];
    let (kept, dropped) = dedupe_import(&digests, |d| *d == "c");
    assert_eq!(kept, [0, 1, 5]);
    assert_eq!(
        dropped,
        [
            (2, "与文件中前面的行重复"),
            (3, "已在库存中"),
            (4, "与文件中前面的行重复")
        ]
    );
}

#[test]
fn codes_read_back_as_what_they_name() {
    for m in Marketplace::ALL {
        assert_eq!(Marketplace::parse(m.code()), Some(m));
    }
    for f in DeliveryForm::ALL {
        assert_eq!(DeliveryForm::parse(f.code()), Some(f));
    }
    for s in DeliveredStatus::ALL {
        assert_eq!(DeliveredStatus::parse(s.code()), Some(s));
    }
    assert_eq!(Marketplace::parse("amazon"), None);
    let labels: Vec<_> = DeliveredStatus::ALL.iter().map(|s| s.label_zh()).collect();
    assert_eq!(labels, ["未核销", "已核销", "已过期", "已退款"]);
    let forms: Vec<_> = DeliveryForm::ALL.iter().map(|f| f.label_zh()).collect();
    assert_eq!(forms, ["卡号+密码", "兑换码", "兑换链接", "二维码"]);
    let markets: Vec<_> = Marketplace::ALL.iter().map(|m| m.label_zh()).collect();
    assert_eq!(markets, ["拼多多", "淘宝/天猫", "抖音", "闲鱼", "自有商城"]);
}

#[test]
fn a_reminder_is_at_most_ninety_days_ahead() {
    let mut f = fields();
    for (days, ok) in [
        (0, true),
        (REMIND_DAYS_MAX, true),
        (-1, false),
        (REMIND_DAYS_MAX + 1, false),
    ] {
        f.remind_days = days;
        assert_eq!(f.check().is_ok(), ok, "{days}");
    }
}

#[test]
fn a_line_is_delivered_refunded_or_waiting_by_its_facts() {
    use crate::ecard::{EcardLine, EcardOrder, LineState};
    let mut line = EcardLine {
        id: 1,
        line_id: "1".into(),
        product_id: Some(1),
        product_name: String::new(),
        quantity: 1,
        paid_at: None,
        delivered_at: None,
        refunded_at: None,
        cards: vec![],
    };
    assert_eq!(
        line.state(),
        None,
        "known only from a refund that has not come"
    );
    line.paid_at = Some(1);
    assert_eq!(line.state(), Some(LineState::OutOfStock));
    line.refunded_at = Some(2);
    assert_eq!(line.state(), Some(LineState::Refunded));
    line.delivered_at = Some(1);
    assert_eq!(
        line.state(),
        Some(LineState::Delivered),
        "a delivered line shows its refund on the cards"
    );
    let card = crate::ecard::DeliveredCard {
        id: 9,
        stock_id: 3,
        import_id: 1,
        tail: "0001".into(),
        delivered_at: 1,
        facts: DeliveredFacts {
            valid_until: 10,
            verified_at: None,
            refunded_at: None,
        },
        verified_way: None,
        revealed_at: None,
        reminded_at: None,
        key_version: 1,
        sealed: b"sealed-secret".to_vec(),
        code_sealed: None,
    };
    assert!(!format!("{card:?}").contains("sealed-secret"));
    assert!(format!("{card:?}").starts_with("DeliveredCard(#9 …0001"));
    line.cards.push(card);
    let order = EcardOrder {
        id: 1,
        merchant_id: 1,
        marketplace: Marketplace::Own,
        order_id: "O".into(),
        buyer_phone: String::new(),
        created_at: 0,
        refunded_at: None,
        lines: vec![line.clone(), line],
    };
    assert_eq!(order.cards().map(|c| c.id).collect::<Vec<_>>(), vec![9, 9]);
}
