//! Batches (批次): the numbering and password rules a merchant chooses, how
//! strong they are, the batch records and their store; the generator that
//! turns rules into card rows is in [`generate`], the generate and import
//! use cases in [`usecases`].

use crate::audit::AuditEntry;
use crate::card::{
    CardNumber, CardPassword, Prefix, CARD_NUMBER_LENGTH_MAX, PASSWORD_LENGTH_MAX,
    PASSWORD_LENGTH_MIN,
};
use crate::secrets::{MerchantKeys, DIGEST_LENGTH};
use crate::store::Page;
use crate::StoreResult;

pub mod generate;
pub mod usecases;

pub use generate::{generate_password, imported_card, CardGenerator, NewCard, NumberGenerator};

/// Most cards one batch may hold.
pub const BATCH_QUANTITY_MAX: i64 = 1_000_000;
/// Digits after the prefix (卡号长度), when no start number is given.
pub const NUMBER_LENGTH_MIN: usize = 4;
pub const NUMBER_LENGTH_MAX: usize = 18;
/// Password strength below which the console and API warn.
pub const PASSWORD_BITS_WARN_BELOW: f64 = 40.0;
/// Random numbering needs this much room: the number space must be at least
/// this many times the cards it will hold, so numbers stay hard to guess and
/// generation does not spin on collisions.
pub const RANDOM_SPACE_FACTOR: u64 = 10;
/// Length of a batch name.
pub const BATCH_NAME_LENGTH_MAX: usize = 64;
pub const REMARK_LENGTH_MAX: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Numbering {
    Sequential,
    Random,
}

impl Numbering {
    pub fn code(self) -> &'static str {
        match self {
            Self::Sequential => "sequential",
            Self::Random => "random",
        }
    }
    pub fn parse(code: &str) -> Option<Self> {
        match code {
            "sequential" => Some(Self::Sequential),
            "random" => Some(Self::Random),
            _ => None,
        }
    }
    pub fn label_zh(self) -> &'static str {
        match self {
            Self::Sequential => "顺序生成",
            Self::Random => "随机生成",
        }
    }
}

/// 密码规则.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordCharset {
    Digits,
    Letters,
    Mixed,
    /// Digits and capitals without the look-alikes 0 O 1 I.
    Unambiguous,
}

impl PasswordCharset {
    pub const ALL: [PasswordCharset; 4] =
        [Self::Digits, Self::Letters, Self::Mixed, Self::Unambiguous];

    pub fn alphabet(self) -> &'static [u8] {
        match self {
            Self::Digits => b"0123456789",
            Self::Letters => b"ABCDEFGHIJKLMNOPQRSTUVWXYZ",
            Self::Mixed => b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ",
            Self::Unambiguous => b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ",
        }
    }
    pub fn code(self) -> &'static str {
        match self {
            Self::Digits => "digits",
            Self::Letters => "letters",
            Self::Mixed => "mixed",
            Self::Unambiguous => "unambiguous",
        }
    }
    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.code() == code)
    }
    pub fn label_zh(self) -> &'static str {
        match self {
            Self::Digits => "纯数字",
            Self::Letters => "纯字母",
            Self::Mixed => "字母+数字",
            Self::Unambiguous => "字母+数字（去除易混淆的 0/O/1/I）",
        }
    }
}

/// How hard a password is to guess, and why a merchant should care.
#[derive(Debug, Clone, PartialEq)]
pub struct PasswordStrength {
    pub bits: f64,
    pub warnings: Vec<String>,
}

pub fn password_strength(
    length: usize,
    charset: PasswordCharset,
    numbering: Numbering,
) -> PasswordStrength {
    let bits = length as f64 * (charset.alphabet().len() as f64).log2();
    let mut warnings = Vec::new();
    if bits < PASSWORD_BITS_WARN_BELOW {
        warnings.push(format!(
            "密码强度仅约 {bits:.1} 位，低于建议的 {PASSWORD_BITS_WARN_BELOW:.0} 位：请加长密码或使用字母+数字"
        ));
        if numbering == Numbering::Sequential {
            warnings.push(
                "顺序生成的卡号可以被推算，卡的安全完全依赖密码；密码较弱时，猜中一张卡只需少量尝试".into(),
            );
        }
    }
    PasswordStrength { bits, warnings }
}

