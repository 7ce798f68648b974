//! The reconciler on DynamoDB Local and the Fintoc simulator: outcomes whose
//! webhooks never arrived are recorded once, pending lasts days, a never-resolving
//! intent becomes stuck, a webhook and a check racing apply once, and big backlogs
//! are worked off in bounded, paced runs. Time is virtual: no test sleeps.

use crate::common::*;
use aws_sdk_dynamodb::types::AttributeValue;
use fintoc_sim::{DeliveryMode, Finish, WebhookEndpoint};
use futures::StreamExt;
use shared::app::reconcile::{ManualPause, ReconcileService, ReconcileSettings, RunSummary};
use shared::clock::{Clock, SystemClock};
use shared::domain::payment::StoredPayment;
use shared::domain::schedule::initial_schedule;
use shared::store::PaymentStore;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::AtomicU32;
use std::sync::Arc;

const MINUTE: i64 = 60_000;
const DAY: i64 = 24 * 60 * MINUTE;

async fn item(h: &Harness, id: &str) -> HashMap<String, AttributeValue> {
    stored_item(&h.dynamodb, &h.table, &format!("INTENT#{id}"))
        .await
        .unwrap_or_default()
}

fn text(item: &HashMap<String, AttributeValue>, attr: &str) -> Option<String> {
    item.get(attr).and_then(|v| v.as_s().ok()).cloned()
}

fn number(item: &HashMap<String, AttributeValue>, attr: &str) -> Option<i64> {
    item.get(attr)
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
}

async fn create(h: &Harness, key: &str) -> String {
    let body = BODY.replace("order-1", &format!("order-{key}"));
    let created = h.post(Some(key), &body).await;
    assert_eq!(created.status, 201, "{}", created.json);
    created.json["id"].as_str().unwrap().to_string()
}

fn serve(h: &Harness) -> impl std::future::Future<Output = String> {
    let webhook = Arc::new(webhook_service(
        h.store.inner.clone(),
        SystemClock,
        &[WEBHOOK_SECRET],
    ));
    serve_webhook(webhook, Arc::new(AtomicU32::new(0)))
}

