//! The error envelope every rejection and failure is answered with, and the one
//! place where domain and dependency errors get their HTTP status.

use crate::domain::error::{InputError, InputErrorKind};
use crate::fintoc::FintocError;
use crate::store::StoreError;
use crate::webhook::event::EventError;
use crate::webhook::signature::SignatureError;
use serde_json::json;

/// An error answered to API clients as `{"error": {"type", "code", "message"}}`.
///
/// 4xx errors are the client's to fix; 5xx errors are dependency failures that are
/// safe to retry with the same `Idempotency-Key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status code.
    pub status: u16,
    /// Error family, e.g. `invalid_request_error`, `idempotency_error`, `api_error`.
    pub error_type: &'static str,
    /// Stable machine-readable code.
    pub code: String,
    /// Human-readable explanation. Never contains secrets.
    pub message: String,
    /// The request field the error is about, when there is one.
    pub param: Option<String>,
    /// Seconds after which a retry may succeed (sent as `Retry-After`).
    pub retry_after_secs: Option<u64>,
}

impl ApiError {
    /// A new error without `param` or `Retry-After`.
    pub fn new(
        status: u16,
        error_type: &'static str,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            status,
            error_type,
            code: code.into(),
            message: message.into(),
            param: None,
            retry_after_secs: None,
        }
    }

    /// A 4xx `invalid_request_error`.
    pub fn invalid_request(status: u16, code: &str, message: impl Into<String>) -> Self {
        Self::new(status, "invalid_request_error", code, message)
    }

    /// A 400 about one request field.
    pub fn invalid_param(code: &str, param: &str, message: impl Into<String>) -> Self {
        Self::invalid_request(400, code, message).with_param(param)
    }

    /// A 5xx `api_error` caused by a dependency; safe to retry.
    pub fn dependency(status: u16, code: &str, message: impl Into<String>) -> Self {
        Self::new(status, "api_error", code, message)
    }

    /// Names the request field the error is about.
    pub fn with_param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }

    /// Adds a `Retry-After` hint.
    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after_secs = Some(secs);
        self
    }

    /// The JSON body: `{"error": {"type", "code", "message", "param"?}}`.
    pub fn body(&self) -> String {
        let mut error = json!({
            "type": self.error_type,
            "code": self.code,
            "message": self.message,
        });
        if let Some(param) = &self.param {
            error["param"] = json!(param);
        }
        json!({ "error": error }).to_string()
    }
}

impl From<InputError> for ApiError {
    fn from(e: InputError) -> Self {
        let status = match e.kind {
            InputErrorKind::Malformed => 400,
            InputErrorKind::NotFound => 404,
            InputErrorKind::TooLarge => 413,
            InputErrorKind::UnsupportedMediaType => 415,
            InputErrorKind::OverLimit => 422,
        };
        let mut error = Self::invalid_request(status, e.code, e.message);
        error.param = e.param;
        error
    }
}

impl From<SignatureError> for ApiError {
    fn from(e: SignatureError) -> Self {
        Self::new(
            400,
            "signature_error",
            e.code(),
            format!("Webhook refused: {e}."),
        )
    }
}

impl From<EventError> for ApiError {
    fn from(e: EventError) -> Self {
        Self::invalid_request(400, "invalid_event", format!("Webhook refused: {e}."))
    }
}

impl ApiError {
    /// 404 for a path no route serves.
    pub fn route_not_found(method: &str, path: &str) -> Self {
        Self::invalid_request(
            404,
            "route_not_found",
            format!("No route for {method} {path}."),
        )
    }

    /// 405 for a method a route does not serve, naming the methods it does (the
    /// answer carries them as `Allow`: `http::method_not_allowed_response`).
    pub fn method_not_allowed(method: &str, path: &str, allowed: &[&str]) -> Self {
        Self::invalid_request(
            405,
            "method_not_allowed",
            format!(
                "{method} is not allowed on {path}; it allows {}.",
                allowed.join(", ")
            ),
        )
    }

    /// 409: another request with this `Idempotency-Key` holds its lease.
    pub fn request_in_progress(retry_after_secs: u64) -> Self {
        Self::new(
            409,
            "idempotency_error",
            "request_in_progress",
            "A request with this Idempotency-Key is still being processed. Retry later.",
        )
        .with_retry_after(retry_after_secs)
    }

