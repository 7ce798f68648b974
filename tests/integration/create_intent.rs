//! create-intent through real lambda_http requests, on DynamoDB Local and the Fintoc
//! simulator.

use crate::common::*;
use fintoc_sim::Fault;
use futures::future::join_all;
use serde_json::json;
use shared::domain::idempotency::{
    derive_fintoc_key, AcquireOutcome, AcquireRequest, CallerId, IdempotencyKey,
};
use shared::fintoc::{CreatePaymentIntent, FintocApi, FintocLookup};
use shared::store::IdempotencyStore;
use std::sync::atomic::Ordering;

#[tokio::test]
async fn creates_an_intent_and_reads_it_back() {
    let h = Harness::new().await;
    let created = h.post(Some("key-1"), BODY).await;
    assert_eq!(created.status, 201, "{}", created.json);
    let body = &created.json;
    let id = body["id"].as_str().unwrap();
    assert!(id.starts_with("pi_"));
    assert_eq!(body["status"], "created");
    assert_eq!(body["amount"], 15000);
    assert_eq!(body["currency"], "CLP");
    assert_eq!(body["order_id"], "order-1");
    assert_eq!(body["metadata"], json!({"cart": "c-1"}));
    assert!(body["widget_token"].as_str().is_some_and(|t| !t.is_empty()));
    let created_ms = shared::clock::parse_rfc3339_ms(body["created_at"].as_str().unwrap()).unwrap();
    let expires_ms =
        shared::clock::parse_rfc3339_ms(body["widget_token_expires_at"].as_str().unwrap()).unwrap();
    assert_eq!(expires_ms - created_ms, 600_000);
    assert!(created.header("idempotent-replayed").is_none());

    // Fintoc received the configured recipient, never anything from the request.
    let at_fintoc = h.sim.intent(id).unwrap();
    assert_eq!(at_fintoc["recipient_account"]["number"], "123456789");
    assert_eq!(at_fintoc["metadata"]["order_id"], "order-1");
    assert_eq!(at_fintoc["widget_token"], serde_json::Value::Null);
    assert_eq!(h.sim.intents_created(), 1);

    let got = h.get(id).await;
    assert_eq!(got.status, 200);
    let mut keys: Vec<&str> = got
        .json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "amount",
            "created_at",
            "currency",
            "error_reason",
            "id",
            "metadata",
            "needs_review",
            "order_id",
            "paid",
            "refundable_amount",
            "refunded_amount",
            "refunds",
            "status",
            "updated_at"
        ]
    );
    assert_eq!(got.json["status"], "created");
    assert_eq!(
        (&got.json["paid"], &got.json["needs_review"]),
        (&json!(false), &json!(null))
    );
    assert_eq!(got.json["amount"], 15000);
    assert_eq!(got.json["order_id"], "order-1");
    assert!(
        !got.json.to_string().contains("123456789"),
        "no account number in GET"
    );
}

#[tokio::test]
async fn same_key_same_request_replays_without_calling_fintoc() {
    let h = Harness::new().await;
    let first = h.post(Some("key-replay"), BODY).await;
    assert_eq!(first.status, 201);
    // Same meaning, different spelling: key order, whitespace, currency case.
    let same = r#"{"order_id":"order-1","metadata":{"cart":"c-1"},"customer_email":"payer@example.cl","currency":"CLP","amount":15000}"#;
    let second = h.post(Some("key-replay"), same).await;
    assert_eq!(second.status, 201);
    assert_eq!(second.json, first.json, "same id and widget token");
    assert_eq!(second.header("idempotent-replayed"), Some("true"));
    assert_eq!(h.sim.api_requests(), 1, "no second call to Fintoc");
    assert_eq!(h.sim.intents_created(), 1);
}

#[tokio::test]
async fn same_key_different_request_is_422() {
    let h = Harness::new().await;
    assert_eq!(h.post(Some("key-x"), BODY).await.status, 201);
    let other = h
        .post(
            Some("key-x"),
            r#"{"amount": 15001, "currency": "CLP", "order_id": "order-1"}"#,
        )
        .await;
    assert_eq!(other.status, 422);
    assert_eq!(other.error_code(), "idempotency_key_reused");
    assert_eq!(h.sim.intents_created(), 1);
}

