//! A Fintoc API simulator for tests and local development.
//!
//! It serves, on loopback, the Fintoc endpoints this product uses and behaves like
//! the real API as documented (see `fintoc.md` in the project's reference):
//!
//! - raw-key `Authorization` header; anything else is a 401 with Fintoc's envelope;
//! - `POST /v1/payment_intents`, `GET /v1/payment_intents[/{id}]`,
//!   `POST /v1/payment_intents/{id}/expire`;
//! - `Idempotency-Key` on POST: the first status and body are stored and replayed;
//!   the same key with different parameters is an error; nothing is stored when
//!   authentication fails;
//! - validation errors in the `{"error": {type, code, message, param, doc_url}}`
//!   envelope; `widget_token` only in the create response.
//!
//! Faults can be queued for the next API requests (5xx, 429, latency, a dropped
//! connection), in process with [`Simulator::push_fault`] or over HTTP with the
//! control API under `/_sim/` (see [`CONTROL_API`]).

use bytes::Bytes;
use http::{Method, Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;

/// Documentation of the control API, printed by `fintoc-sim --help`.
pub const CONTROL_API: &str = "\
Control API (not part of Fintoc's API; for tests and local development):
  GET    /_sim/health   200 {\"ok\": true}
  GET    /_sim/stats    {\"intents_created\", \"api_requests\", \"faults_pending\"}
  POST   /_sim/faults   queue faults for the next API requests, in order:
                        {\"faults\": [{\"type\": \"status\", \"status\": 500},
                                    {\"type\": \"rate_limit\", \"retry_after_secs\": 1},
                                    {\"type\": \"latency\", \"ms\": 3000},
                                    {\"type\": \"drop\"}]}
                        status/rate_limit answer before doing anything; latency
                        and drop do the work, then answer late / close the
                        connection without answering.
  DELETE /_sim/faults   clear queued faults
  POST   /_sim/webhook  register the webhook endpoint: {\"url\": \"...\", \"secret\": \"whsec_...\"}
  POST   /_sim/payment_intents/{id}/finish
                        finish an intent and deliver its signed events:
                        {\"outcome\": \"succeeded\" | \"failed\" | \"rejected\" | \"expired\",
                         \"via_pending\": false, \"duplicate\": false,
                         \"out_of_order\": false, \"error_reason\": null}
                        Delivery retries non-2xx answers and timeouts with
                        exponential backoff, like Fintoc.
  GET    /_sim/deliveries  every delivery: event id, type, attempts, last status
  POST   /_sim/reset    forget every intent, idempotency key, fault and counter

Widget stand-in (what the checkout page loads instead of https://js.fintoc.com/v1/):
  GET    /widget/v1/    a script defining `Fintoc.create({holderType, product,
                        publicKey, widgetToken, onSuccess, onExit, onEvent})`,
                        whose dialog has Pay / Reject / Fail / Close buttons
  POST   /_sim/widget/session   {\"widget_token\"} -> the intent's id, amount, currency
  POST   /_sim/widget/complete  {\"widget_token\", \"outcome\"}: what the buttons call;
                        finishes the intent like /_sim/payment_intents/{id}/finish
  (both answer any origin: the page is served from another port)";

/// The widget stand-in served at `/widget/v1/`.
pub const WIDGET_SCRIPT: &str = include_str!("widget.js");

const DOC_URL: &str = "https://docs.fintoc.com/reference/errors";

/// A fault applied to the next API request.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Fault {
    /// Answer this status (5xx) with Fintoc's `api_error` envelope; nothing is done.
    Status {
        /// HTTP status to answer.
        status: u16,
    },
    /// Answer 429 with `Retry-After`; nothing is done.
    RateLimit {
        /// Value of `Retry-After`.
        #[serde(default)]
        retry_after_secs: u64,
    },
    /// Do the work, then wait this long before answering.
    Latency {
        /// Delay in milliseconds.
        ms: u64,
    },
    /// Do the work, then close the connection without answering.
    Drop,
}

/// Simulator settings.
#[derive(Debug, Clone)]
pub struct SimulatorConfig {
    /// Address to listen on; port 0 picks a free one.
    pub addr: SocketAddr,
    /// Secret keys accepted in `Authorization` (`sk_test_...` / `sk_live_...`).
    pub secret_keys: Vec<String>,
    /// Where signed webhook events go, if anywhere.
    pub webhook: Option<WebhookEndpoint>,
    /// Delivery retry behaviour.
    pub delivery: DeliveryPolicy,
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            secret_keys: vec![DEFAULT_SECRET_KEY.to_string()],
            webhook: None,
            delivery: DeliveryPolicy::default(),
        }
    }
}

/// A webhook endpoint registered with the simulator.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct WebhookEndpoint {
    /// URL that receives the POSTs.
    pub url: String,
    /// Signing secret (`whsec_...`), used whole as the HMAC key.
    pub secret: String,
}

/// Fintoc's delivery behaviour: any non-2xx or a timeout is retried with
/// exponential backoff (3 s, 6 s, 12 s, ... by default, 17 retries).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryPolicy {
    /// First retry delay; doubles each time.
    pub base_delay: Duration,
    /// Largest delay.
    pub max_delay: Duration,
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// Timeout of one attempt.
    pub timeout: Duration,
}

impl Default for DeliveryPolicy {
    fn default() -> Self {
        Self {
            base_delay: Duration::from_secs(3),
            max_delay: Duration::from_secs(3600),
            max_retries: 17,
            timeout: Duration::from_secs(10),
        }
    }
}

/// How to finish an intent through [`Simulator::finish`] or the control API.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Finish {
    /// `succeeded`, `failed`, `rejected` or `expired`.
    pub outcome: String,
    /// Send a `payment_intent.pending` event first.
    #[serde(default)]
    pub via_pending: bool,
    /// Deliver every event twice.
    #[serde(default)]
    pub duplicate: bool,
    /// Deliver the events in reverse order (final before pending).
    #[serde(default)]
    pub out_of_order: bool,
    /// Override the `error_reason` of an unpaid outcome.
    #[serde(default)]
    pub error_reason: Option<String>,
}

impl Finish {
    /// A plain outcome, delivered once, in order.
    pub fn outcome(outcome: &str) -> Self {
        Self {
            outcome: outcome.to_string(),
            via_pending: false,
            duplicate: false,
            out_of_order: false,
            error_reason: None,
        }
    }
}

/// One webhook delivery job and how it went.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeliveryRecord {
    /// The event's id.
    pub event_id: String,
    /// The event's type.
    pub event_type: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// HTTP status of the last attempt (None: no answer).
    pub last_status: Option<u16>,
    /// Answered 2xx.
    pub delivered: bool,
    /// No more attempts will be made.
    pub settled: bool,
}

/// The secret key the simulator accepts unless told otherwise.
pub const DEFAULT_SECRET_KEY: &str = "sk_test_simulator";

struct IdempotentAnswer {
    params_hash: String,
    status: u16,
    body: Value,
}

#[derive(Default)]
struct Inner {
    webhook: Option<WebhookEndpoint>,
    deliveries: Vec<DeliveryRecord>,
    intents: HashMap<String, Value>,
    order: Vec<String>,
    idempotency: HashMap<(String, String), IdempotentAnswer>,
    /// widget_token -> payment intent id.
    widget_tokens: HashMap<String, String>,
    intents_created: u64,
    api_requests: u64,
    faults: VecDeque<Fault>,
}

struct State {
    secret_keys: Vec<String>,
    delivery: DeliveryPolicy,
    http: reqwest::Client,
    settled: tokio::sync::Notify,
    inner: Mutex<Inner>,
}

/// A running simulator; it serves until the process (or runtime) ends.
#[derive(Clone)]
pub struct Simulator {
    addr: SocketAddr,
    state: Arc<State>,
}

#[derive(Debug)]
struct DropConnection;

impl std::fmt::Display for DropConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped on purpose (fault injection)")
    }
}

impl std::error::Error for DropConnection {}

type HttpResponse = Response<Full<Bytes>>;

impl Simulator {
    /// Binds and starts serving in the background.
    pub async fn start(config: SimulatorConfig) -> std::io::Result<Self> {
        let listener = TcpListener::bind(config.addr).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            secret_keys: config.secret_keys,
            http: shared::fintoc::http_client_builder()
                .timeout(config.delivery.timeout)
                .build()
                .map_err(std::io::Error::other)?,
            delivery: config.delivery,
            settled: tokio::sync::Notify::new(),
            inner: Mutex::new(Inner {
                webhook: config.webhook,
                ..Inner::default()
            }),
        });
        let accept_state = state.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let state = accept_state.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| handle(state.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self { addr, state })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Base URL to use as `FINTOC_BASE_URL`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Queues a fault for the next API request.
    pub fn push_fault(&self, fault: Fault) {
        self.lock().faults.push_back(fault);
    }

    /// How many payment intents were created (replays do not count).
    pub fn intents_created(&self) -> u64 {
        self.lock().intents_created
    }

    /// How many API requests arrived (control API excluded).
    pub fn api_requests(&self) -> u64 {
        self.lock().api_requests
    }

    /// A stored intent as `GET /v1/payment_intents/{id}` would show it.
    pub fn intent(&self, id: &str) -> Option<Value> {
        self.lock().intents.get(id).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.state.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers (or replaces) the webhook endpoint.
    pub fn set_webhook(&self, endpoint: WebhookEndpoint) {
        self.lock().webhook = Some(endpoint);
    }

    /// Finishes an intent: updates it and delivers its signed events in the background.
    /// Returns the event ids (one per event, before duplication).
    pub fn finish(&self, id: &str, finish: &Finish) -> Result<Vec<String>, String> {
        finish_intent(&self.state, id, finish)
    }

    /// Every delivery job so far.
    pub fn deliveries(&self) -> Vec<DeliveryRecord> {
        self.lock().deliveries.clone()
    }

    /// Waits until at least `count` delivery jobs are settled (delivered or given up).
    pub async fn wait_settled(&self, count: usize) -> Vec<DeliveryRecord> {
        loop {
            let notified = self.state.settled.notified();
            {
                let inner = self.lock();
                if inner.deliveries.iter().filter(|d| d.settled).count() >= count {
                    return inner.deliveries.clone();
                }
            }
            notified.await;
        }
    }
}

/// `t=<now>,v1=<hex>` for `body`, signed the way Fintoc signs.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

/// Re-signs an API Gateway event file (HTTP API v2) in place: the
/// `fintoc-signature` header becomes a signature of its `body` (base64-decoded when
/// `isBase64Encoded`) with `secret` at `timestamp`. Only that header's text changes.
pub fn resign_event_file(
    path: &std::path::Path,
    secret: &str,
    timestamp: i64,
) -> Result<String, String> {
    use base64::Engine;
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let event: Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let body = event["body"]
        .as_str()
        .ok_or_else(|| format!("{}: no body", path.display()))?;
    let bytes = if event["isBase64Encoded"].as_bool().unwrap_or(false) {
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .map_err(|e| format!("{}: body is not base64: {e}", path.display()))?
    } else {
        body.as_bytes().to_vec()
    };
    let header = sign(secret, timestamp, &bytes);
    let marker = "\"fintoc-signature\": \"";
    let start = text.find(marker).ok_or_else(|| {
        format!(
            "{}: no \"fintoc-signature\" header to replace",
            path.display()
        )
    })? + marker.len();
    let end = start + text[start..].find('"').ok_or("unterminated header value")?;
    let updated = format!("{}{header}{}", &text[..start], &text[end..]);
    std::fs::write(path, updated).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(header)
}

/// Unix seconds now.
pub fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Signs `body` with the current time and POSTs it to `url` once.
pub async fn send_signed(url: &str, secret: &str, body: &[u8]) -> Result<(u16, String), String> {
    let response = shared::fintoc::http_client_builder()
        .build()
        .map_err(|e| e.to_string())?
        .post(url)
        .header("content-type", "application/json")
        .header("fintoc-signature", sign(secret, unix_now(), body))
        .body(body.to_vec())
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    Ok((status, response.text().await.unwrap_or_default()))
}

fn default_error_reason(outcome: &str) -> Option<&'static str> {
    match outcome {
        "failed" => Some("insufficient_funds"),
        "rejected" => Some("mfa_invalid_authorization"),
        "expired" => Some("manually_expired"),
        _ => None,
    }
}

fn finish_intent(state: &Arc<State>, id: &str, finish: &Finish) -> Result<Vec<String>, String> {
    if !matches!(
        finish.outcome.as_str(),
        "succeeded" | "failed" | "rejected" | "expired"
    ) {
        return Err(format!(
            "outcome must be succeeded, failed, rejected or expired, not {:?}",
            finish.outcome
        ));
    }
    let mut events = Vec::new();
    {
        let mut inner = state.inner.lock().unwrap_or_else(|e| e.into_inner());
        let webhook = inner
            .webhook
            .clone()
            .ok_or("no webhook endpoint is configured")?;
        let pi = inner
            .intents
            .get_mut(id)
            .ok_or_else(|| format!("no such payment_intent: {id}"))?;
        let status = pi["status"].as_str().unwrap_or_default().to_string();
        if matches!(
            status.as_str(),
            "succeeded" | "failed" | "rejected" | "expired"
        ) {
            return Err(format!("payment intent {id} is already {status}"));
        }
        let mode = pi["mode"].clone();
        let sender = json!({
            "holder_id": "183917137",
            "institution_id": if pi["currency"] == "MXN" { "mx_stp" } else { "cl_banco_estado" },
            "number": format!("0000{}", 10_000_000 + fastrand::u32(..89_999_999)),
            "type": "checking_account",
        });
        let mut statuses = Vec::new();
        if finish.via_pending {
            statuses.push("pending".to_string());
        }
        statuses.push(finish.outcome.clone());
        for status in statuses {
            pi["status"] = json!(status);
            pi["sender_account"] = sender.clone();
            if status == "succeeded" {
                pi["transaction_date"] = json!(now_rfc3339());
                pi["reference_id"] =
                    json!(format!("{}", 100_000_000 + fastrand::u32(..899_999_999)));
            }
            if status != "pending" && status != "succeeded" {
                let reason = finish
                    .error_reason
                    .clone()
                    .or(default_error_reason(&status).map(str::to_string));
                pi["error_reason"] = json!(reason);
            }
            let event = json!({
                "id": format!("evt_{}", random_token(16)),
                "object": "event",
                "type": format!("payment_intent.{status}"),
                "mode": mode,
                "created_at": now_rfc3339(),
                "data": pi.clone(),
            });
            events.push(event);
        }
        let mut order: Vec<&Value> = events.iter().collect();
        if finish.out_of_order {
            order.reverse();
        }
        let copies = if finish.duplicate { 2 } else { 1 };
        let mut jobs = Vec::new();
        for event in order {
            for _ in 0..copies {
                let index = inner.deliveries.len();
                inner.deliveries.push(DeliveryRecord {
                    event_id: event["id"].as_str().unwrap_or_default().to_string(),
                    event_type: event["type"].as_str().unwrap_or_default().to_string(),
                    attempts: 0,
                    last_status: None,
                    delivered: false,
                    settled: false,
                });
                jobs.push((index, event.to_string()));
            }
        }
        let state = state.clone();
        tokio::spawn(async move {
            // Deliveries of one finish go out one after the other, in the chosen order.
            for (index, body) in jobs {
                deliver(&state, &webhook, index, body).await;
            }
        });
    }
    Ok(events
        .iter()
        .map(|e| e["id"].as_str().unwrap_or_default().to_string())
        .collect())
}

async fn deliver(state: &State, webhook: &WebhookEndpoint, index: usize, body: String) {
    let policy = &state.delivery;
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let result = state
            .http
            .post(&webhook.url)
            .header("content-type", "application/json")
            .header(
                "fintoc-signature",
                sign(&webhook.secret, unix_now(), body.as_bytes()),
            )
            .body(body.clone())
            .send()
            .await;
        let status = result.as_ref().ok().map(|r| r.status().as_u16());
        let delivered = status.is_some_and(|s| (200..300).contains(&s));
        let settled = delivered || attempt > policy.max_retries;
        {
            let mut inner = state.inner.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(record) = inner.deliveries.get_mut(index) {
                record.attempts = attempt;
                record.last_status = status;
                record.delivered = delivered;
                record.settled = settled;
            }
        }
        if settled {
            state.settled.notify_waiters();
            return;
        }
        let delay = policy
            .base_delay
            .saturating_mul(2u32.saturating_pow(attempt - 1))
            .min(policy.max_delay);
        tokio::time::sleep(delay).await;
    }
}

fn json_response(status: u16, body: &Value) -> HttpResponse {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("valid response")
}

fn error_body(error_type: &str, code: &str, message: &str, param: Option<&str>) -> Value {
    json!({"error": {
        "type": error_type,
        "code": code,
        "message": message,
        "param": param,
        "doc_url": DOC_URL,
    }})
}

fn error(
    status: u16,
    error_type: &str,
    code: &str,
    message: &str,
    param: Option<&str>,
) -> HttpResponse {
    json_response(status, &error_body(error_type, code, message, param))
}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Result<HttpResponse, DropConnection> {
    let method = req.method().clone();
    let path = req.uri().path().trim_end_matches('/').to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let idempotency_key = req
        .headers()
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Err(DropConnection),
    };
    if method == Method::GET && path == "/widget/v1" {
        return Ok(Response::builder()
            .header("content-type", "application/javascript; charset=utf-8")
            .header("cache-control", "no-store")
            .body(Full::new(Bytes::from_static(WIDGET_SCRIPT.as_bytes())))
            .expect("valid response"));
    }
    if let Some(widget) = path.strip_prefix("/_sim/widget") {
        let mut response = if method == Method::OPTIONS {
            Response::builder()
                .status(204)
                .header("access-control-allow-methods", "POST")
                .header("access-control-allow-headers", "content-type")
                .body(Full::new(Bytes::new()))
                .expect("valid response")
        } else {
            widget_api(&state, &method, widget, &body)
        };
        response
            .headers_mut()
            .insert("access-control-allow-origin", "*".parse().expect("ascii"));
        return Ok(response);
    }
    if let Some(control) = path.strip_prefix("/_sim") {
        return Ok(control_api(&state, &method, control, &body));
    }

    let fault = {
        let mut inner = state.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.api_requests += 1;
        inner.faults.pop_front()
    };
    match fault {
        Some(Fault::Status { status }) => {
            return Ok(error(
                status,
                "api_error",
                "internal_server_error",
                "Simulated server error.",
                None,
            ))
        }
        Some(Fault::RateLimit { retry_after_secs }) => {
            let mut response = error(
                429,
                "api_error",
                "rate_limit_exceeded",
                "Too many requests.",
                None,
            );
            response.headers_mut().insert(
                "retry-after",
                retry_after_secs.to_string().parse().expect("digits"),
            );
            return Ok(response);
        }
        _ => {}
    }
    let response = api(
        &state,
        &method,
        &path,
        &query,
        auth.as_deref(),
        idempotency_key.as_deref(),
        &body,
    );
    match fault {
        Some(Fault::Latency { ms }) => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok(response)
        }
        Some(Fault::Drop) => Err(DropConnection),
        _ => Ok(response),
    }
}

