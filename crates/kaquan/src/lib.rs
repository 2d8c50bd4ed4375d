//! The `kaquan` command line: one binary that serves the console and API and
//! scripts batches, card operations and exports. Operators and print shops
//! script these names, so they are a contract (see README.md).
//!
//! Every command that creates or lists accepts `--json` and then prints one
//! JSON document on stdout; progress and logs go to stderr.

pub mod config;

use anyhow::{anyhow, bail, Context};
use clap::{Args, Parser, Subcommand, ValueEnum};
use config::{Config, DEFAULT_CONFIG};
use kaquan_core::audit::{Actor, AuditEntry};
use kaquan_core::auth::{
    check_staff_password, check_username, hash_staff_password, login_name, login_name_key,
    LOGIN_FAILURES_MERCHANT_ID,
};
use kaquan_core::batch::usecases::{self as usecases, BatchProgress};
use kaquan_core::batch::{BatchFields, BatchSpec, Numbering, PasswordCharset};
use kaquan_core::card::{CardFilter, CardOp};
use kaquan_core::clock::{end_of_day, format_datetime, parse_date, start_of_day};
use kaquan_core::secrets::MasterKey;
use kaquan_core::staff::NewStaff;
use kaquan_core::store::{Page, Store};
use serde_json::json;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Parser, Debug)]
#[command(
    name = "kaquan",
    version,
    about = "kaquan 卡券: cards and vouchers for merchants"
)]
pub struct Cli {
    /// sqlite://PATH or postgres://USER@HOST:PORT/DB (default sqlite://kaquan.db).
    #[arg(long, global = true, env = "KAQUAN_DATABASE_URL")]
    pub database_url: Option<String>,
    /// A TOML config file (see `kaquan default-config`).
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// The master key file (default: beside the SQLite file, else ./kaquan.key).
    #[arg(long, global = true)]
    pub key_file: Option<PathBuf>,
    /// Which merchant; may be omitted when the database holds exactly one.
    #[arg(long, global = true)]
    pub merchant: Option<i64>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the admin console and JSON API.
    Serve {
        /// Address to listen on, e.g. 127.0.0.1:8080.
        #[arg(long)]
        listen: Option<String>,
        /// The address customers reach kaquan at (for QR codes).
        #[arg(long)]
        public_url: Option<String>,
    },
    /// Create or upgrade the database schema.
    Migrate,
    /// Print a commented example config file.
    DefaultConfig,
    /// Merchants (tenants).
    #[command(subcommand)]
    Merchant(MerchantCommand),
    /// Staff accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Card batches.
    #[command(subcommand)]
    Batch(BatchCommand),
    /// Card state changes, selected by batch and/or serial range.
    #[command(subcommand)]
    Cards(CardsCommand),
    /// Exports for the print shop.
    #[command(subcommand)]
    Export(ExportCommand),
    /// Open-API keys of a merchant (two may be active at once, for rotation).
    #[command(subcommand)]
    ApiKey(ApiKeyCommand),
    /// Redemption codes (兑换码) that customers redeem into their balance.
    #[command(subcommand)]
    Codes(CodesCommand),
    /// Check every invariant (cards, orders, the ledger); exits non-zero on any violation.
    Verify,
}

