//! Refund runs: payments made through the create function and paid (at the
//! simulator, and here by their signed `succeeded` event through the webhook's use
//! case), then one refund of part of each through the function, `concurrency` at a
//! time, after `warmup` refunds of payments of their own sent first through the same
//! processes and left out of every figure; every refund must be answered 201 and
//! exist once at the simulator.

use crate::events::{http_event, uuid_like};
use crate::load::LoadRun;
use crate::setup::Setup;
use crate::{DEPLOYMENT_TAG, WEBHOOK_SECRET};
use serde_json::{json, Value};
use shared::app::receive_webhook::{Delivery, WebhookService, WebhookSettings};
use shared::clock::SystemClock;
use shared::domain::deployment::Deployment;
use shared::secrets::SecretString;

/// Part of each 15,000 CLP payment refunded.
const REFUND_AMOUNT: u64 = 5_000;

pub(crate) async fn load_refund(
    setup: &Setup,
    payments: usize,
    concurrency: usize,
    warmup: usize,
) -> Result<Value, String> {
    setup.sim.set_delivery_mode(fintoc_sim::DeliveryMode::Off);
    let run = &uuid_like()[..8];
    let creates = (0..payments + warmup)
        .map(|k| {
            let key = format!("refund-{run}-{k:05}");
            (k, crate::events::create_event(&key, 15_000))
        })
        .collect();
    let made = LoadRun::execute(setup, creates, concurrency).await;
    let mut ids = Vec::new();
    for (_, status, body) in &made.answers {
        match (status, body["id"].as_str()) {
            (201, Some(id)) => ids.push(id.to_string()),
            _ => {
                return Err(format!(
                    "a payment for the refunds was not created: {status} {body}"
                ))
            }
        }
    }
    let webhook = WebhookService::new(
        setup.store(),
        SystemClock,
        WebhookSettings {
            secrets: vec![SecretString::new(WEBHOOK_SECRET)],
            refresh: None,
            tolerance_secs: 300,
            deployment: Deployment {
                tag: DEPLOYMENT_TAG.into(),
                mode: None,
            },
            write_first: true,
        },
    );
    for id in &ids {
        setup
            .sim
            .finish(id, &fintoc_sim::Finish::outcome("succeeded"))
            .map_err(|e| format!("finishing {id} at the simulator: {e}"))?;
        let data = setup.sim.intent(id).ok_or("the simulator lost an intent")?;
        let body = json!({"id": format!("evt_paid_{id}"), "object": "event",
            "type": "payment_intent.succeeded", "mode": "test",
            "created_at": "2026-01-01T00:00:05.000Z", "data": data})
        .to_string();
        let signature = fintoc_sim::sign(WEBHOOK_SECRET, fintoc_sim::unix_now(), body.as_bytes());
        webhook
            .accept(Delivery {
                signature: Some(&signature),
                body: body.as_bytes(),
            })
            .await
            .map_err(|e| format!("recording {id} paid: {}", e.body()))?;
    }
    let mut refunds: Vec<(usize, Vec<u8>)> = ids
        .iter()
        .enumerate()
        .map(|(k, id)| {
            let path = format!("/payment-intents/{id}/refunds");
            let headers = json!({"content-type": "application/json",
                                 "idempotency-key": format!("refund-of-{run}-{k:05}")});
            let body = json!({"amount": REFUND_AMOUNT}).to_string();
            (k, http_event("POST", &path, headers, &body))
        })
        .collect();
    let measured = refunds.split_off(warmup);
    let refunded = LoadRun::execute_warmed(setup, refunds, measured, concurrency).await;
    let not_created = refunded
        .answers
        .iter()
        .chain(&refunded.warmup_answers)
        .filter(|(_, status, body)| *status != 201 || body["amount"] != REFUND_AMOUNT)
        .count();
    let at_fintoc = setup
        .sim
        .refunds()
        .iter()
        .filter(|r| r["amount"] == REFUND_AMOUNT)
        .count();
    let first_refused = refunded
        .answers
        .iter()
        .chain(&refunded.warmup_answers)
        .find(|(_, status, _)| *status != 201)
        .map(|(_, status, body)| json!({"status": status, "body": body}));
    let report = refunded.report(json!({
        "refunds": payments,
        "warmup_refunds": warmup,
        "first_refused": first_refused,
        "invariants": {
            "refunds_not_answered_201": not_created,
            "refunds_at_fintoc": at_fintoc,
        },
    }));
    if not_created > 0 || at_fintoc != ids.len() {
        return Err(format!("invariants broken: {report:#}"));
    }
    Ok(report)
}
