//! 支付后赠会员卡 on SQLite: rules (a 商户号 checked against the rules that
//! are not 已失效 in the writer's transaction) and the payments they
//! answered, one per payment id, with the claim message's event.

use crate::events::insert_event;
use crate::sql::{decode, execute_one, insert_audit, map_err};
use crate::SqliteStore;
use kaquan_core::audit::{Actor, AuditEntry};
use kaquan_core::event::NewEvent;
use kaquan_core::member::pay_gift::{
    holder, GiftOutcome, GiftSend, PayGiftFields, PayGiftRule, PaymentNotice, RuleRefusal,
};
use kaquan_core::member::ProgramState;
use kaquan_core::store::Page;
use kaquan_core::{StoreError, StoreResult};
use rusqlite::types::Value;
use rusqlite::{params, Connection, OptionalExtension, Row};

const RULE_COLUMNS: &str =
    "r.id, r.merchant_id, r.program_id, r.mch_ids, r.least_cost_fen, r.max_cost_fen, \
    r.begin_at, r.end_at, r.created_by, r.created_at, r.deleted_at, p.state";

fn rule_from_row(r: &Row) -> rusqlite::Result<(PayGiftRule, ProgramState)> {
    let mch_ids: String = r.get(3)?;
    let state: String = r.get(11)?;
    Ok((
        PayGiftRule {
            id: r.get(0)?,
            merchant_id: r.get(1)?,
            fields: PayGiftFields {
                program_id: r.get(2)?,
                mch_ids: mch_ids.split(',').map(str::to_owned).collect(),
                least_cost_fen: r.get(4)?,
                max_cost_fen: r.get(5)?,
                begin_at: r.get(6)?,
                end_at: r.get(7)?,
            },
            created_by: r.get(8)?,
            created_at: r.get(9)?,
            deleted_at: r.get(10)?,
        },
        decode(ProgramState::parse(&state), 11, "program state")?,
    ))
}

fn rules(conn: &Connection, merchant_id: i64) -> StoreResult<Vec<(PayGiftRule, ProgramState)>> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {RULE_COLUMNS} FROM pay_gift_rules r JOIN member_programs p ON p.id = r.program_id \
             WHERE r.merchant_id = ?1 ORDER BY r.id DESC"
        ))
        .map_err(map_err)?;
    let rows = stmt
        .query_map([merchant_id], rule_from_row)
        .map_err(map_err)?;
    rows.collect::<Result<_, _>>().map_err(map_err)
}

const SEND_COLUMNS: &str =
    "id, merchant_id, payment_id, mch_id, amount_fen, paid_at, customer_ref, phone, \
    rule_id, program_id, outcome, created_at";

fn send_from_row(r: &Row) -> rusqlite::Result<GiftSend> {
    let outcome: String = r.get(10)?;
    Ok(GiftSend {
        id: r.get(0)?,
        merchant_id: r.get(1)?,
        notice: PaymentNotice {
            payment_id: r.get(2)?,
            mch_id: r.get(3)?,
            amount_fen: r.get(4)?,
            paid_at: r.get(5)?,
            customer_id: r.get(6)?,
            phone: r.get(7)?,
        },
        rule_id: r.get(8)?,
        program_id: r.get(9)?,
        outcome: decode(GiftOutcome::parse(&outcome), 10, "gift outcome")?,
        created_at: r.get(11)?,
    })
}

fn audit(
    conn: &Connection,
    merchant_id: i64,
    rule_id: i64,
    action: &str,
    detail: String,
    actor: &Actor,
    now: i64,
) -> StoreResult<()> {
    insert_audit(
        conn,
        &AuditEntry {
            merchant_id,
            actor: actor.clone(),
            action: action.into(),
            target: format!("pay_gift_rule={rule_id}"),
            detail,
            n_affected: 1,
            created_at: now,
        },
        1,
    )
    .map_err(map_err)?;
    Ok(())
}

