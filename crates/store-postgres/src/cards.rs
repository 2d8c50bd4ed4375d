//! Cards: the filter SQL, lists, keyset pages for exports, and the guarded
//! state changes and edits (one statement each, with the audit record).

use crate::events::insert_event;
use crate::sql::insert_audit;
use crate::sql::map_err;
use crate::sql::parse_or;
use crate::sql::refs;
use crate::sql::Params;
use crate::sql::{all, exec, one, opt};
use crate::PgStore;
use deadpool_postgres::GenericClient;
use kaquan_core::audit::AuditEntry;
use kaquan_core::card::Card;
use kaquan_core::card::CardEdit;
use kaquan_core::card::CardFilter;
use kaquan_core::card::CardMove;
use kaquan_core::card::CardOp;
use kaquan_core::card::CardState;
use kaquan_core::card::CardWithSecret;
use kaquan_core::event::NewEvent;
use kaquan_core::store::Page;
use kaquan_core::{StoreError, StoreResult};
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

pub(crate) const CARD_COLUMNS: &str = "cards.id, cards.merchant_id, cards.batch_id, cards.serial, cards.number, cards.state, \
    cards.face_value_fen, cards.valid_from, cards.valid_until, cards.remark, cards.distributor_id, distributors.name, \
    cards.activated_at, cards.used_at, cards.voided_at, cards.created_at";
pub(crate) const CARD_FROM: &str =
    "cards LEFT JOIN distributors ON distributors.id = cards.distributor_id";

pub(crate) fn card_from_row(row: &Row) -> StoreResult<Card> {
    Ok(Card {
        id: row.get(0),
        merchant_id: row.get(1),
        batch_id: row.get(2),
        serial: row.get(3),
        number: row.get(4),
        state: parse_or(CardState::parse(row.get(5)), "card state")?,
        face_value_fen: row.get(6),
        valid_from: row.get(7),
        valid_until: row.get(8),
        remark: row.get(9),
        distributor_id: row.get(10),
        distributor_name: row.get(11),
        activated_at: row.get(12),
        used_at: row.get(13),
        voided_at: row.get(14),
        created_at: row.get(15),
    })
}

/// `WHERE` conditions for a card filter; placeholders continue after the
/// `params` already bound.
pub(crate) fn card_filter_sql(
    merchant_id: i64,
    filter: &CardFilter,
    params: &mut Params,
) -> String {
    let bind = |params: &mut Params, value: Box<dyn ToSql + Sync + Send>| {
        params.push(value);
        format!("${}", params.len())
    };
    let mut sql = format!(
        "cards.merchant_id = {}",
        bind(params, Box::new(merchant_id))
    );
    if let Some(v) = filter.batch_id {
        sql.push_str(&format!(
            " AND cards.batch_id = {}",
            bind(params, Box::new(v))
        ));
    }
    if let Some(v) = filter.state {
        sql.push_str(&format!(
            " AND cards.state = {}",
            bind(params, Box::new(v.code()))
        ));
    }
    match filter.activated {
        Some(true) => sql.push_str(" AND cards.state IN ('active', 'used')"),
        Some(false) => sql.push_str(" AND cards.state NOT IN ('active', 'used')"),
        None => {}
    }
    match filter.used {
        Some(true) => sql.push_str(" AND cards.state = 'used'"),
        Some(false) => sql.push_str(" AND cards.state <> 'used'"),
        None => {}
    }
    match filter.distributor_id {
        Some(0) => sql.push_str(" AND cards.distributor_id IS NULL"),
        Some(v) => sql.push_str(&format!(
            " AND cards.distributor_id = {}",
            bind(params, Box::new(v))
        )),
        None => {}
    }
    if let Some(v) = filter.serial_from {
        sql.push_str(&format!(
            " AND cards.serial >= {}",
            bind(params, Box::new(v))
        ));
    }
    if let Some(v) = filter.serial_to {
        sql.push_str(&format!(
            " AND cards.serial <= {}",
            bind(params, Box::new(v))
        ));
    }
    if let Some(needle) = filter.number_needle() {
        sql.push_str(&format!(
            " AND strpos(cards.number, {}) > 0",
            bind(params, Box::new(needle))
        ));
    }
    sql
}

