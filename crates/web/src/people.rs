//! Staff (管理员), roles with permission checkboxes and distributors (券商).

use crate::auth::Authed;
use crate::error::{ApiError, ApiResult};
use crate::extract::{check_chars, FormText};
use crate::extract::{Form, Json, Path, Query};
use crate::forms::{redirect_with, FormPairs, MsgQuery};
use crate::pages::{render, Page, PageResult};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::Router;
use kaquan_core::auth::{check_staff_password, check_username, Permission};
use kaquan_core::clock::format_datetime;
use kaquan_core::distributor::{Distributor, DistributorFields};
use kaquan_core::staff::{NewStaff, Role, Staff, StaffUpdate};
use kaquan_core::text::{
    is_too_long, CONTACT_CHARS_MAX, NAME_CHARS_MAX, PHONE_CHARS_MAX, REMARK_CHARS_MAX,
};
use serde::{Deserialize, Serialize};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/staff", get(list_staff).post(create_staff))
        .route("/api/v1/staff/{staff_id}", put(update_staff))
        .route("/api/v1/roles", get(list_roles).post(create_role))
        .route("/api/v1/roles/{role_id}", put(update_role))
        .route(
            "/api/v1/distributors",
            get(list_distributors).post(create_distributor),
        )
        .route(
            "/api/v1/distributors/{distributor_id}",
            put(update_distributor),
        )
        .route("/staff", get(staff_page).post(create_staff_form))
        .route("/staff/{staff_id}", post(update_staff_form))
        .route("/roles/{role_id}", post(update_role_form))
        .route(
            "/distributors",
            get(distributors_page).post(create_distributor_form),
        )
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": 5, "username": "clerk.1", "name": "张店员", "phone": "13800000000", "role_id": 3, "disabled": false, "locked": false, "created_at": "2026-11-30 14:05:00"}))]
pub struct StaffDto {
    pub id: i64,
    pub username: String,
    pub name: String,
    pub phone: String,
    pub role_id: i64,
    pub disabled: bool,
    pub locked: bool,
    pub created_at: String,
}

