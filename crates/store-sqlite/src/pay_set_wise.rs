//! 买单 of one group, set-wise: the payments planned on the requests'
//! threads (`member_payments::plan_on_reader`) have their asks in a temp
//! table and one read checks them all (the member as planned, the order
//! not reported, the key not used); then one guarded statement per table
//! with checked row counts writes the group's ledger transactions and
//! postings, accounts, members, operation records, audit records, events
//! and idempotency records. The ones that need more (not planned, the
//! member changed, a replay, a used nonce, a member, order or key shared
//! with an earlier one of the group, a coupon in the message, an ERP push)
//! run job by job after, as `members::post_member_job`.

use crate::engine::{answer, run_cached, Work, Writer};
use crate::ledger::AccountHead;
use crate::member_payments::{as_planned, PlannedPayment};
use crate::members::post_member_job;
use crate::redeem_set_wise::{checked, log_nonces};
use crate::sql::map_err;
use kaquan_core::event::NewEvent;
use kaquan_core::ledger::{ApiCall, Called, TransactionKind};
use kaquan_core::member::operation::{
    audit_detail, MemberAction, MemberOp, MemberOperation, MemberRefusal,
};
use kaquan_core::sms::{NewSms, SmsSettings};
use kaquan_core::StoreResult;
use rusqlite::{params, Connection};
use std::collections::{HashMap, HashSet};

pub(crate) type Paid = StoreResult<Called<MemberOperation, MemberRefusal>>;

/// A payment queued for the writer: set-wise with the others of its group
/// (`pay_set_wise`) or, when that leaves it, alone (`post_member_job`).
pub(crate) struct GroupPayment {
    pub(crate) call: ApiCall,
    /// The call's `NonceUse::digest`, hashed before the writer.
    pub(crate) nonce_digest: Option<i64>,
    pub(crate) op: MemberOp,
    pub(crate) planned: Option<PlannedPayment>,
    /// Set once the job has run (set-wise or alone); cleared when the group
    /// is rolled back to run again.
    pub(crate) result: Option<Paid>,
}

pub(crate) struct PayJob {
    pub(crate) payment: GroupPayment,
    pub(crate) reply: tokio::sync::oneshot::Sender<Paid>,
}

impl Work for PayJob {
    fn run(&mut self, conn: &Writer) -> bool {
        let p = &mut self.payment;
        let result = post_member_job(conn, &p.call, &p.op, p.planned.as_ref());
        let ok = result.is_ok();
        p.result = Some(result);
        ok
    }

    fn finish(self: Box<Self>, commit: Result<(), String>) {
        answer(self.payment.result, commit, self.reply);
    }

    fn payment(&mut self) -> Option<&mut GroupPayment> {
        Some(&mut self.payment)
    }
}

/// Queues a planned payment for the writer and waits for its answer.
pub(crate) async fn queue_payment(
    store: &crate::SqliteStore,
    call: &ApiCall,
    op: &MemberOp,
    planned: PlannedPayment,
) -> Paid {
    let (call, op) = (call.clone(), op.clone());
    store
        .queue(|reply| {
            Box::new(PayJob {
                payment: GroupPayment {
                    // Hashed here, not on the writer thread.
                    nonce_digest: call
                        .nonce
                        .as_ref()
                        .map(kaquan_core::ledger::NonceUse::digest),
                    call,
                    op,
                    planned: Some(planned),
                    result: None,
                },
                reply,
            })
        })
        .await
}

