//! The embedded SQLite backend: one file, WAL, `synchronous=FULL`.
//!
//! [`engine`] holds the connections, the writer thread with group commit,
//! migrations and checkpoints; every other module implements one domain's
//! store sub-trait of `kaquan_core` (the same names as core's modules).
//!
//! Architecture invariant: this crate (its modules and `migrations/`) holds
//! all of kaquan's SQLite SQL.

mod analytics;
mod api_keys;
mod approvals;
mod attempts;
mod audit;
mod audit_chain;
mod backup;
mod batches;
mod card_sales;
mod cards;
mod codes;
mod coupon_issues;
mod coupon_verifications;
mod coupons;
mod credits;
mod customers;
mod dashboard;
mod distributors;
mod ecard_orders;
mod ecards;
mod engine;
mod erp;
mod events;
mod giftcard;
mod goods;
mod keys;
mod ledger;
mod locations;
mod maintenance;
mod mall;
mod member_expiry;
mod member_payments;
mod member_programs;
mod members;
mod merchants;
mod nonces;
mod pay_gift;
mod pay_set_wise;
mod pickup_orders;
mod pickup_settings;
mod print_shops;
mod redeem_set_wise;
mod sms;
mod sql;
mod staff;
#[cfg(test)]
mod tests;
mod verify_set_wise;
mod waybills;

pub use backup::{backup, BackupInfo};
pub use engine::{open, OpenMode, SqliteStore, GROUP_COMMIT_JOBS_MAX};
