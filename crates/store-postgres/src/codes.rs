//! Code templates and codes (兑换码).

use crate::engine::refresh_statistics;
use crate::sql::all;
use crate::sql::exec;
use crate::sql::insert_audit;
use crate::sql::map_err;
use crate::sql::one;
use crate::sql::opt;
use crate::sql::parse_or;
use crate::PgStore;
use deadpool_postgres::GenericClient;
use kaquan_core::audit::AuditEntry;
use kaquan_core::code::CodeKind;
use kaquan_core::code::CodeState;
use kaquan_core::code::CodeTemplate;
use kaquan_core::code::CodeTemplateFields;
use kaquan_core::code::IssuedCode;
use kaquan_core::code::NewCode;
use kaquan_core::store::Page;
use kaquan_core::{Conflict, StoreError, StoreResult};
use tokio_postgres::Row;

pub(crate) const TEMPLATE_COLUMNS: &str =
    "t.id, t.merchant_id, t.kind, t.name, t.face_value_fen, t.valid_from, t.valid_until, \
    t.created_by, t.created_at, t.deleted_at, \
    (SELECT count(*) FROM codes c WHERE c.template_id = t.id), \
    (SELECT count(*) FROM codes c WHERE c.template_id = t.id AND c.state = 'used'), \
    (SELECT count(*) FROM codes c WHERE c.template_id = t.id AND c.state = 'voided')";

pub(crate) fn template_from_row(row: &Row) -> StoreResult<CodeTemplate> {
    Ok(CodeTemplate {
        id: row.get(0),
        merchant_id: row.get(1),
        kind: parse_or(CodeKind::parse(row.get(2)), "code kind")?,
        fields: CodeTemplateFields {
            name: row.get(3),
            face_value_fen: row.get(4),
            valid_from: row.get(5),
            valid_until: row.get(6),
        },
        created_by: row.get(7),
        created_at: row.get(8),
        deleted_at: row.get(9),
        n_issued: row.get(10),
        n_used: row.get(11),
        n_voided: row.get(12),
    })
}

pub(crate) const CODE_COLUMNS: &str = "c.id, c.template_id, c.state, c.face_value_fen, c.valid_until, c.sealed, c.key_version, \
    o.order_id, c.customer_id, COALESCE(NULLIF(u.nickname, ''), u.external_id, u.phone), c.redeemed_at, c.issued_at";
pub(crate) const CODE_JOINS: &str = "codes c LEFT JOIN mall_orders o ON o.id = c.mall_order_id \
    LEFT JOIN customers u ON u.id = c.customer_id";

pub(crate) fn code_from_row(row: &Row) -> StoreResult<IssuedCode> {
    Ok(IssuedCode {
        id: row.get(0),
        template_id: row.get(1),
        state: parse_or(CodeState::parse(row.get(2)), "code state")?,
        face_value_fen: row.get(3),
        valid_until: row.get(4),
        sealed: row.get(5),
        key_version: row.get(6),
        order_id: row.get(7),
        customer_id: row.get(8),
        customer_label: row.get(9),
        redeemed_at: row.get(10),
        issued_at: row.get(11),
    })
}

