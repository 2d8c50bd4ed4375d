//! The customer's coupon pages (H5, phone-sized), signed in as in the
//! exchange centre (the mall's login link, or phone + password): a claim
//! link's page and 领取, 我的卡券 with its tabs 可使用 / 已使用 / 已过期, a
//! coupon with its code as the program shows it (QR, barcode, text, or a
//! 动态码 refreshed every 30 seconds), and 转赠 by link to a friend.

use crate::error::{ApiError, ApiResult};
use crate::exchange::CustomerAuthed;
use crate::extract::{Form, Json, Path, Query};
use crate::pages::{render, Page, PageResult};
use crate::AppState;
use axum::extract::State;
use axum::http::header::SET_COOKIE;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use kaquan_core::audit::Actor;
use kaquan_core::clock::format_date;
use kaquan_core::coupon::code::{
    digest_keys, group_digits, open_coupon_code, rotating_code, seconds_until_rotation, share_tag,
    share_tag_matches,
};
use kaquan_core::coupon::usage::{CouponSource, CouponStatus, HeldCoupon, WalletTab};
use kaquan_core::coupon::usecases::{self, Recipients};
use kaquan_core::coupon::{color_hex, CouponProgram};
use kaquan_core::customer::{Customer, CustomerSession};
use kaquan_core::ledger::ApiCall;
use kaquan_core::secrets::token_hash_hex;
use kaquan_core::store::Page as ListPage;
use serde::{Deserialize, Serialize};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/m/{merchant_id}/coupons/{token}",
            get(claim_page).post(claim_form),
        )
        .route("/m/{merchant_id}/wallet", get(wallet_page))
        .route("/m/{merchant_id}/wallet/{coupon_id}", get(coupon_page))
        .route("/m/{merchant_id}/wallet/{coupon_id}/code", get(coupon_code))
        .route("/m/{merchant_id}/wallet/{coupon_id}/gift", post(gift_form))
        .route(
            "/m/{merchant_id}/wallet/{coupon_id}/gift/cancel",
            post(cancel_gift_form),
        )
        .route(
            "/m/{merchant_id}/gifts/{token}",
            get(gift_page).post(accept_gift_form),
        )
        .route(
            "/m/{merchant_id}/shared/{coupon_id}/{tag}",
            get(shared_page).post(shared_claim_form),
        )
}

/// What every coupon page shows of a program.
#[derive(Serialize)]
struct ProgramView {
    title: String,
    sub_title: String,
    brand_name: String,
    logo_url: String,
    color_hex: &'static str,
    kind_label: &'static str,
    benefit: String,
    validity: String,
    time_limit: String,
    notice: String,
    description: String,
    service_phone: String,
    locations: Vec<String>,
    stock_left: i64,
    /// 朋友的券: cover, 简介 and 图文详情.
    shared: Option<SharedView>,
}

#[derive(Serialize)]
struct SharedView {
    cover_url: String,
    abstract_text: String,
    detail_text: String,
}

async fn program_view(state: &AppState, p: &CouponProgram) -> ApiResult<ProgramView> {
    let f = &p.fields;
    let locations = if f.use_all_locations {
        vec!["全部门店".to_owned()]
    } else {
        state
            .store
            .list_locations(p.merchant_id)
            .await?
            .into_iter()
            .filter(|l| f.location_ids.contains(&l.id))
            .map(|l| {
                if l.fields.address.is_empty() {
                    l.fields.name
                } else {
                    format!("{}（{}）", l.fields.name, l.fields.address)
                }
            })
            .collect()
    };
    Ok(ProgramView {
        title: f.title.clone(),
        sub_title: f.sub_title.clone(),
        brand_name: f.brand_name.clone(),
        logo_url: f.logo_url.clone(),
        color_hex: color_hex(&f.color),
        kind_label: f.benefit.kind().label_zh(),
        benefit: f.benefit.summary_zh(),
        validity: f.validity.text_zh(),
        time_limit: f.time_limit.text_zh(),
        notice: f.notice.clone(),
        description: f.description.clone(),
        service_phone: f.service_phone.clone(),
        locations,
        stock_left: p.stock_left(),
        shared: f.shared.as_ref().map(|s| SharedView {
            cover_url: s.cover_url.clone(),
            abstract_text: s.abstract_text.clone(),
            detail_text: s.detail_text.clone(),
        }),
    })
}

