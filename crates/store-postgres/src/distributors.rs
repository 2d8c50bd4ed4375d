//! Distributors (券商).

use crate::sql::expect_one;
use crate::sql::{all, exec, one};
use crate::PgStore;
use kaquan_core::distributor::Distributor;
use kaquan_core::distributor::DistributorFields;
use kaquan_core::StoreResult;

#[async_trait::async_trait]
impl kaquan_core::distributor::DistributorStore for PgStore {
    async fn create_distributor(
        &self,
        merchant_id: i64,
        f: &DistributorFields,
    ) -> StoreResult<Distributor> {
        let row = one(&self.client().await?, "INSERT INTO distributors (merchant_id, name, contact, phone, remark) VALUES ($1, $2, $3, $4, $5) RETURNING id",
                &[&merchant_id, &f.name, &f.contact, &f.phone, &f.remark]).await?;
        Ok(Distributor {
            id: row.get(0),
            merchant_id,
            name: f.name.clone(),
            contact: f.contact.clone(),
            phone: f.phone.clone(),
            remark: f.remark.clone(),
            n_cards: 0,
        })
    }

    async fn update_distributor(
        &self,
        merchant_id: i64,
        distributor_id: i64,
        f: &DistributorFields,
    ) -> StoreResult<()> {
        let n = exec(&self.client().await?, "UPDATE distributors SET name = $1, contact = $2, phone = $3, remark = $4 WHERE id = $5 AND merchant_id = $6",
                &[&f.name, &f.contact, &f.phone, &f.remark, &distributor_id, &merchant_id]).await?;
        expect_one(n)
    }

    async fn list_distributors(&self, merchant_id: i64) -> StoreResult<Vec<Distributor>> {
        let rows = all(
            &self.client().await?,
            "SELECT d.id, d.merchant_id, d.name, d.contact, d.phone, d.remark, \
                 (SELECT count(*) FROM cards WHERE cards.distributor_id = d.id) \
                 FROM distributors d WHERE d.merchant_id = $1 ORDER BY d.id",
            &[&merchant_id],
        )
        .await?;
        Ok(rows
            .iter()
            .map(|r| Distributor {
                id: r.get(0),
                merchant_id: r.get(1),
                name: r.get(2),
                contact: r.get(3),
                phone: r.get(4),
                remark: r.get(5),
                n_cards: r.get(6),
            })
            .collect())
    }
}
