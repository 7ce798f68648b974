//! DynamoDB requests and consumed capacity per operation, measured on DynamoDB Local
//! with `ReturnConsumedCapacity=TOTAL` (the store counts every request).
//!
//! Set `COST_REPORT=path.json` to keep the figures (`make bench` does, for
//! docs/performance.md).

use crate::common::*;
use serde_json::json;
use shared::clock::Clock;
use shared::store::{DynamoStore, Usage};

fn usage_json(u: Usage) -> serde_json::Value {
    json!({
        "read_requests": u.read_requests,
        "write_requests": u.write_requests,
        "read_units": u.read_units,
        "write_units": u.write_units,
        "failed_conditions": u.failed_conditions,
    })
}

#[tokio::test]
async fn requests_and_capacity_per_operation() {
    // Create, then the same request replayed.
    let h = Harness::new().await;
    let store: &DynamoStore = &h.store.inner;
    let body = r#"{"amount": 15000, "currency": "CLP", "order_id": "order-1", "metadata": {"cart": "42"}}"#;
    let before = store.usage();
    let created = h.post(Some("cost-key-1"), body).await;
    assert_eq!(created.status, 201, "{:?}", created.json);
    let create = store.usage() - before;

    let before = store.usage();
    let replayed = h.post(Some("cost-key-1"), body).await;
    assert_eq!(replayed.status, 201);
    assert_eq!(replayed.header("idempotent-replayed"), Some("true"));
    let replay = store.usage() - before;

    let before = store.usage();
    let id = created.json["id"].as_str().unwrap().to_string();
    assert_eq!(h.get(&id).await.status, 200);
    let get = store.usage() - before;

    // A webhook event for that intent, then the same event delivered again.
    let webhook_store = DynamoStore::new(h.dynamodb.clone(), &h.table);
    let service = webhook_service(webhook_store.clone(), h.clock.clone(), &[WEBHOOK_SECRET]);
    // As Fintoc sends it: with the metadata the create gave the intent.
    let event =
        event_body("evt_cost_1", &id, "succeeded").replace(&format!("order-{id}"), "order-1");
    let sig = signed(&event, h.clock.now_ms());
    let before = webhook_store.usage();
    assert_eq!(
        deliver(&service, event.as_bytes(), Some(&sig)).await.status,
        200
    );
    let new_event = webhook_store.usage() - before;

    let before = webhook_store.usage();
    assert_eq!(
        deliver(&service, event.as_bytes(), Some(&sig)).await.status,
        200
    );
    let duplicate = webhook_store.usage() - before;
    assert_eq!(h.get(&id).await.json["status"], "succeeded");

    let report = json!({
        "create": usage_json(create),
        "replayed_create": usage_json(replay),
        "get": usage_json(get),
        "webhook_new_event": usage_json(new_event),
        "webhook_duplicate": usage_json(duplicate),
    });
    println!("{report:#}");
    if let Ok(path) = std::env::var("COST_REPORT") {
        std::fs::write(path, format!("{report:#}\n")).unwrap();
    }

    // The design, pinned: a create takes the key, reserves the order, writes the
    // intent, opens the order, completes the key; a replay is the one conditional
    // put that finds the completed record.
    assert_eq!((create.read_requests, create.write_requests), (0, 5));
    assert_eq!((replay.read_requests, replay.write_requests), (0, 1));
    assert_eq!(replay.failed_conditions, 1);
    assert_eq!((get.read_requests, get.write_requests), (1, 0));
    // One request per new webhook event: its write, made before any read, under
    // the condition derived from the decision; a duplicate is that one write,
    // refused (it returns the item, on which the event is found applied).
    assert_eq!((new_event.read_requests, new_event.write_requests), (0, 1));
    assert_eq!(new_event.failed_conditions, 0);
    assert_eq!((duplicate.read_requests, duplicate.write_requests), (0, 1));
    assert_eq!(duplicate.failed_conditions, 1);
    // Small items: one unit per write; the webhook's read is eventually consistent,
    // half a unit (GET's is consistent: one).
    assert!(
        create.write_units > 0.0,
        "DynamoDB reported capacity: {create:?}"
    );
    // A create's intent write also puts it in the sparse index of due checks:
    // one more unit (5 requests, 6 units).
    assert_eq!(create.write_units, 6.0);
    // A final event writes its intent and its order in one transaction, and takes
    // the intent off the index: one request; DynamoDB Local reports 6 units for
    // it (2 before the index). AWS bills a transactional write twice per item.
    assert_eq!(new_event.write_units, 6.0);
    assert_eq!(new_event.read_units, 0.0);
    assert_eq!(duplicate.read_units, 0.0);
}
