//! 会员卡 programs on PostgreSQL, and the member reads: programs are
//! written with their audit record; members are read with their points
//! and balance from the ledger.

use crate::ledger::{transaction_from_row, TRANSACTION_COLUMNS};
use crate::members::{find_member, member_from_row, MEMBER_COLUMNS, MEMBER_FROM};
use crate::sql::{
    all, exec, expect_one, filtered_page, insert_audit, map_err, opt, parse_or, Params,
};
use crate::PgStore;
use deadpool_postgres::GenericClient;
use kaquan_core::audit::{Actor, AuditEntry};
use kaquan_core::ledger::LedgerTransaction;
use kaquan_core::member::{
    lines, CardPicture, CardPictureUpload, Member, MemberFilter, MemberProgram, PointsExpiry,
    PointsRule, ProgramFields, ProgramState, TierBasis,
};
use kaquan_core::store::Page;
use kaquan_core::{StoreError, StoreResult};
use tokio_postgres::Row;

const PROGRAM_COLUMNS: &str = "id, merchant_id, state, title, brand_name, color, prerogative, discount_percent_off, \
    points_enabled, cost_money_unit, increase_bonus, max_increase_bonus, init_increase_bonus, cost_bonus_unit, \
    reduce_money, least_money_to_use_bonus, max_reduce_bonus, stored_value_enabled, tier_basis, tiers, custom_fields, \
    custom_links, activation_fields, auto_activate, number_prefix, number_length, expiry, expiry_months, notify, \
    notify_coupon_program_id, created_by, created_at, updated_at, \
    (SELECT count(*) FROM members m WHERE m.program_id = member_programs.id), background_pic_url, logo_url, downgrade_on_refund";

pub(crate) fn program_from_row(r: &Row) -> StoreResult<MemberProgram> {
    let points = PointsRule {
        cost_money_unit: r.get(9),
        increase_bonus: r.get(10),
        max_increase_bonus: r.get(11),
        init_increase_bonus: r.get(12),
        cost_bonus_unit: r.get(13),
        reduce_money: r.get(14),
        least_money_to_use_bonus: r.get(15),
        max_reduce_bonus: r.get(16),
    };
    let fields = ProgramFields {
        title: r.get(3),
        brand_name: r.get(4),
        color: r.get(5),
        background_pic_url: r.get(34),
        logo_url: r.get(35),
        prerogative: r.get(6),
        discount_percent_off: r.get(7),
        points: r.get::<_, bool>(8).then_some(points),
        stored_value: r.get(17),
        tier_basis: parse_or(TierBasis::parse(r.get(18)), "tier basis")?,
        downgrade_on_refund: r.get(36),
        tiers: parse_or(lines::parse_tiers(r.get(19)), "tiers")?,
        custom_fields: parse_or(lines::parse_fields(r.get(20)), "custom fields")?,
        custom_links: parse_or(lines::parse_links(r.get(21)), "custom links")?,
        activation_fields: parse_or(lines::parse_activation(r.get(22)), "form")?,
        auto_activate: r.get(23),
        number_prefix: r.get(24),
        number_length: r.get(25),
        expiry: parse_or(PointsExpiry::parse(r.get(26), r.get(27)), "expiry")?,
        notify: r.get(28),
        notify_coupon_program_id: r.get(29),
    };
    Ok(MemberProgram {
        id: r.get(0),
        merchant_id: r.get(1),
        state: parse_or(ProgramState::parse(r.get(2)), "program state")?,
        fields,
        created_by: r.get(30),
        created_at: r.get(31),
        updated_at: r.get(32),
        n_members: r.get(33),
    })
}

/// The program's columns after `merchant_id, state` as parameters $3–$32.
fn program_values(f: &ProgramFields) -> Params {
    let rule = f.points.unwrap_or_default();
    vec![
        Box::new(f.title.clone()),
        Box::new(f.brand_name.clone()),
        Box::new(f.color.clone()),
        Box::new(f.prerogative.clone()),
        Box::new(f.discount_percent_off),
        Box::new(f.points.is_some()),
        Box::new(rule.cost_money_unit),
        Box::new(rule.increase_bonus),
        Box::new(rule.max_increase_bonus),
        Box::new(rule.init_increase_bonus),
        Box::new(rule.cost_bonus_unit),
        Box::new(rule.reduce_money),
        Box::new(rule.least_money_to_use_bonus),
        Box::new(rule.max_reduce_bonus),
        Box::new(f.stored_value),
        Box::new(f.tier_basis.code()),
        Box::new(lines::tiers(&f.tiers)),
        Box::new(lines::fields(&f.custom_fields)),
        Box::new(lines::links(&f.custom_links)),
        Box::new(lines::activation(&f.activation_fields)),
        Box::new(f.auto_activate),
        Box::new(f.number_prefix.clone()),
        Box::new(f.number_length),
        Box::new(f.expiry.code()),
        Box::new(f.expiry.months()),
        Box::new(f.notify),
        Box::new(f.notify_coupon_program_id),
        Box::new(f.background_pic_url.clone()),
        Box::new(f.logo_url.clone()),
        Box::new(f.downgrade_on_refund),
    ]
}

