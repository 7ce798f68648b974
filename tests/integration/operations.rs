//! Operators' resolutions on DynamoDB Local and the simulator: an order held in
//! `review` (its payer transferred another amount) resolved as paid at Fintoc's
//! amount, its refunds then bounded by it; every precondition refused with its own
//! code and nothing written; the resolution and its audit entry written together or
//! not at all (the entry's write made to fail); the table still holds every
//! invariant afterwards.

use crate::common::*;
use aws_sdk_dynamodb::types::AttributeValue as A;
use fintoc_sim::{Finish, DEFAULT_SECRET_KEY};
use serde_json::{json, Value};
use shared::app::audit::check_invariants;
use shared::app::operations::{audit_log, resolve, OperationsError};
use shared::clock::Clock;
use shared::domain::payment::PaymentKind;
use shared::domain::resolution::{ResolveAs, ResolveRequest};
use shared::store::{EventStore, PaymentStore, StoreError};

const ACTOR: &str = "arn:aws:iam::123456789012:user/ana";

/// An order whose payer transferred `paid` CLP of 15,000: held in `review`. The
/// payment's id.
async fn mismatched_order(h: &Harness, order: &str, paid: u64) -> String {
    let body = json!({"amount": 15000, "currency": "CLP", "order_id": order}).to_string();
    let created = h.post(Some(&format!("create-{order}")), &body).await;
    assert_eq!(created.status, 201, "{}", created.json);
    let id = created.json["id"].as_str().unwrap().to_string();
    let before = h.sim.deliveries().len();
    let finish = Finish {
        paid_amount: Some(paid),
        ..Finish::outcome("succeeded")
    };
    h.sim.finish(&id, &finish).unwrap();
    h.sim.wait_settled(before + 1).await;
    let held = h.store.inner.order(order).await.unwrap().unwrap();
    assert_eq!(held.state.as_str(), "review");
    id
}

fn request(order: &str, resolve_as: ResolveAs, id: &str) -> ResolveRequest {
    ResolveRequest {
        order_id: order.into(),
        resolve_as,
        reason: "the payer confirmed the transfer by phone".into(),
        ticket: Some("OPS-7".into()),
        actor: ACTOR.into(),
        resolution_id: id.into(),
        at: "2026-12-06T12:00:00.000Z".into(),
        at_ms: 1_796_558_400_000,
    }
}

/// Every item of the table, as a comparable JSON list (sorted by key).
async fn snapshot(h: &Harness) -> Vec<String> {
    let mut items: Vec<String> = scan_all(&h.dynamodb, &h.table)
        .await
        .into_iter()
        .map(|item| {
            serde_dynamo::from_item::<_, Value>(item)
                .unwrap()
                .to_string()
        })
        .collect();
    items.sort();
    items
}

