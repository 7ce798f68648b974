//! The merchant's payment API, what both flows share: the service, its settings,
//! and a create of either flow as one command on the idempotency engine — reserve
//! the order, create the payment at Fintoc under a derived key, store it, open the
//! order — plus reading a stored payment back. On its happy path a create makes
//! two DynamoDB requests (`store::CreateStore`): the key taken with the order
//! reserved, then the payment, the order opened and the key completed; anything
//! rarer (a key resumed, a write refused) goes one write at a time. Each flow's own part lives in its
//! module: `app::intents` (Payment Intents), `app::sessions` (Checkout Sessions).

use super::errors::{fintoc_error, store_error};
use super::idempotent::{
    self, Acquiring, CommandResult, Fingerprinted, FirstWrite, KeyPolicy, Lease, Opened,
};
use crate::clock::{format_rfc3339_ms, Clock};
use crate::domain::create::{
    made_for_order, CreateLimits, CreatePaymentRequest, ORDER_ID_METADATA_KEY,
};
use crate::domain::deployment::DEPLOYMENT_TAG_METADATA_KEY;
use crate::domain::error::{InputError, InputErrorKind};
use crate::domain::idempotency::{
    AcquireRequest, CallerId, IdempotencyKey, KeyHistory, StoredResponse,
};
use crate::domain::order::{OpenRequest, ReserveOutcome, ReserveRequest};
use crate::domain::payment::{PaymentKind, PaymentStatus, StoredPayment};
use crate::domain::schedule::initial_schedule_after;
use crate::domain::session::SessionSettings;
use crate::fintoc::{FintocApi, FintocError, FintocLookup, RecipientAccount};
use crate::http::{ApiError, Reply};
use crate::store::{
    CreateStore, EventStore, IdempotencyStore, KeyAnd, OrderStore, PaymentStore, StoreError,
};
use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

/// Time kept, before the invocation's deadline, to record what Fintoc answered.
const STORAGE_RESERVE_MS: i64 = 2_000;

/// Longest intent id accepted by `GET`.
pub const MAX_PAYMENT_ID_CHARS: usize = 255;

/// What the create use case needs of the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentSettings {
    /// Currency and amount limits.
    pub limits: CreateLimits,
    /// The configured recipient account.
    pub recipient: Option<RecipientAccount>,
    /// Namespace of the keys sent to Fintoc.
    pub idempotency_namespace: String,
    /// Lease of an in-flight request on its key.
    pub lease: Duration,
    /// How long responses are replayed.
    pub record_ttl: Duration,
    /// Widget token lifetime, from the intent's creation.
    pub widget_token_ttl: Duration,
    /// This deployment's tag, written into every intent's Fintoc metadata.
    pub deployment_tag: String,
    /// When the reconciler first checks a new intent, after its creation
    /// (`domain::reconcile::CHECK_DELAYS_MS[0]` in production).
    pub first_check_after: Duration,
    /// The checkout-session flow, when this deployment enables it.
    pub sessions: Option<SessionSettings>,
    /// The mode this deployment runs in (its secret key's): stored on every payment
    /// Fintoc's answer does not give a mode for, so an event of the other mode is
    /// never applied to it.
    pub mode: Option<String>,
}

impl PaymentSettings {
    /// How long keys are held and remembered.
    pub(super) fn key_policy(&self) -> KeyPolicy {
        KeyPolicy {
            lease: self.lease,
            record_ttl: self.record_ttl,
        }
    }
}

/// A create request as the handler received it.
#[derive(Debug, Clone, Copy)]
pub struct CreateInput<'a> {
    /// Who is calling, as API Gateway authenticated it.
    pub caller: &'a CallerId,
    /// The `Idempotency-Key` header.
    pub idempotency_key: Option<&'a str>,
    /// The `Content-Type` header.
    pub content_type: Option<&'a str>,
    /// The raw body.
    pub body: &'a [u8],
    /// The Lambda invocation deadline (Unix ms), when known: the lease never
    /// outlives the invocation that holds it.
    pub deadline_ms: Option<i64>,
}

/// The merchant's payment API of both flows, over a store, a Fintoc client and a clock.
#[derive(Debug, Clone)]
pub struct PaymentService<S, F, C> {
    pub(super) store: S,
    pub(super) fintoc: F,
    pub(super) clock: C,
    pub(super) settings: PaymentSettings,
}

impl Fingerprinted for CreatePaymentRequest {
    fn fingerprint(&self) -> String {
        CreatePaymentRequest::fingerprint(self)
    }
}

