#!/usr/bin/env bash
# Invokes every file in events/ against the three functions running under
# `cargo lambda watch`, with DynamoDB Local and the Fintoc simulator behind them, and
# checks the status each file is meant to produce (events/manifest.json).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
scripts/install-tools.sh --lambda
export PATH="$ROOT/.tools/lambda-venv/bin:$PATH"

ddb_port="${EVENTS_DDB_PORT:-8768}" sim_port="${EVENTS_SIM_PORT:-4011}" invoke_port="${EVENTS_INVOKE_PORT:-9011}"
secret="whsec_events_local_3d9f7a1c5e8b2046"
work="$(mktemp -d)"
sim_pid="$LOCAL_DIR/events-sim.pid" watch_pid="$LOCAL_DIR/events-watch.pid"
cleanup() {
  stop_pidfile "$watch_pid" "cargo lambda watch"
  stop_pidfile "$sim_pid" "fintoc-sim"
  DDB_NAME=events DDB_PORT="$ddb_port" scripts/dynamodb-local.sh stop
  rm -rf "$work"
}
trap cleanup EXIT

DDB_NAME=events DDB_PORT="$ddb_port" scripts/dynamodb-local.sh start
say "building the simulator and the functions"
cargo build --locked -p fintoc-sim -p local-table -p local-gateway -p create-intent -p webhook -p reconcile
table="events-$(date +%s)"
target/debug/local-table --endpoint "http://127.0.0.1:$ddb_port" --table "$table" --idempotency-table "$table-idempotency"

start_bg "$sim_pid" "$LOCAL_DIR/events-sim.log" \
  target/debug/fintoc-sim --port "$sim_port"
wait_http "http://127.0.0.1:$sim_port/_sim/health" 30 || die "fintoc-sim did not start"

write_functions_env "$work/env" "$table" "http://127.0.0.1:$ddb_port" "http://127.0.0.1:$sim_port" "$secret"
say "starting cargo lambda watch on 127.0.0.1:$invoke_port"
start_bg "$watch_pid" "$LOCAL_DIR/events-watch.log" \
  cargo lambda watch --ignore-changes --invoke-address 127.0.0.1 --invoke-port "$invoke_port" \
  --env-file "$work/env"
deadline=$((SECONDS + 120))
until (exec 3<>"/dev/tcp/127.0.0.1/$invoke_port") 2>/dev/null; do
  ((SECONDS < deadline)) || { cat "$LOCAL_DIR/events-watch.log" >&2; die "cargo lambda watch did not start"; }
  sleep 0.5
done

cp events/*.json "$work/"
target/debug/fintoc-sim resign-event --secret "$secret" $(ls "$work"/webhook-*.json | grep -v bad-signature) >/dev/null
target/debug/fintoc-sim resign-event --secret "whsec_not_the_real_secret" "$work/webhook-bad-signature.json" >/dev/null
say "invoking every events/ file"
python3 scripts/check_events.py "$work" "$invoke_port"
