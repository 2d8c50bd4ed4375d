//! 优惠券: programs, the coupons customers hold and how they are given out.
//! Verifications, their reconciliation, gifts and settings are in
//! `coupon_verifications.rs`.
//!
//! Stock and limits hold under concurrency on any number of nodes because
//! each is one guarded statement on its row: the program's `coupon_stock`
//! row (`quantity - n_claimed >= n`; kept apart from the program's own row,
//! which every verification reads) and the holder's `coupon_holdings` row
//! (`n_claimed + k <= get_limit`); a waiting writer re-reads the row after
//! the first commits. A refused call rolls back to the savepoint taken after
//! its guard and gives its idempotency key back.

use crate::engine::Pipelined;
use crate::ledger::{claim_call, Recorded};
use crate::sql::{exec, filtered_page, insert_audit, map_err, one, opt, parse_or, Params};
use crate::PgStore;
use deadpool_postgres::GenericClient;
use kaquan_core::audit::AuditEntry;
use kaquan_core::coupon::usage::{
    refusal_of_guard, Coupon, CouponLogo, CouponLookup, CouponPicture, CouponRefusal, CouponSource,
    CouponState, HeldCoupon, IssueCoupons, ProgramFilter, WalletTab,
};
use kaquan_core::coupon::{
    decode_location_ids, encode_location_ids, Benefit, BenefitColumns, CodeType, CouponKind,
    CouponProgram, CouponProgramFields, ProgramState, SharedCoupon, TimeLimit, Validity,
};
use kaquan_core::ledger::{ApiCall, Called, Refusal};
use kaquan_core::store::Page;
use kaquan_core::{Conflict, StoreError, StoreResult};
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

/// A program's own columns, in `program_at`'s order.
pub(crate) const PROGRAM_COLUMNS: &str = "p.id, p.merchant_id, p.kind, p.percent_off, p.cap_fen, \
    p.least_cost_fen, p.reduce_cost_fen, p.goods_id, p.detail, p.price_fen, p.title, p.sub_title, \
    p.brand_name, p.logo_url, p.color, p.notice, p.description, p.service_phone, p.get_limit, \
    p.use_limit, p.validity_type, p.begin_at, p.end_at, p.term_days, p.begin_after_days, p.hard_end, \
    p.weekdays, p.day_begin_minute, p.day_end_minute, p.use_all_locations, p.location_ids, \
    p.code_type, p.rotating_code, p.can_give_friend, p.can_use_with_other_discount, p.state, \
    s.quantity, s.n_claimed, p.claim_token, p.version, p.created_by, p.created_at, \
    p.shared, p.cover_url, p.abstract_text, p.detail_text, p.give_program_id";
/// Where [`PROGRAM_COLUMNS`] are read: the program and its stock.
pub(crate) const PROGRAM_FROM: &str =
    "coupon_programs p JOIN coupon_stock s ON s.program_id = p.id";
const PROGRAM_COUNTS: &str =
    "(SELECT count(*) FROM coupons c WHERE c.program_id = p.id AND c.state = 'verified'), \
    (SELECT count(*) FROM coupons c WHERE c.program_id = p.id AND c.state = 'available' \
    AND c.valid_until < extract(epoch FROM now())::bigint)";
pub(crate) const NO_COUNTS: &str = "0::bigint, 0::bigint";

const FIELD_COLUMNS: [&str; 38] = [
    "kind",
    "percent_off",
    "cap_fen",
    "least_cost_fen",
    "reduce_cost_fen",
    "goods_id",
    "detail",
    "price_fen",
    "title",
    "sub_title",
    "brand_name",
    "logo_url",
    "color",
    "notice",
    "description",
    "service_phone",
    "get_limit",
    "use_limit",
    "validity_type",
    "begin_at",
    "end_at",
    "term_days",
    "begin_after_days",
    "hard_end",
    "weekdays",
    "day_begin_minute",
    "day_end_minute",
    "use_all_locations",
    "location_ids",
    "code_type",
    "rotating_code",
    "can_give_friend",
    "can_use_with_other_discount",
    "shared",
    "cover_url",
    "abstract_text",
    "detail_text",
    "give_program_id",
];

