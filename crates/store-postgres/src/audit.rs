//! The audit log.

use crate::sql::{filtered_page, insert_audit, Params};
use crate::PgStore;
use kaquan_core::audit::Actor;
use kaquan_core::audit::AuditEntry;
use kaquan_core::audit::AuditFilter;
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

fn audit_filter_sql(merchant_id: i64, filter: &AuditFilter, params: &mut Params) -> String {
    params.push(Box::new(merchant_id));
    let mut sql = String::from("merchant_id = $1");
    if let Some(actor) = &filter.actor {
        params.push(Box::new(actor.clone()));
        sql.push_str(&format!(" AND actor = ${}", params.len()));
    }
    if !filter.actions.is_empty() {
        params.push(Box::new(filter.actions.clone()));
        sql.push_str(&format!(" AND action = ANY(${})", params.len()));
    }
    if let Some(text) = &filter.text {
        params.push(Box::new(text.clone()));
        let n = params.len();
        sql.push_str(&format!(
            " AND (strpos(target, ${n}) > 0 OR strpos(detail, ${n}) > 0)"
        ));
    }
    if let Some(from) = filter.created_from {
        params.push(Box::new(from));
        sql.push_str(&format!(" AND created_at >= ${}", params.len()));
    }
    if let Some(until) = filter.created_until {
        params.push(Box::new(until));
        sql.push_str(&format!(" AND created_at <= ${}", params.len()));
    }
    sql
}

#[async_trait::async_trait]
impl kaquan_core::audit::AuditStore for PgStore {
    async fn append_audit(&self, entry: &AuditEntry) -> StoreResult<()> {
        let client = self.client().await?;
        insert_audit(&client, entry, entry.n_affected)
            .await
            .map(|_| ())
    }

    async fn search_audit(
        &self,
        merchant_id: i64,
        filter: &AuditFilter,
        page: Page,
    ) -> StoreResult<(Vec<AuditRecord>, i64)> {
        let mut params: Params = Vec::new();
        let condition = audit_filter_sql(merchant_id, filter, &mut params);
        let what = ("audit_log", AUDIT_COLUMNS, "id DESC");
        let (rows, total) =
            filtered_page(&self.client().await?, what, &condition, params, page).await?;
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
