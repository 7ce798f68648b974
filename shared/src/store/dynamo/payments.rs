//! Payments in DynamoDB: `INTENT#<fintoc id>` items for payment intents and
//! `SESSION#<fintoc id>` items for checkout sessions (the same shape), merged in by
//! the create use case, changed by event patches, read by the API.

use super::expr::Expr;
use super::orders::order_pk;
use super::{
    n, patch, s, unavailable, DynamoStore, EventStore, PaymentStore, StoreError, WriteResult,
    PARTITION_KEY,
};
use crate::domain::deployment::ForeignEvent;
use crate::domain::order::{IfRefused, OrderRecord};
use crate::domain::payment::{
    PaymentKind, PaymentStatus, Review, ReviewReason, SessionPayment, StoredPayment,
};
use crate::domain::refund::{RefundKey, RefundOrigin, RefundStatus, Refunds, StoredRefund};
use crate::domain::schedule::CheckSchedule;
use crate::domain::transition::{PaymentPatch, PaymentState};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::TransactWriteItem;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnConsumedCapacity};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};

/// The key of a payment's item: its kind's prefix and Fintoc's id.
pub(crate) fn payment_pk(kind: PaymentKind, id: &str) -> AttributeValue {
    s(format!("{}{id}", kind.key_prefix()))
}

/// The kind and id of a payment's key (as the index returns it).
pub(crate) fn parse_payment_pk(pk: &str) -> Option<(PaymentKind, &str)> {
    [PaymentKind::Intent, PaymentKind::Session]
        .into_iter()
        .find_map(|kind| pk.strip_prefix(kind.key_prefix()).map(|id| (kind, id)))
}

/// A payment's item as stored (read leniently: items of older versions lack fields).
#[derive(Deserialize)]
pub(crate) struct IntentItem {
    id: String,
    #[serde(default)]
    entity: Option<String>,
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
    #[serde(default)]
    due_shard: Option<u16>,
    #[serde(default)]
    due_at: Option<i64>,
    #[serde(default)]
    checks: Option<u32>,
    #[serde(default)]
    give_up_at: Option<i64>,
    #[serde(default)]
    payment_intent_id: Option<String>,
    #[serde(default)]
    payment_status: Option<String>,
    #[serde(default)]
    expires_at: Option<String>,
    #[serde(default)]
    needs_review: Option<String>,
    #[serde(default)]
    review_detail: Option<String>,
    /// Written by versions before reviews had reasons: an amount mismatch.
    #[serde(default)]
    amount_mismatch: Option<String>,
    #[serde(default)]
    refund_reserved: Option<u64>,
    #[serde(default)]
    refunds: Option<BTreeMap<String, RefundItem>>,
}

/// A refund as its payment's item holds it (`refunds.<key>`).
#[derive(Deserialize)]
struct RefundItem {
    #[serde(default)]
    fintoc_id: Option<String>,
    amount: u64,
    #[serde(default)]
    currency: String,
    status: String,
    #[serde(default)]
    failure_code: Option<String>,
    #[serde(default)]
    metadata: Option<BTreeMap<String, String>>,
    #[serde(default)]
    origin: Option<String>,
    #[serde(default)]
    key_generation: u32,
    #[serde(default)]
    created_at: String,
    #[serde(default)]
    updated_at: String,
}

/// The refunds of a payment's item, oldest first (an entry under a key this
/// version cannot read is skipped: it still counts in `refund_reserved`).
fn refunds_from_item(
    reserved: Option<u64>,
    entries: Option<BTreeMap<String, RefundItem>>,
) -> Refunds {
    let mut entries: Vec<StoredRefund> = entries
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(key, r)| {
            Some(StoredRefund {
                key: RefundKey::parse(&key)?,
                fintoc_id: r.fintoc_id,
                amount: r.amount,
                currency: r.currency,
                status: RefundStatus::parse(&r.status),
                failure_code: r.failure_code,
                metadata: r.metadata.unwrap_or_default(),
                origin: RefundOrigin::parse(r.origin.as_deref().unwrap_or_default()),
                key_generation: r.key_generation,
                created_at: r.created_at,
                updated_at: r.updated_at,
            })
        })
        .collect();
    entries.sort_by(|a, b| (&a.created_at, &a.key).cmp(&(&b.created_at, &b.key)));
    Refunds {
        reserved: reserved.unwrap_or_default(),
        entries,
    }
}

