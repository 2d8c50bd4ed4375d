//! 券点: the merchants' credit accounts, their purchases, stock bought and
//! returned, and the operators. The single writer runs each job alone, so
//! the balances a job reads are the ones its guarded statements move.

use crate::coupons::{get_program, program_at, PROGRAM_COLUMNS};
use crate::events::insert_event;
use crate::sql::{decode, expect_one, filtered_page, insert_audit, map_err, merchant_page};
use crate::SqliteStore;
use kaquan_core::audit::{Actor, AuditEntry};
use kaquan_core::credit::{
    check_buy, credit_postings, format_credits, stock_return, BuyStock, CreditBalance, CreditKind,
    CreditPurchase, CreditStore, CreditTransaction, CreditTransactionKind, GrantCredits,
    MerchantCredits, PurchaseFilter, PurchaseState, StockPurchase, StockRefusal, FEN_PER_CREDIT,
    TENTHS_PER_CREDIT,
};
use kaquan_core::event::NewEvent;
use kaquan_core::store::Page;
use kaquan_core::{Conflict, StoreError, StoreResult};
use rusqlite::types::Value;
use rusqlite::{params, Connection, OptionalExtension, Row};

const TRANSACTION_COLUMNS: &str =
    "id, merchant_id, kind, holder, amount_tenths, balance_after_tenths, \
    program_id, purchase_id, reason, created_by, created_at";

fn transaction_from_row(r: &Row) -> rusqlite::Result<CreditTransaction> {
    let kind: String = r.get(2)?;
    let holder: String = r.get(3)?;
    Ok(CreditTransaction {
        id: r.get(0)?,
        merchant_id: r.get(1)?,
        kind: decode(CreditTransactionKind::parse(&kind), 2, "credit kind")?,
        holder: decode(CreditKind::parse(&holder), 3, "credit holder")?,
        amount_tenths: r.get(4)?,
        balance_after_tenths: r.get(5)?,
        program_id: r.get(6)?,
        purchase_id: r.get(7)?,
        reason: r.get(8)?,
        created_by: r.get(9)?,
        created_at: r.get(10)?,
    })
}

const PURCHASE_COLUMNS: &str =
    "id, merchant_id, credits, amount_fen, state, requested_by, requested_at, decided_by, decided_at";

fn purchase_from_row(r: &Row) -> rusqlite::Result<CreditPurchase> {
    let state: String = r.get(4)?;
    Ok(CreditPurchase {
        id: r.get(0)?,
        merchant_id: r.get(1)?,
        credits: r.get(2)?,
        amount_fen: r.get(3)?,
        state: decode(PurchaseState::parse(&state), 4, "purchase state")?,
        requested_by: r.get(5)?,
        requested_at: r.get(6)?,
        decided_by: r.get(7)?,
        decided_at: r.get(8)?,
    })
}

const STOCK_PURCHASE_COLUMNS: &str = "id, merchant_id, program_id, units, unit_price_tenths, \
    free_tenths, paid_tenths, created_by, created_at";

fn stock_purchase_from_row(r: &Row) -> rusqlite::Result<StockPurchase> {
    Ok(StockPurchase {
        id: r.get(0)?,
        merchant_id: r.get(1)?,
        program_id: r.get(2)?,
        units: r.get(3)?,
        unit_price_tenths: r.get(4)?,
        free_tenths: r.get(5)?,
        paid_tenths: r.get(6)?,
        created_by: r.get(7)?,
        created_at: r.get(8)?,
    })
}

fn balance_of(conn: &Connection, merchant_id: i64) -> StoreResult<CreditBalance> {
    let mut balance = CreditBalance {
        merchant_id,
        ..CreditBalance::default()
    };
    let mut stmt = conn
        .prepare_cached(
            "SELECT kind, balance FROM credit_accounts WHERE merchant_id = ?1 AND kind IN ('free', 'paid')",
        )
        .map_err(map_err)?;
    let rows = stmt
        .query_map([merchant_id], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })
        .map_err(map_err)?;
    for row in rows {
        match row.map_err(map_err)? {
            (kind, tenths) if kind == "free" => balance.free_tenths = tenths,
            (_, tenths) => balance.paid_tenths = tenths,
        }
    }
    Ok(balance)
}

/// What a credit transaction refers to besides its merchant.
#[derive(Default)]
struct Refs {
    program_id: Option<i64>,
    purchase_id: Option<i64>,
    stock_purchase_id: Option<i64>,
    reason: String,
}

