//! Opening connections during init (`CONNECT_AT_INIT`), against DynamoDB Local and
//! the simulator: it opens both, says when Fintoc refuses the key, gives up within
//! its bound when a dependency does not answer, and writes nothing.

use crate::common::*;
use fintoc_sim::{Simulator, SimulatorConfig, DEFAULT_SECRET_KEY};
use shared::app::open_connections::{open_connections, Opened, CONNECT_AT_INIT_TIMEOUT};
use shared::store::DynamoStore;
use std::time::Instant;

#[tokio::test]
async fn init_opens_both_connections_and_writes_nothing() {
    let (dynamodb, table) = fresh_table().await;
    let store = DynamoStore::new(dynamodb.clone(), &table);
    let sim = Simulator::start(SimulatorConfig::default()).await.unwrap();
    let fintoc = fintoc_client(&sim, DEFAULT_SECRET_KEY);
    let (to_dynamodb, to_fintoc) = open_connections(&store, Some(&fintoc)).await;
    assert!(matches!(to_dynamodb, Opened::Open(_)), "{to_dynamodb:?}");
    assert!(matches!(to_fintoc, Opened::Open(_)), "{to_fintoc:?}");
    assert_eq!(sim.api_requests(), 1, "one lookup, nothing created");
    assert_eq!(sim.intents_created(), 0);
    assert_eq!(scan_all(&dynamodb, &table).await.len(), 0);

    let refused = fintoc_client(&sim, "sk_test_not_a_key_the_simulator_knows");
    let (_, to_fintoc) = open_connections(&store, Some(&refused)).await;
    assert_eq!(to_fintoc, Opened::KeyRefused);
}

#[tokio::test]
async fn a_dependency_that_does_not_answer_is_logged_and_init_goes_on() {
    // A port nothing listens on, and a table that does not exist.
    let store = DynamoStore::new(dynamodb_at("http://127.0.0.1:9"), "nowhere");
    let started = Instant::now();
    let (to_dynamodb, to_fintoc) = open_connections(&store, None).await;
    assert!(matches!(to_dynamodb, Opened::Failed(_)), "{to_dynamodb:?}");
    assert_eq!(to_fintoc, Opened::Skipped);
    assert!(started.elapsed() < CONNECT_AT_INIT_TIMEOUT * 2);
    let (dynamodb, _) = fresh_table().await;
    let missing_table = DynamoStore::new(dynamodb, "no-such-table");
    let (to_dynamodb, _) = open_connections(&missing_table, None).await;
    assert!(matches!(to_dynamodb, Opened::Failed(_)), "{to_dynamodb:?}");
}
