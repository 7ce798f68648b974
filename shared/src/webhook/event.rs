//! Lenient parsing of Fintoc's event envelope:
//! `{"id": "evt_...", "type": "payment_intent.succeeded", "mode", "created_at", "data": {<the intent>}}`.
//!
//! Unknown fields are ignored, nullable fields optional, unknown statuses kept. The
//! intent in `data` becomes the domain's [`IntentReport`].

use crate::domain::intent::IntentStatus;
use crate::domain::report::{IntentReport, SenderAccount};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// Why a body is not an event we can act on (answered 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// Not JSON, or not an object.
    #[error("the body is not a JSON object")]
    NotJson,
    /// A required field is missing or has the wrong type.
    #[error("the event has no valid `{0}`")]
    Missing(&'static str),
}

/// The envelope, as much as this product needs of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// `evt_...`; the deduplication key.
    pub id: String,
    /// e.g. `payment_intent.succeeded`.
    pub event_type: String,
    /// `live` | `test`, when present.
    pub mode: Option<String>,
    /// When Fintoc created the event.
    pub created_at: Option<String>,
    /// The raw `data` object.
    pub data: Value,
}

/// What an event type means for this product.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    /// A payment intent reached this status.
    PaymentIntent(IntentStatus),
    /// A `payment_intent.*` type this version does not know.
    UnknownPaymentIntentType,
    /// Any other object's event.
    Other,
}

impl Event {
    /// Parses the envelope: `id`, `type` and an object `data` are required.
    pub fn parse(body: &[u8]) -> Result<Self, EventError> {
        let value: Value = serde_json::from_slice(body).map_err(|_| EventError::NotJson)?;
        let Value::Object(mut obj) = value else {
            return Err(EventError::NotJson);
        };
        let text = |obj: &serde_json::Map<String, Value>, key: &str| {
            obj.get(key)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let id = text(&obj, "id").ok_or(EventError::Missing("id"))?;
        let event_type = text(&obj, "type").ok_or(EventError::Missing("type"))?;
        let mode = text(&obj, "mode");
        let created_at = text(&obj, "created_at");
        let data = match obj.remove("data") {
            Some(d @ Value::Object(_)) => d,
            _ => return Err(EventError::Missing("data")),
        };
        Ok(Self {
            id,
            event_type,
            mode,
            created_at,
            data,
        })
    }

    /// Classifies the event type.
    pub fn kind(&self) -> EventKind {
        match self.event_type.strip_prefix("payment_intent.") {
            None => EventKind::Other,
            Some(suffix) => match suffix {
                "succeeded" | "failed" | "rejected" | "expired" | "pending" => {
                    EventKind::PaymentIntent(IntentStatus::parse(suffix))
                }
                _ => EventKind::UnknownPaymentIntentType,
            },
        }
    }

    /// The payment intent in `data`, as the domain reads it.
    pub fn intent_report(&self) -> Result<IntentReport, EventError> {
        IntentData::deserialize(&self.data)
            .map(IntentData::into_report)
            .map_err(|_| EventError::Missing("data.id"))
    }
}

#[derive(Debug, Deserialize)]
struct RawSender {
    #[serde(default)]
    institution_id: Option<String>,
    #[serde(default)]
    holder_id: Option<String>,
    #[serde(default)]
    number: Option<String>,
    #[serde(default, rename = "type")]
    account_type: Option<String>,
}

/// The payment intent inside an event, read leniently.
#[derive(Clone, PartialEq, Eq, Deserialize)]
struct IntentData {
    /// `pi_...`.
    id: String,
    /// Status (unknown ones tolerated).
    #[serde(default)]
    status: Option<String>,
    /// Minor units.
    #[serde(default)]
    amount: Option<u64>,
    /// Currency.
    #[serde(default)]
    currency: Option<String>,
    /// Reason of a failure.
    #[serde(default)]
    error_reason: Option<String>,
    /// Bank's operation date.
    #[serde(default)]
    transaction_date: Option<String>,
    /// Bank's operation number.
    #[serde(default)]
    reference_id: Option<String>,
    /// `live` | `test`.
    #[serde(default)]
    mode: Option<String>,
    /// Creation time.
    #[serde(default)]
    created_at: Option<String>,
    /// Metadata (nullable; non-string values dropped).
    #[serde(default, deserialize_with = "lenient_metadata")]
    metadata: BTreeMap<String, String>,
    /// Payer's email.
    #[serde(default)]
    customer_email: Option<String>,
    #[serde(default, rename = "sender_account")]
    sender: Option<Value>,
}

fn lenient_metadata<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    let value = Option::<Value>::deserialize(d)?;
    Ok(match value {
        Some(Value::Object(m)) => m
            .into_iter()
            .filter_map(|(k, v)| v.as_str().map(|s| (k, s.to_string())))
            .collect(),
        _ => BTreeMap::new(),
    })
}

