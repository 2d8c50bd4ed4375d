//! 优惠券: programs, the coupons customers hold and how they are given out.
//! Verifications, their reconciliation, gifts and settings are in
//! `coupon_verifications.rs`. The single writer runs each job alone, so
//! what a job reads before it writes is what it writes over.

use crate::sql::{decode, filtered_page, insert_audit, map_err};
use crate::SqliteStore;
use kaquan_core::audit::AuditEntry;
use kaquan_core::coupon::usage::{
    Coupon, CouponLogo, CouponLookup, CouponPicture, CouponRefusal, CouponSource, CouponState,
    HeldCoupon, IssueCoupons, ProgramFilter, WalletTab,
};
use kaquan_core::coupon::{
    decode_location_ids, encode_location_ids, Benefit, BenefitColumns, CodeType, CouponKind,
    CouponProgram, CouponProgramFields, ProgramState, SharedCoupon, TimeLimit, Validity,
};
use kaquan_core::ledger::{ApiCall, Called};
use kaquan_core::store::Page;
use kaquan_core::{Conflict, StoreError, StoreResult};
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row};

/// A program's own columns, in `program_at`'s order.
pub(crate) const PROGRAM_COLUMNS: &str = "p.id, p.merchant_id, p.kind, p.percent_off, p.cap_fen, \
    p.least_cost_fen, p.reduce_cost_fen, p.goods_id, p.detail, p.price_fen, p.title, p.sub_title, \
    p.brand_name, p.logo_url, p.color, p.notice, p.description, p.service_phone, p.get_limit, \
    p.use_limit, p.validity_type, p.begin_at, p.end_at, p.term_days, p.begin_after_days, p.hard_end, \
    p.weekdays, p.day_begin_minute, p.day_end_minute, p.use_all_locations, p.location_ids, \
    p.code_type, p.rotating_code, p.can_give_friend, p.can_use_with_other_discount, p.state, \
    p.quantity, p.n_claimed, p.claim_token, p.version, p.created_by, p.created_at, \
    p.shared, p.cover_url, p.abstract_text, p.detail_text, p.give_program_id";
/// The program's counts, for lists (lookups at the counter skip them).
const PROGRAM_COUNTS: &str = "p.n_verified, \
    (SELECT count(*) FROM coupons c WHERE c.program_id = p.id AND c.state = 'available' AND c.valid_until < unixepoch())";
pub(crate) const NO_COUNTS: &str = "0, 0";

/// The columns a program's fields are written to, in [`field_values`]' order.
const FIELD_COLUMNS: &str = "kind, percent_off, cap_fen, least_cost_fen, reduce_cost_fen, goods_id, detail, \
    price_fen, title, sub_title, brand_name, logo_url, color, notice, description, service_phone, get_limit, \
    use_limit, validity_type, begin_at, end_at, term_days, begin_after_days, hard_end, weekdays, \
    day_begin_minute, day_end_minute, use_all_locations, location_ids, code_type, rotating_code, \
    can_give_friend, can_use_with_other_discount, shared, cover_url, abstract_text, detail_text, give_program_id";

