//! The payment use cases of both flows: create a payment intent or a checkout
//! session exactly once per idempotency key (one active payment per order across
//! both), read one back, and expire a session.

use crate::clock::{format_rfc3339_ms, parse_rfc3339_ms, Clock};
use crate::domain::create::{
    parse_create_request, parse_session_request, CreateIntentRequest, CreateLimits, InputError,
    InputErrorKind, ORDER_ID_METADATA_KEY,
};
use crate::domain::deployment::DEPLOYMENT_TAG_METADATA_KEY;
use crate::domain::idempotency::{
    derive_fintoc_key, AcquireOutcome, AcquireRequest, CallerId, CompleteRequest, IdempotencyKey,
    LeaseId, StoredResponse,
};
use crate::domain::intent::{IntentStatus, PaymentKind, StoredIntent};
use crate::domain::order::{OpenRequest, ReserveOutcome, ReserveRequest};
use crate::domain::reconcile::initial_schedule_after;
use crate::domain::session::SessionStatus;
use crate::domain::transition::{plan_write, EventRef, Source};
use crate::fintoc::{
    BankTransferOptions, CreateCheckoutSession, CreatePaymentIntent, FintocApi, FintocError,
    FintocPaymentIntent, RecipientAccount, SessionPaymentMethodOptions,
};
use crate::http::{ApiError, Reply};
use crate::store::{
    EventStore, IdempotencyStore, IntentStore, OrderStore, StoreError, WriteResult,
};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// Time kept, before the invocation's deadline, to record what Fintoc answered.
const STORAGE_RESERVE_MS: i64 = 2_000;

/// Longest intent id accepted by `GET`.
pub const MAX_INTENT_ID_CHARS: usize = 255;

/// What the create use case needs of the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateIntentSettings {
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
}

/// What the checkout-session flow needs of the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSettings {
    /// Where Fintoc's page sends the payer after paying, unless the request names
    /// another allowed URL.
    pub success_url: String,
    /// Where it sends a payer who cancels, likewise.
    pub cancel_url: String,
    /// Further return URLs a request may name (exact matches only); the two above
    /// are always allowed.
    pub allowed_return_urls: Vec<String>,
}

impl SessionSettings {
    /// The URL a request may use for `field`: its own, if allowed, else the default.
    fn return_url(
        &self,
        requested: Option<&str>,
        default: &str,
        field: &'static str,
    ) -> Result<String, InputError> {
        match requested {
            None => Ok(default.to_string()),
            Some(url)
                if url == self.success_url
                    || url == self.cancel_url
                    || self.allowed_return_urls.iter().any(|a| a == url) =>
            {
                Ok(url.to_string())
            }
            Some(_) => Err(InputError::invalid_param(
                "return_url_not_allowed",
                field,
                format!("{field} is not one of this merchant's configured return URLs (CHECKOUT_RETURN_URLS)."),
            )),
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

/// What `POST /payment-intents` answers with 201.
#[derive(Debug, Serialize)]
struct CreatedBody<'a> {
    id: &'a str,
    status: &'a str,
    amount: u64,
    currency: &'a str,
    widget_token: Option<&'a str>,
    widget_token_expires_at: String,
    order_id: Option<&'a str>,
    metadata: &'a BTreeMap<String, String>,
    created_at: &'a str,
}

/// What `POST /checkout-sessions` answers with 201.
#[derive(Debug, Serialize)]
struct SessionCreatedBody<'a> {
    id: &'a str,
    status: &'a str,
    amount: u64,
    currency: &'a str,
    order_id: Option<&'a str>,
    session_token: Option<&'a str>,
    redirect_url: Option<&'a str>,
    expires_at: Option<&'a str>,
    metadata: &'a BTreeMap<String, String>,
    created_at: &'a str,
}

/// The event id under which a merchant's expire is recorded: every expire of one
/// session is the same event.
pub const MERCHANT_EXPIRE_EVENT_ID: &str = "merchant:expire";

/// Create and get, over a store, a Fintoc client and a clock.
#[derive(Debug, Clone)]
pub struct PaymentIntentService<S, F, C> {
    store: S,
    fintoc: F,
    clock: C,
    settings: CreateIntentSettings,
}

fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::Unavailable { .. } => {
            tracing::error!(error = %e.detail(), "DynamoDB call failed")
        }
        StoreError::Malformed(_) | StoreError::Conflict(_) => {
            tracing::error!(error = %e.detail(), "stored data needs a human")
        }
    }
    ApiError::storage(&e)
}

fn fintoc_error(e: &FintocError) -> ApiError {
    ApiError::from(e)
}

