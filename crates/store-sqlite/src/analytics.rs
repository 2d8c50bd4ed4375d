//! 数据分析's facts: one row per card activated, code issued or coupon
//! claimed in a period (each query gives instrument,
//! issued, redeemed, lapsed, value); card sales refunded; and the sums of
//! member operations per program and kind, with what members hold.

use crate::sql::{decode, map_err};
use crate::SqliteStore;
use kaquan_core::analytics::{
    AnalyticsStore, InstrumentKind, IssueFact, OperationTotals, ProgramHoldings, Refunded,
};
use kaquan_core::member::operation::OperationKind;
use kaquan_core::StoreResult;
use rusqlite::params;

const OPERATION_TOTALS: &str = "SELECT m.program_id, o.kind, COUNT(*), \
     COALESCE(SUM(CASE WHEN o.points_earned > 0 THEN o.points_earned ELSE 0 END), 0), \
     COALESCE(SUM(CASE WHEN o.points_earned < 0 THEN -o.points_earned ELSE 0 END), 0), \
     COALESCE(SUM(o.points_used), 0), COALESCE(SUM(o.balance_fen), 0), COALESCE(SUM(o.bonus_fen), 0), \
     COALESCE(SUM(o.amount_fen), 0), COALESCE(SUM(o.discount_fen), 0) \
     FROM member_operations o JOIN members m ON m.id = o.member_id \
     WHERE o.merchant_id = ?1 AND o.created_at >= ?2 AND o.created_at < ?3 \
     GROUP BY m.program_id, o.kind";

const PROGRAM_HOLDINGS: &str = "SELECT m.program_id, COUNT(*), \
     COALESCE(SUM(p.balance), 0), COALESCE(SUM(f.balance), 0) FROM members m \
     LEFT JOIN ledger_accounts p ON p.merchant_id = m.merchant_id AND p.customer_id = m.customer_id AND p.asset = 'points' \
     LEFT JOIN ledger_accounts f ON f.merchant_id = m.merchant_id AND f.customer_id = m.customer_id AND f.asset = 'fen' \
     WHERE m.merchant_id = ?1 GROUP BY m.program_id";

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

    async fn refunded_counts(
        &self,
        merchant_id: i64,
        kind: InstrumentKind,
        from: i64,
        to: i64,
    ) -> StoreResult<Vec<Refunded>> {
        if kind != InstrumentKind::Batch {
            return Ok(Vec::new());
        }
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT batch_id, SUM(n_refunded) FROM card_sales \
                     WHERE merchant_id = ?1 AND refunded_at >= ?2 AND refunded_at < ?3 GROUP BY batch_id",
                )
                .map_err(map_err)?;
            let rows = stmt
                .query_map(params![merchant_id, from, to], |row| {
                    Ok(Refunded {
                        instrument_id: row.get(0)?,
                        count: row.get(1)?,
                    })
                })
                .map_err(map_err)?;
            rows.collect::<rusqlite::Result<_>>().map_err(map_err)
        })
        .await
    }

    async fn member_operation_totals(
        &self,
        merchant_id: i64,
        from: i64,
        to: i64,
    ) -> StoreResult<Vec<OperationTotals>> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(OPERATION_TOTALS).map_err(map_err)?;
            let rows = stmt
                .query_map(params![merchant_id, from, to], |row| {
                    let kind: String = row.get(1)?;
                    Ok(OperationTotals {
                        program_id: row.get(0)?,
                        kind: decode(OperationKind::parse(&kind), 1, "operation kind")?,
                        count: row.get(2)?,
                        points_gained: row.get(3)?,
                        points_lost: row.get(4)?,
                        points_used: row.get(5)?,
                        balance_fen: row.get(6)?,
                        bonus_fen: row.get(7)?,
                        amount_fen: row.get(8)?,
                        discount_fen: row.get(9)?,
                    })
                })
                .map_err(map_err)?;
            rows.collect::<rusqlite::Result<_>>().map_err(map_err)
        })
        .await
    }

    async fn program_holdings(&self, merchant_id: i64) -> StoreResult<Vec<ProgramHoldings>> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(PROGRAM_HOLDINGS).map_err(map_err)?;
            let rows = stmt
                .query_map(params![merchant_id], |row| {
                    Ok(ProgramHoldings {
                        program_id: row.get(0)?,
                        members: row.get(1)?,
                        points: row.get(2)?,
                        balance_fen: row.get(3)?,
                    })
                })
                .map_err(map_err)?;
            rows.collect::<rusqlite::Result<_>>().map_err(map_err)
        })
        .await
    }
}
