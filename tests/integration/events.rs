//! Every file in `events/` through the real handlers (as `lambda_http` parses them),
//! on DynamoDB Local and the simulator, checked against `events/manifest.json`.
//! `scripts/events-test.sh` runs the same files under `cargo lambda watch`.

use crate::common::*;
use serde_json::Value;
use std::sync::Arc;

const EVENTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../events");

#[tokio::test]
async fn every_event_file_produces_its_manifest_status() {
    let h = Harness::new().await;
    // The tag the events' intents carry, as `scripts/lib.sh` configures the functions.
    let webhook = Arc::new(webhook_service_for(
        h.store.inner.clone(),
        h.clock.clone(),
        &[WEBHOOK_SECRET],
        shared::domain::deployment::Deployment {
            tag: "local".into(),
            mode: None,
        },
    ));
    let operations = operations::OperationsService {
        store: h.store.inner.clone(),
        fintoc: fintoc_client(&h.sim, fintoc_sim::DEFAULT_SECRET_KEY),
        clock: h.clock.clone(),
        trust_local_operator_header: false,
        destinations: vec!["merchant".into()],
    };
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{EVENTS}/manifest.json")).unwrap())
            .unwrap();
    let cases = manifest["cases"].as_array().unwrap();
    let files: Vec<_> = std::fs::read_dir(EVENTS)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|f| f != "manifest.json")
        .collect();
    for file in &files {
        assert!(
            cases.iter().any(|c| c["file"] == file.as_str()),
            "{file} is not in the manifest"
        );
    }
    for case in cases {
        let file = case["file"].as_str().unwrap();
        let mut event: Value =
            serde_json::from_str(&std::fs::read_to_string(format!("{EVENTS}/{file}")).unwrap())
                .unwrap();
        if case["function"] == "webhook" {
            let secret = if file.contains("bad-signature") {
                "whsec_not_the_real_secret"
            } else {
                WEBHOOK_SECRET
            };
            let body = event["body"].as_str().unwrap().to_string();
            event["headers"]["fintoc-signature"] = Value::from(fintoc_sim::sign(
                secret,
                shared::clock::Clock::now_ms(&h.clock) / 1000,
                body.as_bytes(),
            ));
        }
        if case["function"] == "reconcile" {
            let (reconciler, _) = reconciler_for(&h);
            let summary = reconcile::handle(
                &reconciler,
                &h.clock,
                lambda_runtime::LambdaEvent::new(event, lambda_runtime::Context::default()),
            )
            .await;
            for (key, value) in case["summary"].as_object().unwrap() {
                assert_eq!(summary[key], *value, "{file}: {summary}");
            }
            assert!(summary["checked"].is_u64(), "{file}: {summary}");
            continue;
        }
        if case["function"] == "dispatch-events" {
            // Events go to no endpoint here: they are recorded, and attempted nowhere.
            let dispatcher = shared::app::merchant_events::EventDispatcher {
                store: h.store.inner.clone(),
                sender: shared::destinations::SignedEndpoints::new(
                    shared::destinations::SignedEndpoints::client(std::time::Duration::from_secs(
                        1,
                    ))
                    .unwrap(),
                    vec![],
                ),
                ladder_scale: 1.0,
                concurrency: 1,
            };
            let answer = dispatch_events::handle(&dispatcher, &h.clock, 500, event)
                .await
                .unwrap_or_else(|e| panic!("{file}: {e}"));
            for (path, value) in case["answer"].as_object().unwrap() {
                let found = path.split('.').fold(&answer, |v, key| &v[key]);
                assert_eq!(found, value, "{file}: {path} in {answer}");
            }
            continue;
        }
        let request = lambda_http::request::from_str(&event.to_string())
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        let answer = match case["function"].as_str().unwrap() {
            "create-intent" => h.call(request).await,
            "webhook" => Answer::from(webhook::handle(webhook.as_ref(), request).await),
            "operations" => Answer::from(operations::handle(&operations, request).await),
            other => panic!("unknown function {other}"),
        };
        assert_eq!(
            answer.status,
            case["status"].as_u64().unwrap() as u16,
            "{file}: {}",
            answer.json
        );
        if let Some(code) = case.get("code") {
            assert_eq!(answer.json["error"]["code"], *code, "{file}");
        }
        if let Some(outcome) = case.get("outcome") {
            assert_eq!(answer.json["outcome"], *outcome, "{file}");
        }
        if let Some(status) = case.get("json_status") {
            assert_eq!(answer.json["status"], *status, "{file}");
        }
    }
}