fn field_values(f: &CouponProgramFields) -> Vec<Value> {
    let b = f.benefit.to_columns();
    let (validity_type, begin_at, end_at, term_days, begin_after_days, hard_end) =
        f.validity.to_columns();
    let text = |t: &str| Value::Text(t.to_owned());
    let int = |i: Option<i64>| i.map_or(Value::Null, Value::Integer);
    let flag = |b: bool| Value::Integer(i64::from(b));
    let shared = f.shared.clone().unwrap_or_default();
    vec![
        text(f.benefit.kind().code()),
        int(b.percent_off),
        int(b.cap_fen),
        int(b.least_cost_fen),
        int(b.reduce_cost_fen),
        int(b.goods_id),
        text(&b.detail),
        int(b.price_fen),
        text(&f.title),
        text(&f.sub_title),
        text(&f.brand_name),
        text(&f.logo_url),
        text(&f.color),
        text(&f.notice),
        text(&f.description),
        text(&f.service_phone),
        Value::Integer(f.get_limit),
        Value::Integer(f.use_limit),
        text(validity_type),
        int(begin_at),
        int(end_at),
        int(term_days),
        int(begin_after_days),
        int(hard_end),
        Value::Integer(i64::from(f.time_limit.weekdays)),
        int(f.time_limit.day_minutes.map(|m| m.0)),
        int(f.time_limit.day_minutes.map(|m| m.1)),
        flag(f.use_all_locations),
        text(&encode_location_ids(&f.location_ids)),
        text(f.code_type.code()),
        flag(f.rotating_code),
        flag(f.can_give_friend),
        flag(f.can_use_with_other_discount),
        flag(f.shared.is_some()),
        text(&shared.cover_url),
        text(&shared.abstract_text),
        text(&shared.detail_text),
        int(f.give_program_id),
    ]
}

/// The program's column and the table of an uploaded picture.
fn picture_place(picture: CouponPicture) -> (&'static str, &'static str) {
    match picture {
        CouponPicture::Logo => ("logo_url", "coupon_logos"),
        CouponPicture::Cover => ("cover_url", "coupon_covers"),
    }
}

/// Reads a program from `row` starting at column `at`.
pub(crate) fn program_at(r: &Row, at: usize) -> rusqlite::Result<CouponProgram> {
    let kind: String = r.get(at + 2)?;
    let kind = decode(CouponKind::parse(&kind), at + 2, "coupon kind")?;
    let benefit = Benefit::from_columns(
        kind,
        BenefitColumns {
            percent_off: r.get(at + 3)?,
            cap_fen: r.get(at + 4)?,
            least_cost_fen: r.get(at + 5)?,
            reduce_cost_fen: r.get(at + 6)?,
            goods_id: r.get(at + 7)?,
            detail: r.get(at + 8)?,
            price_fen: r.get(at + 9)?,
        },
    );
    let validity_type: String = r.get(at + 20)?;
    let validity = Validity::from_columns(
        &validity_type,
        (
            r.get(at + 21)?,
            r.get(at + 22)?,
            r.get(at + 23)?,
            r.get(at + 24)?,
            r.get(at + 25)?,
        ),
    );
    let code_type: String = r.get(at + 31)?;
    let state: String = r.get(at + 35)?;
    let location_ids: String = r.get(at + 30)?;
    Ok(CouponProgram {
        id: r.get(at)?,
        merchant_id: r.get(at + 1)?,
        fields: CouponProgramFields {
            benefit: decode(benefit, at + 3, "coupon benefit")?,
            title: r.get(at + 10)?,
            sub_title: r.get(at + 11)?,
            brand_name: r.get(at + 12)?,
            logo_url: r.get(at + 13)?,
            color: r.get(at + 14)?,
            notice: r.get(at + 15)?,
            description: r.get(at + 16)?,
            service_phone: r.get(at + 17)?,
            get_limit: r.get(at + 18)?,
            use_limit: r.get(at + 19)?,
            validity: decode(validity, at + 20, "coupon validity")?,
            time_limit: TimeLimit::from_columns(r.get(at + 26)?, r.get(at + 27)?, r.get(at + 28)?),
            use_all_locations: r.get(at + 29)?,
            location_ids: decode_location_ids(&location_ids),
            code_type: decode(CodeType::parse(&code_type), at + 31, "code type")?,
            rotating_code: r.get(at + 32)?,
            can_give_friend: r.get(at + 33)?,
            can_use_with_other_discount: r.get(at + 34)?,
            shared: r.get::<_, bool>(at + 42)?.then_some(SharedCoupon {
                cover_url: r.get(at + 43)?,
                abstract_text: r.get(at + 44)?,
                detail_text: r.get(at + 45)?,
            }),
            give_program_id: r.get(at + 46)?,
        },
        state: decode(ProgramState::parse(&state), at + 35, "program state")?,
        quantity: r.get(at + 36)?,
        n_claimed: r.get(at + 37)?,
        claim_token: r.get(at + 38)?,
        version: r.get(at + 39)?,
        created_by: r.get(at + 40)?,
        created_at: r.get(at + 41)?,
        n_verified: r.get(at + 47)?,
        n_expired: r.get(at + 48)?,
    })
}

