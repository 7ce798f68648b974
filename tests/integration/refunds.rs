//! Refunds through real `lambda_http` requests, on DynamoDB Local and the simulator:
//! never more than was paid (50 concurrent partial refunds), replayed per key,
//! refusals that write and send nothing, outcomes from signed `refund.*` events
//! (duplicated and reordered), a failed or canceled refund freeing its amount once,
//! a session's refund going to the attempt that paid it, and a refund made outside
//! the API imported.

use crate::common::*;
use fintoc_sim::{Finish, Settle};
use futures::stream::{self, StreamExt};
use serde_json::{json, Value};

fn post(path: &str, route: &str, key: Option<&str>, body: &str, id: &str) -> lambda_http::Request {
    let mut headers = json!({"content-type": "application/json"});
    if let Some(key) = key {
        headers["idempotency-key"] = json!(key);
    }
    http_event(
        "POST",
        path,
        route,
        headers,
        Some(body),
        Some(json!({"id": id})),
    )
}

fn get_refund(id: &str) -> lambda_http::Request {
    http_event(
        "GET",
        &format!("/refunds/{id}"),
        "GET /refunds/{id}",
        json!({}),
        None,
        Some(json!({"id": id})),
    )
}

fn cancel(id: &str) -> lambda_http::Request {
    post(
        &format!("/refunds/{id}/cancel"),
        "POST /refunds/{id}/cancel",
        None,
        "",
        id,
    )
}

fn order_body(order: &str) -> String {
    json!({"amount": 15000, "currency": "CLP", "order_id": order}).to_string()
}

/// A payment intent of 15000 CLP, paid (its webhook recorded).
async fn paid_intent(h: &Harness, order: &str) -> String {
    let created = h
        .post(Some(&format!("create-{order}")), &order_body(order))
        .await;
    assert_eq!(created.status, 201, "{}", created.json);
    let id = created.json["id"].as_str().unwrap().to_string();
    let before = h.sim.deliveries().len();
    h.sim.finish(&id, &Finish::outcome("succeeded")).unwrap();
    h.sim.wait_settled(before + 1).await;
    let view = h.get(&id).await;
    assert_eq!(view.json["paid"], true, "{}", view.json);
    id
}

