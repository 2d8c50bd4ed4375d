//! Cards: the filter SQL, lists, keyset pages for exports, and the guarded
//! state changes and edits (one statement each, with the audit record).

use crate::events::insert_event;
use crate::sql::decode;
use crate::sql::insert_audit;
use crate::sql::map_err;
use crate::SqliteStore;
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
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, OptionalExtension, Row};

pub(crate) const CARD_COLUMNS: &str = "cards.id, cards.merchant_id, cards.batch_id, cards.serial, cards.number, cards.state, \
    cards.face_value_fen, cards.valid_from, cards.valid_until, cards.remark, cards.distributor_id, distributors.name, \
    cards.activated_at, cards.used_at, cards.voided_at, cards.created_at";
pub(crate) const CARD_FROM: &str =
    "cards LEFT JOIN distributors ON distributors.id = cards.distributor_id";

pub(crate) fn card_from_row(row: &Row) -> rusqlite::Result<Card> {
    Ok(Card {
        id: row.get(0)?,
        merchant_id: row.get(1)?,
        batch_id: row.get(2)?,
        serial: row.get(3)?,
        number: row.get(4)?,
        state: decode(CardState::parse(&row.get::<_, String>(5)?), 5, "card state")?,
        face_value_fen: row.get(6)?,
        valid_from: row.get(7)?,
        valid_until: row.get(8)?,
        remark: row.get(9)?,
        distributor_id: row.get(10)?,
        distributor_name: row.get(11)?,
        activated_at: row.get(12)?,
        used_at: row.get(13)?,
        voided_at: row.get(14)?,
        created_at: row.get(15)?,
    })
}

/// `WHERE` conditions for a card filter, qualified with `cards.` so they
/// work in SELECT, UPDATE and DELETE alike.
pub(crate) fn card_filter_sql(merchant_id: i64, filter: &CardFilter) -> (String, Vec<Value>) {
    let mut sql = String::from("cards.merchant_id = ?");
    let mut values = vec![Value::Integer(merchant_id)];
    if let Some(v) = filter.batch_id {
        sql.push_str(" AND cards.batch_id = ?");
        values.push(Value::Integer(v));
    }
    if let Some(v) = filter.state {
        sql.push_str(" AND cards.state = ?");
        values.push(Value::Text(v.code().into()));
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
        Some(v) => {
            sql.push_str(" AND cards.distributor_id = ?");
            values.push(Value::Integer(v));
        }
        None => {}
    }
    if let Some(v) = filter.serial_from {
        sql.push_str(" AND cards.serial >= ?");
        values.push(Value::Integer(v));
    }
    if let Some(v) = filter.serial_to {
        sql.push_str(" AND cards.serial <= ?");
        values.push(Value::Integer(v));
    }
    if let Some(needle) = filter.number_needle() {
        sql.push_str(" AND instr(cards.number, ?) > 0");
        values.push(Value::Text(needle));
    }
    (sql, values)
}

/// Counts sealed password copies (密码副本) gone from each batch; returns
/// how many in all.
fn take_copies(
    conn: &rusqlite::Connection,
    per_batch: impl IntoIterator<Item = (i64, i64)>,
) -> StoreResult<i64> {
    let mut total = 0;
    for (batch_id, n) in per_batch {
        conn.execute(
            "UPDATE batches SET n_copies = n_copies - ?1 WHERE id = ?2",
            params![n, batch_id],
        )
        .map_err(map_err)?;
        total += n;
    }
    Ok(total)
}

pub(crate) fn state_list(states: &[CardState]) -> String {
    states
        .iter()
        .map(|s| format!("'{}'", s.code()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The ids of the batch's first unsold cards that a sale may take
/// (`?1` now, `?3` batch, `?4` merchant, `?5` how many): inactive, never
/// sold, with a password to show, not past their validity.
pub(crate) fn unsold_cards_sql() -> String {
    format!(
        "SELECT id FROM cards WHERE batch_id = ?3 AND merchant_id = ?4 \
         AND state = '{}' AND sale_id IS NULL AND secret_sealed IS NOT NULL \
         AND (valid_until IS NULL OR valid_until >= ?1) ORDER BY serial LIMIT ?5",
        CardMove::Sell.from_state().code()
    )
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
                    "UPDATE cards SET state = '{to}', activated_at = ?1 WHERE batch_id = ?2 AND state = '{from}'"
                ),
                CardMove::Use => format!(
                    "UPDATE cards SET state = '{to}', used_at = ?1 \
                     WHERE id = ?2 AND merchant_id = ?3 AND state = '{from}' \
                     AND (valid_from IS NULL OR valid_from <= ?1) AND (valid_until IS NULL OR valid_until >= ?1) \
                     RETURNING number, batch_id"
                ),
                CardMove::Unuse => format!(
                    "UPDATE cards SET state = '{to}', used_at = NULL WHERE id = ?1 AND merchant_id = ?2 AND state = '{from}'"
                ),
                // The batch's first unsold cards that have a password to
                // show and are not past their validity.
                CardMove::Sell => format!(
                    "UPDATE cards SET state = '{to}', activated_at = ?1, sale_id = ?2 WHERE id IN ({})",
                    unsold_cards_sql()
                ),
                CardMove::Refund => format!(
                    "UPDATE cards SET state = '{to}', activated_at = NULL WHERE sale_id = ?1 AND merchant_id = ?2 AND state = '{from}'"
                ),
            }
        })
    });
    &SQL[card_move as usize]
}

