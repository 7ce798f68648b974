//! Unit tests of `receive_webhook`.

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

fn service<S: EventStore + PaymentStore + RefundStore>(store: S) -> WebhookService<S, ManualClock> {
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

async fn deliver<S: EventStore + PaymentStore + RefundStore>(
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

impl PaymentStore for Racing {
    async fn save_created(
        &self,
        payment: &crate::domain::payment::StoredPayment,
    ) -> Result<(), StoreError> {
        self.inner.save_created(payment).await
    }
    async fn get_payment(
        &self,
        kind: PaymentKind,
        id: &str,
    ) -> Result<Option<crate::domain::payment::StoredPayment>, StoreError> {
        self.inner.get_payment(kind, id).await
    }
    async fn session_of_attempt(&self, intent_id: &str) -> Result<Option<String>, StoreError> {
        self.inner.session_of_attempt(intent_id).await
    }
}

impl RefundStore for Racing {
    async fn reserve_refund(
        &self,
        request: &crate::store::ReserveRefund<'_>,
    ) -> Result<crate::store::RefundWrite, StoreError> {
        self.inner.reserve_refund(request).await
    }
    async fn change_refund(
        &self,
        change: &crate::store::RefundChange<'_>,
    ) -> Result<crate::store::RefundWrite, StoreError> {
        self.inner.change_refund(change).await
    }
    async fn drop_refund(
        &self,
        kind: PaymentKind,
        payment_id: &str,
        refund: &crate::domain::refund::StoredRefund,
    ) -> Result<bool, StoreError> {
        self.inner.drop_refund(kind, payment_id, refund).await
    }
    async fn next_key_generation(
        &self,
        kind: PaymentKind,
        payment_id: &str,
        key: &crate::domain::refund::RefundKey,
        from: u32,
    ) -> Result<bool, StoreError> {
        self.inner
            .next_key_generation(kind, payment_id, key, from)
            .await
    }
    async fn refund_sweep_cursor(&self) -> Result<Option<String>, StoreError> {
        self.inner.refund_sweep_cursor().await
    }
    async fn advance_refund_sweep(&self, to: &str) -> Result<bool, StoreError> {
        self.inner.advance_refund_sweep(to).await
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
