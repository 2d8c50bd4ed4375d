//! 电子卡密: products and their listings, sealed stock, marketplace orders
//! and the cards delivered to them.
//!
//! Racing paid events of one order hold on any number of nodes: each
//! transaction inserts the order and its lines if new (`ON CONFLICT DO
//! NOTHING`), then locks the line row; the first to hold it delivers and
//! sets `delivered_at`, the others find it set. Stock is taken with
//! `FOR UPDATE SKIP LOCKED`, so two lines never take one secret and never
//! wait on each other; a line that cannot take all it needs takes none
//! (its savepoint is rolled back) and waits as 缺货.

use crate::ecard_orders::{
    card_from_row, deliver_line, expiry_in, find_card, order_by_id, order_condition,
    order_from_row, paid_in, refund_in, verify_in, with_lines, Waiting, CARD_COLUMNS,
    ORDER_COLUMNS,
};
use crate::sql::{all, exec, expect_one, filtered_page, insert_audit, one, opt, parse_or, Params};
use crate::PgStore;
use deadpool_postgres::GenericClient;
use kaquan_core::audit::Actor;
use kaquan_core::ecard::audit as ecard_audit;
use kaquan_core::ecard::{
    DeliveredCard, DeliveryFact, DeliveryForm, EcardOrder, EcardProduct, EcardProductFields,
    EcardRefusal, EcardStore, EcardValidity, EcardVerification, Listing, Marketplace, NewStock,
    OrderFilter, OrderRefund, OrderRefusal, PaidOrder, PaidOutcome, Reveal, StockCounts,
    StockFilter, StockImport, StockItem, StockState, VerifyEcard, VerifyTarget,
};
use kaquan_core::store::Page;
use kaquan_core::{StoreError, StoreResult};
use tokio_postgres::Row;

const PRODUCT_COLUMNS: &str =
    "id, merchant_id, name, face_value_fen, delivery_form, instructions, \
    valid_until, valid_days, own_code, low_stock_threshold, created_at, updated_at, remind_days, refund_expired";

fn product_from_row(r: &Row) -> StoreResult<EcardProduct> {
    let valid_until: Option<i64> = r.get(6);
    let valid_days: Option<i64> = r.get(7);
    Ok(EcardProduct {
        id: r.get(0),
        merchant_id: r.get(1),
        fields: EcardProductFields {
            name: r.get(2),
            face_value_fen: r.get(3),
            delivery_form: parse_or(DeliveryForm::parse(r.get(4)), "delivery form")?,
            instructions: r.get(5),
            validity: match (valid_until, valid_days) {
                (Some(end), _) => EcardValidity::Until(end),
                (None, days) => EcardValidity::DaysAfterDelivery(days.unwrap_or(1)),
            },
            own_verification_code: r.get(8),
            listings: Vec::new(),
            remind_days: r.get(12),
            refund_expired: r.get(13),
        },
        low_stock_threshold: r.get(9),
        created_at: r.get(10),
        updated_at: r.get(11),
    })
}

fn validity_columns(v: EcardValidity) -> (Option<i64>, Option<i64>) {
    match v {
        EcardValidity::Until(end) => (Some(end), None),
        EcardValidity::DaysAfterDelivery(days) => (None, Some(days)),
    }
}

/// A product without its listings.
pub(crate) async fn product_row(
    c: &impl GenericClient,
    merchant_id: i64,
    id: i64,
) -> StoreResult<EcardProduct> {
    let row = opt(
        c,
        &format!("SELECT {PRODUCT_COLUMNS} FROM ecard_products WHERE merchant_id = $1 AND id = $2"),
        &[&merchant_id, &id],
    )
    .await?
    .ok_or(StoreError::NotFound)?;
    product_from_row(&row)
}

pub(crate) async fn get_product(
    c: &impl GenericClient,
    merchant_id: i64,
    id: i64,
) -> StoreResult<EcardProduct> {
    let mut product = product_row(c, merchant_id, id).await?;
    let rows = all(
        c,
        "SELECT marketplace, listing_id, sku_id FROM ecard_listings WHERE product_id = $1 ORDER BY id",
        &[&id],
    )
    .await?;
    for r in rows {
        product.fields.listings.push(Listing {
            marketplace: parse_or(Marketplace::parse(r.get(0)), "marketplace")?,
            product_id: r.get(1),
            sku_id: r.get(2),
        });
    }
    Ok(product)
}

