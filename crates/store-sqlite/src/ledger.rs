//! The ledger: one job per call on the writer thread — nonce, idempotency
//! key, attempt limit, guarded balance update, both postings and the audit
//! record share the group's transaction. On SQLite a customer's statement
//! is a chain (`previous_id`), not an index.

use crate::customers::resolve_customer;
use crate::engine::Writer;
use crate::events::insert_event;
use crate::redeem_set_wise::GroupRedemption;
use crate::redeem_set_wise::RedeemJob;
use crate::sql::decode;
use crate::sql::insert_audit;
use crate::sql::map_err;
use crate::SqliteStore;
use kaquan_core::attempts::{code_client_key, code_customer_key, lock};
use kaquan_core::audit::Actor;
use kaquan_core::audit::AuditEntry;
use kaquan_core::code::refusal_reason;
use kaquan_core::code::CodeFacts;
use kaquan_core::code::CodeState;
use kaquan_core::ledger::ApiCall;
use kaquan_core::ledger::Asset;
use kaquan_core::ledger::Called;
use kaquan_core::ledger::CustomerRef;
use kaquan_core::ledger::LedgerOp;
use kaquan_core::ledger::LedgerTransaction;
use kaquan_core::ledger::NonceUse;
use kaquan_core::ledger::RedeemCode;
use kaquan_core::ledger::Refusal;
use kaquan_core::ledger::TransactionKind;
use kaquan_core::ledger::ASSET_FEN;
use kaquan_core::pickup::Channel;
use kaquan_core::store::Page;
use kaquan_core::{StoreError, StoreResult};
use rusqlite::{params, Connection, OptionalExtension, Row};

// Statements on ledger_accounts write the asset as a literal (see
// account_sql); this keeps the literals and the constants one.
const _: () = assert!(matches!(ASSET_FEN.as_bytes(), [b'f', b'e', b'n']));
const _: () = assert!(matches!(
    kaquan_core::ledger::ASSET_POINTS.as_bytes(),
    [b'p', b'o', b'i', b'n', b't', b's']
));

pub(crate) const TRANSACTION_COLUMNS: &str =
    "id, merchant_id, customer_id, kind, amount_fen, balance_after_fen, reference, \
    reason, channel, created_by, created_at";

pub(crate) fn transaction_from_row(row: &Row) -> rusqlite::Result<LedgerTransaction> {
    let (kind, channel): (String, String) = (row.get(3)?, row.get(8)?);
    Ok(LedgerTransaction {
        id: row.get(0)?,
        merchant_id: row.get(1)?,
        customer_id: row.get(2)?,
        kind: decode(TransactionKind::parse(&kind), 3, "transaction kind")?,
        amount_fen: row.get(4)?,
        balance_after_fen: row.get(5)?,
        reference: row.get(6)?,
        reason: row.get(7)?,
        channel: decode(Channel::parse(&channel), 8, "channel")?,
        created_by: row.get(9)?,
        created_at: row.get(10)?,
    })
}

/// Moves `delta` into (or out of) the customer's balance with its two
/// postings and audit record. `InsufficientBalance` when the balance would
/// drop below zero (the guard is in the UPDATE; the CHECK backs it).
#[expect(
    clippy::too_many_arguments,
    reason = "one posting names every column of its transaction"
)]
pub(crate) fn post_transaction(
    conn: &Connection,
    merchant_id: i64,
    customer_id: i64,
    kind: TransactionKind,
    delta: i64,
    reference: &str,
    reason: &str,
    channel: Channel,
    actor: &Actor,
    now: i64,
) -> StoreResult<Result<LedgerTransaction, Refusal>> {
    let posted = post_postings(
        conn,
        &LedgerTransaction {
            id: 0,
            merchant_id,
            customer_id,
            kind,
            amount_fen: delta,
            balance_after_fen: 0,
            reference: reference.to_owned(),
            reason: reason.to_owned(),
            channel,
            created_by: actor.label.clone(),
            created_at: now,
        },
    )?;
    let Some(transaction) = posted else {
        return Ok(Err(Refusal::InsufficientBalance));
    };
    record_ledger_change(conn, &transaction, actor)?;
    Ok(Ok(transaction))
}

