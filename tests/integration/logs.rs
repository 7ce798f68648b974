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
