//! Goods (提货商品), their images and which cards may be exchanged for them.

use crate::cards::card_filter_sql;
use crate::sql::expect_one;
use crate::sql::insert_audit;
use crate::sql::map_err;
use crate::sql::refs;
use crate::sql::Params;
use crate::sql::{exec, one, opt};
use crate::PgStore;
use deadpool_postgres::GenericClient;
use kaquan_core::audit::AuditEntry;
use kaquan_core::card::CardFilter;
use kaquan_core::goods::Goods;
use kaquan_core::goods::GoodsFields;
use kaquan_core::goods::GoodsLinkMode;
use kaquan_core::goods::GOODS_IMAGES_MAX;
use kaquan_core::goods::GOODS_PER_CARD_MAX;
use kaquan_core::{StoreError, StoreResult};
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

pub(crate) const GOODS_COLUMNS: &str =
    "goods.id, goods.merchant_id, goods.name, goods.description, goods.sku, goods.erp_code, goods.attributes, goods.on_shelf, goods.created_at, goods.updated_at";

pub(crate) fn goods_from_row(row: &Row) -> Goods {
    Goods {
        id: row.get(0),
        merchant_id: row.get(1),
        name: row.get(2),
        description: row.get(3),
        sku: row.get(4),
        erp_code: row.get(5),
        attributes: row.get(6),
        on_shelf: row.get(7),
        image_ids: Vec::new(),
        created_at: row.get(8),
        updated_at: row.get(9),
    }
}

