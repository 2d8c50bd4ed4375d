//! 券点: the merchants' credit accounts, their purchases, stock bought and
//! returned, and the operators.
//!
//! Racing moves of one merchant's credits hold on any number of nodes
//! because each transaction first locks the merchant's two holder rows
//! (free, then paid) and only then the program's stock row; the split
//! between free and paid is computed on the locked balances, and each
//! balance still moves by one guarded statement.

use crate::coupons::{program_at, PROGRAM_COLUMNS, PROGRAM_FROM};
use crate::events::insert_event;
use crate::sql::{all, exec, expect_one, filtered_page, insert_audit, map_err, one, opt, parse_or};
use crate::PgStore;
use deadpool_postgres::GenericClient;
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
use tokio_postgres::Row;

const TRANSACTION_COLUMNS: &str =
    "id, merchant_id, kind, holder, amount_tenths, balance_after_tenths, \
    program_id, purchase_id, reason, created_by, created_at";

fn transaction_from_row(r: &Row) -> StoreResult<CreditTransaction> {
    Ok(CreditTransaction {
        id: r.get(0),
        merchant_id: r.get(1),
        kind: parse_or(CreditTransactionKind::parse(r.get(2)), "credit kind")?,
        holder: parse_or(CreditKind::parse(r.get(3)), "credit holder")?,
        amount_tenths: r.get(4),
        balance_after_tenths: r.get(5),
        program_id: r.get(6),
        purchase_id: r.get(7),
        reason: r.get(8),
        created_by: r.get(9),
        created_at: r.get(10),
    })
}

const PURCHASE_COLUMNS: &str =
    "id, merchant_id, credits, amount_fen, state, requested_by, requested_at, decided_by, decided_at";

fn purchase_from_row(r: &Row) -> StoreResult<CreditPurchase> {
    Ok(CreditPurchase {
        id: r.get(0),
        merchant_id: r.get(1),
        credits: r.get(2),
        amount_fen: r.get(3),
        state: parse_or(PurchaseState::parse(r.get(4)), "purchase state")?,
        requested_by: r.get(5),
        requested_at: r.get(6),
        decided_by: r.get(7),
        decided_at: r.get(8),
    })
}

const STOCK_PURCHASE_COLUMNS: &str = "id, merchant_id, program_id, units, unit_price_tenths, \
    free_tenths, paid_tenths, created_by, created_at";

fn stock_purchase_from_row(r: &Row) -> StockPurchase {
    StockPurchase {
        id: r.get(0),
        merchant_id: r.get(1),
        program_id: r.get(2),
        units: r.get(3),
        unit_price_tenths: r.get(4),
        free_tenths: r.get(5),
        paid_tenths: r.get(6),
        created_by: r.get(7),
        created_at: r.get(8),
    }
}

/// Makes sure the merchant's five accounts exist, then locks its two
/// holders (free before paid, in every transaction) and reads them.
async fn lock_balance(c: &impl GenericClient, merchant_id: i64) -> StoreResult<CreditBalance> {
    exec(
        c,
        "INSERT INTO credit_accounts (merchant_id, kind, balance) VALUES ($1, 'free', 0), ($1, 'paid', 0), \
         ($1, 'granted', NULL), ($1, 'sold', NULL), ($1, 'stock', NULL) ON CONFLICT (merchant_id, kind) DO NOTHING",
        &[&merchant_id],
    )
    .await?;
    let rows = all(
        c,
        "SELECT kind, balance FROM credit_accounts WHERE merchant_id = $1 AND kind IN ('free', 'paid') \
         ORDER BY kind FOR UPDATE",
        &[&merchant_id],
    )
    .await?;
    Ok(balance_from_rows(merchant_id, &rows))
}

fn balance_from_rows(merchant_id: i64, rows: &[Row]) -> CreditBalance {
    let mut balance = CreditBalance {
        merchant_id,
        ..CreditBalance::default()
    };
    for row in rows {
        match row.get::<_, &str>(0) {
            "free" => balance.free_tenths = row.get(1),
            _ => balance.paid_tenths = row.get(1),
        }
    }
    balance
}

