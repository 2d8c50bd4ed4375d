//! Card sales (商城卖卡): the merchant's mall sells pickup cards and reports
//! each paid order through the open API. kaquan takes that many unsold,
//! inactive cards of the batch once per order, activates them and answers
//! their numbers and passwords (on every replay too); a refund of the order
//! deactivates the cards that are still unused. A card once sold is never
//! sold again, even after a refund: its password has been shown.

use crate::audit::Actor;
use crate::card::CardState;
use crate::ledger::{ApiCall, Called};
use crate::secrets::MasterKey;
use crate::store::Store;
use crate::{StoreError, StoreResult};

/// Most cards one sale may take.
pub const SALE_CARDS_MAX: i64 = 100;

/// Longest order id a mall may send.
pub const ORDER_ID_LENGTH_MAX: usize = 64;

/// Where a sale stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaleState {
    Sold,
    Refunded,
}

impl SaleState {
    pub fn code(self) -> &'static str {
        match self {
            Self::Sold => "sold",
            Self::Refunded => "refunded",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Sold => "已售出",
            Self::Refunded => "已退款",
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        [Self::Sold, Self::Refunded]
            .into_iter()
            .find(|s| s.code() == code)
    }
}

/// A paid order the mall reports: `quantity` cards of `batch_id`.
#[derive(Debug, Clone)]
pub struct NewCardSale {
    pub merchant_id: i64,
    pub order_id: String,
    pub batch_id: i64,
    pub quantity: i64,
    /// The customer's phone, kept with the sale for the merchant (and for
    /// a text message once SMS is set up); empty when not given.
    pub phone: String,
    /// Text the cards to `phone` (通知设置 switch D), with the sale.
    pub send_sms: bool,
    pub actor: Actor,
    pub now: i64,
}

/// A refund of a sale, by the mall's order id.
#[derive(Debug, Clone)]
pub struct RefundCardSale {
    pub merchant_id: i64,
    pub order_id: String,
    pub actor: Actor,
    pub now: i64,
}

/// One card of a sale as stored: its password still sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoldCard {
    pub number: String,
    pub state: CardState,
    pub secret_sealed: Option<Vec<u8>>,
    pub key_version: i32,
}

/// A sale and its cards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardSale {
    pub id: i64,
    pub merchant_id: i64,
    pub order_id: String,
    pub batch_id: i64,
    pub batch_name: String,
    pub quantity: i64,
    pub phone: String,
    pub state: SaleState,
    pub created_at: i64,
    pub refunded_at: Option<i64>,
    /// The cards the refund deactivated (the others were used already).
    pub n_refunded: i64,
    pub cards: Vec<SoldCard>,
}

/// A sold card as the mall receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoldCardView {
    pub number: String,
    pub password: String,
    pub state: CardState,
}

/// Card sales in the database.
#[async_trait::async_trait]
pub trait CardSaleStore: Send + Sync + 'static {
    /// Records the sale and activates `quantity` unsold inactive cards of
    /// the batch (with a password to show), all or none; a sale of the same
    /// order returns what it took (`replayed`). Refusals: `OrderMismatch`
    /// (the order was reported with another batch or quantity),
    /// `CardsOutOfStock` (fewer such cards than asked: nothing is taken),
    /// `BatchNotFound`.
    async fn sell_cards(&self, call: &ApiCall, sale: &NewCardSale)
        -> StoreResult<Called<CardSale>>;
    /// Deactivates the sale's cards that are still active and marks it
    /// refunded; a sale refunded before answers as it is (`replayed`).
    /// Refusal: `SaleNotFound`.
    async fn refund_card_sale(
        &self,
        call: &ApiCall,
        refund: &RefundCardSale,
    ) -> StoreResult<Called<CardSale>>;
    /// The sale of a mall order, with its cards.
    async fn get_card_sale(
        &self,
        merchant_id: i64,
        order_id: &str,
    ) -> StoreResult<Option<CardSale>>;
    /// Sales, newest first, with their cards.
    async fn list_card_sales(
        &self,
        merchant_id: i64,
        page: crate::store::Page,
    ) -> StoreResult<(Vec<CardSale>, i64)>;
}

/// A sale as the mall receives it: every card with its password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoldCards {
    pub sale: CardSale,
    pub cards: Vec<SoldCardView>,
}

/// Opens the sealed passwords of a sale's cards.
pub fn open_sale(master: &MasterKey, sale: CardSale) -> StoreResult<SoldCards> {
    let cards = sale
        .cards
        .iter()
        .map(|card| {
            let sealed = card
                .secret_sealed
                .as_ref()
                .ok_or_else(|| StoreError::Backend("a sold card's password was purged".into()))?;
            let password = master
                .merchant_keys(sale.merchant_id, card.key_version)
                .open(&card.number, sealed)
                .ok_or_else(|| StoreError::Backend("a sold card's password did not open".into()))?;
            Ok(SoldCardView {
                number: card.number.clone(),
                password,
                state: card.state,
            })
        })
        .collect::<StoreResult<_>>()?;
    Ok(SoldCards { sale, cards })
}

/// Sells cards for a paid mall order and opens their passwords.
pub async fn sell_cards(
    store: &dyn Store,
    master: &MasterKey,
    call: &ApiCall,
    sale: &NewCardSale,
) -> StoreResult<Called<SoldCards>> {
    let called = store.sell_cards(call, sale).await?;
    open_called(master, called)
}

/// Refunds a sale and opens its cards' passwords for the answer.
pub async fn refund_card_sale(
    store: &dyn Store,
    master: &MasterKey,
    call: &ApiCall,
    refund: &RefundCardSale,
) -> StoreResult<Called<SoldCards>> {
    let called = store.refund_card_sale(call, refund).await?;
    open_called(master, called)
}

fn open_called(master: &MasterKey, called: Called<CardSale>) -> StoreResult<Called<SoldCards>> {
    Ok(Called {
        result: match called.result {
            Ok(sale) => Ok(open_sale(master, sale)?),
            Err(refusal) => Err(refusal),
        },
        replayed: called.replayed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sale_states_round_trip_their_codes() {
        for state in [SaleState::Sold, SaleState::Refunded] {
            assert_eq!(SaleState::parse(state.code()), Some(state));
        }
        assert_eq!(SaleState::parse("SOLD"), None);
        assert_ne!(SaleState::Sold.label(), SaleState::Refunded.label());
    }
}
