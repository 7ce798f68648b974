#!/usr/bin/env bash
# Invokes every file in events/ against the three functions running under
# `cargo lambda watch` — a local stack of its own (scripts/stack.sh, named "events",
# on its own ports, its reconciliation schedule off) — and checks the status each
# file is meant to produce (events/manifest.json); then the stack is brought down.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
export STACK_NAME=events STACK_DDB_PORT="${EVENTS_DDB_PORT:-8768}" STACK_SIM_PORT="${EVENTS_SIM_PORT:-4011}" \
  STACK_LAMBDA_PORT="${EVENTS_INVOKE_PORT:-9011}" STACK_GATEWAY_PORT="${EVENTS_GATEWAY_PORT:-3011}" \
  STACK_RECONCILE_EVERY_SECONDS=86400
work="$(mktemp -d)"
trap 'scripts/stack.sh down >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
scripts/stack.sh up >/dev/null
# `cargo lambda invoke`, installed by the stack's `up`.
export PATH="$ROOT/.tools/lambda-venv/bin:$PATH"
# shellcheck disable=SC1091
source "$LOCAL_DIR/stack-events.env"

cp events/*.json "$work/"
target/debug/fintoc-sim resign-event --secret "$WEBHOOK_SECRET" $(ls "$work"/webhook-*.json | grep -v bad-signature) >/dev/null
target/debug/fintoc-sim resign-event --secret "whsec_not_the_real_secret" "$work/webhook-bad-signature.json" >/dev/null
say "invoking every events/ file"
python3 scripts/check_events.py "$work" "${FUNCTIONS_URL##*:}"
