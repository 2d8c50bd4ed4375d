//! 核销: verifications and their undo, 核销记录 and 数据与对账, and gifts
//! (转赠). A verification is one guarded update of the coupon (50 at once
//! of one coupon: the first commits, the rest re-read `state` and find it
//! verified) and one of the holder's use count.

use crate::coupons::{give_back, guard_answer, held_where, record_coupon_call, rolls_back};
use crate::engine::Pipelined;
use crate::events::insert_event;
use crate::ledger::claim_call;
use crate::sql::{all, exec, filtered_page, insert_audit, map_err, opt, parse_or, Params};
use crate::PgStore;
use deadpool_postgres::GenericClient;
use kaquan_core::coupon::usage::{
    check_undo, format_day_number, recheck, Coupon, CouponRefusal, CouponState, CouponVerification,
    DailyVerificationStats, ExpiredCoupon, UndoVerification, VerificationFilter, VerifierStats,
    VerifyChannel, VerifyCoupon, VerifyFacts,
};
use kaquan_core::coupon::{CouponKind, ProgramState};
use kaquan_core::event::{EventType, NewEvent};
use kaquan_core::ledger::{ApiCall, Called};
use kaquan_core::store::Page;
use kaquan_core::{StoreError, StoreResult};
use std::sync::LazyLock;
use tokio_postgres::Row;

const VERIFICATION_COLUMNS: &str = "v.id, v.merchant_id, v.coupon_id, v.program_id, p.title, p.kind, \
    v.location_id, l.name, v.staff_id, v.verifier, v.channel, v.order_amount_fen, v.discount_fen, v.order_ref, \
    v.customer_id, COALESCE(NULLIF(u.nickname, ''), u.external_id, u.phone, ''), c.sealed, c.key_version, \
    v.created_at, v.undone_at, v.undone_by, v.given_coupon_id";
const VERIFICATION_FROM: &str =
    "coupon_verifications v JOIN coupon_programs p ON p.id = v.program_id \
    JOIN coupons c ON c.id = v.coupon_id JOIN customers u ON u.id = v.customer_id \
    LEFT JOIN locations l ON l.id = v.location_id";

fn verification_from_row(r: &Row) -> StoreResult<CouponVerification> {
    Ok(CouponVerification {
        id: r.get(0),
        merchant_id: r.get(1),
        coupon_id: r.get(2),
        program_id: r.get(3),
        program_title: r.get(4),
        kind: parse_or(CouponKind::parse(r.get(5)), "coupon kind")?,
        location_id: r.get(6),
        location_name: r.get(7),
        staff_id: r.get(8),
        verifier: r.get(9),
        channel: parse_or(VerifyChannel::parse(r.get(10)), "verify channel")?,
        order_amount_fen: r.get(11),
        discount_fen: r.get(12),
        order_ref: r.get(13),
        customer_id: r.get(14),
        customer_label: r.get(15),
        sealed: r.get(16),
        key_version: r.get(17),
        created_at: r.get(18),
        undone_at: r.get(19),
        undone_by: r.get(20),
        given_coupon_id: r.get(21),
    })
}

pub(crate) async fn get_verification(
    c: &impl GenericClient,
    merchant_id: i64,
    id: i64,
) -> StoreResult<Option<CouponVerification>> {
    opt(
        c,
        &format!("SELECT {VERIFICATION_COLUMNS} FROM {VERIFICATION_FROM} WHERE v.id = $1 AND v.merchant_id = $2"),
        &[&id, &merchant_id],
    )
    .await?
    .map(|r| verification_from_row(&r))
    .transpose()
}

async fn must_get(
    c: &impl GenericClient,
    merchant_id: i64,
    id: i64,
) -> StoreResult<CouponVerification> {
    get_verification(c, merchant_id, id)
        .await?
        .ok_or(StoreError::NotFound)
}

