//! The audit chain: the sealer links unsealed records in one transaction
//! under an advisory lock, so that one sealer at a time links them however
//! many nodes run one; `kaquan verify` walks every chain page by page in the
//! order of its unique index.

use crate::audit::{audit_from_row, AUDIT_COLUMNS};
use crate::sql::{all, exec, map_err, opt};
use crate::PgStore;
use deadpool_postgres::GenericClient;
use kaquan_core::audit::chain::{self, AuditChainStore, ChainHead, ChainsCheck, SealedRecord};
use kaquan_core::{StoreError, StoreResult};
use tokio_postgres::Row;

const CHAIN_COLUMNS: &str = "chain_seq, prev_hash, chain_hash";
/// The advisory lock the sealer holds ('audit' in ASCII).
const SEALER_LOCK: i64 = 0x0061_7564_6974;
/// Records a page of the chains' walk holds.
const WALK_PAGE: i64 = 10_000;

fn hash_of(row: &Row, column: usize) -> StoreResult<[u8; 32]> {
    let bytes: Vec<u8> = row.get(column);
    bytes
        .try_into()
        .map_err(|_| StoreError::Backend("a chain hash is 32 bytes".into()))
}

fn sealed_from_row(row: &Row) -> StoreResult<SealedRecord> {
    Ok(SealedRecord {
        record: audit_from_row(row),
        seq: row.get(9),
        prev_hash: hash_of(row, 10)?,
        hash: hash_of(row, 11)?,
    })
}

async fn head_of(c: &impl GenericClient, merchant_id: i64) -> StoreResult<Option<Row>> {
    opt(
        c,
        "SELECT chain_seq, chain_hash, created_at FROM audit_log \
         WHERE merchant_id = $1 AND chain_seq IS NOT NULL ORDER BY chain_seq DESC LIMIT 1",
        &[&merchant_id],
    )
    .await
}

#[async_trait::async_trait]
impl AuditChainStore for PgStore {
    async fn seal_audit(&self, limit: i64) -> StoreResult<i64> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        exec(&tx, "SELECT pg_advisory_xact_lock($1)", &[&SEALER_LOCK]).await?;
        let rows = all(
            &tx,
            &format!(
                "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE chain_seq IS NULL ORDER BY id LIMIT $1"
            ),
            &[&limit],
        )
        .await?;
        let unsealed: Vec<_> = rows.iter().map(audit_from_row).collect();
        let mut heads = Vec::new();
        for m in chain::merchants_of(&unsealed) {
            if let Some(row) = head_of(&tx, m).await? {
                heads.push((m, row.get(0), hash_of(&row, 1)?));
            }
        }
        let sealed = chain::seal(&unsealed, &heads);
        let ids: Vec<i64> = sealed.iter().map(|s| s.record.id).collect();
        let seqs: Vec<i64> = sealed.iter().map(|s| s.seq).collect();
        let prevs: Vec<&[u8]> = sealed.iter().map(|s| &s.prev_hash[..]).collect();
        let hashes: Vec<&[u8]> = sealed.iter().map(|s| &s.hash[..]).collect();
        let n = exec(
            &tx,
            "UPDATE audit_log a SET chain_seq = u.seq, prev_hash = u.prev, chain_hash = u.hash \
             FROM unnest($1::bigint[], $2::bigint[], $3::bytea[], $4::bytea[]) AS u(id, seq, prev, hash) \
             WHERE a.id = u.id AND a.chain_seq IS NULL",
            &[&ids, &seqs, &prevs, &hashes],
        )
        .await?;
        if n != sealed.len() as u64 {
            return Err(StoreError::Backend(format!(
                "sealed {n} audit records of {}",
                sealed.len()
            )));
        }
        tx.commit().await.map_err(map_err)?;
        Ok(n as i64)
    }

    async fn audit_heads(&self, merchant_id: Option<i64>) -> StoreResult<Vec<ChainHead>> {
        let c = self.client().await?;
        let merchants: Vec<i64> = match merchant_id {
            Some(m) => vec![m],
            None => all(&c, "SELECT id FROM merchants ORDER BY id", &[])
                .await?
                .iter()
                .map(|r| r.get(0))
                .collect(),
        };
        let mut heads = Vec::new();
        for m in merchants {
            if let Some(row) = head_of(&c, m).await? {
                heads.push(ChainHead {
                    merchant_id: m,
                    seq: row.get(0),
                    hash: hash_of(&row, 1)?,
                    created_at: row.get(2),
                });
            }
        }
        Ok(heads)
    }

    async fn sealed_audit(
        &self,
        merchant_id: i64,
        from: i64,
        to: i64,
    ) -> StoreResult<Vec<SealedRecord>> {
        let c = self.client().await?;
        let rows = all(
            &c,
            &format!(
                "SELECT {AUDIT_COLUMNS}, {CHAIN_COLUMNS} FROM audit_log \
                 WHERE merchant_id = $1 AND chain_seq IS NOT NULL AND created_at >= $2 AND created_at < $3 \
                 ORDER BY chain_seq"
            ),
            &[&merchant_id, &from, &to],
        )
        .await?;
        rows.iter().map(sealed_from_row).collect()
    }

    async fn check_audit_chains(&self) -> StoreResult<(Vec<String>, i64)> {
        let c = self.client().await?;
        let mut check = ChainsCheck::default();
        let mut after = (0i64, 0i64);
        loop {
            let rows = all(
                &c,
                &format!(
                    "SELECT {AUDIT_COLUMNS}, {CHAIN_COLUMNS} FROM audit_log \
                     WHERE chain_seq IS NOT NULL AND (merchant_id, chain_seq) > ($1, $2) \
                     ORDER BY merchant_id, chain_seq LIMIT $3"
                ),
                &[&after.0, &after.1, &WALK_PAGE],
            )
            .await?;
            for row in &rows {
                let sealed = sealed_from_row(row)?;
                after = (sealed.record.entry.merchant_id, sealed.seq);
                check.step(&sealed);
            }
            if (rows.len() as i64) < WALK_PAGE {
                return Ok(check.finish());
            }
        }
    }

    async fn sealed_at(&self, merchant_id: i64, seq: i64) -> StoreResult<Option<SealedRecord>> {
        let c = self.client().await?;
        let row = opt(
            &c,
            &format!(
                "SELECT {AUDIT_COLUMNS}, {CHAIN_COLUMNS} FROM audit_log WHERE merchant_id = $1 AND chain_seq = $2"
            ),
            &[&merchant_id, &seq],
        )
        .await?;
        row.as_ref().map(sealed_from_row).transpose()
    }
}
