//! 礼品卡设置, its pictures and 礼品卡商品.

use crate::sql::all;
use crate::sql::exec;
use crate::sql::expect_one;
use crate::sql::insert_audit;
use crate::sql::map_err;
use crate::sql::one;
use crate::sql::opt;
use crate::sql::parse_or;
use crate::PgStore;
use deadpool_postgres::GenericClient;
use kaquan_core::audit::AuditEntry;
use kaquan_core::giftcard::GiftcardImageSlot;
use kaquan_core::giftcard::GiftcardProduct;
use kaquan_core::giftcard::GiftcardProductFields;
use kaquan_core::giftcard::GiftcardSettings;
use kaquan_core::giftcard::GoodsDisplay;
use kaquan_core::{StoreError, StoreResult};
use tokio_postgres::Row;

pub(crate) const PRODUCT_COLUMNS: &str =
    "p.id, p.merchant_id, p.name, p.template_id, p.price_fen, p.on_shelf, \
    t.name, t.face_value_fen, p.created_at, t.deleted_at IS NULL";

pub(crate) fn product_from_row(row: &Row) -> GiftcardProduct {
    GiftcardProduct {
        id: row.get(0),
        merchant_id: row.get(1),
        fields: GiftcardProductFields {
            name: row.get(2),
            template_id: row.get(3),
            price_fen: row.get(4),
            on_shelf: row.get(5),
        },
        template_name: row.get(6),
        face_value_fen: row.get(7),
        created_at: row.get(8),
        template_live: row.get(9),
    }
}

#[async_trait::async_trait]
impl kaquan_core::giftcard::GiftcardStore for PgStore {
    async fn get_giftcard_settings(&self, merchant_id: i64) -> StoreResult<GiftcardSettings> {
        let client = self.client().await?;
        let found = opt(
            &client,
            "SELECT enabled, centre_entry, attempt_limit, centre_name, share_title, description, phone_login, \
             distribution, goods_display FROM giftcard_settings WHERE merchant_id = $1",
            &[&merchant_id],
        )
        .await?;
        found
            .map(|r| -> StoreResult<GiftcardSettings> {
                Ok(GiftcardSettings {
                    enabled: r.get(0),
                    centre_entry: r.get(1),
                    attempt_limit: r.get(2),
                    centre_name: r.get(3),
                    share_title: r.get(4),
                    description: r.get(5),
                    phone_login: r.get(6),
                    distribution: r.get(7),
                    goods_display: parse_or(GoodsDisplay::parse(r.get(8)), "goods display")?,
                })
            })
            .transpose()
            .map(Option::unwrap_or_default)
    }

    async fn put_giftcard_settings(
        &self,
        merchant_id: i64,
        s: &GiftcardSettings,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        exec(
            &tx,
            "INSERT INTO giftcard_settings (merchant_id, enabled, centre_entry, attempt_limit, centre_name, share_title, \
             description, phone_login, distribution, goods_display) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (merchant_id) DO UPDATE SET \
             enabled = excluded.enabled, centre_entry = excluded.centre_entry, attempt_limit = excluded.attempt_limit, \
             centre_name = excluded.centre_name, share_title = excluded.share_title, description = excluded.description, \
             phone_login = excluded.phone_login, distribution = excluded.distribution, goods_display = excluded.goods_display",
            &[
                &merchant_id,
                &s.enabled,
                &s.centre_entry,
                &s.attempt_limit,
                &s.centre_name,
                &s.share_title,
                &s.description,
                &s.phone_login,
                &s.distribution,
                &s.goods_display.code(),
            ],
        )
        .await?;
        insert_audit(&tx, audit, 1).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn put_giftcard_image(
        &self,
        merchant_id: i64,
        slot: GiftcardImageSlot,
        content_type: &str,
        bytes: &[u8],
        now: i64,
    ) -> StoreResult<()> {
        let client = self.client().await?;
        exec(
            &client,
            "INSERT INTO giftcard_images (merchant_id, slot, content_type, bytes, updated_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (merchant_id, slot) DO UPDATE SET content_type = excluded.content_type, bytes = excluded.bytes, \
             updated_at = excluded.updated_at",
            &[&merchant_id, &slot.code(), &content_type, &bytes, &now],
        )
        .await?;
        Ok(())
    }

    async fn get_giftcard_image(
        &self,
        merchant_id: i64,
        slot: GiftcardImageSlot,
    ) -> StoreResult<Option<(String, Vec<u8>)>> {
        let client = self.client().await?;
        Ok(opt(
            &client,
            "SELECT content_type, bytes FROM giftcard_images WHERE merchant_id = $1 AND slot = $2",
            &[&merchant_id, &slot.code()],
        )
        .await?
        .map(|r| (r.get(0), r.get(1))))
    }

    async fn giftcard_images(
        &self,
        merchant_id: i64,
    ) -> StoreResult<Vec<(GiftcardImageSlot, i64)>> {
        let client = self.client().await?;
        Ok(all(
            &client,
            "SELECT slot, updated_at FROM giftcard_images WHERE merchant_id = $1",
            &[&merchant_id],
        )
        .await?
        .iter()
        .filter_map(|r| Some((GiftcardImageSlot::parse(r.get(0))?, r.get(1))))
        .collect())
    }

    async fn create_giftcard_product(
        &self,
        merchant_id: i64,
        f: &GiftcardProductFields,
        now: i64,
    ) -> StoreResult<GiftcardProduct> {
        let client = self.client().await?;
        let id: i64 = opt(
            &client,
            "INSERT INTO giftcard_products (merchant_id, name, template_id, price_fen, on_shelf, created_at) \
             SELECT $1, $2, t.id, $4, $5, $6 FROM code_templates t \
             WHERE t.id = $3 AND t.merchant_id = $1 AND t.kind = 'online' AND t.deleted_at IS NULL RETURNING id",
            &[&merchant_id, &f.name, &f.template_id, &f.price_fen, &f.on_shelf, &now],
        )
        .await?
        .ok_or(StoreError::NotFound)?
        .get(0);
        Ok(product_from_row(
            &one(
                &client,
                &format!("SELECT {PRODUCT_COLUMNS} FROM giftcard_products p JOIN code_templates t ON t.id = p.template_id WHERE p.id = $1"),
                &[&id],
            )
            .await?,
        ))
    }

    async fn update_giftcard_product(
        &self,
        merchant_id: i64,
        product_id: i64,
        f: &GiftcardProductFields,
    ) -> StoreResult<()> {
        let client = self.client().await?;
        let n = exec(
            &client,
            "UPDATE giftcard_products SET name = $1, template_id = $2, price_fen = $3, on_shelf = $4 \
             WHERE id = $5 AND merchant_id = $6 AND EXISTS (SELECT 1 FROM code_templates t WHERE t.id = $2 \
             AND t.merchant_id = $6 AND t.kind = 'online' AND t.deleted_at IS NULL)",
            &[&f.name, &f.template_id, &f.price_fen, &f.on_shelf, &product_id, &merchant_id],
        )
        .await?;
        expect_one(n)
    }

    async fn list_giftcard_products(&self, merchant_id: i64) -> StoreResult<Vec<GiftcardProduct>> {
        let client = self.client().await?;
        Ok(all(
            &client,
            &format!(
                "SELECT {PRODUCT_COLUMNS} FROM giftcard_products p JOIN code_templates t ON t.id = p.template_id \
                 WHERE p.merchant_id = $1 ORDER BY p.id DESC"
            ),
            &[&merchant_id],
        )
        .await?
        .iter()
        .map(product_from_row)
        .collect())
    }
}