/// A customer's account in one asset as the writer last saw it: the
/// balance and the head of its statement chain.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AccountHead {
    pub(crate) id: i64,
    pub(crate) balance: i64,
    pub(crate) last_transaction_id: Option<i64>,
}

/// The ledger part of a transaction: the guarded update of the customer's
/// account in the kind's asset (never below zero; it becomes the head of
/// the account's statement chain), the transaction and both postings.
/// `None` when the account would drop below zero or does not exist. The
/// caller records the audit and events (a member operation records one
/// of each for all its transactions).
pub(crate) fn post_postings(
    conn: &Connection,
    t: &LedgerTransaction,
) -> StoreResult<Option<LedgerTransaction>> {
    // No RETURNING on the hot statements: SQLite buffers RETURNING rows in
    // a temporary b-tree it opens and closes per call. The asset and the
    // account kind are written into the statements on ledger_accounts, not
    // bound: SQLite re-prepares a statement on every call when a bound value
    // could decide whether the partial index ledger_accounts_merchant
    // applies. Both come from closed sets of codes.
    let account = conn
        .prepare_cached(match t.kind.asset() {
            Asset::Fen => "SELECT id, balance, last_transaction_id FROM ledger_accounts WHERE customer_id = ?1 AND asset = 'fen'",
            Asset::Points => "SELECT id, balance, last_transaction_id FROM ledger_accounts WHERE customer_id = ?1 AND asset = 'points'",
        })
        .and_then(|mut s| {
            s.query_row(params![t.customer_id], |r| {
                Ok(AccountHead {
                    id: r.get(0)?,
                    balance: r.get(1)?,
                    last_transaction_id: r.get(2)?,
                })
            })
            .optional()
        })
        .map_err(map_err)?;
    let Some(mut head) = account else {
        return Ok(None);
    };
    post_on(conn, t, &mut head)
}

