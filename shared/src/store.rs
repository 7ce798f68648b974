//! The only module that talks to DynamoDB.
//!
//! One table, one string partition key `pk`, two kinds of items (layout in
//! `docs/storage.md`):
//!
//! - `IDEMPOTENCY#<client key>`: the idempotency record of a create request;
//! - `INTENT#<fintoc id>`: the payment intent as this backend knows it.
//!
//! Every state change is a conditional write. Expiry is decided by comparing
//! timestamps in conditions; the TTL attribute only collects garbage.

use crate::domain::idempotency::{
    classify_conflict, AcquireOutcome, IdempotencyRecord, RecordStatus, StoredResponse,
};
use crate::domain::intent::{IntentStatus, StoredIntent};
use crate::domain::transition::{Effect, IntentState};
use crate::webhook::event::IntentData;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ReturnValuesOnConditionCheckFailure, ScalarAttributeType, StreamSpecification, StreamViewType,
    TimeToLiveSpecification,
};
use aws_sdk_dynamodb::types::{ConsumedCapacity, ReturnConsumedCapacity};
use aws_sdk_dynamodb::Client;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

/// Name of the partition key attribute.
pub const PARTITION_KEY: &str = "pk";
/// Name of the TTL attribute (Unix seconds).
pub const TTL_ATTRIBUTE: &str = "expires_at";

/// A storage failure. Every variant is answered as a retryable 5xx.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// DynamoDB could not be reached or refused the call (throttling, outage, ...).
    #[error("DynamoDB unavailable: {0}")]
    Unavailable(String),
    /// An item that does not have the expected shape.
    #[error("stored item is malformed: {0}")]
    Malformed(String),
    /// A write that contradicts what is stored (e.g. one id with two amounts).
    #[error("stored item conflicts: {0}")]
    Conflict(String),
}

/// Idempotency records of create requests.
pub trait IdempotencyStore: Send + Sync {
    /// Takes the key for this request, or says why it cannot (replay, in progress,
    /// mismatch). One conditional write; a conflict costs no extra read.
    fn acquire(
        &self,
        key: &str,
        request_hash: &str,
        now_ms: i64,
        lease_expires_at_ms: i64,
        expires_at_s: i64,
    ) -> impl Future<Output = Result<AcquireOutcome, StoreError>> + Send;

