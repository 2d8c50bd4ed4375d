//! Every routed request runs in one `request` span that says what an
//! operator needs (method, matched route, merchant, status, duration), and
//! personal data and secrets never reach the log. Its own test binary: it
//! installs the process's one tracing subscriber, writing to a buffer.

mod common;

use std::sync::{Arc, Mutex};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_runs_in_a_span_with_its_route_merchant_status_and_duration() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();
    let app = common::TestApp::start(common::Backend::Sqlite).await;
    let owner = app.client("owner").await;
    let (status, _) = owner.get("/api/v1/cards?batch_id=7").await;
    assert_eq!(status, 200);
    let (status, _) = owner.get("/api/v1/orders/999999").await;
    assert_eq!(status, 404);
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let finished: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("request finished"))
        .collect();
    let cards = finished
        .iter()
        .find(|l| l.contains("route=/api/v1/cards "))
        .unwrap_or_else(|| panic!("no span for the card list in:\n{log}"));
    for field in [
        "request{",
        "method=GET",
        "merchant.id=",
        "status=200",
        "duration_ms=",
    ] {
        assert!(cards.contains(field), "{field} missing: {cards}");
    }
    assert!(
        !cards.contains("batch_id=7"),
        "the route, never the raw path or query: {cards}"
    );
    let order = finished
        .iter()
        .find(|l| l.contains("route=/api/v1/orders/{order_id}"))
        .unwrap_or_else(|| panic!("no span for the order in:\n{log}"));
    assert!(order.contains("status=404"), "{order}");
    assert!(!log.contains(common::PASSWORD), "no password in the log");
}
