//! An operator's resolution of an order held in `review` (its payment succeeded at
//! another amount or currency than requested): the preconditions, each refused with
//! its own code, and what a resolution writes — the order, the payment when it is
//! accepted, and the audit entry, together or not at all (`store::dynamo::operations`).
//!
//! `paid` only when Fintoc's live answer says the payment succeeded; the payment's
//! amount and currency become Fintoc's (the requested ones kept beside them), so
//! refunds are bounded by what was really paid. `closed` only when nothing paid is
//! still held: the payment never succeeded (ours and Fintoc's answers agree), or its
//! succeeded refunds gave all of it back. Anything else is refused and nothing is
//! written. Refunding a second payment stays the ordinary refund route.

use super::order::{OrderRecord, OrderState};
use super::payment::{PaymentKind, PaymentStatus, ReviewReason, StoredPayment};
use serde::Serialize;
use serde_json::{json, Value};

/// What an operator resolves an order as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResolveAs {
    /// The payment is accepted as paying the order, at Fintoc's amount.
    Paid,
    /// The order is closed unpaid: a new payment may be made for it.
    Closed,
}

impl ResolveAs {
    /// The name an operator types (`--as paid|closed`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Paid => "paid",
            Self::Closed => "closed",
        }
    }

    /// Reads an operator's choice.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "paid" => Some(Self::Paid),
            "closed" => Some(Self::Closed),
            _ => None,
        }
    }

    /// The order's state once resolved.
    pub fn order_state(self) -> OrderState {
        match self {
            Self::Paid => OrderState::Paid,
            Self::Closed => OrderState::Closed,
        }
    }

    /// The audit entry's action.
    pub fn action(self) -> &'static str {
        match self {
            Self::Paid => "resolve_paid",
            Self::Closed => "resolve_closed",
        }
    }
}

/// An operator's request to resolve an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolveRequest {
    /// The order.
    pub order_id: String,
    /// How.
    pub resolve_as: ResolveAs,
    /// Why, in the operator's words (required).
    pub reason: String,
    /// The ticket it answers, if any.
    pub ticket: Option<String>,
    /// Who: the caller's IAM principal.
    pub actor: String,
    /// The resolution's (and its audit entry's) id.
    pub resolution_id: String,
    /// When (RFC 3339).
    pub at: String,
    /// The same instant (Unix ms): the audit log's order.
    pub at_ms: i64,
}

/// The longest reason or ticket kept (bytes): an audit entry stays one small item.
pub const MAX_TEXT_BYTES: usize = 1000;

/// Why a resolution was refused; nothing was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolveRefusal {
    /// No reason given (or one longer than [`MAX_TEXT_BYTES`], or a ticket so).
    ReasonRequired,
    /// No such order.
    OrderNotFound,
    /// The order is not in `review` (only a held order is resolved by hand).
    OrderNotInReview(OrderState),
    /// The order names no payment this deployment stored.
    PaymentNotFound,
    /// `paid`: Fintoc does not say the payment succeeded (its status, or not found).
    PaymentNotSucceededAtFintoc(String),
    /// `paid`: the payment's review is not an amount mismatch this resolution can
    /// accept, or Fintoc's answer names no amount and currency to accept.
    NothingToAccept,
    /// `closed`: the payment paid and not all of it was refunded.
    PaymentStillHeld {
        /// What it paid.
        paid: u64,
        /// What its succeeded refunds gave back.
        refunded: u64,
        /// Its currency.
        currency: String,
    },
    /// The order or payment changed between the reads and the write; decide again.
    Changed,
}

