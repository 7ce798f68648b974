//! A create in two DynamoDB round trips: before Fintoc, the key taken with its order
//! reserved; after, the payment stored, the order opened with it and the key
//! completed — each one `TransactWriteItems` (the key lives in its own table,
//! which a transaction spans). Each transaction is all or nothing, so a crash
//! between the two leaves what one step at a time would have left after its
//! second write or its fifth; a refusal writes nothing and says why, and the
//! caller then takes the single-write path (`IdempotencyStore`, `OrderStore`,
//! `PaymentStore`), which handles every rarer case as before.

use super::{
    idempotency, orders, payments, DynamoStore, IdempotencyStore, OrderStore, PaymentStore,
    StoreError,
};
use crate::domain::idempotency::AcquireOutcome;
use crate::domain::idempotency::{AcquireRequest, CompleteRequest, LeaseId, ReservationId};
use crate::domain::order::{classify_reserve_conflict, OpenRequest, ReserveOutcome};
use crate::domain::payment::StoredPayment;
use std::future::Future;

/// What taking a fresh key with its order reserved gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyAndOrder {
    /// Both written in one transaction: the key held under `lease_id`, its order
    /// reserved for `reservation_id` until the lease ends.
    Taken {
        /// The lease on the key.
        lease_id: LeaseId,
        /// The reservation the order is held under.
        reservation_id: ReservationId,
    },
    /// The key was not fresh: what [`IdempotencyStore::acquire`] answers for it
    /// (a resumed record is `Acquired`, its order not reserved yet). Nothing of
    /// the order was written.
    Key(AcquireOutcome),
    /// The order refused its reservation: nothing was written, the key is not
    /// taken.
    OrderRefused(ReserveOutcome),
}

/// The two writes of a create on its happy path, each one request.
pub trait CreateStore: IdempotencyStore + OrderStore + PaymentStore {
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
}

impl CreateStore for DynamoStore {
    async fn acquire_reserving(
        &self,
        acquire: &AcquireRequest<'_>,
        order_id: &str,
    ) -> Result<KeyAndOrder, StoreError> {
        let lease_id = LeaseId::random();
        let reservation_id = ReservationId::random();
        let build = |e: aws_sdk_dynamodb::error::BuildError| StoreError::Malformed(e.to_string());
        let reserve = crate::domain::order::ReserveRequest {
            order_id,
            holder: reservation_id.as_str(),
            now_ms: acquire.now_ms,
            reserved_until_ms: acquire.lease_expires_at_ms,
        };
        let both = vec![
            idempotency::fresh_record_put(
                &self.idempotency_table,
                acquire,
                &lease_id,
                &reservation_id,
            )
            .map_err(build)?,
            orders::reserve_expr(&reserve)
                .into_transact_update(
                    &self.table,
                    (super::PARTITION_KEY, orders::order_pk(order_id)),
                )
                .map_err(build)?,
        ];
        let Some(refused) = self.transact("acquire_reserving", both).await? else {
            return Ok(KeyAndOrder::Taken {
                lease_id,
                reservation_id,
            });
        };
        if let Some(record) = refused.first().cloned().flatten() {
            // A replay, in progress or a mismatch; or resumed (a released key, an
            // abandoned lease) with its own reservation, which the caller then
            // asks the order for.
            let existing = idempotency::record_from(record)?;
            return self
                .acquire_found(acquire, &existing, lease_id)
                .await
                .map(KeyAndOrder::Key);
        }
        match refused.get(1).cloned().flatten().flatten() {
            Some(order) => Ok(KeyAndOrder::OrderRefused(classify_reserve_conflict(
                &orders::order_from_item(&order)?,
                acquire.now_ms,
            ))),
            None => Err(StoreError::Malformed(
                "a refused key and order transaction returned neither item".into(),
            )),
        }
    }

    async fn record_created(
        &self,
        payment: &StoredPayment,
        open: &OpenRequest<'_>,
        complete: &CompleteRequest<'_>,
    ) -> Result<bool, StoreError> {
        let build = |e: aws_sdk_dynamodb::error::BuildError| StoreError::Malformed(e.to_string());
        let pk = super::PARTITION_KEY;
        let three = vec![
            payments::created_expr(payment)
                .into_transact_update(
                    &self.table,
                    (pk, payments::payment_pk(payment.kind, &payment.id)),
                )
                .map_err(build)?,
            orders::open_expr(open)
                .into_transact_update(&self.table, (pk, orders::order_pk(open.order_id)))
                .map_err(build)?,
            idempotency::complete_expr(complete)
                .into_transact_update(
                    &self.idempotency_table,
                    (pk, idempotency::idempotency_pk(complete.key)),
                )
                .map_err(build)?,
        ];
        Ok(self.transact("record_created", three).await?.is_none())
    }
}
