//! 兑换中心: the customer's phone pages for stored value. A customer signs
//! in through a single-use login link the mall requested for them (or, if
//! the merchant allows it, with phone + password), redeems codes into their
//! balance, and sees the balance, its statement (余额明细) and their
//! gift-card orders with the codes (used ones struck through).

use crate::auth::{check_form_token, constant_time_eq, form_token_cookie};
use crate::client_address::ClientAddress;
use crate::customers::TransactionView;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Form, Path, Query};
use crate::giftcards::cached_settings;
use crate::pages::{render, Page, PageResult};
use crate::AppState;
use axum::extract::{FromRequestParts, State};
use axum::http::header::SET_COOKIE;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use kaquan_core::attempts::ATTEMPT_WINDOW_SECONDS;
use kaquan_core::audit::Actor;
use kaquan_core::auth::check_staff_password;
use kaquan_core::clock::format_datetime;
use kaquan_core::code::CodeRedeemer;
use kaquan_core::customer::Customer;
use kaquan_core::customer::CustomerSession;
use kaquan_core::giftcard::{GiftcardImageSlot, GiftcardSettings};
use kaquan_core::ledger::{ApiCall, CustomerRef, Refusal};
use kaquan_core::money::format_yuan;
use kaquan_core::pickup::Channel;
use kaquan_core::secrets::{random_token_hex, token_hash_hex};
use kaquan_core::signing::read_login_token;
use kaquan_core::store::Page as ListPage;
use kaquan_core::StoreError;
use serde::{Deserialize, Serialize};

const CUSTOMER_COOKIE: &str = "kaquan_customer";
/// How long a customer stays signed in.
pub const CUSTOMER_SESSION_SECONDS: i64 = 7 * 86_400;
/// Wrong phone passwords allowed per phone and per client in the attempt window.
const PHONE_LOGIN_ATTEMPTS_MAX: i64 = 5;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/m/{merchant_id}/exchange", get(centre_page))
        .route("/m/{merchant_id}/exchange/login", get(login_link))
        .route("/m/{merchant_id}/exchange/redeem", post(redeem_form))
        .route("/m/{merchant_id}/exchange/balance", get(balance_page))
        .route("/m/{merchant_id}/exchange/orders", get(orders_page))
        .route("/m/{merchant_id}/exchange/signin", post(signin_form))
        .route("/m/{merchant_id}/exchange/signup", post(signup_form))
        .route("/m/{merchant_id}/exchange/logout", post(logout_form))
        .route(
            "/m/{merchant_id}/giftcard-images/{slot}",
            get(serve_giftcard_image),
        )
}

/// The signed-in customer of the merchant in the path, if any.
pub struct CustomerAuthed(pub Option<(CustomerSession, Customer)>);

impl FromRequestParts<AppState> for CustomerAuthed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        let Some(token) = crate::cookies::value(&parts.headers, CUSTOMER_COOKIE) else {
            return Ok(Self(None));
        };
        let merchant_id = merchant_in_path(parts.uri.path());
        let Some(session) = state
            .store
            .find_customer_session(&token_hash_hex(&token), crate::now())
            .await?
        else {
            return Ok(Self(None));
        };
        if Some(session.merchant_id) != merchant_id {
            return Ok(Self(None));
        }
        let customer = state
            .store
            .get_customer(session.merchant_id, session.customer_id)
            .await?;
        Ok(Self(Some((session, customer))))
    }
}

fn merchant_in_path(path: &str) -> Option<i64> {
    path.strip_prefix("/m/")?.split('/').next()?.parse().ok()
}

fn session_cookie(state: &AppState, merchant_id: i64, token: &str, max_age: i64) -> HeaderValue {
    // Lax, not Strict: the customer arrives by following the mall's link.
    crate::cookies::set(
        CUSTOMER_COOKIE,
        token,
        &format!("/m/{merchant_id}/"),
        cookie::SameSite::Lax,
        max_age,
        state.secure_cookies,
    )
}

/// Where a sign-in goes on to: `next` when it is one of this shop's own
/// customer pages, else the exchange centre.
pub fn after_sign_in(merchant_id: i64, next: Option<&str>) -> String {
    let prefix = format!("/m/{merchant_id}/");
    match next {
        Some(path)
            if path.starts_with(&prefix)
                && !path.contains("//")
                && !path.contains('\\')
                && path.len() <= 300
                && path.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            path.to_owned()
        }
        _ => centre_path(merchant_id),
    }
}

