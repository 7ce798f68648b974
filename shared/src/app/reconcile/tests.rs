//! Unit tests of `reconcile`.

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

/// One read of Fintoc's refund list: its `since` and `until`.
type ListRead = (String, Option<String>);

/// Fintoc as the tests want it: a status per intent (absent: 404), every call
/// recorded with the clock's time.
#[derive(Clone, Default)]
struct FakeFintoc {
    statuses: Arc<Mutex<HashMap<String, &'static str>>>,
    calls: Arc<Mutex<Vec<(String, i64)>>>,
    failing: Arc<Mutex<bool>>,
    /// Payments whose lookups always fail.
    broken: Arc<Mutex<std::collections::HashSet<String>>>,
    /// A session's payment intent, given by Fintoc only as its id.
    session_payment_ids: Arc<Mutex<HashMap<String, String>>>,
    /// The longest window of the refund list one read gets whole (`None`: any).
    refund_list_fits_ms: Arc<Mutex<Option<i64>>>,
    /// Every refund list read: its `since` and `until`.
    refund_lists: Arc<Mutex<Vec<ListRead>>>,
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
        if *self.failing.lock().unwrap() || self.broken.lock().unwrap().contains(id) {
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
        let payment = self.session_payment_ids.lock().unwrap().get(id).cloned();
        Ok(self.statuses.lock().unwrap().get(id).map(|status| {
            crate::domain::session::SessionReport::from_json(&serde_json::json!({
                "id": id, "status": status, "amount": 100, "currency": "CLP",
                "payment_resource": {"payment_intent": payment},
            }))
            .unwrap()
        }))
    }

    async fn get_refund(
        &self,
        _id: &str,
        _budget: Option<Duration>,
    ) -> Result<Option<crate::domain::refund::RefundReport>, FintocError> {
        Ok(None)
    }

    async fn list_refunds(
        &self,
        since: &str,
        until: Option<&str>,
        _budget: Option<Duration>,
    ) -> Result<crate::fintoc::RefundList, FintocError> {
        self.refund_lists
            .lock()
            .unwrap()
            .push((since.to_string(), until.map(str::to_string)));
        let parse = |at: &str| crate::clock::parse_rfc3339_ms(at).unwrap();
        let now = self.clock.as_ref().map_or(0, |c| c.now_ms());
        let span = until.map_or(now, parse) - parse(since);
        let fits = self
            .refund_list_fits_ms
            .lock()
            .unwrap()
            .is_none_or(|fits| span <= fits);
        Ok(crate::fintoc::RefundList {
            refunds: Vec::new(),
            complete: fits,
        })
    }

    async fn list_payment_intents(
        &self,
        _since: &str,
        _budget: Option<Duration>,
    ) -> Result<crate::fintoc::PaymentList, FintocError> {
        unreachable!("the reconciler never lists intents")
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
        self.created_at(id, T0).await;
    }

