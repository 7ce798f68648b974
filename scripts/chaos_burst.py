#!/usr/bin/env python3
"""A burst while DynamoDB stalls, on a running local stack (part of `make test`).

    scripts/chaos_burst.py STACK_ENV DYNAMODB_PID_FILE [--functions-pid-file F]
                           [--senders 16] [--stall 12] [--bound 6]

Fintoc delivers a burst of webhooks at once; Lambda gives each its own instance. Here
16 payments are made through the API and paid at the simulator with its deliveries
off; then DynamoDB Local is frozen (SIGSTOP) for 12 s while 16 senders post the 16
signed `payment_intent.succeeded` events at the same moment, and a file is written
beside the sources (the watcher must not restart the instances under their requests).

The instances are cargo lambda watch's, each a `cargo run` it starts, and on a busy
machine some never come up: a delivery finding none free queues behind another, which
Lambda would never do (it starts one more). With --functions-pid-file, the burst is
sized to the webhook instances running, 4 kept spare for one that runs but never
polls for work: with fewer than 16 + 4 it says so and sends fewer (at least 8).

Checked: every delivery is answered within 6 s (a 5xx is fine: Fintoc retries it);
after the stall each delivery not accepted is sent again, as Fintoc's retries would,
and every payment then reads `paid`: nothing lost, nothing applied twice. Prints
one line per delivery; exits non-zero on the first broken promise.
"""
import argparse
import concurrent.futures
import datetime
import hashlib
import hmac
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_env(path):
    with open(path) as f:
        return dict(line.strip().split("=", 1) for line in f if "=" in line)


def call(method, url, body=None, headers=None, timeout=60):
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        req.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def signed_event(secret, intent):
    """A `payment_intent.succeeded` event as Fintoc sends it, and its signature header."""
    event = {
        "id": f"evt_chaos_{uuid.uuid4().hex}",
        "object": "event",
        "type": "payment_intent.succeeded",
        "mode": "test",
        "created_at": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "data": intent,
    }
    body = json.dumps(event).encode()
    t = int(time.time())
    signature = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return body, {"Fintoc-Signature": f"t={t},v1={signature}"}


def deliver(url, body, headers):
    """One delivery: its status (0: no answer) and how long the answer took."""
    started = time.monotonic()
    try:
        status, _ = call("POST", url, body, headers, timeout=60)
    except OSError:
        status = 0
    return status, time.monotonic() - started


SPARE_INSTANCES = 4
MIN_SENDERS = 8


def webhook_instances(functions_pid_file):
    """How many webhook instances cargo lambda watch runs (its children running the binary)."""
    with open(functions_pid_file) as f:
        watch = f.read().strip()
    found = subprocess.run(["pgrep", "-P", watch, "-fc", "target/debug/webhook"],
                           capture_output=True, text=True).stdout.strip()
    return int(found or 0)


