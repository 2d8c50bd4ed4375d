//! Tidy rules over the whole source tree, so the code stays navigable as
//! domains are added: no source file over [`FILE_LINES_MAX`] lines and no
//! function over [`FN_LINES_MAX`] lines, except the ones listed below with
//! their size today, which may only shrink (a listed file or function that
//! grows fails, and one that fits the rule must leave the list); and every
//! conformance check runs on both databases.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const FILE_LINES_MAX: usize = 1000;
const FN_LINES_MAX: usize = 100;

/// Files over the limit today, with their line counts: they may only shrink.
const LONG_FILES: &[(&str, usize)] = &[("crates/web/tests/stored_value.rs", 1184)];

/// Functions over the limit today (`path::name`), with their line counts.
const LONG_FNS: &[(&str, usize)] = &[
    ("crates/conformance/src/cards.rs::card_operations_follow_the_state_machine_and_are_audited", 119),
    ("crates/conformance/src/cards.rs::editing_changes_only_the_chosen_fields", 110),
    ("crates/conformance/src/cards.rs::filters_narrow_lists_and_counts", 117),
    ("crates/conformance/src/goods.rs::cards_are_linked_to_goods_by_filter", 111),
    ("crates/conformance/src/ledger.rs::signed_redemptions_keep_nonce_and_idempotency_rules", 126),
    ("crates/conformance/src/mall.rs::mall_orders_issue_codes_once", 106),
    ("crates/conformance/src/pickup_orders.rs::a_pickup_follows_the_channel_goods_consignee_and_date_rules", 255),
    ("crates/conformance/src/pickup_orders.rs::a_pickup_uses_the_card_and_creates_one_order", 230),
    ("crates/conformance/src/pickup_orders.rs::pickup_checks_follow_the_card_and_the_attempt_limits", 118),
    ("crates/kaquan/src/batches.rs::batch_command", 115),
    ("crates/kaquan/src/staff.rs::user_command", 127),
    ("crates/kaquan/tests/cli.rs::an_xlsx_export_reads_back_with_numbers_passwords_and_no_formulas", 114),
    ("crates/kaquan/tests/cli.rs::scripted_commands_print_one_json_document_and_refuse_bad_input", 120),
    ("crates/store-postgres/src/batches.rs::fill_batch", 137),
    ("crates/store-postgres/src/mall.rs::issue_order_codes", 114),
    ("crates/store-sqlite/src/ledger.rs::redeem", 125),
    ("crates/store-sqlite/src/redeem_set_wise.rs::redeem_set_wise", 278),
    ("crates/store-sqlite/src/tests.rs::statement_chains_are_filled_by_the_migration_and_checked", 110),
    ("crates/web/tests/browser.rs::a_merchant_creates_activates_edits_and_exports_cards_in_the_console", 110),
    ("crates/web/tests/hardening.rs::misspelled_filters", 102),
    ("crates/web/tests/http.rs::goods_catalogue", 136),
    ("crates/web/tests/pickup.rs::orders_flow", 242),
    ("crates/web/tests/stored_value.rs::code_lookup", 118),
    ("crates/web/tests/stored_value.rs::console_flow", 250),
    ("crates/web/tests/stored_value.rs::login_links", 101),
    ("crates/web/tests/stored_value.rs::open_api_flow", 185),
    ("crates/web/tests/stored_value.rs::signature_rules", 235),
];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn rust_sources() -> Vec<(String, String)> {
    let root = workspace();
    let mut files = Vec::new();
    let mut dirs = vec![root.join("crates"), root.join("bench/src")];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let relative = path
                    .strip_prefix(&root)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                files.push((relative, std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
    files.sort();
    files
}

/// Functions and their lengths in lines, found by their braces.
fn functions(source: &str) -> Vec<(String, usize)> {
    let lines: Vec<&str> = source.lines().collect();
    let mut found = Vec::new();
    for (idx, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let header = [
            "fn ",
            "pub fn ",
            "async fn ",
            "pub async fn ",
            "pub(crate) fn ",
            "pub(crate) async fn ",
        ]
        .iter()
        .find_map(|p| trimmed.strip_prefix(p));
        let Some(rest) = header else { continue };
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let mut depth = 0i64;
        let mut opened = false;
        for (offset, body) in lines[idx..].iter().enumerate() {
            for c in body.chars() {
                match c {
                    '{' => {
                        depth += 1;
                        opened = true;
                    }
                    '}' => depth -= 1,
                    ';' if !opened && depth == 0 => break,
                    _ => {}
                }
            }
            if !opened && body.trim_end().ends_with(';') {
                break; // a declaration without a body
            }
            if opened && depth <= 0 {
                found.push((name.clone(), offset + 1));
                break;
            }
        }
    }
    found
}

#[test]
fn no_file_or_function_grows_past_its_limit() {
    let long_files: BTreeMap<&str, usize> = LONG_FILES.iter().copied().collect();
    let long_fns: BTreeMap<&str, usize> = LONG_FNS.iter().copied().collect();
    let mut problems = Vec::new();
    let mut seen_files = Vec::new();
    let mut seen_fns = Vec::new();
    for (path, source) in rust_sources() {
        let n_lines = source.lines().count();
        match long_files.get(path.as_str()) {
            Some(allowed) if n_lines > *allowed => problems.push(format!(
                "{path}: {n_lines} lines, listed at {allowed}: split it"
            )),
            Some(_) if n_lines <= FILE_LINES_MAX => problems.push(format!(
                "{path}: {n_lines} lines now fits {FILE_LINES_MAX}: take it off LONG_FILES"
            )),
            Some(_) => seen_files.push(path.clone()),
            None if n_lines > FILE_LINES_MAX => problems.push(format!(
                "{path}: {n_lines} lines, over {FILE_LINES_MAX}: split it by domain"
            )),
            None => {}
        }
        for (name, n) in functions(&source) {
            let key = format!("{path}::{name}");
            match long_fns.get(key.as_str()) {
                Some(allowed) if n > *allowed => {
                    problems.push(format!("{key}: {n} lines, listed at {allowed}"))
                }
                Some(_) if n <= FN_LINES_MAX => problems.push(format!(
                    "{key}: {n} lines now fits {FN_LINES_MAX}: take it off LONG_FNS"
                )),
                Some(_) => seen_fns.push(key),
                None if n > FN_LINES_MAX => {
                    problems.push(format!("(\"{key}\", {n}),  // over {FN_LINES_MAX} lines"))
                }
                None => {}
            }
        }
    }
    for (path, _) in LONG_FILES {
        if !seen_files.iter().any(|p| p == path) && !problems.iter().any(|p| p.starts_with(path)) {
            problems.push(format!(
                "{path}: listed in LONG_FILES but gone: take it off"
            ));
        }
    }
    for (key, _) in LONG_FNS {
        if !seen_fns.iter().any(|k| k == key) && !problems.iter().any(|p| p.contains(key)) {
            problems.push(format!("{key}: listed in LONG_FNS but gone: take it off"));
        }
    }
    assert!(problems.is_empty(), "tidy:\n{}", problems.join("\n"));
}

#[test]
fn every_conformance_check_runs_on_both_databases() {
    let root = workspace().join("crates/conformance/src");
    let listing = std::fs::read_to_string(root.join("lib.rs")).unwrap();
    let macro_body = listing
        .split("conformance_tests!(@each $make_store;")
        .nth(1)
        .and_then(|rest| rest.split(");").next())
        .expect("the list of checks in conformance_tests!");
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(&root).unwrap() {
        let source = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for line in source.lines() {
            let Some(rest) = line.strip_prefix("pub async fn ") else {
                continue;
            };
            if !rest.contains("(store: &dyn Store)") {
                continue;
            }
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !macro_body
                .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .any(|word| word == name)
            {
                missing.push(name);
            }
        }
    }
    assert!(
        missing.is_empty(),
        "conformance checks no backend runs (list them in conformance_tests!): {missing:?}"
    );
}

/// Store conflicts are typed (`kaquan_core::Conflict`): a handler matches
/// the kind, never text a backend wrote.
#[test]
fn store_conflicts_carry_a_kind_not_text() {
    let mut found = Vec::new();
    for (path, source) in rust_sources() {
        // The HTTP error's own `Conflict(String)` is a message for people.
        if path.ends_with("tests/tidy.rs") || path == "crates/web/src/error.rs" {
            continue;
        }
        for (n, line) in source.lines().enumerate() {
            let built_from_text = [
                "StoreError::Conflict(\"",
                "StoreError::Conflict(format!",
                "Conflict(String)",
            ]
            .iter()
            .any(|pattern| line.contains(pattern))
                && !line.contains("ApiError");
            if built_from_text {
                found.push(format!("{path}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "store conflicts built from text:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_function_finder_counts_bodies() {
    let source = "fn a() {\n    let x = 1;\n}\n\nfn b();\npub async fn c(\n    x: i64,\n) -> i64 {\n    x\n}\n";
    assert_eq!(
        functions(source),
        [("a".to_owned(), 3), ("c".to_owned(), 5)]
    );
}
