//! The Payment Intent flow (the widget-token flow): `POST /payment-intents`
//! creates an intent at Fintoc exactly once per key, `GET /payment-intents/{id}`
//! reads it back. Built on the shared create of `app::payments`.

use super::payments::{check_amount, CreateInput, Failure, FintocCreate, PaymentService};
use crate::clock::{format_rfc3339_ms, parse_rfc3339_ms, Clock};
use crate::domain::create::parse_create_request;
use crate::domain::idempotency::{derive_fintoc_key_at, FintocKey, IdempotencyKey};
use crate::domain::payment::{PaymentKind, PaymentStatus, StoredPayment};
use crate::fintoc::{CreatePaymentIntent, FintocApi, FintocLookup, FintocPaymentIntent};
use crate::http::{ApiError, Reply};
use crate::store::{CreateStore, EventStore, OrderStore, PaymentStore};
use serde::Serialize;
use std::collections::BTreeMap;

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

impl<S, F, C> PaymentService<S, F, C>
where
    S: CreateStore + PaymentStore + OrderStore + EventStore,
    F: FintocApi + FintocLookup,
    C: Clock,
{
    /// `POST /payment-intents`: validates, takes the idempotency key, creates the
    /// intent at Fintoc with a derived key, stores it, and records the response.
    pub async fn create(&self, input: CreateInput<'_>) -> Result<Reply, ApiError> {
        let key = IdempotencyKey::parse(input.caller, input.idempotency_key)?;
        let request = parse_create_request(input.content_type, input.body, &self.settings.limits)?;
        self.create_payment(
            PaymentKind::Intent,
            key,
            request,
            input.deadline_ms,
            None,
            |call| self.create_intent_at_fintoc(call),
        )
        .await
    }

    /// `GET /payment-intents/{id}`: the stored state, 404 when unknown.
    pub async fn get(&self, id: &str) -> Result<Reply, ApiError> {
        let intent = self.find(PaymentKind::Intent, id).await?;
        Ok(Reply::new(
            200,
            serde_json::to_string(&intent.view()).expect("view serializes"),
        ))
    }

    /// The `Idempotency-Key` an intent's create sends Fintoc for the client's key at
    /// `generation`: this deployment's namespace, as keys of intents always were.
    fn intent_fintoc_key(&self, key: &IdempotencyKey, generation: u32) -> FintocKey {
        derive_fintoc_key_at(&self.settings.idempotency_namespace, key, generation)
    }

    /// Creates the intent at Fintoc and its stored form, with the 201 body.
    async fn create_intent_at_fintoc(
        &self,
        call: FintocCreate,
    ) -> Result<(StoredPayment, String), Failure> {
        let FintocCreate {
            key,
            generation,
            request,
            metadata,
            now,
            budget,
        } = call;
        let (key, request) = (&key, &request);
        let fintoc_request = CreatePaymentIntent {
            amount: request.amount,
            currency: request.currency,
            customer_email: request.customer_email.clone(),
            metadata,
            recipient_account: self.settings.recipient.clone(),
        };
        let fintoc_key = self.intent_fintoc_key(key, generation);
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
            PaymentStatus::parse(&pi.status),
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
}
