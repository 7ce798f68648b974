//! The record engine: applies what Fintoc reports (an event, a check's answer, the
//! answer to a merchant's expire) to a stored payment exactly once.
//!
//! One loop for every use case that records, [`decide_and_write`], generic over
//! what it writes: the caller's decision plans a write on the stored state, the
//! store makes one conditional write, and a refused write returns the item it
//! found (`ALL_OLD`), on which the decision is made again — at most
//! [`MAX_WRITE_ATTEMPTS`] times. What a write did (and the anomalies a human must
//! look at) is logged here, once, by the write itself ([`LoggedWrite`]). A
//! payment's patch goes through [`record`]; a refund's change, import and
//! reservation through `app::refunds`.

use super::outcome::{written_anomalies, Anomaly, EventOutcome};
use crate::domain::transition::{Effect, PaymentPatch, PaymentState};
use crate::log_markers::ANOMALY;
use crate::store::{EventStore, StoreError, WriteResult};
use std::future::Future;

/// Most writes for one report while other writers (deliveries of the same
/// payment, the reconciler, a merchant's expire) race it.
pub const MAX_WRITE_ATTEMPTS: usize = 8;

/// What a decision on the stored state asks the engine to do.
#[derive(Debug)]
pub enum Plan<T> {
    /// Write this patch, under its guard; `effect` names what it does.
    Write {
        /// What the write does, as logs and answers name it.
        effect: Effect,
        /// The write.
        patch: Box<PaymentPatch>,
    },
    /// Nothing to write: stop here with the decision's own answer.
    Stop(T),
}

/// What became of a report.
#[derive(Debug)]
pub enum Recorded<T> {
    /// The patch was written (`result`: whether its order took the outcome).
    Written {
        /// What the write did.
        effect: Effect,
        /// What was written.
        patch: Box<PaymentPatch>,
        /// [`WriteResult::Written`] or [`WriteResult::WrittenOrderRefused`].
        result: WriteResult,
    },
    /// The decision stopped without writing, on `state` (the state it saw).
    Stopped {
        /// The decision's answer.
        answer: T,
        /// The stored state the decision was made on (`None`: no item).
        state: Option<PaymentState>,
    },
}

/// Why a report was not recorded: both are safe to retry.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// DynamoDB failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Other writers changed the payment at every attempt.
    #[error("the payment kept changing during {MAX_WRITE_ATTEMPTS} attempts")]
    KeptChanging,
}

/// What a write made without reading first left to do.
#[derive(Debug)]
pub enum FirstWrite {
    /// Written.
    Written(Recorded<std::convert::Infallible>),
    /// Refused: the stored state it returned (`None`: no item), to decide on.
    Refused(Option<PaymentState>),
}

/// Makes one write planned before anything was read (its guard states what it
/// expects of the item); a refusal returns the item to decide on with [`record`].
pub async fn write_first<S: EventStore>(
    store: &S,
    effect: Effect,
    patch: PaymentPatch,
) -> Result<FirstWrite, StoreError> {
    match store.apply(&patch).await? {
        WriteResult::Conflict(state) => Ok(FirstWrite::Refused(state)),
        result => {
            log_written(&effect, &patch, &result);
            Ok(FirstWrite::Written(Recorded::Written {
                effect,
                patch: Box::new(patch),
                result,
            }))
        }
    }
}

/// What a decision asks [`decide_and_write`] to do.
#[derive(Debug)]
pub enum Decision<W, T> {
    /// Make this conditional write.
    Write(W),
    /// Nothing to write: stop here with the decision's own answer.
    Stop(T),
}

/// What one conditional write did.
#[derive(Debug)]
pub enum WriteOutcome<S, R> {
    /// Written: what it did.
    Done(R),
    /// Refused by its condition: the state now stored (`ALL_OLD`), to decide on.
    Refused(S),
}

/// What [`decide_and_write`] came to.
#[derive(Debug)]
pub enum Decided<S, W, T, R> {
    /// `plan` was written: what the write did.
    Written {
        /// The write made.
        plan: W,
        /// What it did.
        result: R,
    },
    /// The decision stopped without writing, on `state` (the state it saw).
    Stopped {
        /// The decision's answer.
        answer: T,
        /// The state the decision was made on.
        state: S,
    },
}

/// One conditional write the engine makes on a store `St`: what it writes, what a
/// refusal returns to decide on, and what it logs once written — the one place a
/// write is logged.
pub trait ConditionalWrite<St: ?Sized>: Sized + Send + Sync {
    /// The stored state decisions are made on (what a refusal returns).
    type State: Send;
    /// What a written write did.
    type Done: Send;

