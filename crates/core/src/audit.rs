//! The audit log (操作日志): who changed what, written in the same
//! transaction as the change.

use crate::store::Page;
use crate::StoreResult;

/// Who did something, for the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub staff_id: Option<i64>,
    /// Username, or `cli` for the command line.
    pub label: String,
}

impl Actor {
    pub fn cli() -> Self {
        Self {
            staff_id: None,
            label: "cli".into(),
        }
    }

    /// kaquan itself, for what its background work decides (disabling a
    /// webhook endpoint that keeps failing).
    pub fn system() -> Self {
        Self {
            staff_id: None,
            label: "system".into(),
        }
    }
}

/// One audit record. Stores write `n_affected` themselves when the entry
/// accompanies a bulk change.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub merchant_id: i64,
    pub actor: Actor,
    pub action: String,
    pub target: String,
    pub detail: String,
    pub n_affected: i64,
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub struct AuditRecord {
    pub id: i64,
    pub entry: AuditEntry,
}

/// The audit log in the database.
#[async_trait::async_trait]
pub trait AuditStore: Send + Sync + 'static {
    async fn append_audit(&self, entry: &AuditEntry) -> StoreResult<()>;
    async fn list_audit(
        &self,
        merchant_id: i64,
        page: Page,
    ) -> StoreResult<(Vec<AuditRecord>, i64)>;
    /// Numbers of deleted cards recorded under one audit record.
    async fn list_deleted_numbers(
        &self,
        merchant_id: i64,
        audit_id: i64,
    ) -> StoreResult<Vec<String>>;
}
