//! The integration tests, as one test binary (one link of the AWS SDK): the two
//! functions through real `lambda_http` requests, on DynamoDB Local (started by
//! `scripts/test.sh`) and the Fintoc simulator in process.

mod audit;
mod common;
mod create_intent;
mod dynamodb_cost;
mod events;
mod logs;
mod merchant_events;
mod open_connections;
mod operations;
mod reconcile;
mod refunds;
mod sessions;
mod store;
mod webhook;
