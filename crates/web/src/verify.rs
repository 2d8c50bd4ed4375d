//! 核销台 (`/verify`): one page, phone-sized and on the desktop, for every
//! instrument staff verify. A coupon's code comes from the phone's camera
//! (the browser's BarcodeDetector, or kaquan's own decoder at
//! `/verify/scan` when it has none), a scanner gun (keys ending in Enter) or
//! the keyboard; step 1 shows what the code is and whether it may be used
//! here now, with the exact reason when not; step 2 确认核销 records it, for
//! good. A pickup card (number + password) goes to 到店提货 from here.

use crate::auth::Authed;
use crate::coupon_records::{
    check_view, holder_label, staff_look_up, staff_request, staff_verify, CouponCheckDto,
    CouponVerifyRequest,
};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Form, Json, Query};
use crate::locations::LocationDto;
use crate::pages::{render, Page, PageResult};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use kaquan_core::auth::Permission;
use kaquan_core::coupon::usage::VerifyChannel;
use kaquan_core::money::{format_yuan, parse_yuan};
use serde::{Deserialize, Serialize};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/verify", get(verify_page).post(check_form))
        .route("/verify/confirm", post(confirm_form))
        .route("/verify/scan", post(scan_frame))
}

#[derive(Serialize, Default)]
struct VerifyView {
    locations: Vec<LocationDto>,
    location_id: Option<i64>,
    code: String,
    order_amount: String,
    channel: &'static str,
    /// Step 1's answer.
    checked: Option<CouponCheckDto>,
    /// Step 2's answer.
    done: Option<DoneView>,
    error: Option<String>,
    can_pickup: bool,
    /// Step 1's answer for an e-card's own 核销码.
    ecard: Option<EcardCheckView>,
    /// Step 2's answer for it.
    ecard_done: Option<String>,
}

/// A delivered e-card named by its 16-digit 核销码.
#[derive(Serialize)]
struct EcardCheckView {
    product_name: String,
    order: String,
    tail: String,
    status_label: &'static str,
    valid_until: String,
    usable: bool,
}

/// Whether a typed code is an e-card's own 核销码 (16 digits; coupon
/// codes have 20).
fn own_ecard_code(code: &str) -> Option<String> {
    let digits: String = code
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect();
    (digits.len() == kaquan_core::ecard::usecases::OWN_CODE_DIGITS
        && digits.bytes().all(|b| b.is_ascii_digit()))
    .then_some(digits)
}

async fn ecard_target(
    state: &AppState,
    authed: &Authed,
    code: &str,
) -> ApiResult<kaquan_core::ecard::VerifyTarget> {
    let m = authed.merchant_id();
    let key_version = state.store.get_merchant(m).await?.key_version;
    let keys = state.master.merchant_keys(m, key_version);
    Ok(kaquan_core::ecard::VerifyTarget::CodeDigest(
        kaquan_core::ecard::usecases::own_code_digest(&keys, code),
    ))
}

/// Step 1 for an e-card: what the code names and whether it may be used.
async fn check_ecard(state: &AppState, authed: &Authed, code: &str) -> ApiResult<EcardCheckView> {
    let m = authed.merchant_id();
    let target = ecard_target(state, authed, code).await?;
    let (order_ref, product_id, card) =
        state
            .store
            .find_ecard_card(m, &target)
            .await?
            .ok_or(ApiError::EcardRefused(
                kaquan_core::ecard::EcardRefusal::UnknownCard,
            ))?;
    let order = state.store.get_ecard_order(m, order_ref).await?;
    let product = state.store.get_ecard_product(m, product_id).await?;
    let status = card.status(crate::now());
    Ok(EcardCheckView {
        product_name: product.fields.name,
        order: format!("{} {}", order.marketplace.label_zh(), order.order_id),
        tail: card.tail.clone(),
        status_label: status.label_zh(),
        valid_until: kaquan_core::clock::format_datetime(card.facts.valid_until),
        usable: status == kaquan_core::ecard::DeliveredStatus::Unverified,
    })
}

#[derive(Serialize)]
struct DoneView {
    title: String,
    discount_yuan: String,
    location_name: Option<String>,
    verified_at: String,
    /// 核销后返券: the title of the coupon the customer was given.
    given_title: Option<String>,
}