impl<S, F, C> PaymentService<S, F, C>
where
    S: IdempotencyStore + PaymentStore + OrderStore + EventStore + CreateStore,
    F: FintocApi + FintocLookup,
    C: Clock,
{
    /// A service over its dependencies.
    pub fn new(store: S, fintoc: F, clock: C, settings: PaymentSettings) -> Self {
        Self {
            store,
            fintoc,
            clock,
            settings,
        }
    }

    /// The store (for tests and tools).
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Creates a payment of `kind` exactly once per `key`: the command that runs
    /// under the key's lease (see [`super::idempotent`]); `at_fintoc` is the flow's
    /// own step, which creates it at Fintoc once the order is reserved;
    /// `payment_ref`, the reference its attempts carry (a session's), is recorded
    /// on the order when it opens.
    pub(super) async fn create_payment<Fut>(
        &self,
        kind: PaymentKind,
        key: IdempotencyKey,
        request: CreatePaymentRequest,
        deadline_ms: Option<i64>,
        payment_ref: Option<String>,
        at_fintoc: impl Fn(FintocCreate) -> Fut,
    ) -> Result<Reply, ApiError>
    where
        Fut: Future<Output = Result<(StoredPayment, String), Failure>>,
    {
        let now = self.clock.now_ms();
        let policy = self.settings.key_policy();
        let acquiring = Acquiring::new(policy, key, request, now, deadline_ms);
        let order_id = acquiring.command().order_id.clone();
        // One write: a fresh key with its order reserved. A key that is not fresh
        // is answered as `begin` would; resumed, it reserves its order below.
        let (lease, reserved) = match idempotent::open(
            &self.store,
            acquiring,
            &OrderReservation(&order_id),
        )
        .await?
        {
            Opened::Held {
                lease,
                first_written,
            } => (lease, first_written),
            Opened::Replay(reply) => return Ok(reply),
            Opened::Refused(refused, _) => {
                let refusal = order_refusal(&order_id, refused);
                tracing::info!(code = %refusal.code, "order not reserved; the key was not taken");
                return Err(refusal);
            }
        };
        let result = self
            .create_under_lease(
                kind,
                &lease,
                reserved,
                deadline_ms,
                payment_ref.as_deref(),
                at_fintoc,
            )
            .await;
        idempotent::finish(&self.store, lease, result).await
    }

    /// One order, one open payment, one payment: the order is reserved before
    /// Fintoc is asked (with the key, or here when the key was resumed), and
    /// opened with the payment Fintoc made.
    async fn create_under_lease<Fut>(
        &self,
        kind: PaymentKind,
        lease: &Lease<CreatePaymentRequest>,
        reserved: bool,
        deadline_ms: Option<i64>,
        payment_ref: Option<&str>,
        at_fintoc: impl Fn(FintocCreate) -> Fut,
    ) -> CommandResult
    where
        Fut: Future<Output = Result<(StoredPayment, String), Failure>>,
    {
        let (key, request) = (lease.key(), lease.request());
        // Held under the record's reservation, not the key: a key reused after its
        // record expired never resumes an order an earlier payment holds.
        let holder = lease.reservation_id().as_str();
        if !reserved {
            let reservation = self
                .store
                .reserve_order(&ReserveRequest {
                    order_id: &request.order_id,
                    holder,
                    now_ms: lease.now_ms(),
                    reserved_until_ms: lease.until_ms(),
                })
                .await;
            let refusal = match reservation {
                Ok(outcome) => outcome_refusal(&request.order_id, outcome),
                Err(e) => Some(store_error(e)),
            };
            if let Some(refusal) = refusal {
                tracing::info!(idempotency_key = key.as_str(), code = %refusal.code, "order not reserved");
                return CommandResult::Failed(refusal);
            }
        }
        match self
            .create_at_fintoc_and_store(kind, lease, holder, deadline_ms, payment_ref, at_fintoc)
            .await
        {
            Ok(Created::Completed(response)) => CommandResult::Completed { response },
            Ok(Created::Stored(response, payment_id)) => CommandResult::Done {
                response,
                payment_id: Some(payment_id),
            },
            Err(Failure::Fintoc(e @ FintocError::Rejected { .. })) => {
                // Fintoc keeps this answer for its key too: replay it from here.
                let err = fintoc_error(&e);
                tracing::info!(idempotency_key = key.as_str(), code = %err.code, "Fintoc rejected the request");
                CommandResult::Refused(err)
            }
            Err(Failure::Fintoc(e)) => {
                tracing::error!(idempotency_key = key.as_str(), kind = kind.as_str(), error = %e, "creating the payment at Fintoc failed");
                CommandResult::Failed(fintoc_error(&e))
            }
            Err(Failure::Store(e)) => CommandResult::Failed(store_error(e)),
        }
    }

    async fn create_at_fintoc_and_store<Fut>(
        &self,
        kind: PaymentKind,
        lease: &Lease<CreatePaymentRequest>,
        holder: &str,
        deadline_ms: Option<i64>,
        payment_ref: Option<&str>,
        at_fintoc: impl Fn(FintocCreate) -> Fut,
    ) -> Result<Created, Failure>
    where
        Fut: Future<Output = Result<(StoredPayment, String), Failure>>,
    {
        let (key, request, now) = (lease.key(), lease.request(), lease.now_ms());
        let mut fintoc_metadata = request.metadata.clone();
        fintoc_metadata.insert(ORDER_ID_METADATA_KEY.to_string(), request.order_id.clone());
        fintoc_metadata.insert(
            DEPLOYMENT_TAG_METADATA_KEY.to_string(),
            self.settings.deployment_tag.clone(),
        );
        // Keep time, after Fintoc answers, to record the payment and the response.
        let call = |generation, now_ms| FintocCreate {
            key: key.clone(),
            generation,
            request: request.clone(),
            metadata: fintoc_metadata.clone(),
            now,
            budget: fintoc_budget(deadline_ms, now_ms),
        };
        let mut made = at_fintoc(call(lease.fintoc_key_generation(), now)).await;
        let stored_failure = matches!(
            &made,
            Err(Failure::Fintoc(FintocError::Unavailable { status, .. })) if *status >= 500
        );
        if let (true, Some(history)) = (stored_failure, lease.resumed()) {
            if let Some(generation) = self
                .after_a_stored_create_failure(kind, lease, history, deadline_ms)
                .await
            {
                made = at_fintoc(call(generation, self.clock.now_ms())).await;
            }
        }
        let (payment, body) = made?;
        let response = StoredResponse { status: 201, body };
        let open = OpenRequest {
            order_id: &request.order_id,
            holder,
            intent_id: &payment.id,
            kind,
            payment_ref,
        };
        // One write: the payment, the order opened, the key completed.
        let completion = lease.completion(&response, Some(&payment.id));
        if self
            .store
            .record_created(&payment, &open, &completion)
            .await
            .map_err(Failure::Store)?
        {
            tracing::info!(id = %payment.id, kind = kind.as_str(), idempotency_key = key.as_str(), amount = payment.amount, currency = %payment.currency, "payment created");
            return Ok(Created::Completed(response));
        }
        // One of the three refused (another amount stored under the id, the
        // reservation or the lease lost): one write at a time says which.
        self.store
            .save_created(&payment)
            .await
            .map_err(Failure::Store)?;
        let opened = self.store.open_order(&open).await.map_err(Failure::Store)?;
        if !opened {
            // Only possible when this invocation outlived its own lease.
            return Err(Failure::Store(StoreError::Conflict(format!(
                "order {} is no longer reserved for this request",
                request.order_id
            ))));
        }
        tracing::info!(id = %payment.id, kind = kind.as_str(), idempotency_key = key.as_str(), amount = payment.amount, currency = %payment.currency, "payment created");
        Ok(Created::Stored(response, payment.id))
    }

    /// The stored form of a payment Fintoc just made, with its first check scheduled.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn stored(
        &self,
        kind: PaymentKind,
        id: &str,
        status: PaymentStatus,
        request: &CreatePaymentRequest,
        mode: Option<String>,
        created_at: &str,
        now: i64,
    ) -> StoredPayment {
        StoredPayment {
            id: id.to_string(),
            kind,
            status,
            amount: request.amount,
            currency: request.currency.code().to_string(),
            order_id: Some(request.order_id.clone()),
            metadata: request.metadata.clone(),
            customer_email: request.customer_email.clone(),
            mode: mode.or_else(|| self.settings.mode.clone()),
            error_reason: None,
            created_at: created_at.to_string(),
            updated_at: format_rfc3339_ms(now),
            schedule: Some(initial_schedule_after(
                id,
                now,
                self.settings.first_check_after.as_millis() as i64,
            )),
            session_payment: None,
            expires_at: None,
            review: None,
            refunds: Default::default(),
        }
    }

    pub(super) async fn find(
        &self,
        kind: PaymentKind,
        id: &str,
    ) -> Result<StoredPayment, ApiError> {
        let what = kind.noun();
        if id.is_empty()
            || id.chars().count() > MAX_PAYMENT_ID_CHARS
            || id.chars().any(|c| c.is_control() || c.is_whitespace())
        {
            return Err(InputError::invalid_param(
                "invalid_id",
                "id",
                format!("The {what} id is malformed."),
            )
            .into());
        }
        match self
            .store
            .get_payment(kind, id)
            .await
            .map_err(store_error)?
        {
            Some(payment) => Ok(payment),
            None => Err(payment_not_found(kind, id)),
        }
    }
}

