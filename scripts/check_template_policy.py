"""Checks the hardening rules template.yaml must keep (issue: template foot-guns).

Usage: python check_template_policy.py template.yaml
Runs in the SAM CLI's virtualenv (it uses cfn-lint's YAML loader for !Ref & co).
Each rule prints what is wrong; the exit status is the number of broken rules.
"""
import sys

from cfnlint.decode import cfn_yaml


# Properties that name a resource for its account and region (two stacks of this
# template in one account must not collide), by resource type.
PHYSICAL_NAMES = {
    "AWS::Logs::LogGroup": ["LogGroupName"],
    "AWS::DynamoDB::Table": ["TableName"],
    "AWS::Serverless::Function": ["FunctionName"],
    "AWS::Lambda::Function": ["FunctionName"],
    "AWS::SNS::Topic": ["TopicName"],
    "AWS::CloudWatch::Alarm": ["AlarmName"],
    "AWS::IAM::Role": ["RoleName"],
    "AWS::Scheduler::Schedule": ["Name"],
    "AWS::Scheduler::ScheduleGroup": ["Name"],
    "AWS::SSM::Parameter": ["Name"],
}


def derived_from_stack(value) -> bool:
    text = str(value)
    return "AWS::StackName" in text or "AWS::StackId" in text


def physical_name_problems(res) -> list:
    """Every physical name is derived from the stack (its name or id); a schedule
    event names its schedule (SAM otherwise uses the event's logical id, the same
    in every stack, and EventBridge Scheduler names are unique per account, region
    and group: a second stack would fail to create)."""
    problems = []
    for name, r in res.items():
        props = r.get("Properties", {})
        for prop in PHYSICAL_NAMES.get(r["Type"], []):
            if prop in props and not derived_from_stack(props[prop]):
                problems.append(f"{name}.{prop} is a fixed name: derive it from the stack name")
        for event_name, event in (props.get("Events") or {}).items():
            if event.get("Type") in ("ScheduleV2", "Schedule"):
                schedule_name = event.get("Properties", {}).get("Name")
                if schedule_name is None or not derived_from_stack(schedule_name):
                    problems.append(f"{name}.Events.{event_name} has no per-stack Name (SAM would name it {name}{event_name})")
    return problems


def sub_text(value) -> str:
    """The template string of a `!Sub` (short or long form), else ''."""
    if isinstance(value, dict) and "Fn::Sub" in value:
        sub = value["Fn::Sub"]
        return sub[0] if isinstance(sub, list) else str(sub)
    return str(value) if isinstance(value, str) else ""


def unreachable_route_problems(res) -> list:
    """Every API Gateway route can invoke its function: some `AWS::Lambda::Permission`
    for that function, from that API, has a `SourceArn` whose
    `${Api}/<stage>/<method>/<path>` pattern matches the route (a path parameter
    taken as any one segment). Without one, API Gateway answers the route 500."""
    import fnmatch
    import re

    problems = []
    permissions = [r["Properties"] for r in res.values()
                   if r["Type"] == "AWS::Lambda::Permission"
                   and r["Properties"].get("Action") == "lambda:InvokeFunction"]
    for name, route in res.items():
        if route["Type"] != "AWS::ApiGatewayV2::Route":
            continue
        props = route["Properties"]
        api = props["ApiId"].get("Ref")
        integration = re.search(r"\$\{(\w+)\}", sub_text(props.get("Target"))).group(1)
        function = res[integration]["Properties"]["IntegrationUri"]["Fn::GetAtt"]
        function = function[0] if isinstance(function, list) else function.split(".")[0]
        method, path = props["RouteKey"].split(" ", 1)
        invoked = f"${{{api}}}/prod/{method}" + re.sub(r"\{[^}]+\}", "x1", path)
        prefix = "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:"
        if not any(p.get("FunctionName", {}).get("Ref") == function
                   and fnmatch.fnmatchcase(invoked, sub_text(p.get("SourceArn")).removeprefix(prefix))
                   for p in permissions):
            problems.append(f"{name} ({props['RouteKey']}): no lambda:InvokeFunction permission lets {api} invoke {function} (API Gateway would answer 500)")
    return problems


