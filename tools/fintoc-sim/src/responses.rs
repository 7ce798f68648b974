//! The simulator's JSON answers, in Fintoc's error envelope where they are errors.

use bytes::Bytes;
use http::Response;
use http_body_util::Full;
use serde_json::{json, Value};

/// A response of the simulator's server.
pub(crate) type HttpResponse = Response<Full<Bytes>>;

const DOC_URL: &str = "https://docs.fintoc.com/reference/errors";

/// A JSON answer.
pub(crate) fn json_response(status: u16, body: &Value) -> HttpResponse {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("valid response")
}

/// Fintoc's error envelope.
pub(crate) fn error_body(
    error_type: &str,
    code: &str,
    message: &str,
    param: Option<&str>,
) -> Value {
    json!({"error": {
        "type": error_type,
        "code": code,
        "message": message,
        "param": param,
        "doc_url": DOC_URL,
    }})
}

/// An error answer in Fintoc's envelope.
pub(crate) fn error(
    status: u16,
    error_type: &str,
    code: &str,
    message: &str,
    param: Option<&str>,
) -> HttpResponse {
    json_response(status, &error_body(error_type, code, message, param))
}
