//! 电子卡密's orders: paid events delivered exactly once, refunds, the
//! three ways of 核销, reveals, and the order list's filter.

use crate::events::insert_event;
use crate::sql::{
    cached_execute, cached_row, decode, execute_one, expect_one, insert_audit, map_err,
};
use kaquan_core::audit::Actor;
use kaquan_core::ecard::audit::{self as ecard_audit, LineStep};
use kaquan_core::ecard::{
    refund_outcome, DeliveredCard, DeliveredFacts, DeliveredStatus, EcardHappening, EcardLine,
    EcardOrder, EcardProduct, EcardRefusal, EcardVerification, Marketplace, OrderFilter,
    OrderRefund, OrderRefusal, OwnCode, PaidOrder, PaidOutcome, RefundOutcome, Reveal, StockState,
    VerificationWay, VerifyEcard, VerifyTarget,
};
use kaquan_core::event::NewEvent;
use kaquan_core::{StoreError, StoreResult};
use rusqlite::types::Value;
use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::ecards::product_row;

pub(crate) const CARD_COLUMNS: &str = "d.id, d.stock_id, s.tail, d.delivered_at, d.valid_until, d.verified_at, \
    d.refunded_at, d.verified_way, d.revealed_at, d.reminded_at, d.key_version, s.sealed, d.code_sealed, d.line_ref, s.import_id";

pub(crate) fn card_from_row(r: &Row) -> rusqlite::Result<(i64, DeliveredCard)> {
    let way: Option<String> = r.get(7)?;
    Ok((
        r.get(13)?,
        DeliveredCard {
            id: r.get(0)?,
            stock_id: r.get(1)?,
            import_id: r.get(14)?,
            tail: r.get(2)?,
            delivered_at: r.get(3)?,
            facts: DeliveredFacts {
                valid_until: r.get(4)?,
                verified_at: r.get(5)?,
                refunded_at: r.get(6)?,
            },
            verified_way: way.and_then(|w| VerificationWay::parse(&w)),
            revealed_at: r.get(8)?,
            reminded_at: r.get(9)?,
            key_version: r.get(10)?,
            sealed: r.get(11)?,
            code_sealed: r.get(12)?,
        },
    ))
}

pub(crate) const ORDER_COLUMNS: &str =
    "id, merchant_id, marketplace, order_id, buyer_phone, created_at, refunded_at";

pub(crate) fn order_from_row(r: &Row) -> rusqlite::Result<EcardOrder> {
    let m: String = r.get(2)?;
    Ok(EcardOrder {
        id: r.get(0)?,
        merchant_id: r.get(1)?,
        marketplace: decode(Marketplace::parse(&m), 2, "marketplace")?,
        order_id: r.get(3)?,
        buyer_phone: r.get(4)?,
        created_at: r.get(5)?,
        refunded_at: r.get(6)?,
        lines: Vec::new(),
    })
}

/// Fills in an order's lines and their cards.
pub(crate) fn with_lines(conn: &Connection, mut order: EcardOrder) -> StoreResult<EcardOrder> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT l.id, l.line_id, l.product_id, coalesce(p.name, ''), l.quantity, l.paid_at, l.delivered_at, l.refunded_at \
             FROM ecard_order_lines l LEFT JOIN ecard_products p ON p.id = l.product_id \
             WHERE l.order_ref = ?1 ORDER BY l.id",
        )
        .map_err(map_err)?;
    let lines = stmt
        .query_map([order.id], |r| {
            Ok(EcardLine {
                id: r.get(0)?,
                line_id: r.get(1)?,
                product_id: r.get(2)?,
                product_name: r.get(3)?,
                quantity: r.get(4)?,
                paid_at: r.get(5)?,
                delivered_at: r.get(6)?,
                refunded_at: r.get(7)?,
                cards: Vec::new(),
            })
        })
        .map_err(map_err)?;
    order.lines = lines.collect::<Result<_, _>>().map_err(map_err)?;
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {CARD_COLUMNS} FROM ecard_deliveries d JOIN ecard_stock s ON s.id = d.stock_id \
             WHERE d.order_ref = ?1 ORDER BY d.id"
        ))
        .map_err(map_err)?;
    let cards = stmt.query_map([order.id], card_from_row).map_err(map_err)?;
    for card in cards {
        let (line_ref, card) = card.map_err(map_err)?;
        if let Some(line) = order.lines.iter_mut().find(|l| l.id == line_ref) {
            line.cards.push(card);
        }
    }
    Ok(order)
}

