//! Merchants (店铺): the tenants every record belongs to.

use crate::StoreResult;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merchant {
    pub id: i64,
    pub name: String,
    /// The key version new secrets are sealed with.
    pub key_version: i32,
    pub created_at: i64,
    /// 预付卡政策 (see [`crate::prepaid`]) in force.
    pub prepaid_policy: bool,
}

/// Merchants in the database.
#[async_trait::async_trait]
pub trait MerchantStore: Send + Sync + 'static {
    /// Creates a merchant and its built-in roles in one transaction.
    async fn create_merchant(&self, name: &str, now: i64) -> StoreResult<Merchant>;
    async fn list_merchants(&self) -> StoreResult<Vec<Merchant>>;
    async fn get_merchant(&self, merchant_id: i64) -> StoreResult<Merchant>;
    /// Switches the 预付卡政策 on or off, with its audit record.
    async fn set_prepaid_policy(
        &self,
        merchant_id: i64,
        on: bool,
        audit: &crate::audit::AuditEntry,
    ) -> StoreResult<()>;
}
