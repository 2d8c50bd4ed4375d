//! 数据分析's facts: one row per card activated, code issued or coupon
//! claimed in a period (each query gives instrument,
//! issued, redeemed, lapsed, value).

use crate::sql::map_err;
use crate::SqliteStore;
use kaquan_core::analytics::{AnalyticsStore, InstrumentKind, IssueFact};
use kaquan_core::StoreResult;
use rusqlite::params;

fn facts_sql(kind: InstrumentKind) -> &'static str {
    match kind {
        InstrumentKind::Batch => {
            "SELECT batch_id, activated_at, CASE WHEN state = 'used' THEN used_at END, \
             state = 'voided' OR (state = 'active' AND valid_until < ?4), COALESCE(face_value_fen, 0) \
             FROM cards WHERE merchant_id = ?1 AND activated_at >= ?2 AND activated_at < ?3"
        }
        InstrumentKind::CodeTemplate => {
            "SELECT template_id, issued_at, CASE WHEN state = 'used' THEN redeemed_at END, \
             state = 'voided' OR (state = 'unused' AND valid_until < ?4), face_value_fen \
             FROM codes WHERE merchant_id = ?1 AND issued_at >= ?2 AND issued_at < ?3"
        }
        InstrumentKind::CouponProgram => {
            "SELECT program_id, claimed_at, verified_at, state = 'available' AND valid_until < ?4, 0 \
             FROM coupons WHERE merchant_id = ?1 AND claimed_at >= ?2 AND claimed_at < ?3"
        }
    }
}

#[async_trait::async_trait]
impl AnalyticsStore for SqliteStore {
    async fn issue_facts(
        &self,
        merchant_id: i64,
        kind: InstrumentKind,
        from: i64,
        to: i64,
        now: i64,
    ) -> StoreResult<Vec<IssueFact>> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(facts_sql(kind)).map_err(map_err)?;
            let rows = stmt
                .query_map(params![merchant_id, from, to, now], |row| {
                    Ok(IssueFact {
                        instrument_id: row.get(0)?,
                        issued_at: row.get(1)?,
                        redeemed_at: row.get(2)?,
                        lapsed: row.get::<_, Option<bool>>(3)?.unwrap_or(false),
                        value_fen: row.get(4)?,
                    })
                })
                .map_err(map_err)?;
            rows.collect::<rusqlite::Result<_>>().map_err(map_err)
        })
        .await
    }
}
