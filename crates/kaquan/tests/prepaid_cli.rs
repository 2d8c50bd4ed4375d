//! `kaquan merchant prepaid-policy` and what it holds the command line to.

mod common;

use common::{fails_saying, Env};

#[test]
fn the_command_line_switches_the_policy_and_is_held_to_it() {
    let env = Env::sqlite();
    env.setup();
    let policy = env.json(&["merchant", "prepaid-policy", "--json"]);
    assert_eq!(policy["enabled"], false);
    env.run(&[
        "batch",
        "generate",
        "--quantity",
        "2",
        "--face-value-fen",
        "200000",
    ]);
    let policy = env.json(&["merchant", "prepaid-policy", "--set", "on", "--json"]);
    assert_eq!(policy["enabled"], true);
    assert_eq!(policy["rules"].as_array().unwrap().len(), 3);
    fails_saying(
        env.command(&[
            "batch",
            "generate",
            "--quantity",
            "2",
            "--face-value-fen",
            "200000",
        ]),
        "面值不超过 1000 元",
    );
    let next_year = kaquan_core::clock::format_date(kaquan_web::now() + 365 * 86_400);
    fails_saying(
        env.command(&[
            "codes",
            "generate",
            "--name",
            "短期码",
            "--face-value",
            "50",
            "--quantity",
            "1",
            "--valid-until",
            &next_year,
        ]),
        "不少于 3 年",
    );
    env.run(&[
        "batch",
        "generate",
        "--quantity",
        "2",
        "--face-value-fen",
        "100000",
    ]);
    fails_saying(
        env.command(&["merchant", "prepaid-policy", "--set", "maybe"]),
        "maybe",
    );
    assert_eq!(
        env.json(&["merchant", "prepaid-policy", "--set", "off", "--json"])["enabled"],
        false
    );
}
