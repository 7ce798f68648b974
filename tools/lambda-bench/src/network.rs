//! A network between the function and its dependencies: `latency-proxy` in front of
//! DynamoDB Local and the simulator, each with its own round trip (each proxy on a
//! thread of its own, waiting precisely), and the round trip it really adds,
//! measured and reported beside the figure set. With `--alternate true`, the
//! DynamoDB proxy's delay switches between none and the round trip invocation by
//! invocation ([`Alternating`], `latency_proxy::alternation`).

use crate::stats::{ms, summary};
use latency_proxy::{Delay, Exchanges};
use serde_json::Value;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A proxy in front of a dependency: the URL the function is given, the requests
/// it carried, and its delay (which [`Alternating`] switches).
pub(crate) struct Proxy {
    pub(crate) url: String,
    pub(crate) exchanges: Exchanges,
    pub(crate) delay: Delay,
}

/// The round trip's two settings taken in turn by a run's invocations, one at a
/// time: none and `round_trip`, on the same proxy, process and DynamoDB Local.
#[derive(Clone)]
pub(crate) struct Alternating {
    pub(crate) delay: Delay,
    pub(crate) round_trip_ms: f64,
    pub(crate) exchanges: Exchanges,
}

impl Alternating {
    /// Sets the proxy for the `ordinal`-th invocation; answers whether it is delayed.
    pub(crate) fn turn(&self, ordinal: usize) -> bool {
        let delayed = latency_proxy::alternation::delayed_turn(ordinal);
        let round_trip = if delayed { self.round_trip_ms } else { 0.0 };
        self.delay.set(each_way(round_trip));
        delayed
    }
}

/// Half of a round trip of `rtt_ms`.
fn each_way(rtt_ms: f64) -> Duration {
    Duration::from_secs_f64(rtt_ms / 2000.0)
}

/// Starts a proxy to `upstream` (an `http://host:port` URL) adding `rtt_ms` per
/// round trip (half each way).
pub(crate) async fn delayed(upstream: &str, rtt_ms: f64) -> Proxy {
    let addr: SocketAddr = upstream
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .replace("localhost", "127.0.0.1")
        .parse()
        .expect("an http://IP:port endpoint");
    let delay = Delay::new(each_way(rtt_ms));
    let (proxy, exchanges) =
        latency_proxy::spawn_on_own_thread(addr, delay.clone()).expect("start the latency proxy");
    Proxy {
        url: format!("http://{proxy}"),
        exchanges,
        delay,
    }
}

/// The round trip a proxy set to `rtt_ms` adds, measured: 200 small
/// request-response exchanges on one connection through it to an echo server,
/// against the same without it.
pub(crate) async fn measured_round_trip(rtt_ms: f64) -> Value {
    let echo_addr = latency_proxy::echo_server().await.expect("an echo server");
    let proxied = delayed(&format!("http://{echo_addr}"), rtt_ms).await;
    let mut samples = Vec::new();
    let mut stream = TcpStream::connect(proxied.url.trim_start_matches("http://"))
        .await
        .expect("connect through the proxy");
    stream.set_nodelay(true).ok();
    let message = [7u8; 200];
    let mut back = [0u8; 200];
    for _ in 0..200 {
        let started = Instant::now();
        stream.write_all(&message).await.expect("write");
        stream.read_exact(&mut back).await.expect("read");
        samples.push(ms(started.elapsed()));
    }
    summary(samples)
}
