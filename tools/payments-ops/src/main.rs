//! `payments-ops`: the operator's command line.
//!
//!     payments-ops check-invariants [--json] [--segments N] [--env-file PATH | --table NAME [--endpoint URL]]
//!     payments-ops resolve ORDER_ID --as paid|closed --reason TEXT [--ticket REF] [--json] [--url URL]
//!     payments-ops find ID [--json] [--url URL]
//!     payments-ops show ID [--json] [--url URL]
//!     payments-ops reconcile ID [--json] [--url URL]
//!     payments-ops queue [--json] [--url URL]
//!     payments-ops queue acknowledge ID --reason TEXT [--ticket REF] [--json] [--url URL]
//!     payments-ops audit-log [--subject ID] [--json] [--url URL]
//!     payments-ops events resend EVENT_ID [--destination NAME] [--reason TEXT] [--ticket REF] [--json] [--url URL]
//!     payments-ops events recover --since RFC3339 [--reason TEXT] [--ticket REF] [--json] [--url URL]
//!     payments-ops endpoints list|enable NAME|disable NAME [--reason TEXT] [--ticket REF] [--json] [--url URL]
//!
//! `check-invariants` reads the table itself (read only); the others call the
//! operations API with the caller's AWS credentials, signed with SigV4 — its URL
//! from `--url` (the stack's `OperationsUrl` output) or, on the local stack, from
//! `.local/stack.env`. Every command prints one report (`--json`: one JSON
//! document); a refusal prints the error envelope and exits 1, a failure to get an
//! answer (or a 5xx) exits 2.

mod api;
mod audit;

use serde_json::{json, Value};

const USAGE: &str = "usage:
  payments-ops check-invariants [--json] [--segments N] [--env-file PATH | --table NAME [--endpoint URL]]
  payments-ops resolve ORDER_ID --as paid|closed --reason TEXT [--ticket REF] [--json] [--url URL]
  payments-ops find ID [--json] [--url URL]
  payments-ops show ID [--json] [--url URL]
  payments-ops reconcile ID [--json] [--url URL]
  payments-ops queue [--json] [--url URL]
  payments-ops queue acknowledge ID --reason TEXT [--ticket REF] [--json] [--url URL]
  payments-ops audit-log [--subject ID] [--json] [--url URL]
  payments-ops events resend EVENT_ID [--destination NAME] [--reason TEXT] [--ticket REF] [--json] [--url URL]
  payments-ops events recover --since RFC3339 [--reason TEXT] [--ticket REF] [--json] [--url URL]
  payments-ops endpoints list|enable NAME|disable NAME [--reason TEXT] [--ticket REF] [--json] [--url URL]";

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

/// A command's arguments: flags with values, bare flags, and positionals.
struct Args {
    values: std::collections::HashMap<String, String>,
    json: bool,
    positional: Vec<String>,
}

fn parse_args(args: impl Iterator<Item = String>, with_value: &[&str]) -> Result<Args, String> {
    let mut parsed = Args {
        values: Default::default(),
        json: false,
        positional: Vec::new(),
    };
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        if arg == "--json" {
            parsed.json = true;
        } else if with_value.contains(&arg.as_str()) {
            let value = args.next().ok_or(format!("{arg} needs a value"))?;
            parsed.values.insert(arg, value);
        } else if arg.starts_with("--") {
            return Err(format!("unknown argument {arg:?}\n{USAGE}"));
        } else {
            parsed.positional.push(arg);
        }
    }
    Ok(parsed)
}

/// The operations API's URL: `--url`, else the local stack's (`true`).
fn operations_url(args: &Args) -> (String, bool) {
    if let Some(url) = args.values.get("--url") {
        return (url.clone(), false);
    }
    let env_file = args
        .values
        .get("--env-file")
        .map(String::as_str)
        .unwrap_or(".local/stack.env");
    match stack_env(env_file).and_then(|env| env.get("OPERATIONS_URL").cloned()) {
        Some(url) => (url, true),
        None => fail(
            args.json,
            "no_operations_url",
            "name the operations API (--url, the stack's OperationsUrl output) or run from a project with a local stack up (.local/stack.env)",
        ),
    }
}

