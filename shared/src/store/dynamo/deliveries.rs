//! Merchant events and their deliveries in DynamoDB — the table is the outbox:
//! `EVENT#<event id>` (the event, inserted once), `DELIVERY#<event id>#<destination>`
//! (one per destination: its state, its attempts, its lease) and
//! `DESTINATION#<name>` (disabled or not). Deliveries not yet delivered carry the
//! sparse index `deliveries` (`queue` = `pending` by next attempt, `undelivered`
//! by the event's time).

use super::expr::Expr;
use super::table::DELIVERIES_INDEX;
use super::{
    failed_condition, n, s, unavailable, ClaimedDelivery, DeliveryRef, DeliveryStore, DeliveryView,
    DestinationState, DynamoStore, RecordedEvent, StoreError, PARTITION_KEY,
};
use crate::domain::delivery::{AttemptRecord, DeliveryState, Next, CLAIM_LEASE_MS};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ReturnConsumedCapacity, ReturnValue, ReturnValuesOnConditionCheckFailure,
};
use std::collections::HashMap;

type Item = HashMap<String, AttributeValue>;

const PENDING_QUEUE: &str = "pending";
pub(crate) const UNDELIVERED_QUEUE: &str = "undelivered";

fn event_pk(event_id: &str) -> AttributeValue {
    s(format!("EVENT#{event_id}"))
}

fn delivery_pk(delivery: &DeliveryRef) -> AttributeValue {
    s(format!(
        "DELIVERY#{}#{}",
        delivery.event_id, delivery.destination
    ))
}

fn destination_pk(name: &str) -> AttributeValue {
    s(format!("DESTINATION#{name}"))
}

/// The delivery a `DELIVERY#` key names (event ids and destination names hold no `#`).
fn parse_delivery_pk(pk: &str) -> Option<DeliveryRef> {
    let (event_id, destination) = pk.strip_prefix("DELIVERY#")?.split_once('#')?;
    Some(DeliveryRef {
        event_id: event_id.to_string(),
        destination: destination.to_string(),
    })
}

fn text(item: &Item, attr: &str) -> Option<String> {
    item.get(attr).and_then(|v| v.as_s().ok()).cloned()
}