/// The writer's scratch tables for set-wise payments (per connection, in
/// memory: `temp_store = MEMORY`).
pub(crate) fn create_payment_tables(conn: &Connection) -> StoreResult<()> {
    conn.execute_batch(
        "CREATE TEMP TABLE IF NOT EXISTS payment_asks (
            idx INTEGER PRIMARY KEY,
            member_id INTEGER NOT NULL,
            tier INTEGER NOT NULL,
            points_earned INTEGER NOT NULL,
            spend_fen INTEGER NOT NULL,
            points INTEGER NOT NULL,
            balance_fen INTEGER NOT NULL,
            merchant_id INTEGER NOT NULL,
            reference TEXT NOT NULL,
            idempotency_key TEXT
        );
        CREATE TEMP TABLE IF NOT EXISTS payment_moves (
            operation_id INTEGER PRIMARY KEY,
            merchant_id INTEGER NOT NULL,
            member_id INTEGER NOT NULL UNIQUE,
            tier_before INTEGER NOT NULL,
            points_earned_before INTEGER NOT NULL,
            spend_before INTEGER NOT NULL,
            points_earned INTEGER NOT NULL,
            paid_fen INTEGER NOT NULL,
            reference TEXT NOT NULL,
            location_id INTEGER,
            amount_fen INTEGER NOT NULL,
            discount_fen INTEGER NOT NULL,
            points_used INTEGER NOT NULL,
            points_deduction_fen INTEGER NOT NULL,
            balance_fen INTEGER NOT NULL,
            points_after INTEGER NOT NULL,
            balance_after_fen INTEGER NOT NULL,
            tier_after INTEGER NOT NULL,
            actor TEXT NOT NULL,
            actor_staff_id INTEGER,
            now INTEGER NOT NULL,
            audit_detail TEXT NOT NULL,
            event_type TEXT,
            event_data TEXT,
            signed_at INTEGER,
            nonce_digest INTEGER,
            idempotency_key TEXT,
            request_hash TEXT
        );
        CREATE TEMP TABLE IF NOT EXISTS payment_transactions (
            transaction_id INTEGER PRIMARY KEY,
            merchant_id INTEGER NOT NULL,
            customer_id INTEGER NOT NULL,
            account_id INTEGER NOT NULL,
            kind TEXT NOT NULL,
            asset TEXT NOT NULL,
            counter TEXT NOT NULL,
            amount INTEGER NOT NULL,
            customer_amount INTEGER NOT NULL,
            counter_amount INTEGER NOT NULL,
            balance_after INTEGER NOT NULL,
            reference TEXT NOT NULL,
            actor TEXT NOT NULL,
            now INTEGER NOT NULL,
            previous_id INTEGER
        );
        CREATE INDEX IF NOT EXISTS temp.payment_transactions_account
            ON payment_transactions (account_id, transaction_id);",
    )
    .map_err(map_err)
}