/// Opens a guarded call: the nonce and key first, then a savepoint. `Err`
/// is the whole answer (a refusal of the guard, or the recorded call),
/// its transaction already ended.
async fn open_call(
    store: &PgStore,
    merchant_id: i64,
    call: &ApiCall,
    now: i64,
) -> StoreResult<Result<Pipelined, Called<CouponVerification, CouponRefusal>>> {
    let tx = Pipelined::new(store.client().await?);
    let c = tx.client();
    // BEGIN, the guard's inserts and the savepoint travel together: one
    // round trip (a replay's answer does not mind the savepoint).
    let savepoint = async {
        c.batch_execute("SAVEPOINT work")
            .await
            .map_err(crate::sql::map_err)
    };
    let ((), claimed, ()) =
        futures_util::try_join!(tx.begin(), claim_call(c, merchant_id, call, now), savepoint)?;
    let called = match guard_answer(claimed) {
        None => return Ok(Ok(tx)),
        Some(Err(refusal)) => Called {
            result: Err(refusal),
            replayed: false,
        },
        Some(Ok(recorded)) => {
            let id = recorded
                .coupon_verification_id
                .ok_or_else(|| StoreError::Backend("an idempotency key of another call".into()))?;
            Called {
                result: Ok(must_get(c, merchant_id, id).await?),
                replayed: true,
            }
        }
    };
    tx.end(rolls_back(&called.result)).await?;
    Ok(Err(called))
}

/// Ends a guarded call with its outcome: recorded under the key, or rolled
/// back to the savepoint with the key given back.
async fn close_call(
    tx: Pipelined,
    merchant_id: i64,
    call: &ApiCall,
    outcome: Result<CouponVerification, CouponRefusal>,
) -> StoreResult<Called<CouponVerification, CouponRefusal>> {
    let c = tx.client();
    let called = match outcome {
        Ok(verification) => {
            let id = verification.id;
            record_coupon_call(c, merchant_id, call, "coupon_verification_id", id).await?;
            Called {
                result: Ok(verification),
                replayed: false,
            }
        }
        Err(refusal) => {
            give_back(c, merchant_id, call).await?;
            Called {
                result: Err(refusal),
                replayed: false,
            }
        }
    };
    tx.end(rolls_back(&called.result)).await?;
    Ok(called)
}

/// Reads why a coupon could not be verified now.
async fn verify_facts(
    c: &impl GenericClient,
    merchant_id: i64,
    coupon_id: i64,
) -> StoreResult<Option<VerifyFacts>> {
    let row = opt(
        c,
        "SELECT c.state, c.verified_at, c.gift_token_hash IS NOT NULL, p.state, c.valid_from, c.valid_until, \
         COALESCE(h.n_used, 0), p.use_limit FROM coupons c JOIN coupon_programs p ON p.id = c.program_id \
         LEFT JOIN coupon_holdings h ON h.program_id = c.program_id AND h.customer_id = c.customer_id \
         WHERE c.id = $1 AND c.merchant_id = $2",
        &[&coupon_id, &merchant_id],
    )
    .await?;
    row.map(|r| {
        Ok(VerifyFacts {
            state: parse_or(CouponState::parse(r.get(0)), "coupon state")?,
            verified_at: r.get(1),
            gifting: r.get(2),
            program_state: parse_or(ProgramState::parse(r.get(3)), "program state")?,
            valid_from: r.get(4),
            valid_until: r.get(5),
            n_used: r.get(6),
            use_limit: r.get(7),
        })
    })
    .transpose()
}

async fn verify_in(
    c: &impl GenericClient,
    verify: &VerifyCoupon,
) -> StoreResult<Result<CouponVerification, CouponRefusal>> {
    let m = verify.merchant_id;
    let taken = opt(
        c,
        "UPDATE coupons c SET state = 'verified', verified_at = $1 FROM coupon_programs p \
         WHERE c.id = $2 AND c.merchant_id = $3 AND c.state = 'available' AND c.gift_token_hash IS NULL \
         AND p.id = c.program_id AND p.state IN ('active', 'ended') AND c.valid_from <= $1 AND c.valid_until >= $1 \
         RETURNING c.program_id, c.customer_id, p.use_limit",
        &[&verify.now, &verify.coupon_id, &m],
    )
    .await?;
    let Some(taken) = taken else {
        let facts = verify_facts(c, m, verify.coupon_id).await?;
        return Ok(Err(match facts {
            None => CouponRefusal::UnknownCode,
            Some(facts) => recheck(&facts, verify.now)
                .err()
                .unwrap_or(CouponRefusal::Used {
                    verified_at: verify.now,
                }),
        }));
    };
    let (program_id, customer_id, use_limit): (i64, i64, i64) =
        (taken.get(0), taken.get(1), taken.get(2));
    let counted = opt(
        c,
        "INSERT INTO coupon_holdings (program_id, customer_id, n_claimed, n_used, merchant_id) \
         VALUES ($1, $2, 0, 1, $4) \
         ON CONFLICT (program_id, customer_id, merchant_id) DO UPDATE SET n_used = coupon_holdings.n_used + 1 \
         WHERE coupon_holdings.n_used < $3 RETURNING 1",
        &[&program_id, &customer_id, &use_limit, &m],
    )
    .await?;
    if counted.is_none() {
        return Ok(Err(CouponRefusal::UseLimitReached { use_limit }));
    }
    let given_coupon_id = match verify.give_back() {
        Some(mut give) => {
            // The holder as the coupon says now (it may have been given to a friend).
            give.coupons[0].0 = customer_id;
            crate::coupon_issues::give_back_in(c, &give).await?
        }
        None => None,
    };
    let id: i64 = crate::sql::one(
        c,
        "INSERT INTO coupon_verifications (merchant_id, coupon_id, program_id, customer_id, location_id, staff_id, verifier, \
         channel, order_amount_fen, discount_fen, order_ref, created_at, given_coupon_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id",
        &[&m, &verify.coupon_id, &program_id, &customer_id, &verify.location_id, &verify.actor.staff_id, &verify.actor.label,
            &verify.channel.code(), &verify.order_amount_fen, &verify.discount_fen, &verify.order_ref, &verify.now,
            &given_coupon_id],
    )
    .await?
    .get(0);
    let verification = must_get(c, m, id).await?;
    let audit = verification.audit("verify_coupon", &verify.actor, verify.now);
    let event = NewEvent::coupon_verification(&verification, EventType::CouponVerified, verify.now);
    futures_util::try_join!(insert_audit(c, &audit, 1), insert_event(c, &event))?;
    Ok(Ok(verification))
}

