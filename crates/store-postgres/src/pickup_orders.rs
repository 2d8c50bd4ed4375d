//! Pickups and pickup orders (提货订单): the guarded `active → used` with the
//! order, lists and exports, cancelling and shipping.

use crate::cards::card_from_row;
use crate::cards::card_move_sql;
use crate::cards::CARD_COLUMNS;
use crate::cards::CARD_FROM;
use crate::events::insert_event;
use crate::sql::filtered_page;
use crate::sql::insert_audit;
use crate::sql::map_err;
use crate::sql::parse_or;
use crate::sql::refs;
use crate::sql::Params;
use crate::sql::{all, exec, one, opt};
use crate::PgStore;
use deadpool_postgres::GenericClient;
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
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

pub(crate) const ORDER_COLUMNS: &str = "id, merchant_id, card_id, card_number, batch_id, goods_id, goods_name, channel, status, \
    consignee, phone, province, city, district, address, appointment_date, carrier, tracking_number, shipped_at, \
    created_by, created_at, cancelled_at";

pub(crate) fn order_from_row(row: &Row) -> StoreResult<PickupOrder> {
    Ok(PickupOrder {
        id: row.get(0),
        merchant_id: row.get(1),
        card_id: row.get(2),
        card_number: row.get(3),
        batch_id: row.get(4),
        goods_id: row.get(5),
        goods_name: row.get(6),
        channel: parse_or(Channel::parse(row.get(7)), "channel")?,
        status: parse_or(OrderStatus::parse(row.get(8)), "order status")?,
        consignee: Consignee {
            name: row.get(9),
            phone: row.get(10),
            province: row.get(11),
            city: row.get(12),
            district: row.get(13),
            address: row.get(14),
        },
        appointment_date: row.get(15),
        carrier: row.get(16),
        tracking_number: row.get(17),
        shipped_at: row.get(18),
        created_by: row.get(19),
        created_at: row.get(20),
        cancelled_at: row.get(21),
    })
}

/// A list's order: newest first, or the soonest due first.
fn list_order(filter: &PickupOrderFilter) -> &'static str {
    if filter.soonest_due_first {
        "appointment_date NULLS LAST, created_at, id"
    } else {
        "id DESC"
    }
}

pub(crate) fn order_filter_sql(
    merchant_id: i64,
    filter: &PickupOrderFilter,
    params: &mut Params,
) -> String {
    let mut sql = String::new();
    let mut push = |params: &mut Params, clause: &str, value: Box<dyn ToSql + Sync + Send>| {
        params.push(value);
        sql.push_str(&clause.replace('?', &format!("${}", params.len())));
    };
    push(params, "merchant_id = ?", Box::new(merchant_id));
    if let Some(v) = filter.status {
        push(params, " AND status = ?", Box::new(v.code()));
    }
    if let Some(v) = &filter.appointment_from {
        push(params, " AND appointment_date >= ?", Box::new(v.clone()));
    }
    if let Some(v) = &filter.appointment_until {
        push(params, " AND appointment_date <= ?", Box::new(v.clone()));
    }
    if let Some(v) = filter.shipped_from {
        push(params, " AND shipped_at >= ?", Box::new(v));
    }
    if let Some(v) = filter.shipped_until {
        push(params, " AND shipped_at <= ?", Box::new(v));
    }
    if let Some(v) = filter.created_from {
        push(params, " AND created_at >= ?", Box::new(v));
    }
    if let Some(v) = filter.created_until {
        push(params, " AND created_at <= ?", Box::new(v));
    }
    if let Some(v) = filter.batch_id {
        push(params, " AND batch_id = ?", Box::new(v));
    }
    if let Some(v) = filter.goods_id {
        push(params, " AND goods_id = ?", Box::new(v));
    }
    if let Some(v) = filter.channel {
        push(params, " AND channel = ?", Box::new(v.code()));
    }
    if let Some(v) = &filter.card_number {
        push(
            params,
            " AND card_number = ?",
            Box::new(v.trim().to_ascii_uppercase()),
        );
    }
    if let Some(v) = &filter.phone {
        push(params, " AND phone = ?", Box::new(v.trim().to_owned()));
    }
    if let Some((day, start)) = &filter.due_before {
        push(params, " AND (appointment_date < ?", Box::new(day.clone()));
        push(
            params,
            " OR (appointment_date IS NULL AND created_at < ?))",
            Box::new(*start),
        );
    }
    sql
}

