# One entry point for the project's commands. `make help` lists them.
.PHONY: help demo up down status reconcile contract check test bench bench-smoke stack-test events-test sam-local sam-api template-check sam-build deploy deploy-local deploy-local-down test-storage resign-events ddb-up ddb-down sim build fmt

help: ## list the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

demo: up ## start the local stack (if needed) and walk through a payment, step by step
	@python3 scripts/demo.py

up: ## start DynamoDB Local, the Fintoc simulator, the five functions, the checkout and operations pages and the schedules
	scripts/stack.sh up

down: ## stop everything `make up`, `make sam-api` and `make deploy-local` started
	scripts/stack.sh down
	scripts/stack.sh down --sam
	scripts/deploy-local.sh down

status: ## what the local stack runs, and its endpoints
	scripts/stack.sh status

reconcile: ## one reconciliation run on the local stack now; prints what it fixed
	scripts/reconcile.sh

contract: ## docs/openapi.yaml against the running local stack under schemathesis (every check, stateful phase)
	scripts/api-contract-test.sh

check: ## fast tier: fmt, clippy, unit tests, in-memory store contract (Rust alone, no JVM/npm/apt)
	scripts/check.sh

test-storage: ## middle tier: DynamoDB Local + the integration tests (no browser, no Docker)
	scripts/test-storage.sh

test: ## run every check and test (starts and stops what it needs itself)
	scripts/test.sh

bench: ## benchmarks (size, cold start, CPU, DynamoDB cost, load) -> docs/performance.md
	scripts/bench.sh

bench-smoke: ## the benchmarks' harnesses on tiny runs, checking invariants only (part of make test)
	BENCH_SMOKE=1 scripts/bench.sh

stack-test: ## on a test stack: the guided tour and the browser test of the checkout page
	scripts/stack-test.sh

events-test: ## invoke every events/ file under cargo lambda watch and check its status
	scripts/events-test.sh

sam-local: ## every events/ file through `sam local invoke` (Docker engine, offline base image, DynamoDB Local, simulator)
	scripts/sam-local.sh invoke

sam-api: ## the local stack with its functions in SAM's containers (`sam local start-api`); `make down` stops it
	scripts/stack.sh up --sam

template-check: ## sam validate --lint, cfn-lint, table check (no build)
	SKIP_SAM_BUILD=1 scripts/check-template.sh

sam-build: ## template checks + sam build of the three functions
	scripts/check-template.sh

deploy-local: ## the deploy tried offline: sam deploy of the template to MiniStack; outputs in .local/deploy-local.env
	scripts/deploy-local.sh up

deploy-local-down: ## delete the offline stacks and stop MiniStack and its simulator
	scripts/deploy-local.sh down

deploy: ## sam build + sam deploy --guided (needs AWS credentials)
	scripts/install-tools.sh --sam --lambda && export PATH="$(CURDIR)/.tools/lambda-venv/bin:$(CURDIR)/.tools/sam-venv/bin:$$PATH" && sam build --beta-features --no-cached && sam deploy --guided

resign-events: ## re-sign events/webhook-*.json with WEBHOOK_SECRET (default: whsec_events_local_3d9f7a1c5e8b2046) and the current time
	cargo run -q -p fintoc-sim -- resign-event --secret "$${WEBHOOK_SECRET:-whsec_events_local_3d9f7a1c5e8b2046}" $$(ls events/webhook-*.json | grep -v bad-signature)

ddb-up: ## start DynamoDB Local for development on 127.0.0.1:8000
	scripts/dynamodb-local.sh start

ddb-down: ## stop the development DynamoDB Local
	scripts/dynamodb-local.sh stop

sim: ## run the Fintoc simulator on 127.0.0.1:4010 (foreground)
	cargo run -q -p fintoc-sim -- --port 4010

build: ## build every crate
	cargo build --workspace

fmt: ## format the code
	cargo fmt --all
