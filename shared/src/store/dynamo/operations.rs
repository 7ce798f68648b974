//! Operators' writes in DynamoDB: a resolution of an order held in `review` and its
//! audit entry, in one `TransactWriteItems` (the order from `review`, the payment
//! accepted or checked unchanged, the entry inserted once) — together or not at all;
//! and the audit log, read from the queue index (`queue = audit`, by time). Audit
//! entries (`AUDIT#<id>`) are only ever inserted: no code updates or deletes one, and
//! the template's policies allow no role to.

use super::attention::ATTENTION_QUEUE;
use super::deliveries::{destination_change, reopened, UNDELIVERED_QUEUE};
use super::expr::Expr;
use super::orders::order_from_item;
use super::orders::order_pk;
use super::payments::payment_pk;
use super::refunds::payment_from_item;
use super::table::DELIVERIES_INDEX;
use super::{n, s, unavailable, DynamoStore, RecordedEvent, StoreError, PARTITION_KEY};
use crate::domain::attention::{needs, oldest_first, outstanding, Candidate, QueueItem};
use crate::domain::delivery::DeliveryState;
use crate::domain::payment::{PaymentStatus, ReviewReason};
use crate::domain::refund::RefundStatus;
use crate::domain::resolution::{AuditEntry, ResolutionPlan, ResolveAs};
use crate::store::{OperationsStore, ResolveWrite};
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, TransactWriteItem};
use std::collections::HashMap;

/// The queue index's partition of audit entries.
pub const AUDIT_QUEUE: &str = "audit";

/// The reasons acknowledged on a queued item (a string set): they leave the queue.
pub(crate) const ACKNOWLEDGED: &str = "acknowledged";

/// The key of the stored item a queue item names.
fn queue_item_pk(item: &QueueItem) -> Option<AttributeValue> {
    match item.kind {
        "payment" => {
            let kind = match item.id.starts_with("cs_") {
                true => crate::domain::payment::PaymentKind::Session,
                false => crate::domain::payment::PaymentKind::Intent,
            };
            Some(payment_pk(kind, &item.id))
        }
        "refund" => Some(s(format!("REFUND_OUTCOME#{}", item.id))),
        "delivery" => Some(s(format!("DELIVERY#{}", item.id.replacen('/', "#", 1)))),
        "order" => Some(order_pk(&item.id)),
        _ => None,
    }
}

/// The key of an audit entry.
fn audit_pk(id: &str) -> AttributeValue {
    s(format!("AUDIT#{id}"))
}

fn built(e: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::Malformed(format!("a resolution's transaction: {e}"))
}

/// The order moved from `review` to the resolution's state, only if it still
/// names the payment decided on.
fn order_write(table: &str, plan: &ResolutionPlan) -> Result<TransactWriteItem, StoreError> {
    let mut e = Expr::default();
    let (state, intent) = (e.name("state"), e.name("intent_id"));
    let review = e.value("review", s("review"));
    let payment = e.value("payment", s(&plan.payment_id));
    e.condition(format!("{state} = {review} AND {intent} = {payment}"));
    e.set("state", s(plan.resolve_as.order_state().as_str()))
        .set("resolution_id", s(&plan.entry.id))
        .set("resolved_at", s(&plan.entry.at))
        .remove("queue")
        .remove("queue_at");
    if plan.resolve_as == ResolveAs::Paid {
        // As an outcome that pays it: its `order.paid` event carries the time.
        e.set("paid_at", s(&plan.entry.at));
    }
    e.into_transact_update(table, (PARTITION_KEY, order_pk(&plan.order_id)))
        .map_err(built)
}