fn refused_code(result: Result<impl std::fmt::Debug, OperationsError>) -> String {
    match result {
        Err(OperationsError::Refused(refusal)) => refusal.code().to_string(),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn a_held_order_is_resolved_paid_at_fintocs_amount_with_its_audit_entry() {
    let h = Harness::new().await;
    wire_webhooks(&h).await;
    let fintoc = fintoc_client(&h.sim, DEFAULT_SECRET_KEY);
    let pi = mismatched_order(&h, "order-ops-1", 14_000).await;
    let store = &h.store.inner;

    let entry = resolve(
        store,
        &fintoc,
        &request("order-ops-1", ResolveAs::Paid, "res_a"),
    )
    .await
    .unwrap();
    assert_eq!(
        (entry.action.as_str(), entry.actor.as_str()),
        ("resolve_paid", ACTOR)
    );

    let order = store.order("order-ops-1").await.unwrap().unwrap();
    assert_eq!(order.state.as_str(), "paid");
    let item = h
        .dynamodb
        .get_item()
        .table_name(&h.table)
        .key("pk", A::S("ORDER#order-ops-1".into()))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    // Its order.paid event (from the stream) carries when it was paid.
    assert_eq!(item["paid_at"].as_s().unwrap(), &entry.at);
    let payment = store
        .get_payment(PaymentKind::Intent, &pi)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((payment.amount, payment.currency.as_str()), (14_000, "CLP"));
    assert!(payment.paid() && payment.review.is_none(), "{payment:?}");
    let view = h.get(&pi).await;
    assert_eq!(
        (&view.json["paid"], &view.json["amount"]),
        (&json!(true), &json!(14_000))
    );

    let log = audit_log(store, Some("order-ops-1")).await.unwrap();
    assert_eq!(log.len(), 1);
    let logged = &log[0];
    assert_eq!(logged.id, "res_a");
    assert_eq!(logged.ticket.as_deref(), Some("OPS-7"));
    assert_eq!(logged.reason, "the payer confirmed the transfer by phone");
    assert_eq!(logged.before["order"]["state"], "review");
    assert_eq!(logged.before["payment"]["amount"], 15_000);
    assert_eq!(logged.before["fintoc"]["amount"], 14_000);
    assert_eq!(logged.after["order"]["state"], "paid");
    assert_eq!(logged.after["payment"]["requested_amount"], 15_000);
    assert!(audit_log(store, Some("order-other"))
        .await
        .unwrap()
        .is_empty());

    // Resolved once: a second resolution is refused, and nothing more is logged.
    let again = resolve(
        store,
        &fintoc,
        &request("order-ops-1", ResolveAs::Paid, "res_b"),
    )
    .await;
    assert_eq!(refused_code(again), "order_not_in_review");
    assert_eq!(audit_log(store, None).await.unwrap().len(), 1);

    // Refunds are bounded by what Fintoc says was paid, no longer by the request.
    let over = h
        .call(refund_of(&pi, "rf-over", r#"{"amount": 14001}"#))
        .await;
    assert_eq!(over.error_code(), "refund_exceeds_refundable");
    let back = h
        .call(refund_of(&pi, "rf-all", r#"{"amount": 14000}"#))
        .await;
    assert_eq!(back.status, 201, "{}", back.json);

    let report = check_invariants(store, 2, h.clock.now_ms()).await.unwrap();
    assert!(report.violations.is_empty(), "{:?}", report.violations);
}

#[tokio::test]
async fn every_precondition_is_refused_with_its_code_and_nothing_written() {
    let h = Harness::new().await;
    wire_webhooks(&h).await;
    let fintoc = fintoc_client(&h.sim, DEFAULT_SECRET_KEY);
    let store = &h.store.inner;
    mismatched_order(&h, "order-held", 1).await;
    let paid = json!({"amount": 15000, "currency": "CLP", "order_id": "order-fine"}).to_string();
    let created = h.post(Some("create-fine"), &paid).await;
    let fine = created.json["id"].as_str().unwrap().to_string();
    let before = h.sim.deliveries().len();
    h.sim.finish(&fine, &Finish::outcome("succeeded")).unwrap();
    h.sim.wait_settled(before + 1).await;

    let table = snapshot(&h).await;
    let mut no_reason = request("order-held", ResolveAs::Paid, "res_1");
    no_reason.reason = "  ".into();
    let cases: Vec<(ResolveRequest, &str)> = vec![
        (no_reason, "reason_required"),
        (
            request("order-nobody", ResolveAs::Paid, "res_2"),
            "order_not_found",
        ),
        (
            request("order-fine", ResolveAs::Paid, "res_3"),
            "order_not_in_review",
        ),
        (
            request("order-fine", ResolveAs::Closed, "res_4"),
            "order_not_in_review",
        ),
        // Paid 1 CLP, nothing refunded: closing would keep it.
        (
            request("order-held", ResolveAs::Closed, "res_5"),
            "payment_still_held",
        ),
    ];
    for (request, code) in cases {
        let refused = resolve(store, &fintoc, &request).await;
        assert_eq!(refused_code(refused), code, "{request:?}");
    }
    assert_eq!(snapshot(&h).await, table, "a refusal wrote something");
    assert!(audit_log(store, None).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_failing_audit_entry_write_leaves_the_order_held_and_the_payment_untouched() {
    let h = Harness::new().await;
    wire_webhooks(&h).await;
    let fintoc = fintoc_client(&h.sim, DEFAULT_SECRET_KEY);
    let store = &h.store.inner;
    mismatched_order(&h, "order-atomic", 1).await;
    // The entry's id is taken: its conditional insert fails inside the transaction.
    h.dynamodb
        .put_item()
        .table_name(&h.table)
        .item("pk", A::S("AUDIT#res_taken".into()))
        .item("entity", A::S("audit".into()))
        .send()
        .await
        .unwrap();
    let table = snapshot(&h).await;

    let failed = resolve(
        store,
        &fintoc,
        &request("order-atomic", ResolveAs::Paid, "res_taken"),
    )
    .await;
    assert!(
        matches!(failed, Err(OperationsError::Store(StoreError::Conflict(_)))),
        "{failed:?}"
    );
    assert_eq!(
        snapshot(&h).await,
        table,
        "the order or payment was written without its entry"
    );
    let held = store.order("order-atomic").await.unwrap().unwrap();
    assert_eq!(held.state.as_str(), "review");

    // With a free id, the same resolution is written whole.
    resolve(
        store,
        &fintoc,
        &request("order-atomic", ResolveAs::Paid, "res_free"),
    )
    .await
    .unwrap();
    assert_eq!(
        store
            .order("order-atomic")
            .await
            .unwrap()
            .unwrap()
            .state
            .as_str(),
        "paid"
    );
}

fn resolve_request(order: &str, body: &str, operator: Option<&str>) -> lambda_http::Request {
    operator_request(
        "POST",
        &format!("/ops/orders/{order}/resolve"),
        "POST /ops/orders/{id}/resolve",
        Some(body),
        None,
        operator,
    )
}

#[tokio::test]
async fn the_operations_function_resolves_for_an_iam_principal_only() {
    let h = Harness::new().await;
    wire_webhooks(&h).await;
    let service = operations::OperationsService {
        store: h.store.inner.clone(),
        fintoc: fintoc_client(&h.sim, DEFAULT_SECRET_KEY),
        clock: h.clock.clone(),
        trust_local_operator_header: false,
        destinations: vec!["merchant".into()],
    };
    let call = |request| async { Answer::from(operations::handle(&service, request).await) };
    mismatched_order(&h, "order-http", 14_500).await;
    let table = snapshot(&h).await;
    let body = r#"{"as": "paid", "reason": "payer confirmed", "ticket": "OPS-9"}"#;

    let anonymous = call(resolve_request("order-http", body, None)).await;
    assert_eq!(
        (anonymous.status, anonymous.error_code()),
        (403, "operator_required")
    );
    for (bad, code) in [
        ("{", "invalid_json"),
        (r#"{"as": "refunded", "reason": "x"}"#, "invalid_resolution"),
        (r#"{"as": "paid"}"#, "reason_required"),
    ] {
        let refused = call(resolve_request("order-http", bad, Some(ACTOR))).await;
        assert_eq!((refused.status, refused.error_code()), (400, code), "{bad}");
        assert_eq!(refused.json["error"]["type"], "invalid_request_error");
    }
    let closed = call(resolve_request(
        "order-http",
        r#"{"as": "closed", "reason": "x"}"#,
        Some(ACTOR),
    ))
    .await;
    assert_eq!(
        (closed.status, closed.error_code()),
        (409, "payment_still_held")
    );
    assert_eq!(snapshot(&h).await, table, "a refusal wrote something");

    let resolved = call(resolve_request("order-http", body, Some(ACTOR))).await;
    assert_eq!(resolved.status, 200, "{}", resolved.json);
    let entry = &resolved.json["resolution"];
    assert_eq!(
        (&entry["actor"], &entry["action"]),
        (&json!(ACTOR), &json!("resolve_paid"))
    );
    assert!(entry["id"].as_str().unwrap().starts_with("res_"), "{entry}");
    assert_eq!(entry["after"]["payment"]["amount"], 14_500);

    let log = call(operator_request(
        "GET",
        "/ops/audit-log",
        "GET /ops/audit-log",
        None,
        Some(("subject", "order-http")),
        Some(ACTOR),
    ))
    .await;
    assert_eq!(log.status, 200, "{}", log.json);
    let entries = log.json["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    for field in [
        "at", "actor", "action", "subject", "reason", "ticket", "before", "after",
    ] {
        assert!(!entries[0][field].is_null(), "{field}: {}", entries[0]);
    }
    assert_eq!(entries[0]["id"], entry["id"]);
}

#[tokio::test]
async fn the_queue_lists_what_needs_a_person_oldest_first_and_forgets_what_was_resolved() {
    use shared::domain::reconcile::{Flag, ScheduleUpdate};
    use shared::domain::schedule::ScheduleChange;
    use shared::store::{OperationsStore, ScheduleStore};
    let h = Harness::new().await;
    wire_webhooks(&h).await;
    let fintoc = fintoc_client(&h.sim, DEFAULT_SECRET_KEY);
    let store = &h.store.inner;
    assert!(store.attention_queue().await.unwrap().is_empty());

    // An order held for review; a payment the reconciler gave up on; a refund
    // that failed.
    mismatched_order(&h, "order-q-review", 1).await;
    let open = json!({"amount": 15000, "currency": "CLP", "order_id": "order-q-stuck"}).to_string();
    let created = h.post(Some("create-q-stuck"), &open).await;
    let stuck = created.json["id"].as_str().unwrap().to_string();
    let version = store
        .get_payment(PaymentKind::Intent, &stuck)
        .await
        .unwrap()
        .map(|_| 0)
        .unwrap();
    let flagged = store
        .update_schedule(&ScheduleUpdate {
            intent_id: stuck.clone(),
            kind: PaymentKind::Intent,
            expected_version: version,
            change: ScheduleChange::Clear,
            flag: Some(Flag::Stuck),
            at: "2026-12-06T12:00:00.000Z".into(),
        })
        .await
        .unwrap();
    assert!(flagged, "the stuck flag was written");
    let paid =
        json!({"amount": 15000, "currency": "CLP", "order_id": "order-q-refund"}).to_string();
    let created = h.post(Some("create-q-refund"), &paid).await;
    let pi = created.json["id"].as_str().unwrap().to_string();
    let before = h.sim.deliveries().len();
    h.sim.finish(&pi, &Finish::outcome("succeeded")).unwrap();
    h.sim.wait_settled(before + 1).await;
    let refund = h.call(refund_of(&pi, "rf-q", r#"{"amount": 5000}"#)).await;
    assert_eq!(refund.status, 201, "{}", refund.json);
    let fintoc_refund = refund.json["fintoc_refund_id"]
        .as_str()
        .unwrap()
        .to_string();
    settle(&h, &fintoc_refund, settle_as("failed")).await;

    let queue = store.attention_queue().await.unwrap();
    let listed: Vec<(&str, &str, Option<&str>)> = queue
        .iter()
        .map(|i| (i.kind, i.reason, i.order_id.as_deref()))
        .collect();
    assert_eq!(listed.len(), 3, "{queue:?}");
    for expected in [
        ("order", "review", Some("order-q-review")),
        ("payment", "stuck", Some("order-q-stuck")),
        ("refund", "refund_failed", Some("order-q-refund")),
    ] {
        assert!(listed.contains(&expected), "{expected:?} in {listed:?}");
    }
    assert!(
        queue.windows(2).all(|w| w[0].since_ms <= w[1].since_ms),
        "oldest first: {queue:?}"
    );

    // What holds no money may be acknowledged, with a reason: it leaves the queue,
    // with its audit entry. A held order may not.
    let service = operations_service(&h);
    let ack = |body: Value| {
        let request = operator_request(
            "POST",
            "/ops/queue/acknowledge",
            "POST /ops/queue/acknowledge",
            Some(&body.to_string()),
            None,
            Some(ACTOR),
        );
        async { Answer::from(operations::handle(&service, request).await) }
    };
    let id_of = |reason: &str| {
        queue
            .iter()
            .find(|i| i.reason == reason)
            .unwrap()
            .id
            .clone()
    };
    let (stuck_id, refund_id) = (id_of("stuck"), id_of("refund_failed"));
    let table = snapshot(&h).await;
    for (body, status, code) in [
        (json!({"id": stuck_id}), 400, "reason_required"),
        (
            json!({"id": "order-q-review", "reason": "x"}),
            409,
            "cannot_acknowledge",
        ),
        (json!({"id": "nothing", "reason": "x"}), 404, "not_in_queue"),
    ] {
        let refused = ack(body.clone()).await;
        assert_eq!(
            (refused.status, refused.error_code()),
            (status, code),
            "{body}"
        );
    }
    assert_eq!(snapshot(&h).await, table, "a refusal wrote something");
    for id in [&stuck_id, &refund_id] {
        let done = ack(
            json!({"id": id, "reason": "checked with Fintoc: nothing owed", "ticket": "OPS-8"}),
        )
        .await;
        assert_eq!(done.status, 200, "{}", done.json);
    }
    let left: Vec<&str> = store
        .attention_queue()
        .await
        .unwrap()
        .iter()
        .map(|i| i.reason)
        .collect::<Vec<_>>()
        .into_iter()
        .collect();
    assert_eq!(left, ["review"]);
    let mut actions: Vec<String> = audit_log(store, None)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    actions.sort();
    assert_eq!(actions, ["acknowledge_refund_failed", "acknowledge_stuck"]);

    // Resolved: the order leaves the queue.
    resolve(
        store,
        &fintoc,
        &request("order-q-review", ResolveAs::Paid, "res_q"),
    )
    .await
    .unwrap();
    let reasons: Vec<&str> = store
        .attention_queue()
        .await
        .unwrap()
        .iter()
        .map(|i| i.reason)
        .collect::<Vec<_>>()
        .into_iter()
        .collect();
    assert_eq!(reasons, Vec::<&str>::new());
}

#[tokio::test]
async fn find_names_what_an_order_payment_or_refund_id_is() {
    use shared::app::operations::find;
    let h = Harness::new().await;
    wire_webhooks(&h).await;
    let store = &h.store.inner;
    let body = json!({"amount": 15000, "currency": "CLP", "order_id": "order-find"}).to_string();
    let created = h.post(Some("create-find"), &body).await;
    let pi = created.json["id"].as_str().unwrap().to_string();
    let before = h.sim.deliveries().len();
    h.sim.finish(&pi, &Finish::outcome("succeeded")).unwrap();
    h.sim.wait_settled(before + 1).await;
    let refund = h
        .call(refund_of(&pi, "rf-find", r#"{"amount": 100}"#))
        .await;
    assert_eq!(refund.status, 201, "{}", refund.json);
    let refund_id = refund.json["id"].as_str().unwrap().to_string();

    let found = |id: String| async move {
        find(store, &id)
            .await
            .unwrap()
            .into_iter()
            .map(|m| (m.kind, m.id, m.order_id))
            .collect::<Vec<_>>()
    };
    let order = Some("order-find".to_string());
    assert_eq!(
        found("order-find".into()).await,
        vec![("order", "order-find".to_string(), order.clone())]
    );
    assert_eq!(
        found(pi.clone()).await,
        vec![("payment", pi.clone(), order.clone())]
    );
    assert_eq!(
        found(refund_id.clone()).await,
        vec![("refund", refund_id, order)]
    );
    assert!(found("nothing-by-this-id".into()).await.is_empty());
    assert!(found("re_i.pi_unknown.k0000000000000001".into())
        .await
        .is_empty());
}

#[tokio::test]
async fn a_payment_whose_refunds_hold_more_than_fintoc_reports_is_not_accepted() {
    let h = Harness::new().await;
    wire_webhooks(&h).await;
    let fintoc = fintoc_client(&h.sim, DEFAULT_SECRET_KEY);
    let store = &h.store.inner;
    let pi = mismatched_order(&h, "order-over", 100).await;
    // Refunds holding 101 of a payment Fintoc says paid 100 (written directly: the
    // API takes no refund of a held payment).
    h.dynamodb
        .update_item()
        .table_name(&h.table)
        .key("pk", A::S(format!("INTENT#{pi}")))
        .update_expression("SET refund_reserved = :r")
        .expression_attribute_values(":r", A::N("101".into()))
        .send()
        .await
        .unwrap();
    let table = snapshot(&h).await;
    let refused = resolve(
        store,
        &fintoc,
        &request("order-over", ResolveAs::Paid, "res_o"),
    )
    .await;
    assert_eq!(refused_code(refused), "order_changed");
    assert_eq!(snapshot(&h).await, table, "nothing written");
}

/// The operations function as deployed, over the harness's table and simulator.
fn operations_service(
    h: &Harness,
) -> operations::OperationsService<
    shared::store::DynamoStore,
    shared::fintoc::FintocHttpClient,
    shared::clock::ManualClock,
> {
    operations::OperationsService {
        store: h.store.inner.clone(),
        fintoc: fintoc_client(&h.sim, DEFAULT_SECRET_KEY),
        clock: h.clock.clone(),
        trust_local_operator_header: false,
        destinations: vec!["merchant".into()],
    }
}

#[tokio::test]
async fn show_puts_ours_beside_fintocs_now_with_the_discrepancies_and_a_timeline() {
    let h = Harness::new().await;
    wire_webhooks(&h).await;
    let service = operations_service(&h);
    let get = |path: String| {
        let request = operator_request("GET", &path, "GET /ops/show/{id}", None, None, Some(ACTOR));
        async { Answer::from(operations::handle(&service, request).await) }
    };
    let payment = mismatched_order(&h, "order-show", 14_000).await;
    let table = snapshot(&h).await;

    for id in ["order-show", payment.as_str()] {
        let shown = get(format!("/ops/show/{id}")).await;
        assert_eq!(shown.status, 200, "{}", shown.json);
        assert_eq!(shown.json["order_id"], "order-show");
        assert_eq!(shown.json["ours"]["order"]["state"], "review");
        assert_eq!(shown.json["ours"]["payment"]["amount"], 15_000);
        assert_eq!(shown.json["fintoc"]["amount"], 14_000);
        assert_eq!(
            shown.json["discrepancies"],
            json!([{"field": "amount", "ours": 15_000, "fintoc": 14_000}]),
            "{}",
            shown.json
        );
        assert_eq!(
            shown.json["webhook_events_applied"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        let whats: Vec<&str> = shown.json["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["what"].as_str().unwrap())
            .collect();
        assert_eq!(whats.first(), Some(&"payment_created"), "{whats:?}");
    }
    assert_eq!(
        get("/ops/show/order-show".into()).await.json["kind"],
        "order"
    );
    assert_eq!(
        get(format!("/ops/show/{payment}")).await.json["kind"],
        "payment"
    );
    assert_eq!(snapshot(&h).await, table, "show wrote something");
    let unknown = get("/ops/show/nothing-here".into()).await;
    assert_eq!((unknown.status, unknown.error_code()), (404, "not_found"));

    // Resolved: the resolution is on the timeline; ours and Fintoc's agree.
    resolve(
        &h.store.inner,
        &service.fintoc,
        &request("order-show", ResolveAs::Paid, "res_show"),
    )
    .await
    .unwrap();
    let shown = get("/ops/show/order-show".into()).await;
    assert_eq!(shown.json["discrepancies"], json!([]), "{}", shown.json);
    assert!(shown.json["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["what"] == "resolve_paid" && e["detail"]["actor"] == ACTOR));
}

#[tokio::test]
async fn reconcile_checks_one_payment_now_through_the_reconcilers_write() {
    use fintoc_sim::DeliveryMode;
    let h = Harness::new().await;
    wire_webhooks(&h).await;
    h.sim.set_delivery_mode(DeliveryMode::Off);
    let service = operations_service(&h);
    let post = |id: &str| {
        let request = operator_request(
            "POST",
            &format!("/ops/reconcile/{id}"),
            "POST /ops/reconcile/{id}",
            Some("{}"),
            None,
            Some(ACTOR),
        );
        async { Answer::from(operations::handle(&service, request).await) }
    };
    let body = json!({"amount": 15000, "currency": "CLP", "order_id": "order-rec"}).to_string();
    let created = h.post(Some("create-rec"), &body).await;
    let id = created.json["id"].as_str().unwrap().to_string();
    h.sim.finish(&id, &Finish::outcome("succeeded")).unwrap();
    h.sim.wait_settled(1).await;
    assert_eq!(
        h.get(&id).await.json["status"],
        "created",
        "no webhook arrived"
    );

    // By its order's id: the payment is checked now, its outcome recorded.
    let checked = post("order-rec").await;
    assert_eq!(checked.status, 200, "{}", checked.json);
    assert_eq!(
        (&checked.json["payment_id"], &checked.json["result"]),
        (&json!(id), &json!("outcome_recorded"))
    );
    assert_eq!(checked.json["payment"]["status"], "succeeded");
    let order = h.store.inner.order("order-rec").await.unwrap().unwrap();
    assert_eq!(order.state.as_str(), "paid");
    // Final, nothing open: nothing to check.
    let again = post(&id).await;
    assert_eq!((again.status, again.error_code()), (409, "not_scheduled"));
    let unknown = post("pi_unknown").await;
    assert_eq!((unknown.status, unknown.error_code()), (404, "not_found"));

    // A payment flagged stuck (off the schedule, not final) that Fintoc has since
    // finished: the check records its outcome.
    use shared::domain::reconcile::{Flag, ScheduleUpdate};
    use shared::domain::schedule::ScheduleChange;
    use shared::store::ScheduleStore;
    let body =
        json!({"amount": 15000, "currency": "CLP", "order_id": "order-rec-stuck"}).to_string();
    let stuck = h.post(Some("create-rec-stuck"), &body).await.json["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(h
        .store
        .inner
        .update_schedule(&ScheduleUpdate {
            intent_id: stuck.clone(),
            kind: PaymentKind::Intent,
            expected_version: 0,
            change: ScheduleChange::Clear,
            flag: Some(Flag::Stuck),
            at: "2026-12-06T12:00:00.000Z".into(),
        })
        .await
        .unwrap());
    let unchanged = post(&stuck).await;
    assert_eq!(
        unchanged.json["result"], "flagged_stuck",
        "{}",
        unchanged.json
    );
    h.sim.finish(&stuck, &Finish::outcome("failed")).unwrap();
    h.sim.wait_settled(2).await;
    let recorded = post(&stuck).await;
    assert_eq!(
        (
            &recorded.json["result"],
            &recorded.json["payment"]["status"]
        ),
        (&json!("outcome_recorded"), &json!("failed")),
        "{}",
        recorded.json
    );
}
