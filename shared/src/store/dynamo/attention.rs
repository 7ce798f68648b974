//! The operators' queue's writers: the one way an item joins the `attention`
//! partition of the queue index (`queue`, `queue_at`), used by every write that
//! makes a need (an order held for review, a payment needing review or flagged, a
//! failed refund's outcome). The queue is read in [`super::operations`].

use super::expr::Expr;
use super::{n, s};
use aws_sdk_dynamodb::types::AttributeValue;

/// The queue index's partition of items that need a person (the operators'
/// queue): an order held for review, a payment that needs review or is flagged by
/// the reconciler, a failed refund's outcome. Set by the write that makes the need;
/// what each item needs is decided again when the queue is read
/// (`domain::attention`), so an item whose need went away is not listed.
pub const ATTENTION_QUEUE: &str = "attention";

/// `SET queue = attention, queue_at = <at, Unix ms>`: the item joins the
/// operators' queue (the one way any write puts it there).
pub(crate) fn join_attention_queue(expr: &mut Expr, at: &str) {
    expr.set("queue", s(ATTENTION_QUEUE))
        .set("queue_at", n(rfc3339_ms(at)));
}

/// The same, as attributes of an item inserted whole.
pub(crate) fn attention_attributes(at: &str) -> [(String, AttributeValue); 2] {
    [
        ("queue".into(), s(ATTENTION_QUEUE)),
        ("queue_at".into(), n(rfc3339_ms(at))),
    ]
}

/// Unix ms of an RFC 3339 time written by this backend (0 if unreadable: the
/// item is then listed first).
fn rfc3339_ms(at: &str) -> i64 {
    time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
        .unwrap_or(0)
}
