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
