//! 电子卡密's orders: paid events delivered exactly once, refunds, the
//! three ways of 核销, reveals, and the order list's filter.

use crate::events::insert_event;
use crate::sql::{all, exec, expect_one, insert_audit, one, opt, parse_or, Params};
use deadpool_postgres::GenericClient;
use kaquan_core::audit::Actor;
use kaquan_core::ecard::audit::{self as ecard_audit, LineStep};
use kaquan_core::ecard::{
    refund_outcome, DeliveredCard, DeliveredFacts, DeliveredStatus, EcardHappening, EcardLine,
    EcardOrder, EcardProduct, EcardRefusal, EcardVerification, Marketplace, OrderFilter,
    OrderRefund, OrderRefusal, OwnCode, PaidLine, PaidOrder, PaidOutcome, RefundOutcome,
    StockState, VerificationWay, VerifyEcard, VerifyTarget,
};
use kaquan_core::event::NewEvent;
use kaquan_core::{StoreError, StoreResult};
use tokio_postgres::Row;

use crate::ecards::product_row;

pub(crate) const CARD_COLUMNS: &str = "d.id, d.stock_id, s.tail, d.delivered_at, d.valid_until, d.verified_at, \
    d.refunded_at, d.verified_way, d.revealed_at, d.reminded_at, d.key_version, s.sealed, d.code_sealed, d.line_ref, d.order_ref, s.import_id";

/// A card with its line and order.
pub(crate) fn card_from_row(r: &Row) -> (i64, i64, DeliveredCard) {
    let way: Option<&str> = r.get(7);
    (
        r.get(13),
        r.get(14),
        DeliveredCard {
            id: r.get(0),
            stock_id: r.get(1),
            import_id: r.get(15),
            tail: r.get(2),
            delivered_at: r.get(3),
            facts: DeliveredFacts {
                valid_until: r.get(4),
                verified_at: r.get(5),
                refunded_at: r.get(6),
            },
            verified_way: way.and_then(VerificationWay::parse),
            revealed_at: r.get(8),
            reminded_at: r.get(9),
            key_version: r.get(10),
            sealed: r.get(11),
            code_sealed: r.get(12),
        },
    )
}

pub(crate) const ORDER_COLUMNS: &str =
    "o.id, o.merchant_id, o.marketplace, o.order_id, o.buyer_phone, o.created_at, o.refunded_at";

pub(crate) fn order_from_row(r: &Row) -> StoreResult<EcardOrder> {
    Ok(EcardOrder {
        id: r.get(0),
        merchant_id: r.get(1),
        marketplace: parse_or(Marketplace::parse(r.get(2)), "marketplace")?,
        order_id: r.get(3),
        buyer_phone: r.get(4),
        created_at: r.get(5),
        refunded_at: r.get(6),
        lines: Vec::new(),
    })
}

/// Fills in the orders' lines and their cards.
pub(crate) async fn with_lines(
    c: &impl GenericClient,
    mut orders: Vec<EcardOrder>,
) -> StoreResult<Vec<EcardOrder>> {
    let ids: Vec<i64> = orders.iter().map(|o| o.id).collect();
    let lines = all(
        c,
        "SELECT l.id, l.line_id, l.product_id, coalesce(p.name, ''), l.quantity, l.paid_at, l.delivered_at, l.refunded_at, l.order_ref \
         FROM ecard_order_lines l LEFT JOIN ecard_products p ON p.id = l.product_id \
         WHERE l.order_ref = ANY($1) ORDER BY l.id",
        &[&ids],
    )
    .await?;
    for r in lines {
        let order_ref: i64 = r.get(8);
        if let Some(order) = orders.iter_mut().find(|o| o.id == order_ref) {
            order.lines.push(EcardLine {
                id: r.get(0),
                line_id: r.get(1),
                product_id: r.get(2),
                product_name: r.get(3),
                quantity: r.get(4),
                paid_at: r.get(5),
                delivered_at: r.get(6),
                refunded_at: r.get(7),
                cards: Vec::new(),
            });
        }
    }
    let cards = all(
        c,
        &format!(
            "SELECT {CARD_COLUMNS} FROM ecard_deliveries d JOIN ecard_stock s ON s.id = d.stock_id \
             WHERE d.order_ref = ANY($1) ORDER BY d.id"
        ),
        &[&ids],
    )
    .await?;
    for r in cards {
        let (line_ref, order_ref, card) = card_from_row(&r);
        let line = orders
            .iter_mut()
            .filter(|o| o.id == order_ref)
            .flat_map(|o| o.lines.iter_mut())
            .find(|l| l.id == line_ref);
        if let Some(line) = line {
            line.cards.push(card);
        }
    }
    Ok(orders)
}