impl StaffDto {
    fn new(staff: &Staff, now: i64) -> Self {
        Self {
            id: staff.id,
            username: staff.username.clone(),
            name: staff.name.clone(),
            phone: staff.phone.clone(),
            role_id: staff.role_id,
            disabled: staff.disabled,
            locked: staff.locked_until.is_some_and(|t| t > now),
            created_at: format_datetime(staff.created_at),
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": 4, "name": "desk", "label": "前台", "permissions": ["pickup.assist", "cards.view"]}))]
pub struct RoleDto {
    pub id: i64,
    pub name: String,
    pub label: String,
    #[schema(schema_with = permission_codes)]
    pub permissions: Vec<&'static str>,
}

impl From<&Role> for RoleDto {
    fn from(role: &Role) -> Self {
        Self {
            id: role.id,
            name: role.name.clone(),
            label: role.label.clone(),
            permissions: role.permissions.iter().map(|p| p.code()).collect(),
        }
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"username": "clerk.1", "name": "张店员", "phone": "13800000000", "password": "kaquan2026", "role_id": 3}))]
pub struct CreateStaffRequest {
    /// Letters, digits, `_` and `.`; merchant N's staff sign in as `username@N`.
    #[schema(min_length = 1, max_length = 32, pattern = "^[A-Za-z0-9_.]+$")]
    pub username: String,
    #[schema(max_length = 64)]
    pub name: String,
    #[serde(default)]
    #[schema(max_length = 20)]
    pub phone: String,
    /// At least 8 characters, letters and digits both.
    #[schema(min_length = 8)]
    pub password: String,
    pub role_id: i64,
}

pub async fn add_staff(
    state: &AppState,
    authed: &Authed,
    body: CreateStaffRequest,
) -> ApiResult<Staff> {
    authed.require(Permission::StaffManage)?;
    check_username(body.username.trim()).map_err(ApiError::invalid)?;
    check_staff_password(&body.password).map_err(ApiError::invalid)?;
    if body.name.trim().is_empty() {
        return Err(ApiError::invalid("请填写管理员姓名"));
    }
    check_chars("姓名", &body.name, NAME_CHARS_MAX)?;
    check_chars("手机号", &body.phone, PHONE_CHARS_MAX)?;
    let new = NewStaff {
        merchant_id: authed.merchant_id(),
        username: kaquan_core::auth::login_name(authed.merchant_id(), body.username.trim()),
        name: body.name.trim().to_owned(),
        phone: body.phone.trim().to_owned(),
        role_id: body.role_id,
        password_hash: crate::auth::hash_password(&body.password).await?,
        // The admin chose it: the new staff member picks their own at sign-in.
        must_change_password: true,
    };
    let staff = state
        .store
        .create_staff(&new, crate::now())
        .await
        .map_err(|e| match e {
            kaquan_core::StoreError::Conflict(_) => ApiError::Conflict("账号已存在".into()),
            other => other.into(),
        })?;
    state
        .store
        .append_audit(&authed.audit(
            "create_staff",
            staff.username.clone(),
            format!("role={}", staff.role_id),
        ))
        .await?;
    Ok(staff)
}

async fn list_staff(
    State(state): State<AppState>,
    authed: Authed,
) -> ApiResult<Json<Vec<StaffDto>>> {
    authed.require(Permission::StaffManage)?;
    let now = crate::now();
    Ok(Json(
        state
            .store
            .list_staff(authed.merchant_id())
            .await?
            .iter()
            .map(|s| StaffDto::new(s, now))
            .collect(),
    ))
}

async fn create_staff(
    State(state): State<AppState>,
    authed: Authed,
    Json(body): Json<CreateStaffRequest>,
) -> ApiResult<Response> {
    let staff = add_staff(&state, &authed, body).await?;
    Ok((
        StatusCode::CREATED,
        Json(StaffDto::new(&staff, crate::now())),
    )
        .into_response())
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "李店员", "role_id": 4, "disabled": false}))]
pub struct UpdateStaffRequest {
    /// 姓名; only the fields sent change.
    #[schema(min_length = 1, max_length = 64)]
    pub name: Option<String>,
    #[schema(max_length = 20)]
    pub phone: Option<String>,
    /// Not the signed-in member's own.
    pub role_id: Option<i64>,
    /// A new password: at least 8 characters, letters and digits both; empty keeps it.
    pub password: Option<String>,
    /// Stops the account signing in (not one's own).
    pub disabled: Option<bool>,
}

async fn change_staff(
    state: &AppState,
    authed: &Authed,
    staff_id: i64,
    body: UpdateStaffRequest,
) -> ApiResult<()> {
    authed.require(Permission::StaffManage)?;
    if staff_id == authed.staff.id
        && (body.disabled == Some(true) || body.role_id.is_some_and(|r| r != authed.staff.role_id))
    {
        return Err(ApiError::invalid("不能停用自己或修改自己的角色"));
    }
    if let Some(name) = &body.name {
        check_chars("姓名", name, NAME_CHARS_MAX)?;
    }
    if let Some(phone) = &body.phone {
        check_chars("手机号", phone, PHONE_CHARS_MAX)?;
    }
    let password_hash = match body.password.as_deref().filter(|p| !p.is_empty()) {
        Some(password) => {
            check_staff_password(password).map_err(ApiError::invalid)?;
            Some(crate::auth::hash_password(password).await?)
        }
        None => None,
    };
    // A password set for someone else is theirs to replace at sign-in;
    // one's own new password is one's own.
    let must_change_password = password_hash.as_ref().map(|_| staff_id != authed.staff.id);
    let update = StaffUpdate {
        name: body.name,
        phone: body.phone,
        role_id: body.role_id,
        password_hash,
        disabled: body.disabled,
        must_change_password,
        language: None,
    };
    state
        .store
        .update_staff(authed.merchant_id(), staff_id, &update)
        .await?;
    state
        .store
        .append_audit(&authed.audit("update_staff", format!("staff={staff_id}"), String::new()))
        .await?;
    Ok(())
}

