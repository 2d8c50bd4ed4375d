//! Goods (提货商品), their images and which cards may be exchanged for them.

use crate::cards::card_filter_sql;
use crate::sql::expect_one;
use crate::sql::insert_audit;
use crate::sql::map_err;
use crate::SqliteStore;
use kaquan_core::audit::AuditEntry;
use kaquan_core::card::CardFilter;
use kaquan_core::goods::Goods;
use kaquan_core::goods::GoodsFields;
use kaquan_core::goods::GoodsLinkMode;
use kaquan_core::goods::GOODS_PER_CARD_MAX;
use kaquan_core::{StoreError, StoreResult};
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, Row};

pub(crate) const GOODS_COLUMNS: &str =
    "goods.id, goods.merchant_id, goods.name, goods.description, goods.sku, goods.erp_code, goods.attributes, goods.on_shelf, goods.created_at, goods.updated_at";

pub(crate) fn goods_from_row(row: &Row) -> rusqlite::Result<Goods> {
    Ok(Goods {
        id: row.get(0)?,
        merchant_id: row.get(1)?,
        name: row.get(2)?,
        description: row.get(3)?,
        sku: row.get(4)?,
        erp_code: row.get(5)?,
        attributes: row.get(6)?,
        on_shelf: row.get(7)?,
        image_ids: Vec::new(),
        created_at: row.get(8)?,
        updated_at: row.get(9)?,
    })
}

/// Fills in each goods' image ids, in upload order.
pub(crate) fn attach_images(
    conn: &Connection,
    merchant_id: i64,
    goods: &mut [Goods],
) -> StoreResult<()> {
    if goods.is_empty() {
        return Ok(());
    }
    let mut stmt = conn
        .prepare_cached("SELECT goods_id, id FROM goods_images WHERE merchant_id = ?1 ORDER BY id")
        .map_err(map_err)?;
    let rows = stmt
        .query_map([merchant_id], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
        })
        .map_err(map_err)?;
    for row in rows {
        let (goods_id, image_id) = row.map_err(map_err)?;
        if let Some(g) = goods.iter_mut().find(|g| g.id == goods_id) {
            g.image_ids.push(image_id);
        }
    }
    Ok(())
}

pub(crate) fn query_goods(
    conn: &Connection,
    merchant_id: i64,
    sql: &str,
    values: Vec<Value>,
) -> StoreResult<Vec<Goods>> {
    let mut stmt = conn.prepare(sql).map_err(map_err)?;
    let rows = stmt
        .query_map(params_from_iter(values), goods_from_row)
        .map_err(map_err)?;
    let mut goods: Vec<Goods> = rows.collect::<Result<_, _>>().map_err(map_err)?;
    attach_images(conn, merchant_id, &mut goods)?;
    Ok(goods)
}

