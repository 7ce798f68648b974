//! Checkout sessions through real `lambda_http` requests, on DynamoDB Local and the
//! Fintoc simulator: the same guarantees as the payment-intent flow (idempotent
//! create, one active payment per order across both flows, 4xx with nothing
//! written), the session's events and its payments' events applied exactly once in
//! any order, the final outcome only after a failed attempt, expiry, and the
//! reconciler when webhooks are lost.

use crate::common::*;
use aws_sdk_dynamodb::types::AttributeValue;
use fintoc_sim::{DeliveryMode, Finish};
use futures::future::join_all;
use serde_json::{json, Value};
use shared::app::payments::PaymentService;
use shared::app::reconcile::ReconcileSettings;
use shared::store::DynamoStore;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

const SESSION_BODY: &str = r#"{"amount": 15000, "currency": "CLP", "customer_email": "payer@example.cl", "metadata": {"cart": "c-1"}, "order_id": "order-1"}"#;

fn body_for(order: &str) -> String {
    SESSION_BODY.replace("order-1", order)
}

fn session_post(key: Option<&str>, body: &str) -> lambda_http::Request {
    let mut headers = json!({"content-type": "application/json"});
    if let Some(key) = key {
        headers["idempotency-key"] = json!(key);
    }
    http_event(
        "POST",
        "/checkout-sessions",
        "POST /checkout-sessions",
        headers,
        Some(body),
        None,
    )
}

fn session_get(id: &str) -> lambda_http::Request {
    http_event(
        "GET",
        &format!("/checkout-sessions/{id}"),
        "GET /checkout-sessions/{id}",
        json!({}),
        None,
        Some(json!({"id": id})),
    )
}

fn session_expire(id: &str) -> lambda_http::Request {
    http_event(
        "POST",
        &format!("/checkout-sessions/{id}/expire"),
        "POST /checkout-sessions/{id}/expire",
        json!({}),
        None,
        Some(json!({"id": id})),
    )
}

async fn create(h: &Harness, key: &str, order: &str) -> Answer {
    h.call(session_post(Some(key), &body_for(order))).await
}

async fn created_id(h: &Harness, key: &str, order: &str) -> String {
    let a = create(h, key, order).await;
    assert_eq!(a.status, 201, "{}", a.json);
    a.json["id"].as_str().unwrap().to_string()
}

async fn session_item(h: &Harness, id: &str) -> HashMap<String, AttributeValue> {
    stored_item(&h.dynamodb, &h.table, &format!("SESSION#{id}"))
        .await
        .unwrap_or_else(|| panic!("no item for {id}"))
}