impl From<IntentItem> for StoredPayment {
    fn from(item: IntentItem) -> Self {
        Self {
            id: item.id,
            kind: PaymentKind::parse(item.entity.as_deref().unwrap_or_default()),
            status: PaymentStatus::parse(&item.status),
            amount: item.amount,
            currency: item.currency,
            order_id: item.order_id,
            metadata: item.metadata.unwrap_or_default(),
            customer_email: item.customer_email,
            mode: item.mode,
            error_reason: item.error_reason,
            created_at: item.created_at,
            updated_at: item.updated_at,
            schedule: match (item.due_shard, item.due_at, item.give_up_at) {
                (Some(shard), Some(due_at_ms), Some(give_up_at_ms)) => Some(CheckSchedule {
                    shard,
                    due_at_ms,
                    checks: item.checks.unwrap_or_default(),
                    give_up_at_ms,
                }),
                _ => None,
            },
            session_payment: match (item.payment_intent_id, item.payment_status) {
                (Some(intent_id), Some(status)) => Some(SessionPayment {
                    intent_id,
                    status: PaymentStatus::parse(&status),
                }),
                _ => None,
            },
            expires_at: item.expires_at,
            review: match (item.needs_review, item.amount_mismatch) {
                (Some(reason), _) => Some(Review {
                    reason: ReviewReason::parse(&reason),
                    detail: item.review_detail.unwrap_or_default(),
                }),
                (None, Some(detail)) => Some(Review {
                    reason: ReviewReason::AmountMismatch,
                    detail,
                }),
                (None, None) => None,
            },
            refunds: refunds_from_item(item.refund_reserved, item.refunds),
        }
    }
}

