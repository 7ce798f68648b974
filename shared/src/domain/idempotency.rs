//! Idempotency rules, after Powertools' record design and Stripe's `Idempotency-Key`.
//!
//! A record per client key is taken with one conditional write (a *lease*), then
//! completed with the response to replay, or released so the client can retry. This
//! module holds the keys, the requests the store port takes, and the pure decisions;
//! `store` renders them as DynamoDB conditions, and the in-memory store applies them.
//!
//! Every time here is Unix milliseconds.

use super::error::{InputError, InputErrorKind};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Longest `Idempotency-Key`.
pub const MAX_IDEMPOTENCY_KEY_CHARS: usize = 255;

/// Who is calling the API, as API Gateway authenticated it (the IAM principal, or a
/// JWT's issuer and subject); a fixed identity when the route has no authorizer.
/// Idempotency keys are scoped to it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CallerId(String);

impl CallerId {
    /// The caller of a route without an authorizer (and of the local stack).
    pub fn anonymous() -> Self {
        Self("anonymous".into())
    }

    /// An IAM principal, by its ARN. An assumed role's session name is dropped
    /// (`arn:aws:sts::<account>:assumed-role/<role>/<session>` is the role): the
    /// same backend retrying from another host, or after its credentials were
    /// refreshed under a new session name, is the same caller.
    pub fn iam(user_arn: &str) -> Self {
        Self(format!("iam:{}", principal_of(user_arn)))
    }

    /// A JWT's subject, qualified by its issuer.
    pub fn jwt(issuer: &str, subject: &str) -> Self {
        Self(format!("jwt:{issuer}|{subject}"))
    }

    /// The identity as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The principal an IAM ARN names, without what changes between its sessions: an
/// assumed role's session name. Every other ARN is its own principal.
fn principal_of(arn: &str) -> &str {
    let Some((prefix, resource)) = arn.split_once(":assumed-role/") else {
        return arn;
    };
    match resource.split_once('/') {
        Some((role, _session)) if prefix.contains(":sts:") && !role.is_empty() => {
            &arn[..prefix.len() + ":assumed-role/".len() + role.len()]
        }
        _ => arn,
    }
}

/// A validated `Idempotency-Key` header value: the *client's* key, scoped to the
/// caller that sent it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey {
    caller: CallerId,
    key: String,
}

impl IdempotencyKey {
    /// Validates a header value of `caller`: 1–255 visible ASCII characters.
    pub fn parse(caller: &CallerId, value: Option<&str>) -> Result<Self, InputError> {
        let value = value.ok_or_else(|| {
            InputError::new(
                InputErrorKind::Malformed,
                "missing_idempotency_key",
                "The Idempotency-Key header is required: send a unique value per payment and reuse it on retries.",
            )
        })?;
        let valid = !value.is_empty()
            && value.len() <= MAX_IDEMPOTENCY_KEY_CHARS
            && value.bytes().all(|b| b.is_ascii_graphic());
        if !valid {
            return Err(InputError::new(
                InputErrorKind::Malformed,
                "invalid_idempotency_key",
                "The Idempotency-Key header must be 1 to 255 visible ASCII characters (no spaces).",
            ));
        }
        Ok(Self {
            caller: caller.clone(),
            key: value.to_string(),
        })
    }

    /// The key as sent by the client.
    pub fn as_str(&self) -> &str {
        &self.key
    }

    /// The caller it belongs to.
    pub fn caller(&self) -> &CallerId {
        &self.caller
    }

    /// The record's identity: a digest of the caller (16 hex characters), `:`, the
    /// key. Two callers never share a record, whatever key they choose.
    pub fn record_id(&self) -> String {
        let digest = Sha256::digest(self.caller.as_str().as_bytes());
        format!("{}:{}", &hex::encode(digest)[..16], self.key)
    }
}

/// The `Idempotency-Key` sent to Fintoc, derived from a client key by
/// [`derive_fintoc_key`]; a distinct type so the two cannot be swapped.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FintocKey(String);

