//! The invariant audit on DynamoDB Local: a table made by the real functions holds
//! every rule; each rule broken by one direct write is reported, exactly it; and a
//! suspect that changes between the scan and the confirming read is not reported.

use crate::common::*;
use aws_sdk_dynamodb::types::AttributeValue as A;
use fintoc_sim::Finish;
use futures::StreamExt;
use serde_json::json;
use shared::app::audit::{check_invariants, AuditReport};
use shared::clock::Clock;
use shared::domain::invariants::AuditedOrder;
use shared::domain::payment::{PaymentKind, StoredPayment};
use shared::store::{AuditSegment, AuditStore, DynamoStore, StoreError};

/// A payment of `order` created through the function, finished as `outcome`
/// (`None`: left open); its id.
async fn payment(h: &Harness, order: &str, outcome: Option<&str>) -> String {
    let body = json!({"amount": 15000, "currency": "CLP", "order_id": order}).to_string();
    let created = h.post(Some(&format!("create-{order}")), &body).await;
    assert_eq!(created.status, 201, "{}", created.json);
    let id = created.json["id"].as_str().unwrap().to_string();
    if let Some(outcome) = outcome {
        let before = h.sim.deliveries().len();
        h.sim.finish(&id, &Finish::outcome(outcome)).unwrap();
        h.sim.wait_settled(before + 1).await;
    }
    id
}

/// A table as the functions leave it: a paid order, a failed one, an open one.
async fn table(h: &Harness) -> (String, String, String) {
    wire_webhooks(h).await;
    (
        payment(h, "order-paid", Some("succeeded")).await,
        payment(h, "order-failed", Some("failed")).await,
        payment(h, "order-open", None).await,
    )
}

async fn audit(store: &impl AuditStore, h: &Harness) -> AuditReport {
    check_invariants(store, 4, h.clock.now_ms()).await.unwrap()
}

async fn update(h: &Harness, pk: &str, expression: &str, values: &[(&str, A)]) {
    let mut request = h
        .dynamodb
        .update_item()
        .table_name(&h.table)
        .key("pk", A::S(pk.into()))
        .update_expression(expression);
    for (name, value) in values {
        request = request.expression_attribute_values(*name, value.clone());
    }
    request.send().await.unwrap();
}

fn found(report: &AuditReport) -> Vec<(&'static str, String)> {
    report
        .violations
        .iter()
        .map(|v| (v.invariant.as_str(), v.subject.clone()))
        .collect()
}

#[tokio::test]
async fn a_table_the_functions_made_holds_every_rule() {
    let h = Harness::new().await;
    table(&h).await;
    let report = audit(&h.store.inner, &h).await;
    assert_eq!(report.violations, [], "{report:?}");
    assert_eq!(
        report.checked, 6,
        "three orders, three payments: {report:?}"
    );
    assert!(report.scanned >= 6 && report.read_units > 0.0, "{report:?}");
}

/// A rule, the item a write breaks it on, the write, its values, and the subject
/// the audit names.
type BreakingWrite<'a> = (&'a str, String, &'a str, Vec<(&'a str, A)>, &'a str);

