//! A create — a payment's or a refund's — in two DynamoDB round trips: before
//! Fintoc, the key taken with the first write of the command (the order reserved,
//! the refund's amount reserved); after, what Fintoc answered recorded with the key
//! completed (the payment stored and its order opened; the refund's answer, through
//! `RefundChange::complete`) — each one `TransactWriteItems` (the key lives in its
//! own table, which a transaction spans). Each transaction is all or nothing, so a
//! crash between the two leaves what one step at a time would have left after its
//! second write (or its fifth); a refusal writes nothing and says why, and the
//! caller then takes the single-write path (`IdempotencyStore`, `OrderStore`,
//! `PaymentStore`, `RefundStore`), which handles every rarer case as before.

use super::refunds::{payment_from_item, reserve_expr};
use super::{idempotency, orders, payments, DynamoStore, ReserveRefund, StoreError};
use crate::domain::idempotency::{AcquireRequest, CompleteRequest, LeaseId, ReservationId};
use crate::domain::order::{classify_reserve_conflict, OpenRequest};
use crate::domain::payment::StoredPayment;
use crate::store::ports::*;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};
use std::collections::HashMap;

impl DynamoStore {
    /// A fresh key for `acquire` put in one transaction with `first`, the
    /// command's first write; refused, the key as [`IdempotencyStore::acquire`]
    /// answers it, or what `first` found (its item, if any).
    async fn acquire_with(
        &self,
        operation: &'static str,
        acquire: &AcquireRequest<'_>,
        lease_id: LeaseId,
        reservation_id: ReservationId,
        first: TransactWriteItem,
    ) -> Result<KeyAnd<Option<HashMap<String, AttributeValue>>>, StoreError> {
        let key = idempotency::fresh_record_put(
            &self.idempotency_table,
            acquire,
            &lease_id,
            &reservation_id,
        )
        .map_err(build_error)?;
        let Some(refused) = self.transact(operation, vec![key, first]).await? else {
            return Ok(KeyAnd::Taken {
                lease_id,
                reservation_id,
            });
        };
        let mut refused = refused.into_iter();
        if let Some(record) = refused.next().flatten() {
            // A replay, in progress or a mismatch; or resumed (a released key, an
            // abandoned lease), whose command then makes its first write alone.
            let existing = idempotency::record_from(record)?;
            return self
                .acquire_found(acquire, &existing, lease_id)
                .await
                .map(KeyAnd::Key);
        }
        match refused.next().flatten() {
            Some(found) => Ok(KeyAnd::Refused(found)),
            None => Err(StoreError::Malformed(format!(
                "{operation}: a refused transaction refused neither item"
            ))),
        }
    }
}

fn build_error(e: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::Malformed(e.to_string())
}

impl CreateStore for DynamoStore {
    async fn acquire_reserving(
        &self,
        acquire: &AcquireRequest<'_>,
        order_id: &str,
    ) -> Result<KeyAndOrder, StoreError> {
        let reservation_id = ReservationId::random();
        let reserve = crate::domain::order::ReserveRequest {
            order_id,
            holder: reservation_id.as_str(),
            now_ms: acquire.now_ms,
            reserved_until_ms: acquire.lease_expires_at_ms,
        };
        let order = orders::reserve_expr(&reserve)
            .into_transact_update(
                &self.table,
                (super::PARTITION_KEY, orders::order_pk(order_id)),
            )
            .map_err(build_error)?;
        let taken = self
            .acquire_with(
                "acquire_reserving",
                acquire,
                LeaseId::random(),
                reservation_id,
                order,
            )
            .await?;
        taken.try_map_refused(|found| {
            let order = found.ok_or_else(|| {
                StoreError::Malformed("a refused order reservation returned no order".into())
            })?;
            Ok(classify_reserve_conflict(
                &orders::order_from_item(&order)?,
                acquire.now_ms,
            ))
        })
    }

    async fn acquire_reserving_refund(
        &self,
        acquire: &AcquireRequest<'_>,
        reserve: &ReserveRefund<'_>,
    ) -> Result<KeyAndRefund, StoreError> {
        let payment = reserve_expr(reserve)
            .into_transact_update(
                &self.table,
                (
                    super::PARTITION_KEY,
                    payments::payment_pk(reserve.kind, reserve.payment_id),
                ),
            )
            .map_err(build_error)?;
        let taken = self
            .acquire_with(
                "acquire_reserving_refund",
                acquire,
                LeaseId::random(),
                ReservationId::random(),
                payment,
            )
            .await?;
        taken.try_map_refused(|found| found.map(payment_from_item).transpose())
    }

    async fn record_created(
        &self,
        payment: &StoredPayment,
        open: &OpenRequest<'_>,
        complete: &CompleteRequest<'_>,
    ) -> Result<bool, StoreError> {
        let build = build_error;
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
