//! Payment Intent statuses and the intent as this backend stores and shows it.

use super::refund::{RefundId, RefundLedger, RefundView, Refunds};
use super::schedule::CheckSchedule;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A Fintoc Payment Intent status. Unknown values are kept, not rejected: Fintoc may
/// add statuses, and such a value is treated as not final.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PaymentStatus {
    /// Just created; the payer has not started.
    Created,
    /// The payer is in the widget.
    InProgress,
    /// Submitted to the bank; may still succeed or fail.
    Pending,
    /// Waiting for an action of the payer.
    RequiresAction,
    /// Final: paid.
    Succeeded,
    /// Final: a bank or Fintoc problem, not paid.
    Failed,
    /// Final: the payer rejected (e.g. the bank's MFA), not paid.
    Rejected,
    /// Final: expired before being paid.
    Expired,
    /// A status this version does not know; never final.
    Other(String),
}

impl PaymentStatus {
    /// Parses Fintoc's lowercase status name; never fails.
    pub fn parse(s: &str) -> Self {
        match s {
            "created" => Self::Created,
            "in_progress" => Self::InProgress,
            "pending" => Self::Pending,
            "requires_action" => Self::RequiresAction,
            "succeeded" => Self::Succeeded,
            "failed" => Self::Failed,
            "rejected" => Self::Rejected,
            "expired" => Self::Expired,
            other => Self::Other(other.to_string()),
        }
    }

    /// Fintoc's name of the status.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Created => "created",
            Self::InProgress => "in_progress",
            Self::Pending => "pending",
            Self::RequiresAction => "requires_action",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Rejected => "rejected",
            Self::Expired => "expired",
            Self::Other(s) => s,
        }
    }

    /// Final statuses are never left.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            Self::Succeeded | Self::Failed | Self::Rejected | Self::Expired
        )
    }
}

impl Serialize for PaymentStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for PaymentStatus {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(Self::parse(&s))
    }
}

/// Which Fintoc object a stored payment is: the flow that created it. Stored as
/// the item's key prefix (`INTENT#`, `SESSION#`), so every id is looked up under
/// its own kind and a session id can never be read as an intent's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub enum PaymentKind {
    /// A Payment Intent (`POST /v1/payment_intents`, the widget-token flow).
    #[default]
    Intent,
    /// A Checkout Session (`POST /v1/checkout_sessions`, Fintoc's current flow); its
    /// status on this backend is the status of the payment it collects.
    Session,
}

impl PaymentKind {
    /// Stable name: stored as `entity` and on the order, logged.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Intent => "intent",
            Self::Session => "session",
        }
    }

    /// Reads a stored name; anything else is an intent (items written before
    /// sessions existed carry none).
    pub fn parse(s: &str) -> Self {
        match s {
            "session" => Self::Session,
            _ => Self::Intent,
        }
    }

    /// Fintoc's name of the object, as its event types start
    /// (`payment_intent.succeeded`, `checkout_session.finished`).
    pub fn object(self) -> &'static str {
        match self {
            Self::Intent => "payment_intent",
            Self::Session => "checkout_session",
        }
    }

    /// What the merchant's API calls it in messages.
    pub fn noun(self) -> &'static str {
        match self {
            Self::Intent => "payment intent",
            Self::Session => "checkout session",
        }
    }

    /// The prefix of the item's partition key.
    pub fn key_prefix(self) -> &'static str {
        match self {
            Self::Intent => "INTENT#",
            Self::Session => "SESSION#",
        }
    }
}

/// Why a payment needs a human before anything acts on it: it is never `paid`, and
/// its order (when it has one) is held in review or keeps it as an anomaly. (An
/// event of another mode than its payment's is not applied at all: it is a note in
/// the payment's `anomalies`.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewReason {
    /// Fintoc reported a payment of another amount or currency than requested.
    AmountMismatch,
    /// A payment its order did not take: the order was paid already, or by (or is
    /// waiting for) another payment. A human must refund it.
    SecondPayment,
}

impl ReviewReason {
    /// The stored and shown name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AmountMismatch => "amount_mismatch",
            Self::SecondPayment => "second_payment",
        }
    }

    /// Reads a stored name; an unknown one is kept as a second payment (the
    /// reason that asks the most of a human) rather than dropped.
    pub fn parse(s: &str) -> Self {
        match s {
            "amount_mismatch" => Self::AmountMismatch,
            _ => Self::SecondPayment,
        }
    }
}

