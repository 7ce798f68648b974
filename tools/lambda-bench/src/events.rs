//! The invocation events the harness sends: API Gateway HTTP API v2 requests for
//! create and signed webhook deliveries, and reading a function's answer.

use crate::runtime_api::Outcome;
use crate::{DEPLOYMENT_TAG, WEBHOOK_SECRET};
use serde_json::{json, Value};

pub(crate) fn http_event(method: &str, path: &str, headers: Value, body: &str) -> Vec<u8> {
    let now_ms = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
    json!({
        "version": "2.0",
        "routeKey": format!("{method} {path}"),
        "rawPath": path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012", "apiId": "bench", "domainName": "bench.local",
            "domainPrefix": "bench",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": "127.0.0.1", "userAgent": "lambda-bench"},
            "requestId": uuid_like(), "routeKey": format!("{method} {path}"), "stage": "$default",
            "time": "01/Jan/2026:00:00:00 +0000", "timeEpoch": now_ms
        },
        "body": body,
        "isBase64Encoded": false
    })
    .to_string()
    .into_bytes()
}

pub(crate) fn uuid_like() -> String {
    format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..))
}

pub(crate) fn create_event(key: &str, amount: u64) -> Vec<u8> {
    http_event(
        "POST",
        "/payment-intents",
        json!({"content-type": "application/json", "idempotency-key": key}),
        &json!({"amount": amount, "currency": "CLP", "order_id": format!("order-{key}")})
            .to_string(),
    )
}

pub(crate) fn webhook_body(event_id: &str, intent_id: &str, status: &str) -> String {
    json!({
        "id": event_id, "object": "event", "type": format!("payment_intent.{status}"),
        "mode": "test", "created_at": "2026-01-01T00:00:05.000Z",
        "data": {
            "id": intent_id, "object": "payment_intent", "amount": 15000, "currency": "CLP",
            "status": status, "mode": "test", "metadata": {"order_id": format!("order-{intent_id}"), "deployment_tag": DEPLOYMENT_TAG},
            "error_reason": if matches!(status, "failed" | "rejected") { json!("insufficient_funds") } else { json!(null) },
            "created_at": "2026-01-01T00:00:00.000Z",
            "sender_account": {"holder_id": "183917137", "institution_id": "cl_banco_estado",
                               "number": "000012345678", "type": "checking_account"},
            "transaction_date": if status == "succeeded" { json!("2026-01-01T00:00:05.000Z") } else { json!(null) },
            "reference_id": if status == "succeeded" { json!("90123712") } else { json!(null) },
            "widget_token": null
        }
    })
    .to_string()
}

pub(crate) fn webhook_event(body: &str) -> Vec<u8> {
    let signature = fintoc_sim::sign(WEBHOOK_SECRET, fintoc_sim::unix_now(), body.as_bytes());
    http_event(
        "POST",
        "/webhooks/fintoc",
        json!({"content-type": "application/json", "fintoc-signature": signature}),
        body,
    )
}

/// The HTTP status and JSON body inside a function's API Gateway response.
pub(crate) fn http_answer(outcome: &Outcome) -> (u16, Value) {
    if outcome.error {
        return (0, Value::Null);
    }
    let response: Value = serde_json::from_slice(&outcome.body).unwrap_or(Value::Null);
    let status = response["statusCode"].as_u64().unwrap_or(0) as u16;
    let body = response["body"]
        .as_str()
        .and_then(|b| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null);
    (status, body)
}
