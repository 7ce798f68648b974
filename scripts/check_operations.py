#!/usr/bin/env python3
"""The operations API on a running local stack, through `payments-ops` (part of
`make test`).

    scripts/check_operations.py STACK_ENV PAYMENTS_OPS_BINARY

A payer transfers 14,000 of a 15,000 CLP order (the simulator's `paid_amount`): the
order is held in review. Then, through payments-ops (SigV4-signed calls to the
operations API; the local gateway stands in for the IAM authorizer): `resolve --as
closed` is refused `payment_still_held` (exit 1, the error envelope), `resolve --as
paid` is written with the operator as actor, a second `resolve` is refused
`order_not_in_review`, `audit-log --subject` shows the one entry, `find` names the payment and its order; the merchant API
then reads the payment paid at 14,000; `queue` lists the order (reason `review`)
before and not after; `show` puts our 15,000 beside Fintoc's 14,000; an unsigned call
is refused 403 before the function runs; with the dispatcher on, the merchant gets one
`order.paid`, and `events resend` delivers it again (the same id, both attempts on
`show`'s timeline). Exits non-zero on the first broken promise.
"""
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid


def load_env(path):
    with open(path) as f:
        return dict(line.strip().split("=", 1) for line in f if "=" in line)


def call(method, url, body=None, headers=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        req.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def ops(binary, env_file, *args):
    """payments-ops with --json: its exit status and its one JSON document."""
    out = subprocess.run([binary, *args, "--json", "--env-file", env_file],
                         capture_output=True, text=True, timeout=120,
                         env={"PATH": "/usr/bin:/bin", "AWS_ACCESS_KEY_ID": "ops-check"})
    try:
        return out.returncode, json.loads(out.stdout)
    except json.JSONDecodeError:
        raise SystemExit(f"payments-ops {' '.join(args)} printed no JSON: {out.stdout!r} {out.stderr!r}")


def main():
    env_file, binary = sys.argv[1], sys.argv[2]
    env = load_env(env_file)
    api, sim = env["API_URL"], env["FINTOC_SIM_URL"]
    auth = {"Authorization": f"Bearer {env['API_TOKEN']}"} if env.get("API_TOKEN") else {}
    order = f"ops-{uuid.uuid4().hex[:10]}"
    status, intent = call("POST", f"{api}/payment-intents",
                          {"amount": 15000, "currency": "CLP", "order_id": order},
                          {"Idempotency-Key": order, **auth})
    assert status == 201, f"create answered {status}: {intent}"
    pi = intent["id"]
    status, _ = call("POST", f"{sim}/_sim/payment_intents/{pi}/finish",
                     {"outcome": "succeeded", "paid_amount": 14000})
    assert status == 202, f"the simulator did not finish {pi}: {status}"
    # The webhook's delivery is asynchronous: wait for its result, bounded.
    deadline = time.monotonic() + 60
    while True:
        status, seen = call("GET", f"{api}/payment-intents/{pi}", headers=auth)
        if status == 200 and seen["status"] == "succeeded":
            break
        assert time.monotonic() < deadline, f"{pi} never recorded succeeded: {status} {seen}"
        time.sleep(0.2)
    assert seen["paid"] is False, f"a payment of another amount must be held: {seen}"
    print(f"order {order}: {pi} paid 14000 of 15000 CLP, held in review")
    code, queue = ops(binary, env_file, "queue")
    held = [i for i in queue["items"] if i["id"] == order]
    assert code == 0 and [(i["kind"], i["reason"]) for i in held] == [("order", "review")], (code, queue)
    print(f"queue: the order is listed, reason review ({len(queue['items'])} item(s) in all)")

    code, shown = ops(binary, env_file, "show", order)
    assert code == 0 and shown["discrepancies"] == [
        {"field": "amount", "ours": 15000, "fintoc": 14000}], (code, shown)
    assert shown["timeline"][0]["what"] == "payment_created", shown
    print("show: ours 15000 beside Fintoc's 14000 now, the one discrepancy")

    code, refused = ops(binary, env_file, "resolve", order, "--as", "closed", "--reason", "nothing to keep")
    assert code == 1 and refused["error"]["code"] == "payment_still_held", (code, refused)
    print("resolve --as closed: refused payment_still_held (exit 1)")
    code, resolved = ops(binary, env_file, "resolve", order, "--as", "paid",
                         "--reason", "the payer confirmed 14000", "--ticket", "OPS-1")
    assert code == 0, (code, resolved)
    entry = resolved["resolution"]
    assert entry["actor"] == "arn:aws:iam::000000000000:user/ops-check", entry
    assert entry["after"]["payment"]["amount"] == 14000, entry
    print(f"resolve --as paid: written by {entry['actor']} ({entry['id']})")
    code, again = ops(binary, env_file, "resolve", order, "--as", "paid", "--reason", "again")
    assert code == 1 and again["error"]["code"] == "order_not_in_review", (code, again)
    code, log = ops(binary, env_file, "audit-log", "--subject", order)
    assert code == 0 and [e["id"] for e in log["entries"]] == [entry["id"]], (code, log)
    code, queue = ops(binary, env_file, "queue")
    assert code == 0 and not [i for i in queue["items"] if i["id"] == order], (code, queue)
    code, found = ops(binary, env_file, "find", pi)
    assert code == 0 and found["matches"] == [{"kind": "payment", "id": pi, "order_id": order}], (code, found)
    print("a second resolve: refused order_not_in_review; audit-log: the one entry; the queue forgot it; find names the payment")

    status, seen = call("GET", f"{api}/payment-intents/{pi}", headers=auth)
    assert status == 200 and seen["paid"] is True and seen["amount"] == 14000, seen
    status, answer = call("POST", f"{env['OPERATIONS_URL']}/ops/orders/{order}/resolve",
                          {"as": "paid", "reason": "unsigned"})
    assert status == 403, f"an unsigned operations call answered {status}: {answer}"
    print("the merchant API reads it paid at 14000; an unsigned call: 403")
    if env.get("EVENTS_DISPATCHER") == "on":
        # The resolution reaches the merchant as the order's one order.paid.
        deadline = time.monotonic() + 60
        while True:
            _, inbox = call("GET", f"{api}/_local/merchant-events")
            paid = [json.loads(d["body"]) for d in inbox["deliveries"]
                    if d["order_id"] == order and d["event_type"] == "order.paid"]
            if paid:
                break
            assert time.monotonic() < deadline, f"no order.paid reached the merchant for {order}"
            time.sleep(0.2)
        assert len(paid) == 1 and paid[0]["data"]["amount"] == 14000, paid
        assert paid[0]["data"]["paid_at"] and paid[0]["timestamp"], paid
        print(f"the merchant received one order.paid at 14000, paid_at {paid[0]['data']['paid_at']}")
        # An operator resends it: the sweep delivers the same event id again.
        code, endpoints = ops(binary, env_file, "endpoints", "list")
        assert code == 0 and [e["name"] for e in endpoints["endpoints"]] == ["merchant"], (code, endpoints)
        code, resent = ops(binary, env_file, "events", "resend", paid[0]["id"], "--reason", "ops check")
        assert code == 0 and [r["state"] for r in resent["resent"]] == ["due"], (code, resent)
        deadline = time.monotonic() + 60
        while True:
            _, inbox = call("GET", f"{api}/_local/merchant-events")
            copies = [d for d in inbox["deliveries"] if json.loads(d["body"])["id"] == paid[0]["id"]]
            if len(copies) == 2:
                break
            assert time.monotonic() < deadline, f"the resent {paid[0]['id']} never arrived: {copies}"
            time.sleep(0.2)
        code, shown = ops(binary, env_file, "show", order)
        attempts = [e for e in shown["timeline"] if e["what"] == "delivery_attempt"]
        assert code == 0 and len(attempts) == 2, (code, shown)
        print("endpoints list: merchant; events resend: the same event id delivered again; show: both attempts")


if __name__ == "__main__":
    main()
