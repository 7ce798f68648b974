//! The simulator's settings: where it listens, the keys it accepts, where and how it
//! delivers webhooks, its clock, and the faults and outcomes tests ask for.

use serde::Deserialize;
use shared::clock::{Clock, SystemClock};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// The secret key the simulator accepts unless told otherwise.
pub const DEFAULT_SECRET_KEY: &str = "sk_test_simulator";

/// A fault applied to the next API request.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Fault {
    /// Answer this status (5xx) with Fintoc's `api_error` envelope; nothing is done.
    Status {
        /// HTTP status to answer.
        status: u16,
    },
    /// Answer 429 with `Retry-After`; nothing is done.
    RateLimit {
        /// Value of `Retry-After`.
        #[serde(default)]
        retry_after_secs: u64,
    },
    /// Do the work, then wait this long before answering.
    Latency {
        /// Delay in milliseconds.
        ms: u64,
    },
    /// Do the work, then close the connection without answering.
    Drop,
    /// The request reaches the API and fails there: a create answers this 5xx
    /// (`api_error`), and, as Fintoc stores the first answer per idempotency key,
    /// the answer is stored under its key and replayed to every retry of it (until
    /// the key is purged). Nothing is made, unless `made`: the create's object is
    /// made before the failure (a failure after the work). Other requests answer
    /// it alone.
    Failure {
        /// HTTP status to answer.
        status: u16,
        /// Whether a create makes its object before failing.
        #[serde(default)]
        made: bool,
    },
    /// Refuse the request as Fintoc refuses one it will never take (status 400 or
    /// 422, an `invalid_request_error` with `code`); nothing is done.
    Refuse {
        /// HTTP status to answer.
        status: u16,
        /// Fintoc's error code.
        code: String,
    },
}

/// Simulator settings.
#[derive(Clone)]
pub struct SimulatorConfig {
    /// Address to listen on; port 0 picks a free one.
    pub addr: SocketAddr,
    /// Secret keys accepted in `Authorization` (`sk_test_...` / `sk_live_...`).
    pub secret_keys: Vec<String>,
    /// Where signed webhook events go, if anywhere.
    pub webhook: Option<WebhookEndpoint>,
    /// Delivery retry behaviour.
    pub delivery: DeliveryPolicy,
    /// The time of `created_at`, `transaction_date` and signatures; tests move it.
    pub clock: Arc<dyn Clock>,
    /// The base URL browsers reach the simulator at (hosted payment pages);
    /// default `http://<bound address>`.
    pub public_url: Option<String>,
}

impl std::fmt::Debug for SimulatorConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimulatorConfig")
            .field("addr", &self.addr)
            .field("secret_keys", &self.secret_keys.len())
            .field("webhook", &self.webhook.as_ref().map(|w| &w.url))
            .field("delivery", &self.delivery)
            .finish()
    }
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            secret_keys: vec![DEFAULT_SECRET_KEY.to_string()],
            webhook: None,
            delivery: DeliveryPolicy::default(),
            clock: Arc::new(SystemClock),
            public_url: None,
        }
    }
}

/// A webhook endpoint registered with the simulator.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct WebhookEndpoint {
    /// URL that receives the POSTs.
    pub url: String,
    /// Signing secret (`whsec_...`), used whole as the HMAC key.
    pub secret: String,
}

/// Fintoc's delivery behaviour: any non-2xx or a timeout is retried with
/// exponential backoff (3 s, 6 s, 12 s, ... by default, 17 retries).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryPolicy {
    /// First retry delay; doubles each time.
    pub base_delay: Duration,
    /// Largest delay.
    pub max_delay: Duration,
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// Timeout of one attempt.
    pub timeout: Duration,
}

impl Default for DeliveryPolicy {
    fn default() -> Self {
        Self {
            base_delay: Duration::from_secs(3),
            max_delay: Duration::from_secs(3600),
            max_retries: 17,
            timeout: Duration::from_secs(10),
        }
    }
}

/// What happens to the webhook events the simulator produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryMode {
    /// Delivered, signed with the registered secret, retried like Fintoc.
    #[default]
    Normal,
    /// Never delivered: the endpoint is down for the whole retry window (each job
    /// is recorded as given up, with no attempt reaching it).
    Off,
    /// Delivered, but signed with a secret that is not the registered one (a
    /// botched rotation): the endpoint must refuse each, and Fintoc retries.
    WrongSecret,
}

/// How to finish an intent through [`crate::Simulator::finish`] or the control API.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Finish {
    /// `succeeded`, `failed`, `rejected` or `expired`.
    pub outcome: String,
    /// Send a `payment_intent.pending` event first.
    #[serde(default)]
    pub via_pending: bool,
    /// Deliver every event twice.
    #[serde(default)]
    pub duplicate: bool,
    /// Deliver the events in reverse order (final before pending).
    #[serde(default)]
    pub out_of_order: bool,
    /// Override the `error_reason` of an unpaid outcome.
    #[serde(default)]
    pub error_reason: Option<String>,
    /// Hold the intent `pending` (its pending event sent now) until the
    /// simulator's clock reaches this time (Unix ms); the outcome is applied, and
    /// its event sent, at the first API or control request after it.
    #[serde(default)]
    pub pending_until_ms: Option<i64>,
    /// Send the events with their optional fields in other JSON types (amount as
    /// a string, reference id and transaction date as numbers, the email as an
    /// object), as an account pinned to another API version might.
    #[serde(default)]
    pub retyped: bool,
    /// For a session's payment: send its metadata without the session's (as if
    /// Fintoc did not pass it on), so only the session's own events link them.
    #[serde(default)]
    pub without_metadata: bool,
    /// A `succeeded` outcome at this amount instead of the intent's (a payer who
    /// transferred another amount): what Fintoc then reports, in its events and
    /// its API — an amount mismatch this backend holds for review.
    #[serde(default)]
    pub paid_amount: Option<u64>,
}

impl Finish {
    /// A plain outcome, delivered once, in order.
    pub fn outcome(outcome: &str) -> Self {
        Self {
            outcome: outcome.to_string(),
            via_pending: false,
            duplicate: false,
            out_of_order: false,
            error_reason: None,
            pending_until_ms: None,
            retyped: false,
            without_metadata: false,
            paid_amount: None,
        }
    }
}

/// How the control API settles a refund.
#[derive(Debug, Clone, Deserialize)]
pub struct Settle {
    /// `in_progress`, `succeeded` or `failed`.
    pub outcome: String,
    /// A failed refund's code (default `insufficient_funds`).
    #[serde(default)]
    pub failure_code: Option<String>,
    /// Deliver every event twice.
    #[serde(default)]
    pub duplicate: bool,
    /// Send `refund.in_progress` too, and deliver the events in reverse order.
    #[serde(default)]
    pub out_of_order: bool,
}
