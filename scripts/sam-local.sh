#!/usr/bin/env bash
# `sam local invoke` for real, offline (make sam-local): every events/ file through
# `sam local invoke` in the functions' containers, against DynamoDB Local and the
# Fintoc simulator, each checked against events/manifest.json; everything it started
# is stopped at the end. (`make sam-api`, SAM's API Gateway emulation with the
# checkout page in front, is the local stack's: scripts/stack.sh up --sam.)
#
# What `sam local` needs (`sam_prepare` in scripts/lib.sh): a Docker engine
# (scripts/docker-engine.sh: yours if one answers, else Debian's docker.io with its
# state under .local/docker/), the offline base image (scripts/sam-image.sh), `sam
# build` for this host's architecture (x86_64; the deploy build stays arm64), and
# DynamoDB Local and the simulator listening where the functions' containers reach
# them: the engine's bridge address, never beyond the machine. The template's
# SamLocal=true declares the variables `--env-vars` fills.
#
# SAM_LOCAL_SKIP_BUILD=1 reuses .aws-sam/build when it holds x86_64 binaries
# (`make test` builds them just before, in the template check).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
[[ "${1:-invoke}" == invoke ]] || die "usage: $0 [invoke]  (sam local start-api: scripts/stack.sh up --sam)"

run_dir="$LOCAL_DIR/sam-invoke"
ddb_port="${SAM_DDB_PORT:-8774}" sim_port="${SAM_SIM_PORT:-4013}"
secret="whsec_samlocal_7c2e9a4f1b8d3065e4a1"
table="sam-invoke"

stop_all() {
  stop_pidfile "$run_dir/simulator.pid" "fintoc-sim"
  DDB_NAME=sam-invoke DDB_PORT="$ddb_port" scripts/dynamodb-local.sh stop
  if [[ "${SAM_LOCAL_KEEP_ENGINE:-0}" != 1 ]]; then scripts/docker-engine.sh stop; fi
}

mkdir -p "$run_dir"
started=$SECONDS
trap stop_all EXIT
sam_prepare "$run_dir"
host_ip="$SAM_HOST_IP"

cargo build --locked -q -p fintoc-sim -p local-table
start_tables sam-invoke "$ddb_port" "$table"
start_simulator "$run_dir" "$host_ip" "$sim_port"

write_functions_env "$run_dir/functions.env" "$table" "http://$host_ip:$ddb_port" "http://$host_ip:$sim_port" "$secret"
functions_env_json "$run_dir/functions.env" "$run_dir/env.json"

work="$run_dir/events"
rm -rf "$work" && mkdir -p "$work"
cp events/*.json "$work/"
say "every events/ file through sam local invoke"
invoke_started=$SECONDS
# Each webhook file is signed with the local secret just before it is sent (the
# signature tolerance is 300 s; bad-signature with a wrong secret).
EVENTS_WEBHOOK_SECRET="$secret" FINTOC_SIM="$ROOT/target/debug/fintoc-sim" \
  python3 scripts/check_events.py "$work" --sam "$run_dir/env.json" "Architecture=x86_64 SamLocal=true"
say "sam local: $(ls "$work"/*.json | grep -vc manifest) invocations in $((SECONDS - invoke_started)) s; $((SECONDS - started)) s in all"
