//! Refunds as the simulator serves them: `POST /v1/refunds` (with `Idempotency-Key`,
//! only of a succeeded payment intent, never more than what is left of it),
//! `GET /v1/refunds/{id}`, `GET /v1/refunds` (`since`, `until`, `status`, pages),
//! `POST /v1/refunds/{id}/cancel` (only while `pending`), and the control API's
//! settle, which moves a refund on and sends its signed `refund.*` event.

use crate::config::Settle;
use crate::create_core::{create_with_idempotency, invalid, metadata_param, ApiRequest};
use crate::delivery::{dispatch, event};
use crate::responses::{
    error, json_response, method_not_allowed, no_such, page_of, query_params, unknown_url,
    HttpResponse,
};
use crate::state::{random_token, Inner, SimRefund, State};
use crate::status::PaymentStatus;
use http::Method;
use serde_json::{Map, Value};
use std::sync::Arc;

/// What is left to refund of a payment intent.
fn refundable(inner: &Inner, intent_id: &str, paid: u64) -> u64 {
    let held: u64 = inner
        .refunds
        .values()
        .filter(|r| r.resource_id == intent_id && r.holds())
        .map(|r| r.amount)
        .sum();
    paid.saturating_sub(held)
}

/// Answers `/v1/refunds…`.
pub(crate) fn refund_api(
    state: &Arc<State>,
    inner: &mut Inner,
    request: &ApiRequest<'_>,
) -> HttpResponse {
    let ApiRequest {
        method,
        segments,
        query,
        api_key,
        mode,
        idempotency_key,
        body,
        ..
    } = *request;
    match (method, segments) {
        (&Method::POST, ["v1", "refunds"]) => {
            let now = state.now_rfc3339();
            create_with_idempotency(
                inner,
                state.now_ms(),
                api_key,
                idempotency_key,
                "refunds",
                body,
                |inner, params| create(inner, mode, &now, params),
            )
        }
        (&Method::GET, ["v1", "refunds"]) => list(inner, query, &state.public_url),
        (&Method::GET, ["v1", "refunds", id]) => {
            inner.refund_lookups += 1;
            match inner.refunds.get(*id) {
                Some(r) => json_response(200, &r.to_json()),
                None => not_found(id),
            }
        }
        (&Method::POST, ["v1", "refunds", id, "cancel"]) => {
            let now = state.now_rfc3339();
            let Some(refund) = inner.refunds.get_mut(*id) else {
                return not_found(id);
            };
            if refund.status != "pending" {
                return error(
                    400,
                    "invalid_request_error",
                    "refund_not_cancelable",
                    &format!(
                        "Refund {id} is {}: only a pending refund can be canceled.",
                        refund.status
                    ),
                    None,
                );
            }
            refund.status = "canceled".into();
            refund.updated_at = now;
            json_response(200, &refund.to_json())
        }
        (_, ["v1", "refunds", ..]) => method_not_allowed(),
        _ => unknown_url(),
    }
}

fn not_found(id: &str) -> HttpResponse {
    no_such("refund", id)
}

