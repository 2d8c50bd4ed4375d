//! 印刷厂: print shops and their age keys, and the batches that still hold
//! sealed password copies (`kaquan_core::print_shop`).

use crate::batches::{batch_from_row, BATCH_COLUMNS};
use crate::sql::{all, exec, expect_one, insert_audit, map_err, one};
use crate::PgStore;
use kaquan_core::age::Recipient;
use kaquan_core::audit::AuditEntry;
use kaquan_core::batch::Batch;
use kaquan_core::print_shop::PrintShop;
use kaquan_core::{StoreError, StoreResult};
use tokio_postgres::Row;

const COLUMNS: &str = "id, merchant_id, name, recipient, created_at";

fn shop_from_row(row: &Row) -> PrintShop {
    PrintShop {
        id: row.get(0),
        merchant_id: row.get(1),
        name: row.get(2),
        recipient: row.get(3),
        created_at: row.get(4),
    }
}

#[async_trait::async_trait]
impl kaquan_core::print_shop::PrintShopStore for PgStore {
    async fn create_print_shop(
        &self,
        merchant_id: i64,
        name: &str,
        recipient: &Recipient,
        audit: &AuditEntry,
    ) -> StoreResult<PrintShop> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let sql = format!(
            "INSERT INTO print_shops (merchant_id, name, recipient, created_at) \
             VALUES ($1, $2, $3, $4) RETURNING {COLUMNS}"
        );
        let row = one(
            &tx,
            &sql,
            &[&merchant_id, &name, &recipient.encode(), &audit.created_at],
        )
        .await?;
        insert_audit(&tx, audit, 1).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(shop_from_row(&row))
    }

    async fn list_print_shops(&self, merchant_id: i64) -> StoreResult<Vec<PrintShop>> {
        let client = self.client().await?;
        let sql = format!("SELECT {COLUMNS} FROM print_shops WHERE merchant_id = $1 ORDER BY id");
        Ok(all(&client, &sql, &[&merchant_id])
            .await?
            .iter()
            .map(shop_from_row)
            .collect())
    }

    async fn get_print_shop(&self, merchant_id: i64, id: i64) -> StoreResult<PrintShop> {
        let client = self.client().await?;
        let sql = format!("SELECT {COLUMNS} FROM print_shops WHERE merchant_id = $1 AND id = $2");
        crate::sql::opt(&client, &sql, &[&merchant_id, &id])
            .await?
            .map(|r| shop_from_row(&r))
            .ok_or(StoreError::NotFound)
    }

    async fn delete_print_shop(
        &self,
        merchant_id: i64,
        id: i64,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let n = exec(
            &tx,
            "DELETE FROM print_shops WHERE merchant_id = $1 AND id = $2",
            &[&merchant_id, &id],
        )
        .await?;
        expect_one(n)?;
        insert_audit(&tx, audit, 1).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn batches_with_copies(&self, merchant_id: i64, limit: i64) -> StoreResult<Vec<Batch>> {
        let client = self.client().await?;
        let sql = format!(
            "SELECT {BATCH_COLUMNS} FROM batches WHERE merchant_id = $1 AND n_copies > 0 \
             ORDER BY id DESC LIMIT $2"
        );
        all(&client, &sql, &[&merchant_id, &limit])
            .await?
            .iter()
            .map(batch_from_row)
            .collect()
    }
}
