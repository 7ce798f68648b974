//! The webhook function through real lambda_http requests, on DynamoDB Local.

use crate::common::*;
use aws_sdk_dynamodb::types::AttributeValue;
use futures::stream::{self, StreamExt};
use serde_json::json;
use shared::clock::{ManualClock, SystemClock};
use shared::domain::deployment::Deployment;
use shared::domain::payment::StoredPayment;
use shared::store::{DynamoStore, PaymentStore};
use std::collections::HashMap;
use std::sync::atomic::AtomicU32;
use std::sync::Arc;

struct Setup {
    dynamodb: aws_sdk_dynamodb::Client,
    table: String,
    store: DynamoStore,
    clock: ManualClock,
    service: Arc<TestWebhookService<ManualClock>>,
}

async fn setup() -> Setup {
    let (dynamodb, table) = fresh_table().await;
    let store = DynamoStore::new(dynamodb.clone(), &table);
    let clock = ManualClock::new(T0_MS);
    let service = Arc::new(webhook_service(
        store.clone(),
        clock.clone(),
        &[WEBHOOK_SECRET],
    ));
    Setup {
        dynamodb,
        table,
        store,
        clock,
        service,
    }
}

impl Setup {
    async fn send(&self, body: &str) -> Answer {
        deliver(
            self.service.as_ref(),
            body.as_bytes(),
            Some(&signed(body, self.clock.now())),
        )
        .await
    }

    async fn item(&self, pi: &str) -> HashMap<String, AttributeValue> {
        stored_item(&self.dynamodb, &self.table, &format!("INTENT#{pi}"))
            .await
            .unwrap_or_else(|| panic!("no item for {pi}"))
    }

    async fn status(&self, pi: &str) -> String {
        self.item(pi).await["status"].as_s().unwrap().clone()
    }

    async fn items(&self) -> usize {
        scan_all(&self.dynamodb, &self.table).await.len()
    }

    async fn pre_create(&self, pi: &str) {
        self.store
            .save_created(&shared::testkit::created_intent(
                pi,
                15000,
                "CLP",
                Some(&format!("order-{pi}")),
            ))
            .await
            .unwrap();
    }
}

trait Now {
    fn now(&self) -> i64;
}

impl Now for ManualClock {
    fn now(&self) -> i64 {
        shared::clock::Clock::now_ms(self)
    }
}

const VECTOR_HEADER: &str =
    "t=1743890251,v1=11b98dd8f5500109246aa4d9875fad2e97d462560b012a5f50ff924411de0b0f";

fn vector_payload() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/tests/data/fintoc-signature-vector.payload.json"
    ))
    .unwrap()
}

#[tokio::test]
async fn official_vector_is_kept_apart_while_unknown_and_applied_once_its_intent_is_ours() {
    let (dynamodb, table) = fresh_table().await;
    let store = DynamoStore::new(dynamodb.clone(), &table);
    let service = webhook_service(
        store.clone(),
        ManualClock::new(1_743_890_251_000),
        &["whsec_test_secret"],
    );
    let deliver_vector = || async {
        let mut answers = Vec::new();
        for base64_body in [true, false] {
            answers.push(Answer::from(
                webhook::handle(
                    &service,
                    webhook_request(&vector_payload(), Some(VECTOR_HEADER), base64_body),
                )
                .await,
            ));
        }
        answers
    };
    // Untagged and unknown here: acknowledged, kept apart, never an intent.
    for a in deliver_vector().await {
        assert_eq!(
            (a.status, &a.json["outcome"]),
            (200, &json!("kept_apart")),
            "{}",
            a.json
        );
    }
    let items = scan_all(&dynamodb, &table).await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["entity"].as_s().unwrap(), "foreign_event");
    assert_eq!(items[0]["reason"].as_s().unwrap(), "untagged");
    // Once the intent is this deployment's (create recorded it), the event applies.
    store
        .save_created(&StoredPayment {
            // The vector is a test-mode event: of the payment's own mode.
            mode: Some("test".into()),
            created_at: "2025-04-05T21:57:00.000Z".into(),
            updated_at: "2025-04-05T21:57:00.000Z".into(),
            ..shared::testkit::created_intent(
                "pi_2vKOKniSGXRhXTKrJ67VXZxGCVt",
                1,
                "MXN",
                Some("order-vector"),
            )
        })
        .await
        .unwrap();
    let outcomes: Vec<_> = deliver_vector()
        .await
        .into_iter()
        .map(|a| a.json["outcome"].clone())
        .collect();
    assert_eq!(outcomes, [json!("applied"), json!("duplicate")]);
    let item = intent_item(&dynamodb, &table, "pi_2vKOKniSGXRhXTKrJ67VXZxGCVt").await;
    assert_eq!(item["status"].as_s().unwrap(), "succeeded");
    assert_eq!(
        item["outcome_event_id"].as_s().unwrap(),
        "evt_2AaZeLCz0GjOW5zj"
    );
    let sender = item["sender_account"].as_m().unwrap();
    assert_eq!(sender["number_last4"].as_s().unwrap(), "3279");
    assert!(
        !format!("{item:?}").contains("501514890244223279"),
        "full account number never stored"
    );
    assert_eq!(item["applied_event_ids"].as_ss().unwrap().len(), 1);
}

