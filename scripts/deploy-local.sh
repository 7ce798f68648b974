#!/usr/bin/env bash
# The deploy, tried for real and offline: `sam deploy` of the unmodified template to
# MiniStack (an AWS emulator, PyPI `ministack`, pinned in scripts/install-tools.sh),
# exactly as a user deploys to AWS (samconfig.toml's `local` environment; only the
# endpoint differs). The functions run as host processes of the emulator and reach
# the Fintoc simulator over TLS (the template takes only an https Fintoc URL).
#
#   scripts/deploy-local.sh up [STACK] [NAME=VALUE...]
#                                         deploy (default stack fintoc-payments-local),
#                                         with parameters over samconfig.toml's;
#                                         writes .local/deploy-local[-STACK].env
#   scripts/deploy-local.sh down          delete every stack it made, stop everything
#
# Ports: MiniStack 127.0.0.1:${DEPLOY_LOCAL_PORT:-4599}, the simulator
# ${DEPLOY_LOCAL_SIM_PORT:-8095} behind TLS on 8454 (the FintocBaseUrl of
# samconfig.toml's `local` environment).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

port="${DEPLOY_LOCAL_PORT:-4599}"
sim_port="${DEPLOY_LOCAL_SIM_PORT:-8095}"
sim_tls_port=8454
dir="$LOCAL_DIR/deploy-local"
endpoint="http://127.0.0.1:$port"
webhook_secret="whsec_deploy_local_5c0e9a7d31b84f26"
python="$ROOT/.tools/sam-venv/bin/python"

export AWS_ENDPOINT_URL="$endpoint" AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local \
  AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1 SAM_CLI_TELEMETRY=0

aws_py() { "$python" -c "import boto3, sys, json; $1" "${@:2}"; }

