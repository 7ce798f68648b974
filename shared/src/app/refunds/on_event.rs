//! A `refund.*` event: which refund it names (this backend's id in its metadata,
//! else Fintoc's id on its payment's record), whether its mode fits its payment's,
//! and what becomes of it — recorded, imported (a refund made elsewhere of a
//! payment held here), or kept apart (a payment not held here, another mode).

use super::*;
use crate::app::outcome::{Anomaly, EventOutcome};
use crate::domain::deployment::{ForeignEvent, ForeignReason};
use crate::domain::reconcile::refund_target;
use crate::domain::refund::refund_event_mode_fits;
use crate::webhook::event::Event;

/// What recording a refund event did, as the webhook answers it.
fn outcome_of(recorded: RefundRecorded) -> EventOutcome {
    match recorded {
        RefundRecorded::Changed => EventOutcome::RefundRecorded,
        RefundRecorded::Unchanged => EventOutcome::RefundUnchanged,
        RefundRecorded::Anomaly => EventOutcome::Anomaly(Anomaly::Refund),
        RefundRecorded::Deferred => EventOutcome::RefundDeferred,
        RefundRecorded::Unknown => EventOutcome::KeptApart,
    }
}

/// Records the refund `event` reports (`report`, read from it) on the refund its
/// metadata names (one made here), or on the one of its payment with its Fintoc
/// id; a refund made elsewhere of a payment held here is imported (reserved like
/// the others: one beyond what is refundable is an `ANOMALY`); a refund of a
/// payment this deployment does not hold, or of the other mode than its
/// payment's, is kept apart.
pub async fn on_refund_event<S: EventStore + PaymentStore + RefundStore>(
    store: &S,
    event: &Event,
    report: &RefundReport,
    now_ms: i64,
) -> Result<EventOutcome, StoreError> {
    let mut found = None;
    if let Some(target) = refund_target(report) {
        let payment = payment_of_refund(store, &target).await?;
        let fits = |p: &StoredPayment| {
            refund_event_mode_fits(event.mode.as_deref(), report, p.mode.as_deref())
        };
        if let Some(payment) = payment.as_ref().filter(|p| !fits(p)) {
            tracing::warn!(event_id = %event.id, payment_id = %payment.id, fintoc_refund_id = %report.id, "refund event of the other mode than its payment's: kept apart, not applied");
            return keep_apart(store, event, report, ForeignReason::ModeMismatch, now_ms).await;
        }
        found = payment.map(|payment| (payment, target.key));
    }
    let Some((payment, key)) = found else {
        tracing::warn!(event_id = %event.id, fintoc_refund_id = %report.id, "refund event kept apart: its payment is not held here");
        return keep_apart(store, event, report, ForeignReason::UnknownRefund, now_ms).await;
    };
    match record_or_import(store, &payment, key.as_ref(), report, now_ms).await? {
        RefundRecorded::Unknown => {
            keep_apart(store, event, report, ForeignReason::UnknownRefund, now_ms).await
        }
        recorded => Ok(outcome_of(recorded)),
    }
}

/// Keeps a refund event that is not this deployment's to apply apart (once).
async fn keep_apart<S: EventStore>(
    store: &S,
    event: &Event,
    report: &RefundReport,
    reason: ForeignReason,
    now_ms: i64,
) -> Result<EventOutcome, StoreError> {
    let foreign = ForeignEvent {
        event_id: event.id.clone(),
        event_type: event.event_type.clone(),
        intent_id: report.resource_id.clone().unwrap_or_default(),
        reason,
        mode: event.mode.clone().or(report.mode.clone()),
        tag: None,
        received_at_ms: now_ms,
    };
    store.keep_apart(&foreign).await?;
    Ok(EventOutcome::KeptApart)
}
