//! Sign-in, sessions, CSRF and permission checks.
//!
//! A session is a random token in an HttpOnly, SameSite=Strict cookie; the
//! database keeps only its SHA-256. Every state-changing request must carry
//! the session's CSRF token: API calls in the `X-CSRF-Token` header, console
//! forms in a hidden `csrf` field.

use crate::client_address::ClientAddress;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Audience, Form, Json, Rejection};
use crate::forms::CsrfForm;
use crate::pages::{render, Page};
use crate::AppState;
use axum::extract::{FromRequestParts, State};
use axum::http::header::SET_COOKIE;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use kaquan_core::audit::{Actor, AuditEntry};
use kaquan_core::auth::{
    hash_staff_password, login_client_key, login_name_key, verify_staff_password, Permission,
    LOGIN_FAILURES_MERCHANT_ID, LOGIN_FAILURES_PER_CLIENT_MAX, LOGIN_FAILURES_PER_NAME_MAX,
    LOGIN_WINDOW_SECONDS,
};
use kaquan_core::secrets::{random_token_hex, token_hash_hex};
use kaquan_core::staff::{Session, Staff};
use serde::{Deserialize, Serialize};
use std::sync::OnceLock;

pub const SESSION_COOKIE: &str = "kaquan_session";
pub const CSRF_HEADER: &str = "x-csrf-token";
/// How long a sign-in lasts.
pub const SESSION_SECONDS: i64 = 12 * 3600;

/// A signed-in staff member with their role's permissions.
#[derive(Debug, Clone)]
pub struct Authed {
    pub staff: Staff,
    pub role_label: String,
    pub permissions: Vec<Permission>,
    pub csrf_token: String,
    /// The language this request is answered in.
    pub lang: crate::i18n::Lang,
    /// The language this person chose for the headers of their exports
    /// (zh-CN unless they chose).
    pub export_lang: crate::i18n::Lang,
}

impl Authed {
    pub fn merchant_id(&self) -> i64 {
        self.staff.merchant_id
    }

    pub fn can(&self, permission: Permission) -> bool {
        self.permissions.contains(&permission)
    }

    pub fn require(&self, permission: Permission) -> ApiResult<()> {
        if self.can(permission) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(permission.label_zh()))
        }
    }

    /// Checks the CSRF token a console form carried.
    pub fn check_form_csrf(&self, token: &str) -> ApiResult<()> {
        if constant_time_eq(token.as_bytes(), self.csrf_token.as_bytes()) {
            Ok(())
        } else {
            Err(ApiError::Forbidden("表单已过期，请刷新页面后重试"))
        }
    }

    pub fn actor(&self) -> Actor {
        Actor {
            staff_id: Some(self.staff.id),
            label: self.staff.username.clone(),
        }
    }

    pub fn audit(&self, action: &str, target: String, detail: String) -> AuditEntry {
        AuditEntry {
            merchant_id: self.merchant_id(),
            actor: self.actor(),
            action: action.into(),
            target,
            detail,
            n_affected: 0,
            created_at: crate::now(),
        }
    }
}

pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub(crate) fn session_token(headers: &HeaderMap) -> Option<String> {
    crate::cookies::value(headers, SESSION_COOKIE)
}

/// Why a request is not let in: API callers get the JSON envelope, console
/// pages a redirect to the sign-in page.
pub struct AuthRejection {
    audience: Audience,
    error: ApiError,
    /// A console page sends the person here first (to choose a password).
    redirect: Option<&'static str>,
}

/// Where staff whose password someone else chose set their own.
pub const ACCOUNT_PASSWORD_PATH: &str = "/account/password";

