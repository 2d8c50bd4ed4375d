//! Batches: creating, filling in one transaction (cards, goods links,
//! activation, audit), failing, listing; the numbers a batch may not reuse.

use crate::cards::card_move_sql;
use crate::engine::LOOKUP_CHUNK;
use crate::events::insert_event;
use crate::sql::decode;
use crate::sql::insert_audit;
use crate::sql::map_err;
use crate::sql::merchant_page;
use crate::SqliteStore;
use kaquan_core::audit::AuditEntry;
use kaquan_core::batch::AfterFill;
use kaquan_core::batch::Batch;
use kaquan_core::batch::BatchCardCounts;
use kaquan_core::batch::BatchSource;
use kaquan_core::batch::BatchState;
use kaquan_core::batch::CardSource;
use kaquan_core::batch::NewBatch;
use kaquan_core::batch::Numbering;
use kaquan_core::batch::PasswordCharset;
use kaquan_core::card::CardMove;
use kaquan_core::card::CardOp;
use kaquan_core::card::CardState;
use kaquan_core::event::NewEvent;
use kaquan_core::store::Page;
use kaquan_core::{StoreError, StoreResult};
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, OptionalExtension, Row};

pub(crate) const BATCH_COLUMNS: &str = "id, merchant_id, name, source, prefix, number_length, numbering, start_number, \
    password_length, password_charset, quantity, face_value_fen, valid_from, valid_until, remark, state, \
    serial_first, error, created_by, created_at, completed_at, n_copies";

pub(crate) fn batch_from_row(row: &Row) -> rusqlite::Result<Batch> {
    Ok(Batch {
        id: row.get(0)?,
        merchant_id: row.get(1)?,
        name: row.get(2)?,
        source: decode(
            BatchSource::parse(&row.get::<_, String>(3)?),
            3,
            "batch source",
        )?,
        prefix: row.get(4)?,
        number_length: row.get(5)?,
        numbering: decode(Numbering::parse(&row.get::<_, String>(6)?), 6, "numbering")?,
        start_number: row.get(7)?,
        password_length: row.get(8)?,
        password_charset: decode(
            PasswordCharset::parse(&row.get::<_, String>(9)?),
            9,
            "password charset",
        )?,
        quantity: row.get(10)?,
        face_value_fen: row.get(11)?,
        valid_from: row.get(12)?,
        valid_until: row.get(13)?,
        remark: row.get(14)?,
        state: decode(
            BatchState::parse(&row.get::<_, String>(15)?),
            15,
            "batch state",
        )?,
        serial_first: row.get(16)?,
        error: row.get(17)?,
        created_by: row.get(18)?,
        created_at: row.get(19)?,
        completed_at: row.get(20)?,
        n_copies: row.get(21)?,
    })
}

/// Why a batch left `generating` by a dead process failed.
const INTERRUPTED: &str = "生成被中断（进程退出）";

#[async_trait::async_trait]
impl kaquan_core::batch::BatchStore for SqliteStore {
    async fn create_batch(&self, b: &NewBatch) -> StoreResult<Batch> {
        let b = b.clone();
        self.write(move |conn| {
            let serial_first: i64 = conn
                .query_row(
                    "UPDATE merchants SET next_serial = next_serial + ?1 WHERE id = ?2 RETURNING next_serial - ?1",
                    params![b.quantity, b.merchant_id],
                    |r| r.get(0),
                )
                .map_err(map_err)?;
            conn.query_row(
                &format!(
                    "INSERT INTO batches (merchant_id, name, source, prefix, number_length, numbering, start_number, \
                     password_length, password_charset, quantity, face_value_fen, valid_from, valid_until, remark, state, \
                     serial_first, created_by, created_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, 'generating', ?15, ?16, ?17) \
                     RETURNING {BATCH_COLUMNS}"
                ),
                params![
                    b.merchant_id,
                    b.name,
                    b.source.code(),
                    b.prefix,
                    b.number_length,
                    b.numbering.code(),
                    b.start_number,
                    b.password_length,
                    b.password_charset.code(),
                    b.quantity,
                    b.face_value_fen,
                    b.valid_from,
                    b.valid_until,
                    b.remark,
                    serial_first,
                    b.created_by,
                    b.created_at
                ],
                batch_from_row,
            )
            .map_err(map_err)
        })
        .await
    }

