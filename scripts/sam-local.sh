#!/usr/bin/env bash
# `sam local` for real, offline:
#
#   scripts/sam-local.sh invoke   # make sam-local: every events/ file through `sam local invoke`
#   scripts/sam-local.sh api      # make sam-api: `sam local start-api` on loopback, the
#                                 # checkout page in front of it; Ctrl-C (or make down) stops it
#   scripts/sam-local.sh down     # stops what `api` left running, and the engine it started
#
# Both: a Docker engine (scripts/docker-engine.sh: yours if one answers, else Debian's
# docker.io with its state under .local/docker/), the offline base image
# (scripts/sam-image.sh), `sam build` for this host's architecture (x86_64; the deploy
# build stays arm64), and DynamoDB Local and the Fintoc simulator listening where the
# functions' containers reach them: the engine's bridge address, never beyond the
# machine. The template's SamLocal=true declares the variables `--env-vars` fills.
#
# SAM_LOCAL_SKIP_BUILD=1 reuses .aws-sam/build when it holds x86_64 binaries
# (`make test` builds them just before, in the template check).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
mode="${1:-}"
[[ "$mode" =~ ^(invoke|api|down)$ ]] || die "usage: $0 invoke|api|down"

run_dir="$LOCAL_DIR/sam-$mode"
sim_pid="$run_dir/simulator.pid" api_pid="$run_dir/start-api.pid" gateway_pid="$run_dir/gateway.pid"
lambda_pid="$run_dir/start-lambda.pid"
ddb_name="sam-$mode"
if [[ "$mode" == invoke ]]; then
  ddb_port="${SAM_DDB_PORT:-8774}" sim_port="${SAM_SIM_PORT:-4013}"
else
  ddb_port="${SAM_API_DDB_PORT:-8776}" sim_port="${SAM_API_SIM_PORT:-4014}"
  api_port="${SAM_API_PORT:-3014}" gateway_port="${SAM_API_GATEWAY_PORT:-3015}"
  lambda_port="${SAM_LAMBDA_PORT:-3016}"
fi
secret="whsec_samlocal_7c2e9a4f1b8d3065e4a1"
table="sam-$mode"
params="Architecture=x86_64 SamLocal=true"

stop_all() {
  for p in "$gateway_pid:local gateway" "$api_pid:sam local start-api" "$lambda_pid:sam local start-lambda" "$sim_pid:fintoc-sim"; do
    stop_pidfile "${p%%:*}" "${p#*:}"
  done
  DDB_NAME="$ddb_name" DDB_PORT="$ddb_port" scripts/dynamodb-local.sh stop
  if [[ "${SAM_LOCAL_KEEP_ENGINE:-0}" != 1 ]]; then scripts/docker-engine.sh stop; fi
  rm -f "$run_dir/stack.env"
}

if [[ "$mode" == down ]]; then
  mode=api run_dir="$LOCAL_DIR/sam-api"
  sim_pid="$run_dir/simulator.pid" api_pid="$run_dir/start-api.pid" gateway_pid="$run_dir/gateway.pid"
  lambda_pid="$run_dir/start-lambda.pid"
  ddb_name=sam-api ddb_port="${SAM_API_DDB_PORT:-8776}"
  stop_all
  exit 0
fi

mkdir -p "$run_dir"
started=$SECONDS
scripts/install-tools.sh --sam --lambda
export PATH="$ROOT/.tools/lambda-venv/bin:$ROOT/.tools/sam-venv/bin:$PATH"
export SAM_CLI_TELEMETRY=0 SAM_CLI_BETA_RUST_CARGO_LAMBDA=1
# The functions reach only DynamoDB Local; any credentials do.
export AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1
trap stop_all EXIT

if [[ "${SAM_LOCAL_SKIP_BUILD:-0}" == 1 ]] \
  && [[ "$(elf_machine .aws-sam/build/CreateIntentFunction/bootstrap)" == 3e ]] \
  && [[ "$(elf_machine .aws-sam/build/WebhookFunction/bootstrap)" == 3e ]] \
  && [[ "$(elf_machine .aws-sam/build/ReconcileFunction/bootstrap)" == 3e ]]; then
  say "reusing the x86_64 build in .aws-sam/build"
