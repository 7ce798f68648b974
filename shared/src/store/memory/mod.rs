//! An in-memory implementation of the store ports, applying the same rules as the
//! DynamoDB store (the contract suite checks both): for unit tests of the use cases,
//! with failures that can be injected per operation.

use super::{
    CreateStore, DuePayment, EventStore, IdempotencyStore, KeyAnd, KeyAndOrder, KeyAndRefund,
    OrderStore, PaymentStore, RefundChange, RefundStore, RefundWrite, ReserveRefund, ScheduleStore,
    StoreError, WriteResult,
};
use crate::domain::deployment::ForeignEvent;
use crate::domain::idempotency::{
    can_resume, classify_conflict, is_expired, AcquireOutcome, AcquireRequest, CompleteRequest,
    IdempotencyKey, IdempotencyRecord, KeyHistory, LeaseId, RecordStatus, ReservationId,
};
use crate::domain::order::{
    can_open, can_reserve, classify_reserve_conflict, order_accepts, IfRefused, OpenRequest,
    OrderOutcome, OrderRecord, OrderState, ReserveOutcome, ReserveRequest,
};
use crate::domain::payment::{PaymentKind, PaymentStatus, Review, SessionPayment, StoredPayment};
use crate::domain::reconcile::ScheduleUpdate;
use crate::domain::refund::{RefundKey, RefundStatus, Refunds, StoredRefund};
use crate::domain::schedule::{CheckSchedule, ScheduleChange};
use crate::domain::transition::{
    EventNote, NoteList, Outcome, PaymentPatch, PaymentState, WriteGuard,
};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

mod creates;
mod idempotency;
mod orders;
mod payments;
mod refunds;
mod schedule;

/// A store operation, to inject failures into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// [`IdempotencyStore::acquire`].
    Acquire,
    /// [`IdempotencyStore::complete`].
    Complete,
    /// [`IdempotencyStore::release`].
    Release,
    /// [`PaymentStore::save_created`].
    SaveCreated,
    /// [`PaymentStore::get_payment`].
    GetIntent,
    /// [`EventStore::payment_state`].
    PaymentState,
    /// [`EventStore::apply`].
    Apply,
    /// [`EventStore::keep_apart`].
    KeepApart,
    /// [`OrderStore::reserve_order`].
    ReserveOrder,
    /// [`OrderStore::open_order`].
    OpenOrder,
    /// [`EventStore::order`].
    ReadOrder,
    /// [`ScheduleStore::due_intents`].
    DueIntents,
    /// [`ScheduleStore::update_schedule`].
    UpdateSchedule,
    /// [`RefundStore::reserve_refund`].
    ReserveRefund,
    /// [`RefundStore::change_refund`].
    ChangeRefund,
    /// [`RefundStore::drop_refund`].
    DropRefund,
    /// [`RefundStore::refund_sweep_cursor`] and [`RefundStore::advance_refund_sweep`].
    RefundSweep,
}

/// An order as kept in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryOrder {
    /// What the rules look at.
    pub record: OrderRecord,
    /// The intent that paid it.
    pub paid_intent_id: Option<String>,
    /// Payments it did not take (a second payment, or another intent's).
    pub anomalies: Vec<String>,
    /// What its payment's succeeded refunds returned.
    pub refunded_amount: u64,
}

/// An idempotency record as kept in memory.
#[derive(Debug, Clone)]
struct MemoryRecord {
    record: IdempotencyRecord,
    lease_id: LeaseId,
    intent_id: Option<String>,
}

/// An intent as kept in memory: what the DynamoDB item holds, typed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryIntent {
    /// Current status.
    pub status: Option<PaymentStatus>,
    /// Minor units, once known.
    pub amount: Option<u64>,
    /// Currency, once known.
    pub currency: Option<String>,
    /// Merchant order id.
    pub order_id: Option<String>,
    /// Metadata.
    pub metadata: BTreeMap<String, String>,
    /// Payer's email.
    pub customer_email: Option<String>,
    /// `live` | `test`.
    pub mode: Option<String>,
    /// Creation time.
    pub created_at: Option<String>,
    /// Last change.
    pub updated_at: Option<String>,
    /// `webhook` when an event created it.
    pub created_by: Option<String>,
    /// Write version.
    pub version: u64,
    /// Event ids applied.
    pub applied_event_ids: BTreeSet<String>,
    /// How the final status was reached.
    pub outcome: Option<Outcome>,
    /// Conflicting final events.
    pub anomalies: Vec<EventNote>,
    /// Late non-final events.
    pub late_events: Vec<EventNote>,
    /// Why it needs a human, if it does.
    pub review: Option<Review>,
    /// Its check schedule, while open.
    pub schedule: Option<CheckSchedule>,
    /// While its checks fail: how many in a row, and since when (Unix ms).
    pub failing: Option<(u32, i64)>,
    /// Why it left the schedule for a human (`stuck`, `not_found_at_fintoc`).
    pub flagged: Option<String>,
    /// A session's latest payment intent.
    pub session_payment: Option<SessionPayment>,
    /// When a session expires.
    pub expires_at: Option<String>,
    /// Its refunds and what they hold.
    pub refunds: Refunds,
}

impl MemoryOrder {
    /// An order's item as its first write makes it: in `state`, held by no one.
    fn first(state: OrderState, payment_kind: PaymentKind) -> Self {
        Self {
            record: OrderRecord {
                state,
                holder: String::new(),
                intent_id: None,
                payment_kind,
                reserved_until_ms: 0,
                session_refs: Default::default(),
            },
            paid_intent_id: None,
            anomalies: Vec::new(),
            refunded_amount: 0,
        }
    }
}

