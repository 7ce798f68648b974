# Shared helpers for the project's scripts. Source it; do not run it.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOCAL_DIR="$ROOT/.local"
mkdir -p "$LOCAL_DIR"

say() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31merror:\033[0m %s\n' "$*" >&2; exit 1; }

# pid_alive PIDFILE: true when the file names a running process.
pid_alive() {
  [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null
}

# wait_http URL SECONDS: waits until something answers HTTP at URL.
wait_http() {
  local url="$1" deadline=$((SECONDS + $2))
  until curl -s -o /dev/null --max-time 2 "$url"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
}

# write_functions_env FILE TABLE DYNAMODB_URL FINTOC_URL WEBHOOK_SECRET: the env file
# the functions run with locally (`cargo lambda watch --env-file`): configuration
# from the environment, as in Lambda, pointed at the local parts. Idempotency
# records live in TABLE-idempotency, as in the template (a table with no stream).
write_functions_env() {
  cat >"$1" <<ENV
TABLE_NAME=$2
IDEMPOTENCY_TABLE_NAME=$2-idempotency
DYNAMODB_ENDPOINT=$3
FINTOC_BASE_URL=$4
FINTOC_SECRET_KEY=sk_test_simulator
WEBHOOK_SECRET=$5
DEPLOYMENT_TAG=local
RECONCILE_FIRST_CHECK_SECONDS=${RECONCILE_FIRST_CHECK_SECONDS:-3}
RECIPIENT_HOLDER_ID=771433855
RECIPIENT_ACCOUNT_NUMBER=123456789
RECIPIENT_ACCOUNT_TYPE=checking_account
RECIPIENT_INSTITUTION_ID=cl_banco_de_chile
CHECKOUT_SUCCESS_URL="${CHECKOUT_SUCCESS_URL:-http://127.0.0.1/checkout/?return=success}"
CHECKOUT_CANCEL_URL="${CHECKOUT_CANCEL_URL:-http://127.0.0.1/checkout/?return=cancel}"
AWS_ACCESS_KEY_ID=local
AWS_SECRET_ACCESS_KEY=local
AWS_REGION=us-east-1
ENV
}

# functions_env_json ENV_FILE JSON_FILE: the env file `write_functions_env` wrote,
# as the `--env-vars` file of `sam local` (one `Parameters` section for every
# function: SAM sets the variables a function declares, SamLocal=true declaring the
# local ones, and ignores the rest), so both ways of running the functions read one
# configuration.
functions_env_json() {
  python3 - "$1" "$2" <<'PY'
import json, sys
env = {}
for line in open(sys.argv[1]):
    key, sep, value = line.rstrip("\n").partition("=")
    if sep:
        env[key] = value.strip('"')
json.dump({"Parameters": env}, open(sys.argv[2], "w"), indent=2)
PY
}

# sam_prepare LOG_DIR: what `sam local` needs, offline — SAM CLI and cargo-lambda,
# `sam build` for x86_64 (skipped when SAM_LOCAL_SKIP_BUILD=1 and .aws-sam/build
# holds x86_64 binaries), a Docker engine (scripts/docker-engine.sh; exports
# DOCKER_HOST) and the base image (scripts/sam-image.sh); sets SAM_HOST_IP, the
# bridge address where the functions' containers reach the host.
sam_prepare() {
  local log_dir="$1" started=$SECONDS
  scripts/install-tools.sh --sam --lambda
  export PATH="$ROOT/.tools/lambda-venv/bin:$ROOT/.tools/sam-venv/bin:$PATH"
  export SAM_CLI_TELEMETRY=0 SAM_CLI_BETA_RUST_CARGO_LAMBDA=1
  # The functions reach only DynamoDB Local; any credentials do.
  export AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1
  if [[ "${SAM_LOCAL_SKIP_BUILD:-0}" == 1 ]] \
    && [[ "$(elf_machine .aws-sam/build/CreateIntentFunction/bootstrap)" == 3e ]] \
    && [[ "$(elf_machine .aws-sam/build/WebhookFunction/bootstrap)" == 3e ]] \
    && [[ "$(elf_machine .aws-sam/build/ReconcileFunction/bootstrap)" == 3e ]]; then
    say "reusing the x86_64 build in .aws-sam/build"
  else
    say "sam build (release, Architecture=x86_64, via cargo-lambda + zig)"
    sam build --beta-features --region us-east-1 --parameter-overrides "Architecture=x86_64" >"$log_dir/build.log" 2>&1 \
      || { tail -30 "$log_dir/build.log" >&2; die "sam build failed (log: ${log_dir#"$ROOT"/}/build.log)"; }
  fi
  # The engine and the base image after the build (which needs neither), so the
  # engine runs only while it is used.
  DOCKER_HOST="$(scripts/docker-engine.sh start)"
  export DOCKER_HOST
  local image
  image="$(scripts/sam-image.sh)"
  say "base image $image (tagged public.ecr.aws/lambda/provided:al2023-x86_64) on $DOCKER_HOST; ready after $((SECONDS - started)) s"
  SAM_HOST_IP="$(bridge_address)"
  [[ -n "$SAM_HOST_IP" ]] || die "could not read the bridge's address (docker network inspect bridge, ip addr show docker0)"
  say "the functions' containers reach DynamoDB Local and the simulator at $SAM_HOST_IP"
}

# stop_pidfile PIDFILE NAME: stops the process (and its group) named by PIDFILE.
stop_pidfile() {
  local file="$1" name="$2"
  if pid_alive "$file"; then
    local pid; pid="$(cat "$file")"
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    say "stopped $name (pid $pid)"
  fi
  rm -f "$file"
}

# bridge_address: where the Docker engine's containers reach the host — the address
# of its default bridge. An engine that found the bridge interface already made (by
# another engine on the machine) reports no gateway for it; the interface's own
# address is then the one. Prints nothing when neither says. (Tested by
# scripts/lib-test.sh with stand-ins for docker and ip.)
bridge_address() {
  local address bridge
  address="$(docker network inspect bridge --format '{{range .IPAM.Config}}{{.Gateway}}{{end}}' 2>/dev/null || true)"
  if [[ -z "$address" ]]; then
    bridge="$(docker network inspect bridge --format '{{index .Options "com.docker.network.bridge.name"}}' 2>/dev/null || true)"
    address="$(ip -4 -o addr show dev "${bridge:-docker0}" 2>/dev/null | awk '{split($4, a, "/"); print a[1]; exit}')"
  fi
  printf '%s' "$address"
}

# elf_machine FILE: the ELF machine byte of a binary (3e: x86_64, b7: aarch64).
elf_machine() { od -An -tx1 -j18 -N1 "$1" 2>/dev/null | tr -d ' '; }

# as_root COMMAND...: runs COMMAND as root (directly when root, else passwordless sudo);
# fails when neither is possible.
as_root() {
  if [[ "$(id -u)" == 0 ]]; then "$@"
  elif sudo -n true 2>/dev/null; then sudo "$@"
  else return 1
  fi
}

# start_bg [--as-root] PIDFILE LOG COMMAND...: the one way a script starts a
# background process — detached in its own session and process group (so
# `stop_pidfile` stops it and its children), stdin closed, stdout and stderr to LOG,
# its pid in PIDFILE once it runs (waited for). Readiness is the caller's: `wait_http`
# or its own probe. Stop it with `stop_pidfile PIDFILE NAME`.
start_bg() {
  local root=()
  if [[ "$1" == --as-root ]]; then root=(as_root); shift; fi
  local pidfile="$1" log="$2"; shift 2
  rm -f "$pidfile"
  "${root[@]}" setsid -f sh -c 'echo $$ >"$1"; shift; exec "$@"' sh "$pidfile" "$@" </dev/null >"$log" 2>&1
  for _ in $(seq 50); do [[ -s "$pidfile" ]] && return 0; sleep 0.1; done
  die "$(basename "$1") did not start (no pid in $pidfile; log: $log)"
}

# start_simulator RUN_DIR HOST PORT [ARGS...]: the Fintoc simulator
# (target/debug/fintoc-sim, built by the caller) on HOST:PORT with ARGS, its pid and
# log in RUN_DIR (simulator.pid, simulator.log), waited for until healthy.
start_simulator() {
  local dir="$1" host="$2" port="$3"; shift 3
  start_bg "$dir/simulator.pid" "$dir/simulator.log" \
    "$ROOT/target/debug/fintoc-sim" --host "$host" --port "$port" "$@"
  wait_http "http://$host:$port/_sim/health" 30 \
    || die "the simulator did not start (log: $dir/simulator.log)"
}

# start_tables NAME PORT TABLE: DynamoDB Local NAME on PORT (scripts/dynamodb-local.sh)
# with TABLE and TABLE-idempotency created (target/debug/local-table, built by the
# caller). Stop it with `DDB_NAME=NAME DDB_PORT=PORT scripts/dynamodb-local.sh stop`.
start_tables() {
  DDB_NAME="$1" DDB_PORT="$2" "$ROOT/scripts/dynamodb-local.sh" start || die "DynamoDB Local did not start"
  "$ROOT/target/debug/local-table" --endpoint "http://127.0.0.1:$2" --table "$3" \
    --idempotency-table "$3-idempotency" >/dev/null || die "could not create the tables in DynamoDB Local ($1)"
}
