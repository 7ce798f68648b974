#!/usr/bin/env bash
# The offline deploy, tested (part of `make test`): two stacks of the unmodified
# template deployed side by side to MiniStack by `sam deploy` (scripts/deploy-local.sh),
# the second with its webhook also on a Lambda Function URL (WebhookFunctionUrl=true),
# then scripts/deploy_local_test.py through their outputs only; everything is
# deleted and stopped afterwards, whatever happened.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
trap 'scripts/deploy-local.sh down' EXIT
started=$SECONDS
scripts/deploy-local.sh up fintoc-payments-local
scripts/deploy-local.sh up fintoc-payments-local-b WebhookFunctionUrl=true
"$ROOT/.tools/sam-venv/bin/python" scripts/deploy_local_test.py \
  .local/deploy-local.env .local/deploy-local-fintoc-payments-local-b.env
say "deploy-local: two stacks deployed and tested in $((SECONDS - started)) s"

say "'down' deletes the stacks and stops everything it started, by pid"
dir="$LOCAL_DIR/deploy-local"
pids="$(cat "$dir"/*.pid "$dir"/tls/*.pid 2>/dev/null)"
[[ -n "$pids" ]] || die "no pid files under ${dir#"$ROOT"/}"
scripts/deploy-local.sh down
trap - EXIT
for pid in $pids; do
  ! kill -0 "$pid" 2>/dev/null || die "process $pid is still running after 'down'"
done
for port in "${DEPLOY_LOCAL_PORT:-4599}" "${DEPLOY_LOCAL_SIM_PORT:-8095}" 8454 8455; do
  ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || die "port $port is still open after 'down'"
done
for env_file in .local/deploy-local*.env; do
  [[ ! -e "$env_file" ]] || die "$env_file is left behind"
done
say "deploy-local test passed: two stacks, their test, down"
