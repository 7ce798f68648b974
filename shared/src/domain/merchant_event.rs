//! The merchant events (v1): what this backend tells the merchant's systems once a
//! payment or a refund has an outcome — `{"id": "evt_…", "type", "timestamp",
//! "data"}` — built from the stored payment, never from a request, and carrying no
//! token, secret or account number.
//!
//! An event's id is derived from the state change that caused it (its type, its
//! subject and what changed), so a duplicated stream record, a retried delivery and
//! a replay all carry the same id: the merchant acknowledges an id once.

use super::order::OrderState;
use super::payment::{PaymentKind, PaymentStatus, StoredPayment};
use super::refund::RefundStatus;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// The version of the events' shape, in their documentation and schemas.
pub const EVENTS_VERSION: &str = "v1";

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EventType {
    /// An order was paid: exactly one per order.
    OrderPaid,
    /// A payment ended without paying.
    PaymentFailed,
    /// A payment a human must look at.
    PaymentNeedsReview,
    /// A refund's money went back to the payer.
    RefundSucceeded,
    /// A refund could not be paid out.
    RefundFailed,
}

impl EventType {
    /// Every type, in the order the documentation lists them.
    pub const ALL: [EventType; 5] = [
        Self::OrderPaid,
        Self::PaymentFailed,
        Self::PaymentNeedsReview,
        Self::RefundSucceeded,
        Self::RefundFailed,
    ];

    /// Its name on the wire (`type`, EventBridge's `detail-type`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OrderPaid => "order.paid",
            Self::PaymentFailed => "payment.failed",
            Self::PaymentNeedsReview => "payment.needs_review",
            Self::RefundSucceeded => "refund.succeeded",
            Self::RefundFailed => "refund.failed",
        }
    }
}

/// One event, as delivered.
#[derive(Debug, Clone, PartialEq)]
pub struct MerchantEvent {
    /// `evt_` and 32 hex digits, derived from the change ([`event_id`]).
    pub id: String,
    /// What happened.
    pub event_type: EventType,
    /// When it happened (RFC 3339): the change's time, the same on every delivery.
    pub timestamp: String,
    /// Its data, per type (docs/events.md).
    pub data: Value,
}

impl MerchantEvent {
    /// The event as its JSON body.
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "type": self.event_type.as_str(),
            "timestamp": self.timestamp,
            "data": self.data,
        })
    }
}

/// The id of the event of `event_type` that the change `change` of `subject` caused:
/// the same inputs always give the same id, and different ones never collide in
/// practice (128 bits of SHA-256).
pub fn event_id(event_type: EventType, subject: &str, change: &str) -> String {
    let mut hash = Sha256::new();
    for part in [event_type.as_str(), subject, change] {
        hash.update(part.len().to_be_bytes());
        hash.update(part.as_bytes());
    }
    format!("evt_{}", &hex::encode(hash.finalize())[..32])
}

fn flow(kind: PaymentKind) -> &'static str {
    match kind {
        PaymentKind::Intent => "payment_intent",
        PaymentKind::Session => "checkout_session",
    }
}

/// `order.paid` for an order `payment` paid at `paid_at`; `None` for a payment
/// without an order. One order is paid by one payment only, so its subject is the
/// order: a second payment of the order can never make a second `order.paid`.
pub fn order_paid(payment: &StoredPayment, paid_at: &str) -> Option<MerchantEvent> {
    let order_id = payment.order_id.as_deref()?;
    Some(MerchantEvent {
        id: event_id(EventType::OrderPaid, order_id, "paid"),
        event_type: EventType::OrderPaid,
        timestamp: paid_at.to_string(),
        data: json!({
            "order_id": order_id,
            "payment_id": payment.id,
            "flow": flow(payment.kind),
            "amount": payment.amount,
            "currency": payment.currency,
            "metadata": payment.metadata,
            "paid_at": paid_at,
        }),
    })
}

/// `payment.failed` for a payment that ended without paying (failed, rejected,
/// expired); `None` while it may still pay.
pub fn payment_failed(payment: &StoredPayment) -> Option<MerchantEvent> {
    let status = match &payment.status {
        PaymentStatus::Failed | PaymentStatus::Rejected | PaymentStatus::Expired => {
            payment.status.as_str()
        }
        _ => return None,
    };
    Some(MerchantEvent {
        id: event_id(EventType::PaymentFailed, &payment.id, status),
        event_type: EventType::PaymentFailed,
        timestamp: payment.updated_at.clone(),
        data: json!({
            "order_id": payment.order_id,
            "payment_id": payment.id,
            "flow": flow(payment.kind),
            "status": status,
            "error_reason": payment.error_reason,
        }),
    })
}

/// `payment.needs_review` for a payment held for a human; `None` otherwise.
pub fn payment_needs_review(payment: &StoredPayment) -> Option<MerchantEvent> {
    let review = payment.review.as_ref()?;
    Some(MerchantEvent {
        id: event_id(
            EventType::PaymentNeedsReview,
            &payment.id,
            review.reason.as_str(),
        ),
        event_type: EventType::PaymentNeedsReview,
        timestamp: payment.updated_at.clone(),
        data: json!({
            "order_id": payment.order_id,
            "payment_id": payment.id,
            "flow": flow(payment.kind),
            "reason": review.reason.as_str(),
            "detail": review.detail,
        }),
    })
}

