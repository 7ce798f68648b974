//! Finishing an intent and delivering its signed events to the registered endpoint,
//! retried with exponential backoff like Fintoc.

use crate::config::{DeliveryMode, Finish, WebhookEndpoint};
use crate::signing::sign;
use crate::state::{random_token, DeliveryRecord, Inner, SimAccount, State};
use crate::status::PaymentStatus;
use serde_json::{json, Value};
use std::sync::Arc;

fn default_error_reason(outcome: &str) -> Option<&'static str> {
    match outcome {
        "failed" => Some("insufficient_funds"),
        "rejected" => Some("mfa_invalid_authorization"),
        "expired" => Some("manually_expired"),
        _ => None,
    }
}

/// Finishes an intent (a session's payment too, whose session then finishes when
/// it succeeds) and delivers its signed events in the background. Returns the
/// event ids (one per event, before duplication).
pub(crate) fn finish_intent(
    state: &Arc<State>,
    id: &str,
    finish: &Finish,
) -> Result<Vec<String>, String> {
    if !matches!(
        finish.outcome.as_str(),
        "succeeded" | "failed" | "rejected" | "expired"
    ) {
        return Err(format!(
            "outcome must be succeeded, failed, rejected or expired, not {:?}",
            finish.outcome
        ));
    }
    let now = state.now_rfc3339();
    let mut inner = state.lock();
    if inner.webhook.is_none() && inner.delivery_mode != DeliveryMode::Off {
        return Err("no webhook endpoint is configured".into());
    }
    let mut events = intent_events(&mut inner, id, finish, &now)?;
    if let Some(session_id) = inner.intent_sessions.get(id).cloned() {
        events.extend(session_events_after_payment(
            &mut inner,
            &session_id,
            id,
            &now,
        ));
    }
    if let Some(until) = finish.pending_until_ms {
        let then = Finish {
            pending_until_ms: None,
            via_pending: false,
            ..finish.clone()
        };
        inner.holds.insert(id.to_string(), (until, then));
    }
    let ids = events
        .iter()
        .map(|e| e["id"].as_str().unwrap_or_default().to_string())
        .collect();
    dispatch(
        state,
        &mut inner,
        events,
        finish.duplicate,
        finish.out_of_order,
    );
    Ok(ids)
}

/// A signed-to-be event of `object_type.status` about `data`.
pub(crate) fn event(event_type: &str, mode: &str, now: &str, data: Value) -> Value {
    json!({
        "id": format!("evt_{}", random_token(16)),
        "object": "event",
        "type": event_type,
        "mode": mode,
        "created_at": now,
        "data": data,
    })
}

/// Moves an intent to the finish's outcome (through `pending` when asked or
/// held) and returns its events.
fn intent_events(
    inner: &mut Inner,
    id: &str,
    finish: &Finish,
    now: &str,
) -> Result<Vec<Value>, String> {
    let pi = inner
        .intents
        .get_mut(id)
        .ok_or_else(|| format!("no such payment_intent: {id}"))?;
    if pi.status.is_final() {
        return Err(format!(
            "payment intent {id} is already {}",
            pi.status.as_str()
        ));
    }
    let sender = SimAccount {
        holder_id: "183917137".into(),
        institution_id: if pi.currency == "MXN" {
            "mx_stp"
        } else {
            "cl_banco_estado"
        }
        .into(),
        number: format!("0000{}", 10_000_000 + fastrand::u32(..89_999_999)),
        account_type: "checking_account".into(),
    };
    let mut statuses = Vec::new();
    let held = finish.pending_until_ms.is_some();
    if (finish.via_pending || held) && pi.status != PaymentStatus::Pending {
        statuses.push("pending".to_string());
    }
    if !held {
        statuses.push(finish.outcome.clone());
    }
    let mut events = Vec::new();
    for status in statuses {
        pi.status = PaymentStatus::parse(&status);
        pi.sender_account = Some(sender.clone());
        if status == "succeeded" {
            if let Some(amount) = finish.paid_amount {
                pi.amount = amount;
            }
            pi.transaction_date = Some(now.to_string());
            pi.reference_id = Some(format!("{}", 100_000_000 + fastrand::u32(..899_999_999)));
        }
        if status != "pending" && status != "succeeded" {
            pi.error_reason = finish
                .error_reason
                .clone()
                .or(default_error_reason(&status).map(str::to_string));
        }
        let mut data = pi.to_json();
        if finish.retyped {
            retype(&mut data);
        }
        if finish.without_metadata {
            data["metadata"] = json!({});
        }
        events.push(event(
            &format!("payment_intent.{status}"),
            pi.mode,
            now,
            data,
        ));
    }
    Ok(events)
}

/// What a payment's new status does to its session: a success finishes it (and
/// its `checkout_session.finished` event goes out after the payment's); an
/// attempt that ended unpaid leaves it `in_progress`, for the payer to try again.
fn session_events_after_payment(
    inner: &mut Inner,
    session_id: &str,
    intent_id: &str,
    now: &str,
) -> Vec<Value> {
    let succeeded = inner
        .intents
        .get(intent_id)
        .is_some_and(|pi| pi.status == PaymentStatus::Succeeded);
    let Some(session) = inner.sessions.get_mut(session_id) else {
        return Vec::new();
    };
    if !succeeded || session.status == "finished" {
        return Vec::new();
    }
    session.status = "finished";
    let session = session.clone();
    vec![event(
        "checkout_session.finished",
        session.mode,
        now,
        session.to_json(&inner.intents),
    )]
}