#[tokio::test]
async fn each_rule_broken_by_one_write_is_reported_and_only_it() {
    let h = Harness::new().await;
    let (paid, _failed, open) = table(&h).await;
    let paid_pk = format!("INTENT#{paid}");
    let open_pk = format!("INTENT#{open}");
    let cases: Vec<BreakingWrite> = vec![
        (
            "order_paid_by_its_payment",
            paid_pk.clone(),
            "SET #s = :v",
            vec![(":v", A::S("rejected".into()))],
            "order-paid",
        ),
        (
            "refunds_within_paid",
            paid_pk.clone(),
            "SET refund_reserved = :v",
            vec![(":v", A::N("15001".into()))],
            paid.as_str(),
        ),
        (
            "refunded_amount_matches",
            "ORDER#order-paid".into(),
            "SET refunded_amount = :v",
            vec![(":v", A::N("1".into()))],
            "order-paid",
        ),
        (
            "open_payment_scheduled",
            open_pk.clone(),
            "REMOVE due_shard, due_at",
            vec![],
            open.as_str(),
        ),
        (
            "order_state_consistent",
            open_pk.clone(),
            "SET #s = :v REMOVE due_shard, due_at",
            vec![(":v", A::S("expired".into()))],
            "order-open",
        ),
    ];
    for (invariant, pk, expression, values, subject) in cases {
        let before = h
            .dynamodb
            .get_item()
            .table_name(&h.table)
            .key("pk", A::S(pk.clone()))
            .send()
            .await
            .unwrap()
            .item
            .unwrap();
        let mut request = h
            .dynamodb
            .update_item()
            .table_name(&h.table)
            .key("pk", A::S(pk.clone()))
            .update_expression(expression);
        if expression.contains("#s") {
            request = request.expression_attribute_names("#s", "status");
        }
        for (name, value) in values {
            request = request.expression_attribute_values(name, value);
        }
        request.send().await.unwrap();
        let report = audit(&h.store.inner, &h).await;
        assert_eq!(
            found(&report),
            [(invariant, subject.to_string())],
            "{invariant}: {report:?}"
        );
        // Put the item back as it was, for the next case.
        h.dynamodb
            .put_item()
            .table_name(&h.table)
            .set_item(Some(before))
            .send()
            .await
            .unwrap();
        assert_eq!(audit(&h.store.inner, &h).await.violations, []);
    }
    // A second succeeded payment of the paid order, not held for review.
    let mut second = h
        .dynamodb
        .get_item()
        .table_name(&h.table)
        .key("pk", A::S(paid_pk))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    second.insert("pk".into(), A::S("INTENT#pi_second".into()));
    second.insert("id".into(), A::S("pi_second".into()));
    h.dynamodb
        .put_item()
        .table_name(&h.table)
        .set_item(Some(second))
        .send()
        .await
        .unwrap();
    let report = audit(&h.store.inner, &h).await;
    assert_eq!(
        found(&report),
        [("one_payment_per_order", "order-paid".to_string())],
        "{report:?}"
    );
}

/// The real store, but the item broken before the scan is mended right after it,
/// before the audit's confirming read: as if a write landed between the two.
struct MendedAfterScan {
    inner: DynamoStore,
    h_table: String,
    client: aws_sdk_dynamodb::Client,
    pk: String,
}

impl AuditStore for MendedAfterScan {
    async fn scan_segment(&self, segment: i32, total: i32) -> Result<AuditSegment, StoreError> {
        let scanned = self.inner.scan_segment(segment, total).await?;
        self.client
            .update_item()
            .table_name(&self.h_table)
            .key("pk", A::S(self.pk.clone()))
            .update_expression("SET refunded_amount = :zero")
            .expression_attribute_values(":zero", A::N("0".into()))
            .send()
            .await
            .unwrap();
        Ok(scanned)
    }
    async fn audited_order(&self, order_id: &str) -> Result<Option<AuditedOrder>, StoreError> {
        self.inner.audited_order(order_id).await
    }
    async fn audited_payment(
        &self,
        kind: PaymentKind,
        id: &str,
    ) -> Result<Option<(StoredPayment, bool)>, StoreError> {
        self.inner.audited_payment(kind, id).await
    }
}

#[tokio::test]
async fn a_suspect_mended_between_the_scan_and_the_confirming_read_is_not_reported() {
    let h = Harness::new().await;
    table(&h).await;
    update(
        &h,
        "ORDER#order-paid",
        "SET refunded_amount = :v",
        &[(":v", A::N("5".into()))],
    )
    .await;
    let store = MendedAfterScan {
        inner: h.store.inner.clone(),
        h_table: h.table.clone(),
        client: h.dynamodb.clone(),
        pk: "ORDER#order-paid".into(),
    };
    let report = audit(&store, &h).await;
    assert_eq!(report.violations, [], "{report:?}");
    assert_eq!(
        report.cleared, 1,
        "the scan saw it; the second read did not"
    );
}

