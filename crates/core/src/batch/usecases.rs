//! Use cases shared by the console, the JSON API and the CLI: creating a
//! batch, generating or importing its cards, and the checked bulk operations.

use crate::audit::AuditEntry;
use crate::batch::{imported_card, BatchSpec, CardGenerator, NewCard, NumberGenerator, Numbering};
use crate::batch::{AfterFill, Batch, BatchSource, CardSource, NewBatch, VecSource};
use crate::card::{CardNumber, CardPassword};
use crate::secrets::MasterKey;
use crate::store::Store;
use crate::{StoreError, StoreResult};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{mpsc, Arc};

/// Rows per chunk handed from the generator thread to the store.
pub const GENERATION_CHUNK_ROWS: usize = 4096;
/// Chunks the generator may run ahead of the store.
const GENERATION_CHUNKS_AHEAD: usize = 8;
/// Most rows one import file may hold.
pub const IMPORT_ROWS_MAX: usize = 100_000;

/// How far a batch's generation has come; shared with whoever shows progress.
#[derive(Debug, Default)]
pub struct BatchProgress {
    pub done: AtomicI64,
    pub total: AtomicI64,
}

impl BatchProgress {
    pub fn snapshot(&self) -> (i64, i64) {
        (
            self.done.load(Ordering::Relaxed),
            self.total.load(Ordering::Relaxed),
        )
    }
}

/// Creates the batch row for a generation (state `generating`). The cards
/// come from [`fill_generated_batch`], usually on a background task.
pub async fn start_generated_batch(
    store: &dyn Store,
    merchant_id: i64,
    spec: &BatchSpec,
    created_by: &str,
    now: i64,
) -> StoreResult<Batch> {
    // Refuse unknown goods before any card exists, not after.
    for goods_id in &spec.goods_ids {
        store.get_goods(merchant_id, *goods_id).await?;
    }
    store
        .create_batch(&NewBatch {
            merchant_id,
            name: spec.name.clone(),
            source: BatchSource::Generated,
            prefix: spec.prefix.as_str().to_owned(),
            number_length: spec.number_length as i64,
            numbering: spec.numbering,
            start_number: spec.start_number.map(|s| s as i64),
            password_length: spec.password_length as i64,
            password_charset: spec.password_charset,
            quantity: spec.quantity,
            face_value_fen: spec.face_value_fen,
            valid_from: spec.valid_from,
            valid_until: spec.valid_until,
            remark: spec.remark.clone(),
            created_by: created_by.to_owned(),
            created_at: now,
        })
        .await
}

/// Receives chunks that a generator thread computes while the store writes
/// the previous ones, so hashing and sealing overlap the inserts.
struct PipelinedSource(mpsc::Receiver<Vec<NewCard>>);

impl CardSource for PipelinedSource {
    fn next_chunk(&mut self) -> Vec<NewCard> {
        self.0.recv().unwrap_or_default()
    }
}

/// Generates and stores every card of a `generating` batch. On any error the
/// batch is marked `failed` and holds no cards.
pub async fn fill_generated_batch(
    store: &dyn Store,
    master: &MasterKey,
    batch: &Batch,
    spec: &BatchSpec,
    audit: AuditEntry,
    progress: Arc<BatchProgress>,
    now: i64,
) -> StoreResult<i64> {
    let result =
        fill_generated_batch_inner(store, master, batch, spec, &audit, progress, now).await;
    match &result {
        Ok(_) => {}
        Err(error) => {
            // The fill transaction rolled back, so marking the batch failed is all that is left.
            let message = match error {
                StoreError::Conflict(_) => "卡号与已有卡冲突，请重试或更换卡号前缀",
                _ => "生成失败",
            };
            store.fail_batch(batch.id, message, now).await?;
        }
    }
    result
}

async fn fill_generated_batch_inner(
    store: &dyn Store,
    master: &MasterKey,
    batch: &Batch,
    spec: &BatchSpec,
    audit: &AuditEntry,
    progress: Arc<BatchProgress>,
    now: i64,
) -> StoreResult<i64> {
    let merchant = store.get_merchant(batch.merchant_id).await?;
    let existing = store
        .numbers_with_prefix(batch.merchant_id, spec.prefix.as_str())
        .await?;
    let sequential_after = if spec.numbering == Numbering::Sequential && spec.start_number.is_none()
    {
        highest_sequential(&existing, spec.prefix.as_str(), spec.number_length)
    } else {
        0
    };
    let taken: HashSet<String> = existing.into_iter().collect();
    let numbers = NumberGenerator::new(spec, taken, sequential_after);
    let mut generator = CardGenerator::new(
        spec,
        master.merchant_keys(merchant.id, merchant.key_version),
        batch.serial_first,
        numbers,
    );
    progress.total.store(spec.quantity, Ordering::Relaxed);
    progress.done.store(0, Ordering::Relaxed);
    let (sender, receiver) = mpsc::sync_channel(GENERATION_CHUNKS_AHEAD);
    let producer_progress = Arc::clone(&progress);
    std::thread::Builder::new()
        .name(format!("batch-{}-generate", batch.id))
        .spawn(move || loop {
            let chunk = generator.next_chunk(GENERATION_CHUNK_ROWS);
            let n = chunk.len() as i64;
            if n == 0 || sender.send(chunk).is_err() {
                break;
            }
            producer_progress.done.fetch_add(n, Ordering::Relaxed);
        })
        .map_err(|e| StoreError::Backend(format!("cannot start generator thread: {e}")))?;
    let n_cards = store
        .fill_batch(
            batch.merchant_id,
            batch.id,
            Box::new(PipelinedSource(receiver)),
            audit,
            &AfterFill {
                goods_ids: spec.goods_ids.clone(),
                activate: spec.activate,
            },
            now,
        )
        .await?;
    if n_cards != spec.quantity {
        return Err(StoreError::Backend(format!(
            "generated {n_cards} of {} cards",
            spec.quantity
        )));
    }
    Ok(n_cards)
}