async fn order_state(h: &Harness, order: &str) -> String {
    stored_item(&h.dynamodb, &h.table, &format!("ORDER#{order}"))
        .await
        .unwrap()["state"]
        .as_s()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn a_session_is_created_once_per_key_replayed_and_never_shared_with_the_intent_route() {
    let h = Harness::new().await;
    let first = create(&h, "cs-key", "order-1").await;
    assert_eq!(first.status, 201, "{}", first.json);
    let id = first.json["id"].as_str().unwrap();
    for field in ["session_token", "redirect_url", "expires_at", "created_at"] {
        assert!(first.json[field].is_string(), "{field}: {}", first.json);
    }
    assert_eq!(
        (
            &first.json["status"],
            &first.json["amount"],
            &first.json["currency"],
            &first.json["order_id"]
        ),
        (
            &json!("created"),
            &json!(15000),
            &json!("CLP"),
            &json!("order-1")
        )
    );
    let at_fintoc = h.sim.session(id).unwrap();
    assert_eq!(at_fintoc["success_url"], SUCCESS_URL);
    assert_eq!(at_fintoc["cancel_url"], CANCEL_URL);
    assert_eq!(at_fintoc["metadata"]["deployment_tag"], DEPLOYMENT_TAG);
    assert_eq!(at_fintoc["metadata"]["order_id"], "order-1");
    assert_eq!(
        at_fintoc["payment_method_options"]["bank_transfer"]["recipient_account"]["number"],
        "123456789",
        "the configured recipient"
    );
    assert_eq!(h.sim.last_api_version().as_deref(), Some("2026-02-01"));

    let replay = create(&h, "cs-key", "order-1").await;
    assert_eq!(replay.status, 201);
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(replay.json, first.json);
    assert_eq!(h.sim.sessions_created(), 1);

    let other = h
        .call(session_post(
            Some("cs-key"),
            &SESSION_BODY.replace("15000", "16000"),
        ))
        .await;
    assert_eq!(
        (other.status, other.error_code()),
        (422, "idempotency_key_reused")
    );
    let on_intents = h.post(Some("cs-key"), SESSION_BODY).await;
    assert_eq!(
        (on_intents.status, on_intents.error_code()),
        (422, "idempotency_key_reused"),
        "one key, two routes: never a replay of the other flow's answer"
    );
    assert_eq!(h.sim.intents_created(), 0);
    assert_eq!(
        h.sim.unversioned_requests(),
        0,
        "every request names its version"
    );
}

#[tokio::test]
async fn one_active_payment_per_order_across_both_flows() {
    let h = Harness::new().await;
    let session = created_id(&h, "s-1", "order-both").await;
    let intent = h.post(Some("i-1"), &body_for("order-both")).await;
    assert_eq!(
        (intent.status, intent.error_code()),
        (409, "order_has_active_intent")
    );
    assert!(intent.json["error"]["message"]
        .as_str()
        .unwrap()
        .contains(&session));

    let intent = h.post(Some("i-2"), &body_for("order-other")).await;
    assert_eq!(intent.status, 201);
    assert_eq!(h.sim.last_api_version().as_deref(), Some("2023-11-15"));
    let blocked = create(&h, "s-2", "order-other").await;
    assert_eq!(
        (blocked.status, blocked.error_code()),
        (409, "order_has_active_intent")
    );

    // The merchant expires the session: the order may be paid another way.
    let expired = h.call(session_expire(&session)).await;
    assert_eq!(expired.status, 200, "{}", expired.json);
    assert_eq!(expired.json["status"], "expired");
    assert_eq!(order_state(&h, "order-both").await, "closed");
    assert_eq!(
        h.post(Some("i-3"), &body_for("order-both")).await.status,
        201
    );
}

#[tokio::test]
async fn fifty_concurrent_creates_with_one_key_make_one_session() {
    let h = Harness::new().await;
    let answers = join_all((0..50).map(|_| create(&h, "cs-concurrent", "order-c"))).await;
    let mut ids = std::collections::HashSet::new();
    for a in &answers {
        match a.status {
            201 => {
                ids.insert(a.json["id"].as_str().unwrap().to_string());
            }
            409 => assert_eq!(a.error_code(), "request_in_progress"),
            other => panic!("unexpected {other}: {}", a.json),
        }
    }
    assert_eq!(ids.len(), 1);
    assert_eq!(h.sim.sessions_created(), 1);
}

/// A failure Fintoc stored under a session create's key: the retry is sent again
/// under the key's next generation and makes the session; its reference (what
/// its attempts carry) is still the first key's.
#[tokio::test]
async fn a_session_whose_key_holds_a_fintoc_failure_is_made_under_a_new_key() {
    let h = Harness::new().await;
    h.sim.push_fault(fintoc_sim::Fault::Failure {
        status: 500,
        made: false,
    });
    let failed = create(&h, "cs-stored-500", "order-g").await;
    assert_eq!(failed.status, 502, "{}", failed.json);
    let made = create(&h, "cs-stored-500", "order-g").await;
    assert_eq!(made.status, 201, "{}", made.json);
    assert_eq!(h.sim.sessions_created(), 1);
    let cs = made.json["id"].as_str().unwrap();
    let at_fintoc = h.sim.session(cs).unwrap();
    let reference = at_fintoc["metadata"]["session_ref"].as_str().unwrap();
    let order = stored_item(&h.dynamodb, &h.table, "ORDER#order-g")
        .await
        .expect("the order");
    let opened_by_reference = order
        .iter()
        .find(|(name, _)| name.ends_with(reference))
        .and_then(|(_, v)| v.as_s().ok());
    assert_eq!(
        opened_by_reference.map(String::as_str),
        Some(cs),
        "the order knows the reference the session's attempts carry: {order:?}"
    );
}

#[tokio::test]
async fn a_crashed_attempt_is_taken_over_without_a_second_session_at_fintoc() {
    let h = Harness::new().await;
    h.store.fail_saves.store(1, Ordering::SeqCst);
    let lost = create(&h, "cs-crash", "order-crash").await;
    assert_eq!(
        (lost.status, lost.error_code()),
        (503, "storage_unavailable")
    );
    assert_eq!(h.sim.sessions_created(), 1);
    let retry = create(&h, "cs-crash", "order-crash").await;
    assert_eq!(retry.status, 201, "{}", retry.json);
    assert_eq!(
        h.sim.sessions_created(),
        1,
        "the same session, through the derived key"
    );

    // A request that took its key and died holds it until its lease lapses.
    let request = shared::domain::create::parse_session_request(
        Some("application/json"),
        body_for("order-held").as_bytes(),
        &h.settings.limits,
    )
    .unwrap();
    let key = shared::domain::idempotency::IdempotencyKey::parse(
        &shared::domain::idempotency::CallerId::anonymous(),
        Some("cs-held"),
    )
    .unwrap();
    use shared::store::IdempotencyStore;
    h.store
        .acquire(&shared::domain::idempotency::AcquireRequest {
            key: &key,
            request_hash: &request.fingerprint(),
            now_ms: T0_MS,
            lease_expires_at_ms: T0_MS + 30_000,
            expires_at_ms: T0_MS + 86_400_000,
        })
        .await
        .unwrap();
    let held = create(&h, "cs-held", "order-held").await;
    assert_eq!(
        (held.status, held.error_code()),
        (409, "request_in_progress")
    );
    h.clock.advance_ms(30_001);
    assert_eq!(create(&h, "cs-held", "order-held").await.status, 201);
}

#[tokio::test]
async fn bad_input_is_a_4xx_envelope_and_nothing_is_written() {
    let h = Harness::new().await;
    let cases: Vec<(Option<&str>, String, u16, &str)> = vec![
        (None, SESSION_BODY.into(), 400, "missing_idempotency_key"),
        (Some("k1"), "{".into(), 400, "invalid_json"),
        (
            Some("k2"),
            SESSION_BODY.replace("\"CLP\"", "\"USD\""),
            400,
            "invalid_currency",
        ),
        (
            Some("k3"),
            SESSION_BODY.replace("15000", "-1"),
            400,
            "invalid_amount",
        ),
        (
            Some("k4"),
            SESSION_BODY.replace("\"cart\"", "\"order_id\""),
            400,
            "reserved_metadata_key",
        ),
        (
            Some("k5"),
            SESSION_BODY.replace("{\"amount\"", "{\"widget\": 1, \"amount\""),
            400,
            "unknown_field",
        ),
        (
            Some("k6"),
            SESSION_BODY.replace("{\"amount\"", "{\"recipient_account\": {}, \"amount\""),
            400,
            "forbidden_field",
        ),
        (
            Some("k7"),
            SESSION_BODY.replace(
                "{\"amount\"",
                "{\"success_url\": \"https://evil.example/\", \"amount\"",
            ),
            422,
            "return_url_not_allowed",
        ),
        (
            Some("k8"),
            SESSION_BODY.replace(
                "{\"amount\"",
                "{\"cancel_url\": \"https://evil.example/\", \"amount\"",
            ),
            422,
            "return_url_not_allowed",
        ),
        (
            Some("k9"),
            SESSION_BODY.replace("{\"amount\"", "{\"success_url\": \"a b\", \"amount\""),
            400,
            "invalid_url",
        ),
        (
            Some("k10"),
            SESSION_BODY.replace("{\"amount\"", "{\"success_url\": 7, \"amount\""),
            400,
            "invalid_url",
        ),
        (
            Some("k11"),
            SESSION_BODY.replace("\"order-1\"", "\"\""),
            400,
            "invalid_order_id",
        ),
    ];
    for (key, body, status, code) in cases {
        let a = h.call(session_post(key, &body)).await;
        assert_eq!(
            (a.status, a.error_code()),
            (status, code),
            "{body}: {}",
            a.json
        );
    }
    let wrong_type = h
        .call(http_event(
            "POST",
            "/checkout-sessions",
            "POST /checkout-sessions",
            json!({"content-type": "text/plain", "idempotency-key": "k12"}),
            Some(SESSION_BODY),
            None,
        ))
        .await;
    assert_eq!(wrong_type.status, 415);
    let unknown = h.call(session_get("cs_unknown")).await;
    assert_eq!(
        (unknown.status, unknown.error_code()),
        (404, "resource_not_found")
    );
    let not_a_route = h
        .call(http_event(
            "DELETE",
            "/checkout-sessions/cs_1",
            "$default",
            json!({}),
            None,
            None,
        ))
        .await;
    assert_eq!(not_a_route.status, 405);
    assert_eq!(h.item_count().await, 0);
    assert_eq!(h.sim.sessions_created(), 0);
    // A configured return URL may be named explicitly.
    let explicit = SESSION_BODY.replace(
        "{\"amount\"",
        &format!("{{\"success_url\": \"{SUCCESS_URL}\", \"amount\""),
    );
    assert_eq!(
        h.call(session_post(Some("k13"), &explicit)).await.status,
        201
    );
}

#[tokio::test]
async fn the_flow_is_off_without_its_configuration() {
    let mut h = Harness::new().await;
    h.settings.sessions = None;
    h.service = Arc::new(shared::app::payments::PaymentService::new(
        h.store.clone(),
        fintoc_client(&h.sim, fintoc_sim::DEFAULT_SECRET_KEY),
        h.clock.clone(),
        h.settings.clone(),
    ));
    let a = create(&h, "k", "order-1").await;
    assert_eq!((a.status, a.error_code()), (404, "flow_not_enabled"));
    assert_eq!(h.item_count().await, 0);
}

#[tokio::test]
async fn get_shows_the_status_and_the_outcome_never_a_token() {
    let h = Harness::new().await;
    let id = created_id(&h, "g", "order-g").await;
    let got = h.call(session_get(&id)).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.json["status"], "created");
    assert_eq!(got.json["payment_status"], Value::Null);
    for hidden in ["session_token", "customer_email", "redirect_url"] {
        assert!(got.json.get(hidden).is_none(), "{hidden}: {}", got.json);
    }
    assert_eq!(h.get(&id).await.status, 404, "a session is not an intent");
}

