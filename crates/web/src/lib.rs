//! kaquan's HTTP face: the JSON API under `/api/v1` and the zh-CN admin
//! console, both served by one axum router over the same use cases.
//!
//! Architecture invariant: handlers never run SQL; they call `kaquan_core`
//! use cases and the `Store` trait. Wire types (the `*Dto`, `*Request` and
//! view structs) live here and only here derive serde.

// The OpenAPI examples of the coupon program are large `json!` literals.
#![recursion_limit = "256"]

pub mod analytics;
pub mod api_keys;
pub mod approval_policy;
pub mod approvals;
pub mod audit;
pub mod auth;
pub mod batches;
pub mod cache;
pub mod card_page;
pub mod card_sales;
pub mod cards;
pub mod charts;
pub mod client_address;
pub mod codes;
pub mod cookies;
pub mod coupon_issues;
pub mod coupon_open;
pub mod coupon_pages;
pub mod coupon_records;
pub mod coupons;
pub mod credential_approvals;
pub mod credit_pages;
pub mod credits;
pub mod customers;
pub mod dashboard;
pub mod delivery;
pub mod ecard_analytics;
pub mod ecard_open;
pub mod ecard_orders;
pub mod ecard_pages;
pub mod ecards;
pub mod erp;
pub mod error;
pub mod exchange;
pub mod export_jobs;
pub mod exports;
pub mod extract;
pub mod forms;
pub mod giftcards;
pub mod goods;
pub mod home;
pub mod i18n;
pub mod images;
pub mod lists;
pub mod locations;
pub mod member_card;
pub mod member_open;
pub mod member_pages;
pub mod member_programs;
pub mod members;
pub mod nav;
pub mod open_api;
pub mod openapi;
pub mod order_pages;
pub mod orders;
pub mod outbox;
pub mod pages;
pub mod pay_gift;
pub mod pdf;
pub mod people;
pub mod pickup;
pub mod pickup_settings;
pub mod prepaid;
pub mod print_shops;
pub mod prometheus;
pub mod resealer;
pub mod search;
pub mod sms;
pub mod sms_pages;
pub mod tables;
pub mod verify;
pub mod wallet;
pub mod waybills;
pub mod webhooks;

use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use axum::Router;
use kaquan_core::batch::usecases::BatchProgress;
use kaquan_core::secrets::MasterKey;
use kaquan_core::store::Store;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

/// Largest request body (import files included).
pub const UPLOAD_BYTES_MAX: usize = 20 * 1024 * 1024;

/// Everything a handler needs, cloned per request.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub master: Arc<MasterKey>,
    /// The address customers reach kaquan at, for QR codes (no trailing slash).
    pub public_url: Arc<str>,
    /// Each shop's address as `public_url_for` found it recently.
    pub shop_urls: Arc<cache::TtlCache<i64, String>>,
    /// Each shop's coupon settings as found recently (every verification
    /// through the open API answers its undo deadline).
    pub coupon_settings: Arc<cache::TtlCache<i64, kaquan_core::coupon::usage::CouponSettings>>,
    /// Each shop's 提货设置 as found recently: every step of the pickup
    /// page reads them (forgotten at once when this node saves them).
    pub pickup_settings: Arc<cache::TtlCache<i64, kaquan_core::pickup::PickupSettings>>,
    /// Whether each shop's passwords are all digits (the pickup page's
    /// number pad), as found recently: the landing page asks on every scan.
    pub digit_passwords: Arc<cache::TtlCache<i64, bool>>,
    /// Progress of batches this process is generating.
    pub progress: Arc<Mutex<HashMap<i64, Arc<BatchProgress>>>>,
    pub templates: Arc<minijinja::Environment<'static>>,
    /// Whether the session cookie is marked `Secure` (behind HTTPS).
    pub secure_cookies: bool,
    /// Open-API keys this node opened recently.
    pub api_keys: Arc<open_api::ApiKeyCache>,
    /// Counters for alerting (`/metrics`).
    pub metrics: Arc<prometheus::Metrics>,
    /// 礼品卡设置 this node read recently (every redemption needs them).
    pub giftcard_settings: Arc<giftcards::SettingsCache>,
    /// The exports running on this node, by merchant.
    pub exports: Arc<exports::ExportSlots>,
    /// Background exports of this node, with their progress and files.
    pub export_jobs: Arc<export_jobs::ExportJobs>,
    /// Background 定向发放 of long lists on this node, with their progress.
    pub issue_jobs: Arc<coupon_issues::IssueJobs>,
    /// Where webhooks may go (the operator's `[webhooks]` settings).
    pub webhook_policy: outbox::WebhookPolicy,
    /// Where the SMS providers' APIs are (the operator's `[sms]` settings).
    pub sms_endpoints: sms::SmsEndpoints,
    /// 旺店通's `trade_push.php` (the operator's `[erp] wdt_endpoint`).
    pub wdt_endpoint: String,
    /// The e-waybill channels' APIs (the operator's `[waybill]` settings).
    pub waybill_endpoints: waybills::WaybillEndpoints,
    /// Reverse proxies whose `X-Forwarded-For` names the client (`[server] trusted_proxies`).
    pub trusted_proxies: Arc<client_address::TrustedProxies>,
}

