//! Reconciliation: asking Fintoc for the intents that are not final, on a per-intent
//! schedule, and applying its answer through the same decision ([`plan_write`]) and
//! the same single conditional write as a webhook.
//!
//! - An open intent carries a check schedule (its shard of the sparse index, when
//!   it is next due, how many checks were made, when to give up); a final status
//!   removes it.
//! - Checks back off: [`CHECK_DELAYS_MS`], then daily, until [`GIVE_UP_AFTER_MS`]
//!   after creation (past Fintoc's 10-day `pending` window); then the intent is
//!   marked stuck for a human.
//! - A check that fails (Fintoc or storage unavailable) counts too: the payment is
//!   checked again within an hour ([`plan_failed_check`]), carries its count of
//!   failed checks for a human, and is stuck at the same give-up point — failing
//!   payments never hold the head of their shard, and never fail silently forever.
//! - Fintoc's answer is applied under a synthetic, deterministic event id
//!   ([`reconciliation_event_id`]): two checks that see the same status, or a check
//!   racing a webhook, still change the intent once.

use super::payment::{PaymentKind, PaymentStatus};
use super::refund::{RefundKey, RefundReport};
use super::report::PaymentReport;
use super::schedule::{after_check, after_failed_check, CheckSchedule, ScheduleChange};
use super::transition::{plan_write, Effect, EventRef, PaymentPatch, PaymentState, Source};

/// The deterministic id under which a check's answer is recorded: the same status
/// seen twice is one event.
pub fn reconciliation_event_id(status: &PaymentStatus) -> String {
    format!("reconciliation:{}", status.as_str())
}

/// What Fintoc answered about one intent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FintocAnswer {
    /// The intent, as Fintoc shows it.
    Found(Box<PaymentReport>),
    /// Fintoc does not know it (404).
    NotFound,
}

/// Why an intent left the schedule without a final status: kept on it for a human.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flag {
    /// Still not final when checks stopped.
    Stuck,
    /// Fintoc answered 404 for an intent this deployment created.
    NotFoundAtFintoc,
}

impl Flag {
    /// Stable name, stored and logged.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stuck => "stuck",
            Self::NotFoundAtFintoc => "not_found_at_fintoc",
        }
    }
}

/// A change of an intent's schedule alone (no decision: its version stays), guarded
/// by the version it was decided on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleUpdate {
    /// The intent (or session).
    pub intent_id: String,
    /// Which kind of record.
    pub kind: PaymentKind,
    /// The version read; the update applies only if it is still current.
    pub expected_version: u64,
    /// The new schedule, or none (the intent leaves the index).
    pub change: ScheduleChange,
    /// Why it leaves the schedule, when it is for a human.
    pub flag: Option<Flag>,
    /// Now (RFC 3339).
    pub at: String,
}

/// What one check does.
#[derive(Debug, Clone, PartialEq)]
pub enum CheckPlan {
    /// Fintoc's answer changes the intent: one conditional write, as a webhook's.
    Apply {
        /// The effect, as a webhook's would be named.
        effect: Effect,
        /// The write (its schedule part set: cleared when final, moved otherwise).
        patch: Box<PaymentPatch>,
    },
    /// Nothing to apply: check again later (guarded by the version read).
    Reschedule(CheckSchedule),
    /// The intent is final already (the index entry is stale): it only leaves the index.
    LeaveIndex,
    /// Still not final when checks stop: marked stuck for a human, off the index.
    Stuck,
    /// Fintoc does not know an intent this deployment created: an anomaly for a
    /// human, off the index (never retried forever).
    NotFoundAtFintoc,
    /// The check failed (no answer from Fintoc, or it could not be recorded):
    /// counted, and checked again later (see [`plan_failed_check`]).
    Failed(CheckSchedule),
}

