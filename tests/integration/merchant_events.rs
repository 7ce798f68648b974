//! Merchant events end to end on DynamoDB Local and the simulator: payments made
//! through the real functions, the table's stream read back from DynamoDB Local as
//! Lambda's event source mapping reads it, handed to the dispatcher's handler, and
//! delivered to a local receiver that checks every signature with the Standard
//! Webhooks crate (`standardwebhooks`) — one `order.paid` per paid order whatever
//! the duplicates, retries on the ladder, `410 Gone`, exhaustion and recovery.

use crate::common::*;
use fintoc_sim::{Finish, Settle};
use serde_json::{json, Value};
use shared::app::merchant_events::EventDispatcher;
use shared::clock::{Clock, ManualClock, SystemClock};
use shared::destinations::{Endpoint, SignedEndpoints};
use shared::domain::delivery::{DeliveryState, LOCAL_LADDER_SCALE, MAX_ATTEMPTS};
use shared::domain::standard_webhooks::SigningSecret;
use shared::store::{DeliveryRef, DeliveryStore, DynamoStore};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const MERCHANT_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// One delivery as the receiver got it.
#[derive(Debug, Clone)]
struct Received {
    id: String,
    status: u16,
    body: Value,
    raw: String,
    verified: bool,
}

/// A merchant's endpoint on loopback: answers each delivery with the next status
/// of its script (then `then`), and checks its signature with `standardwebhooks`.
#[derive(Clone)]
struct Receiver {
    url: String,
    received: Arc<Mutex<Vec<Received>>>,
    script: Arc<Mutex<VecDeque<u16>>>,
    then: Arc<Mutex<u16>>,
}

impl Receiver {
    async fn start(script: &[u16], then: u16) -> Self {
        use http_body_util::BodyExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let receiver = Receiver {
            url: format!("http://{}/events", listener.local_addr().unwrap()),
            received: Arc::default(),
            script: Arc::new(Mutex::new(script.iter().copied().collect())),
            then: Arc::new(Mutex::new(then)),
        };
        let serving = receiver.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let r = serving.clone();
                tokio::spawn(async move {
                    let handler = hyper::service::service_fn(
                        move |req: hyper::Request<hyper::body::Incoming>| {
                            let r = r.clone();
                            async move {
                                let headers = req.headers().clone();
                                let body = req.into_body().collect().await.unwrap().to_bytes();
                                let verified = standardwebhooks::Webhook::new(MERCHANT_SECRET)
                                    .unwrap()
                                    .verify(&body, &headers)
                                    .is_ok();
                                let raw = String::from_utf8(body.to_vec()).unwrap();
                                let status = r
                                    .script
                                    .lock()
                                    .unwrap()
                                    .pop_front()
                                    .unwrap_or(*r.then.lock().unwrap());
                                r.received.lock().unwrap().push(Received {
                                    id: headers["webhook-id"].to_str().unwrap().to_string(),
                                    status,
                                    body: serde_json::from_str(&raw).unwrap(),
                                    raw,
                                    verified,
                                });
                                Ok::<_, std::convert::Infallible>(
                                    hyper::Response::builder()
                                        .status(status)
                                        .body(http_body_util::Full::new(bytes::Bytes::from(
                                            format!("answered {status}"),
                                        )))
                                        .unwrap(),
                                )
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), handler)
                        .await;
                });
            }
        });
        receiver
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    fn of_type(&self, event_type: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.body["type"] == event_type)
            .collect()
    }
}

/// The table's stream on DynamoDB Local, read as the local stack's event source
/// mapping reads it.
async fn stream_of(h: &Harness) -> Tap {
    Tap(local_gateway::stream::StreamTap::new(&endpoint(), &h.table))
}

struct Tap(local_gateway::stream::StreamTap);

impl Tap {
    async fn read(&mut self) -> Vec<Value> {
        self.0.read().await.expect("DynamoDB Local's stream")
    }
}

