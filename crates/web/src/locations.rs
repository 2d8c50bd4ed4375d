//! 门店 (locations), the locations each 核销员 is bound to, and the coupon
//! settings, in the staff API.

use crate::auth::Authed;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, put};
use axum::Router;
use kaquan_core::audit::AuditEntry;
use kaquan_core::auth::Permission;
use kaquan_core::clock::format_datetime;
use kaquan_core::coupon::usage::{CouponSettings, UNDO_WINDOW_MINUTES_MAX};
use kaquan_core::location::{Location, LocationFields};
use serde::{Deserialize, Serialize};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/locations",
            get(list_locations).post(create_location),
        )
        .route("/api/v1/locations/{location_id}", put(update_location))
        .route(
            "/api/v1/staff/{staff_id}/locations",
            get(get_staff_locations).put(update_staff_locations),
        )
        .route(
            "/api/v1/coupon-settings",
            get(get_coupon_settings).put(update_coupon_settings),
        )
}

// ---- 门店 and 核销员 ---------------------------------------------------------

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "中山路店", "address": "中山路 1 号", "phone": "0571-88886666", "hours": "09:00-21:00", "enabled": true}))]
pub struct LocationRequest {
    #[schema(min_length = 1, max_length = 40)]
    pub name: String,
    #[serde(default)]
    pub address: String,
    #[serde(default)]
    pub phone: String,
    /// 营业时间, as written.
    #[serde(default)]
    pub hours: String,
    /// Open (default true); a closed location takes no verifications.
    pub enabled: Option<bool>,
}

impl LocationRequest {
    pub fn fields(&self) -> ApiResult<LocationFields> {
        let fields = LocationFields {
            name: self.name.trim().to_owned(),
            address: self.address.trim().to_owned(),
            phone: self.phone.trim().to_owned(),
            hours: self.hours.trim().to_owned(),
            enabled: self.enabled.unwrap_or(true),
        };
        fields.check().map_err(crate::coupons::invalid_all)?;
        Ok(fields)
    }
}

#[derive(Serialize, utoipa::ToSchema, Clone)]
#[schema(example = json!({"id": 1, "name": "中山路店", "address": "中山路 1 号", "phone": "0571-88886666", "hours": "09:00-21:00", "enabled": true, "created_at": "2026-11-30 10:00:00"}))]
pub struct LocationDto {
    pub id: i64,
    pub name: String,
    pub address: String,
    pub phone: String,
    pub hours: String,
    pub enabled: bool,
    pub created_at: String,
}

impl LocationDto {
    pub fn new(l: &Location) -> Self {
        Self {
            id: l.id,
            name: l.fields.name.clone(),
            address: l.fields.address.clone(),
            phone: l.fields.phone.clone(),
            hours: l.fields.hours.clone(),
            enabled: l.fields.enabled,
            created_at: format_datetime(l.created_at),
        }
    }
}

fn audit(authed: &Authed, action: &str, target: String) -> AuditEntry {
    AuditEntry {
        merchant_id: authed.merchant_id(),
        actor: authed.actor(),
        action: action.into(),
        target,
        detail: String::new(),
        n_affected: 1,
        created_at: crate::now(),
    }
}

fn duplicate_name(error: kaquan_core::StoreError) -> ApiError {
    match error {
        kaquan_core::StoreError::Conflict(kaquan_core::Conflict::Duplicate) => {
            ApiError::Conflict("已有同名门店".into())
        }
        other => other.into(),
    }
}

/// Adds a location (门店).
pub async fn add_location(
    state: &AppState,
    authed: &Authed,
    request: &LocationRequest,
) -> ApiResult<Location> {
    authed.require(Permission::CouponsManage)?;
    let fields = request.fields()?;
    state
        .store
        .create_location(
            authed.merchant_id(),
            &fields,
            &audit(authed, "create_location", String::new()),
        )
        .await
        .map_err(duplicate_name)
}

/// Changes a location.
pub async fn change_location(
    state: &AppState,
    authed: &Authed,
    location_id: i64,
    request: &LocationRequest,
) -> ApiResult<Location> {
    authed.require(Permission::CouponsManage)?;
    let fields = request.fields()?;
    state
        .store
        .update_location(
            authed.merchant_id(),
            location_id,
            &fields,
            &audit(authed, "update_location", format!("location={location_id}")),
        )
        .await
        .map_err(duplicate_name)
}

async fn list_locations(
    State(state): State<AppState>,
    authed: Authed,
) -> ApiResult<Json<Vec<LocationDto>>> {
    if !authed.can(Permission::CouponsManage) {
        authed.require(Permission::CouponsVerify)?;
    }
    let locations = state.store.list_locations(authed.merchant_id()).await?;
    Ok(Json(locations.iter().map(LocationDto::new).collect()))
}

