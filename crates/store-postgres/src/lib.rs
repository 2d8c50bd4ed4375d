//! The PostgreSQL backend, for many `kaquan serve` nodes sharing one
//! database. A connection pool; every read-modify-write is one guarded
//! statement in a transaction; batches are loaded with binary COPY.
//!
//! [`engine`] holds the pool, connecting, migrations and the pipelined
//! transaction; every other module implements one domain's store sub-trait
//! of `kaquan_core` (the same names as core's modules).
//!
//! Architecture invariant: this crate (its modules and `migrations/`) holds
//! all of kaquan's PostgreSQL SQL.

mod analytics;
mod api_keys;
mod approvals;
mod attempts;
mod audit;
mod audit_chain;
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
mod pay_gift;
mod pickup_orders;
mod pickup_settings;
mod print_shops;
mod sms;
mod sql;
mod staff;
pub mod testing;
mod waybills;

pub use engine::{connect, PgStore, POOL_SIZE_MAX};
