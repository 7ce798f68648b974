//! The idempotency engine: runs a command once per idempotency key.
//!
//! [`begin`] acquires the key (one conditional write) with the request's
//! fingerprint, or answers a replay, a request still in progress or a key reused
//! for another request; the caller runs its command under the [`Lease`]; [`finish`]
//! stores the command's answer for replay, or releases the key so a retry runs it
//! again. The key and the fingerprint are fixed once, at acquisition: the command
//! reads its request through the [`Lease`], which owns it. Both create routes and
//! refund creation go through it.
//!
//! A command whose store can take the key together with its own first write (the
//! create's order reservation, `store::CreateStore`) builds the key's request
//! with [`Acquiring`] and resolves what the store answered; one whose last write
//! can complete the key with it asks its [`Lease::completion`] and ends with
//! [`CommandResult::Completed`].

use super::errors::store_error;
use crate::domain::idempotency::{
    AcquireOutcome, AcquireRequest, CompleteRequest, IdempotencyKey, KeyHistory, LeaseId,
    ReservationId, StoredResponse,
};
use crate::http::{ApiError, Reply};
use crate::store::{IdempotencyStore, KeyAnd, StoreError};
use std::future::Future;
use std::time::Duration;

/// A request whose fingerprint says whether a retry asks for the same thing.
pub trait Fingerprinted {
    /// A stable digest of everything the request asks for.
    fn fingerprint(&self) -> String;
}

/// How long keys are held and remembered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyPolicy {
    /// The lease of an in-flight request on its key.
    pub lease: Duration,
    /// How long an answer is replayed.
    pub record_ttl: Duration,
}

/// A key held by this invocation, with the request it was taken for.
#[derive(Debug)]
pub struct Lease<R> {
    key: IdempotencyKey,
    fingerprint: String,
    request: R,
    lease_id: LeaseId,
    reservation_id: ReservationId,
    resumed: Option<KeyHistory>,
    now_ms: i64,
    until_ms: i64,
}

impl<R> Lease<R> {
    /// The client's key.
    pub fn key(&self) -> &IdempotencyKey {
        &self.key
    }

    /// The request, as fingerprinted at acquisition (read-only).
    pub fn request(&self) -> &R {
        &self.request
    }

    /// The reservation the command holds its order under: the same for every
    /// request that resumes this record, never one of an expired record's.
    pub fn reservation_id(&self) -> &ReservationId {
        &self.reservation_id
    }

    /// A resumed record's history (an earlier request may have reached Fintoc
    /// under the key); `None` when this request took the key fresh.
    pub fn resumed(&self) -> Option<KeyHistory> {
        self.resumed
    }

    /// The generation of the key derived for Fintoc this lease's sends use.
    pub fn fintoc_key_generation(&self) -> u32 {
        self.resumed.map_or(0, |h| h.fintoc_key_generation)
    }

    /// The fingerprint stored with the key.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// When the key was taken (Unix ms).
    pub fn now_ms(&self) -> i64 {
        self.now_ms
    }

    /// Until when the lease holds (Unix ms): never past the invocation's deadline.
    pub fn until_ms(&self) -> i64 {
        self.until_ms
    }

    /// The key's completion with `response`, for a command that writes it in its
    /// own last write (then ending with [`CommandResult::Completed`]).
    pub fn completion<'a>(
        &'a self,
        response: &'a StoredResponse,
        payment_id: Option<&'a str>,
    ) -> CompleteRequest<'a> {
        CompleteRequest {
            key: &self.key,
            lease_id: &self.lease_id,
            response,
            intent_id: payment_id,
        }
    }
}

/// What a command run under a lease ended with.
#[derive(Debug)]
pub enum CommandResult {
    /// Done: the answer is stored for replay (`payment_id`: what it created).
    Done {
        /// The answer, replayed to every retry.
        response: StoredResponse,
        /// The payment created, recorded on the key.
        payment_id: Option<String>,
    },
    /// Done, and the command's last write completed the key with `response`
    /// ([`Lease::completion`]): nothing is left to store.
    Completed {
        /// The answer, stored for replay.
        response: StoredResponse,
    },
    /// Refused for good (a dependency rejected the request): the refusal is stored
    /// for replay, as the dependency keeps it for its own key too.
    Refused(ApiError),
    /// Failed: nothing is stored and the key is released, so a retry runs again.
    Failed(ApiError),
}

/// What taking a key gave.
#[derive(Debug)]
pub enum Begun<R> {
    /// This invocation holds the key: run the command, then [`finish`].
    Held(Lease<R>),
    /// The command ran already: its stored answer, to send again.
    Replay(Reply),
}

