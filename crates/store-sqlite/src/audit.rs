//! The audit log.

use crate::sql::filtered_page;
use crate::sql::insert_audit;
use crate::sql::map_err;
use crate::SqliteStore;
use kaquan_core::audit::Actor;
use kaquan_core::audit::AuditEntry;
use kaquan_core::audit::AuditFilter;
use kaquan_core::audit::AuditRecord;
use kaquan_core::store::Page;
use kaquan_core::StoreResult;
use rusqlite::types::Value;
use rusqlite::{params, Row};

pub(crate) const AUDIT_COLUMNS: &str =
    "id, merchant_id, actor_staff_id, actor, action, target, detail, n_affected, created_at";

pub(crate) fn audit_from_row(row: &Row) -> rusqlite::Result<AuditRecord> {
    Ok(AuditRecord {
        id: row.get(0)?,
        entry: AuditEntry {
            merchant_id: row.get(1)?,
            actor: Actor {
                staff_id: row.get(2)?,
                label: row.get(3)?,
            },
            action: row.get(4)?,
            target: row.get(5)?,
            detail: row.get(6)?,
            n_affected: row.get(7)?,
            created_at: row.get(8)?,
        },
    })
}

fn audit_filter_sql(merchant_id: i64, filter: &AuditFilter) -> (String, Vec<Value>) {
    let mut sql = String::from("merchant_id = ?");
    let mut values = vec![Value::Integer(merchant_id)];
    if let Some(actor) = &filter.actor {
        sql.push_str(" AND actor = ?");
        values.push(Value::Text(actor.clone()));
    }
    if !filter.actions.is_empty() {
        let marks = vec!["?"; filter.actions.len()].join(", ");
        sql.push_str(&format!(" AND action IN ({marks})"));
        values.extend(filter.actions.iter().cloned().map(Value::Text));
    }
    if let Some(text) = &filter.text {
        sql.push_str(" AND (instr(target, ?) > 0 OR instr(detail, ?) > 0)");
        values.push(Value::Text(text.clone()));
        values.push(Value::Text(text.clone()));
    }
    if let Some(from) = filter.created_from {
        sql.push_str(" AND created_at >= ?");
        values.push(Value::Integer(from));
    }
    if let Some(until) = filter.created_until {
        sql.push_str(" AND created_at <= ?");
        values.push(Value::Integer(until));
    }
    (sql, values)
}

#[async_trait::async_trait]
impl kaquan_core::audit::AuditStore for SqliteStore {
    async fn append_audit(&self, entry: &AuditEntry) -> StoreResult<()> {
        let entry = entry.clone();
        self.write(move |conn| {
            insert_audit(conn, &entry, entry.n_affected).map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn search_audit(
        &self,
        merchant_id: i64,
        filter: &AuditFilter,
        page: Page,
    ) -> StoreResult<(Vec<AuditRecord>, i64)> {
        let (condition, values) = audit_filter_sql(merchant_id, filter);
        self.read(move |conn| {
            filtered_page(
                conn,
                ("audit_log", AUDIT_COLUMNS, "id DESC"),
                &condition,
                values,
                page,
                audit_from_row,
            )
        })
        .await
    }

    async fn list_deleted_numbers(
        &self,
        merchant_id: i64,
        audit_id: i64,
    ) -> StoreResult<Vec<String>> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare("SELECT number FROM deleted_cards WHERE audit_id = ?1 AND merchant_id = ?2 ORDER BY serial")
                .map_err(map_err)?;
            let rows = stmt.query_map(params![audit_id, merchant_id], |r| r.get(0)).map_err(map_err)?;
            rows.collect::<Result<_, _>>().map_err(map_err)
        })
        .await
    }
}
