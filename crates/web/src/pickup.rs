//! 提货: the customer's pickup pages (H5, no account: card number +
//! password), the order lookup, and staff 到店提货 / 电话提货 in the console
//! and the API. All of them go through `kaquan_core::redeem`.

use crate::auth::Authed;
use crate::client_address::ClientAddress;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Form, Json, Path, Query};
use crate::goods::image_url;
use crate::pages::{render, Page, PageResult};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use kaquan_core::audit::Actor;
use kaquan_core::auth::Permission;
use kaquan_core::clock::{format_date, format_datetime};
use kaquan_core::money::format_yuan;
use kaquan_core::pickup::order::PickupOrder;
use kaquan_core::pickup::redeem::{
    self as redeem, CheckedCard, PickupRefusal, PickupRequest, Reason, RedeemError, Redeemer,
    Requester,
};
use kaquan_core::pickup::{Channel, Consignee, PickupSettings};
use serde::{Deserialize, Serialize};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/m/{merchant_id}/redeem", get(customer_page))
        .route("/m/{merchant_id}/redeem/check", post(customer_check))
        .route("/m/{merchant_id}/redeem/confirm", post(customer_confirm))
        .route(
            "/m/{merchant_id}/orders",
            get(lookup_page).post(lookup_form),
        )
        .route("/m/{merchant_id}/logo", get(serve_logo))
        .route("/m/divisions.json", get(serve_divisions))
        .route("/pickup/{channel}", get(staff_page).post(staff_form))
        .route("/api/v1/pickups/check", post(check_pickup_card))
        .route("/api/v1/pickups", post(create_pickup))
}

/// The one message for every wrong card, password or state.
pub const REFUSED_MESSAGE: &str = "卡号或密码错误，或该卡暂不能提货";

impl From<RedeemError> for ApiError {
    fn from(error: RedeemError) -> Self {
        match error {
            RedeemError::Refused(_) => ApiError::invalid(REFUSED_MESSAGE),
            RedeemError::Locked {
                retry_after_seconds,
            } => ApiError::TooManyAttempts {
                retry_after_seconds,
            },
            RedeemError::Closed => ApiError::Conflict("暂停提货".into()),
            RedeemError::GoodsUnavailable => {
                ApiError::invalid("所选商品不能用这张卡提取，请重新选择")
            }
            RedeemError::Invalid(errors) => ApiError::Invalid(errors.join("；"), errors),
            RedeemError::Store(cause) => ApiError::Internal(cause),
        }
    }
}

fn customer_requester(address: ClientAddress) -> Requester {
    Requester {
        channel: Channel::Web,
        client_key: address.key(),
        actor: Actor {
            staff_id: None,
            label: "customer".into(),
        },
    }
}

fn staff_requester(authed: &Authed, channel: Channel) -> Requester {
    Requester {
        channel,
        client_key: format!("staff-{}", authed.staff.id),
        actor: authed.actor(),
    }
}

/// 提货 through core's one path, counted by outcome for `/metrics`.
async fn redeem_counted(
    state: &AppState,
    r: &Redeemer<'_>,
    settings: &kaquan_core::pickup::PickupSettings,
    request: &PickupRequest,
    requester: &kaquan_core::pickup::redeem::Requester,
) -> Result<kaquan_core::pickup::order::PickupOrder, RedeemError> {
    let result = redeem::redeem_pickup(r, settings, request, requester).await;
    let outcome = result.as_ref().map_or_else(RedeemError::code, |_| "ok");
    state.metrics.count_operation("pickup", outcome);
    result
}

fn redeemer(state: &AppState, merchant_id: i64) -> Redeemer<'_> {
    Redeemer {
        store: state.store.as_ref(),
        master: &state.master,
        merchant_id,
        now: crate::now(),
    }
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": 3, "name": "五常大米礼盒 5kg", "description": "当季新米", "image_urls": ["/media/goods/3/1.jpg"]}))]
pub struct GoodsChoiceDto {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub image_urls: Vec<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"number": "880012345678", "face_value_yuan": "299.00", "valid_until": "2026-12-31", "goods": [{"id": 3, "name": "五常大米礼盒 5kg", "description": "当季新米", "image_urls": ["/media/goods/3/1.jpg"]}]}))]
pub struct CheckedCardDto {
    pub number: String,
    pub face_value_yuan: Option<String>,
    pub valid_until: Option<String>,
    pub goods: Vec<GoodsChoiceDto>,
}

