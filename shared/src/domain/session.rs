//! Checkout Sessions on the same exactly-once core as payment intents.
//!
//! A session is stored like an intent (its own `SESSION#` item, bound to its order,
//! with applied event ids, a version and a check schedule), and its `status` there
//! is **the status of the payment it collects**, so the intent state machine
//! (`domain::transition`) and the order rules apply unchanged:
//!
//! - `checkout_session.expired` → `expired` (final; the order may be tried again);
//! - a payment intent of the session that `succeeded` → `succeeded` (final; the
//!   order is paid), whichever event says it first: the intent's own event, or the
//!   session's `finished` event carrying it in `payment_resource.payment_intent`;
//! - a payment that failed, was rejected or expired **while the session is open** is
//!   not the session's outcome: the payer may try again inside the same session, so
//!   the session stays `in_progress` and only its latest attempt is recorded;
//! - `checkout_session.finished` with a payment that ended unpaid → that final
//!   status (`failed`, `rejected`, `expired`): finished without a succeeded payment
//!   is never paid.
//!
//! What the merchant sees (`GET /checkout-sessions/{id}`) is derived back from it:
//! the session's own status (`created`, `in_progress`, `finished`, `expired`) and
//! its payment's outcome.

use super::error::{InputError, InputErrorKind};
use super::idempotency::FintocKey;
use super::payment::{
    PaymentKind, PaymentStatus, RefundsSummary, Review, SessionPayment, StoredPayment,
};
use super::report::PaymentReport;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// The metadata key carrying a session's reference: Fintoc passes a session's
/// metadata on to the payment intents the payer makes in it, so each attempt's
/// events name the session that made it.
pub const SESSION_REF_METADATA_KEY: &str = "session_ref";

/// A session's reference, derived from the Fintoc idempotency key of its create:
/// every retry of one create sends the same one (Fintoc compares a retry's
/// parameters), two sessions never share one, and it tells nothing of the key.
pub fn session_ref(fintoc_key: &FintocKey) -> String {
    let digest = Sha256::digest(format!("session-ref\0{}", fintoc_key.as_str()));
    format!("sref_{}", &hex::encode(digest)[..32])
}

/// What the checkout-session flow needs of the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSettings {
    /// Where Fintoc's page sends the payer after paying, unless the request names
    /// another allowed URL.
    pub success_url: String,
    /// Where it sends a payer who cancels, likewise.
    pub cancel_url: String,
    /// Further return URLs a request may name (exact matches only); the two above
    /// are always allowed.
    pub allowed_return_urls: Vec<String>,
}

impl SessionSettings {
    /// The URL a request may use for `field`: its own, if allowed, else the
    /// default; a URL not configured is refused (422 `return_url_not_allowed`: the
    /// merchant's configuration, which no schema knows, refuses it).
    pub fn return_url(
        &self,
        requested: Option<&str>,
        default: &str,
        field: &'static str,
    ) -> Result<String, InputError> {
        match requested {
            None => Ok(default.to_string()),
            Some(url)
                if url == self.success_url
                    || url == self.cancel_url
                    || self.allowed_return_urls.iter().any(|a| a == url) =>
            {
                Ok(url.to_string())
            }
            Some(_) => Err(InputError::new(
                InputErrorKind::OverLimit,
                "return_url_not_allowed",
                format!("{field} is not one of this merchant's configured return URLs (CHECKOUT_RETURN_URLS)."),
            )
            .with_param(field)),
        }
    }
}

/// A Checkout Session status as Fintoc names it. Unknown values are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionStatus {
    /// Made; the payer has not started.
    Created,
    /// The payer is paying (a payment intent exists).
    InProgress,
    /// Done: the payment reached an end.
    Finished,
    /// Expired (by time, or by the merchant) before being paid.
    Expired,
    /// A status this version does not know; never final.
    Other(String),
}

impl SessionStatus {
    /// Parses Fintoc's name (`completed`, which one guide uses, reads as finished).
    pub fn parse(s: &str) -> Self {
        match s {
            "created" => Self::Created,
            "in_progress" => Self::InProgress,
            "finished" | "completed" => Self::Finished,
            "expired" => Self::Expired,
            other => Self::Other(other.to_string()),
        }
    }

    /// Fintoc's name.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Created => "created",
            Self::InProgress => "in_progress",
            Self::Finished => "finished",
            Self::Expired => "expired",
            Self::Other(s) => s,
        }
    }
}

/// What a session event's type means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEventKind {
    /// `checkout_session.finished` or `checkout_session.completed`.
    Finished,
    /// `checkout_session.expired`.
    Expired,
    /// Any other `checkout_session.*` type: acknowledged and ignored.
    Unknown,
}

