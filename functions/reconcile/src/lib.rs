//! The reconcile Lambda: run by an EventBridge Scheduler schedule (every 5 minutes
//! by default), it asks Fintoc for every open intent that is due for a check and
//! records what the webhooks missed, through
//! [`shared::app::reconcile::ReconcileService`].
//!
//! Thin by design: the schedule's payload is ignored (any JSON) — except the daily
//! audit schedule's (`{"source": "fintoc-payments.audit-schedule"}`), which runs the
//! read-only invariant audit (`shared::app::audit`) instead; the invocation's
//! deadline bounds the run; the answer is the run's summary (or the audit's
//! report), and its counts are published as CloudWatch metrics (EMF).

use lambda_runtime::LambdaEvent;
use serde_json::{json, Value};
use shared::app::audit::check_invariants;
use shared::app::reconcile::{Pause, ReconcileService, RunSummary, TokioPause};
use shared::clock::{Clock, SystemClock};
use shared::config::ReconcileConfig;
use shared::fintoc::{FintocHttpClient, FintocLookup};
use shared::store::{
    AuditStore, DynamoStore, EventStore, OperationsStore, PaymentStore, RefundStore, ScheduleStore,
};

/// The `source` of the daily audit schedule's input (`template.yaml`).
pub const AUDIT_SCHEDULE_SOURCE: &str = "fintoc-payments.audit-schedule";

/// Scan segments of the scheduled audit (read in parallel).
pub const AUDIT_SEGMENTS: i32 = 8;

/// The service as deployed.
pub type DeployedService = ReconcileService<DynamoStore, FintocHttpClient, SystemClock, TokioPause>;

/// Builds every client once, at cold start.
pub async fn init(config: &ReconcileConfig) -> Result<DeployedService, lambda_runtime::Error> {
    let sdk = shared::aws::load_sdk_config().await;
    let secret_key = config
        .fintoc
        .secret_key_source
        .resolve(&sdk)
        .await
        .map_err(|e| format!("loading the Fintoc secret key: {e}"))?;
    config.fintoc.key_mode(&secret_key)?;
    let dynamodb = shared::aws::dynamodb_client(&sdk, config.table.endpoint.as_deref());
    let fintoc = FintocHttpClient::new(
        &config.fintoc.base_url,
        secret_key,
        config.fintoc.versions.clone(),
        config.fintoc.retry.clone(),
    )?;
    Ok(ReconcileService::new(
        DynamoStore::new(dynamodb, &config.table.table_name),
        fintoc,
        SystemClock,
        TokioPause,
        config.settings.clone(),
    ))
}

/// The run's summary as the invocation answers it.
pub fn summary_json(summary: &RunSummary) -> Value {
    json!({
        "due": summary.due,
        "checked": summary.checked,
        "outcomes_found": summary.outcomes_found,
        "moves_found": summary.moves_found,
        "anomalies": summary.anomalies,
        "payment_anomalies": summary.payment_anomalies,
        "rescheduled": summary.rescheduled,
        "stuck": summary.stuck,
        "not_found": summary.not_found,
        "failed": summary.failed,
        "refunds_recorded": summary.refunds_recorded,
        "refunds_imported": summary.refunds_imported,
        "refund_anomalies": summary.refund_anomalies,
        "refund_sweep_stalled": summary.refund_sweep_stalled,
        "left_for_next_run": summary.left_for_next_run,
        "due_read": summary.due_read,
        "capacity": summary.capacity,
        "pace": summary.pace,
        "utilization_percent": summary.utilization_percent,
        "oldest_due_age_ms": summary.oldest_due_age_ms,
        "due_left": summary.due_left,
        "stalled": summary.stalled(),
    })
}

/// The run's metrics, by name: outcomes found by reconciliation are drift — each
/// one is a payment whose webhook had not arrived.
pub fn run_metrics(summary: &RunSummary) -> Vec<(&'static str, u64)> {
    vec![
        ("IntentsChecked", summary.checked),
        ("OutcomesAppliedByReconciliation", summary.outcomes_found),
        (
            "Drift",
            summary.outcomes_found + summary.refunds_recorded + summary.refunds_imported,
        ),
        ("RefundsImportedBySweep", summary.refunds_imported),
        (
            "RefundOutcomesAppliedByReconciliation",
            summary.refunds_recorded,
        ),
        (
            "Anomalies",
            summary.anomalies
                + summary.payment_anomalies
                + summary.not_found
                + summary.refund_anomalies,
        ),
        ("StuckIntents", summary.stuck),
        ("CheckFailures", summary.failed),
        ("StalledRuns", u64::from(summary.stalled())),
        ("RefundSweepStalled", summary.refund_sweep_stalled),
        // The promise (recorded within one interval of becoming due): at risk
        // when a run's backlog nears what it can check, broken for what is left.
        ("DueBacklog", summary.due_read),
        ("ReconcileUtilizationPercent", summary.utilization_percent),
        ("DueLeftAfterRun", summary.due_left),
        ("OldestDueCheckAgeSeconds", summary.oldest_due_age_ms / 1000),
    ]
}

