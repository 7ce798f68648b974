//! `lambda-bench`: runs the functions' real binaries under a minimal Lambda Runtime
//! API, with DynamoDB Local and the Fintoc simulator behind them, and measures them.
//!
//! ```text
//! lambda-bench cold-start --function F --bootstrap PATH --dynamodb URL [--runs N] [--out FILE]
//! lambda-bench load-webhook --bootstrap PATH --dynamodb URL [--intents N] [--concurrency C] [--out FILE]
//! lambda-bench load-create --bootstrap PATH --dynamodb URL [--keys N] [--repeats R] [--concurrency C] [--out FILE]
//! ```
//!
//! The Runtime API stub speaks the documented protocol
//! (`/2018-06-01/runtime/invocation/next`, `.../{id}/response`, `.../{id}/error`,
//! `/init/error`). A cold start is timed from spawning the process to its first
//! `next` request (init) and to its first response. Load runs start one process per
//! concurrent invocation — as Lambda runs one invocation per execution environment —
//! then check the invariants on the table and the simulator. Every figure is printed
//! as JSON (and written to `--out`).

use bytes::Bytes;
use fintoc_sim::{Simulator, SimulatorConfig, DEFAULT_SECRET_KEY};
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

const WEBHOOK_SECRET: &str = "whsec_bench_local";

// ---------------------------------------------------------------------------
// Runtime API stub.

struct Invocation {
    id: String,
    event: Bytes,
    reply: oneshot::Sender<Outcome>,
}

/// How one invocation went.
struct Outcome {
    /// The function's response (or error) body.
    body: Bytes,
    /// It reported an error instead of a response.
    error: bool,
    /// From handing the event out (`next`) to the response: the billed duration.
    duration: Duration,
}

struct InFlight {
    reply: oneshot::Sender<Outcome>,
    handed_at: Instant,
}

struct StubState {
    queue: tokio::sync::Mutex<mpsc::UnboundedReceiver<Invocation>>,
    in_flight: Mutex<HashMap<String, InFlight>>,
    first_next: Mutex<Option<Instant>>,
    init_errors: Mutex<Vec<String>>,
}

struct RuntimeApi {
    addr: SocketAddr,
    sender: mpsc::UnboundedSender<Invocation>,
    state: Arc<StubState>,
    next_id: std::sync::atomic::AtomicU64,
}

impl RuntimeApi {
    async fn start() -> Arc<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (sender, receiver) = mpsc::unbounded_channel();
        let state = Arc::new(StubState {
            queue: tokio::sync::Mutex::new(receiver),
            in_flight: Mutex::new(HashMap::new()),
            first_next: Mutex::new(None),
            init_errors: Mutex::new(Vec::new()),
        });
        let serve_state = state.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let state = serve_state.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| runtime_route(state.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Arc::new(Self {
            addr,
            sender,
            state,
            next_id: Default::default(),
        })
    }

    /// Queues an event and waits for the function's answer.
    async fn invoke(&self, event: Vec<u8>) -> Outcome {
        let n = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (reply, answer) = oneshot::channel();
        self.sender
            .send(Invocation {
                id: format!("req-{n:08}"),
                event: Bytes::from(event),
                reply,
            })
            .expect("stub running");
        answer.await.expect("the function answered")
    }

    fn first_next(&self) -> Option<Instant> {
        *self.state.first_next.lock().unwrap()
    }
}

type StubResponse = Response<Full<Bytes>>;

