//! The widget stand-in: the script the checkout page loads instead of Fintoc's
//! widget, and the endpoints its buttons call (knowing only the widget token, or a
//! checkout session's token).

use crate::config::Finish;
use crate::delivery::finish_intent;
use crate::responses::{error, json_response, HttpResponse};
use crate::state::State;
use http::Method;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

/// The widget stand-in served at `/widget/v1/`.
pub const WIDGET_SCRIPT: &str = include_str!("widget.js");

/// The endpoints the widget stand-in calls: it knows only the widget token, like
/// Fintoc's widget.
pub(crate) fn widget_api(
    state: &Arc<State>,
    method: &Method,
    path: &str,
    body: &[u8],
) -> HttpResponse {
    #[derive(Deserialize)]
    struct WidgetRequest {
        #[serde(default)]
        widget_token: Option<String>,
        #[serde(default)]
        session_token: Option<String>,
        #[serde(default)]
        outcome: Option<String>,
    }
    let request = match serde_json::from_slice::<WidgetRequest>(body) {
        Ok(r) => r,
        Err(e) => {
            return error(
                400,
                "invalid_request_error",
                "invalid_widget_request",
                &e.to_string(),
                None,
            )
        }
    };
    let inner = state.lock();
    if let Some(token) = &request.session_token {
        let Some(id) = inner.session_tokens.get(token).cloned() else {
            return error(
                404,
                "invalid_request_error",
                "invalid_session_token",
                "Unknown session token.",
                Some("session_token"),
            );
        };
        return match (method, path) {
            (&Method::POST, "/session") => {
                let s = &inner.sessions[&id];
                json_response(
                    200,
                    &json!({"id": id, "amount": s.amount, "currency": s.currency, "status": s.status}),
                )
            }
            (&Method::POST, "/complete") => {
                drop(inner);
                let outcome = request.outcome.unwrap_or_default();
                match crate::sessions::pay_session(state, &id, &Finish::outcome(&outcome)) {
                    Ok((attempt, ids)) => json_response(
                        202,
                        &json!({"id": id, "payment_intent": attempt, "event_ids": ids}),
                    ),
                    Err(e) => error(409, "invalid_request_error", "cannot_finish", &e, None),
                }
            }
            _ => error(
                404,
                "invalid_request_error",
                "resource_missing",
                "Unknown widget endpoint.",
                None,
            ),
        };
    }
    let token = request.widget_token.unwrap_or_default();
    let Some(id) = inner.widget_tokens.get(&token).cloned() else {
        return error(
            404,
            "invalid_request_error",
            "invalid_widget_token",
            "Unknown widget token.",
            Some("widget_token"),
        );
    };
    match (method, path) {
        (&Method::POST, "/session") => {
            let pi = &inner.intents[&id];
            json_response(
                200,
                &json!({"id": id, "amount": pi.amount, "currency": pi.currency, "status": pi.status}),
            )
        }
        (&Method::POST, "/complete") => {
            drop(inner);
            let outcome = request.outcome.unwrap_or_default();
            match finish_intent(state, &id, &Finish::outcome(&outcome)) {
                Ok(ids) => json_response(202, &json!({"id": id, "event_ids": ids})),
                Err(e) => error(409, "invalid_request_error", "cannot_finish", &e, None),
            }
        }
        _ => error(
            404,
            "invalid_request_error",
            "resource_missing",
            "Unknown widget endpoint.",
            None,
        ),
    }
}
