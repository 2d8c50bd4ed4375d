//! 会员卡 programs on SQLite, and the member reads: programs are written
//! with their audit record; members are read with their points and
//! balance from the ledger.

use crate::ledger::TRANSACTION_COLUMNS;
use crate::members::{find_member, member_from_row, MEMBER_SELECT};
use crate::sql::{decode, execute_one, insert_audit, map_err};
use crate::SqliteStore;
use kaquan_core::audit::{Actor, AuditEntry};
use kaquan_core::ledger::LedgerTransaction;
use kaquan_core::member::{
    lines, CardPicture, CardPictureUpload, Member, MemberFilter, MemberProgram, PointsExpiry,
    PointsRule, ProgramFields, ProgramState, TierBasis,
};
use kaquan_core::store::Page;
use kaquan_core::{StoreError, StoreResult};
use rusqlite::types::Value;
use rusqlite::{params, Connection, OptionalExtension, Row};

const PROGRAM_COLUMNS: &str = "id, merchant_id, state, title, brand_name, color, prerogative, discount_percent_off, \
    points_enabled, cost_money_unit, increase_bonus, max_increase_bonus, init_increase_bonus, cost_bonus_unit, \
    reduce_money, least_money_to_use_bonus, max_reduce_bonus, stored_value_enabled, tier_basis, tiers, custom_fields, \
    custom_links, activation_fields, auto_activate, number_prefix, number_length, expiry, expiry_months, notify, \
    notify_coupon_program_id, created_by, created_at, updated_at, \
    (SELECT count(*) FROM members m WHERE m.program_id = member_programs.id), background_pic_url, logo_url, downgrade_on_refund";

fn program_from_row(r: &Row) -> rusqlite::Result<MemberProgram> {
    let text = |i: usize| r.get::<_, String>(i);
    let points = PointsRule {
        cost_money_unit: r.get(9)?,
        increase_bonus: r.get(10)?,
        max_increase_bonus: r.get(11)?,
        init_increase_bonus: r.get(12)?,
        cost_bonus_unit: r.get(13)?,
        reduce_money: r.get(14)?,
        least_money_to_use_bonus: r.get(15)?,
        max_reduce_bonus: r.get(16)?,
    };
    let fields = ProgramFields {
        title: text(3)?,
        brand_name: text(4)?,
        color: text(5)?,
        background_pic_url: text(34)?,
        logo_url: text(35)?,
        prerogative: text(6)?,
        discount_percent_off: r.get(7)?,
        points: r.get::<_, bool>(8)?.then_some(points),
        stored_value: r.get(17)?,
        tier_basis: decode(TierBasis::parse(&text(18)?), 18, "tier basis")?,
        downgrade_on_refund: r.get(36)?,
        tiers: decode(lines::parse_tiers(&text(19)?), 19, "tiers")?,
        custom_fields: decode(lines::parse_fields(&text(20)?), 20, "custom fields")?,
        custom_links: decode(lines::parse_links(&text(21)?), 21, "custom links")?,
        activation_fields: decode(lines::parse_activation(&text(22)?), 22, "form")?,
        auto_activate: r.get(23)?,
        number_prefix: text(24)?,
        number_length: r.get(25)?,
        expiry: decode(PointsExpiry::parse(&text(26)?, r.get(27)?), 26, "expiry")?,
        notify: r.get(28)?,
        notify_coupon_program_id: r.get(29)?,
    };
    Ok(MemberProgram {
        id: r.get(0)?,
        merchant_id: r.get(1)?,
        state: decode(ProgramState::parse(&text(2)?), 2, "program state")?,
        fields,
        created_by: text(30)?,
        created_at: r.get(31)?,
        updated_at: r.get(32)?,
        n_members: r.get(33)?,
    })
}

