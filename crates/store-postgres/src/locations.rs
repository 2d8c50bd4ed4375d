//! 门店 and the locations each 核销员 is bound to.

use crate::sql::{all, exec, expect_one, insert_audit, map_err, one};
use crate::PgStore;
use deadpool_postgres::GenericClient;
use kaquan_core::audit::AuditEntry;
use kaquan_core::location::{Location, LocationFields, LOCATIONS_MAX};
use kaquan_core::{StoreError, StoreResult};
use tokio_postgres::Row;

const LOCATION_COLUMNS: &str = "id, merchant_id, name, address, phone, hours, enabled, created_at";

fn location_from_row(r: &Row) -> Location {
    Location {
        id: r.get(0),
        merchant_id: r.get(1),
        fields: LocationFields {
            name: r.get(2),
            address: r.get(3),
            phone: r.get(4),
            hours: r.get(5),
            enabled: r.get(6),
        },
        created_at: r.get(7),
    }
}

async fn get_location(c: &impl GenericClient, merchant_id: i64, id: i64) -> StoreResult<Location> {
    let row = one(
        c,
        &format!("SELECT {LOCATION_COLUMNS} FROM locations WHERE id = $1 AND merchant_id = $2"),
        &[&id, &merchant_id],
    )
    .await?;
    Ok(location_from_row(&row))
}

#[async_trait::async_trait]
impl kaquan_core::location::LocationStore for PgStore {
    async fn create_location(
        &self,
        merchant_id: i64,
        f: &LocationFields,
        audit: &AuditEntry,
    ) -> StoreResult<Location> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let row = crate::sql::opt(
            &tx,
            "INSERT INTO locations (merchant_id, name, address, phone, hours, enabled, created_at) \
             SELECT $1, $2, $3, $4, $5, $6, $7 WHERE (SELECT count(*) FROM locations WHERE merchant_id = $1) < $8 RETURNING id",
            &[&merchant_id, &f.name, &f.address, &f.phone, &f.hours, &f.enabled, &audit.created_at, &LOCATIONS_MAX],
        )
        .await?;
        let id: i64 = row
            .ok_or_else(|| StoreError::Invalid("too many locations".into()))?
            .get(0);
        let mut audit = audit.clone();
        audit.target = format!("location={id}");
        insert_audit(&tx, &audit, 1).await?;
        let location = get_location(&tx, merchant_id, id).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(location)
    }

    async fn update_location(
        &self,
        merchant_id: i64,
        location_id: i64,
        f: &LocationFields,
        audit: &AuditEntry,
    ) -> StoreResult<Location> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        expect_one(
            exec(
                &tx,
                "UPDATE locations SET name = $1, address = $2, phone = $3, hours = $4, enabled = $5 \
                 WHERE id = $6 AND merchant_id = $7",
                &[&f.name, &f.address, &f.phone, &f.hours, &f.enabled, &location_id, &merchant_id],
            )
            .await?,
        )?;
        insert_audit(&tx, audit, 1).await?;
        let location = get_location(&tx, merchant_id, location_id).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(location)
    }

    async fn list_locations(&self, merchant_id: i64) -> StoreResult<Vec<Location>> {
        Ok(all(
            &self.client().await?,
            &format!("SELECT {LOCATION_COLUMNS} FROM locations WHERE merchant_id = $1 ORDER BY id"),
            &[&merchant_id],
        )
        .await?
        .iter()
        .map(location_from_row)
        .collect())
    }

    async fn staff_locations(&self, merchant_id: i64, staff_id: i64) -> StoreResult<Vec<i64>> {
        Ok(all(
            &self.client().await?,
            "SELECT l.location_id FROM staff_locations l JOIN staff s ON s.id = l.staff_id \
             WHERE l.staff_id = $1 AND s.merchant_id = $2 ORDER BY l.location_id",
            &[&staff_id, &merchant_id],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect())
    }

    async fn set_staff_locations(
        &self,
        merchant_id: i64,
        staff_id: i64,
        location_ids: &[i64],
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let mut ids = location_ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        // The staff row is locked: two edits of one verifier run one after the other.
        let staff = crate::sql::opt(
            &tx,
            "SELECT 1 FROM staff WHERE id = $1 AND merchant_id = $2 FOR UPDATE",
            &[&staff_id, &merchant_id],
        )
        .await?;
        let mine: i64 = one(
            &tx,
            "SELECT count(*) FROM locations WHERE id = ANY($1) AND merchant_id = $2",
            &[&ids, &merchant_id],
        )
        .await?
        .get(0);
        if staff.is_none() || mine != ids.len() as i64 {
            return Err(StoreError::NotFound);
        }
        exec(
            &tx,
            "DELETE FROM staff_locations WHERE staff_id = $1",
            &[&staff_id],
        )
        .await?;
        exec(
            &tx,
            "INSERT INTO staff_locations (staff_id, location_id, merchant_id) SELECT $1, l, $3 FROM unnest($2::bigint[]) AS l",
            &[&staff_id, &ids, &merchant_id],
        )
        .await?;
        insert_audit(&tx, audit, ids.len() as i64).await?;
        tx.commit().await.map_err(map_err)
    }
}
