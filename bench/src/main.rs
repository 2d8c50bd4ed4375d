//! Floors for the benchmarks in `bench/run.sh`: bare programs doing the
//! least work the real `kaquan` commands must do, with the same drivers and
//! schema, so the ratio real/floor says what kaquan's own design costs.
//!
//! - `floor-sqlite ROWS PATH`: insert precomputed card rows in one
//!   transaction with one prepared statement (rusqlite, WAL, synchronous=FULL).
//! - `floor-postgres ROWS URL`: the same rows with binary COPY (tokio-postgres).
//! - `floor-sqlite-minimal ROWS PATH`, `floor-postgres-minimal ROWS URL`: the
//!   same rows into a table with one UNIQUE index on the number and nothing
//!   else (`minimal_floor.rs`): what storing the cards costs at least.
//! - `floor-xlsx ROWS PATH`: write the export's cells with rust_xlsxwriter
//!   in constant-memory mode.
//! - `floor-redeem-sqlite N PATH`: N redemptions, each the guarded code update,
//!   the balance update and the ledger insert (transaction + two postings),
//!   from 64 concurrent clients through one writer thread that commits
//!   groups of up to 64 (WAL, synchronous=FULL).
//! - `floor-redeem-postgres N URL`: the same statements, one transaction per
//!   redemption, from 16 connections.
//! - `set-wise-redeem-sqlite N PATH`: not a floor but a measure of a
//!   design: the floor's work, each group done with one statement per table
//!   for all its redemptions instead of the statements once per redemption.
//! - `store-redeem-sqlite[-unguarded] N PATH`: not a floor but a diagnosis:
//!   kaquan's own SQLite store without HTTP, `post_ledger` from 64 tasks,
//!   with (or without) a nonce and an Idempotency-Key per call.
//! - `receive-webhooks N ADDRESS_FILE`: a bare HTTP receiver for
//!   `bench/webhooks.sh` (see `receiver.rs`).
//!
//! Each prints one JSON line with the seconds the measured part took.

use futures_util::pin_mut;
use kaquan_core::batch::usecases::start_generated_batch;
use kaquan_core::batch::{
    BatchFields, BatchSpec, CardGenerator, NewCard, NumberGenerator, Numbering, PasswordCharset,
};
use kaquan_core::secrets::MasterKey;
use kaquan_core::store::Store;
use std::collections::HashSet;
use std::time::Instant;

mod minimal_floor;
mod receiver;
mod redeem_floor;

fn spec(rows: i64) -> BatchSpec {
    BatchSpec::new(BatchFields {
        numbering: Some(Numbering::Random),
        number_length: Some(12),
        password_length: Some(12),
        password_charset: Some(PasswordCharset::Digits),
        quantity: rows,
        ..Default::default()
    })
    .expect("valid spec")
}

/// The rows `kaquan batch generate` would insert, computed before timing.
pub(crate) fn precompute(rows: i64, merchant_id: i64, serial_first: i64) -> Vec<NewCard> {
    let spec = spec(rows);
    let keys = MasterKey::generate().merchant_keys(merchant_id, 1);
    let mut generator = CardGenerator::new(
        &spec,
        keys,
        serial_first,
        NumberGenerator::new(&spec, HashSet::new(), 0),
    );
    generator.next_chunk(rows as usize)
}

async fn prepare_batch(store: &dyn Store, rows: i64) -> (i64, i64, i64) {
    let merchant = store.create_merchant("bench", 0).await.expect("merchant");
    let batch = start_generated_batch(store, merchant.id, &spec(rows), "bench", 0)
        .await
        .expect("batch");
    (merchant.id, batch.id, batch.serial_first)
}

fn floor_sqlite(rows: i64, path: &str) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (merchant_id, batch_id, serial_first) = runtime.block_on(async {
        let store = kaquan_store_sqlite::open(
            std::path::Path::new(path),
            kaquan_store_sqlite::OpenMode::CreateIfMissing,
        )
        .unwrap();
        prepare_batch(&store, rows).await
    });
    let cards = precompute(rows, merchant_id, serial_first);
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;",
    )
    .unwrap();
    let started = Instant::now();
    conn.execute_batch("BEGIN IMMEDIATE").unwrap();
    {
        let mut insert = conn
            .prepare(
                "INSERT INTO cards (merchant_id, batch_id, serial, number, secret_digest, secret_sealed, key_version, \
                 state, face_value_fen, valid_from, valid_until, remark, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'inactive', ?8, ?9, ?10, ?11, ?12)",
            )
            .unwrap();
        for card in &cards {
            insert
                .execute(rusqlite::params![
                    merchant_id,
                    batch_id,
                    card.serial,
                    card.number,
                    &card.secret_digest[..],
                    card.secret_sealed,
                    1,
                    Option::<i64>::None,
                    Option::<i64>::None,
                    Option::<i64>::None,
                    "",
                    0
                ])
                .unwrap();
        }
    }
    conn.execute_batch("COMMIT").unwrap();
    println!(
        "{{\"floor\": \"sqlite\", \"rows\": {rows}, \"seconds\": {:.3}}}",
        started.elapsed().as_secs_f64()
    );
}

