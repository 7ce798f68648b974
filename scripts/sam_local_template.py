"""Writes a copy of the built template whose functions carry the API routes as
`HttpApi` events, for `sam local start-api`.

The template declares its routes as `AWS::ApiGatewayV2::Route` resources (so each
route's authorizer can follow the CreateIntentAuth parameter), next to
`AWS::Serverless::*` resources; SAM CLI's local API then reads routes from function
events only, so it would serve none. This copy adds, to each function, one event per
route whose integration invokes it (same method, same path); nothing else changes,
and the copy is only ever used locally.

Usage: python sam_local_template.py BUILT_TEMPLATE OUT
Runs in the SAM CLI's virtualenv (its YAML loader keeps !Ref & co).
"""
import sys

from samcli.yamlhelper import yaml_dump, yaml_parse


def target_function(template: dict, route: dict) -> str | None:
    target = route["Properties"].get("Target", {})
    sub = target.get("Fn::Sub") if isinstance(target, dict) else None
    if not isinstance(sub, str) or not sub.startswith("integrations/${"):
        return None
    integration = template["Resources"].get(sub[len("integrations/${"):-1], {})
    uri = integration.get("Properties", {}).get("IntegrationUri", {})
    arn = uri.get("Fn::GetAtt") if isinstance(uri, dict) else None
    if isinstance(arn, str):
        arn = arn.split(".")
    return arn[0] if arn else None


def main() -> int:
    source, out = sys.argv[1], sys.argv[2]
    with open(source) as f:
        template = yaml_parse(f.read())
    resources = template["Resources"]
    added = 0
    for name, resource in list(resources.items()):
        if resource.get("Type") != "AWS::ApiGatewayV2::Route":
            continue
        function = target_function(template, resource)
        if function not in resources:
            continue
        method, path = resource["Properties"]["RouteKey"].split(" ", 1)
        events = resources[function]["Properties"].setdefault("Events", {})
        events[f"Local{name}"] = {"Type": "HttpApi", "Properties": {"Path": path, "Method": method}}
        added += 1
    if added == 0:
        print("no route found to serve", file=sys.stderr)
        return 1
    with open(out, "w") as f:
        f.write(yaml_dump(template))
    print(f"{added} routes served by sam local start-api", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