async fn intent_item(
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
    pi: &str,
) -> HashMap<String, AttributeValue> {
    dynamodb
        .get_item()
        .table_name(table)
        .key("pk", AttributeValue::S(format!("INTENT#{pi}")))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .unwrap_or_else(|| panic!("no item for {pi}"))
}

#[tokio::test]
async fn another_deployments_payment_never_becomes_an_intent_here() {
    let h = Harness::new().await;
    let service = webhook_service(h.store.inner.clone(), h.clock.clone(), &[WEBHOOK_SECRET]);
    // Shop B's payment for *its* order-1001, on a shared Fintoc account.
    let body = event_body("evt_shop_b", "pi_shop_b", "succeeded").replace(
        &format!("\"deployment_tag\":\"{DEPLOYMENT_TAG}\""),
        "\"deployment_tag\":\"shop-b\"",
    );
    assert!(body.contains("shop-b"));
    let a = deliver(&service, body.as_bytes(), Some(&signed(&body, T0_MS))).await;
    assert_eq!(
        (a.status, &a.json["outcome"]),
        (200, &json!("kept_apart")),
        "{}",
        a.json
    );
    let get = h.get("pi_shop_b").await;
    assert_eq!(get.status, 404, "{}", get.json);
    let items = scan_all(&h.dynamodb, &h.table).await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["entity"].as_s().unwrap(), "foreign_event");
    assert_eq!(items[0]["reason"].as_s().unwrap(), "other_deployment");
    // This deployment's own tag on an intent its table lacks: recorded, as before.
    let ours = event_body("evt_ours", "pi_ours", "succeeded");
    let a = deliver(&service, ours.as_bytes(), Some(&signed(&ours, T0_MS))).await;
    assert_eq!(a.json["outcome"], "created");
    assert_eq!(h.get("pi_ours").await.status, 200);
}

#[tokio::test]
async fn an_event_of_the_other_mode_is_kept_apart_and_changes_nothing() {
    let s = setup().await;
    s.pre_create("pi_mode").await;
    let live = webhook_service_for(
        s.store.clone(),
        s.clock.clone(),
        &[WEBHOOK_SECRET],
        Deployment {
            tag: DEPLOYMENT_TAG.into(),
            mode: Some("live".into()),
        },
    );
    let body = event_body("evt_test_mode", "pi_mode", "succeeded");
    let a = deliver(&live, body.as_bytes(), Some(&signed(&body, s.clock.now()))).await;
    assert_eq!(
        (a.status, &a.json["outcome"]),
        (200, &json!("kept_apart")),
        "{}",
        a.json
    );
    assert_eq!(s.status("pi_mode").await, "created");
}

