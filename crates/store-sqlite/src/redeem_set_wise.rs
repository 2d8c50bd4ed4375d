//! Signed redemptions of one group, set-wise: the group's asks in a temp
//! table, one read, then one guarded statement per table with checked row
//! counts; the ones that need more (new customer, refusal, replay, a
//! repeated code, customer, nonce or key) run job by job after.

use crate::engine::answer;
use crate::engine::run_cached;
use crate::engine::Work;
use crate::engine::Writer;
use crate::ledger::post_ledger_job;
use crate::sql::map_err;
use kaquan_core::attempts::{code_client_key, is_locked};
use kaquan_core::ledger::ApiCall;
use kaquan_core::ledger::Called;
use kaquan_core::ledger::CustomerRef;
use kaquan_core::ledger::LedgerOp;
use kaquan_core::ledger::LedgerTransaction;
use kaquan_core::ledger::RedeemCode;
use kaquan_core::ledger::TransactionKind;
use kaquan_core::{StoreError, StoreResult};
use rusqlite::{params, Connection};

/// A signed redemption queued for the writer: it either runs set-wise with
/// the other redemptions of its group (`redeem_set_wise`) or, when that
/// leaves it, one by one like any other ledger call.
pub(crate) struct GroupRedemption {
    pub(crate) call: ApiCall,
    /// The call's `NonceUse::digest`, as the set-wise statements store it.
    pub(crate) nonce_digest: Option<i64>,
    pub(crate) op: RedeemCode,
    /// Set once the job has run (set-wise or alone); cleared when the group
    /// is rolled back to run again.
    pub(crate) result: Option<StoreResult<Called<LedgerTransaction>>>,
}

pub(crate) struct RedeemJob {
    pub(crate) redemption: GroupRedemption,
    pub(crate) reply: tokio::sync::oneshot::Sender<StoreResult<Called<LedgerTransaction>>>,
}

impl Work for RedeemJob {
    fn run(&mut self, conn: &Writer) -> bool {
        let r = &mut self.redemption;
        let result = post_ledger_job(conn, &r.call, &LedgerOp::Redeem(r.op.clone()));
        let ok = result.is_ok();
        r.result = Some(result);
        ok
    }

