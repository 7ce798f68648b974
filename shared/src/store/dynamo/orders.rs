//! Orders in DynamoDB: `ORDER#<order id>` items, reserved and opened by the create
//! use case with conditional writes; paid or closed by an intent's outcome, in the
//! same transaction as the intent (rendered in [`super::patch`]).

use super::expr::Expr;
use super::{n, s, unavailable, DynamoStore, OrderStore, StoreError, PARTITION_KEY};
use crate::domain::order::{
    classify_reserve_conflict, OpenRequest, OrderRecord, OrderState, ReserveOutcome, ReserveRequest,
};
use crate::domain::payment::PaymentKind;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ReturnConsumedCapacity, ReturnValuesOnConditionCheckFailure,
};

impl DynamoStore {
    /// Reads an order, strongly consistent.
    pub async fn read_order(&self, order_id: &str) -> Result<Option<OrderRecord>, StoreError> {
        let item = self
            .consistent_item("read_order", order_pk(order_id))
            .await?;
        item.as_ref().map(order_from_item).transpose()
    }
}
use std::collections::HashMap;

/// The prefix of the attributes mapping a session's reference to the session
/// (`ref_<session ref>` = `cs_...`), one per session the order has had.
const SESSION_REF_PREFIX: &str = "ref_";

/// The key of an order's item.
pub(crate) fn order_pk(order_id: &str) -> AttributeValue {
    s(format!("ORDER#{order_id}"))
}

/// Registers `state` as the value `:st_<state>` and returns the placeholder.
pub(crate) fn state_value(expr: &mut Expr, state: OrderState) -> String {
    expr.value(&format!("st_{}", state.as_str()), s(state.as_str()))
}

/// An order item read back (from `ALL_OLD` or a cancellation reason).
pub(crate) fn order_from_item(
    item: &HashMap<String, AttributeValue>,
) -> Result<OrderRecord, StoreError> {
    let text = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
    let state = text("state")
        .as_deref()
        .and_then(OrderState::parse)
        .ok_or_else(|| StoreError::Malformed("order without a state".into()))?;
    Ok(OrderRecord {
        state,
        holder: text("holder").unwrap_or_default(),
        intent_id: text("intent_id"),
        payment_kind: PaymentKind::parse(text("payment_kind").as_deref().unwrap_or_default()),
        reserved_until_ms: item
            .get("reserved_until_ms")
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0),
        session_refs: item
            .iter()
            .filter_map(|(name, value)| {
                let session_ref = name.strip_prefix(SESSION_REF_PREFIX)?;
                Some((session_ref.to_string(), value.as_s().ok()?.clone()))
            })
            .collect(),
    })
}

/// A reservation: `domain::order::can_reserve` as the condition of an update.
pub(crate) fn reserve_expr(request: &ReserveRequest<'_>) -> Expr {
    let mut expr = Expr::default();
    expr.set("entity", s("order"))
        .set("order_id", s(request.order_id))
        .set("state", s(OrderState::Reserved.as_str()))
        .set("holder", s(request.holder))
        .set("reserved_until_ms", n(request.reserved_until_ms));
    let pk = expr.name(PARTITION_KEY);
    let now = expr.value("now_ms", n(request.now_ms));
    let closed = state_value(&mut expr, OrderState::Closed);
    let reserved = state_value(&mut expr, OrderState::Reserved);
    let open = state_value(&mut expr, OrderState::Open);
    expr.condition(format!(
        "attribute_not_exists({pk}) OR #state = {closed} \
             OR (#holder = :holder AND (#state = {reserved} OR #state = {open})) \
             OR (#state = {reserved} AND #reserved_until_ms < {now})"
    ));
    expr
}

/// The order opened with the payment Fintoc made, by the holder of its
/// reservation (`domain::order::can_open`).
pub(crate) fn open_expr(request: &OpenRequest<'_>) -> Expr {
    let mut expr = Expr::default();
    expr.set("state", s(OrderState::Open.as_str()))
        .set("intent_id", s(request.intent_id))
        .set("payment_kind", s(request.kind.as_str()));
    if let Some(payment_ref) = request.payment_ref {
        expr.set(
            &format!("{SESSION_REF_PREFIX}{payment_ref}"),
            s(request.intent_id),
        );
    }
    let holder = expr.name("holder");
    let value = expr.value("holder", s(request.holder));
    let reserved = state_value(&mut expr, OrderState::Reserved);
    let open = state_value(&mut expr, OrderState::Open);
    expr.condition(format!(
        "{holder} = {value} AND (#state = {reserved} OR #state = {open})"
    ));
    expr
}

impl OrderStore for DynamoStore {
    /// [`reserve_expr`] in one `UpdateItem`.
    async fn reserve_order(
        &self,
        request: &ReserveRequest<'_>,
    ) -> Result<ReserveOutcome, StoreError> {
        let expr = reserve_expr(request);
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PARTITION_KEY, order_pk(request.order_id));
        let result = expr
            .apply_to_update(update)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match result {
            Ok(out) => {
                self.usage.write(out.consumed_capacity());
                Ok(ReserveOutcome::Reserved)
            }
            Err(err) => match err.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(c)) => {
                    self.usage.failed_write();
                    let item = c.item().ok_or_else(|| {
                        StoreError::Malformed("conditional check failed without the order".into())
                    })?;
                    Ok(classify_reserve_conflict(
                        &order_from_item(item)?,
                        request.now_ms,
                    ))
                }
                _ => Err(unavailable("reserve_order")(err)),
            },
        }
    }

    async fn open_order(&self, request: &OpenRequest<'_>) -> Result<bool, StoreError> {
        self.conditional_update("open_order", order_pk(request.order_id), open_expr(request))
            .await
    }
}
