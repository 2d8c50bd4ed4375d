//! 支付后赠会员卡 on PostgreSQL: rules (a 商户号 checked against the rules
//! that are not 已失效 under a per-merchant transaction lock, so racing
//! rules on any node cannot both take it) and the payments they answered,
//! one per payment id, with the claim message's event.

use crate::events::insert_event;
use crate::sql::{all, exec, expect_one, filtered_page, insert_audit, map_err, one, opt, parse_or};
use crate::PgStore;
use deadpool_postgres::GenericClient;
use kaquan_core::audit::{Actor, AuditEntry};
use kaquan_core::event::NewEvent;
use kaquan_core::member::pay_gift::{
    holder, GiftOutcome, GiftSend, PayGiftFields, PayGiftRule, PaymentNotice, RuleRefusal,
};
use kaquan_core::member::ProgramState;
use kaquan_core::store::Page;
use kaquan_core::{StoreError, StoreResult};
use tokio_postgres::Row;

const RULE_COLUMNS: &str =
    "r.id, r.merchant_id, r.program_id, r.mch_ids, r.least_cost_fen, r.max_cost_fen, \
    r.begin_at, r.end_at, r.created_by, r.created_at, r.deleted_at, p.state";

fn rule_from_row(r: &Row) -> StoreResult<(PayGiftRule, ProgramState)> {
    let mch_ids: String = r.get(3);
    Ok((
        PayGiftRule {
            id: r.get(0),
            merchant_id: r.get(1),
            fields: PayGiftFields {
                program_id: r.get(2),
                mch_ids: mch_ids.split(',').map(str::to_owned).collect(),
                least_cost_fen: r.get(4),
                max_cost_fen: r.get(5),
                begin_at: r.get(6),
                end_at: r.get(7),
            },
            created_by: r.get(8),
            created_at: r.get(9),
            deleted_at: r.get(10),
        },
        parse_or(ProgramState::parse(r.get(11)), "program state")?,
    ))
}

async fn rules(
    c: &impl GenericClient,
    merchant_id: i64,
) -> StoreResult<Vec<(PayGiftRule, ProgramState)>> {
    let sql = format!(
        "SELECT {RULE_COLUMNS} FROM pay_gift_rules r JOIN member_programs p ON p.id = r.program_id \
         WHERE r.merchant_id = $1 ORDER BY r.id DESC"
    );
    all(c, &sql, &[&merchant_id])
        .await?
        .iter()
        .map(rule_from_row)
        .collect()
}

const SEND_COLUMNS: &str =
    "id, merchant_id, payment_id, mch_id, amount_fen, paid_at, customer_ref, phone, \
    rule_id, program_id, outcome, created_at";

fn send_from_row(r: &Row) -> StoreResult<GiftSend> {
    Ok(GiftSend {
        id: r.get(0),
        merchant_id: r.get(1),
        notice: PaymentNotice {
            payment_id: r.get(2),
            mch_id: r.get(3),
            amount_fen: r.get(4),
            paid_at: r.get(5),
            customer_id: r.get(6),
            phone: r.get(7),
        },
        rule_id: r.get(8),
        program_id: r.get(9),
        outcome: parse_or(GiftOutcome::parse(r.get(10)), "gift outcome")?,
        created_at: r.get(11),
    })
}

async fn audit(
    c: &impl GenericClient,
    merchant_id: i64,
    rule_id: i64,
    action: &str,
    detail: String,
    actor: &Actor,
    now: i64,
) -> StoreResult<()> {
    let entry = AuditEntry {
        merchant_id,
        actor: actor.clone(),
        action: action.into(),
        target: format!("pay_gift_rule={rule_id}"),
        detail,
        n_affected: 1,
        created_at: now,
    };
    insert_audit(c, &entry, 1).await?;
    Ok(())
}