#[tokio::test]
async fn without_a_configured_mode_an_event_of_another_mode_than_its_payment_is_an_anomaly() {
    // FINTOC_MODE unset (as on the local stack): before, a signed `mode: "live"`
    // event was applied to a test intent.
    for write_first in [true, false] {
        let s = setup().await;
        let id = format!("pi_live_on_test_{write_first}");
        s.pre_create(&id).await;
        let service = webhook_service_writing(
            s.store.clone(),
            s.clock.clone(),
            &[WEBHOOK_SECRET],
            deployment(),
            write_first,
        );
        let body = event_body("evt_live", &id, "succeeded").replace("\"test\"", "\"live\"");
        assert!(!body.contains("\"test\""), "{body}");
        let a = deliver(
            &service,
            body.as_bytes(),
            Some(&signed(&body, s.clock.now())),
        )
        .await;
        assert_eq!(
            (a.status, &a.json["outcome"]),
            (200, &json!("anomaly")),
            "write first {write_first}: {}",
            a.json
        );
        assert_eq!(s.status(&id).await, "created", "not applied");
        let item = stored_item(&s.dynamodb, &s.table, &format!("INTENT#{id}"))
            .await
            .unwrap();
        assert!(item.contains_key("anomalies"), "kept for a human: {item:?}");
        // The payment's own mode still applies.
        let test_event = event_body("evt_test", &id, "succeeded");
        let a = deliver(
            &service,
            test_event.as_bytes(),
            Some(&signed(&test_event, s.clock.now())),
        )
        .await;
        assert_eq!(a.json["outcome"], "applied", "{}", a.json);
        assert_eq!(s.status(&id).await, "succeeded");
    }
}

#[tokio::test]
async fn every_bad_signature_is_400_with_nothing_written() {
    let (dynamodb, table) = fresh_table().await;
    let store = DynamoStore::new(dynamodb.clone(), &table);
    let at = |ms: i64| webhook_service(store.clone(), ManualClock::new(ms), &["whsec_test_secret"]);
    let ok_time = 1_743_890_251_000;
    let body = vector_payload();
    let mut changed = body.clone();
    changed[50] ^= 1;
    let upper = VECTOR_HEADER.replace("11b98dd8f5", "11B98DD8F5");
    type Case<'a> = (
        TestWebhookService<ManualClock>,
        Vec<u8>,
        Option<&'a str>,
        &'a str,
    );
    let cases: Vec<Case> = vec![
        (
            webhook_service(store.clone(), ManualClock::new(ok_time), &["whsec_wrong"]),
            body.clone(),
            Some(VECTOR_HEADER),
            "signature_mismatch",
        ),
        (
            at(ok_time),
            changed,
            Some(VECTOR_HEADER),
            "signature_mismatch",
        ),
        (
            at(ok_time),
            body.clone(),
            Some(&upper),
            "signature_mismatch",
        ),
        (at(ok_time), body.clone(), None, "missing_signature"),
        (
            at(ok_time),
            body.clone(),
            Some("t=1743890251"),
            "malformed_signature",
        ),
        (
            at(ok_time),
            body.clone(),
            Some("v1=abc"),
            "malformed_signature",
        ),
        (
            at(ok_time + 301_000),
            body.clone(),
            Some(VECTOR_HEADER),
            "signature_timestamp_out_of_tolerance",
        ),
        (
            at(ok_time - 301_000),
            body.clone(),
            Some(VECTOR_HEADER),
            "signature_timestamp_out_of_tolerance",
        ),
    ];
    for (service, body, header, code) in cases {
        let a = Answer::from(webhook::handle(&service, webhook_request(&body, header, true)).await);
        assert_eq!((a.status, a.error_code()), (400, code), "{}", a.json);
    }
    assert_eq!(
        scan_all(&dynamodb, &table).await.len(),
        0,
        "no write of any kind"
    );
}

