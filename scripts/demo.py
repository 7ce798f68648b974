#!/usr/bin/env python3
"""A guided tour of the payment flow against the running local stack (`make demo`).

Reads the endpoints from the stack's env file (.local/stack.env, or $STACK_ENV) and
prints a transcript of every step. Each step checks what it shows: the tour exits
non-zero at the first surprise, so `make test` runs it as a test too.
"""
import hashlib
import hmac
import json
import os
import sys
import time
import urllib.error
import urllib.request
import uuid

BOLD, DIM, GREEN, RED, RESET = "\033[1m", "\033[2m", "\033[32m", "\033[31m", "\033[0m"
if not sys.stdout.isatty() or os.environ.get("NO_COLOR"):
    BOLD = DIM = GREEN = RED = RESET = ""


def load_env(path):
    env = {}
    with open(path) as f:
        for line in f:
            key, _, value = line.strip().partition("=")
            if key:
                env[key] = value
    return env


class Surprise(Exception):
    pass


# The API's credential (the stack's API_TOKEN), sent to its routes alone.
API_AUTH = {"url": None, "headers": {}}


def request(method, url, body=None, headers=None, raw=None):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    headers = dict(headers or {})
    if API_AUTH["url"] and url.startswith(API_AUTH["url"] + "/") and "/_merchant/" not in url:
        headers = {**API_AUTH["headers"], **headers}
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    if data is not None:
        req.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, dict(resp.headers), json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), json.loads(e.read() or b"null")


def step(n, title):
    print(f"\n{BOLD}{n}. {title}{RESET}")


def line(text):
    print(f"   {text}")


def call(label, method, url, body=None, headers=None, raw=None):
    shown = " ".join(f"{k}: {v}" for k, v in (headers or {}).items() if k.lower() != "fintoc-signature")
    line(f"{DIM}{label} → {method} {url}{(' ' + shown) if shown else ''}{RESET}")
    if body is not None:
        shown_body = {k: mask(v) if k in ("widget_token", "session_token") else v for k, v in body.items()}
        line(f"{DIM}  {json.dumps(shown_body, ensure_ascii=False)}{RESET}")
    status, resp_headers, answer = request(method, url, body, headers, raw)
    line(f"← {status}")
    return status, resp_headers, answer


def expect(condition, what):
    if condition:
        line(f"{GREEN}✓{RESET} {what}")
    else:
        line(f"{RED}✗ {what}{RESET}")
        raise Surprise(what)


def mask(token):
    return f"{token[:12]}…{token[-4:]} ({len(token)} chars)" if token else str(token)


def wait_for_status(api, intent_id, wanted, seconds=60):
    """Polls GET until the webhook-driven status is `wanted` (like the checkout page)."""
    deadline = time.monotonic() + seconds
    while True:
        status, _, intent = request("GET", f"{api}/payment-intents/{intent_id}")
        if status == 200 and intent["status"] == wanted:
            return intent
        if time.monotonic() > deadline:
            raise Surprise(f"{intent_id} is still {intent.get('status')!r} after {seconds} s, not {wanted!r}")
        time.sleep(0.2)


def wait_for_deliveries(sim, event_ids, seconds=60):
    deadline = time.monotonic() + seconds
    while True:
        _, _, deliveries = request("GET", f"{sim}/_sim/deliveries")
        mine = [d for d in deliveries if d["event_id"] in event_ids]
        if mine and all(d["settled"] for d in mine):
            return mine
        if time.monotonic() > deadline:
            raise Surprise(f"the webhook deliveries did not settle within {seconds} s: {mine}")
        time.sleep(0.2)


def create(api, key, amount, order_id):
    body = {"amount": amount, "currency": "CLP", "order_id": order_id}
    status, headers, intent = call("merchant backend", "POST", f"{api}/payment-intents", body,
                                   {"Idempotency-Key": key})
    expect(status == 201 and intent["status"] == "created", f"intent {intent.get('id')} created, status created")
    line(f"widget_token {mask(intent.get('widget_token'))}: the browser opens Fintoc's widget with it")
    return body, intent


