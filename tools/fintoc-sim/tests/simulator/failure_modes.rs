//! Failure modes for the reconciler's tests: deliveries off, intents held pending
//! on a clock the control API moves.

use fintoc_sim::{DeliveryMode, Simulator, SimulatorConfig, DEFAULT_SECRET_KEY};
use serde_json::{json, Value};
use shared::clock::ManualClock;
use std::sync::Arc;

const DAY_MS: i64 = 86_400_000;

#[tokio::test]
async fn a_held_intent_stays_pending_until_the_controlled_clock_passes_its_day() {
    let clock = ManualClock::new(1_767_225_600_000);
    let sim = Simulator::start(SimulatorConfig {
        clock: Arc::new(clock.clone()),
        ..SimulatorConfig::default()
    })
    .await
    .unwrap();
    sim.set_delivery_mode(DeliveryMode::Off);
    let http = shared::fintoc::http_client_builder().build().unwrap();
    let base = sim.base_url();
    let created: Value = http
        .post(format!("{base}/v1/payment_intents"))
        .header("authorization", DEFAULT_SECRET_KEY)
        .json(&json!({"amount": 100, "currency": "CLP"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap();
    let until = sim.now_ms() + 9 * DAY_MS;
    let finish = http
        .post(format!("{base}/_sim/payment_intents/{id}/finish"))
        .json(&json!({"outcome": "succeeded", "pending_until_ms": until}))
        .send()
        .await
        .unwrap();
    assert_eq!(finish.status(), 202);
    let get = || async {
        http.get(format!("{base}/v1/payment_intents/{id}"))
            .header("authorization", DEFAULT_SECRET_KEY)
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()["status"]
            .clone()
    };
    assert_eq!(get().await, "pending");
    let moved: Value = http
        .post(format!("{base}/_sim/clock"))
        .json(&json!({"advance_ms": 9 * DAY_MS - 1}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(moved["now_ms"], until - 1);
    assert_eq!(get().await, "pending", "one millisecond early");
    let refused = http
        .post(format!("{base}/_sim/clock"))
        .json(&json!({"advance_ms": -5}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400, "time never goes back");
    sim.advance_clock_ms(1);
    assert_eq!(get().await, "succeeded");
    assert_eq!(sim.lookups(), 3);
    // Deliveries off: each event is given up without reaching any endpoint.
    let deliveries = sim.deliveries();
    assert_eq!(deliveries.len(), 2, "pending, then succeeded");
    assert!(deliveries
        .iter()
        .all(|d| d.settled && !d.delivered && d.last_status.is_none()));
    assert_eq!(deliveries[1].event_type, "payment_intent.succeeded");
}

#[tokio::test]
async fn the_delivery_mode_is_set_through_the_control_api() {
    let sim = Simulator::start(SimulatorConfig::default()).await.unwrap();
    let http = shared::fintoc::http_client_builder().build().unwrap();
    let set = |mode: &'static str| {
        http.post(format!("{}/_sim/deliveries/mode", sim.base_url()))
            .json(&json!({ "mode": mode }))
            .send()
    };
    assert_eq!(set("wrong_secret").await.unwrap().status(), 200);
    let stats: Value = http
        .get(format!("{}/_sim/stats", sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["delivery_mode"], "wrong_secret");
    assert_eq!(set("sideways").await.unwrap().status(), 400);
}

/// Fintoc stores the first answer per idempotency key, a failure too: a create
/// that failed inside the API answers its 5xx again to every retry of the key
/// (nothing made), while another key makes the object.
#[tokio::test]
async fn a_create_failing_inside_the_api_replays_its_5xx_to_its_key() {
    let sim = Simulator::start(SimulatorConfig::default()).await.unwrap();
    let http = shared::fintoc::http_client_builder().build().unwrap();
    let base = sim.base_url();
    let create = |key: &'static str| {
        let (http, base) = (http.clone(), base.clone());
        async move {
            http.post(format!("{base}/v1/payment_intents"))
                .header("authorization", DEFAULT_SECRET_KEY)
                .header("idempotency-key", key)
                .json(&json!({"amount": 100, "currency": "CLP"}))
                .send()
                .await
                .unwrap()
        }
    };
    sim.push_fault(fintoc_sim::Fault::Failure {
        status: 500,
        made: false,
    });
    assert_eq!(create("k-1").await.status(), 500);
    let again = create("k-1").await;
    assert_eq!(again.status(), 500, "the stored failure, replayed");
    assert_eq!(
        again
            .headers()
            .get("idempotent-replayed")
            .map(|v| v.to_str().unwrap()),
        Some("true")
    );
    assert_eq!(sim.intents_created(), 0, "nothing made");
    assert_eq!(create("k-2").await.status(), 201, "another key makes it");
}

/// A failure after the work: the create's object is made, and still the 5xx is
/// what its key keeps; the list shows it (by `since`).
#[tokio::test]
async fn a_create_failing_after_the_work_made_its_object_and_replays_its_5xx() {
    let sim = Simulator::start(SimulatorConfig::default()).await.unwrap();
    let http = shared::fintoc::http_client_builder().build().unwrap();
    let base = sim.base_url();
    let create = || {
        http.post(format!("{base}/v1/payment_intents"))
            .header("authorization", DEFAULT_SECRET_KEY)
            .header("idempotency-key", "k-made")
            .json(&json!({"amount": 100, "currency": "CLP", "metadata": {"order_id": "o-1"}}))
            .send()
    };
    sim.push_fault(fintoc_sim::Fault::Failure {
        status: 503,
        made: true,
    });
    assert_eq!(create().await.unwrap().status(), 503);
    assert_eq!(create().await.unwrap().status(), 503, "replayed");
    assert_eq!(sim.intents_created(), 1, "made before it failed");
    let list = |since: &str| {
        http.get(format!("{base}/v1/payment_intents"))
            .query(&[("since", since)])
            .header("authorization", DEFAULT_SECRET_KEY)
            .send()
    };
    let listed: serde_json::Value = list("2000-01-01T00:00:00Z")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["metadata"]["order_id"], "o-1");
    let later: serde_json::Value = list("2999-01-01T00:00:00Z")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        later.as_array().unwrap().is_empty(),
        "since filters: {later}"
    );
}
