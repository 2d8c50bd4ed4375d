//! Open-API keys (开放接口密钥): created with a secret shown once, listed,
//! revoked; the nonces of signed read-only calls.

use crate::audit::AuditEntry;
use crate::StoreResult;

/// An open-API key as the console lists it (the secret is never shown again).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: i64,
    pub merchant_id: i64,
    /// The public id sent in `X-Kaquan-Key`.
    pub key_id: String,
    pub label: String,
    pub active: bool,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

/// An active API key with its sealed secret, for checking a signature.
#[derive(Debug, Clone)]
pub struct ApiKeySecret {
    pub merchant_id: i64,
    pub key_id: String,
    pub secret_sealed: Vec<u8>,
    pub key_version: i32,
}

/// A customer's signed-in session on the H5 pages.
/// API keys and nonces in the database.
#[async_trait::async_trait]
pub trait ApiKeyStore: Send + Sync + 'static {
    /// Adds an API key; `Conflict` when the merchant already has two active.
    async fn create_api_key(
        &self,
        merchant_id: i64,
        key_id: &str,
        label: &str,
        secret_sealed: &[u8],
        key_version: i32,
        audit: &AuditEntry,
    ) -> StoreResult<ApiKey>;
    async fn list_api_keys(&self, merchant_id: i64) -> StoreResult<Vec<ApiKey>>;
    async fn revoke_api_key(
        &self,
        merchant_id: i64,
        id: i64,
        audit: &AuditEntry,
    ) -> StoreResult<()>;
    /// The active key with this public id.
    async fn find_api_key(&self, key_id: &str) -> StoreResult<Option<ApiKeySecret>>;
    /// Remembers a nonce for a read-only call; `Conflict` if it was seen before.
    async fn record_nonce(&self, nonce: &crate::ledger::NonceUse) -> StoreResult<()>;
}