type Dispatcher = EventDispatcher<DynamoStore, SignedEndpoints>;

fn dispatcher(h: &Harness, url: &str) -> Dispatcher {
    EventDispatcher {
        store: h.store.inner.clone(),
        sender: SignedEndpoints::new(
            SignedEndpoints::client(Duration::from_secs(2)).unwrap(),
            vec![Endpoint {
                name: "merchant".into(),
                url: url.into(),
                secrets: vec![SigningSecret::parse(MERCHANT_SECRET).unwrap()],
            }],
        ),
        ladder_scale: LOCAL_LADDER_SCALE,
        concurrency: 8,
    }
}

/// The dispatcher's clock: near the wall clock, which the receiver's signature
/// check compares the delivery's timestamp with (5 minutes either way); it starts
/// 2.5 minutes back so a whole compressed ladder stays within that.
fn dispatch_clock() -> ManualClock {
    ManualClock::new(SystemClock.now_ms() - 150_000)
}

async fn handle(d: &Dispatcher, clock: &ManualClock, records: Vec<Value>) -> Value {
    dispatch_events::handle(d, clock, 500, json!({"Records": records}))
        .await
        .expect("the table answered")
}

const OPERATOR: &str = "arn:aws:iam::123456789012:user/ops";

/// An operator's `POST` on the operations function (its IAM principal set, as
/// API Gateway's authorizer passes it), configured with the one endpoint.
async fn operator_post(
    h: &Harness,
    clock: &ManualClock,
    path: &str,
    route: &str,
    body: &str,
) -> Answer {
    let service = operations::OperationsService {
        store: h.store.inner.clone(),
        fintoc: fintoc_client(&h.sim, fintoc_sim::DEFAULT_SECRET_KEY),
        clock: clock.clone(),
        trust_local_operator_header: false,
        destinations: vec!["merchant".into()],
    };
    let request = operator_request("POST", path, route, Some(body), None, Some(OPERATOR));
    Answer::from(operations::handle(&service, request).await)
}

/// `events recover --since`, then the sweep that sends what it made due.
async fn recover(
    h: &Harness,
    d: &Dispatcher,
    clock: &ManualClock,
    since_ms: i64,
) -> (Answer, Value) {
    let body =
        json!({"since": shared::clock::format_rfc3339_ms(since_ms), "reason": "endpoint back"});
    let answer = operator_post(
        h,
        clock,
        "/ops/events/recover",
        "POST /ops/events/recover",
        &body.to_string(),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.json);
    (answer, sweep(d, clock).await)
}

async fn sweep(d: &Dispatcher, clock: &ManualClock) -> Value {
    dispatch_events::handle(d, clock, 500, json!({"source": "schedule"}))
        .await
        .expect("the table answered")
}

/// An order paid through the create function and the simulator, its webhook
/// delivered `copies` times; the payment's id.
async fn pay(h: &Harness, order: &str, finish: Finish) -> String {
    let body = json!({"amount": 15000, "currency": "CLP", "order_id": order}).to_string();
    let created = h.post(Some(&format!("create-{order}")), &body).await;
    assert_eq!(created.status, 201, "{}", created.json);
    let id = created.json["id"].as_str().unwrap().to_string();
    let copies = if finish.duplicate { 2 } else { 1 };
    let before = h.sim.deliveries().len();
    h.sim.finish(&id, &finish).unwrap();
    let deliveries = h.sim.wait_settled(before + copies).await;
    assert!(deliveries.iter().all(|d| d.delivered), "{deliveries:?}");
    id
}

fn twice(outcome: &str) -> Finish {
    Finish {
        duplicate: true,
        ..Finish::outcome(outcome)
    }
}

fn delivery(event_id: &str) -> DeliveryRef {
    DeliveryRef {
        event_id: event_id.into(),
        destination: "merchant".into(),
    }
}

