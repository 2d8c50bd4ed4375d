//! Roles, staff accounts, sign-in counts and sessions.

use crate::sql::expect_one;
use crate::sql::map_err;
use crate::SqliteStore;
use kaquan_core::auth::Permission;
use kaquan_core::staff::NewStaff;
use kaquan_core::staff::Role;
use kaquan_core::staff::Session;
use kaquan_core::staff::Staff;
use kaquan_core::staff::StaffUpdate;
use kaquan_core::{StoreError, StoreResult};
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, OptionalExtension, Row};

pub(crate) const ROLE_COLUMNS: &str = "id, merchant_id, name, label, permissions";

pub(crate) fn role_from_row(row: &Row) -> rusqlite::Result<Role> {
    Ok(Role {
        id: row.get(0)?,
        merchant_id: row.get(1)?,
        name: row.get(2)?,
        label: row.get(3)?,
        permissions: Permission::decode_set(&row.get::<_, String>(4)?),
    })
}

pub(crate) const STAFF_COLUMNS: &str =
    "id, merchant_id, username, name, phone, role_id, password_hash, failed_logins, locked_until, disabled, created_at, must_change_password, \
    EXISTS (SELECT 1 FROM operators o WHERE o.staff_id = staff.id), language";

pub(crate) fn staff_from_row(row: &Row) -> rusqlite::Result<Staff> {
    Ok(Staff {
        id: row.get(0)?,
        merchant_id: row.get(1)?,
        username: row.get(2)?,
        name: row.get(3)?,
        phone: row.get(4)?,
        role_id: row.get(5)?,
        password_hash: row.get(6)?,
        failed_logins: row.get(7)?,
        locked_until: row.get(8)?,
        disabled: row.get(9)?,
        created_at: row.get(10)?,
        must_change_password: row.get(11)?,
        operator: row.get(12)?,
        language: row.get(13)?,
    })
}

