//! Pickup orders (提货订单): what a pickup creates, how the merchant lists,
//! ships and cancels them.

use crate::audit::AuditEntry;
use crate::card::CardSecret;
use crate::pickup::{Channel, Consignee, OrderStatus};
use crate::store::Page;
use crate::StoreResult;

/// A pickup as the use case hands it to the store.
#[derive(Debug, Clone)]
pub struct NewPickupOrder {
    pub merchant_id: i64,
    pub card_id: i64,
    pub goods_id: i64,
    pub channel: Channel,
    /// `None` for an in-store pickup: nothing is shipped.
    pub consignee: Option<Consignee>,
    /// `YYYY-MM-DD`, when the merchant's appointment mode asks for one.
    pub appointment_date: Option<String>,
    pub created_by: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PickupOrder {
    pub id: i64,
    pub merchant_id: i64,
    pub card_id: i64,
    pub card_number: String,
    pub batch_id: i64,
    pub goods_id: i64,
    pub goods_name: String,
    pub channel: Channel,
    pub status: OrderStatus,
    pub consignee: Consignee,
    pub appointment_date: Option<String>,
    pub carrier: Option<String>,
    pub tracking_number: Option<String>,
    pub shipped_at: Option<i64>,
    pub created_by: String,
    pub created_at: i64,
    pub cancelled_at: Option<i64>,
}

/// Which orders a list or export covers; every field narrows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PickupOrderFilter {
    pub status: Option<OrderStatus>,
    /// Inclusive `YYYY-MM-DD` bounds on the appointment date.
    pub appointment_from: Option<String>,
    pub appointment_until: Option<String>,
    /// Inclusive timestamp bounds on the shipping time.
    pub shipped_from: Option<i64>,
    pub shipped_until: Option<i64>,
    /// Inclusive timestamp bounds on the order time.
    pub created_from: Option<i64>,
    pub created_until: Option<i64>,
    pub batch_id: Option<i64>,
    pub goods_id: Option<i64>,
    pub channel: Option<Channel>,
    pub card_number: Option<String>,
    pub phone: Option<String>,
    /// 逾期待发: orders due before this day (`YYYY-MM-DD`, with the
    /// timestamp of its start): an appointment date before it, or no
    /// appointment date and placed before it.
    pub due_before: Option<(String, i64)>,
    /// Lists the soonest due first (appointment date, then order time)
    /// instead of the newest first. Exports keep their order by id.
    pub soonest_due_first: bool,
}

/// One order to mark shipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shipment {
    pub order_id: i64,
    pub carrier: String,
    pub tracking_number: String,
}

/// Pickup orders in the database.
#[async_trait::async_trait]
pub trait PickupOrderStore: Send + Sync + 'static {
    /// The card with this number and its password digest, for checking.
    async fn card_for_check(
        &self,
        merchant_id: i64,
        number: &str,
    ) -> StoreResult<Option<CardSecret>>;
    /// In one transaction: moves the card `active → used` if it is within its
    /// validity at `created_at` and linked to the goods, inserts the order
    /// and writes `audit`. `Conflict` when the card is not usable (used,
    /// inactive, voided, expired, or another pickup won the race); `NotFound`
    /// when the goods are not among the card's.
    async fn redeem_pickup(
        &self,
        order: &NewPickupOrder,
        audit: &AuditEntry,
    ) -> StoreResult<PickupOrder>;
    async fn get_order(&self, merchant_id: i64, order_id: i64) -> StoreResult<PickupOrder>;
    /// The card's newest order, cancelled ones included.
    async fn latest_order_of_card(
        &self,
        merchant_id: i64,
        card_id: i64,
    ) -> StoreResult<Option<PickupOrder>>;
    async fn list_orders(
        &self,
        merchant_id: i64,
        filter: &PickupOrderFilter,
        page: Page,
    ) -> StoreResult<(Vec<PickupOrder>, i64)>;
    /// How many orders each filter matches, in the filters' order.
    async fn count_orders(
        &self,
        merchant_id: i64,
        filters: &[PickupOrderFilter],
    ) -> StoreResult<Vec<i64>>;
    /// Keyset page for exports: orders with id > `after_id`, by id.
    async fn orders_after(
        &self,
        merchant_id: i64,
        filter: &PickupOrderFilter,
        after_id: i64,
        limit: i64,
    ) -> StoreResult<Vec<PickupOrder>>;
    /// Cancels a pending order and makes its card usable again, with `audit`.
    async fn cancel_order(
        &self,
        merchant_id: i64,
        order_id: i64,
        audit: &AuditEntry,
    ) -> StoreResult<()>;
    /// Marks pending orders shipped, all or none, with `audit`. `Conflict`
    /// names the first order that was not pending.
    async fn ship_orders(
        &self,
        merchant_id: i64,
        shipments: &[Shipment],
        now: i64,
        audit: &AuditEntry,
    ) -> StoreResult<i64>;
}
