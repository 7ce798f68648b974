//! Storage: the ports the use cases call (`ports`, re-exported here), and their two
//! adapters — DynamoDB (`dynamo`, the only code that talks to DynamoDB) and memory
//! (`memory`, for unit tests and benchmarks). One contract suite (`contract`,
//! feature `contract-tests`) checks both against the same rules.
//!
//! Two tables, one string partition key `pk` (layout in `docs/storage.md`): the
//! payments table holds `INTENT#`/`SESSION#` payments (with their refunds and
//! their check schedule, the keys of the sparse index the reconciler reads),
//! `ORDER#` orders, `REFUND_OUTCOME#` outcomes and `FOREIGN_EVENT#` events kept
//! apart; the idempotency table holds `IDEMPOTENCY#` records. Every state change
//! is one conditional write; expiry is decided by comparing timestamps in
//! conditions, and the TTL attribute only collects garbage.

pub mod dynamo;
pub mod memory;
mod ports;

#[cfg(any(test, feature = "contract-tests"))]
pub mod contract;

pub use dynamo::{
    create_idempotency_table, create_table, idempotency_table_definition, table_definition,
    DynamoStore, Usage, PARTITION_KEY, TTL_ATTRIBUTE,
};
pub use ports::*;
