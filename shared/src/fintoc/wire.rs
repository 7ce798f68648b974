//! Fintoc's wire format, read leniently: a payment intent or a checkout session as
//! Fintoc's JSON shows it (an event's `data`, or an answer of its API) becomes the
//! domain's report. `id` and `status` are required; any other field of an
//! unexpected type is read as absent and logged (its name and JSON type, never its
//! value, which may be an account number). The webhook's event parser and the
//! client's lookups both read through here.

use crate::domain::payment::{PaymentKind, PaymentStatus};
use crate::domain::refund::{RefundReport, RefundStatus};
use crate::domain::report::{PaymentReport, SenderAccount};
use crate::domain::session::{SessionReport, SessionStatus};
use serde_json::Value;
use std::collections::BTreeMap;

/// The JSON type of `value`, for the log line of a field read as absent.
/// Most characters of a Fintoc error message passed on.
const MAX_MESSAGE_CHARS: usize = 200;
/// A run of at least this many digits is hidden from a passed-on message: an
/// account number, a RUT, a card-like number.
const HIDDEN_DIGIT_RUN: usize = 7;

/// Whether Fintoc's `code` or `param` is a plain identifier (letters, digits,
/// `_ . [ ]`, at most 64): anything else is not passed on.
pub fn is_identifier(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.[]".contains(c))
}

