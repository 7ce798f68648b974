#!/usr/bin/env bash
# Tests on the whole local stack: brings up a stack named "test" (its own ports, so a
# development stack can keep running), checks that a second `up` only reports the
# running stack, runs the guided tour (scripts/demo.py, which checks every step) and
# the merchant events it produced (scripts/check_merchant_events.py: signatures
# verified with Standard Webhooks' Python library, bodies with their JSON Schemas),
# the browser test of the checkout page (headless Debian Chromium via
# playwright-core), a burst of deliveries while DynamoDB stalls
# (scripts/chaos_burst.py), the API contract under schemathesis
# (scripts/api-contract-test.sh), an order held in review resolved through the
# operations API (scripts/check_operations.py), the invariant audit of the table all
# of that left (payments-ops check-invariants: no violation), then brings the stack down and checks that every process it
# started is gone and every port is free.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
scripts/install-tools.sh --browser --events-check
export STACK_NAME=test
export STACK_ENV="$LOCAL_DIR/stack-test.env"
trap 'scripts/stack.sh down >/dev/null 2>&1 || true' EXIT
scripts/stack.sh up

say "a second 'up' while the stack runs"
again="$(scripts/stack.sh up 2>&1)" || die "a second 'up' failed: $again"
grep -q "already running" <<<"$again" || die "a second 'up' did not report the running stack: $again"

say "the guided tour (make demo) on the test stack"
NO_COLOR=1 python3 scripts/demo.py
say "merchant events: every delivery verified with standardwebhooks (Python) and its JSON Schema"
.tools/events-venv/bin/python scripts/check_merchant_events.py "$STACK_ENV" 1001
say "browser test of the checkout page"
node --test tests/browser/
say "a burst of 16 deliveries while DynamoDB stalls 12 s: each answered within 6 s, nothing lost"
python3 scripts/chaos_burst.py "$STACK_ENV" "$LOCAL_DIR/dynamodb-stack-test.pid" \
  --functions-pid-file "$LOCAL_DIR/stack-test/functions.pid"
say "the API contract: docs/openapi.yaml under schemathesis, every check, stateful phase"
scripts/api-contract-test.sh
say "the operations API through payments-ops: a held order resolved, with its audit entry"
cargo build -q --locked -p payments-ops
python3 scripts/check_operations.py "$STACK_ENV" target/debug/payments-ops
say "the invariant audit over the test stack's table (tour, browser, burst, contract, resolution): no violation"
cargo run -q --locked -p payments-ops -- check-invariants --env-file "$STACK_ENV"

say "'down' stops everything and frees the ports"
pids="$(cat "$LOCAL_DIR"/stack-test/*.pid "$LOCAL_DIR"/dynamodb-stack-test.pid)"
ports="$(sed -n 's#^\(API_URL\|FINTOC_SIM_URL\|FUNCTIONS_URL\|DYNAMODB_ENDPOINT\)=http://127.0.0.1:##p' "$STACK_ENV")"
scripts/stack.sh down
for pid in $pids; do
  ! kill -0 "$pid" 2>/dev/null || die "process $pid is still running after 'down'"
done
for port in $ports; do
  ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || die "port $port is still open after 'down'"
done
[[ ! -f "$STACK_ENV" ]] || die "$STACK_ENV is left behind"
say "stack test passed: up, up again, tour, browser, down"