/// [`post_postings`] on an account the caller read in this transaction
/// (`head`, which then names the new transaction): `None` when it would
/// drop below zero; an error when the account is no longer as read.
pub(crate) fn post_on(
    conn: &Connection,
    t: &LedgerTransaction,
    head: &mut AccountHead,
) -> StoreResult<Option<LedgerTransaction>> {
    let asset = t.kind.asset();
    let AccountHead {
        id: account_id,
        balance,
        last_transaction_id: previous_id,
    } = *head;
    let delta = t.amount_fen;
    let balance_after = balance + delta;
    if balance_after < 0 {
        return Ok(None);
    }
    let mut transaction = LedgerTransaction {
        balance_after_fen: balance_after,
        ..t.clone()
    };
    conn.prepare_cached(
        "INSERT INTO ledger_transactions (merchant_id, customer_id, kind, amount_fen, balance_after_fen, reference, \
         reason, channel, created_by, created_at, previous_id, asset) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )
    .and_then(|mut s| {
        s.execute(params![
            t.merchant_id,
            t.customer_id,
            t.kind.code(),
            delta,
            balance_after,
            t.reference,
            t.reason,
            t.channel.code(),
            t.created_by,
            t.created_at,
            previous_id,
            asset.code()
        ])
    })
    .map_err(map_err)?;
    transaction.id = conn.last_insert_rowid();
    let n = conn
        .prepare_cached(
            "UPDATE ledger_accounts SET balance = balance + ?1, last_transaction_id = ?2, \
             n_transactions = n_transactions + 1 WHERE id = ?3 AND balance = ?4 AND balance + ?1 >= 0",
        )
        .and_then(|mut s| s.execute(params![delta, transaction.id, account_id, balance]))
        .map_err(map_err)?;
    if n != 1 {
        return Err(StoreError::Backend(format!(
            "ledger: the balance of account {account_id} changed under its transaction"
        )));
    }
    let [(_, customer_amount), (counter, counter_amount)] =
        kaquan_core::ledger::postings(t.kind, delta);
    let n = conn
        .prepare_cached(&format!(
            "INSERT INTO ledger_postings (transaction_id, account_id, asset, amount) VALUES \
             (?1, ?2, ?3, ?4), \
             (?1, (SELECT id FROM ledger_accounts WHERE merchant_id = ?5 AND kind = '{}' AND customer_id IS NULL \
             AND asset = '{}'), ?3, ?6)",
            counter.code(),
            asset.code()
        ))
        .and_then(|mut s| {
            s.execute(params![
                transaction.id,
                account_id,
                asset.code(),
                customer_amount,
                t.merchant_id,
                counter_amount
            ])
        })
        .map_err(map_err)?;
    if n != 2 {
        return Err(StoreError::Backend(format!(
            "ledger: {n} postings written, not 2"
        )));
    }
    *head = AccountHead {
        id: account_id,
        balance: balance_after,
        last_transaction_id: Some(transaction.id),
    };
    Ok(Some(transaction))
}

/// The audit record and the events of a ledger transaction, in its
/// transaction.
fn record_ledger_change(
    conn: &Connection,
    t: &LedgerTransaction,
    actor: &Actor,
) -> StoreResult<()> {
    let reason = if t.reason.is_empty() {
        String::new()
    } else {
        format!(" reason={}", t.reason)
    };
    let entry = AuditEntry {
        merchant_id: t.merchant_id,
        actor: actor.clone(),
        action: format!("{}_balance", t.kind.code()),
        target: format!("customer={}", t.customer_id),
        detail: format!(
            "transaction={} amount_fen={} balance_after_fen={} reference={} channel={}{reason}",
            t.id,
            t.amount_fen,
            t.balance_after_fen,
            t.reference,
            t.channel.code(),
        ),
        n_affected: 1,
        created_at: t.created_at,
    };
    insert_audit(conn, &entry, 1).map_err(map_err)?;
    let external_id: Option<String> = conn
        .prepare_cached("SELECT external_id FROM customers WHERE id = ?1")
        .and_then(|mut s| s.query_row([t.customer_id], |r| r.get(0)))
        .map_err(map_err)?;
    for event in kaquan_core::event::ledger_events(t, external_id.as_deref()) {
        insert_event(conn, &event)?;
    }
    Ok(())
}

pub(crate) fn redeem(
    conn: &Connection,
    op: &RedeemCode,
) -> StoreResult<Result<LedgerTransaction, Refusal>> {
    let merchant_id = op.merchant_id;
    let Some(customer_id) = resolve_customer(conn, merchant_id, &op.customer, op.now, true)? else {
        return Ok(Err(Refusal::CustomerNotFound));
    };
    let customer_key = code_customer_key(customer_id);
    let client_key = code_client_key(&op.client_key);
    // The attempt limit is part of the guard: a locked customer or client
    // redeems nothing, and the happy path runs one statement for it.
    let n_used = conn
        .prepare_cached(
            "UPDATE codes SET state = 'used', customer_id = ?1, redeemed_at = ?2, room = NULL \
             WHERE merchant_id = ?3 AND digest = ?4 AND state = 'unused' \
             AND (valid_from IS NULL OR valid_from <= ?2) AND (valid_until IS NULL OR valid_until >= ?2) \
             AND (SELECT count(*) FROM attempt_failures WHERE merchant_id = ?3 AND key = ?5 AND at >= ?7) < ?8 \
             AND (SELECT count(*) FROM attempt_failures WHERE merchant_id = ?3 AND key = ?6 AND at >= ?7) < ?8",
        )
        .and_then(|mut s| {
            s.execute(params![
                customer_id,
                op.now,
                merchant_id,
                op.digest,
                customer_key,
                client_key,
                op.attempts_since,
                op.attempt_limit
            ])
        })
        .map_err(map_err)?;
    let used: Option<(i64, i64)> = if n_used == 1 {
        Some(
            conn.prepare_cached(
                "SELECT id, face_value_fen FROM codes WHERE merchant_id = ?1 AND digest = ?2",
            )
            .and_then(|mut s| {
                s.query_row(params![merchant_id, op.digest], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
            })
            .map_err(map_err)?,
        )
    } else {
        None
    };
    if used.is_none() {
        for key in [&customer_key, &client_key] {
            let (n, oldest): (i64, Option<i64>) = conn
                .prepare_cached(
                    "SELECT count(*), MIN(at) FROM attempt_failures WHERE merchant_id = ?1 AND key = ?2 AND at >= ?3",
                )
                .and_then(|mut s| {
                    s.query_row(params![merchant_id, key, op.attempts_since], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })
                })
                .map_err(map_err)?;
            if let Some(wait) = lock(n, oldest, op.attempts_since, op.attempt_limit) {
                return Ok(Err(Refusal::Locked {
                    retry_after_seconds: wait,
                }));
            }
        }
    }
    let Some((code_id, face_value_fen)) = used else {
        let facts = conn
            .prepare_cached(
                "SELECT state, valid_from, valid_until FROM codes WHERE merchant_id = ?1 AND digest = ?2",
            )
            .and_then(|mut s| {
                s.query_row(params![merchant_id, op.digest], |r| {
                    Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?))
                })
                .optional()
            })
            .map_err(map_err)?
            .and_then(|(state, valid_from, valid_until)| {
                Some(CodeFacts {
                    state: CodeState::parse(&state)?,
                    valid_from,
                    valid_until,
                })
            });
        let reason = refusal_reason(facts, op.now);
        // Every refusal counts against 兑换防刷, whatever its reason, so
        // every refusal does the same work and takes the same time.
        for key in [&customer_key, &client_key] {
            conn.prepare_cached(
                "INSERT INTO attempt_failures (merchant_id, key, at) VALUES (?1, ?2, ?3)",
            )
            .and_then(|mut s| s.execute(params![merchant_id, key, op.now]))
            .map_err(map_err)?;
        }
        insert_audit(
            conn,
            &AuditEntry {
                merchant_id,
                actor: op.actor.clone(),
                action: "code_refused".into(),
                target: format!("customer={customer_id}"),
                detail: format!("channel={} reason={reason}", op.channel.code()),
                n_affected: 0,
                created_at: op.now,
            },
            0,
        )
        .map_err(map_err)?;
        return Ok(Err(Refusal::CodeRefused));
    };
    post_transaction(
        conn,
        merchant_id,
        customer_id,
        TransactionKind::Redeem,
        face_value_fen,
        &format!("code:{code_id}"),
        "",
        op.channel,
        &op.actor,
        op.now,
    )
}

