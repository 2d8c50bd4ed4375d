//! Open-API keys and the nonces of signed read-only calls.

use crate::sql::expect_one;
use crate::sql::insert_audit;
use crate::sql::map_err;
use crate::SqliteStore;
use kaquan_core::api_key::ApiKey;
use kaquan_core::api_key::ApiKeySecret;
use kaquan_core::audit::AuditEntry;
use kaquan_core::ledger::NonceUse;
use kaquan_core::signing::API_KEYS_ACTIVE_MAX;
use kaquan_core::{Conflict, StoreError, StoreResult};
use rusqlite::{params, OptionalExtension, Row};

pub(crate) fn api_key_from_row(row: &Row) -> rusqlite::Result<ApiKey> {
    Ok(ApiKey {
        id: row.get(0)?,
        merchant_id: row.get(1)?,
        key_id: row.get(2)?,
        label: row.get(3)?,
        active: row.get(4)?,
        created_at: row.get(5)?,
        revoked_at: row.get(6)?,
    })
}

#[async_trait::async_trait]
impl kaquan_core::api_key::ApiKeyStore for SqliteStore {
    async fn create_api_key(
        &self,
        merchant_id: i64,
        key_id: &str,
        label: &str,
        secret_sealed: &[u8],
        key_version: i32,
        audit: &AuditEntry,
    ) -> StoreResult<ApiKey> {
        let (key_id, label, sealed, audit) = (
            key_id.to_owned(),
            label.to_owned(),
            secret_sealed.to_vec(),
            audit.clone(),
        );
        self.write(move |conn| {
            let key = conn
                .query_row(
                    "INSERT INTO api_keys (merchant_id, key_id, label, secret_sealed, key_version, active, created_at) \
                     SELECT ?1, ?2, ?3, ?4, ?5, 1, ?6 \
                     WHERE (SELECT count(*) FROM api_keys WHERE merchant_id = ?1 AND active) < ?7 \
                     RETURNING id, merchant_id, key_id, label, active, created_at, revoked_at",
                    params![merchant_id, key_id, label, sealed, key_version, audit.created_at, API_KEYS_ACTIVE_MAX],
                    api_key_from_row,
                )
                .optional()
                .map_err(map_err)?
                .ok_or(StoreError::Conflict(Conflict::ApiKeysFull))?;
            insert_audit(conn, &audit, 1).map_err(map_err)?;
            Ok(key)
        })
        .await
    }

    async fn list_api_keys(&self, merchant_id: i64) -> StoreResult<Vec<ApiKey>> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare(
                    "SELECT id, merchant_id, key_id, label, active, created_at, revoked_at FROM api_keys \
                     WHERE merchant_id = ?1 ORDER BY id DESC",
                )
                .map_err(map_err)?;
            let rows = stmt.query_map([merchant_id], api_key_from_row).map_err(map_err)?;
            rows.collect::<Result<_, _>>().map_err(map_err)
        })
        .await
    }

    async fn revoke_api_key(
        &self,
        merchant_id: i64,
        id: i64,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let audit = audit.clone();
        self.write(move |conn| {
            let n = conn
                .execute(
                    "UPDATE api_keys SET active = 0, revoked_at = ?1 WHERE id = ?2 AND merchant_id = ?3 AND active",
                    params![audit.created_at, id, merchant_id],
                )
                .map_err(map_err)?;
            expect_one(n)?;
            insert_audit(conn, &audit, 1).map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn find_api_key(&self, key_id: &str) -> StoreResult<Option<ApiKeySecret>> {
        let key_id = key_id.to_owned();
        self.read(move |conn| {
            conn.prepare_cached(
                "SELECT merchant_id, key_id, secret_sealed, key_version FROM api_keys WHERE key_id = ?1 AND active",
            )
            .and_then(|mut s| {
                s.query_row([key_id], |r| {
                    Ok(ApiKeySecret {
                        merchant_id: r.get(0)?,
                        key_id: r.get(1)?,
                        secret_sealed: r.get(2)?,
                        key_version: r.get(3)?,
                    })
                })
                .optional()
            })
            .map_err(map_err)
        })
        .await
    }

    async fn record_nonce(&self, nonce: &NonceUse) -> StoreResult<()> {
        let (signed_at, digest) = (nonce.signed_at, nonce.digest());
        self.write(move |conn| {
            if conn.nonces.borrow_mut().claim(conn, signed_at, digest)? {
                Ok(())
            } else {
                Err(crate::nonces::reused())
            }
        })
        .await
    }
}
