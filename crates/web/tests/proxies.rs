//! Behind a trusted reverse proxy the per-client sign-in limit counts each
//! client named by `X-Forwarded-For` (its right-most untrusted hop), so a
//! guesser locks only their own address; a client's own writing to the left
//! of that hop changes nothing; and without trusted proxies the header is
//! ignored, so it cannot be used to dodge the limit.

mod common;

use common::{Backend, TestApp};
use kaquan_core::auth::LOGIN_FAILURES_PER_CLIENT_MAX;
use kaquan_web::client_address::TrustedProxies;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_each_client_is_limited_alone_on_sqlite() {
    behind_a_proxy(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_each_client_is_limited_alone_on_postgres() {
    behind_a_proxy(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_trusted_proxies_the_header_is_ignored() {
    let app = TestApp::start(Backend::Sqlite).await;
    for idx in 0..LOGIN_FAILURES_PER_CLIENT_MAX {
        let forwarded = format!("198.51.100.{idx}");
        sign_in(&app, &format!("guess{idx}"), "wrong1234", &forwarded).await;
    }
    assert_eq!(
        sign_in(&app, "owner", common::PASSWORD, "192.0.2.1").await,
        429,
        "every failure counted against the peer"
    );
}

/// A sign-in through the proxy for the client `forwarded`; its status.
async fn sign_in(app: &TestApp, username: &str, password: &str, forwarded: &str) -> u16 {
    reqwest::Client::new()
        .post(app.url("/api/v1/sessions"))
        .header("x-forwarded-for", forwarded)
        .json(&serde_json::json!({"username": username, "password": password}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn behind_a_proxy(backend: Backend) {
    let trusted = TrustedProxies::parse(["127.0.0.1/32"]).unwrap();
    let app = TestApp::start_with(backend, |state| state.with_trusted_proxies(trusted)).await;
    let guesser = "203.0.113.5";
    for idx in 0..LOGIN_FAILURES_PER_CLIENT_MAX {
        let expected = if idx + 1 < LOGIN_FAILURES_PER_CLIENT_MAX {
            422
        } else {
            429
        };
        let status = sign_in(&app, &format!("guess{idx}"), "wrong1234", guesser).await;
        assert_eq!(status, expected, "attempt {idx}");
    }
    assert_eq!(sign_in(&app, "owner", common::PASSWORD, guesser).await, 429);
    // What the guesser writes before the proxy's hop changes nothing.
    let spoofed = format!("198.51.100.7, {guesser}");
    assert_eq!(
        sign_in(&app, "owner", common::PASSWORD, &spoofed).await,
        429
    );
    // Another client behind the same proxy signs in.
    assert_eq!(
        sign_in(&app, "owner", common::PASSWORD, "198.51.100.7").await,
        200
    );
}
