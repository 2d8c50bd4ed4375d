//! Card sales (商城卖卡): the cards of a paid mall order, taken once per
//! order, all or none, and given back to inactive by its refund. One order
//! reported twice at once waits on the first's `card_sales` row; two orders
//! at once take different cards (`FOR UPDATE SKIP LOCKED`).

use crate::cards::card_move_sql;
use crate::engine::Pipelined;
use crate::events::insert_event;
use crate::ledger::claim_call;
use crate::ledger::record_call;
use crate::ledger::replayed_refusal;
use crate::ledger::Recorded;
use crate::sql::all;
use crate::sql::exec;
use crate::sql::expect_one;
use crate::sql::insert_audit;
use crate::sql::map_err;
use crate::sql::one;
use crate::sql::opt;
use crate::sql::parse_or;
use crate::PgStore;
use deadpool_postgres::GenericClient;
use kaquan_core::audit::AuditEntry;
use kaquan_core::card::{CardMove, CardState};
use kaquan_core::card_sale::{CardSale, NewCardSale, RefundCardSale, SaleState, SoldCard};
use kaquan_core::event::{EventType, NewEvent};
use kaquan_core::ledger::{ApiCall, Called, Refusal};
use kaquan_core::store::Page;
use kaquan_core::StoreResult;
use tokio_postgres::Row;

const SALE_COLUMNS: &str = "id, merchant_id, order_id, batch_id, \
    (SELECT name FROM batches WHERE batches.id = card_sales.batch_id), quantity, phone, state, \
    created_at, refunded_at, n_refunded";

fn sale_from_row(r: &Row) -> StoreResult<CardSale> {
    Ok(CardSale {
        id: r.get(0),
        merchant_id: r.get(1),
        order_id: r.get(2),
        batch_id: r.get(3),
        batch_name: r.get(4),
        quantity: r.get(5),
        phone: r.get(6),
        state: parse_or(SaleState::parse(r.get(7)), "sale state")?,
        created_at: r.get(8),
        refunded_at: r.get(9),
        n_refunded: r.get(10),
        cards: Vec::new(),
    })
}

async fn sale_cards(c: &impl GenericClient, sale_id: i64) -> StoreResult<Vec<SoldCard>> {
    all(
        c,
        "SELECT number, state, secret_sealed, key_version FROM cards WHERE sale_id = $1 ORDER BY serial",
        &[&sale_id],
    )
    .await?
    .iter()
    .map(|r| {
        Ok(SoldCard {
            number: r.get(0),
            state: parse_or(CardState::parse(r.get(1)), "card state")?,
            secret_sealed: r.get(2),
            key_version: r.get(3),
        })
    })
    .collect()
}

async fn get_sale(c: &impl GenericClient, id: i64) -> StoreResult<CardSale> {
    let row = one(
        c,
        &format!("SELECT {SALE_COLUMNS} FROM card_sales WHERE id = $1"),
        &[&id],
    )
    .await?;
    let mut sale = sale_from_row(&row)?;
    sale.cards = sale_cards(c, id).await?;
    Ok(sale)
}

/// The answer to a guarded call whose outcome is already known.
async fn answered(
    c: &impl GenericClient,
    claimed: Option<Result<Recorded, Refusal>>,
) -> StoreResult<Option<Called<CardSale>>> {
    Ok(match claimed {
        None => None,
        Some(Err(refusal)) => Some(Called {
            result: Err(refusal),
            replayed: false,
        }),
        Some(Ok(recorded)) => Some(match recorded.card_sale_id {
            Some(id) => Called {
                result: Ok(get_sale(c, id).await?),
                replayed: true,
            },
            None => replayed_refusal(&recorded)?,
        }),
    })
}

/// Records the outcome under the key, commits and answers.
async fn finish(
    tx: Pipelined,
    merchant_id: i64,
    call: &ApiCall,
    outcome: Result<(i64, bool), Refusal>,
) -> StoreResult<Called<CardSale>> {
    let c = tx.client();
    let called = match outcome {
        Ok((id, replayed)) => {
            record_call(c, merchant_id, call, None, None, None).await?;
            if let Some(claim) = &call.idempotency {
                exec(
                    c,
                    "UPDATE idempotency_keys SET card_sale_id = $1 WHERE merchant_id = $2 AND key = $3",
                    &[&id, &merchant_id, &claim.key.as_str()],
                )
                .await?;
            }
            Called {
                result: Ok(get_sale(c, id).await?),
                replayed,
            }
        }
        Err(refusal) => {
            record_call(c, merchant_id, call, None, None, Some(refusal)).await?;
            Called {
                result: Err(refusal),
                replayed: false,
            }
        }
    };
    tx.finish(&called.result).await?;
    Ok(called)
}