#[tokio::test]
async fn expire_only_while_created() {
    let h = Harness::new().await;
    wire_webhooks(&h).await;
    let id = created_id(&h, "e", "order-e").await;
    let expired = h.call(session_expire(&id)).await;
    assert_eq!(expired.status, 200);
    assert_eq!(
        (&expired.json["status"], &expired.json["payment_status"]),
        (&json!("expired"), &Value::Null)
    );
    let again = h.call(session_expire(&id)).await;
    assert_eq!(
        (again.status, again.error_code()),
        (409, "session_not_expirable")
    );
    // Fintoc's own expired event, when it comes, changes nothing more.
    let settled = h.sim.wait_settled(1).await;
    assert!(settled[0].delivered);
    assert_eq!(session_item(&h, &id).await["version"].as_n().unwrap(), "2");

    let paying = created_id(&h, "e2", "order-e2").await;
    h.sim
        .pay_session(&paying, &Finish::outcome("failed"))
        .unwrap();
    h.sim.wait_settled(2).await;
    let refused = h.call(session_expire(&paying)).await;
    assert_eq!(
        (refused.status, refused.error_code()),
        (409, "session_not_expirable")
    );
}

#[tokio::test]
async fn a_paid_session_duplicated_shuffled_and_through_pending_is_one_outcome() {
    let h = Harness::new().await;
    wire_webhooks(&h).await;
    let id = created_id(&h, "p", "order-p").await;
    let finish = Finish {
        via_pending: true,
        duplicate: true,
        out_of_order: true,
        ..Finish::outcome("succeeded")
    };
    let (attempt, events) = h.sim.pay_session(&id, &finish).unwrap();
    assert_eq!(events.len(), 3, "pending, succeeded, session finished");
    let deliveries = h.sim.wait_settled(6).await;
    assert!(deliveries.iter().all(|d| d.delivered), "{deliveries:?}");
    let got = h.call(session_get(&id)).await;
    assert_eq!(
        (
            &got.json["status"],
            &got.json["payment_status"],
            &got.json["payment_intent_id"]
        ),
        (&json!("finished"), &json!("succeeded"), &json!(attempt))
    );
    let item = session_item(&h, &id).await;
    let applied = item["applied_event_ids"].as_ss().unwrap();
    assert_eq!(applied.len(), 3, "each event once");
    assert_eq!(order_state(&h, "order-p").await, "paid");
    assert!(
        stored_item(&h.dynamodb, &h.table, &format!("INTENT#{attempt}"))
            .await
            .is_none(),
        "the session's payment is recorded on the session, not as an intent of its own"
    );
    let again = h.post(Some("p-again"), &body_for("order-p")).await;
    assert_eq!(
        (again.status, again.error_code()),
        (409, "order_already_paid")
    );
}