/// An order without its lines: what an event names.
pub(crate) async fn order_header(
    c: &impl GenericClient,
    merchant_id: i64,
    id: i64,
) -> StoreResult<EcardOrder> {
    let row = one(
        c,
        &format!(
            "SELECT {ORDER_COLUMNS} FROM ecard_orders o WHERE o.merchant_id = $1 AND o.id = $2"
        ),
        &[&merchant_id, &id],
    )
    .await?;
    order_from_row(&row)
}

pub(crate) async fn order_by_id(
    c: &impl GenericClient,
    merchant_id: i64,
    id: i64,
) -> StoreResult<EcardOrder> {
    let row = opt(
        c,
        &format!(
            "SELECT {ORDER_COLUMNS} FROM ecard_orders o WHERE o.merchant_id = $1 AND o.id = $2"
        ),
        &[&merchant_id, &id],
    )
    .await?
    .ok_or(StoreError::NotFound)?;
    let order = order_from_row(&row)?;
    Ok(with_lines(c, vec![order]).await?.remove(0))
}

pub(crate) async fn upsert_order(
    c: &impl GenericClient,
    (merchant_id, marketplace, order_id): (i64, Marketplace, &str),
    token_hash: &str,
    buyer_phone: &str,
    now: i64,
) -> StoreResult<(i64, Option<i64>)> {
    exec(
        c,
        "INSERT INTO ecard_orders (merchant_id, marketplace, order_id, token_hash, buyer_phone, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (merchant_id, marketplace, order_id) DO NOTHING",
        &[&merchant_id, &marketplace.code(), &order_id, &token_hash, &buyer_phone, &now],
    )
    .await?;
    if !buyer_phone.is_empty() {
        exec(
            c,
            "UPDATE ecard_orders SET buyer_phone = $4 WHERE merchant_id = $1 AND marketplace = $2 AND order_id = $3 AND buyer_phone = ''",
            &[&merchant_id, &marketplace.code(), &order_id, &buyer_phone],
        )
        .await?;
    }
    let row = one(
        c,
        "SELECT id, refunded_at FROM ecard_orders WHERE merchant_id = $1 AND marketplace = $2 AND order_id = $3",
        &[&merchant_id, &marketplace.code(), &order_id],
    )
    .await?;
    Ok((row.get(0), row.get(1)))
}

pub(crate) async fn resolve_listing(
    c: &impl GenericClient,
    merchant_id: i64,
    marketplace: Marketplace,
    line: &PaidLine,
) -> StoreResult<Option<i64>> {
    let found = opt(
        c,
        "SELECT product_id FROM ecard_listings WHERE merchant_id = $1 AND marketplace = $2 \
         AND listing_id = $3 AND sku_id IN ($4, '') ORDER BY sku_id DESC LIMIT 1",
        &[
            &merchant_id,
            &marketplace.code(),
            &line.product_id,
            &line.sku_id,
        ],
    )
    .await?
    .map(|r| r.get::<_, i64>(0));
    if found.is_some() || marketplace != Marketplace::Own {
        return Ok(found);
    }
    let Ok(id) = line.product_id.parse::<i64>() else {
        return Ok(None);
    };
    Ok(opt(
        c,
        "SELECT id FROM ecard_products WHERE merchant_id = $1 AND id = $2",
        &[&merchant_id, &id],
    )
    .await?
    .map(|r| r.get(0)))
}

pub(crate) struct Waiting<'a> {
    pub(crate) merchant_id: i64,
    pub(crate) order_ref: i64,
    pub(crate) line_ref: i64,
    pub(crate) line_id: &'a str,
    pub(crate) product_id: i64,
    pub(crate) quantity: i64,
    pub(crate) codes: &'a [OwnCode],
}

