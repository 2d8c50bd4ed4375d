//! 兑换防刷: failed attempts counted per card, client, customer or name
//! within a window, and the decision whether the next one may proceed.

use crate::StoreResult;

/// The window the attempt limits count in.
pub const ATTEMPT_WINDOW_SECONDS: i64 = 3600;

/// How long a locked card, client, customer or name waits, in seconds, when
/// failures count from `since` (now minus the window) and the oldest of them
/// happened at `oldest_failure`: it counts up to and including
/// `oldest_failure + window`, so the lock lifts one second later.
pub fn retry_after_seconds(oldest_failure: i64, since: i64) -> i64 {
    (oldest_failure - since + 1).max(1)
}
pub const ATTEMPT_LIMIT_MAX: i64 = 1000;

/// The 兑换防刷 decision, the one place it is made (the stores count, and
/// run this inside their transaction): with `n_failures` under a key since
/// `since`, the oldest at `oldest_failure`, is the next attempt refused?
/// `Some(seconds to wait)` when it is.
pub fn lock(n_failures: i64, oldest_failure: Option<i64>, since: i64, limit: i64) -> Option<i64> {
    is_locked(n_failures, limit).then(|| {
        retry_after_seconds(
            oldest_failure.unwrap_or(since + ATTEMPT_WINDOW_SECONDS),
            since,
        )
    })
}

/// Whether `n_failures` within the window reach `limit`.
pub fn is_locked(n_failures: i64, limit: i64) -> bool {
    n_failures >= limit
}

/// The key a customer's failed code redemptions are counted under. The
/// set-wise SQL spells the same prefix (`'code-customer:' || id`).
pub fn code_customer_key(customer_id: i64) -> String {
    format!("code-customer:{customer_id}")
}

/// The key a client's (an address's, an API key's) failed code
/// redemptions are counted under.
pub fn code_client_key(client: &str) -> String {
    format!("code-client:{client}")
}

/// Failed-attempt counters in the database (the decision is here, not there).
#[async_trait::async_trait]
pub trait AttemptStore: Send + Sync + 'static {
    async fn count_failures(&self, merchant_id: i64, key: &str, since: i64) -> StoreResult<i64>;
    /// When the oldest failure under `key` since `since` happened.
    async fn oldest_failure(
        &self,
        merchant_id: i64,
        key: &str,
        since: i64,
    ) -> StoreResult<Option<i64>>;
    async fn record_failure(&self, merchant_id: i64, key: &str, now: i64) -> StoreResult<()>;
    /// Forgets the failures under `key` (a successful sign-in, an operator's
    /// password reset).
    async fn clear_failures(&self, merchant_id: i64, key: &str) -> StoreResult<()>;
}

#[cfg(test)]
mod retry_tests {
    use super::*;

    #[test]
    fn the_limit_locks_at_the_limit_and_says_how_long() {
        let since = 10_000;
        assert_eq!(lock(2, Some(since + 5), since, 3), None);
        assert_eq!(lock(3, Some(since + 5), since, 3), Some(6));
        assert_eq!(lock(4, Some(since), since, 3), Some(1));
        assert_eq!(
            lock(3, None, since, 3),
            Some(ATTEMPT_WINDOW_SECONDS + 1),
            "no oldest failure known: a whole window"
        );
        assert!(is_locked(0, 0), "a limit of zero refuses everything");
        assert_eq!(code_customer_key(7), "code-customer:7");
        assert_eq!(code_client_key("ip:1"), "code-client:ip:1");
    }

    #[test]
    fn a_lock_lifts_the_second_after_its_oldest_failure_leaves_the_window() {
        let now = 10_000;
        let since = now - ATTEMPT_WINDOW_SECONDS;
        assert_eq!(retry_after_seconds(now, since), ATTEMPT_WINDOW_SECONDS + 1);
        assert_eq!(
            retry_after_seconds(now - 10, since),
            ATTEMPT_WINDOW_SECONDS - 9
        );
        assert_eq!(retry_after_seconds(since, since), 1);
        assert_eq!(retry_after_seconds(since - 5, since), 1, "never zero");
    }
}