#[async_trait::async_trait]
impl kaquan_core::card::CardStore for SqliteStore {
    async fn list_cards(
        &self,
        merchant_id: i64,
        filter: &CardFilter,
        page: Page,
    ) -> StoreResult<Vec<Card>> {
        let (condition, mut values) = card_filter_sql(merchant_id, filter);
        values.push(Value::Integer(page.page_size));
        values.push(Value::Integer(page.offset()));
        self.read(move |conn| {
            let mut stmt = conn
                .prepare(&format!("SELECT {CARD_COLUMNS} FROM {CARD_FROM} WHERE {condition} ORDER BY cards.serial LIMIT ? OFFSET ?"))
                .map_err(map_err)?;
            let rows = stmt.query_map(params_from_iter(values), card_from_row).map_err(map_err)?;
            rows.collect::<Result<_, _>>().map_err(map_err)
        })
        .await
    }

    async fn count_cards(&self, merchant_id: i64, filter: &CardFilter) -> StoreResult<i64> {
        let (condition, values) = card_filter_sql(merchant_id, filter);
        self.read(move |conn| {
            conn.query_row(
                &format!("SELECT count(*) FROM cards WHERE {condition}"),
                params_from_iter(values),
                |r| r.get(0),
            )
            .map_err(map_err)
        })
        .await
    }

