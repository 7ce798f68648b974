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

    // Fintoc knows it paid (its event was delivered here by hand, above).
    h.sim.set_delivery_mode(fintoc_sim::DeliveryMode::Off);
    h.sim
        .finish(&id, &fintoc_sim::Finish::outcome("succeeded"))
        .unwrap();
    // A refund of that (now paid) intent: its create, and its refund.* events —
    // a move (pending → in_progress) and its outcome — as the webhook receives them.
    let before = store.usage();
    let refund = h
        .call(http_event(
            "POST",
            &format!("/payment-intents/{id}/refunds"),
            "POST /payment-intents/{id}/refunds",
            json!({"content-type": "application/json", "idempotency-key": "cost-refund-1"}),
            Some(r#"{"amount": 5000}"#),
            Some(json!({"id": id})),
        ))
        .await;
    assert_eq!(refund.status, 201, "{}", refund.json);
    let refund_create = store.usage() - before;
    let fintoc_refund = refund.json["fintoc_refund_id"].as_str().unwrap();
    let mut data = h.sim.refund(fintoc_refund).unwrap();
    let mut refund_event = |event_id: &str, status: &str| {
        data["status"] = json!(status);
        json!({"id": event_id, "object": "event", "type": format!("refund.{status}"),
               "mode": "test", "created_at": "2026-01-01T00:00:00Z", "data": data})
        .to_string()
    };
    let moved = refund_event("evt_cost_refund_1", "in_progress");
    let before = webhook_store.usage();
    let sig = signed(&moved, h.clock.now_ms());
    assert_eq!(
        deliver(&service, moved.as_bytes(), Some(&sig)).await.status,
        200
    );
    let refund_move = webhook_store.usage() - before;
    let outcome = refund_event("evt_cost_refund_2", "succeeded");
    let before = webhook_store.usage();
    let sig = signed(&outcome, h.clock.now_ms());
    assert_eq!(
        deliver(&service, outcome.as_bytes(), Some(&sig))
            .await
            .status,
        200
    );
    let refund_outcome = webhook_store.usage() - before;

    let report = json!({
        "refund_create": usage_json(refund_create),
        "refund_event_move": usage_json(refund_move),
        "refund_event_outcome": usage_json(refund_outcome),
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

    // The design, pinned: a create is two transactions — the key taken with its
    // order reserved; after Fintoc, the intent written, the order opened and the
    // key completed; a replay is the first one, refused on the completed record.
    assert_eq!((create.read_requests, create.write_requests), (0, 2));
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
    // Two transactions of 2 and 3 items, the intent also written to the sparse
    // index of due checks: DynamoDB Local reports 8 units; AWS bills 2 per item
    // of a transaction plus the index write, 11 (docs/performance.md).
    assert_eq!(create.write_units, 8.0);
    // A final event writes its intent and its order in one transaction, and takes
    // the intent off the index: one request; DynamoDB Local reports 6 units for
    // it (2 before the index). AWS bills a transactional write twice per item.
    assert_eq!(new_event.write_units, 6.0);
    assert_eq!(new_event.read_units, 0.0);
    assert_eq!(duplicate.read_units, 0.0);
    // A refund: the payment read (404 and 409 are refused before anything is
    // written), the key taken with the amount reserved (one transaction), Fintoc,
    // its answer recorded with the key completed (one more, decided on what the
    // reservation wrote: no read).
    assert_eq!(
        (refund_create.read_requests, refund_create.write_requests),
        (1, 2)
    );
    // A refund event: the payment read, one single-item write; its outcome is the
    // one transaction (payment, outcome record, order).
    assert_eq!(
        (refund_move.read_requests, refund_move.write_requests),
        (1, 1)
    );
    assert_eq!(
        (refund_outcome.read_requests, refund_outcome.write_requests),
        (1, 1)
    );
}

/// An intent as the create use case leaves it (order reserved, intent stored, order
/// opened), written through a store whose usage is not counted.
async fn seed_intent(store: &DynamoStore, intent_id: &str) {
    let intent = shared::testkit::intent_of_deployment(intent_id, DEPLOYMENT_TAG, T0_MS);
    shared::testkit::seed_open(store, &intent, "seed", T0_MS)
        .await
        .unwrap();
}

/// A delivery stream of `deliveries` webhook deliveries: per intent a `pending` then
/// a `succeeded` event; a `duplicate_share` of the deliveries repeat the event just
/// delivered (as Fintoc's retries do). Returns (body, is a repeat, is final).
fn delivery_stream(
    prefix: &str,
    deliveries: usize,
    duplicate_share: f64,
) -> Vec<(String, bool, bool)> {
    let distinct = (deliveries as f64 * (1.0 - duplicate_share)).round() as usize;
    let mut stream = Vec::with_capacity(deliveries);
    let mut repeats_owed = 0.0;
    for n in 0..distinct {
        let intent = format!("pi_{prefix}_{:05}", n / 2);
        let status = if n % 2 == 0 { "pending" } else { "succeeded" };
        let body = event_body(&format!("evt_{prefix}_{n:05}"), &intent, status);
        let is_final = status == "succeeded";
        stream.push((body.clone(), false, is_final));
        repeats_owed += duplicate_share / (1.0 - duplicate_share);
        while repeats_owed >= 1.0 && stream.len() < deliveries {
            stream.push((body.clone(), true, is_final));
            repeats_owed -= 1.0;
        }
    }
    stream
}

/// DynamoDB per webhook delivery, writing first and reading first, at 0 % and 30 %
/// duplicates, over real intents (as the create leaves them). `COST_DELIVERIES`
/// deliveries per case (`make bench`: 1,000; default 100). The units a refused
/// write would be billed (DynamoDB Local reports none) are counted by what was
/// refused: a single write of a small item 1 WRU, a two-item transaction 4.
#[tokio::test]
async fn webhook_cost_per_delivery_writing_first_and_reading_first() {
    let deliveries = std::env::var("COST_DELIVERIES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100);
    let (dynamodb, table) = fresh_table().await;
    let seed_store = DynamoStore::new(dynamodb.clone(), &table);
    let clock = shared::clock::ManualClock::new(T0_MS);
    let mut cases = Vec::new();
    for (write_first, mode) in [(true, "write_first"), (false, "read_first")] {
        for duplicate_share in [0.0, 0.3] {
            let prefix = format!("{mode}_{}", (duplicate_share * 100.0) as u32);
            let stream = delivery_stream(&prefix, deliveries, duplicate_share);
            let intents: std::collections::BTreeSet<String> = (0..stream.len())
                .map(|n| format!("pi_{prefix}_{:05}", n / 2))
                .collect();
            use futures::StreamExt;
            futures::stream::iter(intents.iter())
                .for_each_concurrent(16, |id| seed_intent(&seed_store, id))
                .await;
            let store = DynamoStore::new(dynamodb.clone(), &table);
            let service = webhook_service_writing(
                store.clone(),
                clock.clone(),
                &[WEBHOOK_SECRET],
                deployment(),
                write_first,
            );
            let (mut repeats_of_pending, mut repeats_of_final) = (0u64, 0u64);
            for (body, repeat, is_final) in &stream {
                let answer = deliver(&service, body.as_bytes(), Some(&signed(body, T0_MS))).await;
                assert_eq!(answer.status, 200, "{:?}", answer.json);
                let expected = if *repeat { "duplicate" } else { "applied" };
                assert_eq!(answer.json["outcome"], expected, "{body}");
                match (repeat, is_final) {
                    (true, true) => repeats_of_final += 1,
                    (true, false) => repeats_of_pending += 1,
                    _ => {}
                }
            }
            let used = store.usage();
            let repeats = repeats_of_pending + repeats_of_final;
            let distinct = stream.len() as u64 - repeats;
            // The design, pinned per delivery.
            if write_first {
                assert_eq!(used.read_requests, 0, "{used:?}");
                assert_eq!(used.write_requests, distinct + repeats, "{used:?}");
                assert_eq!(used.failed_conditions, repeats, "{used:?}");
            } else {
                assert_eq!(used.read_requests, distinct + repeats, "{used:?}");
                assert_eq!(used.write_requests, distinct, "{used:?}");
                assert_eq!(used.failed_conditions, 0, "{used:?}");
            }
            let refused_units = if write_first {
                repeats_of_pending as f64 + 4.0 * repeats_of_final as f64
            } else {
                0.0
            };
            cases.push(json!({
                "mode": mode,
                "duplicate_share": duplicate_share,
                "deliveries": stream.len(),
                "repeats": repeats,
                "repeats_of_final_events": repeats_of_final,
                "usage": usage_json(used),
                "billed_read_units": used.read_units,
                "billed_write_units": used.write_units + refused_units,
            }));
        }
    }
    let report = json!({ "deliveries_per_case": deliveries, "cases": cases });
    println!("{report:#}");
    if let Ok(path) = std::env::var("COST_REPORT") {
        let path = path.replace(".json", "_per_delivery.json");
        std::fs::write(path, format!("{report:#}\n")).unwrap();
    }
}
