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

impl Tables {
    /// [`RefundStore::reserve_refund`], under the lock.
    fn reserve_refund(&mut self, request: &ReserveRefund<'_>) -> Result<RefundWrite, StoreError> {
        if let Some(found) = self.refund_refusal(request)? {
            return Ok(RefundWrite::Conflict(found));
        }
        let item = self
            .intents
            .get_mut(&(request.kind, request.payment_id.to_string()))
            .ok_or_else(|| StoreError::Malformed("a fitting payment vanished".into()))?;
        item.refunds.reserved += request.refund.amount;
        item.refunds.entries.push(request.refund.clone());
        item.version += 1;
        if item.schedule.is_none() {
            item.schedule = request.schedule;
        }
        Ok(RefundWrite::Written)
    }

    /// Why `request` would be refused (the payment as stored, `None` when there
    /// is none), or `None` when it fits.
    #[allow(clippy::type_complexity)]
    fn refund_refusal(
        &self,
        request: &ReserveRefund<'_>,
    ) -> Result<Option<Option<Box<StoredPayment>>>, StoreError> {
        let Some(item) = self
            .intents
            .get(&(request.kind, request.payment_id.to_string()))
        else {
            return Ok(Some(None));
        };
        let payment = item.stored(request.kind, request.payment_id)?;
        let refund = request.refund;
        let fits = payment.refundable_base() == request.paid
            && request.paid > 0
            && item.refunds.reserved + refund.amount <= request.paid
            && item.refunds.get(&refund.key).is_none();
        Ok((!fits).then(|| Some(Box::new(payment))))
    }

    /// [`RefundStore::change_refund`] without its key's completion, under the lock.
    fn change_refund(&mut self, change: &RefundChange<'_>) -> Result<bool, StoreError> {
        if let Some(outcome) = &change.outcome {
            if self.refund_outcomes.contains_key(outcome.refund_id) {
                return Ok(false);
            }
        }
        let Some(item) = self
            .intents
            .get_mut(&(change.kind, change.payment_id.to_string()))
        else {
            return Ok(false);
        };
        let refunds = &mut item.refunds;
        let Some(refund) = refunds.entries.iter_mut().find(|r| &r.key == change.key) else {
            return Ok(false);
        };
        if &refund.status != change.expected {
            return Ok(false);
        }
        refund.status = change.status.clone();
        refund.updated_at = change.updated_at.to_string();
        if let Some(id) = change.fintoc_id {
            refund.fintoc_id = Some(id.to_string());
        }
        if let Some(code) = change.failure_code {
            refund.failure_code = Some(code.to_string());
        }
        if let Some(amount) = change.release {
            refunds.reserved = refunds.reserved.saturating_sub(amount);
        }
        if let Some(outcome) = &change.outcome {
            self.refund_outcomes.insert(
                outcome.refund_id.to_string(),
                (change.status.clone(), outcome.amount),
            );
            if let Some(order) = outcome.order_id.and_then(|o| self.orders.get_mut(o)) {
                order.refunded_amount += outcome.amount;
            }
        }
        Ok(true)
    }

    /// Whether `acquire`'s key is held by a record that has not expired: such a key
    /// goes the one-write way ([`IdempotencyStore::acquire`]), never with a first write.
    fn key_is_live(&self, acquire: &AcquireRequest<'_>) -> bool {
        self.records
            .get(acquire.key)
            .is_some_and(|r| !is_expired(&r.record, acquire.now_ms))
    }

    /// Whether `complete`'s lease still holds its key, in progress.
    fn holds(&self, complete: &CompleteRequest<'_>) -> bool {
        self.records.get(complete.key).is_some_and(|r| {
            r.lease_id == *complete.lease_id && r.record.status == RecordStatus::InProgress
        })
    }