else
  say "sam build (release, Architecture=x86_64, via cargo-lambda + zig)"
  sam build --beta-features --region us-east-1 --parameter-overrides "Architecture=x86_64" >"$run_dir/build.log" 2>&1 \
    || { tail -30 "$run_dir/build.log" >&2; die "sam build failed (log: ${run_dir#"$ROOT"/}/build.log)"; }
fi

# The engine and the base image after the build (which needs neither), so the
# engine runs only while it is used.
DOCKER_HOST="$(scripts/docker-engine.sh start)"
export DOCKER_HOST
image="$(scripts/sam-image.sh)"
say "base image $image (tagged public.ecr.aws/lambda/provided:al2023-x86_64) on $DOCKER_HOST; ready after $((SECONDS - started)) s"

host_ip="$(bridge_address)"
[[ -n "$host_ip" ]] || die "could not read the bridge's address (docker network inspect bridge, ip addr show docker0)"
say "the functions' containers reach DynamoDB Local and the simulator at $host_ip"

cargo build --locked -q -p fintoc-sim -p local-table -p local-gateway
DDB_NAME="$ddb_name" DDB_PORT="$ddb_port" scripts/dynamodb-local.sh start
target/debug/local-table --endpoint "http://127.0.0.1:$ddb_port" --table "$table" --idempotency-table "$table-idempotency" >/dev/null
webhook_args=()
if [[ "$mode" == api ]]; then
  webhook_args=(--webhook-url "http://127.0.0.1:$gateway_port/webhooks/fintoc" --webhook-secret "$secret" --webhook-retry-base-ms 1000)
fi
start_bg "$sim_pid" "$run_dir/simulator.log" \
  target/debug/fintoc-sim --host "$host_ip" --port "$sim_port" "${webhook_args[@]}"
wait_http "http://$host_ip:$sim_port/_sim/health" 30 || die "fintoc-sim did not start"

checkout_base="http://127.0.0.1:${gateway_port:-3015}/"
python3 - "$run_dir/env.json" <<PY
import json, sys
common = {
    "TABLE_NAME": "$table",
    "DYNAMODB_ENDPOINT": "http://$host_ip:$ddb_port",
    "FINTOC_BASE_URL": "http://$host_ip:$sim_port",
    "FINTOC_SECRET_KEY": "sk_test_simulator",
    "DEPLOYMENT_TAG": "local",
    "FINTOC_MODE": "test",
}
env = {
    "CreateIntentFunction": {**common, "IDEMPOTENCY_TABLE_NAME": "$table-idempotency",
        "RECIPIENT_HOLDER_ID": "771433855", "RECIPIENT_ACCOUNT_NUMBER": "123456789",
        "RECIPIENT_ACCOUNT_TYPE": "checking_account", "RECIPIENT_INSTITUTION_ID": "cl_banco_de_chile",
        "CHECKOUT_SUCCESS_URL": "${checkout_base}?return=success",
        "CHECKOUT_CANCEL_URL": "${checkout_base}?return=cancel",
        "RECONCILE_FIRST_CHECK_SECONDS": "3"},
    "WebhookFunction": {**common, "WEBHOOK_SECRET": "$secret"},
    "ReconcileFunction": {**common},
}
json.dump(env, open(sys.argv[1], "w"), indent=2)
PY