#[tokio::test]
async fn fifty_concurrent_requests_with_one_key_create_one_intent() {
    let h = Harness::new().await;
    let answers = join_all((0..50).map(|_| h.post(Some("key-concurrent"), BODY))).await;
    assert_eq!(h.sim.intents_created(), 1);
    let mut ids = std::collections::HashSet::new();
    for a in &answers {
        match a.status {
            201 => {
                ids.insert(a.json["id"].as_str().unwrap().to_string());
            }
            409 => {
                assert_eq!(a.error_code(), "request_in_progress");
                assert!(a.header("retry-after").unwrap().parse::<u64>().unwrap() >= 1);
            }
            other => panic!("unexpected {other}: {}", a.json),
        }
    }
    assert_eq!(ids.len(), 1, "every 201 is the same intent");
    // Once the first finished, a retry is a replay.
    let later = h.post(Some("key-concurrent"), BODY).await;
    assert_eq!(later.status, 201);
    assert!(ids.contains(later.json["id"].as_str().unwrap()));
}

#[tokio::test]
async fn fintoc_500_twice_then_success_is_one_201_and_one_intent() {
    let h = Harness::new().await;
    h.sim.push_fault(Fault::Status { status: 500 });
    h.sim.push_fault(Fault::Status { status: 500 });
    let a = h.post(Some("key-500"), BODY).await;
    assert_eq!(a.status, 201, "{}", a.json);
    assert_eq!(h.sim.api_requests(), 3);
    assert_eq!(h.sim.intents_created(), 1);
}

#[tokio::test]
async fn rate_limit_then_success() {
    let h = Harness::new().await;
    h.sim.push_fault(Fault::RateLimit {
        retry_after_secs: 0,
    });
    let a = h.post(Some("key-429"), BODY).await;
    assert_eq!(a.status, 201);
    assert_eq!(h.sim.intents_created(), 1);
}

#[tokio::test]
async fn fintoc_down_after_retries_is_502_and_the_key_is_released() {
    let h = Harness::new().await;
    for _ in 0..3 {
        h.sim.push_fault(Fault::Status { status: 503 });
    }
    let a = h.post(Some("key-down"), BODY).await;
    assert_eq!(a.status, 502);
    assert_eq!(a.json["error"]["type"], "api_error");
    assert_eq!(a.error_code(), "fintoc_unavailable");
    assert_eq!(h.stored_count().await, 0, "record released, nothing stored");
    assert_eq!(h.released_keys().await, 1);
    let retry = h.post(Some("key-down"), BODY).await;
    assert_eq!(retry.status, 201, "the client's retry runs at once");
    assert_eq!(h.sim.intents_created(), 1);
}

/// Fintoc stores a 5xx under its key and replays it: a retry of the create is
/// sent again under the key first, then under the key's next generation.
#[tokio::test]
async fn a_create_whose_key_holds_a_fintoc_failure_is_made_under_a_new_key() {
    let h = Harness::new().await;
    h.sim.push_fault(Fault::Failure {
        status: 500,
        made: false,
    });
    let a = h.post(Some("key-stored-500"), BODY).await;
    assert_eq!(a.status, 502, "{}", a.json);
    let retry = h.post(Some("key-stored-500"), BODY).await;
    assert_eq!(retry.status, 201, "{}", retry.json);
    assert_eq!(h.sim.intents_created(), 1);
    let again = h.post(Some("key-stored-500"), BODY).await;
    assert_eq!((again.status, &again.json), (201, &retry.json), "replayed");
}

/// A failure Fintoc stored after it made the intent: the intent (whose widget
/// token nobody has) is expired before the new key makes another.
#[tokio::test]
async fn an_intent_made_under_a_failed_key_is_expired_when_the_retry_makes_another() {
    let h = Harness::new().await;
    h.sim.push_fault(Fault::Failure {
        status: 500,
        made: true,
    });
    let a = h.post(Some("key-made-500"), BODY).await;
    assert_eq!(a.status, 502, "{}", a.json);
    assert_eq!(h.sim.intents_created(), 1, "made, and failed");
    let retry = h.post(Some("key-made-500"), BODY).await;
    assert_eq!(retry.status, 201, "{}", retry.json);
    assert_eq!(h.sim.intents_created(), 2);
    let made = retry.json["id"].as_str().unwrap();
    let listed = fintoc_client(&h.sim, fintoc_sim::DEFAULT_SECRET_KEY)
        .list_payment_intents("2000-01-01T00:00:00Z", None)
        .await
        .unwrap();
    let statuses: Vec<(bool, String)> = listed
        .payments
        .iter()
        .map(|p| {
            (
                p.id == made,
                p.status.as_ref().unwrap().as_str().to_string(),
            )
        })
        .collect();
    assert_eq!(statuses.len(), 2, "{statuses:?}");
    assert!(
        statuses.contains(&(false, "expired".into())),
        "{statuses:?}"
    );
    assert!(statuses.contains(&(true, "created".into())), "{statuses:?}");
}

