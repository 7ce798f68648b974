"""Fintoc's official Python client (PyPI `fintoc`) against the simulator: its
payment intents and refunds managers (create, get, list with Fintoc's Link
pagination, cancel) and its error mapping, unmodified — only its base URL points
at the simulator. Run by scripts/python-client-test.sh; FINTOC_SIM_URL and
FINTOC_SECRET_KEY name the simulator and a key it accepts."""

import http.server
import importlib.metadata
import json
import os
import sys
import threading
import time
import urllib.request

from fintoc import Fintoc
from fintoc.errors import FintocError, InvalidRequestError
from fintoc.webhook import WebhookSignature

SIM = os.environ["FINTOC_SIM_URL"].rstrip("/")
KEY = os.environ.get("FINTOC_SECRET_KEY", "sk_test_simulator")
checks = 0
RUN = "py-" + os.urandom(6).hex()


def check(condition, what):
    global checks
    if not condition:
        sys.exit(f"FAILED: {what}")
    checks += 1


def control(path, body):
    request = urllib.request.Request(
        SIM + path, data=json.dumps(body).encode(), method="POST",
        headers={"content-type": "application/json"})
    with urllib.request.urlopen(request) as answer:
        return json.load(answer)


# Where the simulator delivers its signed events: each checked with the client's
# own WebhookSignature before it is counted.
SECRET = "whsec_python_client_test"
events = []


class Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["content-length"])).decode()
        try:
            WebhookSignature.verify_header(body, self.headers["fintoc-signature"], SECRET)
            events.append(json.loads(body)["type"])
            self.send_response(200)
        except Exception as e:  # a refused signature fails the check below
            print(f"refused a delivery: {e!r}", file=sys.stderr)
            self.send_response(400)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


receiver = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
threading.Thread(target=receiver.serve_forever, daemon=True).start()
control("/_sim/webhook", {"url": f"http://127.0.0.1:{receiver.server_port}/", "secret": SECRET})

client = Fintoc(KEY, api_version="2026-02-01")
client._client.base_url = SIM  # the only change: Fintoc's address

intent = client.payment_intents.create(
    amount=15000, currency="CLP",
    recipient_account={"holder_id": "771433855", "number": "123456789",
                       "type": "checking_account", "institution_id": "cl_banco_de_chile"})
check(intent.id.startswith("pi_") and intent.amount == 15000, "a payment intent is created")
control(f"/_sim/payment_intents/{intent.id}/finish", {"outcome": "succeeded"})
check(client.payment_intents.get(intent.id).status == "succeeded", "the intent reads back succeeded")

partial = client.refunds.create(
    resource_type="payment_intent", resource_id=intent.id, amount=4000,
    metadata={"reason": "returned item"}, idempotency_key=RUN + "-1")
check(partial.object == "refund" and partial.amount == 4000, f"a partial refund: {partial.serialize()}")
check(partial.status in ("created", "pending"), "a new refund is cancellable")
check(partial.resource_id == intent.id and partial.currency == "CLP", "it names its payment")
check(partial.metadata.reason == "returned item", "its metadata is an object")
again = client.refunds.create(
    resource_type="payment_intent", resource_id=intent.id, amount=4000,
    metadata={"reason": "returned item"}, idempotency_key=RUN + "-1")
check(again.id == partial.id, "the same Idempotency-Key replays the same refund")
check(client.refunds.get(partial.id).id == partial.id, "get reads it back")

try:
    client.refunds.create(resource_type="payment_intent", resource_id=intent.id, amount=11001)
    check(False, "more than refundable is refused")
except InvalidRequestError as e:
    check("11000" in str(e) or "refund" in str(e).lower(), f"the refusal names the rule: {e}")

canceled = client.refunds.cancel(partial.id)
check(canceled.status == "canceled", f"cancel: {canceled.serialize()}")
try:
    client.refunds.cancel(partial.id)
    check(False, "a canceled refund cannot be canceled again")
except FintocError as e:
    check(True, str(e))

# 35 small refunds: more than one page of Fintoc's default 30, so the client
# follows the Link header to the second page.
made = {client.refunds.create(resource_type="payment_intent", resource_id=intent.id, amount=10).id
        for _ in range(35)}
listed = [r.id for r in client.refunds.list(since="2000-01-01T00:00:00Z")]
check(made <= set(listed), f"list follows the Link header to every page ({len(listed)} listed)")
check(len(listed) == len(set(listed)), "no refund listed twice")
check(partial.id in listed, "the canceled refund is listed too")
pending = [r.id for r in client.refunds.list(status="pending")]
check(partial.id not in pending and len(pending) >= 35, "list filters by status")

full = client.payment_intents.create(amount=2000, currency="CLP")
control(f"/_sim/payment_intents/{full.id}/finish", {"outcome": "succeeded"})
whole = client.refunds.create(resource_type="payment_intent", resource_id=full.id)
check(whole.amount == 2000, "no amount refunds the whole payment")
control(f"/_sim/refunds/{whole.id}/settle", {"outcome": "succeeded"})
check(client.refunds.get(whole.id).status == "succeeded", "a settled refund reads back succeeded")

for _ in range(100):  # deliveries are asynchronous: up to 10 s
    if "refund.succeeded" in events:
        break
    time.sleep(0.1)
check("refund.succeeded" in events and "payment_intent.succeeded" in events,
      f"signed events verified by the client's WebhookSignature: {sorted(set(events))}")

print(f"fintoc-python {importlib.metadata.version('fintoc')}: {checks} checks passed against {SIM}")
