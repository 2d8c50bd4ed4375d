//! Roles, staff accounts, sign-in counts and sessions.

use crate::sql::expect_one;
use crate::sql::map_err;
use crate::sql::{all, exec, one, opt};
use crate::PgStore;
use deadpool_postgres::GenericClient;
use kaquan_core::auth::Permission;
use kaquan_core::staff::NewStaff;
use kaquan_core::staff::Role;
use kaquan_core::staff::Session;
use kaquan_core::staff::Staff;
use kaquan_core::staff::StaffUpdate;
use kaquan_core::{StoreError, StoreResult};
use tokio_postgres::Row;

pub(crate) const ROLE_COLUMNS: &str = "id, merchant_id, name, label, permissions";

pub(crate) fn role_from_row(row: &Row) -> Role {
    Role {
        id: row.get(0),
        merchant_id: row.get(1),
        name: row.get(2),
        label: row.get(3),
        permissions: Permission::decode_set(row.get(4)),
    }
}

pub(crate) const STAFF_COLUMNS: &str =
    "id, merchant_id, username, name, phone, role_id, password_hash, failed_logins, locked_until, disabled, created_at, must_change_password, \
    EXISTS (SELECT 1 FROM operators o WHERE o.staff_id = staff.id), language";

pub(crate) fn staff_from_row(row: &Row) -> Staff {
    Staff {
        id: row.get(0),
        merchant_id: row.get(1),
        username: row.get(2),
        name: row.get(3),
        phone: row.get(4),
        role_id: row.get(5),
        password_hash: row.get(6),
        failed_logins: row.get(7),
        locked_until: row.get(8),
        disabled: row.get(9),
        created_at: row.get(10),
        must_change_password: row.get(11),
        operator: row.get(12),
        language: row.get(13),
    }
}

#[async_trait::async_trait]
impl kaquan_core::staff::StaffStore for PgStore {
    async fn list_roles(&self, merchant_id: i64) -> StoreResult<Vec<Role>> {
        let rows = all(
            &self.client().await?,
            &format!("SELECT {ROLE_COLUMNS} FROM roles WHERE merchant_id = $1 ORDER BY id"),
            &[&merchant_id],
        )
        .await?;
        Ok(rows.iter().map(role_from_row).collect())
    }

    async fn create_role(
        &self,
        merchant_id: i64,
        name: &str,
        label: &str,
        permissions: &[Permission],
    ) -> StoreResult<Role> {
        let row = one(&self.client().await?, &format!("INSERT INTO roles (merchant_id, name, label, permissions) VALUES ($1, $2, $3, $4) RETURNING {ROLE_COLUMNS}"),
                &[&merchant_id, &name, &label, &Permission::encode_set(permissions)]).await?;
        Ok(role_from_row(&row))
    }

    async fn update_role(
        &self,
        merchant_id: i64,
        role_id: i64,
        label: &str,
        permissions: &[Permission],
    ) -> StoreResult<()> {
        let n = exec(
            &self.client().await?,
            "UPDATE roles SET label = $1, permissions = $2 WHERE id = $3 AND merchant_id = $4",
            &[
                &label,
                &Permission::encode_set(permissions),
                &role_id,
                &merchant_id,
            ],
        )
        .await?;
        expect_one(n)
    }

    async fn create_staff(&self, s: &NewStaff, now: i64) -> StoreResult<Staff> {
        let row = opt(&self.client().await?, &format!(
                    "INSERT INTO staff (merchant_id, username, name, phone, role_id, password_hash, created_at, must_change_password) \
                     SELECT $1, $2, $3, $4, id, $6, $7, $8 FROM roles WHERE id = $5 AND merchant_id = $1 \
                     RETURNING {STAFF_COLUMNS}"
                ),
                &[&s.merchant_id, &s.username, &s.name, &s.phone, &s.role_id, &s.password_hash, &now, &s.must_change_password]).await?;
        row.as_ref().map(staff_from_row).ok_or(StoreError::NotFound)
    }