/// The write a command makes first, taken together with its key in one write (a
/// create's order reservation, a refund's): refused, neither is written.
pub trait FirstWrite<S: ?Sized>: Send + Sync {
    /// What a refusal of the first write found (nothing was written).
    type Refused: Send;

    /// Takes a fresh key for `acquire` with this write; a key that is not fresh is
    /// answered as [`IdempotencyStore::acquire`] answers it, nothing else written.
    fn take_with_key(
        &self,
        store: &S,
        acquire: &AcquireRequest<'_>,
    ) -> impl Future<Output = Result<KeyAnd<Self::Refused>, StoreError>> + Send;
}

/// The key alone, for a command whose first write comes after it.
#[derive(Debug, Clone, Copy, Default)]
pub struct KeyAlone;

impl<S: IdempotencyStore> FirstWrite<S> for KeyAlone {
    type Refused = std::convert::Infallible;

    async fn take_with_key(
        &self,
        store: &S,
        acquire: &AcquireRequest<'_>,
    ) -> Result<KeyAnd<Self::Refused>, StoreError> {
        store.acquire(acquire).await.map(KeyAnd::Key)
    }
}

/// What opening a command on its key gave.
#[derive(Debug)]
pub enum Opened<R, X> {
    /// This invocation holds the key: run the command, then [`finish`].
    Held {
        /// The lease to run it under.
        lease: Lease<R>,
        /// Whether the command's first write was made with the key (else it is
        /// still to make: a resumed key).
        first_written: bool,
    },
    /// The command ran already: its stored answer, to send again.
    Replay(Reply),
    /// The first write was refused (what it found): nothing was written, not even
    /// the key, which is handed back (to take alone, or to answer the refusal).
    Refused(X, Acquiring<R>),
}

/// The one door of the engine: takes `acquiring`'s key with the command's
/// `first` write (one write), and answers the lease to run the command under, the
/// stored answer of a command that ran already, or the first write's refusal; a
/// request still running under the key is a 409 (`Retry-After`), the key reused
/// for another request a 422.
pub async fn open<S, R, W>(
    store: &S,
    acquiring: Acquiring<R>,
    first: &W,
) -> Result<Opened<R, W::Refused>, ApiError>
where
    S: ?Sized,
    W: FirstWrite<S>,
{
    let taken = first
        .take_with_key(store, &acquiring.request())
        .await
        .map_err(store_error)?;
    let (outcome, first_written) = match taken {
        KeyAnd::Taken {
            lease_id,
            reservation_id,
        } => (
            AcquireOutcome::Acquired {
                lease_id,
                reservation_id,
                resumed: None,
            },
            true,
        ),
        KeyAnd::Key(outcome) => (outcome, false),
        KeyAnd::Refused(found) => return Ok(Opened::Refused(found, acquiring)),
    };
    Ok(match acquiring.resolve(outcome)? {
        Begun::Held(lease) => Opened::Held {
            lease,
            first_written,
        },
        Begun::Replay(reply) => Opened::Replay(reply),
    })
}

/// Takes `key` for `request` alone ([`open`] with [`KeyAlone`]): the lease to run
/// the command under, or the stored answer of a command that ran already.
pub async fn begin<S, R>(
    store: &S,
    policy: KeyPolicy,
    key: IdempotencyKey,
    request: R,
    now_ms: i64,
    deadline_ms: Option<i64>,
) -> Result<Begun<R>, ApiError>
where
    S: IdempotencyStore,
    R: Fingerprinted,
{
    let acquiring = Acquiring::new(policy, key, request, now_ms, deadline_ms);
    match open(store, acquiring, &KeyAlone).await? {
        Opened::Held { lease, .. } => Ok(Begun::Held(lease)),
        Opened::Replay(reply) => Ok(Begun::Replay(reply)),
        Opened::Refused(never, _) => match never {},
    }
}

/// A key about to be taken for a request: what the store is asked
/// ([`Self::request`]), and what its answer means ([`Self::resolve`]).
#[derive(Debug)]
pub struct Acquiring<R> {
    key: IdempotencyKey,
    fingerprint: String,
    request: R,
    now_ms: i64,
    until_ms: i64,
    expires_at_ms: i64,
}

