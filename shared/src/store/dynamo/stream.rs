//! The table's stream read back into the domain: a record's old and new images as
//! the [`StoredChange`] merchant events are derived from (`domain::merchant_event`).
//! Only this file knows which items the stream carries and how they are laid out.

use super::orders::order_from_item;
use super::payments::IntentItem;
use super::{StoreError, PARTITION_KEY};
use crate::domain::merchant_event::{RefundOutcomeRecord, StoredChange};
use crate::domain::payment::StoredPayment;
use crate::domain::refund::RefundStatus;
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;

/// An item's image, as a stream record carries it.
pub type Image = HashMap<String, AttributeValue>;

fn text(item: &Image, attr: &str) -> Option<String> {
    item.get(attr).and_then(|v| v.as_s().ok()).cloned()
}

fn payment(item: &Image) -> Result<StoredPayment, StoreError> {
    serde_dynamo::from_item::<_, IntentItem>(item.clone())
        .map(StoredPayment::from)
        .map_err(|e| StoreError::Malformed(format!("payment image: {e}")))
}

/// What the change from `old` to `new` (either absent: inserted, removed) was.
pub fn change_of(old: Option<&Image>, new: Option<&Image>) -> Result<StoredChange, StoreError> {
    let Some(new) = new else {
        return Ok(StoredChange::Unrelated);
    };
    let Some(pk) = text(new, PARTITION_KEY) else {
        return Ok(StoredChange::Unrelated);
    };
    if pk.starts_with("INTENT#") || pk.starts_with("SESSION#") {
        return Ok(StoredChange::Payment {
            before: old.map(payment).transpose()?.map(Box::new),
            after: Box::new(payment(new)?),
        });
    }
    if let Some(order_id) = pk.strip_prefix("ORDER#") {
        let after = order_from_item(new)?;
        return Ok(StoredChange::Order {
            order_id: order_id.to_string(),
            before: old.map(order_from_item).transpose()?.map(|o| o.state),
            after: after.state,
            payment_id: after.intent_id,
            kind: after.payment_kind,
            paid_at: text(new, "paid_at"),
        });
    }
    if pk.starts_with("REFUND_OUTCOME#") && old.is_none() {
        let field = |attr: &str| {
            text(new, attr)
                .ok_or_else(|| StoreError::Malformed(format!("refund outcome without {attr}")))
        };
        return Ok(StoredChange::RefundOutcome(RefundOutcomeRecord {
            refund_id: field("refund_id")?,
            payment_id: field("payment_id")?,
            order_id: text(new, "order_id"),
            status: RefundStatus::parse(&field("status")?),
            amount: new
                .get("amount")
                .and_then(|v| v.as_n().ok())
                .and_then(|v| v.parse().ok())
                .unwrap_or_default(),
            currency: field("currency")?,
            failure_code: text(new, "failure_code"),
            at: field("at")?,
        }));
    }
    Ok(StoredChange::Unrelated)
}
