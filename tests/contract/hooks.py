"""schemathesis hooks for the API contract test (scripts/api-contract-test.sh).

The stateful phase follows the spec's links (create -> get -> refund -> get refund ->
cancel; session -> get, expire, refund), so it needs creates that make something:
- A schema-valid create (positive mode) is sent for an order of its own, under a key
  of its own, at an amount this deployment takes (at most 5,000,000): generated
  values repeat (`"0"`), and a key reused with another body, an order already paid
  or an amount over the configured maximum is rightly refused (422, 409), as is a
  session's return URL that is not configured (it is left out: the default) — which the
  checks accept, but which makes nothing to follow. Schema-violating cases are sent
  as generated.
- A refund needs a paid payment, and only Fintoc pays one: after each payment intent
  schemathesis creates, the payer pays it at the simulator, and the hook waits until
  the backend has recorded the signed webhook, so the links that follow act on real,
  paid resources. Sessions are left unpaid, so their expire link has one to expire.
"""
import json
import os
import time
import urllib.error
import urllib.request
import uuid

import schemathesis

SIMULATOR = os.environ["FINTOC_SIM_URL"]


def _call(method, url, headers=None, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        req.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, None


CREATES = ("/payment-intents", "/checkout-sessions")
LARGEST_AMOUNT = 5_000_000


@schemathesis.hook
def before_call(context, case, kwargs):
    if case.operation.method.upper() != "POST" or case.operation.path not in CREATES:
        return
    if case.meta is None or case.meta.generation.mode.name.lower() != "positive":
        return
    unique = uuid.uuid4().hex
    case.headers = {**(case.headers or {}), "Idempotency-Key": f"contract-{unique}"}
    if isinstance(case.body, dict):
        body = dict(case.body)
        body["order_id"] = f"contract-{unique}"
        if isinstance(body.get("amount"), int):
            body["amount"] = 1 + body["amount"] % LARGEST_AMOUNT
        # A return URL must be one of the configured ones; the default is.
        body.pop("success_url", None)
        body.pop("cancel_url", None)
        case.body = body


@schemathesis.hook
def after_call(context, case, response):
    if case.operation.method.upper() != "POST" or case.operation.path != "/payment-intents":
        return
    if response.status_code != 201 or response.headers.get("idempotent-replayed"):
        return
    intent = response.json()["id"]
    status, _ = _call("POST", f"{SIMULATOR}/_sim/payment_intents/{intent}/finish", body={"outcome": "succeeded"})
    if status != 202:
        return
    # The simulator delivers the signed webhook at once; wait until it is recorded.
    url = response.request.url.rstrip("/") + f"/{intent}"
    headers = {"Authorization": response.request.headers.get("Authorization", "")}
    for _ in range(100):
        status, seen = _call("GET", url, headers)
        if status == 200 and seen.get("paid"):
            return
        time.sleep(0.05)
