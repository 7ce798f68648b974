"""The merchant events a running stack delivered, checked from the outside.

Every delivery the local gateway's merchant stand-in received (GET
/_local/merchant-events) is verified with Standard Webhooks' reference library
(PyPI `standardwebhooks`) and the stack's MERCHANT_WEBHOOK_SECRET, its body held to
its type's JSON Schema (docs/events/<type>.schema.json), its `webhook-id` to the
event's `id`; no id is delivered twice, no body carries a token or secret, and every
order paid on the stack has its one `order.paid`. Run by scripts/stack-test.sh right
after the guided tour (signatures are checked within Standard Webhooks' 5 minutes).

    .tools/events-venv/bin/python scripts/check_merchant_events.py .local/stack-test.env
"""

import collections
import json
import os
import sys
import time
import urllib.request

import jsonschema
from standardwebhooks.webhooks import Webhook

ROOT = os.path.join(os.path.dirname(__file__), "..")
FORBIDDEN = ("widget_token", "session_token", "whsec_", "sk_test", "sk_live", "account_number")


def load_env(path):
    env = {}
    for line in open(path):
        key, sep, value = line.strip().partition("=")
        if sep:
            env[key] = value
    return env


def get(url):
    with urllib.request.urlopen(url, timeout=30) as answer:
        return json.load(answer)


def schema_of(event_type):
    path = os.path.join(ROOT, "docs", "events", f"{event_type}.schema.json")
    schema = json.load(open(path))
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


def main():
    env = load_env(sys.argv[1])
    api = env["API_URL"]
    webhook = Webhook(env["MERCHANT_WEBHOOK_SECRET"])
    paid_orders = sys.argv[2:]
    # The dispatcher delivers within a second or two of a change; wait for every
    # paid order's event.
    deadline = time.monotonic() + 60
    while True:
        deliveries = get(f"{api}/_local/merchant-events")["deliveries"]
        paid = {json.loads(d["body"])["data"]["order_id"] for d in deliveries if d["event_type"] == "order.paid"}
        if all(order in paid for order in paid_orders) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    problems = []
    ids = collections.Counter()
    by_type = collections.Counter()
    for d in deliveries:
        body = d["body"]
        try:
            webhook.verify(body, d["headers"])
        except Exception as e:  # the library's own verdict, whatever its class
            problems.append(f"{d['headers'].get('webhook-id')}: signature refused by standardwebhooks: {e}")
            continue
        event = json.loads(body)
        errors = sorted(schema_of(event["type"]).iter_errors(event), key=str)
        problems += [f"{event['id']} ({event['type']}): {e.message}" for e in errors]
        if d["headers"]["webhook-id"] != event["id"]:
            problems.append(f"{event['id']}: webhook-id {d['headers']['webhook-id']} is not the event's id")
        problems += [f"{event['id']}: carries {word}" for word in FORBIDDEN if word in body]
        ids[event["id"]] += 1
        by_type[event["type"]] += 1
    problems += [f"{i} delivered {n} times (every delivery was acknowledged)" for i, n in ids.items() if n > 1]
    per_order = collections.Counter(
        json.loads(d["body"])["data"]["order_id"] for d in deliveries if d["event_type"] == "order.paid")
    problems += [f"order {o} has no order.paid" for o in paid_orders if per_order[o] == 0]
    problems += [f"order {o} has {n} order.paid" for o, n in per_order.items() if n > 1]
    for p in problems:
        print(f"merchant events: {p}")
    print(f"merchant events: {len(deliveries)} deliveries verified with standardwebhooks and their schemas "
          f"({', '.join(f'{n} {t}' for t, n in sorted(by_type.items()))})")
    if not deliveries:
        problems.append("no delivery at all")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