/// Signs the customer in and sends them on to `next` (see [`after_sign_in`]).
async fn start_session(
    state: &AppState,
    merchant_id: i64,
    customer_id: i64,
    next: Option<&str>,
) -> ApiResult<Response> {
    let token = random_token_hex(32);
    state
        .store
        .create_customer_session(&CustomerSession {
            token_hash: token_hash_hex(&token),
            merchant_id,
            customer_id,
            csrf_token: random_token_hex(16),
            expires_at: crate::now() + CUSTOMER_SESSION_SECONDS,
        })
        .await?;
    let mut response = Redirect::to(&after_sign_in(merchant_id, next)).into_response();
    response.headers_mut().insert(
        SET_COOKIE,
        session_cookie(state, merchant_id, &token, CUSTOMER_SESSION_SECONDS),
    );
    Ok(response)
}

/// The exchange centre's path (the public address is `public_url` before it).
pub fn centre_path(merchant_id: i64) -> String {
    format!("/m/{merchant_id}/exchange")
}

/// Where a 礼品卡设置 picture is served; `?v=` changes with each upload so
/// phones and the mall never show a stale copy.
pub fn giftcard_image_url(merchant_id: i64, slot: GiftcardImageSlot, updated_at: i64) -> String {
    format!(
        "/m/{merchant_id}/giftcard-images/{}?v={updated_at}",
        slot.code()
    )
}

/// The merchant's 礼品卡设置 pictures, each address after `prefix` (empty
/// for this server's pages, the public address for the mall).
#[derive(Serialize, Default, utoipa::ToSchema)]
#[schema(example = json!({"banner": null, "cover": "/media/giftcards/cover.png", "share": null}))]
pub struct ImageUrls {
    /// 礼品卡页顶部图片.
    pub banner: Option<String>,
    /// 分享图片.
    pub share: Option<String>,
    /// 礼品卡首页入口封面图.
    pub cover: Option<String>,
}

impl ImageUrls {
    pub async fn of(state: &AppState, merchant_id: i64, prefix: &str) -> ApiResult<Self> {
        let mut images = Self::default();
        for (slot, updated_at) in state.store.giftcard_images(merchant_id).await? {
            let url = Some(format!(
                "{prefix}{}",
                giftcard_image_url(merchant_id, slot, updated_at)
            ));
            match slot {
                GiftcardImageSlot::Banner => images.banner = url,
                GiftcardImageSlot::Share => images.share = url,
                GiftcardImageSlot::Cover => images.cover = url,
            }
        }
        Ok(images)
    }
}

#[derive(Serialize)]
struct CentreView {
    merchant_id: i64,
    enabled: bool,
    centre_name: String,
    share_title: String,
    description: String,
    phone_login: bool,
    images: ImageUrls,
    /// 分享图片 at its public address, for the share card (`og:image`).
    share_image: Option<String>,
    signed_in: bool,
    customer_label: String,
    balance_yuan: String,
    csrf: String,
    /// Set after a redemption: the success line.
    redeemed: Option<String>,
    /// The phone number a failed sign-in or sign-up was tried with.
    phone: String,
    /// The shortest password a customer may choose.
    password_length_min: usize,
    /// The phone form's token (`auth::check_form_token`).
    form_token: String,
    error: Option<String>,
    /// Where sign-in goes on to.
    next: String,
}

async fn centre_view(
    state: &AppState,
    merchant_id: i64,
    settings: GiftcardSettings,
    authed: &CustomerAuthed,
) -> ApiResult<CentreView> {
    let images = ImageUrls::of(state, merchant_id, "").await?;
    let public_url = state.public_url_for(merchant_id).await?;
    let (signed_in, customer_label, balance_yuan, csrf) = match &authed.0 {
        Some((session, customer)) => (
            true,
            customer.greeting(),
            format_yuan(customer.balance_fen),
            session.csrf_token.clone(),
        ),
        None => (false, String::new(), String::new(), String::new()),
    };
    Ok(CentreView {
        merchant_id,
        enabled: settings.enabled,
        centre_name: settings.centre_name,
        share_title: settings.share_title,
        description: settings.description,
        phone_login: settings.phone_login,
        share_image: images
            .share
            .as_ref()
            .map(|url| format!("{}{url}", public_url)),
        images,
        signed_in,
        customer_label,
        balance_yuan,
        csrf,
        redeemed: None,
        phone: String::new(),
        password_length_min: kaquan_core::auth::STAFF_PASSWORD_LENGTH_MIN,
        form_token: String::new(),
        error: None,
        next: String::new(),
    })
}

