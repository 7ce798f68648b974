//! What every create of the simulator shares, as Fintoc does it: the request as
//! the API layer read it, the first answer per `Idempotency-Key` stored and
//! replayed (the same key with other parameters refused), and the parameters a
//! payment's create takes, validated like Fintoc.

use crate::responses::{error, error_body, json_response, HttpResponse};
use crate::state::{IdempotentAnswer, Inner, SimAccount};
use http::Method;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

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
