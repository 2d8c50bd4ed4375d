//! A payment reported for a member, on PostgreSQL, in two round trips and
//! without BEGIN/COMMIT: one read (the member with its program, accounts
//! and counters, whether the order was reported, the operation's id, and
//! the merchant's SMS settings), core's plan, then one guarded
//! statement that writes everything the general way writes — nonce,
//! idempotency key, both accounts, the ledger's transactions and postings,
//! the member's counters and tier, the operation record, its audit record,
//! its event and texts.
//!
//! The statement is guarded by what the read saw: each account's balance,
//! the member's tier and counters, a nonce and key not yet used. When any
//! guard fails (another call on the member came between, a replay, a
//! reused nonce, the same order at once) the statement divides by zero,
//! which undoes all of it, and the caller runs the call the general way,
//! under lock. Refusals (points off, limits, an unknown customer) go the
//! general way too: they are recorded under the key there.
//!
//! Locks are taken member first, as the general way takes them: each
//! account's update waits on the member's.

use crate::member_programs::program_from_row;
use crate::members::{member_from_row_at, MEMBER_COLUMNS};
use crate::sql::{all, map_err, P};
use deadpool_postgres::GenericClient;
use kaquan_core::event::NewEvent;
use kaquan_core::ledger::{ApiCall, CustomerRef, TransactionKind};
use kaquan_core::member::operation::{
    audit_detail, plan_payment, MemberOp, MemberOperation, MemberRef, PaymentPlan, ReportPayment,
};
use kaquan_core::member::Member;
use kaquan_core::pickup::Channel;
use kaquan_core::StoreResult;
use tokio_postgres::error::SqlState;

/// The program's rule columns, each named through the program's alias.
static PROGRAM_COLUMNS_OF_G: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    crate::member_programs::PROGRAM_RULE_COLUMNS
        .split(", ")
        .map(|column| {
            if column.starts_with("0::") {
                column.to_owned()
            } else {
                format!("g.{column}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
});

/// The merchant's SMS settings' columns, each named through their alias.
static SMS_COLUMNS_OF_S: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    crate::sms::SETTINGS_COLUMNS
        .split(", ")
        .map(|column| format!("s.{column}"))
        .collect::<Vec<_>>()
        .join(", ")
});

/// Columns after the program's: the member, its accounts, whether the order
/// was reported, the operation's id, the claim token of the coupon the
/// points message carries, the merchant's SMS settings (if any).
fn read_statement(who: &str) -> String {
    format!(
        "SELECT {program}, {MEMBER_COLUMNS}, p.id, f.id, \
         EXISTS (SELECT 1 FROM member_operations o WHERE o.merchant_id = $1 AND o.kind = 'payment' AND o.reference = $4), \
         nextval('member_operations_id_seq'), \
         (SELECT claim_token FROM coupon_programs k WHERE k.id = g.notify_coupon_program_id AND k.merchant_id = $1), \
         {sms} \
         FROM members m JOIN customers c ON c.id = m.customer_id \
         JOIN ledger_accounts p ON p.customer_id = m.customer_id AND p.asset = 'points' \
         JOIN ledger_accounts f ON f.customer_id = m.customer_id AND f.asset = 'fen' \
         JOIN member_programs g ON g.id = m.program_id \
         LEFT JOIN sms_settings s ON s.merchant_id = $1 \
         WHERE {who} AND c.merchant_id = $1 AND m.merchant_id = $1 \
         AND ($3::bigint IS NULL OR m.program_id = $3) LIMIT 2",
        program = *PROGRAM_COLUMNS_OF_G,
        sms = *SMS_COLUMNS_OF_S
    )
}

static READ_BY_EXTERNAL_ID: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| read_statement("c.external_id = $2"));
static READ_BY_CUSTOMER_ID: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| read_statement("c.id = $2"));
/// Where the member's columns start in a read: after the program's.
static MEMBER_AT: std::sync::LazyLock<usize> = std::sync::LazyLock::new(|| {
    crate::member_programs::PROGRAM_RULE_COLUMNS
        .split(", ")
        .count()
});

