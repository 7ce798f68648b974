//! Validation of a create request (`POST /payment-intents`): pure, so every rule is
//! unit-tested. Refusals are [`InputError`]s; the HTTP edge gives them a status.

use super::deployment::DEPLOYMENT_TAG_METADATA_KEY;
use super::error::{InputError, InputErrorKind};
use super::money::Currency;
use super::number::whole_number;
use super::refund::{parse_refund_amount, RefundRequest, MAX_REFUND_METADATA_BYTES};
use super::report::PaymentReport;
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Largest accepted request body: above the longest body docs/openapi.yaml admits
/// (every field at its limit, every character escaped as a surrogate pair: about
/// 180 KB), so no schema-valid request is a `413`; far below Lambda's 6 MB.
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// Most metadata entries accepted.
pub const MAX_METADATA_ENTRIES: usize = 20;
/// Longest metadata key, in characters.
pub const MAX_METADATA_KEY_CHARS: usize = 40;
/// Longest metadata value, in characters.
pub const MAX_METADATA_VALUE_CHARS: usize = 500;
/// Longest `order_id`, in characters.
pub const MAX_ORDER_ID_CHARS: usize = 255;

/// The limits a request's metadata is held to, each stated in docs/openapi.yaml.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetadataLimits {
    /// Most entries.
    pub entries: usize,
    /// Longest key, in characters (at least one).
    pub key_chars: usize,
    /// Longest value, in characters.
    pub value_chars: usize,
}

/// A payment's metadata: 20 entries, keys of 1–40 characters, values of up to 500.
pub const PAYMENT_METADATA: MetadataLimits = MetadataLimits {
    entries: MAX_METADATA_ENTRIES,
    key_chars: MAX_METADATA_KEY_CHARS,
    value_chars: MAX_METADATA_VALUE_CHARS,
};

/// A refund's metadata: 8 entries, keys of 1–40 characters, values of up to 88 —
/// never more than [`MAX_REFUND_METADATA_BYTES`] in UTF-8 (4 bytes a character at
/// most), so a payment's item holds all its refunds whatever they carry.
pub const REFUND_METADATA: MetadataLimits = MetadataLimits {
    entries: 8,
    key_chars: MAX_METADATA_KEY_CHARS,
    value_chars: 88,
};

const _: () = assert!(
    REFUND_METADATA.entries * (REFUND_METADATA.key_chars + REFUND_METADATA.value_chars) * 4
        <= MAX_REFUND_METADATA_BYTES
);

/// Limits set by the merchant's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateLimits {
    /// Currencies this deployment accepts.
    pub allowed_currencies: Vec<Currency>,
    /// Largest amount per currency, in minor units.
    pub max_amounts: BTreeMap<Currency, u64>,
}

impl Default for CreateLimits {
    fn default() -> Self {
        Self {
            allowed_currencies: vec![Currency::Clp, Currency::Mxn],
            max_amounts: BTreeMap::from([(Currency::Clp, 5_000_000), (Currency::Mxn, 10_000_000)]),
        }
    }
}

/// A validated create request, in canonical form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CreatePaymentRequest {
    /// Amount in minor units, > 0.
    pub amount: u64,
    /// Currency.
    pub currency: Currency,
    /// Payer's email.
    pub customer_email: Option<String>,
    /// Flat string map, sorted by key.
    pub metadata: BTreeMap<String, String>,
    /// The merchant's own order id (required: one order is paid at most once).
    pub order_id: String,
    /// `checkout_session` for a session (so one key on both routes is a mismatch);
    /// absent for an intent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow: Option<&'static str>,
    /// A session's return URL after paying, when the request names one (checked
    /// against the configured allow-list by the use case).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub success_url: Option<String>,
    /// A session's return URL after cancelling, when the request names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancel_url: Option<String>,
}

impl CreatePaymentRequest {
    /// SHA-256 (hex) of the canonical JSON of the request: equal for requests that
    /// mean the same thing, whatever their key order, whitespace or currency case.
    pub fn fingerprint(&self) -> String {
        let canonical = serde_json::to_vec(self).expect("request serializes");
        hex::encode(Sha256::digest(canonical))
    }
}

