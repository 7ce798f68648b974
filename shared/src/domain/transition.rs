//! The intent state machine as webhooks drive it: pure, so every rule is unit-tested.
//!
//! - an event id already applied changes nothing;
//! - non-final statuses move forward (`created` → `in_progress` → `requires_action` →
//!   `pending`), never back;
//! - a final status (`succeeded`, `failed`, `rejected`, `expired`) is never left: a
//!   conflicting final event is kept as an anomaly, a late non-final one is noted;
//! - an intent the table does not know is created from the event.
//!
//! [`decide`] names the effect; [`plan_write`] turns it into the [`PaymentPatch`] that
//! one conditional write applies: every field an event writes is chosen here, and
//! the store only renders the patch.

use super::order::{OrderOutcome, OrderPatch};
use super::payment::{PaymentStatus, Review, ReviewReason};
pub use super::payment_patch::{
    CreatedFromEvent, EventNote, Expectation, NoteList, Outcome, PaymentPatch, PaymentState,
    Source, WriteGuard,
};
use super::report::PaymentReport;
use super::schedule::ScheduleChange;
use std::collections::BTreeSet;

/// What one event does to one intent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// The event id was already applied: nothing to write.
    Duplicate,
    /// The intent is unknown here: create it from the event's data.
    Create {
        /// Status to create it with.
        status: PaymentStatus,
    },
    /// The status moves.
    Transition {
        /// Status before.
        from: PaymentStatus,
        /// Status after.
        to: PaymentStatus,
    },
    /// Same status again under another event id: only the id is recorded.
    SameStatus,
    /// A final event that contradicts the final status: kept as an anomaly for a human.
    ConflictingFinal {
        /// The final status, which stays.
        current: PaymentStatus,
        /// What the event claimed.
        claimed: PaymentStatus,
    },
    /// A non-final event older than the current status: noted, status unchanged.
    Late {
        /// Status, which stays.
        current: PaymentStatus,
        /// What the event claimed.
        claimed: PaymentStatus,
    },
    /// An event that states another mode than the payment's own (a `live` event
    /// about a `test` payment, or the reverse): kept as an anomaly, never applied.
    ModeMismatch {
        /// The payment's mode.
        stored: String,
        /// The mode the event stated.
        stated: String,
    },
}

/// Order of non-final statuses; unknown ones rank lowest, finals highest.
fn rank(status: &PaymentStatus) -> u8 {
    match status {
        PaymentStatus::Other(_) | PaymentStatus::Created => 0,
        PaymentStatus::InProgress => 1,
        PaymentStatus::RequiresAction => 2,
        PaymentStatus::Pending => 3,
        PaymentStatus::Succeeded
        | PaymentStatus::Failed
        | PaymentStatus::Rejected
        | PaymentStatus::Expired => 4,
    }
}

/// Decides the effect of event `event_id` claiming `claimed` on `current`.
pub fn decide(current: Option<&PaymentState>, event_id: &str, claimed: &PaymentStatus) -> Effect {
    let Some(current) = current else {
        return Effect::Create {
            status: claimed.clone(),
        };
    };
    if current.applied_event_ids.contains(event_id) {
        return Effect::Duplicate;
    }
    if &current.status == claimed {
        return Effect::SameStatus;
    }
    if current.status.is_final() {
        return if claimed.is_final() {
            Effect::ConflictingFinal {
                current: current.status.clone(),
                claimed: claimed.clone(),
            }
        } else {
            Effect::Late {
                current: current.status.clone(),
                claimed: claimed.clone(),
            }
        };
    }
    if claimed.is_final() || rank(claimed) > rank(&current.status) {
        Effect::Transition {
            from: current.status.clone(),
            to: claimed.clone(),
        }
    } else {
        Effect::Late {
            current: current.status.clone(),
            claimed: claimed.clone(),
        }
    }
}

/// The event being applied, as the decision needs it.
#[derive(Debug, Clone, Copy)]
pub struct EventRef<'a> {
    /// `evt_...`: recorded so a redelivery is a duplicate.
    pub id: &'a str,
    /// e.g. `payment_intent.succeeded`.
    pub event_type: &'a str,
    /// When Fintoc created the event.
    pub created_at: Option<&'a str>,
    /// Who reported it.
    pub source: Source,
}

/// What `created_by` says of an intent created from an event.
pub const CREATED_BY_WEBHOOK: &str = "webhook";

