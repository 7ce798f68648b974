//! Load runs: a fleet of processes driven concurrently, then every invariant checked
//! on the table and the simulator (nothing lost, nothing applied twice).

use crate::events::{create_event, http_answer, uuid_like, webhook_body, webhook_event};
use crate::network::Alternating;
use crate::runtime_api::RuntimeApi;
use crate::setup::{dynamodb_client, process_usage, seed_intent, Setup};
use crate::stats::{ms, summary};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub(crate) struct Fleet {
    pub(crate) api: Arc<RuntimeApi>,
    pub(crate) children: Vec<tokio::process::Child>,
}

impl Fleet {
    pub(crate) async fn start(setup: &Setup, instances: usize) -> Fleet {
        let api = RuntimeApi::start().await;
        let children = (0..instances).map(|_| setup.spawn(&api)).collect();
        Fleet { api, children }
    }

    /// Peak RSS (MiB) and CPU milliseconds of each process.
    pub(crate) fn usage(&self) -> Vec<(f64, f64)> {
        self.children
            .iter()
            .filter_map(|c| c.id())
            .map(|pid| {
                let (kib, cpu_ms) = process_usage(pid);
                (kib as f64 / 1024.0, cpu_ms)
            })
            .collect()
    }
}

/// One invocation, timed.
pub(crate) struct Timed {
    /// Its event's tag.
    pub(crate) tag: usize,
    /// Its duration, ms.
    pub(crate) ms: f64,
    /// It ran with the round trip on (always, unless [`Alternating`]).
    pub(crate) delayed: bool,
    /// The DynamoDB requests it made, when [`Alternating`] counts them.
    pub(crate) requests: Option<u64>,
    /// The time DynamoDB Local itself took to answer them (ms), when
    /// [`Alternating`] counts them.
    pub(crate) dynamodb_ms: Option<f64>,
}

/// What a drive gave: each event's final answer (tag, status, body), each event's
/// latency, each invocation timed, and the retries.
type Driven = (Vec<(usize, u16, Value)>, Vec<f64>, Vec<Timed>, u64);

/// Sends every event through the fleet, `concurrency` at a time, retrying 5xx and
/// errors like Fintoc or a merchant's backend (up to 8 times, with backoff). With
/// `alternating` (one at a time only), each event takes its turn's round trip,
/// its retries too.
pub(crate) async fn drive(
    api: Arc<RuntimeApi>,
    events: Vec<(usize, Vec<u8>)>,
    concurrency: usize,
    alternating: Option<Alternating>,
) -> Driven {
    assert!(
        alternating.is_none() || concurrency == 1,
        "alternating round trips need one invocation at a time"
    );
    let queue = Arc::new(Mutex::new((events, 0usize)));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (api, queue, alternating) = (api.clone(), queue.clone(), alternating.clone());
        tasks.push(tokio::spawn(async move {
            let mut answers = Vec::new();
            let (mut latencies, mut durations, mut retries) = (Vec::new(), Vec::new(), 0u64);
            loop {
                let next = {
                    let mut queue = queue.lock().unwrap();
                    let ordinal = queue.1;
                    queue.1 += 1;
                    queue.0.pop().map(|event| (ordinal, event))
                };
                let Some((ordinal, (tag, event))) = next else {
                    break;
                };
                let delayed = alternating.as_ref().is_none_or(|a| a.turn(ordinal));
                let started = Instant::now();
                let mut attempt = 0;
                loop {
                    let exchanges = alternating.as_ref().map(|a| &a.exchanges);
                    let before = exchanges.map(|e| (e.count(), e.upstream_time()));
                    let outcome = api.invoke(event.clone()).await;
                    let counted = exchanges.zip(before).map(|(e, (count, time))| {
                        (e.count() - count, ms(e.upstream_time() - time))
                    });
                    durations.push(Timed {
                        tag,
                        ms: ms(outcome.duration),
                        delayed,
                        requests: counted.map(|c| c.0),
                        dynamodb_ms: counted.map(|c| c.1),
                    });
                    let (status, body) = http_answer(&outcome);
                    if (status >= 500 || status == 0 || status == 409) && attempt < 8 {
                        // Back off like a client would (10 ms, 20 ms, ... 1.28 s).
                        tokio::time::sleep(Duration::from_millis(10 << attempt)).await;
                        attempt += 1;
                        retries += 1;
                        continue;
                    }
                    latencies.push(ms(started.elapsed()));
                    answers.push((tag, status, body));
                    break;
                }
            }
            (answers, latencies, durations, retries)
        }));
    }
    let (mut answers, mut latencies, mut durations, mut retries) =
        (Vec::new(), Vec::new(), Vec::new(), 0);
    for task in tasks {
        let (a, l, d, r) = task.await.expect("driver task");
        answers.extend(a);
        latencies.extend(l);
        durations.extend(d);
        retries += r;
    }
    (answers, latencies, durations, retries)
}