    fn finish(self: Box<Self>, commit: Result<(), String>) {
        answer(self.redemption.result, commit, self.reply);
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
pub(crate) enum Taken<'a> {
    Code(i64),
    Customer(i64),
    Key(i64, &'a str),
}

/// What the group's one read found for a redemption.
pub(crate) struct Found {
    pub(crate) customer_id: Option<i64>,
    pub(crate) account_id: Option<i64>,
    pub(crate) balance: Option<i64>,
    pub(crate) last_transaction_id: Option<i64>,
    pub(crate) code_id: Option<i64>,
    pub(crate) face_value_fen: Option<i64>,
    pub(crate) customer_failures: i64,
    pub(crate) client_failures: i64,
    pub(crate) key_seen: bool,
}

/// A redemption the set-wise phase writes: its transaction, the accounts
/// it moves, its code, and the customer's previous transaction (the
/// statement chain's link).
pub(crate) struct Move {
    pub(crate) idx: usize,
    pub(crate) account_id: i64,
    pub(crate) code_id: i64,
    pub(crate) counter_amount: i64,
    pub(crate) previous_id: Option<i64>,
    pub(crate) transaction: LedgerTransaction,
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
    run_cached(conn, "DELETE FROM temp.redemption_asks").map_err(map_err)?;
    run_cached(conn, "DELETE FROM temp.redemption_moves").map_err(map_err)?;
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
            code_client_key(&op.client_key),
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
        if is_locked(f.customer_failures, op.attempt_limit)
            || is_locked(f.client_failures, op.attempt_limit)
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
    drop(nonces);
    log_nonces(conn, "redemption_moves", n_nonces)?;
    write_moves(conn, moves.len(), n_keys)?;
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

/// Writes the group's moves from `temp.redemption_moves`: one guarded
/// statement per table, each with its row count checked.
fn write_moves(conn: &Connection, n: usize, n_keys: usize) -> StoreResult<()> {
    let kind = TransactionKind::Redeem;
    checked(
        conn,
        "codes",
        "UPDATE codes SET state = 'used', \
         customer_id = (SELECT m.customer_id FROM temp.redemption_moves m WHERE m.code_id = codes.id), \
         redeemed_at = (SELECT m.now FROM temp.redemption_moves m WHERE m.code_id = codes.id), room = NULL \
         WHERE id IN (SELECT code_id FROM temp.redemption_moves) AND state = 'unused'",
        &[],
        n,
    )?;
    checked(
        conn,
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
        conn,
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
        conn,
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
        conn,
        "audit records",
        "INSERT INTO audit_log (merchant_id, actor_staff_id, actor, action, target, detail, n_affected, created_at) \
         SELECT merchant_id, actor_staff_id, actor, ?1, 'customer=' || customer_id, \
         'transaction=' || transaction_id || ' amount_fen=' || amount_fen || ' balance_after_fen=' || balance_after_fen \
         || ' reference=code:' || code_id || ' channel=' || channel, 1, now \
         FROM temp.redemption_moves ORDER BY transaction_id",
        &[&format!("{}_balance", kind.code())],
        n,
    )?;
    // The outbox: each redemption changes a balance and redeems a code
    // (the data's keys in the order `kaquan_core::event` writes them).
    checked(
        conn,
        "events",
        "INSERT INTO events (merchant_id, event_type, data, created_at) \
         SELECT m.merchant_id, t.event_type, json_object('amount_fen', m.amount_fen, \
         'balance_after_fen', m.balance_after_fen, 'channel', m.channel, \
         'customer_id', (SELECT c.external_id FROM customers c WHERE c.id = m.customer_id), \
         'kind', ?1, 'reference', 'code:' || m.code_id, 'transaction_id', m.transaction_id), m.now \
         FROM temp.redemption_moves m, (SELECT 'balance.changed' AS event_type UNION ALL SELECT 'code.redeemed') t \
         ORDER BY m.transaction_id, t.event_type",
        &[&kind.code()],
        2 * n,
    )?;
    checked(
        conn,
        "idempotency records",
        "INSERT INTO idempotency_keys (merchant_id, key, request_hash, transaction_id, created_at) \
         SELECT merchant_id, idempotency_key, request_hash, transaction_id, now FROM temp.redemption_moves \
         WHERE idempotency_key IS NOT NULL",
        &[],
        n_keys,
    )?;
    Ok(())
}

/// Logs the `n` nonces a set-wise phase claimed, from the `signed_at` and
/// `nonce_digest` columns of its temp table `moves`.
pub(crate) fn log_nonces(conn: &Writer, moves: &str, n: usize) -> StoreResult<()> {
    let sql = format!(
        "INSERT INTO api_nonces (signed_at, digest) \
         SELECT signed_at, nonce_digest FROM temp.{moves} WHERE nonce_digest IS NOT NULL"
    );
    checked(conn, "nonces", &sql, &[], n)?;
    if n > 0 {
        conn.nonces.borrow_mut().logged(conn);
    }
    Ok(())
}

/// Runs one set-wise statement and checks it wrote `expected` rows.
pub(crate) fn checked(
    conn: &Connection,
    what: &str,
    sql: &str,
    params: &[&dyn rusqlite::ToSql],
    expected: usize,
) -> StoreResult<()> {
    let written = conn
        .prepare_cached(sql)
        .and_then(|mut s| s.execute(params))
        .map_err(map_err)?;
    if written == expected {
        Ok(())
    } else {
        Err(StoreError::Backend(format!(
            "set-wise phase: {written} {what} written, not {expected}"
        )))
    }
}
