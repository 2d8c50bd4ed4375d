//! Redemption codes (兑换码, seed 000) that a customer redeems into their
//! balance: the online code templates that 礼品卡商品 issue codes from, and
//! offline code batches for print.
//!
//! A code is 16 characters of Crockford base32 (80 bits from the OS CSPRNG),
//! shown in groups of four. It is stored only as a keyed digest (for
//! redeeming) and a sealed copy (for a permitted export, or for the customer
//! who bought it); the store never sees it in plaintext.

use crate::attempts::ATTEMPT_WINDOW_SECONDS;
use crate::audit::{Actor, AuditEntry};
use crate::giftcard::GiftcardSettings;
use crate::ledger::{ApiCall, Called, CustomerRef, LedgerOp, LedgerTransaction, RedeemCode};
use crate::pickup::Channel;
use crate::secrets::{MasterKey, MerchantKeys};
use crate::store::Page;
use crate::store::Store;
use crate::{StoreError, StoreResult};
use rand::RngCore;

/// Characters in a code: 16 × 5 bits = 80 bits.
pub const CODE_LENGTH: usize = 16;
/// Crockford's base32 alphabet (no I, L, O, U).
const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Most codes one offline batch holds.
pub const OFFLINE_CODES_MAX: i64 = 100_000;
/// What the digest and the sealed copy of every code are bound to.
const CODE_CONTEXT: &str = "giftcard-code";

/// A redemption code in canonical form (16 upper-case Crockford characters).
/// `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Code(String);

impl std::fmt::Debug for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Code(<redacted>)")
    }
}

impl Code {
    /// A fresh code from the OS CSPRNG.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 10];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let mut bits: u128 = 0;
        for b in bytes {
            bits = (bits << 8) | u128::from(b);
        }
        let text = (0..CODE_LENGTH)
            .rev()
            .map(|i| CROCKFORD[((bits >> (i * 5)) & 31) as usize] as char)
            .collect();
        Self(text)
    }

    /// Reads a code as a person types or pastes it: case, spaces and hyphens
    /// do not matter, and I/L read as 1, O as 0 (Crockford's rules).
    pub fn parse(text: &str) -> Option<Self> {
        let mut out = String::with_capacity(CODE_LENGTH);
        for c in text.chars() {
            let c = match c.to_ascii_uppercase() {
                ' ' | '-' | '\t' => continue,
                'I' | 'L' => '1',
                'O' => '0',
                c => c,
            };
            if !CROCKFORD.contains(&(c as u8)) || !c.is_ascii() {
                return None;
            }
            out.push(c);
            if out.len() > CODE_LENGTH {
                return None;
            }
        }
        (out.len() == CODE_LENGTH).then_some(Self(out))
    }

    /// The plaintext, for the one place that needs it (export, the owner's page).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `ABCD-EFGH-JKMN-PQRS`, as printed.
    pub fn grouped(&self) -> String {
        group_code(&self.0)
    }
}

