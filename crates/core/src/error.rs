//! Errors the store reports to the use cases.

/// A failure reported by a [`crate::store::Store`].
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A unique constraint or a guarded precondition did not hold.
    #[error("conflict: {0:?}")]
    Conflict(Conflict),
    /// The database rejected the value (a CHECK constraint).
    #[error("invalid: {0}")]
    Invalid(String),
    /// The database could not be reached or failed; the message is for logs only.
    #[error("database error: {0}")]
    Backend(String),
}

/// Which uniqueness or precondition a write ran into. Handlers map each to
/// its own answer; nothing parses a database's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conflict {
    /// A unique name, number, phone, key, nonce or link exists already.
    Duplicate,
    /// The card is not active within its validity (used, inactive, voided,
    /// expired, or another pickup won the race).
    CardNotUsable,
    /// The order is not pending (shipped, picked up or cancelled).
    OrderNotPending { order_id: i64 },
    /// The order's card is no longer used, so cancelling cannot give it back.
    CardNotUsed,
    /// The template's unused codes are not what the merchant confirmed, or
    /// the template is gone.
    CodesChanged,
    /// The merchant already has the most active API keys allowed.
    ApiKeysFull,
    /// A signed request's nonce was seen before.
    NonceUsed,
    /// A webhook delivery's lease ended and another attempt was counted
    /// before this one's outcome was recorded.
    DeliveryLeaseLost,
    /// A coupon program was edited or changed state since the version an
    /// edit was made on.
    ProgramChanged,
    /// The store found, looking a code up inside its transaction, that the
    /// verification needs something made outside it first (the code of the
    /// coupon 核销后返券 gives): the caller looks the code up, then verifies.
    LookUpFirst,
    /// A merchant's 券点 balance is not the one a grant was made on.
    CreditsChanged,
    /// An activation would take the staff member past the day's cap (双人复核).
    DailyCapReached,
}

pub type StoreResult<T> = Result<T, StoreError>;
