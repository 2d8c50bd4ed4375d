//! 全局搜索: the one box in the console's header. What is typed may be a
//! secret (a 兑换码, a coupon's code), so it travels in a form body, never
//! a URL. It is tried as each thing it could be that this role may see: a
//! card number, a pickup order's id or consignee phone, a 兑换码 (查码), a
//! coupon's code (under the verifier's throttle, as the 核销台 looks one
//! up), a member's number or phone, an e-card order's marketplace id. One
//! find opens at once; several are listed; phones are masked unless the
//! role may see personal data.

use crate::auth::Authed;
use crate::error::{ApiError, ApiResult};
use crate::extract::Form;
use crate::pages::{render, Page, PageResult};
use crate::AppState;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect};
use axum::routing::post;
use axum::Router;
use kaquan_core::auth::Permission;
use kaquan_core::code::{code_digest, digest_keys, mask_code, Code};
use kaquan_core::coupon::code::TypedCode;
use kaquan_core::member::MemberFilter;
use kaquan_core::pickup::mask_phone;
use kaquan_core::pickup::order::PickupOrderFilter;
use kaquan_core::store::Page as ListPage;
use serde::{Deserialize, Serialize};

/// The longest search: longer than any number, code or phone.
pub const SEARCH_CHARS_MAX: usize = 64;
/// The shortest phone searched for (a landline without its area code).
const PHONE_DIGITS_MIN: usize = 7;
/// Finds listed per kind.
const HITS_PER_KIND_MAX: i64 = 5;

pub fn router() -> Router<AppState> {
    Router::new().route("/search", post(search_form))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchForm {
    csrf: String,
    q: String,
}

/// One thing found.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// What it is: 卡券, 提货订单, 兑换码, 优惠券, 会员, 电子卡密订单.
    pub kind: &'static str,
    pub title: String,
    pub detail: String,
    pub href: String,
}

#[derive(Serialize)]
struct SearchView {
    hits: Vec<Hit>,
}

fn phone_shown(authed: &Authed, phone: &str) -> String {
    match authed.can(Permission::PersonalDataView) {
        true => phone.to_owned(),
        false => mask_phone(phone),
    }
}

