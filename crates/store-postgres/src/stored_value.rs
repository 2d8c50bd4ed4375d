//! PostgreSQL SQL for stored value: gift-card settings, codes, mall orders,
//! customers, the ledger, API keys, nonces and idempotency keys.
//!
//! A ledger call is one transaction. The usual signed redemption (a known
//! customer, a good code) is a single statement without BEGIN/COMMIT that
//! also inserts the nonce and records the Idempotency-Key with its outcome;
//! anything else (a new customer, a refused code, a replay) runs as a
//! pipelined transaction whose Idempotency-Key row is inserted first, so a
//! concurrent call with the same key waits on that row and then answers
//! with the first call's recorded outcome. The customer's account row is
//! the only balance row a redemption locks.

use super::{insert_audit, map_err, parse_or, PgStore};
use deadpool_postgres::GenericClient;
use kaquan_core::giftcard::{
    refusal_reason, CodeFacts, CodeKind, CodeState, CodeTemplate, CodeTemplateFields,
    GiftcardImageSlot, GiftcardProduct, GiftcardProductFields, GiftcardSettings, GoodsDisplay,
    IssueOrderCodes, IssuedCode, MallOrder, NewCode,
};
use kaquan_core::ledger::{
    ApiCall, Called, Customer, CustomerRef, LedgerOp, LedgerTransaction, RedeemCode, Refusal,
    TransactionKind, ASSET_FEN,
};
use kaquan_core::pickup::Channel;
use kaquan_core::signing::{API_KEYS_ACTIVE_MAX, NONCE_KEPT_SECONDS};
use kaquan_core::store::*;
use kaquan_core::{StoreError, StoreResult};
use std::sync::LazyLock;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

type P<'a> = &'a (dyn ToSql + Sync);