impl IntoResponse for AuthRejection {
    fn into_response(self) -> Response {
        // Staff who are not signed in go to the sign-in page; everything else
        // is answered in its audience's shape, as the edge answers.
        if let Some(to) = self.redirect {
            return Redirect::to(to).into_response();
        }
        if self.audience == Audience::Staff && matches!(self.error, ApiError::Unauthenticated) {
            return Redirect::to("/login").into_response();
        }
        Rejection {
            audience: self.audience,
            error: self.error,
        }
        .into_response()
    }
}

impl FromRequestParts<AppState> for Authed {
    type Rejection = AuthRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let audience = Audience::of(parts.uri.path());
        let api = audience == Audience::Program;
        let reject = |error| AuthRejection {
            audience,
            error,
            redirect: None,
        };
        let token =
            session_token(&parts.headers).ok_or_else(|| reject(ApiError::Unauthenticated))?;
        let session = state
            .store
            .find_session(&token_hash_hex(&token), crate::now())
            .await
            .map_err(|e| reject(e.into()))?
            .ok_or_else(|| reject(ApiError::Unauthenticated))?;
        let staff = state
            .store
            .get_staff(session.staff_id)
            .await
            .map_err(|e| reject(e.into()))?;
        if staff.disabled {
            return Err(reject(ApiError::Unauthenticated));
        }
        // A password someone else chose: the console asks for one's own first.
        let path = parts.uri.path();
        if staff.must_change_password
            && audience == Audience::Staff
            && path != ACCOUNT_PASSWORD_PATH
            && path != "/logout"
        {
            return Err(AuthRejection {
                audience,
                error: ApiError::Unauthenticated,
                redirect: Some(ACCOUNT_PASSWORD_PATH),
            });
        }
        crate::record_merchant(staff.merchant_id);
        let safe_method = matches!(parts.method, Method::GET | Method::HEAD);
        if api && !safe_method {
            let sent = parts
                .headers
                .get(CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if !constant_time_eq(sent.as_bytes(), session.csrf_token.as_bytes()) {
                return Err(reject(ApiError::Forbidden("缺少或错误的 X-CSRF-Token")));
            }
        }
        let roles = state
            .store
            .list_roles(staff.merchant_id)
            .await
            .map_err(|e| reject(e.into()))?;
        let role = roles.into_iter().find(|r| r.id == staff.role_id);
        let (role_label, permissions) = role.map(|r| (r.label, r.permissions)).unwrap_or_default();
        let lang = parts
            .extensions
            .get::<crate::i18n::RequestLang>()
            .map(|l| l.0)
            .unwrap_or_default();
        let export_lang = parts
            .extensions
            .get::<crate::i18n::ExportLang>()
            .map(|l| l.0)
            .unwrap_or_default();
        Ok(Authed {
            staff,
            role_label,
            permissions,
            csrf_token: session.csrf_token,
            lang,
            export_lang,
        })
    }
}

/// A hash to verify against when the username is unknown, so an unknown
/// user takes as long to refuse as a wrong password.
fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| hash_staff_password(&random_token_hex(16)))
}

/// Hashes a password (argon2id) on the blocking pool: tens of milliseconds
/// of CPU that must not hold up a runtime thread.
pub async fn hash_password(password: &str) -> ApiResult<String> {
    let password = password.to_owned();
    crate::off_runtime(move || hash_staff_password(&password)).await
}

/// Verifies a password against its hash on the blocking pool.
pub async fn verify_password(password: &str, hash: &str) -> ApiResult<bool> {
    let (password, hash) = (password.to_owned(), hash.to_owned());
    crate::off_runtime(move || verify_staff_password(&password, &hash)).await
}

/// Refuses a sign-in while its username or its client address has failed
/// too often in the window.
async fn check_login_limits(state: &AppState, keys: &[(String, i64)], now: i64) -> ApiResult<()> {
    let since = now - LOGIN_WINDOW_SECONDS;
    for (key, limit) in keys {
        let store = &state.store;
        if store
            .count_failures(LOGIN_FAILURES_MERCHANT_ID, key, since)
            .await?
            >= *limit
        {
            let oldest = store
                .oldest_failure(LOGIN_FAILURES_MERCHANT_ID, key, since)
                .await?
                .unwrap_or(now);
            return Err(ApiError::TooManyAttempts {
                retry_after_seconds: kaquan_core::attempts::retry_after_seconds(oldest, since),
            });
        }
    }
    Ok(())
}

