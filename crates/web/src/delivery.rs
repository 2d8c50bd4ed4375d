//! The customer's delivery page (`/m/{merchant_id}/d/{token}`, no account):
//! the order's cards with their product, 兑换说明 and validity, each secret
//! masked until the customer taps 查看 (防泄漏: a chat tool that fetches the
//! link sees no secret). The reveal is a same-page POST that a plain fetch
//! of the link never makes; each is logged with time, IP and user agent.

use crate::client_address::ClientAddress;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path};
use crate::pages::{render, Page, PageResult};
use crate::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use kaquan_core::audit::Actor;
use kaquan_core::clock::format_datetime;
use kaquan_core::ecard::usecases::{open_own_code, open_stock};
use kaquan_core::ecard::{DeliveredStatus, DeliveryForm, EcardOrder, EcardProduct, Reveal};
use serde::Serialize;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/m/{merchant_id}/d/{token}", get(delivery_page))
        .route(
            "/m/{merchant_id}/d/{token}/cards/{card_id}/reveal",
            post(reveal_card),
        )
}

/// The header a reveal must carry: only the page's own script sends it
/// (a cross-site form cannot, and a link preview only fetches).
pub const REVEAL_HEADER: &str = "x-kaquan-reveal";

#[derive(Serialize)]
struct CardView {
    id: i64,
    product_name: String,
    form: &'static str,
    form_label: &'static str,
    instructions: String,
    tail: String,
    status: &'static str,
    status_label: &'static str,
    valid_until: String,
    /// Still worth revealing (unused within its validity, or used: the
    /// customer may look again; a refunded one never).
    can_reveal: bool,
    has_code: bool,
}

#[derive(Serialize)]
struct DeliveryView {
    merchant_id: i64,
    token: String,
    marketplace: &'static str,
    order_id: String,
    cards: Vec<CardView>,
    waiting: bool,
}

async fn order_of(state: &AppState, merchant_id: i64, token: &str) -> ApiResult<EcardOrder> {
    if token.len() != 48 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::NotFound);
    }
    let hash = kaquan_core::secrets::token_hash_hex(token);
    state
        .store
        .find_ecard_order_by_token(merchant_id, &hash)
        .await?
        .ok_or(ApiError::NotFound)
}

async fn products_of(state: &AppState, order: &EcardOrder) -> ApiResult<Vec<EcardProduct>> {
    let mut products: Vec<EcardProduct> = Vec::new();
    for id in order.lines.iter().filter_map(|l| l.product_id) {
        if !products.iter().any(|p| p.id == id) {
            products.push(state.store.get_ecard_product(order.merchant_id, id).await?);
        }
    }
    Ok(products)
}

/// Never cached, never indexed, never sent on as a referrer.
fn private(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        axum::http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    headers.insert(
        "x-robots-tag",
        HeaderValue::from_static("noindex, nofollow"),
    );
    headers.insert(
        axum::http::header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

async fn delivery_page(
    State(state): State<AppState>,
    Path((merchant_id, token)): Path<(i64, String)>,
) -> PageResult {
    let order = order_of(&state, merchant_id, &token).await?;
    let products = products_of(&state, &order).await?;
    let now = crate::now();
    let mut cards = Vec::new();
    for line in &order.lines {
        let product = products.iter().find(|p| Some(p.id) == line.product_id);
        for card in &line.cards {
            let Some(product) = product else { continue };
            let status = card.status(now);
            cards.push(CardView {
                id: card.id,
                product_name: product.fields.name.clone(),
                form: product.fields.delivery_form.code(),
                form_label: product.fields.delivery_form.label_zh(),
                instructions: product.fields.instructions.clone(),
                tail: card.tail.clone(),
                status: status.code(),
                status_label: status.label_zh(),
                valid_until: format_datetime(card.facts.valid_until),
                can_reveal: status != DeliveredStatus::Refunded,
                has_code: card.code_sealed.is_some(),
            });
        }
    }
    let waiting = order
        .lines
        .iter()
        .any(|l| l.state() == Some(kaquan_core::ecard::LineState::OutOfStock));
    let view = DeliveryView {
        merchant_id,
        token,
        marketplace: order.marketplace.label_zh(),
        order_id: order.order_id.clone(),
        cards,
        waiting,
    };
    Ok(private(render(
        &state,
        "delivery.html",
        &Page::anonymous("卡密查看"),
        view,
    )))
}

#[derive(Serialize)]
struct RevealedDto {
    number: String,
    secret: String,
    /// The secret as a QR code (兑换码, 二维码 forms).
    qr_svg: Option<String>,
    /// A link to open (兑换链接).
    link: Option<String>,
    /// kaquan's own verification code, with its QR and barcode.
    code: Option<String>,
    code_qr_svg: Option<String>,
    code_barcode_svg: Option<String>,
}

fn qr(text: &str) -> ApiResult<String> {
    qrcode::QrCode::new(text.as_bytes())
        .map(|q| crate::exports::qr_svg(&q))
        .map_err(|e| ApiError::Internal(format!("qr: {e}")))
}

/// 查看: opens one card of the order, logged with time, IP and user agent.
async fn reveal_card(
    State(state): State<AppState>,
    Path((merchant_id, token, card_id)): Path<(i64, String, i64)>,
    address: ClientAddress,
    headers: HeaderMap,
) -> ApiResult<Response> {
    if headers.get(REVEAL_HEADER).is_none() {
        return Err(ApiError::Forbidden("请在卡密页面点击查看"));
    }
    let order = order_of(&state, merchant_id, &token).await?;
    let user_agent = headers
        .get(axum::http::header::USER_AGENT)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect();
    let reveal = Reveal {
        merchant_id,
        delivery_id: card_id,
        order_ref: Some(order.id),
        ip: address.key(),
        user_agent,
        actor: Actor {
            staff_id: None,
            label: "customer".into(),
        },
        now: crate::now(),
    };
    let card = match state.store.reveal_ecard(&reveal).await {
        Err(kaquan_core::StoreError::NotFound) => return Err(ApiError::NotFound),
        other => other?,
    };
    let form = order
        .lines
        .iter()
        .find(|l| l.cards.iter().any(|c| c.id == card.id))
        .and_then(|l| l.product_id);
    let product = match form {
        Some(id) => state.store.get_ecard_product(merchant_id, id).await?,
        None => return Err(ApiError::NotFound),
    };
    let keys = state.master.merchant_keys(merchant_id, card.key_version);
    let (number, secret) = open_stock(&keys, &card.sealed)
        .ok_or_else(|| ApiError::Internal("a delivered secret does not open".into()))?;
    let code = card
        .code_sealed
        .as_deref()
        .and_then(|sealed| open_own_code(&keys, sealed));
    let form = product.fields.delivery_form;
    let dto = RevealedDto {
        qr_svg: matches!(form, DeliveryForm::Code | DeliveryForm::QrImage)
            .then(|| qr(&secret))
            .transpose()?,
        link: (form == DeliveryForm::Link).then(|| secret.clone()),
        code_qr_svg: code.as_deref().map(qr).transpose()?,
        code_barcode_svg: code.as_deref().map(crate::wallet::barcode_svg),
        code,
        number,
        secret,
    };
    Ok(private(Json(dto).into_response()))
}
