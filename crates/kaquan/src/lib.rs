//! The `kaquan` command line: one binary that serves the console and API and
//! scripts batches, card operations and exports. Operators and print shops
//! script these names, so they are a contract (see README.md).
//!
//! Every command that creates or lists accepts `--json` and then prints one
//! JSON document on stdout; progress and logs go to stderr.

mod api_keys;
mod args;
mod audit;
mod backup;
mod batches;
mod codes;
pub mod config;
mod coupons;
mod credits;
mod ecards;
mod exports;
mod keys;
mod members;
mod merchants;
mod staff;

pub use args::*;

use crate::config::{Config, DEFAULT_CONFIG};
use anyhow::{anyhow, bail, Context};
use kaquan_core::audit::{Actor, AuditEntry};
use kaquan_core::auth::hash_staff_password;
use kaquan_core::card::CardOp;
use kaquan_core::clock::{end_of_day, parse_date, start_of_day};
use kaquan_core::secrets::MasterKey;
use kaquan_core::staff::NewStaff;
use kaquan_core::store::Store;
use serde_json::json;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

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
pub(crate) fn write_private_file(path: &Path, contents: &str) -> anyhow::Result<()> {
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

pub(crate) async fn resolve_merchant(store: &dyn Store, flag: Option<i64>) -> anyhow::Result<i64> {
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

pub(crate) fn print_json(value: serde_json::Value) {
    println!("{value}");
}

pub(crate) fn cli_audit(
    merchant_id: i64,
    action: &str,
    target: String,
    detail: String,
) -> AuditEntry {
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

pub(crate) fn parse_cli_date(text: Option<&str>, end: bool) -> anyhow::Result<Option<i64>> {
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

/// An input file's name (which tells xlsx from CSV) and its bytes.
pub(crate) fn read_input_file(file: &Path) -> anyhow::Result<(String, Vec<u8>)> {
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("");
    Ok((name.to_owned(), bytes))
}

/// The store, the master key and the merchant a command works for.
async fn open_for_merchant(
    config: &Config,
    merchant: Option<i64>,
) -> anyhow::Result<(Arc<dyn Store>, MasterKey, i64)> {
    let store = open_store(config, false).await?;
    let master = keys::load_root_key(config, store.as_ref(), false).await?;
    let merchant_id = resolve_merchant(store.as_ref(), merchant).await?;
    Ok((store, master, merchant_id))
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
            let n = store.fail_interrupted_batches(kaquan_web::now()).await?;
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
            merchants::merchant_command(store.as_ref(), cli.merchant, command).await
        }
        Command::User(command) => {
            let store = open_store(&config, false).await?;
            let merchant_id = resolve_merchant(store.as_ref(), cli.merchant).await?;
            staff::user_command(store.as_ref(), merchant_id, command).await
        }
        Command::Batch(command) => {
            let store = open_store(&config, false).await?;
            let merchant_id = resolve_merchant(store.as_ref(), cli.merchant).await?;
            batches::batch_command(&config, store.as_ref(), merchant_id, command).await
        }
        Command::Cards(command) => {
            let store = open_store(&config, false).await?;
            let merchant_id = resolve_merchant(store.as_ref(), cli.merchant).await?;
            cards_command(store.as_ref(), merchant_id, &command).await
        }
        Command::Export(command) => {
            let (store, master, merchant_id) = open_for_merchant(&config, cli.merchant).await?;
            exports::export_command(&config, store.as_ref(), &master, merchant_id, command).await
        }
        Command::ApiKey(command) => {
            let (store, master, merchant_id) = open_for_merchant(&config, cli.merchant).await?;
            api_keys::api_key_command(store.as_ref(), &master, merchant_id, command).await
        }
        Command::Codes(command) => {
            let (store, master, merchant_id) = open_for_merchant(&config, cli.merchant).await?;
            codes::codes_command(&config, store.as_ref(), &master, merchant_id, command).await
        }
        Command::Coupons(command) => {
            let (store, master, merchant_id) = open_for_merchant(&config, cli.merchant).await?;
            coupons::coupons_command(store.as_ref(), &master, merchant_id, command).await
        }
        Command::Credits(command) => {
            let (store, _, merchant_id) = open_for_merchant(&config, cli.merchant).await?;
            credits::credits_command(store.as_ref(), merchant_id, command).await
        }
        Command::Operator(command) => {
            let (store, _, merchant_id) = open_for_merchant(&config, cli.merchant).await?;
            credits::operator_command(store.as_ref(), merchant_id, command).await
        }
        Command::Ecards(command) => {
            let (store, master, merchant_id) = open_for_merchant(&config, cli.merchant).await?;
            ecards::ecards_command(store.as_ref(), &master, merchant_id, command).await
        }
        Command::Members(command) => {
            let (store, _, merchant_id) = open_for_merchant(&config, cli.merchant).await?;
            members::members_command(store.as_ref(), merchant_id, command).await
        }
        Command::Audit(command) => {
            let (store, _, merchant_id) = open_for_merchant(&config, cli.merchant).await?;
            audit::audit_command(store.as_ref(), merchant_id, command).await
        }
        Command::Keys(command) => {
            let (store, _, merchant_id) = open_for_merchant(&config, cli.merchant).await?;
            keys::keys_command(&config, store.as_ref(), merchant_id, command).await
        }
        Command::Backup { output } => backup::backup_command(&config, &output).await,
        Command::Restore { input } => backup::restore_command(&config, &input).await,
        Command::Verify => verify_command(&config).await,
    }
}

/// `kaquan verify`: seals what is pending, then checks every invariant and
/// walks every audit chain.
async fn verify_command(config: &Config) -> anyhow::Result<ExitCode> {
    let store = open_store(config, false).await?;
    store.fail_interrupted_batches(kaquan_web::now()).await?;
    kaquan_core::audit::chain::seal_all(store.as_ref()).await?;
    let mut violations = store.check_invariants().await?;
    if let Err(refused) = keys::load_root_key(config, store.as_ref(), false).await {
        violations.push(format!("key ring: {refused}"));
    }
    let (broken, walked) = store.check_audit_chains().await?;
    violations.extend(broken);
    eprintln!("verify: {walked} audit records walked");
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

/// `kaquan cards …`: a state change of the cards a selection names.
async fn cards_command(
    store: &dyn Store,
    merchant_id: i64,
    command: &CardsCommand,
) -> anyhow::Result<ExitCode> {
    let (op, selection) = match command {
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

/// How often `serve` forgets expired nonces, idempotency keys and sessions.
const PURGE_EVERY_SECONDS: u64 = 60;

async fn serve(
    config: Config,
    listen: Option<String>,
    public_url: Option<String>,
    merchant_flag: Option<i64>,
) -> anyhow::Result<ExitCode> {
    let store = open_store(&config, true).await?;
    let master = keys::load_root_key(&config, store.as_ref(), true).await?;
    let n = store.fail_interrupted_batches(kaquan_web::now()).await?;
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
        kaquan_web::AppState::new(store.clone(), master, &public_url, config.secure_cookies)
            .with_trusted_proxies(config.trusted_proxies.clone())
            .with_webhook_policy(kaquan_web::outbox::WebhookPolicy {
                allow_private_addresses: config.webhooks_allow_private,
            })
            .with_sms_endpoints(sms_endpoints(&config))
            .with_waybill_endpoints(waybill_endpoints(&config))
            .with_wdt_endpoint(
                config
                    .wdt_endpoint
                    .as_deref()
                    .unwrap_or(kaquan_web::erp::WDT_ENDPOINT),
            );
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
        // The generated initial password: the first sign-in asks for a new one.
        must_change_password: true,
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

/// The SMS providers' APIs: the public hosts unless the operator moved them.
fn sms_endpoints(config: &config::Config) -> kaquan_web::sms::SmsEndpoints {
    let default = kaquan_web::sms::SmsEndpoints::default();
    kaquan_web::sms::SmsEndpoints {
        aliyun: config.sms_aliyun_endpoint.clone().unwrap_or(default.aliyun),
        tencent: config
            .sms_tencent_endpoint
            .clone()
            .unwrap_or(default.tencent),
    }
}

/// The e-waybill channels: the production gateways unless the operator moved them.
fn waybill_endpoints(config: &config::Config) -> kaquan_web::waybills::WaybillEndpoints {
    let default = kaquan_web::waybills::WaybillEndpoints::default();
    kaquan_web::waybills::WaybillEndpoints {
        sf: config.waybill_sf_endpoint.clone().unwrap_or(default.sf),
        kuaidi100: config
            .waybill_kuaidi100_endpoint
            .clone()
            .unwrap_or(default.kuaidi100),
    }
}
