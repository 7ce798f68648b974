//! Checkout Sessions as the simulator serves them: create (with
//! `Idempotency-Key`), get and expire under `/v1` and `/v2`, the `/v2` list with
//! cursors, a payment attempt per payer action (each a payment intent carrying the
//! session's metadata), expiry on the simulator's clock, and the hosted payment
//! page at `redirect_url`.

use crate::config::Finish;
use crate::create_core::{
    create_with_idempotency, invalid, payment_params, recipient, ApiRequest, PaymentParams,
};
use crate::delivery::{dispatch, event, finish_intent};
use crate::responses::{error, json_response, HttpResponse};
use crate::state::{random_token, Inner, SimIntent, SimSession, State};
use crate::status::PaymentStatus;
use http::Method;
use serde_json::{json, Map, Value};
use shared::clock::format_rfc3339_ms;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// How long a session lives: Fintoc's example shows 24 hours.
pub const SESSION_TTL_MS: i64 = 24 * 3_600_000;

/// The first API version that serves `/v2/checkout_sessions`.
pub const V2_MIN_VERSION: &str = "2026-02-01";

fn not_found(id: &str) -> HttpResponse {
    error(
        404,
        "invalid_request_error",
        "resource_missing",
        &format!("No such checkout_session: {id}"),
        Some("id"),
    )
}

/// Answers `/v1/checkout_sessions...` and `/v2/checkout_sessions...`.
pub(crate) fn session_api(
    state: &Arc<State>,
    inner: &mut Inner,
    request: &ApiRequest<'_>,
) -> HttpResponse {
    let (api, rest) = match request.segments {
        [api @ ("v1" | "v2"), "checkout_sessions", rest @ ..] => (*api, rest),
        _ => {
            return error(
                404,
                "invalid_request_error",
                "resource_missing",
                "Unrecognized request URL.",
                None,
            )
        }
    };
    if api == "v2" && request.version.is_none_or(|v| v < V2_MIN_VERSION) {
        return error(
            400,
            "invalid_request_error",
            "api_version_not_supported",
            &format!("/v2/checkout_sessions needs Fintoc-Version {V2_MIN_VERSION} or later."),
            None,
        );
    }
    match (request.method, rest) {
        (&Method::POST, []) => {
            let now_ms = state.now_ms();
            let public_url = state.public_url.clone();
            let mode = request.mode;
            create_with_idempotency(
                inner,
                now_ms,
                request.api_key,
                request.idempotency_key,
                "checkout_sessions",
                request.body,
                |inner, params| create(inner, mode, now_ms, &public_url, params),
            )
        }
        (&Method::GET, []) if api == "v2" => list(inner, request.query),
        (&Method::GET, [id]) => {
            inner.session_lookups += 1;
            match inner.sessions.get(*id) {
                Some(session) => json_response(200, &session.to_json(&inner.intents)),
                None => not_found(id),
            }
        }
        (&Method::POST, [id, "expire"]) => {
            let now = state.now_rfc3339();
            match expire(state, inner, id, &now, false) {
                Ok(json) => json_response(200, &json),
                Err(response) => *response,
            }
        }
        _ => error(
            405,
            "invalid_request_error",
            "method_not_allowed",
            "Method not allowed.",
            None,
        ),
    }
}

fn url(params: &Map<String, Value>, field: &str) -> Result<Option<String>, (u16, Value)> {
    match params.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(u)) if u.starts_with("https://") || u.starts_with("http://") => {
            Ok(Some(u.clone()))
        }
        Some(_) => Err(invalid(
            "invalid_url",
            field,
            &format!("{field} must be an http(s) URL."),
        )),
    }
}

