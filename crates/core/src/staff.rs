//! Staff accounts (管理员), their roles and sign-in sessions. The rules
//! (permissions, built-in roles, password hashing, back-off) are in
//! [`crate::auth`].

use crate::auth::Permission;
use crate::StoreResult;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    pub id: i64,
    pub merchant_id: i64,
    pub name: String,
    pub label: String,
    pub permissions: Vec<Permission>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Staff {
    pub id: i64,
    pub merchant_id: i64,
    pub username: String,
    pub name: String,
    pub phone: String,
    pub role_id: i64,
    pub password_hash: String,
    pub failed_logins: i64,
    pub locked_until: Option<i64>,
    pub disabled: bool,
    pub created_at: i64,
    /// Someone else chose the password: sign-in asks for a new one.
    pub must_change_password: bool,
    /// The installation's operator (平台运营): grants 券点 and confirms
    /// their purchase for every merchant.
    pub operator: bool,
    /// The console's language this person chose (`en`, `zh-CN`), restored
    /// at every sign-in; `None`: the browser's.
    pub language: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NewStaff {
    pub merchant_id: i64,
    pub username: String,
    pub name: String,
    pub phone: String,
    pub role_id: i64,
    pub password_hash: String,
    /// Someone else chose this password (first start, an admin).
    pub must_change_password: bool,
}

/// Changes to a staff account; `None` leaves a field alone.
#[derive(Debug, Clone, Default)]
pub struct StaffUpdate {
    pub name: Option<String>,
    pub phone: Option<String>,
    pub role_id: Option<i64>,
    pub password_hash: Option<String>,
    pub disabled: Option<bool>,
    pub must_change_password: Option<bool>,
    /// `en` or `zh-CN`.
    pub language: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub token_hash: String,
    pub staff_id: i64,
    pub merchant_id: i64,
    pub csrf_token: String,
    pub expires_at: i64,
}

/// Roles, staff and their sessions in the database.
#[async_trait::async_trait]
pub trait StaffStore: Send + Sync + 'static {
    async fn list_roles(&self, merchant_id: i64) -> StoreResult<Vec<Role>>;
    async fn create_role(
        &self,
        merchant_id: i64,
        name: &str,
        label: &str,
        permissions: &[Permission],
    ) -> StoreResult<Role>;
    async fn update_role(
        &self,
        merchant_id: i64,
        role_id: i64,
        label: &str,
        permissions: &[Permission],
    ) -> StoreResult<()>;
    async fn create_staff(&self, staff: &NewStaff, now: i64) -> StoreResult<Staff>;
    async fn update_staff(
        &self,
        merchant_id: i64,
        staff_id: i64,
        update: &StaffUpdate,
    ) -> StoreResult<()>;
    async fn list_staff(&self, merchant_id: i64) -> StoreResult<Vec<Staff>>;
    async fn get_staff(&self, staff_id: i64) -> StoreResult<Staff>;
    async fn find_staff_by_username(&self, username: &str) -> StoreResult<Option<Staff>>;
    /// Counts a failed sign-in (and sets the lock), or resets the count on success.
    async fn record_login(
        &self,
        staff_id: i64,
        success: bool,
        locked_until: Option<i64>,
    ) -> StoreResult<i64>;
    async fn create_session(&self, session: &Session) -> StoreResult<()>;
    async fn find_session(&self, token_hash: &str, now: i64) -> StoreResult<Option<Session>>;
    async fn delete_session(&self, token_hash: &str) -> StoreResult<()>;
}