/// `paid`: the payment takes Fintoc's amount and currency (only while it still
/// holds the mismatch at the amount decided on); `closed`: a check that the
/// payment's status is still the one decided on.
fn payment_write(table: &str, plan: &ResolutionPlan) -> Result<TransactWriteItem, StoreError> {
    let key = payment_pk(plan.payment_kind, &plan.payment_id);
    let mut e = Expr::default();
    let status = e.name("status");
    match &plan.acceptance {
        Some(accepted) => {
            let (needs_review, amount) = (e.name("needs_review"), e.name("amount"));
            let succeeded = e.value("succeeded", s(PaymentStatus::Succeeded.as_str()));
            let mismatch = e.value("mismatch", s(ReviewReason::AmountMismatch.as_str()));
            let requested = e.value("requested", n(accepted.requested_amount));
            // Whatever refunds hold must fit in the amount accepted (a held payment
            // takes none through the API; this keeps it so whatever wrote them).
            let (reserved, accepted_amount) = (
                e.name("refund_reserved"),
                e.value("accepted", n(accepted.amount)),
            );
            e.condition(format!(
                "{status} = {succeeded} AND {needs_review} = {mismatch} AND {amount} = {requested} \
                 AND (attribute_not_exists({reserved}) OR {reserved} <= {accepted_amount})"
            ));
            e.set("amount", n(accepted.amount))
                .set("currency", s(&accepted.currency))
                .set("requested_amount", n(accepted.requested_amount))
                .set("requested_currency", s(&accepted.requested_currency))
                .set("accepted_by", s(&plan.entry.id))
                .set("updated_at", s(&plan.entry.at))
                .remove("needs_review")
                .remove("review_detail")
                .remove("amount_mismatch")
                .remove("queue")
                .remove("queue_at")
                .increment("version");
            e.into_transact_update(table, (PARTITION_KEY, key))
                .map_err(built)
        }
        None => {
            let decided = plan.entry.before["payment"]["status"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let decided = e.value("decided", s(decided));
            e.condition(format!("{status} = {decided}"));
            let (condition, names, values) = e.into_parts();
            let check = ConditionCheck::builder()
                .table_name(table)
                .key(PARTITION_KEY, key)
                .set_condition_expression(condition)
                .set_expression_attribute_names(names)
                .set_expression_attribute_values(values)
                .build()
                .map_err(built)?;
            Ok(TransactWriteItem::builder().condition_check(check).build())
        }
    }
}

/// The audit entry, inserted once.
fn entry_item(entry: &AuditEntry) -> HashMap<String, AttributeValue> {
    let mut item = HashMap::from([
        (PARTITION_KEY.to_string(), audit_pk(&entry.id)),
        ("entity".into(), s("audit")),
        ("queue".into(), s(AUDIT_QUEUE)),
        ("queue_at".into(), n(entry.at_ms)),
        ("id".into(), s(&entry.id)),
        ("at".into(), s(&entry.at)),
        ("actor".into(), s(&entry.actor)),
        ("action".into(), s(&entry.action)),
        ("subject".into(), s(&entry.subject)),
        ("reason".into(), s(&entry.reason)),
        ("before".into(), s(entry.before.to_string())),
        ("after".into(), s(entry.after.to_string())),
    ]);
    if let Some(ticket) = &entry.ticket {
        item.insert("ticket".into(), s(ticket));
    }
    item
}

fn entry_write(table: &str, entry: &AuditEntry) -> Result<TransactWriteItem, StoreError> {
    let mut e = Expr::default();
    let pk = e.name(PARTITION_KEY);
    e.condition(format!("attribute_not_exists({pk})"));
    e.into_transact_put(table, entry_item(entry)).map_err(built)
}

fn entry_from_item(item: &HashMap<String, AttributeValue>) -> Result<AuditEntry, StoreError> {
    let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
    let required = |name: &str| {
        text(name).ok_or_else(|| StoreError::Malformed(format!("audit entry without {name}")))
    };
    let json = |name: &str| -> Result<serde_json::Value, StoreError> {
        serde_json::from_str(&required(name)?)
            .map_err(|e| StoreError::Malformed(format!("audit entry's {name}: {e}")))
    };
    Ok(AuditEntry {
        id: required("id")?,
        at: required("at")?,
        at_ms: item
            .get("queue_at")
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or_default(),
        actor: required("actor")?,
        action: required("action")?,
        subject: required("subject")?,
        reason: required("reason")?,
        ticket: text("ticket"),
        before: json("before")?,
        after: json("after")?,
    })
}

impl DynamoStore {
    /// An operator's change and its audit entry (the last item) in one
    /// transaction: `false` when the change's condition failed; the entry's (its
    /// id taken) is a conflict. Nothing is written either way.
    async fn act(
        &self,
        operation: &'static str,
        items: Vec<TransactWriteItem>,
        entry: &AuditEntry,
    ) -> Result<bool, StoreError> {
        let last = items.len() - 1;
        match self.transact(operation, items).await? {
            None => Ok(true),
            Some(refusals) if refusals.get(last).is_some_and(Option::is_some) => Err(
                StoreError::Conflict(format!("audit entry {} exists already", entry.id)),
            ),
            Some(_) => Ok(false),
        }
    }
}

impl OperationsStore for DynamoStore {
    /// One `TransactWriteItems` of three items (`closed`: the payment's part is a
    /// condition check). The order's or payment's condition failing is
    /// [`ResolveWrite::Changed`]; the entry's (its id taken) fails the whole
    /// transaction as a conflict: nothing is written either way.
    async fn resolve(&self, plan: &ResolutionPlan) -> Result<ResolveWrite, StoreError> {
        debug_assert_eq!(
            plan.acceptance.is_some(),
            plan.resolve_as == ResolveAs::Paid
        );
        let items = vec![
            order_write(&self.table, plan)?,
            payment_write(&self.table, plan)?,
            entry_write(&self.table, &plan.entry)?,
        ];
        Ok(match self.act("resolve", items, &plan.entry).await? {
            true => ResolveWrite::Written,
            false => ResolveWrite::Changed,
        })
    }

    /// One `TransactWriteItems`: the delivery's upsert (refused while an attempt
    /// is in flight) and the entry.
    async fn resend_delivery(
        &self,
        event: &RecordedEvent,
        destination: &str,
        now_ms: i64,
        entry: &AuditEntry,
    ) -> Result<bool, StoreError> {
        let (key, expr) = reopened(event, destination, now_ms);
        let items = vec![
            expr.into_transact_update(&self.table, (PARTITION_KEY, key))
                .map_err(built)?,
            entry_write(&self.table, entry)?,
        ];
        self.act("resend_delivery", items, entry).await
    }

    /// One `TransactWriteItems`: the destination's flag and the entry.
    async fn change_destination(
        &self,
        name: &str,
        disabled: bool,
        now_ms: i64,
        entry: &AuditEntry,
    ) -> Result<(), StoreError> {
        let (key, expr) = destination_change(name, disabled, now_ms);
        let items = vec![
            expr.into_transact_update(&self.table, (PARTITION_KEY, key))
                .map_err(built)?,
            entry_write(&self.table, entry)?,
        ];
        match self.act("change_destination", items, entry).await? {
            true => Ok(()),
            false => Err(StoreError::Malformed(
                "a destination's flag has no condition, yet one failed".into(),
            )),
        }
    }

    /// One `TransactWriteItems`: the reason added to the item's `acknowledged`
    /// set (the item must exist) and the entry.
    async fn acknowledge(&self, item: &QueueItem, entry: &AuditEntry) -> Result<bool, StoreError> {
        let key = queue_item_pk(item)
            .ok_or_else(|| StoreError::Malformed(format!("a queue item of kind {}", item.kind)))?;
        let mut e = Expr::default();
        let pk = e.name(PARTITION_KEY);
        e.condition(format!("attribute_exists({pk})"));
        e.add(
            ACKNOWLEDGED,
            AttributeValue::Ss(vec![item.reason.to_string()]),
        );
        let items = vec![
            e.into_transact_update(&self.table, (PARTITION_KEY, key))
                .map_err(built)?,
            entry_write(&self.table, entry)?,
        ];
        self.act("acknowledge", items, entry).await
    }

    /// The queue index's `audit` partition, each entry then read whole (the index
    /// holds keys only, so a subject is filtered here: entries are people's
    /// actions, few), oldest first.
    async fn audit_log(&self, subject: Option<&str>) -> Result<Vec<AuditEntry>, StoreError> {
        let mut entries = Vec::new();
        for (item, _) in self.queue_items("audit_log", AUDIT_QUEUE).await? {
            let entry = entry_from_item(&item)?;
            if subject.is_none_or(|subject| entry.subject == subject) {
                entries.push(entry);
            }
        }
        entries.sort_by(|a, b| (a.at_ms, &a.id).cmp(&(b.at_ms, &b.id)));
        Ok(entries)
    }

    /// The queue index's `attention` and `undelivered` partitions, each item read
    /// whole and asked what it needs now (`domain::attention`), oldest first.
    async fn attention_queue(&self) -> Result<Vec<QueueItem>, StoreError> {
        let mut found = Vec::new();
        for queue in [ATTENTION_QUEUE, UNDELIVERED_QUEUE] {
            for (item, since_ms) in self.queue_items("attention_queue", queue).await? {
                if let Some(candidate) = candidate(&item)? {
                    let since = format_ms(since_ms);
                    let acknowledged = match item.get(ACKNOWLEDGED) {
                        Some(AttributeValue::Ss(reasons)) => reasons.clone(),
                        _ => Vec::new(),
                    };
                    found.extend(outstanding(
                        needs(&candidate, &since, since_ms),
                        &acknowledged,
                    ));
                }
            }
        }
        Ok(oldest_first(found))
    }
}

impl DynamoStore {
    /// Every item of one partition of the queue index (every page), read whole
    /// and strongly consistent, with its `queue_at`.
    async fn queue_items(
        &self,
        operation: &'static str,
        queue: &str,
    ) -> Result<Vec<(HashMap<String, AttributeValue>, i64)>, StoreError> {
        let mut items = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(DELIVERIES_INDEX)
                .key_condition_expression("#queue = :queue")
                .expression_attribute_names("#queue", "queue")
                .expression_attribute_values(":queue", s(queue))
                .set_exclusive_start_key(start.take())
                .return_consumed_capacity(aws_sdk_dynamodb::types::ReturnConsumedCapacity::Total)
                .send()
                .await
                .map_err(unavailable(operation))?;
            self.usage.read(output.consumed_capacity());
            for key in output.items() {
                let Some(pk) = key.get(PARTITION_KEY).cloned() else {
                    continue;
                };
                let since_ms = number(key, "queue_at");
                if let Some(item) = self.consistent_item(operation, pk).await? {
                    items.push((item, since_ms));
                }
            }
            match output.last_evaluated_key() {
                Some(last) if !last.is_empty() => start = Some(last.clone()),
                _ => break,
            }
        }
        Ok(items)
    }
}

