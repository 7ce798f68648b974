//! Refunds of succeeded payments (of either flow), one resource in one folder:
//! `create` (`POST /payment-intents/{id}/refunds`, `POST
//! /checkout-sessions/{id}/refunds`: the amount reserved on the payment's record —
//! one conditional write, never more than it paid — then the refund created at
//! Fintoc under a key derived from the merchant's, exactly once per key),
//! `record` (what Fintoc reports of a refund — its answer, an event, a check —
//! recorded by [`record_refund_report`], the one place a stored refund changes,
//! and refunds made elsewhere imported), `cancel` (`POST /refunds/{id}/cancel`);
//! `GET /refunds/{id}` reads one back (here).

use super::errors::{fintoc_error, store_error};
use super::idempotent::{self, Acquiring, CommandResult, Fingerprinted, Lease};
use super::payments::{fintoc_budget, payment_not_found, CreateInput, PaymentService};
use crate::clock::{format_rfc3339_ms, Clock};
use crate::domain::create::parse_refund_request;
use crate::domain::error::{InputError, InputErrorKind};
use crate::domain::idempotency::{derive_fintoc_key_at, FintocKey, IdempotencyKey, StoredResponse};
use crate::domain::payment::{PaymentKind, PaymentStatus, StoredPayment};
use crate::domain::reconcile::RefundTarget;
use crate::domain::refund::{
    may_send_refund_create, plan_refund_update, RefundId, RefundKey, RefundOrigin, RefundRefusal,
    RefundReport, RefundRequest, RefundStatus, StoredRefund, REFUND_ID_METADATA_KEY,
};
use crate::domain::schedule::CHECK_DELAYS_MS;
use crate::fintoc::{CreateRefund, FintocApi, FintocError, FintocLookup, FintocRefunds};
use crate::http::{ApiError, Reply};
use crate::store::{
    CreateStore, EventStore, KeyAnd, OrderStore, PaymentStore, RefundChange, RefundOutcome,
    RefundStore, ReserveRefund, StoreError,
};
use sha2::{Digest, Sha256};

/// A refund request as the key is taken for it: which payment, and what.
#[derive(Debug, Clone)]
struct RefundCommand {
    kind: PaymentKind,
    payment_id: String,
    request: RefundRequest,
}

impl Fingerprinted for RefundCommand {
    fn fingerprint(&self) -> String {
        let canonical = serde_json::json!({
            "refund_of": format!("{}{}", self.kind.key_prefix(), self.payment_id),
            "request": self.request,
        });
        hex::encode(Sha256::digest(canonical.to_string()))
    }
}

mod cancel;
mod check;
mod create;
mod on_event;
mod record;
mod sweep;

use crate::app::record::{decide_and_write, Decided, Decision};
pub use check::{check_open_refunds, RefundsChecked};
pub use on_event::on_refund_event;
use record::{
    created_response, kept_changing, record_report, reserve_request, with_reserved, Recorded,
    RefundReservation,
};
pub use record::{import_refund, payment_of_refund, record_or_import, record_refund_report};
pub use sweep::{sweep_outside_refunds, Swept};

/// What recording a report did to a stored refund.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundRecorded {
    /// Written (the amount released, when the write did).
    Changed,
    /// Nothing new (a duplicate, a late status).
    Unchanged,
    /// A contradiction kept for a human (logged `ANOMALY`), never applied.
    Anomaly,
    /// No such refund on the payment's record.
    Unknown,
    /// A refund made elsewhere that does not fit yet, while a refund of this
    /// backend's still waits for Fintoc's answer (`creating`): whether it is an
    /// anomaly depends on whether Fintoc made that one. Left for the sweep, which
    /// reads it again (its cursor holds) until the reservation is settled.
    Deferred,
}
fn refund_reply(status: u16, payment: &StoredPayment, refund: &StoredRefund) -> Reply {
    let id = payment.refund_id(&refund.key);
    Reply::new(
        status,
        serde_json::to_string(&refund.view(&id)).expect("refund view serializes"),
    )
}

fn refund_not_found(id: &str) -> ApiError {
    InputError::new(
        InputErrorKind::NotFound,
        "resource_not_found",
        format!("No refund with id {}.", crate::domain::create::echo(id)),
    )
    .with_param("id")
    .into()
}
impl<S, F, C> PaymentService<S, F, C>
where
    S: CreateStore + PaymentStore + OrderStore + EventStore + RefundStore,
    F: FintocApi + FintocRefunds + FintocLookup,
    C: Clock,
{
    /// `GET /refunds/{id}`: the refund as stored.
    pub async fn get_refund(&self, id: &str) -> Result<Reply, ApiError> {
        let (payment, refund) = self.find_refund(id).await?;
        Ok(refund_reply(200, &payment, &refund))
    }

    async fn find_refund(&self, id: &str) -> Result<(StoredPayment, StoredRefund), ApiError> {
        let refund_id = RefundId::parse(id).ok_or_else(|| refund_not_found(id))?;
        let kind = if refund_id.session {
            PaymentKind::Session
        } else {
            PaymentKind::Intent
        };
        let payment = self
            .store
            .get_payment(kind, &refund_id.payment_id)
            .await
            .map_err(store_error)?
            .ok_or_else(|| refund_not_found(id))?;
        let refund = payment
            .refunds
            .get(&refund_id.key)
            .cloned()
            .ok_or_else(|| refund_not_found(id))?;
        Ok((payment, refund))
    }
}

#[cfg(test)]
mod tests;