fn control_api(state: &Arc<State>, method: &Method, path: &str, body: &[u8]) -> HttpResponse {
    let mut inner = state.inner.lock().unwrap_or_else(|e| e.into_inner());
    match (method, path) {
        (&Method::GET, "/health") => json_response(200, &json!({"ok": true})),
        (&Method::GET, "/stats") => json_response(
            200,
            &json!({
                "intents_created": inner.intents_created,
                "api_requests": inner.api_requests,
                "faults_pending": inner.faults.len(),
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
            let finish = match serde_json::from_slice::<Finish>(body) {
                Ok(f) => f,
                Err(e) => {
                    return error(
                        400,
                        "invalid_request_error",
                        "invalid_finish",
                        &e.to_string(),
                        None,
                    )
                }
            };
            drop(inner);
            match finish_intent(state, &id, &finish) {
                Ok(ids) => json_response(202, &json!({"event_ids": ids})),
                Err(e) => error(400, "invalid_request_error", "cannot_finish", &e, None),
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

/// The endpoints the widget stand-in calls: it knows only the widget token, like
/// Fintoc's widget.
fn widget_api(state: &Arc<State>, method: &Method, path: &str, body: &[u8]) -> HttpResponse {
    #[derive(Deserialize)]
    struct WidgetRequest {
        widget_token: String,
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
    let inner = state.inner.lock().unwrap_or_else(|e| e.into_inner());
    let Some(id) = inner.widget_tokens.get(&request.widget_token).cloned() else {
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
                &json!({"id": id, "amount": pi["amount"], "currency": pi["currency"], "status": pi["status"]}),
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

fn mask_key(key: &str) -> String {
    let tail: String = key
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let prefix = if key.starts_with("sk_live_") {
        "sk_live_"
    } else if key.starts_with("sk_test_") {
        "sk_test_"
    } else {
        ""
    };
    format!("{prefix}****{tail}")
}

fn api(
    state: &State,
    method: &Method,
    path: &str,
    query: &str,
    auth: Option<&str>,
    idempotency_key: Option<&str>,
    body: &[u8],
) -> HttpResponse {
    let Some(key) = auth.filter(|k| state.secret_keys.iter().any(|s| s == k)) else {
        let message = match auth {
            None => {
                "No API key provided. Send your secret key in the Authorization header.".to_string()
            }
            Some(k) => format!("Invalid API Key provided: {}", mask_key(k)),
        };
        return error(
            401,
            "authentication_error",
            "invalid_api_key",
            &message,
            None,
        );
    };
    let mode = if key.starts_with("sk_live_") {
        "live"
    } else {
        "test"
    };
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let mut inner = state.inner.lock().unwrap_or_else(|e| e.into_inner());
    match (method, segments.as_slice()) {
        (&Method::POST, ["v1", "payment_intents"]) => {
            create_with_idempotency(&mut inner, key, mode, idempotency_key, body)
        }
        (&Method::GET, ["v1", "payment_intents"]) => list(&inner, query),
        (&Method::GET, ["v1", "payment_intents", id]) => match inner.intents.get(*id) {
            Some(pi) => json_response(200, pi),
            None => not_found(id),
        },
        (&Method::POST, ["v1", "payment_intents", id, "expire"]) => {
            let Some(pi) = inner.intents.get_mut(*id) else {
                return not_found(id);
            };
            let status = pi["status"].as_str().unwrap_or_default();
            if matches!(status, "succeeded" | "failed" | "rejected" | "expired") {
                return error(
                    400,
                    "invalid_request_error",
                    "payment_intent_not_expirable",
                    &format!("Payment intent {id} is already {status}."),
                    None,
                );
            }
            pi["status"] = json!("expired");
            pi["error_reason"] = json!("manually_expired");
            json_response(200, &pi.clone())
        }
        (_, ["v1", "payment_intents", ..]) => error(
            405,
            "invalid_request_error",
            "method_not_allowed",
            "Method not allowed.",
            None,
        ),
        _ => error(
            404,
            "invalid_request_error",
            "resource_missing",
            "Unrecognized request URL.",
            None,
        ),
    }
}

fn not_found(id: &str) -> HttpResponse {
    error(
        404,
        "invalid_request_error",
        "resource_missing",
        &format!("No such payment_intent: {id}"),
        Some("id"),
    )
}

fn list(inner: &Inner, query: &str) -> HttpResponse {
    let params: HashMap<&str, &str> = query.split('&').filter_map(|p| p.split_once('=')).collect();
    let per_page = params
        .get("per_page")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(30)
        .clamp(1, 300);
    let page = params
        .get("page")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let status = params.get("status");
    let items: Vec<&Value> = inner
        .order
        .iter()
        .rev()
        .filter_map(|id| inner.intents.get(id))
        .filter(|pi| status.is_none_or(|s| pi["status"] == **s))
        .collect();
    let page_items: Vec<&Value> = items
        .iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .copied()
        .collect();
    let mut response = json_response(200, &json!(page_items));
    if items.len() > page * per_page {
        let link = format!(
            "</v1/payment_intents?page={}&per_page={per_page}>; rel=\"next\"",
            page + 1
        );
        response
            .headers_mut()
            .insert("link", link.parse().expect("valid header"));
    }
    response
}

fn create_with_idempotency(
    inner: &mut Inner,
    api_key: &str,
    mode: &str,
    idempotency_key: Option<&str>,
    body: &[u8],
) -> HttpResponse {
    let parsed: Result<Value, _> = serde_json::from_slice(body);
    let params_hash = match &parsed {
        Ok(v) => hex::encode(Sha256::digest(v.to_string())),
        Err(_) => hex::encode(Sha256::digest(body)),
    };
    if let Some(key) = idempotency_key {
        if key.is_empty() || key.len() > 255 {
            return error(
                400,
                "invalid_request_error",
                "invalid_idempotency_key",
                "Idempotency-Key must be 1 to 255 characters.",
                None,
            );
        }
        if let Some(stored) = inner
            .idempotency
            .get(&(api_key.to_string(), key.to_string()))
        {
            if stored.params_hash != params_hash {
                return error(400, "invalid_request_error", "idempotency_key_reused",
                    "Keys for idempotent requests can only be used with the same parameters they were first used with.", None);
            }
            let mut response = json_response(stored.status, &stored.body);
            response
                .headers_mut()
                .insert("idempotent-replayed", "true".parse().expect("valid"));
            return response;
        }
    }
    let (status, body) = match parsed {
        Ok(Value::Object(params)) => create(inner, mode, &params),
        _ => (
            400,
            error_body(
                "invalid_request_error",
                "invalid_json",
                "The request body is not a JSON object.",
                None,
            ),
        ),
    };
    if let Some(key) = idempotency_key {
        inner.idempotency.insert(
            (api_key.to_string(), key.to_string()),
            IdempotentAnswer {
                params_hash,
                status,
                body: body.clone(),
            },
        );
    }
    json_response(status, &body)
}

fn invalid(code: &str, param: &str, message: &str) -> (u16, Value) {
    (
        400,
        error_body("invalid_request_error", code, message, Some(param)),
    )
}

fn random_token(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..len)
        .map(|_| ALPHABET[fastrand::usize(..ALPHABET.len())] as char)
        .collect()
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn create(inner: &mut Inner, mode: &str, params: &Map<String, Value>) -> (u16, Value) {
    let amount = match params.get("amount") {
        None | Some(Value::Null) => {
            return invalid(
                "missing_parameter",
                "amount",
                "Missing required param: amount.",
            )
        }
        Some(v) => match v.as_u64() {
            Some(a) if a > 0 && v.is_u64() => a,
            _ => {
                return invalid(
                    "invalid_amount",
                    "amount",
                    "amount must be a positive integer.",
                )
            }
        },
    };
    let currency = match params.get("currency").and_then(Value::as_str) {
        Some(c @ ("CLP" | "MXN")) => c,
        None => {
            return invalid(
                "missing_parameter",
                "currency",
                "Missing required param: currency.",
            )
        }
        Some(_) => {
            return invalid(
                "invalid_currency",
                "currency",
                "currency must be CLP or MXN.",
            )
        }
    };
    let metadata = match params.get("metadata") {
        None | Some(Value::Null) => json!({}),
        Some(Value::Object(m)) if m.values().all(Value::is_string) => Value::Object(m.clone()),
        Some(_) => {
            return invalid(
                "invalid_metadata",
                "metadata",
                "metadata must be a map of strings.",
            )
        }
    };
    let customer_email = match params.get("customer_email") {
        None | Some(Value::Null) => Value::Null,
        Some(Value::String(e)) if e.contains('@') => json!(e),
        Some(_) => {
            return invalid(
                "invalid_customer_email",
                "customer_email",
                "customer_email is invalid.",
            )
        }
    };
    let recipient_account = match params.get("recipient_account") {
        None | Some(Value::Null) => Value::Null,
        Some(Value::Object(r)) => {
            for field in ["holder_id", "number", "type", "institution_id"] {
                let present = r
                    .get(field)
                    .and_then(Value::as_str)
                    .is_some_and(|s| !s.is_empty());
                if !present {
                    let param = format!("recipient_account[{field}]");
                    return invalid(
                        "missing_parameter",
                        &param,
                        &format!("Missing required param: {param}."),
                    );
                }
            }
            let institution = r["institution_id"].as_str().unwrap_or_default();
            if !(institution.starts_with("cl_") || institution.starts_with("mx_")) {
                return invalid(
                    "invalid_institution",
                    "recipient_account[institution_id]",
                    &format!("No such institution: {institution}."),
                );
            }
            Value::Object(r.clone())
        }
        Some(_) => {
            return invalid(
                "invalid_recipient_account",
                "recipient_account",
                "recipient_account must be an object.",
            )
        }
    };
    let id = format!("pi_{}", random_token(27));
    let widget_token = format!("{id}_sec_{}", random_token(24));
    let intent = json!({
        "id": id,
        "object": "payment_intent",
        "amount": amount,
        "currency": currency,
        "status": "created",
        "widget_token": null,
        "metadata": metadata,
        "customer_email": customer_email,
        "error_reason": null,
        "expires_at": null,
        "created_at": now_rfc3339(),
        "transaction_date": null,
        "reference_id": null,
        "mode": mode,
        "payment_type": "bank_transfer",
        "payment_type_options": {},
        "recipient_account": recipient_account,
        "sender_account": null,
        "business_profile": null,
    });
    inner.intents.insert(id.clone(), intent.clone());
    inner.widget_tokens.insert(widget_token.clone(), id.clone());
    inner.order.push(id);
    inner.intents_created += 1;
    let mut response = intent;
    response["widget_token"] = json!(widget_token);
    (201, response)
}