/// Calls the API and prints its answer; exits non-zero on a refusal or failure.
async fn call_and_print(
    args: &Args,
    method: &str,
    path: &str,
    query: &[(&str, &str)],
    body: Option<&Value>,
    human: impl Fn(&Value),
) {
    let (url, local) = operations_url(args);
    let api = match api::OperationsApi::connect(&url, local).await {
        Ok(api) => api,
        Err(e) => fail(args.json, "no_credentials", &e),
    };
    let (status, answer) = match api.call(method, path, query, body).await {
        Ok(answer) => answer,
        Err(e) => fail(args.json, "no_answer", &e),
    };
    let refused = !(200..300).contains(&status);
    if args.json {
        println!("{answer}");
    } else if refused {
        eprintln!(
            "payments-ops: refused ({status} {}): {}",
            answer["error"]["code"].as_str().unwrap_or("?"),
            answer["error"]["message"].as_str().unwrap_or_default()
        );
    } else {
        human(&answer);
    }
    match status {
        200..=299 => {}
        400..=499 => std::process::exit(1),
        _ => std::process::exit(2),
    }
}

async fn resolve(args: Args) {
    let [order_id] = args.positional.as_slice() else {
        fail(
            args.json,
            "invalid_arguments",
            &format!("resolve takes one order id\n{USAGE}"),
        );
    };
    let (Some(resolve_as), Some(reason)) = (args.values.get("--as"), args.values.get("--reason"))
    else {
        fail(
            args.json,
            "invalid_arguments",
            &format!("resolve needs --as and --reason\n{USAGE}"),
        );
    };
    let mut body = json!({"as": resolve_as, "reason": reason});
    if let Some(ticket) = args.values.get("--ticket") {
        body["ticket"] = json!(ticket);
    }
    let path = format!("/ops/orders/{order_id}/resolve");
    call_and_print(&args, "POST", &path, &[], Some(&body), |answer| {
        let entry = &answer["resolution"];
        println!(
            "order {} resolved as {} by {} (audit entry {})",
            entry["subject"].as_str().unwrap_or_default(),
            resolve_as,
            entry["actor"].as_str().unwrap_or_default(),
            entry["id"].as_str().unwrap_or_default()
        );
    })
    .await;
}

async fn find(args: Args) {
    let [id] = args.positional.as_slice() else {
        fail(
            args.json,
            "invalid_arguments",
            &format!("find takes one id\n{USAGE}"),
        );
    };
    let path = format!("/ops/find/{id}");
    call_and_print(&args, "GET", &path, &[], None, |answer| {
        let matches = answer["matches"].as_array().cloned().unwrap_or_default();
        println!("{} match(es)", matches.len());
        for m in matches {
            println!(
                "  {} {} (order {})",
                m["kind"].as_str().unwrap_or_default(),
                m["id"].as_str().unwrap_or_default(),
                m["order_id"].as_str().unwrap_or("-")
            );
        }
    })
    .await;
}

fn one_id(args: &Args, command: &str) -> String {
    match args.positional.as_slice() {
        [id] => id.clone(),
        _ => fail(
            args.json,
            "invalid_arguments",
            &format!("{command} takes one id\n{USAGE}"),
        ),
    }
}

async fn show(args: Args) {
    let path = format!("/ops/show/{}", one_id(&args, "show"));
    call_and_print(&args, "GET", &path, &[], None, |answer| {
        let ours = &answer["ours"]["payment"];
        println!(
            "{} {} (order {}): ours {} {} {}; Fintoc now {}",
            answer["kind"].as_str().unwrap_or_default(),
            answer["id"].as_str().unwrap_or_default(),
            answer["order_id"].as_str().unwrap_or("-"),
            ours["status"].as_str().unwrap_or("-"),
            ours["amount"],
            ours["currency"].as_str().unwrap_or_default(),
            answer["fintoc"]
        );
        if let Some(order) = answer["ours"]["order"].as_object() {
            println!("  order: {}", order["state"].as_str().unwrap_or("-"));
        }
        for d in answer["discrepancies"]
            .as_array()
            .cloned()
            .unwrap_or_default()
        {
            println!(
                "  DISCREPANCY {}: ours {} / Fintoc {}",
                d["field"].as_str().unwrap_or_default(),
                d["ours"],
                d["fintoc"]
            );
        }
        for e in answer["timeline"].as_array().cloned().unwrap_or_default() {
            println!(
                "  {} {:<28} {}",
                e["at"].as_str().unwrap_or_default(),
                e["what"].as_str().unwrap_or_default(),
                e["detail"]
            );
        }
    })
    .await;
}