    /// Makes the write under its condition: done, or refused with the state now
    /// stored.
    fn write(
        &self,
        store: &St,
    ) -> impl Future<Output = Result<WriteOutcome<Self::State, Self::Done>, StoreError>> + Send;

    /// Logs what the write did (and any anomaly it recorded).
    fn log_written(&self, done: &Self::Done);
}

/// The one decide → conditional write → decide-again loop: `decide` plans on the
/// state, the plan makes its one conditional write on `store`, and a refused
/// write's returned state is decided on again — at most [`MAX_WRITE_ATTEMPTS`]
/// times. Every record of what Fintoc reports (a payment's patch, a refund's
/// change) and every refund reservation goes through it.
pub async fn decide_and_write<St, W, T>(
    store: &St,
    mut state: W::State,
    mut decide: impl FnMut(&W::State) -> Decision<W, T>,
) -> Result<Decided<W::State, W, T, W::Done>, RecordError>
where
    St: ?Sized,
    W: ConditionalWrite<St>,
{
    for _ in 0..MAX_WRITE_ATTEMPTS {
        let plan = match decide(&state) {
            Decision::Stop(answer) => return Ok(Decided::Stopped { answer, state }),
            Decision::Write(plan) => plan,
        };
        match plan.write(store).await? {
            WriteOutcome::Refused(found) => state = found,
            WriteOutcome::Done(result) => {
                plan.log_written(&result);
                return Ok(Decided::Written { plan, result });
            }
        }
    }
    tracing::error!(
        "a payment kept changing during {MAX_WRITE_ATTEMPTS} write attempts; nothing recorded"
    );
    Err(RecordError::KeptChanging)
}

/// A payment's patch with what it does, as [`record`] writes it.
struct PaymentWrite {
    effect: Effect,
    patch: Box<PaymentPatch>,
}

impl<St: EventStore> ConditionalWrite<St> for PaymentWrite {
    type State = Option<PaymentState>;
    type Done = WriteResult;

    async fn write(
        &self,
        store: &St,
    ) -> Result<WriteOutcome<Self::State, WriteResult>, StoreError> {
        Ok(match store.apply(&self.patch).await? {
            WriteResult::Conflict(current) => WriteOutcome::Refused(current),
            result => WriteOutcome::Done(result),
        })
    }

    fn log_written(&self, result: &WriteResult) {
        log_written(&self.effect, &self.patch, result);
    }
}

/// Records a report on a payment stored as `state`: `decide` plans on the state,
/// the patch is written under its guard, and a refused write's returned item is
/// decided on again ([`decide_and_write`]).
pub async fn record<S: EventStore, T>(
    store: &S,
    state: Option<PaymentState>,
    mut decide: impl FnMut(Option<&PaymentState>) -> Plan<T>,
) -> Result<Recorded<T>, RecordError> {
    let decided = decide_and_write(store, state, |state: &Option<PaymentState>| {
        match decide(state.as_ref()) {
            Plan::Write { effect, patch } => Decision::Write(PaymentWrite { effect, patch }),
            Plan::Stop(answer) => Decision::Stop(answer),
        }
    })
    .await?;
    Ok(match decided {
        Decided::Written { plan, result } => Recorded::Written {
            effect: plan.effect,
            patch: plan.patch,
            result,
        },
        Decided::Stopped { answer, state } => Recorded::Stopped { answer, state },
    })
}

