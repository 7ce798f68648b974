//! The DynamoDB store on DynamoDB Local: conditional writes and merge rules.

mod common;

use common::*;
use shared::domain::idempotency::{AcquireOutcome, StoredResponse};
use shared::domain::intent::{IntentStatus, StoredIntent};
use shared::store::{DynamoStore, IdempotencyStore, IntentStore};
use std::collections::BTreeMap;

fn intent(id: &str, status: IntentStatus) -> StoredIntent {
    StoredIntent {
        id: id.into(),
        status,
        amount: 1000,
        currency: "CLP".into(),
        order_id: Some("o-1".into()),
        metadata: BTreeMap::from([("k".into(), "v".into())]),
        customer_email: None,
        mode: Some("test".into()),
        error_reason: None,
        created_at: "2026-01-01T00:00:00.000Z".into(),
        updated_at: "2026-01-01T00:00:00.000Z".into(),
    }
}

#[tokio::test]
async fn save_created_never_moves_a_status_a_webhook_already_wrote() {
    let (client, table) = fresh_table().await;
    let store = DynamoStore::new(client, &table);
    // As if the webhook recorded the outcome before create's write landed.
    store
        .save_created(&intent("pi_1", IntentStatus::Succeeded))
        .await
        .unwrap();
    store
        .save_created(&intent("pi_1", IntentStatus::Created))
        .await
        .unwrap();
    let got = store.get_intent("pi_1").await.unwrap().unwrap();
    assert_eq!(got.status, IntentStatus::Succeeded);
    assert_eq!(got.order_id.as_deref(), Some("o-1"));
}

#[tokio::test]
async fn save_created_refuses_another_amount_for_the_same_id() {
    let (client, table) = fresh_table().await;
    let store = DynamoStore::new(client, &table);
    store
        .save_created(&intent("pi_2", IntentStatus::Created))
        .await
        .unwrap();
    let mut other = intent("pi_2", IntentStatus::Created);
    other.amount = 1;
    assert!(matches!(
        store.save_created(&other).await,
        Err(shared::store::StoreError::Conflict(_))
    ));
}

#[tokio::test]
async fn lease_lifecycle() {
    let (client, table) = fresh_table().await;
    let store = DynamoStore::new(client.clone(), &table);
    let exp = T0_MS / 1000 + 100;
    let AcquireOutcome::Acquired { lease_id } = store
        .acquire("k", "h", T0_MS, T0_MS + 1_000, exp)
        .await
        .unwrap()
    else {
        panic!("first acquire takes the key");
    };
    assert!(matches!(
        store
            .acquire("k", "h", T0_MS + 500, T0_MS + 1_500, exp)
            .await
            .unwrap(),
        AcquireOutcome::InProgress {
            retry_after_secs: 1
        }
    ));
    // A stale lease id cannot release or complete.
    store.release("k", "not-the-lease").await.unwrap();
    assert_eq!(scan_all(&client, &table).await.len(), 1);
    let response = StoredResponse {
        status: 201,
        body: "{\"id\":\"pi_1\"}".into(),
    };
    assert!(!store
        .complete("k", "not-the-lease", &response, Some("pi_1"))
        .await
        .unwrap());
    assert!(store
        .complete("k", &lease_id, &response, Some("pi_1"))
        .await
        .unwrap());
    assert_eq!(
        store
            .acquire("k", "h", T0_MS + 2_000, T0_MS + 3_000, exp)
            .await
            .unwrap(),
        AcquireOutcome::Replay(response.clone())
    );
    // Completed records are not released.
    store.release("k", &lease_id).await.unwrap();
    assert_eq!(scan_all(&client, &table).await.len(), 1);
    // Completing a released or missing record writes nothing.
    assert!(!store
        .complete("nope", &lease_id, &response, None)
        .await
        .unwrap());
    assert_eq!(scan_all(&client, &table).await.len(), 1);
}

#[tokio::test]
async fn table_has_ttl_on_expires_at() {
    let (client, table) = fresh_table().await;
    let ttl = client
        .describe_time_to_live()
        .table_name(&table)
        .send()
        .await
        .unwrap();
    let desc = ttl.time_to_live_description.unwrap();
    assert_eq!(desc.attribute_name.as_deref(), Some("expires_at"));
}