pub(crate) fn program_from_row(r: &Row) -> rusqlite::Result<CouponProgram> {
    program_at(r, 0)
}

pub(crate) fn get_program(
    conn: &Connection,
    merchant_id: i64,
    id: i64,
) -> StoreResult<CouponProgram> {
    crate::sql::cached_row(conn,
        &format!("SELECT {PROGRAM_COLUMNS}, {PROGRAM_COUNTS} FROM coupon_programs p WHERE p.id = ?1 AND p.merchant_id = ?2"),
        params![id, merchant_id],
        program_from_row,
    )
    .map_err(map_err)
}

pub(crate) const COUPON_COLUMNS: &str = "c.id, c.merchant_id, c.program_id, c.customer_id, c.state, \
    c.valid_from, c.valid_until, c.sealed, c.key_version, c.source, i.order_id, c.claimed_at, c.verified_at, \
    c.gift_token_hash IS NOT NULL";
const N_COUPON_COLUMNS: usize = 14;
/// A held coupon's tables: the coupon, its issue and its program.
pub(crate) const HELD_FROM: &str = "coupons c JOIN coupon_issues i ON i.id = c.issue_id \
    JOIN coupon_programs p ON p.id = c.program_id";

fn coupon_from_row(r: &Row) -> rusqlite::Result<Coupon> {
    let state: String = r.get(4)?;
    let source: String = r.get(9)?;
    Ok(Coupon {
        id: r.get(0)?,
        merchant_id: r.get(1)?,
        program_id: r.get(2)?,
        customer_id: r.get(3)?,
        state: decode(CouponState::parse(&state), 4, "coupon state")?,
        valid_from: r.get(5)?,
        valid_until: r.get(6)?,
        sealed: r.get(7)?,
        key_version: r.get(8)?,
        source: decode(CouponSource::parse(&source), 9, "coupon source")?,
        order_id: r.get(10)?,
        claimed_at: r.get(11)?,
        verified_at: r.get(12)?,
        gifting: r.get(13)?,
    })
}

pub(crate) fn held_from_row(r: &Row) -> rusqlite::Result<HeldCoupon> {
    Ok(HeldCoupon {
        coupon: coupon_from_row(r)?,
        program: program_at(r, N_COUPON_COLUMNS)?,
    })
}

/// The held coupons matching `condition`, without the programs' counts.
pub(crate) fn held_where(
    conn: &Connection,
    condition: &str,
    values: impl rusqlite::Params,
) -> StoreResult<Vec<HeldCoupon>> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {COUPON_COLUMNS}, {PROGRAM_COLUMNS}, {NO_COUNTS} FROM {HELD_FROM} WHERE {condition}"
        ))
        .map_err(map_err)?;
    let rows = stmt.query_map(values, held_from_row).map_err(map_err)?;
    rows.collect::<Result<_, _>>().map_err(map_err)
}

pub(crate) fn coupons_of_issue(conn: &Connection, issue_id: i64) -> StoreResult<Vec<Coupon>> {
    Ok(
        held_where(conn, "c.issue_id = ?1 ORDER BY c.id", [issue_id])?
            .into_iter()
            .map(|h| h.coupon)
            .collect(),
    )
}

/// A coupon call refused before it wrote anything.
pub(crate) fn refused<T>(refusal: CouponRefusal) -> StoreResult<Called<T, CouponRefusal>> {
    Ok(Called {
        result: Err(refusal),
        replayed: false,
    })
}

