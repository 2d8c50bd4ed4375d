//! Typed configuration: built-in defaults, then a TOML file, then
//! `KAQUAN__SECTION__KEY` environment variables, then command-line flags.

use anyhow::{bail, Context};
use serde::Deserialize;
use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct FileConfig {
    pub database: DatabaseSection,
    pub server: ServerSection,
    pub keys: KeysSection,
    pub webhooks: WebhooksSection,
    pub sms: SmsSection,
    pub erp: ErpSection,
    pub waybill: WaybillSection,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct WaybillSection {
    pub sf_endpoint: Option<String>,
    pub kuaidi100_endpoint: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct ErpSection {
    pub wdt_endpoint: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct SmsSection {
    pub aliyun_endpoint: Option<String>,
    pub tencent_endpoint: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSection {
    pub url: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSection {
    pub listen: Option<String>,
    pub public_url: Option<String>,
    pub secure_cookies: Option<bool>,
    pub trusted_proxies: Option<Vec<String>>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct WebhooksSection {
    pub allow_private_addresses: Option<bool>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct KeysSection {
    pub key_file: Option<PathBuf>,
}

/// A database URL whose `Debug`/`Display` hide any password.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(pub String);

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.0.find("://"), self.0.rfind('@')) {
            (Some(scheme_end), Some(at)) if at > scheme_end => {
                let userinfo = &self.0[scheme_end + 3..at];
                let user = userinfo.split(':').next().unwrap_or("");
                write!(
                    f,
                    "{}{}:***{}",
                    &self.0[..scheme_end + 3],
                    user,
                    &self.0[at..]
                )
            }
            _ => f.write_str(&self.0),
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({self})")
    }
}

pub const DEFAULT_DATABASE_URL: &str = "sqlite://kaquan.db";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// The resolved configuration a command runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: DatabaseUrl,
    pub listen: String,
    pub public_url: Option<String>,
    pub secure_cookies: bool,
    pub key_file: PathBuf,
    /// Webhooks may go to loopback and private addresses (SSRF guard off).
    pub webhooks_allow_private: bool,
    /// Where the SMS providers' APIs are, when not their public hosts.
    pub sms_aliyun_endpoint: Option<String>,
    pub sms_tencent_endpoint: Option<String>,
    /// 旺店通's `trade_push.php`, when not the production one.
    pub wdt_endpoint: Option<String>,
    /// The e-waybill channels, when not their production gateways.
    pub waybill_sf_endpoint: Option<String>,
    pub waybill_kuaidi100_endpoint: Option<String>,
    /// Reverse proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: kaquan_web::client_address::TrustedProxies,
}

fn env(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|v| !v.is_empty())
}

impl Config {
    pub fn load(
        config_file: Option<&Path>,
        database_url_flag: Option<&str>,
        key_file_flag: Option<&Path>,
    ) -> anyhow::Result<Self> {
        let file: FileConfig = match config_file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading config file {}", path.display()))?;
                toml::from_str(&text)
                    .with_context(|| format!("parsing config file {}", path.display()))?
            }
            None => FileConfig::default(),
        };
        let database_url = database_url_flag
            .map(str::to_owned)
            .or_else(|| env("KAQUAN__DATABASE__URL"))
            .or(file.database.url)
            .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned());
        let secure_cookies = match env("KAQUAN__SERVER__SECURE_COOKIES") {
            Some(v) => v
                .parse()
                .context("KAQUAN__SERVER__SECURE_COOKIES must be true or false")?,
            None => file.server.secure_cookies.unwrap_or(false),
        };
        let webhooks_allow_private = match env("KAQUAN__WEBHOOKS__ALLOW_PRIVATE_ADDRESSES") {
            Some(v) => v
                .parse()
                .context("KAQUAN__WEBHOOKS__ALLOW_PRIVATE_ADDRESSES must be true or false")?,
            None => file.webhooks.allow_private_addresses.unwrap_or(false),
        };
        let proxies: Vec<String> = match env("KAQUAN__SERVER__TRUSTED_PROXIES") {
            Some(list) => list.split(',').map(|p| p.trim().to_owned()).collect(),
            None => file.server.trusted_proxies.clone().unwrap_or_default(),
        };
        let trusted_proxies =
            kaquan_web::client_address::TrustedProxies::parse(proxies.iter().map(String::as_str))
                .map_err(anyhow::Error::msg)?;
        let key_file = key_file_flag
            .map(Path::to_path_buf)
            .or_else(|| env("KAQUAN__KEYS__KEY_FILE").map(PathBuf::from))
            .or(file.keys.key_file)
            .unwrap_or_else(|| default_key_file(&database_url));
        if !(database_url.starts_with("sqlite://")
            || database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://"))
        {
            bail!(
                "unknown database URL scheme in {}: use sqlite://PATH or postgres://…",
                DatabaseUrl(database_url)
            );
        }
        Ok(Self {
            database_url: DatabaseUrl(database_url),
            listen: env("KAQUAN__SERVER__LISTEN")
                .or(file.server.listen)
                .unwrap_or_else(|| DEFAULT_LISTEN.to_owned()),
            public_url: env("KAQUAN__SERVER__PUBLIC_URL").or(file.server.public_url),
            secure_cookies,
            key_file,
            webhooks_allow_private,
            sms_aliyun_endpoint: env("KAQUAN__SMS__ALIYUN_ENDPOINT").or(file.sms.aliyun_endpoint),
            sms_tencent_endpoint: env("KAQUAN__SMS__TENCENT_ENDPOINT")
                .or(file.sms.tencent_endpoint),
            wdt_endpoint: env("KAQUAN__ERP__WDT_ENDPOINT").or(file.erp.wdt_endpoint),
            waybill_sf_endpoint: env("KAQUAN__WAYBILL__SF_ENDPOINT").or(file.waybill.sf_endpoint),
            waybill_kuaidi100_endpoint: env("KAQUAN__WAYBILL__KUAIDI100_ENDPOINT")
                .or(file.waybill.kuaidi100_endpoint),
            trusted_proxies,
        })
    }
}

/// The key file lives beside a SQLite database, else in the working directory.
fn default_key_file(database_url: &str) -> PathBuf {
    match database_url.strip_prefix("sqlite://") {
        Some(path) => {
            let path = Path::new(path);
            let dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            dir.join(format!(
                "{}.key",
                path.file_stem()
                    .and_then(|s| s.to_str())
                    .unwrap_or("kaquan")
            ))
        }
        None => PathBuf::from("kaquan.key"),
    }
}

pub const DEFAULT_CONFIG: &str = r#"# kaquan configuration. Every key can also be set by an environment
# variable KAQUAN__SECTION__KEY (for example KAQUAN__DATABASE__URL), and the
# command-line flags override both.

[database]
# sqlite://PATH for one shop (created by `kaquan serve` or `kaquan migrate`),
# or postgres://USER@HOST:PORT/DB for several kaquan nodes.
url = "sqlite://kaquan.db"

[server]
# Address `kaquan serve` listens on.
listen = "127.0.0.1:8080"
# The address customers reach kaquan at; card QR codes point here.
# public_url = "https://cards.example.com"
# Mark the session cookie Secure (set this when serving over HTTPS).
secure_cookies = false
# Reverse proxies (addresses or networks) whose X-Forwarded-For names the
# client: per-client limits (sign-in, 兑换防刷) then count each client, not
# the proxy. Leave empty when clients connect directly: the header is then
# ignored, since a client can write anything in it.
trusted_proxies = []

[keys]
# The master key file (32 random bytes, hex). Created with mode 0600 on first
# start; keep it out of the database backups' reach and back it up separately:
# without it no card password can be checked or exported. Instead of a file,
# the key can come from the environment as KAQUAN_MASTER_KEY (64 hex digits).
# key_file = "kaquan.key"

[webhooks]
# 事件推送 never goes to loopback, private or link-local addresses (so a
# merchant cannot make kaquan reach into its own network). Allow them only
# when every merchant is your own and the receivers live on your network.
allow_private_addresses = false

[sms]
# 短信 goes to the providers' public APIs. Point these elsewhere only for a
# proxy in front of them (or a test double): scheme, host and port.
# aliyun_endpoint = "https://dysmsapi.aliyuncs.com"
# tencent_endpoint = "https://sms.tencentcloudapi.com"

[erp]
# 旺店通 企业版 trade_push; the sandbox is
# https://sandbox.wangdian.cn/openapi2/trade_push.php
# wdt_endpoint = "https://api.wangdian.cn/openapi2/trade_push.php"

[waybill]
# 电子面单 channels; SF's sandbox is https://sfapi-sbox.sf-express.com/std/service
# sf_endpoint = "https://sfapi.sf-express.com/std/service"
# kuaidi100_endpoint = "https://api.kuaidi100.com/label/order"
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls_hide_their_password() {
        assert_eq!(
            DatabaseUrl("postgres://app:s3cret@db:5432/kaquan".into()).to_string(),
            "postgres://app:***@db:5432/kaquan"
        );
        assert_eq!(
            DatabaseUrl("sqlite://kaquan.db".into()).to_string(),
            "sqlite://kaquan.db"
        );
    }

    #[test]
    fn the_default_config_parses_and_key_files_sit_beside_sqlite_databases() {
        let parsed: FileConfig = toml::from_str(DEFAULT_CONFIG).unwrap();
        assert_eq!(parsed.database.url.as_deref(), Some("sqlite://kaquan.db"));
        assert_eq!(
            default_key_file("sqlite:///var/lib/kaquan/shop.db"),
            PathBuf::from("/var/lib/kaquan/shop.key")
        );
        assert_eq!(
            default_key_file("sqlite://kaquan.db"),
            PathBuf::from("./kaquan.key")
        );
    }

    #[test]
    fn unknown_schemes_are_an_error() {
        assert!(Config::load(None, Some("mysql://x"), None).is_err());
        assert!(Config::load(None, Some("sqlite:/typo.db"), None).is_err());
    }
}
