//! The outbox's worker (事件推送): it fans recorded events out into
//! deliveries and sends each due delivery to its endpoint, signed as
//! Standard Webhooks says, with at most [`CONCURRENT_DELIVERIES_MAX`] at
//! once. It runs beside the server on every node; the store's leases keep
//! two nodes from sending one delivery at once.
//!
//! Outbound requests time out, read at most [`RESPONSE_BYTES_MAX`] of an
//! answer, never follow a redirect, and never reach a loopback, private or
//! link-local address unless the operator allowed it (SSRF): the resolver
//! drops such addresses, so a name cannot be pointed at one after it was
//! checked.

use crate::AppState;
use kaquan_core::event::{
    after_attempt, is_public_address, open_secrets, signature_header, AttemptOutcome,
    ClaimedDelivery,
};
use kaquan_core::{Conflict, StoreError};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// Deliveries in flight per node.
pub const CONCURRENT_DELIVERIES_MAX: usize = 64;
/// How long one attempt may take (Standard Webhooks suggests 15–30 s).
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(15);
/// A claimed delivery's lease: longer than any attempt, so it never ends
/// while the attempt runs.
const LEASE_SECONDS: i64 = 60;
/// Events fanned out per step.
const DISPATCH_BATCH: i64 = 500;
/// A busy worker claims when this many slots are free (or after
/// [`CLAIM_GATHER`]): one claim per delivery would double the writes.
const CLAIM_BATCH_MIN: usize = 16;
const CLAIM_GATHER: Duration = Duration::from_millis(2);
/// How long the worker rests when there is nothing to do.
const IDLE: Duration = Duration::from_millis(200);
/// The most of an answer kept (the rest is not read).
pub const RESPONSE_BYTES_MAX: usize = 64 * 1024;
/// The most of an answer shown in the delivery log.
const EXCERPT_CHARS_MAX: usize = 200;

/// Where webhooks may go.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WebhookPolicy {
    /// Loopback and private addresses too (an operator's own network, tests).
    pub allow_private_addresses: bool,
}

impl WebhookPolicy {
    fn allows(self, ip: IpAddr) -> bool {
        self.allow_private_addresses || is_public_address(ip)
    }

    /// Checks an endpoint's address as the merchant types it: http or https,
    /// a host, no user or password, and no refused literal address.
    pub fn check_url(self, text: &str) -> Result<reqwest::Url, String> {
        let text = text.trim();
        if text.chars().count() > 2_000 {
            return Err("推送地址最多 2000 个字符".into());
        }
        let url = reqwest::Url::parse(text)
            .map_err(|_| "推送地址应为完整网址，如 https://erp.example.com/kaquan".to_owned())?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err("推送地址须以 http:// 或 https:// 开头".into());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("推送地址不能包含用户名或密码".into());
        }
        let refused = || Err("推送地址不能是本机或内网地址".to_owned());
        match url.host() {
            None => return Err("推送地址缺少主机名".into()),
            Some(url::Host::Ipv4(ip)) if !self.allows(ip.into()) => return refused(),
            Some(url::Host::Ipv6(ip)) if !self.allows(ip.into()) => return refused(),
            Some(url::Host::Domain(name))
                if !self.allow_private_addresses
                    && (name.eq_ignore_ascii_case("localhost")
                        || name.to_ascii_lowercase().ends_with(".localhost")) =>
            {
                return refused()
            }
            Some(_) => {}
        }
        Ok(url)
    }
}

/// Resolves names as the system does, then drops every address the policy
/// refuses; a name left with none fails to connect.
struct GuardedResolver(WebhookPolicy);

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.0;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| policy.allows(a.ip()))
                .collect();
            if found.is_empty() {
                return Err(Box::new(RefusedAddress) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(found.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[derive(Debug)]
struct RefusedAddress;

impl std::fmt::Display for RefusedAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the name resolves only to refused addresses")
    }
}

impl std::error::Error for RefusedAddress {}

/// The one HTTP client of a node's webhooks.
pub fn http_client(policy: WebhookPolicy) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(ATTEMPT_TIMEOUT)
        .connect_timeout(Duration::from_secs(5))
        .user_agent(concat!("kaquan-webhooks/", env!("CARGO_PKG_VERSION")))
        .dns_resolver(Arc::new(GuardedResolver(policy)))
        .build()
        .expect("the webhook client builds")
}

/// Starts the worker; it stops when the returned handle is aborted.
pub fn spawn(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(run(state))
}

async fn run(state: AppState) {
    let client = http_client(state.webhook_policy);
    let slots = Arc::new(Semaphore::new(CONCURRENT_DELIVERIES_MAX));
    let mut dispatched = 0;
    let mut dispatched_at = Instant::now() - IDLE;
    loop {
        let now = crate::now();
        // Fan out while there is more to fan out, else at most every IDLE.
        if dispatched > 0 || dispatched_at.elapsed() >= IDLE {
            dispatched_at = Instant::now();
            dispatched = match state.store.dispatch_events(DISPATCH_BATCH, now).await {
                Ok(n) => n,
                Err(error) => {
                    tracing::warn!(%error, "fanning events out failed; will retry");
                    0
                }
            };
        }
        // Wait for a free slot (not for the idle pause); when most slots
        // are busy, let a few more deliveries end so claims come in batches.
        let first = Arc::clone(&slots)
            .acquire_owned()
            .await
            .expect("the semaphore stays open");
        if slots.available_permits() + 1 < CLAIM_BATCH_MIN {
            tokio::time::sleep(CLAIM_GATHER).await;
        }
        let mut permits = vec![first];
        while let Ok(permit) = Arc::clone(&slots).try_acquire_owned() {
            permits.push(permit);
        }
        let claimed = match state
            .store
            .claim_deliveries(permits.len() as i64, LEASE_SECONDS, now)
            .await
        {
            Ok(claimed) => claimed,
            Err(error) => {
                tracing::warn!(%error, "claiming deliveries failed; will retry");
                Vec::new()
            }
        };
        let idle = dispatched == 0 && claimed.is_empty();
        for (delivery, permit) in claimed.into_iter().zip(permits.drain(..)) {
            let (state, client) = (state.clone(), client.clone());
            tokio::spawn(async move {
                deliver(&state, &client, delivery).await;
                drop(permit);
            });
        }
        // The permits not used go back here.
        drop(permits);
        if idle {
            tokio::time::sleep(IDLE).await;
        }
    }
}