/// What a set-wise payment uses that no other one of its group may.
#[derive(PartialEq, Eq, Hash)]
enum Taken<'a> {
    Member(i64),
    Order(i64, &'a str),
    Key(i64, &'a str),
}

/// What the group's one read found for a payment: the member's accounts,
/// as planned, and whether its idempotency key was used.
struct Found {
    points: AccountHead,
    fen: AccountHead,
    key_seen: bool,
}

/// A payment the set-wise phase writes: its record and the ledger's
/// transactions (id, account, kind, amount, balance after, previous id).
struct Move {
    idx: usize,
    record: MemberOperation,
    event: Option<NewEvent>,
    texts: Vec<NewSms>,
    transactions: Vec<(i64, i64, TransactionKind, i64, i64, Option<i64>)>,
}

/// Runs the planned payments of a group set-wise (see the module's
/// comment). An error means the group must be rolled back: it may have
/// written.
pub(crate) fn pay_set_wise(conn: &Writer, payments: &mut [&mut GroupPayment]) -> StoreResult<()> {
    let found = read_asks(conn, payments)?;
    let mut next_transaction: i64 = conn
        .prepare_cached("SELECT COALESCE(MAX(id), 0) + 1 FROM ledger_transactions")
        .and_then(|mut s| s.query_row([], |r| r.get(0)))
        .map_err(map_err)?;
    let next_operation: i64 = conn
        .prepare_cached("SELECT COALESCE(MAX(id), 0) + 1 FROM member_operations")
        .and_then(|mut s| s.query_row([], |r| r.get(0)))
        .map_err(map_err)?;
    let mut taken = HashSet::new();
    let mut sms_settings: HashMap<i64, Option<SmsSettings>> = HashMap::new();
    let mut moves = Vec::new();
    for (idx, f) in found.into_iter().enumerate() {
        let Some(mut f) = f else {
            continue;
        };
        let g = &payments[idx];
        let (Some(planned), MemberAction::Pay(p)) = (&g.planned, &g.op.action) else {
            continue;
        };
        let (member, fields, plan) = (&planned.member, &planned.fields, &planned.plan);
        let (mut record, after) = plan.record(&g.op, member, p);
        record.id = next_operation + moves.len() as i64;
        let merchant_id = g.op.merchant_id;
        // A replay answers from its record, one by one.
        if f.key_seen {
            continue;
        }
        // A program whose points message carries a coupon: one by one,
        // where the coupon's claim path is looked up.
        if fields.notify_coupon_program_id.is_some() {
            continue;
        }
        let event =
            NewEvent::member_operation(&record, &after, &fields.member_number(member.id), None)
                .filter(|_| fields.notify);
        if event
            .as_ref()
            .is_some_and(|e| kaquan_core::erp::wants(e.event_type))
        {
            continue;
        }
        let mut names = vec![
            Taken::Member(member.id),
            Taken::Order(merchant_id, p.reference.as_str()),
        ];
        if let Some(claim) = &g.call.idempotency {
            names.push(Taken::Key(merchant_id, claim.key.as_str()));
        }
        if names.iter().any(|name| taken.contains(name)) {
            continue;
        }
        // Claimed last, once the payment goes set-wise: a nonce used before
        // (or earlier in the group) leaves it to run alone, refused.
        if let (Some(n), Some(digest)) = (&g.call.nonce, g.nonce_digest) {
            if !conn
                .nonces
                .borrow_mut()
                .claim_unlogged(conn, n.signed_at, digest)?
            {
                continue;
            }
        }
        taken.extend(names);
        let transactions = transactions_of(plan, &mut f, &mut next_transaction);
        let texts = texts_of(conn, event.as_ref(), merchant_id, &mut sms_settings)?;
        moves.push(Move {
            idx,
            record,
            event,
            texts,
            transactions,
        });
    }
    if moves.is_empty() {
        return Ok(());
    }
    let counts = fill_moves(conn, payments, &moves)?;
    write_moves(conn, &moves, counts)?;
    for m in moves {
        payments[m.idx].result = Some(Ok(Called {
            result: Ok(m.record),
            replayed: false,
        }));
    }
    Ok(())
}

/// The ledger's transactions of a planned payment, in the order the
/// general way posts them, numbered from `next` on; each moves its
/// account's head in `f`.
fn transactions_of(
    plan: &kaquan_core::member::operation::PaymentPlan,
    f: &mut Found,
    next: &mut i64,
) -> Vec<(i64, i64, TransactionKind, i64, i64, Option<i64>)> {
    let mut transactions = Vec::new();
    for (kind, delta) in plan.ledger_moves() {
        if delta == 0 {
            continue;
        }
        let head = match kind.asset() {
            kaquan_core::ledger::Asset::Points => &mut f.points,
            kaquan_core::ledger::Asset::Fen => &mut f.fen,
        };
        let previous = head.last_transaction_id;
        head.balance += delta;
        head.last_transaction_id = Some(*next);
        transactions.push((*next, head.id, kind, delta, head.balance, previous));
        *next += 1;
    }
    transactions
}

/// The texts a payment's event sends, under its merchant's settings (read
/// once per group).
fn texts_of(
    conn: &Connection,
    event: Option<&NewEvent>,
    merchant_id: i64,
    settings: &mut HashMap<i64, Option<SmsSettings>>,
) -> StoreResult<Vec<NewSms>> {
    let Some(event) = event.filter(|e| kaquan_core::sms::wants(e.event_type)) else {
        return Ok(Vec::new());
    };
    let settings = match settings.entry(merchant_id) {
        std::collections::hash_map::Entry::Occupied(known) => known.into_mut(),
        std::collections::hash_map::Entry::Vacant(unknown) => {
            unknown.insert(crate::sms::get_settings(conn, merchant_id)?)
        }
    };
    Ok(settings
        .as_ref()
        .map(|s| kaquan_core::sms::messages_for(event, s))
        .unwrap_or_default())
}

/// The group's asks in `temp.payment_asks`, and what one read found for
/// each: `None` when it is not planned, the member is not as planned or
/// the order was reported.
fn read_asks(conn: &Connection, payments: &[&mut GroupPayment]) -> StoreResult<Vec<Option<Found>>> {
    run_cached(conn, "DELETE FROM temp.payment_asks").map_err(map_err)?;
    let mut ask = conn
        .prepare_cached(
            "INSERT INTO temp.payment_asks (idx, member_id, tier, points_earned, spend_fen, points, balance_fen, \
             merchant_id, reference, idempotency_key) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )
        .map_err(map_err)?;
    for (idx, g) in payments.iter().enumerate() {
        let (Some(planned), MemberAction::Pay(p)) = (&g.planned, &g.op.action) else {
            continue;
        };
        let [id, tier, earned, spend, points, balance] = as_planned(&planned.member);
        let key = g.call.idempotency.as_ref().map(|c| c.key.as_str());
        let merchant_id = g.op.merchant_id;
        ask.execute(params![
            idx as i64,
            id,
            tier,
            earned,
            spend,
            points,
            balance,
            merchant_id,
            p.reference,
            key
        ])
        .map_err(map_err)?;
    }
    drop(ask);
    let mut found: Vec<Option<Found>> = (0..payments.len()).map(|_| None).collect();
    let mut read = conn
        .prepare_cached(
            "SELECT a.idx, pa.id, pa.balance, pa.last_transaction_id, fa.id, fa.balance, fa.last_transaction_id, \
             EXISTS (SELECT 1 FROM idempotency_keys k WHERE k.merchant_id = a.merchant_id AND k.key = a.idempotency_key) \
             FROM temp.payment_asks a \
             JOIN members m ON m.id = a.member_id AND m.tier = a.tier AND m.points_earned = a.points_earned \
             AND m.spend_fen = a.spend_fen \
             JOIN ledger_accounts pa ON pa.customer_id = m.customer_id AND pa.asset = 'points' AND pa.balance = a.points \
             JOIN ledger_accounts fa ON fa.customer_id = m.customer_id AND fa.asset = 'fen' AND fa.balance = a.balance_fen \
             WHERE NOT EXISTS (SELECT 1 FROM member_operations o WHERE o.merchant_id = a.merchant_id \
             AND o.kind = 'payment' AND o.reference = a.reference)",
        )
        .map_err(map_err)?;
    let rows = read
        .query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                Found {
                    points: head_at(r, 1)?,
                    fen: head_at(r, 4)?,
                    key_seen: r.get(7)?,
                },
            ))
        })
        .map_err(map_err)?;
    for row in rows {
        let (idx, f) = row.map_err(map_err)?;
        found[idx as usize] = Some(f);
    }
    Ok(found)
}

