//! The audit log.

use crate::sql::insert_audit;
use crate::PgStore;
use kaquan_core::audit::Actor;
use kaquan_core::audit::AuditEntry;
use kaquan_core::audit::AuditRecord;
use kaquan_core::store::Page;
use kaquan_core::StoreResult;
use tokio_postgres::Row;

pub(crate) const AUDIT_COLUMNS: &str =
    "id, merchant_id, actor_staff_id, actor, action, target, detail, n_affected, created_at";

pub(crate) fn audit_from_row(row: &Row) -> AuditRecord {
    AuditRecord {
        id: row.get(0),
        entry: AuditEntry {
            merchant_id: row.get(1),
            actor: Actor {
                staff_id: row.get(2),
                label: row.get(3),
            },
            action: row.get(4),
            target: row.get(5),
            detail: row.get(6),
            n_affected: row.get(7),
            created_at: row.get(8),
        },
    }
}

#[async_trait::async_trait]
impl kaquan_core::audit::AuditStore for PgStore {
    async fn append_audit(&self, entry: &AuditEntry) -> StoreResult<()> {
        let client = self.client().await?;
        insert_audit(&client, entry, entry.n_affected)
            .await
            .map(|_| ())
    }

    async fn list_audit(
        &self,
        merchant_id: i64,
        page: Page,
    ) -> StoreResult<(Vec<AuditRecord>, i64)> {
        let (rows, total) = self
            .merchant_page("audit_log", AUDIT_COLUMNS, merchant_id, page)
            .await?;
        Ok((rows.iter().map(audit_from_row).collect(), total))
    }

    async fn list_deleted_numbers(
        &self,
        merchant_id: i64,
        audit_id: i64,
    ) -> StoreResult<Vec<String>> {
        self.query_strings("SELECT number FROM deleted_cards WHERE audit_id = $1 AND merchant_id = $2 ORDER BY serial", &[&audit_id, &merchant_id]).await
    }
}