#[tokio::test]
async fn a_failed_attempt_then_a_paid_one_in_the_same_session_is_the_final_outcome_only() {
    let h = Harness::new().await;
    wire_webhooks(&h).await;
    let id = created_id(&h, "r", "order-r").await;
    h.sim.pay_session(&id, &Finish::outcome("failed")).unwrap();
    h.sim.wait_settled(1).await;
    let got = h.call(session_get(&id)).await;
    assert_eq!(
        (
            &got.json["status"],
            &got.json["paid"],
            &got.json["payment_status"]
        ),
        (&json!("in_progress"), &json!(false), &json!("failed")),
        "the attempt failed; the payer may still pay: {}",
        got.json
    );
    assert_eq!(order_state(&h, "order-r").await, "open");
    let blocked = h.post(Some("r-intent"), &body_for("order-r")).await;
    assert_eq!(
        blocked.status, 409,
        "the session is still the order's payment"
    );
    let (second, _) = h
        .sim
        .pay_session(&id, &Finish::outcome("succeeded"))
        .unwrap();
    h.sim.wait_settled(3).await;
    let got = h.call(session_get(&id)).await;
    assert_eq!(
        (
            &got.json["status"],
            &got.json["payment_status"],
            &got.json["payment_intent_id"]
        ),
        (&json!("finished"), &json!("succeeded"), &json!(second))
    );
    assert_eq!(got.json["paid"], true);
    assert_eq!(order_state(&h, "order-r").await, "paid");
}

