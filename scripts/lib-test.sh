#!/usr/bin/env bash
# Tests of scripts/lib.sh's helpers that need no real engine: `bridge_address` with
# stand-ins for `docker` and `ip` on PATH — an engine that reports its bridge's
# gateway, one that reports none because another engine made `docker0` first (the
# interface's address is then read), and neither; and `functions_env_json`, the
# functions' env file as `sam local`'s --env-vars.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fakes="$(mktemp -d)"
trap 'rm -rf "$fakes"' EXIT
fake() { printf '#!/usr/bin/env bash\n%s\n' "$2" >"$fakes/$1"; chmod +x "$fakes/$1"; }
check() {
  local got
  got="$(PATH="$fakes:$PATH" bridge_address)"
  [[ "$got" == "$2" ]] || die "bridge_address, $1: got '$got', expected '$2'"
  say "bridge_address, $1: $got"
}

fake docker 'case "$*" in *Gateway*) echo 172.17.0.1;; *) echo docker0;; esac'
fake ip 'echo "3: docker0    inet 10.9.9.9/16 brd 10.9.255.255 scope global docker0"'
check "the engine reports its gateway" 172.17.0.1

fake docker 'case "$*" in *Gateway*) echo;; *) echo docker0;; esac'
fake ip '[[ "$*" == *"dev docker0"* ]] && echo "3: docker0    inet 172.18.0.1/16 brd 172.18.255.255 scope global docker0"'
check "docker0 made by another engine: no gateway reported" 172.18.0.1

fake docker 'exit 1'
fake ip 'exit 1'
check "no engine, no interface" ""

write_functions_env "$fakes/functions.env" t1 http://10.0.0.1:8000 http://10.0.0.1:4010 whsec_x
functions_env_json "$fakes/functions.env" "$fakes/env.json"
python3 - "$fakes/functions.env" "$fakes/env.json" <<'PY' || die "functions_env_json: the JSON does not hold the env file"
import json, sys
lines = [l.rstrip("\n") for l in open(sys.argv[1]) if "=" in l]
params = json.load(open(sys.argv[2]))["Parameters"]
assert len(params) == len(lines), (params, lines)
assert params["TABLE_NAME"] == "t1" and params["IDEMPOTENCY_TABLE_NAME"] == "t1-idempotency"
assert params["DYNAMODB_ENDPOINT"] == "http://10.0.0.1:8000" and params["WEBHOOK_SECRET"] == "whsec_x"
# Quoted values (the checkout URLs) lose their quotes.
assert params["CHECKOUT_SUCCESS_URL"] == "http://127.0.0.1/checkout/?return=success", params
PY
say "functions_env_json: every variable of the env file, unquoted"
