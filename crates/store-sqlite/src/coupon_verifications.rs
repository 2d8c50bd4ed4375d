//! 核销: verifications and their undo, 核销记录 and 数据与对账, gifts
//! (转赠) and the merchant's coupon settings.

use crate::coupons::{held_where, record_coupon_call, refused};
use crate::engine::Writer;
use crate::events::insert_event;
use crate::ledger::guard_call;
use crate::sql::{decode, filtered_page, insert_audit, map_err};
use kaquan_core::coupon::usage::{
    check_undo, format_day_number, recheck, refusal_of_guard, Coupon, CouponRefusal,
    CouponSettings, CouponState, CouponVerification, DailyVerificationStats, ExpiredCoupon,
    UndoVerification, VerificationFilter, VerifierStats, VerifyChannel, VerifyCoupon, VerifyFacts,
};
use kaquan_core::coupon::{CouponKind, ProgramState};
use kaquan_core::event::{EventType, NewEvent};
use kaquan_core::ledger::{ApiCall, Called};
use kaquan_core::store::Page;
use kaquan_core::{StoreError, StoreResult};
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row};

const VERIFICATION_COLUMNS: &str = "v.id, v.merchant_id, v.coupon_id, v.program_id, p.title, p.kind, \
    v.location_id, l.name, v.staff_id, v.verifier, v.channel, v.order_amount_fen, v.discount_fen, v.order_ref, \
    v.customer_id, COALESCE(NULLIF(u.nickname, ''), u.external_id, u.phone, ''), c.sealed, c.key_version, \
    v.created_at, v.undone_at, v.undone_by, v.given_coupon_id";
const VERIFICATION_FROM: &str =
    "coupon_verifications v JOIN coupon_programs p ON p.id = v.program_id \
    JOIN coupons c ON c.id = v.coupon_id JOIN customers u ON u.id = v.customer_id \
    LEFT JOIN locations l ON l.id = v.location_id";

static GET_VERIFICATION: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!("SELECT {VERIFICATION_COLUMNS} FROM {VERIFICATION_FROM} WHERE v.id = ?1 AND v.merchant_id = ?2")
});

fn verification_from_row(r: &Row) -> rusqlite::Result<CouponVerification> {
    let kind: String = r.get(5)?;
    let channel: String = r.get(10)?;
    Ok(CouponVerification {
        id: r.get(0)?,
        merchant_id: r.get(1)?,
        coupon_id: r.get(2)?,
        program_id: r.get(3)?,
        program_title: r.get(4)?,
        kind: decode(CouponKind::parse(&kind), 5, "coupon kind")?,
        location_id: r.get(6)?,
        location_name: r.get(7)?,
        staff_id: r.get(8)?,
        verifier: r.get(9)?,
        channel: decode(VerifyChannel::parse(&channel), 10, "verify channel")?,
        order_amount_fen: r.get(11)?,
        discount_fen: r.get(12)?,
        order_ref: r.get(13)?,
        customer_id: r.get(14)?,
        customer_label: r.get(15)?,
        sealed: r.get(16)?,
        key_version: r.get(17)?,
        created_at: r.get(18)?,
        undone_at: r.get(19)?,
        undone_by: r.get(20)?,
        given_coupon_id: r.get(21)?,
    })
}

pub(crate) fn get_verification(
    conn: &Connection,
    merchant_id: i64,
    id: i64,
) -> StoreResult<Option<CouponVerification>> {
    crate::sql::cached_row(
        conn,
        &GET_VERIFICATION,
        params![id, merchant_id],
        verification_from_row,
    )
    .optional()
    .map_err(map_err)
}

fn must_get(conn: &Connection, merchant_id: i64, id: i64) -> StoreResult<CouponVerification> {
    get_verification(conn, merchant_id, id)?.ok_or(StoreError::NotFound)
}

/// The guard's answer: a refusal, the recorded verification, or nothing.
fn guarded(
    conn: &Writer,
    merchant_id: i64,
    call: &ApiCall,
) -> StoreResult<Option<Called<CouponVerification, CouponRefusal>>> {
    Ok(match guard_call(conn, merchant_id, call)? {
        None => None,
        Some(Err(refusal)) => Some(refused(refusal_of_guard(refusal))?),
        Some(Ok(recorded)) => {
            let id = recorded
                .coupon_verification_id
                .ok_or_else(|| StoreError::Backend("an idempotency key of another call".into()))?;
            Some(Called {
                result: Ok(must_get(conn, merchant_id, id)?),
                replayed: true,
            })
        }
    })
}