impl AppState {
    /// Where a merchant's customers reach it (QR codes, links): the 公网地址
    /// of its 提货设置, else the server's `--public-url`.
    pub async fn public_url_for(&self, merchant_id: i64) -> error::ApiResult<String> {
        if let Some(url) = self.shop_urls.get(&merchant_id) {
            return Ok(url);
        }
        let settings = self.store.get_pickup_settings(merchant_id).await?;
        let url = settings
            .public_url
            .unwrap_or_else(|| self.public_url.to_string());
        self.shop_urls.put(merchant_id, url.clone());
        Ok(url)
    }

    pub fn new(
        store: Arc<dyn Store>,
        master: MasterKey,
        public_url: &str,
        secure_cookies: bool,
    ) -> Self {
        Self {
            store,
            master: Arc::new(master),
            public_url: public_url.trim_end_matches('/').into(),
            shop_urls: Arc::new(cache::TtlCache::new(giftcards::SETTINGS_CACHE_SECONDS)),
            digit_passwords: Arc::new(cache::TtlCache::new(60)),
            pickup_settings: Arc::new(cache::TtlCache::new(giftcards::SETTINGS_CACHE_SECONDS)),
            coupon_settings: Arc::new(cache::TtlCache::new(giftcards::SETTINGS_CACHE_SECONDS)),
            progress: Arc::default(),
            templates: Arc::new(pages::environment()),
            secure_cookies,
            api_keys: Arc::new(open_api::ApiKeyCache::new(open_api::API_KEY_CACHE_SECONDS)),
            metrics: Arc::default(),
            giftcard_settings: Arc::new(giftcards::SettingsCache::new(
                giftcards::SETTINGS_CACHE_SECONDS,
            )),
            exports: Arc::default(),
            export_jobs: Arc::default(),
            issue_jobs: Arc::default(),
            webhook_policy: outbox::WebhookPolicy::default(),
            sms_endpoints: sms::SmsEndpoints::default(),
            wdt_endpoint: erp::WDT_ENDPOINT.into(),
            waybill_endpoints: waybills::WaybillEndpoints::default(),
            trusted_proxies: Arc::default(),
        }
    }

    /// The same state with the e-waybill channels' APIs elsewhere.
    pub fn with_waybill_endpoints(mut self, endpoints: waybills::WaybillEndpoints) -> Self {
        self.waybill_endpoints = endpoints;
        self
    }

    /// The same state with 旺店通's API elsewhere.
    pub fn with_wdt_endpoint(mut self, endpoint: &str) -> Self {
        self.wdt_endpoint = endpoint.into();
        self
    }

    /// The same state with the SMS providers' APIs elsewhere.
    pub fn with_sms_endpoints(mut self, endpoints: sms::SmsEndpoints) -> Self {
        self.sms_endpoints = endpoints;
        self
    }

    /// The same state with webhooks allowed (or not) to reach private addresses.
    pub fn with_webhook_policy(mut self, policy: outbox::WebhookPolicy) -> Self {
        self.webhook_policy = policy;
        self
    }

    pub fn with_trusted_proxies(mut self, proxies: client_address::TrustedProxies) -> Self {
        self.trusted_proxies = Arc::new(proxies);
        self
    }
}

/// The request span's layer, with its span maker and response hook as plain functions.
type RequestTrace = tower_http::trace::TraceLayer<
    tower_http::classify::SharedClassifier<tower_http::classify::ServerErrorsAsFailures>,
    fn(&axum::extract::Request) -> tracing::Span,
    (),
    fn(&axum::response::Response, std::time::Duration, &tracing::Span),
    (),
    (),
    (),
>;

/// Runs every routed request in a `request` span (tower-http's
/// `TraceLayer`) with its method, matched route (never the raw path),
/// the merchant once known (`merchant.id`, recorded by the sign-in
/// extractors), and when done its status and `duration_ms`. A 5xx is
/// logged once with its cause inside that span, by `ApiError`, so the
/// layer's own failure log is off. Each finished request is a `debug`
/// event: the default `info` level stays quiet.
fn trace_layer() -> RequestTrace {
    fn span(request: &axum::extract::Request) -> tracing::Span {
        let route = request
            .extensions()
            .get::<axum::extract::MatchedPath>()
            .map_or("unmatched", |path| path.as_str());
        tracing::info_span!(
            "request",
            method = %request.method(),
            route = %route,
            merchant.id = tracing::field::Empty,
            status = tracing::field::Empty,
            duration_ms = tracing::field::Empty,
        )
    }
    fn finished(
        response: &axum::response::Response,
        latency: std::time::Duration,
        span: &tracing::Span,
    ) {
        span.record("status", response.status().as_u16());
        span.record("duration_ms", latency.as_secs_f64() * 1000.0);
        tracing::debug!("request finished");
    }
    tower_http::trace::TraceLayer::new_for_http()
        .make_span_with(span as fn(&axum::extract::Request) -> tracing::Span)
        .on_request(())
        .on_response(finished as fn(&axum::response::Response, std::time::Duration, &tracing::Span))
        .on_body_chunk(())
        .on_eos(())
        .on_failure(())
}

