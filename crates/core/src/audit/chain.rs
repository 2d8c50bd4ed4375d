//! The audit chain: every audit record, once sealed, carries its place in
//! its merchant's chain (`seq`, from 1), the hash of the record before it
//! and its own hash, SHA-256 over a canonical encoding of the record with
//! both. Deleting, editing or reordering sealed records breaks the chain
//! where it happened; `kaquan verify` walks every chain and names the first
//! broken link, and a head written down elsewhere shows a cut-off tail.
//!
//! Records are written in the transaction of their change, unsealed, and a
//! sealer (beside every server, and at each `kaquan verify` or `kaquan audit`
//! command) links them in the order it finds them, one sealer at a time.
//! So no change ever waits on its merchant's chain, and a record is
//! unprotected only for the second or so until it is sealed.
//!
//! The encoding, which an auditor's script repeats (see the README): the
//! netstrings (`<byte length>:<bytes>,`) of `kaquan-audit-v1`, the merchant
//! id, seq, record id, actor's staff id (empty when none), actor, action,
//! target, detail, rows affected, creation time (unix seconds) and the
//! previous hash in lower-case hex; integers in decimal.

use super::AuditRecord;
use crate::secrets::to_hex;
use crate::StoreResult;
use sha2::{Digest, Sha256};

/// The previous hash of a chain's first record.
pub const GENESIS: [u8; 32] = [0; 32];

/// A record with its link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedRecord {
    pub record: AuditRecord,
    pub seq: i64,
    pub prev_hash: [u8; 32],
    pub hash: [u8; 32],
}

/// The last sealed record of a merchant's chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainHead {
    pub merchant_id: i64,
    pub seq: i64,
    pub hash: [u8; 32],
    /// When the head record was written.
    pub created_at: i64,
}

impl ChainHead {
    /// `seq:hash`, as `kaquan audit head` prints and `--check` reads.
    pub fn text(&self) -> String {
        format!("{}:{}", self.seq, to_hex(&self.hash))
    }
}

