//! Fintoc's API as the simulator serves it: raw-key authentication, payment intents
//! (create with `Idempotency-Key`, get, list, expire) and Fintoc's error envelope.

use crate::create_core::*;
use crate::responses::{
    error, json_response, method_not_allowed, no_such, page_of, query_params, unknown_url,
    HttpResponse,
};
use crate::state::{random_token, Inner, SimIntent, State};
use crate::status::PaymentStatus;
use http::Method;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

fn mask_key(key: &str) -> String {
    let tail: String = key
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let prefix = if key.starts_with("sk_live_") {
        "sk_live_"
    } else if key.starts_with("sk_test_") {
        "sk_test_"
    } else {
        ""
    };
    format!("{prefix}****{tail}")
}

/// Answers one request to Fintoc's API (`/v1/...`, `/v2/checkout_sessions`),
/// authentication first.
#[allow(clippy::too_many_arguments)]
pub(crate) fn api(
    state: &Arc<State>,
    method: &Method,
    path: &str,
    query: &str,
    auth: Option<&str>,
    idempotency_key: Option<&str>,
    version: Option<&str>,
    body: &[u8],
) -> HttpResponse {
    let Some(key) = auth.filter(|k| state.secret_keys.iter().any(|s| s == k)) else {
        let message = match auth {
            None => {
                "No API key provided. Send your secret key in the Authorization header.".to_string()
            }
            Some(k) => format!("Invalid API Key provided: {}", mask_key(k)),
        };
        return error(
            401,
            "authentication_error",
            "invalid_api_key",
            &message,
            None,
        );
    };
    let mode = if key.starts_with("sk_live_") {
        "live"
    } else {
        "test"
    };
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let mut inner = state.lock();
    match version {
        Some(v) => inner.last_api_version = Some(v.to_string()),
        None => inner.unversioned_requests += 1,
    }
    let request = ApiRequest {
        method,
        segments: &segments,
        query,
        api_key: key,
        mode,
        idempotency_key,
        version,
        body,
    };
    match segments.get(1) {
        Some(&"checkout_sessions") => {
            return crate::sessions::session_api(state, &mut inner, &request)
        }
        Some(&"refunds") => return crate::refunds::refund_api(state, &mut inner, &request),
        _ => {}
    }
    match (method, segments.as_slice()) {
        (&Method::POST, ["v1", "payment_intents"]) => {
            let now = state.now_rfc3339();
            create_with_idempotency(
                &mut inner,
                state.now_ms(),
                key,
                idempotency_key,
                "payment_intents",
                body,
                |inner, params| create(inner, mode, &now, params),
            )
        }
        (&Method::GET, ["v1", "payment_intents"]) => list(&inner, query, &state.public_url),
        (&Method::GET, ["v1", "payment_intents", id]) => {
            inner.lookups += 1;
            match inner.intents.get(*id) {
                Some(pi) => json_response(200, &pi.to_json()),
                None => not_found(id),
            }
        }
        (&Method::POST, ["v1", "payment_intents", id, "expire"]) => {
            let Some(pi) = inner.intents.get_mut(*id) else {
                return not_found(id);
            };
            if pi.status.is_final() {
                return error(
                    400,
                    "invalid_request_error",
                    "payment_intent_not_expirable",
                    &format!("Payment intent {id} is already {}.", pi.status.as_str()),
                    None,
                );
            }
            pi.status = PaymentStatus::Expired;
            pi.error_reason = Some("manually_expired".into());
            json_response(200, &pi.to_json())
        }
        (_, ["v1", "payment_intents", ..]) => method_not_allowed(),
        _ => unknown_url(),
    }
}

fn not_found(id: &str) -> HttpResponse {
    no_such("payment_intent", id)
}

fn list(inner: &Inner, query: &str, public_url: &str) -> HttpResponse {
    let params = query_params(query);
    let (status, since, until) = (
        params.get("status"),
        params.get("since"),
        params.get("until"),
    );
    let items: Vec<Value> = inner
        .order
        .iter()
        .rev()
        .filter_map(|id| inner.intents.get(id))
        .filter(|pi| status.is_none_or(|s| pi.status.as_str() == *s))
        .filter(|pi| since.is_none_or(|s| pi.created_at.as_str() >= s.as_str()))
        .filter(|pi| until.is_none_or(|u| pi.created_at.as_str() <= u.as_str()))
        .map(SimIntent::to_json)
        .collect();
    page_of(items, &params, &format!("{public_url}/v1/payment_intents"))
}

fn create(
    inner: &mut Inner,
    mode: &'static str,
    now: &str,
    params: &Map<String, Value>,
) -> (u16, Value) {
    let parsed = payment_params(params).and_then(|p| {
        Ok((
            p,
            recipient(params.get("recipient_account"), "recipient_account")?,
        ))
    });
    let (
        PaymentParams {
            amount,
            currency,
            metadata,
            customer_email,
        },
        recipient_account,
    ) = match parsed {
        Ok(parsed) => parsed,
        Err(refusal) => return refusal,
    };
    let id = format!("pi_{}", random_token(27));
    let widget_token = format!("{id}_sec_{}", random_token(24));
    let intent = SimIntent {
        id: id.clone(),
        object: "payment_intent",
        amount,
        currency: currency.to_string(),
        status: PaymentStatus::Created,
        widget_token: None,
        metadata,
        customer_email,
        error_reason: None,
        expires_at: None,
        created_at: now.to_string(),
        transaction_date: None,
        reference_id: None,
        mode,
        payment_type: "bank_transfer",
        payment_type_options: BTreeMap::new(),
        recipient_account,
        sender_account: None,
        business_profile: None,
    };
    inner.intents.insert(id.clone(), intent.clone());
    inner.widget_tokens.insert(widget_token.clone(), id.clone());
    inner.order.push(id);
    inner.intents_created += 1;
    let mut response = intent.to_json();
    response["widget_token"] = json!(widget_token);
    (201, response)
}