pub(crate) fn run_ledger_op(
    conn: &Connection,
    op: &LedgerOp,
) -> StoreResult<Result<LedgerTransaction, Refusal>> {
    match op {
        LedgerOp::Redeem(op) => redeem(conn, op),
        LedgerOp::Spend(op) => {
            let Some(customer_id) =
                resolve_customer(conn, op.merchant_id, &op.customer, op.now, false)?
            else {
                return Ok(Err(Refusal::CustomerNotFound));
            };
            let spent = post_transaction(
                conn,
                op.merchant_id,
                customer_id,
                TransactionKind::Spend,
                -op.amount_fen,
                &op.reference,
                "",
                Channel::Api,
                &op.actor,
                op.now,
            )?;
            if let Ok(transaction) = &spent {
                conn.prepare_cached(
                    "INSERT INTO spend_refunds (transaction_id, merchant_id, customer_id, amount_fen) VALUES (?1, ?2, ?3, ?4)",
                )
                .and_then(|mut s| s.execute(params![transaction.id, op.merchant_id, customer_id, op.amount_fen]))
                .map_err(map_err)?;
            }
            Ok(spent)
        }
        LedgerOp::Refund(op) => {
            let customer_id: Option<i64> = conn
                .prepare_cached(
                    "UPDATE spend_refunds SET refunded_fen = refunded_fen + ?1 \
                     WHERE transaction_id = ?2 AND merchant_id = ?3 AND refunded_fen + ?1 <= amount_fen \
                     RETURNING customer_id",
                )
                .and_then(|mut s| {
                    s.query_row(params![op.amount_fen, op.spend_transaction_id, op.merchant_id], |r| r.get(0))
                        .optional()
                })
                .map_err(map_err)?;
            let Some(customer_id) = customer_id else {
                let exists = conn
                    .query_row(
                        "SELECT 1 FROM spend_refunds WHERE transaction_id = ?1 AND merchant_id = ?2",
                        params![op.spend_transaction_id, op.merchant_id],
                        |_| Ok(()),
                    )
                    .optional()
                    .map_err(map_err)?;
                return Ok(Err(if exists.is_some() {
                    Refusal::RefundExceedsSpend
                } else {
                    Refusal::SpendNotFound
                }));
            };
            post_transaction(
                conn,
                op.merchant_id,
                customer_id,
                TransactionKind::Refund,
                op.amount_fen,
                &format!("spend:{}", op.spend_transaction_id),
                &op.reason,
                Channel::Api,
                &op.actor,
                op.now,
            )
        }
        LedgerOp::Adjust(op) => {
            let customer = CustomerRef::Id(op.customer_id);
            if resolve_customer(conn, op.merchant_id, &customer, op.now, false)?.is_none() {
                return Ok(Err(Refusal::CustomerNotFound));
            }
            post_transaction(
                conn,
                op.merchant_id,
                op.customer_id,
                TransactionKind::Adjust,
                op.delta_fen,
                "",
                &op.reason,
                Channel::AtLocation,
                &op.actor,
                op.now,
            )
        }
    }
}

