//! Cold starts: a new process per run, timed from spawn to its first `next` (init)
//! and to its first response.

use crate::events::{
    create_event, http_answer, http_event, uuid_like, webhook_body, webhook_event,
};
use crate::runtime_api::RuntimeApi;
use crate::setup::{process_usage, seed_intent, Setup};
use crate::stats::{ms, summary};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

pub(crate) async fn cold_start(setup: &Setup, runs: usize) -> Result<Value, String> {
    let (mut init, mut first_response, mut first_duration, mut rss) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for run in 0..runs {
        let api = RuntimeApi::start().await;
        let event = match setup.function.as_str() {
            "create-intent" => create_event(&format!("cold-{run}-{}", uuid_like()), 15000),
            "hello" => http_event("GET", "/hello", json!({}), ""),
            _ => {
                // An intent this deployment created, paid: one transaction.
                let intent = format!("pi_cold_{run}_{}", uuid_like());
                seed_intent(&setup.store(), &intent).await?;
                webhook_event(&webhook_body(
                    &format!("evt_cold_{run}_{}", uuid_like()),
                    &intent,
                    "succeeded",
                ))
            }
        };
        let started = Instant::now();
        let mut child = setup.spawn(&api);
        let outcome = tokio::time::timeout(Duration::from_secs(30), api.invoke(event))
            .await
            .map_err(|_| {
                format!(
                    "no answer within 30 s; init errors: {:?}",
                    api.state.init_errors.lock().unwrap()
                )
            })?;
        let answered = Instant::now();
        let (status, body) = http_answer(&outcome);
        let expected = if setup.function == "create-intent" {
            201
        } else {
            200
        };
        if status != expected {
            return Err(format!(
                "first invocation answered {status}, expected {expected}: {body}"
            ));
        }
        let ready = api
            .first_next()
            .ok_or("the function never asked for an event")?;
        init.push(ms(ready - started));
        first_response.push(ms(answered - started));
        first_duration.push(ms(outcome.duration));
        if let Some(pid) = child.id() {
            rss.push(process_usage(pid).0 as f64 / 1024.0);
        }
        let _ = child.kill().await;
    }
    Ok(json!({
        "function": setup.function,
        "runs": runs,
        "init_ms": summary(init),
        "first_response_ms": summary(first_response),
        "first_invocation_duration_ms": summary(first_duration),
        "rss_after_first_mib": summary(rss),
    }))
}
