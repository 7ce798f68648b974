//! The use cases: each combines the pure domain with the store and the Fintoc client
//! behind their ports, and answers in the HTTP contract of `crate::http`.

pub mod create_intent;
pub mod open_connections;
pub mod receive_webhook;
pub mod reconcile;
