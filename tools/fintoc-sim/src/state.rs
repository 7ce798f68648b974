//! The simulator's state, typed: the payment intents as Fintoc's API shows them, the
//! idempotency keys, widget tokens, queued faults and webhook deliveries.

use crate::config::{DeliveryMode, DeliveryPolicy, Fault, Finish, WebhookEndpoint};
use crate::status::PaymentStatus;
use serde::Serialize;
use serde_json::Value;
use shared::clock::{format_rfc3339_ms, Clock};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

/// An account as Fintoc shows it on a payment intent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SimAccount {
    /// RUT / RFC of the holder.
    pub holder_id: String,
    /// Account number (the simulator's own, made up).
    pub number: String,
    /// Account type.
    #[serde(rename = "type")]
    pub account_type: String,
    /// Institution id.
    pub institution_id: String,
}

/// A payment intent as `GET /v1/payment_intents/{id}` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SimIntent {
    /// `pi_...`.
    pub id: String,
    /// Always `payment_intent`.
    pub object: &'static str,
    /// Minor units.
    pub amount: u64,
    /// `CLP` | `MXN`.
    pub currency: String,
    /// Status.
    pub status: PaymentStatus,
    /// Only in the create response; `null` otherwise.
    pub widget_token: Option<String>,
    /// String metadata.
    pub metadata: BTreeMap<String, String>,
    /// Payer's email.
    pub customer_email: Option<String>,
    /// Why an unpaid intent ended so.
    pub error_reason: Option<String>,
    /// Always `null` here.
    pub expires_at: Option<String>,
    /// Creation time (RFC 3339).
    pub created_at: String,
    /// The bank's operation date, once paid.
    pub transaction_date: Option<String>,
    /// The bank's operation number, once paid.
    pub reference_id: Option<String>,
    /// `live` | `test`, from the key that created it.
    pub mode: &'static str,
    /// Always `bank_transfer`.
    pub payment_type: &'static str,
    /// Always empty.
    pub payment_type_options: BTreeMap<String, String>,
    /// The recipient sent at creation.
    pub recipient_account: Option<SimAccount>,
    /// The payer's account, once the payer acted.
    pub sender_account: Option<SimAccount>,
    /// Always `null` here.
    pub business_profile: Option<String>,
}

impl SimIntent {
    /// The JSON Fintoc answers for it.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).expect("an intent serializes")
    }
}

/// A checkout session as `GET /v1/checkout_sessions/{id}` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SimSession {
    /// `cs_...`.
    pub id: String,
    /// Always `checkout_session`.
    pub object: &'static str,
    /// Minor units.
    pub amount: u64,
    /// `CLP` | `MXN`.
    pub currency: String,
    /// `created`, `in_progress`, `finished` or `expired`.
    pub status: &'static str,
    /// Always `payment`.
    pub flow: &'static str,
    /// Payer's email.
    pub customer_email: Option<String>,
    /// String metadata (passed on to the payment intents it makes).
    pub metadata: BTreeMap<String, String>,
    /// Where the hosted page sends a payer who paid.
    pub success_url: Option<String>,
    /// Where it sends one who cancels.
    pub cancel_url: Option<String>,
    /// The hosted payment page.
    pub redirect_url: String,
    /// When it expires (RFC 3339).
    pub expires_at: String,
    /// When it expires (Unix ms), for the simulator's clock.
    #[serde(skip)]
    pub expires_at_ms: i64,
    /// Creation time.
    pub created_at: String,
    /// `live` | `test`.
    pub mode: &'static str,
    /// Always `["bank_transfer"]`.
    pub payment_method_types: Vec<&'static str>,
    /// As sent (the recipient of bank transfers), or `{}`.
    pub payment_method_options: Value,
    /// Its payment intents, one per attempt, oldest first.
    #[serde(skip)]
    pub attempts: Vec<String>,
}

impl SimSession {
    /// The JSON Fintoc answers for it: `payment_resource.payment_intent` is its
    /// latest attempt (or `null`), the token never shown after the create.
    pub fn to_json(&self, intents: &HashMap<String, SimIntent>) -> Value {
        let mut json = serde_json::to_value(self).expect("a session serializes");
        let payment = self
            .attempts
            .last()
            .and_then(|id| intents.get(id))
            .map_or(Value::Null, SimIntent::to_json);
        json["payment_resource"] = serde_json::json!({ "payment_intent": payment });
        json["session_token"] = Value::Null;
        json
    }
}

/// One webhook delivery job and how it went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryRecord {
    /// The event's id.
    pub event_id: String,
    /// The event's type.
    pub event_type: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// HTTP status of the last attempt (None: no answer).
    pub last_status: Option<u16>,
    /// Answered 2xx.
    pub delivered: bool,
    /// No more attempts will be made.
    pub settled: bool,
}

/// The first answer to an idempotent POST, replayed to its retries.
pub(crate) struct IdempotentAnswer {
    pub params_hash: String,
    pub status: u16,
    pub body: Value,
    /// When it was stored (Unix ms, the simulator's clock): purged a day later.
    pub stored_at_ms: i64,
}