/// A batch's generation rules, validated. Build with [`BatchSpec::new`].
#[derive(Debug, Clone, PartialEq)]
pub struct BatchSpec {
    pub name: String,
    pub prefix: Prefix,
    pub number_length: usize,
    pub numbering: Numbering,
    /// 起始号: when set, numbers are prefix + (start + 1), (start + 2)…
    /// and `number_length` is ignored (seed 003).
    pub start_number: Option<u64>,
    pub password_length: usize,
    pub password_charset: PasswordCharset,
    pub quantity: i64,
    pub face_value_fen: Option<i64>,
    pub valid_from: Option<i64>,
    pub valid_until: Option<i64>,
    pub remark: String,
    /// 卡号状态: activate the cards as soon as they exist. Off by default:
    /// selling first and activating what was sold is the safe way.
    pub activate: bool,
    /// 对应商品: the goods every card of the batch may be exchanged for.
    pub goods_ids: Vec<i64>,
}

/// Defaults for 快速创建: only the quantity is required.
pub const DEFAULT_NUMBER_LENGTH: usize = 10;
pub const DEFAULT_PASSWORD_LENGTH: usize = 12;
pub const DEFAULT_PASSWORD_CHARSET: PasswordCharset = PasswordCharset::Unambiguous;
pub const DEFAULT_NUMBERING: Numbering = Numbering::Sequential;

/// The raw fields a form, API call or CLI gives; `None` takes the default.
#[derive(Debug, Clone, Default)]
pub struct BatchFields {
    pub name: Option<String>,
    pub prefix: Option<String>,
    pub number_length: Option<usize>,
    pub numbering: Option<Numbering>,
    pub start_number: Option<u64>,
    pub password_length: Option<usize>,
    pub password_charset: Option<PasswordCharset>,
    pub quantity: i64,
    pub face_value_fen: Option<i64>,
    pub valid_from: Option<i64>,
    pub valid_until: Option<i64>,
    pub remark: Option<String>,
    pub activate: bool,
    pub goods_ids: Vec<i64>,
}

