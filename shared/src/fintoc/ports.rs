//! The Fintoc ports the use cases call — creates, lookups, refunds — and what a
//! call that did not succeed ended in.

use super::types::*;
use crate::domain::idempotency::FintocKey;
use crate::domain::refund::RefundReport;
use crate::domain::report::PaymentReport;
use crate::domain::session::SessionReport;
use std::future::Future;
use std::time::Duration;

/// Why a call to Fintoc did not produce an intent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FintocError {
    /// Fintoc refused the request for good: a validation error (400, 402 or 422 of
    /// type `invalid_request_error`), which it answers the same to every retry of the
    /// same key. The only Fintoc answer recorded for replay.
    #[error("Fintoc rejected the request ({status} {code}): {message}")]
    Rejected {
        /// Fintoc's HTTP status.
        status: u16,
        /// Fintoc's `error.type`.
        error_type: String,
        /// Fintoc's `error.code`.
        code: String,
        /// Fintoc's `error.message`.
        message: String,
        /// Fintoc's `error.param`.
        param: Option<String>,
    },
    /// 401/403 (or 404 on our own endpoint): this deployment's configuration is wrong.
    #[error("Fintoc refused this backend's configuration (HTTP {status})")]
    Configuration {
        /// Fintoc's HTTP status.
        status: u16,
    },
    /// An answer that is neither a success, a validation error, a configuration
    /// problem nor retryable (e.g. another 4xx, or an `api_error` with a 4xx): not
    /// recorded, so a retry asks Fintoc again.
    #[error("Fintoc answered HTTP {status} unexpectedly")]
    Unexpected {
        /// Fintoc's HTTP status.
        status: u16,
    },
    /// 408, 409, 423, 425, 429 or 5xx, still failing after the retries.
    #[error("Fintoc unavailable (HTTP {status}) after {attempts} attempts")]
    Unavailable {
        /// Last HTTP status.
        status: u16,
        /// Attempts made.
        attempts: u32,
    },
    /// Timeouts or dropped connections, still failing after the retries.
    #[error("Fintoc did not answer ({detail}) after {attempts} attempts")]
    NoAnswer {
        /// True when the last failure was a timeout.
        timed_out: bool,
        /// What happened (no secrets).
        detail: String,
        /// Attempts made.
        attempts: u32,
    },
    /// A 2xx whose body is not a Payment Intent.
    #[error("Fintoc answered an unreadable body: {0}")]
    InvalidResponse(String),
}

/// The Fintoc operations this product needs.
pub trait FintocApi: Send + Sync {
    /// Creates a Payment Intent, sending `idempotency_key` on every attempt, and
    /// giving up in time to answer within `budget` (the time left in the
    /// invocation, when known).
    fn create_payment_intent(
        &self,
        request: &CreatePaymentIntent,
        idempotency_key: &FintocKey,
        budget: Option<Duration>,
    ) -> impl Future<Output = Result<FintocPaymentIntent, FintocError>> + Send;

    /// Creates a Checkout Session, like [`Self::create_payment_intent`].
    fn create_checkout_session(
        &self,
        request: &CreateCheckoutSession,
        idempotency_key: &FintocKey,
        budget: Option<Duration>,
    ) -> impl Future<Output = Result<FintocCheckoutSession, FintocError>> + Send;

    /// `POST /v1/checkout_sessions/{id}/expire`: the session as Fintoc shows it
    /// after, `None` when Fintoc does not know it; a session Fintoc cannot expire
    /// (no longer `created`) is [`FintocError::Rejected`].
    fn expire_checkout_session(
        &self,
        id: &str,
        budget: Option<Duration>,
    ) -> impl Future<Output = Result<Option<SessionReport>, FintocError>> + Send;

    /// `POST /v1/payment_intents/{id}/expire`, like
    /// [`Self::expire_checkout_session`]: an intent already final is refused.
    fn expire_payment_intent(
        &self,
        id: &str,
        budget: Option<Duration>,
    ) -> impl Future<Output = Result<Option<PaymentReport>, FintocError>> + Send;
}

/// Reading intents back from Fintoc (the reconciler's one call).
pub trait FintocLookup: Send + Sync {
    /// `GET /v1/payment_intents/{id}`: the intent as Fintoc shows it now, `None` when
    /// Fintoc answers 404. Retried like a create, within `budget`.
    fn get_payment_intent(
        &self,
        id: &str,
        budget: Option<Duration>,
    ) -> impl Future<Output = Result<Option<PaymentReport>, FintocError>> + Send;

    /// `GET /v1/checkout_sessions/{id}`, like [`Self::get_payment_intent`].
    fn get_checkout_session(
        &self,
        id: &str,
        budget: Option<Duration>,
    ) -> impl Future<Output = Result<Option<SessionReport>, FintocError>> + Send;

    /// `GET /v1/refunds/{id}` (under [`REFUNDS_API_VERSION`]): `None` when Fintoc
    /// does not know it.
    fn get_refund(
        &self,
        id: &str,
        budget: Option<Duration>,
    ) -> impl Future<Output = Result<Option<RefundReport>, FintocError>> + Send;

    /// `GET /v1/refunds?since=…&until=…`: the refunds created from `since` to
    /// `until` (RFC 3339, both inclusive; no `until`: to now), newest first,
    /// following Fintoc's `Link: rel="next"` pages up to [`MAX_LIST_PAGES`]
    /// of 300 (Fintoc has no filter by payment).
    fn list_refunds(
        &self,
        since: &str,
        until: Option<&str>,
        budget: Option<Duration>,
    ) -> impl Future<Output = Result<RefundList, FintocError>> + Send;

    /// `GET /v1/payment_intents?since=…`: the intents created from `since` (RFC
    /// 3339, inclusive) to now, newest first, pages as [`Self::list_refunds`].
    fn list_payment_intents(
        &self,
        since: &str,
        budget: Option<Duration>,
    ) -> impl Future<Output = Result<PaymentList, FintocError>> + Send;
}

/// Most pages of 300 one list ([`FintocLookup::list_refunds`],
/// [`FintocLookup::list_payment_intents`]) reads.
pub const MAX_LIST_PAGES: usize = 10;

/// Refunds as Fintoc's list gave them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RefundList {
    /// The refunds read, newest first.
    pub refunds: Vec<RefundReport>,
    /// Whether every page was read (`false`: more pages than one list reads).
    pub complete: bool,
}

/// Payment intents as Fintoc's list gave them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PaymentList {
    /// The intents read, newest first.
    pub payments: Vec<PaymentReport>,
    /// Whether every page was read.
    pub complete: bool,
}

/// Fintoc's refunds (`/v1/refunds`), under [`REFUNDS_API_VERSION`].
pub trait FintocRefunds: Send + Sync {
    /// `POST /v1/refunds` with `idempotency_key` on every attempt: the refund as
    /// Fintoc made it; a refusal (e.g. more than refundable) is
    /// [`FintocError::Rejected`].
    fn create_refund(
        &self,
        request: &CreateRefund,
        idempotency_key: &FintocKey,
        budget: Option<Duration>,
    ) -> impl Future<Output = Result<RefundReport, FintocError>> + Send;

    /// `POST /v1/refunds/{id}/cancel`: the refund after it, `None` when Fintoc does
    /// not know it; one that can no longer be canceled is [`FintocError::Rejected`].
    fn cancel_refund(
        &self,
        id: &str,
        budget: Option<Duration>,
    ) -> impl Future<Output = Result<Option<RefundReport>, FintocError>> + Send;
}
