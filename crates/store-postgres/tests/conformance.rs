//! The shared conformance suite on PostgreSQL, each check in its own database.

use std::sync::Arc;

async fn fresh_store() -> Arc<kaquan_store_postgres::PgStore> {
    let url = kaquan_store_postgres::testing::create_test_database().await;
    Arc::new(
        kaquan_store_postgres::connect(&url)
            .await
            .expect("connect to the test database"),
    )
}

kaquan_conformance::conformance_tests!(fresh_store());