#[async_trait::async_trait]
impl kaquan_core::staff::StaffStore for SqliteStore {
    async fn list_roles(&self, merchant_id: i64) -> StoreResult<Vec<Role>> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT {ROLE_COLUMNS} FROM roles WHERE merchant_id = ?1 ORDER BY id"
                ))
                .map_err(map_err)?;
            let rows = stmt
                .query_map([merchant_id], role_from_row)
                .map_err(map_err)?;
            rows.collect::<Result<_, _>>().map_err(map_err)
        })
        .await
    }

    async fn create_role(
        &self,
        merchant_id: i64,
        name: &str,
        label: &str,
        permissions: &[Permission],
    ) -> StoreResult<Role> {
        let (name, label, permissions) = (
            name.to_owned(),
            label.to_owned(),
            Permission::encode_set(permissions),
        );
        self.write(move |conn| {
            conn.query_row(
                &format!("INSERT INTO roles (merchant_id, name, label, permissions) VALUES (?1, ?2, ?3, ?4) RETURNING {ROLE_COLUMNS}"),
                params![merchant_id, name, label, permissions],
                role_from_row,
            )
            .map_err(map_err)
        })
        .await
    }

    async fn update_role(
        &self,
        merchant_id: i64,
        role_id: i64,
        label: &str,
        permissions: &[Permission],
    ) -> StoreResult<()> {
        let (label, permissions) = (label.to_owned(), Permission::encode_set(permissions));
        self.write(move |conn| {
            let n = conn
                .execute(
                    "UPDATE roles SET label = ?1, permissions = ?2 WHERE id = ?3 AND merchant_id = ?4",
                    params![label, permissions, role_id, merchant_id],
                )
                .map_err(map_err)?;
            expect_one(n)
        })
        .await
    }

    async fn create_staff(&self, staff: &NewStaff, now: i64) -> StoreResult<Staff> {
        let staff = staff.clone();
        self.write(move |conn| {
            conn.query_row(
                &format!(
                    "INSERT INTO staff (merchant_id, username, name, phone, role_id, password_hash, created_at, must_change_password) \
                     SELECT ?1, ?2, ?3, ?4, id, ?6, ?7, ?8 FROM roles WHERE id = ?5 AND merchant_id = ?1 \
                     RETURNING {STAFF_COLUMNS}"
                ),
                params![staff.merchant_id, staff.username, staff.name, staff.phone, staff.role_id, staff.password_hash, now, staff.must_change_password],
                staff_from_row,
            )
            .map_err(map_err)
        })
        .await
    }

    async fn update_staff(
        &self,
        merchant_id: i64,
        staff_id: i64,
        update: &StaffUpdate,
    ) -> StoreResult<()> {
        let update = update.clone();
        self.write(move |conn| {
            if let Some(role_id) = update.role_id {
                let n: i64 = conn
                    .query_row("SELECT count(*) FROM roles WHERE id = ?1 AND merchant_id = ?2", params![role_id, merchant_id], |r| {
                        r.get(0)
                    })
                    .map_err(map_err)?;
                if n != 1 {
                    return Err(StoreError::NotFound);
                }
            }
            let n = conn
                .execute(
                    "UPDATE staff SET name = COALESCE(?1, name), phone = COALESCE(?2, phone), role_id = COALESCE(?3, role_id), \
                     password_hash = COALESCE(?4, password_hash), disabled = COALESCE(?5, disabled), \
                     failed_logins = CASE WHEN ?4 IS NULL THEN failed_logins ELSE 0 END, \
                     locked_until = CASE WHEN ?4 IS NULL THEN locked_until ELSE NULL END, \
                     must_change_password = COALESCE(?8, must_change_password), language = COALESCE(?9, language) \
                     WHERE id = ?6 AND merchant_id = ?7",
                    params![update.name, update.phone, update.role_id, update.password_hash, update.disabled, staff_id, merchant_id, update.must_change_password, update.language],
                )
                .map_err(map_err)?;
            if update.disabled == Some(true) || update.password_hash.is_some() {
                conn.execute("DELETE FROM sessions WHERE staff_id = ?1", [staff_id]).map_err(map_err)?;
            }
            expect_one(n)
        })
        .await
    }

    async fn list_staff(&self, merchant_id: i64) -> StoreResult<Vec<Staff>> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT {STAFF_COLUMNS} FROM staff WHERE merchant_id = ?1 ORDER BY id"
                ))
                .map_err(map_err)?;
            let rows = stmt
                .query_map([merchant_id], staff_from_row)
                .map_err(map_err)?;
            rows.collect::<Result<_, _>>().map_err(map_err)
        })
        .await
    }

    async fn get_staff(&self, staff_id: i64) -> StoreResult<Staff> {
        self.read(move |conn| {
            conn.query_row(
                &format!("SELECT {STAFF_COLUMNS} FROM staff WHERE id = ?1"),
                [staff_id],
                staff_from_row,
            )
            .map_err(map_err)
        })
        .await
    }

    async fn find_staff_by_username(&self, username: &str) -> StoreResult<Option<Staff>> {
        let username = username.to_owned();
        self.read(move |conn| {
            conn.query_row(
                &format!("SELECT {STAFF_COLUMNS} FROM staff WHERE username = ?1"),
                [username],
                staff_from_row,
            )
            .optional()
            .map_err(map_err)
        })
        .await
    }

    async fn record_login(
        &self,
        staff_id: i64,
        success: bool,
        locked_until: Option<i64>,
    ) -> StoreResult<i64> {
        self.write(move |conn| {
            let sql = if success {
                "UPDATE staff SET failed_logins = 0, locked_until = NULL WHERE id = ?1 RETURNING failed_logins"
            } else {
                "UPDATE staff SET failed_logins = failed_logins + 1, locked_until = COALESCE(?2, locked_until) \
                 WHERE id = ?1 RETURNING failed_logins"
            };
            let mut stmt = conn.prepare(sql).map_err(map_err)?;
            let values: Vec<Value> = if success {
                vec![Value::Integer(staff_id)]
            } else {
                vec![Value::Integer(staff_id), locked_until.map_or(Value::Null, Value::Integer)]
            };
            stmt.query_row(params_from_iter(values), |r| r.get(0)).map_err(map_err)
        })
        .await
    }

    async fn create_session(&self, session: &Session) -> StoreResult<()> {
        let s = session.clone();
        self.write(move |conn| {
            conn.execute("DELETE FROM sessions WHERE expires_at < ?1", [s.expires_at - 86_400 * 30]).map_err(map_err)?;
            conn.execute(
                "INSERT INTO sessions (token_hash, staff_id, merchant_id, csrf_token, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![s.token_hash, s.staff_id, s.merchant_id, s.csrf_token, s.expires_at],
            )
            .map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn find_session(&self, token_hash: &str, now: i64) -> StoreResult<Option<Session>> {
        let token_hash = token_hash.to_owned();
        self.read(move |conn| {
            conn.query_row(
                "SELECT token_hash, staff_id, merchant_id, csrf_token, expires_at FROM sessions \
                 WHERE token_hash = ?1 AND expires_at > ?2",
                params![token_hash, now],
                |r| {
                    Ok(Session {
                        token_hash: r.get(0)?,
                        staff_id: r.get(1)?,
                        merchant_id: r.get(2)?,
                        csrf_token: r.get(3)?,
                        expires_at: r.get(4)?,
                    })
                },
            )
            .optional()
            .map_err(map_err)
        })
        .await
    }

    async fn delete_session(&self, token_hash: &str) -> StoreResult<()> {
        let token_hash = token_hash.to_owned();
        self.write(move |conn| {
            conn.execute("DELETE FROM sessions WHERE token_hash = ?1", [&token_hash])
                .map_err(map_err)?;
            Ok(())
        })
        .await
    }
}