/// The usual verification as one statement (autocommit: one round trip):
/// the nonce, the coupon's guarded update, the holder's use count under its
/// limit, the record, its audit record and event, and the key's outcome.
/// A coupon taken whose holder is at the use limit ends it with
/// `kaquan_abort` (migration 020), so nothing is kept. Its audit detail
/// and event data are core's, for the record as it will be written; only
/// the record's id is filled in by the statement.
static VERIFY_STATEMENT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH nonce AS (INSERT INTO api_nonces (signed_at, key_id, nonce) \
           SELECT $1::bigint, $2::text, $3::text WHERE $2::text IS NOT NULL), \
         taken AS (UPDATE coupons SET state = 'verified', verified_at = $4 FROM coupon_programs p \
           WHERE coupons.id = $5 AND coupons.merchant_id = $6 AND coupons.program_id = $7 AND coupons.customer_id = $8 \
           AND coupons.state = 'available' AND coupons.gift_token_hash IS NULL AND p.id = coupons.program_id \
           AND p.state IN ('active', 'ended') AND coupons.valid_from <= $4 AND coupons.valid_until >= $4 \
           RETURNING coupons.id, coupons.program_id, coupons.customer_id, p.use_limit), \
         counted AS (INSERT INTO coupon_holdings (program_id, customer_id, n_claimed, n_used, merchant_id) \
           SELECT program_id, customer_id, 0, 1, $6 FROM taken \
           ON CONFLICT (program_id, customer_id, merchant_id) DO UPDATE SET n_used = coupon_holdings.n_used + 1 \
           WHERE coupon_holdings.n_used < (SELECT use_limit FROM taken) RETURNING 1), \
         v AS (INSERT INTO coupon_verifications (merchant_id, coupon_id, program_id, customer_id, location_id, \
           staff_id, verifier, channel, order_amount_fen, discount_fen, order_ref, created_at) \
           SELECT $6, id, program_id, customer_id, $9, $10, $11, $12, $13, $14, $15, $4 FROM taken RETURNING *), \
         audit AS (INSERT INTO audit_log (merchant_id, actor_staff_id, actor, action, target, detail, n_affected, created_at) \
           SELECT $6, $10, $11, $16, 'coupon_verification=' || v.id, $17, 1, $4 FROM v), \
         event AS (INSERT INTO events (merchant_id, event_type, data, created_at) \
           SELECT $6, $18, jsonb_set($19::text::jsonb, '{{verification_id}}', to_jsonb(v.id))::text, $4 FROM v), \
         outcome AS (INSERT INTO idempotency_keys (merchant_id, key, request_hash, coupon_verification_id, created_at) \
           SELECT $6, $20::text, $21::text, v.id, $4 FROM v WHERE $20::text IS NOT NULL) \
         SELECT {VERIFICATION_COLUMNS}, \
           CASE WHEN (SELECT count(*) FROM counted) = 1 THEN 1 ELSE kaquan_abort('use limit reached') END \
         FROM v JOIN coupon_programs p ON p.id = v.program_id JOIN coupons c ON c.id = v.coupon_id \
         JOIN customers u ON u.id = v.customer_id LEFT JOIN locations l ON l.id = v.location_id"
    )
});