/// Moves `delta` tenths into `holder`: the guarded balance, the
/// transaction, its two postings and the event. The caller has checked the
/// balance; a move that would still go below zero is a broken invariant.
fn post(
    conn: &Connection,
    merchant_id: i64,
    (kind, holder, delta): (CreditTransactionKind, CreditKind, i64),
    refs: Refs,
    actor: &Actor,
    now: i64,
) -> StoreResult<CreditTransaction> {
    crate::sql::cached_execute(
        conn,
        "INSERT INTO credit_accounts (merchant_id, kind, balance) VALUES (?1, 'free', 0), (?1, 'paid', 0), \
         (?1, 'granted', NULL), (?1, 'sold', NULL), (?1, 'stock', NULL) ON CONFLICT (merchant_id, kind) DO NOTHING",
        [merchant_id],
    )
    .map_err(map_err)?;
    let accounts = credit_postings(kind, holder, delta);
    let (holder_id, balance_after): (i64, i64) = crate::sql::cached_row(
        conn,
        "UPDATE credit_accounts SET balance = balance + ?1 WHERE merchant_id = ?2 AND kind = ?3 \
         AND balance + ?1 >= 0 RETURNING id, balance",
        params![delta, merchant_id, holder.code()],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()
    .map_err(map_err)?
    .ok_or_else(|| StoreError::Backend("a credit balance would fall below zero".into()))?;
    let counter_id: i64 = crate::sql::cached_row(
        conn,
        "SELECT id FROM credit_accounts WHERE merchant_id = ?1 AND kind = ?2",
        params![merchant_id, accounts[1].0.code()],
        |r| r.get(0),
    )
    .map_err(map_err)?;
    let id: i64 = crate::sql::cached_row(
        conn,
        "INSERT INTO credit_transactions (merchant_id, kind, holder, amount_tenths, balance_after_tenths, \
         program_id, purchase_id, stock_purchase_id, reason, created_by, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) RETURNING id",
        params![
            merchant_id,
            kind.code(),
            holder.code(),
            delta,
            balance_after,
            refs.program_id,
            refs.purchase_id,
            refs.stock_purchase_id,
            refs.reason,
            actor.label,
            now
        ],
        |r| r.get(0),
    )
    .map_err(map_err)?;
    for (account_id, amount) in [(holder_id, accounts[0].1), (counter_id, accounts[1].1)] {
        crate::sql::cached_execute(
            conn,
            "INSERT INTO credit_postings (transaction_id, account_id, amount) VALUES (?1, ?2, ?3)",
            params![id, account_id, amount],
        )
        .map_err(map_err)?;
    }
    let transaction = CreditTransaction {
        id,
        merchant_id,
        kind,
        holder,
        amount_tenths: delta,
        balance_after_tenths: balance_after,
        program_id: refs.program_id,
        purchase_id: refs.purchase_id,
        reason: refs.reason,
        created_by: actor.label.clone(),
        created_at: now,
    };
    insert_event(conn, &NewEvent::credits(&transaction))?;
    Ok(transaction)
}

fn get_purchase(conn: &Connection, merchant_id: i64, id: i64) -> StoreResult<CreditPurchase> {
    conn.query_row(
        &format!(
            "SELECT {PURCHASE_COLUMNS} FROM credit_purchases WHERE id = ?1 AND merchant_id = ?2"
        ),
        params![id, merchant_id],
        purchase_from_row,
    )
    .map_err(map_err)
}

fn decide_purchase(
    conn: &Connection,
    (merchant_id, purchase_id, confirm): (i64, i64, bool),
    actor: &Actor,
    now: i64,
) -> StoreResult<Option<CreditPurchase>> {
    let to = if confirm {
        PurchaseState::Confirmed
    } else {
        PurchaseState::Cancelled
    };
    let n = conn
        .execute(
            "UPDATE credit_purchases SET state = ?1, decided_by = ?2, decided_at = ?3 \
             WHERE id = ?4 AND merchant_id = ?5 AND state = 'requested'",
            params![to.code(), actor.label, now, purchase_id, merchant_id],
        )
        .map_err(map_err)?;
    if n == 0 {
        return Ok(None);
    }
    let purchase = get_purchase(conn, merchant_id, purchase_id)?;
    if confirm {
        let refs = Refs {
            purchase_id: Some(purchase_id),
            reason: format!("¥{}", purchase.credits),
            ..Refs::default()
        };
        let moved = (
            CreditTransactionKind::Purchase,
            CreditKind::Paid,
            purchase.credits * TENTHS_PER_CREDIT,
        );
        post(conn, merchant_id, moved, refs, actor, now)?;
    }
    let action = if confirm {
        "confirm_credit_purchase"
    } else {
        "cancel_credit_purchase"
    };
    let detail = format!(
        "credits={} amount_fen={}",
        purchase.credits, purchase.amount_fen
    );
    let target = format!("credit_purchase={purchase_id}");
    let audit = AuditEntry::new(merchant_id, actor, action, target, detail, now);
    insert_audit(conn, &audit, 1).map_err(map_err)?;
    insert_event(conn, &NewEvent::credit_purchase(&purchase, now))?;
    Ok(Some(purchase))
}

fn buy_stock_job(
    conn: &Connection,
    buy: &BuyStock,
) -> StoreResult<Result<StockPurchase, StockRefusal>> {
    let program = conn
        .query_row(
            &format!("SELECT {PROGRAM_COLUMNS}, 0, 0 FROM coupon_programs p WHERE p.id = ?1 AND p.merchant_id = ?2"),
            params![buy.program_id, buy.merchant_id],
            |r| program_at(r, 0),
        )
        .optional()
        .map_err(map_err)?;
    let held = balance_of(conn, buy.merchant_id)?;
    let (price, (free, paid)) = match check_buy(program.as_ref(), buy, &held) {
        Ok(priced) => priced,
        Err(refusal) => return Ok(Err(refusal)),
    };
    expect_one(
        conn.execute(
            "UPDATE coupon_programs SET quantity = quantity + ?1 WHERE id = ?2 AND quantity = ?3",
            params![buy.units, buy.program_id, program.map_or(0, |p| p.quantity)],
        )
        .map_err(map_err)?,
    )?;
    let id: i64 = conn
        .query_row(
            "INSERT INTO coupon_stock_purchases (merchant_id, program_id, units, unit_price_tenths, free_tenths, \
             paid_tenths, created_by, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) RETURNING id",
            params![buy.merchant_id, buy.program_id, buy.units, price, free, paid, buy.actor.label, buy.now],
            |r| r.get(0),
        )
        .map_err(map_err)?;
    for (holder, tenths) in [(CreditKind::Free, free), (CreditKind::Paid, paid)] {
        if tenths > 0 {
            let refs = Refs {
                program_id: Some(buy.program_id),
                stock_purchase_id: Some(id),
                reason: format!("+{} 库存", buy.units),
                ..Refs::default()
            };
            let moved = (CreditTransactionKind::BuyStock, holder, -tenths);
            post(conn, buy.merchant_id, moved, refs, &buy.actor, buy.now)?;
        }
    }
    let purchase = StockPurchase {
        id,
        merchant_id: buy.merchant_id,
        program_id: buy.program_id,
        units: buy.units,
        unit_price_tenths: price,
        free_tenths: free,
        paid_tenths: paid,
        created_by: buy.actor.label.clone(),
        created_at: buy.now,
    };
    insert_audit(conn, &buy.audit(&purchase), 1).map_err(map_err)?;
    Ok(Ok(purchase))
}

fn stock_purchases(conn: &Connection, program_id: i64) -> StoreResult<Vec<StockPurchase>> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {STOCK_PURCHASE_COLUMNS} FROM coupon_stock_purchases WHERE program_id = ?1 ORDER BY id"
        ))
        .map_err(map_err)?;
    let rows = stmt
        .query_map([program_id], stock_purchase_from_row)
        .map_err(map_err)?;
    rows.collect::<Result<_, _>>().map_err(map_err)
}