#[tokio::test]
async fn dropped_connection_after_fintoc_created_is_retried_into_the_same_intent() {
    let h = Harness::new().await;
    h.sim.push_fault(Fault::Drop);
    let a = h.post(Some("key-drop"), BODY).await;
    assert_eq!(a.status, 201, "{}", a.json);
    assert_eq!(h.sim.api_requests(), 2);
    assert_eq!(
        h.sim.intents_created(),
        1,
        "the retry was answered by Fintoc's idempotency"
    );
}

#[tokio::test]
async fn timeouts_are_504_then_the_retry_gets_the_intent_fintoc_already_made() {
    let h = Harness::new().await;
    for _ in 0..3 {
        h.sim.push_fault(Fault::Latency { ms: 1_500 });
    }
    let a = h.post(Some("key-slow"), BODY).await;
    assert_eq!(a.status, 504, "{}", a.json);
    assert_eq!(a.error_code(), "fintoc_timeout");
    assert_eq!(h.stored_count().await, 0);
    let retry = h.post(Some("key-slow"), BODY).await;
    assert_eq!(retry.status, 201);
    assert_eq!(h.sim.intents_created(), 1);
}

#[tokio::test]
async fn dynamodb_write_after_fintoc_fails_then_retry_returns_the_same_intent() {
    let h = Harness::new().await;
    h.store.fail_saves.store(1, Ordering::SeqCst);
    let a = h.post(Some("key-lost-write"), BODY).await;
    assert_eq!(a.status, 503);
    assert_eq!(a.error_code(), "storage_unavailable");
    assert_eq!(a.header("retry-after"), Some("1"));
    assert_eq!(h.sim.intents_created(), 1);

    let retry = h.post(Some("key-lost-write"), BODY).await;
    assert_eq!(retry.status, 201);
    assert_eq!(h.sim.intents_created(), 1, "no duplicate at Fintoc");
    let id = retry.json["id"].as_str().unwrap();
    assert!(h.sim.intent(id).is_some());
    assert_eq!(h.get(id).await.status, 200);
}

#[tokio::test]
async fn completion_failure_releases_and_the_retry_completes() {
    let h = Harness::new().await;
    h.store.fail_completes.store(1, Ordering::SeqCst);
    let a = h.post(Some("key-complete"), BODY).await;
    assert_eq!(a.status, 503);
    let retry = h.post(Some("key-complete"), BODY).await;
    assert_eq!(retry.status, 201);
    let replay = h.post(Some("key-complete"), BODY).await;
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(replay.json["id"], retry.json["id"]);
    assert_eq!(h.sim.intents_created(), 1);
}