#[tokio::test]
async fn a_payment_is_refunded_in_part_then_the_rest_and_never_more() {
    let h = Harness::new().await;
    wire_webhooks(&h).await;
    let pi = paid_intent(&h, "order-r1").await;

    let first = h
        .call(refund_of(
            &pi,
            "rf-1",
            r#"{"amount": 5000, "metadata": {"reason": "returned"}}"#,
        ))
        .await;
    assert_eq!(first.status, 201, "{}", first.json);
    assert_eq!(
        (
            &first.json["amount"],
            &first.json["status"],
            &first.json["payment_id"],
            &first.json["currency"]
        ),
        (&json!(5000), &json!("pending"), &json!(pi), &json!("CLP"))
    );
    let fintoc_id = first.json["fintoc_refund_id"].as_str().unwrap().to_string();
    let at_fintoc = h.sim.refund(&fintoc_id).unwrap();
    assert_eq!(
        (&at_fintoc["resource_id"], &at_fintoc["amount"]),
        (&json!(pi), &json!(5000))
    );
    assert_eq!(at_fintoc["metadata"]["reason"], "returned");
    assert_eq!(at_fintoc["metadata"]["backend_refund_id"], first.json["id"]);

    let replay = h
        .call(refund_of(
            &pi,
            "rf-1",
            r#"{"amount": 5000, "metadata": {"reason": "returned"}}"#,
        ))
        .await;
    assert_eq!((replay.status, &replay.json), (201, &first.json));
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    let reused = h.call(refund_of(&pi, "rf-1", r#"{"amount": 4000}"#)).await;
    assert_eq!(
        (reused.status, reused.error_code()),
        (422, "idempotency_key_reused")
    );

    let too_much = h.call(refund_of(&pi, "rf-2", r#"{"amount": 10001}"#)).await;
    assert_eq!(
        (too_much.status, too_much.error_code()),
        (409, "refund_exceeds_refundable")
    );
    assert!(
        too_much.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("10000"),
        "{}",
        too_much.json
    );

    let rest = h.call(refund_of(&pi, "rf-3", "")).await;
    assert_eq!(
        (rest.status, &rest.json["amount"]),
        (201, &json!(10000)),
        "{}",
        rest.json
    );
    let none_left = h.call(refund_of(&pi, "rf-4", r#"{"amount": 1}"#)).await;
    assert_eq!(
        (none_left.status, none_left.error_code()),
        (409, "refund_exceeds_refundable")
    );
    assert_eq!(h.sim.refunds().len(), 2, "refusals never reach Fintoc");

    // Outcomes come by signed events, duplicated and out of order.
    settle(
        &h,
        &fintoc_id,
        Settle {
            duplicate: true,
            out_of_order: true,
            ..settle_as("succeeded")
        },
    )
    .await;
    let rest_fintoc = rest.json["fintoc_refund_id"].as_str().unwrap().to_string();
    settle(
        &h,
        &rest_fintoc,
        Settle {
            duplicate: true,
            ..settle_as("failed")
        },
    )
    .await;
    let view = h.get(&pi).await;
    assert_eq!(
        (
            &view.json["refunded_amount"],
            &view.json["refundable_amount"]
        ),
        (&json!(5000), &json!(10000)),
        "the failed refund freed its amount, once: {}",
        view.json
    );
    let mut statuses: Vec<(&Value, &Value)> = view.json["refunds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (&r["amount"], &r["status"]))
        .collect();
    statuses.sort_by_key(|(amount, _)| amount.as_u64());
    assert_eq!(
        statuses,
        [
            (&json!(5000), &json!("succeeded")),
            (&json!(10000), &json!("failed"))
        ]
    );
    // Each outcome recorded once (the stream filter's item), the order's refunded
    // amount counting the succeeded one only.
    let outcomes: Vec<_> = scan_all(&h.dynamodb, &h.table)
        .await
        .into_iter()
        .filter(|i| {
            i.get("entity")
                .and_then(|v| v.as_s().ok())
                .map(String::as_str)
                == Some("refund_outcome")
        })
        .collect();
    let mut recorded: Vec<(String, String)> = outcomes
        .iter()
        .map(|i| {
            (
                i["status"].as_s().unwrap().clone(),
                i["amount"].as_n().unwrap().clone(),
            )
        })
        .collect();
    recorded.sort();
    assert_eq!(
        recorded,
        [
            ("failed".to_string(), "10000".to_string()),
            ("succeeded".to_string(), "5000".to_string())
        ]
    );
    let order = stored_item(&h.dynamodb, &h.table, "ORDER#order-r1")
        .await
        .unwrap();
    assert_eq!(order["refunded_amount"].as_n().unwrap(), "5000");
    let failed = h.call(get_refund(rest.json["id"].as_str().unwrap())).await;
    assert_eq!(
        (&failed.json["status"], &failed.json["failure_code"]),
        (&json!("failed"), &json!("insufficient_funds"))
    );
    assert_eq!(
        h.call(get_refund("re_i.pi_nope.k0123456789abcdef"))
            .await
            .status,
        404
    );
    assert_eq!(h.call(get_refund("not-a-refund")).await.status, 404);
}

#[tokio::test]
async fn fifty_concurrent_partial_refunds_never_reserve_more_than_was_paid() {
    let h = Harness::new().await;
    wire_webhooks(&h).await;
    let pi = paid_intent(&h, "order-r50").await;
    let answers: Vec<Answer> = stream::iter(0..50)
        .map(|i| {
            let h = &h;
            let pi = pi.clone();
            async move {
                h.call(refund_of(&pi, &format!("c-{i}"), r#"{"amount": 1000}"#))
                    .await
            }
        })
        .buffer_unordered(50)
        .collect()
        .await;
    let made = answers.iter().filter(|a| a.status == 201).count();
    let refused: Vec<&str> = answers
        .iter()
        .filter(|a| a.status != 201)
        .map(Answer::error_code)
        .collect();
    assert_eq!(made, 15, "15 × 1000 = what was paid");
    assert!(
        refused.iter().all(|c| *c == "refund_exceeds_refundable"),
        "{refused:?}"
    );
    let at_fintoc: u64 = h
        .sim
        .refunds()
        .iter()
        .map(|r| r["amount"].as_u64().unwrap())
        .sum();
    assert_eq!((h.sim.refunds().len(), at_fintoc), (15, 15_000));
    let view = h.get(&pi).await;
    assert_eq!(view.json["refundable_amount"], 0);
}

#[tokio::test]
async fn refusals_write_nothing_and_send_nothing_to_fintoc() {
    let h = Harness::new().await;
    let created = h.post(Some("unpaid"), &order_body("order-unpaid")).await;
    let unpaid = created.json["id"].as_str().unwrap().to_string();
    let before = scan_all(&h.dynamodb, &h.table).await;
    let not_paid = h
        .call(refund_of(&unpaid, "u-1", r#"{"amount": 100}"#))
        .await;
    assert_eq!(
        (not_paid.status, not_paid.error_code()),
        (409, "payment_not_refundable")
    );
    assert_eq!(
        h.call(refund_of("pi_unknown", "u-2", "{}")).await.status,
        404
    );
    for bad in [
        r#"{"amount": 0}"#,
        r#"{"amount": -5}"#,
        r#"{"amount": 1.5}"#,
        r#"{"amount": "100"}"#,
        r#"{"other": 1}"#,
        r#"{"metadata": {"backend_refund_id": "x"}}"#,
    ] {
        let answer = h.call(refund_of(&unpaid, "u-3", bad)).await;
        assert_eq!(answer.status, 400, "{bad}: {}", answer.json);
    }
    assert_eq!(
        scan_all(&h.dynamodb, &h.table).await,
        before,
        "nothing written"
    );
    assert!(h.sim.refunds().is_empty(), "nothing sent to Fintoc");
}

#[tokio::test]
async fn a_pending_refund_is_canceled_once_and_frees_its_amount() {
    let h = Harness::new().await;
    wire_webhooks(&h).await;
    let pi = paid_intent(&h, "order-c").await;
    let made = h.call(refund_of(&pi, "c-1", r#"{"amount": 15000}"#)).await;
    let id = made.json["id"].as_str().unwrap().to_string();
    assert_eq!(h.get(&pi).await.json["refundable_amount"], 0);
    let canceled = h.call(cancel(&id)).await;
    assert_eq!(
        (canceled.status, &canceled.json["status"]),
        (200, &json!("canceled")),
        "{}",
        canceled.json
    );
    let again = h.call(cancel(&id)).await;
    assert_eq!(
        (again.status, &again.json["status"]),
        (200, &json!("canceled"))
    );
    assert_eq!(
        h.get(&pi).await.json["refundable_amount"],
        15000,
        "freed once"
    );

    let second = h.call(refund_of(&pi, "c-2", "")).await;
    let fintoc_id = second.json["fintoc_refund_id"]
        .as_str()
        .unwrap()
        .to_string();
    settle(&h, &fintoc_id, settle_as("in_progress")).await;
    let late = h.call(cancel(second.json["id"].as_str().unwrap())).await;
    assert_eq!(
        (late.status, late.error_code()),
        (409, "refund_not_cancelable")
    );
}

#[tokio::test]
async fn canceling_a_refund_fintoc_does_not_know_is_a_502_that_changes_nothing() {
    let h = Harness::new().await;
    wire_webhooks(&h).await;
    let pi = paid_intent(&h, "order-cu").await;
    let made = h.call(refund_of(&pi, "cu-1", r#"{"amount": 5000}"#)).await;
    let id = made.json["id"].as_str().unwrap().to_string();
    // The stored refund names a Fintoc id Fintoc does not know (another account's
    // key, or Fintoc lost it): Fintoc answers the cancel with 404.
    let key = id.rsplit('.').next().unwrap();
    h.dynamodb
        .update_item()
        .table_name(&h.table)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("INTENT#{pi}")),
        )
        .update_expression("SET refunds.#k.fintoc_id = :unknown")
        .expression_attribute_names("#k", key)
        .expression_attribute_values(
            ":unknown",
            aws_sdk_dynamodb::types::AttributeValue::S("re_unknown_at_fintoc".into()),
        )
        .send()
        .await
        .unwrap();
    let before = stored_item(&h.dynamodb, &h.table, &format!("INTENT#{pi}")).await;
    let canceled = h.call(cancel(&id)).await;
    assert_eq!(
        (
            canceled.status,
            canceled.json["error"]["type"].as_str(),
            canceled.error_code()
        ),
        (502, Some("api_error"), "fintoc_refund_unknown"),
        "{}",
        canceled.json
    );
    assert_eq!(
        stored_item(&h.dynamodb, &h.table, &format!("INTENT#{pi}")).await,
        before,
        "nothing written"
    );
}

#[tokio::test]
async fn a_sessions_refund_goes_to_the_attempt_that_paid_it() {
    let h = Harness::new().await;
    wire_webhooks(&h).await;
    let created = h
        .call(http_event(
            "POST",
            "/checkout-sessions",
            "POST /checkout-sessions",
            json!({"content-type": "application/json", "idempotency-key": "s-1"}),
            Some(&order_body("order-s")),
            None,
        ))
        .await;
    assert_eq!(created.status, 201, "{}", created.json);
    let cs = created.json["id"].as_str().unwrap().to_string();
    h.sim.pay_session(&cs, &Finish::outcome("failed")).unwrap();
    let (paying, events) = h
        .sim
        .pay_session(&cs, &Finish::outcome("succeeded"))
        .unwrap();
    h.sim.wait_settled(1 + events.len()).await;
    let refund = h
        .call(post(
            &format!("/checkout-sessions/{cs}/refunds"),
            "POST /checkout-sessions/{id}/refunds",
            Some("s-r"),
            r#"{"amount": 2500}"#,
            &cs,
        ))
        .await;
    assert_eq!(refund.status, 201, "{}", refund.json);
    assert_eq!(refund.json["payment_id"], cs);
    let at_fintoc = h
        .sim
        .refund(refund.json["fintoc_refund_id"].as_str().unwrap())
        .unwrap();
    assert_eq!(at_fintoc["resource_id"], paying, "the attempt that paid");
    let fintoc_id = at_fintoc["id"].as_str().unwrap().to_string();
    settle(&h, &fintoc_id, settle_as("succeeded")).await;
    let view = h
        .call(http_event(
            "GET",
            &format!("/checkout-sessions/{cs}"),
            "GET /checkout-sessions/{id}",
            json!({}),
            None,
            Some(json!({"id": cs})),
        ))
        .await;
    assert_eq!(
        (
            &view.json["refunded_amount"],
            &view.json["refundable_amount"]
        ),
        (&json!(2500), &json!(12500)),
        "{}",
        view.json
    );
}

#[tokio::test]
async fn a_refund_made_outside_the_api_is_imported_from_its_event() {
    let h = Harness::new().await;
    wire_webhooks(&h).await;
    let pi = paid_intent(&h, "order-x").await;
    // Made at Fintoc directly (its dashboard): no id of this backend's.
    let elsewhere = refund_elsewhere(&h, &pi, 4000, "d-1").await;
    settle(
        &h,
        &elsewhere,
        Settle {
            duplicate: true,
            ..settle_as("succeeded")
        },
    )
    .await;
    let view = h.get(&pi).await;
    assert_eq!(
        (
            &view.json["refunded_amount"],
            &view.json["refundable_amount"]
        ),
        (&json!(4000), &json!(11000)),
        "{}",
        view.json
    );
    assert_eq!(view.json["refunds"][0]["origin"], "imported");
    let over = h.call(refund_of(&pi, "x-1", r#"{"amount": 11001}"#)).await;
    assert_eq!(over.error_code(), "refund_exceeds_refundable");
}

#[tokio::test]
async fn refund_webhooks_all_lost_the_reconciler_records_the_outcome_and_lets_go() {
    use shared::app::reconcile::ReconcileSettings;
    let h = Harness::new().await;
    wire_webhooks(&h).await;
    let pi = paid_intent(&h, "order-lost-refund").await;
    let stored = stored_item(&h.dynamodb, &h.table, &format!("INTENT#{pi}"))
        .await
        .unwrap();
    assert!(!stored.contains_key("due_at"), "paid: off the index");
    h.sim.set_delivery_mode(fintoc_sim::DeliveryMode::Off);
    let made = h
        .call(refund_of(&pi, "lost-1", r#"{"amount": 3000}"#))
        .await;
    assert_eq!(made.status, 201, "{}", made.json);
    let fintoc_id = made.json["fintoc_refund_id"].as_str().unwrap().to_string();
    h.sim
        .settle_refund(&fintoc_id, &settle_as("failed"))
        .unwrap();

    let (reconciler, _) = reconciler_with(&h, ReconcileSettings::default());
    let early = reconciler.run(None).await;
    assert_eq!(early.checked, 0, "not due yet: {early:?}");
    h.clock
        .advance_ms(h.settings.first_check_after.as_millis() as i64);
    let summary = reconciler.run(None).await;
    assert_eq!(
        (summary.checked, summary.refunds_recorded),
        (1, 1),
        "{summary:?}"
    );
    let refund = h.call(get_refund(made.json["id"].as_str().unwrap())).await;
    assert_eq!(
        (&refund.json["status"], &refund.json["failure_code"]),
        (&json!("failed"), &json!("insufficient_funds"))
    );
    assert_eq!(
        h.get(&pi).await.json["refundable_amount"],
        15000,
        "released once"
    );
    let stored = stored_item(&h.dynamodb, &h.table, &format!("INTENT#{pi}"))
        .await
        .unwrap();
    assert!(
        !stored.contains_key("due_at"),
        "no open refund: off the index again"
    );
    h.clock.advance_ms(24 * 3_600_000);
    assert_eq!(
        reconciler.run(None).await.checked,
        0,
        "nothing more to check"
    );
}

#[tokio::test]
async fn a_refund_short_of_balance_is_retried_five_business_days_then_fails_and_frees_its_amount() {
    let h = Harness::new().await;
    let webhook_clock = shared::clock::ManualClock::new(h.sim.now_ms());
    wire_webhooks_at(&h, webhook_clock.clone()).await;
    let pi = paid_intent(&h, "order-short").await;
    let made = h
        .call(refund_of(&pi, "short-1", r#"{"amount": 15000}"#))
        .await;
    let fintoc_id = made.json["fintoc_refund_id"].as_str().unwrap().to_string();
    settle(&h, &fintoc_id, settle_as("insufficient_balance")).await;
    let id = made.json["id"].as_str().unwrap().to_string();
    assert_eq!(h.call(get_refund(&id)).await.json["status"], "in_progress");
    const DAY: i64 = 86_400_000;
    let before = h.sim.deliveries().len();
    webhook_clock.advance_ms(4 * DAY);
    h.sim.advance_clock_ms(4 * DAY);
    assert_eq!(h.sim.deliveries().len(), before, "still retried by Fintoc");
    assert_eq!(h.get(&pi).await.json["refundable_amount"], 0, "still held");
    webhook_clock.advance_ms(4 * DAY);
    h.sim.advance_clock_ms(4 * DAY); // past 5 business days, whatever the weekday
    h.sim.wait_settled(before + 1).await;
    let failed = h.call(get_refund(&id)).await;
    assert_eq!(
        (&failed.json["status"], &failed.json["failure_code"]),
        (&json!("failed"), &json!("insufficient_funds"))
    );
    assert_eq!(
        h.get(&pi).await.json["refundable_amount"],
        15000,
        "freed once"
    );
}

/// A refund made at Fintoc directly (its dashboard), under a key of its own.
async fn refund_elsewhere(h: &Harness, pi: &str, amount: u64, key: &str) -> String {
    refund_at_fintoc(h, pi, amount, key, Default::default()).await
}

/// A refund of `pi` made at Fintoc directly, under `key`, with `metadata`: its id.
async fn refund_at_fintoc(
    h: &Harness,
    pi: &str,
    amount: u64,
    key: &str,
    metadata: std::collections::BTreeMap<String, String>,
) -> String {
    use shared::domain::idempotency::{derive_fintoc_key, CallerId, IdempotencyKey};
    use shared::fintoc::{CreateRefund, FintocRefunds};
    fintoc_client(&h.sim, fintoc_sim::DEFAULT_SECRET_KEY)
        .create_refund(
            &CreateRefund {
                resource_type: "payment_intent",
                resource_id: pi.to_string(),
                amount,
                metadata,
            },
            &derive_fintoc_key(
                "dashboard",
                &IdempotencyKey::parse(&CallerId::anonymous(), Some(key)).unwrap(),
            ),
            None,
        )
        .await
        .unwrap()
        .id
}

#[tokio::test]
async fn refunds_made_elsewhere_whose_events_were_lost_are_imported_by_the_sweep_once() {
    use fintoc_sim::Fault;
    use shared::app::reconcile::ReconcileSettings;
    let h = Harness::new().await;
    wire_webhooks(&h).await;
    let pi = paid_intent(&h, "order-swept").await;
    h.sim.set_delivery_mode(fintoc_sim::DeliveryMode::Off);
    let elsewhere = refund_elsewhere(&h, &pi, 4000, "sweep-1").await;
    h.sim
        .settle_refund(&elsewhere, &settle_as("succeeded"))
        .unwrap();
    assert_eq!(
        h.get(&pi).await.json["refundable_amount"],
        15000,
        "no event arrived"
    );

    let (reconciler, _) = reconciler_with(&h, ReconcileSettings::default());
    let swept = reconciler.run(None).await;
    assert_eq!(
        (swept.refunds_imported, swept.refund_anomalies, swept.failed),
        (1, 0, 0),
        "{swept:?}"
    );
    let view = h.get(&pi).await.json;
    assert_eq!(
        (&view["refunded_amount"], &view["refundable_amount"]),
        (&json!(4000), &json!(11000)),
        "{view}"
    );
    assert_eq!(
        (&view["refunds"][0]["origin"], &view["refunds"][0]["status"]),
        (&json!("imported"), &json!("succeeded"))
    );
    let cursor = stored_item(&h.dynamodb, &h.table, "REFUND_SWEEP")
        .await
        .expect("the sweep keeps its cursor");
    assert!(cursor.contains_key("since"), "{cursor:?}");
    let usage_before = h.store.inner.usage();
    let again = reconciler.run(None).await;
    assert_eq!(
        (again.refunds_imported, again.refund_anomalies, again.failed),
        (0, 0, 0),
        "read again, changes nothing: {again:?}"
    );
    // The sweep's cost, pinned: the shards' queries (16), its cursor read and
    // moved (1 + 1), and the payment of the one refund made elsewhere in its
    // window read (1): nothing written for it.
    let usage = h.store.inner.usage() - usage_before;
    assert_eq!(
        (usage.read_requests, usage.write_requests),
        (16 + 1 + 1, 1),
        "{usage:?}"
    );
    assert_eq!(h.get(&pi).await.json["refunded_amount"], 4000);

    // This backend's own refund of the rest is held while Fintoc cannot be reached;
    // a refund made elsewhere meanwhile (Fintoc does not know ours yet) does not fit.
    for _ in 0..3 {
        h.sim.push_fault(Fault::Status { status: 503 });
    }
    let ours = h
        .call(refund_of(&pi, "rest-1", r#"{"amount": 11000}"#))
        .await;
    assert_eq!(ours.status, 502, "{}", ours.json);
    // Not an anomaly while ours awaits Fintoc's answer (issue 34, 9): it waits.
    let beyond = refund_elsewhere(&h, &pi, 5000, "sweep-2").await;
    let waiting = reconciler.run(None).await;
    assert_eq!(
        (waiting.refund_anomalies, waiting.refunds_imported),
        (0, 0),
        "{waiting:?}"
    );
    let view = h.get(&pi).await.json;
    assert_eq!(view["refundable_amount"], 0, "{view}");
    assert!(
        !view["refunds"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["fintoc_refund_id"] == json!(beyond)),
        "a refund beyond what is refundable is never imported: {view}"
    );
}

#[tokio::test]
async fn a_refund_event_of_the_other_mode_is_kept_apart_never_applied() {
    let h = Harness::new().await;
    wire_webhooks(&h).await;
    let pi = paid_intent(&h, "order-mode").await;
    let made = h.call(refund_of(&pi, "m-1", r#"{"amount": 6000}"#)).await;
    assert_eq!(made.status, 201, "{}", made.json);
    let fintoc_id = made.json["fintoc_refund_id"].as_str().unwrap();
    let webhook = webhook_service(h.store.inner.clone(), h.clock.clone(), &[WEBHOOK_SECRET]);
    // A signed event naming this refund, from the other mode: it is not this
    // deployment's (a live key's event about a test payment), whatever it claims.
    let body = json!({
        "id": "evt_live_refund", "object": "event", "type": "refund.failed", "mode": "live",
        "created_at": "2026-01-01T00:00:00Z",
        "data": {
            "id": fintoc_id, "object": "refund", "amount": 6000, "currency": "CLP",
            "status": "failed", "failure_code": "insufficient_funds", "mode": "live",
            "resource_type": "payment_intent", "resource_id": pi,
            "metadata": {"backend_refund_id": made.json["id"]},
        }
    })
    .to_string();
    let answer = deliver(
        &webhook,
        body.as_bytes(),
        Some(&signed(&body, shared::clock::Clock::now_ms(&h.clock))),
    )
    .await;
    assert_eq!(
        (answer.status, &answer.json["outcome"]),
        (200, &json!("kept_apart")),
        "{}",
        answer.json
    );
    let view = h.get(&pi).await.json;
    assert_eq!(
        (&view["refunds"][0]["status"], &view["refundable_amount"]),
        (&json!("pending"), &json!(9000)),
        "not applied, nothing released: {view}"
    );
    let kept = stored_item(&h.dynamodb, &h.table, "FOREIGN_EVENT#evt_live_refund")
        .await
        .expect("kept apart");
    assert_eq!(kept["reason"].as_s().unwrap(), "mode_mismatch");
}

#[tokio::test]
async fn a_refund_whose_create_failed_is_never_sent_after_fintocs_key_may_be_purged_and_is_released(
) {
    use fintoc_sim::Fault;
    use shared::app::reconcile::ReconcileSettings;
    let h = Harness::new().await;
    wire_webhooks(&h).await;
    let pi = paid_intent(&h, "order-purge").await;
    for _ in 0..3 {
        h.sim.push_fault(Fault::Status { status: 503 });
    }
    let failed = h
        .call(refund_of(&pi, "purge-1", r#"{"amount": 5000}"#))
        .await;
    assert_eq!(failed.status, 502, "{}", failed.json);
    assert_eq!(
        h.get(&pi).await.json["refundable_amount"],
        10000,
        "held while unknown"
    );

    // A day later Fintoc may have forgotten the derived key: the merchant's retry
    // must not send the create again (it could make a second refund).
    h.clock.advance_ms(24 * 3_600_000);
    let requests = h.sim.api_requests();
    let late = h
        .call(refund_of(&pi, "purge-1", r#"{"amount": 5000}"#))
        .await;
    assert_eq!(
        (late.status, &late.json["status"]),
        (201, &json!("creating")),
        "{}",
        late.json
    );
    assert_eq!(h.sim.api_requests(), requests, "nothing sent to Fintoc");

    // The reconciler finds it in no page of Fintoc's list: never made, released.
    h.clock.advance_ms(3_600_000);
    let (reconciler, _) = reconciler_with(
        &h,
        ReconcileSettings {
            sweep_refunds: false,
            ..ReconcileSettings::default()
        },
    );
    let summary = reconciler.run(None).await;
    assert_eq!(
        (summary.checked, summary.refunds_recorded),
        (1, 1),
        "{summary:?}"
    );
    let view = h.get(&pi).await.json;
    assert_eq!(
        (&view["refundable_amount"], &view["refunds"]),
        (&json!(15000), &json!([])),
        "{view}"
    );
    // A new attempt is a new refund at Fintoc.
    let again = h
        .call(refund_of(&pi, "purge-2", r#"{"amount": 5000}"#))
        .await;
    assert_eq!(
        (again.status, &again.json["status"]),
        (201, &json!("pending")),
        "{}",
        again.json
    );
}

#[tokio::test]
async fn a_second_payment_kept_as_an_anomaly_is_refunded_in_full_and_its_order_untouched() {
    let h = Harness::new().await;
    wire_webhooks(&h).await;
    let order = "order-twice";
    let first = paid_intent(&h, order).await;
    // A second intent for the same order, made at Fintoc outside this API (it
    // should never happen) and paid: recorded, refused by its order, kept for review.
    use shared::domain::idempotency::{derive_fintoc_key, CallerId, IdempotencyKey};
    use shared::fintoc::{CreatePaymentIntent, FintocApi};
    let second = fintoc_client(&h.sim, fintoc_sim::DEFAULT_SECRET_KEY)
        .create_payment_intent(
            &CreatePaymentIntent {
                amount: 15000,
                currency: shared::domain::money::Currency::Clp,
                customer_email: None,
                metadata: [
                    ("order_id".to_string(), order.to_string()),
                    ("deployment_tag".to_string(), DEPLOYMENT_TAG.to_string()),
                ]
                .into(),
                recipient_account: None,
            },
            &derive_fintoc_key(
                "elsewhere",
                &IdempotencyKey::parse(&CallerId::anonymous(), Some("twice-2")).unwrap(),
            ),
            None,
        )
        .await
        .unwrap()
        .id;
    let before = h.sim.deliveries().len();
    h.sim
        .finish(&second, &Finish::outcome("succeeded"))
        .unwrap();
    h.sim.wait_settled(before + 1).await;
    let view = h.get(&second).await.json;
    assert_eq!(
        (
            &view["status"],
            &view["paid"],
            &view["needs_review"]["reason"]
        ),
        (&json!("succeeded"), &json!(false), &json!("second_payment")),
        "{view}"
    );

    let refund = h.call(refund_of(&second, "anomaly-1", "")).await;
    assert_eq!(
        (refund.status, &refund.json["amount"]),
        (201, &json!(15000)),
        "refunded in full: {}",
        refund.json
    );
    let fintoc_id = refund.json["fintoc_refund_id"]
        .as_str()
        .unwrap()
        .to_string();
    settle(&h, &fintoc_id, settle_as("succeeded")).await;
    let view = h.get(&second).await.json;
    assert_eq!(
        (&view["refunded_amount"], &view["refundable_amount"]),
        (&json!(15000), &json!(0)),
        "{view}"
    );
    let order_item = stored_item(&h.dynamodb, &h.table, &format!("ORDER#{order}"))
        .await
        .unwrap();
    assert!(
        !order_item.contains_key("refunded_amount"),
        "the order was paid by the first payment; the second's refund is not the order's: {order_item:?}"
    );
    assert_eq!(h.get(&first).await.json["refundable_amount"], 15000);
}

/// Issue 34 (1): a refund's create answer is lost; the merchant retries its key
/// with other metadata. The retry is another request (422, nothing sent), and the
/// refund Fintoc made stays on the books: no second refund pays the money out again.
#[tokio::test]
async fn a_lost_answer_retried_with_another_body_is_refused_and_the_refund_kept() {
    use fintoc_sim::Fault;
    let h = Harness::new().await;
    wire_webhooks(&h).await;
    let pi = paid_intent(&h, "order-lost-answer").await;
    // Fintoc makes the refund, and every answer to it is lost.
    for _ in 0..3 {
        h.sim.push_fault(Fault::Drop);
    }
    let lost = h
        .call(refund_of(
            &pi,
            "lost-1",
            r#"{"amount": 6000, "metadata": {"stamp": "1"}}"#,
        ))
        .await;
    assert!(lost.status >= 500, "{}", lost.json);
    assert_eq!(h.sim.refunds().len(), 1, "Fintoc made it");

    let requests = h.sim.api_requests();
    let other = h
        .call(refund_of(
            &pi,
            "lost-1",
            r#"{"amount": 6000, "metadata": {"stamp": "2"}}"#,
        ))
        .await;
    assert_eq!(
        (other.status, other.error_code()),
        (422, "idempotency_key_reused"),
        "{}",
        other.json
    );
    assert_eq!(h.sim.api_requests(), requests, "nothing sent to Fintoc");
    assert_eq!(
        h.get(&pi).await.json["refundable_amount"],
        9000,
        "the refund Fintoc made is still reserved"
    );
    // Another key cannot pay the same money out again.
    let again = h
        .call(refund_of(&pi, "lost-2", r#"{"amount": 10000}"#))
        .await;
    assert_eq!(
        (again.status, again.error_code()),
        (409, "refund_exceeds_refundable"),
        "{}",
        again.json
    );
    // The same request resumes it and reaches the same refund at Fintoc.
    let same = h
        .call(refund_of(
            &pi,
            "lost-1",
            r#"{"amount": 6000, "metadata": {"stamp": "1"}}"#,
        ))
        .await;
    assert_eq!(
        (same.status, &same.json["status"]),
        (201, &json!("pending")),
        "{}",
        same.json
    );
    assert_eq!(h.sim.refunds().len(), 1, "one refund at Fintoc");
}

/// Issue 34 (1): a re-send Fintoc refuses never drops the reservation of a refund
/// an earlier send may have made: the refund is found in Fintoc's list and kept.
#[tokio::test]
async fn a_refused_resend_keeps_the_reservation_of_the_refund_fintoc_made() {
    use fintoc_sim::Fault;
    use shared::app::reconcile::ReconcileSettings;
    let h = Harness::new().await;
    wire_webhooks(&h).await;
    let pi = paid_intent(&h, "order-resend").await;
    for _ in 0..3 {
        h.sim.push_fault(Fault::Drop);
    }
    let body = r#"{"amount": 6000}"#;
    let lost = h.call(refund_of(&pi, "resend-1", body)).await;
    assert!(lost.status >= 500, "{}", lost.json);
    assert_eq!(h.sim.refunds().len(), 1, "Fintoc made it");
    // The re-send is refused (as Fintoc would once it forgot the key).
    h.sim.push_fault(Fault::Refuse {
        status: 400,
        code: "invalid_request".into(),
    });
    let resent = h.call(refund_of(&pi, "resend-1", body)).await;
    assert!(
        resent.status < 400 || resent.status >= 500,
        "a refused re-send is not the refund's refusal: {} {}",
        resent.status,
        resent.json
    );
    assert_eq!(
        h.get(&pi).await.json["refundable_amount"],
        9000,
        "the reservation stays"
    );
    let again = h
        .call(refund_of(&pi, "resend-2", r#"{"amount": 10000}"#))
        .await;
    assert_eq!(again.status, 409, "{}", again.json);
    // The reconciler finds it in Fintoc's list by this backend's id.
    h.clock.advance_ms(3_600_000);
    let (reconciler, _) = reconciler_with(
        &h,
        ReconcileSettings {
            sweep_refunds: false,
            ..ReconcileSettings::default()
        },
    );
    reconciler.run(None).await;
    let view = h.get(&pi).await.json;
    assert_eq!(view["refunds"][0]["status"], "pending", "{view}");
    assert_eq!(view["refundable_amount"], 9000, "{view}");
    assert_eq!(h.sim.refunds().len(), 1, "one refund at Fintoc");
}

/// A refund made at Fintoc for `pi` carrying this backend's refund id under a key
/// its record does not hold (a reservation lost, as issue 34's first defect did).
async fn refund_with_a_lost_reservation(h: &Harness, pi: &str, amount: u64) -> String {
    use shared::domain::refund::{RefundKey, REFUND_ID_METADATA_KEY};
    let id = format!("re_i.{pi}.{}", RefundKey::for_request("lost").as_str());
    let metadata = [(REFUND_ID_METADATA_KEY.to_string(), id)].into();
    refund_at_fintoc(h, pi, amount, &format!("lost-{pi}"), metadata).await
}

/// Issue 34 (1): a refund naming this deployment's payment but unknown to its
/// record is put on the books (imported) from its event, never kept apart.
#[tokio::test]
async fn a_refund_of_ours_missing_from_its_record_is_imported_from_its_event() {
    let h = Harness::new().await;
    wire_webhooks(&h).await;
    let pi = paid_intent(&h, "order-lost-record").await;
    let fintoc_id = refund_with_a_lost_reservation(&h, &pi, 3000).await;
    settle(&h, &fintoc_id, settle_as("succeeded")).await;
    let view = h.get(&pi).await.json;
    assert_eq!(
        (&view["refunded_amount"], &view["refundable_amount"]),
        (&json!(3000), &json!(12000)),
        "{view}"
    );
}

/// The same through the sweep, its events lost.
#[tokio::test]
async fn a_refund_of_ours_missing_from_its_record_is_imported_by_the_sweep() {
    use shared::app::reconcile::ReconcileSettings;
    let h = Harness::new().await;
    wire_webhooks(&h).await;
    let pi = paid_intent(&h, "order-lost-swept").await;
    h.sim.set_delivery_mode(fintoc_sim::DeliveryMode::Off);
    let fintoc_id = refund_with_a_lost_reservation(&h, &pi, 3000).await;
    h.sim
        .settle_refund(&fintoc_id, &settle_as("succeeded"))
        .unwrap();
    let (reconciler, _) = reconciler_with(&h, ReconcileSettings::default());
    let swept = reconciler.run(None).await;
    assert_eq!(swept.refunds_imported, 1, "{swept:?}");
    let view = h.get(&pi).await.json;
    assert_eq!(view["refundable_amount"], 12000, "{view}");
}

/// Issue 34 (5): a payment's refunds live on its one item, which DynamoDB caps at
/// 400 KB: past 50 refunds, or with more metadata than a refund carries (8 entries
/// of at most 40 + 88 characters: 4096 bytes at most), a refund is refused before
/// anything is sent to Fintoc.
#[tokio::test]
async fn refunds_beyond_what_one_item_holds_are_refused_before_fintoc() {
    let h = Harness::new().await;
    wire_webhooks(&h).await;
    let pi = paid_intent(&h, "order-many").await;
    // 9 entries, or one value over 88 characters.
    let many: serde_json::Map<String, Value> =
        (0..9).map(|i| (format!("note{i}"), json!("x"))).collect();
    for metadata in [json!(many), json!({"note": "x".repeat(89)})] {
        let big = json!({"amount": 1, "metadata": metadata}).to_string();
        let too_large = h.call(refund_of(&pi, "big", &big)).await;
        assert_eq!(
            (too_large.status, too_large.error_code()),
            (400, "invalid_metadata"),
            "{}",
            too_large.json
        );
    }
    let null = h.call(refund_of(&pi, "null", r#"{"amount": null}"#)).await;
    assert_eq!(
        (null.status, null.error_code()),
        (400, "invalid_amount"),
        "issue 34 (13): null never refunds everything"
    );
    for i in 0..50 {
        let made = h
            .call(refund_of(&pi, &format!("many-{i}"), r#"{"amount": 1}"#))
            .await;
        assert_eq!(made.status, 201, "{}", made.json);
    }
    let requests = h.sim.api_requests();
    let one_more = h.call(refund_of(&pi, "many-50", r#"{"amount": 1}"#)).await;
    assert_eq!(
        (one_more.status, one_more.error_code()),
        (409, "refund_limit_reached"),
        "{}",
        one_more.json
    );
    assert_eq!(h.sim.api_requests(), requests, "nothing sent to Fintoc");
    assert_eq!(h.get(&pi).await.json["refundable_amount"], 14950);
}

/// A checkout session paid through the simulator: its id and the attempt that
/// paid it.
async fn paid_session(h: &Harness, order: &str) -> (String, String) {
    let created = h
        .call(http_event(
            "POST",
            "/checkout-sessions",
            "POST /checkout-sessions",
            json!({"content-type": "application/json", "idempotency-key": format!("s-{order}")}),
            Some(&order_body(order)),
            None,
        ))
        .await;
    assert_eq!(created.status, 201, "{}", created.json);
    let cs = created.json["id"].as_str().unwrap().to_string();
    let before = h.sim.deliveries().len();
    let (paying, events) = h
        .sim
        .pay_session(&cs, &Finish::outcome("succeeded"))
        .unwrap();
    h.sim.wait_settled(before + events.len()).await;
    (cs, paying)
}

async fn session_view(h: &Harness, cs: &str) -> Value {
    h.call(http_event(
        "GET",
        &format!("/checkout-sessions/{cs}"),
        "GET /checkout-sessions/{id}",
        json!({}),
        None,
        Some(json!({"id": cs})),
    ))
    .await
    .json
}

/// Issue 34 (4): a dashboard refund of a session's payment names the attempt
/// (`pi_…`), which is stored under its session: imported there from its event.
#[tokio::test]
async fn a_dashboard_refund_of_a_sessions_payment_is_imported_from_its_event() {
    let h = Harness::new().await;
    wire_webhooks(&h).await;
    let (cs, paying) = paid_session(&h, "order-cs-dash").await;
    let elsewhere = refund_elsewhere(&h, &paying, 4000, "cs-dash-1").await;
    settle(&h, &elsewhere, settle_as("succeeded")).await;
    let view = session_view(&h, &cs).await;
    assert_eq!(
        (&view["refunded_amount"], &view["refundable_amount"]),
        (&json!(4000), &json!(11000)),
        "{view}"
    );
}

/// The same through the sweep, its events lost.
#[tokio::test]
async fn a_dashboard_refund_of_a_sessions_payment_is_imported_by_the_sweep() {
    use shared::app::reconcile::ReconcileSettings;
    let h = Harness::new().await;
    wire_webhooks(&h).await;
    let (cs, paying) = paid_session(&h, "order-cs-swept").await;
    h.sim.set_delivery_mode(fintoc_sim::DeliveryMode::Off);
    let elsewhere = refund_elsewhere(&h, &paying, 4000, "cs-swept-1").await;
    h.sim
        .settle_refund(&elsewhere, &settle_as("succeeded"))
        .unwrap();
    let (reconciler, _) = reconciler_with(&h, ReconcileSettings::default());
    let swept = reconciler.run(None).await;
    assert_eq!(swept.refunds_imported, 1, "{swept:?}");
    let view = session_view(&h, &cs).await;
    assert_eq!(view["refundable_amount"], 11000, "{view}");
}

/// Issue 34 (9): a dashboard refund arriving while an unconfirmed API refund
/// holds the money is not an anomaly yet: it waits (the sweep's cursor holds)
/// until the reservation is settled, then is imported.
#[tokio::test]
async fn a_dashboard_refund_waiting_on_an_unconfirmed_reservation_is_imported_once_it_is_released()
{
    use fintoc_sim::Fault;
    use shared::app::reconcile::ReconcileSettings;
    let h = Harness::new().await;
    wire_webhooks(&h).await;
    let pi = paid_intent(&h, "order-wait").await;
    for _ in 0..3 {
        h.sim.push_fault(Fault::Status { status: 503 });
    }
    let ours = h.call(refund_of(&pi, "wait-1", "")).await;
    assert_eq!(ours.status, 502, "{}", ours.json);
    assert_eq!(h.get(&pi).await.json["refundable_amount"], 0, "all held");
    let elsewhere = refund_elsewhere(&h, &pi, 5000, "wait-dash").await;
    settle(&h, &elsewhere, settle_as("succeeded")).await;
    let (reconciler, _) = reconciler_with(&h, ReconcileSettings::default());
    h.clock.advance_ms(1_800_000);
    let first = reconciler.run(None).await;
    assert_eq!(first.refund_anomalies, 0, "not an anomaly yet: {first:?}");
    // A day later our create is certainly never made: released; the dashboard
    // refund is then imported.
    h.clock.advance_ms(25 * 3_600_000);
    reconciler.run(None).await;
    let settled = reconciler.run(None).await;
    let view = h.get(&pi).await.json;
    assert_eq!(
        (&view["refunded_amount"], &view["refundable_amount"]),
        (&json!(5000), &json!(10000)),
        "{view} {settled:?}"
    );
}

/// Issue 34 (7): Fintoc stores a 5xx answer under its idempotency key and
/// replays it to every retry. A retry of the merchant's key then looks the refund
/// up in Fintoc's list (by this backend's id) and, not finding it, sends it under
/// a new generation of the derived key — instead of staying `creating` 25 hours.
#[tokio::test]
async fn a_refund_whose_key_stored_a_5xx_is_sent_again_under_a_new_key() {
    use fintoc_sim::Fault;
    let h = Harness::new().await;
    wire_webhooks(&h).await;
    let pi = paid_intent(&h, "order-5xx").await;
    h.sim.push_fault(Fault::Failure {
        status: 500,
        made: false,
    });
    let failed = h.call(refund_of(&pi, "5xx-1", r#"{"amount": 5000}"#)).await;
    assert!(failed.status >= 500, "{}", failed.json);
    assert_eq!(h.sim.refunds().len(), 0, "nothing made");
    assert_eq!(h.get(&pi).await.json["refundable_amount"], 10000, "held");

    let retried = h.call(refund_of(&pi, "5xx-1", r#"{"amount": 5000}"#)).await;
    assert_eq!(
        (retried.status, &retried.json["status"]),
        (201, &json!("pending")),
        "{}",
        retried.json
    );
    assert_eq!(h.sim.refunds().len(), 1, "made once");
    let replay = h.call(refund_of(&pi, "5xx-1", r#"{"amount": 5000}"#)).await;
    assert_eq!((replay.status, &replay.json), (201, &retried.json));
    assert_eq!(h.sim.refunds().len(), 1, "still once");
    assert_eq!(h.get(&pi).await.json["refundable_amount"], 10000);
}
