//! `local-gateway`: the local stand-in for the deployed HTTP API (API Gateway).
//!
//! It answers the routes of the one route table (`shared::routes`, the routes of `template.yaml`) and forwards them to the functions
//! running under `cargo lambda watch`, serves the merchant checkout page (`checkout/`)
//! and can answer the next webhook deliveries with a forced status, the way a
//! throttled API Gateway answers 503, so Fintoc's retry can be watched locally.
//!
//! ```text
//! every route of shared::routes                     -> its function (create-intent:
//!                                                       payment intents, checkout
//!                                                       sessions, refunds; webhook)
//! GET  /, /checkout.js, /checkout.css                -> files of --checkout-dir
//! GET  /orders.html?order={id}                       -> the merchant's order page:
//!                                                       payments, refunds, refund button
//! /_merchant/orders/{id}[/pay|/checkout-session|/payments|/refunds]
//!                                                    -> the merchant's server stand-in
//! GET  /config.js                                    -> the page's settings
//! POST /_local/faults {"webhook": [503]}             -> answer the next deliveries so
//! GET  /_local/health
//! POST /_merchant/events                             -> the merchant's endpoint for
//!                                                       merchant events (signature checked)
//! GET  /_merchant/orders/{id}/events                 -> the events an order received
//! GET  /_local/merchant-events                       -> every delivery, as received
//! ANY  /_local/ops/...                                -> the operations API, for the operations page
//! ```
//!
//! With `--stream-from`, it also stands in for Lambda's event source mapping: it
//! reads the table's stream on DynamoDB Local and invokes the dispatch-events
//! function with each batch, and for its retry schedule (`--sweep-every`).

mod merchant;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use local_gateway::inbox::Inbox;
use local_gateway::stream::StreamTap;
use serde_json::json;
use shared::config::LOCAL_OPERATOR_HEADER;
use shared::routes::{function_of_path, resolve, Auth, Function, Matched};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

const USAGE: &str = "local-gateway: the local HTTP API in front of `cargo lambda watch`.

USAGE:
    local-gateway (--functions-url URL | --api-url URL) --checkout-dir DIR [OPTIONS]