/// The account whose id, balance and last transaction start at column `at`.
fn head_at(r: &rusqlite::Row, at: usize) -> rusqlite::Result<AccountHead> {
    Ok(AccountHead {
        id: r.get(at)?,
        balance: r.get(at + 1)?,
        last_transaction_id: r.get(at + 2)?,
    })
}

/// The moves in `temp.payment_moves` and `temp.payment_transactions`;
/// how many of them carry a nonce, and an idempotency key.
fn fill_moves(
    conn: &Connection,
    payments: &[&mut GroupPayment],
    moves: &[Move],
) -> StoreResult<(usize, usize)> {
    run_cached(conn, "DELETE FROM temp.payment_moves").map_err(map_err)?;
    run_cached(conn, "DELETE FROM temp.payment_transactions").map_err(map_err)?;
    let mut insert_move = conn
        .prepare_cached(
            "INSERT INTO temp.payment_moves (operation_id, merchant_id, member_id, tier_before, points_earned_before, \
             spend_before, points_earned, paid_fen, reference, location_id, amount_fen, discount_fen, points_used, \
             points_deduction_fen, balance_fen, points_after, balance_after_fen, tier_after, actor, actor_staff_id, now, \
             audit_detail, event_type, event_data, signed_at, nonce_digest, idempotency_key, request_hash) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, \
             ?22, ?23, ?24, ?25, ?26, ?27, ?28)",
        )
        .map_err(map_err)?;
    let mut insert_transaction = conn
        .prepare_cached(
            "INSERT INTO temp.payment_transactions (transaction_id, merchant_id, customer_id, account_id, kind, asset, \
             counter, amount, customer_amount, counter_amount, balance_after, reference, actor, now, previous_id) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
        )
        .map_err(map_err)?;
    let (mut n_nonces, mut n_keys) = (0, 0);
    for m in moves {
        let g = &payments[m.idx];
        let Some(planned) = &g.planned else {
            continue;
        };
        let (member, r) = (&planned.member, &m.record);
        let nonce = g.call.nonce.as_ref().and(g.nonce_digest);
        let claim = g.call.idempotency.as_ref();
        n_nonces += usize::from(nonce.is_some());
        n_keys += usize::from(claim.is_some());
        insert_move
            .execute(params![
                r.id,
                r.merchant_id,
                member.id,
                i64::try_from(member.tier).unwrap_or(-1),
                member.points_earned,
                member.spend_fen,
                planned.plan.points_earned,
                planned.plan.paid_fen,
                r.reference,
                r.location_id,
                r.amount_fen,
                r.discount_fen,
                r.points_used,
                r.points_deduction_fen,
                r.balance_fen,
                r.points_after,
                r.balance_after_fen,
                i64::try_from(r.tier_after).unwrap_or(0),
                r.created_by,
                g.op.actor.staff_id,
                r.created_at,
                audit_detail(r),
                m.event.as_ref().map(|e| e.event_type.code()),
                m.event.as_ref().map(|e| e.data.as_str()),
                g.call.nonce.as_ref().map(|n| n.signed_at),
                nonce,
                claim.map(|c| c.key.as_str()),
                claim.map(|c| c.request_hash.as_str()),
            ])
            .map_err(map_err)?;
        for &(id, account_id, kind, delta, balance_after, previous_id) in &m.transactions {
            let [(_, customer_amount), (counter, counter_amount)] =
                kaquan_core::ledger::postings(kind, delta);
            insert_transaction
                .execute(params![
                    id,
                    r.merchant_id,
                    member.customer_id,
                    account_id,
                    kind.code(),
                    kind.asset().code(),
                    counter.code(),
                    delta,
                    customer_amount,
                    counter_amount,
                    balance_after,
                    r.reference,
                    r.created_by,
                    r.created_at,
                    previous_id,
                ])
                .map_err(map_err)?;
        }
    }
    Ok((n_nonces, n_keys))
}

