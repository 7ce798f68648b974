//! The payment-intent use cases: create one exactly once per idempotency key, and
//! read one back.

use crate::clock::{format_rfc3339_ms, parse_rfc3339_ms, Clock};
use crate::domain::create::{
    parse_create_request, CreateIntentRequest, CreateLimits, InputError, InputErrorKind,
};
use crate::domain::idempotency::{
    derive_fintoc_key, AcquireOutcome, AcquireRequest, CompleteRequest, IdempotencyKey, LeaseId,
    StoredResponse,
};
use crate::domain::intent::{IntentStatus, StoredIntent};
use crate::fintoc::{
    CreatePaymentIntent, FintocApi, FintocError, FintocPaymentIntent, RecipientAccount,
};
use crate::http::{ApiError, Reply};
use crate::store::{IdempotencyStore, IntentStore, StoreError};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

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
}

/// A create request as the handler received it.
#[derive(Debug, Clone, Copy)]
pub struct CreateInput<'a> {
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
    S: IdempotencyStore + IntentStore,
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
        let key = IdempotencyKey::parse(input.idempotency_key)?;
        let request = parse_create_request(input.content_type, input.body, &self.settings.limits)?;

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

        match self.create_at_fintoc_and_store(&key, &request, now).await {
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
                tracing::error!(idempotency_key = key.as_str(), error = %e, "creating the intent at Fintoc failed");
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

    async fn create_at_fintoc_and_store(
        &self,
        key: &IdempotencyKey,
        request: &CreateIntentRequest,
        now: i64,
    ) -> Result<(StoredResponse, String), Failure> {
        let mut fintoc_metadata = request.metadata.clone();
        if let Some(order_id) = &request.order_id {
            fintoc_metadata
                .entry("order_id".to_string())
                .or_insert_with(|| order_id.clone());
        }
        let fintoc_request = CreatePaymentIntent {
            amount: request.amount,
            currency: request.currency,
            customer_email: request.customer_email.clone(),
            metadata: fintoc_metadata,
            recipient_account: self.settings.recipient.clone(),
        };
        let fintoc_key = derive_fintoc_key(&self.settings.idempotency_namespace, key);
        let pi: FintocPaymentIntent = self
            .fintoc
            .create_payment_intent(&fintoc_request, &fintoc_key)
            .await
            .map_err(Failure::Fintoc)?;
        if pi.amount != request.amount || !pi.currency.eq_ignore_ascii_case(request.currency.code())
        {
            tracing::error!(intent_id = %pi.id, "Fintoc answered an intent with another amount or currency");
            return Err(Failure::Fintoc(FintocError::InvalidResponse(
                "amount or currency differ from the request".into(),
            )));
        }
        let created_ms = pi
            .created_at
            .as_deref()
            .and_then(parse_rfc3339_ms)
            .unwrap_or(now);
        let created_at = format_rfc3339_ms(created_ms);
        let intent = StoredIntent {
            id: pi.id.clone(),
            status: IntentStatus::parse(&pi.status),
            amount: pi.amount,
            currency: request.currency.code().to_string(),
            order_id: request.order_id.clone(),
            metadata: request.metadata.clone(),
            customer_email: request.customer_email.clone(),
            mode: pi.mode.clone(),
            error_reason: pi.error_reason.clone(),
            created_at: created_at.clone(),
            updated_at: format_rfc3339_ms(now),
        };
        self.store
            .save_created(&intent)
            .await
            .map_err(Failure::Store)?;
        tracing::info!(intent_id = %intent.id, idempotency_key = key.as_str(), amount = intent.amount, currency = %intent.currency, "payment intent created");
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
        Ok((StoredResponse { status: 201, body }, intent.id))
    }

    /// `GET /payment-intents/{id}`: the stored state, 404 when unknown.
    pub async fn get(&self, id: &str) -> Result<Reply, ApiError> {
        if id.is_empty()
            || id.chars().count() > MAX_INTENT_ID_CHARS
            || id.chars().any(|c| c.is_control() || c.is_whitespace())
        {
            return Err(InputError::invalid_param(
                "invalid_id",
                "id",
                "The payment intent id is malformed.",
            )
            .into());
        }
        let intent = self.store.get_intent(id).await.map_err(store_error)?;
        match intent {
            Some(intent) => Ok(Reply::new(
                200,
                serde_json::to_string(&intent.view()).expect("view serializes"),
            )),
            None => Err(InputError::new(
                InputErrorKind::NotFound,
                "resource_not_found",
                format!("No payment intent with id {id}."),
            )
            .with_param("id")
            .into()),
        }
    }
}

enum Failure {
    Fintoc(FintocError),
    Store(StoreError),
}
