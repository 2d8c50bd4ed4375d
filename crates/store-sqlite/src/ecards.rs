//! 电子卡密: products and their listings, sealed stock, marketplace orders
//! and the cards delivered to them. The single writer runs each paid event
//! alone, so the stock a line counts is the stock its guarded statement
//! takes; each line is delivered once because its `delivered_at` is set by
//! one guarded statement in the same transaction as the deliveries, the
//! audit record and the event.

use crate::ecard_orders::{
    expiry_job, find_card, order_by_id, order_condition, order_from_row, order_where, paid_job,
    refund_job, reveal_job, verify_job, waiting_job, with_lines, ORDER_COLUMNS,
};
use crate::sql::{
    cached_execute, cached_row, decode, expect_one, filtered_page, insert_audit, map_err,
};
use crate::SqliteStore;
use kaquan_core::audit::Actor;
use kaquan_core::ecard::audit as ecard_audit;
use kaquan_core::ecard::{
    DeliveredCard, DeliveryFact, DeliveryForm, EcardOrder, EcardProduct, EcardProductFields,
    EcardRefusal, EcardStore, EcardValidity, EcardVerification, Listing, Marketplace, NewStock,
    OrderFilter, OrderRefund, OrderRefusal, PaidOrder, PaidOutcome, Reveal, StockCounts,
    StockFilter, StockImport, StockItem, StockState, VerifyEcard, VerifyTarget,
};
use kaquan_core::store::Page;
use kaquan_core::StoreResult;
use rusqlite::types::Value;
use rusqlite::{params, Connection, OptionalExtension, Row};

const PRODUCT_COLUMNS: &str =
    "id, merchant_id, name, face_value_fen, delivery_form, instructions, \
    valid_until, valid_days, own_code, low_stock_threshold, created_at, updated_at, remind_days, refund_expired";

fn product_from_row(r: &Row) -> rusqlite::Result<EcardProduct> {
    let form: String = r.get(4)?;
    let valid_until: Option<i64> = r.get(6)?;
    let valid_days: Option<i64> = r.get(7)?;
    Ok(EcardProduct {
        id: r.get(0)?,
        merchant_id: r.get(1)?,
        fields: EcardProductFields {
            name: r.get(2)?,
            face_value_fen: r.get(3)?,
            delivery_form: decode(DeliveryForm::parse(&form), 4, "delivery form")?,
            instructions: r.get(5)?,
            validity: match (valid_until, valid_days) {
                (Some(end), _) => EcardValidity::Until(end),
                (None, days) => EcardValidity::DaysAfterDelivery(days.unwrap_or(1)),
            },
            own_verification_code: r.get(8)?,
            listings: Vec::new(),
            remind_days: r.get(12)?,
            refund_expired: r.get(13)?,
        },
        low_stock_threshold: r.get(9)?,
        created_at: r.get(10)?,
        updated_at: r.get(11)?,
    })
}

fn validity_columns(v: EcardValidity) -> (Option<i64>, Option<i64>) {
    match v {
        EcardValidity::Until(end) => (Some(end), None),
        EcardValidity::DaysAfterDelivery(days) => (None, Some(days)),
    }
}

fn listings_of(conn: &Connection, product_id: i64) -> StoreResult<Vec<Listing>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT marketplace, listing_id, sku_id FROM ecard_listings WHERE product_id = ?1 ORDER BY id",
        )
        .map_err(map_err)?;
    let rows = stmt
        .query_map([product_id], |r| {
            let m: String = r.get(0)?;
            Ok(Listing {
                marketplace: decode(Marketplace::parse(&m), 0, "marketplace")?,
                product_id: r.get(1)?,
                sku_id: r.get(2)?,
            })
        })
        .map_err(map_err)?;
    rows.collect::<Result<_, _>>().map_err(map_err)
}

/// A product without its listings.
pub(crate) fn product_row(
    conn: &Connection,
    merchant_id: i64,
    id: i64,
) -> StoreResult<EcardProduct> {
    cached_row(
        conn,
        &format!("SELECT {PRODUCT_COLUMNS} FROM ecard_products WHERE merchant_id = ?1 AND id = ?2"),
        [merchant_id, id],
        product_from_row,
    )
    .map_err(map_err)
}

