//! The webhook use case: verify a delivery, parse it, and apply its event exactly
//! once through the domain's patch and one conditional write.

use super::record::{self, FirstWrite, Plan, RecordError, Recorded};
use crate::clock::{format_rfc3339_ms, Clock};
use crate::domain::create::{InputError, InputErrorKind};
use crate::domain::deployment::{Deployment, ForeignEvent, DEPLOYMENT_TAG_METADATA_KEY};
use crate::domain::payment::{PaymentKind, PaymentStatus};
use crate::domain::report::PaymentReport;
use crate::domain::session::{payment_event_report, SessionEventKind};
use crate::domain::transition::{
    plan_write, plan_write_first, Effect, EventRef, PaymentState, Source,
};
use crate::http::{ApiError, Reply};
use crate::secrets::split_secrets;
use crate::secrets::SecretString;
use crate::store::{EventStore, StoreError};
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
    /// `applied`, `created`, `recorded`, `duplicate`, `late`, `anomaly`, `ignored`
    /// or `kept_apart`.
    pub outcome: &'static str,
    /// The event's id.
    pub event_id: String,
}

impl Accepted {
    /// The answer to Fintoc.
    pub fn reply(&self) -> Reply {
        Reply::new(
            200,
            json!({"received": true, "event_id": self.event_id, "outcome": self.outcome})
                .to_string(),
        )
    }
}

fn accepted(outcome: &'static str, event_id: &str) -> Accepted {
    Accepted {
        outcome,
        event_id: event_id.to_string(),
    }
}

impl<S: EventStore, C: Clock> WebhookService<S, C> {
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

