//! The verdicts on Fintoc's answers: a success read into its report, a refusal
//! (a validation error, the configuration), or an answer worth another attempt.

use super::ports::FintocError;
use super::wire;
use crate::domain::refund::RefundReport;
use crate::domain::report::PaymentReport;
use crate::domain::session::SessionReport;
use serde::Deserialize;

#[derive(Deserialize)]
pub(super) struct ErrorEnvelope {
    error: ErrorBody,
}

#[derive(Deserialize)]
pub(super) struct ErrorBody {
    #[serde(rename = "type", default)]
    error_type: Option<String>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    param: Option<String>,
}

/// What to do with one HTTP answer from Fintoc.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Verdict<T> {
    /// Done: the answer's result.
    Done(Result<T, FintocError>),
    /// Try again.
    Retry,
}

/// Judges an answer to `GET /v1/payment_intents/{id}`: the intent (read leniently),
/// `None` for a 404 (Fintoc does not know it), retries as for a create.
pub(super) fn judge_lookup(status: u16, body: &[u8]) -> Verdict<Option<PaymentReport>> {
    judge_read(status, body, PaymentReport::from_json)
}

/// Judges an answer to `GET /v1/checkout_sessions/{id}`, like [`judge_lookup`].
pub(super) fn judge_session_lookup(status: u16, body: &[u8]) -> Verdict<Option<SessionReport>> {
    judge_read(status, body, SessionReport::from_json)
}

/// A read of one object: `read` on a 2xx body (its error names the missing field),
/// `None` for a 404, retries as for a create.
pub(super) fn judge_read<T>(
    status: u16,
    body: &[u8],
    read: impl Fn(&serde_json::Value) -> Result<T, &'static str>,
) -> Verdict<Option<T>> {
    match status {
        200..=299 => Verdict::Done(read_object(body, read).map(Some)),
        404 => Verdict::Done(Ok(None)),
        408 | 409 | 423 | 425 | 429 | 500..=599 => Verdict::Retry,
        401 | 403 => Verdict::Done(Err(FintocError::Configuration { status })),
        _ => Verdict::Done(Err(FintocError::Unexpected { status })),
    }
}

pub(super) fn read_object<T>(
    body: &[u8],
    read: impl Fn(&serde_json::Value) -> Result<T, &'static str>,
) -> Result<T, FintocError> {
    serde_json::from_slice::<serde_json::Value>(body)
        .map_err(|e| FintocError::InvalidResponse(e.to_string()))
        .and_then(|v| {
            read(&v).map_err(|field| FintocError::InvalidResponse(format!("no valid {field}")))
        })
}

/// Judges an answer to an expire: the session after it, `None` for a 404, a
/// refusal (a session no longer `created`) as [`judge`] reads refusals.
pub(super) fn judge_expire(status: u16, body: &[u8]) -> Verdict<Option<SessionReport>> {
    judge_action(status, body, SessionReport::from_json)
}

/// Judges an answer to an intent's expire, like [`judge_expire`].
pub(super) fn judge_intent_expire(status: u16, body: &[u8]) -> Verdict<Option<PaymentReport>> {
    judge_action(status, body, PaymentReport::from_json)
}

/// Judges an answer to a refund's cancel, like [`judge_expire`].
pub(super) fn judge_refund_cancel(status: u16, body: &[u8]) -> Verdict<Option<RefundReport>> {
    judge_action(status, body, RefundReport::from_json)
}

/// Judges an answer to an action on an object (`POST …/{id}/expire`,
/// `…/cancel`): the object after it (read with `read`), `None` for a 404, a
/// refusal as [`judge`] reads refusals.
pub(super) fn judge_action<T>(
    status: u16,
    body: &[u8],
    read: impl Fn(&serde_json::Value) -> Result<T, &'static str>,
) -> Verdict<Option<T>> {
    match status {
        200..=299 => Verdict::Done(read_object(body, read).map(Some)),
        404 => Verdict::Done(Ok(None)),
        _ => match judge::<serde_json::Value>(status, body) {
            Verdict::Retry => Verdict::Retry,
            Verdict::Done(Err(e)) => Verdict::Done(Err(e)),
            Verdict::Done(Ok(_)) => unreachable!("judge answers a non-2xx with an error"),
        },
    }
}

