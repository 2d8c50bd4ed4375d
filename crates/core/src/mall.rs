//! Mall orders (商城订单): a paid order of 礼品卡商品 the merchant's system
//! reports, and the codes it issues.

use crate::audit::Actor;
use crate::code::{new_codes, IssuedCode, NewCode};
use crate::ledger::{ApiCall, Called, CustomerRef};
use crate::secrets::MasterKey;
use crate::store::Store;
use crate::StoreResult;

/// Most codes one mall order line may ask for.
pub const ORDER_CODES_MAX: i64 = 100;

/// A paid mall order the merchant's system reported, with its codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MallOrder {
    pub merchant_id: i64,
    pub order_id: String,
    pub product_id: i64,
    pub product_name: String,
    pub quantity: i64,
    pub customer_id: Option<i64>,
    pub created_at: i64,
    pub codes: Vec<IssuedCode>,
}

/// A paid order as the store records it (codes already made by the caller).
#[derive(Debug, Clone)]
pub struct IssueOrderCodes {
    pub merchant_id: i64,
    pub order_id: String,
    pub product_id: i64,
    pub quantity: i64,
    pub customer: Option<CustomerRef>,
    pub codes: Vec<NewCode>,
    pub actor: Actor,
    pub now: i64,
}

/// Issues `quantity` codes of the product's template for a paid mall order.
/// Reporting the same order again returns its codes and issues nothing.
pub async fn issue_order_codes(
    store: &dyn Store,
    master: &MasterKey,
    call: &ApiCall,
    order: IssueOrderCodesRequest,
) -> StoreResult<Called<MallOrder>> {
    let merchant = store.get_merchant(order.merchant_id).await?;
    let codes = new_codes(
        master,
        order.merchant_id,
        merchant.key_version,
        order.quantity as usize,
    );
    store
        .issue_order_codes(
            call,
            &IssueOrderCodes {
                merchant_id: order.merchant_id,
                order_id: order.order_id,
                product_id: order.product_id,
                quantity: order.quantity,
                customer: order.customer,
                codes,
                actor: order.actor,
                now: order.now,
            },
        )
        .await
}

/// What a caller asks [`issue_order_codes`] for (checked at the edge).
#[derive(Debug, Clone)]
pub struct IssueOrderCodesRequest {
    pub merchant_id: i64,
    pub order_id: String,
    pub product_id: i64,
    pub quantity: i64,
    pub customer: Option<CustomerRef>,
    pub actor: Actor,
    pub now: i64,
}

/// Mall orders in the database.
#[async_trait::async_trait]
pub trait MallStore: Send + Sync + 'static {
    /// Records a paid mall order and its new codes, or returns the codes it
    /// already has (`replayed`); `OrderMismatch` when it was reported with
    /// another product or quantity.
    async fn issue_order_codes(
        &self,
        call: &ApiCall,
        order: &IssueOrderCodes,
    ) -> StoreResult<Called<MallOrder>>;
    /// A customer's mall orders with their codes, newest first.
    async fn list_customer_orders(
        &self,
        merchant_id: i64,
        customer_id: i64,
    ) -> StoreResult<Vec<MallOrder>>;
}