pub(crate) fn get_product(
    conn: &Connection,
    merchant_id: i64,
    id: i64,
) -> StoreResult<EcardProduct> {
    let mut product = product_row(conn, merchant_id, id)?;
    product.fields.listings = listings_of(conn, id)?;
    Ok(product)
}

fn put_listings(conn: &Connection, product: &EcardProduct) -> StoreResult<()> {
    cached_execute(
        conn,
        "DELETE FROM ecard_listings WHERE product_id = ?1",
        [product.id],
    )
    .map_err(map_err)?;
    for l in &product.fields.listings {
        cached_execute(
            conn,
            "INSERT INTO ecard_listings (merchant_id, product_id, marketplace, listing_id, sku_id) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![product.merchant_id, product.id, l.marketplace.code(), l.product_id.trim(), l.sku_id.trim()],
        )
        .map_err(map_err)?;
    }
    Ok(())
}

fn counts_of(conn: &Connection, product_id: i64, now: i64) -> StoreResult<StockCounts> {
    let (available, voided): (i64, i64) = cached_row(
        conn,
        "SELECT coalesce(sum(state = 'available'), 0), coalesce(sum(state = 'voided'), 0) \
         FROM ecard_stock WHERE product_id = ?1",
        [product_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .map_err(map_err)?;
    let (used, expired, delivered): (i64, i64, i64) = cached_row(
        conn,
        "SELECT coalesce(sum(verified_at IS NOT NULL), 0), \
                coalesce(sum(verified_at IS NULL AND valid_until < ?2), 0), \
                coalesce(sum(verified_at IS NULL AND valid_until >= ?2), 0) \
         FROM ecard_deliveries WHERE product_id = ?1 AND refunded_at IS NULL",
        [product_id, now],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
    .map_err(map_err)?;
    Ok(StockCounts {
        available,
        delivered,
        used,
        expired,
        voided,
    })
}

const STOCK_COLUMNS: &str = "id, product_id, import_id, tail, state, created_at";

fn stock_from_row(r: &Row) -> rusqlite::Result<StockItem> {
    let state: String = r.get(4)?;
    Ok(StockItem {
        id: r.get(0)?,
        product_id: r.get(1)?,
        import_id: r.get(2)?,
        tail: r.get(3)?,
        state: decode(StockState::parse(&state), 4, "stock state")?,
        created_at: r.get(5)?,
    })
}

const IMPORT_COLUMNS: &str =
    "id, merchant_id, product_id, file_name, file_digest, n_rows, n_imported, created_by, created_at";

fn import_from_row(r: &Row) -> rusqlite::Result<StockImport> {
    Ok(StockImport {
        id: r.get(0)?,
        merchant_id: r.get(1)?,
        product_id: r.get(2)?,
        file_name: r.get(3)?,
        file_digest: r.get(4)?,
        n_rows: r.get(5)?,
        n_imported: r.get(6)?,
        created_by: r.get(7)?,
        created_at: r.get(8)?,
    })
}

fn add_stock(conn: &Connection, stock: &NewStock) -> StoreResult<StockImport> {
    get_product(conn, stock.merchant_id, stock.product_id)?;
    let id: i64 = cached_row(
        conn,
        "INSERT INTO ecard_stock_imports (merchant_id, product_id, file_name, file_digest, n_rows, n_imported, created_by, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) RETURNING id",
        params![stock.merchant_id, stock.product_id, stock.file_name, stock.file_digest, stock.n_rows, stock.items.len() as i64, stock.actor.label, stock.now],
        |r| r.get(0),
    )
    .map_err(map_err)?;
    let mut insert = conn
        .prepare_cached(
            "INSERT INTO ecard_stock (merchant_id, product_id, import_id, key_version, digest, sealed, tail, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .map_err(map_err)?;
    for item in &stock.items {
        insert
            .execute(params![
                stock.merchant_id,
                stock.product_id,
                id,
                stock.key_version,
                item.digest,
                item.sealed,
                item.tail,
                stock.now
            ])
            .map_err(map_err)?;
    }
    let audit = ecard_audit::import(stock, id);
    insert_audit(conn, &audit, stock.items.len() as i64).map_err(map_err)?;
    cached_row(
        conn,
        &format!("SELECT {IMPORT_COLUMNS} FROM ecard_stock_imports WHERE id = ?1"),
        [id],
        import_from_row,
    )
    .map_err(map_err)
}

#[async_trait::async_trait]
impl EcardStore for SqliteStore {
    async fn create_ecard_product(
        &self,
        merchant_id: i64,
        fields: &EcardProductFields,
        low_stock_threshold: i64,
        actor: &Actor,
        now: i64,
    ) -> StoreResult<EcardProduct> {
        let (fields, actor) = (fields.clone(), actor.clone());
        self.write(move |conn| {
            let (until, days) = validity_columns(fields.validity);
            let id: i64 = cached_row(
                conn,
                "INSERT INTO ecard_products (merchant_id, name, face_value_fen, delivery_form, instructions, valid_until, \
                 valid_days, own_code, low_stock_threshold, created_at, updated_at, remind_days, refund_expired) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10, ?11, ?12) RETURNING id",
                params![merchant_id, fields.name.trim(), fields.face_value_fen, fields.delivery_form.code(), fields.instructions,
                    until, days, fields.own_verification_code, low_stock_threshold, now, fields.remind_days, fields.refund_expired],
                |r| r.get(0),
            )
            .map_err(map_err)?;
            let product = EcardProduct { id, merchant_id, fields: fields.clone(), low_stock_threshold, created_at: now, updated_at: now };
            put_listings(conn, &product)?;
            insert_audit(conn, &ecard_audit::product(&product, "create_ecard_product", &actor, now), 1).map_err(map_err)?;
            get_product(conn, merchant_id, id)
        })
        .await
    }

    async fn update_ecard_product(
        &self,
        product: &EcardProduct,
        actor: &Actor,
    ) -> StoreResult<EcardProduct> {
        let (product, actor) = (product.clone(), actor.clone());
        self.write(move |conn| {
            let f = &product.fields;
            let (until, days) = validity_columns(f.validity);
            let n = cached_execute(
                conn,
                "UPDATE ecard_products SET name = ?3, face_value_fen = ?4, delivery_form = ?5, instructions = ?6, \
                 valid_until = ?7, valid_days = ?8, own_code = ?9, low_stock_threshold = ?10, updated_at = ?11, \
                 remind_days = ?12, refund_expired = ?13 \
                 WHERE merchant_id = ?1 AND id = ?2",
                params![product.merchant_id, product.id, f.name.trim(), f.face_value_fen, f.delivery_form.code(), f.instructions,
                    until, days, f.own_verification_code, product.low_stock_threshold, product.updated_at,
                    f.remind_days, f.refund_expired],
            )
            .map_err(map_err)?;
            expect_one(n)?;
            put_listings(conn, &product)?;
            let audit = ecard_audit::product(&product, "update_ecard_product", &actor, product.updated_at);
            insert_audit(conn, &audit, 1).map_err(map_err)?;
            get_product(conn, product.merchant_id, product.id)
        })
        .await
    }

    async fn get_ecard_product(&self, merchant_id: i64, id: i64) -> StoreResult<EcardProduct> {
        self.read(move |conn| get_product(conn, merchant_id, id))
            .await
    }

    async fn list_ecard_products(&self, merchant_id: i64) -> StoreResult<Vec<EcardProduct>> {
        self.read(move |conn| {
            let ids: Vec<i64> = {
                let mut stmt = conn
                    .prepare_cached(
                        "SELECT id FROM ecard_products WHERE merchant_id = ?1 ORDER BY id DESC",
                    )
                    .map_err(map_err)?;
                let rows = stmt
                    .query_map([merchant_id], |r| r.get(0))
                    .map_err(map_err)?;
                rows.collect::<Result<_, _>>().map_err(map_err)?
            };
            ids.into_iter()
                .map(|id| get_product(conn, merchant_id, id))
                .collect()
        })
        .await
    }

    async fn ecard_stock_counts(
        &self,
        merchant_id: i64,
        product_id: i64,
        now: i64,
    ) -> StoreResult<StockCounts> {
        self.read(move |conn| {
            product_row(conn, merchant_id, product_id)?;
            counts_of(conn, product_id, now)
        })
        .await
    }

    async fn known_ecard_digests(
        &self,
        merchant_id: i64,
        digests: &[Vec<u8>],
    ) -> StoreResult<Vec<Vec<u8>>> {
        let digests = digests.to_vec();
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached("SELECT 1 FROM ecard_stock WHERE merchant_id = ?1 AND digest = ?2")
                .map_err(map_err)?;
            let mut known = Vec::new();
            for d in digests {
                if stmt.exists(params![merchant_id, d]).map_err(map_err)? {
                    known.push(d);
                }
            }
            Ok(known)
        })
        .await
    }

    async fn add_ecard_stock(&self, stock: &NewStock) -> StoreResult<StockImport> {
        let stock = std::sync::Arc::new(stock.clone());
        self.write(move |conn| add_stock(conn, &stock)).await
    }

    async fn list_ecard_stock(
        &self,
        filter: &StockFilter,
        page: Page,
    ) -> StoreResult<(Vec<StockItem>, i64)> {
        let filter = filter.clone();
        self.read(move |conn| {
            let mut condition = "merchant_id = ?".to_owned();
            let mut values = vec![Value::Integer(filter.merchant_id)];
            if let Some(p) = filter.product_id {
                condition.push_str(" AND product_id = ?");
                values.push(Value::Integer(p));
            }
            if let Some(s) = filter.state {
                condition.push_str(" AND state = ?");
                values.push(Value::Text(s.code().into()));
            }
            filtered_page(
                conn,
                ("ecard_stock", STOCK_COLUMNS, "id DESC"),
                &condition,
                values,
                page,
                stock_from_row,
            )
        })
        .await
    }

    async fn list_stock_imports(
        &self,
        merchant_id: i64,
        product_id: i64,
    ) -> StoreResult<Vec<StockImport>> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {IMPORT_COLUMNS} FROM ecard_stock_imports WHERE merchant_id = ?1 AND product_id = ?2 ORDER BY id DESC"
                ))
                .map_err(map_err)?;
            let rows = stmt.query_map([merchant_id, product_id], import_from_row).map_err(map_err)?;
            rows.collect::<Result<_, _>>().map_err(map_err)
        })
        .await
    }

    async fn reveal_stock(
        &self,
        merchant_id: i64,
        stock_id: i64,
        actor: &Actor,
        now: i64,
    ) -> StoreResult<(i32, Vec<u8>)> {
        let actor = actor.clone();
        self.write(move |conn| {
            let (product_id, tail, key_version, sealed): (i64, String, i32, Vec<u8>) = cached_row(
                conn,
                "SELECT product_id, tail, key_version, sealed FROM ecard_stock WHERE merchant_id = ?1 AND id = ?2",
                [merchant_id, stock_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .map_err(map_err)?;
            let audit = ecard_audit::stock_revealed(merchant_id, &actor, (product_id, stock_id, &tail), now);
            insert_audit(conn, &audit, 1).map_err(map_err)?;
            Ok((key_version, sealed))
        })
        .await
    }

    async fn record_paid_order(
        &self,
        paid: &PaidOrder,
    ) -> StoreResult<Result<PaidOutcome, OrderRefusal>> {
        let paid = std::sync::Arc::new(paid.clone());
        self.write(move |conn| paid_job(conn, &paid)).await
    }

    async fn record_refund(&self, refund: &OrderRefund) -> StoreResult<EcardOrder> {
        let refund = refund.clone();
        self.write(move |conn| refund_job(conn, &refund)).await
    }

    async fn deliver_waiting(&self, merchant_id: i64, actor: &Actor, now: i64) -> StoreResult<i64> {
        let actor = actor.clone();
        self.write(move |conn| waiting_job(conn, merchant_id, &actor, now))
            .await
    }

    async fn get_ecard_order(&self, merchant_id: i64, id: i64) -> StoreResult<EcardOrder> {
        self.read(move |conn| order_by_id(conn, merchant_id, id))
            .await
    }

    async fn find_ecard_order_by_token(
        &self,
        merchant_id: i64,
        token_hash: &str,
    ) -> StoreResult<Option<EcardOrder>> {
        let token_hash = token_hash.to_owned();
        self.read(move |conn| {
            order_where(
                conn,
                "merchant_id = ? AND token_hash = ?",
                vec![Value::Integer(merchant_id), Value::Text(token_hash)],
            )
        })
        .await
    }

    async fn list_ecard_orders(
        &self,
        filter: &OrderFilter,
        page: Page,
    ) -> StoreResult<(Vec<EcardOrder>, i64)> {
        let filter = filter.clone();
        self.read(move |conn| {
            let (condition, values) = order_condition(&filter);
            let columns = ORDER_COLUMNS
                .split(", ")
                .map(|c| format!("o.{c}"))
                .collect::<Vec<_>>()
                .join(", ");
            let (orders, total) = filtered_page(
                conn,
                ("ecard_orders o", &columns, "o.id DESC"),
                &condition,
                values,
                page,
                order_from_row,
            )?;
            let orders = orders
                .into_iter()
                .map(|o| with_lines(conn, o))
                .collect::<StoreResult<_>>()?;
            Ok((orders, total))
        })
        .await
    }

    async fn reveal_ecard(&self, reveal: &Reveal) -> StoreResult<DeliveredCard> {
        let reveal = reveal.clone();
        self.write(move |conn| reveal_job(conn, &reveal)).await
    }

    async fn verify_ecard(
        &self,
        verify: &VerifyEcard,
    ) -> StoreResult<Result<EcardVerification, EcardRefusal>> {
        let verify = std::sync::Arc::new(verify.clone());
        self.write(move |conn| verify_job(conn, &verify)).await
    }

    async fn get_ecard_proof(
        &self,
        merchant_id: i64,
        delivery_id: i64,
    ) -> StoreResult<Option<(String, Vec<u8>)>> {
        self.read(move |conn| {
            cached_row(
                conn,
                "SELECT content_type, bytes FROM ecard_proofs WHERE merchant_id = ?1 AND delivery_id = ?2",
                [merchant_id, delivery_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(map_err)
        })
        .await
    }

    async fn list_delivery_facts(
        &self,
        merchant_id: i64,
        from: i64,
        to: i64,
    ) -> StoreResult<Vec<DeliveryFact>> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT d.product_id, o.marketplace, d.delivered_at, d.valid_until, d.verified_at, d.refunded_at \
                     FROM ecard_deliveries d JOIN ecard_orders o ON o.id = d.order_ref \
                     WHERE d.merchant_id = ?1 AND d.delivered_at >= ?2 AND d.delivered_at < ?3",
                )
                .map_err(map_err)?;
            let rows = stmt
                .query_map([merchant_id, from, to], |r| {
                    let m: String = r.get(1)?;
                    Ok(DeliveryFact {
                        product_id: r.get(0)?,
                        marketplace: decode(Marketplace::parse(&m), 1, "marketplace")?,
                        delivered_at: r.get(2)?,
                        facts: kaquan_core::ecard::DeliveredFacts {
                            valid_until: r.get(3)?,
                            verified_at: r.get(4)?,
                            refunded_at: r.get(5)?,
                        },
                    })
                })
                .map_err(map_err)?;
            rows.collect::<Result<_, _>>().map_err(map_err)
        })
        .await
    }

    async fn find_ecard_card(
        &self,
        merchant_id: i64,
        target: &VerifyTarget,
    ) -> StoreResult<Option<(i64, i64, DeliveredCard)>> {
        let target = target.clone();
        self.read(move |conn| find_card(conn, merchant_id, &target))
            .await
    }

    async fn sweep_ecard_expiry(&self, now: i64, limit: i64) -> StoreResult<(i64, i64)> {
        self.write(move |conn| expiry_job(conn, now, limit)).await
    }
}
