//! Errors the store reports to the use cases.

/// A failure reported by a [`crate::store::Store`].
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A unique constraint or a guarded precondition did not hold.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The database rejected the value (a CHECK constraint).
    #[error("invalid: {0}")]
    Invalid(String),
    /// The database could not be reached or failed; the message is for logs only.
    #[error("database error: {0}")]
    Backend(String),
}

pub type StoreResult<T> = Result<T, StoreError>;