/// The guarded statement; `texts` when the payment sends texts (a
/// statement without them leaves `sms_messages` and its indexes alone).
fn write_statement(texts: bool) -> String {
    let (texts_cte, texts_guard) = if texts {
        (TEXTS_CTE, TEXTS_GUARD)
    } else {
        ("", "")
    };
    format!(
        "WITH nonce AS ( \
      INSERT INTO api_nonces (signed_at, key_id, nonce) \
      SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[]) ON CONFLICT DO NOTHING RETURNING 1 \
    ), claim AS ( \
      INSERT INTO idempotency_keys (merchant_id, key, request_hash, member_operation_id, created_at) \
      SELECT $4, k, h, $5, $6 FROM unnest($7::text[], $8::text[]) AS u(k, h) ON CONFLICT DO NOTHING RETURNING 1 \
    ), member AS ( \
      UPDATE members SET points_earned = points_earned + $9, spend_fen = spend_fen + $10, tier = $11 \
      WHERE id = $12 AND tier = $13 AND points_earned = $14 AND spend_fen = $15 RETURNING 1 \
    ), points AS ( \
      UPDATE ledger_accounts SET balance = balance + $16 \
      WHERE id = $17 AND balance = $18 AND EXISTS (SELECT 1 FROM member) RETURNING 1 \
    ), fen AS ( \
      UPDATE ledger_accounts SET balance = balance + $19 \
      WHERE id = $20 AND balance = $21 AND EXISTS (SELECT 1 FROM member) RETURNING 1 \
    ), t AS ( \
      INSERT INTO ledger_transactions (merchant_id, customer_id, kind, amount_fen, balance_after_fen, reference, \
      reason, channel, created_by, created_at, asset) \
      SELECT $4, $22, u.kind, u.amount, u.after, $23, '', $24, $25, $6, u.asset \
      FROM unnest($26::text[], $27::bigint[], $28::bigint[], $29::text[]) AS u(kind, amount, after, asset) \
      RETURNING id, kind, amount_fen, asset \
    ), posted AS ( \
      INSERT INTO ledger_postings (transaction_id, account_id, asset, amount, merchant_id) \
      SELECT t.id, CASE t.asset WHEN 'points' THEN $17 ELSE $20 END, t.asset, t.amount_fen, $4 FROM t \
      UNION ALL \
      SELECT t.id, (SELECT a.id FROM ledger_accounts a WHERE a.merchant_id = $4 AND a.kind = u.counter \
      AND a.customer_id IS NULL AND a.asset = t.asset), t.asset, -t.amount_fen, $4 \
      FROM t JOIN unnest($26::text[], $30::text[]) AS u(kind, counter) ON u.kind = t.kind \
      RETURNING 1 \
    ), operation AS ( \
      INSERT INTO member_operations (id, merchant_id, member_id, kind, reference, payment_id, location_id, amount_fen, \
      discount_fen, points_used, points_deduction_fen, balance_fen, bonus_fen, points_earned, points_after, \
      balance_after_fen, tier_after, refunded_fen, reason, created_by, created_at) OVERRIDING SYSTEM VALUE \
      VALUES ($5, $4, $12, 'payment', $23, NULL, $31, $32, $33, $34, $35, $36, 0, $37, $38, $39, $11, 0, '', $25, $6) \
      RETURNING 1 \
    ), audit AS ( \
      INSERT INTO audit_log (merchant_id, actor_staff_id, actor, action, target, detail, n_affected, created_at) \
      VALUES ($4, $40, $25, 'member_payment', $41, $42, 1, $6) RETURNING 1 \
    ), event AS ( \
      INSERT INTO events (merchant_id, event_type, data, created_at) \
      SELECT $4, u.event_type, u.data, $6 FROM unnest($43::text[], $44::text[]) AS u(event_type, data) RETURNING 1 \
    ){texts_cte} SELECT 1 / (CASE WHEN (SELECT count(*) FROM nonce) = cardinality($1::bigint[]) \
      AND (SELECT count(*) FROM claim) = cardinality($7::text[]) \
      AND EXISTS (SELECT 1 FROM member) AND EXISTS (SELECT 1 FROM points) AND EXISTS (SELECT 1 FROM fen) \
      AND (SELECT count(*) FROM posted) = 2 * cardinality($26::text[]) \
      AND (SELECT count(*) FROM operation) + (SELECT count(*) FROM audit) = 2 \
      AND (SELECT count(*) FROM event) = cardinality($43::text[]){texts_guard} THEN 1 ELSE 0 END)"
    )
}

const TEXTS_CTE: &str = ", texts AS ( \
      INSERT INTO sms_messages (merchant_id, kind, phone, template, params, state, next_attempt_at, created_at) \
      SELECT $4, u.kind, u.phone, u.template, u.params, 'pending', $6, $6 \
      FROM unnest($45::text[], $46::text[], $47::text[], $48::text[]) AS u(kind, phone, template, params) RETURNING 1 \
    )";
const TEXTS_GUARD: &str = " AND (SELECT count(*) FROM texts) = cardinality($45::text[])";
static WRITE_WITH_TEXTS: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| write_statement(true));
static WRITE_WITHOUT_TEXTS: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| write_statement(false));