fn outcome(event: &EventRef<'_>, report: &PaymentReport, now: &str) -> Outcome {
    Outcome {
        error_reason: report.error_reason.clone(),
        transaction_date: report.transaction_date.clone(),
        reference_id: report.reference_id.clone(),
        sender_account: report.sender_account.as_ref().map(|a| a.masked()),
        reported_amount: report.amount,
        reported_currency: report.currency.as_ref().map(|c| c.to_ascii_uppercase()),
        event_id: event.id.to_string(),
        event_created_at: event.created_at.map(str::to_string),
        finalized_at: now.to_string(),
        decided_by: event.source,
    }
}

fn note(
    list: NoteList,
    event: &EventRef<'_>,
    claimed: &PaymentStatus,
    report: &PaymentReport,
    now: &str,
) -> EventNote {
    EventNote {
        list,
        event_id: event.id.to_string(),
        event_type: event.event_type.to_string(),
        claimed_status: claimed.clone(),
        received_at: now.to_string(),
        error_reason: report.error_reason.clone(),
    }
}

/// Whether Fintoc reported a payment of another amount or currency than the create
/// requested (as far as both are known): the review, with the detail.
fn amount_mismatch(current: Option<&PaymentState>, report: &PaymentReport) -> Option<Review> {
    let (amount, currency) = current?.requested.as_ref()?;
    let reported_amount = report.amount;
    let reported_currency = report.currency.as_ref().map(|c| c.to_ascii_uppercase());
    let differs = reported_amount.is_some_and(|a| a != *amount)
        || reported_currency.as_ref().is_some_and(|c| c != currency);
    differs.then(|| Review {
        reason: ReviewReason::AmountMismatch,
        detail: format!(
            "requested {amount} {currency}, Fintoc reported {} {}",
            reported_amount.map_or("?".into(), |a| a.to_string()),
            reported_currency.unwrap_or_else(|| "?".into())
        ),
    })
}

/// The write a new event makes before anything is read: the transition `claimed`
/// asks for, under an [`Expectation`] that holds exactly on the stored states from
/// which [`plan_write`] makes that same write (its version aside). `None` when no
/// stored state moves to `claimed` (`created`, or an unknown status): such an event
/// is decided on the item read first.
///
/// When the expectation fails, the write returns the item (`ALL_OLD`) and the event
/// is decided on it by [`plan_write`], as any conflict is.
pub fn plan_write_first(
    event: &EventRef<'_>,
    claimed: &PaymentStatus,
    report: &PaymentReport,
    now: &str,
) -> Option<PaymentPatch> {
    if !claimed.is_final() && rank(claimed) == 0 {
        return None;
    }
    let currency = report.currency.as_ref().map(|c| c.to_ascii_uppercase());
    let order_id = report.metadata.get("order_id").cloned();
    // A stored state the expectation accepts and from which the event moves: the
    // patch plan_write makes from it is the one made from every accepted state.
    let representative = PaymentState {
        status: PaymentStatus::Created,
        applied_event_ids: BTreeSet::new(),
        version: 0,
        requested: report.amount.zip(currency.clone()),
        order_id: order_id.clone(),
        mode: stated_mode(report).map(str::to_string),
        session_attempt: None,
    };
    let (effect, patch) = plan_write(Some(&representative), event, claimed, report, now);
    debug_assert!(matches!(effect, Effect::Transition { .. }));
    let mut patch = patch?;
    let finals = [
        PaymentStatus::Succeeded,
        PaymentStatus::Failed,
        PaymentStatus::Rejected,
        PaymentStatus::Expired,
    ];
    let known_not_final = [
        PaymentStatus::Created,
        PaymentStatus::InProgress,
        PaymentStatus::RequiresAction,
        PaymentStatus::Pending,
    ];
    let mut status_not_in: Vec<PaymentStatus> = finals.to_vec();
    if !claimed.is_final() {
        status_not_in.extend(
            known_not_final
                .into_iter()
                .filter(|s| rank(s) >= rank(claimed)),
        );
    }
    patch.guard = WriteGuard::Expected(Box::new(Expectation {
        event_id: event.id.to_string(),
        status_not_in,
        order_id: claimed.is_final().then_some(order_id),
        reported: (*claimed == PaymentStatus::Succeeded).then_some((report.amount, currency)),
        mode: stated_mode(report).map(str::to_string),
    }));
    Some(patch)
}