fn number(item: &Item, attr: &str) -> Option<i64> {
    item.get(attr)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

fn event_from_item(item: &Item) -> Result<RecordedEvent, StoreError> {
    let field = |attr: &str| {
        text(item, attr).ok_or_else(|| StoreError::Malformed(format!("event without {attr}")))
    };
    Ok(RecordedEvent {
        id: field("id")?,
        event_type: field("event_type")?,
        order_id: text(item, "order_id"),
        body: field("body")?,
        recorded_ms: number(item, "recorded_ms").unwrap_or_default(),
    })
}

fn claimed_from_item(delivery: &DeliveryRef, item: &Item) -> Result<ClaimedDelivery, StoreError> {
    Ok(ClaimedDelivery {
        delivery: delivery.clone(),
        attempt: number(item, "attempts").unwrap_or_default() as u32,
        body: text(item, "body")
            .ok_or_else(|| StoreError::Malformed("delivery without body".into()))?,
    })
}

fn attempt_to_value(record: &AttemptRecord) -> AttributeValue {
    let mut map = HashMap::from([
        ("attempt".to_string(), n(record.attempt)),
        ("at_ms".to_string(), n(record.at_ms)),
        ("duration_ms".to_string(), n(record.duration_ms)),
        ("answer".to_string(), s(&record.answer_head)),
    ]);
    if let Some(status) = record.status {
        map.insert("status".into(), n(status));
    }
    AttributeValue::M(map)
}

fn attempt_from_value(value: &AttributeValue) -> Option<AttemptRecord> {
    let map = value.as_m().ok()?;
    Some(AttemptRecord {
        attempt: number(map, "attempt")? as u32,
        at_ms: number(map, "at_ms")?,
        status: number(map, "status").map(|s| s as u16),
        duration_ms: number(map, "duration_ms").unwrap_or_default() as u64,
        answer_head: text(map, "answer").unwrap_or_default(),
    })
}

/// The attributes every delivery item carries: what it delivers.
fn delivery_item(event: &RecordedEvent, destination: &str) -> Item {
    let mut item = HashMap::from([
        (
            PARTITION_KEY.to_string(),
            delivery_pk(&DeliveryRef {
                event_id: event.id.clone(),
                destination: destination.to_string(),
            }),
        ),
        ("entity".to_string(), s("delivery")),
        ("event_id".to_string(), s(&event.id)),
        ("destination".to_string(), s(destination)),
        ("event_type".to_string(), s(&event.event_type)),
        ("body".to_string(), s(&event.body)),
        ("recorded_ms".to_string(), n(event.recorded_ms)),
    ]);
    if let Some(order_id) = &event.order_id {
        item.insert("order_id".into(), s(order_id));
    }
    item
}

/// `attribute_not_exists(pk)`: an item inserted once.
fn insert_once() -> Expr {
    let mut once = Expr::default();
    let pk = once.name(PARTITION_KEY);
    once.condition(format!("attribute_not_exists({pk})"));
    once
}

impl DynamoStore {
    /// One conditional `PutItem`: `Ok(None)` inserted, `Ok(Some(old))` the item
    /// that was there.
    async fn insert_once(&self, item: Item) -> Result<Option<Item>, StoreError> {
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item));
        let result = insert_once()
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
            Err(err) if failed_condition(&err) => {
                self.usage.failed_write();
                let old = match err.into_service_error() {
                    PutItemError::ConditionalCheckFailedException(c) => c.item,
                    _ => None,
                };
                Ok(Some(old.unwrap_or_default()))
            }
            Err(err) => Err(unavailable("record_event")(err)),
        }
    }

    /// An `UpdateItem` answering the item as written (`None`: refused by its
    /// condition).
    async fn update_returning(
        &self,
        operation: &'static str,
        key: AttributeValue,
        expr: Expr,
    ) -> Result<Option<Item>, StoreError> {
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PARTITION_KEY, key);
        let result = expr
            .apply_to_update(update)
            .return_values(ReturnValue::AllNew)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match result {
            Ok(out) => {
                self.usage.write(out.consumed_capacity());
                Ok(Some(out.attributes.unwrap_or_default()))
            }
            Err(err) if failed_condition(&err) => {
                self.usage.failed_write();
                Ok(None)
            }
            Err(err) => Err(unavailable(operation)(err)),
        }
    }

    /// The deliveries in `queue` with `queue_at` in the key condition `range`.
    async fn queue(
        &self,
        queue: &str,
        range: &str,
        at_ms: i64,
        limit: i32,
    ) -> Result<Vec<DeliveryRef>, StoreError> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(DELIVERIES_INDEX)
            .key_condition_expression(format!("#queue = :queue AND #queue_at {range} :at"))
            .expression_attribute_names("#queue", "queue")
            .expression_attribute_names("#queue_at", "queue_at")
            .expression_attribute_values(":queue", s(queue))
            .expression_attribute_values(":at", n(at_ms))
            .limit(limit.max(1))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(unavailable("delivery_queue"))?;
        self.usage.read(output.consumed_capacity());
        Ok(output
            .items()
            .iter()
            .filter_map(|item| parse_delivery_pk(&text(item, PARTITION_KEY)?))
            .collect())
    }
}

/// A delivery's first attempt claimed: pending, attempt 1, leased.
fn claimed_first(item: &mut Item, now_ms: i64) {
    let lease = now_ms + CLAIM_LEASE_MS;
    item.extend([
        ("state".to_string(), s(DeliveryState::Pending.as_str())),
        ("attempts".to_string(), n(1)),
        ("lease_until".to_string(), n(lease)),
        ("next_at".to_string(), n(now_ms)),
        ("queue".to_string(), s(PENDING_QUEUE)),
        // Found by the sweep once the lease is over (a crashed attempt).
        ("queue_at".to_string(), n(lease)),
    ]);
}

/// The upsert that starts a new ladder for `event`'s delivery to `destination`
/// (made if it did not exist), whatever its state, unless an attempt of it is in
/// flight (a live lease): pending, due now, unclaimed — the dispatcher's next
/// sweep makes its first attempt (an operator's resend: the operations function
/// holds no signing secret). Its key and expression.
pub(crate) fn reopened(
    event: &RecordedEvent,
    destination: &str,
    now_ms: i64,
) -> (AttributeValue, Expr) {
    let mut item = delivery_item(event, destination);
    let key = item
        .remove(PARTITION_KEY)
        .expect("a delivery item has its key");
    item.extend([
        ("state".to_string(), s(DeliveryState::Pending.as_str())),
        ("attempts".to_string(), n(0)),
        ("next_at".to_string(), n(now_ms)),
        ("queue".to_string(), s(PENDING_QUEUE)),
        ("queue_at".to_string(), n(now_ms)),
    ]);
    let mut expr = Expr::default();
    // A new ladder: an exhaustion acknowledged before is no longer the state.
    expr.remove("lease_until").remove("acknowledged");
    for (attr, value) in item {
        expr.set(&attr, value);
    }
    let (pk, lease_until, now) = (
        expr.name(PARTITION_KEY),
        expr.name("lease_until"),
        expr.value("now", n(now_ms)),
    );
    expr.condition(format!(
        "attribute_not_exists({pk}) OR attribute_not_exists({lease_until}) \
         OR {lease_until} < {now}"
    ));
    (key, expr)
}