/// The audit over a large table (`AUDIT_BENCH_PAYMENTS` paid orders, 500 by default;
/// `make bench` runs 100,000): every item checked, no violation, and the figures
/// (`AUDIT_BENCH_REPORT=path.json`) for docs/performance.md.
#[tokio::test]
async fn the_audit_reads_a_large_table_once_and_finds_nothing_wrong() {
    let orders: usize = std::env::var("AUDIT_BENCH_PAYMENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(500);
    let h = Harness::new().await;
    let s = |v: &str| A::S(v.to_string());
    let now = h.clock.now_ms();
    let mut writes = Vec::new();
    for n in 0..orders {
        let (pi, order) = (format!("pi_audit_{n:07}"), format!("order-audit-{n:07}"));
        let payment = std::collections::HashMap::from([
            ("pk".to_string(), s(&format!("INTENT#{pi}"))),
            ("entity".to_string(), s("intent")),
            ("id".to_string(), s(&pi)),
            ("status".to_string(), s("succeeded")),
            ("amount".to_string(), A::N("15000".into())),
            ("currency".to_string(), s("CLP")),
            ("order_id".to_string(), s(&order)),
            ("metadata".to_string(), A::M(Default::default())),
            ("created_at".to_string(), s("2026-12-06T10:00:00.000Z")),
            ("updated_at".to_string(), s("2026-12-06T10:01:00.000Z")),
        ]);
        let order_item = std::collections::HashMap::from([
            ("pk".to_string(), s(&format!("ORDER#{order}"))),
            ("entity".to_string(), s("order")),
            ("order_id".to_string(), s(&order)),
            ("state".to_string(), s("paid")),
            ("intent_id".to_string(), s(&pi)),
            ("payment_kind".to_string(), s("intent")),
            ("reserved_until_ms".to_string(), A::N(now.to_string())),
        ]);
        for item in [payment, order_item] {
            writes.push(
                aws_sdk_dynamodb::types::WriteRequest::builder()
                    .put_request(
                        aws_sdk_dynamodb::types::PutRequest::builder()
                            .set_item(Some(item))
                            .build()
                            .unwrap(),
                    )
                    .build(),
            );
        }
    }
    let batches: Vec<Vec<_>> = writes.chunks(25).map(|c| c.to_vec()).collect();
    futures::stream::iter(batches)
        .for_each_concurrent(8, |batch| {
            let client = h.dynamodb.clone();
            let table = h.table.clone();
            async move {
                let mut pending = Some(std::collections::HashMap::from([(table, batch)]));
                while let Some(items) = pending.take().filter(|p| !p.is_empty()) {
                    let out = client
                        .batch_write_item()
                        .set_request_items(Some(items))
                        .send()
                        .await
                        .unwrap();
                    pending = out.unprocessed_items;
                }
            }
        })
        .await;
    let started = std::time::Instant::now();
    let report = check_invariants(&h.store.inner, 8, now).await.unwrap();
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!(report.violations, []);
    assert_eq!(report.checked, 2 * orders);
    let figures = json!({
        "orders": orders,
        "items": report.scanned,
        "segments": 8,
        "seconds": seconds,
        "items_per_second": report.scanned as f64 / seconds,
        "read_units": report.read_units,
        "read_units_per_1000_items": report.read_units * 1000.0 / report.scanned as f64,
    });
    println!("{figures}");
    if let Ok(path) = std::env::var("AUDIT_BENCH_REPORT") {
        std::fs::write(path, serde_json::to_string_pretty(&figures).unwrap()).unwrap();
    }
}