pub(crate) fn order_where(
    conn: &Connection,
    condition: &str,
    values: Vec<Value>,
) -> StoreResult<Option<EcardOrder>> {
    let order = conn
        .query_row(
            &format!("SELECT {ORDER_COLUMNS} FROM ecard_orders WHERE {condition}"),
            rusqlite::params_from_iter(values),
            order_from_row,
        )
        .optional()
        .map_err(map_err)?;
    order.map(|o| with_lines(conn, o)).transpose()
}

pub(crate) fn order_by_id(conn: &Connection, merchant_id: i64, id: i64) -> StoreResult<EcardOrder> {
    order_where(
        conn,
        "merchant_id = ? AND id = ?",
        vec![Value::Integer(merchant_id), Value::Integer(id)],
    )?
    .ok_or(StoreError::NotFound)
}

/// An order without its lines: what an event names.
pub(crate) fn order_header(
    conn: &Connection,
    merchant_id: i64,
    id: i64,
) -> StoreResult<EcardOrder> {
    cached_row(
        conn,
        &format!("SELECT {ORDER_COLUMNS} FROM ecard_orders WHERE merchant_id = ?1 AND id = ?2"),
        [merchant_id, id],
        order_from_row,
    )
    .map_err(map_err)
}

/// The order row of (marketplace, order id), made when it is new.
pub(crate) fn upsert_order(
    conn: &Connection,
    (merchant_id, marketplace, order_id): (i64, Marketplace, &str),
    token_hash: &str,
    buyer_phone: &str,
    now: i64,
) -> StoreResult<(i64, Option<i64>)> {
    cached_execute(
        conn,
        "INSERT INTO ecard_orders (merchant_id, marketplace, order_id, token_hash, buyer_phone, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (merchant_id, marketplace, order_id) DO NOTHING",
        params![merchant_id, marketplace.code(), order_id, token_hash, buyer_phone, now],
    )
    .map_err(map_err)?;
    if !buyer_phone.is_empty() {
        cached_execute(
            conn,
            "UPDATE ecard_orders SET buyer_phone = ?4 WHERE merchant_id = ?1 AND marketplace = ?2 AND order_id = ?3 AND buyer_phone = ''",
            params![merchant_id, marketplace.code(), order_id, buyer_phone],
        )
        .map_err(map_err)?;
    }
    cached_row(
        conn,
        "SELECT id, refunded_at FROM ecard_orders WHERE merchant_id = ?1 AND marketplace = ?2 AND order_id = ?3",
        params![merchant_id, marketplace.code(), order_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .map_err(map_err)
}

/// The product a paid line is sold as: its listing (the SKU's, else the
/// listing's without SKU); on the merchant's own shop also kaquan's id.
pub(crate) fn resolve_listing(
    conn: &Connection,
    merchant_id: i64,
    marketplace: Marketplace,
    line: &kaquan_core::ecard::PaidLine,
) -> StoreResult<Option<i64>> {
    let found: Option<i64> = cached_row(
        conn,
        "SELECT product_id FROM ecard_listings WHERE merchant_id = ?1 AND marketplace = ?2 \
         AND listing_id = ?3 AND sku_id IN (?4, '') ORDER BY sku_id DESC LIMIT 1",
        params![
            merchant_id,
            marketplace.code(),
            line.product_id,
            line.sku_id
        ],
        |r| r.get(0),
    )
    .optional()
    .map_err(map_err)?;
    if found.is_some() || marketplace != Marketplace::Own {
        return Ok(found);
    }
    let Ok(id) = line.product_id.parse::<i64>() else {
        return Ok(None);
    };
    cached_row(
        conn,
        "SELECT id FROM ecard_products WHERE merchant_id = ?1 AND id = ?2",
        [merchant_id, id],
        |r| r.get(0),
    )
    .optional()
    .map_err(map_err)
}

/// A line waiting for delivery.
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

/// Takes `quantity` secrets of the product for the line, or none when
/// stock is short (the writer runs alone: the count is what the update
/// takes). Returns whether the line was delivered.
pub(crate) fn deliver_line(
    conn: &Connection,
    w: &Waiting,
    actor: &Actor,
    now: i64,
) -> StoreResult<bool> {
    let product = product_row(conn, w.merchant_id, w.product_id)?;
    let available: i64 = cached_row(
        conn,
        "SELECT count(*) FROM (SELECT 1 FROM ecard_stock WHERE product_id = ?1 AND state = 'available' LIMIT ?2)",
        [w.product_id, w.quantity],
        |r| r.get(0),
    )
    .map_err(map_err)?;
    if available < w.quantity {
        return Ok(false);
    }
    let taken: Vec<(i64, i32)> = {
        let mut stmt = conn
            .prepare_cached(
                "UPDATE ecard_stock SET state = 'delivered' WHERE id IN \
                 (SELECT id FROM ecard_stock WHERE product_id = ?1 AND state = 'available' ORDER BY id LIMIT ?2) \
                 AND state = 'available' RETURNING id, key_version",
            )
            .map_err(map_err)?;
        let rows = stmt
            .query_map([w.product_id, w.quantity], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(map_err)?;
        rows.collect::<Result<_, _>>().map_err(map_err)?
    };
    if taken.len() as i64 != w.quantity {
        return Err(StoreError::Backend("stock changed under the writer".into()));
    }
    expect_one(
        cached_execute(
            conn,
            "UPDATE ecard_order_lines SET delivered_at = ?2 WHERE id = ?1 AND delivered_at IS NULL AND refunded_at IS NULL",
            [w.line_ref, now],
        )
        .map_err(map_err)?,
    )?;
    let valid_until = product.fields.validity.valid_until(now);
    for (i, (stock_id, key_version)) in taken.iter().enumerate() {
        let code = w
            .codes
            .get(i)
            .filter(|_| product.fields.own_verification_code);
        cached_execute(
            conn,
            "INSERT INTO ecard_deliveries (merchant_id, order_ref, line_ref, product_id, stock_id, key_version, \
             delivered_at, valid_until, code_digest, code_sealed) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![w.merchant_id, w.order_ref, w.line_ref, w.product_id, stock_id, key_version, now, valid_until,
                code.map(|c| &c.digest), code.map(|c| &c.sealed)],
        )
        .map_err(map_err)?;
    }
    let stock_ids: Vec<i64> = taken.iter().map(|(id, _)| *id).collect();
    let audit = w.step().delivered(&stock_ids, actor, now);
    insert_audit(conn, &audit, w.quantity).map_err(map_err)?;
    let order = order_header(conn, w.merchant_id, w.order_ref)?;
    let what = EcardHappening::Delivered {
        line_id: w.line_id,
        product_id: w.product_id,
        cards: w.quantity,
    };
    insert_event(conn, &NewEvent::ecard_order(&order, what, now))?;
    low_stock_check(conn, &product, w.quantity, now)?;
    Ok(true)
}

/// Fires `ecard.low_stock` when this delivery took the product's stock
/// down to its threshold (once per crossing).
pub(crate) fn low_stock_check(
    conn: &Connection,
    product: &EcardProduct,
    taken: i64,
    now: i64,
) -> StoreResult<()> {
    let threshold = product.low_stock_threshold;
    if threshold <= 0 {
        return Ok(());
    }
    let left: i64 = cached_row(
        conn,
        "SELECT count(*) FROM (SELECT 1 FROM ecard_stock WHERE product_id = ?1 AND state = 'available' LIMIT ?2)",
        [product.id, threshold + taken + 1],
        |r| r.get(0),
    )
    .map_err(map_err)?;
    if left <= threshold && left + taken > threshold {
        insert_event(conn, &NewEvent::ecard_low_stock(product, left, now))?;
    }
    Ok(())
}

pub(crate) fn out_of_stock(
    conn: &Connection,
    w: &Waiting,
    actor: &Actor,
    now: i64,
) -> StoreResult<()> {
    let audit = w.step().out_of_stock(actor, now);
    insert_audit(conn, &audit, 0).map_err(map_err)?;
    let order = order_header(conn, w.merchant_id, w.order_ref)?;
    let what = EcardHappening::OutOfStock {
        line_id: w.line_id,
        product_id: w.product_id,
        cards: w.quantity,
    };
    insert_event(conn, &NewEvent::ecard_order(&order, what, now))
}

pub(crate) fn paid_job(
    conn: &Connection,
    paid: &PaidOrder,
) -> StoreResult<Result<PaidOutcome, OrderRefusal>> {
    let mut products = Vec::with_capacity(paid.lines.len());
    for line in &paid.lines {
        match resolve_listing(conn, paid.merchant_id, paid.marketplace, line)? {
            Some(id) => products.push(id),
            None => {
                return Ok(Err(OrderRefusal::UnknownListing {
                    line_id: line.line_id.clone(),
                }))
            }
        }
    }
    for (i, line) in paid.lines.iter().enumerate() {
        let before: Option<(Option<i64>, i64)> = cached_row(
            conn,
            "SELECT l.product_id, l.quantity FROM ecard_order_lines l JOIN ecard_orders o ON o.id = l.order_ref \
             WHERE o.merchant_id = ?1 AND o.marketplace = ?2 AND o.order_id = ?3 AND l.line_id = ?4 AND l.paid_at IS NOT NULL",
            params![paid.merchant_id, paid.marketplace.code(), paid.order_id, line.line_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(map_err)?;
        if before.is_some_and(|(product, quantity)| {
            product != Some(products[i]) || quantity != line.quantity
        }) {
            return Ok(Err(OrderRefusal::LineChanged {
                line_id: line.line_id.clone(),
            }));
        }
    }
    let key = (paid.merchant_id, paid.marketplace, paid.order_id.as_str());
    let (order_ref, order_refunded) =
        upsert_order(conn, key, &paid.token_hash, &paid.buyer_phone, paid.now)?;
    let mut waiting = Vec::new();
    let mut any_new = false;
    for (i, line) in paid.lines.iter().enumerate() {
        let newly_paid = cached_execute(
            conn,
            "INSERT INTO ecard_order_lines (merchant_id, order_ref, line_id, listing_id, sku_id, product_id, quantity, paid_at, refunded_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT (order_ref, line_id) DO UPDATE \
             SET listing_id = excluded.listing_id, sku_id = excluded.sku_id, product_id = excluded.product_id, \
             quantity = excluded.quantity, paid_at = excluded.paid_at WHERE ecard_order_lines.paid_at IS NULL",
            params![paid.merchant_id, order_ref, line.line_id, line.product_id, line.sku_id, products[i], line.quantity, paid.now, order_refunded],
        )
        .map_err(map_err)?
            == 1;
        any_new |= newly_paid;
        let (line_ref, delivered, refunded): (i64, Option<i64>, Option<i64>) = cached_row(
            conn,
            "SELECT id, delivered_at, refunded_at FROM ecard_order_lines WHERE order_ref = ?1 AND line_id = ?2",
            params![order_ref, line.line_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .map_err(map_err)?;
        if delivered.is_none() && refunded.is_none() {
            waiting.push((
                newly_paid,
                Waiting {
                    merchant_id: paid.merchant_id,
                    order_ref,
                    line_ref,
                    line_id: &line.line_id,
                    product_id: products[i],
                    quantity: line.quantity,
                    codes: paid.codes.get(i).map_or(&[], Vec::as_slice),
                },
            ));
        }
    }
    for (newly_paid, w) in &waiting {
        if !deliver_line(conn, w, &paid.actor, paid.now)? && *newly_paid {
            out_of_stock(conn, w, &paid.actor, paid.now)?;
        }
    }
    Ok(Ok(PaidOutcome {
        order: order_by_id(conn, paid.merchant_id, order_ref)?,
        newly_paid: any_new,
    }))
}

pub(crate) fn refund_job(conn: &Connection, refund: &OrderRefund) -> StoreResult<EcardOrder> {
    let key = (
        refund.merchant_id,
        refund.marketplace,
        refund.order_id.as_str(),
    );
    let (order_ref, _) = upsert_order(conn, key, &refund.token_hash, "", refund.now)?;
    let lines: Vec<(i64, String)> = match &refund.line_id {
        None => {
            cached_execute(
                conn,
                "UPDATE ecard_orders SET refunded_at = ?2 WHERE id = ?1 AND refunded_at IS NULL",
                [order_ref, refund.now],
            )
            .map_err(map_err)?;
            let mut stmt = conn
                .prepare_cached(
                    "UPDATE ecard_order_lines SET refunded_at = ?2 WHERE order_ref = ?1 AND refunded_at IS NULL RETURNING id, line_id",
                )
                .map_err(map_err)?;
            let rows = stmt
                .query_map([order_ref, refund.now], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(map_err)?;
            rows.collect::<Result<_, _>>().map_err(map_err)?
        }
        Some(line_id) => {
            cached_execute(
                conn,
                "INSERT INTO ecard_order_lines (merchant_id, order_ref, line_id) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (order_ref, line_id) DO NOTHING",
                params![refund.merchant_id, order_ref, line_id],
            )
            .map_err(map_err)?;
            cached_row(
                conn,
                "UPDATE ecard_order_lines SET refunded_at = ?3 WHERE order_ref = ?1 AND line_id = ?2 AND refunded_at IS NULL RETURNING id, line_id",
                params![order_ref, line_id, refund.now],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(map_err)?
            .into_iter()
            .collect()
        }
    };
    for (line_ref, line_id) in lines {
        refund_line(conn, refund, (order_ref, line_ref, &line_id))?;
    }
    order_by_id(conn, refund.merchant_id, order_ref)
}

/// Refunds a line's unused cards: unseen secrets back to stock, revealed
/// ones voided; a used or expired card stays as it is.
pub(crate) fn refund_line(
    conn: &Connection,
    refund: &OrderRefund,
    (order_ref, line_ref, line_id): (i64, i64, &str),
) -> StoreResult<()> {
    let cards: Vec<(i64, Option<i64>)> = {
        let mut stmt = conn
            .prepare_cached(
                "UPDATE ecard_deliveries SET refunded_at = ?2 WHERE line_ref = ?1 AND verified_at IS NULL \
                 AND refunded_at IS NULL AND valid_until >= ?2 RETURNING stock_id, revealed_at",
            )
            .map_err(map_err)?;
        let rows = stmt
            .query_map([line_ref, refund.now], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(map_err)?;
        rows.collect::<Result<_, _>>().map_err(map_err)?
    };
    let (mut returned, mut voided) = (0, 0);
    for (stock_id, revealed_at) in &cards {
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
            cached_execute(
                conn,
                "UPDATE ecard_stock SET state = ?2 WHERE id = ?1 AND state = 'delivered'",
                params![stock_id, state.code()],
            )
            .map_err(map_err)?,
        )?;
    }
    let audit = ecard_audit::refunded(refund, (order_ref, line_id), (returned, voided));
    insert_audit(conn, &audit, cards.len() as i64).map_err(map_err)?;
    let order = order_header(conn, refund.merchant_id, order_ref)?;
    let what = EcardHappening::Refunded {
        line_id,
        returned,
        voided,
    };
    insert_event(conn, &NewEvent::ecard_order(&order, what, refund.now))
}

pub(crate) fn waiting_job(
    conn: &Connection,
    merchant_id: i64,
    actor: &Actor,
    now: i64,
) -> StoreResult<i64> {
    let lines: Vec<(i64, i64, String, i64, i64)> = {
        let mut stmt = conn
            .prepare_cached(
                "SELECT id, order_ref, line_id, product_id, quantity FROM ecard_order_lines \
                 WHERE merchant_id = ?1 AND paid_at IS NOT NULL AND delivered_at IS NULL AND refunded_at IS NULL \
                 AND product_id IS NOT NULL ORDER BY id LIMIT 1000",
            )
            .map_err(map_err)?;
        let rows = stmt
            .query_map([merchant_id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .map_err(map_err)?;
        rows.collect::<Result<_, _>>().map_err(map_err)?
    };
    let mut delivered = 0;
    for (line_ref, order_ref, line_id, product_id, quantity) in &lines {
        let w = Waiting {
            merchant_id,
            order_ref: *order_ref,
            line_ref: *line_ref,
            line_id,
            product_id: *product_id,
            quantity: *quantity,
            codes: &[],
        };
        if deliver_line(conn, &w, actor, now)? {
            delivered += 1;
        }
    }
    Ok(delivered)
}

/// The delivered card a target names (a secret's live delivery first):
/// (order_ref, product_id, card).
pub(crate) fn find_card(
    conn: &Connection,
    merchant_id: i64,
    target: &VerifyTarget,
) -> StoreResult<Option<(i64, i64, DeliveredCard)>> {
    let (condition, value): (&str, Value) = match target {
        VerifyTarget::StockDigest(d) => (
            "d.stock_id = (SELECT id FROM ecard_stock WHERE merchant_id = ?1 AND digest = ?2)",
            Value::Blob(d.clone()),
        ),
        VerifyTarget::CodeDigest(d) => ("d.code_digest = ?2", Value::Blob(d.clone())),
        VerifyTarget::Delivery(id) => ("d.id = ?2", Value::Integer(*id)),
    };
    conn.query_row(
        &format!(
            "SELECT {CARD_COLUMNS}, d.order_ref, d.product_id FROM ecard_deliveries d JOIN ecard_stock s ON s.id = d.stock_id \
             WHERE d.merchant_id = ?1 AND {condition} ORDER BY d.refunded_at IS NULL DESC, d.id DESC LIMIT 1"
        ),
        params![merchant_id, value],
        |r| Ok((r.get::<_, i64>(15)?, r.get::<_, i64>(16)?, card_from_row(r)?.1)),
    )
    .optional()
    .map_err(map_err)
}

pub(crate) fn verify_job(
    conn: &Connection,
    v: &VerifyEcard,
) -> StoreResult<Result<EcardVerification, EcardRefusal>> {
    let found =
        find_card(conn, v.merchant_id, &v.target)?.map(|(order_ref, _, card)| (card, order_ref));
    let Some((card, order_ref)) = found else {
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
        cached_execute(
            conn,
            "UPDATE ecard_deliveries SET verified_at = ?2, verified_way = ?3, verified_by = ?4, verify_note = ?5 \
             WHERE id = ?1 AND verified_at IS NULL AND refunded_at IS NULL AND valid_until >= ?2",
            params![card.id, v.now, v.way.code(), v.actor.label, v.note],
        )
        .map_err(map_err)?,
    )?;
    if let Some((content_type, bytes)) = &v.proof {
        cached_execute(
            conn,
            "INSERT INTO ecard_proofs (delivery_id, merchant_id, content_type, bytes) VALUES (?1, ?2, ?3, ?4)",
            params![card.id, v.merchant_id, content_type, bytes],
        )
        .map_err(map_err)?;
    }
    let audit = ecard_audit::verified(v, order_ref, &card.tail);
    insert_audit(conn, &audit, 1).map_err(map_err)?;
    let order = order_header(conn, v.merchant_id, order_ref)?;
    let what = EcardHappening::Verified {
        delivery_id: card.id,
        way: v.way,
    };
    insert_event(conn, &NewEvent::ecard_order(&order, what, v.now))?;
    Ok(Ok(EcardVerification {
        delivery_id: card.id,
        order_ref,
        verified_at: v.now,
        way: v.way,
        repeated: false,
    }))
}

pub(crate) fn reveal_job(conn: &Connection, r: &Reveal) -> StoreResult<DeliveredCard> {
    let n = cached_execute(
        conn,
        "UPDATE ecard_deliveries SET revealed_at = coalesce(revealed_at, ?3) WHERE merchant_id = ?1 AND id = ?2 \
         AND refunded_at IS NULL AND (?4 IS NULL OR order_ref = ?4)",
        params![r.merchant_id, r.delivery_id, r.now, r.order_ref],
    )
    .map_err(map_err)?;
    expect_one(n)?;
    let (line_ref_card, order_ref): ((i64, DeliveredCard), i64) = cached_row(
        conn,
        &format!(
            "SELECT {CARD_COLUMNS}, d.order_ref FROM ecard_deliveries d JOIN ecard_stock s ON s.id = d.stock_id WHERE d.id = ?1"
        ),
        [r.delivery_id],
        |row| Ok((card_from_row(row)?, row.get(15)?)),
    )
    .map_err(map_err)?;
    let card = line_ref_card.1;
    let audit = ecard_audit::revealed(r, order_ref, &card.tail);
    insert_audit(conn, &audit, 1).map_err(map_err)?;
    Ok(card)
}

/// The condition of an order list's filter on `ecard_orders o`.
pub(crate) fn order_condition(f: &OrderFilter) -> (String, Vec<Value>) {
    let mut condition = "o.merchant_id = ?".to_owned();
    let mut values = vec![Value::Integer(f.merchant_id)];
    if let Some(m) = f.marketplace {
        condition.push_str(" AND o.marketplace = ?");
        values.push(Value::Text(m.code().into()));
    }
    if let Some(id) = f.order_id.as_deref().filter(|s| !s.is_empty()) {
        condition.push_str(" AND instr(o.order_id, ?) > 0");
        values.push(Value::Text(id.into()));
    }
    if let Some(p) = f.product_id {
        condition.push_str(" AND EXISTS (SELECT 1 FROM ecard_order_lines l WHERE l.order_ref = o.id AND l.product_id = ?)");
        values.push(Value::Integer(p));
    }
    if let Some(status) = f.status {
        let card = match status {
            DeliveredStatus::Verified => "d.verified_at IS NOT NULL",
            DeliveredStatus::Refunded => "d.verified_at IS NULL AND d.refunded_at IS NOT NULL",
            DeliveredStatus::Expired => {
                "d.verified_at IS NULL AND d.refunded_at IS NULL AND d.valid_until < ?"
            }
            DeliveredStatus::Unverified => {
                "d.verified_at IS NULL AND d.refunded_at IS NULL AND d.valid_until >= ?"
            }
        };
        condition.push_str(&format!(
            " AND EXISTS (SELECT 1 FROM ecard_deliveries d WHERE d.order_ref = o.id AND {card})"
        ));
        if matches!(
            status,
            DeliveredStatus::Expired | DeliveredStatus::Unverified
        ) {
            values.push(Value::Integer(f.now));
        }
    }
    if f.out_of_stock {
        condition.push_str(
            " AND EXISTS (SELECT 1 FROM ecard_order_lines l WHERE l.order_ref = o.id AND l.paid_at IS NOT NULL \
             AND l.delivered_at IS NULL AND l.refunded_at IS NULL)",
        );
    }
    for (bound, op) in [(f.from, ">="), (f.to, "<")] {
        if let Some(at) = bound {
            condition.push_str(&format!(" AND o.created_at {op} ?"));
            values.push(Value::Integer(at));
        }
    }
    (condition, values)
}

/// 过期预警 and expiry, up to `limit` cards of each: a due reminder is
/// marked once (`ecard.expiring`); a card past its end unused is noted once
/// (`ecard.expired` when its product refunds expired cards).
pub(crate) fn expiry_job(conn: &Connection, now: i64, limit: i64) -> StoreResult<(i64, i64)> {
    let due: Vec<(i64, i64, i64, i64, i64)> = {
        let mut stmt = conn
            .prepare_cached(
                "SELECT d.id, d.merchant_id, d.order_ref, d.product_id, d.valid_until FROM ecard_deliveries d \
                 JOIN ecard_products p ON p.id = d.product_id \
                 WHERE d.verified_at IS NULL AND d.refunded_at IS NULL AND d.expiry_noted_at IS NULL \
                 AND d.reminded_at IS NULL AND p.remind_days > 0 \
                 AND d.valid_until >= ?1 AND d.valid_until - p.remind_days * 86400 <= ?1 \
                 ORDER BY d.valid_until LIMIT ?2",
            )
            .map_err(map_err)?;
        let rows = stmt
            .query_map([now, limit], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .map_err(map_err)?;
        rows.collect::<Result<_, _>>().map_err(map_err)?
    };
    for (id, merchant_id, order_ref, product_id, valid_until) in &due {
        execute_one(
            conn,
            "UPDATE ecard_deliveries SET reminded_at = ?2 WHERE id = ?1 AND reminded_at IS NULL \
             AND verified_at IS NULL AND refunded_at IS NULL",
            [*id, now],
        )?;
        let order = order_header(conn, *merchant_id, *order_ref)?;
        let what = EcardHappening::Expiring {
            delivery_id: *id,
            product_id: *product_id,
            valid_until: *valid_until,
        };
        insert_event(conn, &NewEvent::ecard_order(&order, what, now))?;
    }
    let ended: Vec<(i64, i64, i64, i64, i64, bool)> = {
        let mut stmt = conn
            .prepare_cached(
                "SELECT d.id, d.merchant_id, d.order_ref, d.product_id, d.valid_until, p.refund_expired \
                 FROM ecard_deliveries d JOIN ecard_products p ON p.id = d.product_id \
                 WHERE d.verified_at IS NULL AND d.refunded_at IS NULL AND d.expiry_noted_at IS NULL \
                 AND d.valid_until < ?1 ORDER BY d.valid_until LIMIT ?2",
            )
            .map_err(map_err)?;
        let rows = stmt
            .query_map([now, limit], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })
            .map_err(map_err)?;
        rows.collect::<Result<_, _>>().map_err(map_err)?
    };
    for (id, merchant_id, order_ref, product_id, valid_until, refund) in &ended {
        execute_one(
            conn,
            "UPDATE ecard_deliveries SET expiry_noted_at = ?2 WHERE id = ?1 AND expiry_noted_at IS NULL \
             AND verified_at IS NULL AND refunded_at IS NULL",
            [*id, now],
        )?;
        if *refund {
            let order = order_header(conn, *merchant_id, *order_ref)?;
            let what = EcardHappening::Expired {
                delivery_id: *id,
                product_id: *product_id,
                valid_until: *valid_until,
            };
            insert_event(conn, &NewEvent::ecard_order(&order, what, now))?;
        }
    }
    Ok((due.len() as i64, ended.len() as i64))
}