/// What [`VERIFY_STATEMENT`] did.
enum OneStatement {
    Verified(Box<CouponVerification>),
    /// Only the nonce was kept: the coupon was refused (or gone to a
    /// friend since it was read).
    NonceKept,
    /// Nothing was kept: the holder's use limit, a used nonce or key.
    NothingKept,
}

/// The abort of migration 020's `kaquan_abort`.
const ABORTED: &str = "KQ001";

async fn verify_in_one_statement(
    store: &PgStore,
    call: &ApiCall,
    verify: &VerifyCoupon,
) -> StoreResult<OneStatement> {
    let event_type = EventType::CouponVerified;
    // 核销后返券 gives a coupon: the transaction of `verify_in` does it.
    if verify.give.is_some()
        || kaquan_core::sms::wants(event_type)
        || kaquan_core::erp::wants(event_type)
    {
        return Ok(OneStatement::NothingKept);
    }
    let record = verify.record();
    let audit = record.audit("verify_coupon", &verify.actor, verify.now);
    let event = NewEvent::coupon_verification(&record, event_type, verify.now);
    let nonce = call.nonce.as_ref();
    let (signed_at, key_id, nonce_text) = (
        nonce.map(|n| n.signed_at),
        nonce.map(|n| n.api_key_id.as_str()),
        nonce.map(|n| n.nonce.as_str()),
    );
    let key = call.idempotency.as_ref().map(|c| c.key.as_str());
    let request_hash = call.idempotency.as_ref().map(|c| c.request_hash.as_str());
    let channel = verify.channel.code();
    let event_code = event_type.code();
    let params: [crate::sql::P<'_>; 21] = [
        &signed_at,
        &key_id,
        &nonce_text,
        &verify.now,
        &verify.coupon_id,
        &verify.merchant_id,
        &verify.program_id,
        &verify.customer_id,
        &verify.location_id,
        &verify.actor.staff_id,
        &verify.actor.label,
        &channel,
        &verify.order_amount_fen,
        &verify.discount_fen,
        &verify.order_ref,
        &audit.action,
        &audit.detail,
        &event_code,
        &event.data,
        &key,
        &request_hash,
    ];
    let c = store.client().await?;
    let statement = c.prepare_cached(&VERIFY_STATEMENT).await.map_err(map_err)?;
    match c.query_opt(&statement, &params).await {
        Ok(Some(row)) => Ok(OneStatement::Verified(Box::new(verification_from_row(
            &row,
        )?))),
        Ok(None) => Ok(OneStatement::NonceKept),
        Err(e) if e.code().is_some_and(|code| code.code() == ABORTED) => {
            Ok(OneStatement::NothingKept)
        }
        Err(e) => match map_err(e) {
            StoreError::Conflict(_) => Ok(OneStatement::NothingKept),
            other => Err(other),
        },
    }
}

pub(crate) async fn verify(
    store: &PgStore,
    call: &ApiCall,
    verify: &VerifyCoupon,
) -> StoreResult<Called<CouponVerification, CouponRefusal>> {
    let rest;
    let call = match verify_in_one_statement(store, call, verify).await? {
        OneStatement::Verified(done) => {
            return Ok(Called {
                result: Ok(*done),
                replayed: false,
            })
        }
        OneStatement::NonceKept => {
            rest = ApiCall {
                nonce: None,
                ..call.clone()
            };
            &rest
        }
        OneStatement::NothingKept => call,
    };
    let tx = match open_call(store, verify.merchant_id, call, verify.now).await? {
        Ok(tx) => tx,
        Err(answer) => return Ok(answer),
    };
    let outcome = verify_in(tx.client(), verify).await?;
    close_call(tx, verify.merchant_id, call, outcome).await
}