fn render_centre(state: &AppState, mut view: CentreView, status: StatusCode) -> Response {
    let cookie = (!view.signed_in && view.phone_login).then(|| {
        let (token, cookie) = form_token_cookie(state, &centre_path(view.merchant_id));
        view.form_token = token;
        cookie
    });
    let page = Page::anonymous(&view.centre_name);
    let mut response = render(state, "exchange.html", &page, view);
    *response.status_mut() = status;
    if let Some(cookie) = cookie {
        response.headers_mut().append(SET_COOKIE, cookie);
    }
    response
}

/// Lenient on purpose: a customer's landing page, opened from printed QR
/// codes, WeChat shares and the mall, which append their own parameters;
/// `next` is where sign-in goes on to (a coupon's page).
#[derive(Deserialize)]
struct CentreQuery {
    next: Option<String>,
}

async fn centre_page(
    State(state): State<AppState>,
    Path(merchant_id): Path<i64>,
    authed: CustomerAuthed,
    Query(query): Query<CentreQuery>,
) -> PageResult {
    if authed.0.is_some() {
        if let Some(next) = query.next.as_deref() {
            return Ok(Redirect::to(&after_sign_in(merchant_id, Some(next))).into_response());
        }
    }
    let settings = cached_settings(&state, merchant_id).await?;
    let mut view = centre_view(&state, merchant_id, settings, &authed).await?;
    view.next = query.next.unwrap_or_default();
    Ok(render_centre(&state, view, StatusCode::OK))
}

/// Lenient on purpose: a customer's landing page, opened from printed QR
/// codes, WeChat shares and the mall, which append their own parameters
/// (`from`, `isappinstalled`, `utm_*`); it changes nothing, so an unknown
/// parameter is ignored rather than refused.
#[derive(Deserialize)]
struct LoginQuery {
    token: String,
    /// The page to go on to (the mall may send its customer to a coupon's
    /// claim page or 我的卡券).
    next: Option<String>,
}