/// A payment held for a human: why, and the detail for the record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Review {
    /// Why.
    #[serde(serialize_with = "review_reason")]
    pub reason: ReviewReason,
    /// What was seen (e.g. `requested 15000 CLP, Fintoc reported 1 CLP`).
    pub detail: String,
}

fn review_reason<S: serde::Serializer>(r: &ReviewReason, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(r.as_str())
}

/// A payment as stored by this backend (the merchant-facing view of it): a payment
/// intent, or a checkout session (`kind`), whose `status` is then its payment's
/// status as the session's own record carries it (see `domain::session`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPayment {
    /// Fintoc's id (`pi_...`, or `cs_...` for a session).
    pub id: String,
    /// Which Fintoc object it is.
    pub kind: PaymentKind,
    /// Current status.
    pub status: PaymentStatus,
    /// Amount in minor units.
    pub amount: u64,
    /// Uppercase ISO currency code.
    pub currency: String,
    /// The merchant's order id, if given.
    pub order_id: Option<String>,
    /// Merchant metadata.
    pub metadata: BTreeMap<String, String>,
    /// Payer's email, if given (never returned by GET).
    pub customer_email: Option<String>,
    /// Fintoc's `mode` (`live` | `test`).
    pub mode: Option<String>,
    /// Why a failed/rejected/expired intent ended so.
    pub error_reason: Option<String>,
    /// Creation time (RFC 3339).
    pub created_at: String,
    /// Last change (RFC 3339).
    pub updated_at: String,
    /// Its check schedule while it is open (set at creation; `None` once final).
    pub schedule: Option<CheckSchedule>,
    /// A session's latest payment intent and its status, once Fintoc reported one.
    pub session_payment: Option<SessionPayment>,
    /// When a session expires at Fintoc (RFC 3339), when known.
    pub expires_at: Option<String>,
    /// Set when the payment needs a human (see [`ReviewReason`]).
    pub review: Option<Review>,
    /// Its refunds and what they hold.
    pub refunds: Refunds,
}

/// The payment intent a checkout session made when the payer started paying, as
/// far as this backend knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionPayment {
    /// `pi_...`.
    pub intent_id: String,
    /// Its latest reported status.
    pub status: PaymentStatus,
}

/// The JSON answered by `GET /payment-intents/{id}`: never the widget token or any
/// account number.
#[derive(Debug, Serialize)]
pub struct IntentView<'a> {
    /// Fintoc's id.
    pub id: &'a str,
    /// Current status.
    pub status: &'a str,
    /// Amount in minor units.
    pub amount: u64,
    /// Currency.
    pub currency: &'a str,
    /// Merchant order id.
    pub order_id: Option<&'a str>,
    /// Merchant metadata.
    pub metadata: &'a BTreeMap<String, String>,
    /// Whether this payment paid its order: it succeeded at the amount and
    /// currency requested, and its order took it. The one field to act on.
    pub paid: bool,
    /// Why a human must look at this payment before anything acts on it; `null`
    /// when nothing is wrong.
    pub needs_review: Option<&'a Review>,
    /// Failure reason of a final, unpaid intent.
    pub error_reason: Option<&'a str>,
    /// Creation time.
    pub created_at: &'a str,
    /// Last change.
    pub updated_at: &'a str,
    /// Its refunds.
    #[serde(flatten)]
    pub refunds: RefundsSummary<'a>,
}

/// A payment's refunds as both payment views show them.
#[derive(Debug, Serialize)]
pub struct RefundsSummary<'a> {
    /// What went back to the payer (succeeded refunds).
    pub refunded_amount: u64,
    /// What may still be refunded.
    pub refundable_amount: u64,
    /// Its refunds, oldest first.
    pub refunds: Vec<RefundView<'a>>,
}

impl StoredPayment {
    /// What this payment's refunds may draw on: its amount once it succeeded at
    /// the amount asked for; nothing otherwise (a payment of another amount than
    /// requested is refunded by a human at Fintoc, who knows what was paid).
    pub fn refundable_base(&self) -> u64 {
        let mismatch = self
            .review
            .as_ref()
            .is_some_and(|r| r.reason == ReviewReason::AmountMismatch);
        if self.status == PaymentStatus::Succeeded && !mismatch {
            self.amount
        } else {
            0
        }
    }

    /// The check schedule a refund puts this payment on, when it has none (a paid
    /// payment left the index): its open refunds are checked with Fintoc on it,
    /// with the same delays and give-up point as an open payment.
    pub fn schedule_for_refunds(&self, now_ms: i64, first_check_ms: i64) -> Option<CheckSchedule> {
        self.schedule
            .is_none()
            .then(|| super::schedule::initial_schedule_after(&self.id, now_ms, first_check_ms))
    }

