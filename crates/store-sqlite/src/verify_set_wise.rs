//! 核销 of one group, set-wise: the codes looked up, the group's asks in a
//! temp table, one read, then one guarded statement per table with checked
//! row counts. The ones that need more (an unknown code, a refusal, a
//! replay, a used nonce or key, a coupon, holder or key shared with an
//! earlier one of the group) run job by job after, as `verify_job`.

use crate::coupon_verifications::{taking_at, taking_sql, verify_job, Taking};
use crate::coupons::{held_where, refused};
use crate::engine::{answer, run_cached, Work, Writer};
use crate::events::plan_deliveries;
use crate::redeem_set_wise::{checked, log_nonces};
use crate::sql::map_err;
use kaquan_core::attempts::is_locked;
use kaquan_core::coupon::usage::{recheck, CouponRefusal, CouponVerification, VerifyCoupon};
use kaquan_core::coupon::usecases::{answer_look_up, verification_of, CodeVerification};
use kaquan_core::event::{EventType, NewEvent};
use kaquan_core::ledger::{ApiCall, Called};
use kaquan_core::{Conflict, StoreError, StoreResult};
use rusqlite::{params, Connection};

pub(crate) type Verified = StoreResult<Called<CouponVerification, CouponRefusal>>;

/// Queues a verification for the writer and waits for its answer.
pub(crate) async fn queue_verification(
    store: &crate::SqliteStore,
    call: &ApiCall,
    ask: VerifyAsk,
) -> Verified {
    let call = call.clone();
    store
        .queue(|reply| {
            Box::new(VerifyJob {
                verification: GroupVerification {
                    // Hashed here, not on the writer thread.
                    nonce_digest: call
                        .nonce
                        .as_ref()
                        .map(kaquan_core::ledger::NonceUse::digest),
                    call,
                    ask,
                    result: None,
                },
                reply,
            })
        })
        .await
}

/// What a verification names: a coupon already looked up, or a fixed code
/// the writer looks up (`usecases::verify_code`).
pub(crate) enum VerifyAsk {
    Coupon(VerifyCoupon),
    Code(CodeVerification),
}

/// A verification queued for the writer: set-wise with the others of its
/// group (`verify_set_wise`) or, when that leaves it, alone (`verify_job`).
pub(crate) struct GroupVerification {
    pub(crate) call: ApiCall,
    /// The call's `NonceUse::digest`, hashed before the writer.
    pub(crate) nonce_digest: Option<i64>,
    pub(crate) ask: VerifyAsk,
    /// Set once the job has run (set-wise or alone); cleared when the group
    /// is rolled back to run again.
    pub(crate) result: Option<Verified>,
}

pub(crate) struct VerifyJob {
    pub(crate) verification: GroupVerification,
    pub(crate) reply: tokio::sync::oneshot::Sender<Verified>,
}

impl Work for VerifyJob {
    fn run(&mut self, conn: &Writer) -> bool {
        let v = &mut self.verification;
        let result = match &v.ask {
            VerifyAsk::Coupon(verify) => verify_job(conn, &v.call, verify),
            VerifyAsk::Code(code) => verify_code_job(conn, &v.call, code),
        };
        let ok = result.is_ok();
        v.result = Some(result);
        ok
    }

    fn finish(self: Box<Self>, commit: Result<(), String>) {
        answer(self.verification.result, commit, self.reply);
    }

    fn verification(&mut self) -> Option<&mut GroupVerification> {
        Some(&mut self.verification)
    }
}

/// The verification a fixed code asks for, looked up on the writer (as
/// `usecases::look_up_code` then `verification_of` do), or why not. An
/// unknown code's failure is left to the caller to record.
fn look_up_on_writer(
    conn: &Connection,
    call: &ApiCall,
    code: &CodeVerification,
) -> StoreResult<Result<VerifyCoupon, CouponRefusal>> {
    let r = &code.reader;
    let (m, key) = (r.merchant_id, r.attempt_key.as_str());
    let n_failures = crate::attempts::count_failures(conn, m, key, code.since)?;
    let found = held_where(
        conn,
        "c.merchant_id = ?1 AND c.digest = ?2",
        params![m, code.digest],
    )?
    .pop();
    let oldest = if is_locked(n_failures, r.failures_max) {
        crate::attempts::oldest_failure(conn, m, key, code.since)?
    } else {
        None
    };
    let answer = answer_look_up(r, found.map(|h| (h, true)), n_failures, oldest, code.since);
    if let Ok(held) = &answer {
        if held.program.fields.give_program_id.is_some() {
            // 核销后返券 needs a code the writer cannot make.
            return Err(StoreError::Conflict(Conflict::LookUpFirst));
        }
    }
    Ok(answer.and_then(|held| verification_of(&held, call, &code.request)))
}