const PROGRAM_SET: &str = "title = $3, brand_name = $4, color = $5, prerogative = $6, discount_percent_off = $7, \
    points_enabled = $8, cost_money_unit = $9, increase_bonus = $10, max_increase_bonus = $11, \
    init_increase_bonus = $12, cost_bonus_unit = $13, reduce_money = $14, least_money_to_use_bonus = $15, \
    max_reduce_bonus = $16, stored_value_enabled = $17, tier_basis = $18, tiers = $19, custom_fields = $20, \
    custom_links = $21, activation_fields = $22, auto_activate = $23, number_prefix = $24, number_length = $25, \
    expiry = $26, expiry_months = $27, notify = $28, notify_coupon_program_id = $29, \
    background_pic_url = $30, logo_url = $31, downgrade_on_refund = $32";

/// A program with its member count (the console's).
pub(crate) async fn get_program(
    c: &impl GenericClient,
    merchant_id: i64,
    program_id: i64,
) -> StoreResult<Option<MemberProgram>> {
    read_program(c, merchant_id, program_id, PROGRAM_COLUMNS).await
}

/// A program without its member count (0): what every call on a member
/// reads, which must not count the program's members each time.
pub(crate) async fn program_rules(
    c: &impl GenericClient,
    merchant_id: i64,
    program_id: i64,
) -> StoreResult<Option<MemberProgram>> {
    read_program(c, merchant_id, program_id, &PROGRAM_RULE_COLUMNS).await
}

pub(crate) static PROGRAM_RULE_COLUMNS: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| {
        PROGRAM_COLUMNS.replace(
            "(SELECT count(*) FROM members m WHERE m.program_id = member_programs.id)",
            "0::bigint",
        )
    });

async fn read_program(
    c: &impl GenericClient,
    merchant_id: i64,
    program_id: i64,
    columns: &str,
) -> StoreResult<Option<MemberProgram>> {
    let sql = format!("SELECT {columns} FROM member_programs WHERE id = $1 AND merchant_id = $2");
    opt(c, &sql, &[&program_id, &merchant_id])
        .await?
        .map(|r| program_from_row(&r))
        .transpose()
}

async fn audit_program(
    c: &impl GenericClient,
    merchant_id: i64,
    program_id: i64,
    action: &str,
    detail: &str,
    actor: &Actor,
    now: i64,
) -> StoreResult<()> {
    let entry = AuditEntry {
        merchant_id,
        actor: actor.clone(),
        action: action.into(),
        target: format!("member_program={program_id}"),
        detail: detail.into(),
        n_affected: 1,
        created_at: now,
    };
    insert_audit(c, &entry, 1).await?;
    Ok(())
}

impl PgStore {
    /// One statement on a program (`sql` with `params`, returning the
    /// program's id), its audit record (`action`, `detail`), and the
    /// program as saved, in one transaction.
    async fn write_program(
        &self,
        merchant_id: i64,
        sql: &str,
        params: Params,
        (action, detail): (&str, &str),
        actor: &Actor,
        now: i64,
    ) -> StoreResult<MemberProgram> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let id: i64 = opt(&tx, sql, &crate::sql::refs(&params))
            .await?
            .ok_or(StoreError::NotFound)?
            .get(0);
        audit_program(&tx, merchant_id, id, action, detail, actor, now).await?;
        let program = get_program(&tx, merchant_id, id)
            .await?
            .ok_or(StoreError::NotFound)?;
        tx.commit().await.map_err(map_err)?;
        Ok(program)
    }
}