async fn update_staff(
    State(state): State<AppState>,
    authed: Authed,
    Path(staff_id): Path<i64>,
    Json(body): Json<UpdateStaffRequest>,
) -> ApiResult<StatusCode> {
    change_staff(&state, &authed, staff_id, body).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_roles(
    State(state): State<AppState>,
    authed: Authed,
) -> ApiResult<Json<Vec<RoleDto>>> {
    authed.require(Permission::StaffManage)?;
    Ok(Json(
        state
            .store
            .list_roles(authed.merchant_id())
            .await?
            .iter()
            .map(RoleDto::from)
            .collect(),
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "desk", "label": "前台", "permissions": ["pickup.assist", "cards.view"]}))]
pub struct RoleRequest {
    /// The role's code, fixed once created: letters, digits, `_` and `.`
    /// (ignored when a role is changed).
    #[schema(max_length = 32, pattern = "^[A-Za-z0-9_.]*$")]
    pub name: Option<String>,
    /// 角色名称 as staff read it.
    #[schema(min_length = 1, max_length = 64)]
    pub label: String,
    /// What the role may do.
    #[schema(schema_with = permission_codes)]
    pub permissions: Vec<String>,
}

/// The schema of a list of permission codes: each one of [`Permission::ALL`].
fn permission_codes() -> utoipa::openapi::Array {
    use utoipa::openapi::{ArrayBuilder, ObjectBuilder, Type};
    ArrayBuilder::new()
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(Permission::ALL.map(Permission::code))),
        )
        .build()
}

/// A role's label: what staff read in the console, 1 to `NAME_CHARS_MAX` characters.
fn check_role_label(label: &str) -> ApiResult<()> {
    if label.trim().is_empty() {
        return Err(ApiError::invalid("请填写角色名称"));
    }
    check_chars("角色名称", label.trim(), NAME_CHARS_MAX)
}

fn parse_permissions(codes: &[String]) -> ApiResult<Vec<Permission>> {
    codes
        .iter()
        .map(|c| Permission::parse(c).ok_or_else(|| ApiError::invalid(format!("未知的权限：{c}"))))
        .collect()
}

async fn create_role(
    State(state): State<AppState>,
    authed: Authed,
    Json(body): Json<RoleRequest>,
) -> ApiResult<Response> {
    authed.require(Permission::StaffManage)?;
    let name = body.name.unwrap_or_default();
    check_username(&name).map_err(|_| ApiError::invalid("角色代码须为字母、数字或下划线"))?;
    check_role_label(&body.label)?;
    let role = state
        .store
        .create_role(
            authed.merchant_id(),
            &name,
            body.label.trim(),
            &parse_permissions(&body.permissions)?,
        )
        .await?;
    state
        .store
        .append_audit(&authed.audit(
            "create_role",
            role.name.clone(),
            Permission::encode_set(&role.permissions),
        ))
        .await?;
    Ok((StatusCode::CREATED, Json(RoleDto::from(&role))).into_response())
}

async fn change_role(
    state: &AppState,
    authed: &Authed,
    role_id: i64,
    label: &str,
    permissions: Vec<Permission>,
) -> ApiResult<()> {
    authed.require(Permission::StaffManage)?;
    check_role_label(label)?;
    if role_id == authed.staff.role_id && !permissions.contains(&Permission::StaffManage) {
        return Err(ApiError::invalid(
            "不能去掉自己角色的“管理员与角色管理”权限",
        ));
    }
    state
        .store
        .update_role(authed.merchant_id(), role_id, label.trim(), &permissions)
        .await?;
    state
        .store
        .append_audit(&authed.audit(
            "update_role",
            format!("role={role_id}"),
            Permission::encode_set(&permissions),
        ))
        .await?;
    Ok(())
}

async fn update_role(
    State(state): State<AppState>,
    authed: Authed,
    Path(role_id): Path<i64>,
    Json(body): Json<RoleRequest>,
) -> ApiResult<StatusCode> {
    change_role(
        &state,
        &authed,
        role_id,
        &body.label,
        parse_permissions(&body.permissions)?,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, Serialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "华东经销", "contact": "王经理", "phone": "13900000000", "remark": ""}))]
