//! Batches: creating, filling in one transaction (binary COPY of the cards,
//! serials, goods links, activation, audit), failing, listing.

use crate::cards::card_move_sql;
use crate::engine::refresh_statistics;
use crate::engine::INTERRUPTED_BATCH_LOCK_WAIT_MS;
use crate::events::insert_event;
use crate::sql::insert_audit;
use crate::sql::map_err;
use crate::sql::parse_or;
use crate::sql::{exec, one, opt};
use crate::PgStore;
use deadpool_postgres::GenericClient;
use futures_util::pin_mut;
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
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::Type;
use tokio_postgres::Row;

pub(crate) const BATCH_COLUMNS: &str = "id, merchant_id, name, source, prefix, number_length, numbering, start_number, \
    password_length, password_charset, quantity, face_value_fen, valid_from, valid_until, remark, state, \
    serial_first, error, created_by, created_at, completed_at, n_copies";

pub(crate) fn batch_from_row(row: &Row) -> StoreResult<Batch> {
    Ok(Batch {
        id: row.get(0),
        merchant_id: row.get(1),
        name: row.get(2),
        source: parse_or(BatchSource::parse(row.get(3)), "batch source")?,
        prefix: row.get(4),
        number_length: row.get(5),
        numbering: parse_or(Numbering::parse(row.get(6)), "numbering")?,
        start_number: row.get(7),
        password_length: row.get(8),
        password_charset: parse_or(PasswordCharset::parse(row.get(9)), "password charset")?,
        quantity: row.get(10),
        face_value_fen: row.get(11),
        valid_from: row.get(12),
        valid_until: row.get(13),
        remark: row.get(14),
        state: parse_or(BatchState::parse(row.get(15)), "batch state")?,
        serial_first: row.get(16),
        error: row.get(17),
        created_by: row.get(18),
        created_at: row.get(19),
        completed_at: row.get(20),
        n_copies: row.get(21),
    })
}