pub(crate) fn state_list(states: &[CardState]) -> String {
    states
        .iter()
        .map(|s| format!("'{}'", s.code()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The one guarded statement of each move a card makes on its own
/// (`card::CardMove`): its states come from core, and the text is built
/// once, not per pickup.
pub(crate) fn card_move_sql(card_move: CardMove) -> &'static str {
    static SQL: std::sync::LazyLock<[String; 5]> = std::sync::LazyLock::new(|| {
        CardMove::ALL.map(|m| {
            let (to, from) = (m.to_state().code(), m.from_state().code());
            match m {
                CardMove::ActivateOnFill => format!(
                    "UPDATE cards SET state = '{to}', activated_at = $1 WHERE batch_id = $2 AND state = '{from}'"
                ),
                CardMove::Use => format!(
                    "UPDATE cards SET state = '{to}', used_at = $1 \
                     WHERE id = $2 AND merchant_id = $3 AND state = '{from}' \
                     AND (valid_from IS NULL OR valid_from <= $1) AND (valid_until IS NULL OR valid_until >= $1) \
                     RETURNING number, batch_id"
                ),
                CardMove::Unuse => format!(
                    "UPDATE cards SET state = '{to}', used_at = NULL WHERE id = $1 AND merchant_id = $2 AND state = '{from}'"
                ),
                // The batch's first unsold cards that have a password to
                // show and are not past their validity; cards another sale
                // is taking are skipped, not waited for.
                CardMove::Sell => format!(
                    "UPDATE cards SET state = '{to}', activated_at = $1, sale_id = $2 WHERE id IN (\
                     SELECT id FROM cards WHERE batch_id = $3 AND merchant_id = $4 AND state = '{from}' \
                     AND sale_id IS NULL AND secret_sealed IS NOT NULL AND (valid_until IS NULL OR valid_until >= $1) \
                     ORDER BY serial LIMIT $5 FOR UPDATE SKIP LOCKED)"
                ),
                CardMove::Refund => format!(
                    "UPDATE cards SET state = '{to}', activated_at = NULL WHERE sale_id = $1 AND merchant_id = $2 AND state = '{from}'"
                ),
            }
        })
    });
    &SQL[card_move as usize]
}

#[async_trait::async_trait]
impl kaquan_core::card::CardStore for PgStore {
    async fn list_cards(
        &self,
        merchant_id: i64,
        filter: &CardFilter,
        page: Page,
    ) -> StoreResult<Vec<Card>> {
        let mut params: Params = Vec::new();
        let condition = card_filter_sql(merchant_id, filter, &mut params);
        let n = params.len();
        params.push(Box::new(page.page_size));
        params.push(Box::new(page.offset()));
        let rows = all(&self.client().await?, &format!("SELECT {CARD_COLUMNS} FROM {CARD_FROM} WHERE {condition} ORDER BY cards.serial LIMIT ${} OFFSET ${}", n + 1, n + 2),
                &refs(&params)).await?;
        rows.iter().map(card_from_row).collect()
    }

    async fn count_cards(&self, merchant_id: i64, filter: &CardFilter) -> StoreResult<i64> {
        let mut params: Params = Vec::new();
        let condition = card_filter_sql(merchant_id, filter, &mut params);
        let row = one(
            &self.client().await?,
            &format!("SELECT count(*) FROM cards WHERE {condition}"),
            &refs(&params),
        )
        .await?;
        Ok(row.get(0))
    }

    async fn cards_after(
        &self,
        merchant_id: i64,
        filter: &CardFilter,
        after_serial: i64,
        limit: i64,
    ) -> StoreResult<Vec<CardWithSecret>> {
        let mut params: Params = Vec::new();
        let condition = card_filter_sql(merchant_id, filter, &mut params);
        let n = params.len();
        params.push(Box::new(after_serial));
        params.push(Box::new(limit));
        let rows = all(
            &self.client().await?,
            &format!(
                "SELECT {CARD_COLUMNS}, cards.secret_sealed, cards.key_version FROM {CARD_FROM} \
                     WHERE {condition} AND cards.serial > ${} ORDER BY cards.serial LIMIT ${}",
                n + 1,
                n + 2
            ),
            &refs(&params),
        )
        .await?;
        rows.iter()
            .map(|r| {
                Ok(CardWithSecret {
                    card: card_from_row(r)?,
                    secret_sealed: r.get(16),
                    key_version: r.get(17),
                })
            })
            .collect()
    }

    async fn get_card_by_number(
        &self,
        merchant_id: i64,
        number: &str,
    ) -> StoreResult<Option<Card>> {
        let row = opt(&self.client().await?, &format!("SELECT {CARD_COLUMNS} FROM {CARD_FROM} WHERE cards.merchant_id = $1 AND cards.number = $2"),
                &[&merchant_id, &number]).await?;
        row.as_ref().map(card_from_row).transpose()
    }

    async fn apply_card_op(
        &self,
        merchant_id: i64,
        filter: &CardFilter,
        op: CardOp,
        audit: &AuditEntry,
    ) -> StoreResult<i64> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let mut params: Params = Vec::new();
        let n = match op.to_state() {
            Some(to) => {
                let set = match op {
                    CardOp::Activate => {
                        params.push(Box::new(audit.created_at));
                        "activated_at = $1"
                    }
                    CardOp::Deactivate => "activated_at = NULL",
                    CardOp::Void => {
                        params.push(Box::new(audit.created_at));
                        "voided_at = $1"
                    }
                    CardOp::Restore => "voided_at = NULL, activated_at = NULL",
                    CardOp::Delete => unreachable!("delete has no target state"),
                };
                let condition = card_filter_sql(merchant_id, filter, &mut params);
                let guard = format!(
                    "{condition} AND cards.state IN ({})",
                    state_list(op.from_states())
                );
                let n = exec(
                    &tx,
                    &format!(
                        "UPDATE cards SET state = '{}', {set} WHERE {guard}",
                        to.code()
                    ),
                    &refs(&params),
                )
                .await? as i64;
                insert_audit(&tx, audit, n).await?;
                if let Some(event) = NewEvent::cards(op, audit, n) {
                    insert_event(&tx, &event).await?;
                }
                n
            }
            None => {
                let audit_id = insert_audit(&tx, audit, 0).await?;
                params.push(Box::new(audit_id));
                let condition = card_filter_sql(merchant_id, filter, &mut params);
                let guard = format!(
                    "{condition} AND cards.state IN ({})",
                    state_list(op.from_states())
                );
                let row = one(&tx, &format!(
                            "WITH gone AS (DELETE FROM cards WHERE {guard} \
                                      RETURNING merchant_id, batch_id, serial, number, secret_sealed IS NOT NULL AS copy), \
                             kept AS (INSERT INTO deleted_cards (audit_id, merchant_id, batch_id, serial, number) \
                                      SELECT $1, merchant_id, batch_id, serial, number FROM gone RETURNING 1), \
                             copies AS (UPDATE batches SET n_copies = batches.n_copies - c.n \
                                      FROM (SELECT batch_id, count(*) AS n FROM gone WHERE copy GROUP BY batch_id) c \
                                      WHERE batches.id = c.batch_id) \
                             SELECT count(*) FROM kept"
                        ),
                        &refs(&params)).await?;
                let n: i64 = row.get(0);
                exec(
                    &tx,
                    "UPDATE audit_log SET n_affected = $1 WHERE id = $2",
                    &[&n, &audit_id],
                )
                .await?;
                n
            }
        };
        tx.commit().await.map_err(map_err)?;
        Ok(n)
    }

    async fn edit_cards(
        &self,
        merchant_id: i64,
        filter: &CardFilter,
        edit: &CardEdit,
        audit: &AuditEntry,
    ) -> StoreResult<i64> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        if let Some(Some(distributor_id)) = edit.distributor_id {
            let n: i64 = one(
                &tx,
                "SELECT count(*) FROM distributors WHERE id = $1 AND merchant_id = $2",
                &[&distributor_id, &merchant_id],
            )
            .await?
            .get(0);
            if n != 1 {
                return Err(StoreError::NotFound);
            }
        }
        let mut params: Params = Vec::new();
        let mut sets = Vec::new();
        let mut set = |params: &mut Params, column: &str, value: Box<dyn ToSql + Sync + Send>| {
            params.push(value);
            sets.push(format!("{column} = ${}", params.len()));
        };
        if let Some(v) = edit.face_value_fen {
            set(&mut params, "face_value_fen", Box::new(v));
        }
        if let Some(v) = edit.valid_from {
            set(&mut params, "valid_from", Box::new(v));
        }
        if let Some(v) = edit.valid_until {
            set(&mut params, "valid_until", Box::new(v));
        }
        if let Some(v) = &edit.remark {
            set(&mut params, "remark", Box::new(v.clone()));
        }
        if let Some(v) = edit.distributor_id {
            set(&mut params, "distributor_id", Box::new(v));
        }
        if sets.is_empty() {
            return Err(StoreError::Invalid("no field chosen".into()));
        }
        let condition = card_filter_sql(merchant_id, filter, &mut params);
        let n = exec(
            &tx,
            &format!("UPDATE cards SET {} WHERE {condition}", sets.join(", ")),
            &refs(&params),
        )
        .await? as i64;
        insert_audit(&tx, audit, n).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(n)
    }

    async fn purge_card_secrets(
        &self,
        merchant_id: i64,
        filter: &CardFilter,
        audit: &AuditEntry,
    ) -> StoreResult<i64> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let mut params: Params = Vec::new();
        let condition = card_filter_sql(merchant_id, filter, &mut params);
        // The copies gone are counted off their batches in the same statement.
        let sql = format!(
            "WITH purged AS (UPDATE cards SET secret_sealed = NULL WHERE {condition} \
             AND cards.secret_sealed IS NOT NULL RETURNING batch_id), \
             per AS (SELECT batch_id, count(*) AS n FROM purged GROUP BY batch_id), \
             counted AS (UPDATE batches SET n_copies = batches.n_copies - per.n FROM per \
             WHERE batches.id = per.batch_id RETURNING per.n) \
             SELECT coalesce(sum(n), 0)::BIGINT FROM counted"
        );
        let n: i64 = one(&tx, &sql, &refs(&params)).await?.get(0);
        insert_audit(&tx, audit, n).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(n)
    }
}