/// Follows a login link: checks its signature and expiry, uses it up, signs in.
async fn login_link(
    State(state): State<AppState>,
    Path(merchant_id): Path<i64>,
    Query(query): Query<LoginQuery>,
) -> PageResult {
    let now = crate::now();
    let link = read_login_token(&state.master, &query.token, now)
        .filter(|link| link.merchant_id == merchant_id)
        .ok_or_else(|| ApiError::invalid("登录链接无效或已过期，请回到商城重新进入"))?;
    match state
        .store
        .consume_login_link(&link.nonce, link.expires_at)
        .await
    {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => {
            return Err(ApiError::invalid("登录链接已使用过，请回到商城重新进入").into())
        }
        Err(other) => return Err(ApiError::from(other).into()),
    }
    Ok(start_session(&state, merchant_id, link.customer_id, query.next.as_deref()).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RedeemForm {
    csrf: String,
    code: String,
}

async fn redeem_form(
    State(state): State<AppState>,
    Path(merchant_id): Path<i64>,
    address: ClientAddress,
    authed: CustomerAuthed,
    Form(form): Form<RedeemForm>,
) -> PageResult {
    let Some((session, customer)) = &authed.0 else {
        return Ok(back_to_centre(merchant_id));
    };
    if !constant_time_eq(form.csrf.as_bytes(), session.csrf_token.as_bytes()) {
        return Err(ApiError::Forbidden("页面已过期，请刷新后重试").into());
    }
    let settings = cached_settings(&state, merchant_id).await?;
    let mut view = centre_view(&state, merchant_id, settings.clone(), &authed).await?;
    if !view.enabled {
        view.error = Some("礼品卡活动未开启".into());
        return Ok(render_centre(&state, view, StatusCode::CONFLICT));
    }
    let called = kaquan_core::code::redeem_code(
        state.store.as_ref(),
        &state.master,
        &settings,
        &ApiCall::default(),
        CodeRedeemer {
            merchant_id,
            customer: CustomerRef::Id(customer.id),
            client_key: format!("ip:{}", address.0),
            channel: Channel::Web,
            actor: Actor {
                staff_id: None,
                label: "customer".into(),
            },
            now: crate::now(),
        },
        form.code.get(..64).unwrap_or(&form.code),
    )
    .await?;
    state.metrics.count_redemption(&called.result);
    match called.result {
        Ok(transaction) => {
            view.balance_yuan = format_yuan(transaction.balance_after_fen);
            view.redeemed = Some(format!(
                "兑换成功！¥{} 已存入余额，当前余额 ¥{}",
                format_yuan(transaction.amount_fen),
                format_yuan(transaction.balance_after_fen)
            ));
            Ok(render_centre(&state, view, StatusCode::OK))
        }
        Err(refusal) => {
            view.error = Some(refusal.message_zh());
            let status = ApiError::Refused(refusal).status();
            Ok(render_centre(&state, view, status))
        }
    }
}

#[derive(Serialize)]
struct BalanceView {
    merchant_id: i64,
    centre_name: String,
    balance_yuan: String,
    lines: Vec<StatementLine>,
    total: i64,
    page: i64,
    pages: i64,
}

#[derive(Serialize)]
struct StatementLine {
    #[serde(flatten)]
    transaction: TransactionView,
    amount_yuan: String,
    balance_after_yuan: String,
    what: String,
}

/// A statement line for people: signed yuan amounts and what caused the
/// change (a redemption names the card's or code's name, from `names`).
fn statement_line(
    t: &kaquan_core::ledger::LedgerTransaction,
    names: &[(i64, String)],
) -> StatementLine {
    let code_id = t
        .reference
        .strip_prefix("code:")
        .and_then(|id| id.parse::<i64>().ok());
    let what = match t.kind {
        kaquan_core::ledger::TransactionKind::Redeem => {
            match names.iter().find(|(id, _)| Some(*id) == code_id) {
                Some((_, name)) => format!("兑换「{name}」"),
                None => "兑换码兑换".to_owned(),
            }
        }
        kaquan_core::ledger::TransactionKind::Spend => format!("消费（订单 {}）", t.reference),
        kaquan_core::ledger::TransactionKind::Refund => {
            format!(
                "退款{}",
                if t.reason.is_empty() {
                    String::new()
                } else {
                    format!("：{}", t.reason)
                }
            )
        }
        kaquan_core::ledger::TransactionKind::Adjust => format!("余额调整：{}", t.reason),
        other => other.label_zh().to_owned(),
    };
    let sign = if t.amount_fen > 0 { "+" } else { "" };
    StatementLine {
        transaction: TransactionView::new(t),
        amount_yuan: format!("{sign}{}", format_yuan(t.amount_fen)),
        balance_after_yuan: format_yuan(t.balance_after_fen),
        what,
    }
}

/// Lenient on purpose: a customer's landing page, opened from printed QR
/// codes, WeChat shares and the mall, which append their own parameters
/// (`from`, `isappinstalled`, `utm_*`); it changes nothing, so an unknown
/// parameter is ignored rather than refused.
#[derive(Deserialize)]
struct PageQuery {
    page: Option<i64>,
}

/// The signed-in customer; `None` sends the visitor back to the centre to sign in.
fn signed_in(authed: &CustomerAuthed) -> Option<&Customer> {
    authed.0.as_ref().map(|(_, customer)| customer)
}

fn back_to_centre(merchant_id: i64) -> Response {
    Redirect::to(&centre_path(merchant_id)).into_response()
}

async fn balance_page(
    State(state): State<AppState>,
    Path(merchant_id): Path<i64>,
    Query(query): Query<PageQuery>,
    authed: CustomerAuthed,
) -> PageResult {
    let Some(customer) = signed_in(&authed) else {
        return Ok(back_to_centre(merchant_id));
    };
    let page = ListPage::new(query.page, Some(20));
    let (lines, total) = state
        .store
        .list_statement(merchant_id, customer.id, page)
        .await?;
    let settings = cached_settings(&state, merchant_id).await?;
    let code_ids: Vec<i64> = lines
        .iter()
        .filter_map(|t| t.reference.strip_prefix("code:")?.parse().ok())
        .collect();
    let names = state
        .store
        .template_names_of_codes(merchant_id, &code_ids)
        .await?;
    let view = BalanceView {
        merchant_id,
        centre_name: settings.centre_name,
        balance_yuan: format_yuan(customer.balance_fen),
        lines: lines.iter().map(|t| statement_line(t, &names)).collect(),
        total,
        page: page.page,
        pages: (total + page.page_size - 1) / page.page_size,
    };
    Ok(render(
        &state,
        "exchange_balance.html",
        &Page::anonymous("余额明细"),
        view,
    ))
}

#[derive(Serialize)]
struct OrderView {
    order_id: String,
    product_name: String,
    quantity: i64,
    created_at: String,
    codes: Vec<CodeView>,
}

#[derive(Serialize)]
struct CodeView {
    code: String,
    used: bool,
    state_label: &'static str,
    face_value_yuan: String,
}

/// The customer's gift-card orders with their codes (copy, then redeem).
async fn orders_page(
    State(state): State<AppState>,
    Path(merchant_id): Path<i64>,
    authed: CustomerAuthed,
) -> PageResult {
    let Some(customer) = signed_in(&authed) else {
        return Ok(back_to_centre(merchant_id));
    };
    let orders = state
        .store
        .list_customer_orders(merchant_id, customer.id)
        .await?;
    let views: Vec<OrderView> = orders
        .iter()
        .map(|order| OrderView {
            order_id: order.order_id.clone(),
            product_name: order.product_name.clone(),
            quantity: order.quantity,
            created_at: format_datetime(order.created_at),
            codes: order
                .codes
                .iter()
                .map(|c| CodeView {
                    code: c.plaintext(&state.master, merchant_id),
                    used: c.state != kaquan_core::code::CodeState::Unused,
                    state_label: c.state.label_zh(),
                    face_value_yuan: format_yuan(c.face_value_fen),
                })
                .collect(),
        })
        .collect();
    Ok(render(
        &state,
        "exchange_orders.html",
        &Page::anonymous("我的礼品卡"),
        minijinja::context! { merchant_id => merchant_id, orders => views },
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PhoneForm {
    phone: String,
    password: String,
    #[serde(default)]
    form_token: String,
    /// The page to go on to after signing in (a coupon's claim page).
    #[serde(default)]
    next: String,
}

fn check_phone(phone: &str) -> ApiResult<String> {
    kaquan_core::customer::check_mobile(phone).map_err(ApiError::invalid)
}

async fn phone_login_allowed(state: &AppState, merchant_id: i64) -> ApiResult<()> {
    if cached_settings(state, merchant_id).await?.phone_login {
        Ok(())
    } else {
        Err(ApiError::Forbidden("本店未开启手机号登录，请从商城进入"))
    }
}

async fn signin_form(
    State(state): State<AppState>,
    Path(merchant_id): Path<i64>,
    address: ClientAddress,
    headers: HeaderMap,
    Form(form): Form<PhoneForm>,
) -> PageResult {
    let signed_in = sign_in_by_phone(&state, merchant_id, address, &headers, &form).await;
    session_or_centre(&state, merchant_id, &form, signed_in).await
}

/// What phone sign-in and sign-up check first: the form is this server's
/// own (`check_form_token`), the shop allows it, the phone is one; the phone.
async fn checked_phone(
    state: &AppState,
    merchant_id: i64,
    headers: &HeaderMap,
    form: &PhoneForm,
) -> ApiResult<String> {
    check_form_token(headers, &form.form_token)?;
    phone_login_allowed(state, merchant_id).await?;
    check_phone(&form.phone)
}

async fn sign_in_by_phone(
    state: &AppState,
    merchant_id: i64,
    address: ClientAddress,
    headers: &HeaderMap,
    form: &PhoneForm,
) -> ApiResult<Response> {
    let phone = checked_phone(state, merchant_id, headers, form).await?;
    let now = crate::now();
    let keys = [
        format!("customer-login:{phone}"),
        format!("customer-login-client:{}", address.0),
    ];
    for key in &keys {
        if state
            .store
            .count_failures(merchant_id, key, now - ATTEMPT_WINDOW_SECONDS)
            .await?
            >= PHONE_LOGIN_ATTEMPTS_MAX
        {
            return Err(ApiError::Refused(Refusal::Locked {
                retry_after_seconds: ATTEMPT_WINDOW_SECONDS,
            }));
        }
    }
    let found = state.store.find_phone_customer(merchant_id, &phone).await?;
    let ok = match &found {
        Some((_, hash)) => crate::auth::verify_password(&form.password, hash).await?,
        None => {
            // The same work for an unknown phone as for a wrong password.
            crate::auth::hash_password(&form.password).await?;
            false
        }
    };
    match found {
        Some((customer, _)) if ok => {
            start_session(state, merchant_id, customer.id, Some(&form.next)).await
        }
        _ => {
            for key in &keys {
                state.store.record_failure(merchant_id, key, now).await?;
            }
            Err(ApiError::invalid("手机号或密码错误"))
        }
    }
}

async fn signup_form(
    State(state): State<AppState>,
    Path(merchant_id): Path<i64>,
    headers: HeaderMap,
    Form(form): Form<PhoneForm>,
) -> PageResult {
    let signed_up = sign_up_by_phone(&state, merchant_id, &headers, &form).await;
    session_or_centre(&state, merchant_id, &form, signed_up).await
}

async fn sign_up_by_phone(
    state: &AppState,
    merchant_id: i64,
    headers: &HeaderMap,
    form: &PhoneForm,
) -> ApiResult<Response> {
    let phone = checked_phone(state, merchant_id, headers, form).await?;
    check_staff_password(&form.password).map_err(ApiError::invalid)?;
    let customer = match state
        .store
        .create_phone_customer(
            merchant_id,
            &phone,
            &crate::auth::hash_password(&form.password).await?,
            crate::now(),
        )
        .await
    {
        Ok(customer) => customer,
        Err(StoreError::Conflict(_)) => {
            // A merchant sent coupons to this phone before it signed up.
            let hash = crate::auth::hash_password(&form.password).await?;
            match state
                .store
                .adopt_phone_customer(merchant_id, &phone, &hash)
                .await?
            {
                Some(customer) => customer,
                None => return Err(ApiError::Conflict("该手机号已注册，请直接登录".into())),
            }
        }
        Err(other) => return Err(other.into()),
    };
    start_session(state, merchant_id, customer.id, Some(&form.next)).await
}

/// A phone sign-in or sign-up that worked goes on with its session; one
/// that did not shows the centre again with what went wrong and the phone
/// number kept, so the customer stays on the page they know.
async fn session_or_centre(
    state: &AppState,
    merchant_id: i64,
    form: &PhoneForm,
    result: ApiResult<Response>,
) -> PageResult {
    let error = match result {
        Ok(response) => return Ok(response),
        Err(error @ ApiError::Internal(_)) => return Err(error.into()),
        Err(error) => error,
    };
    let settings = cached_settings(state, merchant_id).await?;
    let mut view = centre_view(state, merchant_id, settings, &CustomerAuthed(None)).await?;
    view.error = Some(error.public_message());
    view.phone = form.phone.trim().chars().take(11).collect();
    view.next = form.next.clone();
    Ok(render_centre(state, view, error.status()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LogoutForm {
    csrf: String,
}

async fn logout_form(
    State(state): State<AppState>,
    Path(merchant_id): Path<i64>,
    authed: CustomerAuthed,
    Form(form): Form<LogoutForm>,
) -> PageResult {
    if let Some((session, _)) = &authed.0 {
        if constant_time_eq(form.csrf.as_bytes(), session.csrf_token.as_bytes()) {
            state
                .store
                .delete_customer_session(&session.token_hash)
                .await?;
        }
    }
    let mut response = Redirect::to(&centre_path(merchant_id)).into_response();
    response
        .headers_mut()
        .insert(SET_COOKIE, session_cookie(&state, merchant_id, "", 0));
    Ok(response)
}

async fn serve_giftcard_image(
    State(state): State<AppState>,
    Path((merchant_id, slot)): Path<(i64, String)>,
) -> ApiResult<Response> {
    let slot = GiftcardImageSlot::parse(&slot).ok_or(ApiError::NotFound)?;
    let (content_type, bytes) = state
        .store
        .get_giftcard_image(merchant_id, slot)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(crate::images::image_response(content_type, bytes))
}
