//! The nonces of signed requests that the writer has seen (migration 12).
//!
//! A nonce must be refused when it comes again, so every signed request
//! asks "seen before?" and records its nonce. Kept as a unique B-tree in
//! the database, each of those records landed on a random page among the
//! nonces of its second, and those pages were over half of what a group
//! commit wrote. Only the writer thread records nonces, so it keeps the set
//! in memory and the database keeps them as a log appended in arrival
//! order (one page per group): the set decides, the log makes it durable.
//!
//! - A nonce is claimed inside the group's transaction and its log row is
//!   written in the same transaction; a claim whose transaction (or
//!   savepoint) rolls back is undone, so the set holds exactly the
//!   committed nonces plus the open transaction's.
//! - The set is read from the log on the first claim, so a restarted server
//!   refuses nonces it saw before; a store that never checks a signature
//!   (a CLI command) never reads it.
//! - Another process writing the same file (a second `kaquan serve` on one
//!   SQLite database) appends to the same log: when `PRAGMA data_version`
//!   says another connection has committed, the writer reads the log rows
//!   after the last one it knows before it decides.

use kaquan_core::{Conflict, StoreError, StoreResult};
use rusqlite::{params, Connection};
use std::collections::{BTreeMap, HashSet};

use crate::engine::in_transaction;
use crate::sql::map_err;
use kaquan_core::ledger::NonceUse;

struct Claim {
    signed_at: i64,
    digest: i64,
    last_id_before: i64,
}

/// The nonces seen, by signed second, and where the writer is in the log.
#[derive(Default)]
pub(crate) struct SeenNonces {
    /// Digests (`NonceUse::digest`) by signed timestamp.
    by_second: BTreeMap<i64, HashSet<i64>>,
    /// Whether the log has been read into `by_second`.
    loaded: bool,
    /// Whether the set has been checked against the log in the open
    /// transaction.
    current: bool,
    /// The last log row the set holds (the claims' own included).
    last_id: i64,
    /// `PRAGMA data_version` when the set was last brought up to date.
    data_version: i64,
    /// Claimed in the open transaction, in order, each with `last_id` as it
    /// was before the claim: undone if it rolls back.
    claimed: Vec<Claim>,
}

impl SeenNonces {
    /// A new transaction has begun: the set is checked again on first use.
    pub(crate) fn begin(&mut self) {
        self.current = false;
    }

    /// Claims a nonce not seen before and appends its log row; false (and
    /// nothing written) when it has been seen.
    pub(crate) fn claim(
        &mut self,
        conn: &Connection,
        signed_at: i64,
        digest: i64,
    ) -> StoreResult<bool> {
        if !self.claim_unlogged(conn, signed_at, digest)? {
            return Ok(false);
        }
        conn.prepare_cached("INSERT INTO api_nonces (signed_at, digest) VALUES (?1, ?2)")
            .and_then(|mut s| s.execute(params![signed_at, digest]))
            .map_err(map_err)?;
        self.logged(conn);
        Ok(true)
    }

    /// Claims a nonce whose log row the caller writes (set-wise, many in
    /// one statement, then `logged`); false when it has been seen.
    pub(crate) fn claim_unlogged(
        &mut self,
        conn: &Connection,
        signed_at: i64,
        digest: i64,
    ) -> StoreResult<bool> {
        self.bring_up_to_date(conn)?;
        if !self.by_second.entry(signed_at).or_default().insert(digest) {
            return Ok(false);
        }
        self.claimed.push(Claim {
            signed_at,
            digest,
            last_id_before: self.last_id,
        });
        Ok(true)
    }

    /// The caller's log rows have been inserted: they are the newest.
    pub(crate) fn logged(&mut self, conn: &Connection) {
        self.last_id = conn.last_insert_rowid();
    }

    /// How many claims the open transaction holds (for `undo_to`).
    pub(crate) fn mark(&self) -> usize {
        self.claimed.len()
    }

    /// Undoes the claims after `mark`: their savepoint (or, from 0, their
    /// transaction) was rolled back, and with it their log rows.
    pub(crate) fn undo_to(&mut self, mark: usize) {
        let undone = self.claimed.split_off(mark);
        if let Some(first) = undone.first() {
            self.last_id = first.last_id_before;
        }
        for claim in undone {
            if let Some(second) = self.by_second.get_mut(&claim.signed_at) {
                second.remove(&claim.digest);
            }
        }
    }

    /// The open transaction committed: its claims stay.
    pub(crate) fn committed(&mut self) {
        self.claimed.clear();
    }

    /// Forgets the nonces signed before `signed_before`: a request signed
    /// then is refused for its timestamp anyway.
    pub(crate) fn forget_before(&mut self, signed_before: i64) {
        self.by_second = self.by_second.split_off(&signed_before);
    }

    /// Reads the whole log on first use, and afterwards the rows another
    /// connection has appended since the set was last brought up to date.
    fn bring_up_to_date(&mut self, conn: &Connection) -> StoreResult<()> {
        if self.current {
            return Ok(());
        }
        let data_version: i64 = conn
            .prepare_cached("PRAGMA data_version")
            .and_then(|mut s| s.query_row([], |r| r.get(0)))
            .map_err(map_err)?;
        if !self.loaded || data_version != self.data_version {
            let after = if self.loaded { self.last_id } else { 0 };
            let mut read = conn
                .prepare_cached(
                    "SELECT id, signed_at, digest FROM api_nonces WHERE id > ?1 ORDER BY id",
                )
                .map_err(map_err)?;
            let rows = read
                .query_map([after], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .map_err(map_err)?;
            for row in rows {
                let (id, signed_at, digest): (i64, i64, i64) = row.map_err(map_err)?;
                self.by_second.entry(signed_at).or_default().insert(digest);
                self.last_id = id;
            }
            self.loaded = true;
            self.data_version = data_version;
        }
        self.current = true;
        Ok(())
    }
}

/// A nonce the set refused, as the store reports it.
pub(crate) fn reused() -> StoreError {
    StoreError::Conflict(Conflict::NonceUsed)
}

/// Moves the nonces migration 10 set aside into the compact table: their
/// digest needs SHA-256, which SQL lacks. One transaction; until it has
/// committed, every open tries again.
pub(crate) fn carry_over_nonces(conn: &Connection) -> StoreResult<()> {
    let set_aside: bool = conn
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'api_nonces_before_10'",
            [],
            |r| r.get(0),
        )
        .map_err(map_err)?;
    if !set_aside {
        return Ok(());
    }
    in_transaction(conn, || {
        let nonces: Vec<NonceUse> = conn
            .prepare("SELECT signed_at, key_id, nonce FROM api_nonces_before_10")?
            .query_map([], |r| {
                Ok(NonceUse {
                    signed_at: r.get(0)?,
                    api_key_id: r.get(1)?,
                    nonce: r.get(2)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        let mut insert = conn.prepare(
            "INSERT INTO api_nonces (signed_at, digest) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
        )?;
        for nonce in &nonces {
            insert.execute(params![nonce.signed_at, nonce.digest()])?;
        }
        conn.execute_batch("DROP TABLE api_nonces_before_10")
    })
}