impl CheckedCardDto {
    fn new(checked: &CheckedCard) -> Self {
        Self {
            number: checked.card.number.clone(),
            face_value_yuan: checked.card.face_value_fen.map(format_yuan),
            valid_until: checked.card.valid_until.map(format_date),
            goods: checked
                .goods
                .iter()
                .map(|g| GoodsChoiceDto {
                    id: g.id,
                    name: g.name.clone(),
                    description: g.description.clone(),
                    image_urls: g
                        .image_ids
                        .iter()
                        .map(|id| image_url(g.merchant_id, *id))
                        .collect(),
                })
                .collect(),
        }
    }
}

/// An order as the customer or staff see it after a pickup.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"order_id": 88, "goods_name": "五常大米礼盒 5kg", "channel": "phone", "status": "pending", "status_label": "待发货", "appointment_date": "2026-12-08", "carrier": null, "tracking_number": null, "created_at": "2026-11-30 14:05:00"}))]
pub struct PickupOrderDto {
    pub order_id: i64,
    pub status: &'static str,
    pub status_label: &'static str,
    pub goods_name: String,
    pub channel: &'static str,
    pub appointment_date: Option<String>,
    pub carrier: Option<String>,
    pub tracking_number: Option<String>,
    pub created_at: String,
}

impl From<&PickupOrder> for PickupOrderDto {
    fn from(o: &PickupOrder) -> Self {
        Self {
            order_id: o.id,
            status: o.status.code(),
            status_label: o.status.label_zh(),
            goods_name: o.goods_name.clone(),
            channel: o.channel.code(),
            appointment_date: o.appointment_date.clone(),
            carrier: o.carrier.clone(),
            tracking_number: o.tracking_number.clone(),
            created_at: format_datetime(o.created_at),
        }
    }
}

/// The fields of a pickup, as forms and JSON carry them.
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "channel": "phone", "number": "880012345678", "password": "4829371650",
    "goods_id": 3, "consignee": "张三", "phone": "13800000000",
    "province": "浙江省", "city": "杭州市", "district": "西湖区",
    "address": "文三路 100 号 2 幢 301", "appointment_date": "2026-12-08"
}))]
pub struct PickupForm {
    /// The staff API's channel (`POST /api/v1/pickups`): `store` (到店提货,
    /// handed over now), `phone` (电话提货) or `api` (shipped later). Forms never send it.
    #[serde(default)]
    #[schema(pattern = "^(store|phone|api)$")]
    pub channel: String,
    /// The form's CSRF token; the API ignores it (it reads `X-CSRF-Token`).
    #[serde(default)]
    #[schema(max_length = 128)]
    pub csrf: String,
    /// 卡号.
    #[serde(default)]
    #[schema(max_length = 32)]
    pub number: String,
    /// 密码.
    #[serde(default)]
    #[schema(max_length = 32)]
    pub password: String,
    /// The ONE goods chosen among the card's goods.
    pub goods_id: Option<i64>,
    /// 收货人, 1–32 characters; not needed for `store`.
    #[serde(default)]
    #[schema(max_length = 32)]
    pub consignee: String,
    /// 手机号: a mainland mobile, 11 digits starting 1 then 3–9 (spaces,
    /// `-` and a +86 prefix are dropped).
    #[serde(default)]
    #[schema(max_length = 20)]
    pub phone: String,
    /// 省, 1–32 characters.
    #[serde(default)]
    #[schema(max_length = 32)]
    pub province: String,
    /// 市, 1–32 characters.
    #[serde(default)]
    #[schema(max_length = 32)]
    pub city: String,
    /// 区/县, 1–32 characters.
    #[serde(default)]
    #[schema(max_length = 32)]
    pub district: String,
    /// 详细地址, 4–200 characters.
    #[serde(default)]
    #[schema(max_length = 200)]
    pub address: String,
    /// 预约日期 `YYYY-MM-DD`, as 提货设置's appointment mode allows; not needed for `store`.
    #[serde(default)]
    #[schema(pattern = "^([0-9]{4}-[0-9]{2}-[0-9]{2})?$")]
    pub appointment_date: String,
}