fn create(
    inner: &mut Inner,
    mode: &'static str,
    now_ms: i64,
    public_url: &str,
    params: &Map<String, Value>,
) -> (u16, Value) {
    let parsed = (|| {
        let payment = payment_params(params)?;
        let options = params
            .get("payment_method_options")
            .cloned()
            .unwrap_or(json!({}));
        let recipient = recipient(
            options.pointer("/bank_transfer/recipient_account"),
            "payment_method_options[bank_transfer][recipient_account]",
        )?;
        Ok((
            payment,
            options,
            recipient,
            url(params, "success_url")?,
            url(params, "cancel_url")?,
        ))
    })();
    let (
        PaymentParams {
            amount,
            currency,
            metadata,
            customer_email,
        },
        options,
        _recipient,
        success_url,
        cancel_url,
    ) = match parsed {
        Ok(parsed) => parsed,
        Err(refusal) => return refusal,
    };
    let id = format!("cs_{}", random_token(24));
    let token = format!("{id}_sec_{}", random_token(24));
    let session = SimSession {
        id: id.clone(),
        object: "checkout_session",
        amount,
        currency,
        status: "created",
        flow: "payment",
        customer_email,
        metadata,
        success_url,
        cancel_url,
        redirect_url: format!("{public_url}/checkout/{id}"),
        expires_at: format_rfc3339_ms(now_ms + SESSION_TTL_MS),
        expires_at_ms: now_ms + SESSION_TTL_MS,
        created_at: format_rfc3339_ms(now_ms),
        mode,
        payment_method_types: vec!["bank_transfer"],
        payment_method_options: options,
        attempts: Vec::new(),
    };
    let mut json = session.to_json(&inner.intents);
    json["session_token"] = json!(token);
    inner.sessions.insert(id.clone(), session);
    inner.session_tokens.insert(token, id.clone());
    inner.session_order.push(id);
    inner.sessions_created += 1;
    (201, json)
}

/// `GET /v2/checkout_sessions`: newest first, `limit` (1–100, default 10),
/// `starting_after` / `ending_before` cursors, the next page in `Link`.
fn list(inner: &Inner, query: &str) -> HttpResponse {
    let params: HashMap<&str, &str> = query.split('&').filter_map(|p| p.split_once('=')).collect();
    let limit = params
        .get("limit")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(10)
        .clamp(1, 100);
    let newest_first: Vec<&String> = inner.session_order.iter().rev().collect();
    let position = |id: &str| newest_first.iter().position(|s| s.as_str() == id);
    let (start, end) = match (params.get("starting_after"), params.get("ending_before")) {
        (Some(after), _) => match position(after) {
            Some(p) => (p + 1, (p + 1 + limit).min(newest_first.len())),
            None => return not_found(after),
        },
        (None, Some(before)) => match position(before) {
            Some(p) => (p.saturating_sub(limit), p),
            None => return not_found(before),
        },
        (None, None) => (0, limit.min(newest_first.len())),
    };
    let page: Vec<Value> = newest_first[start..end]
        .iter()
        .filter_map(|id| inner.sessions.get(*id))
        .map(|s| s.to_json(&inner.intents))
        .collect();
    let has_more = end < newest_first.len();
    let mut response = json_response(
        200,
        &json!({"object": "list", "data": page, "has_more": has_more}),
    );
    if let (true, Some(last)) = (has_more, newest_first[start..end].last()) {
        let link =
            format!("</v2/checkout_sessions?limit={limit}&starting_after={last}>; rel=\"next\"");
        response
            .headers_mut()
            .insert("link", link.parse().expect("valid header"));
    }
    response
}

/// Expires a session: only while `created` (or, when `by_clock`, while not
/// finished); a payment still open expires with it. Its events go out.
fn expire(
    state: &Arc<State>,
    inner: &mut Inner,
    id: &str,
    now: &str,
    by_clock: bool,
) -> Result<Value, Box<HttpResponse>> {
    let Some(session) = inner.sessions.get(id) else {
        return Err(Box::new(not_found(id)));
    };
    let expirable = session.status == "created" || (by_clock && session.status == "in_progress");
    if !expirable {
        return Err(Box::new(error(
            400,
            "invalid_request_error",
            "checkout_session_not_expirable",
            &format!(
                "Checkout session {id} is {}: only a created session can be expired.",
                session.status
            ),
            None,
        )));
    }
    let mut events = Vec::new();
    if let Some(pi) = session
        .attempts
        .last()
        .and_then(|pi| inner.intents.get_mut(pi))
    {
        if !pi.status.is_final() {
            pi.status = PaymentStatus::Expired;
            pi.error_reason = Some("manually_expired".into());
            events.push(event("payment_intent.expired", pi.mode, now, pi.to_json()));
        }
    }
    let session = inner.sessions.get_mut(id).expect("looked up above");
    session.status = "expired";
    let json = session.clone().to_json(&inner.intents);
    events.push(event(
        "checkout_session.expired",
        session.mode,
        now,
        json.clone(),
    ));
    dispatch(state, inner, events, false, false);
    Ok(json)
}

/// Expires every open session whose time has passed on the simulator's clock.
pub(crate) fn expire_due_sessions(state: &Arc<State>) {
    let now_ms = state.now_ms();
    let now = state.now_rfc3339();
    let mut inner = state.lock();
    let due: Vec<String> = inner
        .sessions
        .values()
        .filter(|s| matches!(s.status, "created" | "in_progress") && s.expires_at_ms <= now_ms)
        .map(|s| s.id.clone())
        .collect();
    for id in due {
        let _ = expire(state, &mut inner, &id, &now, true);
    }
}