fn field_values(f: &CouponProgramFields) -> Params {
    let b = f.benefit.to_columns();
    let (validity_type, begin_at, end_at, term_days, begin_after_days, hard_end) =
        f.validity.to_columns();
    let shared = f.shared.clone().unwrap_or_default();
    let values: Vec<Box<dyn ToSql + Sync + Send>> = vec![
        Box::new(f.benefit.kind().code()),
        Box::new(b.percent_off),
        Box::new(b.cap_fen),
        Box::new(b.least_cost_fen),
        Box::new(b.reduce_cost_fen),
        Box::new(b.goods_id),
        Box::new(b.detail),
        Box::new(b.price_fen),
        Box::new(f.title.clone()),
        Box::new(f.sub_title.clone()),
        Box::new(f.brand_name.clone()),
        Box::new(f.logo_url.clone()),
        Box::new(f.color.clone()),
        Box::new(f.notice.clone()),
        Box::new(f.description.clone()),
        Box::new(f.service_phone.clone()),
        Box::new(f.get_limit),
        Box::new(f.use_limit),
        Box::new(validity_type),
        Box::new(begin_at),
        Box::new(end_at),
        Box::new(term_days),
        Box::new(begin_after_days),
        Box::new(hard_end),
        Box::new(i64::from(f.time_limit.weekdays)),
        Box::new(f.time_limit.day_minutes.map(|m| m.0)),
        Box::new(f.time_limit.day_minutes.map(|m| m.1)),
        Box::new(f.use_all_locations),
        Box::new(encode_location_ids(&f.location_ids)),
        Box::new(f.code_type.code()),
        Box::new(f.rotating_code),
        Box::new(f.can_give_friend),
        Box::new(f.can_use_with_other_discount),
        Box::new(f.shared.is_some()),
        Box::new(shared.cover_url),
        Box::new(shared.abstract_text),
        Box::new(shared.detail_text),
        Box::new(f.give_program_id),
    ];
    values
}

/// The program's column and the table of an uploaded picture.
fn picture_place(picture: CouponPicture) -> (&'static str, &'static str) {
    match picture {
        CouponPicture::Logo => ("logo_url", "coupon_logos"),
        CouponPicture::Cover => ("cover_url", "coupon_covers"),
    }
}

/// Reads a program from `row` starting at column `at`.
pub(crate) fn program_at(r: &Row, at: usize) -> StoreResult<CouponProgram> {
    let kind = parse_or(CouponKind::parse(r.get(at + 2)), "coupon kind")?;
    let benefit = Benefit::from_columns(
        kind,
        BenefitColumns {
            percent_off: r.get(at + 3),
            cap_fen: r.get(at + 4),
            least_cost_fen: r.get(at + 5),
            reduce_cost_fen: r.get(at + 6),
            goods_id: r.get(at + 7),
            detail: r.get(at + 8),
            price_fen: r.get(at + 9),
        },
    );
    let validity = Validity::from_columns(
        r.get(at + 20),
        (
            r.get(at + 21),
            r.get(at + 22),
            r.get(at + 23),
            r.get(at + 24),
            r.get(at + 25),
        ),
    );
    Ok(CouponProgram {
        id: r.get(at),
        merchant_id: r.get(at + 1),
        fields: CouponProgramFields {
            benefit: parse_or(benefit, "coupon benefit")?,
            title: r.get(at + 10),
            sub_title: r.get(at + 11),
            brand_name: r.get(at + 12),
            logo_url: r.get(at + 13),
            color: r.get(at + 14),
            notice: r.get(at + 15),
            description: r.get(at + 16),
            service_phone: r.get(at + 17),
            get_limit: r.get(at + 18),
            use_limit: r.get(at + 19),
            validity: parse_or(validity, "coupon validity")?,
            time_limit: TimeLimit::from_columns(r.get(at + 26), r.get(at + 27), r.get(at + 28)),
            use_all_locations: r.get(at + 29),
            location_ids: decode_location_ids(r.get(at + 30)),
            code_type: parse_or(CodeType::parse(r.get(at + 31)), "code type")?,
            rotating_code: r.get(at + 32),
            can_give_friend: r.get(at + 33),
            can_use_with_other_discount: r.get(at + 34),
            shared: r.get::<_, bool>(at + 42).then_some(SharedCoupon {
                cover_url: r.get(at + 43),
                abstract_text: r.get(at + 44),
                detail_text: r.get(at + 45),
            }),
            give_program_id: r.get(at + 46),
        },
        state: parse_or(ProgramState::parse(r.get(at + 35)), "program state")?,
        quantity: r.get(at + 36),
        n_claimed: r.get(at + 37),
        claim_token: r.get(at + 38),
        version: r.get(at + 39),
        created_by: r.get(at + 40),
        created_at: r.get(at + 41),
        n_verified: r.get(at + 47),
        n_expired: r.get(at + 48),
    })
}