    async fn update_staff(
        &self,
        merchant_id: i64,
        staff_id: i64,
        u: &StaffUpdate,
    ) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        if let Some(role_id) = u.role_id {
            let n: i64 = one(
                &tx,
                "SELECT count(*) FROM roles WHERE id = $1 AND merchant_id = $2",
                &[&role_id, &merchant_id],
            )
            .await?
            .get(0);
            if n != 1 {
                return Err(StoreError::NotFound);
            }
        }
        let n = exec(&tx, "UPDATE staff SET name = COALESCE($1, name), phone = COALESCE($2, phone), role_id = COALESCE($3, role_id), \
                 password_hash = COALESCE($4, password_hash), disabled = COALESCE($5, disabled), \
                 failed_logins = CASE WHEN $4::text IS NULL THEN failed_logins ELSE 0 END, \
                 locked_until = CASE WHEN $4::text IS NULL THEN locked_until ELSE NULL END, \
                 must_change_password = COALESCE($8, must_change_password), language = COALESCE($9, language) \
                 WHERE id = $6 AND merchant_id = $7",
                &[&u.name, &u.phone, &u.role_id, &u.password_hash, &u.disabled, &staff_id, &merchant_id, &u.must_change_password, &u.language]).await?;
        expect_one(n)?;
        if u.disabled == Some(true) || u.password_hash.is_some() {
            exec(
                &tx,
                "DELETE FROM sessions WHERE staff_id = $1",
                &[&staff_id],
            )
            .await?;
        }
        tx.commit().await.map_err(map_err)
    }

    async fn list_staff(&self, merchant_id: i64) -> StoreResult<Vec<Staff>> {
        let rows = all(
            &self.client().await?,
            &format!("SELECT {STAFF_COLUMNS} FROM staff WHERE merchant_id = $1 ORDER BY id"),
            &[&merchant_id],
        )
        .await?;
        Ok(rows.iter().map(staff_from_row).collect())
    }

    async fn get_staff(&self, staff_id: i64) -> StoreResult<Staff> {
        let row = opt(
            &self.client().await?,
            &format!("SELECT {STAFF_COLUMNS} FROM staff WHERE id = $1"),
            &[&staff_id],
        )
        .await?;
        row.as_ref().map(staff_from_row).ok_or(StoreError::NotFound)
    }

    async fn find_staff_by_username(&self, username: &str) -> StoreResult<Option<Staff>> {
        let row = opt(
            &self.client().await?,
            &format!("SELECT {STAFF_COLUMNS} FROM staff WHERE username = $1"),
            &[&username],
        )
        .await?;
        Ok(row.as_ref().map(staff_from_row))
    }

    async fn record_login(
        &self,
        staff_id: i64,
        success: bool,
        locked_until: Option<i64>,
    ) -> StoreResult<i64> {
        let client = self.client().await?;
        let row = if success {
            client
                .query_opt("UPDATE staff SET failed_logins = 0, locked_until = NULL WHERE id = $1 RETURNING failed_logins", &[&staff_id])
                .await
        } else {
            client
                .query_opt(
                    "UPDATE staff SET failed_logins = failed_logins + 1, locked_until = COALESCE($2, locked_until) \
                     WHERE id = $1 RETURNING failed_logins",
                    &[&staff_id, &locked_until],
                )
                .await
        }
        .map_err(map_err)?;
        row.map(|r| r.get(0)).ok_or(StoreError::NotFound)
    }

    async fn create_session(&self, s: &Session) -> StoreResult<()> {
        let client = self.client().await?;
        exec(
            &client,
            "DELETE FROM sessions WHERE expires_at < $1",
            &[&(s.expires_at - 86_400 * 30)],
        )
        .await?;
        exec(&client, "INSERT INTO sessions (token_hash, staff_id, merchant_id, csrf_token, expires_at) VALUES ($1, $2, $3, $4, $5)",
                &[&s.token_hash, &s.staff_id, &s.merchant_id, &s.csrf_token, &s.expires_at]).await?;
        Ok(())
    }

    async fn find_session(&self, token_hash: &str, now: i64) -> StoreResult<Option<Session>> {
        let row = opt(&self.client().await?, "SELECT token_hash, staff_id, merchant_id, csrf_token, expires_at FROM sessions WHERE token_hash = $1 AND expires_at > $2",
                &[&token_hash, &now]).await?;
        Ok(row.map(|r| Session {
            token_hash: r.get(0),
            staff_id: r.get(1),
            merchant_id: r.get(2),
            csrf_token: r.get(3),
            expires_at: r.get(4),
        }))
    }

    async fn delete_session(&self, token_hash: &str) -> StoreResult<()> {
        exec(
            &self.client().await?,
            "DELETE FROM sessions WHERE token_hash = $1",
            &[&token_hash],
        )
        .await?;
        Ok(())
    }
}
