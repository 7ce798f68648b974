//! The Lambda Runtime API stub the functions' real binaries run against: it hands
//! out queued events (`next`) and collects responses, timing each invocation.

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

pub(crate) struct Invocation {
    pub(crate) id: String,
    pub(crate) event: Bytes,
    pub(crate) reply: oneshot::Sender<Outcome>,
}

/// How one invocation went.
pub(crate) struct Outcome {
    /// The function's response (or error) body.
    pub(crate) body: Bytes,
    /// It reported an error instead of a response.
    pub(crate) error: bool,
    /// From handing the event out (`next`) to the response: the billed duration.
    pub(crate) duration: Duration,
}

pub(crate) struct InFlight {
    pub(crate) reply: oneshot::Sender<Outcome>,
    pub(crate) handed_at: Instant,
}

pub(crate) struct StubState {
    pub(crate) queue: tokio::sync::Mutex<mpsc::UnboundedReceiver<Invocation>>,
    pub(crate) in_flight: Mutex<HashMap<String, InFlight>>,
    pub(crate) first_next: Mutex<Option<Instant>>,
    pub(crate) init_errors: Mutex<Vec<String>>,
}

pub(crate) struct RuntimeApi {
    pub(crate) addr: SocketAddr,
    pub(crate) sender: mpsc::UnboundedSender<Invocation>,
    pub(crate) state: Arc<StubState>,
    pub(crate) next_id: std::sync::atomic::AtomicU64,
}

impl RuntimeApi {
    pub(crate) async fn start() -> Arc<Self> {
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
    pub(crate) async fn invoke(&self, event: Vec<u8>) -> Outcome {
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

    pub(crate) fn first_next(&self) -> Option<Instant> {
        *self.state.first_next.lock().unwrap()
    }
}

pub(crate) type StubResponse = Response<Full<Bytes>>;

pub(crate) async fn runtime_route(
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