/// Runs a statement this connection prepared once.
async fn opt(c: &impl GenericClient, sql: &str, params: &[P<'_>]) -> StoreResult<Option<Row>> {
    let statement = c.prepare_cached(sql).await.map_err(map_err)?;
    c.query_opt(&statement, params).await.map_err(map_err)
}
async fn one(c: &impl GenericClient, sql: &str, params: &[P<'_>]) -> StoreResult<Row> {
    let statement = c.prepare_cached(sql).await.map_err(map_err)?;
    c.query_one(&statement, params).await.map_err(map_err)
}
async fn all(c: &impl GenericClient, sql: &str, params: &[P<'_>]) -> StoreResult<Vec<Row>> {
    let statement = c.prepare_cached(sql).await.map_err(map_err)?;
    c.query(&statement, params).await.map_err(map_err)
}
async fn exec(c: &impl GenericClient, sql: &str, params: &[P<'_>]) -> StoreResult<u64> {
    let statement = c.prepare_cached(sql).await.map_err(map_err)?;
    c.execute(&statement, params).await.map_err(map_err)
}

const TEMPLATE_COLUMNS: &str =
    "t.id, t.merchant_id, t.kind, t.name, t.face_value_fen, t.valid_from, t.valid_until, \
    t.created_by, t.created_at, t.deleted_at, \
    (SELECT count(*) FROM codes c WHERE c.template_id = t.id), \
    (SELECT count(*) FROM codes c WHERE c.template_id = t.id AND c.state = 'used'), \
    (SELECT count(*) FROM codes c WHERE c.template_id = t.id AND c.state = 'voided')";

fn template_from_row(row: &Row) -> StoreResult<CodeTemplate> {
    Ok(CodeTemplate {
        id: row.get(0),
        merchant_id: row.get(1),
        kind: parse_or(CodeKind::parse(row.get(2)), "code kind")?,
        fields: CodeTemplateFields {
            name: row.get(3),
            face_value_fen: row.get(4),
            valid_from: row.get(5),
            valid_until: row.get(6),
        },
        created_by: row.get(7),
        created_at: row.get(8),
        deleted_at: row.get(9),
        n_issued: row.get(10),
        n_used: row.get(11),
        n_voided: row.get(12),
    })
}

const CODE_COLUMNS: &str = "c.id, c.template_id, c.state, c.face_value_fen, c.valid_until, c.sealed, c.key_version, \
    o.order_id, c.customer_id, COALESCE(NULLIF(u.nickname, ''), u.external_id, u.phone), c.redeemed_at, c.issued_at";
const CODE_JOINS: &str = "codes c LEFT JOIN mall_orders o ON o.id = c.mall_order_id \
    LEFT JOIN customers u ON u.id = c.customer_id";

fn code_from_row(row: &Row) -> StoreResult<IssuedCode> {
    Ok(IssuedCode {
        id: row.get(0),
        template_id: row.get(1),
        state: parse_or(CodeState::parse(row.get(2)), "code state")?,
        face_value_fen: row.get(3),
        valid_until: row.get(4),
        sealed: row.get(5),
        key_version: row.get(6),
        order_id: row.get(7),
        customer_id: row.get(8),
        customer_label: row.get(9),
        redeemed_at: row.get(10),
        issued_at: row.get(11),
    })
}

const CUSTOMER_COLUMNS: &str =
    "u.id, u.merchant_id, u.external_id, u.phone, u.nickname, a.balance, u.created_at";
const CUSTOMER_JOINS: &str =
    "customers u JOIN ledger_accounts a ON a.customer_id = u.id AND a.asset = 'fen'";

fn customer_from_row(row: &Row) -> Customer {
    Customer {
        id: row.get(0),
        merchant_id: row.get(1),
        external_id: row.get(2),
        phone: row.get(3),
        nickname: row.get(4),
        balance_fen: row.get(5),
        created_at: row.get(6),
    }
}

const TRANSACTION_COLUMNS: &str =
    "id, merchant_id, customer_id, kind, amount_fen, balance_after_fen, reference, \
    reason, channel, created_by, created_at";

fn transaction_from_row(row: &Row) -> StoreResult<LedgerTransaction> {
    Ok(LedgerTransaction {
        id: row.get(0),
        merchant_id: row.get(1),
        customer_id: row.get(2),
        kind: parse_or(TransactionKind::parse(row.get(3)), "transaction kind")?,
        amount_fen: row.get(4),
        balance_after_fen: row.get(5),
        reference: row.get(6),
        reason: row.get(7),
        channel: parse_or(Channel::parse(row.get(8)), "channel")?,
        created_by: row.get(9),
        created_at: row.get(10),
    })
}

const PRODUCT_COLUMNS: &str =
    "p.id, p.merchant_id, p.name, p.template_id, p.price_fen, p.on_shelf, \
    t.name, t.face_value_fen, p.created_at, t.deleted_at IS NULL";

fn product_from_row(row: &Row) -> GiftcardProduct {
    GiftcardProduct {
        id: row.get(0),
        merchant_id: row.get(1),
        fields: GiftcardProductFields {
            name: row.get(2),
            template_id: row.get(3),
            price_fen: row.get(4),
            on_shelf: row.get(5),
        },
        template_name: row.get(6),
        face_value_fen: row.get(7),
        created_at: row.get(8),
        template_live: row.get(9),
    }
}

const API_KEY_COLUMNS: &str = "id, merchant_id, key_id, label, active, created_at, revoked_at";

fn api_key_from_row(row: &Row) -> ApiKey {
    ApiKey {
        id: row.get(0),
        merchant_id: row.get(1),
        key_id: row.get(2),
        label: row.get(3),
        active: row.get(4),
        created_at: row.get(5),
        revoked_at: row.get(6),
    }
}

/// Inserts a customer and their balance account.
async fn insert_customer(
    c: &impl GenericClient,
    merchant_id: i64,
    external_id: Option<&str>,
    phone: Option<&str>,
    password_hash: Option<&str>,
    now: i64,
) -> StoreResult<i64> {
    let id: i64 = one(
        c,
        "INSERT INTO customers (merchant_id, external_id, phone, password_hash, created_at) \
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
        &[&merchant_id, &external_id, &phone, &password_hash, &now],
    )
    .await?
    .get(0);
    exec(
        c,
        "INSERT INTO ledger_accounts (merchant_id, kind, customer_id, asset, balance) VALUES ($1, 'customer', $2, $3, 0)",
        &[&merchant_id, &id, &ASSET_FEN],
    )
    .await?;
    Ok(id)
}

/// The customer's id; an external id seen for the first time creates the
/// customer when `create` is set (racing creators meet on the unique index).
/// The customer's id if they exist (one query, no insert).
async fn find_customer(
    c: &impl GenericClient,
    merchant_id: i64,
    customer: &CustomerRef,
) -> StoreResult<Option<i64>> {
    Ok(match customer {
        CustomerRef::Id(id) => {
            opt(
                c,
                "SELECT id FROM customers WHERE id = $1 AND merchant_id = $2",
                &[id, &merchant_id],
            )
            .await?
        }
        CustomerRef::External(external_id) => {
            opt(
                c,
                "SELECT id FROM customers WHERE merchant_id = $1 AND external_id = $2",
                &[&merchant_id, external_id],
            )
            .await?
        }
    }
    .map(|row| row.get(0)))
}

async fn resolve_customer(
    c: &impl GenericClient,
    merchant_id: i64,
    customer: &CustomerRef,
    now: i64,
    create: bool,
) -> StoreResult<Option<i64>> {
    let found = find_customer(c, merchant_id, customer).await?;
    create_missing_customer(c, merchant_id, customer, now, create, found).await
}

/// `found`, or (with `create`, for an external id) the customer made now.
async fn create_missing_customer(
    c: &impl GenericClient,
    merchant_id: i64,
    customer: &CustomerRef,
    now: i64,
    create: bool,
    found: Option<i64>,
) -> StoreResult<Option<i64>> {
    match (found, customer) {
        (Some(id), _) => Ok(Some(id)),
        (None, CustomerRef::External(external_id)) if create => {
            let inserted = opt(
                c,
                "INSERT INTO customers (merchant_id, external_id, created_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (merchant_id, external_id) DO NOTHING RETURNING id",
                &[&merchant_id, external_id, &now],
            )
            .await?;
            match inserted {
                Some(row) => {
                    let id: i64 = row.get(0);
                    exec(
                        c,
                        "INSERT INTO ledger_accounts (merchant_id, kind, customer_id, asset, balance) VALUES ($1, 'customer', $2, $3, 0)",
                        &[&merchant_id, &id, &ASSET_FEN],
                    )
                    .await?;
                    Ok(Some(id))
                }
                // Another call created the customer meanwhile (and committed).
                None => Ok(opt(
                    c,
                    "SELECT id FROM customers WHERE merchant_id = $1 AND external_id = $2",
                    &[&merchant_id, external_id],
                )
                .await?
                .map(|r| r.get(0))),
            }
        }
        _ => Ok(None),
    }
}

/// Where a transaction's amount comes from: given, or the face value of the
/// code the same statement marks used (a redemption is then one statement).
enum Source<'a> {
    Amount {
        delta: i64,
        reference: &'a str,
    },
    /// The code's guarded UPDATE; the second field is the attempt key of
    /// the client (the customer's is made by the statement from their id).
    Code(&'a RedeemCode, &'a str),
}

/// The key under which a customer's failed code attempts are counted; the
/// redemption statements build the same text from the customer's id.
fn customer_attempt_key(customer_id: i64) -> String {
    format!("code-customer:{customer_id}")
}

/// The key under which a client's (an IP's, an API key's) failed code
/// attempts are counted.
fn client_attempt_key(client: &str) -> String {
    format!("code-client:{client}")
}

/// How a ledger statement meets its API call.
#[derive(Clone, Copy)]
enum CallShape {
    /// The call's nonce and key were claimed earlier in the transaction:
    /// the statement writes the outcome into the claimed key (`$1` is the
    /// customer's id).
    Claimed,
    /// The whole call is the statement, run without BEGIN/COMMIT: it looks
    /// the customer up by external id (`$1`), inserts the nonce and records
    /// the key with the transaction. A reused nonce or key aborts it with a
    /// unique violation, so it changes nothing then.
    Whole,
}

/// The ledger statement: `src` yields the amount and reference; the balance
/// update (guarded at zero), the transaction, both postings, the audit record
/// and the idempotency outcome follow from it in one statement. `who` is
/// the customer; `$1`–`$12` are `post_transaction`'s common parameters.
fn ledger_statement(src: &str, shape: CallShape) -> String {
    let (who, nonce, outcome) = match shape {
        CallShape::Claimed => (
            "SELECT $1::bigint AS id",
            "",
            "UPDATE idempotency_keys SET transaction_id = t.id FROM t \
             WHERE idempotency_keys.merchant_id = $3 AND idempotency_keys.key = $12",
        ),
        CallShape::Whole => (
            "SELECT id FROM customers WHERE merchant_id = $3 AND external_id = $1",
            ", n AS (INSERT INTO api_nonces (signed_at, key_id, nonce) \
             SELECT $17::bigint, $18::text, $19::text WHERE $18::text IS NOT NULL)",
            "INSERT INTO idempotency_keys (merchant_id, key, request_hash, transaction_id, created_at) \
             SELECT $3, $12, $20::text, t.id, $8 FROM t WHERE $12::text IS NOT NULL",
        ),
    };
    format!(
        "WITH who AS ({who}){nonce}, src AS ({src}), account AS ( \
           UPDATE ledger_accounts SET balance = balance + src.amount FROM src, who \
           WHERE ledger_accounts.customer_id = who.id AND ledger_accounts.asset = $2 \
           AND ledger_accounts.balance + src.amount >= 0 \
           RETURNING ledger_accounts.id, ledger_accounts.customer_id, ledger_accounts.balance, src.amount, src.reference \
         ), t AS ( \
           INSERT INTO ledger_transactions (merchant_id, customer_id, kind, amount_fen, balance_after_fen, reference, \
           reason, channel, created_by, created_at) \
           SELECT $3, account.customer_id, $4, account.amount, account.balance, account.reference, $5, $6, $7, $8 FROM account \
           RETURNING {TRANSACTION_COLUMNS} \
         ), p AS ( \
           INSERT INTO ledger_postings (transaction_id, account_id, asset, amount) \
           SELECT t.id, account.id, $2, t.amount_fen FROM t, account \
           UNION ALL \
           SELECT t.id, (SELECT id FROM ledger_accounts WHERE merchant_id = $3 AND kind = $9 AND customer_id IS NULL AND asset = $2), \
           $2, -t.amount_fen FROM t \
           RETURNING 1 \
         ), a AS ( \
           INSERT INTO audit_log (merchant_id, actor_staff_id, actor, action, target, detail, n_affected, created_at) \
           SELECT $3, $10, $7, $11, 'customer=' || t.customer_id, \
           'transaction=' || t.id || ' amount_fen=' || t.amount_fen || ' balance_after_fen=' || t.balance_after_fen \
           || ' reference=' || t.reference || ' channel=' || $6 \
           || CASE WHEN $5 = '' THEN '' ELSE ' reason=' || $5 END, 1, $8 FROM t \
         ), i AS ({outcome}) \
         SELECT {TRANSACTION_COLUMNS}, (SELECT count(*) FROM p) FROM t"
    )
}

static AMOUNT_STATEMENT: LazyLock<String> = LazyLock::new(|| {
    ledger_statement(
        "SELECT $13::bigint AS amount, $14::text AS reference",
        CallShape::Claimed,
    )
});
/// The redemption's source: the code's guarded UPDATE (state, validity, and
/// the attempt limit per customer and per client).
const REDEEM_SOURCE: &str = "UPDATE codes SET state = 'used', customer_id = who.id, redeemed_at = $8 FROM who \
     WHERE codes.merchant_id = $3 AND codes.digest = $13 AND codes.state = 'unused' \
     AND (codes.valid_from IS NULL OR codes.valid_from <= $8) AND (codes.valid_until IS NULL OR codes.valid_until >= $8) \
     AND (SELECT count(*) FROM attempt_failures f WHERE f.merchant_id = $3 AND f.key = 'code-customer:' || who.id AND f.at >= $15) < $16 \
     AND (SELECT count(*) FROM attempt_failures f WHERE f.merchant_id = $3 AND f.key = $14 AND f.at >= $15) < $16 \
     RETURNING codes.face_value_fen AS amount, 'code:' || codes.id AS reference";
static REDEEM_STATEMENT: LazyLock<String> =
    LazyLock::new(|| ledger_statement(REDEEM_SOURCE, CallShape::Claimed));
static REDEEM_CALL_STATEMENT: LazyLock<String> =
    LazyLock::new(|| ledger_statement(REDEEM_SOURCE, CallShape::Whole));

/// The twelve parameters every ledger statement takes; `who` is `$1`.
#[expect(
    clippy::too_many_arguments,
    reason = "one posting names every column of its transaction"
)]
fn common_params<'a>(
    who: P<'a>,
    merchant_id: &'a i64,
    kind: &'a &'static str,
    reason: &'a &'a str,
    channel: &'a &'static str,
    actor: &'a Actor,
    now: &'a i64,
    counter: &'a &'static str,
    action: &'a String,
    idempotency_key: &'a Option<&'a str>,
) -> Vec<P<'a>> {
    vec![
        who,
        &ASSET_FEN,
        merchant_id,
        kind,
        reason,
        channel,
        &actor.label,
        now,
        counter,
        &actor.staff_id,
        action,
        idempotency_key,
    ]
}

