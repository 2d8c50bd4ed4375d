//! 门店 and the locations each 核销员 is bound to.

use crate::sql::{insert_audit, map_err};
use crate::SqliteStore;
use kaquan_core::audit::AuditEntry;
use kaquan_core::location::{Location, LocationFields};
use kaquan_core::{StoreError, StoreResult};
use rusqlite::{params, Connection, Row};

const LOCATION_COLUMNS: &str = "id, merchant_id, name, address, phone, hours, enabled, created_at";

fn location_from_row(r: &Row) -> rusqlite::Result<Location> {
    Ok(Location {
        id: r.get(0)?,
        merchant_id: r.get(1)?,
        fields: LocationFields {
            name: r.get(2)?,
            address: r.get(3)?,
            phone: r.get(4)?,
            hours: r.get(5)?,
            enabled: r.get(6)?,
        },
        created_at: r.get(7)?,
    })
}

fn get_location(conn: &Connection, merchant_id: i64, id: i64) -> StoreResult<Location> {
    crate::sql::cached_row(
        conn,
        &format!("SELECT {LOCATION_COLUMNS} FROM locations WHERE id = ?1 AND merchant_id = ?2"),
        params![id, merchant_id],
        location_from_row,
    )
    .map_err(map_err)
}

#[async_trait::async_trait]
impl kaquan_core::location::LocationStore for SqliteStore {
    async fn create_location(
        &self,
        merchant_id: i64,
        fields: &LocationFields,
        audit: &AuditEntry,
    ) -> StoreResult<Location> {
        let (f, audit) = (fields.clone(), audit.clone());
        self.write(move |conn| {
            let n: i64 = conn
                .query_row(
                    "SELECT count(*) FROM locations WHERE merchant_id = ?1",
                    [merchant_id],
                    |r| r.get(0),
                )
                .map_err(map_err)?;
            if n >= kaquan_core::location::LOCATIONS_MAX {
                return Err(StoreError::Invalid("too many locations".into()));
            }
            let id: i64 = conn
                .query_row(
                    "INSERT INTO locations (merchant_id, name, address, phone, hours, enabled, created_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING id",
                    params![merchant_id, f.name, f.address, f.phone, f.hours, f.enabled, audit.created_at],
                    |r| r.get(0),
                )
                .map_err(map_err)?;
            let mut audit = audit.clone();
            audit.target = format!("location={id}");
            insert_audit(conn, &audit, 1).map_err(map_err)?;
            get_location(conn, merchant_id, id)
        })
        .await
    }

    async fn update_location(
        &self,
        merchant_id: i64,
        location_id: i64,
        fields: &LocationFields,
        audit: &AuditEntry,
    ) -> StoreResult<Location> {
        let (f, audit) = (fields.clone(), audit.clone());
        self.write(move |conn| {
            let n = conn
                .execute(
                    "UPDATE locations SET name = ?1, address = ?2, phone = ?3, hours = ?4, enabled = ?5 \
                     WHERE id = ?6 AND merchant_id = ?7",
                    params![f.name, f.address, f.phone, f.hours, f.enabled, location_id, merchant_id],
                )
                .map_err(map_err)?;
            crate::sql::expect_one(n)?;
            insert_audit(conn, &audit, 1).map_err(map_err)?;
            get_location(conn, merchant_id, location_id)
        })
        .await
    }

    async fn list_locations(&self, merchant_id: i64) -> StoreResult<Vec<Location>> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {LOCATION_COLUMNS} FROM locations WHERE merchant_id = ?1 ORDER BY id"
                ))
                .map_err(map_err)?;
            let rows = stmt
                .query_map([merchant_id], location_from_row)
                .map_err(map_err)?;
            rows.collect::<Result<_, _>>().map_err(map_err)
        })
        .await
    }

    async fn staff_locations(&self, merchant_id: i64, staff_id: i64) -> StoreResult<Vec<i64>> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT l.location_id FROM staff_locations l JOIN staff s ON s.id = l.staff_id \
                     WHERE l.staff_id = ?1 AND s.merchant_id = ?2 ORDER BY l.location_id",
                )
                .map_err(map_err)?;
            let rows = stmt
                .query_map(params![staff_id, merchant_id], |r| r.get(0))
                .map_err(map_err)?;
            rows.collect::<Result<_, _>>().map_err(map_err)
        })
        .await
    }

    async fn set_staff_locations(
        &self,
        merchant_id: i64,
        staff_id: i64,
        location_ids: &[i64],
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let (ids, audit) = (location_ids.to_vec(), audit.clone());
        self.write(move |conn| {
            let owned: i64 = conn
                .query_row(
                    "SELECT count(*) FROM staff WHERE id = ?1 AND merchant_id = ?2",
                    params![staff_id, merchant_id],
                    |r| r.get(0),
                )
                .map_err(map_err)?;
            if owned != 1 {
                return Err(StoreError::NotFound);
            }
            for id in &ids {
                let mine: i64 = conn
                    .query_row(
                        "SELECT count(*) FROM locations WHERE id = ?1 AND merchant_id = ?2",
                        params![id, merchant_id],
                        |r| r.get(0),
                    )
                    .map_err(map_err)?;
                if mine != 1 {
                    return Err(StoreError::NotFound);
                }
            }
            conn.execute(
                "DELETE FROM staff_locations WHERE staff_id = ?1",
                [staff_id],
            )
            .map_err(map_err)?;
            for id in &ids {
                conn.execute(
                    "INSERT OR IGNORE INTO staff_locations (staff_id, location_id) VALUES (?1, ?2)",
                    params![staff_id, id],
                )
                .map_err(map_err)?;
            }
            insert_audit(conn, &audit, ids.len() as i64).map_err(map_err)?;
            Ok(())
        })
        .await
    }
}
