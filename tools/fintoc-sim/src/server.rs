//! The simulator's server: binding, the [`Simulator`] handle tests and the CLI
//! hold, and the routing of each request (with queued faults) to the Fintoc API,
//! the control API or the widget stand-in.

use crate::api::api;
use crate::config::{DeliveryMode, Fault, Finish, SimulatorConfig, WebhookEndpoint};
use crate::control::control_api;
use crate::delivery::{finish_intent, redeliver_undelivered};
use crate::due::release_due_holds;
use crate::responses::{error, HttpResponse};
use crate::state::{DeliveryRecord, Inner, SimIntent, State};
use crate::widget::{widget_api, WIDGET_SCRIPT};
use bytes::Bytes;
use http::{Method, Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;

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

impl Simulator {
    /// Binds and starts serving in the background.
    pub async fn start(config: SimulatorConfig) -> std::io::Result<Self> {
        let listener = TcpListener::bind(config.addr).await?;
        let addr = listener.local_addr()?;
        let public_url = config.public_url.clone().unwrap_or_else(|| {
            let mut browser_addr = addr;
            if addr.ip().is_unspecified() {
                browser_addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
            }
            format!("http://{browser_addr}")
        });
        let state = Arc::new(State {
            public_url,
            secret_keys: config.secret_keys,
            clock: config.clock,
            clock_offset_ms: Default::default(),
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

    /// How many `GET /v1/payment_intents/{id}` requests were answered.
    pub fn lookups(&self) -> u64 {
        self.lock().lookups
    }

    /// What happens to the events produced from now on.
    pub fn set_delivery_mode(&self, mode: DeliveryMode) {
        self.lock().delivery_mode = mode;
    }

    /// Moves the simulator's clock (on top of the injected one), then finishes the
    /// held intents whose time has come.
    pub fn advance_clock_ms(&self, delta_ms: i64) {
        self.state
            .clock_offset_ms
            .fetch_add(delta_ms, std::sync::atomic::Ordering::SeqCst);
        release_due_holds(&self.state);
    }

    /// Delivers again, in the current mode, every event that was never delivered
    /// (the rest of Fintoc's retry window once an endpoint is fixed). Returns how
    /// many jobs were restarted; [`Self::wait_settled`] waits for them.
    pub fn redeliver_undelivered(&self) -> usize {
        redeliver_undelivered(&self.state)
    }

    /// The simulator's time (Unix ms).
    pub fn now_ms(&self) -> i64 {
        self.state.now_ms()
    }

    /// How many checkout sessions were created (replays do not count).
    pub fn sessions_created(&self) -> u64 {
        self.lock().sessions_created
    }

    /// API requests that carried no `Fintoc-Version` header.
    pub fn unversioned_requests(&self) -> u64 {
        self.lock().unversioned_requests
    }

    /// The `Fintoc-Version` of the latest API request.
    pub fn last_api_version(&self) -> Option<String> {
        self.lock().last_api_version.clone()
    }

    /// A stored session as `GET /v1/checkout_sessions/{id}` would show it.
    pub fn session(&self, id: &str) -> Option<Value> {
        let inner = self.lock();
        inner.sessions.get(id).map(|s| s.to_json(&inner.intents))
    }

    /// The payer pays (or fails) inside a session: a new payment intent (its
    /// attempt), finished as `finish` says; a success finishes the session. Returns
    /// the attempt's id and its event ids.
    pub fn pay_session(&self, id: &str, finish: &Finish) -> Result<(String, Vec<String>), String> {
        crate::sessions::pay_session(&self.state, id, finish)
    }

    /// A stored intent as `GET /v1/payment_intents/{id}` would show it.
    pub fn intent(&self, id: &str) -> Option<Value> {
        self.lock().intents.get(id).map(SimIntent::to_json)
    }

    /// A refund as `GET /v1/refunds/{id}` would show it.
    pub fn refund(&self, id: &str) -> Option<Value> {
        self.lock()
            .refunds
            .get(id)
            .map(|r| serde_json::to_value(r).expect("a refund serializes"))
    }

    /// Every refund, oldest first.
    pub fn refunds(&self) -> Vec<Value> {
        let inner = self.lock();
        inner
            .refund_order
            .iter()
            .filter_map(|id| inner.refunds.get(id))
            .map(|r| serde_json::to_value(r).expect("a refund serializes"))
            .collect()
    }

    /// Moves a refund on (see the control API's settle) and delivers its signed
    /// `refund.*` events. Returns the event ids.
    pub fn settle_refund(
        &self,
        id: &str,
        settle: &crate::config::Settle,
    ) -> Result<Vec<String>, String> {
        crate::refunds::settle_refund(&self.state, id, settle)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.state.lock()
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
    let version = req
        .headers()
        .get("fintoc-version")
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
    // Intents held pending whose time has come finish before anything is answered.
    release_due_holds(&state);
    if method == Method::GET {
        if let Some(id) = path.strip_prefix("/checkout/") {
            return Ok(crate::sessions::hosted_page(&state, id));
        }
    }
    if method == Method::POST {
        if let Some(id) = path
            .strip_prefix("/_sim/checkout/")
            .and_then(|p| p.strip_suffix("/complete"))
        {
            return Ok(crate::sessions::hosted_complete(&state, id, &body));
        }
    }
    if let Some(control) = path.strip_prefix("/_sim") {
        return Ok(control_api(&state, &method, control, &body));
    }

    let fault = {
        let mut inner = state.lock();
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
        Some(Fault::Failure { status, made }) => state.lock().failing = Some((status, made)),
        Some(Fault::Refuse { status, code }) => {
            return Ok(error(
                status,
                "invalid_request_error",
                &code,
                "Simulated refusal.",
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
        version.as_deref(),
        &body,
    );
    match fault {
        Some(Fault::Latency { ms }) => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok(response)
        }
        Some(Fault::Drop) => Err(DropConnection),
        // Not taken by a create (which stored it under its key): answered alone.
        Some(Fault::Failure { status, .. }) if state.lock().failing.take().is_some() => Ok(error(
            status,
            "api_error",
            "internal_server_error",
            "Simulated failure.",
            None,
        )),
        _ => Ok(response),
    }
}
