//! The functions' processes: a table and a simulator per run, each binary started
//! against a Runtime API with the configuration Lambda would give it, and its usage read
//! from `/proc`.

use crate::network::{delayed, measured_round_trip, Alternating};
use crate::runtime_api::RuntimeApi;
use crate::{DEPLOYMENT_TAG, WEBHOOK_SECRET};
use fintoc_sim::{Simulator, SimulatorConfig, DEFAULT_SECRET_KEY};
use std::process::Stdio;

pub(crate) struct Setup {
    pub(crate) function: String,
    pub(crate) bootstrap: String,
    pub(crate) dynamodb: String,
    pub(crate) table: String,
    pub(crate) sim: Simulator,
    /// More environment for the function (`--env NAME=VALUE`, repeatable as a
    /// comma-separated list).
    pub(crate) env: Vec<(String, String)>,
    /// The DynamoDB endpoint the function is given, when not `dynamodb` (the TLS
    /// proxy in front of it); the harness itself always uses `dynamodb`.
    pub(crate) function_dynamodb: Option<String>,
    /// The Fintoc base URL the function is given, when not the simulator's own.
    pub(crate) function_fintoc: Option<String>,
    /// The round trips added between the function and its dependencies (set and
    /// measured), reported with the run.
    pub(crate) network: serde_json::Value,
    /// The requests the function made to DynamoDB through its proxy, counted.
    pub(crate) dynamodb_requests: Option<latency_proxy::Exchanges>,
    /// The DynamoDB round trip switched on and off invocation by invocation.
    pub(crate) alternating: Option<Alternating>,
}

impl Setup {
    /// A table and a simulator (on `sim_port`, 0 for any) for `function`.
    pub(crate) async fn new(
        function: &str,
        bootstrap: &str,
        dynamodb: &str,
        sim_port: u16,
    ) -> Self {
        let sim = Simulator::start(SimulatorConfig {
            addr: std::net::SocketAddr::from(([127, 0, 0, 1], sim_port)),
            ..SimulatorConfig::default()
        })
        .await
        .expect("simulator");
        let table = format!(
            "bench-{function}-{}",
            time::OffsetDateTime::now_utc().unix_timestamp_nanos()
        );
        shared::store::create_table(&dynamodb_client(dynamodb), &table)
            .await
            .expect("create the table on DynamoDB Local");
        Self {
            function: function.to_string(),
            bootstrap: bootstrap.to_string(),
            dynamodb: dynamodb.to_string(),
            table,
            sim,
            env: Vec::new(),
            function_dynamodb: None,
            function_fintoc: None,
            network: serde_json::json!({"dynamodb_rtt_ms_set": 0.0, "fintoc_rtt_ms_set": 0.0}),
            dynamodb_requests: None,
            alternating: None,
        }
    }

    /// Puts a network between the function and its dependencies: each DynamoDB
    /// request pays `dynamodb_rtt_ms` more, each Fintoc request `fintoc_rtt_ms`
    /// (0: none); the harness itself keeps talking to both directly. With
    /// `alternate`, the DynamoDB round trip is on for half the invocations only,
    /// in turns ([`Alternating`]).
    pub(crate) async fn delay_network(
        &mut self,
        dynamodb_rtt_ms: f64,
        fintoc_rtt_ms: f64,
        alternate: bool,
    ) {
        if dynamodb_rtt_ms > 0.0 {
            let proxy = delayed(&self.dynamodb, dynamodb_rtt_ms).await;
            if alternate {
                self.alternating = Some(Alternating {
                    delay: proxy.delay.clone(),
                    round_trip_ms: dynamodb_rtt_ms,
                    exchanges: proxy.exchanges.clone(),
                });
            }
            self.function_dynamodb = Some(proxy.url);
            self.dynamodb_requests = Some(proxy.exchanges);
        }
        if fintoc_rtt_ms > 0.0 {
            let sim = format!("http://{}", self.sim.addr());
            self.function_fintoc = Some(delayed(&sim, fintoc_rtt_ms).await.url);
        }
        self.network = serde_json::json!({
            "alternating": self.alternating.is_some(),
            "dynamodb_rtt_ms_set": dynamodb_rtt_ms,
            "fintoc_rtt_ms_set": fintoc_rtt_ms,
            "dynamodb_rtt_ms_measured": if dynamodb_rtt_ms > 0.0 { measured_round_trip(dynamodb_rtt_ms).await } else { serde_json::Value::Null },
            "fintoc_rtt_ms_measured": if fintoc_rtt_ms > 0.0 { measured_round_trip(fintoc_rtt_ms).await } else { serde_json::Value::Null },
        });
    }

    /// The store on the benchmark's table (for seeding).
    pub(crate) fn store(&self) -> shared::store::DynamoStore {
        shared::store::DynamoStore::new(dynamodb_client(&self.dynamodb), &self.table)
    }

    /// Starts the function's binary against `api`, configured from the environment.
    pub(crate) fn spawn(&self, api: &RuntimeApi) -> tokio::process::Child {
        let mut command = tokio::process::Command::new(&self.bootstrap);
        command
            .env_clear()
            .env("AWS_LAMBDA_RUNTIME_API", api.addr.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", &self.function)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "bench")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "local")
            .env("AWS_SECRET_ACCESS_KEY", "local")
            .env("TABLE_NAME", &self.table)
            .env(
                "DYNAMODB_ENDPOINT",
                self.function_dynamodb.as_deref().unwrap_or(&self.dynamodb),
            )
            .env(
                "FINTOC_BASE_URL",
                self.function_fintoc
                    .clone()
                    .unwrap_or_else(|| format!("http://{}", self.sim.addr())),
            )
            .env("FINTOC_SECRET_KEY", DEFAULT_SECRET_KEY)
            .env("WEBHOOK_SECRET", WEBHOOK_SECRET)
            .env("DEPLOYMENT_TAG", DEPLOYMENT_TAG)
            .env("RECIPIENT_HOLDER_ID", "771433855")
            .env("RECIPIENT_ACCOUNT_NUMBER", "123456789")
            .env("RECIPIENT_ACCOUNT_TYPE", "checking_account")
            .env("RECIPIENT_INSTITUTION_ID", "cl_banco_de_chile")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        command.spawn().expect("start the function binary")
    }
}

pub(crate) fn dynamodb_client(endpoint: &str) -> aws_sdk_dynamodb::Client {
    use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("local", "local", None, None, "bench"))
        .endpoint_url(endpoint)
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

/// Peak resident memory (VmHWM) and CPU time of a running process, from /proc.
pub(crate) fn process_usage(pid: u32) -> (u64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let hwm_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name: utime and stime are the 12th and 13th.
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|i| fields.get(*i).and_then(|f| f.parse::<u64>().ok()))
        .sum();
    // USER_HZ is 100 on Linux.
    (hwm_kib, ticks as f64 * 10.0)
}

/// Stores `intent_id` as the create leaves it (order reserved, intent stored
/// with its first check scheduled, order opened), so webhook events find an
/// intent this deployment created — as they do deployed.
pub(crate) async fn seed_intent(
    store: &shared::store::DynamoStore,
    intent_id: &str,
) -> Result<(), String> {
    let now_ms = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
    let intent = shared::testkit::intent_of_deployment(intent_id, DEPLOYMENT_TAG, now_ms);
    shared::testkit::seed_open(store, &intent, "bench", now_ms).await
}
