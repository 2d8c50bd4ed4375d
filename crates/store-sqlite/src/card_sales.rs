//! Card sales (商城卖卡): the cards of a paid mall order, taken once per
//! order, all or none, and given back to inactive by its refund.

use crate::cards::card_move_sql;
use crate::cards::unsold_cards_sql;
use crate::events::insert_event;
use crate::ledger::guard_call;
use crate::ledger::record_call;
use crate::ledger::replayed_refusal;
use crate::sql::decode;
use crate::sql::insert_audit;
use crate::sql::map_err;
use crate::sql::merchant_page;
use crate::SqliteStore;
use kaquan_core::audit::AuditEntry;
use kaquan_core::card::{CardMove, CardState};
use kaquan_core::card_sale::{CardSale, NewCardSale, RefundCardSale, SaleState, SoldCard};
use kaquan_core::event::{EventType, NewEvent};
use kaquan_core::ledger::{ApiCall, Called, Refusal};
use kaquan_core::store::Page;
use kaquan_core::{StoreError, StoreResult};
use rusqlite::{params, Connection, OptionalExtension, Row};

const SALE_COLUMNS: &str = "id, merchant_id, order_id, batch_id, \
    (SELECT name FROM batches WHERE batches.id = card_sales.batch_id), quantity, phone, state, \
    created_at, refunded_at, n_refunded";

fn sale_from_row(r: &Row) -> rusqlite::Result<CardSale> {
    Ok(CardSale {
        id: r.get(0)?,
        merchant_id: r.get(1)?,
        order_id: r.get(2)?,
        batch_id: r.get(3)?,
        batch_name: r.get(4)?,
        quantity: r.get(5)?,
        phone: r.get(6)?,
        state: decode(SaleState::parse(&r.get::<_, String>(7)?), 7, "sale state")?,
        created_at: r.get(8)?,
        refunded_at: r.get(9)?,
        n_refunded: r.get(10)?,
        cards: Vec::new(),
    })
}

fn sale_cards(conn: &Connection, sale_id: i64) -> StoreResult<Vec<SoldCard>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT number, state, secret_sealed, key_version FROM cards WHERE sale_id = ?1 ORDER BY serial",
        )
        .map_err(map_err)?;
    let rows = stmt
        .query_map([sale_id], |r| {
            Ok(SoldCard {
                number: r.get(0)?,
                state: decode(CardState::parse(&r.get::<_, String>(1)?), 1, "card state")?,
                secret_sealed: r.get(2)?,
                key_version: r.get(3)?,
            })
        })
        .map_err(map_err)?;
    rows.collect::<Result<_, _>>().map_err(map_err)
}

fn get_sale(conn: &Connection, id: i64) -> StoreResult<CardSale> {
    let mut sale = conn
        .query_row(
            &format!("SELECT {SALE_COLUMNS} FROM card_sales WHERE id = ?1"),
            [id],
            sale_from_row,
        )
        .map_err(map_err)?;
    sale.cards = sale_cards(conn, id)?;
    Ok(sale)
}

/// Writes the sale under the call's idempotency key.
fn record_sale_call(
    conn: &Connection,
    merchant_id: i64,
    call: &ApiCall,
    sale_id: i64,
    now: i64,
) -> StoreResult<()> {
    record_call(conn, merchant_id, call, None, None, None, now)?;
    if let Some(claim) = &call.idempotency {
        conn.execute(
            "UPDATE idempotency_keys SET card_sale_id = ?1 WHERE merchant_id = ?2 AND key = ?3",
            params![sale_id, merchant_id, claim.key.as_str()],
        )
        .map_err(map_err)?;
    }
    Ok(())
}

