//! The check schedule of an open payment: when the reconciler next asks Fintoc
//! about it, how checks back off ([`CHECK_DELAYS_MS`], then daily) and when they
//! stop ([`GIVE_UP_AFTER_MS`]), and which shard of the sparse index it is in.

/// Delays before each of the first checks, from creation, then from each check.
pub const CHECK_DELAYS_MS: [i64; 4] = [2 * MINUTE, 10 * MINUTE, HOUR, 6 * HOUR];
/// Delay between checks after the first ones.
pub const DAILY_MS: i64 = 24 * HOUR;
/// How long after creation an intent is checked before it is marked stuck.
pub const GIVE_UP_AFTER_MS: i64 = 12 * DAILY_MS;
/// Most time between checks while they fail (Fintoc or storage unavailable, a
/// refused key): after an outage, every open payment is checked again within it.
pub const FAILING_RECHECK_MAX_MS: i64 = HOUR;
/// How many shards the index of open intents is written across.
pub const INDEX_SHARDS: u16 = 16;

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;

/// Where an open intent stands in the check schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckSchedule {
    /// The index shard it is written to.
    pub shard: u16,
    /// When it is next due (Unix ms).
    pub due_at_ms: i64,
    /// Checks made so far.
    pub checks: u32,
    /// When checks stop and it is marked stuck (Unix ms).
    pub give_up_at_ms: i64,
}

/// What a write does to an intent's check schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScheduleChange {
    /// Left as it is.
    Unchanged,
    /// Removed: the intent is final (or stuck, or unknown at Fintoc): it leaves the index.
    Clear,
    /// Set: the intent is open and checked next at this point (a check got
    /// Fintoc's answer: the payment is no longer failing).
    Set(CheckSchedule),
    /// Set after a check that failed: counted on the payment (`failed_checks`,
    /// and since when its checks fail), which stays on the index.
    Failed {
        /// When it is checked next.
        next: CheckSchedule,
        /// When the check failed (Unix ms).
        at_ms: i64,
    },
}

/// The index shard of an intent: a stable hash of its id, so open intents spread
/// evenly and no partition of the index is hot.
pub fn shard_of(intent_id: &str) -> u16 {
    // FNV-1a: stable across versions and platforms (std's hasher is not).
    let mut hash: u32 = 0x811c_9dc5;
    for byte in intent_id.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    (hash % u32::from(INDEX_SHARDS)) as u16
}

/// The schedule of an intent created at `created_ms`: first due after the first delay.
pub fn initial_schedule(intent_id: &str, created_ms: i64) -> CheckSchedule {
    initial_schedule_after(intent_id, created_ms, CHECK_DELAYS_MS[0])
}

/// The schedule of an intent created at `created_ms`, first due `first_check_ms`
/// later (shorter on a local stack, where nobody waits two minutes).
pub fn initial_schedule_after(
    intent_id: &str,
    created_ms: i64,
    first_check_ms: i64,
) -> CheckSchedule {
    CheckSchedule {
        shard: shard_of(intent_id),
        due_at_ms: created_ms + first_check_ms.max(0),
        checks: 0,
        give_up_at_ms: created_ms + GIVE_UP_AFTER_MS,
    }
}

/// The delay after check number `checks` (1-based count of checks made).
fn delay_after(checks: u32) -> i64 {
    CHECK_DELAYS_MS
        .get(checks as usize)
        .copied()
        .unwrap_or(DAILY_MS)
}

/// The schedule after one more check at `now_ms`: the next delay, never past the
/// give-up point (so the last check happens at it).
pub fn after_check(schedule: &CheckSchedule, now_ms: i64) -> CheckSchedule {
    let checks = schedule.checks + 1;
    CheckSchedule {
        checks,
        due_at_ms: (now_ms + delay_after(checks)).min(schedule.give_up_at_ms.max(now_ms + 1)),
        ..*schedule
    }
}

/// The schedule after a check at `now_ms` that failed: counted as a check (so the
/// checks back off as answered ones do), but never more than
/// [`FAILING_RECHECK_MAX_MS`] away, and never past the give-up point.
pub fn after_failed_check(schedule: &CheckSchedule, now_ms: i64) -> CheckSchedule {
    let next = after_check(schedule, now_ms);
    CheckSchedule {
        due_at_ms: next.due_at_ms.min(now_ms + FAILING_RECHECK_MAX_MS),
        ..next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_767_225_600_000;

    #[test]
    fn failed_checks_back_off_up_to_an_hour_and_move_off_the_head() {
        let mut s = initial_schedule("pi_1", T0);
        let mut now = s.due_at_ms;
        let mut gaps = Vec::new();
        while now < s.give_up_at_ms {
            let next = after_failed_check(&s, now);
            assert!(next.due_at_ms > now, "never due again at once");
            gaps.push(next.due_at_ms - now);
            now = next.due_at_ms;
            s = next;
        }
        assert_eq!(&gaps[..4], &[10 * MINUTE, HOUR, HOUR, HOUR]);
        assert_eq!(now, T0 + GIVE_UP_AFTER_MS, "the give-up point is reached");
    }

    #[test]
    fn checks_back_off_then_run_daily_until_the_give_up_point() {
        let mut s = initial_schedule("pi_1", T0);
        assert_eq!(s.due_at_ms, T0 + 2 * MINUTE);
        let mut gaps = Vec::new();
        let mut now = s.due_at_ms;
        while now < s.give_up_at_ms {
            let next = after_check(&s, now);
            gaps.push(next.due_at_ms - now);
            now = next.due_at_ms;
            s = next;
        }
        assert_eq!(
            &gaps[..5],
            &[10 * MINUTE, HOUR, 6 * HOUR, DAILY_MS, DAILY_MS]
        );
        assert_eq!(
            now,
            T0 + GIVE_UP_AFTER_MS,
            "the last check is at the give-up point"
        );
        assert!(gaps.len() < 20, "about a dozen checks per intent");
    }

    #[test]
    fn shards_are_stable_and_spread() {
        assert_eq!(shard_of("pi_1"), shard_of("pi_1"));
        let used: std::collections::BTreeSet<u16> =
            (0..1000).map(|i| shard_of(&format!("pi_{i}"))).collect();
        assert_eq!(used.len(), INDEX_SHARDS as usize);
    }
}
