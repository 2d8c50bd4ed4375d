//! A webhook receiver on 127.0.0.1: it keeps every request's headers and raw
//! body and answers with the statuses it is given.

use axum::http::HeaderMap;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// One request as the receiver saw it: its headers and raw body.
pub type Seen = (HeaderMap, Vec<u8>);

/// What the receiver saw, and what it answers.
#[derive(Clone, Default)]
pub struct Receiver {
    pub seen: Arc<Mutex<Vec<Seen>>>,
    /// The statuses to answer with, in order; 200 once they run out.
    pub answers: Arc<Mutex<VecDeque<u16>>>,
}

impl Receiver {
    pub async fn start(answers: &[u16]) -> (Self, String) {
        let receiver = Receiver::default();
        receiver.answers.lock().unwrap().extend(answers);
        let r = receiver.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
                let r = r.clone();
                async move {
                    r.seen.lock().unwrap().push((headers, body.to_vec()));
                    let status = r.answers.lock().unwrap().pop_front().unwrap_or(200);
                    axum::http::StatusCode::from_u16(status).unwrap()
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (receiver, url)
    }

    /// Waits until at least `n` requests arrived; returns them.
    pub async fn wait_for(&self, n: usize) -> Vec<Seen> {
        super::browser::wait_until(&format!("{n} requests"), || async {
            let seen = self.seen.lock().unwrap().clone();
            (seen.len() >= n).then_some(seen)
        })
        .await
    }
}