#[tokio::test]
async fn a_crashed_attempt_blocks_until_its_lease_expires_then_is_taken_over() {
    let h = Harness::new().await;
    let request = shared::domain::create::parse_create_request(
        Some("application/json"),
        BODY.as_bytes(),
        &h.settings.limits,
    )
    .unwrap();
    // A first invocation took the key and reached Fintoc, then died.
    let key = IdempotencyKey::parse(&CallerId::anonymous(), Some("key-crash")).unwrap();
    let taken = h
        .store
        .acquire(&AcquireRequest {
            key: &key,
            request_hash: &request.fingerprint(),
            now_ms: T0_MS,
            lease_expires_at_ms: T0_MS + 30_000,
            expires_at_ms: T0_MS + 86_400_000,
        })
        .await
        .unwrap();
    assert!(matches!(taken, AcquireOutcome::Acquired { .. }));
    let fintoc = fintoc_client(&h.sim, fintoc_sim::DEFAULT_SECRET_KEY);
    let mut metadata = request.metadata.clone();
    metadata.insert("order_id".into(), "order-1".into());
    metadata.insert("deployment_tag".into(), DEPLOYMENT_TAG.into());
    let first = fintoc
        .create_payment_intent(
            &CreatePaymentIntent {
                amount: request.amount,
                currency: request.currency,
                customer_email: request.customer_email.clone(),
                metadata,
                recipient_account: Some(recipient()),
            },
            &derive_fintoc_key("tests", &key),
            None,
        )
        .await
        .unwrap();

    h.clock.advance_ms(10_000);
    let blocked = h.post(Some("key-crash"), BODY).await;
    assert_eq!(blocked.status, 409);
    assert_eq!(blocked.header("retry-after"), Some("20"));

    h.clock.advance_ms(20_001);
    let taken_over = h.post(Some("key-crash"), BODY).await;
    assert_eq!(taken_over.status, 201, "{}", taken_over.json);
    assert_eq!(taken_over.json["id"], first.id.as_str());
    assert_eq!(h.sim.intents_created(), 1);
}

#[tokio::test]
async fn a_different_request_cannot_take_over_an_expired_lease() {
    let h = Harness::new().await;
    h.store
        .acquire(&AcquireRequest {
            key: &IdempotencyKey::parse(&CallerId::anonymous(), Some("key-crash-2")).unwrap(),
            request_hash: "some-other-hash",
            now_ms: T0_MS,
            lease_expires_at_ms: T0_MS + 1_000,
            expires_at_ms: T0_MS + 86_400_000,
        })
        .await
        .unwrap();
    h.clock.advance_ms(5_000);
    let a = h.post(Some("key-crash-2"), BODY).await;
    assert_eq!(a.status, 422);
    assert_eq!(h.sim.api_requests(), 0);
}

#[tokio::test]
async fn an_expired_record_no_longer_replays() {
    let h = Harness::new().await;
    let first = h.post(Some("key-old"), BODY).await;
    assert_eq!(first.status, 201);
    h.clock.advance_ms(86_400_000 + 1_000);
    let other = h
        .post(
            Some("key-old"),
            r#"{"amount": 999, "currency": "CLP", "order_id": "order-2"}"#,
        )
        .await;
    // Our record expired, so the request runs (for another order: order-1's payment
    // is still open, and an expired record's reservation never resumes it); Fintoc
    // still knows the key and refuses different parameters, which is passed on.
    assert_eq!(other.status, 400, "{}", other.json);
    assert_eq!(other.error_code(), "idempotency_key_reused");
}

#[tokio::test]
async fn wrong_fintoc_key_is_502_without_leaking_it() {
    let h = Harness::with(recipient(), "sk_test_wrong_and_secret").await;
    let a = h.post(Some("key-auth"), BODY).await;
    assert_eq!(a.status, 502);
    assert_eq!(a.error_code(), "fintoc_configuration_error");
    assert!(!a.json.to_string().contains("wrong_and_secret"));
    assert_eq!(h.stored_count().await, 0, "record released");
    assert_eq!(h.released_keys().await, 1);
    assert_eq!(h.sim.intents_created(), 0);
}

#[tokio::test]
async fn fintoc_validation_errors_carry_fintocs_code_and_are_replayed() {
    let mut bad = recipient();
    bad.institution_id = "zz_unknown_bank".into();
    let h = Harness::with(bad, fintoc_sim::DEFAULT_SECRET_KEY).await;
    let a = h.post(Some("key-fintoc-400"), BODY).await;
    assert_eq!(a.status, 400, "{}", a.json);
    assert_eq!(a.error_code(), "invalid_institution");
    assert!(a.json["error"]["message"]
        .as_str()
        .unwrap()
        .contains("zz_unknown_bank"));
    assert_eq!(
        a.json["error"]["param"],
        "recipient_account[institution_id]"
    );
    let again = h.post(Some("key-fintoc-400"), BODY).await;
    assert_eq!(again.status, 400);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(h.sim.api_requests(), 1);
}