pub(crate) async fn get_program(
    c: &impl GenericClient,
    merchant_id: i64,
    id: i64,
) -> StoreResult<CouponProgram> {
    let row = opt(
        c,
        &format!("SELECT {PROGRAM_COLUMNS}, {PROGRAM_COUNTS} FROM {PROGRAM_FROM} WHERE p.id = $1 AND p.merchant_id = $2"),
        &[&id, &merchant_id],
    )
    .await?
    .ok_or(StoreError::NotFound)?;
    program_at(&row, 0)
}

pub(crate) const COUPON_COLUMNS: &str = "c.id, c.merchant_id, c.program_id, c.customer_id, c.state, \
    c.valid_from, c.valid_until, c.sealed, c.key_version, c.source, i.order_id, c.claimed_at, c.verified_at, \
    c.gift_token_hash IS NOT NULL";
const N_COUPON_COLUMNS: usize = 14;
pub(crate) const HELD_FROM: &str = "coupons c JOIN coupon_issues i ON i.id = c.issue_id \
    JOIN coupon_programs p ON p.id = c.program_id JOIN coupon_stock s ON s.program_id = p.id";

fn coupon_from_row(r: &Row) -> StoreResult<Coupon> {
    Ok(Coupon {
        id: r.get(0),
        merchant_id: r.get(1),
        program_id: r.get(2),
        customer_id: r.get(3),
        state: parse_or(CouponState::parse(r.get(4)), "coupon state")?,
        valid_from: r.get(5),
        valid_until: r.get(6),
        sealed: r.get(7),
        key_version: r.get(8),
        source: parse_or(CouponSource::parse(r.get(9)), "coupon source")?,
        order_id: r.get(10),
        claimed_at: r.get(11),
        verified_at: r.get(12),
        gifting: r.get(13),
    })
}

fn held_from_row(r: &Row) -> StoreResult<HeldCoupon> {
    Ok(HeldCoupon {
        coupon: coupon_from_row(r)?,
        program: program_at(r, N_COUPON_COLUMNS)?,
    })
}