/// Checks the `Content-Type` header: JSON only.
pub fn check_content_type(content_type: Option<&str>) -> Result<(), InputError> {
    let is_json = content_type
        .and_then(|ct| ct.split(';').next())
        .map(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
        .unwrap_or(false);
    if is_json {
        Ok(())
    } else {
        Err(InputError::new(
            InputErrorKind::UnsupportedMediaType,
            "unsupported_media_type",
            "Send the body as JSON with Content-Type: application/json.",
        ))
    }
}

const KNOWN_FIELDS: [&str; 5] = [
    "amount",
    "currency",
    "customer_email",
    "metadata",
    "order_id",
];

/// The fields a session request accepts beyond an intent's.
const SESSION_FIELDS: [&str; 2] = ["success_url", "cancel_url"];

/// Longest return URL accepted.
pub const MAX_URL_CHARS: usize = 2048;

/// Validates the body of `POST /payment-intents` against the rules and the limits.
///
/// Refuses malformed input, an oversized body, a non-JSON content type, and a
/// well-formed request that the configured limits refuse, each with its kind.
pub fn parse_create_request(
    content_type: Option<&str>,
    body: &[u8],
    limits: &CreateLimits,
) -> Result<CreatePaymentRequest, InputError> {
    parse_request(content_type, body, limits, false)
}

/// Validates the body of `POST /checkout-sessions`: an intent's fields, and
/// optionally `success_url` / `cancel_url` (strings; the use case checks them
/// against its allow-list).
pub fn parse_session_request(
    content_type: Option<&str>,
    body: &[u8],
    limits: &CreateLimits,
) -> Result<CreatePaymentRequest, InputError> {
    parse_request(content_type, body, limits, true)
}

/// Validates the body of `POST /payment-intents/{id}/refunds` (and a session's):
/// `{"amount"?: int, "metadata"?: {…}}`; an empty body refunds everything still
/// refundable.
pub fn parse_refund_request(
    content_type: Option<&str>,
    body: &[u8],
) -> Result<RefundRequest, InputError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(InputError::new(
            InputErrorKind::TooLarge,
            "body_too_large",
            format!("The request body must be at most {MAX_BODY_BYTES} bytes."),
        ));
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(RefundRequest {
            amount: None,
            metadata: BTreeMap::new(),
        });
    }
    check_content_type(content_type)?;
    let Value::Object(obj) = parse_json_without_duplicate_keys(body)? else {
        return Err(InputError::new(
            InputErrorKind::Malformed,
            "invalid_json",
            "The body must be a JSON object.",
        ));
    };
    if let Some(field) = obj
        .keys()
        .find(|k| !["amount", "metadata"].contains(&k.as_str()))
    {
        let field = echo(field);
        return Err(InputError::invalid_param(
            "unknown_field",
            &field,
            format!("Unknown field `{field}`. Accepted fields: amount, metadata."),
        ));
    }
    let metadata = parse_metadata(obj.get("metadata"), REFUND_METADATA)?;
    Ok(RefundRequest {
        amount: parse_refund_amount(obj.get("amount"))?,
        metadata,
    })
}

fn parse_url(value: Option<&Value>, field: &'static str) -> Result<Option<String>, InputError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s))
            if !s.is_empty()
                && s.chars().count() <= MAX_URL_CHARS
                && !s.chars().any(|c| c.is_control() || c.is_whitespace()) =>
        {
            Ok(Some(s.clone()))
        }
        Some(_) => Err(InputError::invalid_param(
            "invalid_url",
            field,
            format!("{field} must be a URL of at most {MAX_URL_CHARS} characters, without spaces."),
        )),
    }
}

