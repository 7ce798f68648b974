//! The patch one event's conditional write applies to a payment: its guard (what
//! the write expects of the stored item), the fields it sets — outcome, notes,
//! review, order, schedule — decided by `domain::transition` and only rendered by
//! the store.

use super::order::OrderPatch;
use super::payment::{PaymentKind, PaymentStatus, Review, ReviewReason, SessionPayment};
use super::report::MaskedAccount;
use super::schedule::ScheduleChange;
use std::collections::{BTreeMap, BTreeSet};

/// What a webhook needs to know of a stored intent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentState {
    /// Current status.
    pub status: PaymentStatus,
    /// Event ids applied so far.
    pub applied_event_ids: BTreeSet<String>,
    /// Optimistic-concurrency version: every webhook write increments it.
    pub version: u64,
    /// What was requested, once the create recorded it: `(amount, currency)`.
    pub requested: Option<(u64, String)>,
    /// The order the create bound the intent to: the only order its outcome pays
    /// or closes (an event's metadata never overrides it).
    pub order_id: Option<String>,
    /// Fintoc's `mode` of the payment (`live` | `test`), once known: an event that
    /// states the other one is never applied to it.
    pub mode: Option<String>,
    /// A session's: the payment intent recorded as its payment (its latest
    /// attempt while open; once final, the one that decided it, never changed).
    pub session_attempt: Option<String>,
}

impl PaymentState {
    /// Whether a report of attempt `intent_id` claiming `claimed` is this
    /// session's own payment: not a success of another attempt once the session's
    /// outcome is recorded (paid by another attempt, or expired). Such a success is
    /// a second payment, recorded as a payment of its own (held for review,
    /// refundable in full), never as the session's.
    pub fn takes_attempt(&self, intent_id: &str, claimed: &PaymentStatus) -> bool {
        !(self.status.is_final()
            && *claimed == PaymentStatus::Succeeded
            && self.session_attempt.as_deref() != Some(intent_id))
    }
}

/// Who reported an outcome: stored with it as `decided_by`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A signed webhook event.
    Webhook,
    /// The reconciler, asking Fintoc for the intent.
    Reconciliation,
    /// The merchant's own request (expiring a session), as Fintoc answered it.
    Merchant,
}

impl Source {
    /// Stable name, stored and logged.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Webhook => "webhook",
            Self::Reconciliation => "reconciliation",
            Self::Merchant => "merchant",
        }
    }
}

/// What the stored item must look like for a patch to apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteGuard {
    /// No item yet (the intent is created from the event).
    Absent,
    /// The item still has the version the decision was made on.
    Version(u64),
    /// A write made before any read ([`plan_write_first`]): the item is in one of
    /// the states on which [`plan_write`] makes exactly this write; its version is
    /// incremented, whatever it is.
    Expected(Box<Expectation>),
}

/// The states of a stored item on which a write-first patch is exactly what
/// [`plan_write`] would write: the condition of the one `UpdateItem` a new event
/// costs, derived from [`decide`] (and checked against it by a property test).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectation {
    /// The event id is not applied yet.
    pub event_id: String,
    /// The stored status is none of these (every status from which [`decide`] does
    /// not move to the claimed one: the finals, and the known ones ranked at or
    /// above it). Unknown stored statuses rank lowest, so they move.
    pub status_not_in: Vec<PaymentStatus>,
    /// For a final outcome: the order the item is bound to (`None`: bound to none),
    /// which the write pays or closes.
    pub order_id: Option<Option<String>>,
    /// For a success: what the payment reported, which must not contradict what
    /// was requested (`amount`, `currency`, as far as each is reported).
    pub reported: Option<(Option<u64>, Option<String>)>,
    /// The mode the event stated, when it states one: the item's mode must be
    /// absent or the same.
    pub mode: Option<String>,
}

impl Expectation {
    /// Whether a stored item in `state` meets the expectation (what the store's
    /// condition expression checks).
    pub fn accepts(&self, state: &PaymentState) -> bool {
        let event_new = !state.applied_event_ids.contains(&self.event_id);
        let status_moves = !self.status_not_in.contains(&state.status);
        let order_matches = self
            .order_id
            .as_ref()
            .is_none_or(|order| state.order_id == *order);
        let amount_agrees = match (&self.reported, &state.requested) {
            (Some((amount, currency)), Some((requested, requested_currency))) => {
                amount.is_none_or(|a| a == *requested)
                    && currency.as_ref().is_none_or(|c| c == requested_currency)
            }
            _ => true,
        };
        let mode_agrees = match (&self.mode, &state.mode) {
            (Some(stated), Some(stored)) => stated == stored,
            _ => true,
        };
        event_new && status_moves && order_matches && amount_agrees && mode_agrees
    }
}