/// Judges an answer to a refund's create: the refund (read leniently), or a
/// refusal and retries as for every create.
pub(super) fn judge_refund_create(status: u16, body: &[u8]) -> Verdict<RefundReport> {
    match judge::<serde_json::Value>(status, body) {
        Verdict::Done(Ok(value)) => Verdict::Done(
            RefundReport::from_json(&value)
                .map_err(|field| FintocError::InvalidResponse(format!("no valid {field}"))),
        ),
        Verdict::Done(Err(e)) => Verdict::Done(Err(e)),
        Verdict::Retry => Verdict::Retry,
    }
}

/// Judges an answer to `GET /v1/refunds`: the refunds it lists (each read
/// leniently; one that cannot be read is skipped and logged).
pub(super) fn judge_refund_list(status: u16, body: &[u8]) -> Verdict<Vec<RefundReport>> {
    judge_list(status, body, "refund", RefundReport::from_json)
}

/// Judges an answer to `GET /v1/payment_intents`, like [`judge_refund_list`].
pub(super) fn judge_payment_list(status: u16, body: &[u8]) -> Verdict<Vec<PaymentReport>> {
    judge_list(status, body, "payment intent", PaymentReport::from_json)
}

/// A page of a list: its items read with `read` (one that cannot be read is
/// skipped and logged as a `what`), retries and refusals as [`judge`] reads them.
pub(super) fn judge_list<T>(
    status: u16,
    body: &[u8],
    what: &'static str,
    read: impl Fn(&serde_json::Value) -> Result<T, &'static str>,
) -> Verdict<Vec<T>> {
    match judge::<Vec<serde_json::Value>>(status, body) {
        Verdict::Done(Ok(items)) => Verdict::Done(Ok(items
            .iter()
            .filter_map(|item| {
                read(item)
                    .inspect_err(|field| {
                        tracing::warn!(field, what, "skipping an unreadable item of Fintoc's list")
                    })
                    .ok()
            })
            .collect())),
        Verdict::Done(Err(e)) => Verdict::Done(Err(e)),
        Verdict::Retry => Verdict::Retry,
    }
}

/// Judges an answer to `GET /v1/refunds/{id}`, like [`judge_lookup`].
pub(super) fn judge_refund_lookup(status: u16, body: &[u8]) -> Verdict<Option<RefundReport>> {
    judge_read(status, body, RefundReport::from_json)
}

pub(super) fn judge<T: serde::de::DeserializeOwned>(status: u16, body: &[u8]) -> Verdict<T> {
    match status {
        200..=299 => Verdict::Done(
            serde_json::from_slice::<T>(body)
                .map_err(|e| FintocError::InvalidResponse(e.to_string())),
        ),
        // Timeouts, conflicts, locks, "too early", rate limits and server errors may
        // pass on a retry with the same idempotency key.
        408 | 409 | 423 | 425 | 429 | 500..=599 => Verdict::Retry,
        401 | 403 | 404 | 405 | 406 => Verdict::Done(Err(FintocError::Configuration { status })),
        _ => {
            let error = serde_json::from_slice::<ErrorEnvelope>(body)
                .ok()
                .map(|e| e.error);
            let deterministic = matches!(status, 400 | 402 | 422)
                && error
                    .as_ref()
                    .is_some_and(|e| e.error_type.as_deref() == Some("invalid_request_error"));
            if !deterministic {
                return Verdict::Done(Err(FintocError::Unexpected { status }));
            }
            let field =
                |f: fn(&ErrorBody) -> &Option<String>| error.as_ref().and_then(|e| f(e).clone());
            // What Fintoc says reaches the merchant's caller and the logs, so it is
            // taken only as far as it is safe: a code and param of identifier
            // characters, a message cut short with long digit runs hidden.
            Verdict::Done(Err(FintocError::Rejected {
                status,
                error_type: "invalid_request_error".into(),
                code: field(|e| &e.code)
                    .filter(|c| wire::is_identifier(c))
                    .unwrap_or_else(|| "fintoc_rejected".into()),
                message: field(|e| &e.message)
                    .map(|m| wire::scrub_message(&m))
                    .filter(|m| !m.is_empty())
                    .unwrap_or_else(|| format!("Fintoc rejected the request (HTTP {status}).")),
                param: field(|e| &e.param).filter(|p| wire::is_identifier(p)),
            }))
        }
    }
}
