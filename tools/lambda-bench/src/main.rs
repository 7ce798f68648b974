//! `lambda-bench`: runs the functions' real binaries under a minimal Lambda Runtime
//! API, with DynamoDB Local and the Fintoc simulator behind them, and measures them.
//!
//! ```text
//! lambda-bench cold-start --function F --bootstrap PATH --dynamodb URL [--runs N] [--env NAME=VALUE,...]
//!                          [--sim-port N] [--function-dynamodb URL] [--function-fintoc URL] [--out FILE]
//! lambda-bench load-webhook --bootstrap PATH --dynamodb URL [--intents N] [--concurrency C] [--duplicates D] [--order shuffled|in-order] [--seed false|true] [--events 7] [--warmup 0] [--env NAME=VALUE,...] [--out FILE]
//! lambda-bench load-create --bootstrap PATH --dynamodb URL [--keys N] [--repeats R] [--concurrency C] [--out FILE]
//! lambda-bench load-refund --bootstrap PATH --dynamodb URL [--payments N] [--concurrency C] [--warmup N] [--out FILE]
//! ```
//!
//! Both load commands take `--dynamodb-rtt-ms MS` and `--fintoc-rtt-ms MS`: the
//! function then reaches DynamoDB and the simulator through `latency-proxy`, each
//! request-response paying that round trip, as deployed (`network.rs`). With
//! `--alternate true` (one invocation at a time), DynamoDB's round trip is on for
//! every other pair of invocations and off for the rest, and the run reports both
//! settings and their paired differences (`alternating` in its JSON): what the
//! round trip adds, on one process and one DynamoDB Local.
//!
//! The Runtime API stub speaks the documented protocol
//! (`/2018-06-01/runtime/invocation/next`, `.../{id}/response`, `.../{id}/error`,
//! `/init/error`). A cold start is timed from spawning the process to its first
//! `next` request (init) and to its first response. Load runs start one process per
//! concurrent invocation — as Lambda runs one invocation per execution environment —
//! then check the invariants on the table and the simulator. Every figure is printed
//! as JSON (and written to `--out`). `--function-dynamodb` and `--function-fintoc`
//! give the function other endpoints than the harness uses (the TLS proxy of
//! `scripts/tls-proxy.sh` in front of DynamoDB Local and the simulator on `--sim-port`).

mod cold_start;
mod events;
mod load;
mod network;
mod refunds;
mod runtime_api;
mod setup;
mod stats;

use cold_start::cold_start;
use load::{load_create, load_webhook};
use setup::Setup;
use std::collections::HashMap;

/// The deployment tag the benchmarked functions are configured with (and the
/// webhook events carry).
const DEPLOYMENT_TAG: &str = "bench";

/// The webhook secret the benchmarked webhook function is configured with.
const WEBHOOK_SECRET: &str = "whsec_bench_local_6e2a9c4f1b7d3058";

const USAGE: &str = "usage:
  lambda-bench cold-start   --function create-intent|webhook|hello --bootstrap PATH --dynamodb URL [--runs 20] [--env NAME=VALUE,...]
                            [--sim-port N] [--function-dynamodb URL] [--function-fintoc URL] [--out FILE]
  lambda-bench load-webhook --bootstrap PATH --dynamodb URL [--intents 2000] [--concurrency 32] [--duplicates 0.3] [--events 7] [--warmup 0] [--env NAME=VALUE,...] [--out FILE]
  lambda-bench load-create  --bootstrap PATH --dynamodb URL [--keys 1000] [--repeats 3] [--concurrency 32] [--warmup 0] [--out FILE]
  lambda-bench load-refund  --bootstrap PATH(create-intent) --dynamodb URL [--payments 100] [--concurrency 1] [--warmup 0] [--out FILE]
  (load-*: [--dynamodb-rtt-ms 0] [--fintoc-rtt-ms 0]: a round trip added to each dependency;
   [--alternate true] with --concurrency 1: DynamoDB's round trip on and off in turns, compared)";

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
    let extra_env: Vec<(String, String)> = get("env", "")
        .split(',')
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((name, value)) => (name.to_string(), value.to_string()),
            None => {
                eprintln!("--env takes NAME=VALUE pairs, got {pair:?}");
                std::process::exit(2)
            }
        })
        .collect();
    let rtt = |name: &str| -> f64 {
        get(name, "0").parse().unwrap_or_else(|_| {
            eprintln!("--{name} must be a number of milliseconds");
            std::process::exit(2)
        })
    };
    let (dynamodb_rtt, fintoc_rtt) = (rtt("dynamodb-rtt-ms"), rtt("fintoc-rtt-ms"));
    let alternate = get("alternate", "false") == "true";
    if alternate
        && (dynamodb_rtt <= 0.0 || options.get("concurrency").map(String::as_str) != Some("1"))
    {
        eprintln!("--alternate true takes --dynamodb-rtt-ms MS and --concurrency 1");
        std::process::exit(2);
    }
    let runtime = tokio::runtime::Runtime::new().expect("tokio");
    let result = runtime.block_on(async {
        match command.as_str() {
            "cold-start" => {
                let function = get("function", "webhook");
                let mut setup = Setup::new(
                    &function,
                    bootstrap,
                    dynamodb,
                    number("sim-port", "0") as u16,
                )
                .await;
                setup.env = extra_env;
                setup.function_dynamodb = options.get("function-dynamodb").cloned();
                setup.function_fintoc = options.get("function-fintoc").cloned();
                cold_start(&setup, number("runs", "20")).await
            }
            "load-webhook" => {
                let mut setup = Setup::new("webhook", bootstrap, dynamodb, 0).await;
                setup.env = extra_env;
                setup
                    .delay_network(dynamodb_rtt, fintoc_rtt, alternate)
                    .await;
                let duplicates: f64 = get("duplicates", "0.3").parse().unwrap_or(0.3);
                load_webhook(
                    &setup,
                    load::WebhookLoad {
                        intents: number("intents", "2000"),
                        concurrency: number("concurrency", "32"),
                        duplicate_share: duplicates,
                        in_order: get("order", "shuffled") == "in-order",
                        seeded: get("seed", "false") == "true",
                        events_per_intent: number("events", "7").max(1),
                        warmup: number("warmup", "0"),
                    },
                )
                .await
            }
            "load-create" => {
                let mut setup = Setup::new("create-intent", bootstrap, dynamodb, 0).await;
                setup
                    .delay_network(dynamodb_rtt, fintoc_rtt, alternate)
                    .await;
                load_create(
                    &setup,
                    number("keys", "1000"),
                    number("repeats", "3"),
                    number("concurrency", "32"),
                    number("warmup", "0"),
                )
                .await
            }
            "load-refund" => {
                let mut setup = Setup::new("create-intent", bootstrap, dynamodb, 0).await;
                setup
                    .delay_network(dynamodb_rtt, fintoc_rtt, alternate)
                    .await;
                refunds::load_refund(
                    &setup,
                    number("payments", "100"),
                    number("concurrency", "1"),
                    number("warmup", "0"),
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
