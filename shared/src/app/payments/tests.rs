//! Unit tests of the payment API of both flows on the in-memory store and a fake
//! Fintoc: idempotent creates and replays, refusals that write nothing, failures
//! that release the key, reads and a session's expire.

use super::*;
use crate::clock::ManualClock;
use crate::domain::create::parse_create_request;
use crate::domain::idempotency::AcquireRequest;
use crate::domain::idempotency::FintocKey;
use crate::domain::session::SessionSettings;
use crate::fintoc::FintocCheckoutSession;
use crate::fintoc::{CreateCheckoutSession, CreatePaymentIntent, FintocPaymentIntent};
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
    /// Answers intents without a `mode`.
    answer_without_mode: Arc<Mutex<bool>>,
    /// What `GET /v1/payment_intents` lists (`None`: it fails).
    listed: Arc<Mutex<Option<Vec<crate::domain::report::PaymentReport>>>>,
    /// The intents expired.
    expired: Arc<Mutex<Vec<String>>>,
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
        let mode = (!*self.answer_without_mode.lock().unwrap()).then(|| "test".to_string());
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
                mode,
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

    async fn expire_payment_intent(
        &self,
        id: &str,
        _budget: Option<Duration>,
    ) -> Result<Option<crate::domain::report::PaymentReport>, FintocError> {
        self.expired.lock().unwrap().push(id.to_string());
        Ok(Some(
            crate::domain::report::PaymentReport::from_json(&serde_json::json!({
                "id": id, "status": "expired", "amount": 15000, "currency": "CLP"
            }))
            .unwrap(),
        ))
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

impl FintocLookup for FakeFintoc {
    async fn get_payment_intent(
        &self,
        _id: &str,
        _budget: Option<Duration>,
    ) -> Result<Option<crate::domain::report::PaymentReport>, FintocError> {
        Ok(None)
    }

    async fn get_checkout_session(
        &self,
        _id: &str,
        _budget: Option<Duration>,
    ) -> Result<Option<crate::domain::session::SessionReport>, FintocError> {
        Ok(None)
    }

    async fn get_refund(
        &self,
        _id: &str,
        _budget: Option<Duration>,
    ) -> Result<Option<crate::domain::refund::RefundReport>, FintocError> {
        Ok(None)
    }

    async fn list_refunds(
        &self,
        _since: &str,
        _until: Option<&str>,
        _budget: Option<Duration>,
    ) -> Result<crate::fintoc::RefundList, FintocError> {
        Ok(crate::fintoc::RefundList {
            refunds: vec![],
            complete: true,
        })
    }

    async fn list_payment_intents(
        &self,
        _since: &str,
        _budget: Option<Duration>,
    ) -> Result<crate::fintoc::PaymentList, FintocError> {
        match self.listed.lock().unwrap().clone() {
            Some(payments) => Ok(crate::fintoc::PaymentList {
                payments,
                complete: true,
            }),
            None => Err(FintocError::Unavailable {
                status: 503,
                attempts: 1,
            }),
        }
    }
}

struct Setup {
    store: MemoryStore,
    fintoc: FakeFintoc,
    service: PaymentService<MemoryStore, FakeFintoc, ManualClock>,
}

fn settings() -> PaymentSettings {
    PaymentSettings {
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
        mode: Some("test".into()),
    }
}

fn setup_with(fintoc: FakeFintoc, store: MemoryStore) -> Setup {
    let service = PaymentService::new(
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
async fn a_payment_fintoc_answers_without_a_mode_carries_the_keys() {
    let s = setup();
    *s.fintoc.answer_without_mode.lock().unwrap() = true;
    let created = s.post("k-mode", BODY).await.unwrap();
    let stored = s.store.intent(&id_of(&created)).unwrap();
    assert_eq!(
        stored.mode.as_deref(),
        Some("test"),
        "the deployment's mode, from its secret key"
    );
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
                2,
                "{code}: the key is released (kept with its reservation) and no intent stored; the order stays reserved until its lease lapses"
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
    assert_eq!(
        s.store.item_count(),
        2,
        "only the released key and the order's reservation"
    );
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
async fn finish(store: &MemoryStore, intent: &str, order: &str, status: PaymentStatus) {
    use crate::domain::report::PaymentReport;
    use crate::domain::transition::{plan_write, EventRef};
    use crate::store::EventStore;
    let state = store
        .payment_state(PaymentKind::Intent, intent)
        .await
        .unwrap();
    let report = PaymentReport {
        id: intent.into(),
        metadata: [("order_id".to_string(), order.to_string())].into(),
        ..PaymentReport::default()
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
    let items = s.store.item_count();
    let e = s.post("k2", BODY).await.unwrap_err();
    assert_eq!(
        (e.status, e.code.as_str()),
        (409, "order_has_active_intent")
    );
    assert_eq!(
        s.store.item_count(),
        items,
        "a refusal writes nothing: not even the key (it is taken with the order)"
    );
    assert!(e.message.contains(&first), "{}", e.message);
    assert_eq!(s.fintoc.calls(), 1, "no second intent at Fintoc");
    // The refused key is free again: nothing was recorded for it.
    assert!(matches!(
        s.post("k2", BODY).await,
        Err(ApiError { status: 409, .. })
    ));
    finish(&s.store, &first, "order-1", PaymentStatus::Rejected).await;
    let second = id_of(&s.post("k3", BODY).await.unwrap());
    assert_ne!(first, second, "a new intent once the first was rejected");
    finish(&s.store, &second, "order-1", PaymentStatus::Succeeded).await;
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

/// Fintoc's failure stored under a key: every retry of it answers it again.
fn stored_failure() -> FintocError {
    FintocError::Unavailable {
        status: 500,
        attempts: 3,
    }
}

#[tokio::test]
async fn a_resumed_create_whose_key_holds_a_failure_is_sent_under_a_new_key() {
    let s = setup();
    *s.fintoc.listed.lock().unwrap() = Some(vec![]);
    s.fintoc.fail_with(stored_failure());
    let e = s.post("k-gen", BODY).await.unwrap_err();
    assert_eq!(e.status, 502, "{e:?}");
    // The retry: Fintoc replays the failure under the key, then takes a new one.
    s.fintoc.fail_with(stored_failure());
    let created = s.post("k-gen", BODY).await.unwrap();
    assert_eq!(created.status, 201);
    let calls = s.fintoc.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 3);
    assert_eq!(calls[0], calls[1], "a retry sends its key again first");
    assert_ne!(calls[2], calls[1], "then the key's next generation");
    // A later failure of the same key starts from the generation it is at.
    assert!(s.store.intent(&id_of(&created)).is_some());
    assert!(s.fintoc.expired.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_fresh_create_is_never_sent_under_a_new_key() {
    let s = setup();
    *s.fintoc.listed.lock().unwrap() = Some(vec![]);
    s.fintoc.fail_with(stored_failure());
    let e = s.post("k-fresh", BODY).await.unwrap_err();
    assert_eq!(e.status, 502);
    assert_eq!(s.fintoc.calls(), 1, "no earlier send: nothing to move past");
}

#[tokio::test]
async fn an_intent_made_under_the_failed_key_is_expired_before_another_is_made() {
    let s = setup();
    let orphan = |id: &str, order: &str, tag: &str| {
        crate::domain::report::PaymentReport::from_json(&serde_json::json!({
            "id": id, "status": "created", "amount": 15000, "currency": "CLP",
            "metadata": {"order_id": order, "deployment_tag": tag}
        }))
        .unwrap()
    };
    *s.fintoc.listed.lock().unwrap() = Some(vec![
        orphan("pi_orphan", "order-1", "unit"),
        orphan("pi_other_order", "order-2", "unit"),
        orphan("pi_other_deployment", "order-1", "elsewhere"),
    ]);
    s.fintoc.fail_with(stored_failure());
    s.post("k-orphan", BODY).await.unwrap_err();
    s.fintoc.fail_with(stored_failure());
    let created = s.post("k-orphan", BODY).await.unwrap();
    assert_eq!(created.status, 201);
    assert_eq!(
        *s.fintoc.expired.lock().unwrap(),
        vec!["pi_orphan".to_string()]
    );
}

#[tokio::test]
async fn a_stored_failure_whose_lookup_fails_keeps_the_key_and_fails_safe_to_retry() {
    let s = setup();
    s.fintoc.fail_with(stored_failure());
    s.post("k-unread", BODY).await.unwrap_err();
    s.fintoc.fail_with(stored_failure());
    // The list fails (`listed` is None): nothing is sent under a new key.
    let e = s.post("k-unread", BODY).await.unwrap_err();
    assert_eq!(e.status, 502);
    let calls = s.fintoc.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0], calls[1]);
    // Once Fintoc's list answers, the next retry moves on.
    *s.fintoc.listed.lock().unwrap() = Some(vec![]);
    s.fintoc.fail_with(stored_failure());
    assert_eq!(s.post("k-unread", BODY).await.unwrap().status, 201);
    let calls = s.fintoc.calls.lock().unwrap().clone();
    assert_ne!(calls[3], calls[2]);
}

#[tokio::test]
async fn a_sessions_create_moves_to_a_new_key_and_keeps_its_reference() {
    let s = setup();
    let caller = CallerId::anonymous();
    let post = || {
        s.service.create_session(CreateInput {
            caller: &caller,
            idempotency_key: Some("k-session-gen"),
            content_type: Some("application/json"),
            body: BODY.as_bytes(),
            deadline_ms: None,
        })
    };
    s.fintoc.fail_with(stored_failure());
    post().await.unwrap_err();
    s.fintoc.fail_with(stored_failure());
    assert_eq!(post().await.unwrap().status, 201);
    let calls = s.fintoc.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 3);
    assert_ne!(calls[2], calls[1]);
    let sent = s.fintoc.sent_sessions.lock().unwrap().clone();
    assert_eq!(
        sent[2].metadata["session_ref"], sent[0].metadata["session_ref"],
        "every attempt of the session carries the reference of its first key"
    );
}