impl SessionEventKind {
    /// The kind of a `checkout_session.*` event type's suffix.
    pub fn of(suffix: &str) -> Self {
        match suffix {
            "finished" | "completed" => Self::Finished,
            "expired" => Self::Expired,
            _ => Self::Unknown,
        }
    }
}

/// A checkout session as Fintoc described it (an event's `data`, or an answer of its
/// API), read leniently like an intent.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionReport {
    /// `cs_...`.
    pub id: String,
    /// Its status, when readable.
    pub status: Option<SessionStatus>,
    /// Minor units.
    pub amount: Option<u64>,
    /// Currency, as sent.
    pub currency: Option<String>,
    /// `live` | `test`.
    pub mode: Option<String>,
    /// When Fintoc made it.
    pub created_at: Option<String>,
    /// When it expires.
    pub expires_at: Option<String>,
    /// Metadata with string values.
    pub metadata: BTreeMap<String, String>,
    /// Payer's email (`customer_email`, or `customer.email`).
    pub customer_email: Option<String>,
    /// The payment intent it made (`payment_resource.payment_intent`, or a top-level
    /// `payment_intent`), when it carries one: an object, or only its id.
    pub payment: Option<PaymentReport>,
}

impl SessionReport {
    /// The status this report claims for the session's record: see the module.
    pub fn claimed_status(&self) -> PaymentStatus {
        let payment = self
            .payment
            .as_ref()
            .and_then(|p| p.status.clone())
            .unwrap_or(PaymentStatus::Created);
        match self.status.as_ref() {
            Some(SessionStatus::Expired) if payment != PaymentStatus::Succeeded => {
                PaymentStatus::Expired
            }
            Some(SessionStatus::Finished) if payment.is_final() => payment,
            Some(SessionStatus::Finished) => PaymentStatus::InProgress.max_with(&payment),
            Some(SessionStatus::Created) | None if self.payment.is_none() => PaymentStatus::Created,
            _ => claim_of_payment(&payment),
        }
    }

    /// The report the transition machinery applies to the session's record: its
    /// claimed status, and the payment's details (amount paid, payer, reason).
    pub fn to_record_report(&self) -> PaymentReport {
        let payment = self.payment.clone().unwrap_or_default();
        PaymentReport {
            id: self.id.clone(),
            kind: PaymentKind::Session,
            session_payment: self.payment.as_ref().and_then(|p| {
                Some(SessionPayment {
                    intent_id: p.id.clone(),
                    status: p.status.clone()?,
                })
            }),
            status: Some(self.claimed_status()),
            amount: payment.amount.or(self.amount),
            currency: payment.currency.or(self.currency.clone()),
            error_reason: payment.error_reason,
            transaction_date: payment.transaction_date,
            reference_id: payment.reference_id,
            mode: self.mode.clone().or(payment.mode),
            created_at: self.created_at.clone(),
            metadata: self.metadata.clone(),
            customer_email: self.customer_email.clone(),
            sender_account: payment.sender_account,
        }
    }
}

impl PaymentStatus {
    /// The further along of two non-final statuses (by the state machine's order).
    fn max_with(self, other: &PaymentStatus) -> PaymentStatus {
        let rank = |s: &PaymentStatus| match s {
            PaymentStatus::InProgress => 1,
            PaymentStatus::RequiresAction => 2,
            PaymentStatus::Pending => 3,
            _ => 0,
        };
        if rank(other) > rank(&self) {
            other.clone()
        } else {
            self
        }
    }
}

/// What a status of a session's payment intent claims for the session's record: a
/// success is the session's success; an attempt that ended unpaid leaves the session
/// in progress (the payer may try again inside it); the rest is the payment's own
/// progress.
pub fn claim_of_payment(payment: &PaymentStatus) -> PaymentStatus {
    match payment {
        PaymentStatus::Failed | PaymentStatus::Rejected | PaymentStatus::Expired => {
            PaymentStatus::InProgress
        }
        other => other.clone(),
    }
}

/// The report a `payment_intent.*` event of a session's intent becomes on the
/// session's record.
pub fn payment_event_report(session_id: &str, payment: &PaymentReport) -> PaymentReport {
    let status = payment.status.clone().unwrap_or(PaymentStatus::Created);
    PaymentReport {
        id: session_id.to_string(),
        kind: PaymentKind::Session,
        session_payment: Some(SessionPayment {
            intent_id: payment.id.clone(),
            status: status.clone(),
        }),
        status: Some(claim_of_payment(&status)),
        ..payment.clone()
    }
}

/// The session's own status, derived from its record's status.
pub fn session_status(record: &PaymentStatus) -> &'static str {
    match record {
        PaymentStatus::Created => "created",
        PaymentStatus::Expired => "expired",
        PaymentStatus::Succeeded | PaymentStatus::Failed | PaymentStatus::Rejected => "finished",
        _ => "in_progress",
    }
}