/// 核销 of a fixed code on the writer, alone: its look-up, then
/// `verify_job`; an unknown code counts against its reader.
fn verify_code_job(conn: &Writer, call: &ApiCall, code: &CodeVerification) -> Verified {
    match look_up_on_writer(conn, call, code)? {
        Ok(verify) => verify_job(conn, call, &verify),
        Err(refusal) => {
            if refusal == CouponRefusal::UnknownCode {
                let r = &code.reader;
                crate::attempts::record_failure(
                    conn,
                    r.merchant_id,
                    &r.attempt_key,
                    code.request.now,
                )?;
            }
            refused(refusal)
        }
    }
}

/// The writer's scratch tables for set-wise verifications (per connection,
/// in memory).
pub(crate) fn create_verification_tables(conn: &Connection) -> StoreResult<()> {
    conn.execute_batch(
        "CREATE TEMP TABLE IF NOT EXISTS verification_asks (
            idx INTEGER PRIMARY KEY,
            merchant_id INTEGER NOT NULL,
            coupon_id INTEGER NOT NULL,
            location_id INTEGER,
            idempotency_key TEXT
        );
        CREATE TEMP TABLE IF NOT EXISTS verification_moves (
            id INTEGER PRIMARY KEY,
            merchant_id INTEGER NOT NULL,
            coupon_id INTEGER NOT NULL UNIQUE,
            program_id INTEGER NOT NULL,
            customer_id INTEGER NOT NULL,
            location_id INTEGER,
            staff_id INTEGER,
            verifier TEXT NOT NULL,
            channel TEXT NOT NULL,
            order_amount_fen INTEGER,
            discount_fen INTEGER NOT NULL,
            order_ref TEXT NOT NULL,
            now INTEGER NOT NULL,
            signed_at INTEGER,
            nonce_digest INTEGER,
            idempotency_key TEXT,
            request_hash TEXT,
            audit_target TEXT NOT NULL,
            audit_detail TEXT NOT NULL,
            event_data TEXT NOT NULL,
            UNIQUE (program_id, customer_id)
        );",
    )
    .map_err(map_err)
}

/// What a set-wise verification uses that no other one of its group may.
#[derive(PartialEq, Eq, Hash)]
enum Taken<'a> {
    Coupon(i64),
    Holder(i64, i64),
    Key(i64, &'a str),
}

/// A verification the set-wise phase writes, with its audit record and
/// event as core makes them.
struct Move {
    idx: usize,
    record: CouponVerification,
    audit_target: String,
    audit_detail: String,
    event: NewEvent,
}

/// The action of a verification's audit record (as `verify_job` writes it).
pub(crate) const VERIFY_ACTION: &str = "verify_coupon";

