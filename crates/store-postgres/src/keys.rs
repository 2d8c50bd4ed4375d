//! Key rotation's reads and guarded writes, and the key ring
//! (`kaquan_core::keys`).

use crate::sql::{exec, insert_audit, map_err, opt};
use crate::PgStore;
use kaquan_core::audit::AuditEntry;
use kaquan_core::keys::{Resealable, Resealed, SealedCopy};
use kaquan_core::StoreResult;

/// The table, the bound text (a card's number) and the sealed copy column.
fn columns(kind: Resealable) -> (&'static str, &'static str, &'static str) {
    match kind {
        Resealable::Cards => ("cards", "number", "secret_sealed"),
        Resealable::Codes => ("codes", "''::TEXT", "sealed"),
    }
}

#[async_trait::async_trait]
impl kaquan_core::keys::KeyStore for PgStore {
    async fn rotate_key(&self, merchant_id: i64, audit: &AuditEntry) -> StoreResult<i32> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let version: i32 = opt(
            &tx,
            "UPDATE merchants SET key_version = key_version + 1 WHERE id = $1 RETURNING key_version",
            &[&merchant_id],
        )
        .await?
        .ok_or(kaquan_core::StoreError::NotFound)?
        .get(0);
        let audit = AuditEntry {
            detail: format!("key_version={version}"),
            ..audit.clone()
        };
        insert_audit(&tx, &audit, 0).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(version)
    }

    async fn copies_below(
        &self,
        merchant_id: i64,
        kind: Resealable,
        version: i32,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<SealedCopy>> {
        let (table, bound, sealed) = columns(kind);
        let sql = format!(
            "SELECT id, {bound}, {sealed}, key_version FROM {table} WHERE merchant_id = $1 \
             AND id > $2 AND key_version < $3 AND {sealed} IS NOT NULL ORDER BY id LIMIT $4"
        );
        let client = self.client().await?;
        let rows = client
            .query(&sql, &[&merchant_id, &after, &version, &limit])
            .await
            .map_err(map_err)?;
        Ok(rows
            .iter()
            .map(|r| SealedCopy {
                id: r.get(0),
                number: r.get(1),
                sealed: r.get(2),
                key_version: r.get(3),
            })
            .collect())
    }

    async fn count_copies_below(
        &self,
        merchant_id: i64,
        kind: Resealable,
        version: i32,
    ) -> StoreResult<i64> {
        let (table, _, sealed) = columns(kind);
        let sql = format!(
            "SELECT count(*) FROM {table} WHERE merchant_id = $1 AND key_version < $2 AND {sealed} IS NOT NULL"
        );
        let client = self.client().await?;
        Ok(client
            .query_one(&sql, &[&merchant_id, &version])
            .await
            .map_err(map_err)?
            .get(0))
    }

    async fn reseal_copies(
        &self,
        merchant_id: i64,
        kind: Resealable,
        rows: &[Resealed],
    ) -> StoreResult<i64> {
        let (table, _, sealed) = columns(kind);
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let mut n = 0;
        for r in rows {
            n += match kind {
                Resealable::Cards => {
                    let sql = format!(
                        "UPDATE {table} SET {sealed} = $1, key_version = $2, secret_digest = $3 \
                         WHERE id = $4 AND merchant_id = $5 AND key_version = $6 AND {sealed} IS NOT NULL"
                    );
                    exec(
                        &tx,
                        &sql,
                        &[
                            &r.sealed,
                            &r.key_version,
                            &r.digest,
                            &r.id,
                            &merchant_id,
                            &r.from_version,
                        ],
                    )
                    .await?
                }
                Resealable::Codes => {
                    let sql = format!(
                        "UPDATE {table} SET {sealed} = $1, key_version = $2 \
                         WHERE id = $3 AND merchant_id = $4 AND key_version = $5 AND {sealed} IS NOT NULL"
                    );
                    exec(
                        &tx,
                        &sql,
                        &[
                            &r.sealed,
                            &r.key_version,
                            &r.id,
                            &merchant_id,
                            &r.from_version,
                        ],
                    )
                    .await?
                }
            } as i64;
        }
        tx.commit().await.map_err(map_err)?;
        Ok(n)
    }

    async fn key_ring(&self) -> StoreResult<Option<Vec<u8>>> {
        let client = self.client().await?;
        Ok(opt(&client, "SELECT ring FROM key_ring WHERE id = 1", &[])
            .await?
            .map(|r| r.get(0)))
    }

    async fn set_key_ring(&self, ring: &[u8], previous: Option<&[u8]>) -> StoreResult<bool> {
        let client = self.client().await?;
        let n =
            match previous {
                None => exec(
                    &client,
                    "INSERT INTO key_ring (id, ring) VALUES (1, $1) ON CONFLICT (id) DO NOTHING",
                    &[&ring],
                )
                .await?,
                Some(previous) => {
                    exec(
                        &client,
                        "UPDATE key_ring SET ring = $1 WHERE id = 1 AND ring = $2",
                        &[&ring, &previous],
                    )
                    .await?
                }
            };
        Ok(n == 1)
    }
}
