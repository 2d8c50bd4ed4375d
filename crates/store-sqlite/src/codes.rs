//! Code templates and codes (兑换码).

use crate::sql::decode;
use crate::sql::insert_audit;
use crate::sql::map_err;
use crate::SqliteStore;
use kaquan_core::audit::AuditEntry;
use kaquan_core::code::CodeKind;
use kaquan_core::code::CodeState;
use kaquan_core::code::CodeTemplate;
use kaquan_core::code::CodeTemplateFields;
use kaquan_core::code::IssuedCode;
use kaquan_core::code::NewCode;
use kaquan_core::store::Page;
use kaquan_core::{Conflict, StoreError, StoreResult};
use rusqlite::{params, Connection, OptionalExtension, Row};

pub(crate) const TEMPLATE_COLUMNS: &str =
    "t.id, t.merchant_id, t.kind, t.name, t.face_value_fen, t.valid_from, t.valid_until, \
    t.created_by, t.created_at, t.deleted_at, \
    (SELECT count(*) FROM codes c WHERE c.template_id = t.id), \
    (SELECT count(*) FROM codes c WHERE c.template_id = t.id AND c.state = 'used'), \
    (SELECT count(*) FROM codes c WHERE c.template_id = t.id AND c.state = 'voided')";

pub(crate) fn template_from_row(row: &Row) -> rusqlite::Result<CodeTemplate> {
    let kind: String = row.get(2)?;
    Ok(CodeTemplate {
        id: row.get(0)?,
        merchant_id: row.get(1)?,
        kind: decode(CodeKind::parse(&kind), 2, "code kind")?,
        fields: CodeTemplateFields {
            name: row.get(3)?,
            face_value_fen: row.get(4)?,
            valid_from: row.get(5)?,
            valid_until: row.get(6)?,
        },
        created_by: row.get(7)?,
        created_at: row.get(8)?,
        deleted_at: row.get(9)?,
        n_issued: row.get(10)?,
        n_used: row.get(11)?,
        n_voided: row.get(12)?,
    })
}

pub(crate) const CODE_COLUMNS: &str = "c.id, c.template_id, c.state, c.face_value_fen, c.valid_until, c.sealed, c.key_version, \
    o.order_id, c.customer_id, COALESCE(NULLIF(u.nickname, ''), u.external_id, u.phone), c.redeemed_at, c.issued_at";
pub(crate) const CODE_JOINS: &str = "codes c LEFT JOIN mall_orders o ON o.id = c.mall_order_id \
    LEFT JOIN customers u ON u.id = c.customer_id";

pub(crate) fn code_from_row(row: &Row) -> rusqlite::Result<IssuedCode> {
    let state: String = row.get(2)?;
    Ok(IssuedCode {
        id: row.get(0)?,
        template_id: row.get(1)?,
        state: decode(CodeState::parse(&state), 2, "code state")?,
        face_value_fen: row.get(3)?,
        valid_until: row.get(4)?,
        sealed: row.get(5)?,
        key_version: row.get(6)?,
        order_id: row.get(7)?,
        customer_id: row.get(8)?,
        customer_label: row.get(9)?,
        redeemed_at: row.get(10)?,
        issued_at: row.get(11)?,
    })
}

pub(crate) fn insert_codes(
    conn: &Connection,
    merchant_id: i64,
    template_id: i64,
    mall_order_id: Option<i64>,
    codes: &[NewCode],
    now: i64,
) -> StoreResult<()> {
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO codes (merchant_id, template_id, digest, sealed, key_version, state, face_value_fen, valid_from, valid_until, \
             mall_order_id, issued_at, room) SELECT ?1, t.id, ?3, ?4, ?5, 'unused', t.face_value_fen, t.valid_from, t.valid_until, ?6, ?7, \
             zeroblob(8) \
             FROM code_templates t WHERE t.id = ?2 AND t.merchant_id = ?1 AND t.deleted_at IS NULL",
        )
        .map_err(map_err)?;
    for code in codes {
        let n = stmt
            .execute(params![
                merchant_id,
                template_id,
                code.digest,
                code.sealed,
                code.key_version,
                mall_order_id,
                now
            ])
            .map_err(map_err)?;
        if n != 1 {
            return Err(StoreError::NotFound);
        }
    }
    Ok(())
}

#[async_trait::async_trait]
impl kaquan_core::code::CodeStore for SqliteStore {
    async fn create_code_template(
        &self,
        merchant_id: i64,
        kind: CodeKind,
        fields: &CodeTemplateFields,
        codes: &[NewCode],
        audit: &AuditEntry,
    ) -> StoreResult<CodeTemplate> {
        let (f, codes, audit) = (fields.clone(), codes.to_vec(), audit.clone());
        self.write(move |conn| {
            let id: i64 = conn
                .query_row(
                    "INSERT INTO code_templates (merchant_id, kind, name, face_value_fen, valid_from, valid_until, created_by, created_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) RETURNING id",
                    params![merchant_id, kind.code(), f.name, f.face_value_fen, f.valid_from, f.valid_until, audit.actor.label, audit.created_at],
                    |r| r.get(0),
                )
                .map_err(map_err)?;
            insert_codes(conn, merchant_id, id, None, &codes, audit.created_at)?;
            let mut audit = audit.clone();
            audit.target = format!("code_template={id}");
            insert_audit(conn, &audit, codes.len() as i64).map_err(map_err)?;
            conn.query_row(
                &format!("SELECT {TEMPLATE_COLUMNS} FROM code_templates t WHERE t.id = ?1"),
                [id],
                template_from_row,
            )
            .map_err(map_err)
        })
        .await
    }

