//! What the CLI's tests share: a scratch directory with a database, the
//! `kaquan` binary run in it, servers started from it, and the open API's
//! signed requests.
#![allow(dead_code)]

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub const KAQUAN: &str = env!("CARGO_BIN_EXE_kaquan");

pub struct Env {
    pub dir: PathBuf,
    pub url: String,
    /// Environment variables every command gets, such as configuration.
    pub vars: Vec<(String, String)>,
    /// The PostgreSQL database, dropped when the test ends.
    _database: Option<kaquan_store_postgres::testing::TestDatabase>,
}

impl Env {
    pub fn sqlite() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "kaquan-cli-{}",
            kaquan_core::secrets::random_token_hex(6)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}", dir.join("kaquan.db").display());
        Self {
            dir,
            url,
            vars: Vec::new(),
            _database: None,
        }
    }

    pub async fn postgres() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "kaquan-cli-{}",
            kaquan_core::secrets::random_token_hex(6)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let database = kaquan_store_postgres::testing::create_test_database().await;
        Self {
            dir,
            url: database.url.clone(),
            vars: Vec::new(),
            _database: Some(database),
        }
    }

    pub fn command(&self, args: &[&str]) -> Command {
        self.command_on(&self.url, &self.dir.join("test.key"), args)
    }

    /// `kaquan` in the test's directory on another database or key file.
    pub fn command_on(&self, url: &str, key_file: &Path, args: &[&str]) -> Command {
        let mut command = Command::new(KAQUAN);
        command
            .current_dir(&self.dir)
            .env_remove("KAQUAN_MASTER_KEY")
            .env("KAQUAN_LOG", "warn")
            .arg("--database-url")
            .arg(url)
            .arg("--key-file")
            .arg(key_file)
            .args(args);
        command.envs(self.vars.iter().map(|(name, value)| (name, value)));
        command
    }

    pub fn run(&self, args: &[&str]) -> Output {
        let output = self.command(args).stdin(Stdio::null()).output().unwrap();
        assert!(
            output.status.success(),
            "kaquan {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    pub fn json(&self, args: &[&str]) -> Value {
        serde_json::from_slice(&self.run(args).stdout).unwrap()
    }

    /// Lets the servers send webhooks to the test's receiver on loopback.
    pub fn allow_private_webhooks(mut self) -> Self {
        self.vars.push((
            "KAQUAN__WEBHOOKS__ALLOW_PRIVATE_ADDRESSES".into(),
            "true".into(),
        ));
        self
    }

    /// [`Env::setup`] and the owner `boss` / `abc12345`, off the runtime.
    pub async fn with_owner(self) -> Self {
        tokio::task::spawn_blocking(move || {
            self.setup();
            create_owner(&self, "boss", "abc12345");
            self
        })
        .await
        .unwrap()
    }

    /// The SQLite database the commands use, opened as the server does.
    pub fn sqlite_store(&self) -> std::sync::Arc<dyn kaquan_core::store::Store> {
        let path = self.url.trim_start_matches("sqlite://").to_owned();
        std::sync::Arc::new(
            kaquan_store_sqlite::open(
                std::path::Path::new(&path),
                kaquan_store_sqlite::OpenMode::MustExist,
            )
            .unwrap(),
        )
    }

    pub fn setup(&self) {
        self.run(&["migrate"]);
        assert_eq!(
            self.json(&["merchant", "create", "--name", "果园", "--json"])["merchant_id"],
            1
        );
    }
}

/// Runs `command`, which must fail and say `words` on stderr.
pub fn fails_saying(mut command: Command, words: &str) {
    let output = command.output().unwrap();
    let args: Vec<_> = command.get_args().collect();
    assert!(!output.status.success(), "{args:?} succeeded");
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains(words), "{args:?}: {said}");
}

pub async fn tokio_postgres_connect(
    url: &str,
) -> (
    tokio_postgres::Client,
    impl std::future::Future<Output = Result<(), tokio_postgres::Error>>,
) {
    tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap()
}

