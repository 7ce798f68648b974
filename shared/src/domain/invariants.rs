//! The rules the table must hold whatever happened — checked by the read-only
//! invariant audit (`check-invariants`), one order with its payments at a time. Each
//! broken rule is a [`Violation`] named by its [`Invariant`]; the audit confirms a
//! suspect with a strongly consistent read before it reports it (a scan is not a
//! snapshot), so these functions are called twice on a suspect, never trusted once.

use super::order::OrderState;
use super::payment::{PaymentKind, PaymentStatus, StoredPayment};
use super::schedule::DAILY_MS;

/// A rule of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Invariant {
    /// A paid order names a payment that succeeded at the amount it asked for.
    OrderPaidByItsPayment,
    /// No other succeeded payment of an order counts as paying it.
    OnePaymentPerOrder,
    /// A payment's reserved and succeeded refunds never exceed what it paid.
    RefundsWithinPaid,
    /// An order's refunded amount is the sum of its payment's succeeded refunds.
    RefundedAmountMatches,
    /// Every payment that is not final is due for a check within a day.
    OpenPaymentScheduled,
    /// An order's state agrees with its payments.
    OrderStateConsistent,
}

impl Invariant {
    /// Every rule, as the audit reports them.
    pub const ALL: [Invariant; 6] = [
        Self::OrderPaidByItsPayment,
        Self::OnePaymentPerOrder,
        Self::RefundsWithinPaid,
        Self::RefundedAmountMatches,
        Self::OpenPaymentScheduled,
        Self::OrderStateConsistent,
    ];

    /// Its name in the audit's report.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OrderPaidByItsPayment => "order_paid_by_its_payment",
            Self::OnePaymentPerOrder => "one_payment_per_order",
            Self::RefundsWithinPaid => "refunds_within_paid",
            Self::RefundedAmountMatches => "refunded_amount_matches",
            Self::OpenPaymentScheduled => "open_payment_scheduled",
            Self::OrderStateConsistent => "order_state_consistent",
        }
    }
}

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Which rule.
    pub invariant: Invariant,
    /// The order or payment that breaks it.
    pub subject: String,
    /// What was seen.
    pub detail: String,
}

fn violation(invariant: Invariant, subject: &str, detail: String) -> Violation {
    Violation {
        invariant,
        subject: subject.to_string(),
        detail,
    }
}

/// An order as the audit reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditedOrder {
    /// The order.
    pub order_id: String,
    /// Its state.
    pub state: OrderState,
    /// The payment it names (`intent_id`), if any.
    pub payment_id: Option<String>,
    /// That payment's kind.
    pub payment_kind: PaymentKind,
    /// Until when a reservation holds it (Unix ms).
    pub reserved_until_ms: i64,
    /// What its refunds gave back, as the order counts it.
    pub refunded_amount: u64,
}

/// A payment as the audit reads it: the stored payment and whether it is flagged
/// for a person (`stuck`, `not_found_at_fintoc`: off the schedule on purpose).
#[derive(Debug, Clone, Copy)]
pub struct AuditedPayment<'a> {
    /// The payment.
    pub payment: &'a StoredPayment,
    /// Flagged for a person.
    pub flagged: bool,
}

/// How long a reservation may outlive its lease before it is a violation: a
/// create that crashed leaves its reservation, which the next create takes over.
pub const RESERVATION_GRACE_MS: i64 = DAILY_MS;

/// What a payment paid (nothing unless it succeeded).
fn paid_amount(payment: &StoredPayment) -> u64 {
    if payment.status == PaymentStatus::Succeeded {
        payment.amount
    } else {
        0
    }
}