/// What the verification reads of its coupon before it writes: the facts
/// its rules are checked against again, and what its record shows.
pub(crate) struct Taking {
    pub(crate) facts: VerifyFacts,
    /// The record as it will be written, but for its id.
    pub(crate) record: CouponVerification,
}

/// The columns [`taking_at`] reads and the tables they come from, for the
/// coupon, merchant and location that `ask` names: SQL expressions, the
/// parameters of one verification or the columns of a group's asks
/// (`verify_set_wise`).
pub(crate) fn taking_sql(ask: [&str; 3]) -> (String, String) {
    let [coupon, merchant, location] = ask;
    (
        format!(
            "c.state, c.verified_at, c.gift_token_hash IS NOT NULL, p.state, c.valid_from, c.valid_until, \
             COALESCE(h.n_used, 0), p.use_limit, c.program_id, c.customer_id, p.title, p.kind, c.sealed, c.key_version, \
             COALESCE(NULLIF(u.nickname, ''), u.external_id, u.phone, ''), \
             (SELECT l.name FROM locations l WHERE l.id = {location} AND l.merchant_id = {merchant})"
        ),
        format!(
            "coupons c JOIN coupon_programs p ON p.id = c.program_id JOIN customers u ON u.id = c.customer_id \
             LEFT JOIN coupon_holdings h ON h.program_id = c.program_id AND h.customer_id = c.customer_id \
             WHERE c.id = {coupon} AND c.merchant_id = {merchant}"
        ),
    )
}

/// What [`taking_sql`]'s columns read from column `at` on, for `verify`.
pub(crate) fn taking_at(r: &Row, at: usize, verify: &VerifyCoupon) -> rusqlite::Result<Taking> {
    let state: String = r.get(at)?;
    let program_state: String = r.get(at + 3)?;
    let kind: String = r.get(at + 11)?;
    Ok(Taking {
        facts: VerifyFacts {
            state: decode(CouponState::parse(&state), at, "coupon state")?,
            verified_at: r.get(at + 1)?,
            gifting: r.get(at + 2)?,
            program_state: decode(ProgramState::parse(&program_state), at + 3, "program state")?,
            valid_from: r.get(at + 4)?,
            valid_until: r.get(at + 5)?,
            n_used: r.get(at + 6)?,
            use_limit: r.get(at + 7)?,
        },
        record: CouponVerification {
            program_id: r.get(at + 8)?,
            program_title: r.get(at + 10)?,
            kind: decode(CouponKind::parse(&kind), at + 11, "coupon kind")?,
            location_name: r.get(at + 15)?,
            customer_id: r.get(at + 9)?,
            customer_label: r.get(at + 14)?,
            sealed: r.get(at + 12)?,
            key_version: r.get(at + 13)?,
            ..verify.record()
        },
    })
}

static READ_TAKING: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let (columns, from) = taking_sql(["?1", "?2", "?3"]);
    format!("SELECT {columns} FROM {from}")
});

fn read_taking(conn: &Connection, verify: &VerifyCoupon) -> StoreResult<Option<Taking>> {
    crate::sql::cached_row(
        conn,
        &READ_TAKING,
        params![verify.coupon_id, verify.merchant_id, verify.location_id],
        |r| taking_at(r, 0, verify),
    )
    .optional()
    .map_err(map_err)
}