    /// 409: the order has a payment still open — an intent or a checkout session,
    /// whichever flow made it — (or another create holds it). The code stays
    /// `order_has_active_intent` for clients written against the first flow.
    pub fn order_has_active_payment(
        order_id: &str,
        intent_id: Option<&str>,
        retry_after_secs: Option<u64>,
    ) -> Self {
        let order = crate::domain::create::echo(order_id);
        let message = match intent_id {
            Some(id) => format!("Order {order} has an open payment, {id}: finish or wait for it; a new one can be created once it fails, is rejected or expires."),
            None => format!("Another request is creating the payment of order {order}. Retry later."),
        };
        let mut error = Self::new(
            409,
            "invalid_request_error",
            "order_has_active_intent",
            message,
        )
        .with_param("order_id");
        error.retry_after_secs = retry_after_secs;
        error
    }

    /// 409: the order is paid; it is never paid again.
    pub fn order_already_paid(order_id: &str, intent_id: Option<&str>) -> Self {
        let order = crate::domain::create::echo(order_id);
        let by = intent_id.map(|id| format!(" by {id}")).unwrap_or_default();
        Self::new(
            409,
            "invalid_request_error",
            "order_already_paid",
            format!("Order {order} is already paid{by}."),
        )
        .with_param("order_id")
    }

    /// 409: the order's payment needs a human (another amount or currency than
    /// requested); no payment may be made for it until one decides.
    pub fn order_in_review(order_id: &str, intent_id: Option<&str>) -> Self {
        let order = crate::domain::create::echo(order_id);
        let by = intent_id.map(|id| format!(" ({id})")).unwrap_or_default();
        Self::new(
            409,
            "invalid_request_error",
            "order_in_review",
            format!(
                "Order {order} is held for review: its payment{by} was reported at another amount or currency than requested. A human must resolve it first."
            ),
        )
        .with_param("order_id")
    }

    /// 409: the payment did not succeed (or was paid at another amount than
    /// requested, which a human refunds at Fintoc): there is nothing to refund.
    pub fn payment_not_refundable(payment_id: &str, status: &str) -> Self {
        let id = crate::domain::create::echo(payment_id);
        Self::new(
            409,
            "invalid_request_error",
            "payment_not_refundable",
            format!("Payment {id} cannot be refunded: its status is {status}, and only a payment that succeeded at the amount requested can be."),
        )
    }

    /// 409: more than what is still refundable (what the payment paid, less what
    /// its refunds hold).
    pub fn refund_exceeds_refundable(payment_id: &str, refundable: u64) -> Self {
        let id = crate::domain::create::echo(payment_id);
        Self::new(
            409,
            "invalid_request_error",
            "refund_exceeds_refundable",
            format!("Payment {id} has {refundable} left to refund (minor units); a refund may not exceed it."),
        )
        .with_param("amount")
    }

    /// 409: the payment holds as many refunds as it may
    /// (`domain::refund::MAX_REFUNDS_PER_PAYMENT`).
    pub fn refund_limit_reached(payment_id: &str) -> Self {
        let id = crate::domain::create::echo(payment_id);
        Self::new(
            409,
            "invalid_request_error",
            "refund_limit_reached",
            format!("Payment {id} has {} refunds, as many as one payment may have; refund what is left at Fintoc.", crate::domain::refund::MAX_REFUNDS_PER_PAYMENT),
        )
    }

    /// 409: the refund is past the point where it can be canceled.
    pub fn refund_not_cancelable(status: &str) -> Self {
        Self::new(
            409,
            "invalid_request_error",
            "refund_not_cancelable",
            format!("This refund is {status}: only a refund Fintoc has not started to pay out (pending) can be canceled."),
        )
    }

    /// 422: the `Idempotency-Key` was used with another request.
    pub fn idempotency_key_reused() -> Self {
        Self::new(
            422,
            "idempotency_error",
            "idempotency_key_reused",
            "This Idempotency-Key was already used with a different request. Use a new key for a new payment.",
        )
    }

    /// A storage failure of an API request: 503 (retry with the same key) when
    /// DynamoDB is unavailable, 500 when stored data needs a human.
    pub fn storage(e: &StoreError) -> Self {
        match e {
            StoreError::Unavailable { .. } => Self::dependency(
                503,
                "storage_unavailable",
                "The payment store is temporarily unavailable. Retry with the same Idempotency-Key.",
            )
            .with_retry_after(1),
            StoreError::Malformed(_) | StoreError::Conflict(_) => Self::dependency(
                500,
                "storage_inconsistent",
                "Stored payment data is inconsistent; the operator has been alerted.",
            ),
        }
    }

    /// A storage failure while recording a webhook event: always 503, so Fintoc
    /// delivers the event again.
    pub fn event_not_recorded() -> Self {
        Self::dependency(
            503,
            "storage_unavailable",
            "The event could not be recorded; it will be retried.",
        )
        .with_retry_after(1)
    }
}