/// Logs what a written patch did, with the anomalies a human must look at (an
/// event kept as one, a payment of another amount, a payment its order did not
/// take): each line from the outcome it comes to (`app::outcome`).
fn log_written(effect: &Effect, patch: &PaymentPatch, written: &WriteResult) {
    let event_id = patch.event_id.as_str();
    let payment_id = patch.payment_id.as_str();
    match effect {
        Effect::ConflictingFinal { current, claimed } | Effect::Late { current, claimed } => {
            match EventOutcome::of_effect(effect).anomaly() {
                Some(kind) => tracing::error!(
                    event_id,
                    payment_id,
                    current = current.as_str(),
                    claimed = claimed.as_str(),
                    "{ANOMALY}: {}",
                    kind.describe()
                ),
                None => tracing::warn!(
                    event_id,
                    payment_id,
                    current = current.as_str(),
                    claimed = claimed.as_str(),
                    "late event noted; status unchanged"
                ),
            }
        }
        Effect::ModeMismatch { stored, stated } => tracing::error!(
            event_id,
            payment_id,
            stored = stored.as_str(),
            stated = stated.as_str(),
            "{ANOMALY}: {}",
            Anomaly::ModeMismatch.describe()
        ),
        Effect::Transition { to, .. } => {
            tracing::info!(event_id, payment_id, to = to.as_str(), "status changed")
        }
        Effect::Create { status } => tracing::warn!(
            event_id,
            payment_id,
            status = status.as_str(),
            "payment unknown here: created from the event"
        ),
        Effect::SameStatus | Effect::Duplicate => {
            tracing::info!(event_id, payment_id, "event recorded")
        }
    }
    for kind in written_anomalies(patch, written) {
        let order_id = patch.order.as_ref().map_or("", |o| o.order_id.as_str());
        match &patch.review {
            Some(review) if kind == Anomaly::AmountMismatch => tracing::error!(
                event_id, payment_id, order_id, reason = review.reason.as_str(), detail = %review.detail,
                "{ANOMALY}: {}", kind.describe()
            ),
            _ => tracing::error!(
                event_id,
                payment_id,
                order_id,
                "{ANOMALY}: {}",
                kind.describe()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::payment::PaymentStatus;
    use crate::domain::report::PaymentReport;
    use crate::domain::transition::{plan_write, EventRef, Source};
    use crate::store::memory::MemoryStore;
    use std::cell::Cell;

    fn report(status: &str) -> PaymentReport {
        PaymentReport {
            id: "pi_1".into(),
            status: Some(PaymentStatus::parse(status)),
            amount: Some(100),
            currency: Some("CLP".into()),
            ..PaymentReport::default()
        }
    }

    fn event(id: &str) -> EventRef<'_> {
        EventRef {
            id,
            event_type: "payment_intent.x",
            created_at: None,
            source: Source::Webhook,
        }
    }

    fn plan(state: Option<&PaymentState>, event_id: &str, status: &str) -> Plan<Effect> {
        let report = report(status);
        let claimed = report.status.clone().unwrap();
        match plan_write(state, &event(event_id), &claimed, &report, "now") {
            (effect, Some(patch)) => Plan::Write {
                effect,
                patch: Box::new(patch),
            },
            (effect, None) => Plan::Stop(effect),
        }
    }

    #[tokio::test]
    async fn a_refused_write_is_decided_again_on_the_item_it_returned() {
        let store = MemoryStore::default();
        let first = record(&store, None, |s| plan(s, "evt_1", "pending")).await;
        assert!(matches!(first, Ok(Recorded::Written { .. })));
        // Decided on a stale read (no item): the write is refused, and the event
        // is decided again on the stored item, once.
        let decisions = Cell::new(0);
        let second = record(&store, None, |s| {
            decisions.set(decisions.get() + 1);
            plan(s, "evt_2", "succeeded")
        })
        .await
        .unwrap();
        assert_eq!(decisions.get(), 2);
        let Recorded::Written { effect, .. } = second else {
            panic!("written after one refusal");
        };
        assert_eq!(
            effect,
            Effect::Transition {
                from: PaymentStatus::Pending,
                to: PaymentStatus::Succeeded
            }
        );
        assert_eq!(
            store.intent("pi_1").unwrap().status,
            Some(PaymentStatus::Succeeded)
        );
        // A duplicate stops without a write, on the state it saw.
        let again = record(&store, None, |s| plan(s, "evt_2", "succeeded")).await;
        let Ok(Recorded::Stopped { answer, state }) = again else {
            panic!("a duplicate is not written");
        };
        assert_eq!(answer, Effect::Duplicate);
        assert_eq!(state.unwrap().version, 2);
    }

    #[tokio::test]
    async fn a_payment_that_keeps_changing_is_not_recorded_after_the_bound() {
        let store = MemoryStore::default();
        record(&store, None, |s| plan(s, "evt_1", "pending"))
            .await
            .unwrap();
        let decisions = Cell::new(0);
        // A decision that ignores what it is shown: every write is refused.
        let outcome = record(&store, None, |_| {
            decisions.set(decisions.get() + 1);
            plan(None, "evt_2", "succeeded")
        })
        .await;
        assert!(matches!(outcome, Err(RecordError::KeptChanging)));
        assert_eq!(decisions.get(), MAX_WRITE_ATTEMPTS);
        assert_eq!(
            store.intent("pi_1").unwrap().status,
            Some(PaymentStatus::Pending)
        );
    }
}