/// 核销 on the writer: the call's guard, the coupon's facts checked again,
/// then one guarded update of the coupon, the holder's use count, the
/// record, its audit record and event, and the key's outcome.
pub(crate) fn verify_job(
    conn: &Writer,
    call: &ApiCall,
    verify: &VerifyCoupon,
) -> StoreResult<Called<CouponVerification, CouponRefusal>> {
    let m = verify.merchant_id;
    if let Some(answer) = guarded(conn, m, call)? {
        return Ok(answer);
    }
    let Some(Taking { facts, mut record }) = read_taking(conn, verify)? else {
        return refused(CouponRefusal::UnknownCode);
    };
    if let Err(refusal) = recheck(&facts, verify.now) {
        return refused(refusal);
    }
    crate::sql::execute_one(conn, "UPDATE coupons SET state = 'verified', verified_at = ?1 WHERE id = ?2 AND state = 'available' AND gift_token_hash IS NULL",
            params![verify.now, verify.coupon_id])?;
    crate::sql::execute_one(
        conn,
        "UPDATE coupon_programs SET n_verified = n_verified + 1 WHERE id = ?1",
        [record.program_id],
    )?;
    crate::sql::cached_execute(
        conn,
        "INSERT INTO coupon_holdings (program_id, customer_id, n_claimed, n_used) VALUES (?1, ?2, 0, 1) \
         ON CONFLICT (program_id, customer_id) DO UPDATE SET n_used = n_used + 1",
        params![record.program_id, record.customer_id],
    )
    .map_err(map_err)?;
    if let Some(mut give) = verify.give_back() {
        // The holder as the coupon says now (it may have been given to a friend).
        give.coupons[0].0 = record.customer_id;
        record.given_coupon_id = crate::coupon_issues::give_back(conn, &give)?;
    }
    // Not RETURNING: SQLite buffers a RETURNING row in a table of its own.
    crate::sql::cached_execute(
        conn,
        "INSERT INTO coupon_verifications (merchant_id, coupon_id, program_id, customer_id, location_id, staff_id, verifier, \
         channel, order_amount_fen, discount_fen, order_ref, created_at, given_coupon_id) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        params![m, record.coupon_id, record.program_id, record.customer_id, record.location_id, record.staff_id,
            record.verifier, record.channel.code(), record.order_amount_fen, record.discount_fen, record.order_ref,
            record.created_at, record.given_coupon_id],
    )
    .map_err(map_err)?;
    record.id = conn.last_insert_rowid();
    insert_audit(
        conn,
        &record.audit(
            crate::verify_set_wise::VERIFY_ACTION,
            &verify.actor,
            verify.now,
        ),
        1,
    )
    .map_err(map_err)?;
    insert_event(
        conn,
        &NewEvent::coupon_verification(&record, EventType::CouponVerified, verify.now),
    )?;
    record_coupon_call(
        conn,
        m,
        call,
        "coupon_verification_id",
        record.id,
        verify.now,
    )?;
    Ok(Called {
        result: Ok(record),
        replayed: false,
    })
}

pub(crate) fn undo_job(
    conn: &Writer,
    call: &ApiCall,
    undo: &UndoVerification,
) -> StoreResult<Called<CouponVerification, CouponRefusal>> {
    let m = undo.merchant_id;
    if let Some(answer) = guarded(conn, m, call)? {
        return Ok(answer);
    }
    let Some(before) = get_verification(conn, m, undo.verification_id)? else {
        return refused(CouponRefusal::VerificationNotFound);
    };
    if let Err(refusal) = check_undo(
        before.created_at,
        before.undone_at,
        undo.window_seconds,
        undo.now,
    ) {
        return refused(refusal);
    }
    crate::sql::execute_one(conn, "UPDATE coupon_verifications SET undone_at = ?1, undone_by = ?2 WHERE id = ?3 AND undone_at IS NULL",
            params![undo.now, undo.actor.label, before.id])?;
    crate::sql::execute_one(conn, "UPDATE coupons SET state = 'available', verified_at = NULL, expiry_announced = 0 WHERE id = ?1 AND state = 'verified'",
            [before.coupon_id])?;
    crate::sql::execute_one(
        conn,
        "UPDATE coupon_programs SET n_verified = n_verified - 1 WHERE id = ?1 AND n_verified > 0",
        [before.program_id],
    )?;
    crate::sql::cached_execute(
            conn,
        "UPDATE coupon_holdings SET n_used = n_used - 1 WHERE program_id = ?1 AND customer_id = ?2 AND n_used > 0",
        params![before.program_id, before.customer_id],
    )
    .map_err(map_err)?;
    let verification = must_get(conn, m, before.id)?;
    insert_audit(
        conn,
        &verification.audit("undo_coupon_verification", &undo.actor, undo.now),
        1,
    )
    .map_err(map_err)?;
    insert_event(
        conn,
        &NewEvent::coupon_verification(&verification, EventType::CouponUndone, undo.now),
    )?;
    record_coupon_call(conn, m, call, "coupon_verification_id", before.id, undo.now)?;
    Ok(Called {
        result: Ok(verification),
        replayed: false,
    })
}