async fn runtime_route(
    state: Arc<StubState>,
    req: Request<Incoming>,
) -> Result<StubResponse, std::convert::Infallible> {
    let arrived = Instant::now();
    let path = req.uri().path().to_string();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let empty = |status: u16| {
        Response::builder()
            .status(status)
            .body(Full::new(Bytes::new()))
            .expect("response")
    };
    if path == "/2018-06-01/runtime/invocation/next" {
        state.first_next.lock().unwrap().get_or_insert(arrived);
        let invocation = state.queue.lock().await.recv().await;
        let Some(invocation) = invocation else {
            return Ok(empty(500));
        };
        let deadline_ms =
            (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64 + 30_000;
        state.in_flight.lock().unwrap().insert(
            invocation.id.clone(),
            InFlight {
                reply: invocation.reply,
                handed_at: Instant::now(),
            },
        );
        return Ok(Response::builder()
            .header("content-type", "application/json")
            .header("lambda-runtime-aws-request-id", &invocation.id)
            .header("lambda-runtime-deadline-ms", deadline_ms.to_string())
            .header(
                "lambda-runtime-invoked-function-arn",
                "arn:aws:lambda:us-east-1:123456789012:function:bench",
            )
            .header(
                "lambda-runtime-trace-id",
                "Root=1-00000000-000000000000000000000000",
            )
            .body(Full::new(invocation.event))
            .expect("response"));
    }
    if path == "/2018-06-01/runtime/init/error" {
        state
            .init_errors
            .lock()
            .unwrap()
            .push(String::from_utf8_lossy(&body).into_owned());
        return Ok(empty(202));
    }
    if let Some(rest) = path.strip_prefix("/2018-06-01/runtime/invocation/") {
        if let Some((id, kind)) = rest.split_once('/') {
            if let Some(flight) = state.in_flight.lock().unwrap().remove(id) {
                let _ = flight.reply.send(Outcome {
                    body,
                    error: kind == "error",
                    duration: arrived - flight.handed_at,
                });
                return Ok(empty(202));
            }
        }
    }
    Ok(empty(404))
}

// ---------------------------------------------------------------------------
// The functions' processes.

struct Setup {
    function: String,
    bootstrap: String,
    dynamodb: String,
    table: String,
    sim: Simulator,
}

impl Setup {
    async fn new(function: &str, bootstrap: &str, dynamodb: &str) -> Self {
        let sim = Simulator::start(SimulatorConfig::default())
            .await
            .expect("simulator");
        let table = format!(
            "bench-{function}-{}",
            time::OffsetDateTime::now_utc().unix_timestamp_nanos()
        );
        shared::store::create_table(&dynamodb_client(dynamodb), &table)
            .await
            .expect("create the table on DynamoDB Local");
        Self {
            function: function.to_string(),
            bootstrap: bootstrap.to_string(),
            dynamodb: dynamodb.to_string(),
            table,
            sim,
        }
    }

    /// Starts the function's binary against `api`, configured from the environment.
    fn spawn(&self, api: &RuntimeApi) -> tokio::process::Child {
        let mut command = tokio::process::Command::new(&self.bootstrap);
        command
            .env_clear()
            .env("AWS_LAMBDA_RUNTIME_API", api.addr.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", &self.function)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "bench")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "local")
            .env("AWS_SECRET_ACCESS_KEY", "local")
            .env("TABLE_NAME", &self.table)
            .env("DYNAMODB_ENDPOINT", &self.dynamodb)
            .env("FINTOC_BASE_URL", format!("http://{}", self.sim.addr()))
            .env("FINTOC_SECRET_KEY", DEFAULT_SECRET_KEY)
            .env("WEBHOOK_SECRET", WEBHOOK_SECRET)
            .env("RECIPIENT_HOLDER_ID", "771433855")
            .env("RECIPIENT_ACCOUNT_NUMBER", "123456789")
            .env("RECIPIENT_ACCOUNT_TYPE", "checking_account")
            .env("RECIPIENT_INSTITUTION_ID", "cl_banco_de_chile")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        command.spawn().expect("start the function binary")
    }
}

fn dynamodb_client(endpoint: &str) -> aws_sdk_dynamodb::Client {
    use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("local", "local", None, None, "bench"))
        .endpoint_url(endpoint)
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

/// Peak resident memory (VmHWM) and CPU time of a running process, from /proc.
fn process_usage(pid: u32) -> (u64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let hwm_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name: utime and stime are the 12th and 13th.
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|i| fields.get(*i).and_then(|f| f.parse::<u64>().ok()))
        .sum();
    // USER_HZ is 100 on Linux.
    (hwm_kib, ticks as f64 * 10.0)
}

// ---------------------------------------------------------------------------
// Events.

fn http_event(method: &str, path: &str, headers: Value, body: &str) -> Vec<u8> {
    let now_ms = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
    json!({
        "version": "2.0",
        "routeKey": format!("{method} {path}"),
        "rawPath": path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012", "apiId": "bench", "domainName": "bench.local",
            "domainPrefix": "bench",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": "127.0.0.1", "userAgent": "lambda-bench"},
            "requestId": uuid_like(), "routeKey": format!("{method} {path}"), "stage": "$default",
            "time": "01/Jan/2026:00:00:00 +0000", "timeEpoch": now_ms
        },
        "body": body,
        "isBase64Encoded": false
    })
    .to_string()
    .into_bytes()
}

fn uuid_like() -> String {
    format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..))
}

