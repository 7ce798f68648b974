#!/usr/bin/env bash
# The fast tier (`make check`): formatting, lints, unit tests and the store contract
# on the in-memory store, the simulator's own tests. Needs Rust alone: no JVM, npm,
# apt or DynamoDB Local. `make test` stays the full suite and what CI runs.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
start=$SECONDS

say "cargo fmt --check"
cargo fmt --all -- --check
say "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
say "cargo test (unit, in-memory store contract, simulator; no DynamoDB Local)"
cargo test --workspace --exclude integration-tests --locked
say "make check passed in $((SECONDS - start)) s"
