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

/// A request's query string, percent-decoded (a key given twice: its last value).
pub(crate) fn query_params(query: &str) -> std::collections::HashMap<String, String> {
    reqwest::Url::parse(&format!("http://query.invalid/?{query}"))
        .map(|url| url.query_pairs().into_owned().collect())
        .unwrap_or_default()
}

/// One page of `items` (newest first) as Fintoc's page-based lists answer it:
/// `page` and `per_page` (30, at most 300) from `query`, and a `Link: rel="next"`
/// header to the same list at `url` (absolute, every other parameter kept) when
/// more follow.
pub(crate) fn page_of(
    items: Vec<Value>,
    query: &std::collections::HashMap<String, String>,
    url: &str,
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
        let mut next = reqwest::Url::parse(url).expect("the simulator's own URL");
        {
            let mut pairs = next.query_pairs_mut();
            let mut kept: Vec<_> = query
                .iter()
                .filter(|(k, _)| !matches!(k.as_str(), "page" | "per_page"))
                .collect();
            kept.sort();
            for (k, v) in kept {
                pairs.append_pair(k, v);
            }
            pairs
                .append_pair("page", &(page + 1).to_string())
                .append_pair("per_page", &per_page.to_string());
        }
        let link = format!("<{next}>; rel=\"next\"");
        response
            .headers_mut()
            .insert("link", link.parse().expect("valid header"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_links_to_the_next_with_every_other_parameter_kept() {
        let query = query_params("since=2026-12-01T00%3A00%3A00Z&per_page=2&status=pending");
        assert_eq!(query["since"], "2026-12-01T00:00:00Z", "percent-decoded");
        let items: Vec<Value> = (0..5).map(|i| json!(i)).collect();
        let first = page_of(items.clone(), &query, "http://127.0.0.1:9/v1/refunds");
        let link = first.headers()["link"].to_str().unwrap().to_string();
        assert_eq!(
            link,
            "<http://127.0.0.1:9/v1/refunds?since=2026-12-01T00%3A00%3A00Z&status=pending&page=2&per_page=2>; rel=\"next\""
        );
        let last = page_of(
            items,
            &query_params("per_page=2&page=3"),
            "http://127.0.0.1:9/v1/refunds",
        );
        assert!(
            last.headers().get("link").is_none(),
            "no page after the last"
        );
    }
}