fn session_event(
    event_id: &str,
    event_type: &str,
    session: &str,
    order: &str,
    payment: Value,
) -> String {
    json!({
        "id": event_id, "object": "event", "type": event_type, "mode": "test",
        "created_at": "2026-01-01T00:00:00Z",
        "data": {
            "id": session, "object": "checkout_session", "status": event_type.trim_start_matches("checkout_session."),
            "amount": 15000, "currency": "CLP", "mode": "test",
            "metadata": {"order_id": order, "deployment_tag": DEPLOYMENT_TAG},
            "payment_resource": {"payment_intent": payment}
        }
    })
    .to_string()
}

fn payment_event(event_id: &str, pi: &str, status: &str, order: &str) -> String {
    event_body(event_id, pi, status).replace(&format!("order-{pi}"), order)
}

#[tokio::test]
async fn session_events_alone_concurrent_and_in_both_namings_apply_once() {
    let h = Harness::new().await;
    let service = webhook_service(h.store.inner.clone(), h.clock.clone(), &[WEBHOOK_SECRET]);
    let send = |body: String| {
        let service = &service;
        async move { deliver(service, body.as_bytes(), Some(&signed(&body, T0_MS))).await }
    };
    // `checkout_session.completed` (one guide's name) alone, fifty times at once.
    let a = created_id(&h, "a", "order-a").await;
    let paid = json!({"id": "pi_a", "status": "succeeded", "amount": 15000, "currency": "CLP",
                      "sender_account": {"number": "000012345678"}});
    let completed = session_event("evt_a", "checkout_session.completed", &a, "order-a", paid);
    let answers = join_all((0..50).map(|_| send(completed.clone()))).await;
    assert!(
        answers.iter().all(|x| x.status == 200),
        "{:?}",
        answers.iter().map(|x| &x.json).collect::<Vec<_>>()
    );
    let item = session_item(&h, &a).await;
    assert_eq!(item["status"].as_s().unwrap(), "succeeded");
    assert_eq!(item["version"].as_n().unwrap(), "1");
    assert_eq!(
        item["sender_account"].as_m().unwrap()["number_last4"]
            .as_s()
            .unwrap(),
        "5678"
    );
    assert_eq!(order_state(&h, "order-a").await, "paid");

    // Finished without a succeeded payment: never paid.
    let b = created_id(&h, "b", "order-b").await;
    let failed = json!({"id": "pi_b", "status": "failed", "error_reason": "insufficient_funds"});
    let answer = send(session_event(
        "evt_b",
        "checkout_session.finished",
        &b,
        "order-b",
        failed,
    ))
    .await;
    assert_eq!(answer.json["outcome"], "applied");
    let got = h.call(session_get(&b)).await;
    assert_eq!(
        (&got.json["status"], &got.json["payment_status"]),
        (&json!("finished"), &json!("failed"))
    );
    assert_eq!(order_state(&h, "order-b").await, "closed");

    // A payment event of a session's intent, alone (no session event yet): applied
    // to the session through the order its metadata names.
    let c = created_id(&h, "c", "order-c").await;
    let answer = send(payment_event("evt_c1", "pi_c", "succeeded", "order-c")).await;
    assert_eq!(answer.json["outcome"], "applied", "{}", answer.json);
    let late_failed = send(payment_event("evt_c0", "pi_c0", "failed", "order-c")).await;
    assert_eq!(
        late_failed.json["outcome"], "late",
        "an earlier attempt's failure, after the success"
    );
    assert_eq!(
        session_item(&h, &c).await["status"].as_s().unwrap(),
        "succeeded"
    );
    assert_eq!(order_state(&h, "order-c").await, "paid");

    // Unknown session events are acknowledged and ignored.
    let unknown = send(session_event(
        "evt_u",
        "checkout_session.updated",
        &c,
        "order-c",
        Value::Null,
    ))
    .await;
    assert_eq!(
        (unknown.status, unknown.json["outcome"].as_str()),
        (200, Some("ignored"))
    );
    let expired_after_paid = send(session_event(
        "evt_x",
        "checkout_session.expired",
        &c,
        "order-c",
        Value::Null,
    ))
    .await;
    assert_eq!(
        expired_after_paid.json["outcome"], "anomaly",
        "never unpaid after paid"
    );
    assert_eq!(order_state(&h, "order-c").await, "paid");
}

