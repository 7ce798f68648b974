#!/usr/bin/env bash
# `make reconcile`: one reconciliation run on the local stack, now (the stack also
# runs one every 30 s, as the deployed schedule does every 5 minutes). Prints what
# the run found: outcomes no webhook had delivered, moves, stuck intents, failures.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
env_file="${STACK_ENV:-$LOCAL_DIR/stack.env}"
[[ -f "$env_file" ]] || die "no running stack (${env_file#"$ROOT"/} is missing): run make up first"
functions_url="$(sed -n 's/^FUNCTIONS_URL=//p' "$env_file")"
summary="$(curl -sS --fail-with-body --max-time 300 -X POST \
  -d '{"source": "make reconcile"}' \
  "$functions_url/2015-03-31/functions/reconcile/invocations")" \
  || die "the reconcile function did not answer: $summary"
python3 - "$summary" <<'PY'
import json, sys
s = json.loads(sys.argv[1])
print(f"checked {s['checked']} intent(s) with Fintoc")
print(f"  outcomes recorded that no webhook had delivered: {s['outcomes_found']}")
print(f"  moves recorded (e.g. created -> pending):        {s['moves_found']}")
print(f"  rescheduled (still open at Fintoc):               {s['rescheduled']}")
print(f"  anomalies for a human:                            {s['anomalies'] + s['payment_anomalies'] + s['not_found']}")
print(f"  stuck (still open 12 days after creation):        {s['stuck']}")
print(f"  failed checks (retried next run):                 {s['failed']}")
if s["left_for_next_run"]:
    print("  more intents are due: the next run continues")
PY