fn floor_postgres(rows: i64, url: &str) {
    use tokio_postgres::binary_copy::BinaryCopyInWriter;
    use tokio_postgres::types::Type;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = kaquan_store_postgres::connect(url).await.unwrap();
        let (merchant_id, batch_id, serial_first) = prepare_batch(&store, rows).await;
        let cards = precompute(rows, merchant_id, serial_first);
        let (mut client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        let started = Instant::now();
        let tx = client.transaction().await.unwrap();
        let sink = tx
            .copy_in(
                "COPY cards (merchant_id, batch_id, serial, number, secret_digest, secret_sealed, key_version, state, \
                 face_value_fen, valid_from, valid_until, remark, created_at) FROM STDIN BINARY",
            )
            .await
            .unwrap();
        let types = [
            Type::INT8, Type::INT8, Type::INT8, Type::TEXT, Type::BYTEA, Type::BYTEA, Type::INT4, Type::TEXT, Type::INT8, Type::INT8,
            Type::INT8, Type::TEXT, Type::INT8,
        ];
        let writer = BinaryCopyInWriter::new(sink, &types);
        pin_mut!(writer);
        let none: Option<i64> = None;
        for card in &cards {
            let digest: &[u8] = &card.secret_digest;
            writer
                .as_mut()
                .write(&[&merchant_id, &batch_id, &card.serial, &card.number, &digest, &card.secret_sealed, &1i32, &"inactive", &none, &none, &none, &"", &0i64])
                .await
                .unwrap();
        }
        writer.finish().await.unwrap();
        tx.commit().await.unwrap();
        println!("{{\"floor\": \"postgres\", \"rows\": {rows}, \"seconds\": {:.3}}}", started.elapsed().as_secs_f64());
    });
}

fn floor_xlsx(rows: i64, path: &str) {
    use rand::Rng;
    let started = Instant::now();
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let sheet = workbook.add_worksheet_with_constant_memory().unwrap();
    let headers = [
        "卡序号",
        "卡号",
        "密码",
        "二维码内容",
        "卡券面值(元)",
        "有效期开始",
        "有效期结束",
        "状态",
        "券商",
        "批次号",
        "卡券备注",
    ];
    for (c, h) in headers.iter().enumerate() {
        sheet.write_string(0, c as u16, *h).unwrap();
    }
    let mut rng = rand::thread_rng();
    for r in 1..=rows as u32 {
        let number = format!("{:012}", rng.gen_range(0..1_000_000_000_000u64));
        let password = format!("{:012}", rng.gen_range(0..1_000_000_000_000u64));
        let cells = [
            r.to_string(),
            number.clone(),
            password,
            format!("http://127.0.0.1:8080/m/1/redeem?number={number}"),
            String::new(),
            String::new(),
            String::new(),
            "未激活".to_owned(),
            String::new(),
            "1".to_owned(),
            String::new(),
        ];
        for (c, cell) in cells.iter().enumerate() {
            sheet.write_string(r, c as u16, cell).unwrap();
        }
    }
    workbook.save(path).unwrap();
    println!(
        "{{\"floor\": \"xlsx\", \"rows\": {rows}, \"seconds\": {:.3}}}",
        started.elapsed().as_secs_f64()
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: kaquan-bench floor-sqlite|floor-postgres|floor-sqlite-minimal|floor-postgres-minimal|floor-xlsx|floor-redeem-sqlite|floor-redeem-postgres|set-wise-redeem-sqlite|store-redeem-sqlite|store-redeem-sqlite-unguarded|receive-webhooks ROWS PATH_OR_URL";
    let (Some(command), Some(rows), Some(target)) = (args.get(1), args.get(2), args.get(3)) else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let rows: i64 = rows.parse().expect("ROWS is a number");
    match command.as_str() {
        "floor-sqlite" => floor_sqlite(rows, target),
        "floor-postgres" => floor_postgres(rows, target),
        "floor-sqlite-minimal" => minimal_floor::sqlite(rows, target),
        "floor-postgres-minimal" => minimal_floor::postgres(rows, target),
        "floor-xlsx" => floor_xlsx(rows, target),
        "floor-redeem-sqlite" => redeem_floor::sqlite(rows, target),
        "set-wise-redeem-sqlite" => redeem_floor::sqlite_set_wise(rows, target),
        "floor-redeem-postgres" => redeem_floor::postgres(rows, target),
        "store-redeem-sqlite" => redeem_floor::store_sqlite(rows, target, true),
        "store-redeem-sqlite-unguarded" => redeem_floor::store_sqlite(rows, target, false),
        "receive-webhooks" => receiver::receive(rows, target),
        _ => {
            eprintln!("{usage}");
            std::process::exit(2);
        }
    }
}
