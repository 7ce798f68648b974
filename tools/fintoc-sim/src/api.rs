//! Fintoc's API as the simulator serves it: raw-key authentication, payment intents
//! (create with `Idempotency-Key`, get, list, expire) and Fintoc's error envelope.

use crate::responses::{
    error, error_body, json_response, method_not_allowed, no_such, page_of, query_params,
    unknown_url, HttpResponse,
};
use crate::state::{random_token, IdempotentAnswer, Inner, SimAccount, SimIntent, State};
use http::Method;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use shared::domain::payment::PaymentStatus;
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

/// One authenticated request to a resource's endpoints (`/v1/checkout_sessions…`,
/// `/v1/refunds…`), handed to the module that serves it.
pub(crate) struct ApiRequest<'a> {
    pub method: &'a Method,
    pub segments: &'a [&'a str],
    pub query: &'a str,
    pub api_key: &'a str,
    pub mode: &'static str,
    pub idempotency_key: Option<&'a str>,
    pub version: Option<&'a str>,
    pub body: &'a [u8],
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

/// How long Fintoc keeps an idempotency key: "keys may be purged after 24 h"; the
/// simulator purges them then, on its clock, so a key reused a day later makes a
/// new payment, as it may at Fintoc.
pub const IDEMPOTENCY_KEY_TTL_MS: i64 = 24 * 60 * 60 * 1000;

/// A create under Fintoc's idempotency rules: the first answer for (key, endpoint
/// parameters) is stored and replayed for [`IDEMPOTENCY_KEY_TTL_MS`]; the same key
/// with other parameters (or on another endpoint) is refused meanwhile.
pub(crate) fn create_with_idempotency(
    inner: &mut Inner,
    now_ms: i64,
    api_key: &str,
    idempotency_key: Option<&str>,
    endpoint: &str,
    body: &[u8],
    create: impl FnOnce(&mut Inner, &Map<String, Value>) -> (u16, Value),
) -> HttpResponse {
    let parsed: Result<Value, _> = serde_json::from_slice(body);
    let params_hash = match &parsed {
        Ok(v) => hex::encode(Sha256::digest(format!("{endpoint}:{v}"))),
        Err(_) => hex::encode(Sha256::digest(body)),
    };
    if let Some(key) = idempotency_key {
        if key.is_empty() || key.len() > 255 {
            return error(
                400,
                "invalid_request_error",
                "invalid_idempotency_key",
                "Idempotency-Key must be 1 to 255 characters.",
                None,
            );
        }
        if let Some(stored) = inner
            .idempotency
            .get(&(api_key.to_string(), key.to_string()))
            .filter(|stored| now_ms < stored.stored_at_ms + IDEMPOTENCY_KEY_TTL_MS)
        {
            if stored.params_hash != params_hash {
                return error(400, "invalid_request_error", "idempotency_key_reused",
                    "Keys for idempotent requests can only be used with the same parameters they were first used with.", None);
            }
            let mut response = json_response(stored.status, &stored.body);
            response
                .headers_mut()
                .insert("idempotent-replayed", "true".parse().expect("valid"));
            return response;
        }
    }
    let (status, body) = match (inner.failing.take(), parsed) {
        // A failure inside the API: stored under the key like any first answer.
        (Some((status, made)), parsed) => {
            if let (true, Ok(Value::Object(params))) = (made, parsed) {
                // Made, then failed: the failure is what the key keeps.
                create(inner, &params);
            }
            (
                status,
                error_body(
                    "api_error",
                    "internal_server_error",
                    "Simulated failure.",
                    None,
                ),
            )
        }
        (None, Ok(Value::Object(params))) => create(inner, &params),
        (None, _) => (
            400,
            error_body(
                "invalid_request_error",
                "invalid_json",
                "The request body is not a JSON object.",
                None,
            ),
        ),
    };
    if let Some(key) = idempotency_key {
        inner.idempotency.insert(
            (api_key.to_string(), key.to_string()),
            IdempotentAnswer {
                params_hash,
                status,
                body: body.clone(),
                stored_at_ms: now_ms,
            },
        );
    }
    json_response(status, &body)
}