/// Writes the group's moves from the temp tables: one guarded statement
/// per table, each with its row count checked.
fn write_moves(
    conn: &Writer,
    moves: &[Move],
    (n_nonces, n_keys): (usize, usize),
) -> StoreResult<()> {
    let n = moves.len();
    log_nonces(conn, "payment_moves", n_nonces)?;
    write_ledger(conn, moves)?;
    checked(
        conn,
        "members",
        "UPDATE members SET \
         points_earned = points_earned + (SELECT m.points_earned FROM temp.payment_moves m WHERE m.member_id = members.id), \
         spend_fen = spend_fen + (SELECT m.paid_fen FROM temp.payment_moves m WHERE m.member_id = members.id), \
         tier = (SELECT m.tier_after FROM temp.payment_moves m WHERE m.member_id = members.id) \
         WHERE id IN (SELECT member_id FROM temp.payment_moves) \
         AND tier = (SELECT m.tier_before FROM temp.payment_moves m WHERE m.member_id = members.id) \
         AND points_earned = (SELECT m.points_earned_before FROM temp.payment_moves m WHERE m.member_id = members.id) \
         AND spend_fen = (SELECT m.spend_before FROM temp.payment_moves m WHERE m.member_id = members.id)",
        &[],
        n,
    )?;
    checked(
        conn,
        "operations",
        "INSERT INTO member_operations (id, merchant_id, member_id, kind, reference, payment_id, location_id, amount_fen, \
         discount_fen, points_used, points_deduction_fen, balance_fen, bonus_fen, points_earned, points_after, \
         balance_after_fen, tier_after, refunded_fen, reason, created_by, created_at) \
         SELECT operation_id, merchant_id, member_id, 'payment', reference, NULL, location_id, amount_fen, discount_fen, \
         points_used, points_deduction_fen, balance_fen, 0, points_earned, points_after, balance_after_fen, tier_after, \
         0, '', actor, now FROM temp.payment_moves ORDER BY operation_id",
        &[],
        n,
    )?;
    checked(
        conn,
        "audit records",
        "INSERT INTO audit_log (merchant_id, actor_staff_id, actor, action, target, detail, n_affected, created_at) \
         SELECT merchant_id, actor_staff_id, actor, 'member_payment', 'member=' || member_id, audit_detail, 1, now \
         FROM temp.payment_moves ORDER BY operation_id",
        &[],
        n,
    )?;
    checked(
        conn,
        "events",
        "INSERT INTO events (merchant_id, event_type, data, created_at) \
         SELECT merchant_id, event_type, event_data, now FROM temp.payment_moves \
         WHERE event_type IS NOT NULL ORDER BY operation_id",
        &[],
        moves.iter().filter(|m| m.event.is_some()).count(),
    )?;
    for text in moves.iter().flat_map(|m| &m.texts) {
        crate::sms::insert_sms(conn, text)?;
    }
    checked(
        conn,
        "idempotency records",
        "INSERT INTO idempotency_keys (merchant_id, key, request_hash, member_operation_id, created_at) \
         SELECT merchant_id, idempotency_key, request_hash, operation_id, now FROM temp.payment_moves \
         WHERE idempotency_key IS NOT NULL",
        &[],
        n_keys,
    )?;
    Ok(())
}

