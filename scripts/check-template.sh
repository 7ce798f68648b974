#!/usr/bin/env bash
# Checks template.yaml: `sam validate --lint`, `cfn-lint`, the hardening policy
# (scripts/check_template_policy.py), checkov, the table against the code's
# definition, and (unless SKIP_SAM_BUILD=1) `sam build` of the three functions.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
scripts/install-tools.sh --sam --lambda --checkov
# lambda-venv first: cargo-lambda finds zig through that venv's python3 (PyPI ziglang).
export PATH="$ROOT/.tools/lambda-venv/bin:$ROOT/.tools/sam-venv/bin:$PATH"
export SAM_CLI_TELEMETRY=0 SAM_CLI_BETA_RUST_CARGO_LAMBDA=1

say "sam validate --lint"
sam validate --lint --region us-east-1
say "cfn-lint"
cfn-lint template.yaml
say "template policy: rules, LeadingKeys, concurrency, log groups, access log"
"$ROOT/.tools/sam-venv/bin/python" scripts/check_template_policy.py template.yaml
say "checkov (every rule passes or is skipped in the template with its reason)"
"$ROOT/.tools/checkov-venv/bin/checkov" -f template.yaml --framework cloudformation --compact --quiet
say "table definition: template.yaml vs the code"
definition="$(cargo run -q --locked -p local-table -- --print-definition)"
"$ROOT/.tools/sam-venv/bin/python" scripts/check_template_table.py template.yaml "$definition"
if [[ "${SKIP_SAM_BUILD:-0}" != 1 ]]; then
  # The template defaults to arm64. Cross-compiling needs Rust's aarch64 standard
  # library; where rustup cannot install it (machines without internet), build the
  # x86_64 variant of the same template instead. SAM_BUILD_ARCH=x86_64 asks for it:
  # `make test` does, so that one release build serves the template check, sam local
  # and the offline deploy (which all run x86_64 on this host).
  arch="${SAM_BUILD_ARCH:-arm64}"
  if [[ "$arch" == arm64 ]] && ! rustup target list --installed 2>/dev/null | grep -q '^aarch64-unknown-linux-gnu$'; then
    arch=x86_64
    say "aarch64-unknown-linux-gnu is not installed (rustup target add aarch64-unknown-linux-gnu); building Architecture=x86_64"
  fi
  say "sam build (release, Architecture=$arch, via cargo-lambda + zig)"
  sam build --beta-features --no-cached --region us-east-1 --parameter-overrides "Architecture=$arch"
  for fn in CreateIntentFunction WebhookFunction ReconcileFunction DispatchEventsFunction OperationsFunction; do
    [[ -x ".aws-sam/build/$fn/bootstrap" ]] || die "sam build produced no bootstrap for $fn"
    say "$fn: $(du -h ".aws-sam/build/$fn/bootstrap" | cut -f1) bootstrap"
  done
fi