/// The locations this staff member verifies at: their bound ones, else
/// every open one.
async fn my_locations(state: &AppState, authed: &Authed) -> ApiResult<Vec<LocationDto>> {
    let m = authed.merchant_id();
    let bound = state.store.staff_locations(m, authed.staff.id).await?;
    Ok(state
        .store
        .list_locations(m)
        .await?
        .iter()
        .filter(|l| l.fields.enabled && (bound.is_empty() || bound.contains(&l.id)))
        .map(LocationDto::new)
        .collect())
}

async fn view(
    state: &AppState,
    authed: &Authed,
    location_id: Option<i64>,
) -> ApiResult<VerifyView> {
    authed.require(Permission::CouponsVerify)?;
    let locations = my_locations(state, authed).await?;
    let location_id = location_id
        .filter(|id| locations.iter().any(|l| l.id == *id))
        .or_else(|| (locations.len() == 1).then(|| locations[0].id));
    Ok(VerifyView {
        locations,
        location_id,
        channel: "typed",
        can_pickup: authed.can(Permission::PickupAssist),
        ..Default::default()
    })
}

fn show(state: &AppState, authed: &Authed, view: VerifyView, status: StatusCode) -> PageResult {
    let mut response = render(state, "verify.html", &Page::new("核销", authed), view);
    *response.status_mut() = status;
    Ok(response)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifyQuery {
    location_id: Option<i64>,
}

async fn verify_page(
    State(state): State<AppState>,
    authed: Authed,
    Query(query): Query<VerifyQuery>,
) -> PageResult {
    let view = view(&state, &authed, query.location_id).await?;
    show(&state, &authed, view, StatusCode::OK)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CodeForm {
    csrf: String,
    code: String,
    #[serde(default)]
    location_id: String,
    #[serde(default)]
    order_amount: String,
    /// `scan` when the camera or a scanner gun filled the code.
    #[serde(default)]
    channel: String,
}

impl CodeForm {
    fn location_id(&self) -> ApiResult<Option<i64>> {
        match self.location_id.trim() {
            "" => Ok(None),
            id => id
                .parse()
                .map(Some)
                .map_err(|_| ApiError::invalid("请选择门店")),
        }
    }
    fn order_amount_fen(&self) -> ApiResult<Option<i64>> {
        match self.order_amount.trim() {
            "" => Ok(None),
            text => parse_yuan(text)
                .map(Some)
                .ok_or_else(|| ApiError::invalid("订单金额应为金额，如 120 或 99.50")),
        }
    }
    fn channel(&self) -> VerifyChannel {
        if self.channel == "scan" {
            VerifyChannel::Scan
        } else {
            VerifyChannel::Typed
        }
    }
}

/// Shows `view` with the refusal of `error` above the form (its status kept).
fn refused(state: &AppState, authed: &Authed, mut view: VerifyView, error: ApiError) -> PageResult {
    if let ApiError::Internal(_) = error {
        return Err(error.into());
    }
    view.error = Some(error.public_message());
    show(state, authed, view, error.status())
}

/// Step 1: what the code is, and whether it may be used here now.
async fn check_form(
    State(state): State<AppState>,
    authed: Authed,
    Form(form): Form<CodeForm>,
) -> PageResult {
    authed.check_form_csrf(&form.csrf)?;
    let location_id = form.location_id()?;
    let mut page = view(&state, &authed, location_id).await?;
    page.code = form.code.trim().to_owned();
    page.order_amount = form.order_amount.trim().to_owned();
    page.channel = form.channel().code();
    if let Some(code) = own_ecard_code(&form.code) {
        return match check_ecard(&state, &authed, &code).await {
            Ok(view) => {
                page.ecard = Some(view);
                show(&state, &authed, page, StatusCode::OK)
            }
            Err(error) => refused(&state, &authed, page, error),
        };
    }
    let checked = async {
        let request = staff_request(
            &state,
            &authed,
            location_id,
            form.order_amount_fen()?,
            form.channel(),
            String::new(),
        )
        .await?;
        let held = staff_look_up(&state, &authed, &form.code).await?;
        let label = holder_label(&state, &held).await?;
        Ok::<_, ApiError>(check_view(
            &held,
            &request,
            authed.can(Permission::PersonalDataView),
            &label,
        ))
    }
    .await;
    match checked {
        Ok(checked) => {
            page.checked = Some(checked);
            show(&state, &authed, page, StatusCode::OK)
        }
        Err(error) => refused(&state, &authed, page, error),
    }
}

/// Step 2: 确认核销, for good.
async fn confirm_form(
    State(state): State<AppState>,
    authed: Authed,
    Form(form): Form<CodeForm>,
) -> PageResult {
    authed.check_form_csrf(&form.csrf)?;
    let location_id = form.location_id()?;
    let mut page = view(&state, &authed, location_id).await?;
    if let Some(code) = own_ecard_code(&form.code) {
        let verify = kaquan_core::ecard::VerifyEcard {
            merchant_id: authed.merchant_id(),
            target: ecard_target(&state, &authed, &code).await?,
            way: kaquan_core::ecard::VerificationWay::OwnCode,
            note: String::new(),
            proof: None,
            actor: authed.actor(),
            now: crate::now(),
        };
        return match state.store.verify_ecard(&verify).await? {
            Ok(done) if !done.repeated => {
                page.ecard_done = Some(kaquan_core::clock::format_datetime(done.verified_at));
                show(&state, &authed, page, StatusCode::OK)
            }
            Ok(_) => {
                let error = ApiError::Conflict("这张卡已核销过，不能重复核销".into());
                refused(&state, &authed, page, error)
            }
            Err(refusal) => refused(&state, &authed, page, ApiError::EcardRefused(refusal)),
        };
    }
    let request = CouponVerifyRequest {
        code: form.code.clone(),
        location_id,
        order_amount_fen: form.order_amount_fen()?,
        order_ref: String::new(),
        channel: Some(form.channel().code().to_owned()),
    };
    match staff_verify(&state, &authed, &request).await {
        Ok(done) => {
            let given_title = match done.given_coupon_id {
                Some(id) => state
                    .store
                    .get_coupon(authed.merchant_id(), id)
                    .await?
                    .map(|held| held.program.fields.title),
                None => None,
            };
            page.done = Some(DoneView {
                title: done.program_title.clone(),
                discount_yuan: format_yuan(done.discount_fen),
                location_name: done.location_name.clone(),
                verified_at: kaquan_core::clock::format_datetime(done.created_at),
                given_title,
            });
            show(&state, &authed, page, StatusCode::OK)
        }
        Err(error) => {
            page.code = form.code.trim().to_owned();
            page.order_amount = form.order_amount.trim().to_owned();
            refused(&state, &authed, page, error)
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScanQuery {
    width: usize,
    height: usize,
}

#[derive(Serialize)]
struct ScanDto {
    /// The QR code's text, or null when the frame held none.
    code: Option<String>,
}

/// The largest camera frame the decoder takes (its greyscale bytes).
const SCAN_FRAME_PIXELS_MAX: usize = 1280 * 1280;

/// kaquan's own QR decoder for phones whose browser has no
/// BarcodeDetector: the page posts a camera frame's greyscale bytes.
async fn scan_frame(
    State(_state): State<AppState>,
    authed: Authed,
    headers: HeaderMap,
    Query(query): Query<ScanQuery>,
    body: Bytes,
) -> ApiResult<Json<ScanDto>> {
    authed.require(Permission::CouponsVerify)?;
    let sent = headers
        .get(crate::auth::CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    authed.check_form_csrf(sent)?;
    let (width, height) = (query.width, query.height);
    if width == 0
        || height == 0
        || width * height > SCAN_FRAME_PIXELS_MAX
        || body.len() != width * height
    {
        return Err(ApiError::invalid("图像尺寸不对"));
    }
    let code = crate::off_runtime(move || {
        let mut image =
            rqrr::PreparedImage::prepare_from_greyscale(width, height, |x, y| body[y * width + x]);
        image
            .detect_grids()
            .iter()
            .find_map(|grid| grid.decode().ok().map(|(_, text)| text))
    })
    .await?;
    Ok(Json(ScanDto { code }))
}
