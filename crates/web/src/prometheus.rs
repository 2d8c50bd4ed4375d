//! `/metrics` (Prometheus text format), `/readyz` and the request counts
//! behind them. Everything is kept with the `metrics` facade in this
//! node's own Prometheus recorder (one per server, so servers in one
//! process, as in the tests, never share counts) and rendered by its
//! exporter:
//!
//! - `kaquan_http_requests_total{method, route, status}` and the histogram
//!   `kaquan_http_request_duration_seconds{method, route}`, by the route's
//!   pattern (`/api/v1/cards/{number}`), never the address asked for;
//! - `kaquan_operations_total{operation, outcome}`: redemptions, pickups and
//!   coupon verifications by outcome (`ok` or the refusal's stable code);
//! - the open API's counters for alerting (`kaquan_code_redemptions_total`,
//!   `…_failures_total`, `…_lockouts_total`,
//!   `kaquan_open_api_bad_signatures_total`) and webhook attempts by outcome;
//! - at each scrape, gauges: `kaquan_outbox_pending{queue}` and
//!   `kaquan_outbox_oldest_age_seconds{queue}`, `kaquan_export_jobs_running`,
//!   and the database engine's own (the SQLite writer's queue and groups,
//!   the PostgreSQL pool's use).

use crate::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use kaquan_core::ledger::{LedgerTransaction, Refusal};
use metrics::{Counter, Recorder};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/metrics", get(render_metrics))
        .route("/readyz", get(readyz))
}

/// The histogram's buckets, in seconds: a millisecond to ten seconds.
const DURATION_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// This node's recorder and the counters it keeps at hand.
pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    pub code_redemptions: Counter,
    pub code_redemption_failures: Counter,
    pub code_redemption_lockouts: Counter,
    pub bad_signatures: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let recorder = PrometheusBuilder::new()
            .set_buckets(&DURATION_BUCKETS)
            .expect("buckets are given")
            .build_recorder();
        let handle = recorder.handle();
        let counters = metrics::with_local_recorder(&recorder, || {
            let counter = |name: &'static str, help: &'static str| {
                metrics::describe_counter!(name, help);
                metrics::counter!(name)
            };
            metrics::describe_counter!(
                "kaquan_http_requests_total",
                "Requests answered, by method, route pattern and status."
            );
            metrics::describe_histogram!(
                "kaquan_http_request_duration_seconds",
                metrics::Unit::Seconds,
                "Time to answer, by method and route pattern."
            );
            metrics::describe_counter!(
                "kaquan_operations_total",
                "Redemptions, pickups and coupon verifications by outcome: ok or the refusal's code."
            );
            metrics::describe_counter!(
                "kaquan_webhook_attempts_total",
                "Webhook delivery attempts by the delivery's state after them."
            );
            (
                counter(
                    "kaquan_code_redemptions_total",
                    "Code redemption attempts (customer pages and open API).",
                ),
                counter(
                    "kaquan_code_redemption_failures_total",
                    "Redemption attempts refused as wrong, used, expired or unknown codes; alert on its rate against the total.",
                ),
                counter(
                    "kaquan_code_redemption_lockouts_total",
                    "Redemption attempts refused by the attempt limit (兑换防刷).",
                ),
                counter(
                    "kaquan_open_api_bad_signatures_total",
                    "Open-API requests rejected for their signature, timestamp or nonce.",
                ),
            )
        });
        Self {
            recorder,
            handle,
            code_redemptions: counters.0,
            code_redemption_failures: counters.1,
            code_redemption_lockouts: counters.2,
            bad_signatures: counters.3,
        }
    }
}

impl Metrics {
    /// Runs `record` against this node's recorder.
    fn with<T>(&self, record: impl FnOnce() -> T) -> T {
        metrics::with_local_recorder(&self.recorder as &dyn Recorder, record)
    }