/// Records delivery jobs for `events` (twice each when `duplicate`, in reverse when
/// `out_of_order`) and sends them in the background, in the current mode.
pub(crate) fn dispatch(
    state: &Arc<State>,
    inner: &mut Inner,
    mut events: Vec<Value>,
    duplicate: bool,
    out_of_order: bool,
) {
    let mode = inner.delivery_mode;
    if out_of_order {
        events.reverse();
    }
    let copies = if duplicate { 2 } else { 1 };
    let mut jobs = Vec::new();
    for event in &events {
        for _ in 0..copies {
            let index = inner.deliveries.len();
            let off = mode == DeliveryMode::Off;
            inner.deliveries.push(DeliveryRecord {
                event_id: event["id"].as_str().unwrap_or_default().to_string(),
                event_type: event["type"].as_str().unwrap_or_default().to_string(),
                attempts: if off {
                    state.delivery.max_retries + 1
                } else {
                    0
                },
                last_status: None,
                delivered: false,
                settled: off,
            });
            inner.bodies.push(event.to_string());
            if !off {
                jobs.push((index, event.to_string()));
            }
        }
    }
    if mode == DeliveryMode::Off {
        state.settled.notify_waiters();
    }
    if let (Some(webhook), false) = (inner.webhook.clone(), jobs.is_empty()) {
        let secret = match mode {
            DeliveryMode::WrongSecret => format!("{}_not_the_registered_one", webhook.secret),
            _ => webhook.secret.clone(),
        };
        let webhook = WebhookEndpoint { secret, ..webhook };
        let state = state.clone();
        tokio::spawn(async move {
            // Deliveries of one batch go out one after the other, in the chosen order.
            for (index, body) in jobs {
                deliver(&state, &webhook, index, body).await;
            }
        });
    }
}

/// Gives optional fields other JSON types, as another API version might.
fn retype(data: &mut Value) {
    let Some(object) = data.as_object_mut() else {
        return;
    };
    if let Some(amount) = object.get("amount").and_then(Value::as_u64) {
        object.insert("amount".into(), Value::from(amount.to_string()));
    }
    if let Some(reference) = object.get("reference_id").and_then(Value::as_str) {
        let number = reference.parse::<u64>().map_or(Value::from(0), Value::from);
        object.insert("reference_id".into(), number);
    }
    if object.get("transaction_date").is_some_and(|d| !d.is_null()) {
        object.insert("transaction_date".into(), Value::from(20_260_101));
    }
    object.insert(
        "customer_email".into(),
        json!({"address": "payer@example.cl"}),
    );
    object.insert("error_reason".into(), json!(["retyped"]));
}

/// Delivers again, in the current mode, every event no attempt delivered (as
/// Fintoc's retries would after the endpoint is fixed). Returns how many.
pub(crate) fn redeliver_undelivered(state: &Arc<State>) -> usize {
    let mut inner = state.lock();
    let Some(webhook) = inner.webhook.clone() else {
        return 0;
    };
    let secret = match inner.delivery_mode {
        DeliveryMode::WrongSecret => format!("{}_not_the_registered_one", webhook.secret),
        _ => webhook.secret.clone(),
    };
    let webhook = WebhookEndpoint { secret, ..webhook };
    let mut jobs = Vec::new();
    for index in 0..inner.deliveries.len() {
        if inner.deliveries[index].delivered {
            continue;
        }
        inner.deliveries[index].settled = false;
        jobs.push((index, inner.bodies[index].clone()));
    }
    let count = jobs.len();
    let state = state.clone();
    tokio::spawn(async move {
        for (index, body) in jobs {
            deliver(&state, &webhook, index, body).await;
        }
    });
    count
}

async fn deliver(state: &State, webhook: &WebhookEndpoint, index: usize, body: String) {
    let policy = &state.delivery;
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let result = state
            .http
            .post(&webhook.url)
            .header("content-type", "application/json")
            .header(
                "fintoc-signature",
                sign(&webhook.secret, state.now_secs(), body.as_bytes()),
            )
            .body(body.clone())
            .send()
            .await;
        let status = result.as_ref().ok().map(|r| r.status().as_u16());
        let delivered = status.is_some_and(|s| (200..300).contains(&s));
        let settled = delivered || attempt > policy.max_retries;
        {
            let mut inner = state.lock();
            if let Some(record) = inner.deliveries.get_mut(index) {
                record.attempts = attempt;
                record.last_status = status;
                record.delivered = delivered;
                record.settled = settled;
            }
        }
        if settled {
            state.settled.notify_waiters();
            return;
        }
        let delay = policy
            .base_delay
            .saturating_mul(2u32.saturating_pow(attempt - 1))
            .min(policy.max_delay);
        tokio::time::sleep(delay).await;
    }
}
