//! 数据分析's facts: one row per card activated, code issued or coupon
//! claimed in a period (each query gives instrument, issued, redeemed,
//! lapsed, value); card sales refunded; and the sums of member operations
//! per program and kind, with what members hold.

use crate::sql::all;
use crate::PgStore;
use kaquan_core::analytics::{
    AnalyticsStore, InstrumentKind, IssueFact, OperationTotals, ProgramHoldings, Refunded,
};
use kaquan_core::member::operation::OperationKind;
use kaquan_core::{StoreError, StoreResult};

const OPERATION_TOTALS: &str = "SELECT m.program_id, o.kind, COUNT(*)::bigint, \
     COALESCE(SUM(GREATEST(o.points_earned, 0)), 0)::bigint, \
     COALESCE(SUM(GREATEST(-o.points_earned, 0)), 0)::bigint, \
     COALESCE(SUM(o.points_used), 0)::bigint, COALESCE(SUM(o.balance_fen), 0)::bigint, \
     COALESCE(SUM(o.bonus_fen), 0)::bigint, COALESCE(SUM(o.amount_fen), 0)::bigint, \
     COALESCE(SUM(o.discount_fen), 0)::bigint \
     FROM member_operations o JOIN members m ON m.id = o.member_id \
     WHERE o.merchant_id = $1 AND o.created_at >= $2 AND o.created_at < $3 \
     GROUP BY m.program_id, o.kind";

const PROGRAM_HOLDINGS: &str = "SELECT m.program_id, COUNT(*)::bigint, \
     COALESCE(SUM(p.balance), 0)::bigint, COALESCE(SUM(f.balance), 0)::bigint FROM members m \
     LEFT JOIN ledger_accounts p ON p.merchant_id = m.merchant_id AND p.customer_id = m.customer_id AND p.asset = 'points' \
     LEFT JOIN ledger_accounts f ON f.merchant_id = m.merchant_id AND f.customer_id = m.customer_id AND f.asset = 'fen' \
     WHERE m.merchant_id = $1 GROUP BY m.program_id";

fn facts_sql(kind: InstrumentKind) -> &'static str {
    match kind {
        InstrumentKind::Batch => {
            "SELECT batch_id, activated_at, CASE WHEN state = 'used' THEN used_at END, \
             COALESCE(state = 'voided' OR (state = 'active' AND valid_until < $4), false), \
             COALESCE(face_value_fen, 0) \
             FROM cards WHERE merchant_id = $1 AND activated_at >= $2 AND activated_at < $3"
        }
        InstrumentKind::CodeTemplate => {
            "SELECT template_id, issued_at, CASE WHEN state = 'used' THEN redeemed_at END, \
             COALESCE(state = 'voided' OR (state = 'unused' AND valid_until < $4), false), face_value_fen \
             FROM codes WHERE merchant_id = $1 AND issued_at >= $2 AND issued_at < $3"
        }
        InstrumentKind::CouponProgram => {
            "SELECT program_id, claimed_at, verified_at, state = 'available' AND valid_until < $4, 0::bigint \
             FROM coupons WHERE merchant_id = $1 AND claimed_at >= $2 AND claimed_at < $3"
        }
    }
}

#[async_trait::async_trait]
impl AnalyticsStore for PgStore {
    async fn issue_facts(
        &self,
        merchant_id: i64,
        kind: InstrumentKind,
        from: i64,
        to: i64,
        now: i64,
    ) -> StoreResult<Vec<IssueFact>> {
        let c = self.client().await?;
        let rows = all(&c, facts_sql(kind), &[&merchant_id, &from, &to, &now]).await?;
        Ok(rows
            .iter()
            .map(|row| IssueFact {
                instrument_id: row.get(0),
                issued_at: row.get(1),
                redeemed_at: row.get(2),
                lapsed: row.get(3),
                value_fen: row.get(4),
            })
            .collect())
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
        let c = self.client().await?;
        let rows = all(
            &c,
            "SELECT batch_id, SUM(n_refunded)::bigint FROM card_sales \
             WHERE merchant_id = $1 AND refunded_at >= $2 AND refunded_at < $3 GROUP BY batch_id",
            &[&merchant_id, &from, &to],
        )
        .await?;
        Ok(rows
            .iter()
            .map(|row| Refunded {
                instrument_id: row.get(0),
                count: row.get(1),
            })
            .collect())
    }

    async fn member_operation_totals(
        &self,
        merchant_id: i64,
        from: i64,
        to: i64,
    ) -> StoreResult<Vec<OperationTotals>> {
        let c = self.client().await?;
        let rows = all(&c, OPERATION_TOTALS, &[&merchant_id, &from, &to]).await?;
        rows.iter()
            .map(|row| {
                let kind: String = row.get(1);
                Ok(OperationTotals {
                    program_id: row.get(0),
                    kind: OperationKind::parse(&kind).ok_or_else(|| {
                        StoreError::Backend(format!("unknown operation kind {kind}"))
                    })?,
                    count: row.get(2),
                    points_gained: row.get(3),
                    points_lost: row.get(4),
                    points_used: row.get(5),
                    balance_fen: row.get(6),
                    bonus_fen: row.get(7),
                    amount_fen: row.get(8),
                    discount_fen: row.get(9),
                })
            })
            .collect()
    }

    async fn program_holdings(&self, merchant_id: i64) -> StoreResult<Vec<ProgramHoldings>> {
        let c = self.client().await?;
        let rows = all(&c, PROGRAM_HOLDINGS, &[&merchant_id]).await?;
        Ok(rows
            .iter()
            .map(|row| ProgramHoldings {
                program_id: row.get(0),
                members: row.get(1),
                points: row.get(2),
                balance_fen: row.get(3),
            })
            .collect())
    }
}
