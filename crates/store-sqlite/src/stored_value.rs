//! SQLite SQL for stored value: gift-card settings, codes, mall orders,
//! customers, the ledger, API keys, nonces and idempotency keys.
//!
//! Every ledger call is one job on the writer thread: the nonce, the
//! idempotency key, the attempt limit, the guarded update, both postings
//! and the audit record share the group's transaction and commit. Signed
//! redemptions of a group run set-wise first (`redeem_set_wise`: one read,
//! then one guarded statement per table for all of them); those it leaves
//! (new customer, refused code, replay, …) run one by one after.

use super::{insert_audit, map_err, merchant_page, SqliteStore, Writer};
use kaquan_core::giftcard::{
    refusal_reason, CodeFacts, CodeKind, CodeState, CodeTemplate, CodeTemplateFields,
    GiftcardImageSlot, GiftcardProduct, GiftcardProductFields, GiftcardSettings, GoodsDisplay,
    IssueOrderCodes, IssuedCode, MallOrder, NewCode,
};
use kaquan_core::ledger::{
    ApiCall, Called, Customer, CustomerRef, LedgerOp, LedgerTransaction, NonceUse, RedeemCode,
    Refusal, TransactionKind, ASSET_FEN,
};
use kaquan_core::pickup::Channel;
use kaquan_core::signing::{API_KEYS_ACTIVE_MAX, NONCE_KEPT_SECONDS};
use kaquan_core::store::*;
use kaquan_core::{StoreError, StoreResult};
use rusqlite::{params, Connection, OptionalExtension, Row};

// Statements on ledger_accounts write the asset as the literal 'fen' (see
// post_transaction); this keeps the literal and the constant one.
const _: () = assert!(matches!(ASSET_FEN.as_bytes(), [b'f', b'e', b'n']));

const TEMPLATE_COLUMNS: &str =
    "t.id, t.merchant_id, t.kind, t.name, t.face_value_fen, t.valid_from, t.valid_until, \
    t.created_by, t.created_at, t.deleted_at, \
    (SELECT count(*) FROM codes c WHERE c.template_id = t.id), \
    (SELECT count(*) FROM codes c WHERE c.template_id = t.id AND c.state = 'used'), \
    (SELECT count(*) FROM codes c WHERE c.template_id = t.id AND c.state = 'voided')";

fn template_from_row(row: &Row) -> rusqlite::Result<CodeTemplate> {
    let kind: String = row.get(2)?;
    Ok(CodeTemplate {
        id: row.get(0)?,
        merchant_id: row.get(1)?,
        kind: super::decode(CodeKind::parse(&kind), 2, "code kind")?,
        fields: CodeTemplateFields {
            name: row.get(3)?,
            face_value_fen: row.get(4)?,
            valid_from: row.get(5)?,
            valid_until: row.get(6)?,
        },
        created_by: row.get(7)?,
        created_at: row.get(8)?,
        deleted_at: row.get(9)?,
        n_issued: row.get(10)?,
        n_used: row.get(11)?,
        n_voided: row.get(12)?,
    })
}

const CODE_COLUMNS: &str = "c.id, c.template_id, c.state, c.face_value_fen, c.valid_until, c.sealed, c.key_version, \
    o.order_id, c.customer_id, COALESCE(NULLIF(u.nickname, ''), u.external_id, u.phone), c.redeemed_at, c.issued_at";
const CODE_JOINS: &str = "codes c LEFT JOIN mall_orders o ON o.id = c.mall_order_id \
    LEFT JOIN customers u ON u.id = c.customer_id";

fn code_from_row(row: &Row) -> rusqlite::Result<IssuedCode> {
    let state: String = row.get(2)?;
    Ok(IssuedCode {
        id: row.get(0)?,
        template_id: row.get(1)?,
        state: super::decode(CodeState::parse(&state), 2, "code state")?,
        face_value_fen: row.get(3)?,
        valid_until: row.get(4)?,
        sealed: row.get(5)?,
        key_version: row.get(6)?,
        order_id: row.get(7)?,
        customer_id: row.get(8)?,
        customer_label: row.get(9)?,
        redeemed_at: row.get(10)?,
        issued_at: row.get(11)?,
    })
}

const CUSTOMER_COLUMNS: &str =
    "u.id, u.merchant_id, u.external_id, u.phone, u.nickname, a.balance, u.created_at";
const CUSTOMER_JOINS: &str =
    "customers u JOIN ledger_accounts a ON a.customer_id = u.id AND a.asset = 'fen'";

fn customer_from_row(row: &Row) -> rusqlite::Result<Customer> {
    Ok(Customer {
        id: row.get(0)?,
        merchant_id: row.get(1)?,
        external_id: row.get(2)?,
        phone: row.get(3)?,
        nickname: row.get(4)?,
        balance_fen: row.get(5)?,
        created_at: row.get(6)?,
    })
}

const TRANSACTION_COLUMNS: &str =
    "id, merchant_id, customer_id, kind, amount_fen, balance_after_fen, reference, \
    reason, channel, created_by, created_at";

fn transaction_from_row(row: &Row) -> rusqlite::Result<LedgerTransaction> {
    let (kind, channel): (String, String) = (row.get(3)?, row.get(8)?);
    Ok(LedgerTransaction {
        id: row.get(0)?,
        merchant_id: row.get(1)?,
        customer_id: row.get(2)?,
        kind: super::decode(TransactionKind::parse(&kind), 3, "transaction kind")?,
        amount_fen: row.get(4)?,
        balance_after_fen: row.get(5)?,
        reference: row.get(6)?,
        reason: row.get(7)?,
        channel: super::decode(Channel::parse(&channel), 8, "channel")?,
        created_by: row.get(9)?,
        created_at: row.get(10)?,
    })
}

const PRODUCT_COLUMNS: &str =
    "p.id, p.merchant_id, p.name, p.template_id, p.price_fen, p.on_shelf, \
    t.name, t.face_value_fen, p.created_at, t.deleted_at IS NULL";

fn product_from_row(row: &Row) -> rusqlite::Result<GiftcardProduct> {
    Ok(GiftcardProduct {
        id: row.get(0)?,
        merchant_id: row.get(1)?,
        fields: GiftcardProductFields {
            name: row.get(2)?,
            template_id: row.get(3)?,
            price_fen: row.get(4)?,
            on_shelf: row.get(5)?,
        },
        template_name: row.get(6)?,
        face_value_fen: row.get(7)?,
        created_at: row.get(8)?,
        template_live: row.get(9)?,
    })
}

/// Inserts a customer and their balance account.
fn insert_customer(
    conn: &Connection,
    merchant_id: i64,
    external_id: Option<&str>,
    phone: Option<&str>,
    password_hash: Option<&str>,
    now: i64,
) -> StoreResult<i64> {
    let id: i64 = conn
        .query_row(
            "INSERT INTO customers (merchant_id, external_id, phone, password_hash, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
            params![merchant_id, external_id, phone, password_hash, now],
            |r| r.get(0),
        )
        .map_err(map_err)?;
    conn.prepare_cached(
        "INSERT INTO ledger_accounts (merchant_id, kind, customer_id, asset, balance) VALUES (?1, 'customer', ?2, ?3, 0)",
    )
    .and_then(|mut s| s.execute(params![merchant_id, id, ASSET_FEN]))
    .map_err(map_err)?;
    Ok(id)
}

/// The customer's id; an external id seen for the first time creates the
/// customer when `create` is set.
fn resolve_customer(
    conn: &Connection,
    merchant_id: i64,
    customer: &CustomerRef,
    now: i64,
    create: bool,
) -> StoreResult<Option<i64>> {
    let found = match customer {
        CustomerRef::Id(id) => conn
            .prepare_cached("SELECT id FROM customers WHERE id = ?1 AND merchant_id = ?2")
            .and_then(|mut s| {
                s.query_row(params![id, merchant_id], |r| r.get(0))
                    .optional()
            }),
        CustomerRef::External(external_id) => conn
            .prepare_cached("SELECT id FROM customers WHERE merchant_id = ?1 AND external_id = ?2")
            .and_then(|mut s| {
                s.query_row(params![merchant_id, external_id], |r| r.get(0))
                    .optional()
            }),
    }
    .map_err(map_err)?;
    match (found, customer) {
        (Some(id), _) => Ok(Some(id)),
        (None, CustomerRef::External(external_id)) if create => Ok(Some(insert_customer(
            conn,
            merchant_id,
            Some(external_id),
            None,
            None,
            now,
        )?)),
        _ => Ok(None),
    }
}