/// The held coupons matching `condition`, without the programs' counts.
pub(crate) async fn held_where(
    c: &impl GenericClient,
    condition: &str,
    params: &[crate::sql::P<'_>],
) -> StoreResult<Vec<HeldCoupon>> {
    crate::sql::all(
        c,
        &format!("SELECT {COUPON_COLUMNS}, {PROGRAM_COLUMNS}, {NO_COUNTS} FROM {HELD_FROM} WHERE {condition}"),
        params,
    )
    .await?
    .iter()
    .map(held_from_row)
    .collect()
}

async fn coupons_of_issue(c: &impl GenericClient, issue_id: i64) -> StoreResult<Vec<Coupon>> {
    Ok(held_where(c, "c.issue_id = $1 ORDER BY c.id", &[&issue_id])
        .await?
        .into_iter()
        .map(|h| h.coupon)
        .collect())
}

/// What a coupon call's guard answered: a refusal, the recorded call, or
/// `None` to go on.
pub(crate) fn guard_answer(
    claimed: Option<Result<Recorded, Refusal>>,
) -> Option<Result<Recorded, CouponRefusal>> {
    claimed.map(|c| c.map_err(refusal_of_guard))
}

/// Whether a coupon call's transaction rolls back: only one refused for a
/// reused nonce, so the idempotency key it claimed alongside stays free.
pub(crate) fn rolls_back<T>(result: &Result<T, CouponRefusal>) -> bool {
    matches!(result, Err(CouponRefusal::NonceReused))
}

/// Rolls a refused call back to its savepoint and gives its key back.
pub(crate) async fn give_back(
    c: &impl GenericClient,
    merchant_id: i64,
    call: &ApiCall,
) -> StoreResult<()> {
    c.batch_execute("ROLLBACK TO SAVEPOINT work")
        .await
        .map_err(map_err)?;
    if let Some(claim) = &call.idempotency {
        exec(
            c,
            "DELETE FROM idempotency_keys WHERE merchant_id = $1 AND key = $2",
            &[&merchant_id, &claim.key.as_str()],
        )
        .await?;
    }
    Ok(())
}

/// Keeps the call's outcome under its idempotency key in `column` (the
/// key's row was claimed by `claim_call`: one update).
pub(crate) async fn record_coupon_call(
    c: &impl GenericClient,
    merchant_id: i64,
    call: &ApiCall,
    column: &str,
    id: i64,
) -> StoreResult<()> {
    if let Some(claim) = &call.idempotency {
        exec(
            c,
            &format!(
                "UPDATE idempotency_keys SET {column} = $1 WHERE merchant_id = $2 AND key = $3"
            ),
            &[&id, &merchant_id, &claim.key.as_str()],
        )
        .await?;
    }
    Ok(())
}

/// Gives the held coupons of a program its (widened) validity.
async fn widen_held_coupons(c: &impl GenericClient, program: &CouponProgram) -> StoreResult<()> {
    let offset = i64::from(kaquan_core::clock::MERCHANT_UTC_OFFSET_SECONDS);
    match program.fields.validity {
        Validity::Fixed { begin, end } => exec(
            c,
            "UPDATE coupons SET valid_from = $1, valid_until = $2, \
             expiry_announced = expiry_announced AND valid_until = $2 \
             WHERE program_id = $3 AND state = 'available'",
            &[&begin, &end, &program.id],
        )
        .await?,
        Validity::Relative {
            term_days,
            begin_after_days,
            hard_end,
        } => exec(
            c,
            "UPDATE coupons SET valid_from = d.day + $1::bigint * 86400, valid_until = LEAST(d.day + ($1::bigint + $2::bigint) * 86400 - 1, $3::bigint), \
             expiry_announced = coupons.expiry_announced AND coupons.valid_until = LEAST(d.day + ($1::bigint + $2::bigint) * 86400 - 1, $3::bigint) \
             FROM (SELECT id, ((claimed_at + $4::bigint) / 86400) * 86400 - $4::bigint AS day FROM coupons WHERE program_id = $5) d \
             WHERE coupons.id = d.id AND coupons.state = 'available'",
            &[&begin_after_days, &term_days, &hard_end.unwrap_or(i64::MAX), &offset, &program.id],
        )
        .await?,
    };
    Ok(())
}

fn wallet_condition(tab: Option<WalletTab>) -> &'static str {
    match tab {
        None => "",
        Some(WalletTab::Usable) => " AND c.state = 'available' AND c.valid_until >= $3",
        Some(WalletTab::Used) => " AND c.state = 'verified' AND $3::bigint IS NOT NULL",
        Some(WalletTab::Expired) => " AND c.state = 'available' AND c.valid_until < $3",
    }
}

