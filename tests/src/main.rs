//! `fintoc-sim`: run the Fintoc API simulator for local development.

use fintoc_sim::{Simulator, SimulatorConfig, CONTROL_API, DEFAULT_SECRET_KEY};
use std::net::{IpAddr, SocketAddr};

fn usage() -> String {
    format!(
        "fintoc-sim: a local stand-in for Fintoc's API (payment intents), for tests and development.

USAGE:
    fintoc-sim [--host HOST] [--port PORT] [--secret-key KEY]...

OPTIONS:
    --host HOST         address to listen on (default 127.0.0.1; keep it on loopback)
    --port PORT         port to listen on (default 4010; 0 picks a free port)
    --secret-key KEY    accepted secret key; repeat for several (default {DEFAULT_SECRET_KEY})
    -h, --help          print this help

Point the backend at it with FINTOC_BASE_URL=http://HOST:PORT and FINTOC_SECRET_KEY=KEY.
Fintoc endpoints: POST/GET /v1/payment_intents, GET /v1/payment_intents/{{id}},
POST /v1/payment_intents/{{id}}/expire.

{CONTROL_API}
"
    )
}

fn parse_args() -> Result<SimulatorConfig, String> {
    let mut host: IpAddr = [127, 0, 0, 1].into();
    let mut port: u16 = 4010;
    let mut keys = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "-h" | "--help" => {
                print!("{}", usage());
                std::process::exit(0);
            }
            "--host" => {
                host = value("--host")?
                    .parse()
                    .map_err(|e| format!("--host: {e}"))?
            }
            "--port" => {
                port = value("--port")?
                    .parse()
                    .map_err(|e| format!("--port: {e}"))?
            }
            "--secret-key" => keys.push(value("--secret-key")?),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if keys.is_empty() {
        keys.push(DEFAULT_SECRET_KEY.to_string());
    }
    Ok(SimulatorConfig {
        addr: SocketAddr::new(host, port),
        secret_keys: keys,
    })
}

#[tokio::main]
async fn main() {
    let config = match parse_args() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("fintoc-sim: {e}\n\n{}", usage());
            std::process::exit(2);
        }
    };
    let sim = match Simulator::start(config).await {
        Ok(sim) => sim,
        Err(e) => {
            eprintln!("fintoc-sim: cannot listen: {e}");
            std::process::exit(1);
        }
    };
    println!("fintoc-sim listening on {}", sim.base_url());
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
