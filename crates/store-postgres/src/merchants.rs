//! Merchants (店铺) and their built-in roles.

use crate::sql::map_err;
use crate::sql::{all, exec, one};
use crate::PgStore;
use deadpool_postgres::GenericClient;
use kaquan_core::auth::builtin_roles;
use kaquan_core::auth::Permission;
use kaquan_core::merchant::Merchant;
use kaquan_core::{StoreError, StoreResult};
use tokio_postgres::Row;

pub(crate) const MERCHANT_COLUMNS: &str = "id, name, key_version, created_at, prepaid_policy";

pub(crate) fn merchant_from_row(row: &Row) -> Merchant {
    Merchant {
        id: row.get(0),
        name: row.get(1),
        key_version: row.get(2),
        created_at: row.get(3),
        prepaid_policy: row.get(4),
    }
}

#[async_trait::async_trait]
impl kaquan_core::merchant::MerchantStore for PgStore {
    async fn create_merchant(&self, name: &str, now: i64) -> StoreResult<Merchant> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let row = one(&tx, &format!("INSERT INTO merchants (name, created_at) VALUES ($1, $2) RETURNING {MERCHANT_COLUMNS}"), &[&name, &now]).await?;
        let merchant = merchant_from_row(&row);
        for (role_name, label, permissions) in builtin_roles() {
            exec(
                &tx,
                "INSERT INTO roles (merchant_id, name, label, permissions) VALUES ($1, $2, $3, $4)",
                &[
                    &merchant.id,
                    &role_name,
                    &label,
                    &Permission::encode_set(&permissions),
                ],
            )
            .await?;
        }
        for (kind, asset) in kaquan_core::ledger::AccountKind::MERCHANT_SIDE {
            exec(
                &tx,
                "INSERT INTO ledger_accounts (merchant_id, kind, asset) VALUES ($1, $2, $3)",
                &[&merchant.id, &kind.code(), &asset.code()],
            )
            .await?;
        }
        tx.commit().await.map_err(map_err)?;
        Ok(merchant)
    }

    async fn list_merchants(&self) -> StoreResult<Vec<Merchant>> {
        let rows = all(
            &self.client().await?,
            &format!("SELECT {MERCHANT_COLUMNS} FROM merchants ORDER BY id"),
            &[],
        )
        .await?;
        Ok(rows.iter().map(merchant_from_row).collect())
    }

    async fn get_merchant(&self, merchant_id: i64) -> StoreResult<Merchant> {
        let rows = self
            .query_cached(
                &format!("SELECT {MERCHANT_COLUMNS} FROM merchants WHERE id = $1"),
                &[&merchant_id],
            )
            .await?;
        rows.first()
            .map(merchant_from_row)
            .ok_or(StoreError::NotFound)
    }

    async fn set_prepaid_policy(
        &self,
        merchant_id: i64,
        on: bool,
        audit: &kaquan_core::audit::AuditEntry,
    ) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let n = exec(
            &tx,
            "UPDATE merchants SET prepaid_policy = $1 WHERE id = $2",
            &[&on, &merchant_id],
        )
        .await?;
        crate::sql::expect_one(n)?;
        crate::sql::insert_audit(&tx, audit, 0).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(())
    }
}
