//! A create's combined writes in memory (`CreateStore`): each all or nothing, as
//! the DynamoDB store's transactions.

use super::*;

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
