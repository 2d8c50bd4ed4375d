//! Distributors (券商).

use crate::sql::expect_one;
use crate::sql::map_err;
use crate::SqliteStore;
use kaquan_core::distributor::Distributor;
use kaquan_core::distributor::DistributorFields;
use kaquan_core::StoreResult;
use rusqlite::params;

#[async_trait::async_trait]
impl kaquan_core::distributor::DistributorStore for SqliteStore {
    async fn create_distributor(
        &self,
        merchant_id: i64,
        fields: &DistributorFields,
    ) -> StoreResult<Distributor> {
        let f = fields.clone();
        self.write(move |conn| {
            let id: i64 = conn
                .query_row(
                    "INSERT INTO distributors (merchant_id, name, contact, phone, remark) VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
                    params![merchant_id, f.name, f.contact, f.phone, f.remark],
                    |r| r.get(0),
                )
                .map_err(map_err)?;
            Ok(Distributor { id, merchant_id, name: f.name.clone(), contact: f.contact.clone(), phone: f.phone.clone(), remark: f.remark.clone(), n_cards: 0 })
        })
        .await
    }

    async fn update_distributor(
        &self,
        merchant_id: i64,
        distributor_id: i64,
        fields: &DistributorFields,
    ) -> StoreResult<()> {
        let f = fields.clone();
        self.write(move |conn| {
            let n = conn
                .execute(
                    "UPDATE distributors SET name = ?1, contact = ?2, phone = ?3, remark = ?4 WHERE id = ?5 AND merchant_id = ?6",
                    params![f.name, f.contact, f.phone, f.remark, distributor_id, merchant_id],
                )
                .map_err(map_err)?;
            expect_one(n)
        })
        .await
    }

    async fn list_distributors(&self, merchant_id: i64) -> StoreResult<Vec<Distributor>> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare(
                    "SELECT d.id, d.merchant_id, d.name, d.contact, d.phone, d.remark, \
                     (SELECT count(*) FROM cards WHERE cards.distributor_id = d.id) \
                     FROM distributors d WHERE d.merchant_id = ?1 ORDER BY d.id",
                )
                .map_err(map_err)?;
            let rows = stmt
                .query_map([merchant_id], |r| {
                    Ok(Distributor {
                        id: r.get(0)?,
                        merchant_id: r.get(1)?,
                        name: r.get(2)?,
                        contact: r.get(3)?,
                        phone: r.get(4)?,
                        remark: r.get(5)?,
                        n_cards: r.get(6)?,
                    })
                })
                .map_err(map_err)?;
            rows.collect::<Result<_, _>>().map_err(map_err)
        })
        .await
    }
}
