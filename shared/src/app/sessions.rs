//! The Checkout Session flow (Fintoc's current flow): `POST /checkout-sessions`
//! creates a session exactly once per key, `GET /checkout-sessions/{id}` reads it
//! back, `POST /checkout-sessions/{id}/expire` expires one still `created` and
//! records Fintoc's answer through the record engine. Built on the shared create
//! of `app::payments`.

use super::errors::{fintoc_error, store_error};
use super::payments::{
    check_amount, fintoc_budget, CreateInput, Failure, FintocCreate, PaymentService,
};
use super::record::{self, Plan, RecordError};
use crate::clock::{format_rfc3339_ms, parse_rfc3339_ms, Clock};
use crate::domain::create::parse_session_request;
use crate::domain::error::{InputError, InputErrorKind};
use crate::domain::idempotency::{derive_fintoc_key_at, FintocKey, IdempotencyKey};
use crate::domain::payment::{PaymentKind, PaymentStatus, StoredPayment};
use crate::domain::session::{
    session_ref, SessionSettings, SessionStatus, SESSION_REF_METADATA_KEY,
};
use crate::domain::transition::{plan_write, EventRef, Source};
use crate::fintoc::{
    BankTransferOptions, CreateCheckoutSession, FintocApi, FintocError, FintocLookup,
    SessionPaymentMethodOptions,
};
use crate::http::{ApiError, Reply};
use crate::log_markers::ANOMALY;
use crate::store::{CreateStore, EventStore, OrderStore, PaymentStore};
use serde::Serialize;
use std::collections::BTreeMap;

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

impl<S, F, C> PaymentService<S, F, C>
where
    S: CreateStore + PaymentStore + OrderStore + EventStore,
    F: FintocApi + FintocLookup,
    C: Clock,
{
    /// `POST /checkout-sessions`: the same as `POST /payment-intents`, for a
    /// checkout session (404 `flow_not_enabled` when this deployment has no session
    /// configuration; 400 for a return URL it does not allow).
    pub async fn create_session(&self, input: CreateInput<'_>) -> Result<Reply, ApiError> {
        let sessions = self.sessions()?;
        let key = IdempotencyKey::parse(input.caller, input.idempotency_key)?;
        let request = parse_session_request(input.content_type, input.body, &self.settings.limits)?;
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
        // Every attempt of this session carries its reference (Fintoc passes the
        // session's metadata on), recorded on the order: its events find it.
        let reference = session_ref(&self.session_fintoc_key(&key, 0));
        self.create_payment(
            PaymentKind::Session,
            key,
            request,
            input.deadline_ms,
            Some(reference),
            |call| self.create_session_at_fintoc(call),
        )
        .await
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

    /// The `Idempotency-Key` a session's create sends Fintoc for the client's key
    /// at `generation` (the first, 0, also names the session's reference).
    fn session_fintoc_key(&self, key: &IdempotencyKey, generation: u32) -> FintocKey {
        let namespace = format!("{}:checkout_session", self.settings.idempotency_namespace);
        derive_fintoc_key_at(&namespace, key, generation)
    }

    /// Creates the session at Fintoc and its stored form, with the 201 body.
    async fn create_session_at_fintoc(
        &self,
        call: FintocCreate,
    ) -> Result<(StoredPayment, String), Failure> {
        let FintocCreate {
            key,
            generation,
            request,
            mut metadata,
            now,
            budget,
        } = call;
        let (key, request) = (&key, &request);
        let fintoc_key = self.session_fintoc_key(key, generation);
        metadata.insert(
            SESSION_REF_METADATA_KEY.to_string(),
            session_ref(&self.session_fintoc_key(key, 0)),
        );
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
            SessionStatus::Created => PaymentStatus::Created,
            other => {
                tracing::warn!(session_id = %cs.id, status = other.as_str(), "a new session that is not `created`; its events and checks will tell");
                PaymentStatus::Created
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

    /// `GET /checkout-sessions/{id}`: the session's status and its payment's
    /// outcome, 404 when unknown.
    pub async fn get_session(&self, id: &str) -> Result<Reply, ApiError> {
        let session = self.find(PaymentKind::Session, id).await?;
        Ok(session_reply(&session))
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
        if session.status != PaymentStatus::Created {
            return Err(not_expirable(&session));
        }
        let now = self.clock.now_ms();
        let budget = fintoc_budget(deadline_ms, now);
        let report = match self.fintoc.expire_checkout_session(id, budget).await {
            Ok(Some(report)) => report,
            Ok(None) => {
                tracing::error!(
                    session_id = id,
                    "{ANOMALY}: Fintoc does not know a session this deployment created"
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
        let claimed = report.status.clone().unwrap_or(PaymentStatus::Created);
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
        let state = self
            .store
            .payment_state(PaymentKind::Session, id)
            .await
            .map_err(store_error)?;
        let recorded = record::record(&self.store, state, |state| {
            match plan_write(state, &event, &claimed, &report, &at) {
                (effect, Some(patch)) => Plan::Write {
                    effect,
                    patch: Box::new(patch),
                },
                (_, None) => Plan::Stop(()),
            }
        })
        .await;
        match recorded {
            Ok(_) => {}
            Err(RecordError::Store(e)) => return Err(store_error(e)),
            // Others changed the session meanwhile: answer what it is now.
            Err(RecordError::KeptChanging) => {}
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

fn session_reply(session: &StoredPayment) -> Reply {
    Reply::new(
        200,
        serde_json::to_string(&session.session_view()).expect("view serializes"),
    )
}

fn not_expirable(session: &StoredPayment) -> ApiError {
    ApiError::invalid_request(
        409,
        "session_not_expirable",
        format!(
            "Only a session that is still `created` can be expired; this one is `{}`.",
            crate::domain::session::session_status(&session.status)
        ),
    )
}