/// Keeps the call's outcome under its idempotency key in `column`.
pub(crate) fn record_coupon_call(
    conn: &Connection,
    merchant_id: i64,
    call: &ApiCall,
    column: &str,
    id: i64,
    now: i64,
) -> StoreResult<()> {
    if let Some(claim) = &call.idempotency {
        crate::sql::cached_execute(
            conn,
            &format!(
                "INSERT INTO idempotency_keys (merchant_id, key, request_hash, {column}, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5)"
            ),
            params![merchant_id, claim.key.as_str(), claim.request_hash, id, now],
        )
        .map_err(map_err)?;
    }
    Ok(())
}

/// The condition and values of a wallet tab.
fn wallet_condition(tab: Option<WalletTab>, now: i64) -> (&'static str, Vec<Value>) {
    match tab {
        None => ("", vec![]),
        Some(WalletTab::Usable) => (
            " AND c.state = 'available' AND c.valid_until >= ?",
            vec![Value::Integer(now)],
        ),
        Some(WalletTab::Used) => (" AND c.state = 'verified'", vec![]),
        Some(WalletTab::Expired) => (
            " AND c.state = 'available' AND c.valid_until < ?",
            vec![Value::Integer(now)],
        ),
    }
}

#[async_trait::async_trait]
impl kaquan_core::coupon::usage::CouponStore for SqliteStore {
    async fn create_coupon_program(
        &self,
        merchant_id: i64,
        fields: &CouponProgramFields,
        quantity: i64,
        claim_token: &str,
        audit: &AuditEntry,
    ) -> StoreResult<CouponProgram> {
        let (mut values, audit, token) =
            (field_values(fields), audit.clone(), claim_token.to_owned());
        self.write(move |conn| {
            let mut values = std::mem::take(&mut values);
            values.extend([
                Value::Integer(merchant_id),
                Value::Integer(quantity),
                Value::Text(token.clone()),
                Value::Text(audit.actor.label.clone()),
                Value::Integer(audit.created_at),
            ]);
            let placeholders = vec!["?"; values.len()].join(", ");
            let id: i64 = crate::sql::cached_row(conn,
                    &format!(
                        "INSERT INTO coupon_programs ({FIELD_COLUMNS}, merchant_id, quantity, claim_token, created_by, created_at, state) \
                         VALUES ({placeholders}, 'draft') RETURNING id"
                    ),
                    params_from_iter(values),
                    |r| r.get(0),
                )
                .map_err(map_err)?;
            let mut audit = audit.clone();
            audit.target = format!("coupon_program={id}");
            insert_audit(conn, &audit, 1).map_err(map_err)?;
            get_program(conn, merchant_id, id)
        })
        .await
    }

    async fn update_coupon_program(
        &self,
        merchant_id: i64,
        program_id: i64,
        version: i64,
        fields: &CouponProgramFields,
        audit: &AuditEntry,
    ) -> StoreResult<CouponProgram> {
        let (values, audit) = (field_values(fields), audit.clone());
        self.write(move |conn| {
            let assignments = FIELD_COLUMNS
                .split(',')
                .map(|c| format!("{} = ?", c.trim()))
                .collect::<Vec<_>>()
                .join(", ");
            let mut values = values.clone();
            values.extend([Value::Integer(program_id), Value::Integer(merchant_id), Value::Integer(version)]);
            let n = conn
                .execute(
                    &format!(
                        "UPDATE coupon_programs SET {assignments}, version = version + 1 WHERE id = ? AND merchant_id = ? AND version = ?"
                    ),
                    params_from_iter(values),
                )
                .map_err(map_err)?;
            if n != 1 {
                return Err(StoreError::Conflict(Conflict::ProgramChanged));
            }
            // A widened validity reaches the coupons already held.
            let program = get_program(conn, merchant_id, program_id)?;
            widen_held_coupons(conn, &program)?;
            insert_audit(conn, &audit, 1).map_err(map_err)?;
            Ok(program)
        })
        .await
    }

