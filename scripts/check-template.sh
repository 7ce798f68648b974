#!/usr/bin/env bash
# Checks template.yaml: `sam validate --lint`, `cfn-lint`, the table against the code's
# definition, and (unless SKIP_SAM_BUILD=1) `sam build` of both functions.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
scripts/install-tools.sh --sam --lambda
export PATH="$ROOT/.tools/sam-venv/bin:$ROOT/.tools/lambda-venv/bin:$PATH"
export SAM_CLI_TELEMETRY=0 SAM_CLI_BETA_RUST_CARGO_LAMBDA=1

say "sam validate --lint"
sam validate --lint --region us-east-1
say "cfn-lint"
cfn-lint template.yaml
say "table definition: template.yaml vs the code"
definition="$(cargo run -q --locked -p fintoc-sim --bin local-table -- --print-definition)"
python scripts/check_template_table.py template.yaml "$definition"
if [[ "${SKIP_SAM_BUILD:-0}" != 1 ]]; then
  say "sam build (release, $(uname -m) host → arm64 via cargo-lambda/zig)"
  sam build --beta-features --region us-east-1
  for fn in CreateIntentFunction WebhookFunction; do
    [[ -x ".aws-sam/build/$fn/bootstrap" ]] || die "sam build produced no bootstrap for $fn"
    say "$fn: $(du -h ".aws-sam/build/$fn/bootstrap" | cut -f1) bootstrap"
  done
fi
