//! The shared conformance suite on SQLite, each check on its own file.

use std::sync::Arc;

async fn fresh_store() -> Arc<kaquan_store_sqlite::SqliteStore> {
    let dir = std::env::temp_dir().join(format!(
        "kaquan-conformance-{}",
        kaquan_core::secrets::random_token_hex(8)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    Arc::new(
        kaquan_store_sqlite::open(
            &dir.join("test.db"),
            kaquan_store_sqlite::OpenMode::CreateIfMissing,
        )
        .unwrap(),
    )
}

kaquan_conformance::conformance_tests!(fresh_store());
