//! The simulator's time comes from its injected clock.

use fintoc_sim::{Simulator, SimulatorConfig, DEFAULT_SECRET_KEY};
use shared::clock::ManualClock;
use std::sync::Arc;

#[tokio::test]
async fn created_at_comes_from_the_injected_clock() {
    let clock = ManualClock::new(1_767_225_600_000);
    let sim = Simulator::start(SimulatorConfig {
        clock: Arc::new(clock.clone()),
        ..SimulatorConfig::default()
    })
    .await
    .unwrap();
    let http = shared::fintoc::http_client_builder().build().unwrap();
    let create = |amount: u64| {
        http.post(format!("{}/v1/payment_intents", sim.base_url()))
            .header("authorization", DEFAULT_SECRET_KEY)
            .json(&serde_json::json!({"amount": amount, "currency": "CLP"}))
            .send()
    };
    let first: serde_json::Value = create(100).await.unwrap().json().await.unwrap();
    assert_eq!(first["created_at"], "2026-01-01T00:00:00.000Z");
    clock.advance_ms(90_000);
    let second: serde_json::Value = create(200).await.unwrap().json().await.unwrap();
    assert_eq!(second["created_at"], "2026-01-01T00:01:30.000Z");
    let stored = sim.intent(first["id"].as_str().unwrap()).unwrap();
    assert_eq!(
        stored["widget_token"],
        serde_json::Value::Null,
        "only the create answer has it"
    );
    assert_eq!(stored["status"], "created");
}

#[tokio::test]
async fn an_idempotency_key_is_replayed_for_a_day_then_purged() {
    let clock = ManualClock::new(1_767_225_600_000);
    let sim = Simulator::start(SimulatorConfig {
        clock: Arc::new(clock.clone()),
        ..SimulatorConfig::default()
    })
    .await
    .unwrap();
    let http = shared::fintoc::http_client_builder().build().unwrap();
    let create = || {
        http.post(format!("{}/v1/payment_intents", sim.base_url()))
            .header("authorization", DEFAULT_SECRET_KEY)
            .header("idempotency-key", "key-1")
            .json(&serde_json::json!({"amount": 100, "currency": "CLP"}))
            .send()
    };
    let first: serde_json::Value = create().await.unwrap().json().await.unwrap();
    clock.advance_ms(fintoc_sim::IDEMPOTENCY_KEY_TTL_MS - 1);
    let replay = create().await.unwrap();
    assert!(replay.headers().contains_key("idempotent-replayed"));
    let replay: serde_json::Value = replay.json().await.unwrap();
    assert_eq!(replay["id"], first["id"]);
    // A day after it was stored, the key is gone: the same key makes a new intent,
    // as it may at Fintoc.
    clock.advance_ms(1);
    let later = create().await.unwrap();
    assert!(!later.headers().contains_key("idempotent-replayed"));
    let later: serde_json::Value = later.json().await.unwrap();
    assert_ne!(later["id"], first["id"]);
    assert_eq!(sim.intents_created(), 2);
}