#[derive(Serialize)]
struct ClaimView {
    merchant_id: i64,
    program: ProgramView,
    /// The form's action (a claim link's or a gift link's page).
    action: String,
    signed_in: bool,
    greeting: String,
    csrf: String,
    /// Why the customer cannot claim it now (sold out, paused, …).
    closed: Option<String>,
    error: Option<String>,
    phone_login: bool,
    form_token: String,
    /// A gift from a friend rather than a claim link.
    gift: bool,
    /// A 朋友的券 a friend shared: the sharer's greeting.
    shared_by: Option<String>,
}

async fn claim_view(
    state: &AppState,
    merchant_id: i64,
    program: &CouponProgram,
    action: String,
    session: &Option<(CustomerSession, Customer)>,
) -> ApiResult<ClaimView> {
    let closed = usecases::check_issuable(program, crate::now())
        .err()
        .or_else(|| {
            (program.stock_left() == 0)
                .then_some(kaquan_core::coupon::usage::CouponRefusal::OutOfStock)
        })
        .map(|r| r.message_zh());
    Ok(ClaimView {
        merchant_id,
        program: program_view(state, program).await?,
        action,
        signed_in: session.is_some(),
        greeting: session
            .as_ref()
            .map(|(_, c)| c.greeting())
            .unwrap_or_default(),
        csrf: session
            .as_ref()
            .map(|(s, _)| s.csrf_token.clone())
            .unwrap_or_default(),
        closed,
        error: None,
        phone_login: crate::giftcards::cached_settings(state, merchant_id)
            .await?
            .phone_login,
        form_token: String::new(),
        gift: false,
        shared_by: None,
    })
}

/// Renders the claim (or gift) page; signed out, with the phone form and its token cookie.
fn render_claim(state: &AppState, mut view: ClaimView, status: StatusCode) -> Response {
    let cookie = (!view.signed_in && view.phone_login).then(|| {
        let (token, cookie) =
            crate::auth::form_token_cookie(state, &crate::exchange::centre_path(view.merchant_id));
        view.form_token = token;
        cookie
    });
    let title = view.program.title.clone();
    let mut response = render(state, "coupon_claim.html", &Page::anonymous(&title), view);
    *response.status_mut() = status;
    if let Some(cookie) = cookie {
        response.headers_mut().append(SET_COOKIE, cookie);
    }
    response
}

async fn program_of_link(
    state: &AppState,
    merchant_id: i64,
    token: &str,
) -> ApiResult<CouponProgram> {
    state
        .store
        .find_program_by_claim_token(token)
        .await?
        .filter(|p| {
            p.merchant_id == merchant_id && p.state != kaquan_core::coupon::ProgramState::Draft
        })
        .ok_or(ApiError::NotFound)
}

async fn claim_page(
    State(state): State<AppState>,
    Path((merchant_id, token)): Path<(i64, String)>,
    authed: CustomerAuthed,
) -> PageResult {
    let program = program_of_link(&state, merchant_id, &token).await?;
    let view = link_claim_view(&state, merchant_id, &token, &program, &authed.0).await?;
    Ok(render_claim(&state, view, StatusCode::OK))
}

