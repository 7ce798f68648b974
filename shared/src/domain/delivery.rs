//! When a merchant event's delivery to an endpoint is tried again, and when it
//! stops: the first attempt at once, then a ladder of waits reaching past 24 hours
//! (8 attempts in all), until an answer in 2xx; `410 Gone` disables the endpoint;
//! after the last attempt the delivery is exhausted (alarmed, and recoverable).

/// The waits before each attempt after the first, in milliseconds: 5 s, 5 min,
/// 30 min, 2 h, 5 h, 10 h, 10 h — the last attempt 27 h 35 min after the first.
pub const RETRY_LADDER_MS: [i64; 7] = [
    5_000,
    5 * 60_000,
    30 * 60_000,
    2 * 3_600_000,
    5 * 3_600_000,
    10 * 3_600_000,
    10 * 3_600_000,
];

/// Every attempt a delivery gets: the first and one per rung.
pub const MAX_ATTEMPTS: u32 = RETRY_LADDER_MS.len() as u32 + 1;

/// What one attempt's answer means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptResult {
    /// 2xx: the endpoint has the event.
    Accepted,
    /// `410 Gone`: the endpoint wants no more deliveries.
    Gone,
    /// Anything else (another status, a timeout, no connection): try again.
    Failed,
}

impl AttemptResult {
    /// The result of an answer with `status` (`None`: no answer at all).
    pub fn of(status: Option<u16>) -> Self {
        match status {
            Some(200..=299) => Self::Accepted,
            Some(410) => Self::Gone,
            _ => Self::Failed,
        }
    }
}

/// What follows an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Delivered: nothing more.
    Delivered,
    /// The endpoint is disabled: nothing more to it until an operator enables it.
    DisableEndpoint,
    /// Try again at this time (ms since the epoch).
    RetryAt(i64),
    /// Every attempt failed: alarmed, and sent again only by a recover.
    Exhausted,
}

/// What follows attempt number `attempt` (1 for the first) made at `now_ms` with
/// `result`. `scale` compresses the ladder (1.0 deployed; the local stack runs the
/// whole of it in about 2 minutes, [`LOCAL_LADDER_SCALE`]).
pub fn after_attempt(attempt: u32, result: AttemptResult, now_ms: i64, scale: f64) -> Next {
    match result {
        AttemptResult::Accepted => Next::Delivered,
        AttemptResult::Gone => Next::DisableEndpoint,
        AttemptResult::Failed => match RETRY_LADDER_MS.get(attempt.saturating_sub(1) as usize) {
            Some(wait) => Next::RetryAt(now_ms + ((*wait as f64) * scale).round().max(1.0) as i64),
            None => Next::Exhausted,
        },
    }
}

/// The local stack's compression of the ladder: 27 h 35 min into about 2 minutes.
pub const LOCAL_LADDER_SCALE: f64 = 120_000.0 / 99_305_000.0;

/// The destination that is the AWS account's EventBridge bus (every other
/// destination is an endpoint, by its configured name).
pub const BUS_DESTINATION: &str = "eventbridge";

/// How much of an endpoint's answer an attempt keeps.
pub const ANSWER_HEAD_BYTES: usize = 256;

/// How long a claimed attempt owns its delivery: past it, a crashed attempt's
/// delivery may be claimed again (longer than any attempt's timeout).
pub const CLAIM_LEASE_MS: i64 = 60_000;

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Waiting for its next attempt.
    Pending,
    /// An answer in 2xx: done.
    Delivered,
    /// Every attempt failed: alarmed; a recover sends it again.
    Exhausted,
    /// Its endpoint is disabled (it answered `410 Gone`, or an operator): held
    /// until the endpoint is enabled and a recover sends it.
    Held,
}

impl DeliveryState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Exhausted => "exhausted",
            Self::Held => "held",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Pending, Self::Delivered, Self::Exhausted, Self::Held]
            .into_iter()
            .find(|state| state.as_str() == s)
    }

    /// The state after an attempt's [`Next`].
    pub fn after(next: Next) -> Self {
        match next {
            Next::Delivered => Self::Delivered,
            Next::DisableEndpoint => Self::Held,
            Next::RetryAt(_) => Self::Pending,
            Next::Exhausted => Self::Exhausted,
        }
    }
}

/// One attempt, as recorded on its delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    /// Its number (1 for the first).
    pub attempt: u32,
    /// When it started (ms since the epoch).
    pub at_ms: i64,
    /// The answer's status; `None`: no answer (timeout, no connection).
    pub status: Option<u16>,
    /// How long it took.
    pub duration_ms: u64,
    /// The first [`ANSWER_HEAD_BYTES`] of the answer, or why there was none.
    pub answer_head: String,
}

