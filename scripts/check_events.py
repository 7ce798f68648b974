"""Invokes every file of events/manifest.json and checks what each must produce:
with `cargo lambda invoke` against the functions running under `cargo lambda watch`,
or with `sam local invoke` (each invocation in a container of the built template).

Usage: python3 check_events.py EVENTS_DIR INVOKE_PORT
       python3 check_events.py EVENTS_DIR --sam ENV_JSON PARAMETER_OVERRIDES
"""
import json
import os
import subprocess
import sys


def invoke(function: str, path: str, port: str) -> dict:
    out = subprocess.run(
        ["cargo", "lambda", "invoke", function, "--data-file", path,
         "--invoke-address", "127.0.0.1", "--invoke-port", port, "--output-format", "json"],
        capture_output=True, text=True, timeout=600,
    )
    if out.returncode != 0:
        raise RuntimeError(f"cargo lambda invoke {function} {path} failed:\n{out.stderr}")
    return json.loads(out.stdout)


LOGICAL_IDS = {
    "create-intent": "CreateIntentFunction",
    "webhook": "WebhookFunction",
    "reconcile": "ReconcileFunction",
    "dispatch-events": "DispatchEventsFunction",
    "operations": "OperationsFunction",
}


def resign(path: str) -> None:
    """Signs a webhook file again just before it is sent (`sam local invoke` takes
    seconds per file; the signature tolerance is 300 s)."""
    secret = os.environ["EVENTS_WEBHOOK_SECRET"]
    if "bad-signature" in path:
        secret = "whsec_not_the_real_secret"
    subprocess.run([os.environ.get("FINTOC_SIM", "target/debug/fintoc-sim"), "resign-event",
                    "--secret", secret, path], check=True, capture_output=True)


def sam_invoke(function: str, path: str, env_json: str, params: str) -> dict:
    if function == "webhook" and "EVENTS_WEBHOOK_SECRET" in os.environ:
        resign(path)
    out = subprocess.run(
        ["sam", "local", "invoke", LOGICAL_IDS[function], "--event", path,
         "--env-vars", env_json, "--parameter-overrides", params,
         "--skip-pull-image", "--region", "us-east-1"],
        capture_output=True, text=True, timeout=600,
    )
    lines = [l for l in out.stdout.splitlines() if l.strip()]
    if out.returncode != 0 or not lines:
        raise RuntimeError(f"sam local invoke {function} {path} failed:\n{out.stderr[-3000:]}")
    return json.loads(lines[-1])


def main() -> int:
    events_dir = sys.argv[1]
    if sys.argv[2] == "--sam":
        env_json, params = sys.argv[3], sys.argv[4]
        invoke_fn = lambda function, path: sam_invoke(function, path, env_json, params)  # noqa: E731
    else:
        port = sys.argv[2]
        invoke_fn = lambda function, path: invoke(function, path, port)  # noqa: E731
    manifest = json.load(open(f"{events_dir}/manifest.json"))
    failures = 0
    for case in manifest["cases"]:
        response = invoke_fn(case["function"], f"{events_dir}/{case['file']}")
        if "answer" in case:
            def at(value, path):
                for key in path.split("."):
                    value = (value or {}).get(key)
                return value
            problems = [
                f"{path} {at(response, path)!r}, expected {value!r}"
                for path, value in case["answer"].items()
                if at(response, path) != value
            ]
            verdict = "ok" if not problems else "FAILED: " + "; ".join(problems)
            print(f"{case['function']:>13} {case['file']:<38} {verdict}")
            failures += bool(problems)
            continue
        if "summary" in case:
            problems = [
                f"{key} {response.get(key)!r}, expected {value!r}"
                for key, value in case["summary"].items()
                if response.get(key) != value
            ]
            if "checked" not in response:
                problems.append(f"not a run summary: {response!r}")
            verdict = "ok" if not problems else "FAILED: " + "; ".join(problems)
            print(f"{case['function']:>13} {case['file']:<38} {verdict}")
            failures += bool(problems)
            continue
        status = response.get("statusCode")
        body = json.loads(response.get("body") or "null")
        problems = []
        if status != case["status"]:
            problems.append(f"status {status}, expected {case['status']}")
        if "code" in case and (body or {}).get("error", {}).get("code") != case["code"]:
            problems.append(f"error code {(body or {}).get('error', {}).get('code')!r}, expected {case['code']!r}")
        if "outcome" in case and (body or {}).get("outcome") != case["outcome"]:
            problems.append(f"outcome {(body or {}).get('outcome')!r}, expected {case['outcome']!r}")
        if "json_status" in case and (body or {}).get("status") != case["json_status"]:
            problems.append(f"intent status {(body or {}).get('status')!r}, expected {case['json_status']!r}")
        verdict = "ok" if not problems else "FAILED: " + "; ".join(problems)
        print(f"{case['function']:>13} {case['file']:<38} {status} {verdict}")
        failures += bool(problems)
    total = len(manifest["cases"])
    print(f"{total - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