/// Publishes the run's metrics (EMF).
pub fn emit_metrics(summary: &RunSummary, now_ms: i64) {
    shared::metrics::emit(now_ms, &[("Function", "reconcile")], &run_metrics(summary));
}

/// The scheduled invariant audit: the whole table read once, each violation
/// logged as an error, their count published (`InvariantViolations`, alarmed) with
/// the size of the operators' queue (`AttentionQueueSize`), and the report
/// answered.
pub async fn audit<S: AuditStore + OperationsStore>(store: &S, clock: &impl Clock) -> Value {
    let queue_size = match store.attention_queue().await {
        Ok(items) => Some(items.len() as u64),
        Err(e) => {
            tracing::error!(error = %e.detail(), "the operators' queue could not be read");
            None
        }
    };
    match check_invariants(store, AUDIT_SEGMENTS, clock.now_ms()).await {
        Ok(report) => {
            for v in &report.violations {
                tracing::error!(
                    invariant = v.invariant.as_str(),
                    subject = %v.subject,
                    detail = %v.detail,
                    "the invariant audit found a broken rule: see docs/operations.md"
                );
            }
            tracing::info!(
                checked = report.checked,
                scanned = report.scanned,
                violations = report.violations.len(),
                read_units = report.read_units,
                "invariant audit finished"
            );
            let mut counts = vec![
                ("InvariantViolations", report.violations.len() as u64),
                ("InvariantAuditItems", report.scanned as u64),
            ];
            counts.extend(queue_size.map(|n| ("AttentionQueueSize", n)));
            shared::metrics::emit(clock.now_ms(), &[("Function", "reconcile")], &counts);
            json!({
                "kind": "invariant_audit",
                "checked": report.checked,
                "scanned": report.scanned,
                "violations": report.violations.iter().map(|v| json!({
                    "invariant": v.invariant.as_str(), "subject": v.subject, "detail": v.detail,
                })).collect::<Vec<_>>(),
                "read_units": report.read_units,
                "queue_size": queue_size,
            })
        }
        Err(e) => {
            // No count is published; the next day's run tries again.
            tracing::error!(error = %e.detail(), "the invariant audit could not read the table");
            json!({"kind": "invariant_audit", "error": e.to_string()})
        }
    }
}

/// Handles one scheduled invocation: one bounded run, or the daily audit.
pub async fn handle<S, F, C, P>(
    service: &ReconcileService<S, F, C, P>,
    clock: &impl Clock,
    event: LambdaEvent<Value>,
) -> Value
where
    S: EventStore + ScheduleStore + PaymentStore + RefundStore + AuditStore + OperationsStore,
    F: FintocLookup,
    C: Clock,
    P: Pause,
{
    if event.payload["source"] == AUDIT_SCHEDULE_SOURCE {
        return audit(service.store(), clock).await;
    }
    // Lambda gives the deadline in Unix ms. A test's context has none (0), and an
    // emulator may give one that is not in the future (cargo lambda watch sends
    // seconds): the run is then bounded by its per-run limit alone.
    let started_ms = clock.now_ms();
    let deadline_ms = i64::try_from(event.context.deadline)
        .ok()
        .filter(|d| *d > started_ms);
    let summary = service.run(deadline_ms).await;
    tracing::info!(
        deadline_in_ms = deadline_ms.map(|d| d - started_ms),
        checked = summary.checked,
        outcomes_found = summary.outcomes_found,
        failed = summary.failed,
        left_for_next_run = summary.left_for_next_run,
        "reconciliation run finished"
    );
    if summary.stalled() {
        tracing::error!(
            due = summary.due,
            failed = summary.failed,
            "reconciliation made no progress: payments are due and no check got Fintoc's answer"
        );
    }
    emit_metrics(&summary, clock.now_ms());
    summary_json(&summary)
}