/// The update that disables or enables a destination.
pub(crate) fn destination_change(
    name: &str,
    disabled: bool,
    now_ms: i64,
) -> (AttributeValue, Expr) {
    let mut expr = Expr::default();
    expr.set("entity", s("destination"))
        .set("name", s(name))
        .set("disabled", AttributeValue::Bool(disabled))
        .set("changed_ms", n(now_ms));
    (destination_pk(name), expr)
}

impl DeliveryStore for DynamoStore {
    /// One conditional `PutItem` for the event and one per destination, together.
    async fn record_event(
        &self,
        event: &RecordedEvent,
        destinations: &[(String, bool)],
        now_ms: i64,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        let mut item = HashMap::from([
            (PARTITION_KEY.to_string(), event_pk(&event.id)),
            ("entity".to_string(), s("merchant_event")),
            ("id".to_string(), s(&event.id)),
            ("event_type".to_string(), s(&event.event_type)),
            ("body".to_string(), s(&event.body)),
            ("recorded_ms".to_string(), n(event.recorded_ms)),
        ]);
        if let Some(order_id) = &event.order_id {
            item.insert("order_id".into(), s(order_id));
        }
        // Recorded before: every delivery sends the body recorded first.
        let event = match self.insert_once(item).await? {
            Some(old) if !old.is_empty() => event_from_item(&old)?,
            _ => event.clone(),
        };
        let inserts = destinations.iter().map(|(destination, enabled)| {
            let mut item = delivery_item(&event, destination);
            if *enabled {
                claimed_first(&mut item, now_ms);
            } else {
                item.extend([
                    ("state".to_string(), s(DeliveryState::Held.as_str())),
                    ("attempts".to_string(), n(0)),
                    ("queue".to_string(), s(UNDELIVERED_QUEUE)),
                    ("queue_at".to_string(), n(event.recorded_ms)),
                ]);
            }
            let event = &event;
            async move {
                let inserted = self.insert_once(item).await?.is_none();
                Ok::<_, StoreError>((inserted && *enabled).then(|| ClaimedDelivery {
                    delivery: DeliveryRef {
                        event_id: event.id.clone(),
                        destination: destination.clone(),
                    },
                    attempt: 1,
                    body: event.body.clone(),
                }))
            }
        });
        let claimed = futures::future::try_join_all(inserts).await?;
        Ok(claimed.into_iter().flatten().collect())
    }

    /// One conditional `UpdateItem`: pending, due, and no live lease.
    async fn claim_delivery(
        &self,
        delivery: &DeliveryRef,
        now_ms: i64,
    ) -> Result<Option<ClaimedDelivery>, StoreError> {
        let mut expr = Expr::default();
        let lease = now_ms + CLAIM_LEASE_MS;
        expr.increment("attempts")
            .set("lease_until", n(lease))
            .set("queue_at", n(lease));
        let now = expr.value("now", n(now_ms));
        let pending = expr.value("pending", s(DeliveryState::Pending.as_str()));
        let (state, next_at, lease_until) = (
            expr.name("state"),
            expr.name("next_at"),
            expr.name("lease_until"),
        );
        expr.condition(format!(
            "{state} = {pending} AND {next_at} <= {now} AND \
             (attribute_not_exists({lease_until}) OR {lease_until} < {now})"
        ));
        self.update_returning("claim_delivery", delivery_pk(delivery), expr)
            .await?
            .map(|item| claimed_from_item(delivery, &item))
            .transpose()
    }

    /// One conditional `UpdateItem`, guarded by the attempt's number.
    async fn finish_attempt(
        &self,
        claimed: &ClaimedDelivery,
        record: &AttemptRecord,
        next: Next,
    ) -> Result<bool, StoreError> {
        let mut expr = Expr::default();
        expr.append("history", attempt_to_value(record))
            .set("state", s(DeliveryState::after(next).as_str()))
            .remove("lease_until");
        expr.set_some("last_status", record.status.map(n));
        match next {
            Next::Delivered => {
                expr.remove("queue").remove("queue_at").remove("next_at");
            }
            Next::RetryAt(at) => {
                expr.set("next_at", n(at)).set("queue_at", n(at));
            }
            Next::Exhausted | Next::DisableEndpoint => {
                let (queue_at, recorded) = (expr.name("queue_at"), expr.name("recorded_ms"));
                expr.set("queue", s(UNDELIVERED_QUEUE))
                    .set_path(&queue_at, &recorded)
                    .remove("next_at");
            }
        }
        let attempts = expr.name("attempts");
        let number = expr.value("attempt", n(claimed.attempt));
        let pending = expr.value("pending", s(DeliveryState::Pending.as_str()));
        expr.condition(format!("{attempts} = {number} AND #state = {pending}"));
        self.conditional_update("finish_attempt", delivery_pk(&claimed.delivery), expr)
            .await
    }