async fn undo_in(
    c: &impl GenericClient,
    undo: &UndoVerification,
) -> StoreResult<Result<CouponVerification, CouponRefusal>> {
    let m = undo.merchant_id;
    let taken = opt(
        c,
        "UPDATE coupon_verifications SET undone_at = $1, undone_by = $2 WHERE id = $3 AND merchant_id = $4 \
         AND undone_at IS NULL AND created_at >= $1::bigint - $5::bigint RETURNING coupon_id, program_id, customer_id",
        &[&undo.now, &undo.actor.label, &undo.verification_id, &m, &undo.window_seconds],
    )
    .await?;
    let Some(taken) = taken else {
        return Ok(Err(
            match get_verification(c, m, undo.verification_id).await? {
                None => CouponRefusal::VerificationNotFound,
                Some(v) => check_undo(v.created_at, v.undone_at, undo.window_seconds, undo.now)
                    .err()
                    .unwrap_or(CouponRefusal::AlreadyUndone),
            },
        ));
    };
    let (coupon_id, program_id, customer_id): (i64, i64, i64) =
        (taken.get(0), taken.get(1), taken.get(2));
    crate::sql::expect_one(
        exec(
            c,
            "UPDATE coupons SET state = 'available', verified_at = NULL WHERE id = $1 AND state = 'verified'",
            &[&coupon_id],
        )
        .await?,
    )?;
    exec(
        c,
        "UPDATE coupon_holdings SET n_used = n_used - 1 WHERE program_id = $1 AND customer_id = $2 AND n_used > 0",
        &[&program_id, &customer_id],
    )
    .await?;
    let verification = must_get(c, m, undo.verification_id).await?;
    let audit = verification.audit("undo_coupon_verification", &undo.actor, undo.now);
    let event = NewEvent::coupon_verification(&verification, EventType::CouponUndone, undo.now);
    futures_util::try_join!(insert_audit(c, &audit, 1), insert_event(c, &event))?;
    Ok(Ok(verification))
}

pub(crate) async fn undo(
    store: &PgStore,
    call: &ApiCall,
    undo: &UndoVerification,
) -> StoreResult<Called<CouponVerification, CouponRefusal>> {
    let tx = match open_call(store, undo.merchant_id, call, undo.now).await? {
        Ok(tx) => tx,
        Err(answer) => return Ok(answer),
    };
    let outcome = undo_in(tx.client(), undo).await?;
    close_call(tx, undo.merchant_id, call, outcome).await
}

fn filter_condition(merchant_id: i64, filter: &VerificationFilter) -> (String, Params) {
    let mut condition = "v.merchant_id = $1".to_owned();
    let mut params: Params = vec![Box::new(merchant_id)];
    let mut add = |sql: &str, value: Box<dyn tokio_postgres::types::ToSql + Sync + Send>| {
        params.push(value);
        condition.push_str(&sql.replace('?', &format!("${}", params.len())));
    };
    if let Some(id) = filter.program_id {
        add(" AND v.program_id = ?", Box::new(id));
    }
    if let Some(id) = filter.location_id {
        add(" AND v.location_id = ?", Box::new(id));
    }
    if let Some(verifier) = &filter.verifier {
        add(" AND v.verifier = ?", Box::new(verifier.clone()));
    }
    if let Some(channel) = filter.channel {
        add(" AND v.channel = ?", Box::new(channel.code()));
    }
    if let Some(from) = filter.from {
        add(" AND v.created_at >= ?", Box::new(from));
    }
    if let Some(until) = filter.until {
        add(" AND v.created_at <= ?", Box::new(until));
    }
    (condition, params)
}

pub(crate) async fn list(
    c: &impl GenericClient,
    merchant_id: i64,
    filter: &VerificationFilter,
    page: Page,
) -> StoreResult<(Vec<CouponVerification>, i64)> {
    let (condition, params) = filter_condition(merchant_id, filter);
    let (rows, total) = filtered_page(
        c,
        (VERIFICATION_FROM, VERIFICATION_COLUMNS, "v.id DESC"),
        &condition,
        params,
        page,
    )
    .await?;
    Ok((
        rows.iter()
            .map(verification_from_row)
            .collect::<StoreResult<_>>()?,
        total,
    ))
}

const SUMS: &str = "count(*) FILTER (WHERE v.undone_at IS NULL), \
    COALESCE(sum(COALESCE(v.order_amount_fen, 0)) FILTER (WHERE v.undone_at IS NULL), 0)::bigint, \
    COALESCE(sum(v.discount_fen) FILTER (WHERE v.undone_at IS NULL), 0)::bigint, \
    count(*) FILTER (WHERE v.undone_at IS NOT NULL)";

