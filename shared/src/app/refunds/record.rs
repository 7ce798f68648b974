//! Recording what Fintoc reports of a refund on its payment's record — forward
//! only, decided again on what a refused write found — and importing refunds made
//! elsewhere of payments held here.

use super::*;
use crate::app::record::{
    decide_and_write, ConditionalWrite, Decided, Decision, RecordError, WriteOutcome,
};
use crate::log_markers::{ANOMALY, REFUND_FAILED};
use crate::store::RefundWrite;

/// Records what Fintoc reports of the refund under `key` on a payment's record:
/// forward only, Fintoc's id and failure code kept, the amount released by the one
/// write into an unpaid final status. Each write is guarded by the status it was
/// decided on; the first decision is made on `payment` as the caller last read it
/// (no read), a refused write is decided again on the payment it returned
/// (`ALL_OLD`). Returns what it did and the refund as it is left.
pub async fn record_refund_report<S: PaymentStore + RefundStore>(
    store: &S,
    payment: &StoredPayment,
    key: &RefundKey,
    report: &RefundReport,
    now: &str,
) -> Result<(RefundRecorded, Option<StoredRefund>), StoreError> {
    let recorded = record_report(store, payment, key, report, now, None).await?;
    Ok((recorded.effect, recorded.refund))
}

/// What [`record_report`] did.
pub(super) struct Recorded {
    pub(super) effect: RefundRecorded,
    pub(super) refund: Option<StoredRefund>,
    /// The key of `completing` was completed by the same write.
    pub(super) completed: bool,
}

/// A refund's change as decided on its payment: the write, and what it leaves.
pub(super) struct RefundUpdate<'a> {
    /// The payment as the decision saw it.
    payment: StoredPayment,
    /// The refund create's lease whose key this write also completes (the first
    /// write of a create's answer only).
    completing: Option<&'a Lease<RefundCommand>>,
    /// Now, as the write stamps it.
    now: &'a str,
    /// The refund as stored, and as the write leaves it.
    stored: StoredRefund,
    applied: StoredRefund,
    update: crate::domain::refund::RefundUpdate,
    /// Fintoc's id of the refund reported.
    fintoc_id: String,
}

impl<St: PaymentStore + RefundStore> ConditionalWrite<St> for RefundUpdate<'_> {
    type State = Option<StoredPayment>;
    /// Whether the key of `completing` was completed by the same write.
    type Done = bool;

    async fn write(
        &self,
        store: &St,
    ) -> Result<WriteOutcome<Option<StoredPayment>, bool>, StoreError> {
        let (payment, update, key) = (&self.payment, &self.update, &self.stored.key);
        let (kind, payment_id) = (payment.kind, payment.id.as_str());
        // A final status is the refund's outcome: recorded once with it, and a
        // succeeded refund of the payment that paid its order counts on the order.
        let refund_id = payment.refund_id(key).to_string();
        let outcome = update.status.is_final().then(|| RefundOutcome {
            refund_id: &refund_id,
            order_id: payment
                .order_id
                .as_deref()
                .filter(|_| update.status == RefundStatus::Succeeded && payment.paid()),
            payment_order_id: payment.order_id.as_deref(),
            amount: self.stored.amount,
            currency: &self.stored.currency,
        });
        let response = self
            .completing
            .map(|_| created_response(payment, &self.applied));
        let complete = self
            .completing
            .zip(response.as_ref())
            .map(|(lease, response)| lease.completion(response, Some(payment_id)));
        let written = store
            .change_refund(&RefundChange {
                kind,
                payment_id,
                key,
                expected: &self.stored.status,
                status: &update.status,
                fintoc_id: update.fintoc_id.as_deref(),
                failure_code: update.failure_code.as_deref(),
                release: update.release,
                updated_at: self.now,
                outcome,
                complete: complete.as_ref(),
            })
            .await?;
        Ok(match written {
            RefundWrite::Written => WriteOutcome::Done(complete.is_some()),
            RefundWrite::Conflict(Some(found)) => WriteOutcome::Refused(Some(*found)),
            RefundWrite::Conflict(None) => {
                WriteOutcome::Refused(store.get_payment(kind, payment_id).await?)
            }
        })
    }

    fn log_written(&self, _completed: &bool) {
        let (payment_id, update) = (self.payment.id.as_str(), &self.update);
        let refund_key = self.stored.key.as_str();
        if matches!(update.status, RefundStatus::Failed | RefundStatus::Rejected) {
            // Counted by the stack's log metric filter (RefundsFailed → alarm), so
            // logged at ERROR, which every LogLevel the template offers prints
            // (FATAL aside): the payer did not get the money back.
            tracing::error!(
                payment_id,
                refund_key,
                fintoc_refund_id = %self.fintoc_id,
                status = update.status.as_str(),
                failure_code = update.failure_code.as_deref().unwrap_or_default(),
                "{REFUND_FAILED}: a refund ended unpaid; its amount is refundable again"
            );
        }
        tracing::info!(
            payment_id,
            refund_key,
            fintoc_refund_id = %self.fintoc_id,
            status = update.status.as_str(),
            released = update.release.unwrap_or_default(),
            "refund recorded"
        );
    }
}

