//! A network between the function and its dependencies: `latency-proxy` in front of
//! DynamoDB Local and the simulator, each with its own round trip (each proxy on a
//! thread of its own, waiting precisely), and the round trip it really adds,
//! measured and reported beside the figure set.

use crate::stats::{ms, summary};
use latency_proxy::Exchanges;
use serde_json::Value;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Starts a proxy to `upstream` (an `http://host:port` URL) adding `rtt_ms` per
/// round trip (half each way); answers the proxy's URL and the requests it counts.
pub(crate) async fn delayed(upstream: &str, rtt_ms: f64) -> (String, Exchanges) {
    let addr: SocketAddr = upstream
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .replace("localhost", "127.0.0.1")
        .parse()
        .expect("an http://IP:port endpoint");
    let (proxy, exchanges) =
        latency_proxy::spawn_on_own_thread(addr, Duration::from_secs_f64(rtt_ms / 2000.0))
            .expect("start the latency proxy");
    (format!("http://{proxy}"), exchanges)
}

/// The round trip a proxy set to `rtt_ms` adds, measured: 200 small
/// request-response exchanges on one connection through it to an echo server,
/// against the same without it.
pub(crate) async fn measured_round_trip(rtt_ms: f64) -> Value {
    let echo_addr = latency_proxy::echo_server().await.expect("an echo server");
    let (proxied, _) = delayed(&format!("http://{echo_addr}"), rtt_ms).await;
    let mut samples = Vec::new();
    let mut stream = TcpStream::connect(proxied.trim_start_matches("http://"))
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