async fn reconcile(args: Args) {
    let path = format!("/ops/reconcile/{}", one_id(&args, "reconcile"));
    call_and_print(&args, "POST", &path, &[], Some(&json!({})), |answer| {
        println!(
            "{} checked with Fintoc: {} (now {})",
            answer["payment_id"].as_str().unwrap_or_default(),
            answer["result"].as_str().unwrap_or_default(),
            answer["payment"]["status"].as_str().unwrap_or("-")
        );
    })
    .await;
}

async fn queue(args: Args) {
    match args.positional.as_slice() {
        [] => {}
        [sub, id] if sub == "acknowledge" => {
            let mut body = act_body(&args, &[]);
            body["id"] = json!(id);
            return call_and_print(
                &args,
                "POST",
                "/ops/queue/acknowledge",
                &[],
                Some(&body),
                |answer| {
                    for item in answer["acknowledged"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                    {
                        println!(
                            "acknowledged: {} {} ({}) left the queue",
                            item["kind"].as_str().unwrap_or_default(),
                            item["id"].as_str().unwrap_or_default(),
                            item["reason"].as_str().unwrap_or_default()
                        );
                    }
                },
            )
            .await;
        }
        _ => fail(
            args.json,
            "invalid_arguments",
            &format!("queue | queue acknowledge ID --reason TEXT\n{USAGE}"),
        ),
    }
    call_and_print(&args, "GET", "/ops/queue", &[], None, |answer| {
        let items = answer["items"].as_array().cloned().unwrap_or_default();
        println!("{} item(s) need a person, oldest first", items.len());
        for i in items {
            println!(
                "  {} {:<20} {} {} (order {})",
                i["since"].as_str().unwrap_or_default(),
                i["reason"].as_str().unwrap_or_default(),
                i["kind"].as_str().unwrap_or_default(),
                i["id"].as_str().unwrap_or_default(),
                i["order_id"].as_str().unwrap_or("-")
            );
        }
    })
    .await;
}

async fn audit_log(args: Args) {
    let subject = args.values.get("--subject").cloned();
    let query: Vec<(&str, &str)> = subject.iter().map(|s| ("subject", s.as_str())).collect();
    call_and_print(&args, "GET", "/ops/audit-log", &query, None, |answer| {
        let entries = answer["entries"].as_array().cloned().unwrap_or_default();
        println!(
            "{} entr{}",
            entries.len(),
            if entries.len() == 1 { "y" } else { "ies" }
        );
        for e in entries {
            println!(
                "  {} {} {} {} by {}: {}{}",
                e["at"].as_str().unwrap_or_default(),
                e["id"].as_str().unwrap_or_default(),
                e["action"].as_str().unwrap_or_default(),
                e["subject"].as_str().unwrap_or_default(),
                e["actor"].as_str().unwrap_or_default(),
                e["reason"].as_str().unwrap_or_default(),
                e["ticket"]
                    .as_str()
                    .map(|t| format!(" ({t})"))
                    .unwrap_or_default()
            );
        }
    })
    .await;
}

/// An act's body: `--reason`, `--ticket` and any of `extra` (flag, field) given.
fn act_body(args: &Args, extra: &[(&str, &str)]) -> Value {
    let mut body = json!({});
    for (flag, field) in [("--reason", "reason"), ("--ticket", "ticket")]
        .iter()
        .chain(extra)
    {
        if let Some(value) = args.values.get(*flag) {
            body[*field] = json!(value);
        }
    }
    body
}

fn print_resent(answer: &Value) {
    let resent = answer["resent"].as_array().cloned().unwrap_or_default();
    println!(
        "{} deliver{} made due: the dispatcher's next sweep sends them",
        resent.len(),
        if resent.len() == 1 { "y" } else { "ies" }
    );
    for r in resent {
        println!(
            "  {} -> {}: {}",
            r["event_id"].as_str().unwrap_or_default(),
            r["destination"].as_str().unwrap_or_default(),
            r["state"].as_str().unwrap_or_default()
        );
    }
    if let Some(held) = answer["held"].as_u64().filter(|h| *h > 0) {
        println!("  {held} held: their destination is disabled");
    }
}

async fn events(args: Args) {
    match args.positional.as_slice() {
        [sub, id] if sub == "resend" => {
            let body = act_body(&args, &[("--destination", "destination")]);
            let path = format!("/ops/events/{id}/resend");
            call_and_print(&args, "POST", &path, &[], Some(&body), print_resent).await
        }
        [sub] if sub == "recover" && args.values.contains_key("--since") => {
            let body = act_body(&args, &[("--since", "since")]);
            call_and_print(
                &args,
                "POST",
                "/ops/events/recover",
                &[],
                Some(&body),
                print_resent,
            )
            .await
        }
        _ => fail(
            args.json,
            "invalid_arguments",
            &format!("events resend EVENT_ID | events recover --since RFC3339\n{USAGE}"),
        ),
    }
}

async fn endpoints(args: Args) {
    let print = |answer: &Value| {
        let list = match answer.get("endpoints") {
            Some(list) => list.as_array().cloned().unwrap_or_default(),
            None => vec![answer["endpoint"].clone()],
        };
        for e in list {
            println!(
                "  {:<20} {}",
                e["name"].as_str().unwrap_or_default(),
                if e["disabled"] == true {
                    "disabled"
                } else {
                    "enabled"
                }
            );
        }
    };
    match args.positional.as_slice() {
        [sub] if sub == "list" => {
            call_and_print(&args, "GET", "/ops/endpoints", &[], None, print).await
        }
        [sub, name] if sub == "enable" || sub == "disable" => {
            let path = format!("/ops/endpoints/{name}/{sub}");
            let body = act_body(&args, &[]);
            call_and_print(&args, "POST", &path, &[], Some(&body), print).await
        }
        _ => fail(
            args.json,
            "invalid_arguments",
            &format!("endpoints list | endpoints enable NAME | endpoints disable NAME\n{USAGE}"),
        ),
    }
}

fn parse_audit(args: Args) -> Result<audit::AuditOptions, String> {
    if let Some(extra) = args.positional.first() {
        return Err(format!("unknown argument {extra:?}\n{USAGE}"));
    }
    Ok(audit::AuditOptions {
        json: args.json,
        segments: match args.values.get("--segments") {
            None => 8,
            Some(n) => n
                .parse()
                .ok()
                .filter(|n| (1..=1000).contains(n))
                .ok_or("--segments: 1 to 1000")?,
        },
        table: args.values.get("--table").cloned(),
        endpoint: args.values.get("--endpoint").cloned(),
        env_file: args
            .values
            .get("--env-file")
            .cloned()
            .unwrap_or_else(|| ".local/stack.env".into()),
    })
}

#[tokio::main]
async fn main() {
    let mut argv = std::env::args().skip(1);
    let command = argv.next();
    let parsed = |flags: &[&str]| -> Args {
        parse_args(std::env::args().skip(2), flags).unwrap_or_else(|e| {
            eprintln!("{e}");
            std::process::exit(2);
        })
    };
    match command.as_deref() {
        Some("check-invariants") => {
            let args = parsed(&["--segments", "--table", "--endpoint", "--env-file"]);
            match parse_audit(args) {
                Ok(options) => audit::run(options).await,
                Err(e) => {
                    eprintln!("{e}");
                    std::process::exit(2);
                }
            }
        }
        Some("resolve") => {
            resolve(parsed(&[
                "--as",
                "--reason",
                "--ticket",
                "--url",
                "--env-file",
            ]))
            .await
        }
        Some("find") => find(parsed(&["--url", "--env-file"])).await,
        Some("queue") => queue(parsed(&["--reason", "--ticket", "--url", "--env-file"])).await,
        Some("show") => show(parsed(&["--url", "--env-file"])).await,
        Some("reconcile") => reconcile(parsed(&["--url", "--env-file"])).await,
        Some("audit-log") => audit_log(parsed(&["--subject", "--url", "--env-file"])).await,
        Some("events") => {
            events(parsed(&[
                "--destination",
                "--since",
                "--reason",
                "--ticket",
                "--url",
                "--env-file",
            ]))
            .await
        }
        Some("endpoints") => {
            endpoints(parsed(&["--reason", "--ticket", "--url", "--env-file"])).await
        }
        Some("-h" | "--help") | None => {
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
        Some(other) => {
            eprintln!("unknown command {other:?}\n{USAGE}");
            std::process::exit(2);
        }
    }
}
