//! 印刷厂 (print shops): where a merchant sends card numbers and passwords
//! to be printed. Each has an age X25519 public key (`age1…`); an export
//! with passwords can be sealed to it ([`crate::age`]) so that the file on
//! the merchant's computer is useless without the print shop's private
//! key. Once the shop confirms, the merchant purges kaquan's own sealed
//! copies (清除导出密码副本); [`crate::batch::Batch::n_copies`] says which
//! batches still hold them.

use crate::age::Recipient;
use crate::audit::AuditEntry;
use crate::batch::Batch;
use crate::StoreResult;

pub const NAME_CHARS_MAX: usize = 40;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrintShop {
    pub id: i64,
    pub merchant_id: i64,
    pub name: String,
    /// The public key as given, normalised to lower case.
    pub recipient: String,
    pub created_at: i64,
}

impl PrintShop {
    pub fn recipient(&self) -> Result<Recipient, String> {
        Recipient::parse(&self.recipient)
    }
}

/// A new print shop's name and key, checked; the error says what is wrong.
pub fn check_new(name: &str, recipient: &str) -> Result<(String, Recipient), String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > NAME_CHARS_MAX {
        return Err(format!("请填写印刷厂名称（最多 {NAME_CHARS_MAX} 个字）"));
    }
    Ok((name.to_owned(), Recipient::parse(recipient)?))
}

#[async_trait::async_trait]
pub trait PrintShopStore: Send + Sync + 'static {
    /// `Conflict::Duplicate` when the merchant has a shop of that name.
    async fn create_print_shop(
        &self,
        merchant_id: i64,
        name: &str,
        recipient: &Recipient,
        audit: &AuditEntry,
    ) -> StoreResult<PrintShop>;
    async fn list_print_shops(&self, merchant_id: i64) -> StoreResult<Vec<PrintShop>>;
    async fn get_print_shop(&self, merchant_id: i64, id: i64) -> StoreResult<PrintShop>;
    async fn delete_print_shop(
        &self,
        merchant_id: i64,
        id: i64,
        audit: &AuditEntry,
    ) -> StoreResult<()>;
    /// The merchant's batches whose cards still hold sealed password
    /// copies, newest first (at most `limit`).
    async fn batches_with_copies(&self, merchant_id: i64, limit: i64) -> StoreResult<Vec<Batch>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_print_shop_needs_a_name_and_an_age_key() {
        let key = "age1hsl95zkclltetgmdcrf09vf306l6xnwp62xjmnvkwlpldyjtnuksud0k8g";
        let (name, recipient) = check_new(" 印刷厂 ", key).unwrap();
        assert_eq!(
            (name.as_str(), recipient.encode().as_str()),
            ("印刷厂", key)
        );
        assert!(check_new("", key).is_err());
        assert!(check_new(&"印".repeat(NAME_CHARS_MAX + 1), key).is_err());
        assert!(check_new(&"印".repeat(NAME_CHARS_MAX), key).is_ok());
        assert!(check_new("印刷厂", "ssh-ed25519 AAAA").is_err());
    }
}