#[tokio::test]
async fn lost_webhooks_the_reconciler_records_the_sessions_outcome_once() {
    let h = Harness::new().await;
    wire_webhooks(&h).await;
    h.sim.set_delivery_mode(DeliveryMode::Off);
    let paid = created_id(&h, "lost-paid", "order-lost-paid").await;
    let open = created_id(&h, "lost-open", "order-lost-open").await;
    h.sim
        .pay_session(&paid, &Finish::outcome("failed"))
        .unwrap();
    h.sim
        .pay_session(&paid, &Finish::outcome("succeeded"))
        .unwrap();
    let (reconciler, lookups) = reconciler_with(&h, ReconcileSettings::default());
    h.clock.advance_ms(2 * 60_000);
    let summary = reconciler.run(None).await;
    assert_eq!(
        (summary.checked, summary.outcomes_found),
        (2, 1),
        "{summary:?}"
    );
    let got = h.call(session_get(&paid)).await;
    assert_eq!(
        (&got.json["status"], &got.json["payment_status"]),
        (&json!("finished"), &json!("succeeded"))
    );
    let item = session_item(&h, &paid).await;
    assert_eq!(item["decided_by"].as_s().unwrap(), "reconciliation");
    assert!(!item.contains_key("due_at"), "off the index");
    assert_eq!(order_state(&h, "order-lost-paid").await, "paid");
    assert!(
        session_item(&h, &open).await.contains_key("due_at"),
        "still open: checked again later"
    );
    // The session expires at Fintoc (its day passes): the next due check records it.
    h.sim.advance_clock_ms(24 * 3_600_000);
    h.clock.advance_ms(60 * 60_000);
    let summary = reconciler.run(None).await;
    assert_eq!(summary.outcomes_found, 1, "{summary:?}");
    assert_eq!(h.call(session_get(&open)).await.json["status"], "expired");
    assert_eq!(order_state(&h, "order-lost-open").await, "closed");
    let checked: Vec<String> = lookups
        .calls
        .lock()
        .unwrap()
        .iter()
        .map(|(id, _)| id.clone())
        .collect();
    assert_eq!(
        checked.iter().filter(|id| **id == paid).count(),
        1,
        "never checked again once final"
    );
}

#[tokio::test]
async fn a_payment_event_fintoc_sent_without_the_sessions_metadata_never_lands_elsewhere() {
    // Fintoc's docs do not confirm that a session's metadata reaches its payment
    // intent: without it the intent's events cannot be placed (they are kept apart
    // for a human, never stored as an intent), and the session's own event records
    // the outcome once.
    let h = Harness::new().await;
    wire_webhooks(&h).await;
    let id = created_id(&h, "nm", "order-nm").await;
    let finish = Finish {
        without_metadata: true,
        ..Finish::outcome("succeeded")
    };
    let (attempt, _) = h.sim.pay_session(&id, &finish).unwrap();
    let deliveries = h.sim.wait_settled(2).await;
    assert!(deliveries.iter().all(|d| d.delivered), "{deliveries:?}");
    let got = h.call(session_get(&id)).await;
    assert_eq!(
        (&got.json["paid"], &got.json["payment_intent_id"]),
        (&json!(true), &json!(attempt))
    );
    assert_eq!(order_state(&h, "order-nm").await, "paid");
    assert!(
        stored_item(&h.dynamodb, &h.table, &format!("INTENT#{attempt}"))
            .await
            .is_none(),
        "never an intent of its own"
    );
    let item = session_item(&h, &id).await;
    assert_eq!(item["applied_event_ids"].as_ss().unwrap().len(), 1);
}