pub(crate) fn invalid(code: &str, param: &str, message: &str) -> (u16, Value) {
    (
        400,
        error_body("invalid_request_error", code, message, Some(param)),
    )
}

/// What both creates (intents and sessions) take, validated like Fintoc.
pub(crate) struct PaymentParams {
    pub amount: u64,
    pub currency: String,
    pub metadata: BTreeMap<String, String>,
    pub customer_email: Option<String>,
}

/// Validates amount, currency, metadata and email.
pub(crate) fn payment_params(params: &Map<String, Value>) -> Result<PaymentParams, (u16, Value)> {
    let amount = match params.get("amount") {
        None | Some(Value::Null) => {
            return Err(invalid(
                "missing_parameter",
                "amount",
                "Missing required param: amount.",
            ))
        }
        Some(v) => match v.as_u64() {
            Some(a) if a > 0 && v.is_u64() => a,
            _ => {
                return Err(invalid(
                    "invalid_amount",
                    "amount",
                    "amount must be a positive integer.",
                ))
            }
        },
    };
    let currency = match params.get("currency").and_then(Value::as_str) {
        Some(c @ ("CLP" | "MXN")) => c,
        None => {
            return Err(invalid(
                "missing_parameter",
                "currency",
                "Missing required param: currency.",
            ))
        }
        Some(_) => {
            return Err(invalid(
                "invalid_currency",
                "currency",
                "currency must be CLP or MXN.",
            ))
        }
    };
    let metadata = metadata_param(params)?;
    let customer_email = match params.get("customer_email") {
        None | Some(Value::Null) => None,
        Some(Value::String(e)) if e.contains('@') => Some(e.clone()),
        Some(_) => {
            return Err(invalid(
                "invalid_customer_email",
                "customer_email",
                "customer_email is invalid.",
            ))
        }
    };
    Ok(PaymentParams {
        amount,
        currency: currency.to_string(),
        metadata,
        customer_email,
    })
}

/// The `metadata` parameter: a map of strings (absent or null: empty).
pub(crate) fn metadata_param(
    params: &Map<String, Value>,
) -> Result<BTreeMap<String, String>, (u16, Value)> {
    match params.get("metadata") {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::Object(m)) if m.values().all(Value::is_string) => Ok(m
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
            .collect()),
        Some(_) => Err(invalid(
            "invalid_metadata",
            "metadata",
            "metadata must be a map of strings.",
        )),
    }
}

/// Validates a recipient account (`recipient_account`, or a session's
/// `payment_method_options.bank_transfer.recipient_account`), named `name`.
pub(crate) fn recipient(
    value: Option<&Value>,
    name: &str,
) -> Result<Option<SimAccount>, (u16, Value)> {
    Ok(match value {
        None | Some(Value::Null) => None,
        Some(Value::Object(r)) => {
            for field in ["holder_id", "number", "type", "institution_id"] {
                let present = r
                    .get(field)
                    .and_then(Value::as_str)
                    .is_some_and(|s| !s.is_empty());
                if !present {
                    let param = format!("{name}[{field}]");
                    return Err(invalid(
                        "missing_parameter",
                        &param,
                        &format!("Missing required param: {param}."),
                    ));
                }
            }
            let institution = r["institution_id"].as_str().unwrap_or_default();
            if !(institution.starts_with("cl_") || institution.starts_with("mx_")) {
                return Err(invalid(
                    "invalid_institution",
                    &format!("{name}[institution_id]"),
                    &format!("No such institution: {institution}."),
                ));
            }
            let field = |f: &str| r[f].as_str().unwrap_or_default().to_string();
            Some(SimAccount {
                holder_id: field("holder_id"),
                number: field("number"),
                account_type: field("type"),
                institution_id: field("institution_id"),
            })
        }
        Some(_) => {
            return Err(invalid(
                "invalid_recipient_account",
                name,
                &format!("{name} must be an object."),
            ))
        }
    })
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
