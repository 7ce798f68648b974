#!/usr/bin/env bash
# The guided tour and the browser test of the checkout page, once, against
# `sam local start-api` (SAM's
# API Gateway emulation running the built functions in containers) instead of the
# local gateway's cargo-lambda functions; then everything it started is stopped.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
scripts/install-tools.sh --browser
trap 'scripts/sam-local.sh down' EXIT
started=$SECONDS
SAM_API_DETACH=1 SAM_LOCAL_KEEP_ENGINE=1 scripts/sam-local.sh api
export STACK_ENV="$LOCAL_DIR/sam-api/stack.env"
say "the guided tour against sam local start-api"
NO_COLOR=1 python3 scripts/demo.py
say "browser test against sam local start-api"
node --test tests/browser/
say "browser test under sam local start-api passed ($((SECONDS - started)) s with start-up)"
