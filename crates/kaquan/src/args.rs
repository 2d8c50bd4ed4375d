//! The command line's definition (clap): commands, flags and their help.
//! Operators and print shops script these names: a contract.

use anyhow::bail;
use clap::{Args, Parser, Subcommand, ValueEnum};
use kaquan_core::card::CardFilter;
use std::path::PathBuf;

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
    /// 优惠券: the programs with their counts, and 定向发放 from a list file.
    #[command(subcommand)]
    Coupons(CouponsCommand),
    /// 会员卡: the programs, the members as xlsx, 积分调整, the 积分有效期 sweep.
    #[command(subcommand)]
    Members(MembersCommand),
    /// 券点: a merchant's credit account, grants, purchases and 增加库存 of a 朋友的券.
    #[command(subcommand)]
    Credits(CreditsCommand),
    /// The installation's operators (平台运营), who grant 券点 and confirm purchases.
    #[command(subcommand)]
    Operator(OperatorCommand),
    /// 电子卡密: products with their stock, large stock imports, 补发缺货.
    #[command(subcommand)]
    Ecards(EcardsCommand),
    /// The audit log's chain (操作日志): its head, and records with their hashes for an auditor.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Key rotation and the key ring: a merchant's new key version, its
    /// sealed copies re-sealed, and the key file replaced without touching a row.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// A consistent copy of the SQLite database while it runs, and a manifest
    /// beside it (FILE.manifest.json). PostgreSQL: pg_dump (see the README).
    Backup {
        #[arg(long)]
        output: PathBuf,
    },
    /// Restore a backup into a new SQLite database (never over an existing
    /// one), checking it against its manifest and the key, then verify it.
    Restore {
        #[arg(long)]
        input: PathBuf,
    },
    /// Check every invariant (cards, orders, the ledger) and every audit
    /// chain (sealing what is pending first); exits non-zero on any violation.
    Verify,
}

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// The merchant's chain head `seq:hash` (seals what is pending first):
    /// write it down, or send it elsewhere, to check the chain against later.
    Head {
        /// A head written down before (`seq:hash`): exits non-zero unless
        /// the chain still holds that record with that hash.
        #[arg(long)]
        check: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// The merchant's sealed records of a period with their hashes, as JSON
    /// lines, for an auditor's script (see the README).
    Export {
        /// First day, YYYY-MM-DD.
        #[arg(long)]
        from: String,
        /// Last day, YYYY-MM-DD, included.
        #[arg(long)]
        to: String,
        /// The file to write (standard output when absent).
        #[arg(long)]
        output: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Each merchant's key version and the sealed copies still under older ones.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// A new key version for the merchant (audited): new secrets use it; then
    /// its sealed card passwords and 兑换码 are re-sealed under it, with
    /// progress (the servers go on in the background if this is stopped).
    Rotate {
        #[arg(long)]
        json: bool,
    },
    /// Re-seal what is still under older versions now (what `rotate` does after raising the version).
    Reseal {
        #[arg(long)]
        json: bool,
    },
    /// Replace the key file: the root every key comes from is stored in the
    /// database sealed under the new key file's key (made when the file does
    /// not exist). No row changes; afterwards only the new key file opens it.
    Rewrap {
        #[arg(long)]
        new_key_file: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub enum CreditsCommand {
    /// The merchant's free and paid 券点.
    Balance {
        #[arg(long)]
        json: bool,
    },
    /// The 券点 statement, newest first.
    Statement {
        #[arg(long, default_value_t = 1)]
        page: i64,
        #[arg(long)]
        json: bool,
    },
    /// Give the merchant free 券点 (活动奖励), e.g. --credits 100 or 0.5.
    Grant {
        #[arg(long)]
        credits: String,
        #[arg(long)]
        reason: String,
        #[arg(long)]
        json: bool,
    },
    /// The merchant's purchases of paid 券点 (--state requested|confirmed|cancelled).
    Purchases {
        #[arg(long)]
        state: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// The purchase was paid: its 券点 go in (once).
    Confirm {
        #[arg(long)]
        purchase: i64,
        #[arg(long)]
        json: bool,
    },
    /// 增加库存 of a 朋友的券 with the merchant's 券点 (free ones first).
    BuyStock {
        #[arg(long)]
        program: i64,
        #[arg(long)]
        units: i64,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum EcardsCommand {
    /// 虚拟商品 with their stock counts.
    Products {
        #[arg(long)]
        json: bool,
    },
    /// Import secrets into a product's stock from xlsx or CSV (卡号, 卡密
    /// columns; up to 1,000,000 rows), all or nothing; duplicates skipped
    /// and listed. Shows progress on stderr.
    Import {
        #[arg(long)]
        product: i64,
        #[arg(long)]
        file: std::path::PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// 补发缺货: deliver the 缺货 lines that stock now covers.
    DeliverWaiting {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum OperatorCommand {
    /// Make a staff account an operator; with no such account, create it
    /// (in --merchant, role owner; the password is asked for, or read from stdin).
    Create {
        /// The name the account signs in with.
        #[arg(long)]
        username: String,
        #[arg(long)]
        password_stdin: bool,
        #[arg(long)]
        json: bool,
    },
    List {
        #[arg(long)]
        json: bool,
    },
    /// The account is no longer an operator (it stays a staff account).
    Remove {
        #[arg(long)]
        username: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum MembersCommand {
    /// The 会员卡 programs with their states and member counts.
    Programs {
        #[arg(long)]
        json: bool,
    },
    /// Every member (of one program with --program) as xlsx: number, card,
    /// the mall's id, phone, name, birthday, gender, tier, points, balance.
    Export {
        #[arg(long)]
        program: Option<i64>,
        #[arg(long)]
        output: PathBuf,
    },
    /// 积分调整: add (positive) or take (negative, never below zero) points, with a reason.
    AdjustPoints {
        /// The member's id (the digits of the member number).
        #[arg(long)]
        member: i64,
        #[arg(long, allow_hyphen_values = true)]
        points: i64,
        #[arg(long)]
        reason: String,
        #[arg(long)]
        json: bool,
    },
    /// Runs the 积分有效期 sweep now (the servers run it by themselves).
    ExpirePoints {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum CouponsCommand {
    /// The programs: kind, title, state, stock left, claimed, verified, expired.
    List {
        #[arg(long)]
        json: bool,
    },
    /// 定向发放: one coupon to each customer listed in an xlsx or CSV file
    /// (line 1 a header; the first column an 11-digit mobile number or the
    /// mall's customer id), all or none; bad rows are named by their line.
    Issue {
        /// The program's id (see `kaquan coupons list`).
        #[arg(long)]
        program: i64,
        #[arg(long)]
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
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
    /// 预付卡政策: prints whether it is on; `--set on|off` switches it
    /// (audited). While on, batches and code templates over ¥1,000 or
    /// valid under 3 years are refused with the rule named.
    PrepaidPolicy {
        #[arg(long, value_parser = ["on", "off"])]
        set: Option<String>,
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
    pub(crate) fn filter(&self) -> anyhow::Result<CardFilter> {
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
        /// The address QR codes point at (default: 提货设置's 公网地址, else server.public_url, else http://LISTEN).
        #[arg(long)]
        public_url: Option<String>,
        /// Seal the file to a print shop's age public key (age1…): only its
        /// private key opens it (`age -d -i key.txt FILE`).
        #[arg(long, value_name = "AGE_RECIPIENT")]
        seal_to: Option<String>,
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
