//! The webhook use case: verify a delivery, parse it, and apply its event exactly
//! once through the domain's patch and one conditional write.

use super::outcome::{written_anomalies, Anomaly, EventOutcome};
use super::record::{self, FirstWrite, Plan, RecordError, Recorded};
use super::refunds::on_refund_event;
use crate::clock::{format_rfc3339_ms, Clock};
use crate::domain::deployment::{Deployment, ForeignEvent, DEPLOYMENT_TAG_METADATA_KEY};
use crate::domain::error::{InputError, InputErrorKind};
use crate::domain::payment::{PaymentKind, PaymentStatus};
use crate::domain::report::PaymentReport;
use crate::domain::session::{payment_event_report, SessionEventKind, SESSION_REF_METADATA_KEY};
use crate::domain::transition::{
    plan_write, plan_write_first, Effect, EventRef, PaymentState, Source,
};
use crate::http::{ApiError, Reply};
use crate::secrets::split_secrets;
use crate::secrets::SecretString;
use crate::store::{EventStore, PaymentStore, RefundStore, StoreError};
use crate::webhook::event::{Event, EventKind};
use crate::webhook::signature::{check_secret_strength, verify};
use serde_json::json;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

/// Largest webhook body accepted; Fintoc's events are a few KiB.
pub const MAX_WEBHOOK_BODY_BYTES: usize = 256 * 1024;

/// Reads the webhook secret's current value (from SSM, say): `new,old` while rotating.
pub type SecretFetch = Arc<
    dyn Fn() -> Pin<Box<dyn Future<Output = Result<SecretString, String>> + Send>> + Send + Sync,
>;

/// How the webhook secrets are read again while a container stays warm, so a
/// rotation takes effect without a cold start.
#[derive(Clone)]
pub struct SecretRefresh {
    /// Reads the current value.
    pub fetch: SecretFetch,
    /// How often (milliseconds of the service's clock).
    pub every_ms: i64,
}

impl std::fmt::Debug for SecretRefresh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretRefresh")
            .field("every_ms", &self.every_ms)
            .finish()
    }
}

/// Webhook verification settings.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// Accepted secrets at init: one, or two while rotating.
    pub secrets: Vec<SecretString>,
    /// Reading them again while warm, when set.
    pub refresh: Option<SecretRefresh>,
    /// Largest accepted `|now - t|`, in seconds.
    pub tolerance_secs: u64,
    /// Which events are this deployment's.
    pub deployment: Deployment,
    /// Write before reading (one request per new event); `false` reads the item
    /// first, then writes (the event is decided the same way either way).
    pub write_first: bool,
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
#[derive(Debug)]
pub struct WebhookService<S, C> {
    store: S,
    clock: C,
    settings: WebhookSettings,
    /// The secrets in use and when they were read (ms).
    secrets: Mutex<(Arc<[SecretString]>, i64)>,
}

/// A delivery acknowledged (2xx): what became of its event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// What the event did.
    pub outcome: EventOutcome,
    /// An anomaly its write recorded beside its move (a payment of another
    /// amount, one its order did not take).
    pub flagged: Option<Anomaly>,
    /// The event's id.
    pub event_id: String,
}

impl Accepted {
    /// The anomaly a person must look at, if any: the event's, or its write's.
    pub fn anomaly(&self) -> Option<Anomaly> {
        self.outcome.anomaly().or(self.flagged)
    }

    /// The answer to Fintoc.
    pub fn reply(&self) -> Reply {
        Reply::new(
            200,
            json!({"received": true, "event_id": self.event_id, "outcome": self.outcome.name()})
                .to_string(),
        )
    }
}

fn accepted(outcome: EventOutcome, event_id: &str) -> Accepted {
    Accepted {
        outcome,
        flagged: None,
        event_id: event_id.to_string(),
    }
}

impl<S: EventStore + PaymentStore + RefundStore, C: Clock> WebhookService<S, C> {
    /// A service over its dependencies.
    pub fn new(store: S, clock: C, settings: WebhookSettings) -> Self {
        let secrets = Mutex::new((Arc::from(settings.secrets.clone()), clock.now_ms()));
        Self {
            store,
            clock,
            settings,
            secrets,
        }
    }