def merchant_events(api):
    step(12, "Post-payment actions: the merchant's systems get signed events — order.paid once")
    order_events = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status, _, answer = call("merchant's endpoint (stand-in)", "GET", f"{api}/_merchant/orders/1001/events")
        order_events = answer.get("events", [])
        if sum(e["type"] == "refund.succeeded" for e in order_events) == 2:
            break
        time.sleep(0.5)
    for event in order_events:
        line(f"{event['type']} {event['id']} at {event['timestamp']}")
    paid = [e for e in order_events if e["type"] == "order.paid"]
    expect(len(paid) == 1, "one order.paid for order 1001, though Fintoc delivered its webhook twice "
                           "(each signed per Standard Webhooks and checked by the endpoint)")
    expect(sum(e["type"] == "refund.succeeded" for e in order_events) == 2, "and one refund.succeeded per refund")


def tour(env):
    api, sim, webhook_url = env["API_URL"], env["FINTOC_SIM_URL"], env["WEBHOOK_URL"]
    if env.get("API_TOKEN"):
        API_AUTH.update(url=api, headers={"Authorization": f"Bearer {env['API_TOKEN']}"})
    print(f"{BOLD}Fintoc payments (Payment Intents and Checkout Sessions) — local tour{RESET}")
    print(f"API {api} · Fintoc simulator {sim} · webhooks to {webhook_url}")

    step(1, "The merchant backend creates a payment intent (secret key stays on the server)")
    key = f"order-1001-{uuid.uuid4().hex[:8]}"
    body, intent = create(api, key, 15000, "1001")
    pi = intent["id"]

    step(2, "The payer pays; Fintoc's signed webhook arrives — once throttled (503), retried, and duplicated")
    status, _, _ = call("local gateway", "POST", f"{api}/_local/faults", {"webhook": [503]})
    expect(status == 200, "the gateway will answer the next delivery with 503, as a throttled API Gateway would")
    status, _, finished = call("payer (simulated widget)", "POST", f"{sim}/_sim/payment_intents/{pi}/finish",
                               {"outcome": "succeeded", "duplicate": True})
    expect(status == 202, "the simulator finished the payment and sends payment_intent.succeeded twice")
    deliveries = wait_for_deliveries(sim, set(finished["event_ids"]))
    for d in deliveries:
        line(f"delivery of {d['event_type']} {d['event_id']}: {d['attempts']} attempt(s), last answer {d['last_status']}")
    expect(deliveries[0]["attempts"] == 2 and deliveries[0]["last_status"] == 200,
           "first delivery: 503, then Fintoc's retry answered 200")
    expect(all(d["delivered"] for d in deliveries), "the duplicate delivery answered 200 too (acknowledged, not re-applied)")

    step(3, "The merchant reads the intent: only the webhook made it succeeded")
    status, _, seen = call("merchant backend", "GET", f"{api}/payment-intents/{pi}")
    expect(status == 200 and seen["status"] == "succeeded", f"{pi} is succeeded — now ship the order")

    for n, outcome, reason in ((4, "rejected", "the bank rejects it"), (5, "failed", "the transfer fails")):
        step(n, f"Another payment, and {reason}")
        _, other = create(api, f"order-{1000 + n}-{uuid.uuid4().hex[:8]}", 9900, str(1000 + n))
        status, _, _ = call("payer (simulated widget)", "POST", f"{sim}/_sim/widget/complete",
                            {"widget_token": other["widget_token"], "outcome": outcome})
        expect(status == 202, f"the payer's widget reports {outcome}; Fintoc sends the webhook")
        seen = wait_for_status(api, other["id"], outcome)
        expect(True, f"GET shows {seen['status']} (error_reason {seen.get('error_reason')}) — no order is shipped")

    step(6, "A retried create (same Idempotency-Key, same body) returns the same intent")
    status, headers, again = call("merchant backend (retry)", "POST", f"{api}/payment-intents", body,
                                  {"Idempotency-Key": key})
    replayed = {k.lower(): v for k, v in headers.items()}.get("idempotent-replayed")
    expect(status == 201 and again["id"] == pi, f"same intent {pi}, Idempotent-Replayed: {replayed}")
    status, _, answer = call("merchant backend (bug)", "POST", f"{api}/payment-intents",
                             {**body, "amount": 1}, {"Idempotency-Key": key})
    expect(status == 422, f"the same key with another amount is refused: {answer['error']['code']}")

    step(7, "One order, one payment: a second payment of an order is refused, not created")
    status, _, answer = call("merchant backend (second click)", "POST", f"{api}/payment-intents",
                             {**body, "amount": 15000}, {"Idempotency-Key": f"order-1001-{uuid.uuid4().hex[:8]}"})
    expect(status == 409 and answer["error"]["code"] == "order_already_paid",
           f"order 1001 is paid by {pi}: {answer['error']['code']}")
    order = f"2{uuid.uuid4().hex[:6]}"
    _, pending = create(api, f"order-{order}-{uuid.uuid4().hex[:8]}", 4500, order)
    status, _, answer = call("merchant backend (second click)", "POST", f"{api}/payment-intents",
                             {"amount": 4500, "currency": "CLP", "order_id": order},
                             {"Idempotency-Key": f"order-{order}-{uuid.uuid4().hex[:8]}"})
    expect(status == 409 and answer["error"]["code"] == "order_has_active_intent"
           and pending["id"] in answer["error"]["message"],
           f"order {order} still has {pending['id']} open: {answer['error']['code']}")

    step(8, "A forged webhook (signed with the wrong secret) is refused")
    forged = json.dumps({"id": f"evt_forged_{uuid.uuid4().hex[:8]}", "type": "payment_intent.failed",
                         "data": {"id": pi, "object": "payment_intent", "status": "failed"}}).encode()
    t = int(time.time())
    sig = hmac.new(b"whsec_not_the_secret", f"{t}.".encode() + forged, hashlib.sha256).hexdigest()
    status, _, answer = call("attacker", "POST", webhook_url, headers={"Fintoc-Signature": f"t={t},v1={sig}"},
                             raw=forged)
    expect(status == 400, f"refused: {answer['error']['code']}")
    status, _, seen = request("GET", f"{api}/payment-intents/{pi}")
    expect(seen["status"] == "succeeded", f"{pi} is still succeeded")

    step(9, "Every webhook of a payment is lost (endpoint down); the reconciler records it anyway")
    status, _, _ = call("Fintoc (simulated outage)", "POST", f"{sim}/_sim/deliveries/mode", {"mode": "off"})
    expect(status == 200, "the simulator will deliver no webhook at all")
    try:
        order = f"3{uuid.uuid4().hex[:6]}"
        _, lost = create(api, f"order-{order}-{uuid.uuid4().hex[:8]}", 7700, order)
        status, _, _ = call("payer (simulated widget)", "POST", f"{sim}/_sim/widget/complete",
                            {"widget_token": lost["widget_token"], "outcome": "succeeded"})
        expect(status == 202, "the payer paid; Fintoc's webhooks go nowhere")
        status, _, seen = request("GET", f"{api}/payment-intents/{lost['id']}")
        expect(seen["status"] == "created", f"{lost['id']} still reads created: no webhook arrived")
        found = None
        deadline = time.time() + 60
        while time.time() < deadline:
            # The intent's first check is due 3 s after its creation (locally).
            # The Lambda Invoke API: cargo lambda watch's (function `reconcile`), or
            # sam local start-lambda's (logical id `ReconcileFunction`).
            function = env.get("RECONCILE_FUNCTION", "reconcile")
            status, _, summary = request("POST", f"{env['FUNCTIONS_URL']}/2015-03-31/functions/{function}/invocations",
                                         {"source": "tour"})
            status, _, seen = request("GET", f"{api}/payment-intents/{lost['id']}")
            if seen["status"] == "succeeded":
                found = summary
                break
            time.sleep(1)
        expect(found is not None, f"the reconciler asked Fintoc and recorded {lost['id']} as succeeded")
        line(f"reconciliation run: {json.dumps(found)}")
    finally:
        request("POST", f"{sim}/_sim/deliveries/mode", {"mode": "normal"})

    step(10, "Fintoc's current flow: a checkout session, a failed attempt, then paid inside it")
    order = f"4{uuid.uuid4().hex[:6]}"
    status, _, session = call("merchant backend", "POST", f"{api}/checkout-sessions",
                              {"amount": 12000, "currency": "CLP", "order_id": order},
                              {"Idempotency-Key": f"order-{order}-{uuid.uuid4().hex[:8]}"})
    expect(status == 201 and session["status"] == "created", f"session {session.get('id')} created")
    line(f"session_token {mask(session.get('session_token'))}: the widget opens with it (sessionToken)")
    line(f"redirect_url {session.get('redirect_url')}: or the payer goes to Fintoc's page")
    cs = session["id"]
    status, _, _ = call("payer (simulated widget)", "POST", f"{sim}/_sim/widget/complete",
                        {"session_token": session["session_token"], "outcome": "failed"})
    expect(status == 202, "the first attempt fails; the session stays open for another")
    deadline = time.monotonic() + 60
    while True:
        status, _, seen = request("GET", f"{api}/checkout-sessions/{cs}")
        if seen.get("payment_status") == "failed" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    expect(seen["status"] == "in_progress" and not seen["paid"],
           f"GET: {seen['status']}, paid {seen['paid']}, latest attempt {seen['payment_status']}")
    status, _, _ = call("payer (simulated widget)", "POST", f"{sim}/_sim/widget/complete",
                        {"session_token": session["session_token"], "outcome": "succeeded"})
    expect(status == 202, "the payer tries again and pays: payment_intent.succeeded, then checkout_session.finished")
    deadline = time.monotonic() + 60
    while True:
        status, _, seen = request("GET", f"{api}/checkout-sessions/{cs}")
        if seen.get("paid") or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    expect(seen["paid"] and seen["status"] == "finished",
           f"{cs} is finished and paid by {seen.get('payment_intent_id')} — ship order {order}")
    status, _, answer = call("merchant backend (second click)", "POST", f"{api}/payment-intents",
                             {"amount": 12000, "currency": "CLP", "order_id": order},
                             {"Idempotency-Key": f"order-{order}-{uuid.uuid4().hex[:8]}"})
    expect(status == 409 and answer["error"]["code"] == "order_already_paid",
           "paid by a session, the order is never paid again by an intent")

    step(11, "Money back: part of the first payment refunded, then the rest — never more than it paid")
    refund_url = f"{api}/payment-intents/{pi}/refunds"
    status, _, part = call("merchant backend", "POST", refund_url,
                           {"amount": 5000, "metadata": {"reason": "one item returned"}},
                           {"Idempotency-Key": f"refund-{uuid.uuid4().hex[:8]}"})
    expect(status == 201 and part["status"] == "pending",
           f"refund {part.get('id')} of 5000 CLP: reserved on the payment first, then made at Fintoc")
    status, _, refused = call("merchant backend", "POST", refund_url, {"amount": 10001},
                              {"Idempotency-Key": f"refund-{uuid.uuid4().hex[:8]}"})
    expect(status == 409 and refused["error"]["code"] == "refund_exceeds_refundable",
           "10001 more is refused before Fintoc is asked: 10000 is left")
    status, _, rest = call("merchant backend", "POST", refund_url, {},
                           {"Idempotency-Key": f"refund-{uuid.uuid4().hex[:8]}"})
    expect(status == 201 and rest["amount"] == 10000, "no amount: the rest, 10000")
    events = set()
    for refund in (part, rest):
        status, _, settled = call("Fintoc (simulated payout)", "POST",
                                  f"{sim}/_sim/refunds/{refund['fintoc_refund_id']}/settle",
                                  {"outcome": "succeeded"})
        expect(status == 202, f"Fintoc pays {refund['fintoc_refund_id']} out and sends refund.succeeded")
        events |= set(settled["event_ids"])
    wait_for_deliveries(sim, events)
    status, _, seen = call("merchant backend", "GET", f"{api}/payment-intents/{pi}")
    expect(seen["refunded_amount"] == 15000 and seen["refundable_amount"] == 0,
           f"{pi}: refunded {seen['refunded_amount']}, refundable {seen['refundable_amount']} — "
           f"refunds {', '.join(r['status'] for r in seen['refunds'])}")

    if env.get("EVENTS_DISPATCHER") == "on":
        merchant_events(api)
    else:
        print("\n(Merchant events are not shown: this stack runs no dispatcher on a table stream — sam local has none.)")

    print(f"\n{BOLD}Done.{RESET} Pay in a browser: {env['CHECKOUT_URL']}")
    print(f"  (Checkout Sessions: {env['CHECKOUT_URL']}?flow=session_widget or ?flow=session_redirect)")
    print("Endpoints: .local/stack.env · logs: .local/stack-*/ · stop everything: make down")


def main():
    path = os.environ.get("STACK_ENV", os.path.join(os.path.dirname(__file__), "..", ".local", "stack.env"))
    if not os.path.exists(path):
        sys.exit(f"no running stack ({path} is missing): run make up first")
    try:
        tour(load_env(path))
    except Surprise as e:
        sys.exit(f"\ndemo failed: {e}")


if __name__ == "__main__":
    main()