async fn put_listings(c: &impl GenericClient, product: &EcardProduct) -> StoreResult<()> {
    exec(
        c,
        "DELETE FROM ecard_listings WHERE product_id = $1",
        &[&product.id],
    )
    .await?;
    for l in &product.fields.listings {
        exec(
            c,
            "INSERT INTO ecard_listings (merchant_id, product_id, marketplace, listing_id, sku_id) \
             VALUES ($1, $2, $3, $4, $5)",
            &[&product.merchant_id, &product.id, &l.marketplace.code(), &l.product_id.trim(), &l.sku_id.trim()],
        )
        .await?;
    }
    Ok(())
}

async fn counts_of(c: &impl GenericClient, product_id: i64, now: i64) -> StoreResult<StockCounts> {
    let stock = one(
        c,
        "SELECT count(*) FILTER (WHERE state = 'available'), count(*) FILTER (WHERE state = 'voided') \
         FROM ecard_stock WHERE product_id = $1",
        &[&product_id],
    )
    .await?;
    let cards = one(
        c,
        "SELECT count(*) FILTER (WHERE verified_at IS NOT NULL), \
                count(*) FILTER (WHERE verified_at IS NULL AND valid_until < $2), \
                count(*) FILTER (WHERE verified_at IS NULL AND valid_until >= $2) \
         FROM ecard_deliveries WHERE product_id = $1 AND refunded_at IS NULL",
        &[&product_id, &now],
    )
    .await?;
    Ok(StockCounts {
        available: stock.get(0),
        voided: stock.get(1),
        used: cards.get(0),
        expired: cards.get(1),
        delivered: cards.get(2),
    })
}

const STOCK_COLUMNS: &str = "id, product_id, import_id, tail, state, created_at";

fn stock_from_row(r: &Row) -> StoreResult<StockItem> {
    Ok(StockItem {
        id: r.get(0),
        product_id: r.get(1),
        import_id: r.get(2),
        tail: r.get(3),
        state: parse_or(StockState::parse(r.get(4)), "stock state")?,
        created_at: r.get(5),
    })
}

const IMPORT_COLUMNS: &str =
    "id, merchant_id, product_id, file_name, file_digest, n_rows, n_imported, created_by, created_at";

fn import_from_row(r: &Row) -> StockImport {
    StockImport {
        id: r.get(0),
        merchant_id: r.get(1),
        product_id: r.get(2),
        file_name: r.get(3),
        file_digest: r.get(4),
        n_rows: r.get(5),
        n_imported: r.get(6),
        created_by: r.get(7),
        created_at: r.get(8),
    }
}

/// Rows per multi-row insert of stock.
const STOCK_CHUNK: usize = 1000;

async fn add_stock(c: &impl GenericClient, stock: &NewStock) -> StoreResult<StockImport> {
    get_product(c, stock.merchant_id, stock.product_id).await?;
    let n_imported = stock.items.len() as i64;
    let id: i64 = one(
        c,
        "INSERT INTO ecard_stock_imports (merchant_id, product_id, file_name, file_digest, n_rows, n_imported, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        &[&stock.merchant_id, &stock.product_id, &stock.file_name, &stock.file_digest, &stock.n_rows, &n_imported, &stock.actor.label, &stock.now],
    )
    .await?
    .get(0);
    for chunk in stock.items.chunks(STOCK_CHUNK) {
        let digests: Vec<&[u8]> = chunk.iter().map(|s| s.digest.as_slice()).collect();
        let sealed: Vec<&[u8]> = chunk.iter().map(|s| s.sealed.as_slice()).collect();
        let tails: Vec<&str> = chunk.iter().map(|s| s.tail.as_str()).collect();
        exec(
            c,
            "INSERT INTO ecard_stock (merchant_id, product_id, import_id, key_version, digest, sealed, tail, created_at) \
             SELECT $1, $2, $3, $4, d, s, t, $8 FROM unnest($5::bytea[], $6::bytea[], $7::text[]) AS u(d, s, t)",
            &[&stock.merchant_id, &stock.product_id, &id, &stock.key_version, &digests, &sealed, &tails, &stock.now],
        )
        .await?;
    }
    let audit = ecard_audit::import(stock, id);
    insert_audit(c, &audit, n_imported).await?;
    let row = one(
        c,
        &format!("SELECT {IMPORT_COLUMNS} FROM ecard_stock_imports WHERE id = $1"),
        &[&id],
    )
    .await?;
    Ok(import_from_row(&row))
}