/// The transaction a ledger statement returned, its postings counted.
fn posted(row: Option<Row>) -> StoreResult<Option<LedgerTransaction>> {
    let Some(row) = row else {
        return Ok(None);
    };
    let n_postings: i64 = row.get(11);
    if n_postings != 2 {
        return Err(StoreError::Backend(format!(
            "ledger: {n_postings} postings written, not 2"
        )));
    }
    Ok(Some(transaction_from_row(&row)?))
}

/// Moves an amount into (or out of) the customer's balance with its two
/// postings and audit record, all in one statement (one round trip); `None`
/// when nothing moved: the balance would go below zero, or the code was
/// refused.
#[expect(
    clippy::too_many_arguments,
    reason = "one posting names every column of its transaction"
)]
async fn post_transaction(
    c: &impl GenericClient,
    merchant_id: i64,
    customer_id: i64,
    kind: TransactionKind,
    source: Source<'_>,
    reason: &str,
    channel: Channel,
    actor: &Actor,
    now: i64,
    idempotency_key: Option<&str>,
) -> StoreResult<Option<LedgerTransaction>> {
    let (kind_code, channel_code) = (kind.code(), channel.code());
    let counter = kind.counter_account().code();
    let action = format!("{kind_code}_balance");
    let mut params = common_params(
        &customer_id,
        &merchant_id,
        &kind_code,
        &reason,
        &channel_code,
        actor,
        &now,
        &counter,
        &action,
        &idempotency_key,
    );
    let row = match source {
        Source::Amount { delta, reference } => {
            params.extend([&delta as P<'_>, &reference]);
            opt(c, &AMOUNT_STATEMENT, &params).await?
        }
        Source::Code(op, client_key) => {
            params.extend([
                &op.digest as P<'_>,
                &client_key,
                &op.attempts_since,
                &op.attempt_limit,
            ]);
            opt(c, &REDEEM_STATEMENT, &params).await?
        }
    };
    posted(row)
}

/// A signed redemption for a customer the merchant's system names by
/// external id, as one statement without BEGIN/COMMIT: nonce, customer,
/// code, balance, transaction, postings, audit record and idempotency
/// record. `None` when it changed nothing but the nonce (no such customer
/// yet, the code refused, a replay): the caller then runs the call the
/// general way, without the nonce. `Conflict` when the nonce or key was
/// used before: nothing changed, the general way decides.
async fn redeem_in_one_statement(
    c: &impl GenericClient,
    call: &ApiCall,
    op: &RedeemCode,
    external_id: &str,
) -> StoreResult<Option<LedgerTransaction>> {
    let kind = TransactionKind::Redeem;
    let (kind_code, channel_code) = (kind.code(), op.channel.code());
    let counter = kind.counter_account().code();
    let action = format!("{kind_code}_balance");
    let key = call.idempotency.as_ref().map(|claim| claim.key.as_str());
    let request_hash = call.idempotency.as_ref().map(|claim| &claim.request_hash);
    let client_key = client_attempt_key(&op.client_key);
    let nonce = call.nonce.as_ref();
    let (signed_at, key_id, nonce_text) = (
        nonce.map(|n| n.signed_at),
        nonce.map(|n| n.api_key_id.as_str()),
        nonce.map(|n| n.nonce.as_str()),
    );
    let mut params = common_params(
        &external_id,
        &op.merchant_id,
        &kind_code,
        &"",
        &channel_code,
        &op.actor,
        &op.now,
        &counter,
        &action,
        &key,
    );
    params.extend([
        &op.digest as P<'_>,
        &client_key,
        &op.attempts_since,
        &op.attempt_limit,
        &signed_at,
        &key_id,
        &nonce_text,
        &request_hash,
    ]);
    posted(opt(c, &REDEEM_CALL_STATEMENT, &params).await?)
}

/// `post_transaction` for a given amount: a spend, refund or adjustment.
#[expect(
    clippy::too_many_arguments,
    reason = "one posting names every column of its transaction"
)]
async fn post_amount(
    c: &impl GenericClient,
    merchant_id: i64,
    customer_id: i64,
    kind: TransactionKind,
    delta: i64,
    reference: &str,
    reason: &str,
    channel: Channel,
    actor: &Actor,
    now: i64,
    idempotency_key: Option<&str>,
) -> StoreResult<Result<LedgerTransaction, Refusal>> {
    let source = Source::Amount { delta, reference };
    let posted = post_transaction(
        c,
        merchant_id,
        customer_id,
        kind,
        source,
        reason,
        channel,
        actor,
        now,
        idempotency_key,
    )
    .await?;
    Ok(posted.ok_or(Refusal::InsufficientBalance))
}

