#!/usr/bin/env bash
# The API contract under a property-based tester (`make contract`; part of `make test`
# through scripts/stack-test.sh): schemathesis (pinned, from PyPI, installed into
# .tools/) runs docs/openapi.yaml against a running local stack — every check (set in
# tests/contract/schemathesis.toml), the examples, coverage, fuzzing and stateful
# phases, the stateful one walking the spec's links on real resources
# (tests/contract/hooks.py pays each intent it creates at the simulator) — with a
# fixed seed and example budget. Any failure fails it.
#
#   STACK_ENV=.local/stack-test.env scripts/api-contract-test.sh   (default: .local/stack.env)
#   CONTRACT_SEED, CONTRACT_MAX_EXAMPLES   another seed or budget (default 36, 50)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
scripts/install-tools.sh --schemathesis
env_file="${STACK_ENV:-$LOCAL_DIR/stack.env}"
[[ -f "$env_file" ]] || die "no running local stack (no ${env_file#"$ROOT"/}): run make up first"
set -a
# shellcheck disable=SC1090 # the stack's endpoints
source "$env_file"
set +a
# Outside the sources, so nothing schemathesis writes reaches the functions' watcher.
work="$LOCAL_DIR/contract"
mkdir -p "$work"
started=$SECONDS
(cd "$work" && SCHEMATHESIS_HOOKS=hooks PYTHONPATH="$ROOT/tests/contract" \
  "$ROOT/.tools/schemathesis-venv/bin/st" --config-file "$ROOT/tests/contract/schemathesis.toml" \
  run "$ROOT/docs/openapi.yaml" --url "$API_URL" -H "Authorization: Bearer $API_TOKEN" \
  --seed "${CONTRACT_SEED:-36}" --max-examples "${CONTRACT_MAX_EXAMPLES:-50}" \
  --generation-database none --request-timeout 30 --no-color) \
  || die "the API does not hold docs/openapi.yaml (schemathesis above; replay a case with its curl line)"
say "the API holds docs/openapi.yaml under schemathesis ($((SECONDS - started)) s)"