/// What a check that failed at `now_ms` does: the payment is checked again later,
/// backing off ([`after_failed_check`]) so it never holds the head of its shard,
/// with the failure counted on it; at the give-up point it is stuck, like a payment
/// Fintoc keeps answering as open — a failure is never retried forever.
pub fn plan_failed_check(schedule: &CheckSchedule, now_ms: i64) -> CheckPlan {
    if now_ms >= schedule.give_up_at_ms {
        CheckPlan::Stuck
    } else {
        CheckPlan::Failed(after_failed_check(schedule, now_ms))
    }
}

/// What a check of a paid payment's open refunds (the payment is on the index only
/// for them) does to its schedule: checked again while one is open, off the index
/// once none is, stuck at the give-up point, backed off like any failed check.
pub fn plan_refund_check(
    schedule: &CheckSchedule,
    still_open: bool,
    failed: bool,
    now_ms: i64,
) -> CheckPlan {
    if failed {
        plan_failed_check(schedule, now_ms)
    } else if !still_open {
        CheckPlan::LeaveIndex
    } else if now_ms >= schedule.give_up_at_ms {
        CheckPlan::Stuck
    } else {
        CheckPlan::Reschedule(after_check(schedule, now_ms))
    }
}

/// How far back the first sweep of Fintoc's refund list looks (no cursor yet).
pub const FIRST_REFUND_SWEEP_LOOKBACK_MS: i64 = 7 * 24 * 3_600_000;
/// How much before its cursor a sweep reads again: a refund whose `created_at`
/// is a little older than when Fintoc's list first showed it is still seen.
pub const REFUND_SWEEP_OVERLAP_MS: i64 = 3_600_000;
/// How far behind a complete sweep's start its cursor is left.
pub const REFUND_SWEEP_LAG_MS: i64 = 5 * 60_000;

/// Where a sweep of Fintoc's refund list starts (Unix ms), from the stored cursor
/// (Unix ms; `None`, also for an unreadable one: the first sweep).
pub fn refund_sweep_since(cursor_ms: Option<i64>, now_ms: i64) -> i64 {
    match cursor_ms {
        Some(at) => at.min(now_ms) - REFUND_SWEEP_OVERLAP_MS,
        None => now_ms - FIRST_REFUND_SWEEP_LOOKBACK_MS,
    }
}

/// The narrowest chunk of Fintoc's refund list (by `created_at`) a sweep reads:
/// it reads its window whole at first, and a chunk longer than one read (10 pages
/// of 300) is halved down to this; a minute with more refunds than one read takes
/// stalls the sweep (alarmed).
pub const REFUND_SWEEP_MIN_CHUNK_MS: i64 = 60_000;
/// Most chunks one sweep reads (a week behind is caught up in a few runs).
pub const REFUND_SWEEP_MAX_CHUNKS: usize = 48;

/// The end of the chunk to read from `since_ms` (inclusive): `span_ms` later,
/// never past `end_ms`; `None` when the sweep has reached `end_ms`.
pub fn refund_sweep_chunk_until(since_ms: i64, end_ms: i64, span_ms: i64) -> Option<i64> {
    (since_ms < end_ms).then(|| since_ms.saturating_add(span_ms).min(end_ms))
}

/// The span to read again with after a chunk of `span_ms` was longer than one
/// read (half of it), `None` at [`REFUND_SWEEP_MIN_CHUNK_MS`]: the sweep stalls.
pub fn narrower_refund_sweep_chunk(span_ms: i64) -> Option<i64> {
    (span_ms > REFUND_SWEEP_MIN_CHUNK_MS).then(|| (span_ms / 2).max(REFUND_SWEEP_MIN_CHUNK_MS))
}

/// Where the cursor moves once the chunk up to `until_ms` is read whole and
/// recorded, in a sweep that started at `started_ms`: to its end, never closer to
/// now than [`REFUND_SWEEP_LAG_MS`].
pub fn refund_sweep_cursor_after_chunk(until_ms: i64, started_ms: i64) -> i64 {
    until_ms.min(started_ms - REFUND_SWEEP_LAG_MS)
}