#[tokio::test]
async fn a_paid_order_whose_webhook_arrived_twice_reaches_the_merchant_once() {
    let h = Harness::new().await;
    wire_webhooks(&h).await;
    let receiver = Receiver::start(&[], 200).await;
    let d = dispatcher(&h, &receiver.url);
    let clock = dispatch_clock();
    let mut tap = stream_of(&h).await;
    let id = pay(&h, "order-twice", twice("succeeded")).await;

    let records = tap.read().await;
    assert!(!records.is_empty());
    let answer = handle(&d, &clock, records.clone()).await;
    assert_eq!(answer["batchItemFailures"], json!([]), "{answer}");
    // The stream delivers the batch again, and a third of it once more.
    handle(&d, &clock, records.clone()).await;
    let third: Vec<Value> = records.iter().step_by(3).cloned().collect();
    handle(&d, &clock, third).await;
    // The dispatcher's own writes come back on the stream and make nothing.
    let own = tap.read().await;
    assert!(!own.is_empty());
    handle(&d, &clock, own).await;
    sweep(&d, &clock).await;

    let paid = receiver.of_type("order.paid");
    assert_eq!(paid.len(), 1, "{:#?}", receiver.received());
    assert_eq!(receiver.received().len(), 1, "nothing else happened");
    let event = &paid[0];
    assert!(event.verified, "signed per Standard Webhooks");
    assert_eq!(event.id, event.body["id"]);
    assert_eq!(event.body["data"]["order_id"], "order-twice");
    assert_eq!(event.body["data"]["payment_id"], id.as_str());
    assert_eq!(event.body["data"]["flow"], "payment_intent");
    assert_eq!(event.body["data"]["amount"], 15000);
    assert_eq!(event.body["data"]["currency"], "CLP");
    for secret in ["widget_token", "whsec_", "sk_", "000012345678", "token"] {
        assert!(!event.raw.contains(secret), "{secret} in {}", event.raw);
    }
    let stored = d
        .store
        .delivery(&delivery(&event.id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.state, DeliveryState::Delivered);
    assert_eq!(stored.history.len(), 1);
    assert_eq!(stored.history[0].status, Some(200));
    assert_eq!(stored.history[0].answer_head, "answered 200");
}

#[tokio::test]
async fn an_endpoint_answering_500_twice_then_200_gets_one_id_three_times() {
    let h = Harness::new().await;
    wire_webhooks(&h).await;
    let receiver = Receiver::start(&[500, 500], 200).await;
    let d = dispatcher(&h, &receiver.url);
    let clock = dispatch_clock();
    let mut tap = stream_of(&h).await;
    pay(&h, "order-flaky", Finish::outcome("succeeded")).await;
    let answer = handle(&d, &clock, tap.read().await).await;
    assert_eq!(answer["report"]["retrying"], 1, "{answer}");
    // Not due yet: the sweep sends nothing.
    assert_eq!(sweep(&d, &clock).await["retrying"], 0);
    assert_eq!(receiver.received().len(), 1);
    for _ in 0..5 {
        clock.advance_ms(1_000);
        sweep(&d, &clock).await;
    }
    let got = receiver.received();
    assert_eq!(got.len(), 3, "{got:#?}");
    assert!(got.iter().all(|r| r.id == got[0].id && r.verified));
    let stored = d
        .store
        .delivery(&delivery(&got[0].id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.state, DeliveryState::Delivered);
    let statuses: Vec<_> = stored.history.iter().map(|a| a.status).collect();
    assert_eq!(statuses, [Some(500), Some(500), Some(200)]);
}

#[tokio::test]
async fn an_endpoint_answering_410_is_disabled_and_gets_nothing_more() {
    let h = Harness::new().await;
    wire_webhooks(&h).await;
    let receiver = Receiver::start(&[410], 200).await;
    let d = dispatcher(&h, &receiver.url);
    let clock = dispatch_clock();
    let mut tap = stream_of(&h).await;
    pay(&h, "order-gone-1", Finish::outcome("succeeded")).await;
    let answer = handle(&d, &clock, tap.read().await).await;
    assert_eq!(answer["report"]["disabled"], 1, "{answer}");
    pay(&h, "order-gone-2", Finish::outcome("succeeded")).await;
    handle(&d, &clock, tap.read().await).await;
    for _ in 0..3 {
        clock.advance_ms(60_000);
        sweep(&d, &clock).await;
    }
    assert_eq!(receiver.received().len(), 1, "{:#?}", receiver.received());
    assert_eq!(
        d.store
            .disabled_destinations(&["merchant".to_string()])
            .await
            .unwrap(),
        ["merchant"]
    );
    // Recover refuses nothing but sends nothing while the endpoint is disabled;
    // enabled again by an operator, a recover sends what was held, once.
    let (held, swept) = recover(&h, &d, &clock, 0).await;
    assert_eq!(
        (held.json["held"].as_u64(), swept["delivered"].as_u64()),
        (Some(2), Some(0)),
        "{}",
        held.json
    );
    let held_path = format!("/ops/events/{}/resend", receiver.received()[0].id);
    let resend_held =
        operator_post(&h, &clock, &held_path, "POST /ops/events/{id}/resend", "{}").await;
    assert_eq!(
        (resend_held.status, resend_held.error_code()),
        (409, "endpoint_disabled")
    );
    let enabled = operator_post(
        &h,
        &clock,
        "/ops/endpoints/merchant/enable",
        "POST /ops/endpoints/{id}/enable",
        r#"{"reason": "merchant fixed their endpoint", "ticket": "OPS-3"}"#,
    )
    .await;
    assert_eq!(enabled.status, 200, "{}", enabled.json);
    assert_eq!(enabled.json["endpoint"]["disabled"], false);
    clock.advance_ms(1_000);
    let (recovered, swept) = recover(&h, &d, &clock, 0).await;
    assert_eq!(
        recovered.json["resent"].as_array().unwrap().len(),
        2,
        "{}",
        recovered.json
    );
    assert_eq!(swept["delivered"], 2, "{swept}");
    // Each act is in the audit log, with its operator.
    let log = shared::store::OperationsStore::audit_log(&h.store.inner, None)
        .await
        .unwrap();
    let actions: Vec<&str> = log.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        ["enable_endpoint", "recover_delivery", "recover_delivery"]
    );
    assert!(log.iter().all(|e| e.actor == OPERATOR));
    let paid: Vec<String> = receiver
        .of_type("order.paid")
        .iter()
        .map(|r| r.id.clone())
        .collect();
    assert_eq!(
        paid.len(),
        3,
        "the first (410) and both, once each: {paid:?}"
    );
    assert!(
        paid[1..].contains(&paid[0]),
        "the 410'd event again: {paid:?}"
    );
    assert_ne!(paid[1], paid[2]);
}

#[tokio::test]
async fn an_endpoint_down_for_the_whole_ladder_is_exhausted_then_recovered_once() {
    let h = Harness::new().await;
    wire_webhooks(&h).await;
    let receiver = Receiver::start(&[], 503).await;
    let d = dispatcher(&h, &receiver.url);
    let clock = dispatch_clock();
    let since = clock.now_ms();
    let mut tap = stream_of(&h).await;
    pay(&h, "order-down", Finish::outcome("succeeded")).await;
    handle(&d, &clock, tap.read().await).await;
    let mut exhausted = 0;
    for _ in 0..10 {
        clock.advance_ms(45_000);
        exhausted += sweep(&d, &clock).await["exhausted"].as_u64().unwrap();
    }
    assert_eq!(exhausted, 1);
    let got = receiver.received();
    assert_eq!(got.len(), MAX_ATTEMPTS as usize, "{got:#?}");
    let stored = d
        .store
        .delivery(&delivery(&got[0].id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.state, DeliveryState::Exhausted);
    assert_eq!(stored.history.len(), MAX_ATTEMPTS as usize);

    *receiver.then.lock().unwrap() = 200;
    let (_, swept) = recover(&h, &d, &clock, since).await;
    assert_eq!(swept["delivered"], 1, "{swept}");
    // Recovered once: a second recover finds nothing undelivered.
    let (again, swept) = recover(&h, &d, &clock, since).await;
    assert_eq!(
        (
            again.json["resent"].as_array().unwrap().len(),
            &swept["delivered"]
        ),
        (0, &json!(0))
    );
    let got = receiver.received();
    assert_eq!(got.len(), MAX_ATTEMPTS as usize + 1);
    assert!(got.last().unwrap().verified);
    assert_eq!(got.last().unwrap().id, got[0].id);
    // The operator's resend sends it again, by id, on purpose — on the next sweep.
    let path = format!("/ops/events/{}/resend", got[0].id);
    let resent = operator_post(
        &h,
        &clock,
        &path,
        "POST /ops/events/{id}/resend",
        r#"{"reason": "merchant lost it"}"#,
    )
    .await;
    assert_eq!(resent.status, 200, "{}", resent.json);
    assert_eq!(
        resent.json["resent"],
        json!([{"event_id": got[0].id, "destination": "merchant", "state": "due"}])
    );
    assert_eq!(sweep(&d, &clock).await["delivered"], 1);
    assert_eq!(receiver.received().len(), MAX_ATTEMPTS as usize + 2);
    let stored = d
        .store
        .delivery(&delivery(&got[0].id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (stored.state, stored.attempts),
        (DeliveryState::Delivered, 1)
    );
    assert_eq!(
        stored.history.len(),
        MAX_ATTEMPTS as usize + 2,
        "every attempt kept"
    );
    for (path, body, code) in [
        ("/ops/events/evt_unknown/resend", "{}", "event_not_found"),
        (
            path.as_str(),
            r#"{"destination": "nowhere"}"#,
            "endpoint_not_found",
        ),
        (path.as_str(), r#"{"colour": "red"}"#, "invalid_json"),
    ] {
        let refused = operator_post(&h, &clock, path, "POST /ops/events/{id}/resend", body).await;
        assert_eq!(refused.error_code(), code, "{}", refused.json);
    }
}

#[tokio::test]
async fn a_failure_a_mismatch_and_each_refund_outcome_make_their_one_event() {
    let h = Harness::new().await;
    wire_webhooks(&h).await;
    let receiver = Receiver::start(&[], 200).await;
    let d = dispatcher(&h, &receiver.url);
    let clock = dispatch_clock();
    let mut tap = stream_of(&h).await;

    let failed = pay(&h, "order-failed", twice("failed")).await;
    let paid = pay(&h, "order-refunded", Finish::outcome("succeeded")).await;
    for (key, outcome) in [("refund-ok", "succeeded"), ("refund-ko", "failed")] {
        let body = json!({"amount": 5000}).to_string();
        let request = http_event(
            "POST",
            &format!("/payment-intents/{paid}/refunds"),
            "POST /payment-intents/{id}/refunds",
            json!({"content-type": "application/json", "idempotency-key": key}),
            Some(&body),
            Some(json!({"id": paid})),
        );
        let refund = h.call(request).await;
        assert_eq!(refund.status, 201, "{}", refund.json);
        let fintoc_id = refund.json["fintoc_refund_id"]
            .as_str()
            .unwrap()
            .to_string();
        let before = h.sim.deliveries().len();
        let events = h
            .sim
            .settle_refund(
                &fintoc_id,
                &Settle {
                    outcome: outcome.into(),
                    failure_code: None,
                    duplicate: true,
                    out_of_order: false,
                },
            )
            .unwrap();
        h.sim.wait_settled(before + 2 * events.len()).await;
    }
    // Fintoc reports 1 CLP paid for an intent of 15000.
    let service = webhook_service(h.store.inner.clone(), h.clock.clone(), &[WEBHOOK_SECRET]);
    let created = h
        .post(
            Some("create-mismatch"),
            &json!({"amount": 15000, "currency": "CLP", "order_id": "order-mismatch"}).to_string(),
        )
        .await;
    let mismatched = created.json["id"].as_str().unwrap().to_string();
    let body = event_body("evt_mismatch", &mismatched, "succeeded")
        .replace("\"amount\":15000", "\"amount\":1")
        .replace(&format!("order-{mismatched}"), "order-mismatch");
    for _ in 0..2 {
        let a = deliver(&service, body.as_bytes(), Some(&signed(&body, T0_MS))).await;
        assert_eq!(a.status, 200, "{}", a.json);
    }

    let records = tap.read().await;
    handle(&d, &clock, records.clone()).await;
    handle(&d, &clock, records).await;
    let types: Vec<(String, String)> = receiver
        .received()
        .iter()
        .map(|r| {
            (
                r.body["type"].as_str().unwrap().to_string(),
                r.body["data"]["order_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect();
    let count = |t: &str, order: &str| types.iter().filter(|(a, b)| a == t && b == order).count();
    assert_eq!(count("payment.failed", "order-failed"), 1, "{types:?}");
    assert_eq!(count("order.paid", "order-refunded"), 1, "{types:?}");
    assert_eq!(count("refund.succeeded", "order-refunded"), 1, "{types:?}");
    assert_eq!(count("refund.failed", "order-refunded"), 1, "{types:?}");
    assert_eq!(
        count("payment.needs_review", "order-mismatch"),
        1,
        "{types:?}"
    );
    assert_eq!(types.len(), 5, "nothing else: {types:?}");
    let failure = receiver.of_type("payment.failed");
    assert_eq!(failure[0].body["data"]["payment_id"], failed.as_str());
    assert_eq!(failure[0].body["data"]["status"], "failed");
    let review = receiver.of_type("payment.needs_review");
    assert_eq!(review[0].body["data"]["reason"], "amount_mismatch");
    let refund_failed = receiver.of_type("refund.failed");
    assert_eq!(
        refund_failed[0].body["data"]["failure_code"],
        "insufficient_funds"
    );
    assert_eq!(refund_failed[0].body["data"]["amount"], 5000);
    for r in receiver.received() {
        assert!(r.verified);
        for secret in ["widget_token", "whsec_", "sk_", "000012345678", "token"] {
            assert!(!r.raw.contains(secret), "{secret} in {}", r.raw);
        }
    }
}

/// A paid order as the webhook's transaction leaves it: its payment succeeded and
/// the order paid (written straight to the table, so the load is the dispatcher's).
async fn seed_paid_order(h: &Harness, n: usize) {
    use aws_sdk_dynamodb::types::AttributeValue as A;
    let s = |v: &str| A::S(v.to_string());
    let (pi, order) = (format!("pi_load_{n:05}"), format!("order-load-{n:05}"));
    h.dynamodb
        .put_item()
        .table_name(&h.table)
        .item("pk", s(&format!("INTENT#{pi}")))
        .item("entity", s("intent"))
        .item("id", s(&pi))
        .item("status", s("succeeded"))
        .item("amount", A::N("15000".into()))
        .item("currency", s("CLP"))
        .item("order_id", s(&order))
        .item("metadata", A::M(Default::default()))
        .item("created_at", s("2026-12-06T10:00:00.000Z"))
        .item("updated_at", s("2026-12-06T10:01:00.000Z"))
        .send()
        .await
        .unwrap();
    h.dynamodb
        .put_item()
        .table_name(&h.table)
        .item("pk", s(&format!("ORDER#{order}")))
        .item("entity", s("order"))
        .item("order_id", s(&order))
        .item("state", s("paid"))
        .item("intent_id", s(&pi))
        .item("payment_kind", s("intent"))
        .item("paid_at", s("2026-12-06T10:01:00.000Z"))
        .send()
        .await
        .unwrap();
}

/// The dispatcher under load: paid orders (`EVENTS_LOAD_ORDERS`, 200 by default;
/// `make bench` runs 1,000), their stream records handed over in batches of 100
/// with 30 % of them handed over again, to an endpoint that answers 500 to one
/// delivery in five: every order's `order.paid` is acknowledged exactly once.
/// `EVENTS_LOAD_REPORT=path.json` keeps the figures (docs/performance.md).
#[tokio::test]
async fn paid_orders_under_duplicates_and_a_flaky_endpoint_each_reach_the_merchant_once() {
    let orders: usize = std::env::var("EVENTS_LOAD_ORDERS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(200);
    let h = Harness::new().await;
    let flaky: Vec<u16> = (0..orders * 4)
        .map(|i| if i % 5 == 4 { 500 } else { 200 })
        .collect();
    let receiver = Receiver::start(&flaky, 200).await;
    let d = EventDispatcher {
        concurrency: 16,
        ..dispatcher(&h, &receiver.url)
    };
    let clock = dispatch_clock();
    let mut tap = stream_of(&h).await;
    for n in 0..orders {
        seed_paid_order(&h, n).await;
    }
    let records = tap.read().await;
    assert_eq!(records.len(), orders * 2);
    let mut rng = fastrand::Rng::with_seed(37);
    let again: Vec<Value> = records
        .iter()
        .filter(|_| rng.f64() < 0.3)
        .cloned()
        .collect();
    let before = d.store.usage();
    let started = std::time::Instant::now();
    let mut first_pass = shared::app::merchant_events::DispatchReport::default();
    for batch in records.chunks(100).chain(again.chunks(100)) {
        let answer = handle(&d, &clock, batch.to_vec()).await;
        assert_eq!(answer["batchItemFailures"], json!([]), "{answer}");
        first_pass.delivered += answer["report"]["delivered"].as_u64().unwrap() as usize;
        first_pass.retrying += answer["report"]["retrying"].as_u64().unwrap() as usize;
    }
    let mut sweeps = 0;
    while receiver
        .received()
        .iter()
        .filter(|r| r.status == 200)
        .count()
        < orders
        && sweeps < 20
    {
        clock.advance_ms(1_000);
        sweep(&d, &clock).await;
        sweeps += 1;
    }
    let elapsed = started.elapsed();
    let used = d.store.usage() - before;

    let received = receiver.received();
    let mut acknowledged = std::collections::HashMap::<String, usize>::new();
    for r in received.iter().filter(|r| r.status == 200) {
        *acknowledged.entry(r.id.clone()).or_default() += 1;
        assert_eq!(r.body["type"], "order.paid");
    }
    assert_eq!(
        acknowledged.len(),
        orders,
        "every order's order.paid acknowledged"
    );
    assert!(
        acknowledged.values().all(|n| *n == 1),
        "each id exactly once at the 2xx"
    );
    assert!(received.iter().all(|r| r.verified));
    let failed_attempts = received.iter().filter(|r| r.status == 500).count();
    assert!(failed_attempts > 0, "the endpoint was flaky");
    let report = json!({
        "orders": orders,
        "stream_records": records.len(),
        "records_handed_again": again.len(),
        "attempts": received.len(),
        "failed_attempts": failed_attempts,
        "delivered_first_pass": first_pass.delivered,
        "sweeps": sweeps,
        "seconds": elapsed.as_secs_f64(),
        "read_requests": used.read_requests,
        "write_requests": used.write_requests,
        "read_units": used.read_units,
        "write_units": used.write_units,
        "failed_conditions": used.failed_conditions,
    });
    println!("{report}");
    if let Ok(path) = std::env::var("EVENTS_LOAD_REPORT") {
        std::fs::write(path, serde_json::to_string_pretty(&report).unwrap()).unwrap();
    }
}
