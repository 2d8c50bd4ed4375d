//! Merchants (店铺) and their built-in roles.

use crate::sql::map_err;
use crate::SqliteStore;
use kaquan_core::auth::builtin_roles;
use kaquan_core::auth::Permission;
use kaquan_core::merchant::Merchant;
use kaquan_core::StoreResult;
use rusqlite::{params, Row};

pub(crate) const MERCHANT_COLUMNS: &str = "id, name, key_version, created_at, prepaid_policy";

pub(crate) fn merchant_from_row(row: &Row) -> rusqlite::Result<Merchant> {
    Ok(Merchant {
        id: row.get(0)?,
        name: row.get(1)?,
        key_version: row.get(2)?,
        created_at: row.get(3)?,
        prepaid_policy: row.get(4)?,
    })
}

#[async_trait::async_trait]
impl kaquan_core::merchant::MerchantStore for SqliteStore {
    async fn create_merchant(&self, name: &str, now: i64) -> StoreResult<Merchant> {
        let name = name.to_owned();
        self.write(move |conn| {
            let merchant = conn
                .query_row(
                    &format!("INSERT INTO merchants (name, created_at) VALUES (?1, ?2) RETURNING {MERCHANT_COLUMNS}"),
                    params![name, now],
                    merchant_from_row,
                )
                .map_err(map_err)?;
            for (role_name, label, permissions) in builtin_roles() {
                conn.execute(
                    "INSERT INTO roles (merchant_id, name, label, permissions) VALUES (?1, ?2, ?3, ?4)",
                    params![merchant.id, role_name, label, Permission::encode_set(&permissions)],
                )
                .map_err(map_err)?;
            }
            for (kind, asset) in kaquan_core::ledger::AccountKind::MERCHANT_SIDE {
                conn.execute(
                    "INSERT INTO ledger_accounts (merchant_id, kind, asset) VALUES (?1, ?2, ?3)",
                    params![merchant.id, kind.code(), asset.code()],
                )
                .map_err(map_err)?;
            }
            Ok(merchant)
        })
        .await
    }

    async fn list_merchants(&self) -> StoreResult<Vec<Merchant>> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT {MERCHANT_COLUMNS} FROM merchants ORDER BY id"
                ))
                .map_err(map_err)?;
            let rows = stmt.query_map([], merchant_from_row).map_err(map_err)?;
            rows.collect::<Result<_, _>>().map_err(map_err)
        })
        .await
    }

    async fn get_merchant(&self, merchant_id: i64) -> StoreResult<Merchant> {
        self.read(move |conn| {
            crate::sql::cached_row(
                conn,
                &format!("SELECT {MERCHANT_COLUMNS} FROM merchants WHERE id = ?1"),
                [merchant_id],
                merchant_from_row,
            )
            .map_err(map_err)
        })
        .await
    }

    async fn set_prepaid_policy(
        &self,
        merchant_id: i64,
        on: bool,
        audit: &kaquan_core::audit::AuditEntry,
    ) -> StoreResult<()> {
        let audit = audit.clone();
        self.write(move |conn| {
            let n = conn
                .execute(
                    "UPDATE merchants SET prepaid_policy = ?1 WHERE id = ?2",
                    params![on, merchant_id],
                )
                .map_err(map_err)?;
            crate::sql::expect_one(n)?;
            crate::sql::insert_audit(conn, &audit, 0).map_err(map_err)?;
            Ok(())
        })
        .await
    }
}
