//! The DynamoDB store on DynamoDB Local: the store contract (the same rules the
//! in-memory store is held to), and what only DynamoDB has (TTL, written items).

use crate::common::*;
use shared::domain::idempotency::{AcquireOutcome, AcquireRequest, CallerId, IdempotencyKey};
use shared::domain::payment::PaymentKind;
use shared::domain::payment::{PaymentStatus, StoredPayment};
use shared::store::{DynamoStore, IdempotencyStore, PaymentStore, StoreError};
use std::collections::BTreeMap;

async fn fresh_store() -> DynamoStore {
    let (client, table) = fresh_table().await;
    DynamoStore::new(client, table)
}

mod contract {
    shared::store_contract_tests!(super::fresh_store());
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

#[tokio::test]
async fn refused_writes_leave_the_table_as_it_was() {
    let (client, table) = fresh_table().await;
    let store = DynamoStore::new(client.clone(), &table);
    let intent = StoredPayment {
        kind: PaymentKind::Intent,
        session_payment: None,
        expires_at: None,
        review: None,
        refunds: Default::default(),
        id: "pi_1".into(),
        status: PaymentStatus::Created,
        amount: 1000,
        currency: "CLP".into(),
        order_id: None,
        metadata: BTreeMap::new(),
        customer_email: None,
        mode: None,
        error_reason: None,
        created_at: "2026-01-01T00:00:00.000Z".into(),
        updated_at: "2026-01-01T00:00:00.000Z".into(),
        schedule: None,
    };
    store.save_created(&intent).await.unwrap();
    let before = scan_all(&client, &table).await;
    let other = StoredPayment {
        amount: 1,
        ..intent.clone()
    };
    assert!(matches!(
        store.save_created(&other).await,
        Err(StoreError::Conflict(_))
    ));
    let key = IdempotencyKey::parse(&CallerId::anonymous(), Some("k")).unwrap();
    let request = |hash| AcquireRequest {
        key: &key,
        request_hash: hash,
        now_ms: T0_MS,
        lease_expires_at_ms: T0_MS + 30_000,
        expires_at_ms: T0_MS + 86_400_000,
    };
    assert!(matches!(
        store.acquire(&request("h")).await.unwrap(),
        AcquireOutcome::Acquired { .. }
    ));
    let held = scan_all(&client, &table).await;
    assert_eq!(held.len(), before.len() + 1);
    assert_eq!(
        store.acquire(&request("other")).await.unwrap(),
        AcquireOutcome::Mismatch
    );
    assert_eq!(scan_all(&client, &table).await, held);
}