/// The program's columns after `merchant_id, state` as parameters ?3–?32.
fn program_values(f: &ProgramFields) -> Vec<Value> {
    let rule = f.points.unwrap_or_default();
    let int = Value::Integer;
    let text = |s: &str| Value::Text(s.to_owned());
    vec![
        text(&f.title),
        text(&f.brand_name),
        text(&f.color),
        text(&f.prerogative),
        int(f.discount_percent_off),
        int(i64::from(f.points.is_some())),
        int(rule.cost_money_unit),
        int(rule.increase_bonus),
        int(rule.max_increase_bonus),
        int(rule.init_increase_bonus),
        int(rule.cost_bonus_unit),
        int(rule.reduce_money),
        int(rule.least_money_to_use_bonus),
        int(rule.max_reduce_bonus),
        int(i64::from(f.stored_value)),
        text(f.tier_basis.code()),
        text(&lines::tiers(&f.tiers)),
        text(&lines::fields(&f.custom_fields)),
        text(&lines::links(&f.custom_links)),
        text(&lines::activation(&f.activation_fields)),
        int(i64::from(f.auto_activate)),
        text(&f.number_prefix),
        int(f.number_length),
        text(f.expiry.code()),
        int(f.expiry.months()),
        int(i64::from(f.notify)),
        f.notify_coupon_program_id.map_or(Value::Null, int),
        text(&f.background_pic_url),
        text(&f.logo_url),
        int(i64::from(f.downgrade_on_refund)),
    ]
}

const PROGRAM_SET: &str = "title = ?3, brand_name = ?4, color = ?5, prerogative = ?6, discount_percent_off = ?7, \
    points_enabled = ?8, cost_money_unit = ?9, increase_bonus = ?10, max_increase_bonus = ?11, \
    init_increase_bonus = ?12, cost_bonus_unit = ?13, reduce_money = ?14, least_money_to_use_bonus = ?15, \
    max_reduce_bonus = ?16, stored_value_enabled = ?17, tier_basis = ?18, tiers = ?19, custom_fields = ?20, \
    custom_links = ?21, activation_fields = ?22, auto_activate = ?23, number_prefix = ?24, number_length = ?25, \
    expiry = ?26, expiry_months = ?27, notify = ?28, notify_coupon_program_id = ?29, \
    background_pic_url = ?30, logo_url = ?31, downgrade_on_refund = ?32";

/// A program with its member count (the console's).
pub(crate) fn get_program(
    conn: &Connection,
    merchant_id: i64,
    program_id: i64,
) -> StoreResult<Option<MemberProgram>> {
    read_program(conn, merchant_id, program_id, PROGRAM_COLUMNS)
}

/// A program without its member count (0): what every call on a member
/// reads, which must not count the program's members each time.
pub(crate) fn program_rules(
    conn: &Connection,
    merchant_id: i64,
    program_id: i64,
) -> StoreResult<Option<MemberProgram>> {
    read_program(conn, merchant_id, program_id, &PROGRAM_RULE_COLUMNS)
}

static PROGRAM_RULE_COLUMNS: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    PROGRAM_COLUMNS.replace(
        "(SELECT count(*) FROM members m WHERE m.program_id = member_programs.id)",
        "0",
    )
});

fn read_program(
    conn: &Connection,
    merchant_id: i64,
    program_id: i64,
    columns: &str,
) -> StoreResult<Option<MemberProgram>> {
    conn.prepare_cached(&format!(
        "SELECT {columns} FROM member_programs WHERE id = ?1 AND merchant_id = ?2"
    ))
    .and_then(|mut s| {
        s.query_row(params![program_id, merchant_id], program_from_row)
            .optional()
    })
    .map_err(map_err)
}