    /// An intent created at `at` for its own order, open at Fintoc.
    async fn created_at(&self, id: &str, at: i64) {
        let order = format!("o-{id}");
        self.store
            .reserve_order(&ReserveRequest {
                order_id: &order,
                holder: "h",
                now_ms: at,
                reserved_until_ms: at + 30_000,
            })
            .await
            .unwrap();
        self.store
            .save_created(&StoredPayment {
                id: id.into(),
                kind: PaymentKind::Intent,
                session_payment: None,
                expires_at: None,
                review: None,
                refunds: Default::default(),
                status: PaymentStatus::Created,
                amount: 100,
                currency: "CLP".into(),
                order_id: Some(order.clone()),
                metadata: BTreeMap::new(),
                customer_email: None,
                mode: Some("test".into()),
                error_reason: None,
                created_at: format_rfc3339_ms(at),
                updated_at: format_rfc3339_ms(at),
                schedule: Some(initial_schedule(id, at)),
            })
            .await
            .unwrap();
        assert!(self
            .store
            .open_order(&OpenRequest {
                payment_ref: None,
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
        RunSummary {
            capacity: 20_000,
            pace: 40,
            ..RunSummary::default()
        },
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
async fn unknown_at_fintoc_is_flagged_and_failures_are_counted_and_checked_again() {
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
        summary.stalled(),
        "due payments and not one answer: {summary:?}"
    );
    let failing = s.store.intent("pi_1").unwrap();
    assert_eq!(failing.failing, Some((1, T0 + 2 * MINUTE)), "counted on it");
    let next = failing.schedule.expect("still on the index");
    assert_eq!(next.due_at_ms, T0 + 12 * MINUTE, "backed off");
    assert_eq!(service.run(None).await.due, 0, "not due again at once");
    *s.fintoc.failing.lock().unwrap() = false;
    s.store.fail_next(Operation::Apply, 1);
    s.fintoc.set("pi_1", "failed");
    s.clock.set_ms(next.due_at_ms + 1_000); // both, paced 50 ms apart
    let summary = service.run(None).await;
    assert_eq!((summary.not_found, summary.failed), (1, 1), "{summary:?}");
    assert!(!summary.stalled(), "one check got its answer");
    assert_eq!(
        s.store.intent("pi_1").unwrap().failing,
        Some((2, T0 + 2 * MINUTE)),
        "a write that failed is a failed check too"
    );
    let gone = s.store.intent("pi_gone").unwrap();
    assert_eq!(gone.flagged.as_deref(), Some("not_found_at_fintoc"));
    assert_eq!(gone.schedule, None, "not retried forever");
    s.clock
        .set_ms(s.store.intent("pi_1").unwrap().schedule.unwrap().due_at_ms);
    let summary = service.run(None).await;
    assert_eq!(summary.outcomes_found, 1, "the failed write is retried");
    let recorded = s.store.intent("pi_1").unwrap();
    assert_eq!(recorded.status, Some(PaymentStatus::Failed));
    assert_eq!(recorded.failing, None, "an answered check clears the count");
}

#[tokio::test]
async fn a_payment_whose_checks_always_fail_backs_off_and_is_stuck_after_twelve_days() {
    let s = Setup::new();
    s.created("pi_1").await;
    *s.fintoc.failing.lock().unwrap() = true;
    let service = s.service(ReconcileSettings::default());
    let mut runs = 0;
    while let Some(schedule) = s.store.intent("pi_1").unwrap().schedule {
        s.clock.set_ms(schedule.due_at_ms);
        let summary = service.run(None).await;
        assert!(summary.failed == 1 || summary.stuck == 1, "{summary:?}");
        runs += 1;
        assert!(runs < 400, "the schedule ends");
    }
    let intent = s.store.intent("pi_1").unwrap();
    assert_eq!(intent.flagged.as_deref(), Some("stuck"), "a human sees it");
    assert_eq!(
        intent.status,
        Some(PaymentStatus::Created),
        "never invented"
    );
    assert!(s.clock.now_ms() >= T0 + GIVE_UP_AFTER_MS);
    let calls = s.fintoc.calls().len();
    assert!(
        (12 * 24 - 6..=12 * 24 + 6).contains(&calls),
        "about one call an hour, not one every run: {calls}"
    );
}

#[tokio::test]
async fn payments_whose_checks_always_fail_never_starve_their_shard() {
    let s = Setup::new();
    // More failing payments in one shard than a run reads of it, all due before
    // a healthy one of the same shard.
    let shard = crate::domain::schedule::shard_of("pi_healthy");
    let failing: Vec<String> = (0..)
        .map(|i| format!("pi_broken_{i}"))
        .filter(|id| crate::domain::schedule::shard_of(id) == shard)
        .take(80)
        .collect();
    for id in &failing {
        s.created(id).await;
        s.fintoc.statuses.lock().unwrap().remove(id);
        s.fintoc.broken.lock().unwrap().insert(id.clone());
    }
    s.clock.set_ms(T0 + MINUTE);
    s.created_at("pi_healthy", T0 + MINUTE).await;
    s.fintoc.set("pi_healthy", "succeeded");
    let service = s.service(ReconcileSettings {
        max_intents_per_run: 16 * 32,
        ..ReconcileSettings::default()
    });
    let mut runs = 0;
    while s.store.intent("pi_healthy").unwrap().status != Some(PaymentStatus::Succeeded) {
        s.clock.advance_ms(5 * MINUTE);
        service.run(None).await;
        runs += 1;
        assert!(
            runs <= 4,
            "the healthy payment is reached within a few runs"
        );
    }
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
            mode: Some("test".into()),
            session_attempt: None,
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

#[tokio::test]
async fn a_sessions_payment_given_only_as_an_id_is_looked_up_and_recorded() {
    // Before, a finished session whose payment Fintoc gave only as an id could
    // never be recorded: checked for 12 days, then flagged stuck.
    let s = Setup::new();
    s.store
        .save_created(&StoredPayment {
            id: "cs_1".into(),
            kind: PaymentKind::Session,
            status: PaymentStatus::Created,
            amount: 100,
            currency: "CLP".into(),
            order_id: None,
            metadata: BTreeMap::new(),
            customer_email: None,
            mode: Some("test".into()),
            error_reason: None,
            created_at: format_rfc3339_ms(T0),
            updated_at: format_rfc3339_ms(T0),
            schedule: Some(initial_schedule("cs_1", T0)),
            session_payment: None,
            expires_at: None,
            review: None,
            refunds: Default::default(),
        })
        .await
        .unwrap();
    s.fintoc.set("cs_1", "finished");
    s.fintoc
        .session_payment_ids
        .lock()
        .unwrap()
        .insert("cs_1".into(), "pi_of_cs_1".into());
    s.fintoc.set("pi_of_cs_1", "succeeded");
    s.clock.set_ms(T0 + 2 * MINUTE);
    let summary = s.service(ReconcileSettings::default()).run(None).await;
    assert_eq!(summary.outcomes_found, 1, "{summary:?}");
    let session = s.store.payment(PaymentKind::Session, "cs_1").unwrap();
    assert_eq!(session.status, Some(PaymentStatus::Succeeded));
    assert_eq!(
        session.session_payment.map(|p| p.intent_id).as_deref(),
        Some("pi_of_cs_1")
    );
    assert_eq!(session.schedule, None, "final: off the index");
}

/// Issue 34 (8): a window of Fintoc's refund list longer than one read (10 pages
/// of 300) is read in narrower chunks, and the cursor moves past it; only a
/// minute that does not fit stalls the sweep, flagged as such, not as failed
/// checks run after run.
#[tokio::test]
async fn a_busy_refund_list_is_swept_in_chunks_and_only_an_impossible_one_stalls() {
    let s = Setup::new();
    let hour = 60 * MINUTE;
    s.store
        .advance_refund_sweep(&format_rfc3339_ms(T0 - 3 * hour))
        .await
        .unwrap();
    *s.fintoc.refund_list_fits_ms.lock().unwrap() = Some(30 * MINUTE);
    let service = s.service(ReconcileSettings::default());
    let mut summary = RunSummary::default();
    service.sweep_outside_refunds(&mut summary).await;
    assert_eq!(
        (summary.failed, summary.refund_sweep_stalled),
        (0, 0),
        "{summary:?}"
    );
    let cursor = s.store.refund_sweep_cursor().await.unwrap().unwrap();
    assert_eq!(
        crate::clock::parse_rfc3339_ms(&cursor),
        Some(T0 - crate::domain::reconcile::REFUND_SWEEP_LAG_MS),
        "read to the end, chunk by chunk"
    );
    let lists = s.fintoc.refund_lists.lock().unwrap().clone();
    let bounded = lists.iter().filter(|(_, until)| until.is_some()).count();
    assert!(
        bounded > 1 && lists.len() == bounded + 2 && lists.last().unwrap().1.is_none(),
        "the window whole, narrowed, then read in chunks up to one that reaches now: {lists:?}"
    );

    // A minute longer than one read: stalled, flagged once per run, the cursor
    // kept where it was.
    *s.fintoc.refund_list_fits_ms.lock().unwrap() = Some(MINUTE / 2);
    s.clock.advance_ms(hour);
    let mut stalled = RunSummary::default();
    service.sweep_outside_refunds(&mut stalled).await;
    assert_eq!(
        (stalled.failed, stalled.refund_sweep_stalled),
        (0, 1),
        "{stalled:?}"
    );
    assert_eq!(
        s.store.refund_sweep_cursor().await.unwrap().unwrap(),
        cursor
    );
}