    async fn fill_batch(
        &self,
        merchant_id: i64,
        batch_id: i64,
        mut source: Box<dyn CardSource>,
        audit: &AuditEntry,
        after: &AfterFill,
        now: i64,
    ) -> StoreResult<i64> {
        let (audit, after) = (audit.clone(), after.clone());
        self.write(move |conn| {
            let (face_value_fen, valid_from, valid_until, remark, key_version): (Option<i64>, Option<i64>, Option<i64>, String, i32) = conn
                .query_row(
                    "SELECT b.face_value_fen, b.valid_from, b.valid_until, b.remark, m.key_version \
                     FROM batches b JOIN merchants m ON m.id = b.merchant_id \
                     WHERE b.id = ?1 AND b.merchant_id = ?2 AND b.state = 'generating'",
                    params![batch_id, merchant_id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
                )
                .map_err(map_err)?;
            let mut insert = conn
                .prepare_cached(
                    "INSERT INTO cards (merchant_id, batch_id, serial, number, secret_digest, secret_sealed, key_version, \
                     state, face_value_fen, valid_from, valid_until, remark, created_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'inactive', ?8, ?9, ?10, ?11, ?12)",
                )
                .map_err(map_err)?;
            let mut n_cards = 0i64;
            loop {
                let chunk = source.next_chunk();
                if chunk.is_empty() {
                    break;
                }
                for card in &chunk {
                    insert
                        .execute(params![
                            merchant_id,
                            batch_id,
                            card.serial,
                            card.number,
                            &card.secret_digest[..],
                            card.secret_sealed,
                            key_version,
                            face_value_fen,
                            valid_from,
                            valid_until,
                            remark,
                            now
                        ])
                        .map_err(map_err)?;
                }
                n_cards += chunk.len() as i64;
            }
            let name: String = conn
                .query_row(
                    "UPDATE batches SET state = 'ready', completed_at = ?1, n_copies = ?3 WHERE id = ?2 AND state = 'generating' RETURNING name",
                    params![now, batch_id, n_cards],
                    |r| r.get(0),
                )
                .map_err(map_err)?;
            insert_audit(conn, &audit, n_cards).map_err(map_err)?;
            insert_event(conn, &NewEvent::batch(merchant_id, batch_id, &name, Ok(n_cards), now))?;
            for goods_id in &after.goods_ids {
                let owned: i64 = conn
                    .query_row("SELECT count(*) FROM goods WHERE id = ?1 AND merchant_id = ?2", params![goods_id, merchant_id], |r| r.get(0))
                    .map_err(map_err)?;
                if owned != 1 {
                    return Err(StoreError::NotFound);
                }
                conn.execute(
                    "INSERT OR IGNORE INTO card_goods (card_id, goods_id) SELECT id, ?1 FROM cards WHERE batch_id = ?2",
                    params![goods_id, batch_id],
                )
                .map_err(map_err)?;
            }
            if !after.goods_ids.is_empty() {
                let link = AuditEntry { action: "link_goods".into(), detail: format!("goods={:?}", after.goods_ids), ..audit.clone() };
                insert_audit(conn, &link, n_cards).map_err(map_err)?;
            }
            if after.activate {
                conn.execute(
                    card_move_sql(CardMove::ActivateOnFill),
                    params![now, batch_id],
                )
                .map_err(map_err)?;
                let activation = AuditEntry { action: "activate_cards".into(), detail: "生成后立即激活".into(), ..audit.clone() };
                insert_audit(conn, &activation, n_cards).map_err(map_err)?;
                if let Some(event) = NewEvent::cards(CardOp::Activate, &activation, n_cards) {
                    insert_event(conn, &event)?;
                }
            }
            Ok(n_cards)
        })
        .await
    }

    async fn fail_batch(&self, batch_id: i64, error: &str, now: i64) -> StoreResult<()> {
        let error = error.to_owned();
        self.write(move |conn| {
            let failed: Option<(i64, String)> = conn
                .query_row(
                    "UPDATE batches SET state = 'failed', error = ?1 WHERE id = ?2 AND state = 'generating' \
                     RETURNING merchant_id, name",
                    params![error, batch_id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(map_err)?;
            if let Some((merchant_id, name)) = failed {
                insert_event(conn, &NewEvent::batch(merchant_id, batch_id, &name, Err(&error), now))?;
            }
            Ok(())
        })
        .await
    }

    async fn fail_interrupted_batches(&self, now: i64) -> StoreResult<u64> {
        self.write(move |conn| {
            let failed: Vec<(i64, i64, String)> = conn
                .prepare(&format!(
                    "UPDATE batches SET state = 'failed', error = '{INTERRUPTED}' WHERE state = 'generating' \
                     RETURNING merchant_id, id, name"
                ))
                .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect())
                .map_err(map_err)?;
            for (merchant_id, batch_id, name) in &failed {
                insert_event(conn, &NewEvent::batch(*merchant_id, *batch_id, name, Err(INTERRUPTED), now))?;
            }
            Ok(failed.len() as u64)
        })
        .await
    }

    async fn get_batch(&self, merchant_id: i64, batch_id: i64) -> StoreResult<Batch> {
        self.read(move |conn| {
            conn.query_row(
                &format!("SELECT {BATCH_COLUMNS} FROM batches WHERE id = ?1 AND merchant_id = ?2"),
                params![batch_id, merchant_id],
                batch_from_row,
            )
            .map_err(map_err)
        })
        .await
    }

    async fn list_batches(&self, merchant_id: i64, page: Page) -> StoreResult<(Vec<Batch>, i64)> {
        self.read(move |conn| {
            merchant_page(
                conn,
                "batches",
                BATCH_COLUMNS,
                merchant_id,
                page,
                batch_from_row,
            )
        })
        .await
    }

    async fn batch_card_counts(
        &self,
        merchant_id: i64,
        batch_ids: &[i64],
    ) -> StoreResult<Vec<BatchCardCounts>> {
        let ids = batch_ids.to_vec();
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached("SELECT state, count(*) FROM cards WHERE batch_id = ?1 AND merchant_id = ?2 GROUP BY state")
                .map_err(map_err)?;
            let mut counts = Vec::with_capacity(ids.len());
            for batch_id in ids {
                let mut count = BatchCardCounts { batch_id, ..Default::default() };
                let rows = stmt
                    .query_map(params![batch_id, merchant_id], |r| {
                        let state = decode(CardState::parse(&r.get::<_, String>(0)?), 0, "card state")?;
                        Ok((state, r.get::<_, i64>(1)?))
                    })
                    .map_err(map_err)?;
                for row in rows {
                    let (state, n) = row.map_err(map_err)?;
                    count.add(state, n);
                }
                counts.push(count);
            }
            Ok(counts)
        })
        .await
    }

