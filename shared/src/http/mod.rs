//! The HTTP contract at the edge: the replies and the error envelope the use cases
//! answer with, and their rendering as `lambda_http` responses.

pub mod error;

pub use error::ApiError;
use lambda_http::http::header::{ALLOW, CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER};
use lambda_http::{Body, Response};

/// A successful answer: status and JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// JSON body.
    pub body: String,
    /// True when this is a stored response answered again.
    pub replayed: bool,
}

impl Reply {
    /// A first-time answer.
    pub fn new(status: u16, body: String) -> Self {
        Self {
            status,
            body,
            replayed: false,
        }
    }
}

/// A JSON response that no cache keeps.
pub fn json_response(status: u16, body: String) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(CONTENT_TYPE, "application/json")
        .header(CACHE_CONTROL, "no-store")
        .body(Body::Text(body))
        .expect("static headers are valid")
}

/// A use-case answer; replays carry `Idempotent-Replayed: true`.
pub fn reply_response(reply: Reply) -> Response<Body> {
    let mut response = json_response(reply.status, reply.body);
    if reply.replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", "true".parse().expect("valid header"));
    }
    response
}

/// An error with its JSON envelope and, when set, `Retry-After`.
pub fn error_response(error: &ApiError) -> Response<Body> {
    let mut response = json_response(error.status, error.body());
    if let Some(secs) = error.retry_after_secs {
        response.headers_mut().insert(
            RETRY_AFTER,
            secs.to_string().parse().expect("digits are a valid header"),
        );
    }
    response
}

/// The 405 for `method` on `path`, whose routes take `allowed`: the error
/// envelope, with `Allow` listing them (RFC 9110).
pub fn method_not_allowed_response(method: &str, path: &str, allowed: &[&str]) -> Response<Body> {
    let mut response = error_response(&ApiError::method_not_allowed(method, path, allowed));
    let allow = allowed.join(", ");
    response.headers_mut().insert(
        ALLOW,
        allow.parse().expect("method names are a valid header"),
    );
    response
}

/// Either answer.
pub fn to_response(result: Result<Reply, ApiError>) -> Response<Body> {
    match result {
        Ok(reply) => reply_response(reply),
        Err(error) => error_response(&error),
    }
}
