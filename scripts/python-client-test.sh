#!/usr/bin/env bash
# Fintoc's official Python client (PyPI `fintoc`, pinned in install-tools.sh) against
# the simulator: its payment intents and refunds managers, Link pagination, errors
# and webhook signature check (tests/python/fintoc_client_refunds.py). Starts and
# stops its own simulator.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

scripts/install-tools.sh --fintoc-python
cargo build --locked -q -p fintoc-sim
port="${PYTHON_CLIENT_SIM_PORT:-8098}"
run_dir="$ROOT/.local/python-client"
mkdir -p "$run_dir"
trap 'stop_pidfile "$run_dir/simulator.pid" simulator' EXIT
start_simulator "$run_dir" 127.0.0.1 "$port"
FINTOC_SIM_URL="http://127.0.0.1:$port" timeout 300 \
  "$ROOT/.tools/fintoc-python-venv/bin/python" tests/python/fintoc_client_refunds.py
