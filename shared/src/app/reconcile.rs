//! The reconciliation use case: one bounded run over the open intents that are due
//! for a check. Each is fetched from Fintoc and Fintoc's answer applied through the
//! same decision and the same single conditional write as a webhook
//! (`domain::reconcile::plan_check`), so a webhook and a check racing on one intent
//! still change it once.
//!
//! A run reads one page of each index shard, checks at most
//! [`ReconcileSettings::max_intents_per_run`] intents, paces its Fintoc calls under
//! [`ReconcileSettings::max_requests_per_sec`], and stops starting checks
//! [`ReconcileSettings::reserve_ms`] before the invocation's deadline; what it
//! leaves is still due, so the next run takes it. One intent's failure never stops
//! the run.

use super::record::{self, Plan, Recorded};
use super::refunds::{check_open_refunds, sweep_outside_refunds};
use crate::clock::{format_rfc3339_ms, Clock, ManualClock};
use crate::domain::payment::PaymentKind;
use crate::domain::reconcile::{
    plan_check, plan_failed_check, plan_refund_check, CheckPlan, FintocAnswer, Flag, ScheduleUpdate,
};
use crate::domain::reconcile::{plan_run, utilization_percent};
use crate::domain::schedule::{shard_of, CheckSchedule, ScheduleChange};
use crate::domain::transition::{Effect, PaymentState};
use crate::fintoc::FintocLookup;
use crate::log_markers::ANOMALY;
use crate::store::{DuePayment, EventStore, PaymentStore, RefundStore, ScheduleStore, WriteResult};
use std::collections::HashSet;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

/// How a run is bounded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconcileSettings {
    /// Index shards to read (the table's `INDEX_SHARDS`).
    pub shards: u16,
    /// Most intents checked in one run.
    pub max_intents_per_run: usize,
    /// Most Fintoc requests per second (Fintoc allows 100 per organization; the
    /// create path needs its share).
    pub max_requests_per_sec: u32,
    /// Checks in flight at once.
    pub concurrency: usize,
    /// No check starts later than this before the invocation's deadline (ms); at
    /// most a third of the time the invocation has.
    pub reserve_ms: i64,
    /// Time one Fintoc lookup may take, retries included.
    pub lookup_budget: Duration,
    /// Whether each run also sweeps Fintoc's refund list for refunds made
    /// outside this API (see [`ReconcileService::sweep_outside_refunds`]).
    pub sweep_refunds: bool,
}

impl Default for ReconcileSettings {
    fn default() -> Self {
        Self {
            shards: crate::domain::schedule::INDEX_SHARDS,
            max_intents_per_run: 20_000,
            max_requests_per_sec: 40,
            concurrency: 16,
            reserve_ms: 15_000,
            lookup_budget: Duration::from_secs(10),
            sweep_refunds: true,
        }
    }
}

/// Waits until a point of the service's clock (real sleep in Lambda; tests move a
/// manual clock instead).
pub trait Pause: Send + Sync {
    /// Returns once the clock reads `at_ms` or later.
    fn until(&self, at_ms: i64) -> impl Future<Output = ()> + Send;
}

/// [`Pause`] on the real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioPause;

impl Pause for TokioPause {
    async fn until(&self, at_ms: i64) {
        let now = crate::clock::SystemClock.now_ms();
        if at_ms > now {
            tokio::time::sleep(Duration::from_millis((at_ms - now) as u64)).await;
        }
    }
}

/// [`Pause`] on a [`ManualClock`]: moves it forward instead of sleeping (tests and
/// benchmarks run paced reconciliation in virtual time).
#[derive(Debug, Clone)]
pub struct ManualPause(pub ManualClock);

impl Pause for ManualPause {
    async fn until(&self, at_ms: i64) {
        if at_ms > self.0.now_ms() {
            self.0.set_ms(at_ms);
        }
    }
}

