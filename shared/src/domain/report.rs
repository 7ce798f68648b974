//! What Fintoc reports about a payment intent (in a webhook event's `data`, or in
//! an answer of its API), and the masking of the payer's account before anything
//! of it is stored.

use super::payment::{PaymentKind, PaymentStatus, SessionPayment};
use serde_json::Value;
use std::collections::BTreeMap;

/// A payment intent as Fintoc described it, already read leniently by the adapter
/// that received it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PaymentReport {
    /// `pi_...` (or, for a report about a checkout session, `cs_...`).
    pub id: String,
    /// The record the report is about: an intent, or a session seen through its
    /// payment (`domain::session` builds those).
    pub kind: PaymentKind,
    /// For a session: its payment intent and that intent's own status.
    pub session_payment: Option<SessionPayment>,
    /// The status in the report's body, when present (unknown ones tolerated).
    pub status: Option<PaymentStatus>,
    /// Minor units.
    pub amount: Option<u64>,
    /// Currency code, as sent.
    pub currency: Option<String>,
    /// Why an unpaid intent ended so.
    pub error_reason: Option<String>,
    /// The bank's operation date.
    pub transaction_date: Option<String>,
    /// The bank's operation number.
    pub reference_id: Option<String>,
    /// `live` | `test`.
    pub mode: Option<String>,
    /// When Fintoc created the intent.
    pub created_at: Option<String>,
    /// Metadata with string values.
    pub metadata: BTreeMap<String, String>,
    /// Payer's email.
    pub customer_email: Option<String>,
    /// The payer's account, unmasked as Fintoc sent it.
    pub sender_account: Option<SenderAccount>,
}

/// The payer's account as Fintoc sends it. `Debug` never shows the number.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct SenderAccount {
    /// Bank, e.g. `cl_banco_de_chile`.
    pub institution_id: Option<String>,
    /// Holder's RUT / RFC.
    pub holder_id: Option<String>,
    /// The full account number: never stored, never logged.
    pub number: Option<String>,
    /// Account type.
    pub account_type: Option<String>,
}

impl std::fmt::Debug for SenderAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SenderAccount")
            .field("institution_id", &self.institution_id)
            .field("holder_id", &self.holder_id)
            .field("number", &self.number.as_ref().map(|_| "***"))
            .field("account_type", &self.account_type)
            .finish()
    }
}

/// The payer's account as stored: the number cut to its last 4 characters.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MaskedAccount {
    /// Bank.
    pub institution_id: Option<String>,
    /// Holder's RUT / RFC.
    pub holder_id: Option<String>,
    /// Last 4 characters of the account number.
    pub number_last4: Option<String>,
    /// Account type.
    pub account_type: Option<String>,
}

impl SenderAccount {
    /// The account with its number cut to the last 4 characters.
    pub fn masked(&self) -> MaskedAccount {
        MaskedAccount {
            institution_id: self.institution_id.clone(),
            holder_id: self.holder_id.clone(),
            number_last4: self.number.as_deref().map(last4),
            account_type: self.account_type.clone(),
        }
    }
}

fn last4(number: &str) -> String {
    let chars: Vec<char> = number.chars().collect();
    chars[chars.len().saturating_sub(4)..].iter().collect()
}

/// The JSON type of `value`, for the log line of a field read as absent.
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
pub(super) struct Lenient<'a> {
    object: Option<&'a serde_json::Map<String, Value>>,
    prefix: &'static str,
}

impl<'a> Lenient<'a> {
    pub(super) fn new(value: Option<&'a Value>, prefix: &'static str) -> Self {
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

    pub(super) fn get(&self, key: &str) -> Option<&'a Value> {
        self.object?.get(key).filter(|v| !v.is_null())
    }

    pub(super) fn text(&self, key: &str) -> Option<String> {
        match self.get(key)? {
            Value::String(text) => Some(text.clone()),
            other => {
                wrong_type(&format!("{}.{key}", self.prefix), other);
                None
            }
        }
    }

    pub(super) fn minor_units(&self, key: &str) -> Option<u64> {
        match self.get(key)? {
            Value::Number(n) if n.as_u64().is_some() => n.as_u64(),
            other => {
                wrong_type(&format!("{}.{key}", self.prefix), other);
                None
            }
        }
    }

    /// A map of strings: entries of another type are dropped (and logged).
    pub(super) fn string_map(&self, key: &'static str) -> BTreeMap<String, String> {
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
        let required = |key: &str| {
            data.get(key)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masking_keeps_only_the_last_four_characters() {
        let account = SenderAccount {
            institution_id: Some("mx_stp".into()),
            holder_id: Some("h".into()),
            number: Some("646180157000003279".into()),
            account_type: Some("clabe".into()),
        };
        let masked = account.masked();
        assert_eq!(masked.number_last4.as_deref(), Some("3279"));
        assert_eq!(masked.institution_id.as_deref(), Some("mx_stp"));
        let short = SenderAccount {
            number: Some("12".into()),
            ..SenderAccount::default()
        };
        assert_eq!(short.masked().number_last4.as_deref(), Some("12"));
    }

    #[test]
    fn debug_never_shows_the_number() {
        let account = SenderAccount {
            number: Some("646180157000003279".into()),
            ..SenderAccount::default()
        };
        assert!(!format!("{account:?}").contains("3279"));
    }
}