#[async_trait::async_trait]
impl kaquan_core::member::MemberStore for SqliteStore {
    async fn create_member_program(
        &self,
        merchant_id: i64,
        fields: &ProgramFields,
        actor: &Actor,
        now: i64,
    ) -> StoreResult<MemberProgram> {
        let (fields, actor) = (fields.clone(), actor.clone());
        self.write(move |conn| {
            let mut values = vec![Value::Integer(merchant_id), Value::Text("active".into())];
            values.extend(program_values(&fields));
            values.extend([
                Value::Text(actor.label.clone()),
                Value::Integer(now),
            ]);
            conn.execute(
                "INSERT INTO member_programs (merchant_id, state, title, brand_name, color, prerogative, \
                 discount_percent_off, points_enabled, cost_money_unit, increase_bonus, max_increase_bonus, \
                 init_increase_bonus, cost_bonus_unit, reduce_money, least_money_to_use_bonus, max_reduce_bonus, \
                 stored_value_enabled, tier_basis, tiers, custom_fields, custom_links, activation_fields, \
                 auto_activate, number_prefix, number_length, expiry, expiry_months, notify, \
                 notify_coupon_program_id, background_pic_url, logo_url, downgrade_on_refund, created_by, created_at, \
                 updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, \
                 ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30, ?31, ?32, ?33, ?34, ?34)",
                rusqlite::params_from_iter(values),
            )
            .map_err(map_err)?;
            let id = conn.last_insert_rowid();
            audit_program(conn, merchant_id, id, "create_member_program", &fields.title, &actor, now)?;
            get_program(conn, merchant_id, id)?.ok_or(StoreError::NotFound)
        })
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
        let (fields, actor) = (fields.clone(), actor.clone());
        self.write(move |conn| {
            let mut values = vec![Value::Integer(program_id), Value::Integer(merchant_id)];
            values.extend(program_values(&fields));
            values.push(Value::Integer(now));
            execute_one(
                conn,
                &format!(
                    "UPDATE member_programs SET {PROGRAM_SET}, updated_at = ?33 WHERE id = ?1 AND merchant_id = ?2"
                ),
                rusqlite::params_from_iter(values),
            )?;
            audit_program(conn, merchant_id, program_id, "update_member_program", &fields.title, &actor, now)?;
            get_program(conn, merchant_id, program_id)?.ok_or(StoreError::NotFound)
        })
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
        let actor = actor.clone();
        self.write(move |conn| {
            execute_one(
                conn,
                "UPDATE member_programs SET state = ?1, updated_at = ?2 WHERE id = ?3 AND merchant_id = ?4",
                params![state.code(), now, program_id, merchant_id],
            )?;
            audit_program(conn, merchant_id, program_id, "set_member_program_state", state.code(), &actor, now)?;
            get_program(conn, merchant_id, program_id)?.ok_or(StoreError::NotFound)
        })
        .await
    }

    async fn put_card_picture(
        &self,
        upload: &CardPictureUpload,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let (upload, audit) = (upload.clone(), audit.clone());
        self.write(move |conn| {
            // The column is named by the picture's kind, from a closed set.
            let column = match upload.picture {
                CardPicture::Logo => "logo_url",
                CardPicture::Background => "background_pic_url",
            };
            execute_one(
                conn,
                &format!(
                    "UPDATE member_programs SET {column} = ?1, updated_at = ?2 WHERE id = ?3 AND merchant_id = ?4"
                ),
                params![upload.url, upload.now, upload.program_id, upload.merchant_id],
            )?;
            conn.execute(
                "INSERT INTO member_card_pictures (program_id, picture, merchant_id, content_type, bytes, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (program_id, picture) DO UPDATE SET \
                 content_type = excluded.content_type, bytes = excluded.bytes, updated_at = excluded.updated_at",
                params![
                    upload.program_id,
                    upload.picture.code(),
                    upload.merchant_id,
                    upload.content_type,
                    upload.bytes,
                    upload.now
                ],
            )
            .map_err(map_err)?;
            insert_audit(conn, &audit, 1).map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn get_card_picture(
        &self,
        program_id: i64,
        picture: CardPicture,
    ) -> StoreResult<Option<(String, Vec<u8>)>> {
        self.read(move |conn| {
            conn.query_row(
                "SELECT content_type, bytes FROM member_card_pictures WHERE program_id = ?1 AND picture = ?2",
                params![program_id, picture.code()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(map_err)
        })
        .await
    }

    async fn get_member_program(
        &self,
        merchant_id: i64,
        program_id: i64,
    ) -> StoreResult<MemberProgram> {
        self.read(move |conn| {
            get_program(conn, merchant_id, program_id)?.ok_or(StoreError::NotFound)
        })
        .await
    }

    async fn list_member_programs(&self, merchant_id: i64) -> StoreResult<Vec<MemberProgram>> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT {PROGRAM_COLUMNS} FROM member_programs WHERE merchant_id = ?1 ORDER BY id DESC"
                ))
                .map_err(map_err)?;
            let rows = stmt.query_map([merchant_id], program_from_row).map_err(map_err)?;
            rows.collect::<Result<_, _>>().map_err(map_err)
        })
        .await
    }

    async fn get_member(&self, merchant_id: i64, member_id: i64) -> StoreResult<Member> {
        self.read(move |conn| {
            find_member(
                conn,
                "m.id = ?1 AND m.merchant_id = ?2",
                params![member_id, merchant_id],
            )?
            .pop()
            .ok_or(StoreError::NotFound)
        })
        .await
    }

    async fn find_customer_members(
        &self,
        merchant_id: i64,
        customer_id: i64,
    ) -> StoreResult<Vec<Member>> {
        self.read(move |conn| {
            find_member(
                conn,
                "m.customer_id = ?1 AND m.merchant_id = ?2",
                params![customer_id, merchant_id],
            )
        })
        .await
    }