impl From<&FintocError> for ApiError {
    fn from(e: &FintocError) -> Self {
        match e {
            FintocError::Rejected {
                status,
                error_type,
                code,
                message,
                param,
            } => {
                let status = if matches!(status, 400 | 402 | 409 | 422) { *status } else { 400 };
                let error_type: &'static str = match error_type.as_str() {
                    "invalid_request_error" => "invalid_request_error",
                    "institution_error" => "institution_error",
                    "link_error" => "link_error",
                    _ => "fintoc_error",
                };
                let mut err = Self::new(status, error_type, code.clone(), format!("Fintoc: {message}"));
                err.param = param.clone();
                err
            }
            FintocError::Configuration { status } => Self::dependency(
                502,
                "fintoc_configuration_error",
                format!("Fintoc refused this backend's credentials or endpoint (HTTP {status}). The operator must check the Fintoc secret key and base URL."),
            ),
            FintocError::Unavailable { status: 429, .. } => Self::dependency(
                503,
                "fintoc_rate_limited",
                "Fintoc is rate limiting this account. Retry with the same Idempotency-Key.",
            )
            .with_retry_after(2),
            FintocError::Unavailable { status, .. } => Self::dependency(
                502,
                "fintoc_unavailable",
                format!("Fintoc is unavailable (HTTP {status}). Retry with the same Idempotency-Key."),
            ),
            FintocError::NoAnswer { timed_out: true, .. } => Self::dependency(
                504,
                "fintoc_timeout",
                "Fintoc did not answer in time. Retry with the same Idempotency-Key: no duplicate payment can be created.",
            ),
            FintocError::NoAnswer { .. } => Self::dependency(
                502,
                "fintoc_unreachable",
                "Fintoc could not be reached. Retry with the same Idempotency-Key.",
            ),
            FintocError::Unexpected { status } => Self::dependency(
                502,
                "fintoc_unexpected_answer",
                format!("Fintoc answered HTTP {status} unexpectedly. Retry with the same Idempotency-Key."),
            ),
            FintocError::InvalidResponse(_) => Self::dependency(
                502,
                "fintoc_invalid_response",
                "Fintoc answered something unexpected. Retry with the same Idempotency-Key.",
            ),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_the_error_envelope() {
        let err = ApiError::invalid_param("invalid_amount", "amount", "bad").with_retry_after(3);
        let body: serde_json::Value = serde_json::from_str(&err.body()).unwrap();
        assert_eq!(body["error"]["type"], "invalid_request_error");
        assert_eq!(body["error"]["code"], "invalid_amount");
        assert_eq!(body["error"]["message"], "bad");
        assert_eq!(body["error"]["param"], "amount");
    }

    #[test]
    fn each_input_error_kind_has_its_status() {
        for (kind, status) in [
            (InputErrorKind::Malformed, 400),
            (InputErrorKind::NotFound, 404),
            (InputErrorKind::TooLarge, 413),
            (InputErrorKind::UnsupportedMediaType, 415),
            (InputErrorKind::OverLimit, 422),
        ] {
            let e = ApiError::from(InputError::new(kind, "c", "m").with_param("p"));
            assert_eq!((e.status, e.code.as_str()), (status, "c"));
            assert_eq!(e.param.as_deref(), Some("p"));
            assert_eq!(e.error_type, "invalid_request_error");
        }
    }

    #[test]
    fn fintoc_rejections_keep_fintocs_code_and_4xx() {
        let e = ApiError::from(&FintocError::Rejected {
            status: 409,
            error_type: "weird".into(),
            code: "c".into(),
            message: "m".into(),
            param: None,
        });
        assert_eq!(
            (e.status, e.error_type, e.code.as_str()),
            (409, "fintoc_error", "c")
        );
        let e = ApiError::from(&FintocError::Rejected {
            status: 418,
            error_type: "invalid_request_error".into(),
            code: "c".into(),
            message: "m".into(),
            param: None,
        });
        assert_eq!(e.status, 400);
        let e = ApiError::from(&FintocError::Unavailable {
            status: 429,
            attempts: 3,
        });
        assert_eq!((e.status, e.retry_after_secs), (503, Some(2)));
    }

    #[test]
    fn body_omits_param_when_absent() {
        let body: serde_json::Value =
            serde_json::from_str(&ApiError::dependency(503, "x", "y").body()).unwrap();
        assert!(body["error"].get("param").is_none());
        assert_eq!(body["error"]["type"], "api_error");
    }
}
