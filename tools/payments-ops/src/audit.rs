//! `check-invariants`: the read-only invariant audit of the payments table
//! (`shared::app::audit`), run with the caller's AWS credentials — a read-only role
//! is enough — or, on the local stack, against its DynamoDB Local.

use serde_json::json;
use shared::clock::{Clock, SystemClock};

/// What `check-invariants` was asked.
pub struct AuditOptions {
    /// One JSON document out.
    pub json: bool,
    /// Parallel scan segments.
    pub segments: i32,
    /// The table, when named.
    pub table: Option<String>,
    /// DynamoDB's endpoint, when not AWS's.
    pub endpoint: Option<String>,
    /// The local stack's env file.
    pub env_file: String,
}

/// Runs the audit; exits 1 on a violation, 2 when the table could not be read.
pub async fn run(options: AuditOptions) {
    // The table: named, or the local stack's (with its DynamoDB Local).
    let local = crate::stack_env(&options.env_file);
    let (table, endpoint) = match (&options.table, &local) {
        (Some(table), _) => (table.clone(), options.endpoint.clone()),
        (None, Some(env)) => match env.get("TABLE_NAME") {
            Some(table) => (table.clone(), env.get("DYNAMODB_ENDPOINT").cloned()),
            None => crate::fail(options.json, "no_table", "the env file names no TABLE_NAME"),
        },
        (None, None) => crate::fail(
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
            Err(e) => crate::fail(
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