    /// The secrets to verify with: read again when the refresh period has passed.
    /// A value that cannot be read, or that is refused, keeps the ones in use.
    async fn current_secrets(&self, now_ms: i64) -> Arc<[SecretString]> {
        let (secrets, read_at) = self
            .secrets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let Some(refresh) = &self.settings.refresh else {
            return secrets;
        };
        if now_ms - read_at < refresh.every_ms {
            return secrets;
        }
        let fresh = match (refresh.fetch)().await {
            Ok(value) => {
                let fresh = split_secrets(&value);
                match fresh.iter().try_for_each(check_secret_strength) {
                    Ok(()) if !fresh.is_empty() => Some(fresh),
                    Ok(()) => {
                        tracing::error!(
                            "the webhook secret read again is empty; keeping the one in use"
                        );
                        None
                    }
                    Err(e) => {
                        tracing::error!(problem = %e, "the webhook secret read again is refused; keeping the one in use");
                        None
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not read the webhook secret again; keeping the one in use");
                None
            }
        };
        let mut current = self.secrets.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(fresh) = fresh {
            current.0 = Arc::from(fresh);
        }
        current.1 = now_ms;
        current.0.clone()
    }

    /// Verifies and records one delivery. 400 (nothing written) for a bad signature or
    /// a body that is not an event; 503 when storage fails, so Fintoc retries.
    pub async fn receive(&self, delivery: Delivery<'_>) -> Result<Reply, ApiError> {
        self.accept(delivery).await.map(|a| a.reply())
    }

    /// The checkout session whose attempt `payment` is. Fintoc passes a session's
    /// metadata on to the intents the payer makes in it: the attempt names its
    /// order and its session's reference, which the order maps to the session
    /// that made it — whichever session the order points at now. An attempt of a
    /// session made before references existed names none: it is the order's
    /// current session's. `None`: not a session's attempt (judged as an intent).
    async fn session_of_payment(
        &self,
        payment: &PaymentReport,
    ) -> Result<Option<String>, ApiError> {
        let tag = payment.metadata.get(DEPLOYMENT_TAG_METADATA_KEY);
        let Some(order_id) = payment
            .metadata
            .get(crate::domain::create::ORDER_ID_METADATA_KEY)
        else {
            return Ok(None);
        };
        if tag != Some(&self.settings.deployment.tag) {
            return Ok(None);
        }
        let Some(order) = self.store.order(order_id).await.map_err(storage_error)? else {
            return Ok(None);
        };
        Ok(match payment.metadata.get(SESSION_REF_METADATA_KEY) {
            Some(reference) => order.session_refs.get(reference).cloned(),
            None => Some(order)
                .filter(|o| o.payment_kind == PaymentKind::Session)
                .and_then(|o| o.intent_id),
        })
    }

    /// The common case in one request: the transition the event asks for, written
    /// before anything is read, under the condition that the stored item is in a
    /// state from which `plan_write` makes exactly that write
    /// (`domain::transition::plan_write_first`). A duplicate, or any other state,
    /// fails the condition and returns the item (`ALL_OLD`) to decide on.
    async fn write_first(
        &self,
        event: &Event,
        event_ref: &EventRef<'_>,
        report: &PaymentReport,
        now: &str,
    ) -> Result<WriteFirst, ApiError> {
        let claimed = report.status.clone().unwrap_or(PaymentStatus::Created);
        // The condition requires the item: an intent (or session) this deployment
        // stored, whose event must still be of this deployment's mode.
        let ours_if_stored = self
            .settings
            .deployment
            .check(event.mode.as_deref(), report, true)
            .is_ok();
        let Some(patch) = plan_write_first(event_ref, &claimed, report, now)
            .filter(|_| ours_if_stored && self.settings.write_first)
        else {
            return Ok(WriteFirst::Read);
        };
        let effect = Effect::Transition {
            from: PaymentStatus::Other("unread".into()),
            to: claimed,
        };
        let outcome = EventOutcome::of_effect(&effect);
        match record::write_first(&self.store, effect, patch)
            .await
            .map_err(storage_error)?
        {
            FirstWrite::Written(_) => Ok(WriteFirst::Done(accepted(outcome, &event.id))),
            FirstWrite::Refused(state) => Ok(WriteFirst::Decide(state)),
        }
    }

    /// [`Self::receive`], with what became of the event typed (for metrics).
    pub async fn accept(&self, delivery: Delivery<'_>) -> Result<Accepted, ApiError> {
        if delivery.body.len() > MAX_WEBHOOK_BODY_BYTES {
            return Err(InputError::new(
                InputErrorKind::TooLarge,
                "body_too_large",
                format!("Webhook bodies must be at most {MAX_WEBHOOK_BODY_BYTES} bytes."),
            )
            .into());
        }
        let now_ms = self.clock.now_ms();
        let secrets = self.current_secrets(now_ms).await;
        verify(
            delivery.signature,
            delivery.body,
            &secrets,
            now_ms.div_euclid(1000),
            self.settings.tolerance_secs,
        )
        .inspect_err(|e| tracing::warn!(reason = e.code(), "webhook signature refused"))?;
        let event = Event::parse(delivery.body)?;
        let report = match event.kind() {
            EventKind::Other => {
                tracing::info!(event_id = %event.id, event_type = %event.event_type, "ignoring event type");
                return Ok(accepted(EventOutcome::Ignored, &event.id));
            }
            EventKind::UnknownPaymentIntentType
            | EventKind::CheckoutSession(SessionEventKind::Unknown) => {
                tracing::warn!(event_id = %event.id, event_type = %event.event_type, "ignoring unknown event type of a known object");
                return Ok(accepted(EventOutcome::Ignored, &event.id));
            }
            EventKind::Refund => {
                let report = event.refund_report()?;
                let outcome = on_refund_event(&self.store, &event, &report, now_ms)
                    .await
                    .map_err(storage_error)?;
                return Ok(accepted(outcome, &event.id));
            }
            EventKind::PaymentIntent(status) => PaymentReport {
                status: Some(status),
                ..event.intent_report()?
            },
            EventKind::CheckoutSession(kind) => event.session_report(&kind)?.to_record_report(),
        };
        // The mode the event states: its envelope's, else its data's (a payment of
        // the other mode is never moved by it: `domain::transition`).
        let report = PaymentReport {
            mode: event
                .mode
                .clone()
                .filter(|m| matches!(m.as_str(), "live" | "test"))
                .or(report.mode),
            ..report
        };
        let event_ref = EventRef {
            id: &event.id,
            event_type: &event.event_type,
            created_at: event.created_at.as_deref(),
            source: Source::Webhook,
        };
        let now = format_rfc3339_ms(now_ms);
        let mut state = match self.write_first(&event, &event_ref, &report, &now).await? {
            WriteFirst::Done(accepted) => return Ok(accepted),
            WriteFirst::Decide(state) => state,
            WriteFirst::Read => self
                .store
                .payment_state(report.kind, &report.id)
                .await
                .map_err(storage_error)?,
        };
        // An intent unknown here may be the payment a checkout session made.
        let report = match (&state, report.kind) {
            (None, PaymentKind::Intent) => match self.session_of_payment(&report).await? {
                Some(session_id) => {
                    let session = self
                        .store
                        .payment_state(PaymentKind::Session, &session_id)
                        .await
                        .map_err(storage_error)?;
                    let claimed = report.status.clone().unwrap_or(PaymentStatus::Created);
                    if session
                        .as_ref()
                        .is_some_and(|s| !s.takes_attempt(&report.id, &claimed))
                    {
                        // Paid by another attempt, or expired: this success is a
                        // second payment, recorded on its own (its order keeps it
                        // as an anomaly; it is held for review, refundable in full).
                        tracing::warn!(event_id = %event.id, intent_id = %report.id, session_id = %session_id, "another attempt of a checkout session succeeded after its outcome was recorded: a second payment");
                        report
                    } else {
                        state = session;
                        tracing::info!(event_id = %event.id, intent_id = %report.id, session_id = %session_id, "the payment of a checkout session");
                        payment_event_report(&session_id, &report)
                    }
                }
                None => report,
            },
            _ => report,
        };
        let claimed = report.status.clone().unwrap_or(PaymentStatus::Created);
        let origin =
            self.settings
                .deployment
                .check(event.mode.as_deref(), &report, state.is_some());
        if let Err(reason) = origin {
            let foreign = ForeignEvent {
                event_id: event.id.clone(),
                event_type: event.event_type.clone(),
                intent_id: report.id.clone(),
                reason,
                mode: event.mode.clone().or(report.mode.clone()),
                tag: report.metadata.get(DEPLOYMENT_TAG_METADATA_KEY).cloned(),
                received_at_ms: now_ms,
            };
            self.store
                .keep_apart(&foreign)
                .await
                .map_err(storage_error)?;
            tracing::warn!(
                event_id = %event.id, intent_id = %report.id, reason = reason.as_str(),
                "event kept apart: not this deployment's; a human should look at it"
            );
            return Ok(accepted(EventOutcome::KeptApart, &event.id));
        }
        let recorded = record::record(&self.store, state, |state| {
            match plan_write(state, &event_ref, &claimed, &report, &now) {
                (effect, Some(patch)) => Plan::Write {
                    effect,
                    patch: Box::new(patch),
                },
                (effect, None) => Plan::Stop(effect),
            }
        })
        .await;
        match recorded {
            Ok(Recorded::Written {
                effect,
                patch,
                result,
            }) => Ok(Accepted {
                flagged: written_anomalies(&patch, &result).next(),
                ..accepted(EventOutcome::of_effect(&effect), &event.id)
            }),
            Ok(Recorded::Stopped { answer, .. }) => {
                tracing::info!(event_id = %event.id, payment_id = %report.id, "duplicate delivery");
                Ok(accepted(EventOutcome::of_effect(&answer), &event.id))
            }
            Err(RecordError::Store(e)) => Err(storage_error(e)),
            Err(RecordError::KeptChanging) => {
                tracing::error!(payment_id = %report.id, "not recorded; Fintoc will retry");
                Err(ApiError::event_not_recorded())
            }
        }
    }
}

/// What the write-first attempt left to do.
enum WriteFirst {
    /// Written: the answer.
    Done(Accepted),
    /// Refused: the stored state it returned (`None`: no item), to decide on.
    Decide(Option<PaymentState>),
    /// Not attempted (an event no stored state moves on, or of another mode): read.
    Read,
}

fn storage_error(e: StoreError) -> ApiError {
    tracing::error!(error = %e.detail(), "webhook storage failed; Fintoc will retry");
    ApiError::event_not_recorded()
}

#[cfg(test)]
mod tests;