impl PickupForm {
    fn into_request(self, channel: Channel) -> ApiResult<PickupRequest> {
        let goods_id = self
            .goods_id
            .ok_or_else(|| ApiError::invalid("请选择要提的商品"))?;
        let consignee = if channel == Channel::AtLocation {
            None
        } else {
            Some(
                Consignee::new(
                    &self.consignee,
                    &self.phone,
                    &self.province,
                    &self.city,
                    &self.district,
                    &self.address,
                )
                .map_err(|errors| ApiError::Invalid(errors.join("；"), errors))?,
            )
        };
        Ok(PickupRequest {
            number: self.number,
            password: self.password,
            goods_id,
            consignee,
            appointment_date: Some(self.appointment_date),
        })
    }
}

// ---- customer pages ---------------------------------------------------------

#[derive(Serialize)]
struct CustomerView {
    merchant_id: i64,
    /// The logo's URL (with a version so browsers refetch after a change).
    logo_url: Option<String>,
    title: String,
    notice: String,
    closed_message: Option<String>,
    number: String,
    password: String,
    error: Option<String>,
    card: Option<CheckedCardDto>,
    asks_for_date: bool,
    date: DatePicker,
    form: PickupFormView,
    /// Every batch's passwords are digits: phones offer the number pad.
    digit_passwords: bool,
}

/// The appointment date picker as the mode allows it: its bounds, the
/// blocked days, weekdays only, and the rule in words.
#[derive(Serialize, Default)]
struct DatePicker {
    min: String,
    max: Option<String>,
    blocked: String,
    weekdays_only: bool,
    rule: String,
}

impl DatePicker {
    fn of(settings: &PickupSettings) -> Self {
        let today = kaquan_core::clock::parse_date(&format_date(crate::now()))
            .expect("a formatted date parses");
        let mode = &settings.appointment;
        let (min, max) = mode.date_bounds(today);
        Self {
            min: min.to_string(),
            max: max.map(|d| d.to_string()),
            blocked: kaquan_core::pickup::format_blocked_dates(&settings.blocked_dates),
            weekdays_only: *mode == kaquan_core::pickup::AppointmentMode::WeekdaysOnly,
            rule: mode.rule_zh(today, &settings.blocked_dates),
        }
    }
}

/// What the customer typed, shown again after an error.
#[derive(Serialize, Default)]
struct PickupFormView {
    consignee: String,
    phone: String,
    province: String,
    city: String,
    district: String,
    address: String,
    appointment_date: String,
    goods_id: Option<i64>,
}

impl From<&PickupForm> for PickupFormView {
    fn from(f: &PickupForm) -> Self {
        Self {
            consignee: f.consignee.clone(),
            phone: f.phone.clone(),
            province: f.province.clone(),
            city: f.city.clone(),
            district: f.district.clone(),
            address: f.address.clone(),
            appointment_date: f.appointment_date.clone(),
            goods_id: f.goods_id,
        }
    }
}

/// The shop's 提货设置 (404 when it is not there), as this node found them lately.
async fn settings_of(state: &AppState, merchant_id: i64) -> ApiResult<PickupSettings> {
    if let Some(settings) = state.pickup_settings.get(&merchant_id) {
        return Ok(settings);
    }
    state.store.get_merchant(merchant_id).await?;
    let settings = state.store.get_pickup_settings(merchant_id).await?;
    state.pickup_settings.put(merchant_id, settings.clone());
    Ok(settings)
}

fn customer_view(merchant_id: i64, settings: &PickupSettings, number: &str) -> CustomerView {
    CustomerView {
        merchant_id,
        logo_url: None,
        title: settings.title.clone(),
        notice: settings.notice.clone(),
        closed_message: (!settings.enabled).then(|| settings.closed_message.clone()),
        number: number.to_owned(),
        password: String::new(),
        error: None,
        card: None,
        asks_for_date: settings.appointment.asks_for_date(),
        date: DatePicker::of(settings),
        form: PickupFormView::default(),
        digit_passwords: false,
    }
}

/// The 省/市/区县 table the address picker offers (`assets/DIVISIONS.md`),
/// compiled into the binary: no CDN.
const DIVISIONS: &str = include_str!("../assets/divisions.json");

