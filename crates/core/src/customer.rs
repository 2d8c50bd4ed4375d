//! Customers (顾客): who holds a balance, how the mall names them or how
//! they sign in by phone, their H5 sessions and one-time login links.

use crate::store::Page;
use crate::StoreResult;

/// A customer (顾客) of one merchant, with their balance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Customer {
    pub id: i64,
    pub merchant_id: i64,
    /// The id the merchant's own system (mall) knows the customer by.
    pub external_id: Option<String>,
    /// Set when the customer signs in with phone + password.
    pub phone: Option<String>,
    pub nickname: String,
    pub balance_fen: i64,
    pub created_at: i64,
}

impl Customer {
    /// How staff see the customer in lists: nickname, else the mall's id, else the phone.
    pub fn label(&self) -> String {
        if !self.nickname.is_empty() {
            return self.nickname.clone();
        }
        self.external_id
            .clone()
            .or_else(|| self.phone.clone())
            .unwrap_or_else(|| format!("#{}", self.id))
    }

    /// How the exchange centre greets the customer: the nickname, else the
    /// phone masked; never the mall's internal id.
    pub fn greeting(&self) -> String {
        if !self.nickname.is_empty() {
            return self.nickname.clone();
        }
        match &self.phone {
            Some(phone) => crate::pickup::mask_phone(phone),
            None => "您好".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_centre_greets_by_nickname_or_masked_phone_never_the_malls_id() {
        let customer = Customer {
            id: 7,
            merchant_id: 1,
            external_id: Some("mall-user-8812".into()),
            phone: None,
            nickname: String::new(),
            balance_fen: 0,
            created_at: 0,
        };
        assert_eq!(customer.greeting(), "您好");
        let with_phone = Customer {
            phone: Some("13800001234".into()),
            ..customer.clone()
        };
        assert_eq!(with_phone.greeting(), "138****1234");
        let named = Customer {
            nickname: "小王".into(),
            ..with_phone
        };
        assert_eq!(named.greeting(), "小王");
        assert_eq!(
            customer.label(),
            "mall-user-8812",
            "staff still see the mall's id"
        );
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerSession {
    pub token_hash: String,
    pub merchant_id: i64,
    pub customer_id: i64,
    pub csrf_token: String,
    pub expires_at: i64,
}

/// Customers, their sign-in sessions and login links in the database.
#[async_trait::async_trait]
pub trait CustomerStore: Send + Sync + 'static {
    /// The customer the merchant's system knows as `external_id`, created on first sight.
    async fn ensure_customer(
        &self,
        merchant_id: i64,
        external_id: &str,
        now: i64,
    ) -> StoreResult<Customer>;
    /// A customer who signs up with phone + password; `Conflict` if the phone is taken.
    async fn create_phone_customer(
        &self,
        merchant_id: i64,
        phone: &str,
        password_hash: &str,
        now: i64,
    ) -> StoreResult<Customer>;
    /// The customer with this phone and their password hash.
    /// Sets the password of the phone's customer who has none yet (one a
    /// merchant's 定向发放 made): signing up with that phone takes the
    /// account, and the coupons sent to it, over. `None` when there is no
    /// such customer.
    async fn adopt_phone_customer(
        &self,
        merchant_id: i64,
        phone: &str,
        password_hash: &str,
    ) -> StoreResult<Option<Customer>>;
    async fn find_phone_customer(
        &self,
        merchant_id: i64,
        phone: &str,
    ) -> StoreResult<Option<(Customer, String)>>;
    async fn get_customer(&self, merchant_id: i64, customer_id: i64) -> StoreResult<Customer>;
    async fn find_external_customer(
        &self,
        merchant_id: i64,
        external_id: &str,
    ) -> StoreResult<Option<Customer>>;
    /// Customers by id, optionally only those whose external id, phone or
    /// nickname contains `search`.
    async fn list_customers(
        &self,
        merchant_id: i64,
        search: &str,
        page: Page,
    ) -> StoreResult<(Vec<Customer>, i64)>;

    /// Marks a login link used; `Conflict` if it was used before.
    async fn consume_login_link(&self, nonce: &str, expires_at: i64) -> StoreResult<()>;
    async fn create_customer_session(&self, session: &CustomerSession) -> StoreResult<()>;
    async fn find_customer_session(
        &self,
        token_hash: &str,
        now: i64,
    ) -> StoreResult<Option<CustomerSession>>;
    async fn delete_customer_session(&self, token_hash: &str) -> StoreResult<()>;
}

/// A mainland mobile number (11 digits starting with 1), trimmed: what a
/// customer signs up with and what a text message goes to.
pub fn check_mobile(phone: &str) -> Result<String, &'static str> {
    let phone = phone.trim();
    if phone.len() == 11 && phone.starts_with('1') && phone.bytes().all(|b| b.is_ascii_digit()) {
        Ok(phone.to_owned())
    } else {
        Err("请输入 11 位手机号")
    }
}
