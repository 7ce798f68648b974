//! Idempotency records in DynamoDB: `IDEMPOTENCY#<client key>` items, taken with a
//! conditional `PutItem` (a fresh record, with a fresh reservation) or resumed with
//! a conditional `UpdateItem` (keeping its reservation), completed or released
//! under the lease that holds them.

use super::expr::Expr;
use super::{n, s, unavailable, DynamoStore, IdempotencyStore, StoreError};
use super::{PARTITION_KEY, TTL_ATTRIBUTE};
use crate::domain::idempotency::{
    can_resume, classify_conflict, AcquireOutcome, AcquireRequest, CompleteRequest, IdempotencyKey,
    IdempotencyRecord, KeyHistory, LeaseId, RecordStatus, ReservationId, StoredResponse,
};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ReturnConsumedCapacity, ReturnValue, ReturnValuesOnConditionCheckFailure,
};
use serde::Deserialize;
use std::collections::HashMap;

const IN_PROGRESS: &str = "IN_PROGRESS";
const COMPLETED: &str = "COMPLETED";
const RELEASED: &str = "RELEASED";

/// The key of a record's item.
pub(crate) fn idempotency_pk(key: &IdempotencyKey) -> AttributeValue {
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
    #[serde(default)]
    reservation_id: Option<String>,
    #[serde(default)]
    created_at_ms: i64,
    #[serde(default)]
    fintoc_key_generation: u32,
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
            reservation_id: item.reservation_id.map(ReservationId::from_stored),
            history: KeyHistory {
                taken_at_ms: item.created_at_ms,
                fintoc_key_generation: item.fintoc_key_generation,
            },
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

/// A fresh record's item and the condition it is put under: no live record
/// (`domain::idempotency::is_expired`); the record keeps its expiry in whole
/// seconds, so `expires_at * 1000 < now_ms` is written `expires_at <
/// ceil(now_ms / 1000)`.
fn fresh_record(
    request: &AcquireRequest<'_>,
    lease_id: &LeaseId,
    reservation_id: &ReservationId,
) -> (HashMap<String, AttributeValue>, Expr) {
    let mut expr = Expr::default();
    let pk = expr.name(PARTITION_KEY);
    let exp = expr.name(TTL_ATTRIBUTE);
    let now_s = expr.value("now_s", n((request.now_ms + 999).div_euclid(1000)));
    expr.condition(format!("attribute_not_exists({pk}) OR {exp} < {now_s}"));
    let item = HashMap::from([
        (PARTITION_KEY.to_string(), idempotency_pk(request.key)),
        ("entity".to_string(), s("idempotency")),
        ("status".to_string(), s(IN_PROGRESS)),
        ("request_hash".to_string(), s(request.request_hash)),
        ("lease_id".to_string(), s(lease_id.as_str())),
        (
            "lease_expires_at_ms".to_string(),
            n(request.lease_expires_at_ms),
        ),
        ("reservation_id".to_string(), s(reservation_id.as_str())),
        (
            TTL_ATTRIBUTE.to_string(),
            n(request.expires_at_ms.div_euclid(1000)),
        ),
        ("created_at_ms".to_string(), n(request.now_ms)),
    ]);
    (item, expr)
}

/// A fresh record's put, as one item of a transaction (in `table`).
pub(crate) fn fresh_record_put(
    table: &str,
    request: &AcquireRequest<'_>,
    lease_id: &LeaseId,
    reservation_id: &ReservationId,
) -> Result<aws_sdk_dynamodb::types::TransactWriteItem, aws_sdk_dynamodb::error::BuildError> {
    let (item, expr) = fresh_record(request, lease_id, reservation_id);
    expr.into_transact_put(table, item)
}

/// The completion of a record held by its lease: its answer stored for replay.
pub(crate) fn complete_expr(request: &CompleteRequest<'_>) -> Expr {
    let mut expr = Expr::default();
    held_by(&mut expr, request.lease_id);
    expr.set("status", s(COMPLETED))
        .set("response_status", n(request.response.status))
        .set("response_body", s(&request.response.body))
        .set_some("intent_id", request.intent_id.map(s));
    expr
}

impl DynamoStore {
    /// A fresh record ([`fresh_record`], one `PutItem`): `None` when written, else
    /// the record found.
    async fn put_fresh_record(
        &self,
        request: &AcquireRequest<'_>,
        lease_id: &LeaseId,
        reservation_id: &ReservationId,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        let (item, expr) = fresh_record(request, lease_id, reservation_id);
        let put = self
            .client
            .put_item()
            .table_name(&self.idempotency_table)
            .set_item(Some(item));
        let result = expr
            .apply_to_put(put)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match result {
            Ok(out) => {
                self.usage.write(out.consumed_capacity());
                Ok(None)
            }
            Err(err) => match err.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(c)) => {
                    self.usage.failed_write();
                    record_from(c.item().cloned()).map(Some)
                }
                _ => Err(unavailable("acquire")(err)),
            },
        }
    }

    /// Resumes a live record under a new lease (`domain::idempotency::can_resume`,
    /// as an `UpdateItem` condition), keeping its reservation: `Ok(record)` as
    /// written, `Err(record found)` when the condition failed.
    async fn resume_record(
        &self,
        request: &AcquireRequest<'_>,
        lease_id: &LeaseId,
    ) -> Result<Result<IdempotencyRecord, IdempotencyRecord>, StoreError> {
        let mut expr = Expr::default();
        expr.set("status", s(IN_PROGRESS))
            .set("lease_id", s(lease_id.as_str()))
            .set("lease_expires_at_ms", n(request.lease_expires_at_ms))
            .set(TTL_ATTRIBUTE, n(request.expires_at_ms.div_euclid(1000)));
        let exp = expr.name(TTL_ATTRIBUTE);
        let status = expr.name("status");
        let lease = expr.name("lease_expires_at_ms");
        let hash = expr.name("request_hash");
        let now_s = expr.value("now_s", n((request.now_ms + 999).div_euclid(1000)));
        let now_ms = expr.value("now_ms", n(request.now_ms));
        let in_progress = expr.value("in_progress", s(IN_PROGRESS));
        let released = expr.value("released", s(RELEASED));
        let hash_value = expr.value("hash", s(request.request_hash));
        expr.condition(format!(
            "{exp} >= {now_s} AND {hash} = {hash_value} AND ({status} = {released} OR \
             ({status} = {in_progress} AND {lease} < {now_ms}))"
        ));
        let update = self
            .client
            .update_item()
            .table_name(&self.idempotency_table)
            .key(PARTITION_KEY, idempotency_pk(request.key));
        let result = expr
            .apply_to_update(update)
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match result {
            Ok(out) => {
                self.usage.write(out.consumed_capacity());
                record_from(out.attributes).map(Ok)
            }
            Err(err) => match err.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(c)) => {
                    self.usage.failed_write();
                    record_from(c.item().cloned()).map(Err)
                }
                _ => Err(unavailable("acquire")(err)),
            },
        }
    }
}

