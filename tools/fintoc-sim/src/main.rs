//! `fintoc-sim`: the Fintoc API simulator for local development, plus `sign` and
//! `send` commands to sign webhook bodies and send them to any URL.

use fintoc_sim::{
    send_signed, sign, DeliveryPolicy, Simulator, SimulatorConfig, WebhookEndpoint, CONTROL_API,
    DEFAULT_SECRET_KEY,
};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

fn usage() -> String {
    format!(
        "fintoc-sim: a local stand-in for Fintoc's API (payment intents and webhooks).

USAGE:
    fintoc-sim [serve] [OPTIONS]           run the simulator
    fintoc-sim sign --secret S --file F [--timestamp T]
                                           print a Fintoc-Signature header for F's bytes
    fintoc-sim send --url URL --secret S --file F
                                           sign F with the current time and POST it to URL
                                           (like `stripe trigger`: debug a deployed webhook)
    fintoc-sim resign-event --secret S [--timestamp T] FILE...
                                           re-sign API Gateway event files (events/webhook-*.json)
                                           in place, so they pass the 300 s tolerance window

SERVE OPTIONS:
    --host HOST                 address to listen on (default 127.0.0.1; keep it on loopback)
    --port PORT                 port to listen on (default 4010; 0 picks a free port)
    --secret-key KEY            accepted API secret key; repeat for several (default {DEFAULT_SECRET_KEY})
    --webhook-url URL           where to deliver signed webhook events
    --webhook-secret SECRET     signing secret for them (whsec_...)
    --webhook-retry-base-ms MS  first retry delay, doubling each retry (default 3000)
    --webhook-max-retries N     retries after the first attempt (default 17)
    -h, --help                  print this help

Point the backend at it with FINTOC_BASE_URL=http://HOST:PORT and FINTOC_SECRET_KEY=KEY.
Fintoc endpoints: POST/GET /v1/payment_intents, GET /v1/payment_intents/{{id}},
POST /v1/payment_intents/{{id}}/expire.

{CONTROL_API}
"
    )
}

struct Args(std::iter::Skip<std::env::Args>);

impl Args {
    fn value(&mut self, name: &str) -> Result<String, String> {
        self.0.next().ok_or_else(|| format!("{name} needs a value"))
    }
}