    /// Counts one redemption attempt by its outcome.
    pub fn count_redemption(&self, result: &Result<LedgerTransaction, Refusal>) {
        self.code_redemptions.increment(1);
        match result {
            Err(Refusal::CodeRefused) => self.code_redemption_failures.increment(1),
            Err(Refusal::Locked { .. }) => self.code_redemption_lockouts.increment(1),
            _ => {}
        }
        let outcome = match result {
            Ok(_) => "ok",
            Err(refusal) => refusal.code(),
        };
        self.count_operation("redemption", outcome);
    }

    /// Counts one coupon verification by its outcome.
    pub fn count_verification<T>(
        &self,
        result: &Result<T, kaquan_core::coupon::refusal::CouponRefusal>,
    ) {
        let outcome = match result {
            Ok(_) => "ok",
            Err(refusal) => refusal.code(),
        };
        self.count_operation("coupon_verification", outcome);
    }

    /// Counts one operation (`redemption`, `pickup`, `coupon_verification`)
    /// by its outcome: `ok` or a refusal's stable code.
    pub fn count_operation(&self, operation: &'static str, outcome: &'static str) {
        self.with(|| {
            metrics::counter!("kaquan_operations_total", "operation" => operation, "outcome" => outcome)
                .increment(1)
        });
    }

    /// Counts one webhook attempt by the delivery's state after it.
    pub fn count_webhook_attempt(&self, outcome: &'static str) {
        self.with(|| {
            metrics::counter!("kaquan_webhook_attempts_total", "outcome" => outcome).increment(1)
        });
    }

    fn count_request(&self, method: String, route: String, status: u16, seconds: f64) {
        self.with(|| {
            metrics::counter!(
                "kaquan_http_requests_total",
                "method" => method.clone(), "route" => route.clone(), "status" => status.to_string()
            )
            .increment(1);
            metrics::histogram!(
                "kaquan_http_request_duration_seconds",
                "method" => method, "route" => route
            )
            .record(seconds);
        });
    }

    fn set_gauge(&self, name: String, labels: &[(&'static str, String)], value: f64) {
        self.with(|| {
            let labels: Vec<metrics::Label> = labels
                .iter()
                .map(|(k, v)| metrics::Label::new(*k, v.clone()))
                .collect();
            metrics::gauge!(name, labels).set(value)
        });
    }
}

/// Counts every request by its route's pattern; an address no route
/// matched counts as `unmatched`, so a scan of random paths adds one series.
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    state.metrics.count_request(
        method,
        route,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

/// Sets the gauges read at each scrape.
async fn set_gauges(state: &AppState) {
    let m = &state.metrics;
    match state.store.outbox_backlog().await {
        Ok(queues) => {
            let now = crate::now();
            for q in queues {
                let labels = [("queue", q.queue.to_owned())];
                m.set_gauge("kaquan_outbox_pending".into(), &labels, q.pending as f64);
                let age = q.oldest_created_at.map_or(0, |at| (now - at).max(0));
                m.set_gauge(
                    "kaquan_outbox_oldest_age_seconds".into(),
                    &labels,
                    age as f64,
                );
            }
        }
        Err(error) => tracing::warn!(%error, "reading the outbox backlog for /metrics failed"),
    }
    m.set_gauge(
        "kaquan_export_jobs_running".into(),
        &[],
        state.export_jobs.running() as f64,
    );
    for g in state.store.engine_gauges() {
        m.with(|| metrics::describe_gauge!(format!("kaquan_{}", g.name), g.help));
        m.set_gauge(format!("kaquan_{}", g.name), &[], g.value);
    }
}

async fn render_metrics(State(state): State<AppState>) -> Response {
    set_gauges(&state).await;
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.handle.render(),
    )
        .into_response()
}

/// 200 when the database answers and holds every migration this binary
/// knows; 503 with the reason otherwise, so a load balancer sends no
/// traffic to a node that cannot serve it.
async fn readyz(State(state): State<AppState>) -> Response {
    match state.store.readiness().await {
        Ok(()) => (StatusCode::OK, "ready").into_response(),
        Err(reason) => {
            tracing::warn!(%reason, "not ready");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("not ready: {reason}"),
            )
                .into_response()
        }
    }
}
