//! Server-rendered console pages: the template environment (auto-escaping
//! on, templates compiled into the binary) and the shared page frame.

use crate::auth::Authed;
use crate::error::ApiError;
use crate::AppState;
use axum::response::{Html, IntoResponse, Response};
use serde::Serialize;

const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../templates/base.html")),
    ("delivery.html", include_str!("../templates/delivery.html")),
    ("ecards.html", include_str!("../templates/ecards.html")),
    (
        "ecard_fields.html",
        include_str!("../templates/ecard_fields.html"),
    ),
    (
        "ecard_form.html",
        include_str!("../templates/ecard_form.html"),
    ),
    ("ecard.html", include_str!("../templates/ecard.html")),
    (
        "ecard_orders.html",
        include_str!("../templates/ecard_orders.html"),
    ),
    (
        "ecard_order.html",
        include_str!("../templates/ecard_order.html"),
    ),
    (
        "ecard_analytics.html",
        include_str!("../templates/ecard_analytics.html"),
    ),
    (
        "member_face.html",
        include_str!("../templates/member_face.html"),
    ),
    ("pay_gift.html", include_str!("../templates/pay_gift.html")),
    (
        "member_messages.html",
        include_str!("../templates/member_messages.html"),
    ),
    (
        "member_open.html",
        include_str!("../templates/member_open.html"),
    ),
    (
        "member_card.html",
        include_str!("../templates/member_card.html"),
    ),
    (
        "member_programs.html",
        include_str!("../templates/member_programs.html"),
    ),
    (
        "member_program_form.html",
        include_str!("../templates/member_program_form.html"),
    ),
    (
        "member_program.html",
        include_str!("../templates/member_program.html"),
    ),
    ("members.html", include_str!("../templates/members.html")),
    ("member.html", include_str!("../templates/member.html")),
    ("verify.html", include_str!("../templates/verify.html")),
    (
        "coupon_claim.html",
        include_str!("../templates/coupon_claim.html"),
    ),
    ("wallet.html", include_str!("../templates/wallet.html")),
    ("coupons.html", include_str!("../templates/coupons.html")),
    (
        "coupon_form.html",
        include_str!("../templates/coupon_form.html"),
    ),
    ("coupon.html", include_str!("../templates/coupon.html")),
    ("credits.html", include_str!("../templates/credits.html")),
    ("operator.html", include_str!("../templates/operator.html")),
    (
        "operator_merchant.html",
        include_str!("../templates/operator_merchant.html"),
    ),
    (
        "coupon_issue_job.html",
        include_str!("../templates/coupon_issue_job.html"),
    ),
    (
        "coupon_locations.html",
        include_str!("../templates/coupon_locations.html"),
    ),
    (
        "coupon_records.html",
        include_str!("../templates/coupon_records.html"),
    ),
    (
        "wallet_coupon.html",
        include_str!("../templates/wallet_coupon.html"),
    ),
    ("login.html", include_str!("../templates/login.html")),
    ("home.html", include_str!("../templates/home.html")),
    ("search.html", include_str!("../templates/search.html")),
    (
        "analytics.html",
        include_str!("../templates/analytics.html"),
    ),
    (
        "pickup_fields.html",
        include_str!("../templates/pickup_fields.html"),
    ),
    (
        "account_password.html",
        include_str!("../templates/account_password.html"),
    ),
    ("card.html", include_str!("../templates/card.html")),
    (
        "pickup_site.html",
        include_str!("../templates/pickup_site.html"),
    ),
    ("error.html", include_str!("../templates/error.html")),
    ("cards.html", include_str!("../templates/cards.html")),
    ("export.html", include_str!("../templates/export.html")),
    ("batches.html", include_str!("../templates/batches.html")),
    (
        "batch_new.html",
        include_str!("../templates/batch_new.html"),
    ),
    ("batch.html", include_str!("../templates/batch.html")),
    ("import.html", include_str!("../templates/import.html")),
    (
        "distributors.html",
        include_str!("../templates/distributors.html"),
    ),
    ("staff.html", include_str!("../templates/staff.html")),
    ("audit.html", include_str!("../templates/audit.html")),
    (
        "deleted_cards.html",
        include_str!("../templates/deleted_cards.html"),
    ),
    ("goods.html", include_str!("../templates/goods.html")),
    (
        "goods_edit.html",
        include_str!("../templates/goods_edit.html"),
    ),
    ("redeem.html", include_str!("../templates/redeem.html")),
    (
        "redeem_done.html",
        include_str!("../templates/redeem_done.html"),
    ),
    (
        "order_lookup.html",
        include_str!("../templates/order_lookup.html"),
    ),
    (
        "pickup_staff.html",
        include_str!("../templates/pickup_staff.html"),
    ),
    ("orders.html", include_str!("../templates/orders.html")),
    ("order.html", include_str!("../templates/order.html")),
    (
        "pickup_settings.html",
        include_str!("../templates/pickup_settings.html"),
    ),
    ("exchange.html", include_str!("../templates/exchange.html")),
    (
        "exchange_balance.html",
        include_str!("../templates/exchange_balance.html"),
    ),
    (
        "exchange_orders.html",
        include_str!("../templates/exchange_orders.html"),
    ),
    (
        "giftcard_settings.html",
        include_str!("../templates/giftcard_settings.html"),
    ),
    (
        "code_templates.html",
        include_str!("../templates/code_templates.html"),
    ),
    ("codes.html", include_str!("../templates/codes.html")),
    (
        "giftcard_products.html",
        include_str!("../templates/giftcard_products.html"),
    ),
    (
        "customers.html",
        include_str!("../templates/customers.html"),
    ),
    ("customer.html", include_str!("../templates/customer.html")),
    ("api_keys.html", include_str!("../templates/api_keys.html")),
    ("webhooks.html", include_str!("../templates/webhooks.html")),
    ("sms.html", include_str!("../templates/sms.html")),
    ("erp.html", include_str!("../templates/erp.html")),
    ("prepaid.html", include_str!("../templates/prepaid.html")),
    (
        "approval_policy.html",
        include_str!("../templates/approval_policy.html"),
    ),
    (
        "approvals.html",
        include_str!("../templates/approvals.html"),
    ),
    (
        "print_shops.html",
        include_str!("../templates/print_shops.html"),
    ),
    (
        "waybill_settings.html",
        include_str!("../templates/waybill_settings.html"),
    ),
    (
        "waybill_label.html",
        include_str!("../templates/waybill_label.html"),
    ),
    (
        "card_sales.html",
        include_str!("../templates/card_sales.html"),
    ),
    (
        "webhook_delivery.html",
        include_str!("../templates/webhook_delivery.html"),
    ),
    (
        "api_reference.html",
        include_str!("../templates/api_reference.html"),
    ),
];

