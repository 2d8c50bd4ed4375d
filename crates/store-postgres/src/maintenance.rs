//! What belongs to the database as a whole: the invariant checks `kaquan
//! verify` runs and purging what is past keeping.

use crate::engine::ATTEMPT_FAILURES_KEPT_SECONDS;
use crate::sql::{exec, one};
use crate::PgStore;
use kaquan_core::signing::NONCE_KEPT_SECONDS;
use kaquan_core::store::{EngineGauge, QueueBacklog, OUTBOUND_QUEUES};
use kaquan_core::StoreResult;

/// Each query counts the rows that break one invariant.
pub(crate) const INVARIANT_QUERIES: &[(&str, &str)] = &[
    (
        "live orders belong to a card that is not used",
        "SELECT count(*) FROM orders o JOIN cards c ON c.id = o.card_id WHERE o.status <> 'cancelled' AND c.state <> 'used'",
    ),
    (
        "rows sealed under a key version their merchant never had",
        "SELECT count(*) FROM (\
         SELECT merchant_id, key_version FROM cards UNION ALL SELECT merchant_id, key_version FROM codes \
         UNION ALL SELECT merchant_id, key_version FROM coupons UNION ALL SELECT merchant_id, key_version FROM api_keys \
         UNION ALL SELECT merchant_id, key_version FROM webhook_endpoints \
         UNION ALL SELECT merchant_id, previous_key_version FROM webhook_endpoints WHERE previous_key_version IS NOT NULL \
         UNION ALL SELECT merchant_id, key_version FROM sms_settings UNION ALL SELECT merchant_id, key_version FROM erp_settings \
         UNION ALL SELECT merchant_id, key_version FROM waybill_settings UNION ALL SELECT merchant_id, key_version FROM ecard_stock \
         UNION ALL SELECT merchant_id, key_version FROM ecard_deliveries) AS versions \
         JOIN merchants m ON m.id = versions.merchant_id WHERE versions.key_version < 1 OR versions.key_version > m.key_version",
    ),
    (
        "batches whose count of sealed password copies is not their cards'",
        "SELECT count(*) FROM batches b LEFT JOIN (SELECT batch_id, count(*) AS n FROM cards \
         WHERE secret_sealed IS NOT NULL GROUP BY batch_id) c ON c.batch_id = b.id \
         WHERE b.n_copies <> coalesce(c.n, 0)",
    ),
    (
        "cards belong to a batch that is not ready",
        "SELECT count(*) FROM cards c JOIN batches b ON b.id = c.batch_id WHERE b.state <> 'ready'",
    ),
    (
        "cards belong to another merchant's batch",
        "SELECT count(*) FROM cards c JOIN batches b ON b.id = c.batch_id WHERE b.merchant_id <> c.merchant_id",
    ),
    (
        "cards have a serial outside their batch's reserved range",
        "SELECT count(*) FROM cards c JOIN batches b ON b.id = c.batch_id \
         WHERE c.serial < b.serial_first OR c.serial >= b.serial_first + b.quantity",
    ),
    (
        "active or used cards have no activation time",
        "SELECT count(*) FROM cards WHERE state IN ('active', 'used') AND activated_at IS NULL AND used_at IS NULL",
    ),
    ("used cards have no use time", "SELECT count(*) FROM cards WHERE state = 'used' AND used_at IS NULL"),
    ("voided cards have no void time", "SELECT count(*) FROM cards WHERE state = 'voided' AND voided_at IS NULL"),
    (
        "ready batches hold a different number of cards than their quantity (deleted cards counted)",
        "SELECT count(*) FROM batches b WHERE b.state = 'ready' AND b.quantity <> \
         (SELECT count(*) FROM cards c WHERE c.batch_id = b.id) + (SELECT count(*) FROM deleted_cards d WHERE d.batch_id = b.id)",
    ),
    (
        "merchants would hand out a serial already used",
        "SELECT count(*) FROM merchants m WHERE m.next_serial <= (SELECT COALESCE(MAX(serial), 0) FROM cards c WHERE c.merchant_id = m.id)",
    ),
    (
        "coupon verifications whose merchant, program or location is not their coupon's",
        "SELECT count(*) FROM coupon_verifications v JOIN coupons c ON c.id = v.coupon_id \
         WHERE v.merchant_id <> c.merchant_id OR v.program_id <> c.program_id OR (v.location_id IS NOT NULL \
         AND NOT EXISTS (SELECT 1 FROM locations l WHERE l.id = v.location_id AND l.merchant_id = v.merchant_id))",
    ),
    (
        "sessions belong to another merchant than their staff",
        "SELECT count(*) FROM sessions s JOIN staff t ON t.id = s.staff_id WHERE t.merchant_id <> s.merchant_id",
    ),
];