/// A refund's final outcome as its `REFUND_OUTCOME#` record holds it, inserted once
/// by the write that recorded the outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct RefundOutcomeRecord {
    /// The refund's public id (`re_…`).
    pub refund_id: String,
    /// Its payment.
    pub payment_id: String,
    /// Its payment's order, if any.
    pub order_id: Option<String>,
    /// Its final status.
    pub status: RefundStatus,
    /// What it paid back (or tried to).
    pub amount: u64,
    /// Its currency.
    pub currency: String,
    /// Why it failed, as Fintoc said.
    pub failure_code: Option<String>,
    /// When the outcome was recorded (RFC 3339).
    pub at: String,
}

/// `refund.succeeded` or `refund.failed` for a refund's outcome; `None` for any
/// other status (a canceled or rejected refund paid nothing out and was answered
/// to the caller who asked for it).
pub fn refund_outcome(outcome: &RefundOutcomeRecord) -> Option<MerchantEvent> {
    let event_type = match outcome.status {
        RefundStatus::Succeeded => EventType::RefundSucceeded,
        RefundStatus::Failed => EventType::RefundFailed,
        _ => return None,
    };
    Some(MerchantEvent {
        id: event_id(event_type, &outcome.refund_id, outcome.status.as_str()),
        event_type,
        timestamp: outcome.at.clone(),
        data: json!({
            "refund_id": outcome.refund_id,
            "payment_id": outcome.payment_id,
            "order_id": outcome.order_id,
            "amount": outcome.amount,
            "currency": outcome.currency,
            "failure_code": outcome.failure_code,
        }),
    })
}

/// A change of a stored item, as the table's stream reports it (decoded by the
/// store): the only input events are derived from.
#[derive(Debug, Clone, PartialEq)]
pub enum StoredChange {
    /// An order's item: its state before (`None`: inserted) and after.
    Order {
        /// The order.
        order_id: String,
        /// Its state before the change.
        before: Option<OrderState>,
        /// Its state after.
        after: OrderState,
        /// The payment it names after the change.
        payment_id: Option<String>,
        /// That payment's kind.
        kind: PaymentKind,
        /// When it was paid (set with `paid`).
        paid_at: Option<String>,
    },
    /// A payment's item, before (`None`: inserted) and after.
    Payment {
        /// Before the change.
        before: Option<Box<StoredPayment>>,
        /// After it.
        after: Box<StoredPayment>,
    },
    /// A refund's outcome record, inserted.
    RefundOutcome(RefundOutcomeRecord),
    /// Anything else (a removal, an idempotency key, a delivery): no event.
    Unrelated,
}

/// What a change makes: an event, or an order paid whose event needs its payment
/// read first (the order's item does not hold the amount or the metadata).
#[derive(Debug, Clone, PartialEq)]
pub enum Derived {
    /// A complete event.
    Event(MerchantEvent),
    /// `order_id` was paid by `payment_id` at `paid_at`: build [`order_paid`] from
    /// that payment.
    OrderPaid {
        /// The order.
        order_id: String,
        /// The payment that paid it.
        payment_id: String,
        /// The payment's kind.
        kind: PaymentKind,
        /// When.
        paid_at: String,
    },
}

/// The events a change makes: `order.paid` when an order becomes paid (once: the
/// state never leaves `paid`), `payment.failed` when a payment reaches an unpaid
/// final status, `payment.needs_review` when a payment is held for a new reason,
/// and a refund's outcome when its record is inserted. Anything else makes none;
/// a change seen twice makes the same events with the same ids.
pub fn derive(change: &StoredChange) -> Vec<Derived> {
    match change {
        StoredChange::Order {
            order_id,
            before,
            after: OrderState::Paid,
            payment_id: Some(payment_id),
            kind,
            paid_at,
        } if *before != Some(OrderState::Paid) => vec![Derived::OrderPaid {
            order_id: order_id.clone(),
            payment_id: payment_id.clone(),
            kind: *kind,
            paid_at: paid_at.clone().unwrap_or_default(),
        }],
        StoredChange::Order { .. } | StoredChange::Unrelated => Vec::new(),
        StoredChange::Payment { before, after } => {
            let before = before.as_deref();
            let mut events = Vec::new();
            if before.map(|b| &b.status) != Some(&after.status) {
                events.extend(payment_failed(after));
            }
            let reason = |p: &StoredPayment| p.review.as_ref().map(|r| r.reason);
            if before.and_then(reason) != reason(after) {
                events.extend(payment_needs_review(after));
            }
            events.into_iter().map(Derived::Event).collect()
        }
        StoredChange::RefundOutcome(outcome) => refund_outcome(outcome)
            .map(Derived::Event)
            .into_iter()
            .collect(),
    }
}

#[cfg(test)]
mod tests;
