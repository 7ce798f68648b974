//! The storage ports the use cases call — one trait per thing stored (idempotency
//! records, payments, orders, events, the check schedule, refunds, and a create's
//! combined writes) — with the requests they take and what they answer. Nothing
//! here names an adapter: DynamoDB (`store::dynamo`) and memory (`store::memory`)
//! implement them.

use crate::domain::deployment::ForeignEvent;
use crate::domain::idempotency::{
    AcquireOutcome, AcquireRequest, CompleteRequest, IdempotencyKey, LeaseId, ReservationId,
};
use crate::domain::order::{OpenRequest, OrderRecord, ReserveOutcome, ReserveRequest};
use crate::domain::payment::{PaymentKind, StoredPayment};
use crate::domain::reconcile::ScheduleUpdate;
use crate::domain::refund::{RefundKey, RefundStatus, StoredRefund};
use crate::domain::schedule::CheckSchedule;
use crate::domain::transition::{PaymentPatch, PaymentState};
use std::future::Future;

/// Any error, boxed, kept as the source of a [`StoreError`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// DynamoDB could not be reached or refused the call (throttling, outage, ...).
    #[error("DynamoDB unavailable during {operation}")]
    Unavailable {
        /// The store operation that failed.
        operation: &'static str,
        /// What the SDK reported.
        #[source]
        source: BoxError,
    },
    /// An item that does not have the expected shape.
    #[error("stored item is malformed: {0}")]
    Malformed(String),
    /// A write that contradicts what is stored (e.g. one id with two amounts).
    #[error("stored item conflicts: {0}")]
    Conflict(String),
}

impl StoreError {
    /// An unavailable store, keeping what caused it.
    pub fn unavailable(operation: &'static str, source: impl Into<BoxError>) -> Self {
        Self::Unavailable {
            operation,
            source: source.into(),
        }
    }

    /// The error with its whole chain of causes, for logs.
    pub fn detail(&self) -> String {
        let mut text = self.to_string();
        let mut cause = std::error::Error::source(self);
        while let Some(e) = cause {
            text.push_str(": ");
            text.push_str(&e.to_string());
            cause = e.source();
        }
        text
    }
}

/// Idempotency records of create requests.
pub trait IdempotencyStore: Send + Sync {
    /// Takes the key for this request, or says why it cannot (replay, in progress,
    /// mismatch). One conditional write; a conflict costs no extra read.
    fn acquire(
        &self,
        request: &AcquireRequest<'_>,
    ) -> impl Future<Output = Result<AcquireOutcome, StoreError>> + Send;

