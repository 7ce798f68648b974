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
use super::payment::{PaymentKind, PaymentStatus, Review, ReviewReason, SessionPayment};
use super::report::{MaskedAccount, PaymentReport};
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

impl Effect {}

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