async fn redeem(
    c: &impl GenericClient,
    op: &RedeemCode,
    found: Option<i64>,
    idempotency_key: Option<&str>,
) -> StoreResult<Result<LedgerTransaction, Refusal>> {
    let merchant_id = op.merchant_id;
    let Some(customer_id) =
        create_missing_customer(c, merchant_id, &op.customer, op.now, true, found).await?
    else {
        return Ok(Err(Refusal::CustomerNotFound));
    };
    let customer_key = customer_attempt_key(customer_id);
    let client_key = client_attempt_key(&op.client_key);
    // The attempt limit is part of the code's guard: a locked customer or
    // client redeems nothing, and the happy path is one statement.
    let source = Source::Code(op, &client_key);
    let redeemed = post_transaction(
        c,
        merchant_id,
        customer_id,
        TransactionKind::Redeem,
        source,
        "",
        op.channel,
        &op.actor,
        op.now,
        idempotency_key,
    )
    .await?;
    let Some(transaction) = redeemed else {
        let counts = all(
            c,
            "SELECT count(*), MIN(at) FROM attempt_failures WHERE merchant_id = $1 AND key IN ($2, $3) AND at >= $4 \
             GROUP BY key HAVING count(*) >= $5",
            &[&merchant_id, &customer_key, &client_key, &op.attempts_since, &op.attempt_limit],
        )
        .await?;
        if let Some(row) = counts.first() {
            let oldest: i64 = row.get::<_, Option<i64>>(1).unwrap_or(op.now);
            return Ok(Err(Refusal::Locked {
                retry_after_seconds: kaquan_core::pickup::retry_after_seconds(
                    oldest,
                    op.attempts_since,
                ),
            }));
        }
        let facts = opt(
            c,
            "SELECT state, valid_from, valid_until FROM codes WHERE merchant_id = $1 AND digest = $2",
            &[&merchant_id, &op.digest],
        )
        .await?
        .and_then(|r| {
            Some(CodeFacts {
                state: CodeState::parse(r.get(0))?,
                valid_from: r.get(1),
                valid_until: r.get(2),
            })
        });
        let reason = refusal_reason(facts, op.now);
        // Every refusal counts against 兑换防刷, whatever its reason, so
        // every refusal does the same work and takes the same time.
        exec(
            c,
            "INSERT INTO attempt_failures (merchant_id, key, at) VALUES ($1, $2, $4), ($1, $3, $4)",
            &[&merchant_id, &customer_key, &client_key, &op.now],
        )
        .await?;
        insert_audit(
            c,
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
        .await?;
        return Ok(Err(Refusal::CodeRefused));
    };
    Ok(Ok(transaction))
}

/// Runs one ledger operation; `found` is its customer when already looked up.
async fn run_ledger_op(
    c: &impl GenericClient,
    op: &LedgerOp,
    found: Option<i64>,
    idempotency_key: Option<&str>,
) -> StoreResult<Result<LedgerTransaction, Refusal>> {
    match op {
        LedgerOp::Redeem(op) => redeem(c, op, found, idempotency_key).await,
        LedgerOp::Spend(op) => {
            let Some(customer_id) = found else {
                return Ok(Err(Refusal::CustomerNotFound));
            };
            let spent = post_amount(
                c,
                op.merchant_id,
                customer_id,
                TransactionKind::Spend,
                -op.amount_fen,
                &op.reference,
                "",
                Channel::Api,
                &op.actor,
                op.now,
                idempotency_key,
            )
            .await?;
            if let Ok(transaction) = &spent {
                exec(
                    c,
                    "INSERT INTO spend_refunds (transaction_id, merchant_id, customer_id, amount_fen) VALUES ($1, $2, $3, $4)",
                    &[&transaction.id, &op.merchant_id, &customer_id, &op.amount_fen],
                )
                .await?;
            }
            Ok(spent)
        }
        LedgerOp::Refund(op) => {
            let refunded = opt(
                c,
                "UPDATE spend_refunds SET refunded_fen = refunded_fen + $1 \
                 WHERE transaction_id = $2 AND merchant_id = $3 AND refunded_fen + $1 <= amount_fen \
                 RETURNING customer_id",
                &[&op.amount_fen, &op.spend_transaction_id, &op.merchant_id],
            )
            .await?;
            let Some(refunded) = refunded else {
                let exists = opt(
                    c,
                    "SELECT 1 FROM spend_refunds WHERE transaction_id = $1 AND merchant_id = $2",
                    &[&op.spend_transaction_id, &op.merchant_id],
                )
                .await?;
                return Ok(Err(if exists.is_some() {
                    Refusal::RefundExceedsSpend
                } else {
                    Refusal::SpendNotFound
                }));
            };
            post_amount(
                c,
                op.merchant_id,
                refunded.get(0),
                TransactionKind::Refund,
                op.amount_fen,
                &format!("spend:{}", op.spend_transaction_id),
                &op.reason,
                Channel::Api,
                &op.actor,
                op.now,
                idempotency_key,
            )
            .await
        }
        LedgerOp::Adjust(op) => {
            let customer = CustomerRef::Id(op.customer_id);
            if resolve_customer(c, op.merchant_id, &customer, op.now, false)
                .await?
                .is_none()
            {
                return Ok(Err(Refusal::CustomerNotFound));
            }
            post_amount(
                c,
                op.merchant_id,
                op.customer_id,
                TransactionKind::Adjust,
                op.delta_fen,
                "",
                &op.reason,
                Channel::Store,
                &op.actor,
                op.now,
                idempotency_key,
            )
            .await
        }
    }
}

/// What an idempotency key recorded earlier.
struct Recorded {
    transaction_id: Option<i64>,
    mall_order_id: Option<i64>,
    refusal: Option<String>,
}

/// Records the nonce and claims the idempotency key. `Some` is the whole
/// answer: a reused nonce, a mismatch, or what the key's first call recorded
/// (a concurrent first call is waited for on the key's row).
async fn claim_call(
    c: &impl GenericClient,
    merchant_id: i64,
    call: &ApiCall,
    now: i64,
) -> StoreResult<Option<Result<Recorded, Refusal>>> {
    // Both inserts go out together (tokio-postgres pipelines them): one round trip.
    let nonce = async {
        match &call.nonce {
            Some(nonce) => exec(
                c,
                "INSERT INTO api_nonces (signed_at, key_id, nonce) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                &[&nonce.signed_at, &nonce.api_key_id, &nonce.nonce],
            )
            .await
            .map(Some),
            None => Ok(None),
        }
    };
    let claim = async {
        match &call.idempotency {
            Some(claim) => exec(
                c,
                "INSERT INTO idempotency_keys (merchant_id, key, request_hash, created_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT DO NOTHING",
                &[&merchant_id, &claim.key.as_str(), &claim.request_hash, &now],
            )
            .await
            .map(Some),
            None => Ok(None),
        }
    };
    let (nonce_inserted, claimed) = futures_util::try_join!(nonce, claim)?;
    if nonce_inserted == Some(0) {
        return Ok(Some(Err(Refusal::NonceReused)));
    }
    let Some(claim) = &call.idempotency else {
        return Ok(None);
    };
    if claimed == Some(1) {
        return Ok(None);
    }
    let row = one(
        c,
        "SELECT request_hash, transaction_id, mall_order_id, refusal FROM idempotency_keys WHERE merchant_id = $1 AND key = $2",
        &[&merchant_id, &claim.key.as_str()],
    )
    .await?;
    let request_hash: String = row.get(0);
    if request_hash != claim.request_hash {
        return Ok(Some(Err(Refusal::IdempotencyMismatch)));
    }
    Ok(Some(Ok(Recorded {
        transaction_id: row.get(1),
        mall_order_id: row.get(2),
        refusal: row.get(3),
    })))
}

/// Writes the call's outcome under its idempotency key (or gives the key
/// back when the outcome is not to be kept).
async fn record_call(
    c: &impl GenericClient,
    merchant_id: i64,
    call: &ApiCall,
    transaction_id: Option<i64>,
    mall_order_id: Option<i64>,
    refusal: Option<Refusal>,
) -> StoreResult<()> {
    let Some(claim) = &call.idempotency else {
        return Ok(());
    };
    if refusal.is_some_and(|r| !r.is_recorded()) {
        exec(
            c,
            "DELETE FROM idempotency_keys WHERE merchant_id = $1 AND key = $2",
            &[&merchant_id, &claim.key.as_str()],
        )
        .await?;
        return Ok(());
    }
    exec(
        c,
        "UPDATE idempotency_keys SET transaction_id = $3, mall_order_id = $4, refusal = $5 WHERE merchant_id = $1 AND key = $2",
        &[
            &merchant_id,
            &claim.key.as_str(),
            &transaction_id,
            &mall_order_id,
            &refusal.map(Refusal::code),
        ],
    )
    .await?;
    Ok(())
}

/// A transaction begun by hand, so that BEGIN travels with its first
/// statements instead of costing a round trip of its own. Dropped before
/// `end` (an error, a cancelled request) it closes its connection rather
/// than give it back to the pool inside an open transaction; the server
/// then rolls the transaction back.
struct Pipelined {
    client: Option<deadpool_postgres::Object>,
}

impl Pipelined {
    fn new(client: deadpool_postgres::Object) -> Self {
        Pipelined {
            client: Some(client),
        }
    }

    fn client(&self) -> &deadpool_postgres::Object {
        self.client
            .as_ref()
            .expect("a pipelined transaction has its connection until it ends")
    }

    /// BEGIN; join it with the first statements so they travel together.
    async fn begin(&self) -> StoreResult<()> {
        self.client().batch_execute("BEGIN").await.map_err(map_err)
    }

    /// Commits a guarded call, except one refused for a reused nonce: that
    /// rolls back, so the idempotency key it claimed alongside stays free.
    /// The connection then goes back to the pool.
    async fn finish<T>(mut self, result: &Result<T, Refusal>) -> StoreResult<()> {
        let end = if matches!(result, Err(Refusal::NonceReused)) {
            "ROLLBACK"
        } else {
            "COMMIT"
        };
        self.client().batch_execute(end).await.map_err(map_err)?;
        self.client = None;
        Ok(())
    }
}

impl Drop for Pipelined {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            drop(deadpool_postgres::Object::take(client));
        }
    }
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