    async fn set_coupon_program_state(
        &self,
        merchant_id: i64,
        program_id: i64,
        to: ProgramState,
        audit: &AuditEntry,
    ) -> StoreResult<u64> {
        let audit = audit.clone();
        self.write(move |conn| {
            let sources: Vec<Value> = ProgramState::sources_of(to)
                .iter()
                .map(|s| Value::Text(s.code().into()))
                .collect();
            if sources.is_empty() {
                return Ok(0);
            }
            let placeholders = vec!["?"; sources.len()].join(", ");
            let mut values = vec![
                Value::Text(to.code().into()),
                Value::Integer(program_id),
                Value::Integer(merchant_id),
            ];
            values.extend(sources);
            let n = conn
                .execute(
                    &format!(
                        "UPDATE coupon_programs SET state = ?, version = version + 1 WHERE id = ? AND merchant_id = ? AND state IN ({placeholders})"
                    ),
                    params_from_iter(values),
                )
                .map_err(map_err)?;
            if n == 1 {
                insert_audit(conn, &audit, 1).map_err(map_err)?;
            }
            Ok(n as u64)
        })
        .await
    }

    async fn change_coupon_stock(
        &self,
        merchant_id: i64,
        program_id: i64,
        delta: i64,
        audit: &AuditEntry,
    ) -> StoreResult<u64> {
        let audit = audit.clone();
        self.write(move |conn| {
            let n = conn
                .execute(
                    "UPDATE coupon_programs SET quantity = quantity + ?1 WHERE id = ?2 AND merchant_id = ?3 \
                     AND quantity + ?1 >= n_claimed AND quantity + ?1 <= ?4",
                    params![delta, program_id, merchant_id, kaquan_core::coupon::STOCK_MAX],
                )
                .map_err(map_err)?;
            if n == 1 {
                insert_audit(conn, &audit, 1).map_err(map_err)?;
            }
            Ok(n as u64)
        })
        .await
    }

    async fn get_coupon_program(
        &self,
        merchant_id: i64,
        program_id: i64,
    ) -> StoreResult<CouponProgram> {
        self.read(move |conn| get_program(conn, merchant_id, program_id))
            .await
    }