fn create(
    inner: &mut Inner,
    mode: &'static str,
    now: &str,
    params: &Map<String, Value>,
) -> (u16, Value) {
    if params.get("resource_type").and_then(Value::as_str) != Some("payment_intent") {
        return invalid(
            "invalid_resource_type",
            "resource_type",
            "resource_type must be payment_intent.",
        );
    }
    if params
        .get("recipient_account")
        .is_some_and(|v| !v.is_null())
    {
        return invalid(
            "recipient_account_not_allowed",
            "recipient_account",
            "recipient_account is only accepted for payments whose payer's account Fintoc does not know.",
        );
    }
    let Some(intent_id) = params.get("resource_id").and_then(Value::as_str) else {
        return invalid(
            "missing_parameter",
            "resource_id",
            "Missing required param: resource_id.",
        );
    };
    let Some(pi) = inner.intents.get(intent_id) else {
        return invalid(
            "resource_missing",
            "resource_id",
            &format!("No such payment_intent: {intent_id}"),
        );
    };
    if pi.status != PaymentStatus::Succeeded {
        return invalid(
            "payment_intent_not_refundable",
            "resource_id",
            &format!(
                "Payment intent {intent_id} is {}: only a succeeded payment can be refunded.",
                pi.status.as_str()
            ),
        );
    }
    if pi.mode != mode {
        return invalid(
            "resource_missing",
            "resource_id",
            &format!("No such payment_intent: {intent_id}"),
        );
    }
    let (paid, currency) = (pi.amount, pi.currency.clone());
    let left = refundable(inner, intent_id, paid);
    let amount = match params.get("amount") {
        None | Some(Value::Null) => left,
        Some(v) => match v.as_u64() {
            Some(a) if a > 0 && v.is_u64() => a,
            _ => {
                return invalid(
                    "invalid_amount",
                    "amount",
                    "amount must be a positive integer.",
                )
            }
        },
    };
    if amount == 0 || amount > left {
        return invalid(
            "refund_amount_exceeded",
            "amount",
            &format!("The sum of all refunds for a resource cannot exceed the resource's amount ({left} left)."),
        );
    }
    let metadata = match metadata_param(params) {
        Ok(metadata) => metadata,
        Err(refusal) => return refusal,
    };
    let refund = SimRefund {
        id: format!("re_{}", random_token(24)),
        object: "refund",
        amount,
        currency,
        status: "pending".into(),
        failure_code: None,
        metadata,
        mode,
        resource_type: "payment_intent",
        resource_id: intent_id.to_string(),
        recipient_account: None,
        created_at: now.to_string(),
        updated_at: now.to_string(),
    };
    inner.refund_order.push(refund.id.clone());
    inner.refunds.insert(refund.id.clone(), refund.clone());
    inner.refunds_created += 1;
    (201, refund.to_json())
}

fn list(inner: &Inner, query: &str, public_url: &str) -> HttpResponse {
    let params = query_params(query);
    let (since, until, status) = (
        params.get("since"),
        params.get("until"),
        params.get("status"),
    );
    let items: Vec<Value> = inner
        .refund_order
        .iter()
        .rev()
        .filter_map(|id| inner.refunds.get(id))
        .filter(|r| since.is_none_or(|s| r.created_at.as_str() >= s.as_str()))
        .filter(|r| until.is_none_or(|u| r.created_at.as_str() <= u.as_str()))
        .filter(|r| status.is_none_or(|s| r.status == *s))
        .map(SimRefund::to_json)
        .collect();
    page_of(items, &params, &format!("{public_url}/v1/refunds"))
}

/// Moves a refund to `settle.outcome` (through `in_progress` when it is still
/// `pending`) and sends its signed events. Returns the event ids.
pub(crate) fn settle_refund(
    state: &Arc<State>,
    id: &str,
    settle: &Settle,
) -> Result<Vec<String>, String> {
    if !matches!(
        settle.outcome.as_str(),
        "in_progress" | "succeeded" | "failed" | "insufficient_balance"
    ) {
        return Err(format!(
            "outcome must be in_progress, succeeded, failed or insufficient_balance, not {:?}",
            settle.outcome
        ));
    }
    if settle.outcome == "insufficient_balance" {
        return hold_short_of_balance(state, id, settle);
    }
    let now = state.now_rfc3339();
    let mut inner = state.lock();
    if inner.webhook.is_none() && inner.delivery_mode != crate::config::DeliveryMode::Off {
        return Err("no webhook endpoint is configured".into());
    }
    let refund = inner
        .refunds
        .get_mut(id)
        .ok_or_else(|| format!("no such refund: {id}"))?;
    if !matches!(refund.status.as_str(), "pending" | "in_progress") {
        return Err(format!("refund {id} is already {}", refund.status));
    }
    let mut events = Vec::new();
    if refund.status == "pending" && (settle.outcome == "in_progress" || settle.out_of_order) {
        refund.status = "in_progress".into();
        refund.updated_at = now.clone();
        events.push(event(
            "refund.in_progress",
            refund.mode,
            &now,
            refund.to_json(),
        ));
    }
    if settle.outcome != "in_progress" {
        refund.status = settle.outcome.clone();
        refund.updated_at = now.clone();
        if settle.outcome == "failed" {
            refund.failure_code = Some(
                settle
                    .failure_code
                    .clone()
                    .unwrap_or_else(|| "insufficient_funds".into()),
            );
        }
        let event_type = format!("refund.{}", refund.status);
        events.push(event(&event_type, refund.mode, &now, refund.to_json()));
    }
    let ids = events
        .iter()
        .map(|e| e["id"].as_str().unwrap_or_default().to_string())
        .collect();
    dispatch(
        state,
        &mut inner,
        events,
        settle.duplicate,
        settle.out_of_order,
    );
    Ok(ids)
}