fn is_digits(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

async fn cards(state: &AppState, authed: &Authed, q: &str) -> ApiResult<Vec<Hit>> {
    if !authed.can(Permission::CardsView) {
        return Ok(Vec::new());
    }
    let found = state.store.card_for_check(authed.merchant_id(), q).await?;
    Ok(found
        .into_iter()
        .map(|c| Hit {
            kind: "卡券",
            title: c.card.number.clone(),
            detail: c.card.state.label_zh().into(),
            href: format!("/cards/{}", c.card.number),
        })
        .collect())
}

async fn pickup_orders(state: &AppState, authed: &Authed, q: &str) -> ApiResult<Vec<Hit>> {
    if !authed.can(Permission::OrdersManage) || !is_digits(q) {
        return Ok(Vec::new());
    }
    let m = authed.merchant_id();
    let mut orders = Vec::new();
    // An order id as written: a card number's leading zeros are no order.
    if let Some(id) = q.parse::<i64>().ok().filter(|id| id.to_string() == q) {
        match state.store.get_order(m, id).await {
            Ok(order) => orders.push(order),
            Err(kaquan_core::StoreError::NotFound) => {}
            Err(other) => return Err(other.into()),
        }
    }
    // A consignee's phone, whole.
    if q.len() >= PHONE_DIGITS_MIN {
        let filter = PickupOrderFilter {
            phone: Some(q.to_owned()),
            ..Default::default()
        };
        let page = ListPage::new(Some(1), Some(HITS_PER_KIND_MAX));
        let (by_phone, _) = state.store.list_orders(m, &filter, page).await?;
        orders.extend(by_phone.into_iter().filter(|o| o.id.to_string() != q));
    }
    Ok(orders
        .iter()
        .map(|o| Hit {
            kind: "提货订单",
            title: format!("订单 {} · {}", o.id, o.goods_name),
            detail: format!(
                "{} {} · {}",
                o.consignee.name,
                phone_shown(authed, &o.consignee.phone),
                o.status.label_zh()
            ),
            href: format!("/orders/{}", o.id),
        })
        .collect())
}

async fn codes(state: &AppState, authed: &Authed, q: &str) -> ApiResult<Vec<Hit>> {
    let Some(code) = Code::parse(q).filter(|_| authed.can(Permission::GiftcardsManage)) else {
        return Ok(Vec::new());
    };
    let m = authed.merchant_id();
    let keys = digest_keys(&state.master, m);
    let Some(found) = state.store.find_code(m, &code_digest(&keys, &code)).await? else {
        return Ok(Vec::new());
    };
    let template = state.store.get_code_template(m, found.template_id).await?;
    Ok(vec![Hit {
        kind: "兑换码",
        title: mask_code(code.expose()),
        detail: format!("{} · {}", template.fields.name, found.state.label_zh()),
        href: format!("/giftcards/codes/{}", template.id),
    }])
}

async fn coupons(state: &AppState, authed: &Authed, q: &str) -> ApiResult<Vec<Hit>> {
    // Only a fixed code's shape is tried, so a search for a phone never
    // counts against the verifier's throttle.
    if !authed.can(Permission::CouponsVerify) || !matches!(TypedCode::parse(q), TypedCode::Fixed(_))
    {
        return Ok(Vec::new());
    }
    match crate::coupon_records::staff_look_up(state, authed, q).await {
        Ok(held) => Ok(vec![Hit {
            kind: "优惠券",
            title: held.program.fields.title.clone(),
            detail: held.coupon.status(crate::now()).label_zh().into(),
            href: "/verify".into(),
        }]),
        Err(ApiError::CouponRefused(_)) => Ok(Vec::new()),
        Err(other) => Err(other),
    }
}

async fn members(state: &AppState, authed: &Authed, q: &str) -> ApiResult<Vec<Hit>> {
    if !authed.can(Permission::MembersView) {
        return Ok(Vec::new());
    }
    let m = authed.merchant_id();
    let programs = state.store.list_member_programs(m).await?;
    let mut found = Vec::new();
    for program in &programs {
        if let Some(id) = program.fields.parse_member_number(q) {
            match state.store.get_member(m, id).await {
                Ok(member) if member.program_id == program.id => found.push(member),
                Ok(_) | Err(kaquan_core::StoreError::NotFound) => {}
                Err(other) => return Err(other.into()),
            }
        }
    }
    if is_digits(q) && q.len() >= PHONE_DIGITS_MIN {
        let filter = MemberFilter {
            search: Some(q.to_owned()),
            ..Default::default()
        };
        let page = ListPage::new(Some(1), Some(HITS_PER_KIND_MAX));
        let (by_phone, _) = state.store.list_members(m, &filter, page).await?;
        for member in by_phone {
            if !found.iter().any(|f| f.id == member.id) {
                found.push(member);
            }
        }
    }
    Ok(found
        .iter()
        .map(|member| {
            let program = programs.iter().find(|p| p.id == member.program_id);
            Hit {
                kind: "会员",
                title: program.map_or_else(
                    || member.id.to_string(),
                    |p| p.fields.member_number(member.id),
                ),
                detail: format!("{} {}", member.name, phone_shown(authed, &member.phone)),
                href: format!("/members/{}", member.id),
            }
        })
        .collect())
}

async fn ecard_orders(state: &AppState, authed: &Authed, q: &str) -> ApiResult<Vec<Hit>> {
    if !authed.can(Permission::EcardsManage) || q.len() < 4 {
        return Ok(Vec::new());
    }
    let filter = kaquan_core::ecard::OrderFilter {
        merchant_id: authed.merchant_id(),
        order_id: Some(q.to_owned()),
        marketplace: None,
        product_id: None,
        status: None,
        out_of_stock: false,
        from: None,
        to: None,
        now: crate::now(),
    };
    let page = ListPage::new(Some(1), Some(HITS_PER_KIND_MAX));
    let (orders, _) = state.store.list_ecard_orders(&filter, page).await?;
    Ok(orders
        .iter()
        .map(|o| Hit {
            kind: "电子卡密订单",
            title: o.order_id.clone(),
            detail: format!(
                "{} · {}",
                o.marketplace.label_zh(),
                phone_shown(authed, &o.buyer_phone)
            ),
            href: format!("/ecards/orders/{}", o.id),
        })
        .collect())
}

/// Everything `q` finds that this role may see.
pub async fn search(state: &AppState, authed: &Authed, q: &str) -> ApiResult<Vec<Hit>> {
    crate::extract::check_chars("q", q, SEARCH_CHARS_MAX)?;
    let q = q.trim();
    if q.is_empty() {
        return Ok(Vec::new());
    }
    let (a, b, c, d, e, f) = tokio::try_join!(
        cards(state, authed, q),
        pickup_orders(state, authed, q),
        codes(state, authed, q),
        coupons(state, authed, q),
        members(state, authed, q),
        ecard_orders(state, authed, q),
    )?;
    Ok([a, b, c, d, e, f].concat())
}

async fn search_form(
    State(state): State<AppState>,
    authed: Authed,
    Form(form): Form<SearchForm>,
) -> PageResult {
    authed.check_form_csrf(&form.csrf)?;
    let hits = search(&state, &authed, &form.q).await?;
    // One find opens at once; a coupon is shown, since the 核销台 it
    // would open does not know which coupon was found.
    if let [only] = hits.as_slice() {
        if only.kind != "优惠券" {
            return Ok(Redirect::to(&only.href).into_response());
        }
    }
    Ok(render(
        &state,
        "search.html",
        &Page::new("搜索", &authed),
        SearchView { hits },
    ))
}
