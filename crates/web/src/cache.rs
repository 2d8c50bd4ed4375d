//! A small per-node cache whose entries expire after a fixed time: what a
//! node may trust without asking the database on every request (API keys,
//! 礼品卡设置). The node that changes a value forgets it at once; other nodes
//! see the change when their entry expires.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Entries one cache keeps at most; beyond that it starts over.
const ENTRIES_MAX: usize = 10_000;

pub struct TtlCache<K, V> {
    ttl: Duration,
    entries: Mutex<HashMap<K, (V, Instant)>>,
}

impl<K: Eq + Hash, V: Clone> TtlCache<K, V> {
    pub fn new(ttl_seconds: u64) -> Self {
        Self {
            ttl: Duration::from_secs(ttl_seconds),
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The value while it is fresh.
    pub fn get(&self, key: &K) -> Option<V> {
        let entries = self.entries.lock().expect("cache lock");
        let (value, at) = entries.get(key)?;
        (at.elapsed() < self.ttl).then(|| value.clone())
    }

    pub fn put(&self, key: K, value: V) {
        let mut entries = self.entries.lock().expect("cache lock");
        if entries.len() >= ENTRIES_MAX {
            entries.clear();
        }
        entries.insert(key, (value, Instant::now()));
    }

    /// Forgets a value at once (after this node changed it).
    pub fn forget(&self, key: &K) {
        self.entries.lock().expect("cache lock").remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::TtlCache;

    #[test]
    fn values_expire_and_can_be_forgotten() {
        let fresh = TtlCache::new(60);
        fresh.put(1, "a");
        assert_eq!(fresh.get(&1), Some("a"));
        fresh.forget(&1);
        assert_eq!(fresh.get(&1), None);
        let stale = TtlCache::new(0);
        stale.put(1, "a");
        assert_eq!(stale.get(&1), None);
    }
}
