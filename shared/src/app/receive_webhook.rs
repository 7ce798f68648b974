//! The webhook use case: verify a delivery, parse it, and apply its event exactly
//! once through the domain's patch and one conditional write.

use crate::clock::{format_rfc3339_ms, Clock};
use crate::domain::create::{InputError, InputErrorKind};
use crate::domain::transition::{plan_write, Effect, EventRef};
use crate::http::{ApiError, Reply};
use crate::secrets::SecretString;
use crate::store::{EventStore, StoreError, WriteResult};
use crate::webhook::event::{Event, EventKind};
use crate::webhook::signature::verify;
use serde_json::json;

/// Largest webhook body accepted; Fintoc's events are a few KiB.
pub const MAX_WEBHOOK_BODY_BYTES: usize = 256 * 1024;

/// Most write attempts for one event when other deliveries of the same intent race it.
const MAX_WRITE_ATTEMPTS: usize = 8;

/// Webhook verification settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookSettings {
    /// Accepted secrets: one, or two while rotating.
    pub secrets: Vec<SecretString>,
    /// Largest accepted `|now - t|`, in seconds.
    pub tolerance_secs: u64,
}

/// A delivery as the handler received it.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    /// The `Fintoc-Signature` header.
    pub signature: Option<&'a str>,
    /// The raw body bytes (base64-decoded if the event said so).
    pub body: &'a [u8],
}

/// The webhook use case over a store and a clock.
#[derive(Debug, Clone)]
pub struct WebhookService<S, C> {
    store: S,
    clock: C,
    settings: WebhookSettings,
}

fn accepted(outcome: &str, event_id: &str) -> Reply {
    Reply::new(
        200,
        json!({"received": true, "event_id": event_id, "outcome": outcome}).to_string(),
    )
}

impl<S: EventStore, C: Clock> WebhookService<S, C> {
    /// A service over its dependencies.
    pub fn new(store: S, clock: C, settings: WebhookSettings) -> Self {
        Self {
            store,
            clock,
            settings,
        }
    }

    /// Verifies and records one delivery. 400 (nothing written) for a bad signature or
    /// a body that is not an event; 503 when storage fails, so Fintoc retries.
    pub async fn receive(&self, delivery: Delivery<'_>) -> Result<Reply, ApiError> {
        if delivery.body.len() > MAX_WEBHOOK_BODY_BYTES {
            return Err(InputError::new(
                InputErrorKind::TooLarge,
                "body_too_large",
                format!("Webhook bodies must be at most {MAX_WEBHOOK_BODY_BYTES} bytes."),
            )
            .into());
        }
        let now_ms = self.clock.now_ms();
        verify(
            delivery.signature,
            delivery.body,
            &self.settings.secrets,
            now_ms.div_euclid(1000),
            self.settings.tolerance_secs,
        )
        .inspect_err(|e| tracing::warn!(reason = e.code(), "webhook signature refused"))?;
        let event = Event::parse(delivery.body)?;
        let claimed = match event.kind() {
            EventKind::Other => {
                tracing::info!(event_id = %event.id, event_type = %event.event_type, "ignoring event type");
                return Ok(accepted("ignored", &event.id));
            }
            EventKind::UnknownPaymentIntentType => {
                tracing::warn!(event_id = %event.id, event_type = %event.event_type, "ignoring unknown payment_intent event type");
                return Ok(accepted("ignored", &event.id));
            }
            EventKind::PaymentIntent(status) => status,
        };
        let report = event.intent_report()?;
        let event_ref = EventRef {
            id: &event.id,
            event_type: &event.event_type,
            created_at: event.created_at.as_deref(),
        };
        let now = format_rfc3339_ms(now_ms);
        let mut state = self
            .store
            .intent_state(&report.id)
            .await
            .map_err(storage_error)?;
        for _ in 0..MAX_WRITE_ATTEMPTS {
            let (effect, patch) = plan_write(state.as_ref(), &event_ref, &claimed, &report, &now);
            let Some(patch) = patch else {
                tracing::info!(event_id = %event.id, intent_id = %report.id, "duplicate delivery");
                return Ok(accepted(effect.name(), &event.id));
            };
            match self.store.apply(&patch).await.map_err(storage_error)? {
                WriteResult::Written => {
                    log_effect(&effect, &event.id, &report.id);
                    return Ok(accepted(effect.name(), &event.id));
                }
                WriteResult::Conflict(current) => state = current,
            }
        }
        tracing::error!(
            intent_id = %report.id,
            "intent kept changing during {MAX_WRITE_ATTEMPTS} attempts; Fintoc will retry"
        );
        Err(ApiError::event_not_recorded())
    }
}

fn log_effect(effect: &Effect, event_id: &str, intent_id: &str) {
    match effect {
        Effect::ConflictingFinal { current, claimed } => tracing::error!(
            event_id, intent_id, current = current.as_str(), claimed = claimed.as_str(),
            "ANOMALY: conflicting final event kept on the intent; the status was not changed — a human must check this payment"
        ),
        Effect::Late { current, claimed } => tracing::warn!(
            event_id, intent_id, current = current.as_str(), claimed = claimed.as_str(),
            "late event noted; status unchanged"
        ),
        Effect::Transition { from, to } => tracing::info!(event_id, intent_id, from = from.as_str(), to = to.as_str(), "status changed"),
        Effect::Create { status } => tracing::warn!(event_id, intent_id, status = status.as_str(), "intent unknown here: created from the event"),
        Effect::SameStatus | Effect::Duplicate => tracing::info!(event_id, intent_id, "event recorded"),
    }
}

fn storage_error(e: StoreError) -> ApiError {
    tracing::error!(error = %e.detail(), "webhook storage failed; Fintoc will retry");
    ApiError::event_not_recorded()
}