/// Checks a username and password under the sign-in limits: failures count
/// by the username typed, whether or not it exists (so the answers never
/// tell which names exist), and by the client's address. On success,
/// creates a session and returns the cookie.
pub async fn sign_in(
    state: &AppState,
    username: &str,
    password: &str,
    client: &str,
) -> ApiResult<(Staff, String, HeaderValue)> {
    let now = crate::now();
    let keys = [
        (login_name_key(username), LOGIN_FAILURES_PER_NAME_MAX),
        (login_client_key(client), LOGIN_FAILURES_PER_CLIENT_MAX),
    ];
    check_login_limits(state, &keys, now).await?;
    let staff = state.store.find_staff_by_username(username.trim()).await?;
    // An unknown username costs the same hash as a wrong password.
    let hash = staff
        .as_ref()
        .map_or(decoy_hash(), |s| s.password_hash.as_str());
    let password_ok = verify_password(password, hash).await?;
    let staff = match staff {
        Some(staff) if password_ok && !staff.disabled => staff,
        _ => {
            for (key, _) in &keys {
                state
                    .store
                    .record_failure(LOGIN_FAILURES_MERCHANT_ID, key, now)
                    .await?;
            }
            tracing::info!("failed sign-in");
            // The failure that reaches a limit answers as the lock does.
            check_login_limits(state, &keys, now).await?;
            return Err(ApiError::invalid("账号或密码错误"));
        }
    };
    state
        .store
        .clear_failures(LOGIN_FAILURES_MERCHANT_ID, &keys[0].0)
        .await?;
    state.store.record_login(staff.id, true, None).await?;
    let token = random_token_hex(32);
    let csrf_token = random_token_hex(16);
    state
        .store
        .create_session(&Session {
            token_hash: token_hash_hex(&token),
            staff_id: staff.id,
            merchant_id: staff.merchant_id,
            csrf_token: csrf_token.clone(),
            expires_at: now + SESSION_SECONDS,
        })
        .await?;
    let cookie = crate::cookies::set(
        SESSION_COOKIE,
        &token,
        "/",
        cookie::SameSite::Strict,
        SESSION_SECONDS,
        state.secure_cookies,
    );
    Ok((staff, csrf_token, cookie))
}

/// A staff member who chose a language gets it back at every sign-in,
/// on any browser.
fn restore_language(state: &AppState, staff: &Staff, response: &mut Response) {
    if let Some(lang) = staff.language.as_deref().and_then(crate::i18n::Lang::parse) {
        response
            .headers_mut()
            .append(SET_COOKIE, crate::i18n::lang_cookie(state, lang));
    }
}

fn clear_cookie() -> HeaderValue {
    crate::cookies::set(SESSION_COOKIE, "", "/", cookie::SameSite::Strict, 0, false)
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/sessions",
            post(create_session).delete(delete_session),
        )
        .route("/api/v1/me", get(get_me))
        .route("/login", get(login_page).post(login_form))
        .route("/logout", post(logout_form))
        .route(
            ACCOUNT_PASSWORD_PATH,
            get(password_page).post(password_form),
        )
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"username": "owner", "password": "kaquan2026"}))]
pub struct SignInRequest {
    pub username: String,
    pub password: String,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"staff_id": 1, "merchant_id": 1, "username": "owner", "name": "店主", "role": "owner", "permissions": ["cards.view", "orders.manage"], "csrf_token": "5b1e9d3f7a2c4e6b8d0f1a3c5e7b9d2f"}))]