fn netstring(out: &mut Vec<u8>, field: &[u8]) {
    out.extend_from_slice(field.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(field);
    out.push(b',');
}

/// The canonical encoding of `record` at `seq` after `prev_hash`.
pub fn canonical(record: &AuditRecord, seq: i64, prev_hash: &[u8; 32]) -> Vec<u8> {
    let e = &record.entry;
    let mut out = Vec::with_capacity(256 + e.target.len() + e.detail.len());
    let staff = e
        .actor
        .staff_id
        .map(|id| id.to_string())
        .unwrap_or_default();
    for field in [
        "kaquan-audit-v1".to_owned(),
        e.merchant_id.to_string(),
        seq.to_string(),
        record.id.to_string(),
        staff,
    ] {
        netstring(&mut out, field.as_bytes());
    }
    for field in [&e.actor.label, &e.action, &e.target, &e.detail] {
        netstring(&mut out, field.as_bytes());
    }
    for n in [e.n_affected, e.created_at] {
        netstring(&mut out, n.to_string().as_bytes());
    }
    netstring(&mut out, to_hex(prev_hash).as_bytes());
    out
}

/// The hash of `record` at `seq` after `prev_hash`.
pub fn link_hash(record: &AuditRecord, seq: i64, prev_hash: &[u8; 32]) -> [u8; 32] {
    Sha256::digest(canonical(record, seq, prev_hash)).into()
}

/// The merchants `records` belong to, each once, in order: whose heads a
/// sealer reads before linking them.
pub fn merchants_of(records: &[AuditRecord]) -> Vec<i64> {
    let mut merchants: Vec<i64> = records.iter().map(|r| r.entry.merchant_id).collect();
    merchants.sort_unstable();
    merchants.dedup();
    merchants
}

/// Links `unsealed` (in the order found) after each merchant's `heads`:
/// what a sealer writes. `heads` gives (merchant, last seq, last hash).
pub fn seal(unsealed: &[AuditRecord], heads: &[(i64, i64, [u8; 32])]) -> Vec<SealedRecord> {
    let mut heads: std::collections::HashMap<i64, (i64, [u8; 32])> = heads
        .iter()
        .map(|(merchant, seq, hash)| (*merchant, (*seq, *hash)))
        .collect();
    unsealed
        .iter()
        .map(|record| {
            let head = heads
                .entry(record.entry.merchant_id)
                .or_insert((0, GENESIS));
            let seq = head.0 + 1;
            let prev_hash = head.1;
            let hash = link_hash(record, seq, &prev_hash);
            *head = (seq, hash);
            SealedRecord {
                record: record.clone(),
                seq,
                prev_hash,
                hash,
            }
        })
        .collect()
}

/// Walks one merchant's chain, record by record in `seq` order, and keeps
/// the first broken link.
#[derive(Debug, Clone)]
struct ChainWalk {
    merchant_id: i64,
    last: (i64, [u8; 32]),
    first_break: Option<String>,
    n_checked: i64,
}

impl ChainWalk {
    fn new(merchant_id: i64) -> Self {
        Self {
            merchant_id,
            last: (0, GENESIS),
            first_break: None,
            n_checked: 0,
        }
    }

    /// The next record of the chain.
    fn step(&mut self, sealed: &SealedRecord) {
        self.n_checked += 1;
        if self.first_break.is_some() {
            return;
        }
        let (m, id, seq) = (self.merchant_id, sealed.record.id, sealed.seq);
        let why = if seq != self.last.0 + 1 {
            Some(format!(
                "follows #{} of the chain: a record before it is missing or moved",
                self.last.0
            ))
        } else if sealed.prev_hash != self.last.1 {
            Some("does not name the hash of the record before it".to_owned())
        } else if link_hash(&sealed.record, seq, &sealed.prev_hash) != sealed.hash {
            Some("was changed after it was sealed".to_owned())
        } else {
            None
        };
        match why {
            Some(why) => {
                self.first_break = Some(format!(
                "audit chain of merchant {m} broken at record {id} (#{seq} of the chain): it {why}"
            ))
            }
            None => self.last = (seq, sealed.hash),
        }
    }

    /// The first broken link, if any.
    fn finish(self) -> Option<String> {
        self.first_break
    }
}

/// Walks every merchant's chain from records in (merchant, seq) order.
#[derive(Debug, Default)]
pub struct ChainsCheck {
    walk: Option<ChainWalk>,
    broken: Vec<String>,
    walked: i64,
}

impl ChainsCheck {
    pub fn step(&mut self, sealed: &SealedRecord) {
        let m = sealed.record.entry.merchant_id;
        if self.walk.as_ref().is_none_or(|w| w.merchant_id != m) {
            self.end_walk();
            self.walk = Some(ChainWalk::new(m));
        }
        if let Some(walk) = self.walk.as_mut() {
            walk.step(sealed);
        }
    }

    fn end_walk(&mut self) {
        if let Some(done) = self.walk.take() {
            self.walked += done.n_checked;
            self.broken.extend(done.finish());
        }
    }

    /// The first broken link of each chain, and how many records were walked.
    pub fn finish(mut self) -> (Vec<String>, i64) {
        self.end_walk();
        (self.broken, self.walked)
    }
}

/// How many records one sealing transaction links at most.
pub const SEAL_BATCH: i64 = 5_000;

/// Seals every pending record; returns how many.
pub async fn seal_all(store: &dyn AuditChainStore) -> StoreResult<i64> {
    let mut n = 0;
    loop {
        let sealed = store.seal_audit(SEAL_BATCH).await?;
        n += sealed;
        if sealed < SEAL_BATCH {
            return Ok(n);
        }
    }
}

/// Reads `seq:hash` as `kaquan audit head` prints it.
pub fn parse_head(text: &str) -> Option<(i64, [u8; 32])> {
    let (seq, hex) = text.trim().split_once(':')?;
    let seq: i64 = seq.parse().ok().filter(|s| *s > 0)?;
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some((seq, crate::secrets::from_hex(hex)?.try_into().ok()?))
}

/// The audit chain in the database.
#[async_trait::async_trait]
pub trait AuditChainStore: Send + Sync + 'static {
    /// Seals up to `limit` of the oldest unsealed records, across
    /// merchants, one sealer at a time; returns how many.
    async fn seal_audit(&self, limit: i64) -> StoreResult<i64>;

    /// Each merchant's head (the merchant's alone when given).
    async fn audit_heads(&self, merchant_id: Option<i64>) -> StoreResult<Vec<ChainHead>>;

    /// The sealed records of a merchant written in `[from, to)`, in chain
    /// order, for an auditor.
    async fn sealed_audit(
        &self,
        merchant_id: i64,
        from: i64,
        to: i64,
    ) -> StoreResult<Vec<SealedRecord>>;

    /// The first broken link of every merchant's chain, and how many
    /// records were walked.
    async fn check_audit_chains(&self) -> StoreResult<(Vec<String>, i64)>;

    /// The sealed record at `seq` of a merchant's chain.
    async fn sealed_at(&self, merchant_id: i64, seq: i64) -> StoreResult<Option<SealedRecord>>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{Actor, AuditEntry};

    fn record(id: i64, merchant_id: i64, staff: Option<i64>, label: &str) -> AuditRecord {
        AuditRecord {
            id,
            entry: AuditEntry {
                merchant_id,
                actor: Actor {
                    staff_id: staff,
                    label: label.into(),
                },
                action: "activate_cards".into(),
                target: "batch=5".into(),
                detail: "面值 100 元".into(),
                n_affected: 10,
                created_at: 1_764_547_200,
            },
        }
    }

    /// The hashes an auditor's script computes (Python's hashlib over the
    /// README's netstrings), pinned so that the encoding never drifts.
    #[test]
    fn the_encoding_matches_the_documented_vectors() {
        let first = record(42, 7, Some(3), "老王");
        let encoded = canonical(&first, 1, &GENESIS);
        let expected = "15:kaquan-audit-v1,1:7,1:1,2:42,1:3,6:老王,14:activate_cards,7:batch=5,\
                        14:面值 100 元,2:10,10:1764547200,64:"
            .to_owned()
            + &"0".repeat(64)
            + ",";
        assert_eq!(String::from_utf8(encoded).unwrap(), expected);
        let h1 = link_hash(&first, 1, &GENESIS);
        assert_eq!(
            to_hex(&h1),
            "ad34265440167b6aeea61bef5db56acdf69e36bdc8d0bbb1820d216288858b0b"
        );
        let mut second = record(43, 7, None, "cli");
        second.entry.action = "void_cards".into();
        second.entry.target = "serial=1..2".into();
        second.entry.detail = String::new();
        second.entry.n_affected = 2;
        second.entry.created_at = 1_764_547_260;
        assert_eq!(
            to_hex(&link_hash(&second, 2, &h1)),
            "306d934bee79c6c390fbee84a8628dbd4e823ca45b1b826643ac4817aafa7397"
        );
    }

    fn walk(chain: &[SealedRecord]) -> Option<String> {
        let mut check = ChainsCheck::default();
        for sealed in chain {
            check.step(sealed);
        }
        let (mut broken, walked) = check.finish();
        assert_eq!(walked, chain.len() as i64);
        assert!(broken.len() <= 1, "one chain, one first break");
        broken.pop()
    }

    fn chain_of(n: i64) -> Vec<SealedRecord> {
        let records: Vec<AuditRecord> = (1..=n)
            .map(|id| record(id, 7, None, &format!("staff{id}")))
            .collect();
        seal(&records, &[])
    }

    #[test]
    fn sealing_continues_each_merchants_chain_from_its_head() {
        let records = [
            record(10, 7, None, "a"),
            record(11, 8, None, "b"),
            record(12, 7, None, "c"),
        ];
        let head = [0xab; 32];
        let sealed = seal(&records, &[(7, 4, head)]);
        assert_eq!(sealed.iter().map(|s| s.seq).collect::<Vec<_>>(), [5, 1, 6]);
        assert_eq!(sealed[0].prev_hash, head);
        assert_eq!(
            sealed[1].prev_hash, GENESIS,
            "a new chain starts at genesis"
        );
        assert_eq!(sealed[2].prev_hash, sealed[0].hash);
        assert_eq!(sealed[0].hash, link_hash(&records[0], 5, &head));
        let h = ChainHead {
            merchant_id: 7,
            seq: 6,
            hash: sealed[2].hash,
            created_at: 0,
        };
        assert_eq!(h.text(), format!("6:{}", to_hex(&sealed[2].hash)));
    }

    /// A store with `pending` records to seal, sealing at most the limit
    /// each time, as the real ones do.
    struct Pending(std::sync::Mutex<(i64, Vec<i64>)>);

    #[async_trait::async_trait]
    impl AuditChainStore for Pending {
        async fn seal_audit(&self, limit: i64) -> StoreResult<i64> {
            let mut state = self.0.lock().unwrap();
            let n = state.0.min(limit);
            state.0 -= n;
            state.1.push(n);
            Ok(n)
        }
        async fn audit_heads(&self, _: Option<i64>) -> StoreResult<Vec<ChainHead>> {
            unreachable!()
        }
        async fn sealed_audit(&self, _: i64, _: i64, _: i64) -> StoreResult<Vec<SealedRecord>> {
            unreachable!()
        }
        async fn check_audit_chains(&self) -> StoreResult<(Vec<String>, i64)> {
            unreachable!()
        }
        async fn sealed_at(&self, _: i64, _: i64) -> StoreResult<Option<SealedRecord>> {
            unreachable!()
        }
    }

    /// Runs a future that never waits (the store above answers at once).
    fn at_once<F: std::future::Future>(future: F) -> F::Output {
        let mut future = std::pin::pin!(future);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match future.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(done) => done,
            std::task::Poll::Pending => panic!("the store answers at once"),
        }
    }

    #[test]
    fn sealing_all_takes_batches_until_one_is_short() {
        for (pending, calls) in [
            (0, vec![0]),
            (12_001, vec![SEAL_BATCH, SEAL_BATCH, 2_001]),
            (2 * SEAL_BATCH, vec![SEAL_BATCH, SEAL_BATCH, 0]),
        ] {
            let store = Pending(std::sync::Mutex::new((pending, Vec::new())));
            assert_eq!(at_once(seal_all(&store)).unwrap(), pending);
            assert_eq!(store.0.lock().unwrap().1, calls);
        }
    }

    #[test]
    fn a_written_down_head_reads_back() {
        let hash = [0xab; 32];
        let head = ChainHead {
            merchant_id: 1,
            seq: 12,
            hash,
            created_at: 0,
        };
        assert_eq!(parse_head(&head.text()), Some((12, hash)));
        assert_eq!(
            parse_head(&format!(" 12:{} ", "AB".repeat(32))),
            Some((12, hash))
        );
        for bad in [
            "12",
            "0:".to_owned().as_str(),
            &format!("0:{}", "ab".repeat(32)),
            &format!("-1:{}", "ab".repeat(32)),
            &format!("x:{}", "ab".repeat(32)),
            &format!("12:{}", "ab".repeat(31)),
            &format!("12:{}g", "ab".repeat(31) + "a"),
        ] {
            assert_eq!(parse_head(bad), None, "{bad}");
        }
    }

    #[test]
    fn each_merchants_chain_is_walked_apart() {
        let mut records: Vec<AuditRecord> = (1..=3).map(|id| record(id, 7, None, "a")).collect();
        records.extend((4..=5).map(|id| record(id, 9, None, "b")));
        let mut sealed = seal(&records, &[]);
        sealed[4].record.entry.detail = "x".into();
        let mut check = ChainsCheck::default();
        for s in &sealed {
            check.step(s);
        }
        let (broken, walked) = check.finish();
        assert_eq!(walked, 5);
        assert_eq!(broken.len(), 1);
        assert!(
            broken[0].contains("merchant 9 broken at record 5 (#2"),
            "{broken:?}"
        );
        assert_eq!(ChainsCheck::default().finish(), (Vec::new(), 0));
    }

    #[test]
    fn an_untouched_chain_walks_clean_and_every_tampering_is_named() {
        let chain = chain_of(4);
        assert_eq!(walk(&chain), None);
        // An edited record.
        let mut edited = chain.clone();
        edited[2].record.entry.n_affected = 11;
        let broken = walk(&edited).unwrap();
        assert!(broken.contains("record 3 (#3"), "{broken}");
        assert!(broken.contains("changed"), "{broken}");
        // A deleted record: the next one follows a gap.
        let mut deleted = chain.clone();
        deleted.remove(1);
        let broken = walk(&deleted).unwrap();
        assert!(
            broken.contains("record 3 (#3") && broken.contains("missing"),
            "{broken}"
        );
        // Two records swapped in the chain's order.
        let mut swapped = chain.clone();
        swapped.swap(1, 2);
        assert!(walk(&swapped).unwrap().contains("record 3 (#3"));
        // Contents swapped between two ids, links kept.
        let mut moved = chain.clone();
        let (a, b) = (moved[1].record.entry.clone(), moved[2].record.entry.clone());
        moved[1].record.entry = b;
        moved[2].record.entry = a;
        assert!(walk(&moved).unwrap().contains("record 2 (#2"));
        // A record re-linked after another: its previous hash is wrong.
        let mut relinked = chain.clone();
        relinked[3].prev_hash = chain[1].hash;
        relinked[3].hash = link_hash(&relinked[3].record, 4, &relinked[3].prev_hash);
        let broken = walk(&relinked).unwrap();
        assert!(broken.contains("does not name"), "{broken}");
        // Only the first break is named.
        let mut twice = chain;
        twice[1].record.entry.actor.label = "x".into();
        twice[3].record.entry.actor.label = "y".into();
        assert!(walk(&twice).unwrap().contains("record 2 (#2"));
    }
}