    /// Stores the response to replay. Returns `false` when the lease was lost (the
    /// record was taken over or released meanwhile); nothing is written then.
    fn complete(
        &self,
        key: &str,
        lease_id: &str,
        response: &StoredResponse,
        intent_id: Option<&str>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Deletes the record if this lease still holds it, so the client can retry.
    fn release(
        &self,
        key: &str,
        lease_id: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Payment intents.
pub trait IntentStore: Send + Sync {
    /// Records an intent just created at Fintoc. Merges with an item a webhook may
    /// already have written: never moves its status, version or timestamps.
    fn save_created(
        &self,
        intent: &StoredIntent,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Reads an intent (strongly consistent).
    fn get_intent(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<StoredIntent>, StoreError>> + Send;
}

/// DynamoDB implementation of the store traits; cheap to clone.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    usage: Arc<UsageMeter>,
}

impl DynamoStore {
    /// A store on `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            usage: Arc::default(),
        }
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The DynamoDB requests this store made and the capacity DynamoDB reported for
    /// them (every request asks for `ReturnConsumedCapacity=TOTAL`).
    pub fn usage(&self) -> Usage {
        self.usage.snapshot()
    }
}

/// Counts of DynamoDB requests and consumed capacity units.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Usage {
    /// GetItem requests.
    pub read_requests: u64,
    /// PutItem, UpdateItem and DeleteItem requests, conditional failures included.
    pub write_requests: u64,
    /// Read capacity units DynamoDB reported.
    pub read_units: f64,
    /// Write capacity units DynamoDB reported (a failed condition reports none,
    /// though DynamoDB bills it as a write of the item's size).
    pub write_units: f64,
    /// Writes refused by their condition.
    pub failed_conditions: u64,
}

impl std::ops::Sub for Usage {
    type Output = Usage;
    fn sub(self, o: Usage) -> Usage {
        Usage {
            read_requests: self.read_requests - o.read_requests,
            write_requests: self.write_requests - o.write_requests,
            read_units: self.read_units - o.read_units,
            write_units: self.write_units - o.write_units,
            failed_conditions: self.failed_conditions - o.failed_conditions,
        }
    }
}

#[derive(Debug, Default)]
struct UsageMeter {
    read_requests: AtomicU64,
    write_requests: AtomicU64,
    /// Thousandths of a unit, to stay in atomics.
    read_milli_units: AtomicU64,
    write_milli_units: AtomicU64,
    failed_conditions: AtomicU64,
}

impl UsageMeter {
    fn read(&self, capacity: Option<&ConsumedCapacity>) {
        self.read_requests.fetch_add(1, Relaxed);
        self.read_milli_units
            .fetch_add(milli_units(capacity), Relaxed);
    }

    fn write(&self, capacity: Option<&ConsumedCapacity>) {
        self.write_requests.fetch_add(1, Relaxed);
        self.write_milli_units
            .fetch_add(milli_units(capacity), Relaxed);
    }

    fn failed_write(&self) {
        self.write(None);
        self.failed_conditions.fetch_add(1, Relaxed);
    }

    fn snapshot(&self) -> Usage {
        Usage {
            read_requests: self.read_requests.load(Relaxed),
            write_requests: self.write_requests.load(Relaxed),
            read_units: self.read_milli_units.load(Relaxed) as f64 / 1000.0,
            write_units: self.write_milli_units.load(Relaxed) as f64 / 1000.0,
            failed_conditions: self.failed_conditions.load(Relaxed),
        }
    }
}

fn milli_units(capacity: Option<&ConsumedCapacity>) -> u64 {
    capacity
        .and_then(ConsumedCapacity::capacity_units)
        .map_or(0, |u| (u * 1000.0).round() as u64)
}

fn idempotency_pk(key: &str) -> AttributeValue {
    AttributeValue::S(format!("IDEMPOTENCY#{key}"))
}

fn intent_pk(id: &str) -> AttributeValue {
    AttributeValue::S(format!("INTENT#{id}"))
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// The write was refused by its condition expression (any operation's error type).
fn failed_condition<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    err.as_service_error().and_then(|e| e.code()) == Some("ConditionalCheckFailedException")
}

fn unavailable<E, R>(e: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    StoreError::Unavailable(aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string())
}

#[derive(Deserialize)]
struct IdempotencyItem {
    status: RecordStatus,
    request_hash: String,
    lease_expires_at_ms: i64,
    expires_at: i64,
    #[serde(default)]
    response_status: Option<u16>,
    #[serde(default)]
    response_body: Option<String>,
}

impl From<IdempotencyItem> for IdempotencyRecord {
    fn from(item: IdempotencyItem) -> Self {
        let response = match (item.response_status, item.response_body) {
            (Some(status), Some(body)) => Some(StoredResponse { status, body }),
            _ => None,
        };
        Self {
            status: item.status,
            request_hash: item.request_hash,
            lease_expires_at_ms: item.lease_expires_at_ms,
            expires_at: item.expires_at,
            response,
        }
    }
}

#[derive(Deserialize)]
struct IntentItem {
    id: String,
    status: String,
    #[serde(default)]
    amount: u64,
    #[serde(default)]
    currency: String,
    #[serde(default)]
    order_id: Option<String>,
    #[serde(default)]
    metadata: Option<BTreeMap<String, String>>,
    #[serde(default)]
    customer_email: Option<String>,
    #[serde(default)]
    mode: Option<String>,
    #[serde(default)]
    error_reason: Option<String>,
    created_at: String,
    updated_at: String,
}

impl From<IntentItem> for StoredIntent {
    fn from(item: IntentItem) -> Self {
        Self {
            id: item.id,
            status: IntentStatus::parse(&item.status),
            amount: item.amount,
            currency: item.currency,
            order_id: item.order_id,
            metadata: item.metadata.unwrap_or_default(),
            customer_email: item.customer_email,
            mode: item.mode,
            error_reason: item.error_reason,
            created_at: item.created_at,
            updated_at: item.updated_at,
        }
    }
}

impl IdempotencyStore for DynamoStore {
    async fn acquire(
        &self,
        key: &str,
        request_hash: &str,
        now_ms: i64,
        lease_expires_at_ms: i64,
        expires_at_s: i64,
    ) -> Result<AcquireOutcome, StoreError> {
        let lease_id = uuid::Uuid::new_v4().to_string();
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(PARTITION_KEY, idempotency_pk(key))
            .item("entity", s("idempotency"))
            .item("status", s("IN_PROGRESS"))
            .item("request_hash", s(request_hash))
            .item("lease_id", s(&lease_id))
            .item("lease_expires_at_ms", n(lease_expires_at_ms))
            .item(TTL_ATTRIBUTE, n(expires_at_s))
            .item("created_at_ms", n(now_ms))
            // Same rule as `domain::idempotency::can_take_over`.
            .condition_expression(
                "attribute_not_exists(#pk) OR #exp < :now_s OR \
                 (#status = :in_progress AND #lease < :now_ms AND #hash = :hash)",
            )
            .expression_attribute_names("#pk", PARTITION_KEY)
            .expression_attribute_names("#exp", TTL_ATTRIBUTE)
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#lease", "lease_expires_at_ms")
            .expression_attribute_names("#hash", "request_hash")
            .expression_attribute_values(":now_s", n(now_ms.div_euclid(1000)))
            .expression_attribute_values(":now_ms", n(now_ms))
            .expression_attribute_values(":in_progress", s("IN_PROGRESS"))
            .expression_attribute_values(":hash", s(request_hash))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match result {
            Ok(out) => {
                self.usage.write(out.consumed_capacity());
                Ok(AcquireOutcome::Acquired { lease_id })
            }
            Err(err) => {
                use aws_sdk_dynamodb::operation::put_item::PutItemError;
                let old = match err.as_service_error() {
                    Some(PutItemError::ConditionalCheckFailedException(c)) => {
                        self.usage.failed_write();
                        c.item().cloned()
                    }
                    _ => return Err(unavailable(err)),
                };
                let old = old.ok_or_else(|| {
                    StoreError::Malformed("conditional check failed without the old item".into())
                })?;
                let item: IdempotencyItem = serde_dynamo::from_item(old)
                    .map_err(|e| StoreError::Malformed(format!("idempotency record: {e}")))?;
                Ok(classify_conflict(&item.into(), request_hash, now_ms))
            }
        }
    }

    async fn complete(
        &self,
        key: &str,
        lease_id: &str,
        response: &StoredResponse,
        intent_id: Option<&str>,
    ) -> Result<bool, StoreError> {
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PARTITION_KEY, idempotency_pk(key))
            .update_expression(if intent_id.is_some() {
                "SET #status = :completed, response_status = :rs, response_body = :rb, intent_id = :iid"
            } else {
                "SET #status = :completed, response_status = :rs, response_body = :rb"
            })
            .condition_expression("lease_id = :lease AND #status = :in_progress")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":completed", s("COMPLETED"))
            .expression_attribute_values(":in_progress", s("IN_PROGRESS"))
            .expression_attribute_values(":lease", s(lease_id))
            .expression_attribute_values(":rs", n(response.status))
            .expression_attribute_values(":rb", s(&response.body));
        if let Some(id) = intent_id {
            update = update.expression_attribute_values(":iid", s(id));
        }
        match update
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
        {
            Ok(out) => {
                self.usage.write(out.consumed_capacity());
                Ok(true)
            }
            Err(err) if failed_condition(&err) => {
                self.usage.failed_write();
                Ok(false)
            }
            Err(err) => Err(unavailable(err)),
        }
    }

