//! Idempotency records in DynamoDB: `IDEMPOTENCY#<client key>` items, taken with a
//! conditional `PutItem` (the lease), completed or released under that lease.

use super::expr::Expr;
use super::{n, s, unavailable, DynamoStore, IdempotencyStore, StoreError};
use super::{PARTITION_KEY, TTL_ATTRIBUTE};
use crate::domain::idempotency::{
    classify_conflict, AcquireOutcome, AcquireRequest, CompleteRequest, IdempotencyKey,
    IdempotencyRecord, LeaseId, RecordStatus, StoredResponse,
};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ReturnConsumedCapacity, ReturnValuesOnConditionCheckFailure,
};
use serde::Deserialize;

const IN_PROGRESS: &str = "IN_PROGRESS";
const COMPLETED: &str = "COMPLETED";

fn idempotency_pk(key: &IdempotencyKey) -> AttributeValue {
    s(format!("IDEMPOTENCY#{}", key.record_id()))
}

/// The record as stored; `expires_at` is the TTL attribute, in seconds.
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
            expires_at_ms: item.expires_at * 1000,
            response,
        }
    }
}

/// The condition under which a lease is held by this lease id, still in progress.
fn held_by(expr: &mut Expr, lease_id: &LeaseId) {
    let (lease, status) = (expr.name("lease_id"), expr.name("status"));
    let lease_value = expr.value("lease", s(lease_id.as_str()));
    let in_progress = expr.value("in_progress", s(IN_PROGRESS));
    expr.condition(format!(
        "{lease} = {lease_value} AND {status} = {in_progress}"
    ));
}

impl IdempotencyStore for DynamoStore {
    /// `domain::idempotency::can_take_over`, as a `PutItem` condition. The record
    /// keeps its expiry in whole seconds; `expires_at * 1000 < now_ms` is written
    /// `expires_at < ceil(now_ms / 1000)`.
    async fn acquire(&self, request: &AcquireRequest<'_>) -> Result<AcquireOutcome, StoreError> {
        let lease_id = LeaseId::random();
        let mut expr = Expr::default();
        let pk = expr.name(PARTITION_KEY);
        let exp = expr.name(TTL_ATTRIBUTE);
        let status = expr.name("status");
        let lease = expr.name("lease_expires_at_ms");
        let hash = expr.name("request_hash");
        let now_s = expr.value("now_s", n((request.now_ms + 999).div_euclid(1000)));
        let now_ms = expr.value("now_ms", n(request.now_ms));
        let in_progress = expr.value("in_progress", s(IN_PROGRESS));
        let hash_value = expr.value("hash", s(request.request_hash));
        expr.condition(format!(
            "attribute_not_exists({pk}) OR {exp} < {now_s} OR \
             ({status} = {in_progress} AND {lease} < {now_ms} AND {hash} = {hash_value})"
        ));
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(PARTITION_KEY, idempotency_pk(request.key))
            .item("entity", s("idempotency"))
            .item("status", s(IN_PROGRESS))
            .item("request_hash", s(request.request_hash))
            .item("lease_id", s(lease_id.as_str()))
            .item("lease_expires_at_ms", n(request.lease_expires_at_ms))
            .item(TTL_ATTRIBUTE, n(request.expires_at_ms.div_euclid(1000)))
            .item("created_at_ms", n(request.now_ms));
        let result = expr
            .apply_to_put(put)
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
                let old = match err.as_service_error() {
                    Some(PutItemError::ConditionalCheckFailedException(c)) => {
                        self.usage.failed_write();
                        c.item().cloned()
                    }
                    _ => return Err(unavailable("acquire")(err)),
                };
                let old = old.ok_or_else(|| {
                    StoreError::Malformed("conditional check failed without the old item".into())
                })?;
                let item: IdempotencyItem = serde_dynamo::from_item(old)
                    .map_err(|e| StoreError::Malformed(format!("idempotency record: {e}")))?;
                Ok(classify_conflict(
                    &item.into(),
                    request.request_hash,
                    request.now_ms,
                ))
            }
        }
    }

    async fn complete(&self, request: &CompleteRequest<'_>) -> Result<bool, StoreError> {
        let mut expr = Expr::default();
        held_by(&mut expr, request.lease_id);
        expr.set("status", s(COMPLETED))
            .set("response_status", n(request.response.status))
            .set("response_body", s(&request.response.body))
            .set_some("intent_id", request.intent_id.map(s));
        self.conditional_update("complete", idempotency_pk(request.key), expr)
            .await
    }

    async fn release(&self, key: &IdempotencyKey, lease_id: &LeaseId) -> Result<(), StoreError> {
        let mut expr = Expr::default();
        held_by(&mut expr, lease_id);
        let delete = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(PARTITION_KEY, idempotency_pk(key));
        let result = expr
            .apply_to_delete(delete)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map(|out| out.consumed_capacity);
        // Refused: the lease is no longer ours (completed, taken over); nothing to do.
        self.settle_write("release", result).map(|_| ())
    }
}
