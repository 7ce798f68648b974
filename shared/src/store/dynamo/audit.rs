//! The invariant audit's reads: a parallel `Scan` of the payments table, one
//! segment at a time and page by page, keeping its orders and payments; and the
//! strongly consistent reads that confirm a suspect. Read only.

use super::orders::{order_from_item, order_pk};
use super::payments::{parse_payment_pk, payment_pk, IntentItem};
use super::{
    unavailable, AuditSegment, AuditStore, AuditedItem, DynamoStore, StoreError, PARTITION_KEY,
};
use crate::domain::invariants::AuditedOrder;
use crate::domain::payment::{PaymentKind, StoredPayment};
use aws_sdk_dynamodb::types::{AttributeValue, ReturnConsumedCapacity};
use std::collections::HashMap;

type Item = HashMap<String, AttributeValue>;

fn audited_order(item: &Item) -> Result<Option<AuditedOrder>, StoreError> {
    let Some(order_id) = item
        .get(PARTITION_KEY)
        .and_then(|v| v.as_s().ok())
        .and_then(|pk| pk.strip_prefix("ORDER#"))
        .map(str::to_string)
    else {
        return Ok(None);
    };
    let order = order_from_item(item)?;
    Ok(Some(AuditedOrder {
        order_id,
        state: order.state,
        payment_id: order.intent_id,
        payment_kind: order.payment_kind,
        reserved_until_ms: order.reserved_until_ms,
        refunded_amount: item
            .get("refunded_amount")
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0),
    }))
}

fn audited_payment(item: &Item) -> Result<Option<(StoredPayment, bool)>, StoreError> {
    let is_payment = item
        .get(PARTITION_KEY)
        .and_then(|v| v.as_s().ok())
        .and_then(|pk| parse_payment_pk(pk))
        .is_some();
    if !is_payment {
        return Ok(None);
    }
    let flagged = item.contains_key("flagged");
    let payment: IntentItem = serde_dynamo::from_item(item.clone())
        .map_err(|e| StoreError::Malformed(format!("payment: {e}")))?;
    Ok(Some((payment.into(), flagged)))
}

impl AuditStore for DynamoStore {
    /// `Scan` pages of one segment until its end.
    async fn scan_segment(&self, segment: i32, total: i32) -> Result<AuditSegment, StoreError> {
        let mut found = AuditSegment::default();
        let mut start: Option<Item> = None;
        loop {
            let output = self
                .client
                .scan()
                .table_name(&self.table)
                .segment(segment)
                .total_segments(total)
                .set_exclusive_start_key(start.take())
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await
                .map_err(unavailable("scan_segment"))?;
            self.usage.read(output.consumed_capacity());
            found.read_units += output
                .consumed_capacity()
                .and_then(|c| c.capacity_units())
                .unwrap_or(0.0);
            for item in output.items() {
                found.scanned += 1;
                if let Some(order) = audited_order(item)? {
                    found.items.push(AuditedItem::Order(order));
                } else if let Some((payment, flagged)) = audited_payment(item)? {
                    found.items.push(AuditedItem::Payment {
                        payment: Box::new(payment),
                        flagged,
                    });
                }
            }
            match output.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(found),
            }
        }
    }

    /// One strongly consistent `GetItem`.
    async fn audited_order(&self, order_id: &str) -> Result<Option<AuditedOrder>, StoreError> {
        let item = self
            .consistent_item("audited_order", order_pk(order_id))
            .await?;
        item.as_ref()
            .map(audited_order)
            .transpose()
            .map(Option::flatten)
    }

    /// One strongly consistent `GetItem`.
    async fn audited_payment(
        &self,
        kind: PaymentKind,
        id: &str,
    ) -> Result<Option<(StoredPayment, bool)>, StoreError> {
        let item = self
            .consistent_item("audited_payment", payment_pk(kind, id))
            .await?;
        item.as_ref()
            .map(audited_payment)
            .transpose()
            .map(Option::flatten)
    }
}