    async fn release(&self, key: &str, lease_id: &str) -> Result<(), StoreError> {
        match self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(PARTITION_KEY, idempotency_pk(key))
            .condition_expression("lease_id = :lease AND #status = :in_progress")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":lease", s(lease_id))
            .expression_attribute_values(":in_progress", s("IN_PROGRESS"))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
        {
            Ok(out) => {
                self.usage.write(out.consumed_capacity());
                Ok(())
            }
            Err(err) if failed_condition(&err) => {
                self.usage.failed_write();
                Ok(())
            }
            Err(err) => Err(unavailable(err)),
        }
    }
}

impl IntentStore for DynamoStore {
    async fn save_created(&self, intent: &StoredIntent) -> Result<(), StoreError> {
        let metadata: HashMap<String, AttributeValue> = intent
            .metadata
            .iter()
            .map(|(k, v)| (k.clone(), s(v)))
            .collect();
        let mut sets = vec![
            "#entity = :entity",
            "#id = :id",
            "#amount = :amount",
            "#currency = :currency",
            "#metadata = :metadata",
            "#status = if_not_exists(#status, :status)",
            "#version = if_not_exists(#version, :zero)",
            "#created_at = if_not_exists(#created_at, :created_at)",
            "#updated_at = if_not_exists(#updated_at, :updated_at)",
        ];
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PARTITION_KEY, intent_pk(&intent.id))
            .condition_expression(
                "attribute_not_exists(#pk) OR ((attribute_not_exists(#amount) OR #amount = :amount) \
                 AND (attribute_not_exists(#currency) OR #currency = :currency))",
            )
            .expression_attribute_names("#pk", PARTITION_KEY)
            .expression_attribute_names("#entity", "entity")
            .expression_attribute_names("#id", "id")
            .expression_attribute_names("#amount", "amount")
            .expression_attribute_names("#currency", "currency")
            .expression_attribute_names("#metadata", "metadata")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#version", "version")
            .expression_attribute_names("#created_at", "created_at")
            .expression_attribute_names("#updated_at", "updated_at")
            .expression_attribute_values(":entity", s("intent"))
            .expression_attribute_values(":id", s(&intent.id))
            .expression_attribute_values(":amount", n(intent.amount))
            .expression_attribute_values(":currency", s(&intent.currency))
            .expression_attribute_values(":metadata", AttributeValue::M(metadata))
            .expression_attribute_values(":status", s(intent.status.as_str()))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":created_at", s(&intent.created_at))
            .expression_attribute_values(":updated_at", s(&intent.updated_at));
        let optional = [
            ("order_id", intent.order_id.as_deref()),
            ("customer_email", intent.customer_email.as_deref()),
            ("mode", intent.mode.as_deref()),
        ];
        let mut optional_sets = Vec::new();
        for (name, value) in optional {
            if let Some(value) = value {
                optional_sets.push(format!("#{name} = if_not_exists(#{name}, :{name})"));
                update = update
                    .expression_attribute_names(format!("#{name}"), name)
                    .expression_attribute_values(format!(":{name}"), s(value));
            }
        }
        let expression = format!(
            "SET {}",
            sets.drain(..)
                .map(str::to_string)
                .chain(optional_sets)
                .collect::<Vec<_>>()
                .join(", ")
        );
        match update
            .update_expression(expression)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
        {
            Ok(out) => {
                self.usage.write(out.consumed_capacity());
                Ok(())
            }
            Err(err) if failed_condition(&err) => {
                self.usage.failed_write();
                Err(StoreError::Conflict(format!(
                    "intent {} is stored with another amount or currency",
                    intent.id
                )))
            }
            Err(err) => Err(unavailable(err)),
        }
    }

    async fn get_intent(&self, id: &str) -> Result<Option<StoredIntent>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PARTITION_KEY, intent_pk(id))
            .consistent_read(true)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(unavailable)?;
        self.usage.read(output.consumed_capacity());
        match output.item {
            None => Ok(None),
            Some(item) => {
                let item: IntentItem = serde_dynamo::from_item(item)
                    .map_err(|e| StoreError::Malformed(format!("intent {id}: {e}")))?;
                Ok(Some(item.into()))
            }
        }
    }
}

