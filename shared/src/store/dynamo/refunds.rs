//! Refunds in DynamoDB, on their payment's own item: a `refunds` map (one entry per
//! refund, under its [`RefundKey`]) and `refund_reserved`, what the refunds hold.
//! Reserving and every later change of a refund are one single-item conditional
//! write each, so the ledger and the refund move together: `reserved ≤ paid` is the
//! condition of the write that reserves, and a refund's amount is released by the
//! write that moves it into an unpaid final status — guarded by its stored status,
//! so exactly once.

use super::attention::attention_attributes;
use super::expr::Expr;
use super::orders::order_pk;
use super::payments::{payment_pk, IntentItem};
use super::{idempotency, n, s, unavailable, DynamoStore, StoreError, PARTITION_KEY};
use crate::domain::payment::{PaymentKind, PaymentStatus, ReviewReason, StoredPayment};
use crate::domain::refund::{RefundKey, RefundStatus, StoredRefund};
use crate::store::ports::*;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ReturnConsumedCapacity, ReturnValuesOnConditionCheckFailure,
};
use std::collections::HashMap;

/// The partition key of the one item holding the refund sweep's cursor.
pub const REFUND_SWEEP_PK: &str = "REFUND_SWEEP";

/// A refund as a map entry of its payment's item.
fn refund_entry(refund: &StoredRefund) -> AttributeValue {
    let mut entry = HashMap::from([
        ("amount".to_string(), n(refund.amount)),
        ("currency".to_string(), s(&refund.currency)),
        ("status".to_string(), s(refund.status.as_str())),
        ("origin".to_string(), s(refund.origin.as_str())),
        ("created_at".to_string(), s(&refund.created_at)),
        ("updated_at".to_string(), s(&refund.updated_at)),
        (
            "metadata".to_string(),
            AttributeValue::M(
                refund
                    .metadata
                    .iter()
                    .map(|(k, v)| (k.clone(), s(v)))
                    .collect(),
            ),
        ),
    ]);
    if let Some(id) = &refund.fintoc_id {
        entry.insert("fintoc_id".into(), s(id));
    }
    if let Some(code) = &refund.failure_code {
        entry.insert("failure_code".into(), s(code));
    }
    if refund.key_generation > 0 {
        entry.insert("key_generation".into(), n(refund.key_generation));
    }
    AttributeValue::M(entry)
}

impl DynamoStore {
    /// One `UpdateItem` on a payment's item returning the item on a refused
    /// condition: `Ok(Ok(()))` written, `Ok(Err(old item))` refused.
    pub(crate) async fn update_payment_item(
        &self,
        operation: &'static str,
        kind: PaymentKind,
        payment_id: &str,
        expr: Expr,
    ) -> Result<Result<(), Option<HashMap<String, AttributeValue>>>, StoreError> {
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PARTITION_KEY, payment_pk(kind, payment_id));
        match expr
            .apply_to_update(update)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
        {
            Ok(out) => {
                self.usage.write(out.consumed_capacity());
                Ok(Ok(()))
            }
            Err(err) => match err.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(c)) => {
                    self.usage.failed_write();
                    Ok(Err(c.item().cloned()))
                }
                _ => Err(unavailable(operation)(err)),
            },
        }
    }
}

