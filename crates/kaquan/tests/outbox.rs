//! The outbox as operators run it: `kaquan serve` killed mid-delivery, and
//! two nodes sharing one PostgreSQL database, seen from a receiver that
//! deduplicates by `webhook-id` as Standard Webhooks tells receivers to.

mod common;
use common::*;

use axum::http::HeaderMap;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What a deduplicating receiver saw of each `webhook-id`.
#[derive(Default)]
struct Seen {
    /// Requests that arrived, whether or not they were answered.
    arrived: HashMap<String, usize>,
    /// Requests answered 2xx: a receiver processes an id the first time.
    acknowledged: HashMap<String, usize>,
    /// Requests of one id being handled right now, and the most ever.
    in_flight: HashMap<String, usize>,
    most_in_flight: usize,
}

#[derive(Clone, Default)]
struct Receiver {
    seen: Arc<Mutex<Seen>>,
    /// While set, requests are held unanswered, as a receiver that hangs.
    hold: Arc<std::sync::atomic::AtomicBool>,
    /// Answer 500 to the first attempt of every n-th event (0: never).
    fail_every: usize,
}

impl Receiver {
    async fn start(self) -> (Self, String) {
        let receiver = self.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap| {
                let r = receiver.clone();
                async move { r.handle(&headers).await }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (self, url)
    }

    async fn handle(&self, headers: &HeaderMap) -> axum::http::StatusCode {
        let id = headers["webhook-id"].to_str().unwrap().to_owned();
        let first_arrival = {
            let mut seen = self.seen.lock().unwrap();
            let arrived = seen.arrived.entry(id.clone()).or_default();
            *arrived += 1;
            let first = *arrived == 1;
            let in_flight = seen.in_flight.entry(id.clone()).or_default();
            *in_flight += 1;
            let now = *in_flight;
            seen.most_in_flight = seen.most_in_flight.max(now);
            first
        };
        if self.hold.load(std::sync::atomic::Ordering::SeqCst) {
            // Never answers: the sender is killed while it waits.
            std::future::pending::<()>().await;
        }
        // Long enough that a second sender of the same id would overlap.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let number: usize = id.trim_start_matches("evt_").parse().unwrap();
        let fail = first_arrival && self.fail_every > 0 && number.is_multiple_of(self.fail_every);
        let mut seen = self.seen.lock().unwrap();
        *seen.in_flight.get_mut(&id).unwrap() -= 1;
        if fail {
            return axum::http::StatusCode::INTERNAL_SERVER_ERROR;
        }
        *seen.acknowledged.entry(id).or_default() += 1;
        axum::http::StatusCode::NO_CONTENT
    }

    /// Waits up to `seconds` until `done` holds of what was seen.
    async fn wait_until(&self, seconds: u64, done: impl Fn(&Seen) -> bool) {
        let what = "the receiver to see the deliveries";
        common::wait_until(what, Duration::from_secs(seconds), || async {
            done(&self.seen.lock().unwrap()).then_some(())
        })
        .await;
    }
}

/// Adds a webhook endpoint through the console's API.
async fn add_endpoint(
    http: &reqwest::Client,
    address: &str,
    csrf: &str,
    url: &str,
    types: &[&str],
) {
    let response = http
        .post(format!("http://{address}/api/v1/webhook-endpoints"))
        .header("x-csrf-token", csrf)
        .json(&serde_json::json!({"url": url, "event_types": types}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "{:?}", response.text().await);
}

fn signed_in_client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap()
}

fn kill(mut server: std::process::Child) {
    // SIGKILL: no shutdown hook runs, as when the power goes.
    server.kill().unwrap();
    server.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_killed_mid_delivery_delivers_the_pickup_order_once_after_restart() {
    let env = Env::sqlite().allow_private_webhooks().with_owner().await;
    let receiver = Receiver::default();
    receiver
        .hold
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let (receiver, url) = receiver.start().await;
    let (server, address) = start_server(&env);
    let http = signed_in_client();
    let csrf = sign_in(&http, &address).await;
    add_endpoint(&http, &address, &csrf, &url, &["pickup_order.created"]).await;
    let (env, card) = card_with_goods(env, &http, &address, &csrf).await;
    let response = reqwest::Client::new()
        .post(format!("http://{address}/m/1/redeem/confirm"))
        .form(&card.pickup_form())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // The order committed and its delivery is in flight, unanswered: now
    // the server dies.
    receiver
        .wait_until(30, |seen| seen.arrived.len() == 1)
        .await;
    kill(server);
    receiver
        .hold
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let (server, _) = start_server(&env);
    // The dead attempt's lease (60 s) runs out; the restarted node sends again.
    receiver
        .wait_until(120, |seen| !seen.acknowledged.is_empty())
        .await;
    // Once recorded delivered, nothing sends it again: wait for that.
    let db = rusqlite::Connection::open(env.dir.join("kaquan.db")).unwrap();
    let delivered = || {
        db.query_row(
            "SELECT count(*) FROM webhook_deliveries WHERE state = 'delivered'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .unwrap()
            == 1
    };
    common::wait_until(
        "the delivery recorded delivered",
        Duration::from_secs(10),
        || async { delivered().then_some(()) },
    )
    .await;
    kill(server);
    let seen = receiver.seen.lock().unwrap();
    assert_eq!(seen.arrived.len(), 1, "one event, one webhook-id");
    let (id, arrivals) = seen.arrived.iter().next().unwrap();
    assert_eq!(*arrivals, 2, "the killed attempt and the one after restart");
    assert_eq!(seen.acknowledged[id], 1);
    let (state, attempts): (String, i64) = db
        .query_row("SELECT state, attempts FROM webhook_deliveries", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!((state.as_str(), attempts), ("delivered", 2));
    let events: i64 = db
        .query_row(
            "SELECT count(*) FROM events WHERE event_type = 'pickup_order.created'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(events, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_nodes_on_postgres_deliver_a_thousand_events_each_once_never_twice_at_once() {
    let env = Env::postgres()
        .await
        .allow_private_webhooks()
        .with_owner()
        .await;
    let receiver = Receiver {
        fail_every: 50,
        ..Receiver::default()
    };
    let (receiver, url) = receiver.start().await;
    let (first, first_address) = start_server(&env);
    let (second, _) = start_server(&env);
    let http = signed_in_client();
    let csrf = sign_in(&http, &first_address).await;
    add_endpoint(&http, &first_address, &csrf, &url, &[]).await;
    let (client, connection) = tokio_postgres_connect(&env.url).await;
    tokio::spawn(connection);
    client
        .execute(
            "INSERT INTO events (merchant_id, event_type, data, created_at) \
             SELECT 1, 'balance.changed', json_build_object('n', g)::text, \
             extract(epoch FROM now())::bigint FROM generate_series(1, 1000) g",
            &[],
        )
        .await
        .unwrap();
    // Every 50th event fails once and comes back after the first retry delay.
    receiver
        .wait_until(120, |seen| seen.acknowledged.len() == 1000)
        .await;
    // Once all are recorded delivered, nothing sends one again: wait for that.
    common::wait_until(
        "all 1000 recorded delivered",
        Duration::from_secs(10),
        || async {
            let delivered: i64 = client
                .query_one(
                    "SELECT count(*) FROM webhook_deliveries WHERE state = 'delivered'",
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            (delivered == 1000).then_some(())
        },
    )
    .await;
    kill(first);
    kill(second);
    {
        let seen = receiver.seen.lock().unwrap();
        assert_eq!(seen.most_in_flight, 1, "one event was sent twice at once");
        assert!(
            seen.acknowledged.values().all(|n| *n == 1),
            "an acknowledged event was sent again"
        );
        assert_eq!(seen.arrived.values().filter(|n| **n == 2).count(), 20);
    }
    let rows = client
        .query(
            "SELECT state, count(*) FROM webhook_deliveries GROUP BY state",
            &[],
        )
        .await
        .unwrap();
    let states: Vec<(String, i64)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(states, vec![("delivered".to_owned(), 1000)]);
}