#[tokio::test]
async fn rotation_accepts_the_old_and_the_new_secret() {
    let s = setup().await;
    let service = webhook_service(
        s.store.clone(),
        s.clock.clone(),
        &["whsec_new", WEBHOOK_SECRET],
    );
    let body = event_body("evt_rot", "pi_rot", "succeeded");
    let old = deliver(
        &service,
        body.as_bytes(),
        Some(&signed(&body, s.clock.now())),
    )
    .await;
    assert_eq!(old.status, 200);
    let body2 = event_body("evt_rot2", "pi_rot2", "succeeded");
    let new = deliver(
        &service,
        body2.as_bytes(),
        Some(&fintoc_sim::sign(
            "whsec_new",
            s.clock.now() / 1000,
            body2.as_bytes(),
        )),
    )
    .await;
    assert_eq!(new.status, 200);
}

#[tokio::test]
async fn a_hundred_concurrent_deliveries_of_one_event_make_one_transition() {
    let s = setup().await;
    s.pre_create("pi_hot").await;
    let body = event_body("evt_hot", "pi_hot", "succeeded");
    let header = signed(&body, s.clock.now());
    let answers = futures::future::join_all(
        (0..100).map(|_| deliver(s.service.as_ref(), body.as_bytes(), Some(&header))),
    )
    .await;
    let mut outcomes: HashMap<String, usize> = HashMap::new();
    for a in &answers {
        assert_eq!(a.status, 200, "{}", a.json);
        *outcomes
            .entry(a.json["outcome"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    assert_eq!(outcomes.get("applied"), Some(&1), "{outcomes:?}");
    assert_eq!(outcomes.get("duplicate"), Some(&99), "{outcomes:?}");
    let item = s.item("pi_hot").await;
    assert_eq!(item["status"].as_s().unwrap(), "succeeded");
    assert_eq!(item["version"].as_n().unwrap(), "1");
    assert_eq!(
        item["order_id"].as_s().unwrap(),
        "order-pi_hot",
        "create's fields kept"
    );
}

#[tokio::test]
async fn shuffled_duplicated_concurrent_stream_ends_in_the_expected_states() {
    let s = setup().await;
    let finals = ["succeeded", "failed", "rejected", "expired"];
    let mut expected = HashMap::new();
    let mut deliveries = Vec::new();
    let mut rng = fastrand::Rng::with_seed(7);
    for i in 0..200 {
        let pi = format!("pi_stream_{i}");
        if i % 2 == 0 {
            s.pre_create(&pi).await; // half known, half created from events
        }
        let outcome = finals[i % 4];
        expected.insert(pi.clone(), outcome);
        let mut events = vec![event_body(&format!("evt_{i}_final"), &pi, outcome)];
        if i % 3 != 0 {
            events.push(event_body(&format!("evt_{i}_pending"), &pi, "pending"));
        }
        for e in events {
            if rng.f64() < 0.3 {
                deliveries.push(e.clone());
            }
            deliveries.push(e);
        }
    }
    rng.shuffle(&mut deliveries);
    let total = deliveries.len();
    let service = s.service.clone();
    let now = s.clock.now();
    let answers: Vec<Answer> =
        stream::iter(deliveries)
            .map(|body| {
                let service = service.clone();
                async move {
                    deliver(service.as_ref(), body.as_bytes(), Some(&signed(&body, now))).await
                }
            })
            .buffer_unordered(32)
            .collect()
            .await;
    assert_eq!(answers.len(), total);
    let mut final_applications = 0;
    for a in &answers {
        assert_eq!(a.status, 200, "{}", a.json);
        let outcome = a.json["outcome"].as_str().unwrap();
        let event_id = a.json["event_id"].as_str().unwrap();
        if event_id.ends_with("_final") && matches!(outcome, "applied" | "created") {
            final_applications += 1;
        }
    }
    assert_eq!(final_applications, 200, "every final applied exactly once");
    let all = scan_all(&s.dynamodb, &s.table).await;
    let paid_orders = all
        .iter()
        .filter(|i| i["entity"].as_s().unwrap() == "order" && i["state"].as_s().unwrap() == "paid")
        .count();
    assert_eq!(
        paid_orders,
        expected.values().filter(|o| **o == "succeeded").count(),
        "one paid order per succeeded intent"
    );
    let items: Vec<_> = all
        .into_iter()
        .filter(|i| i["entity"].as_s().unwrap() == "intent")
        .collect();
    assert_eq!(items.len(), 200, "zero lost");
    for item in items {
        let id = item["id"].as_s().unwrap();
        assert_eq!(
            item["status"].as_s().unwrap(),
            expected[id.as_str()],
            "{id}"
        );
        assert!(!item.contains_key("anomalies"), "{id}");
    }
}

#[tokio::test]
async fn conflicting_final_is_kept_as_an_anomaly_and_late_pending_is_noted() {
    let s = setup().await;
    s.pre_create("pi_c").await;
    assert_eq!(
        s.send(&event_body("evt_ok", "pi_c", "succeeded"))
            .await
            .json["outcome"],
        "applied"
    );
    let conflict = s.send(&event_body("evt_bad", "pi_c", "failed")).await;
    assert_eq!(
        (conflict.status, conflict.json["outcome"].as_str()),
        (200, Some("anomaly"))
    );
    let late = s.send(&event_body("evt_late", "pi_c", "pending")).await;
    assert_eq!(late.json["outcome"], "late");
    let item = s.item("pi_c").await;
    assert_eq!(item["status"].as_s().unwrap(), "succeeded");
    assert_eq!(item["outcome_event_id"].as_s().unwrap(), "evt_ok");
    let anomalies = item["anomalies"].as_l().unwrap();
    assert_eq!(anomalies.len(), 1);
    assert_eq!(
        anomalies[0].as_m().unwrap()["claimed_status"]
            .as_s()
            .unwrap(),
        "failed"
    );
    assert_eq!(item["late_events"].as_l().unwrap().len(), 1);
    assert!(
        !item.contains_key("error_reason"),
        "the failed event's reason is not applied"
    );
}

#[tokio::test]
async fn outcome_details_are_stored_for_the_merchant() {
    let s = setup().await;
    s.pre_create("pi_d").await;
    s.send(&event_body("evt_p", "pi_d", "pending")).await;
    assert_eq!(s.status("pi_d").await, "pending");
    s.send(&event_body("evt_f", "pi_d", "rejected")).await;
    let item = s.item("pi_d").await;
    assert_eq!(item["status"].as_s().unwrap(), "rejected");
    assert_eq!(item["error_reason"].as_s().unwrap(), "insufficient_funds");
    assert_eq!(
        item["sender_account"].as_m().unwrap()["number_last4"]
            .as_s()
            .unwrap(),
        "5678"
    );
    assert_eq!(
        item["outcome_event_created_at"].as_s().unwrap(),
        "2026-01-01T00:00:00Z"
    );
    assert_eq!(item["version"].as_n().unwrap(), "2");
}

#[tokio::test]
async fn an_event_without_amount_never_blocks_the_create_write() {
    let s = setup().await;
    let mut event: serde_json::Value =
        serde_json::from_str(&event_body("evt_na", "pi_na", "succeeded")).unwrap();
    event["data"].as_object_mut().unwrap().remove("amount");
    event["data"].as_object_mut().unwrap().remove("currency");
    assert_eq!(s.send(&event.to_string()).await.json["outcome"], "created");
    // create-intent's write lands afterwards and completes the record.
    s.pre_create("pi_na").await;
    let item = s.item("pi_na").await;
    assert_eq!(item["amount"].as_n().unwrap(), "15000");
    assert_eq!(item["currency"].as_s().unwrap(), "CLP");
    assert_eq!(item["status"].as_s().unwrap(), "succeeded");
}

#[tokio::test]
async fn other_and_unknown_event_types_are_acknowledged_and_ignored() {
    let s = setup().await;
    for body in [
        r#"{"id":"evt_l","type":"link.created","data":{"id":"link_1"}}"#.to_string(),
        event_body("evt_u", "pi_u", "succeeded")
            .replace("payment_intent.succeeded", "payment_intent.teleported"),
    ] {
        let a = s.send(&body).await;
        assert_eq!(
            (a.status, a.json["outcome"].as_str()),
            (200, Some("ignored"))
        );
    }
    assert_eq!(s.items().await, 0);
}

#[tokio::test]
async fn malformed_events_are_400() {
    let s = setup().await;
    for body in [
        "not json",
        r#"{"type":"payment_intent.succeeded","data":{}}"#,
        r#"{"id":"e","data":{}}"#,
        r#"{"id":"e","type":"payment_intent.succeeded"}"#,
        r#"{"id":"e","type":"payment_intent.succeeded","data":{"status":"succeeded"}}"#,
    ] {
        let a = s.send(body).await;
        assert_eq!((a.status, a.error_code()), (400, "invalid_event"), "{body}");
    }
    assert_eq!(s.items().await, 0);
}

#[tokio::test]
async fn oversized_bodies_are_413_before_any_work() {
    let s = setup().await;
    let huge = format!(
        r#"{{"id":"e","type":"payment_intent.succeeded","data":{{"id":"pi_x","pad":"{}"}}}}"#,
        "x".repeat(300 * 1024)
    );
    let a = s.send(&huge).await;
    assert_eq!((a.status, a.error_code()), (413, "body_too_large"));
    assert_eq!(s.items().await, 0);
}

#[tokio::test]
async fn dynamodb_unavailable_is_503_then_the_retry_applies_once() {
    let s = setup().await;
    s.pre_create("pi_r").await;
    let down = webhook_service(
        DynamoStore::new(dynamodb_at("http://127.0.0.1:9"), &s.table),
        s.clock.clone(),
        &[WEBHOOK_SECRET],
    );
    let body = event_body("evt_r", "pi_r", "succeeded");
    let header = signed(&body, s.clock.now());
    let a = deliver(&down, body.as_bytes(), Some(&header)).await;
    assert_eq!((a.status, a.error_code()), (503, "storage_unavailable"));
    assert_eq!(s.status("pi_r").await, "created");
    let retry = s.send(&body).await;
    assert_eq!(retry.json["outcome"], "applied");
    let again = s.send(&body).await;
    assert_eq!(again.json["outcome"], "duplicate");
    assert_eq!(s.item("pi_r").await["version"].as_n().unwrap(), "1");
}

#[tokio::test]
async fn routes_and_methods() {
    let s = setup().await;
    let get = Answer::from(
        webhook::handle(
            s.service.as_ref(),
            http_event(
                "GET",
                "/webhooks/fintoc",
                "GET /webhooks/fintoc",
                serde_json::json!({}),
                None,
                None,
            ),
        )
        .await,
    );
    assert_eq!((get.status, get.header("allow")), (405, Some("POST")));
    let other = Answer::from(
        webhook::handle(
            s.service.as_ref(),
            http_event(
                "POST",
                "/nope",
                "$default",
                serde_json::json!({}),
                Some("{}"),
                None,
            ),
        )
        .await,
    );
    assert_eq!(other.status, 404);
}

/// The whole flow: create through the create-intent handler, pay through the
/// simulator, which signs and delivers the events (with a forced 5xx first, a
/// pending event, duplicates and reversed order), then read the outcome with GET.
#[tokio::test]
async fn create_then_simulator_delivery_then_get_shows_the_final_status() {
    let h = Harness::new().await;
    let webhook = Arc::new(webhook_service(
        h.store.inner.clone(),
        SystemClock,
        &[WEBHOOK_SECRET],
    ));
    let fail_first = Arc::new(AtomicU32::new(1));
    let url = serve_webhook(webhook, fail_first).await;
    h.sim.set_webhook(fintoc_sim::WebhookEndpoint {
        url,
        secret: WEBHOOK_SECRET.into(),
    });

    for (key, outcome) in [
        ("flow-ok", "succeeded"),
        ("flow-rejected", "rejected"),
        ("flow-failed", "failed"),
    ] {
        let body = BODY.replace("order-1", &format!("order-{key}"));
        let created = h.post(Some(key), &body).await;
        assert_eq!(created.status, 201);
        let id = created.json["id"].as_str().unwrap().to_string();
        let settled_before = h.sim.deliveries().len();
        let finish = fintoc_sim::Finish {
            via_pending: true,
            duplicate: true,
            out_of_order: true,
            ..fintoc_sim::Finish::outcome(outcome)
        };
        h.sim.finish(&id, &finish).unwrap();
        let deliveries = h.sim.wait_settled(settled_before + 4).await;
        assert!(deliveries.iter().all(|d| d.delivered), "{deliveries:?}");
        let got = h.get(&id).await;
        assert_eq!(got.json["status"], outcome, "{}", got.json);
        if outcome != "succeeded" {
            assert!(got.json["error_reason"].is_string());
        }
    }
    let deliveries = h.sim.deliveries();
    assert_eq!(deliveries[0].attempts, 2, "the forced 5xx was retried");
    // Per order: the paid one is never paid again; an unpaid one may be retried.
    let paid = BODY.replace("order-1", "order-flow-ok");
    let again = h.post(Some("flow-ok-again"), &paid).await;
    assert_eq!(
        (again.status, again.error_code()),
        (409, "order_already_paid"),
        "{}",
        again.json
    );
    let retry = BODY.replace("order-1", "order-flow-rejected");
    assert_eq!(
        h.post(Some("flow-rejected-again"), &retry).await.status,
        201
    );
}

#[tokio::test]
async fn a_placeholder_or_weak_webhook_secret_is_refused_at_cold_start() {
    use shared::config::{Env, WebhookConfig};
    for secret in [
        "whsec_...",
        "whsec_test_secret",
        "whsec_abc",
        "not-a-whsec-secret-at-all-0123456789",
    ] {
        let config = WebhookConfig::from_env(&Env(|name: &str| match name {
            "TABLE_NAME" => Some("payments".to_string()),
            "WEBHOOK_SECRET" => Some(format!("whsec_kQ3v9XzR1pL7mN2bT8cW4yH6,{secret}")),
            _ => None,
        }))
        .unwrap();
        let error = webhook::init(&config)
            .await
            .expect_err("refused")
            .to_string();
        assert!(error.contains("webhook secret #2"), "{error}");
        assert!(!error.contains(secret), "never echoes the secret: {error}");
    }
    let good = WebhookConfig::from_env(&Env(|name: &str| match name {
        "TABLE_NAME" => Some("payments".to_string()),
        "WEBHOOK_SECRET" => Some("whsec_kQ3v9XzR1pL7mN2bT8cW4yH6".to_string()),
        "CONNECT_AT_INIT" => Some("false".to_string()),
        _ => None,
    }))
    .unwrap();
    assert!(webhook::init(&good).await.is_ok());
}

#[tokio::test]
async fn a_payment_of_another_amount_never_pays_its_order() {
    let h = Harness::new().await;
    let service = webhook_service(h.store.inner.clone(), h.clock.clone(), &[WEBHOOK_SECRET]);
    let created = h.post(Some("key-amount"), BODY).await;
    let id = created.json["id"].as_str().unwrap().to_string();
    // Fintoc reports 1 CLP paid for an intent requested at 15000.
    let body = event_body("evt_amount", &id, "succeeded")
        .replace("\"amount\":15000", "\"amount\":1")
        .replace("order-{id}", "order-1")
        .replace(&format!("order-{id}"), "order-1");
    assert!(body.contains("\"amount\":1,"), "{body}");
    let a = deliver(&service, body.as_bytes(), Some(&signed(&body, T0_MS))).await;
    assert_eq!(a.status, 200, "{}", a.json);
    let items = scan_all(&h.dynamodb, &h.table).await;
    let intent = items
        .iter()
        .find(|i| i["entity"].as_s().unwrap() == "intent")
        .unwrap();
    assert_eq!(intent["status"].as_s().unwrap(), "succeeded");
    assert_eq!(intent["reported_amount"].as_n().unwrap(), "1");
    assert_eq!(intent["needs_review"].as_s().unwrap(), "amount_mismatch");
    assert!(intent["review_detail"]
        .as_s()
        .unwrap()
        .contains("requested 15000 CLP"));
    let order = items
        .iter()
        .find(|i| i["entity"].as_s().unwrap() == "order")
        .unwrap();
    assert_eq!(
        order["state"].as_s().unwrap(),
        "review",
        "never fulfilled; held for a human"
    );
    // The view says what to act on: Fintoc's status as it said, not paid.
    let view = h.get(&id).await;
    assert_eq!(view.json["status"], "succeeded");
    assert_eq!(view.json["paid"], false, "{}", view.json);
    assert_eq!(view.json["needs_review"]["reason"], "amount_mismatch");
    // The order takes no new payment until a human decides: an explicit answer,
    // not the "active payment" that never ends.
    let again = h.post(Some("key-amount-2"), BODY).await;
    assert_eq!(again.status, 409, "{}", again.json);
    assert_eq!(again.error_code(), "order_in_review");
}

/// A Lambda Function URL request (payload 2.0, route `$default`, the URL's own
/// domain), as the webhook receives it with `WebhookFunctionUrl=true`.
fn function_url_request(body: &str, signature: &str) -> lambda_http::Request {
    let event = json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/webhooks/fintoc",
        "rawQueryString": "",
        "headers": {
            "host": "a1b2c3d4e5.lambda-url.us-east-1.on.aws",
            "content-type": "application/json",
            "fintoc-signature": signature,
            "x-forwarded-proto": "https"
        },
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "a1b2c3d4e5",
            "domainName": "a1b2c3d4e5.lambda-url.us-east-1.on.aws",
            "domainPrefix": "a1b2c3d4e5",
            "http": {"method": "POST", "path": "/webhooks/fintoc", "protocol": "HTTP/1.1",
                     "sourceIp": "203.0.113.10", "userAgent": "Fintoc"},
            "requestId": "url-req-1",
            "routeKey": "$default",
            "stage": "$default",
            "time": "01/Jan/2026:00:00:00 +0000",
            "timeEpoch": T0_MS
        },
        "body": body,
        "isBase64Encoded": false
    });
    lambda_http::request::from_str(&event.to_string()).expect("a Function URL event")
}