#[async_trait::async_trait]
impl kaquan_core::member::pay_gift::PayGiftStore for SqliteStore {
    async fn create_pay_gift_rule(
        &self,
        merchant_id: i64,
        fields: &PayGiftFields,
        actor: &Actor,
        now: i64,
    ) -> StoreResult<Result<PayGiftRule, RuleRefusal>> {
        let (f, actor) = (fields.clone(), actor.clone());
        self.write(move |conn| {
            let program: Option<i64> = conn
                .query_row(
                    "SELECT id FROM member_programs WHERE id = ?1 AND merchant_id = ?2",
                    params![f.program_id, merchant_id],
                    |r| r.get(0),
                )
                .optional()
                .map_err(map_err)?;
            if program.is_none() {
                return Ok(Err(RuleRefusal::ProgramNotFound));
            }
            let existing = rules(conn, merchant_id)?;
            if let Some((rule, mch_id)) = holder(&existing, &f.mch_ids, None, now) {
                return Ok(Err(RuleRefusal::MchIdTaken { mch_id, rule_id: rule.id }));
            }
            conn.execute(
                "INSERT INTO pay_gift_rules (merchant_id, program_id, mch_ids, least_cost_fen, max_cost_fen, begin_at, \
                 end_at, created_by, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    merchant_id,
                    f.program_id,
                    f.mch_ids.join(","),
                    f.least_cost_fen,
                    f.max_cost_fen,
                    f.begin_at,
                    f.end_at,
                    actor.label,
                    now
                ],
            )
            .map_err(map_err)?;
            let id = conn.last_insert_rowid();
            let detail = format!("program={} mch_ids={} {}", f.program_id, f.mch_ids.join(","), f.condition_zh());
            audit(conn, merchant_id, id, "create_pay_gift_rule", detail, &actor, now)?;
            let created = rules(conn, merchant_id)?
                .into_iter()
                .find(|(r, _)| r.id == id)
                .map(|(r, _)| r)
                .ok_or(StoreError::NotFound)?;
            Ok(Ok(created))
        })
        .await
    }

    async fn delete_pay_gift_rule(
        &self,
        merchant_id: i64,
        rule_id: i64,
        actor: &Actor,
        now: i64,
    ) -> StoreResult<()> {
        let actor = actor.clone();
        self.write(move |conn| {
            execute_one(
                conn,
                "UPDATE pay_gift_rules SET deleted_at = ?1 WHERE id = ?2 AND merchant_id = ?3 AND deleted_at IS NULL",
                params![now, rule_id, merchant_id],
            )?;
            audit(conn, merchant_id, rule_id, "delete_pay_gift_rule", String::new(), &actor, now)
        })
        .await
    }

    async fn list_pay_gift_rules(
        &self,
        merchant_id: i64,
    ) -> StoreResult<Vec<(PayGiftRule, ProgramState)>> {
        self.read(move |conn| rules(conn, merchant_id)).await
    }

    async fn record_gift_send(
        &self,
        merchant_id: i64,
        send: &GiftSend,
        event: Option<&NewEvent>,
    ) -> StoreResult<(GiftSend, bool)> {
        let (send, event) = (send.clone(), event.cloned());
        self.write(move |conn| {
            let n = conn
                .execute(
                    "INSERT INTO pay_gift_sends (merchant_id, payment_id, mch_id, amount_fen, paid_at, customer_ref, phone, \
                     rule_id, program_id, outcome, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) \
                     ON CONFLICT (merchant_id, payment_id) DO NOTHING",
                    params![
                        merchant_id,
                        send.notice.payment_id,
                        send.notice.mch_id,
                        send.notice.amount_fen,
                        send.notice.paid_at,
                        send.notice.customer_id,
                        send.notice.phone,
                        send.rule_id,
                        send.program_id,
                        send.outcome.code(),
                        send.created_at
                    ],
                )
                .map_err(map_err)?;
            if n == 1 {
                if let Some(event) = &event {
                    insert_event(conn, event)?;
                }
            }
            let recorded = conn
                .query_row(
                    &format!("SELECT {SEND_COLUMNS} FROM pay_gift_sends WHERE merchant_id = ?1 AND payment_id = ?2"),
                    params![merchant_id, send.notice.payment_id],
                    send_from_row,
                )
                .map_err(map_err)?;
            Ok((recorded, n == 0))
        })
        .await
    }

    async fn list_gift_sends(
        &self,
        merchant_id: i64,
        page: Page,
    ) -> StoreResult<(Vec<GiftSend>, i64)> {
        self.read(move |conn| {
            crate::sql::filtered_page(
                conn,
                ("pay_gift_sends", SEND_COLUMNS, "id DESC"),
                "merchant_id = ?",
                vec![Value::Integer(merchant_id)],
                page,
                send_from_row,
            )
        })
        .await
    }
}