pub(crate) fn fleet_report(usage: &[(f64, f64)], invocations: usize) -> Value {
    let cpu_total: f64 = usage.iter().map(|u| u.1).sum();
    json!({
        "processes": usage.len(),
        "peak_rss_mib": summary(usage.iter().map(|u| u.0).collect()),
        "cpu_ms_total": cpu_total,
        "cpu_ms_per_invocation": (cpu_total / invocations.max(1) as f64 * 1000.0).round() / 1000.0,
    })
}

/// One load run: a fleet of `concurrency` processes driven with `events`.
pub(crate) struct LoadRun {
    pub(crate) answers: Vec<(usize, u16, Value)>,
    /// The answers to the warm-up events ([`LoadRun::execute_warmed`]).
    pub(crate) warmup_answers: Vec<(usize, u16, Value)>,
    /// Each invocation, timed.
    pub(crate) durations: Vec<Timed>,
    pub(crate) figures: Value,
}

impl LoadRun {
    pub(crate) async fn execute(
        setup: &Setup,
        events: Vec<(usize, Vec<u8>)>,
        concurrency: usize,
    ) -> Self {
        Self::execute_warmed(setup, Vec::new(), events, concurrency).await
    }

    /// [`LoadRun::execute`], after `warmup` events sent first, in order, one at a
    /// time, through the same processes, and left out of every figure: a fresh
    /// DynamoDB Local runs a request path interpreted until its JIT compiles it,
    /// and a process's first requests pay for what it sets up lazily — tails a
    /// warm deployed function on DynamoDB does not have.
    pub(crate) async fn execute_warmed(
        setup: &Setup,
        mut warmup: Vec<(usize, Vec<u8>)>,
        events: Vec<(usize, Vec<u8>)>,
        concurrency: usize,
    ) -> Self {
        let (count, warm) = (events.len(), warmup.len());
        let fleet = Fleet::start(setup, concurrency).await;
        // The drivers pop from the end.
        warmup.reverse();
        let alternating = setup.alternating.clone();
        let (warmup_answers, ..) = drive(fleet.api.clone(), warmup, 1, alternating.clone()).await;
        let requests = || setup.dynamodb_requests.as_ref().map(|r| r.count());
        let requests_before = requests();
        let started = Instant::now();
        let (answers, latencies, durations, retries) =
            drive(fleet.api.clone(), events, concurrency, alternating).await;
        let elapsed = started.elapsed();
        // Counted at the proxy, when there is one: what each invocation really
        // asked DynamoDB (a round trip each, in sequence or not).
        let invocations = (count + retries as usize).max(1) as f64;
        let dynamodb_requests = requests()
            .zip(requests_before)
            .map(|(after, before)| (after - before) as f64 / invocations);
        let usage = fleet.usage();
        drop(fleet);
        let figures = json!({
            "concurrency": concurrency,
            "elapsed_s": (elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
            "throughput_per_s": (count as f64 / elapsed.as_secs_f64()).round(),
            "latency_ms": summary(latencies),
            "invocation_duration_ms": summary(durations.iter().map(|d| d.ms).collect()),
            "alternating": setup.alternating.as_ref().map(|_| alternated(durations.iter())),
            "retried_invocations": retries,
            "network": setup.network,
            "dynamodb_requests_per_invocation": dynamodb_requests,
            "warmup_invocations": warm,
            "fleet": fleet_report(&usage, count + warm + retries as usize),
        });
        Self {
            answers,
            warmup_answers,
            durations,
            figures,
        }
    }

    /// The run's figures with `extra` fields added.
    pub(crate) fn report(&self, extra: Value) -> Value {
        let mut report = self.figures.clone();
        if let (Some(report), Value::Object(extra)) = (report.as_object_mut(), extra) {
            report.extend(extra);
        }
        report
    }
}

/// An alternating run's invocations compared by setting: each setting's
/// durations, DynamoDB requests, DynamoDB Local's own time and the rest (the
/// function, Fintoc, the network), and the round trip's cost as the spread of the
/// differences between neighbouring invocations of the two settings.
pub(crate) fn alternated<'a>(invocations: impl Iterator<Item = &'a Timed>) -> Value {
    let invocations: Vec<&Timed> = invocations.collect();
    let setting = |delayed: bool| {
        let of: Vec<&&Timed> = invocations
            .iter()
            .filter(|t| t.delayed == delayed)
            .collect();
        let requests: u64 = of.iter().filter_map(|t| t.requests).sum();
        let dynamodb_local = |t: &&&Timed| t.dynamodb_ms.unwrap_or(0.0);
        json!({
            "invocation_duration_ms": summary(of.iter().map(|t| t.ms).collect()),
            "dynamodb_local_ms": summary(of.iter().map(dynamodb_local).collect()),
            "outside_dynamodb_local_ms": summary(of.iter().map(|t| t.ms - dynamodb_local(t)).collect()),
            "dynamodb_requests_per_invocation": requests as f64 / of.len().max(1) as f64,
        })
    };
    let samples: Vec<(f64, bool)> = invocations.iter().map(|t| (t.ms, t.delayed)).collect();
    json!({
        "undelayed": setting(false),
        "delayed": setting(true),
        "added_ms": summary(latency_proxy::alternation::paired_differences(&samples)),
    })
}