/// What the simulator remembers.
#[derive(Default)]
pub(crate) struct Inner {
    pub webhook: Option<WebhookEndpoint>,
    pub deliveries: Vec<DeliveryRecord>,
    /// The body of each delivery job, by the same index.
    pub bodies: Vec<String>,
    pub intents: HashMap<String, SimIntent>,
    /// Ids in creation order, for listing.
    pub order: Vec<String>,
    /// (api key, idempotency key) -> first answer.
    pub idempotency: HashMap<(String, String), IdempotentAnswer>,
    /// widget_token -> payment intent id.
    pub widget_tokens: HashMap<String, String>,
    pub intents_created: u64,
    pub api_requests: u64,
    pub faults: VecDeque<Fault>,
    /// The status the request being served fails with inside the API
    /// ([`Fault::Failure`]), and whether a create makes its object first: a create
    /// stores the failure under its key.
    pub failing: Option<(u16, bool)>,
    /// What happens to produced events.
    pub delivery_mode: DeliveryMode,
    /// Intents held `pending`: (until when, Unix ms; how they finish then).
    pub holds: HashMap<String, (i64, Finish)>,
    /// `GET /v1/payment_intents/{id}` requests answered (the reconciler's calls).
    pub lookups: u64,
    /// Checkout sessions by id.
    pub sessions: HashMap<String, SimSession>,
    /// Session ids in creation order, for listing.
    pub session_order: Vec<String>,
    /// session token -> session id.
    pub session_tokens: HashMap<String, String>,
    /// payment intent id -> the session that made it.
    pub intent_sessions: HashMap<String, String>,
    /// Sessions created (replays do not count).
    pub sessions_created: u64,
    /// `GET /v1/checkout_sessions/{id}` requests answered.
    pub session_lookups: u64,
    /// API requests that carried no `Fintoc-Version` header.
    pub unversioned_requests: u64,
    /// The `Fintoc-Version` of the latest API request.
    pub last_api_version: Option<String>,
    /// Refunds by id.
    pub refunds: HashMap<String, SimRefund>,
    /// Refund ids in creation order, for listing.
    pub refund_order: Vec<String>,
    /// Refunds created (replays do not count).
    pub refunds_created: u64,
    /// `GET /v1/refunds/{id}` requests answered.
    pub refund_lookups: u64,
    /// Refunds short of balance: (until when Fintoc retries, Unix ms; how they end).
    pub refund_holds: HashMap<String, (i64, crate::config::Settle)>,
}

/// Everything the server's handlers share.
pub(crate) struct State {
    pub secret_keys: Vec<String>,
    pub delivery: DeliveryPolicy,
    pub http: reqwest::Client,
    pub clock: Arc<dyn Clock>,
    /// Added to the injected clock by the control API (`POST /_sim/clock`).
    pub clock_offset_ms: std::sync::atomic::AtomicI64,
    /// The simulator's own base URL, as browsers reach it (hosted pages).
    pub public_url: String,
    pub settled: tokio::sync::Notify,
    pub inner: Mutex<Inner>,
}

impl State {
    /// The state, even after a panic elsewhere.
    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Now, Unix ms: the injected clock plus the offset the control API set.
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
            + self
                .clock_offset_ms
                .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Now, RFC 3339, from the simulator's clock.
    pub fn now_rfc3339(&self) -> String {
        format_rfc3339_ms(self.now_ms())
    }

    /// Now, Unix seconds, from the simulator's clock.
    pub fn now_secs(&self) -> i64 {
        self.now_ms().div_euclid(1000)
    }
}

/// Removes and returns the held entries of `holds` whose time (Unix ms) has come.
pub(crate) fn take_due<V>(holds: &mut HashMap<String, (i64, V)>, now_ms: i64) -> Vec<(String, V)> {
    let ids: Vec<String> = holds
        .iter()
        .filter(|(_, (until, _))| *until <= now_ms)
        .map(|(id, _)| id.clone())
        .collect();
    ids.into_iter()
        .filter_map(|id| holds.remove(&id).map(|(_, v)| (id, v)))
        .collect()
}

/// A random token of `len` letters and digits.
pub(crate) fn random_token(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..len)
        .map(|_| ALPHABET[fastrand::usize(..ALPHABET.len())] as char)
        .collect()
}

/// A refund as `GET /v1/refunds/{id}` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SimRefund {
    /// `re_...`.
    pub id: String,
    /// Always `refund`.
    pub object: &'static str,
    /// Minor units.
    pub amount: u64,
    /// The payment's currency.
    pub currency: String,
    /// `pending`, `in_progress`, `succeeded`, `failed`, `canceled`.
    pub status: String,
    /// `insufficient_funds` | `fraud_risk` | null.
    pub failure_code: Option<String>,
    /// String metadata.
    pub metadata: BTreeMap<String, String>,
    /// `live` | `test`.
    pub mode: &'static str,
    /// Always `payment_intent`.
    pub resource_type: &'static str,
    /// The refunded payment intent.
    pub resource_id: String,
    /// Always `null` here (Fintoc knows the payer's account).
    pub recipient_account: Option<Value>,
    /// Creation time (RFC 3339).
    pub created_at: String,
    /// Last change.
    pub updated_at: String,
}

impl SimRefund {
    pub(crate) fn to_json(&self) -> Value {
        serde_json::to_value(self).expect("a refund serializes")
    }

    /// Whether it holds its amount (not ended unpaid).
    pub(crate) fn holds(&self) -> bool {
        !matches!(self.status.as_str(), "failed" | "canceled" | "rejected")
    }
}
