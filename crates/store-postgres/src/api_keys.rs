//! Open-API keys and the nonces of signed read-only calls.

use crate::sql::all;
use crate::sql::exec;
use crate::sql::expect_one;
use crate::sql::insert_audit;
use crate::sql::map_err;
use crate::sql::opt;
use crate::PgStore;
use deadpool_postgres::GenericClient;
use kaquan_core::api_key::ApiKey;
use kaquan_core::api_key::ApiKeySecret;
use kaquan_core::audit::AuditEntry;
use kaquan_core::signing::API_KEYS_ACTIVE_MAX;
use kaquan_core::{Conflict, StoreError, StoreResult};
use tokio_postgres::Row;

pub(crate) const API_KEY_COLUMNS: &str =
    "id, merchant_id, key_id, label, active, created_at, revoked_at";

pub(crate) fn api_key_from_row(row: &Row) -> ApiKey {
    ApiKey {
        id: row.get(0),
        merchant_id: row.get(1),
        key_id: row.get(2),
        label: row.get(3),
        active: row.get(4),
        created_at: row.get(5),
        revoked_at: row.get(6),
    }
}

#[async_trait::async_trait]
impl kaquan_core::api_key::ApiKeyStore for PgStore {
    async fn create_api_key(
        &self,
        merchant_id: i64,
        key_id: &str,
        label: &str,
        secret_sealed: &[u8],
        key_version: i32,
        audit: &AuditEntry,
    ) -> StoreResult<ApiKey> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        // Serialise key creation per merchant so two at once cannot make three active keys.
        exec(
            &tx,
            "SELECT id FROM merchants WHERE id = $1 FOR UPDATE",
            &[&merchant_id],
        )
        .await?;
        let key = opt(
            &tx,
            &format!(
                "INSERT INTO api_keys (merchant_id, key_id, label, secret_sealed, key_version, active, created_at) \
                 SELECT $1, $2, $3, $4, $5, TRUE, $6 \
                 WHERE (SELECT count(*) FROM api_keys WHERE merchant_id = $1 AND active) < $7 \
                 RETURNING {API_KEY_COLUMNS}"
            ),
            &[
                &merchant_id,
                &key_id,
                &label,
                &secret_sealed,
                &key_version,
                &audit.created_at,
                &API_KEYS_ACTIVE_MAX,
            ],
        )
        .await?
        .map(|r| api_key_from_row(&r))
        .ok_or(StoreError::Conflict(Conflict::ApiKeysFull))?;
        insert_audit(&tx, audit, 1).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(key)
    }

    async fn list_api_keys(&self, merchant_id: i64) -> StoreResult<Vec<ApiKey>> {
        let client = self.client().await?;
        Ok(all(
            &client,
            &format!(
                "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE merchant_id = $1 ORDER BY id DESC"
            ),
            &[&merchant_id],
        )
        .await?
        .iter()
        .map(api_key_from_row)
        .collect())
    }

    async fn revoke_api_key(
        &self,
        merchant_id: i64,
        id: i64,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let n = exec(
            &tx,
            "UPDATE api_keys SET active = FALSE, revoked_at = $1 WHERE id = $2 AND merchant_id = $3 AND active",
            &[&audit.created_at, &id, &merchant_id],
        )
        .await?;
        expect_one(n)?;
        insert_audit(&tx, audit, 1).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn find_api_key(&self, key_id: &str) -> StoreResult<Option<ApiKeySecret>> {
        let client = self.client().await?;
        Ok(opt(
            &client,
            "SELECT merchant_id, key_id, secret_sealed, key_version FROM api_keys WHERE key_id = $1 AND active",
            &[&key_id],
        )
        .await?
        .map(|r| ApiKeySecret {
            merchant_id: r.get(0),
            key_id: r.get(1),
            secret_sealed: r.get(2),
            key_version: r.get(3),
        }))
    }

    async fn record_nonce(&self, nonce: &kaquan_core::ledger::NonceUse) -> StoreResult<()> {
        let client = self.client().await?;
        exec(
            &client,
            "INSERT INTO api_nonces (signed_at, key_id, nonce) VALUES ($1, $2, $3)",
            &[&nonce.signed_at, &nonce.api_key_id, &nonce.nonce],
        )
        .await?;
        Ok(())
    }
}
