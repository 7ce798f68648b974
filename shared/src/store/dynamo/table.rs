//! The table's one definition: created from it on DynamoDB Local (tests, the local
//! table tool) and checked against `template.yaml` in CI.

use super::{BoxError, StoreError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType,
    TimeToLiveSpecification,
};
use aws_sdk_dynamodb::Client;

/// Name of the partition key attribute.
pub const PARTITION_KEY: &str = "pk";
/// Name of the TTL attribute (Unix seconds).
pub const TTL_ATTRIBUTE: &str = "expires_at";
/// The sparse index of open intents by shard and due time.
pub const DUE_INDEX: &str = "due-checks";
/// What the index copies of an intent: what a check decides on, nothing more, so
/// each index write stays one small item.
pub const DUE_INDEX_ATTRIBUTES: [&str; 9] = [
    "id",
    "status",
    "version",
    "applied_event_ids",
    "amount",
    "currency",
    "order_id",
    "checks",
    "give_up_at",
];

/// The sparse index of checkout sessions by the payment intent recorded as their
/// payment (`payment_intent_id`, which only session items carry): a refund made at
/// Fintoc names that attempt, and is imported on its session through it. Keys
/// only: the session is then read whole.
pub const ATTEMPTS_INDEX: &str = "session-attempts";

/// The sparse index of merchant event deliveries that are not delivered, by queue
/// (`pending`: by when the next attempt is due; `undelivered`: exhausted or held,
/// by when their event was recorded). Keys only: the key names the event and the
/// destination, and a claim reads the delivery whole.
pub const DELIVERIES_INDEX: &str = "deliveries";

fn malformed(e: impl std::fmt::Display) -> StoreError {
    StoreError::Malformed(e.to_string())
}

/// `pk`, a string: both tables' only key attribute.
fn partition_key_definition() -> Result<AttributeDefinition, StoreError> {
    AttributeDefinition::builder()
        .attribute_name(PARTITION_KEY)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .map_err(malformed)
}

/// `pk` as the hash key: both tables' key schema.
fn partition_key_schema() -> Result<KeySchemaElement, StoreError> {
    KeySchemaElement::builder()
        .attribute_name(PARTITION_KEY)
        .key_type(KeyType::Hash)
        .build()
        .map_err(malformed)
}