#[async_trait::async_trait]
impl kaquan_core::pickup::order::PickupOrderStore for PgStore {
    async fn card_for_check(
        &self,
        merchant_id: i64,
        number: &str,
    ) -> StoreResult<Option<CardSecret>> {
        let number = number.trim().to_ascii_uppercase();
        let sql = format!(
            "SELECT {CARD_COLUMNS}, cards.secret_digest, cards.key_version FROM {CARD_FROM} \
             WHERE cards.merchant_id = $1 AND cards.number = $2"
        );
        let rows = self.query_cached(&sql, &[&merchant_id, &number]).await?;
        rows.first()
            .map(|r| {
                Ok(CardSecret {
                    card: card_from_row(r)?,
                    secret_digest: r.get(16),
                    key_version: r.get(17),
                })
            })
            .transpose()
    }

    async fn redeem_pickup(
        &self,
        order: &NewPickupOrder,
        audit: &AuditEntry,
    ) -> StoreResult<PickupOrder> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let goods_statement = tx
            .prepare_cached(
                "SELECT goods.name FROM card_goods JOIN goods ON goods.id = card_goods.goods_id \
                 WHERE card_goods.card_id = $1 AND card_goods.goods_id = $2 AND goods.merchant_id = $3 AND goods.on_shelf",
            )
            .await
            .map_err(map_err)?;
        let goods_name: String = tx
            .query_opt(
                &goods_statement,
                &[&order.card_id, &order.goods_id, &order.merchant_id],
            )
            .await
            .map_err(map_err)?
            .ok_or(StoreError::NotFound)?
            .get(0);
        let use_statement = tx
            .prepare_cached(card_move_sql(CardMove::Use))
            .await
            .map_err(map_err)?;
        let used = tx
            .query_opt(
                &use_statement,
                &[&order.created_at, &order.card_id, &order.merchant_id],
            )
            .await
            .map_err(map_err)?
            .ok_or(StoreError::Conflict(Conflict::CardNotUsable))?;
        let (card_number, batch_id): (String, i64) = (used.get(0), used.get(1));
        let status = if order.channel == Channel::AtLocation {
            OrderStatus::PickedUp
        } else {
            OrderStatus::Pending
        };
        let c = order.consignee.clone().unwrap_or_default();
        let insert_statement = tx
            .prepare_cached(&format!(
                    "INSERT INTO orders (merchant_id, card_id, card_number, batch_id, goods_id, goods_name, channel, status, \
                     consignee, phone, province, city, district, address, appointment_date, created_by, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) RETURNING {ORDER_COLUMNS}"
            ))
            .await
            .map_err(map_err)?;
        let row = tx
            .query_one(
                &insert_statement,
                &[
                    &order.merchant_id,
                    &order.card_id,
                    &card_number,
                    &batch_id,
                    &order.goods_id,
                    &goods_name,
                    &order.channel.code(),
                    &status.code(),
                    &c.name,
                    &c.phone,
                    &c.province,
                    &c.city,
                    &c.district,
                    &c.address,
                    &order.appointment_date,
                    &order.created_by,
                    &order.created_at,
                ],
            )
            .await
            .map_err(map_err)?;
        let created = order_from_row(&row)?;
        let audit = AuditEntry {
            target: format!("order={} card={}", created.id, created.card_number),
            ..audit.clone()
        };
        insert_audit(&tx, &audit, 1).await?;
        insert_event(
            &tx,
            &NewEvent::order(&created, EventType::PickupOrderCreated, order.created_at),
        )
        .await?;
        tx.commit().await.map_err(map_err)?;
        Ok(created)
    }

    async fn get_order(&self, merchant_id: i64, order_id: i64) -> StoreResult<PickupOrder> {
        let row = opt(
            &self.client().await?,
            &format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1 AND merchant_id = $2"),
            &[&order_id, &merchant_id],
        )
        .await?
        .ok_or(StoreError::NotFound)?;
        order_from_row(&row)
    }

    async fn latest_order_of_card(
        &self,
        merchant_id: i64,
        card_id: i64,
    ) -> StoreResult<Option<PickupOrder>> {
        let row = opt(&self.client().await?, &format!("SELECT {ORDER_COLUMNS} FROM orders WHERE merchant_id = $1 AND card_id = $2 ORDER BY id DESC LIMIT 1"),
                &[&merchant_id, &card_id]).await?;
        row.as_ref().map(order_from_row).transpose()
    }

    async fn list_orders(
        &self,
        merchant_id: i64,
        filter: &PickupOrderFilter,
        page: Page,
    ) -> StoreResult<(Vec<PickupOrder>, i64)> {
        let mut params: Params = Vec::new();
        let condition = order_filter_sql(merchant_id, filter, &mut params);
        let what = ("orders", ORDER_COLUMNS, list_order(filter));
        let (rows, total) =
            filtered_page(&self.client().await?, what, &condition, params, page).await?;
        Ok((
            rows.iter()
                .map(order_from_row)
                .collect::<StoreResult<_>>()?,
            total,
        ))
    }

    async fn count_orders(
        &self,
        merchant_id: i64,
        filters: &[PickupOrderFilter],
    ) -> StoreResult<Vec<i64>> {
        let client = self.client().await?;
        let mut counts = Vec::with_capacity(filters.len());
        for filter in filters {
            let mut params: Params = Vec::new();
            let condition = order_filter_sql(merchant_id, filter, &mut params);
            let row = one(
                &client,
                &format!("SELECT count(*) FROM orders WHERE {condition}"),
                &refs(&params),
            )
            .await?;
            counts.push(row.get(0));
        }
        Ok(counts)
    }

    async fn orders_after(
        &self,
        merchant_id: i64,
        filter: &PickupOrderFilter,
        after_id: i64,
        limit: i64,
    ) -> StoreResult<Vec<PickupOrder>> {
        let mut params: Params = Vec::new();
        let condition = order_filter_sql(merchant_id, filter, &mut params);
        let n = params.len();
        params.push(Box::new(after_id));
        params.push(Box::new(limit));
        let rows = all(&self.client().await?, &format!("SELECT {ORDER_COLUMNS} FROM orders WHERE {condition} AND id > ${} ORDER BY id LIMIT ${}", n + 1, n + 2),
                &refs(&params)).await?;
        rows.iter().map(order_from_row).collect()
    }

    async fn cancel_order(
        &self,
        merchant_id: i64,
        order_id: i64,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let row = opt(
            &tx,
            &format!(
                "UPDATE orders SET status = 'cancelled', cancelled_at = $1 WHERE id = $2 AND merchant_id = $3 \
                 AND status = 'pending' RETURNING {ORDER_COLUMNS}"
            ),
            &[&audit.created_at, &order_id, &merchant_id],
        )
        .await?;
        let Some(row) = row else {
            let exists: i64 = one(
                &tx,
                "SELECT count(*) FROM orders WHERE id = $1 AND merchant_id = $2",
                &[&order_id, &merchant_id],
            )
            .await?
            .get(0);
            return Err(if exists == 1 {
                StoreError::Conflict(Conflict::OrderNotPending { order_id })
            } else {
                StoreError::NotFound
            });
        };
        let cancelled = order_from_row(&row)?;
        let n = exec(
            &tx,
            card_move_sql(CardMove::Unuse),
            &[&cancelled.card_id, &merchant_id],
        )
        .await?;
        if n != 1 {
            return Err(StoreError::Conflict(Conflict::CardNotUsed));
        }
        insert_audit(&tx, audit, 1).await?;
        insert_event(
            &tx,
            &NewEvent::order(
                &cancelled,
                EventType::PickupOrderCancelled,
                audit.created_at,
            ),
        )
        .await?;
        tx.commit().await.map_err(map_err)
    }

    async fn ship_orders(
        &self,
        merchant_id: i64,
        shipments: &[Shipment],
        now: i64,
        audit: &AuditEntry,
    ) -> StoreResult<i64> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let stmt = tx
            .prepare(&format!(
                "UPDATE orders SET status = 'shipped', carrier = $1, tracking_number = $2, shipped_at = $3 \
                 WHERE id = $4 AND merchant_id = $5 AND status = 'pending' RETURNING {ORDER_COLUMNS}"
            ))
            .await
            .map_err(map_err)?;
        for s in shipments {
            let row = tx
                .query_opt(
                    &stmt,
                    &[
                        &s.carrier,
                        &s.tracking_number,
                        &now,
                        &s.order_id,
                        &merchant_id,
                    ],
                )
                .await
                .map_err(map_err)?
                .ok_or(StoreError::Conflict(Conflict::OrderNotPending {
                    order_id: s.order_id,
                }))?;
            let shipped = order_from_row(&row)?;
            insert_event(
                &tx,
                &NewEvent::order(&shipped, EventType::PickupOrderShipped, now),
            )
            .await?;
        }
        insert_audit(&tx, audit, shipments.len() as i64).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(shipments.len() as i64)
    }
}
