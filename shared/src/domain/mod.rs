//! Pure domain rules: no I/O and no HTTP, fully unit-tested.

pub mod create;
pub mod deployment;
pub mod idempotency;
pub mod intent;
pub mod order;
pub mod reconcile;
pub mod report;
pub mod session;
pub mod transition;