/// Compresses answers for clients that ask (phones on the H5 pages, the
/// console's lists) except what is compressed already: zip archives, xlsx
/// workbooks and images.
fn compression_layer(
) -> tower_http::compression::CompressionLayer<impl tower_http::compression::Predicate> {
    use tower_http::compression::predicate::{NotForContentType, Predicate};
    tower_http::compression::CompressionLayer::new().compress_when(
        tower_http::compression::DefaultPredicate::new()
            .and(NotForContentType::const_new("application/zip"))
            .and(NotForContentType::const_new(
                "application/vnd.openxmlformats",
            ))
            .and(NotForContentType::const_new("image/")),
    )
}

/// Records the merchant a request acts for on its `request` span.
pub fn record_merchant(merchant_id: i64) {
    tracing::Span::current().record("merchant.id", merchant_id);
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .merge(auth::router())
        .merge(home::router())
        .merge(search::router())
        .merge(analytics::router())
        .merge(dashboard::router())
        .merge(prometheus::router())
        .merge(prepaid::router())
        .merge(approval_policy::router())
        .merge(approvals::router())
        .merge(credential_approvals::router())
        .merge(print_shops::router())
        .merge(batches::router())
        .merge(cards::router())
        .merge(card_page::router())
        .merge(export_jobs::router())
        .merge(people::router())
        .merge(audit::router())
        .merge(goods::router())
        .merge(pickup::router())
        .merge(orders::router())
        .merge(order_pages::router())
        .merge(pickup_settings::router())
        .merge(open_api::router())
        .merge(card_sales::router())
        .merge(exchange::router())
        .merge(giftcards::router())
        .merge(codes::router())
        .merge(customers::router())
        .merge(api_keys::router())
        .merge(webhooks::router())
        .merge(sms::router())
        .merge(sms_pages::router())
        .merge(erp::router())
        .merge(waybills::router())
        .merge(coupons::router())
        .merge(credits::router())
        .merge(credit_pages::router())
        .merge(coupon_issues::router())
        .merge(locations::router())
        .merge(coupon_records::router())
        .merge(coupon_open::router())
        .merge(ecard_open::router())
        .merge(ecards::router())
        .merge(ecard_orders::router())
        .merge(ecard_analytics::router())
        .merge(ecard_pages::router())
        .merge(delivery::router())
        .merge(member_open::router())
        .merge(members::router())
        .merge(member_programs::router())
        .merge(member_pages::router())
        .merge(member_card::router())
        .merge(pay_gift::router())
        .merge(verify::router())
        .merge(wallet::router())
        .merge(coupon_pages::router())
        .merge(openapi::router())
        .route_layer(trace_layer())
        .fallback(extract::unknown_route)
        .method_not_allowed_fallback(extract::unknown_method)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            pages::frame_errors,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            i18n::layer,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            prometheus::track,
        ))
        .layer(DefaultBodyLimit::max(UPLOAD_BYTES_MAX))
        .layer(compression_layer())
        .with_state(state)
}

/// Serves until `shutdown` resolves. Takes a bound listener so tests can
/// bind port 0 and know the address before the first request.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let worker = outbox::spawn(state.clone());
    let sender = sms::spawn(state.clone());
    let pusher = erp::spawn(state.clone());
    let sweep = coupons::spawn_expiry_sweep(state.clone());
    let points = members::spawn_points_sweep(state.clone());
    let sealer = audit::spawn_sealer(state.clone());
    let resealer = resealer::spawn(state.clone());
    let store = state.store.clone();
    let served = axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await;
    worker.abort();
    sender.abort();
    pusher.abort();
    sweep.abort();
    points.abort();
    sealer.abort();
    resealer.abort();
    // The requests in flight are answered; what they wrote to the audit
    // log is sealed before the process goes.
    if let Err(error) = kaquan_core::audit::chain::seal_all(store.as_ref()).await {
        tracing::warn!(%error, "sealing the audit chain at shutdown failed");
    }
    served
}

/// Runs CPU-heavy work (parsing an upload, writing an export, hashing a
/// password) on the blocking pool, so the runtime's threads keep answering
/// every other request meanwhile.
pub async fn off_runtime<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, error::ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| error::ApiError::Internal(format!("blocking work failed: {e}")))
}

/// The current time in unix seconds.
pub fn now() -> i64 {
    use kaquan_core::clock::Clock;
    kaquan_core::clock::SystemClock.now()
}