/// What a webhook load run sends.
pub(crate) struct WebhookLoad {
    /// Intents, each with its events.
    pub(crate) intents: usize,
    /// Invocations at once.
    pub(crate) concurrency: usize,
    /// The share of deliveries that repeat an event.
    pub(crate) duplicate_share: f64,
    /// Each intent's events in order (else shuffled).
    pub(crate) in_order: bool,
    /// The intents created first, as the create leaves them.
    pub(crate) seeded: bool,
    /// Distinct events per intent.
    pub(crate) events_per_intent: usize,
    /// Intents of their own whose two events are sent first, unmeasured.
    pub(crate) warmup: usize,
}

pub(crate) async fn load_webhook(setup: &Setup, load: WebhookLoad) -> Result<Value, String> {
    let WebhookLoad {
        intents,
        concurrency,
        duplicate_share,
        in_order,
        seeded,
        events_per_intent,
        warmup,
    } = load;
    const OUTCOMES: [&str; 3] = ["succeeded", "failed", "rejected"];
    // Per intent: 7 distinct events by default (3 pending, 4 with its outcome), or
    // `events_per_intent` (all `pending` but the last: 2 is the usual life, a
    // `pending` then its outcome); then a share of all deliveries are repeats of
    // some of them.
    let mut unique = Vec::new();
    let mut expected = BTreeMap::new();
    for i in 0..intents {
        let intent = format!("pi_load_{i:05}_{}", &uuid_like()[..8]);
        let outcome = OUTCOMES[i % 10 % 3];
        let outcome = if i % 10 < 7 { "succeeded" } else { outcome };
        let pending = if events_per_intent == 7 {
            3
        } else {
            events_per_intent.saturating_sub(1)
        };
        for e in 0..events_per_intent {
            let status = if e < pending { "pending" } else { outcome };
            unique.push((
                intent.clone(),
                format!("evt_{i:05}_{e}_{}", &uuid_like()[..6]),
                status,
            ));
        }
        expected.insert(intent, outcome);
    }
    // With `seeded`, the intents exist before their events, as the create leaves them
    // (so a final event is a transaction with its order); seeded before the events
    // are signed, so the run starts well within their tolerance. Without, each
    // intent is first seen through its events (no order: single-item writes).
    // Warm-up intents of their own, each a `pending` then `succeeded`, sent first
    // and left out of every figure and invariant.
    let warm_intents: Vec<String> = (0..warmup)
        .map(|i| format!("pi_warm_{i:05}_{}", &uuid_like()[..8]))
        .collect();
    let mut seeding = tokio::task::JoinSet::new();
    let to_seed: Vec<String> = if seeded {
        expected.keys().chain(&warm_intents).cloned().collect()
    } else {
        Vec::new()
    };
    for chunk in to_seed.chunks(64) {
        let (chunk, store) = (chunk.to_vec(), setup.store());
        seeding.spawn(async move {
            for intent in chunk {
                seed_intent(&store, &intent).await?;
            }
            Ok::<_, String>(())
        });
    }
    while let Some(seeded) = seeding.join_next().await {
        seeded.map_err(|e| format!("seeding: {e}"))??;
    }
    let client = dynamodb_client(&setup.dynamodb);
    let seeded_versions: HashMap<String, u64> = scan_intents(&client, &setup.table)
        .await?
        .into_iter()
        .map(|(id, (_, _, version))| (id, version))
        .collect();

    let total = (unique.len() as f64 / (1.0 - duplicate_share)).round() as usize;
    let mut deliveries: Vec<usize> = if in_order {
        // Each intent's events in order, a repeat right after the event it repeats
        // (as Fintoc's retries come), spread evenly.
        let mut stream = Vec::with_capacity(total);
        let mut owed = 0.0;
        for u in 0..unique.len() {
            stream.push(u);
            owed += duplicate_share / (1.0 - duplicate_share);
            while owed >= 1.0 {
                stream.push(u);
                owed -= 1.0;
            }
        }
        stream
    } else {
        let mut stream: Vec<usize> = (0..unique.len()).collect();
        while stream.len() < total {
            stream.push(fastrand::usize(..unique.len()));
        }
        fastrand::shuffle(&mut stream);
        stream
    };
    // The drivers pop from the end.
    deliveries.reverse();
    let events: Vec<(usize, Vec<u8>)> = deliveries
        .iter()
        .map(|&u| {
            let (intent, event_id, status) = &unique[u];
            (u, webhook_event(&webhook_body(event_id, intent, status)))
        })
        .collect();

    let warm_events = warm_intents
        .iter()
        .flat_map(|intent| {
            ["pending", "succeeded"].map(|status| {
                let event_id = format!("evt_warm_{}", &uuid_like()[..12]);
                (0, webhook_event(&webhook_body(&event_id, intent, status)))
            })
        })
        .collect();
    let run = LoadRun::execute_warmed(setup, warm_events, events, concurrency).await;
    if let Some((_, status, body)) = run.warmup_answers.iter().find(|(_, s, _)| *s != 200) {
        return Err(format!("a warm-up event was refused: {status} {body}"));
    }
    let answers = &run.answers;

    // Invariants, on the table itself.
    let refused = answers.iter().filter(|(_, s, _)| *s != 200).count();
    let items = scan_intents(&client, &setup.table).await?;
    let mut wrong_status = 0;
    let mut lost_events = 0;
    let mut applied_twice = 0;
    for (intent, outcome) in &expected {
        let Some((status, event_ids, version)) = items.get(intent) else {
            wrong_status += 1;
            lost_events += events_per_intent;
            continue;
        };
        if status != outcome {
            wrong_status += 1;
        }
        lost_events += events_per_intent.saturating_sub(event_ids.len());
        // Every write increments the version: more writes than events = applied twice.
        let seeded = seeded_versions.get(intent).copied().unwrap_or(0);
        applied_twice +=
            (version.saturating_sub(seeded) as usize).saturating_sub(events_per_intent);
    }
    // Invocation durations by what the event is: a `pending`, or an outcome (with a
    // seeded intent, the two-item transaction with its order).
    let unique = &unique;
    let of_kind = |pending: bool| {
        run.durations
            .iter()
            .filter(move |d| (unique[d.tag].2 == "pending") == pending)
    };
    let by_kind = |pending: bool| summary(of_kind(pending).map(|d| d.ms).collect());
    let alternated_by_kind = |pending: bool| {
        setup
            .alternating
            .as_ref()
            .map(|_| alternated(of_kind(pending)))
    };
    let report = run.report(json!({
        "invocation_duration_ms_by_event": {"pending": by_kind(true), "outcome": by_kind(false)},
        "alternating_by_event": {"pending": alternated_by_kind(true), "outcome": alternated_by_kind(false)},
        "deliveries": deliveries.len(),
        "intents": intents,
        "distinct_events": unique.len(),
        "events_per_intent": events_per_intent,
        "order": if in_order { "in order" } else { "shuffled" },
        "intents_created_first": seeded,
        "duplicate_share": ((deliveries.len() - unique.len()) as f64 / deliveries.len() as f64 * 1000.0).round() / 1000.0,
        "invariants": {
            "deliveries_not_acknowledged": refused,
            "intents_in_wrong_state": wrong_status,
            "events_lost": lost_events,
            "events_applied_twice": applied_twice,
        },
    }));
    if refused + wrong_status + lost_events + applied_twice > 0 {
        return Err(format!("invariants broken: {report:#}"));
    }
    Ok(report)
}

