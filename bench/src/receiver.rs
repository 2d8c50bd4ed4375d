//! `receive-webhooks N ADDRESS_FILE`: a bare HTTP/1.1 receiver for
//! `bench/webhooks.sh`. It listens on 127.0.0.1, writes its address to
//! ADDRESS_FILE, answers every POST `204` (keep-alive), and once N requests
//! carrying a `webhook-id` have arrived prints one JSON line with the seconds
//! from the first to the N-th. Requests without the header (the floor's wrk
//! run) are answered alike and not counted.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ANSWER: &[u8] = b"HTTP/1.1 204 No Content\r\n\r\n";

struct Counter {
    target: i64,
    seen: AtomicI64,
    first: OnceLock<Instant>,
    done: tokio::sync::Notify,
}

pub fn receive(n: i64, address_file: &str) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        std::fs::write(address_file, format!("http://{address}/hook")).unwrap();
        let counter = Arc::new(Counter {
            target: n,
            seen: AtomicI64::new(0),
            first: OnceLock::new(),
            done: tokio::sync::Notify::new(),
        });
        let accept = {
            let counter = Arc::clone(&counter);
            async move {
                loop {
                    let (socket, _) = listener.accept().await.unwrap();
                    tokio::spawn(serve_connection(socket, Arc::clone(&counter)));
                }
            }
        };
        tokio::select! {
            _ = accept => {}
            _ = counter.done.notified() => {}
        }
        let seconds = counter.first.get().unwrap().elapsed().as_secs_f64();
        println!(
            "{{\"what\":\"receive-webhooks\",\"n\":{n},\"seconds\":{seconds:.3},\"per_second\":{:.0}}}",
            n as f64 / seconds
        );
    });
}

/// Serves one connection's requests in turn until the peer closes it.
async fn serve_connection(mut socket: tokio::net::TcpStream, counter: Arc<Counter>) {
    let mut buffer = Vec::with_capacity(8192);
    let mut chunk = [0u8; 8192];
    loop {
        // One request: the head up to the blank line, then Content-Length bytes.
        let (head_end, length, counted) = loop {
            if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buffer[..end]).to_ascii_lowercase();
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                break (end + 4, length, head.contains("\nwebhook-id:"));
            }
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        };
        while buffer.len() < head_end + length {
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        }
        buffer.drain(..head_end + length);
        if counted {
            counter.first.get_or_init(Instant::now);
        }
        if socket.write_all(ANSWER).await.is_err() {
            return;
        }
        if counted && counter.seen.fetch_add(1, Ordering::SeqCst) + 1 == counter.target {
            counter.done.notify_one();
        }
    }
}
