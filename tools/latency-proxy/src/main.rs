//! `latency-proxy --listen 127.0.0.1:8443 --upstream 127.0.0.1:8000 --delay-ms 1`:
//! a TCP proxy that adds `--delay-ms` to each direction (a round trip of twice it),
//! for measuring the functions as deployed, where DynamoDB and Fintoc are a network
//! away (see the library's docs).

use std::time::Duration;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let (mut listen, mut upstream, mut delay_ms) = (None, None, 0u64);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => listen = args.next(),
            "--upstream" => upstream = args.next(),
            "--delay-ms" => delay_ms = args.next().and_then(|v| v.parse().ok()).unwrap_or(0),
            _ => {
                eprintln!("usage: latency-proxy --listen ADDR --upstream ADDR --delay-ms MS");
                std::process::exit(2);
            }
        }
    }
    let (Some(listen), Some(upstream)) = (listen, upstream) else {
        eprintln!("usage: latency-proxy --listen ADDR --upstream ADDR --delay-ms MS");
        std::process::exit(2);
    };
    let upstream = upstream.parse().expect("--upstream is an IP:port");
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .unwrap_or_else(|e| panic!("binding {listen}: {e}"));
    println!("latency-proxy: {listen} -> {upstream}, +{delay_ms} ms each way");
    latency_proxy::serve(listener, upstream, Duration::from_millis(delay_ms)).await;
}