/// What an idempotency key recorded earlier.
pub(crate) struct Recorded {
    pub(crate) request_hash: String,
    pub(crate) transaction_id: Option<i64>,
    pub(crate) mall_order_id: Option<i64>,
    pub(crate) card_sale_id: Option<i64>,
    pub(crate) coupon_issue_id: Option<i64>,
    pub(crate) coupon_verification_id: Option<i64>,
    pub(crate) member_operation_id: Option<i64>,
    pub(crate) refusal: Option<String>,
}

/// Records the nonce and looks the idempotency key up. `Some` is the
/// whole answer (a reused nonce, a mismatch, or the earlier record).
pub(crate) fn guard_call(
    conn: &Writer,
    merchant_id: i64,
    call: &ApiCall,
) -> StoreResult<Option<Result<Recorded, Refusal>>> {
    if let Some(nonce) = &call.nonce {
        let claimed = conn
            .nonces
            .borrow_mut()
            .claim(conn, nonce.signed_at, nonce.digest())?;
        if !claimed {
            return Ok(Some(Err(Refusal::NonceReused)));
        }
    }
    let Some(claim) = &call.idempotency else {
        return Ok(None);
    };
    let recorded = conn
        .prepare_cached(
            "SELECT request_hash, transaction_id, mall_order_id, refusal, card_sale_id, coupon_issue_id, coupon_verification_id, \
             member_operation_id FROM idempotency_keys WHERE merchant_id = ?1 AND key = ?2",
        )
        .and_then(|mut s| {
            s.query_row(params![merchant_id, claim.key.as_str()], |r| {
                Ok(Recorded {
                    request_hash: r.get(0)?,
                    transaction_id: r.get(1)?,
                    mall_order_id: r.get(2)?,
                    refusal: r.get(3)?,
                    card_sale_id: r.get(4)?,
                    coupon_issue_id: r.get(5)?,
                    coupon_verification_id: r.get(6)?,
                    member_operation_id: r.get(7)?,
                })
            })
            .optional()
        })
        .map_err(map_err)?;
    Ok(recorded.map(|r| {
        if r.request_hash == claim.request_hash {
            Ok(r)
        } else {
            Err(Refusal::IdempotencyMismatch)
        }
    }))
}

pub(crate) fn record_call(
    conn: &Connection,
    merchant_id: i64,
    call: &ApiCall,
    transaction_id: Option<i64>,
    mall_order_id: Option<i64>,
    refusal: Option<Refusal>,
    now: i64,
) -> StoreResult<()> {
    let Some(claim) = &call.idempotency else {
        return Ok(());
    };
    if refusal.is_some_and(|r| !r.is_recorded()) {
        return Ok(());
    }
    conn.prepare_cached(
        "INSERT INTO idempotency_keys (merchant_id, key, request_hash, transaction_id, mall_order_id, refusal, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .and_then(|mut s| {
        s.execute(params![
            merchant_id,
            claim.key.as_str(),
            claim.request_hash,
            transaction_id,
            mall_order_id,
            refusal.map(Refusal::code),
            now
        ])
    })
    .map_err(map_err)?;
    Ok(())
}

/// One ledger call on the writer's connection: nonce, idempotency key, the
/// operation, and its outcome recorded under the key.
pub(crate) fn post_ledger_job(
    conn: &Writer,
    call: &ApiCall,
    op: &LedgerOp,
) -> StoreResult<Called<LedgerTransaction>> {
    let (merchant_id, now) = (op.merchant_id(), op.now());
    match guard_call(conn, merchant_id, call)? {
        Some(Err(refusal)) => {
            return Ok(Called {
                result: Err(refusal),
                replayed: false,
            })
        }
        Some(Ok(recorded)) => {
            return match recorded.transaction_id {
                Some(id) => Ok(Called {
                    result: Ok(get_transaction(conn, merchant_id, id)?),
                    replayed: true,
                }),
                None => replayed_refusal(&recorded),
            };
        }
        None => {}
    }
    let result = run_ledger_op(conn, op)?;
    let (transaction_id, refusal) = match &result {
        Ok(t) => (Some(t.id), None),
        Err(r) => (None, Some(*r)),
    };
    record_call(conn, merchant_id, call, transaction_id, None, refusal, now)?;
    Ok(Called {
        result,
        replayed: false,
    })
}

