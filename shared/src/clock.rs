//! Time as a dependency, so tests move it instead of sleeping.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// A source of the current time in Unix milliseconds.
pub trait Clock: Send + Sync {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
}

/// The real wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
    }
}

/// A clock that only moves when told to; clones share the same time.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    /// A clock stopped at `now_ms`.
    pub fn new(now_ms: i64) -> Self {
        Self(Arc::new(AtomicI64::new(now_ms)))
    }

    /// Moves the clock forward (or backward, with a negative value).
    pub fn advance_ms(&self, delta_ms: i64) {
        self.0.fetch_add(delta_ms, Ordering::SeqCst);
    }

    /// Sets the clock.
    pub fn set_ms(&self, now_ms: i64) {
        self.0.store(now_ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now_ms(&self) -> i64 {
        (**self).now_ms()
    }
}

/// Formats Unix milliseconds as RFC 3339 UTC, e.g. `2026-11-23T20:01:09.123Z`.
pub fn format_rfc3339_ms(ms: i64) -> String {
    let dt = OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let s = dt.format(&Rfc3339).unwrap_or_default();
    // Normalise to exactly millisecond precision for stable, sortable strings.
    match s.find('.') {
        Some(dot) => format!("{}.{:03}Z", &s[..dot], (ms.rem_euclid(1000))),
        None => format!("{}.{:03}Z", s.trim_end_matches('Z'), (ms.rem_euclid(1000))),
    }
}

/// Parses an RFC 3339 timestamp (with or without fractional seconds) to Unix ms.
pub fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    let dt = OffsetDateTime::parse(s, &Rfc3339).ok()?;
    Some((dt.unix_timestamp_nanos() / 1_000_000) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_with_milliseconds() {
        assert_eq!(
            format_rfc3339_ms(1_743_890_251_000),
            "2025-04-05T21:57:31.000Z"
        );
        assert_eq!(
            format_rfc3339_ms(1_743_890_251_834),
            "2025-04-05T21:57:31.834Z"
        );
    }

    #[test]
    fn parses_with_and_without_fraction() {
        assert_eq!(
            parse_rfc3339_ms("2025-04-05T21:57:17Z"),
            Some(1_743_890_237_000)
        );
        assert_eq!(
            parse_rfc3339_ms("2025-04-05T21:57:31.834Z"),
            Some(1_743_890_251_834)
        );
        assert_eq!(parse_rfc3339_ms("yesterday"), None);
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::new(1_000);
        let shared = clock.clone();
        clock.advance_ms(500);
        assert_eq!(shared.now_ms(), 1_500);
        shared.set_ms(7);
        assert_eq!(clock.now_ms(), 7);
    }
}