/// The refusal of a read of a payment of `kind` this deployment does not hold.
pub(super) fn payment_not_found(kind: PaymentKind, id: &str) -> ApiError {
    InputError::new(
        InputErrorKind::NotFound,
        "resource_not_found",
        format!(
            "No {} with id {}.",
            kind.noun(),
            crate::domain::create::echo(id)
        ),
    )
    .with_param("id")
    .into()
}

/// A create's order reservation, taken with its key in one write.
struct OrderReservation<'a>(&'a str);

impl<S: CreateStore> FirstWrite<S> for OrderReservation<'_> {
    type Refused = ReserveOutcome;

    async fn take_with_key(
        &self,
        store: &S,
        acquire: &AcquireRequest<'_>,
    ) -> Result<KeyAnd<ReserveOutcome>, StoreError> {
        store.acquire_reserving(acquire, self.0).await
    }
}

/// What a flow's create at Fintoc is given, fixed before Fintoc is asked: the
/// client's key (to derive Fintoc's), the request as fingerprinted, the metadata
/// sent (the merchant's, the order id and this deployment's tag), when the key was
/// taken and the time Fintoc may take.
pub(super) struct FintocCreate {
    /// The client's idempotency key.
    pub key: IdempotencyKey,
    /// The generation of the key derived from it to send
    /// (`domain::idempotency::derive_fintoc_key_at`).
    pub generation: u32,
    /// The request, as the key was taken for it.
    pub request: CreatePaymentRequest,
    /// The metadata Fintoc stores with the payment.
    pub metadata: BTreeMap<String, String>,
    /// When the key was taken (Unix ms).
    pub now: i64,
    /// The time left for Fintoc.
    pub budget: Option<Duration>,
}