#[async_trait::async_trait]
impl kaquan_core::coupon::usage::CouponStore for PgStore {
    async fn create_coupon_program(
        &self,
        merchant_id: i64,
        fields: &CouponProgramFields,
        quantity: i64,
        claim_token: &str,
        audit: &AuditEntry,
    ) -> StoreResult<CouponProgram> {
        let mut values = field_values(fields);
        values.push(Box::new(merchant_id));
        values.push(Box::new(claim_token.to_owned()));
        values.push(Box::new(audit.actor.label.clone()));
        values.push(Box::new(audit.created_at));
        let placeholders: Vec<String> = (1..=values.len()).map(|i| format!("${i}")).collect();
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let id: i64 = one(
            &tx,
            &format!(
                "INSERT INTO coupon_programs ({}, merchant_id, claim_token, created_by, created_at, state) \
                 VALUES ({}, 'draft') RETURNING id",
                FIELD_COLUMNS.join(", "),
                placeholders.join(", ")
            ),
            &crate::sql::refs(&values),
        )
        .await?
        .get(0);
        exec(
            &tx,
            "INSERT INTO coupon_stock (program_id, quantity, merchant_id) VALUES ($1, $2, $3)",
            &[&id, &quantity, &merchant_id],
        )
        .await?;
        let mut audit = audit.clone();
        audit.target = format!("coupon_program={id}");
        insert_audit(&tx, &audit, 1).await?;
        let program = get_program(&tx, merchant_id, id).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(program)
    }

    async fn update_coupon_program(
        &self,
        merchant_id: i64,
        program_id: i64,
        version: i64,
        fields: &CouponProgramFields,
        audit: &AuditEntry,
    ) -> StoreResult<CouponProgram> {
        let mut values = field_values(fields);
        let assignments: Vec<String> = FIELD_COLUMNS
            .iter()
            .enumerate()
            .map(|(i, column)| format!("{column} = ${}", i + 1))
            .collect();
        let n = values.len();
        values.push(Box::new(program_id));
        values.push(Box::new(merchant_id));
        values.push(Box::new(version));
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let changed = exec(
            &tx,
            &format!(
                "UPDATE coupon_programs SET {}, version = version + 1 WHERE id = ${} AND merchant_id = ${} AND version = ${}",
                assignments.join(", "),
                n + 1,
                n + 2,
                n + 3
            ),
            &crate::sql::refs(&values),
        )
        .await?;
        if changed != 1 {
            return Err(StoreError::Conflict(Conflict::ProgramChanged));
        }
        let program = get_program(&tx, merchant_id, program_id).await?;
        widen_held_coupons(&tx, &program).await?;
        insert_audit(&tx, audit, 1).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(program)
    }

    async fn set_coupon_program_state(
        &self,
        merchant_id: i64,
        program_id: i64,
        to: ProgramState,
        audit: &AuditEntry,
    ) -> StoreResult<u64> {
        let sources: Vec<&str> = ProgramState::sources_of(to)
            .iter()
            .map(|s| s.code())
            .collect();
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let n = exec(
            &tx,
            "UPDATE coupon_programs SET state = $1, version = version + 1 WHERE id = $2 AND merchant_id = $3 AND state = ANY($4)",
            &[&to.code(), &program_id, &merchant_id, &sources],
        )
        .await?;
        if n == 1 {
            insert_audit(&tx, audit, 1).await?;
        }
        tx.commit().await.map_err(map_err)?;
        Ok(n)
    }