impl Waiting<'_> {
    /// The line's step as the audit log records it.
    fn step(&self) -> LineStep<'_> {
        LineStep {
            merchant_id: self.merchant_id,
            order_ref: self.order_ref,
            line_id: self.line_id,
            product_id: self.product_id,
            quantity: self.quantity,
        }
    }
}

/// Delivers a locked line all or nothing; returns whether it did.
pub(crate) async fn deliver_line(
    c: &impl GenericClient,
    w: &Waiting<'_>,
    actor: &Actor,
    now: i64,
) -> StoreResult<bool> {
    let product = product_row(c, w.merchant_id, w.product_id).await?;
    // All or nothing in one statement: the rows picked (others' locked rows
    // skipped) are taken only when there are as many as the line needs.
    // The quantity is written into the statement (1–100, an integer): with
    // LIMIT as a parameter the generic plan assumes a tenth of the rows and
    // sorts the product's whole stock instead of reading the first rows of
    // the available-stock index.
    let take = format!(
        "WITH picked AS (SELECT id FROM ecard_stock WHERE product_id = $1 AND state = 'available' \
         ORDER BY id LIMIT {q} FOR UPDATE SKIP LOCKED) \
         UPDATE ecard_stock s SET state = 'delivered' FROM picked \
         WHERE s.id = picked.id AND (SELECT count(*) FROM picked) = {q} RETURNING s.id, s.key_version",
        q = w.quantity
    );
    let taken = all(c, &take, &[&w.product_id]).await?;
    if (taken.len() as i64) < w.quantity {
        return Ok(false);
    }
    expect_one(
        exec(
            c,
            "UPDATE ecard_order_lines SET delivered_at = $2 WHERE id = $1 AND delivered_at IS NULL AND refunded_at IS NULL",
            &[&w.line_ref, &now],
        )
        .await?,
    )?;
    let valid_until = product.fields.validity.valid_until(now);
    let mut stock_ids = Vec::with_capacity(taken.len());
    for (i, row) in taken.iter().enumerate() {
        let (stock_id, key_version): (i64, i32) = (row.get(0), row.get(1));
        stock_ids.push(stock_id);
        let code = w
            .codes
            .get(i)
            .filter(|_| product.fields.own_verification_code);
        exec(
            c,
            "INSERT INTO ecard_deliveries (merchant_id, order_ref, line_ref, product_id, stock_id, key_version, \
             delivered_at, valid_until, code_digest, code_sealed) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            &[&w.merchant_id, &w.order_ref, &w.line_ref, &w.product_id, &stock_id, &key_version, &now, &valid_until,
                &code.map(|c| c.digest.as_slice()), &code.map(|c| c.sealed.as_slice())],
        )
        .await?;
    }
    let audit = w.step().delivered(&stock_ids, actor, now);
    insert_audit(c, &audit, w.quantity).await?;
    let order = order_header(c, w.merchant_id, w.order_ref).await?;
    let what = EcardHappening::Delivered {
        line_id: w.line_id,
        product_id: w.product_id,
        cards: w.quantity,
    };
    insert_event(c, &NewEvent::ecard_order(&order, what, now)).await?;
    low_stock_check(c, &product, w.quantity, now).await?;
    Ok(true)
}

pub(crate) async fn low_stock_check(
    c: &impl GenericClient,
    product: &EcardProduct,
    taken: i64,
    now: i64,
) -> StoreResult<()> {
    let threshold = product.low_stock_threshold;
    if threshold <= 0 {
        return Ok(());
    }
    let left: i64 = one(
        c,
        "SELECT count(*) FROM (SELECT 1 FROM ecard_stock WHERE product_id = $1 AND state = 'available' LIMIT $2) AS s",
        &[&product.id, &(threshold + taken + 1)],
    )
    .await?
    .get(0);
    if left <= threshold && left + taken > threshold {
        insert_event(c, &NewEvent::ecard_low_stock(product, left, now)).await?;
    }
    Ok(())
}