/// The group's ledger part: accounts, transactions, postings.
fn write_ledger(conn: &Connection, moves: &[Move]) -> StoreResult<()> {
    let n_transactions: usize = moves.iter().map(|m| m.transactions.len()).sum();
    let n_accounts: usize = moves
        .iter()
        .map(|m| {
            m.transactions
                .iter()
                .map(|t| t.1)
                .collect::<HashSet<_>>()
                .len()
        })
        .sum();
    checked(
        conn,
        "balances",
        "UPDATE ledger_accounts SET \
         balance = (SELECT t.balance_after FROM temp.payment_transactions t WHERE t.account_id = ledger_accounts.id \
         ORDER BY t.transaction_id DESC LIMIT 1), \
         last_transaction_id = (SELECT max(t.transaction_id) FROM temp.payment_transactions t \
         WHERE t.account_id = ledger_accounts.id), \
         n_transactions = n_transactions + (SELECT count(*) FROM temp.payment_transactions t \
         WHERE t.account_id = ledger_accounts.id) \
         WHERE id IN (SELECT account_id FROM temp.payment_transactions) \
         AND balance = (SELECT t.balance_after - t.amount FROM temp.payment_transactions t \
         WHERE t.account_id = ledger_accounts.id ORDER BY t.transaction_id LIMIT 1)",
        &[],
        n_accounts,
    )?;
    checked(
        conn,
        "transactions",
        "INSERT INTO ledger_transactions (id, merchant_id, customer_id, kind, amount_fen, balance_after_fen, reference, \
         reason, channel, created_by, created_at, previous_id, asset) \
         SELECT transaction_id, merchant_id, customer_id, kind, amount, balance_after, reference, '', ?1, actor, now, \
         previous_id, asset FROM temp.payment_transactions ORDER BY transaction_id",
        &[&kaquan_core::pickup::Channel::Api.code()],
        n_transactions,
    )?;
    checked(
        conn,
        "postings",
        "INSERT INTO ledger_postings (transaction_id, account_id, asset, amount) \
         SELECT transaction_id, account_id, asset, customer_amount FROM temp.payment_transactions \
         UNION ALL \
         SELECT t.transaction_id, (SELECT a.id FROM ledger_accounts a WHERE a.merchant_id = t.merchant_id \
         AND a.kind = t.counter AND a.customer_id IS NULL AND a.asset = t.asset), t.asset, t.counter_amount \
         FROM temp.payment_transactions t",
        &[],
        2 * n_transactions,
    )?;
    Ok(())
}