#[tokio::test]
async fn transient_fintoc_refusals_are_never_stored_and_the_retry_asks_fintoc_again() {
    for status in [408, 409, 423, 425] {
        let h = Harness::new().await;
        for _ in 0..3 {
            h.sim.push_fault(Fault::Status { status });
        }
        let key = format!("key-transient-{status}");
        let a = h.post(Some(&key), BODY).await;
        assert_eq!(a.status, 502, "{status}: {}", a.json);
        assert_eq!(a.error_code(), "fintoc_unavailable");
        assert_eq!(h.sim.api_requests(), 3, "{status} is retried like a 5xx");
        let again = h.post(Some(&key), BODY).await;
        assert_eq!(again.status, 201, "{status}: not replayed: {}", again.json);
        assert_eq!(again.header("idempotent-replayed"), None);
        assert_eq!(h.sim.intents_created(), 1);
    }
}

#[tokio::test]
async fn twenty_keys_racing_for_one_order_create_one_intent() {
    let h = Harness::new().await;
    let keys: Vec<String> = (0..20).map(|i| format!("race-{i}")).collect();
    let answers = join_all(keys.iter().map(|key| h.post(Some(key), BODY))).await;
    let created: Vec<_> = answers.iter().filter(|a| a.status == 201).collect();
    assert_eq!(created.len(), 1, "{answers:?}");
    for a in answers.iter().filter(|a| a.status != 201) {
        assert_eq!(
            (a.status, a.error_code()),
            (409, "order_has_active_intent"),
            "{}",
            a.json
        );
    }
    assert_eq!(h.sim.intents_created(), 1);
    // Later, with the intent open: named in the refusal.
    let later = h.post(Some("race-late"), BODY).await;
    assert_eq!(later.error_code(), "order_has_active_intent");
    let id = created[0].json["id"].as_str().unwrap();
    assert!(later.json["error"]["message"]
        .as_str()
        .unwrap()
        .contains(id));
}

#[tokio::test]
async fn idempotency_keys_are_scoped_to_their_caller() {
    let h = Harness::new().await;
    let alice = "arn:aws:iam::123456789012:role/shop-a";
    let mallory = "arn:aws:iam::123456789012:role/other";
    // Mallory squats a guessable key with another body first: Alice is not blocked.
    let squat = h
        .call(post_as(
            mallory,
            "order-1001",
            r#"{"amount": 1, "currency": "CLP", "order_id": "order-squat"}"#,
        ))
        .await;
    assert_eq!(squat.status, 201);
    let a = h.call(post_as(alice, "order-1001", BODY)).await;
    assert_eq!(a.status, 201, "{}", a.json);
    assert_eq!(a.header("idempotent-replayed"), None);
    // Mallory, knowing Alice's key and body, never gets Alice's replay (nor its
    // widget token): her own key is hers, and Alice's order is taken.
    let m = h.call(post_as(mallory, "order-1001-b", BODY)).await;
    assert_eq!((m.status, m.error_code()), (409, "order_has_active_intent"));
    assert!(m.json.get("widget_token").is_none());
    let m2 = h.call(post_as(mallory, "order-1001", BODY)).await;
    assert_eq!(
        m2.status, 422,
        "Mallory's own key, another body: {}",
        m2.json
    );
    let again = h.call(post_as(alice, "order-1001", BODY)).await;
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.json["id"], a.json["id"]);
    assert_eq!(h.sim.intents_created(), 2);
}

#[tokio::test]
async fn a_key_reused_after_its_record_expired_never_opens_a_second_payment() {
    // The first intent is still pending (transfers stay pending for days); a day
    // later its key is used again: both this backend's record and Fintoc's key are
    // gone. Before, the new request resumed the order under the same key-derived
    // holder and Fintoc made a second intent for it.
    let h = Harness::new().await;
    let first = h.post(Some("order-1-attempt"), BODY).await;
    assert_eq!(first.status, 201, "{}", first.json);
    let day_and_a_minute = 86_400_000 + 60_000;
    h.clock.advance_ms(day_and_a_minute);
    h.sim.advance_clock_ms(day_and_a_minute);
    let again = h.post(Some("order-1-attempt"), BODY).await;
    assert_eq!(
        (again.status, again.error_code()),
        (409, "order_has_active_intent"),
        "{}",
        again.json
    );
    let first_id = first.json["id"].as_str().unwrap();
    assert!(
        again.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains(first_id),
        "it names the open payment: {}",
        again.json
    );
    assert_eq!(
        h.sim.intents_created(),
        1,
        "no second payment for the order"
    );
}