/// The time left for Fintoc, keeping [`STORAGE_RESERVE_MS`] to record its answer.
pub(super) fn fintoc_budget(deadline_ms: Option<i64>, now: i64) -> Option<Duration> {
    deadline_ms.map(|d| Duration::from_millis((d - now - STORAGE_RESERVE_MS).max(0) as u64))
}

/// Refuses an answer of Fintoc for another amount or currency than requested.
pub(super) fn check_amount(
    id: &str,
    amount: u64,
    currency: &str,
    request: &CreatePaymentRequest,
) -> Result<(), Failure> {
    if amount != request.amount || !currency.eq_ignore_ascii_case(request.currency.code()) {
        tracing::error!(
            id,
            "Fintoc answered a payment with another amount or currency"
        );
        return Err(Failure::Fintoc(FintocError::InvalidResponse(
            "amount or currency differ from the request".into(),
        )));
    }
    Ok(())
}

/// A payment created at Fintoc and stored here.
enum Created {
    /// Stored with its order opened and the key completed, in one write.
    Completed(StoredResponse),
    /// Stored with its order opened one write at a time; the key is still to be
    /// completed (with the payment's id).
    Stored(StoredResponse, String),
}

/// The refusal of a create whose order could not be reserved (`None`: reserved).
fn outcome_refusal(order_id: &str, outcome: ReserveOutcome) -> Option<ApiError> {
    match outcome {
        ReserveOutcome::Reserved => None,
        refused => Some(order_refusal(order_id, refused)),
    }
}

/// Why a create may not reserve its order, as its answer.
fn order_refusal(order_id: &str, refused: ReserveOutcome) -> ApiError {
    match refused {
        ReserveOutcome::Busy {
            intent_id,
            retry_after_secs,
        } => ApiError::order_has_active_payment(order_id, intent_id.as_deref(), retry_after_secs),
        ReserveOutcome::AlreadyPaid { intent_id } => {
            ApiError::order_already_paid(order_id, intent_id.as_deref())
        }
        ReserveOutcome::InReview { intent_id } => {
            ApiError::order_in_review(order_id, intent_id.as_deref())
        }
        ReserveOutcome::Reserved => store_error(StoreError::Malformed(
            "a reservation answered as a refusal".into(),
        )),
    }
}

pub(super) enum Failure {
    /// Fintoc failed or refused.
    Fintoc(FintocError),
    /// DynamoDB failed.
    Store(StoreError),
}

mod stored_failure;

#[cfg(test)]
mod tests;