#[async_trait::async_trait]
impl kaquan_core::goods::GoodsStore for SqliteStore {
    async fn create_goods(
        &self,
        merchant_id: i64,
        f: &GoodsFields,
        now: i64,
    ) -> StoreResult<Goods> {
        let f = f.clone();
        self.write(move |conn| {
            let id: i64 = conn
                .query_row(
                    "INSERT INTO goods (merchant_id, name, description, sku, erp_code, attributes, on_shelf, created_at, updated_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8) RETURNING id",
                    params![merchant_id, f.name, f.description, f.sku, f.erp_code, f.attributes, f.on_shelf, now],
                    |r| r.get(0),
                )
                .map_err(map_err)?;
            Ok(Goods {
                id,
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
        })
        .await
    }

    async fn update_goods(
        &self,
        merchant_id: i64,
        goods_id: i64,
        f: &GoodsFields,
        now: i64,
    ) -> StoreResult<()> {
        let f = f.clone();
        self.write(move |conn| {
            let n = conn
                .execute(
                    "UPDATE goods SET name = ?1, description = ?2, sku = ?3, erp_code = ?4, attributes = ?5, on_shelf = ?6, \
                     updated_at = ?7 WHERE id = ?8 AND merchant_id = ?9",
                    params![f.name, f.description, f.sku, f.erp_code, f.attributes, f.on_shelf, now, goods_id, merchant_id],
                )
                .map_err(map_err)?;
            expect_one(n)
        })
        .await
    }

    async fn list_goods(&self, merchant_id: i64, on_shelf_only: bool) -> StoreResult<Vec<Goods>> {
        self.read(move |conn| {
            let shelf = if on_shelf_only { " AND goods.on_shelf = 1" } else { "" };
            let sql = format!("SELECT {GOODS_COLUMNS} FROM goods WHERE goods.merchant_id = ?1{shelf} ORDER BY goods.id");
            query_goods(conn, merchant_id, &sql, vec![Value::Integer(merchant_id)])
        })
        .await
    }

    async fn get_goods(&self, merchant_id: i64, goods_id: i64) -> StoreResult<Goods> {
        self.read(move |conn| {
            let sql = format!(
                "SELECT {GOODS_COLUMNS} FROM goods WHERE goods.merchant_id = ?1 AND goods.id = ?2"
            );
            query_goods(
                conn,
                merchant_id,
                &sql,
                vec![Value::Integer(merchant_id), Value::Integer(goods_id)],
            )?
            .pop()
            .ok_or(StoreError::NotFound)
        })
        .await
    }

    async fn add_goods_image(
        &self,
        merchant_id: i64,
        goods_id: i64,
        content_type: &str,
        bytes: &[u8],
        now: i64,
    ) -> StoreResult<i64> {
        let (content_type, bytes) = (content_type.to_owned(), bytes.to_vec());
        self.write(move |conn| {
            let n: i64 = conn
                .query_row(
                    "SELECT (SELECT count(*) FROM goods WHERE id = ?1 AND merchant_id = ?2), \
                     (SELECT count(*) FROM goods_images WHERE goods_id = ?1)",
                    params![goods_id, merchant_id],
                    |r| {
                        let exists: i64 = r.get(0)?;
                        let images: i64 = r.get(1)?;
                        Ok(if exists == 1 { images } else { -1 })
                    },
                )
                .map_err(map_err)?;
            if n < 0 {
                return Err(StoreError::NotFound);
            }
            if n as usize >= kaquan_core::goods::GOODS_IMAGES_MAX {
                return Err(StoreError::Invalid("too many images".into()));
            }
            conn.query_row(
                "INSERT INTO goods_images (merchant_id, goods_id, content_type, bytes, created_at) VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
                params![merchant_id, goods_id, content_type, bytes, now],
                |r| r.get(0),
            )
            .map_err(map_err)
        })
        .await
    }

    async fn delete_goods_image(
        &self,
        merchant_id: i64,
        goods_id: i64,
        image_id: i64,
    ) -> StoreResult<()> {
        self.write(move |conn| {
            let n = conn
                .execute(
                    "DELETE FROM goods_images WHERE id = ?1 AND goods_id = ?2 AND merchant_id = ?3",
                    params![image_id, goods_id, merchant_id],
                )
                .map_err(map_err)?;
            expect_one(n)
        })
        .await
    }

    async fn get_goods_image(
        &self,
        merchant_id: i64,
        image_id: i64,
    ) -> StoreResult<(String, Vec<u8>)> {
        self.read(move |conn| {
            conn.query_row(
                "SELECT content_type, bytes FROM goods_images WHERE id = ?1 AND merchant_id = ?2",
                params![image_id, merchant_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(map_err)
        })
        .await
    }

    async fn link_card_goods(
        &self,
        merchant_id: i64,
        filter: &CardFilter,
        goods_ids: &[i64],
        mode: GoodsLinkMode,
        audit: &AuditEntry,
    ) -> StoreResult<i64> {
        let (condition, values) = card_filter_sql(merchant_id, filter);
        let mut goods_ids = goods_ids.to_vec();
        goods_ids.sort_unstable();
        goods_ids.dedup();
        let audit = audit.clone();
        self.write(move |conn| {
            for goods_id in &goods_ids {
                let n: i64 = conn
                    .query_row("SELECT count(*) FROM goods WHERE id = ?1 AND merchant_id = ?2", params![goods_id, merchant_id], |r| r.get(0))
                    .map_err(map_err)?;
                if n != 1 {
                    return Err(StoreError::NotFound);
                }
            }
            let n_cards: i64 = conn
                .query_row(&format!("SELECT count(*) FROM cards WHERE {condition}"), params_from_iter(values.clone()), |r| r.get(0))
                .map_err(map_err)?;
            if mode == GoodsLinkMode::Replace {
                conn.execute(
                    &format!("DELETE FROM card_goods WHERE card_id IN (SELECT cards.id FROM cards WHERE {condition})"),
                    params_from_iter(values.clone()),
                )
                .map_err(map_err)?;
            }
            for goods_id in &goods_ids {
                let bound = std::iter::once(Value::Integer(*goods_id)).chain(values.iter().cloned());
                conn.execute(
                    &format!("INSERT OR IGNORE INTO card_goods (card_id, goods_id) SELECT cards.id, ? FROM cards WHERE {condition}"),
                    params_from_iter(bound),
                )
                .map_err(map_err)?;
            }
            let overfull: i64 = conn
                .query_row(
                    &format!(
                        "SELECT count(*) FROM (SELECT card_id FROM card_goods WHERE card_id IN \
                         (SELECT cards.id FROM cards WHERE {condition}) GROUP BY card_id HAVING count(*) > {GOODS_PER_CARD_MAX})"
                    ),
                    params_from_iter(values.iter()),
                    |r| r.get(0),
                )
                .map_err(map_err)?;
            if overfull > 0 {
                return Err(StoreError::Invalid(format!("a card may be linked to at most {GOODS_PER_CARD_MAX} goods")));
            }
            insert_audit(conn, &audit, n_cards).map_err(map_err)?;
            Ok(n_cards)
        })
        .await
    }

    async fn goods_of_card(&self, merchant_id: i64, card_id: i64) -> StoreResult<Vec<Goods>> {
        self.read(move |conn| {
            let sql = format!(
                "SELECT {GOODS_COLUMNS} FROM goods JOIN card_goods ON card_goods.goods_id = goods.id \
                 WHERE goods.merchant_id = ?1 AND card_goods.card_id = ?2 ORDER BY goods.id"
            );
            query_goods(conn, merchant_id, &sql, vec![Value::Integer(merchant_id), Value::Integer(card_id)])
        })
        .await
    }

    async fn goods_names_of_cards(
        &self,
        merchant_id: i64,
        card_ids: &[i64],
    ) -> StoreResult<Vec<(i64, String)>> {
        let ids = card_ids.to_vec();
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT goods.name FROM card_goods JOIN goods ON goods.id = card_goods.goods_id \
                     WHERE card_goods.card_id = ?1 AND goods.merchant_id = ?2 ORDER BY goods.id",
                )
                .map_err(map_err)?;
            let mut names = Vec::new();
            for card_id in ids {
                let rows = stmt
                    .query_map(params![card_id, merchant_id], |r| r.get::<_, String>(0))
                    .map_err(map_err)?;
                for name in rows {
                    names.push((card_id, name.map_err(map_err)?));
                }
            }
            Ok(names)
        })
        .await
    }
}