async fn create_location(
    State(state): State<AppState>,
    authed: Authed,
    Json(request): Json<LocationRequest>,
) -> ApiResult<(StatusCode, Json<LocationDto>)> {
    let location = add_location(&state, &authed, &request).await?;
    Ok((StatusCode::CREATED, Json(LocationDto::new(&location))))
}

async fn update_location(
    State(state): State<AppState>,
    authed: Authed,
    Path(location_id): Path<i64>,
    Json(request): Json<LocationRequest>,
) -> ApiResult<Json<LocationDto>> {
    let location = change_location(&state, &authed, location_id, &request).await?;
    Ok(Json(LocationDto::new(&location)))
}

#[derive(Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"location_ids": [1, 2]}))]
pub struct StaffLocations {
    /// The locations the staff member verifies at; empty: every location.
    pub location_ids: Vec<i64>,
}

async fn get_staff_locations(
    State(state): State<AppState>,
    authed: Authed,
    Path(staff_id): Path<i64>,
) -> ApiResult<Json<StaffLocations>> {
    authed.require(Permission::CouponsManage)?;
    Ok(Json(StaffLocations {
        location_ids: state
            .store
            .staff_locations(authed.merchant_id(), staff_id)
            .await?,
    }))
}

/// Binds a 核销员 to locations (none: all).
pub async fn bind_staff(
    state: &AppState,
    authed: &Authed,
    staff_id: i64,
    location_ids: &[i64],
) -> ApiResult<()> {
    authed.require(Permission::CouponsManage)?;
    state
        .store
        .set_staff_locations(
            authed.merchant_id(),
            staff_id,
            location_ids,
            &audit(authed, "set_staff_locations", format!("staff={staff_id}")),
        )
        .await
        .map_err(|e| match e {
            kaquan_core::StoreError::NotFound => ApiError::invalid("找不到该员工或其中的门店"),
            other => other.into(),
        })
}

async fn update_staff_locations(
    State(state): State<AppState>,
    authed: Authed,
    Path(staff_id): Path<i64>,
    Json(request): Json<StaffLocations>,
) -> ApiResult<Json<StaffLocations>> {
    bind_staff(&state, &authed, staff_id, &request.location_ids).await?;
    get_staff_locations(State(state), authed, Path(staff_id)).await
}

// ---- settings ---------------------------------------------------------------

#[derive(Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"undo_window_minutes": 60}))]
pub struct CouponSettingsDto {
    /// How long after a verification the mall or POS may undo it (minutes, default 60).
    pub undo_window_minutes: i64,
}

async fn get_coupon_settings(
    State(state): State<AppState>,
    authed: Authed,
) -> ApiResult<Json<CouponSettingsDto>> {
    authed.require(Permission::CouponsManage)?;
    let settings = state
        .store
        .get_coupon_settings(authed.merchant_id())
        .await?;
    Ok(Json(CouponSettingsDto {
        undo_window_minutes: settings.undo_window_minutes,
    }))
}

/// Saves the coupon settings.
pub async fn save_settings(state: &AppState, authed: &Authed, minutes: i64) -> ApiResult<()> {
    authed.require(Permission::CouponsManage)?;
    if !(0..=UNDO_WINDOW_MINUTES_MAX).contains(&minutes) {
        return Err(ApiError::invalid(format!(
            "可撤销时限须为 0–{UNDO_WINDOW_MINUTES_MAX} 分钟"
        )));
    }
    let mut entry = audit(authed, "save_coupon_settings", String::new());
    entry.detail = format!("undo_window_minutes={minutes}");
    state
        .store
        .save_coupon_settings(
            authed.merchant_id(),
            &CouponSettings {
                undo_window_minutes: minutes,
            },
            &entry,
        )
        .await?;
    state.coupon_settings.forget(&authed.merchant_id());
    Ok(())
}

async fn update_coupon_settings(
    State(state): State<AppState>,
    authed: Authed,
    Json(request): Json<CouponSettingsDto>,
) -> ApiResult<Json<CouponSettingsDto>> {
    save_settings(&state, &authed, request.undo_window_minutes).await?;
    Ok(Json(request))
}

/// A shop's coupon settings, from this node's cache when it read them recently.
pub async fn cached_coupon_settings(
    state: &AppState,
    merchant_id: i64,
) -> ApiResult<CouponSettings> {
    if let Some(settings) = state.coupon_settings.get(&merchant_id) {
        return Ok(settings);
    }
    let settings = state.store.get_coupon_settings(merchant_id).await?;
    state.coupon_settings.put(merchant_id, settings);
    Ok(settings)
}
