"""The deployed stack, tested through its outputs only, as a merchant's server uses it.

Usage: python deploy_local_test.py .local/deploy-local.env [more env files...]
Runs in the SAM CLI's virtualenv (botocore signs the requests with SigV4). For the
first stack: a signed create of both flows, its replay, an unsigned request refused,
a payment finished at the simulator whose signed webhook reaches the deployed
WebhookUrl, GET showing the outcome, a refund of part of it read back and canceled,
the session read, refused a refund and expired (every route of shared::routes), and
the functions' logs free of secrets and tokens. For every further stack: a signed create answered by that stack.
Exits non-zero on the first failure.
"""
import json
import sys
import time
import urllib.error
import urllib.request
import uuid

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

CREDENTIALS = Credentials("local", "local")


def read_env(path):
    return dict(line.strip().split("=", 1) for line in open(path) if "=" in line)


def call(method, url, body=None, headers=None, signed=True):
    data = json.dumps(body).encode() if body is not None else None
    headers = {"content-type": "application/json", **(headers or {})}
    if signed:
        request = AWSRequest(method=method, url=url, data=data, headers=headers)
        SigV4Auth(CREDENTIALS, "execute-api", "us-east-1").add_auth(request)
        headers = dict(request.headers.items())
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as answer:
            return answer.status, json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as e:
        text = e.read()
        try:
            return e.code, json.loads(text)
        except ValueError:
            return e.code, text.decode(errors="replace")


ENV = {}


def function_logs(env):
    """Every log line of the stack's functions, from the emulator's CloudWatch Logs."""
    logs = boto3.client("logs", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                        aws_access_key_id="local", aws_secret_access_key="local")
    groups = [g["logGroupName"] for g in
              logs.describe_log_groups(logGroupNamePrefix="/aws/lambda/" + env["STACK_NAME"])["logGroups"]]
    return groups, [(g, e["message"]) for g in groups for e in logs.filter_log_events(logGroupName=g).get("events", [])]


def expect(condition, what):
    if not condition:
        print(f"deploy-local test: FAILED: {what}")
        if ENV:  # what the functions said: the first thing to read on a failure
            try:
                for group, message in function_logs(ENV)[1][-60:]:
                    print(f"  {group.rsplit('/', 1)[-1]}: {message.rstrip()}")
            except Exception as e:  # noqa: BLE001 - a diagnostic must not hide the failure
                print(f"  (could not read the functions' logs: {e})")
        sys.exit(1)
    print(f"deploy-local test: ok: {what}")


def order_body(order):
    return {"amount": 15000, "currency": "CLP", "order_id": order, "metadata": {"cart": "c-1"}}


def view_once_succeeded(api, intent):
    """GET of the intent once it shows `succeeded` (or the last answer, after 30 s):
    waits for a webhook delivery (an event), not for time to pass."""
    view = None
    for _ in range(150):
        status, view = call("GET", f"{api}/payment-intents/{intent}")
        if status == 200 and view.get("status") == "succeeded":
            break
        time.sleep(0.2)
    return view