fn number(item: &HashMap<String, AttributeValue>, name: &str) -> i64 {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or_default()
}

fn format_ms(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// What a queue item is, from its key: an order, a payment (with the reconciler's
/// flag), a refund's outcome or a delivery; `None` for anything else.
fn candidate(item: &HashMap<String, AttributeValue>) -> Result<Option<Candidate>, StoreError> {
    let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
    let pk = text(PARTITION_KEY).unwrap_or_default();
    if pk.starts_with("ORDER#") {
        let order = order_from_item(item)?;
        let order_id = pk.trim_start_matches("ORDER#").to_string();
        return Ok(Some(Candidate::Order {
            order_id,
            state: order.state,
        }));
    }
    if pk.starts_with("INTENT#") || pk.starts_with("SESSION#") {
        return Ok(Some(Candidate::Payment {
            payment: payment_from_item(item.clone())?,
            flagged: text("flagged"),
        }));
    }
    if pk.starts_with("REFUND_OUTCOME#") {
        let status = text("status").map(|s| RefundStatus::parse(&s));
        return Ok(status.map(|status| Candidate::RefundOutcome {
            refund_id: text("refund_id").unwrap_or_default(),
            order_id: text("order_id"),
            status,
        }));
    }
    if let Some(rest) = pk.strip_prefix("DELIVERY#") {
        let state = text("state").and_then(|s| DeliveryState::parse(&s));
        return Ok(state.map(|state| Candidate::Delivery {
            id: rest.replacen('#', "/", 1),
            state,
        }));
    }
    Ok(None)
}