/// The claim link's page, its form posting back to the link.
async fn link_claim_view(
    state: &AppState,
    merchant_id: i64,
    token: &str,
    program: &CouponProgram,
    session: &Option<(CustomerSession, Customer)>,
) -> ApiResult<ClaimView> {
    let action = format!("/m/{merchant_id}/coupons/{token}");
    claim_view(state, merchant_id, program, action, session).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CsrfForm {
    csrf: String,
}

/// The signed-in customer of a form that changes their coupon, its token checked.
fn form_customer(authed: CustomerAuthed, csrf: &str) -> ApiResult<(CustomerSession, Customer)> {
    let (session, customer) = authed.0.ok_or(ApiError::Unauthenticated)?;
    check_csrf(&session, csrf)?;
    Ok((session, customer))
}

fn check_csrf(session: &CustomerSession, csrf: &str) -> ApiResult<()> {
    if crate::auth::constant_time_eq(csrf.as_bytes(), session.csrf_token.as_bytes()) {
        Ok(())
    } else {
        Err(ApiError::Forbidden("页面已过期，请刷新后重试"))
    }
}

/// One coupon of `program` to the signed-in customer, by a claim link or a
/// friend's share link: the way to it in 我的卡券, or why not.
async fn claim_one(
    state: &AppState,
    program: &CouponProgram,
    source: CouponSource,
    shared_by: Option<i64>,
    customer: &Customer,
) -> ApiResult<Result<Response, kaquan_core::coupon::usage::CouponRefusal>> {
    let called = usecases::issue_coupons(
        state.store.as_ref(),
        &state.master,
        &ApiCall::default(),
        program,
        Recipients {
            source,
            customer_ids: vec![customer.id],
            order: None,
            shared_by,
        },
        &Actor {
            staff_id: None,
            label: format!("customer:{}", customer.id),
        },
        crate::now(),
    )
    .await?;
    Ok(called.result.map(|coupons| {
        Redirect::to(&format!(
            "/m/{}/wallet/{}?claimed=1",
            program.merchant_id,
            coupons.first().map_or(0, |c| c.id)
        ))
        .into_response()
    }))
}

/// 领取: one coupon into 我的卡券, subject to stock and the claim limit.
async fn claim_form(
    State(state): State<AppState>,
    Path((merchant_id, token)): Path<(i64, String)>,
    authed: CustomerAuthed,
    Form(form): Form<CsrfForm>,
) -> PageResult {
    let program = program_of_link(&state, merchant_id, &token).await?;
    let session = authed.0;
    let Some((s, customer)) = &session else {
        return Ok(Redirect::to(&format!("/m/{merchant_id}/coupons/{token}")).into_response());
    };
    check_csrf(s, &form.csrf)?;
    match claim_one(&state, &program, CouponSource::Claim, None, customer).await? {
        Ok(to_wallet) => Ok(to_wallet),
        Err(refusal) => {
            let mut view = link_claim_view(&state, merchant_id, &token, &program, &session).await?;
            view.error = Some(refusal.message_zh());
            Ok(render_claim(
                &state,
                view,
                crate::error::ApiError::CouponRefused(refusal).status(),
            ))
        }
    }
}

/// A coupon in a list or on its page.
#[derive(Serialize)]
struct CouponView {
    id: i64,
    program: ProgramView,
    status: &'static str,
    status_label: &'static str,
    valid_from: String,
    valid_until: String,
    usable: bool,
    gifting: bool,
    can_give: bool,
}

async fn coupon_view(state: &AppState, held: &HeldCoupon, now: i64) -> ApiResult<CouponView> {
    let status = held.coupon.status(now);
    Ok(CouponView {
        id: held.coupon.id,
        program: program_view(state, &held.program).await?,
        status: status.code(),
        status_label: status.label_zh(),
        valid_from: format_date(held.coupon.valid_from),
        valid_until: format_date(held.coupon.valid_until),
        usable: holds_value(status),
        gifting: held.coupon.gifting,
        can_give: held.program.fields.can_give_friend && holds_value(status),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WalletQuery {
    tab: Option<String>,
    page: Option<i64>,
}

#[derive(Serialize)]
struct WalletView {
    merchant_id: i64,
    tab: &'static str,
    tabs: Vec<(&'static str, &'static str)>,
    coupons: Vec<CouponView>,
    total: i64,
    page: i64,
    pages: i64,
    greeting: String,
}

/// Sends a signed-out customer to sign in and come back.
pub(crate) fn sign_in_first(merchant_id: i64, here: &str) -> Response {
    let next: String = form_urlencoded::byte_serialize(here.as_bytes()).collect();
    Redirect::to(&format!("/m/{merchant_id}/exchange?next={next}")).into_response()
}

async fn wallet_page(
    State(state): State<AppState>,
    Path(merchant_id): Path<i64>,
    authed: CustomerAuthed,
    Query(query): Query<WalletQuery>,
) -> PageResult {
    let Some((_, customer)) = authed.0 else {
        return Ok(sign_in_first(
            merchant_id,
            &format!("/m/{merchant_id}/wallet"),
        ));
    };
    let tab = match query.tab.as_deref() {
        None | Some("") => WalletTab::Usable,
        Some(code) => WalletTab::parse(code)
            .ok_or_else(|| ApiError::invalid("tab 应为 usable、used 或 expired"))?,
    };
    let now = crate::now();
    let page = ListPage::new(query.page, Some(20));
    let (held, total) = state
        .store
        .list_customer_coupons(merchant_id, customer.id, Some(tab), now, page)
        .await?;
    let mut coupons = Vec::with_capacity(held.len());
    for h in &held {
        coupons.push(coupon_view(&state, h, now).await?);
    }
    let view = WalletView {
        merchant_id,
        tab: tab.code(),
        tabs: WalletTab::ALL
            .iter()
            .map(|t| (t.code(), t.label_zh()))
            .collect(),
        coupons,
        total,
        page: page.page,
        pages: (total + page.page_size - 1) / page.page_size,
        greeting: customer.greeting(),
    };
    Ok(render(
        &state,
        "wallet.html",
        &Page::anonymous("我的卡券"),
        view,
    ))
}

/// The customer's own coupon, or 404 (never another customer's).
async fn own_coupon(
    state: &AppState,
    merchant_id: i64,
    coupon_id: i64,
    customer: &Customer,
) -> ApiResult<HeldCoupon> {
    state
        .store
        .get_coupon(merchant_id, coupon_id)
        .await?
        .filter(|h| h.coupon.customer_id == customer.id)
        .ok_or(ApiError::NotFound)
}

/// The code a coupon shows now: its own, or its 动态码.
#[derive(Serialize)]
struct CodeDto {
    /// Grouped in fours, as shown under the picture.
    text: String,
    qr_svg: Option<String>,
    barcode_svg: Option<String>,
    /// Seconds until a 动态码 changes (none for a fixed code).
    refresh_in: Option<i64>,
}

fn code_now(state: &AppState, held: &HeldCoupon, now: i64) -> ApiResult<CodeDto> {
    let c = &held.coupon;
    let own = open_coupon_code(&state.master, c.merchant_id, c.key_version, &c.sealed)
        .ok_or_else(|| ApiError::Internal("a coupon's code does not open".into()))?;
    let rotating = held.program.fields.rotating_code;
    let digits = if rotating {
        rotating_code(&digest_keys(&state.master, c.merchant_id), c.id, &own, now)
    } else {
        own
    };
    let code_type = held.program.fields.code_type;
    let qr_svg = code_type
        .shows_qr()
        .then(|| qrcode::QrCode::new(digits.as_bytes()).map(|q| crate::exports::qr_svg(&q)))
        .transpose()
        .map_err(|e| ApiError::Internal(format!("qr: {e}")))?;
    Ok(CodeDto {
        text: if code_type.shows_text() || rotating {
            group_digits(&digits)
        } else {
            String::new()
        },
        qr_svg,
        barcode_svg: code_type.shows_barcode().then(|| barcode_svg(&digits)),
        refresh_in: rotating.then(|| seconds_until_rotation(now)),
    })
}

/// A Code 128 barcode as SVG: set C for an even number of digits (the
/// densest), set B for anything else (a member number with a prefix).
pub fn barcode_svg(digits: &str) -> String {
    let set = if digits.len().is_multiple_of(2) && digits.bytes().all(|b| b.is_ascii_digit()) {
        '\u{0106}'
    } else {
        '\u{0181}'
    };
    let modules = barcoders::sym::code128::Code128::new(format!("{set}{digits}"))
        .map(|b| b.encode())
        .unwrap_or_default();
    let quiet = 10;
    let width = modules.len() + 2 * quiet;
    let mut path = String::new();
    for (x, _) in modules.iter().enumerate().filter(|(_, m)| **m == 1) {
        path.push_str(&format!("M{} 0h1v60h-1z", x + quiet));
    }
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {width} 60\" width=\"100%\" height=\"80\" preserveAspectRatio=\"none\" shape-rendering=\"crispEdges\">\
         <rect width=\"100%\" height=\"100%\" fill=\"#fff\"/><path fill=\"#000\" d=\"{path}\"/></svg>"
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CouponQuery {
    claimed: Option<String>,
}

#[derive(Serialize)]
struct CouponPageView {
    merchant_id: i64,
    coupon: CouponView,
    code: Option<CodeDto>,
    claimed: bool,
    csrf: String,
    gift_link: Option<String>,
    /// 朋友的券: the link friends claim one through.
    share_link: Option<String>,
    error: Option<String>,
}

async fn coupon_page_view(
    state: &AppState,
    merchant_id: i64,
    held: &HeldCoupon,
    session: &CustomerSession,
) -> ApiResult<CouponPageView> {
    let now = crate::now();
    let coupon = coupon_view(state, held, now).await?;
    let shows_code = holds_value(held.coupon.status(now));
    Ok(CouponPageView {
        merchant_id,
        code: if shows_code {
            Some(code_now(state, held, now)?)
        } else {
            None
        },
        coupon,
        claimed: false,
        csrf: session.csrf_token.clone(),
        gift_link: None,
        share_link: if held.program.is_shared() {
            let tag = share_tag(&state.master, merchant_id, held.coupon.id);
            let public_url = state.public_url_for(merchant_id).await?;
            Some(format!(
                "{public_url}/m/{merchant_id}/shared/{}/{tag}",
                held.coupon.id
            ))
        } else {
            None
        },
        error: None,
    })
}

async fn coupon_page(
    State(state): State<AppState>,
    Path((merchant_id, coupon_id)): Path<(i64, i64)>,
    authed: CustomerAuthed,
    Query(query): Query<CouponQuery>,
) -> PageResult {
    let Some((session, customer)) = authed.0 else {
        return Ok(sign_in_first(
            merchant_id,
            &format!("/m/{merchant_id}/wallet/{coupon_id}"),
        ));
    };
    let held = own_coupon(&state, merchant_id, coupon_id, &customer).await?;
    let mut view = coupon_page_view(&state, merchant_id, &held, &session).await?;
    view.claimed = query.claimed.is_some();
    Ok(no_store(render(
        &state,
        "wallet_coupon.html",
        &Page::anonymous(&held.program.fields.title),
        view,
    )))
}

/// A coupon's code is never kept by a cache.
fn no_store(mut response: Response) -> Response {
    response.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    response
}

/// Whether a coupon in this status shows its code (and may be given).
fn holds_value(status: CouponStatus) -> bool {
    matches!(status, CouponStatus::Usable | CouponStatus::NotYetValid)
}

/// The code now, for the page's refresh of a 动态码.
async fn coupon_code(
    State(state): State<AppState>,
    Path((merchant_id, coupon_id)): Path<(i64, i64)>,
    authed: CustomerAuthed,
) -> ApiResult<Response> {
    let (_, customer) = authed.0.ok_or(ApiError::Unauthenticated)?;
    let held = own_coupon(&state, merchant_id, coupon_id, &customer).await?;
    let now = crate::now();
    if !holds_value(held.coupon.status(now)) {
        return Err(ApiError::CouponRefused(
            kaquan_core::coupon::usage::CouponRefusal::GiftUnavailable,
        ));
    }
    Ok(no_store(
        Json(code_now(&state, &held, now)?).into_response(),
    ))
}

/// 转赠: opens a gift link and shows it to copy and send.
async fn gift_form(
    State(state): State<AppState>,
    Path((merchant_id, coupon_id)): Path<(i64, i64)>,
    authed: CustomerAuthed,
    Form(form): Form<CsrfForm>,
) -> PageResult {
    let (session, customer) = form_customer(authed, &form.csrf)?;
    let held = own_coupon(&state, merchant_id, coupon_id, &customer).await?;
    let offered =
        usecases::offer_gift(state.store.as_ref(), &held, customer.id, crate::now()).await?;
    let held = own_coupon(&state, merchant_id, coupon_id, &customer).await?;
    let mut view = coupon_page_view(&state, merchant_id, &held, &session).await?;
    match offered {
        Ok(token) => {
            view.gift_link = Some(format!(
                "{}/m/{merchant_id}/gifts/{token}",
                state.public_url_for(merchant_id).await?
            ));
        }
        Err(refusal) => view.error = Some(refusal.message_zh()),
    }
    Ok(render(
        &state,
        "wallet_coupon.html",
        &Page::anonymous(&held.program.fields.title),
        view,
    ))
}

async fn cancel_gift_form(
    State(state): State<AppState>,
    Path((merchant_id, coupon_id)): Path<(i64, i64)>,
    authed: CustomerAuthed,
    Form(form): Form<CsrfForm>,
) -> PageResult {
    let (_, customer) = form_customer(authed, &form.csrf)?;
    state
        .store
        .cancel_coupon_gift(merchant_id, coupon_id, customer.id)
        .await?;
    Ok(Redirect::to(&format!("/m/{merchant_id}/wallet/{coupon_id}")).into_response())
}

async fn gift_page(
    State(state): State<AppState>,
    Path((merchant_id, token)): Path<(i64, String)>,
    authed: CustomerAuthed,
) -> PageResult {
    let held = state
        .store
        .find_coupon_gift(&token_hash_hex(&token))
        .await?
        .filter(|h| h.coupon.merchant_id == merchant_id)
        .ok_or(ApiError::CouponRefused(
            kaquan_core::coupon::usage::CouponRefusal::GiftUnavailable,
        ))?;
    let session = authed.0;
    let mut view = claim_view(
        &state,
        merchant_id,
        &held.program,
        format!("/m/{merchant_id}/gifts/{token}"),
        &session,
    )
    .await?;
    view.gift = true;
    view.closed = None;
    Ok(render_claim(&state, view, StatusCode::OK))
}

async fn accept_gift_form(
    State(state): State<AppState>,
    Path((merchant_id, token)): Path<(i64, String)>,
    authed: CustomerAuthed,
    Form(form): Form<CsrfForm>,
) -> PageResult {
    let Some((session, customer)) = authed.0 else {
        return Ok(Redirect::to(&format!("/m/{merchant_id}/gifts/{token}")).into_response());
    };
    check_csrf(&session, &form.csrf)?;
    match state
        .store
        .accept_coupon_gift(
            merchant_id,
            &token_hash_hex(&token),
            customer.id,
            crate::now(),
        )
        .await?
    {
        Ok(coupon) => Ok(
            Redirect::to(&format!("/m/{merchant_id}/wallet/{}?claimed=1", coupon.id))
                .into_response(),
        ),
        Err(refusal) => Err(ApiError::CouponRefused(refusal).into()),
    }
}

/// The sharer's coupon a share link names, its tag checked; the program as
/// it is now comes with it.
async fn shared_coupon(
    state: &AppState,
    merchant_id: i64,
    coupon_id: i64,
    tag: &str,
) -> ApiResult<HeldCoupon> {
    if !share_tag_matches(&state.master, merchant_id, coupon_id, tag) {
        return Err(ApiError::NotFound);
    }
    state
        .store
        .get_coupon(merchant_id, coupon_id)
        .await?
        .filter(|held| held.program.is_shared())
        .ok_or(ApiError::NotFound)
}

async fn shared_view(
    state: &AppState,
    merchant_id: i64,
    held: &HeldCoupon,
    tag: &str,
    session: &Option<(CustomerSession, Customer)>,
) -> ApiResult<ClaimView> {
    let action = format!("/m/{merchant_id}/shared/{}/{tag}", held.coupon.id);
    let mut view = claim_view(state, merchant_id, &held.program, action, session).await?;
    let sharer = state
        .store
        .get_customer(merchant_id, held.coupon.customer_id)
        .await?;
    view.shared_by = Some(sharer.greeting());
    Ok(view)
}

/// 朋友的券: what a friend sees opening a share link, the same coupon to
/// claim from the program's stock.
async fn shared_page(
    State(state): State<AppState>,
    Path((merchant_id, coupon_id, tag)): Path<(i64, i64, String)>,
    authed: CustomerAuthed,
) -> PageResult {
    let held = shared_coupon(&state, merchant_id, coupon_id, &tag).await?;
    let view = shared_view(&state, merchant_id, &held, &tag, &authed.0).await?;
    Ok(render_claim(&state, view, StatusCode::OK))
}

/// A friend claims one through the share link, within 每人可领.
async fn shared_claim_form(
    State(state): State<AppState>,
    Path((merchant_id, coupon_id, tag)): Path<(i64, i64, String)>,
    authed: CustomerAuthed,
    Form(form): Form<CsrfForm>,
) -> PageResult {
    let held = shared_coupon(&state, merchant_id, coupon_id, &tag).await?;
    let session = authed.0;
    let Some((s, customer)) = &session else {
        return Ok(
            Redirect::to(&format!("/m/{merchant_id}/shared/{coupon_id}/{tag}")).into_response(),
        );
    };
    check_csrf(s, &form.csrf)?;
    let sharer = Some(held.coupon.customer_id);
    match claim_one(&state, &held.program, CouponSource::Share, sharer, customer).await? {
        Ok(to_wallet) => Ok(to_wallet),
        Err(refusal) => {
            let mut view = shared_view(&state, merchant_id, &held, &tag, &session).await?;
            view.error = Some(refusal.message_zh());
            Ok(render_claim(
                &state,
                view,
                ApiError::CouponRefused(refusal).status(),
            ))
        }
    }
}
