//! The audit chain: the sealer links unsealed records on the writer (one
//! sealer at a time, since SQLite has one writer), and `kaquan verify`
//! walks every chain in the order of its unique index.

use crate::audit::{audit_from_row, AUDIT_COLUMNS};
use crate::sql::{expect_one, map_err};
use crate::SqliteStore;
use kaquan_core::audit::chain::{self, AuditChainStore, ChainHead, ChainsCheck, SealedRecord};
use kaquan_core::audit::AuditRecord;
use kaquan_core::StoreResult;
use rusqlite::{params, Connection, OptionalExtension, Row};

const CHAIN_COLUMNS: &str = "chain_seq, prev_hash, chain_hash";

fn hash_of(row: &Row, column: usize) -> rusqlite::Result<[u8; 32]> {
    let bytes: Vec<u8> = row.get(column)?;
    bytes.try_into().map_err(|_| {
        rusqlite::Error::FromSqlConversionFailure(
            column,
            rusqlite::types::Type::Blob,
            "a chain hash is 32 bytes".into(),
        )
    })
}

/// A sealed record from `AUDIT_COLUMNS, CHAIN_COLUMNS`.
fn sealed_from_row(row: &Row) -> rusqlite::Result<SealedRecord> {
    Ok(SealedRecord {
        record: audit_from_row(row)?,
        seq: row.get(9)?,
        prev_hash: hash_of(row, 10)?,
        hash: hash_of(row, 11)?,
    })
}

fn head_of(conn: &Connection, merchant_id: i64) -> StoreResult<Option<(i64, [u8; 32])>> {
    conn.prepare_cached(
        "SELECT chain_seq, chain_hash FROM audit_log WHERE merchant_id = ?1 AND chain_seq IS NOT NULL \
         ORDER BY chain_seq DESC LIMIT 1",
    )
    .and_then(|mut s| {
        s.query_row([merchant_id], |r| Ok((r.get(0)?, hash_of(r, 1)?)))
            .optional()
    })
    .map_err(map_err)
}

fn seal(conn: &Connection, limit: i64) -> StoreResult<i64> {
    let unsealed: Vec<AuditRecord> = conn
        .prepare_cached(&format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE chain_seq IS NULL ORDER BY id LIMIT ?1"
        ))
        .and_then(|mut s| s.query_map([limit], audit_from_row)?.collect())
        .map_err(map_err)?;
    let mut heads = Vec::new();
    for m in chain::merchants_of(&unsealed) {
        if let Some((seq, hash)) = head_of(conn, m)? {
            heads.push((m, seq, hash));
        }
    }
    let mut update = conn
        .prepare_cached(
            "UPDATE audit_log SET chain_seq = ?1, prev_hash = ?2, chain_hash = ?3 \
             WHERE id = ?4 AND chain_seq IS NULL",
        )
        .map_err(map_err)?;
    let sealed = chain::seal(&unsealed, &heads);
    for s in &sealed {
        let n = update
            .execute(params![s.seq, &s.prev_hash[..], &s.hash[..], s.record.id])
            .map_err(map_err)?;
        expect_one(n)?;
    }
    Ok(sealed.len() as i64)
}

#[async_trait::async_trait]
impl AuditChainStore for SqliteStore {
    async fn seal_audit(&self, limit: i64) -> StoreResult<i64> {
        self.write(move |conn| seal(conn, limit)).await
    }

    async fn audit_heads(&self, merchant_id: Option<i64>) -> StoreResult<Vec<ChainHead>> {
        self.read(move |conn| {
            let merchants: Vec<i64> = match merchant_id {
                Some(m) => vec![m],
                None => conn
                    .prepare("SELECT id FROM merchants ORDER BY id")
                    .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
                    .map_err(map_err)?,
            };
            let mut heads = Vec::new();
            for m in merchants {
                let head = conn
                    .prepare_cached(
                        "SELECT chain_seq, chain_hash, created_at FROM audit_log \
                         WHERE merchant_id = ?1 AND chain_seq IS NOT NULL ORDER BY chain_seq DESC LIMIT 1",
                    )
                    .and_then(|mut s| {
                        s.query_row([m], |r| {
                            Ok(ChainHead {
                                merchant_id: m,
                                seq: r.get(0)?,
                                hash: hash_of(r, 1)?,
                                created_at: r.get(2)?,
                            })
                        })
                        .optional()
                    })
                    .map_err(map_err)?;
                heads.extend(head);
            }
            Ok(heads)
        })
        .await
    }

    async fn sealed_audit(
        &self,
        merchant_id: i64,
        from: i64,
        to: i64,
    ) -> StoreResult<Vec<SealedRecord>> {
        self.read(move |conn| {
            conn.prepare(&format!(
                "SELECT {AUDIT_COLUMNS}, {CHAIN_COLUMNS} FROM audit_log \
                 WHERE merchant_id = ?1 AND chain_seq IS NOT NULL AND created_at >= ?2 AND created_at < ?3 \
                 ORDER BY chain_seq"
            ))
            .and_then(|mut s| {
                s.query_map(params![merchant_id, from, to], sealed_from_row)?
                    .collect()
            })
            .map_err(map_err)
        })
        .await
    }

    async fn check_audit_chains(&self) -> StoreResult<(Vec<String>, i64)> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT {AUDIT_COLUMNS}, {CHAIN_COLUMNS} FROM audit_log \
                     WHERE chain_seq IS NOT NULL ORDER BY merchant_id, chain_seq"
                ))
                .map_err(map_err)?;
            let mut rows = stmt.query([]).map_err(map_err)?;
            let mut check = ChainsCheck::default();
            while let Some(row) = rows.next().map_err(map_err)? {
                check.step(&sealed_from_row(row).map_err(map_err)?);
            }
            Ok(check.finish())
        })
        .await
    }

    async fn sealed_at(&self, merchant_id: i64, seq: i64) -> StoreResult<Option<SealedRecord>> {
        self.read(move |conn| {
            conn.prepare(&format!(
                "SELECT {AUDIT_COLUMNS}, {CHAIN_COLUMNS} FROM audit_log WHERE merchant_id = ?1 AND chain_seq = ?2"
            ))
            .and_then(|mut s| s.query_row(params![merchant_id, seq], sealed_from_row).optional())
            .map_err(map_err)
        })
        .await
    }
}