    async fn list_code_templates(
        &self,
        merchant_id: i64,
        kind: CodeKind,
        page: Page,
    ) -> StoreResult<(Vec<CodeTemplate>, i64)> {
        self.read(move |conn| {
            let total: i64 = conn
                .query_row(
                    "SELECT count(*) FROM code_templates WHERE merchant_id = ?1 AND kind = ?2 AND deleted_at IS NULL",
                    params![merchant_id, kind.code()],
                    |r| r.get(0),
                )
                .map_err(map_err)?;
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT {TEMPLATE_COLUMNS} FROM code_templates t WHERE t.merchant_id = ?1 AND t.kind = ?2 \
                     AND t.deleted_at IS NULL ORDER BY t.id DESC LIMIT ?3 OFFSET ?4"
                ))
                .map_err(map_err)?;
            let rows = stmt
                .query_map(params![merchant_id, kind.code(), page.page_size, page.offset()], template_from_row)
                .map_err(map_err)?;
            Ok((rows.collect::<Result<_, _>>().map_err(map_err)?, total))
        })
        .await
    }

    async fn get_code_template(
        &self,
        merchant_id: i64,
        template_id: i64,
    ) -> StoreResult<CodeTemplate> {
        self.read(move |conn| {
            conn.query_row(
                &format!("SELECT {TEMPLATE_COLUMNS} FROM code_templates t WHERE t.id = ?1 AND t.merchant_id = ?2"),
                params![template_id, merchant_id],
                template_from_row,
            )
            .map_err(map_err)
        })
        .await
    }

    async fn delete_code_template(
        &self,
        merchant_id: i64,
        template_id: i64,
        expected_unused: i64,
        audit: &AuditEntry,
    ) -> StoreResult<i64> {
        let audit = audit.clone();
        self.write(move |conn| {
            let n = conn
                .execute(
                    "UPDATE code_templates SET deleted_at = ?1 WHERE id = ?2 AND merchant_id = ?3 AND deleted_at IS NULL \
                     AND (SELECT count(*) FROM codes WHERE template_id = ?2 AND state = 'unused') = ?4",
                    params![audit.created_at, template_id, merchant_id, expected_unused],
                )
                .map_err(map_err)?;
            if n != 1 {
                return Err(StoreError::Conflict(Conflict::CodesChanged));
            }
            let voided = conn
                .execute(
                    "UPDATE codes SET state = 'voided' WHERE template_id = ?1 AND state = 'unused'",
                    [template_id],
                )
                .map_err(map_err)? as i64;
            conn.execute(
                "UPDATE giftcard_products SET on_shelf = 0 WHERE template_id = ?1",
                [template_id],
            )
            .map_err(map_err)?;
            insert_audit(conn, &audit, voided).map_err(map_err)?;
            Ok(voided)
        })
        .await
    }

    async fn list_codes(
        &self,
        merchant_id: i64,
        template_id: i64,
        state: Option<CodeState>,
        page: Page,
    ) -> StoreResult<(Vec<IssuedCode>, i64)> {
        let state = state.map(CodeState::code);
        self.read(move |conn| {
            let total: i64 = conn
                .query_row(
                    "SELECT count(*) FROM codes WHERE template_id = ?1 AND merchant_id = ?2 \
                     AND (?3 IS NULL OR state = ?3)",
                    params![template_id, merchant_id, state],
                    |r| r.get(0),
                )
                .map_err(map_err)?;
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT {CODE_COLUMNS} FROM {CODE_JOINS} WHERE c.template_id = ?1 AND c.merchant_id = ?2 \
                     AND (?3 IS NULL OR c.state = ?3) ORDER BY c.id LIMIT ?4 OFFSET ?5"
                ))
                .map_err(map_err)?;
            let rows = stmt
                .query_map(
                    params![template_id, merchant_id, state, page.page_size, page.offset()],
                    code_from_row,
                )
                .map_err(map_err)?;
            Ok((rows.collect::<Result<_, _>>().map_err(map_err)?, total))
        })
        .await
    }

    async fn find_code(&self, merchant_id: i64, digest: &[u8]) -> StoreResult<Option<IssuedCode>> {
        let digest = digest.to_vec();
        self.read(move |conn| {
            conn.query_row(
                &format!("SELECT {CODE_COLUMNS} FROM {CODE_JOINS} WHERE c.merchant_id = ?1 AND c.digest = ?2"),
                params![merchant_id, digest],
                code_from_row,
            )
            .optional()
            .map_err(map_err)
        })
        .await
    }

    async fn template_names_of_codes(
        &self,
        merchant_id: i64,
        code_ids: &[i64],
    ) -> StoreResult<Vec<(i64, String)>> {
        let ids = code_ids.to_vec();
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT code_templates.name FROM codes JOIN code_templates ON code_templates.id = codes.template_id \
                     WHERE codes.id = ?1 AND codes.merchant_id = ?2",
                )
                .map_err(map_err)?;
            let mut names = Vec::new();
            for id in ids {
                let name: Option<String> = stmt
                    .query_row(params![id, merchant_id], |r| r.get(0))
                    .optional()
                    .map_err(map_err)?;
                names.extend(name.map(|n| (id, n)));
            }
            Ok(names)
        })
        .await
    }

    async fn codes_after(
        &self,
        merchant_id: i64,
        template_id: i64,
        after_id: i64,
        limit: i64,
    ) -> StoreResult<Vec<IssuedCode>> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT {CODE_COLUMNS} FROM {CODE_JOINS} WHERE c.template_id = ?1 AND c.merchant_id = ?2 AND c.id > ?3 \
                     ORDER BY c.id LIMIT ?4"
                ))
                .map_err(map_err)?;
            let rows = stmt
                .query_map(params![template_id, merchant_id, after_id, limit], code_from_row)
                .map_err(map_err)?;
            rows.collect::<Result<_, _>>().map_err(map_err)
        })
        .await
    }
}