async fn serve_divisions() -> Response {
    (
        [
            (
                axum::http::header::CONTENT_TYPE,
                "application/json; charset=utf-8",
            ),
            (axum::http::header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        DIVISIONS,
    )
        .into_response()
}

async fn serve_logo(
    State(state): State<AppState>,
    Path(merchant_id): Path<i64>,
) -> ApiResult<Response> {
    let (content_type, bytes) = state
        .store
        .get_logo(merchant_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(crate::images::image_response(content_type, bytes))
}

async fn customer_render(
    state: &AppState,
    mut view: CustomerView,
    status: StatusCode,
) -> ApiResult<Response> {
    view.logo_url = state
        .store
        .logo_updated_at(view.merchant_id)
        .await?
        .map(|v| format!("/m/{}/logo?v={v}", view.merchant_id));
    let page = Page::anonymous(&view.title);
    let mut response = render(state, "redeem.html", &page, view);
    *response.status_mut() = status;
    Ok(response)
}

/// Lenient on purpose: a customer's landing page, opened from printed QR
/// codes, WeChat shares and the mall, which append their own parameters
/// (`from`, `isappinstalled`, `utm_*`); it changes nothing, so an unknown
/// parameter is ignored rather than refused.
#[derive(Deserialize)]
struct NumberQuery {
    number: Option<String>,
}

async fn customer_page(
    State(state): State<AppState>,
    Path(merchant_id): Path<i64>,
    Query(query): Query<NumberQuery>,
) -> PageResult {
    let settings = settings_of(&state, merchant_id).await?;
    let mut view = customer_view(
        merchant_id,
        &settings,
        query.number.as_deref().unwrap_or(""),
    );
    view.digit_passwords = digit_passwords(&state, merchant_id).await?;
    Ok(customer_render(&state, view, StatusCode::OK).await?)
}

/// Whether the shop's newest batches all have digit passwords, so a phone
/// offers its number pad (cached a minute: the landing page is every scan).
async fn digit_passwords(state: &AppState, merchant_id: i64) -> ApiResult<bool> {
    if let Some(digits) = state.digit_passwords.get(&merchant_id) {
        return Ok(digits);
    }
    let newest = kaquan_core::store::Page::new(Some(1), Some(50));
    let (batches, _) = state.store.list_batches(merchant_id, newest).await?;
    let digits = !batches.is_empty()
        && batches
            .iter()
            .all(|b| b.password_charset == kaquan_core::batch::PasswordCharset::Digits);
    state.digit_passwords.put(merchant_id, digits);
    Ok(digits)
}

async fn customer_check(
    State(state): State<AppState>,
    Path(merchant_id): Path<i64>,
    address: ClientAddress,
    Form(form): Form<PickupForm>,
) -> PageResult {
    let settings = settings_of(&state, merchant_id).await?;
    let mut view = customer_view(merchant_id, &settings, &form.number);
    if !settings.enabled {
        return Ok(customer_render(&state, view, StatusCode::OK).await?);
    }
    let r = redeemer(&state, merchant_id);
    match redeem::check_card(
        &r,
        &settings,
        &form.number,
        &form.password,
        &customer_requester(address),
        false,
    )
    .await
    {
        Ok(checked) => {
            view.password = form.password;
            view.card = Some(CheckedCardDto::new(&checked));
            Ok(customer_render(&state, view, StatusCode::OK).await?)
        }
        Err(error) => {
            if let Some(page) =
                used_card_order(&state, merchant_id, &settings, &form.number, &error).await?
            {
                return Ok(page);
            }
            let error = ApiError::from(error);
            view.error = Some(error.public_message());
            Ok(customer_render(&state, view, error.status()).await?)
        }
    }
}

/// A right password on a card already used: instead of the one answer for
/// every wrong card, that card's order (masked, as the order lookup shows
/// it). Nothing else a customer is told depends on why a card was refused.
async fn used_card_order(
    state: &AppState,
    merchant_id: i64,
    settings: &PickupSettings,
    number: &str,
    error: &RedeemError,
) -> ApiResult<Option<Response>> {
    let RedeemError::Refused(PickupRefusal {
        reason: Reason::Used,
        card_id: Some(card_id),
    }) = error
    else {
        return Ok(None);
    };
    let order = state
        .store
        .latest_order_of_card(merchant_id, *card_id)
        .await?;
    let view = LookupView {
        merchant_id,
        title: settings.title.clone(),
        number: number.trim().to_ascii_uppercase(),
        error: None,
        order: order.as_ref().map(PickupOrderDto::from),
        searched: true,
        used: true,
    };
    // 409: this request made no order, the card's earlier one is shown.
    let mut page = render(
        state,
        "order_lookup.html",
        &Page::anonymous(&settings.title),
        view,
    );
    *page.status_mut() = StatusCode::CONFLICT;
    Ok(Some(page))
}

async fn customer_confirm(
    State(state): State<AppState>,
    Path(merchant_id): Path<i64>,
    address: ClientAddress,
    Form(form): Form<PickupForm>,
) -> PageResult {
    let settings = settings_of(&state, merchant_id).await?;
    let mut view = customer_view(merchant_id, &settings, &form.number);
    view.form = PickupFormView::from(&form);
    let requester = customer_requester(address);
    let r = redeemer(&state, merchant_id);
    let (number, password) = (form.number.clone(), form.password.clone());
    let result = match form.into_request(Channel::Web) {
        Ok(request) => match redeem_counted(&state, &r, &settings, &request, &requester).await {
            Ok(order) => Ok(order),
            Err(error) => {
                if let Some(page) =
                    used_card_order(&state, merchant_id, &settings, &number, &error).await?
                {
                    return Ok(page);
                }
                Err(ApiError::from(error))
            }
        },
        Err(error) => Err(error),
    };
    match result {
        Ok(order) => {
            if let Some(url) = &settings.redirect_url {
                return Ok(Redirect::to(url).into_response());
            }
            let page = Page::anonymous(&settings.title);
            Ok(render(
                &state,
                "redeem_done.html",
                &page,
                SuccessView {
                    merchant_id,
                    title: settings.title,
                    consignee: format!(
                        "{} {}",
                        order.consignee.name,
                        kaquan_core::pickup::mask_phone(&order.consignee.phone)
                    ),
                    address: format!(
                        "{}{}{}{}",
                        order.consignee.province,
                        order.consignee.city,
                        order.consignee.district,
                        order.consignee.address
                    ),
                    number: order.card_number.clone(),
                    order: PickupOrderDto::from(&order),
                },
            ))
        }
        Err(error) => {
            view.error = Some(error.public_message());
            // Show the goods again unless the card itself was refused.
            if !matches!(error, ApiError::TooManyAttempts { .. })
                && error.public_message() != REFUSED_MESSAGE
            {
                if let Ok(checked) =
                    redeem::check_card(&r, &settings, &number, &password, &requester, false).await
                {
                    view.password = password;
                    view.card = Some(CheckedCardDto::new(&checked));
                }
            }
            Ok(customer_render(&state, view, error.status()).await?)
        }
    }
}

#[derive(Serialize)]
struct SuccessView {
    merchant_id: i64,
    title: String,
    order: PickupOrderDto,
    /// The address the customer typed, to check.
    consignee: String,
    address: String,
    number: String,
}

#[derive(Serialize)]
struct LookupView {
    merchant_id: i64,
    title: String,
    number: String,
    error: Option<String>,
    order: Option<PickupOrderDto>,
    searched: bool,
    /// Shown because the card the customer typed was already used.
    used: bool,
}

async fn lookup_page(
    State(state): State<AppState>,
    Path(merchant_id): Path<i64>,
    Query(query): Query<NumberQuery>,
) -> PageResult {
    let settings = settings_of(&state, merchant_id).await?;
    let view = LookupView {
        merchant_id,
        title: settings.title.clone(),
        number: query.number.unwrap_or_default(),
        error: None,
        order: None,
        searched: false,
        used: false,
    };
    Ok(render(
        &state,
        "order_lookup.html",
        &Page::anonymous(&settings.title),
        view,
    ))
}

async fn lookup_form(
    State(state): State<AppState>,
    Path(merchant_id): Path<i64>,
    address: ClientAddress,
    Form(form): Form<PickupForm>,
) -> PageResult {
    let settings = settings_of(&state, merchant_id).await?;
    let r = redeemer(&state, merchant_id);
    let mut view = LookupView {
        merchant_id,
        title: settings.title.clone(),
        number: form.number.clone(),
        error: None,
        order: None,
        searched: true,
        used: false,
    };
    let mut status = StatusCode::OK;
    match redeem::find_order(
        &r,
        &form.number,
        &form.password,
        &customer_requester(address),
    )
    .await
    {
        Ok(order) => view.order = order.as_ref().map(PickupOrderDto::from),
        Err(error) => {
            let error = ApiError::from(error);
            status = error.status();
            view.error = Some(error.public_message());
        }
    }
    let mut response = render(
        &state,
        "order_lookup.html",
        &Page::anonymous(&settings.title),
        view,
    );
    *response.status_mut() = status;
    Ok(response)
}

// ---- staff: 到店提货 / 电话提货 ----------------------------------------------

fn staff_channel(code: &str) -> ApiResult<Channel> {
    match code {
        "store" => Ok(Channel::AtLocation),
        "phone" => Ok(Channel::Phone),
        _ => Err(ApiError::NotFound),
    }
}

#[derive(Serialize)]
struct StaffView {
    channel: &'static str,
    channel_label: &'static str,
    number: String,
    password: String,
    error: Option<String>,
    card: Option<CheckedCardDto>,
    done: Option<PickupOrderDto>,
    asks_for_date: bool,
    date: DatePicker,
    form: PickupFormView,
    refusal: Option<StaffRefusal>,
}

/// Why a card was refused, as signed-in staff are told it: the reason, the
/// card's order when it was used, and 激活 for those allowed when it is not
/// yet active.
#[derive(Serialize)]
struct StaffRefusal {
    reason: &'static str,
    /// The reason is the card's state (not its number or password).
    about_card: bool,
    number: String,
    order_id: Option<i64>,
    order_time: Option<String>,
    order_status: Option<&'static str>,
    can_activate: bool,
    can_view_order: bool,
}

impl StaffRefusal {
    /// One line for the API's message and the page's heading.
    fn message(&self) -> String {
        match (self.order_id, &self.order_time) {
            (Some(id), Some(time)) => format!("该卡{}：订单 {id}，{time}", self.reason),
            _ if self.about_card => format!("该卡{}", self.reason),
            _ => self.reason.to_owned(),
        }
    }
}

async fn staff_refusal(
    state: &AppState,
    authed: &Authed,
    number: &str,
    refusal: PickupRefusal,
) -> ApiResult<StaffRefusal> {
    let order = match (refusal.reason, refusal.card_id) {
        (Reason::Used, Some(card_id)) => {
            state
                .store
                .latest_order_of_card(authed.merchant_id(), card_id)
                .await?
        }
        _ => None,
    };
    Ok(StaffRefusal {
        reason: refusal.reason.label_zh(),
        about_card: !matches!(
            refusal.reason,
            Reason::UnknownNumber | Reason::WrongPassword
        ),
        number: number.trim().to_ascii_uppercase(),
        order_id: order.as_ref().map(|o| o.id),
        order_time: order.as_ref().map(|o| format_datetime(o.created_at)),
        order_status: order.as_ref().map(|o| o.status.label_zh()),
        can_activate: refusal.reason == Reason::Inactive && authed.can(Permission::CardsManage),
        can_view_order: authed.can(Permission::OrdersManage),
    })
}

/// A refusal as staff are told it; any other error as it is.
async fn for_staff(
    state: &AppState,
    authed: &Authed,
    number: &str,
    error: RedeemError,
) -> ApiError {
    match error {
        RedeemError::Refused(refusal) => {
            match staff_refusal(state, authed, number, refusal).await {
                Ok(refusal) => ApiError::invalid(refusal.message()),
                Err(error) => error,
            }
        }
        other => other.into(),
    }
}

fn staff_view(channel: Channel, settings: &PickupSettings) -> StaffView {
    StaffView {
        channel: channel.code(),
        channel_label: channel.label_zh(),
        number: String::new(),
        password: String::new(),
        error: None,
        card: None,
        done: None,
        asks_for_date: settings.appointment.asks_for_date() && channel == Channel::Phone,
        date: DatePicker::of(settings),
        form: PickupFormView::default(),
        refusal: None,
    }
}

async fn staff_page(
    State(state): State<AppState>,
    authed: Authed,
    Path(channel): Path<String>,
    Query(query): Query<crate::forms::MsgQuery>,
) -> PageResult {
    authed.require(Permission::PickupAssist)?;
    let channel = staff_channel(&channel)?;
    let settings = state
        .store
        .get_pickup_settings(authed.merchant_id())
        .await?;
    let view = staff_view(channel, &settings);
    Ok(render(
        &state,
        "pickup_staff.html",
        &Page::new(channel.label_zh(), &authed).with_message(query.msg),
        view,
    ))
}

/// One form for both steps: without `goods_id` it checks the card, with it
/// it redeems.
async fn staff_form(
    State(state): State<AppState>,
    authed: Authed,
    Path(channel): Path<String>,
    Form(form): Form<PickupForm>,
) -> PageResult {
    authed.check_form_csrf(&form.csrf)?;
    authed.require(Permission::PickupAssist)?;
    let channel = staff_channel(&channel)?;
    let settings = state
        .store
        .get_pickup_settings(authed.merchant_id())
        .await?;
    let mut view = staff_view(channel, &settings);
    view.number = form.number.clone();
    view.form = PickupFormView::from(&form);
    let requester = staff_requester(&authed, channel);
    let r = redeemer(&state, authed.merchant_id());
    let checked = redeem::check_card(
        &r,
        &settings,
        &form.number,
        &form.password,
        &requester,
        false,
    )
    .await;
    let mut status = StatusCode::OK;
    match checked {
        Err(RedeemError::Refused(refusal)) => {
            let refusal = staff_refusal(&state, &authed, &form.number, refusal).await?;
            status = StatusCode::UNPROCESSABLE_ENTITY;
            view.error = Some(refusal.message());
            view.refusal = Some(refusal);
        }
        Err(error) => {
            let error = ApiError::from(error);
            status = error.status();
            view.error = Some(error.public_message());
        }
        Ok(checked) if form.goods_id.is_none() => {
            view.password = form.password;
            view.card = Some(CheckedCardDto::new(&checked));
        }
        Ok(checked) => {
            let password = form.password.clone();
            let number = form.number.clone();
            let result = match form.into_request(channel) {
                Ok(request) => {
                    match redeem_counted(&state, &r, &settings, &request, &requester).await {
                        Ok(order) => Ok(order),
                        Err(error) => Err(for_staff(&state, &authed, &number, error).await),
                    }
                }
                Err(error) => Err(error),
            };
            match result {
                Ok(order) => view.done = Some(PickupOrderDto::from(&order)),
                Err(error) => {
                    status = error.status();
                    view.error = Some(error.public_message());
                    view.password = password;
                    view.card = Some(CheckedCardDto::new(&checked));
                }
            }
        }
    }
    let mut response = render(
        &state,
        "pickup_staff.html",
        &Page::new(channel.label_zh(), &authed),
        view,
    );
    *response.status_mut() = status;
    Ok(response)
}

// ---- API ----------------------------------------------------------------------

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"number": "880012345678", "password": "4829371650"}))]
pub struct CheckCardRequest {
    /// 卡号.
    #[schema(max_length = 32)]
    pub number: String,
    /// 密码.
    #[schema(max_length = 32)]
    pub password: String,
}