up() {
  local stack="${1:-fintoc-payments-local}" overrides=()
  # Parameters beyond the `local` environment's: sam deploy replaces the config's
  # overrides with the command line's, so both are given.
  if (($# > 1)); then
    overrides=(--parameter-overrides "$("$python" -c "import tomllib; print(tomllib.load(open('samconfig.toml', 'rb'))['local']['deploy']['parameters']['parameter_overrides'])") ${*:2}")
  fi
  scripts/install-tools.sh --sam --ministack
  mkdir -p "$dir"
  if ! pid_alive "$dir/ministack.pid"; then
    ! curl -s -o /dev/null --max-time 1 "$endpoint" || die "port $port is taken; set DEPLOY_LOCAL_PORT"
    # The simulator first: the TLS proxy's readiness check goes through it.
    cargo build --locked -q -p fintoc-sim
    start_simulator "$dir" 127.0.0.1 "$sim_port"
    ca="$(TLS_PROXY_DIR="$dir/tls" TLS_PROXY_DDB_PORT="$((sim_tls_port + 1))" TLS_PROXY_SIM_PORT="$sim_tls_port" \
      scripts/tls-proxy.sh start "$sim_port" "$sim_port" | tail -1)"
    [[ -f "$ca" ]] || die "the TLS proxy printed no CA file"
    # The emulator hands its environment to the functions it runs: its own endpoint
    # (so the AWS SDK calls it, never AWS) and the TLS proxy's CA. It runs a
    # provided.al2023 function in a container when a Docker engine answers (where
    # neither loopback endpoint is reachable): DOCKER_HOST points nowhere, so the
    # functions always run as host processes, whatever engine the machine has.
    # And nothing else of this shell's environment: the functions would read it as
    # their own (make test exports DYNAMODB_ENDPOINT for the integration tests,
    # which sent the deployed functions to a stopped DynamoDB Local: a 503).
    say "starting MiniStack on $endpoint"
    start_bg "$dir/ministack.pid" "$dir/ministack.log" \
      env -i PATH="$PATH" HOME="$HOME" LANG=C.UTF-8 TMPDIR="${TMPDIR:-/tmp}" \
      DOCKER_HOST="unix://$dir/no-docker.sock" \
      AWS_ENDPOINT_URL="$endpoint" AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local \
      AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1 \
      SSL_CERT_FILE="$ca" GATEWAY_PORT="$port" BIND_HOST=127.0.0.1 \
      MINISTACK_HOST=127.0.0.1 IOT_MTLS_ENABLED=0 \
      "$ROOT/.tools/ministack-venv/bin/ministack"
    wait_http "$endpoint/_ministack/health" 60 || die "MiniStack did not start (log: ${dir#"$ROOT"/}/ministack.log)"
  fi
  # sam deploy takes .aws-sam/build as `sam build` left it: x86_64 here (the
  # emulator runs the functions on this host); `make test` built it just before. A
  # build older than the template or the code is built again (sam deploy would
  # otherwise deploy the old routes and binaries), and so is a build that did not
  # finish (no built template: sam deploy would package the repository itself).
  local built=.aws-sam/build/template.yaml stale="no built template"
  [[ -f "$built" ]] && stale="$(find template.yaml Cargo.lock shared functions -newer "$built" -print -quit)"
  if [[ "$(elf_machine .aws-sam/build/CreateIntentFunction/bootstrap 2>/dev/null)" != 3e || -n "$stale" ]]; then
    say "sam build (release, Architecture=x86_64, via cargo-lambda + zig)"
    scripts/install-tools.sh --lambda
    PATH="$ROOT/.tools/lambda-venv/bin:$PATH" "$ROOT/.tools/sam-venv/bin/sam" build --beta-features \
      --region us-east-1 --parameter-overrides "Architecture=x86_64" >"$dir/build.log" 2>&1 \
      || { tail -30 "$dir/build.log" >&2; die "sam build failed"; }
  fi
  # What a user creates by hand before `sam deploy` (docs/deploy.md, step 1): the
  # secrets as SSM SecureString parameters; and the bucket sam deploy uploads to.
  aws_py "
boto3.client('s3').create_bucket(Bucket='sam-deploy-local')
ssm = boto3.client('ssm')
ssm.put_parameter(Name='/fintoc/test/secret-key', Value='sk_test_simulator', Type='SecureString', Overwrite=True)
ssm.put_parameter(Name='/fintoc/test/webhook-secret', Value=sys.argv[1], Type='SecureString', Overwrite=True)
" "$webhook_secret"
  say "sam deploy --config-env local --stack-name $stack (the unmodified template)"
  local started=$SECONDS
  "$ROOT/.tools/sam-venv/bin/sam" deploy --config-env local --stack-name "$stack" "${overrides[@]}" \
    >"$dir/deploy-$stack.log" 2>&1 \
    || { grep -v Uploading "$dir/deploy-$stack.log" | tail -30 >&2; die "sam deploy failed (log: ${dir#"$ROOT"/}/deploy-$stack.log)"; }
  echo "$stack" >>"$dir/stacks"
  local env_file="$LOCAL_DIR/deploy-local.env"
  [[ "$stack" == fintoc-payments-local ]] || env_file="$LOCAL_DIR/deploy-local-$stack.env"
  aws_py "
out = {o['OutputKey']: o['OutputValue'] for o in boto3.client('cloudformation').describe_stacks(StackName=sys.argv[1])['Stacks'][0]['Outputs']}
def reachable(url):  # https://{api}.execute-api.{region}.amazonaws.com/... -> the emulator's URL
    host, _, path = url.removeprefix('https://').partition('/')
    return sys.argv[2] + '/_aws/execute-api/' + host.split('.')[0] + ('/' + path if path else '')
lines = {'AWS_ENDPOINT_URL': sys.argv[2], 'STACK_NAME': sys.argv[1], 'API_URL': reachable(out['ApiUrl']),
         'WEBHOOK_URL': reachable(out['WebhookUrl']), 'FINTOC_SIM_URL': sys.argv[3], 'WEBHOOK_SECRET': sys.argv[4],
         'TABLE_NAME': out['TableName'], 'RECONCILE_FUNCTION': out['ReconcileFunctionName']}
if 'WebhookFunctionUrl' in out:  # https://{url id}.lambda-url.{region}.on.aws/... -> the emulator's URL
    host, _, path = out['WebhookFunctionUrl'].removeprefix('https://').partition('/')
    lines['WEBHOOK_FUNCTION_URL'] = sys.argv[2] + '/_aws/lambda-url/' + host.split('.')[0] + '/' + path
open(sys.argv[5], 'w').write(''.join(f'{k}={v}\n' for k, v in lines.items()))
" "$stack" "$endpoint" "http://127.0.0.1:$sim_port" "$webhook_secret" "$env_file"
  say "stack $stack deployed in $((SECONDS - started)) s; outputs in ${env_file#"$ROOT"/}:"
  cat "$env_file"
}

down() {
  if pid_alive "$dir/ministack.pid" && [[ -f "$dir/stacks" ]]; then
    while read -r stack; do
      "$ROOT/.tools/sam-venv/bin/sam" delete --stack-name "$stack" --region us-east-1 --no-prompts \
        >/dev/null 2>&1 && say "deleted stack $stack" || say "could not delete stack $stack"
    done < <(sort -u "$dir/stacks")
  fi
  rm -f "$dir/stacks" "$LOCAL_DIR"/deploy-local*.env
  stop_pidfile "$dir/ministack.pid" "MiniStack"
  TLS_PROXY_DIR="$dir/tls" scripts/tls-proxy.sh stop
  stop_pidfile "$dir/simulator.pid" "the simulator (deploy-local)"
}

case "${1:-}" in
  up) up "${@:2}" ;;
  down) down ;;
  *) die "usage: scripts/deploy-local.sh up [STACK] | down" ;;
esac