impl FintocKey {
    /// The key as sent to Fintoc (64 lowercase hex characters).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The token that proves a request holds an idempotency record's lease.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LeaseId(String);

impl LeaseId {
    /// A new random lease id.
    pub fn random() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }

    /// A lease id read back from storage.
    pub fn from_stored(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The id as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A request to take a client key (the store port's argument).
#[derive(Debug, Clone, Copy)]
pub struct AcquireRequest<'a> {
    /// The client's key.
    pub key: &'a IdempotencyKey,
    /// Fingerprint of the request body.
    pub request_hash: &'a str,
    /// Now.
    pub now_ms: i64,
    /// Until when the lease holds.
    pub lease_expires_at_ms: i64,
    /// Until when the record counts (its response is replayed). Stored in whole
    /// seconds, as the TTL attribute keeps it: the fraction is dropped.
    pub expires_at_ms: i64,
}

/// A request to complete a record with the response to replay.
#[derive(Debug, Clone, Copy)]
pub struct CompleteRequest<'a> {
    /// The client's key.
    pub key: &'a IdempotencyKey,
    /// The lease this request holds.
    pub lease_id: &'a LeaseId,
    /// What retries get.
    pub response: &'a StoredResponse,
    /// The intent created, when one was.
    pub intent_id: Option<&'a str>,
}

/// Where a record stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecordStatus {
    /// A request holds the lease and is talking to Fintoc.
    #[serde(rename = "IN_PROGRESS")]
    InProgress,
    /// Finished: its response is replayed to retries.
    #[serde(rename = "COMPLETED")]
    Completed,
    /// Given up by its request (a failure a retry may fix): free for any request
    /// with this key, which resumes it under the same reservation.
    #[serde(rename = "RELEASED")]
    Released,
}

/// The id under which a create holds its order (the order's `holder`): fresh for
/// each idempotency record, kept while the record lives — across lease take-overs
/// and releases, so a retry resumes its own reservation — and never reused once the
/// record expired, so a key reused a day later cannot resume an order an earlier
/// payment holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservationId(String);

impl ReservationId {
    /// A new random reservation id.
    pub fn random() -> Self {
        Self(format!("res_{}", uuid::Uuid::new_v4().simple()))
    }

    /// A reservation id read back from storage.
    pub fn from_stored(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The reservation of a record written before reservations had ids of their
    /// own: its key's record id, as orders held by it say.
    pub fn of_legacy_record(key: &IdempotencyKey) -> Self {
        Self(key.record_id())
    }

    /// The id as stored on the record and the order.
    pub fn as_str(&self) -> &str {
        &self.0
    }
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
    /// When the record stops counting, in whole seconds (the TTL attribute).
    pub expires_at_ms: i64,
    /// The response, once completed.
    pub response: Option<StoredResponse>,
    /// The reservation its requests hold their order under (`None` on records
    /// written before reservations had ids of their own).
    pub reservation_id: Option<ReservationId>,
    /// What the record says of the sends made under its key (`taken_at_ms` 0 on
    /// records written before it was kept).
    pub history: KeyHistory,
}

/// What a record says of the requests sent to Fintoc under its key before: when
/// the record was first taken (no send under it is older), and the generation of
/// the key derived for Fintoc ([`derive_fintoc_key_at`]) that its sends use — 0
/// until a failure Fintoc stored under a key moved it on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyHistory {
    /// When the record was first taken (Unix ms).
    pub taken_at_ms: i64,
    /// The generation of the derived key its sends use.
    pub fintoc_key_generation: u32,
}