    /// The ledger its refunds are held to.
    pub fn refund_ledger(&self) -> RefundLedger {
        self.refunds.ledger(self.refundable_base())
    }

    /// The public id of its refund under `key`.
    pub fn refund_id(&self, key: &super::refund::RefundKey) -> RefundId {
        RefundId {
            session: self.kind == PaymentKind::Session,
            payment_id: self.id.clone(),
            key: key.clone(),
        }
    }

    /// Whether this payment paid its order: it succeeded and nothing about it needs
    /// review (another amount, a payment its order did not take, another mode).
    pub fn paid(&self) -> bool {
        self.status == PaymentStatus::Succeeded && self.review.is_none()
    }

    /// The public view of this intent.
    pub fn view(&self) -> IntentView<'_> {
        IntentView {
            id: &self.id,
            status: self.status.as_str(),
            amount: self.amount,
            currency: &self.currency,
            order_id: self.order_id.as_deref(),
            metadata: &self.metadata,
            paid: self.paid(),
            needs_review: self.review.as_ref(),
            error_reason: self.error_reason.as_deref(),
            created_at: &self.created_at,
            updated_at: &self.updated_at,
            refunds: self.refunds_summary(),
        }
    }

    /// Its refunds, as both views show them.
    pub fn refunds_summary(&self) -> RefundsSummary<'_> {
        RefundsSummary {
            refunded_amount: self.refunds.refunded(),
            refundable_amount: self.refund_ledger().refundable(),
            refunds: self
                .refunds
                .entries
                .iter()
                .map(|r| r.view(&self.refund_id(&r.key)))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn final_statuses() {
        for s in ["succeeded", "failed", "rejected", "expired"] {
            assert!(PaymentStatus::parse(s).is_final(), "{s}");
        }
        for s in [
            "created",
            "in_progress",
            "pending",
            "requires_action",
            "on_hold",
        ] {
            assert!(!PaymentStatus::parse(s).is_final(), "{s}");
        }
    }

    #[test]
    fn unknown_status_round_trips() {
        let s: PaymentStatus = serde_json::from_str("\"on_hold\"").unwrap();
        assert_eq!(s, PaymentStatus::Other("on_hold".into()));
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"on_hold\"");
        for known in [
            "created",
            "in_progress",
            "pending",
            "requires_action",
            "succeeded",
        ] {
            assert_eq!(PaymentStatus::parse(known).as_str(), known);
        }
    }

    fn stored(status: PaymentStatus) -> StoredPayment {
        StoredPayment {
            id: "pi_1".into(),
            kind: PaymentKind::Intent,
            status,
            amount: 15_000,
            currency: "CLP".into(),
            order_id: Some("o".into()),
            metadata: BTreeMap::new(),
            customer_email: None,
            mode: Some("test".into()),
            error_reason: None,
            created_at: "t".into(),
            updated_at: "t".into(),
            schedule: None,
            session_payment: None,
            expires_at: None,
            review: None,
            refunds: Default::default(),
        }
    }

    #[test]
    fn view_hides_email() {
        let intent = StoredPayment {
            customer_email: Some("a@b.cl".into()),
            ..stored(PaymentStatus::Created)
        };
        let json = serde_json::to_value(intent.view()).unwrap();
        assert!(json.get("customer_email").is_none());
        assert!(json.get("widget_token").is_none());
        assert_eq!(json["status"], "created");
        assert_eq!(
            (json["paid"].clone(), json["needs_review"].clone()),
            (false.into(), serde_json::Value::Null)
        );
    }

    #[test]
    fn succeeded_is_paid_only_without_a_review() {
        let mut intent = stored(PaymentStatus::Succeeded);
        assert!(intent.paid());
        intent.review = Some(Review {
            reason: ReviewReason::AmountMismatch,
            detail: "requested 15000 CLP, Fintoc reported 1 CLP".into(),
        });
        let json = serde_json::to_value(intent.view()).unwrap();
        assert_eq!(json["status"], "succeeded", "Fintoc's status, as it said");
        assert_eq!(json["paid"], false);
        assert_eq!(json["needs_review"]["reason"], "amount_mismatch");
        for r in [ReviewReason::AmountMismatch, ReviewReason::SecondPayment] {
            assert_eq!(ReviewReason::parse(r.as_str()), r);
        }
    }
}