/// Starts a payment attempt on a session (the payer acts in the widget or on the
/// hosted page): a new payment intent with the session's amount, currency,
/// recipient and metadata, `in_progress`. Returns its id.
pub(crate) fn start_attempt(
    state: &State,
    inner: &mut Inner,
    session_id: &str,
) -> Result<String, String> {
    let session = inner
        .sessions
        .get_mut(session_id)
        .ok_or_else(|| format!("no such checkout_session: {session_id}"))?;
    if !matches!(session.status, "created" | "in_progress") {
        return Err(format!(
            "checkout session {session_id} is {}",
            session.status
        ));
    }
    if let Some(open) = session.attempts.last().and_then(|pi| inner.intents.get(pi)) {
        if !open.status.is_final() {
            return Err(format!(
                "checkout session {session_id} has a payment in progress"
            ));
        }
    }
    let id = format!("pi_{}", random_token(27));
    let recipient = session
        .payment_method_options
        .pointer("/bank_transfer/recipient_account")
        .and_then(|r| recipient(Some(r), "recipient").ok().flatten());
    let intent = SimIntent {
        id: id.clone(),
        object: "payment_intent",
        amount: session.amount,
        currency: session.currency.clone(),
        status: PaymentStatus::InProgress,
        widget_token: None,
        metadata: session.metadata.clone(),
        customer_email: session.customer_email.clone(),
        error_reason: None,
        expires_at: None,
        created_at: state.now_rfc3339(),
        transaction_date: None,
        reference_id: None,
        mode: session.mode,
        payment_type: "bank_transfer",
        payment_type_options: BTreeMap::new(),
        recipient_account: recipient,
        sender_account: None,
        business_profile: None,
    };
    session.status = "in_progress";
    session.attempts.push(id.clone());
    inner.intents.insert(id.clone(), intent);
    inner
        .intent_sessions
        .insert(id.clone(), session_id.to_string());
    inner.order.push(id.clone());
    Ok(id)
}

/// The payer pays (or fails) inside a session: a new attempt, finished as asked.
/// Returns the attempt's id and the event ids.
pub(crate) fn pay_session(
    state: &Arc<State>,
    session_id: &str,
    finish: &Finish,
) -> Result<(String, Vec<String>), String> {
    let attempt = {
        let mut inner = state.lock();
        start_attempt(state, &mut inner, session_id)?
    };
    let events = finish_intent(state, &attempt, finish)?;
    Ok((attempt, events))
}

/// The hosted payment page stand-in served at a session's `redirect_url`.
pub const HOSTED_PAGE: &str = include_str!("hosted_page.html");

/// `GET /checkout/{id}`: the hosted page, with the session's id in it.
pub(crate) fn hosted_page(state: &State, id: &str) -> HttpResponse {
    let inner = state.lock();
    let Some(session) = inner.sessions.get(id) else {
        return not_found(id);
    };
    let html = HOSTED_PAGE
        .replace("{{SESSION_ID}}", &session.id)
        .replace("{{AMOUNT}}", &session.amount.to_string())
        .replace("{{CURRENCY}}", &session.currency);
    http::Response::builder()
        .header("content-type", "text/html; charset=utf-8")
        .header("cache-control", "no-store")
        .body(http_body_util::Full::new(bytes::Bytes::from(html)))
        .expect("valid response")
}

/// `POST /_sim/checkout/{id}/complete` `{"outcome"}` — what the hosted page's
/// buttons call: `succeeded`, `rejected` or `failed` make an attempt; `cancel`
/// makes none. Answers where the page sends the payer (`redirect`, or `null` to
/// stay and try again).
pub(crate) fn hosted_complete(state: &Arc<State>, id: &str, body: &[u8]) -> HttpResponse {
    let outcome = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("outcome").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_default();
    let (success_url, cancel_url) = {
        let inner = state.lock();
        match inner.sessions.get(id) {
            Some(s) => (s.success_url.clone(), s.cancel_url.clone()),
            None => return not_found(id),
        }
    };
    if outcome == "cancel" {
        return json_response(200, &json!({"redirect": cancel_url}));
    }
    match pay_session(state, id, &Finish::outcome(&outcome)) {
        Ok((attempt, events)) => {
            let redirect = if outcome == "succeeded" {
                success_url
            } else {
                None
            };
            json_response(
                202,
                &json!({"payment_intent": attempt, "event_ids": events, "redirect": redirect}),
            )
        }
        Err(e) => error(409, "invalid_request_error", "cannot_pay", &e, None),
    }
}
