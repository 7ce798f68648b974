//! Pure domain rules: no I/O and no HTTP, fully unit-tested.

pub mod attention;
pub mod create;
pub mod delivery;
pub mod deployment;
pub mod error;
pub mod fixtures;
pub mod idempotency;
pub mod inspection;
pub mod invariants;
pub mod merchant_event;
pub mod money;
pub mod number;
pub mod order;
pub mod payment;
pub mod payment_patch;
pub mod reconcile;
pub mod refund;
pub mod refund_id;
pub mod report;
pub mod resolution;
pub mod schedule;
pub mod session;
pub mod standard_webhooks;
pub mod transition;