/// Creates an owner account through `kaquan user create`, the password on stdin.
pub fn create_owner(env: &Env, username: &str, password: &str) {
    let mut user = env
        .command(&[
            "user",
            "create",
            "--username",
            username,
            "--role",
            "owner",
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    std::io::Write::write_all(
        user.stdin.as_mut().unwrap(),
        format!("{password}\n").as_bytes(),
    )
    .unwrap();
    assert!(user.wait().unwrap().success());
}

/// Starts `kaquan serve` on a free port and returns it with its address.
pub fn start_server(env: &Env) -> (std::process::Child, String) {
    let (server, address, _) = start_server_logging(env, "warn");
    (server, address)
}

/// Starts `kaquan serve` logging at `level`, with everything it logs.
pub fn start_server_logging(
    env: &Env,
    level: &str,
) -> (
    std::process::Child,
    String,
    std::sync::Arc<std::sync::Mutex<String>>,
) {
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let mut server = env
        .command(&["serve", "--listen", "127.0.0.1:0"])
        .env("KAQUAN_LOG", level)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stderr.take().unwrap()).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        log.lock().unwrap().push_str(&line);
        if let Some(rest) = line.split("打开 http://").nth(1) {
            let address = rest.split('/').next().unwrap().to_owned();
            // Keep draining stderr so the server never blocks on a full pipe.
            let kept = std::sync::Arc::clone(&log);
            std::thread::spawn(move || {
                for line in lines.map_while(Result::ok) {
                    let mut kept = kept.lock().unwrap();
                    kept.push_str(&line);
                    kept.push('\n');
                }
            });
            return (server, address, log);
        }
    }
    let _ = server.kill();
    let _ = server.wait();
    panic!("kaquan serve did not start");
}

/// An API key made through the CLI: (key_id, secret).
pub fn api_key(env: &Env, label: &str) -> (String, String) {
    let key = env.json(&["api-key", "create", "--label", label, "--json"]);
    (
        key["key_id"].as_str().unwrap().to_owned(),
        key["secret"].as_str().unwrap().to_owned(),
    )
}

/// An API key and one offline code of ¥50 made through the CLI: (key_id, secret, code).
pub fn key_and_code(env: &Env) -> (String, String, String) {
    let (key_id, secret, mut codes) = key_and_codes(env, 1);
    let code = codes.pop().unwrap();
    assert_eq!(code.len(), 19, "{code}");
    (key_id, secret, code)
}

/// An API key and `n` offline codes of ¥50 made through the CLI, read
/// back from their xlsx export: (key_id, secret, codes).
pub fn key_and_codes(env: &Env, n: usize) -> (String, String, Vec<String>) {
    let key = env.json(&["api-key", "create", "--label", "商城", "--json"]);
    let template = env.json(&[
        "codes",
        "generate",
        "--name",
        "春节卡",
        "--face-value",
        "50",
        "--quantity",
        &n.to_string(),
        "--json",
    ]);
    assert_eq!(template["n_codes"], n);
    let xlsx = env
        .dir
        .join(format!("codes-{}.xlsx", template["template_id"]));
    env.run(&[
        "codes",
        "export",
        "--template",
        &template["template_id"].to_string(),
        "--output",
        xlsx.to_str().unwrap(),
    ]);
    use calamine::Reader;
    let mut workbook: calamine::Xlsx<_> = calamine::open_workbook(&xlsx).unwrap();
    let sheet = workbook.sheet_names()[0].clone();
    let range = workbook.worksheet_range(&sheet).unwrap();
    let codes: Vec<String> = (1..=n as u32)
        .map(|row| range.get((row as usize, 0)).unwrap().to_string())
        .collect();
    (
        key["key_id"].as_str().unwrap().to_owned(),
        key["secret"].as_str().unwrap().to_owned(),
        codes,
    )
}

/// Signs and sends one open-API GET; its answer.
pub async fn signed_get(
    http: &reqwest::Client,
    address: &str,
    (key_id, secret): (&str, &str),
    path: &str,
) -> Value {
    let request = http.get(format!("http://{address}{path}"));
    let (status, answer) = send_signed(request, (key_id, secret), ("GET", path), "").await;
    assert_eq!(status, 200, "{answer}");
    answer
}

/// Signs and sends one open-API POST as the README describes.
pub async fn signed_post(
    http: &reqwest::Client,
    address: &str,
    key: (&str, &str),
    path: &str,
    body: &Value,
    idempotency_key: &str,
) -> (u16, Value) {
    let request = http
        .post(format!("http://{address}{path}"))
        .header("content-type", "application/json")
        .header("idempotency-key", idempotency_key);
    send_signed(request, key, ("POST", path), &body.to_string()).await
}