/// What the read found: the member, their program, accounts and the rest.
struct Found {
    member: Member,
    program: kaquan_core::member::MemberProgram,
    points_account: i64,
    fen_account: i64,
    reported: bool,
    operation_id: i64,
    coupon_claim_token: Option<String>,
    sms: Option<kaquan_core::sms::SmsSettings>,
}

async fn read(
    c: &impl GenericClient,
    merchant_id: i64,
    p: &ReportPayment,
) -> StoreResult<Option<Found>> {
    let MemberRef::Customer {
        customer,
        program_id,
    } = &p.member
    else {
        return Ok(None);
    };
    let (sql, who): (&str, P<'_>) = match customer {
        CustomerRef::External(external) => (&READ_BY_EXTERNAL_ID, external),
        CustomerRef::Id(id) => (&READ_BY_CUSTOMER_ID, id),
    };
    let rows = all(c, sql, &[&merchant_id, who, program_id, &p.reference]).await?;
    let [row] = rows.as_slice() else {
        return Ok(None);
    };
    let n = *MEMBER_AT;
    Ok(Some(Found {
        program: program_from_row(row)?,
        member: member_from_row_at(row, n),
        points_account: row.get(n + 15),
        fen_account: row.get(n + 16),
        reported: row.get(n + 17),
        operation_id: row.get(n + 18),
        coupon_claim_token: row.get(n + 19),
        sms: match row.get::<_, Option<i64>>(n + 20) {
            Some(_) => Some(crate::sms::settings_from_row_at(row, n + 20)?),
            None => None,
        },
    }))
}

/// The payment in one guarded statement; `None` when it must run the
/// general way (nothing was written then).
pub(crate) async fn pay_in_one_statement(
    c: &impl GenericClient,
    call: &ApiCall,
    op: &MemberOp,
    p: &ReportPayment,
) -> StoreResult<Option<MemberOperation>> {
    let merchant_id = op.merchant_id;
    let Some(found) = read(c, merchant_id, p).await? else {
        return Ok(None);
    };
    let Found {
        member, program, ..
    } = &found;
    let Ok(plan) = plan_payment(&program.fields, program.state, member, p) else {
        return Ok(None);
    };
    if found.reported {
        return Ok(None);
    }
    let (mut record, after) = plan.record(op, member, p);
    record.id = found.operation_id;
    let number = program.fields.member_number(member.id);
    let coupon = found
        .coupon_claim_token
        .as_ref()
        .filter(|_| record.points_delta() != 0)
        .map(|token| format!("/m/{merchant_id}/coupons/{token}"));
    let event = NewEvent::member_operation(&record, &after, &number, coupon.as_deref())
        .filter(|_| program.fields.notify);
    if event
        .as_ref()
        .is_some_and(|e| kaquan_core::erp::wants(e.event_type))
    {
        return Ok(None);
    }
    let texts: Vec<kaquan_core::sms::NewSms> = match (&event, &found.sms) {
        (Some(event), Some(settings)) if kaquan_core::sms::wants(event.event_type) => {
            kaquan_core::sms::messages_for(event, settings)
        }
        _ => Vec::new(),
    };
    let written = Written {
        record: &record,
        plan: &plan,
        event: event.as_ref(),
        texts: &texts,
    };
    Ok(write(c, call, op, &found, &written)
        .await?
        .then_some(record))
}

/// What the statement writes besides the ledger.
struct Written<'a> {
    record: &'a MemberOperation,
    plan: &'a PaymentPlan,
    event: Option<&'a NewEvent>,
    texts: &'a [kaquan_core::sms::NewSms],
}

/// The ledger's transactions of a payment, column by column.
struct Moves {
    kinds: Vec<&'static str>,
    amounts: Vec<i64>,
    afters: Vec<i64>,
    assets: Vec<&'static str>,
    counters: Vec<&'static str>,
}

/// The transactions that move something, in the order the general way
/// posts them, each with its balance after.
fn moves(member: &Member, plan: &PaymentPlan) -> Moves {
    let (mut points, mut fen) = (member.points, member.balance_fen);
    let moving: Vec<(TransactionKind, i64, i64)> = plan
        .ledger_moves()
        .into_iter()
        .filter(|(_, delta)| *delta != 0)
        .map(|(kind, delta)| {
            let balance = match kind.asset() {
                kaquan_core::ledger::Asset::Points => &mut points,
                kaquan_core::ledger::Asset::Fen => &mut fen,
            };
            *balance += delta;
            (kind, delta, *balance)
        })
        .collect();
    Moves {
        kinds: moving.iter().map(|m| m.0.code()).collect(),
        amounts: moving.iter().map(|m| m.1).collect(),
        afters: moving.iter().map(|m| m.2).collect(),
        assets: moving.iter().map(|m| m.0.asset().code()).collect(),
        counters: moving
            .iter()
            .map(|m| m.0.counter_account().code())
            .collect(),
    }
}