    async fn cards_after(
        &self,
        merchant_id: i64,
        filter: &CardFilter,
        after_serial: i64,
        limit: i64,
    ) -> StoreResult<Vec<CardWithSecret>> {
        let (condition, mut values) = card_filter_sql(merchant_id, filter);
        values.push(Value::Integer(after_serial));
        values.push(Value::Integer(limit));
        self.read(move |conn| {
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT {CARD_COLUMNS}, cards.secret_sealed, cards.key_version FROM {CARD_FROM} \
                     WHERE {condition} AND cards.serial > ? ORDER BY cards.serial LIMIT ?"
                ))
                .map_err(map_err)?;
            let rows = stmt
                .query_map(params_from_iter(values), |r| {
                    Ok(CardWithSecret { card: card_from_row(r)?, secret_sealed: r.get(16)?, key_version: r.get(17)? })
                })
                .map_err(map_err)?;
            rows.collect::<Result<_, _>>().map_err(map_err)
        })
        .await
    }

    async fn get_card_by_number(
        &self,
        merchant_id: i64,
        number: &str,
    ) -> StoreResult<Option<Card>> {
        let number = number.to_owned();
        self.read(move |conn| {
            conn.query_row(
                &format!("SELECT {CARD_COLUMNS} FROM {CARD_FROM} WHERE cards.merchant_id = ?1 AND cards.number = ?2"),
                params![merchant_id, number],
                card_from_row,
            )
            .optional()
            .map_err(map_err)
        })
        .await
    }

    async fn apply_card_op(
        &self,
        merchant_id: i64,
        filter: &CardFilter,
        op: CardOp,
        audit: &AuditEntry,
    ) -> StoreResult<i64> {
        let (condition, values) = card_filter_sql(merchant_id, filter);
        let audit = audit.clone();
        let guard = format!(
            "{condition} AND cards.state IN ({})",
            state_list(op.from_states())
        );
        self.write(move |conn| {
            let now = Value::Integer(audit.created_at);
            let n = match op.to_state() {
                Some(to) => {
                    let (set, binds_now) = match op {
                        CardOp::Activate => ("activated_at = ?", true),
                        CardOp::Deactivate => ("activated_at = NULL", false),
                        CardOp::Void => ("voided_at = ?", true),
                        CardOp::Restore => ("voided_at = NULL, activated_at = NULL", false),
                        CardOp::Delete => unreachable!("delete has no target state"),
                    };
                    let bound = binds_now.then_some(now).into_iter().chain(values.iter().cloned());
                    conn.execute(&format!("UPDATE cards SET state = '{}', {set} WHERE {guard}", to.code()), params_from_iter(bound))
                        .map_err(map_err)? as i64
                }
                None => {
                    let mut copies = conn
                        .prepare(&format!(
                            "SELECT batch_id, count(*) FROM cards WHERE {guard} AND cards.secret_sealed IS NOT NULL GROUP BY batch_id"
                        ))
                        .map_err(map_err)?;
                    let per_batch = copies
                        .query_map(params_from_iter(values.iter()), |r| Ok((r.get(0)?, r.get(1)?)))
                        .map_err(map_err)?
                        .collect::<Result<Vec<(i64, i64)>, _>>()
                        .map_err(map_err)?;
                    drop(copies);
                    take_copies(conn, per_batch)?;
                    let audit_id = insert_audit(conn, &audit, 0).map_err(map_err)?;
                    let mut bound = vec![Value::Integer(audit_id)];
                    bound.extend(values.iter().cloned());
                    let kept = conn
                        .execute(
                            &format!(
                                "INSERT INTO deleted_cards (audit_id, merchant_id, batch_id, serial, number) \
                                 SELECT ?, merchant_id, batch_id, serial, number FROM cards WHERE {guard}"
                            ),
                            params_from_iter(bound),
                        )
                        .map_err(map_err)?;
                    let deleted = conn.execute(&format!("DELETE FROM cards WHERE {guard}"), params_from_iter(values.iter())).map_err(map_err)?;
                    assert_eq!(kept, deleted, "every deleted card is recorded");
                    conn.execute("UPDATE audit_log SET n_affected = ?1 WHERE id = ?2", params![deleted as i64, audit_id])
                        .map_err(map_err)?;
                    return Ok(deleted as i64);
                }
            };
            insert_audit(conn, &audit, n).map_err(map_err)?;
            if let Some(event) = NewEvent::cards(op, &audit, n) {
                insert_event(conn, &event)?;
            }
            Ok(n)
        })
        .await
    }

    async fn edit_cards(
        &self,
        merchant_id: i64,
        filter: &CardFilter,
        edit: &CardEdit,
        audit: &AuditEntry,
    ) -> StoreResult<i64> {
        let (condition, values) = card_filter_sql(merchant_id, filter);
        let (edit, audit) = (edit.clone(), audit.clone());
        self.write(move |conn| {
            if let Some(Some(distributor_id)) = edit.distributor_id {
                let n: i64 = conn
                    .query_row(
                        "SELECT count(*) FROM distributors WHERE id = ?1 AND merchant_id = ?2",
                        params![distributor_id, merchant_id],
                        |r| r.get(0),
                    )
                    .map_err(map_err)?;
                if n != 1 {
                    return Err(StoreError::NotFound);
                }
            }
            let mut sets = Vec::new();
            let mut bound = Vec::new();
            let opt = |v: Option<i64>| v.map_or(Value::Null, Value::Integer);
            if let Some(v) = edit.face_value_fen {
                sets.push("face_value_fen = ?");
                bound.push(opt(v));
            }
            if let Some(v) = edit.valid_from {
                sets.push("valid_from = ?");
                bound.push(opt(v));
            }
            if let Some(v) = edit.valid_until {
                sets.push("valid_until = ?");
                bound.push(opt(v));
            }
            if let Some(v) = &edit.remark {
                sets.push("remark = ?");
                bound.push(Value::Text(v.clone()));
            }
            if let Some(v) = edit.distributor_id {
                sets.push("distributor_id = ?");
                bound.push(opt(v));
            }
            if sets.is_empty() {
                return Err(StoreError::Invalid("no field chosen".into()));
            }
            bound.extend(values.iter().cloned());
            let n = conn
                .execute(
                    &format!("UPDATE cards SET {} WHERE {condition}", sets.join(", ")),
                    params_from_iter(bound),
                )
                .map_err(map_err)? as i64;
            insert_audit(conn, &audit, n).map_err(map_err)?;
            Ok(n)
        })
        .await
    }

    async fn purge_card_secrets(
        &self,
        merchant_id: i64,
        filter: &CardFilter,
        audit: &AuditEntry,
    ) -> StoreResult<i64> {
        let (condition, values) = card_filter_sql(merchant_id, filter);
        let audit = audit.clone();
        self.write(move |conn| {
            let mut purged = conn
                .prepare(&format!(
                    "UPDATE cards SET secret_sealed = NULL WHERE {condition} AND cards.secret_sealed IS NOT NULL \
                     RETURNING batch_id"
                ))
                .map_err(map_err)?;
            let mut per_batch = std::collections::BTreeMap::<i64, i64>::new();
            let mut rows = purged.query(params_from_iter(values.iter())).map_err(map_err)?;
            while let Some(row) = rows.next().map_err(map_err)? {
                *per_batch.entry(row.get(0).map_err(map_err)?).or_default() += 1;
            }
            drop(rows);
            let n = take_copies(conn, per_batch)?;
            insert_audit(conn, &audit, n).map_err(map_err)?;
            Ok(n)
        })
        .await
    }
}