/// Which payment a reported refund is of, as far as the report says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundTarget {
    /// The payment's kind.
    pub kind: PaymentKind,
    /// The payment's id.
    pub payment_id: String,
    /// The refund's key on the payment's record, for one made here (`None`: made
    /// elsewhere, found on the record by Fintoc's id or imported).
    pub key: Option<RefundKey>,
}

/// The payment `report`'s refund is of: the payment and key of this backend's id
/// in its metadata (a refund made here), else the payment intent it was made for
/// (made elsewhere: Fintoc's dashboard, a plugin). `None` for a refund of anything
/// else. The webhook and the reconciler's sweep both look refunds up by it.
pub fn refund_target(report: &RefundReport) -> Option<RefundTarget> {
    if let Some(id) = report.refund_id() {
        return Some(RefundTarget {
            kind: if id.session {
                PaymentKind::Session
            } else {
                PaymentKind::Intent
            },
            payment_id: id.payment_id,
            key: Some(id.key),
        });
    }
    if report
        .resource_type
        .as_deref()
        .is_some_and(|t| t != "payment_intent")
    {
        return None;
    }
    report
        .resource_id
        .as_deref()
        .filter(|id| !id.is_empty())
        .map(|id| RefundTarget {
            kind: PaymentKind::Intent,
            payment_id: id.to_string(),
            key: None,
        })
}

/// Decides what Fintoc's `answer` about an intent in `current`, scheduled as
/// `schedule`, does at `now_ms` (`now` the same instant in RFC 3339).
pub fn plan_check(
    current: &PaymentState,
    schedule: &CheckSchedule,
    answer: &FintocAnswer,
    now_ms: i64,
    now: &str,
) -> CheckPlan {
    let report = match answer {
        FintocAnswer::NotFound => return CheckPlan::NotFoundAtFintoc,
        FintocAnswer::Found(report) => report,
    };
    let claimed = report.status.clone().unwrap_or(PaymentStatus::Created);
    let event_id = reconciliation_event_id(&claimed);
    let event_type = format!("{}.{}", report.kind.object(), claimed.as_str());
    let event = EventRef {
        id: &event_id,
        event_type: &event_type,
        created_at: None,
        source: Source::Reconciliation,
    };
    let next = after_check(schedule, now_ms);
    let (effect, patch) = plan_write(Some(current), &event, &claimed, report, now);
    let moves = matches!(
        effect,
        Effect::Transition { .. } | Effect::ConflictingFinal { .. }
    );
    match patch {
        Some(mut patch) if moves => {
            if !claimed.is_final() {
                patch.schedule = ScheduleChange::Set(next);
            }
            CheckPlan::Apply {
                effect,
                patch: Box::new(patch),
            }
        }
        _ if current.status.is_final() => CheckPlan::LeaveIndex,
        _ if now_ms >= schedule.give_up_at_ms => CheckPlan::Stuck,
        _ => CheckPlan::Reschedule(next),
    }
}

/// The slowest pace a run checks at (per second) when its backlog is small: a
/// handful of due payments is done in seconds, not spread over the whole run.
pub const MIN_RUN_PACE: u32 = 5;

/// How soon a run aims to have checked its backlog: a payment is recorded at most
/// this long after the run that first finds it due starts, while the backlog fits
/// the ceiling (spreading a small backlog wider would spare Fintoc little and
/// record every payment later).
pub const RUN_TARGET_MS: u64 = 60_000;

/// How a run is sized by its backlog: how many checks it can make at most, and at
/// what pace it makes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunPlan {
    /// Checks the run can make: `ceiling` per second for the time it may start
    /// checks (or the per-run bound, when lower or when the time is unknown).
    pub capacity: u64,
    /// Checks per second: enough to finish the backlog within [`RUN_TARGET_MS`]
    /// (or half the run's time, when shorter), at least [`MIN_RUN_PACE`], at most
    /// the ceiling (the reconciler's share of Fintoc's rate limit).
    pub pace: u32,
}