/// One attempt of one delivery, and its outcome recorded.
pub async fn deliver(state: &AppState, client: &reqwest::Client, claimed: ClaimedDelivery) {
    let outcome = attempt(state, client, &claimed).await;
    let now = crate::now();
    let jitter = rand::random::<u16>() as i64 % 1_000;
    let (delivery_state, next) = after_attempt(claimed.round_attempt, &outcome, now, jitter);
    state.metrics.count_webhook_attempt(delivery_state.code());
    match state
        .store
        .record_attempt(&claimed, &outcome, delivery_state, next, now)
        .await
    {
        Ok(()) => {}
        Err(StoreError::Conflict(Conflict::DeliveryLeaseLost)) => {
            tracing::warn!(
                delivery.id = claimed.delivery_id,
                "a webhook attempt outlived its lease; its outcome was dropped"
            );
        }
        Err(error) => {
            tracing::warn!(%error, delivery.id = claimed.delivery_id, "recording a webhook attempt failed")
        }
    }
}

async fn attempt(
    state: &AppState,
    client: &reqwest::Client,
    claimed: &ClaimedDelivery,
) -> AttemptOutcome {
    let started = Instant::now();
    let failed = |error: String, status: Option<u16>| AttemptOutcome {
        status,
        error,
        duration_ms: started.elapsed().as_millis() as i64,
    };
    let url = match state.webhook_policy.check_url(&claimed.url) {
        Ok(url) => url,
        Err(message) => return failed(message, None),
    };
    let secrets = open_secrets(&state.master, claimed);
    if secrets.is_empty() {
        return failed("推送密钥无法解密".into(), None);
    }
    let body = claimed.event.body();
    let webhook_id = claimed.event.webhook_id();
    let timestamp = crate::now();
    let request = client
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", &webhook_id)
        .header("webhook-timestamp", timestamp.to_string())
        .header(
            "webhook-signature",
            signature_header(&secrets, &webhook_id, timestamp, body.as_bytes()),
        )
        .body(body);
    let mut response = match request.send().await {
        Ok(response) => response,
        Err(error) => return failed(describe(&error), None),
    };
    let status = response.status().as_u16();
    let mut kept = Vec::new();
    while kept.len() < RESPONSE_BYTES_MAX {
        match response.chunk().await {
            Ok(Some(chunk)) => kept.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    let outcome = AttemptOutcome {
        status: Some(status),
        error: String::new(),
        duration_ms: started.elapsed().as_millis() as i64,
    };
    if outcome.succeeded() {
        return outcome;
    }
    let excerpt: String = String::from_utf8_lossy(&kept)
        .chars()
        .filter(|c| !c.is_control())
        .take(EXCERPT_CHARS_MAX)
        .collect();
    failed(
        format!("HTTP {status} {excerpt}").trim().to_owned(),
        Some(status),
    )
}

/// A failed request in the merchant's words.
fn describe(error: &reqwest::Error) -> String {
    let mut source: Option<&dyn std::error::Error> = Some(error);
    while let Some(e) = source {
        if e.is::<RefusedAddress>() {
            return "推送地址解析到本机或内网地址，已拒绝".into();
        }
        source = e.source();
    }
    if error.is_timeout() {
        format!("超时（{} 秒）", ATTEMPT_TIMEOUT.as_secs())
    } else if error.is_connect() {
        "无法连接推送地址".into()
    } else {
        "请求失败".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_addresses_are_http_and_not_internal_unless_allowed() {
        let strict = WebhookPolicy::default();
        let open = WebhookPolicy {
            allow_private_addresses: true,
        };
        for ok in [
            "https://erp.example.com/kaquan",
            "http://8.8.8.8:8080/hook",
            " https://example.com/x?y=1 ",
        ] {
            assert!(strict.check_url(ok).is_ok(), "{ok}");
        }
        for refused in [
            "http://127.0.0.1/",
            "http://localhost:8080/",
            "http://a.localhost/",
            "http://[::1]/",
            "http://10.0.0.1/",
            "http://169.254.169.254/latest/meta-data",
            "http://[::ffff:127.0.0.1]/",
        ] {
            assert_eq!(
                strict.check_url(refused).unwrap_err(),
                "推送地址不能是本机或内网地址",
                "{refused}"
            );
            assert!(open.check_url(refused).is_ok(), "{refused}");
        }
        for bad in [
            "ftp://example.com/",
            "file:///etc/passwd",
            "example.com/hook",
            "https://user:pw@example.com/",
            "",
        ] {
            assert!(open.check_url(bad).is_err(), "{bad}");
        }
        assert!(open
            .check_url(&format!("https://example.com/{}", "a".repeat(2_000)))
            .is_err());
    }
}