impl ResolveRefusal {
    /// The error code answered.
    pub fn code(&self) -> &'static str {
        match self {
            Self::ReasonRequired => "reason_required",
            Self::OrderNotFound => "order_not_found",
            Self::OrderNotInReview(_) => "order_not_in_review",
            Self::PaymentNotFound => "payment_not_found",
            Self::PaymentNotSucceededAtFintoc(_) => "payment_not_succeeded_at_fintoc",
            Self::NothingToAccept => "nothing_to_accept",
            Self::PaymentStillHeld { .. } => "payment_still_held",
            Self::Changed => "order_changed",
        }
    }

    /// The HTTP status answered.
    pub fn status(&self) -> u16 {
        match self {
            Self::ReasonRequired => 400,
            Self::OrderNotFound => 404,
            _ => 409,
        }
    }

    /// A message for the operator.
    pub fn message(&self) -> String {
        match self {
            Self::ReasonRequired => format!(
                "A resolution needs a reason (and at most {MAX_TEXT_BYTES} bytes of it, and of a ticket)."
            ),
            Self::OrderNotFound => "No such order.".into(),
            Self::OrderNotInReview(state) => format!(
                "The order is {}, not in review: only an order held for review is resolved by hand.",
                state.as_str()
            ),
            Self::PaymentNotFound => "The order names no payment this deployment stored.".into(),
            Self::PaymentNotSucceededAtFintoc(status) => format!(
                "Fintoc says the payment is {status}, not succeeded: it cannot be accepted as paying the order."
            ),
            Self::NothingToAccept => "The payment holds no amount mismatch with an amount and currency from Fintoc to accept.".into(),
            Self::PaymentStillHeld { paid, refunded, currency } => format!(
                "The payment paid {paid} {currency} and refunds gave back {refunded}: refund the rest before closing the order."
            ),
            Self::Changed => "The order or its payment changed while this resolution was decided; nothing was written. Look again.".into(),
        }
    }
}

/// Fintoc's live answer about the order's payment, reduced to what a resolution
/// decides on (`None` in [`decide`]: Fintoc does not know the payment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FintocAnswer {
    /// Its status, as Fintoc claims it for this payment's record.
    pub status: PaymentStatus,
    /// The amount Fintoc reports.
    pub amount: Option<u64>,
    /// The currency Fintoc reports.
    pub currency: Option<String>,
}

/// The payment's amount and currency accepted by a `paid` resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acceptance {
    /// Fintoc's amount, now the payment's.
    pub amount: u64,
    /// Fintoc's currency, now the payment's.
    pub currency: String,
    /// The amount the order asked for, kept beside it.
    pub requested_amount: u64,
    /// The currency the order asked for.
    pub requested_currency: String,
}

/// One entry of the audit log: who did what to which subject, why, and the state
/// before and after. Never updated or deleted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    /// The entry's id (the resolution's).
    pub id: String,
    /// When (RFC 3339).
    pub at: String,
    /// The same instant (Unix ms).
    #[serde(skip)]
    pub at_ms: i64,
    /// The caller's IAM principal.
    pub actor: String,
    /// What was done (`resolve_paid`, `resolve_closed`).
    pub action: String,
    /// The order (or other item) it was done to.
    pub subject: String,
    /// The operator's reason.
    pub reason: String,
    /// The ticket it answers.
    pub ticket: Option<String>,
    /// The subject before.
    pub before: Value,
    /// The subject after.
    pub after: Value,
}

/// What a resolution writes, in one transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolutionPlan {
    /// The order, moved from `review` (its condition) to `resolve_as`'s state.
    pub order_id: String,
    /// How.
    pub resolve_as: ResolveAs,
    /// The payment the order names (its condition: unchanged since read).
    pub payment_kind: PaymentKind,
    /// Its id.
    pub payment_id: String,
    /// `paid`: the amount and currency the payment now carries.
    pub acceptance: Option<Acceptance>,
    /// The audit entry.
    pub entry: AuditEntry,
}

fn text_ok(text: &str) -> bool {
    text.len() <= MAX_TEXT_BYTES
}

