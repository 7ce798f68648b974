#!/usr/bin/env python3
"""Writes docs/performance.md from the JSON results of scripts/bench.sh.

usage: scripts/bench_report.py RESULTS_DIR > docs/performance.md
"""
import datetime
import json
import os
import platform
import subprocess
import sys

results = sys.argv[1]


def load(name):
    path = os.path.join(results, name)
    return json.load(open(path)) if os.path.exists(path) else None


# Serial runs through a delayed network: (operation, DynamoDB ms, Fintoc ms) -> runs.
rtt_runs = {}
for name in sorted(os.listdir(results)):
    if name.startswith("rtt_"):
        _, op, ddb_rtt, fintoc_rtt, _ = name[: -len(".json")].split("_")
        rtt_runs.setdefault((op, int(ddb_rtt), int(fintoc_rtt)), []).append(load(name))


def median(values):
    values = sorted(values)
    n = len(values)
    return (values[n // 2] if n % 2 else (values[n // 2 - 1] + values[n // 2]) / 2) if n else 0.0


def series(runs, kind):
    """Each run's invocation durations, of one kind of webhook event when `kind`."""
    return [r["invocation_duration_ms_by_event"][kind] if kind else r["invocation_duration_ms"] for r in runs]


def alternated(runs, kind):
    """Each alternating run's comparison (round trip on, off, their paired
    differences), of one kind of webhook event when `kind`."""
    return [r["alternating_by_event"][kind] if kind else r["alternating"] for r in runs if r.get("alternating")]


def measured_rtt(runs):
    """The median round trip the runs' DynamoDB proxy measured, or None."""
    measured = [((r.get("network") or {}).get("dynamodb_rtt_ms_measured") or {}).get("p50") for r in runs]
    measured = [m for m in measured if m]
    return median(measured) if measured else None


def tail_ratio(alt, setting, part="invocation_duration_ms"):
    """p99 / p50 of one part of the invocations of one setting, medians over runs."""
    parts = [a[setting][part] for a in alt]
    return median([s["p99"] for s in parts]) / median([s["p50"] for s in parts])


def round_trip_cost(runs, kind):
    """What a 2 ms DynamoDB round trip adds to an operation, from alternating runs:
    (median over runs of each run's median paired difference, the runs' range,
    the measured round trip, p99 / p50 with the round trip on: of the invocation,
    of DynamoDB Local's own time, of the rest); None without runs."""
    alt = alternated(runs or [], kind)
    if not alt:
        return None
    added = [a["added_ms"]["p50"] for a in alt]
    tails = tuple(tail_ratio(alt, "delayed", part) for part in
                  ("invocation_duration_ms", "dynamodb_local_ms", "outside_dynamodb_local_ms"))
    return median(added), (min(added), max(added)), measured_rtt(runs) or 2.0, tails


def sh(*cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()
    except Exception:
        return "?"


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def mem_gib():
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                return f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB"
    except OSError:
        pass
    return "?"


def mb(n):
    return f"{n / 1_000_000:.2f} MB"


def spread(s, unit="ms"):
    return f"{s['p50']:.1f} {unit} (min {s['min']:.1f}, p90 {s['p90']:.1f}, max {s['max']:.1f}; n={s['n']})"


def mark(ok):
    return "met" if ok else "**not met**"


sizes = load("sizes.json") or {}
hot = load("hot_path.json") or {}
cold = {fn: load(f"cold_start_{fn}.json") for fn in ("create-intent", "webhook")}
floor = load("cold_start_hello.json")
cost = load("dynamodb_cost.json") or {}
reconcile = load("reconcile.json") or {}
lw = load("load_webhook.json")
sw = load("serial_webhook.json")
sc = load("serial_create.json")
ddb_w = load("ddb_cpu_webhook.json")
ddb_c = load("ddb_cpu_create.json")


def ddb_share(run, cpu):
    if not (run and cpu):
        return ""
    seconds = cpu["dynamodb_local_cpu_ms"] / 1000
    return f"- DynamoDB Local's CPU during the run: {seconds:.1f} s, {seconds / run['elapsed_s'] * 100:.0f} % of one core on average (2 cores in all)"
lc = load("load_create.json")

out = []
w = out.append
w("# Performance")
w("")
w("Every figure below comes from `make bench` (`scripts/bench.sh`), which rebuilds the")
w("functions, runs each benchmark and rewrites this file. Medians with spreads from")
w("repeated runs; nothing here is a single run unless it says so.")
w("")
w(f"- Date: {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}")
w(f"- Commit: `{sh('git', 'rev-parse', '--short', 'HEAD')}`")
w(f"- Machine: {cpu_model()}, {os.cpu_count()} cores, {mem_gib()}, Linux {platform.release()}")
w(f"- Toolchain: {sh('rustc', '--version')}; cargo-lambda {(sh('cargo', 'lambda', '--version').split() + ['?', '?'])[1]}")
w("- Release profile: `lto = true`, `codegen-units = 1`, `panic = \"abort\"`, `strip = true`, `opt-level = \"s\"`; aws-lc built without jitter entropy (`.cargo/config.toml`).")
w("- DynamoDB: DynamoDB Local (in memory) on loopback; Fintoc: the simulator, in process of the harness.")
w("")

# Summary.
w("## Targets")
w("")
w("| target | measured | |")
w("|---|---|---|")
for fn in ("create-intent", "webhook"):
    c = cold.get(fn)
    if c:
        w(f"| init ≤ 10 ms ({fn}) | {c['init_ms']['p50']:.1f} ms median | {mark(c['init_ms']['p50'] <= 10)} |")
for fn, arches in sorted(sizes.items()):
    for arch, s in sorted(arches.items()):
        w(f"| ≤ 4 MB zipped ({fn}, {arch}) | {mb(s['zip_bytes'])} | {mark(s['zip_bytes'] <= 4_000_000)} |")
webhook_path = next((v for k, v in hot.items() if k.startswith("webhook: verify + parse")), None)
if webhook_path:
    us = webhook_path["median_ns"] / 1000
    w(f"| ≤ 20 µs per webhook event, no I/O | {us:.1f} µs median | {mark(us <= 20)} |")
if cost:
    ne, du, cr = cost["webhook_new_event"], cost["webhook_duplicate"], cost["create"]
    w(f"| 1 write per new webhook event | {ne['write_requests']} write (+ {ne['read_requests']} read) | {mark(ne['write_requests'] <= 1)} |")
    dup_requests = du["read_requests"] + du["write_requests"]
    w(f"| ≤ 1 request per duplicate delivery | {dup_requests} | {mark(dup_requests <= 1)} |")
    w(f"| ≤ 2 DynamoDB requests per create | {cr['write_requests']} writes (+ {cr['read_requests']} read) | {mark(cr['read_requests'] + cr['write_requests'] <= 2)} — see [below](#a-create-in-two-round-trips) |")
    rc = cost.get("refund_create")
    if rc:
        w(f"| ≤ 3 DynamoDB requests per refund create (its payment read, two writes) | {rc['write_requests']} writes (+ {rc['read_requests']} read) | {mark(rc['read_requests'] + rc['write_requests'] <= 3)} |")
for op, kind, trips, slack, label in (("create", None, 2, 3.0, "a create"),
                                     ("webhook", "pending", 1, 2.0, "a webhook `pending`"),
                                     ("webhook", "outcome", 1, 2.0, "a webhook outcome"),
                                     ("refund", None, 3, 3.0, "a refund create")):
    cost_of_trips = round_trip_cost(rtt_runs.get((op, 2, 0)), kind)
    if not cost_of_trips:
        continue
    added, (low, high), rtt, (whole, emulator, rest) = cost_of_trips
    w(f"| at a 2 ms DynamoDB round trip, the network adds ≤ {trips} round trip{'s' if trips > 1 else ''} + {slack:.0f} ms to {label} | {added:+.1f} ms (runs {low:+.1f} to {high:+.1f}; round trip {rtt:.2f} ms) | {mark(added <= trips * rtt + slack)} |")
    w(f"| at a 2 ms round trip, p99 ≤ 2 × p50 for {label}, outside DynamoDB Local's own time ([why](#where-the-time-goes)) | {rest:.2f}× (the whole invocation {whole:.2f}×, DynamoDB Local's own time {emulator:.2f}×) | {mark(rest <= 2)} |")
if lw:
    rss = lw["fleet"]["peak_rss_mib"]["max"]
    w(f"| peak RSS ≤ 40 MB under load (webhook) | {rss:.1f} MiB (largest of {lw['fleet']['processes']} processes) | {mark(rss * 1.048576 <= 40)} |")
    inv = lw["invariants"]
    ok = not any(inv.values())
    w(f"| load invariants (webhook) | {inv['events_lost']} lost, {inv['events_applied_twice']} applied twice, {inv['intents_in_wrong_state']} in a wrong state | {mark(ok)} |")
if lc:
    rss = lc["fleet"]["peak_rss_mib"]["max"]
    w(f"| peak RSS ≤ 40 MB under load (create-intent) | {rss:.1f} MiB | {mark(rss * 1.048576 <= 40)} |")
    inv = lc["invariants"]
    w(f"| load invariants (create) | {inv['keys_with_two_intents']} keys with two intents, {inv['intents_created_at_fintoc']} intents at Fintoc for {lc['keys']} keys | {mark(inv['keys_with_two_intents'] == 0 and inv['intents_created_at_fintoc'] == lc['keys'])} |")
w("")

w("## 1. Cold start")
w("")
w("`lambda-bench cold-start --function F --bootstrap target/bench/x86_64/F/bootstrap --runs N`:")
w("each run starts the release `bootstrap` (x86_64, built by `cargo lambda build")
w("--release --x86-64`) under a Runtime API stub, configured from the environment as")
w("in Lambda (table, endpoint, Fintoc key, webhook secret, recipient). *Init* is the")
w("time from spawning the process to its first `GET /runtime/invocation/next`: the")
w("AWS SDK config, the DynamoDB and HTTP clients, the configuration check (here")
w("without opening connections, `CONNECT_AT_INIT=false`: that is measured below, over TLS). *First")
w("response* adds the first invocation: a create (a DynamoDB transaction, Fintoc")
w("call, a transaction) or a signed webhook event (one conditional write), each on fresh")
w("connections.")
w("")
w("| function | init | first response | first invocation | RSS after it |")
w("|---|---|---|---|---|")
if floor:
    w(f"| *floor: hello-world `lambda_runtime`* | {spread(floor['init_ms'])} | {spread(floor['first_response_ms'])} | {spread(floor['first_invocation_duration_ms'])} | {floor['rss_after_first_mib']['p50']:.1f} MiB |")
for fn, c in cold.items():
    if c:
        w(f"| {fn} | {spread(c['init_ms'])} | {spread(c['first_response_ms'])} | {spread(c['first_invocation_duration_ms'])} | {c['rss_after_first_mib']['p50']:.1f} MiB |")
w("")
if floor:
    w("The floor is `tools/hello-lambda`: `lambda_runtime`, tokio and the same release")
    w("profile, answering every event at once; it runs in the same cold-start run. Over it")
    w("(medians):")
    w("")
    w("| function | init over the floor | first response over the floor | target: init within 3 ms |")
    w("|---|---|---|---|")
    for fn, c in cold.items():
        if c:
            d_init = c["init_ms"]["p50"] - floor["init_ms"]["p50"]
            d_first = c["first_response_ms"]["p50"] - floor["first_response_ms"]["p50"]
            w(f"| {fn} | +{d_init:.1f} ms | +{d_first:.1f} ms | {mark(d_init <= 3.0)} |")
    w("")
tls = {(fn, c): load(f"tls_cold_start_{fn}_{c}.json") for fn in ("create-intent", "webhook") for c in ("false", "true")}
if any(tls.values()):
    w("### Real TLS in the first response")
    w("")
    w("The same cold starts with every connection over real TLS: `scripts/tls-proxy.sh`")
    w("puts stunnel (Debian's `stunnel4`) on loopback in front of DynamoDB Local and the")
    w("simulator, with an RSA-2048 certificate from a throwaway CA made for the run, which")
    w("the function is told to trust (`SSL_CERT_FILE`; Lambda never sets it). So the first")
    w("request pays DNS (`localhost`), TCP and a TLS 1.3 handshake with certificate")
    w("verification per connection, as on AWS — but over loopback, with no network")
    w("latency: deployed, each handshake adds round trips to DynamoDB's and Fintoc's")
    w("endpoints, which is why it matters where they are paid. *Lazy* is")
    w("`CONNECT_AT_INIT=false` (the first request connects); *at init* (the default)")
    w("opens and verifies both during init (a `GetItem` of a key no payment has; a")
    w("`GET` of an intent that does not exist at Fintoc, which also says whether the key")
    w("is accepted). Lambda bills init and the invocation (init has been billed for")
    w("every runtime since August 2025), so the billed figure is their sum.")
    w("")
    w("| function | connections | init | first invocation | first response | billed (init + invocation) |")
    w("|---|---|---|---|---|---|")
    for (fn, c), r in tls.items():
        if r:
            billed = r["init_ms"]["p50"] + r["first_invocation_duration_ms"]["p50"]
            w(f"| {fn} | {'at init' if c == 'true' else 'lazy'} | {spread(r['init_ms'])} | {spread(r['first_invocation_duration_ms'])} | {spread(r['first_response_ms'])} | {-(-billed // 1):.0f} ms |")
    w("")

w("For scale: Rust's hello world initialises in about 14 ms on arm64 Lambda in the")
w("public lambda-perf benchmark (Go ≈ 42 ms, Python ≈ 81 ms, Node ≈ 124 ms, Java ≈")
w("250 ms). Lambda's init also includes loading the code package, so a local init")
w("is a floor, not a forecast.")
w("")

w("## 2. Size")
w("")
w("`cargo lambda build --release --arm64|--x86-64 -p create-intent -p webhook`; zip =")
w("the `bootstrap` alone, deflated as `sam build`/`cargo lambda deploy` package it.")
w("")
w("| function | arch | bootstrap | zipped |")
w("|---|---|---|---|")
for fn, arches in sorted(sizes.items()):
    for arch, s in sorted(arches.items()):
        w(f"| {fn} | {arch} | {mb(s['bootstrap_bytes'])} | {mb(s['zip_bytes'])} |")
w("")

w("## 3. Hot-path CPU")
w("")
w("`cargo bench -p shared --bench hot_path` (criterion; `shared/benches/hot_path.rs`),")
w("release profile, on the machine above. Median with its 95 % confidence interval.")
w("")
w("| bench | median | 95 % CI of the median | std dev |")
w("|---|---|---|---|")
for name, e in sorted(hot.items()):
    lo, hi = e["median_ci_ns"]
    w(f"| {name} | {e['median_ns'] / 1000:.2f} µs | {lo / 1000:.2f}–{hi / 1000:.2f} µs | {e['std_dev_ns'] / 1000:.2f} µs |")
w("")
w("The webhook figure is signature verification (HMAC-SHA256 over a ≈1.3 KB event,")
w("constant-time compare), envelope and intent parsing, and the transition decision;")
w("what remains of an invocation is I/O (one conditional write).")
w("")

w("## 4. DynamoDB cost")
w("")
w("`tests/integration/dynamodb_cost.rs` on DynamoDB Local: every request asks for")
w("`ReturnConsumedCapacity=TOTAL` and the store counts requests and the units DynamoDB")
w("reports (`DynamoStore::usage`). The test pins the request counts.")
w("")
w("| operation | reads | writes | read units | write units | failed conditions |")
w("|---|---|---|---|---|---|")
labels = {
    "create": "create (new key)",
    "replayed_create": "replayed create (same key, same body)",
    "get": "GET /payment-intents/{id}",
    "webhook_new_event": "webhook, new event",
    "webhook_duplicate": "webhook, duplicate delivery",
    "refund_create": "refund (new key: the key with the amount reserved, Fintoc, its answer with the key completed)",
    "refund_event_move": "refund event, a move (e.g. in_progress)",
    "refund_event_outcome": "refund event, its outcome (payment + outcome record + order, one transaction)",
}
for key, label in labels.items():
    u = cost.get(key)
    if u:
        w(f"| {label} | {u['read_requests']} | {u['write_requests']} | {u['read_units']} | {u['write_units']} | {u['failed_conditions']} |")
w("")
w("A write refused by its condition reports no capacity, but DynamoDB bills it as a")
w("write of the item's size (1 WRU here); a replayed create is the first transaction")
w("refused on its key, at most 4 WRU (2 per item, the pessimistic reading of AWS's")
w("transaction billing), and nothing else. At DynamoDB's on-demand list prices in us-east-1 (since November 2024: $0.625")
w("per million WRU, $0.125 per million RRU), a paid payment — a create (11 WRU: two")
w("transactions of 2 and 3 items, which AWS bills 2 WRU per item, and the index write), a")
w("pending event (1 WRU), the final event with its order (a two-item transaction, 4 WRU)")
w("and two GETs (1 RRU each) — costs about 16 WRU + 2 RRU ≈ $0.0000103 of DynamoDB")
w("(with five single writes per create it was 10 WRU + 2 RRU ≈ $0.0000065).")
w("")
w("A refund: one read (the payment: an unknown or unpaid one is refused before anything")
w("is written), then two transactions of two items — the key taken with the amount")
w("reserved on the payment (which also puts it on the due-checks index for the")
w("reconciler), and after Fintoc its answer recorded with the key completed (decided on")
w("what the reservation wrote, no read) — which AWS bills 2 WRU per item plus the index")
w("write: 1 RRU + 9 WRU (as four single writes it was 5 WRU and two round trips more:")
w("$0.0000025 more per refund, $0.0025 per 1,000). Each refund event reads the payment")
w("and makes one single-item write, but its outcome (once per refund) is a three-item")
w("transaction (payment, `REFUND_OUTCOME#` record, the order's `refunded_amount`), 6 WRU")
w("(DynamoDB Local reports less for it). A refund created (9 WRU, 1 RRU), moved (1 WRU,")
w("1 RRU) and settled (6 WRU, 1 RRU), then taken off the index by the reconciler's next")
w("check (1 WRU, 1 RRU): 17 WRU + 4 RRU ≈ $0.0000111.")
w("")
w("### A create in two round trips")
w("")
w("A create writes five things: the key (`IDEMPOTENCY#`, its own table), the order's")
w("reservation (`ORDER#`: one open payment, one payment), the intent Fintoc made")
w("(`INTENT#`), the order opened with it, the key completed with the answer. The intent")
w("id exists only once Fintoc answers, so they are two `TransactWriteItems` requests")
w("(`store::CreateStore`): the fresh key with its order reserved before Fintoc, the other")
w("three after it. Each is all or nothing, so a crash between them leaves what the")
w("single writes left after their second or fifth; a refused transaction writes nothing")
w("and returns the items, so a replay is still one request and a refused order no longer")
w("writes the key at all. A key that is not fresh (released, or an abandoned lease) and")
w("a refused last write take the single-write path, as before. The price: AWS bills a")
w("transaction 2 WRU per item, so a create is 4 + 6 + 1 (the index) = 11 WRU instead of")
w("6 — $0.0031 more per 1,000 creates — for three round trips fewer on every create")
w("(section 6). Lambda time saved at 128 MB is worth far less than that")
w("($0.0000000021 per ms), so this is a latency choice, paid in write units.")
w("")

per_delivery = load("dynamodb_cost_per_delivery.json") or {}
mode_runs = {}
for name in sorted(os.listdir(results)):
    if name.startswith("modes_webhook_"):
        _, _, write_first, share, _ = name[: -len(".json")].split("_")
        mode_runs.setdefault((write_first == "true", float(share)), []).append(load(name))
RRU_USD, WRU_USD = 0.125e-6, 0.625e-6
LAMBDA_REQUEST_USD, LAMBDA_GB_S_USD_ARM64 = 0.20e-6, 0.0000133334


if per_delivery.get("cases"):
    scale = 1000 / per_delivery["deliveries_per_case"]
    w("### The webhook writes first: before and after, per 1,000 deliveries")
    w("")
    w("*Before* is the previous path, kept behind `WEBHOOK_WRITE_FIRST=false`: an eventually")
    w("consistent read of the item, then the conditional write. *After* (the default) is")
    w("one conditional write and no read; a duplicate is that write, refused. Requests and")
    w("units from `webhook_cost_per_delivery_writing_first_and_reading_first` on DynamoDB")
    w(f"Local ({per_delivery['deliveries_per_case']} deliveries per case: intents as the create")
    w("leaves them, each with a `pending` then a `succeeded` event, the final one a two-item")
    w("transaction with its order; a repeat comes right after the event it repeats). DynamoDB")
    w("Local reports no units for a refused write; AWS bills it, so it is counted as a")
    w("write of the item (1 WRU) or, for a refused two-item transaction, 4 WRU (2 per item,")
    w("the pessimistic reading of AWS's transaction billing). Lambda: arm64, 128 MB,")
    w("$0.20 per million requests + $0.0000133334 per GB-second, billed per started")
    w("millisecond of the median invocation below.")
    w("")
    w("| path | duplicates | reads | writes (refused) | RRU | WRU | DynamoDB $ | Lambda $ | total $ |")
    w("|---|---|---|---|---|---|---|---|---|")
    totals = {}
    for case in per_delivery["cases"]:
        write_first = case["mode"] == "write_first"
        share = case["duplicate_share"]
        u = case["usage"]
        rru = case["billed_read_units"] * scale
        wru = case["billed_write_units"] * scale
        ddb_usd = rru * RRU_USD + wru * WRU_USD
        runs_here = mode_runs.get((write_first, share)) or []
        p50 = median([r["invocation_duration_ms"]["p50"] for r in runs_here])
        billed_ms = -(-p50 // 1) if p50 else 0
        lambda_usd = 1000 * (LAMBDA_REQUEST_USD + billed_ms / 1000 * 0.125 * LAMBDA_GB_S_USD_ARM64)
        totals[(write_first, share)] = ddb_usd + lambda_usd
        label = "after: write first" if write_first else "before: read first"
        w(f"| {label} | {share:.0%} | {u['read_requests'] * scale:.0f} | {u['write_requests'] * scale:.0f} ({u['failed_conditions'] * scale:.0f}) | {rru:.0f} | {wru:.0f} | {ddb_usd:.6f} | {lambda_usd:.6f} | {ddb_usd + lambda_usd:.6f} |")
    w("")
    if mode_runs:
        w("Latency, one delivery at a time (`lambda-bench load-webhook --concurrency 1 --order in-order`,")
        w("release x86_64 `bootstrap`, 100 intents × 7 events per run, rounds alternating the")
        w("two paths, each run on a fresh DynamoDB Local; median over rounds of each run's figure):")
        w("")
        w("| path | duplicates | invocation p50 | p90 | fastest | CPU per invocation | runs |")
        w("|---|---|---|---|---|---|---|")
        for (write_first, share) in sorted(mode_runs, key=lambda k: (k[1], not k[0])):
            rs = mode_runs[(write_first, share)]
            label = "after: write first" if write_first else "before: read first"
            w(f"| {label} | {share:.0%} | {median([r['invocation_duration_ms']['p50'] for r in rs]):.2f} ms | {median([r['invocation_duration_ms']['p90'] for r in rs]):.2f} ms | {min(r['invocation_duration_ms']['min'] for r in rs):.2f} ms | {median([r['fleet']['cpu_ms_per_invocation'] for r in rs]):.2f} ms | {len(rs)} |")
        w("")
    w("What it says. Requests: writing first makes one DynamoDB request per delivery")
    w("where reading first makes two per new event, so deployed it saves an in-region")
    w("network round trip on every new event (DynamoDB's usual single-digit milliseconds).")
    w("Loopback cannot show that round trip — it costs DynamoDB Local a fraction of a")
    w("millisecond — while the write-first condition (the states the decision accepts)")
    w("and, for a duplicate of a final event, a refused transaction cost DynamoDB Local's")
    w("Java more than a `GetItem`: here the medians favour reading first by 1.5–2 ms and")
    w("the fastest deliveries are within a few tenths either way. So the latency gained is")
    w("a deployed figure this machine cannot measure; what it does measure is the request")
    w("count as designed and the function's own CPU about the same either way (0.8–1.0 ms")
    w("per delivery). Money: the read it drops (0.5 RRU) is cheap and a refused write is not —")
    w("at 0 % duplicates writing first is slightly cheaper; at 30 % duplicates, each")
    w("refused transaction bills up to 4 WRU where the read cost 0.5 RRU, so it costs")
    w("about a fifth more. Either way 1,000 deliveries cost well under a cent; a")
    w("deployment that sees mostly duplicates can set `WEBHOOK_WRITE_FIRST=false` (same")
    w("decisions, same guarantees, tested both ways).")
    w("")

w("## 4b. Reconciliation")
w("")
w("`tests/integration/reconcile.rs` (`a_backlog_of_due_intents…`): 5,000 open intents due")
w("at once, Fintoc (the simulator) reporting each paid; runs of at most 1,500 intents,")
w("paced in virtual time (the pacing's waits are skipped), so the figure is the work")
w("itself: a Fintoc lookup and a conditional write per intent, 16 concurrent checks,")
w("against DynamoDB Local and the simulator on the same 2 cores. Deployed, the rate")
w("limit (`RECONCILE_MAX_REQUESTS_PER_SECOND`, 40) bounds a run first. The test pins")
w("the requests: one `Query` per index shard per run (plus one per fuller shard when others leave their share unused), one write per checked intent.")
w("")
runs = reconcile.get("runs") or []
if runs:
    w("| run | intents checked | seconds | intents/s | reads | writes | write units |")
    w("|---|---|---|---|---|---|---|")
    for i, r in enumerate(runs, 1):
        w(f"| {i} | {r['checked']} | {r['seconds']:.1f} | {r['intents_per_second']:.0f} | {r['read_requests']} | {r['write_requests']} | {r['write_units']} |")
    total = sum(r["checked"] for r in runs)
    writes = sum(r["write_requests"] for r in runs)
    reads = sum(r["read_requests"] for r in runs)
    w("")
    w(f"Requests per reconciled intent: {writes / total:.2f} writes and {reads / total:.4f} reads (queries).")
else:
    w("(not measured in this run)")
w("")

# The sale day (section 4b′).
def sale_day_section():
    w("## 4b′. A sale day with webhooks down")
    w("")
    w("`tests/integration/reconcile.rs` (`a_sale_day_with_webhooks_down…`), in virtual time on")
    w("DynamoDB Local and the simulator, its deliveries off: payments created through the")
    w("create function at a steady rate, 8 in 10 paid at Fintoc at once, the rest abandoned;")
    w("the reconciler every 5 minutes with its default settings (ceiling 40/s, 265 s of")
    w("checks a run, paced by its backlog) on its own clock, then on until nothing is due.")
    w("*Lag*: from becoming due (2 minutes after creation) to recorded. The promise: each")
    w("payment recorded by the first run that starts once it is due (lag ≤ one interval plus")
    w("that run's time to reach it); *late* counts those recorded by a later run.")
    w("")
    days = [d for d in (load("sale_day_10.json"), load("sale_day_50.json")) if d]
    if not days:
        w("(not measured in this run)")
        w("")
        return
    w("| payments/s | simulated | payments (paid) | peak due backlog | Fintoc checks/s (max run) | lag p50 / p99 / max | late | all recorded after the last create | wall |")
    w("|---|---|---|---|---|---|---|---|---|")
    for d in days:
        busiest = max((r["fintoc_checks_per_s"] for r in d["runs"]), default=0)
        lag = d["lag_s"]
        w(f"| {d['rate_per_s']} | {d['seconds'] // 60} min | {d['payments']} ({d['paid']}) | {d['peak_backlog']} | "
          f"{busiest:.1f} | {lag['p50']} / {lag['p99']} / {lag['max']} s | {d['recorded_after_a_later_run']} | "
          f"{d['all_recorded_after_end_s']} s | {d['wall_seconds']:.0f} s |")
    w("")
    for d in days:
        w(f"Runs at {d['rate_per_s']} payments/s (due read, checked, pace, utilization, left):")
        w("")
        w("| run at | due | checked | pace | utilization | left | oldest due |")
        w("|---|---|---|---|---|---|---|")
        runs = d["runs"]
        for r in runs[:16]:
            w(f"| {r['at_s'] // 60} min | {r['due_read']} | {r['checked']} | {r['pace']}/s | "
              f"{r['utilization_percent']} % | {r['due_left']} | {r['oldest_due_age_s']} s |")
        if len(runs) > 16:
            rest = runs[16:]
            w(f"| … {len(rest)} more, to {rest[-1]['at_s'] // 60} min | {sum(r['due_read'] for r in rest)} | "
              f"{sum(r['checked'] for r in rest)} | ≤ {max(r['pace'] for r in rest)}/s | "
              f"≤ {max(r['utilization_percent'] for r in rest)} % | {sum(r['due_left'] for r in rest)} | "
              f"≤ {max(r['oldest_due_age_s'] for r in rest)} s |")
        w("")


sale_day_section()

w("## 4c. Merchant events")
w("")
w("`tests/integration/merchant_events.rs` (`paid_orders_under_duplicates_and_a_flaky_endpoint…`)")
w("on DynamoDB Local: paid orders written as the webhook's transaction leaves them, their")
w("stream records (read from DynamoDB Local's stream) handed to the dispatcher's handler")
w("in batches of 100, 30 % of them handed over again (a stream's duplicates), to an endpoint")
w("answering 500 to one delivery in five; the retry sweep runs until every `order.paid` is")
w("acknowledged. The test asserts each id is acknowledged exactly once.")
w("")
events_load = load("merchant_events_load.json")
if events_load:
    n = events_load["orders"]
    per = 1000 / n
    wru, rru = events_load["write_units"] * per, events_load["read_units"] * per
    w("| paid orders | stream records (+ again) | attempts (500s) | sweeps | seconds | reads | writes (refused) | RRU | WRU |")
    w("|---|---|---|---|---|---|---|---|---|")
    w(f"| {n} | {events_load['stream_records']} (+{events_load['records_handed_again']}) | "
      f"{events_load['attempts']} ({events_load['failed_attempts']}) | {events_load['sweeps']} | "
      f"{events_load['seconds']:.1f} | {events_load['read_requests']} | {events_load['write_requests']} "
      f"({events_load['failed_conditions']}) | {events_load['read_units']:.0f} | {events_load['write_units']:.0f} |")
    w("")
    w(f"Per 1,000 paid orders: {events_load['read_requests'] * per:.0f} reads and "
      f"{events_load['write_requests'] * per:.0f} writes, {rru:.0f} RRU + {wru:.0f} WRU ≈ "
      f"${rru * 0.125e-6 + wru * 0.625e-6:.4f} of DynamoDB on demand (a refused write counted as")
    w("DynamoDB Local reports it: no units; AWS bills it as a write). Each event is an `EVENT#`")
    w("insert, a `DELIVERY#` insert already claimed for its first attempt, and the attempt's")
    w("result; an `order.paid` reads its payment (again for a duplicate record); a failed attempt adds a claim and a")
    w("result. The create and webhook paths are unchanged (section 4).")
else:
    w("(not measured in this run)")
w("")

w("## 4d. Invariant audit")
w("")
w("`tests/integration/audit.rs` (`the_audit_reads_a_large_table…`) on DynamoDB Local: paid")
w("orders (an order and its payment each) checked by `payments-ops check-invariants`'s")
w("use case — a parallel `Scan` in 8 segments, every order checked with its payments; the")
w("test asserts every item is checked and nothing is reported.")
w("")
audit = load("audit.json")
if audit:
    per_item = audit["read_units"] / audit["items"]
    w("| paid orders | items scanned | seconds | items/s | read units | RRU per 1,000 items |")
    w("|---|---|---|---|---|---|")
    w(f"| {audit['orders']} | {audit['items']} | {audit['seconds']:.1f} | {audit['items_per_second']:.0f} | "
      f"{audit['read_units']:.0f} | {audit['read_units_per_1000_items']:.1f} |")
    w("")
    w(f"A table of 10 million items of this size: {per_item * 1e7:,.0f} RRU ≈ "
      f"${per_item * 1e7 * 0.125e-6:.2f} per audit on demand (a `Scan` reads eventually")
    w("consistent: half a unit per 4 KB), plus one strongly consistent read per suspect. Items")
    w("with refunds are larger and cost more per item.")
else:
    w("(not measured in this run)")
w("")

w("## 5. Load")
w("")
w("`lambda-bench load-webhook` / `load-create`: one function process per concurrent")
w("invocation (as Lambda runs one invocation per execution environment), all polling")
w("one Runtime API stub; each client sends its next event when the last one is")
w("answered and retries a 5xx/409 like Fintoc or a merchant backend would. Latency is")
w("from queueing the event to its response; *invocation duration* is what Lambda")
w("bills (from handing the event out to the response). Peak RSS is each process's")
w("`VmHWM`; CPU from `/proc/<pid>/stat`. DynamoDB Local (Java) runs on the same 2")
w("cores, so throughput here is a floor.")
w("")
if sw and sc:
    w("**One invocation at a time** (`--concurrency 1`; no queueing, so this is the latency of")
    w("the function itself against DynamoDB Local on loopback):")
    w("")
    w("| | invocations | invocation duration | CPU per invocation |")
    w("|---|---|---|---|")
    w(f"| webhook | {sw['deliveries']} | {spread(sw['invocation_duration_ms'])} | {sw['fleet']['cpu_ms_per_invocation']:.2f} ms |")
    w(f"| create-intent | {sc['requests']} | {spread(sc['invocation_duration_ms'])} | {sc['fleet']['cpu_ms_per_invocation']:.2f} ms |")
    w("")
    w("Under load (below), latencies grow because DynamoDB Local, a Java process on the")
    w("same two cores, saturates first — its CPU time during each run is reported next to")
    w("the functions' own, which stays near the figures above.")
    w("")
if lw:
    inv = lw["invariants"]
    w(f"**Webhook**: {lw['deliveries']} deliveries over {lw['intents']} intents ({lw['distinct_events']} distinct events: per intent 3 `pending` and 4 of its outcome, 70 % succeeded / 30 % failed or rejected; {lw['duplicate_share'] * 100:.0f} % of deliveries are repeats), shuffled, {lw['concurrency']} concurrent.")
    w("")
    w(f"- Throughput: {lw['throughput_per_s']:.0f} deliveries/s ({lw['elapsed_s']:.1f} s)")
    w(f"- Latency: {spread(lw['latency_ms'])}")
    w(f"- Invocation duration: {spread(lw['invocation_duration_ms'])}")
    w(f"- Retried invocations (5xx after concurrent writes to one intent): {lw['retried_invocations']}")
    w(f"- Peak RSS per process: {spread(lw['fleet']['peak_rss_mib'], 'MiB')}")
    w(f"- CPU per invocation: {lw['fleet']['cpu_ms_per_invocation']:.2f} ms (all processes' user + system time / invocations)")
    if ddb_share(lw, ddb_w):
        w(ddb_share(lw, ddb_w))
    w(f"- Invariants (read back from the table): {inv['deliveries_not_acknowledged']} deliveries not acknowledged, {inv['intents_in_wrong_state']} intents in a wrong final state, {inv['events_lost']} events lost, {inv['events_applied_twice']} applied twice (each write bumps the item's version: version = distinct events).")
    w("")
if lc:
    inv = lc["invariants"]
    w(f"**Create**: {lc['requests']} requests for {lc['keys']} idempotency keys ({lc['repeats_per_key']} each), shuffled, {lc['concurrency']} concurrent.")
    w("")
    w(f"- Throughput: {lc['throughput_per_s']:.0f} requests/s ({lc['elapsed_s']:.1f} s)")
    w(f"- Latency: {spread(lc['latency_ms'])}")
    w(f"- Invocation duration: {spread(lc['invocation_duration_ms'])}")
    w(f"- Retried invocations (409 while the same key was in flight): {lc['retried_invocations']}")
    w(f"- Peak RSS per process: {spread(lc['fleet']['peak_rss_mib'], 'MiB')}")
    w(f"- CPU per invocation: {lc['fleet']['cpu_ms_per_invocation']:.2f} ms")
    if ddb_share(lc, ddb_c):
        w(ddb_share(lc, ddb_c))
    w(f"- Invariants: {inv['intents_created_at_fintoc']} intents created at Fintoc and {inv['intents_stored']} stored for {lc['keys']} keys; {inv['keys_with_two_intents']} keys answered with two different intents; {inv['requests_not_answered_201']} requests without a 201 in the end.")
    w("")

if rtt_runs:
    w("## 6. Round trips through a network")
    w("")
    w("Loopback hides what a deployed call waits for: each DynamoDB request is a network")
    w("round trip. Here the function reaches DynamoDB Local through `tools/latency-proxy`,")
    w("which delivers every chunk half the round trip after it arrived, each way, on a")
    w("thread of its own (its round trip is measured: 200 echoes through it). 2 ms is an")
    w("in-region round trip to DynamoDB's endpoint; 20 ms to Fintoc is a figure for its API")
    w("across the public internet from a nearby region on a warm TLS connection (Fintoc")
    w("publishes none).")
    w("")
    w("One invocation at a time, and the round trip **alternating**: within one run, on one")
    w("process and a fresh DynamoDB Local per operation, the proxy's delay is 0 or 2 ms by turns")
    w("(0, 2, 2, 0, repeated, so a drift over the run weighs on both alike), and each")
    w("invocation is paired with its neighbour of the other setting. *Added by the")
    w("network* is the median of those paired differences — in each run, then the median")
    w("over the runs, with their range. Measured instead as the difference between two")
    w("runs' medians, each on its own fresh DynamoDB Local, the same create code gave")
    w("+4.4, +6.1 and +9.3 ms on three days: DynamoDB Local's run-to-run spread on a")
    w("loopback machine is larger than a round trip. Creates (new keys), webhook events and")
    w("refunds come after 30 unmeasured ones through the same process (a fresh DynamoDB")
    w("Local runs its transaction path interpreted until its JIT compiles it, a tail")
    w("deployed DynamoDB has not); webhook events are an intent's usual life, a `pending`")
    w("then its outcome (the outcome is the two-item transaction with its order); refunds")
    w("are of 5,000 of a paid 15,000 CLP payment, each with a new key (the payment read; the")
    w("key taken with the amount reserved; Fintoc; its answer recorded with the key")
    w("completed). The proxy counts the requests it carries: *requests* is that count per")
    w("invocation. The last row is a create as deployed, DynamoDB and Fintoc both a network")
    w("away, in runs of its own.")
    w("")
    w("| operation | DynamoDB round trip (measured) | Fintoc round trip | requests | invocation p50 | p90 | p99 | p99 / p50 | added by the network | runs |")
    w("|---|---|---|---|---|---|---|---|---|---|")
    # One pair of rows per operation (and per kind of webhook event): the round trip
    # off and on, from the alternating runs.
    labels = {("create", None): "create (new key)", ("webhook", "pending"): "webhook event: `pending` (one write)",
              ("webhook", "outcome"): "webhook event: its outcome (intent + order, one transaction)",
              ("refund", None): "refund (new key)"}
    base = {}
    for (op, kind), label in labels.items():
        runs = rtt_runs.get((op, 2, 0)) or []
        alt = alternated(runs, kind)
        if not alt:
            continue
        added, (low, high), rtt, _ = round_trip_cost(runs, kind)
        for setting in ("undelayed", "delayed"):
            s = lambda q: median([a[setting]["invocation_duration_ms"][q] for a in alt])
            requests = median([a[setting]["dynamodb_requests_per_invocation"] for a in alt])
            if setting == "undelayed":
                base[(op, kind)] = s("p50")
                rtt_text, added_text = "0 ms (through the proxy)", "—"
            else:
                rtt_text = f"2 ms ({rtt:.2f} ms)"
                added_text = f"{added:+.1f} ms (runs {low:+.1f} to {high:+.1f}), ≈ {added / rtt:.1f} round trips"
            w(f"| {label} | {rtt_text} | 0 ms | {requests:.1f} | {s('p50'):.1f} ms | {s('p90'):.1f} ms | {s('p99'):.1f} ms | {s('p99') / s('p50'):.1f} | {added_text} | {len(alt)} |")
    for (op, d, f), runs in sorted(rtt_runs.items()):
        if f == 0:
            continue
        p = lambda q: median([s[q] for s in series(runs, None)])
        counted = [r["dynamodb_requests_per_invocation"] for r in runs if r.get("dynamodb_requests_per_invocation")]
        requests = f"{median(counted):.1f}" if counted else "—"
        added = p("p50") - base.get((op, None), p("p50"))
        w(f"| {labels[(op, None)]}, as deployed | {d} ms ({measured_rtt(runs) or 0:.2f} ms) | {f} ms | {requests} | {p('p50'):.1f} ms | {p('p90'):.1f} ms | {p('p99'):.1f} ms | {p('p99') / p('p50'):.1f} | {added:+.1f} ms (medians of separate runs) | {len(runs)} |")
    w("")
    w("*Added by the network*, divided by the measured round trip, counts the DynamoDB round")
    w("trips an invocation waits for in sequence; *requests* (DynamoDB's, through the proxy)")
    w("is what it asked for, all of them in sequence. In the as-deployed row, the difference")
    w("is against the alternating runs' 0 ms median, and includes Fintoc's round trip.")
    w("")
    w("### Where the time goes")
    w("")
    w("The proxy also times each request's upstream part: from its delivery to DynamoDB")
    w("Local to the answer's first bytes back, the delay either way excluded. Per")
    w("invocation, with the 2 ms round trip on, that is *DynamoDB Local's own time*; the")
    w("rest is the function's own work, the simulator's answer (for a create or a refund),")
    w("and the network. Deployed, DynamoDB's own time is AWS's and DynamoDB Local's is not a")
    w("model of it (a Java emulator on this shared machine, its transactions the slowest")
    w("part): so the tail target is judged on the rest, and the whole is shown beside it.")
    w("")
    w("| operation | DynamoDB Local's own time p50 / p99 | the rest p50 / p99 | invocation p50 / p99 |")
    w("|---|---|---|---|")
    for (op, kind), label in labels.items():
        alt = alternated(rtt_runs.get((op, 2, 0)) or [], kind)
        if not alt or "dynamodb_local_ms" not in alt[0]["delayed"]:
            continue
        cell = lambda part: " / ".join(f"{median([a['delayed'][part][q] for a in alt]):.1f} ms" for q in ("p50", "p99")) + f" ({tail_ratio(alt, 'delayed', part):.1f}×)"
        w(f"| {label} | {cell('dynamodb_local_ms')} | {cell('outside_dynamodb_local_ms')} | {cell('invocation_duration_ms')} |")
    w("")

    w("### Why a webhook outcome stays one transaction")
    w("")
    w("A new event is one request: a `pending` (and any event that moves no order) is one")
    w("single-item conditional write, a duplicate that write refused. An outcome writes the")
    w("payment and its order in one `TransactWriteItems` — still one request and one round")
    w("trip (the rows above), but AWS bills it 2 WRU per item (4 instead of 2) and serves it")
    w("with more server-side latency than a single write, which DynamoDB Local cannot show.")
    w("The single-item alternatives were weighed and not taken. The order moved by a second")
    w("write after the payment's costs a second round trip on the same invocation (Lambda")
    w("does no work after it answers), or leaves it to the reconciler, minutes later. The")
    w("order left to lag and read through its payment (a payment that opened its order")
    w("settles it, as only it can while it is open) saves 2 WRU — $0.00125 per 1,000 paid")
    w("orders — but fulfilment is documented on the order's stream record reaching `paid`")
    w("(docs/reconciliation.md), which would then fire late or never, and every reader of an")
    w("order (a create's reservation, a refund's outcome) would need the payment too. So the")
    w("transaction stays where it is the cheapest correct answer: once per payment, on its")
    w("outcome.")
    w("")
    # The webhook's public edge, priced per 1,000 paid orders from the figures above.
    hook = rtt_runs.get(("webhook", 2, 0))
    if hook:
        import math
        ms_billed = math.ceil(median([a["delayed"]["invocation_duration_ms"]["p50"] for a in alternated(hook, None)] or [0]))
        deliveries = 2000  # a pending event and its outcome per paid order
        lam = deliveries * (LAMBDA_REQUEST_USD + 0.125 * ms_billed / 1000 * LAMBDA_GB_S_USD_ARM64)
        ddb = 1000 * 5 * WRU_USD  # pending: 1 WRU; outcome with its order: a 2-item transaction, 4 WRU
        apigw = deliveries * 1.00e-6
        w("### The webhook's edge: HTTP API or Lambda Function URL")
        w("")
        w("`WebhookFunctionUrl=true` also serves `POST /webhooks/fintoc` from a Function URL")
        w("(output `WebhookFunctionUrl`; tested by the offline deploy). Per 1,000 paid orders —")
        w(f"2,000 deliveries (a `pending` and its outcome), each billed {ms_billed} ms at 128 MB arm64")
        w("(the median event with the 2 ms round trip on, above), 5 WRU per order — at us-east-1 list prices (HTTP API")
        w("$1.00 per million requests; Function URLs cost nothing beyond the invocation):")
        w("")
        w("| edge | API Gateway $ | Lambda $ | DynamoDB $ | total $ per 1,000 paid orders |")
        w("|---|---|---|---|---|")
        w(f"| HTTP API (default) | {apigw:.6f} | {lam:.6f} | {ddb:.6f} | {apigw + lam + ddb:.6f} |")
        w(f"| Function URL | 0 | {lam:.6f} | {ddb:.6f} | {lam + ddb:.6f} |")
        w("")
        w("What the Function URL gives up: the HTTP API's access log (`WebhookAccessLogGroup`;")
        w("the function's own log stays), its per-route rate limit (`WebhookThrottlingRateLimit`:")
        w("the URL's only throttle is the reserved concurrency, which the template then requires)")
        w("and a custom domain (a URL is `*.lambda-url.<region>.on.aws` unless fronted by")
        w("CloudFront). Neither edge has AWS WAF (it fronts REST APIs, not HTTP APIs or URLs);")
        w("both take anyone's request and write nothing until the `Fintoc-Signature` verifies. The")
        w("saving is the API Gateway charge alone, a fifth of a cent per 1,000 orders: take the URL")
        w("for volume, keep the HTTP API for its log and its throttle.")
        w("")

notes = os.path.join(os.path.dirname(__file__), "..", "docs", "performance-changes.md")
if os.path.exists(notes):
    w(open(notes).read().rstrip())
    w("")

print("\n".join(out))