/// The condition and values of a filter over `v`.
fn filter_condition(merchant_id: i64, filter: &VerificationFilter) -> (String, Vec<Value>) {
    let mut condition = "v.merchant_id = ?".to_owned();
    let mut values = vec![Value::Integer(merchant_id)];
    let mut add = |sql: &str, value: Value| {
        condition.push_str(sql);
        values.push(value);
    };
    if let Some(id) = filter.program_id {
        add(" AND v.program_id = ?", Value::Integer(id));
    }
    if let Some(id) = filter.location_id {
        add(" AND v.location_id = ?", Value::Integer(id));
    }
    if let Some(verifier) = &filter.verifier {
        add(" AND v.verifier = ?", Value::Text(verifier.clone()));
    }
    if let Some(channel) = filter.channel {
        add(" AND v.channel = ?", Value::Text(channel.code().into()));
    }
    if let Some(from) = filter.from {
        add(" AND v.created_at >= ?", Value::Integer(from));
    }
    if let Some(until) = filter.until {
        add(" AND v.created_at <= ?", Value::Integer(until));
    }
    (condition, values)
}

pub(crate) fn list(
    conn: &Connection,
    merchant_id: i64,
    filter: &VerificationFilter,
    page: Page,
) -> StoreResult<(Vec<CouponVerification>, i64)> {
    let (condition, values) = filter_condition(merchant_id, filter);
    filtered_page(
        conn,
        (VERIFICATION_FROM, VERIFICATION_COLUMNS, "v.id DESC"),
        &condition,
        values,
        page,
        verification_from_row,
    )
}

/// The sums every reconciliation row carries, after its grouping columns.
const SUMS: &str = "SUM(CASE WHEN v.undone_at IS NULL THEN 1 ELSE 0 END), \
    SUM(CASE WHEN v.undone_at IS NULL THEN COALESCE(v.order_amount_fen, 0) ELSE 0 END), \
    SUM(CASE WHEN v.undone_at IS NULL THEN v.discount_fen ELSE 0 END), \
    SUM(CASE WHEN v.undone_at IS NULL THEN 0 ELSE 1 END)";

pub(crate) fn daily_stats(
    conn: &Connection,
    merchant_id: i64,
    filter: &VerificationFilter,
) -> StoreResult<Vec<DailyVerificationStats>> {
    let (condition, mut values) = filter_condition(merchant_id, filter);
    values.insert(
        0,
        Value::Integer(i64::from(kaquan_core::clock::MERCHANT_UTC_OFFSET_SECONDS)),
    );
    let mut stmt = conn
        .prepare(&format!(
            "SELECT (v.created_at + ?) / 86400 AS day, v.location_id, l.name, {SUMS} \
             FROM coupon_verifications v LEFT JOIN locations l ON l.id = v.location_id WHERE {condition} \
             GROUP BY day, v.location_id ORDER BY day DESC, v.location_id LIMIT 1000"
        ))
        .map_err(map_err)?;
    let rows = stmt
        .query_map(params_from_iter(values), |r| {
            Ok(DailyVerificationStats {
                day: format_day_number(r.get(0)?),
                location_id: r.get(1)?,
                location_name: r.get(2)?,
                n_verified: r.get(3)?,
                order_amount_fen: r.get(4)?,
                discount_fen: r.get(5)?,
                n_undone: r.get(6)?,
            })
        })
        .map_err(map_err)?;
    rows.collect::<Result<_, _>>().map_err(map_err)
}

pub(crate) fn verifier_stats(
    conn: &Connection,
    merchant_id: i64,
    filter: &VerificationFilter,
) -> StoreResult<Vec<VerifierStats>> {
    let (condition, values) = filter_condition(merchant_id, filter);
    let mut stmt = conn
        .prepare(&format!(
            "SELECT v.verifier, {SUMS} FROM coupon_verifications v WHERE {condition} \
             GROUP BY v.verifier ORDER BY v.verifier LIMIT 1000"
        ))
        .map_err(map_err)?;
    let rows = stmt
        .query_map(params_from_iter(values), |r| {
            Ok(VerifierStats {
                verifier: r.get(0)?,
                n_verified: r.get(1)?,
                order_amount_fen: r.get(2)?,
                discount_fen: r.get(3)?,
                n_undone: r.get(4)?,
            })
        })
        .map_err(map_err)?;
    rows.collect::<Result<_, _>>().map_err(map_err)
}