OPTIONS:
    --port PORT              port on 127.0.0.1 (default 3000)
    --functions-url URL      cargo lambda watch's address (e.g. http://127.0.0.1:9000)
    --api-url URL            or an API that serves the template's routes itself, such as
                             `sam local start-api` (e.g. http://127.0.0.1:3014): requests
                             are forwarded to URL + path
    --checkout-dir DIR       the checkout page's files
    --widget-script URL      the widget script the page loads (default: Fintoc's,
                             https://js.fintoc.com/v1/; locally the simulator's /widget/v1/)
    --public-key KEY         the Fintoc public key the page uses (default pk_test_simulator)
    --checkout-flow FLOW     the page's default flow: payment_intent (widget token),
                             session_widget (checkout session in the embedded widget)
                             or session_redirect (Fintoc's hosted page and back);
                             default payment_intent; ?flow= overrides it per page
    --reconcile-every SECS   invoke the reconcile function every SECS seconds, as the
                             deployed EventBridge Scheduler schedule does (default: never)
    --stream-from URL        DynamoDB Local's URL: read --table's stream and invoke the
                             dispatch-events function with each batch, as the deployed
                             event source mapping does (needs --functions-url)
    --table NAME             the table whose stream is read
    --sweep-every SECS       invoke dispatch-events's retry sweep every SECS seconds
    --merchant-webhook-secret SECRET
                             the Standard Webhooks secret (whsec_...) the merchant's
                             stand-in endpoint, POST /_merchant/events, verifies with
    --api-token TOKEN        the merchant routes' authorizer, as the template's JWT one:
                             a request without `Authorization: Bearer TOKEN` is a 401
                             (default: none, as CreateIntentAuth=NONE)
    -h, --help               print this help

Routes: POST /payment-intents, GET /payment-intents/{id}, POST /checkout-sessions,
GET /checkout-sessions/{id}, POST /checkout-sessions/{id}/expire (create-intent),
POST /webhooks/fintoc (webhook), the checkout page at /, a stand-in for the
merchant's server (GET /_merchant/orders/{id}: the order's cart and price;
POST /_merchant/orders/{id}/pay with Idempotency-Key: creates the intent with that
price; POST /_merchant/orders/{id}/checkout-session: the same as a checkout session;
GET /_merchant/orders/{id}/payments: the order's payments with their refunds;
POST /_merchant/orders/{id}/refunds {\"payment_id\", \"amount\"?} with Idempotency-Key:
refunds one of them — the staff's page is /orders.html?order={id}),
and
POST /_local/faults {\"webhook\": [503, ...]}: answer the next webhook deliveries with
these statuses instead of forwarding them.";

type HttpResponse = Response<Full<Bytes>>;

/// Where the API's routes are answered.
#[derive(Debug, Clone)]
enum Backend {
    /// The functions under `cargo lambda watch` (its function-URL emulation).
    Functions(String),
    /// An API serving the routes itself (`sam local start-api`).
    Api(String),
}

impl Backend {
    /// The URL of `path_and_query` on `function`'s route.
    fn url(&self, function: &str, path_and_query: &str) -> String {
        match self {
            Self::Functions(base) => format!("{base}/lambda-url/{function}{path_and_query}"),
            Self::Api(base) => format!("{base}{path_and_query}"),
        }
    }
}

struct Gateway {
    backend: Backend,
    checkout_dir: PathBuf,
    page_config: String,
    http: reqwest::Client,
    webhook_faults: Mutex<VecDeque<u16>>,
    /// The payments the merchant's stand-in made for each order, in order.
    orders: merchant::OrderBook,
    /// The bearer token the merchant routes require, if any.
    api_token: Option<String>,
    /// The merchant events the merchant's stand-in endpoint received.
    inbox: Inbox,
}

impl Gateway {
    /// How long a request to `function` may take: its configured timeout.
    fn timeout_of(&self, function: Function) -> Duration {
        Duration::from_secs(function.timeout_seconds())
    }
}

struct Options {
    port: u16,
    backend: Backend,
    checkout_dir: PathBuf,
    widget_script: String,
    public_key: String,
    checkout_flow: String,
    reconcile_every: Option<Duration>,
    api_token: Option<String>,
    stream: Option<(String, String)>,
    sweep_every: Option<Duration>,
    merchant_webhook_secret: Option<String>,
}

fn parse_args() -> Result<Options, String> {
    let mut args = std::env::args().skip(1);
    let mut port = 3000;
    let (mut functions_url, mut api_url, mut checkout_dir) = (None, None, None);
    let mut widget_script = "https://js.fintoc.com/v1/".to_string();
    let mut public_key = "pk_test_simulator".to_string();
    let mut checkout_flow = "payment_intent".to_string();
    let mut reconcile_every = None;
    let mut api_token = None;
    let (mut stream_from, mut table, mut sweep_every, mut merchant_webhook_secret) =
        (None, None, None, None);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--port" => port = value()?.parse().map_err(|e| format!("--port: {e}"))?,
            "--functions-url" => functions_url = Some(value()?),
            "--api-url" => api_url = Some(value()?),
            "--checkout-dir" => checkout_dir = Some(PathBuf::from(value()?)),
            "--widget-script" => widget_script = value()?,
            "--public-key" => public_key = value()?,
            "--checkout-flow" => {
                checkout_flow = value()?;
                if !matches!(
                    checkout_flow.as_str(),
                    "payment_intent" | "session_widget" | "session_redirect"
                ) {
                    return Err(format!("unknown --checkout-flow {checkout_flow:?}"));
                }
            }
            "--reconcile-every" => {
                let secs: u64 = value()?
                    .parse()
                    .map_err(|e| format!("--reconcile-every: {e}"))?;
                reconcile_every = Some(Duration::from_secs(secs.max(1)));
            }
            "--api-token" => api_token = Some(value()?).filter(|t| !t.is_empty()),
            "--stream-from" => stream_from = Some(value()?),
            "--table" => table = Some(value()?),
            "--sweep-every" => {
                let secs: u64 = value()?
                    .parse()
                    .map_err(|e| format!("--sweep-every: {e}"))?;
                sweep_every = Some(Duration::from_secs(secs.max(1)));
            }
            "--merchant-webhook-secret" => {
                merchant_webhook_secret = Some(value()?).filter(|t| !t.is_empty())
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let backend = match (functions_url, api_url) {
        (Some(url), None) => Backend::Functions(url.trim_end_matches('/').to_string()),
        (None, Some(url)) => Backend::Api(url.trim_end_matches('/').to_string()),
        _ => return Err("give one of --functions-url or --api-url".into()),
    };
    if reconcile_every.is_some() && matches!(backend, Backend::Api(_)) {
        return Err("--reconcile-every needs --functions-url".into());
    }
    if (stream_from.is_some() || sweep_every.is_some()) && matches!(backend, Backend::Api(_)) {
        return Err("--stream-from and --sweep-every need --functions-url".into());
    }
    let stream = match (stream_from, table) {
        (Some(url), Some(table)) => Some((url, table)),
        (None, None) => None,
        _ => return Err("--stream-from and --table go together".into()),
    };
    Ok(Options {
        port,
        backend,
        checkout_dir: checkout_dir.ok_or("--checkout-dir is required")?,
        widget_script,
        public_key,
        checkout_flow,
        reconcile_every,
        api_token,
        stream,
        sweep_every,
        merchant_webhook_secret,
    })
}

/// Invokes the dispatch-events function with `payload` through cargo lambda
/// watch's Invoke API; its answer.
async fn invoke_dispatcher(
    gateway: &Gateway,
    payload: &serde_json::Value,
) -> Result<serde_json::Value, String> {
    let Backend::Functions(functions_url) = &gateway.backend else {
        return Err("no Invoke API".into());
    };
    let url = format!("{functions_url}/2015-03-31/functions/dispatch-events/invocations");
    let response = gateway
        .http
        .post(&url)
        // The function's Timeout in template.yaml.
        .timeout(Duration::from_secs(60))
        .json(payload)
        .send()
        .await
        .map_err(|e| format!("could not invoke dispatch-events: {e}"))?;
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    if !status.is_success() {
        return Err(format!("dispatch-events: {status} {body}"));
    }
    serde_json::from_str(&body).map_err(|e| format!("dispatch-events answered {body}: {e}"))
}

/// The local stand-in of the event source mapping on the table's stream: every
/// half second, what the stream holds is handed to dispatch-events in batches of
/// up to 100, in order; a batch's failed records (`batchItemFailures`) and what
/// follows them are handed again on the next turn, up to 10 times (then logged
/// and dropped, as the deployed mapping sends them to its dead-letter queue).
async fn stream_mapping(gateway: Arc<Gateway>, endpoint: String, table: String) {
    let mut tap = StreamTap::new(&endpoint, &table);
    let mut pending: VecDeque<serde_json::Value> = VecDeque::new();
    let mut retries = 0;
    let mut ticks = tokio::time::interval(Duration::from_millis(500));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match tap.read().await {
            Ok(records) => pending.extend(records),
            Err(e) => {
                eprintln!("event source mapping: {e}");
                continue;
            }
        }
        while !pending.is_empty() {
            let batch: Vec<serde_json::Value> = pending.iter().take(100).cloned().collect();
            let failed_from = match invoke_dispatcher(&gateway, &json!({"Records": batch})).await {
                Ok(answer) => first_failure(&batch, &answer),
                Err(e) => {
                    eprintln!("event source mapping: {e}");
                    Some(0)
                }
            };
            match failed_from {
                None => {
                    pending.drain(..batch.len());
                    retries = 0;
                }
                Some(index) => {
                    pending.drain(..index);
                    retries += 1;
                    if retries > 10 {
                        eprintln!("event source mapping: a record failed 11 times; dropped (deployed: the dead-letter queue)");
                        pending.pop_front();
                        retries = 0;
                    }
                    break;
                }
            }
        }
    }
}

/// Where a batch failed, by the function's answer (`batchItemFailures`, as Lambda
/// reads it): the index of the first failed record, or of the first record when the
/// failure names none of the batch's (the whole batch again); `None` when none did.
fn first_failure(batch: &[serde_json::Value], answer: &serde_json::Value) -> Option<usize> {
    let failures = answer["batchItemFailures"].as_array()?;
    let failed = failures.first()?;
    Some(
        batch
            .iter()
            .position(|r| r["dynamodb"]["SequenceNumber"] == failed["itemIdentifier"])
            .unwrap_or(0),
    )
}

/// The local stand-in of the dispatcher's retry schedule.
async fn delivery_sweep(gateway: Arc<Gateway>, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let sweep = json!({"source": "local-gateway.delivery-sweep"});
        match invoke_dispatcher(&gateway, &sweep).await {
            Ok(report)
                if report["events"] != 0
                    || report["delivered"] != 0
                    || report["retrying"] != 0
                    || report["exhausted"] != 0 =>
            {
                eprintln!("delivery sweep: {report}")
            }
            Ok(_) => {}
            Err(e) => eprintln!("delivery sweep: {e}"),
        }
    }
}

/// The local stand-in of the reconciliation schedule: invokes the reconcile
/// function through cargo lambda watch's Invoke API every `every`, and logs what
/// each run found.
async fn reconcile_schedule(gateway: Arc<Gateway>, every: Duration) {
    let Backend::Functions(functions_url) = &gateway.backend else {
        return;
    };
    let url = format!("{functions_url}/2015-03-31/functions/reconcile/invocations");
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let answer = gateway
            .http
            .post(&url)
            // The reconcile function's Timeout in template.yaml.
            .timeout(Duration::from_secs(120))
            .json(&json!({"source": "local-gateway.reconcile-schedule"}))
            .send()
            .await;
        match answer {
            Ok(response) => {
                let status = response.status();
                let body = response.text().await.unwrap_or_default();
                eprintln!("scheduled reconciliation: {status} {body}");
            }
            Err(e) => eprintln!("scheduled reconciliation: could not invoke the function: {e}"),
        }
    }
}

#[tokio::main]
async fn main() {
    let options = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("local-gateway: {e}\n\n{USAGE}");
            std::process::exit(2);
        }
    };
    let page_config = format!(
        "window.CHECKOUT_CONFIG = {};\n",
        json!({
            "merchantBase": "",
            "widgetScript": options.widget_script,
            "publicKey": options.public_key,
            "holderType": "individual",
            "flow": options.checkout_flow,
        })
    );
    let gateway = Arc::new(Gateway {
        backend: options.backend,
        checkout_dir: options.checkout_dir,
        page_config,
        http: shared::fintoc::http_client_builder()
            .build()
            .expect("HTTP client"),
        webhook_faults: Mutex::new(VecDeque::new()),
        orders: merchant::OrderBook::default(),
        api_token: options.api_token,
        inbox: match Inbox::new(options.merchant_webhook_secret.as_deref()) {
            Ok(inbox) => inbox,
            Err(e) => {
                eprintln!("local-gateway: {e}");
                std::process::exit(2);
            }
        },
    });
    if let Some((endpoint, table)) = options.stream {
        tokio::spawn(stream_mapping(gateway.clone(), endpoint, table));
    }
    if let Some(every) = options.sweep_every {
        tokio::spawn(delivery_sweep(gateway.clone(), every));
    }
    if let Some(every) = options.reconcile_every {
        tokio::spawn(reconcile_schedule(gateway.clone(), every));
    }
    let addr = SocketAddr::from(([127, 0, 0, 1], options.port));
    let listener = match TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("local-gateway: cannot listen on {addr}: {e}");
            std::process::exit(1);
        }
    };
    eprintln!("local-gateway listening on http://{addr}");
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let gateway = gateway.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let gateway = gateway.clone();
                async move { Ok::<_, std::convert::Infallible>(route(&gateway, req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn json_response(status: u16, body: &serde_json::Value) -> HttpResponse {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("valid response")
}

fn error(status: u16, code: &str, message: &str) -> HttpResponse {
    let error_type = if status >= 500 {
        "api_error"
    } else {
        "invalid_request_error"
    };
    json_response(
        status,
        &json!({"error": {"type": error_type, "code": code, "message": message}}),
    )
}

async fn route(gateway: &Gateway, req: Request<Incoming>) -> HttpResponse {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let response = match (&method, path.as_str()) {
        (&Method::GET, "/_local/health") => json_response(200, &json!({"ok": true})),
        (&Method::POST, "/_local/faults") => add_faults(gateway, req).await,
        (&Method::POST, "/_merchant/events") => receive_event(gateway, req).await,
        (&Method::GET, "/_local/merchant-events") => {
            json_response(200, &json!({"deliveries": gateway.inbox.all()}))
        }
        (_, p) if p.starts_with("/_merchant/orders/") => merchant_route(gateway, req).await,
        (_, p) if p.starts_with(OPS_PAGE_PREFIX) => ops_page_call(gateway, req).await,
        (_, p) if function_of_path(p) == Some(Function::CreateIntent) => {
            if authorized(gateway, &method, p, req.headers()) {
                forward(gateway, Function::CreateIntent, req).await
            } else {
                unauthorized()
            }
        }
        (_, p) if function_of_path(p) == Some(Function::Operations) => {
            let mut req = req;
            match sigv4_principal(req.headers()) {
                Some(principal) => {
                    let value = http::HeaderValue::from_str(&principal).expect("an ASCII ARN");
                    req.headers_mut().insert(LOCAL_OPERATOR_HEADER, value);
                    forward(gateway, Function::Operations, req).await
                }
                None => iam_forbidden(),
            }
        }
        (_, p) if function_of_path(p) == Some(Function::Webhook) => {
            let fault = gateway
                .webhook_faults
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .pop_front();
            match fault {
                Some(status) => error(
                    status,
                    "forced_by_local_gateway",
                    "The local gateway answered this delivery with a forced status.",
                ),
                None => forward(gateway, Function::Webhook, req).await,
            }
        }
        (&Method::GET, "/config.js") => Response::builder()
            .header("content-type", "application/javascript; charset=utf-8")
            .header("cache-control", "no-store")
            .body(Full::new(Bytes::from(gateway.page_config.clone())))
            .expect("valid response"),
        (&Method::GET, p) => static_file(gateway, p).await,
        _ => error(
            404,
            "route_not_found",
            &format!("No route for {method} {path}."),
        ),
    };
    eprintln!(
        "{method} {path} -> {} ({} ms)",
        response.status().as_u16(),
        started.elapsed().as_millis()
    );
    response
}

/// Whether a request may reach its route: a merchant route wants the configured
/// bearer token, as the template's authorizer wants its credentials (checked
/// before the function runs); other routes, and every route without a token
/// configured, are open.
fn authorized(gateway: &Gateway, method: &Method, path: &str, headers: &http::HeaderMap) -> bool {
    let Some(token) = &gateway.api_token else {
        return true;
    };
    let merchant_route = matches!(
        resolve(Function::CreateIntent, method.as_str(), path),
        Matched::Route { route, .. } if route.auth == Auth::Merchant
    );
    !merchant_route
        || headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|given| given == token)
}

/// The operator of an operations request, as the stand-in for API Gateway's IAM
/// authorizer names it: a SigV4 `Authorization` header's access key id, as the
/// principal `arn:aws:iam::000000000000:user/<key id>`. Any `x-local-operator`
/// header the caller sent is replaced. The signature is not verified: there is no
/// IAM locally (docs/operations.md).
fn sigv4_principal(headers: &http::HeaderMap) -> Option<String> {
    let authorization = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let credential = authorization
        .strip_prefix("AWS4-HMAC-SHA256 ")?
        .split([',', ' '])
        .find_map(|part| part.trim().strip_prefix("Credential="))?;
    let key_id = credential.split('/').next()?;
    let valid = !key_id.is_empty()
        && key_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    valid.then(|| format!("arn:aws:iam::000000000000:user/{key_id}"))
}

/// Where the operations page (`checkout/operations.html`) sends its calls.
const OPS_PAGE_PREFIX: &str = "/_local/ops/";

/// A call of the operations page: `/_local/ops/…` forwarded to the operations
/// API's `/ops/…`, its operator the name the page gives (`x-ops-operator`, else
/// `ops-page`) as the principal `arn:aws:iam::000000000000:user/<name>`. A browser
/// holds no AWS credentials to sign with: this route exists on the local gateway
/// only (docs/operations.md says how a deployed stack could host the page).
async fn ops_page_call(gateway: &Gateway, mut req: Request<Incoming>) -> HttpResponse {
    let name = req
        .headers()
        .get("x-ops-operator")
        .and_then(|v| v.to_str().ok())
        .filter(|n| {
            !n.is_empty()
                && n.len() <= 64
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
        .unwrap_or("ops-page")
        .to_string();
    let path_and_query = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/")
        .replacen(OPS_PAGE_PREFIX, "/ops/", 1);
    let Ok(uri) = path_and_query.parse() else {
        return error(404, "route_not_found", "No such operations route.");
    };
    *req.uri_mut() = uri;
    let principal = format!("arn:aws:iam::000000000000:user/{name}");
    let value = http::HeaderValue::from_str(&principal).expect("an ASCII ARN");
    req.headers_mut().insert(LOCAL_OPERATOR_HEADER, value);
    forward(gateway, Function::Operations, req).await
}

/// API Gateway's answer to an unsigned request on an IAM route.
fn iam_forbidden() -> HttpResponse {
    Response::builder()
        .status(403)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(br#"{"message":"Forbidden"}"#)))
        .expect("valid response")
}

/// API Gateway's answer to a request its authorizer refuses (its own body, not
/// the API's envelope: the function never ran).
fn unauthorized() -> HttpResponse {
    Response::builder()
        .status(401)
        .header("content-type", "application/json")
        .header("www-authenticate", "Bearer")
        .body(Full::new(Bytes::from_static(
            br#"{"message":"Unauthorized"}"#,
        )))
        .expect("valid response")
}

/// The merchant's endpoint for merchant events: `204` for a delivery whose
/// signature holds, `401` (kept as refused) for any other.
async fn receive_event(gateway: &Gateway, req: Request<Incoming>) -> HttpResponse {
    let headers = req.headers().clone();
    let Ok(body) = req.into_body().collect().await.map(|b| b.to_bytes()) else {
        return error(400, "unreadable_body", "The body could not be read.");
    };
    if gateway.inbox.receive(&headers, &body) {
        Response::builder()
            .status(204)
            .body(Full::new(Bytes::new()))
            .expect("valid response")
    } else {
        error(
            401,
            "invalid_signature",
            "The webhook-signature does not hold for this body and timestamp.",
        )
    }
}

async fn add_faults(gateway: &Gateway, req: Request<Incoming>) -> HttpResponse {
    #[derive(serde::Deserialize)]
    struct Faults {
        webhook: Vec<u16>,
    }
    let body = req.into_body().collect().await.map(|b| b.to_bytes());
    match body
        .ok()
        .and_then(|b| serde_json::from_slice::<Faults>(&b).ok())
    {
        Some(f) if f.webhook.iter().all(|s| (400..600).contains(s)) => {
            let mut faults = gateway
                .webhook_faults
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            faults.extend(f.webhook);
            json_response(200, &json!({"webhook_faults_pending": faults.len()}))
        }
        _ => error(
            400,
            "invalid_faults",
            "Expected {\"webhook\": [statuses from 400 to 599]}.",
        ),
    }
}

/// The merchant's server stand-in: the cart of an order, paying it (creating the
/// intent with the price this server knows, never one from the browser), the
/// order's payments with their refunds, and refunding one of them.
async fn merchant_route(gateway: &Gateway, req: Request<Incoming>) -> HttpResponse {
    let path = req.uri().path().to_string();
    let rest = path.trim_start_matches("/_merchant/orders/");
    let (order_id, action) = match rest.split_once('/') {
        Some((id, action)) => (id.to_string(), Some(action.to_string())),
        None => (rest.to_string(), None),
    };
    if !merchant::valid_order_id(&order_id) {
        return error(
            400,
            "invalid_order_id",
            "Order ids are 1-64 of A-Z a-z 0-9 _ -.",
        );
    }
    let cart = merchant::cart(&order_id);
    let key = req.headers().get("idempotency-key").cloned();
    match (req.method().clone(), action.as_deref()) {
        (Method::GET, None) => json_response(200, &json!(cart)),
        (Method::GET, Some("events")) => {
            let events: Vec<serde_json::Value> = gateway
                .inbox
                .of_order(&order_id)
                .iter()
                .map(|d| serde_json::from_str(&d.body).unwrap_or_default())
                .collect();
            json_response(200, &json!({"events": events}))
        }
        (Method::POST, Some(action @ ("pay" | "checkout-session"))) => {
            let resource = if action == "pay" {
                merchant::Resource::Intent
            } else {
                merchant::Resource::Session
            };
            let path = format!("/{}", resource.path());
            let (status, body) = call_backend(
                gateway,
                Method::POST,
                &path,
                key,
                Some(merchant::create_body(&cart).to_string()),
            )
            .await;
            if status == 201 || status == 200 {
                if let Some(id) = serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v["id"].as_str().map(str::to_string))
                {
                    gateway.orders.add(&order_id, resource, &id);
                }
            }
            raw_json(status, body)
        }
        (Method::GET, Some(payment)) if payment.starts_with("payments/") => {
            // One payment this server made for the order, as the backend records
            // it: what the checkout page polls (it never holds the API's
            // credentials; this server calls the API with its own).
            let payment_id = &payment["payments/".len()..];
            let Some(resource) = gateway.orders.resource_of(&order_id, payment_id) else {
                return error(404, "payment_not_found", "This order has no such payment.");
            };
            let path = format!("/{}/{payment_id}", resource.path());
            let (status, body) = call_backend(gateway, Method::GET, &path, None, None).await;
            raw_json(status, body)
        }
        (Method::GET, Some("payments")) => {
            let mut payments = Vec::new();
            for (resource, id) in gateway.orders.payments(&order_id) {
                let path = format!("/{}/{id}", resource.path());
                let (status, body) = call_backend(gateway, Method::GET, &path, None, None).await;
                if status != 200 {
                    return raw_json(status, body);
                }
                payments
                    .push(serde_json::from_slice::<serde_json::Value>(&body).unwrap_or_default());
            }
            json_response(200, &json!({"order_id": order_id, "payments": payments}))
        }
        (Method::POST, Some("refunds")) => {
            let body = req.into_body().collect().await.map(|b| b.to_bytes());
            let request = body
                .ok()
                .and_then(|b| serde_json::from_slice::<merchant::RefundRequest>(&b).ok());
            let Some(request) = request else {
                return error(
                    400,
                    "invalid_refund_request",
                    "Expected {\"payment_id\": \"...\", \"amount\"?: positive integer}.",
                );
            };
            // Only a payment this server made for this order is refunded from here.
            let Some(resource) = gateway.orders.resource_of(&order_id, &request.payment_id) else {
                return error(404, "payment_not_found", "This order has no such payment.");
            };
            let path = format!("/{}/{}/refunds", resource.path(), request.payment_id);
            let (status, body) = call_backend(
                gateway,
                Method::POST,
                &path,
                key,
                Some(request.backend_body().to_string()),
            )
            .await;
            raw_json(status, body)
        }
        _ => error(404, "route_not_found", &format!("No route for {path}.")),
    }
}

/// One call of the merchant's stand-in to the backend's API: its status and body
/// (a 502 envelope when the function does not answer).
async fn call_backend(
    gateway: &Gateway,
    method: Method,
    path: &str,
    idempotency_key: Option<http::HeaderValue>,
    body: Option<String>,
) -> (u16, Bytes) {
    let mut outbound = gateway
        .http
        .request(method, gateway.backend.url("create-intent", path));
    if let Some(body) = body {
        outbound = outbound
            .header("content-type", "application/json")
            .body(body);
    }
    if let Some(key) = idempotency_key {
        outbound = outbound.header("idempotency-key", key);
    }
    match invoke(gateway, Function::CreateIntent, outbound).await {
        Ok(answer) => (answer.status.as_u16(), answer.body),
        Err(refusal) => (
            refusal.status().as_u16(),
            refusal.into_body().into_inner().unwrap_or_default(),
        ),
    }
}

/// A function's whole answer.
struct Answer {
    status: StatusCode,
    headers: http::HeaderMap,
    body: Bytes,
}

/// Sends `outbound` to `function` and reads its whole answer within the function's
/// configured timeout (`Function::timeout_seconds`, the template's `Timeout`):
/// past it, the gateway answers `504` with the error envelope, as a deployed
/// request never outlives its function; a function that cannot be reached is a
/// `502`. Either way nothing waits forever.
async fn invoke(
    gateway: &Gateway,
    function: Function,
    outbound: reqwest::RequestBuilder,
) -> Result<Answer, HttpResponse> {
    let name = function.name();
    let call = async {
        let answer = outbound.send().await?;
        let (status, headers) = (answer.status(), answer.headers().clone());
        Ok::<_, reqwest::Error>(Answer {
            status,
            headers,
            body: answer.bytes().await?,
        })
    };
    let timeout = gateway.timeout_of(function);
    match tokio::time::timeout(timeout, call).await {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(e)) => Err(error(
            502,
            "function_unreachable",
            &format!("The {name} function did not answer: {e}"),
        )),
        Err(_) => Err(error(
            504,
            "function_timeout",
            &format!(
                "The {name} function did not answer within its {} s timeout. Retry with the same Idempotency-Key.",
                timeout.as_secs()
            ),
        )),
    }
}

fn raw_json(status: u16, body: Bytes) -> HttpResponse {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(body))
        .expect("valid response")
}

/// Forwards the request to a function (under `cargo lambda watch`, whose function
/// URL emulation lives at `/lambda-url/{function}/{path}`, or behind an API).
async fn forward(gateway: &Gateway, function: Function, req: Request<Incoming>) -> HttpResponse {
    let (parts, body) = req.into_parts();
    let Ok(body) = body.collect().await.map(|b| b.to_bytes()) else {
        return error(
            400,
            "unreadable_body",
            "The request body could not be read.",
        );
    };
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    // cargo lambda's function URL emulation answers a bare 500 to a body or a
    // header that is not UTF-8. Deployed, the function gets such a body as bytes
    // and refuses it as JSON, and API Gateway passes a header's bytes as
    // ISO-8859-1 characters: the gateway answers the first as the function would
    // and hands the second on as those characters.
    if std::str::from_utf8(&body).is_err() {
        return error(
            400,
            "invalid_json",
            "The body is not valid JSON: it is not UTF-8 text.",
        );
    }
    let url = gateway.backend.url(function.name(), path_and_query);
    let mut outbound = gateway.http.request(parts.method, url).body(body);
    for (name, value) in &parts.headers {
        if !matches!(
            name.as_str(),
            "host" | "content-length" | "connection" | "transfer-encoding"
        ) {
            outbound = outbound.header(name, latin1_as_utf8(value));
        }
    }
    let answer = match invoke(gateway, function, outbound).await {
        Ok(answer) => answer,
        Err(refusal) => return refusal,
    };
    let mut response = Response::builder().status(answer.status);
    for (name, value) in &answer.headers {
        if !matches!(
            name.as_str(),
            "content-length" | "connection" | "transfer-encoding"
        ) {
            response = response.header(name, value);
        }
    }
    response
        .body(Full::new(answer.body))
        .expect("valid response")
}

/// A header value's bytes read as ISO-8859-1 characters, written as UTF-8 (the
/// value itself when it is ASCII).
fn latin1_as_utf8(value: &http::HeaderValue) -> http::HeaderValue {
    if value.as_bytes().is_ascii() {
        return value.clone();
    }
    let text: String = value.as_bytes().iter().map(|&b| char::from(b)).collect();
    http::HeaderValue::from_bytes(text.as_bytes()).unwrap_or_else(|_| value.clone())
}

async fn static_file(gateway: &Gateway, path: &str) -> HttpResponse {
    let name = match path {
        "/" => "index.html",
        p => p.trim_start_matches('/'),
    };
    let safe = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        && !name.starts_with('.');
    let content_type = match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "application/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        _ => "application/octet-stream",
    };
    if !safe {
        return error(404, "not_found", "No such file.");
    }
    match tokio::fs::read(gateway.checkout_dir.join(name)).await {
        Ok(bytes) => Response::builder()
            .status(StatusCode::OK)
            .header("content-type", content_type)
            .header("cache-control", "no-store")
            .body(Full::new(Bytes::from(bytes)))
            .expect("valid response"),
        Err(_) => error(404, "not_found", "No such file."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_operations_request_names_its_sigv4_key_as_the_operator() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(sigv4_principal(&headers), None, "unsigned");
        headers.insert(
            http::header::AUTHORIZATION,
            "AWS4-HMAC-SHA256 Credential=AKIDANA/20261206/us-east-1/execute-api/aws4_request, SignedHeaders=host, Signature=ab"
                .parse()
                .unwrap(),
        );
        assert_eq!(
            sigv4_principal(&headers).as_deref(),
            Some("arn:aws:iam::000000000000:user/AKIDANA")
        );
        for other in [
            "Bearer token",
            "AWS4-HMAC-SHA256 Credential=/x",
            "AWS4-HMAC-SHA256 Credential=a:b/x",
        ] {
            headers.insert(http::header::AUTHORIZATION, other.parse().unwrap());
            assert_eq!(sigv4_principal(&headers), None, "{other}");
        }
    }

    #[test]
    fn a_batch_resumes_at_its_first_failed_record() {
        let batch: Vec<serde_json::Value> = ["1", "2", "3"]
            .iter()
            .map(|n| json!({"dynamodb": {"SequenceNumber": n}}))
            .collect();
        let answer = |failures: serde_json::Value| json!({"batchItemFailures": failures});
        assert_eq!(first_failure(&batch, &answer(json!([]))), None);
        assert_eq!(first_failure(&batch, &json!(null)), None);
        assert_eq!(
            first_failure(&batch, &answer(json!([{"itemIdentifier": "2"}]))),
            Some(1)
        );
        assert_eq!(
            first_failure(&batch, &answer(json!([{"itemIdentifier": "9"}]))),
            Some(0),
            "an unknown record: the whole batch again"
        );
    }

    fn gateway(functions_url: String) -> Gateway {
        Gateway {
            backend: Backend::Functions(functions_url),
            checkout_dir: PathBuf::from("checkout"),
            page_config: String::new(),
            http: shared::fintoc::http_client_builder().build().unwrap(),
            webhook_faults: Mutex::new(VecDeque::new()),
            orders: merchant::OrderBook::default(),
            api_token: Some("t0ken".into()),
            inbox: Inbox::new(None).unwrap(),
        }
    }

    /// A function that takes the request and never answers (an instance the
    /// watcher restarted mid-invocation did exactly that): the gateway answers 504
    /// with the envelope once the function's timeout has passed, instead of
    /// holding the caller. Time is tokio's paused clock, so the test does not wait.
    #[tokio::test(start_paused = true)]
    async fn a_function_that_never_answers_is_a_504_after_its_timeout() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let held = tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            std::future::pending::<()>().await;
            drop(socket);
        });
        let gateway = gateway(url);
        let started = tokio::time::Instant::now();
        let outbound = gateway
            .http
            .post(gateway.backend.url("webhook", "/webhooks/fintoc"))
            .body("{}");
        let refusal = match invoke(&gateway, Function::Webhook, outbound).await {
            Err(refusal) => refusal,
            Ok(_) => panic!("a function that never answers answered"),
        };
        assert_eq!(
            started.elapsed(),
            Duration::from_secs(Function::Webhook.timeout_seconds())
        );
        assert_eq!(refusal.status(), 504);
        let body = refusal.into_body().collect().await.unwrap().to_bytes();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["type"], "api_error");
        assert_eq!(body["error"]["code"], "function_timeout");
        assert!(body["error"]["message"].as_str().unwrap().contains("10 s"));
        held.abort();
    }

    #[tokio::test]
    async fn a_function_that_cannot_be_reached_is_a_502() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let gateway = gateway(url);
        let outbound = gateway.http.get(
            gateway
                .backend
                .url("create-intent", "/payment-intents/pi_1"),
        );
        let refusal = match invoke(&gateway, Function::CreateIntent, outbound).await {
            Err(refusal) => refusal,
            Ok(_) => panic!("nothing listens, yet it answered"),
        };
        assert_eq!(refusal.status(), 502);
    }

    #[test]
    fn merchant_routes_want_the_token_and_the_webhook_does_not() {
        let gateway = gateway("http://127.0.0.1:1".into());
        let with = |value: &str| {
            let mut headers = http::HeaderMap::new();
            headers.insert(http::header::AUTHORIZATION, value.parse().unwrap());
            headers
        };
        let none = http::HeaderMap::new();
        let get = Method::GET;
        let post = Method::POST;
        assert!(!authorized(&gateway, &get, "/payment-intents/pi_1", &none));
        assert!(!authorized(
            &gateway,
            &get,
            "/payment-intents/pi_1",
            &with("Bearer nope")
        ));
        assert!(!authorized(
            &gateway,
            &post,
            "/refunds/re_i.x.k0/cancel",
            &with("t0ken")
        ));
        assert!(authorized(
            &gateway,
            &get,
            "/payment-intents/pi_1",
            &with("Bearer t0ken")
        ));
        assert!(authorized(&gateway, &post, "/webhooks/fintoc", &none));
        // A method no route takes reaches the function, which answers 405.
        assert!(authorized(
            &gateway,
            &Method::TRACE,
            "/payment-intents",
            &none
        ));
        let open = Gateway {
            api_token: None,
            ..gateway
        };
        assert!(authorized(&open, &get, "/payment-intents/pi_1", &none));
    }

    #[test]
    fn a_header_that_is_not_ascii_is_handed_on_as_its_latin1_characters() {
        let value = http::HeaderValue::from_bytes(&[0xd7, 0xf8, b'k']).unwrap();
        assert_eq!(latin1_as_utf8(&value).as_bytes(), "×øk".as_bytes());
        let ascii = http::HeaderValue::from_static("key-1");
        assert_eq!(latin1_as_utf8(&ascii), ascii);
    }
}