#[tokio::test]
async fn deliveries_off_for_the_whole_retry_window_the_reconciler_records_the_payment_once() {
    let h = Harness::new().await;
    let url = serve(&h).await;
    h.sim.set_webhook(WebhookEndpoint {
        url,
        secret: WEBHOOK_SECRET.into(),
    });
    h.sim.set_delivery_mode(DeliveryMode::Off);
    let id = create(&h, "lost-webhooks").await;
    h.sim
        .finish(
            &id,
            &Finish {
                via_pending: true,
                ..Finish::outcome("succeeded")
            },
        )
        .unwrap();
    let deliveries = h.sim.wait_settled(2).await;
    assert!(deliveries.iter().all(|d| !d.delivered), "{deliveries:?}");
    assert_eq!(
        h.get(&id).await.json["status"],
        "created",
        "nothing arrived"
    );

    let (reconciler, lookups) = reconciler_with(&h, ReconcileSettings::default());
    assert_eq!(
        reconciler.run(None).await,
        RunSummary {
            capacity: 20_000,
            pace: 40,
            ..RunSummary::default()
        },
        "not due yet: nothing read, the run's size and pace without a deadline"
    );
    h.clock.advance_ms(2 * MINUTE);
    let summary = reconciler.run(None).await;
    assert_eq!(
        (summary.checked, summary.outcomes_found),
        (1, 1),
        "{summary:?}"
    );
    let got = h.get(&id).await;
    assert_eq!(got.json["status"], "succeeded");
    let stored = item(&h, &id).await;
    assert_eq!(
        text(&stored, "decided_by").as_deref(),
        Some("reconciliation")
    );
    assert_eq!(
        text(&stored, "outcome_event_id").as_deref(),
        Some("reconciliation:succeeded")
    );
    assert_eq!(number(&stored, "version"), Some(1), "one decision");
    assert!(!stored.contains_key("due_at"), "off the index");
    let again = h
        .post(
            Some("lost-webhooks-again"),
            &BODY.replace("order-1", "order-lost-webhooks"),
        )
        .await;
    assert_eq!(
        again.error_code(),
        "order_already_paid",
        "the order is paid"
    );
    h.clock.advance_ms(30 * DAY);
    assert_eq!(reconciler.run(None).await.checked, 0, "never checked again");
    assert_eq!(lookups.calls.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_wrong_webhook_secret_for_a_day_loses_nothing_and_the_late_webhooks_change_nothing() {
    let h = Harness::new().await;
    let url = serve(&h).await;
    h.sim.set_webhook(WebhookEndpoint {
        url,
        secret: WEBHOOK_SECRET.into(),
    });
    h.sim.set_delivery_mode(DeliveryMode::WrongSecret);
    let mut outcomes = BTreeMap::new();
    for (key, outcome) in [
        ("ws-1", "succeeded"),
        ("ws-2", "failed"),
        ("ws-3", "succeeded"),
    ] {
        let id = create(&h, key).await;
        h.sim.finish(&id, &Finish::outcome(outcome)).unwrap();
        outcomes.insert(id, outcome);
    }
    let deliveries = h.sim.wait_settled(3).await;
    assert!(deliveries
        .iter()
        .all(|d| !d.delivered && d.last_status == Some(400)));
    // Each refusal counts in the webhook's metrics: the alarm on a burst of them.
    let body = br#"{"id":"evt_1","type":"payment_intent.succeeded","data":{"id":"pi_1","status":"succeeded"}}"#;
    let refused = webhook_service(h.store.inner.clone(), SystemClock, &[WEBHOOK_SECRET])
        .accept(shared::app::receive_webhook::Delivery {
            signature: Some("t=1,v1=00"),
            body,
        })
        .await;
    assert!(webhook::delivery_counts(&refused, false).contains(&("SignatureRefusals", 1)));

    h.clock.advance_ms(DAY);
    let (reconciler, _) = reconciler_with(&h, ReconcileSettings::default());
    let summary = reconciler.run(None).await;
    assert_eq!(summary.outcomes_found, 3, "{summary:?}");
    for (id, outcome) in &outcomes {
        assert_eq!(h.get(id).await.json["status"], *outcome);
    }
    // The secret is fixed; Fintoc's remaining retries arrive and change nothing.
    h.sim.set_delivery_mode(DeliveryMode::Normal);
    assert_eq!(h.sim.redeliver_undelivered(), 3);
    let deliveries = h.sim.wait_settled(3).await;
    assert!(deliveries.iter().all(|d| d.delivered), "{deliveries:?}");
    for (id, outcome) in &outcomes {
        let stored = item(&h, id).await;
        assert_eq!(text(&stored, "status").as_deref(), Some(*outcome));
        assert_eq!(
            text(&stored, "decided_by").as_deref(),
            Some("reconciliation"),
            "the outcome stays as first recorded"
        );
        assert!(
            !stored.contains_key("anomalies"),
            "the same status again is no anomaly"
        );
    }
}

#[tokio::test]
async fn pending_for_days_then_final_and_a_never_resolving_intent_is_stuck_on_day_twelve() {
    let h = Harness::new().await;
    h.sim.set_delivery_mode(DeliveryMode::Off);
    let start = h.sim.now_ms();
    let paid = create(&h, "pending-9-days").await;
    let unresolved = create(&h, "pending-past-10-days").await;
    let never = create(&h, "pending-forever").await;
    for (id, until, finish) in [
        (&paid, start + 9 * DAY, Finish::outcome("succeeded")),
        (
            &unresolved,
            start + 10 * DAY + MINUTE,
            Finish {
                error_reason: Some("unresolved_final_status".into()),
                ..Finish::outcome("failed")
            },
        ),
        (&never, start + 100 * DAY, Finish::outcome("succeeded")),
    ] {
        let held = Finish {
            pending_until_ms: Some(until),
            ..finish
        };
        h.sim.finish(id, &held).unwrap();
    }
    let (reconciler, lookups) = reconciler_with(&h, ReconcileSettings::default());
    // Step both clocks to each next due check until no intent is scheduled.
    for _ in 0..100 {
        let mut due = Vec::new();
        for id in [&paid, &unresolved, &never] {
            if let Some(at) = number(&item(&h, id).await, "due_at") {
                due.push(at);
            }
        }
        let Some(next) = due.into_iter().min() else {
            break;
        };
        let delta = next - h.clock.now_ms();
        h.clock.advance_ms(delta);
        h.sim.advance_clock_ms(delta);
        reconciler.run(None).await;
    }
    let days = |item: &HashMap<String, AttributeValue>| {
        shared::clock::parse_rfc3339_ms(&text(item, "finalized_at").unwrap()).unwrap() - T0_MS
    };
    let paid_item = item(&h, &paid).await;
    assert_eq!(text(&paid_item, "status").as_deref(), Some("succeeded"));
    assert!((9 * DAY..10 * DAY).contains(&days(&paid_item)));
    let unresolved_item = item(&h, &unresolved).await;
    assert_eq!(text(&unresolved_item, "status").as_deref(), Some("failed"));
    assert_eq!(
        text(&unresolved_item, "error_reason").as_deref(),
        Some("unresolved_final_status")
    );
    let never_item = item(&h, &never).await;
    assert_eq!(text(&never_item, "status").as_deref(), Some("pending"));
    assert_eq!(text(&never_item, "flagged").as_deref(), Some("stuck"));
    let flagged_at =
        shared::clock::parse_rfc3339_ms(&text(&never_item, "flagged_at").unwrap()).unwrap();
    assert_eq!(flagged_at - T0_MS, 12 * DAY, "stuck on day 12");
    let checks = lookups.calls.lock().unwrap().len();
    assert!(
        checks <= 3 * 16,
        "a dozen checks per intent at most: {checks}"
    );
}

#[tokio::test]
async fn a_webhook_and_the_reconciler_racing_on_200_intents_apply_each_outcome_once() {
    let h = Harness::new().await;
    let url = serve(&h).await;
    h.sim.set_webhook(WebhookEndpoint {
        url,
        secret: WEBHOOK_SECRET.into(),
    });
    let ids: Vec<String> = futures::stream::iter(0..200)
        .map(|i| {
            let h = &h;
            async move { create(h, &format!("race-{i}")).await }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    h.clock.advance_ms(2 * MINUTE);
    let (reconciler, _) = reconciler_with(
        &h,
        ReconcileSettings {
            max_requests_per_sec: 80,
            concurrency: 16,
            ..ReconcileSettings::default()
        },
    );
    for id in &ids {
        h.sim.finish(id, &Finish::outcome("succeeded")).unwrap();
    }
    let (summary, deliveries) = tokio::join!(reconciler.run(None), h.sim.wait_settled(200));
    // 200 deliveries at once can outlast the simulator's short retry window on
    // DynamoDB Local; Fintoc would keep retrying for days, so retry what is left.
    let mut deliveries = deliveries;
    for _ in 0..5 {
        if deliveries.iter().all(|d| d.delivered) {
            break;
        }
        h.sim.redeliver_undelivered();
        deliveries = h.sim.wait_settled(200).await;
    }
    let undelivered: Vec<_> = deliveries.iter().filter(|d| !d.delivered).collect();
    assert!(undelivered.is_empty(), "{undelivered:?}");
    // Webhooks that land before the reconciler reads the index take their intent
    // off it; the others race the checks.
    assert!(summary.checked > 0 && summary.failed == 0, "{summary:?}");
    let mut by_reconciliation = 0;
    for id in &ids {
        let stored = item(&h, id).await;
        assert_eq!(text(&stored, "status").as_deref(), Some("succeeded"));
        let applied: HashSet<String> = stored
            .get("applied_event_ids")
            .and_then(|v| v.as_ss().ok())
            .map(|ids| ids.iter().cloned().collect())
            .unwrap_or_default();
        assert!(!applied.is_empty() && applied.len() <= 2, "{applied:?}");
        assert_eq!(
            number(&stored, "version"),
            Some(applied.len() as i64),
            "one write per distinct decision"
        );
        let decided_by = text(&stored, "decided_by").unwrap();
        let outcome_event = text(&stored, "outcome_event_id").unwrap();
        assert_eq!(
            decided_by == "reconciliation",
            outcome_event == "reconciliation:succeeded",
            "one outcome, by whoever came first"
        );
        by_reconciliation += u64::from(decided_by == "reconciliation");
        assert!(!stored.contains_key("anomalies"));
        let order = stored_item(
            &h.dynamodb,
            &h.table,
            &format!("ORDER#{}", text(&stored, "order_id").unwrap()),
        )
        .await
        .unwrap();
        assert_eq!(text(&order, "state").as_deref(), Some("paid"));
        assert!(!order.contains_key("anomalies"), "paid once");
    }
    assert_eq!(by_reconciliation, summary.outcomes_found);
}

/// `count` payment intents Fintoc (the simulator) knows as paid and the table holds
/// open, created at `T0_MS` (due two minutes later). Their ids.
async fn seed_paid_due(h: &Harness, count: usize) -> Vec<String> {
    let http = shared::fintoc::http_client_builder().build().unwrap();
    let store = h.store.inner.clone();
    futures::stream::iter(0..count)
        .map(|i| {
            let (http, sim, store) = (&http, &h.sim, &store);
            async move {
                let created: serde_json::Value = http
                    .post(format!("{}/v1/payment_intents", sim.base_url()))
                    .header("authorization", fintoc_sim::DEFAULT_SECRET_KEY)
                    .json(&serde_json::json!({"amount": 100 + i, "currency": "CLP"}))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                let id = created["id"].as_str().unwrap().to_string();
                sim.finish(&id, &Finish::outcome("succeeded")).unwrap();
                store
                    .save_created(&StoredPayment {
                        schedule: Some(initial_schedule(&id, T0_MS)),
                        ..shared::testkit::created_intent(&id, 100 + i as u64, "CLP", None)
                    })
                    .await
                    .unwrap();
                id
            }
        })
        .buffer_unordered(32)
        .collect()
        .await
}

#[tokio::test]
async fn a_backlog_of_due_intents_takes_several_bounded_runs_within_the_rate_limit() {
    const INTENTS: usize = 5_000;
    let h = Harness::new().await;
    h.sim.set_delivery_mode(DeliveryMode::Off);
    // Fintoc knows them all as paid; the table has them open and due.
    let seeded = seed_paid_due(&h, INTENTS).await;
    // Payments' checks alone: the refund sweep's requests are pinned by its own
    // test (tests/integration/refunds.rs).
    let settings = ReconcileSettings {
        max_intents_per_run: 1_500,
        max_requests_per_sec: 50,
        concurrency: 16,
        reserve_ms: 5_000,
        sweep_refunds: false,
        ..ReconcileSettings::default()
    };
    let (reconciler, lookups) = reconciler_with(&h, settings);
    h.clock.advance_ms(2 * MINUTE);
    let mut runs = 0;
    let mut recorded = 0;
    let mut figures = Vec::new();
    while recorded < INTENTS as u64 {
        let start = h.clock.now_ms();
        let before = lookups.calls.lock().unwrap().len();
        let usage_before = h.store.inner.usage();
        let wall = std::time::Instant::now();
        // An invocation of 60 s (virtual): at 50/s the deadline would stop it at
        // 2,750; the per-run bound (1,500) stops it first.
        let summary = reconciler.run(Some(start + 60_000)).await;
        let elapsed = wall.elapsed();
        let usage = h.store.inner.usage() - usage_before;
        // The cost, pinned: one query per index shard (plus one per fuller shard,
        // when emptier ones left part of their share unused), one write per
        // checked intent.
        assert!((16..=32).contains(&usage.read_requests), "{usage:?}");
        assert_eq!(usage.write_requests, summary.checked, "{usage:?}");
        figures.push(serde_json::json!({
            "checked": summary.checked,
            "seconds": elapsed.as_secs_f64(),
            "intents_per_second": summary.checked as f64 / elapsed.as_secs_f64(),
            "read_requests": usage.read_requests,
            "write_requests": usage.write_requests,
            "read_units": usage.read_units,
            "write_units": usage.write_units,
        }));
        let calls = lookups.calls.lock().unwrap()[before..].to_vec();
        let unique: HashSet<&String> = calls.iter().map(|(id, _)| id).collect();
        assert_eq!(unique.len(), calls.len(), "none checked twice in one run");
        assert!(calls.len() <= 1_500);
        let mut times: Vec<i64> = calls.iter().map(|(_, t)| *t).collect();
        times.sort_unstable();
        for (i, t) in times.iter().enumerate() {
            let in_second = times[i..].iter().take_while(|u| **u < t + 1_000).count();
            assert!(in_second <= 50, "at most 50 requests in any second");
        }
        assert!(times.last().is_none_or(|t| *t < start + 55_000));
        recorded += summary.outcomes_found;
        runs += 1;
        assert!(runs <= 6, "bounded runs finish the backlog");
        h.clock.advance_ms(5 * MINUTE);
    }
    // 1,500 a run while every shard has a full page (1,500 / 16 each) due,
    // fewer as the shards drain unevenly.
    assert!(
        (4..=6).contains(&runs),
        "5,000 at up to 1,500 a run: {runs}"
    );
    assert_eq!(
        lookups.calls.lock().unwrap().len(),
        INTENTS,
        "each checked once"
    );
    for id in seeded.iter().step_by(500) {
        assert_eq!(h.get(id).await.json["status"], "succeeded");
    }
    if let Ok(path) = std::env::var("RECONCILE_REPORT") {
        let report = serde_json::json!({"intents": INTENTS, "runs": figures});
        std::fs::write(path, format!("{report:#}\n")).unwrap();
    }
}

#[tokio::test]
async fn events_whose_optional_fields_changed_type_are_applied_not_refused() {
    let h = Harness::new().await;
    let url = serve(&h).await;
    h.sim.set_webhook(WebhookEndpoint {
        url,
        secret: WEBHOOK_SECRET.into(),
    });
    let id = create(&h, "retyped").await;
    h.sim
        .finish(
            &id,
            &Finish {
                via_pending: true,
                retyped: true,
                ..Finish::outcome("succeeded")
            },
        )
        .unwrap();
    let deliveries = h.sim.wait_settled(2).await;
    assert!(
        deliveries
            .iter()
            .all(|d| d.delivered && d.attempts == 1 && d.last_status == Some(200)),
        "{deliveries:?}"
    );
    assert_eq!(h.get(&id).await.json["status"], "succeeded");
    let stored = item(&h, &id).await;
    assert_eq!(text(&stored, "decided_by").as_deref(), Some("webhook"));
    assert!(
        !stored.contains_key("reported_amount"),
        "a string amount is absent"
    );
    assert!(!stored.contains_key("needs_review"));
    let again = h
        .post(
            Some("retyped-again"),
            &BODY.replace("order-1", "order-retyped"),
        )
        .await;
    assert_eq!(
        again.error_code(),
        "order_already_paid",
        "the order is paid"
    );
}

#[tokio::test]
async fn checks_that_keep_failing_are_counted_backed_off_and_never_silent() {
    // Fintoc refuses the reconciler's key (rotated, revoked): before, every run
    // was a quiet success (`checked=0 failed=1`) and the payment stayed at the
    // head of its shard, asked of Fintoc every five minutes forever.
    let h = Harness::new().await;
    h.sim.set_delivery_mode(DeliveryMode::Off);
    let id = create(&h, "refused-key").await;
    let refused = ReconcileService::new(
        h.store.inner.clone(),
        RecordedLookups {
            inner: fintoc_client(&h.sim, "sk_test_revoked_0000000000000000"),
            clock: h.clock.clone(),
            calls: Arc::default(),
        },
        h.clock.clone(),
        ManualPause(h.clock.clone()),
        ReconcileSettings::default(),
    );
    let due = |item: &HashMap<String, AttributeValue>| number(item, "due_at").unwrap();
    let first_due = due(&item(&h, &id).await);
    h.clock.set_ms(first_due);
    let summary = refused.run(None).await;
    // Both the payment's check and the run's refund sweep were refused.
    assert_eq!((summary.due, summary.checked, summary.failed), (1, 0, 2));
    assert!(summary.stalled(), "a run that got nothing done says so");
    let failing = item(&h, &id).await;
    assert_eq!(number(&failing, "failed_checks"), Some(1));
    assert_eq!(number(&failing, "failing_since_ms"), Some(first_due));
    assert!(due(&failing) >= first_due + 10 * MINUTE, "backed off");
    h.clock.set_ms(first_due + 5 * MINUTE);
    assert_eq!(refused.run(None).await.due, 0, "off the head of its shard");
    h.clock.set_ms(due(&failing));
    refused.run(None).await;
    let failing = item(&h, &id).await;
    assert_eq!(number(&failing, "failed_checks"), Some(2));
    assert_eq!(number(&failing, "failing_since_ms"), Some(first_due));
    // The key is fixed: the next check gets Fintoc's answer and clears the count.
    let (reconciler, _) = reconciler_for(&h);
    h.clock.set_ms(due(&failing));
    let summary = reconciler.run(None).await;
    assert_eq!((summary.checked, summary.failed), (1, 0), "{summary:?}");
    assert!(!summary.stalled());
    let answered = item(&h, &id).await;
    assert!(!answered.contains_key("failed_checks"), "{answered:?}");
    assert!(!answered.contains_key("failing_since_ms"));
    assert!(
        answered.contains_key("due_at"),
        "still open: still scheduled"
    );
}

/// Fintoc through the simulator, except for the payments whose lookups always fail.
#[derive(Clone)]
struct PartlyBroken(RecordedLookups);

impl shared::fintoc::FintocLookup for PartlyBroken {
    async fn get_payment_intent(
        &self,
        id: &str,
        budget: Option<std::time::Duration>,
    ) -> Result<Option<shared::domain::report::PaymentReport>, shared::fintoc::FintocError> {
        if id.starts_with("pi_broken_") {
            return Err(shared::fintoc::FintocError::Unavailable {
                status: 503,
                attempts: 3,
            });
        }
        self.0.get_payment_intent(id, budget).await
    }

    async fn get_checkout_session(
        &self,
        id: &str,
        budget: Option<std::time::Duration>,
    ) -> Result<Option<shared::domain::session::SessionReport>, shared::fintoc::FintocError> {
        self.0.get_checkout_session(id, budget).await
    }

    async fn get_refund(
        &self,
        id: &str,
        budget: Option<std::time::Duration>,
    ) -> Result<Option<shared::domain::refund::RefundReport>, shared::fintoc::FintocError> {
        self.0.get_refund(id, budget).await
    }

    async fn list_refunds(
        &self,
        since: &str,
        until: Option<&str>,
        budget: Option<std::time::Duration>,
    ) -> Result<shared::fintoc::RefundList, shared::fintoc::FintocError> {
        self.0.list_refunds(since, until, budget).await
    }

    async fn list_payment_intents(
        &self,
        since: &str,
        budget: Option<std::time::Duration>,
    ) -> Result<shared::fintoc::PaymentList, shared::fintoc::FintocError> {
        self.0.list_payment_intents(since, budget).await
    }
}

#[tokio::test]
async fn payments_whose_checks_always_fail_never_starve_their_shard() {
    // More permanently failing payments than a run reads of one shard, all due
    // before a healthy payment of the same shard: before, they held the head of
    // the shard forever and the healthy one was never checked.
    let h = Harness::new().await;
    h.sim.set_delivery_mode(DeliveryMode::Off);
    let healthy = create(&h, "healthy-behind-broken").await;
    h.sim
        .finish(&healthy, &Finish::outcome("succeeded"))
        .unwrap();
    let shard = shared::domain::schedule::shard_of(&healthy);
    let broken: Vec<String> = (0..)
        .map(|i| format!("pi_broken_{i}"))
        .filter(|id| shared::domain::schedule::shard_of(id) == shard)
        .take(40)
        .collect();
    for id in &broken {
        h.store
            .inner
            .save_created(&StoredPayment {
                schedule: Some(initial_schedule(id, T0_MS - MINUTE)),
                ..shared::testkit::created_intent(id, 100, "CLP", None)
            })
            .await
            .unwrap();
    }
    let service = ReconcileService::new(
        h.store.inner.clone(),
        PartlyBroken(RecordedLookups {
            inner: fintoc_client(&h.sim, fintoc_sim::DEFAULT_SECRET_KEY),
            clock: h.clock.clone(),
            calls: Arc::default(),
        }),
        h.clock.clone(),
        ManualPause(h.clock.clone()),
        // 16 shards x 32: a run reads 33 of the shard, all of them broken.
        ReconcileSettings {
            max_intents_per_run: 16 * 32,
            ..ReconcileSettings::default()
        },
    );
    let mut runs = 0;
    loop {
        h.clock.advance_ms(5 * MINUTE);
        h.sim.advance_clock_ms(5 * MINUTE);
        service.run(None).await;
        runs += 1;
        if text(&item(&h, &healthy).await, "status").as_deref() == Some("succeeded") {
            break;
        }
        assert!(runs < 4, "the healthy payment is reached within a few runs");
    }
    let failing = item(&h, &broken[0]).await;
    assert!(number(&failing, "failed_checks").is_some_and(|n| n >= 1));
}

/// An alarm's `MetricName` and `Threshold` in `template.yaml`.
fn alarm(logical_id: &str) -> (String, u64) {
    let template =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml")).unwrap();
    let at = template
        .find(&format!("\n  {logical_id}:\n"))
        .unwrap_or_else(|| panic!("{logical_id} in the template"));
    let field = |name: &str| {
        template[at..]
            .lines()
            .find_map(|l| l.trim().strip_prefix(name))
            .unwrap()
            .trim()
            .to_string()
    };
    (field("MetricName:"), field("Threshold:").parse().unwrap())
}

#[tokio::test]
async fn a_backlog_that_outgrows_the_runs_raises_both_alarms_and_a_small_one_neither() {
    let h = Harness::new().await;
    h.sim.set_delivery_mode(DeliveryMode::Off);
    seed_paid_due(&h, 300).await;
    let settings = ReconcileSettings {
        max_requests_per_sec: 2,
        reserve_ms: 5_000,
        sweep_refunds: false,
        ..ReconcileSettings::default()
    };
    let (reconciler, _) = reconciler_with(&h, settings);
    let crossed = |summary: &shared::app::reconcile::RunSummary, alarm_id: &str| {
        let (name, threshold) = alarm(alarm_id);
        let metrics = reconcile::run_metrics(summary);
        let value = metrics
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("the run publishes {name}"))
            .1;
        value >= threshold
    };
    h.clock.advance_ms(2 * MINUTE);
    let mut runs = Vec::new();
    loop {
        // Runs of 60 s (virtual), 55 s of checks at 2/s: 110 checks each.
        let start = h.clock.now_ms();
        let summary = reconciler.run(Some(start + 60_000)).await;
        assert_eq!(summary.capacity, 110, "{summary:?}");
        runs.push(summary.clone());
        if summary.due_read == 0 {
            break;
        }
        assert!(runs.len() <= 5, "{runs:#?}");
        h.clock.advance_ms(5 * MINUTE);
    }
    let first = &runs[0];
    assert!(first.utilization_percent > 100, "{first:?}");
    assert!(first.due_left > 0, "{first:?}");
    // What the first run left waited a whole interval more: past the promise.
    assert!(
        runs[1].oldest_due_age_ms > 5 * MINUTE as u64,
        "{:?}",
        runs[1]
    );
    assert!(crossed(first, "ReconcileAtRiskAlarm"), "{first:?}");
    assert!(crossed(first, "ReconcileBehindAlarm"), "{first:?}");
    // The backlog drains at the runs' full capacity (the shards' unused shares go
    // to the fuller ones); the last run with work is under both thresholds.
    let checked: Vec<u64> = runs.iter().map(|r| r.checked).collect();
    assert_eq!(checked, [110, 110, 80, 0], "{runs:#?}");
    let last_work = &runs[2];
    assert_eq!(last_work.due_left, 0, "{last_work:?}");
    assert!(!crossed(last_work, "ReconcileAtRiskAlarm"));
    assert!(!crossed(last_work, "ReconcileBehindAlarm"));
}

/// A number from the environment, else `default`.
fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A sale day with webhooks down (the simulator's deliveries off), in virtual time:
/// `SALE_DAY_RATE` payments a second (default 2) through the create function for
/// `SALE_DAY_SECONDS` (default 150), 8 in 10 paid at Fintoc at once, the rest
/// abandoned; the reconciler every 5 minutes on its own clock (its pacing and its
/// 265 s of checks in virtual time, its default settings: 40/s), then on until
/// nothing is due. Every paid payment must be recorded, and — unless
/// `SALE_DAY_ASSERT_PROMISE=0` — by the first run that starts once it is due
/// (within one interval of becoming due, plus that run's time to reach it). `make bench`
/// runs it at 10 and 50 payments/s (`SALE_DAY_REPORT`: the figures).
#[tokio::test]
async fn a_sale_day_with_webhooks_down_is_recorded_by_the_first_run_after_due() {
    use shared::clock::ManualClock;
    let rate: usize = env_or("SALE_DAY_RATE", 2);
    let seconds: i64 = env_or("SALE_DAY_SECONDS", 150);
    let assert_promise = env_or("SALE_DAY_ASSERT_PROMISE", 1) == 1;
    const INTERVAL: i64 = 5 * MINUTE;
    const FIRST_CHECK: i64 = 2 * MINUTE;
    let h = Harness::new().await;
    h.sim.set_delivery_mode(DeliveryMode::Off);
    let start = h.clock.now_ms();
    let rclock = ManualClock::new(start);
    let lookups = RecordedLookups {
        inner: fintoc_client(&h.sim, fintoc_sim::DEFAULT_SECRET_KEY),
        clock: rclock.clone(),
        calls: Arc::default(),
    };
    let reconciler = ReconcileService::new(
        h.store.inner.clone(),
        lookups.clone(),
        rclock.clone(),
        ManualPause(rclock.clone()),
        ReconcileSettings {
            sweep_refunds: false,
            ..ReconcileSettings::default()
        },
    );
    let wall = std::time::Instant::now();
    let end = start + seconds * 1000;
    let (mut t, mut next_run) = (start, start + INTERVAL);
    let mut paid: Vec<(String, i64)> = Vec::new();
    let mut runs = Vec::new();
    let mut creates = 0usize;
    loop {
        if t < end {
            h.clock.set_ms(t);
            let made: Vec<Option<(String, i64)>> = futures::stream::iter(0..rate)
                .map(|i| {
                    let h = &h;
                    async move {
                        let order = format!("sale-{t}-{i}");
                        let body = serde_json::json!({"amount": 15000, "currency": "CLP", "order_id": order});
                        let created = h.post(Some(&order), &body.to_string()).await;
                        assert_eq!(created.status, 201, "{}", created.json);
                        let id = created.json["id"].as_str().unwrap().to_string();
                        // 8 in 10 paid, spread over seconds and slots alike.
                        let n = (t - start) / 1000 * rate as i64 + i as i64;
                        (n % 10 < 8).then(|| {
                            h.sim.finish(&id, &Finish::outcome("succeeded")).unwrap();
                            (id, t)
                        })
                    }
                })
                .buffer_unordered(16)
                .collect()
                .await;
            creates += made.len();
            paid.extend(made.into_iter().flatten());
        }
        t += 1000;
        if t < next_run {
            continue;
        }
        rclock.set_ms(next_run);
        let before = lookups.calls.lock().unwrap().len();
        let summary = reconciler.run(Some(next_run + 280_000)).await;
        let checks = lookups.calls.lock().unwrap().len() - before;
        let took_ms = (rclock.now_ms() - next_run).max(1);
        runs.push(serde_json::json!({
            "at_s": (next_run - start) / 1000,
            "due_read": summary.due_read,
            "checked": summary.checked,
            "pace": summary.pace,
            "utilization_percent": summary.utilization_percent,
            "due_left": summary.due_left,
            "oldest_due_age_s": summary.oldest_due_age_ms / 1000,
            "fintoc_checks_per_s": checks as f64 * 1000.0 / took_ms as f64,
        }));
        next_run += INTERVAL;
        if t >= end && summary.due_read == 0 {
            break;
        }
        assert!(
            next_run < end + 24 * 60 * MINUTE,
            "the backlog never drained"
        );
    }
    // Each paid payment recorded, and when: its last write is the reconciler's. The
    // promise: by the first run that starts once it is due (runs start every
    // interval from `start`), so before the run after it.
    let first_run_after = |due: i64| {
        start
            + (due - start).div_euclid(INTERVAL).max(0) * INTERVAL
            + if (due - start).rem_euclid(INTERVAL) == 0 {
                0
            } else {
                INTERVAL
            }
    };
    let mut lags: Vec<i64> = Vec::with_capacity(paid.len());
    let (mut last_recorded, mut late) = (start, 0usize);
    for chunk in paid.chunks(64) {
        let read = futures::future::join_all(chunk.iter().map(|(id, created)| {
            let store = &h.store.inner;
            async move {
                let p = store
                    .get_payment(shared::domain::payment::PaymentKind::Intent, id)
                    .await
                    .unwrap()
                    .unwrap();
                assert_eq!(p.status.as_str(), "succeeded", "{id} recorded");
                let recorded = shared::clock::parse_rfc3339_ms(&p.updated_at).unwrap();
                (recorded, created + FIRST_CHECK)
            }
        }))
        .await;
        for (recorded, due) in read {
            last_recorded = last_recorded.max(recorded);
            lags.push(recorded - due);
            late += usize::from(recorded >= first_run_after(due) + INTERVAL);
        }
    }
    lags.sort_unstable();
    let at = |q: f64| lags[((lags.len() - 1) as f64 * q) as usize] / 1000;
    let report = serde_json::json!({
        "rate_per_s": rate,
        "seconds": seconds,
        "payments": creates,
        "paid": paid.len(),
        "runs": runs,
        "peak_backlog": runs.iter().map(|r| r["due_read"].as_u64().unwrap()).max(),
        "lag_s": {"p50": at(0.5), "p99": at(0.99), "max": at(1.0)},
        "recorded_after_a_later_run": late,
        "all_recorded_after_end_s": (last_recorded - end).max(0) / 1000,
        "wall_seconds": wall.elapsed().as_secs_f64(),
    });
    if let Ok(path) = std::env::var("SALE_DAY_REPORT") {
        std::fs::write(path, format!("{report:#}\n")).unwrap();
    }
    if assert_promise {
        assert_eq!(
            late, 0,
            "each recorded by the first run after it became due: {report:#}"
        );
    }
}