    /// One `Query` of the index's `pending` queue.
    async fn due_deliveries(
        &self,
        now_ms: i64,
        limit: i32,
    ) -> Result<Vec<DeliveryRef>, StoreError> {
        self.queue(PENDING_QUEUE, "<=", now_ms, limit).await
    }

    /// One `Query` of the index's `undelivered` queue.
    async fn undelivered_since(
        &self,
        since_ms: i64,
        limit: i32,
    ) -> Result<Vec<DeliveryRef>, StoreError> {
        self.queue(UNDELIVERED_QUEUE, ">=", since_ms, limit).await
    }

    /// One strongly consistent `GetItem`.
    async fn event(&self, event_id: &str) -> Result<Option<RecordedEvent>, StoreError> {
        let item = self.consistent_item("event", event_pk(event_id)).await?;
        item.as_ref().map(event_from_item).transpose()
    }

    /// One strongly consistent `GetItem`.
    async fn delivery(&self, delivery: &DeliveryRef) -> Result<Option<DeliveryView>, StoreError> {
        let item = self
            .consistent_item("delivery", delivery_pk(delivery))
            .await?;
        let Some(item) = item else {
            return Ok(None);
        };
        Ok(Some(DeliveryView {
            delivery: delivery.clone(),
            state: text(&item, "state")
                .as_deref()
                .and_then(DeliveryState::parse)
                .ok_or_else(|| StoreError::Malformed("delivery without a state".into()))?,
            attempts: number(&item, "attempts").unwrap_or_default() as u32,
            history: item
                .get("history")
                .and_then(|h| h.as_l().ok())
                .map(|list| list.iter().filter_map(attempt_from_value).collect())
                .unwrap_or_default(),
            next_at_ms: number(&item, "next_at"),
        }))
    }

    /// One `GetItem` per name (there are few destinations).
    async fn disabled_destinations(&self, names: &[String]) -> Result<Vec<String>, StoreError> {
        Ok(self
            .destination_states(names)
            .await?
            .into_iter()
            .filter(|d| d.disabled)
            .map(|d| d.name)
            .collect())
    }

    /// One `UpdateItem`.
    async fn set_destination_disabled(
        &self,
        name: &str,
        disabled: bool,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let (key, expr) = destination_change(name, disabled, now_ms);
        self.conditional_update("set_destination_disabled", key, expr)
            .await
            .map(|_| ())
    }

    /// One `GetItem` per name, in parallel (eventually consistent: a flag an
    /// operator or a `410` changed shows within a second).
    async fn destination_states(
        &self,
        names: &[String],
    ) -> Result<Vec<DestinationState>, StoreError> {
        let reads = names.iter().map(|name| async move {
            let output = self
                .client
                .get_item()
                .table_name(&self.table)
                .key(PARTITION_KEY, destination_pk(name))
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await
                .map_err(unavailable("destination_states"))?;
            self.usage.read(output.consumed_capacity());
            let item = output.item.unwrap_or_default();
            Ok::<_, StoreError>(DestinationState {
                name: name.clone(),
                disabled: item
                    .get("disabled")
                    .and_then(|v| v.as_bool().ok())
                    .copied()
                    .unwrap_or(false),
                changed_ms: number(&item, "changed_ms"),
            })
        });
        futures::future::try_join_all(reads).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delivery_key_names_its_event_and_destination() {
        let delivery = DeliveryRef {
            event_id: "evt_0123".into(),
            destination: "shop-1".into(),
        };
        let pk = delivery_pk(&delivery);
        assert_eq!(parse_delivery_pk(pk.as_s().unwrap()), Some(delivery));
        assert_eq!(parse_delivery_pk("EVENT#evt_0123"), None);
    }

    #[test]
    fn an_attempt_is_stored_and_read_back_whole() {
        for status in [Some(500), None] {
            let record = AttemptRecord {
                attempt: 3,
                at_ms: 1_700_000_000_000,
                status,
                duration_ms: 42,
                answer_head: "busy".into(),
            };
            assert_eq!(attempt_from_value(&attempt_to_value(&record)), Some(record));
        }
    }
}
