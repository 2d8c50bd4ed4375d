//! 门店 (locations) where staff verify coupons, and which of them each
//! 核销员 is bound to. A verifier bound to none verifies at every location
//! (as WeChat's "若不指定，核销员可核销所有门店").

use crate::audit::AuditEntry;
use crate::text::check_field;
use crate::StoreResult;

pub const LOCATION_NAME_CHARS_MAX: usize = 40;
pub const LOCATION_ADDRESS_CHARS_MAX: usize = 120;
pub const LOCATION_HOURS_CHARS_MAX: usize = 60;
/// Most locations a merchant keeps.
pub const LOCATIONS_MAX: i64 = 2000;

/// What a merchant fills in for a location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocationFields {
    pub name: String,
    pub address: String,
    pub phone: String,
    /// 营业时间, as the merchant writes it (`09:00-21:00`).
    pub hours: String,
    pub enabled: bool,
}

impl LocationFields {
    pub fn check(&self) -> Result<(), Vec<String>> {
        let mut errors = Vec::new();
        if self.name.trim().is_empty() {
            errors.push("请填写门店名称".to_owned());
        }
        for (what, value, max) in [
            ("门店名称", &self.name, LOCATION_NAME_CHARS_MAX),
            ("门店地址", &self.address, LOCATION_ADDRESS_CHARS_MAX),
            ("联系电话", &self.phone, crate::text::PHONE_CHARS_MAX),
            ("营业时间", &self.hours, LOCATION_HOURS_CHARS_MAX),
        ] {
            if let Err(e) = check_field(what, value, max) {
                errors.push(e);
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub id: i64,
    pub merchant_id: i64,
    pub fields: LocationFields,
    pub created_at: i64,
}

/// Locations and verifiers' bindings in the database.
#[async_trait::async_trait]
pub trait LocationStore: Send + Sync + 'static {
    async fn create_location(
        &self,
        merchant_id: i64,
        fields: &LocationFields,
        audit: &AuditEntry,
    ) -> StoreResult<Location>;
    async fn update_location(
        &self,
        merchant_id: i64,
        location_id: i64,
        fields: &LocationFields,
        audit: &AuditEntry,
    ) -> StoreResult<Location>;
    /// Every location of the merchant, by id.
    async fn list_locations(&self, merchant_id: i64) -> StoreResult<Vec<Location>>;
    /// The locations a staff member is bound to (empty: all).
    async fn staff_locations(&self, merchant_id: i64, staff_id: i64) -> StoreResult<Vec<i64>>;
    /// Binds a staff member to exactly `location_ids` (empty: all); every
    /// id must be the merchant's location, else `NotFound` and nothing changes.
    async fn set_staff_locations(
        &self,
        merchant_id: i64,
        staff_id: i64,
        location_ids: &[i64],
        audit: &AuditEntry,
    ) -> StoreResult<()>;
}