#[async_trait::async_trait]
impl kaquan_core::batch::BatchStore for PgStore {
    async fn create_batch(&self, b: &NewBatch) -> StoreResult<Batch> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let serial_first: i64 = opt(&tx, "UPDATE merchants SET next_serial = next_serial + $1 WHERE id = $2 RETURNING next_serial - $1",
                &[&b.quantity, &b.merchant_id]).await?
            .ok_or(StoreError::NotFound)?
            .get(0);
        let row = one(&tx, &format!(
                    "INSERT INTO batches (merchant_id, name, source, prefix, number_length, numbering, start_number, \
                     password_length, password_charset, quantity, face_value_fen, valid_from, valid_until, remark, state, \
                     serial_first, created_by, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, 'generating', $15, $16, $17) \
                     RETURNING {BATCH_COLUMNS}"
                ),
                &[
                    &b.merchant_id,
                    &b.name,
                    &b.source.code(),
                    &b.prefix,
                    &b.number_length,
                    &b.numbering.code(),
                    &b.start_number,
                    &b.password_length,
                    &b.password_charset.code(),
                    &b.quantity,
                    &b.face_value_fen,
                    &b.valid_from,
                    &b.valid_until,
                    &b.remark,
                    &serial_first,
                    &b.created_by,
                    &b.created_at,
                ]).await?;
        let batch = batch_from_row(&row)?;
        tx.commit().await.map_err(map_err)?;
        Ok(batch)
    }

    async fn fill_batch(
        &self,
        merchant_id: i64,
        batch_id: i64,
        source: Box<dyn CardSource>,
        audit: &AuditEntry,
        after: &AfterFill,
        now: i64,
    ) -> StoreResult<i64> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let row = opt(
            &tx,
            "SELECT b.face_value_fen, b.valid_from, b.valid_until, b.remark, m.key_version \
                 FROM batches b JOIN merchants m ON m.id = b.merchant_id \
                 WHERE b.id = $1 AND b.merchant_id = $2 AND b.state = 'generating' FOR UPDATE OF b",
            &[&batch_id, &merchant_id],
        )
        .await?
        .ok_or(StoreError::NotFound)?;
        let (face_value_fen, valid_from, valid_until, remark, key_version): (
            Option<i64>,
            Option<i64>,
            Option<i64>,
            String,
            i32,
        ) = (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
        let sink = tx
            .copy_in(
                "COPY cards (merchant_id, batch_id, serial, number, secret_digest, secret_sealed, key_version, state, \
                 face_value_fen, valid_from, valid_until, remark, created_at) FROM STDIN BINARY",
            )
            .await
            .map_err(map_err)?;
        let types = [
            Type::INT8,
            Type::INT8,
            Type::INT8,
            Type::TEXT,
            Type::BYTEA,
            Type::BYTEA,
            Type::INT4,
            Type::TEXT,
            Type::INT8,
            Type::INT8,
            Type::INT8,
            Type::TEXT,
            Type::INT8,
        ];
        let writer = BinaryCopyInWriter::new(sink, &types);
        pin_mut!(writer);
        let mut source = source;
        let mut n_cards = 0i64;
        let state = CardState::Inactive.code();
        loop {
            // The source blocks while the generator thread computes; keep that off the async workers.
            let (returned, chunk) = tokio::task::spawn_blocking(move || {
                let chunk = source.next_chunk();
                (source, chunk)
            })
            .await
            .map_err(|e| StoreError::Backend(format!("card source failed: {e}")))?;
            source = returned;
            if chunk.is_empty() {
                break;
            }
            for card in &chunk {
                let digest: &[u8] = &card.secret_digest;
                writer
                    .as_mut()
                    .write(&[
                        &merchant_id,
                        &batch_id,
                        &card.serial,
                        &card.number,
                        &digest,
                        &card.secret_sealed,
                        &key_version,
                        &state,
                        &face_value_fen,
                        &valid_from,
                        &valid_until,
                        &remark,
                        &now,
                    ])
                    .await
                    .map_err(map_err)?;
            }
            n_cards += chunk.len() as i64;
        }
        writer.finish().await.map_err(map_err)?;
        let name: String = opt(
            &tx,
            "UPDATE batches SET state = 'ready', completed_at = $1, n_copies = $3 WHERE id = $2 AND state = 'generating' RETURNING name",
            &[&now, &batch_id, &n_cards],
        )
        .await?
        .ok_or(StoreError::NotFound)?
        .get(0);
        insert_audit(&tx, audit, n_cards).await?;
        insert_event(
            &tx,
            &NewEvent::batch(merchant_id, batch_id, &name, Ok(n_cards), now),
        )
        .await?;
        apply_after_fill(&tx, merchant_id, batch_id, audit, after, n_cards, now).await?;
        tx.commit().await.map_err(map_err)?;
        refresh_statistics(&client, "cards", n_cards).await;
        Ok(n_cards)
    }

    async fn fail_batch(&self, batch_id: i64, error: &str, now: i64) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let failed = opt(
            &tx,
            "UPDATE batches SET state = 'failed', error = $1 WHERE id = $2 AND state = 'generating' \
             RETURNING merchant_id, name",
            &[&error, &batch_id],
        )
        .await?;
        if let Some(row) = failed {
            let event = NewEvent::batch(row.get(0), batch_id, row.get(1), Err(error), now);
            insert_event(&tx, &event).await?;
        }
        tx.commit().await.map_err(map_err)
    }

    async fn fail_interrupted_batches(&self, now: i64) -> StoreResult<u64> {
        // A live fill holds its batch row locked (FOR UPDATE) until it commits;
        // a killed client's transaction is aborted by the server moments after
        // its socket closes. So wait a little for the lock: a batch that is
        // still locked after that is being filled by a live node and is left
        // alone; one whose lock went away with its dead client is failed.
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        tx.batch_execute(&format!(
            "SET LOCAL lock_timeout = '{INTERRUPTED_BATCH_LOCK_WAIT_MS}ms'"
        ))
        .await
        .map_err(map_err)?;
        let result = tx
            .query(
                "UPDATE batches SET state = 'failed', error = '生成被中断（进程退出）' WHERE state = 'generating' \
                 RETURNING merchant_id, id, name",
                &[],
            )
            .await;
        match result {
            Ok(rows) => {
                for r in &rows {
                    let event = NewEvent::batch(
                        r.get(0),
                        r.get(1),
                        r.get(2),
                        Err("生成被中断（进程退出）"),
                        now,
                    );
                    insert_event(&tx, &event).await?;
                }
                tx.commit().await.map_err(map_err)?;
                Ok(rows.len() as u64)
            }
            Err(e) if e.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) => Ok(0),
            Err(e) => Err(map_err(e)),
        }
    }

    async fn get_batch(&self, merchant_id: i64, batch_id: i64) -> StoreResult<Batch> {
        let row = opt(
            &self.client().await?,
            &format!("SELECT {BATCH_COLUMNS} FROM batches WHERE id = $1 AND merchant_id = $2"),
            &[&batch_id, &merchant_id],
        )
        .await?;
        batch_from_row(&row.ok_or(StoreError::NotFound)?)
    }

    async fn list_batches(&self, merchant_id: i64, page: Page) -> StoreResult<(Vec<Batch>, i64)> {
        let (rows, total) = self
            .merchant_page("batches", BATCH_COLUMNS, merchant_id, page)
            .await?;
        Ok((
            rows.iter()
                .map(batch_from_row)
                .collect::<StoreResult<_>>()?,
            total,
        ))
    }

    async fn batch_card_counts(
        &self,
        merchant_id: i64,
        batch_ids: &[i64],
    ) -> StoreResult<Vec<BatchCardCounts>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT batch_id, state, count(*) FROM cards WHERE batch_id = ANY($1) AND merchant_id = $2 GROUP BY batch_id, state",
                &[&batch_ids, &merchant_id],
            )
            .await
            .map_err(map_err)?;
        let mut counts: Vec<_> = batch_ids
            .iter()
            .map(|&batch_id| BatchCardCounts {
                batch_id,
                ..Default::default()
            })
            .collect();
        for row in rows {
            let (batch_id, state, n): (i64, String, i64) = (row.get(0), row.get(1), row.get(2));
            let state = parse_or(CardState::parse(&state), "card state")?;
            for count in counts.iter_mut().filter(|c| c.batch_id == batch_id) {
                count.add(state, n);
            }
        }
        Ok(counts)
    }

    async fn numbers_with_prefix(
        &self,
        merchant_id: i64,
        prefix: &str,
    ) -> StoreResult<Vec<String>> {
        self.query_strings(
            "SELECT number FROM cards WHERE merchant_id = $1 AND left(number, length($2)) = $2",
            &[&merchant_id, &prefix],
        )
        .await
    }

    async fn find_taken_numbers(
        &self,
        merchant_id: i64,
        numbers: &[String],
    ) -> StoreResult<Vec<String>> {
        self.query_strings(
            "SELECT number FROM cards WHERE merchant_id = $1 AND number = ANY($2)",
            &[&merchant_id, &numbers],
        )
        .await
    }
}