/// An event of a session's attempt (a payment intent), carrying `metadata` as
/// Fintoc passes the session's on.
fn attempt_event(event_id: &str, pi: &str, status: &str, metadata: &Value) -> String {
    let mut event: Value = serde_json::from_str(&event_body(event_id, pi, status)).unwrap();
    event["data"]["metadata"] = metadata.clone();
    event.to_string()
}

#[tokio::test]
async fn a_late_attempt_of_an_expired_session_stays_on_that_session() {
    // S1 expires (the payer left), the merchant opens S2 for the same order, and
    // then S1's attempt's events arrive (Fintoc retries for about a day). Before,
    // they were applied to whatever session the order pointed at: S2 moved to
    // `in_progress`, could no longer be expired, and could become paid through S1.
    let h = Harness::new().await;
    wire_webhooks(&h).await;
    let s1 = created_id(&h, "late-1", "order-late").await;
    assert_eq!(h.call(session_expire(&s1)).await.status, 200);
    h.sim.wait_settled(1).await;
    let s2 = created_id(&h, "late-2", "order-late").await;
    let s1_metadata = h.sim.session(&s1).unwrap()["metadata"].clone();
    assert!(
        s1_metadata["session_ref"].is_string(),
        "each session's attempts carry its reference: {s1_metadata}"
    );
    let s2_metadata = h.sim.session(&s2).unwrap()["metadata"].clone();
    assert_ne!(s1_metadata["session_ref"], s2_metadata["session_ref"]);
    let service = webhook_service(h.store.inner.clone(), h.clock.clone(), &[WEBHOOK_SECRET]);
    for (event_id, status) in [
        ("evt_late_rejected", "rejected"),
        ("evt_late_paid", "succeeded"),
    ] {
        let body = attempt_event(event_id, "pi_late_attempt", status, &s1_metadata);
        let answer = deliver(&service, body.as_bytes(), Some(&signed(&body, T0_MS))).await;
        assert_eq!(answer.status, 200, "{}", answer.json);
    }
    // S2 is untouched: created, not paid, and the merchant can still expire it.
    let s2_view = h.call(session_get(&s2)).await;
    assert_eq!(
        (&s2_view.json["status"], &s2_view.json["paid"]),
        (&json!("created"), &json!(false)),
        "{}",
        s2_view.json
    );
    assert_eq!(h.call(session_expire(&s2)).await.status, 200);
    // S1 stays expired; its late success is a second payment (issue 34, 10): a
    // record of its own, held for review and refundable in full — a payment taken
    // on an expired session must be refunded.
    let s1_item = session_item(&h, &s1).await;
    assert_eq!(s1_item["status"].as_s().unwrap(), "expired");
    let late = h.get("pi_late_attempt").await;
    assert_eq!(
        (&late.json["needs_review"]["reason"], &late.json["paid"]),
        (&json!("second_payment"), &json!(false)),
        "{}",
        late.json
    );
    assert_ne!(order_state(&h, "order-late").await, "paid");
}