/// The table's definition in CloudFormation's terms, as `template.yaml` must
/// declare it (checked in CI by `scripts/check-template.sh`).
pub fn table_definition() -> serde_json::Value {
    serde_json::json!({
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": PARTITION_KEY, "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": PARTITION_KEY, "KeyType": "HASH"}],
        "TimeToLiveSpecification": {"AttributeName": TTL_ATTRIBUTE, "Enabled": true},
        "StreamSpecification": {"StreamViewType": "NEW_AND_OLD_IMAGES"},
    })
}

/// Creates the table with the definition the SAM template uses: on-demand, string
/// key `pk`, stream of new and old images, TTL on `expires_at`. For DynamoDB Local
/// and tests; in AWS the template creates it.
pub async fn create_table(client: &Client, table: &str) -> Result<(), StoreError> {
    client
        .create_table()
        .table_name(table)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(PARTITION_KEY)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(|e| StoreError::Malformed(e.to_string()))?,
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name(PARTITION_KEY)
                .key_type(KeyType::Hash)
                .build()
                .map_err(|e| StoreError::Malformed(e.to_string()))?,
        )
        .billing_mode(BillingMode::PayPerRequest)
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewAndOldImages)
                .build()
                .map_err(|e| StoreError::Malformed(e.to_string()))?,
        )
        .send()
        .await
        .map_err(unavailable)?;
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name(TTL_ATTRIBUTE)
                .enabled(true)
                .build()
                .map_err(|e| StoreError::Malformed(e.to_string()))?,
        )
        .send()
        .await
        .map_err(unavailable)?;
    Ok(())
}

