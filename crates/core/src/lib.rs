//! kaquan's domain: card, batch and staff rules, secret handling, and the
//! `Store` trait that the database backends implement.
//!
//! Nothing here performs I/O or knows about HTTP, SQL or an async runtime;
//! the use cases in [`usecases`] are written against [`store::Store`] and
//! run the same on every backend.

pub mod auth;
pub mod batch;
pub mod card;
pub mod clock;
pub mod error;
pub mod giftcard;
pub mod goods;
pub mod ledger;
pub mod money;
pub mod pickup;
pub mod redeem;
pub mod secrets;
pub mod signing;
pub mod store;
pub mod text;
pub mod usecases;

pub use error::{StoreError, StoreResult};