pub(crate) fn payment_state_from_item(
    item: &HashMap<String, AttributeValue>,
) -> Result<PaymentState, StoreError> {
    let status = match item.get("status") {
        Some(AttributeValue::S(s)) => PaymentStatus::parse(s),
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
    let requested = match (item.get("amount"), item.get("currency")) {
        (Some(AttributeValue::N(a)), Some(AttributeValue::S(c))) => {
            a.parse().ok().map(|a| (a, c.clone()))
        }
        _ => None,
    };
    let text = |attr: &str| match item.get(attr) {
        Some(AttributeValue::S(value)) => Some(value.clone()),
        _ => None,
    };
    let order_id = text("order_id");
    let mode = text("mode");
    Ok(PaymentState {
        status,
        applied_event_ids,
        version,
        requested,
        order_id,
        mode,
        session_attempt: text("payment_intent_id"),
    })
}

/// A payment Fintoc just made, merged into an item an event may already have
/// written: never moves its status, version or timestamps; refused for another
/// amount or currency of the same id.
pub(crate) fn created_expr(intent: &StoredPayment) -> Expr {
    let metadata = intent
        .metadata
        .iter()
        .map(|(k, v)| (k.clone(), s(v)))
        .collect();
    let mut expr = Expr::default();
    expr.set("entity", s(intent.kind.as_str()))
        .set("id", s(&intent.id))
        .set("amount", n(intent.amount))
        .set("currency", s(&intent.currency))
        .set("metadata", AttributeValue::M(metadata))
        .set_if_absent("status", s(intent.status.as_str()))
        .set_if_absent("version", n(0))
        .set_if_absent("created_at", s(&intent.created_at))
        .set_if_absent("updated_at", s(&intent.updated_at))
        // Its refunds' map, empty, so its first refund is one write (an item
        // without one, e.g. made by an event, gets it then: store::refunds).
        .set_if_absent("refunds", AttributeValue::M(HashMap::new()));
    if let Some(schedule) = &intent.schedule {
        // An item a final event already wrote has no schedule: one needless
        // check finds it final and takes it off the index.
        expr.set_if_absent("due_shard", n(schedule.shard))
            .set_if_absent("due_at", n(schedule.due_at_ms))
            .set_if_absent("checks", n(schedule.checks))
            .set_if_absent("give_up_at", n(schedule.give_up_at_ms));
    }
    for (attr, value) in [
        ("order_id", &intent.order_id),
        ("customer_email", &intent.customer_email),
        ("mode", &intent.mode),
        ("expires_at", &intent.expires_at),
    ] {
        if let Some(value) = value {
            expr.set_if_absent(attr, s(value));
        }
    }
    let (pk, amount, currency) = (
        expr.name(PARTITION_KEY),
        expr.name("amount"),
        expr.name("currency"),
    );
    expr.condition(format!(
        "attribute_not_exists({pk}) OR ((attribute_not_exists({amount}) OR {amount} = :amount) \
         AND (attribute_not_exists({currency}) OR {currency} = :currency))"
    ));
    expr
}

impl PaymentStore for DynamoStore {
    async fn save_created(&self, intent: &StoredPayment) -> Result<(), StoreError> {
        let expr = created_expr(intent);
        if self
            .conditional_update("save_created", payment_pk(intent.kind, &intent.id), expr)
            .await?
        {
            Ok(())
        } else {
            Err(StoreError::Conflict(format!(
                "intent {} is stored with another amount or currency",
                intent.id
            )))
        }
    }

    async fn get_payment(
        &self,
        kind: PaymentKind,
        id: &str,
    ) -> Result<Option<StoredPayment>, StoreError> {
        let item = self
            .consistent_item("get_payment", payment_pk(kind, id))
            .await?;
        match item {
            None => Ok(None),
            Some(item) => {
                let item: IntentItem = serde_dynamo::from_item(item)
                    .map_err(|e| StoreError::Malformed(format!("intent {id}: {e}")))?;
                Ok(Some(item.into()))
            }
        }
    }

    async fn session_of_attempt(&self, intent_id: &str) -> Result<Option<String>, StoreError> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(super::table::ATTEMPTS_INDEX)
            .key_condition_expression("#attempt = :attempt")
            .expression_attribute_names("#attempt", "payment_intent_id")
            .expression_attribute_values(":attempt", s(intent_id))
            .limit(1)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(unavailable("session_of_attempt"))?;
        self.usage.read(output.consumed_capacity());
        Ok(output
            .items()
            .iter()
            .filter_map(|item| item.get(PARTITION_KEY)?.as_s().ok())
            .find_map(|pk| match parse_payment_pk(pk) {
                Some((PaymentKind::Session, id)) => Some(id.to_string()),
                _ => None,
            }))
    }
}

/// For each item of a refused transaction: `Some(old item)` when its condition
/// failed (the item, when DynamoDB returned it).
type Refusals = Vec<Option<Option<HashMap<String, AttributeValue>>>>;

impl DynamoStore {
    /// The intent's patch alone, in one conditional `UpdateItem`.
    async fn apply_intent(&self, intent_patch: &PaymentPatch) -> Result<WriteResult, StoreError> {
        let written = self
            .update_payment_item(
                "apply",
                intent_patch.kind,
                &intent_patch.payment_id,
                patch::render(intent_patch),
            )
            .await?;
        match written {
            Ok(()) => Ok(WriteResult::Written),
            Err(old) => Ok(WriteResult::Conflict(
                old.as_ref().map(payment_state_from_item).transpose()?,
            )),
        }
    }

    /// A refused intent write: the state to decide again on, from the returned item,
    /// or read when DynamoDB returned none.
    async fn conflict(
        &self,
        kind: PaymentKind,
        intent_id: &str,
        old: Option<&HashMap<String, AttributeValue>>,
    ) -> Result<WriteResult, StoreError> {
        let state = match old {
            Some(item) => Some(payment_state_from_item(item)?),
            None => self.payment_state(kind, intent_id).await?,
        };
        Ok(WriteResult::Conflict(state))
    }