fn create_event(key: &str, amount: u64) -> Vec<u8> {
    http_event(
        "POST",
        "/payment-intents",
        json!({"content-type": "application/json", "idempotency-key": key}),
        &json!({"amount": amount, "currency": "CLP", "order_id": format!("order-{key}")})
            .to_string(),
    )
}

fn webhook_body(event_id: &str, intent_id: &str, status: &str) -> String {
    json!({
        "id": event_id, "object": "event", "type": format!("payment_intent.{status}"),
        "mode": "test", "created_at": "2026-01-01T00:00:05.000Z",
        "data": {
            "id": intent_id, "object": "payment_intent", "amount": 15000, "currency": "CLP",
            "status": status, "mode": "test", "metadata": {"order_id": format!("order-{intent_id}")},
            "error_reason": if matches!(status, "failed" | "rejected") { json!("insufficient_funds") } else { json!(null) },
            "created_at": "2026-01-01T00:00:00.000Z",
            "sender_account": {"holder_id": "183917137", "institution_id": "cl_banco_estado",
                               "number": "000012345678", "type": "checking_account"},
            "transaction_date": if status == "succeeded" { json!("2026-01-01T00:00:05.000Z") } else { json!(null) },
            "reference_id": if status == "succeeded" { json!("90123712") } else { json!(null) },
            "widget_token": null
        }
    })
    .to_string()
}

fn webhook_event(body: &str) -> Vec<u8> {
    let signature = fintoc_sim::sign(WEBHOOK_SECRET, fintoc_sim::unix_now(), body.as_bytes());
    http_event(
        "POST",
        "/webhooks/fintoc",
        json!({"content-type": "application/json", "fintoc-signature": signature}),
        body,
    )
}

/// The HTTP status and JSON body inside a function's API Gateway response.
fn http_answer(outcome: &Outcome) -> (u16, Value) {
    if outcome.error {
        return (0, Value::Null);
    }
    let response: Value = serde_json::from_slice(&outcome.body).unwrap_or(Value::Null);
    let status = response["statusCode"].as_u64().unwrap_or(0) as u16;
    let body = response["body"]
        .as_str()
        .and_then(|b| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null);
    (status, body)
}