async fn get_transaction(
    c: &impl GenericClient,
    merchant_id: i64,
    id: i64,
) -> StoreResult<LedgerTransaction> {
    let row = opt(
        c,
        &format!(
            "SELECT {TRANSACTION_COLUMNS} FROM ledger_transactions WHERE id = $1 AND merchant_id = $2"
        ),
        &[&id, &merchant_id],
    )
    .await?
    .ok_or(StoreError::NotFound)?;
    transaction_from_row(&row)
}

async fn get_mall_order(c: &impl GenericClient, id: i64) -> StoreResult<MallOrder> {
    let r = one(
        c,
        "SELECT merchant_id, order_id, product_id, product_name, quantity, customer_id, created_at FROM mall_orders WHERE id = $1",
        &[&id],
    )
    .await?;
    let codes = all(
        c,
        &format!(
            "SELECT {CODE_COLUMNS} FROM {CODE_JOINS} WHERE c.mall_order_id = $1 ORDER BY c.id"
        ),
        &[&id],
    )
    .await?
    .iter()
    .map(code_from_row)
    .collect::<StoreResult<_>>()?;
    Ok(MallOrder {
        merchant_id: r.get(0),
        order_id: r.get(1),
        product_id: r.get(2),
        product_name: r.get(3),
        quantity: r.get(4),
        customer_id: r.get(5),
        created_at: r.get(6),
        codes,
    })
}

