"""Invokes every file of events/manifest.json with `cargo lambda invoke` against the
functions running under `cargo lambda watch`, and checks what each must produce.

Usage: python3 check_events.py EVENTS_DIR INVOKE_PORT
"""
import json
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


def main() -> int:
    events_dir, port = sys.argv[1], sys.argv[2]
    manifest = json.load(open(f"{events_dir}/manifest.json"))
    failures = 0
    for case in manifest["cases"]:
        response = invoke(case["function"], f"{events_dir}/{case['file']}", port)
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
