//! The error every rejection and failure is reported with.

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
    fn body_omits_param_when_absent() {
        let body: serde_json::Value =
            serde_json::from_str(&ApiError::dependency(503, "x", "y").body()).unwrap();
        assert!(body["error"].get("param").is_none());
        assert_eq!(body["error"]["type"], "api_error");
    }
}