/// Ledger invariants `verify` checks; each query counts violating rows.
pub(crate) const LEDGER_INVARIANT_QUERIES: &[(&str, &str)] = &[
    (
        "ledger transactions whose postings do not sum to zero per asset",
        "SELECT count(*) FROM (SELECT transaction_id FROM ledger_postings GROUP BY transaction_id, asset HAVING SUM(amount) <> 0) AS x",
    ),
    (
        "ledger transactions without exactly two postings",
        "SELECT count(*) FROM ledger_transactions t WHERE (SELECT count(*) FROM ledger_postings p WHERE p.transaction_id = t.id) <> 2",
    ),
    (
        "ledger transactions whose amount differs from their customer's posting",
        "SELECT count(*) FROM ledger_transactions t WHERE t.amount_fen <> (SELECT COALESCE(SUM(p.amount), 0) FROM ledger_postings p \
         JOIN ledger_accounts a ON a.id = p.account_id WHERE p.transaction_id = t.id AND a.customer_id = t.customer_id)",
    ),
    (
        "customer balances differ from the sum of their postings",
        "SELECT count(*) FROM ledger_accounts a LEFT JOIN \
         (SELECT account_id, SUM(amount) AS total FROM ledger_postings GROUP BY account_id) AS p ON p.account_id = a.id \
         WHERE a.kind = 'customer' AND a.balance <> COALESCE(p.total, 0)",
    ),
    ("customer balances are below zero", "SELECT count(*) FROM ledger_accounts WHERE balance < 0"),
    (
        "statement lines whose balance after differs from the running sum",
        "SELECT count(*) FROM ledger_transactions t WHERE t.balance_after_fen <> \
         (SELECT SUM(t2.amount_fen) FROM ledger_transactions t2 WHERE t2.customer_id = t.customer_id AND t2.asset = t.asset AND t2.id <= t.id)",
    ),
    (
        "spends whose refunds do not add up to what was refunded, or exceed the spend",
        "SELECT count(*) FROM spend_refunds s LEFT JOIN \
         (SELECT merchant_id, reference, SUM(amount_fen) AS total FROM ledger_transactions WHERE kind = 'refund' \
         GROUP BY merchant_id, reference) AS r ON r.merchant_id = s.merchant_id AND r.reference = 'spend:' || s.transaction_id \
         WHERE s.refunded_fen > s.amount_fen OR s.refunded_fen <> COALESCE(r.total, 0)",
    ),
    (
        "used codes without their redeem transaction",
        "SELECT count(*) FROM codes c LEFT JOIN \
         (SELECT merchant_id, reference FROM ledger_transactions WHERE kind = 'redeem') AS t \
         ON t.merchant_id = c.merchant_id AND t.reference = 'code:' || c.id \
         WHERE c.state = 'used' AND t.reference IS NULL",
    ),
    (
        "redeem transactions whose amount differs from their code's face value",
        "SELECT count(*) FROM ledger_transactions t JOIN codes c ON t.reference = 'code:' || c.id AND c.merchant_id = t.merchant_id \
         WHERE t.kind = 'redeem' AND t.amount_fen <> c.face_value_fen",
    ),
    (
        "ledger postings whose account does not exist",
        "SELECT count(*) FROM ledger_postings p WHERE NOT EXISTS (SELECT 1 FROM ledger_accounts a WHERE a.id = p.account_id)",
    ),
    (
        "ledger postings on an account of another merchant than their transaction's",
        "SELECT count(*) FROM ledger_postings p JOIN ledger_transactions t ON t.id = p.transaction_id \
         JOIN ledger_accounts a ON a.id = p.account_id WHERE a.merchant_id <> t.merchant_id",
    ),
    (
        "ledger transactions or audit records of no merchant",
        "SELECT (SELECT count(*) FROM ledger_transactions t WHERE NOT EXISTS (SELECT 1 FROM merchants m WHERE m.id = t.merchant_id)) \
         + (SELECT count(*) FROM audit_log a WHERE NOT EXISTS (SELECT 1 FROM merchants m WHERE m.id = a.merchant_id))",
    ),
];