    /// [`IdempotencyStore::acquire`], on the locked tables.
    fn acquire(&mut self, request: &AcquireRequest<'_>) -> Result<AcquireOutcome, StoreError> {
        let tables = self;
        let lease_id = LeaseId::random();
        // Whole seconds, as the TTL attribute keeps it.
        let expires_at_ms = request.expires_at_ms.div_euclid(1000) * 1000;
        match tables.records.get_mut(request.key) {
            Some(existing) if !is_expired(&existing.record, request.now_ms) => {
                if !can_resume(&existing.record, request.request_hash, request.now_ms) {
                    return Ok(classify_conflict(
                        &existing.record,
                        request.request_hash,
                        request.now_ms,
                    ));
                }
                // Resumed under a new lease; the reservation stays.
                existing.record.status = RecordStatus::InProgress;
                existing.record.lease_expires_at_ms = request.lease_expires_at_ms;
                existing.record.expires_at_ms = expires_at_ms;
                existing.lease_id = lease_id.clone();
                let reservation_id = existing
                    .record
                    .reservation_id
                    .clone()
                    .unwrap_or_else(|| ReservationId::of_legacy_record(request.key));
                Ok(AcquireOutcome::Acquired {
                    lease_id,
                    reservation_id,
                    resumed: Some(existing.record.history),
                })
            }
            _ => {
                let reservation_id = ReservationId::random();
                tables.records.insert(
                    request.key.clone(),
                    MemoryRecord {
                        record: IdempotencyRecord {
                            status: RecordStatus::InProgress,
                            request_hash: request.request_hash.to_string(),
                            lease_expires_at_ms: request.lease_expires_at_ms,
                            expires_at_ms,
                            response: None,
                            reservation_id: Some(reservation_id.clone()),
                            history: KeyHistory {
                                taken_at_ms: request.now_ms,
                                fintoc_key_generation: 0,
                            },
                        },
                        lease_id: lease_id.clone(),
                        intent_id: None,
                    },
                );
                Ok(AcquireOutcome::Acquired {
                    lease_id,
                    reservation_id,
                    resumed: None,
                })
            }
        }
    }