/// What a fill does after the cards are in, in its transaction: link the
/// chosen goods and activate the cards at once, each audited.
async fn apply_after_fill(
    tx: &deadpool_postgres::Transaction<'_>,
    merchant_id: i64,
    batch_id: i64,
    audit: &AuditEntry,
    after: &AfterFill,
    n_cards: i64,
    now: i64,
) -> StoreResult<()> {
    if !after.goods_ids.is_empty() {
        let owned: i64 = one(
            tx,
            "SELECT count(*) FROM goods WHERE merchant_id = $1 AND id = ANY($2)",
            &[&merchant_id, &after.goods_ids],
        )
        .await?
        .get(0);
        if owned as usize != after.goods_ids.len() {
            return Err(StoreError::NotFound);
        }
        exec(tx, "INSERT INTO card_goods (card_id, goods_id, merchant_id) SELECT cards.id, g, cards.merchant_id FROM cards, unnest($1::bigint[]) AS g \
             WHERE cards.batch_id = $2 ON CONFLICT DO NOTHING",
            &[&after.goods_ids, &batch_id]).await?;
        let link = AuditEntry {
            action: "link_goods".into(),
            detail: format!("goods={:?}", after.goods_ids),
            ..audit.clone()
        };
        insert_audit(tx, &link, n_cards).await?;
    }
    if after.activate {
        exec(
            tx,
            card_move_sql(CardMove::ActivateOnFill),
            &[&now, &batch_id],
        )
        .await?;
        let activation = AuditEntry {
            action: "activate_cards".into(),
            detail: "生成后立即激活".into(),
            ..audit.clone()
        };
        insert_audit(tx, &activation, n_cards).await?;
        if let Some(event) = NewEvent::cards(CardOp::Activate, &activation, n_cards) {
            insert_event(tx, &event).await?;
        }
    }
    Ok(())
}