#[async_trait::async_trait]
impl kaquan_core::member::pay_gift::PayGiftStore for PgStore {
    async fn create_pay_gift_rule(
        &self,
        merchant_id: i64,
        f: &PayGiftFields,
        actor: &Actor,
        now: i64,
    ) -> StoreResult<Result<PayGiftRule, RuleRefusal>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        exec(
            &tx,
            "SELECT pg_advisory_xact_lock(hashtextextended('pay_gift_rules:' || ($1::bigint)::text, 0))",
            &[&merchant_id],
        )
        .await?;
        let program = opt(
            &tx,
            "SELECT id FROM member_programs WHERE id = $1 AND merchant_id = $2",
            &[&f.program_id, &merchant_id],
        )
        .await?;
        if program.is_none() {
            return Ok(Err(RuleRefusal::ProgramNotFound));
        }
        let existing = rules(&tx, merchant_id).await?;
        if let Some((rule, mch_id)) = holder(&existing, &f.mch_ids, None, now) {
            return Ok(Err(RuleRefusal::MchIdTaken {
                mch_id,
                rule_id: rule.id,
            }));
        }
        let id: i64 = one(
            &tx,
            "INSERT INTO pay_gift_rules (merchant_id, program_id, mch_ids, least_cost_fen, max_cost_fen, begin_at, \
             end_at, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
            &[
                &merchant_id,
                &f.program_id,
                &f.mch_ids.join(","),
                &f.least_cost_fen,
                &f.max_cost_fen,
                &f.begin_at,
                &f.end_at,
                &actor.label,
                &now,
            ],
        )
        .await?
        .get(0);
        let detail = format!(
            "program={} mch_ids={} {}",
            f.program_id,
            f.mch_ids.join(","),
            f.condition_zh()
        );
        audit(
            &tx,
            merchant_id,
            id,
            "create_pay_gift_rule",
            detail,
            actor,
            now,
        )
        .await?;
        let created = rules(&tx, merchant_id)
            .await?
            .into_iter()
            .find(|(r, _)| r.id == id)
            .map(|(r, _)| r)
            .ok_or(StoreError::NotFound)?;
        tx.commit().await.map_err(map_err)?;
        Ok(Ok(created))
    }

    async fn delete_pay_gift_rule(
        &self,
        merchant_id: i64,
        rule_id: i64,
        actor: &Actor,
        now: i64,
    ) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        expect_one(
            exec(
                &tx,
                "UPDATE pay_gift_rules SET deleted_at = $1 WHERE id = $2 AND merchant_id = $3 AND deleted_at IS NULL",
                &[&now, &rule_id, &merchant_id],
            )
            .await?,
        )?;
        audit(
            &tx,
            merchant_id,
            rule_id,
            "delete_pay_gift_rule",
            String::new(),
            actor,
            now,
        )
        .await?;
        tx.commit().await.map_err(map_err)
    }

    async fn list_pay_gift_rules(
        &self,
        merchant_id: i64,
    ) -> StoreResult<Vec<(PayGiftRule, ProgramState)>> {
        rules(&self.client().await?, merchant_id).await
    }

    async fn record_gift_send(
        &self,
        merchant_id: i64,
        send: &GiftSend,
        event: Option<&NewEvent>,
    ) -> StoreResult<(GiftSend, bool)> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let n = exec(
            &tx,
            "INSERT INTO pay_gift_sends (merchant_id, payment_id, mch_id, amount_fen, paid_at, customer_ref, phone, \
             rule_id, program_id, outcome, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
             ON CONFLICT (merchant_id, payment_id) DO NOTHING",
            &[
                &merchant_id,
                &send.notice.payment_id,
                &send.notice.mch_id,
                &send.notice.amount_fen,
                &send.notice.paid_at,
                &send.notice.customer_id,
                &send.notice.phone,
                &send.rule_id,
                &send.program_id,
                &send.outcome.code(),
                &send.created_at,
            ],
        )
        .await?;
        if n == 1 {
            if let Some(event) = event {
                insert_event(&tx, event).await?;
            }
        }
        let row = one(
            &tx,
            &format!("SELECT {SEND_COLUMNS} FROM pay_gift_sends WHERE merchant_id = $1 AND payment_id = $2"),
            &[&merchant_id, &send.notice.payment_id],
        )
        .await?;
        tx.commit().await.map_err(map_err)?;
        Ok((send_from_row(&row)?, n == 0))
    }

    async fn list_gift_sends(
        &self,
        merchant_id: i64,
        page: Page,
    ) -> StoreResult<(Vec<GiftSend>, i64)> {
        let (rows, total) = filtered_page(
            &self.client().await?,
            ("pay_gift_sends", SEND_COLUMNS, "id DESC"),
            "merchant_id = $1",
            vec![Box::new(merchant_id)],
            page,
        )
        .await?;
        let sends = rows.iter().map(send_from_row).collect::<StoreResult<_>>()?;
        Ok((sends, total))
    }
}
