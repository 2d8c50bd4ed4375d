//! Pickups and pickup orders (提货订单): the guarded `active → used` with the
//! order, lists and exports, cancelling and shipping.

use crate::cards::card_from_row;
use crate::cards::card_move_sql;
use crate::cards::CARD_COLUMNS;
use crate::cards::CARD_FROM;
use crate::events::insert_event;
use crate::sql::decode;
use crate::sql::filtered_page;
use crate::sql::insert_audit;
use crate::sql::map_err;
use crate::SqliteStore;
use kaquan_core::audit::AuditEntry;
use kaquan_core::card::CardMove;
use kaquan_core::card::CardSecret;
use kaquan_core::event::{EventType, NewEvent};
use kaquan_core::pickup::order::NewPickupOrder;
use kaquan_core::pickup::order::PickupOrder;
use kaquan_core::pickup::order::PickupOrderFilter;
use kaquan_core::pickup::order::Shipment;
use kaquan_core::pickup::Channel;
use kaquan_core::pickup::Consignee;
use kaquan_core::pickup::OrderStatus;
use kaquan_core::store::Page;
use kaquan_core::{Conflict, StoreError, StoreResult};
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, OptionalExtension, Row};

pub(crate) const ORDER_COLUMNS: &str = "id, merchant_id, card_id, card_number, batch_id, goods_id, goods_name, channel, status, \
    consignee, phone, province, city, district, address, appointment_date, carrier, tracking_number, shipped_at, \
    created_by, created_at, cancelled_at";

pub(crate) fn order_from_row(row: &Row) -> rusqlite::Result<PickupOrder> {
    Ok(PickupOrder {
        id: row.get(0)?,
        merchant_id: row.get(1)?,
        card_id: row.get(2)?,
        card_number: row.get(3)?,
        batch_id: row.get(4)?,
        goods_id: row.get(5)?,
        goods_name: row.get(6)?,
        channel: decode(Channel::parse(&row.get::<_, String>(7)?), 7, "channel")?,
        status: decode(
            OrderStatus::parse(&row.get::<_, String>(8)?),
            8,
            "order status",
        )?,
        consignee: Consignee {
            name: row.get(9)?,
            phone: row.get(10)?,
            province: row.get(11)?,
            city: row.get(12)?,
            district: row.get(13)?,
            address: row.get(14)?,
        },
        appointment_date: row.get(15)?,
        carrier: row.get(16)?,
        tracking_number: row.get(17)?,
        shipped_at: row.get(18)?,
        created_by: row.get(19)?,
        created_at: row.get(20)?,
        cancelled_at: row.get(21)?,
    })
}

/// A list's order: newest first, or the soonest due first.
fn list_order(filter: &PickupOrderFilter) -> &'static str {
    if filter.soonest_due_first {
        "appointment_date IS NULL, appointment_date, created_at, id"
    } else {
        "id DESC"
    }
}

pub(crate) fn order_filter_sql(
    merchant_id: i64,
    filter: &PickupOrderFilter,
) -> (String, Vec<Value>) {
    let mut sql = String::from("merchant_id = ?");
    let mut values = vec![Value::Integer(merchant_id)];
    let mut push = |clause: &str, value: Value| {
        sql.push_str(clause);
        values.push(value);
    };
    if let Some(v) = filter.status {
        push(" AND status = ?", Value::Text(v.code().into()));
    }
    if let Some(v) = &filter.appointment_from {
        push(" AND appointment_date >= ?", Value::Text(v.clone()));
    }
    if let Some(v) = &filter.appointment_until {
        push(" AND appointment_date <= ?", Value::Text(v.clone()));
    }
    if let Some(v) = filter.shipped_from {
        push(" AND shipped_at >= ?", Value::Integer(v));
    }
    if let Some(v) = filter.shipped_until {
        push(" AND shipped_at <= ?", Value::Integer(v));
    }
    if let Some(v) = filter.created_from {
        push(" AND created_at >= ?", Value::Integer(v));
    }
    if let Some(v) = filter.created_until {
        push(" AND created_at <= ?", Value::Integer(v));
    }
    if let Some(v) = filter.batch_id {
        push(" AND batch_id = ?", Value::Integer(v));
    }
    if let Some(v) = filter.goods_id {
        push(" AND goods_id = ?", Value::Integer(v));
    }
    if let Some(v) = filter.channel {
        push(" AND channel = ?", Value::Text(v.code().into()));
    }
    if let Some(v) = &filter.card_number {
        push(
            " AND card_number = ?",
            Value::Text(v.trim().to_ascii_uppercase()),
        );
    }
    if let Some(v) = &filter.phone {
        push(" AND phone = ?", Value::Text(v.trim().to_owned()));
    }
    if let Some((day, start)) = &filter.due_before {
        sql.push_str(
            " AND (appointment_date < ? OR (appointment_date IS NULL AND created_at < ?))",
        );
        values.push(Value::Text(day.clone()));
        values.push(Value::Integer(*start));
    }
    (sql, values)
}

