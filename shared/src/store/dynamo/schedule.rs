//! The check schedule of open intents in DynamoDB: the sparse index `due-checks`
//! (partition `due_shard`, sort `due_at`), read one shard at a time, and schedule
//! updates guarded by the intent's version.

use super::attention::join_attention_queue;
use super::expr::Expr;
use super::patch::schedule;
use super::payments::{parse_payment_pk, payment_pk, payment_state_from_item};
use super::table::DUE_INDEX;
use super::{n, s, unavailable, DuePayment, DynamoStore, ScheduleStore, StoreError, PARTITION_KEY};
use crate::domain::reconcile::ScheduleUpdate;
use crate::domain::schedule::CheckSchedule;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnConsumedCapacity};
use std::collections::HashMap;

fn number<T: std::str::FromStr>(
    item: &HashMap<String, AttributeValue>,
    attr: &str,
) -> Result<T, StoreError> {
    match item.get(attr) {
        Some(AttributeValue::N(v)) => v
            .parse()
            .map_err(|_| StoreError::Malformed(format!("{attr} is not a number"))),
        _ => Err(StoreError::Malformed(format!(
            "indexed intent without {attr}"
        ))),
    }
}

fn due_intent(item: &HashMap<String, AttributeValue>) -> Result<DuePayment, StoreError> {
    let (kind, intent_id) = match item.get(PARTITION_KEY) {
        Some(AttributeValue::S(pk)) => parse_payment_pk(pk)
            .map(|(kind, id)| (kind, id.to_string()))
            .ok_or_else(|| StoreError::Malformed(format!("indexed item {pk} is not a payment")))?,
        _ => return Err(StoreError::Malformed("indexed intent without key".into())),
    };
    Ok(DuePayment {
        intent_id,
        kind,
        state: payment_state_from_item(item)?,
        schedule: CheckSchedule {
            shard: number(item, "due_shard")?,
            due_at_ms: number(item, "due_at")?,
            checks: number(item, "checks").unwrap_or_default(),
            give_up_at_ms: number(item, "give_up_at")?,
        },
    })
}

impl ScheduleStore for DynamoStore {
    async fn due_intents(
        &self,
        shard: u16,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<DuePayment>, StoreError> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(DUE_INDEX)
            .key_condition_expression("#shard = :shard AND #due <= :now")
            .expression_attribute_names("#shard", "due_shard")
            .expression_attribute_names("#due", "due_at")
            .expression_attribute_values(":shard", n(shard))
            .expression_attribute_values(":now", n(now_ms))
            .limit(i32::try_from(limit.max(1)).unwrap_or(i32::MAX))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(unavailable("due_intents"))?;
        self.usage.read(output.consumed_capacity());
        output.items().iter().map(due_intent).collect()
    }

    async fn update_schedule(&self, update: &ScheduleUpdate) -> Result<bool, StoreError> {
        let mut expr = Expr::default();
        schedule(&mut expr, &update.change);
        if let Some(flag) = update.flag {
            expr.set("flagged", s(flag.as_str()))
                .set("flagged_at", s(&update.at));
            join_attention_queue(&mut expr, &update.at);
        }
        let (pk, version) = (expr.name(PARTITION_KEY), expr.name("version"));
        let expected = expr.value("expected_version", n(update.expected_version));
        expr.condition(format!("attribute_exists({pk}) AND {version} = {expected}"));
        self.conditional_update(
            "update_schedule",
            payment_pk(update.kind, &update.intent_id),
            expr,
        )
        .await
    }
}