impl<R: Fingerprinted> Acquiring<R> {
    /// `key` for `request` at `now_ms`, its lease never past the invocation's
    /// deadline.
    pub fn new(
        policy: KeyPolicy,
        key: IdempotencyKey,
        request: R,
        now_ms: i64,
        deadline_ms: Option<i64>,
    ) -> Self {
        let configured = now_ms + policy.lease.as_millis() as i64;
        let until_ms = deadline_ms
            .filter(|d| *d > now_ms)
            .map_or(configured, |d| d.min(configured));
        Self {
            fingerprint: request.fingerprint(),
            key,
            request,
            now_ms,
            until_ms,
            expires_at_ms: now_ms + policy.record_ttl.as_millis() as i64,
        }
    }
}

impl<R> Acquiring<R> {
    /// The client's key.
    pub fn key(&self) -> &IdempotencyKey {
        &self.key
    }

    /// The request, as it will be fingerprinted.
    pub fn command(&self) -> &R {
        &self.request
    }

    /// What the store is asked to take.
    pub fn request(&self) -> AcquireRequest<'_> {
        AcquireRequest {
            key: &self.key,
            request_hash: &self.fingerprint,
            now_ms: self.now_ms,
            lease_expires_at_ms: self.until_ms,
            expires_at_ms: self.expires_at_ms,
        }
    }

    /// What the store's answer means: the lease, a replay, a 409 or a 422 (the
    /// door, [`open`], is its one caller).
    fn resolve(self, outcome: AcquireOutcome) -> Result<Begun<R>, ApiError> {
        let Self {
            key,
            fingerprint,
            request,
            now_ms,
            until_ms,
            ..
        } = self;
        resolve(key, fingerprint, request, now_ms, until_ms, outcome)
    }
}

fn resolve<R>(
    key: IdempotencyKey,
    fingerprint: String,
    request: R,
    now_ms: i64,
    until_ms: i64,
    outcome: AcquireOutcome,
) -> Result<Begun<R>, ApiError> {
    let (lease_id, reservation_id, resumed) = match outcome {
        AcquireOutcome::Acquired {
            lease_id,
            reservation_id,
            resumed,
        } => (lease_id, reservation_id, resumed),
        AcquireOutcome::Replay(response) => {
            tracing::info!(
                idempotency_key = key.as_str(),
                status = response.status,
                "replaying stored response"
            );
            return Ok(Begun::Replay(Reply {
                status: response.status,
                body: response.body,
                replayed: true,
            }));
        }
        AcquireOutcome::InProgress { retry_after_secs } => {
            return Err(ApiError::request_in_progress(retry_after_secs));
        }
        AcquireOutcome::Mismatch => return Err(ApiError::idempotency_key_reused()),
    };
    Ok(Begun::Held(Lease {
        key,
        fingerprint,
        request,
        lease_id,
        reservation_id,
        resumed,
        now_ms,
        until_ms,
    }))
}

/// Ends the command run under `lease`: stores its answer for replay, or releases
/// the key so a retry runs it again; answers the caller.
pub async fn finish<S, R>(
    store: &S,
    lease: Lease<R>,
    result: CommandResult,
) -> Result<Reply, ApiError>
where
    S: IdempotencyStore,
{
    match result {
        CommandResult::Done {
            response,
            payment_id,
        } => {
            let completion = CompleteRequest {
                key: &lease.key,
                lease_id: &lease.lease_id,
                response: &response,
                intent_id: payment_id.as_deref(),
            };
            match store.complete(&completion).await {
                Ok(true) => {}
                Ok(false) => tracing::warn!(
                    idempotency_key = lease.key.as_str(),
                    "lease was taken over before completion; the same Fintoc payment is answered"
                ),
                Err(e) => {
                    release(store, &lease).await;
                    return Err(store_error(e));
                }
            }
            Ok(Reply::new(response.status, response.body))
        }
        CommandResult::Completed { response } => Ok(Reply::new(response.status, response.body)),
        CommandResult::Refused(err) => {
            let response = StoredResponse {
                status: err.status,
                body: err.body(),
            };
            let completion = CompleteRequest {
                key: &lease.key,
                lease_id: &lease.lease_id,
                response: &response,
                intent_id: None,
            };
            if !matches!(store.complete(&completion).await, Ok(true)) {
                release(store, &lease).await;
            }
            Err(err)
        }
        CommandResult::Failed(err) => {
            release(store, &lease).await;
            Err(err)
        }
    }
}

/// Moves the key `lease` holds to the next generation of the key derived for
/// Fintoc, from `from` (one conditional write): `false` when the lease was lost
/// or another request moved it.
pub async fn next_fintoc_key_generation<S, R>(
    store: &S,
    lease: &Lease<R>,
    from: u32,
) -> Result<bool, crate::store::StoreError>
where
    S: IdempotencyStore,
{
    store
        .next_fintoc_key_generation(&lease.key, &lease.lease_id, from)
        .await
}