/// How long Fintoc retries a refund the available balance cannot cover before it
/// fails it (`insufficient_funds`).
pub const SHORT_BALANCE_RETRY_BUSINESS_DAYS: u32 = 5;

/// The time `business_days` business days (Monday to Friday, UTC) after `from_ms`.
pub fn after_business_days(from_ms: i64, business_days: u32) -> i64 {
    const DAY_MS: i64 = 86_400_000;
    let mut at = from_ms;
    let mut left = business_days;
    while left > 0 {
        at += DAY_MS;
        // 1970-01-01 was a Thursday: day 0 is weekday 3 (Monday = 0).
        let weekday = (at.div_euclid(DAY_MS) + 3).rem_euclid(7);
        if weekday < 5 {
            left -= 1;
        }
    }
    at
}

/// The available balance cannot cover the refund: it goes `in_progress` (its event
/// sent now) and Fintoc retries it for [`SHORT_BALANCE_RETRY_BUSINESS_DAYS`]
/// business days on the simulator's clock, then fails it with
/// `insufficient_funds` (its event sent then: see [`release_due_refunds`]).
fn hold_short_of_balance(
    state: &Arc<State>,
    id: &str,
    settle: &Settle,
) -> Result<Vec<String>, String> {
    let until = after_business_days(state.now_ms(), SHORT_BALANCE_RETRY_BUSINESS_DAYS);
    let ids = settle_refund(
        state,
        id,
        &Settle {
            outcome: "in_progress".into(),
            ..settle.clone()
        },
    )?;
    let then = Settle {
        outcome: "failed".into(),
        failure_code: Some("insufficient_funds".into()),
        ..settle.clone()
    };
    state
        .lock()
        .refund_holds
        .insert(id.to_string(), (until, then));
    Ok(ids)
}

/// Fails every refund held short of balance whose retries are over.
pub(crate) fn release_due_refunds(state: &Arc<State>) {
    let now = state.now_ms();
    let due = crate::state::take_due(&mut state.lock().refund_holds, now);
    for (id, settle) in due {
        if let Err(e) = settle_refund(state, &id, &settle) {
            eprintln!("fintoc-sim: held refund {id} could not fail: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_business_days_skip_the_weekend() {
        const DAY: i64 = 86_400_000;
        let monday = 1_795_996_800_000; // 2026-11-30, a Monday
        assert_eq!(
            after_business_days(monday, 5),
            monday + 7 * DAY,
            "next Monday"
        );
        let friday = monday + 4 * DAY;
        assert_eq!(
            after_business_days(friday, 1),
            friday + 3 * DAY,
            "Monday after"
        );
        let saturday = monday + 5 * DAY;
        assert_eq!(
            after_business_days(saturday, 5),
            saturday + 6 * DAY,
            "the Friday after"
        );
    }
}