    /// [`IdempotencyStore::complete`], on the locked tables.
    fn complete(&mut self, request: &CompleteRequest<'_>) -> Result<bool, StoreError> {
        let tables = self;
        match tables.records.get_mut(request.key) {
            Some(held)
                if held.lease_id == *request.lease_id
                    && held.record.status == RecordStatus::InProgress =>
            {
                held.record.status = RecordStatus::Completed;
                held.record.response = Some(request.response.clone());
                held.intent_id = request.intent_id.map(str::to_string);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// [`PaymentStore::save_created`], on the locked tables.
    fn save_created(&mut self, intent: &StoredPayment) -> Result<(), StoreError> {
        let tables = self;
        let item = tables
            .intents
            .entry((intent.kind, intent.id.clone()))
            .or_default();
        if item.conflicts_with(intent) {
            return Err(StoreError::Conflict(format!(
                "intent {} is stored with another amount or currency",
                intent.id
            )));
        }
        item.amount = Some(intent.amount);
        item.currency = Some(intent.currency.clone());
        item.metadata = intent.metadata.clone();
        item.status.get_or_insert_with(|| intent.status.clone());
        if item.schedule.is_none() {
            item.schedule = intent.schedule;
        }
        item.created_at
            .get_or_insert_with(|| intent.created_at.clone());
        item.updated_at
            .get_or_insert_with(|| intent.updated_at.clone());
        for (field, value) in [
            (&mut item.order_id, &intent.order_id),
            (&mut item.customer_email, &intent.customer_email),
            (&mut item.mode, &intent.mode),
            (&mut item.expires_at, &intent.expires_at),
        ] {
            if field.is_none() {
                field.clone_from(value);
            }
        }
        Ok(())
    }

    /// [`OrderStore::reserve_order`], on the locked tables.
    fn reserve_order(
        &mut self,
        request: &ReserveRequest<'_>,
    ) -> Result<ReserveOutcome, StoreError> {
        let tables = self;
        if let Some(existing) = tables.orders.get(request.order_id) {
            if !can_reserve(&existing.record, request.holder, request.now_ms) {
                return Ok(classify_reserve_conflict(&existing.record, request.now_ms));
            }
        }
        let entry = tables
            .orders
            .entry(request.order_id.to_string())
            .or_insert_with(|| MemoryOrder::first(OrderState::Reserved, PaymentKind::Intent));
        entry.record.state = OrderState::Reserved;
        entry.record.holder = request.holder.to_string();
        entry.record.reserved_until_ms = request.reserved_until_ms;
        Ok(ReserveOutcome::Reserved)
    }

    /// [`OrderStore::open_order`], on the locked tables.
    fn open_order(&mut self, request: &OpenRequest<'_>) -> Result<bool, StoreError> {
        let tables = self;
        let order = tables.orders.get_mut(request.order_id);
        if !can_open(order.as_ref().map(|o| &o.record), request.holder) {
            return Ok(false);
        }
        let order = order.expect("can_open needs an order");
        order.record.state = OrderState::Open;
        order.record.intent_id = Some(request.intent_id.to_string());
        order.record.payment_kind = request.kind;
        if let Some(payment_ref) = request.payment_ref {
            order
                .record
                .session_refs
                .insert(payment_ref.to_string(), request.intent_id.to_string());
        }
        Ok(true)
    }
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

impl IdempotencyStore for MemoryStore {
    async fn acquire(&self, request: &AcquireRequest<'_>) -> Result<AcquireOutcome, StoreError> {
        self.begin(Operation::Acquire)?.acquire(request)
    }

    async fn complete(&self, request: &CompleteRequest<'_>) -> Result<bool, StoreError> {
        self.begin(Operation::Complete)?.complete(request)
    }

    async fn release(&self, key: &IdempotencyKey, lease_id: &LeaseId) -> Result<(), StoreError> {
        let mut tables = self.begin(Operation::Release)?;
        if let Some(held) = tables
            .records
            .get_mut(key)
            .filter(|r| r.lease_id == *lease_id && r.record.status == RecordStatus::InProgress)
        {
            held.record.status = RecordStatus::Released;
        }
        Ok(())
    }

    async fn next_fintoc_key_generation(
        &self,
        key: &IdempotencyKey,
        lease_id: &LeaseId,
        from: u32,
    ) -> Result<bool, StoreError> {
        let mut tables = self.begin(Operation::Release)?;
        let Some(held) = tables.records.get_mut(key).filter(|r| {
            r.lease_id == *lease_id
                && r.record.status == RecordStatus::InProgress
                && r.record.history.fintoc_key_generation == from
        }) else {
            return Ok(false);
        };
        held.record.history.fintoc_key_generation = from + 1;
        Ok(true)
    }
}

impl CreateStore for MemoryStore {
    async fn acquire_reserving(
        &self,
        acquire: &AcquireRequest<'_>,
        order_id: &str,
    ) -> Result<KeyAndOrder, StoreError> {
        let mut tables = self.begin_all(&[Operation::Acquire, Operation::ReserveOrder])?;
        if tables.key_is_live(acquire) {
            return tables.acquire(acquire).map(KeyAndOrder::Key);
        }
        // A fresh reservation never holds the order already.
        if let Some(order) = tables.orders.get(order_id) {
            if !can_reserve(&order.record, "", acquire.now_ms) {
                let refused = classify_reserve_conflict(&order.record, acquire.now_ms);
                return Ok(KeyAndOrder::Refused(refused));
            }
        }
        let AcquireOutcome::Acquired {
            lease_id,
            reservation_id,
            ..
        } = tables.acquire(acquire)?
        else {
            return Err(StoreError::Malformed("a fresh key was not acquired".into()));
        };
        tables.reserve_order(&ReserveRequest {
            order_id,
            holder: reservation_id.as_str(),
            now_ms: acquire.now_ms,
            reserved_until_ms: acquire.lease_expires_at_ms,
        })?;
        Ok(KeyAndOrder::Taken {
            lease_id,
            reservation_id,
        })
    }

    async fn record_created(
        &self,
        payment: &StoredPayment,
        open: &OpenRequest<'_>,
        complete: &CompleteRequest<'_>,
    ) -> Result<bool, StoreError> {
        let mut tables = self.begin_all(&[
            Operation::SaveCreated,
            Operation::OpenOrder,
            Operation::Complete,
        ])?;
        let held = tables.holds(complete);
        let opens = can_open(
            tables.orders.get(open.order_id).map(|o| &o.record),
            open.holder,
        );
        let merges = tables
            .intents
            .get(&(payment.kind, payment.id.clone()))
            .is_none_or(|item| !item.conflicts_with(payment));
        if !(held && opens && merges) {
            return Ok(false);
        }
        tables.save_created(payment)?;
        tables.open_order(open)?;
        tables.complete(complete)
    }

    async fn acquire_reserving_refund(
        &self,
        acquire: &AcquireRequest<'_>,
        reserve: &ReserveRefund<'_>,
    ) -> Result<KeyAndRefund, StoreError> {
        let mut tables = self.begin_all(&[Operation::Acquire, Operation::ReserveRefund])?;
        if tables.key_is_live(acquire) {
            return tables.acquire(acquire).map(KeyAnd::Key);
        }
        // Decided before anything is written: a refused reservation takes no key.
        if let Some(found) = tables.refund_refusal(reserve)? {
            return Ok(KeyAnd::Refused(found));
        }
        let AcquireOutcome::Acquired {
            lease_id,
            reservation_id,
            ..
        } = tables.acquire(acquire)?
        else {
            return Err(StoreError::Malformed("a fresh key was not acquired".into()));
        };
        tables.reserve_refund(reserve)?;
        Ok(KeyAnd::Taken {
            lease_id,
            reservation_id,
        })
    }
}

impl PaymentStore for MemoryStore {
    async fn save_created(&self, intent: &StoredPayment) -> Result<(), StoreError> {
        self.begin(Operation::SaveCreated)?.save_created(intent)
    }

    async fn get_payment(
        &self,
        kind: PaymentKind,
        id: &str,
    ) -> Result<Option<StoredPayment>, StoreError> {
        let tables = self.begin(Operation::GetIntent)?;
        let Some(item) = tables.intents.get(&(kind, id.to_string())) else {
            return Ok(None);
        };
        item.stored(kind, id).map(Some)
    }

    async fn session_of_attempt(&self, intent_id: &str) -> Result<Option<String>, StoreError> {
        let tables = self.begin(Operation::GetIntent)?;
        Ok(tables.intents.iter().find_map(|((kind, id), item)| {
            (*kind == PaymentKind::Session
                && item
                    .session_payment
                    .as_ref()
                    .is_some_and(|p| p.intent_id == intent_id))
            .then(|| id.clone())
        }))
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

impl OrderStore for MemoryStore {
    async fn reserve_order(
        &self,
        request: &ReserveRequest<'_>,
    ) -> Result<ReserveOutcome, StoreError> {
        self.begin(Operation::ReserveOrder)?.reserve_order(request)
    }

    async fn open_order(&self, request: &OpenRequest<'_>) -> Result<bool, StoreError> {
        self.begin(Operation::OpenOrder)?.open_order(request)
    }
}

impl EventStore for MemoryStore {
    async fn payment_state(
        &self,
        kind: PaymentKind,
        id: &str,
    ) -> Result<Option<PaymentState>, StoreError> {
        let tables = self.begin(Operation::PaymentState)?;
        Ok(tables
            .intents
            .get(&(kind, id.to_string()))
            .and_then(MemoryIntent::state))
    }

    async fn apply(&self, patch: &PaymentPatch) -> Result<WriteResult, StoreError> {
        let mut tables = self.begin(Operation::Apply)?;
        let key = (patch.kind, patch.payment_id.clone());
        let current = tables.intents.get(&key);
        let guard_holds = match &patch.guard {
            WriteGuard::Absent => current.is_none(),
            WriteGuard::Version(v) => current.is_some_and(|c| c.version == *v),
            WriteGuard::Expected(e) => current
                .and_then(MemoryIntent::state)
                .is_some_and(|s| e.accepts(&s)),
        };
        let version = match (&patch.guard, current) {
            (WriteGuard::Expected(_), Some(c)) => c.version + 1,
            _ => patch.version,
        };
        if !guard_holds {
            return Ok(WriteResult::Conflict(current.and_then(MemoryIntent::state)));
        }
        let mut result = WriteResult::Written;
        let refused;
        let mut patch = patch;
        if let Some(order) = &patch.order {
            let existing = tables.orders.get(&order.order_id).map(|o| &o.record);
            if order_accepts(existing, order) {
                let entry = tables
                    .orders
                    .entry(order.order_id.clone())
                    .or_insert_with(|| MemoryOrder::first(OrderState::Paid, patch.kind));
                match order.outcome {
                    OrderOutcome::Paid => {
                        entry.record.state = OrderState::Paid;
                        entry.record.intent_id = Some(order.intent_id.clone());
                        entry.record.payment_kind = order.kind;
                        entry.paid_intent_id = Some(order.intent_id.clone());
                    }
                    OrderOutcome::Review => {
                        entry.record.state = OrderState::Review;
                        entry.record.intent_id = Some(order.intent_id.clone());
                        entry.record.payment_kind = order.kind;
                    }
                    OrderOutcome::Closed => entry.record.state = OrderState::Closed,
                }
            } else if order.if_refused == IfRefused::KeepAsAnomaly {
                let entry = tables
                    .orders
                    .entry(order.order_id.clone())
                    .or_insert_with(|| unreachable!("an order that refuses a payment exists"));
                entry.anomalies.push(order.intent_id.clone());
                result = WriteResult::WrittenOrderRefused;
                refused = patch.kept_as_anomaly();
                patch = &refused;
            }
        }
        let item = tables.intents.entry(key).or_default();
        item.updated_at = Some(patch.updated_at.clone());
        item.version = version;
        if let Some(c) = &patch.created {
            item.amount = c.amount.or(item.amount);
            item.currency = c.currency.clone().or(item.currency.take());
            item.metadata = c.metadata.clone();
            item.order_id = c.order_id.clone().or(item.order_id.take());
            item.mode = c.mode.clone().or(item.mode.take());
            item.customer_email = c.customer_email.clone().or(item.customer_email.take());
            item.created_at = Some(c.created_at.clone());
            item.created_by = Some(crate::domain::transition::CREATED_BY_WEBHOOK.to_string());
        }
        if let Some(status) = &patch.status {
            item.status = Some(status.clone());
        }
        if patch.session_payment.is_some() {
            item.session_payment.clone_from(&patch.session_payment);
        }
        if let Some(outcome) = &patch.outcome {
            item.outcome = Some(outcome.clone());
        }
        if patch.review.is_some() {
            item.review.clone_from(&patch.review);
        }
        if let Some(note) = &patch.note {
            match note.list {
                NoteList::Anomalies => item.anomalies.push(note.clone()),
                NoteList::LateEvents => item.late_events.push(note.clone()),
            }
        }
        change_schedule(item, &patch.schedule);
        item.applied_event_ids.insert(patch.event_id.clone());
        Ok(result)
    }

    async fn keep_apart(&self, event: &ForeignEvent) -> Result<(), StoreError> {
        let mut tables = self.begin(Operation::KeepApart)?;
        tables
            .foreign_events
            .entry(event.event_id.clone())
            .or_insert_with(|| event.clone());
        Ok(())
    }

    async fn order(&self, order_id: &str) -> Result<Option<OrderRecord>, StoreError> {
        let tables = self.begin(Operation::ReadOrder)?;
        Ok(tables.orders.get(order_id).map(|o| o.record.clone()))
    }
}

fn change_schedule(item: &mut MemoryIntent, change: &ScheduleChange) {
    match change {
        ScheduleChange::Unchanged => {}
        ScheduleChange::Clear => {
            item.schedule = None;
            item.failing = None;
        }
        ScheduleChange::Set(schedule) => {
            item.schedule = Some(*schedule);
            item.failing = None;
        }
        ScheduleChange::Failed { next, at_ms } => {
            item.schedule = Some(*next);
            let (count, since) = item.failing.unwrap_or((0, *at_ms));
            item.failing = Some((count + 1, since));
        }
    }
}

impl ScheduleStore for MemoryStore {
    async fn due_intents(
        &self,
        shard: u16,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<DuePayment>, StoreError> {
        let tables = self.begin(Operation::DueIntents)?;
        let mut due: Vec<DuePayment> = tables
            .intents
            .iter()
            .filter_map(|((kind, id), item)| {
                let schedule = item.schedule?;
                (schedule.shard == shard && schedule.due_at_ms <= now_ms).then(|| DuePayment {
                    intent_id: id.clone(),
                    kind: *kind,
                    state: item.state().expect("a scheduled intent has a status"),
                    schedule,
                })
            })
            .collect();
        due.sort_by_key(|d| (d.schedule.due_at_ms, d.intent_id.clone()));
        due.truncate(limit.max(1));
        Ok(due)
    }

    async fn update_schedule(&self, update: &ScheduleUpdate) -> Result<bool, StoreError> {
        let mut tables = self.begin(Operation::UpdateSchedule)?;
        let Some(item) = tables
            .intents
            .get_mut(&(update.kind, update.intent_id.clone()))
        else {
            return Ok(false);
        };
        if item.version != update.expected_version {
            return Ok(false);
        }
        change_schedule(item, &update.change);
        if let Some(flag) = update.flag {
            item.flagged = Some(flag.as_str().to_string());
        }
        Ok(true)
    }
}

impl RefundStore for MemoryStore {
    async fn reserve_refund(&self, request: &ReserveRefund<'_>) -> Result<RefundWrite, StoreError> {
        self.begin(Operation::ReserveRefund)?
            .reserve_refund(request)
    }

    async fn change_refund(&self, change: &RefundChange<'_>) -> Result<RefundWrite, StoreError> {
        let mut tables = match change.complete {
            None => self.begin(Operation::ChangeRefund)?,
            Some(_) => self.begin_all(&[Operation::ChangeRefund, Operation::Complete])?,
        };
        let refused = |tables: &Tables| -> Result<RefundWrite, StoreError> {
            let found = tables
                .intents
                .get(&(change.kind, change.payment_id.to_string()))
                .map(|item| item.stored(change.kind, change.payment_id))
                .transpose()?;
            Ok(RefundWrite::Conflict(found.map(Box::new)))
        };
        if let Some(complete) = change.complete {
            if !tables.holds(complete) {
                return refused(&tables);
            }
        }
        if !tables.change_refund(change)? {
            return refused(&tables);
        }
        if let Some(complete) = change.complete {
            if !tables.complete(complete)? {
                return Err(StoreError::Malformed("a held key was not completed".into()));
            }
        }
        Ok(RefundWrite::Written)
    }

    async fn drop_refund(
        &self,
        kind: PaymentKind,
        payment_id: &str,
        refund: &StoredRefund,
    ) -> Result<bool, StoreError> {
        let mut tables = self.begin(Operation::DropRefund)?;
        let Some(item) = tables.intents.get_mut(&(kind, payment_id.to_string())) else {
            return Ok(false);
        };
        let refunds = &mut item.refunds;
        let Some(at) = refunds
            .entries
            .iter()
            .position(|r| r.key == refund.key && r.status == RefundStatus::Creating)
        else {
            return Ok(false);
        };
        let dropped = refunds.entries.remove(at);
        refunds.reserved = refunds.reserved.saturating_sub(dropped.amount);
        Ok(true)
    }

    async fn next_key_generation(
        &self,
        kind: PaymentKind,
        payment_id: &str,
        key: &RefundKey,
        from: u32,
    ) -> Result<bool, StoreError> {
        let mut tables = self.begin(Operation::ChangeRefund)?;
        let Some(item) = tables.intents.get_mut(&(kind, payment_id.to_string())) else {
            return Ok(false);
        };
        let Some(refund) = item.refunds.entries.iter_mut().find(|r| {
            &r.key == key && r.status == RefundStatus::Creating && r.key_generation == from
        }) else {
            return Ok(false);
        };
        refund.key_generation = from + 1;
        Ok(true)
    }

    async fn refund_sweep_cursor(&self) -> Result<Option<String>, StoreError> {
        Ok(self.begin(Operation::RefundSweep)?.refund_sweep.clone())
    }

    async fn advance_refund_sweep(&self, to: &str) -> Result<bool, StoreError> {
        let mut tables = self.begin(Operation::RefundSweep)?;
        if tables.refund_sweep.as_deref().is_some_and(|at| at >= to) {
            return Ok(false);
        }
        tables.refund_sweep = Some(to.to_string());
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    crate::store_contract_tests!(async { super::MemoryStore::default() });
}
