//! Mall orders and the codes they issue, once per order.

use crate::codes::code_from_row;
use crate::codes::insert_codes;
use crate::codes::CODE_COLUMNS;
use crate::codes::CODE_JOINS;
use crate::customers::resolve_customer;
use crate::ledger::guard_call;
use crate::ledger::record_call;
use crate::ledger::replayed_refusal;
use crate::sql::insert_audit;
use crate::sql::map_err;
use crate::SqliteStore;
use kaquan_core::audit::AuditEntry;
use kaquan_core::code::IssuedCode;
use kaquan_core::ledger::ApiCall;
use kaquan_core::ledger::Called;
use kaquan_core::ledger::Refusal;
use kaquan_core::mall::IssueOrderCodes;
use kaquan_core::mall::MallOrder;
use kaquan_core::StoreResult;
use rusqlite::{params, Connection, OptionalExtension};

pub(crate) fn mall_order_codes(
    conn: &Connection,
    mall_order_id: i64,
) -> StoreResult<Vec<IssuedCode>> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {CODE_COLUMNS} FROM {CODE_JOINS} WHERE c.mall_order_id = ?1 ORDER BY c.id"
        ))
        .map_err(map_err)?;
    let rows = stmt
        .query_map([mall_order_id], code_from_row)
        .map_err(map_err)?;
    rows.collect::<Result<_, _>>().map_err(map_err)
}

pub(crate) fn get_mall_order(conn: &Connection, id: i64) -> StoreResult<MallOrder> {
    let mut order = conn
        .query_row(
            "SELECT merchant_id, order_id, product_id, product_name, quantity, customer_id, created_at FROM mall_orders WHERE id = ?1",
            [id],
            |r| {
                Ok(MallOrder {
                    merchant_id: r.get(0)?,
                    order_id: r.get(1)?,
                    product_id: r.get(2)?,
                    product_name: r.get(3)?,
                    quantity: r.get(4)?,
                    customer_id: r.get(5)?,
                    created_at: r.get(6)?,
                    codes: Vec::new(),
                })
            },
        )
        .map_err(map_err)?;
    order.codes = mall_order_codes(conn, id)?;
    Ok(order)
}

#[async_trait::async_trait]
impl kaquan_core::mall::MallStore for SqliteStore {
    async fn issue_order_codes(
        &self,
        call: &ApiCall,
        order: &IssueOrderCodes,
    ) -> StoreResult<Called<MallOrder>> {
        let (call, order) = (call.clone(), order.clone());
        self.write(move |conn| {
            let merchant_id = order.merchant_id;
            match guard_call(conn, merchant_id, &call)? {
                Some(Err(refusal)) => return Ok(Called { result: Err(refusal), replayed: false }),
                Some(Ok(recorded)) => {
                    return match recorded.mall_order_id {
                        Some(id) => Ok(Called { result: Ok(get_mall_order(conn, id)?), replayed: true }),
                        None => replayed_refusal(&recorded),
                    };
                }
                None => {}
            }
            let existing: Option<(i64, i64, i64)> = conn
                .query_row(
                    "SELECT id, product_id, quantity FROM mall_orders WHERE merchant_id = ?1 AND order_id = ?2",
                    params![merchant_id, order.order_id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()
                .map_err(map_err)?;
            let result = match existing {
                Some((id, product_id, quantity)) if product_id == order.product_id && quantity == order.quantity => {
                    record_call(conn, merchant_id, &call, None, Some(id), None, order.now)?;
                    return Ok(Called { result: Ok(get_mall_order(conn, id)?), replayed: true });
                }
                Some(_) => Err(Refusal::OrderMismatch),
                None => {
                    let product: Option<(i64, String)> = conn
                        .query_row(
                            "SELECT p.template_id, p.name FROM giftcard_products p JOIN code_templates t ON t.id = p.template_id \
                             WHERE p.id = ?1 AND p.merchant_id = ?2 AND p.on_shelf AND t.deleted_at IS NULL",
                            params![order.product_id, merchant_id],
                            |r| Ok((r.get(0)?, r.get(1)?)),
                        )
                        .optional()
                        .map_err(map_err)?;
                    match product {
                        None => Err(Refusal::ProductUnavailable),
                        Some((template_id, product_name)) => {
                            let customer_id = match &order.customer {
                                Some(customer) => resolve_customer(conn, merchant_id, customer, order.now, true)?,
                                None => None,
                            };
                            let id: i64 = conn
                                .query_row(
                                    "INSERT INTO mall_orders (merchant_id, order_id, product_id, product_name, quantity, customer_id, created_at) \
                                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING id",
                                    params![merchant_id, order.order_id, order.product_id, product_name, order.quantity, customer_id, order.now],
                                    |r| r.get(0),
                                )
                                .map_err(map_err)?;
                            insert_codes(conn, merchant_id, template_id, Some(id), &order.codes, order.now)?;
                            insert_audit(
                                conn,
                                &AuditEntry {
                                    merchant_id,
                                    actor: order.actor.clone(),
                                    action: "issue_order_codes".into(),
                                    target: format!("mall_order={}", order.order_id),
                                    detail: format!("product={} quantity={}", order.product_id, order.quantity),
                                    n_affected: order.quantity,
                                    created_at: order.now,
                                },
                                order.quantity,
                            )
                            .map_err(map_err)?;
                            Ok(id)
                        }
                    }
                }
            };
            match result {
                Ok(id) => {
                    record_call(conn, merchant_id, &call, None, Some(id), None, order.now)?;
                    Ok(Called { result: Ok(get_mall_order(conn, id)?), replayed: false })
                }
                Err(refusal) => {
                    record_call(conn, merchant_id, &call, None, None, Some(refusal), order.now)?;
                    Ok(Called { result: Err(refusal), replayed: false })
                }
            }
        })
        .await
    }

    async fn list_customer_orders(
        &self,
        merchant_id: i64,
        customer_id: i64,
    ) -> StoreResult<Vec<MallOrder>> {
        self.read(move |conn| {
            let ids: Vec<i64> = conn
                .prepare("SELECT id FROM mall_orders WHERE merchant_id = ?1 AND customer_id = ?2 ORDER BY id DESC LIMIT 100")
                .and_then(|mut s| s.query_map(params![merchant_id, customer_id], |r| r.get(0))?.collect())
                .map_err(map_err)?;
            ids.into_iter().map(|id| get_mall_order(conn, id)).collect()
        })
        .await
    }
}
