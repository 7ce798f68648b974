//! What an operator's `show` decides, pure: where our record of a payment and
//! Fintoc's live answer disagree, the merchant events a payment can have caused
//! (their ids are derived, so they are read by key, not searched), and one
//! timeline of everything that happened to it, oldest first.

use super::merchant_event::{event_id, EventType};
use super::payment::{PaymentStatus, StoredPayment};
use super::refund::RefundStatus;
use super::resolution::FintocAnswer;
use serde::Serialize;
use serde_json::{json, Value};

/// A field where our record and Fintoc's answer disagree.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Discrepancy {
    /// `found`, `status`, `amount` or `currency`.
    pub field: &'static str,
    /// Ours.
    pub ours: Value,
    /// Fintoc's now.
    pub fintoc: Value,
}

/// Where `payment` and Fintoc's answer about it (`None`: Fintoc does not know
/// it) disagree. A field Fintoc leaves out is not a disagreement.
pub fn discrepancies(payment: &StoredPayment, fintoc: Option<&FintocAnswer>) -> Vec<Discrepancy> {
    let Some(fintoc) = fintoc else {
        return vec![Discrepancy {
            field: "found",
            ours: json!(true),
            fintoc: json!(false),
        }];
    };
    let mut found = Vec::new();
    if fintoc.status != payment.status {
        found.push(Discrepancy {
            field: "status",
            ours: json!(payment.status.as_str()),
            fintoc: json!(fintoc.status.as_str()),
        });
    }
    if let Some(amount) = fintoc.amount.filter(|a| *a != payment.amount) {
        found.push(Discrepancy {
            field: "amount",
            ours: json!(payment.amount),
            fintoc: json!(amount),
        });
    }
    if let Some(currency) = fintoc
        .currency
        .as_ref()
        .filter(|c| !c.eq_ignore_ascii_case(&payment.currency))
    {
        found.push(Discrepancy {
            field: "currency",
            ours: json!(payment.currency),
            fintoc: json!(currency),
        });
    }
    found
}

/// Every merchant event `payment` can have caused, by id: its order's
/// `order.paid`, its `payment.failed` for each status that ends unpaid, its
/// `payment.needs_review` for its review's reason, and each refund's outcome.
/// (`merchant_event` derives each event's id from the same inputs.)
pub fn possible_event_ids(payment: &StoredPayment) -> Vec<String> {
    let mut ids = Vec::new();
    if let Some(order_id) = &payment.order_id {
        ids.push(event_id(EventType::OrderPaid, order_id, "paid"));
    }
    for status in [
        PaymentStatus::Failed,
        PaymentStatus::Rejected,
        PaymentStatus::Expired,
    ] {
        ids.push(event_id(
            EventType::PaymentFailed,
            &payment.id,
            status.as_str(),
        ));
    }
    if let Some(review) = &payment.review {
        ids.push(event_id(
            EventType::PaymentNeedsReview,
            &payment.id,
            review.reason.as_str(),
        ));
    }
    for refund in &payment.refunds.entries {
        let refund_id = payment.refund_id(&refund.key).to_string();
        for (event_type, status) in [
            (EventType::RefundSucceeded, RefundStatus::Succeeded),
            (EventType::RefundFailed, RefundStatus::Failed),
        ] {
            ids.push(event_id(event_type, &refund_id, status.as_str()));
        }
    }
    ids
}

/// One thing that happened, as the timeline lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimelineEntry {
    /// When (RFC 3339).
    pub at: String,
    /// The same instant (Unix ms): the timeline's order.
    #[serde(skip)]
    pub at_ms: i64,
    /// What: `payment_created`, `refund_reserved`, `refund_<status>`,
    /// `next_check_due`, `check_gives_up`, `merchant_event_recorded`,
    /// `delivery_attempt`, or an audit entry's action.
    pub what: String,
    /// Its particulars.
    pub detail: Value,
}

/// The timeline of `payment`'s own record: created, each refund reserved and
/// ended, the reconciler's next check and when it gives up. `time` turns an
/// RFC 3339 time into Unix ms (a time it cannot read is left out).
pub fn payment_timeline(
    payment: &StoredPayment,
    time: impl Fn(&str) -> Option<i64>,
    format: impl Fn(i64) -> String,
) -> Vec<TimelineEntry> {
    let mut entries = Vec::new();
    let mut push = |at: &str, what: &str, detail: Value| {
        if let Some(at_ms) = time(at) {
            entries.push(TimelineEntry {
                at: at.to_string(),
                at_ms,
                what: what.to_string(),
                detail,
            });
        }
    };
    push(
        &payment.created_at,
        "payment_created",
        json!({"payment_id": payment.id, "amount": payment.amount, "currency": payment.currency}),
    );
    for refund in &payment.refunds.entries {
        let refund_id = payment.refund_id(&refund.key).to_string();
        push(
            &refund.created_at,
            "refund_reserved",
            json!({"refund_id": refund_id, "amount": refund.amount, "origin": refund.origin.as_str()}),
        );
        if refund.status.is_final() {
            push(
                &refund.updated_at,
                &format!("refund_{}", refund.status.as_str()),
                json!({"refund_id": refund_id, "failure_code": refund.failure_code}),
            );
        }
    }
    if let Some(schedule) = &payment.schedule {
        for (at_ms, what) in [
            (schedule.due_at_ms, "next_check_due"),
            (schedule.give_up_at_ms, "check_gives_up"),
        ] {
            push(
                &format(at_ms),
                what,
                json!({"checks_so_far": schedule.checks}),
            );
        }
    }
    entries
}

/// Sorts a timeline oldest first (ties kept in the order given).
pub fn in_order(mut entries: Vec<TimelineEntry>) -> Vec<TimelineEntry> {
    entries.sort_by_key(|e| e.at_ms);
    entries
}

#[cfg(test)]
mod tests;