/// Staff check a card before a pickup (the API's 到店/电话提货 first step).
async fn check_pickup_card(
    State(state): State<AppState>,
    authed: Authed,
    Json(body): Json<CheckCardRequest>,
) -> ApiResult<Json<CheckedCardDto>> {
    authed.require(Permission::PickupAssist)?;
    let settings = state
        .store
        .get_pickup_settings(authed.merchant_id())
        .await?;
    let r = redeemer(&state, authed.merchant_id());
    let checked = redeem::check_card(
        &r,
        &settings,
        &body.number,
        &body.password,
        &staff_requester(&authed, Channel::Api),
        false,
    )
    .await;
    match checked {
        Ok(checked) => Ok(Json(CheckedCardDto::new(&checked))),
        Err(error) => Err(for_staff(&state, &authed, &body.number, error).await),
    }
}

/// A pickup as the staff API takes it: `channel` is `store` (handed over
/// now), `phone` or `api` (shipped later).
pub type CreatePickupRequest = PickupForm;

async fn create_pickup(
    State(state): State<AppState>,
    authed: Authed,
    Json(body): Json<CreatePickupRequest>,
) -> ApiResult<Response> {
    authed.require(Permission::PickupAssist)?;
    let channel = match body.channel.as_str() {
        "store" => Channel::AtLocation,
        "phone" => Channel::Phone,
        "api" => Channel::Api,
        _ => return Err(ApiError::invalid("channel 应为 store、phone 或 api")),
    };
    let request = body.into_request(channel)?;
    let r = redeemer(&state, authed.merchant_id());
    let settings = state
        .store
        .get_pickup_settings(authed.merchant_id())
        .await?;
    let number = request.number.clone();
    let order = match redeem_counted(
        &state,
        &r,
        &settings,
        &request,
        &staff_requester(&authed, channel),
    )
    .await
    {
        Ok(order) => order,
        Err(error) => return Err(for_staff(&state, &authed, &number, error).await),
    };
    Ok((StatusCode::CREATED, Json(PickupOrderDto::from(&order))).into_response())
}