/// Fintoc's error message as it may be passed on to the merchant's caller and
/// logged: control characters dropped, cut at [`MAX_MESSAGE_CHARS`], and every run
/// of [`HIDDEN_DIGIT_RUN`] or more digits (`.`, `-` and spaces between them
/// included: `12.345.678-9`) replaced by `[number]` — Fintoc may echo an account
/// number, which this backend never shows or logs.
pub fn scrub_message(message: &str) -> String {
    let chars: Vec<char> = message
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() && out.chars().count() < MAX_MESSAGE_CHARS {
        if chars[i].is_ascii_digit() {
            let mut end = i;
            let mut digits = 0;
            let mut j = i;
            while j < chars.len() {
                if chars[j].is_ascii_digit() {
                    digits += 1;
                    end = j + 1;
                } else if !(".- ".contains(chars[j])
                    && chars.get(j + 1).is_some_and(char::is_ascii_digit))
                {
                    break;
                }
                j += 1;
            }
            if digits >= HIDDEN_DIGIT_RUN {
                out.push_str("[number]");
            } else {
                out.extend(&chars[i..end]);
            }
            i = end;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out.chars()
        .take(MAX_MESSAGE_CHARS)
        .collect::<String>()
        .trim()
        .to_string()
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Logs a field of an unexpected type (its name and JSON type, never its value,
/// which may be an account number); the field is then read as absent.
pub fn wrong_type(field: &str, found: &Value) {
    tracing::warn!(
        field,
        found = json_type(found),
        "event field of an unexpected type; read as absent"
    );
}

/// Reads the optional fields of one JSON object leniently: a missing or `null` field
/// is absent; a field of another type is absent too, and logged at warn.
pub(crate) struct Lenient<'a> {
    object: Option<&'a serde_json::Map<String, Value>>,
    prefix: &'static str,
}

impl<'a> Lenient<'a> {
    pub(crate) fn new(value: Option<&'a Value>, prefix: &'static str) -> Self {
        let object = match value {
            None | Some(Value::Null) => None,
            Some(Value::Object(object)) => Some(object),
            Some(other) => {
                wrong_type(prefix, other);
                None
            }
        };
        Self { object, prefix }
    }

    pub(crate) fn get(&self, key: &str) -> Option<&'a Value> {
        self.object?.get(key).filter(|v| !v.is_null())
    }

    pub(crate) fn text(&self, key: &str) -> Option<String> {
        match self.get(key)? {
            Value::String(text) => Some(text.clone()),
            other => {
                wrong_type(&format!("{}.{key}", self.prefix), other);
                None
            }
        }
    }

    pub(crate) fn minor_units(&self, key: &str) -> Option<u64> {
        match self.get(key)? {
            Value::Number(n) if n.as_u64().is_some() => n.as_u64(),
            other => {
                wrong_type(&format!("{}.{key}", self.prefix), other);
                None
            }
        }
    }

    /// A map of strings: entries of another type are dropped (and logged).
    pub(crate) fn string_map(&self, key: &'static str) -> BTreeMap<String, String> {
        let field = format!("{}.{key}", self.prefix);
        let Some(value) = self.get(key) else {
            return BTreeMap::new();
        };
        let Value::Object(map) = value else {
            wrong_type(&field, value);
            return BTreeMap::new();
        };
        map.iter()
            .filter_map(|(k, v)| match v {
                Value::String(s) => Some((k.clone(), s.clone())),
                other => {
                    wrong_type(&format!("{field}.{k}"), other);
                    None
                }
            })
            .collect()
    }
}

impl PaymentReport {
    /// Reads a payment intent as Fintoc's JSON shows it (an event's `data`, or an
    /// answer of its API): `id` and `status` are required (non-empty strings; the
    /// error names the missing one); every other field is read leniently.
    pub fn from_json(data: &Value) -> Result<Self, &'static str> {
        let required = |key: &str| required_text(data, key);
        let id = required("id").ok_or("data.id")?;
        let status = required("status").ok_or("data.status")?;
        let fields = Lenient::new(Some(data), "data");
        let sender = Lenient::new(fields.get("sender_account"), "data.sender_account");
        let sender_account = sender.object.map(|_| SenderAccount {
            institution_id: sender.text("institution_id"),
            holder_id: sender.text("holder_id"),
            number: sender.text("number"),
            account_type: sender.text("type"),
        });
        Ok(PaymentReport {
            id,
            kind: PaymentKind::Intent,
            session_payment: None,
            status: Some(PaymentStatus::parse(&status)),
            amount: fields.minor_units("amount"),
            currency: fields.text("currency"),
            error_reason: fields.text("error_reason"),
            transaction_date: fields.text("transaction_date"),
            reference_id: fields.text("reference_id"),
            mode: fields.text("mode"),
            created_at: fields.text("created_at"),
            metadata: fields.string_map("metadata"),
            // 2026-02-01 attaches a `customer` object; its email stands in for a
            // missing `customer_email`.
            customer_email: fields
                .text("customer_email")
                .or_else(|| Lenient::new(fields.get("customer"), "data.customer").text("email")),
            sender_account,
        })
    }
}

/// A required field of Fintoc's object: a non-empty string.
fn required_text(data: &Value, key: &str) -> Option<String> {
    data.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

impl RefundReport {
    /// Reads a refund: `id` and `status` are required (non-empty strings; the error
    /// names the missing one); everything else leniently.
    pub fn from_json(data: &Value) -> Result<Self, &'static str> {
        let required = |key: &str| required_text(data, key);
        let id = required("id").ok_or("data.id")?;
        let status = required("status").ok_or("data.status")?;
        let fields = Lenient::new(Some(data), "data");
        Ok(Self {
            id,
            status: RefundStatus::parse(&status),
            amount: fields.minor_units("amount"),
            currency: fields.text("currency"),
            failure_code: fields.text("failure_code").filter(|c| is_identifier(c)),
            resource_type: fields.text("resource_type"),
            resource_id: fields.text("resource_id"),
            mode: fields.text("mode"),
            metadata: fields.string_map("metadata"),
            created_at: fields.text("created_at"),
        })
    }
}

impl SessionReport {
    /// Reads a session: `id` and `status` are required (non-empty strings; the error
    /// names the missing one); everything else leniently, in the shapes of the API
    /// versions this backend supports.
    pub fn from_json(data: &Value) -> Result<Self, &'static str> {
        let required = |key: &str| required_text(data, key);
        let id = required("id").ok_or("data.id")?;
        let status = required("status").ok_or("data.status")?;
        let fields = Lenient::new(Some(data), "data");
        let customer = Lenient::new(fields.get("customer"), "data.customer");
        let resource = Lenient::new(fields.get("payment_resource"), "data.payment_resource");
        let payment = resource
            .get("payment_intent")
            .or_else(|| fields.get("payment_intent"))
            .and_then(read_payment);
        Ok(Self {
            id,
            status: Some(SessionStatus::parse(&status)),
            amount: fields.minor_units("amount"),
            currency: fields.text("currency"),
            mode: fields.text("mode"),
            created_at: fields.text("created_at"),
            expires_at: fields.text("expires_at"),
            metadata: fields.string_map("metadata"),
            customer_email: fields.text("customer_email").or(customer.text("email")),
            payment,
        })
    }
}