/// Settles one expired shared program: its unused stock goes, and the
/// credits it cost come back to the kinds they came from.
fn return_stock(conn: &Connection, merchant_id: i64, program_id: i64, now: i64) -> StoreResult<()> {
    let program = get_program(conn, merchant_id, program_id)?;
    let unused = program.stock_left();
    expect_one(
        conn.execute(
            "UPDATE coupon_programs SET quantity = n_claimed, stock_returned_at = ?1 \
             WHERE id = ?2 AND stock_returned_at IS NULL AND quantity - n_claimed = ?3",
            params![now, program_id, unused],
        )
        .map_err(map_err)?,
    )?;
    let (free, paid) = stock_return(&stock_purchases(conn, program_id)?, unused);
    let system = Actor::system();
    for (holder, tenths) in [(CreditKind::Free, free), (CreditKind::Paid, paid)] {
        if tenths > 0 {
            let refs = Refs {
                program_id: Some(program_id),
                reason: format!("{unused} 张过期库存"),
                ..Refs::default()
            };
            let moved = (CreditTransactionKind::ReturnStock, holder, tenths);
            post(conn, merchant_id, moved, refs, &system, now)?;
        }
    }
    let detail = format!(
        "units={unused} free={} paid={}",
        format_credits(free),
        format_credits(paid)
    );
    let target = format!("coupon_program={program_id}");
    let audit = AuditEntry::new(
        merchant_id,
        &system,
        "return_coupon_stock",
        target,
        detail,
        now,
    );
    insert_audit(conn, &audit, 1).map_err(map_err)?;
    Ok(())
}

