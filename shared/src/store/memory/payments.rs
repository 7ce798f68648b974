//! Payments in memory, and what events write to them (`EventStore`): the same
//! guards as the DynamoDB store's patches.

use super::schedule::change_schedule;
use super::*;

impl Tables {
    /// [`PaymentStore::save_created`], on the locked tables.
    pub(super) fn save_created(&mut self, intent: &StoredPayment) -> Result<(), StoreError> {
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
