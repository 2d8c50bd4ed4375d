//! The `kaquan` binary as operators and print shops script it: on SQLite
//! and PostgreSQL, killed mid-batch, and read back with real readers.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

mod common;
use common::*;

fn generation_killed_midway_is_all_or_nothing(env: Env) {
    env.setup();
    let mut child = env
        .command(&[
            "batch",
            "generate",
            "--quantity",
            "200000",
            "--numbering",
            "random",
            "--number-length",
            "12",
            "--password-length",
            "12",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    for line in stderr.lines() {
        let line = line.unwrap();
        if line.contains("生成中") && !line.contains(" 0%") {
            break;
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    env.run(&["migrate"]); // the restart
    let batches = env.json(&["batch", "list", "--json"]);
    let batch = &batches["batches"][0];
    eprintln!("after the kill: {batch}");
    match batch["state"].as_str().unwrap() {
        "failed" => assert_eq!(
            batch["n_cards"], 0,
            "a failed batch holds nothing usable: {batch}"
        ),
        "ready" => assert_eq!(
            batch["n_cards"], 200_000,
            "a ready batch is complete: {batch}"
        ),
        other => panic!("after a restart no batch may be {other}: {batch}"),
    }
    env.run(&["verify"]);
    // The next batch still works and gets fresh serials.
    let next = env.json(&["batch", "generate", "--quantity", "10", "--json"]);
    assert_eq!(next["n_cards"], 10);
    assert!(next["serial_first"].as_i64().unwrap() > 200_000);
}

#[test]
fn a_batch_killed_mid_generation_on_sqlite_is_all_or_nothing() {
    generation_killed_midway_is_all_or_nothing(Env::sqlite());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_killed_mid_generation_on_postgres_is_all_or_nothing() {
    let env = Env::postgres().await;
    tokio::task::spawn_blocking(move || generation_killed_midway_is_all_or_nothing(env))
        .await
        .unwrap();
}

#[test]
fn no_exported_password_is_found_in_the_database_file_or_its_wal() {
    let env = Env::sqlite();
    env.setup();
    env.run(&[
        "batch",
        "generate",
        "--quantity",
        "3000",
        "--password-charset",
        "mixed",
        "--password-length",
        "12",
    ]);
    let export = env.dir.join("cards.csv");
    env.run(&[
        "export",
        "cards",
        "--batch",
        "1",
        "--format",
        "csv",
        "--output",
        export.to_str().unwrap(),
        "--with-secrets",
    ]);
    let passwords: Vec<String> = read_csv_passwords(&export)
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    assert_eq!(passwords.len(), 3000);
    assert!(passwords.iter().all(|p| p.len() == 12));
    // Every password has the same length, so one pass over the bytes checks them all.
    let wanted: std::collections::HashSet<&[u8]> = passwords.iter().map(|p| p.as_bytes()).collect();
    let mut scanned = 0;
    for name in ["kaquan.db", "kaquan.db-wal", "kaquan.db-shm"] {
        let Ok(bytes) = std::fs::read(env.dir.join(name)) else {
            continue;
        };
        scanned += bytes.len();
        assert!(
            !bytes.windows(12).any(|w| wanted.contains(w)),
            "a password is in {name} in plaintext"
        );
    }
    assert!(scanned > 100_000, "the database and WAL were scanned");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(env.dir.join("test.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the key file is private");
    }
}

#[test]
fn an_xlsx_export_reads_back_with_numbers_passwords_and_no_formulas() {
    use calamine::{Data, Reader};
    let env = Env::sqlite();
    env.setup();
    let remark = "=HYPERLINK(\"http://evil\",\"x\")";
    env.run(&[
        "batch",
        "generate",
        "--quantity",
        "40",
        "--prefix",
        "A388",
        "--face-value-fen",
        "38800",
        "--valid-until",
        "2027-01-31",
        "--remark",
        remark,
    ]);
    let xlsx = env.dir.join("cards.xlsx");
    let csv = env.dir.join("cards.csv");
    env.run(&[
        "export",
        "cards",
        "--batch",
        "1",
        "--format",
        "xlsx",
        "--output",
        xlsx.to_str().unwrap(),
        "--with-secrets",
    ]);
    env.run(&[
        "export",
        "cards",
        "--batch",
        "1",
        "--format",
        "csv",
        "--output",
        csv.to_str().unwrap(),
        "--with-secrets",
    ]);
    let mut workbook: calamine::Xlsx<_> = calamine::open_workbook(&xlsx).unwrap();
    let range = workbook.worksheet_range_at(0).unwrap().unwrap();
    let rows: Vec<&[Data]> = range.rows().collect();
    assert_eq!(rows.len(), 41);
    let header: Vec<String> = rows[0].iter().map(|c| c.to_string()).collect();
    assert_eq!(
        header,
        [
            "卡序号",
            "卡号",
            "密码",
            "二维码内容",
            "卡券面值(元)",
            "有效期开始",
            "有效期结束",
            "状态",
            "券商",
            "批次号",
            "卡券备注"
        ]
    );
    let expected = read_csv_passwords(&csv);
    for (row, (number, password)) in rows[1..].iter().zip(&expected) {
        // 卡序号, 面值, 批次号 are numbers; the rest text.
        let numbers: Vec<bool> = row.iter().map(|c| matches!(c, Data::Float(_))).collect();
        let expected: Vec<bool> = (0..11).map(|c| [0, 4, 9].contains(&c)).collect();
        assert_eq!(numbers, expected);
        assert_eq!(&row[1].to_string(), number);
        assert_eq!(&row[2].to_string(), password);
        assert_eq!(row[4], Data::Float(388.0));
        assert_eq!(row[6].to_string(), "2027-01-31");
        assert_eq!(
            row[10].to_string(),
            format!("'{remark}"),
            "the formula trigger is escaped"
        );
    }
    let formulas = workbook.worksheet_formula("卡券").unwrap();
    assert!(
        formulas.cells().all(|(_, _, f)| f.is_empty()),
        "no cell holds a formula"
    );
    // The passwords are the cards' real passwords: they open from the sealed copies too.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        use kaquan_core::card::CardStore;
        let store = kaquan_store_sqlite::open(
            &env.dir.join("kaquan.db"),
            kaquan_store_sqlite::OpenMode::MustExist,
        )
        .unwrap();
        let master = kaquan_core::secrets::MasterKey::from_hex(
            &std::fs::read_to_string(env.dir.join("test.key")).unwrap(),
        )
        .unwrap();
        let cards = store
            .cards_after(1, &kaquan_core::card::CardFilter::default(), 0, 100)
            .await
            .unwrap();
        let keys = master.merchant_keys(1, cards[0].key_version);
        for (card, (number, password)) in cards.iter().zip(&expected) {
            assert_eq!(&card.card.number, number);
            assert_eq!(
                keys.open(number, card.secret_sealed.as_ref().unwrap())
                    .as_ref(),
                Some(password)
            );
        }
    });
}

#[test]
fn exported_qr_codes_decode_to_the_cards_redeem_page() {
    let env = Env::sqlite();
    env.setup();
    env.run(&["batch", "generate", "--quantity", "3", "--prefix", "Q1"]);
    let zip_path = env.dir.join("qr.zip");
    env.run(&[
        "export",
        "qr-codes",
        "--batch",
        "1",
        "--image",
        "png",
        "--output",
        zip_path.to_str().unwrap(),
        "--public-url",
        "https://cards.example.com",
    ]);
    let mut archive = zip::ZipArchive::new(std::fs::File::open(&zip_path).unwrap()).unwrap();
    assert_eq!(archive.len(), 3);
    for idx in 0..archive.len() {
        let mut entry = archive.by_index(idx).unwrap();
        let number = entry
            .name()
            .unwrap()
            .strip_suffix(".png")
            .unwrap()
            .to_owned();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut pixels).unwrap();
        assert_eq!(info.color_type, png::ColorType::Grayscale);
        let (width, height) = (info.width as usize, info.height as usize);
        let mut image = rqrr::PreparedImage::prepare_from_greyscale(width, height, |x, y| {
            pixels[y * width + x]
        });
        let grids = image.detect_grids();
        assert_eq!(grids.len(), 1, "one QR code in {number}.png");
        let (_, content) = grids[0].decode().unwrap();
        assert_eq!(
            content,
            format!("https://cards.example.com/m/1/redeem?number={number}")
        );
    }
    let svg = env.dir.join("qr-svg.zip");
    env.run(&[
        "export",
        "qr-codes",
        "--batch",
        "1",
        "--image",
        "svg",
        "--output",
        svg.to_str().unwrap(),
    ]);
    let mut archive = zip::ZipArchive::new(std::fs::File::open(&svg).unwrap()).unwrap();
    assert!(archive
        .by_index(0)
        .unwrap()
        .name()
        .unwrap()
        .ends_with(".svg"));
}

#[test]
fn scripted_commands_print_one_json_document_and_refuse_bad_input() {
    let env = Env::sqlite();
    let missing = env.command(&["batch", "list"]).output().unwrap();
    assert!(
        !missing.status.success(),
        "a missing SQLite file is not created by other commands"
    );
    assert!(!env.dir.join("kaquan.db").exists());
    env.setup();
    let typo = Command::new(KAQUAN)
        .args(["--database-url", "sqlit://x.db", "batch", "list"])
        .output()
        .unwrap();
    assert!(!typo.status.success());
    assert!(String::from_utf8_lossy(&typo.stderr).contains("unknown database URL scheme"));
    let created = env.json(&[
        "batch",
        "generate",
        "--quantity",
        "100",
        "--numbering",
        "sequential",
        "--prefix",
        "B2",
        "--json",
    ]);
    assert_eq!(created["n_cards"], 100);
    let activated = env.json(&[
        "cards",
        "activate",
        "--serial-from",
        "1",
        "--serial-to",
        "20",
        "--json",
    ]);
    assert_eq!(activated["n_cards"], 20);
    assert_eq!(
        env.json(&["cards", "void", "--batch", "1", "--json"])["n_cards"],
        100
    );
    assert_eq!(
        env.json(&[
            "cards",
            "delete",
            "--serial-from",
            "91",
            "--serial-to",
            "100",
            "--json"
        ])["n_cards"],
        10
    );
    assert_eq!(
        env.json(&["cards", "restore", "--batch", "1", "--json"])["n_cards"],
        90
    );
    let refused = env.command(&["cards", "activate"]).output().unwrap();
    assert!(
        !refused.status.success(),
        "a bulk operation needs a selection"
    );
    let too_many = env
        .command(&["batch", "generate", "--quantity", "1000001"])
        .output()
        .unwrap();
    assert!(!too_many.status.success());
    assert!(String::from_utf8_lossy(&too_many.stderr).contains("生成数量"));
    let mut user = env
        .command(&[
            "user",
            "create",
            "--username",
            "boss",
            "--role",
            "owner",
            "--password-stdin",
            "--json",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(user.stdin.as_mut().unwrap(), b"abc12345\n").unwrap();
    let output = user.wait_with_output().unwrap();
    assert!(output.status.success());
    let created: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(created["role"], "owner");
    let import = env.dir.join("import.csv");
    std::fs::write(&import, "卡号,密码\nIMP0001,abcd1234\nIMP0001,abcd1234\n").unwrap();
    let failed = env
        .command(&[
            "batch",
            "import",
            "--file",
            import.to_str().unwrap(),
            "--json",
        ])
        .output()
        .unwrap();
    assert!(!failed.status.success());
    let report: Value = serde_json::from_slice(&failed.stdout).unwrap();
    assert_eq!(report["errors"][0]["line"], 3);
    std::fs::write(&import, "卡号,密码\nIMP0001,abcd1234\nIMP0002,abcd1234\n").unwrap();
    assert_eq!(
        env.json(&[
            "batch",
            "import",
            "--file",
            import.to_str().unwrap(),
            "--json"
        ])["n_cards"],
        2
    );
    assert_eq!(
        env.json(&["merchant", "list", "--json"])["merchants"][0]["name"],
        "果园"
    );
    env.run(&["verify"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_detects_a_hand_corrupted_database_on_postgres() {
    let env = Env::postgres().await;
    let url = env.url.clone();
    let env = tokio::task::spawn_blocking(move || {
        env.setup();
        env.run(&["batch", "generate", "--quantity", "10"]);
        env.run(&["verify"]);
        env
    })
    .await
    .unwrap();
    let (client, connection) = tokio_postgres_connect(&url).await;
    let handle = tokio::spawn(connection);
    client
        .batch_execute("UPDATE cards SET state = 'active', activated_at = NULL WHERE serial = 3")
        .await
        .unwrap();
    drop(client);
    let _ = handle.await;
    let output = tokio::task::spawn_blocking(move || env.command(&["verify"]).output().unwrap())
        .await
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains("no activation time"));
}

#[test]
fn the_first_serve_creates_an_owner_whose_password_is_in_a_private_file() {
    use std::io::{Read, Write};
    let env = Env::sqlite();
    let mut server = env
        .command(&["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stderr.take().unwrap()).lines();
    let mut address = None;
    let mut said = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        said.push_str(&line);
        if let Some(rest) = line.split("http://").nth(1) {
            address = Some(rest.split('/').next().unwrap().to_owned());
            break;
        }
    }
    let address = address.expect("serve says where to open the console");
    let password_file = env.dir.join("test.initial-password");
    let password = std::fs::read_to_string(&password_file)
        .unwrap()
        .trim()
        .to_owned();
    assert!(!said.contains(&password), "the password is not printed");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&password_file)
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o600
        );
    }
    let body = format!("{{\"username\":\"admin\",\"password\":\"{password}\"}}");
    let mut stream = std::net::TcpStream::connect(&address).unwrap();
    write!(stream, "POST /api/v1/sessions HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    server.kill().unwrap();
    server.wait().unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response
        .to_ascii_lowercase()
        .contains("set-cookie: kaquan_session="));
    assert!(response.contains("HttpOnly") && response.contains("SameSite=Strict"));
}

#[tokio::test(flavor = "multi_thread")]
async fn fifty_pickups_of_one_card_through_two_servers_on_postgres_make_one_order() {
    let env = Env::postgres().await;
    let env = env.with_owner().await;
    // The first server logs everything it can: no level may print the
    // customer's personal data, the card's password or a form token.
    let (mut first, first_address, first_log) = start_server_logging(&env, "trace");
    let (mut second, second_address) = start_server(&env);
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let csrf = sign_in(&http, &first_address).await;
    let (env, card) = card_with_goods(env, &http, &first_address, &csrf).await;
    let password = card.password.clone();
    let form = card.pickup_form();
    let customers = reqwest::Client::new();
    let attempts = (0..50).map(|i| {
        let address = if i % 2 == 0 {
            &first_address
        } else {
            &second_address
        };
        let request = customers
            .post(format!("http://{address}/m/1/redeem/confirm"))
            .form(&form);
        async move { request.send().await.unwrap().status().as_u16() }
    });
    let statuses = futures_util::future::join_all(attempts).await;
    first.kill().unwrap();
    second.kill().unwrap();
    first.wait().unwrap();
    second.wait().unwrap();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    // The others see the card's order (409: their request made none), or a
    // refusal while the card was being used, or the attempt limit.
    assert!(
        statuses.iter().all(|s| [200, 409, 422, 429].contains(s)),
        "no 5xx: {statuses:?}"
    );
    let (client, connection) = tokio_postgres_connect(&env.url).await;
    tokio::spawn(connection);
    let n: i64 = client
        .query_one("SELECT count(*) FROM orders", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
    let log = first_log.lock().unwrap().clone();
    assert!(log.contains("kaquan 已启动"), "{log}");
    // Every request runs in a span with its matched route (never the raw
    // path, which may hold a card number), status and duration.
    assert!(
        log.lines().any(
            |line| line.contains("route=/m/{merchant_id}/redeem/confirm")
                && line.contains("status=")
                && line.contains("duration_ms=")
                && line.contains("request finished")
        ),
        "{log}"
    );
    assert!(
        log.lines()
            .any(|line| line.contains("route=/api/v1/goods") && line.contains("merchant.id=1")),
        "signed-in requests name their merchant: {log}"
    );
    for secret in [
        "13800001234",
        "张三",
        "文三路",
        password.as_str(),
        csrf.as_str(),
    ] {
        assert!(!log.contains(secret), "the trace log holds {secret:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn one_thousand_redemptions_of_one_code_through_two_servers_on_postgres_credit_once() {
    let env = Env::postgres().await;
    let (env, (key_id, secret, code)) = tokio::task::spawn_blocking(move || {
        env.setup();
        let made = key_and_code(&env);
        (env, made)
    })
    .await
    .unwrap();
    let (mut first, first_address) = start_server(&env);
    let (mut second, second_address) = start_server(&env);
    let http = reqwest::Client::new();
    let attempts = (0..1000).map(|i| {
        let address = if i % 2 == 0 {
            &first_address
        } else {
            &second_address
        };
        let body = serde_json::json!({
            "customer_id": format!("u{}", i % 25),
            "code": code,
            "client_ip": format!("10.1.{}.{}", i / 200, i % 200),
        });
        let (http, key_id, secret) = (&http, &key_id, &secret);
        async move {
            signed_post(
                http,
                address,
                (key_id, secret),
                "/open/v1/redemptions",
                &body,
                &format!("redeem-{i}"),
            )
            .await
            .0
        }
    });
    let statuses = futures_util::future::join_all(attempts).await;
    first.kill().unwrap();
    second.kill().unwrap();
    first.wait().unwrap();
    second.wait().unwrap();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    // The others are refused: the code is used (422), and once the refusals
    // reach 兑换防刷, which every refusal counts against, locked out (429).
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 422 || *s == 429),
        "no 5xx: {statuses:?}"
    );
    let (client, connection) = tokio_postgres_connect(&env.url).await;
    tokio::spawn(connection);
    let row = client
        .query_one(
            "SELECT count(*), COALESCE(SUM(amount_fen), 0)::BIGINT FROM ledger_transactions WHERE kind = 'redeem'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1)), (1, 5000));
    tokio::task::spawn_blocking(move || env.run(&["verify"]))
        .await
        .unwrap();
}

/// Runs the README's curl + openssl example against a real server.
fn run_readme_example(address: &str, key_id: &str, secret: &str, code: &str) -> String {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
            .unwrap();
    let block = readme
        .split("<!-- open-api-example:start -->")
        .nth(1)
        .and_then(|rest| rest.split("<!-- open-api-example:end -->").next())
        .expect("the README holds the open-API example");
    let script = block
        .lines()
        .filter(|line| !line.starts_with("```"))
        .collect::<Vec<_>>()
        .join("\n");
    let output = Command::new("bash")
        .arg("-euc")
        .arg(&script)
        .env("KAQUAN", format!("http://{address}"))
        .env("KEY_ID", key_id)
        .env("SECRET", secret)
        .env("CODE", code)
        .output()
        .expect("bash, curl and openssl are installed");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Runs the README example, then `corrupt`, then expects `verify` to fail
/// naming each of `violations`.
fn readme_example_then_corrupt_a_balance(
    env: Env,
    corrupt: impl FnOnce(&Env),
    violations: &[&str],
) {
    env.setup();
    let (key_id, secret, code) = key_and_code(&env);
    let (mut server, address) = start_server(&env);
    let answer = run_readme_example(&address, &key_id, &secret, &code);
    let again = run_readme_example(&address, &key_id, &secret, &code);
    server.kill().unwrap();
    server.wait().unwrap();
    let answer: Value = serde_json::from_str(&answer).expect("a JSON answer");
    assert_eq!(answer["balance_after_fen"], 5000, "{answer}");
    let again: Value = serde_json::from_str(&again).unwrap();
    assert_eq!(again, answer, "the same Idempotency-Key replays the answer");
    env.run(&["verify"]);
    corrupt(&env);
    let output = env.command(&["verify"]).output().unwrap();
    assert!(!output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    for violation in violations {
        assert!(stdout.contains(violation), "{violation}: {stdout}");
    }
}

#[test]
fn the_readme_example_redeems_a_code_and_verify_catches_a_corrupted_balance_on_sqlite() {
    readme_example_then_corrupt_a_balance(
        Env::sqlite(),
        |env| {
            let connection = rusqlite::Connection::open(env.dir.join("kaquan.db")).unwrap();
            connection
                .execute(
                    "UPDATE ledger_accounts SET balance = balance + 1 WHERE kind = 'customer'",
                    [],
                )
                .unwrap();
        },
        &["customer balances differ from the sum of their postings"],
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_readme_example_redeems_a_code_and_verify_catches_a_corrupted_balance_on_postgres() {
    let env = Env::postgres().await;
    let url = env.url.clone();
    tokio::task::spawn_blocking(move || {
        readme_example_then_corrupt_a_balance(
            env,
            move |_| {
                let runtime = tokio::runtime::Runtime::new().unwrap();
                runtime.block_on(async {
                    let (client, connection) = tokio_postgres_connect(&url).await;
                    tokio::spawn(connection);
                    // The ledger's references to accounts are checked by
                    // verify, not by a foreign key (migration 009).
                    client
                    .batch_execute(
                        "UPDATE ledger_accounts SET balance = balance + 1 WHERE kind = 'customer'; \
                         INSERT INTO ledger_postings (transaction_id, account_id, asset, amount, merchant_id) \
                         SELECT id, 999999, 'fen', 1, merchant_id FROM ledger_transactions LIMIT 1",
                    )
                    .await
                    .unwrap();
                });
            },
            &[
                "customer balances differ from the sum of their postings",
                "ledger postings whose account does not exist",
            ],
        )
    })
    .await
    .unwrap();
}

#[test]
fn a_hostile_xlsx_is_refused_with_a_message_not_a_crash() {
    let env = Env::sqlite();
    env.setup();
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let sheet = workbook.add_worksheet();
    sheet.write_string(0, 0, "卡号").unwrap();
    sheet.write_string(1_048_575, 16_383, "x").unwrap();
    let file = env.dir.join("far.xlsx");
    std::fs::write(&file, workbook.save_to_buffer().unwrap()).unwrap();
    let output = env
        .command(&["batch", "import", "--file", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "refused, not aborted");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("行"), "{stderr}");
    env.run(&["verify"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_operator_resets_a_locked_out_owner() {
    let env = tokio::task::spawn_blocking(|| {
        let env = Env::sqlite();
        env.setup();
        create_owner(&env, "boss", "abc12345");
        env
    })
    .await
    .unwrap();
    let (mut server, address) = start_server(&env);
    let http = reqwest::Client::new();
    let sign_in = |password: &'static str| {
        let request = http
            .post(format!("http://{address}/api/v1/sessions"))
            .json(&serde_json::json!({"username": "boss", "password": password}));
        async move { request.send().await.unwrap().status().as_u16() }
    };
    for _ in 0..5 {
        sign_in("wrong1234").await;
    }
    assert_eq!(
        sign_in("abc12345").await,
        429,
        "someone locked the owner out"
    );
    let env = tokio::task::spawn_blocking(move || {
        let mut reset = env
            .command(&[
                "user",
                "reset-password",
                "--username",
                "boss",
                "--password-stdin",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(reset.stdin.as_mut().unwrap(), b"new12345x\n").unwrap();
        let output = reset.wait_with_output().unwrap();
        assert!(output.status.success());
        assert!(String::from_utf8_lossy(&output.stdout).contains("解除登录锁定"));
        env
    })
    .await
    .unwrap();
    assert_eq!(
        sign_in("new12345x").await,
        200,
        "the operator got the owner back in"
    );
    server.kill().unwrap();
    server.wait().unwrap();
    drop(env);
}

/// A member of a year-end program who got 50 points on opening last year.
async fn member_from_last_year(env: &Env) {
    {
        use kaquan_core::member::operation::{ActivateMember, MemberAction, MemberOp};
        use kaquan_core::member::{PointsExpiry, PointsRule, ProgramFields};
        let store = env.sqlite_store();
        let now = kaquan_web::now();
        let last_year =
            kaquan_core::member::expiry::cutoff(PointsExpiry::YearEnd, now).unwrap() - 86_400;
        let fields = ProgramFields {
            title: "果园会员卡".into(),
            points: Some(PointsRule {
                init_increase_bonus: 50,
                ..PointsRule::default()
            }),
            expiry: PointsExpiry::YearEnd,
            ..ProgramFields::default()
        };
        let program = store
            .create_member_program(1, &fields, &kaquan_core::audit::Actor::cli(), last_year)
            .await
            .unwrap();
        let open = MemberOp {
            merchant_id: 1,
            action: MemberAction::Activate(ActivateMember {
                merchant_id: 1,
                program_id: program.id,
                customer: kaquan_core::ledger::CustomerRef::External("u1".into()),
                phone: "13800000000".into(),
                name: "王小明".into(),
                birthday: None,
                gender: None,
            }),
            actor: kaquan_core::audit::Actor::cli(),
            now: last_year,
        };
        store
            .post_member_op(&Default::default(), &open)
            .await
            .unwrap()
            .result
            .unwrap();
    }
}

/// `kaquan members`: the programs, 积分调整 (refused below zero), one run
/// of the 积分有效期 sweep, and the export read back with a real xlsx reader.
#[tokio::test(flavor = "multi_thread")]
async fn members_are_listed_adjusted_expired_and_exported_from_the_command_line() {
    let env = Env::sqlite();
    env.setup();
    member_from_last_year(&env).await;
    let programs = env.json(&["members", "programs", "--json"]);
    assert_eq!(programs["programs"][0]["n_members"], 1);
    let adjusted = env.json(&[
        "members",
        "adjust-points",
        "--member",
        "1",
        "--points",
        "-5",
        "--reason",
        "纠正",
        "--json",
    ]);
    assert_eq!(adjusted["points_after"], 45);
    let swept = env.json(&["members", "expire-points", "--json"]);
    assert_eq!(
        (swept["expired"].as_i64(), swept["noticed"].as_i64()),
        (Some(1), Some(0))
    );
    let refused = env
        .command(&[
            "members",
            "adjust-points",
            "--member",
            "1",
            "--points",
            "-1",
            "--reason",
            "x",
        ])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("积分不足"));
    let xlsx = env.dir.join("members.xlsx");
    env.run(&["members", "export", "--output", xlsx.to_str().unwrap()]);
    use calamine::Reader;
    let mut workbook: calamine::Xlsx<_> = calamine::open_workbook(&xlsx).unwrap();
    let sheet = workbook.sheet_names()[0].clone();
    let range = workbook.worksheet_range(&sheet).unwrap();
    assert_eq!(range.get((0, 0)).unwrap().to_string(), "会员号");
    assert_eq!(range.get((1, 3)).unwrap().to_string(), "13800000000");
    assert_eq!(
        range.get((1, 8)).unwrap().to_string(),
        "0",
        "50 − 5 used − 45 lapsed"
    );
    env.run(&["verify"]);
}