pub(crate) fn replayed_refusal<T>(recorded: &Recorded) -> StoreResult<Called<T>> {
    let refusal = recorded
        .refusal
        .as_deref()
        .and_then(Refusal::parse)
        .ok_or_else(|| StoreError::Backend("idempotency record without an outcome".into()))?;
    Ok(Called {
        result: Err(refusal),
        replayed: true,
    })
}

pub(crate) fn get_transaction(
    conn: &Connection,
    merchant_id: i64,
    id: i64,
) -> StoreResult<LedgerTransaction> {
    conn.prepare_cached(&format!(
        "SELECT {TRANSACTION_COLUMNS} FROM ledger_transactions WHERE id = ?1 AND merchant_id = ?2"
    ))
    .and_then(|mut s| s.query_row(params![id, merchant_id], transaction_from_row))
    .map_err(map_err)
}

#[async_trait::async_trait]
impl kaquan_core::ledger::LedgerStore for SqliteStore {
    async fn post_ledger(
        &self,
        call: &ApiCall,
        op: &LedgerOp,
    ) -> StoreResult<Called<LedgerTransaction>> {
        let (call, op) = (call.clone(), op.clone());
        if let LedgerOp::Redeem(
            op @ RedeemCode {
                customer: CustomerRef::External(_),
                ..
            },
        ) = op
        {
            // A signed redemption: the writer may run it set-wise.
            return self
                .queue(|reply| {
                    Box::new(RedeemJob {
                        redemption: GroupRedemption {
                            // Hashed here, not on the writer thread.
                            nonce_digest: call.nonce.as_ref().map(NonceUse::digest),
                            call,
                            op,
                            result: None,
                        },
                        reply,
                    })
                })
                .await;
        }
        self.write(move |conn| post_ledger_job(conn, &call, &op))
            .await
    }

    async fn get_transaction(
        &self,
        merchant_id: i64,
        transaction_id: i64,
    ) -> StoreResult<LedgerTransaction> {
        self.read(move |conn| get_transaction(conn, merchant_id, transaction_id))
            .await
    }

    async fn list_statement(
        &self,
        merchant_id: i64,
        customer_id: i64,
        page: Page,
    ) -> StoreResult<(Vec<LedgerTransaction>, i64)> {
        // Newest first along the customer's chain (see migration 9): the
        // account names the last transaction and counts them.
        self.read(move |conn| {
            let total: i64 = conn
                .prepare_cached(
                    "SELECT COALESCE(SUM(n_transactions), 0) FROM ledger_accounts \
                     WHERE customer_id = ?1 AND merchant_id = ?2 AND asset = 'fen'",
                )
                .and_then(|mut s| s.query_row(params![customer_id, merchant_id], |r| r.get(0)))
                .map_err(map_err)?;
            let mut stmt = conn
                .prepare_cached(&format!(
                    "WITH RECURSIVE chain AS ( \
                       SELECT t.*, 1 AS n FROM ledger_accounts a JOIN ledger_transactions t ON t.id = a.last_transaction_id \
                       WHERE a.customer_id = ?1 AND a.merchant_id = ?2 AND a.asset = 'fen' \
                       UNION ALL \
                       SELECT t.*, chain.n + 1 FROM chain JOIN ledger_transactions t ON t.id = chain.previous_id \
                       WHERE chain.n < ?3 + ?4) \
                     SELECT {TRANSACTION_COLUMNS} FROM chain ORDER BY n LIMIT ?3 OFFSET ?4"
                ))
                .map_err(map_err)?;
            let rows = stmt
                .query_map(params![customer_id, merchant_id, page.page_size, page.offset()], transaction_from_row)
                .map_err(map_err)?;
            Ok((rows.collect::<Result<_, _>>().map_err(map_err)?, total))
        })
        .await
    }
}