pub fn environment() -> minijinja::Environment<'static> {
    let mut env = minijinja::Environment::new();
    // Every `.html` template escapes by default; nothing is marked safe.
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
    for (name, source) in TEMPLATES {
        env.add_template(name, source)
            .expect("console templates are valid");
    }
    env.add_filter("actor", actor_name);
    env
}

/// Who did something, as people read it: kaquan's own actors by name
/// (命令行, 系统, 顾客), a staff member by their username.
fn actor_name(label: String) -> String {
    match label.as_str() {
        "cli" => "命令行".into(),
        "system" => "系统".into(),
        "customer" => "顾客".into(),
        _ => label,
    }
}

/// What the page frame shows: the title, who is signed in and what they may do.
#[derive(Serialize)]
pub struct Page {
    pub title: String,
    pub username: Option<String>,
    pub role: String,
    pub csrf: String,
    pub permissions: Vec<&'static str>,
    pub message: Option<String>,
    /// The menu this role sees.
    pub nav: Vec<crate::nav::NavGroup>,
    /// 全局设置's tabs, on its pages.
    pub tabs: Vec<crate::nav::NavEntry>,
    /// `zh-CN` or `en`: the header offers the other.
    pub lang: &'static str,
}

impl Page {
    pub fn anonymous(title: &str) -> Self {
        Self {
            title: title.into(),
            username: None,
            role: String::new(),
            csrf: String::new(),
            permissions: Vec::new(),
            message: None,
            nav: Vec::new(),
            tabs: Vec::new(),
            lang: crate::i18n::Lang::ZhCn.code(),
        }
    }

    pub fn new(title: &str, authed: &Authed) -> Self {
        Self {
            title: title.into(),
            username: Some(authed.staff.username.clone()),
            role: authed.role_label.clone(),
            csrf: authed.csrf_token.clone(),
            permissions: authed.permissions.iter().map(|p| p.code()).collect(),
            message: None,
            nav: {
                let mut nav = crate::nav::menu_for(&authed.permissions);
                if authed.staff.operator {
                    nav.push(crate::nav::operator_group());
                }
                nav
            },
            tabs: Vec::new(),
            lang: authed.lang.code(),
        }
    }