/// The answer to a guarded call whose outcome is already known: a refusal
/// of the guard, or the sale (or refusal) its key recorded.
fn answered(
    conn: &Connection,
    guarded: Option<Result<crate::ledger::Recorded, Refusal>>,
) -> StoreResult<Option<Called<CardSale>>> {
    Ok(match guarded {
        None => None,
        Some(Err(refusal)) => Some(Called {
            result: Err(refusal),
            replayed: false,
        }),
        Some(Ok(recorded)) => Some(match recorded.card_sale_id {
            Some(id) => Called {
                result: Ok(get_sale(conn, id)?),
                replayed: true,
            },
            None => replayed_refusal(&recorded)?,
        }),
    })
}

/// Records the outcome under the key and turns it into the answer.
fn finish(
    conn: &Connection,
    merchant_id: i64,
    call: &ApiCall,
    outcome: Result<(i64, bool), Refusal>,
    now: i64,
) -> StoreResult<Called<CardSale>> {
    match outcome {
        Ok((id, replayed)) => {
            record_sale_call(conn, merchant_id, call, id, now)?;
            Ok(Called {
                result: Ok(get_sale(conn, id)?),
                replayed,
            })
        }
        Err(refusal) => {
            record_call(conn, merchant_id, call, None, None, Some(refusal), now)?;
            Ok(Called {
                result: Err(refusal),
                replayed: false,
            })
        }
    }
}

/// Takes the cards of a new sale: `Ok((id, false))`, or the refusal.
fn take_cards(conn: &Connection, sale: &NewCardSale) -> StoreResult<Result<(i64, bool), Refusal>> {
    let m = sale.merchant_id;
    let batch: Option<String> = conn
        .query_row(
            "SELECT name FROM batches WHERE id = ?1 AND merchant_id = ?2 AND state = 'ready'",
            params![sale.batch_id, m],
            |r| r.get(0),
        )
        .optional()
        .map_err(map_err)?;
    if batch.is_none() {
        return Ok(Err(Refusal::BatchNotFound));
    }
    // The single writer runs this job alone: what is counted is what the
    // update takes.
    let available: i64 = conn
        .query_row(
            &format!("SELECT count(*) FROM ({})", unsold_cards_sql()),
            params![sale.now, None::<i64>, sale.batch_id, m, sale.quantity],
            |r| r.get(0),
        )
        .map_err(map_err)?;
    if available < sale.quantity {
        return Ok(Err(Refusal::CardsOutOfStock));
    }
    let id: i64 = conn
        .query_row(
            "INSERT INTO card_sales (merchant_id, order_id, batch_id, quantity, phone, state, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING id",
            params![m, sale.order_id, sale.batch_id, sale.quantity, sale.phone, SaleState::Sold.code(), sale.now],
            |r| r.get(0),
        )
        .map_err(map_err)?;
    let n = conn
        .execute(
            card_move_sql(CardMove::Sell),
            params![sale.now, id, sale.batch_id, m, sale.quantity],
        )
        .map_err(map_err)? as i64;
    if n != sale.quantity {
        return Err(StoreError::Backend(format!(
            "a sale took {n} of {} counted cards",
            sale.quantity
        )));
    }
    let audit = AuditEntry {
        merchant_id: m,
        actor: sale.actor.clone(),
        action: "sell_cards".into(),
        target: format!("card_sale={}", sale.order_id),
        detail: format!("batch={} quantity={}", sale.batch_id, sale.quantity),
        n_affected: n,
        created_at: sale.now,
    };
    insert_audit(conn, &audit, n).map_err(map_err)?;
    if let Some(event) = NewEvent::cards_moved(EventType::CardsActivated, &audit, n) {
        insert_event(conn, &event)?;
    }
    if sale.send_sms {
        crate::sms::plan_sale_sms(conn, sale)?;
    }
    Ok(Ok((id, false)))
}

