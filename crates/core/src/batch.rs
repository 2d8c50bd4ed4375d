//! Batches (批次): the numbering and password rules a merchant chooses, how
//! strong they are, and the generator that turns them into card rows.

use crate::card::{
    CardNumber, CardPassword, Prefix, CARD_NUMBER_LENGTH_MAX, PASSWORD_LENGTH_MAX,
    PASSWORD_LENGTH_MIN,
};
use crate::secrets::{MerchantKeys, DIGEST_LENGTH};
use rand::Rng;
use std::collections::HashSet;

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

/// One card to insert. The plaintext password is gone by the time a row
/// exists: only its digest and sealed copy travel to the store.
#[derive(Debug, Clone)]
pub struct NewCard {
    pub serial: i64,
    pub number: String,
    pub secret_digest: [u8; DIGEST_LENGTH],
    pub secret_sealed: Vec<u8>,
}

pub fn generate_password(
    length: usize,
    charset: PasswordCharset,
    rng: &mut impl Rng,
) -> CardPassword {
    let alphabet = charset.alphabet();
    let text: String = (0..length)
        .map(|_| alphabet[rng.gen_range(0..alphabet.len())] as char)
        .collect();
    CardPassword::from_generated(text)
}

/// Makes card numbers for a spec, skipping any in `taken` (numbers that
/// already exist for the merchant with this prefix).
pub struct NumberGenerator {
    spec_prefix: String,
    number_length: usize,
    numbering: Numbering,
    next_sequential: u64,
    pad: bool,
    seen: HashSet<u64>,
    taken: HashSet<String>,
}

impl NumberGenerator {
    /// `sequential_after` is the highest numeric part already used with this
    /// prefix and length, so sequential batches continue where the last stopped.
    pub fn new(spec: &BatchSpec, taken: HashSet<String>, sequential_after: u64) -> Self {
        let (next_sequential, pad) = match spec.start_number {
            Some(start) => (start + 1, false),
            None => (sequential_after + 1, true),
        };
        Self {
            spec_prefix: spec.prefix.as_str().to_owned(),
            number_length: spec.number_length,
            numbering: spec.numbering,
            next_sequential,
            pad,
            seen: HashSet::new(),
            taken,
        }
    }

    fn format(&self, digits: u64) -> String {
        if self.pad {
            format!(
                "{}{:0width$}",
                self.spec_prefix,
                digits,
                width = self.number_length
            )
        } else {
            format!("{}{}", self.spec_prefix, digits)
        }
    }

    /// The next free number; `None` when the space is exhausted.
    pub fn next_number(&mut self, rng: &mut impl Rng) -> Option<String> {
        let space = 10u64
            .checked_pow(self.number_length as u32)
            .unwrap_or(u64::MAX);
        loop {
            let digits = match self.numbering {
                Numbering::Sequential => {
                    let d = self.next_sequential;
                    if self.pad && d >= space {
                        return None;
                    }
                    self.next_sequential += 1;
                    d
                }
                Numbering::Random => {
                    let d = rng.gen_range(0..space);
                    if !self.seen.insert(d) {
                        continue;
                    }
                    d
                }
            };
            let number = self.format(digits);
            if self.taken.is_empty() || !self.taken.contains(&number) {
                return Some(number);
            }
        }
    }
}

/// Produces one batch's card rows: number, digest and sealed password.
pub struct CardGenerator {
    numbers: NumberGenerator,
    keys: MerchantKeys,
    password_length: usize,
    password_charset: PasswordCharset,
    next_serial: i64,
    remaining: i64,
}

impl CardGenerator {
    pub fn new(
        spec: &BatchSpec,
        keys: MerchantKeys,
        first_serial: i64,
        numbers: NumberGenerator,
    ) -> Self {
        Self {
            numbers,
            keys,
            password_length: spec.password_length,
            password_charset: spec.password_charset,
            next_serial: first_serial,
            remaining: spec.quantity,
        }
    }

    /// Up to `n` more cards; empty when the batch is complete.
    pub fn next_chunk(&mut self, n: usize) -> Vec<NewCard> {
        let mut rng = rand::thread_rng();
        let n = (n as i64).min(self.remaining).max(0) as usize;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let Some(number) = self.numbers.next_number(&mut rng) else {
                break;
            };
            let password = generate_password(self.password_length, self.password_charset, &mut rng);
            out.push(NewCard {
                serial: self.next_serial,
                secret_digest: self.keys.secret_digest(&number, password.expose()),
                secret_sealed: self.keys.seal(&number, password.expose()),
                number,
            });
            self.next_serial += 1;
        }
        self.remaining -= out.len() as i64;
        out
    }
}

/// Builds a row for an imported card with the merchant's own number and password.
pub fn imported_card(
    keys: &MerchantKeys,
    serial: i64,
    number: &CardNumber,
    password: &CardPassword,
) -> NewCard {
    NewCard {
        serial,
        number: number.as_str().to_owned(),
        secret_digest: keys.secret_digest(number.as_str(), password.expose()),
        secret_sealed: keys.seal(number.as_str(), password.expose()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::MasterKey;

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
