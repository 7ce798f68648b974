//! Idempotency rules, after Powertools' record design and Stripe's `Idempotency-Key`.
//!
//! A record per client key is taken with one conditional write (a *lease*), then
//! completed with the response to replay, or released so the client can retry. This
//! module holds the pure decisions; `store` holds the DynamoDB expressions.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Where a record stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecordStatus {
    /// A request holds the lease and is talking to Fintoc.
    #[serde(rename = "IN_PROGRESS")]
    InProgress,
    /// Finished: its response is replayed to retries.
    #[serde(rename = "COMPLETED")]
    Completed,
}

/// A response kept for replay: status code and exact JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    /// HTTP status.
    pub status: u16,
    /// JSON body as sent the first time.
    pub body: String,
}

/// The fields of an idempotency record that decisions look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    /// In progress or completed.
    pub status: RecordStatus,
    /// Fingerprint of the request that took the key.
    pub request_hash: String,
    /// Unix ms after which an in-progress lease may be taken over.
    pub lease_expires_at_ms: i64,
    /// Unix seconds after which the record no longer counts (also the TTL).
    pub expires_at: i64,
    /// The response, once completed.
    pub response: Option<StoredResponse>,
}

/// What a request gets when it asks for a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AcquireOutcome {
    /// This request holds the lease identified by the token.
    Acquired {
        /// Token proving ownership to complete or release the record.
        lease_id: String,
    },
    /// A completed record: answer its response again.
    Replay(StoredResponse),
    /// Another request with this key is still running.
    InProgress {
        /// Seconds until its lease expires (at least 1).
        retry_after_secs: u64,
    },
    /// The key was used with a different request.
    Mismatch,
}

/// Whether an existing record lets a new request take the key, as the DynamoDB
/// condition in `store` decides it. Kept here so the rule is unit-tested.
pub fn can_take_over(existing: &IdempotencyRecord, request_hash: &str, now_ms: i64) -> bool {
    existing.expires_at * 1000 < now_ms
        || (existing.status == RecordStatus::InProgress
            && existing.lease_expires_at_ms < now_ms
            && existing.request_hash == request_hash)
}

/// Decides what a request gets when the key is held by `existing` and could not be
/// taken over (the conditional write failed).
pub fn classify_conflict(
    existing: &IdempotencyRecord,
    request_hash: &str,
    now_ms: i64,
) -> AcquireOutcome {
    if existing.request_hash != request_hash {
        return AcquireOutcome::Mismatch;
    }
    match (&existing.status, &existing.response) {
        (RecordStatus::Completed, Some(response)) => AcquireOutcome::Replay(response.clone()),
        _ => {
            let remaining_ms = (existing.lease_expires_at_ms - now_ms).max(0);
            AcquireOutcome::InProgress {
                retry_after_secs: ((remaining_ms + 999) / 1000).max(1) as u64,
            }
        }
    }
}

/// The `Idempotency-Key` sent to Fintoc for a client key: deterministic, so every
/// retry of one logical request, by any instance and at any time, sends the same key
/// and Fintoc creates at most one intent. The namespace separates deployments that
/// share a Fintoc account.
pub fn derive_fintoc_key(namespace: &str, client_key: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"fintoc-payment-intents/v1\0");
    hasher.update(namespace.as_bytes());
    hasher.update(b"\0");
    hasher.update(client_key.as_bytes());
    hex::encode(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(
        status: RecordStatus,
        hash: &str,
        lease_ms: i64,
        expires_s: i64,
    ) -> IdempotencyRecord {
        IdempotencyRecord {
            status,
            request_hash: hash.into(),
            lease_expires_at_ms: lease_ms,
            expires_at: expires_s,
            response: (status == RecordStatus::Completed).then(|| StoredResponse {
                status: 201,
                body: "{}".into(),
            }),
        }
    }

    #[test]
    fn completed_same_request_replays() {
        let r = record(RecordStatus::Completed, "h", 0, 10_000);
        assert!(
            matches!(classify_conflict(&r, "h", 5_000), AcquireOutcome::Replay(s) if s.status == 201)
        );
        assert!(!can_take_over(&r, "h", 5_000));
    }

    #[test]
    fn different_request_is_a_mismatch() {
        let r = record(RecordStatus::Completed, "h", 0, 10_000);
        assert_eq!(
            classify_conflict(&r, "other", 5_000),
            AcquireOutcome::Mismatch
        );
        let r = record(RecordStatus::InProgress, "h", 9_000, 10_000);
        assert_eq!(
            classify_conflict(&r, "other", 5_000),
            AcquireOutcome::Mismatch
        );
    }

    #[test]
    fn fresh_lease_is_in_progress_with_retry_after() {
        let r = record(RecordStatus::InProgress, "h", 7_500, 10_000);
        assert_eq!(
            classify_conflict(&r, "h", 5_000),
            AcquireOutcome::InProgress {
                retry_after_secs: 3
            }
        );
        assert!(!can_take_over(&r, "h", 5_000));
    }

    #[test]
    fn expired_lease_is_taken_over_only_by_the_same_request() {
        let r = record(RecordStatus::InProgress, "h", 4_000, 10_000);
        assert!(can_take_over(&r, "h", 5_000));
        assert!(!can_take_over(&r, "other", 5_000));
    }

    #[test]
    fn expired_record_is_taken_over_by_anyone() {
        let r = record(RecordStatus::Completed, "h", 0, 10);
        assert!(can_take_over(&r, "other", 10_001));
        assert!(!can_take_over(&r, "other", 10_000));
    }

    #[test]
    fn fintoc_key_is_deterministic_and_scoped() {
        let a = derive_fintoc_key("", "order-1");
        assert_eq!(a, derive_fintoc_key("", "order-1"));
        assert_ne!(a, derive_fintoc_key("", "order-2"));
        assert_ne!(a, derive_fintoc_key("shop-b", "order-1"));
        assert_eq!(a.len(), 64);
    }
}