fn parse_serve(mut args: Args) -> Result<SimulatorConfig, String> {
    let mut host: IpAddr = [127, 0, 0, 1].into();
    let mut port: u16 = 4010;
    let mut keys = Vec::new();
    let (mut url, mut secret) = (None, None);
    let mut delivery = DeliveryPolicy::default();
    while let Some(arg) = args.0.next() {
        match arg.as_str() {
            "--host" => {
                host = args
                    .value(&arg)?
                    .parse()
                    .map_err(|e| format!("--host: {e}"))?
            }
            "--port" => {
                port = args
                    .value(&arg)?
                    .parse()
                    .map_err(|e| format!("--port: {e}"))?
            }
            "--secret-key" => keys.push(args.value(&arg)?),
            "--webhook-url" => url = Some(args.value(&arg)?),
            "--webhook-secret" => secret = Some(args.value(&arg)?),
            "--webhook-retry-base-ms" => {
                let ms: u64 = args
                    .value(&arg)?
                    .parse()
                    .map_err(|e| format!("{arg}: {e}"))?;
                delivery.base_delay = Duration::from_millis(ms);
            }
            "--webhook-max-retries" => {
                delivery.max_retries = args
                    .value(&arg)?
                    .parse()
                    .map_err(|e| format!("{arg}: {e}"))?
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if keys.is_empty() {
        keys.push(DEFAULT_SECRET_KEY.to_string());
    }
    let webhook = match (url, secret) {
        (Some(url), Some(secret)) => Some(WebhookEndpoint { url, secret }),
        (None, None) => None,
        _ => return Err("--webhook-url and --webhook-secret go together".into()),
    };
    Ok(SimulatorConfig {
        addr: SocketAddr::new(host, port),
        secret_keys: keys,
        webhook,
        delivery,
        ..SimulatorConfig::default()
    })
}

fn fail(message: impl std::fmt::Display, code: i32) -> ! {
    eprintln!("fintoc-sim: {message}");
    std::process::exit(code);
}

async fn serve(config: SimulatorConfig) {
    let sim = Simulator::start(config)
        .await
        .unwrap_or_else(|e| fail(format!("cannot listen: {e}"), 1));
    println!("fintoc-sim listening on {}", sim.base_url());
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// Options of `sign` and `send`.
struct SigningArgs {
    url: Option<String>,
    secret: String,
    body: Vec<u8>,
    timestamp: Option<i64>,
}

fn parse_signing(mut args: Args) -> Result<SigningArgs, String> {
    let (mut url, mut secret, mut file, mut timestamp) = (None, None, None, None);
    while let Some(arg) = args.0.next() {
        match arg.as_str() {
            "--url" => url = Some(args.value(&arg)?),
            "--secret" => secret = Some(args.value(&arg)?),
            "--file" => file = Some(args.value(&arg)?),
            "--timestamp" => {
                timestamp = Some(
                    args.value(&arg)?
                        .parse()
                        .map_err(|e| format!("--timestamp: {e}"))?,
                )
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let secret = secret.ok_or("--secret is required")?;
    let file = file.ok_or("--file is required")?;
    let body = std::fs::read(&file).map_err(|e| format!("{file}: {e}"))?;
    Ok(SigningArgs {
        url,
        secret,
        body,
        timestamp,
    })
}

#[tokio::main]
async fn main() {
    let mut args = Args(std::env::args().skip(1));
    let first = args.0.next();
    if matches!(first.as_deref(), Some("-h" | "--help" | "help")) {
        print!("{}", usage());
        return;
    }
    let usage_error = |e: String| -> ! { fail(format!("{e}\n\n{}", usage()), 2) };
    match first.as_deref() {
        Some("sign") => {
            let a = parse_signing(args).unwrap_or_else(|e| usage_error(e));
            let t = a
                .timestamp
                .unwrap_or_else(|| time::OffsetDateTime::now_utc().unix_timestamp());
            println!("{}", sign(&a.secret, t, &a.body));
        }
        Some("resign-event") => {
            let mut secret = None;
            let mut timestamp = None;
            let mut files = Vec::new();
            while let Some(arg) = args.0.next() {
                match arg.as_str() {
                    "--secret" => {
                        secret = Some(args.value(&arg).unwrap_or_else(|e| usage_error(e)))
                    }
                    "--timestamp" => {
                        let t = args.value(&arg).unwrap_or_else(|e| usage_error(e));
                        timestamp = Some(
                            t.parse::<i64>()
                                .unwrap_or_else(|e| usage_error(format!("--timestamp: {e}"))),
                        );
                    }
                    _ => files.push(std::path::PathBuf::from(arg)),
                }
            }
            let secret = secret.unwrap_or_else(|| usage_error("--secret is required".into()));
            if files.is_empty() {
                usage_error("name at least one event file".into());
            }
            let t = timestamp.unwrap_or_else(fintoc_sim::unix_now);
            for file in files {
                match fintoc_sim::resign_event_file(&file, &secret, t) {
                    Ok(header) => println!("{}: {header}", file.display()),
                    Err(e) => fail(e, 1),
                }
            }
        }
        Some("send") => {
            let a = parse_signing(args).unwrap_or_else(|e| usage_error(e));
            let url = a
                .url
                .unwrap_or_else(|| usage_error("--url is required".into()));
            match send_signed(&url, &a.secret, &a.body).await {
                Ok((status, answer)) => {
                    println!("HTTP {status}\n{answer}");
                    if !(200..300).contains(&status) {
                        std::process::exit(1);
                    }
                }
                Err(e) => fail(e, 1),
            }
        }
        Some("serve") | None => serve(parse_serve(args).unwrap_or_else(|e| usage_error(e))).await,
        Some(_) => {
            let all = Args(std::env::args().skip(1));
            serve(parse_serve(all).unwrap_or_else(|e| usage_error(e))).await
        }
    }
}