#[async_trait::async_trait]
impl kaquan_core::member::MemberStore for PgStore {
    async fn create_member_program(
        &self,
        merchant_id: i64,
        fields: &ProgramFields,
        actor: &Actor,
        now: i64,
    ) -> StoreResult<MemberProgram> {
        let mut params: Params = vec![Box::new(merchant_id), Box::new("active")];
        params.extend(program_values(fields));
        params.extend([Box::new(actor.label.clone()) as _, Box::new(now) as _]);
        let sql = "INSERT INTO member_programs (merchant_id, state, title, brand_name, color, prerogative, \
             discount_percent_off, points_enabled, cost_money_unit, increase_bonus, max_increase_bonus, \
             init_increase_bonus, cost_bonus_unit, reduce_money, least_money_to_use_bonus, max_reduce_bonus, \
             stored_value_enabled, tier_basis, tiers, custom_fields, custom_links, activation_fields, \
             auto_activate, number_prefix, number_length, expiry, expiry_months, notify, \
             notify_coupon_program_id, background_pic_url, logo_url, downgrade_on_refund, created_by, created_at, \
             updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, \
             $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32, $33, $34, $34) RETURNING id";
        let audit = ("create_member_program", fields.title.as_str());
        self.write_program(merchant_id, sql, params, audit, actor, now)
            .await
    }

    async fn update_member_program(
        &self,
        merchant_id: i64,
        program_id: i64,
        fields: &ProgramFields,
        actor: &Actor,
        now: i64,
    ) -> StoreResult<MemberProgram> {
        let mut params: Params = vec![Box::new(program_id), Box::new(merchant_id)];
        params.extend(program_values(fields));
        params.push(Box::new(now));
        let sql = format!(
            "UPDATE member_programs SET {PROGRAM_SET}, updated_at = $33 WHERE id = $1 AND merchant_id = $2 RETURNING id"
        );
        let audit = ("update_member_program", fields.title.as_str());
        self.write_program(merchant_id, &sql, params, audit, actor, now)
            .await
    }

    async fn set_member_program_state(
        &self,
        merchant_id: i64,
        program_id: i64,
        state: ProgramState,
        actor: &Actor,
        now: i64,
    ) -> StoreResult<MemberProgram> {
        let params: Params = vec![
            Box::new(state.code()),
            Box::new(now),
            Box::new(program_id),
            Box::new(merchant_id),
        ];
        let sql = "UPDATE member_programs SET state = $1, updated_at = $2 WHERE id = $3 AND merchant_id = $4 \
                   RETURNING id";
        let audit = ("set_member_program_state", state.code());
        self.write_program(merchant_id, sql, params, audit, actor, now)
            .await
    }