pub(crate) async fn out_of_stock(
    c: &impl GenericClient,
    w: &Waiting<'_>,
    actor: &Actor,
    now: i64,
) -> StoreResult<()> {
    let audit = w.step().out_of_stock(actor, now);
    insert_audit(c, &audit, 0).await?;
    let order = order_header(c, w.merchant_id, w.order_ref).await?;
    let what = EcardHappening::OutOfStock {
        line_id: w.line_id,
        product_id: w.product_id,
        cards: w.quantity,
    };
    insert_event(c, &NewEvent::ecard_order(&order, what, now)).await
}

/// The paid event's lines as products, or the refusal; nothing written.
pub(crate) async fn resolve_lines(
    c: &impl GenericClient,
    paid: &PaidOrder,
) -> StoreResult<Result<Vec<i64>, OrderRefusal>> {
    let mut products = Vec::with_capacity(paid.lines.len());
    for line in &paid.lines {
        let Some(id) = resolve_listing(c, paid.merchant_id, paid.marketplace, line).await? else {
            return Ok(Err(OrderRefusal::UnknownListing {
                line_id: line.line_id.clone(),
            }));
        };
        let before = opt(
            c,
            "SELECT l.product_id, l.quantity FROM ecard_order_lines l JOIN ecard_orders o ON o.id = l.order_ref \
             WHERE o.merchant_id = $1 AND o.marketplace = $2 AND o.order_id = $3 AND l.line_id = $4 AND l.paid_at IS NOT NULL",
            &[&paid.merchant_id, &paid.marketplace.code(), &paid.order_id, &line.line_id],
        )
        .await?;
        if before.is_some_and(|r| {
            r.get::<_, Option<i64>>(0) != Some(id) || r.get::<_, i64>(1) != line.quantity
        }) {
            return Ok(Err(OrderRefusal::LineChanged {
                line_id: line.line_id.clone(),
            }));
        }
        products.push(id);
    }
    Ok(Ok(products))
}