/// `INTENT#` items: status, applied event ids, version.
pub(crate) async fn scan_intents(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
) -> Result<HashMap<String, (String, Vec<String>, u64)>, String> {
    let mut items = HashMap::new();
    let mut start = None;
    loop {
        let page = client
            .scan()
            .table_name(table)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| format!("scan: {e}"))?;
        for item in page.items() {
            let text = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
            let Some(pk) = text("pk") else { continue };
            let Some(id) = pk.strip_prefix("INTENT#") else {
                continue;
            };
            let ids = item
                .get("applied_event_ids")
                .and_then(|v| v.as_ss().ok())
                .cloned()
                .unwrap_or_default();
            let version = item
                .get("version")
                .and_then(|v| v.as_n().ok())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            items.insert(
                id.to_string(),
                (text("status").unwrap_or_default(), ids, version),
            );
        }
        match page.last_evaluated_key() {
            Some(k) => start = Some(k.clone()),
            None => return Ok(items),
        }
    }
}

/// Creates through the fleet: `keys` keys, each sent `repeats` times, shuffled,
/// after `warmup` creates of their own keys ([`LoadRun::execute_warmed`]).
pub(crate) async fn load_create(
    setup: &Setup,
    keys: usize,
    repeats: usize,
    concurrency: usize,
    warmup: usize,
) -> Result<Value, String> {
    let run = &uuid_like()[..8];
    let warm = (0..warmup)
        .map(|k| (k, create_event(&format!("warm-{run}-{k:05}"), 1000)))
        .collect();
    let mut events: Vec<(usize, Vec<u8>)> = (0..keys)
        .flat_map(|k| {
            (0..repeats).map(move |_| {
                (
                    k,
                    create_event(&format!("load-{run}-{k:05}"), 1000 + k as u64),
                )
            })
        })
        .collect();
    fastrand::shuffle(&mut events);
    let requests = events.len();
    let run = LoadRun::execute_warmed(setup, warm, events, concurrency).await;
    if let Some((_, status, body)) = run.warmup_answers.iter().find(|(_, s, _)| *s != 201) {
        return Err(format!("a warm-up create failed: {status} {body}"));
    }
    let answers = &run.answers;

    let mut ids: HashMap<usize, Vec<String>> = HashMap::new();
    let mut not_created = 0;
    for (key, status, body) in answers {
        match (status, body["id"].as_str()) {
            (201, Some(id)) => ids.entry(*key).or_default().push(id.to_string()),
            _ => not_created += 1,
        }
    }
    let keys_with_two_intents = ids
        .values()
        .filter(|v| v.iter().any(|id| id != &v[0]))
        .count();
    let keys_without_intent = keys - ids.len();
    let intents_at_fintoc = setup.sim.intents_created() - warmup as u64;
    let stored = scan_intents(&dynamodb_client(&setup.dynamodb), &setup.table)
        .await?
        .len()
        - warmup;
    let report = run.report(json!({
        "warmup_creates": warmup,
        "requests": requests,
        "keys": keys,
        "repeats_per_key": repeats,
        "invariants": {
            "requests_not_answered_201": not_created,
            "keys_with_two_intents": keys_with_two_intents,
            "keys_without_intent": keys_without_intent,
            "intents_created_at_fintoc": intents_at_fintoc,
            "intents_stored": stored,
        },
    }));
    if not_created + keys_with_two_intents + keys_without_intent > 0
        || intents_at_fintoc != keys as u64
        || stored != keys
    {
        return Err(format!("invariants broken: {report:#}"));
    }
    Ok(report)
}