fn parse_request(
    content_type: Option<&str>,
    body: &[u8],
    limits: &CreateLimits,
    session: bool,
) -> Result<CreatePaymentRequest, InputError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(InputError::new(
            InputErrorKind::TooLarge,
            "body_too_large",
            format!("The request body must be at most {MAX_BODY_BYTES} bytes."),
        ));
    }
    check_content_type(content_type)?;
    let value = parse_json_without_duplicate_keys(body)?;
    let Value::Object(obj) = value else {
        return Err(InputError::new(
            InputErrorKind::Malformed,
            "invalid_json",
            "The body must be a JSON object.",
        ));
    };
    for field in obj.keys() {
        let field = &echo(field);
        if field == "recipient_account" {
            return Err(InputError::invalid_param(
                "forbidden_field",
                field,
                "recipient_account cannot be set by a request: the recipient is fixed by the merchant's configuration.",
            ));
        }
        let session_field = session && SESSION_FIELDS.contains(&field.as_str());
        if !KNOWN_FIELDS.contains(&field.as_str()) && !session_field {
            let mut accepted = KNOWN_FIELDS.to_vec();
            if session {
                accepted.extend(SESSION_FIELDS);
            }
            return Err(InputError::invalid_param(
                "unknown_field",
                field,
                format!(
                    "Unknown field `{field}`. Accepted fields: {}.",
                    accepted.join(", ")
                ),
            ));
        }
    }

    let amount = parse_amount(obj.get("amount"))?;
    let currency = parse_currency(obj.get("currency"))?;
    let customer_email = parse_email(obj.get("customer_email"))?;
    let metadata = parse_metadata(obj.get("metadata"), PAYMENT_METADATA)?;
    let order_id = parse_order_id(obj.get("order_id"))?;
    let success_url = parse_url(obj.get("success_url"), "success_url")?;
    let cancel_url = parse_url(obj.get("cancel_url"), "cancel_url")?;
    if metadata.contains_key(ORDER_ID_METADATA_KEY) {
        return Err(InputError::invalid_param(
            "reserved_metadata_key",
            "metadata[order_id]",
            "metadata.order_id is reserved: send the order id as `order_id`, and it is passed to Fintoc's metadata for you.",
        ));
    }
    if metadata.contains_key(DEPLOYMENT_TAG_METADATA_KEY) {
        return Err(InputError::invalid_param(
            "reserved_metadata_key",
            "metadata[deployment_tag]",
            "metadata.deployment_tag is reserved: this backend sets it.",
        ));
    }

    if !limits.allowed_currencies.contains(&currency) {
        return Err(InputError::new(
            InputErrorKind::OverLimit,
            "currency_not_allowed",
            format!("This merchant does not accept {}.", currency.code()),
        )
        .with_param("currency"));
    }
    if let Some(max) = limits.max_amounts.get(&currency) {
        if amount > *max {
            return Err(InputError::new(
                InputErrorKind::OverLimit,
                "amount_too_large",
                format!("amount must be at most {max} for {}.", currency.code()),
            )
            .with_param("amount"));
        }
    }
    Ok(CreatePaymentRequest {
        amount,
        currency,
        customer_email,
        metadata,
        order_id,
        flow: session.then_some("checkout_session"),
        success_url,
        cancel_url,
    })
}

/// The metadata key under which the order id travels to Fintoc: set from
/// `order_id` only, never by a request's metadata.
pub const ORDER_ID_METADATA_KEY: &str = "order_id";

/// Whether `report` is an intent made by this deployment (`deployment_tag`, as
/// written into every intent's metadata) for the order `order_id`.
pub fn made_for_order(report: &PaymentReport, order_id: &str, deployment_tag: &str) -> bool {
    report
        .metadata
        .get(ORDER_ID_METADATA_KEY)
        .map(String::as_str)
        == Some(order_id)
        && report
            .metadata
            .get(DEPLOYMENT_TAG_METADATA_KEY)
            .map(String::as_str)
            == Some(deployment_tag)
}

/// Longest piece of a request echoed back in an error (a field name, a metadata key).
pub const MAX_ECHO_CHARS: usize = 64;

/// `text` as it may be echoed in an error: at most [`MAX_ECHO_CHARS`] characters.
pub fn echo(text: &str) -> String {
    if text.chars().count() <= MAX_ECHO_CHARS {
        text.to_string()
    } else {
        let cut: String = text.chars().take(MAX_ECHO_CHARS).collect();
        format!("{cut}…")
    }
}

/// Parses JSON, refusing an object that repeats a key at any depth (serde_json
/// would keep the last one silently, so `{"amount": 5000001, "amount": 7}` could
/// pass a check on one value and charge another). Hand-written: serde_json offers
/// no such mode, and a visitor is a few lines.
pub fn parse_json_without_duplicate_keys(body: &[u8]) -> Result<Value, InputError> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let parsed = serde::de::DeserializeSeed::deserialize(UniqueKeys, &mut deserializer)
        .and_then(|value| deserializer.end().map(|()| value));
    parsed.map_err(|e| {
        let duplicate = e.to_string().starts_with(DUPLICATE_KEY);
        InputError::new(
            InputErrorKind::Malformed,
            if duplicate {
                "duplicate_key"
            } else {
                "invalid_json"
            },
            if duplicate {
                format!("The body repeats a key: {}.", echo(&e.to_string()))
            } else {
                format!("The body is not valid JSON: {e}.")
            },
        )
    })
}

const DUPLICATE_KEY: &str = "duplicate key";

/// A JSON value whose objects have unique keys.
struct UniqueKeys;

