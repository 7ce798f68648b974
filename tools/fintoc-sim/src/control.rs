//! The control API (`/_sim/...`), not part of Fintoc's: health, stats, fault
//! injection, webhook registration, finishing intents, deliveries, reset.

use crate::config::{DeliveryMode, Fault, Finish, WebhookEndpoint};
use crate::delivery::finish_intent;
use crate::due::release_due_holds;
use crate::responses::{error, json_response, HttpResponse};
use crate::state::{Inner, State};
use http::Method;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

/// Documentation of the control API, printed by `fintoc-sim --help`.
pub const CONTROL_API: &str = "\
Control API (not part of Fintoc's API; for tests and local development):
  GET    /_sim/health   200 {\"ok\": true}
  GET    /_sim/stats    {\"intents_created\", \"api_requests\", \"faults_pending\"}
  POST   /_sim/faults   queue faults for the next API requests, in order:
                        {\"faults\": [{\"type\": \"status\", \"status\": 500},
                                    {\"type\": \"rate_limit\", \"retry_after_secs\": 1},
                                    {\"type\": \"latency\", \"ms\": 3000},
                                    {\"type\": \"drop\"},
                                    {\"type\": \"refuse\", \"status\": 400, \"code\": \"x\"},
                                    {\"type\": \"failure\", \"status\": 500,
                                     \"made\": false}]}
                        status/rate_limit/refuse answer before doing anything
                        (refuse: an invalid_request_error); failure fails a
                        create inside the API (made: after making its object),
                        its 5xx stored under its idempotency key and replayed
                        to its retries; latency
                        and drop do the work, then answer late / close the
                        connection without answering.
  DELETE /_sim/faults   clear queued faults
  POST   /_sim/webhook  register the webhook endpoint: {\"url\": \"...\", \"secret\": \"whsec_...\"}
  POST   /_sim/payment_intents/{id}/finish
                        finish an intent and deliver its signed events:
                        {\"outcome\": \"succeeded\" | \"failed\" | \"rejected\" | \"expired\",
                         \"via_pending\": false, \"duplicate\": false,
                         \"out_of_order\": false, \"error_reason\": null,
                         \"pending_until_ms\": null, \"retyped\": false}
                        Delivery retries non-2xx answers and timeouts with
                        exponential backoff, like Fintoc. pending_until_ms holds
                        the intent pending (its pending event sent now) until the
                        simulator's clock reaches it; retyped sends optional
                        fields in other JSON types.
  POST   /_sim/refunds/{id}/settle
                        move a refund on and deliver its signed refund.* events:
                        {\"outcome\": \"in_progress\" | \"succeeded\" | \"failed\" |
                         \"insufficient_balance\" (in_progress now; failed with
                         insufficient_funds 5 business days later on the clock),
                         \"failure_code\": \"insufficient_funds\", \"duplicate\": false,
                         \"out_of_order\": false}
  POST   /_sim/checkout_sessions/{id}/pay
                        the payer pays inside a session: a new payment intent
                        (an attempt, with the session's metadata) finished like
                        /finish above (same body); a success finishes the
                        session (payment_intent.* events, then
                        checkout_session.finished). Failed or rejected attempts
                        leave the session in_progress for another attempt;
                        sessions expire (checkout_session.expired) when the
                        simulator's clock passes expires_at (24 h)
  POST   /_sim/deliveries/mode  {\"mode\": \"normal\" | \"off\" | \"wrong_secret\"}: events
                        delivered, never delivered (endpoint down for the whole
                        retry window), or signed with a wrong secret
  GET    /_sim/clock    the simulator's time
  POST   /_sim/clock    {\"advance_ms\": n} or {\"now_ms\": t}: move it forward
                        (held intents whose time has come then finish)
  GET    /_sim/deliveries  every delivery: event id, type, attempts, last status
  POST   /_sim/reset    forget every intent, idempotency key, fault and counter

Widget stand-in (what the checkout page loads instead of https://js.fintoc.com/v1/):
  GET    /widget/v1/    a script defining `Fintoc.create({holderType, product,
                        publicKey, widgetToken, onSuccess, onExit, onEvent})`,
                        whose dialog has Pay / Reject / Fail / Close buttons
  POST   /_sim/widget/session   {\"widget_token\"} -> the intent's id, amount, currency
  POST   /_sim/widget/complete  {\"widget_token\", \"outcome\"}: what the buttons call;
                        finishes the intent like /_sim/payment_intents/{id}/finish
  (both answer any origin: the page is served from another port)
  Fintoc.create({publicKey, sessionToken, onSuccess, onExit}) opens the same
  dialog for a checkout session ({\"session_token\"} in both calls above).

Hosted payment page stand-in (a session's redirect_url):
  GET    /checkout/{id}  Pay / Reject / Fail / Cancel; Pay goes back to the
                        session's success_url, Cancel to its cancel_url
  POST   /_sim/checkout/{id}/complete  {\"outcome\"}: what its buttons call";

/// A `finish` / `pay` body, or the 400 that refuses it.
fn parse_finish(body: &[u8]) -> Result<Finish, Box<HttpResponse>> {
    serde_json::from_slice::<Finish>(body).map_err(|e| {
        Box::new(error(
            400,
            "invalid_request_error",
            "invalid_finish",
            &e.to_string(),
            None,
        ))
    })
}

/// Answers one request to the control API (`/_sim/...`).
pub(crate) fn control_api(
    state: &Arc<State>,
    method: &Method,
    path: &str,
    body: &[u8],
) -> HttpResponse {
    let mut inner = state.lock();
    match (method, path) {
        (&Method::GET, "/health") => json_response(200, &json!({"ok": true})),
        (&Method::GET, "/stats") => json_response(
            200,
            &json!({
                "intents_created": inner.intents_created,
                "api_requests": inner.api_requests,
                "lookups": inner.lookups,
                "delivery_mode": inner.delivery_mode,
                "held_intents": inner.holds.len(),
                "sessions_created": inner.sessions_created,
                "session_lookups": inner.session_lookups,
                "unversioned_requests": inner.unversioned_requests,
                "last_api_version": inner.last_api_version,
                "faults_pending": inner.faults.len(),
                "refunds_created": inner.refunds_created,
                "refund_lookups": inner.refund_lookups,
            }),
        ),
        (&Method::POST, "/faults") => {
            #[derive(Deserialize)]
            struct Faults {
                faults: Vec<Fault>,
            }
            match serde_json::from_slice::<Faults>(body) {
                Ok(f) => {
                    inner.faults.extend(f.faults);
                    json_response(200, &json!({"faults_pending": inner.faults.len()}))
                }
                Err(e) => error(
                    400,
                    "invalid_request_error",
                    "invalid_faults",
                    &e.to_string(),
                    Some("faults"),
                ),
            }
        }
        (&Method::GET, "/deliveries") => json_response(200, &json!(inner.deliveries)),
        (&Method::POST, "/deliveries/mode") => {
            #[derive(Deserialize)]
            struct Mode {
                mode: DeliveryMode,
            }
            match serde_json::from_slice::<Mode>(body) {
                Ok(m) => {
                    inner.delivery_mode = m.mode;
                    json_response(200, &json!({"mode": m.mode}))
                }
                Err(e) => error(
                    400,
                    "invalid_request_error",
                    "invalid_mode",
                    &e.to_string(),
                    Some("mode"),
                ),
            }
        }
        (&Method::GET, "/clock") => {
            drop(inner);
            json_response(
                200,
                &json!({"now_ms": state.now_ms(), "now": state.now_rfc3339()}),
            )
        }
        (&Method::POST, "/clock") => {
            #[derive(Deserialize)]
            struct Move {
                #[serde(default)]
                advance_ms: Option<i64>,
                #[serde(default)]
                now_ms: Option<i64>,
            }
            drop(inner);
            let delta = match serde_json::from_slice::<Move>(body) {
                Ok(Move {
                    advance_ms: Some(d),
                    now_ms: None,
                }) if d >= 0 => d,
                Ok(Move {
                    advance_ms: None,
                    now_ms: Some(t),
                }) if t >= state.now_ms() => t - state.now_ms(),
                _ => {
                    return error(
                        400,
                        "invalid_request_error",
                        "invalid_clock",
                        "Send {\"advance_ms\": n >= 0} or {\"now_ms\": t} not in the past.",
                        None,
                    )
                }
            };
            state
                .clock_offset_ms
                .fetch_add(delta, std::sync::atomic::Ordering::SeqCst);
            release_due_holds(state);
            json_response(
                200,
                &json!({"now_ms": state.now_ms(), "now": state.now_rfc3339()}),
            )
        }
        (&Method::POST, "/webhook") => match serde_json::from_slice::<WebhookEndpoint>(body) {
            Ok(endpoint) => {
                inner.webhook = Some(endpoint);
                json_response(200, &json!({"ok": true}))
            }
            Err(e) => error(
                400,
                "invalid_request_error",
                "invalid_webhook",
                &e.to_string(),
                None,
            ),
        },
        (&Method::POST, p) if p.starts_with("/payment_intents/") && p.ends_with("/finish") => {
            let id = p
                .trim_start_matches("/payment_intents/")
                .trim_end_matches("/finish")
                .to_string();
            let finish = match parse_finish(body) {
                Ok(f) => f,
                Err(refusal) => return *refusal,
            };
            drop(inner);
            match finish_intent(state, &id, &finish) {
                Ok(ids) => json_response(202, &json!({"event_ids": ids})),
                Err(e) => error(400, "invalid_request_error", "cannot_finish", &e, None),
            }
        }
        (&Method::POST, p) if p.starts_with("/checkout_sessions/") && p.ends_with("/pay") => {
            let id = p
                .trim_start_matches("/checkout_sessions/")
                .trim_end_matches("/pay")
                .to_string();
            let finish = match parse_finish(body) {
                Ok(f) => f,
                Err(refusal) => return *refusal,
            };
            drop(inner);
            match crate::sessions::pay_session(state, &id, &finish) {
                Ok((attempt, ids)) => {
                    json_response(202, &json!({"payment_intent": attempt, "event_ids": ids}))
                }
                Err(e) => error(400, "invalid_request_error", "cannot_pay", &e, None),
            }
        }
        (&Method::POST, p) if p.starts_with("/refunds/") && p.ends_with("/settle") => {
            let id = p
                .trim_start_matches("/refunds/")
                .trim_end_matches("/settle")
                .to_string();
            let settle = match serde_json::from_slice::<crate::config::Settle>(body) {
                Ok(s) => s,
                Err(e) => {
                    return error(
                        400,
                        "invalid_request_error",
                        "invalid_settle",
                        &e.to_string(),
                        None,
                    )
                }
            };
            drop(inner);
            match crate::refunds::settle_refund(state, &id, &settle) {
                Ok(ids) => json_response(202, &json!({"event_ids": ids})),
                Err(e) => error(400, "invalid_request_error", "cannot_settle", &e, None),
            }
        }
        (&Method::DELETE, "/faults") => {
            inner.faults.clear();
            json_response(200, &json!({"faults_pending": 0}))
        }
        (&Method::POST, "/reset") => {
            let webhook = inner.webhook.take();
            *inner = Inner {
                webhook,
                ..Inner::default()
            };
            json_response(200, &json!({"ok": true}))
        }
        _ => error(
            404,
            "invalid_request_error",
            "resource_missing",
            "Unknown control endpoint.",
            None,
        ),
    }
}
