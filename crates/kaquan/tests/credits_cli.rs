//! `kaquan operator` and `kaquan credits` as an operator scripts them: an
//! operator made from a new account, a grant, a purchase confirmed once,
//! 增加库存 of a 朋友的券 (free credits first; too few is refused with what
//! is needed) and `kaquan verify` over the credit ledger.

use std::io::Write;
use std::process::Stdio;

mod common;
use common::*;

/// A 朋友的券 with stock 0 (0.2 券点 a unit), made through core as the console does.
async fn shared_program(env: &Env) -> i64 {
    use kaquan_core::coupon::*;
    let store = env.sqlite_store();
    let now = kaquan_web::now();
    let fields = CouponProgramFields {
        benefit: Benefit::Cash {
            least_cost_fen: 0,
            reduce_cost_fen: 500,
        },
        title: "5元代金券".into(),
        sub_title: String::new(),
        brand_name: "果园".into(),
        logo_url: String::new(),
        color: "Color010".into(),
        notice: String::new(),
        description: String::new(),
        service_phone: String::new(),
        get_limit: 1,
        use_limit: 1,
        validity: Validity::Relative {
            term_days: 30,
            begin_after_days: 0,
            hard_end: None,
        },
        time_limit: TimeLimit::default(),
        use_all_locations: true,
        location_ids: vec![],
        code_type: CodeType::Qrcode,
        rotating_code: false,
        can_give_friend: true,
        can_use_with_other_discount: true,
        shared: Some(SharedCoupon {
            cover_url: String::new(),
            abstract_text: "进店立减 5 元".into(),
            detail_text: "全场通用".into(),
        }),
        give_program_id: None,
    };
    let actor = kaquan_core::audit::Actor::cli();
    usecases::create_coupon_program(store.as_ref(), 1, &fields, 0, &actor, now)
        .await
        .unwrap()
        .id
}

#[tokio::test(flavor = "multi_thread")]
async fn credits_and_operators_are_scripted_from_the_command_line() {
    let env = Env::sqlite();
    env.setup();
    let mut create = env
        .command(&[
            "operator",
            "create",
            "--username",
            "platform",
            "--password-stdin",
            "--json",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    create
        .stdin
        .take()
        .unwrap()
        .write_all(b"Platform-2026!\n")
        .unwrap();
    let created = create.wait_with_output().unwrap();
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let operators = env.json(&["operator", "list", "--json"]);
    assert_eq!(operators["operators"][0]["username"], "platform");

    let granted = env.json(&[
        "credits",
        "grant",
        "--credits",
        "10",
        "--reason",
        "开业活动",
        "--json",
    ]);
    assert_eq!(granted["free_tenths"], 100);
    let bad = env
        .command(&["credits", "grant", "--credits", "1.25", "--reason", "x"])
        .output()
        .unwrap();
    assert!(!bad.status.success());

    let program = shared_program(&env).await.to_string();
    let bought = env.json(&[
        "credits",
        "buy-stock",
        "--program",
        &program,
        "--units",
        "40",
        "--json",
    ]);
    assert_eq!(
        (
            bought["free_tenths"].as_i64(),
            bought["paid_tenths"].as_i64()
        ),
        (Some(80), Some(0))
    );
    let short = env
        .command(&[
            "credits",
            "buy-stock",
            "--program",
            &program,
            "--units",
            "11",
        ])
        .output()
        .unwrap();
    assert!(!short.status.success());
    assert!(String::from_utf8_lossy(&short.stderr).contains("券点不足"));

    let balance = env.json(&["credits", "balance", "--json"]);
    assert_eq!(
        (
            balance["free_tenths"].as_i64(),
            balance["paid_tenths"].as_i64()
        ),
        (Some(20), Some(0))
    );
    let statement = env.json(&["credits", "statement", "--json"]);
    assert_eq!(statement["total"], 2);
    env.run(&["verify"]);
    let purchases = env.json(&["credits", "purchases", "--json"]);
    assert_eq!(purchases["items"].as_array().unwrap().len(), 0);
    let again = env
        .command(&["credits", "confirm", "--purchase", "1"])
        .output()
        .unwrap();
    assert!(!again.status.success(), "no such purchase");
}
