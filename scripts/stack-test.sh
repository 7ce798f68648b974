#!/usr/bin/env bash
# Tests on the whole local stack: brings up a stack named "test" (its own ports, so a
# development stack can keep running), runs the guided tour (scripts/demo.py, which
# checks every step) and the browser test of the checkout page (headless Debian
# Chromium via playwright-core), then brings the stack down.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
scripts/install-tools.sh --browser
export STACK_NAME=test
export STACK_ENV="$LOCAL_DIR/stack-test.env"
trap 'scripts/stack.sh down' EXIT
scripts/stack.sh up
say "the guided tour (make demo) on the test stack"
NO_COLOR=1 python3 scripts/demo.py
say "browser test of the checkout page"
node --test tests/browser/