/// The credit ledger's invariants (券点): the same rules as the customer
/// ledger's, per merchant and holder, and shared programs' stock.
/// 电子卡密's invariants: a secret is delivered exactly when one delivery
/// holds it, a delivered line has as many cards as it was paid for, and no
/// card is both used and refunded.
pub(crate) const ECARD_INVARIANT_QUERIES: &[(&str, &str)] = &[
    (
        "e-card secrets marked delivered without exactly one live delivery, or live in a delivery while not delivered",
        "SELECT count(*) FROM ecard_stock s WHERE (s.state = 'delivered') <> \
         ((SELECT count(*) FROM ecard_deliveries d WHERE d.stock_id = s.id AND d.refunded_at IS NULL) = 1)",
    ),
    (
        "delivered e-card order lines whose cards are not the quantity paid for",
        "SELECT count(*) FROM ecard_order_lines l WHERE l.delivered_at IS NOT NULL \
         AND (SELECT count(*) FROM ecard_deliveries d WHERE d.line_ref = l.id) <> l.quantity",
    ),
    (
        "e-cards both verified and refunded",
        "SELECT count(*) FROM ecard_deliveries WHERE verified_at IS NOT NULL AND refunded_at IS NOT NULL",
    ),
];

pub(crate) const CREDIT_INVARIANT_QUERIES: &[(&str, &str)] = &[
    (
        "credit transactions without exactly two postings summing to zero",
        "SELECT count(*) FROM credit_transactions t WHERE (SELECT count(*) FROM credit_postings p WHERE p.transaction_id = t.id) <> 2 \
         OR (SELECT SUM(p.amount) FROM credit_postings p WHERE p.transaction_id = t.id) <> 0",
    ),
    (
        "credit transactions whose amount differs from their holder's posting",
        "SELECT count(*) FROM credit_transactions t WHERE t.amount_tenths <> (SELECT COALESCE(SUM(p.amount), 0) \
         FROM credit_postings p JOIN credit_accounts a ON a.id = p.account_id WHERE p.transaction_id = t.id AND a.kind = t.holder)",
    ),
    (
        "credit balances that differ from the sum of their postings or are below zero",
        "SELECT count(*) FROM credit_accounts a LEFT JOIN \
         (SELECT account_id, SUM(amount) AS total FROM credit_postings GROUP BY account_id) AS p ON p.account_id = a.id \
         WHERE a.kind IN ('free', 'paid') AND (a.balance <> COALESCE(p.total, 0) OR a.balance < 0)",
    ),
    (
        "credit statement lines whose balance after differs from the running sum",
        "SELECT count(*) FROM (SELECT balance_after_tenths, \
         SUM(amount_tenths) OVER (PARTITION BY merchant_id, holder ORDER BY id) AS running FROM credit_transactions) AS s \
         WHERE balance_after_tenths <> running",
    ),
    (
        "merchants whose credits in stock differ from the stock they bought less what came back",
        "SELECT count(*) FROM credit_accounts a WHERE a.kind = 'stock' AND \
         COALESCE((SELECT SUM(p.amount) FROM credit_postings p WHERE p.account_id = a.id), 0) <> \
         COALESCE((SELECT SUM(s.free_tenths + s.paid_tenths) FROM coupon_stock_purchases s WHERE s.merchant_id = a.merchant_id), 0) \
         - COALESCE((SELECT SUM(t.amount_tenths) FROM credit_transactions t WHERE t.merchant_id = a.merchant_id AND t.kind = 'return_stock'), 0)",
    ),
    (
        "confirmed credit purchases without exactly their paid credits",
        "SELECT count(*) FROM credit_purchases c WHERE (c.state = 'confirmed') <> EXISTS \
         (SELECT 1 FROM credit_transactions t WHERE t.purchase_id = c.id AND t.kind = 'purchase' AND t.amount_tenths = c.credits * 10)",
    ),
    (
        "shared coupon programs whose stock is not what credits bought",
        "SELECT count(*) FROM coupon_programs p JOIN coupon_stock s0 ON s0.program_id = p.id WHERE p.shared AND p.stock_returned_at IS NULL AND s0.quantity <> \
         COALESCE((SELECT SUM(s.units) FROM coupon_stock_purchases s WHERE s.program_id = p.id), 0)",
    ),
];