/// Adds the open API's signature headers to `request` and sends it with `body`.
async fn send_signed(
    request: reqwest::RequestBuilder,
    (key_id, secret): (&str, &str),
    (method, path): (&str, &str),
    body: &str,
) -> (u16, Value) {
    let body = body.to_owned();
    let timestamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    let nonce = kaquan_core::secrets::random_token_hex(16);
    let canonical = kaquan_core::signing::canonical_request(
        method,
        path,
        "",
        &timestamp,
        &nonce,
        body.as_bytes(),
    );
    let response = request
        .header("x-kaquan-key", key_id)
        .header("x-kaquan-timestamp", timestamp)
        .header("x-kaquan-nonce", nonce)
        .header(
            "x-kaquan-signature",
            kaquan_core::signing::sign(secret, &canonical),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// `kaquan export cards` of batch 1 as CSV with passwords to `output`.
pub fn export_passwords_args(output: &str) -> [&str; 9] {
    [
        "export",
        "cards",
        "--batch",
        "1",
        "--format",
        "csv",
        "--with-secrets",
        "--output",
        output,
    ]
}

/// The card number and password on each line of a CSV export with secrets.
pub fn read_csv_passwords(path: &Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .skip(1)
        .map(|l| {
            let cells: Vec<_> = l.split(',').collect();
            (cells[1].to_owned(), cells[2].to_owned())
        })
        .collect()
}

/// Signs in as the owner `create_owner(env, "boss", "abc12345")` made;
/// returns the CSRF token the console's writes carry.
pub async fn sign_in(http: &reqwest::Client, address: &str) -> String {
    let me: Value = http
        .post(format!("http://{address}/api/v1/sessions"))
        .json(&serde_json::json!({"username": "boss", "password": "abc12345"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    me["csrf_token"].as_str().unwrap().to_owned()
}

/// An activated pickup card and the goods it is good for.
pub struct Card {
    pub number: String,
    pub password: String,
    pub goods_id: String,
}

impl Card {
    /// The customer's pickup form for this card, as the H5 page posts it.
    pub fn pickup_form(&self) -> Vec<(&'static str, String)> {
        [
            ("number", self.number.as_str()),
            ("password", self.password.as_str()),
            ("goods_id", self.goods_id.as_str()),
            ("consignee", "张三"),
            ("phone", "13800001234"),
            ("province", "浙江省"),
            ("city", "杭州市"),
            ("district", "西湖区"),
            ("address", "文三路 100 号"),
            ("appointment_date", "2099-01-05"),
        ]
        .into_iter()
        .map(|(name, value)| (name, value.to_owned()))
        .collect()
    }
}

/// Adds goods through the API and one activated card for them through the
/// CLI (batch 1), read back from a CSV export with secrets.
pub async fn card_with_goods(
    env: Env,
    http: &reqwest::Client,
    address: &str,
    csrf: &str,
) -> (Env, Card) {
    let goods: Value = http
        .post(format!("http://{address}/api/v1/goods"))
        .header("x-csrf-token", csrf)
        .json(&serde_json::json!({"name": "苹果"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let goods_id = goods["id"].as_i64().unwrap().to_string();
    let csv = env.dir.join("card.csv");
    tokio::task::spawn_blocking(move || {
        env.run(&[
            "batch",
            "generate",
            "--quantity",
            "1",
            "--activate",
            "--goods",
            &goods_id,
        ]);
        env.run(&export_passwords_args(csv.to_str().unwrap()));
        let (number, password) = read_csv_passwords(&csv).remove(0);
        let card = Card {
            number,
            password,
            goods_id,
        };
        (env, card)
    })
    .await
    .unwrap()
}

/// Polls `check` until it returns `Some`, failing loudly after `limit`.
pub async fn wait_until<T, F, Fut>(what: &str, limit: std::time::Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let started = std::time::Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(started.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Runs SQL on the test's database as someone with its file or password
/// would.
pub async fn tamper(env: &Env, sql: &str) {
    if let Some(path) = env.url.strip_prefix("sqlite://") {
        let conn = rusqlite::Connection::open(path).unwrap();
        conn.execute_batch(sql).unwrap();
    } else {
        let (client, connection) = tokio_postgres_connect(&env.url).await;
        let handle = tokio::spawn(connection);
        client.batch_execute(sql).await.unwrap();
        drop(client);
        let _ = handle.await;
    }
}