/// The JSON answered by `GET /checkout-sessions/{id}`: never a token, an email or
/// an account number.
#[derive(Debug, Serialize)]
pub struct SessionView<'a> {
    /// `cs_...`.
    pub id: &'a str,
    /// `created`, `in_progress`, `finished` or `expired`.
    pub status: &'static str,
    /// Whether this session paid its order: its payment succeeded (as a webhook or
    /// a check with Fintoc said) at the amount requested, and its order took it.
    /// The one field to act on.
    pub paid: bool,
    /// Why a human must look at this session's payment; `null` when nothing is
    /// wrong.
    pub needs_review: Option<&'a Review>,
    /// The outcome of its payment intent (`succeeded`, `failed`, `rejected`,
    /// `expired`), or `null` while there is none. While the session is
    /// `in_progress` it is its latest attempt's: the payer may still try again.
    pub payment_status: Option<&'a str>,
    /// Its payment intent, once one exists.
    pub payment_intent_id: Option<&'a str>,
    /// Minor units.
    pub amount: u64,
    /// Currency.
    pub currency: &'a str,
    /// Merchant order id.
    pub order_id: Option<&'a str>,
    /// Merchant metadata.
    pub metadata: &'a BTreeMap<String, String>,
    /// Why an unpaid session ended so.
    pub error_reason: Option<&'a str>,
    /// When it expires at Fintoc.
    pub expires_at: Option<&'a str>,
    /// Creation time.
    pub created_at: &'a str,
    /// Last change.
    pub updated_at: &'a str,
    /// Its refunds (of the payment that paid it).
    #[serde(flatten)]
    pub refunds: RefundsSummary<'a>,
}

impl StoredPayment {
    /// The public view of a stored session.
    pub fn session_view(&self) -> SessionView<'_> {
        let attempt = self.session_payment.as_ref();
        let payment_status = match (&self.status, attempt) {
            // The session's own outcome, when its payment decided it.
            (status, _) if status.is_final() && *status != PaymentStatus::Expired => {
                Some(status.as_str())
            }
            // Else its latest attempt's, once that ended; an expired session
            // without one has no payment outcome.
            (_, Some(a)) if a.status.is_final() => Some(a.status.as_str()),
            _ => None,
        };
        SessionView {
            id: &self.id,
            status: session_status(&self.status),
            paid: self.paid(),
            needs_review: self.review.as_ref(),
            payment_status,
            payment_intent_id: attempt.map(|a| a.intent_id.as_str()),
            amount: self.amount,
            currency: &self.currency,
            order_id: self.order_id.as_deref(),
            metadata: &self.metadata,
            error_reason: self.error_reason.as_deref(),
            expires_at: self.expires_at.as_deref(),
            created_at: &self.created_at,
            updated_at: &self.updated_at,
            refunds: self.refunds_summary(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::idempotency::{derive_fintoc_key, CallerId, IdempotencyKey};

    /// Issue 36: a return URL that is well-formed but not configured is refused
    /// for the merchant's configuration, as an amount over its maximum is (`422`),
    /// not as a malformed request: the schema cannot know the configured list.
    #[test]
    fn a_return_url_not_configured_is_refused_by_the_configuration() {
        let settings = SessionSettings {
            success_url: "https://shop.example/ok".into(),
            cancel_url: "https://shop.example/no".into(),
            allowed_return_urls: vec!["https://shop.example/other".into()],
        };
        let refused = settings
            .return_url(Some("https://evil.example/"), "d", "success_url")
            .unwrap_err();
        assert_eq!(
            (refused.kind, refused.code),
            (
                crate::domain::error::InputErrorKind::OverLimit,
                "return_url_not_allowed"
            )
        );
        assert_eq!(
            settings.return_url(Some("https://shop.example/other"), "d", "cancel_url"),
            Ok("https://shop.example/other".to_string())
        );
    }

    #[test]
    fn a_sessions_reference_is_one_per_create_and_tells_nothing_of_its_key() {
        let key = |k: &str| {
            derive_fintoc_key(
                "ns:checkout_session",
                &IdempotencyKey::parse(&CallerId::anonymous(), Some(k)).unwrap(),
            )
        };
        let first = session_ref(&key("k-1"));
        assert_eq!(
            first,
            session_ref(&key("k-1")),
            "every retry sends the same"
        );
        assert_ne!(
            first,
            session_ref(&key("k-2")),
            "two creates, two references"
        );
        assert!(
            first.starts_with("sref_") && first.len() == 5 + 32,
            "{first}"
        );
        assert!(!key("k-1").as_str().contains(&first[5..]));
    }
}