/// A webhook write, decided by `domain::transition::decide`.
#[derive(Debug, Clone)]
pub struct EventWrite<'a> {
    /// The event's id.
    pub event_id: &'a str,
    /// The event's type.
    pub event_type: &'a str,
    /// When Fintoc created the event.
    pub event_created_at: Option<&'a str>,
    /// The intent in the event's `data`.
    pub intent: &'a IntentData,
    /// The status the event claims.
    pub claimed: &'a IntentStatus,
    /// What to do.
    pub effect: &'a Effect,
    /// The version read; `None` when the intent is unknown (create it).
    pub expected_version: Option<u64>,
    /// Now, RFC 3339.
    pub now: &'a str,
}

/// The result of a conditional webhook write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteResult {
    /// Written.
    Written,
    /// Someone else wrote first: the state now stored (from `ALL_OLD`, no extra read).
    Conflict(Option<IntentState>),
}

/// Webhook-side access to intents.
pub trait EventStore: Send + Sync {
    /// The state decisions need (strongly consistent read).
    fn intent_state(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<IntentState>, StoreError>> + Send;

    /// One conditional `UpdateItem` holding both the transition and the event id.
    fn write_event(
        &self,
        write: &EventWrite<'_>,
    ) -> impl Future<Output = Result<WriteResult, StoreError>> + Send;
}

fn intent_state_from_item(
    item: &HashMap<String, AttributeValue>,
) -> Result<IntentState, StoreError> {
    let status = match item.get("status") {
        Some(AttributeValue::S(s)) => IntentStatus::parse(s),
        _ => return Err(StoreError::Malformed("intent without status".into())),
    };
    let applied_event_ids = match item.get("applied_event_ids") {
        Some(AttributeValue::Ss(ids)) => ids.iter().cloned().collect(),
        _ => Default::default(),
    };
    let version = match item.get("version") {
        Some(AttributeValue::N(n)) => n
            .parse()
            .map_err(|_| StoreError::Malformed("intent version is not a number".into()))?,
        _ => 0,
    };
    Ok(IntentState {
        status,
        applied_event_ids,
        version,
    })
}

/// Collects `SET` clauses with their names and values.
#[derive(Default)]
struct SetClauses {
    clauses: Vec<String>,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl SetClauses {
    fn set(&mut self, attribute: &str, value: AttributeValue) {
        self.clauses.push(format!("#{attribute} = :{attribute}"));
        self.names
            .insert(format!("#{attribute}"), attribute.to_string());
        self.values.insert(format!(":{attribute}"), value);
    }

    fn set_opt(&mut self, attribute: &str, value: Option<&str>) {
        if let Some(v) = value {
            self.set(attribute, s(v));
        }
    }

    fn append(&mut self, attribute: &str, entry: AttributeValue) {
        self.clauses.push(format!(
            "#{attribute} = list_append(if_not_exists(#{attribute}, :empty_list), :{attribute})"
        ));
        self.names
            .insert(format!("#{attribute}"), attribute.to_string());
        self.values
            .insert(format!(":{attribute}"), AttributeValue::L(vec![entry]));
        self.values
            .insert(":empty_list".into(), AttributeValue::L(vec![]));
    }
}

fn outcome_fields(sets: &mut SetClauses, w: &EventWrite<'_>) {
    let pi = w.intent;
    sets.set_opt("error_reason", pi.error_reason.as_deref());
    sets.set_opt("transaction_date", pi.transaction_date.as_deref());
    sets.set_opt("reference_id", pi.reference_id.as_deref());
    if let Some(sender) = pi.sender_account() {
        let mut m = HashMap::new();
        for (k, v) in [
            ("institution_id", sender.institution_id),
            ("holder_id", sender.holder_id),
            ("number_last4", sender.number_last4),
            ("type", sender.account_type),
        ] {
            if let Some(v) = v {
                m.insert(k.to_string(), s(v));
            }
        }
        sets.set("sender_account", AttributeValue::M(m));
    }
    sets.set("outcome_event_id", s(w.event_id));
    sets.set_opt("outcome_event_created_at", w.event_created_at);
    sets.set("finalized_at", s(w.now));
}

fn event_note(w: &EventWrite<'_>) -> AttributeValue {
    let mut m = HashMap::from([
        ("event_id".to_string(), s(w.event_id)),
        ("event_type".to_string(), s(w.event_type)),
        ("claimed_status".to_string(), s(w.claimed.as_str())),
        ("received_at".to_string(), s(w.now)),
    ]);
    if let Some(reason) = &w.intent.error_reason {
        m.insert("error_reason".into(), s(reason));
    }
    AttributeValue::M(m)
}

impl EventStore for DynamoStore {
    /// An eventually consistent read (half the price of a consistent one). A stale
    /// answer is safe: the write that follows is conditioned on the version read (or
    /// on the item's absence), so it fails and the event is decided again on the
    /// current item that the failed write returns; and event ids are only ever
    /// added, so a stale read never makes a new event look like a duplicate.
    async fn intent_state(&self, id: &str) -> Result<Option<IntentState>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PARTITION_KEY, intent_pk(id))
            .consistent_read(false)
            .projection_expression("#status, applied_event_ids, version")
            .expression_attribute_names("#status", "status")
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(unavailable)?;
        self.usage.read(output.consumed_capacity());
        output.item.as_ref().map(intent_state_from_item).transpose()
    }

