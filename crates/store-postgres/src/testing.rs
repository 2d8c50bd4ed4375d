//! Test support: makes a new, empty database beside the one `admin_url`
//! points at and returns its URL, so tests can run in parallel. The server
//! must be reachable: a missing PostgreSQL fails the test, never skips it.
/// Where tests find PostgreSQL unless `KAQUAN_TEST_POSTGRES_URL` says otherwise.
pub const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

fn admin_url() -> String {
    std::env::var("KAQUAN_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_ADMIN_URL.to_owned())
}

pub(crate) async fn admin_client() -> tokio_postgres::Client {
    let admin_url = admin_url();
    let (client, connection) = tokio_postgres::connect(&admin_url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL must be running for the tests ({admin_url}): {e}"));
    tokio::spawn(connection);
    client
}

/// A database of one test's own, dropped when the test ends, whether it
/// passed or failed (the guard drops as the test unwinds).
pub struct TestDatabase {
    pub url: String,
    name: String,
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Drop may run inside the test's runtime, which cannot be
        // blocked on: the statement runs on a thread of its own.
        let name = self.name.clone();
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime to drop the test database");
            runtime.block_on(async move {
                admin_client()
                    .await
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
            })
        })
        .join();
        if let Ok(Err(error)) = dropped {
            eprintln!("could not drop test database {}: {error}", self.name);
        }
    }
}

pub async fn create_test_database() -> TestDatabase {
    let client = admin_client().await;
    let name = format!("kaquan_test_{}", kaquan_core::secrets::random_token_hex(6));
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create test database");
    let url = match admin_url().rsplit_once('/') {
        Some((base, _)) => format!("{base}/{name}"),
        None => panic!("KAQUAN_TEST_POSTGRES_URL must end in /DATABASE"),
    };
    TestDatabase { url, name }
}