impl BatchSpec {
    /// Validates the fields; the error lists every problem, in Chinese.
    pub fn new(fields: BatchFields) -> Result<Self, Vec<String>> {
        let mut errors = Vec::new();
        let name = fields.name.unwrap_or_default().trim().to_owned();
        let name = if name.is_empty() {
            "快速创建".to_owned()
        } else {
            name
        };
        if name.chars().count() > BATCH_NAME_LENGTH_MAX {
            errors.push(format!("批次名称最多 {BATCH_NAME_LENGTH_MAX} 个字"));
        }
        let prefix = match Prefix::parse(fields.prefix.as_deref().unwrap_or("")) {
            Ok(p) => p,
            Err(e) => {
                errors.push(e);
                Prefix::default()
            }
        };
        let number_length = fields.number_length.unwrap_or(DEFAULT_NUMBER_LENGTH);
        if !(NUMBER_LENGTH_MIN..=NUMBER_LENGTH_MAX).contains(&number_length) {
            errors.push(format!(
                "卡号长度须为 {NUMBER_LENGTH_MIN}–{NUMBER_LENGTH_MAX} 位"
            ));
        }
        let numbering = fields.numbering.unwrap_or(DEFAULT_NUMBERING);
        let password_length = fields.password_length.unwrap_or(DEFAULT_PASSWORD_LENGTH);
        if !(PASSWORD_LENGTH_MIN..=PASSWORD_LENGTH_MAX).contains(&password_length) {
            errors.push(format!(
                "密码长度须为 {PASSWORD_LENGTH_MIN}–{PASSWORD_LENGTH_MAX} 位"
            ));
        }
        let quantity = fields.quantity;
        if !(1..=BATCH_QUANTITY_MAX).contains(&quantity) {
            errors.push(format!("生成数量须为 1–{BATCH_QUANTITY_MAX}"));
        }
        if fields.face_value_fen.is_some_and(|f| f < 0) {
            errors.push("卡券面值不能为负".into());
        }
        if fields
            .face_value_fen
            .is_some_and(|f| f > crate::money::FEN_MAX)
        {
            errors.push("卡券面值超过上限 ¥1,000,000.00".into());
        }
        if let (Some(from), Some(until)) = (fields.valid_from, fields.valid_until) {
            if until < from {
                errors.push("卡有效期的结束日期早于开始日期".into());
            }
        }
        let remark = fields.remark.unwrap_or_default().trim().to_owned();
        if remark.chars().count() > REMARK_LENGTH_MAX {
            errors.push(format!("卡券备注最多 {REMARK_LENGTH_MAX} 个字"));
        }
        let start_number = fields.start_number;
        if let Some(start) = start_number {
            if numbering == Numbering::Random {
                errors.push("起始号只用于顺序生成".into());
            }
            let last = start.checked_add(quantity.max(0) as u64);
            match last {
                Some(last)
                    if prefix.as_str().len() + last.to_string().len() <= CARD_NUMBER_LENGTH_MAX => {
                }
                _ => errors.push("起始号加生成数量超出了卡号最大长度".into()),
            }
        } else if numbering == Numbering::Random && errors.is_empty() {
            let space = 10u64.checked_pow(number_length as u32).unwrap_or(u64::MAX);
            if space / RANDOM_SPACE_FACTOR < quantity as u64 {
                errors.push(format!(
                    "卡号长度 {number_length} 位不足以随机生成 {quantity} 张卡：请加长卡号"
                ));
            }
        } else if numbering == Numbering::Sequential && errors.is_empty() {
            let space = 10u64.checked_pow(number_length as u32).unwrap_or(u64::MAX);
            if space <= quantity as u64 {
                errors.push(format!("卡号长度 {number_length} 位放不下 {quantity} 张卡"));
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Self {
            name,
            prefix,
            number_length,
            numbering,
            start_number,
            password_length,
            password_charset: fields.password_charset.unwrap_or(DEFAULT_PASSWORD_CHARSET),
            quantity,
            face_value_fen: fields.face_value_fen,
            valid_from: fields.valid_from,
            valid_until: fields.valid_until,
            remark,
            activate: fields.activate,
            goods_ids: fields.goods_ids,
        })
    }

    pub fn strength(&self) -> PasswordStrength {
        password_strength(self.password_length, self.password_charset, self.numbering)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchState {
    /// Cards are being written; none of them is usable yet.
    Generating,
    Ready,
    /// Generation stopped (error or crash); the batch holds no cards.
    Failed,
}

impl BatchState {
    pub fn code(self) -> &'static str {
        match self {
            Self::Generating => "generating",
            Self::Ready => "ready",
            Self::Failed => "failed",
        }
    }
    pub fn parse(code: &str) -> Option<Self> {
        [Self::Generating, Self::Ready, Self::Failed]
            .into_iter()
            .find(|s| s.code() == code)
    }
    pub fn label_zh(self) -> &'static str {
        match self {
            Self::Generating => "生成中",
            Self::Ready => "已完成",
            Self::Failed => "失败",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchSource {
    Generated,
    Imported,
}

impl BatchSource {
    pub fn code(self) -> &'static str {
        match self {
            Self::Generated => "generated",
            Self::Imported => "imported",
        }
    }
    pub fn parse(code: &str) -> Option<Self> {
        match code {
            "generated" => Some(Self::Generated),
            "imported" => Some(Self::Imported),
            _ => None,
        }
    }
}

/// A batch as the store creates it (before its cards exist).
#[derive(Debug, Clone)]
pub struct NewBatch {
    pub merchant_id: i64,
    pub name: String,
    pub source: BatchSource,
    pub prefix: String,
    pub number_length: i64,
    pub numbering: Numbering,
    pub start_number: Option<i64>,
    pub password_length: i64,
    pub password_charset: PasswordCharset,
    pub quantity: i64,
    pub face_value_fen: Option<i64>,
    pub valid_from: Option<i64>,
    pub valid_until: Option<i64>,
    pub remark: String,
    pub created_by: String,
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub struct Batch {
    pub id: i64,
    pub merchant_id: i64,
    pub name: String,
    pub source: BatchSource,
    pub prefix: String,
    pub number_length: i64,
    pub numbering: Numbering,
    pub start_number: Option<i64>,
    pub password_length: i64,
    pub password_charset: PasswordCharset,
    pub quantity: i64,
    pub face_value_fen: Option<i64>,
    pub valid_from: Option<i64>,
    pub valid_until: Option<i64>,
    pub remark: String,
    pub state: BatchState,
    /// The first serial (卡序号) reserved for this batch's cards.
    pub serial_first: i64,
    pub error: Option<String>,
    pub created_by: String,
    pub created_at: i64,
    pub completed_at: Option<i64>,
    /// How many of its cards still hold a sealed password copy (密码副本).
    pub n_copies: i64,
}

/// Feeds a batch's card rows to a store. `next_chunk` may block while rows
/// are computed on another thread; an empty chunk means the end.
pub trait CardSource: Send {
    fn next_chunk(&mut self) -> Vec<NewCard>;
}

/// What happens to a batch's cards in the same transaction that fills it,
/// so a `ready` batch already has its goods and, if chosen, is active.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AfterFill {
    /// 对应商品 (goods of the batch's merchant, checked beforehand).
    pub goods_ids: Vec<i64>,
    /// 生成后立即激活.
    pub activate: bool,
}

/// A source over rows already in memory (imports).
pub struct VecSource(pub Option<Vec<NewCard>>);

impl CardSource for VecSource {
    fn next_chunk(&mut self) -> Vec<NewCard> {
        self.0.take().unwrap_or_default()
    }
}

/// A batch's cards by state (批次's 已激活/已兑换/已作废 counts).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchCardCounts {
    pub batch_id: i64,
    pub inactive: i64,
    pub active: i64,
    pub used: i64,
    pub voided: i64,
}

impl BatchCardCounts {
    /// Adds `n` cards in `state`.
    pub fn add(&mut self, state: crate::card::CardState, n: i64) {
        use crate::card::CardState::*;
        match state {
            Inactive => self.inactive += n,
            Active => self.active += n,
            Used => self.used += n,
            Voided => self.voided += n,
        }
    }
}

/// Batches in the database.
#[async_trait::async_trait]
pub trait BatchStore: Send + Sync + 'static {
    /// Creates the batch row in state `generating` and reserves its serials.
    async fn create_batch(&self, batch: &NewBatch) -> StoreResult<Batch>;
    /// Inserts every card of a `generating` batch and marks it `ready`, all in
    /// one transaction with `audit`: afterwards the batch is complete or absent.
    async fn fill_batch(
        &self,
        merchant_id: i64,
        batch_id: i64,
        source: Box<dyn CardSource>,
        audit: &AuditEntry,
        after: &AfterFill,
        now: i64,
    ) -> StoreResult<i64>;
    /// Marks a `generating` batch `failed`, with its `batch.failed` event.
    async fn fail_batch(&self, batch_id: i64, error: &str, now: i64) -> StoreResult<()>;
    /// At start-up: batches left `generating` by a dead process become
    /// `failed`, each with its `batch.failed` event.
    async fn fail_interrupted_batches(&self, now: i64) -> StoreResult<u64>;
    async fn get_batch(&self, merchant_id: i64, batch_id: i64) -> StoreResult<Batch>;
    async fn list_batches(&self, merchant_id: i64, page: Page) -> StoreResult<(Vec<Batch>, i64)>;
    /// The cards of each of `batch_ids` (the merchant's) by state, in the
    /// order asked; a batch without cards counts zero.
    async fn batch_card_counts(
        &self,
        merchant_id: i64,
        batch_ids: &[i64],
    ) -> StoreResult<Vec<BatchCardCounts>>;
    /// Every card number of the merchant that starts with `prefix`.
    async fn numbers_with_prefix(&self, merchant_id: i64, prefix: &str)
        -> StoreResult<Vec<String>>;
    /// Which of `numbers` the merchant already has.
    async fn find_taken_numbers(
        &self,
        merchant_id: i64,
        numbers: &[String],
    ) -> StoreResult<Vec<String>>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::MasterKey;
    use std::collections::HashSet;

    fn spec(fields: BatchFields) -> BatchSpec {
        BatchSpec::new(fields).unwrap()
    }

    #[test]
    fn quick_create_needs_only_a_quantity() {
        let spec = spec(BatchFields {
            quantity: 10,
            ..Default::default()
        });
        assert_eq!(spec.number_length, DEFAULT_NUMBER_LENGTH);
        assert_eq!(spec.numbering, Numbering::Sequential);
        assert!(spec.strength().bits >= PASSWORD_BITS_WARN_BELOW);
        assert!(spec.strength().warnings.is_empty());
    }

    #[test]
    fn bad_fields_are_all_reported_at_once() {
        let errors = BatchSpec::new(BatchFields {
            prefix: Some("0A".into()),
            password_length: Some(2),
            quantity: BATCH_QUANTITY_MAX + 1,
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(errors.len(), 3, "{errors:?}");
    }

    #[test]
    fn weak_passwords_on_sequential_numbers_explain_why() {
        let strength = password_strength(6, PasswordCharset::Digits, Numbering::Sequential);
        assert!(strength.bits < 20.0);
        assert_eq!(strength.warnings.len(), 2);
        let strength = password_strength(6, PasswordCharset::Digits, Numbering::Random);
        assert_eq!(strength.warnings.len(), 1);
        let strength = password_strength(12, PasswordCharset::Digits, Numbering::Random);
        assert!(
            (strength.bits - 39.86).abs() < 0.01,
            "12 digits is just under 40 bits"
        );
    }

    #[test]
    fn sequential_numbers_follow_the_start_number_or_the_last_card() {
        let s = spec(BatchFields {
            prefix: Some("A588".into()),
            number_length: Some(8),
            quantity: 3,
            ..Default::default()
        });
        let mut rng = rand::thread_rng();
        let mut numbers = NumberGenerator::new(&s, HashSet::new(), 0);
        assert_eq!(numbers.next_number(&mut rng).unwrap(), "A58800000001");
        assert_eq!(numbers.next_number(&mut rng).unwrap(), "A58800000002");
        let mut numbers = NumberGenerator::new(&s, HashSet::from(["A58800000042".to_owned()]), 40);
        assert_eq!(numbers.next_number(&mut rng).unwrap(), "A58800000041");
        assert_eq!(
            numbers.next_number(&mut rng).unwrap(),
            "A58800000043",
            "taken numbers are skipped"
        );
        let s = spec(BatchFields {
            start_number: Some(10000),
            quantity: 2,
            ..Default::default()
        });
        let mut numbers = NumberGenerator::new(&s, HashSet::new(), 0);
        assert_eq!(numbers.next_number(&mut rng).unwrap(), "10001");
    }

    #[test]
    fn generated_cards_are_unique_and_carry_no_plaintext() {
        let s = spec(BatchFields {
            numbering: Some(Numbering::Random),
            number_length: Some(6),
            quantity: 5000,
            password_charset: Some(PasswordCharset::Digits),
            ..Default::default()
        });
        let keys = MasterKey::generate().merchant_keys(1, 1);
        let mut generator = CardGenerator::new(
            &s,
            keys.clone(),
            100,
            NumberGenerator::new(&s, HashSet::new(), 0),
        );
        let mut all = Vec::new();
        loop {
            let chunk = generator.next_chunk(1000);
            if chunk.is_empty() {
                break;
            }
            all.extend(chunk);
        }
        assert_eq!(all.len(), 5000);
        let numbers: HashSet<_> = all.iter().map(|c| c.number.clone()).collect();
        assert_eq!(numbers.len(), 5000);
        assert_eq!(all.first().unwrap().serial, 100);
        assert_eq!(all.last().unwrap().serial, 5099);
        let card = &all[0];
        let password = keys.open(&card.number, &card.secret_sealed).unwrap();
        assert_eq!(password.len(), DEFAULT_PASSWORD_LENGTH);
        assert!(keys.secret_matches(&card.number, &password, &card.secret_digest));
    }

    #[test]
    fn random_numbering_refuses_a_space_too_small_to_be_unguessable() {
        let errors = BatchSpec::new(BatchFields {
            numbering: Some(Numbering::Random),
            number_length: Some(4),
            quantity: 5000,
            ..Default::default()
        })
        .unwrap_err();
        assert!(errors[0].contains("卡号长度"));
    }
}