/// Runs the usual verifications of a group set-wise: one read for all of
/// them, then one guarded statement per table (nonces, coupons, programs'
/// counts, holders' use counts, verifications, audit records, events,
/// idempotency records) with its row count checked. One that would be
/// refused, replays a key, uses a nonce or key seen before, or shares a
/// coupon, holder, nonce or key with an earlier one of the group is left
/// alone (`result` stays `None`) and runs one by one after. An error means
/// the group must be rolled back: it may have written.
pub(crate) fn verify_set_wise(
    conn: &Writer,
    verifications: &mut [&mut GroupVerification],
) -> StoreResult<()> {
    // The codes looked up first; the ones refused are left to run alone.
    let mut asks = Vec::with_capacity(verifications.len());
    for v in verifications.iter() {
        // One that gives a coupon back runs alone (`verify_job`).
        asks.push(match &v.ask {
            VerifyAsk::Coupon(verify) => Some(verify.clone()).filter(|v| v.give.is_none()),
            VerifyAsk::Code(code) => match look_up_on_writer(conn, &v.call, code) {
                Ok(found) => found.ok(),
                Err(StoreError::Conflict(Conflict::LookUpFirst)) => None,
                Err(e) => return Err(e),
            },
        });
    }
    let found = read_asks(conn, verifications, &asks)?;
    let next_id: i64 = conn
        .prepare_cached("SELECT COALESCE(MAX(id), 0) + 1 FROM coupon_verifications")
        .and_then(|mut s| s.query_row([], |r| r.get(0)))
        .map_err(map_err)?;
    let mut taken = std::collections::HashSet::new();
    let mut nonces = conn.nonces.borrow_mut();
    let mut moves = Vec::new();
    for (idx, found) in found.into_iter().enumerate() {
        let (Some((Taking { facts, mut record }, key_seen)), Some(verify)) = (found, &asks[idx])
        else {
            continue;
        };
        let v = &verifications[idx];
        if key_seen || recheck(&facts, verify.now).is_err() {
            continue;
        }
        let mut names = vec![
            Taken::Coupon(verify.coupon_id),
            Taken::Holder(record.program_id, record.customer_id),
        ];
        if let Some(claim) = &v.call.idempotency {
            names.push(Taken::Key(verify.merchant_id, claim.key.as_str()));
        }
        if names.iter().any(|name| taken.contains(name)) {
            continue;
        }
        if let (Some(n), Some(digest)) = (&v.call.nonce, v.nonce_digest) {
            if !nonces.claim_unlogged(conn, n.signed_at, digest)? {
                continue;
            }
        }
        taken.extend(names);
        record.id = next_id + moves.len() as i64;
        let audit = record.audit(VERIFY_ACTION, &verify.actor, verify.now);
        let event = NewEvent::coupon_verification(&record, EventType::CouponVerified, verify.now);
        moves.push(Move {
            idx,
            record,
            audit_target: audit.target,
            audit_detail: audit.detail,
            event,
        });
    }
    if moves.is_empty() {
        return Ok(());
    }
    drop(nonces);
    let n_nonces = write_moves_table(conn, verifications, &moves)?;
    log_nonces(conn, "verification_moves", n_nonces)?;
    let n_keys = moves
        .iter()
        .filter(|m| verifications[m.idx].call.idempotency.is_some())
        .count();
    write_moves(conn, &moves, n_keys)?;
    for m in &moves {
        plan_deliveries(conn, &m.event)?;
    }
    for Move { idx, record, .. } in moves {
        verifications[idx].result = Some(Ok(Called {
            result: Ok(record),
            replayed: false,
        }));
    }
    Ok(())
}

static READ_ASKS: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let (columns, from) = taking_sql(["a.coupon_id", "a.merchant_id", "a.location_id"]);
    format!(
        "SELECT a.idx, EXISTS (SELECT 1 FROM idempotency_keys k WHERE k.merchant_id = a.merchant_id \
         AND k.key = a.idempotency_key), {columns} FROM temp.verification_asks a, {from}"
    )
});