    async fn put_card_picture(
        &self,
        upload: &CardPictureUpload,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        // The column is named by the picture's kind, from a closed set.
        let column = match upload.picture {
            CardPicture::Logo => "logo_url",
            CardPicture::Background => "background_pic_url",
        };
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let sql = format!(
            "UPDATE member_programs SET {column} = $1, updated_at = $2 WHERE id = $3 AND merchant_id = $4"
        );
        let (id, m) = (upload.program_id, upload.merchant_id);
        expect_one(exec(&tx, &sql, &[&upload.url, &upload.now, &id, &m]).await?)?;
        exec(
            &tx,
            "INSERT INTO member_card_pictures (program_id, picture, merchant_id, content_type, bytes, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (program_id, picture, merchant_id) DO UPDATE SET \
             content_type = excluded.content_type, bytes = excluded.bytes, updated_at = excluded.updated_at",
            &[&id, &upload.picture.code(), &m, &upload.content_type, &upload.bytes, &upload.now],
        )
        .await?;
        insert_audit(&tx, audit, 1).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn get_card_picture(
        &self,
        program_id: i64,
        picture: CardPicture,
    ) -> StoreResult<Option<(String, Vec<u8>)>> {
        Ok(opt(
            &self.client().await?,
            "SELECT content_type, bytes FROM member_card_pictures WHERE program_id = $1 AND picture = $2",
            &[&program_id, &picture.code()],
        )
        .await?
        .map(|r| (r.get(0), r.get(1))))
    }

    async fn get_member_program(
        &self,
        merchant_id: i64,
        program_id: i64,
    ) -> StoreResult<MemberProgram> {
        get_program(&self.client().await?, merchant_id, program_id)
            .await?
            .ok_or(StoreError::NotFound)
    }

    async fn list_member_programs(&self, merchant_id: i64) -> StoreResult<Vec<MemberProgram>> {
        let sql = format!(
            "SELECT {PROGRAM_COLUMNS} FROM member_programs WHERE merchant_id = $1 ORDER BY id DESC"
        );
        all(&self.client().await?, &sql, &[&merchant_id])
            .await?
            .iter()
            .map(program_from_row)
            .collect()
    }

    async fn get_member(&self, merchant_id: i64, member_id: i64) -> StoreResult<Member> {
        find_member(
            &self.client().await?,
            "m.id = $1 AND m.merchant_id = $2",
            &[&member_id, &merchant_id],
        )
        .await?
        .pop()
        .ok_or(StoreError::NotFound)
    }

    async fn find_customer_members(
        &self,
        merchant_id: i64,
        customer_id: i64,
    ) -> StoreResult<Vec<Member>> {
        find_member(
            &self.client().await?,
            "m.customer_id = $1 AND m.merchant_id = $2",
            &[&customer_id, &merchant_id],
        )
        .await
    }

    async fn list_members(
        &self,
        merchant_id: i64,
        filter: &MemberFilter,
        page: Page,
    ) -> StoreResult<(Vec<Member>, i64)> {
        let (condition, params) = member_condition(merchant_id, filter);
        let (rows, total) = filtered_page(
            &self.client().await?,
            (MEMBER_FROM, MEMBER_COLUMNS, "m.id DESC"),
            &condition,
            params,
            page,
        )
        .await?;
        Ok((rows.iter().map(member_from_row).collect(), total))
    }

    async fn list_member_messages(
        &self,
        merchant_id: i64,
        page: Page,
    ) -> StoreResult<(Vec<kaquan_core::event::Event>, i64)> {
        let (rows, total) = filtered_page(
            &self.client().await?,
            ("events", crate::events::EVENT_COLUMNS, "id DESC"),
            "merchant_id = $1 AND event_type = 'member.changed'",
            vec![Box::new(merchant_id)],
            page,
        )
        .await?;
        let events = rows
            .iter()
            .map(|r| crate::events::event_from_row(r, 0))
            .collect::<StoreResult<_>>()?;
        Ok((events, total))
    }

    async fn list_points_statement(
        &self,
        merchant_id: i64,
        customer_id: i64,
        page: Page,
    ) -> StoreResult<(Vec<LedgerTransaction>, i64)> {
        let (rows, total) = filtered_page(
            &self.client().await?,
            ("ledger_transactions", TRANSACTION_COLUMNS, "id DESC"),
            "merchant_id = $1 AND customer_id = $2 AND asset = 'points'",
            vec![Box::new(merchant_id), Box::new(customer_id)],
            page,
        )
        .await?;
        let lines = rows
            .iter()
            .map(transaction_from_row)
            .collect::<StoreResult<_>>()?;
        Ok((lines, total))
    }
}

fn member_condition(merchant_id: i64, f: &MemberFilter) -> (String, Params) {
    let mut condition = String::from("m.merchant_id = $1");
    let mut params: Params = vec![Box::new(merchant_id)];
    let mut add = |sql: &str, value: Box<dyn tokio_postgres::types::ToSql + Sync + Send>| {
        params.push(value);
        condition.push_str(&sql.replace('?', &format!("${}", params.len())));
    };
    if let Some(program_id) = f.program_id {
        add(" AND m.program_id = ?", Box::new(program_id));
    }
    if let Some(tier) = f.tier {
        add(
            " AND m.tier = ?",
            Box::new(i64::try_from(tier).unwrap_or(0)),
        );
    }
    if let Some(from) = f.activated_from {
        add(" AND m.activated_at >= ?", Box::new(from));
    }
    if let Some(until) = f.activated_until {
        add(" AND m.activated_at <= ?", Box::new(until));
    }
    if let Some(points) = f.points_at_least {
        add(" AND COALESCE(p.balance, 0) >= ?", Box::new(points));
    }
    if let Some(balance) = f.balance_at_least_fen {
        add(" AND COALESCE(f.balance, 0) >= ?", Box::new(balance));
    }
    if let Some(search) = f.search.as_deref().filter(|s| !s.is_empty()) {
        let pattern = format!("%{}%", search.replace(['%', '_', '\\'], ""));
        add(" AND (m.phone LIKE ?", Box::new(pattern.clone()));
        add(" OR m.name LIKE ?", Box::new(pattern));
        let id = search
            .trim_start_matches(|c: char| c.is_ascii_alphabetic())
            .trim_start_matches('0')
            .to_owned();
        add(" OR m.id::text = ?)", Box::new(id));
    }
    (condition, params)
}