// ---------------------------------------------------------------------------
// Statistics.

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p / 100.0 * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn summary(mut values: Vec<f64>) -> Value {
    values.sort_by(|a, b| a.total_cmp(b));
    let round = |v: f64| (v * 1000.0).round() / 1000.0;
    json!({
        "n": values.len(),
        "min": round(*values.first().unwrap_or(&f64::NAN)),
        "p50": round(percentile(&values, 50.0)),
        "p90": round(percentile(&values, 90.0)),
        "p99": round(percentile(&values, 99.0)),
        "max": round(*values.last().unwrap_or(&f64::NAN)),
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

// ---------------------------------------------------------------------------
// Cold start.

async fn cold_start(setup: &Setup, runs: usize) -> Result<Value, String> {
    let (mut init, mut first_response, mut first_duration, mut rss) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for run in 0..runs {
        let api = RuntimeApi::start().await;
        let event = match setup.function.as_str() {
            "create-intent" => create_event(&format!("cold-{run}-{}", uuid_like()), 15000),
            _ => webhook_event(&webhook_body(
                &format!("evt_cold_{run}_{}", uuid_like()),
                &format!("pi_cold_{run}_{}", uuid_like()),
                "succeeded",
            )),
        };
        let started = Instant::now();
        let mut child = setup.spawn(&api);
        let outcome = tokio::time::timeout(Duration::from_secs(30), api.invoke(event))
            .await
            .map_err(|_| {
                format!(
                    "no answer within 30 s; init errors: {:?}",
                    api.state.init_errors.lock().unwrap()
                )
            })?;
        let answered = Instant::now();
        let (status, body) = http_answer(&outcome);
        let expected = if setup.function == "create-intent" {
            201
        } else {
            200
        };
        if status != expected {
            return Err(format!(
                "first invocation answered {status}, expected {expected}: {body}"
            ));
        }
        let ready = api
            .first_next()
            .ok_or("the function never asked for an event")?;
        init.push(ms(ready - started));
        first_response.push(ms(answered - started));
        first_duration.push(ms(outcome.duration));
        if let Some(pid) = child.id() {
            rss.push(process_usage(pid).0 as f64 / 1024.0);
        }
        let _ = child.kill().await;
    }
    Ok(json!({
        "function": setup.function,
        "runs": runs,
        "init_ms": summary(init),
        "first_response_ms": summary(first_response),
        "first_invocation_duration_ms": summary(first_duration),
        "rss_after_first_mib": summary(rss),
    }))
}

// ---------------------------------------------------------------------------
// Load.

struct Fleet {
    api: Arc<RuntimeApi>,
    children: Vec<tokio::process::Child>,
}

impl Fleet {
    async fn start(setup: &Setup, instances: usize) -> Fleet {
        let api = RuntimeApi::start().await;
        let children = (0..instances).map(|_| setup.spawn(&api)).collect();
        Fleet { api, children }
    }

    /// Peak RSS (MiB) and CPU milliseconds of each process.
    fn usage(&self) -> Vec<(f64, f64)> {
        self.children
            .iter()
            .filter_map(|c| c.id())
            .map(|pid| {
                let (kib, cpu_ms) = process_usage(pid);
                (kib as f64 / 1024.0, cpu_ms)
            })
            .collect()
    }
}

/// Sends every event through the fleet, `concurrency` at a time, retrying 5xx and
/// errors like Fintoc or a merchant's backend (up to 8 times, with backoff). Returns each event's final answer and latency.
async fn drive(
    api: Arc<RuntimeApi>,
    events: Vec<(usize, Vec<u8>)>,
    concurrency: usize,
) -> (Vec<(usize, u16, Value)>, Vec<f64>, Vec<f64>, u64) {
    let queue = Arc::new(Mutex::new(events));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (api, queue) = (api.clone(), queue.clone());
        tasks.push(tokio::spawn(async move {
            let mut answers = Vec::new();
            let (mut latencies, mut durations, mut retries) = (Vec::new(), Vec::new(), 0u64);
            loop {
                let next = queue.lock().unwrap().pop();
                let Some((tag, event)) = next else { break };
                let started = Instant::now();
                let mut attempt = 0;
                loop {
                    let outcome = api.invoke(event.clone()).await;
                    durations.push(ms(outcome.duration));
                    let (status, body) = http_answer(&outcome);
                    if (status >= 500 || status == 0 || status == 409) && attempt < 8 {
                        // Back off like a client would (10 ms, 20 ms, ... 1.28 s).
                        tokio::time::sleep(Duration::from_millis(10 << attempt)).await;
                        attempt += 1;
                        retries += 1;
                        continue;
                    }
                    latencies.push(ms(started.elapsed()));
                    answers.push((tag, status, body));
                    break;
                }
            }
            (answers, latencies, durations, retries)
        }));
    }
    let (mut answers, mut latencies, mut durations, mut retries) =
        (Vec::new(), Vec::new(), Vec::new(), 0);
    for task in tasks {
        let (a, l, d, r) = task.await.expect("driver task");
        answers.extend(a);
        latencies.extend(l);
        durations.extend(d);
        retries += r;
    }
    (answers, latencies, durations, retries)
}

fn fleet_report(usage: &[(f64, f64)], invocations: usize) -> Value {
    let cpu_total: f64 = usage.iter().map(|u| u.1).sum();
    json!({
        "processes": usage.len(),
        "peak_rss_mib": summary(usage.iter().map(|u| u.0).collect()),
        "cpu_ms_total": cpu_total,
        "cpu_ms_per_invocation": (cpu_total / invocations.max(1) as f64 * 1000.0).round() / 1000.0,
    })
}

/// One load run: a fleet of `concurrency` processes driven with `events`.
struct LoadRun {
    answers: Vec<(usize, u16, Value)>,
    figures: Value,
}

impl LoadRun {
    async fn execute(setup: &Setup, events: Vec<(usize, Vec<u8>)>, concurrency: usize) -> Self {
        let count = events.len();
        let fleet = Fleet::start(setup, concurrency).await;
        let started = Instant::now();
        let (answers, latencies, durations, retries) =
            drive(fleet.api.clone(), events, concurrency).await;
        let elapsed = started.elapsed();
        let usage = fleet.usage();
        drop(fleet);
        let figures = json!({
            "concurrency": concurrency,
            "elapsed_s": (elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
            "throughput_per_s": (count as f64 / elapsed.as_secs_f64()).round(),
            "latency_ms": summary(latencies),
            "invocation_duration_ms": summary(durations),
            "retried_invocations": retries,
            "fleet": fleet_report(&usage, count + retries as usize),
        });
        Self { answers, figures }
    }

    /// The run's figures with `extra` fields added.
    fn report(&self, extra: Value) -> Value {
        let mut report = self.figures.clone();
        if let (Some(report), Value::Object(extra)) = (report.as_object_mut(), extra) {
            report.extend(extra);
        }
        report
    }
}

async fn load_webhook(
    setup: &Setup,
    intents: usize,
    concurrency: usize,
    duplicate_share: f64,
) -> Result<Value, String> {
    const OUTCOMES: [&str; 3] = ["succeeded", "failed", "rejected"];
    // Per intent: 7 distinct events (3 pending, 4 with its outcome); then 30 % of all
    // deliveries are repeats of some of them; everything shuffled.
    let mut unique = Vec::new();
    let mut expected = BTreeMap::new();
    for i in 0..intents {
        let intent = format!("pi_load_{i:05}_{}", &uuid_like()[..8]);
        let outcome = OUTCOMES[i % 10 % 3];
        let outcome = if i % 10 < 7 { "succeeded" } else { outcome };
        for e in 0..7 {
            let status = if e < 3 { "pending" } else { outcome };
            unique.push((
                intent.clone(),
                format!("evt_{i:05}_{e}_{}", &uuid_like()[..6]),
                status,
            ));
        }
        expected.insert(intent, outcome);
    }
    let total = (unique.len() as f64 / (1.0 - duplicate_share)).round() as usize;
    let mut deliveries: Vec<usize> = (0..unique.len()).collect();
    while deliveries.len() < total {
        deliveries.push(fastrand::usize(..unique.len()));
    }
    fastrand::shuffle(&mut deliveries);
    let events: Vec<(usize, Vec<u8>)> = deliveries
        .iter()
        .map(|&u| {
            let (intent, event_id, status) = &unique[u];
            (u, webhook_event(&webhook_body(event_id, intent, status)))
        })
        .collect();

    let run = LoadRun::execute(setup, events, concurrency).await;
    let answers = &run.answers;

    // Invariants, on the table itself.
    let refused = answers.iter().filter(|(_, s, _)| *s != 200).count();
    let items = scan_intents(&dynamodb_client(&setup.dynamodb), &setup.table).await?;
    let mut wrong_status = 0;
    let mut lost_events = 0;
    let mut applied_twice = 0;
    for (intent, outcome) in &expected {
        let Some((status, event_ids, version)) = items.get(intent) else {
            wrong_status += 1;
            lost_events += 7;
            continue;
        };
        if status != outcome {
            wrong_status += 1;
        }
        lost_events += 7usize.saturating_sub(event_ids.len());
        // Every write increments the version: more writes than events = applied twice.
        applied_twice += (*version as usize).saturating_sub(7);
    }
    let report = run.report(json!({
        "deliveries": deliveries.len(),
        "intents": intents,
        "distinct_events": unique.len(),
        "duplicate_share": ((deliveries.len() - unique.len()) as f64 / deliveries.len() as f64 * 1000.0).round() / 1000.0,
        "invariants": {
            "deliveries_not_acknowledged": refused,
            "intents_in_wrong_state": wrong_status,
            "events_lost": lost_events,
            "events_applied_twice": applied_twice,
        },
    }));
    if refused + wrong_status + lost_events + applied_twice > 0 {
        return Err(format!("invariants broken: {report:#}"));
    }
    Ok(report)
}

/// `INTENT#` items: status, applied event ids, version.
async fn scan_intents(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
) -> Result<HashMap<String, (String, Vec<String>, u64)>, String> {
    let mut items = HashMap::new();
    let mut start = None;
    loop {
        let page = client
            .scan()
            .table_name(table)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| format!("scan: {e}"))?;
        for item in page.items() {
            let text = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
            let Some(pk) = text("pk") else { continue };
            let Some(id) = pk.strip_prefix("INTENT#") else {
                continue;
            };
            let ids = item
                .get("applied_event_ids")
                .and_then(|v| v.as_ss().ok())
                .cloned()
                .unwrap_or_default();
            let version = item
                .get("version")
                .and_then(|v| v.as_n().ok())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            items.insert(
                id.to_string(),
                (text("status").unwrap_or_default(), ids, version),
            );
        }
        match page.last_evaluated_key() {
            Some(k) => start = Some(k.clone()),
            None => return Ok(items),
        }
    }
}

async fn load_create(
    setup: &Setup,
    keys: usize,
    repeats: usize,
    concurrency: usize,
) -> Result<Value, String> {
    let run = &uuid_like()[..8];
    let mut events: Vec<(usize, Vec<u8>)> = (0..keys)
        .flat_map(|k| {
            (0..repeats).map(move |_| {
                (
                    k,
                    create_event(&format!("load-{run}-{k:05}"), 1000 + k as u64),
                )
            })
        })
        .collect();
    fastrand::shuffle(&mut events);
    let requests = events.len();
    let run = LoadRun::execute(setup, events, concurrency).await;
    let answers = &run.answers;

    let mut ids: HashMap<usize, Vec<String>> = HashMap::new();
    let mut not_created = 0;
    for (key, status, body) in answers {
        match (status, body["id"].as_str()) {
            (201, Some(id)) => ids.entry(*key).or_default().push(id.to_string()),
            _ => not_created += 1,
        }
    }
    let keys_with_two_intents = ids
        .values()
        .filter(|v| v.iter().any(|id| id != &v[0]))
        .count();
    let keys_without_intent = keys - ids.len();
    let intents_at_fintoc = setup.sim.intents_created();
    let stored = scan_intents(&dynamodb_client(&setup.dynamodb), &setup.table)
        .await?
        .len();
    let report = run.report(json!({
        "requests": requests,
        "keys": keys,
        "repeats_per_key": repeats,
        "invariants": {
            "requests_not_answered_201": not_created,
            "keys_with_two_intents": keys_with_two_intents,
            "keys_without_intent": keys_without_intent,
            "intents_created_at_fintoc": intents_at_fintoc,
            "intents_stored": stored,
        },
    }));
    if not_created + keys_with_two_intents + keys_without_intent > 0
        || intents_at_fintoc != keys as u64
        || stored != keys
    {
        return Err(format!("invariants broken: {report:#}"));
    }
    Ok(report)
}

// ---------------------------------------------------------------------------

const USAGE: &str = "usage:
  lambda-bench cold-start   --function create-intent|webhook --bootstrap PATH --dynamodb URL [--runs 20] [--out FILE]
  lambda-bench load-webhook --bootstrap PATH --dynamodb URL [--intents 2000] [--concurrency 32] [--duplicates 0.3] [--out FILE]
  lambda-bench load-create  --bootstrap PATH --dynamodb URL [--keys 1000] [--repeats 3] [--concurrency 32] [--out FILE]";

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(command) = args.next() else {
        eprintln!("{USAGE}");
        std::process::exit(2);
    };
    let mut options: HashMap<String, String> = HashMap::new();
    while let Some(flag) = args.next() {
        let Some(name) = flag.strip_prefix("--") else {
            eprintln!("unexpected argument {flag:?}\n{USAGE}");
            std::process::exit(2);
        };
        let value = args.next().unwrap_or_default();
        options.insert(name.to_string(), value);
    }
    let get = |name: &str, default: &str| {
        options
            .get(name)
            .cloned()
            .unwrap_or_else(|| default.to_string())
    };
    let number = |name: &str, default: &str| -> usize {
        get(name, default).parse().unwrap_or_else(|_| {
            eprintln!("--{name} must be a number");
            std::process::exit(2)
        })
    };
    let (Some(bootstrap), Some(dynamodb)) = (options.get("bootstrap"), options.get("dynamodb"))
    else {
        eprintln!("--bootstrap and --dynamodb are required\n{USAGE}");
        std::process::exit(2);
    };
    let runtime = tokio::runtime::Runtime::new().expect("tokio");
    let result = runtime.block_on(async {
        match command.as_str() {
            "cold-start" => {
                let function = get("function", "webhook");
                let setup = Setup::new(&function, bootstrap, dynamodb).await;
                cold_start(&setup, number("runs", "20")).await
            }
            "load-webhook" => {
                let setup = Setup::new("webhook", bootstrap, dynamodb).await;
                let duplicates: f64 = get("duplicates", "0.3").parse().unwrap_or(0.3);
                load_webhook(
                    &setup,
                    number("intents", "2000"),
                    number("concurrency", "32"),
                    duplicates,
                )
                .await
            }
            "load-create" => {
                let setup = Setup::new("create-intent", bootstrap, dynamodb).await;
                load_create(
                    &setup,
                    number("keys", "1000"),
                    number("repeats", "3"),
                    number("concurrency", "32"),
                )
                .await
            }
            other => Err(format!("unknown command {other:?}\n{USAGE}")),
        }
    });
    match result {
        Ok(report) => {
            let text = format!("{report:#}\n");
            print!("{text}");
            if let Some(out) = options.get("out") {
                std::fs::write(out, text).expect("write --out");
            }
        }
        Err(e) => {
            eprintln!("lambda-bench {command}: {e}");
            std::process::exit(1);
        }
    }
}
