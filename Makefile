# One entry point for the project's commands. `make help` lists them.
.PHONY: help test ddb-up ddb-down sim build fmt

help: ## list the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

test: ## run every check and test (starts and stops DynamoDB Local itself)
	scripts/test.sh

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