#[tokio::test]
async fn a_role_retrying_under_another_session_name_gets_the_replay() {
    // The same backend, from another host or after its credentials refreshed: the
    // role's session name changes, the caller does not (it was a 409 before).
    let h = Harness::new().await;
    let first = "arn:aws:sts::123456789012:assumed-role/shop-backend/i-0aaa";
    let second = "arn:aws:sts::123456789012:assumed-role/shop-backend/i-0bbb";
    let a = h.call(post_as(first, "k-7f3c9a", BODY)).await;
    assert_eq!(a.status, 201, "{}", a.json);
    let again = h.call(post_as(second, "k-7f3c9a", BODY)).await;
    assert_eq!(again.status, 201, "{}", again.json);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.json["id"], a.json["id"]);
    assert_eq!(again.json["widget_token"], a.json["widget_token"]);
    // Another role is another caller: its own record, and the order is taken.
    let other = "arn:aws:sts::123456789012:assumed-role/reports/i-0aaa";
    let o = h.call(post_as(other, "k-7f3c9a", BODY)).await;
    assert_eq!((o.status, o.error_code()), (409, "order_has_active_intent"));
    assert_eq!(h.sim.intents_created(), 1);
}

#[test]
fn the_caller_is_read_from_the_authorizer_context() {
    use shared::domain::idempotency::CallerId;
    assert_eq!(
        create_intent::caller(&post_as("arn:aws:iam::1:role/r", "k", BODY)),
        CallerId::iam("arn:aws:iam::1:role/r")
    );
    let mut event: serde_json::Value = serde_json::from_str(&http_event_json(
        "POST",
        "/payment-intents",
        "POST /payment-intents",
        json!({"content-type": "application/json"}),
        Some(BODY),
        None,
    ))
    .unwrap();
    event["requestContext"]["authorizer"] = json!({"jwt": {"claims": {"sub": "merchant-server", "iss": "https://idp"}, "scopes": null}});
    let jwt = lambda_http::request::from_str(&event.to_string()).unwrap();
    assert_eq!(
        create_intent::caller(&jwt),
        CallerId::jwt("https://idp", "merchant-server")
    );
    assert_eq!(
        create_intent::caller(&post_request(Some("k"), BODY)),
        CallerId::anonymous()
    );
}