/// The write reserving a refund: its entry added and its amount held, under the
/// conditions of [`ReserveRefund`].
pub(super) fn reserve_expr(request: &ReserveRefund<'_>) -> Expr {
    let refund = request.refund;
    let limit = request.paid.saturating_sub(refund.amount);
    let mut e = Expr::default();
    let (refunds, key, reserved) = (
        e.name("refunds"),
        e.name(refund.key.as_str()),
        e.name("refund_reserved"),
    );
    let (status, amount, review, old_mismatch) = (
        e.name("status"),
        e.name("amount"),
        e.name("needs_review"),
        e.name("amount_mismatch"),
    );
    let entry = e.value("entry", refund_entry(refund));
    let held = e.value("held", n(refund.amount));
    let succeeded = e.value("succeeded", s(PaymentStatus::Succeeded.as_str()));
    let paid = e.value("paid", n(request.paid));
    let limit = e.value("limit", n(limit));
    let mismatch = e.value("mismatch", s(ReviewReason::AmountMismatch.as_str()));
    // The version moves: a check that read the payment before (its refunds all
    // final) must not take it off the index under the new refund.
    e.set_path(&format!("{refunds}.{key}"), &entry)
        .add_raw(&reserved, &held)
        .add("version", n(1));
    if let Some(schedule) = &request.schedule {
        e.set_if_absent("due_shard", n(schedule.shard))
            .set_if_absent("due_at", n(schedule.due_at_ms))
            .set_if_absent("checks", n(schedule.checks))
            .set_if_absent("give_up_at", n(schedule.give_up_at_ms));
    }
    e.condition(format!(
        "attribute_exists({refunds}) AND attribute_not_exists({refunds}.{key}) \
             AND {status} = {succeeded} AND {amount} = {paid} \
             AND (attribute_not_exists({reserved}) OR {reserved} <= {limit}) \
             AND (attribute_not_exists({review}) OR {review} <> {mismatch}) \
             AND attribute_not_exists({old_mismatch})"
    ));
    e
}

/// A payment as a refused write returned its item.
pub(crate) fn payment_from_item(
    item: HashMap<String, AttributeValue>,
) -> Result<Box<StoredPayment>, StoreError> {
    let item: IntentItem = serde_dynamo::from_item(item)
        .map_err(|e| StoreError::Malformed(format!("payment: {e}")))?;
    Ok(Box::new(item.into()))
}

/// The transaction of a refund change with an outcome or a key to complete: the
/// payment's update `payment`, the key completed, the outcome inserted once and,
/// with `count_on_order`, the succeeded amount added to the order's item (which must
/// exist).
fn change_refund_items(
    table: &str,
    idempotency_table: &str,
    change: &RefundChange<'_>,
    payment: Expr,
    count_on_order: bool,
) -> Result<Vec<aws_sdk_dynamodb::types::TransactWriteItem>, StoreError> {
    let unavailable_item =
        |e: aws_sdk_dynamodb::error::BuildError| StoreError::unavailable("change_refund", e);
    let mut items = vec![payment
        .into_transact_update(
            table,
            (PARTITION_KEY, payment_pk(change.kind, change.payment_id)),
        )
        .map_err(unavailable_item)?];
    if let Some(complete) = change.complete {
        items.push(
            idempotency::complete_expr(complete)
                .into_transact_update(
                    idempotency_table,
                    (PARTITION_KEY, idempotency::idempotency_pk(complete.key)),
                )
                .map_err(unavailable_item)?,
        );
    }
    let Some(outcome) = &change.outcome else {
        return Ok(items);
    };
    let mut record = HashMap::from([
        (
            PARTITION_KEY.to_string(),
            s(format!("REFUND_OUTCOME#{}", outcome.refund_id)),
        ),
        ("entity".to_string(), s("refund_outcome")),
        ("refund_id".to_string(), s(outcome.refund_id)),
        ("payment_id".to_string(), s(change.payment_id)),
        ("payment_kind".to_string(), s(change.kind.as_str())),
        ("status".to_string(), s(change.status.as_str())),
        ("amount".to_string(), n(outcome.amount)),
        ("currency".to_string(), s(outcome.currency)),
        ("at".to_string(), s(change.updated_at)),
    ]);
    if let Some(order_id) = outcome.payment_order_id.or(outcome.order_id) {
        record.insert("order_id".into(), s(order_id));
    }
    if let Some(code) = change.failure_code {
        record.insert("failure_code".into(), s(code));
    }
    if *change.status == RefundStatus::Failed {
        // The payer did not get the money back: a person must act.
        record.extend(attention_attributes(change.updated_at));
    }
    let mut once = Expr::default();
    let pk = once.name(PARTITION_KEY);
    once.condition(format!("attribute_not_exists({pk})"));
    let (condition, names, _) = once.into_parts();
    items.push(
        aws_sdk_dynamodb::types::TransactWriteItem::builder()
            .put(
                aws_sdk_dynamodb::types::Put::builder()
                    .table_name(table)
                    .set_item(Some(record))
                    .set_condition_expression(condition)
                    .set_expression_attribute_names(names)
                    .build()
                    .map_err(unavailable_item)?,
            )
            .build(),
    );
    if let Some(order_id) = outcome.order_id.filter(|_| count_on_order) {
        let mut order = Expr::default();
        let (refunded, amount) = (
            order.name("refunded_amount"),
            order.value("refunded", n(outcome.amount)),
        );
        order.add_raw(&refunded, &amount);
        order.set("updated_at", s(change.updated_at));
        let pk = order.name(PARTITION_KEY);
        order.condition(format!("attribute_exists({pk})"));
        items.push(
            order
                .into_transact_update(table, (PARTITION_KEY, order_pk(order_id)))
                .map_err(unavailable_item)?,
        );
    }
    Ok(items)
}