    async fn put_coupon_logo(&self, logo: &CouponLogo, audit: &AuditEntry) -> StoreResult<()> {
        let (m, id, now) = (logo.merchant_id, logo.program_id, logo.now);
        let (content_type, bytes, url) = (logo.content_type, logo.bytes.clone(), logo.url.clone());
        let (column, table) = picture_place(logo.picture);
        let audit = audit.clone();
        self.write(move |conn| {
            crate::sql::execute_one(
                conn,
                &format!("UPDATE coupon_programs SET {column} = ?1, version = version + 1 WHERE id = ?2 AND merchant_id = ?3"),
                params![url, id, m],
            )?;
            crate::sql::cached_execute(
                conn,
                &format!("INSERT INTO {table} (program_id, merchant_id, content_type, bytes, updated_at) VALUES (?1, ?2, ?3, ?4, ?5) \
                 ON CONFLICT (program_id) DO UPDATE SET content_type = excluded.content_type, bytes = excluded.bytes, \
                 updated_at = excluded.updated_at"),
                params![id, m, content_type, bytes, now],
            )
            .map_err(map_err)?;
            insert_audit(conn, &audit, 1).map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn get_coupon_logo(
        &self,
        program_id: i64,
        picture: CouponPicture,
    ) -> StoreResult<Option<(String, Vec<u8>)>> {
        let table = picture_place(picture).1;
        self.read(move |conn| {
            crate::sql::cached_row(
                conn,
                &format!("SELECT content_type, bytes FROM {table} WHERE program_id = ?1"),
                [program_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(map_err)
        })
        .await
    }

    async fn find_program_by_claim_token(&self, token: &str) -> StoreResult<Option<CouponProgram>> {
        let token = token.to_owned();
        self.read(move |conn| {
            crate::sql::cached_row(conn,
                &format!("SELECT {PROGRAM_COLUMNS}, {PROGRAM_COUNTS} FROM coupon_programs p WHERE p.claim_token = ?1"),
                [token],
                program_from_row,
            )
            .optional()
            .map_err(map_err)
        })
        .await
    }

    async fn list_coupon_programs(
        &self,
        merchant_id: i64,
        filter: &ProgramFilter,
        page: Page,
    ) -> StoreResult<(Vec<CouponProgram>, i64)> {
        let filter = filter.clone();
        self.read(move |conn| {
            let mut condition = "p.merchant_id = ?".to_owned();
            let mut values = vec![Value::Integer(merchant_id)];
            if let Some(state) = filter.state {
                condition.push_str(" AND p.state = ?");
                values.push(Value::Text(state.code().into()));
            }
            if let Some(kind) = filter.kind {
                condition.push_str(" AND p.kind = ?");
                values.push(Value::Text(kind.code().into()));
            }
            if let Some(title) = filter.title.filter(|t| !t.is_empty()) {
                condition.push_str(" AND instr(p.title, ?) > 0");
                values.push(Value::Text(title));
            }
            filtered_page(
                conn,
                (
                    "coupon_programs p",
                    &format!("{PROGRAM_COLUMNS}, {PROGRAM_COUNTS}"),
                    "p.id DESC",
                ),
                &condition,
                values,
                page,
                program_from_row,
            )
        })
        .await
    }

    async fn issue_coupons(
        &self,
        call: &ApiCall,
        issue: &IssueCoupons,
    ) -> StoreResult<Called<Vec<Coupon>, CouponRefusal>> {
        let (call, issue) = (call.clone(), issue.clone());
        self.write(move |conn| crate::coupon_issues::issue_job(conn, &call, &issue))
            .await
    }

    async fn find_coupon_for_reader(
        &self,
        merchant_id: i64,
        lookup: CouponLookup<'_>,
        attempt_key: &str,
        since: i64,
    ) -> StoreResult<(Option<HeldCoupon>, i64)> {
        let by: Option<(&str, Value)> = match lookup {
            CouponLookup::Digest(digest) => Some(("c.digest", Value::Blob(digest.to_vec()))),
            CouponLookup::Id(id) => Some(("c.id", Value::Integer(id))),
            CouponLookup::Nothing => None,
        };
        self.read_point(|conn| {
            let n_failures =
                crate::attempts::count_failures(conn, merchant_id, attempt_key, since)?;
            let held = match by {
                Some((column, value)) => held_where(
                    conn,
                    &format!("c.merchant_id = ?1 AND {column} = ?2"),
                    params![merchant_id, value],
                )?
                .pop(),
                None => None,
            };
            Ok((held, n_failures))
        })
    }

    async fn get_coupon(
        &self,
        merchant_id: i64,
        coupon_id: i64,
    ) -> StoreResult<Option<HeldCoupon>> {
        self.read(move |conn| {
            Ok(held_where(
                conn,
                "c.id = ?1 AND c.merchant_id = ?2",
                params![coupon_id, merchant_id],
            )?
            .pop())
        })
        .await
    }

    async fn list_customer_coupons(
        &self,
        merchant_id: i64,
        customer_id: i64,
        tab: Option<WalletTab>,
        now: i64,
        page: Page,
    ) -> StoreResult<(Vec<HeldCoupon>, i64)> {
        self.read(move |conn| {
            let (tab_condition, tab_values) = wallet_condition(tab, now);
            let mut values = vec![Value::Integer(customer_id), Value::Integer(merchant_id)];
            values.extend(tab_values);
            filtered_page(
                conn,
                (
                    HELD_FROM,
                    &format!("{COUPON_COLUMNS}, {PROGRAM_COLUMNS}, {NO_COUNTS}"),
                    "c.id DESC",
                ),
                &format!("c.customer_id = ? AND c.merchant_id = ?{tab_condition}"),
                values,
                page,
                held_from_row,
            )
        })
        .await
    }

    async fn verify_coupon(
        &self,
        call: &ApiCall,
        verify: &kaquan_core::coupon::usage::VerifyCoupon,
    ) -> StoreResult<Called<kaquan_core::coupon::usage::CouponVerification, CouponRefusal>> {
        let ask = crate::verify_set_wise::VerifyAsk::Coupon(verify.clone());
        crate::verify_set_wise::queue_verification(self, call, ask).await
    }

    async fn verify_coupon_code(
        &self,
        call: &ApiCall,
        ask: &kaquan_core::coupon::usecases::CodeVerification,
    ) -> StoreResult<Option<Called<kaquan_core::coupon::usage::CouponVerification, CouponRefusal>>>
    {
        let ask = crate::verify_set_wise::VerifyAsk::Code(ask.clone());
        Ok(Some(
            crate::verify_set_wise::queue_verification(self, call, ask).await?,
        ))
    }

    async fn undo_coupon_verification(
        &self,
        call: &ApiCall,
        undo: &kaquan_core::coupon::usage::UndoVerification,
    ) -> StoreResult<Called<kaquan_core::coupon::usage::CouponVerification, CouponRefusal>> {
        let (call, undo) = (call.clone(), undo.clone());
        self.write(move |conn| crate::coupon_verifications::undo_job(conn, &call, &undo))
            .await
    }

    async fn get_coupon_verification(
        &self,
        merchant_id: i64,
        verification_id: i64,
    ) -> StoreResult<Option<kaquan_core::coupon::usage::CouponVerification>> {
        self.read(move |conn| {
            crate::coupon_verifications::get_verification(conn, merchant_id, verification_id)
        })
        .await
    }

    async fn list_coupon_verifications(
        &self,
        merchant_id: i64,
        filter: &kaquan_core::coupon::usage::VerificationFilter,
        page: Page,
    ) -> StoreResult<(Vec<kaquan_core::coupon::usage::CouponVerification>, i64)> {
        let filter = filter.clone();
        self.read(move |conn| crate::coupon_verifications::list(conn, merchant_id, &filter, page))
            .await
    }

    async fn daily_verification_stats(
        &self,
        merchant_id: i64,
        filter: &kaquan_core::coupon::usage::VerificationFilter,
    ) -> StoreResult<Vec<kaquan_core::coupon::usage::DailyVerificationStats>> {
        let filter = filter.clone();
        self.read(move |conn| crate::coupon_verifications::daily_stats(conn, merchant_id, &filter))
            .await
    }

    async fn verifier_stats(
        &self,
        merchant_id: i64,
        filter: &kaquan_core::coupon::usage::VerificationFilter,
    ) -> StoreResult<Vec<kaquan_core::coupon::usage::VerifierStats>> {
        let filter = filter.clone();
        self.read(move |conn| {
            crate::coupon_verifications::verifier_stats(conn, merchant_id, &filter)
        })
        .await
    }

    async fn offer_coupon_gift(
        &self,
        merchant_id: i64,
        coupon_id: i64,
        customer_id: i64,
        token_hash: &str,
        now: i64,
    ) -> StoreResult<u64> {
        let token_hash = token_hash.to_owned();
        self.write(move |conn| {
            let n = conn
                .execute(
                    "UPDATE coupons SET gift_token_hash = ?1 WHERE id = ?2 AND merchant_id = ?3 AND customer_id = ?4 \
                     AND state = 'available' AND gift_token_hash IS NULL AND valid_until >= ?5 \
                     AND (SELECT can_give_friend FROM coupon_programs WHERE id = coupons.program_id)",
                    params![token_hash, coupon_id, merchant_id, customer_id, now],
                )
                .map_err(map_err)?;
            Ok(n as u64)
        })
        .await
    }

    async fn cancel_coupon_gift(
        &self,
        merchant_id: i64,
        coupon_id: i64,
        customer_id: i64,
    ) -> StoreResult<u64> {
        self.write(move |conn| {
            let n = conn
                .execute(
                    "UPDATE coupons SET gift_token_hash = NULL WHERE id = ?1 AND merchant_id = ?2 AND customer_id = ?3 \
                     AND state = 'available' AND gift_token_hash IS NOT NULL",
                    params![coupon_id, merchant_id, customer_id],
                )
                .map_err(map_err)?;
            Ok(n as u64)
        })
        .await
    }

    async fn find_coupon_gift(&self, token_hash: &str) -> StoreResult<Option<HeldCoupon>> {
        let token_hash = token_hash.to_owned();
        self.read(move |conn| Ok(held_where(conn, "c.gift_token_hash = ?1", [token_hash])?.pop()))
            .await
    }

    async fn accept_coupon_gift(
        &self,
        merchant_id: i64,
        token_hash: &str,
        friend_id: i64,
        now: i64,
    ) -> StoreResult<Result<Coupon, CouponRefusal>> {
        let token_hash = token_hash.to_owned();
        self.write(move |conn| {
            crate::coupon_verifications::accept_gift(conn, merchant_id, &token_hash, friend_id, now)
        })
        .await
    }

    async fn announce_expired_coupons(&self, now: i64, limit: i64) -> StoreResult<i64> {
        self.write(move |conn| crate::coupon_verifications::announce_expired(conn, now, limit))
            .await
    }

    async fn get_coupon_settings(
        &self,
        merchant_id: i64,
    ) -> StoreResult<kaquan_core::coupon::usage::CouponSettings> {
        self.read(move |conn| crate::coupon_verifications::get_settings(conn, merchant_id))
            .await
    }

    async fn save_coupon_settings(
        &self,
        merchant_id: i64,
        settings: &kaquan_core::coupon::usage::CouponSettings,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let (settings, audit) = (*settings, audit.clone());
        self.write(move |conn| {
            crate::sql::cached_execute(
            conn,
                "INSERT INTO coupon_settings (merchant_id, undo_window_minutes) VALUES (?1, ?2) \
                 ON CONFLICT (merchant_id) DO UPDATE SET undo_window_minutes = excluded.undo_window_minutes",
                params![merchant_id, settings.undo_window_minutes],
            )
            .map_err(map_err)?;
            insert_audit(conn, &audit, 1).map_err(map_err)?;
            Ok(())
        })
        .await
    }
}

/// Gives the held coupons of a program its (widened) validity: a fixed
/// range as it is, a relative one from each coupon's day of claim. A
/// coupon whose end moves is due to be announced expired again (at its
/// new end, when that comes).
fn widen_held_coupons(conn: &Connection, program: &CouponProgram) -> StoreResult<()> {
    let offset = i64::from(kaquan_core::clock::MERCHANT_UTC_OFFSET_SECONDS);
    match program.fields.validity {
        Validity::Fixed { begin, end } => crate::sql::cached_execute(
            conn,
            "UPDATE coupons SET valid_from = ?1, valid_until = ?2, \
             expiry_announced = CASE WHEN valid_until <> ?2 THEN 0 ELSE expiry_announced END \
             WHERE program_id = ?3 AND state = 'available'",
            params![begin, end, program.id],
        ),
        Validity::Relative {
            term_days,
            begin_after_days,
            hard_end,
        } => crate::sql::cached_execute(
            conn,
            "UPDATE coupons SET valid_from = day + ?1 * 86400, valid_until = min(day + (?1 + ?2) * 86400 - 1, ?3), \
             expiry_announced = CASE WHEN valid_until <> min(day + (?1 + ?2) * 86400 - 1, ?3) THEN 0 ELSE expiry_announced END \
             FROM (SELECT id AS coupon_id, ((claimed_at + ?4) / 86400) * 86400 - ?4 AS day FROM coupons WHERE program_id = ?5 AND state = 'available') \
             WHERE coupons.id = coupon_id AND program_id = ?5 AND state = 'available'",
            params![begin_after_days, term_days, hard_end.unwrap_or(i64::MAX), offset, program.id],
        ),
    }
    .map_err(map_err)?;
    Ok(())
}