#[derive(Subcommand, Debug)]
pub enum ApiKeyCommand {
    /// Create a key; prints its id and secret (shown only this once).
    Create {
        #[arg(long, default_value = "")]
        label: String,
        #[arg(long)]
        json: bool,
    },
    List {
        #[arg(long)]
        json: bool,
    },
    /// Stop accepting requests signed with a key.
    Revoke {
        /// The key's public id (kq_…).
        key_id: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum CodesCommand {
    /// 添加线下兑换码: a batch of codes for printing or hand-out.
    Generate {
        #[arg(long)]
        name: String,
        /// 兑换面额 in yuan, e.g. 100 or 99.50.
        #[arg(long)]
        face_value: String,
        #[arg(long)]
        quantity: i64,
        /// Inclusive YYYY-MM-DD.
        #[arg(long)]
        valid_from: Option<String>,
        #[arg(long)]
        valid_until: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Export a template's codes in plaintext for the print shop (audited).
    Export {
        #[arg(long)]
        template: i64,
        /// The file to write: `.csv` writes CSV, anything else xlsx (the same columns).
        #[arg(long)]
        output: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub enum MerchantCommand {
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        json: bool,
    },
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Create a staff account; the password is asked for, or read from stdin.
    Create {
        #[arg(long)]
        username: String,
        /// owner, card_manager, order_clerk, verifier, readonly, or a custom role name.
        #[arg(long)]
        role: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long, default_value = "")]
        phone: String,
        /// Read the password from the first line of stdin.
        #[arg(long)]
        password_stdin: bool,
        #[arg(long)]
        json: bool,
    },
    List {
        #[arg(long)]
        json: bool,
    },
    /// Set a new password for a staff account and lift its sign-in lock, so
    /// an operator can always get an owner back in. USERNAME is the name the
    /// account signs in with (see `user list`); the password is asked for,
    /// or read from stdin.
    ResetPassword {
        #[arg(long)]
        username: String,
        #[arg(long)]
        password_stdin: bool,
        #[arg(long)]
        json: bool,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum NumberingArg {
    Random,
    Sequential,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum CharsetArg {
    Digits,
    Letters,
    Mixed,
    Unambiguous,
}

#[derive(Subcommand, Debug)]
pub enum BatchCommand {
    /// Generate a batch of cards (all or nothing), with a progress bar.
    Generate(GenerateArgs),
    /// Import cards with their own numbers and passwords from xlsx or CSV.
    Import {
        #[arg(long)]
        file: PathBuf,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        face_value_fen: Option<i64>,
        #[arg(long)]
        valid_from: Option<String>,
        #[arg(long)]
        valid_until: Option<String>,
        #[arg(long)]
        remark: Option<String>,
        #[arg(long)]
        json: bool,
    },
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Debug)]
pub struct GenerateArgs {
    #[arg(long)]
    pub name: Option<String>,
    #[arg(long)]
    pub quantity: i64,
    #[arg(long)]
    pub prefix: Option<String>,
    #[arg(long)]
    pub number_length: Option<usize>,
    #[arg(long, value_enum)]
    pub numbering: Option<NumberingArg>,
    #[arg(long)]
    pub start_number: Option<u64>,
    #[arg(long)]
    pub password_length: Option<usize>,
    #[arg(long, value_enum)]
    pub password_charset: Option<CharsetArg>,
    #[arg(long)]
    pub face_value_fen: Option<i64>,
    /// YYYY-MM-DD
    #[arg(long)]
    pub valid_from: Option<String>,
    /// YYYY-MM-DD (inclusive)
    #[arg(long)]
    pub valid_until: Option<String>,
    #[arg(long)]
    pub remark: Option<String>,
    /// Activate the cards as soon as they exist (default: inactive until sold).
    #[arg(long)]
    pub activate: bool,
    /// 对应商品: goods ids every card may be exchanged for, e.g. --goods 1,2,3.
    #[arg(long, value_delimiter = ',')]
    pub goods: Vec<i64>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct Selection {
    #[arg(long)]
    pub batch: Option<i64>,
    #[arg(long)]
    pub serial_from: Option<i64>,
    #[arg(long)]
    pub serial_to: Option<i64>,
    #[arg(long)]
    pub json: bool,
}

impl Selection {
    fn filter(&self) -> anyhow::Result<CardFilter> {
        if self.batch.is_none() && self.serial_from.is_none() && self.serial_to.is_none() {
            bail!("select cards with --batch ID and/or --serial-from A --serial-to B");
        }
        Ok(CardFilter {
            batch_id: self.batch,
            serial_from: self.serial_from,
            serial_to: self.serial_to,
            ..Default::default()
        })
    }
}

#[derive(Subcommand, Debug)]
pub enum CardsCommand {
    Activate(Selection),
    Deactivate(Selection),
    Void(Selection),
    Restore(Selection),
    /// Delete voided cards (irreversible; the audit log keeps their numbers).
    Delete(Selection),
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormatArg {
    Xlsx,
    Csv,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageArg {
    Png,
    Svg,
}

#[derive(Subcommand, Debug)]
pub enum ExportCommand {
    /// Cards as xlsx or CSV; passwords only with --with-secrets (audited).
    Cards {
        #[arg(long)]
        batch: Option<i64>,
        #[arg(long, value_enum, default_value = "xlsx")]
        format: FormatArg,
        #[arg(long)]
        output: PathBuf,
        #[arg(long)]
        with_secrets: bool,
        /// The address QR codes point at (default: server.public_url or http://LISTEN).
        #[arg(long)]
        public_url: Option<String>,
    },
    /// A zip of QR code images, one per card, named by card number.
    QrCodes {
        #[arg(long)]
        batch: Option<i64>,
        #[arg(long, value_enum, default_value = "png")]
        image: ImageArg,
        #[arg(long)]
        output: PathBuf,
        #[arg(long)]
        public_url: Option<String>,
    },
}

/// Runs a parsed command line; errors are printed to stderr.
pub fn run(cli: Cli) -> ExitCode {
    init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Whether a log event may be written at all: kaquan's own events at any
/// level (they never carry personal data or secrets), other crates' at
/// `info` and above only. Below that the PostgreSQL driver logs every query
/// parameter (consignees, phones, addresses, form tokens) and the HTTP
/// stack logs headers (session cookies), whatever `KAQUAN_LOG` asks for.
pub fn may_log(target: &str, level: &tracing::Level) -> bool {
    target.starts_with("kaquan") || *level <= tracing::Level::INFO
}

fn init_logging() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("KAQUAN_LOG").unwrap_or_else(|_| "info".into());
    let _ = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                // Colours only on a terminal: a log file gets plain text.
                .with_ansi(std::io::stderr().is_terminal())
                .with_filter(filter)
                .with_filter(tracing_subscriber::filter::filter_fn(|meta| {
                    may_log(meta.target(), meta.level())
                })),
        )
        .try_init();
}

/// Opens the configured store. Only `serve` and `migrate` may create a
/// missing SQLite file.
pub async fn open_store(config: &Config, create: bool) -> anyhow::Result<Arc<dyn Store>> {
    let url = &config.database_url.0;
    if let Some(path) = url.strip_prefix("sqlite://") {
        let mode = if create {
            kaquan_store_sqlite::OpenMode::CreateIfMissing
        } else {
            kaquan_store_sqlite::OpenMode::MustExist
        };
        let store = kaquan_store_sqlite::open(Path::new(path), mode).map_err(|e| anyhow!("{e}"))?;
        Ok(Arc::new(store))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let store = kaquan_store_postgres::connect(url)
            .await
            .map_err(|e| anyhow!("{e} ({})", config.database_url))?;
        Ok(Arc::new(store))
    } else {
        bail!("unknown database URL scheme in {}", config.database_url)
    }
}

/// Loads the master key from `KAQUAN_MASTER_KEY` or the key file, creating
/// the file (mode 0600) when `create` is set and there is none.
pub fn load_master_key(config: &Config, create: bool) -> anyhow::Result<MasterKey> {
    if let Ok(hex) = std::env::var("KAQUAN_MASTER_KEY") {
        return MasterKey::from_hex(&hex)
            .ok_or_else(|| anyhow!("KAQUAN_MASTER_KEY must be 64 hex digits"));
    }
    let path = &config.key_file;
    match std::fs::read_to_string(path) {
        Ok(text) => MasterKey::from_hex(&text)
            .ok_or_else(|| anyhow!("key file {} is not 64 hex digits", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
            let key = MasterKey::generate();
            write_private_file(path, &format!("{}\n", key.to_hex()))?;
            eprintln!(
                "已创建主密钥文件 {}（权限 0600）。请单独备份它：没有它无法校验或导出任何卡密码。",
                path.display()
            );
            Ok(key)
        }
        Err(e) => Err(anyhow!(
            "cannot read key file {}: {e} (run `kaquan migrate` or `kaquan serve` first)",
            path.display()
        )),
    }
}

/// Creates a new file only its owner can read (mode 0600) and syncs it.
fn write_private_file(path: &Path, contents: &str) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()?;
    Ok(())
}

/// Where the first start leaves the owner's initial password.
pub fn initial_password_path(config: &Config) -> PathBuf {
    let mut name = config
        .key_file
        .file_stem()
        .unwrap_or_default()
        .to_os_string();
    name.push(".initial-password");
    config.key_file.with_file_name(name)
}

async fn resolve_merchant(store: &dyn Store, flag: Option<i64>) -> anyhow::Result<i64> {
    if let Some(id) = flag {
        store
            .get_merchant(id)
            .await
            .map_err(|_| anyhow!("merchant {id} does not exist"))?;
        return Ok(id);
    }
    let merchants = store.list_merchants().await?;
    match merchants.as_slice() {
        [only] => Ok(only.id),
        [] => bail!("the database has no merchant yet: run `kaquan merchant create --name NAME` or `kaquan serve`"),
        _ => bail!("the database holds {} merchants: choose one with --merchant ID", merchants.len()),
    }
}

fn print_json(value: serde_json::Value) {
    println!("{value}");
}

fn cli_audit(merchant_id: i64, action: &str, target: String, detail: String) -> AuditEntry {
    AuditEntry {
        merchant_id,
        actor: Actor::cli(),
        action: action.into(),
        target,
        detail,
        n_affected: 0,
        created_at: kaquan_web::now(),
    }
}

fn parse_cli_date(text: Option<&str>, end: bool) -> anyhow::Result<Option<i64>> {
    text.map(|t| {
        let date = parse_date(t)
            .ok_or_else(|| anyhow!("date {t:?} must be YYYY-MM-DD, between 2000 and 2199"))?;
        Ok(if end {
            end_of_day(date)
        } else {
            start_of_day(date)
        })
    })
    .transpose()
}

async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Command::DefaultConfig = cli.command {
        print!("{DEFAULT_CONFIG}");
        return Ok(ExitCode::SUCCESS);
    }
    let config = Config::load(
        cli.config.as_deref(),
        cli.database_url.as_deref(),
        cli.key_file.as_deref(),
    )?;
    match cli.command {
        Command::DefaultConfig => unreachable!("handled above"),
        Command::Serve { listen, public_url } => {
            serve(config, listen, public_url, cli.merchant).await
        }
        Command::Migrate => {
            let store = open_store(&config, true).await?;
            load_master_key(&config, true)?;
            let n = store.fail_interrupted_batches().await?;
            eprintln!(
                "数据库已是最新结构（{}）{}",
                config.database_url,
                if n > 0 {
                    format!("；{n} 个被中断的批次已标记为失败")
                } else {
                    String::new()
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Merchant(command) => {
            let store = open_store(&config, false).await?;
            merchant_command(store.as_ref(), command).await
        }
        Command::User(command) => {
            let store = open_store(&config, false).await?;
            let merchant_id = resolve_merchant(store.as_ref(), cli.merchant).await?;
            user_command(store.as_ref(), merchant_id, command).await
        }
        Command::Batch(command) => {
            let store = open_store(&config, false).await?;
            let merchant_id = resolve_merchant(store.as_ref(), cli.merchant).await?;
            batch_command(&config, store.as_ref(), merchant_id, command).await
        }
        Command::Cards(command) => {
            let store = open_store(&config, false).await?;
            let merchant_id = resolve_merchant(store.as_ref(), cli.merchant).await?;
            let (op, selection) = match &command {
                CardsCommand::Activate(s) => (CardOp::Activate, s),
                CardsCommand::Deactivate(s) => (CardOp::Deactivate, s),
                CardsCommand::Void(s) => (CardOp::Void, s),
                CardsCommand::Restore(s) => (CardOp::Restore, s),
                CardsCommand::Delete(s) => (CardOp::Delete, s),
            };
            let filter = selection.filter()?;
            let audit = cli_audit(
                merchant_id,
                &format!("{}_cards", op.code()),
                filter.describe(),
                String::new(),
            );
            let n = store
                .apply_card_op(merchant_id, &filter, op, &audit)
                .await?;
            if selection.json {
                print_json(json!({ "operation": op.code(), "n_cards": n }));
            } else {
                println!("{}：{n} 张卡", op.label_zh());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Export(command) => {
            let store = open_store(&config, false).await?;
            let master = load_master_key(&config, false)?;
            let merchant_id = resolve_merchant(store.as_ref(), cli.merchant).await?;
            export_command(&config, store.as_ref(), &master, merchant_id, command).await
        }
        Command::ApiKey(command) => {
            let store = open_store(&config, false).await?;
            let master = load_master_key(&config, false)?;
            let merchant_id = resolve_merchant(store.as_ref(), cli.merchant).await?;
            api_key_command(store.as_ref(), &master, merchant_id, command).await
        }
        Command::Codes(command) => {
            let store = open_store(&config, false).await?;
            let master = load_master_key(&config, false)?;
            let merchant_id = resolve_merchant(store.as_ref(), cli.merchant).await?;
            codes_command(&config, store.as_ref(), &master, merchant_id, command).await
        }
        Command::Verify => {
            let store = open_store(&config, false).await?;
            store.fail_interrupted_batches().await?;
            let violations = store.check_invariants().await?;
            if violations.is_empty() {
                eprintln!("verify: no violation ({})", store.backend());
                Ok(ExitCode::SUCCESS)
            } else {
                for v in &violations {
                    println!("violation: {v}");
                }
                Ok(ExitCode::FAILURE)
            }
        }
    }
}

/// How often `serve` forgets expired nonces, idempotency keys and sessions.
const PURGE_EVERY_SECONDS: u64 = 60;

async fn serve(
    config: Config,
    listen: Option<String>,
    public_url: Option<String>,
    merchant_flag: Option<i64>,
) -> anyhow::Result<ExitCode> {
    let store = open_store(&config, true).await?;
    let master = load_master_key(&config, true)?;
    let n = store.fail_interrupted_batches().await?;
    if n > 0 {
        tracing::warn!(
            n_batches = n,
            "batches interrupted by a previous shutdown were marked failed"
        );
    }
    if store.list_merchants().await?.is_empty() && merchant_flag.is_none() {
        first_start(store.as_ref(), &config).await?;
    }
    let listen = listen.unwrap_or(config.listen.clone());
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let address = listener.local_addr()?;
    let public_url = public_url
        .or(config.public_url.clone())
        .unwrap_or_else(|| format!("http://{address}"));
    let state =
        kaquan_web::AppState::new(store.clone(), master, &public_url, config.secure_cookies);
    // Forget nonces, old idempotency keys, used login links and expired sessions.
    tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(PURGE_EVERY_SECONDS));
        loop {
            every.tick().await;
            if let Err(error) = store.purge_expired(kaquan_web::now()).await {
                tracing::warn!(%error, "purging expired records failed; will retry");
            }
        }
    });
    tracing::info!(database = %config.database_url, %address, "kaquan serving");
    eprintln!("kaquan 已启动：在浏览器打开 http://{address}/ 登录商户后台");
    kaquan_web::serve(listener, state, shutdown_signal()).await?;
    Ok(ExitCode::SUCCESS)
}

/// On the very first start: a merchant and an owner account `admin`. Its
/// initial password goes to a 0600 file beside the key file, never to the
/// terminal or the logs (which a service manager keeps).
async fn first_start(store: &dyn Store, config: &Config) -> anyhow::Result<()> {
    let merchant = store.create_merchant("我的店铺", kaquan_web::now()).await?;
    let owner_role = store
        .list_roles(merchant.id)
        .await?
        .into_iter()
        .find(|r| r.name == "owner")
        .context("owner role")?;
    let password = format!("Kq{}", &kaquan_core::secrets::random_token_hex(8));
    let staff = NewStaff {
        merchant_id: merchant.id,
        username: "admin".into(),
        name: "店主".into(),
        phone: String::new(),
        role_id: owner_role.id,
        password_hash: hash_staff_password(&password),
    };
    let password_file = initial_password_path(config);
    write_private_file(&password_file, &format!("{password}\n"))?;
    store.create_staff(&staff, kaquan_web::now()).await?;
    eprintln!(
        "首次启动：已创建商户「我的店铺」和店主账号 admin，初始密码在文件 {} 中。登录后请在“管理员”页修改密码，并删除该文件。",
        password_file.display()
    );
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        if let Ok(mut signal) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            signal.recv().await;
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = terminate => {} }
}

async fn merchant_command(store: &dyn Store, command: MerchantCommand) -> anyhow::Result<ExitCode> {
    match command {
        MerchantCommand::Create { name, json } => {
            if name.trim().is_empty() {
                bail!("--name must not be empty");
            }
            let merchant = store
                .create_merchant(name.trim(), kaquan_web::now())
                .await?;
            if json {
                print_json(json!({ "merchant_id": merchant.id, "name": merchant.name }));
            } else {
                println!("已创建商户 {}：{}", merchant.id, merchant.name);
            }
        }
        MerchantCommand::List { json } => {
            let merchants = store.list_merchants().await?;
            if json {
                print_json(
                    json!({ "merchants": merchants.iter().map(|m| json!({"merchant_id": m.id, "name": m.name, "created_at": m.created_at})).collect::<Vec<_>>() }),
                );
            } else {
                for m in merchants {
                    println!("{}\t{}\t{}", m.id, m.name, format_datetime(m.created_at));
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn read_password(from_stdin: bool) -> anyhow::Result<String> {
    if from_stdin || !std::io::stdin().is_terminal() {
        let mut line = String::new();
        std::io::stdin().read_to_string(&mut line)?;
        return Ok(line.lines().next().unwrap_or("").to_owned());
    }
    let first = rpassword::prompt_password("密码: ")?;
    let second = rpassword::prompt_password("再输入一次: ")?;
    if first != second {
        bail!("the two passwords differ");
    }
    Ok(first)
}

async fn user_command(
    store: &dyn Store,
    merchant_id: i64,
    command: UserCommand,
) -> anyhow::Result<ExitCode> {
    match command {
        UserCommand::Create {
            username,
            role,
            name,
            phone,
            password_stdin,
            json,
        } => {
            check_username(&username).map_err(|e| anyhow!(e))?;
            let roles = store.list_roles(merchant_id).await?;
            let role = roles.iter().find(|r| r.name == role).ok_or_else(|| {
                anyhow!(
                    "unknown role {role:?}; roles: {}",
                    roles
                        .iter()
                        .map(|r| r.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })?;
            let password = read_password(password_stdin)?;
            check_staff_password(&password).map_err(|e| anyhow!(e))?;
            let username = login_name(merchant_id, &username);
            let staff = NewStaff {
                merchant_id,
                username: username.clone(),
                name: name.unwrap_or_else(|| username.clone()),
                phone,
                role_id: role.id,
                password_hash: hash_staff_password(&password),
            };
            let staff = store
                .create_staff(&staff, kaquan_web::now())
                .await
                .map_err(|e| match e {
                    kaquan_core::StoreError::Conflict(_) => {
                        anyhow!("username {username:?} is taken")
                    }
                    other => other.into(),
                })?;
            store
                .append_audit(&cli_audit(
                    merchant_id,
                    "create_staff",
                    staff.username.clone(),
                    format!("role={}", role.name),
                ))
                .await?;
            if json {
                print_json(
                    json!({ "staff_id": staff.id, "username": staff.username, "role": role.name }),
                );
            } else {
                println!("已创建管理员 {}（{}）", staff.username, role.label);
            }
        }
        UserCommand::ResetPassword {
            username,
            password_stdin,
            json,
        } => {
            let staff = store
                .find_staff_by_username(username.trim())
                .await?
                .ok_or_else(|| anyhow!("no staff account signs in as {username:?}"))?;
            let password = read_password(password_stdin)?;
            check_staff_password(&password).map_err(|e| anyhow!(e))?;
            let update = kaquan_core::staff::StaffUpdate {
                password_hash: Some(hash_staff_password(&password)),
                ..Default::default()
            };
            store
                .update_staff(staff.merchant_id, staff.id, &update)
                .await?;
            store
                .clear_failures(LOGIN_FAILURES_MERCHANT_ID, &login_name_key(&staff.username))
                .await?;
            store.record_login(staff.id, true, None).await?;
            store
                .append_audit(&cli_audit(
                    staff.merchant_id,
                    "reset_password",
                    staff.username.clone(),
                    String::new(),
                ))
                .await?;
            if json {
                print_json(json!({ "staff_id": staff.id, "username": staff.username }));
            } else {
                println!("已重设 {} 的密码，并解除登录锁定", staff.username);
            }
        }
        UserCommand::List { json } => {
            let staff = store.list_staff(merchant_id).await?;
            let roles = store.list_roles(merchant_id).await?;
            let role_name = |id| {
                roles
                    .iter()
                    .find(|r| r.id == id)
                    .map(|r| r.name.clone())
                    .unwrap_or_default()
            };
            if json {
                print_json(
                    json!({ "staff": staff.iter().map(|s| json!({"staff_id": s.id, "username": s.username, "name": s.name, "role": role_name(s.role_id), "disabled": s.disabled})).collect::<Vec<_>>() }),
                );
            } else {
                for s in staff {
                    println!(
                        "{}\t{}\t{}\t{}",
                        s.id,
                        s.username,
                        s.name,
                        role_name(s.role_id)
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Draws a progress bar on stderr until the generation finishes.
fn spawn_progress_bar(progress: Arc<BatchProgress>, quantity: i64) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let interactive = std::io::stderr().is_terminal();
        let mut last_reported = -1i64;
        loop {
            let (done, _) = progress.snapshot();
            let percent = if quantity > 0 {
                done * 100 / quantity
            } else {
                100
            };
            if interactive {
                let filled = (percent / 4) as usize;
                eprint!(
                    "\r生成中 [{}{}] {percent:>3}% {done}/{quantity}",
                    "#".repeat(filled),
                    " ".repeat(25 - filled.min(25))
                );
            } else if percent / 10 != last_reported / 10 {
                eprintln!("生成中 {percent}% {done}/{quantity}");
                last_reported = percent;
            }
            if done >= quantity {
                if interactive {
                    eprintln!();
                }
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    })
}

async fn batch_command(
    config: &Config,
    store: &dyn Store,
    merchant_id: i64,
    command: BatchCommand,
) -> anyhow::Result<ExitCode> {
    match command {
        BatchCommand::Generate(args) => {
            let master = load_master_key(config, false)?;
            let spec = BatchSpec::new(BatchFields {
                name: args.name,
                prefix: args.prefix,
                number_length: args.number_length,
                numbering: args.numbering.map(|n| match n {
                    NumberingArg::Random => Numbering::Random,
                    NumberingArg::Sequential => Numbering::Sequential,
                }),
                start_number: args.start_number,
                password_length: args.password_length,
                password_charset: args.password_charset.map(|c| match c {
                    CharsetArg::Digits => PasswordCharset::Digits,
                    CharsetArg::Letters => PasswordCharset::Letters,
                    CharsetArg::Mixed => PasswordCharset::Mixed,
                    CharsetArg::Unambiguous => PasswordCharset::Unambiguous,
                }),
                quantity: args.quantity,
                face_value_fen: args.face_value_fen,
                valid_from: parse_cli_date(args.valid_from.as_deref(), false)?,
                valid_until: parse_cli_date(args.valid_until.as_deref(), true)?,
                remark: args.remark,
                activate: args.activate,
                goods_ids: args.goods,
            })
            .map_err(|errors| anyhow!(errors.join("; ")))?;
            let strength = spec.strength();
            for warning in &strength.warnings {
                eprintln!("警告：{warning}");
            }
            let started = std::time::Instant::now();
            let batch = usecases::start_generated_batch(
                store,
                merchant_id,
                &spec,
                "cli",
                kaquan_web::now(),
            )
            .await?;
            let progress = Arc::new(BatchProgress::default());
            let bar = spawn_progress_bar(Arc::clone(&progress), spec.quantity);
            let audit = cli_audit(
                merchant_id,
                "generate_batch",
                format!("batch={}", batch.id),
                spec.name.clone(),
            );
            let result = usecases::fill_generated_batch(
                store,
                &master,
                &batch,
                &spec,
                audit,
                Arc::clone(&progress),
                kaquan_web::now(),
            )
            .await;
            bar.abort();
            let n_cards =
                result.map_err(|e| anyhow!("batch {} failed and holds no cards: {e}", batch.id))?;
            let seconds = started.elapsed().as_secs_f64();
            if args.json {
                print_json(json!({
                    "batch_id": batch.id, "n_cards": n_cards, "serial_first": batch.serial_first,
                    "password_bits": (strength.bits * 10.0).round() / 10.0, "warnings": strength.warnings, "seconds": seconds
                }));
            } else {
                println!(
                    "批次 {} 已生成 {n_cards} 张卡（卡序号 {}–{}），用时 {seconds:.1} 秒",
                    batch.id,
                    batch.serial_first,
                    batch.serial_first + n_cards - 1
                );
            }
        }
        BatchCommand::Import {
            file,
            name,
            face_value_fen,
            valid_from,
            valid_until,
            remark,
            json,
        } => {
            let master = load_master_key(config, false)?;
            let bytes =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let file_name = file
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("")
                .to_owned();
            let rows = kaquan_web::tables::parse_import_file(&file_name, &bytes)
                .map_err(|e| anyhow!(e.public_message()))?;
            let cards = match usecases::validate_import(store, merchant_id, &rows).await {
                Ok(cards) => cards,
                Err(usecases::ImportError::Rows(errors)) => {
                    if json {
                        print_json(
                            json!({ "imported": false, "errors": errors.iter().map(|e| json!({"line": e.line, "message": e.message})).collect::<Vec<_>>() }),
                        );
                    } else {
                        for e in &errors {
                            eprintln!("第 {} 行：{}", e.line, e.message);
                        }
                    }
                    bail!("{} rows have errors; nothing was imported", errors.len());
                }
                Err(other) => return Err(anyhow!("{other}")),
            };
            let fields = usecases::ImportFields {
                name: name.unwrap_or_default(),
                face_value_fen,
                valid_from: parse_cli_date(valid_from.as_deref(), false)?,
                valid_until: parse_cli_date(valid_until.as_deref(), true)?,
                remark: remark.unwrap_or_default(),
            };
            let audit = cli_audit(
                merchant_id,
                "import_batch",
                file_name,
                format!("{} rows", cards.len()),
            );
            let batch = usecases::import_batch(
                store,
                &master,
                merchant_id,
                &fields,
                cards,
                audit,
                kaquan_web::now(),
            )
            .await?;
            if json {
                print_json(json!({ "batch_id": batch.id, "n_cards": batch.quantity }));
            } else {
                println!("已导入 {} 张卡，批次号 {}", batch.quantity, batch.id);
            }
        }
        BatchCommand::List { json } => {
            let (batches, _) = store
                .list_batches(
                    merchant_id,
                    Page::new(Some(1), Some(kaquan_core::store::PAGE_SIZE_MAX)),
                )
                .await?;
            if json {
                let mut items = Vec::new();
                for b in &batches {
                    let n_cards = store
                        .count_cards(
                            merchant_id,
                            &CardFilter {
                                batch_id: Some(b.id),
                                ..Default::default()
                            },
                        )
                        .await?;
                    items.push(json!({
                        "batch_id": b.id, "name": b.name, "state": b.state.code(), "quantity": b.quantity,
                        "n_cards": n_cards, "serial_first": b.serial_first, "created_at": b.created_at
                    }));
                }
                print_json(json!({ "batches": items }));
            } else {
                for b in batches {
                    println!(
                        "{}\t{}\t{}\t{}\t{}",
                        b.id,
                        b.name,
                        b.state.label_zh(),
                        b.quantity,
                        format_datetime(b.created_at)
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn export_command(
    config: &Config,
    store: &dyn Store,
    master: &MasterKey,
    merchant_id: i64,
    command: ExportCommand,
) -> anyhow::Result<ExitCode> {
    let default_public_url = || {
        config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", config.listen))
    };
    use kaquan_web::exports::{ExportFormat, ExportKind, QrImageFormat};
    let (batch, kind, output, with_secrets, public_url) = match command {
        ExportCommand::Cards {
            batch,
            format,
            output,
            with_secrets,
            public_url,
        } => {
            let format = match format {
                FormatArg::Xlsx => ExportFormat::Xlsx,
                FormatArg::Csv => ExportFormat::Csv,
            };
            (
                batch,
                ExportKind::Cards(format),
                output,
                with_secrets,
                public_url,
            )
        }
        ExportCommand::QrCodes {
            batch,
            image,
            output,
            public_url,
        } => {
            let image = match image {
                ImageArg::Png => QrImageFormat::Png,
                ImageArg::Svg => QrImageFormat::Svg,
            };
            (batch, ExportKind::QrCodes(image), output, false, public_url)
        }
    };
    let filter = CardFilter {
        batch_id: batch,
        ..Default::default()
    };
    let public_url = public_url.unwrap_or_else(default_public_url);
    let request = kaquan_web::exports::ExportRequest {
        store,
        master,
        merchant_id,
        filter: &filter,
        with_secrets,
        public_url: public_url.trim_end_matches('/'),
        progress: None,
    };
    let n = kind
        .write(&request, &output)
        .await
        .map_err(|e| anyhow!(e.public_message()))?;
    let detail = format!(
        "{} output={}",
        kind.audit_detail(with_secrets),
        output.display()
    );
    let mut audit = cli_audit(merchant_id, kind.action(), filter.describe(), detail);
    audit.n_affected = n;
    store.append_audit(&audit).await?;
    eprintln!("已导出 {n} 张卡到 {}", output.display());
    Ok(ExitCode::SUCCESS)
}

async fn api_key_command(
    store: &dyn Store,
    master: &MasterKey,
    merchant_id: i64,
    command: ApiKeyCommand,
) -> anyhow::Result<ExitCode> {
    match command {
        ApiKeyCommand::Create { label, json } => {
            let audit = cli_audit(merchant_id, "create_api_key", String::new(), String::new());
            let (key, secret) =
                kaquan_core::signing::create_api_key(store, master, merchant_id, &label, &audit)
                    .await
                    .map_err(|e| match e {
                        kaquan_core::StoreError::Conflict(_) => anyhow!(
                            "two API keys are already active: revoke one with `kaquan api-key revoke KEY_ID`"
                        ),
                        other => anyhow!("{other}"),
                    })?;
            if json {
                print_json(
                    json!({ "merchant_id": merchant_id, "key_id": key.key_id, "secret": secret }),
                );
            } else {
                println!("key_id: {}\nsecret: {secret}\n（secret 只显示这一次，请保存到商城系统的配置中）", key.key_id);
            }
        }
        ApiKeyCommand::List { json } => {
            let keys = store.list_api_keys(merchant_id).await?;
            if json {
                print_json(json!(keys
                    .iter()
                    .map(|k| json!({"key_id": k.key_id, "label": k.label, "active": k.active, "created_at": k.created_at}))
                    .collect::<Vec<_>>()));
            } else {
                for k in keys {
                    println!(
                        "{}\t{}\t{}",
                        k.key_id,
                        if k.active { "启用" } else { "已停用" },
                        k.label
                    );
                }
            }
        }
        ApiKeyCommand::Revoke { key_id } => {
            let key = store
                .list_api_keys(merchant_id)
                .await?
                .into_iter()
                .find(|k| k.key_id == key_id && k.active)
                .ok_or_else(|| anyhow!("no active key {key_id} for merchant {merchant_id}"))?;
            let audit = cli_audit(
                merchant_id,
                "revoke_api_key",
                format!("api_key={key_id}"),
                String::new(),
            );
            store.revoke_api_key(merchant_id, key.id, &audit).await?;
            eprintln!("已停用 {key_id}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn codes_command(
    config: &Config,
    store: &dyn Store,
    master: &MasterKey,
    merchant_id: i64,
    command: CodesCommand,
) -> anyhow::Result<ExitCode> {
    use kaquan_core::code::{CodeKind, CodeTemplateFields};
    match command {
        CodesCommand::Generate {
            name,
            face_value,
            quantity,
            valid_from,
            valid_until,
            json,
        } => {
            let fields = CodeTemplateFields {
                name: name.trim().to_owned(),
                face_value_fen: kaquan_core::money::parse_yuan(&face_value).ok_or_else(|| {
                    anyhow!("--face-value must be an amount in yuan, e.g. 100 or 99.50")
                })?,
                valid_from: parse_cli_date(valid_from.as_deref(), false)?,
                valid_until: parse_cli_date(valid_until.as_deref(), true)?,
            };
            let request = kaquan_core::code::CodeTemplateRequest {
                kind: CodeKind::Offline,
                fields,
                quantity,
            };
            let template = kaquan_core::code::create_code_template(
                store,
                master,
                merchant_id,
                &request,
                Actor::cli(),
                kaquan_web::now(),
            )
            .await?;
            if json {
                print_json(json!({ "template_id": template.id, "n_codes": template.n_issued }));
            } else {
                println!(
                    "线下兑换码「{}」：{} 个，模板编号 {}",
                    template.fields.name, template.n_issued, template.id
                );
            }
        }
        CodesCommand::Export { template, output } => {
            let found = store.get_code_template(merchant_id, template).await?;
            let public_url = config
                .public_url
                .clone()
                .unwrap_or_else(|| format!("http://{}", config.listen));
            let format = if output
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
            {
                kaquan_web::exports::ExportFormat::Csv
            } else {
                kaquan_web::exports::ExportFormat::Xlsx
            };
            let (bytes, n_codes) = kaquan_web::exports::export_codes_file(
                store,
                master,
                &public_url,
                merchant_id,
                template,
                format,
            )
            .await
            .map_err(|e| anyhow!("{}", e.public_message()))?;
            std::fs::write(&output, bytes)
                .with_context(|| format!("cannot write {}", output.display()))?;
            store
                .append_audit(&cli_audit(
                    merchant_id,
                    "export_codes",
                    format!("code_template={template}"),
                    format!("n_codes={n_codes} with_codes=true"),
                ))
                .await?;
            eprintln!(
                "「{}」：{n_codes} 个兑换码已导出到 {}",
                found.fields.name,
                output.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod logging_tests {
    use tracing::Level;

    #[test]
    fn only_kaquan_logs_below_info() {
        assert!(super::may_log("kaquan_web::orders", &Level::TRACE));
        assert!(super::may_log("tokio_postgres::query", &Level::INFO));
        assert!(super::may_log("tokio_postgres::query", &Level::WARN));
        assert!(super::may_log("hyper", &Level::ERROR));
        assert!(!super::may_log("tokio_postgres::query", &Level::DEBUG));
        assert!(!super::may_log("hyper::proto", &Level::TRACE));
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_definition_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