/// What one run did; also emitted as metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunSummary {
    /// Due payments the run found (up to its bound).
    pub due: u64,
    /// Shards of the index the run could not read.
    pub unread_shards: u64,
    /// Payments whose check got Fintoc's answer.
    pub checked: u64,
    /// Final outcomes recorded by this run: each one a webhook had not delivered
    /// (drift: webhooks are not arriving).
    pub outcomes_found: u64,
    /// Non-final moves recorded (e.g. `created` → `pending`).
    pub moves_found: u64,
    /// Conflicting final answers kept as anomalies.
    pub anomalies: u64,
    /// Payments of another amount, or that their order did not take.
    pub payment_anomalies: u64,
    /// Intents checked again later.
    pub rescheduled: u64,
    /// Intents still open at the give-up point, flagged for a human.
    pub stuck: u64,
    /// Intents Fintoc does not know, flagged for a human.
    pub not_found: u64,
    /// Checks that failed (Fintoc or storage), and shards that could not be read:
    /// each failed check is counted on its payment and checked again later.
    pub failed: u64,
    /// Payments whose refunds' outcomes this run recorded (each one a refund
    /// webhook had not delivered).
    pub refunds_recorded: u64,
    /// Refunds made outside this API (Fintoc's dashboard, a plugin) of payments
    /// held here, imported by the run's sweep of Fintoc's refund list.
    pub refunds_imported: u64,
    /// Refunds made outside this API that do not fit what was refundable, kept for
    /// a human (logged `ANOMALY`).
    pub refund_anomalies: u64,
    /// 1 when the refund sweep stalled: a minute of Fintoc's refund list longer
    /// than one read (logged `REFUND_SWEEP_STALLED`, its own alarm).
    pub refund_sweep_stalled: u64,
    /// Due intents left for the next run (deadline or per-run bound).
    pub left_for_next_run: bool,
    /// Due payments the index answered (each shard read up to the run's share,
    /// plus one: more than the run can check shows here).
    pub due_read: u64,
    /// Checks the run could make in its time at its ceiling (`domain::reconcile::plan_run`).
    pub capacity: u64,
    /// The pace it checked at (per second): the backlog's, between the floor and
    /// the ceiling.
    pub pace: u32,
    /// `due_read` against `capacity`, in percent: above 80 the promise is at risk,
    /// above 100 it is broken for what is left.
    pub utilization_percent: u64,
    /// How long the oldest due payment read had been due (ms).
    pub oldest_due_age_ms: u64,
    /// Due payments read and not checked (the deadline came), plus those the
    /// index held beyond the run's reads: each is recorded later than promised.
    pub due_left: u64,
}

impl RunSummary {
    /// Whether the run had work and got none of it done: payments were due (or a
    /// shard could not be read) and not one check got Fintoc's answer. Alarmed
    /// when it lasts: reconciliation has stopped.
    pub fn stalled(&self) -> bool {
        self.checked == 0 && (self.due > 0 || self.unread_shards > 0)
    }
}

/// What one check ended in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CheckResult {
    Outcome,
    Move,
    Anomaly,
    PaymentAnomaly,
    Rescheduled,
    Stuck,
    NotFound,
    Unchanged,
    Failed,
    RefundRecorded,
}

impl CheckResult {
    /// Its name, as an operator's `reconcile` answers it.
    fn as_str(self) -> &'static str {
        match self {
            Self::Outcome => "outcome_recorded",
            Self::Move => "move_recorded",
            Self::Anomaly => "anomaly",
            Self::PaymentAnomaly => "outcome_recorded_with_anomaly",
            Self::Rescheduled => "rescheduled",
            Self::Stuck => "flagged_stuck",
            Self::NotFound => "flagged_not_found_at_fintoc",
            Self::Unchanged => "unchanged",
            Self::Failed => "check_failed",
            Self::RefundRecorded => "refund_recorded",
        }
    }
}

/// Paces requests: one slot every `1000 / rate` ms of the service's clock.
#[derive(Debug)]
struct Pacer {
    interval_ms: i64,
    next_ms: Mutex<Option<i64>>,
}

impl Pacer {
    fn new(per_sec: u32) -> Self {
        Self {
            interval_ms: (1000 / i64::from(per_sec.max(1))).max(1),
            next_ms: Mutex::new(None),
        }
    }

    /// The time of the next free slot at or after `now_ms`, taken.
    fn take(&self, now_ms: i64) -> i64 {
        let mut next = self.next_ms.lock().unwrap_or_else(|e| e.into_inner());
        let slot = next.map_or(now_ms, |n| n.max(now_ms));
        *next = Some(slot + self.interval_ms);
        slot
    }
}

/// The reconciler over a store, a Fintoc lookup, a clock and a pause.
#[derive(Debug)]
pub struct ReconcileService<S, F, C, P> {
    store: S,
    fintoc: F,
    clock: C,
    pause: P,
    settings: ReconcileSettings,
}