if [[ "$mode" == invoke ]]; then
  work="$run_dir/events"
  rm -rf "$work" && mkdir -p "$work"
  cp events/*.json "$work/"
  say "every events/ file through sam local invoke"
  invoke_started=$SECONDS
  # Each webhook file is signed with the local secret just before it is sent (the
  # signature tolerance is 300 s; bad-signature with a wrong secret).
  EVENTS_WEBHOOK_SECRET="$secret" FINTOC_SIM="$ROOT/target/debug/fintoc-sim" \
    python3 scripts/check_events.py "$work" --sam "$run_dir/env.json" "$params"
  say "sam local: $(ls "$work"/*.json | grep -vc manifest) invocations in $((SECONDS - invoke_started)) s; $((SECONDS - started)) s in all"
  exit 0
fi

# api: sam local start-api serves the template's routes (from a local copy of the
# built template: see scripts/sam_local_template.py), the local gateway serves the
# checkout page and the merchant stand-in in front of it.
# Beside the built template: its CodeUri paths are relative to it.
local_template=".aws-sam/build/template.sam-local.yaml"
"$ROOT/.tools/sam-venv/bin/python" scripts/sam_local_template.py .aws-sam/build/template.yaml "$local_template"
say "sam local start-api on http://127.0.0.1:$api_port (warm containers)"
start_bg "$api_pid" "$run_dir/start-api.log" \
  sam local start-api -t "$local_template" --host 127.0.0.1 --port "$api_port" \
  --env-vars "$run_dir/env.json" --parameter-overrides "$params" --skip-pull-image \
  --warm-containers EAGER --region us-east-1
# The Lambda Invoke API for the reconciler (the tour runs it on demand), as
# `cargo lambda watch` offers it on the local stack.
start_bg "$lambda_pid" "$run_dir/start-lambda.log" \
  sam local start-lambda -t "$local_template" --host 127.0.0.1 --port "$lambda_port" \
  --env-vars "$run_dir/env.json" --parameter-overrides "$params" --skip-pull-image \
  --region us-east-1
deadline=$((SECONDS + 180))
until curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$api_port/payment-intents/pi_healthcheck"; do
  pid_alive "$api_pid" || { tail -30 "$run_dir/start-api.log" >&2; die "sam local start-api exited"; }
  ((SECONDS < deadline)) || { tail -30 "$run_dir/start-api.log" >&2; die "sam local start-api did not answer within 180 s"; }
  sleep 0.5
done
start_bg "$gateway_pid" "$run_dir/gateway.log" \
  target/debug/local-gateway --port "$gateway_port" --api-url "http://127.0.0.1:$api_port" \
  --checkout-dir "$ROOT/checkout" --widget-script "http://$host_ip:$sim_port/widget/v1/" \
  --public-key pk_test_simulator
wait_http "http://127.0.0.1:$gateway_port/_local/health" 30 || die "the local gateway did not start"
code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 120 "http://127.0.0.1:$gateway_port/payment-intents/pi_healthcheck")"
[[ "$code" == 404 ]] || die "create-intent under sam local answered $code to a health check (expected 404)"
cat >"$run_dir/stack.env" <<ENV
API_URL=http://127.0.0.1:$gateway_port
WEBHOOK_URL=http://127.0.0.1:$gateway_port/webhooks/fintoc
CHECKOUT_URL=http://127.0.0.1:$gateway_port/
FINTOC_SIM_URL=http://$host_ip:$sim_port
SAM_API_URL=http://127.0.0.1:$api_port
FUNCTIONS_URL=http://127.0.0.1:$lambda_port
RECONCILE_FUNCTION=ReconcileFunction
DYNAMODB_ENDPOINT=http://127.0.0.1:$ddb_port
TABLE_NAME=$table
WEBHOOK_SECRET=$secret
FINTOC_SECRET_KEY=sk_test_simulator
ENV
say "SAM's API Gateway emulation is up after $((SECONDS - started)) s; endpoints in ${run_dir#"$ROOT"/}/stack.env:"
cat "$run_dir/stack.env"
if [[ "${SAM_API_DETACH:-0}" == 1 ]]; then
  trap - EXIT
  say "left running; stop it with: scripts/sam-local.sh down (make down does too)"
  exit 0
fi
say "checkout page: http://127.0.0.1:$gateway_port/ — Ctrl-C stops everything"
while pid_alive "$api_pid"; do sleep 1; done