/// The group's asks and what the one read found for each: the coupon's
/// facts and record, and whether its idempotency key was seen before.
fn read_asks(
    conn: &Connection,
    verifications: &[&mut GroupVerification],
    asks: &[Option<VerifyCoupon>],
) -> StoreResult<Vec<Option<(Taking, bool)>>> {
    run_cached(conn, "DELETE FROM temp.verification_asks").map_err(map_err)?;
    let mut ask = conn
        .prepare_cached(
            "INSERT INTO temp.verification_asks (idx, merchant_id, coupon_id, location_id, idempotency_key) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .map_err(map_err)?;
    for (idx, (v, verify)) in verifications.iter().zip(asks).enumerate() {
        let Some(verify) = verify else {
            continue;
        };
        ask.execute(params![
            idx as i64,
            verify.merchant_id,
            verify.coupon_id,
            verify.location_id,
            v.call.idempotency.as_ref().map(|c| c.key.as_str()),
        ])
        .map_err(map_err)?;
    }
    let mut found: Vec<Option<(Taking, bool)>> = (0..asks.len()).map(|_| None).collect();
    let mut read = conn.prepare_cached(&READ_ASKS).map_err(map_err)?;
    let mut rows = read.query([]).map_err(map_err)?;
    while let Some(row) = rows.next().map_err(map_err)? {
        let idx = row.get::<_, i64>(0).map_err(map_err)? as usize;
        let Some(verify) = &asks[idx] else {
            continue;
        };
        let taking = taking_at(row, 2, verify).map_err(map_err)?;
        found[idx] = Some((taking, row.get(1).map_err(map_err)?));
    }
    Ok(found)
}

/// Fills `temp.verification_moves`; answers how many carry a nonce.
fn write_moves_table(
    conn: &Connection,
    verifications: &[&mut GroupVerification],
    moves: &[Move],
) -> StoreResult<usize> {
    run_cached(conn, "DELETE FROM temp.verification_moves").map_err(map_err)?;
    let mut insert = conn
        .prepare_cached(
            "INSERT INTO temp.verification_moves (id, merchant_id, coupon_id, program_id, customer_id, location_id, \
             staff_id, verifier, channel, order_amount_fen, discount_fen, order_ref, now, signed_at, nonce_digest, \
             idempotency_key, request_hash, audit_target, audit_detail, event_data) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)",
        )
        .map_err(map_err)?;
    let mut n_nonces = 0;
    for m in moves {
        let (v, r) = (&verifications[m.idx], &m.record);
        let nonce = v.call.nonce.as_ref().and(v.nonce_digest);
        let claim = v.call.idempotency.as_ref();
        n_nonces += usize::from(nonce.is_some());
        insert
            .execute(params![
                r.id,
                r.merchant_id,
                r.coupon_id,
                r.program_id,
                r.customer_id,
                r.location_id,
                r.staff_id,
                r.verifier,
                r.channel.code(),
                r.order_amount_fen,
                r.discount_fen,
                r.order_ref,
                r.created_at,
                v.call.nonce.as_ref().map(|n| n.signed_at),
                nonce,
                claim.map(|c| c.key.as_str()),
                claim.map(|c| c.request_hash.as_str()),
                m.audit_target,
                m.audit_detail,
                m.event.data,
            ])
            .map_err(map_err)?;
    }
    Ok(n_nonces)
}

/// Writes the group's moves: one guarded statement per table, each with
/// its row count checked.
fn write_moves(conn: &Connection, moves: &[Move], n_keys: usize) -> StoreResult<()> {
    let n = moves.len();
    let n_programs = moves
        .iter()
        .map(|m| m.record.program_id)
        .collect::<std::collections::HashSet<_>>()
        .len();
    checked(
        conn,
        "coupons",
        "UPDATE coupons SET state = 'verified', \
         verified_at = (SELECT m.now FROM temp.verification_moves m WHERE m.coupon_id = coupons.id) \
         WHERE id IN (SELECT coupon_id FROM temp.verification_moves) AND state = 'available' \
         AND gift_token_hash IS NULL",
        &[],
        n,
    )?;
    checked(
        conn,
        "program counts",
        "UPDATE coupon_programs SET n_verified = n_verified + \
         (SELECT count(*) FROM temp.verification_moves m WHERE m.program_id = coupon_programs.id) \
         WHERE id IN (SELECT program_id FROM temp.verification_moves)",
        &[],
        n_programs,
    )?;
    checked(
        conn,
        "holders' use counts",
        "INSERT INTO coupon_holdings (program_id, customer_id, n_claimed, n_used) \
         SELECT program_id, customer_id, 0, 1 FROM temp.verification_moves WHERE true \
         ON CONFLICT (program_id, customer_id) DO UPDATE SET n_used = n_used + 1",
        &[],
        n,
    )?;
    checked(
        conn,
        "verifications",
        "INSERT INTO coupon_verifications (id, merchant_id, coupon_id, program_id, customer_id, location_id, staff_id, \
         verifier, channel, order_amount_fen, discount_fen, order_ref, created_at) \
         SELECT id, merchant_id, coupon_id, program_id, customer_id, location_id, staff_id, verifier, channel, \
         order_amount_fen, discount_fen, order_ref, now FROM temp.verification_moves ORDER BY id",
        &[],
        n,
    )?;
    checked(
        conn,
        "audit records",
        "INSERT INTO audit_log (merchant_id, actor_staff_id, actor, action, target, detail, n_affected, created_at) \
         SELECT merchant_id, staff_id, verifier, ?1, audit_target, audit_detail, 1, now \
         FROM temp.verification_moves ORDER BY id",
        &[&VERIFY_ACTION],
        n,
    )?;
    checked(
        conn,
        "events",
        "INSERT INTO events (merchant_id, event_type, data, created_at) \
         SELECT merchant_id, ?1, event_data, now FROM temp.verification_moves ORDER BY id",
        &[&EventType::CouponVerified.code()],
        n,
    )?;
    checked(
        conn,
        "idempotency records",
        "INSERT INTO idempotency_keys (merchant_id, key, request_hash, coupon_verification_id, created_at) \
         SELECT merchant_id, idempotency_key, request_hash, id, now FROM temp.verification_moves \
         WHERE idempotency_key IS NOT NULL ORDER BY id",
        &[],
        n_keys,
    )
}
