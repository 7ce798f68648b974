//! `payments-ops`: the operator's command line. For now one command, the read-only
//! invariant audit of the payments table (`shared::app::audit`), run with the
//! caller's AWS credentials — a read-only role is enough — or, on the local stack,
//! against its DynamoDB Local (found in `.local/stack.env`).
//!
//!     payments-ops check-invariants [--json] [--segments N] [--env-file PATH]
//!     payments-ops check-invariants --table NAME [--endpoint URL]
//!
//! Prints one report (`--json`: one JSON document) and exits 1 when any rule is
//! broken, 2 when the audit could not run (the error envelope with `--json`).

use serde_json::json;
use shared::clock::{Clock, SystemClock};

const USAGE: &str = "usage: payments-ops check-invariants [--json] [--segments N] [--env-file PATH | --table NAME [--endpoint URL]]";

struct Options {
    json: bool,
    segments: i32,
    table: Option<String>,
    endpoint: Option<String>,
    env_file: String,
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
    match args.next().as_deref() {
        Some("check-invariants") => {}
        Some("-h" | "--help") | None => return Err(USAGE.into()),
        Some(other) => return Err(format!("unknown command {other:?}\n{USAGE}")),
    }
    let mut options = Options {
        json: false,
        segments: 8,
        table: None,
        endpoint: None,
        env_file: ".local/stack.env".into(),
    };
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--json" => options.json = true,
            "--segments" => {
                options.segments = value()?
                    .parse()
                    .ok()
                    .filter(|n| (1..=1000).contains(n))
                    .ok_or("--segments: 1 to 1000")?
            }
            "--table" => options.table = Some(value()?),
            "--endpoint" => options.endpoint = Some(value()?),
            "--env-file" => options.env_file = value()?,
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    Ok(options)
}

/// `KEY=value` lines of the local stack's env file.
fn stack_env(path: &str) -> Option<std::collections::HashMap<String, String>> {
    let text = std::fs::read_to_string(path).ok()?;
    Some(
        text.lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

fn fail(json_out: bool, code: &str, message: &str) -> ! {
    if json_out {
        println!(
            "{}",
            json!({"error": {"type": "api_error", "code": code, "message": message}})
        );
    } else {
        eprintln!("payments-ops: {message}");
    }
    std::process::exit(2);
}

#[tokio::main]
async fn main() {
    let options = match parse(std::env::args().skip(1)) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    // The table: named, or the local stack's (with its DynamoDB Local).
    let local = stack_env(&options.env_file);
    let (table, endpoint) = match (&options.table, &local) {
        (Some(table), _) => (table.clone(), options.endpoint.clone()),
        (None, Some(env)) => match env.get("TABLE_NAME") {
            Some(table) => (table.clone(), env.get("DYNAMODB_ENDPOINT").cloned()),
            None => fail(options.json, "no_table", "the env file names no TABLE_NAME"),
        },
        (None, None) => fail(
            options.json,
            "no_table",
            "name the table (--table) or run from a project with a local stack up (.local/stack.env)",
        ),
    };
    let client = match &endpoint {
        // DynamoDB Local takes any credentials.
        Some(url) => aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::Config::builder()
                .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
                .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
                .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                    "local",
                    "local",
                    None,
                    None,
                    "payments-ops",
                ))
                .endpoint_url(url)
                .build(),
        ),
        None => shared::aws::dynamodb_client(&shared::aws::load_sdk_config().await, None),
    };
    let store = shared::store::DynamoStore::new(client, &table);
    let report =
        match shared::app::audit::check_invariants(&store, options.segments, SystemClock.now_ms())
            .await
        {
            Ok(report) => report,
            Err(e) => fail(
                options.json,
                "audit_failed",
                &format!("the audit could not read the table: {e}"),
            ),
        };
    let violations: Vec<serde_json::Value> = report
        .violations
        .iter()
        .map(|v| json!({"invariant": v.invariant.as_str(), "subject": v.subject, "detail": v.detail}))
        .collect();
    if options.json {
        println!(
            "{}",
            json!({
                "checked": report.checked,
                "scanned": report.scanned,
                "violations": violations,
                "read_units": report.read_units,
                "cleared": report.cleared,
            })
        );
    } else {
        println!(
            "checked {} orders and payments ({} items scanned, {} read units): {} violation(s)",
            report.checked,
            report.scanned,
            report.read_units,
            report.violations.len()
        );
        for v in &report.violations {
            println!("  {} {}: {}", v.invariant.as_str(), v.subject, v.detail);
        }
    }
    if !report.violations.is_empty() {
        std::process::exit(1);
    }
}