pub struct DistributorRequest {
    #[schema(min_length = 1, max_length = 64)]
    pub name: String,
    #[serde(default)]
    #[schema(max_length = 100)]
    pub contact: String,
    #[serde(default)]
    #[schema(max_length = 20)]
    pub phone: String,
    #[serde(default)]
    #[schema(max_length = 200)]
    pub remark: String,
}

impl DistributorRequest {
    fn into_fields(self) -> ApiResult<DistributorFields> {
        if self.name.trim().is_empty() || is_too_long(self.name.trim(), NAME_CHARS_MAX) {
            return Err(ApiError::invalid(format!(
                "券商名称须为 1–{NAME_CHARS_MAX} 个字"
            )));
        }
        check_chars("联系人", &self.contact, CONTACT_CHARS_MAX)?;
        check_chars("电话", &self.phone, PHONE_CHARS_MAX)?;
        check_chars("备注", &self.remark, REMARK_CHARS_MAX)?;
        Ok(DistributorFields {
            name: self.name.trim().to_owned(),
            contact: self.contact.trim().to_owned(),
            phone: self.phone.trim().to_owned(),
            remark: self.remark.trim().to_owned(),
        })
    }
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": 4, "name": "华东经销", "contact": "王经理", "phone": "13900000000", "remark": "", "n_cards": 2000}))]
pub struct DistributorDto {
    pub id: i64,
    pub name: String,
    pub contact: String,
    pub phone: String,
    pub remark: String,
    pub n_cards: i64,
}

impl From<Distributor> for DistributorDto {
    fn from(d: Distributor) -> Self {
        Self {
            id: d.id,
            name: d.name,
            contact: d.contact,
            phone: d.phone,
            remark: d.remark,
            n_cards: d.n_cards,
        }
    }
}

async fn add_distributor(
    state: &AppState,
    authed: &Authed,
    body: DistributorRequest,
) -> ApiResult<Distributor> {
    authed.require(Permission::DistributorsManage)?;
    let d = state
        .store
        .create_distributor(authed.merchant_id(), &body.into_fields()?)
        .await
        .map_err(|e| match e {
            kaquan_core::StoreError::Conflict(_) => ApiError::Conflict("券商名称已存在".into()),
            other => other.into(),
        })?;
    state
        .store
        .append_audit(&authed.audit("create_distributor", d.name.clone(), String::new()))
        .await?;
    Ok(d)
}

async fn list_distributors(
    State(state): State<AppState>,
    authed: Authed,
) -> ApiResult<Json<Vec<DistributorDto>>> {
    authed.require(Permission::CardsView)?;
    Ok(Json(
        state
            .store
            .list_distributors(authed.merchant_id())
            .await?
            .into_iter()
            .map(DistributorDto::from)
            .collect(),
    ))
}

async fn create_distributor(
    State(state): State<AppState>,
    authed: Authed,
    Json(body): Json<DistributorRequest>,
) -> ApiResult<Response> {
    let d = add_distributor(&state, &authed, body).await?;
    Ok((StatusCode::CREATED, Json(DistributorDto::from(d))).into_response())
}

async fn update_distributor(
    State(state): State<AppState>,
    authed: Authed,
    Path(distributor_id): Path<i64>,
    Json(body): Json<DistributorRequest>,
) -> ApiResult<StatusCode> {
    authed.require(Permission::DistributorsManage)?;
    state
        .store
        .update_distributor(authed.merchant_id(), distributor_id, &body.into_fields()?)
        .await?;
    state
        .store
        .append_audit(&authed.audit(
            "update_distributor",
            format!("distributor={distributor_id}"),
            String::new(),
        ))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- console ----------------------------------------------------------------

#[derive(Serialize)]
struct StaffView {
    /// What this merchant's new accounts sign in as, after the typed name
    /// (empty for the first merchant, `@N` for merchant N).
    login_suffix: String,
    staff: Vec<StaffDto>,
    roles: Vec<RoleDto>,
    permissions: Vec<(&'static str, &'static str)>,
    me: i64,
}

async fn staff_page(
    State(state): State<AppState>,
    authed: Authed,
    Query(query): Query<MsgQuery>,
) -> PageResult {
    authed.require(Permission::StaffManage)?;
    let now = crate::now();
    let staff = state
        .store
        .list_staff(authed.merchant_id())
        .await?
        .iter()
        .map(|s| StaffDto::new(s, now))
        .collect();
    let roles = state
        .store
        .list_roles(authed.merchant_id())
        .await?
        .iter()
        .map(RoleDto::from)
        .collect();
    let permissions = Permission::ALL
        .iter()
        .map(|p| (p.code(), p.label_zh()))
        .collect();
    let view = StaffView {
        login_suffix: kaquan_core::auth::login_name(authed.merchant_id(), ""),
        staff,
        roles,
        permissions,
        me: authed.staff.id,
    };
    Ok(render(
        &state,
        "staff.html",
        &Page::new("管理员", &authed).with_message(query.msg),
        view,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StaffForm {
    csrf: String,
    username: String,
    name: String,
    #[serde(default)]
    phone: String,
    password: String,
    role_id: i64,
}

async fn create_staff_form(
    State(state): State<AppState>,
    authed: Authed,
    Form(form): Form<StaffForm>,
) -> PageResult {
    authed.check_form_csrf(&form.csrf)?;
    let body = CreateStaffRequest {
        username: form.username,
        name: form.name,
        phone: form.phone,
        password: form.password,
        role_id: form.role_id,
    };
    let staff = add_staff(&state, &authed, body).await?;
    Ok(redirect_with(
        "/staff",
        &format!("已添加管理员，登录账号为 {}", staff.username),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StaffUpdateForm {
    csrf: String,
    role_id: Option<i64>,
    password: Option<String>,
    /// The new password typed again (changing one's own asks for it twice).
    password_again: Option<String>,
    disabled: Option<String>,
}

async fn update_staff_form(
    State(state): State<AppState>,
    authed: Authed,
    Path(staff_id): Path<i64>,
    Form(form): Form<StaffUpdateForm>,
) -> PageResult {
    authed.check_form_csrf(&form.csrf)?;
    if form.password_again.is_some() && form.password_again != form.password {
        return Err(ApiError::invalid("两次输入的新密码不一致").into());
    }
    let body = UpdateStaffRequest {
        role_id: form.role_id,
        password: form.password,
        disabled: form.disabled.map(|d| d == "true"),
        ..Default::default()
    };
    change_staff(&state, &authed, staff_id, body).await?;
    Ok(redirect_with("/staff", "已保存"))
}

async fn update_role_form(
    State(state): State<AppState>,
    authed: Authed,
    Path(role_id): Path<i64>,
    FormText(body): FormText,
) -> PageResult {
    let form = FormPairs::parse(&body, &["csrf", "label", "permission"])?;
    authed.check_form_csrf(&form.value("csrf"))?;
    let permissions = parse_permissions(&form.all("permission"))?;
    change_role(&state, &authed, role_id, &form.value("label"), permissions).await?;
    Ok(redirect_with("/staff", "角色权限已保存"))
}

#[derive(Serialize)]
struct DistributorsView {
    distributors: Vec<DistributorDto>,
}

async fn distributors_page(
    State(state): State<AppState>,
    authed: Authed,
    Query(query): Query<MsgQuery>,
) -> PageResult {
    authed.require(Permission::DistributorsManage)?;
    let distributors = state
        .store
        .list_distributors(authed.merchant_id())
        .await?
        .into_iter()
        .map(DistributorDto::from)
        .collect();
    Ok(render(
        &state,
        "distributors.html",
        &Page::new("券商管理", &authed).with_message(query.msg),
        DistributorsView { distributors },
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DistributorForm {
    csrf: String,
    name: String,
    #[serde(default)]
    contact: String,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    remark: String,
}

async fn create_distributor_form(
    State(state): State<AppState>,
    authed: Authed,
    Form(form): Form<DistributorForm>,
) -> PageResult {
    authed.check_form_csrf(&form.csrf)?;
    let fields = DistributorRequest {
        name: form.name,
        contact: form.contact,
        phone: form.phone,
        remark: form.remark,
    };
    let d = add_distributor(&state, &authed, fields).await?;
    Ok(redirect_with(
        "/distributors",
        &format!("已添加券商 {}", d.name),
    ))
}
