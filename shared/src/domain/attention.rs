//! The operators' queue: what a stored item needs of a person, decided when the
//! queue is read (an item joins the queue by the write that made the need, and is
//! listed only while the need holds). Reasons: `review` (an order held for an
//! amount mismatch), `needs_review` (a second payment not yet refunded in full),
//! `stuck` and `not_found_at_fintoc` (payments the reconciler gave up on, still not
//! final), `refund_failed` (the payer did not get the money back) and
//! `delivery_exhausted` (a merchant event never acknowledged).

use super::delivery::DeliveryState;
use super::order::OrderState;
use super::payment::{PaymentStatus, ReviewReason, StoredPayment};
use super::refund::RefundStatus;
use serde::Serialize;

/// An item of the queue, as `queue` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueueItem {
    /// `order`, `payment`, `refund` or `delivery`.
    pub kind: &'static str,
    /// Its id (a delivery's: `<event id>/<destination>`).
    pub id: String,
    /// Its order, when known.
    pub order_id: Option<String>,
    /// Why a person must look.
    pub reason: &'static str,
    /// Since when (RFC 3339).
    pub since: String,
    /// The same instant (Unix ms): the queue's order, oldest first.
    #[serde(skip)]
    pub since_ms: i64,
}

/// A stored item the queue index named, as read whole.
#[derive(Debug, Clone)]
pub enum Candidate {
    /// An order.
    Order {
        /// Its id.
        order_id: String,
        /// Its state now.
        state: OrderState,
    },
    /// A payment, with the reconciler's flag (`stuck`, `not_found_at_fintoc`).
    Payment {
        /// The payment now.
        payment: Box<StoredPayment>,
        /// The flag, if any.
        flagged: Option<String>,
    },
    /// A refund's outcome record.
    RefundOutcome {
        /// The refund's public id.
        refund_id: String,
        /// Its payment's order.
        order_id: Option<String>,
        /// Its final status.
        status: RefundStatus,
    },
    /// A merchant event's delivery.
    Delivery {
        /// `<event id>/<destination>`.
        id: String,
        /// Its state now.
        state: DeliveryState,
    },
}

/// What `candidate` needs of a person now: its queue items (none when the need
/// went away). `since`: when it joined the queue.
pub fn needs(candidate: &Candidate, since: &str, since_ms: i64) -> Vec<QueueItem> {
    let item = |kind, id: &str, order_id: Option<&str>, reason| QueueItem {
        kind,
        id: id.to_string(),
        order_id: order_id.map(str::to_string),
        reason,
        since: since.to_string(),
        since_ms,
    };
    match candidate {
        Candidate::Order { order_id, state } => (*state == OrderState::Review)
            .then(|| item("order", order_id, Some(order_id), "review"))
            .into_iter()
            .collect(),
        Candidate::Payment { payment, flagged } => {
            let order_id = payment.order_id.as_deref();
            let mut found = Vec::new();
            let second = payment
                .review
                .as_ref()
                .is_some_and(|r| r.reason == ReviewReason::SecondPayment);
            let held = payment.status == PaymentStatus::Succeeded
                && payment.refunds.refunded() < payment.amount;
            if second && held {
                found.push(item("payment", &payment.id, order_id, "needs_review"));
            }
            let reason = match flagged.as_deref() {
                Some("stuck") => Some("stuck"),
                Some("not_found_at_fintoc") => Some("not_found_at_fintoc"),
                _ => None,
            };
            if let Some(reason) = reason.filter(|_| !payment.status.is_final()) {
                found.push(item("payment", &payment.id, order_id, reason));
            }
            found
        }
        Candidate::RefundOutcome {
            refund_id,
            order_id,
            status,
        } => (*status == RefundStatus::Failed)
            .then(|| item("refund", refund_id, order_id.as_deref(), "refund_failed"))
            .into_iter()
            .collect(),
        Candidate::Delivery { id, state } => (*state == DeliveryState::Exhausted)
            .then(|| item("delivery", id, None, "delivery_exhausted"))
            .into_iter()
            .collect(),
    }
}

/// The reasons a person may acknowledge — the item then leaves the queue as it
/// is: no money waits on them (a payment that never paid here, a refund whose
/// amount is free again, an event the merchant did without). `review` and
/// `needs_review` hold a payer's money: they leave only by a resolution or a
/// refund.
pub const ACKNOWLEDGEABLE: [&str; 4] = [
    "stuck",
    "not_found_at_fintoc",
    "refund_failed",
    "delivery_exhausted",
];

/// Whether `reason` may be acknowledged.
pub fn acknowledgeable(reason: &str) -> bool {
    ACKNOWLEDGEABLE.contains(&reason)
}

/// `items` of one stored item less the reasons acknowledged on it.
pub fn outstanding(items: Vec<QueueItem>, acknowledged: &[String]) -> Vec<QueueItem> {
    items
        .into_iter()
        .filter(|i| !(acknowledgeable(i.reason) && acknowledged.iter().any(|a| a == i.reason)))
        .collect()
}

/// The queue, oldest first (then by id, for a stable order).
pub fn oldest_first(mut items: Vec<QueueItem>) -> Vec<QueueItem> {
    items.sort_by(|a, b| (a.since_ms, &a.id, a.reason).cmp(&(b.since_ms, &b.id, b.reason)));
    items
}

#[cfg(test)]
mod tests;
