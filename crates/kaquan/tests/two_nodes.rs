//! Two `kaquan serve` nodes on one PostgreSQL behind nginx, configured with
//! `deploy/nginx.conf` itself: one node is killed while redemptions pour
//! in. Requests keep being answered by the other node; the only failures
//! are those in flight on the killed node, and the client's retry of those
//! with the same Idempotency-Key (a fresh signature) redeems each code
//! exactly once: every balance is right and `kaquan verify` passes.

mod common;

use common::{key_and_codes, signed_post, start_server, Env};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// nginx running `deploy/nginx.conf` in front of `nodes`, on a free port.
struct Nginx {
    child: std::process::Child,
    address: String,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn nginx(dir: &std::path::Path, nodes: [&str; 2]) -> Nginx {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let site = include_str!("../../../deploy/nginx.conf")
        .replace("127.0.0.1:8081", nodes[0])
        .replace("127.0.0.1:8082", nodes[1])
        .replace("listen 80;", &format!("listen 127.0.0.1:{port};"));
    let d = dir.display();
    let conf = format!(
        "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/nginx-error.log;\n\
         events {{ worker_connections 256; }}\n\
         http {{\n access_log off;\n client_body_temp_path {d}/nginx-body;\n proxy_temp_path {d}/nginx-proxy;\n\
         fastcgi_temp_path {d}/nginx-fcgi;\n uwsgi_temp_path {d}/nginx-uwsgi;\n scgi_temp_path {d}/nginx-scgi;\n{site}\n}}\n"
    );
    let path = dir.join("nginx.conf");
    std::fs::write(&path, conf).unwrap();
    let child = std::process::Command::new("nginx")
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(&path)
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("nginx (Debian package nginx) is installed");
    // Dropped (killed and waited for) on every path from here.
    let nginx = Nginx {
        child,
        address: format!("127.0.0.1:{port}"),
    };
    for _ in 0..100 {
        if std::net::TcpStream::connect(&nginx.address).is_ok() {
            return nginx;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!(
        "nginx did not start: {}",
        std::fs::read_to_string(dir.join("nginx-error.log")).unwrap_or_default()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_one_of_two_nodes_behind_nginx_loses_nothing_and_redeems_once() {
    const CODES: usize = 600;
    let env = Env::postgres().await;
    let (env, (key_id, secret, codes)) = tokio::task::spawn_blocking(move || {
        env.setup();
        let made = key_and_codes(&env, CODES);
        (env, made)
    })
    .await
    .unwrap();
    let (mut a, a_address) = start_server(&env);
    let (mut b, b_address) = start_server(&env);
    let proxy = nginx(&env.dir, [&a_address, &b_address]);
    let http = reqwest::Client::new();
    let (next, answered, failed) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
    );
    let codes = Arc::new(codes);
    const CLIENTS: usize = 8;
    let workers: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (http, address, key) = (http.clone(), proxy.address.clone(), (key_id.clone(), secret.clone()));
            let (next, answered, failed, codes) = (next.clone(), answered.clone(), failed.clone(), codes.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(code) = codes.get(i) else { return };
                    let body = serde_json::json!({"customer_id": format!("c{}", i % 20), "code": code, "client_ip": format!("10.1.0.{}", i % 200)});
                    // A failure is retried with the same Idempotency-Key, as the README says.
                    for attempt in 0.. {
                        let (status, answer) = signed_post(&http, &address, (&key.0, &key.1), "/open/v1/redemptions", &body, &format!("redeem-{i}")).await;
                        if status == 201 {
                            answered.fetch_add(1, Ordering::SeqCst);
                            break;
                        }
                        assert!((502..=504).contains(&status), "code {i}: {status} {answer}");
                        failed.fetch_add(1, Ordering::SeqCst);
                        assert!(attempt < 20, "code {i} never went through");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    }
                }
            })
        })
        .collect();
    // Mid-load, node A goes away at once (no graceful shutdown).
    while answered.load(Ordering::SeqCst) < CODES / 3 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    a.kill().unwrap();
    a.wait().unwrap();
    for worker in workers {
        worker.await.unwrap();
    }
    assert_eq!(answered.load(Ordering::SeqCst), CODES);
    eprintln!(
        "{CODES} redemptions through nginx, {} answered 502–504 and retried",
        failed.load(Ordering::SeqCst)
    );
    assert!(
        failed.load(Ordering::SeqCst) <= CLIENTS,
        "only requests in flight on the killed node fail: {}",
        failed.load(Ordering::SeqCst)
    );
    // Each code once: twenty customers, ¥50 a code.
    for customer in 0..20 {
        let path = format!("/open/v1/customers/c{customer}/balance");
        let answer = common::signed_get(&http, &b_address, (&key_id, &secret), &path).await;
        let n_codes = (0..CODES).filter(|i| i % 20 == customer).count() as i64;
        assert_eq!(
            answer["balance_fen"],
            n_codes * 5_000,
            "c{customer}: {answer}"
        );
    }
    let _ = b.kill();
    let _ = b.wait();
    drop(proxy);
    let env = Arc::new(env);
    let verify = env.clone();
    tokio::task::spawn_blocking(move || verify.run(&["verify"]))
        .await
        .unwrap();
}