/// Runs the guarded statement; false when a guard failed (nothing written).
async fn write(
    c: &impl GenericClient,
    call: &ApiCall,
    op: &MemberOp,
    found: &Found,
    w: &Written<'_>,
) -> StoreResult<bool> {
    let (member, record, plan) = (&found.member, w.record, w.plan);
    let Moves {
        kinds,
        amounts,
        afters,
        assets,
        counters,
    } = moves(member, plan);
    let target = format!("member={}", member.id);
    let detail = audit_detail(record);
    let nonce = call.nonce.as_ref();
    let signed_at: Vec<i64> = nonce.iter().map(|n| n.signed_at).collect();
    let key_ids: Vec<&str> = nonce.iter().map(|n| n.api_key_id.as_str()).collect();
    let nonces: Vec<&str> = nonce.iter().map(|n| n.nonce.as_str()).collect();
    let claim = call.idempotency.as_ref();
    let keys: Vec<&str> = claim.iter().map(|k| k.key.as_str()).collect();
    let hashes: Vec<&str> = claim.iter().map(|k| k.request_hash.as_str()).collect();
    let tier_after = i64::try_from(record.tier_after).unwrap_or(0);
    let tier_before = i64::try_from(member.tier).unwrap_or(0);
    let points_delta = plan.points_earned - plan.points_used;
    let balance_delta = -plan.balance_fen;
    let channel = Channel::Api.code();
    let event_types: Vec<&str> = w.event.iter().map(|e| e.event_type.code()).collect();
    let event_data: Vec<&str> = w.event.iter().map(|e| e.data.as_str()).collect();
    let text_kinds: Vec<&str> = w.texts.iter().map(|t| t.kind.code()).collect();
    let text_phones: Vec<&str> = w.texts.iter().map(|t| t.phone.as_str()).collect();
    let text_templates: Vec<&str> = w.texts.iter().map(|t| t.template.as_str()).collect();
    let text_params: Vec<&str> = w.texts.iter().map(|t| t.params.as_str()).collect();
    let params: [P<'_>; 48] = [
        &signed_at,
        &key_ids,
        &nonces,
        &op.merchant_id,
        &record.id,
        &op.now,
        &keys,
        &hashes,
        &plan.points_earned,
        &plan.paid_fen,
        &tier_after,
        &member.id,
        &tier_before,
        &member.points_earned,
        &member.spend_fen,
        &points_delta,
        &found.points_account,
        &member.points,
        &balance_delta,
        &found.fen_account,
        &member.balance_fen,
        &member.customer_id,
        &record.reference,
        &channel,
        &op.actor.label,
        &kinds,
        &amounts,
        &afters,
        &assets,
        &counters,
        &record.location_id,
        &record.amount_fen,
        &record.discount_fen,
        &record.points_used,
        &record.points_deduction_fen,
        &record.balance_fen,
        &record.points_earned,
        &record.points_after,
        &record.balance_after_fen,
        &op.actor.staff_id,
        &target,
        &detail,
        &event_types,
        &event_data,
        &text_kinds,
        &text_phones,
        &text_templates,
        &text_params,
    ];
    run_write(c, &params, !w.texts.is_empty()).await
}

/// Runs the guarded statement with or without its texts (without, it
/// names 44 parameters, not 48); false when a guard failed.
async fn run_write(c: &impl GenericClient, params: &[P<'_>; 48], texts: bool) -> StoreResult<bool> {
    let (sql, params): (&str, &[P<'_>]) = if texts {
        (&WRITE_WITH_TEXTS, params)
    } else {
        (&WRITE_WITHOUT_TEXTS, &params[..44])
    };
    let statement = c.prepare_cached(sql).await.map_err(map_err)?;
    match c.query_one(&statement, params).await {
        Ok(_) => Ok(true),
        // A guard failed, or the same order was reported at once: nothing
        // was written; the general way decides under lock.
        Err(e)
            if e.code().is_some_and(|code| {
                *code == SqlState::DIVISION_BY_ZERO || *code == SqlState::UNIQUE_VIOLATION
            }) =>
        {
            Ok(false)
        }
        Err(e) => Err(map_err(e)),
    }
}