def bus_queue(env):
    """A queue the stack's merchant events bus feeds with its order.paid events,
    through a rule attached as a merchant would attach one; the queue's URL."""
    aws = dict(endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
               aws_access_key_id="local", aws_secret_access_key="local")
    outputs = boto3.client("cloudformation", **aws).describe_stacks(StackName=env["STACK_NAME"])["Stacks"][0]["Outputs"]
    bus = next(o["OutputValue"] for o in outputs if o["OutputKey"] == "MerchantEventsBusName")
    sqs = boto3.client("sqs", **aws)
    queue = sqs.create_queue(QueueName=f"order-paid-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events = boto3.client("events", **aws)
    events.put_rule(Name="order-paid-to-queue", EventBusName=bus,
                    EventPattern=json.dumps({"source": ["fintoc-payments"], "detail-type": ["order.paid"]}))
    events.put_targets(Rule="order-paid-to-queue", EventBusName=bus, Targets=[{"Id": "queue", "Arn": arn}])
    return sqs, queue


def first_stack(env):
    api, sim = env["API_URL"], env["FINTOC_SIM_URL"]
    sqs, queue = bus_queue(env)
    status, _ = call("POST", f"{sim}/_sim/webhook", {"url": env["WEBHOOK_URL"], "secret": env["WEBHOOK_SECRET"]}, signed=False)
    expect(200 <= status < 300, f"the simulator delivers to the deployed WebhookUrl ({status})")
    key, order = str(uuid.uuid4()), f"order-{uuid.uuid4()}"
    status, created = call("POST", f"{api}/payment-intents", order_body(order), {"idempotency-key": key})
    expect(status == 201 and created.get("widget_token"),
           f"a SigV4-signed create answers 201 with a widget token ({status} {created if status != 201 else ''})")
    status, again = call("POST", f"{api}/payment-intents", order_body(order), {"idempotency-key": key})
    expect(status == 201 and again == created, "the same key replays the same answer")
    status, _ = call("POST", f"{api}/payment-intents", order_body(f"order-{uuid.uuid4()}"),
                     {"idempotency-key": str(uuid.uuid4())}, signed=False)
    expect(status == 403, f"an unsigned create is refused by the IAM authorizer ({status})")
    status, session = call("POST", f"{api}/checkout-sessions", order_body(f"order-{uuid.uuid4()}"),
                           {"idempotency-key": str(uuid.uuid4())})
    expect(status == 201 and session.get("session_token"), f"a signed checkout-session create answers 201 ({status})")
    intent = created["id"]
    status, _ = call("POST", f"{sim}/_sim/payment_intents/{intent}/finish", {"outcome": "succeeded"}, signed=False)
    expect(200 <= status < 300, f"the payment is finished at the simulator ({status})")
    view = view_once_succeeded(api, intent)
    expect(view and view.get("status") == "succeeded" and view.get("paid") is True,
           f"the webhook reached the deployed function: GET says succeeded and paid ({view})")
    # The table's stream, through the event source mapping and its filter, to the
    # dispatcher: the paid order's one order.paid is recorded in the outbox (no
    # endpoint is configured here, so it is sent nowhere).
    aws = dict(endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
               aws_access_key_id="local", aws_secret_access_key="local")
    table = boto3.client("dynamodb", **aws)
    events = []
    deadline = time.monotonic() + 60
    while not events and time.monotonic() < deadline:
        events = [i for i in table.scan(TableName=env["TABLE_NAME"])["Items"]
                  if i["pk"]["S"].startswith("EVENT#") and i.get("order_id", {}).get("S") == view["order_id"]]
        time.sleep(1)
    expect([e["event_type"]["S"] for e in events] == ["order.paid"],
           f"the stream's mapping ran dispatch-events: one order.paid recorded for {view['order_id']} "
           f"({[e['pk']['S'] for e in events]})")
    messages = []
    deadline = time.monotonic() + 30
    while not messages and time.monotonic() < deadline:
        messages = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1).get("Messages", [])
    details = [json.loads(m["Body"]) for m in messages]
    expect(len(details) == 1 and details[0]["detail-type"] == "order.paid"
           and details[0]["detail"]["data"]["order_id"] == view["order_id"],
           f"the order.paid reached the bus, and a rule on it a queue ({details})")
    status, refund = call("POST", f"{api}/payment-intents/{intent}/refunds", {"amount": 5000},
                          {"idempotency-key": str(uuid.uuid4())})
    expect(status == 201 and refund.get("status") == "pending",
           f"a signed refund of part of it answers 201, pending at Fintoc ({status} {refund if status != 201 else ''})")
    status, view = call("GET", f"{api}/payment-intents/{intent}")
    expect(view.get("refundable_amount") == 10000, f"GET: 10000 left to refund ({view.get('refundable_amount')})")
    # Every other route of shared::routes, answered by the function (not a gateway 500).
    status, read = call("GET", f"{api}/refunds/{refund['id']}")
    expect(status == 200 and read.get("id") == refund["id"], f"GET /refunds/{{id}} reads the refund back ({status})")
    status, canceled = call("POST", f"{api}/refunds/{refund['id']}/cancel")
    expect(status == 200 and canceled.get("status") == "canceled",
           f"POST /refunds/{{id}}/cancel cancels the pending refund ({status} {canceled})")
    status, read = call("GET", f"{api}/checkout-sessions/{session['id']}")
    expect(status == 200 and read.get("id") == session["id"], f"GET /checkout-sessions/{{id}} reads the session ({status})")
    status, refused = call("POST", f"{api}/checkout-sessions/{session['id']}/refunds", {"amount": 1},
                           {"idempotency-key": str(uuid.uuid4())})
    expect(status == 409 and refused.get("error", {}).get("code") == "payment_not_refundable",
           f"POST /checkout-sessions/{{id}}/refunds answers from the function: an unpaid session ({status} {refused})")
    status, expired = call("POST", f"{api}/checkout-sessions/{session['id']}/expire")
    expect(status == 200 and expired.get("status") == "expired",
           f"POST /checkout-sessions/{{id}}/expire expires the session ({status} {expired})")
    # Every webhook lost: the scheduled reconcile target, invoked once as the
    # schedule invokes it, records the payment.
    status, _ = call("POST", f"{sim}/_sim/deliveries/mode", {"mode": "off"}, signed=False)
    expect(200 <= status < 300, "the simulator's deliveries are off")
    status, lost = call("POST", f"{api}/payment-intents", order_body(f"order-{uuid.uuid4()}"),
                        {"idempotency-key": str(uuid.uuid4())})
    call("POST", f"{sim}/_sim/payment_intents/{lost['id']}/finish", {"outcome": "succeeded"}, signed=False)
    aws = dict(endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
               aws_access_key_id="local", aws_secret_access_key="local")
    resources = boto3.client("cloudformation", **aws).describe_stack_resources(StackName=env["STACK_NAME"])["StackResources"]
    def run_schedule(logical_id):
        """Invokes a schedule's target with its input, as the schedule would."""
        name = next(r["PhysicalResourceId"] for r in resources
                    if r["ResourceType"] == "AWS::Scheduler::Schedule" and r["LogicalResourceId"] == logical_id)
        target = boto3.client("scheduler", **aws).get_schedule(Name=name)["Target"]
        run = boto3.client("lambda", **aws).invoke(FunctionName=target["Arn"], Payload=target.get("Input", "{}").encode())
        return name, json.loads(run["Payload"].read())
    schedule_name, summary = run_schedule("ReconcileFunctionEvery")
    expect(summary.get("outcomes_found", 0) >= 1, f"the schedule's target ({schedule_name}) records the lost payment: {summary}")
    # The daily audit schedule's input makes the same function audit the table.
    schedule_name, report = run_schedule("ReconcileFunctionDailyAudit")
    expect(report.get("kind") == "invariant_audit" and report.get("violations") == [] and report.get("checked", 0) > 0,
           f"the daily audit schedule's target ({schedule_name}) audits the deployed table: no violation: {report}")
    status, view = call("GET", f"{api}/payment-intents/{lost['id']}")
    expect(view.get("status") == "succeeded", "GET shows the payment the reconciler recorded")
    call("POST", f"{sim}/_sim/deliveries/mode", {"mode": "normal"}, signed=False)
    secrets = ["sk_test_simulator", env["WEBHOOK_SECRET"], created["widget_token"], session["session_token"]]
    groups, lines = function_logs(env)
    messages = [m for _, m in lines]
    leaked = [s for s in secrets if any(s in m for m in messages)]
    expect(not leaked, f"no secret or token in the functions' logs ({len(messages)} lines in {len(groups)} groups)")