impl<'de> serde::de::DeserializeSeed<'de> for UniqueKeys {
    type Value = Value;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for UniqueKeys {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(UniqueKeys)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(serde::de::Error::custom(format!(
                    "{DUPLICATE_KEY} `{}`",
                    echo(&key)
                )));
            }
            let value = map.next_value_seed(UniqueKeys)?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

fn missing(field: &str) -> InputError {
    InputError::invalid_param("missing_field", field, format!("`{field}` is required."))
}

fn parse_amount(value: Option<&Value>) -> Result<u64, InputError> {
    let invalid = || {
        InputError::invalid_param(
            "invalid_amount",
            "amount",
            "amount must be a positive integer in minor units (a JSON number, e.g. 10000).",
        )
    };
    match value {
        None | Some(Value::Null) => Err(missing("amount")),
        Some(Value::Number(n)) => match whole_number(n) {
            Some(a) if a > 0 => Ok(a),
            _ => Err(invalid()),
        },
        Some(_) => Err(invalid()),
    }
}

fn parse_currency(value: Option<&Value>) -> Result<Currency, InputError> {
    match value {
        None | Some(Value::Null) => Err(missing("currency")),
        Some(Value::String(s)) => Currency::parse(s).ok_or_else(|| {
            InputError::invalid_param(
                "invalid_currency",
                "currency",
                "currency must be CLP or MXN.",
            )
        }),
        Some(_) => Err(InputError::invalid_param(
            "invalid_currency",
            "currency",
            "currency must be a string: CLP or MXN.",
        )),
    }
}

fn parse_email(value: Option<&Value>) -> Result<Option<String>, InputError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            let plausible = s.len() <= 254
                && !s.chars().any(|c| c.is_whitespace() || c.is_control())
                && matches!(s.split_once('@'), Some((local, domain)) if !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.') && !domain.contains('@'));
            if plausible {
                Ok(Some(s.clone()))
            } else {
                Err(InputError::invalid_param(
                    "invalid_customer_email",
                    "customer_email",
                    "customer_email must be an email address.",
                ))
            }
        }
        Some(_) => Err(InputError::invalid_param(
            "invalid_customer_email",
            "customer_email",
            "customer_email must be a string.",
        )),
    }
}

fn parse_metadata(
    value: Option<&Value>,
    limits: MetadataLimits,
) -> Result<BTreeMap<String, String>, InputError> {
    let obj: &Map<String, Value> = match value {
        None | Some(Value::Null) => return Ok(BTreeMap::new()),
        Some(Value::Object(obj)) => obj,
        Some(_) => {
            return Err(InputError::invalid_param(
                "invalid_metadata",
                "metadata",
                "metadata must be an object of string values.",
            ))
        }
    };
    if obj.len() > limits.entries {
        return Err(InputError::invalid_param(
            "invalid_metadata",
            "metadata",
            format!("metadata may have at most {} entries.", limits.entries),
        ));
    }
    let mut out = BTreeMap::new();
    for (k, v) in obj {
        let param = format!("metadata[{}]", echo(k));
        if k.is_empty() || k.chars().count() > limits.key_chars {
            return Err(InputError::invalid_param(
                "invalid_metadata",
                &param,
                format!(
                    "metadata keys must be 1 to {} characters.",
                    limits.key_chars
                ),
            ));
        }
        let Value::String(v) = v else {
            return Err(InputError::invalid_param(
                "invalid_metadata",
                &param,
                "metadata values must be strings (no nested objects, numbers or null).",
            ));
        };
        if v.chars().count() > limits.value_chars {
            return Err(InputError::invalid_param(
                "invalid_metadata",
                &param,
                format!(
                    "metadata values must be at most {} characters.",
                    limits.value_chars
                ),
            ));
        }
        out.insert(k.clone(), v.clone());
    }
    Ok(out)
}

fn parse_order_id(value: Option<&Value>) -> Result<String, InputError> {
    match value {
        None | Some(Value::Null) => Err(missing("order_id")),
        Some(Value::String(s))
            if !s.is_empty()
                && s.chars().count() <= MAX_ORDER_ID_CHARS
                && !s.chars().any(char::is_control) =>
        {
            Ok(s.clone())
        }
        Some(_) => Err(InputError::invalid_param(
            "invalid_order_id",
            "order_id",
            format!("order_id must be a string of 1 to {MAX_ORDER_ID_CHARS} characters."),
        )),
    }
}

#[cfg(test)]
mod tests;