#[tokio::test]
async fn tokens_and_redirect_urls_never_reach_the_payments_tables_stream() {
    // Before, idempotency records (their replayable answers: live widget and
    // session tokens, redirect URLs, valid for hours) were items of the payments
    // table, so every consumer of its stream received them.
    let h = Harness::new().await;
    let records = format!("{}-idempotency", h.table);
    shared::store::create_idempotency_table(&h.dynamodb, &records)
        .await
        .unwrap();
    let store = DynamoStore::new(h.dynamodb.clone(), &h.table).with_idempotency_table(&records);
    let service = PaymentService::new(
        store,
        fintoc_client(&h.sim, fintoc_sim::DEFAULT_SECRET_KEY),
        h.clock.clone(),
        h.settings.clone(),
    );
    let call = |request| create_intent::handle(&service, request);
    let intent = Answer::from(call(post_request(Some("tok-intent"), BODY)).await);
    let session =
        Answer::from(call(session_post(Some("tok-session"), &body_for("order-tok"))).await);
    assert_eq!((intent.status, session.status), (201, 201));
    let secrets = [
        intent.json["widget_token"].as_str().unwrap().to_string(),
        session.json["session_token"].as_str().unwrap().to_string(),
        session.json["redirect_url"].as_str().unwrap().to_string(),
    ];
    let payments = scan_all(&h.dynamodb, &h.table).await;
    assert!(payments
        .iter()
        .all(|i| i["entity"].as_s().unwrap() != "idempotency"));
    let streamed = format!("{payments:?}");
    for secret in &secrets {
        assert!(
            !streamed.contains(secret.as_str()),
            "{secret} in the payments table"
        );
    }
    let kept = scan_all(&h.dynamodb, &records).await;
    assert_eq!(kept.len(), 2, "one record per key, in their own table");
    // The records still replay the answers, tokens included.
    let again = Answer::from(call(post_request(Some("tok-intent"), BODY)).await);
    assert_eq!(again.json, intent.json);
    let again = Answer::from(call(session_post(Some("tok-session"), &body_for("order-tok"))).await);
    assert_eq!(again.json, session.json);
    assert_eq!(h.sim.intents_created() + h.sim.sessions_created(), 2);
    // And the table they live in streams nothing.
    let described = h
        .dynamodb
        .describe_table()
        .table_name(&records)
        .send()
        .await
        .unwrap();
    let stream = described.table().and_then(|t| t.stream_specification());
    assert!(stream.is_none_or(|s| !s.stream_enabled()), "{stream:?}");
}

/// Issue 34 (2, 10): another attempt's success on a session already paid, or
/// after its expiry was recorded, is a second payment — its own record, held for
/// review and refundable in full — never the session's payment.
#[tokio::test]
async fn another_attempts_success_after_a_sessions_outcome_is_a_second_payment() {
    let h = Harness::new().await;
    let service = webhook_service(h.store.inner.clone(), h.clock.clone(), &[WEBHOOK_SECRET]);
    let send = |body: String| {
        let service = &service;
        async move { deliver(service, body.as_bytes(), Some(&signed(&body, T0_MS))).await }
    };
    // Paid by pi_first; then pi_second succeeds too.
    let paid = created_id(&h, "sp-1", "order-sp").await;
    let first = send(payment_event(
        "evt_sp1",
        "pi_first",
        "succeeded",
        "order-sp",
    ))
    .await;
    assert_eq!(first.json["outcome"], "applied", "{}", first.json);
    let second = send(payment_event(
        "evt_sp2",
        "pi_second",
        "succeeded",
        "order-sp",
    ))
    .await;
    assert_eq!(second.status, 200, "{}", second.json);
    let item = session_item(&h, &paid).await;
    assert_eq!(
        item["payment_intent_id"].as_s().unwrap(),
        "pi_first",
        "the attempt that paid the session stays its payment"
    );
    let got = h.call(session_get(&paid)).await;
    assert_eq!(got.json["paid"], true, "{}", got.json);
    let twice = h.get("pi_second").await;
    assert_eq!(twice.status, 200, "{}", twice.json);
    assert_eq!(
        (&twice.json["needs_review"]["reason"], &twice.json["paid"]),
        (&json!("second_payment"), &json!(false)),
        "{}",
        twice.json
    );
    assert_eq!(twice.json["refundable_amount"], 15000, "{}", twice.json);
    assert_eq!(order_state(&h, "order-sp").await, "paid");
    let order = stored_item(&h.dynamodb, &h.table, "ORDER#order-sp")
        .await
        .unwrap();
    assert!(
        format!("{:?}", order.get("anomalies")).contains("pi_second"),
        "an order anomaly: {order:?}"
    );

    // Expired (recorded), then an attempt succeeds: a second payment too.
    let expired = created_id(&h, "sp-2", "order-sx").await;
    let answer = send(session_event(
        "evt_sx",
        "checkout_session.expired",
        &expired,
        "order-sx",
        Value::Null,
    ))
    .await;
    assert_eq!(answer.status, 200, "{}", answer.json);
    let late = send(payment_event("evt_sx2", "pi_late", "succeeded", "order-sx")).await;
    assert_eq!(late.status, 200, "{}", late.json);
    let after = h.call(session_get(&expired)).await;
    assert_eq!(after.json["status"], "expired", "{}", after.json);
    let late_view = h.get("pi_late").await;
    assert_eq!(
        late_view.json["needs_review"]["reason"], "second_payment",
        "{}",
        late_view.json
    );
    assert_eq!(late_view.json["refundable_amount"], 15000);
}