/// What a credit transaction refers to besides its merchant.
#[derive(Default)]
struct Refs {
    program_id: Option<i64>,
    purchase_id: Option<i64>,
    stock_purchase_id: Option<i64>,
    reason: String,
}

/// Moves `delta` tenths into `holder` on a transaction that holds the
/// merchant's holder rows ([`lock_balance`]): the guarded balance, the
/// transaction, its two postings and the event.
async fn post(
    c: &impl GenericClient,
    merchant_id: i64,
    (kind, holder, delta): (CreditTransactionKind, CreditKind, i64),
    refs: Refs,
    actor: &Actor,
    now: i64,
) -> StoreResult<CreditTransaction> {
    let accounts = credit_postings(kind, holder, delta);
    let moved = opt(
        c,
        "UPDATE credit_accounts SET balance = balance + $1 WHERE merchant_id = $2 AND kind = $3 \
         AND balance + $1 >= 0 RETURNING id, balance",
        &[&delta, &merchant_id, &holder.code()],
    )
    .await?
    .ok_or_else(|| StoreError::Backend("a credit balance would fall below zero".into()))?;
    let (holder_id, balance_after): (i64, i64) = (moved.get(0), moved.get(1));
    let row = one(
        c,
        "WITH t AS (INSERT INTO credit_transactions (merchant_id, kind, holder, amount_tenths, balance_after_tenths, \
         program_id, purchase_id, stock_purchase_id, reason, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id), \
         counter AS (SELECT id FROM credit_accounts WHERE merchant_id = $1 AND kind = $12), \
         postings AS (INSERT INTO credit_postings (transaction_id, account_id, amount, merchant_id) \
         SELECT t.id, $13, $4, $1 FROM t UNION ALL SELECT t.id, counter.id, -$4, $1 FROM t, counter RETURNING 1) \
         SELECT id, (SELECT count(*) FROM postings) FROM t",
        &[
            &merchant_id,
            &kind.code(),
            &holder.code(),
            &delta,
            &balance_after,
            &refs.program_id,
            &refs.purchase_id,
            &refs.stock_purchase_id,
            &refs.reason,
            &actor.label,
            &now,
            &accounts[1].0.code(),
            &holder_id,
        ],
    )
    .await?;
    if row.get::<_, i64>(1) != 2 {
        return Err(StoreError::Backend(
            "a credit transaction without its two postings".into(),
        ));
    }
    let transaction = CreditTransaction {
        id: row.get(0),
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
    insert_event(c, &NewEvent::credits(&transaction)).await?;
    Ok(transaction)
}

async fn get_purchase(
    c: &impl GenericClient,
    merchant_id: i64,
    id: i64,
) -> StoreResult<CreditPurchase> {
    let sql = format!(
        "SELECT {PURCHASE_COLUMNS} FROM credit_purchases WHERE id = $1 AND merchant_id = $2"
    );
    match opt(c, &sql, &[&id, &merchant_id]).await? {
        Some(row) => purchase_from_row(&row),
        None => Err(StoreError::NotFound),
    }
}

async fn decide_purchase(
    c: &impl GenericClient,
    (merchant_id, purchase_id, confirm): (i64, i64, bool),
    actor: &Actor,
    now: i64,
) -> StoreResult<Option<CreditPurchase>> {
    let to = if confirm {
        PurchaseState::Confirmed
    } else {
        PurchaseState::Cancelled
    };
    if confirm {
        lock_balance(c, merchant_id).await?;
    }
    let n = exec(
        c,
        "UPDATE credit_purchases SET state = $1, decided_by = $2, decided_at = $3 \
         WHERE id = $4 AND merchant_id = $5 AND state = 'requested'",
        &[&to.code(), &actor.label, &now, &purchase_id, &merchant_id],
    )
    .await?;
    if n == 0 {
        return Ok(None);
    }
    let purchase = get_purchase(c, merchant_id, purchase_id).await?;
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
        post(c, merchant_id, moved, refs, actor, now).await?;
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
    insert_audit(c, &audit, 1).await?;
    insert_event(c, &NewEvent::credit_purchase(&purchase, now)).await?;
    Ok(Some(purchase))
}

async fn buy_stock_in(
    c: &impl GenericClient,
    buy: &BuyStock,
) -> StoreResult<Result<StockPurchase, StockRefusal>> {
    let held = lock_balance(c, buy.merchant_id).await?;
    let sql = format!(
        "SELECT {PROGRAM_COLUMNS}, 0::bigint, 0::bigint FROM {PROGRAM_FROM} WHERE p.id = $1 AND p.merchant_id = $2 FOR UPDATE OF s"
    );
    let program = match opt(c, &sql, &[&buy.program_id, &buy.merchant_id]).await? {
        Some(row) => Some(program_at(&row, 0)?),
        None => None,
    };
    let (price, (free, paid)) = match check_buy(program.as_ref(), buy, &held) {
        Ok(priced) => priced,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let quantity = program.map_or(0, |p| p.quantity);
    expect_one(
        exec(
            c,
            "UPDATE coupon_stock SET quantity = quantity + $1 WHERE program_id = $2 AND quantity = $3",
            &[&buy.units, &buy.program_id, &quantity],
        )
        .await?,
    )?;
    let id: i64 = one(
        c,
        "INSERT INTO coupon_stock_purchases (merchant_id, program_id, units, unit_price_tenths, free_tenths, \
         paid_tenths, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        &[&buy.merchant_id, &buy.program_id, &buy.units, &price, &free, &paid, &buy.actor.label, &buy.now],
    )
    .await?
    .get(0);
    for (holder, tenths) in [(CreditKind::Free, free), (CreditKind::Paid, paid)] {
        if tenths > 0 {
            let refs = Refs {
                program_id: Some(buy.program_id),
                stock_purchase_id: Some(id),
                reason: format!("+{} 库存", buy.units),
                ..Refs::default()
            };
            let moved = (CreditTransactionKind::BuyStock, holder, -tenths);
            post(c, buy.merchant_id, moved, refs, &buy.actor, buy.now).await?;
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
    insert_audit(c, &buy.audit(&purchase), 1).await?;
    Ok(Ok(purchase))
}

async fn stock_purchases(
    c: &impl GenericClient,
    program_id: i64,
) -> StoreResult<Vec<StockPurchase>> {
    let sql = format!(
        "SELECT {STOCK_PURCHASE_COLUMNS} FROM coupon_stock_purchases WHERE program_id = $1 ORDER BY id"
    );
    Ok(all(c, &sql, &[&program_id])
        .await?
        .iter()
        .map(stock_purchase_from_row)
        .collect())
}

/// Settles one expired shared program, unless another node did: its unused
/// stock goes, and the credits it cost come back to the kinds they came from.
async fn return_stock(
    c: &impl GenericClient,
    merchant_id: i64,
    program_id: i64,
    now: i64,
) -> StoreResult<()> {
    lock_balance(c, merchant_id).await?;
    let settled = opt(
        c,
        "WITH p AS (UPDATE coupon_programs SET stock_returned_at = $1 WHERE id = $2 AND stock_returned_at IS NULL RETURNING id), \
         s AS (SELECT quantity - n_claimed AS unused FROM coupon_stock WHERE program_id = $2 FOR UPDATE) \
         SELECT s.unused FROM p, s",
        &[&now, &program_id],
    )
    .await?;
    let Some(row) = settled else {
        return Ok(());
    };
    let unused: i64 = row.get(0);
    expect_one(
        exec(
            c,
            "UPDATE coupon_stock SET quantity = n_claimed WHERE program_id = $1 AND quantity - n_claimed = $2",
            &[&program_id, &unused],
        )
        .await?,
    )?;
    let (free, paid) = stock_return(&stock_purchases(c, program_id).await?, unused);
    let system = Actor::system();
    for (holder, tenths) in [(CreditKind::Free, free), (CreditKind::Paid, paid)] {
        if tenths > 0 {
            let refs = Refs {
                program_id: Some(program_id),
                reason: format!("{unused} 张过期库存"),
                ..Refs::default()
            };
            let moved = (CreditTransactionKind::ReturnStock, holder, tenths);
            post(c, merchant_id, moved, refs, &system, now).await?;
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
    insert_audit(c, &audit, 1).await?;
    Ok(())
}

/// The shared programs whose stock is due back: closed, not yet settled.
const DUE_FOR_RETURN: &str =
    "SELECT p.id, p.merchant_id FROM coupon_programs p JOIN coupon_stock s ON s.program_id = p.id \
    WHERE p.shared AND p.stock_returned_at IS NULL AND s.quantity > 0 \
    AND (p.state = 'ended' OR p.end_at < $1 OR p.hard_end < $1) ORDER BY p.id LIMIT $2";

#[async_trait::async_trait]
impl CreditStore for PgStore {
    async fn get_credit_balance(&self, merchant_id: i64) -> StoreResult<CreditBalance> {
        let rows = all(
            &self.client().await?,
            "SELECT kind, balance FROM credit_accounts WHERE merchant_id = $1 AND kind IN ('free', 'paid')",
            &[&merchant_id],
        )
        .await?;
        Ok(balance_from_rows(merchant_id, &rows))
    }

    async fn list_credit_transactions(
        &self,
        merchant_id: i64,
        page: Page,
    ) -> StoreResult<(Vec<CreditTransaction>, i64)> {
        let (rows, total) = self
            .merchant_page(
                "credit_transactions",
                TRANSACTION_COLUMNS,
                merchant_id,
                page,
            )
            .await?;
        let items = rows
            .iter()
            .map(transaction_from_row)
            .collect::<StoreResult<_>>()?;
        Ok((items, total))
    }

    async fn grant_credits(&self, grant: &GrantCredits) -> StoreResult<CreditTransaction> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let free = lock_balance(&tx, grant.merchant_id).await?.free_tenths;
        if grant.expected_free_tenths.is_some_and(|seen| seen != free) {
            return Err(StoreError::Conflict(Conflict::CreditsChanged));
        }
        let refs = Refs {
            reason: grant.reason.clone(),
            ..Refs::default()
        };
        let moved = (CreditTransactionKind::Grant, CreditKind::Free, grant.tenths);
        let t = post(&tx, grant.merchant_id, moved, refs, &grant.actor, grant.now).await?;
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
        insert_audit(&tx, &audit, 1).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(t)
    }

    async fn request_credit_purchase(
        &self,
        merchant_id: i64,
        credits: i64,
        actor: &Actor,
        now: i64,
    ) -> StoreResult<CreditPurchase> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let id: i64 = one(
            &tx,
            "INSERT INTO credit_purchases (merchant_id, credits, amount_fen, state, requested_by, requested_at) \
             VALUES ($1, $2, $3, 'requested', $4, $5) RETURNING id",
            &[&merchant_id, &credits, &(credits * FEN_PER_CREDIT), &actor.label, &now],
        )
        .await?
        .get(0);
        let purchase = get_purchase(&tx, merchant_id, id).await?;
        let detail = format!("credits={credits}");
        let audit = AuditEntry::new(
            merchant_id,
            actor,
            "request_credit_purchase",
            format!("credit_purchase={id}"),
            detail,
            now,
        );
        insert_audit(&tx, &audit, 1).await?;
        insert_event(&tx, &NewEvent::credit_purchase(&purchase, now)).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(purchase)
    }

    async fn decide_credit_purchase(
        &self,
        merchant_id: i64,
        purchase_id: i64,
        confirm: bool,
        actor: &Actor,
        now: i64,
    ) -> StoreResult<Option<CreditPurchase>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let decided = decide_purchase(&tx, (merchant_id, purchase_id, confirm), actor, now).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(decided)
    }

    async fn list_credit_purchases(
        &self,
        filter: &PurchaseFilter,
        page: Page,
    ) -> StoreResult<(Vec<CreditPurchase>, i64)> {
        let mut condition = "TRUE".to_owned();
        let mut params: crate::sql::Params = Vec::new();
        if let Some(merchant_id) = filter.merchant_id {
            params.push(Box::new(merchant_id));
            condition.push_str(&format!(" AND merchant_id = ${}", params.len()));
        }
        if let Some(state) = filter.state {
            params.push(Box::new(state.code()));
            condition.push_str(&format!(" AND state = ${}", params.len()));
        }
        let what = ("credit_purchases", PURCHASE_COLUMNS, "id DESC");
        let (rows, total) =
            filtered_page(&self.client().await?, what, &condition, params, page).await?;
        let items = rows
            .iter()
            .map(purchase_from_row)
            .collect::<StoreResult<_>>()?;
        Ok((items, total))
    }

    async fn list_merchant_credits(&self, page: Page) -> StoreResult<(Vec<MerchantCredits>, i64)> {
        let what = (
            "merchants m",
            "m.id, m.name, \
             COALESCE((SELECT balance FROM credit_accounts WHERE merchant_id = m.id AND kind = 'free'), 0), \
             COALESCE((SELECT balance FROM credit_accounts WHERE merchant_id = m.id AND kind = 'paid'), 0), \
             (SELECT count(*) FROM credit_purchases WHERE merchant_id = m.id AND state = 'requested')",
            "m.id",
        );
        let (rows, total) =
            filtered_page(&self.client().await?, what, "TRUE", Vec::new(), page).await?;
        let items = rows
            .iter()
            .map(|r| MerchantCredits {
                merchant_id: r.get(0),
                merchant_name: r.get(1),
                balance: CreditBalance {
                    merchant_id: r.get(0),
                    free_tenths: r.get(2),
                    paid_tenths: r.get(3),
                },
                n_requested: r.get(4),
            })
            .collect();
        Ok((items, total))
    }

    async fn buy_coupon_stock(
        &self,
        buy: &BuyStock,
    ) -> StoreResult<Result<StockPurchase, StockRefusal>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let bought = buy_stock_in(&tx, buy).await?;
        if bought.is_ok() {
            tx.commit().await.map_err(map_err)?;
        } else {
            tx.rollback().await.map_err(map_err)?;
        }
        Ok(bought)
    }

    async fn list_stock_purchases(
        &self,
        merchant_id: i64,
        program_id: i64,
    ) -> StoreResult<Vec<StockPurchase>> {
        let client = self.client().await?;
        crate::coupons::get_program(&client, merchant_id, program_id).await?;
        stock_purchases(&client, program_id).await
    }

    async fn return_expired_stock(&self, now: i64, limit: i64) -> StoreResult<i64> {
        let mut client = self.client().await?;
        let due = all(&client, DUE_FOR_RETURN, &[&now, &limit]).await?;
        for row in &due {
            let (program_id, merchant_id): (i64, i64) = (row.get(0), row.get(1));
            let tx = client.transaction().await.map_err(map_err)?;
            return_stock(&tx, merchant_id, program_id, now).await?;
            tx.commit().await.map_err(map_err)?;
        }
        Ok(due.len() as i64)
    }

    async fn is_operator(&self, staff_id: i64) -> StoreResult<bool> {
        Ok(opt(
            &self.client().await?,
            "SELECT 1 FROM operators WHERE staff_id = $1",
            &[&staff_id],
        )
        .await?
        .is_some())
    }

    async fn set_operator(
        &self,
        staff_id: i64,
        operator: bool,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        if operator {
            exec(
                &tx,
                "INSERT INTO operators (staff_id, created_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[&staff_id, &audit.created_at],
            )
            .await?;
        } else {
            exec(
                &tx,
                "DELETE FROM operators WHERE staff_id = $1",
                &[&staff_id],
            )
            .await?;
        }
        insert_audit(&tx, audit, 1).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(())
    }

    async fn list_operators(&self) -> StoreResult<Vec<i64>> {
        let rows = all(
            &self.client().await?,
            "SELECT staff_id FROM operators ORDER BY staff_id",
            &[],
        )
        .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }
}