pub(crate) async fn insert_codes(
    tx: &impl GenericClient,
    merchant_id: i64,
    template_id: i64,
    mall_order_id: Option<i64>,
    codes: &[NewCode],
    now: i64,
) -> StoreResult<()> {
    if codes.is_empty() {
        return Ok(());
    }
    let digests: Vec<&[u8]> = codes.iter().map(|c| c.digest.as_slice()).collect();
    let sealed: Vec<&[u8]> = codes.iter().map(|c| c.sealed.as_slice()).collect();
    let versions: Vec<i32> = codes.iter().map(|c| c.key_version).collect();
    let n = exec(
        tx,
        "INSERT INTO codes (merchant_id, template_id, digest, sealed, key_version, state, face_value_fen, valid_from, valid_until, \
         mall_order_id, issued_at) \
         SELECT $1, t.id, u.digest, u.sealed, u.key_version, 'unused', t.face_value_fen, t.valid_from, t.valid_until, $6, $7 \
         FROM code_templates t, unnest($3::bytea[], $4::bytea[], $5::int[]) AS u(digest, sealed, key_version) \
         WHERE t.id = $2 AND t.merchant_id = $1 AND t.deleted_at IS NULL",
        &[&merchant_id, &template_id, &digests, &sealed, &versions, &mall_order_id, &now],
    )
    .await?;
    if n != codes.len() as u64 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

#[async_trait::async_trait]
impl kaquan_core::code::CodeStore for PgStore {
    async fn create_code_template(
        &self,
        merchant_id: i64,
        kind: CodeKind,
        f: &CodeTemplateFields,
        codes: &[NewCode],
        audit: &AuditEntry,
    ) -> StoreResult<CodeTemplate> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let id: i64 = one(
            &tx,
            "INSERT INTO code_templates (merchant_id, kind, name, face_value_fen, valid_from, valid_until, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
            &[
                &merchant_id,
                &kind.code(),
                &f.name,
                &f.face_value_fen,
                &f.valid_from,
                &f.valid_until,
                &audit.actor.label,
                &audit.created_at,
            ],
        )
        .await?
        .get(0);
        insert_codes(&tx, merchant_id, id, None, codes, audit.created_at).await?;
        let mut audit = audit.clone();
        audit.target = format!("code_template={id}");
        insert_audit(&tx, &audit, codes.len() as i64).await?;
        let template = template_from_row(
            &one(
                &tx,
                &format!("SELECT {TEMPLATE_COLUMNS} FROM code_templates t WHERE t.id = $1"),
                &[&id],
            )
            .await?,
        )?;
        tx.commit().await.map_err(map_err)?;
        refresh_statistics(&client, "codes", codes.len() as i64).await;
        Ok(template)
    }

    async fn list_code_templates(
        &self,
        merchant_id: i64,
        kind: CodeKind,
        page: Page,
    ) -> StoreResult<(Vec<CodeTemplate>, i64)> {
        let client = self.client().await?;
        let total: i64 = one(
            &client,
            "SELECT count(*) FROM code_templates WHERE merchant_id = $1 AND kind = $2 AND deleted_at IS NULL",
            &[&merchant_id, &kind.code()],
        )
        .await?
        .get(0);
        let rows = all(
            &client,
            &format!(
                "SELECT {TEMPLATE_COLUMNS} FROM code_templates t WHERE t.merchant_id = $1 AND t.kind = $2 \
                 AND t.deleted_at IS NULL ORDER BY t.id DESC LIMIT $3 OFFSET $4"
            ),
            &[&merchant_id, &kind.code(), &page.page_size, &page.offset()],
        )
        .await?;
        Ok((
            rows.iter()
                .map(template_from_row)
                .collect::<StoreResult<_>>()?,
            total,
        ))
    }

    async fn get_code_template(
        &self,
        merchant_id: i64,
        template_id: i64,
    ) -> StoreResult<CodeTemplate> {
        let client = self.client().await?;
        let row = opt(
            &client,
            &format!(
                "SELECT {TEMPLATE_COLUMNS} FROM code_templates t WHERE t.id = $1 AND t.merchant_id = $2"
            ),
            &[&template_id, &merchant_id],
        )
        .await?
        .ok_or(StoreError::NotFound)?;
        template_from_row(&row)
    }

    async fn delete_code_template(
        &self,
        merchant_id: i64,
        template_id: i64,
        expected_unused: i64,
        audit: &AuditEntry,
    ) -> StoreResult<i64> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        // Lock the template first so a concurrent issue cannot change the count.
        let n = exec(
            &tx,
            "UPDATE code_templates SET deleted_at = $1 WHERE id = $2 AND merchant_id = $3 AND deleted_at IS NULL",
            &[&audit.created_at, &template_id, &merchant_id],
        )
        .await?;
        if n != 1 {
            return Err(StoreError::Conflict(Conflict::CodesChanged));
        }
        let voided = exec(
            &tx,
            "UPDATE codes SET state = 'voided' WHERE template_id = $1 AND state = 'unused'",
            &[&template_id],
        )
        .await? as i64;
        if voided != expected_unused {
            return Err(StoreError::Conflict(Conflict::CodesChanged));
        }
        exec(
            &tx,
            "UPDATE giftcard_products SET on_shelf = FALSE WHERE template_id = $1",
            &[&template_id],
        )
        .await?;
        insert_audit(&tx, audit, voided).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(voided)
    }

    async fn list_codes(
        &self,
        merchant_id: i64,
        template_id: i64,
        state: Option<CodeState>,
        page: Page,
    ) -> StoreResult<(Vec<IssuedCode>, i64)> {
        let client = self.client().await?;
        let state = state.map(CodeState::code);
        let total: i64 = one(
            &client,
            "SELECT count(*) FROM codes WHERE template_id = $1 AND merchant_id = $2 \
             AND ($3::text IS NULL OR state = $3)",
            &[&template_id, &merchant_id, &state],
        )
        .await?
        .get(0);
        let rows = all(
            &client,
            &format!(
                "SELECT {CODE_COLUMNS} FROM {CODE_JOINS} WHERE c.template_id = $1 AND c.merchant_id = $2 \
                 AND ($3::text IS NULL OR c.state = $3) ORDER BY c.id LIMIT $4 OFFSET $5"
            ),
            &[&template_id, &merchant_id, &state, &page.page_size, &page.offset()],
        )
        .await?;
        Ok((
            rows.iter().map(code_from_row).collect::<StoreResult<_>>()?,
            total,
        ))
    }

    async fn find_code(&self, merchant_id: i64, digest: &[u8]) -> StoreResult<Option<IssuedCode>> {
        let client = self.client().await?;
        opt(
            &client,
            &format!("SELECT {CODE_COLUMNS} FROM {CODE_JOINS} WHERE c.merchant_id = $1 AND c.digest = $2"),
            &[&merchant_id, &digest],
        )
        .await?
        .as_ref()
        .map(code_from_row)
        .transpose()
    }

    async fn template_names_of_codes(
        &self,
        merchant_id: i64,
        code_ids: &[i64],
    ) -> StoreResult<Vec<(i64, String)>> {
        let rows = all(
            &self.client().await?,
            "SELECT codes.id, code_templates.name FROM codes JOIN code_templates ON code_templates.id = codes.template_id \
             WHERE codes.id = ANY($1) AND codes.merchant_id = $2",
            &[&code_ids, &merchant_id],
        )
        .await?;
        let names: Vec<(i64, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        Ok(code_ids
            .iter()
            .filter_map(|id| names.iter().find(|(c, _)| c == id).cloned())
            .collect())
    }

    async fn codes_after(
        &self,
        merchant_id: i64,
        template_id: i64,
        after_id: i64,
        limit: i64,
    ) -> StoreResult<Vec<IssuedCode>> {
        let client = self.client().await?;
        all(
            &client,
            &format!(
                "SELECT {CODE_COLUMNS} FROM {CODE_JOINS} WHERE c.template_id = $1 AND c.merchant_id = $2 AND c.id > $3 \
                 ORDER BY c.id LIMIT $4"
            ),
            &[&template_id, &merchant_id, &after_id, &limit],
        )
        .await?
        .iter()
        .map(code_from_row)
        .collect()
    }
}