impl RefundStore for DynamoStore {
    async fn reserve_refund(&self, request: &ReserveRefund<'_>) -> Result<RefundWrite, StoreError> {
        let first = self
            .update_payment_item(
                "reserve_refund",
                request.kind,
                request.payment_id,
                reserve_expr(request),
            )
            .await?;
        let old = match first {
            Ok(()) => return Ok(RefundWrite::Written),
            Err(None) => return Ok(RefundWrite::Conflict(None)),
            Err(Some(old)) => old,
        };
        if old.contains_key("refunds") {
            return Ok(RefundWrite::Conflict(Some(payment_from_item(old)?)));
        }
        // The payment's first refund: its map is made (once, whatever races), then
        // the same reservation is tried again.
        let mut init = Expr::default();
        let (pk, refunds) = (init.name(PARTITION_KEY), init.name("refunds"));
        let empty = init.value("empty", AttributeValue::M(HashMap::new()));
        init.set_path(&refunds, &format!("if_not_exists({refunds}, {empty})"))
            .condition(format!("attribute_exists({pk})"));
        if !self
            .conditional_update(
                "reserve_refund",
                payment_pk(request.kind, request.payment_id),
                init,
            )
            .await?
        {
            return Ok(RefundWrite::Conflict(None));
        }
        match self
            .update_payment_item(
                "reserve_refund",
                request.kind,
                request.payment_id,
                reserve_expr(request),
            )
            .await?
        {
            Ok(()) => Ok(RefundWrite::Written),
            Err(old) => Ok(RefundWrite::Conflict(
                old.map(payment_from_item).transpose()?,
            )),
        }
    }

    async fn change_refund(&self, change: &RefundChange<'_>) -> Result<RefundWrite, StoreError> {
        let mut e = Expr::default();
        let (refunds, key, status) = (
            e.name("refunds"),
            e.name(change.key.as_str()),
            e.name("status"),
        );
        let entry = format!("{refunds}.{key}");
        let expected = e.value("expected", s(change.expected.as_str()));
        let to = e.value("to", s(change.status.as_str()));
        let now = e.value("now", s(change.updated_at));
        let updated = e.name("updated_at");
        e.set_path(&format!("{entry}.{status}"), &to)
            .set_path(&format!("{entry}.{updated}"), &now);
        if let Some(id) = change.fintoc_id {
            let (attr, v) = (e.name("fintoc_id"), e.value("fintoc_id", s(id)));
            e.set_path(&format!("{entry}.{attr}"), &v);
        }
        if let Some(code) = change.failure_code {
            let (attr, v) = (e.name("failure_code"), e.value("failure_code", s(code)));
            e.set_path(&format!("{entry}.{attr}"), &v);
        }
        if let Some(amount) = change.release {
            let (reserved, v) = (
                e.name("refund_reserved"),
                e.value("release", n(-(amount as i128))),
            );
            e.add_raw(&reserved, &v);
        }
        e.condition(format!("{entry}.{status} = {expected}"));
        if change.outcome.is_none() && change.complete.is_none() {
            return match self
                .update_payment_item("change_refund", change.kind, change.payment_id, e)
                .await?
            {
                Ok(()) => Ok(RefundWrite::Written),
                Err(old) => Ok(RefundWrite::Conflict(
                    old.map(payment_from_item).transpose()?,
                )),
            };
        }
        let with_order = change
            .outcome
            .as_ref()
            .is_some_and(|o| o.order_id.is_some());
        let items = change_refund_items(
            &self.table,
            &self.idempotency_table,
            change,
            e.clone(),
            true,
        )?;
        let Some(refusals) = self.transact("change_refund", items).await? else {
            return Ok(RefundWrite::Written);
        };
        // The payment's update is the first item: what it found, when it refused.
        let found = || -> Result<RefundWrite, StoreError> {
            Ok(RefundWrite::Conflict(
                refusals
                    .first()
                    .cloned()
                    .flatten()
                    .flatten()
                    .map(payment_from_item)
                    .transpose()?,
            ))
        };
        // The order's count is the last item. Refused alone, the order has no item
        // (a payment from before order items existed): the refund and its outcome
        // are recorded without it, never held back by it.
        let order_alone = with_order
            && refusals.last().is_some_and(Option::is_some)
            && refusals.iter().rev().skip(1).all(Option::is_none);
        if !order_alone {
            return found();
        }
        tracing::warn!(
            payment_id = change.payment_id,
            "a refund's order has no item; its outcome is recorded without the order's refunded amount"
        );
        let items = change_refund_items(&self.table, &self.idempotency_table, change, e, false)?;
        match self.transact("change_refund", items).await? {
            None => Ok(RefundWrite::Written),
            Some(refusals) => Ok(RefundWrite::Conflict(
                refusals
                    .into_iter()
                    .next()
                    .flatten()
                    .flatten()
                    .map(payment_from_item)
                    .transpose()?,
            )),
        }
    }

