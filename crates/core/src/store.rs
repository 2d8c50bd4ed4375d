//! The database port: `Store` is the union of one sub-trait per domain
//! (each declared beside its records and rules: `card::CardStore`,
//! `ledger::LedgerStore`, …), so a caller holding `Arc<dyn Store>` reaches
//! every method, and a new domain adds one sub-trait and one line here.
//! Stores own all SQL; nothing in core knows a query language.
//!
//! Architecture invariant: every method that changes a card is one guarded
//! statement (its WHERE clause carries the precondition from
//! [`crate::card::CardOp`]) committed in the same transaction as its audit
//! record, and returns the number of rows it changed.

use crate::StoreResult;

/// Largest page a list returns.
pub const PAGE_SIZE_MAX: i64 = 200;
pub const PAGE_SIZE_DEFAULT: i64 = 50;

/// A 1-based page of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub page: i64,
    pub page_size: i64,
}

impl Page {
    /// Clamps what a client asked for into the allowed range.
    pub fn new(page: Option<i64>, page_size: Option<i64>) -> Self {
        Self {
            page: page.unwrap_or(1).max(1),
            page_size: page_size
                .unwrap_or(PAGE_SIZE_DEFAULT)
                .clamp(1, PAGE_SIZE_MAX),
        }
    }
    pub fn offset(self) -> i64 {
        (self.page - 1).saturating_mul(self.page_size)
    }
}

impl Default for Page {
    fn default() -> Self {
        Self::new(None, None)
    }
}

/// How one outbound queue (webhooks, texts, ERP pushes) stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueBacklog {
    /// `webhooks`, `sms` or `erp`.
    pub queue: &'static str,
    pub pending: i64,
    /// When the oldest pending item was made.
    pub oldest_created_at: Option<i64>,
}

/// The outbound queues, each with its table (the same in both schemas):
/// what `outbox_backlog` reports on.
pub const OUTBOUND_QUEUES: [(&str, &str); 3] = [
    ("webhooks", "webhook_deliveries"),
    ("sms", "sms_messages"),
    ("erp", "erp_pushes"),
];

/// A figure of the database engine for `/metrics`: its name (after
/// `kaquan_`), what it means and its value now.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineGauge {
    pub name: &'static str,
    pub help: &'static str,
    pub value: f64,
}

/// Whether a schema at migration `applied` serves a binary that knows
/// `known` migrations: behind is not ready; ahead is (a newer node
/// migrated first, and migrations only expand while older nodes serve).
pub fn schema_readiness(applied: i64, known: i64) -> Result<(), String> {
    if applied < known {
        Err(format!(
            "the schema is at migration {applied} of {known}: run kaquan migrate"
        ))
    } else {
        Ok(())
    }
}

/// What belongs to the database as a whole rather than to one domain.
#[async_trait::async_trait]
pub trait MaintenanceStore: Send + Sync + 'static {
    /// `sqlite` or `postgres`, for logs and `kaquan verify`.
    fn backend(&self) -> &'static str;

    /// Checks every invariant the schema cannot; returns one line per violation.
    async fn check_invariants(&self) -> StoreResult<Vec<String>>;

    /// Forgets what is past keeping: nonces, idempotency keys after
    /// [`crate::ledger::IDEMPOTENCY_KEPT_SECONDS`], used login links,
    /// expired sessions and old failed attempts. Returns rows removed.
    async fn purge_expired(&self, now: i64) -> StoreResult<i64>;

    /// Each outbound queue's pending items and the oldest one's age.
    async fn outbox_backlog(&self) -> StoreResult<Vec<QueueBacklog>>;

    /// Whether the database answers and holds every migration this binary
    /// knows: the reason when not (`/readyz`).
    async fn readiness(&self) -> Result<(), String>;

    /// The engine's own figures (the SQLite writer's queue and groups, the
    /// PostgreSQL pool's use).
    fn engine_gauges(&self) -> Vec<EngineGauge>;
}

/// Declares `Store` as the union of the domains' sub-traits, and implements
/// it for every type that implements them all: a new domain is one line.
#[cfg(test)]
mod tests {
    #[test]
    fn a_schema_behind_the_binary_is_not_ready_and_one_ahead_is() {
        assert!(super::schema_readiness(33, 34)
            .unwrap_err()
            .contains("migration 33 of 34"));
        assert_eq!(super::schema_readiness(34, 34), Ok(()));
        assert_eq!(super::schema_readiness(35, 34), Ok(()));
    }
}

macro_rules! store_union {
    ($($domain:path),* $(,)?) => {
        /// Every domain's store: what a backend implements and callers hold.
        pub trait Store: $($domain +)* MaintenanceStore {}

        impl<T> Store for T where T: $($domain +)* MaintenanceStore {}
    };
}

store_union!(
    crate::merchant::MerchantStore,
    crate::approval::ApprovalStore,
    crate::print_shop::PrintShopStore,
    crate::keys::KeyStore,
    crate::staff::StaffStore,
    crate::distributor::DistributorStore,
    crate::batch::BatchStore,
    crate::card::CardStore,
    crate::goods::GoodsStore,
    crate::pickup::PickupSettingsStore,
    crate::pickup::order::PickupOrderStore,
    crate::attempts::AttemptStore,
    crate::audit::AuditStore,
    crate::audit::chain::AuditChainStore,
    crate::giftcard::GiftcardStore,
    crate::code::CodeStore,
    crate::mall::MallStore,
    crate::card_sale::CardSaleStore,
    crate::ledger::LedgerStore,
    crate::customer::CustomerStore,
    crate::dashboard::DashboardStore,
    crate::analytics::AnalyticsStore,
    crate::api_key::ApiKeyStore,
    crate::event::EventStore,
    crate::sms::SmsStore,
    crate::erp::ErpStore,
    crate::waybill::WaybillStore,
    crate::location::LocationStore,
    crate::coupon::usage::CouponStore,
    crate::credit::CreditStore,
    crate::ecard::EcardStore,
    crate::member::MemberStore,
    crate::member::operation::MemberOpStore,
    crate::member::pay_gift::PayGiftStore,
);