/// The shared programs whose stock is due back: closed, not yet settled.
const DUE_FOR_RETURN: &str = "SELECT id, merchant_id FROM coupon_programs \
    WHERE shared = 1 AND stock_returned_at IS NULL AND quantity > 0 \
    AND (state = 'ended' OR end_at < ?1 OR hard_end < ?1) ORDER BY id LIMIT ?2";

#[async_trait::async_trait]
impl CreditStore for SqliteStore {
    async fn get_credit_balance(&self, merchant_id: i64) -> StoreResult<CreditBalance> {
        self.read(move |conn| balance_of(conn, merchant_id)).await
    }

    async fn list_credit_transactions(
        &self,
        merchant_id: i64,
        page: Page,
    ) -> StoreResult<(Vec<CreditTransaction>, i64)> {
        self.read(move |conn| {
            merchant_page(
                conn,
                "credit_transactions",
                TRANSACTION_COLUMNS,
                merchant_id,
                page,
                transaction_from_row,
            )
        })
        .await
    }

    async fn grant_credits(&self, grant: &GrantCredits) -> StoreResult<CreditTransaction> {
        let grant = grant.clone();
        self.write(move |conn| {
            let free = balance_of(conn, grant.merchant_id)?.free_tenths;
            if grant.expected_free_tenths.is_some_and(|seen| seen != free) {
                return Err(StoreError::Conflict(Conflict::CreditsChanged));
            }
            let refs = Refs {
                reason: grant.reason.clone(),
                ..Refs::default()
            };
            let moved = (CreditTransactionKind::Grant, CreditKind::Free, grant.tenths);
            let t = post(
                conn,
                grant.merchant_id,
                moved,
                refs,
                &grant.actor,
                grant.now,
            )?;
            let detail = format!(
                "credits={} reason={}",
                format_credits(grant.tenths),
                grant.reason
            );
            let audit = AuditEntry::new(
                grant.merchant_id,
                &grant.actor,
                "grant_credits",
                String::new(),
                detail,
                grant.now,
            );
            insert_audit(conn, &audit, 1).map_err(map_err)?;
            Ok(t)
        })
        .await
    }

    async fn request_credit_purchase(
        &self,
        merchant_id: i64,
        credits: i64,
        actor: &Actor,
        now: i64,
    ) -> StoreResult<CreditPurchase> {
        let actor = actor.clone();
        self.write(move |conn| {
            let id: i64 = conn
                .query_row(
                    "INSERT INTO credit_purchases (merchant_id, credits, amount_fen, state, requested_by, requested_at) \
                     VALUES (?1, ?2, ?3, 'requested', ?4, ?5) RETURNING id",
                    params![merchant_id, credits, credits * FEN_PER_CREDIT, actor.label, now],
                    |r| r.get(0),
                )
                .map_err(map_err)?;
            let purchase = get_purchase(conn, merchant_id, id)?;
            let detail = format!("credits={credits}");
            let audit = AuditEntry::new(merchant_id, &actor, "request_credit_purchase", format!("credit_purchase={id}"), detail, now);
            insert_audit(conn, &audit, 1).map_err(map_err)?;
            insert_event(conn, &NewEvent::credit_purchase(&purchase, now))?;
            Ok(purchase)
        })
        .await
    }

    async fn decide_credit_purchase(
        &self,
        merchant_id: i64,
        purchase_id: i64,
        confirm: bool,
        actor: &Actor,
        now: i64,
    ) -> StoreResult<Option<CreditPurchase>> {
        let actor = actor.clone();
        self.write(move |conn| {
            decide_purchase(conn, (merchant_id, purchase_id, confirm), &actor, now)
        })
        .await
    }