    async fn write_event(&self, w: &EventWrite<'_>) -> Result<WriteResult, StoreError> {
        let mut sets = SetClauses::default();
        sets.set("updated_at", s(w.now));
        sets.set("version", n(w.expected_version.map_or(1, |v| v + 1)));
        match w.effect {
            Effect::Duplicate => return Ok(WriteResult::Written),
            Effect::Create { status } => {
                let pi = w.intent;
                sets.set("entity", s("intent"));
                sets.set("id", s(&pi.id));
                sets.set("status", s(status.as_str()));
                // Never invent an amount or currency: create-intent fills them in
                // later if the event lacks them.
                if let Some(amount) = pi.amount {
                    sets.set("amount", n(amount));
                }
                if let Some(currency) = &pi.currency {
                    sets.set("currency", s(currency.to_ascii_uppercase()));
                }
                let metadata = pi.metadata.iter().map(|(k, v)| (k.clone(), s(v))).collect();
                sets.set("metadata", AttributeValue::M(metadata));
                sets.set_opt("order_id", pi.metadata.get("order_id").map(String::as_str));
                sets.set_opt("mode", pi.mode.as_deref());
                sets.set_opt("customer_email", pi.customer_email.as_deref());
                sets.set("created_at", s(pi.created_at.as_deref().unwrap_or(w.now)));
                sets.set("created_by", s("webhook"));
                if status.is_final() {
                    outcome_fields(&mut sets, w);
                }
            }
            Effect::Transition { to, .. } => {
                sets.set("status", s(to.as_str()));
                if to.is_final() {
                    outcome_fields(&mut sets, w);
                }
            }
            Effect::SameStatus => {}
            Effect::ConflictingFinal { .. } => sets.append("anomalies", event_note(w)),
            Effect::Late { .. } => sets.append("late_events", event_note(w)),
        }
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PARTITION_KEY, intent_pk(&w.intent.id))
            .update_expression(format!(
                "SET {} ADD applied_event_ids :event_ids",
                sets.clauses.join(", ")
            ))
            .set_expression_attribute_names(Some(sets.names))
            .set_expression_attribute_values(Some(sets.values))
            .expression_attribute_values(
                ":event_ids",
                AttributeValue::Ss(vec![w.event_id.to_string()]),
            )
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        update = match w.expected_version {
            None => update
                .condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", PARTITION_KEY),
            Some(v) => update
                .condition_expression("#version = :expected_version")
                .expression_attribute_values(":expected_version", n(v)),
        };
        match update
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
        {
            Ok(out) => {
                self.usage.write(out.consumed_capacity());
                Ok(WriteResult::Written)
            }
            Err(err) => match err.as_service_error() {
                Some(aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(c)) => {
                    self.usage.failed_write();
                    let state = c.item().map(intent_state_from_item).transpose()?;
                    Ok(WriteResult::Conflict(state))
                }
                _ => Err(unavailable(err)),
            },
        }
    }
}
