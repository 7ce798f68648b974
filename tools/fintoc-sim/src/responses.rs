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

/// 405 on a known resource's path.
pub(crate) fn method_not_allowed() -> HttpResponse {
    error(
        405,
        "invalid_request_error",
        "method_not_allowed",
        "Method not allowed.",
        None,
    )
}

/// 404 for a path no endpoint serves.
pub(crate) fn unknown_url() -> HttpResponse {
    error(
        404,
        "invalid_request_error",
        "resource_missing",
        "Unrecognized request URL.",
        None,
    )
}

/// 404 for an unknown object of `object` (`payment_intent`, `refund`).
pub(crate) fn no_such(object: &str, id: &str) -> HttpResponse {
    error(
        404,
        "invalid_request_error",
        "resource_missing",
        &format!("No such {object}: {id}"),
        Some("id"),
    )
}

/// One page of `items` (newest first) as Fintoc's page-based lists answer it:
/// `page` and `per_page` (30, at most 300) from `query`, and a `Link: rel="next"`
/// header to `path` when more follow.
pub(crate) fn page_of(
    items: Vec<Value>,
    query: &std::collections::HashMap<&str, &str>,
    path: &str,
) -> HttpResponse {
    let per_page = query
        .get("per_page")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(30)
        .clamp(1, 300);
    let page = query
        .get("page")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let total = items.len();
    let page_items: Vec<Value> = items
        .into_iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .collect();
    let mut response = json_response(200, &json!(page_items));
    if total > page * per_page {
        let link = format!(
            "<{path}?page={}&per_page={per_page}>; rel=\"next\"",
            page + 1
        );
        response
            .headers_mut()
            .insert("link", link.parse().expect("valid header"));
    }
    response
}