#[async_trait::async_trait]
impl kaquan_core::pickup::order::PickupOrderStore for SqliteStore {
    async fn card_for_check(
        &self,
        merchant_id: i64,
        number: &str,
    ) -> StoreResult<Option<CardSecret>> {
        let number = number.trim().to_ascii_uppercase();
        self.read(move |conn| {
            conn.query_row(
                &format!(
                    "SELECT {CARD_COLUMNS}, cards.secret_digest, cards.key_version FROM {CARD_FROM} \
                     WHERE cards.merchant_id = ?1 AND cards.number = ?2"
                ),
                params![merchant_id, number],
                |r| Ok(CardSecret { card: card_from_row(r)?, secret_digest: r.get(16)?, key_version: r.get(17)? }),
            )
            .optional()
            .map_err(map_err)
        })
        .await
    }

    async fn redeem_pickup(
        &self,
        order: &NewPickupOrder,
        audit: &AuditEntry,
    ) -> StoreResult<PickupOrder> {
        let (order, audit) = (order.clone(), audit.clone());
        self.write(move |conn| {
            let goods_name: String = conn
                .query_row(
                    "SELECT goods.name FROM card_goods JOIN goods ON goods.id = card_goods.goods_id \
                     WHERE card_goods.card_id = ?1 AND card_goods.goods_id = ?2 AND goods.merchant_id = ?3 AND goods.on_shelf = 1",
                    params![order.card_id, order.goods_id, order.merchant_id],
                    |r| r.get(0),
                )
                .optional()
                .map_err(map_err)?
                .ok_or(StoreError::NotFound)?;
            let used: Option<(String, i64)> = conn
                .query_row(
                    card_move_sql(CardMove::Use),
                    params![order.created_at, order.card_id, order.merchant_id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(map_err)?;
            let Some((card_number, batch_id)) = used else {
                return Err(StoreError::Conflict(Conflict::CardNotUsable));
            };
            let status = if order.channel == Channel::AtLocation { OrderStatus::PickedUp } else { OrderStatus::Pending };
            let c = order.consignee.clone().unwrap_or_default();
            let created = conn
                .query_row(
                    &format!(
                        "INSERT INTO orders (merchant_id, card_id, card_number, batch_id, goods_id, goods_name, channel, status, \
                         consignee, phone, province, city, district, address, appointment_date, created_by, created_at) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17) RETURNING {ORDER_COLUMNS}"
                    ),
                    params![
                        order.merchant_id,
                        order.card_id,
                        card_number,
                        batch_id,
                        order.goods_id,
                        goods_name,
                        order.channel.code(),
                        status.code(),
                        c.name,
                        c.phone,
                        c.province,
                        c.city,
                        c.district,
                        c.address,
                        order.appointment_date,
                        order.created_by,
                        order.created_at
                    ],
                    order_from_row,
                )
                .map_err(map_err)?;
            let audit = AuditEntry { target: format!("order={} card={}", created.id, created.card_number), ..audit.clone() };
            insert_audit(conn, &audit, 1).map_err(map_err)?;
            insert_event(conn, &NewEvent::order(&created, EventType::PickupOrderCreated, order.created_at))?;
            Ok(created)
        })
        .await
    }

    async fn get_order(&self, merchant_id: i64, order_id: i64) -> StoreResult<PickupOrder> {
        self.read(move |conn| {
            conn.query_row(
                &format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = ?1 AND merchant_id = ?2"),
                params![order_id, merchant_id],
                order_from_row,
            )
            .map_err(map_err)
        })
        .await
    }

    async fn latest_order_of_card(
        &self,
        merchant_id: i64,
        card_id: i64,
    ) -> StoreResult<Option<PickupOrder>> {
        self.read(move |conn| {
            conn.query_row(
                &format!("SELECT {ORDER_COLUMNS} FROM orders WHERE merchant_id = ?1 AND card_id = ?2 ORDER BY id DESC LIMIT 1"),
                params![merchant_id, card_id],
                order_from_row,
            )
            .optional()
            .map_err(map_err)
        })
        .await
    }

    async fn list_orders(
        &self,
        merchant_id: i64,
        filter: &PickupOrderFilter,
        page: Page,
    ) -> StoreResult<(Vec<PickupOrder>, i64)> {
        let (condition, values) = order_filter_sql(merchant_id, filter);
        let order = list_order(filter);
        self.read(move |conn| {
            filtered_page(
                conn,
                ("orders", ORDER_COLUMNS, order),
                &condition,
                values,
                page,
                order_from_row,
            )
        })
        .await
    }

    async fn count_orders(
        &self,
        merchant_id: i64,
        filters: &[PickupOrderFilter],
    ) -> StoreResult<Vec<i64>> {
        let conditions: Vec<_> = filters
            .iter()
            .map(|f| order_filter_sql(merchant_id, f))
            .collect();
        self.read(move |conn| {
            conditions
                .into_iter()
                .map(|(condition, values)| {
                    conn.query_row(
                        &format!("SELECT count(*) FROM orders WHERE {condition}"),
                        params_from_iter(values),
                        |r| r.get(0),
                    )
                    .map_err(map_err)
                })
                .collect()
        })
        .await
    }

    async fn orders_after(
        &self,
        merchant_id: i64,
        filter: &PickupOrderFilter,
        after_id: i64,
        limit: i64,
    ) -> StoreResult<Vec<PickupOrder>> {
        let (condition, mut values) = order_filter_sql(merchant_id, filter);
        values.push(Value::Integer(after_id));
        values.push(Value::Integer(limit));
        self.read(move |conn| {
            let mut stmt = conn
                .prepare(&format!("SELECT {ORDER_COLUMNS} FROM orders WHERE {condition} AND id > ? ORDER BY id LIMIT ?"))
                .map_err(map_err)?;
            let rows = stmt.query_map(params_from_iter(values), order_from_row).map_err(map_err)?;
            rows.collect::<Result<_, _>>().map_err(map_err)
        })
        .await
    }

    async fn cancel_order(
        &self,
        merchant_id: i64,
        order_id: i64,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let audit = audit.clone();
        self.write(move |conn| {
            let cancelled: Option<PickupOrder> = conn
                .query_row(
                    &format!(
                        "UPDATE orders SET status = 'cancelled', cancelled_at = ?1 WHERE id = ?2 AND merchant_id = ?3 \
                         AND status = 'pending' RETURNING {ORDER_COLUMNS}"
                    ),
                    params![audit.created_at, order_id, merchant_id],
                    order_from_row,
                )
                .optional()
                .map_err(map_err)?;
            let Some(cancelled) = cancelled else {
                let exists: i64 = conn
                    .query_row("SELECT count(*) FROM orders WHERE id = ?1 AND merchant_id = ?2", params![order_id, merchant_id], |r| r.get(0))
                    .map_err(map_err)?;
                return Err(if exists == 1 { StoreError::Conflict(Conflict::OrderNotPending { order_id }) } else { StoreError::NotFound });
            };
            let n = conn
                .execute(
                    card_move_sql(CardMove::Unuse),
                    params![cancelled.card_id, merchant_id],
                )
                .map_err(map_err)?;
            if n != 1 {
                return Err(StoreError::Conflict(Conflict::CardNotUsed));
            }
            insert_audit(conn, &audit, 1).map_err(map_err)?;
            insert_event(conn, &NewEvent::order(&cancelled, EventType::PickupOrderCancelled, audit.created_at))?;
            Ok(())
        })
        .await
    }

    async fn ship_orders(
        &self,
        merchant_id: i64,
        shipments: &[Shipment],
        now: i64,
        audit: &AuditEntry,
    ) -> StoreResult<i64> {
        let (shipments, audit) = (shipments.to_vec(), audit.clone());
        self.write(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "UPDATE orders SET status = 'shipped', carrier = ?1, tracking_number = ?2, shipped_at = ?3 \
                     WHERE id = ?4 AND merchant_id = ?5 AND status = 'pending' RETURNING {ORDER_COLUMNS}"
                ))
                .map_err(map_err)?;
            for s in &shipments {
                let shipped = stmt
                    .query_row(params![s.carrier, s.tracking_number, now, s.order_id, merchant_id], order_from_row)
                    .optional()
                    .map_err(map_err)?
                    .ok_or(StoreError::Conflict(Conflict::OrderNotPending { order_id: s.order_id }))?;
                insert_event(conn, &NewEvent::order(&shipped, EventType::PickupOrderShipped, now))?;
            }
            insert_audit(conn, &audit, shipments.len() as i64).map_err(map_err)?;
            Ok(shipments.len() as i64)
        })
        .await
    }
}
