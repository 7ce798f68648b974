#!/usr/bin/env bash
# The offline deploy, tested (part of `make test`): two stacks of the unmodified
# template deployed side by side to MiniStack by `sam deploy` (scripts/deploy-local.sh),
# then scripts/deploy_local_test.py through their outputs only; everything is
# deleted and stopped afterwards, whatever happened.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
trap 'scripts/deploy-local.sh down' EXIT
started=$SECONDS
scripts/deploy-local.sh up fintoc-payments-local
scripts/deploy-local.sh up fintoc-payments-local-b
"$ROOT/.tools/sam-venv/bin/python" scripts/deploy_local_test.py \
  .local/deploy-local.env .local/deploy-local-fintoc-payments-local-b.env
say "deploy-local: two stacks deployed and tested in $((SECONDS - started)) s"
