//! The minimal floors of a batch (issue 24): the least a store of a
//! million cards can do, the same precomputed rows kaquan generates (number,
//! 32-byte digest, sealed copy, batch id, state, time) into a table that has
//! nothing else but one UNIQUE index on the number. Every other column,
//! index and constraint kaquan's `cards` carries shows as the distance from
//! this floor; `floor-sqlite`/`floor-postgres` (the full schema) stay beside.

use futures_util::pin_mut;
use std::time::Instant;

const TABLE: &str = "CREATE TABLE cards_min (number TEXT NOT NULL UNIQUE, secret_digest BLOB NOT NULL, \
    secret_sealed BLOB NOT NULL, batch_id INTEGER NOT NULL, state TEXT NOT NULL, created_at INTEGER NOT NULL)";

/// One transaction, one prepared statement, WAL + synchronous=FULL and a
/// 256 MiB page cache, into a new file at `path`.
pub fn sqlite(rows: i64, path: &str) {
    let cards = super::precompute(rows, 1, 1);
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA cache_size = -262144;",
    )
    .unwrap();
    conn.execute_batch(TABLE).unwrap();
    let started = Instant::now();
    conn.execute_batch("BEGIN IMMEDIATE").unwrap();
    {
        let mut insert = conn
            .prepare(
                "INSERT INTO cards_min (number, secret_digest, secret_sealed, batch_id, state, created_at) \
                 VALUES (?1, ?2, ?3, 1, 'inactive', 0)",
            )
            .unwrap();
        for card in &cards {
            insert
                .execute(rusqlite::params![
                    card.number,
                    &card.secret_digest[..],
                    card.secret_sealed
                ])
                .unwrap();
        }
    }
    conn.execute_batch("COMMIT").unwrap();
    println!(
        "{{\"floor\": \"sqlite-minimal\", \"rows\": {rows}, \"seconds\": {:.3}}}",
        started.elapsed().as_secs_f64()
    );
}

/// A bare binary COPY of the same rows into the same table, in the
/// (new, empty) database at `url`.
pub fn postgres(rows: i64, url: &str) {
    use tokio_postgres::binary_copy::BinaryCopyInWriter;
    use tokio_postgres::types::Type;
    let cards = super::precompute(rows, 1, 1);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let (mut client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        client
            .batch_execute(&TABLE.replace("BLOB", "BYTEA").replace("INTEGER", "BIGINT"))
            .await
            .unwrap();
        let started = Instant::now();
        let tx = client.transaction().await.unwrap();
        let sink = tx
            .copy_in(
                "COPY cards_min (number, secret_digest, secret_sealed, batch_id, state, created_at) \
                 FROM STDIN BINARY",
            )
            .await
            .unwrap();
        let types = [Type::TEXT, Type::BYTEA, Type::BYTEA, Type::INT8, Type::TEXT, Type::INT8];
        let writer = BinaryCopyInWriter::new(sink, &types);
        pin_mut!(writer);
        for card in &cards {
            let digest: &[u8] = &card.secret_digest;
            writer
                .as_mut()
                .write(&[&card.number, &digest, &card.secret_sealed, &1i64, &"inactive", &0i64])
                .await
                .unwrap();
        }
        writer.finish().await.unwrap();
        tx.commit().await.unwrap();
        println!(
            "{{\"floor\": \"postgres-minimal\", \"rows\": {rows}, \"seconds\": {:.3}}}",
            started.elapsed().as_secs_f64()
        );
    });
}
