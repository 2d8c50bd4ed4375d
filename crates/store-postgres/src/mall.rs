//! Mall orders and the codes they issue, once per order.

use crate::codes::code_from_row;
use crate::codes::insert_codes;
use crate::codes::CODE_COLUMNS;
use crate::codes::CODE_JOINS;
use crate::customers::resolve_customer;
use crate::engine::Pipelined;
use crate::ledger::claim_call;
use crate::ledger::record_call;
use crate::ledger::replayed_refusal;
use crate::sql::all;
use crate::sql::exec;
use crate::sql::insert_audit;
use crate::sql::one;
use crate::sql::opt;
use crate::PgStore;
use deadpool_postgres::GenericClient;
use kaquan_core::audit::AuditEntry;
use kaquan_core::ledger::ApiCall;
use kaquan_core::ledger::Called;
use kaquan_core::ledger::Refusal;
use kaquan_core::mall::IssueOrderCodes;
use kaquan_core::mall::MallOrder;
use kaquan_core::StoreResult;

pub(crate) async fn get_mall_order(c: &impl GenericClient, id: i64) -> StoreResult<MallOrder> {
    let r = one(
        c,
        "SELECT merchant_id, order_id, product_id, product_name, quantity, customer_id, created_at FROM mall_orders WHERE id = $1",
        &[&id],
    )
    .await?;
    let codes = all(
        c,
        &format!(
            "SELECT {CODE_COLUMNS} FROM {CODE_JOINS} WHERE c.mall_order_id = $1 ORDER BY c.id"
        ),
        &[&id],
    )
    .await?
    .iter()
    .map(code_from_row)
    .collect::<StoreResult<_>>()?;
    Ok(MallOrder {
        merchant_id: r.get(0),
        order_id: r.get(1),
        product_id: r.get(2),
        product_name: r.get(3),
        quantity: r.get(4),
        customer_id: r.get(5),
        created_at: r.get(6),
        codes,
    })
}

#[async_trait::async_trait]
impl kaquan_core::mall::MallStore for PgStore {
    async fn issue_order_codes(
        &self,
        call: &ApiCall,
        order: &IssueOrderCodes,
    ) -> StoreResult<Called<MallOrder>> {
        let merchant_id = order.merchant_id;
        let tx = Pipelined::new(self.client().await?);
        let c = tx.client();
        let ((), claimed) =
            futures_util::try_join!(tx.begin(), claim_call(c, merchant_id, call, order.now))?;
        let answer = match claimed {
            Some(Err(refusal)) => Some(Called {
                result: Err(refusal),
                replayed: false,
            }),
            Some(Ok(recorded)) => Some(match recorded.mall_order_id {
                Some(id) => Called {
                    result: Ok(get_mall_order(c, id).await?),
                    replayed: true,
                },
                None => replayed_refusal(&recorded)?,
            }),
            None => None,
        };
        if let Some(answer) = answer {
            tx.finish(&answer.result).await?;
            return Ok(answer);
        }
        // Reporting one order twice at once: the second waits on the first's row.
        let inserted = opt(
            c,
            "INSERT INTO mall_orders (merchant_id, order_id, product_id, product_name, quantity, customer_id, created_at) \
             SELECT $1, $2, p.id, p.name, $3, NULL, $4 FROM giftcard_products p JOIN code_templates t ON t.id = p.template_id \
             WHERE p.id = $5 AND p.merchant_id = $1 AND p.on_shelf AND t.deleted_at IS NULL \
             ON CONFLICT (merchant_id, order_id) DO NOTHING RETURNING id, (SELECT template_id FROM giftcard_products WHERE id = $5)",
            &[&merchant_id, &order.order_id, &order.quantity, &order.now, &order.product_id],
        )
        .await?;
        let (result, replayed) = match inserted {
            Some(row) => {
                let (id, template_id): (i64, i64) = (row.get(0), row.get(1));
                if let Some(customer) = &order.customer {
                    let customer_id =
                        resolve_customer(c, merchant_id, customer, order.now, true).await?;
                    exec(
                        c,
                        "UPDATE mall_orders SET customer_id = $1 WHERE id = $2",
                        &[&customer_id, &id],
                    )
                    .await?;
                }
                insert_codes(
                    c,
                    merchant_id,
                    template_id,
                    Some(id),
                    &order.codes,
                    order.now,
                )
                .await?;
                insert_audit(
                    c,
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
                .await?;
                (Ok(id), false)
            }
            None => {
                let existing = opt(
                    c,
                    "SELECT id, product_id, quantity FROM mall_orders WHERE merchant_id = $1 AND order_id = $2",
                    &[&merchant_id, &order.order_id],
                )
                .await?;
                match existing {
                    Some(r)
                        if r.get::<_, i64>(1) == order.product_id
                            && r.get::<_, i64>(2) == order.quantity =>
                    {
                        (Ok(r.get(0)), true)
                    }
                    Some(_) => (Err(Refusal::OrderMismatch), false),
                    None => (Err(Refusal::ProductUnavailable), false),
                }
            }
        };
        let called = match result {
            Ok(id) => {
                record_call(c, merchant_id, call, None, Some(id), None).await?;
                Called {
                    result: Ok(get_mall_order(c, id).await?),
                    replayed,
                }
            }
            Err(refusal) => {
                record_call(c, merchant_id, call, None, None, Some(refusal)).await?;
                Called {
                    result: Err(refusal),
                    replayed: false,
                }
            }
        };
        tx.finish(&called.result).await?;
        Ok(called)
    }

    async fn list_customer_orders(
        &self,
        merchant_id: i64,
        customer_id: i64,
    ) -> StoreResult<Vec<MallOrder>> {
        let client = self.client().await?;
        let ids: Vec<i64> = all(
            &client,
            "SELECT id FROM mall_orders WHERE merchant_id = $1 AND customer_id = $2 ORDER BY id DESC LIMIT 100",
            &[&merchant_id, &customer_id],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
        let mut orders = Vec::with_capacity(ids.len());
        for id in ids {
            orders.push(get_mall_order(&client, id).await?);
        }
        Ok(orders)
    }
}