/// What a request gets when it asks for a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AcquireOutcome {
    /// This request holds the lease identified by the token.
    Acquired {
        /// Token proving ownership to complete or release the record.
        lease_id: LeaseId,
        /// The reservation to hold the order under.
        reservation_id: ReservationId,
        /// A resumed record's history (a released key, an abandoned lease): an
        /// earlier request may have reached Fintoc under it. `None`: a fresh record.
        resumed: Option<KeyHistory>,
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

/// Whether a fresh record (with a fresh reservation) may replace `existing`: it
/// has expired. The DynamoDB store renders this as its `PutItem` condition.
pub fn is_expired(existing: &IdempotencyRecord, now_ms: i64) -> bool {
    existing.expires_at_ms < now_ms
}

/// Whether a new request may resume the live record `existing` under a new lease,
/// keeping its reservation: a released key or an abandoned lease, by the same
/// request only (its fingerprint). Another request under a released key is a
/// mismatch (422): a retry of a lost answer with another body would otherwise be
/// sent under the key that reached Fintoc first. The DynamoDB store renders this as
/// its `UpdateItem` condition.
pub fn can_resume(existing: &IdempotencyRecord, request_hash: &str, now_ms: i64) -> bool {
    !is_expired(existing, now_ms)
        && existing.request_hash == request_hash
        && match existing.status {
            RecordStatus::Released => true,
            RecordStatus::InProgress => existing.lease_expires_at_ms < now_ms,
            RecordStatus::Completed => false,
        }
}

/// Whether an existing record lets a new request take the key: it has expired, or
/// it can be resumed. The in-memory store applies these functions; the store
/// contract suite checks that both stores agree.
pub fn can_take_over(existing: &IdempotencyRecord, request_hash: &str, now_ms: i64) -> bool {
    is_expired(existing, now_ms) || can_resume(existing, request_hash, now_ms)
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
/// share a Fintoc account; the caller separates callers of one deployment.
pub fn derive_fintoc_key(namespace: &str, client_key: &IdempotencyKey) -> FintocKey {
    derive_fintoc_key_at(namespace, client_key, 0)
}

/// The key of [`derive_fintoc_key`] at `generation`: the first (0) is that key; a
/// later one, sent once Fintoc stored a failure under the one before (it replays a
/// stored answer to every retry of its key), is derived in its own namespace.
pub fn derive_fintoc_key_at(
    namespace: &str,
    client_key: &IdempotencyKey,
    generation: u32,
) -> FintocKey {
    if generation > 0 {
        return derive_key(&format!("{namespace}:g{generation}"), client_key);
    }
    derive_key(namespace, client_key)
}

fn derive_key(namespace: &str, client_key: &IdempotencyKey) -> FintocKey {
    let mut hasher = Sha256::new();
    hasher.update(b"fintoc-payment-intents/v2\0");
    hasher.update(namespace.as_bytes());
    hasher.update(b"\0");
    hasher.update(client_key.caller().as_str().as_bytes());
    hasher.update(b"\0");
    hasher.update(client_key.as_str().as_bytes());
    FintocKey(hex::encode(hasher.finalize()))
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
            expires_at_ms: expires_s * 1000,
            response: (status == RecordStatus::Completed).then(|| StoredResponse {
                status: 201,
                body: "{}".into(),
            }),
            reservation_id: Some(ReservationId::from_stored("res_1")),
            history: KeyHistory::default(),
        }
    }

    #[test]
    fn each_generation_of_a_derived_key_is_its_own_and_the_first_is_the_key() {
        let key = IdempotencyKey::parse(&CallerId::anonymous(), Some("k-1")).unwrap();
        let first = derive_fintoc_key_at("ns", &key, 0);
        assert_eq!(first, derive_fintoc_key("ns", &key));
        let second = derive_fintoc_key_at("ns", &key, 1);
        assert_ne!(second, first);
        assert_ne!(derive_fintoc_key_at("ns", &key, 2), second);
        // A generation is the namespace's, as refunds' keys always were.
        assert_eq!(second, derive_fintoc_key("ns:g1", &key));
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
        let key = |k: &str| IdempotencyKey::parse(&CallerId::anonymous(), Some(k)).unwrap();
        let a = derive_fintoc_key("", &key("order-1"));
        assert_eq!(a, derive_fintoc_key("", &key("order-1")));
        assert_ne!(a, derive_fintoc_key("", &key("order-2")));
        assert_ne!(a, derive_fintoc_key("shop-b", &key("order-1")));
        let other_caller = IdempotencyKey::parse(&CallerId::iam("arn:x"), Some("order-1")).unwrap();
        assert_ne!(a, derive_fintoc_key("", &other_caller));
        assert_eq!(a.as_str().len(), 64);
    }

    #[test]
    fn records_are_scoped_to_the_caller() {
        let alice = IdempotencyKey::parse(&CallerId::iam("arn:a"), Some("k")).unwrap();
        let bob = IdempotencyKey::parse(&CallerId::jwt("iss", "a"), Some("k")).unwrap();
        assert_ne!(alice.record_id(), bob.record_id());
        assert_ne!(alice, bob);
        assert!(alice.record_id().ends_with(":k"));
        assert_eq!(alice.as_str(), "k");
    }

    #[test]
    fn idempotency_key_rules() {
        assert_eq!(
            IdempotencyKey::parse(&CallerId::anonymous(), None)
                .unwrap_err()
                .code,
            "missing_idempotency_key"
        );
        for bad in ["", "has space", "tab\t", "ñ", &"k".repeat(256)] {
            assert_eq!(
                IdempotencyKey::parse(&CallerId::anonymous(), Some(bad))
                    .unwrap_err()
                    .code,
                "invalid_idempotency_key",
                "{bad:?}"
            );
        }
        assert_eq!(
            IdempotencyKey::parse(&CallerId::anonymous(), Some(&"k".repeat(255)))
                .unwrap()
                .as_str()
                .len(),
            255
        );
        assert!(IdempotencyKey::parse(&CallerId::anonymous(), Some("order-42:attempt/1")).is_ok());
    }

    #[test]
    fn an_assumed_role_is_one_caller_whatever_its_session_name() {
        let a = CallerId::iam("arn:aws:sts::123456789012:assumed-role/checkout-backend/i-0abc");
        let b =
            CallerId::iam("arn:aws:sts::123456789012:assumed-role/checkout-backend/refreshed-42");
        assert_eq!(a, b);
        assert_eq!(
            a.as_str(),
            "iam:arn:aws:sts::123456789012:assumed-role/checkout-backend"
        );
        // Another role, another account: other callers.
        let other_role = CallerId::iam("arn:aws:sts::123456789012:assumed-role/reports/i-0abc");
        let other_account =
            CallerId::iam("arn:aws:sts::999999999999:assumed-role/checkout-backend/i-0abc");
        assert_ne!(a, other_role);
        assert_ne!(a, other_account);
        // Users and roles by their own ARN stay as they are.
        for arn in [
            "arn:aws:iam::123456789012:user/alice",
            "arn:aws:iam::123456789012:role/checkout-backend",
            "arn:aws:sts::123456789012:federated-user/bob",
            "arn:aws:sts::123456789012:assumed-role/no-session",
        ] {
            assert_eq!(CallerId::iam(arn).as_str(), format!("iam:{arn}"));
        }
    }

    #[test]
    fn a_released_key_is_resumed_by_its_own_request_until_it_expires() {
        let released = record(RecordStatus::Released, "h", 4_000, 10);
        assert!(can_resume(&released, "h", 5_000));
        assert!(!can_resume(&released, "other", 5_000), "another request");
        assert_eq!(
            classify_conflict(&released, "other", 5_000),
            AcquireOutcome::Mismatch
        );
        assert!(
            !can_resume(&released, "h", 10_001),
            "expired: a fresh record"
        );
        assert!(is_expired(&released, 10_001));
        // An abandoned lease is resumed by its own request only; a completed record
        // never.
        let abandoned = record(RecordStatus::InProgress, "h", 4_000, 10);
        assert!(can_resume(&abandoned, "h", 5_000));
        assert!(!can_resume(&abandoned, "other", 5_000));
        assert!(!can_resume(
            &record(RecordStatus::Completed, "h", 0, 10),
            "h",
            5_000
        ));
    }

    #[test]
    fn reservation_ids_are_fresh_and_legacy_records_keep_their_holder() {
        assert_ne!(ReservationId::random(), ReservationId::random());
        let key = IdempotencyKey::parse(&CallerId::anonymous(), Some("k-1")).unwrap();
        assert_eq!(
            ReservationId::of_legacy_record(&key).as_str(),
            key.record_id()
        );
    }
}