/// Moves `delta` into (or out of) the customer's balance with its two
/// postings and audit record. `InsufficientBalance` when the balance would
/// drop below zero (the guard is in the UPDATE; the CHECK backs it).
#[expect(
    clippy::too_many_arguments,
    reason = "one posting names every column of its transaction"
)]
fn post_transaction(
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
    // No RETURNING on the hot statements: SQLite buffers RETURNING rows in
    // a temporary b-tree it opens and closes per call. The asset and the
    // account kind are written into the statements on ledger_accounts, not
    // bound: SQLite re-prepares a statement on every call when a bound value
    // could decide whether the partial index ledger_accounts_merchant
    // applies.
    let account: Option<(i64, i64, Option<i64>)> = conn
        .prepare_cached(
            "SELECT id, balance, last_transaction_id FROM ledger_accounts \
             WHERE customer_id = ?1 AND asset = 'fen'",
        )
        .and_then(|mut s| {
            s.query_row(params![customer_id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()
        })
        .map_err(map_err)?;
    let Some((account_id, balance, previous_id)) = account else {
        return Ok(Err(Refusal::InsufficientBalance));
    };
    let balance_after = balance + delta;
    if balance_after < 0 {
        return Ok(Err(Refusal::InsufficientBalance));
    }
    let mut transaction = LedgerTransaction {
        id: 0,
        merchant_id,
        customer_id,
        kind,
        amount_fen: delta,
        balance_after_fen: balance_after,
        reference: reference.to_owned(),
        reason: reason.to_owned(),
        channel,
        created_by: actor.label.clone(),
        created_at: now,
    };
    conn.prepare_cached(
        "INSERT INTO ledger_transactions (merchant_id, customer_id, kind, amount_fen, balance_after_fen, reference, \
         reason, channel, created_by, created_at, previous_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )
    .and_then(|mut s| {
        s.execute(params![
            merchant_id,
            customer_id,
            kind.code(),
            delta,
            balance_after,
            reference,
            reason,
            channel.code(),
            actor.label,
            now,
            previous_id
        ])
    })
    .map_err(map_err)?;
    transaction.id = conn.last_insert_rowid();
    // The guarded write: the balance read above, never below zero; the
    // account becomes the head of the customer's statement chain.
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
        kaquan_core::ledger::postings(kind, delta);
    let n = conn
        .prepare_cached(&format!(
            "INSERT INTO ledger_postings (transaction_id, account_id, asset, amount) VALUES \
             (?1, ?2, ?3, ?4), \
             (?1, (SELECT id FROM ledger_accounts WHERE merchant_id = ?5 AND kind = '{}' AND customer_id IS NULL \
             AND asset = 'fen'), ?3, ?6)",
            counter.code()
        ))
        .and_then(|mut s| {
            s.execute(params![
                transaction.id,
                account_id,
                ASSET_FEN,
                customer_amount,
                merchant_id,
                counter_amount
            ])
        })
        .map_err(map_err)?;
    if n != 2 {
        return Err(StoreError::Backend(format!(
            "ledger: {n} postings written, not 2"
        )));
    }
    insert_audit(
        conn,
        &AuditEntry {
            merchant_id,
            actor: actor.clone(),
            action: format!("{}_balance", kind.code()),
            target: format!("customer={customer_id}"),
            detail: format!(
                "transaction={} amount_fen={delta} balance_after_fen={balance_after} reference={reference} channel={}{}",
                transaction.id,
                channel.code(),
                if reason.is_empty() { String::new() } else { format!(" reason={reason}") }
            ),
            n_affected: 1,
            created_at: now,
        },
        1,
    )
    .map_err(map_err)?;
    Ok(Ok(transaction))
}

/// The key under which a customer's failed code attempts are counted (the
/// set-wise read builds the same text from the customer's id).
fn customer_attempt_key(customer_id: i64) -> String {
    format!("code-customer:{customer_id}")
}

/// The key under which a client's failed code attempts are counted.
fn client_attempt_key(client: &str) -> String {
    format!("code-client:{client}")
}

fn redeem(conn: &Connection, op: &RedeemCode) -> StoreResult<Result<LedgerTransaction, Refusal>> {
    let merchant_id = op.merchant_id;
    let Some(customer_id) = resolve_customer(conn, merchant_id, &op.customer, op.now, true)? else {
        return Ok(Err(Refusal::CustomerNotFound));
    };
    let customer_key = customer_attempt_key(customer_id);
    let client_key = client_attempt_key(&op.client_key);
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
            if n >= op.attempt_limit {
                return Ok(Err(Refusal::Locked {
                    retry_after_seconds: kaquan_core::pickup::retry_after_seconds(
                        oldest.unwrap_or(op.now),
                        op.attempts_since,
                    ),
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

fn run_ledger_op(
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
                Channel::Store,
                &op.actor,
                op.now,
            )
        }
    }
}

/// What an idempotency key recorded earlier.
struct Recorded {
    request_hash: String,
    transaction_id: Option<i64>,
    mall_order_id: Option<i64>,
    refusal: Option<String>,
}

/// Records the nonce and looks the idempotency key up. `Some` is the
/// whole answer (a reused nonce, a mismatch, or the earlier record).
fn guard_call(
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
            "SELECT request_hash, transaction_id, mall_order_id, refusal FROM idempotency_keys WHERE merchant_id = ?1 AND key = ?2",
        )
        .and_then(|mut s| {
            s.query_row(params![merchant_id, claim.key.as_str()], |r| {
                Ok(Recorded {
                    request_hash: r.get(0)?,
                    transaction_id: r.get(1)?,
                    mall_order_id: r.get(2)?,
                    refusal: r.get(3)?,
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

fn record_call(
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
fn post_ledger_job(
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

fn replayed_refusal<T>(recorded: &Recorded) -> StoreResult<Called<T>> {
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

fn get_transaction(conn: &Connection, merchant_id: i64, id: i64) -> StoreResult<LedgerTransaction> {
    conn.prepare_cached(&format!(
        "SELECT {TRANSACTION_COLUMNS} FROM ledger_transactions WHERE id = ?1 AND merchant_id = ?2"
    ))
    .and_then(|mut s| s.query_row(params![id, merchant_id], transaction_from_row))
    .map_err(map_err)
}

fn mall_order_codes(conn: &Connection, mall_order_id: i64) -> StoreResult<Vec<IssuedCode>> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {CODE_COLUMNS} FROM {CODE_JOINS} WHERE c.mall_order_id = ?1 ORDER BY c.id"
        ))
        .map_err(map_err)?;
    let rows = stmt
        .query_map([mall_order_id], code_from_row)
        .map_err(map_err)?;
    rows.collect::<Result<_, _>>().map_err(map_err)
}

fn get_mall_order(conn: &Connection, id: i64) -> StoreResult<MallOrder> {
    let mut order = conn
        .query_row(
            "SELECT merchant_id, order_id, product_id, product_name, quantity, customer_id, created_at FROM mall_orders WHERE id = ?1",
            [id],
            |r| {
                Ok(MallOrder {
                    merchant_id: r.get(0)?,
                    order_id: r.get(1)?,
                    product_id: r.get(2)?,
                    product_name: r.get(3)?,
                    quantity: r.get(4)?,
                    customer_id: r.get(5)?,
                    created_at: r.get(6)?,
                    codes: Vec::new(),
                })
            },
        )
        .map_err(map_err)?;
    order.codes = mall_order_codes(conn, id)?;
    Ok(order)
}

fn insert_codes(
    conn: &Connection,
    merchant_id: i64,
    template_id: i64,
    mall_order_id: Option<i64>,
    codes: &[NewCode],
    now: i64,
) -> StoreResult<()> {
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO codes (merchant_id, template_id, digest, sealed, key_version, state, face_value_fen, valid_from, valid_until, \
             mall_order_id, issued_at, room) SELECT ?1, t.id, ?3, ?4, ?5, 'unused', t.face_value_fen, t.valid_from, t.valid_until, ?6, ?7, \
             zeroblob(8) \
             FROM code_templates t WHERE t.id = ?2 AND t.merchant_id = ?1 AND t.deleted_at IS NULL",
        )
        .map_err(map_err)?;
    for code in codes {
        let n = stmt
            .execute(params![
                merchant_id,
                template_id,
                code.digest,
                code.sealed,
                code.key_version,
                mall_order_id,
                now
            ])
            .map_err(map_err)?;
        if n != 1 {
            return Err(StoreError::NotFound);
        }
    }
    Ok(())
}

/// Deletes the expired rows of a table appended in arrival order (nonces,
/// migration 12; idempotency records, migration 11): the ids before the
/// first row whose `time` is still kept (`?1`). The scan for it reads just
/// the rows it deletes; a few expired ones after it wait for the next purge.
macro_rules! expired_prefix {
    ($table:literal, $time:literal) => {
        concat!(
            "DELETE FROM ",
            $table,
            " WHERE id < COALESCE((SELECT id FROM ",
            $table,
            " WHERE ",
            $time,
            " >= ?1 ORDER BY id LIMIT 1), (SELECT COALESCE(MAX(id), 0) + 1 FROM ",
            $table,
            "))"
        )
    };
}

#[async_trait::async_trait]
impl StoredValueStore for SqliteStore {
    async fn get_giftcard_settings(&self, merchant_id: i64) -> StoreResult<GiftcardSettings> {
        self.read(move |conn| {
            let found = conn
                .prepare_cached(
                    "SELECT enabled, centre_entry, attempt_limit, centre_name, share_title, description, phone_login, \
                     distribution, goods_display \
                     FROM giftcard_settings WHERE merchant_id = ?1",
                )
                .and_then(|mut s| {
                    s.query_row([merchant_id], |r| {
                        Ok(GiftcardSettings {
                            enabled: r.get(0)?,
                            centre_entry: r.get(1)?,
                            attempt_limit: r.get(2)?,
                            centre_name: r.get(3)?,
                            share_title: r.get(4)?,
                            description: r.get(5)?,
                            phone_login: r.get(6)?,
                            distribution: r.get(7)?,
                            goods_display: super::decode(
                                GoodsDisplay::parse(&r.get::<_, String>(8)?),
                                8,
                                "goods display",
                            )?,
                        })
                    })
                    .optional()
                })
                .map_err(map_err)?;
            Ok(found.unwrap_or_default())
        })
        .await
    }

    async fn put_giftcard_settings(
        &self,
        merchant_id: i64,
        settings: &GiftcardSettings,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let (s, audit) = (settings.clone(), audit.clone());
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO giftcard_settings (merchant_id, enabled, centre_entry, attempt_limit, centre_name, share_title, \
                 description, phone_login, distribution, goods_display) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) \
                 ON CONFLICT (merchant_id) DO UPDATE SET \
                 enabled = excluded.enabled, centre_entry = excluded.centre_entry, attempt_limit = excluded.attempt_limit, \
                 centre_name = excluded.centre_name, share_title = excluded.share_title, description = excluded.description, \
                 phone_login = excluded.phone_login, distribution = excluded.distribution, goods_display = excluded.goods_display",
                params![merchant_id, s.enabled, s.centre_entry, s.attempt_limit, s.centre_name, s.share_title, s.description, s.phone_login, s.distribution, s.goods_display.code()],
            )
            .map_err(map_err)?;
            insert_audit(conn, &audit, 1).map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn put_giftcard_image(
        &self,
        merchant_id: i64,
        slot: GiftcardImageSlot,
        content_type: &str,
        bytes: &[u8],
        now: i64,
    ) -> StoreResult<()> {
        let (content_type, bytes) = (content_type.to_owned(), bytes.to_vec());
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO giftcard_images (merchant_id, slot, content_type, bytes, updated_at) VALUES (?1, ?2, ?3, ?4, ?5) \
                 ON CONFLICT (merchant_id, slot) DO UPDATE SET content_type = excluded.content_type, bytes = excluded.bytes, \
                 updated_at = excluded.updated_at",
                params![merchant_id, slot.code(), content_type, bytes, now],
            )
            .map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn get_giftcard_image(
        &self,
        merchant_id: i64,
        slot: GiftcardImageSlot,
    ) -> StoreResult<Option<(String, Vec<u8>)>> {
        self.read(move |conn| {
            conn.query_row(
                "SELECT content_type, bytes FROM giftcard_images WHERE merchant_id = ?1 AND slot = ?2",
                params![merchant_id, slot.code()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(map_err)
        })
        .await
    }

    async fn giftcard_images(
        &self,
        merchant_id: i64,
    ) -> StoreResult<Vec<(GiftcardImageSlot, i64)>> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT slot, updated_at FROM giftcard_images WHERE merchant_id = ?1",
                )
                .map_err(map_err)?;
            let rows = stmt
                .query_map([merchant_id], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
                })
                .map_err(map_err)?;
            let rows: Vec<(String, i64)> = rows.collect::<Result<_, _>>().map_err(map_err)?;
            Ok(rows
                .into_iter()
                .filter_map(|(slot, at)| Some((GiftcardImageSlot::parse(&slot)?, at)))
                .collect())
        })
        .await
    }

    async fn create_code_template(
        &self,
        merchant_id: i64,
        kind: CodeKind,
        fields: &CodeTemplateFields,
        codes: &[NewCode],
        audit: &AuditEntry,
    ) -> StoreResult<CodeTemplate> {
        let (f, codes, audit) = (fields.clone(), codes.to_vec(), audit.clone());
        self.write(move |conn| {
            let id: i64 = conn
                .query_row(
                    "INSERT INTO code_templates (merchant_id, kind, name, face_value_fen, valid_from, valid_until, created_by, created_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) RETURNING id",
                    params![merchant_id, kind.code(), f.name, f.face_value_fen, f.valid_from, f.valid_until, audit.actor.label, audit.created_at],
                    |r| r.get(0),
                )
                .map_err(map_err)?;
            insert_codes(conn, merchant_id, id, None, &codes, audit.created_at)?;
            let mut audit = audit.clone();
            audit.target = format!("code_template={id}");
            insert_audit(conn, &audit, codes.len() as i64).map_err(map_err)?;
            conn.query_row(
                &format!("SELECT {TEMPLATE_COLUMNS} FROM code_templates t WHERE t.id = ?1"),
                [id],
                template_from_row,
            )
            .map_err(map_err)
        })
        .await
    }

    async fn list_code_templates(
        &self,
        merchant_id: i64,
        kind: CodeKind,
        page: Page,
    ) -> StoreResult<(Vec<CodeTemplate>, i64)> {
        self.read(move |conn| {
            let total: i64 = conn
                .query_row(
                    "SELECT count(*) FROM code_templates WHERE merchant_id = ?1 AND kind = ?2 AND deleted_at IS NULL",
                    params![merchant_id, kind.code()],
                    |r| r.get(0),
                )
                .map_err(map_err)?;
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT {TEMPLATE_COLUMNS} FROM code_templates t WHERE t.merchant_id = ?1 AND t.kind = ?2 \
                     AND t.deleted_at IS NULL ORDER BY t.id DESC LIMIT ?3 OFFSET ?4"
                ))
                .map_err(map_err)?;
            let rows = stmt
                .query_map(params![merchant_id, kind.code(), page.page_size, page.offset()], template_from_row)
                .map_err(map_err)?;
            Ok((rows.collect::<Result<_, _>>().map_err(map_err)?, total))
        })
        .await
    }

    async fn get_code_template(
        &self,
        merchant_id: i64,
        template_id: i64,
    ) -> StoreResult<CodeTemplate> {
        self.read(move |conn| {
            conn.query_row(
                &format!("SELECT {TEMPLATE_COLUMNS} FROM code_templates t WHERE t.id = ?1 AND t.merchant_id = ?2"),
                params![template_id, merchant_id],
                template_from_row,
            )
            .map_err(map_err)
        })
        .await
    }

    async fn delete_code_template(
        &self,
        merchant_id: i64,
        template_id: i64,
        expected_unused: i64,
        audit: &AuditEntry,
    ) -> StoreResult<i64> {
        let audit = audit.clone();
        self.write(move |conn| {
            let n = conn
                .execute(
                    "UPDATE code_templates SET deleted_at = ?1 WHERE id = ?2 AND merchant_id = ?3 AND deleted_at IS NULL \
                     AND (SELECT count(*) FROM codes WHERE template_id = ?2 AND state = 'unused') = ?4",
                    params![audit.created_at, template_id, merchant_id, expected_unused],
                )
                .map_err(map_err)?;
            if n != 1 {
                return Err(StoreError::Conflict("the number of unused codes changed, or the template is gone".into()));
            }
            let voided = conn
                .execute(
                    "UPDATE codes SET state = 'voided' WHERE template_id = ?1 AND state = 'unused'",
                    [template_id],
                )
                .map_err(map_err)? as i64;
            conn.execute(
                "UPDATE giftcard_products SET on_shelf = 0 WHERE template_id = ?1",
                [template_id],
            )
            .map_err(map_err)?;
            insert_audit(conn, &audit, voided).map_err(map_err)?;
            Ok(voided)
        })
        .await
    }

    async fn list_codes(
        &self,
        merchant_id: i64,
        template_id: i64,
        state: Option<CodeState>,
        page: Page,
    ) -> StoreResult<(Vec<IssuedCode>, i64)> {
        let state = state.map(CodeState::code);
        self.read(move |conn| {
            let total: i64 = conn
                .query_row(
                    "SELECT count(*) FROM codes WHERE template_id = ?1 AND merchant_id = ?2 \
                     AND (?3 IS NULL OR state = ?3)",
                    params![template_id, merchant_id, state],
                    |r| r.get(0),
                )
                .map_err(map_err)?;
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT {CODE_COLUMNS} FROM {CODE_JOINS} WHERE c.template_id = ?1 AND c.merchant_id = ?2 \
                     AND (?3 IS NULL OR c.state = ?3) ORDER BY c.id LIMIT ?4 OFFSET ?5"
                ))
                .map_err(map_err)?;
            let rows = stmt
                .query_map(
                    params![template_id, merchant_id, state, page.page_size, page.offset()],
                    code_from_row,
                )
                .map_err(map_err)?;
            Ok((rows.collect::<Result<_, _>>().map_err(map_err)?, total))
        })
        .await
    }

    async fn find_code(&self, merchant_id: i64, digest: &[u8]) -> StoreResult<Option<IssuedCode>> {
        let digest = digest.to_vec();
        self.read(move |conn| {
            conn.query_row(
                &format!("SELECT {CODE_COLUMNS} FROM {CODE_JOINS} WHERE c.merchant_id = ?1 AND c.digest = ?2"),
                params![merchant_id, digest],
                code_from_row,
            )
            .optional()
            .map_err(map_err)
        })
        .await
    }

    async fn codes_after(
        &self,
        merchant_id: i64,
        template_id: i64,
        after_id: i64,
        limit: i64,
    ) -> StoreResult<Vec<IssuedCode>> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT {CODE_COLUMNS} FROM {CODE_JOINS} WHERE c.template_id = ?1 AND c.merchant_id = ?2 AND c.id > ?3 \
                     ORDER BY c.id LIMIT ?4"
                ))
                .map_err(map_err)?;
            let rows = stmt
                .query_map(params![template_id, merchant_id, after_id, limit], code_from_row)
                .map_err(map_err)?;
            rows.collect::<Result<_, _>>().map_err(map_err)
        })
        .await
    }

    async fn create_giftcard_product(
        &self,
        merchant_id: i64,
        fields: &GiftcardProductFields,
        now: i64,
    ) -> StoreResult<GiftcardProduct> {
        let f = fields.clone();
        self.write(move |conn| {
            let id: i64 = conn
                .query_row(
                    "INSERT INTO giftcard_products (merchant_id, name, template_id, price_fen, on_shelf, created_at) \
                     SELECT ?1, ?2, t.id, ?4, ?5, ?6 FROM code_templates t \
                     WHERE t.id = ?3 AND t.merchant_id = ?1 AND t.kind = 'online' AND t.deleted_at IS NULL RETURNING id",
                    params![merchant_id, f.name, f.template_id, f.price_fen, f.on_shelf, now],
                    |r| r.get(0),
                )
                .map_err(map_err)?;
            conn.query_row(
                &format!("SELECT {PRODUCT_COLUMNS} FROM giftcard_products p JOIN code_templates t ON t.id = p.template_id WHERE p.id = ?1"),
                [id],
                product_from_row,
            )
            .map_err(map_err)
        })
        .await
    }

    async fn update_giftcard_product(
        &self,
        merchant_id: i64,
        product_id: i64,
        fields: &GiftcardProductFields,
    ) -> StoreResult<()> {
        let f = fields.clone();
        self.write(move |conn| {
            let n = conn
                .execute(
                    "UPDATE giftcard_products SET name = ?1, template_id = ?2, price_fen = ?3, on_shelf = ?4 \
                     WHERE id = ?5 AND merchant_id = ?6 AND EXISTS (SELECT 1 FROM code_templates t WHERE t.id = ?2 \
                     AND t.merchant_id = ?6 AND t.kind = 'online' AND t.deleted_at IS NULL)",
                    params![f.name, f.template_id, f.price_fen, f.on_shelf, product_id, merchant_id],
                )
                .map_err(map_err)?;
            super::expect_one(n)
        })
        .await
    }

    async fn list_giftcard_products(&self, merchant_id: i64) -> StoreResult<Vec<GiftcardProduct>> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT {PRODUCT_COLUMNS} FROM giftcard_products p JOIN code_templates t ON t.id = p.template_id \
                     WHERE p.merchant_id = ?1 ORDER BY p.id DESC"
                ))
                .map_err(map_err)?;
            let rows = stmt.query_map([merchant_id], product_from_row).map_err(map_err)?;
            rows.collect::<Result<_, _>>().map_err(map_err)
        })
        .await
    }

    async fn issue_order_codes(
        &self,
        call: &ApiCall,
        order: &IssueOrderCodes,
    ) -> StoreResult<Called<MallOrder>> {
        let (call, order) = (call.clone(), order.clone());
        self.write(move |conn| {
            let merchant_id = order.merchant_id;
            match guard_call(conn, merchant_id, &call)? {
                Some(Err(refusal)) => return Ok(Called { result: Err(refusal), replayed: false }),
                Some(Ok(recorded)) => {
                    return match recorded.mall_order_id {
                        Some(id) => Ok(Called { result: Ok(get_mall_order(conn, id)?), replayed: true }),
                        None => replayed_refusal(&recorded),
                    };
                }
                None => {}
            }
            let existing: Option<(i64, i64, i64)> = conn
                .query_row(
                    "SELECT id, product_id, quantity FROM mall_orders WHERE merchant_id = ?1 AND order_id = ?2",
                    params![merchant_id, order.order_id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()
                .map_err(map_err)?;
            let result = match existing {
                Some((id, product_id, quantity)) if product_id == order.product_id && quantity == order.quantity => {
                    record_call(conn, merchant_id, &call, None, Some(id), None, order.now)?;
                    return Ok(Called { result: Ok(get_mall_order(conn, id)?), replayed: true });
                }
                Some(_) => Err(Refusal::OrderMismatch),
                None => {
                    let product: Option<(i64, String)> = conn
                        .query_row(
                            "SELECT p.template_id, p.name FROM giftcard_products p JOIN code_templates t ON t.id = p.template_id \
                             WHERE p.id = ?1 AND p.merchant_id = ?2 AND p.on_shelf AND t.deleted_at IS NULL",
                            params![order.product_id, merchant_id],
                            |r| Ok((r.get(0)?, r.get(1)?)),
                        )
                        .optional()
                        .map_err(map_err)?;
                    match product {
                        None => Err(Refusal::ProductUnavailable),
                        Some((template_id, product_name)) => {
                            let customer_id = match &order.customer {
                                Some(customer) => resolve_customer(conn, merchant_id, customer, order.now, true)?,
                                None => None,
                            };
                            let id: i64 = conn
                                .query_row(
                                    "INSERT INTO mall_orders (merchant_id, order_id, product_id, product_name, quantity, customer_id, created_at) \
                                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING id",
                                    params![merchant_id, order.order_id, order.product_id, product_name, order.quantity, customer_id, order.now],
                                    |r| r.get(0),
                                )
                                .map_err(map_err)?;
                            insert_codes(conn, merchant_id, template_id, Some(id), &order.codes, order.now)?;
                            insert_audit(
                                conn,
                                &AuditEntry {
                                    merchant_id,
                                    actor: order.actor.clone(),
                                    action: "issue_order_codes".into(),
                                    target: format!("mall_order={}", order.order_id),
                                    detail: format!("product={} quantity={}", order.product_id, order.quantity),
                                    n_affected: order.quantity,
                                    created_at: order.now,
                                },
                                order.quantity,
                            )
                            .map_err(map_err)?;
                            Ok(id)
                        }
                    }
                }
            };
            match result {
                Ok(id) => {
                    record_call(conn, merchant_id, &call, None, Some(id), None, order.now)?;
                    Ok(Called { result: Ok(get_mall_order(conn, id)?), replayed: false })
                }
                Err(refusal) => {
                    record_call(conn, merchant_id, &call, None, None, Some(refusal), order.now)?;
                    Ok(Called { result: Err(refusal), replayed: false })
                }
            }
        })
        .await
    }

    async fn list_customer_orders(
        &self,
        merchant_id: i64,
        customer_id: i64,
    ) -> StoreResult<Vec<MallOrder>> {
        self.read(move |conn| {
            let ids: Vec<i64> = conn
                .prepare("SELECT id FROM mall_orders WHERE merchant_id = ?1 AND customer_id = ?2 ORDER BY id DESC LIMIT 100")
                .and_then(|mut s| s.query_map(params![merchant_id, customer_id], |r| r.get(0))?.collect())
                .map_err(map_err)?;
            ids.into_iter().map(|id| get_mall_order(conn, id)).collect()
        })
        .await
    }

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

    async fn ensure_customer(
        &self,
        merchant_id: i64,
        external_id: &str,
        now: i64,
    ) -> StoreResult<Customer> {
        let external_id = external_id.to_owned();
        self.write(move |conn| {
            let id = resolve_customer(
                conn,
                merchant_id,
                &CustomerRef::External(external_id.clone()),
                now,
                true,
            )?
            .ok_or(StoreError::NotFound)?;
            get_customer(conn, merchant_id, id)
        })
        .await
    }

    async fn create_phone_customer(
        &self,
        merchant_id: i64,
        phone: &str,
        password_hash: &str,
        now: i64,
    ) -> StoreResult<Customer> {
        let (phone, password_hash) = (phone.to_owned(), password_hash.to_owned());
        self.write(move |conn| {
            let id = insert_customer(
                conn,
                merchant_id,
                None,
                Some(&phone),
                Some(&password_hash),
                now,
            )?;
            get_customer(conn, merchant_id, id)
        })
        .await
    }

    async fn find_phone_customer(
        &self,
        merchant_id: i64,
        phone: &str,
    ) -> StoreResult<Option<(Customer, String)>> {
        let phone = phone.to_owned();
        self.read(move |conn| {
            conn.query_row(
                &format!("SELECT {CUSTOMER_COLUMNS}, u.password_hash FROM {CUSTOMER_JOINS} WHERE u.merchant_id = ?1 AND u.phone = ?2 AND u.password_hash IS NOT NULL"),
                params![merchant_id, phone],
                |r| Ok((customer_from_row(r)?, r.get(7)?)),
            )
            .optional()
            .map_err(map_err)
        })
        .await
    }

    async fn get_customer(&self, merchant_id: i64, customer_id: i64) -> StoreResult<Customer> {
        self.read(move |conn| get_customer(conn, merchant_id, customer_id))
            .await
    }

    async fn find_external_customer(
        &self,
        merchant_id: i64,
        external_id: &str,
    ) -> StoreResult<Option<Customer>> {
        let external_id = external_id.to_owned();
        self.read(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {CUSTOMER_COLUMNS} FROM {CUSTOMER_JOINS} WHERE u.merchant_id = ?1 AND u.external_id = ?2"
            ))
            .and_then(|mut s| s.query_row(params![merchant_id, external_id], customer_from_row).optional())
            .map_err(map_err)
        })
        .await
    }

    async fn list_customers(
        &self,
        merchant_id: i64,
        search: &str,
        page: Page,
    ) -> StoreResult<(Vec<Customer>, i64)> {
        let search = search.trim().to_owned();
        self.read(move |conn| {
            if search.is_empty() {
                return merchant_page(
                    conn,
                    &format!("(SELECT {CUSTOMER_COLUMNS} FROM {CUSTOMER_JOINS})"),
                    "*",
                    merchant_id,
                    page,
                    customer_from_row,
                );
            }
            let needle = format!("%{}%", search.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"));
            let filter = "u.merchant_id = ?1 AND (u.external_id LIKE ?2 ESCAPE '\\' OR u.phone LIKE ?2 ESCAPE '\\' OR u.nickname LIKE ?2 ESCAPE '\\')";
            let total: i64 = conn
                .query_row(&format!("SELECT count(*) FROM customers u WHERE {filter}"), params![merchant_id, needle], |r| r.get(0))
                .map_err(map_err)?;
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT {CUSTOMER_COLUMNS} FROM {CUSTOMER_JOINS} WHERE {filter} ORDER BY u.id DESC LIMIT ?3 OFFSET ?4"
                ))
                .map_err(map_err)?;
            let rows = stmt
                .query_map(params![merchant_id, needle, page.page_size, page.offset()], customer_from_row)
                .map_err(map_err)?;
            Ok((rows.collect::<Result<_, _>>().map_err(map_err)?, total))
        })
        .await
    }

    async fn create_api_key(
        &self,
        merchant_id: i64,
        key_id: &str,
        label: &str,
        secret_sealed: &[u8],
        key_version: i32,
        audit: &AuditEntry,
    ) -> StoreResult<ApiKey> {
        let (key_id, label, sealed, audit) = (
            key_id.to_owned(),
            label.to_owned(),
            secret_sealed.to_vec(),
            audit.clone(),
        );
        self.write(move |conn| {
            let key = conn
                .query_row(
                    "INSERT INTO api_keys (merchant_id, key_id, label, secret_sealed, key_version, active, created_at) \
                     SELECT ?1, ?2, ?3, ?4, ?5, 1, ?6 \
                     WHERE (SELECT count(*) FROM api_keys WHERE merchant_id = ?1 AND active) < ?7 \
                     RETURNING id, merchant_id, key_id, label, active, created_at, revoked_at",
                    params![merchant_id, key_id, label, sealed, key_version, audit.created_at, API_KEYS_ACTIVE_MAX],
                    api_key_from_row,
                )
                .optional()
                .map_err(map_err)?
                .ok_or_else(|| StoreError::Conflict("two API keys are already active".into()))?;
            insert_audit(conn, &audit, 1).map_err(map_err)?;
            Ok(key)
        })
        .await
    }

    async fn list_api_keys(&self, merchant_id: i64) -> StoreResult<Vec<ApiKey>> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare(
                    "SELECT id, merchant_id, key_id, label, active, created_at, revoked_at FROM api_keys \
                     WHERE merchant_id = ?1 ORDER BY id DESC",
                )
                .map_err(map_err)?;
            let rows = stmt.query_map([merchant_id], api_key_from_row).map_err(map_err)?;
            rows.collect::<Result<_, _>>().map_err(map_err)
        })
        .await
    }

    async fn revoke_api_key(
        &self,
        merchant_id: i64,
        id: i64,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let audit = audit.clone();
        self.write(move |conn| {
            let n = conn
                .execute(
                    "UPDATE api_keys SET active = 0, revoked_at = ?1 WHERE id = ?2 AND merchant_id = ?3 AND active",
                    params![audit.created_at, id, merchant_id],
                )
                .map_err(map_err)?;
            super::expect_one(n)?;
            insert_audit(conn, &audit, 1).map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn find_api_key(&self, key_id: &str) -> StoreResult<Option<ApiKeySecret>> {
        let key_id = key_id.to_owned();
        self.read(move |conn| {
            conn.prepare_cached(
                "SELECT merchant_id, key_id, secret_sealed, key_version FROM api_keys WHERE key_id = ?1 AND active",
            )
            .and_then(|mut s| {
                s.query_row([key_id], |r| {
                    Ok(ApiKeySecret {
                        merchant_id: r.get(0)?,
                        key_id: r.get(1)?,
                        secret_sealed: r.get(2)?,
                        key_version: r.get(3)?,
                    })
                })
                .optional()
            })
            .map_err(map_err)
        })
        .await
    }

    async fn record_nonce(&self, nonce: &NonceUse) -> StoreResult<()> {
        let (signed_at, digest) = (nonce.signed_at, nonce.digest());
        self.write(move |conn| {
            if conn.nonces.borrow_mut().claim(conn, signed_at, digest)? {
                Ok(())
            } else {
                Err(crate::nonces::reused())
            }
        })
        .await
    }

    async fn consume_login_link(&self, nonce: &str, expires_at: i64) -> StoreResult<()> {
        let nonce = nonce.to_owned();
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO login_links (nonce, expires_at) VALUES (?1, ?2)",
                params![nonce, expires_at],
            )
            .map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn create_customer_session(&self, session: &CustomerSession) -> StoreResult<()> {
        let s = session.clone();
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO customer_sessions (token_hash, merchant_id, customer_id, csrf_token, expires_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![s.token_hash, s.merchant_id, s.customer_id, s.csrf_token, s.expires_at],
            )
            .map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn find_customer_session(
        &self,
        token_hash: &str,
        now: i64,
    ) -> StoreResult<Option<CustomerSession>> {
        let token_hash = token_hash.to_owned();
        self.read(move |conn| {
            conn.prepare_cached(
                "SELECT token_hash, merchant_id, customer_id, csrf_token, expires_at FROM customer_sessions \
                 WHERE token_hash = ?1 AND expires_at > ?2",
            )
            .and_then(|mut s| {
                s.query_row(params![token_hash, now], |r| {
                    Ok(CustomerSession {
                        token_hash: r.get(0)?,
                        merchant_id: r.get(1)?,
                        customer_id: r.get(2)?,
                        csrf_token: r.get(3)?,
                        expires_at: r.get(4)?,
                    })
                })
                .optional()
            })
            .map_err(map_err)
        })
        .await
    }

    async fn delete_customer_session(&self, token_hash: &str) -> StoreResult<()> {
        let token_hash = token_hash.to_owned();
        self.write(move |conn| {
            conn.execute(
                "DELETE FROM customer_sessions WHERE token_hash = ?1",
                [&token_hash],
            )
            .map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn purge_expired(&self, now: i64) -> StoreResult<i64> {
        self.write(move |conn| {
            let mut n = 0;
            conn.nonces
                .borrow_mut()
                .forget_before(now - NONCE_KEPT_SECONDS);
            for (sql, before) in [
                (
                    expired_prefix!("api_nonces", "signed_at"),
                    now - NONCE_KEPT_SECONDS,
                ),
                (
                    expired_prefix!("idempotency_keys", "created_at"),
                    now - kaquan_core::ledger::IDEMPOTENCY_KEPT_SECONDS,
                ),
                ("DELETE FROM login_links WHERE expires_at < ?1", now),
                ("DELETE FROM customer_sessions WHERE expires_at < ?1", now),
                (
                    "DELETE FROM attempt_failures WHERE at < ?1",
                    now - super::ATTEMPT_FAILURES_KEPT_SECONDS,
                ),
            ] {
                n += conn.execute(sql, [before]).map_err(map_err)? as i64;
            }
            Ok(n)
        })
        .await
    }
}

/// Moves the nonces migration 10 set aside into the compact table: their
/// digest needs SHA-256, which SQL lacks. One transaction; until it has
/// committed, every open tries again.
pub(crate) fn carry_over_nonces(conn: &Connection) -> StoreResult<()> {
    let set_aside: bool = conn
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'api_nonces_before_10'",
            [],
            |r| r.get(0),
        )
        .map_err(map_err)?;
    if !set_aside {
        return Ok(());
    }
    super::in_transaction(conn, || {
        let nonces: Vec<NonceUse> = conn
            .prepare("SELECT signed_at, key_id, nonce FROM api_nonces_before_10")?
            .query_map([], |r| {
                Ok(NonceUse {
                    signed_at: r.get(0)?,
                    api_key_id: r.get(1)?,
                    nonce: r.get(2)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        let mut insert = conn.prepare(
            "INSERT INTO api_nonces (signed_at, digest) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
        )?;
        for nonce in &nonces {
            insert.execute(params![nonce.signed_at, nonce.digest()])?;
        }
        conn.execute_batch("DROP TABLE api_nonces_before_10")
    })
}

fn api_key_from_row(row: &Row) -> rusqlite::Result<ApiKey> {
    Ok(ApiKey {
        id: row.get(0)?,
        merchant_id: row.get(1)?,
        key_id: row.get(2)?,
        label: row.get(3)?,
        active: row.get(4)?,
        created_at: row.get(5)?,
        revoked_at: row.get(6)?,
    })
}

fn get_customer(conn: &Connection, merchant_id: i64, customer_id: i64) -> StoreResult<Customer> {
    conn.prepare_cached(&format!(
        "SELECT {CUSTOMER_COLUMNS} FROM {CUSTOMER_JOINS} WHERE u.id = ?1 AND u.merchant_id = ?2"
    ))
    .and_then(|mut s| s.query_row(params![customer_id, merchant_id], customer_from_row))
    .map_err(map_err)
}

/// Ledger invariants `verify` checks; each query counts violating rows.
pub(crate) const LEDGER_INVARIANT_QUERIES: &[(&str, &str)] = &[
    (
        "ledger transactions whose postings do not sum to zero per asset",
        "SELECT count(*) FROM (SELECT transaction_id FROM ledger_postings GROUP BY transaction_id, asset HAVING SUM(amount) <> 0) AS x",
    ),
    (
        "ledger transactions without exactly two postings",
        "SELECT count(*) FROM ledger_transactions t WHERE (SELECT count(*) FROM ledger_postings p WHERE p.transaction_id = t.id) <> 2",
    ),
    (
        "ledger transactions whose amount differs from their customer's posting",
        "SELECT count(*) FROM ledger_transactions t WHERE t.amount_fen <> (SELECT COALESCE(SUM(p.amount), 0) FROM ledger_postings p \
         JOIN ledger_accounts a ON a.id = p.account_id WHERE p.transaction_id = t.id AND a.customer_id = t.customer_id)",
    ),
    (
        "customer balances differ from the sum of their postings",
        "SELECT count(*) FROM ledger_accounts a LEFT JOIN \
         (SELECT account_id, SUM(amount) AS total FROM ledger_postings GROUP BY account_id) AS p ON p.account_id = a.id \
         WHERE a.kind = 'customer' AND a.balance <> COALESCE(p.total, 0)",
    ),
    ("customer balances are below zero", "SELECT count(*) FROM ledger_accounts WHERE balance < 0"),
    (
        "statement lines whose balance after differs from the running sum",
        "SELECT count(*) FROM (SELECT balance_after_fen, \
         SUM(amount_fen) OVER (PARTITION BY customer_id ORDER BY id) AS running FROM ledger_transactions) \
         WHERE balance_after_fen <> running",
    ),
    (
        "statement chains that skip or repeat a transaction",
        "SELECT count(*) FROM (SELECT previous_id, \
         LAG(id) OVER (PARTITION BY customer_id ORDER BY id) AS before FROM ledger_transactions) \
         WHERE previous_id IS NOT before",
    ),
    (
        "customer accounts whose last transaction or transaction count is wrong",
        "SELECT count(*) FROM ledger_accounts a LEFT JOIN \
         (SELECT customer_id, MAX(id) AS last, count(*) AS n FROM ledger_transactions GROUP BY customer_id) AS t \
         ON t.customer_id = a.customer_id \
         WHERE a.kind = 'customer' AND (a.last_transaction_id IS NOT t.last OR a.n_transactions <> COALESCE(t.n, 0))",
    ),
    (
        "spends whose refunds do not add up to what was refunded, or exceed the spend",
        "SELECT count(*) FROM spend_refunds s LEFT JOIN \
         (SELECT merchant_id, reference, SUM(amount_fen) AS total FROM ledger_transactions WHERE kind = 'refund' \
         GROUP BY merchant_id, reference) AS r ON r.merchant_id = s.merchant_id AND r.reference = 'spend:' || s.transaction_id \
         WHERE s.refunded_fen > s.amount_fen OR s.refunded_fen <> COALESCE(r.total, 0)",
    ),
    (
        "used codes without their redeem transaction",
        "SELECT count(*) FROM codes c LEFT JOIN \
         (SELECT merchant_id, reference FROM ledger_transactions WHERE kind = 'redeem') AS t \
         ON t.merchant_id = c.merchant_id AND t.reference = 'code:' || c.id \
         WHERE c.state = 'used' AND t.reference IS NULL",
    ),
    (
        "redeem transactions whose amount differs from their code's face value",
        "SELECT count(*) FROM ledger_transactions t JOIN codes c ON t.reference = 'code:' || c.id AND c.merchant_id = t.merchant_id \
         WHERE t.kind = 'redeem' AND t.amount_fen <> c.face_value_fen",
    ),
    (
        "ledger postings whose account does not exist",
        "SELECT count(*) FROM ledger_postings p WHERE NOT EXISTS (SELECT 1 FROM ledger_accounts a WHERE a.id = p.account_id)",
    ),
    (
        "ledger postings on an account of another merchant than their transaction's",
        "SELECT count(*) FROM ledger_postings p JOIN ledger_transactions t ON t.id = p.transaction_id \
         JOIN ledger_accounts a ON a.id = p.account_id WHERE a.merchant_id <> t.merchant_id",
    ),
    (
        "ledger transactions or audit records of no merchant",
        "SELECT (SELECT count(*) FROM ledger_transactions t WHERE NOT EXISTS (SELECT 1 FROM merchants m WHERE m.id = t.merchant_id)) \
         + (SELECT count(*) FROM audit_log a WHERE NOT EXISTS (SELECT 1 FROM merchants m WHERE m.id = a.merchant_id))",
    ),
];

// ---- set-wise redemptions ------------------------------------------------

/// A signed redemption queued for the writer: it either runs set-wise with
/// the other redemptions of its group (`redeem_set_wise`) or, when that
/// leaves it, one by one like any other ledger call.
pub(crate) struct GroupRedemption {
    call: ApiCall,
    /// The call's `NonceUse::digest`, as the set-wise statements store it.
    nonce_digest: Option<i64>,
    op: RedeemCode,
    /// Set once the job has run (set-wise or alone); cleared when the group
    /// is rolled back to run again.
    pub(crate) result: Option<StoreResult<Called<LedgerTransaction>>>,
}

struct RedeemJob {
    redemption: GroupRedemption,
    reply: tokio::sync::oneshot::Sender<StoreResult<Called<LedgerTransaction>>>,
}

impl super::Work for RedeemJob {
    fn run(&mut self, conn: &Writer) -> bool {
        let r = &mut self.redemption;
        let result = post_ledger_job(conn, &r.call, &LedgerOp::Redeem(r.op.clone()));
        let ok = result.is_ok();
        r.result = Some(result);
        ok
    }

    fn finish(self: Box<Self>, commit: Result<(), String>) {
        super::answer(self.redemption.result, commit, self.reply);
    }

    fn redemption(&mut self) -> Option<&mut GroupRedemption> {
        Some(&mut self.redemption)
    }
}

/// The writer's scratch tables for set-wise redemptions (per connection,
/// in memory: `temp_store = MEMORY`).
pub(crate) fn create_redemption_tables(conn: &Connection) -> StoreResult<()> {
    conn.execute_batch(
        "CREATE TEMP TABLE IF NOT EXISTS redemption_asks (
            idx INTEGER PRIMARY KEY,
            merchant_id INTEGER NOT NULL,
            external_id TEXT NOT NULL,
            digest BLOB NOT NULL,
            client_key TEXT NOT NULL,
            attempts_since INTEGER NOT NULL,
            now INTEGER NOT NULL,
            idempotency_key TEXT
        );
        CREATE TEMP TABLE IF NOT EXISTS redemption_moves (
            transaction_id INTEGER PRIMARY KEY,
            merchant_id INTEGER NOT NULL,
            customer_id INTEGER NOT NULL,
            account_id INTEGER NOT NULL UNIQUE,
            code_id INTEGER NOT NULL UNIQUE,
            amount_fen INTEGER NOT NULL,
            counter_amount INTEGER NOT NULL,
            balance_after_fen INTEGER NOT NULL,
            previous_id INTEGER,
            channel TEXT NOT NULL,
            actor TEXT NOT NULL,
            actor_staff_id INTEGER,
            now INTEGER NOT NULL,
            signed_at INTEGER,
            nonce_digest INTEGER,
            idempotency_key TEXT,
            request_hash TEXT
        );",
    )
    .map_err(map_err)
}

/// What a set-wise redemption uses that no other one of its group may.
#[derive(PartialEq, Eq, Hash)]
enum Taken<'a> {
    Code(i64),
    Customer(i64),
    Key(i64, &'a str),
}

/// What the group's one read found for a redemption.
struct Found {
    customer_id: Option<i64>,
    account_id: Option<i64>,
    balance: Option<i64>,
    last_transaction_id: Option<i64>,
    code_id: Option<i64>,
    face_value_fen: Option<i64>,
    customer_failures: i64,
    client_failures: i64,
    key_seen: bool,
}

/// A redemption the set-wise phase writes: its transaction, the accounts
/// it moves, its code, and the customer's previous transaction (the
/// statement chain's link).
struct Move {
    idx: usize,
    account_id: i64,
    code_id: i64,
    counter_amount: i64,
    previous_id: Option<i64>,
    transaction: LedgerTransaction,
}

/// Runs the usual redemptions of a group set-wise: one read for all of
/// them, then one guarded statement per table (nonces, codes, balances,
/// transactions, postings, audit records, idempotency records) with its
/// row count checked. A redemption for a customer not seen before, of a
/// refused code, past the attempt limit, with a used nonce or key, or
/// sharing a code, customer, nonce or key with an earlier one of the group
/// is left alone (`result` stays `None`) and runs one by one after. An
/// error means the group must be rolled back: it may have written.
pub(crate) fn redeem_set_wise(
    conn: &Writer,
    redemptions: &mut [&mut GroupRedemption],
) -> StoreResult<()> {
    super::run_cached(conn, "DELETE FROM temp.redemption_asks").map_err(map_err)?;
    super::run_cached(conn, "DELETE FROM temp.redemption_moves").map_err(map_err)?;
    let mut ask = conn
        .prepare_cached(
            "INSERT INTO temp.redemption_asks (idx, merchant_id, external_id, digest, client_key, attempts_since, now, \
             idempotency_key) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .map_err(map_err)?;
    for (idx, r) in redemptions.iter().enumerate() {
        let op = &r.op;
        let CustomerRef::External(external_id) = &op.customer else {
            continue;
        };
        ask.execute(params![
            idx as i64,
            op.merchant_id,
            external_id,
            op.digest,
            client_attempt_key(&op.client_key),
            op.attempts_since,
            op.now,
            r.call.idempotency.as_ref().map(|c| c.key.as_str()),
        ])
        .map_err(map_err)?;
    }
    drop(ask);
    let mut found: Vec<Option<Found>> = (0..redemptions.len()).map(|_| None).collect();
    {
        let mut read = conn
            .prepare_cached(
                "SELECT a.idx, cu.id, acc.id, acc.balance, acc.last_transaction_id, c.id, c.face_value_fen, \
                 (SELECT count(*) FROM attempt_failures f WHERE f.merchant_id = a.merchant_id \
                  AND f.key = 'code-customer:' || cu.id AND f.at >= a.attempts_since), \
                 (SELECT count(*) FROM attempt_failures f WHERE f.merchant_id = a.merchant_id \
                  AND f.key = a.client_key AND f.at >= a.attempts_since), \
                 EXISTS (SELECT 1 FROM idempotency_keys k WHERE k.merchant_id = a.merchant_id AND k.key = a.idempotency_key) \
                 FROM temp.redemption_asks a \
                 LEFT JOIN customers cu ON cu.merchant_id = a.merchant_id AND cu.external_id = a.external_id \
                 LEFT JOIN ledger_accounts acc ON acc.customer_id = cu.id AND acc.asset = 'fen' \
                 LEFT JOIN codes c ON c.merchant_id = a.merchant_id AND c.digest = a.digest AND c.state = 'unused' \
                 AND (c.valid_from IS NULL OR c.valid_from <= a.now) AND (c.valid_until IS NULL OR c.valid_until >= a.now)",
            )
            .map_err(map_err)?;
        let rows = read
            .query_map([], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    Found {
                        customer_id: row.get(1)?,
                        account_id: row.get(2)?,
                        balance: row.get(3)?,
                        last_transaction_id: row.get(4)?,
                        code_id: row.get(5)?,
                        face_value_fen: row.get(6)?,
                        customer_failures: row.get(7)?,
                        client_failures: row.get(8)?,
                        key_seen: row.get(9)?,
                    },
                ))
            })
            .map_err(map_err)?;
        for row in rows {
            let (idx, f) = row.map_err(map_err)?;
            found[idx as usize] = Some(f);
        }
    }
    let next_id: i64 = conn
        .prepare_cached("SELECT COALESCE(MAX(id), 0) + 1 FROM ledger_transactions")
        .and_then(|mut s| s.query_row([], |r| r.get(0)))
        .map_err(map_err)?;
    // Which ones go set-wise: in arrival order, each code, customer, nonce
    // and idempotency key once.
    let mut taken = std::collections::HashSet::new();
    let mut nonces = conn.nonces.borrow_mut();
    let mut moves = Vec::new();
    for (idx, f) in found.iter().enumerate() {
        let Some(f) = f else {
            continue;
        };
        let r = &redemptions[idx];
        let (op, call) = (&r.op, &r.call);
        let (Some(customer_id), Some(account_id), Some(balance), Some(code_id), Some(face)) = (
            f.customer_id,
            f.account_id,
            f.balance,
            f.code_id,
            f.face_value_fen,
        ) else {
            continue;
        };
        if f.customer_failures >= op.attempt_limit
            || f.client_failures >= op.attempt_limit
            || f.key_seen
        {
            continue;
        }
        let mut names = vec![Taken::Code(code_id), Taken::Customer(customer_id)];
        if let Some(claim) = &call.idempotency {
            names.push(Taken::Key(op.merchant_id, claim.key.as_str()));
        }
        if names.iter().any(|name| taken.contains(name)) {
            continue;
        }
        // Claimed last, once the redemption goes set-wise: a nonce used
        // before (or earlier in the group) leaves it to run alone, refused.
        if let (Some(n), Some(digest)) = (&call.nonce, r.nonce_digest) {
            if !nonces.claim_unlogged(conn, n.signed_at, digest)? {
                continue;
            }
        }
        taken.extend(names);
        let [(_, customer_amount), (_, counter_amount)] =
            kaquan_core::ledger::postings(TransactionKind::Redeem, face);
        let transaction = LedgerTransaction {
            id: next_id + moves.len() as i64,
            merchant_id: op.merchant_id,
            customer_id,
            kind: TransactionKind::Redeem,
            amount_fen: customer_amount,
            balance_after_fen: balance + customer_amount,
            reference: format!("code:{code_id}"),
            reason: String::new(),
            channel: op.channel,
            created_by: op.actor.label.clone(),
            created_at: op.now,
        };
        moves.push(Move {
            idx,
            account_id,
            code_id,
            counter_amount,
            previous_id: f.last_transaction_id,
            transaction,
        });
    }
    if moves.is_empty() {
        return Ok(());
    }
    let mut insert = conn
        .prepare_cached(
            "INSERT INTO temp.redemption_moves (transaction_id, merchant_id, customer_id, account_id, code_id, amount_fen, \
             counter_amount, balance_after_fen, previous_id, channel, actor, actor_staff_id, now, signed_at, nonce_digest, \
             idempotency_key, request_hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
        )
        .map_err(map_err)?;
    let (mut n_nonces, mut n_keys) = (0, 0);
    for m in &moves {
        let (r, t) = (&redemptions[m.idx], &m.transaction);
        let op = &r.op;
        let nonce = r.call.nonce.as_ref();
        let claim = r.call.idempotency.as_ref();
        n_nonces += usize::from(nonce.is_some());
        n_keys += usize::from(claim.is_some());
        insert
            .execute(params![
                t.id,
                t.merchant_id,
                t.customer_id,
                m.account_id,
                m.code_id,
                t.amount_fen,
                m.counter_amount,
                t.balance_after_fen,
                m.previous_id,
                t.channel.code(),
                t.created_by,
                op.actor.staff_id,
                t.created_at,
                nonce.map(|n| n.signed_at),
                r.nonce_digest,
                claim.map(|c| c.key.as_str()),
                claim.map(|c| c.request_hash.as_str()),
            ])
            .map_err(map_err)?;
    }
    drop(insert);
    let n = moves.len();
    let kind = TransactionKind::Redeem;
    let checked = |what: &str, sql: &str, params: &[&dyn rusqlite::ToSql], expected: usize| {
        let written = conn
            .prepare_cached(sql)
            .and_then(|mut s| s.execute(params))
            .map_err(map_err)?;
        if written == expected {
            Ok(())
        } else {
            Err(StoreError::Backend(format!(
                "set-wise redemptions: {written} {what} written, not {expected}"
            )))
        }
    };
    checked(
        "nonces",
        "INSERT INTO api_nonces (signed_at, digest) \
         SELECT signed_at, nonce_digest FROM temp.redemption_moves WHERE nonce_digest IS NOT NULL",
        &[],
        n_nonces,
    )?;
    if n_nonces > 0 {
        nonces.logged(conn);
    }
    drop(nonces);
    checked(
        "codes",
        "UPDATE codes SET state = 'used', \
         customer_id = (SELECT m.customer_id FROM temp.redemption_moves m WHERE m.code_id = codes.id), \
         redeemed_at = (SELECT m.now FROM temp.redemption_moves m WHERE m.code_id = codes.id), room = NULL \
         WHERE id IN (SELECT code_id FROM temp.redemption_moves) AND state = 'unused'",
        &[],
        n,
    )?;
    checked(
        "balances",
        "UPDATE ledger_accounts SET balance = balance + \
         (SELECT m.amount_fen FROM temp.redemption_moves m WHERE m.account_id = ledger_accounts.id), \
         last_transaction_id = (SELECT m.transaction_id FROM temp.redemption_moves m WHERE m.account_id = ledger_accounts.id), \
         n_transactions = n_transactions + 1 \
         WHERE id IN (SELECT account_id FROM temp.redemption_moves) \
         AND balance = (SELECT m.balance_after_fen - m.amount_fen FROM temp.redemption_moves m WHERE m.account_id = ledger_accounts.id)",
        &[],
        n,
    )?;
    checked(
        "transactions",
        "INSERT INTO ledger_transactions (id, merchant_id, customer_id, kind, amount_fen, balance_after_fen, reference, \
         reason, channel, created_by, created_at, previous_id) \
         SELECT transaction_id, merchant_id, customer_id, ?1, amount_fen, balance_after_fen, 'code:' || code_id, '', \
         channel, actor, now, previous_id FROM temp.redemption_moves ORDER BY transaction_id",
        &[&kind.code()],
        n,
    )?;
    // The asset and the kind are written in, not bound (see post_transaction).
    checked(
        "postings",
        &format!(
            "INSERT INTO ledger_postings (transaction_id, account_id, asset, amount) \
             SELECT transaction_id, account_id, 'fen', amount_fen FROM temp.redemption_moves \
             UNION ALL \
             SELECT transaction_id, (SELECT a.id FROM ledger_accounts a WHERE a.merchant_id = m.merchant_id AND a.kind = '{}' \
             AND a.customer_id IS NULL AND a.asset = 'fen'), 'fen', counter_amount FROM temp.redemption_moves m",
            kind.counter_account().code()
        ),
        &[],
        2 * n,
    )?;
    checked(
        "audit records",
        "INSERT INTO audit_log (merchant_id, actor_staff_id, actor, action, target, detail, n_affected, created_at) \
         SELECT merchant_id, actor_staff_id, actor, ?1, 'customer=' || customer_id, \
         'transaction=' || transaction_id || ' amount_fen=' || amount_fen || ' balance_after_fen=' || balance_after_fen \
         || ' reference=code:' || code_id || ' channel=' || channel, 1, now \
         FROM temp.redemption_moves ORDER BY transaction_id",
        &[&format!("{}_balance", kind.code())],
        n,
    )?;
    checked(
        "idempotency records",
        "INSERT INTO idempotency_keys (merchant_id, key, request_hash, transaction_id, created_at) \
         SELECT merchant_id, idempotency_key, request_hash, transaction_id, now FROM temp.redemption_moves \
         WHERE idempotency_key IS NOT NULL",
        &[],
        n_keys,
    )?;
    for Move {
        idx, transaction, ..
    } in moves
    {
        redemptions[idx].result = Some(Ok(Called {
            result: Ok(transaction),
            replayed: false,
        }));
    }
    Ok(())
}