def main() -> int:
    t = cfn_yaml.load(sys.argv[1])
    res = t["Resources"]
    problems = []

    levels = t["Parameters"]["LogLevel"]["AllowedValues"]
    if "TRACE" in levels:
        problems.append("LogLevel offers TRACE (libraries print requests and responses there)")

    rules = t.get("Rules", {})
    live = rules.get("LiveStacksAuthorizeCallers", {})
    if str(live.get("RuleCondition")) != str({"Fn::Equals": [{"Ref": "FintocMode"}, "live"]}) or "NONE" not in str(live.get("Assertions")):
        problems.append("no rule refuses FintocMode=live with CreateIntentAuth=NONE")
    jwt = str(rules.get("JwtNeedsIssuerAudienceAndScope", {}))
    if not all(p in jwt for p in ("JwtIssuer", "JwtAudience", "JwtScope")):
        problems.append("no rule requires JwtIssuer, JwtAudience and JwtScope with CreateIntentAuth=JWT")

    functions = {k: v for k, v in res.items() if v["Type"] == "AWS::Serverless::Function"}
    for name, fn in functions.items():
        props = fn["Properties"]
        if "ReservedConcurrentExecutions" not in props:
            problems.append(f"{name}: no reserved concurrency")
        group = props.get("LoggingConfig", {}).get("LogGroup", {}).get("Ref")
        if res.get(group, {}).get("Type") != "AWS::Logs::LogGroup":
            problems.append(f"{name}: does not log to a log group of this stack")
        for policy in props.get("Policies", []):
            for st in policy.get("Statement", []):
                actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
                # A Scan reads the whole table by design (the invariant audit):
                # no key condition applies to it.
                if any(a.startswith("dynamodb:") for a in actions) and actions != ["dynamodb:Scan"]:
                    keys = st.get("Condition", {}).get("ForAllValues:StringLike", {}).get("dynamodb:LeadingKeys")
                    if not keys:
                        problems.append(f"{name}: statement {st.get('Sid')} has no dynamodb:LeadingKeys condition")
                    # Items are put or deleted whole only where that is their life:
                    # idempotency records (taken, released), events kept apart and
                    # refunds' outcomes and merchant events and their deliveries
                    # (inserted once). Payments and orders only ever change by
                    # conditional UpdateItem.
                    whole = [a for a in actions if a in ("dynamodb:PutItem", "dynamodb:DeleteItem")]
                    others = [k for k in (keys or [])
                              if k not in ("IDEMPOTENCY#*", "FOREIGN_EVENT#*", "REFUND_OUTCOME#*",
                                           "EVENT#*", "DELIVERY#*", "AUDIT#*")]
                    if whole and others:
                        problems.append(f"{name}: statement {st.get('Sid')} may {', '.join(whole)} items of {', '.join(others)}")
                    # Audit entries are inserted by the operations role alone and
                    # never changed or removed by any role.
                    writes = [a for a in actions if a in ("dynamodb:PutItem", "dynamodb:UpdateItem",
                                                         "dynamodb:DeleteItem", "dynamodb:BatchWriteItem")]
                    if writes and any(k.startswith("AUDIT") or k in ("*", "A*") for k in (keys or [])):
                        if name != "OperationsFunction" or writes != ["dynamodb:PutItem"]:
                            problems.append(f"{name}: statement {st.get('Sid')} may {', '.join(writes)} audit entries (only OperationsFunction inserts them)")

    for name, group in res.items():
        if group["Type"] == "AWS::Logs::LogGroup" and "RetentionInDays" not in group["Properties"]:
            problems.append(f"{name}: no retention")

    apis = {k: v for k, v in res.items() if v["Type"] == "AWS::Serverless::HttpApi"}
    for name, api in apis.items():
        access = api["Properties"].get("AccessLogSettings", {})
        fmt = str(access.get("Format", ""))
        if not access.get("DestinationArn"):
            problems.append(f"{name} has no access log")
        for leak in ("$context.authorizer", "$request", "body", "header"):
            if leak in fmt:
                problems.append(f"{name}'s access log format includes {leak}")
    webhook_route = next(
        (v for v in res.values() if v["Type"] == "AWS::ApiGatewayV2::Route"
         and v["Properties"]["RouteKey"] == "POST /webhooks/fintoc"), None)
    create_route = next(
        (v for v in res.values() if v["Type"] == "AWS::ApiGatewayV2::Route"
         and v["Properties"]["RouteKey"] == "POST /payment-intents"), None)
    if webhook_route and create_route and webhook_route["Properties"]["ApiId"] == create_route["Properties"]["ApiId"]:
        problems.append("the webhook route shares its API (and throttle) with the merchant API")

    problems += unreachable_route_problems(res)
    problems += physical_name_problems(res)
    # The offline deploy's emulator takes plain metric alarms only.
    for name, r in res.items():
        if r["Type"] == "AWS::CloudWatch::Alarm" and "Metrics" in r.get("Properties", {}):
            problems.append(f"{name} uses metric math: keep alarms to one metric (the offline deploy's emulator takes no metric math)")

    for p in problems:
        print(f"template policy: {p}")
    return len(problems)


if __name__ == "__main__":
    sys.exit(main())
