//! What became of a report Fintoc sent (an event): one typed outcome, from which
//! the webhook's answer, its metrics and the anomaly log lines are derived — so a
//! new kind of anomaly cannot be left out of the `Anomalies` metric.

use crate::domain::transition::{Effect, PaymentPatch};
use crate::store::WriteResult;

/// Something kept for a human (logged with `log_markers::ANOMALY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Anomaly {
    /// A final event that contradicts the final status: not applied.
    ConflictingFinal,
    /// An event stating another mode than its payment's: not applied.
    ModeMismatch,
    /// A payment of another amount or currency than requested: its order is held
    /// for review.
    AmountMismatch,
    /// A payment its order did not take (paid already, or by another payment).
    OrderRefused,
    /// A refund that contradicts the stored one, or one made elsewhere beyond
    /// what is refundable: not applied.
    Refund,
}

impl Anomaly {
    /// Every kind (the checks iterate it).
    pub const ALL: [Self; 5] = [
        Self::ConflictingFinal,
        Self::ModeMismatch,
        Self::AmountMismatch,
        Self::OrderRefused,
        Self::Refund,
    ];

    /// What a person is told of it, after the marker.
    pub fn describe(self) -> &'static str {
        match self {
            Self::ConflictingFinal => "conflicting final event kept on the payment; the status was not changed — a human must check this payment",
            Self::ModeMismatch => "an event states another mode than the payment's own; kept on the payment, not applied — a human must check where it came from",
            Self::AmountMismatch => "a payment of another amount or currency than requested; its order is held for review, not paid — a human must check it",
            Self::OrderRefused => "a payment its order did not take (paid already, or by another payment); kept on the order — a human must check it and refund",
            Self::Refund => "a refund that contradicts the stored one or exceeds what is refundable; kept for a human",
        }
    }
}

/// What became of a delivered event. A write that moved a payment and recorded
/// an anomaly with it (a payment of another amount, one its order did not take)
/// is `Applied` or `Created`, with that anomaly beside it ([`written_anomalies`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventOutcome {
    /// A payment unknown here, created from the event.
    Created,
    /// The payment's status moved.
    Applied,
    /// The same status again under another event id: the id recorded.
    Recorded,
    /// The event was applied already.
    Duplicate,
    /// A non-final event older than the current status: noted.
    Late,
    /// An event type this backend does not act on.
    Ignored,
    /// Not this deployment's to apply: kept apart, once.
    KeptApart,
    /// A refund's status recorded (or a refund made elsewhere imported).
    RefundRecorded,
    /// Nothing new of a refund.
    RefundUnchanged,
    /// A refund made elsewhere that waits on one of this backend's.
    RefundDeferred,
    /// Kept for a human, not applied.
    Anomaly(Anomaly),
}

impl EventOutcome {
    /// Every outcome; [`Anomaly::ALL`] holds every anomaly (the checks iterate both).
    pub const ALL: [Self; 13] = [
        Self::Created,
        Self::Applied,
        Self::Recorded,
        Self::Duplicate,
        Self::Late,
        Self::Ignored,
        Self::KeptApart,
        Self::RefundRecorded,
        Self::RefundUnchanged,
        Self::RefundDeferred,
        Self::Anomaly(Anomaly::ConflictingFinal),
        Self::Anomaly(Anomaly::ModeMismatch),
        Self::Anomaly(Anomaly::Refund),
    ];

    /// The name the webhook answers Fintoc with.
    pub fn name(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Applied => "applied",
            Self::Recorded => "recorded",
            Self::Duplicate => "duplicate",
            Self::Late => "late",
            Self::Ignored => "ignored",
            Self::KeptApart => "kept_apart",
            Self::RefundRecorded => "refund_recorded",
            Self::RefundUnchanged => "refund_unchanged",
            Self::RefundDeferred => "refund_deferred",
            Self::Anomaly(Anomaly::Refund) => "refund_anomaly",
            Self::Anomaly(_) => "anomaly",
        }
    }

    /// Whether the event moved a payment (created it, or its status).
    pub fn applied(self) -> bool {
        matches!(self, Self::Created | Self::Applied)
    }

    /// The anomaly kept for a person, if the event was one.
    pub fn anomaly(self) -> Option<Anomaly> {
        match self {
            Self::Anomaly(kind) => Some(kind),
            _ => None,
        }
    }

    /// What a decision's effect on a payment comes to.
    pub fn of_effect(effect: &Effect) -> Self {
        match effect {
            Effect::Duplicate => Self::Duplicate,
            Effect::Create { .. } => Self::Created,
            Effect::Transition { .. } => Self::Applied,
            Effect::SameStatus => Self::Recorded,
            Effect::Late { .. } => Self::Late,
            Effect::ConflictingFinal { .. } => Self::Anomaly(Anomaly::ConflictingFinal),
            Effect::ModeMismatch { .. } => Self::Anomaly(Anomaly::ModeMismatch),
        }
    }
}

/// The anomalies a written patch recorded with its move: a payment of another
/// amount (the patch holds it for review), one its order did not take.
pub fn written_anomalies(
    patch: &PaymentPatch,
    result: &WriteResult,
) -> impl Iterator<Item = Anomaly> {
    [
        patch.review.as_ref().map(|_| Anomaly::AmountMismatch),
        (*result == WriteResult::WrittenOrderRefused).then_some(Anomaly::OrderRefused),
    ]
    .into_iter()
    .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// Each outcome's place in [`EventOutcome::ALL`]: a match with no wildcard, so a
    /// new variant does not compile until it is placed (and counted) there.
    fn position(outcome: EventOutcome) -> usize {
        use Anomaly as A;
        use EventOutcome as O;
        match outcome {
            O::Created => 0,
            O::Applied => 1,
            O::Recorded => 2,
            O::Duplicate => 3,
            O::Late => 4,
            O::Ignored => 5,
            O::KeptApart => 6,
            O::RefundRecorded => 7,
            O::RefundUnchanged => 8,
            O::RefundDeferred => 9,
            O::Anomaly(A::ConflictingFinal) => 10,
            O::Anomaly(A::ModeMismatch) => 11,
            O::Anomaly(A::Refund) => 12,
            // Recorded beside a move, never an outcome of their own.
            O::Anomaly(A::AmountMismatch | A::OrderRefused) => usize::MAX,
        }
    }

    fn anomaly_position(kind: Anomaly) -> usize {
        match kind {
            Anomaly::ConflictingFinal => 0,
            Anomaly::ModeMismatch => 1,
            Anomaly::AmountMismatch => 2,
            Anomaly::OrderRefused => 3,
            Anomaly::Refund => 4,
        }
    }

    #[test]
    fn all_holds_every_outcome_and_every_anomaly_once() {
        for (i, outcome) in EventOutcome::ALL.into_iter().enumerate() {
            assert_eq!(position(outcome), i, "{outcome:?}");
        }
        for (i, kind) in Anomaly::ALL.into_iter().enumerate() {
            assert_eq!(anomaly_position(kind), i, "{kind:?}");
        }
    }

    #[test]
    fn anomalies_are_named_as_such_and_other_outcomes_each_their_own_name() {
        for outcome in EventOutcome::ALL {
            assert_eq!(
                outcome.name().contains("anomaly"),
                outcome.anomaly().is_some(),
                "{outcome:?}"
            );
        }
        let names: HashSet<_> = EventOutcome::ALL
            .iter()
            .filter(|o| o.anomaly().is_none())
            .map(|o| o.name())
            .collect();
        assert_eq!(names.len(), 10);
    }
}