def other_stack(env):
    status, created = call("POST", f"{env['API_URL']}/payment-intents", order_body(f"order-{uuid.uuid4()}"),
                           {"idempotency-key": str(uuid.uuid4())})
    expect(status == 201, f"stack {env['STACK_NAME']} beside the first creates its own intents ({status})")
    url = env.get("WEBHOOK_FUNCTION_URL")
    if not url:
        return
    # Its webhook on the Function URL (WebhookFunctionUrl=true): a forged delivery is
    # refused; Fintoc's signed event, delivered there, pays the intent.
    status, answer = call("POST", url, {"id": "evt_forged"}, {"fintoc-signature": "t=1,v1=00"}, signed=False)
    expect(status == 400, f"the Function URL refuses an unsigned delivery ({status} {answer})")
    sim = env["FINTOC_SIM_URL"]
    status, _ = call("POST", f"{sim}/_sim/webhook", {"url": url, "secret": env["WEBHOOK_SECRET"]}, signed=False)
    expect(200 <= status < 300, f"the simulator delivers to the deployed WebhookFunctionUrl ({status})")
    intent = created["id"]
    status, _ = call("POST", f"{sim}/_sim/payment_intents/{intent}/finish", {"outcome": "succeeded"}, signed=False)
    expect(200 <= status < 300, f"the payment is finished at the simulator ({status})")
    view = view_once_succeeded(env["API_URL"], intent)
    expect(view and view.get("paid") is True,
           f"the webhook's Function URL reached the deployed function: GET says paid ({view})")


def main():
    envs = [read_env(p) for p in sys.argv[1:]]
    ENV.update(envs[0])
    first_stack(envs[0])
    for env in envs[1:]:
        ENV.update(env)
        other_stack(env)


if __name__ == "__main__":
    main()