pub(crate) async fn daily_stats(
    c: &impl GenericClient,
    merchant_id: i64,
    filter: &VerificationFilter,
) -> StoreResult<Vec<DailyVerificationStats>> {
    let (condition, params) = filter_condition(merchant_id, filter);
    let offset = i64::from(kaquan_core::clock::MERCHANT_UTC_OFFSET_SECONDS);
    let sql = format!(
        "SELECT (v.created_at + {offset}) / 86400 AS day, v.location_id, l.name, {SUMS} \
         FROM coupon_verifications v LEFT JOIN locations l ON l.id = v.location_id WHERE {condition} \
         GROUP BY day, v.location_id, l.name ORDER BY day DESC, v.location_id LIMIT 1000"
    );
    Ok(all(c, &sql, &crate::sql::refs(&params))
        .await?
        .iter()
        .map(|r| DailyVerificationStats {
            day: format_day_number(r.get(0)),
            location_id: r.get(1),
            location_name: r.get(2),
            n_verified: r.get(3),
            order_amount_fen: r.get(4),
            discount_fen: r.get(5),
            n_undone: r.get(6),
        })
        .collect())
}

pub(crate) async fn verifier_stats(
    c: &impl GenericClient,
    merchant_id: i64,
    filter: &VerificationFilter,
) -> StoreResult<Vec<VerifierStats>> {
    let (condition, params) = filter_condition(merchant_id, filter);
    let sql = format!(
        "SELECT v.verifier, {SUMS} FROM coupon_verifications v WHERE {condition} \
         GROUP BY v.verifier ORDER BY v.verifier LIMIT 1000"
    );
    Ok(all(c, &sql, &crate::sql::refs(&params))
        .await?
        .iter()
        .map(|r| VerifierStats {
            verifier: r.get(0),
            n_verified: r.get(1),
            order_amount_fen: r.get(2),
            discount_fen: r.get(3),
            n_undone: r.get(4),
        })
        .collect())
}

pub(crate) async fn accept_gift(
    store: &PgStore,
    merchant_id: i64,
    token_hash: &str,
    friend_id: i64,
    now: i64,
) -> StoreResult<Result<Coupon, CouponRefusal>> {
    let c = store.client().await?;
    let moved = opt(
        &c,
        "UPDATE coupons SET customer_id = $1, gift_token_hash = NULL, gift_from = customer_id, source = 'gift' \
         WHERE gift_token_hash = $2 AND merchant_id = $3 AND state = 'available' AND valid_until >= $4 \
         AND customer_id <> $1 AND EXISTS (SELECT 1 FROM customers WHERE id = $1 AND merchant_id = $3) RETURNING id",
        &[&friend_id, &token_hash, &merchant_id, &now],
    )
    .await?;
    if let Some(row) = moved {
        let id: i64 = row.get(0);
        return held_where(&c, "c.id = $1", &[&id])
            .await?
            .pop()
            .map(|h| Ok(h.coupon))
            .ok_or(StoreError::NotFound);
    }
    let held = held_where(
        &c,
        "c.gift_token_hash = $1 AND c.merchant_id = $2",
        &[&token_hash, &merchant_id],
    )
    .await?
    .pop();
    Ok(Err(match held {
        Some(h) if h.coupon.customer_id == friend_id => CouponRefusal::OwnGift,
        Some(h) if h.coupon.state == CouponState::Available && h.coupon.valid_until >= now => {
            CouponRefusal::CustomerNotFound
        }
        _ => CouponRefusal::GiftUnavailable,
    }))
}

/// Announces up to `limit` coupons that passed their validity unused; two
/// nodes sweeping at once skip each other's rows.
pub(crate) async fn announce_expired(store: &PgStore, now: i64, limit: i64) -> StoreResult<i64> {
    let mut client = store.client().await?;
    let tx = client.transaction().await.map_err(crate::sql::map_err)?;
    let rows = all(
        &tx,
        "UPDATE coupons SET expiry_announced = true WHERE id IN (SELECT id FROM coupons \
         WHERE state = 'available' AND NOT expiry_announced AND valid_until < $1 ORDER BY valid_until LIMIT $2 \
         FOR UPDATE SKIP LOCKED) RETURNING id, merchant_id, program_id, customer_id, valid_until",
        &[&now, &limit],
    )
    .await?;
    for r in &rows {
        let expired = ExpiredCoupon {
            coupon_id: r.get(0),
            merchant_id: r.get(1),
            program_id: r.get(2),
            customer_id: r.get(3),
            valid_until: r.get(4),
        };
        insert_event(&tx, &NewEvent::coupon_expired(&expired, now)).await?;
    }
    tx.commit().await.map_err(crate::sql::map_err)?;
    Ok(rows.len() as i64)
}