pub(crate) fn accept_gift(
    conn: &Writer,
    merchant_id: i64,
    token_hash: &str,
    friend_id: i64,
    now: i64,
) -> StoreResult<Result<Coupon, CouponRefusal>> {
    let Some(held) = held_where(
        conn,
        "c.gift_token_hash = ?1 AND c.merchant_id = ?2",
        params![token_hash, merchant_id],
    )?
    .pop() else {
        return Ok(Err(CouponRefusal::GiftUnavailable));
    };
    let giver = held.coupon.customer_id;
    if giver == friend_id {
        return Ok(Err(CouponRefusal::OwnGift));
    }
    if held.coupon.state != CouponState::Available || held.coupon.valid_until < now {
        return Ok(Err(CouponRefusal::GiftUnavailable));
    }
    let friend_known: i64 = crate::sql::cached_row(
        conn,
        "SELECT count(*) FROM customers WHERE id = ?1 AND merchant_id = ?2",
        params![friend_id, merchant_id],
        |r| r.get(0),
    )
    .map_err(map_err)?;
    if friend_known != 1 {
        return Ok(Err(CouponRefusal::CustomerNotFound));
    }
    crate::sql::execute_one(conn, "UPDATE coupons SET customer_id = ?1, gift_token_hash = NULL, gift_from = ?2, source = 'gift' \
             WHERE id = ?3 AND gift_token_hash = ?4 AND state = 'available' AND customer_id = ?2",
            params![friend_id, giver, held.coupon.id, token_hash])?;
    Ok(held_where(conn, "c.id = ?1", [held.coupon.id])?
        .pop()
        .map(|h| h.coupon)
        .ok_or(CouponRefusal::GiftUnavailable))
}

/// Announces up to `limit` coupons that passed their validity unused.
/// The used ones that passed it leave the sweep's index first, without an
/// event, in one statement (核销 leaves them there: see migration 024).
pub(crate) fn announce_expired(conn: &Connection, now: i64, limit: i64) -> StoreResult<i64> {
    crate::sql::cached_execute(
        conn,
        "UPDATE coupons SET expiry_announced = 1 WHERE expiry_announced = 0 AND valid_until < ?1 AND state = 'verified'",
        [now],
    )
    .map_err(map_err)?;
    let expired: Vec<ExpiredCoupon> = {
        let mut stmt = conn
            .prepare_cached(
                "SELECT id, merchant_id, program_id, customer_id, valid_until FROM coupons \
                 WHERE state = 'available' AND expiry_announced = 0 AND valid_until < ?1 ORDER BY valid_until LIMIT ?2",
            )
            .map_err(map_err)?;
        let rows = stmt
            .query_map(params![now, limit], |r| {
                Ok(ExpiredCoupon {
                    coupon_id: r.get(0)?,
                    merchant_id: r.get(1)?,
                    program_id: r.get(2)?,
                    customer_id: r.get(3)?,
                    valid_until: r.get(4)?,
                })
            })
            .map_err(map_err)?;
        rows.collect::<Result<_, _>>().map_err(map_err)?
    };
    for coupon in &expired {
        crate::sql::execute_one(
            conn,
            "UPDATE coupons SET expiry_announced = 1 WHERE id = ?1 AND expiry_announced = 0",
            [coupon.coupon_id],
        )?;
        insert_event(conn, &NewEvent::coupon_expired(coupon, now))?;
    }
    Ok(expired.len() as i64)
}

pub(crate) fn get_settings(conn: &Connection, merchant_id: i64) -> StoreResult<CouponSettings> {
    Ok(crate::sql::cached_row(
        conn,
        "SELECT undo_window_minutes FROM coupon_settings WHERE merchant_id = ?1",
        [merchant_id],
        |r| {
            Ok(CouponSettings {
                undo_window_minutes: r.get(0)?,
            })
        },
    )
    .optional()
    .map_err(map_err)?
    .unwrap_or_default())
}