    /// Stores the response to replay. Returns `false` when the lease was lost (the
    /// record was taken over or released meanwhile); nothing is written then.
    fn complete(
        &self,
        request: &CompleteRequest<'_>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Deletes the record if this lease still holds it, so the client can retry.
    fn release(
        &self,
        key: &IdempotencyKey,
        lease_id: &LeaseId,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Moves the key's Fintoc generation (`KeyHistory::fintoc_key_generation`) from
    /// `from` to the next, if this lease still holds the record and it is still at
    /// `from`: `false` (nothing written) otherwise.
    fn next_fintoc_key_generation(
        &self,
        key: &IdempotencyKey,
        lease_id: &LeaseId,
        from: u32,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// Payment intents as the API reads and creates them.
pub trait PaymentStore: Send + Sync {
    /// Records an intent just created at Fintoc. Merges with an item a webhook may
    /// already have written: never moves its status, version or timestamps; refuses
    /// another amount or currency for the same id ([`StoreError::Conflict`]).
    fn save_created(
        &self,
        intent: &StoredPayment,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Reads an intent or a session (strongly consistent).
    fn get_payment(
        &self,
        kind: PaymentKind,
        id: &str,
    ) -> impl Future<Output = Result<Option<StoredPayment>, StoreError>> + Send;

    /// The checkout session whose recorded payment is the attempt `intent_id`
    /// (`pi_…`), if any: its id. Eventually consistent (a sparse index); the
    /// caller reads the session itself and checks its attempt.
    fn session_of_attempt(
        &self,
        intent_id: &str,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;
}

/// Orders, as the create use case reserves and opens them.
pub trait OrderStore: Send + Sync {
    /// Reserves the order for a create, or says why it cannot (busy, paid). One
    /// conditional write.
    fn reserve_order(
        &self,
        request: &ReserveRequest<'_>,
    ) -> impl Future<Output = Result<ReserveOutcome, StoreError>> + Send;

    /// Opens the reserved order with Fintoc's intent. `false` when the reservation
    /// was lost (nothing written).
    fn open_order(
        &self,
        request: &OpenRequest<'_>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// The result of applying an [`PaymentPatch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteResult {
    /// Written (with the order's part, when the patch has one).
    Written,
    /// The intent's patch was written, but its order refused the outcome (paid
    /// already, or by another intent): a payment is kept on the order as an anomaly.
    WrittenOrderRefused,
    /// The guard failed: the state now stored (from `ALL_OLD`, no extra read), to
    /// decide again on.
    Conflict(Option<PaymentState>),
}

/// Payment intents as events change them.
pub trait EventStore: Send + Sync {
    /// The state decisions need (may be stale: every write is guarded).
    fn payment_state(
        &self,
        kind: PaymentKind,
        id: &str,
    ) -> impl Future<Output = Result<Option<PaymentState>, StoreError>> + Send;

    /// Applies a patch in one conditional write, the event id included.
    fn apply(
        &self,
        patch: &PaymentPatch,
    ) -> impl Future<Output = Result<WriteResult, StoreError>> + Send;

    /// Keeps an event that is not this deployment's apart from the intents, once.
    fn keep_apart(
        &self,
        event: &ForeignEvent,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Reads an order (may be stale): which payment a session's payment intent
    /// belongs to.
    fn order(
        &self,
        order_id: &str,
    ) -> impl Future<Output = Result<Option<OrderRecord>, StoreError>> + Send;
}

/// An open intent due for a check, as the reconciler reads it from the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuePayment {
    /// `pi_...` (or `cs_...`).
    pub intent_id: String,
    /// An intent or a session.
    pub kind: PaymentKind,
    /// What the decision needs (from the index: may be stale; writes are guarded).
    pub state: PaymentState,
    /// Where it stands in its schedule.
    pub schedule: CheckSchedule,
}

/// The schedule of checks of open intents: a sparse, write-sharded index (only open
/// intents carry its attributes), read by the reconciler.
pub trait ScheduleStore: Send + Sync {
    /// Up to `limit` intents of index shard `shard` due at `now_ms`, earliest first.
    /// One query; never a scan.
    fn due_intents(
        &self,
        shard: u16,
        now_ms: i64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<DuePayment>, StoreError>> + Send;

    /// Moves or clears an intent's schedule (and flags it for a human), if its
    /// version is still the one read. `false` when it changed meanwhile: nothing
    /// is written, and the next run sees the new state.
    fn update_schedule(
        &self,
        update: &ScheduleUpdate,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// What taking a fresh key with the command's first write gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyAnd<T> {
    /// Both written in one transaction: the key held under `lease_id` (an order
    /// reserved for `reservation_id` until the lease ends).
    Taken {
        /// The lease on the key.
        lease_id: LeaseId,
        /// The reservation the command holds its order under.
        reservation_id: ReservationId,
    },
    /// The key was not fresh: what [`IdempotencyStore::acquire`] answers for it
    /// (a resumed record is `Acquired`, the command's first write not made yet).
    /// Nothing else was written.
    Key(AcquireOutcome),
    /// The command's first write refused (what it found): nothing was written, the
    /// key is not taken.
    Refused(T),
}

impl<T> KeyAnd<T> {
    /// The same answer with what a refusal found turned by `refused` (an error
    /// from it is the answer's).
    pub fn try_map_refused<U, E>(
        self,
        refused: impl FnOnce(T) -> Result<U, E>,
    ) -> Result<KeyAnd<U>, E> {
        Ok(match self {
            KeyAnd::Taken {
                lease_id,
                reservation_id,
            } => KeyAnd::Taken {
                lease_id,
                reservation_id,
            },
            KeyAnd::Key(outcome) => KeyAnd::Key(outcome),
            KeyAnd::Refused(found) => KeyAnd::Refused(refused(found)?),
        })
    }
}

/// A fresh key with its order reserved; refused, what the order said.
pub type KeyAndOrder = KeyAnd<ReserveOutcome>;

/// A fresh key with a refund's amount reserved on its payment; refused, the
/// payment as stored now (`None`: no such payment), to decide again on.
pub type KeyAndRefund = KeyAnd<Option<Box<StoredPayment>>>;

/// The writes of a create on its happy path, each one request.
pub trait CreateStore: IdempotencyStore + OrderStore + PaymentStore + RefundStore {
    /// Takes a fresh key for `acquire` and reserves `order_id` for its
    /// reservation until the lease ends, in one write.
    fn acquire_reserving(
        &self,
        acquire: &AcquireRequest<'_>,
        order_id: &str,
    ) -> impl Future<Output = Result<KeyAndOrder, StoreError>> + Send;

    /// Stores the payment Fintoc made (as [`PaymentStore::save_created`]), opens
    /// its order (as [`OrderStore::open_order`]) and completes the key (as
    /// [`IdempotencyStore::complete`]) in one write. `false` when any of them
    /// refused: nothing was written.
    fn record_created(
        &self,
        payment: &StoredPayment,
        open: &OpenRequest<'_>,
        complete: &CompleteRequest<'_>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Takes a fresh key for `acquire` and reserves a refund (as
    /// [`RefundStore::reserve_refund`]) in one write.
    fn acquire_reserving_refund(
        &self,
        acquire: &AcquireRequest<'_>,
        reserve: &ReserveRefund<'_>,
    ) -> impl Future<Output = Result<KeyAndRefund, StoreError>> + Send;
}

/// Reserving a new refund on its payment: written only if the payment succeeded at
/// `paid` (nothing to review about its amount), the refund is not there yet, and
/// what the refunds hold plus its amount stays within `paid`.
#[derive(Debug, Clone, Copy)]
pub struct ReserveRefund<'a> {
    /// The payment's kind.
    pub kind: PaymentKind,
    /// The payment's id.
    pub payment_id: &'a str,
    /// What the payment paid, as the decision read it.
    pub paid: u64,
    /// The refund, as first stored (its amount is what is reserved).
    pub refund: &'a StoredRefund,
    /// The payment's check schedule, written if it has none: the reconciler
    /// checks its open refunds on it.
    pub schedule: Option<CheckSchedule>,
}

/// What a conditional write of a refund (its reservation, a change) did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundWrite {
    /// Written (a reservation: the amount is held).
    Written,
    /// Refused by its condition: the payment as stored now (`ALL_OLD`; `None`: no
    /// payment, or a write refused by another of its items — read it), to decide
    /// again on (the refund may be there already, moved, or not fit any more).
    Conflict(Option<Box<StoredPayment>>),
}

/// A change of a stored refund, guarded by the status the decision read.
#[derive(Debug, Clone)]
pub struct RefundChange<'a> {
    /// The payment's kind.
    pub kind: PaymentKind,
    /// The payment's id.
    pub payment_id: &'a str,
    /// The refund's key.
    pub key: &'a RefundKey,
    /// Its status as read: the write's guard.
    pub expected: &'a RefundStatus,
    /// Its new status (may be the same, e.g. to record Fintoc's id alone).
    pub status: &'a RefundStatus,
    /// Fintoc's id, when now known.
    pub fintoc_id: Option<&'a str>,
    /// Fintoc's failure code, when reported.
    pub failure_code: Option<&'a str>,
    /// The amount this write releases (the one move into an unpaid final status).
    pub release: Option<u64>,
    /// Now (RFC 3339).
    pub updated_at: &'a str,
    /// The refund's outcome, when this write moves it into a final status:
    /// recorded once with it (see [`RefundOutcome`]).
    pub outcome: Option<RefundOutcome<'a>>,
    /// The idempotency key this write completes (a refund create recording
    /// Fintoc's answer): written together or not at all.
    pub complete: Option<&'a CompleteRequest<'a>>,
}

/// A refund's final outcome, written by the write that records it (one
/// `TransactWriteItems`, the only path of a refund that needs one): a
/// `REFUND_OUTCOME#<refund id>` item, inserted once (the stream filter of
/// `docs/reconciliation.md` fires once per outcome), and, for a succeeded refund
/// of the payment that paid its order, the order's `refunded_amount`.
#[derive(Debug, Clone, Copy)]
pub struct RefundOutcome<'a> {
    /// The refund's public id.
    pub refund_id: &'a str,
    /// The order whose `refunded_amount` grows (a succeeded refund of its payment).
    pub order_id: Option<&'a str>,
    /// The order of the refund's payment, named on the outcome's record whatever
    /// the outcome (the merchant event says which order a refund concerns).
    pub payment_order_id: Option<&'a str>,
    /// Amount in minor units.
    pub amount: u64,
    /// Currency.
    pub currency: &'a str,
}

/// Refunds as the refund use cases, the webhook and the reconciler change them.
pub trait RefundStore: Send + Sync {
    /// Reserves a refund: one conditional write.
    fn reserve_refund(
        &self,
        request: &ReserveRefund<'_>,
    ) -> impl Future<Output = Result<RefundWrite, StoreError>> + Send;

    /// Changes a refund if its status is still the one read; refused (it moved
    /// meanwhile, or the key to complete was lost), nothing is written and the
    /// payment as stored comes back to decide again on.
    fn change_refund(
        &self,
        change: &RefundChange<'_>,
    ) -> impl Future<Output = Result<RefundWrite, StoreError>> + Send;

    /// Removes a refund Fintoc refused to create (still `creating`), releasing its
    /// amount in the same write: `false` when it is no longer `creating`.
    fn drop_refund(
        &self,
        kind: PaymentKind,
        payment_id: &str,
        refund: &StoredRefund,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Moves a refund still `creating` whose create's key is at generation `from`
    /// to the next one (see `StoredRefund::key_generation`): `false` when it is no
    /// longer `creating` or another request moved it first.
    fn next_key_generation(
        &self,
        kind: PaymentKind,
        payment_id: &str,
        key: &RefundKey,
        from: u32,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Where the reconciler's sweep of Fintoc's refund list resumes (RFC 3339, the
    /// `REFUND_SWEEP` item), `None` before the first sweep.
    fn refund_sweep_cursor(
        &self,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;

    /// Moves the sweep's cursor forward to `to`, never back (one conditional
    /// write): `false` when it already is at or past `to`.
    fn advance_refund_sweep(
        &self,
        to: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// A merchant event as the table records it (`EVENT#<id>`, once), with its body
/// exactly as every delivery sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedEvent {
    /// `evt_…`.
    pub id: String,
    /// Its type's name (`order.paid`, …).
    pub event_type: String,
    /// The order it concerns, if any.
    pub order_id: Option<String>,
    /// The JSON body, as sent.
    pub body: String,
    /// When this backend recorded it (ms since the epoch).
    pub recorded_ms: i64,
}

/// One event's delivery to one destination (an endpoint's name, or the bus).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeliveryRef {
    /// The event.
    pub event_id: String,
    /// The destination.
    pub destination: String,
}

/// A delivery this caller owns for one attempt (until its lease ends).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedDelivery {
    /// Which delivery.
    pub delivery: DeliveryRef,
    /// The attempt's number in the delivery's current ladder (1 for the first).
    pub attempt: u32,
    /// The body to send.
    pub body: String,
}

/// A delivery as stored, for operators and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryView {
    /// Which delivery.
    pub delivery: DeliveryRef,
    /// Where it stands.
    pub state: crate::domain::delivery::DeliveryState,
    /// Attempts in its current ladder.
    pub attempts: u32,
    /// Every attempt, oldest first.
    pub history: Vec<crate::domain::delivery::AttemptRecord>,
    /// When its next attempt is due (pending only).
    pub next_at_ms: Option<i64>,
}

/// Merchant events and their deliveries: the table is the outbox.
pub trait DeliveryStore: Send + Sync {
    /// Records `event` (once: a second recording changes nothing) with one
    /// delivery per destination, each inserted once: `held` for a disabled
    /// destination, else claimed for its first attempt, answered here. A delivery
    /// that existed already is not answered (its owner, or the sweep, has it).
    fn record_event(
        &self,
        event: &RecordedEvent,
        destinations: &[(String, bool)],
        now_ms: i64,
    ) -> impl Future<Output = Result<Vec<ClaimedDelivery>, StoreError>> + Send;

    /// Claims a pending delivery whose attempt is due and not owned by another
    /// caller (one conditional write); `None` when it is not.
    fn claim_delivery(
        &self,
        delivery: &DeliveryRef,
        now_ms: i64,
    ) -> impl Future<Output = Result<Option<ClaimedDelivery>, StoreError>> + Send;

    /// Records an attempt of a claimed delivery and what follows it (its state, its
    /// next attempt): `false` when the claim was lost meanwhile (nothing written).
    fn finish_attempt(
        &self,
        claimed: &ClaimedDelivery,
        record: &crate::domain::delivery::AttemptRecord,
        next: crate::domain::delivery::Next,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Pending deliveries due by `now_ms`, oldest first, at most `limit`.
    fn due_deliveries(
        &self,
        now_ms: i64,
        limit: i32,
    ) -> impl Future<Output = Result<Vec<DeliveryRef>, StoreError>> + Send;

    /// Undelivered deliveries (exhausted or held) of events recorded at or after
    /// `since_ms`, oldest first, at most `limit`.
    fn undelivered_since(
        &self,
        since_ms: i64,
        limit: i32,
    ) -> impl Future<Output = Result<Vec<DeliveryRef>, StoreError>> + Send;

    /// An event as recorded.
    fn event(
        &self,
        event_id: &str,
    ) -> impl Future<Output = Result<Option<RecordedEvent>, StoreError>> + Send;

    /// A delivery as stored.
    fn delivery(
        &self,
        delivery: &DeliveryRef,
    ) -> impl Future<Output = Result<Option<DeliveryView>, StoreError>> + Send;

    /// The destinations among `names` that are disabled.
    fn disabled_destinations(
        &self,
        names: &[String],
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;

    /// Disables (`410 Gone`) or enables a destination.
    fn set_destination_disabled(
        &self,
        name: &str,
        disabled: bool,
        now_ms: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The destinations named, each enabled or not (one never changed is enabled).
    fn destination_states(
        &self,
        names: &[String],
    ) -> impl Future<Output = Result<Vec<DestinationState>, StoreError>> + Send;
}

/// A destination of merchant events, as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DestinationState {
    /// Its name (`merchant`, `eventbridge`).
    pub name: String,
    /// Whether it is disabled: nothing is sent to it, its deliveries are held.
    pub disabled: bool,
    /// When it was last disabled or enabled (Unix ms), if ever.
    pub changed_ms: Option<i64>,
}

/// An item the invariant audit reads: an order, or a payment with whether it is
/// flagged for a person.
#[derive(Debug, Clone)]
pub enum AuditedItem {
    /// An `ORDER#` item.
    Order(crate::domain::invariants::AuditedOrder),
    /// An `INTENT#` or `SESSION#` item.
    Payment {
        /// The payment.
        payment: Box<StoredPayment>,
        /// Flagged `stuck` or `not_found_at_fintoc`.
        flagged: bool,
    },
}

/// One segment of the audit's scan: the items it holds that the audit reads, how
/// many items it scanned, and the read units it cost.
#[derive(Debug, Clone, Default)]
pub struct AuditSegment {
    /// Orders and payments.
    pub items: Vec<AuditedItem>,
    /// Every item scanned (others included).
    pub scanned: usize,
    /// Read units consumed.
    pub read_units: f64,
}

/// The whole table, read only, for the invariant audit.
pub trait AuditStore: Send + Sync {
    /// Every item of segment `segment` of `total` (a parallel `Scan`), page by page;
    /// eventually consistent (a scan is not a snapshot: suspects are read again).
    fn scan_segment(
        &self,
        segment: i32,
        total: i32,
    ) -> impl Future<Output = Result<AuditSegment, StoreError>> + Send;

    /// An order, strongly consistent.
    fn audited_order(
        &self,
        order_id: &str,
    ) -> impl Future<Output = Result<Option<crate::domain::invariants::AuditedOrder>, StoreError>> + Send;

    /// A payment and whether it is flagged, strongly consistent.
    fn audited_payment(
        &self,
        kind: PaymentKind,
        id: &str,
    ) -> impl Future<Output = Result<Option<(StoredPayment, bool)>, StoreError>> + Send;
}

/// What a resolution's write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResolveWrite {
    /// The order, the payment's part and the audit entry, together.
    Written,
    /// The order or its payment changed since they were read: nothing written.
    Changed,
}

/// Operators' writes and the audit log (the operations function's role alone may
/// write them).
pub trait OperationsStore: Send + Sync {
    /// Writes a resolution and its audit entry together, or nothing.
    fn resolve(
        &self,
        plan: &crate::domain::resolution::ResolutionPlan,
    ) -> impl Future<Output = Result<ResolveWrite, StoreError>> + Send;

    /// Everything that needs a person now, oldest first.
    fn attention_queue(
        &self,
    ) -> impl Future<Output = Result<Vec<crate::domain::attention::QueueItem>, StoreError>> + Send;

    /// Starts a new ladder for `event`'s delivery to `destination`, due now for the
    /// dispatcher's sweep, with its audit entry — together, or nothing: `false`
    /// when an attempt of it is in flight.
    fn resend_delivery(
        &self,
        event: &RecordedEvent,
        destination: &str,
        now_ms: i64,
        entry: &crate::domain::resolution::AuditEntry,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Disables or enables a destination, with its audit entry, together.
    fn change_destination(
        &self,
        name: &str,
        disabled: bool,
        now_ms: i64,
        entry: &crate::domain::resolution::AuditEntry,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Acknowledges a queue item's reason (it leaves the queue), with its audit
    /// entry, together: `false` when the item is gone.
    fn acknowledge(
        &self,
        item: &crate::domain::attention::QueueItem,
        entry: &crate::domain::resolution::AuditEntry,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The audit log, oldest first; only `subject`'s entries when given.
    fn audit_log(
        &self,
        subject: Option<&str>,
    ) -> impl Future<Output = Result<Vec<crate::domain::resolution::AuditEntry>, StoreError>> + Send;
}
