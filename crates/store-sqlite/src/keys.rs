//! Key rotation's reads and guarded writes, and the key ring
//! (`kaquan_core::keys`).

use crate::sql::{insert_audit, map_err};
use crate::SqliteStore;
use kaquan_core::audit::AuditEntry;
use kaquan_core::keys::{Resealable, Resealed, SealedCopy};
use kaquan_core::StoreResult;
use rusqlite::{params, OptionalExtension};

/// The table, the bound text (a card's number) and the sealed copy column.
fn columns(kind: Resealable) -> (&'static str, &'static str, &'static str) {
    match kind {
        Resealable::Cards => ("cards", "number", "secret_sealed"),
        Resealable::Codes => ("codes", "''", "sealed"),
    }
}

#[async_trait::async_trait]
impl kaquan_core::keys::KeyStore for SqliteStore {
    async fn rotate_key(&self, merchant_id: i64, audit: &AuditEntry) -> StoreResult<i32> {
        let audit = audit.clone();
        self.write(move |conn| {
            let version: i32 = conn
                .query_row(
                    "UPDATE merchants SET key_version = key_version + 1 WHERE id = ?1 RETURNING key_version",
                    [merchant_id],
                    |r| r.get(0),
                )
                .map_err(map_err)?;
            let audit = AuditEntry {
                detail: format!("key_version={version}"),
                ..audit.clone()
            };
            insert_audit(conn, &audit, 0).map_err(map_err)?;
            Ok(version)
        })
        .await
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
            "SELECT id, {bound}, {sealed}, key_version FROM {table} WHERE merchant_id = ?1 \
             AND id > ?2 AND key_version < ?3 AND {sealed} IS NOT NULL ORDER BY id LIMIT ?4"
        );
        self.read(move |conn| {
            let mut stmt = conn.prepare(&sql).map_err(map_err)?;
            let rows = stmt
                .query_map(params![merchant_id, after, version, limit], |r| {
                    Ok(SealedCopy {
                        id: r.get(0)?,
                        number: r.get(1)?,
                        sealed: r.get(2)?,
                        key_version: r.get(3)?,
                    })
                })
                .map_err(map_err)?;
            rows.collect::<Result<_, _>>().map_err(map_err)
        })
        .await
    }

    async fn count_copies_below(
        &self,
        merchant_id: i64,
        kind: Resealable,
        version: i32,
    ) -> StoreResult<i64> {
        let (table, _, sealed) = columns(kind);
        let sql = format!(
            "SELECT count(*) FROM {table} WHERE merchant_id = ?1 AND key_version < ?2 AND {sealed} IS NOT NULL"
        );
        self.read(move |conn| {
            conn.query_row(&sql, params![merchant_id, version], |r| r.get(0))
                .map_err(map_err)
        })
        .await
    }

    async fn reseal_copies(
        &self,
        merchant_id: i64,
        kind: Resealable,
        rows: &[Resealed],
    ) -> StoreResult<i64> {
        let (table, _, sealed) = columns(kind);
        let sql = match kind {
            Resealable::Cards => format!(
                "UPDATE {table} SET {sealed} = ?1, key_version = ?2, secret_digest = ?3 \
                 WHERE id = ?4 AND merchant_id = ?5 AND key_version = ?6 AND {sealed} IS NOT NULL"
            ),
            Resealable::Codes => format!(
                // ?3, the digest, is not a code's: its lookup digest never moves.
                "UPDATE {table} SET {sealed} = ?1, key_version = ?2 \
                 WHERE id = ?4 AND merchant_id = ?5 AND key_version = ?6 AND {sealed} IS NOT NULL"
            ),
        };
        let rows = rows.to_vec();
        self.write(move |conn| {
            let mut update = conn.prepare_cached(&sql).map_err(map_err)?;
            let mut n = 0;
            for r in &rows {
                n += update
                    .execute(params![
                        r.sealed,
                        r.key_version,
                        r.digest,
                        r.id,
                        merchant_id,
                        r.from_version
                    ])
                    .map_err(map_err)? as i64;
            }
            Ok(n)
        })
        .await
    }

    async fn key_ring(&self) -> StoreResult<Option<Vec<u8>>> {
        self.read(|conn| {
            conn.query_row("SELECT ring FROM key_ring WHERE id = 1", [], |r| r.get(0))
                .optional()
                .map_err(map_err)
        })
        .await
    }

    async fn set_key_ring(&self, ring: &[u8], previous: Option<&[u8]>) -> StoreResult<bool> {
        let (ring, previous) = (ring.to_vec(), previous.map(<[u8]>::to_vec));
        self.write(move |conn| {
            let n = match &previous {
                None => conn
                    .execute(
                        "INSERT INTO key_ring (id, ring) VALUES (1, ?1) ON CONFLICT (id) DO NOTHING",
                        [&ring],
                    )
                    .map_err(map_err)?,
                Some(previous) => conn
                    .execute(
                        "UPDATE key_ring SET ring = ?1 WHERE id = 1 AND ring = ?2",
                        params![ring, previous],
                    )
                    .map_err(map_err)?,
            };
            Ok(n == 1)
        })
        .await
    }
}