#[async_trait::async_trait]
impl EcardStore for PgStore {
    async fn create_ecard_product(
        &self,
        merchant_id: i64,
        fields: &EcardProductFields,
        low_stock_threshold: i64,
        actor: &Actor,
        now: i64,
    ) -> StoreResult<EcardProduct> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(crate::sql::map_err)?;
        let (until, days) = validity_columns(fields.validity);
        let id: i64 = one(
            &tx,
            "INSERT INTO ecard_products (merchant_id, name, face_value_fen, delivery_form, instructions, valid_until, \
             valid_days, own_code, low_stock_threshold, created_at, updated_at, remind_days, refund_expired) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $11, $12) RETURNING id",
            &[&merchant_id, &fields.name.trim(), &fields.face_value_fen, &fields.delivery_form.code(), &fields.instructions,
                &until, &days, &fields.own_verification_code, &low_stock_threshold, &now, &fields.remind_days, &fields.refund_expired],
        )
        .await?
        .get(0);
        let product = EcardProduct {
            id,
            merchant_id,
            fields: fields.clone(),
            low_stock_threshold,
            created_at: now,
            updated_at: now,
        };
        put_listings(&tx, &product).await?;
        insert_audit(
            &tx,
            &ecard_audit::product(&product, "create_ecard_product", actor, now),
            1,
        )
        .await?;
        let product = get_product(&tx, merchant_id, id).await?;
        tx.commit().await.map_err(crate::sql::map_err)?;
        Ok(product)
    }

    async fn update_ecard_product(
        &self,
        product: &EcardProduct,
        actor: &Actor,
    ) -> StoreResult<EcardProduct> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(crate::sql::map_err)?;
        let f = &product.fields;
        let (until, days) = validity_columns(f.validity);
        expect_one(
            exec(
                &tx,
                "UPDATE ecard_products SET name = $3, face_value_fen = $4, delivery_form = $5, instructions = $6, \
                 valid_until = $7, valid_days = $8, own_code = $9, low_stock_threshold = $10, updated_at = $11, \
                 remind_days = $12, refund_expired = $13 \
                 WHERE merchant_id = $1 AND id = $2",
                &[&product.merchant_id, &product.id, &f.name.trim(), &f.face_value_fen, &f.delivery_form.code(), &f.instructions,
                    &until, &days, &f.own_verification_code, &product.low_stock_threshold, &product.updated_at,
                    &f.remind_days, &f.refund_expired],
            )
            .await?,
        )?;
        put_listings(&tx, product).await?;
        insert_audit(
            &tx,
            &ecard_audit::product(product, "update_ecard_product", actor, product.updated_at),
            1,
        )
        .await?;
        let updated = get_product(&tx, product.merchant_id, product.id).await?;
        tx.commit().await.map_err(crate::sql::map_err)?;
        Ok(updated)
    }

    async fn get_ecard_product(&self, merchant_id: i64, id: i64) -> StoreResult<EcardProduct> {
        get_product(&self.client().await?, merchant_id, id).await
    }

    async fn list_ecard_products(&self, merchant_id: i64) -> StoreResult<Vec<EcardProduct>> {
        let c = self.client().await?;
        let rows = all(
            &c,
            "SELECT id FROM ecard_products WHERE merchant_id = $1 ORDER BY id DESC",
            &[&merchant_id],
        )
        .await?;
        let mut products = Vec::with_capacity(rows.len());
        for r in rows {
            products.push(get_product(&c, merchant_id, r.get(0)).await?);
        }
        Ok(products)
    }

    async fn ecard_stock_counts(
        &self,
        merchant_id: i64,
        product_id: i64,
        now: i64,
    ) -> StoreResult<StockCounts> {
        let c = self.client().await?;
        product_row(&c, merchant_id, product_id).await?;
        counts_of(&c, product_id, now).await
    }

    async fn known_ecard_digests(
        &self,
        merchant_id: i64,
        digests: &[Vec<u8>],
    ) -> StoreResult<Vec<Vec<u8>>> {
        let c = self.client().await?;
        let mut known = Vec::new();
        for chunk in digests.chunks(STOCK_CHUNK) {
            let chunk: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
            let rows = all(
                &c,
                "SELECT digest FROM ecard_stock WHERE merchant_id = $1 AND digest = ANY($2)",
                &[&merchant_id, &chunk],
            )
            .await?;
            known.extend(rows.into_iter().map(|r| r.get::<_, Vec<u8>>(0)));
        }
        Ok(known)
    }

    async fn add_ecard_stock(&self, stock: &NewStock) -> StoreResult<StockImport> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(crate::sql::map_err)?;
        let import = add_stock(&tx, stock).await?;
        tx.commit().await.map_err(crate::sql::map_err)?;
        Ok(import)
    }

    async fn list_ecard_stock(
        &self,
        filter: &StockFilter,
        page: Page,
    ) -> StoreResult<(Vec<StockItem>, i64)> {
        let mut params: Params = vec![Box::new(filter.merchant_id)];
        let mut condition = "merchant_id = $1".to_owned();
        if let Some(p) = filter.product_id {
            params.push(Box::new(p));
            condition.push_str(&format!(" AND product_id = ${}", params.len()));
        }
        if let Some(s) = filter.state {
            params.push(Box::new(s.code()));
            condition.push_str(&format!(" AND state = ${}", params.len()));
        }
        let what = ("ecard_stock", STOCK_COLUMNS, "id DESC");
        let (rows, total) =
            filtered_page(&self.client().await?, what, &condition, params, page).await?;
        Ok((
            rows.iter()
                .map(stock_from_row)
                .collect::<StoreResult<_>>()?,
            total,
        ))
    }

    async fn list_stock_imports(
        &self,
        merchant_id: i64,
        product_id: i64,
    ) -> StoreResult<Vec<StockImport>> {
        let rows = all(
            &self.client().await?,
            &format!("SELECT {IMPORT_COLUMNS} FROM ecard_stock_imports WHERE merchant_id = $1 AND product_id = $2 ORDER BY id DESC"),
            &[&merchant_id, &product_id],
        )
        .await?;
        Ok(rows.iter().map(import_from_row).collect())
    }

    async fn reveal_stock(
        &self,
        merchant_id: i64,
        stock_id: i64,
        actor: &Actor,
        now: i64,
    ) -> StoreResult<(i32, Vec<u8>)> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(crate::sql::map_err)?;
        let row = opt(
            &tx,
            "SELECT product_id, tail, key_version, sealed FROM ecard_stock WHERE merchant_id = $1 AND id = $2",
            &[&merchant_id, &stock_id],
        )
        .await?
        .ok_or(StoreError::NotFound)?;
        let (product_id, tail): (i64, String) = (row.get(0), row.get(1));
        let audit =
            ecard_audit::stock_revealed(merchant_id, actor, (product_id, stock_id, &tail), now);
        insert_audit(&tx, &audit, 1).await?;
        tx.commit().await.map_err(crate::sql::map_err)?;
        Ok((row.get(2), row.get(3)))
    }

    async fn record_paid_order(
        &self,
        paid: &PaidOrder,
    ) -> StoreResult<Result<PaidOutcome, OrderRefusal>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(crate::sql::map_err)?;
        let outcome = paid_in(&tx, paid).await?;
        tx.commit().await.map_err(crate::sql::map_err)?;
        Ok(outcome)
    }

    async fn record_refund(&self, refund: &OrderRefund) -> StoreResult<EcardOrder> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(crate::sql::map_err)?;
        let order = refund_in(&tx, refund).await?;
        tx.commit().await.map_err(crate::sql::map_err)?;
        Ok(order)
    }

    async fn deliver_waiting(&self, merchant_id: i64, actor: &Actor, now: i64) -> StoreResult<i64> {
        let c = self.client().await?;
        let lines = all(
            &c,
            "SELECT id FROM ecard_order_lines WHERE merchant_id = $1 AND paid_at IS NOT NULL AND delivered_at IS NULL \
             AND refunded_at IS NULL AND product_id IS NOT NULL ORDER BY id LIMIT 1000",
            &[&merchant_id],
        )
        .await?;
        drop(c);
        let mut delivered = 0;
        for line in lines {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(crate::sql::map_err)?;
            let row = opt(
                &tx,
                "SELECT id, order_ref, line_id, product_id, quantity FROM ecard_order_lines WHERE id = $1 \
                 AND delivered_at IS NULL AND refunded_at IS NULL FOR UPDATE",
                &[&line.get::<_, i64>(0)],
            )
            .await?;
            let Some(row) = row else { continue };
            let line_id: String = row.get(2);
            let w = Waiting {
                merchant_id,
                order_ref: row.get(1),
                line_ref: row.get(0),
                line_id: &line_id,
                product_id: row.get(3),
                quantity: row.get(4),
                codes: &[],
            };
            if deliver_line(&tx, &w, actor, now).await? {
                delivered += 1;
            }
            tx.commit().await.map_err(crate::sql::map_err)?;
        }
        Ok(delivered)
    }

    async fn get_ecard_order(&self, merchant_id: i64, id: i64) -> StoreResult<EcardOrder> {
        order_by_id(&self.client().await?, merchant_id, id).await
    }

    async fn find_ecard_order_by_token(
        &self,
        merchant_id: i64,
        token_hash: &str,
    ) -> StoreResult<Option<EcardOrder>> {
        let c = self.client().await?;
        let row = opt(
            &c,
            &format!("SELECT {ORDER_COLUMNS} FROM ecard_orders o WHERE o.merchant_id = $1 AND o.token_hash = $2"),
            &[&merchant_id, &token_hash],
        )
        .await?;
        match row {
            Some(row) => Ok(Some(
                with_lines(&c, vec![order_from_row(&row)?]).await?.remove(0),
            )),
            None => Ok(None),
        }
    }

    async fn list_ecard_orders(
        &self,
        filter: &OrderFilter,
        page: Page,
    ) -> StoreResult<(Vec<EcardOrder>, i64)> {
        let c = self.client().await?;
        let (condition, params) = order_condition(filter);
        let what = ("ecard_orders o", ORDER_COLUMNS, "o.id DESC");
        let (rows, total) = filtered_page(&c, what, &condition, params, page).await?;
        let orders = rows
            .iter()
            .map(order_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok((with_lines(&c, orders).await?, total))
    }

    async fn reveal_ecard(&self, r: &Reveal) -> StoreResult<DeliveredCard> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(crate::sql::map_err)?;
        expect_one(
            exec(
                &tx,
                "UPDATE ecard_deliveries SET revealed_at = coalesce(revealed_at, $3) WHERE merchant_id = $1 AND id = $2 \
                 AND refunded_at IS NULL AND ($4::bigint IS NULL OR order_ref = $4)",
                &[&r.merchant_id, &r.delivery_id, &r.now, &r.order_ref],
            )
            .await?,
        )?;
        let row = one(
            &tx,
            &format!("SELECT {CARD_COLUMNS} FROM ecard_deliveries d JOIN ecard_stock s ON s.id = d.stock_id WHERE d.id = $1"),
            &[&r.delivery_id],
        )
        .await?;
        let (_, order_ref, card) = card_from_row(&row);
        let audit = ecard_audit::revealed(r, order_ref, &card.tail);
        insert_audit(&tx, &audit, 1).await?;
        tx.commit().await.map_err(crate::sql::map_err)?;
        Ok(card)
    }

    async fn verify_ecard(
        &self,
        verify: &VerifyEcard,
    ) -> StoreResult<Result<EcardVerification, EcardRefusal>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(crate::sql::map_err)?;
        let outcome = verify_in(&tx, verify).await?;
        tx.commit().await.map_err(crate::sql::map_err)?;
        Ok(outcome)
    }

    async fn get_ecard_proof(
        &self,
        merchant_id: i64,
        delivery_id: i64,
    ) -> StoreResult<Option<(String, Vec<u8>)>> {
        let row = opt(
            &self.client().await?,
            "SELECT content_type, bytes FROM ecard_proofs WHERE merchant_id = $1 AND delivery_id = $2",
            &[&merchant_id, &delivery_id],
        )
        .await?;
        Ok(row.map(|r| (r.get(0), r.get(1))))
    }

    async fn list_delivery_facts(
        &self,
        merchant_id: i64,
        from: i64,
        to: i64,
    ) -> StoreResult<Vec<DeliveryFact>> {
        let rows = all(
            &self.client().await?,
            "SELECT d.product_id, o.marketplace, d.delivered_at, d.valid_until, d.verified_at, d.refunded_at \
             FROM ecard_deliveries d JOIN ecard_orders o ON o.id = d.order_ref \
             WHERE d.merchant_id = $1 AND d.delivered_at >= $2 AND d.delivered_at < $3",
            &[&merchant_id, &from, &to],
        )
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DeliveryFact {
                    product_id: r.get(0),
                    marketplace: parse_or(Marketplace::parse(r.get(1)), "marketplace")?,
                    delivered_at: r.get(2),
                    facts: kaquan_core::ecard::DeliveredFacts {
                        valid_until: r.get(3),
                        verified_at: r.get(4),
                        refunded_at: r.get(5),
                    },
                })
            })
            .collect()
    }

    async fn find_ecard_card(
        &self,
        merchant_id: i64,
        target: &VerifyTarget,
    ) -> StoreResult<Option<(i64, i64, DeliveredCard)>> {
        find_card(&self.client().await?, merchant_id, target, false).await
    }

    async fn sweep_ecard_expiry(&self, now: i64, limit: i64) -> StoreResult<(i64, i64)> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(crate::sql::map_err)?;
        let swept = expiry_in(&tx, now, limit).await?;
        tx.commit().await.map_err(crate::sql::map_err)?;
        Ok(swept)
    }
}
