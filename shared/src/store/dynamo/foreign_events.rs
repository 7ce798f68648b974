//! Events kept apart in DynamoDB: `FOREIGN_EVENT#<event id>` items, for a human,
//! never read as intents (their `entity` is `foreign_event`), swept by TTL after
//! [`FOREIGN_EVENT_RETENTION_MS`].

use super::expr::Expr;
use super::{n, s, DynamoStore, StoreError, PARTITION_KEY, TTL_ATTRIBUTE};
use crate::domain::deployment::ForeignEvent;
use aws_sdk_dynamodb::types::ReturnConsumedCapacity;

/// How long an event kept apart is kept: 90 days.
pub const FOREIGN_EVENT_RETENTION_MS: i64 = 90 * 86_400_000;

impl DynamoStore {
    /// Writes the event once (a redelivery leaves the first record).
    pub(crate) async fn put_foreign_event(&self, event: &ForeignEvent) -> Result<(), StoreError> {
        let mut expr = Expr::default();
        let pk = expr.name(PARTITION_KEY);
        expr.condition(format!("attribute_not_exists({pk})"));
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(
                PARTITION_KEY,
                s(format!("FOREIGN_EVENT#{}", event.event_id)),
            )
            .item("entity", s("foreign_event"))
            .item("event_id", s(&event.event_id))
            .item("event_type", s(&event.event_type))
            .item("intent_id", s(&event.intent_id))
            .item("reason", s(event.reason.as_str()))
            .item("received_at_ms", n(event.received_at_ms))
            .item(
                TTL_ATTRIBUTE,
                n((event.received_at_ms + FOREIGN_EVENT_RETENTION_MS).div_euclid(1000)),
            );
        if let Some(mode) = &event.mode {
            put = put.item("mode", s(mode));
        }
        if let Some(tag) = &event.tag {
            put = put.item("tag", s(tag));
        }
        let result = expr
            .apply_to_put(put)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map(|out| out.consumed_capacity);
        self.settle_write("keep_apart", result).map(|_| ())
    }
}
