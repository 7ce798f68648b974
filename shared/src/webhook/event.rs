//! Lenient parsing of Fintoc's event envelope:
//! `{"id": "evt_...", "type": "payment_intent.succeeded", "mode", "created_at", "data": {<the intent>}}`.
//!
//! Required: `id`, `type`, an object `data`, and for `payment_intent.*` events
//! `data.id` and `data.status`. Every other field is read leniently: missing, `null`
//! or of an unexpected type (an account pinned to another API version may retype
//! it) is absent, logged at warn with the field's name, never a refusal of a
//! correctly signed event. Unknown fields are ignored, unknown statuses kept. The
//! intent in `data` becomes the domain's [`PaymentReport`].

use crate::domain::payment::PaymentStatus;
use crate::domain::refund::RefundReport;
use crate::domain::report::PaymentReport;
use crate::domain::session::{SessionEventKind, SessionReport, SessionStatus};
use crate::fintoc::wire::wrong_type;
use serde_json::Value;

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
    PaymentIntent(PaymentStatus),
    /// A `payment_intent.*` type this version does not know.
    UnknownPaymentIntentType,
    /// A checkout session finished or expired.
    CheckoutSession(SessionEventKind),
    /// A refund's event (`refund.*`, whatever the suffix: its `data.status` says
    /// where it stands).
    Refund,
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
        let optional = |key: &str| match obj.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()).filter(|s| !s.is_empty()),
            Some(other) => {
                wrong_type(key, other);
                None
            }
        };
        let mode = optional("mode");
        let created_at = optional("created_at");
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
        if let Some(suffix) = self.event_type.strip_prefix("checkout_session.") {
            return EventKind::CheckoutSession(SessionEventKind::of(suffix));
        }
        if self.event_type.starts_with("refund.") {
            return EventKind::Refund;
        }
        match self.event_type.strip_prefix("payment_intent.") {
            None => EventKind::Other,
            Some(suffix) => match suffix {
                "succeeded" | "failed" | "rejected" | "expired" | "pending" => {
                    EventKind::PaymentIntent(PaymentStatus::parse(suffix))
                }
                _ => EventKind::UnknownPaymentIntentType,
            },
        }
    }

    /// The refund in `data` (`data.id` and `data.status` required).
    pub fn refund_report(&self) -> Result<RefundReport, EventError> {
        RefundReport::from_json(&self.data).map_err(EventError::Missing)
    }

    /// The payment intent in `data`, as the domain reads it.
    /// Only `data.id` and `data.status` are required; any other field of an
    /// unexpected type is read as absent and logged with its name.
    pub fn intent_report(&self) -> Result<PaymentReport, EventError> {
        PaymentReport::from_json(&self.data).map_err(EventError::Missing)
    }

    /// The checkout session in `data` (read like an intent: `data.id` and
    /// `data.status` required). The event's type decides a status its body
    /// contradicts: a `checkout_session.expired` event is about an expired session.
    pub fn session_report(&self, kind: &SessionEventKind) -> Result<SessionReport, EventError> {
        let mut report = SessionReport::from_json(&self.data).map_err(EventError::Missing)?;
        match kind {
            SessionEventKind::Finished => report.status = Some(SessionStatus::Finished),
            SessionEventKind::Expired => report.status = Some(SessionStatus::Expired),
            SessionEventKind::Unknown => {}
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn vector() -> Vec<u8> {
        std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/fintoc-signature-vector.payload.json"
        ))
        .unwrap()
    }

    fn fixture(name: &str) -> Event {
        let path = format!(
            "{}/tests/data/events/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        Event::parse(&std::fs::read(path).unwrap()).unwrap()
    }

    /// The same payment as an account pinned to 2023-11-15 and one pinned to
    /// 2026-02-01 see it (webhooks carry the account's version, not ours): one report.
    #[test]
    fn both_supported_api_versions_read_as_the_same_payment() {
        let old = fixture("payment_intent.succeeded.v2023-11-15");
        let new = fixture("payment_intent.succeeded.v2026-02-01");
        for event in [&old, &new] {
            assert_eq!(
                event.kind(),
                EventKind::PaymentIntent(PaymentStatus::Succeeded)
            );
        }
        let (old, new) = (old.intent_report().unwrap(), new.intent_report().unwrap());
        let essentials = |r: &PaymentReport| {
            (
                r.status.clone(),
                r.amount,
                r.currency.clone(),
                r.reference_id.clone(),
                r.metadata.clone(),
                r.mode.clone(),
                r.customer_email.clone(),
                r.sender_account.as_ref().map(|a| a.masked()),
            )
        };
        assert_eq!(essentials(&old), essentials(&new));
        assert_eq!(
            new.customer_email.as_deref(),
            Some("payer@example.cl"),
            "from `customer`"
        );
        assert!(old.transaction_date.is_some() && new.transaction_date.is_some());
    }

    #[test]
    fn a_2026_session_event_carries_its_payment() {
        let event = fixture("checkout_session.finished.v2026-02-01");
        let kind = match event.kind() {
            EventKind::CheckoutSession(kind) => kind,
            other => panic!("{other:?}"),
        };
        let report = event.session_report(&kind).unwrap().to_record_report();
        assert_eq!(report.id, "cs_fixture_2026");
        assert_eq!(report.status, Some(PaymentStatus::Succeeded));
        assert_eq!(report.customer_email.as_deref(), Some("payer@example.cl"));
        let payment = report.session_payment.unwrap();
        assert_eq!(payment.intent_id, "pi_fixture_2026");
        assert_eq!(
            report
                .sender_account
                .unwrap()
                .masked()
                .number_last4
                .as_deref(),
            Some("5432")
        );
        assert_eq!(report.metadata["order_id"], "order-fixture");
    }

    #[test]
    fn parses_the_official_payload() {
        let event = Event::parse(&vector()).unwrap();
        assert_eq!(event.id, "evt_2AaZeLCz0GjOW5zj");
        assert_eq!(
            event.kind(),
            EventKind::PaymentIntent(PaymentStatus::Succeeded)
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
            Some(PaymentStatus::Other("some_new_status".into()))
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
            EventKind::PaymentIntent(PaymentStatus::Rejected)
        );
        assert_eq!(
            kind("payment_intent.pending"),
            EventKind::PaymentIntent(PaymentStatus::Pending)
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
        assert_eq!(
            no_pi_id.intent_report(),
            Err(EventError::Missing("data.id"))
        );
        let no_status = Event::parse(
            br#"{"id":"e","type":"payment_intent.succeeded","data":{"id":"pi_1","status":7}}"#,
        )
        .unwrap();
        assert_eq!(
            no_status.intent_report(),
            Err(EventError::Missing("data.status"))
        );
    }

    #[test]
    fn optional_fields_of_another_type_are_absent() {
        let body = br#"{"id":"evt_1","type":"payment_intent.succeeded","mode":["live"],"created_at":3,
            "data":{"id":"pi_1","status":"succeeded","amount":"100","currency":7,
                    "reference_id":123456,"transaction_date":20260101,"customer_email":{"a":1},
                    "error_reason":false,"mode":1,"created_at":{},
                    "metadata":{"order_id":"o-1","n":5},"sender_account":{"number":12,"type":"checking_account"}}}"#;
        let event = Event::parse(body).unwrap();
        assert_eq!((&event.mode, &event.created_at), (&None, &None));
        let pi = event.intent_report().unwrap();
        assert_eq!(pi.status, Some(PaymentStatus::Succeeded));
        assert_eq!((pi.amount, pi.currency), (None, None));
        assert_eq!((pi.reference_id, pi.transaction_date), (None, None));
        assert_eq!((pi.customer_email, pi.error_reason), (None, None));
        assert_eq!((pi.mode, pi.created_at), (None, None));
        assert_eq!(
            pi.metadata,
            BTreeMap::from([("order_id".to_string(), "o-1".to_string())])
        );
        let sender = pi.sender_account.unwrap();
        assert_eq!(sender.number, None);
        assert_eq!(sender.account_type.as_deref(), Some("checking_account"));
        let retyped = br#"{"id":"evt_1","type":"payment_intent.failed","data":{"id":"pi_1","status":"failed","metadata":"x","sender_account":"y"}}"#;
        let pi = Event::parse(retyped).unwrap().intent_report().unwrap();
        assert!(pi.metadata.is_empty());
        assert_eq!(pi.sender_account, None);
    }
}