/// The mode a report states, when it is one Fintoc has (`live` | `test`): an
/// unreadable one states nothing.
pub fn stated_mode(report: &PaymentReport) -> Option<&str> {
    report
        .mode
        .as_deref()
        .filter(|m| matches!(*m, "live" | "test"))
}

/// The anomaly of a new event that states another mode than the stored payment's.
fn mode_mismatch(
    current: Option<&PaymentState>,
    event_id: &str,
    report: &PaymentReport,
) -> Option<Effect> {
    let current = current?;
    let stored = current.mode.as_deref()?;
    let stated = stated_mode(report)?;
    (stated != stored && !current.applied_event_ids.contains(event_id)).then(|| {
        Effect::ModeMismatch {
            stored: stored.to_string(),
            stated: stated.to_string(),
        }
    })
}

/// Decides what event `event`, claiming `claimed` about `report`'s intent, does to
/// `current`, and the patch that writes it (`None` for a duplicate: nothing to write).
pub fn plan_write(
    current: Option<&PaymentState>,
    event: &EventRef<'_>,
    claimed: &PaymentStatus,
    report: &PaymentReport,
    now: &str,
) -> (Effect, Option<PaymentPatch>) {
    let effect = mode_mismatch(current, event.id, report)
        .unwrap_or_else(|| decide(current, event.id, claimed));
    let mut patch = PaymentPatch {
        payment_id: report.id.clone(),
        kind: report.kind,
        session_payment: None,
        guard: current.map_or(WriteGuard::Absent, |s| WriteGuard::Version(s.version)),
        version: current.map_or(1, |s| s.version + 1),
        updated_at: now.to_string(),
        event_id: event.id.to_string(),
        status: None,
        created: None,
        outcome: None,
        note: None,
        order: None,
        review: None,
        schedule: ScheduleChange::Unchanged,
    };
    match &effect {
        Effect::Duplicate => return (effect, None),
        Effect::Create { status } => {
            patch.status = Some(status.clone());
            patch.created = Some(CreatedFromEvent {
                amount: report.amount,
                currency: report.currency.as_ref().map(|c| c.to_ascii_uppercase()),
                metadata: report.metadata.clone(),
                order_id: report.metadata.get("order_id").cloned(),
                mode: report.mode.clone(),
                customer_email: report.customer_email.clone(),
                created_at: report.created_at.clone().unwrap_or_else(|| now.to_string()),
            });
            if status.is_final() {
                patch.outcome = Some(outcome(event, report, now));
            }
        }
        Effect::Transition { to, .. } => {
            patch.status = Some(to.clone());
            if to.is_final() {
                patch.outcome = Some(outcome(event, report, now));
            }
        }
        Effect::SameStatus => {}
        Effect::ConflictingFinal { .. } | Effect::ModeMismatch { .. } => {
            patch.note = Some(note(NoteList::Anomalies, event, claimed, report, now));
        }
        Effect::Late { .. } => {
            patch.note = Some(note(NoteList::LateEvents, event, claimed, report, now));
        }
    }
    // A session's payment is its latest attempt while it is open; the attempt
    // that decided its final status is never replaced.
    let open = current.is_none_or(|s| !s.status.is_final());
    if matches!(effect, Effect::Create { .. } | Effect::Transition { .. })
        || (effect == Effect::SameStatus && open)
    {
        patch.session_payment = report.session_payment.clone();
    }
    if patch.outcome.is_some() {
        patch.schedule = ScheduleChange::Clear;
    }
    if *claimed == PaymentStatus::Succeeded && patch.outcome.is_some() {
        patch.review = amount_mismatch(current, report);
    }
    if let (Some(status), Some(_)) = (&patch.status, &patch.outcome) {
        let order_id = match current {
            Some(state) => state.order_id.clone(),
            None => report.metadata.get("order_id").cloned(),
        };
        let outcome = match (status, &patch.review) {
            (_, Some(_)) => OrderOutcome::Review,
            (PaymentStatus::Succeeded, None) => OrderOutcome::Paid,
            _ => OrderOutcome::Closed,
        };
        patch.order = order_id.map(|order_id| OrderPatch {
            kind: report.kind,
            order_id,
            intent_id: report.id.clone(),
            outcome,
            if_refused: outcome.if_refused(),
            at: now.to_string(),
        });
    }
    (effect, Some(patch))
}

#[cfg(test)]
mod tests;
