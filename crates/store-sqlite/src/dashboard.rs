//! 概况's reads: the day tallies the `events_tally` trigger keeps
//! (migration 31), what customers' balances add up to, and deliveries given
//! up on. All read from the readers; nothing here writes.

use crate::sql::{decode, map_err};
use crate::SqliteStore;
use kaquan_core::dashboard::{Attention, DailyTally, DashboardStore, Liabilities};
use kaquan_core::event::EventType;
use kaquan_core::StoreResult;
use rusqlite::params;

#[async_trait::async_trait]
impl DashboardStore for SqliteStore {
    async fn daily_tallies(
        &self,
        merchant_id: i64,
        first_day: i64,
        last_day: i64,
    ) -> StoreResult<Vec<DailyTally>> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT day, event_type, location_id, n, amount_fen FROM daily_tallies \
                     WHERE merchant_id = ?1 AND day BETWEEN ?2 AND ?3",
                )
                .map_err(map_err)?;
            let rows = stmt
                .query_map(params![merchant_id, first_day, last_day], |row| {
                    Ok(DailyTally {
                        day: row.get(0)?,
                        event_type: decode(
                            EventType::parse(&row.get::<_, String>(1)?),
                            1,
                            "event type",
                        )?,
                        location_id: Some(row.get::<_, i64>(2)?).filter(|l| *l != 0),
                        n: row.get(3)?,
                        amount_fen: row.get(4)?,
                    })
                })
                .map_err(map_err)?;
            rows.collect::<rusqlite::Result<_>>().map_err(map_err)
        })
        .await
    }

    async fn liabilities(&self, merchant_id: i64) -> StoreResult<Liabilities> {
        self.read(move |conn| {
            conn.prepare_cached(
                "SELECT COALESCE(SUM(balance) FILTER (WHERE asset = 'fen'), 0), \
                 COALESCE(SUM(balance) FILTER (WHERE asset = 'points'), 0) \
                 FROM ledger_accounts WHERE merchant_id = ?1 AND customer_id IS NOT NULL",
            )
            .and_then(|mut s| {
                s.query_row([merchant_id], |row| {
                    Ok(Liabilities {
                        balance_fen: row.get(0)?,
                        points: row.get(1)?,
                    })
                })
            })
            .map_err(map_err)
        })
        .await
    }

    async fn needing_attention(&self, merchant_id: i64) -> StoreResult<Attention> {
        self.read(move |conn| {
            conn.prepare_cached(
                "SELECT (SELECT COUNT(*) FROM webhook_deliveries WHERE merchant_id = ?1 AND state = 'failed'), \
                 (SELECT COUNT(*) FROM sms_messages WHERE merchant_id = ?1 AND state = 'failed')",
            )
            .and_then(|mut s| {
                s.query_row([merchant_id], |row| {
                    Ok(Attention {
                        failed_webhooks: row.get(0)?,
                        failed_sms: row.get(1)?,
                    })
                })
            })
            .map_err(map_err)
        })
        .await
    }
}