/// The cheaper edge: through a Function URL the webhook verifies, records and
/// answers as through the HTTP API, and refuses a bad signature with nothing
/// written.
#[tokio::test]
async fn a_function_url_delivery_is_verified_and_recorded_as_through_the_api() {
    let s = setup().await;
    s.pre_create("pi_url").await;
    let body = event_body("evt_url_1", "pi_url", "succeeded");
    let forged = function_url_request(&body, "t=1767225600,v1=00");
    let refused = Answer::from(webhook::handle(s.service.as_ref(), forged).await);
    assert_eq!(
        (refused.status, refused.json["error"]["code"].as_str()),
        (400, Some("signature_mismatch"))
    );
    assert_eq!(s.status("pi_url").await, "created", "nothing written");
    let request = function_url_request(&body, &signed(&body, s.clock.now()));
    let answer = Answer::from(webhook::handle(s.service.as_ref(), request).await);
    assert_eq!(answer.status, 200, "{:?}", answer.json);
    assert_eq!(answer.json["outcome"], "applied");
    assert_eq!(s.status("pi_url").await, "succeeded");
    // Another path on the URL is not a route.
    let mut stray = function_url_request(&body, &signed(&body, s.clock.now()));
    *stray.uri_mut() = "https://a1b2c3d4e5.lambda-url.us-east-1.on.aws/other"
        .parse()
        .unwrap();
    let stray = Answer::from(webhook::handle(s.service.as_ref(), stray).await);
    assert_eq!(stray.status, 404);
}