/// Groups a canonical code in fours for display.
pub fn group_code(code: &str) -> String {
    code.as_bytes()
        .chunks(4)
        .map(|chunk| std::str::from_utf8(chunk).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("-")
}

/// Shows only the last four characters: `****-****-****-PQRS`.
pub fn mask_code(code: &str) -> String {
    let tail = code.get(code.len().saturating_sub(4)..).unwrap_or_default();
    format!("****-****-****-{tail}")
}

/// The key version every code's digest is made with, whatever the
/// merchant's current version: a code is found by its digest, so all of a
/// merchant's codes must be digested alike (only the sealed copy follows
/// the version).
const CODE_DIGEST_KEY_VERSION: i32 = 1;

/// The keys [`code_digest`] takes for a merchant's codes.
pub fn digest_keys(master: &MasterKey, merchant_id: i64) -> MerchantKeys {
    master.merchant_keys(merchant_id, CODE_DIGEST_KEY_VERSION)
}

/// The keyed digest a code is looked up by (keys from [`digest_keys`]).
pub fn code_digest(keys: &MerchantKeys, code: &Code) -> Vec<u8> {
    keys.secret_digest(CODE_CONTEXT, code.expose()).to_vec()
}

/// Opens a code's sealed copy.
pub fn open_code(keys: &MerchantKeys, sealed: &[u8]) -> Option<String> {
    keys.open(CODE_CONTEXT, sealed)
}

/// A code's sealed copy under `keys` (what [`open_code`] opens).
pub fn seal_code(keys: &MerchantKeys, code: &str) -> Vec<u8> {
    keys.seal(CODE_CONTEXT, code)
}

impl IssuedCode {
    /// The code in plaintext, grouped (`ABCD-…`); empty once its sealed copy
    /// was purged. Only for a permitted export and the customer who owns it.
    pub fn plaintext(&self, master: &MasterKey, merchant_id: i64) -> String {
        self.sealed
            .as_deref()
            .and_then(|s| open_code(&master.merchant_keys(merchant_id, self.key_version), s))
            .map(|plain| group_code(&plain))
            .unwrap_or_default()
    }
}

/// A code as the store inserts it.
#[derive(Debug, Clone)]
pub struct NewCode {
    pub digest: Vec<u8>,
    pub sealed: Vec<u8>,
    pub key_version: i32,
}

/// `n` fresh codes with their digests and sealed copies.
pub fn new_codes(master: &MasterKey, merchant_id: i64, key_version: i32, n: usize) -> Vec<NewCode> {
    let (digest_keys, keys) = (
        digest_keys(master, merchant_id),
        master.merchant_keys(merchant_id, key_version),
    );
    (0..n)
        .map(|_| {
            let code = Code::generate();
            NewCode {
                digest: code_digest(&digest_keys, &code),
                sealed: seal_code(&keys, code.expose()),
                key_version,
            }
        })
        .collect()
}

/// 线上兑换码 (issued per paid gift-card order) or 线下兑换码 (a printed batch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeKind {
    Online,
    Offline,
}

impl CodeKind {
    pub fn code(self) -> &'static str {
        match self {
            Self::Online => "online",
            Self::Offline => "offline",
        }
    }
    pub fn parse(code: &str) -> Option<Self> {
        match code {
            "online" => Some(Self::Online),
            "offline" => Some(Self::Offline),
            _ => None,
        }
    }
    pub fn label_zh(self) -> &'static str {
        match self {
            Self::Online => "线上兑换码",
            Self::Offline => "线下兑换码",
        }
    }
}

/// What a merchant fills in for a code template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeTemplateFields {
    /// 兑换码名称.
    pub name: String,
    /// 兑换面额.
    pub face_value_fen: i64,
    /// 兑换码有效期 (unix seconds, inclusive); `None` is open.
    pub valid_from: Option<i64>,
    pub valid_until: Option<i64>,
}