pub struct MeDto {
    pub staff_id: i64,
    pub merchant_id: i64,
    pub username: String,
    pub name: String,
    pub role: String,
    pub permissions: Vec<&'static str>,
    pub csrf_token: String,
}

impl MeDto {
    fn new(staff: &Staff, role: String, permissions: &[Permission], csrf_token: String) -> Self {
        Self {
            staff_id: staff.id,
            merchant_id: staff.merchant_id,
            username: staff.username.clone(),
            name: staff.name.clone(),
            role,
            permissions: permissions.iter().map(|p| p.code()).collect(),
            csrf_token,
        }
    }
}

async fn create_session(
    State(state): State<AppState>,
    address: ClientAddress,
    Json(body): Json<SignInRequest>,
) -> ApiResult<Response> {
    let (staff, csrf_token, cookie) =
        sign_in(&state, &body.username, &body.password, &address.key()).await?;
    let roles = state.store.list_roles(staff.merchant_id).await?;
    let role = roles.into_iter().find(|r| r.id == staff.role_id);
    let (label, permissions) = role.map(|r| (r.label, r.permissions)).unwrap_or_default();
    let mut response = Json(MeDto::new(&staff, label, &permissions, csrf_token)).into_response();
    response.headers_mut().insert(SET_COOKIE, cookie);
    restore_language(&state, &staff, &mut response);
    Ok(response)
}

async fn delete_session(
    State(state): State<AppState>,
    headers: HeaderMap,
    _authed: Authed,
) -> ApiResult<Response> {
    if let Some(token) = session_token(&headers) {
        state.store.delete_session(&token_hash_hex(&token)).await?;
    }
    let mut response = axum::http::StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(SET_COOKIE, clear_cookie());
    Ok(response)
}

async fn get_me(authed: Authed) -> Json<MeDto> {
    Json(MeDto::new(
        &authed.staff,
        authed.role_label.clone(),
        &authed.permissions,
        authed.csrf_token.clone(),
    ))
}

#[derive(Serialize, Default)]
struct LoginView {
    error: Option<String>,
    username: String,
    form_token: String,
    /// The shop's name and logo, when the server runs one shop.
    shop: Option<String>,
    message: Option<String>,
    logo: Option<String>,
}

/// Sign-in forms carry a token that must match this SameSite=Strict cookie,
/// which another site's page cannot send: it cannot sign a browser in to an
/// account of its choosing (login CSRF). For a customer that would matter
/// most: the code they then redeem would credit the attacker.
const FORM_COOKIE: &str = "kaquan_form";
const FORM_COOKIE_SECONDS: i64 = 3600;

/// A new form token and the cookie, for forms posted under `path`.
pub fn form_token_cookie(state: &AppState, path: &str) -> (String, HeaderValue) {
    let token = random_token_hex(16);
    let cookie = crate::cookies::set(
        FORM_COOKIE,
        &token,
        path,
        cookie::SameSite::Strict,
        FORM_COOKIE_SECONDS,
        state.secure_cookies,
    );
    (token, cookie)
}

/// The form's token matches its cookie.
pub fn check_form_token(headers: &HeaderMap, token: &str) -> ApiResult<()> {
    match crate::cookies::value(headers, FORM_COOKIE) {
        Some(cookie)
            if !token.is_empty() && constant_time_eq(cookie.as_bytes(), token.as_bytes()) =>
        {
            Ok(())
        }
        _ => Err(ApiError::invalid("页面已过期，请重新提交")),
    }
}