impl<S, F, C, P> ReconcileService<S, F, C, P>
where
    S: EventStore + ScheduleStore + PaymentStore + RefundStore,
    F: FintocLookup,
    C: Clock,
    P: Pause,
{
    /// A service over its dependencies.
    pub fn new(store: S, fintoc: F, clock: C, pause: P, settings: ReconcileSettings) -> Self {
        Self {
            store,
            fintoc,
            clock,
            pause,
            settings,
        }
    }

    /// An operator's `reconcile`: the payment checked now, through the same
    /// decision and write as a run's check (its refunds', once it is paid; a
    /// payment flagged stuck, off the schedule, as past its give-up time). `None`
    /// when there is nothing to check: final, and no refund of it open.
    pub async fn check_now(
        &self,
        kind: PaymentKind,
        id: &str,
    ) -> Result<Option<&'static str>, crate::store::StoreError> {
        let Some(state) = self.store.payment_state(kind, id).await? else {
            return Ok(None);
        };
        let now_ms = self.clock.now_ms();
        let schedule = match self.store.get_payment(kind, id).await? {
            Some(payment) => match payment.schedule {
                Some(schedule) => schedule,
                // Off the schedule yet not final (flagged stuck): checked as past
                // its give-up time — an outcome is recorded, else it stays flagged.
                None if !state.status.is_final() => CheckSchedule {
                    shard: shard_of(id),
                    due_at_ms: now_ms,
                    checks: 0,
                    give_up_at_ms: now_ms,
                },
                None => return Ok(None),
            },
            None => return Ok(None),
        };
        let due = DuePayment {
            intent_id: id.to_string(),
            kind,
            state,
            schedule,
        };
        Ok(Some(self.check_due(due).await.as_str()))
    }

    /// The store it reconciles (the scheduled invariant audit reads it too).
    pub fn store(&self) -> &S {
        &self.store
    }

    /// One run: the due intents of every shard, as many as it can check in its time
    /// at its ceiling (and the per-run bound), checked at the pace their number
    /// asks (`domain::reconcile::plan_run`) until `deadline_ms` (Unix ms of the
    /// service's clock) comes near.
    pub async fn run(&self, deadline_ms: Option<i64>) -> RunSummary {
        let mut summary = RunSummary::default();
        let now = self.clock.now_ms();
        // Stop starting checks `reserve_ms` before the deadline, or at two thirds of
        // the time left when the invocation is short (a local run's 3 s default).
        let stop_at = deadline_ms.map(|d| d - self.settings.reserve_ms.min((d - now).max(0) / 3));
        let usable_ms = stop_at.map(|stop| stop - now);
        let (ceiling, bound) = (
            self.settings.max_requests_per_sec,
            self.settings.max_intents_per_run as u64,
        );
        // The run reads what it could check in its time at the ceiling.
        let reads = plan_run(0, usable_ms, ceiling, bound).capacity as usize;
        let mut due = self.read_due(now, reads, &mut summary).await;
        let plan = plan_run(summary.due_read, usable_ms, ceiling, bound);
        summary.capacity = plan.capacity;
        summary.pace = plan.pace;
        summary.utilization_percent = utilization_percent(summary.due_read, plan.capacity);
        summary.oldest_due_age_ms = due
            .iter()
            .map(|d| now - d.schedule.due_at_ms)
            .max()
            .unwrap_or(0)
            .max(0) as u64;
        due.sort_by_key(|d| d.schedule.due_at_ms);
        if due.len() > reads {
            // The oldest first: the shards' shares round up.
            due.truncate(reads);
            summary.left_for_next_run = true;
        }
        summary.due = due.len() as u64;
        summary.due_left = summary.due_read.saturating_sub(summary.due);
        let pacer = Pacer::new(plan.pace);
        let results = bounded_unordered(due, self.settings.concurrency, |intent| {
            self.check(intent, &pacer, stop_at)
        })
        .await;
        for result in results {
            match result {
                None => {
                    summary.left_for_next_run = true;
                    summary.due_left += 1;
                }
                Some(result) => {
                    summary.checked += u64::from(result != CheckResult::Failed);
                    match result {
                        CheckResult::Outcome => summary.outcomes_found += 1,
                        CheckResult::Move => summary.moves_found += 1,
                        CheckResult::Anomaly => summary.anomalies += 1,
                        CheckResult::PaymentAnomaly => {
                            summary.outcomes_found += 1;
                            summary.payment_anomalies += 1;
                        }
                        CheckResult::Rescheduled => summary.rescheduled += 1,
                        CheckResult::Stuck => summary.stuck += 1,
                        CheckResult::NotFound => summary.not_found += 1,
                        CheckResult::Unchanged => {}
                        CheckResult::Failed => summary.failed += 1,
                        CheckResult::RefundRecorded => summary.refunds_recorded += 1,
                    }
                }
            }
        }
        if self.settings.sweep_refunds {
            let slot = pacer.take(self.clock.now_ms());
            if stop_at.is_some_and(|stop| slot >= stop) {
                summary.left_for_next_run = true;
            } else {
                self.pause.until(slot).await;
                self.sweep_outside_refunds(&mut summary).await;
            }
        }
        summary
    }

    /// The due payments a run takes, up to `reads`: each shard's share first (the
    /// index is write-sharded; shards fill unevenly), then what the others left
    /// unused from the shards that had more — one more `Query` each. Counts what
    /// the index answered on `summary` (`due_read`; `left_for_next_run` when a
    /// shard still had more).
    async fn read_due(&self, now: i64, reads: usize, summary: &mut RunSummary) -> Vec<DuePayment> {
        let shards = self.settings.shards.max(1);
        let quota = reads.div_ceil(usize::from(shards));
        let mut due = Vec::new();
        let mut seen = HashSet::new();
        let mut fuller = Vec::new();
        for shard in 0..shards {
            match self.store.due_intents(shard, now, quota + 1).await {
                Ok(page) => {
                    if page.len() > quota {
                        fuller.push(shard);
                    }
                    summary.due_read += page.len() as u64;
                    due.extend(
                        page.into_iter()
                            .take(quota)
                            .filter(|d| seen.insert(d.intent_id.clone())),
                    );
                }
                Err(e) => {
                    tracing::error!(shard, error = %e.detail(), "could not read the due intents of a shard; the next run reads it again");
                    summary.failed += 1;
                    summary.unread_shards += 1;
                }
            }
        }
        let spare = reads.saturating_sub(due.len());
        if spare > 0 && !fuller.is_empty() {
            let extra = spare.div_ceil(fuller.len());
            let mut taken = 0;
            for shard in fuller.iter().copied() {
                match self.store.due_intents(shard, now, quota + extra + 1).await {
                    Ok(page) => {
                        // Counted once: the first read's items are in this page too.
                        summary.due_read += page.len().saturating_sub(quota + 1) as u64;
                        let more = page.len() > quota + extra;
                        for d in page.into_iter().take(quota + extra) {
                            if taken < spare && seen.insert(d.intent_id.clone()) {
                                due.push(d);
                                taken += 1;
                            }
                        }
                        summary.left_for_next_run |= more;
                    }
                    Err(e) => {
                        tracing::error!(shard, error = %e.detail(), "could not read more due intents of a shard; the next run reads them");
                        summary.left_for_next_run = true;
                    }
                }
            }
        } else {
            summary.left_for_next_run |= !fuller.is_empty();
        }
        due
    }

    /// Sweeps Fintoc's refund list for refunds made outside this API of payments
    /// held here (`app::refunds::sweep_outside_refunds`), counted on `summary`.
    pub async fn sweep_outside_refunds(&self, summary: &mut RunSummary) {
        let swept = sweep_outside_refunds(
            &self.store,
            &self.fintoc,
            &self.clock,
            self.settings.lookup_budget,
        )
        .await;
        summary.refunds_imported += swept.imported;
        summary.refund_anomalies += swept.anomalies;
        summary.failed += swept.failed;
        summary.refund_sweep_stalled = u64::from(swept.stalled);
    }

    /// Checks one intent; `None` when the run's time is up before it starts.
    async fn check(
        &self,
        due: DuePayment,
        pacer: &Pacer,
        stop_at: Option<i64>,
    ) -> Option<CheckResult> {
        let slot = pacer.take(self.clock.now_ms());
        if stop_at.is_some_and(|stop| slot >= stop) {
            return None;
        }
        self.pause.until(slot).await;
        Some(self.check_due(due).await)
    }

    /// Checks one payment with Fintoc now and records what it says: the one
    /// decision and write of every check, paced by its caller.
    async fn check_due(&self, due: DuePayment) -> CheckResult {
        if due.state.status.is_final() {
            // A paid payment is on the index only while its refunds are open.
            return self.check_refunds(&due).await;
        }
        let id = due.intent_id.as_str();
        let budget = Some(self.settings.lookup_budget);
        let lookup = match due.kind {
            PaymentKind::Intent => self.fintoc.get_payment_intent(id, budget).await,
            PaymentKind::Session => self.session_report(id, budget).await,
        };
        let answer = match lookup {
            Ok(Some(report)) if report.id == id => FintocAnswer::Found(Box::new(report)),
            Ok(Some(_)) => {
                tracing::error!(
                    payment_id = id,
                    "Fintoc answered another payment; counted as a failed check"
                );
                return self.failed(&due).await;
            }
            Ok(None) => FintocAnswer::NotFound,
            Err(e) => {
                tracing::warn!(payment_id = id, error = %e, "could not check the payment with Fintoc; counted, checked again later");
                return self.failed(&due).await;
            }
        };
        let now_ms = self.clock.now_ms();
        let now = format_rfc3339_ms(now_ms);
        let recorded = record::record(&self.store, Some(due.state.clone()), |state| {
            let Some(state) = state else {
                return Plan::Stop(None);
            };
            match plan_check(state, &due.schedule, &answer, now_ms, &now) {
                CheckPlan::Apply { effect, patch } => Plan::Write { effect, patch },
                other => Plan::Stop(Some(other)),
            }
        })
        .await;
        let (plan, state) = match recorded {
            Ok(Recorded::Written {
                effect,
                patch,
                result,
            }) => return self.log_applied(&effect, &patch, &result, id),
            Ok(Recorded::Stopped {
                answer: Some(plan),
                state: Some(state),
            }) => (plan, state),
            Ok(Recorded::Stopped { .. }) => {
                tracing::error!(payment_id = id, "an indexed payment is gone");
                return CheckResult::Failed;
            }
            Err(e) => {
                tracing::error!(payment_id = id, error = %e, "could not record Fintoc's answer; counted, checked again later");
                return self.failed(&due).await;
            }
        };
        self.settle(&due, &state, plan, now_ms).await
    }

    /// Checks the open refunds of a paid payment with Fintoc and records what it
    /// says (`app::refunds::check_open_refunds`); the payment stays on the index
    /// while a refund is open.
    async fn check_refunds(&self, due: &DuePayment) -> CheckResult {
        let id = due.intent_id.as_str();
        let payment = match self.store.get_payment(due.kind, id).await {
            Ok(Some(payment)) => payment,
            Ok(None) => {
                tracing::error!(payment_id = id, "an indexed payment is gone");
                return CheckResult::Failed;
            }
            Err(e) => {
                tracing::warn!(payment_id = id, error = %e.detail(), "could not read a payment with open refunds; checked again later");
                return self.failed(due).await;
            }
        };
        let checked = check_open_refunds(
            &self.store,
            &self.fintoc,
            &self.clock,
            &payment,
            self.settings.lookup_budget,
        )
        .await;
        let now_ms = self.clock.now_ms();
        let plan = plan_refund_check(&due.schedule, checked.still_open, checked.failed, now_ms);
        let result = self.settle(due, &due.state, plan, now_ms).await;
        if checked.recorded > 0 && result != CheckResult::Failed {
            tracing::warn!(
                payment_id = id,
                recorded = checked.recorded,
                "refund outcomes recorded by reconciliation: refund webhooks may not be arriving"
            );
            CheckResult::RefundRecorded
        } else {
            result
        }
    }

    /// A session as Fintoc shows it, with its payment's outcome: when Fintoc gives
    /// the payment only as its id, the payment is looked up too (without it the
    /// session's outcome could never be recorded, and it would end `stuck`).
    async fn session_report(
        &self,
        id: &str,
        budget: Option<Duration>,
    ) -> Result<Option<crate::domain::report::PaymentReport>, crate::fintoc::FintocError> {
        let Some(mut session) = self.fintoc.get_checkout_session(id, budget).await? else {
            return Ok(None);
        };
        if let Some(payment_id) = session
            .payment
            .as_ref()
            .filter(|p| p.status.is_none())
            .map(|p| p.id.clone())
        {
            if let Some(payment) = self
                .fintoc
                .get_payment_intent(&payment_id, budget)
                .await?
                .filter(|p| p.id == payment_id)
            {
                session.payment = Some(payment);
            }
        }
        Ok(Some(session.to_record_report()))
    }

    /// A check that failed: counted on the payment and checked again later, or
    /// stuck at the give-up point (decided by `domain::reconcile::plan_failed_check`).
    async fn failed(&self, due: &DuePayment) -> CheckResult {
        let now_ms = self.clock.now_ms();
        let plan = plan_failed_check(&due.schedule, now_ms);
        self.settle(due, &due.state, plan, now_ms).await
    }

    /// Writes what a check that changed nothing of the payment's status does to its
    /// schedule: guarded by the version the plan was made on.
    async fn settle(
        &self,
        due: &DuePayment,
        state: &PaymentState,
        plan: CheckPlan,
        now_ms: i64,
    ) -> CheckResult {
        let id = due.intent_id.as_str();
        let (change, flag, result) = match plan {
            CheckPlan::Apply { .. } => unreachable!("a write is made by the record engine"),
            CheckPlan::Reschedule(next) => {
                (ScheduleChange::Set(next), None, CheckResult::Rescheduled)
            }
            CheckPlan::LeaveIndex => (ScheduleChange::Clear, None, CheckResult::Unchanged),
            CheckPlan::Stuck => {
                tracing::error!(
                    payment_id = id, status = state.status.as_str(),
                    "{ANOMALY}: the payment (or, once paid, one of its refunds) is still not final when checks stop; flagged stuck — a human must check it with Fintoc"
                );
                (ScheduleChange::Clear, Some(Flag::Stuck), CheckResult::Stuck)
            }
            CheckPlan::NotFoundAtFintoc => {
                tracing::error!(
                    payment_id = id,
                    "{ANOMALY}: Fintoc does not know a payment this deployment created (404); flagged — a human must check it"
                );
                (
                    ScheduleChange::Clear,
                    Some(Flag::NotFoundAtFintoc),
                    CheckResult::NotFound,
                )
            }
            CheckPlan::Failed(next) => (
                ScheduleChange::Failed {
                    next,
                    at_ms: now_ms,
                },
                None,
                CheckResult::Failed,
            ),
        };
        let update = ScheduleUpdate {
            intent_id: id.to_string(),
            kind: due.kind,
            expected_version: state.version,
            change,
            flag,
            at: format_rfc3339_ms(now_ms),
        };
        match self.store.update_schedule(&update).await {
            Ok(true) => result,
            // Changed meanwhile (a webhook): the next run sees the new state; a
            // failed check stays a failure.
            Ok(false) if result == CheckResult::Failed => result,
            Ok(false) => CheckResult::Unchanged,
            Err(e) => {
                tracing::error!(payment_id = id, error = %e.detail(), "could not update the check schedule; the next run retries");
                CheckResult::Failed
            }
        }
    }

    fn log_applied(
        &self,
        effect: &Effect,
        patch: &crate::domain::transition::PaymentPatch,
        written: &WriteResult,
        id: &str,
    ) -> CheckResult {
        let final_outcome = patch.outcome.is_some();
        if final_outcome {
            tracing::warn!(
                intent_id = id, event_id = %patch.event_id,
                "outcome recorded by reconciliation before any webhook: webhooks may not be arriving"
            );
        }
        match effect {
            Effect::ConflictingFinal { .. } => CheckResult::Anomaly,
            _ if final_outcome
                && (patch.review.is_some() || *written == WriteResult::WrittenOrderRefused) =>
            {
                CheckResult::PaymentAnomaly
            }
            _ if final_outcome => CheckResult::Outcome,
            _ => CheckResult::Move,
        }
    }
}

/// Runs `work` over `items` with at most `limit` in flight; results in any order.
async fn bounded_unordered<T, R, Fut>(
    items: Vec<T>,
    limit: usize,
    work: impl Fn(T) -> Fut,
) -> Vec<R>
where
    Fut: Future<Output = R>,
{
    use futures::stream::{self, StreamExt};
    stream::iter(items.into_iter().map(work))
        .buffer_unordered(limit.max(1))
        .collect()
        .await
}

#[cfg(test)]
mod tests;
