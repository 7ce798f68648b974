//! Refunds in memory, on their payment: reserved within what it paid, changed
//! forward only, dropped once, as the DynamoDB store writes them.

use super::*;

impl Tables {
    /// [`RefundStore::reserve_refund`], under the lock.
    pub(super) fn reserve_refund(
        &mut self,
        request: &ReserveRefund<'_>,
    ) -> Result<RefundWrite, StoreError> {
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
    pub(super) fn refund_refusal(
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
    pub(super) fn change_refund(&mut self, change: &RefundChange<'_>) -> Result<bool, StoreError> {
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