async fn render_login(state: &AppState, mut view: LoginView, status: StatusCode) -> Response {
    let (token, cookie) = form_token_cookie(state, "/login");
    view.form_token = token;
    // One shop on this server: its name and logo greet its staff.
    if let Ok([merchant]) = state.store.list_merchants().await.as_deref() {
        view.shop = Some(merchant.name.clone());
        if let Ok(Some(_)) = state.store.logo_updated_at(merchant.id).await {
            view.logo = Some(format!("/m/{}/logo", merchant.id));
        }
    }
    let mut response = render(state, "login.html", &Page::anonymous("登录"), view);
    *response.status_mut() = status;
    response.headers_mut().append(SET_COOKIE, cookie);
    response
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginQuery {
    /// After one's own new password was saved.
    changed: Option<String>,
}

async fn login_page(
    State(state): State<AppState>,
    crate::extract::Query(query): crate::extract::Query<LoginQuery>,
) -> Response {
    let view = LoginView {
        message: query
            .changed
            .map(|_| "新密码已保存，请用新密码登录".to_owned()),
        ..Default::default()
    };
    render_login(&state, view, StatusCode::OK).await
}

async fn login_form(
    State(state): State<AppState>,
    address: ClientAddress,
    headers: HeaderMap,
    Form(body): Form<LoginForm>,
) -> Response {
    let signed_in = async {
        check_form_token(&headers, &body.form_token)?;
        sign_in(&state, &body.username, &body.password, &address.key()).await
    };
    match signed_in.await {
        Ok((staff, _, cookie)) => {
            let mut response = Redirect::to("/").into_response();
            response.headers_mut().insert(SET_COOKIE, cookie);
            restore_language(&state, &staff, &mut response);
            response
        }
        Err(error) => {
            let view = LoginView {
                error: Some(error.public_message()),
                username: body.username,
                ..Default::default()
            };
            render_login(&state, view, error.status()).await
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginForm {
    username: String,
    password: String,
    #[serde(default)]
    form_token: String,
}

async fn logout_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    authed: Authed,
    Form(form): Form<CsrfForm>,
) -> ApiResult<Response> {
    authed.check_form_csrf(&form.csrf)?;
    if let Some(token) = session_token(&headers) {
        state.store.delete_session(&token_hash_hex(&token)).await?;
    }
    let mut response = Redirect::to("/login").into_response();
    response.headers_mut().insert(SET_COOKIE, clear_cookie());
    Ok(response)
}

#[derive(Serialize, Default)]
struct PasswordView {
    error: Option<String>,
    must_change: bool,
}

fn render_password(state: &AppState, authed: &Authed, error: Option<String>) -> Response {
    let view = PasswordView {
        must_change: authed.staff.must_change_password,
        error,
    };
    let mut page = Page::new("修改密码", authed);
    if authed.staff.must_change_password {
        // Until a password of one's own is set, there is nowhere else to go.
        page.nav.clear();
    }
    render(state, "account_password.html", &page, view)
}

async fn password_page(State(state): State<AppState>, authed: Authed) -> Response {
    render_password(&state, &authed, None)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordForm {
    csrf: String,
    password: String,
    password_again: String,
}

/// One's own new password, typed twice. Every session of the account ends
/// (as with any password change), so the person signs in again with it.
async fn password_form(
    State(state): State<AppState>,
    authed: Authed,
    Form(form): Form<PasswordForm>,
) -> crate::pages::PageResult {
    authed.check_form_csrf(&form.csrf)?;
    let problem = if form.password != form.password_again {
        Some("两次输入的新密码不一致".to_owned())
    } else {
        kaquan_core::auth::check_staff_password(&form.password).err()
    };
    if let Some(problem) = problem {
        let mut response = render_password(&state, &authed, Some(problem));
        *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
        return Ok(response);
    }
    let update = kaquan_core::staff::StaffUpdate {
        password_hash: Some(hash_password(&form.password).await?),
        must_change_password: Some(false),
        ..Default::default()
    };
    state
        .store
        .update_staff(authed.merchant_id(), authed.staff.id, &update)
        .await?;
    state
        .store
        .append_audit(&authed.audit(
            "update_staff",
            format!("staff={}", authed.staff.id),
            "own password".into(),
        ))
        .await?;
    Ok(Redirect::to("/login?changed=1").into_response())
}
