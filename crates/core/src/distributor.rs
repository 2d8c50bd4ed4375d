//! Distributors (券商): who sells a merchant's cards.

use crate::StoreResult;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Distributor {
    pub id: i64,
    pub merchant_id: i64,
    pub name: String,
    pub contact: String,
    pub phone: String,
    pub remark: String,
    pub n_cards: i64,
}

#[derive(Debug, Clone, Default)]
pub struct DistributorFields {
    pub name: String,
    pub contact: String,
    pub phone: String,
    pub remark: String,
}

/// Distributors in the database.
#[async_trait::async_trait]
pub trait DistributorStore: Send + Sync + 'static {
    async fn create_distributor(
        &self,
        merchant_id: i64,
        fields: &DistributorFields,
    ) -> StoreResult<Distributor>;
    async fn update_distributor(
        &self,
        merchant_id: i64,
        distributor_id: i64,
        fields: &DistributorFields,
    ) -> StoreResult<()>;
    async fn list_distributors(&self, merchant_id: i64) -> StoreResult<Vec<Distributor>>;
}