#[async_trait::async_trait]
impl kaquan_core::store::MaintenanceStore for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn check_invariants(&self) -> StoreResult<Vec<String>> {
        let client = self.client().await?;
        let mut violations = Vec::new();
        for (description, sql) in INVARIANT_QUERIES
            .iter()
            .chain(LEDGER_INVARIANT_QUERIES)
            .chain(CREDIT_INVARIANT_QUERIES)
            .chain(ECARD_INVARIANT_QUERIES)
        {
            let n: i64 = one(&client, sql, &[]).await?.get(0);
            if n != 0 {
                violations.push(format!("{n} {description}"));
            }
        }
        Ok(violations)
    }

    async fn purge_expired(&self, now: i64) -> StoreResult<i64> {
        let client = self.client().await?;
        let mut n = 0;
        for (sql, before) in [
            (
                "DELETE FROM api_nonces WHERE signed_at < $1",
                now - NONCE_KEPT_SECONDS,
            ),
            (
                "DELETE FROM idempotency_keys WHERE created_at < $1",
                now - kaquan_core::ledger::IDEMPOTENCY_KEPT_SECONDS,
            ),
            ("DELETE FROM login_links WHERE expires_at < $1", now),
            ("DELETE FROM customer_sessions WHERE expires_at < $1", now),
            (
                "DELETE FROM attempt_failures WHERE at < $1",
                now - ATTEMPT_FAILURES_KEPT_SECONDS,
            ),
        ] {
            n += exec(&client, sql, &[&before]).await? as i64;
        }
        Ok(n)
    }

    async fn outbox_backlog(&self) -> StoreResult<Vec<QueueBacklog>> {
        let client = self.client().await?;
        let mut queues = Vec::new();
        for (queue, table) in OUTBOUND_QUEUES {
            let row = one(
                &client,
                &format!("SELECT COUNT(*), MIN(created_at) FROM {table} WHERE state = 'pending'"),
                &[],
            )
            .await?;
            queues.push(QueueBacklog {
                queue,
                pending: row.get(0),
                oldest_created_at: row.get(1),
            });
        }
        Ok(queues)
    }

    async fn readiness(&self) -> Result<(), String> {
        let client = self.client().await.map_err(|e| e.to_string())?;
        let row = one(
            &client,
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            &[],
        )
        .await
        .map_err(|e| e.to_string())?;
        let applied: i64 = row.get(0);
        kaquan_core::store::schema_readiness(applied, crate::engine::MIGRATIONS.len() as i64)
    }

    fn engine_gauges(&self) -> Vec<EngineGauge> {
        let status = self.pool.status();
        vec![
            EngineGauge {
                name: "postgres_pool_connections",
                help: "Connections the pool holds.",
                value: status.size as f64,
            },
            EngineGauge {
                name: "postgres_pool_in_use",
                help: "Connections lent out to requests now.",
                value: status.size.saturating_sub(status.available) as f64,
            },
            EngineGauge {
                name: "postgres_pool_waiting",
                help: "Requests waiting for a connection.",
                value: status.waiting as f64,
            },
            EngineGauge {
                name: "postgres_pool_max",
                help: "The most connections the pool opens.",
                value: status.max_size as f64,
            },
        ]
    }
}
