//! `kaquan backup` of a SQLite database: SQLite's online backup API copies
//! every page in one step, inside one read transaction, so the copy is the
//! database as of one moment while the server keeps writing (WAL readers
//! never block the writer, and a one-step copy never restarts).

use crate::sql::map_err;
use kaquan_core::{StoreError, StoreResult};
use rusqlite::backup::{Backup, StepResult};
use rusqlite::Connection;
use std::path::Path;

/// What a backup holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupInfo {
    /// The newest migration applied.
    pub schema_version: i64,
    pub pages: i64,
}

/// Copies the database at `source` into a new file at `target`.
pub fn backup(source: &Path, target: &Path) -> StoreResult<BackupInfo> {
    if !source.exists() {
        return Err(StoreError::Backend(format!(
            "database file {} does not exist",
            source.display()
        )));
    }
    let src = Connection::open(source).map_err(map_err)?;
    src.busy_timeout(std::time::Duration::from_secs(30))
        .map_err(map_err)?;
    let mut dst = Connection::open(target).map_err(map_err)?;
    {
        let copy = Backup::new(&src, &mut dst).map_err(map_err)?;
        match copy.step(-1).map_err(map_err)? {
            StepResult::Done => {}
            other => {
                return Err(StoreError::Backend(format!(
                    "the backup did not complete: {other:?}"
                )))
            }
        }
    }
    let schema_version = dst
        .query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            [],
            |r| r.get(0),
        )
        .map_err(map_err)?;
    let pages = dst
        .query_row("PRAGMA page_count", [], |r| r.get(0))
        .map_err(map_err)?;
    // The copy keeps the source's WAL mode; fold its pages into the file so
    // that the one file is the whole backup.
    dst.execute_batch("PRAGMA journal_mode = DELETE")
        .map_err(map_err)?;
    Ok(BackupInfo {
        schema_version,
        pages,
    })
}