impl CodeTemplateFields {
    pub fn check(&self) -> Result<(), Vec<String>> {
        let mut errors = Vec::new();
        if self.name.trim().is_empty() || self.name.chars().count() > 60 {
            errors.push("兑换码名称必须是 1–60 个字".to_owned());
        }
        if let Err(e) = crate::ledger::check_amount(self.face_value_fen) {
            errors.push(format!("兑换面额：{e}"));
        }
        if let (Some(from), Some(until)) = (self.valid_from, self.valid_until) {
            if from > until {
                errors.push("有效期的开始日期晚于结束日期".to_owned());
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeTemplate {
    pub id: i64,
    pub merchant_id: i64,
    pub kind: CodeKind,
    pub fields: CodeTemplateFields,
    pub n_issued: i64,
    pub n_used: i64,
    pub n_voided: i64,
    pub created_by: String,
    pub created_at: i64,
    /// Set when the merchant deleted it; its unused codes were voided then.
    pub deleted_at: Option<i64>,
}

impl CodeTemplate {
    /// Codes handed out (or printed) and not yet redeemed.
    pub fn n_unused(&self) -> i64 {
        self.n_issued - self.n_used - self.n_voided
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeState {
    Unused,
    Used,
    /// Its template (batch) was deleted before it was redeemed.
    Voided,
}

impl CodeState {
    pub fn code(self) -> &'static str {
        match self {
            Self::Unused => "unused",
            Self::Used => "used",
            Self::Voided => "voided",
        }
    }
    pub fn parse(code: &str) -> Option<Self> {
        [Self::Unused, Self::Used, Self::Voided]
            .into_iter()
            .find(|s| s.code() == code)
    }
    pub fn label_zh(self) -> &'static str {
        match self {
            Self::Unused => "未兑换",
            Self::Used => "已兑换",
            Self::Voided => "已作废",
        }
    }
}

/// One issued code as lists and exports see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedCode {
    pub id: i64,
    pub template_id: i64,
    pub state: CodeState,
    pub face_value_fen: i64,
    pub valid_until: Option<i64>,
    pub sealed: Option<Vec<u8>>,
    pub key_version: i32,
    /// The mall order it was issued for (online codes).
    pub order_id: Option<String>,
    /// Who redeemed it (使用人) and when.
    pub customer_id: Option<i64>,
    pub customer_label: Option<String>,
    pub redeemed_at: Option<i64>,
    pub issued_at: i64,
}

/// What the store knows about a code that did not redeem, to name the reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeFacts {
    pub state: CodeState,
    pub valid_from: Option<i64>,
    pub valid_until: Option<i64>,
}

/// The precise reason a code did not redeem (audit log only).
pub fn refusal_reason(found: Option<CodeFacts>, now: i64) -> &'static str {
    match found {
        None => "unknown_code",
        Some(f) => match f.state {
            CodeState::Used => "used",
            CodeState::Voided => "voided",
            CodeState::Unused if f.valid_until.is_some_and(|t| t < now) => "expired",
            CodeState::Unused if f.valid_from.is_some_and(|t| t > now) => "not_yet_valid",
            CodeState::Unused => "raced",
        },
    }
}

/// What a merchant asks for when creating a code template, from the
/// console, the API or the CLI alike.
#[derive(Debug, Clone)]
pub struct NewCodeTemplate {
    pub kind: CodeKind,
    pub fields: CodeTemplateFields,
    /// Codes to make with an offline template; an online one issues its
    /// codes per paid mall order instead.
    pub quantity: i64,
}

impl NewCodeTemplate {
    /// Every problem with the request, in Chinese, at once.
    pub fn check(&self) -> Result<(), Vec<String>> {
        let mut errors = self.fields.check().err().unwrap_or_default();
        if self.kind == CodeKind::Offline && !(1..=OFFLINE_CODES_MAX).contains(&self.quantity) {
            errors.push(format!("生成数量须为 1–{OFFLINE_CODES_MAX}"));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// How many codes the template is created with.
    pub fn n_codes(&self) -> i64 {
        match self.kind {
            CodeKind::Online => 0,
            CodeKind::Offline => self.quantity,
        }
    }
}

/// Why a code template was not created.
#[derive(Debug, thiserror::Error)]
pub enum CodeTemplateError {
    /// The request's problems, in Chinese.
    #[error("{}", .0.join("；"))]
    Invalid(Vec<String>),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Creates a code template; an offline one with its codes, made under the
/// merchant's current key version on a thread of their own (100,000 codes
/// take a while) and inserted in the one transaction that also writes the
/// audit record.
pub async fn create_code_template(
    store: &dyn Store,
    master: &MasterKey,
    merchant_id: i64,
    request: &NewCodeTemplate,
    actor: Actor,
    now: i64,
) -> Result<CodeTemplate, CodeTemplateError> {
    request.check().map_err(CodeTemplateError::Invalid)?;
    let f = &request.fields;
    let broken = crate::prepaid::check(
        store,
        merchant_id,
        Some(f.face_value_fen),
        f.valid_from,
        f.valid_until,
        now,
    )
    .await?;
    if !broken.is_empty() {
        return Err(CodeTemplateError::Invalid(broken));
    }
    let quantity = request.n_codes();
    let key_version = store.get_merchant(merchant_id).await?.key_version;
    let codes = if quantity == 0 {
        Vec::new() // an online template issues its codes per paid order
    } else {
        let master = master.clone();
        crate::off_thread(move || new_codes(&master, merchant_id, key_version, quantity as usize))
            .await?
    };
    let audit = AuditEntry {
        merchant_id,
        actor,
        action: "create_code_template".into(),
        target: String::new(),
        detail: format!(
            "kind={} face_value_fen={} quantity={quantity}",
            request.kind.code(),
            request.fields.face_value_fen
        ),
        n_affected: 0,
        created_at: now,
    };
    Ok(store
        .create_code_template(merchant_id, request.kind, &request.fields, &codes, &audit)
        .await?)
}

/// Who redeems a code, from where.
#[derive(Debug, Clone)]
pub struct CodeRedeemer {
    pub merchant_id: i64,
    pub customer: CustomerRef,
    pub client_key: String,
    pub channel: Channel,
    pub actor: Actor,
    pub now: i64,
}

/// Redeems a typed code into the customer's balance under the merchant's
/// 兑换防刷. A malformed code is looked up like any other (same work, same
/// answer), so its shape tells a guesser nothing.
pub async fn redeem_code(
    store: &dyn Store,
    master: &MasterKey,
    settings: &GiftcardSettings,
    call: &ApiCall,
    who: CodeRedeemer,
    typed_code: &str,
) -> StoreResult<Called<LedgerTransaction>> {
    let keys = digest_keys(master, who.merchant_id);
    let digest = match Code::parse(typed_code) {
        Some(code) => code_digest(&keys, &code),
        None => {
            // Spend the same HMAC, then look up a digest no code has.
            let _ = keys.secret_digest(CODE_CONTEXT, typed_code);
            vec![0u8; 32]
        }
    };
    store
        .post_ledger(
            call,
            &LedgerOp::Redeem(RedeemCode {
                merchant_id: who.merchant_id,
                customer: who.customer,
                digest,
                client_key: who.client_key,
                attempt_limit: settings.attempt_limit,
                attempts_since: who.now - ATTEMPT_WINDOW_SECONDS,
                channel: who.channel,
                actor: who.actor,
                now: who.now,
            }),
        )
        .await
}

/// Code templates and codes in the database.
#[async_trait::async_trait]
pub trait CodeStore: Send + Sync + 'static {
    /// Creates a template; for an offline one, its `codes` in the same transaction.
    async fn create_code_template(
        &self,
        merchant_id: i64,
        kind: CodeKind,
        fields: &CodeTemplateFields,
        codes: &[NewCode],
        audit: &AuditEntry,
    ) -> StoreResult<CodeTemplate>;
    async fn list_code_templates(
        &self,
        merchant_id: i64,
        kind: CodeKind,
        page: Page,
    ) -> StoreResult<(Vec<CodeTemplate>, i64)>;
    async fn get_code_template(
        &self,
        merchant_id: i64,
        template_id: i64,
    ) -> StoreResult<CodeTemplate>;
    /// Deletes a template and voids its unused codes, only if exactly
    /// `expected_unused` are unused (what the merchant confirmed);
    /// `Conflict` otherwise. Returns how many codes were voided.
    async fn delete_code_template(
        &self,
        merchant_id: i64,
        template_id: i64,
        expected_unused: i64,
        audit: &AuditEntry,
    ) -> StoreResult<i64>;
    /// Codes of a template by id (兑换记录 / 查看所有), all or those in `state`.
    async fn list_codes(
        &self,
        merchant_id: i64,
        template_id: i64,
        state: Option<CodeState>,
        page: Page,
    ) -> StoreResult<(Vec<IssuedCode>, i64)>;
    /// The merchant's code with this digest, in whichever template (查码).
    async fn find_code(&self, merchant_id: i64, digest: &[u8]) -> StoreResult<Option<IssuedCode>>;
    /// The name of each code's template (礼品卡 or 兑换码 name), as
    /// `(code_id, name)` for the merchant's codes among `code_ids`: what a
    /// customer's 余额明细 says was redeemed.
    async fn template_names_of_codes(
        &self,
        merchant_id: i64,
        code_ids: &[i64],
    ) -> StoreResult<Vec<(i64, String)>>;
    /// Keyset page for exports: codes with id > `after_id`, by id.
    async fn codes_after(
        &self,
        merchant_id: i64,
        template_id: i64,
        after_id: i64,
        limit: i64,
    ) -> StoreResult<Vec<IssuedCode>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_template_request_checks_its_fields_and_an_offline_quantity() {
        let request = |kind, quantity| NewCodeTemplate {
            kind,
            fields: CodeTemplateFields {
                name: "端午".into(),
                face_value_fen: 100,
                valid_from: None,
                valid_until: None,
            },
            quantity,
        };
        assert!(request(CodeKind::Offline, 1).check().is_ok());
        assert!(request(CodeKind::Offline, OFFLINE_CODES_MAX)
            .check()
            .is_ok());
        assert_eq!(
            request(CodeKind::Offline, 0).check().unwrap_err(),
            [format!("生成数量须为 1–{OFFLINE_CODES_MAX}")]
        );
        assert!(request(CodeKind::Offline, OFFLINE_CODES_MAX + 1)
            .check()
            .is_err());
        assert!(
            request(CodeKind::Online, 0).check().is_ok(),
            "online issues per order"
        );
        assert_eq!(request(CodeKind::Online, 5).n_codes(), 0);
        assert_eq!(request(CodeKind::Offline, 5).n_codes(), 5);
        let mut both = request(CodeKind::Offline, 0);
        both.fields.name = String::new();
        assert_eq!(both.check().unwrap_err().len(), 2, "every problem at once");
    }

    #[test]
    fn generated_codes_are_sixteen_crockford_characters_and_parse_back() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            let code = Code::generate();
            assert_eq!(code.expose().len(), CODE_LENGTH);
            assert!(code.expose().bytes().all(|b| CROCKFORD.contains(&b)));
            assert_eq!(Code::parse(&code.grouped()), Some(code.clone()));
            assert_eq!(
                Code::parse(&code.expose().to_ascii_lowercase()),
                Some(code.clone())
            );
            assert!(seen.insert(code.expose().to_owned()));
        }
    }