    async fn numbers_with_prefix(
        &self,
        merchant_id: i64,
        prefix: &str,
    ) -> StoreResult<Vec<String>> {
        let prefix = prefix.to_owned();
        self.read(move |conn| {
            let mut stmt = conn
                .prepare("SELECT number FROM cards WHERE merchant_id = ?1 AND substr(number, 1, length(?2)) = ?2")
                .map_err(map_err)?;
            let rows = stmt.query_map(params![merchant_id, prefix], |r| r.get(0)).map_err(map_err)?;
            rows.collect::<Result<_, _>>().map_err(map_err)
        })
        .await
    }

    async fn find_taken_numbers(
        &self,
        merchant_id: i64,
        numbers: &[String],
    ) -> StoreResult<Vec<String>> {
        let numbers = numbers.to_vec();
        self.read(move |conn| {
            let mut taken = Vec::new();
            for chunk in numbers.chunks(LOOKUP_CHUNK) {
                let marks = vec!["?"; chunk.len()].join(",");
                let mut stmt = conn
                    .prepare(&format!(
                        "SELECT number FROM cards WHERE merchant_id = ? AND number IN ({marks})"
                    ))
                    .map_err(map_err)?;
                let values = std::iter::once(Value::Integer(merchant_id))
                    .chain(chunk.iter().map(|n| Value::Text(n.clone())));
                let rows = stmt
                    .query_map(params_from_iter(values), |r| r.get::<_, String>(0))
                    .map_err(map_err)?;
                for row in rows {
                    taken.push(row.map_err(map_err)?);
                }
            }
            Ok(taken)
        })
        .await
    }
}