    async fn change_coupon_stock(
        &self,
        merchant_id: i64,
        program_id: i64,
        delta: i64,
        audit: &AuditEntry,
    ) -> StoreResult<u64> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let n = exec(
            &tx,
            "UPDATE coupon_stock s SET quantity = s.quantity + $1 FROM coupon_programs p \
             WHERE s.program_id = $2 AND p.id = s.program_id AND p.merchant_id = $3 \
             AND s.quantity + $1 >= s.n_claimed AND s.quantity + $1 <= $4",
            &[
                &delta,
                &program_id,
                &merchant_id,
                &kaquan_core::coupon::STOCK_MAX,
            ],
        )
        .await?;
        if n == 1 {
            insert_audit(&tx, audit, 1).await?;
        }
        tx.commit().await.map_err(map_err)?;
        Ok(n)
    }

    async fn get_coupon_program(
        &self,
        merchant_id: i64,
        program_id: i64,
    ) -> StoreResult<CouponProgram> {
        get_program(&self.client().await?, merchant_id, program_id).await
    }

    async fn put_coupon_logo(&self, logo: &CouponLogo, audit: &AuditEntry) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let (column, table) = picture_place(logo.picture);
        let n = exec(
            &tx,
            &format!("UPDATE coupon_programs SET {column} = $1, version = version + 1 WHERE id = $2 AND merchant_id = $3"),
            &[&logo.url, &logo.program_id, &logo.merchant_id],
        )
        .await?;
        if n != 1 {
            return Err(StoreError::NotFound);
        }
        exec(
            &tx,
            &format!("INSERT INTO {table} (program_id, merchant_id, content_type, bytes, updated_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (program_id, merchant_id) DO UPDATE SET content_type = excluded.content_type, bytes = excluded.bytes, \
             updated_at = excluded.updated_at"),
            &[&logo.program_id, &logo.merchant_id, &logo.content_type, &logo.bytes, &logo.now],
        )
        .await?;
        insert_audit(&tx, audit, 1).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn get_coupon_logo(
        &self,
        program_id: i64,
        picture: CouponPicture,
    ) -> StoreResult<Option<(String, Vec<u8>)>> {
        let table = picture_place(picture).1;
        Ok(opt(
            &self.client().await?,
            &format!("SELECT content_type, bytes FROM {table} WHERE program_id = $1"),
            &[&program_id],
        )
        .await?
        .map(|row| (row.get(0), row.get(1))))
    }

    async fn find_program_by_claim_token(&self, token: &str) -> StoreResult<Option<CouponProgram>> {
        opt(
            &self.client().await?,
            &format!("SELECT {PROGRAM_COLUMNS}, {PROGRAM_COUNTS} FROM {PROGRAM_FROM} WHERE p.claim_token = $1"),
            &[&token],
        )
        .await?
        .map(|row| program_at(&row, 0))
        .transpose()
    }

    async fn list_coupon_programs(
        &self,
        merchant_id: i64,
        filter: &ProgramFilter,
        page: Page,
    ) -> StoreResult<(Vec<CouponProgram>, i64)> {
        let mut condition = "p.merchant_id = $1".to_owned();
        let mut params: Params = vec![Box::new(merchant_id)];
        if let Some(state) = filter.state {
            params.push(Box::new(state.code()));
            condition.push_str(&format!(" AND p.state = ${}", params.len()));
        }
        if let Some(kind) = filter.kind {
            params.push(Box::new(kind.code()));
            condition.push_str(&format!(" AND p.kind = ${}", params.len()));
        }
        if let Some(title) = filter.title.clone().filter(|t| !t.is_empty()) {
            params.push(Box::new(title));
            condition.push_str(&format!(" AND strpos(p.title, ${}) > 0", params.len()));
        }
        let (rows, total) = filtered_page(
            &self.client().await?,
            (
                PROGRAM_FROM,
                &format!("{PROGRAM_COLUMNS}, {PROGRAM_COUNTS}"),
                "p.id DESC",
            ),
            &condition,
            params,
            page,
        )
        .await?;
        Ok((
            rows.iter()
                .map(|r| program_at(r, 0))
                .collect::<StoreResult<_>>()?,
            total,
        ))
    }

    async fn issue_coupons(
        &self,
        call: &ApiCall,
        issue: &IssueCoupons,
    ) -> StoreResult<Called<Vec<Coupon>, CouponRefusal>> {
        let m = issue.merchant_id;
        let tx = Pipelined::new(self.client().await?);
        let c = tx.client();
        let ((), claimed) = futures_util::try_join!(tx.begin(), claim_call(c, m, call, issue.now))?;
        let called = match guard_answer(claimed) {
            Some(Err(refusal)) => Called {
                result: Err(refusal),
                replayed: false,
            },
            Some(Ok(recorded)) => {
                let id = recorded.coupon_issue_id.ok_or_else(|| {
                    StoreError::Backend("an idempotency key of another call".into())
                })?;
                Called {
                    result: Ok(coupons_of_issue(c, id).await?),
                    replayed: true,
                }
            }
            None => {
                c.batch_execute("SAVEPOINT work").await.map_err(map_err)?;
                match crate::coupon_issues::issue_in(c, issue).await? {
                    Ok((id, replayed)) => {
                        record_coupon_call(c, m, call, "coupon_issue_id", id).await?;
                        Called {
                            result: Ok(coupons_of_issue(c, id).await?),
                            replayed,
                        }
                    }
                    Err(refusal) => {
                        give_back(c, m, call).await?;
                        Called {
                            result: Err(refusal),
                            replayed: false,
                        }
                    }
                }
            }
        };
        tx.end(rolls_back(&called.result)).await?;
        Ok(called)
    }

    async fn find_coupon_for_reader(
        &self,
        merchant_id: i64,
        lookup: CouponLookup<'_>,
        attempt_key: &str,
        since: i64,
    ) -> StoreResult<(Option<HeldCoupon>, i64)> {
        let c = self.client().await?;
        // Both statements go out together on one connection: one round trip.
        let held = async {
            Ok(match lookup {
                CouponLookup::Digest(digest) => {
                    held_where(
                        &c,
                        "c.merchant_id = $1 AND c.digest = $2",
                        &[&merchant_id, &digest],
                    )
                    .await?
                }
                CouponLookup::Id(id) => {
                    held_where(&c, "c.merchant_id = $1 AND c.id = $2", &[&merchant_id, &id]).await?
                }
                CouponLookup::Nothing => Vec::new(),
            })
        };
        let (mut held, n_failures) = futures_util::try_join!(
            held,
            crate::attempts::count_failures(&c, merchant_id, attempt_key, since)
        )?;
        Ok((held.pop(), n_failures))
    }

    async fn get_coupon(
        &self,
        merchant_id: i64,
        coupon_id: i64,
    ) -> StoreResult<Option<HeldCoupon>> {
        Ok(held_where(
            &self.client().await?,
            "c.id = $1 AND c.merchant_id = $2",
            &[&coupon_id, &merchant_id],
        )
        .await?
        .pop())
    }

    async fn list_customer_coupons(
        &self,
        merchant_id: i64,
        customer_id: i64,
        tab: Option<WalletTab>,
        now: i64,
        page: Page,
    ) -> StoreResult<(Vec<HeldCoupon>, i64)> {
        let mut params: Params = vec![Box::new(customer_id), Box::new(merchant_id)];
        if tab.is_some() {
            params.push(Box::new(now));
        }
        let (rows, total) = filtered_page(
            &self.client().await?,
            (
                HELD_FROM,
                &format!("{COUPON_COLUMNS}, {PROGRAM_COLUMNS}, {NO_COUNTS}"),
                "c.id DESC",
            ),
            &format!(
                "c.customer_id = $1 AND c.merchant_id = $2{}",
                wallet_condition(tab)
            ),
            params,
            page,
        )
        .await?;
        Ok((
            rows.iter().map(held_from_row).collect::<StoreResult<_>>()?,
            total,
        ))
    }

    async fn verify_coupon(
        &self,
        call: &ApiCall,
        verify: &kaquan_core::coupon::usage::VerifyCoupon,
    ) -> StoreResult<Called<kaquan_core::coupon::usage::CouponVerification, CouponRefusal>> {
        crate::coupon_verifications::verify(self, call, verify).await
    }

    async fn undo_coupon_verification(
        &self,
        call: &ApiCall,
        undo: &kaquan_core::coupon::usage::UndoVerification,
    ) -> StoreResult<Called<kaquan_core::coupon::usage::CouponVerification, CouponRefusal>> {
        crate::coupon_verifications::undo(self, call, undo).await
    }

    async fn get_coupon_verification(
        &self,
        merchant_id: i64,
        verification_id: i64,
    ) -> StoreResult<Option<kaquan_core::coupon::usage::CouponVerification>> {
        crate::coupon_verifications::get_verification(
            &self.client().await?,
            merchant_id,
            verification_id,
        )
        .await
    }

    async fn list_coupon_verifications(
        &self,
        merchant_id: i64,
        filter: &kaquan_core::coupon::usage::VerificationFilter,
        page: Page,
    ) -> StoreResult<(Vec<kaquan_core::coupon::usage::CouponVerification>, i64)> {
        crate::coupon_verifications::list(&self.client().await?, merchant_id, filter, page).await
    }

    async fn daily_verification_stats(
        &self,
        merchant_id: i64,
        filter: &kaquan_core::coupon::usage::VerificationFilter,
    ) -> StoreResult<Vec<kaquan_core::coupon::usage::DailyVerificationStats>> {
        crate::coupon_verifications::daily_stats(&self.client().await?, merchant_id, filter).await
    }

    async fn verifier_stats(
        &self,
        merchant_id: i64,
        filter: &kaquan_core::coupon::usage::VerificationFilter,
    ) -> StoreResult<Vec<kaquan_core::coupon::usage::VerifierStats>> {
        crate::coupon_verifications::verifier_stats(&self.client().await?, merchant_id, filter)
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
        exec(
            &self.client().await?,
            "UPDATE coupons SET gift_token_hash = $1 WHERE id = $2 AND merchant_id = $3 AND customer_id = $4 \
             AND state = 'available' AND gift_token_hash IS NULL AND valid_until >= $5 \
             AND (SELECT can_give_friend FROM coupon_programs WHERE id = coupons.program_id)",
            &[&token_hash, &coupon_id, &merchant_id, &customer_id, &now],
        )
        .await
    }

    async fn cancel_coupon_gift(
        &self,
        merchant_id: i64,
        coupon_id: i64,
        customer_id: i64,
    ) -> StoreResult<u64> {
        exec(
            &self.client().await?,
            "UPDATE coupons SET gift_token_hash = NULL WHERE id = $1 AND merchant_id = $2 AND customer_id = $3 \
             AND state = 'available' AND gift_token_hash IS NOT NULL",
            &[&coupon_id, &merchant_id, &customer_id],
        )
        .await
    }

    async fn find_coupon_gift(&self, token_hash: &str) -> StoreResult<Option<HeldCoupon>> {
        Ok(held_where(
            &self.client().await?,
            "c.gift_token_hash = $1",
            &[&token_hash],
        )
        .await?
        .pop())
    }

    async fn accept_coupon_gift(
        &self,
        merchant_id: i64,
        token_hash: &str,
        friend_id: i64,
        now: i64,
    ) -> StoreResult<Result<Coupon, CouponRefusal>> {
        crate::coupon_verifications::accept_gift(self, merchant_id, token_hash, friend_id, now)
            .await
    }

    async fn announce_expired_coupons(&self, now: i64, limit: i64) -> StoreResult<i64> {
        crate::coupon_verifications::announce_expired(self, now, limit).await
    }

    async fn get_coupon_settings(
        &self,
        merchant_id: i64,
    ) -> StoreResult<kaquan_core::coupon::usage::CouponSettings> {
        Ok(opt(
            &self.client().await?,
            "SELECT undo_window_minutes FROM coupon_settings WHERE merchant_id = $1",
            &[&merchant_id],
        )
        .await?
        .map(|r| kaquan_core::coupon::usage::CouponSettings {
            undo_window_minutes: r.get(0),
        })
        .unwrap_or_default())
    }

    async fn save_coupon_settings(
        &self,
        merchant_id: i64,
        settings: &kaquan_core::coupon::usage::CouponSettings,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        exec(
            &tx,
            "INSERT INTO coupon_settings (merchant_id, undo_window_minutes) VALUES ($1, $2) \
             ON CONFLICT (merchant_id) DO UPDATE SET undo_window_minutes = excluded.undo_window_minutes",
            &[&merchant_id, &settings.undo_window_minutes],
        )
        .await?;
        insert_audit(&tx, audit, 1).await?;
        tx.commit().await.map_err(map_err)
    }
}
