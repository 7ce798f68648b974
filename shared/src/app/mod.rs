//! The use cases: each combines the pure domain with the store and the Fintoc client
//! behind their ports, and answers in the HTTP contract of `crate::http`.
//!
//! Two engines carry what every resource needs: [`record`] applies what Fintoc
//! reports to a stored payment exactly once, [`idempotent`] runs a merchant's
//! command once per idempotency key. The use cases are built on them.

pub mod audit;
pub mod errors;
pub mod idempotent;
pub mod intents;
pub mod merchant_events;
pub mod open_connections;
pub mod operations;
pub mod operator_events;
pub mod operator_show;
pub mod outcome;
pub mod payments;
pub mod receive_webhook;
pub mod reconcile;
pub mod record;
pub mod refunds;
pub mod sessions;