/// The fields of an intent created from an event (it was unknown here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedFromEvent {
    /// Minor units, only when the event says (never invented).
    pub amount: Option<u64>,
    /// Uppercase currency, only when the event says.
    pub currency: Option<String>,
    /// The event's metadata.
    pub metadata: BTreeMap<String, String>,
    /// `metadata.order_id`, when present.
    pub order_id: Option<String>,
    /// `live` | `test`.
    pub mode: Option<String>,
    /// Payer's email.
    pub customer_email: Option<String>,
    /// The intent's creation time, or now.
    pub created_at: String,
}

/// How a final status was reached, stored with it for the merchant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Why an unpaid intent ended so.
    pub error_reason: Option<String>,
    /// The bank's operation date.
    pub transaction_date: Option<String>,
    /// The bank's operation number.
    pub reference_id: Option<String>,
    /// The payer's account, masked.
    pub sender_account: Option<MaskedAccount>,
    /// The amount Fintoc reported for the payment.
    pub reported_amount: Option<u64>,
    /// The currency Fintoc reported, uppercase.
    pub reported_currency: Option<String>,
    /// The event that decided it.
    pub event_id: String,
    /// When Fintoc created that event.
    pub event_created_at: Option<String>,
    /// When this backend recorded it.
    pub finalized_at: String,
    /// Who reported it.
    pub decided_by: Source,
}

/// Which list of notes an event is kept in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoteList {
    /// `anomalies`: a final event contradicting the final status; a human must look.
    Anomalies,
    /// `late_events`: a non-final event older than the current status.
    LateEvents,
}

/// An event kept on the intent without changing its status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventNote {
    /// The list it goes to.
    pub list: NoteList,
    /// The event's id.
    pub event_id: String,
    /// The event's type.
    pub event_type: String,
    /// The status the event claimed.
    pub claimed_status: PaymentStatus,
    /// When it was received.
    pub received_at: String,
    /// The reason the event carried, if any.
    pub error_reason: Option<String>,
}

/// Everything one event writes to one intent, in one conditional write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentPatch {
    /// The payment written: an intent's id, or a session's.
    pub payment_id: String,
    /// Which record: an intent's, or a session's.
    pub kind: PaymentKind,
    /// A session's payment intent and its status, when the event reports it and
    /// moves or confirms the session's status (never from a late event).
    pub session_payment: Option<SessionPayment>,
    /// The condition of the write.
    pub guard: WriteGuard,
    /// The version after the write.
    pub version: u64,
    /// Now (RFC 3339), as `updated_at`.
    pub updated_at: String,
    /// The event id added to the applied set.
    pub event_id: String,
    /// The new status, when it changes (or is set at creation).
    pub status: Option<PaymentStatus>,
    /// The intent's fields, when it is created from the event.
    pub created: Option<CreatedFromEvent>,
    /// The outcome, when the status becomes final.
    pub outcome: Option<Outcome>,
    /// A note, for an anomaly or a late event.
    pub note: Option<EventNote>,
    /// What the outcome does to the intent's order, when it is final and the
    /// intent names its order.
    pub order: Option<OrderPatch>,
    /// Why the payment needs a human (another amount or currency than
    /// requested): recorded on it; it never pays its order, which is held for
    /// review instead.
    pub review: Option<Review>,
    /// What the write does to the intent's check schedule: a final status clears it.
    pub schedule: ScheduleChange,
}

impl PaymentPatch {
    /// What is written of the payment when its order refuses the outcome and
    /// keeps the payment as an anomaly ([`super::order::IfRefused::KeepAsAnomaly`]):
    /// the same patch, the payment marked for review as a second payment (unless
    /// it needs review already, for a reason that stays).
    pub fn kept_as_anomaly(&self) -> PaymentPatch {
        let mut patch = self.clone();
        if let Some(order) = &self.order {
            patch.review.get_or_insert_with(|| Review {
                reason: ReviewReason::SecondPayment,
                detail: format!(
                    "order {} did not take this payment: it is paid or in review, or waits for another payment",
                    order.order_id
                ),
            });
        }
        patch
    }
}