def burst_size(functions_pid_file, wanted):
    """The senders a burst can have, each with an instance of its own and 4 spare.

    Instances still starting are waited for (up to 60 s, polling their count); the
    burst then shrinks to what runs, never below 8."""
    deadline = time.monotonic() + 60
    running = webhook_instances(functions_pid_file)
    while running < wanted + SPARE_INSTANCES and time.monotonic() < deadline:
        time.sleep(0.5)
        running = webhook_instances(functions_pid_file)
    senders = min(wanted, running - SPARE_INSTANCES)
    if senders < MIN_SENDERS:
        raise SystemExit(f"only {running} webhook instances run under cargo lambda watch: a burst of "
                         f"{MIN_SENDERS} needs {MIN_SENDERS + SPARE_INSTANCES} (functions log in the stack's directory)")
    if senders < wanted:
        print(f"note: {running} webhook instances run (some never came up); "
              f"a burst of {senders}, not {wanted}, keeps {SPARE_INSTANCES} spare")
    else:
        print(f"{running} webhook instances run: a burst of {senders}")
    return senders


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("stack_env")
    parser.add_argument("dynamodb_pid_file")
    parser.add_argument("--functions-pid-file", help="cargo lambda watch's pid file: size the burst to its instances")
    parser.add_argument("--senders", type=int, default=16)
    parser.add_argument("--stall", type=float, default=12.0)
    parser.add_argument("--bound", type=float, default=6.0)
    args = parser.parse_args()
    env = load_env(args.stack_env)
    if args.functions_pid_file:
        args.senders = burst_size(args.functions_pid_file, args.senders)
    api, sim, webhook = env["API_URL"], env["FINTOC_SIM_URL"], env["WEBHOOK_URL"]
    fintoc_auth = {"Authorization": env["FINTOC_SECRET_KEY"]}
    api_auth = {"Authorization": f"Bearer {env['API_TOKEN']}"} if env.get("API_TOKEN") else {}

    status, _ = call("POST", f"{sim}/_sim/deliveries/mode", {"mode": "off"})
    assert status == 200, f"the simulator's deliveries could not be turned off: {status}"
    events = []
    try:
        for n in range(args.senders):
            order = f"chaos-{uuid.uuid4().hex[:10]}"
            status, intent = call("POST", f"{api}/payment-intents",
                                  {"amount": 1000 + n, "currency": "CLP", "order_id": order},
                                  {"Idempotency-Key": order, **api_auth})
            assert status == 201, f"create {n} answered {status}: {intent}"
            status, _ = call("POST", f"{sim}/_sim/payment_intents/{intent['id']}/finish",
                             {"outcome": "succeeded"})
            assert status == 202, f"the simulator did not finish {intent['id']}: {status}"
            status, paid = call("GET", f"{sim}/v1/payment_intents/{intent['id']}", headers=fintoc_auth)
            assert status == 200 and paid["status"] == "succeeded", f"{intent['id']} at Fintoc: {status} {paid}"
            events.append((intent["id"], *signed_event(env["WEBHOOK_SECRET"], paid)))
    finally:
        call("POST", f"{sim}/_sim/deliveries/mode", {"mode": "normal"})

    with open(args.dynamodb_pid_file) as f:
        dynamodb = int(f.read().strip())
    # Beside the sources, in no ignore file but .cargolambdaignore's "everything else".
    probe = os.path.join(ROOT, "chaos-burst-probe.tmp")
    print(f"DynamoDB Local (pid {dynamodb}) stalls for {args.stall:.0f} s; "
          f"{len(events)} deliveries at once; a file is written beside the sources")
    os.kill(dynamodb, signal.SIGSTOP)
    stall_started = time.monotonic()
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(events)) as pool:
            answers = [pool.submit(deliver, webhook, body, headers) for _, body, headers in events]
            with open(probe, "w") as f:
                f.write("written while requests are in flight\n")
            answers = [a.result() for a in answers]
        # The stall lasts its full length: the fault, not a wait for a result.
        time.sleep(max(0.0, args.stall - (time.monotonic() - stall_started)))
    finally:
        os.kill(dynamodb, signal.SIGCONT)
        if os.path.exists(probe):
            os.remove(probe)

    broken = []
    for (intent_id, _, _), (status, took) in zip(events, answers):
        print(f"  {intent_id}: {status or 'no answer'} in {took:.1f} s")
        if status == 0 or took > args.bound:
            broken.append(f"{intent_id} answered {status or 'nothing'} after {took:.1f} s (bound {args.bound:.0f} s)")
    slowest = max(took for _, took in answers)
    print(f"slowest answer during the stall: {slowest:.1f} s (bound {args.bound:.0f} s)")
    if broken:
        raise SystemExit("deliveries waited past the bound:\n  " + "\n  ".join(broken))

    # Fintoc retries what was not accepted; the retry of each lands once DynamoDB is back.
    retried = 0
    for (intent_id, body, headers), (status, _) in zip(events, answers):
        if not 200 <= status < 300:
            retried += 1
            status, answer = call("POST", webhook, body, headers)
            assert status == 200, f"the retry of {intent_id}'s delivery answered {status}: {answer}"
    for intent_id, _, _ in events:
        status, seen = call("GET", f"{api}/payment-intents/{intent_id}", headers=api_auth)
        assert status == 200 and seen["paid"] is True, f"{intent_id} is not paid after the burst: {status} {seen}"
    print(f"{retried} deliveries refused during the stall were accepted on retry; "
          f"all {len(events)} payments read paid: nothing lost")


if __name__ == "__main__":
    main()