/// The highest numeric part among `existing` numbers of this prefix and length.
fn highest_sequential(existing: &[String], prefix: &str, number_length: usize) -> u64 {
    existing
        .iter()
        .filter(|n| n.len() == prefix.len() + number_length)
        .filter_map(|n| n[prefix.len()..].parse::<u64>().ok())
        .max()
        .unwrap_or(0)
}

/// One row of an import file as read: its line number (1-based, header = 1).
#[derive(Debug, Clone)]
pub struct ImportRow {
    pub line: usize,
    pub number: String,
    pub password: String,
}

/// Why one import row was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    pub line: usize,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("import file has errors")]
    Rows(Vec<RowError>),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Validates an import file completely: lengths, charset, duplicates in the
/// file and against existing cards. Any error means nothing is imported.
pub async fn validate_import(
    store: &dyn Store,
    merchant_id: i64,
    rows: &[ImportRow],
) -> Result<Vec<(CardNumber, CardPassword)>, ImportError> {
    if rows.is_empty() {
        return Err(ImportError::Invalid("导入文件中没有卡".into()));
    }
    if rows.len() > IMPORT_ROWS_MAX {
        return Err(ImportError::Invalid(format!(
            "一次最多导入 {IMPORT_ROWS_MAX} 张卡"
        )));
    }
    let mut errors = Vec::new();
    let mut parsed = Vec::with_capacity(rows.len());
    let mut first_line_of: HashMap<String, usize> = HashMap::new();
    for row in rows {
        let number = CardNumber::parse(&row.number);
        let password = CardPassword::parse(&row.password);
        match (number, password) {
            (Ok(number), Ok(password)) => {
                if let Some(first) = first_line_of.get(number.as_str()) {
                    errors.push(RowError {
                        line: row.line,
                        message: format!("卡号与第 {first} 行重复"),
                    });
                } else {
                    first_line_of.insert(number.as_str().to_owned(), row.line);
                    parsed.push((row.line, number, password));
                }
            }
            (number, password) => {
                let message = [number.err(), password.err()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join("；");
                errors.push(RowError {
                    line: row.line,
                    message,
                });
            }
        }
    }
    let numbers: Vec<String> = parsed
        .iter()
        .map(|(_, n, _)| n.as_str().to_owned())
        .collect();
    let taken: HashSet<String> = store
        .find_taken_numbers(merchant_id, &numbers)
        .await?
        .into_iter()
        .collect();
    for (line, number, _) in &parsed {
        if taken.contains(number.as_str()) {
            errors.push(RowError {
                line: *line,
                message: "卡号已存在".into(),
            });
        }
    }
    if !errors.is_empty() {
        errors.sort_by_key(|e| e.line);
        return Err(ImportError::Rows(errors));
    }
    Ok(parsed.into_iter().map(|(_, n, p)| (n, p)).collect())
}

/// Fields of an imported batch beyond its cards.
#[derive(Debug, Clone, Default)]
pub struct ImportFields {
    pub name: String,
    pub face_value_fen: Option<i64>,
    pub valid_from: Option<i64>,
    pub valid_until: Option<i64>,
    pub remark: String,
}

/// Imports validated cards as one new batch, all or nothing.
pub async fn import_batch(
    store: &dyn Store,
    master: &MasterKey,
    merchant_id: i64,
    fields: &ImportFields,
    cards: Vec<(CardNumber, CardPassword)>,
    audit: AuditEntry,
    now: i64,
) -> StoreResult<Batch> {
    let merchant = store.get_merchant(merchant_id).await?;
    let keys = master.merchant_keys(merchant.id, merchant.key_version);
    let password_length = cards
        .iter()
        .map(|(_, p)| p.expose().len())
        .max()
        .unwrap_or(0) as i64;
    let batch = store
        .create_batch(&NewBatch {
            merchant_id,
            name: if fields.name.trim().is_empty() {
                "导入".into()
            } else {
                fields.name.trim().to_owned()
            },
            source: BatchSource::Imported,
            prefix: String::new(),
            number_length: cards
                .iter()
                .map(|(n, _)| n.as_str().len())
                .max()
                .unwrap_or(0) as i64,
            numbering: Numbering::Sequential,
            start_number: None,
            password_length,
            password_charset: crate::batch::PasswordCharset::Mixed,
            quantity: cards.len() as i64,
            face_value_fen: fields.face_value_fen,
            valid_from: fields.valid_from,
            valid_until: fields.valid_until,
            remark: fields.remark.clone(),
            created_by: audit.actor.label.clone(),
            created_at: now,
        })
        .await?;
    let rows: Vec<NewCard> = cards
        .iter()
        .enumerate()
        .map(|(i, (number, password))| {
            imported_card(&keys, batch.serial_first + i as i64, number, password)
        })
        .collect();
    match store
        .fill_batch(
            merchant_id,
            batch.id,
            Box::new(VecSource(Some(rows))),
            &audit,
            &AfterFill::default(),
            now,
        )
        .await
    {
        Ok(_) => store.get_batch(merchant_id, batch.id).await,
        Err(error) => {
            store.fail_batch(batch.id, "导入失败", now).await?;
            Err(error)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequential_numbering_continues_after_the_highest_number_of_its_shape() {
        let existing = vec![
            "A00000003".to_owned(),
            "A00000001".to_owned(),
            "A99".to_owned(),
            "AXYZ00009".to_owned(),
        ];
        assert_eq!(highest_sequential(&existing, "A", 8), 3);
        assert_eq!(highest_sequential(&[], "A", 8), 0);
    }
}