async fn release<S: IdempotencyStore, R>(store: &S, lease: &Lease<R>) {
    if let Err(e) = store.release(&lease.key, &lease.lease_id).await {
        // The lease expires by itself; the client's retry then takes over.
        tracing::warn!(idempotency_key = lease.key.as_str(), error = %e.detail(), "could not release the idempotency record");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::idempotency::CallerId;
    use crate::store::memory::MemoryStore;
    use std::cell::Cell;

    const T0: i64 = 1_767_225_600_000;

    /// A request that can be changed through a shared reference, as a careless
    /// command might try.
    #[derive(Debug)]
    struct Request(Cell<u64>);

    impl Fingerprinted for Request {
        fn fingerprint(&self) -> String {
            format!("amount={}", self.0.get())
        }
    }

    fn policy() -> KeyPolicy {
        KeyPolicy {
            lease: Duration::from_secs(30),
            record_ttl: Duration::from_secs(86_400),
        }
    }

    fn key() -> IdempotencyKey {
        IdempotencyKey::parse(&CallerId::anonymous(), Some("key-1")).unwrap()
    }

    async fn begin_at(
        store: &MemoryStore,
        amount: u64,
        now: i64,
    ) -> Result<Begun<Request>, ApiError> {
        begin(
            store,
            policy(),
            key(),
            Request(Cell::new(amount)),
            now,
            None,
        )
        .await
    }

    fn done(body: &str) -> CommandResult {
        CommandResult::Done {
            response: StoredResponse {
                status: 201,
                body: body.into(),
            },
            payment_id: Some("pi_1".into()),
        }
    }

    #[tokio::test]
    async fn the_fingerprint_is_fixed_at_acquisition() {
        let store = MemoryStore::default();
        let Begun::Held(lease) = begin_at(&store, 100, T0).await.unwrap() else {
            panic!("the first request holds the key");
        };
        // The command changes its request after the key was taken...
        lease.request().0.set(999);
        assert_eq!(lease.fingerprint(), "amount=100");
        finish(&store, lease, done("first")).await.unwrap();
        // ...which changes nothing: the key still belongs to the request it was
        // taken for, and the changed one is another request.
        let Begun::Replay(reply) = begin_at(&store, 100, T0 + 1).await.unwrap() else {
            panic!("the same request is a replay");
        };
        assert_eq!(
            (reply.status, reply.body.as_str(), reply.replayed),
            (201, "first", true)
        );
        let reused = begin_at(&store, 999, T0 + 2).await.unwrap_err();
        assert_eq!(reused.status, 422);
    }

    #[tokio::test]
    async fn a_held_key_is_in_progress_and_a_failure_releases_it() {
        let store = MemoryStore::default();
        let Begun::Held(lease) = begin_at(&store, 100, T0).await.unwrap() else {
            panic!("held");
        };
        assert_eq!(lease.until_ms(), T0 + 30_000);
        assert_eq!(begin_at(&store, 100, T0 + 1).await.unwrap_err().status, 409);
        let failed = ApiError::event_not_recorded();
        assert_eq!(
            finish(&store, lease, CommandResult::Failed(failed))
                .await
                .unwrap_err()
                .status,
            503
        );
        // Released: the retry runs the command again.
        assert!(matches!(
            begin_at(&store, 100, T0 + 2).await.unwrap(),
            Begun::Held(_)
        ));
    }

    #[tokio::test]
    async fn a_refusal_is_stored_and_replayed() {
        let store = MemoryStore::default();
        let Begun::Held(lease) = begin_at(&store, 100, T0).await.unwrap() else {
            panic!("held");
        };
        let refusal = ApiError::invalid_request(422, "rejected", "no");
        let err = finish(&store, lease, CommandResult::Refused(refusal))
            .await
            .unwrap_err();
        assert_eq!(err.status, 422);
        let Begun::Replay(reply) = begin_at(&store, 100, T0 + 1).await.unwrap() else {
            panic!("the refusal is replayed");
        };
        assert_eq!((reply.status, reply.body), (422, err.body()));
    }

    #[tokio::test]
    async fn the_lease_never_outlives_the_invocation() {
        let store = MemoryStore::default();
        let begun = begin(
            &store,
            policy(),
            key(),
            Request(Cell::new(1)),
            T0,
            Some(T0 + 5_000),
        );
        let Begun::Held(lease) = begun.await.unwrap() else {
            panic!("held");
        };
        assert_eq!(lease.until_ms(), T0 + 5_000);
    }
}