/// [`record_refund_report`]; with `completing`, the refund create's lease whose
/// key the first write also completes with the created refund's answer (one
/// request), when that write is made as decided on `payment`. A refused write is
/// decided again on the payment it returned (`ALL_OLD`; read only when it
/// returned none), through the one engine, `record::decide_and_write`.
pub(super) async fn record_report<S: PaymentStore + RefundStore>(
    store: &S,
    payment: &StoredPayment,
    key: &RefundKey,
    report: &RefundReport,
    now: &str,
    completing: Option<&Lease<RefundCommand>>,
) -> Result<Recorded, StoreError> {
    let payment_id = payment.id.as_str();
    // The first write completes the key; one decided again does not (a lost lease
    // would refuse every write with it; `idempotent::finish` completes it).
    let mut completing = completing;
    let decided = decide_and_write(
        store,
        Some(payment.clone()),
        |payment: &Option<StoredPayment>| {
            let Some(stored) = payment.as_ref().and_then(|p| p.refunds.get(key)) else {
                return Decision::Stop((RefundRecorded::Unknown, None));
            };
            match plan_refund_update(stored, report) {
                Ok(None) => Decision::Stop((RefundRecorded::Unchanged, Some(stored.clone()))),
                Ok(Some(update)) => Decision::Write(RefundUpdate {
                    payment: payment.clone().expect("a payment holds the refund"),
                    completing: completing.take(),
                    now,
                    stored: stored.clone(),
                    applied: update.applied_to(stored, now),
                    update,
                    fintoc_id: report.id.clone(),
                }),
                Err(_) => {
                    tracing::error!(
                        payment_id,
                        refund_key = key.as_str(),
                        fintoc_refund_id = %report.id,
                        stored_status = stored.status.as_str(),
                        reported_status = report.status.as_str(),
                        "{ANOMALY}: Fintoc reports a refund that contradicts the stored one; kept for a human"
                    );
                    Decision::Stop((RefundRecorded::Anomaly, Some(stored.clone())))
                }
            }
        },
    )
    .await
    .map_err(|e| kept_changing(e, "refund", payment_id))?;
    Ok(match decided {
        Decided::Written { plan, result } => Recorded {
            effect: RefundRecorded::Changed,
            refund: Some(plan.applied),
            completed: result,
        },
        Decided::Stopped {
            answer: (effect, refund),
            ..
        } => Recorded {
            effect,
            refund,
            completed: false,
        },
    })
}

/// A bound reached while recording `what` of `payment_id`, as the store's conflict.
pub(super) fn kept_changing(e: RecordError, what: &str, payment_id: &str) -> StoreError {
    match e {
        RecordError::Store(e) => e,
        RecordError::KeptChanging => StoreError::Conflict(format!(
            "payment {payment_id} kept changing while recording a {what}"
        )),
    }
}

/// The payment a reported refund is of, as held here: the one its target names,
/// or, for a refund made elsewhere of a payment intent stored under its checkout
/// session (a session's attempt), that session — when the attempt is the one
/// recorded as its payment. `None`: not a payment held here.
pub async fn payment_of_refund<S: PaymentStore>(
    store: &S,
    target: &RefundTarget,
) -> Result<Option<StoredPayment>, StoreError> {
    if let Some(payment) = store.get_payment(target.kind, &target.payment_id).await? {
        return Ok(Some(payment));
    }
    if target.kind != PaymentKind::Intent || target.key.is_some() {
        return Ok(None);
    }
    let Some(session_id) = store.session_of_attempt(&target.payment_id).await? else {
        return Ok(None);
    };
    Ok(store
        .get_payment(PaymentKind::Session, &session_id)
        .await?
        .filter(|session| {
            session
                .session_payment
                .as_ref()
                .is_some_and(|p| p.intent_id == target.payment_id)
        }))
}