async fn insert_codes(
    tx: &impl GenericClient,
    merchant_id: i64,
    template_id: i64,
    mall_order_id: Option<i64>,
    codes: &[NewCode],
    now: i64,
) -> StoreResult<()> {
    if codes.is_empty() {
        return Ok(());
    }
    let digests: Vec<&[u8]> = codes.iter().map(|c| c.digest.as_slice()).collect();
    let sealed: Vec<&[u8]> = codes.iter().map(|c| c.sealed.as_slice()).collect();
    let versions: Vec<i32> = codes.iter().map(|c| c.key_version).collect();
    let n = exec(
        tx,
        "INSERT INTO codes (merchant_id, template_id, digest, sealed, key_version, state, face_value_fen, valid_from, valid_until, \
         mall_order_id, issued_at) \
         SELECT $1, t.id, u.digest, u.sealed, u.key_version, 'unused', t.face_value_fen, t.valid_from, t.valid_until, $6, $7 \
         FROM code_templates t, unnest($3::bytea[], $4::bytea[], $5::int[]) AS u(digest, sealed, key_version) \
         WHERE t.id = $2 AND t.merchant_id = $1 AND t.deleted_at IS NULL",
        &[&merchant_id, &template_id, &digests, &sealed, &versions, &mall_order_id, &now],
    )
    .await?;
    if n != codes.len() as u64 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

async fn get_customer(
    c: &impl GenericClient,
    merchant_id: i64,
    customer_id: i64,
) -> StoreResult<Customer> {
    opt(
        c,
        &format!("SELECT {CUSTOMER_COLUMNS} FROM {CUSTOMER_JOINS} WHERE u.id = $1 AND u.merchant_id = $2"),
        &[&customer_id, &merchant_id],
    )
    .await?
    .map(|r| customer_from_row(&r))
    .ok_or(StoreError::NotFound)
}

#[async_trait::async_trait]
impl StoredValueStore for PgStore {
    async fn get_giftcard_settings(&self, merchant_id: i64) -> StoreResult<GiftcardSettings> {
        let client = self.client().await?;
        let found = opt(
            &client,
            "SELECT enabled, centre_entry, attempt_limit, centre_name, share_title, description, phone_login, \
             distribution, goods_display FROM giftcard_settings WHERE merchant_id = $1",
            &[&merchant_id],
        )
        .await?;
        found
            .map(|r| -> StoreResult<GiftcardSettings> {
                Ok(GiftcardSettings {
                    enabled: r.get(0),
                    centre_entry: r.get(1),
                    attempt_limit: r.get(2),
                    centre_name: r.get(3),
                    share_title: r.get(4),
                    description: r.get(5),
                    phone_login: r.get(6),
                    distribution: r.get(7),
                    goods_display: parse_or(GoodsDisplay::parse(r.get(8)), "goods display")?,
                })
            })
            .transpose()
            .map(Option::unwrap_or_default)
    }

    async fn put_giftcard_settings(
        &self,
        merchant_id: i64,
        s: &GiftcardSettings,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        exec(
            &tx,
            "INSERT INTO giftcard_settings (merchant_id, enabled, centre_entry, attempt_limit, centre_name, share_title, \
             description, phone_login, distribution, goods_display) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (merchant_id) DO UPDATE SET \
             enabled = excluded.enabled, centre_entry = excluded.centre_entry, attempt_limit = excluded.attempt_limit, \
             centre_name = excluded.centre_name, share_title = excluded.share_title, description = excluded.description, \
             phone_login = excluded.phone_login, distribution = excluded.distribution, goods_display = excluded.goods_display",
            &[
                &merchant_id,
                &s.enabled,
                &s.centre_entry,
                &s.attempt_limit,
                &s.centre_name,
                &s.share_title,
                &s.description,
                &s.phone_login,
                &s.distribution,
                &s.goods_display.code(),
            ],
        )
        .await?;
        insert_audit(&tx, audit, 1).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn put_giftcard_image(
        &self,
        merchant_id: i64,
        slot: GiftcardImageSlot,
        content_type: &str,
        bytes: &[u8],
        now: i64,
    ) -> StoreResult<()> {
        let client = self.client().await?;
        exec(
            &client,
            "INSERT INTO giftcard_images (merchant_id, slot, content_type, bytes, updated_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (merchant_id, slot) DO UPDATE SET content_type = excluded.content_type, bytes = excluded.bytes, \
             updated_at = excluded.updated_at",
            &[&merchant_id, &slot.code(), &content_type, &bytes, &now],
        )
        .await?;
        Ok(())
    }

    async fn get_giftcard_image(
        &self,
        merchant_id: i64,
        slot: GiftcardImageSlot,
    ) -> StoreResult<Option<(String, Vec<u8>)>> {
        let client = self.client().await?;
        Ok(opt(
            &client,
            "SELECT content_type, bytes FROM giftcard_images WHERE merchant_id = $1 AND slot = $2",
            &[&merchant_id, &slot.code()],
        )
        .await?
        .map(|r| (r.get(0), r.get(1))))
    }

    async fn giftcard_images(
        &self,
        merchant_id: i64,
    ) -> StoreResult<Vec<(GiftcardImageSlot, i64)>> {
        let client = self.client().await?;
        Ok(all(
            &client,
            "SELECT slot, updated_at FROM giftcard_images WHERE merchant_id = $1",
            &[&merchant_id],
        )
        .await?
        .iter()
        .filter_map(|r| Some((GiftcardImageSlot::parse(r.get(0))?, r.get(1))))
        .collect())
    }

    async fn create_code_template(
        &self,
        merchant_id: i64,
        kind: CodeKind,
        f: &CodeTemplateFields,
        codes: &[NewCode],
        audit: &AuditEntry,
    ) -> StoreResult<CodeTemplate> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let id: i64 = one(
            &tx,
            "INSERT INTO code_templates (merchant_id, kind, name, face_value_fen, valid_from, valid_until, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
            &[
                &merchant_id,
                &kind.code(),
                &f.name,
                &f.face_value_fen,
                &f.valid_from,
                &f.valid_until,
                &audit.actor.label,
                &audit.created_at,
            ],
        )
        .await?
        .get(0);
        insert_codes(&tx, merchant_id, id, None, codes, audit.created_at).await?;
        let mut audit = audit.clone();
        audit.target = format!("code_template={id}");
        insert_audit(&tx, &audit, codes.len() as i64).await?;
        let template = template_from_row(
            &one(
                &tx,
                &format!("SELECT {TEMPLATE_COLUMNS} FROM code_templates t WHERE t.id = $1"),
                &[&id],
            )
            .await?,
        )?;
        tx.commit().await.map_err(map_err)?;
        super::refresh_statistics(&client, "codes", codes.len() as i64).await;
        Ok(template)
    }

    async fn list_code_templates(
        &self,
        merchant_id: i64,
        kind: CodeKind,
        page: Page,
    ) -> StoreResult<(Vec<CodeTemplate>, i64)> {
        let client = self.client().await?;
        let total: i64 = one(
            &client,
            "SELECT count(*) FROM code_templates WHERE merchant_id = $1 AND kind = $2 AND deleted_at IS NULL",
            &[&merchant_id, &kind.code()],
        )
        .await?
        .get(0);
        let rows = all(
            &client,
            &format!(
                "SELECT {TEMPLATE_COLUMNS} FROM code_templates t WHERE t.merchant_id = $1 AND t.kind = $2 \
                 AND t.deleted_at IS NULL ORDER BY t.id DESC LIMIT $3 OFFSET $4"
            ),
            &[&merchant_id, &kind.code(), &page.page_size, &page.offset()],
        )
        .await?;
        Ok((
            rows.iter()
                .map(template_from_row)
                .collect::<StoreResult<_>>()?,
            total,
        ))
    }

    async fn get_code_template(
        &self,
        merchant_id: i64,
        template_id: i64,
    ) -> StoreResult<CodeTemplate> {
        let client = self.client().await?;
        let row = opt(
            &client,
            &format!(
                "SELECT {TEMPLATE_COLUMNS} FROM code_templates t WHERE t.id = $1 AND t.merchant_id = $2"
            ),
            &[&template_id, &merchant_id],
        )
        .await?
        .ok_or(StoreError::NotFound)?;
        template_from_row(&row)
    }

    async fn delete_code_template(
        &self,
        merchant_id: i64,
        template_id: i64,
        expected_unused: i64,
        audit: &AuditEntry,
    ) -> StoreResult<i64> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        // Lock the template first so a concurrent issue cannot change the count.
        let n = exec(
            &tx,
            "UPDATE code_templates SET deleted_at = $1 WHERE id = $2 AND merchant_id = $3 AND deleted_at IS NULL",
            &[&audit.created_at, &template_id, &merchant_id],
        )
        .await?;
        if n != 1 {
            return Err(StoreError::Conflict("the template is gone".into()));
        }
        let voided = exec(
            &tx,
            "UPDATE codes SET state = 'voided' WHERE template_id = $1 AND state = 'unused'",
            &[&template_id],
        )
        .await? as i64;
        if voided != expected_unused {
            return Err(StoreError::Conflict(
                "the number of unused codes changed".into(),
            ));
        }
        exec(
            &tx,
            "UPDATE giftcard_products SET on_shelf = FALSE WHERE template_id = $1",
            &[&template_id],
        )
        .await?;
        insert_audit(&tx, audit, voided).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(voided)
    }

    async fn list_codes(
        &self,
        merchant_id: i64,
        template_id: i64,
        state: Option<CodeState>,
        page: Page,
    ) -> StoreResult<(Vec<IssuedCode>, i64)> {
        let client = self.client().await?;
        let state = state.map(CodeState::code);
        let total: i64 = one(
            &client,
            "SELECT count(*) FROM codes WHERE template_id = $1 AND merchant_id = $2 \
             AND ($3::text IS NULL OR state = $3)",
            &[&template_id, &merchant_id, &state],
        )
        .await?
        .get(0);
        let rows = all(
            &client,
            &format!(
                "SELECT {CODE_COLUMNS} FROM {CODE_JOINS} WHERE c.template_id = $1 AND c.merchant_id = $2 \
                 AND ($3::text IS NULL OR c.state = $3) ORDER BY c.id LIMIT $4 OFFSET $5"
            ),
            &[&template_id, &merchant_id, &state, &page.page_size, &page.offset()],
        )
        .await?;
        Ok((
            rows.iter().map(code_from_row).collect::<StoreResult<_>>()?,
            total,
        ))
    }

    async fn find_code(&self, merchant_id: i64, digest: &[u8]) -> StoreResult<Option<IssuedCode>> {
        let client = self.client().await?;
        opt(
            &client,
            &format!("SELECT {CODE_COLUMNS} FROM {CODE_JOINS} WHERE c.merchant_id = $1 AND c.digest = $2"),
            &[&merchant_id, &digest],
        )
        .await?
        .as_ref()
        .map(code_from_row)
        .transpose()
    }

    async fn codes_after(
        &self,
        merchant_id: i64,
        template_id: i64,
        after_id: i64,
        limit: i64,
    ) -> StoreResult<Vec<IssuedCode>> {
        let client = self.client().await?;
        all(
            &client,
            &format!(
                "SELECT {CODE_COLUMNS} FROM {CODE_JOINS} WHERE c.template_id = $1 AND c.merchant_id = $2 AND c.id > $3 \
                 ORDER BY c.id LIMIT $4"
            ),
            &[&template_id, &merchant_id, &after_id, &limit],
        )
        .await?
        .iter()
        .map(code_from_row)
        .collect()
    }

    async fn create_giftcard_product(
        &self,
        merchant_id: i64,
        f: &GiftcardProductFields,
        now: i64,
    ) -> StoreResult<GiftcardProduct> {
        let client = self.client().await?;
        let id: i64 = opt(
            &client,
            "INSERT INTO giftcard_products (merchant_id, name, template_id, price_fen, on_shelf, created_at) \
             SELECT $1, $2, t.id, $4, $5, $6 FROM code_templates t \
             WHERE t.id = $3 AND t.merchant_id = $1 AND t.kind = 'online' AND t.deleted_at IS NULL RETURNING id",
            &[&merchant_id, &f.name, &f.template_id, &f.price_fen, &f.on_shelf, &now],
        )
        .await?
        .ok_or(StoreError::NotFound)?
        .get(0);
        Ok(product_from_row(
            &one(
                &client,
                &format!("SELECT {PRODUCT_COLUMNS} FROM giftcard_products p JOIN code_templates t ON t.id = p.template_id WHERE p.id = $1"),
                &[&id],
            )
            .await?,
        ))
    }

    async fn update_giftcard_product(
        &self,
        merchant_id: i64,
        product_id: i64,
        f: &GiftcardProductFields,
    ) -> StoreResult<()> {
        let client = self.client().await?;
        let n = exec(
            &client,
            "UPDATE giftcard_products SET name = $1, template_id = $2, price_fen = $3, on_shelf = $4 \
             WHERE id = $5 AND merchant_id = $6 AND EXISTS (SELECT 1 FROM code_templates t WHERE t.id = $2 \
             AND t.merchant_id = $6 AND t.kind = 'online' AND t.deleted_at IS NULL)",
            &[&f.name, &f.template_id, &f.price_fen, &f.on_shelf, &product_id, &merchant_id],
        )
        .await?;
        super::expect_one(n)
    }

    async fn list_giftcard_products(&self, merchant_id: i64) -> StoreResult<Vec<GiftcardProduct>> {
        let client = self.client().await?;
        Ok(all(
            &client,
            &format!(
                "SELECT {PRODUCT_COLUMNS} FROM giftcard_products p JOIN code_templates t ON t.id = p.template_id \
                 WHERE p.merchant_id = $1 ORDER BY p.id DESC"
            ),
            &[&merchant_id],
        )
        .await?
        .iter()
        .map(product_from_row)
        .collect())
    }

    async fn issue_order_codes(
        &self,
        call: &ApiCall,
        order: &IssueOrderCodes,
    ) -> StoreResult<Called<MallOrder>> {
        let merchant_id = order.merchant_id;
        let tx = Pipelined::new(self.client().await?);
        let c = tx.client();
        let ((), claimed) =
            futures_util::try_join!(tx.begin(), claim_call(c, merchant_id, call, order.now))?;
        let answer = match claimed {
            Some(Err(refusal)) => Some(Called {
                result: Err(refusal),
                replayed: false,
            }),
            Some(Ok(recorded)) => Some(match recorded.mall_order_id {
                Some(id) => Called {
                    result: Ok(get_mall_order(c, id).await?),
                    replayed: true,
                },
                None => replayed_refusal(&recorded)?,
            }),
            None => None,
        };
        if let Some(answer) = answer {
            tx.finish(&answer.result).await?;
            return Ok(answer);
        }
        // Reporting one order twice at once: the second waits on the first's row.
        let inserted = opt(
            c,
            "INSERT INTO mall_orders (merchant_id, order_id, product_id, product_name, quantity, customer_id, created_at) \
             SELECT $1, $2, p.id, p.name, $3, NULL, $4 FROM giftcard_products p JOIN code_templates t ON t.id = p.template_id \
             WHERE p.id = $5 AND p.merchant_id = $1 AND p.on_shelf AND t.deleted_at IS NULL \
             ON CONFLICT (merchant_id, order_id) DO NOTHING RETURNING id, (SELECT template_id FROM giftcard_products WHERE id = $5)",
            &[&merchant_id, &order.order_id, &order.quantity, &order.now, &order.product_id],
        )
        .await?;
        let (result, replayed) = match inserted {
            Some(row) => {
                let (id, template_id): (i64, i64) = (row.get(0), row.get(1));
                if let Some(customer) = &order.customer {
                    let customer_id =
                        resolve_customer(c, merchant_id, customer, order.now, true).await?;
                    exec(
                        c,
                        "UPDATE mall_orders SET customer_id = $1 WHERE id = $2",
                        &[&customer_id, &id],
                    )
                    .await?;
                }
                insert_codes(
                    c,
                    merchant_id,
                    template_id,
                    Some(id),
                    &order.codes,
                    order.now,
                )
                .await?;
                insert_audit(
                    c,
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
                .await?;
                (Ok(id), false)
            }
            None => {
                let existing = opt(
                    c,
                    "SELECT id, product_id, quantity FROM mall_orders WHERE merchant_id = $1 AND order_id = $2",
                    &[&merchant_id, &order.order_id],
                )
                .await?;
                match existing {
                    Some(r)
                        if r.get::<_, i64>(1) == order.product_id
                            && r.get::<_, i64>(2) == order.quantity =>
                    {
                        (Ok(r.get(0)), true)
                    }
                    Some(_) => (Err(Refusal::OrderMismatch), false),
                    None => (Err(Refusal::ProductUnavailable), false),
                }
            }
        };
        let called = match result {
            Ok(id) => {
                record_call(c, merchant_id, call, None, Some(id), None).await?;
                Called {
                    result: Ok(get_mall_order(c, id).await?),
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

    async fn list_customer_orders(
        &self,
        merchant_id: i64,
        customer_id: i64,
    ) -> StoreResult<Vec<MallOrder>> {
        let client = self.client().await?;
        let ids: Vec<i64> = all(
            &client,
            "SELECT id FROM mall_orders WHERE merchant_id = $1 AND customer_id = $2 ORDER BY id DESC LIMIT 100",
            &[&merchant_id, &customer_id],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
        let mut orders = Vec::with_capacity(ids.len());
        for id in ids {
            orders.push(get_mall_order(&client, id).await?);
        }
        Ok(orders)
    }

    async fn post_ledger(
        &self,
        call: &ApiCall,
        op: &LedgerOp,
    ) -> StoreResult<Called<LedgerTransaction>> {
        let (merchant_id, now) = (op.merchant_id(), op.now());
        let client = self.client().await?;
        // The usual signed redemption (a customer the merchant's system
        // already sent us, a good code) is one statement: one round trip.
        let mut rest = None;
        if let LedgerOp::Redeem(redeem) = op {
            if let CustomerRef::External(external_id) = &redeem.customer {
                match redeem_in_one_statement(&client, call, redeem, external_id).await {
                    Ok(Some(transaction)) => {
                        return Ok(Called {
                            result: Ok(transaction),
                            replayed: false,
                        })
                    }
                    // Only the nonce was recorded: the rest runs as below.
                    Ok(None) => {
                        rest = Some(ApiCall {
                            nonce: None,
                            ..call.clone()
                        })
                    }
                    // A used nonce or key changed nothing; below says which.
                    Err(StoreError::Conflict(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        let call = rest.as_ref().unwrap_or(call);
        let tx = Pipelined::new(client);
        let c = tx.client();
        // BEGIN, the nonce, the key's claim and the customer lookup go out
        // together (tokio-postgres pipelines them): one round trip.
        let customer = match op {
            LedgerOp::Redeem(redeem) => Some(&redeem.customer),
            LedgerOp::Spend(spend) => Some(&spend.customer),
            LedgerOp::Refund(_) | LedgerOp::Adjust(_) => None,
        };
        let find = async {
            match customer {
                Some(customer) => find_customer(c, merchant_id, customer).await,
                None => Ok(None),
            }
        };
        let ((), claimed, found) =
            futures_util::try_join!(tx.begin(), claim_call(c, merchant_id, call, now), find)?;
        let called = match claimed {
            Some(Err(refusal)) => Called {
                result: Err(refusal),
                replayed: false,
            },
            Some(Ok(recorded)) => match recorded.transaction_id {
                Some(id) => Called {
                    result: Ok(get_transaction(c, merchant_id, id).await?),
                    replayed: true,
                },
                None => replayed_refusal(&recorded)?,
            },
            None => {
                let key = call.idempotency.as_ref().map(|c| c.key.as_str());
                let result = run_ledger_op(c, op, found, key).await?;
                // A transaction recorded itself under the key in its own statement.
                if let Err(refusal) = &result {
                    record_call(c, merchant_id, call, None, None, Some(*refusal)).await?;
                }
                Called {
                    result,
                    replayed: false,
                }
            }
        };
        tx.finish(&called.result).await?;
        Ok(called)
    }

    async fn get_transaction(
        &self,
        merchant_id: i64,
        transaction_id: i64,
    ) -> StoreResult<LedgerTransaction> {
        let client = self.client().await?;
        get_transaction(&client, merchant_id, transaction_id).await
    }

    async fn list_statement(
        &self,
        merchant_id: i64,
        customer_id: i64,
        page: Page,
    ) -> StoreResult<(Vec<LedgerTransaction>, i64)> {
        let client = self.client().await?;
        let total: i64 = one(
            &client,
            "SELECT count(*) FROM ledger_transactions WHERE customer_id = $1 AND merchant_id = $2",
            &[&customer_id, &merchant_id],
        )
        .await?
        .get(0);
        let rows = all(
            &client,
            &format!(
                "SELECT {TRANSACTION_COLUMNS} FROM ledger_transactions WHERE customer_id = $1 AND merchant_id = $2 \
                 ORDER BY id DESC LIMIT $3 OFFSET $4"
            ),
            &[&customer_id, &merchant_id, &page.page_size, &page.offset()],
        )
        .await?;
        Ok((
            rows.iter()
                .map(transaction_from_row)
                .collect::<StoreResult<_>>()?,
            total,
        ))
    }

    async fn ensure_customer(
        &self,
        merchant_id: i64,
        external_id: &str,
        now: i64,
    ) -> StoreResult<Customer> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let id = resolve_customer(
            &tx,
            merchant_id,
            &CustomerRef::External(external_id.to_owned()),
            now,
            true,
        )
        .await?
        .ok_or(StoreError::NotFound)?;
        let customer = get_customer(&tx, merchant_id, id).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(customer)
    }

    async fn create_phone_customer(
        &self,
        merchant_id: i64,
        phone: &str,
        password_hash: &str,
        now: i64,
    ) -> StoreResult<Customer> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let id = insert_customer(
            &tx,
            merchant_id,
            None,
            Some(phone),
            Some(password_hash),
            now,
        )
        .await?;
        let customer = get_customer(&tx, merchant_id, id).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(customer)
    }

    async fn find_phone_customer(
        &self,
        merchant_id: i64,
        phone: &str,
    ) -> StoreResult<Option<(Customer, String)>> {
        let client = self.client().await?;
        Ok(opt(
            &client,
            &format!("SELECT {CUSTOMER_COLUMNS}, u.password_hash FROM {CUSTOMER_JOINS} WHERE u.merchant_id = $1 AND u.phone = $2 AND u.password_hash IS NOT NULL"),
            &[&merchant_id, &phone],
        )
        .await?
        .map(|r| (customer_from_row(&r), r.get(7))))
    }

    async fn get_customer(&self, merchant_id: i64, customer_id: i64) -> StoreResult<Customer> {
        let client = self.client().await?;
        get_customer(&client, merchant_id, customer_id).await
    }

    async fn find_external_customer(
        &self,
        merchant_id: i64,
        external_id: &str,
    ) -> StoreResult<Option<Customer>> {
        let client = self.client().await?;
        Ok(opt(
            &client,
            &format!("SELECT {CUSTOMER_COLUMNS} FROM {CUSTOMER_JOINS} WHERE u.merchant_id = $1 AND u.external_id = $2"),
            &[&merchant_id, &external_id],
        )
        .await?
        .map(|r| customer_from_row(&r)))
    }

    async fn list_customers(
        &self,
        merchant_id: i64,
        search: &str,
        page: Page,
    ) -> StoreResult<(Vec<Customer>, i64)> {
        let search = search.trim();
        let needle = format!(
            "%{}%",
            search
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        let filter = "u.merchant_id = $1 AND ($2 = '' OR u.external_id LIKE $3 OR u.phone LIKE $3 OR u.nickname LIKE $3)";
        let client = self.client().await?;
        let total: i64 = one(
            &client,
            &format!("SELECT count(*) FROM customers u WHERE {filter}"),
            &[&merchant_id, &search, &needle],
        )
        .await?
        .get(0);
        let rows = all(
            &client,
            &format!(
                "SELECT {CUSTOMER_COLUMNS} FROM {CUSTOMER_JOINS} WHERE {filter} ORDER BY u.id DESC LIMIT $4 OFFSET $5"
            ),
            &[&merchant_id, &search, &needle, &page.page_size, &page.offset()],
        )
        .await?;
        Ok((rows.iter().map(customer_from_row).collect(), total))
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
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        // Serialise key creation per merchant so two at once cannot make three active keys.
        exec(
            &tx,
            "SELECT id FROM merchants WHERE id = $1 FOR UPDATE",
            &[&merchant_id],
        )
        .await?;
        let key = opt(
            &tx,
            &format!(
                "INSERT INTO api_keys (merchant_id, key_id, label, secret_sealed, key_version, active, created_at) \
                 SELECT $1, $2, $3, $4, $5, TRUE, $6 \
                 WHERE (SELECT count(*) FROM api_keys WHERE merchant_id = $1 AND active) < $7 \
                 RETURNING {API_KEY_COLUMNS}"
            ),
            &[
                &merchant_id,
                &key_id,
                &label,
                &secret_sealed,
                &key_version,
                &audit.created_at,
                &API_KEYS_ACTIVE_MAX,
            ],
        )
        .await?
        .map(|r| api_key_from_row(&r))
        .ok_or_else(|| StoreError::Conflict("two API keys are already active".into()))?;
        insert_audit(&tx, audit, 1).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(key)
    }

    async fn list_api_keys(&self, merchant_id: i64) -> StoreResult<Vec<ApiKey>> {
        let client = self.client().await?;
        Ok(all(
            &client,
            &format!(
                "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE merchant_id = $1 ORDER BY id DESC"
            ),
            &[&merchant_id],
        )
        .await?
        .iter()
        .map(api_key_from_row)
        .collect())
    }

    async fn revoke_api_key(
        &self,
        merchant_id: i64,
        id: i64,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let n = exec(
            &tx,
            "UPDATE api_keys SET active = FALSE, revoked_at = $1 WHERE id = $2 AND merchant_id = $3 AND active",
            &[&audit.created_at, &id, &merchant_id],
        )
        .await?;
        super::expect_one(n)?;
        insert_audit(&tx, audit, 1).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn find_api_key(&self, key_id: &str) -> StoreResult<Option<ApiKeySecret>> {
        let client = self.client().await?;
        Ok(opt(
            &client,
            "SELECT merchant_id, key_id, secret_sealed, key_version FROM api_keys WHERE key_id = $1 AND active",
            &[&key_id],
        )
        .await?
        .map(|r| ApiKeySecret {
            merchant_id: r.get(0),
            key_id: r.get(1),
            secret_sealed: r.get(2),
            key_version: r.get(3),
        }))
    }

    async fn record_nonce(&self, nonce: &kaquan_core::ledger::NonceUse) -> StoreResult<()> {
        let client = self.client().await?;
        exec(
            &client,
            "INSERT INTO api_nonces (signed_at, key_id, nonce) VALUES ($1, $2, $3)",
            &[&nonce.signed_at, &nonce.api_key_id, &nonce.nonce],
        )
        .await?;
        Ok(())
    }

    async fn consume_login_link(&self, nonce: &str, expires_at: i64) -> StoreResult<()> {
        let client = self.client().await?;
        exec(
            &client,
            "INSERT INTO login_links (nonce, expires_at) VALUES ($1, $2)",
            &[&nonce, &expires_at],
        )
        .await?;
        Ok(())
    }

    async fn create_customer_session(&self, s: &CustomerSession) -> StoreResult<()> {
        let client = self.client().await?;
        exec(
            &client,
            "INSERT INTO customer_sessions (token_hash, merchant_id, customer_id, csrf_token, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
            &[&s.token_hash, &s.merchant_id, &s.customer_id, &s.csrf_token, &s.expires_at],
        )
        .await?;
        Ok(())
    }

    async fn find_customer_session(
        &self,
        token_hash: &str,
        now: i64,
    ) -> StoreResult<Option<CustomerSession>> {
        let client = self.client().await?;
        Ok(opt(
            &client,
            "SELECT token_hash, merchant_id, customer_id, csrf_token, expires_at FROM customer_sessions \
             WHERE token_hash = $1 AND expires_at > $2",
            &[&token_hash, &now],
        )
        .await?
        .map(|r| CustomerSession {
            token_hash: r.get(0),
            merchant_id: r.get(1),
            customer_id: r.get(2),
            csrf_token: r.get(3),
            expires_at: r.get(4),
        }))
    }

    async fn delete_customer_session(&self, token_hash: &str) -> StoreResult<()> {
        let client = self.client().await?;
        exec(
            &client,
            "DELETE FROM customer_sessions WHERE token_hash = $1",
            &[&token_hash],
        )
        .await?;
        Ok(())
    }

    async fn purge_expired(&self, now: i64) -> StoreResult<i64> {
        let client = self.client().await?;
        let mut n = 0;
        for (sql, before) in [
            (
                "DELETE FROM api_nonces WHERE signed_at < $1",
                now - NONCE_KEPT_SECONDS,
            ),
            (
                "DELETE FROM idempotency_keys WHERE created_at < $1",
                now - kaquan_core::ledger::IDEMPOTENCY_KEPT_SECONDS,
            ),
            ("DELETE FROM login_links WHERE expires_at < $1", now),
            ("DELETE FROM customer_sessions WHERE expires_at < $1", now),
            (
                "DELETE FROM attempt_failures WHERE at < $1",
                now - super::ATTEMPT_FAILURES_KEPT_SECONDS,
            ),
        ] {
            n += exec(&client, sql, &[&before]).await? as i64;
        }
        Ok(n)
    }
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
        "SELECT count(*) FROM ledger_transactions t WHERE t.balance_after_fen <> \
         (SELECT SUM(t2.amount_fen) FROM ledger_transactions t2 WHERE t2.customer_id = t.customer_id AND t2.id <= t.id)",
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
