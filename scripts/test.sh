#!/usr/bin/env bash
# The project's test command (`make test`): formatting, lints, unit tests, the
# integration tests against DynamoDB Local and the Fintoc simulator, every events/
# file under `cargo lambda watch`, a smoke run of the benchmarks, the whole local
# stack (the guided tour and the checkout page in headless Chromium), the SAM
# template checks and build, every events/ file through `sam local invoke`, and the
# browser test once against `sam local start-api`, and the deploy tried offline (two
# stacks of the template by `sam deploy` to MiniStack, tested through their
# outputs). Starts and
# stops what it needs by itself; installs its tools into the project directory.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

# A one-shot build: incremental state would only take disk (CI runs on a shared one).
export CARGO_INCREMENTAL=0

start=$SECONDS
export DDB_NAME=test DDB_PORT="${DDB_TEST_PORT:-8766}"
# The Docker engine the sam local steps may start is ours to stop (never the user's).
trap 'scripts/dynamodb-local.sh stop; scripts/docker-engine.sh stop' EXIT
scripts/dynamodb-local.sh start
export DYNAMODB_ENDPOINT="http://127.0.0.1:$DDB_PORT"

say "cargo fmt --check"
cargo fmt --all -- --check
say "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
say "cargo test (unit + integration, DynamoDB Local at $DYNAMODB_ENDPOINT)"
cargo test --workspace --locked
scripts/dynamodb-local.sh stop
say "benchmark smoke: every harness on tiny runs, invariants only (no timing)"
BENCH_SMOKE=1 scripts/bench.sh
say "the local stack: guided tour + browser test of the checkout page"
scripts/stack-test.sh
say "events/ under cargo lambda watch"
scripts/events-test.sh
say "scripts/lib.sh helpers (the bridge address, with stand-ins for docker and ip)"
scripts/lib-test.sh
say "Fintoc's official Python client against the simulator (payment intents, refunds, pagination, webhook signatures)"
scripts/python-client-test.sh
say "docs: links resolve; routes, error codes and environment variables are documented; docs/openapi.yaml is valid OpenAPI"
python3 scripts/check_docs.py
scripts/install-tools.sh --openapi
"$ROOT/.tools/openapi-venv/bin/openapi-spec-validator" docs/openapi.yaml
say "template: sam validate --lint, cfn-lint, table check, sam build (x86_64: the build sam local and the offline deploy reuse)"
SAM_BUILD_ARCH=x86_64 scripts/check-template.sh
# sam local runs x86_64 containers: reuse the build above when it is x86_64.
say "sam local invoke: every events/ file in the functions' containers"
SAM_LOCAL_SKIP_BUILD=1 SAM_LOCAL_KEEP_ENGINE=1 scripts/sam-local.sh invoke
say "sam local start-api: the browser test once against SAM's API Gateway emulation"
SAM_LOCAL_SKIP_BUILD=1 scripts/sam-api-test.sh
say "the deploy, offline: sam deploy to MiniStack, two stacks side by side, tested through their outputs"
scripts/deploy-local-test.sh
say "make test passed in $((SECONDS - start)) s"