    /// One `TransactWriteItems`: `None` when written, else what each item's
    /// condition said. Any other cancellation (a conflicting transaction,
    /// throttling) is a retryable failure, named after `operation`.
    pub(crate) async fn transact(
        &self,
        operation: &'static str,
        items: Vec<TransactWriteItem>,
    ) -> Result<Option<Refusals>, StoreError> {
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match result {
            Ok(out) => {
                self.usage.write_across(out.consumed_capacity());
                Ok(None)
            }
            Err(err) => match err.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(c)) => {
                    let reasons = c.cancellation_reasons();
                    let only_conditions = reasons.iter().all(|r| {
                        matches!(r.code(), None | Some("None" | "ConditionalCheckFailed"))
                    });
                    if !only_conditions {
                        return Err(unavailable(operation)(err));
                    }
                    self.usage.failed_write();
                    Ok(Some(
                        reasons
                            .iter()
                            .map(|r| {
                                (r.code() == Some("ConditionalCheckFailed"))
                                    .then(|| r.item().cloned())
                            })
                            .collect(),
                    ))
                }
                _ => Err(unavailable(operation)(err)),
            },
        }
    }
}

impl EventStore for DynamoStore {
    /// An eventually consistent read (half the price of a consistent one). A stale
    /// answer is safe: the write that follows is conditioned on the version read (or
    /// on the item's absence), so it fails and the event is decided again on the
    /// current item that the failed write returns; and event ids are only ever
    /// added, so a stale read never makes a new event look like a duplicate.
    async fn payment_state(
        &self,
        kind: PaymentKind,
        id: &str,
    ) -> Result<Option<PaymentState>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PARTITION_KEY, payment_pk(kind, id))
            .consistent_read(false)
            .projection_expression(
                "#status, applied_event_ids, version, amount, currency, order_id, #mode, payment_intent_id",
            )
            .expression_attribute_names("#mode", "mode")
            .expression_attribute_names("#status", "status")
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(unavailable("payment_state"))?;
        self.usage.read(output.consumed_capacity());
        output
            .item
            .as_ref()
            .map(payment_state_from_item)
            .transpose()
    }

    /// One `UpdateItem`; with the order's part, one `TransactWriteItems` of both.
    async fn apply(&self, intent_patch: &PaymentPatch) -> Result<WriteResult, StoreError> {
        let Some(order) = &intent_patch.order else {
            return self.apply_intent(intent_patch).await;
        };
        let intent_key = (
            PARTITION_KEY,
            payment_pk(intent_patch.kind, &intent_patch.payment_id),
        );
        let order_key = (PARTITION_KEY, order_pk(&order.order_id));
        let build = |e: aws_sdk_dynamodb::error::BuildError| StoreError::Malformed(e.to_string());
        let both = vec![
            patch::render(intent_patch)
                .into_transact_update(&self.table, intent_key.clone())
                .map_err(build)?,
            patch::render_order(order)
                .into_transact_update(&self.table, order_key.clone())
                .map_err(build)?,
        ];
        let refused = match self.transact("apply", both).await? {
            None => return Ok(WriteResult::Written),
            Some(refused) => refused,
        };
        if let Some(old) = &refused[0] {
            return self
                .conflict(intent_patch.kind, &intent_patch.payment_id, old.as_ref())
                .await;
        }
        // The order refused the outcome: the patch says what is written instead.
        match order.if_refused {
            IfRefused::PaymentAlone => self.apply_intent(intent_patch).await,
            IfRefused::KeepAsAnomaly => {
                let with_anomaly = vec![
                    patch::render(&intent_patch.kept_as_anomaly())
                        .into_transact_update(&self.table, intent_key)
                        .map_err(build)?,
                    patch::render_order_anomaly(order)
                        .into_transact_update(&self.table, order_key)
                        .map_err(build)?,
                ];
                match self.transact("apply", with_anomaly).await? {
                    None => Ok(WriteResult::WrittenOrderRefused),
                    Some(refused) => {
                        let old = refused[0].clone().flatten();
                        self.conflict(intent_patch.kind, &intent_patch.payment_id, old.as_ref())
                            .await
                    }
                }
            }
        }
    }

    async fn keep_apart(&self, event: &ForeignEvent) -> Result<(), StoreError> {
        self.put_foreign_event(event).await
    }

    async fn order(&self, order_id: &str) -> Result<Option<OrderRecord>, StoreError> {
        self.read_order(order_id).await
    }
}