pub(crate) async fn paid_in(
    c: &impl GenericClient,
    paid: &PaidOrder,
) -> StoreResult<Result<PaidOutcome, OrderRefusal>> {
    let products = match resolve_lines(c, paid).await? {
        Ok(products) => products,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let key = (paid.merchant_id, paid.marketplace, paid.order_id.as_str());
    let (order_ref, order_refunded) =
        upsert_order(c, key, &paid.token_hash, &paid.buyer_phone, paid.now).await?;
    let mut any_new = false;
    for (i, line) in paid.lines.iter().enumerate() {
        let newly_paid = exec(
            c,
            "INSERT INTO ecard_order_lines (merchant_id, order_ref, line_id, listing_id, sku_id, product_id, quantity, paid_at, refunded_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (order_ref, line_id, merchant_id) DO UPDATE \
             SET listing_id = excluded.listing_id, sku_id = excluded.sku_id, product_id = excluded.product_id, \
             quantity = excluded.quantity, paid_at = excluded.paid_at WHERE ecard_order_lines.paid_at IS NULL",
            &[&paid.merchant_id, &order_ref, &line.line_id, &line.product_id, &line.sku_id, &products[i], &line.quantity, &paid.now, &order_refunded],
        )
        .await?
            == 1;
        any_new |= newly_paid;
        let row = one(
            c,
            "SELECT id, delivered_at, refunded_at FROM ecard_order_lines WHERE order_ref = $1 AND line_id = $2 FOR UPDATE",
            &[&order_ref, &line.line_id],
        )
        .await?;
        let (delivered, refunded): (Option<i64>, Option<i64>) = (row.get(1), row.get(2));
        if delivered.is_some() || refunded.is_some() {
            continue;
        }
        let w = Waiting {
            merchant_id: paid.merchant_id,
            order_ref,
            line_ref: row.get(0),
            line_id: &line.line_id,
            product_id: products[i],
            quantity: line.quantity,
            codes: paid.codes.get(i).map_or(&[], Vec::as_slice),
        };
        if !deliver_line(c, &w, &paid.actor, paid.now).await? && newly_paid {
            out_of_stock(c, &w, &paid.actor, paid.now).await?;
        }
    }
    Ok(Ok(PaidOutcome {
        order: order_by_id(c, paid.merchant_id, order_ref).await?,
        newly_paid: any_new,
    }))
}

pub(crate) async fn refund_in(
    c: &impl GenericClient,
    refund: &OrderRefund,
) -> StoreResult<EcardOrder> {
    let key = (
        refund.merchant_id,
        refund.marketplace,
        refund.order_id.as_str(),
    );
    let (order_ref, _) = upsert_order(c, key, &refund.token_hash, "", refund.now).await?;
    let lines = match &refund.line_id {
        None => {
            exec(
                c,
                "UPDATE ecard_orders SET refunded_at = $2 WHERE id = $1 AND refunded_at IS NULL",
                &[&order_ref, &refund.now],
            )
            .await?;
            all(
                c,
                "UPDATE ecard_order_lines SET refunded_at = $2 WHERE order_ref = $1 AND refunded_at IS NULL RETURNING id, line_id",
                &[&order_ref, &refund.now],
            )
            .await?
        }
        Some(line_id) => {
            exec(
                c,
                "INSERT INTO ecard_order_lines (merchant_id, order_ref, line_id) VALUES ($1, $2, $3) \
                 ON CONFLICT (order_ref, line_id, merchant_id) DO NOTHING",
                &[&refund.merchant_id, &order_ref, line_id],
            )
            .await?;
            all(
                c,
                "UPDATE ecard_order_lines SET refunded_at = $3 WHERE order_ref = $1 AND line_id = $2 AND refunded_at IS NULL RETURNING id, line_id",
                &[&order_ref, line_id, &refund.now],
            )
            .await?
        }
    };
    for row in lines {
        let line_id: String = row.get(1);
        refund_line(c, refund, (order_ref, row.get(0), &line_id)).await?;
    }
    order_by_id(c, refund.merchant_id, order_ref).await
}

pub(crate) async fn refund_line(
    c: &impl GenericClient,
    refund: &OrderRefund,
    (order_ref, line_ref, line_id): (i64, i64, &str),
) -> StoreResult<()> {
    let cards = all(
        c,
        "UPDATE ecard_deliveries SET refunded_at = $2 WHERE line_ref = $1 AND verified_at IS NULL \
         AND refunded_at IS NULL AND valid_until >= $2 RETURNING stock_id, revealed_at",
        &[&line_ref, &refund.now],
    )
    .await?;
    let (mut returned, mut voided) = (0, 0);
    for row in &cards {
        let (stock_id, revealed_at): (i64, Option<i64>) = (row.get(0), row.get(1));
        let state = match refund_outcome(revealed_at.is_some()) {
            RefundOutcome::BackToStock => {
                returned += 1;
                StockState::Available
            }
            RefundOutcome::Voided => {
                voided += 1;
                StockState::Voided
            }
        };
        expect_one(
            exec(
                c,
                "UPDATE ecard_stock SET state = $2 WHERE id = $1 AND state = 'delivered'",
                &[&stock_id, &state.code()],
            )
            .await?,
        )?;
    }
    let audit = ecard_audit::refunded(refund, (order_ref, line_id), (returned, voided));
    insert_audit(c, &audit, cards.len() as i64).await?;
    let order = order_header(c, refund.merchant_id, order_ref).await?;
    let what = EcardHappening::Refunded {
        line_id,
        returned,
        voided,
    };
    insert_event(c, &NewEvent::ecard_order(&order, what, refund.now)).await
}

/// The delivered card a target names (a secret's live delivery first),
/// locked when `lock`: (order_ref, product_id, card).
pub(crate) async fn find_card(
    c: &impl GenericClient,
    merchant_id: i64,
    target: &VerifyTarget,
    lock: bool,
) -> StoreResult<Option<(i64, i64, DeliveredCard)>> {
    let lock = if lock { " FOR UPDATE OF d" } else { "" };
    let from = format!("SELECT {CARD_COLUMNS}, d.product_id FROM ecard_deliveries d JOIN ecard_stock s ON s.id = d.stock_id");
    let row = match target {
        VerifyTarget::StockDigest(d) => {
            let sql = format!(
                "{from} WHERE d.merchant_id = $1 AND s.merchant_id = $1 AND s.digest = $2 \
                 ORDER BY d.refunded_at IS NULL DESC, d.id DESC LIMIT 1{lock}"
            );
            opt(c, &sql, &[&merchant_id, &d.as_slice()]).await?
        }
        VerifyTarget::CodeDigest(d) => {
            let sql = format!("{from} WHERE d.merchant_id = $1 AND d.code_digest = $2{lock}");
            opt(c, &sql, &[&merchant_id, &d.as_slice()]).await?
        }
        VerifyTarget::Delivery(id) => {
            let sql = format!("{from} WHERE d.merchant_id = $1 AND d.id = $2{lock}");
            opt(c, &sql, &[&merchant_id, id]).await?
        }
    };
    Ok(row.map(|r| {
        let (_, order_ref, card) = card_from_row(&r);
        (order_ref, r.get(16), card)
    }))
}

pub(crate) async fn verify_in(
    c: &impl GenericClient,
    v: &VerifyEcard,
) -> StoreResult<Result<EcardVerification, EcardRefusal>> {
    let found = find_card(c, v.merchant_id, &v.target, true).await?;
    let Some((order_ref, _, card)) = found else {
        return Ok(Err(EcardRefusal::UnknownCard));
    };
    if let (Some(at), Some(way)) = (card.facts.verified_at, card.verified_way) {
        return Ok(Ok(EcardVerification {
            delivery_id: card.id,
            order_ref,
            verified_at: at,
            way,
            repeated: true,
        }));
    }
    match card.status(v.now) {
        DeliveredStatus::Refunded => return Ok(Err(EcardRefusal::Refunded)),
        DeliveredStatus::Expired => return Ok(Err(EcardRefusal::Expired)),
        DeliveredStatus::Unverified | DeliveredStatus::Verified => {}
    }
    expect_one(
        exec(
            c,
            "UPDATE ecard_deliveries SET verified_at = $2, verified_way = $3, verified_by = $4, verify_note = $5 \
             WHERE id = $1 AND verified_at IS NULL AND refunded_at IS NULL AND valid_until >= $2",
            &[&card.id, &v.now, &v.way.code(), &v.actor.label, &v.note],
        )
        .await?,
    )?;
    if let Some((content_type, bytes)) = &v.proof {
        exec(
            c,
            "INSERT INTO ecard_proofs (delivery_id, merchant_id, content_type, bytes) VALUES ($1, $2, $3, $4)",
            &[&card.id, &v.merchant_id, content_type, bytes],
        )
        .await?;
    }
    let audit = ecard_audit::verified(v, order_ref, &card.tail);
    insert_audit(c, &audit, 1).await?;
    let order = order_header(c, v.merchant_id, order_ref).await?;
    let what = EcardHappening::Verified {
        delivery_id: card.id,
        way: v.way,
    };
    insert_event(c, &NewEvent::ecard_order(&order, what, v.now)).await?;
    Ok(Ok(EcardVerification {
        delivery_id: card.id,
        order_ref,
        verified_at: v.now,
        way: v.way,
        repeated: false,
    }))
}

pub(crate) fn order_condition(f: &OrderFilter) -> (String, Params) {
    let mut params: Params = vec![Box::new(f.merchant_id)];
    let mut condition = "o.merchant_id = $1".to_owned();
    if let Some(m) = f.marketplace {
        params.push(Box::new(m.code()));
        condition.push_str(&format!(" AND o.marketplace = ${}", params.len()));
    }
    if let Some(id) = f.order_id.clone().filter(|s| !s.is_empty()) {
        params.push(Box::new(id));
        condition.push_str(&format!(" AND strpos(o.order_id, ${}) > 0", params.len()));
    }
    if let Some(p) = f.product_id {
        params.push(Box::new(p));
        condition.push_str(&format!(
            " AND EXISTS (SELECT 1 FROM ecard_order_lines l WHERE l.order_ref = o.id AND l.product_id = ${})",
            params.len()
        ));
    }
    if let Some(status) = f.status {
        params.push(Box::new(f.now));
        let now = params.len();
        let card = match status {
            DeliveredStatus::Verified => {
                format!("d.verified_at IS NOT NULL AND ${now}::bigint IS NOT NULL")
            }
            DeliveredStatus::Refunded => {
                format!("d.verified_at IS NULL AND d.refunded_at IS NOT NULL AND ${now}::bigint IS NOT NULL")
            }
            DeliveredStatus::Expired => format!(
                "d.verified_at IS NULL AND d.refunded_at IS NULL AND d.valid_until < ${now}"
            ),
            DeliveredStatus::Unverified => format!(
                "d.verified_at IS NULL AND d.refunded_at IS NULL AND d.valid_until >= ${now}"
            ),
        };
        condition.push_str(&format!(
            " AND EXISTS (SELECT 1 FROM ecard_deliveries d WHERE d.order_ref = o.id AND {card})"
        ));
    }
    if f.out_of_stock {
        condition.push_str(
            " AND EXISTS (SELECT 1 FROM ecard_order_lines l WHERE l.order_ref = o.id AND l.paid_at IS NOT NULL \
             AND l.delivered_at IS NULL AND l.refunded_at IS NULL)",
        );
    }
    for (bound, op) in [(f.from, ">="), (f.to, "<")] {
        if let Some(at) = bound {
            params.push(Box::new(at));
            condition.push_str(&format!(" AND o.created_at {op} ${}", params.len()));
        }
    }
    (condition, params)
}

/// 过期预警 and expiry, up to `limit` cards of each, rows other nodes
/// sweep skipped: a due reminder is marked once (`ecard.expiring`); a card
/// past its end unused is noted once (`ecard.expired` when its product
/// refunds expired cards).
pub(crate) async fn expiry_in(
    c: &impl GenericClient,
    now: i64,
    limit: i64,
) -> StoreResult<(i64, i64)> {
    let due = all(
        c,
        "UPDATE ecard_deliveries d SET reminded_at = $1 FROM ecard_products p WHERE p.id = d.product_id \
         AND d.id IN (SELECT d2.id FROM ecard_deliveries d2 JOIN ecard_products p2 ON p2.id = d2.product_id \
           WHERE d2.verified_at IS NULL AND d2.refunded_at IS NULL AND d2.expiry_noted_at IS NULL \
           AND d2.reminded_at IS NULL AND p2.remind_days > 0 \
           AND d2.valid_until >= $1 AND d2.valid_until - p2.remind_days * 86400 <= $1 \
           ORDER BY d2.valid_until LIMIT $2 FOR UPDATE OF d2 SKIP LOCKED) \
         AND d.reminded_at IS NULL \
         RETURNING d.id, d.merchant_id, d.order_ref, d.product_id, d.valid_until",
        &[&now, &limit],
    )
    .await?;
    for r in &due {
        let order = order_header(c, r.get(1), r.get(2)).await?;
        let what = EcardHappening::Expiring {
            delivery_id: r.get(0),
            product_id: r.get(3),
            valid_until: r.get(4),
        };
        insert_event(c, &NewEvent::ecard_order(&order, what, now)).await?;
    }
    let ended = all(
        c,
        "UPDATE ecard_deliveries d SET expiry_noted_at = $1 FROM ecard_products p WHERE p.id = d.product_id \
         AND d.id IN (SELECT id FROM ecard_deliveries WHERE verified_at IS NULL AND refunded_at IS NULL \
           AND expiry_noted_at IS NULL AND valid_until < $1 ORDER BY valid_until LIMIT $2 FOR UPDATE SKIP LOCKED) \
         AND d.expiry_noted_at IS NULL \
         RETURNING d.id, d.merchant_id, d.order_ref, d.product_id, d.valid_until, p.refund_expired",
        &[&now, &limit],
    )
    .await?;
    for r in ended.iter().filter(|r| r.get::<_, bool>(5)) {
        let order = order_header(c, r.get(1), r.get(2)).await?;
        let what = EcardHappening::Expired {
            delivery_id: r.get(0),
            product_id: r.get(3),
            valid_until: r.get(4),
        };
        insert_event(c, &NewEvent::ecard_order(&order, what, now)).await?;
    }
    Ok((due.len() as i64, ended.len() as i64))
}