    /// The checkout session whose payment `payment` is, when the order its metadata
    /// names has a session as its payment: Fintoc passes a session's metadata on to
    /// the intent it makes. `None` otherwise (the intent is then judged as one).
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
        let order = self.store.order(order_id).await.map_err(storage_error)?;
        Ok(order
            .filter(|o| o.payment_kind == PaymentKind::Session)
            .and_then(|o| o.intent_id))
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
        let name = effect.name();
        match record::write_first(&self.store, effect, patch)
            .await
            .map_err(storage_error)?
        {
            FirstWrite::Written(_) => Ok(WriteFirst::Done(accepted(name, &event.id))),
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
                return Ok(accepted("ignored", &event.id));
            }
            EventKind::UnknownPaymentIntentType
            | EventKind::CheckoutSession(SessionEventKind::Unknown) => {
                tracing::warn!(event_id = %event.id, event_type = %event.event_type, "ignoring unknown event type of a known object");
                return Ok(accepted("ignored", &event.id));
            }
            EventKind::PaymentIntent(status) => PaymentReport {
                status: Some(status),
                ..event.intent_report()?
            },
            EventKind::CheckoutSession(kind) => event.session_report(&kind)?.to_record_report(),
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
                    state = self
                        .store
                        .payment_state(PaymentKind::Session, &session_id)
                        .await
                        .map_err(storage_error)?;
                    tracing::info!(event_id = %event.id, intent_id = %report.id, session_id = %session_id, "the payment of a checkout session");
                    payment_event_report(&session_id, &report)
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
            return Ok(accepted("kept_apart", &event.id));
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
            Ok(Recorded::Written { effect, .. }) => Ok(accepted(effect.name(), &event.id)),
            Ok(Recorded::Stopped { answer, .. }) => {
                tracing::info!(event_id = %event.id, payment_id = %report.id, "duplicate delivery");
                Ok(accepted(answer.name(), &event.id))
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
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::domain::payment::PaymentStatus;
    use crate::domain::transition::{PaymentPatch, PaymentState};
    use crate::store::memory::{MemoryStore, Operation};
    use crate::store::WriteResult;
    use crate::webhook::signature::compute_signature;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    const T0: i64 = 1_767_225_600_000;
    const SECRET: &str = "whsec_unit_7Hq2Lx9PzR4mVb1cK3sW";

    fn event(event_id: &str, status: &str) -> String {
        json!({
            "id": event_id, "type": format!("payment_intent.{status}"), "mode": "test",
            "data": {"id": "pi_1", "status": status, "amount": 100, "currency": "CLP",
                     "metadata": {"deployment_tag": "unit"},
                     "sender_account": {"number": "000012345678"}}
        })
        .to_string()
    }

    fn service<S: EventStore>(store: S) -> WebhookService<S, ManualClock> {
        WebhookService::new(
            store,
            ManualClock::new(T0),
            WebhookSettings {
                secrets: vec![SecretString::new(SECRET)],
                refresh: None,
                tolerance_secs: 300,
                write_first: true,
                deployment: Deployment {
                    tag: "unit".into(),
                    mode: Some("test".into()),
                },
            },
        )
    }

    async fn deliver<S: EventStore>(
        service: &WebhookService<S, ManualClock>,
        body: &str,
    ) -> Result<Reply, ApiError> {
        let t = (T0 / 1000).to_string();
        let header = format!(
            "t={t},v1={}",
            hex::encode(compute_signature(SECRET, &t, body.as_bytes()))
        );
        service
            .receive(Delivery {
                signature: Some(&header),
                body: body.as_bytes(),
            })
            .await
    }

    fn outcome(reply: &Reply) -> String {
        let body: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
        body["outcome"].as_str().unwrap().to_string()
    }

    #[tokio::test]
    async fn an_event_is_applied_once_with_a_masked_account() {
        let store = MemoryStore::default();
        let s = service(store.clone());
        assert_eq!(
            outcome(&deliver(&s, &event("evt_1", "succeeded")).await.unwrap()),
            "created"
        );
        assert_eq!(
            outcome(&deliver(&s, &event("evt_1", "succeeded")).await.unwrap()),
            "duplicate"
        );
        let intent = store.intent("pi_1").unwrap();
        assert_eq!(intent.status, Some(PaymentStatus::Succeeded));
        assert_eq!(intent.version, 1);
        let account = intent.outcome.unwrap().sender_account.unwrap();
        assert_eq!(account.number_last4.as_deref(), Some("5678"));
    }

    #[tokio::test]
    async fn foreign_untagged_and_wrong_mode_events_are_kept_apart() {
        let store = MemoryStore::default();
        let s = service(store.clone());
        let with = |id: &str, mode: &str, metadata: serde_json::Value| {
            json!({"id": id, "type": "payment_intent.succeeded", "mode": mode,
                   "data": {"id": "pi_x", "status": "succeeded", "metadata": metadata}})
            .to_string()
        };
        for (id, body, reason) in [
            (
                "evt_b",
                with("evt_b", "test", json!({"deployment_tag": "shop-b"})),
                "other_deployment",
            ),
            ("evt_u", with("evt_u", "test", json!({})), "untagged"),
            (
                "evt_m",
                with("evt_m", "live", json!({"deployment_tag": "unit"})),
                "mode_mismatch",
            ),
        ] {
            let reply = deliver(&s, &body).await.unwrap();
            assert_eq!(
                (reply.status, outcome(&reply)),
                (200, "kept_apart".into()),
                "{id}"
            );
            assert_eq!(store.foreign_event(id).unwrap().reason.as_str(), reason);
        }
        assert!(store.intent("pi_x").is_none(), "never stored as an intent");
        store.fail_next(Operation::KeepApart, 1);
        let e = deliver(&s, &with("evt_z", "live", json!({})))
            .await
            .unwrap_err();
        assert_eq!(e.status, 503, "Fintoc retries until it is kept");
    }

    #[tokio::test]
    async fn a_rotated_secret_takes_effect_while_warm() {
        const NEW: &str = "whsec_rotated_4b8e1f7c2a9d6035";
        let value = Arc::new(Mutex::new(SECRET.to_string()));
        let reads = value.clone();
        let clock = ManualClock::new(T0);
        let s = WebhookService::new(
            MemoryStore::default(),
            clock.clone(),
            WebhookSettings {
                secrets: vec![SecretString::new(SECRET)],
                refresh: Some(SecretRefresh {
                    fetch: Arc::new(move || {
                        let value = reads.lock().unwrap().clone();
                        Box::pin(async move { Ok(SecretString::new(value)) })
                    }),
                    every_ms: 60_000,
                }),
                tolerance_secs: 300,
                write_first: true,
                deployment: Deployment {
                    tag: "unit".into(),
                    mode: Some("test".into()),
                },
            },
        );
        let signed_with = |secret: &str, body: &str, now_ms: i64| {
            let t = (now_ms / 1000).to_string();
            format!(
                "t={t},v1={}",
                hex::encode(compute_signature(secret, &t, body.as_bytes()))
            )
        };
        let body = event("evt_1", "pending");
        let send = |header: String| {
            let s = &s;
            let body = body.clone();
            async move {
                s.receive(Delivery {
                    signature: Some(&header),
                    body: body.as_bytes(),
                })
                .await
            }
        };
        // Rotation starts: the stored value becomes "new,old".
        *value.lock().unwrap() = format!("{NEW},{SECRET}");
        assert!(
            send(signed_with(NEW, &body, T0)).await.is_err(),
            "not read again yet"
        );
        clock.advance_ms(60_000);
        let now = T0 + 60_000;
        assert!(
            send(signed_with(NEW, &body, now)).await.is_ok(),
            "read again: new accepted"
        );
        assert!(
            send(signed_with(SECRET, &body, now)).await.is_ok(),
            "old still accepted"
        );
        // A placeholder stored by mistake is refused; the secrets in use stay.
        *value.lock().unwrap() = "whsec_...".into();
        clock.advance_ms(60_000);
        let now = T0 + 120_000;
        assert!(send(signed_with(NEW, &body, now)).await.is_ok());
    }

    #[tokio::test]
    async fn refusals_are_4xx_and_write_nothing() {
        let store = MemoryStore::default();
        let s = service(store.clone());
        let body = event("evt_1", "succeeded");
        let e = s
            .receive(Delivery {
                signature: Some("t=1,v1=00"),
                body: body.as_bytes(),
            })
            .await
            .unwrap_err();
        assert_eq!((e.status, e.error_type), (400, "signature_error"));
        let e = deliver(&s, "not json").await.unwrap_err();
        assert_eq!((e.status, e.code.as_str()), (400, "invalid_event"));
        let e = deliver(
            &s,
            r#"{"id":"e","type":"payment_intent.succeeded","data":{}}"#,
        )
        .await
        .unwrap_err();
        assert_eq!(e.code, "invalid_event");
        let big = "x".repeat(MAX_WEBHOOK_BODY_BYTES + 1);
        assert_eq!(deliver(&s, &big).await.unwrap_err().status, 413);
        assert_eq!(store.item_count(), 0);
    }

    #[tokio::test]
    async fn other_and_unknown_types_are_acknowledged_without_a_write() {
        let store = MemoryStore::default();
        let s = service(store.clone());
        for t in ["link.created", "payment_intent.teleported"] {
            let body = json!({"id": "e", "type": t, "data": {"id": "pi_1"}}).to_string();
            assert_eq!(outcome(&deliver(&s, &body).await.unwrap()), "ignored");
        }
        assert_eq!(store.item_count(), 0);
    }

    #[tokio::test]
    async fn storage_failures_are_503_so_fintoc_retries() {
        // The first request of a new event is its write (written before any read),
        // then, when refused, the decision on what the refusal returned.
        for (operation, times) in [(Operation::Apply, 1), (Operation::Apply, 2)] {
            let store = MemoryStore::default();
            let s = service(store.clone());
            store.fail_next(operation, times);
            let e = deliver(&s, &event("evt_1", "failed")).await.unwrap_err();
            assert_eq!(
                (e.status, e.code.as_str()),
                (503, "storage_unavailable"),
                "{operation:?}"
            );
            assert_eq!(store.item_count(), 0);
            if times == 2 {
                let again = deliver(&s, &event("evt_1", "failed")).await.unwrap_err();
                assert_eq!(
                    again.status, 503,
                    "the create after the refused first write"
                );
            }
            assert_eq!(
                outcome(&deliver(&s, &event("evt_1", "failed")).await.unwrap()),
                "created"
            );
        }
    }

    #[tokio::test]
    async fn a_new_event_on_a_stored_intent_is_written_without_a_read() {
        let store = MemoryStore::default();
        let s = service(store.clone());
        assert_eq!(
            outcome(&deliver(&s, &event("evt_p", "pending")).await.unwrap()),
            "created"
        );
        // Reads fail from now on: the next events are written first, or decided on
        // what their refused write returned.
        store.fail_next(Operation::PaymentState, 100);
        assert_eq!(
            outcome(&deliver(&s, &event("evt_s", "succeeded")).await.unwrap()),
            "applied"
        );
        assert_eq!(
            outcome(&deliver(&s, &event("evt_s", "succeeded")).await.unwrap()),
            "duplicate"
        );
        assert_eq!(
            outcome(&deliver(&s, &event("evt_p2", "pending")).await.unwrap()),
            "late"
        );
        let intent = store.intent("pi_1").unwrap();
        assert_eq!(
            (intent.status, intent.version),
            (Some(PaymentStatus::Succeeded), 3)
        );
    }

    #[tokio::test]
    async fn reading_first_reads_before_every_event_and_decides_the_same() {
        let store = MemoryStore::default();
        let mut s = service(store.clone());
        s.settings.write_first = false;
        deliver(&s, &event("evt_p", "pending")).await.unwrap();
        // With reads failing, every event is a retryable 503 and nothing is written.
        store.fail_next(Operation::PaymentState, 1);
        let refused = deliver(&s, &event("evt_s", "succeeded")).await.unwrap_err();
        assert_eq!(refused.status, 503);
        assert_eq!(store.intent("pi_1").unwrap().version, 1);
        for (id, status, expected) in [
            ("evt_s", "succeeded", "applied"),
            ("evt_s", "succeeded", "duplicate"),
            ("evt_p2", "pending", "late"),
        ] {
            assert_eq!(
                outcome(&deliver(&s, &event(id, status)).await.unwrap()),
                expected
            );
        }
        let intent = store.intent("pi_1").unwrap();
        assert_eq!(
            (intent.status, intent.version),
            (Some(PaymentStatus::Succeeded), 3)
        );
    }

    /// Reads that miss the first write (a stale replica), or writes that always lose.
    #[derive(Clone)]
    struct Racing {
        inner: MemoryStore,
        stale_reads: Arc<AtomicU32>,
        always_conflict: bool,
    }

    impl EventStore for Racing {
        async fn payment_state(
            &self,
            kind: PaymentKind,
            id: &str,
        ) -> Result<Option<PaymentState>, StoreError> {
            let stale = self
                .stale_reads
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
            if stale {
                return Ok(None);
            }
            self.inner.payment_state(kind, id).await
        }
        async fn apply(&self, patch: &PaymentPatch) -> Result<WriteResult, StoreError> {
            if self.always_conflict {
                return Ok(WriteResult::Conflict(
                    self.inner
                        .payment_state(patch.kind, &patch.payment_id)
                        .await?,
                ));
            }
            self.inner.apply(patch).await
        }
        async fn keep_apart(&self, event: &ForeignEvent) -> Result<(), StoreError> {
            self.inner.keep_apart(event).await
        }
        async fn order(
            &self,
            order_id: &str,
        ) -> Result<Option<crate::domain::order::OrderRecord>, StoreError> {
            EventStore::order(&self.inner, order_id).await
        }
    }

    #[tokio::test]
    async fn a_lost_race_is_decided_again_on_the_returned_state() {
        let inner = MemoryStore::default();
        let plain = service(inner.clone());
        deliver(&plain, &event("evt_p", "pending")).await.unwrap();
        let racing = service(Racing {
            inner: inner.clone(),
            stale_reads: Arc::new(AtomicU32::new(1)),
            always_conflict: false,
        });
        let reply = deliver(&racing, &event("evt_s", "succeeded"))
            .await
            .unwrap();
        assert_eq!(
            outcome(&reply),
            "applied",
            "the create lost; the transition won"
        );
        let intent = inner.intent("pi_1").unwrap();
        assert_eq!(
            (intent.status, intent.version),
            (Some(PaymentStatus::Succeeded), 2)
        );
    }

    #[tokio::test]
    async fn an_intent_that_keeps_changing_is_503_after_bounded_attempts() {
        let inner = MemoryStore::default();
        deliver(&service(inner.clone()), &event("evt_p", "pending"))
            .await
            .unwrap();
        let racing = service(Racing {
            inner: inner.clone(),
            stale_reads: Arc::default(),
            always_conflict: true,
        });
        let e = deliver(&racing, &event("evt_s", "succeeded"))
            .await
            .unwrap_err();
        assert_eq!(e.status, 503);
        assert_eq!(
            inner.intent("pi_1").unwrap().status,
            Some(PaymentStatus::Pending)
        );
    }
}
