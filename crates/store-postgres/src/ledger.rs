//! The ledger: each value-changing call is one transaction (or, for a
//! known customer's signed redemption, one statement) holding the nonce,
//! the idempotency record, the guarded balance update, both postings and
//! the audit record.

use crate::customers::create_missing_customer;
use crate::customers::find_customer;
use crate::customers::resolve_customer;
use crate::customers::Source;
use crate::engine::Pipelined;
use crate::sql::all;
use crate::sql::exec;
use crate::sql::insert_audit;
use crate::sql::one;
use crate::sql::opt;
use crate::sql::parse_or;
use crate::sql::P;
use crate::PgStore;
use deadpool_postgres::GenericClient;
use kaquan_core::attempts::{code_client_key, code_customer_key, lock};
use kaquan_core::audit::Actor;
use kaquan_core::audit::AuditEntry;
use kaquan_core::code::refusal_reason;
use kaquan_core::code::CodeFacts;
use kaquan_core::code::CodeState;
use kaquan_core::ledger::ApiCall;
use kaquan_core::ledger::Called;
use kaquan_core::ledger::CustomerRef;
use kaquan_core::ledger::LedgerOp;
use kaquan_core::ledger::LedgerTransaction;
use kaquan_core::ledger::RedeemCode;
use kaquan_core::ledger::Refusal;
use kaquan_core::ledger::TransactionKind;
use kaquan_core::ledger::ASSET_FEN;
use kaquan_core::pickup::Channel;
use kaquan_core::store::Page;
use kaquan_core::{StoreError, StoreResult};
use std::sync::LazyLock;
use tokio_postgres::Row;

pub(crate) const TRANSACTION_COLUMNS: &str =
    "id, merchant_id, customer_id, kind, amount_fen, balance_after_fen, reference, \
    reason, channel, created_by, created_at";

pub(crate) fn transaction_from_row(row: &Row) -> StoreResult<LedgerTransaction> {
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

/// How a ledger statement meets its API call.
#[derive(Clone, Copy)]
pub(crate) enum CallShape {
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
pub(crate) fn ledger_statement(src: &str, shape: CallShape) -> String {
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
           INSERT INTO ledger_postings (transaction_id, account_id, asset, amount, merchant_id) \
           SELECT t.id, account.id, $2, t.amount_fen, $3 FROM t, account \
           UNION ALL \
           SELECT t.id, (SELECT id FROM ledger_accounts WHERE merchant_id = $3 AND kind = $9 AND customer_id IS NULL AND asset = $2), \
           $2, -t.amount_fen, $3 FROM t \
           RETURNING 1 \
         ), a AS ( \
           INSERT INTO audit_log (merchant_id, actor_staff_id, actor, action, target, detail, n_affected, created_at) \
           SELECT $3, $10, $7, $11, 'customer=' || t.customer_id, \
           'transaction=' || t.id || ' amount_fen=' || t.amount_fen || ' balance_after_fen=' || t.balance_after_fen \
           || ' reference=' || t.reference || ' channel=' || $6 \
           || CASE WHEN $5 = '' THEN '' ELSE ' reason=' || $5 END, 1, $8 FROM t \
         ), ev AS ( \
           INSERT INTO events (merchant_id, event_type, data, created_at) \
           SELECT $3, x.event_type, jsonb_build_object('amount_fen', t.amount_fen, \
           'balance_after_fen', t.balance_after_fen, 'channel', t.channel, \
           'customer_id', (SELECT c.external_id FROM customers c WHERE c.id = t.customer_id), \
           'kind', t.kind, 'reference', t.reference, 'transaction_id', t.id)::text, $8 \
           FROM t CROSS JOIN (VALUES ('balance.changed'), ('code.redeemed')) x(event_type) \
           WHERE x.event_type = 'balance.changed' OR t.kind = 'redeem' \
         ), i AS ({outcome}) \
         SELECT {TRANSACTION_COLUMNS}, (SELECT count(*) FROM p) FROM t"
    )
}