/// Sizes a run: `backlog` payments due, `usable_ms` the time it may start checks
/// (`None`: unknown, a run without a deadline), `ceiling` its share of Fintoc's
/// rate (per second), `max_per_run` the configured bound.
pub fn plan_run(backlog: u64, usable_ms: Option<i64>, ceiling: u32, max_per_run: u64) -> RunPlan {
    let ceiling = ceiling.max(1);
    let Some(usable_ms) = usable_ms.map(|ms| ms.max(0) as u64) else {
        return RunPlan {
            capacity: max_per_run,
            pace: ceiling,
        };
    };
    let capacity = (u64::from(ceiling) * usable_ms / 1000).min(max_per_run);
    // Within the target, or half the time when shorter: the rest absorbs slow
    // answers and retries.
    let target_s = (RUN_TARGET_MS.min(usable_ms / 2) / 1000).max(1);
    let wanted = backlog.div_ceil(target_s).min(u64::from(ceiling)) as u32;
    RunPlan {
        capacity,
        pace: wanted.max(MIN_RUN_PACE.min(ceiling)),
    }
}

/// A run's load against what it can do, in percent (100: the backlog fills the
/// run; above it, checks are left for the next run and the promise — recorded
/// within one interval of becoming due — is broken for them).
pub fn utilization_percent(backlog: u64, capacity: u64) -> u64 {
    match capacity {
        0 if backlog == 0 => 0,
        0 => 1000,
        c => (backlog * 100).div_ceil(c).min(1000),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::schedule::initial_schedule;
    use std::collections::BTreeMap;

    const T0: i64 = 1_767_225_600_000;

    #[test]
    fn a_busy_refund_list_is_read_in_chunks_narrowed_down_to_a_minute() {
        let hour = 3_600_000;
        let end = T0 + 10 * hour;
        assert_eq!(refund_sweep_chunk_until(T0, end, hour), Some(T0 + hour));
        assert_eq!(
            refund_sweep_chunk_until(end - 5, end, hour),
            Some(end),
            "never past the end"
        );
        assert_eq!(refund_sweep_chunk_until(end, end, hour), None);
        let mut span = hour;
        let mut halvings = 0;
        while let Some(narrower) = narrower_refund_sweep_chunk(span) {
            assert!(narrower < span && narrower >= REFUND_SWEEP_MIN_CHUNK_MS);
            span = narrower;
            halvings += 1;
        }
        assert_eq!((span, halvings), (REFUND_SWEEP_MIN_CHUNK_MS, 6));
        assert_eq!(
            refund_sweep_cursor_after_chunk(T0, T0 + 3_600_000),
            T0,
            "an old chunk: its end"
        );
        assert_eq!(
            refund_sweep_cursor_after_chunk(T0, T0),
            T0 - REFUND_SWEEP_LAG_MS,
            "up to now: the lag behind"
        );
    }

    #[test]
    fn the_refund_sweep_reads_back_from_its_cursor() {
        assert_eq!(
            refund_sweep_since(Some(T0), T0 + 300_000),
            T0 - REFUND_SWEEP_OVERLAP_MS
        );
        // A cursor ahead of the clock (a skewed writer) never hides refunds.
        assert_eq!(
            refund_sweep_since(Some(T0), T0 - 60_000),
            T0 - 60_000 - REFUND_SWEEP_OVERLAP_MS
        );
        assert_eq!(
            refund_sweep_since(None, T0),
            T0 - FIRST_REFUND_SWEEP_LOOKBACK_MS
        );
    }

    #[test]
    fn only_refunds_made_outside_this_api_of_payment_intents_are_swept() {
        let report = |metadata: &[(&str, &str)], resource_type: Option<&str>| RefundReport {
            id: "re_1".into(),
            status: crate::domain::refund::RefundStatus::Pending,
            amount: Some(100),
            currency: Some("CLP".into()),
            failure_code: None,
            resource_type: resource_type.map(str::to_string),
            resource_id: Some("pi_1".into()),
            mode: None,
            metadata: metadata
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            created_at: None,
        };
        let elsewhere = |id: &str| RefundTarget {
            kind: PaymentKind::Intent,
            payment_id: id.into(),
            key: None,
        };
        assert_eq!(
            refund_target(&report(&[], Some("payment_intent"))),
            Some(elsewhere("pi_1"))
        );
        assert_eq!(
            refund_target(&report(&[("note", "x")], None)),
            Some(elsewhere("pi_1"))
        );
        assert_eq!(refund_target(&report(&[], Some("charge"))), None);
        let made_here = [(
            crate::domain::refund::REFUND_ID_METADATA_KEY,
            "re_i.pi_1.k0123456789abcdef",
        )];
        assert_eq!(
            refund_target(&report(&made_here, Some("payment_intent"))),
            Some(RefundTarget {
                kind: PaymentKind::Intent,
                payment_id: "pi_1".into(),
                key: RefundKey::parse("k0123456789abcdef"),
            }),
            "made here: its payment and key, from its id"
        );
    }

    fn state(status: PaymentStatus) -> PaymentState {
        PaymentState {
            status,
            applied_event_ids: Default::default(),
            version: 3,
            requested: Some((100, "CLP".into())),
            order_id: Some("o-1".into()),
            mode: None,
            session_attempt: None,
        }
    }

    fn found(status: &str) -> FintocAnswer {
        FintocAnswer::Found(Box::new(PaymentReport {
            id: "pi_1".into(),
            status: Some(PaymentStatus::parse(status)),
            amount: Some(100),
            currency: Some("CLP".into()),
            metadata: BTreeMap::new(),
            ..PaymentReport::default()
        }))
    }

    #[test]
    fn open_refunds_keep_a_paid_payment_checked_until_none_is_open() {
        let s = initial_schedule("pi_1", T0);
        let CheckPlan::Reschedule(next) = plan_refund_check(&s, true, false, s.due_at_ms) else {
            panic!("an open refund is checked again")
        };
        assert_eq!(next.checks, 1);
        assert_eq!(
            plan_refund_check(&s, false, false, s.due_at_ms),
            CheckPlan::LeaveIndex
        );
        assert_eq!(
            plan_refund_check(&s, true, false, s.give_up_at_ms),
            CheckPlan::Stuck
        );
        assert!(matches!(
            plan_refund_check(&s, false, true, s.due_at_ms),
            CheckPlan::Failed(_)
        ));
    }

    #[test]
    fn a_failed_check_backs_off_and_is_stuck_at_the_give_up_point() {
        let s = initial_schedule("pi_1", T0);
        let CheckPlan::Failed(next) = plan_failed_check(&s, s.due_at_ms) else {
            panic!("checked again later")
        };
        assert_eq!(next.checks, 1);
        assert!(next.due_at_ms > s.due_at_ms);
        assert_eq!(plan_failed_check(&s, s.give_up_at_ms), CheckPlan::Stuck);
    }

    #[test]
    fn a_final_answer_is_applied_once_under_a_deterministic_id_and_leaves_the_index() {
        let s = initial_schedule("pi_1", T0);
        let plan = plan_check(
            &state(PaymentStatus::Pending),
            &s,
            &found("succeeded"),
            T0,
            "now",
        );
        let CheckPlan::Apply { effect, patch } = plan else {
            panic!("{plan:?}")
        };
        assert!(matches!(effect, Effect::Transition { .. }));
        assert_eq!(patch.event_id, "reconciliation:succeeded");
        assert_eq!(patch.schedule, ScheduleChange::Clear);
        let outcome = patch.outcome.unwrap();
        assert_eq!(outcome.decided_by, Source::Reconciliation);
        assert_eq!(patch.order.unwrap().order_id, "o-1");
        // The same answer seen again is a duplicate: nothing moves.
        let mut seen = state(PaymentStatus::Pending);
        seen.applied_event_ids
            .insert("reconciliation:succeeded".into());
        assert_eq!(
            plan_check(&seen, &s, &found("succeeded"), T0, "now"),
            CheckPlan::Reschedule(after_check(&s, T0))
        );
    }

    #[test]
    fn a_forward_move_is_applied_and_rescheduled_a_same_status_only_rescheduled() {
        let s = initial_schedule("pi_1", T0);
        let plan = plan_check(
            &state(PaymentStatus::Created),
            &s,
            &found("pending"),
            T0,
            "now",
        );
        let CheckPlan::Apply { patch, .. } = plan else {
            panic!("{plan:?}")
        };
        assert_eq!(patch.status, Some(PaymentStatus::Pending));
        assert_eq!(patch.schedule, ScheduleChange::Set(after_check(&s, T0)));
        assert_eq!(
            plan_check(
                &state(PaymentStatus::Pending),
                &s,
                &found("pending"),
                T0,
                "now"
            ),
            CheckPlan::Reschedule(after_check(&s, T0))
        );
        assert_eq!(
            plan_check(
                &state(PaymentStatus::Pending),
                &s,
                &found("created"),
                T0,
                "now"
            ),
            CheckPlan::Reschedule(after_check(&s, T0)),
            "an older status changes nothing"
        );
    }

    #[test]
    fn an_intent_still_open_at_the_give_up_point_is_stuck() {
        let s = initial_schedule("pi_1", T0);
        let late = s.give_up_at_ms;
        assert_eq!(
            plan_check(
                &state(PaymentStatus::Pending),
                &s,
                &found("pending"),
                late,
                "now"
            ),
            CheckPlan::Stuck
        );
        let CheckPlan::Apply { patch, .. } = plan_check(
            &state(PaymentStatus::Pending),
            &s,
            &found("failed"),
            late,
            "now",
        ) else {
            panic!("a final answer at the last check is still applied")
        };
        assert_eq!(patch.status, Some(PaymentStatus::Failed));
    }

    #[test]
    fn unknown_at_fintoc_is_an_anomaly_and_a_final_intent_only_leaves_the_index() {
        let s = initial_schedule("pi_1", T0);
        assert_eq!(
            plan_check(
                &state(PaymentStatus::Pending),
                &s,
                &FintocAnswer::NotFound,
                T0,
                "now"
            ),
            CheckPlan::NotFoundAtFintoc
        );
        assert_eq!(
            plan_check(
                &state(PaymentStatus::Succeeded),
                &s,
                &found("succeeded"),
                T0,
                "now"
            ),
            CheckPlan::LeaveIndex,
            "a stale index entry"
        );
    }

    #[test]
    fn a_run_is_sized_by_its_time_and_paced_by_its_backlog() {
        // 265 s to start checks at up to 40/s: 10,600 checks at most.
        let big = plan_run(50_000, Some(265_000), 40, 20_000);
        assert_eq!((big.capacity, big.pace), (10_600, 40));
        // 1,320 due: done within the target, 60 s, at 22/s.
        assert_eq!(plan_run(1_320, Some(265_000), 40, 20_000).pace, 22);
        // A short run: within half its time (3 s of a 6 s run: 40 due at 14/s).
        assert_eq!(plan_run(40, Some(6_000), 40, 20_000).pace, 14);
        // A handful: never slower than the floor.
        assert_eq!(plan_run(3, Some(265_000), 40, 20_000).pace, MIN_RUN_PACE);
        // The floor never beats the ceiling; the bound caps the capacity.
        assert_eq!(plan_run(3, Some(265_000), 2, 20_000).pace, 2);
        assert_eq!(plan_run(3, Some(265_000), 40, 1_000).capacity, 1_000);
        // No deadline (a test, an emulator): the bound, at the ceiling.
        assert_eq!(
            plan_run(3, None, 40, 1_000),
            RunPlan {
                capacity: 1_000,
                pace: 40
            }
        );
    }

    #[test]
    fn utilization_says_when_the_backlog_outgrows_the_run() {
        assert_eq!(utilization_percent(0, 10_600), 0);
        assert_eq!(utilization_percent(8_480, 10_600), 80);
        assert_eq!(utilization_percent(10_601, 10_600), 101);
        assert_eq!(utilization_percent(5, 0), 1000);
        assert_eq!(utilization_percent(0, 0), 0);
    }
}