fn read_payment(value: &Value) -> Option<PaymentReport> {
    match value {
        Value::String(id) if !id.is_empty() => Some(PaymentReport {
            id: id.clone(),
            ..PaymentReport::default()
        }),
        Value::Object(_) => {
            let id = value.get("id").and_then(Value::as_str)?.to_string();
            Some(PaymentReport::from_json(value).unwrap_or(PaymentReport {
                id,
                ..PaymentReport::default()
            }))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_passed_on_message_hides_long_numbers_and_is_short() {
        assert_eq!(
            scrub_message("Invalid recipient account 000123456789 for holder 12.345.678-9"),
            "Invalid recipient account [number] for holder [number]"
        );
        assert_eq!(
            scrub_message("amount 15000 exceeds 500.000\n"),
            "amount 15000 exceeds 500.000",
            "amounts stay; control characters go"
        );
        let long = "x".repeat(500);
        assert_eq!(scrub_message(&long).chars().count(), MAX_MESSAGE_CHARS);
        assert!(is_identifier("invalid_institution"));
        assert!(is_identifier("recipient_account.number"));
        assert!(!is_identifier("<script>"));
        assert!(!is_identifier(""));
    }
    use crate::domain::payment::{SessionPayment, StoredPayment};
    use crate::domain::session::{claim_of_payment, payment_event_report};
    use serde_json::json;
    use PaymentStatus::*;

    fn session(status: &str, payment: Value) -> SessionReport {
        SessionReport::from_json(&json!({
            "id": "cs_1", "status": status, "amount": 100, "currency": "CLP",
            "metadata": {"order_id": "o-1"}, "payment_resource": {"payment_intent": payment}
        }))
        .unwrap()
    }

    #[test]
    fn a_session_claims_its_payments_outcome_never_more() {
        let pi = |s: &str| json!({"id": "pi_1", "status": s, "amount": 100});
        assert_eq!(
            session("finished", pi("succeeded")).claimed_status(),
            Succeeded
        );
        assert_eq!(session("finished", pi("failed")).claimed_status(), Failed);
        assert_eq!(
            session("finished", pi("rejected")).claimed_status(),
            Rejected
        );
        assert_eq!(
            session("completed", pi("succeeded")).claimed_status(),
            Succeeded
        );
        assert_eq!(session("finished", pi("pending")).claimed_status(), Pending);
        assert_eq!(
            session("finished", Value::Null).claimed_status(),
            InProgress
        );
        assert_eq!(session("expired", Value::Null).claimed_status(), Expired);
        assert_eq!(session("expired", pi("failed")).claimed_status(), Expired);
        assert_eq!(session("created", Value::Null).claimed_status(), Created);
        assert_eq!(
            session("in_progress", pi("failed")).claimed_status(),
            InProgress
        );
        assert_eq!(
            session("in_progress", pi("pending")).claimed_status(),
            Pending
        );
        assert_eq!(
            session("in_progress", pi("succeeded")).claimed_status(),
            Succeeded,
            "Fintoc saying the payment succeeded is enough"
        );
    }

    #[test]
    fn a_failed_attempt_leaves_the_session_open() {
        for s in [Failed, Rejected, Expired] {
            assert_eq!(claim_of_payment(&s), InProgress);
        }
        assert_eq!(claim_of_payment(&Succeeded), Succeeded);
        assert_eq!(claim_of_payment(&Pending), Pending);
    }

    #[test]
    fn both_shapes_of_the_payment_link_are_read() {
        let by_id = session("in_progress", json!("pi_9"));
        assert_eq!(by_id.payment.unwrap().id, "pi_9");
        let top_level = SessionReport::from_json(&json!({
            "id": "cs_1", "status": "finished",
            "payment_intent": {"id": "pi_2", "status": "succeeded"},
            "customer": {"email": "a@b.cl"}
        }))
        .unwrap();
        assert_eq!(top_level.claimed_status(), Succeeded);
        assert_eq!(top_level.customer_email.as_deref(), Some("a@b.cl"));
        let retyped = SessionReport::from_json(&json!({
            "id": "cs_1", "status": "created", "amount": "100", "payment_resource": 7
        }))
        .unwrap();
        assert_eq!((retyped.amount, retyped.payment), (None, None));
        assert_eq!(
            SessionReport::from_json(&json!({"id": "cs_1"})).unwrap_err(),
            "data.status"
        );
    }

    #[test]
    fn the_record_report_carries_the_payment_not_the_account() {
        let report = session(
            "finished",
            json!({"id": "pi_1", "status": "succeeded", "amount": 90, "currency": "CLP",
                   "sender_account": {"number": "000012345678"}}),
        )
        .to_record_report();
        assert_eq!(report.kind, PaymentKind::Session);
        assert_eq!(report.id, "cs_1");
        assert_eq!(
            report.amount,
            Some(90),
            "the amount paid, for the mismatch check"
        );
        assert_eq!(
            report.session_payment,
            Some(SessionPayment {
                intent_id: "pi_1".into(),
                status: Succeeded
            })
        );
        let event = payment_event_report(
            "cs_1",
            &PaymentReport {
                id: "pi_1".into(),
                status: Some(Rejected),
                ..PaymentReport::default()
            },
        );
        assert_eq!(
            (event.id.as_str(), event.status),
            ("cs_1", Some(InProgress))
        );
    }

    #[test]
    fn the_view_derives_the_session_status_and_hides_tokens() {
        let mut stored = StoredPayment {
            id: "cs_1".into(),
            kind: PaymentKind::Session,
            status: Pending,
            amount: 100,
            currency: "CLP".into(),
            order_id: Some("o".into()),
            metadata: BTreeMap::new(),
            customer_email: Some("a@b.cl".into()),
            mode: None,
            error_reason: None,
            created_at: "t".into(),
            updated_at: "t".into(),
            schedule: None,
            session_payment: None,
            expires_at: Some("t2".into()),
            review: None,
            refunds: Default::default(),
        };
        let view = serde_json::to_value(stored.session_view()).unwrap();
        assert_eq!(
            (view["status"].as_str(), &view["payment_status"]),
            (Some("in_progress"), &Value::Null)
        );
        assert!(view.get("customer_email").is_none() && view.get("session_token").is_none());
        stored.status = Succeeded;
        let view = serde_json::to_value(stored.session_view()).unwrap();
        assert_eq!(
            (view["status"].as_str(), view["payment_status"].as_str()),
            (Some("finished"), Some("succeeded"))
        );
        stored.status = Expired;
        let view = serde_json::to_value(stored.session_view()).unwrap();
        assert_eq!(
            (view["status"].as_str(), &view["payment_status"]),
            (Some("expired"), &Value::Null)
        );
        stored.session_payment = Some(SessionPayment {
            intent_id: "pi_1".into(),
            status: Failed,
        });
        let view = serde_json::to_value(stored.session_view()).unwrap();
        assert_eq!(view["payment_status"].as_str(), Some("failed"));
        stored.status = InProgress;
        let view = serde_json::to_value(stored.session_view()).unwrap();
        assert_eq!(
            (
                view["status"].as_str(),
                view["paid"].as_bool(),
                view["payment_status"].as_str()
            ),
            (Some("in_progress"), Some(false), Some("failed")),
            "an ended attempt, the session still open"
        );
    }
}
