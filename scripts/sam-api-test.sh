#!/usr/bin/env bash
# The guided tour and the browser test of the checkout page, once, against the local
# stack with its functions in SAM's containers (`scripts/stack.sh up --sam`: SAM's API
# Gateway emulation, `sam local start-api`, behind the local gateway) instead of
# under cargo lambda watch; then everything it started is stopped.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
scripts/install-tools.sh --browser
trap 'scripts/stack.sh down --sam' EXIT
started=$SECONDS
SAM_LOCAL_KEEP_ENGINE=1 scripts/stack.sh up --sam
export STACK_ENV="$LOCAL_DIR/stack-sam-api.env"
say "the guided tour against sam local start-api"
NO_COLOR=1 python3 scripts/demo.py
say "browser test against sam local start-api"
node --test tests/browser/checkout.test.mjs
say "browser test under sam local start-api passed ($((SECONDS - started)) s with start-up)"