impl<S, F, C> PaymentIntentService<S, F, C>
where
    S: IdempotencyStore + IntentStore + OrderStore + EventStore,
    F: FintocApi,
    C: Clock,
{
    /// A service over its dependencies.
    pub fn new(store: S, fintoc: F, clock: C, settings: CreateIntentSettings) -> Self {
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

    /// `POST /payment-intents`: validates, takes the idempotency key, creates the
    /// intent at Fintoc with a derived key, stores it, and records the response.
    pub async fn create(&self, input: CreateInput<'_>) -> Result<Reply, ApiError> {
        self.create_payment(PaymentKind::Intent, input).await
    }

    /// `POST /checkout-sessions`: the same, for a checkout session (404
    /// `flow_not_enabled` when this deployment has no session configuration).
    pub async fn create_session(&self, input: CreateInput<'_>) -> Result<Reply, ApiError> {
        self.create_payment(PaymentKind::Session, input).await
    }

    fn sessions(&self) -> Result<&SessionSettings, ApiError> {
        self.settings.sessions.as_ref().ok_or_else(|| {
            InputError::new(
                InputErrorKind::NotFound,
                "flow_not_enabled",
                "Checkout sessions are not enabled on this deployment (set CHECKOUT_SUCCESS_URL and CHECKOUT_CANCEL_URL).",
            )
            .into()
        })
    }

    async fn create_payment(
        &self,
        kind: PaymentKind,
        input: CreateInput<'_>,
    ) -> Result<Reply, ApiError> {
        let limits = &self.settings.limits;
        let request = match kind {
            PaymentKind::Intent => {
                let key = IdempotencyKey::parse(input.caller, input.idempotency_key)?;
                (
                    key,
                    parse_create_request(input.content_type, input.body, limits)?,
                )
            }
            PaymentKind::Session => {
                let sessions = self.sessions()?;
                let key = IdempotencyKey::parse(input.caller, input.idempotency_key)?;
                let request = parse_session_request(input.content_type, input.body, limits)?;
                sessions.return_url(
                    request.success_url.as_deref(),
                    &sessions.success_url,
                    "success_url",
                )?;
                sessions.return_url(
                    request.cancel_url.as_deref(),
                    &sessions.cancel_url,
                    "cancel_url",
                )?;
                (key, request)
            }
        };
        let (key, request) = request;

        let hash = request.fingerprint();
        let now = self.clock.now_ms();
        let lease_until = {
            let configured = now + self.settings.lease.as_millis() as i64;
            input
                .deadline_ms
                .filter(|d| *d > now)
                .map_or(configured, |d| d.min(configured))
        };
        let outcome = self
            .store
            .acquire(&AcquireRequest {
                key: &key,
                request_hash: &hash,
                now_ms: now,
                lease_expires_at_ms: lease_until,
                expires_at_ms: now + self.settings.record_ttl.as_millis() as i64,
            })
            .await
            .map_err(store_error)?;
        let lease_id = match outcome {
            AcquireOutcome::Acquired { lease_id } => lease_id,
            AcquireOutcome::Replay(response) => {
                tracing::info!(
                    idempotency_key = key.as_str(),
                    status = response.status,
                    "replaying stored response"
                );
                return Ok(Reply {
                    status: response.status,
                    body: response.body,
                    replayed: true,
                });
            }
            AcquireOutcome::InProgress { retry_after_secs } => {
                return Err(ApiError::request_in_progress(retry_after_secs));
            }
            AcquireOutcome::Mismatch => return Err(ApiError::idempotency_key_reused()),
        };

        // One order, one open intent, one payment: reserved before Fintoc is asked.
        let holder = key.record_id();
        let reservation = self
            .store
            .reserve_order(&ReserveRequest {
                order_id: &request.order_id,
                holder: &holder,
                now_ms: now,
                reserved_until_ms: lease_until,
            })
            .await;
        let refusal = match reservation {
            Ok(ReserveOutcome::Reserved) => None,
            Ok(ReserveOutcome::Busy {
                intent_id,
                retry_after_secs,
            }) => Some(ApiError::order_has_active_payment(
                &request.order_id,
                intent_id.as_deref(),
                retry_after_secs,
            )),
            Ok(ReserveOutcome::AlreadyPaid { intent_id }) => Some(ApiError::order_already_paid(
                &request.order_id,
                intent_id.as_deref(),
            )),
            Err(e) => Some(store_error(e)),
        };
        if let Some(refusal) = refusal {
            tracing::info!(idempotency_key = key.as_str(), code = %refusal.code, "order not reserved");
            self.release(&key, &lease_id).await;
            return Err(refusal);
        }

        match self
            .create_at_fintoc_and_store(kind, &key, &holder, &request, now, input.deadline_ms)
            .await
        {
            Ok(response) => {
                let completion = CompleteRequest {
                    key: &key,
                    lease_id: &lease_id,
                    response: &response.0,
                    intent_id: Some(&response.1),
                };
                match self.store.complete(&completion).await {
                    Ok(true) => {}
                    Ok(false) => tracing::warn!(idempotency_key = key.as_str(), "lease was taken over before completion; the same Fintoc intent is answered"),
                    Err(e) => {
                        self.release(&key, &lease_id).await;
                        return Err(store_error(e));
                    }
                }
                Ok(Reply::new(response.0.status, response.0.body))
            }
            Err(Failure::Fintoc(e @ FintocError::Rejected { .. })) => {
                // Fintoc keeps this answer for its key too: replay it from here.
                let err = fintoc_error(&e);
                tracing::info!(idempotency_key = key.as_str(), code = %err.code, "Fintoc rejected the request");
                let response = StoredResponse {
                    status: err.status,
                    body: err.body(),
                };
                let completion = CompleteRequest {
                    key: &key,
                    lease_id: &lease_id,
                    response: &response,
                    intent_id: None,
                };
                if !matches!(self.store.complete(&completion).await, Ok(true)) {
                    self.release(&key, &lease_id).await;
                }
                Err(err)
            }
            Err(Failure::Fintoc(e)) => {
                tracing::error!(idempotency_key = key.as_str(), kind = kind.as_str(), error = %e, "creating the payment at Fintoc failed");
                self.release(&key, &lease_id).await;
                Err(fintoc_error(&e))
            }
            Err(Failure::Store(e)) => {
                self.release(&key, &lease_id).await;
                Err(store_error(e))
            }
        }
    }

    async fn release(&self, key: &IdempotencyKey, lease_id: &LeaseId) {
        if let Err(e) = self.store.release(key, lease_id).await {
            // The lease expires by itself; the client's retry then takes over.
            tracing::warn!(idempotency_key = key.as_str(), error = %e.detail(), "could not release the idempotency record");
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn create_at_fintoc_and_store(
        &self,
        kind: PaymentKind,
        key: &IdempotencyKey,
        holder: &str,
        request: &CreateIntentRequest,
        now: i64,
        deadline_ms: Option<i64>,
    ) -> Result<(StoredResponse, String), Failure> {
        let mut fintoc_metadata = request.metadata.clone();
        fintoc_metadata.insert(ORDER_ID_METADATA_KEY.to_string(), request.order_id.clone());
        fintoc_metadata.insert(
            DEPLOYMENT_TAG_METADATA_KEY.to_string(),
            self.settings.deployment_tag.clone(),
        );
        // Keep time, after Fintoc answers, to record the payment and the response.
        let budget = deadline_ms
            .map(|d| Duration::from_millis((d - now - STORAGE_RESERVE_MS).max(0) as u64));
        let (payment, body) = match kind {
            PaymentKind::Intent => {
                self.create_intent_at_fintoc(key, request, fintoc_metadata, now, budget)
                    .await?
            }
            PaymentKind::Session => {
                self.create_session_at_fintoc(key, request, fintoc_metadata, now, budget)
                    .await?
            }
        };
        self.store
            .save_created(&payment)
            .await
            .map_err(Failure::Store)?;
        let opened = self
            .store
            .open_order(&OpenRequest {
                order_id: &request.order_id,
                holder,
                intent_id: &payment.id,
                kind,
            })
            .await
            .map_err(Failure::Store)?;
        if !opened {
            // Only possible when this invocation outlived its own lease.
            return Err(Failure::Store(StoreError::Conflict(format!(
                "order {} is no longer reserved for this request",
                request.order_id
            ))));
        }
        tracing::info!(id = %payment.id, kind = kind.as_str(), idempotency_key = key.as_str(), amount = payment.amount, currency = %payment.currency, "payment created");
        Ok((StoredResponse { status: 201, body }, payment.id))
    }

    /// The stored form of a payment Fintoc just made, with its first check scheduled.
    #[allow(clippy::too_many_arguments)]
    fn stored(
        &self,
        kind: PaymentKind,
        id: &str,
        status: IntentStatus,
        request: &CreateIntentRequest,
        mode: Option<String>,
        created_at: &str,
        now: i64,
    ) -> StoredIntent {
        StoredIntent {
            id: id.to_string(),
            kind,
            status,
            amount: request.amount,
            currency: request.currency.code().to_string(),
            order_id: Some(request.order_id.clone()),
            metadata: request.metadata.clone(),
            customer_email: request.customer_email.clone(),
            mode,
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
        }
    }

    async fn create_intent_at_fintoc(
        &self,
        key: &IdempotencyKey,
        request: &CreateIntentRequest,
        metadata: BTreeMap<String, String>,
        now: i64,
        budget: Option<Duration>,
    ) -> Result<(StoredIntent, String), Failure> {
        let fintoc_request = CreatePaymentIntent {
            amount: request.amount,
            currency: request.currency,
            customer_email: request.customer_email.clone(),
            metadata,
            recipient_account: self.settings.recipient.clone(),
        };
        let fintoc_key = derive_fintoc_key(&self.settings.idempotency_namespace, key);
        let pi: FintocPaymentIntent = self
            .fintoc
            .create_payment_intent(&fintoc_request, &fintoc_key, budget)
            .await
            .map_err(Failure::Fintoc)?;
        check_amount(&pi.id, pi.amount, &pi.currency, request)?;
        let created_ms = pi
            .created_at
            .as_deref()
            .and_then(parse_rfc3339_ms)
            .unwrap_or(now);
        let created_at = format_rfc3339_ms(created_ms);
        let mut intent = self.stored(
            PaymentKind::Intent,
            &pi.id,
            IntentStatus::parse(&pi.status),
            request,
            pi.mode.clone(),
            &created_at,
            now,
        );
        intent.error_reason = pi.error_reason.clone();
        let body = CreatedBody {
            id: &intent.id,
            status: intent.status.as_str(),
            amount: intent.amount,
            currency: &intent.currency,
            widget_token: pi.widget_token.as_deref(),
            widget_token_expires_at: format_rfc3339_ms(
                created_ms + self.settings.widget_token_ttl.as_millis() as i64,
            ),
            order_id: intent.order_id.as_deref(),
            metadata: &intent.metadata,
            created_at: &created_at,
        };
        let body = serde_json::to_string(&body).expect("created body serializes");
        Ok((intent, body))
    }

    async fn create_session_at_fintoc(
        &self,
        key: &IdempotencyKey,
        request: &CreateIntentRequest,
        metadata: BTreeMap<String, String>,
        now: i64,
        budget: Option<Duration>,
    ) -> Result<(StoredIntent, String), Failure> {
        let sessions = self
            .settings
            .sessions
            .as_ref()
            .expect("the session flow is checked before the key is taken");
        let return_url = |requested: &Option<String>, default: &String| {
            requested.clone().unwrap_or_else(|| default.clone())
        };
        let fintoc_request = CreateCheckoutSession {
            amount: request.amount,
            currency: request.currency,
            customer_email: request.customer_email.clone(),
            metadata,
            success_url: return_url(&request.success_url, &sessions.success_url),
            cancel_url: return_url(&request.cancel_url, &sessions.cancel_url),
            payment_method_options: self.settings.recipient.clone().map(|recipient_account| {
                SessionPaymentMethodOptions {
                    bank_transfer: BankTransferOptions { recipient_account },
                }
            }),
        };
        let namespace = format!("{}:checkout_session", self.settings.idempotency_namespace);
        let fintoc_key = derive_fintoc_key(&namespace, key);
        let cs = self
            .fintoc
            .create_checkout_session(&fintoc_request, &fintoc_key, budget)
            .await
            .map_err(Failure::Fintoc)?;
        check_amount(&cs.id, cs.amount, &cs.currency, request)?;
        let created_at = format_rfc3339_ms(
            cs.created_at
                .as_deref()
                .and_then(parse_rfc3339_ms)
                .unwrap_or(now),
        );
        // A new session has no payment yet: `created`, whatever else it says.
        let status = match SessionStatus::parse(&cs.status) {
            SessionStatus::Created => IntentStatus::Created,
            other => {
                tracing::warn!(session_id = %cs.id, status = other.as_str(), "a new session that is not `created`; its events and checks will tell");
                IntentStatus::Created
            }
        };
        let mut session = self.stored(
            PaymentKind::Session,
            &cs.id,
            status,
            request,
            cs.mode.clone(),
            &created_at,
            now,
        );
        session.expires_at = cs.expires_at.clone();
        let body = SessionCreatedBody {
            id: &session.id,
            status: cs.status.as_str(),
            amount: session.amount,
            currency: &session.currency,
            order_id: session.order_id.as_deref(),
            session_token: cs.session_token.as_deref(),
            redirect_url: cs.redirect_url.as_deref(),
            expires_at: cs.expires_at.as_deref(),
            metadata: &session.metadata,
            created_at: &created_at,
        };
        let body = serde_json::to_string(&body).expect("created body serializes");
        Ok((session, body))
    }

    /// `GET /payment-intents/{id}`: the stored state, 404 when unknown.
    pub async fn get(&self, id: &str) -> Result<Reply, ApiError> {
        let intent = self.find(PaymentKind::Intent, id).await?;
        Ok(Reply::new(
            200,
            serde_json::to_string(&intent.view()).expect("view serializes"),
        ))
    }

    /// `GET /checkout-sessions/{id}`: the session's status and its payment's
    /// outcome, 404 when unknown.
    pub async fn get_session(&self, id: &str) -> Result<Reply, ApiError> {
        let session = self.find(PaymentKind::Session, id).await?;
        Ok(session_reply(&session))
    }

    async fn find(&self, kind: PaymentKind, id: &str) -> Result<StoredIntent, ApiError> {
        let what = match kind {
            PaymentKind::Intent => "payment intent",
            PaymentKind::Session => "checkout session",
        };
        if id.is_empty()
            || id.chars().count() > MAX_INTENT_ID_CHARS
            || id.chars().any(|c| c.is_control() || c.is_whitespace())
        {
            return Err(InputError::invalid_param(
                "invalid_id",
                "id",
                format!("The {what} id is malformed."),
            )
            .into());
        }
        match self.store.get_intent(kind, id).await.map_err(store_error)? {
            Some(payment) => Ok(payment),
            None => Err(InputError::new(
                InputErrorKind::NotFound,
                "resource_not_found",
                format!("No {what} with id {}.", crate::domain::create::echo(id)),
            )
            .with_param("id")
            .into()),
        }
    }

    /// `POST /checkout-sessions/{id}/expire`: only a session still `created` (409
    /// `session_not_expirable` otherwise); Fintoc expires it, then its answer is
    /// recorded like a webhook's (one conditional write, under one event id for
    /// every expire of the session, so a retry changes nothing twice).
    pub async fn expire_session(
        &self,
        id: &str,
        deadline_ms: Option<i64>,
    ) -> Result<Reply, ApiError> {
        let session = self.find(PaymentKind::Session, id).await?;
        if session.status != IntentStatus::Created {
            return Err(not_expirable(&session));
        }
        let now = self.clock.now_ms();
        let budget = deadline_ms
            .map(|d| Duration::from_millis((d - now - STORAGE_RESERVE_MS).max(0) as u64));
        let report = match self.fintoc.expire_checkout_session(id, budget).await {
            Ok(Some(report)) => report,
            Ok(None) => {
                tracing::error!(
                    session_id = id,
                    "ANOMALY: Fintoc does not know a session this deployment created"
                );
                return Err(fintoc_error(&FintocError::InvalidResponse(
                    "Fintoc does not know this session".into(),
                )));
            }
            Err(e @ FintocError::Rejected { .. }) => {
                tracing::info!(session_id = id, error = %e, "Fintoc would not expire the session");
                return Err(ApiError::invalid_request(
                    409,
                    "session_not_expirable",
                    "Fintoc would not expire this session: it is no longer `created` (the payer has started paying).",
                ));
            }
            Err(e) => return Err(fintoc_error(&e)),
        };
        let report = report.to_record_report();
        let claimed = report.status.clone().unwrap_or(IntentStatus::Created);
        let event_type = format!(
            "checkout_session.{}",
            crate::domain::session::session_status(&claimed)
        );
        let event = EventRef {
            id: MERCHANT_EXPIRE_EVENT_ID,
            event_type: &event_type,
            created_at: None,
            source: Source::Merchant,
        };
        let at = format_rfc3339_ms(now);
        let mut state = self
            .store
            .intent_state(PaymentKind::Session, id)
            .await
            .map_err(store_error)?;
        for _ in 0..3 {
            let (_, patch) = plan_write(state.as_ref(), &event, &claimed, &report, &at);
            let Some(patch) = patch else { break };
            match self.store.apply(&patch).await.map_err(store_error)? {
                WriteResult::Written | WriteResult::WrittenOrderRefused => break,
                WriteResult::Conflict(current) => state = current,
            }
        }
        let session = self.find(PaymentKind::Session, id).await?;
        tracing::info!(
            session_id = id,
            status = session.status.as_str(),
            "session expired by the merchant"
        );
        Ok(session_reply(&session))
    }
}

fn session_reply(session: &StoredIntent) -> Reply {
    Reply::new(
        200,
        serde_json::to_string(&session.session_view()).expect("view serializes"),
    )
}

fn not_expirable(session: &StoredIntent) -> ApiError {
    ApiError::invalid_request(
        409,
        "session_not_expirable",
        format!(
            "Only a session that is still `created` can be expired; this one is `{}`.",
            crate::domain::session::session_status(&session.status)
        ),
    )
}

/// Refuses an answer of Fintoc for another amount or currency than requested.
fn check_amount(
    id: &str,
    amount: u64,
    currency: &str,
    request: &CreateIntentRequest,
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

enum Failure {
    Fintoc(FintocError),
    Store(StoreError),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::domain::idempotency::FintocKey;
    use crate::fintoc::FintocCheckoutSession;
    use crate::store::memory::{MemoryStore, Operation};
    use std::collections::{HashMap, VecDeque};
    use std::sync::{Arc, Mutex};

    const T0: i64 = 1_767_225_600_000;
    const BODY: &str = r#"{"amount": 15000, "currency": "clp", "order_id": "order-1"}"#;

    /// Fintoc as a fake: idempotent per key like the real API, with scripted
    /// failures first, and an optional hook run during each call.
    #[derive(Clone, Default)]
    struct FakeFintoc {
        failures: Arc<Mutex<VecDeque<FintocError>>>,
        created: Arc<Mutex<HashMap<FintocKey, FintocPaymentIntent>>>,
        calls: Arc<Mutex<Vec<FintocKey>>>,
        sent: Arc<Mutex<Vec<CreatePaymentIntent>>>,
        sent_sessions: Arc<Mutex<Vec<CreateCheckoutSession>>>,
        sessions: Arc<Mutex<HashMap<FintocKey, FintocCheckoutSession>>>,
        budget: Arc<Mutex<Option<Duration>>>,
        answer_amount: Arc<Mutex<Option<u64>>>,
        during_call: Option<MemoryStore>,
    }

    impl FakeFintoc {
        fn fail_with(&self, error: FintocError) {
            self.failures.lock().unwrap().push_back(error);
        }
        fn calls(&self) -> usize {
            self.calls.lock().unwrap().len()
        }
    }

    impl FintocApi for FakeFintoc {
        async fn create_payment_intent(
            &self,
            request: &CreatePaymentIntent,
            key: &FintocKey,
            budget: Option<Duration>,
        ) -> Result<FintocPaymentIntent, FintocError> {
            *self.budget.lock().unwrap() = budget;
            self.calls.lock().unwrap().push(key.clone());
            self.sent.lock().unwrap().push(request.clone());
            if let Some(store) = &self.during_call {
                store.forget_idempotency_records();
            }
            if let Some(error) = self.failures.lock().unwrap().pop_front() {
                return Err(error);
            }
            let amount = self.answer_amount.lock().unwrap().unwrap_or(request.amount);
            let mut created = self.created.lock().unwrap();
            let n = created.len();
            Ok(created
                .entry(key.clone())
                .or_insert_with(|| FintocPaymentIntent {
                    id: format!("pi_{n}"),
                    status: "created".into(),
                    amount,
                    currency: request.currency.code().into(),
                    widget_token: Some(format!("pi_{n}_sec_token")),
                    mode: Some("test".into()),
                    created_at: Some("2026-01-01T00:00:00Z".into()),
                    error_reason: None,
                })
                .clone())
        }

        async fn create_checkout_session(
            &self,
            request: &CreateCheckoutSession,
            key: &FintocKey,
            _budget: Option<Duration>,
        ) -> Result<FintocCheckoutSession, FintocError> {
            self.calls.lock().unwrap().push(key.clone());
            self.sent_sessions.lock().unwrap().push(request.clone());
            if let Some(error) = self.failures.lock().unwrap().pop_front() {
                return Err(error);
            }
            let mut sessions = self.sessions.lock().unwrap();
            let n = sessions.len();
            Ok(sessions
                .entry(key.clone())
                .or_insert_with(|| FintocCheckoutSession {
                    id: format!("cs_{n}"),
                    status: "created".into(),
                    amount: request.amount,
                    currency: request.currency.code().into(),
                    session_token: Some(format!("cs_{n}_sec_token")),
                    redirect_url: Some(format!("https://pay.example/cs_{n}")),
                    expires_at: Some("2026-01-02T00:00:00Z".into()),
                    mode: Some("test".into()),
                    created_at: Some("2026-01-01T00:00:00Z".into()),
                })
                .clone())
        }

        async fn expire_checkout_session(
            &self,
            id: &str,
            _budget: Option<Duration>,
        ) -> Result<Option<crate::domain::session::SessionReport>, FintocError> {
            if let Some(error) = self.failures.lock().unwrap().pop_front() {
                return Err(error);
            }
            let known = self.sessions.lock().unwrap().values().any(|s| s.id == id);
            Ok(known.then(|| {
                crate::domain::session::SessionReport::from_json(&serde_json::json!({
                    "id": id, "status": "expired", "amount": 15000, "currency": "CLP"
                }))
                .unwrap()
            }))
        }
    }

    struct Setup {
        store: MemoryStore,
        fintoc: FakeFintoc,
        service: PaymentIntentService<MemoryStore, FakeFintoc, ManualClock>,
    }

    fn settings() -> CreateIntentSettings {
        CreateIntentSettings {
            limits: CreateLimits::default(),
            recipient: None,
            idempotency_namespace: "unit".into(),
            lease: Duration::from_secs(30),
            record_ttl: Duration::from_secs(86_400),
            widget_token_ttl: Duration::from_secs(600),
            deployment_tag: "unit".into(),
            first_check_after: Duration::from_secs(120),
            sessions: Some(SessionSettings {
                success_url: "https://shop.example/paid".into(),
                cancel_url: "https://shop.example/cancelled".into(),
                allowed_return_urls: vec!["https://shop.example/other".into()],
            }),
        }
    }

    fn setup_with(fintoc: FakeFintoc, store: MemoryStore) -> Setup {
        let service = PaymentIntentService::new(
            store.clone(),
            fintoc.clone(),
            ManualClock::new(T0),
            settings(),
        );
        Setup {
            store,
            fintoc,
            service,
        }
    }

    fn setup() -> Setup {
        setup_with(FakeFintoc::default(), MemoryStore::default())
    }

    impl Setup {
        async fn post(&self, key: &str, body: &str) -> Result<Reply, ApiError> {
            self.service
                .create(CreateInput {
                    caller: &CallerId::anonymous(),
                    idempotency_key: Some(key),
                    content_type: Some("application/json"),
                    body: body.as_bytes(),
                    deadline_ms: None,
                })
                .await
        }
    }

    fn id_of(reply: &Reply) -> String {
        let body: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
        body["id"].as_str().unwrap().to_string()
    }

    #[tokio::test]
    async fn a_create_stores_the_intent_and_replays_its_answer() {
        let s = setup();
        let first = s.post("k", BODY).await.unwrap();
        assert_eq!((first.status, first.replayed), (201, false));
        let again = s.post("k", BODY).await.unwrap();
        assert_eq!(
            (again.status, again.replayed, &again.body),
            (201, true, &first.body)
        );
        assert_eq!(s.fintoc.calls(), 1);
        let stored = s.store.intent(&id_of(&first)).unwrap();
        assert_eq!(stored.order_id.as_deref(), Some("order-1"));
        let sent = s.fintoc.sent.lock().unwrap()[0].clone();
        assert_eq!(sent.metadata["deployment_tag"], "unit", "tagged at Fintoc");
        assert_eq!(sent.metadata["order_id"], "order-1");
    }

    #[tokio::test]
    async fn invalid_input_writes_nothing_and_never_calls_fintoc() {
        let s = setup();
        let e = s
            .post("k", r#"{"amount": -1, "currency": "CLP"}"#)
            .await
            .unwrap_err();
        assert_eq!((e.status, e.code.as_str()), (400, "invalid_amount"));
        let e = s
            .service
            .create(CreateInput {
                caller: &CallerId::anonymous(),
                idempotency_key: None,
                content_type: Some("application/json"),
                body: BODY.as_bytes(),
                deadline_ms: None,
            })
            .await
            .unwrap_err();
        assert_eq!(e.code, "missing_idempotency_key");
        assert_eq!((s.store.item_count(), s.fintoc.calls()), (0, 0));
    }

    #[tokio::test]
    async fn a_held_key_is_409_and_a_reused_key_is_422() {
        let fintoc = FakeFintoc::default();
        let store = MemoryStore::default();
        let s = setup_with(fintoc, store);
        s.post("k", BODY).await.unwrap();
        let e = s
            .post(
                "k",
                r#"{"amount": 1, "currency": "CLP", "order_id": "order-1"}"#,
            )
            .await
            .unwrap_err();
        assert_eq!((e.status, e.code.as_str()), (422, "idempotency_key_reused"));
        // A lease held by another request (taken, never finished).
        let key = IdempotencyKey::parse(&CallerId::anonymous(), Some("held")).unwrap();
        let hash = parse_create_request(
            Some("application/json"),
            BODY.as_bytes(),
            &CreateLimits::default(),
        )
        .unwrap()
        .fingerprint();
        s.store
            .acquire(&AcquireRequest {
                key: &key,
                request_hash: &hash,
                now_ms: T0,
                lease_expires_at_ms: T0 + 5_000,
                expires_at_ms: T0 + 86_400_000,
            })
            .await
            .unwrap();
        let e = s.post("held", BODY).await.unwrap_err();
        assert_eq!(
            (e.status, e.code.as_str(), e.retry_after_secs),
            (409, "request_in_progress", Some(5))
        );
        assert_eq!(s.fintoc.calls(), 1);
    }

    #[tokio::test]
    async fn storage_down_before_fintoc_is_503_without_a_fintoc_call() {
        let s = setup();
        s.store.fail_next(Operation::Acquire, 1);
        let e = s.post("k", BODY).await.unwrap_err();
        assert_eq!((e.status, e.code.as_str()), (503, "storage_unavailable"));
        assert_eq!(e.retry_after_secs, Some(1));
        assert_eq!(s.fintoc.calls(), 0);
    }

    #[tokio::test]
    async fn fintoc_failures_release_the_key_and_map_to_retryable_5xx() {
        let failures = [
            (
                FintocError::Unavailable {
                    status: 500,
                    attempts: 3,
                },
                502,
                "fintoc_unavailable",
            ),
            (
                FintocError::Unavailable {
                    status: 429,
                    attempts: 3,
                },
                503,
                "fintoc_rate_limited",
            ),
            (
                FintocError::NoAnswer {
                    timed_out: true,
                    detail: "timeout".into(),
                    attempts: 3,
                },
                504,
                "fintoc_timeout",
            ),
            (
                FintocError::NoAnswer {
                    timed_out: false,
                    detail: "connection failed".into(),
                    attempts: 3,
                },
                502,
                "fintoc_unreachable",
            ),
            (
                FintocError::Configuration { status: 401 },
                502,
                "fintoc_configuration_error",
            ),
            (
                FintocError::InvalidResponse("x".into()),
                502,
                "fintoc_invalid_response",
            ),
        ];
        for (error, status, code) in failures {
            let s = setup();
            s.fintoc.fail_with(error);
            let e = s.post("k", BODY).await.unwrap_err();
            assert_eq!((e.status, e.code.as_str()), (status, code));
            assert_eq!(
                s.store.item_count(),
                1,
                "{code}: the key is released and no intent stored; the order stays reserved until its lease lapses"
            );
            let retried = s.post("k", BODY).await.unwrap();
            assert_eq!((retried.status, retried.replayed), (201, false), "{code}");
            assert_eq!(s.fintoc.calls(), 2);
        }
    }

    #[tokio::test]
    async fn a_fintoc_rejection_is_recorded_and_replayed_without_asking_again() {
        let s = setup();
        s.fintoc.fail_with(FintocError::Rejected {
            status: 400,
            error_type: "invalid_request_error".into(),
            code: "invalid_recipient".into(),
            message: "bad account".into(),
            param: Some("recipient_account".into()),
        });
        let e = s.post("k", BODY).await.unwrap_err();
        assert_eq!((e.status, e.code.as_str()), (400, "invalid_recipient"));
        let replay = s.post("k", BODY).await.unwrap();
        assert_eq!((replay.status, replay.replayed), (400, true));
        assert!(replay.body.contains("invalid_recipient"));
        assert_eq!(s.fintoc.calls(), 1);
    }

    #[tokio::test]
    async fn a_rejection_that_cannot_be_recorded_releases_the_key() {
        let s = setup();
        s.fintoc.fail_with(FintocError::Rejected {
            status: 422,
            error_type: "invalid_request_error".into(),
            code: "c".into(),
            message: "m".into(),
            param: None,
        });
        s.store.fail_next(Operation::Complete, 1);
        let e = s.post("k", BODY).await.unwrap_err();
        assert_eq!(e.status, 422);
        assert_eq!(
            s.post("k", BODY).await.unwrap().status,
            201,
            "asked Fintoc again"
        );
        assert_eq!(s.fintoc.calls(), 2);
    }

    #[tokio::test]
    async fn an_answer_with_another_amount_is_refused_and_not_stored() {
        let s = setup();
        *s.fintoc.answer_amount.lock().unwrap() = Some(1);
        let e = s.post("k", BODY).await.unwrap_err();
        assert_eq!(
            (e.status, e.code.as_str()),
            (502, "fintoc_invalid_response")
        );
        assert_eq!(s.store.item_count(), 1, "only the order's reservation");
    }

    #[tokio::test]
    async fn the_write_after_fintoc_failing_is_503_and_the_retry_gets_the_same_intent() {
        for operation in [Operation::SaveCreated, Operation::Complete] {
            let s = setup();
            s.store.fail_next(operation, 1);
            let e = s.post("k", BODY).await.unwrap_err();
            assert_eq!(
                (e.status, e.code.as_str()),
                (503, "storage_unavailable"),
                "{operation:?}"
            );
            let retried = s.post("k", BODY).await.unwrap();
            assert_eq!(retried.status, 201);
            assert_eq!(
                id_of(&retried),
                "pi_0",
                "{operation:?}: Fintoc's intent, not a new one"
            );
            let calls = s.fintoc.calls.lock().unwrap().clone();
            assert_eq!(calls.len(), 2);
            assert_eq!(calls[0], calls[1], "the same derived key both times");
        }
    }

    #[tokio::test]
    async fn a_failed_release_still_answers_fintocs_failure() {
        let s = setup();
        s.fintoc.fail_with(FintocError::Unavailable {
            status: 503,
            attempts: 3,
        });
        s.store.fail_next(Operation::Release, 1);
        let e = s.post("k", BODY).await.unwrap_err();
        assert_eq!(e.code, "fintoc_unavailable");
    }

    #[tokio::test]
    async fn a_lease_lost_during_the_call_still_answers_the_intent() {
        let store = MemoryStore::default();
        let fintoc = FakeFintoc {
            during_call: Some(store.clone()),
            ..FakeFintoc::default()
        };
        let s = setup_with(fintoc, store);
        let reply = s.post("k", BODY).await.unwrap();
        assert_eq!(reply.status, 201);
        assert!(s.store.intent(&id_of(&reply)).is_some());
    }

    #[tokio::test]
    async fn fintoc_gets_the_invocations_time_left_minus_the_storage_reserve() {
        let s = setup();
        s.service
            .create(CreateInput {
                caller: &CallerId::anonymous(),
                idempotency_key: Some("k"),
                content_type: Some("application/json"),
                body: BODY.as_bytes(),
                deadline_ms: Some(T0 + 25_000),
            })
            .await
            .unwrap();
        assert_eq!(
            *s.fintoc.budget.lock().unwrap(),
            Some(Duration::from_secs(23))
        );
    }

    /// Fintoc's final event for `intent` of `order`, applied as the webhook would.
    async fn finish(store: &MemoryStore, intent: &str, order: &str, status: IntentStatus) {
        use crate::domain::report::IntentReport;
        use crate::domain::transition::{plan_write, EventRef};
        use crate::store::EventStore;
        let state = store
            .intent_state(PaymentKind::Intent, intent)
            .await
            .unwrap();
        let report = IntentReport {
            id: intent.into(),
            metadata: [("order_id".to_string(), order.to_string())].into(),
            ..IntentReport::default()
        };
        let event = EventRef {
            id: &format!("evt_{intent}_{}", status.as_str()),
            event_type: "payment_intent.x",
            created_at: None,
            source: crate::domain::transition::Source::Webhook,
        };
        let (_, patch) = plan_write(state.as_ref(), &event, &status, &report, "now");
        store.apply(&patch.unwrap()).await.unwrap();
    }

    #[tokio::test]
    async fn one_order_has_one_open_intent_and_is_paid_once() {
        let s = setup();
        let first = id_of(&s.post("k1", BODY).await.unwrap());
        let e = s.post("k2", BODY).await.unwrap_err();
        assert_eq!(
            (e.status, e.code.as_str()),
            (409, "order_has_active_intent")
        );
        assert!(e.message.contains(&first), "{}", e.message);
        assert_eq!(s.fintoc.calls(), 1, "no second intent at Fintoc");
        // The refused key is free again: nothing was recorded for it.
        assert!(matches!(
            s.post("k2", BODY).await,
            Err(ApiError { status: 409, .. })
        ));
        finish(&s.store, &first, "order-1", IntentStatus::Rejected).await;
        let second = id_of(&s.post("k3", BODY).await.unwrap());
        assert_ne!(first, second, "a new intent once the first was rejected");
        finish(&s.store, &second, "order-1", IntentStatus::Succeeded).await;
        let e = s.post("k4", BODY).await.unwrap_err();
        assert_eq!((e.status, e.code.as_str()), (409, "order_already_paid"));
        assert!(e.message.contains(&second));
        assert!(
            s.post("k3", BODY).await.unwrap().replayed,
            "replays still replay"
        );
        assert_eq!(s.fintoc.calls(), 2);
    }

    #[tokio::test]
    async fn an_order_that_cannot_be_reserved_or_opened_is_a_retryable_503() {
        for operation in [Operation::ReserveOrder, Operation::OpenOrder] {
            let s = setup();
            s.store.fail_next(operation, 1);
            let e = s.post("k", BODY).await.unwrap_err();
            assert_eq!(
                (e.status, e.code.as_str()),
                (503, "storage_unavailable"),
                "{operation:?}"
            );
            assert_eq!(
                s.post("k", BODY).await.unwrap().status,
                201,
                "{operation:?}"
            );
        }
    }

    #[tokio::test]
    async fn get_answers_the_view_404_400_or_503() {
        let s = setup();
        let id = id_of(&s.post("k", BODY).await.unwrap());
        let reply = s.service.get(&id).await.unwrap();
        assert_eq!(reply.status, 200);
        assert!(!reply.body.contains("widget_token"));
        assert_eq!(s.service.get("pi_nope").await.unwrap_err().status, 404);
        assert_eq!(s.service.get("has space").await.unwrap_err().status, 400);
        s.store.fail_next(Operation::GetIntent, 1);
        assert_eq!(s.service.get(&id).await.unwrap_err().status, 503);
    }
}