#[tokio::test]
async fn bad_input_is_a_4xx_envelope_and_nothing_is_written() {
    let h = Harness::new().await;
    let huge = format!(
        r#"{{"amount":1,"currency":"CLP","order_id":"{}"}}"#,
        "x".repeat(shared::domain::create::MAX_BODY_BYTES)
    );
    let cases: Vec<(lambda_http::Request, u16, &str)> = vec![
        (post_request(None, BODY), 400, "missing_idempotency_key"),
        (
            post_request(Some("has space"), BODY),
            400,
            "invalid_idempotency_key",
        ),
        (
            post_request(Some(&"k".repeat(256)), BODY),
            400,
            "invalid_idempotency_key",
        ),
        (post_request(Some("k1"), "not json"), 400, "invalid_json"),
        (
            post_request(Some("k2"), r#"{"amount":"1000","currency":"CLP"}"#),
            400,
            "invalid_amount",
        ),
        (
            post_request(Some("k3"), r#"{"amount":10.5,"currency":"CLP"}"#),
            400,
            "invalid_amount",
        ),
        (
            post_request(Some("k4"), r#"{"amount":-1,"currency":"CLP"}"#),
            400,
            "invalid_amount",
        ),
        (
            post_request(Some("k5"), r#"{"amount":0,"currency":"CLP"}"#),
            400,
            "invalid_amount",
        ),
        (
            post_request(Some("k6"), r#"{"currency":"CLP"}"#),
            400,
            "missing_field",
        ),
        (
            post_request(Some("k7"), r#"{"amount":1}"#),
            400,
            "missing_field",
        ),
        (
            post_request(
                Some("k8"),
                r#"{"amount":1,"currency":"CLP","recipient_account":{"number":"1"}}"#,
            ),
            400,
            "forbidden_field",
        ),
        (
            post_request(
                Some("k9"),
                r#"{"amount":1,"currency":"CLP","surprise":true}"#,
            ),
            400,
            "unknown_field",
        ),
        (post_request(Some("k10"), &huge), 413, "body_too_large"),
        (
            post_with_headers(Some("k11"), "text/plain", BODY),
            415,
            "unsupported_media_type",
        ),
        (
            post_request(
                Some("k12"),
                r#"{"amount":5000001,"currency":"CLP","order_id":"o"}"#,
            ),
            422,
            "amount_too_large",
        ),
        (
            post_request(Some("k13"), r#"{"amount":1,"currency":"USD"}"#),
            400,
            "invalid_currency",
        ),
        (
            post_request(Some("k18"), r#"{"amount":1,"currency":"CLP"}"#),
            400,
            "missing_field",
        ),
        (
            post_request(
                Some("k14"),
                r#"{"amount":5000001,"currency":"CLP","amount":7}"#,
            ),
            400,
            "duplicate_key",
        ),
        (
            post_request(
                Some("k15"),
                r#"{"amount":7,"currency":"CLP","metadata":{"a":"1","a":"2"}}"#,
            ),
            400,
            "duplicate_key",
        ),
        (
            post_request(
                Some("k16"),
                r#"{"amount":7,"currency":"CLP","order_id":"o-1","metadata":{"order_id":"o-2"}}"#,
            ),
            400,
            "reserved_metadata_key",
        ),
    ];
    for (request, status, code) in cases {
        let a = h.call(request).await;
        assert_eq!((a.status, a.error_code()), (status, code), "{}", a.json);
    }
    // Input is echoed short: a 12 kB field name comes back cut.
    let long_name = "n".repeat(12 * 1024);
    let a = h
        .post(
            Some("k17"),
            &format!(r#"{{"amount":1,"currency":"CLP","{long_name}":1}}"#),
        )
        .await;
    assert_eq!(a.error_code(), "unknown_field");
    assert!(
        a.json.to_string().len() < 1024,
        "{}",
        a.json.to_string().len()
    );
    assert_eq!(h.item_count().await, 0, "nothing written");
    assert_eq!(h.sim.api_requests(), 0, "Fintoc never called");
}

#[tokio::test]
async fn routes_methods_and_unknown_ids() {
    let h = Harness::new().await;
    let missing = h.get("pi_doesnotexist").await;
    assert_eq!(
        (missing.status, missing.error_code()),
        (404, "resource_not_found")
    );
    let delete = h
        .call(http_event(
            "DELETE",
            "/payment-intents",
            "DELETE /payment-intents",
            json!({}),
            None,
            None,
        ))
        .await;
    assert_eq!(
        (delete.status, delete.error_code()),
        (405, "method_not_allowed")
    );
    assert_eq!(
        delete.header("allow"),
        Some("POST"),
        "RFC 9110: a 405 lists the methods the path allows"
    );
    let trace = h
        .call(http_event(
            "TRACE",
            "/refunds/re_i.pi_1.k0123456789abcdef",
            "TRACE /refunds/{id}",
            json!({}),
            None,
            None,
        ))
        .await;
    assert_eq!((trace.status, trace.header("allow")), (405, Some("GET")));
    let other = h
        .call(http_event(
            "GET",
            "/elsewhere",
            "$default",
            json!({}),
            None,
            None,
        ))
        .await;
    assert_eq!((other.status, other.error_code()), (404, "route_not_found"));
}

#[tokio::test]
async fn dynamodb_unavailable_is_a_retryable_503_before_any_fintoc_call() {
    let h = Harness::new().await;
    let down = shared::store::DynamoStore::new(dynamodb_at("http://127.0.0.1:9"), &h.table);
    let service = shared::app::payments::PaymentService::new(
        down,
        fintoc_client(&h.sim, fintoc_sim::DEFAULT_SECRET_KEY),
        h.clock.clone(),
        h.settings.clone(),
    );
    let a = Answer::from(
        create_intent::handle(&service, post_request(Some("key-ddb-down"), BODY)).await,
    );
    assert_eq!(a.status, 503);
    assert_eq!(a.error_code(), "storage_unavailable");
    assert!(a.header("retry-after").is_some());
    assert_eq!(h.sim.api_requests(), 0);
    let g = Answer::from(create_intent::handle(&service, get_request("pi_x")).await);
    assert_eq!(g.status, 503);
}
