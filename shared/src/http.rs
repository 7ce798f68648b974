//! Mapping use-case answers to `lambda_http` responses.

use crate::error::ApiError;
use crate::service::Reply;
use lambda_http::http::header::{CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER};
use lambda_http::{Body, Response};

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

/// Either answer.
pub fn to_response(result: Result<Reply, ApiError>) -> Response<Body> {
    match result {
        Ok(reply) => reply_response(reply),
        Err(error) => error_response(&error),
    }
}