    async fn drop_refund(
        &self,
        kind: PaymentKind,
        payment_id: &str,
        refund: &StoredRefund,
    ) -> Result<bool, StoreError> {
        let mut e = Expr::default();
        let (refunds, key, status, reserved) = (
            e.name("refunds"),
            e.name(refund.key.as_str()),
            e.name("status"),
            e.name("refund_reserved"),
        );
        let creating = e.value("creating", s(RefundStatus::Creating.as_str()));
        let release = e.value("release", n(-(refund.amount as i128)));
        e.remove_path(&format!("{refunds}.{key}"))
            .add_raw(&reserved, &release)
            .condition(format!("{refunds}.{key}.{status} = {creating}"));
        self.conditional_update("drop_refund", payment_pk(kind, payment_id), e)
            .await
    }

    async fn next_key_generation(
        &self,
        kind: PaymentKind,
        payment_id: &str,
        key: &RefundKey,
        from: u32,
    ) -> Result<bool, StoreError> {
        let mut e = Expr::default();
        let (refunds, key, status, generation) = (
            e.name("refunds"),
            e.name(key.as_str()),
            e.name("status"),
            e.name("key_generation"),
        );
        let entry = format!("{refunds}.{key}");
        let creating = e.value("creating", s(RefundStatus::Creating.as_str()));
        let (from_v, next) = (e.value("from", n(from)), e.value("next", n(from + 1)));
        e.set_path(&format!("{entry}.{generation}"), &next);
        let unset = if from == 0 {
            format!("attribute_not_exists({entry}.{generation}) OR ")
        } else {
            String::new()
        };
        e.condition(format!(
            "{entry}.{status} = {creating} AND ({unset}{entry}.{generation} = {from_v})"
        ));
        self.conditional_update("next_key_generation", payment_pk(kind, payment_id), e)
            .await
    }

    async fn refund_sweep_cursor(&self) -> Result<Option<String>, StoreError> {
        let item = self
            .consistent_item("refund_sweep_cursor", s(REFUND_SWEEP_PK))
            .await?;
        Ok(item
            .and_then(|mut item| item.remove("since"))
            .and_then(|since| since.as_s().ok().cloned()))
    }

    async fn advance_refund_sweep(&self, to: &str) -> Result<bool, StoreError> {
        let mut e = Expr::default();
        let since = e.name("since");
        let to = e.value("to", s(to));
        e.set_path(&since, &to);
        e.set("entity", s("refund_sweep"));
        e.condition(format!("attribute_not_exists({since}) OR {since} < {to}"));
        self.conditional_update("advance_refund_sweep", s(REFUND_SWEEP_PK), e)
            .await
    }
}