/// The first [`ANSWER_HEAD_BYTES`] of an answer, as text (invalid UTF-8 replaced,
/// never cut inside a character).
pub fn answer_head(answer: &[u8]) -> String {
    let text = String::from_utf8_lossy(&answer[..answer.len().min(ANSWER_HEAD_BYTES + 4)]);
    let mut end = text.len().min(ANSWER_HEAD_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eight_attempts_over_more_than_a_day() {
        assert_eq!(MAX_ATTEMPTS, 8);
        let total: i64 = RETRY_LADDER_MS.iter().sum();
        assert_eq!(total, 99_305_000, "27 h 35 min 5 s");
        assert!(total > 24 * 3_600_000);
        assert!(RETRY_LADDER_MS.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn answers_decide_what_follows() {
        assert_eq!(AttemptResult::of(Some(200)), AttemptResult::Accepted);
        assert_eq!(AttemptResult::of(Some(204)), AttemptResult::Accepted);
        assert_eq!(AttemptResult::of(Some(410)), AttemptResult::Gone);
        for failed in [Some(301), Some(400), Some(404), Some(429), Some(500), None] {
            assert_eq!(
                AttemptResult::of(failed),
                AttemptResult::Failed,
                "{failed:?}"
            );
        }
        assert_eq!(
            after_attempt(3, AttemptResult::Accepted, 0, 1.0),
            Next::Delivered
        );
        assert_eq!(
            after_attempt(1, AttemptResult::Gone, 0, 1.0),
            Next::DisableEndpoint
        );
    }

    #[test]
    fn a_failed_attempt_waits_its_rung_and_the_last_exhausts() {
        let t = 1_000_000;
        assert_eq!(
            after_attempt(1, AttemptResult::Failed, t, 1.0),
            Next::RetryAt(t + 5_000)
        );
        assert_eq!(
            after_attempt(2, AttemptResult::Failed, t, 1.0),
            Next::RetryAt(t + 300_000)
        );
        assert_eq!(
            after_attempt(7, AttemptResult::Failed, t, 1.0),
            Next::RetryAt(t + 36_000_000)
        );
        assert_eq!(
            after_attempt(8, AttemptResult::Failed, t, 1.0),
            Next::Exhausted
        );
    }

    #[test]
    fn what_follows_an_attempt_is_the_deliverys_state() {
        assert_eq!(
            DeliveryState::after(Next::Delivered),
            DeliveryState::Delivered
        );
        assert_eq!(
            DeliveryState::after(Next::DisableEndpoint),
            DeliveryState::Held
        );
        assert_eq!(
            DeliveryState::after(Next::RetryAt(5)),
            DeliveryState::Pending
        );
        assert_eq!(
            DeliveryState::after(Next::Exhausted),
            DeliveryState::Exhausted
        );
        for state in ["pending", "delivered", "exhausted", "held"] {
            assert_eq!(DeliveryState::parse(state).unwrap().as_str(), state);
        }
        assert_eq!(DeliveryState::parse("sent"), None);
    }

    #[test]
    fn an_answers_head_is_its_first_bytes_cut_on_a_character() {
        assert_eq!(answer_head(b"ok"), "ok");
        let long = "é".repeat(200);
        let head = answer_head(long.as_bytes());
        assert!(head.len() <= ANSWER_HEAD_BYTES && head.len() >= ANSWER_HEAD_BYTES - 1);
        assert!(head.chars().all(|c| c == 'é'));
        assert_eq!(answer_head(&[0xff, b'a']), "\u{fffd}a");
    }

    #[test]
    fn the_local_ladder_takes_about_two_minutes() {
        let mut at = 0;
        for attempt in 1..MAX_ATTEMPTS {
            match after_attempt(attempt, AttemptResult::Failed, at, LOCAL_LADDER_SCALE) {
                Next::RetryAt(next) => {
                    assert!(next > at, "attempt {attempt} waits at least 1 ms");
                    at = next;
                }
                other => panic!("attempt {attempt}: {other:?}"),
            }
        }
        assert!((119_000..=121_000).contains(&at), "{at} ms");
        assert_eq!(
            after_attempt(MAX_ATTEMPTS, AttemptResult::Failed, at, LOCAL_LADDER_SCALE),
            Next::Exhausted
        );
    }
}
