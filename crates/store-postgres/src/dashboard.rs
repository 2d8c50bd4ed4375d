//! 概况's reads: the day tallies the `events_tally` trigger keeps
//! (migration 30; each connection writes its own slot, summed here), what
//! customers' balances add up to, and deliveries given up on.

use crate::sql::{all, one, parse_or};
use crate::PgStore;
use kaquan_core::dashboard::{Attention, DailyTally, DashboardStore, Liabilities};
use kaquan_core::event::EventType;
use kaquan_core::StoreResult;

#[async_trait::async_trait]
impl DashboardStore for PgStore {
    async fn daily_tallies(
        &self,
        merchant_id: i64,
        first_day: i64,
        last_day: i64,
    ) -> StoreResult<Vec<DailyTally>> {
        let c = self.client().await?;
        let (first_day, last_day) = (day(first_day)?, day(last_day)?);
        all(
            &c,
            "SELECT day::bigint, event_type, location_id, SUM(n)::bigint, SUM(amount_fen)::bigint \
             FROM daily_tallies WHERE merchant_id = $1 AND day BETWEEN $2 AND $3 \
             GROUP BY day, event_type, location_id",
            &[&merchant_id, &first_day, &last_day],
        )
        .await?
        .iter()
        .map(|row| {
            Ok(DailyTally {
                day: row.get(0),
                event_type: parse_or(EventType::parse(row.get(1)), "event type")?,
                location_id: Some(row.get::<_, i64>(2)).filter(|l| *l != 0),
                n: row.get(3),
                amount_fen: row.get(4),
            })
        })
        .collect()
    }

    async fn liabilities(&self, merchant_id: i64) -> StoreResult<Liabilities> {
        let c = self.client().await?;
        let row = one(
            &c,
            "SELECT COALESCE(SUM(balance) FILTER (WHERE asset = 'fen'), 0)::bigint, \
             COALESCE(SUM(balance) FILTER (WHERE asset = 'points'), 0)::bigint \
             FROM ledger_accounts WHERE merchant_id = $1 AND customer_id IS NOT NULL",
            &[&merchant_id],
        )
        .await?;
        Ok(Liabilities {
            balance_fen: row.get(0),
            points: row.get(1),
        })
    }

    async fn needing_attention(&self, merchant_id: i64) -> StoreResult<Attention> {
        let c = self.client().await?;
        let row = one(
            &c,
            "SELECT (SELECT COUNT(*) FROM webhook_deliveries WHERE merchant_id = $1 AND state = 'failed'), \
             (SELECT COUNT(*) FROM sms_messages WHERE merchant_id = $1 AND state = 'failed')",
            &[&merchant_id],
        )
        .await?;
        Ok(Attention {
            failed_webhooks: row.get(0),
            failed_sms: row.get(1),
        })
    }
}

/// Day numbers are stored as `integer`; one outside its range is no day
/// any tally has.
fn day(day: i64) -> StoreResult<i32> {
    i32::try_from(day).map_err(|_| kaquan_core::StoreError::Invalid("day out of range".into()))
}