impl IntentData {
    fn into_report(self) -> IntentReport {
        let sender_account = self
            .sender
            .and_then(|v| serde_json::from_value::<RawSender>(v).ok())
            .map(|raw| SenderAccount {
                institution_id: raw.institution_id,
                holder_id: raw.holder_id,
                number: raw.number,
                account_type: raw.account_type,
            });
        IntentReport {
            id: self.id,
            status: self.status.as_deref().map(IntentStatus::parse),
            amount: self.amount,
            currency: self.currency,
            error_reason: self.error_reason,
            transaction_date: self.transaction_date,
            reference_id: self.reference_id,
            mode: self.mode,
            created_at: self.created_at,
            metadata: self.metadata,
            customer_email: self.customer_email,
            sender_account,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vector() -> Vec<u8> {
        std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/fintoc-signature-vector.payload.json"
        ))
        .unwrap()
    }

    #[test]
    fn parses_the_official_payload() {
        let event = Event::parse(&vector()).unwrap();
        assert_eq!(event.id, "evt_2AaZeLCz0GjOW5zj");
        assert_eq!(
            event.kind(),
            EventKind::PaymentIntent(IntentStatus::Succeeded)
        );
        let pi = event.intent_report().unwrap();
        assert_eq!(pi.id, "pi_2vKOKniSGXRhXTKrJ67VXZxGCVt");
        assert_eq!(pi.amount, Some(1));
        assert_eq!(pi.currency.as_deref(), Some("MXN"));
        let sender = pi.sender_account.unwrap().masked();
        assert_eq!(sender.number_last4.as_deref(), Some("3279"));
        assert_eq!(sender.institution_id.as_deref(), Some("mx_stp"));
        assert_eq!(sender.holder_id.as_deref(), Some("mfiu593501oe4"));
    }

    #[test]
    fn lenient_about_unknowns_and_nulls() {
        let body = br#"{"id":"evt_1","type":"payment_intent.succeeded","new_field":{"x":1},"data":{"id":"pi_1","status":"some_new_status","metadata":null,"sender_account":null,"amount":5,"currency":"CLP","brand_new":[1]}}"#;
        let event = Event::parse(body).unwrap();
        let pi = event.intent_report().unwrap();
        assert_eq!(
            pi.status,
            Some(IntentStatus::Other("some_new_status".into()))
        );
        assert!(pi.metadata.is_empty());
        assert_eq!(pi.sender_account, None);
    }

    #[test]
    fn classifies_types() {
        let kind = |t: &str| {
            Event::parse(format!(r#"{{"id":"e","type":"{t}","data":{{}}}}"#).as_bytes())
                .unwrap()
                .kind()
        };
        assert_eq!(
            kind("payment_intent.rejected"),
            EventKind::PaymentIntent(IntentStatus::Rejected)
        );
        assert_eq!(
            kind("payment_intent.pending"),
            EventKind::PaymentIntent(IntentStatus::Pending)
        );
        assert_eq!(
            kind("payment_intent.teleported"),
            EventKind::UnknownPaymentIntentType
        );
        assert_eq!(kind("link.created"), EventKind::Other);
    }

    #[test]
    fn rejects_what_cannot_be_an_event() {
        assert_eq!(Event::parse(b"nope"), Err(EventError::NotJson));
        assert_eq!(Event::parse(b"[1]"), Err(EventError::NotJson));
        assert_eq!(
            Event::parse(br#"{"type":"x","data":{}}"#),
            Err(EventError::Missing("id"))
        );
        assert_eq!(
            Event::parse(br#"{"id":"e","data":{}}"#),
            Err(EventError::Missing("type"))
        );
        assert_eq!(
            Event::parse(br#"{"id":"e","type":"x"}"#),
            Err(EventError::Missing("data"))
        );
        assert_eq!(
            Event::parse(br#"{"id":"e","type":"x","data":null}"#),
            Err(EventError::Missing("data"))
        );
        let no_pi_id =
            Event::parse(br#"{"id":"e","type":"payment_intent.succeeded","data":{}}"#).unwrap();
        assert!(no_pi_id.intent_report().is_err());
    }
}