/// Runs a goods query and fills in each goods' image ids, in upload order.
pub(crate) async fn query_goods(
    client: &impl GenericClient,
    merchant_id: i64,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> StoreResult<Vec<Goods>> {
    let statement = client.prepare_cached(sql).await.map_err(map_err)?;
    let rows = client.query(&statement, params).await.map_err(map_err)?;
    let mut goods: Vec<Goods> = rows.iter().map(goods_from_row).collect();
    if goods.is_empty() {
        return Ok(goods);
    }
    let images_sql = "SELECT goods_id, id FROM goods_images WHERE merchant_id = $1 ORDER BY id";
    let images_statement = client.prepare_cached(images_sql).await.map_err(map_err)?;
    let images = client
        .query(&images_statement, &[&merchant_id])
        .await
        .map_err(map_err)?;
    for image in images {
        let goods_id: i64 = image.get(0);
        if let Some(g) = goods.iter_mut().find(|g| g.id == goods_id) {
            g.image_ids.push(image.get(1));
        }
    }
    Ok(goods)
}

#[async_trait::async_trait]
impl kaquan_core::goods::GoodsStore for PgStore {
    async fn create_goods(
        &self,
        merchant_id: i64,
        f: &GoodsFields,
        now: i64,
    ) -> StoreResult<Goods> {
        let row = one(&self.client().await?, "INSERT INTO goods (merchant_id, name, description, sku, erp_code, attributes, on_shelf, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) RETURNING id",
                &[&merchant_id, &f.name, &f.description, &f.sku, &f.erp_code, &f.attributes, &f.on_shelf, &now]).await?;
        Ok(Goods {
            id: row.get(0),
            merchant_id,
            name: f.name.clone(),
            description: f.description.clone(),
            sku: f.sku.clone(),
            erp_code: f.erp_code.clone(),
            attributes: f.attributes.clone(),
            on_shelf: f.on_shelf,
            image_ids: Vec::new(),
            created_at: now,
            updated_at: now,
        })
    }

    async fn update_goods(
        &self,
        merchant_id: i64,
        goods_id: i64,
        f: &GoodsFields,
        now: i64,
    ) -> StoreResult<()> {
        let n = exec(&self.client().await?, "UPDATE goods SET name = $1, description = $2, sku = $3, erp_code = $4, attributes = $5, on_shelf = $6, \
                 updated_at = $7 WHERE id = $8 AND merchant_id = $9",
                &[&f.name, &f.description, &f.sku, &f.erp_code, &f.attributes, &f.on_shelf, &now, &goods_id, &merchant_id]).await?;
        expect_one(n)
    }

    async fn list_goods(&self, merchant_id: i64, on_shelf_only: bool) -> StoreResult<Vec<Goods>> {
        let client = self.client().await?;
        let shelf = if on_shelf_only {
            " AND goods.on_shelf"
        } else {
            ""
        };
        let sql = format!("SELECT {GOODS_COLUMNS} FROM goods WHERE goods.merchant_id = $1{shelf} ORDER BY goods.id");
        query_goods(&client, merchant_id, &sql, &[&merchant_id]).await
    }

    async fn get_goods(&self, merchant_id: i64, goods_id: i64) -> StoreResult<Goods> {
        let client = self.client().await?;
        let sql = format!(
            "SELECT {GOODS_COLUMNS} FROM goods WHERE goods.merchant_id = $1 AND goods.id = $2"
        );
        query_goods(&client, merchant_id, &sql, &[&merchant_id, &goods_id])
            .await?
            .pop()
            .ok_or(StoreError::NotFound)
    }

    async fn add_goods_image(
        &self,
        merchant_id: i64,
        goods_id: i64,
        content_type: &str,
        bytes: &[u8],
        now: i64,
    ) -> StoreResult<i64> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        // Locking the goods row serialises concurrent uploads, so the image limit holds.
        opt(
            &tx,
            "SELECT id FROM goods WHERE id = $1 AND merchant_id = $2 FOR UPDATE",
            &[&goods_id, &merchant_id],
        )
        .await?
        .ok_or(StoreError::NotFound)?;
        let n: i64 = one(
            &tx,
            "SELECT count(*) FROM goods_images WHERE goods_id = $1",
            &[&goods_id],
        )
        .await?
        .get(0);
        if n as usize >= GOODS_IMAGES_MAX {
            return Err(StoreError::Invalid("too many images".into()));
        }
        let row = one(&tx, "INSERT INTO goods_images (merchant_id, goods_id, content_type, bytes, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
                &[&merchant_id, &goods_id, &content_type, &bytes, &now]).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(row.get(0))
    }

    async fn delete_goods_image(
        &self,
        merchant_id: i64,
        goods_id: i64,
        image_id: i64,
    ) -> StoreResult<()> {
        let n = exec(
            &self.client().await?,
            "DELETE FROM goods_images WHERE id = $1 AND goods_id = $2 AND merchant_id = $3",
            &[&image_id, &goods_id, &merchant_id],
        )
        .await?;
        expect_one(n)
    }

    async fn get_goods_image(
        &self,
        merchant_id: i64,
        image_id: i64,
    ) -> StoreResult<(String, Vec<u8>)> {
        let row = opt(
            &self.client().await?,
            "SELECT content_type, bytes FROM goods_images WHERE id = $1 AND merchant_id = $2",
            &[&image_id, &merchant_id],
        )
        .await?
        .ok_or(StoreError::NotFound)?;
        Ok((row.get(0), row.get(1)))
    }

    async fn link_card_goods(
        &self,
        merchant_id: i64,
        filter: &CardFilter,
        goods_ids: &[i64],
        mode: GoodsLinkMode,
        audit: &AuditEntry,
    ) -> StoreResult<i64> {
        let mut goods_ids = goods_ids.to_vec();
        goods_ids.sort_unstable();
        goods_ids.dedup();
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let n: i64 = one(
            &tx,
            "SELECT count(*) FROM goods WHERE merchant_id = $1 AND id = ANY($2)",
            &[&merchant_id, &goods_ids],
        )
        .await?
        .get(0);
        if n as usize != goods_ids.len() {
            return Err(StoreError::NotFound);
        }
        let mut params: Params = Vec::new();
        let condition = card_filter_sql(merchant_id, filter, &mut params);
        let n_cards: i64 = one(
            &tx,
            &format!("SELECT count(*) FROM cards WHERE {condition}"),
            &refs(&params),
        )
        .await?
        .get(0);
        if mode == GoodsLinkMode::Replace {
            exec(&tx, &format!("DELETE FROM card_goods WHERE card_id IN (SELECT cards.id FROM cards WHERE {condition})"), &refs(&params)).await?;
        }
        let goods_placeholder = params.len() + 1;
        params.push(Box::new(goods_ids.clone()));
        exec(&tx, &format!(
                "INSERT INTO card_goods (card_id, goods_id, merchant_id) SELECT cards.id, g, cards.merchant_id FROM cards, unnest(${goods_placeholder}::bigint[]) AS g \
                 WHERE {condition} ON CONFLICT DO NOTHING"
            ),
            &refs(&params)).await?;
        params.pop();
        let overfull: i64 = one(&tx, &format!(
                    "SELECT count(*) FROM (SELECT card_id FROM card_goods WHERE card_id IN \
                     (SELECT cards.id FROM cards WHERE {condition}) GROUP BY card_id HAVING count(*) > {GOODS_PER_CARD_MAX}) AS o"
                ),
                &refs(&params)).await?
            .get(0);
        if overfull > 0 {
            return Err(StoreError::Invalid(format!(
                "a card may be linked to at most {GOODS_PER_CARD_MAX} goods"
            )));
        }
        insert_audit(&tx, audit, n_cards).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(n_cards)
    }

    async fn goods_of_card(&self, merchant_id: i64, card_id: i64) -> StoreResult<Vec<Goods>> {
        let client = self.client().await?;
        let sql = format!(
            "SELECT {GOODS_COLUMNS} FROM goods JOIN card_goods ON card_goods.goods_id = goods.id \
             WHERE goods.merchant_id = $1 AND card_goods.card_id = $2 ORDER BY goods.id"
        );
        query_goods(&client, merchant_id, &sql, &[&merchant_id, &card_id]).await
    }

    async fn goods_names_of_cards(
        &self,
        merchant_id: i64,
        card_ids: &[i64],
    ) -> StoreResult<Vec<(i64, String)>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT card_goods.card_id, goods.name FROM card_goods JOIN goods ON goods.id = card_goods.goods_id \
                 WHERE card_goods.card_id = ANY($1) AND goods.merchant_id = $2 ORDER BY card_goods.card_id, goods.id",
                &[&card_ids, &merchant_id],
            )
            .await
            .map_err(crate::sql::map_err)?;
        let names: Vec<(i64, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        // In the order the cards were asked for.
        Ok(card_ids
            .iter()
            .flat_map(|id| names.iter().filter(move |(c, _)| c == id).cloned())
            .collect())
    }
}