    async fn list_members(
        &self,
        merchant_id: i64,
        filter: &MemberFilter,
        page: Page,
    ) -> StoreResult<(Vec<Member>, i64)> {
        let filter = filter.clone();
        self.read(move |conn| {
            let (condition, values) = member_condition(merchant_id, &filter);
            let from = "members m JOIN customers c ON c.id = m.customer_id \
                LEFT JOIN ledger_accounts p ON p.customer_id = m.customer_id AND p.asset = 'points' \
                LEFT JOIN ledger_accounts f ON f.customer_id = m.customer_id AND f.asset = 'fen'";
            let columns = MEMBER_SELECT
                .trim_start_matches("SELECT ")
                .split(" FROM ")
                .next()
                .unwrap_or_default();
            crate::sql::filtered_page(conn, (from, columns, "m.id DESC"), &condition, values, page, member_from_row)
        })
        .await
    }

    async fn list_member_messages(
        &self,
        merchant_id: i64,
        page: Page,
    ) -> StoreResult<(Vec<kaquan_core::event::Event>, i64)> {
        self.read(move |conn| {
            crate::sql::filtered_page(
                conn,
                ("events", crate::events::EVENT_COLUMNS, "id DESC"),
                "merchant_id = ? AND event_type = 'member.changed'",
                vec![Value::Integer(merchant_id)],
                page,
                crate::events::event_from_row,
            )
        })
        .await
    }

    async fn list_points_statement(
        &self,
        merchant_id: i64,
        customer_id: i64,
        page: Page,
    ) -> StoreResult<(Vec<LedgerTransaction>, i64)> {
        self.read(move |conn| {
            crate::sql::filtered_page(
                conn,
                ("ledger_transactions", TRANSACTION_COLUMNS, "id DESC"),
                "merchant_id = ? AND customer_id = ? AND asset = 'points'",
                vec![Value::Integer(merchant_id), Value::Integer(customer_id)],
                page,
                crate::ledger::transaction_from_row,
            )
        })
        .await
    }
}

fn member_condition(merchant_id: i64, f: &MemberFilter) -> (String, Vec<Value>) {
    let mut condition = String::from("m.merchant_id = ?");
    let mut values = vec![Value::Integer(merchant_id)];
    let mut add = |sql: &str, value: Value| {
        condition.push_str(sql);
        values.push(value);
    };
    if let Some(program_id) = f.program_id {
        add(" AND m.program_id = ?", Value::Integer(program_id));
    }
    if let Some(tier) = f.tier {
        add(
            " AND m.tier = ?",
            Value::Integer(i64::try_from(tier).unwrap_or(0)),
        );
    }
    if let Some(from) = f.activated_from {
        add(" AND m.activated_at >= ?", Value::Integer(from));
    }
    if let Some(until) = f.activated_until {
        add(" AND m.activated_at <= ?", Value::Integer(until));
    }
    if let Some(points) = f.points_at_least {
        add(" AND COALESCE(p.balance, 0) >= ?", Value::Integer(points));
    }
    if let Some(balance) = f.balance_at_least_fen {
        add(" AND COALESCE(f.balance, 0) >= ?", Value::Integer(balance));
    }
    if let Some(search) = f.search.as_deref().filter(|s| !s.is_empty()) {
        let pattern = format!("%{}%", search.replace(['%', '_', '\\'], ""));
        condition.push_str(" AND (m.phone LIKE ? OR m.name LIKE ? OR CAST(m.id AS TEXT) = ?)");
        values.extend([
            Value::Text(pattern.clone()),
            Value::Text(pattern),
            Value::Text(
                search
                    .trim_start_matches(|c: char| c.is_ascii_alphabetic())
                    .trim_start_matches('0')
                    .to_owned(),
            ),
        ]);
    }
    (condition, values)
}

fn audit_program(
    conn: &Connection,
    merchant_id: i64,
    program_id: i64,
    action: &str,
    detail: &str,
    actor: &Actor,
    now: i64,
) -> StoreResult<()> {
    insert_audit(
        conn,
        &AuditEntry {
            merchant_id,
            actor: actor.clone(),
            action: action.into(),
            target: format!("member_program={program_id}"),
            detail: detail.into(),
            n_affected: 1,
            created_at: now,
        },
        1,
    )
    .map_err(map_err)?;
    Ok(())
}