impl DynamoStore {
    /// What a key is, once a fresh record was refused on `existing`: resumed under
    /// `lease_id` (one `UpdateItem`, keeping its reservation) when it can be (a
    /// released key, an abandoned lease), else classified from it (a replay, in
    /// progress, a mismatch).
    pub(crate) async fn acquire_found(
        &self,
        request: &AcquireRequest<'_>,
        existing: &IdempotencyRecord,
        lease_id: LeaseId,
    ) -> Result<AcquireOutcome, StoreError> {
        if !can_resume(existing, request.request_hash, request.now_ms) {
            return Ok(classify_conflict(
                existing,
                request.request_hash,
                request.now_ms,
            ));
        }
        match self.resume_record(request, &lease_id).await? {
            Ok(resumed) => Ok(AcquireOutcome::Acquired {
                lease_id,
                reservation_id: resumed
                    .reservation_id
                    .unwrap_or_else(|| ReservationId::of_legacy_record(request.key)),
                resumed: Some(resumed.history),
            }),
            // Another request resumed or completed it meanwhile.
            Err(current) => Ok(classify_conflict(
                &current,
                request.request_hash,
                request.now_ms,
            )),
        }
    }
}

/// A record read back from an item a write returned.
pub(crate) fn record_from(
    item: Option<std::collections::HashMap<String, AttributeValue>>,
) -> Result<IdempotencyRecord, StoreError> {
    let item = item.ok_or_else(|| {
        StoreError::Malformed("a conditional write returned no idempotency record".into())
    })?;
    let item: IdempotencyItem = serde_dynamo::from_item(item)
        .map_err(|e| StoreError::Malformed(format!("idempotency record: {e}")))?;
    Ok(item.into())
}

impl IdempotencyStore for DynamoStore {
    /// A fresh record in one `PutItem`; a live record that can be resumed (a
    /// released key, an abandoned lease) in one more `UpdateItem`, keeping its
    /// reservation; anything else is classified from the record the put returned.
    async fn acquire(&self, request: &AcquireRequest<'_>) -> Result<AcquireOutcome, StoreError> {
        let lease_id = LeaseId::random();
        let reservation_id = ReservationId::random();
        let Some(existing) = self
            .put_fresh_record(request, &lease_id, &reservation_id)
            .await?
        else {
            return Ok(AcquireOutcome::Acquired {
                lease_id,
                reservation_id,
                resumed: None,
            });
        };
        self.acquire_found(request, &existing, lease_id).await
    }

    async fn complete(&self, request: &CompleteRequest<'_>) -> Result<bool, StoreError> {
        self.conditional_update_in(
            &self.idempotency_table,
            "complete",
            idempotency_pk(request.key),
            complete_expr(request),
        )
        .await
    }

    /// Marks the record released (kept, with its reservation, until it expires),
    /// if this lease still holds it; refused (completed, taken over): nothing to do.
    async fn release(&self, key: &IdempotencyKey, lease_id: &LeaseId) -> Result<(), StoreError> {
        let mut expr = Expr::default();
        held_by(&mut expr, lease_id);
        expr.set("status", s(RELEASED));
        self.conditional_update_in(
            &self.idempotency_table,
            "release",
            idempotency_pk(key),
            expr,
        )
        .await
        .map(|_| ())
    }

    /// Moves the key's Fintoc generation from `from` to the next, if this lease
    /// still holds the record and it is still at `from` (a record without the
    /// attribute is at 0).
    async fn next_fintoc_key_generation(
        &self,
        key: &IdempotencyKey,
        lease_id: &LeaseId,
        from: u32,
    ) -> Result<bool, StoreError> {
        let mut expr = Expr::default();
        held_by(&mut expr, lease_id);
        let generation = expr.name("fintoc_key_generation");
        let from_value = expr.value("from", n(from));
        if from == 0 {
            expr.and_condition(format!(
                "attribute_not_exists({generation}) OR {generation} = {from_value}"
            ));
        } else {
            expr.and_condition(format!("{generation} = {from_value}"));
        }
        expr.set("fintoc_key_generation", n(from + 1));
        self.conditional_update_in(
            &self.idempotency_table,
            "next_fintoc_key_generation",
            idempotency_pk(key),
            expr,
        )
        .await
    }
}
