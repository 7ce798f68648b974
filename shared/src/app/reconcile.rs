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
use crate::clock::{format_rfc3339_ms, Clock, ManualClock};
use crate::domain::payment::PaymentKind;
use crate::domain::reconcile::{plan_check, CheckPlan, FintocAnswer, Flag, ScheduleUpdate};
use crate::domain::schedule::ScheduleChange;
use crate::domain::transition::Effect;
use crate::fintoc::FintocLookup;
use crate::store::{DuePayment, EventStore, ScheduleStore, WriteResult};
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
}

impl Default for ReconcileSettings {
    fn default() -> Self {
        Self {
            shards: crate::domain::schedule::INDEX_SHARDS,
            max_intents_per_run: 1_000,
            max_requests_per_sec: 20,
            concurrency: 8,
            reserve_ms: 15_000,
            lookup_budget: Duration::from_secs(10),
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
    /// Intents asked of Fintoc.
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
    /// Checks that failed (Fintoc or storage); still due, retried next run.
    pub failed: u64,
    /// Due intents left for the next run (deadline or per-run bound).
    pub left_for_next_run: bool,
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
    S: EventStore + ScheduleStore,
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

    /// One run: the due intents of every shard, up to the per-run bound, checked
    /// until `deadline_ms` (Unix ms of the service's clock) comes near.
    pub async fn run(&self, deadline_ms: Option<i64>) -> RunSummary {
        let mut summary = RunSummary::default();
        let now = self.clock.now_ms();
        let per_shard = self
            .settings
            .max_intents_per_run
            .div_ceil(usize::from(self.settings.shards.max(1)));
        let mut due = Vec::new();
        let mut seen = HashSet::new();
        for shard in 0..self.settings.shards {
            match self.store.due_intents(shard, now, per_shard + 1).await {
                Ok(page) => {
                    if page.len() > per_shard {
                        summary.left_for_next_run = true;
                    }
                    due.extend(
                        page.into_iter()
                            .take(per_shard)
                            .filter(|d| seen.insert(d.intent_id.clone())),
                    );
                }
                Err(e) => {
                    tracing::error!(shard, error = %e.detail(), "could not read the due intents of a shard; the next run reads it again");
                    summary.failed += 1;
                }
            }
        }
        if due.len() > self.settings.max_intents_per_run {
            due.truncate(self.settings.max_intents_per_run);
            summary.left_for_next_run = true;
        }
        due.sort_by_key(|d| d.schedule.due_at_ms);
        let pacer = Pacer::new(self.settings.max_requests_per_sec);
        // Stop starting checks `reserve_ms` before the deadline, or at two thirds of
        // the time left when the invocation is short (a local run's 3 s default).
        let stop_at = deadline_ms.map(|d| d - self.settings.reserve_ms.min((d - now).max(0) / 3));
        let results = bounded_unordered(due, self.settings.concurrency, |intent| {
            self.check(intent, &pacer, stop_at)
        })
        .await;
        for result in results {
            match result {
                None => summary.left_for_next_run = true,
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
                    }
                }
            }
        }
        summary
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
        let id = due.intent_id.as_str();
        let budget = Some(self.settings.lookup_budget);
        let lookup = match due.kind {
            PaymentKind::Intent => self.fintoc.get_payment_intent(id, budget).await,
            PaymentKind::Session => self
                .fintoc
                .get_checkout_session(id, budget)
                .await
                .map(|found| found.map(|session| session.to_record_report())),
        };
        let answer = match lookup {
            Ok(Some(report)) if report.id == id => FintocAnswer::Found(Box::new(report)),
            Ok(Some(_)) => {
                tracing::error!(intent_id = id, "Fintoc answered another intent; skipped");
                return Some(CheckResult::Failed);
            }
            Ok(None) => FintocAnswer::NotFound,
            Err(e) => {
                tracing::warn!(intent_id = id, error = %e, "could not check the intent with Fintoc; the next run retries");
                return Some(CheckResult::Failed);
            }
        };
        let now_ms = self.clock.now_ms();
        let now = format_rfc3339_ms(now_ms);
        let recorded = record::record(&self.store, Some(due.state), |state| {
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
            }) => return Some(self.log_applied(&effect, &patch, &result, id)),
            Ok(Recorded::Stopped {
                answer: Some(plan),
                state: Some(state),
            }) => (plan, state),
            Ok(Recorded::Stopped { .. }) => {
                tracing::error!(payment_id = id, "an indexed payment is gone");
                return Some(CheckResult::Failed);
            }
            Err(e) => {
                tracing::error!(payment_id = id, error = %e, "could not record Fintoc's answer; the next run retries");
                return Some(CheckResult::Failed);
            }
        };
        let (change, flag, result) = match plan {
            CheckPlan::Apply { .. } => unreachable!("a write is made by the record engine"),
            CheckPlan::Reschedule(next) => {
                (ScheduleChange::Set(next), None, CheckResult::Rescheduled)
            }
            CheckPlan::LeaveIndex => (ScheduleChange::Clear, None, CheckResult::Unchanged),
            CheckPlan::Stuck => {
                tracing::error!(
                    payment_id = id, status = state.status.as_str(),
                    "ANOMALY: the payment is still not final when checks stop; flagged stuck — a human must check this payment with Fintoc"
                );
                (ScheduleChange::Clear, Some(Flag::Stuck), CheckResult::Stuck)
            }
            CheckPlan::NotFoundAtFintoc => {
                tracing::error!(
                    payment_id = id,
                    "ANOMALY: Fintoc does not know a payment this deployment created (404); flagged — a human must check it"
                );
                (
                    ScheduleChange::Clear,
                    Some(Flag::NotFoundAtFintoc),
                    CheckResult::NotFound,
                )
            }
        };
        let update = ScheduleUpdate {
            intent_id: id.to_string(),
            kind: due.kind,
            expected_version: state.version,
            change,
            flag,
            at: now.clone(),
        };
        match self.store.update_schedule(&update).await {
            Ok(true) => Some(result),
            // Changed meanwhile (a webhook): the next run sees the new state.
            Ok(false) => Some(CheckResult::Unchanged),
            Err(e) => {
                tracing::error!(payment_id = id, error = %e.detail(), "could not update the check schedule; the next run retries");
                Some(CheckResult::Failed)
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
                && (patch.amount_mismatch.is_some()
                    || *written == WriteResult::WrittenOrderRefused) =>
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
mod tests {
    use super::*;
    use crate::domain::order::{OpenRequest, OrderState, ReserveRequest};
    use crate::domain::payment::{PaymentStatus, StoredPayment};
    use crate::domain::report::PaymentReport;
    use crate::domain::schedule::{initial_schedule, GIVE_UP_AFTER_MS};
    use crate::domain::session::SessionReport;
    use crate::domain::transition::Source;
    use crate::fintoc::FintocError;
    use crate::store::memory::{MemoryStore, Operation};
    use crate::store::{OrderStore, PaymentStore};
    use std::collections::{BTreeMap, HashMap};
    use std::sync::Arc;

    const T0: i64 = 1_767_225_600_000;
    const MINUTE: i64 = 60_000;

    /// Fintoc as the tests want it: a status per intent (absent: 404), every call
    /// recorded with the clock's time.
    #[derive(Clone, Default)]
    struct FakeFintoc {
        statuses: Arc<Mutex<HashMap<String, &'static str>>>,
        calls: Arc<Mutex<Vec<(String, i64)>>>,
        failing: Arc<Mutex<bool>>,
        clock: Option<ManualClock>,
    }

    impl FakeFintoc {
        fn set(&self, id: &str, status: &'static str) {
            self.statuses.lock().unwrap().insert(id.into(), status);
        }
        fn calls(&self) -> Vec<(String, i64)> {
            self.calls.lock().unwrap().clone()
        }
    }

    impl FintocLookup for FakeFintoc {
        async fn get_payment_intent(
            &self,
            id: &str,
            _budget: Option<Duration>,
        ) -> Result<Option<PaymentReport>, FintocError> {
            let now = self.clock.as_ref().map_or(0, |c| c.now_ms());
            self.calls.lock().unwrap().push((id.to_string(), now));
            if *self.failing.lock().unwrap() {
                return Err(FintocError::Unavailable {
                    status: 503,
                    attempts: 3,
                });
            }
            Ok(self
                .statuses
                .lock()
                .unwrap()
                .get(id)
                .map(|status| PaymentReport {
                    id: id.into(),
                    status: Some(PaymentStatus::parse(status)),
                    amount: Some(100),
                    currency: Some("CLP".into()),
                    metadata: BTreeMap::new(),
                    ..PaymentReport::default()
                }))
        }

        async fn get_checkout_session(
            &self,
            id: &str,
            _budget: Option<Duration>,
        ) -> Result<Option<SessionReport>, FintocError> {
            let now = self.clock.as_ref().map_or(0, |c| c.now_ms());
            self.calls.lock().unwrap().push((id.to_string(), now));
            Ok(self.statuses.lock().unwrap().get(id).map(|status| {
                crate::domain::session::SessionReport::from_json(&serde_json::json!({
                    "id": id, "status": status, "amount": 100, "currency": "CLP"
                }))
                .unwrap()
            }))
        }
    }

    struct Setup {
        store: MemoryStore,
        fintoc: FakeFintoc,
        clock: ManualClock,
    }

    impl Setup {
        fn new() -> Self {
            let clock = ManualClock::new(T0);
            Self {
                store: MemoryStore::default(),
                fintoc: FakeFintoc {
                    clock: Some(clock.clone()),
                    ..FakeFintoc::default()
                },
                clock,
            }
        }

        /// An intent created at T0 for its own order, open at Fintoc.
        async fn created(&self, id: &str) {
            let order = format!("o-{id}");
            self.store
                .reserve_order(&ReserveRequest {
                    order_id: &order,
                    holder: "h",
                    now_ms: T0,
                    reserved_until_ms: T0 + 30_000,
                })
                .await
                .unwrap();
            self.store
                .save_created(&StoredPayment {
                    id: id.into(),
                    kind: PaymentKind::Intent,
                    session_payment: None,
                    expires_at: None,
                    status: PaymentStatus::Created,
                    amount: 100,
                    currency: "CLP".into(),
                    order_id: Some(order.clone()),
                    metadata: BTreeMap::new(),
                    customer_email: None,
                    mode: Some("test".into()),
                    error_reason: None,
                    created_at: format_rfc3339_ms(T0),
                    updated_at: format_rfc3339_ms(T0),
                    schedule: Some(initial_schedule(id, T0)),
                })
                .await
                .unwrap();
            assert!(self
                .store
                .open_order(&OpenRequest {
                    order_id: &order,
                    holder: "h",
                    intent_id: id,
                    kind: PaymentKind::Intent,
                })
                .await
                .unwrap());
            self.fintoc.set(id, "created");
        }

        fn service(
            &self,
            settings: ReconcileSettings,
        ) -> ReconcileService<MemoryStore, FakeFintoc, ManualClock, ManualPause> {
            ReconcileService::new(
                self.store.clone(),
                self.fintoc.clone(),
                self.clock.clone(),
                ManualPause(self.clock.clone()),
                settings,
            )
        }
    }

    #[tokio::test]
    async fn a_payment_whose_webhooks_never_came_is_recorded_once_and_leaves_the_index() {
        let s = Setup::new();
        s.created("pi_1").await;
        let service = s.service(ReconcileSettings::default());
        assert_eq!(
            service.run(None).await,
            RunSummary::default(),
            "not due yet"
        );
        s.fintoc.set("pi_1", "succeeded");
        s.clock.set_ms(T0 + 2 * MINUTE);
        let summary = service.run(None).await;
        assert_eq!((summary.checked, summary.outcomes_found), (1, 1));
        let intent = s.store.intent("pi_1").unwrap();
        assert_eq!(intent.status, Some(PaymentStatus::Succeeded));
        let outcome = intent.outcome.unwrap();
        assert_eq!(outcome.decided_by, Source::Reconciliation);
        assert_eq!(outcome.event_id, "reconciliation:succeeded");
        assert_eq!(intent.schedule, None, "a final intent leaves the index");
        assert_eq!(
            s.store.order("o-pi_1").unwrap().record.state,
            OrderState::Paid
        );
        s.clock.advance_ms(30 * 24 * 60 * MINUTE);
        assert_eq!(service.run(None).await.checked, 0, "never checked again");
        assert_eq!(s.fintoc.calls().len(), 1);
    }

    #[tokio::test]
    async fn an_open_intent_is_checked_again_later_and_stuck_at_the_give_up_point() {
        let s = Setup::new();
        s.created("pi_1").await;
        s.fintoc.set("pi_1", "pending");
        let service = s.service(ReconcileSettings::default());
        s.clock.set_ms(T0 + 2 * MINUTE);
        let summary = service.run(None).await;
        assert_eq!(summary.moves_found, 1, "created -> pending is recorded");
        let intent = s.store.intent("pi_1").unwrap();
        assert_eq!(intent.status, Some(PaymentStatus::Pending));
        let schedule = intent.schedule.unwrap();
        assert_eq!(schedule.due_at_ms, T0 + 12 * MINUTE);
        assert_eq!(service.run(None).await.checked, 0, "not due again yet");
        s.clock.set_ms(T0 + 12 * MINUTE);
        assert_eq!(service.run(None).await.rescheduled, 1);
        let mut runs = 0;
        while s.store.intent("pi_1").unwrap().schedule.is_some() {
            let due = s.store.intent("pi_1").unwrap().schedule.unwrap().due_at_ms;
            s.clock.set_ms(due);
            service.run(None).await;
            runs += 1;
            assert!(runs < 30, "the schedule ends");
        }
        assert!(s.clock.now_ms() >= T0 + GIVE_UP_AFTER_MS);
        let intent = s.store.intent("pi_1").unwrap();
        assert_eq!(intent.flagged.as_deref(), Some("stuck"));
        assert_eq!(
            intent.status,
            Some(PaymentStatus::Pending),
            "never invented"
        );
    }

    #[tokio::test]
    async fn a_short_invocation_still_checks_within_two_thirds_of_its_time() {
        let s = Setup::new();
        s.created("pi_1").await;
        s.fintoc.set("pi_1", "succeeded");
        s.clock.set_ms(T0 + 2 * MINUTE);
        let service = s.service(ReconcileSettings::default());
        // 3 s left (Lambda's default timeout): the 15 s reserve would leave none.
        let summary = service.run(Some(s.clock.now_ms() + 3_000)).await;
        assert_eq!(summary.outcomes_found, 1, "{summary:?}");
    }

    #[tokio::test]
    async fn unknown_at_fintoc_is_flagged_and_failures_stay_due() {
        let s = Setup::new();
        s.created("pi_gone").await;
        s.created("pi_1").await;
        s.fintoc.statuses.lock().unwrap().remove("pi_gone");
        let service = s.service(ReconcileSettings::default());
        s.clock.set_ms(T0 + 2 * MINUTE);
        *s.fintoc.failing.lock().unwrap() = true;
        let summary = service.run(None).await;
        assert_eq!((summary.failed, summary.checked), (2, 0));
        assert!(
            s.store.intent("pi_1").unwrap().schedule.is_some(),
            "still due"
        );
        *s.fintoc.failing.lock().unwrap() = false;
        s.store.fail_next(Operation::Apply, 1);
        s.fintoc.set("pi_1", "failed");
        let summary = service.run(None).await;
        assert_eq!((summary.not_found, summary.failed), (1, 1));
        let gone = s.store.intent("pi_gone").unwrap();
        assert_eq!(gone.flagged.as_deref(), Some("not_found_at_fintoc"));
        assert_eq!(gone.schedule, None, "not retried forever");
        let summary = service.run(None).await;
        assert_eq!(summary.outcomes_found, 1, "the failed write is retried");
        assert_eq!(
            s.store.intent("pi_1").unwrap().status,
            Some(PaymentStatus::Failed)
        );
    }

    #[tokio::test]
    async fn a_webhook_that_won_the_race_leaves_the_check_a_no_op() {
        let s = Setup::new();
        s.created("pi_1").await;
        s.fintoc.set("pi_1", "succeeded");
        // The webhook's write lands between the index read and the check's write.
        let mut state = s.store.intent("pi_1").unwrap();
        state.applied_event_ids.insert("evt_webhook".into());
        let webhook = crate::domain::transition::plan_write(
            Some(&crate::domain::transition::PaymentState {
                status: PaymentStatus::Created,
                applied_event_ids: Default::default(),
                version: 0,
                requested: Some((100, "CLP".into())),
                order_id: Some("o-pi_1".into()),
            }),
            &crate::domain::transition::EventRef {
                id: "evt_webhook",
                event_type: "payment_intent.succeeded",
                created_at: None,
                source: Source::Webhook,
            },
            &PaymentStatus::Succeeded,
            &PaymentReport {
                id: "pi_1".into(),
                amount: Some(100),
                currency: Some("CLP".into()),
                ..PaymentReport::default()
            },
            "now",
        )
        .1
        .unwrap();
        let stale = s
            .store
            .due_intents(
                crate::domain::schedule::shard_of("pi_1"),
                T0 + 2 * MINUTE,
                10,
            )
            .await
            .unwrap()
            .remove(0);
        s.store.apply(&webhook).await.unwrap();
        s.clock.set_ms(T0 + 2 * MINUTE);
        let service = s.service(ReconcileSettings::default());
        let pacer = Pacer::new(10);
        let result = service.check(stale, &pacer, None).await;
        assert_eq!(result, Some(CheckResult::Unchanged));
        let intent = s.store.intent("pi_1").unwrap();
        assert_eq!(intent.version, 1, "one decision");
        assert_eq!(intent.outcome.unwrap().decided_by, Source::Webhook);
    }

    #[tokio::test]
    async fn runs_are_bounded_paced_and_resume_until_every_due_intent_is_checked() {
        const INTENTS: usize = 5_000;
        let s = Setup::new();
        for i in 0..INTENTS {
            s.created(&format!("pi_{i}")).await;
        }
        let settings = ReconcileSettings {
            max_intents_per_run: 1_500,
            max_requests_per_sec: 50,
            reserve_ms: 5_000,
            ..ReconcileSettings::default()
        };
        let service = s.service(settings);
        for i in 0..INTENTS {
            s.fintoc.set(&format!("pi_{i}"), "succeeded");
        }
        s.clock.set_ms(T0 + 2 * MINUTE);
        let mut runs = 0;
        let mut recorded = 0;
        while recorded < INTENTS as u64 {
            let start = s.clock.now_ms();
            let before = s.fintoc.calls().len();
            // Each invocation may run 25 s of the clock: at 50/s the deadline
            // (less the 5 s reserve) stops it at 1,000, under the per-run bound.
            let summary = service.run(Some(start + 25_000)).await;
            let calls = s.fintoc.calls()[before..].to_vec();
            let ids: HashSet<_> = calls.iter().map(|(id, _)| id.clone()).collect();
            assert_eq!(ids.len(), calls.len(), "none checked twice in one run");
            assert!(
                calls.iter().all(|(_, t)| *t < start + 20_000),
                "stops before the deadline"
            );
            let times: Vec<i64> = calls.iter().map(|(_, t)| *t).collect();
            for (i, t) in times.iter().enumerate() {
                let in_second = times[i..].iter().take_while(|u| **u < t + 1_000).count();
                assert!(in_second <= 50, "at most 50 requests in any second");
            }
            recorded += summary.outcomes_found;
            runs += 1;
            assert!(runs <= 10, "bounded runs finish the work");
            s.clock.advance_ms(60_000);
        }
        // 1,000 a run while every shard has a full page (1,500 / 16 each) due,
        // fewer as the shards drain unevenly.
        assert!(
            (5..=8).contains(&runs),
            "5,000 intents at up to 1,000 a run: {runs}"
        );
        assert_eq!(s.fintoc.calls().len(), INTENTS, "each checked once");
    }
}
