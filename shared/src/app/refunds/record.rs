//! Recording what Fintoc reports of a refund on its payment's record — forward
//! only, decided again on what a refused write found — and importing refunds made
//! elsewhere of payments held here.

use super::*;
use crate::log_markers::{ANOMALY, REFUND_FAILED};

/// Records what Fintoc reports of the refund under `key` on a payment's record:
/// forward only, Fintoc's id and failure code kept, the amount released by the one
/// write into an unpaid final status. Each write is guarded by the status it was
/// decided on; the first decision is made on `payment` as the caller last read it
/// (no read), a refused write is decided again on a fresh read. Returns what it did
/// and the refund as it is left.
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

/// [`record_refund_report`]; with `completing`, the refund create's lease whose
/// key the first write also completes with the created refund's answer (one
/// request), when that write is made as decided on `payment`.
pub(super) async fn record_report<S: PaymentStore + RefundStore>(
    store: &S,
    payment: &StoredPayment,
    key: &RefundKey,
    report: &RefundReport,
    now: &str,
    mut completing: Option<&Lease<RefundCommand>>,
) -> Result<Recorded, StoreError> {
    let (kind, payment_id) = (payment.kind, payment.id.as_str());
    let unchanged = |effect, refund: Option<&StoredRefund>| Recorded {
        effect,
        refund: refund.cloned(),
        completed: false,
    };
    let mut read = Some(payment.clone());
    for _ in 0..MAX_ATTEMPTS {
        let payment = match read.take() {
            Some(known) => known,
            None => match store.get_payment(kind, payment_id).await? {
                Some(fresh) => fresh,
                None => return Ok(unchanged(RefundRecorded::Unknown, None)),
            },
        };
        let Some(stored) = payment.refunds.get(key) else {
            return Ok(unchanged(RefundRecorded::Unknown, None));
        };
        let update = match plan_refund_update(stored, report) {
            Ok(None) => return Ok(unchanged(RefundRecorded::Unchanged, Some(stored))),
            Ok(Some(update)) => update,
            Err(_) => {
                tracing::error!(
                    payment_id,
                    refund_key = key.as_str(),
                    fintoc_refund_id = %report.id,
                    stored_status = stored.status.as_str(),
                    reported_status = report.status.as_str(),
                    "{ANOMALY}: Fintoc reports a refund that contradicts the stored one; kept for a human"
                );
                return Ok(unchanged(RefundRecorded::Anomaly, Some(stored)));
            }
        };
        // A final status is the refund's outcome: recorded once with it, and a
        // succeeded refund of the payment that paid its order counts on the order.
        let refund_id = payment.refund_id(key).to_string();
        let outcome = update.status.is_final().then(|| RefundOutcome {
            refund_id: &refund_id,
            order_id: payment
                .order_id
                .as_deref()
                .filter(|_| update.status == RefundStatus::Succeeded && payment.paid()),
            amount: stored.amount,
            currency: &stored.currency,
        });
        let applied = update.applied_to(stored, now);
        let response = completing.map(|_| created_response(&payment, &applied));
        let complete = completing
            .zip(response.as_ref())
            .map(|(lease, response)| lease.completion(response, Some(payment_id)));
        let written = store
            .change_refund(&RefundChange {
                kind,
                payment_id,
                key,
                expected: &stored.status,
                status: &update.status,
                fintoc_id: update.fintoc_id.as_deref(),
                failure_code: update.failure_code.as_deref(),
                release: update.release,
                updated_at: now,
                outcome,
                complete: complete.as_ref(),
            })
            .await?;
        if written {
            if matches!(update.status, RefundStatus::Failed | RefundStatus::Rejected) {
                // Counted by the stack's log metric filter (RefundsFailed → alarm),
                // so logged at ERROR, which every LogLevel the template offers prints
                // (FATAL aside): the payer did not get the money back.
                tracing::error!(
                    payment_id,
                    refund_key = key.as_str(),
                    fintoc_refund_id = %report.id,
                    status = update.status.as_str(),
                    failure_code = update.failure_code.as_deref().unwrap_or_default(),
                    "{REFUND_FAILED}: a refund ended unpaid; its amount is refundable again"
                );
            }
            tracing::info!(
                payment_id,
                refund_key = key.as_str(),
                fintoc_refund_id = %report.id,
                status = update.status.as_str(),
                released = update.release.unwrap_or_default(),
                "refund recorded"
            );
            return Ok(Recorded {
                effect: RefundRecorded::Changed,
                refund: Some(applied),
                completed: complete.is_some(),
            });
        }
        // Refused: decided again on a fresh read, without the key (a lost lease
        // would refuse every write with it; `idempotent::finish` completes it).
        completing = None;
    }
    Err(StoreError::Conflict(format!(
        "refund {} of {payment_id} kept changing",
        key.as_str()
    )))
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
    let mut payment = payment.clone();
    for _ in 0..MAX_ATTEMPTS {
        if payment.refunds.get(&key).is_some() {
            return Ok(record_refund_report(store, &payment, &key, report, now)
                .await?
                .0);
        }
        let amount = report.amount.unwrap_or_default();
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
            return Ok(RefundRecorded::Deferred);
        }
        if !fits {
            tracing::error!(
                payment_id = %payment.id,
                fintoc_refund_id = %report.id,
                amount,
                refundable = payment.refund_ledger().refundable(),
                "{ANOMALY}: a refund made outside this API exceeds what is refundable here; kept for a human"
            );
            return Ok(RefundRecorded::Anomaly);
        }
        let refund = StoredRefund {
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
        };
        match store
            .reserve_refund(&reserve_request(
                &payment,
                &refund,
                now_ms,
                CHECK_DELAYS_MS[0],
            ))
            .await?
        {
            ReserveRefundOutcome::Reserved => {
                tracing::warn!(payment_id = %payment.id, fintoc_refund_id = %report.id, amount, "imported a refund made outside this API");
                let reserved = with_reserved(payment.clone(), &refund);
                record_refund_report(store, &reserved, &key, report, now).await?;
                return Ok(RefundRecorded::Changed);
            }
            ReserveRefundOutcome::Conflict(Some(now_stored)) => payment = *now_stored,
            ReserveRefundOutcome::Conflict(None) => return Ok(RefundRecorded::Unknown),
        }
    }
    Err(StoreError::Conflict(format!(
        "payment {} kept changing while importing a refund",
        payment.id
    )))
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