/// Puts a reported refund of `payment` (held here) on its books: recorded on the
/// refund under `key` (this backend's id named it) or with Fintoc's id; one the
/// record does not hold is imported, so no refund of a payment held here is left
/// off its books — not even one of this backend's whose reservation was lost
/// (logged `ANOMALY`: it should not happen).
pub async fn record_or_import<S: PaymentStore + RefundStore>(
    store: &S,
    payment: &StoredPayment,
    key: Option<&RefundKey>,
    report: &RefundReport,
    now_ms: i64,
) -> Result<RefundRecorded, StoreError> {
    let held = key
        .filter(|k| payment.refunds.get(k).is_some())
        .cloned()
        .or_else(|| {
            payment
                .refunds
                .by_fintoc_id(&report.id)
                .map(|r| r.key.clone())
        });
    if let Some(held) = held {
        let now = format_rfc3339_ms(now_ms);
        return Ok(record_refund_report(store, payment, &held, report, &now)
            .await?
            .0);
    }
    if key.is_some() {
        tracing::error!(
            payment_id = %payment.id,
            fintoc_refund_id = %report.id,
            "{ANOMALY}: a refund this backend made is missing from its payment's record; imported"
        );
    }
    import_refund(store, payment, report, now_ms).await
}

/// Imports a refund made elsewhere (Fintoc's dashboard, a plugin) of `payment`,
/// which this deployment holds: reserved like a refund made here (under a key
/// derived from Fintoc's id, so a second report finds it), then recorded. One that
/// does not fit what is still refundable is an `ANOMALY`: money went out beyond
/// what this backend holds, and a human must look. A refund reported ended unpaid
/// holds nothing and is not imported.
pub async fn import_refund<S: PaymentStore + RefundStore>(
    store: &S,
    payment: &StoredPayment,
    report: &RefundReport,
    now_ms: i64,
) -> Result<RefundRecorded, StoreError> {
    let now = &format_rfc3339_ms(now_ms);
    if report.status.releases_amount() {
        tracing::info!(payment_id = %payment.id, fintoc_refund_id = %report.id, status = report.status.as_str(), "a refund made elsewhere ended unpaid; nothing to import");
        return Ok(RefundRecorded::Unchanged);
    }
    let key = RefundKey::for_import(&report.id);
    let amount = report.amount.unwrap_or_default();
    let decided = decide_and_write(
        store,
        Some(payment.clone()),
        |payment: &Option<StoredPayment>| {
            let Some(payment) = payment else {
                return Decision::Stop(Import::Unknown);
            };
            if payment.refunds.get(&key).is_some() {
                return Decision::Stop(Import::Held);
            }
            let fits = amount > 0 && payment.refund_ledger().reserve(Some(amount)).is_ok();
            let unconfirmed = payment
                .refunds
                .entries
                .iter()
                .any(|r| r.status == RefundStatus::Creating);
            if amount > 0 && !fits && unconfirmed {
                tracing::warn!(
                    payment_id = %payment.id,
                    fintoc_refund_id = %report.id,
                    amount,
                    "a refund made outside this API does not fit while a refund of ours awaits Fintoc's answer; imported once that is settled"
                );
                return Decision::Stop(Import::Deferred);
            }
            if !fits {
                tracing::error!(
                    payment_id = %payment.id,
                    fintoc_refund_id = %report.id,
                    amount,
                    refundable = payment.refund_ledger().refundable(),
                    "{ANOMALY}: a refund made outside this API exceeds what is refundable here; kept for a human"
                );
                return Decision::Stop(Import::Anomaly);
            }
            Decision::Write(RefundReservation {
                payment: payment.clone(),
                refund: StoredRefund {
                    key: key.clone(),
                    fintoc_id: Some(report.id.clone()),
                    amount,
                    currency: report
                        .currency
                        .clone()
                        .unwrap_or_else(|| payment.currency.clone()),
                    status: RefundStatus::Pending,
                    failure_code: None,
                    metadata: report.metadata.clone(),
                    origin: RefundOrigin::Imported,
                    key_generation: 0,
                    created_at: report.created_at.clone().unwrap_or_else(|| now.to_string()),
                    updated_at: now.to_string(),
                },
                now_ms,
                first_check_after_ms: CHECK_DELAYS_MS[0],
            })
        },
    )
    .await
    .map_err(|e| kept_changing(e, "refund made elsewhere", &payment.id))?;
    match decided {
        Decided::Written { plan, .. } => {
            let reserved = with_reserved(plan.payment, &plan.refund);
            record_refund_report(store, &reserved, &key, report, now).await?;
            Ok(RefundRecorded::Changed)
        }
        Decided::Stopped {
            answer: Import::Held,
            state: Some(payment),
        } => Ok(record_refund_report(store, &payment, &key, report, now)
            .await?
            .0),
        Decided::Stopped { answer, .. } => Ok(match answer {
            Import::Deferred => RefundRecorded::Deferred,
            Import::Anomaly => RefundRecorded::Anomaly,
            Import::Held | Import::Unknown => RefundRecorded::Unknown,
        }),
    }
}

