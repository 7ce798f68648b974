//! The reconciler's sweep of Fintoc's refund list for refunds made outside this
//! API (Fintoc's dashboard, a plugin) of payments held here whose events never
//! arrived: read in bounded chunks from a stored cursor, each imported like a
//! refund made here.

use super::*;
use crate::domain::reconcile::{
    narrower_refund_sweep_chunk, refund_sweep_chunk_until, refund_sweep_cursor_after_chunk,
    refund_sweep_since, refund_target, REFUND_SWEEP_MAX_CHUNKS, REFUND_SWEEP_MIN_CHUNK_MS,
};
use crate::log_markers::REFUND_SWEEP_STALLED;
use std::time::Duration;

/// What one sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    /// Refunds made outside this API imported.
    pub imported: u64,
    /// Refunds made outside this API that do not fit what was refundable, kept
    /// for a human (logged `ANOMALY`).
    pub anomalies: u64,
    /// Reads that failed (the cursor's, a list's): the next run sweeps again.
    pub failed: u64,
    /// A minute of Fintoc's refund list longer than one read (logged
    /// `REFUND_SWEEP_STALLED`, its own alarm).
    pub stalled: bool,
}

/// Sweeps Fintoc's refund list (`GET /v1/refunds?since=&until=`, from the
/// stored cursor with an overlap, to now) for refunds made outside this API of
/// payments held here whose events never arrived, and imports each (reserved
/// like a refund made here: `app::refunds::record_or_import`; one beyond what
/// is refundable is an `ANOMALY`); one naming this backend's id that its
/// payment's record does not hold is imported too. A refund the record holds
/// is skipped (its payment's checks follow it), so reading a refund twice
/// changes nothing.
///
/// The window is read in chunks: whole at first, a chunk longer than one read
/// (10 pages of 300) halved until it fits, down to a minute — a minute that
/// still does not fit stalls the sweep (`refund_sweep_stalled`, its own alarm,
/// not a failed check). The cursor moves, once per run, to the end of the last
/// chunk read whole with every import recorded (none waiting on one of ours);
/// the next run sweeps on from there. A list that cannot be read counts as a
/// failed check.
pub async fn sweep_outside_refunds<S, F, C>(
    store: &S,
    fintoc: &F,
    clock: &C,
    budget: Duration,
) -> Swept
where
    S: PaymentStore + RefundStore,
    F: FintocLookup,
    C: Clock,
{
    let mut swept = Swept::default();
    let started_ms = clock.now_ms();
    let cursor = match store.refund_sweep_cursor().await {
        Ok(cursor) => cursor,
        Err(e) => {
            tracing::error!(error = %e.detail(), "could not read the refund sweep's cursor; the next run sweeps");
            swept.failed += 1;
            return swept;
        }
    };
    let cursor_ms = cursor.as_deref().and_then(crate::clock::parse_rfc3339_ms);
    let mut since_ms = refund_sweep_since(cursor_ms, started_ms);
    let mut span_ms = (started_ms - since_ms).max(REFUND_SWEEP_MIN_CHUNK_MS);
    let mut cursor_to = None;
    let mut reads = 0;
    while let Some(until_ms) = refund_sweep_chunk_until(since_ms, started_ms, span_ms) {
        if reads == REFUND_SWEEP_MAX_CHUNKS {
            break; // the next run sweeps on
        }
        reads += 1;
        // The chunk that reaches now is read to Fintoc's now (no `until`).
        let since = format_rfc3339_ms(since_ms);
        let until = (until_ms < started_ms).then(|| format_rfc3339_ms(until_ms));
        let list = match fintoc
            .list_refunds(&since, until.as_deref(), Some(budget))
            .await
        {
            Ok(list) => list,
            Err(e) => {
                tracing::warn!(error = %e, "could not list Fintoc's refunds; the next run sweeps the same window");
                swept.failed += 1;
                break;
            }
        };
        if !list.complete {
            match narrower_refund_sweep_chunk(span_ms) {
                Some(narrower) => span_ms = narrower,
                None => {
                    tracing::error!(
                        since = %since,
                        until = until.as_deref().unwrap_or("now"),
                        "{REFUND_SWEEP_STALLED}: a minute of Fintoc's refund list is longer than one read; the sweep's cursor stays, and refunds beyond what was read wait for their events"
                    );
                    swept.stalled = true;
                    break;
                }
            }
            continue;
        }
        if !import_listed(store, clock, &list.refunds, &mut swept).await {
            break; // read again by the next run, from this chunk
        }
        cursor_to = Some(refund_sweep_cursor_after_chunk(until_ms, started_ms));
        since_ms = until_ms;
    }
    if swept.imported > 0 {
        tracing::warn!(
            imported = swept.imported,
            "refunds made outside this API imported by the sweep: their events did not arrive"
        );
    }
    let Some(to) = cursor_to else {
        return swept;
    };
    if let Err(e) = store.advance_refund_sweep(&format_rfc3339_ms(to)).await {
        tracing::warn!(error = %e.detail(), "could not move the refund sweep's cursor; the next run sweeps the same window");
    }
    swept
}

/// Imports the refunds of one chunk of Fintoc's list that are of payments held
/// here and not on their record; whether every one is settled (recorded, or an
/// anomaly), so the cursor may move past the chunk: not when a read or an
/// import failed, nor when one waits on a refund of ours (`Deferred`).
async fn import_listed<S, C>(
    store: &S,
    clock: &C,
    refunds: &[RefundReport],
    swept: &mut Swept,
) -> bool
where
    S: PaymentStore + RefundStore,
    C: Clock,
{
    let mut settled = true;
    for report in refunds {
        let Some(target) = refund_target(report) else {
            continue;
        };
        let intent_id = target.payment_id.as_str();
        let payment = match payment_of_refund(store, &target).await {
            Ok(Some(payment)) => payment,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!(payment_id = intent_id, error = %e.detail(), "could not read the payment of a refund made elsewhere");
                settled = false;
                continue;
            }
        };
        // One on the record already: the payment's own checks follow it.
        let held = target
            .key
            .as_ref()
            .is_some_and(|k| payment.refunds.get(k).is_some());
        if held || payment.refunds.by_fintoc_id(&report.id).is_some() {
            continue;
        }
        match record_or_import(store, &payment, target.key.as_ref(), report, clock.now_ms()).await {
            Ok(RefundRecorded::Changed) => swept.imported += 1,
            Ok(RefundRecorded::Anomaly) => swept.anomalies += 1,
            // Read again by the next sweeps until the reservation it waits on
            // is settled.
            Ok(RefundRecorded::Deferred) => settled = false,
            Ok(_) => {}
            Err(e) => {
                tracing::error!(payment_id = intent_id, fintoc_refund_id = %report.id, error = %e.detail(), "could not import a refund made elsewhere; the next run sweeps it again");
                settled = false;
            }
        }
    }
    settled
}
