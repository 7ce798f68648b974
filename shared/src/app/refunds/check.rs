//! The reconciler's check of a paid payment's open refunds: each asked of Fintoc
//! (`GET /v1/refunds/{id}`; one whose create's answer was lost, found in Fintoc's
//! list by the id this backend gave it) and recorded as an event would be; one
//! Fintoc never made is released a day after its create.

use super::*;
use crate::domain::refund::refund_create_never_made;
use crate::fintoc::RefundList;
use crate::log_markers::ANOMALY;
use std::time::Duration;

/// What a check of a payment's open refunds found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RefundsChecked {
    /// A refund is still open: the payment stays due.
    pub still_open: bool,
    /// A read or a write failed: counted as a failed check.
    pub failed: bool,
    /// Refunds whose status this check recorded (or released).
    pub recorded: u64,
}

/// Checks the open refunds of `payment` with Fintoc (each read within `budget`)
/// and records what it says, through [`record_refund_report`].
pub async fn check_open_refunds<S, F, C>(
    store: &S,
    fintoc: &F,
    clock: &C,
    payment: &StoredPayment,
    budget: Duration,
) -> RefundsChecked
where
    S: PaymentStore + RefundStore,
    F: FintocLookup,
    C: Clock,
{
    let id = payment.id.as_str();
    let budget = Some(budget);
    let open: Vec<_> = payment
        .refunds
        .entries
        .iter()
        .filter(|r| !r.status.is_final())
        .cloned()
        .collect();
    let mut failed = false;
    let mut still_open = false;
    let mut recorded = 0;
    let lost_since = open
        .iter()
        .filter(|r| r.fintoc_id.is_none())
        .map(|r| r.created_at.as_str())
        .min()
        .and_then(crate::clock::parse_rfc3339_ms)
        .map(|ms| format_rfc3339_ms(ms - 60_000));
    let listed = match &lost_since {
        None => RefundList::default(),
        Some(since) => match fintoc.list_refunds(since, None, budget).await {
            Ok(listed) => listed,
            Err(e) => {
                tracing::warn!(payment_id = id, error = %e, "could not list Fintoc's refunds");
                failed = true;
                RefundList::default()
            }
        },
    };
    for refund in &open {
        let report = match &refund.fintoc_id {
            Some(fintoc_id) => match fintoc.get_refund(fintoc_id, budget).await {
                Ok(Some(report)) if report.id == *fintoc_id => Some(report),
                Ok(_) => {
                    tracing::error!(payment_id = id, fintoc_refund_id = %fintoc_id, "{ANOMALY}: Fintoc does not know a refund this deployment made; a human must check it");
                    None
                }
                Err(e) => {
                    tracing::warn!(payment_id = id, fintoc_refund_id = %fintoc_id, error = %e, "could not check a refund with Fintoc");
                    failed = true;
                    None
                }
            },
            None => listed
                .refunds
                .iter()
                .find(|r| r.names(&payment.id, &refund.key))
                .cloned(),
        };
        let Some(report) = report else {
            let reserved_at = crate::clock::parse_rfc3339_ms(&refund.created_at).unwrap_or(0);
            let never_made = refund.fintoc_id.is_none()
                && refund.status == RefundStatus::Creating
                && !failed
                && refund_create_never_made(reserved_at, clock.now_ms(), false, listed.complete);
            if never_made {
                match store.drop_refund(payment.kind, &payment.id, refund).await {
                    Ok(dropped) => {
                        recorded += u64::from(dropped);
                        tracing::warn!(payment_id = id, refund_key = refund.key.as_str(), "a refund Fintoc never made (its create failed, and it is not in Fintoc's list a day later) is released");
                    }
                    Err(e) => {
                        tracing::error!(payment_id = id, error = %e.detail(), "could not release a refund Fintoc never made");
                        failed = true;
                        still_open = true;
                    }
                }
                continue;
            }
            still_open = true;
            continue;
        };
        let now = format_rfc3339_ms(clock.now_ms());
        match record_refund_report(store, payment, &refund.key, &report, &now).await {
            Ok((outcome, after)) => {
                recorded += u64::from(outcome == RefundRecorded::Changed);
                still_open |= after.is_none_or(|r| !r.status.is_final());
            }
            Err(e) => {
                tracing::error!(payment_id = id, error = %e.detail(), "could not record a refund's status");
                failed = true;
                still_open = true;
            }
        }
    }
    RefundsChecked {
        still_open,
        failed,
        recorded,
    }
}