/// Why an import stopped before reserving.
enum Import {
    /// The payment (the state the decision saw) holds it already (an earlier
    /// report imported it): record.
    Held,
    /// It waits on a refund of this backend's still `creating`.
    Deferred,
    /// It does not fit what is refundable.
    Anomaly,
    /// The payment is gone.
    Unknown,
}

/// A refund's reservation as decided on its payment: the one conditional write
/// that keeps refunds within what was paid (a refund made here, or one imported).
pub(super) struct RefundReservation {
    /// The payment as the decision saw it.
    pub(super) payment: StoredPayment,
    /// The refund to reserve.
    pub(super) refund: StoredRefund,
    /// Now (Unix ms), and when its open refunds are first checked after it.
    pub(super) now_ms: i64,
    pub(super) first_check_after_ms: i64,
}

impl<St: PaymentStore + RefundStore> ConditionalWrite<St> for RefundReservation {
    type State = Option<StoredPayment>;
    type Done = ();

    /// The reservation: refused, the payment as it is stored now (read when the
    /// refusal returned none).
    async fn write(
        &self,
        store: &St,
    ) -> Result<WriteOutcome<Option<StoredPayment>, ()>, StoreError> {
        let request = reserve_request(
            &self.payment,
            &self.refund,
            self.now_ms,
            self.first_check_after_ms,
        );
        Ok(match store.reserve_refund(&request).await? {
            RefundWrite::Written => WriteOutcome::Done(()),
            RefundWrite::Conflict(Some(found)) => WriteOutcome::Refused(Some(*found)),
            RefundWrite::Conflict(None) => WriteOutcome::Refused(
                store
                    .get_payment(self.payment.kind, &self.payment.id)
                    .await?,
            ),
        })
    }

    fn log_written(&self, _: &()) {
        let (payment_id, refund) = (&self.payment.id, &self.refund);
        match refund.origin {
            RefundOrigin::Imported => tracing::warn!(
                payment_id = %payment_id,
                fintoc_refund_id = refund.fintoc_id.as_deref().unwrap_or_default(),
                amount = refund.amount,
                "imported a refund made outside this API"
            ),
            RefundOrigin::Api => tracing::info!(
                payment_id = %payment_id,
                refund_key = refund.key.as_str(),
                amount = refund.amount,
                "refund reserved"
            ),
        }
    }
}

/// The write reserving `refund` on `payment` as read (its open refunds checked
/// `first_check_after_ms` from `now_ms` when nothing is scheduled yet).
pub(super) fn reserve_request<'a>(
    payment: &'a StoredPayment,
    refund: &'a StoredRefund,
    now_ms: i64,
    first_check_after_ms: i64,
) -> ReserveRefund<'a> {
    ReserveRefund {
        kind: payment.kind,
        payment_id: &payment.id,
        paid: payment.refundable_base(),
        refund,
        schedule: payment.schedule_for_refunds(now_ms, first_check_after_ms),
    }
}

/// `payment` as the write reserving `refund` left it (what is recorded next is
/// decided on it, without reading it again).
pub(super) fn with_reserved(mut payment: StoredPayment, refund: &StoredRefund) -> StoredPayment {
    payment.refunds.reserved += refund.amount;
    payment.refunds.entries.push(refund.clone());
    payment
}
/// The answer stored for a refund create: the refund as recorded, 201.
pub(super) fn created_response(payment: &StoredPayment, refund: &StoredRefund) -> StoredResponse {
    StoredResponse {
        status: 201,
        body: refund_reply(201, payment, refund).body,
    }
}