#[async_trait::async_trait]
impl kaquan_core::card_sale::CardSaleStore for SqliteStore {
    async fn sell_cards(
        &self,
        call: &ApiCall,
        sale: &NewCardSale,
    ) -> StoreResult<Called<CardSale>> {
        let (call, sale) = (call.clone(), sale.clone());
        self.write(move |conn| {
            let m = sale.merchant_id;
            if let Some(answer) = answered(conn, guard_call(conn, m, &call)?)? {
                return Ok(answer);
            }
            let existing: Option<(i64, i64, i64)> = conn
                .query_row(
                    "SELECT id, batch_id, quantity FROM card_sales WHERE merchant_id = ?1 AND order_id = ?2",
                    params![m, sale.order_id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()
                .map_err(map_err)?;
            let outcome = match existing {
                Some((id, batch_id, quantity))
                    if batch_id == sale.batch_id && quantity == sale.quantity =>
                {
                    Ok((id, true))
                }
                Some(_) => Err(Refusal::OrderMismatch),
                None => take_cards(conn, &sale)?,
            };
            finish(conn, m, &call, outcome, sale.now)
        })
        .await
    }

    async fn refund_card_sale(
        &self,
        call: &ApiCall,
        refund: &RefundCardSale,
    ) -> StoreResult<Called<CardSale>> {
        let (call, refund) = (call.clone(), refund.clone());
        self.write(move |conn| {
            let m = refund.merchant_id;
            if let Some(answer) = answered(conn, guard_call(conn, m, &call)?)? {
                return Ok(answer);
            }
            let sale: Option<(i64, String)> = conn
                .query_row(
                    "SELECT id, state FROM card_sales WHERE merchant_id = ?1 AND order_id = ?2",
                    params![m, refund.order_id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(map_err)?;
            let outcome = match sale {
                None => Err(Refusal::SaleNotFound),
                Some((id, state)) if state == SaleState::Refunded.code() => Ok((id, true)),
                Some((id, _)) => {
                    let n = conn
                        .execute(card_move_sql(CardMove::Refund), params![id, m])
                        .map_err(map_err)? as i64;
                    let changed = conn
                        .execute(
                            "UPDATE card_sales SET state = ?1, refunded_at = ?2, n_refunded = ?3 WHERE id = ?4 AND state = ?5",
                            params![SaleState::Refunded.code(), refund.now, n, id, SaleState::Sold.code()],
                        )
                        .map_err(map_err)?;
                    crate::sql::expect_one(changed)?;
                    let audit = AuditEntry {
                        merchant_id: m,
                        actor: refund.actor.clone(),
                        action: "refund_card_sale".into(),
                        target: format!("card_sale={}", refund.order_id),
                        detail: String::new(),
                        n_affected: n,
                        created_at: refund.now,
                    };
                    insert_audit(conn, &audit, n).map_err(map_err)?;
                    if let Some(event) =
                        NewEvent::cards_moved(EventType::CardsDeactivated, &audit, n)
                    {
                        insert_event(conn, &event)?;
                    }
                    Ok((id, false))
                }
            };
            finish(conn, m, &call, outcome, refund.now)
        })
        .await
    }

    async fn get_card_sale(
        &self,
        merchant_id: i64,
        order_id: &str,
    ) -> StoreResult<Option<CardSale>> {
        let order_id = order_id.to_owned();
        self.read(move |conn| {
            let id: Option<i64> = conn
                .query_row(
                    "SELECT id FROM card_sales WHERE merchant_id = ?1 AND order_id = ?2",
                    params![merchant_id, order_id],
                    |r| r.get(0),
                )
                .optional()
                .map_err(map_err)?;
            id.map(|id| get_sale(conn, id)).transpose()
        })
        .await
    }

    async fn list_card_sales(
        &self,
        merchant_id: i64,
        page: Page,
    ) -> StoreResult<(Vec<CardSale>, i64)> {
        self.read(move |conn| {
            let (mut sales, total) = merchant_page(
                conn,
                "card_sales",
                SALE_COLUMNS,
                merchant_id,
                page,
                sale_from_row,
            )?;
            for sale in &mut sales {
                sale.cards = sale_cards(conn, sale.id)?;
            }
            Ok((sales, total))
        })
        .await
    }
}