/// The table's definition in CloudFormation's terms, as `template.yaml` must
/// declare it (checked in CI by `scripts/check-template.sh`).
pub fn table_definition() -> serde_json::Value {
    serde_json::json!({
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [
            {"AttributeName": PARTITION_KEY, "AttributeType": "S"},
            {"AttributeName": "due_shard", "AttributeType": "N"},
            {"AttributeName": "due_at", "AttributeType": "N"},
            {"AttributeName": "payment_intent_id", "AttributeType": "S"},
            {"AttributeName": "queue", "AttributeType": "S"},
            {"AttributeName": "queue_at", "AttributeType": "N"},
        ],
        "KeySchema": [{"AttributeName": PARTITION_KEY, "KeyType": "HASH"}],
        "GlobalSecondaryIndexes": [{
            "IndexName": DUE_INDEX,
            "KeySchema": [
                {"AttributeName": "due_shard", "KeyType": "HASH"},
                {"AttributeName": "due_at", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": DUE_INDEX_ATTRIBUTES},
        }, {
            "IndexName": ATTEMPTS_INDEX,
            "KeySchema": [{"AttributeName": "payment_intent_id", "KeyType": "HASH"}],
            "Projection": {"ProjectionType": "KEYS_ONLY"},
        }, {
            "IndexName": DELIVERIES_INDEX,
            "KeySchema": [
                {"AttributeName": "queue", "KeyType": "HASH"},
                {"AttributeName": "queue_at", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "KEYS_ONLY"},
        }],
        "TimeToLiveSpecification": {"AttributeName": TTL_ATTRIBUTE, "Enabled": true},
        "StreamSpecification": {"StreamViewType": "NEW_AND_OLD_IMAGES"},
    })
}

/// The idempotency records' table in CloudFormation's terms, as `template.yaml`
/// must declare it: on-demand, string key `pk`, TTL on `expires_at`, and no stream
/// — its records hold the replayable answers, widget and session tokens included,
/// which no stream consumer may see.
pub fn idempotency_table_definition() -> serde_json::Value {
    serde_json::json!({
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": PARTITION_KEY, "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": PARTITION_KEY, "KeyType": "HASH"}],
        "TimeToLiveSpecification": {"AttributeName": TTL_ATTRIBUTE, "Enabled": true},
        "StreamSpecification": null,
    })
}

/// Creates the idempotency records' table ([`idempotency_table_definition`]) on
/// DynamoDB Local; in AWS the template creates it.
pub async fn create_idempotency_table(client: &Client, table: &str) -> Result<(), StoreError> {
    client
        .create_table()
        .table_name(table)
        .attribute_definitions(partition_key_definition()?)
        .key_schema(partition_key_schema()?)
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .map_err(|e| StoreError::unavailable("create_table", BoxError::from(e)))?;
    enable_ttl(client, table).await
}

/// Turns on TTL over [`TTL_ATTRIBUTE`].
async fn enable_ttl(client: &Client, table: &str) -> Result<(), StoreError> {
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name(TTL_ATTRIBUTE)
                .enabled(true)
                .build()
                .map_err(malformed)?,
        )
        .send()
        .await
        .map_err(|e| StoreError::unavailable("create_table", BoxError::from(e)))?;
    Ok(())
}

/// Creates the table with the definition the SAM template uses: on-demand, string
/// key `pk`, stream of new and old images, TTL on `expires_at`. For DynamoDB Local
/// and tests; in AWS the template creates it.
pub async fn create_table(client: &Client, table: &str) -> Result<(), StoreError> {
    client
        .create_table()
        .table_name(table)
        .attribute_definitions(partition_key_definition()?)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("due_shard")
                .attribute_type(ScalarAttributeType::N)
                .build()
                .map_err(malformed)?,
        )
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("due_at")
                .attribute_type(ScalarAttributeType::N)
                .build()
                .map_err(malformed)?,
        )
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("payment_intent_id")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(malformed)?,
        )
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("queue")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(malformed)?,
        )
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("queue_at")
                .attribute_type(ScalarAttributeType::N)
                .build()
                .map_err(malformed)?,
        )
        .key_schema(partition_key_schema()?)
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(DELIVERIES_INDEX)
                .key_schema(
                    KeySchemaElement::builder()
                        .attribute_name("queue")
                        .key_type(KeyType::Hash)
                        .build()
                        .map_err(malformed)?,
                )
                .key_schema(
                    KeySchemaElement::builder()
                        .attribute_name("queue_at")
                        .key_type(KeyType::Range)
                        .build()
                        .map_err(malformed)?,
                )
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::KeysOnly)
                        .build(),
                )
                .build()
                .map_err(malformed)?,
        )
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(ATTEMPTS_INDEX)
                .key_schema(
                    KeySchemaElement::builder()
                        .attribute_name("payment_intent_id")
                        .key_type(KeyType::Hash)
                        .build()
                        .map_err(malformed)?,
                )
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::KeysOnly)
                        .build(),
                )
                .build()
                .map_err(malformed)?,
        )
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(DUE_INDEX)
                .key_schema(
                    KeySchemaElement::builder()
                        .attribute_name("due_shard")
                        .key_type(KeyType::Hash)
                        .build()
                        .map_err(malformed)?,
                )
                .key_schema(
                    KeySchemaElement::builder()
                        .attribute_name("due_at")
                        .key_type(KeyType::Range)
                        .build()
                        .map_err(malformed)?,
                )
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::Include)
                        .set_non_key_attributes(Some(
                            DUE_INDEX_ATTRIBUTES.iter().map(|a| a.to_string()).collect(),
                        ))
                        .build(),
                )
                .build()
                .map_err(malformed)?,
        )
        .billing_mode(BillingMode::PayPerRequest)
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewAndOldImages)
                .build()
                .map_err(malformed)?,
        )
        .send()
        .await
        .map_err(|e| StoreError::unavailable("create_table", BoxError::from(e)))?;
    enable_ttl(client, table).await
}
