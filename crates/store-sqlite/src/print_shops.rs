//! 印刷厂: print shops and their age keys, and the batches that still hold
//! sealed password copies (`kaquan_core::print_shop`).

use crate::batches::{batch_from_row, BATCH_COLUMNS};
use crate::sql::{expect_one, insert_audit, map_err};
use crate::SqliteStore;
use kaquan_core::age::Recipient;
use kaquan_core::audit::AuditEntry;
use kaquan_core::batch::Batch;
use kaquan_core::print_shop::PrintShop;
use kaquan_core::StoreResult;
use rusqlite::{params, Row};

const COLUMNS: &str = "id, merchant_id, name, recipient, created_at";

fn shop_from_row(row: &Row) -> rusqlite::Result<PrintShop> {
    Ok(PrintShop {
        id: row.get(0)?,
        merchant_id: row.get(1)?,
        name: row.get(2)?,
        recipient: row.get(3)?,
        created_at: row.get(4)?,
    })
}

#[async_trait::async_trait]
impl kaquan_core::print_shop::PrintShopStore for SqliteStore {
    async fn create_print_shop(
        &self,
        merchant_id: i64,
        name: &str,
        recipient: &Recipient,
        audit: &AuditEntry,
    ) -> StoreResult<PrintShop> {
        let (name, recipient, audit) = (name.to_owned(), recipient.encode(), audit.clone());
        self.write(move |conn| {
            let shop = conn
                .query_row(
                    &format!(
                        "INSERT INTO print_shops (merchant_id, name, recipient, created_at) \
                         VALUES (?1, ?2, ?3, ?4) RETURNING {COLUMNS}"
                    ),
                    params![merchant_id, name, recipient, audit.created_at],
                    shop_from_row,
                )
                .map_err(map_err)?;
            insert_audit(conn, &audit, 1).map_err(map_err)?;
            Ok(shop)
        })
        .await
    }

    async fn list_print_shops(&self, merchant_id: i64) -> StoreResult<Vec<PrintShop>> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT {COLUMNS} FROM print_shops WHERE merchant_id = ?1 ORDER BY id"
                ))
                .map_err(map_err)?;
            let rows = stmt
                .query_map([merchant_id], shop_from_row)
                .map_err(map_err)?;
            rows.collect::<Result<_, _>>().map_err(map_err)
        })
        .await
    }

    async fn get_print_shop(&self, merchant_id: i64, id: i64) -> StoreResult<PrintShop> {
        self.read(move |conn| {
            conn.query_row(
                &format!("SELECT {COLUMNS} FROM print_shops WHERE merchant_id = ?1 AND id = ?2"),
                [merchant_id, id],
                shop_from_row,
            )
            .map_err(map_err)
        })
        .await
    }

    async fn delete_print_shop(
        &self,
        merchant_id: i64,
        id: i64,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let audit = audit.clone();
        self.write(move |conn| {
            let n = conn
                .execute(
                    "DELETE FROM print_shops WHERE merchant_id = ?1 AND id = ?2",
                    [merchant_id, id],
                )
                .map_err(map_err)?;
            expect_one(n)?;
            insert_audit(conn, &audit, 1).map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn batches_with_copies(&self, merchant_id: i64, limit: i64) -> StoreResult<Vec<Batch>> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT {BATCH_COLUMNS} FROM batches WHERE merchant_id = ?1 AND n_copies > 0 \
                     ORDER BY id DESC LIMIT ?2"
                ))
                .map_err(map_err)?;
            let rows = stmt
                .query_map([merchant_id, limit], batch_from_row)
                .map_err(map_err)?;
            rows.collect::<Result<_, _>>().map_err(map_err)
        })
        .await
    }
}