/// The rules of one payment alone: its refunds within what it paid, and its
/// schedule while it is open.
pub fn check_payment(audited: AuditedPayment<'_>, now_ms: i64) -> Vec<Violation> {
    let payment = audited.payment;
    let mut found = Vec::new();
    let paid = paid_amount(payment);
    let succeeded = payment.refunds.refunded();
    if payment.refunds.reserved > paid || succeeded > paid {
        found.push(violation(
            Invariant::RefundsWithinPaid,
            &payment.id,
            format!(
                "paid {paid} {}, refunds reserve {} and gave back {succeeded}",
                payment.currency, payment.refunds.reserved
            ),
        ));
    }
    if !payment.status.is_final() && !audited.flagged {
        match &payment.schedule {
            None => found.push(violation(
                Invariant::OpenPaymentScheduled,
                &payment.id,
                format!("{} and on no check schedule", payment.status.as_str()),
            )),
            Some(schedule) if schedule.due_at_ms > now_ms + DAILY_MS => found.push(violation(
                Invariant::OpenPaymentScheduled,
                &payment.id,
                format!(
                    "{} and next checked in {} h",
                    payment.status.as_str(),
                    (schedule.due_at_ms - now_ms) / 3_600_000
                ),
            )),
            Some(_) => {}
        }
    }
    found
}

/// The rules of one order with every payment of it.
pub fn check_order(
    order: &AuditedOrder,
    payments: &[AuditedPayment<'_>],
    now_ms: i64,
) -> Vec<Violation> {
    let mut found = Vec::new();
    let subject = order.order_id.as_str();
    let named = order
        .payment_id
        .as_deref()
        .and_then(|id| payments.iter().find(|p| p.payment.id == id))
        .map(|p| p.payment);
    if order.state == OrderState::Paid {
        match named {
            Some(p) if p.paid() => {}
            Some(p) => found.push(violation(
                Invariant::OrderPaidByItsPayment,
                subject,
                format!(
                    "paid by {}, which is {}{}",
                    p.id,
                    p.status.as_str(),
                    p.review
                        .as_ref()
                        .map(|r| format!(" and needs review ({})", r.reason.as_str()))
                        .unwrap_or_default()
                ),
            )),
            None => found.push(violation(
                Invariant::OrderPaidByItsPayment,
                subject,
                format!("paid by {:?}, which is not stored", order.payment_id),
            )),
        }
    }
    for other in payments.iter().map(|p| p.payment).filter(|p| {
        p.status == PaymentStatus::Succeeded && Some(p.id.as_str()) != order.payment_id.as_deref()
    }) {
        if other.review.is_none() {
            found.push(violation(
                Invariant::OnePaymentPerOrder,
                subject,
                format!("{} succeeded too and is not held for review", other.id),
            ));
        }
    }
    if let Some(payment) = named.filter(|_| order.state == OrderState::Paid) {
        let succeeded = payment.refunds.refunded();
        if order.refunded_amount != succeeded {
            found.push(violation(
                Invariant::RefundedAmountMatches,
                subject,
                format!(
                    "the order counts {} refunded, {}'s succeeded refunds {succeeded}",
                    order.refunded_amount, payment.id
                ),
            ));
        }
    }
    let state = |detail: String| violation(Invariant::OrderStateConsistent, subject, detail);
    match order.state {
        OrderState::Open => match named {
            None => found.push(state(format!(
                "open on {:?}, which is not stored",
                order.payment_id
            ))),
            Some(p) if p.status.is_final() => found.push(state(format!(
                "open on {}, which is {}",
                p.id,
                p.status.as_str()
            ))),
            Some(_) => {}
        },
        OrderState::Reserved if order.reserved_until_ms + RESERVATION_GRACE_MS < now_ms => found
            .push(state(format!(
                "reserved, its lease over for {} h",
                (now_ms - order.reserved_until_ms) / 3_600_000
            ))),
        OrderState::Review if !payments.iter().any(|p| p.payment.review.is_some()) => {
            found.push(state("in review, and no payment of it needs review".into()))
        }
        _ => {}
    }
    found
}

#[cfg(test)]
mod tests;