impl MemoryIntent {
    /// Whether it is stored with another amount or currency than `payment`.
    fn conflicts_with(&self, payment: &StoredPayment) -> bool {
        self.amount.is_some_and(|a| a != payment.amount)
            || self
                .currency
                .as_ref()
                .is_some_and(|c| *c != payment.currency)
    }

    fn state(&self) -> Option<PaymentState> {
        Some(PaymentState {
            status: self.status.clone()?,
            applied_event_ids: self.applied_event_ids.clone(),
            version: self.version,
            requested: self.amount.zip(self.currency.clone()),
            order_id: self.order_id.clone(),
            mode: self.mode.clone(),
            session_attempt: self.session_payment.as_ref().map(|p| p.intent_id.clone()),
        })
    }
}

#[derive(Debug, Default)]
struct Tables {
    records: HashMap<IdempotencyKey, MemoryRecord>,
    intents: HashMap<(PaymentKind, String), MemoryIntent>,
    foreign_events: HashMap<String, ForeignEvent>,
    orders: HashMap<String, MemoryOrder>,
    failures: HashMap<Operation, u32>,
    /// Refund outcomes recorded, by refund id: (status, amount).
    refund_outcomes: HashMap<String, (RefundStatus, u64)>,
    /// The refund sweep's cursor.
    refund_sweep: Option<String>,
}

/// The store ports in memory; clones share the same data.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore(Arc<Mutex<Tables>>);

impl MemoryStore {
    fn lock(&self) -> MutexGuard<'_, Tables> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The next `times` calls of `operation` fail as if DynamoDB were unavailable,
    /// before doing anything.
    pub fn fail_next(&self, operation: Operation, times: u32) {
        *self.lock().failures.entry(operation).or_default() += times;
    }

    /// The intent as stored, with every attribute.
    pub fn intent(&self, id: &str) -> Option<MemoryIntent> {
        self.payment(PaymentKind::Intent, id)
    }

    /// A stored session, as kept.
    pub fn session(&self, id: &str) -> Option<MemoryIntent> {
        self.payment(PaymentKind::Session, id)
    }

    /// A stored payment of either kind, as kept.
    pub fn payment(&self, kind: PaymentKind, id: &str) -> Option<MemoryIntent> {
        self.lock().intents.get(&(kind, id.to_string())).cloned()
    }

    /// Forgets every idempotency record, as if each had been taken over or swept:
    /// the lease a request holds is lost.
    pub fn forget_idempotency_records(&self) {
        self.lock().records.clear();
    }

    /// How many idempotency records, intents and foreign events are stored.
    pub fn item_count(&self) -> usize {
        let tables = self.lock();
        tables.records.len()
            + tables.intents.len()
            + tables.foreign_events.len()
            + tables.orders.len()
    }

    /// An order, by its id.
    pub fn order(&self, order_id: &str) -> Option<MemoryOrder> {
        self.lock().orders.get(order_id).cloned()
    }

    /// A refund's recorded outcome (status, amount), by its public id.
    pub fn refund_outcome(&self, refund_id: &str) -> Option<(RefundStatus, u64)> {
        self.lock().refund_outcomes.get(refund_id).cloned()
    }

    /// An event kept apart, by its id.
    pub fn foreign_event(&self, event_id: &str) -> Option<ForeignEvent> {
        self.lock().foreign_events.get(event_id).cloned()
    }

    /// Takes the lock, failing when a failure is queued for `operation`.
    fn begin(&self, operation: Operation) -> Result<MutexGuard<'_, Tables>, StoreError> {
        self.begin_all(&[operation])
    }

    /// Takes the lock for one write of several operations (a transaction), failing
    /// when a failure is queued for any of them (the first one queued is used up).
    fn begin_all(&self, operations: &[Operation]) -> Result<MutexGuard<'_, Tables>, StoreError> {
        let mut tables = self.lock();
        for operation in operations {
            if let Some(left) = tables.failures.get_mut(operation).filter(|n| **n > 0) {
                *left -= 1;
                return Err(StoreError::unavailable(
                    "memory",
                    format!("injected failure of {operation:?}"),
                ));
            }
        }
        Ok(tables)
    }
}

impl MemoryIntent {
    /// The payment as the API reads it.
    fn stored(&self, kind: PaymentKind, id: &str) -> Result<StoredPayment, StoreError> {
        let item = self;
        let missing = |what: &str| StoreError::Malformed(format!("intent {id}: no {what}"));
        Ok(StoredPayment {
            id: id.to_string(),
            kind,
            status: item.status.clone().ok_or_else(|| missing("status"))?,
            amount: item.amount.unwrap_or_default(),
            currency: item.currency.clone().unwrap_or_default(),
            order_id: item.order_id.clone(),
            metadata: item.metadata.clone(),
            customer_email: item.customer_email.clone(),
            mode: item.mode.clone(),
            error_reason: item.outcome.as_ref().and_then(|o| o.error_reason.clone()),
            created_at: item
                .created_at
                .clone()
                .ok_or_else(|| missing("created_at"))?,
            updated_at: item
                .updated_at
                .clone()
                .ok_or_else(|| missing("updated_at"))?,
            schedule: item.schedule,
            session_payment: item.session_payment.clone(),
            expires_at: item.expires_at.clone(),
            review: item.review.clone(),
            refunds: item.refunds.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    crate::store_contract_tests!(async { super::MemoryStore::default() });
}