pub(crate) static AMOUNT_STATEMENT: LazyLock<String> = LazyLock::new(|| {
    ledger_statement(
        "SELECT $13::bigint AS amount, $14::text AS reference",
        CallShape::Claimed,
    )
});
/// The redemption's source: the code's guarded UPDATE (state, validity, and
/// the attempt limit per customer and per client).
pub(crate) const REDEEM_SOURCE: &str = "UPDATE codes SET state = 'used', customer_id = who.id, redeemed_at = $8 FROM who \
     WHERE codes.merchant_id = $3 AND codes.digest = $13 AND codes.state = 'unused' \
     AND (codes.valid_from IS NULL OR codes.valid_from <= $8) AND (codes.valid_until IS NULL OR codes.valid_until >= $8) \
     AND (SELECT count(*) FROM attempt_failures f WHERE f.merchant_id = $3 AND f.key = 'code-customer:' || who.id AND f.at >= $15) < $16 \
     AND (SELECT count(*) FROM attempt_failures f WHERE f.merchant_id = $3 AND f.key = $14 AND f.at >= $15) < $16 \
     RETURNING codes.face_value_fen AS amount, 'code:' || codes.id AS reference";
pub(crate) static REDEEM_STATEMENT: LazyLock<String> =
    LazyLock::new(|| ledger_statement(REDEEM_SOURCE, CallShape::Claimed));
pub(crate) static REDEEM_CALL_STATEMENT: LazyLock<String> =
    LazyLock::new(|| ledger_statement(REDEEM_SOURCE, CallShape::Whole));

/// The twelve parameters every ledger statement takes; `who` is `$1`.
#[expect(
    clippy::too_many_arguments,
    reason = "one posting names every column of its transaction"
)]
pub(crate) fn common_params<'a>(
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
pub(crate) fn posted(row: Option<Row>) -> StoreResult<Option<LedgerTransaction>> {
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
pub(crate) async fn post_transaction(
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
pub(crate) async fn redeem_in_one_statement(
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
    let client_key = code_client_key(&op.client_key);
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
pub(crate) async fn post_amount(
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

pub(crate) async fn redeem(
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
    let customer_key = code_customer_key(customer_id);
    let client_key = code_client_key(&op.client_key);
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
            let retry_after_seconds =
                lock(row.get(0), row.get(1), op.attempts_since, op.attempt_limit).unwrap_or(1);
            return Ok(Err(Refusal::Locked {
                retry_after_seconds,
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
pub(crate) async fn run_ledger_op(
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
                Channel::AtLocation,
                &op.actor,
                op.now,
                idempotency_key,
            )
            .await
        }
    }
}

/// What an idempotency key recorded earlier.
pub(crate) struct Recorded {
    pub(crate) transaction_id: Option<i64>,
    pub(crate) mall_order_id: Option<i64>,
    pub(crate) card_sale_id: Option<i64>,
    pub(crate) coupon_issue_id: Option<i64>,
    pub(crate) coupon_verification_id: Option<i64>,
    pub(crate) member_operation_id: Option<i64>,
    pub(crate) refusal: Option<String>,
}

/// Records the nonce and claims the idempotency key. `Some` is the whole
/// answer: a reused nonce, a mismatch, or what the key's first call recorded
/// (a concurrent first call is waited for on the key's row).
pub(crate) async fn claim_call(
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
        "SELECT request_hash, transaction_id, mall_order_id, refusal, card_sale_id, coupon_issue_id, coupon_verification_id, \
         member_operation_id FROM idempotency_keys WHERE merchant_id = $1 AND key = $2",
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
        card_sale_id: row.get(4),
        coupon_issue_id: row.get(5),
        coupon_verification_id: row.get(6),
        member_operation_id: row.get(7),
    })))
}

/// Writes the call's outcome under its idempotency key (or gives the key
/// back when the outcome is not to be kept).
pub(crate) async fn record_call(
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

pub(crate) async fn get_transaction(
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

#[async_trait::async_trait]
impl kaquan_core::ledger::LedgerStore for PgStore {
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
            "SELECT count(*) FROM ledger_transactions WHERE customer_id = $1 AND merchant_id = $2 AND asset = 'fen'",
            &[&customer_id, &merchant_id],
        )
        .await?
        .get(0);
        let rows = all(
            &client,
            &format!(
                "SELECT {TRANSACTION_COLUMNS} FROM ledger_transactions WHERE customer_id = $1 AND merchant_id = $2 \
                 AND asset = 'fen' ORDER BY id DESC LIMIT $3 OFFSET $4"
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
}