    async fn list_credit_purchases(
        &self,
        filter: &PurchaseFilter,
        page: Page,
    ) -> StoreResult<(Vec<CreditPurchase>, i64)> {
        let filter = filter.clone();
        self.read(move |conn| {
            let mut condition = "1 = 1".to_owned();
            let mut values = Vec::new();
            if let Some(merchant_id) = filter.merchant_id {
                condition.push_str(" AND merchant_id = ?");
                values.push(Value::Integer(merchant_id));
            }
            if let Some(state) = filter.state {
                condition.push_str(" AND state = ?");
                values.push(Value::Text(state.code().into()));
            }
            filtered_page(
                conn,
                ("credit_purchases", PURCHASE_COLUMNS, "id DESC"),
                &condition,
                values,
                page,
                purchase_from_row,
            )
        })
        .await
    }

    async fn list_merchant_credits(&self, page: Page) -> StoreResult<(Vec<MerchantCredits>, i64)> {
        self.read(move |conn| {
            filtered_page(
                conn,
                (
                    "merchants m",
                    "m.id, m.name, \
                     COALESCE((SELECT balance FROM credit_accounts WHERE merchant_id = m.id AND kind = 'free'), 0), \
                     COALESCE((SELECT balance FROM credit_accounts WHERE merchant_id = m.id AND kind = 'paid'), 0), \
                     (SELECT count(*) FROM credit_purchases WHERE merchant_id = m.id AND state = 'requested')",
                    "m.id",
                ),
                "1 = 1",
                vec![],
                page,
                |r| {
                    Ok(MerchantCredits {
                        merchant_id: r.get(0)?,
                        merchant_name: r.get(1)?,
                        balance: CreditBalance {
                            merchant_id: r.get(0)?,
                            free_tenths: r.get(2)?,
                            paid_tenths: r.get(3)?,
                        },
                        n_requested: r.get(4)?,
                    })
                },
            )
        })
        .await
    }

    async fn buy_coupon_stock(
        &self,
        buy: &BuyStock,
    ) -> StoreResult<Result<StockPurchase, StockRefusal>> {
        let buy = buy.clone();
        self.write(move |conn| buy_stock_job(conn, &buy)).await
    }

    async fn list_stock_purchases(
        &self,
        merchant_id: i64,
        program_id: i64,
    ) -> StoreResult<Vec<StockPurchase>> {
        self.read(move |conn| {
            get_program(conn, merchant_id, program_id)?;
            stock_purchases(conn, program_id)
        })
        .await
    }

    async fn return_expired_stock(&self, now: i64, limit: i64) -> StoreResult<i64> {
        self.write(move |conn| {
            let due: Vec<(i64, i64)> = {
                let mut stmt = conn.prepare_cached(DUE_FOR_RETURN).map_err(map_err)?;
                let rows = stmt
                    .query_map(params![now, limit], |r| Ok((r.get(0)?, r.get(1)?)))
                    .map_err(map_err)?;
                rows.collect::<Result<_, _>>().map_err(map_err)?
            };
            for (program_id, merchant_id) in &due {
                return_stock(conn, *merchant_id, *program_id, now)?;
            }
            Ok(due.len() as i64)
        })
        .await
    }

    async fn is_operator(&self, staff_id: i64) -> StoreResult<bool> {
        self.read(move |conn| {
            conn.query_row(
                "SELECT 1 FROM operators WHERE staff_id = ?1",
                [staff_id],
                |_| Ok(()),
            )
            .optional()
            .map(|found| found.is_some())
            .map_err(map_err)
        })
        .await
    }

    async fn set_operator(
        &self,
        staff_id: i64,
        operator: bool,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let audit = audit.clone();
        self.write(move |conn| {
            if operator {
                conn.execute(
                    "INSERT INTO operators (staff_id, created_at) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                    params![staff_id, audit.created_at],
                )
            } else {
                conn.execute("DELETE FROM operators WHERE staff_id = ?1", [staff_id])
            }
            .map_err(map_err)?;
            insert_audit(conn, &audit, 1).map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn list_operators(&self) -> StoreResult<Vec<i64>> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare("SELECT staff_id FROM operators ORDER BY staff_id")
                .map_err(map_err)?;
            let rows = stmt.query_map([], |r| r.get(0)).map_err(map_err)?;
            rows.collect::<Result<_, _>>().map_err(map_err)
        })
        .await
    }
}
