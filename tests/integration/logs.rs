//! Logs never carry a widget token, a secret or an account number, at any log level
//! the template offers: a create, its replay, a webhook and a GET run with the
//! functions' own log filter, and everything printed is searched.

use crate::common::*;
use std::io::Write;
use std::sync::{Arc, Mutex};

/// Where the subscriber writes, kept for the search.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The `LogLevel` values `template.yaml` allows.
fn offered_levels() -> Vec<String> {
    let template =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml")).unwrap();
    let after = &template[template.find("  LogLevel:").expect("a LogLevel parameter")..];
    let line = after
        .lines()
        .find(|l| l.trim_start().starts_with("AllowedValues:"))
        .unwrap();
    line[line.find('[').unwrap() + 1..line.find(']').unwrap()]
        .split(',')
        .map(|v| v.trim().to_string())
        .collect()
}

#[test]
fn no_offered_log_level_prints_a_token_a_secret_or_an_account_number() {
    let levels = offered_levels();
    assert!(!levels.iter().any(|l| l == "TRACE"), "TRACE is not offered");
    assert!(levels.iter().any(|l| l == "DEBUG"));
    for level in levels {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(shared::logging::filter(&level))
            .with_writer(move || writer.clone())
            .json()
            .finish();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let widget_token = tracing::subscriber::with_default(subscriber, || {
            runtime.block_on(async {
                let h = Harness::new().await;
                let created = h.post(Some("key-logs"), BODY).await;
                assert_eq!(created.status, 201);
                // A replay reads the stored response (with the token) back.
                assert_eq!(h.post(Some("key-logs"), BODY).await.status, 201);
                let id = created.json["id"].as_str().unwrap().to_string();
                let service =
                    webhook_service(h.store.inner.clone(), h.clock.clone(), &[WEBHOOK_SECRET]);
                let body = event_body("evt_logs", &id, "succeeded");
                let now = shared::clock::Clock::now_ms(&h.clock);
                assert_eq!(
                    deliver(&service, body.as_bytes(), Some(&signed(&body, now)))
                        .await
                        .status,
                    200
                );
                assert_eq!(h.get(&id).await.status, 200);
                created.json["widget_token"].as_str().unwrap().to_string()
            })
        });
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert!(
            !text.is_empty() || level != "DEBUG",
            "DEBUG printed something"
        );
        for secret in [
            widget_token.as_str(),
            fintoc_sim::DEFAULT_SECRET_KEY,
            WEBHOOK_SECRET,
            "000012345678",
        ] {
            assert!(!text.contains(secret), "{level} printed a secret: {secret}");
        }
    }
}

/// The alarms read the logs: a refund that fails is one `REFUND_FAILED` line and a
/// refund contradicting its record one `ANOMALY` line, at every level the template
/// offers but FATAL (which prints nothing but panics).
#[test]
fn a_failed_refund_and_a_refund_anomaly_are_logged_for_their_alarms() {
    for level in offered_levels().into_iter().filter(|l| l != "FATAL") {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(shared::logging::filter(&level))
            .with_writer(move || writer.clone())
            .json()
            .finish();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        tracing::subscriber::with_default(subscriber, || {
            runtime.block_on(async {
                let h = Harness::new().await;
                let created = h.post(Some("key-refund-logs"), BODY).await;
                let id = created.json["id"].as_str().unwrap().to_string();
                // Paid at Fintoc; its event delivered here by hand.
                h.sim.set_delivery_mode(fintoc_sim::DeliveryMode::Off);
                h.sim
                    .finish(&id, &fintoc_sim::Finish::outcome("succeeded"))
                    .unwrap();
                let service =
                    webhook_service(h.store.inner.clone(), h.clock.clone(), &[WEBHOOK_SECRET]);
                let now = shared::clock::Clock::now_ms(&h.clock);
                let paid = event_body("evt_refund_logs", &id, "succeeded");
                deliver(&service, paid.as_bytes(), Some(&signed(&paid, now))).await;
                let refund = h
                    .call(http_event(
                        "POST",
                        &format!("/payment-intents/{id}/refunds"),
                        "POST /payment-intents/{id}/refunds",
                        serde_json::json!({"content-type": "application/json", "idempotency-key": "r-logs"}),
                        Some(r#"{"amount": 1000}"#),
                        Some(serde_json::json!({"id": id})),
                    ))
                    .await;
                assert_eq!(refund.status, 201, "{}", refund.json);
                let fintoc_id = refund.json["fintoc_refund_id"].as_str().unwrap();
                let mut at_fintoc = h.sim.refund(fintoc_id).unwrap();
                for (event_id, status, code) in [
                    ("evt_refund_failed", "failed", serde_json::json!("insufficient_funds")),
                    ("evt_refund_contradicts", "succeeded", serde_json::Value::Null),
                ] {
                    at_fintoc["status"] = serde_json::json!(status);
                    at_fintoc["failure_code"] = code;
                    let body = serde_json::json!({
                        "id": event_id, "object": "event", "type": format!("refund.{status}"),
                        "mode": "test", "created_at": "2026-01-01T00:00:00Z", "data": at_fintoc,
                    })
                    .to_string();
                    let answer = deliver(&service, body.as_bytes(), Some(&signed(&body, now))).await;
                    assert_eq!(answer.status, 200);
                }
            })
        });
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.matches("REFUND_FAILED").count(), 1, "{level}: {text}");
        assert!(text.contains("ANOMALY"), "{level}");
    }
}