/// Decides a resolution from the order, the payment it names (ours) and Fintoc's
/// live answer about it: the plan to write, or why not.
pub fn decide(
    request: &ResolveRequest,
    order: Option<&OrderRecord>,
    payment: Option<&StoredPayment>,
    fintoc: Option<&FintocAnswer>,
) -> Result<ResolutionPlan, ResolveRefusal> {
    if request.reason.trim().is_empty()
        || !text_ok(&request.reason)
        || !request.ticket.as_deref().is_none_or(text_ok)
    {
        return Err(ResolveRefusal::ReasonRequired);
    }
    let order = order.ok_or(ResolveRefusal::OrderNotFound)?;
    if order.state != OrderState::Review {
        return Err(ResolveRefusal::OrderNotInReview(order.state));
    }
    let payment = payment
        .filter(|p| Some(p.id.as_str()) == order.intent_id.as_deref())
        .ok_or(ResolveRefusal::PaymentNotFound)?;
    let fintoc_status = fintoc.map(|f| f.status.clone());
    let acceptance = match request.resolve_as {
        ResolveAs::Paid => {
            if fintoc_status != Some(PaymentStatus::Succeeded) {
                return Err(ResolveRefusal::PaymentNotSucceededAtFintoc(
                    fintoc_status
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_else(|| "not found at Fintoc".into()),
                ));
            }
            let fintoc = fintoc.expect("succeeded above");
            let mismatch = payment
                .review
                .as_ref()
                .is_some_and(|r| r.reason == ReviewReason::AmountMismatch);
            let (Some(amount), Some(currency), true) =
                (fintoc.amount, fintoc.currency.as_ref(), mismatch)
            else {
                return Err(ResolveRefusal::NothingToAccept);
            };
            Some(Acceptance {
                amount,
                currency: currency.to_uppercase(),
                requested_amount: payment.amount,
                requested_currency: payment.currency.clone(),
            })
        }
        ResolveAs::Closed => {
            let succeeded = payment.status == PaymentStatus::Succeeded
                || fintoc_status == Some(PaymentStatus::Succeeded);
            let paid = if succeeded {
                fintoc.and_then(|f| f.amount).unwrap_or(payment.amount)
            } else {
                0
            };
            let refunded = payment.refunds.refunded();
            if refunded < paid {
                return Err(ResolveRefusal::PaymentStillHeld {
                    paid,
                    refunded,
                    currency: payment.currency.clone(),
                });
            }
            None
        }
    };
    let before = json!({
        "order": {"state": order.state.as_str(), "payment_id": payment.id},
        "payment": {
            "status": payment.status.as_str(),
            "amount": payment.amount,
            "currency": payment.currency,
            "review": payment.review,
            "refunded": payment.refunds.refunded(),
        },
        "fintoc": fintoc.map(|f| json!({
            "status": f.status.as_str(), "amount": f.amount, "currency": f.currency,
        })),
    });
    let after = json!({
        "order": {"state": request.resolve_as.order_state().as_str(), "payment_id": payment.id},
        "payment": match &acceptance {
            Some(a) => json!({
                "status": payment.status.as_str(),
                "amount": a.amount,
                "currency": a.currency,
                "requested_amount": a.requested_amount,
                "requested_currency": a.requested_currency,
                "accepted_by": request.resolution_id,
            }),
            None => json!({"status": payment.status.as_str(), "unchanged": true}),
        },
    });
    Ok(ResolutionPlan {
        order_id: request.order_id.clone(),
        resolve_as: request.resolve_as,
        payment_kind: payment.kind,
        payment_id: payment.id.clone(),
        acceptance,
        entry: AuditEntry {
            id: request.resolution_id.clone(),
            at: request.at.clone(),
            at_ms: request.at_ms,
            actor: request.actor.clone(),
            action: request.resolve_as.action().into(),
            subject: request.order_id.clone(),
            reason: request.reason.trim().to_string(),
            ticket: request.ticket.clone(),
            before,
            after,
        },
    })
}

#[cfg(test)]
mod tests;