    /// A page of 全局设置: it shows the settings' tabs.
    pub fn settings(title: &str, authed: &Authed) -> Self {
        Self {
            tabs: crate::nav::settings_tabs(&authed.permissions),
            ..Self::new(title, authed)
        }
    }

    pub fn with_message(mut self, message: Option<String>) -> Self {
        self.message = message.filter(|m| !m.is_empty());
        self
    }
}

pub fn render(state: &AppState, template: &str, page: &Page, view: impl Serialize) -> Response {
    let context = minijinja::context! { page => page, v => view };
    match state
        .templates
        .get_template(template)
        .and_then(|t| t.render(context))
    {
        Ok(html) => Html(html).into_response(),
        Err(error) => ApiError::Internal(format!("template {template}: {error:#}")).into_response(),
    }
}

/// An error as a small page (for console requests).
pub fn error_page(error: &ApiError) -> Response {
    error_page_for(error, false)
}

/// An error as a small page; a customer's (`/m/…`) offers no way into the
/// staff console. A console error page is marked ([`ConsoleError`]) so that
/// [`frame_errors`] can show it inside the menu of whoever is signed in.
pub fn error_page_for(error: &ApiError, customer: bool) -> Response {
    if let ApiError::Internal(cause) = error {
        tracing::error!(error = %cause, "console request failed");
    }
    let env = environment();
    let shown = ConsoleError {
        message: error.public_message(),
        forbidden: matches!(error, ApiError::Forbidden(_)),
    };
    let mut response = (
        error.status(),
        Html(error_html(
            &env,
            &Page::anonymous("出错了"),
            &shown,
            customer,
        )),
    )
        .into_response();
    if !customer {
        response.extensions_mut().insert(shown);
    }
    response
}

fn error_html(
    env: &minijinja::Environment<'_>,
    page: &Page,
    error: &ConsoleError,
    customer: bool,
) -> String {
    let view = minijinja::context! {
        message => error.message,
        customer => customer,
        forbidden => error.forbidden,
    };
    env.get_template("error.html")
        .and_then(|t| t.render(minijinja::context! { page => page, v => view }))
        .unwrap_or_else(|_| "出错了".into())
}

/// The error a console page answered with, as shown.
#[derive(Clone)]
pub struct ConsoleError {
    message: String,
    forbidden: bool,
}

/// Shows a console error page inside the header and menu of the staff
/// member signed in, so that every page, errors included, keeps the way
/// on (the menu, 首页, 退出).
pub async fn frame_errors(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let (uri, headers) = (request.uri().clone(), request.headers().clone());
    let response = next.run(request).await;
    let Some(error) = response.extensions().get::<ConsoleError>().cloned() else {
        return response;
    };
    let mut probe = axum::http::Request::new(());
    *probe.uri_mut() = uri;
    *probe.headers_mut() = headers;
    let (mut parts, ()) = probe.into_parts();
    let Ok(authed) = <Authed as axum::extract::FromRequestParts<AppState>>::from_request_parts(
        &mut parts, &state,
    )
    .await
    else {
        return response;
    };
    let html = error_html(
        &state.templates,
        &Page::new("出错了", &authed),
        &error,
        false,
    );
    let (mut response_parts, _) = response.into_parts();
    response_parts
        .headers
        .remove(axum::http::header::CONTENT_LENGTH);
    Response::from_parts(response_parts, axum::body::Body::from(html))
}

/// Console handlers return this so errors become pages, not JSON.
pub struct PageError(pub ApiError);

impl From<ApiError> for PageError {
    fn from(error: ApiError) -> Self {
        Self(error)
    }
}

impl From<kaquan_core::StoreError> for PageError {
    fn from(error: kaquan_core::StoreError) -> Self {
        Self(error.into())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        error_page(&self.0)
    }
}

pub type PageResult = Result<Response, PageError>;

#[cfg(test)]
mod tests {
    #[test]
    fn every_console_template_compiles() {
        let env = super::environment();
        for (name, _) in super::TEMPLATES {
            assert!(env.get_template(name).is_ok(), "{name}");
        }
    }
}