    #[test]
    fn typed_codes_follow_crockford_reading_rules() {
        assert_eq!(
            Code::parse("abcd-efgh-ijkl-mnop").map(|c| c.expose().to_owned()),
            Some("ABCDEFGH1JK1MN0P".into())
        );
        assert_eq!(Code::parse("ABCD-EFGH-JKMN-PQR"), None);
        assert_eq!(Code::parse("ABCD-EFGH-JKMN-PQRSTU"), None);
        assert_eq!(Code::parse("ABCD-EFGH-JKMN-PQRU"), None);
        assert_eq!(Code::parse("ＡBCD-EFGH-JKMN-PQRS"), None);
    }

    #[test]
    fn codes_are_masked_and_grouped_for_display() {
        assert_eq!(group_code("ABCDEFGHJKMNPQRS"), "ABCD-EFGH-JKMN-PQRS");
        assert_eq!(mask_code("ABCDEFGHJKMNPQRS"), "****-****-****-PQRS");
        assert_eq!(format!("{:?}", Code::generate()), "Code(<redacted>)");
    }

    #[test]
    fn refusal_reasons_name_the_real_cause() {
        let facts = |state, valid_from, valid_until| {
            Some(CodeFacts {
                state,
                valid_from,
                valid_until,
            })
        };
        assert_eq!(refusal_reason(None, 10), "unknown_code");
        assert_eq!(
            refusal_reason(facts(CodeState::Used, None, None), 10),
            "used"
        );
        assert_eq!(
            refusal_reason(facts(CodeState::Voided, None, None), 10),
            "voided"
        );
        assert_eq!(
            refusal_reason(facts(CodeState::Unused, None, Some(5)), 10),
            "expired"
        );
        assert_eq!(
            refusal_reason(facts(CodeState::Unused, Some(20), None), 10),
            "not_yet_valid"
        );
    }
}
