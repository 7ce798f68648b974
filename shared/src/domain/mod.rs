//! Pure domain rules: no I/O, fully unit-tested.

pub mod create;
pub mod idempotency;
pub mod intent;
pub mod transition;