/// Takes the cards of a new sale, or finds the order's earlier sale.
async fn take_cards(
    c: &impl GenericClient,
    sale: &NewCardSale,
) -> StoreResult<Result<(i64, bool), Refusal>> {
    let m = sale.merchant_id;
    let batch = opt(
        c,
        "SELECT 1 FROM batches WHERE id = $1 AND merchant_id = $2 AND state = 'ready'",
        &[&sale.batch_id, &m],
    )
    .await?;
    if batch.is_none() {
        return Ok(Err(Refusal::BatchNotFound));
    }
    c.batch_execute("SAVEPOINT sale").await.map_err(map_err)?;
    // The same order at once: the second waits here for the first to end.
    let inserted = opt(
        c,
        "INSERT INTO card_sales (merchant_id, order_id, batch_id, quantity, phone, state, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (merchant_id, order_id) DO NOTHING RETURNING id",
        &[&m, &sale.order_id, &sale.batch_id, &sale.quantity, &sale.phone, &SaleState::Sold.code(), &sale.now],
    )
    .await?;
    let Some(row) = inserted else {
        let r = one(
            c,
            "SELECT id, batch_id, quantity FROM card_sales WHERE merchant_id = $1 AND order_id = $2",
            &[&m, &sale.order_id],
        )
        .await?;
        return Ok(
            if r.get::<_, i64>(1) == sale.batch_id && r.get::<_, i64>(2) == sale.quantity {
                Ok((r.get(0), true))
            } else {
                Err(Refusal::OrderMismatch)
            },
        );
    };
    let id: i64 = row.get(0);
    let n = exec(
        c,
        card_move_sql(CardMove::Sell),
        &[&sale.now, &id, &sale.batch_id, &m, &sale.quantity],
    )
    .await? as i64;
    if n < sale.quantity {
        c.batch_execute("ROLLBACK TO SAVEPOINT sale")
            .await
            .map_err(map_err)?;
        return Ok(Err(Refusal::CardsOutOfStock));
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
    insert_audit(c, &audit, n).await?;
    if let Some(event) = NewEvent::cards_moved(EventType::CardsActivated, &audit, n) {
        insert_event(c, &event).await?;
    }
    if sale.send_sms {
        crate::sms::plan_sale_sms(c, sale).await?;
    }
    Ok(Ok((id, false)))
}

#[async_trait::async_trait]
impl kaquan_core::card_sale::CardSaleStore for PgStore {
    async fn sell_cards(
        &self,
        call: &ApiCall,
        sale: &NewCardSale,
    ) -> StoreResult<Called<CardSale>> {
        let m = sale.merchant_id;
        let tx = Pipelined::new(self.client().await?);
        let c = tx.client();
        let ((), claimed) = futures_util::try_join!(tx.begin(), claim_call(c, m, call, sale.now))?;
        if let Some(answer) = answered(c, claimed).await? {
            tx.finish(&answer.result).await?;
            return Ok(answer);
        }
        let outcome = take_cards(c, sale).await?;
        finish(tx, m, call, outcome).await
    }

    async fn refund_card_sale(
        &self,
        call: &ApiCall,
        refund: &RefundCardSale,
    ) -> StoreResult<Called<CardSale>> {
        let m = refund.merchant_id;
        let tx = Pipelined::new(self.client().await?);
        let c = tx.client();
        let ((), claimed) =
            futures_util::try_join!(tx.begin(), claim_call(c, m, call, refund.now))?;
        if let Some(answer) = answered(c, claimed).await? {
            tx.finish(&answer.result).await?;
            return Ok(answer);
        }
        // The sale's row is locked: two refunds at once run one after the other.
        let sale = opt(
            c,
            "SELECT id, state FROM card_sales WHERE merchant_id = $1 AND order_id = $2 FOR UPDATE",
            &[&m, &refund.order_id],
        )
        .await?;
        let outcome = match sale {
            None => Err(Refusal::SaleNotFound),
            Some(r) if r.get::<_, &str>(1) == SaleState::Refunded.code() => Ok((r.get(0), true)),
            Some(r) => {
                let id: i64 = r.get(0);
                let n = exec(c, card_move_sql(CardMove::Refund), &[&id, &m]).await? as i64;
                expect_one(
                    exec(
                        c,
                        "UPDATE card_sales SET state = $1, refunded_at = $2, n_refunded = $3 WHERE id = $4 AND state = $5",
                        &[&SaleState::Refunded.code(), &refund.now, &n, &id, &SaleState::Sold.code()],
                    )
                    .await?,
                )?;
                let audit = AuditEntry {
                    merchant_id: m,
                    actor: refund.actor.clone(),
                    action: "refund_card_sale".into(),
                    target: format!("card_sale={}", refund.order_id),
                    detail: String::new(),
                    n_affected: n,
                    created_at: refund.now,
                };
                insert_audit(c, &audit, n).await?;
                if let Some(event) = NewEvent::cards_moved(EventType::CardsDeactivated, &audit, n) {
                    insert_event(c, &event).await?;
                }
                Ok((id, false))
            }
        };
        finish(tx, m, call, outcome).await
    }

    async fn get_card_sale(
        &self,
        merchant_id: i64,
        order_id: &str,
    ) -> StoreResult<Option<CardSale>> {
        let client = self.client().await?;
        let row = opt(
            &client,
            "SELECT id FROM card_sales WHERE merchant_id = $1 AND order_id = $2",
            &[&merchant_id, &order_id],
        )
        .await?;
        match row {
            Some(r) => Ok(Some(get_sale(&client, r.get(0)).await?)),
            None => Ok(None),
        }
    }

    async fn list_card_sales(
        &self,
        merchant_id: i64,
        page: Page,
    ) -> StoreResult<(Vec<CardSale>, i64)> {
        let (rows, total) = self
            .merchant_page("card_sales", SALE_COLUMNS, merchant_id, page)
            .await?;
        let client = self.client().await?;
        let mut sales = Vec::with_capacity(rows.len());
        for row in &rows {
            let mut sale = sale_from_row(row)?;
            sale.cards = sale_cards(&client, sale.id).await?;
            sales.push(sale);
        }
        Ok((sales, total))
    }
}
